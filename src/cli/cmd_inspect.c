/* SPDX-License-Identifier: Apache-2.0 */
/* voidbox inspect: show the resolved plan of a spec file; nothing runs. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "spec/spec.h"

static void usage(FILE *out)
{
	fputs("usage: voidbox inspect [OPTIONS] FILE\n\n"
	      "Validate a spec file and print what would run: each stage or step with\n"
	      "its VM (memory, vcpus, network, mounts, backend), what it runs, its\n"
	      "timeout, inputs and outputs, with every default filled in.\n"
	      "Environment values are never printed.\n"
	      "\n"
	      "options:\n"
	      "  --file FILE           the spec (same as the FILE argument)\n"
	      "  -o, --output FORMAT   text (default) or json (the plan as one object)\n"
	      "  -h, --help            this help\n"
	      "\n"
	      "exit codes: 0 printed; 2 invalid spec or bad usage; 125 cannot print.\n",
	      out);
}

int vb_cmd_inspect(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "file", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *file = NULL;
	int json = 0;
	vb_error err = { 0 };

	optind = 1;
	opterr = 0;
	for (;;) { /* options before or after FILE */
		int c = getopt_long(argc, argv, "+:ho:", longopts, NULL);
		const char *f = NULL;
		if (c == -1) {
			if (optind >= argc)
				break;
			f = argv[optind++];
		} else if (c == 'F') {
			f = optarg;
		} else if (c == 'h') {
			usage(stdout);
			return 0;
		} else if (c == 'o') {
			if (vb_cli_output_format("inspect", optarg, &json, &err) < 0)
				return vb_cli_fail(&err);
			continue;
		} else {
			vb_cli_getopt_fail("inspect", c, argv, longopts, &err);
			return vb_cli_fail(&err);
		}
		if (file) {
			vb_error_set(&err, VB_E_USAGE, "inspect: one spec file at a time");
			return vb_cli_fail(&err);
		}
		file = f;
	}
	if (!file) {
		usage(stderr);
		return 2;
	}
	struct vb_spec *spec = vb_spec_load(file, &err);
	if (!spec)
		return vb_cli_fail(&err);
	int rc = 0;
	if (json) {
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
