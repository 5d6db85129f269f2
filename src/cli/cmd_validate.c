/* SPDX-License-Identifier: Apache-2.0 */
/* voidbox validate: check a spec file; nothing runs. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "spec/spec.h"

static void usage(FILE *out)
{
	fputs("usage: voidbox validate [--file] FILE\n\n"
	      "Check a spec file (YAML if it ends in .yaml or .yml, JSON otherwise)\n"
	      "against schema v1 without running anything.  Every problem is printed\n"
	      "as FILE:LINE:COL: FIELD.PATH: message.  Exit status: 0 valid, 2 invalid.\n",
	      out);
}

int vb_cmd_validate(int argc, char **argv)
{
	const char *file = NULL;
	vb_error err = { 0 };

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		}
		int r = vb_cli_file_arg("validate", argc, argv, &i, &file, &err);
		if (r == 0)
			vb_error_set(&err, VB_E_USAGE, "validate: unknown option '%.100s' (see voidbox validate --help)", a);
		if (r <= 0)
			return vb_cli_fail(&err);
	}
	if (!file) {
		usage(stderr);
		return 2;
	}
	struct vb_spec *spec = vb_spec_load(file, &err);
	if (!spec)
		return vb_cli_fail(&err);
	printf("%s: valid (kind %s, api_version v1", spec->file, vb_spec_kind_name(spec->kind));
	if (spec->kind == VB_SPEC_PIPELINE)
		printf(", %zu box%s, %zu stage%s", spec->pipeline.n_boxes, spec->pipeline.n_boxes == 1 ? "" : "es",
		       spec->pipeline.n_stages, spec->pipeline.n_stages == 1 ? "" : "s");
	else if (spec->kind == VB_SPEC_WORKFLOW)
		printf(", %zu step%s", spec->workflow.n_steps, spec->workflow.n_steps == 1 ? "" : "s");
	puts(")");
	vb_spec_free(spec);
	return 0;
}
