/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Processes in the guest: start, stream output with flow control, feed
 * stdin, signal, resize a terminal, collect the exit status.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sandbox/sandbox_int.h"
#include "util/util.h"

_Static_assert(VB_EXEC_TERM_MAX == VB_TERM_MAX, "the API and the wire agree on terminal sizes");

/* vb_exec_next() hands back control at least this often while events keep
 * coming, so the caller's loop checks its signals, cancellation and
 * deadlines whatever the guest sends. */
#define EXEC_SLICE_MS 100
/* Room in an exec's queue beyond the output window: EXEC_STARTED, and
 * EXEC_EXIT or ERROR (1 KiB of message at most). */
#define EXEC_QUEUE_SLACK 8192u

#define EXEC_TYPES                                                                          \
	(VB_CHAN_TYPE(VB_MSG_EXEC_STARTED) | VB_CHAN_TYPE(VB_MSG_EXEC_OUTPUT) |               \
	 VB_CHAN_TYPE(VB_MSG_EXEC_STDIN_ACK) | VB_CHAN_TYPE(VB_MSG_EXEC_EXIT) |               \
	 VB_CHAN_TYPE(VB_MSG_ERROR))
#define EXEC_FINAL (VB_CHAN_TYPE(VB_MSG_EXEC_EXIT) | VB_CHAN_TYPE(VB_MSG_ERROR))

struct vb_exec {
	vb_sandbox *sb;
	struct vb_chan_slot slot;
	pid_t pid;
	struct vb_chan_frame *cur; /* frame whose data the caller holds */
	size_t cur_len;            /* output bytes in it, acked when released */
	/* under the channel lock: */
	uint64_t stdin_sent, stdin_acked;
	uint64_t out_got, out_acked; /* output frames' VB_CHAN_COST */
	int started;                 /* EXEC_STARTED arrived */
	int stdin_closed, exited;
	int pty;
	int64_t busy_since; /* events handed out back to back since then; 0 = idle */
};

/* Reader thread, channel lock held: the exec's state machine, checked as
 * frames arrive (before they are queued), and stdin credit coming back. */
static int exec_filter(struct vb_chan_slot *slot, const struct vb_chan_frame *f,
		       const char **why)
{
	struct vb_exec *ex = slot->opaque;
	uint16_t type = f->hdr.type;
	if (type == VB_MSG_ERROR)
		return 0;
	if (type == VB_MSG_EXEC_STARTED) {
		if (ex->started) {
			*why = "a second EXEC_STARTED";
			return -1;
		}
		ex->started = 1;
		return 0;
	}
	if (!ex->started) {
		*why = "exec frames before EXEC_STARTED";
		return -1;
	}
	if (type == VB_MSG_EXEC_OUTPUT) {
		/* the agent spends its credit in the same unit: whole frames */
		ex->out_got += VB_CHAN_COST(f->hdr.len);
		if (ex->out_got - ex->out_acked > VB_OUTPUT_WINDOW) {
			*why = "EXEC_OUTPUT beyond its flow-control window";
			return -1;
		}
		return 0;
	}
	if (type != VB_MSG_EXEC_STDIN_ACK)
		return 0;
	uint64_t n = 0;
	if (vb_payload_u64(f->payload, f->hdr.len, VB_TAG_COUNT, &n) < 0 || n == 0 ||
	    n > ex->stdin_sent - ex->stdin_acked) {
		*why = "EXEC_STDIN_ACK for stdin that was never sent";
		return -1;
	}
	ex->stdin_acked += n;
	uint64_t one = 1;
	ssize_t r = write(slot->efd, &one, sizeof(one));
	(void)r;
	return 1;
}

static int send_simple(struct vb_exec *ex, uint16_t type, uint16_t flags, uint16_t tag,
		       uint64_t value, vb_error *err)
{
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, type, flags, 0);
	if (tag)
		vb_msg_put_u64(&b, tag, value);
	vb_msg_end(&b);
	int rc = vb_chan_send(ex->sb->ch, &b, ex->slot.id, err);
	vb_buf_free(&b);
	return rc;
}

vb_exec *vb_exec_start(vb_sandbox *sb, const struct vb_exec_params *p, vb_error *err)
{
	if (!p->argv || !p->argv[0] || !p->argv[0][0]) {
		vb_error_set(err, VB_E_USAGE, "no program to run");
		return NULL;
	}
	if (p->pty && (p->rows > VB_TERM_MAX || p->cols > VB_TERM_MAX)) {
		vb_error_set(err, VB_E_USAGE, "terminal size %ux%u: at most %u rows and columns",
			     p->rows, p->cols, VB_TERM_MAX);
		return NULL;
	}
	struct vb_exec *ex = calloc(1, sizeof(*ex));
	if (!ex) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	ex->sb = sb;
	ex->stdin_closed = !p->want_stdin;
	ex->pty = p->pty != 0;
	ex->slot.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ex->slot.filter = exec_filter;
	ex->slot.opaque = ex;
	ex->slot.max_queued = VB_OUTPUT_WINDOW + EXEC_QUEUE_SLACK;
	ex->slot.accept = EXEC_TYPES;
	ex->slot.final = EXEC_FINAL;
	if (ex->slot.efd < 0) {
		vb_error_errno(err, errno, "eventfd");
		free(ex);
		return NULL;
	}
	if (vb_chan_register(sb->ch, &ex->slot, err) < 0) {
		close(ex->slot.efd);
		free(ex);
		vb_sandbox_died(sb, err);
		return NULL;
	}

	size_t argc = 0, envc = 0;
	while (p->argv[argc])
		argc++;
	while (p->env && p->env[envc])
		envc++;
	struct vb_exec_req req = {
		.argv = (char **)(uintptr_t)p->argv,
		.argc = argc,
		.envp = (char **)(uintptr_t)p->env,
		.envc = envc,
		.cwd = (char *)(uintptr_t)p->cwd,
		.uid = p->as_root ? 0 : 1000,
		.gid = p->as_root ? 0 : 1000,
		.timeout_ms = p->timeout_ms,
		.want_stdin = p->want_stdin,
		.pty = ex->pty,
		.rows = ex->pty ? p->rows : 0,
		.cols = ex->pty ? p->cols : 0,
		/* a name is resolved in the guest: only it sees the root's passwd */
		.user = p->as_root ? NULL : (char *)(uintptr_t)p->user,
		.default_user = !p->as_root && !p->user && sb->root_user,
	};
	struct vb_buf b = { 0 };
	struct vb_chan_frame *f = NULL;
	int rc = vb_exec_req_encode(&b, 0, &req);
	if (rc < 0)
		vb_error_set(err, VB_E_USAGE, "the command line is too large");
	else
		rc = vb_chan_send(sb->ch, &b, ex->slot.id, err);
	vb_buf_free(&b);
	if (rc == 0) {
		rc = vb_chan_recv(sb->ch, &ex->slot, &f, VB_CALL_TIMEOUT_MS, err);
		if (rc == 0)
			rc = vb_error_set(err, VB_E_RUNTIME, "the guest agent did not start the program");
		else if (rc < 0) {
			if (!err || err->kind != VB_E_CANCELLED)
				vb_sandbox_died(sb, err);
		} else {
			rc = 0;
		}
	}
	if (rc == 0 && f->hdr.type == VB_MSG_ERROR) {
		vb_chan_error_from(f, err);
		rc = -1;
	} else if (rc == 0 && f->hdr.type == VB_MSG_EXEC_STARTED) {
		uint64_t pid = 0;
		vb_payload_u64(f->payload, f->hdr.len, VB_TAG_PID, &pid);
		ex->pid = (pid_t)(pid & 0x7fffffff);
	} else if (rc == 0) { /* the filter lets nothing else come first */
		rc = vb_chan_violation(sb->ch, err, "%s frame before EXEC_STARTED",
				       vb_msg_name(f->hdr.type));
		vb_sandbox_died(sb, err);
	}
	free(f);
	if (rc < 0) {
		ex->exited = 1; /* nothing to kill */
		vb_exec_free(ex);
		return NULL;
	}
	return ex;
}

/* Hand the previous chunk's bytes back to the guest as credit. */
static int release_cur(struct vb_exec *ex, vb_error *err)
{
	int rc = 0;
	if (ex->cur && ex->cur_len && !ex->exited) {
		vb_chan_lock(ex->sb->ch);
		ex->out_acked += ex->cur_len;
		vb_chan_unlock(ex->sb->ch);
		rc = send_simple(ex, VB_MSG_EXEC_ACK, 0, VB_TAG_COUNT, ex->cur_len, err);
	}
	free(ex->cur);
	ex->cur = NULL;
	ex->cur_len = 0;
	return rc;
}

/* Turn one frame into an event: 1 = event, -1 = error (f is consumed). */
static int decode_event(struct vb_exec *ex, struct vb_chan_frame *f, struct vb_exec_event *ev,
			vb_error *err)
{
	memset(ev, 0, sizeof(*ev));
	switch (f->hdr.type) {
	case VB_MSG_EXEC_OUTPUT: {
		uint64_t stream = 0;
		struct vb_field data = { 0 };
		if (vb_payload_u64(f->payload, f->hdr.len, VB_TAG_STREAM, &stream) < 0 ||
		    vb_payload_find(f->payload, f->hdr.len, VB_TAG_DATA, &data) < 0 ||
		    (stream != 1 && (stream != 2 || ex->pty)) || !data.data || data.len == 0 ||
		    data.len > VB_CHUNK_MAX) {
			free(f);
			vb_chan_violation(ex->sb->ch, err, "a malformed EXEC_OUTPUT frame");
			return vb_sandbox_died(ex->sb, err);
		}
		ev->kind = stream == 1 ? VB_EXEC_STDOUT : VB_EXEC_STDERR;
		ev->data = data.data;
		ev->len = data.len;
		ex->cur = f;
		ex->cur_len = VB_CHAN_COST(f->hdr.len); /* the credit it took */
		return 1;
	}
	case VB_MSG_EXEC_EXIT: {
		uint64_t code = 0, sig = 0, timed_out = 0;
		vb_payload_u64(f->payload, f->hdr.len, VB_TAG_EXIT_CODE, &code);
		vb_payload_u64(f->payload, f->hdr.len, VB_TAG_SIGNAL, &sig);
		vb_payload_u64(f->payload, f->hdr.len, VB_TAG_TIMED_OUT, &timed_out);
		ev->kind = VB_EXEC_EXIT;
		ev->signal = sig < 128 ? (int)sig : 0;
		ev->exit_code = ev->signal ? 128 + ev->signal : (int)(code & 0xff);
		ev->timed_out = timed_out != 0;
		ex->exited = 1;
		free(f);
		return 1;
	}
	case VB_MSG_ERROR:
		vb_chan_error_from(f, err);
		free(f);
		ex->exited = 1;
		return -1;
	default: { /* the filter admits nothing else */
		uint16_t type = f->hdr.type;
		free(f);
		vb_chan_violation(ex->sb->ch, err, "an unexpected %s frame", vb_msg_name(type));
		return vb_sandbox_died(ex->sb, err);
	}
	}
}

int vb_exec_next(vb_exec *ex, struct vb_exec_event *ev, int timeout_ms, vb_error *err)
{
	if (release_cur(ex, err) < 0)
		return vb_sandbox_died(ex->sb, err);
	if (ex->exited)
		return 0;
	int64_t now = vb_now_ms();
	if (ex->busy_since && now - ex->busy_since >= EXEC_SLICE_MS) {
		/* the caller's turn; the efd stays readable if frames wait */
		ex->busy_since = 0;
		return 0;
	}
	int64_t deadline = timeout_ms < 0 ? -1 : now + timeout_ms;
	for (;;) {
		uint64_t drain;
		ssize_t r = read(ex->slot.efd, &drain, sizeof(drain));
		(void)r;
		struct vb_chan_frame *f = NULL;
		/* vb_chan_recv signals the efd again while frames remain */
		int got = vb_chan_recv(ex->sb->ch, &ex->slot, &f, 0, err);
		if (got < 0)
			return vb_sandbox_died(ex->sb, err);
		if (got > 0) {
			if (!ex->busy_since)
				ex->busy_since = now;
			return decode_event(ex, f, ev, err);
		}
		ex->busy_since = 0;
		int64_t left = deadline < 0 ? -1 : deadline - vb_now_ms();
		if (deadline >= 0 && left <= 0)
			return 0;
		struct pollfd p = { .fd = ex->slot.efd, .events = POLLIN };
		int pr = poll(&p, 1, (int)left);
		if (pr < 0 && errno != EINTR)
			return vb_error_errno(err, errno, "poll");
		/* woken without a frame: stdin credit came back; let the caller see it */
		if (pr > 0 && !vb_chan_pending(ex->sb->ch, &ex->slot))
			return 0;
	}
}

int vb_exec_fd(const vb_exec *ex)
{
	return ex->slot.efd;
}

size_t vb_exec_stdin_room(const vb_exec *ex)
{
	struct vb_chan *ch = ex->sb->ch;
	vb_chan_lock(ch);
	uint64_t inflight = ex->stdin_sent - ex->stdin_acked;
	vb_chan_unlock(ch);
	return inflight >= VB_STDIN_WINDOW ? 0 : (size_t)(VB_STDIN_WINDOW - inflight);
}

ssize_t vb_exec_write(vb_exec *ex, const void *buf, size_t n, int timeout_ms, vb_error *err)
{
	if (ex->stdin_closed || ex->exited)
		return vb_error_set(err, VB_E_RUNTIME, "stdin is closed");
	struct vb_chan *ch = ex->sb->ch;
	int64_t deadline = timeout_ms < 0 ? -1 : vb_now_ms() + timeout_ms;
	size_t room;
	for (;;) {
		room = vb_exec_stdin_room(ex);
		if (room > 0 || n == 0)
			break;
		if (vb_chan_dead(ch))
			return vb_sandbox_died(ex->sb, err);
		int64_t left = deadline < 0 ? 1000 : deadline - vb_now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = { .fd = ex->slot.efd, .events = POLLIN };
		poll(&p, 1, (int)(left > 1000 ? 1000 : left));
		/* the efd is drained by vb_exec_next; re-check the books either way */
	}
	size_t m = n < room ? n : room;
	if (m > VB_CHUNK_MAX)
		m = VB_CHUNK_MAX;
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_EXEC_STDIN, 0, 0);
	vb_msg_put_bytes(&b, VB_TAG_DATA, buf, m);
	vb_msg_end(&b);
	vb_chan_lock(ch);
	ex->stdin_sent += m;
	vb_chan_unlock(ch);
	int rc = vb_chan_send(ch, &b, ex->slot.id, err);
	vb_buf_free(&b);
	return rc < 0 ? vb_sandbox_died(ex->sb, err) : (ssize_t)m;
}

int vb_exec_close_stdin(vb_exec *ex, vb_error *err)
{
	if (ex->stdin_closed || ex->exited)
		return 0;
	ex->stdin_closed = 1;
	if (send_simple(ex, VB_MSG_EXEC_STDIN, VB_FLAG_EOF, 0, 0, err) < 0)
		return vb_sandbox_died(ex->sb, err); /* the best account of why */
	return 0;
}

int vb_exec_signal(vb_exec *ex, int sig, vb_error *err)
{
	if (ex->exited)
		return 0;
	if (send_simple(ex, VB_MSG_EXEC_SIGNAL, 0, VB_TAG_SIGNAL, (uint64_t)sig, err) < 0)
		return vb_sandbox_died(ex->sb, err);
	return 0;
}

int vb_exec_resize(vb_exec *ex, unsigned rows, unsigned cols, vb_error *err)
{
	if (!ex->pty)
		return vb_error_set(err, VB_E_USAGE, "the program does not run on a terminal");
	if (rows < 1 || rows > VB_TERM_MAX || cols < 1 || cols > VB_TERM_MAX)
		return vb_error_set(err, VB_E_USAGE, "terminal size %ux%u: expected 1..%u each", rows,
				    cols, VB_TERM_MAX);
	if (ex->exited)
		return 0;
	struct vb_buf b = { 0 };
	int rc = vb_resize_encode(&b, 0, (uint32_t)rows, (uint32_t)cols);
	if (rc < 0) {
		vb_buf_free(&b);
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	rc = vb_chan_send(ex->sb->ch, &b, ex->slot.id, err);
	vb_buf_free(&b);
	return rc < 0 ? vb_sandbox_died(ex->sb, err) : 0;
}

pid_t vb_exec_pid(const vb_exec *ex)
{
	return ex->pid;
}

void vb_exec_free(vb_exec *ex)
{
	if (!ex)
		return;
	if (!ex->exited && !vb_chan_dead(ex->sb->ch)) {
		vb_error ignore;
		send_simple(ex, VB_MSG_EXEC_SIGNAL, 0, VB_TAG_SIGNAL, SIGKILL, &ignore);
	}
	/* What an honest agent may still send once we stop listening: the rest
	 * of its output window, an ack per stdin byte in flight at most, and
	 * EXEC_EXIT. */
	vb_chan_lock(ex->sb->ch);
	ex->slot.late_budget = VB_OUTPUT_WINDOW + EXEC_QUEUE_SLACK +
			       (size_t)(ex->stdin_sent - ex->stdin_acked) *
				       VB_CHAN_COST(VB_FIELD_HDR_LEN + 8);
	vb_chan_unlock(ex->sb->ch);
	free(ex->cur);
	vb_chan_unregister(ex->sb->ch, &ex->slot);
	close(ex->slot.efd);
	free(ex);
}

/* ---- run to completion ------------------------------------------------- */

static int collect(uint8_t **buf, size_t *len, size_t *cap, size_t max, const uint8_t *d,
		   size_t n)
{
	if (*len >= max)
		return 0;
	if (n > max - *len)
		n = max - *len;
	if (*len + n > *cap) {
		size_t c = *cap ? *cap : 4096;
		while (c < *len + n)
			c *= 2;
		uint8_t *nb = realloc(*buf, c + 1);
		if (!nb)
			return -1;
		*buf = nb;
		*cap = c;
	}
	memcpy(*buf + *len, d, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}

int vb_exec_run(vb_sandbox *sb, const struct vb_exec_params *p, const void *stdin_data,
		size_t stdin_len, size_t max_output, struct vb_exec_result *res, vb_error *err)
{
	memset(res, 0, sizeof(*res));
	struct vb_exec_params q = *p;
	q.want_stdin = stdin_data != NULL;
	vb_exec *ex = vb_exec_start(sb, &q, err);
	if (!ex)
		return -1;
	size_t off = 0, cap_out = 0, cap_err = 0;
	int rc = 0;
	for (;;) {
		while (stdin_data && !ex->stdin_closed && vb_exec_stdin_room(ex) > 0) {
			if (off == stdin_len) {
				rc = vb_exec_close_stdin(ex, err);
				break;
			}
			ssize_t w = vb_exec_write(ex, (const uint8_t *)stdin_data + off,
						  stdin_len - off, 0, err);
			if (w < 0) {
				rc = -1;
				break;
			}
			off += (size_t)w;
		}
		if (rc < 0)
			break;
		struct vb_exec_event ev;
		int r = vb_exec_next(ex, &ev, -1, err);
		if (r < 0) {
			rc = -1;
			break;
		}
		if (r == 0)
			continue;
		if (ev.kind == VB_EXEC_STDOUT)
			rc = collect(&res->out, &res->out_len, &cap_out, max_output, ev.data, ev.len);
		else if (ev.kind == VB_EXEC_STDERR)
			rc = collect(&res->errout, &res->err_len, &cap_err, max_output, ev.data,
				     ev.len);
		if (rc < 0) {
			vb_error_set(err, VB_E_RUNTIME, "out of memory collecting output");
			break;
		}
		if (ev.kind == VB_EXEC_EXIT) {
			res->exit_code = ev.exit_code;
			res->signal = ev.signal;
			res->timed_out = ev.timed_out;
			break;
		}
	}
	vb_exec_free(ex);
	if (rc < 0)
		vb_exec_result_free(res);
	return rc;
}

void vb_exec_result_free(struct vb_exec_result *res)
{
	free(res->out);
	free(res->errout);
	res->out = res->errout = NULL;
	res->out_len = res->err_len = 0;
}
