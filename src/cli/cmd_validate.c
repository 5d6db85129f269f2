/* SPDX-License-Identifier: Apache-2.0 */
/* voidbox validate: check a spec file; nothing runs. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "observe/observe_int.h"
#include "skill/skill.h"
#include "spec/spec.h"

static void usage(FILE *out)
{
	fputs("usage: voidbox validate [OPTIONS] FILE\n\n"
	      "Check a spec file (YAML if it ends in .yaml or .yml, JSON otherwise)\n"
	      "against schema v1 without running anything.  Every problem is printed\n"
	      "to stderr as FILE:LINE:COL: FIELD.PATH: message.\n"
	      "\n"
	      "options:\n"
	      "  --file FILE           the spec (same as the FILE argument)\n"
	      "  -o, --output FORMAT   text (default) or json: {\"file\", \"valid\", \"kind\",\n"
	      "                        \"boxes\", \"stages\", \"steps\"} or, when invalid,\n"
	      "                        {\"file\", \"valid\": false, \"problems\": [...]}\n"
	      "  -h, --help            this help\n"
	      "\n"
	      "exit codes: 0 valid, 2 invalid or bad usage.\n",
	      out);
}

/* A warning does not make the spec invalid: stderr, exit 0. */
static void print_warning(const char *line, void *opaque)
{
	(void)opaque;
	fprintf(stderr, "voidbox: warning: %s\n", line);
}

/* The verdict as one JSON object on stdout. */
static void print_json(const char *file, const struct vb_spec *spec, const vb_error *err)
{
	/* a file name need not be UTF-8: invalid bytes become U+FFFD */
	json_t *o = json_pack("{s:o, s:b}", "file", vb_obs_jstr(file, 4096), "valid", spec != NULL);
	if (!o)
		return;
	if (spec) {
		json_object_set_new(o, "kind", json_string(vb_spec_kind_name(spec->kind)));
		if (spec->kind == VB_SPEC_PIPELINE) {
			json_object_set_new(o, "boxes", json_integer((json_int_t)spec->pipeline.n_boxes));
			json_object_set_new(o, "stages", json_integer((json_int_t)spec->pipeline.n_stages));
		} else if (spec->kind == VB_SPEC_WORKFLOW) {
			json_object_set_new(o, "steps", json_integer((json_int_t)spec->workflow.n_steps));
		}
	} else {
		json_t *problems = json_array();
		for (const char *m = err->msg; problems && *m;) {
			size_t n = strcspn(m, "\n");
			json_array_append_new(problems, json_stringn(m, n));
			m += n + (m[n] == '\n');
		}
		json_object_set_new(o, "problems", problems);
	}
	char *text = json_dumps(o, JSON_INDENT(2));
	if (text) {
		vb_term_puts(stdout, text, VB_TERM_JSON); /* DEL and C1 as \u escapes */
		putchar('\n');
	}
	free(text);
	json_decref(o);
}

int vb_cmd_validate(int argc, char **argv)
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
		if (c == -1) {
			if (optind >= argc)
				break;
			if (file) {
				vb_error_set(&err, VB_E_USAGE, "validate: one spec file at a time");
				return vb_cli_fail(&err);
			}
			file = argv[optind++];
			continue;
		}
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case 'o':
			if (vb_cli_output_format("validate", optarg, &json, &err) < 0)
				return vb_cli_fail(&err);
			break;
		case 'F':
			if (file) {
				vb_error_set(&err, VB_E_USAGE, "validate: one spec file at a time");
				return vb_cli_fail(&err);
			}
			file = optarg;
			break;
		default:
			vb_cli_getopt_fail("validate", c, argv, longopts, &err);
			return vb_cli_fail(&err);
		}
	}
	if (!file) {
		usage(stderr);
		return 2;
	}
	struct vb_spec *spec = vb_spec_load(file, &err);
	/* skills are read now (remote: ones only checked): what validate says
	 * is valid is what run can provision */
	if (spec && vb_skill_check_spec(spec, &err) < 0) {
		vb_spec_free(spec);
		spec = NULL;
	}
	if (json)
		print_json(file, spec, &err);
	if (!spec)
		return vb_cli_fail(&err);
	vb_spec_warnings(spec, print_warning, NULL);
	if (!json) {
		vb_term_puts(stdout, spec->file, 0);
		printf(": valid (kind %s, api_version v1", vb_spec_kind_name(spec->kind));
		if (spec->kind == VB_SPEC_PIPELINE)
			printf(", %zu box%s, %zu stage%s", spec->pipeline.n_boxes,
			       spec->pipeline.n_boxes == 1 ? "" : "es", spec->pipeline.n_stages,
			       spec->pipeline.n_stages == 1 ? "" : "s");
		else if (spec->kind == VB_SPEC_WORKFLOW)
			printf(", %zu step%s", spec->workflow.n_steps, spec->workflow.n_steps == 1 ? "" : "s");
		puts(")");
	}
	vb_spec_free(spec);
	return 0;
}
