/* SPDX-License-Identifier: Apache-2.0 */
/* voidbox prune: delete finished run records and kept VM console logs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "observe/observe_int.h"
#include "observe/runs.h"
#include "util/util.h"

#define DEFAULT_AGE_MS (24LL * 3600 * 1000)

static void usage(FILE *out)
{
	fputs("usage: voidbox prune [--older-than DURATION | -a|--all] [--dry-run]\n\n"
	      "Delete the records of finished runs (succeeded, failed, cancelled,\n"
	      "crashed) and the console logs kept of VMs that died\n"
	      "(${XDG_STATE_HOME:-~/.local/state}/voidbox/vm-logs/), once they are\n"
	      "older than a day; prints each one and the space freed.  Running runs\n"
	      "are never touched (see voidbox stop, voidbox rm --force).\n\n"
	      "      --older-than DURATION  what ended at least this long ago (default\n"
	      "                             24h): N followed by s, m, h, d or w\n"
	      "  -a, --all                  every finished run and VM log, whatever its age\n"
	      "      --dry-run              only print what would be deleted\n\n"
	      "A run's age counts from its last event; a log's from its last write.\n"
	      "Exit status: 0, 1 when something could not be deleted, 2 for bad options.\n",
	      out);
}

/* "90s", "30m", "12h", "7d", "2w"; "0" for no age at all. */
static int parse_duration(const char *s, int64_t *ms)
{
	char *end;
	if (s[0] < '0' || s[0] > '9')
		return -1;
	unsigned long long n = strtoull(s, &end, 10);
	if (end == s || n > 100000000ULL)
		return -1;
	static const struct { char unit; int64_t ms; } units[] = {
		{ 's', 1000 }, { 'm', 60000 }, { 'h', 3600000 }, { 'd', 86400000 }, { 'w', 604800000 },
	};
	if (*end == '\0' && n == 0) {
		*ms = 0;
		return 0;
	}
	for (size_t i = 0; end[0] && !end[1] && i < sizeof(units) / sizeof(units[0]); i++)
		if (end[0] == units[i].unit) {
			*ms = (int64_t)n * units[i].ms;
			return 0;
		}
	return -1;
}

static void print_item(const struct vb_prune_item *it, void *arg)
{
	int dry = *(const int *)arg;
	char size[32], name[80], detail[300];
	vb_obs_fmt_bytes(it->bytes, size, sizeof(size));
	vb_obs_term_copy(name, sizeof(name), it->name);
	vb_obs_term_copy(detail, sizeof(detail), it->detail);
	if (!strcmp(it->what, "error"))
		fprintf(stderr, "voidbox: cannot delete %s: %s\n", name, detail);
	else if (it->detail)
		printf("%s %s %s (%s, %s)\n", dry ? "would remove" : "removed", it->what, name, detail, size);
	else
		printf("%s %s %s (%s)\n", dry ? "would remove" : "removed", it->what, name, size);
}

int vb_cmd_prune(int argc, char **argv)
{
	vb_error err = { 0 };
	int dry = 0, all = 0, aged = 0;
	struct vb_prune_opts o = { .older_than_ms = DEFAULT_AGE_MS, .fn = print_item, .arg = &dry };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--dry-run")) {
			dry = 1;
		} else if (!strcmp(a, "--all") || !strcmp(a, "-a")) {
			all = 1;
		} else if (!strcmp(a, "--older-than") && i + 1 < argc) {
			v = argv[++i];
		} else if (!strncmp(a, "--older-than=", 13)) {
			v = a + 13;
		} else {
			static const char *const values[] = { "--older-than", NULL };
			static const char *const flags[] = { "--all", "--dry-run", "--help", NULL };
			vb_cli_bad_option("prune", a, values, flags, &err);
			return vb_cli_fail(&err);
		}
		if (v && parse_duration(v, &o.older_than_ms) < 0) {
			vb_error_set(&err, VB_E_USAGE, "prune: --older-than: expected N followed by s, m, h, d or w (e.g. 7d), not '%.40s'", v);
			return vb_cli_fail(&err);
		}
		aged |= v != NULL;
	}
	if (all && aged) {
		vb_error_set(&err, VB_E_USAGE, "prune: --all or --older-than, not both");
		return vb_cli_fail(&err);
	}
	if (all)
		o.older_than_ms = 0;
	o.dry_run = dry;
	struct vb_prune_total t;
	if (vb_prune(&o, &t, &err) < 0)
		return vb_cli_fail(&err);
	char size[32];
	vb_obs_fmt_bytes(t.bytes, size, sizeof(size));
	if (t.runs + t.vm_logs == 0 && !t.failed)
		printf("nothing to prune%s\n", all ? "" : " (nothing finished that long ago; --all for every finished run)");
	else
		printf("%s %zu run%s and %zu VM log%s: %s %s\n", dry ? "would prune" : "pruned", t.runs,
		       t.runs == 1 ? "" : "s", t.vm_logs, t.vm_logs == 1 ? "" : "s", size,
		       dry ? "would be freed" : "freed");
	return t.failed ? 1 : 0;
}
