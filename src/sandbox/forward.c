/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loopback forwards: the streams a guest opens for connections to its
 * 127.0.0.1 listeners, each pumped to a socketpair handed to the forward's
 * accept callback.
 *
 * The channel's reader checks every stream frame as it arrives (filter
 * below): data within the stream's window, acks only for data sent, no data
 * after the guest's half-close.  Each stream has its own pump thread, so a
 * slow callee stalls only its own stream: the pump stops acknowledging, the
 * guest runs out of credit and stops reading its TCP socket.  The channel
 * caps the guest at VB_MAX_STREAMS open streams and holds its reader while
 * 2 * VB_MAX_STREAMS stream slots (ended ones not yet let go included)
 * exist, so threads and queued bytes stay bounded whatever the guest does.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sandbox/sandbox_int.h"
#include "util/util.h"

#define STREAM_TYPES                                                                         \
	(VB_CHAN_TYPE(VB_MSG_STREAM_DATA) | VB_CHAN_TYPE(VB_MSG_STREAM_ACK) |                  \
	 VB_CHAN_TYPE(VB_MSG_STREAM_SHUT) | VB_CHAN_TYPE(VB_MSG_STREAM_END))
/* Room beyond the window in a stream's queue: its SHUT and END. */
#define STREAM_QUEUE_SLACK 4096u
#define HAS_ROOM(credit) ((credit) > VB_STREAM_FRAME_OVERHEAD)

_Static_assert(VB_SANDBOX_MAX_STREAMS == VB_MAX_STREAMS &&
		       VB_SANDBOX_MAX_FORWARDS == VB_MAX_FORWARDS,
	       "the API and the wire agree");

struct vb_fwd_set {
	struct vb_chan *ch;
	struct vb_forward *fw;
	size_t n;
	pthread_mutex_t lock; /* threads */
	pthread_cond_t cond;
	unsigned threads;
};

struct stream {
	struct vb_fwd_set *fs;
	const struct vb_forward *fw;
	struct vb_chan_slot slot;
	/* under the channel lock: */
	uint64_t out_sent, out_acked; /* host -> guest, frame bytes */
	uint64_t in_got, in_acked;    /* guest -> host, frame bytes */
	int guest_shut;
};

/* Reader thread, channel lock held. */
static int stream_filter(struct vb_chan_slot *slot, const struct vb_chan_frame *f,
			 const char **why)
{
	struct stream *st = slot->opaque;
	switch (f->hdr.type) {
	case VB_MSG_STREAM_DATA: {
		struct vb_field d;
		if (vb_payload_find(f->payload, f->hdr.len, VB_TAG_DATA, &d) < 0 || !d.data ||
		    d.len == 0 || d.len > VB_CHUNK_MAX) {
			*why = "a malformed STREAM_DATA";
			return -1;
		}
		if (st->guest_shut) {
			*why = "STREAM_DATA after STREAM_SHUT";
			return -1;
		}
		st->in_got += VB_CHAN_COST(f->hdr.len);
		if (st->in_got - st->in_acked > VB_STREAM_WINDOW) {
			*why = "STREAM_DATA beyond its flow-control window";
			return -1;
		}
		return 0;
	}
	case VB_MSG_STREAM_ACK: {
		uint64_t n = 0;
		if (vb_payload_u64(f->payload, f->hdr.len, VB_TAG_COUNT, &n) < 0 || n == 0 ||
		    n > st->out_sent - st->out_acked) {
			*why = "STREAM_ACK for data never sent";
			return -1;
		}
		st->out_acked += n;
		uint64_t one = 1;
		ssize_t r = write(slot->efd, &one, sizeof(one));
		(void)r;
		return 1;
	}
	case VB_MSG_STREAM_SHUT:
		if (st->guest_shut) {
			*why = "a second STREAM_SHUT";
			return -1;
		}
		st->guest_shut = 1;
		return 0;
	default: /* STREAM_END: queued behind the data */
		return 0;
	}
}

static int send_simple(struct stream *st, uint16_t type, uint16_t tag, uint64_t v)
{
	struct vb_buf b = { 0 };
	vb_error err;
	vb_msg_begin(&b, type, 0, 0);
	if (tag)
		vb_msg_put_u64(&b, tag, v);
	vb_msg_end(&b);
	int rc = vb_chan_send(st->fs->ch, &b, st->slot.id, &err);
	vb_buf_free(&b);
	return rc;
}

static void thread_done(struct vb_fwd_set *fs)
{
	pthread_mutex_lock(&fs->lock);
	fs->threads--;
	pthread_cond_broadcast(&fs->cond);
	pthread_mutex_unlock(&fs->lock);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* The pump: guest frames to the socket, socket bytes to the guest, until
 * the guest's STREAM_END or the channel's death. */
static void pump(struct stream *st, int sock, uint8_t *buf)
{
	struct vb_chan *ch = st->fs->ch;
	struct vb_chan_frame *cur = NULL;
	const uint8_t *data = NULL;
	size_t len = 0, off = 0;
	int rd_eof = 0, reset = sock < 0, ended = 0;
	vb_error err;
	if (reset && send_simple(st, VB_MSG_STREAM_RESET, 0, 0) < 0)
		goto out;
	while (!ended) {
		int progress = 0;
		uint64_t drain;
		ssize_t r = read(st->slot.efd, &drain, sizeof(drain));
		(void)r;
		while (!cur && !ended) {
			struct vb_chan_frame *f = NULL;
			int got = vb_chan_recv(ch, &st->slot, &f, 0, &err);
			if (got < 0)
				goto out;
			if (got == 0)
				break;
			progress = 1;
			if (f->hdr.type == VB_MSG_STREAM_DATA && !reset) {
				struct vb_field d;
				vb_payload_find(f->payload, f->hdr.len, VB_TAG_DATA, &d);
				cur = f; /* the filter checked it */
				data = d.data;
				len = d.len;
				off = 0;
				continue;
			}
			if (f->hdr.type == VB_MSG_STREAM_SHUT && sock >= 0)
				shutdown(sock, SHUT_WR);
			else if (f->hdr.type == VB_MSG_STREAM_END)
				ended = 1;
			free(f); /* data after our RESET is dropped: the END follows */
		}
		if (ended)
			break;
		if (cur) {
			ssize_t w = send(sock, data + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w > 0) {
				off += (size_t)w;
				progress = 1;
			}
			if (off == len) {
				uint64_t cost = VB_CHAN_COST(cur->hdr.len);
				free(cur);
				cur = NULL;
				vb_chan_lock(ch);
				st->in_acked += cost;
				vb_chan_unlock(ch);
				if (send_simple(st, VB_MSG_STREAM_ACK, VB_TAG_COUNT, cost) < 0)
					goto out;
			} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
				/* the callee closed its end: abort, the guest ends it */
				free(cur);
				cur = NULL;
				reset = 1;
				close_fd(&sock);
				if (send_simple(st, VB_MSG_STREAM_RESET, 0, 0) < 0)
					goto out;
				progress = 1;
			}
		}
		uint64_t credit = 0;
		if (!rd_eof && !reset) {
			vb_chan_lock(ch);
			credit = VB_STREAM_WINDOW - (st->out_sent - st->out_acked);
			vb_chan_unlock(ch);
		}
		if (HAS_ROOM(credit)) {
			uint64_t room = credit - VB_STREAM_FRAME_OVERHEAD;
			ssize_t n = recv(sock, buf, room < VB_CHUNK_MAX ? (size_t)room : VB_CHUNK_MAX,
					 MSG_DONTWAIT);
			if (n > 0) {
				struct vb_buf b = { 0 };
				vb_msg_begin(&b, VB_MSG_STREAM_DATA, 0, 0);
				vb_msg_put_bytes(&b, VB_TAG_DATA, buf, (size_t)n);
				vb_msg_end(&b);
				vb_chan_lock(ch);
				st->out_sent += b.len; /* before the guest can ack it */
				vb_chan_unlock(ch);
				int rc = vb_chan_send(ch, &b, st->slot.id, &err);
				vb_buf_free(&b);
				if (rc < 0)
					goto out;
				progress = 1;
			} else if (n == 0) {
				rd_eof = 1;
				if (send_simple(st, VB_MSG_STREAM_SHUT, 0, 0) < 0)
					goto out;
				progress = 1;
			} else if (errno != EAGAIN && errno != EINTR) {
				reset = 1;
				close_fd(&sock);
				if (send_simple(st, VB_MSG_STREAM_RESET, 0, 0) < 0)
					goto out;
				progress = 1;
			}
		}
		if (progress)
			continue;
		struct pollfd p[2] = { { .fd = st->slot.efd, .events = POLLIN },
				       { .fd = sock, .events = 0 } };
		if (cur)
			p[1].events |= POLLOUT;
		if (HAS_ROOM(credit))
			p[1].events |= POLLIN;
		if (!p[1].events)
			p[1].fd = -1;
		poll(p, 2, 1000);
		if (vb_chan_dead(ch))
			break;
	}
out:
	free(cur);
	close_fd(&sock);
}

static void *stream_main(void *arg)
{
	struct stream *st = arg;
	struct vb_fwd_set *fs = st->fs;
	/* the opener registers the slot (and sets its id) under this lock */
	vb_chan_lock(fs->ch);
	vb_chan_unlock(fs->ch);
	int sv[2] = { -1, -1 }, sock = -1;
	uint8_t *buf = malloc(VB_CHUNK_MAX);
	if (buf && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
		/* the callee owns sv[1] whatever it answers */
		if (st->fw->accept(st->fw->opaque, sv[1]) == 0)
			sock = sv[0];
		else
			close(sv[0]);
	}
	pump(st, sock, buf); /* closes sock */
	free(buf);
	vb_chan_unregister(fs->ch, &st->slot);
	close(st->slot.efd);
	free(st);
	thread_done(fs);
	return NULL;
}

/* Reader thread, channel lock held (vb_chan_opener). */
static struct vb_chan_slot *open_stream(void *opaque, const struct vb_chan_frame *f,
					const char **why)
{
	struct vb_fwd_set *fs = opaque;
	uint64_t kind = UINT64_MAX;
	if (vb_payload_u64(f->payload, f->hdr.len, VB_TAG_KIND, &kind) < 0 || kind >= fs->n) {
		*why = "a STREAM_OPEN of an unknown KIND";
		return NULL;
	}
	struct stream *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->fs = fs;
	st->fw = &fs->fw[kind];
	st->slot.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	st->slot.filter = stream_filter;
	st->slot.opaque = st;
	st->slot.accept = STREAM_TYPES;
	st->slot.final = VB_CHAN_TYPE(VB_MSG_STREAM_END);
	st->slot.max_queued = VB_STREAM_WINDOW + STREAM_QUEUE_SLACK;
	if (st->slot.efd < 0) {
		free(st);
		return NULL;
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&fs->lock);
	fs->threads++;
	pthread_mutex_unlock(&fs->lock);
	pthread_t t;
	int rc = pthread_create(&t, &attr, stream_main, st);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		thread_done(fs);
		close(st->slot.efd);
		free(st);
		return NULL;
	}
	return &st->slot;
}

struct vb_fwd_set *vb_fwd_start(struct vb_chan *ch, const struct vb_forward *fw, size_t n,
				vb_error *err)
{
	struct vb_fwd_set *fs = calloc(1, sizeof(*fs));
	if (fs)
		fs->fw = calloc(n ? n : 1, sizeof(*fw));
	if (!fs || !fs->fw) {
		if (fs)
			free(fs->fw);
		free(fs);
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	memcpy(fs->fw, fw, n * sizeof(*fw));
	fs->n = n;
	fs->ch = ch;
	pthread_mutex_init(&fs->lock, NULL);
	pthread_cond_init(&fs->cond, NULL);
	vb_chan_set_opener(ch, open_stream, fs, VB_MAX_STREAMS);
	return fs;
}

void vb_fwd_stop(struct vb_fwd_set *fs)
{
	if (!fs)
		return;
	pthread_mutex_lock(&fs->lock);
	while (fs->threads)
		pthread_cond_wait(&fs->cond, &fs->lock);
	pthread_mutex_unlock(&fs->lock);
	pthread_mutex_destroy(&fs->lock);
	pthread_cond_destroy(&fs->cond);
	free(fs->fw);
	free(fs);
}
