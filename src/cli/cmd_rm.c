/* SPDX-License-Identifier: Apache-2.0 */
/* voidbox rm: delete run records by id; a running run only with --force. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "observe/observe_int.h"
#include "observe/runs.h"
#include "util/util.h"

#define RM_MAX 256
#define FORCE_STOP_MS 10000

static void usage(FILE *out)
{
	fputs("usage: voidbox rm [--force] RUN_ID...\n\n"
	      "Delete run records (the run's directory: events, stage logs, result).\n"
	      "RUN_ID is a run id, a unique prefix, or its random suffix (see voidbox ps).\n"
	      "A running run is refused unless --force, which stops it first (as\n"
	      "voidbox stop, waiting up to 10 s) and deletes its record either way.\n\n"
	      "      --force   also running runs\n\n"
	      "Every id is looked up before anything is deleted.  Exit status: 0 when\n"
	      "every record named was deleted, 1 when one was refused or could not be\n"
	      "deleted, 2 for an unknown or ambiguous id (nothing is deleted).\n"
	      "See also voidbox prune.\n",
	      out);
}

static int remove_one(const char *runs, const char *id, int force)
{
	vb_error err = { 0 };
	struct vb_run_info info;
	int running = vb_run_info_load(runs, id, &info, &err) == 0 && info.state == VB_RUN_RUNNING;
	vb_run_info_clear(&info);
	if (running && !force) {
		fprintf(stderr, "voidbox: run %s is running: stop it first (voidbox stop %s), or rm --force\n",
			id, id);
		return 1;
	}
	if (running && vb_cli_stop_run(runs, id, FORCE_STOP_MS, &err) < 0)
		fprintf(stderr, "voidbox: %s (deleting its record anyway)\n", err.msg);
	uint64_t bytes = 0;
	if (vb_run_remove(runs, id, &bytes, &err) < 0) {
		fprintf(stderr, "voidbox: %s\n", err.msg);
		return 1;
	}
	char size[32];
	vb_obs_fmt_bytes(bytes, size, sizeof(size));
	printf("removed run %s (%s)\n", id, size);
	return 0;
}

int vb_cmd_rm(int argc, char **argv)
{
	vb_error err = { 0 };
	int force = 0;
	const char *queries[RM_MAX];
	size_t nq = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--force")) {
			force = 1;
		} else if (a[0] == '-') {
			/* -f is --file in every verb that takes one */
			static const char *const flags[] = { "--force", "--help", NULL };
			vb_cli_bad_option("rm", a, NULL, flags, &err);
			if (!strcmp(a, "-f"))
				snprintf(err.msg + strlen(err.msg), sizeof(err.msg) - strlen(err.msg), "\nto delete a running run: voidbox rm --force");
			return vb_cli_fail(&err);
		} else if (nq < RM_MAX) {
			queries[nq++] = a;
		} else {
			vb_error_set(&err, VB_E_USAGE, "rm: at most %d runs at a time", RM_MAX);
			return vb_cli_fail(&err);
		}
	}
	if (!nq) {
		vb_error_set(&err, VB_E_USAGE, "rm: which runs? (voidbox rm RUN_ID...; see voidbox ps)");
		return vb_cli_fail(&err);
	}
	_cleanup_free_ char *runs = vb_runs_dir(&err);
	if (!runs)
		return vb_cli_fail(&err);
	char *ids[RM_MAX];
	size_t n = 0;
	int rc = 0;
	for (size_t i = 0; i < nq && rc == 0; i++) {
		if (!(ids[n] = vb_run_resolve(runs, queries[i], &err)))
			rc = vb_cli_fail(&err);
		else
			n++;
	}
	int failed = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		int dup = 0; /* the same run named twice */
		for (size_t j = 0; j < i; j++)
			dup |= !strcmp(ids[i], ids[j]);
		if (!dup)
			failed |= remove_one(runs, ids[i], force);
	}
	rc = rc ? rc : failed;
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	return rc;
}
