/* SPDX-License-Identifier: Apache-2.0 */
/* voidbox ps: the recorded runs and the live VMs of every kind, newest first. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "observe/observe_int.h"
#include "observe/runs.h"
#include "sandbox/vms.h"
#include "util/term.h"
#include "util/util.h"

#define PS_DEFAULT 20

struct ps_vm {
	struct vb_vm_live vm;
	int owner;  /* index of the run it belongs to, or -1 */
	char kind[8];
};

/* A line of the listing: a run (vm == NULL) or a VM of no listed run. */
struct ps_row {
	const struct vb_run_info *run;
	const struct ps_vm *vm;
	int64_t started_ms;
};

static void usage(FILE *out)
{
	fputs("usage: voidbox ps [-a|--all] [-o|--output text|json]\n\n"
	      "List the recorded runs and the live VMs of this user, newest first (the\n"
	      "last 20 runs; --all for every one kept): id, name, kind, state, start\n"
	      "time, duration.  Under a running run, its live VMs; a VM of no run\n"
	      "(voidbox exec, voidbox shell, a program using libvoidbox) is a line of\n"
	      "its own, with its owning process and command line.\n\n"
	      "States: running, succeeded, failed, cancelled, and crashed (the run's\n"
	      "process is gone without recording how the run ended).\n\n"
	      "  -a, --all            every run kept (the newest 200)\n"
	      "  -o, --output FORMAT  text (default) or json: a JSON array of runs and VMs\n"
	      "      --json           the same as --output json\n\n"
	      "Runs are recorded in ${XDG_STATE_HOME:-~/.local/state}/voidbox/runs/;\n"
	      "see 'voidbox logs RUN_ID', 'voidbox stop', 'voidbox rm', 'voidbox prune'.\n",
	      out);
}

/* exec, shell or run for the VMs of those voidbox verbs, else vm. */
static void vm_kind(const char *command, char *kind, size_t size)
{
	const char *sp = strchr(command, ' ');
	size_t n0 = sp ? (size_t)(sp - command) : strlen(command);
	const char *base = command;
	for (size_t i = 0; i < n0; i++)
		if (command[i] == '/')
			base = command + i + 1;
	size_t bl = (size_t)(command + n0 - base);
	snprintf(kind, size, "vm");
	if (!sp || bl != 7 || strncmp(base, "voidbox", 7))
		return;
	static const char *const verbs[] = { "exec", "shell", "run" };
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		size_t vl = strlen(verbs[i]);
		if (!strncmp(sp + 1, verbs[i], vl) && (sp[1 + vl] == ' ' || sp[1 + vl] == '\0'))
			snprintf(kind, size, "%s", verbs[i]);
	}
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

static int cmp_rows(const void *a, const void *b)
{
	const struct ps_row *x = a, *y = b;
	if (x->run && y->run)
		return cmp_newest(x->run, y->run);
	if (x->started_ms != y->started_ms)
		return y->started_ms > x->started_ms ? 1 : -1;
	return x->run ? 1 : y->run ? -1 : 0;
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

static json_t *vm_json(const struct ps_vm *v, int standalone)
{
	json_t *o = json_object();
	int rc = !o;
	if (!rc && standalone) {
		char started[40];
		vb_obs_rfc3339(v->vm.started_ms, 0, started, sizeof(started));
		int64_t dur = vb_obs_wall_ms() - v->vm.started_ms;
		rc |= json_object_set_new(o, "run_id", json_null());
		rc |= json_object_set_new(o, "vm_id", str(v->vm.vm_id));
		rc |= json_object_set_new(o, "name", v->vm.name[0] ? str(v->vm.name) : json_null());
		rc |= json_object_set_new(o, "kind", str(v->kind));
		rc |= json_object_set_new(o, "state", str("running"));
		rc |= json_object_set_new(o, "pid", json_integer(v->vm.pid));
		rc |= json_object_set_new(o, "started", str(started));
		rc |= json_object_set_new(o, "started_ms", json_integer(v->vm.started_ms));
		rc |= json_object_set_new(o, "duration_ms", json_integer(dur > 0 ? dur : 0));
		rc |= json_object_set_new(o, "command", str(v->vm.command));
	} else if (!rc) {
		rc |= json_object_set_new(o, "vm_id", str(v->vm.vm_id));
		rc |= json_object_set_new(o, "stage", str(v->vm.name));
	}
	if (!rc) {
		rc |= json_object_set_new(o, "accel", str(v->vm.accel));
		rc |= json_object_set_new(o, "isolation", str(v->vm.isolation));
		if (v->vm.snapshot[0])
			rc |= json_object_set_new(o, "snapshot", str(v->vm.snapshot));
		rc |= json_object_set_new(
			o, "net",
			v->vm.has_net ? json_pack("{s:I, s:I, s:I, s:I}", "bytes_out",
						  (json_int_t)v->vm.net_bytes_out, "bytes_in",
						  (json_int_t)v->vm.net_bytes_in, "connections",
						  (json_int_t)v->vm.net_connections, "denied",
						  (json_int_t)v->vm.net_denied)
				      : json_null());
	}
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *run_json(const struct vb_run_info *r, int ri, const struct ps_vm *vms, size_t n_vms)
{
	char started[40];
	vb_obs_rfc3339(r->started_ms, 0, started, sizeof(started));
	json_t *o = json_object(), *arr = json_array();
	int rc = !o || !arr;
	for (size_t i = 0; !rc && i < n_vms; i++)
		if (vms[i].owner == ri)
			rc |= json_array_append_new(arr, vm_json(&vms[i], 0));
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
		rc |= json_object_set_new(o, "vms", json_incref(arr));
	}
	json_decref(arr);
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int print_json(const struct ps_row *rows, size_t n, const struct vb_run_info *runs,
		      const struct ps_vm *vms, size_t n_vms)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++) {
		json_t *o = rows[i].run ? run_json(rows[i].run, (int)(rows[i].run - runs), vms, n_vms)
					: vm_json(rows[i].vm, 1);
		if (json_array_append_new(arr, o) < 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	char *text = arr ? json_dumps(arr, JSON_INDENT(2)) : NULL;
	json_decref(arr);
	if (!text) {
		vb_error err = { VB_E_RUNTIME, "out of memory" };
		return vb_cli_fail(&err);
	}
	vb_term_puts(stdout, text, VB_TERM_JSON); /* DEL and C1 as \u escapes */
	putchar('\n');
	free(text);
	return 0;
}

/* "  net 1.2 MiB out, 3.4 MiB in, 5 connections, 2 refused", or "". */
static void net_desc(const struct vb_vm_live *vm, char *buf, size_t size)
{
	buf[0] = '\0';
	if (!vm->has_net)
		return;
	char out[32], in[32];
	vb_obs_fmt_bytes(vm->net_bytes_out, out, sizeof(out));
	vb_obs_fmt_bytes(vm->net_bytes_in, in, sizeof(in));
	snprintf(buf, size, "  net %s out, %s in, %llu connection%s, %llu refused", out, in,
		 (unsigned long long)vm->net_connections, vm->net_connections == 1 ? "" : "s",
		 (unsigned long long)vm->net_denied);
}

static void print_vm_line(const struct ps_vm *v)
{
	char name[80], accel[40], net[160];
	vb_term_copy(name, sizeof(name), v->vm.name[0] ? v->vm.name : "-", 0);
	snprintf(accel, sizeof(accel), "%s%s%s", v->vm.accel, v->vm.isolation[0] ? ", " : "",
		 v->vm.isolation);
	net_desc(&v->vm, net, sizeof(net));
	printf("%-22s    vm %s  stage %s  %s%s\n", "", v->vm.vm_id, name, accel, net);
}

static void print_table(const struct ps_row *rows, size_t n, const struct vb_run_info *runs,
			const struct ps_vm *vms, size_t n_vms)
{
	int name_w = 4, kind_w = 4;
	for (size_t i = 0; i < n; i++) {
		const char *nm = rows[i].run ? rows[i].run->name : rows[i].vm->vm.name;
		const char *kd = rows[i].run ? rows[i].run->kind : rows[i].vm->kind;
		int w = nm && nm[0] ? (int)strlen(nm) : 1;
		name_w = w > name_w ? w : name_w;
		w = kd ? (int)strlen(kd) : 1;
		kind_w = w > kind_w ? w : kind_w;
	}
	name_w = name_w > 32 ? 32 : name_w;
	kind_w = kind_w > 12 ? 12 : kind_w;
	printf("%-22s  %-*s  %-*s  %-9s  %-19s  %s\n", "ID", name_w, "NAME", kind_w, "KIND", "STATE",
	       "STARTED", "DURATION");
	for (size_t i = 0; i < n; i++) {
		char when[32], dur[32];
		if (rows[i].run) {
			const struct vb_run_info *r = rows[i].run;
			local_time(r->started_ms, when, sizeof(when));
			vb_obs_fmt_duration(r->duration_ms, dur, sizeof(dur));
			printf("%-22s  %-*.*s  %-*.*s  %-9s  %-19s  %s\n", r->id, name_w, name_w,
			       r->name && r->name[0] ? r->name : "-", kind_w, kind_w, r->kind ? r->kind : "-",
			       vb_run_state_name(r->state), when, dur);
			for (size_t v = 0; v < n_vms; v++)
				if (vms[v].owner == (int)(r - runs))
					print_vm_line(&vms[v]);
			continue;
		}
		const struct ps_vm *v = rows[i].vm;
		char name[80], cmd[300];
		vb_term_copy(name, sizeof(name), v->vm.name[0] ? v->vm.name : "-", 0);
		vb_term_copy(cmd, sizeof(cmd), v->vm.command, 0);
		local_time(v->vm.started_ms, when, sizeof(when));
		int64_t ms = vb_obs_wall_ms() - v->vm.started_ms;
		vb_obs_fmt_duration(ms > 0 ? ms : 0, dur, sizeof(dur));
		printf("%-22s  %-*.*s  %-*.*s  %-9s  %-19s  %s\n", v->vm.vm_id, name_w, name_w, name,
		       kind_w, kind_w, v->kind, "running", when, dur);
		char net[160];
		net_desc(&v->vm, net, sizeof(net));
		printf("%-22s    pid %ld  %s%s%s%s%s%s  %s\n", "", v->vm.pid, v->vm.accel,
		       v->vm.isolation[0] ? ", " : "", v->vm.isolation,
		       v->vm.snapshot[0] ? ", restored from " : "", v->vm.snapshot, net, cmd);
	}
}

/* Give each VM to the running run of its owning process, if listed. */
static void attach_vms(struct ps_vm *vms, size_t n_vms, const struct vb_run_info *runs,
		       size_t n_runs)
{
	for (size_t v = 0; v < n_vms; v++) {
		vms[v].owner = -1;
		vm_kind(vms[v].vm.command, vms[v].kind, sizeof(vms[v].kind));
		for (size_t r = 0; r < n_runs; r++) {
			const struct vb_run_info *ri = &runs[r];
			if (ri->state != VB_RUN_RUNNING || ri->pid != vms[v].vm.pid)
				continue;
			if (ri->pid_start >= 0 && vms[v].vm.pid_start >= 0 &&
			    ri->pid_start != vms[v].vm.pid_start)
				continue;
			/* one process may run several runs in turn: the newest */
			if (vms[v].owner < 0 || cmp_newest(ri, &runs[vms[v].owner]) < 0)
				vms[v].owner = (int)r;
		}
	}
}

static int parse_args(int argc, char **argv, int *all, int *as_json, vb_error *err)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *fmt = NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			return 1;
		if (!strcmp(a, "--all") || !strcmp(a, "-a"))
			*all = 1;
		else if (!strcmp(a, "--json"))
			*as_json = 1;
		else if ((!strcmp(a, "--output") || !strcmp(a, "-o")) && i + 1 < argc)
			fmt = argv[++i];
		else if (!strncmp(a, "--output=", 9))
			fmt = a + 9;
		else if (!strncmp(a, "-o", 2) && a[2])
			fmt = a + 2;
		else {
			static const char *const values[] = { "--output", "-o", NULL };
			static const char *const flags[] = { "--all", "--json", "--help", NULL };
			return vb_cli_bad_option("ps", a, values, flags, err);
		}
		if (fmt && vb_cli_output_format("ps", fmt, as_json, err) < 0)
			return -1;
	}
	return 0;
}

int vb_cmd_ps(int argc, char **argv)
{
	vb_error err = { 0 };
	int all = 0, as_json = 0;
	int prc = parse_args(argc, argv, &all, &as_json, &err);
	if (prc > 0) {
		usage(stdout);
		return 0;
	}
	if (prc < 0)
		return vb_cli_fail(&err);
	_cleanup_free_ char *dir = vb_runs_dir(&err);
	if (!dir)
		return vb_cli_fail(&err);
	struct vb_vm_live *live = NULL;
	size_t n_live = 0;
	if (vb_vms_live(&live, &n_live, &err) < 0) {
		/* the runs are still worth listing */
		vb_cli_warn("%s (live VMs not listed)", err.msg);
		vb_error_clear(&err);
	}
	char **ids;
	size_t n;
	if (vb_runs_list(dir, all ? 0 : PS_DEFAULT, &ids, &n, &err) < 0) {
		free(live);
		return vb_cli_fail(&err);
	}
	struct vb_run_info *runs = calloc(n ? n : 1, sizeof(*runs));
	struct ps_vm *vms = calloc(n_live ? n_live : 1, sizeof(*vms));
	struct ps_row *rows = calloc(n + n_live + 1, sizeof(*rows));
	int rc = 0;
	if (!runs || !vms || !rows) {
		vb_error_set(&err, VB_E_RUNTIME, "out of memory");
		rc = vb_cli_fail(&err);
	}
	size_t got = 0, n_rows = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (vb_run_info_load(dir, ids[i], &runs[got], &err) < 0)
			rc = vb_cli_fail(&err);
		got++;
	}
	vb_runs_list_free(ids, n);
	if (rc == 0) {
		for (size_t v = 0; v < n_live; v++)
			vms[v].vm = live[v];
		attach_vms(vms, n_live, runs, got);
		for (size_t i = 0; i < got; i++)
			rows[n_rows++] = (struct ps_row){ .run = &runs[i], .started_ms = runs[i].started_ms };
		for (size_t v = 0; v < n_live; v++)
			if (vms[v].owner < 0)
				rows[n_rows++] = (struct ps_row){ .vm = &vms[v], .started_ms = vms[v].vm.started_ms };
		qsort(rows, n_rows, sizeof(*rows), cmp_rows);
		if (as_json)
			rc = print_json(rows, n_rows, runs, vms, n_live);
		else if (n_rows == 0)
			vb_term_printf(stdout, VB_TERM_LINES,
				       "no runs recorded yet (they are kept in %s) and no VMs running\n", dir);
		else
			print_table(rows, n_rows, runs, vms, n_live);
	}
	for (size_t i = 0; i < got; i++)
		vb_run_info_clear(&runs[i]);
	free(runs);
	free(vms);
	free(rows);
	free(live);
	return rc;
}
