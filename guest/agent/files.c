/* SPDX-License-Identifier: Apache-2.0 */
/*
 * files.c — FILE_WRITE, FILE_READ, FILE_STAT and MKDIR, confined to the
 * allowed roots.
 *
 * The agent runs these as root, so every path is resolved by the kernel
 * under an O_PATH fd of its root with openat2(RESOLVE_IN_ROOT |
 * RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS): no symlink anywhere on the
 * path is followed (even one pointing inside), no ".." is accepted, and a
 * rename race cannot move the resolution outside the root.  Files are opened
 * O_NONBLOCK and checked to be regular before any I/O, so a FIFO planted by
 * the sandbox cannot hang a worker.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef RESOLVE_NO_XDEV
#define RESOLVE_NO_XDEV 0x01
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_NO_SYMLINKS 0x04
#define RESOLVE_BENEATH 0x08
#define RESOLVE_IN_ROOT 0x10
#endif

struct vb_open_how {
	uint64_t flags, mode, resolve;
};

static int openat2_(int dirfd, const char *path, int flags, mode_t mode, uint64_t resolve)
{
	struct vb_open_how how = {
		.flags = (uint64_t)(unsigned)(flags | O_CLOEXEC),
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = resolve,
	};
	long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	return fd < 0 ? -1 : (int)fd;
}

#define CONFINED (RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

/* ---- path resolution ----------------------------------------------------- */

/* Normalise (path) into (norm) ("/a/b": no empty or "." components) and
 * find its root.  Returns the root index, or -1 with *vb_err set. */
static int find_root(const char *path, char *norm, size_t cap, int *vb_err)
{
	if (path[0] != '/') {
		*vb_err = VB_ERR_INVAL;
		errno = EINVAL;
		return -1;
	}
	size_t n = 0;
	for (const char *c = path; *c;) {
		while (*c == '/')
			c++;
		if (!*c)
			break;
		const char *e = strchrnul(c, '/');
		size_t len = (size_t)(e - c);
		if (len == 2 && c[0] == '.' && c[1] == '.') {
			*vb_err = VB_ERR_OUTSIDE;
			errno = EXDEV;
			return -1;
		}
		if (!(len == 1 && c[0] == '.')) {
			if (n + 1 + len + 1 > cap) {
				*vb_err = VB_ERR_INVAL;
				errno = ENAMETOOLONG;
				return -1;
			}
			norm[n++] = '/';
			memcpy(norm + n, c, len);
			n += len;
		}
		c = e;
	}
	norm[n] = '\0';
	int best = -1;
	size_t best_len = 0;
	for (size_t i = 0; i < g_agent.n_roots; i++) {
		const char *r = g_agent.roots[i];
		size_t rl = strlen(r);
		if (rl <= n && !memcmp(norm, r, rl) && (norm[rl] == '\0' || norm[rl] == '/') &&
		    rl > best_len) {
			best = (int)i;
			best_len = rl;
		}
	}
	if (best < 0) {
		*vb_err = VB_ERR_OUTSIDE;
		errno = EXDEV;
	}
	return best;
}

/* Open the root of (path); *rest is the path below it (in norm), or NULL
 * for the root itself. */
static int open_root(const char *path, char *norm, size_t cap, char **rest, int *vb_err)
{
	int r = find_root(path, norm, cap, vb_err);
	if (r < 0)
		return -1;
	size_t rl = strlen(g_agent.roots[r]);
	*rest = norm[rl] ? norm + rl + 1 : NULL;
	int fd = openat2_(AT_FDCWD, g_agent.roots[r], O_PATH | O_DIRECTORY,
			  0, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
	if (fd < 0)
		*vb_err = agent_errno_to_vb(errno);
	return fd;
}

int files_open(const char *path, int flags, mode_t mode, int *vb_err)
{
	char norm[VB_MAX_PATH + 2];
	char *rest;
	int root = open_root(path, norm, sizeof(norm), &rest, vb_err);
	if (root < 0)
		return -1;
	int fd = openat2_(root, rest ? rest : ".", flags, mode, CONFINED);
	int e = errno;
	close(root);
	if (fd < 0) {
		*vb_err = agent_errno_to_vb(e);
		errno = e;
	}
	return fd;
}

/* ---- requests ------------------------------------------------------------ */

struct freq {
	char *path;
	const uint8_t *data;
	size_t data_len;
	uint64_t offset, length, mode, uid, gid;
	int has_mode, has_uid, has_gid, has_length;
};

/* Returns 0, or a VB_ERR_* with (why) describing the bad field. */
static int parse(const struct vb_hdr *h, const uint8_t *payload, struct freq *q, const char **why)
{
	struct vb_reader r;
	struct vb_field f;
	int rc;
	memset(q, 0, sizeof(*q));
	vb_reader_init(&r, payload, h->len);
	while ((rc = vb_reader_next(&r, &f)) > 0) {
		int bad = 0;
		switch (f.tag) {
		case VB_TAG_PATH:
			free(q->path);
			q->path = NULL;
			bad = vb_field_strdup(&f, VB_MAX_PATH, &q->path) < 0;
			*why = "PATH";
			break;
		case VB_TAG_DATA:
			q->data = f.data;
			q->data_len = f.len;
			break;
		case VB_TAG_OFFSET:
			bad = vb_field_u64(&f, &q->offset) < 0 || q->offset > (uint64_t)INT64_MAX;
			*why = "OFFSET";
			break;
		case VB_TAG_LENGTH:
			bad = vb_field_u64(&f, &q->length) < 0;
			q->has_length = 1;
			*why = "LENGTH";
			break;
		case VB_TAG_MODE:
			bad = vb_field_u64(&f, &q->mode) < 0 || q->mode > 07777;
			q->has_mode = 1;
			*why = "MODE";
			break;
		case VB_TAG_UID:
			bad = vb_field_u64(&f, &q->uid) < 0 || q->uid > 65535;
			q->has_uid = 1;
			*why = "UID";
			break;
		case VB_TAG_GID:
			bad = vb_field_u64(&f, &q->gid) < 0 || q->gid > 65535;
			q->has_gid = 1;
			*why = "GID";
			break;
		default:
			break;
		}
		if (bad)
			return VB_ERR_INVAL;
	}
	if (rc < 0) {
		*why = "payload";
		return VB_ERR_PROTO;
	}
	if (!q->path) {
		*why = "PATH (missing)";
		return VB_ERR_INVAL;
	}
	return VB_ERR_NONE;
}

static void reply_errno(struct conn *c, uint32_t id, int vb_err, int e, const char *op,
			const char *path)
{
	if (vb_err == VB_ERR_OUTSIDE && e == ELOOP)
		conn_send_error(c, id, vb_err, "%s '%.1024s': a symlink on the path is not followed",
				op, path);
	else if (vb_err == VB_ERR_OUTSIDE)
		conn_send_error(c, id, vb_err, "%s '%.1024s': outside the allowed roots", op, path);
	else
		conn_send_error(c, id, vb_err, "%s '%.1024s': %s", op, path, strerror(e));
}

static int check_regular(int fd, struct stat *st, int *vb_err)
{
	if (fstat(fd, st) < 0) {
		*vb_err = agent_errno_to_vb(errno);
		return -1;
	}
	if (S_ISDIR(st->st_mode)) {
		*vb_err = VB_ERR_ISDIR;
		errno = EISDIR;
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		*vb_err = VB_ERR_INVAL;
		errno = EINVAL; /* message below */
		return -1;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return 0;
}

static void do_write(struct conn *c, uint32_t id, uint16_t flags, const struct freq *q)
{
	int vb_err = VB_ERR_NONE, created = 1;
	struct stat st;
	if (q->data_len > VB_FILE_CHUNK_MAX) {
		conn_send_error(c, id, VB_ERR_INVAL, "FILE_WRITE: DATA larger than %u bytes",
				VB_FILE_CHUNK_MAX);
		return;
	}
	if (q->data_len > (uint64_t)INT64_MAX - q->offset) {
		conn_send_error(c, id, VB_ERR_INVAL, "FILE_WRITE: OFFSET too large");
		return;
	}
	mode_t mode = q->has_mode ? (mode_t)q->mode : 0644;
	/* O_EXCL first: whether we created the file decides the defaults */
	int fd = files_open(q->path, O_WRONLY | O_CREAT | O_EXCL | O_NONBLOCK | O_NOCTTY, mode & 0777,
			    &vb_err);
	if (fd < 0 && errno == EEXIST) {
		created = 0;
		fd = files_open(q->path, O_WRONLY | O_NONBLOCK | O_NOCTTY, 0, &vb_err);
	}
	if (fd < 0 || check_regular(fd, &st, &vb_err) < 0) {
		int e = errno;
		if (vb_err == VB_ERR_INVAL && fd >= 0)
			conn_send_error(c, id, vb_err, "write '%.1024s': not a regular file", q->path);
		else
			reply_errno(c, id, vb_err, e, "write", q->path);
		if (fd >= 0)
			close(fd);
		return;
	}
	const char *op = "write";
	int ok = 1;
	if ((flags & VB_FLAG_TRUNC) && ftruncate(fd, 0) < 0) {
		op = "truncate";
		ok = 0;
	}
	for (size_t done = 0; ok && done < q->data_len;) {
		ssize_t w = pwrite(fd, q->data + done, q->data_len - done, (off_t)(q->offset + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			ok = 0;
			break;
		}
		done += (size_t)w;
	}
	/* owner first: chown clears set-id bits */
	if (ok && g_agent.is_root && (created || q->has_uid || q->has_gid)) {
		uid_t u = q->has_uid ? (uid_t)q->uid : created ? AGENT_SANDBOX_UID : (uid_t)-1;
		gid_t g = q->has_gid ? (gid_t)q->gid : created ? AGENT_SANDBOX_GID : (gid_t)-1;
		if (fchown(fd, u, g) < 0) {
			op = "chown";
			ok = 0;
		}
	}
	if (ok && (created || q->has_mode) && fchmod(fd, mode) < 0) {
		op = "chmod";
		ok = 0;
	}
	int e = errno;
	if (close(fd) < 0 && ok) { /* 9p reports some write errors only here */
		e = errno;
		ok = 0;
	}
	if (!ok) {
		reply_errno(c, id, agent_errno_to_vb(e), e, op, q->path);
		return;
	}
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_OK, 0, id);
	if (vb_msg_end(&b) == 0)
		conn_send(c, &b);
	vb_buf_free(&b);
}

static void do_read(struct conn *c, uint32_t id, const struct freq *q)
{
	int vb_err = VB_ERR_NONE;
	struct stat st;
	uint64_t length = q->has_length ? q->length : VB_FILE_CHUNK_MAX;
	if (length > VB_FILE_CHUNK_MAX)
		length = VB_FILE_CHUNK_MAX;
	int fd = files_open(q->path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0, &vb_err);
	if (fd < 0 || check_regular(fd, &st, &vb_err) < 0) {
		int e = errno;
		if (vb_err == VB_ERR_INVAL && fd >= 0)
			conn_send_error(c, id, vb_err, "read '%.1024s': not a regular file", q->path);
		else
			reply_errno(c, id, vb_err, e, "read", q->path);
		if (fd >= 0)
			close(fd);
		return;
	}
	uint64_t size = st.st_size > 0 ? (uint64_t)st.st_size : 0;
	uint64_t avail = size > q->offset ? size - q->offset : 0;
	/* a file that grows meanwhile is read up to its size at the fstat */
	size_t want = (size_t)(avail < length ? avail : length), got = 0;
	uint8_t *buf = malloc(want ? want : 1);
	if (!buf) {
		close(fd);
		conn_send_error(c, id, VB_ERR_INTERNAL, "out of memory");
		return;
	}
	while (got < want) {
		ssize_t r = pread(fd, buf + got, want - got, (off_t)(q->offset + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			free(buf);
			reply_errno(c, id, agent_errno_to_vb(e), e, "read", q->path);
			return;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_OK, 0, id);
	vb_msg_put_bytes(&b, VB_TAG_DATA, buf, got);
	vb_msg_put_u64(&b, VB_TAG_SIZE, size);
	if (vb_msg_end(&b) == 0)
		conn_send(c, &b);
	else
		conn_send_error(c, id, VB_ERR_INTERNAL, "out of memory");
	vb_buf_free(&b);
	free(buf);
}

static void do_stat(struct conn *c, uint32_t id, const struct freq *q)
{
	int vb_err = VB_ERR_NONE;
	struct stat st;
	/* O_PATH|O_NOFOLLOW: a trailing symlink is described, not followed */
	int fd = files_open(q->path, O_PATH | O_NOFOLLOW, 0, &vb_err);
	if (fd < 0) {
		reply_errno(c, id, vb_err, errno, "stat", q->path);
		return;
	}
	int rc = fstat(fd, &st), e = errno;
	close(fd);
	if (rc < 0) {
		reply_errno(c, id, agent_errno_to_vb(e), e, "stat", q->path);
		return;
	}
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_OK, 0, id);
	vb_msg_put_u64(&b, VB_TAG_SIZE, st.st_size > 0 ? (uint64_t)st.st_size : 0);
	vb_msg_put_u64(&b, VB_TAG_MODE, (uint64_t)st.st_mode);
	vb_msg_put_u64(&b, VB_TAG_UID, (uint64_t)st.st_uid);
	vb_msg_put_u64(&b, VB_TAG_GID, (uint64_t)st.st_gid);
	vb_msg_put_u64(&b, VB_TAG_MTIME, st.st_mtim.tv_sec > 0 ? (uint64_t)st.st_mtim.tv_sec : 0);
	if (vb_msg_end(&b) == 0)
		conn_send(c, &b);
	vb_buf_free(&b);
}

/* mkdir -p, one component at a time, each walked with openat2 so that no
 * component can be a symlink; new directories get MODE and the owner. */
static void do_mkdir(struct conn *c, uint32_t id, const struct freq *q)
{
	char norm[VB_MAX_PATH + 2];
	char *rest;
	int vb_err = VB_ERR_NONE;
	mode_t mode = q->has_mode ? (mode_t)q->mode : 0755;
	uid_t uid = q->has_uid ? (uid_t)q->uid : AGENT_SANDBOX_UID;
	gid_t gid = q->has_gid ? (gid_t)q->gid : AGENT_SANDBOX_GID;
	int cur = open_root(q->path, norm, sizeof(norm), &rest, &vb_err);
	if (cur < 0) {
		reply_errno(c, id, vb_err, errno, "mkdir", q->path);
		return;
	}
	char *walk = rest;
	while (walk && *walk) {
		char *slash = strchr(walk, '/');
		if (slash)
			*slash = '\0';
		const char *op = "mkdir";
		int created = mkdirat(cur, walk, mode & 0777) == 0;
		int e = errno, next = -1;
		if (created || e == EEXIST) {
			op = "open";
			/* no O_NOFOLLOW: with O_PATH it would return a symlink
			 * itself; RESOLVE_NO_SYMLINKS refuses it (ELOOP) */
			next = openat2_(cur, walk, (created ? O_RDONLY : O_PATH) | O_DIRECTORY, 0,
					RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
			e = errno;
		}
		if (next >= 0 && created) {
			if (g_agent.is_root && fchown(next, uid, gid) < 0) {
				op = "chown";
				e = errno;
				close(next);
				next = -1;
			} else if (fchmod(next, mode) < 0) {
				op = "chmod";
				e = errno;
				close(next);
				next = -1;
			}
		}
		close(cur);
		if (next < 0) {
			if (e == ENOTDIR && !created)
				reply_errno(c, id, VB_ERR_NOTDIR, e, op, q->path);
			else
				reply_errno(c, id, agent_errno_to_vb(e), e, op, q->path);
			return;
		}
		cur = next;
		walk = slash ? slash + 1 : NULL;
	}
	close(cur);
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_OK, 0, id);
	if (vb_msg_end(&b) == 0)
		conn_send(c, &b);
	vb_buf_free(&b);
}

void files_handle(struct conn *c, const struct vb_hdr *h, const uint8_t *payload)
{
	struct freq q;
	const char *why = "";
	int rc = parse(h, payload, &q, &why);
	if (rc != VB_ERR_NONE) {
		conn_send_error(c, h->id, rc, "%s: invalid %s", vb_msg_name(h->type), why);
		free(q.path);
		return;
	}
	switch (h->type) {
	case VB_MSG_FILE_WRITE:
		do_write(c, h->id, h->flags, &q);
		break;
	case VB_MSG_FILE_READ:
		do_read(c, h->id, &q);
		break;
	case VB_MSG_FILE_STAT:
		do_stat(c, h->id, &q);
		break;
	case VB_MSG_MKDIR:
		do_mkdir(c, h->id, &q);
		break;
	default:
		conn_send_error(c, h->id, VB_ERR_INVAL, "not a file request");
	}
	free(q.path);
}
