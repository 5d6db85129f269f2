/* SPDX-License-Identifier: Apache-2.0 */
/* voidbox ps: the recorded runs, newest first, and the VMs of running ones. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "observe/observe_int.h"
#include "observe/runs.h"
#include "util/util.h"

#define PS_DEFAULT 20

static void usage(FILE *out)
{
	fputs("usage: voidbox ps [--all] [--json]\n\n"
	      "List the recorded runs, newest first (the last 20; --all for every one\n"
	      "kept): run id, name, kind, state, start time, duration, and for a\n"
	      "running run the VMs of its stages that have not ended.\n\n"
	      "States: running, succeeded, failed, cancelled, and crashed (the run's\n"
	      "process is gone without recording how the run ended).\n\n"
	      "  --all     every run kept (the newest 200)\n"
	      "  --json    a JSON array of runs instead of the table\n\n"
	      "Runs are recorded in ${XDG_STATE_HOME:-~/.local/state}/voidbox/runs/;\n"
	      "see 'voidbox logs RUN_ID'.\n",
	      out);
}

static int cmp_newest(const void *a, const void *b)
{
	const struct vb_run_info *x = a, *y = b;
	/* ids sort by second; within one second the start time decides */
	int c = strncmp(y->id, x->id, 15);
	if (c)
		return c;
	if (x->started_ms != y->started_ms)
		return y->started_ms > x->started_ms ? 1 : -1;
	return strcmp(y->id, x->id);
}

static void local_time(int64_t ms, char *buf, size_t size)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	if (ms <= 0 || !localtime_r(&s, &tm))
		snprintf(buf, size, "-");
	else
		strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
}

static json_t *str(const char *s)
{
	return vb_obs_jstr(s, 4096);
}

static json_t *run_json(const struct vb_run_info *r)
{
	char started[40];
	vb_obs_rfc3339(r->started_ms, 0, started, sizeof(started));
	json_t *o = json_object(), *vms = json_array();
	int rc = !o || !vms;
	for (size_t i = 0; !rc && i < r->n_vms; i++) {
		json_t *vm = json_object();
		rc |= json_array_append_new(vms, vm);
		rc |= json_object_set_new(vm, "vm_id", str(r->vms[i].vm_id));
		rc |= json_object_set_new(vm, "stage", str(r->vms[i].stage));
		rc |= json_object_set_new(vm, "accel", str(r->vms[i].accel));
		rc |= json_object_set_new(vm, "isolation", str(r->vms[i].isolation));
	}
	if (!rc) {
		rc |= json_object_set_new(o, "run_id", str(r->id));
		rc |= json_object_set_new(o, "name", str(r->name));
		rc |= json_object_set_new(o, "kind", str(r->kind));
		rc |= json_object_set_new(o, "state", str(vb_run_state_name(r->state)));
		rc |= json_object_set_new(o, "pid", json_integer(r->pid));
		rc |= json_object_set_new(o, "started", str(started));
		rc |= json_object_set_new(o, "started_ms", json_integer(r->started_ms));
		rc |= json_object_set_new(o, "duration_ms", json_integer(r->duration_ms));
		rc |= json_object_set_new(o, "error", str(r->error));
		rc |= json_object_set_new(o, "dir", str(r->dir));
		rc |= json_object_set_new(o, "vms", json_incref(vms));
	}
	json_decref(vms);
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int print_json(const struct vb_run_info *runs, size_t n)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		if (json_array_append_new(arr, run_json(&runs[i])) < 0) {
			json_decref(arr);
			arr = NULL;
		}
	char *text = arr ? json_dumps(arr, JSON_INDENT(2)) : NULL;
	json_decref(arr);
	if (!text) {
		vb_error err = { VB_E_RUNTIME, "out of memory" };
		return vb_cli_fail(&err);
	}
	puts(text);
	free(text);
	return 0;
}

static void print_table(const struct vb_run_info *runs, size_t n)
{
	int name_w = 4, kind_w = 4;
	for (size_t i = 0; i < n; i++) {
		int w = runs[i].name ? (int)strlen(runs[i].name) : 1;
		name_w = w > name_w ? w : name_w;
		w = runs[i].kind ? (int)strlen(runs[i].kind) : 1;
		kind_w = w > kind_w ? w : kind_w;
	}
	name_w = name_w > 32 ? 32 : name_w;
	kind_w = kind_w > 12 ? 12 : kind_w;
	printf("%-22s  %-*s  %-*s  %-9s  %-19s  %s\n", "RUN ID", name_w, "NAME", kind_w, "KIND", "STATE",
	       "STARTED", "DURATION");
	for (size_t i = 0; i < n; i++) {
		const struct vb_run_info *r = &runs[i];
		char when[32], dur[32];
		local_time(r->started_ms, when, sizeof(when));
		vb_obs_fmt_duration(r->duration_ms, dur, sizeof(dur));
		printf("%-22s  %-*.*s  %-*.*s  %-9s  %-19s  %s\n", r->id, name_w, name_w,
		       r->name && r->name[0] ? r->name : "-", kind_w, kind_w, r->kind ? r->kind : "-",
		       vb_run_state_name(r->state), when, dur);
		for (size_t v = 0; v < r->n_vms; v++)
			printf("%-22s    vm %s  stage %s  %s%s%s\n", "", r->vms[v].vm_id, r->vms[v].stage,
			       r->vms[v].accel, r->vms[v].isolation[0] ? ", " : "", r->vms[v].isolation);
	}
}

int vb_cmd_ps(int argc, char **argv)
{
	vb_error err = { 0 };
	int all = 0, as_json = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--all") || !strcmp(a, "-a")) {
			all = 1;
		} else if (!strcmp(a, "--json")) {
			as_json = 1;
		} else {
			vb_error_set(&err, VB_E_USAGE, "ps: unknown argument '%.100s' (see voidbox ps --help)", a);
			return vb_cli_fail(&err);
		}
	}
	_cleanup_free_ char *dir = vb_runs_dir(&err);
	if (!dir)
		return vb_cli_fail(&err);
	char **ids;
	size_t n;
	if (vb_runs_list(dir, all ? 0 : PS_DEFAULT, &ids, &n, &err) < 0)
		return vb_cli_fail(&err);
	struct vb_run_info *runs = calloc(n ? n : 1, sizeof(*runs));
	if (!runs) {
		vb_runs_list_free(ids, n);
		vb_error_set(&err, VB_E_RUNTIME, "out of memory");
		return vb_cli_fail(&err);
	}
	size_t got = 0;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (vb_run_info_load(dir, ids[i], &runs[got], &err) < 0)
			rc = vb_cli_fail(&err);
		got++;
	}
	vb_runs_list_free(ids, n);
	if (rc == 0) {
		qsort(runs, got, sizeof(*runs), cmp_newest);
		if (as_json)
			rc = print_json(runs, got);
		else if (got == 0)
			printf("no runs recorded yet (they are kept in %s)\n", dir);
		else
			print_table(runs, got);
	}
	for (size_t i = 0; i < got; i++)
		vb_run_info_clear(&runs[i]);
	free(runs);
	return rc;
}
