/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent_test — drives a guest agent over the control protocol and checks
 * its behaviour.
 *
 *   agent_test --agent BIN
 *       start BIN in process mode (--listen) on temporary roots and test it
 *   agent_test --mkboot OUT SECRET_OUT [--mount TAG:PATH:ro|rw]...
 *       write boot data (with the allowlist the tests expect) for a VM
 *   agent_test --connect SOCK --secret SECRET_FILE [--shutdown] [--mount PATH]...
 *              [--ro-mount PATH] [--sh SCRIPT]
 *       test a booted VM through its control socket (roots /workspace etc.);
 *       each --mount PATH is a rw 9p mount to exercise too, --ro-mount a ro
 *       one holding hello.txt = "ro\n"; --sh runs SCRIPT as root and prints
 *       its output instead (a debugging aid)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"

static const char *const ALLOW[] = {
	"sh",  "echo",	"cat",	 "head", "sleep",      "id",	     "env",   "ln",
	"mkfifo", "setsid", "dd", "true", "nosuchprog", "notexec.sh", "pwd",   "ls",
	"touch", "wc",	"printf", "yes", "stat",       "rm",	     "mkdir", "tty",
	"stty",	"busybox", NULL,
};

static int failures, checks;
static const char *g_sock;
static uint8_t g_secret[VB_SECRET_LEN];
static char g_ws[512], g_outside[512], g_outside_file[600];
static int g_vm, g_root;

#define CHECK(cond, ...)                                            \
	do {                                                        \
		checks++;                                           \
		if (!(cond)) {                                      \
			failures++;                                 \
			fprintf(stderr, "FAIL %s:%d: ", __func__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);               \
			fputc('\n', stderr);                        \
		}                                                   \
	} while (0)

/* ---- helpers ------------------------------------------------------------- */

static char **vec(const char *first, ...)
{
	va_list ap;
	size_t n = 0;
	char **v = calloc(64, sizeof(char *));
	va_start(ap, first);
	for (const char *s = first; s && n < 63; s = va_arg(ap, const char *))
		v[n++] = strdup(s);
	va_end(ap);
	return v;
}

static size_t vlen(char **v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

static void vfree(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static void connect_auth(struct client *cl)
{
	if (cl_connect(cl, g_sock) < 0) {
		fprintf(stderr, "cannot connect to %s\n", g_sock);
		exit(1);
	}
	struct frame *f = cl_hello(cl, g_secret, VB_PROTO_VERSION);
	if (!f || f->h.type != VB_MSG_HELLO_OK) {
		char m[256] = "";
		fprintf(stderr, "handshake failed: %s %s\n", f ? vb_msg_name(f->h.type) : "no reply",
			f ? frame_msg(f, m, sizeof(m)) : "");
		exit(1);
	}
	frame_free(f);
}

struct dyn {
	uint8_t *p;
	size_t len, cap;
};

static void dyn_put(struct dyn *d, const uint8_t *p, size_t n, size_t keep_max)
{
	size_t room = d->len < keep_max ? keep_max - d->len : 0;
	if (n > room)
		n = room;
	if (d->len + n > d->cap) {
		d->cap = (d->len + n) * 2 + 64;
		d->p = realloc(d->p, d->cap);
	}
	memcpy(d->p + d->len, p, n);
	d->len += n;
	if (d->p)
		d->p[d->len < d->cap ? d->len : d->cap - 1] = 0;
}

struct xopts {
	char **argv, **env;
	const char *cwd;
	uint64_t uid, gid, timeout_ms;
	const uint8_t *in;
	size_t in_len;
	int want_stdin, no_eof;
	int pty;
	uint32_t rows, cols;
	int flow_test;
	int signal, signal_after_ms;
	size_t keep_max;
};

struct xres {
	int err_code;
	char err_msg[512];
	int started, exited;
	uint64_t pid, exit_code, sig, timed_out;
	int has_exit_code;
	struct dyn out, err;
	uint64_t out_total, err_total, max_unacked, stdin_acked;
	int stalled_ok; /* flow test: nothing arrived beyond the window */
	uint64_t ms;
};

static uint32_t send_exec(struct client *cl, const struct xopts *o)
{
	struct vb_exec_req r = { 0 };
	r.argv = o->argv;
	r.argc = vlen(o->argv);
	r.envp = o->env;
	r.envc = vlen(o->env);
	r.cwd = (char *)(uintptr_t)o->cwd;
	r.uid = o->uid;
	r.gid = o->gid;
	r.timeout_ms = o->timeout_ms;
	r.want_stdin = o->want_stdin;
	r.pty = o->pty;
	r.rows = o->rows;
	r.cols = o->cols;
	struct vb_buf b = { 0 };
	uint32_t id = cl->next_id++;
	vb_exec_req_encode(&b, id, &r);
	cl_send(cl, &b);
	vb_buf_free(&b);
	return id;
}

static void send_u64(struct client *cl, uint16_t type, uint32_t id, uint16_t tag, uint64_t v)
{
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, type, 0, id);
	vb_msg_put_u64(&b, tag, v);
	vb_msg_end(&b);
	cl_send(cl, &b);
	vb_buf_free(&b);
}

/* Run one exec to its end, acknowledging output and feeding stdin. */
static void run_exec(struct client *cl, const struct xopts *o, struct xres *x)
{
	memset(x, 0, sizeof(*x));
	size_t keep = o->keep_max ? o->keep_max : (1u << 20);
	uint64_t t0 = now_ms(), hold_since = 0;
	uint32_t id = send_exec(cl, o);
	size_t sent = 0, in_unacked = 0;
	int eof_sent = 0, sig_sent = 0, hold = o->flow_test;
	uint64_t unacked = 0;
	x->stalled_ok = 1;
	for (;;) {
		while (x->started && o->want_stdin && sent < o->in_len && in_unacked < VB_STDIN_WINDOW) {
			size_t n = o->in_len - sent;
			if (n > VB_CHUNK_MAX)
				n = VB_CHUNK_MAX;
			if (n > VB_STDIN_WINDOW - in_unacked)
				n = VB_STDIN_WINDOW - in_unacked;
			struct vb_buf b = { 0 };
			vb_msg_begin(&b, VB_MSG_EXEC_STDIN, 0, id);
			vb_msg_put_bytes(&b, VB_TAG_DATA, o->in + sent, n);
			vb_msg_end(&b);
			cl_send(cl, &b);
			vb_buf_free(&b);
			sent += n;
			in_unacked += n;
		}
		if (x->started && o->want_stdin && !o->no_eof && sent == o->in_len && !eof_sent) {
			struct vb_buf b = { 0 };
			vb_msg_begin(&b, VB_MSG_EXEC_STDIN, VB_FLAG_EOF, id);
			vb_msg_end(&b);
			cl_send(cl, &b);
			vb_buf_free(&b);
			eof_sent = 1;
		}
		if (x->started && o->signal && !sig_sent && now_ms() - t0 >= (uint64_t)o->signal_after_ms) {
			send_u64(cl, VB_MSG_EXEC_SIGNAL, id, VB_TAG_SIGNAL, (uint64_t)o->signal);
			sig_sent = 1;
		}
		struct frame *f = cl_recv(cl, id, 50);
		if (!f) {
			if (hold && unacked >= VB_OUTPUT_WINDOW) {
				if (!hold_since)
					hold_since = now_ms();
				if (now_ms() - hold_since >= 300) {
					send_u64(cl, VB_MSG_EXEC_ACK, id, VB_TAG_COUNT, unacked);
					unacked = 0;
					hold = 0;
				}
			}
			if (now_ms() - t0 > 120000) {
				snprintf(x->err_msg, sizeof(x->err_msg), "client timeout");
				x->err_code = -1;
				break;
			}
			continue;
		}
		const uint8_t *p;
		size_t n;
		uint64_t v;
		switch (f->h.type) {
		case VB_MSG_ERROR:
			x->err_code = frame_u64(f, VB_TAG_CODE, &v) == 0 ? (int)v : -2;
			frame_msg(f, x->err_msg, sizeof(x->err_msg));
			frame_free(f);
			goto done;
		case VB_MSG_EXEC_STARTED:
			x->started = 1;
			frame_u64(f, VB_TAG_PID, &x->pid);
			break;
		case VB_MSG_EXEC_OUTPUT:
			frame_u64(f, VB_TAG_STREAM, &v);
			frame_bytes(f, VB_TAG_DATA, &p, &n);
			if (v == 1) {
				dyn_put(&x->out, p, n, keep);
				x->out_total += n;
			} else {
				dyn_put(&x->err, p, n, keep);
				x->err_total += n;
			}
			if (n > VB_CHUNK_MAX)
				x->stalled_ok = 0;
			unacked += VB_FRAME_HDR_LEN + f->h.len; /* credit is whole frames */
			if (unacked > x->max_unacked)
				x->max_unacked = unacked;
			if (hold && hold_since)
				x->stalled_ok = 0; /* output while we held every ack */
			if (!hold) {
				send_u64(cl, VB_MSG_EXEC_ACK, id, VB_TAG_COUNT, unacked);
				unacked = 0;
			}
			break;
		case VB_MSG_EXEC_STDIN_ACK:
			frame_u64(f, VB_TAG_COUNT, &v);
			in_unacked -= v;
			x->stdin_acked += v;
			break;
		case VB_MSG_EXEC_EXIT:
			x->exited = 1;
			x->has_exit_code = frame_u64(f, VB_TAG_EXIT_CODE, &x->exit_code) == 0;
			frame_u64(f, VB_TAG_SIGNAL, &x->sig);
			frame_u64(f, VB_TAG_TIMED_OUT, &x->timed_out);
			frame_free(f);
			goto done;
		default:
			break;
		}
		frame_free(f);
	}
done:
	x->ms = now_ms() - t0;
}

static void xres_free(struct xres *x)
{
	free(x->out.p);
	free(x->err.p);
}

/* sh -c SCRIPT as (uid), returning the result in x. */
static void sh(struct client *cl, uint64_t uid, const char *script, struct xres *x)
{
	struct xopts o = { .argv = vec("sh", "-c", script, NULL), .uid = uid, .gid = uid };
	run_exec(cl, &o, x);
	vfree(o.argv);
}

/* A simple request; returns the reply frame. */
static struct frame *call(struct client *cl, struct vb_buf *b)
{
	uint32_t id = cl->next_id++;
	b->data[8] = (uint8_t)id;
	b->data[9] = (uint8_t)(id >> 8);
	b->data[10] = (uint8_t)(id >> 16);
	b->data[11] = (uint8_t)(id >> 24);
	cl_send(cl, b);
	vb_buf_free(b);
	struct frame *f = cl_recv(cl, id, 30000);
	if (!f) {
		fprintf(stderr, "no reply\n");
		exit(1);
	}
	return f;
}

static uint64_t err_code(const struct frame *f)
{
	uint64_t v = 0;
	if (f->h.type != VB_MSG_ERROR)
		return 0;
	frame_u64(f, VB_TAG_CODE, &v);
	return v;
}

static struct frame *fwrite_(struct client *cl, const char *path, const void *data, size_t n,
			     int trunc, int64_t offset, int64_t mode)
{
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_FILE_WRITE, trunc ? VB_FLAG_TRUNC : 0, 0);
	vb_msg_put_str(&b, VB_TAG_PATH, path);
	vb_msg_put_bytes(&b, VB_TAG_DATA, data, n);
	if (offset >= 0)
		vb_msg_put_u64(&b, VB_TAG_OFFSET, (uint64_t)offset);
	if (mode >= 0)
		vb_msg_put_u64(&b, VB_TAG_MODE, (uint64_t)mode);
	vb_msg_end(&b);
	return call(cl, &b);
}

static struct frame *fread_(struct client *cl, const char *path, int64_t offset, int64_t length)
{
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_FILE_READ, 0, 0);
	vb_msg_put_str(&b, VB_TAG_PATH, path);
	if (offset >= 0)
		vb_msg_put_u64(&b, VB_TAG_OFFSET, (uint64_t)offset);
	if (length >= 0)
		vb_msg_put_u64(&b, VB_TAG_LENGTH, (uint64_t)length);
	vb_msg_end(&b);
	return call(cl, &b);
}

static struct frame *fpath(struct client *cl, uint16_t type, const char *path)
{
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, type, 0, 0);
	vb_msg_put_str(&b, VB_TAG_PATH, path);
	vb_msg_end(&b);
	return call(cl, &b);
}

static int data_is(const struct frame *f, const char *s)
{
	const uint8_t *p;
	size_t n;
	if (f->h.type != VB_MSG_OK || frame_bytes(f, VB_TAG_DATA, &p, &n) < 0)
		return strlen(s) == 0 && f->h.type == VB_MSG_OK;
	return n == strlen(s) && !memcmp(p, s, n);
}

static const char *ws(const char *rel)
{
	static char buf[8][1024];
	static int i;
	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", g_ws, rel);
	return buf[i];
}

/* ---- tests --------------------------------------------------------------- */

static void test_handshake(void)
{
	struct client cl;
	char m[256];
	uint8_t wrong[VB_SECRET_LEN];
	memcpy(wrong, g_secret, sizeof(wrong));
	wrong[7] ^= 1;

	CHECK(cl_connect(&cl, g_sock) == 0, "connect");
	struct frame *f = cl_hello(&cl, wrong, VB_PROTO_VERSION);
	CHECK(f && f->h.type == VB_MSG_ERROR && err_code(f) == VB_ERR_ACCESS,
	      "wrong secret: expected ERROR ACCESS, got %s", f ? vb_msg_name(f->h.type) : "nothing");
	frame_free(f);
	if (!g_vm) {
		int eof = 0;
		f = cl_recv_any(&cl, 3000, &eof);
		CHECK(!f && eof, "wrong secret: the connection must close");
		frame_free(f);
	} else {
		/* virtio-serial: the agent is deaf now; a request gets nothing */
		struct vb_buf b = { 0 };
		vb_msg_begin(&b, VB_MSG_SAMPLE, 0, 1);
		vb_msg_end(&b);
		cl_send(&cl, &b);
		vb_buf_free(&b);
		f = cl_recv_any(&cl, 1000, NULL);
		CHECK(!f, "wrong secret: agent answered a request afterwards");
		frame_free(f);
	}
	cl_close(&cl);

	CHECK(cl_connect(&cl, g_sock) == 0, "connect");
	f = cl_hello(&cl, g_secret, 99);
	uint64_t v = 0;
	CHECK(f && f->h.type == VB_MSG_ERROR && err_code(f) == VB_ERR_PROTO &&
		      frame_u64(f, VB_TAG_VERSION, &v) == 0 && v == VB_PROTO_VERSION,
	      "wrong version: expected ERROR PROTO with VERSION");
	frame_free(f);
	cl_close(&cl);

	CHECK(cl_connect(&cl, g_sock) == 0, "connect");
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_SAMPLE, 0, 0);
	vb_msg_end(&b);
	cl_send(&cl, &b);
	vb_buf_free(&b);
	f = cl_recv_any(&cl, 3000, NULL);
	/* virtio-serial: if the agent did not see the reconnect it is still
	 * hunting for a HELLO after the last refusal, and stays silent */
	CHECK((g_vm && !f) || (f && f->h.type == VB_MSG_ERROR && err_code(f) == VB_ERR_PROTO),
	      "no HELLO first: expected ERROR PROTO");
	frame_free(f);
	cl_close(&cl);

	CHECK(cl_connect(&cl, g_sock) == 0, "connect");
	f = cl_hello(&cl, g_secret, VB_PROTO_VERSION);
	const uint8_t *p;
	size_t n;
	CHECK(f && f->h.type == VB_MSG_HELLO_OK && f->h.id == 0, "HELLO_OK expected");
	if (f && f->h.type == VB_MSG_HELLO_OK) {
		CHECK(frame_u64(f, VB_TAG_VERSION, &v) == 0 && v == VB_PROTO_VERSION, "HELLO_OK VERSION");
		CHECK(frame_bytes(f, VB_TAG_KERNEL, &p, &n) == 0 && n > 0, "HELLO_OK KERNEL");
		CHECK(frame_bytes(f, VB_TAG_BOOT_ID, &p, &n) == 0 && n == 36, "HELLO_OK BOOT_ID (36 chars, got %zu)", n);
		frame_bytes(f, VB_TAG_KERNEL, &p, &n);
		printf("  kernel %.*s\n", (int)n, (const char *)p);
	}
	frame_free(f);
	(void)m;
	cl_close(&cl);
}

static void test_exec_basic(struct client *cl)
{
	struct xres x;
	struct xopts o = { .argv = vec("echo", "hello", NULL), .uid = 1000, .gid = 1000 };
	run_exec(cl, &o, &x);
	CHECK(x.started && x.exited && x.has_exit_code && x.exit_code == 0 && x.out.len == 6 &&
		      !memcmp(x.out.p, "hello\n", 6) && x.err.len == 0,
	      "echo hello: started %d exit %llu out '%.*s' err %s", x.started,
	      (unsigned long long)x.exit_code, (int)x.out.len, x.out.p ? (char *)x.out.p : "", x.err_msg);
	vfree(o.argv);
	xres_free(&x);

	sh(cl, 1000, "echo out; echo err >&2; exit 3", &x);
	CHECK(x.exited && x.has_exit_code && x.exit_code == 3 && x.sig == 0 && x.out.len == 4 &&
		      !memcmp(x.out.p, "out\n", 4) && x.err.len == 4 && !memcmp(x.err.p, "err\n", 4),
	      "stdout/stderr/exit 3: exit %llu out %zu err %zu", (unsigned long long)x.exit_code,
	      x.out.len, x.err.len);
	xres_free(&x);

	sh(cl, 1000, "kill -SEGV $$", &x);
	CHECK(x.exited && !x.has_exit_code && x.sig == SIGSEGV, "killed by SIGSEGV: sig %llu",
	      (unsigned long long)x.sig);
	xres_free(&x);

	if (g_root) {
		sh(cl, 1000, "id -u; id -g; id -G; echo $HOME $USER $LOGNAME", &x);
		CHECK(x.exited && x.out.p && !strcmp((char *)x.out.p, "1000\n1000\n1000\n/home/sandbox sandbox sandbox\n"),
		      "uid 1000 identity: '%s'", x.out.p ? (char *)x.out.p : "");
		xres_free(&x);
		sh(cl, 0, "id -u; echo $HOME $USER", &x);
		CHECK(x.exited && x.out.p && !strcmp((char *)x.out.p, "0\n/root root\n"), "uid 0 identity: '%s'",
		      x.out.p ? (char *)x.out.p : "");
		xres_free(&x);
	}

	/* environment: minimal default + request, nothing of the agent's */
	o = (struct xopts){ .argv = vec("env", NULL), .env = vec("FOO=bar", "TERM=xterm", "FOO=baz", NULL),
			    .uid = 1000, .gid = 1000 };
	run_exec(cl, &o, &x);
	const char *e = x.out.p ? (const char *)x.out.p : "";
	CHECK(strstr(e, "FOO=baz\n") && !strstr(e, "FOO=bar") && strstr(e, "TERM=xterm\n") &&
		      !strstr(e, "TERM=dumb") && strstr(e, "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin\n") &&
		      strstr(e, "HOME=") && !strstr(e, "VB_AGENT_ROOTS"),
	      "environment:\n%s", e);
	vfree(o.argv);
	vfree(o.env);
	xres_free(&x);

	/* cwd */
	o = (struct xopts){ .argv = vec("pwd", NULL), .uid = 1000, .gid = 1000 };
	run_exec(cl, &o, &x);
	char want[600];
	snprintf(want, sizeof(want), "%s\n", g_ws);
	CHECK(x.exited && x.out.p && !strcmp((char *)x.out.p, want), "default cwd: '%s'", x.out.p ? (char *)x.out.p : "");
	xres_free(&x);
	o.cwd = "/tmp";
	run_exec(cl, &o, &x);
	CHECK(x.exited && x.out.p && !strcmp((char *)x.out.p, "/tmp\n"), "cwd /tmp: '%s'", x.out.p ? (char *)x.out.p : "");
	xres_free(&x);
	o.cwd = "/nonexistent/dir";
	run_exec(cl, &o, &x);
	CHECK(x.err_code == VB_ERR_NOENT && strstr(x.err_msg, "/nonexistent/dir"), "missing cwd: %d %s",
	      x.err_code, x.err_msg);
	xres_free(&x);
	vfree(o.argv);
}

static void test_exec_errors(struct client *cl)
{
	struct xres x;
	struct xopts o = { .argv = vec("uname", "-a", NULL), .uid = 1000, .gid = 1000 };
	run_exec(cl, &o, &x);
	CHECK(x.err_code == VB_ERR_DENIED && strstr(x.err_msg, "'uname'"), "allowlist: %d %s", x.err_code, x.err_msg);
	vfree(o.argv);
	xres_free(&x);

	o.argv = vec("/bin/uname", NULL);
	run_exec(cl, &o, &x);
	CHECK(x.err_code == VB_ERR_DENIED, "allowlist by path: %d %s", x.err_code, x.err_msg);
	vfree(o.argv);
	xres_free(&x);

	o.argv = vec("nosuchprog", NULL);
	run_exec(cl, &o, &x);
	CHECK(x.err_code == VB_ERR_NOENT && strstr(x.err_msg, "nosuchprog: not found"), "not found: %d %s",
	      x.err_code, x.err_msg);
	vfree(o.argv);
	xres_free(&x);

	struct frame *f = fwrite_(cl, ws("notexec.sh"), "echo hi\n", 8, 1, -1, 0644);
	CHECK(f->h.type == VB_MSG_OK, "write notexec.sh");
	frame_free(f);
	o.argv = vec(ws("notexec.sh"), NULL);
	run_exec(cl, &o, &x);
	CHECK(x.err_code == VB_ERR_NOEXEC && strstr(x.err_msg, "permission denied"), "not executable: %d %s",
	      x.err_code, x.err_msg);
	vfree(o.argv);
	xres_free(&x);

	/* invalid request: no ARG */
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_EXEC, 0, 0);
	vb_msg_put_str(&b, VB_TAG_CWD, "/");
	vb_msg_end(&b);
	f = call(cl, &b);
	CHECK(err_code(f) == VB_ERR_INVAL, "EXEC without ARG: %llu", (unsigned long long)err_code(f));
	frame_free(f);

	/* unknown type: ERROR INVAL, the connection goes on */
	vb_msg_begin(&b, 999, 0, 0);
	vb_msg_end(&b);
	f = call(cl, &b);
	CHECK(err_code(f) == VB_ERR_INVAL, "unknown type: %llu", (unsigned long long)err_code(f));
	frame_free(f);
	vb_msg_begin(&b, VB_MSG_SAMPLE, 0, 0);
	vb_msg_end(&b);
	f = call(cl, &b);
	CHECK(f->h.type == VB_MSG_OK, "connection still works after an unknown type");
	frame_free(f);
}

static void test_output_flow(struct client *cl)
{
	struct xres x;
	struct xopts o = { .argv = vec("dd", "if=/dev/zero", "bs=65536", "count=1024", NULL),
			   .uid = 1000, .gid = 1000, .flow_test = 1, .keep_max = 1 };
	run_exec(cl, &o, &x);
	CHECK(x.exited && x.exit_code == 0 && x.out_total == 64u << 20, "64 MiB: exit %llu, %llu bytes (%s)",
	      (unsigned long long)x.exit_code, (unsigned long long)x.out_total, x.err_msg);
	CHECK(x.max_unacked <= VB_OUTPUT_WINDOW, "un-acked output %llu exceeds the window",
	      (unsigned long long)x.max_unacked);
	CHECK(x.stalled_ok, "output arrived while the window was exhausted");
	printf("  64 MiB of output in %llu ms\n", (unsigned long long)x.ms);
	vfree(o.argv);
	xres_free(&x);
}

static void test_stdin(struct client *cl)
{
	size_t n = 3u << 20;
	uint8_t *in = malloc(n);
	for (size_t i = 0; i < n; i++)
		in[i] = (uint8_t)(i * 7 + (i >> 11));
	struct xres x;
	struct xopts o = { .argv = vec("cat", NULL), .uid = 1000, .gid = 1000, .in = in, .in_len = n,
			   .want_stdin = 1, .keep_max = n };
	run_exec(cl, &o, &x);
	CHECK(x.exited && x.exit_code == 0 && x.out.len == n && !memcmp(x.out.p, in, n) && x.stdin_acked == n,
	      "stdin through cat: exit %llu, %zu bytes back, %llu acked (%s)", (unsigned long long)x.exit_code,
	      x.out.len, (unsigned long long)x.stdin_acked, x.err_msg);
	printf("  3 MiB through cat in %llu ms\n", (unsigned long long)x.ms);
	vfree(o.argv);
	xres_free(&x);

	/* the child stops reading: the rest is dropped but acknowledged */
	o = (struct xopts){ .argv = vec("head", "-c", "5", NULL), .uid = 1000, .gid = 1000, .in = in,
			    .in_len = n, .want_stdin = 1 };
	run_exec(cl, &o, &x);
	CHECK(x.exited && x.exit_code == 0 && x.out.len == 5 && !memcmp(x.out.p, in, 5),
	      "head -c 5 of stdin: exit %llu, %zu bytes (%s)", (unsigned long long)x.exit_code, x.out.len, x.err_msg);
	vfree(o.argv);
	xres_free(&x);

	/* no stdin requested: /dev/null */
	o = (struct xopts){ .argv = vec("cat", NULL), .uid = 1000, .gid = 1000 };
	run_exec(cl, &o, &x);
	CHECK(x.exited && x.exit_code == 0 && x.out.len == 0, "cat </dev/null");
	vfree(o.argv);
	xres_free(&x);
	free(in);
}

static void test_signals_timeouts(struct client *cl)
{
	struct xres x;
	struct xopts o = { .argv = vec("sleep", "100", NULL), .uid = 1000, .gid = 1000, .signal = SIGTERM,
			   .signal_after_ms = 200 };
	run_exec(cl, &o, &x);
	CHECK(x.exited && !x.has_exit_code && x.sig == SIGTERM && !x.timed_out && x.ms < 5000,
	      "EXEC_SIGNAL TERM: sig %llu in %llu ms", (unsigned long long)x.sig, (unsigned long long)x.ms);
	vfree(o.argv);
	xres_free(&x);

	/* invalid signals are ignored: the exec runs on, no ERROR */
	o = (struct xopts){ .argv = vec("sleep", "1", NULL), .uid = 1000, .gid = 1000 };
	uint32_t id = send_exec(cl, &o);
	vfree(o.argv);
	struct frame *f = cl_recv(cl, id, 10000);
	CHECK(f && f->h.type == VB_MSG_EXEC_STARTED, "sleep 1 started");
	frame_free(f);
	send_u64(cl, VB_MSG_EXEC_SIGNAL, id, VB_TAG_SIGNAL, 0);
	send_u64(cl, VB_MSG_EXEC_SIGNAL, id, VB_TAG_SIGNAL, 99);
	f = cl_recv(cl, id, 10000);
	uint64_t code = 99;
	CHECK(f && f->h.type == VB_MSG_EXEC_EXIT && frame_u64(f, VB_TAG_EXIT_CODE, &code) == 0 && code == 0,
	      "invalid signals ignored: %s", f ? vb_msg_name(f->h.type) : "nothing");
	frame_free(f);

	/* the signal goes to the whole group */
	o = (struct xopts){ .argv = vec("sh", "-c", "sleep 100 & sleep 100; echo survived", NULL), .uid = 1000,
			    .gid = 1000, .signal = SIGKILL, .signal_after_ms = 300 };
	run_exec(cl, &o, &x);
	CHECK(x.exited && x.sig == SIGKILL && x.ms < 4000 && x.out.len == 0, "SIGKILL to the group: %llu ms",
	      (unsigned long long)x.ms);
	vfree(o.argv);
	xres_free(&x);

	o = (struct xopts){ .argv = vec("sh", "-c", "sleep 100 & sleep 100", NULL), .uid = 1000, .gid = 1000,
			    .timeout_ms = 500 };
	run_exec(cl, &o, &x);
	CHECK(x.exited && x.timed_out == 1 && x.sig == SIGKILL && x.ms >= 450 && x.ms < 4000,
	      "timeout: timed_out %llu sig %llu after %llu ms", (unsigned long long)x.timed_out,
	      (unsigned long long)x.sig, (unsigned long long)x.ms);
	vfree(o.argv);
	xres_free(&x);

	/* a process that escapes the group and keeps stdout: bounded drain */
	sh(cl, 1000, "setsid sleep 6 & sleep 0.3; echo hi", &x);
	CHECK(x.exited && x.exit_code == 0 && x.out.len == 3 && x.ms >= 1500 && x.ms < 5000,
	      "escaped holder of stdout: exit after %llu ms, out %zu", (unsigned long long)x.ms, x.out.len);
	xres_free(&x);
}

/* ---- PTY execs ------------------------------------------------------------ */

/* A PTY exec driven step by step (for what run_exec cannot script). */
struct psess {
	struct client *cl;
	uint32_t id;
	struct dyn out;
	int started, exited, has_code, err_code;
	uint64_t code, sig;
};

/* Start (argv) (freed) on a terminal. */
static void ps_start(struct psess *s, struct client *cl, char **argv, uint64_t uid, uint32_t rows,
		     uint32_t cols)
{
	memset(s, 0, sizeof(*s));
	s->cl = cl;
	struct xopts o = { .argv = argv, .uid = uid, .gid = uid, .want_stdin = 1, .pty = 1,
			   .rows = rows, .cols = cols };
	s->id = send_exec(cl, &o);
	vfree(argv);
}

/* Process frames until (needle) is in the output (NULL: until the exit),
 * the exec ends, or (timeout_ms) passes.  Returns 1 if the needle is there. */
static int ps_wait(struct psess *s, const char *needle, int timeout_ms)
{
	uint64_t t0 = now_ms();
	for (;;) {
		if (needle && s->out.p && strstr((const char *)s->out.p, needle))
			return 1;
		if (s->exited || s->err_code || now_ms() - t0 > (uint64_t)timeout_ms)
			return 0;
		struct frame *f = cl_recv(s->cl, s->id, 50);
		if (!f)
			continue;
		const uint8_t *p;
		size_t n;
		uint64_t v = 0;
		if (f->h.type == VB_MSG_EXEC_STARTED) {
			s->started = 1;
		} else if (f->h.type == VB_MSG_EXEC_OUTPUT && frame_bytes(f, VB_TAG_DATA, &p, &n) == 0) {
			frame_u64(f, VB_TAG_STREAM, &v);
			if (v != 1)
				s->err_code = -3; /* a terminal has one stream */
			dyn_put(&s->out, p, n, 1u << 20);
			send_u64(s->cl, VB_MSG_EXEC_ACK, s->id, VB_TAG_COUNT,
				 VB_FRAME_HDR_LEN + f->h.len); /* credit is whole frames */
		} else if (f->h.type == VB_MSG_EXEC_EXIT) {
			s->exited = 1;
			s->has_code = frame_u64(f, VB_TAG_EXIT_CODE, &s->code) == 0;
			frame_u64(f, VB_TAG_SIGNAL, &s->sig);
		} else if (f->h.type == VB_MSG_ERROR) {
			s->err_code = frame_u64(f, VB_TAG_CODE, &v) == 0 ? (int)v : -2;
		}
		frame_free(f);
	}
}

static void ps_input(struct psess *s, const char *data, int eof)
{
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_EXEC_STDIN, eof ? VB_FLAG_EOF : 0, s->id);
	vb_msg_put_bytes(&b, VB_TAG_DATA, data, strlen(data));
	vb_msg_end(&b);
	cl_send(s->cl, &b);
	vb_buf_free(&b);
}

static void ps_resize(struct psess *s, uint32_t rows, uint32_t cols)
{
	struct vb_buf b = { 0 };
	vb_resize_encode(&b, s->id, rows, cols);
	cl_send(s->cl, &b);
	vb_buf_free(&b);
}

static const char *ps_text(const struct psess *s)
{
	return s->out.p ? (const char *)s->out.p : "";
}

/* One PTY exec to its end with (input) then EOF; x as from run_exec. */
static void pty_run(struct client *cl, char **argv, const char *input, uint32_t rows, uint32_t cols,
		    char **env, uint64_t uid, struct xres *x)
{
	struct xopts o = { .argv = argv, .env = env, .uid = uid, .gid = uid, .pty = 1, .rows = rows,
			   .cols = cols, .want_stdin = input != NULL,
			   .in = (const uint8_t *)input, .in_len = input ? strlen(input) : 0 };
	run_exec(cl, &o, x);
	vfree(argv);
	vfree(env);
}

static const char *xout(const struct xres *x)
{
	return x->out.p ? (const char *)x->out.p : "";
}

static void test_pty_basics(struct client *cl)
{
	struct xres x;
	pty_run(cl, vec("sh", "-c", "tty; echo to-err >&2; exit 3", NULL), NULL, 0, 0, NULL, 1000, &x);
	CHECK(x.exited && x.has_exit_code && x.exit_code == 3 && strstr(xout(&x), "/dev/pts/") &&
		      strstr(xout(&x), "to-err") && x.err_total == 0,
	      "pty: tty, stderr on the terminal, exit 3: exit %llu out '%s' err %llu (%s)",
	      (unsigned long long)x.exit_code, xout(&x), (unsigned long long)x.err_total, x.err_msg);
	xres_free(&x);

	pty_run(cl, vec("stty", "size", NULL), NULL, 30, 100, NULL, 1000, &x);
	CHECK(x.exited && x.exit_code == 0 && strstr(xout(&x), "30 100"), "pty: initial size 30x100: '%s' (%s)",
	      xout(&x), x.err_msg);
	xres_free(&x);
	pty_run(cl, vec("stty", "size", NULL), NULL, 0, 0, NULL, 1000, &x);
	CHECK(x.exited && strstr(xout(&x), "24 80"), "pty: default size 24x80: '%s'", xout(&x));
	xres_free(&x);

	pty_run(cl, vec("sh", "-c", "echo T=$TERM", NULL), NULL, 0, 0, NULL, 1000, &x);
	CHECK(strstr(xout(&x), "T=xterm-256color"), "pty: TERM default: '%s'", xout(&x));
	xres_free(&x);
	pty_run(cl, vec("sh", "-c", "echo T=$TERM", NULL), NULL, 0, 0, vec("TERM=vt100", NULL), 1000, &x);
	CHECK(strstr(xout(&x), "T=vt100"), "pty: TERM from the request: '%s'", xout(&x));
	xres_free(&x);

	if (g_root) { /* the sandbox user owns its terminal and can reopen it */
		pty_run(cl, vec("sh", "-c", "id -u; echo via-tty >$(tty) && echo reopened", NULL), NULL, 0, 0,
			NULL, 1000, &x);
		CHECK(x.exit_code == 0 && strstr(xout(&x), "1000") && strstr(xout(&x), "via-tty") &&
			      strstr(xout(&x), "reopened"),
		      "pty: uid 1000 reopens its terminal: '%s'", xout(&x));
		xres_free(&x);
		pty_run(cl, vec("sh", "-c", "id -u; tty", NULL), NULL, 0, 0, NULL, 0, &x);
		CHECK(x.exit_code == 0 && strstr(xout(&x), "0\r\n/dev/pts/"), "pty: as root: '%s'", xout(&x));
		xres_free(&x);
	}

	/* a spawn error is reported as for pipes, and nothing leaks */
	pty_run(cl, vec("nosuchprog", NULL), NULL, 0, 0, NULL, 1000, &x);
	CHECK(x.err_code == VB_ERR_NOENT, "pty: not found: %d %s", x.err_code, x.err_msg);
	xres_free(&x);
}

static void test_pty_eof(struct client *cl)
{
	struct xres x;
	/* canonical mode: a line, then EOF; an unterminated line, then EOF */
	pty_run(cl, vec("cat", NULL), "hello\n", 0, 0, NULL, 1000, &x);
	CHECK(x.exited && x.exit_code == 0 && strstr(xout(&x), "hello\r\nhello\r\n") && x.ms < 5000,
	      "pty: cat, line + EOF: exit %llu after %llu ms, '%s' (%s)", (unsigned long long)x.exit_code,
	      (unsigned long long)x.ms, xout(&x), x.err_msg);
	xres_free(&x);
	pty_run(cl, vec("cat", NULL), "abc", 0, 0, NULL, 1000, &x);
	CHECK(x.exited && x.exit_code == 0 && strstr(xout(&x), "abcabc") && x.ms < 5000,
	      "pty: cat, unterminated line + EOF: exit %llu after %llu ms, '%s' (%s)",
	      (unsigned long long)x.exit_code, (unsigned long long)x.ms, xout(&x), x.err_msg);
	xres_free(&x);
	/* no input at all: the terminal's input ends at once */
	pty_run(cl, vec("cat", NULL), NULL, 0, 0, NULL, 1000, &x);
	CHECK(x.exited && x.exit_code == 0 && x.ms < 5000, "pty: cat without stdin: exit %llu after %llu ms",
	      (unsigned long long)x.exit_code, (unsigned long long)x.ms);
	xres_free(&x);

	/* interactive shells end at EOF after running what came before it,
	 * also when a foreground job was running as it arrived (its ^D must
	 * not reach the line editor as a stray byte) */
	static const char *const shells[2][2] = { { "sh", NULL }, { "busybox", "sh" } };
	for (int i = 0; i < 2; i++) {
		if (i == 1 && !g_vm && access("/bin/busybox", X_OK) && access("/usr/bin/busybox", X_OK))
			break; /* no busybox on this host: ash's raw-mode editor untested here */
		pty_run(cl, vec(shells[i][0], shells[i][1], NULL), "echo hi-$((6*7))\nsleep 0.5\necho after-$((2*3))\n",
			0, 0, NULL, 1000, &x);
		CHECK(x.exited && x.exit_code == 0 && strstr(xout(&x), "hi-42") && strstr(xout(&x), "after-6") &&
			      x.ms < 8000,
		      "pty: interactive %s %s ends at EOF: exit %llu after %llu ms, '%s' (%s)", shells[i][0],
		      shells[i][1] ? shells[i][1] : "", (unsigned long long)x.exit_code,
		      (unsigned long long)x.ms, xout(&x), x.err_msg);
		xres_free(&x);
	}
}

static void test_pty_interactive(struct client *cl)
{
	struct psess s;
	/* resize: TIOCSWINSZ on the master, SIGWINCH to the foreground */
	ps_start(&s, cl, vec("sh", "-c", "trap 'echo WINCH' WINCH; stty size; echo ready; read x; stty size; sleep 0.2",
			     NULL), 1000, 30, 100);
	CHECK(ps_wait(&s, "ready", 10000) && strstr(ps_text(&s), "30 100"), "pty resize: start: '%s'", ps_text(&s));
	ps_resize(&s, 0, 120);   /* invalid: ignored */
	ps_resize(&s, 40, 10001); /* invalid: ignored */
	ps_resize(&s, 40, 120);
	ps_input(&s, "go\n", 0);
	ps_wait(&s, NULL, 10000);
	CHECK(s.exited && s.code == 0 && strstr(ps_text(&s), "40 120") && strstr(ps_text(&s), "WINCH") &&
		      !s.err_code,
	      "pty resize: exit %llu, '%s' (error %d)", (unsigned long long)s.code, ps_text(&s), s.err_code);
	free(s.out.p);

	/* ^C is a byte: SIGINT to the foreground job, the shell lives on */
	ps_start(&s, cl, vec("sh", NULL), 1000, 0, 0);
	ps_input(&s, "echo go-$((5*5))\n", 0);
	CHECK(ps_wait(&s, "go-25", 10000), "pty ^C: shell started: '%s'", ps_text(&s));
	ps_input(&s, "sleep 100\n", 0);
	usleep(500 * 1000);
	uint64_t t0 = now_ms();
	ps_input(&s, "\x03", 0);
	ps_input(&s, "echo alive-$((1+1))\n", 0);
	CHECK(ps_wait(&s, "alive-2", 10000) && now_ms() - t0 < 8000, "pty ^C: interrupted sleep: '%s'", ps_text(&s));
	ps_input(&s, "exit 4\n", 0);
	ps_wait(&s, NULL, 10000);
	CHECK(s.exited && s.has_code && s.code == 4, "pty ^C: exit 4 after it: %llu", (unsigned long long)s.code);
	free(s.out.p);

	/* ^C to a program that is the terminal's session leader */
	struct xres x;
	struct xopts o = { .argv = vec("sleep", "100", NULL), .uid = 1000, .gid = 1000, .pty = 1,
			   .want_stdin = 1, .in = (const uint8_t *)"\x03", .in_len = 1, .no_eof = 1 };
	run_exec(cl, &o, &x);
	CHECK(x.exited && x.sig == SIGINT && x.ms < 5000, "pty: ^C kills sleep: sig %llu after %llu ms",
	      (unsigned long long)x.sig, (unsigned long long)x.ms);
	vfree(o.argv);
	xres_free(&x);

	/* RESIZE of an exec without a terminal: ignored, no ERROR */
	o = (struct xopts){ .argv = vec("sleep", "0.3", NULL), .uid = 1000, .gid = 1000 };
	uint32_t id = send_exec(cl, &o);
	vfree(o.argv);
	struct psess np = { .cl = cl, .id = id };
	ps_resize(&np, 50, 50);
	ps_wait(&np, NULL, 10000);
	CHECK(np.exited && np.code == 0 && !np.err_code, "RESIZE without a pty is ignored: exit %llu error %d",
	      (unsigned long long)np.code, np.err_code);
	free(np.out.p);
}

static void test_concurrency(struct client *cl)
{
	/* a long exec does not block other requests */
	struct xopts o = { .argv = vec("sleep", "2", NULL), .uid = 1000, .gid = 1000 };
	uint32_t id = send_exec(cl, &o);
	vfree(o.argv);
	uint64_t t0 = now_ms();
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_SAMPLE, 0, 0);
	vb_msg_end(&b);
	struct frame *f = call(cl, &b);
	uint64_t v = 0, t = now_ms() - t0;
	CHECK(f->h.type == VB_MSG_OK && t < 1500, "SAMPLE during an exec took %llu ms", (unsigned long long)t);
	CHECK(frame_u64(f, VB_TAG_MEM_TOTAL_KB, &v) == 0 && v > 0, "SAMPLE MEM_TOTAL_KB");
	CHECK(frame_u64(f, VB_TAG_NPROCS, &v) == 0 && v > 0, "SAMPLE NPROCS");
	CHECK(frame_u64(f, VB_TAG_UPTIME_MS, &v) == 0 && v > 0, "SAMPLE UPTIME_MS");
	CHECK(frame_u64(f, VB_TAG_CPU_USER, &v) == 0, "SAMPLE CPU_USER");
	CHECK(frame_u64(f, VB_TAG_CPU_IDLE, &v) == 0, "SAMPLE CPU_IDLE");
	frame_free(f);
	f = fpath(cl, VB_MSG_FILE_STAT, g_ws);
	CHECK(f->h.type == VB_MSG_OK, "STAT during an exec");
	frame_free(f);
	for (;;) {
		f = cl_recv(cl, id, 10000);
		if (!f || f->h.type == VB_MSG_EXEC_EXIT || f->h.type == VB_MSG_ERROR)
			break;
		frame_free(f);
	}
	CHECK(f && f->h.type == VB_MSG_EXEC_EXIT, "sleep 2 finished");
	frame_free(f);

	/* more than 64 requests in flight: BUSY.  Each cat holds its slot until
	 * it gets EOF, so no timing is involved. */
	uint32_t ids[70];
	int started[70] = { 0 }, nstarted = 0, busy = 0, exits = 0;
	o = (struct xopts){ .argv = vec("cat", NULL), .uid = 1000, .gid = 1000, .want_stdin = 1 };
	for (int i = 0; i < 70; i++)
		ids[i] = send_exec(cl, &o);
	vfree(o.argv);
	for (int i = 0; i < 70; i++) {
		f = cl_recv(cl, ids[i], 30000);
		if (f && f->h.type == VB_MSG_ERROR && err_code(f) == VB_ERR_BUSY)
			busy++;
		if (f && f->h.type == VB_MSG_EXEC_STARTED)
			nstarted += started[i] = 1;
		frame_free(f);
	}
	for (int i = 0; i < 70; i++) {
		if (!started[i])
			continue;
		vb_msg_begin(&b, VB_MSG_EXEC_STDIN, VB_FLAG_EOF, ids[i]);
		vb_msg_end(&b);
		cl_send(cl, &b);
	}
	vb_buf_free(&b);
	for (int i = 0; i < 70; i++) {
		while (started[i] && (f = cl_recv(cl, ids[i], 30000))) {
			int type = f->h.type;
			exits += type == VB_MSG_EXEC_EXIT;
			frame_free(f);
			if (type == VB_MSG_EXEC_EXIT || type == VB_MSG_ERROR)
				break;
		}
	}
	CHECK(busy == 6 && nstarted == 64 && exits == 64, "70 execs: %d started, %d busy, %d exits", nstarted,
	      busy, exits);
}

static void test_files(struct client *cl)
{
	struct frame *f;
	uint64_t v = 0;

	f = fwrite_(cl, ws("a.txt"), "hello", 5, 0, -1, -1);
	CHECK(f->h.type == VB_MSG_OK, "write a.txt");
	frame_free(f);
	f = fread_(cl, ws("a.txt"), -1, -1);
	CHECK(data_is(f, "hello") && frame_u64(f, VB_TAG_SIZE, &v) == 0 && v == 5, "read a.txt");
	frame_free(f);
	f = fpath(cl, VB_MSG_FILE_STAT, ws("a.txt"));
	uint64_t mode = 0, uid = 99, mtime = 0;
	frame_u64(f, VB_TAG_MODE, &mode);
	frame_u64(f, VB_TAG_UID, &uid);
	frame_u64(f, VB_TAG_MTIME, &mtime);
	CHECK(f->h.type == VB_MSG_OK && frame_u64(f, VB_TAG_SIZE, &v) == 0 && v == 5 && mode == (S_IFREG | 0644) &&
		      (!g_root || uid == 1000) && mtime > 1000000000,
	      "stat a.txt: mode %llo uid %llu", (unsigned long long)mode, (unsigned long long)uid);
	frame_free(f);

	f = fwrite_(cl, ws("a.txt"), "XY", 2, 0, 1, -1);
	frame_free(f);
	f = fread_(cl, ws("a.txt"), -1, -1);
	CHECK(data_is(f, "hXYlo"), "write at offset");
	frame_free(f);
	f = fread_(cl, ws("a.txt"), 1, 3);
	CHECK(data_is(f, "XYl") && frame_u64(f, VB_TAG_SIZE, &v) == 0 && v == 5, "read offset/length");
	frame_free(f);
	f = fread_(cl, ws("a.txt"), 10, -1);
	CHECK(data_is(f, ""), "read past the end");
	frame_free(f);
	f = fwrite_(cl, ws("a.txt"), "z", 1, 1, -1, 0600);
	frame_free(f);
	f = fread_(cl, ws("a.txt"), -1, -1);
	CHECK(data_is(f, "z"), "write with TRUNC");
	frame_free(f);
	f = fpath(cl, VB_MSG_FILE_STAT, ws("a.txt"));
	frame_u64(f, VB_TAG_MODE, &mode);
	CHECK((mode & 07777) == 0600, "MODE on an existing file: %llo", (unsigned long long)mode);
	frame_free(f);

	/* a larger file */
	size_t big = 5u << 20;
	uint8_t *data = malloc(big);
	for (size_t i = 0; i < big; i++)
		data[i] = (uint8_t)(i ^ (i >> 9));
	f = fwrite_(cl, ws("big.bin"), data, big, 1, -1, -1);
	CHECK(f->h.type == VB_MSG_OK, "write 5 MiB");
	frame_free(f);
	f = fread_(cl, ws("big.bin"), -1, -1);
	const uint8_t *p;
	size_t n;
	CHECK(f->h.type == VB_MSG_OK && frame_bytes(f, VB_TAG_DATA, &p, &n) == 0 && n == big && !memcmp(p, data, big),
	      "read back 5 MiB");
	frame_free(f);
	free(data);

	/* mkdir -p */
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_MKDIR, 0, 0);
	vb_msg_put_str(&b, VB_TAG_PATH, ws("d1/d2/d3"));
	vb_msg_put_u64(&b, VB_TAG_MODE, 0750);
	vb_msg_end(&b);
	f = call(cl, &b);
	CHECK(f->h.type == VB_MSG_OK, "mkdir -p");
	frame_free(f);
	f = fpath(cl, VB_MSG_FILE_STAT, ws("d1/d2"));
	frame_u64(f, VB_TAG_MODE, &mode);
	frame_u64(f, VB_TAG_UID, &uid);
	CHECK(mode == (S_IFDIR | 0750) && (!g_root || uid == 1000), "mkdir mode/owner: %llo %llu",
	      (unsigned long long)mode, (unsigned long long)uid);
	frame_free(f);
	f = fpath(cl, VB_MSG_MKDIR, ws("d1/d2/d3"));
	CHECK(f->h.type == VB_MSG_OK, "mkdir -p of an existing dir");
	frame_free(f);
	f = fwrite_(cl, ws("d1/d2/d3/f"), "x", 1, 0, -1, -1);
	CHECK(f->h.type == VB_MSG_OK, "write in the new dir");
	frame_free(f);
	f = fpath(cl, VB_MSG_MKDIR, ws("a.txt/sub"));
	CHECK(err_code(f) == VB_ERR_NOTDIR, "mkdir under a file: %llu", (unsigned long long)err_code(f));
	frame_free(f);

	/* errors */
	f = fread_(cl, ws("missing"), -1, -1);
	CHECK(err_code(f) == VB_ERR_NOENT, "read missing: %llu", (unsigned long long)err_code(f));
	frame_free(f);
	f = fwrite_(cl, ws("nodir/x"), "x", 1, 0, -1, -1);
	CHECK(err_code(f) == VB_ERR_NOENT, "write in a missing dir: %llu", (unsigned long long)err_code(f));
	frame_free(f);
	f = fread_(cl, ws("d1"), -1, -1);
	CHECK(err_code(f) == VB_ERR_ISDIR, "read a dir: %llu", (unsigned long long)err_code(f));
	frame_free(f);
	f = fwrite_(cl, ws("d1"), "x", 1, 0, -1, -1);
	CHECK(err_code(f) == VB_ERR_ISDIR, "write a dir: %llu", (unsigned long long)err_code(f));
	frame_free(f);
	f = fpath(cl, VB_MSG_FILE_READ, "relative/path");
	CHECK(err_code(f) == VB_ERR_INVAL, "relative path: %llu", (unsigned long long)err_code(f));
	frame_free(f);
	vb_msg_begin(&b, VB_MSG_FILE_READ, 0, 0);
	vb_msg_end(&b);
	f = call(cl, &b);
	CHECK(err_code(f) == VB_ERR_INVAL, "no PATH: %llu", (unsigned long long)err_code(f));
	frame_free(f);
	f = fpath(cl, VB_MSG_FILE_STAT, g_ws);
	CHECK(f->h.type == VB_MSG_OK, "stat of a root");
	frame_free(f);
}

static void test_confinement(struct client *cl)
{
	struct frame *f;
	struct xres x;
	char cmd[2048];

	f = fread_(cl, g_outside_file, -1, -1);
	CHECK(err_code(f) == VB_ERR_OUTSIDE, "read outside: %llu", (unsigned long long)err_code(f));
	frame_free(f);
	f = fwrite_(cl, "/etc/evil", "x", 1, 0, -1, -1);
	CHECK(err_code(f) == VB_ERR_OUTSIDE, "write outside: %llu", (unsigned long long)err_code(f));
	frame_free(f);
	snprintf(cmd, sizeof(cmd), "%s/../%s", g_ws, g_outside_file);
	f = fread_(cl, cmd, -1, -1);
	CHECK(err_code(f) == VB_ERR_OUTSIDE, "read with ..: %llu", (unsigned long long)err_code(f));
	frame_free(f);
	snprintf(cmd, sizeof(cmd), "%sx/file", g_ws); /* a prefix, not a component */
	f = fread_(cl, cmd, -1, -1);
	CHECK(err_code(f) == VB_ERR_OUTSIDE, "read in a sibling: %llu", (unsigned long long)err_code(f));
	frame_free(f);
	f = fpath(cl, VB_MSG_MKDIR, "/newtop/dir");
	CHECK(err_code(f) == VB_ERR_OUTSIDE, "mkdir outside: %llu", (unsigned long long)err_code(f));
	frame_free(f);

	/* symlinks planted in the workspace by the sandbox */
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && ln -sfn '%s' dirlink && ln -sfn '%s' filelink && ln -sfn inside.txt rel && "
		 "echo in > inside.txt && rm -f fifo && mkfifo fifo",
		 g_ws, g_outside, g_outside_file);
	sh(cl, 0, cmd, &x);
	CHECK(x.exited && x.exit_code == 0, "planting symlinks: %s", x.err.p ? (char *)x.err.p : x.err_msg);
	xres_free(&x);
	const char *base = strrchr(g_outside_file, '/') + 1;
	snprintf(cmd, sizeof(cmd), "%s/dirlink/%s", g_ws, base);
	f = fread_(cl, cmd, -1, -1);
	CHECK(err_code(f) == VB_ERR_OUTSIDE, "read through a dir symlink: %llu", (unsigned long long)err_code(f));
	frame_free(f);
	snprintf(cmd, sizeof(cmd), "%s/dirlink/new", g_ws);
	f = fwrite_(cl, cmd, "x", 1, 0, -1, -1);
	CHECK(err_code(f) == VB_ERR_OUTSIDE, "write through a dir symlink: %llu", (unsigned long long)err_code(f));
	frame_free(f);
	snprintf(cmd, sizeof(cmd), "%s/dirlink/sub", g_ws);
	f = fpath(cl, VB_MSG_MKDIR, cmd);
	CHECK(err_code(f) == VB_ERR_OUTSIDE, "mkdir through a dir symlink: %llu", (unsigned long long)err_code(f));
	frame_free(f);
	f = fread_(cl, ws("filelink"), -1, -1);
	CHECK(err_code(f) == VB_ERR_OUTSIDE, "read a file symlink: %llu", (unsigned long long)err_code(f));
	frame_free(f);
	f = fwrite_(cl, ws("filelink"), "x", 1, 1, -1, -1);
	CHECK(err_code(f) == VB_ERR_OUTSIDE, "write a file symlink: %llu", (unsigned long long)err_code(f));
	frame_free(f);
	f = fread_(cl, ws("rel"), -1, -1);
	CHECK(err_code(f) == VB_ERR_OUTSIDE, "even an inside symlink is not followed: %llu",
	      (unsigned long long)err_code(f));
	frame_free(f);
	f = fpath(cl, VB_MSG_FILE_STAT, ws("filelink"));
	uint64_t mode = 0;
	frame_u64(f, VB_TAG_MODE, &mode);
	CHECK(f->h.type == VB_MSG_OK && S_ISLNK(mode), "stat describes a symlink: %llo", (unsigned long long)mode);
	frame_free(f);
	uint64_t t0 = now_ms();
	f = fread_(cl, ws("fifo"), -1, -1);
	CHECK(err_code(f) == VB_ERR_INVAL && now_ms() - t0 < 2000, "read a FIFO: %llu", (unsigned long long)err_code(f));
	frame_free(f);
	f = fwrite_(cl, ws("fifo"), "x", 1, 0, -1, -1);
	CHECK(f->h.type == VB_MSG_ERROR && now_ms() - t0 < 2000, "write a FIFO: %llu", (unsigned long long)err_code(f));
	frame_free(f);
	/* the outside file is untouched */
	int fd = g_vm ? -1 : open(g_outside_file, O_RDONLY);
	if (fd >= 0) {
		char buf[64] = "";
		ssize_t r = read(fd, buf, sizeof(buf) - 1);
		CHECK(r == 7 && !memcmp(buf, "secret\n", 7), "outside file changed");
		close(fd);
	}
}

/* rw 9p mount (VM only): the sandbox user owns it and can write. */
static void test_mount(struct client *cl, const char *path)
{
	struct xres x;
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "cd '%s' && stat -c '%%u:%%g' . && echo data > by-sandbox && cat by-sandbox && ls -ln by-sandbox",
		 path);
	sh(cl, 1000, cmd, &x);
	CHECK(x.exited && x.exit_code == 0 && x.out.p && !strncmp((char *)x.out.p, "1000:1000\ndata\n", 15),
	      "rw mount %s: exit %llu out '%s' err '%s'", path, (unsigned long long)x.exit_code,
	      x.out.p ? (char *)x.out.p : "", x.err.p ? (char *)x.err.p : x.err_msg);
	printf("  %s", x.out.p ? (char *)x.out.p : "");
	xres_free(&x);
	snprintf(cmd, sizeof(cmd), "%s/by-agent.txt", path);
	struct frame *f = fwrite_(cl, cmd, "agent\n", 6, 1, -1, -1);
	char m[256];
	CHECK(f->h.type == VB_MSG_OK, "FILE_WRITE on the mount: %s", frame_msg(f, m, sizeof(m)));
	frame_free(f);
	f = fread_(cl, cmd, -1, -1);
	CHECK(data_is(f, "agent\n"), "FILE_READ on the mount");
	frame_free(f);
	snprintf(cmd, sizeof(cmd), "%s/sub/dir", path);
	f = fpath(cl, VB_MSG_MKDIR, cmd);
	CHECK(f->h.type == VB_MSG_OK, "MKDIR on the mount: %s", frame_msg(f, m, sizeof(m)));
	frame_free(f);
}

/* ro 9p mount (VM only): readable, writes refused with ROFS. */
static void test_ro_mount(struct client *cl, const char *path)
{
	char p[1024], m[256];
	snprintf(p, sizeof(p), "%s/hello.txt", path);
	struct frame *f = fread_(cl, p, -1, -1);
	CHECK(data_is(f, "ro\n"), "read on the ro mount: %s", frame_msg(f, m, sizeof(m)));
	frame_free(f);
	snprintf(p, sizeof(p), "%s/new.txt", path);
	f = fwrite_(cl, p, "x", 1, 0, -1, -1);
	CHECK(err_code(f) == VB_ERR_ROFS, "write on the ro mount: %llu %s", (unsigned long long)err_code(f),
	      frame_msg(f, m, sizeof(m)));
	frame_free(f);
}

/* What a guest process must not see (VM only). */
static void test_vm_secrets(struct client *cl)
{
	struct xres x;
	sh(cl, 1000, "test ! -e /.voidbox && ! cat /proc/1/environ && ! ls /proc/1/fd && "
		     "! grep -q voidbox /proc/cmdline && hostname && test -c /dev/null && test -e /dev/ptmx && "
		     "test -d /dev/pts && stat -c '%a %u %g' /workspace /home/sandbox /tmp",
	   &x);
	CHECK(x.exited && x.exit_code == 0 && x.out.p &&
		      !strcmp((char *)x.out.p, "agent-test\n755 1000 1000\n700 1000 1000\n1777 0 0\n"),
	      "guest view: exit %llu out '%s' err '%s'", (unsigned long long)x.exit_code,
	      x.out.p ? (char *)x.out.p : "", x.err.p ? (char *)x.err.p : "");
	xres_free(&x);
}

/* NET_DOWN and UNMOUNT (a snapshot's create, before the save): in process
 * mode refused (no PID 1), in a VM NET_DOWN without NET_UP is refused, an
 * UNMOUNT with nothing mounted is OK, a payload is refused; the session
 * goes on after each. */
static struct frame *empty_req(struct client *cl, uint16_t type, int junk)
{
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, type, 0, 0);
	if (junk)
		vb_msg_put_u64(&b, VB_TAG_CODE, 7);
	vb_msg_end(&b);
	return call(cl, &b);
}

static void test_undo_messages(struct client *cl)
{
	char m[256];
	struct frame *f = empty_req(cl, VB_MSG_NET_DOWN, 0);
	CHECK(err_code(f) == VB_ERR_INVAL, "NET_DOWN without a network: %s", frame_msg(f, m, sizeof(m)));
	frame_free(f);
	f = empty_req(cl, VB_MSG_UNMOUNT, 0);
	if (g_vm)
		CHECK(f->h.type == VB_MSG_OK, "UNMOUNT with nothing mounted: %s", frame_msg(f, m, sizeof(m)));
	else
		CHECK(err_code(f) == VB_ERR_INVAL, "UNMOUNT in process mode: %s", frame_msg(f, m, sizeof(m)));
	frame_free(f);
	f = empty_req(cl, VB_MSG_UNMOUNT, 1);
	CHECK(err_code(f) == VB_ERR_INVAL, "UNMOUNT with a field: %s", frame_msg(f, m, sizeof(m)));
	frame_free(f);
	f = empty_req(cl, VB_MSG_NET_DOWN, 1);
	CHECK(err_code(f) == VB_ERR_INVAL, "NET_DOWN with a field: %s", frame_msg(f, m, sizeof(m)));
	frame_free(f);
	struct xres x;
	sh(cl, 1000, "echo still", &x);
	CHECK(x.exited && x.exit_code == 0 && x.out.p && !strcmp((char *)x.out.p, "still\n"),
	      "the session goes on after NET_DOWN/UNMOUNT");
	xres_free(&x);
}

static void test_proto_error(void)
{
	struct client cl;
	connect_auth(&cl);
	/* a malformed payload after the handshake: ERROR PROTO, then closed */
	uint8_t raw[VB_FRAME_HDR_LEN + 3];
	struct vb_hdr h = { .len = 3, .type = VB_MSG_FILE_STAT, .flags = 0, .id = 5 };
	vb_hdr_encode(raw, &h);
	memset(raw + VB_FRAME_HDR_LEN, 0xff, 3);
	struct vb_buf b = { .data = raw, .len = sizeof(raw), .cap = sizeof(raw) };
	cl_send(&cl, &b);
	struct frame *f = cl_recv_any(&cl, 3000, NULL);
	CHECK(f && f->h.type == VB_MSG_ERROR && err_code(f) == VB_ERR_PROTO, "malformed payload: ERROR PROTO");
	frame_free(f);
	if (!g_vm) {
		int eof = 0;
		f = cl_recv_any(&cl, 3000, &eof);
		CHECK(!f && eof, "malformed payload: the connection closes");
		frame_free(f);
	}
	cl_close(&cl);

	/* the stdin window is enforced */
	connect_auth(&cl);
	struct xopts o = { .argv = vec("cat", NULL), .uid = 1000, .gid = 1000, .want_stdin = 1 };
	uint32_t id = send_exec(&cl, &o);
	vfree(o.argv);
	f = cl_recv(&cl, id, 10000);
	CHECK(f && f->h.type == VB_MSG_EXEC_STARTED, "cat started");
	frame_free(f);
	uint8_t *junk = calloc(1, VB_STDIN_WINDOW + 1);
	struct vb_buf sb = { 0 };
	vb_msg_begin(&sb, VB_MSG_EXEC_STDIN, 0, id);
	vb_msg_put_bytes(&sb, VB_TAG_DATA, junk, VB_STDIN_WINDOW + 1);
	vb_msg_end(&sb);
	cl_send(&cl, &sb);
	vb_buf_free(&sb);
	free(junk);
	int proto = 0;
	for (;;) {
		f = cl_recv_any(&cl, 3000, NULL);
		if (!f)
			break;
		proto |= f->h.type == VB_MSG_ERROR && err_code(f) == VB_ERR_PROTO;
		frame_free(f);
	}
	CHECK(proto, "stdin beyond the window: ERROR PROTO");
	cl_close(&cl);
}

/* The host going away kills what it started. */
static void test_disconnect_kills(void)
{
	struct client cl;
	connect_auth(&cl);
	struct xopts o = { .argv = vec("sh", "-c", "sleep 100 & echo $!; wait", NULL), .uid = 1000, .gid = 1000 };
	uint32_t id = send_exec(&cl, &o);
	vfree(o.argv);
	uint64_t pid = 0, child = 0;
	struct frame *f;
	while ((f = cl_recv(&cl, id, 10000))) {
		const uint8_t *p;
		size_t n;
		if (f->h.type == VB_MSG_EXEC_STARTED)
			frame_u64(f, VB_TAG_PID, &pid);
		if (f->h.type == VB_MSG_EXEC_OUTPUT && frame_bytes(f, VB_TAG_DATA, &p, &n) == 0)
			child = strtoull((const char *)p, NULL, 10);
		int done = f->h.type != VB_MSG_EXEC_STARTED;
		frame_free(f);
		if (done)
			break;
	}
	CHECK(pid > 0 && child > 0, "disconnect: exec started (pid %llu, child %llu)", (unsigned long long)pid,
	      (unsigned long long)child);
	cl_close(&cl); /* gone, without a word */
	char script[256];
	snprintf(script, sizeof(script), "sleep 1; kill -0 %llu 2>/dev/null || kill -0 %llu 2>/dev/null",
		 (unsigned long long)pid, (unsigned long long)child);
	struct xres x;
	connect_auth(&cl); /* on virtio-serial this is what ends the old session */
	sh(&cl, 0, script, &x);
	CHECK(x.exited && x.exit_code == 1, "disconnect: the exec's process group is gone (exit %llu)",
	      (unsigned long long)x.exit_code);
	xres_free(&x);
	cl_close(&cl);
}

static void test_shutdown(void)
{
	struct client cl;
	connect_auth(&cl);
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_SHUTDOWN, 0, 0);
	vb_msg_end(&b);
	struct frame *f = call(&cl, &b);
	CHECK(f->h.type == VB_MSG_OK, "SHUTDOWN: OK");
	frame_free(f);
	int eof = 0;
	f = cl_recv_any(&cl, 10000, &eof);
	CHECK(!f && eof, "SHUTDOWN: the agent goes away");
	frame_free(f);
	cl_close(&cl);
}

/* --fd mode (a socketpair, as a `process` backend would use): one session,
 * and the agent exits when the host closes its end. */
static void test_fd_mode(const char *agent, const char *boot, const char *roots)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(sv[1], 3);
		setenv("VB_AGENT_ROOTS", roots, 1);
		execl(agent, agent, "--boot", boot, "--fd", "3", (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	struct client cl = { .fd = sv[0], .next_id = 1 };
	struct frame *f = cl_hello(&cl, g_secret, VB_PROTO_VERSION);
	CHECK(f && f->h.type == VB_MSG_HELLO_OK, "--fd: handshake");
	frame_free(f);
	struct xres x;
	struct xopts o = { .argv = vec("echo", "fd", NULL), .uid = 1000, .gid = 1000 };
	run_exec(&cl, &o, &x);
	CHECK(x.exited && x.out.len == 3 && !memcmp(x.out.p, "fd\n", 3), "--fd: echo");
	vfree(o.argv);
	xres_free(&x);
	cl_close(&cl);
	int st = -1;
	uint64_t t0 = now_ms();
	while (waitpid(pid, &st, WNOHANG) == 0 && now_ms() - t0 < 5000)
		usleep(10000);
	if (now_ms() - t0 >= 5000) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "--fd: the agent exits 0 at EOF (status %d)", st);
}

static int write_boot(const char *out, const char *secret_out, char **mounts, int nmounts,
		      int one_host, uint16_t fwd_port);

/* ONE_HOST boot data: the first handshake works, and then the agent has
 * forgotten the secret: the same secret is refused on a new connection. */
static void test_one_host(const char *agent, const char *dir, const char *roots)
{
	char boot[1024], secret_path[1024], sock[1024];
	uint8_t secret[VB_SECRET_LEN];
	snprintf(boot, sizeof(boot), "%s/boot-one", dir);
	snprintf(secret_path, sizeof(secret_path), "%s/secret-one", dir);
	snprintf(sock, sizeof(sock), "%s/sock-one", dir);
	int fd = -1;
	CHECK(write_boot(boot, secret_path, NULL, 0, 1, 0) == 0 &&
		      (fd = open(secret_path, O_RDONLY)) >= 0 &&
		      read(fd, secret, VB_SECRET_LEN) == VB_SECRET_LEN,
	      "one host: boot data");
	if (fd >= 0)
		close(fd);
	pid_t pid = fork();
	if (pid == 0) {
		setenv("VB_AGENT_ROOTS", roots, 1);
		execl(agent, agent, "--boot", boot, "--listen", sock, (char *)NULL);
		_exit(127);
	}
	struct client cl;
	int up = 0;
	for (int i = 0; i < 200 && !up; i++) {
		up = cl_connect(&cl, sock) == 0;
		if (!up)
			usleep(10000);
	}
	CHECK(up, "one host: connect");
	struct frame *f = up ? cl_hello(&cl, secret, VB_PROTO_VERSION) : NULL;
	CHECK(f && f->h.type == VB_MSG_HELLO_OK, "one host: the first handshake works");
	frame_free(f);
	if (up)
		cl_close(&cl);
	up = cl_connect(&cl, sock) == 0;
	f = up ? cl_hello(&cl, secret, VB_PROTO_VERSION) : NULL;
	CHECK(f && f->h.type == VB_MSG_ERROR && err_code(f) == VB_ERR_ACCESS,
	      "one host: the secret is refused after the first handshake");
	frame_free(f);
	if (up)
		cl_close(&cl);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* REKEY in process mode, on real second connections (--listen): in
 * reconnect mode the new secret authenticates a new connection and the old
 * one does not; ONE_HOST in the REKEY (or a one-host boot) leaves no secret
 * at all.  Process mode touches neither the RNG nor the clock: ENTROPY_BITS
 * is 0.  A malformed REKEY is refused and changes nothing. */
static struct frame *rekey(struct client *cl, const uint8_t secret[VB_SECRET_LEN], int one_host,
			   size_t n_entropy)
{
	struct vb_rekey rk = { .n_entropy = n_entropy, .one_host = one_host };
	memcpy(rk.secret, secret, VB_SECRET_LEN);
	struct vb_buf b = { 0 };
	vb_rekey_encode(&b, 0, &rk);
	return call(cl, &b);
}

static int hello_type(const char *sock, const uint8_t secret[VB_SECRET_LEN], uint64_t *code)
{
	struct client cl;
	if (cl_connect(&cl, sock) < 0)
		return -1;
	struct frame *f = cl_hello(&cl, secret, VB_PROTO_VERSION);
	int t = f ? f->h.type : -1;
	*code = f ? err_code(f) : 0;
	frame_free(f);
	cl_close(&cl);
	return t;
}

static void test_rekey_modes(const char *agent, const char *dir, const char *roots, int one_host)
{
	char boot[1024], secret_path[1024], sock[1024];
	uint8_t old[VB_SECRET_LEN], fresh[VB_SECRET_LEN], fresh2[VB_SECRET_LEN];
	snprintf(boot, sizeof(boot), "%s/boot-rk%d", dir, one_host);
	snprintf(secret_path, sizeof(secret_path), "%s/secret-rk%d", dir, one_host);
	snprintf(sock, sizeof(sock), "%s/sock-rk%d", dir, one_host);
	int fd = -1;
	CHECK(write_boot(boot, secret_path, NULL, 0, one_host, 0) == 0 &&
		      (fd = open(secret_path, O_RDONLY)) >= 0 &&
		      read(fd, old, VB_SECRET_LEN) == VB_SECRET_LEN &&
		      getrandom(fresh, VB_SECRET_LEN, 0) == VB_SECRET_LEN &&
		      getrandom(fresh2, VB_SECRET_LEN, 0) == VB_SECRET_LEN,
	      "rekey: boot data");
	if (fd >= 0)
		close(fd);
	pid_t pid = fork();
	if (pid == 0) {
		setenv("VB_AGENT_ROOTS", roots, 1);
		execl(agent, agent, "--boot", boot, "--listen", sock, (char *)NULL);
		_exit(127);
	}
	struct client cl;
	int up = 0;
	for (int i = 0; i < 200 && !up; i++) {
		up = cl_connect(&cl, sock) == 0;
		if (!up)
			usleep(10000);
	}
	CHECK(up, "rekey: connect");
	if (!up)
		goto out;
	struct frame *f = cl_hello(&cl, old, VB_PROTO_VERSION);
	CHECK(f && f->h.type == VB_MSG_HELLO_OK, "rekey: the first handshake works");
	frame_free(f);
	/* malformed: too little entropy; nothing changes */
	f = rekey(&cl, fresh, 0, VB_REKEY_ENTROPY_MIN - 1);
	CHECK(f->h.type == VB_MSG_ERROR && err_code(f) == VB_ERR_INVAL,
	      "rekey: too little entropy is refused (%s)", vb_msg_name(f->h.type));
	frame_free(f);
	if (!one_host) {
		uint64_t code = 0;
		CHECK(hello_type(sock, old, &code) == VB_MSG_HELLO_OK,
		      "rekey: a refused REKEY leaves the old secret");
	}
	f = rekey(&cl, fresh, 0, 64);
	uint64_t bits = 99;
	CHECK(f->h.type == VB_MSG_OK && frame_u64(f, VB_TAG_ENTROPY_BITS, &bits) == 0 && bits == 0,
	      "rekey: OK, no entropy credited in process mode (%s, %llu)", vb_msg_name(f->h.type),
	      (unsigned long long)bits);
	frame_free(f);
	uint64_t code = 0;
	CHECK(hello_type(sock, old, &code) == VB_MSG_ERROR && code == VB_ERR_ACCESS,
	      "rekey (one_host %d): the old secret is refused on a new connection", one_host);
	int t = hello_type(sock, fresh, &code);
	if (one_host)
		CHECK(t == VB_MSG_ERROR && code == VB_ERR_ACCESS,
		      "rekey (one host): the new secret is forgotten too");
	else
		CHECK(t == VB_MSG_HELLO_OK, "rekey: the new secret authenticates a new connection");
	/* the first session goes on; ONE_HOST in a REKEY ends reconnects */
	struct xres x;
	sh(&cl, 0, "echo alive", &x);
	CHECK(x.exited && x.out.len == 6 && memcmp(x.out.p, "alive\n", 6) == 0,
	      "rekey: the session goes on");
	xres_free(&x);
	f = rekey(&cl, fresh2, 1, 64);
	CHECK(f->h.type == VB_MSG_OK, "rekey with ONE_HOST: OK");
	frame_free(f);
	CHECK(hello_type(sock, fresh2, &code) == VB_MSG_ERROR && code == VB_ERR_ACCESS,
	      "rekey with ONE_HOST: no secret authenticates any more");
	CHECK(hello_type(sock, fresh, &code) == VB_MSG_ERROR && code == VB_ERR_ACCESS,
	      "rekey with ONE_HOST: nor the one before");
	cl_close(&cl);
out:
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* ---- loopback forwards ---------------------------------------------------- */

static int tcp_connect(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The next frame of (type) for stream (id) (0: any stream), others dropped. */
static struct frame *stream_frame(struct client *cl, uint16_t type, uint32_t id)
{
	int64_t end = (int64_t)now_ms() + 5000;
	while ((int64_t)now_ms() < end) {
		int eof = 0;
		struct frame *f = cl_recv_any(cl, 1000, &eof);
		if (!f && eof)
			return NULL;
		if (f && f->h.type == type && (!id || f->h.id == id))
			return f;
		frame_free(f);
	}
	return NULL;
}

static void send_stream(struct client *cl, uint16_t type, uint32_t id, const void *data, size_t n)
{
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, type, 0, id);
	if (data)
		vb_msg_put_bytes(&b, VB_TAG_DATA, data, n);
	vb_msg_end(&b);
	cl_send(cl, &b);
	vb_buf_free(&b);
}

/* A TCP connection to the forward's port becomes a guest-opened stream:
 * bytes both ways, acks of whole frames, half-closes both ways, then the
 * agent's STREAM_END; at most VB_MAX_STREAMS at once. */
static void test_forward(const char *agent, const char *dir, const char *roots)
{
	char boot[1024], secret_path[1024], sock[1024];
	uint8_t secret[VB_SECRET_LEN];
	uint16_t port = (uint16_t)(20000 + getpid() % 20000);
	snprintf(boot, sizeof(boot), "%s/boot-fwd", dir);
	snprintf(secret_path, sizeof(secret_path), "%s/secret-fwd", dir);
	snprintf(sock, sizeof(sock), "%s/sock-fwd", dir);
	int fd = -1;
	CHECK(write_boot(boot, secret_path, NULL, 0, 0, port) == 0 &&
		      (fd = open(secret_path, O_RDONLY)) >= 0 &&
		      read(fd, secret, VB_SECRET_LEN) == VB_SECRET_LEN,
	      "forward: boot data");
	if (fd >= 0)
		close(fd);
	pid_t pid = fork();
	if (pid == 0) {
		setenv("VB_AGENT_ROOTS", roots, 1);
		execl(agent, agent, "--boot", boot, "--listen", sock, (char *)NULL);
		_exit(127);
	}
	struct client cl;
	int up = 0;
	for (int i = 0; i < 200 && !up; i++) {
		up = cl_connect(&cl, sock) == 0;
		if (!up)
			usleep(10000);
	}
	CHECK(up, "forward: connect");
	if (!up)
		goto out;
	struct frame *f = cl_hello(&cl, secret, VB_PROTO_VERSION);
	CHECK(f && f->h.type == VB_MSG_HELLO_OK, "forward: handshake");
	frame_free(f);

	int t = tcp_connect(port);
	CHECK(t >= 0, "forward: the agent listens on 127.0.0.1:%u", port);
	f = stream_frame(&cl, VB_MSG_STREAM_OPEN, 0);
	uint64_t kind = 0;
	CHECK(f && (f->h.id & VB_GUEST_ID_BIT) && frame_u64(f, VB_TAG_KIND, &kind) == 0 &&
		      kind == 7,
	      "forward: STREAM_OPEN of the forward's kind on a guest id");
	uint32_t id = f ? f->h.id : 0;
	frame_free(f);
	CHECK(write(t, "ping", 4) == 4, "forward: write");
	f = stream_frame(&cl, VB_MSG_STREAM_DATA, id);
	const uint8_t *d = NULL;
	size_t n = 0;
	CHECK(f && frame_bytes(f, VB_TAG_DATA, &d, &n) == 0 && n == 4 && !memcmp(d, "ping", 4),
	      "forward: the program's bytes arrive as STREAM_DATA");
	frame_free(f);
	send_stream(&cl, VB_MSG_STREAM_DATA, id, "pong", 4);
	char buf[16];
	struct pollfd pf = { .fd = t, .events = POLLIN };
	CHECK(poll(&pf, 1, 5000) == 1 && read(t, buf, sizeof(buf)) == 4 && !memcmp(buf, "pong", 4),
	      "forward: the host's bytes reach the program");
	f = stream_frame(&cl, VB_MSG_STREAM_ACK, id);
	uint64_t count = 0;
	CHECK(f && frame_u64(f, VB_TAG_COUNT, &count) == 0 &&
		      count == VB_STREAM_FRAME_OVERHEAD + 4,
	      "forward: STREAM_ACK for the whole frame (%llu)", (unsigned long long)count);
	frame_free(f);
	shutdown(t, SHUT_WR);
	f = stream_frame(&cl, VB_MSG_STREAM_SHUT, id);
	CHECK(f != NULL, "forward: the program's EOF becomes STREAM_SHUT");
	frame_free(f);
	send_stream(&cl, VB_MSG_STREAM_SHUT, id, NULL, 0);
	CHECK(poll(&pf, 1, 5000) == 1 && read(t, buf, sizeof(buf)) == 0,
	      "forward: STREAM_SHUT becomes the program's EOF");
	f = stream_frame(&cl, VB_MSG_STREAM_END, id);
	CHECK(f != NULL, "forward: STREAM_END once both directions are shut");
	frame_free(f);
	close(t);

	/* 17 connections: 16 streams, the 17th waits for one to end */
	int conns[VB_MAX_STREAMS + 1];
	uint32_t ids[VB_MAX_STREAMS + 1];
	for (unsigned i = 0; i <= VB_MAX_STREAMS; i++)
		conns[i] = tcp_connect(port);
	unsigned opened = 0;
	while ((f = stream_frame(&cl, VB_MSG_STREAM_OPEN, 0)) != NULL) {
		if (opened <= VB_MAX_STREAMS)
			ids[opened] = f->h.id;
		opened++;
		frame_free(f);
		if (opened == VB_MAX_STREAMS)
			break;
	}
	f = stream_frame(&cl, VB_MSG_STREAM_OPEN, 0); /* waits its 5 s */
	CHECK(opened == VB_MAX_STREAMS && !f, "forward: %u streams open at most (%u)",
	      VB_MAX_STREAMS, opened);
	frame_free(f);
	send_stream(&cl, VB_MSG_STREAM_RESET, ids[0], NULL, 0);
	f = stream_frame(&cl, VB_MSG_STREAM_OPEN, 0);
	CHECK(f && f->h.id > ids[VB_MAX_STREAMS - 1],
	      "forward: a reset makes room for the next connection, on a higher id");
	frame_free(f);

	for (unsigned i = 0; i <= VB_MAX_STREAMS; i++)
		if (conns[i] >= 0)
			close(conns[i]);
	cl_close(&cl);
out:
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* ---- main ---------------------------------------------------------------- */

static int write_boot(const char *out, const char *secret_out, char **mounts, int nmounts,
		      int one_host, uint16_t fwd_port)
{
	struct vb_boot boot;
	memset(&boot, 0, sizeof(boot));
	boot.one_host = one_host;
	struct vb_boot_forward fw = { .port = fwd_port, .kind = 7 };
	boot.forwards = fwd_port ? &fw : NULL;
	boot.n_forwards = fwd_port ? 1 : 0;
	struct vb_boot_mount m[VB_MAX_MOUNTS];
	if (getrandom(boot.secret, VB_SECRET_LEN, 0) != VB_SECRET_LEN)
		return -1;
	boot.allow = (char **)(uintptr_t)ALLOW;
	while (boot.allow[boot.n_allow])
		boot.n_allow++;
	boot.hostname = (char *)(uintptr_t)"agent-test";
	for (int i = 0; i < nmounts && i < (int)VB_MAX_MOUNTS; i++) {
		char *tag = strdup(mounts[i]), *path = strchr(tag, ':'), *ro = path ? strrchr(path + 1, ':') : NULL;
		if (!ro)
			return -1;
		*path++ = '\0';
		*ro++ = '\0';
		m[i] = (struct vb_boot_mount){ tag, path, strcmp(ro, "rw") != 0 };
		boot.n_mounts++;
		boot.mounts = m;
	}
	struct vb_buf b = { 0 };
	if (vb_boot_encode(&b, &boot) < 0)
		return -1;
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0400);
	int ok = fd >= 0 && write(fd, b.data, b.len) == (ssize_t)b.len;
	if (fd >= 0)
		close(fd);
	fd = open(secret_out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ok = ok && fd >= 0 && write(fd, boot.secret, VB_SECRET_LEN) == VB_SECRET_LEN;
	if (fd >= 0)
		close(fd);
	vb_buf_free(&b);
	for (size_t i = 0; i < boot.n_mounts; i++)
		free(m[i].tag); /* path points into the same allocation */
	return ok ? 0 : -1;
}

static char *g_ro_mount;

static void run_all(int shutdown, char **mounts, int nmounts)
{
	struct client cl;
	test_handshake();
	connect_auth(&cl);
	if (g_vm)
		test_vm_secrets(&cl);
	if (g_ro_mount)
		test_ro_mount(&cl, g_ro_mount);
	test_exec_basic(&cl);
	test_exec_errors(&cl);
	test_files(&cl);
	test_confinement(&cl);
	test_output_flow(&cl);
	test_stdin(&cl);
	test_signals_timeouts(&cl);
	test_pty_basics(&cl);
	test_pty_eof(&cl);
	test_pty_interactive(&cl);
	test_concurrency(&cl);
	for (int i = 0; i < nmounts; i++)
		test_mount(&cl, mounts[i]);
	test_undo_messages(&cl);
	cl_close(&cl);
	test_disconnect_kills();
	test_proto_error();
	if (shutdown)
		test_shutdown();
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	signal(SIGPIPE, SIG_IGN);
	g_root = geteuid() == 0;
	if (argc >= 4 && !strcmp(argv[1], "--mkboot")) {
		char *mounts[VB_MAX_MOUNTS];
		int n = 0;
		for (int i = 4; i + 1 < argc && n < (int)VB_MAX_MOUNTS; i += 2)
			if (!strcmp(argv[i], "--mount"))
				mounts[n++] = argv[i + 1];
		return write_boot(argv[2], argv[3], mounts, n, 0, 0) < 0 ? 1 : 0;
	}
	if (argc >= 5 && !strcmp(argv[1], "--connect") && !strcmp(argv[3], "--secret")) {
		g_vm = 1;
		g_root = 1; /* the agent is PID 1, root */
		g_sock = argv[2];
		int fd = open(argv[4], O_RDONLY);
		if (fd < 0 || read(fd, g_secret, VB_SECRET_LEN) != VB_SECRET_LEN)
			return 1;
		close(fd);
		int shutdown = 0, nmounts = 0;
		char *mounts[VB_MAX_MOUNTS];
		const char *script = NULL;
		for (int i = 5; i < argc; i++) {
			if (!strcmp(argv[i], "--shutdown"))
				shutdown = 1;
			else if (!strcmp(argv[i], "--mount") && i + 1 < argc && nmounts < (int)VB_MAX_MOUNTS)
				mounts[nmounts++] = argv[++i];
			else if (!strcmp(argv[i], "--ro-mount") && i + 1 < argc)
				g_ro_mount = argv[++i];
			else if (!strcmp(argv[i], "--sh") && i + 1 < argc)
				script = argv[++i];
		}
		snprintf(g_ws, sizeof(g_ws), "/workspace");
		snprintf(g_outside, sizeof(g_outside), "/etc");
		snprintf(g_outside_file, sizeof(g_outside_file), "/etc/passwd");
		if (script) { /* debugging aid: run one command as root, print all */
			struct client cl;
			struct xres x;
			struct xopts o = { .argv = vec("sh", "-c", script, NULL), .keep_max = 16u << 20 };
			connect_auth(&cl);
			run_exec(&cl, &o, &x);
			if (x.out.len)
				fwrite(x.out.p, 1, x.out.len, stdout);
			if (x.err.len)
				fwrite(x.err.p, 1, x.err.len, stderr);
			printf("[exit %llu signal %llu, %llu ms, %llu+%llu bytes%s%s]\n",
			       (unsigned long long)x.exit_code, (unsigned long long)x.sig,
			       (unsigned long long)x.ms, (unsigned long long)x.out_total,
			       (unsigned long long)x.err_total, x.err_code ? ", error: " : "", x.err_msg);
			xres_free(&x);
			vfree(o.argv);
			cl_close(&cl);
			return 0;
		}
		run_all(shutdown, mounts, nmounts);
	} else if (argc == 3 && !strcmp(argv[1], "--agent")) {
		char tmpl[] = "/tmp/agent-test.XXXXXX";
		char *dir = mkdtemp(tmpl), path[1024], roots[2048], boot[1024], secret[1024];
		if (!dir)
			return 1;
		chmod(dir, 0755);
		snprintf(g_ws, sizeof(g_ws), "%s/ws", dir);
		snprintf(path, sizeof(path), "%s/home", dir);
		mkdir(g_ws, 0755);
		mkdir(path, 0755);
		snprintf(g_outside, sizeof(g_outside), "%s/outside", dir);
		mkdir(g_outside, 0700);
		snprintf(g_outside_file, sizeof(g_outside_file), "%s/secret.txt", g_outside);
		int fd = open(g_outside_file, O_WRONLY | O_CREAT, 0600);
		if (fd < 0 || write(fd, "secret\n", 7) != 7)
			return 1;
		close(fd);
		/* not /tmp: the "outside" directory is below it */
		snprintf(roots, sizeof(roots), "%s:%s", g_ws, path);
		snprintf(boot, sizeof(boot), "%s/boot", dir);
		snprintf(secret, sizeof(secret), "%s/secret", dir);
		if (write_boot(boot, secret, NULL, 0, 0, 0) < 0)
			return 1;
		fd = open(secret, O_RDONLY);
		if (fd < 0 || read(fd, g_secret, VB_SECRET_LEN) != VB_SECRET_LEN)
			return 1;
		close(fd);
		static char sock[1100];
		snprintf(sock, sizeof(sock), "%s/sock", dir);
		g_sock = sock;
		pid_t pid = fork();
		if (pid == 0) {
			setenv("VB_AGENT_ROOTS", roots, 1);
			execl(argv[2], argv[2], "--boot", boot, "--listen", sock, (char *)NULL);
			_exit(127);
		}
		run_all(1, NULL, 0);
		test_one_host(argv[2], dir, roots);
		test_rekey_modes(argv[2], dir, roots, 0);
		test_rekey_modes(argv[2], dir, roots, 1);
		test_forward(argv[2], dir, roots);
		int st = 0;
		uint64_t t0 = now_ms();
		while (waitpid(pid, &st, WNOHANG) == 0 && now_ms() - t0 < 5000)
			usleep(10000);
		if (waitpid(pid, &st, WNOHANG) == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			CHECK(0, "the agent did not exit after SHUTDOWN");
		}
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "agent exit status %d", st);
		test_fd_mode(argv[2], boot, roots);
		snprintf(path, sizeof(path), "rm -rf '%s'", dir);
		if (system(path) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
	} else {
		fprintf(stderr, "usage: see the comment at the top of agent_test.c\n");
		return 2;
	}
	printf("%d checks, %d failures\n", checks, failures);
	return failures ? 1 : 0;
}
