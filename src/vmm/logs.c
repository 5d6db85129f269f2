/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/logs.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

/* Enough for a whole boot log and the panic at the end of a long run. */
static const size_t head_max[VB_LOG_N] = { 64u << 10, 16u << 10 };
static const size_t tail_max[VB_LOG_N] = { 1u << 20, 64u << 10 };

int vb_vmm_logs_init(struct vb_vmm_logs *l, vb_error *err)
{
	memset(l, 0, sizeof(*l));
	l->stop_efd = -1;
	for (int i = 0; i < VB_LOG_N; i++) {
		l->cap[i].rfd = l->wfd[i] = -1;
		l->cap[i].head_max = head_max[i];
		l->cap[i].tail_max = tail_max[i];
	}
	pthread_mutex_init(&l->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cond, &ca);
	pthread_condattr_destroy(&ca);
	for (int i = 0; i < VB_LOG_N; i++) {
		int p[2];
		if (pipe2(p, O_CLOEXEC) < 0)
			return vb_error_errno(err, errno, "pipe");
		l->cap[i].rfd = p[0];
		l->wfd[i] = p[1];
	}
	l->stop_efd = eventfd(0, EFD_CLOEXEC);
	if (l->stop_efd < 0)
		return vb_error_errno(err, errno, "eventfd");
	return 0;
}

/* Keep (n) bytes: the head fills first, then the ring. */
static void keep(struct vb_log_capture *c, const uint8_t *p, size_t n)
{
	c->total += n;
	if (c->head_len < c->head_max) {
		if (!c->head && !(c->head = malloc(c->head_max)))
			return;
		size_t k = c->head_max - c->head_len < n ? c->head_max - c->head_len : n;
		memcpy(c->head + c->head_len, p, k);
		c->head_len += k;
		p += k;
		n -= k;
	}
	if (!n)
		return;
	if (!c->tail && !(c->tail = malloc(c->tail_max)))
		return;
	if (n > c->tail_max) { /* only the last tail_max bytes can stay */
		p += n - c->tail_max;
		n = c->tail_max;
	}
	size_t first = c->tail_max - c->tail_pos < n ? c->tail_max - c->tail_pos : n;
	memcpy(c->tail + c->tail_pos, p, first);
	memcpy(c->tail, p + first, n - first);
	c->tail_pos = (c->tail_pos + n) % c->tail_max;
	c->tail_len = c->tail_len + n > c->tail_max ? c->tail_max : c->tail_len + n;
}

static void *drain(void *arg)
{
	struct vb_vmm_logs *l = arg;
	uint8_t buf[16384];
	for (;;) {
		struct pollfd p[VB_LOG_N + 1];
		int open_streams = 0;
		for (int i = 0; i < VB_LOG_N; i++) {
			p[i] = (struct pollfd){ .fd = l->cap[i].eof ? -1 : l->cap[i].rfd, .events = POLLIN };
			open_streams += !l->cap[i].eof;
		}
		p[VB_LOG_N] = (struct pollfd){ .fd = l->stop_efd, .events = POLLIN };
		if (!open_streams || (poll(p, VB_LOG_N + 1, -1) < 0 && errno != EINTR))
			break;
		if (p[VB_LOG_N].revents)
			break;
		for (int i = 0; i < VB_LOG_N; i++) {
			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(l->cap[i].rfd, buf, sizeof(buf));
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			pthread_mutex_lock(&l->mu);
			if (n > 0) {
				keep(&l->cap[i], buf, (size_t)n);
			} else {
				l->cap[i].eof = 1;
				pthread_cond_broadcast(&l->cond);
			}
			pthread_mutex_unlock(&l->mu);
		}
	}
	return NULL;
}

int vb_vmm_logs_run(struct vb_vmm_logs *l, vb_error *err)
{
	for (int i = 0; i < VB_LOG_N; i++) {
		if (l->wfd[i] >= 0)
			close(l->wfd[i]);
		l->wfd[i] = -1;
	}
	int rc = pthread_create(&l->thread, NULL, drain, l);
	if (rc)
		return vb_error_errno(err, rc, "cannot start the console reader");
	l->started = 1;
	return 0;
}

uint64_t vb_vmm_logs_total(struct vb_vmm_logs *l, int which)
{
	pthread_mutex_lock(&l->mu);
	uint64_t t = l->cap[which].total;
	pthread_mutex_unlock(&l->mu);
	return t;
}

char *vb_vmm_logs_text(struct vb_vmm_logs *l, int which, int wait_ms, size_t *len)
{
	struct vb_log_capture *c = &l->cap[which];
	pthread_mutex_lock(&l->mu);
	if (l->started && wait_ms > 0) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t ns = ts.tv_nsec + (int64_t)wait_ms * 1000000;
		ts.tv_sec += ns / 1000000000;
		ts.tv_nsec = ns % 1000000000;
		while (!c->eof && pthread_cond_timedwait(&l->cond, &l->mu, &ts) == 0)
			;
	}
	uint64_t dropped = c->total - c->head_len - c->tail_len;
	char mark[96] = "";
	if (dropped)
		snprintf(mark, sizeof(mark), "\n[voidbox: %llu bytes dropped here]\n",
			 (unsigned long long)dropped);
	size_t m = strlen(mark), n = c->head_len + m + c->tail_len;
	char *out = malloc(n + 1);
	if (out) {
		if (c->head_len)
			memcpy(out, c->head, c->head_len);
		memcpy(out + c->head_len, mark, m);
		size_t start = (c->tail_pos + c->tail_max - c->tail_len) % (c->tail_max ? c->tail_max : 1);
		for (size_t i = 0; i < c->tail_len; i++)
			out[c->head_len + m + i] = (char)c->tail[(start + i) % c->tail_max];
		out[n] = '\0';
		if (len)
			*len = n;
	}
	pthread_mutex_unlock(&l->mu);
	return out;
}

void vb_vmm_logs_free(struct vb_vmm_logs *l)
{
	if (l->started) {
		uint64_t one = 1;
		ssize_t r = write(l->stop_efd, &one, sizeof(one));
		(void)r;
		pthread_join(l->thread, NULL);
		l->started = 0;
	}
	for (int i = 0; i < VB_LOG_N; i++) {
		if (l->cap[i].rfd >= 0)
			close(l->cap[i].rfd);
		if (l->wfd[i] >= 0)
			close(l->wfd[i]);
		free(l->cap[i].head);
		free(l->cap[i].tail);
		l->cap[i] = (struct vb_log_capture){ .rfd = -1 };
		l->wfd[i] = -1;
	}
	if (l->stop_efd >= 0)
		close(l->stop_efd);
	l->stop_efd = -1;
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cond);
}
