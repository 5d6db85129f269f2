/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_snap_manifest.c — libFuzzer target for a snapshot's manifest.json
 * (src/snap/store.c): a damaged manifest is an error, never a crash, and
 * what parses formats back to a manifest that parses to the same thing.
 *
 *   make fuzz; build/fuzz/fuzz_snap_manifest -max_total_time=600 tests/fuzz/corpus/snap_manifest
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snap/snap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vb_snap s, again;
	vb_error err;
	if (vb_snap_parse((const char *)data, size, &s, &err) < 0)
		return 0;
	char *text = vb_snap_format(&s);
	if (!text)
		abort();
	if (vb_snap_parse(text, strlen(text), &again, &err) < 0 || memcmp(&s, &again, sizeof(s)))
		abort();
	free(text);
	return 0;
}
