/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The QEMU adapter (net.h): a socketpair whose other end QEMU's
 * `-netdev stream,addr.type=fd` gets, each frame behind a 4-byte big-endian
 * length, and one thread per VM running the poll loop of the frame socket
 * and libslirp's sockets.  Frames for a guest that does not read are
 * dropped past a bound, like a full NIC queue would.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/net.h"
#include "util/util.h"

#define IN_CAP (256u * 1024u)
#define OUT_CAP (1024u * 1024u)

struct vb_net_stream {
	struct vb_net *net;
	int sock;   /* our end, non-blocking */
	int stopfd; /* eventfd: readable = stop */
	pthread_t thread;
	int started;
	uint8_t *in;
	size_t in_len;
	uint8_t *out;
	size_t out_off, out_len;
	int broken; /* the socket failed or carried no frames: stop reading it */
	char *stats_path; /* or NULL */
	int64_t stats_at;
	uint64_t stats_seen; /* frames counted at the last write */
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The counters for `voidbox ps`, when they changed, at most once a second. */
static void write_stats(struct vb_net_stream *s)
{
	int64_t t = now_ms();
	if (!s->stats_path || t - s->stats_at < 1000)
		return;
	s->stats_at = t;
	struct vb_net_stats st;
	vb_net_stats(s->net, &st);
	uint64_t seen = st.frames_out + st.frames_in + st.denied;
	if (seen == s->stats_seen && seen)
		return;
	s->stats_seen = seen;
	char text[256], tmp[4200];
	int n = snprintf(text, sizeof(text),
			 "{\"bytes_out\":%llu,\"bytes_in\":%llu,\"connections\":%llu,\"denied\":%llu}\n",
			 (unsigned long long)st.bytes_out, (unsigned long long)st.bytes_in,
			 (unsigned long long)st.connections, (unsigned long long)st.denied);
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", s->stats_path) >= (int)sizeof(tmp))
		return;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	int ok = write(fd, text, (size_t)n) == n;
	ok &= close(fd) == 0;
	if (!ok || rename(tmp, s->stats_path) < 0)
		unlink(tmp);
}



static void flush_out(struct vb_net_stream *s)
{
	while (s->out_len > s->out_off) {
		ssize_t w = send(s->sock, s->out + s->out_off, s->out_len - s->out_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				s->broken = 1;
			break;
		}
		s->out_off += (size_t)w;
	}
	if (s->out_off == s->out_len)
		s->out_off = s->out_len = 0;
}

static void to_guest(void *opaque, const uint8_t *frame, size_t len)
{
	struct vb_net_stream *s = opaque;
	if (s->broken)
		return;
	if (s->out_off > 0 && s->out_len + 4 + len > OUT_CAP) { /* compact */
		memmove(s->out, s->out + s->out_off, s->out_len - s->out_off);
		s->out_len -= s->out_off;
		s->out_off = 0;
	}
	if (s->out_len + 4 + len > OUT_CAP)
		return; /* the guest is not reading: drop */
	uint8_t *p = s->out + s->out_len;
	p[0] = (uint8_t)(len >> 24);
	p[1] = (uint8_t)(len >> 16);
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	memcpy(p + 4, frame, len);
	s->out_len += 4 + len;
	flush_out(s);
}

/* Read what the VMM sent; hand each complete frame to the network. */
static void read_frames(struct vb_net_stream *s)
{
	ssize_t r = recv(s->sock, s->in + s->in_len, IN_CAP - s->in_len, MSG_DONTWAIT);
	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR && errno != EWOULDBLOCK)) {
		s->broken = 1; /* the VMM is gone */
		return;
	}
	if (r < 0)
		return;
	s->in_len += (size_t)r;
	size_t off = 0;
	while (s->in_len - off >= 4) {
		const uint8_t *p = s->in + off;
		size_t len = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
		if (len > VB_NET_MAX_FRAME) {
			/* not QEMU's framing: nothing after this can be trusted */
			s->broken = 1;
			return;
		}
		if (s->in_len - off - 4 < len)
			break;
		vb_net_from_guest(s->net, p + 4, len);
		off += 4 + len;
	}
	memmove(s->in, s->in + off, s->in_len - off);
	s->in_len -= off;
}

static void *loop(void *arg)
{
	struct vb_net_stream *s = arg;
	struct vb_net_pollset ps = { 0 };
	for (;;) {
		ps.n = 0;
		if (vb_net_pollset_add(&ps, s->stopfd, POLLIN) < 0 ||
		    vb_net_pollset_add(&ps, s->broken ? -1 : s->sock,
				       (short)(POLLIN | (s->out_len > s->out_off ? POLLOUT : 0))) < 0)
			break;
		int timeout = s->stats_path ? 1000 : -1;
		vb_net_poll_fill(s->net, &ps, &timeout);
		int r = poll(ps.fds, ps.n, timeout);
		if (r < 0 && errno != EINTR)
			break;
		if (r > 0 && ps.fds[0].revents)
			break;
		if (r > 0 && !s->broken) {
			short re = ps.fds[1].revents;
			if (re & POLLOUT)
				flush_out(s);
			if (re & (POLLIN | POLLHUP | POLLERR))
				read_frames(s);
		}
		vb_net_poll_dispatch(s->net, &ps, r < 0);
		write_stats(s);
	}
	vb_net_pollset_free(&ps);
	return NULL;
}

void vb_net_stream_stop(struct vb_net_stream *s)
{
	if (!s)
		return;
	if (s->started) {
		uint64_t one = 1;
		ssize_t w = write(s->stopfd, &one, sizeof(one));
		(void)w;
		pthread_join(s->thread, NULL);
	}
	vb_net_free(s->net);
	if (s->sock >= 0)
		close(s->sock);
	if (s->stopfd >= 0)
		close(s->stopfd);
	free(s->in);
	free(s->out);
	free(s->stats_path);
	free(s);
}

struct vb_net_stream *vb_net_stream_start(const struct vb_network *cfg, const char *stats_path,
					  int *vmm_fd, vb_error *err)
{
	struct vb_net_stream *s = calloc(1, sizeof(*s));
	if (!s) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	s->sock = s->stopfd = -1;
	int sv[2] = { -1, -1 };
	if (!(s->in = malloc(IN_CAP)) || !(s->out = malloc(OUT_CAP)) ||
	    (stats_path && !(s->stats_path = strdup(stats_path)))) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		goto fail;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
	    (s->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		vb_error_errno(err, errno, "cannot create the network's sockets");
		goto fail;
	}
	s->sock = sv[0];
	if (sv[1] < 3) { /* the VMM spec takes > 0 for "a network": never stdin's number */
		int hi = fcntl(sv[1], F_DUPFD_CLOEXEC, 3);
		if (hi < 0) {
			vb_error_errno(err, errno, "cannot create the network's sockets");
			goto fail;
		}
		close(sv[1]);
		sv[1] = hi;
	}
	struct vb_net_io io = { .to_guest = to_guest, .opaque = s };
	if (!(s->net = vb_net_new(cfg, &io, err)))
		goto fail;
	int e = pthread_create(&s->thread, NULL, loop, s);
	if (e) {
		vb_error_errno(err, e, "cannot start the network thread");
		goto fail;
	}
	s->started = 1;
	*vmm_fd = sv[1];
	return s;
fail:
	if (sv[1] >= 0)
		close(sv[1]);
	vb_net_stream_stop(s);
	return NULL;
}

void vb_net_stream_stats(const struct vb_net_stream *s, struct vb_net_stats *st)
{
	vb_net_stats(s ? s->net : NULL, st);
}

char *vb_net_stream_learned(struct vb_net_stream *s, unsigned indent, vb_error *err)
{
	return vb_net_learned(s ? s->net : NULL, indent, err);
}

unsigned vb_net_stream_published_port(const struct vb_net_stream *s, size_t i)
{
	return s ? vb_net_published_port(s->net, i) : 0;
}
