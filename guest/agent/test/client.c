/* SPDX-License-Identifier: Apache-2.0 */
#include "client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int cl_connect(struct client *cl, const char *sock_path)
{
	memset(cl, 0, sizeof(*cl));
	cl->next_id = 1;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	for (int i = 0; i < 200; i++) {
		cl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (cl->fd < 0)
			return -1;
		if (connect(cl->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return 0;
		close(cl->fd);
		cl->fd = -1;
		usleep(50000);
	}
	return -1;
}

void cl_close(struct client *cl)
{
	while (cl->stash) {
		struct frame *f = cl->stash;
		cl->stash = f->next;
		frame_free(f);
	}
	if (cl->fd >= 0)
		close(cl->fd);
	cl->fd = -1;
}

int cl_send(struct client *cl, struct vb_buf *b)
{
	if (b->oom)
		return -1;
	const uint8_t *p = b->data;
	size_t n = b->len;
	while (n > 0) {
		ssize_t w = send(cl->fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* 1 ok, 0 EOF, -1 timeout or error */
static int read_full(int fd, uint8_t *p, size_t n, uint64_t deadline)
{
	while (n > 0) {
		uint64_t now = now_ms();
		if (now >= deadline)
			return -1;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int r = poll(&pfd, 1, (int)(deadline - now));
		if (r <= 0)
			continue;
		ssize_t got = read(fd, p, n);
		if (got == 0)
			return 0;
		if (got < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return errno == ECONNRESET ? 0 : -1;
		}
		p += got;
		n -= (size_t)got;
	}
	return 1;
}

void frame_free(struct frame *f)
{
	if (f) {
		free(f->p);
		free(f);
	}
}

struct frame *cl_recv_any(struct client *cl, int timeout_ms, int *eof)
{
	if (eof)
		*eof = 0;
	if (cl->stash) {
		struct frame *f = cl->stash;
		cl->stash = f->next;
		f->next = NULL;
		return f;
	}
	uint8_t raw[VB_FRAME_HDR_LEN];
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	struct pollfd pfd = { .fd = cl->fd, .events = POLLIN };
	if (poll(&pfd, 1, timeout_ms) <= 0)
		return NULL;
	int rc = read_full(cl->fd, raw, sizeof(raw), deadline + 30000);
	if (rc <= 0) {
		if (eof && rc == 0)
			*eof = 1;
		return NULL;
	}
	struct frame *f = calloc(1, sizeof(*f));
	if (!f || vb_hdr_decode(raw, &f->h) < 0) {
		fprintf(stderr, "client: bad header from agent\n");
		exit(3);
	}
	f->p = malloc(f->h.len ? f->h.len : 1);
	if (!f->p || read_full(cl->fd, f->p, f->h.len, now_ms() + 30000) != 1) {
		fprintf(stderr, "client: truncated frame from agent\n");
		exit(3);
	}
	return f;
}

struct frame *cl_recv(struct client *cl, uint32_t id, int timeout_ms)
{
	for (struct frame **pp = &cl->stash; *pp; pp = &(*pp)->next) {
		if ((*pp)->h.id == id) {
			struct frame *f = *pp;
			*pp = f->next;
			f->next = NULL;
			return f;
		}
	}
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		uint64_t now = now_ms();
		if (now >= deadline)
			return NULL;
		struct frame *stash = cl->stash;
		cl->stash = NULL; /* read from the socket, not the stash */
		struct frame *f = cl_recv_any(cl, (int)(deadline - now), NULL);
		cl->stash = stash;
		if (!f)
			return NULL;
		if (f->h.id == id)
			return f;
		struct frame **tail = &cl->stash;
		while (*tail)
			tail = &(*tail)->next;
		*tail = f;
	}
}

int frame_u64(const struct frame *f, uint16_t tag, uint64_t *v)
{
	struct vb_field fl;
	if (vb_payload_find(f->p, f->h.len, tag, &fl) < 0 || !fl.data)
		return -1;
	return vb_field_u64(&fl, v);
}

int frame_bytes(const struct frame *f, uint16_t tag, const uint8_t **p, size_t *n)
{
	struct vb_field fl;
	if (vb_payload_find(f->p, f->h.len, tag, &fl) < 0 || !fl.data) {
		*p = NULL;
		*n = 0;
		return -1;
	}
	*p = fl.data;
	*n = fl.len;
	return 0;
}

const char *frame_msg(const struct frame *f, char *buf, size_t cap)
{
	const uint8_t *p;
	size_t n;
	buf[0] = '\0';
	if (frame_bytes(f, VB_TAG_MESSAGE, &p, &n) == 0)
		snprintf(buf, cap, "%.*s", (int)n, (const char *)p);
	return buf;
}

struct frame *cl_hello(struct client *cl, const uint8_t secret[VB_SECRET_LEN], uint64_t version)
{
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_HELLO, 0, 0);
	vb_msg_put_u64(&b, VB_TAG_VERSION, version);
	vb_msg_put_bytes(&b, VB_TAG_SECRET, secret, VB_SECRET_LEN);
	vb_msg_end(&b);
	int rc = cl_send(cl, &b);
	vb_buf_free(&b);
	if (rc < 0)
		return NULL;
	return cl_recv_any(cl, 30000, NULL);
}
