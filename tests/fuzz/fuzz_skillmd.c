/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_skillmd.c — libFuzzer target for SKILL.md's frontmatter reader
 * (src/skill/frontmatter.c: the '---' fences are found by hand, the YAML
 * between them read by libyaml).  The input is a whole SKILL.md.  Either it
 * is accepted, with no frontmatter or with a safe name and a description,
 * or refused with a message that starts with the file's label.
 *
 *   make fuzz; build/fuzz/fuzz_skillmd -max_total_time=600 tests/fuzz/corpus/skillmd
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "skill/skill.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0; /* as the resolver reads it */
	char *name = NULL, *desc = NULL;
	vb_error err = { 0 };
	int rc = vb_skill_frontmatter(text, size, "S.md", &name, &desc, &err);
	if (rc == 0 && name && (!vb_skill_name_ok(name) || !desc || !*desc))
		abort();
	if (rc == 0 && !name && desc)
		abort();
	if (rc < 0 && (name || desc || strncmp(err.msg, "S.md:", 5)))
		abort();
	free(name);
	free(desc);
	free(text);
	return 0;
}
