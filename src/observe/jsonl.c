/* SPDX-License-Identifier: Apache-2.0 */
/* An incremental, bounded reader of a growing JSONL file. */
#include "observe/runs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "observe/observe_int.h"

#define READ_STEP (64 * 1024)

struct vb_jsonl {
	int fd;
	char *buf;
	size_t cap, start, len; /* unconsumed bytes are buf[start, len) */
	int skipping;           /* inside an overlong line: drop until '\n' */
};

struct vb_jsonl *vb_jsonl_open(const char *path, vb_error *err)
{
	struct vb_jsonl *r = calloc(1, sizeof(*r));
	if (!r) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	r->cap = 2 * READ_STEP;
	r->buf = malloc(r->cap + 1);
	if (!r->buf) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		free(r);
		return NULL;
	}
	r->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (r->fd < 0) {
		vb_error_errno(err, errno, "cannot open %s", path);
		free(r->buf);
		free(r);
		return NULL;
	}
	return r;
}

void vb_jsonl_free(struct vb_jsonl *r)
{
	if (!r)
		return;
	close(r->fd);
	free(r->buf);
	free(r);
}

int vb_jsonl_next(struct vb_jsonl *r, const char **line, size_t *len, vb_error *err)
{
	for (;;) {
		char *base = r->buf + r->start;
		char *nl = r->len > r->start ? memchr(base, '\n', r->len - r->start) : NULL;
		if (nl) {
			size_t n = (size_t)(nl - base);
			r->start += n + 1;
			if (r->skipping) {
				r->skipping = 0;
				return VB_JSONL_LONG;
			}
			*nl = '\0';
			*line = base;
			*len = n;
			return VB_JSONL_LINE;
		}
		/* no complete line buffered: keep the partial one, read more */
		if (r->start > 0) {
			memmove(r->buf, r->buf + r->start, r->len - r->start);
			r->len -= r->start;
			r->start = 0;
		}
		if (r->len >= (size_t)VB_REC_LINE_MAX) {
			r->skipping = 1;
			r->len = 0;
		}
		if (r->cap - r->len < READ_STEP) {
			size_t ncap = r->cap * 2;
			if (ncap > (size_t)VB_REC_LINE_MAX + 2 * READ_STEP)
				ncap = (size_t)VB_REC_LINE_MAX + 2 * READ_STEP;
			if (ncap > r->cap) {
				char *nb = realloc(r->buf, ncap + 1);
				if (!nb)
					return vb_error_set(err, VB_E_RUNTIME, "out of memory");
				r->buf = nb;
				r->cap = ncap;
			}
		}
		ssize_t got = read(r->fd, r->buf + r->len, r->cap - r->len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return vb_error_errno(err, errno, "cannot read events");
		if (got == 0)
			return VB_JSONL_NONE;
		r->len += (size_t)got;
	}
}
