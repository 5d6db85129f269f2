/* SPDX-License-Identifier: Apache-2.0 */
/*
 * forward.c — loopback forwards: TCP connections to 127.0.0.1:PORT in the
 * guest become streams the agent opens to the host (docs/protocol.md,
 * "Streams").
 *
 * The listeners are made once: at boot from the boot data, or on a VM
 * restored from a snapshot (whose agent read its boot data before the
 * restorer existed) on the restorer's FORWARD after the re-key.  Each session
 * has one forward thread that accepts connections (at most VB_MAX_STREAMS
 * open; more wait in the listen queue), opens a stream for each and pumps
 * bytes both ways with credit-based flow control.  Every socket is
 * non-blocking: a slow program in the guest only stops its own stream's
 * acknowledgements.  The reader thread never touches a socket: it queues
 * the host's frames (bounded by the stream's window; more is a protocol
 * error) and wakes the forward thread.
 *
 * A stream ends with the agent's STREAM_END, its last frame on that id:
 * once both directions are shut (the program's EOF sent as STREAM_SHUT, the
 * host's STREAM_SHUT turned into shutdown(SHUT_WR) after its data), or at
 * once after the host's STREAM_RESET or an error on the socket (the
 * program's connection is closed).  Frames the host sends for a stream
 * that has ended are ignored.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define HAS_ROOM(c) ((c) > VB_STREAM_FRAME_OVERHEAD)

struct fchunk {
	struct fchunk *next;
	size_t len, off;
	uint64_t cost; /* its frame's size on the wire: acknowledged once written */
	uint8_t data[];
};

struct fstream {
	struct fstream *next;
	uint32_t id;
	int fd;
	/* under fwd->lock (the reader writes them) */
	struct fchunk *q_head, *q_tail;
	uint64_t q_cost; /* host data received and not yet acknowledged */
	uint64_t acked;  /* our credit coming back */
	int host_shut, host_reset;
	/* forward thread only */
	struct fchunk *l_head, *l_tail; /* taken from the queue, being written */
	uint64_t credit;
	int rd_eof, wr_shut;
};

struct fwd {
	struct conn *c;
	int efd;
	uint8_t *buf; /* VB_CHUNK_MAX */
	pthread_mutex_t lock; /* streams list, the fields above, cancelled */
	int cancelled;
	struct fstream *streams;
	unsigned n;
	uint32_t next_id;
};

static int listeners[VB_MAX_FORWARDS];
static uint64_t kinds[VB_MAX_FORWARDS];
static size_t n_listeners;

/* Listen on 127.0.0.1:port; the socket, or -1 with errno set. */
static int listen_one(uint16_t port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1;
	if (s >= 0)
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 64) < 0) {
		int e = errno;
		if (s >= 0)
			close(s);
		errno = e;
		return -1;
	}
	return s;
}

void forward_listen(const struct vb_boot *boot)
{
	for (size_t i = 0; i < boot->n_forwards && i < VB_MAX_FORWARDS; i++) {
		int s = listen_one(boot->forwards[i].port);
		if (s < 0) {
			agent_log("forward: cannot listen on 127.0.0.1:%u: %s", boot->forwards[i].port,
				  strerror(errno));
			continue;
		}
		listeners[n_listeners] = s;
		kinds[n_listeners++] = boot->forwards[i].kind;
	}
}

void forward_handle(struct conn *c, const struct vb_hdr *h, const uint8_t *payload)
{
	struct vb_fwd_req r;
	int rc = vb_fwd_decode(payload, h->len, &r);
	if (rc != VB_ERR_NONE) {
		conn_send_error(c, h->id, rc, "malformed FORWARD");
		agent_log("forward refused: malformed");
		return;
	}
	/* Once per VM, and only while no forward thread exists: the thread
	 * reads the listeners unlocked (a snapshot's VM has none at boot). */
	if (n_listeners || c->fwd) {
		conn_send_error(c, h->id, VB_ERR_EXIST, "the forwards are already set up");
		return;
	}
	int fds[VB_MAX_FORWARDS];
	for (size_t i = 0; i < r.n; i++) {
		if ((fds[i] = listen_one(r.f[i].port)) >= 0)
			continue;
		int e = errno;
		agent_log("forward: cannot listen on 127.0.0.1:%u: %s", r.f[i].port, strerror(e));
		conn_send_error(c, h->id, agent_errno_to_vb(e), "cannot listen on 127.0.0.1:%u: %s",
				r.f[i].port, strerror(e));
		while (i--)
			close(fds[i]);
		return;
	}
	for (size_t i = 0; i < r.n; i++) {
		listeners[i] = fds[i];
		kinds[i] = r.f[i].kind;
	}
	n_listeners = r.n;
	forward_session_start(c);
	if (!c->fwd) { /* said in the log; the host tears the VM down */
		conn_send_error(c, h->id, VB_ERR_INTERNAL, "cannot start the forwards");
		return;
	}
	agent_log("forwarding %zu loopback port(s)", r.n);
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_OK, 0, h->id);
	if (vb_msg_end(&b) == 0)
		conn_send(c, &b);
	vb_buf_free(&b);
}

static void free_chunks(struct fchunk *c)
{
	while (c) {
		struct fchunk *n = c->next;
		free(c);
		c = n;
	}
}

static struct fstream *find(struct fwd *fw, uint32_t id)
{
	for (struct fstream *s = fw->streams; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

/* ---- reader thread ------------------------------------------------------- */

int forward_control(struct conn *c, const struct vb_hdr *h, const uint8_t *payload)
{
	struct fwd *fw = c->fwd;
	if (!fw)
		return h->type == VB_MSG_STREAM_DATA ? -1 : 0; /* we opened nothing */
	struct vb_field f;
	uint64_t v = 0;
	int rc = 0;
	pthread_mutex_lock(&fw->lock);
	struct fstream *s = find(fw, h->id);
	if (!s) { /* ended already: late frames are normal */
		pthread_mutex_unlock(&fw->lock);
		return 0;
	}
	switch (h->type) {
	case VB_MSG_STREAM_DATA: {
		uint64_t cost = VB_FRAME_HDR_LEN + (uint64_t)h->len;
		struct fchunk *ch = NULL;
		if (vb_payload_find(payload, h->len, VB_TAG_DATA, &f) < 0 || !f.data || !f.len ||
		    f.len > VB_CHUNK_MAX || s->host_shut || s->q_cost + cost > VB_STREAM_WINDOW ||
		    !(ch = malloc(sizeof(*ch) + f.len))) {
			rc = -1; /* the host ignored the window (or memory ran out) */
			break;
		}
		ch->next = NULL;
		ch->len = f.len;
		ch->off = 0;
		ch->cost = cost;
		memcpy(ch->data, f.data, f.len);
		if (s->q_tail)
			s->q_tail->next = ch;
		else
			s->q_head = ch;
		s->q_tail = ch;
		s->q_cost += cost;
		break;
	}
	case VB_MSG_STREAM_ACK:
		if (vb_payload_u64(payload, h->len, VB_TAG_COUNT, &v) < 0) {
			rc = -1;
			break;
		}
		s->acked = s->acked + v < s->acked ? UINT64_MAX : s->acked + v;
		break;
	case VB_MSG_STREAM_SHUT:
		s->host_shut = 1;
		break;
	case VB_MSG_STREAM_RESET:
		s->host_reset = 1;
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&fw->lock);
	agent_wake(fw->efd);
	return rc;
}

/* ---- the forward thread -------------------------------------------------- */

static int send_simple(struct fwd *fw, struct vb_buf *b, uint16_t type, uint32_t id, uint16_t tag,
		       uint64_t v)
{
	vb_msg_begin(b, type, 0, id);
	if (tag)
		vb_msg_put_u64(b, tag, v);
	if (vb_msg_end(b) < 0)
		return -1;
	return conn_send(fw->c, b);
}

/* Send STREAM_END and forget the stream. */
static void end_stream(struct fwd *fw, struct fstream *s, struct vb_buf *b)
{
	send_simple(fw, b, VB_MSG_STREAM_END, s->id, 0, 0);
	pthread_mutex_lock(&fw->lock);
	for (struct fstream **pp = &fw->streams; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	fw->n--;
	free_chunks(s->q_head);
	pthread_mutex_unlock(&fw->lock);
	free_chunks(s->l_head);
	close(s->fd);
	free(s);
}

static void accept_one(struct fwd *fw, size_t i, struct vb_buf *b)
{
	int fd = accept4(listeners[i], NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	struct fstream *s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		return;
	}
	s->fd = fd;
	s->credit = VB_STREAM_WINDOW;
	pthread_mutex_lock(&fw->lock);
	s->id = VB_GUEST_ID_BIT | ++fw->next_id;
	s->next = fw->streams;
	fw->streams = s;
	fw->n++;
	pthread_mutex_unlock(&fw->lock);
	vb_msg_begin(b, VB_MSG_STREAM_OPEN, 0, s->id);
	vb_msg_put_u64(b, VB_TAG_KIND, kinds[i]);
	if (vb_msg_end(b) == 0)
		conn_send(fw->c, b);
}

/* One round for (s): returns 1 if it ended. */
static int service(struct fwd *fw, struct fstream *s, uint8_t *buf, struct vb_buf *b)
{
	pthread_mutex_lock(&fw->lock);
	if (s->q_head) {
		if (s->l_tail)
			s->l_tail->next = s->q_head;
		else
			s->l_head = s->q_head;
		s->l_tail = s->q_tail;
		s->q_head = s->q_tail = NULL;
	}
	s->credit = s->credit + s->acked > VB_STREAM_WINDOW ? VB_STREAM_WINDOW : s->credit + s->acked;
	s->acked = 0;
	int shut = s->host_shut, reset = s->host_reset;
	pthread_mutex_unlock(&fw->lock);
	if (reset) {
		end_stream(fw, s, b);
		return 1;
	}
	uint64_t done = 0;
	int broken = 0;
	while (s->l_head) {
		struct fchunk *ch = s->l_head;
		ssize_t w = send(s->fd, ch->data + ch->off, ch->len - ch->off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			broken = errno != EAGAIN;
			break;
		}
		ch->off += (size_t)w;
		if (ch->off < ch->len)
			continue;
		done += ch->cost;
		s->l_head = ch->next;
		if (!s->l_head)
			s->l_tail = NULL;
		free(ch);
	}
	if (done) {
		pthread_mutex_lock(&fw->lock);
		s->q_cost -= done; /* before the ack: the host may send at once */
		pthread_mutex_unlock(&fw->lock);
		send_simple(fw, b, VB_MSG_STREAM_ACK, s->id, VB_TAG_COUNT, done);
	}
	if (broken) { /* the program closed its connection */
		end_stream(fw, s, b);
		return 1;
	}
	if (!s->l_head && shut && !s->wr_shut) {
		shutdown(s->fd, SHUT_WR);
		s->wr_shut = 1;
	}
	if (!s->rd_eof && HAS_ROOM(s->credit)) {
		uint64_t room = s->credit - VB_STREAM_FRAME_OVERHEAD;
		ssize_t n = recv(s->fd, buf, room < VB_CHUNK_MAX ? (size_t)room : VB_CHUNK_MAX, 0);
		if (n > 0) {
			s->credit -= (uint64_t)n + VB_STREAM_FRAME_OVERHEAD;
			vb_msg_begin(b, VB_MSG_STREAM_DATA, 0, s->id);
			vb_msg_put_bytes(b, VB_TAG_DATA, buf, (size_t)n);
			if (vb_msg_end(b) == 0)
				conn_send(fw->c, b);
		} else if (n == 0) {
			s->rd_eof = 1;
			send_simple(fw, b, VB_MSG_STREAM_SHUT, s->id, 0, 0);
		} else if (errno != EAGAIN && errno != EINTR) {
			end_stream(fw, s, b);
			return 1;
		}
	}
	if (s->rd_eof && s->wr_shut) {
		end_stream(fw, s, b);
		return 1;
	}
	return 0;
}

static void *fwd_main(void *arg)
{
	struct fwd *fw = arg;
	struct vb_buf b = { 0 };
	uint8_t *buf = fw->buf;
	struct pollfd pfd[1 + VB_MAX_FORWARDS + VB_MAX_STREAMS];
	int lidx = -1;
	for (;;) {
		uint64_t v;
		ssize_t r = read(fw->efd, &v, sizeof(v));
		(void)r;
		pthread_mutex_lock(&fw->lock);
		int stop = fw->cancelled;
		pthread_mutex_unlock(&fw->lock);
		if (stop)
			break;
		for (size_t i = 0; lidx >= 0 && i < n_listeners && fw->n < VB_MAX_STREAMS; i++)
			if (pfd[lidx + (int)i].revents & POLLIN)
				accept_one(fw, i, &b);
		/* only this thread adds or removes streams */
		for (struct fstream *s = fw->streams, *next; s; s = next) {
			next = s->next;
			service(fw, s, buf, &b);
		}
		int np = 0;
		pfd[np++] = (struct pollfd){ .fd = fw->efd, .events = POLLIN };
		lidx = -1;
		if (fw->n < VB_MAX_STREAMS) {
			lidx = np;
			for (size_t i = 0; i < n_listeners; i++)
				pfd[np++] = (struct pollfd){ .fd = listeners[i], .events = POLLIN };
		}
		for (struct fstream *s = fw->streams; s; s = s->next) {
			short ev = 0;
			if (!s->rd_eof && HAS_ROOM(s->credit))
				ev |= POLLIN;
			if (s->l_head)
				ev |= POLLOUT;
			/* nothing wanted: no POLLHUP/POLLERR wake-ups either, the
			 * host's next frame wakes us */
			pfd[np++] = (struct pollfd){ .fd = ev ? s->fd : -1, .events = ev };
		}
		if (poll(pfd, (nfds_t)np, 1000) < 0 && errno != EINTR)
			agent_sleep_ms(10);
	}
	while (fw->streams) {
		struct fstream *s = fw->streams;
		fw->streams = s->next;
		free_chunks(s->q_head);
		free_chunks(s->l_head);
		close(s->fd);
		free(s);
	}
	free(buf);
	vb_buf_free(&b);
	struct conn *c = fw->c;
	close(fw->efd);
	pthread_mutex_destroy(&fw->lock);
	free(fw);
	conn_unref(c);
	return NULL;
}

void forward_session_start(struct conn *c)
{
	if (!n_listeners)
		return;
	struct fwd *fw = calloc(1, sizeof(*fw));
	if (!fw) {
		agent_log("forward: out of memory");
		return;
	}
	fw->c = c;
	fw->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	fw->buf = malloc(VB_CHUNK_MAX);
	pthread_mutex_init(&fw->lock, NULL);
	conn_ref(c);
	int rc = fw->efd < 0 ? errno : !fw->buf ? ENOMEM : agent_thread(fwd_main, fw);
	if (rc != 0) {
		agent_log("forward: cannot start: %s", strerror(rc));
		free(fw->buf);
		if (fw->efd >= 0)
			close(fw->efd);
		pthread_mutex_destroy(&fw->lock);
		free(fw);
		conn_unref(c);
		return;
	}
	c->fwd = fw;
}

void forward_cancel(struct conn *c)
{
	struct fwd *fw = c->fwd;
	if (!fw)
		return;
	c->fwd = NULL;
	/* under the lock: the thread frees fw only after it saw this */
	pthread_mutex_lock(&fw->lock);
	fw->cancelled = 1;
	agent_wake(fw->efd);
	pthread_mutex_unlock(&fw->lock);
}
