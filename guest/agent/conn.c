/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conn.c — one control connection: framing, authentication, dispatch, and
 * the write lock that keeps frames from many threads whole.
 *
 * The reader thread (the caller of conn_serve_*) only reads, validates and
 * hands work off: EXEC to its own thread (exec.c), file operations and SAMPLE
 * to a thread each, stream control (ACK, STDIN, SIGNAL, RESIZE) to the exec's
 * queue.  It writes only small replies (HELLO_OK, ERROR, SHUTDOWN's OK).
 *
 * Sessions.  A stream connection (vsock, unix socket, pipe) is one session:
 * it ends at EOF, on a protocol error or after a refused handshake (one
 * ERROR frame is sent first), and the fd is closed.
 *
 * The virtio-serial port cannot be closed towards the host: a guest-side
 * close is invisible to a host on QEMU's socket chardev.  A session there
 * ends when read() returns 0 (the host side is not connected), but that is
 * not reliable: a disconnect followed quickly by a reconnect reaches the
 * guest as two control messages that may be handled in one batch, so the
 * port never looks disconnected.  Hence the serial port resynchronises on
 * the secret instead of on connection events:
 *   - after a refused handshake or a protocol error the agent replies one
 *     ERROR frame and then hunts: it discards input until a HELLO frame that
 *     carries the session secret appears, at any byte offset (a random
 *     256-bit secret cannot occur by accident), and a new session starts
 *     with that frame;
 *   - a HELLO arriving at a frame boundary inside an authenticated session
 *     means a new host: the old session ends (its execs are killed) and the
 *     new one starts with that HELLO.
 * See docs/agent.md.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

enum { READ_OK = 1, READ_EOF = 0, READ_ERR = -1, READ_BAD = 2, READ_NOMEM = 3 };

/* ---- conn lifetime ------------------------------------------------------- */

static struct conn *conn_new(struct chan *ch)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->chan = ch;
	atomic_init(&c->dead, 0);
	pthread_mutex_init(&c->lock, NULL);
	c->refs = 1;
	return c;
}

void conn_ref(struct conn *c)
{
	pthread_mutex_lock(&c->lock);
	c->refs++;
	pthread_mutex_unlock(&c->lock);
}

void conn_unref(struct conn *c)
{
	pthread_mutex_lock(&c->lock);
	int last = --c->refs == 0;
	pthread_mutex_unlock(&c->lock);
	if (!last)
		return;
	if (c->chan->kind == CHAN_STREAM) {
		/* the chan of a stream belongs to its only session; its fds
		 * were closed when the session ended */
		pthread_mutex_destroy(&c->chan->wlock);
		free(c->chan);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Reserve an in-flight slot for a request holding (bytes) of payload. */
static int request_begin(struct conn *c, size_t bytes)
{
	int ok;
	pthread_mutex_lock(&c->lock);
	ok = !c->closing && c->inflight < AGENT_MAX_INFLIGHT &&
	     c->inflight_bytes + bytes <= AGENT_MAX_INFLIGHT_BYTES;
	if (ok) {
		c->inflight++;
		c->inflight_bytes += bytes;
	}
	pthread_mutex_unlock(&c->lock);
	return ok ? 0 : -1;
}

int conn_idle(struct conn *c)
{
	pthread_mutex_lock(&c->lock);
	int idle = c->inflight == 0;
	pthread_mutex_unlock(&c->lock);
	return idle;
}

void conn_request_done(struct conn *c, size_t bytes)
{
	pthread_mutex_lock(&c->lock);
	c->inflight--;
	c->inflight_bytes -= bytes;
	pthread_mutex_unlock(&c->lock);
}

/* ---- writing ------------------------------------------------------------- */

static int chan_write(struct conn *c, const uint8_t *p, size_t n)
{
	int fd = c->chan->wfd;
	unsigned hup_ms = 0;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN)
			return -1;
		/* full: wait, but notice a session that ended meanwhile (its
		 * host may never read again) */
		for (;;) {
			if (atomic_load(&c->dead))
				return -1;
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };
			int r = poll(&pfd, 1, 200);
			if (r < 0 && errno != EINTR)
				return -1;
			if (r <= 0)
				continue;
			if (pfd.revents & POLLOUT)
				break;
			/* virtio-serial: the host went away -- or it reconnected and
			 * the port-open event is still behind the data it sent (the
			 * guest handles control messages apart from data): the
			 * reply to its HELLO must not be lost, so give it a moment */
			if (c->chan->kind != CHAN_SERIAL || (pfd.revents & POLLNVAL) ||
			    hup_ms >= AGENT_HUP_GRACE_MS)
				return -1;
			agent_sleep_ms(20);
			hup_ms += 20;
		}
	}
	return 0;
}

int conn_send(struct conn *c, struct vb_buf *frame)
{
	if (frame->oom || frame->len < VB_FRAME_HDR_LEN)
		return -1;
	pthread_mutex_lock(&c->chan->wlock);
	int rc = -1;
	if (!atomic_load(&c->dead)) {
		rc = chan_write(c, frame->data, frame->len);
		if (rc < 0)
			atomic_store(&c->dead, 1);
	}
	pthread_mutex_unlock(&c->chan->wlock);
	return rc;
}

__attribute__((format(printf, 4, 0)))
static void send_errorv(struct conn *c, uint32_t id, int code, const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_ERROR, 0, id);
	vb_msg_put_u64(&b, VB_TAG_CODE, (uint64_t)code);
	vb_msg_put_str(&b, VB_TAG_MESSAGE, msg);
	if (vb_msg_end(&b) == 0)
		conn_send(c, &b);
	vb_buf_free(&b);
}

void conn_send_error(struct conn *c, uint32_t id, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	send_errorv(c, id, code, fmt, ap);
	va_end(ap);
}

/* ---- reading ------------------------------------------------------------- */

/* Read exactly (n) bytes, pushed-back bytes first.  (idle): nothing of this
 * frame has arrived yet and, on the serial port, "no host connected" is
 * not an end but a wait. */
static int read_exact(struct chan *ch, uint8_t *p, size_t n, int idle)
{
	unsigned backoff = 2;
	if (ch->pb && n > 0) {
		size_t k = ch->pb_len - ch->pb_off < n ? ch->pb_len - ch->pb_off : n;
		memcpy(p, ch->pb + ch->pb_off, k);
		p += k;
		n -= k;
		ch->pb_off += k;
		idle = 0;
		if (ch->pb_off == ch->pb_len) {
			explicit_bzero(ch->pb, ch->pb_len);
			free(ch->pb);
			ch->pb = NULL;
			ch->pb_len = ch->pb_off = 0;
		}
	}
	while (n > 0) {
		ssize_t r = read(ch->rfd, p, n);
		if (r > 0) {
			p += r;
			n -= (size_t)r;
			idle = 0;
			continue;
		}
		if (r == 0) {
			/* virtio-serial returns 0 while no host is connected */
			if (ch->kind == CHAN_SERIAL && idle) {
				agent_sleep_ms(backoff);
				backoff = backoff < 50 ? backoff * 2 : 50;
				continue;
			}
			return READ_EOF;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return READ_ERR;
		struct pollfd pfd = { .fd = ch->rfd, .events = POLLIN };
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return READ_ERR;
	}
	return READ_OK;
}

/* Make (n) bytes the next input of the reader (ownership of p taken). */
static void push_back(struct chan *ch, uint8_t *p, size_t n)
{
	if (ch->pb) { /* keep the rest of an older push-back after it */
		size_t rest = ch->pb_len - ch->pb_off;
		uint8_t *q = realloc(p, n + rest);
		if (!q)
			agent_fatal("out of memory");
		memcpy(q + n, ch->pb + ch->pb_off, rest);
		explicit_bzero(ch->pb, ch->pb_len);
		free(ch->pb);
		p = q;
		n += rest;
	}
	ch->pb = p;
	ch->pb_len = n;
	ch->pb_off = 0;
}

/* Read one frame; *payload is malloc'd (caller frees).  Returns READ_OK,
 * READ_EOF, READ_ERR, READ_BAD if the header is invalid or longer than
 * (max), READ_NOMEM if the payload was discarded for lack of memory. */
static int read_frame(struct chan *ch, struct vb_hdr *h, uint8_t **payload, uint32_t max, int idle)
{
	uint8_t raw[VB_FRAME_HDR_LEN];
	int rc = read_exact(ch, raw, sizeof(raw), idle);
	if (rc != READ_OK)
		return rc;
	if (vb_hdr_decode(raw, h) < 0 || h->len > max)
		return READ_BAD;
	uint8_t *p = malloc(h->len ? h->len : 1);
	if (!p) {
		uint8_t sink[4096];
		for (size_t left = h->len; left > 0;) {
			size_t k = left < sizeof(sink) ? left : sizeof(sink);
			if ((rc = read_exact(ch, sink, k, 0)) != READ_OK)
				return rc;
			left -= k;
		}
		return READ_NOMEM;
	}
	rc = read_exact(ch, p, h->len, 0);
	if (rc != READ_OK) {
		free(p);
		return rc;
	}
	*payload = p;
	return READ_OK;
}

/* The secret changes after start (one-host handshake, REKEY) while vsock
 * sessions authenticate on their own threads and the serial port hunts. */
static pthread_mutex_t secret_lock = PTHREAD_MUTEX_INITIALIZER;

/* True if (s) is the session secret, which is never true once it has been
 * forgotten (its zeroed bytes must not match anything). */
static int secret_ok(const uint8_t *s)
{
	pthread_mutex_lock(&secret_lock);
	int ok = !g_agent.secret_gone && vb_secret_equal(s, g_agent.boot.secret);
	pthread_mutex_unlock(&secret_lock);
	return ok;
}

/* A handshake proved (s): in one-host mode it claims the secret, which is
 * forgotten before HELLO_OK, so that exactly one handshake succeeds (a
 * second connection racing this one, or coming right after, finds it
 * gone).  Returns 1 if (s) authenticates this handshake. */
static int secret_claim(const uint8_t *s)
{
	pthread_mutex_lock(&secret_lock);
	int ok = !g_agent.secret_gone && vb_secret_equal(s, g_agent.boot.secret);
	if (ok && g_agent.boot.one_host) {
		atomic_store(&g_agent.secret_gone, 1);
		explicit_bzero(g_agent.boot.secret, sizeof(g_agent.boot.secret));
	}
	pthread_mutex_unlock(&secret_lock);
	return ok;
}

void conn_secret_replace(const uint8_t secret[VB_SECRET_LEN], int one_host)
{
	pthread_mutex_lock(&secret_lock);
	explicit_bzero(g_agent.boot.secret, sizeof(g_agent.boot.secret));
	if (one_host)
		g_agent.boot.one_host = 1;
	if (g_agent.boot.one_host) {
		/* the host never reconnects: nothing authenticates any more */
		atomic_store(&g_agent.secret_gone, 1);
	} else {
		memcpy(g_agent.boot.secret, secret, VB_SECRET_LEN);
		atomic_store(&g_agent.secret_gone, 0);
	}
	pthread_mutex_unlock(&secret_lock);
}

/* True if (payload) carries the session secret. */
static int has_secret(const uint8_t *payload, size_t len)
{
	struct vb_field f;
	if (vb_payload_find(payload, len, VB_TAG_SECRET, &f) < 0 || !f.data || f.len != VB_SECRET_LEN)
		return 0;
	return secret_ok(f.data);
}

/* Serial port, after a refused handshake or a protocol error: discard input
 * until a HELLO frame with the session secret starts at some byte offset,
 * and push it back so that the next session reads it first. */
static void hunt(struct chan *ch)
{
	const size_t frame_max = VB_FRAME_HDR_LEN + AGENT_PREAUTH_MAX, cap = 2 * frame_max;
	uint8_t *buf = malloc(cap);
	size_t len = 0;
	unsigned backoff = 2;
	if (!buf)
		agent_fatal("out of memory");
	if (ch->pb) { /* whatever was pushed back is input like any other */
		size_t k = ch->pb_len - ch->pb_off;
		if (k > cap)
			k = cap;
		memcpy(buf, ch->pb + ch->pb_off + (ch->pb_len - ch->pb_off - k), k);
		len = k;
		explicit_bzero(ch->pb, ch->pb_len);
		free(ch->pb);
		ch->pb = NULL;
		ch->pb_len = ch->pb_off = 0;
	}
	for (;;) {
		size_t i = 0;
		for (; i + VB_FRAME_HDR_LEN <= len; i++) {
			struct vb_hdr h;
			if (vb_hdr_decode(buf + i, &h) < 0 || h.type != VB_MSG_HELLO || h.id != 0 ||
			    h.len > AGENT_PREAUTH_MAX)
				continue;
			if (i + VB_FRAME_HDR_LEN + h.len > len)
				break; /* a candidate, not complete yet */
			if (has_secret(buf + i + VB_FRAME_HDR_LEN, h.len)) {
				uint8_t *rest = malloc(len - i);
				if (!rest)
					agent_fatal("out of memory");
				memcpy(rest, buf + i, len - i);
				push_back(ch, rest, len - i);
				explicit_bzero(buf, cap);
				free(buf);
				return;
			}
		}
		/* keep what may still start a HELLO */
		memmove(buf, buf + i, len - i);
		len -= i;
		ssize_t r = read(ch->rfd, buf + len, cap - len);
		if (r > 0) {
			len += (size_t)r;
			backoff = 2;
		} else if (r == 0) { /* no host: what we have is stale */
			len = 0;
			agent_sleep_ms(backoff);
			backoff = backoff < 50 ? backoff * 2 : 50;
		} else if (errno == EAGAIN) {
			struct pollfd pfd = { .fd = ch->rfd, .events = POLLIN };
			poll(&pfd, 1, -1);
		} else if (errno != EINTR) {
			agent_fatal("reading the control port: %s", strerror(errno));
		}
	}
}

/* ---- handshake ----------------------------------------------------------- */

ssize_t agent_read_boot_id(char **out)
{
	*out = NULL;
	ssize_t n = agent_read_small("/proc/sys/kernel/random/boot_id", 64, out);
	while (n > 0 && ((*out)[n - 1] == '\n' || (*out)[n - 1] == ' '))
		(*out)[--n] = '\0';
	return n;
}

static int send_hello_ok(struct conn *c)
{
	struct utsname u;
	char *boot_id = NULL;
	if (uname(&u) < 0)
		memset(&u, 0, sizeof(u));
	/* The kernel makes its boot id on the first read, from its CRNG: a VM
	 * that may be snapshotted (no one-host boot) leaves it unmade, so that
	 * each restore makes its own after the re-key's reseed (REKEY's OK
	 * carries it).  Read here, every restore would share it. */
	ssize_t n = g_agent.pid1 && !g_agent.boot.one_host ? 0 : agent_read_boot_id(&boot_id);
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_HELLO_OK, 0, 0);
	vb_msg_put_u64(&b, VB_TAG_VERSION, VB_PROTO_VERSION);
	vb_msg_put_str(&b, VB_TAG_KERNEL, u.release);
	vb_msg_put_str(&b, VB_TAG_BOOT_ID, n > 0 ? boot_id : "");
	int rc = vb_msg_end(&b) == 0 ? conn_send(c, &b) : -1;
	vb_buf_free(&b);
	free(boot_id);
	return rc;
}

/* Returns 0 when the host proved the secret; otherwise it replied ERROR. */
static int authenticate(struct conn *c, const struct vb_hdr *h, const uint8_t *payload)
{
	struct vb_reader r;
	struct vb_field f;
	uint64_t version = 0;
	const uint8_t *secret = NULL;
	int rc, have_version = 0;
	if (h->type != VB_MSG_HELLO) {
		conn_send_error(c, 0, VB_ERR_PROTO, "expected HELLO, got %s", vb_msg_name(h->type));
		return -1;
	}
	vb_reader_init(&r, payload, h->len);
	while ((rc = vb_reader_next(&r, &f)) > 0) {
		if (f.tag == VB_TAG_VERSION && !have_version)
			have_version = vb_field_u64(&f, &version) == 0;
		else if (f.tag == VB_TAG_SECRET && !secret && f.len == VB_SECRET_LEN)
			secret = f.data;
	}
	if (rc < 0 || !have_version) {
		conn_send_error(c, 0, VB_ERR_PROTO, "malformed HELLO");
		return -1;
	}
	if (version != VB_PROTO_VERSION) {
		struct vb_buf b = { 0 };
		char msg[128];
		snprintf(msg, sizeof(msg), "protocol version %llu is not supported (the agent speaks %u)",
			 (unsigned long long)version, VB_PROTO_VERSION);
		vb_msg_begin(&b, VB_MSG_ERROR, 0, 0);
		vb_msg_put_u64(&b, VB_TAG_CODE, VB_ERR_PROTO);
		vb_msg_put_str(&b, VB_TAG_MESSAGE, msg);
		vb_msg_put_u64(&b, VB_TAG_VERSION, VB_PROTO_VERSION);
		if (vb_msg_end(&b) == 0)
			conn_send(c, &b);
		vb_buf_free(&b);
		agent_log("handshake refused: host speaks protocol version %llu",
			  (unsigned long long)version);
		return -1;
	}
	/* one-host: the secret is forgotten before HELLO_OK; nothing can
	 * steal what is gone */
	if (!secret || !secret_claim(secret)) {
		conn_send_error(c, 0, VB_ERR_ACCESS, "authentication failed");
		agent_log("handshake refused: wrong secret (or one already used)");
		return -1;
	}
	return send_hello_ok(c);
}

/* ---- dispatch ------------------------------------------------------------ */

struct job {
	struct conn *c;
	struct vb_hdr h;
	uint8_t *payload;
};

static void *job_main(void *arg)
{
	struct job *j = arg;
	if (j->h.type == VB_MSG_SAMPLE)
		sample_handle(j->c, &j->h);
	else
		files_handle(j->c, &j->h, j->payload);
	conn_request_done(j->c, j->h.len);
	conn_unref(j->c);
	free(j->payload);
	free(j);
	return NULL;
}

/* Hand (payload) (ownership taken) to a job thread. */
static void start_job(struct conn *c, const struct vb_hdr *h, uint8_t *payload)
{
	if (request_begin(c, h->len) < 0) {
		conn_send_error(c, h->id, VB_ERR_BUSY, "too many requests in flight");
		free(payload);
		return;
	}
	struct job *j = malloc(sizeof(*j));
	int rc = ENOMEM;
	if (j) {
		*j = (struct job){ .c = c, .h = *h, .payload = payload };
		conn_ref(c);
		rc = agent_thread(job_main, j);
		if (rc != 0)
			conn_unref(c);
	}
	if (rc != 0) {
		conn_request_done(c, h->len);
		conn_send_error(c, h->id, VB_ERR_BUSY, "cannot start a worker: %s", strerror(rc));
		free(j);
		free(payload);
	}
}

/* Returns 0 to go on, -1 to end the session (after a protocol error). */
static int dispatch(struct conn *c, const struct vb_hdr *h, uint8_t *payload)
{
	struct vb_field any;
	if (h->id == 0) {
		conn_send_error(c, 0, VB_ERR_PROTO, "request id 0 is reserved for the handshake");
		free(payload);
		return -1;
	}
	if (vb_payload_find(payload, h->len, 0, &any) < 0) {
		conn_send_error(c, h->id, VB_ERR_PROTO, "malformed %s payload", vb_msg_name(h->type));
		free(payload);
		return -1;
	}
	switch (h->type) {
	case VB_MSG_EXEC:
		if (request_begin(c, 0) < 0)
			conn_send_error(c, h->id, VB_ERR_BUSY, "too many requests in flight");
		else if (exec_start(c, h->id, payload, h->len) < 0)
			conn_request_done(c, 0);
		free(payload);
		return 0;
	case VB_MSG_EXEC_ACK:
	case VB_MSG_EXEC_STDIN:
	case VB_MSG_EXEC_SIGNAL:
	case VB_MSG_EXEC_RESIZE: {
		int rc = exec_control(c, h, payload);
		if (rc < 0)
			conn_send_error(c, h->id, VB_ERR_PROTO, "invalid %s (stdin beyond the window?)",
					vb_msg_name(h->type));
		free(payload);
		return rc;
	}
	case VB_MSG_STREAM_DATA:
	case VB_MSG_STREAM_ACK:
	case VB_MSG_STREAM_SHUT:
	case VB_MSG_STREAM_RESET: {
		int rc = forward_control(c, h, payload);
		if (rc < 0) /* the id is ours, not a request: answer on 0 */
			conn_send_error(c, 0, VB_ERR_PROTO, "invalid %s (data beyond the window?)",
					vb_msg_name(h->type));
		free(payload);
		return rc;
	}
	case VB_MSG_FILE_WRITE:
	case VB_MSG_FILE_READ:
	case VB_MSG_FILE_STAT:
	case VB_MSG_MKDIR:
	case VB_MSG_SAMPLE:
		start_job(c, h, payload);
		return 0;
	case VB_MSG_REKEY:
		rekey_handle(c, h, payload);
		explicit_bzero(payload, h->len);
		free(payload);
		return 0;
	case VB_MSG_MOUNT:
		mount_handle(c, h, payload);
		free(payload);
		return 0;
	case VB_MSG_FORWARD:
		forward_handle(c, h, payload);
		free(payload);
		return 0;
	case VB_MSG_NET_UP:
		netup_handle(c, h);
		free(payload);
		return 0;
	case VB_MSG_NET_DOWN:
		netdown_handle(c, h);
		free(payload);
		return 0;
	case VB_MSG_UNMOUNT:
		unmount_handle(c, h);
		free(payload);
		return 0;
	case VB_MSG_SHUTDOWN: {
		struct vb_buf b = { 0 };
		vb_msg_begin(&b, VB_MSG_OK, 0, h->id);
		if (vb_msg_end(&b) == 0)
			conn_send(c, &b);
		vb_buf_free(&b);
		free(payload);
		agent_log("shutdown requested");
		agent_poweroff();
	}
	default:
		conn_send_error(c, h->id, VB_ERR_INVAL, "unexpected message type %u (%s)", h->type,
				vb_msg_name(h->type));
		free(payload);
		return 0;
	}
}

/* ---- sessions ------------------------------------------------------------ */

/* End (c): no more writes, every exec killed.  The fds of a stream are
 * closed once no writer can be using them. */
static void conn_end(struct conn *c)
{
	struct chan *ch = c->chan;
	pthread_mutex_lock(&c->lock);
	c->closing = 1;
	pthread_mutex_unlock(&c->lock);
	atomic_store(&c->dead, 1);
	if (ch->kind == CHAN_STREAM)
		shutdown(ch->rfd, SHUT_RDWR); /* sockets only; harmless elsewhere */
	/* barrier: a writer that was mid-frame has finished or given up */
	pthread_mutex_lock(&ch->wlock);
	pthread_mutex_unlock(&ch->wlock);
	exec_cancel_all(c);
	forward_cancel(c);
	if (ch->kind == CHAN_STREAM) {
		close(ch->rfd);
		if (ch->wfd != ch->rfd)
			close(ch->wfd);
		ch->rfd = ch->wfd = -1;
	}
}

/* Serve one session on (c) until it ends.  Returns 1 if it ended with a
 * refused handshake or a protocol error (ERROR already sent): a stream is
 * then closed, the serial port hunts for the next HELLO. */
static int session(struct conn *c)
{
	struct chan *ch = c->chan;
	struct vb_hdr h;
	uint8_t *payload = NULL;

	int rc = read_frame(ch, &h, &payload, AGENT_PREAUTH_MAX, 1);
	if (rc == READ_EOF || rc == READ_ERR)
		return 0;
	if (rc != READ_OK) {
		conn_send_error(c, 0, VB_ERR_PROTO, "expected HELLO");
		agent_log("handshake refused: not a HELLO frame");
		return 1;
	}
	rc = authenticate(c, &h, payload);
	explicit_bzero(payload, h.len);
	free(payload);
	if (rc < 0)
		return 1;
	agent_log("host connected");
	forward_session_start(c);

	for (;;) {
		payload = NULL;
		rc = read_frame(ch, &h, &payload, VB_FRAME_MAX, 0);
		if (rc == READ_EOF || rc == READ_ERR) {
			agent_log("host disconnected");
			return 0;
		}
		if (rc == READ_BAD) {
			conn_send_error(c, 0, VB_ERR_PROTO, "invalid frame header");
			agent_log("protocol error: invalid frame header");
			return 1;
		}
		if (rc == READ_NOMEM) {
			conn_send_error(c, h.id, VB_ERR_INTERNAL, "out of memory for a %u-byte frame", h.len);
			continue;
		}
		if (h.type == VB_MSG_HELLO && ch->kind == CHAN_SERIAL && h.len <= AGENT_PREAUTH_MAX &&
		    has_secret(payload, h.len)) {
			/* a new host whose connect we did not see: start over */
			uint8_t *frame = malloc(VB_FRAME_HDR_LEN + h.len);
			if (!frame)
				agent_fatal("out of memory");
			vb_hdr_encode(frame, &h);
			memcpy(frame + VB_FRAME_HDR_LEN, payload, h.len);
			explicit_bzero(payload, h.len);
			free(payload);
			push_back(ch, frame, VB_FRAME_HDR_LEN + h.len);
			agent_log("host reconnected");
			return 0;
		}
		if (dispatch(c, &h, payload) < 0) {
			agent_log("protocol error in a %s frame", vb_msg_name(h.type));
			return 1;
		}
	}
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

void conn_serve_stream(int rfd, int wfd)
{
	struct chan *ch = calloc(1, sizeof(*ch));
	struct conn *c = ch ? conn_new(ch) : NULL;
	if (!c) {
		free(ch);
		close(rfd);
		if (wfd != rfd)
			close(wfd);
		return;
	}
	ch->rfd = rfd;
	ch->wfd = wfd;
	ch->kind = CHAN_STREAM;
	pthread_mutex_init(&ch->wlock, NULL);
	set_nonblock(rfd);
	set_nonblock(wfd);
	session(c);
	conn_end(c);
	conn_unref(c); /* frees ch with the last reference */
}

_Noreturn void conn_serve_serial(int fd)
{
	static struct chan ch = { .kind = CHAN_SERIAL, .wlock = PTHREAD_MUTEX_INITIALIZER };
	ch.rfd = ch.wfd = fd;
	/* non-blocking: a write to a port whose host went away must fail
	 * (POLLHUP), not block until some later host connects */
	set_nonblock(fd);
	for (;;) {
		struct conn *c = conn_new(&ch);
		if (!c) {
			agent_sleep_ms(100);
			continue;
		}
		int refused = session(c);
		/* end it before hunting: its execs must not write meanwhile */
		conn_end(c);
		conn_unref(c);
		if (refused)
			hunt(&ch);
	}
}
