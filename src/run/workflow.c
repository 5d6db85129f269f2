/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kind: workflow.  One VM for every step.  A step starts once all it
 * depends on (depends_on and stdin_from) succeeded, on a thread of its own
 * with its own exec in the shared VM, at most max_parallel at once; a step
 * whose dependency failed or was skipped is skipped.  A step's output is
 * its stdout; the workflow's is output_step's (default: the last step).
 * --input is written to /workspace/input.json before the first step.
 * mode: service steps run without a timeout (and the workflow waits for
 * them like for any other step).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "run/engine.h"
#include "util/util.h"

struct wf {
	struct vb_run *r;
	vb_sandbox *sb;
	struct vb_run_boot boot; /* how the VM started, said by every step */
	pthread_cond_t cv;      /* with r->mu: a step finished */
	size_t running;         /* under r->mu */
};

struct step_job {
	struct wf *w;
	size_t i;
	pthread_t tid;
	int started;
};

int vb_run_workflow_prepare(struct vb_run *r, vb_error *err)
{
	r->vmc = calloc(1, sizeof(*r->vmc));
	if (!r->vmc)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	r->n_vmc = 1;
	/* every image before the VM boots: one that cannot be had fails the
	 * run here, before any step ran */
	const struct vb_spec_vm *vm = &r->spec->vm;
	struct vb_run_pull gp = { .policy = vb_run_pull_policy(r, vm->guest_image),
				  .progress = r->opts.notices };
	if (vb_run_vm_config_pull(vm, r->opts.accel_set ? &r->opts.accel : NULL, &gp, r->vmc,
				  err) < 0 ||
	    (vm->image && vb_run_vm_image(r, 0, vm->image, err) < 0) ||
	    vb_run_add_extras(r, r->vmc, err) < 0 || vb_run_boot_prepare(r, r->vmc, 0, err) < 0) {
		vb_error_prefix(err, "workflow '%s'", r->spec->name.s ? r->spec->name.s : "");
		return -1;
	}
	vb_run_vmconf_notify(r->vmc, r->opts.notices);
	return 0;
}

static enum vb_unit_state get_state(struct vb_run *r, const struct vb_run_unit *u)
{
	pthread_mutex_lock(&r->mu);
	enum vb_unit_state s = u->state;
	pthread_mutex_unlock(&r->mu);
	return s;
}

static void run_step(struct wf *w, size_t i)
{
	struct vb_run *r = w->r;
	const struct vb_spec_step *st = &r->spec->workflow.steps[i];
	struct vb_run_unit *u = &r->units[i];
	vb_run_unit_start(r, u, w->sb);
	/* Every step reports the one VM it runs in (same vm_id and boot_id),
	 * so that progress and `voidbox ps` see where each step runs. */
	vb_run_unit_booted(r, u, w->sb, &w->boot);
	const char **argv = calloc(st->run.args.n + 2, sizeof(*argv));
	if (!argv) {
		vb_run_unit_fail(r, u, w->sb, VB_E_RUNTIME, "out of memory");
		return;
	}
	argv[0] = st->run.program.s;
	for (size_t a = 0; a < st->run.args.n; a++)
		argv[a + 1] = st->run.args.v[a].s ? st->run.args.v[a].s : "";
	vb_error err = { 0 };
	if (vb_run_unit_files(r, u, &err) < 0) {
		vb_run_unit_fail(r, u, w->sb, VB_E_RUNTIME, "%s", err.msg);
		free(argv);
		return;
	}
	int in_fd = -1;
	if (st->run.stdin_index != SIZE_MAX) {
		/* the producer succeeded (readiness) and its stdout is its output */
		const struct vb_run_unit *p = &r->units[st->run.stdin_index];
		in_fd = p->output_path ? open(p->output_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
				       : open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (in_fd < 0) {
			vb_run_unit_fail(r, u, w->sb, VB_E_RUNTIME,
					 "cannot open the stdout it reads: %s", strerror(errno));
			free(argv);
			return;
		}
	}
	unsigned timeout_ms = r->vmc[0].timeout_ms;
	if (st->timeout_secs.set && st->timeout_secs.v > 0)
		timeout_ms = st->timeout_secs.v > UINT32_MAX / 1000 ? UINT32_MAX
								    : (unsigned)st->timeout_secs.v * 1000;
	if (st->service)
		timeout_ms = 0;
	struct vb_exec_params p = { .argv = argv, .env = r->vmc[0].env, .timeout_ms = timeout_ms };
	int code = -1;
	char why[512];
	if (vb_run_exec(r, u, w->sb, &p, in_fd, &code, &err) < 0) {
		vb_run_unit_fail_err(r, u, w->sb, &err);
	} else {
		u->exit_code = code == VB_RUN_TIMED_OUT ? 124 : code;
		if (vb_run_unit_settle(r, u, NULL, 0, &err) < 0)
			vb_run_unit_fail(r, u, w->sb, VB_E_RUNTIME, "%s", err.msg);
		else if (code == VB_RUN_TIMED_OUT)
			vb_run_unit_fail(r, u, w->sb, VB_E_OK, "timed out after %u s (exit code 124)",
					 timeout_ms / 1000);
		else if (code != 0)
			vb_run_unit_fail(r, u, w->sb, VB_E_OK, "exit code %d", code);
		else if (u->out_overflow == 1)
			vb_run_unit_fail(r, u, w->sb, VB_E_OK, "stdout is larger than %zu MiB",
					 VB_RUN_MAX_OUTPUT >> 20);
		else if (u->out_overflow) {
			vb_run_budget_msg(r, why, sizeof(why));
			vb_run_unit_fail(r, u, w->sb, VB_E_OK, "%s", why);
		} else {
			vb_run_unit_ok(r, u, w->sb);
		}
	}
	if (u->out_fd >= 0) {
		close(u->out_fd);
		u->out_fd = -1;
	}
	if (in_fd >= 0)
		close(in_fd);
	free(argv);
}

static void *step_main(void *arg)
{
	struct step_job *j = arg;
	run_step(j->w, j->i);
	pthread_mutex_lock(&j->w->r->mu);
	j->w->running--;
	pthread_cond_signal(&j->w->cv);
	pthread_mutex_unlock(&j->w->r->mu);
	return NULL;
}

/* 1: ready; 0: waiting; -1: will never run, (why) says so. */
static int readiness(struct vb_run *r, const struct vb_spec_step *st, char *why, size_t n)
{
	const struct vb_spec_workflow *wf = &r->spec->workflow;
	int ready = 1;
	for (size_t d = 0; d <= st->depends_on.n; d++) {
		size_t j = d < st->depends_on.n ? st->dep_index[d] : st->run.stdin_index;
		if (j == SIZE_MAX)
			continue;
		enum vb_unit_state s = get_state(r, &r->units[j]);
		if (s == VB_UNIT_FAILED || s == VB_UNIT_SKIPPED) {
			snprintf(why, n, "'%s' %s", wf->steps[j].name.s,
				 s == VB_UNIT_FAILED ? "failed" : "was skipped");
			return -1;
		}
		if (s != VB_UNIT_OK)
			ready = 0;
	}
	return ready;
}

/* Start what is ready, skip what never will be.  Returns how many steps
 * changed state; (*queued) counts those still waiting. */
static size_t schedule(struct wf *w, struct step_job *jobs, size_t *queued)
{
	struct vb_run *r = w->r;
	const struct vb_spec_workflow *wf = &r->spec->workflow;
	int cancel = vb_run_cancelled(r);
	size_t acted = 0;
	*queued = 0;
	for (size_t i = 0; i < wf->n_steps; i++) {
		struct vb_run_unit *u = &r->units[i];
		if (get_state(r, u) != VB_UNIT_QUEUED)
			continue;
		char why[300];
		int ready = cancel ? -1 : readiness(r, &wf->steps[i], why, sizeof(why));
		if (ready < 0) {
			vb_run_unit_skip(r, u, cancel ? "the run was cancelled" : why);
			acted++;
			continue;
		}
		(*queued)++;
		if (!ready)
			continue;
		pthread_mutex_lock(&r->mu);
		int room = w->running < r->opts.max_parallel;
		if (room) {
			w->running++;
			u->state = VB_UNIT_RUNNING;
		}
		pthread_mutex_unlock(&r->mu);
		if (!room)
			continue;
		(*queued)--;
		acted++;
		jobs[i] = (struct step_job){ .w = w, .i = i };
		if (pthread_create(&jobs[i].tid, NULL, step_main, &jobs[i]) == 0) {
			jobs[i].started = 1;
			continue;
		}
		pthread_mutex_lock(&r->mu);
		w->running--;
		pthread_mutex_unlock(&r->mu);
		vb_run_unit_start(r, u, w->sb);
		vb_run_unit_fail(r, u, w->sb, VB_E_RUNTIME, "cannot start a thread");
	}
	return acted;
}

static void run_steps(struct wf *w, struct step_job *jobs)
{
	struct vb_run *r = w->r;
	for (;;) {
		size_t queued;
		size_t acted = schedule(w, jobs, &queued);
		pthread_mutex_lock(&r->mu);
		if (!acted && w->running == 0) {
			pthread_mutex_unlock(&r->mu);
			break;
		}
		if (!acted) {
			/* wake for a finished step, or now and then to notice a cancel */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 200 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&w->cv, &r->mu, &ts);
		}
		pthread_mutex_unlock(&r->mu);
	}
	/* Nothing runs and nothing was started: anything still queued cannot
	 * run (the spec check rules out cycles, so this is only a guard). */
	for (size_t i = 0; i < r->spec->workflow.n_steps; i++)
		if (get_state(r, &r->units[i]) == VB_UNIT_QUEUED)
			vb_run_unit_skip(r, &r->units[i], "its dependencies never completed");
}

static void skip_all(struct vb_run *r, const char *why)
{
	for (size_t i = 0; i < r->spec->workflow.n_steps; i++)
		if (r->units[i].state == VB_UNIT_QUEUED)
			vb_run_unit_skip(r, &r->units[i], why);
}

int vb_run_workflow(struct vb_run *r, vb_error *err)
{
	const struct vb_spec_workflow *wf = &r->spec->workflow;
	struct vb_sandbox_config cfg = r->vmc[0].cfg;
	cfg.name = r->spec->name.s;
	cfg.cancel_fd = r->opts.cancel_fd;
	/* The steps share one VM: the first step to run is the one shown
	 * booting it (its STAGE_STARTED now, its VM_BOOTED when it runs). */
	struct vb_run_unit *first = NULL;
	for (size_t i = 0; i < wf->n_steps && !first; i++)
		if (!wf->steps[i].depends_on.n && wf->steps[i].run.stdin_index == SIZE_MAX)
			first = &r->units[i];
	if (first) {
		vb_run_unit_start(r, first, NULL);
		first->boot_announced = 1;
		pthread_mutex_lock(&r->mu);
		first->state = VB_UNIT_QUEUED; /* for the scheduler to start it */
		pthread_mutex_unlock(&r->mu);
	}
	vb_error berr = { 0 };
	/* the steps share the VM: its network is reported as the first's */
	struct vb_run_net net;
	vb_run_net_prepare(&net, r, first ? first->name : NULL, first ? first->dir : NULL, &cfg);
	/* the image, had before the VM boots: every step runs on it (they
	 * share the VM), so every step's VM_BOOTED names it */
	for (size_t i = 0; i < wf->n_steps; i++)
		vb_run_unit_image(r, &r->units[i], 0);
	struct wf w = { .r = r };
	vb_sandbox *sb = vb_run_boot(r, r->vmc, &cfg, &w.boot, &berr);
	if (!sb) {
		if (berr.kind == VB_E_CANCELLED) {
			vb_run_set_error(r, VB_E_CANCELLED, "cancelled");
			if (first)
				vb_run_unit_fail(r, first, NULL, VB_E_CANCELLED, "cancelled while booting");
			skip_all(r, "the run was cancelled");
		} else {
			const char *failed = r->vmc->boot == VB_RUN_BOOT_SNAPSHOT ? "was not restored"
										  : "failed to boot";
			vb_run_set_error(r, VB_E_RUNTIME, "the workflow's VM %s: %s", failed, berr.msg);
			if (first)
				vb_run_unit_fail(r, first, NULL, VB_E_RUNTIME, "VM %s: %s", failed,
						 berr.msg);
			char why[64];
			snprintf(why, sizeof(why), "the workflow's VM %s", failed);
			skip_all(r, why);
		}
		return 0;
	}

	vb_run_net_booted(&net, sb, &cfg);
	/* --input: there for every step that wants it, as in a pipeline */
	if (r->opts.input && vb_file_write(sb, "/workspace/input.json", r->opts.input,
					   r->opts.input_len, 0644, 0, &berr) < 0) {
		vb_run_set_error(r, berr.kind == VB_E_VMDIED ? VB_E_VMDIED : VB_E_RUNTIME,
				 "cannot give the workflow its input: %s", berr.msg);
		if (first)
			vb_run_unit_fail(r, first, sb, berr.kind == VB_E_VMDIED ? VB_E_VMDIED : VB_E_RUNTIME,
					 "cannot write its input: %s", berr.msg);
		skip_all(r, "the workflow's input could not be written");
		vb_run_net_summary(&net, sb, &cfg);
		vb_sandbox_free(sb);
		return 0;
	}
	struct step_job *jobs = calloc(wf->n_steps, sizeof(*jobs));
	w.sb = sb;
	if (!jobs || pthread_cond_init(&w.cv, NULL) != 0) {
		free(jobs);
		vb_sandbox_free(sb);
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	run_steps(&w, jobs);
	for (size_t i = 0; i < wf->n_steps; i++)
		if (jobs[i].started)
			pthread_join(jobs[i].tid, NULL);
	pthread_cond_destroy(&w.cv);
	free(jobs);
	vb_run_net_summary(&net, sb, &cfg);
	vb_sandbox_free(sb);

	for (size_t i = 0; i < wf->n_steps && !r->error; i++) {
		const struct vb_run_unit *u = &r->units[i];
		if (u->state == VB_UNIT_FAILED && u->fail_kind != VB_E_CANCELLED)
			vb_run_set_error(r, u->fail_kind, "step '%s' failed: %s", u->name,
					 u->error ? u->error : "unknown error");
	}
	if (!r->error) {
		for (size_t i = 0; i < wf->n_steps; i++)
			if (r->units[i].state != VB_UNIT_OK) {
				vb_run_set_error(r, VB_E_CANCELLED, "cancelled");
				break;
			}
	}
	size_t out = wf->output_step.s ? wf->output_index : wf->n_steps - 1;
	const struct vb_run_unit *o = &r->units[out];
	if (!r->error && o->output_path) {
		if (!(r->final_path = strdup(o->output_path)))
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
		r->final_len = o->output_len;
	}
	return 0;
}
