/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Diff snapshots (docs/snapshots.md, "Diffs"): a snapshot taken from
 * another keeps only the 4 KiB pages of its RAM that differ from its
 * base's, and a restore maps a whole RAM file assembled from the base's
 * and those pages once, then kept as a cache (`ram.full`) checked against
 * the manifest's digest of the whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap/snap.h"
#include "util/util.h"

#define CHUNK VB_SNAP_CHUNK
#define PAGE VB_SNAP_PAGE

static int zero_chunk(const unsigned char *b, size_t n)
{
	static const unsigned char zero[CHUNK];
	return memcmp(b, zero, n) == 0;
}

/* The offset of the first data at or after (off) in (fd), or (end). */
static uint64_t next_data(int fd, uint64_t off, uint64_t end)
{
	off_t d = lseek(fd, (off_t)off, SEEK_DATA);
	return d < 0 ? end : (uint64_t)d; /* ENXIO: only a hole is left */
}

static size_t chunk_len(uint64_t size, uint64_t k)
{
	return size - k * CHUNK < CHUNK ? (size_t)(size - k * CHUNK) : CHUNK;
}

static size_t page_len(uint64_t size, uint64_t k)
{
	return size - k * PAGE < PAGE ? (size_t)(size - k * PAGE) : PAGE;
}

int vb_snap_copy_sparse(const char *from, const char *to, vb_error *err)
{
	_cleanup_close_ int in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (in < 0 || fstat(in, &st) < 0)
		return vb_error_errno(err, errno, "%s", from);
	_cleanup_close_ int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0 || ftruncate(out, st.st_size) < 0)
		return vb_error_errno(err, errno, "%s", to);
	_cleanup_free_ unsigned char *buf = malloc(CHUNK);
	if (!buf)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	uint64_t size = (uint64_t)st.st_size;
	for (uint64_t k = next_data(in, 0, size) / CHUNK; k * CHUNK < size;
	     k = next_data(in, (k + 1) * CHUNK, size) / CHUNK) {
		size_t want = chunk_len(size, k);
		if (pread(in, buf, want, (off_t)(k * CHUNK)) != (ssize_t)want)
			return vb_error_errno(err, errno ? errno : EIO, "%s", from);
		/* zeros stay a hole: the copy takes the space the data does */
		if (!zero_chunk(buf, want) &&
		    pwrite(out, buf, want, (off_t)(k * CHUNK)) != (ssize_t)want)
			return vb_error_errno(err, errno ? errno : EIO, "%s", to);
	}
	return 0;
}

int vb_snap_make_diff(const char *ram, const char *base_ram, const char *map, uint64_t *changed,
		      vb_error *err)
{
	*changed = 0;
	_cleanup_close_ int a = open(ram, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	_cleanup_close_ int b = open(base_ram, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat sa, sb;
	if (a < 0 || fstat(a, &sa) < 0)
		return vb_error_errno(err, errno, "%s", ram);
	if (b < 0 || fstat(b, &sb) < 0)
		return vb_error_errno(err, errno, "%s", base_ram);
	if (sa.st_size != sb.st_size)
		return vb_error_set(err, VB_E_RUNTIME, "the RAM is %lld bytes, its base's %lld",
				    (long long)sa.st_size, (long long)sb.st_size);
	uint64_t size = (uint64_t)sa.st_size, pages = size / PAGE + (size % PAGE != 0);
	_cleanup_free_ char *tmp = vb_strfmt("%s.diff", ram);
	_cleanup_free_ unsigned char *x = malloc(CHUNK), *y = malloc(CHUNK);
	_cleanup_free_ unsigned char *bits = calloc(1, (size_t)((pages + 7) / 8) + 1);
	if (!tmp || !x || !y || !bits)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	_cleanup_close_ int out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0 || ftruncate(out, (off_t)size) < 0)
		return vb_error_errno(err, errno, "%s", tmp);
	for (uint64_t k = 0; k * CHUNK < size; k++) {
		/* only where either file has data can they differ: two holes
		 * are the same zeros */
		uint64_t da = next_data(a, k * CHUNK, size), db = next_data(b, k * CHUNK, size);
		k = (da < db ? da : db) / CHUNK;
		if (k * CHUNK >= size)
			break;
		size_t want = chunk_len(size, k);
		if (pread(a, x, want, (off_t)(k * CHUNK)) != (ssize_t)want ||
		    pread(b, y, want, (off_t)(k * CHUNK)) != (ssize_t)want) {
			unlink(tmp);
			return vb_error_errno(err, errno ? errno : EIO, "reading the RAM files");
		}
		for (size_t o = 0; o < want; o += PAGE) {
			size_t n = want - o < PAGE ? want - o : PAGE;
			uint64_t pg = (k * CHUNK + o) / PAGE;
			if (!memcmp(x + o, y + o, n))
				continue;
			bits[pg / 8] |= (unsigned char)(1u << (pg % 8));
			(*changed)++;
			/* a page that became zeros is a hole here and a bit in the map */
			if (!vb_is_zero(x + o, n) &&
			    pwrite(out, x + o, n, (off_t)(k * CHUNK + o)) != (ssize_t)n) {
				unlink(tmp);
				return vb_error_errno(err, errno ? errno : EIO, "%s", tmp);
			}
		}
	}
	_cleanup_close_ int mfd = open(map, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (mfd < 0 || vb_write_full(mfd, bits, (size_t)((pages + 7) / 8)) < 0 || fsync(mfd) < 0 ||
	    fsync(out) < 0 || rename(tmp, ram) < 0) {
		int e = errno;
		unlink(tmp);
		return vb_error_errno(err, e, "cannot write the diff");
	}
	return 0;
}

/* device, inode, size, mtime and ctime of (path): what a write or a copy
 * changes (as the snapshot's own stamp, store.c) */
static int file_stamp(const char *path, char *out, size_t len)
{
	struct stat st;
	if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return -1;
	int n = snprintf(out, len, "%llu %llu %lld %lld.%09ld %lld.%09ld\n",
			 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
			 (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
			 (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

static int matches_full(const struct vb_snap *s, const char *path, vb_error *err)
{
	struct vb_snap_file got;
	if (vb_snap_digest(path, &got, err) < 0)
		return -1;
	return got.size == s->full.size && got.data == s->full.data &&
	       !strcmp(got.sha256, s->full.sha256);
}

/* The cache (dir)/ram.full when it is there and still what the manifest
 * says: by its stamp (ram.full.ok) or, without one, in full. */
static int cache_ok(const struct vb_snap *s, const char *full, const char *ok)
{
	char now[256];
	if (file_stamp(full, now, sizeof(now)) < 0)
		return 0;
	size_t len = 0;
	vb_error ign;
	_cleanup_free_ char *was = vb_read_file(ok, sizeof(now), &len, &ign);
	if (was && !strcmp(was, now))
		return 1;
	if (matches_full(s, full, &ign) != 1)
		return 0;
	if (file_stamp(full, now, sizeof(now)) == 0)
		vb_write_file_atomic(ok, now, strlen(now), 0600);
	return 1;
}

/* Write the diff's pages (its ram, where ram.map says) over (fd), a copy
 * of its base's whole RAM. */
static int apply(const struct vb_snap *s, const char *dir, int fd, vb_error *err)
{
	_cleanup_free_ char *ram = vb_strfmt("%s/ram", dir), *map = vb_strfmt("%s/ram.map", dir);
	_cleanup_free_ unsigned char *buf = malloc(PAGE);
	if (!ram || !map || !buf)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	size_t mlen = 0;
	_cleanup_free_ unsigned char *bits =
		(unsigned char *)vb_read_file(map, (size_t)s->files[3].size + 1, &mlen, err);
	_cleanup_close_ int in = open(ram, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (!bits)
		return -1;
	if (in < 0)
		return vb_error_errno(err, errno, "%s", ram);
	uint64_t size = s->full.size;
	for (uint64_t k = 0; k * PAGE < size && k / 8 < mlen; k++) {
		if (!(bits[k / 8] & (1u << (k % 8))))
			continue;
		size_t want = page_len(size, k);
		if (pread(in, buf, want, (off_t)(k * PAGE)) != (ssize_t)want ||
		    pwrite(fd, buf, want, (off_t)(k * PAGE)) != (ssize_t)want)
			return vb_error_errno(err, errno ? errno : EIO, "assembling the RAM");
	}
	return 0;
}

/* (tmp): a copy of (base_ram) with the diff's pages over it, checked
 * against the manifest, then renamed to (full). */
static int assemble(const struct vb_snap *s, const char *dir, const char *base_ram,
		    const char *tmp, const char *full, vb_error *err)
{
	if (vb_snap_copy_sparse(base_ram, tmp, err) < 0)
		return -1;
	_cleanup_close_ int fd = open(tmp, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return vb_error_errno(err, errno, "%s", tmp);
	if (apply(s, dir, fd, err) < 0)
		return -1;
	int m = matches_full(s, tmp, err);
	if (m < 0)
		return -1;
	if (!m)
		return vb_error_set(err, VB_E_RUNTIME,
				    "snapshot %.12s is damaged: its RAM on its base %.12s does not "
				    "match its digest",
				    s->id, s->base);
	/* concurrent restores may each assemble one: the last rename wins,
	 * all the same bytes */
	if (chmod(tmp, 0400) < 0 || rename(tmp, full) < 0)
		return vb_error_errno(err, errno, "%s", full);
	return 0;
}

static char *ram_of(const struct vb_snap *s, const char *dir, int depth, vb_error *err)
{
	if (!s->base[0])
		return vb_strfmt("%s/ram", dir);
	if (depth >= VB_SNAP_CHAIN_MAX) {
		vb_error_set(err, VB_E_RUNTIME, "snapshot %.12s: its bases go over %d deep", s->id,
			     VB_SNAP_CHAIN_MAX);
		return NULL;
	}
	struct vb_snap base;
	_cleanup_free_ char *bdir = NULL;
	if (vb_snap_open(s->base, &base, &bdir, err) < 0) {
		if (err && err->kind == VB_E_NOTFOUND)
			vb_error_set(err, VB_E_RUNTIME,
				     "snapshot %.12s is a diff of %.12s, which is not in the store",
				     s->id, s->base);
		else
			vb_error_prefix(err, "snapshot %.12s is a diff of %.12s", s->id, s->base);
		return NULL;
	}
	/* the base is checked as the diff is: a damaged base is a damaged
	 * diff, refused before anything runs */
	if (vb_snap_verify(&base, bdir, 0, err) < 0) {
		vb_error_prefix(err, "snapshot %.12s is a diff of %.12s", s->id, base.id);
		return NULL;
	}
	if (strcmp(base.src.kernel, s->src.kernel) || strcmp(base.src.initramfs, s->src.initramfs) ||
	    strcmp(base.src.config, s->src.config) || base.files[1].size != s->full.size) {
		vb_error_set(err, VB_E_RUNTIME,
			     "snapshot %.12s is a diff of %.12s, which has other sources", s->id,
			     base.id);
		return NULL;
	}
	_cleanup_free_ char *base_ram = ram_of(&base, bdir, depth + 1, err);
	if (!base_ram) {
		vb_error_prefix(err, "snapshot %.12s is a diff of %.12s", s->id, base.id);
		return NULL;
	}
	char *full = vb_strfmt("%s/ram.full", dir);
	_cleanup_free_ char *ok = vb_strfmt("%s/ram.full.ok", dir);
	char rnd[17];
	_cleanup_free_ char *tmp = NULL;
	if (!full || !ok || vb_random_hex(rnd, 8, err) < 0 ||
	    !(tmp = vb_strfmt("%s/.ram.full-%d-%s", dir, (int)getpid(), rnd))) {
		if (!full || !ok)
			vb_error_set(err, VB_E_RUNTIME, "out of memory");
		free(full);
		return NULL;
	}
	if (cache_ok(s, full, ok))
		return full;
	/* none yet, or a damaged one: made again from what was checked; and
	 * the half-made ones of restores that died on the way swept */
	unlink(ok);
	vb_sweep_dead_owners(dir, ".ram.full-");
	if (assemble(s, dir, base_ram, tmp, full, err) < 0) {
		unlink(tmp);
		free(full);
		return NULL;
	}
	char st[256];
	if (file_stamp(full, st, sizeof(st)) == 0)
		vb_write_file_atomic(ok, st, strlen(st), 0600);
	return full;
}

char *vb_snap_ram(const struct vb_snap *s, const char *dir, vb_error *err)
{
	char *p = ram_of(s, dir, 0, err);
	if (!p && err && !err->msg[0])
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
	return p;
}
