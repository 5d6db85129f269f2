/* SPDX-License-Identifier: Apache-2.0 */
/* voidbox agent pull|list: the real agent binaries (claude-code, codex) in
 * the cache (src/agentbin, docs/agents.md "Agent binaries"). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agentbin/agentbin.h"
#include "cli/cli.h"
#include "util/term.h"
#include "util/util.h"

static const char usage_text[] =
	"usage: voidbox agent pull [--verify] claude-code|codex|all\n"
	"       voidbox agent list [-o text|json]\n"
	"\n"
	"pull   fetch an agent's binary from the npm registry at its pinned version,\n"
	"       check the tarball against its published sha512 integrity and unpack\n"
	"       it into ${XDG_CACHE_HOME:-~/.cache}/voidbox/agents (progress on\n"
	"       stderr; each is ~170 MB to download, ~400 MB unpacked). Nothing\n"
	"       is fetched when it is cached.\n"
	"       Registry: $VOIDBOX_NPM_REGISTRY, else npm's registry setting.\n"
	"list   show each agent's version and whether it is cached\n"
	"\n"
	"options:\n"
	"  --verify              pull: hash the cached tarball again; a corrupt one\n"
	"                        is fetched again\n"
	"  -o, --output FORMAT   list: text (default) or json, an array of {\"agent\",\n"
	"                        \"package\", \"version\", \"pinned\", \"integrity\",\n"
	"                        \"cached\", \"path\", \"size\"}\n"
	"  -h, --help            this help\n"
	"\n"
	"Use one in a VM with `voidbox exec --agent claude-code -- claude --version`.\n"
	"\n"
	"exit codes: 0 done; 2 bad usage; 125 the fetch or the check failed.\n";

static int pull(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "verify", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	vb_error err = { 0 };
	unsigned flags = 0;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage_text, stdout);
			return 0;
		}
		if (c != 'V') {
			vb_cli_getopt_fail("agent pull", c, argv, opts, &err);
			return vb_cli_fail(&err);
		}
		flags |= VB_AGENTBIN_VERIFY;
	}
	if (optind >= argc) {
		vb_error_set(&err, VB_E_USAGE,
			     "agent pull: which agent? (claude-code, codex or all)");
		return vb_cli_fail(&err);
	}
	unsigned want = 0; /* 1u << kind, each pulled once, in kind order */
	for (int i = optind; i < argc; i++) {
		enum vb_agentbin_kind k;
		if (!strcmp(argv[i], "all")) {
			want = (1u << VB_AGENTBIN_N) - 1;
		} else if (vb_agentbin_parse(argv[i], &k) == 0) {
			want |= 1u << k;
		} else {
			vb_error_set(&err, VB_E_USAGE,
				     "agent pull: unknown agent '%.100s' (expected claude-code, codex or "
				     "all)",
				     argv[i]);
			return vb_cli_fail(&err);
		}
	}
	for (int k = 0; k < VB_AGENTBIN_N; k++) {
		if (!(want & (1u << k)))
			continue;
		_cleanup_free_ char *tree = NULL;
		if (vb_agentbin_pull((enum vb_agentbin_kind)k, flags, stderr, &tree, &err) < 0)
			return vb_cli_fail(&err);
		vb_term_printf(stdout, VB_TERM_LINES, "%s: %s\n",
			       vb_agentbin_name((enum vb_agentbin_kind)k), tree);
	}
	return 0;
}

static long long file_size(const char *path)
{
	struct stat st;
	return path && stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static int list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	vb_error err = { 0 };
	int json = 0, c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:ho:", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage_text, stdout);
			return 0;
		}
		if (c != 'o' || vb_cli_output_format("agent list", optarg, &json, &err) < 0) {
			if (c != 'o')
				vb_cli_getopt_fail("agent list", c, argv, opts, &err);
			return vb_cli_fail(&err);
		}
	}
	if (optind < argc) {
		vb_cli_unexpected_arg("agent list", argv[optind], &err);
		return vb_cli_fail(&err);
	}
	json_t *arr = json_array();
	if (!json)
		printf("%-12s %-22s %-7s %s\n", "AGENT", "VERSION", "CACHED", "PATH");
	for (int k = 0; k < VB_AGENTBIN_N; k++) {
		struct vb_agentbin_info in;
		if (vb_agentbin_info((enum vb_agentbin_kind)k, &in, &err) < 0) {
			vb_agentbin_info_free(&in);
			json_decref(arr);
			return vb_cli_fail(&err);
		}
		_cleanup_free_ char *bin =
			in.tree ? vb_strfmt("%s/bin/%s", in.tree,
					    vb_agentbin_program((enum vb_agentbin_kind)k))
				: NULL;
		if (json)
			json_array_append_new(
				arr, json_pack("{s:s, s:s, s:s, s:b, s:s?, s:b, s:s?, s:I}", "agent",
					       in.kind_name, "package", in.package, "version",
					       in.version, "pinned", in.pinned, "integrity",
					       in.integrity, "cached", in.tree != NULL, "path",
					       in.tree, "size", (json_int_t)file_size(bin)));
		else /* the version may come from the environment */
			vb_term_printf(stdout, VB_TERM_LINES, "%-12s %-22s %-7s %s\n", in.kind_name, in.version,
				       in.tree ? "yes" : "no",
				       in.tree ? in.tree : "(voidbox agent pull to fetch)");
		vb_agentbin_info_free(&in);
	}
	if (json) {
		_cleanup_free_ char *text = json_dumps(arr, JSON_INDENT(2));
		vb_term_puts(stdout, text ? text : "[]", VB_TERM_JSON);
		putchar('\n');
	}
	json_decref(arr);
	return 0;
}

int vb_cmd_agent(int argc, char **argv)
{
	static const char *const names[] = { "pull", "list" };
	vb_error err = { 0 };
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs(usage_text, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "pull"))
		return pull(argc - 1, argv + 1);
	if (!strcmp(argv[1], "list"))
		return list(argc - 1, argv + 1);
	vb_cli_unknown_command("agent", argv[1], names, 2, &err);
	return vb_cli_fail(&err);
}
