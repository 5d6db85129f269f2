/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the spec loader: the same bytes as YAML and as JSON.
 * A valid result is also printed (text and JSON plan) to exercise those.
 * Seed corpus: tests/golden/specs.
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc \
 *     -o fuzz_spec tests/fuzz/fuzz_spec.c src/spec/\*.c src/util/error.c -lyaml -ljansson
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "spec/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one(const uint8_t *data, size_t size, int is_yaml)
{
	vb_error err = { 0 };
	/* A name without a directory: relative paths resolve from here. */
	struct vb_spec *spec = vb_spec_load_string((const char *)data, size, "fuzz.spec", is_yaml, &err);
	if (!spec)
		return;
	FILE *null = fopen("/dev/null", "w");
	if (null) {
		vb_spec_print_plan(spec, null);
		fclose(null);
	}
	json_t *plan = vb_spec_plan_json(spec);
	char *dump = plan ? json_dumps(plan, 0) : NULL;
	free(dump);
	json_decref(plan);
	vb_spec_free(spec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one(data, size, 1);
	one(data, size, 0);
	return 0;
}
