/* SPDX-License-Identifier: Apache-2.0 */
/*
 * voidbox stop: stop runs and VMs gracefully.  A VM belongs to the voidbox
 * process that booted it (exec, shell, run, or a libvoidbox program), and
 * that process tears its VMs down and records how a run ended when it gets
 * SIGTERM; so stopping sends SIGTERM to the owner and waits, bounded.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "observe/observe_int.h"
#include "observe/runs.h"
#include "sandbox/vms.h"
#include "util/util.h"

#define STOP_DEFAULT_S 10
#define TARGETS_MAX 64

static void usage(FILE *out)
{
	fputs("usage: voidbox stop [--timeout SECONDS] RUN_ID|VM_ID...\n\n"
	      "Stop runs and VMs: SIGTERM to the voidbox process that owns them, which\n"
	      "tears its VMs down (a run is recorded as cancelled), then wait for it\n"
	      "to exit.  RUN_ID is a run id, a unique prefix, or its random suffix;\n"
	      "VM_ID a VM id (vm-...), a unique prefix, or a tail of it (see voidbox\n"
	      "ps).  Stopping a VM of a run stops the whole run; stopping a VM of\n"
	      "voidbox exec or shell ends that command.\n\n"
	      "      --timeout SECONDS  how long to wait for each to exit (default 10)\n\n"
	      "Exit status: 0 when everything named has stopped (or had already ended),\n"
	      "1 when something is still running after the timeout (nothing is killed:\n"
	      "'kill -KILL PID' does, and the run is then recorded as crashed), 2 for\n"
	      "an unknown or ambiguous id (nothing is stopped), 125 when a process\n"
	      "cannot be signalled.\n",
	      out);
}

struct target {
	char label[64];     /* "run ID" or "vm-..." */
	char run_id[32];    /* a run: its id */
	long pid;           /* the owner; 0 when there is nothing to stop */
	long long start;
	char what[300];     /* how it is described once stopped */
};

/* 1 if VM (id) matches (q): the id, a prefix of it or of its hex digits,
 * or a tail of them. */
static int vm_matches(const char *id, const char *q)
{
	size_t n = strlen(id), ql = strlen(q);
	const char *hex = !strncmp(id, "vm-", 3) ? id + 3 : id;
	return !strncmp(id, q, ql) || !strncmp(hex, q, ql) || (ql <= n && !strcmp(id + n - ql, q));
}

/* The running run of process (pid, start), if any: its id into (id). */
static int run_of_pid(const char *runs_dir, long pid, long long start, char *id, size_t size)
{
	char **ids;
	size_t n;
	int found = 0;
	if (vb_runs_list(runs_dir, 0, &ids, &n, NULL) < 0)
		return 0;
	for (size_t i = n; i-- > 0 && !found;) {
		struct vb_run_info info;
		if (vb_run_info_load(runs_dir, ids[i], &info, NULL) == 0 && info.state == VB_RUN_RUNNING &&
		    info.pid == pid && (info.pid_start < 0 || start < 0 || info.pid_start == start)) {
			snprintf(id, size, "%s", info.id);
			found = 1;
		}
		vb_run_info_clear(&info);
	}
	vb_runs_list_free(ids, n);
	return found;
}

static int set_run_target(const char *runs_dir, const char *id, struct target *t, vb_error *err)
{
	struct vb_run_info info;
	int rc = vb_run_info_load(runs_dir, id, &info, err);
	if (rc == 0) {
		snprintf(t->label, sizeof(t->label), "run %s", id);
		snprintf(t->run_id, sizeof(t->run_id), "%s", id);
		if (info.state == VB_RUN_RUNNING && info.other_host)
			rc = vb_error_set(err, VB_E_USAGE, "run %s runs on another host: stop it there", id);
		else if (info.state == VB_RUN_RUNNING && info.pid > 0) {
			t->pid = info.pid;
			t->start = info.pid_start;
		} else {
			snprintf(t->what, sizeof(t->what), "had already ended (%s)", vb_run_state_name(info.state));
		}
	}
	vb_run_info_clear(&info);
	return rc;
}

static int resolve(const char *runs_dir, const char *q, const struct vb_vm_live *vms, size_t n_vms,
		   struct target *t, vb_error *err)
{
	memset(t, 0, sizeof(*t));
	vb_error rerr = { 0 };
	_cleanup_free_ char *run = vb_run_resolve(runs_dir, q, &rerr);
	if (!run && strncmp(rerr.msg, "no run ", 7)) {
		*err = rerr; /* ambiguous, or worse */
		return -1;
	}
	size_t hits = 0, first = 0;
	char shown[256] = "";
	for (size_t i = 0; i < n_vms; i++) {
		if (!vm_matches(vms[i].vm_id, q))
			continue;
		if (!strcmp(vms[i].vm_id, q)) { /* an exact id wins */
			hits = 1;
			first = i;
			break;
		}
		if (hits++ == 0)
			first = i;
		if (strlen(shown) + strlen(vms[i].vm_id) + 8 < sizeof(shown))
			snprintf(shown + strlen(shown), sizeof(shown) - strlen(shown), "%s%s",
				 shown[0] ? ", " : "", vms[i].vm_id);
	}
	if (hits > 1)
		return vb_error_set(err, VB_E_USAGE, "VM id '%s' is ambiguous: %zu VMs match (%s)", q, hits, shown);
	if (run && hits)
		return vb_error_set(err, VB_E_USAGE, "'%s' is ambiguous: run %s and %s match", q, run,
				    vms[first].vm_id);
	if (run)
		return set_run_target(runs_dir, run, t, err);
	if (!hits) {
		char safe[80];
		vb_obs_term_copy(safe, sizeof(safe), q);
		return vb_error_set(err, VB_E_USAGE, "no run or VM '%s' (see voidbox ps)", safe);
	}
	const struct vb_vm_live *vm = &vms[first];
	char cmd[200], run_id[32];
	vb_obs_term_copy(cmd, sizeof(cmd), vm->command);
	snprintf(t->label, sizeof(t->label), "%s", vm->vm_id);
	t->pid = vm->pid;
	t->start = vm->pid_start;
	if (run_of_pid(runs_dir, vm->pid, vm->pid_start, run_id, sizeof(run_id)))
		snprintf(t->what, sizeof(t->what), "(and its run %s, pid %ld)", run_id, vm->pid);
	else
		snprintf(t->what, sizeof(t->what), "(pid %ld: %s)", vm->pid, cmd);
	return 0;
}

/* After the owner went: how the run ended, from its record. */
static void describe_run_end(const char *runs_dir, struct target *t)
{
	struct vb_run_info info;
	if (vb_run_info_load(runs_dir, t->run_id, &info, NULL) == 0)
		snprintf(t->what, sizeof(t->what), "(%s)", vb_run_state_name(info.state));
	vb_run_info_clear(&info);
}

/* Signal every target, then wait for each up to (deadline).  Prints a line
 * per target; returns 0, 1 (something still running) or 125. */
static int stop_all(const char *runs_dir, struct target *t, size_t n, int timeout_ms)
{
	int rc = 0;
	vb_error err = { 0 };
	for (size_t i = 0; i < n; i++)
		if (t[i].pid && vb_pid_terminate(t[i].pid, t[i].start, SIGTERM, 0, &err) < 0) {
			fprintf(stderr, "voidbox: %s: %s\n", t[i].label, err.msg);
			t[i].pid = 0;
			t[i].what[0] = '\0';
			rc = 125;
		}
	int64_t deadline = vb_now_ms() + timeout_ms;
	for (size_t i = 0; i < n; i++) {
		if (!t[i].pid) {
			if (t[i].what[0])
				printf("%s %s\n", t[i].label, t[i].what);
			continue;
		}
		int64_t left = deadline - vb_now_ms();
		int r = vb_pid_terminate(t[i].pid, t[i].start, 0, left > 0 ? (int)left : 0, &err);
		if (r == 0) {
			if (t[i].run_id[0])
				describe_run_end(runs_dir, &t[i]);
			printf("stopped %s %s\n", t[i].label, t[i].what);
		} else {
			fprintf(stderr,
				"voidbox: %s is still running after %d s (pid %ld): try again, or "
				"'kill -KILL %ld'\n",
				t[i].label, timeout_ms / 1000, t[i].pid, t[i].pid);
			rc = rc ? rc : 1;
		}
	}
	return rc;
}

int vb_cli_stop_run(const char *runs_dir, const char *id, int timeout_ms, vb_error *err)
{
	struct target t;
	memset(&t, 0, sizeof(t));
	if (set_run_target(runs_dir, id, &t, err) < 0)
		return -1;
	if (!t.pid)
		return 0;
	int rc = stop_all(runs_dir, &t, 1, timeout_ms);
	return rc == 0 ? 0 : rc == 1 ? 1 : vb_error_set(err, VB_E_RUNTIME, "cannot stop run %s", id);
}

int vb_cmd_stop(int argc, char **argv)
{
	vb_error err = { 0 };
	unsigned long secs = STOP_DEFAULT_S;
	const char *queries[TARGETS_MAX];
	size_t nq = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(a, "--timeout") && i + 1 < argc)
			v = argv[++i];
		else if (!strncmp(a, "--timeout=", 10))
			v = a + 10;
		else if (a[0] == '-') {
			static const char *const values[] = { "--timeout", NULL };
			static const char *const flags[] = { "--help", NULL };
			vb_cli_bad_option("stop", a, values, flags, &err);
			return vb_cli_fail(&err);
		} else if (nq < TARGETS_MAX) {
			queries[nq++] = a;
		} else {
			vb_error_set(&err, VB_E_USAGE, "stop: at most %d at a time", TARGETS_MAX);
			return vb_cli_fail(&err);
		}
		if (v && vb_cli_parse_uint(v, 3600, &secs) < 0) {
			vb_error_set(&err, VB_E_USAGE, "--timeout: expected seconds (0..3600)");
			return vb_cli_fail(&err);
		}
	}
	if (!nq) {
		vb_error_set(&err, VB_E_USAGE, "stop: which run or VM? (voidbox stop ID...; see voidbox ps)");
		return vb_cli_fail(&err);
	}
	_cleanup_free_ char *runs = vb_runs_dir(&err);
	if (!runs)
		return vb_cli_fail(&err);
	struct vb_vm_live *vms = NULL;
	size_t n_vms = 0;
	if (vb_vms_live(&vms, &n_vms, &err) < 0)
		return vb_cli_fail(&err);
	struct target t[TARGETS_MAX];
	/* every id resolves before anything is signalled */
	for (size_t i = 0; i < nq; i++)
		if (resolve(runs, queries[i], vms, n_vms, &t[i], &err) < 0) {
			free(vms);
			return vb_cli_fail(&err);
		}
	free(vms);
	return stop_all(runs, t, nq, (int)secs * 1000);
}
