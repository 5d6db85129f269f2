/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What every box and step shares: events, state changes, cancellation, and
 * running one program to its exit with its output streamed as events.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "run/engine.h"
#include "util/term.h"
#include "util/util.h"

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void vb_run_emit(struct vb_run *r, struct vb_event *ev)
{
	ev->time_ms = wall_ms();
	ev->run_id = r->run_id;
	if (r->rec)
		vb_record_event(ev, r->rec);
	if (r->opts.on_event)
		r->opts.on_event(ev, r->opts.opaque);
}

int vb_run_cancelled(struct vb_run *r)
{
	if (atomic_load(&r->cancelled))
		return 1;
	if (r->opts.cancel_fd > 0) {
		struct pollfd p = { .fd = r->opts.cancel_fd, .events = POLLIN };
		if (poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
			atomic_store(&r->cancelled, 1);
			return 1;
		}
	}
	return 0;
}

uint8_t *vb_run_memdup(const void *p, size_t n)
{
	uint8_t *d = malloc(n + 1);
	if (!d)
		return NULL;
	if (n)
		memcpy(d, p, n);
	d[n] = '\0';
	return d;
}

static void vm_facts(struct vb_event *ev, vb_sandbox *sb)
{
	if (!sb)
		return;
	ev->vm_id = vb_sandbox_id(sb);
	ev->accel = vb_sandbox_accel(sb);
	ev->isolation = vb_sandbox_isolation(sb);
}

static void set_state(struct vb_run *r, struct vb_run_unit *u, enum vb_unit_state s)
{
	pthread_mutex_lock(&r->mu);
	u->state = s;
	pthread_mutex_unlock(&r->mu);
}

void vb_run_unit_start(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb)
{
	if (u->boot_announced) { /* started (booting the VM) already: said once */
		set_state(r, u, VB_UNIT_RUNNING);
		return;
	}
	u->started_ms = vb_now_ms();
	set_state(r, u, VB_UNIT_RUNNING);
	struct vb_event ev = { .type = VB_EV_STAGE_STARTED, .stage = u->name };
	vm_facts(&ev, sb);
	vb_run_emit(r, &ev);
}

void vb_run_unit_booted(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb,
			struct vb_run_boot *b)
{
	free(u->vm_id);
	u->vm_id = strdup(vb_sandbox_id(sb));
	const char *snap = vb_sandbox_snapshot_id(sb);
	free(u->snapshot);
	u->snapshot = snap ? strdup(snap) : NULL;
	u->warm = snap && b && b->warm;
	const char *notice = b && b->notice[0] && !atomic_exchange(&b->said, 1) ? b->notice : NULL;
	struct vb_event ev = {
		.type = VB_EV_VM_BOOTED,
		.stage = u->name,
		.kernel = vb_sandbox_kernel_release(sb),
		.boot_id = vb_sandbox_boot_id(sb),
		.boot_ms = vb_sandbox_boot_ms(sb),
		.accel_reason = vb_sandbox_accel_info(sb)->reason,
		.image = u->image,
		.image_digest = u->image_digest,
		.snapshot = snap,
		.warm = u->warm,
		.boot_notice = notice,
	};
	vm_facts(&ev, sb);
	vb_run_emit(r, &ev);
	char accel[1024];
	if (r->opts.notices && vb_accel_notice(vb_sandbox_accel_info(sb), accel, sizeof(accel))) {
		fprintf(r->opts.notices, "%s\n", accel);
		fflush(r->opts.notices);
	}
	if (r->opts.notices && notice) { /* the stage goes on, booted cold */
		char stage[80], why[1300];
		fprintf(r->opts.notices, "voidbox: stage %s: %s\n",
			vb_term_copy(stage, sizeof(stage), u->name, 0),
			vb_term_copy(why, sizeof(why), notice, 0));
		fflush(r->opts.notices);
	}
}

static void finish(struct vb_run_unit *u)
{
	u->duration_ms = u->started_ms ? vb_now_ms() - u->started_ms : 0;
}

void vb_run_unit_ok(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb)
{
	finish(u);
	set_state(r, u, VB_UNIT_OK);
	struct vb_event ev = {
		.type = VB_EV_STAGE_COMPLETED,
		.stage = u->name,
		.exit_code = u->exit_code,
		.success = 1,
		.duration_ms = u->duration_ms,
		.output = u->preview,
		.output_len = u->preview_len,
		.output_size = u->output_len,
		.output_path = u->output_path,
	};
	vm_facts(&ev, sb);
	vb_run_emit(r, &ev);
}

void vb_run_unit_fail(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb,
		      enum vb_error_kind kind, const char *fmt, ...)
{
	char why[1200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	finish(u);
	free(u->error);
	u->error = strdup(why);
	u->fail_kind = kind;
	set_state(r, u, VB_UNIT_FAILED);
	struct vb_event ev = {
		.type = VB_EV_STAGE_FAILED,
		.stage = u->name,
		.exit_code = u->exit_code,
		.duration_ms = u->duration_ms,
		.error = why,
	};
	vm_facts(&ev, sb);
	vb_run_emit(r, &ev);
}

void vb_run_unit_fail_err(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb,
			  const vb_error *err)
{
	switch (err->kind) {
	case VB_E_NOTFOUND:
		u->exit_code = 127;
		vb_run_unit_fail(r, u, sb, VB_E_OK, "exit code 127: %s", err->msg);
		break;
	case VB_E_NOEXEC:
		u->exit_code = 126;
		vb_run_unit_fail(r, u, sb, VB_E_OK, "exit code 126: %s", err->msg);
		break;
	case VB_E_CANCELLED:
		vb_run_unit_fail(r, u, sb, VB_E_CANCELLED, "cancelled");
		break;
	case VB_E_VMDIED:
		vb_run_unit_fail(r, u, sb, VB_E_VMDIED, "VM died: %s", err->msg);
		break;
	default:
		vb_run_unit_fail(r, u, sb, err->kind == VB_E_OK ? VB_E_RUNTIME : err->kind, "%s",
				 err->msg);
		break;
	}
}

void vb_run_unit_skip(struct vb_run *r, struct vb_run_unit *u, const char *why)
{
	free(u->error);
	u->error = strdup(why);
	set_state(r, u, VB_UNIT_SKIPPED);
	struct vb_event ev = { .type = VB_EV_STAGE_SKIPPED, .stage = u->name, .error = why };
	vb_run_emit(r, &ev);
}

/* Stdout to its file, within the box limit and the run's budget; past
 * either the rest is dropped (and the box fails if it carries stdout). */
static int collect(struct vb_run *r, struct vb_run_unit *u, const uint8_t *d, size_t n)
{
	if (u->out_fd < 0 || u->out_overflow || !n)
		return 0;
	if (u->out_len + n > VB_RUN_MAX_OUTPUT) {
		u->out_overflow = 1;
		n = VB_RUN_MAX_OUTPUT - u->out_len;
	}
	if (n && vb_run_budget_take(r, n) < 0) {
		u->out_overflow = 2;
		return 0;
	}
	if (n && vb_write_full(u->out_fd, d, n) < 0)
		return -1;
	u->out_len += n;
	return 0;
}

static void chunk(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb, const char *stream,
		  const uint8_t *d, size_t n, int structured)
{
	struct vb_event ev = {
		.type = VB_EV_LOG_CHUNK, .stage = u->name, .stream = stream, .data = d, .len = n,
		.structured = structured,
	};
	vm_facts(&ev, sb);
	vb_run_emit(r, &ev);
}

/* Stdin from a file, one piece at a time as the guest takes it. */
struct feeder {
	int fd;
	uint8_t buf[64 << 10];
	size_t off, len;
	int closed;
};

static int feed(vb_exec *ex, struct feeder *f, vb_error *err)
{
	while (!f->closed && vb_exec_stdin_room(ex) > 0) {
		if (f->off == f->len) {
			ssize_t n = vb_read_full(f->fd, f->buf, sizeof(f->buf));
			if (n < 0)
				return vb_error_errno(err, errno, "reading the program's stdin");
			f->off = 0;
			f->len = (size_t)n;
		}
		if (f->len == 0) {
			f->closed = 1;
			return vb_exec_close_stdin(ex, err);
		}
		ssize_t w = vb_exec_write(ex, f->buf + f->off, f->len - f->off, 0, err);
		if (w < 0)
			return -1;
		f->off += (size_t)w;
	}
	return 0;
}

/* Returns 1 with *code when the program exited, 0 when no more events are
 * waiting, -1 on error. */
static int drain(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb, vb_exec *ex, int *code,
		 const struct vb_run_tap *tap, vb_error *err)
{
	struct vb_exec_event ev;
	int n;
	while ((n = vb_exec_next(ex, &ev, 0, err)) > 0) {
		if (ev.kind == VB_EXEC_STDOUT) {
			chunk(r, u, sb, "stdout", ev.data, ev.len, tap && tap->structured);
			if (collect(r, u, ev.data, ev.len) < 0)
				return vb_error_errno(err, errno, "cannot save the output of '%s'",
						      u->name);
			if (tap && tap->stdout_fn)
				tap->stdout_fn(ev.data, ev.len, tap->opaque);
		} else if (ev.kind == VB_EXEC_STDERR) {
			chunk(r, u, sb, "stderr", ev.data, ev.len, 0);
		} else {
			*code = ev.timed_out ? VB_RUN_TIMED_OUT : ev.exit_code;
			return 1;
		}
	}
	return n;
}

int vb_run_exec(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb,
		const struct vb_exec_params *p, int in_fd, int *code, vb_error *err)
{
	return vb_run_exec_tap(r, u, sb, p, in_fd, NULL, code, err);
}

int vb_run_exec_tap(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb,
		    const struct vb_exec_params *p, int in_fd, const struct vb_run_tap *tap,
		    int *code, vb_error *err)
{
	struct vb_exec_params q = *p;
	q.want_stdin = in_fd >= 0;
	_cleanup_free_ struct feeder *in = NULL;
	if (in_fd >= 0) {
		if (!(in = calloc(1, sizeof(*in))))
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
		in->fd = in_fd;
	}
	vb_exec *ex = vb_exec_start(sb, &q, err);
	if (!ex)
		return -1;
	int rc;
	int64_t kill_at = 0, guard = 0;
	if (p->timeout_ms)
		guard = vb_now_ms() + p->timeout_ms + VB_RUN_TIMEOUT_GUARD_MS;
	for (;;) {
		if (in && (rc = feed(ex, in, err)) < 0)
			break;
		rc = drain(r, u, sb, ex, code, tap, err);
		if (rc != 0)
			break;
		int64_t now = vb_now_ms();
		if (!kill_at && vb_run_cancelled(r)) {
			vb_error ignore;
			vb_exec_signal(ex, SIGKILL, &ignore);
			kill_at = now + VB_RUN_CANCEL_GRACE_MS;
		}
		if (kill_at && now >= kill_at) {
			rc = -1;
			break;
		}
		if (guard && now >= guard) {
			rc = vb_error_set(err, VB_E_RUNTIME,
					  "the guest did not stop the program at its timeout");
			break;
		}
		/* the record's pooled log lines go out within a second or so
		 * even while the program is silent */
		int wait_ms = r->rec ? 1000 : -1;
		if (r->rec)
			vb_record_tick(r->rec);
		if (kill_at && (wait_ms < 0 || kill_at - now < wait_ms))
			wait_ms = (int)(kill_at - now);
		if (guard && (wait_ms < 0 || guard - now < wait_ms))
			wait_ms = (int)(guard - now);
		struct pollfd pf[2] = {
			{ .fd = vb_exec_fd(ex), .events = POLLIN },
			{ .fd = !kill_at && r->opts.cancel_fd > 0 ? r->opts.cancel_fd : -1,
			  .events = POLLIN },
		};
		if (poll(pf, 2, wait_ms) < 0 && errno != EINTR) {
			rc = vb_error_errno(err, errno, "poll");
			break;
		}
	}
	vb_exec_free(ex);
	if (kill_at) /* we killed it: whatever it said last, the run was cancelled */
		return vb_error_set(err, VB_E_CANCELLED, "cancelled");
	return rc > 0 ? 0 : -1;
}
