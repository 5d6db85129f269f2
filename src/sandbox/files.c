/* SPDX-License-Identifier: Apache-2.0 */
/* Files in the guest (confined by the agent to its allowed roots) and
 * telemetry samples. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandbox/sandbox_int.h"
#include "util/util.h"

/* One request, one reply; a dead channel becomes the VM's cause of death. */
static int call(vb_sandbox *sb, struct vb_buf *req, struct vb_chan_frame **reply, vb_error *err)
{
	if (vb_msg_end(req) < 0) {
		vb_buf_free(req);
		return vb_error_set(err, VB_E_USAGE, "request too large");
	}
	int rc = vb_chan_call(sb->ch, req, VB_CALL_TIMEOUT_MS, reply, NULL, err);
	vb_buf_free(req);
	if (rc < 0 && err && err->kind == VB_E_VMDIED)
		return vb_sandbox_died(sb, err);
	return rc;
}

int vb_file_write(vb_sandbox *sb, const char *path, const void *data, size_t len,
		  unsigned mode, int as_root, vb_error *err)
{
	size_t off = 0;
	do {
		size_t n = len - off < VB_FILE_CHUNK_MAX ? len - off : VB_FILE_CHUNK_MAX;
		struct vb_buf req = { 0 };
		struct vb_chan_frame *reply = NULL;
		vb_msg_begin(&req, VB_MSG_FILE_WRITE, off == 0 ? VB_FLAG_TRUNC : 0, 0);
		vb_msg_put_str(&req, VB_TAG_PATH, path);
		vb_msg_put_bytes(&req, VB_TAG_DATA, (const uint8_t *)data + off, n);
		vb_msg_put_u64(&req, VB_TAG_OFFSET, off);
		vb_msg_put_u64(&req, VB_TAG_MODE, mode ? mode : 0644);
		vb_msg_put_u64(&req, VB_TAG_UID, as_root ? 0 : 1000);
		vb_msg_put_u64(&req, VB_TAG_GID, as_root ? 0 : 1000);
		if (call(sb, &req, &reply, err) < 0) {
			vb_error_prefix(err, "writing %s in the guest", path);
			return -1;
		}
		free(reply);
		off += n;
	} while (off < len);
	return 0;
}

/* Streaming copies hold one buffer of this size, whatever the file's. */
#define STREAM_CHUNK ((size_t)1 << 20)

/* Takes one chunk of a file read from the guest: 0 for more, 1 to stop
 * there, -1 with (err) set to fail. */
typedef int (*chunk_fn)(void *ctx, const uint8_t *p, size_t n, vb_error *err);

/* Read (path) from the guest (chunk) bytes at a time, handing each chunk to
 * (take), until the end of the file or until (take) says stop (its value
 * is returned). */
static int read_chunks(vb_sandbox *sb, const char *path, size_t chunk, chunk_fn take, void *ctx,
		       vb_error *err)
{
	uint64_t have = 0;
	for (;;) {
		struct vb_buf req = { 0 };
		struct vb_chan_frame *reply = NULL;
		vb_msg_begin(&req, VB_MSG_FILE_READ, 0, 0);
		vb_msg_put_str(&req, VB_TAG_PATH, path);
		vb_msg_put_u64(&req, VB_TAG_OFFSET, have);
		vb_msg_put_u64(&req, VB_TAG_LENGTH, chunk);
		if (call(sb, &req, &reply, err) < 0) {
			vb_error_prefix(err, "reading %s in the guest", path);
			return -1;
		}
		struct vb_field d;
		uint64_t size = 0;
		if (vb_payload_find(reply->payload, reply->hdr.len, VB_TAG_DATA, &d) < 0 ||
		    vb_payload_u64(reply->payload, reply->hdr.len, VB_TAG_SIZE, &size) < 0 ||
		    d.len > chunk) {
			free(reply);
			return vb_error_set(err, VB_E_RUNTIME, "malformed FILE_READ reply");
		}
		int rc = take(ctx, d.data, d.len, err);
		have += d.len;
		free(reply);
		if (rc)
			return rc;
		if (d.len == 0 || have >= size)
			return 0;
	}
}

struct to_memory {
	const char *path;
	uint8_t *buf;
	size_t have, max;
};

static int take_into_memory(void *ctx, const uint8_t *p, size_t n, vb_error *err)
{
	struct to_memory *m = ctx;
	if (m->have + n > m->max)
		return vb_error_set(err, VB_E_RUNTIME, "%s is larger than %zu bytes", m->path, m->max);
	uint8_t *nb = realloc(m->buf, m->have + n + 1);
	if (!nb)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	m->buf = nb;
	if (n)
		memcpy(m->buf + m->have, p, n);
	m->have += n;
	m->buf[m->have] = '\0';
	return 0;
}

int vb_file_read(vb_sandbox *sb, const char *path, size_t max, uint8_t **data, size_t *len,
		 vb_error *err)
{
	struct to_memory m = { .path = path, .max = max };
	if (read_chunks(sb, path, VB_FILE_CHUNK_MAX, take_into_memory, &m, err) < 0) {
		free(m.buf);
		return -1;
	}
	if (!m.buf && !(m.buf = calloc(1, 1)))
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	*data = m.buf;
	*len = m.have;
	return 0;
}

struct to_fd {
	const char *path;
	int fd;
	uint64_t have, max;
};

/* What is past (max) is never written: the caller learns only that there
 * was more. */
static int take_into_fd(void *ctx, const uint8_t *p, size_t n, vb_error *err)
{
	struct to_fd *t = ctx;
	int over = t->have + n > t->max;
	size_t take = over ? (size_t)(t->max - t->have) : n;
	if (take && vb_write_full(t->fd, p, take) < 0)
		return vb_error_errno(err, errno, "saving %s from the guest", t->path);
	t->have += take;
	return over;
}

int vb_file_write_fd(vb_sandbox *sb, const char *path, int fd, unsigned mode, int as_root,
		     vb_error *err)
{
	_cleanup_free_ uint8_t *buf = malloc(STREAM_CHUNK);
	if (!buf)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	uint64_t off = 0;
	for (;;) {
		ssize_t n = vb_read_full(fd, buf, STREAM_CHUNK);
		if (n < 0)
			return vb_error_errno(err, errno, "reading what to write to %s", path);
		if (n == 0 && off > 0)
			return 0;
		struct vb_buf req = { 0 };
		struct vb_chan_frame *reply = NULL;
		vb_msg_begin(&req, VB_MSG_FILE_WRITE, off == 0 ? VB_FLAG_TRUNC : 0, 0);
		vb_msg_put_str(&req, VB_TAG_PATH, path);
		vb_msg_put_bytes(&req, VB_TAG_DATA, buf, (size_t)n);
		vb_msg_put_u64(&req, VB_TAG_OFFSET, off);
		vb_msg_put_u64(&req, VB_TAG_MODE, mode ? mode : 0644);
		vb_msg_put_u64(&req, VB_TAG_UID, as_root ? 0 : 1000);
		vb_msg_put_u64(&req, VB_TAG_GID, as_root ? 0 : 1000);
		if (call(sb, &req, &reply, err) < 0) {
			vb_error_prefix(err, "writing %s in the guest", path);
			return -1;
		}
		free(reply);
		off += (uint64_t)n;
		if ((size_t)n < STREAM_CHUNK)
			return 0;
	}
}

int vb_file_read_fd(vb_sandbox *sb, const char *path, uint64_t max, int fd, uint64_t *len,
		    vb_error *err)
{
	struct to_fd t = { .path = path, .fd = fd, .max = max };
	int rc = read_chunks(sb, path, STREAM_CHUNK, take_into_fd, &t, err);
	*len = t.have;
	return rc;
}

int vb_file_stat(vb_sandbox *sb, const char *path, struct vb_file_stat *st, vb_error *err)
{
	struct vb_buf req = { 0 };
	struct vb_chan_frame *reply = NULL;
	vb_msg_begin(&req, VB_MSG_FILE_STAT, 0, 0);
	vb_msg_put_str(&req, VB_TAG_PATH, path);
	if (call(sb, &req, &reply, err) < 0)
		return -1;
	uint64_t mtime = 0;
	memset(st, 0, sizeof(*st));
	const void *p = reply->payload;
	size_t n = reply->hdr.len;
	int rc = vb_payload_u64(p, n, VB_TAG_SIZE, &st->size) | vb_payload_u64(p, n, VB_TAG_MODE, &st->mode) |
		 vb_payload_u64(p, n, VB_TAG_UID, &st->uid) | vb_payload_u64(p, n, VB_TAG_GID, &st->gid) |
		 vb_payload_u64(p, n, VB_TAG_MTIME, &mtime);
	st->mtime = (int64_t)mtime;
	free(reply);
	return rc < 0 ? vb_error_set(err, VB_E_RUNTIME, "malformed FILE_STAT reply") : 0;
}

int vb_file_mkdir(vb_sandbox *sb, const char *path, unsigned mode, int as_root, vb_error *err)
{
	struct vb_buf req = { 0 };
	struct vb_chan_frame *reply = NULL;
	vb_msg_begin(&req, VB_MSG_MKDIR, 0, 0);
	vb_msg_put_str(&req, VB_TAG_PATH, path);
	vb_msg_put_u64(&req, VB_TAG_MODE, mode ? mode : 0755);
	vb_msg_put_u64(&req, VB_TAG_UID, as_root ? 0 : 1000);
	vb_msg_put_u64(&req, VB_TAG_GID, as_root ? 0 : 1000);
	if (call(sb, &req, &reply, err) < 0) {
		vb_error_prefix(err, "creating %s in the guest", path);
		return -1;
	}
	free(reply);
	return 0;
}

int vb_sandbox_sample(vb_sandbox *sb, struct vb_sample *s, vb_error *err)
{
	struct vb_buf req = { 0 };
	struct vb_chan_frame *reply = NULL;
	vb_msg_begin(&req, VB_MSG_SAMPLE, 0, 0);
	if (call(sb, &req, &reply, err) < 0)
		return -1;
	memset(s, 0, sizeof(*s));
	const void *p = reply->payload;
	size_t n = reply->hdr.len;
	int rc = vb_payload_u64(p, n, VB_TAG_CPU_USER, &s->cpu_user) |
		 vb_payload_u64(p, n, VB_TAG_CPU_SYSTEM, &s->cpu_system) |
		 vb_payload_u64(p, n, VB_TAG_CPU_IDLE, &s->cpu_idle) |
		 vb_payload_u64(p, n, VB_TAG_MEM_TOTAL_KB, &s->mem_total_kb) |
		 vb_payload_u64(p, n, VB_TAG_MEM_AVAIL_KB, &s->mem_avail_kb) |
		 vb_payload_u64(p, n, VB_TAG_UPTIME_MS, &s->uptime_ms) |
		 vb_payload_u64(p, n, VB_TAG_NPROCS, &s->nprocs);
	free(reply);
	return rc < 0 ? vb_error_set(err, VB_E_RUNTIME, "malformed SAMPLE reply") : 0;
}
