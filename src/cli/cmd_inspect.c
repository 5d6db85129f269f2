/* SPDX-License-Identifier: Apache-2.0 */
/* voidbox inspect: show the resolved plan of a spec file; nothing runs. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "spec/spec.h"

static void usage(FILE *out)
{
	fputs("usage: voidbox inspect [--output text|json] [--file] FILE\n\n"
	      "Validate a spec file and print what would run: each stage or step with\n"
	      "its VM (memory, vcpus, network, mounts, backend), what it runs, its\n"
	      "timeout, inputs and outputs, with every default filled in.\n"
	      "Environment values are never printed.\n",
	      out);
}

int vb_cmd_inspect(int argc, char **argv)
{
	const char *file = NULL, *output = "text";
	vb_error err = { 0 };

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(a, "--output") || !strcmp(a, "-o")) {
			if (i + 1 >= argc) {
				vb_error_set(&err, VB_E_USAGE, "inspect: %s needs text or json", a);
				return vb_cli_fail(&err);
			}
			output = argv[++i];
			continue;
		}
		if (!strncmp(a, "--output=", 9)) {
			output = a + 9;
			continue;
		}
		int r = vb_cli_file_arg("inspect", argc, argv, &i, &file, &err);
		if (r == 0)
			vb_error_set(&err, VB_E_USAGE, "inspect: unknown option '%.100s' (see voidbox inspect --help)", a);
		if (r <= 0)
			return vb_cli_fail(&err);
	}
	if (strcmp(output, "text") != 0 && strcmp(output, "json") != 0) {
		vb_error_set(&err, VB_E_USAGE, "inspect: --output must be text or json, not '%.100s'", output);
		return vb_cli_fail(&err);
	}
	if (!file) {
		usage(stderr);
		return 2;
	}
	struct vb_spec *spec = vb_spec_load(file, &err);
	if (!spec)
		return vb_cli_fail(&err);
	int rc = 0;
	if (!strcmp(output, "json")) {
		json_t *plan = vb_spec_plan_json(spec);
		if (!plan || json_dumpf(plan, stdout, JSON_INDENT(2)) < 0) {
			vb_error_set(&err, VB_E_RUNTIME, "inspect: cannot write the plan as JSON");
			rc = -1;
		} else {
			putchar('\n');
		}
		json_decref(plan);
	} else if (vb_spec_print_plan(spec, stdout) < 0) {
		vb_error_set(&err, VB_E_RUNTIME, "inspect: cannot write the plan");
		rc = -1;
	}
	vb_spec_free(spec);
	if (fflush(stdout) != 0 && rc == 0) {
		vb_error_set(&err, VB_E_RUNTIME, "inspect: cannot write the plan");
		rc = -1;
	}
	return rc < 0 ? vb_cli_fail(&err) : 0;
}
