/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store's bound (docs/snapshots.md, "Eviction"): after every save the
 * assembled RAM files of diffs (caches), then the least recently used
 * snapshots, are deleted while the store is over
 * $VOIDBOX_SNAPSHOT_MAX_BYTES.  "Used" is the mtime of a snapshot's `used`
 * file, set when it is made and on every restore; a restore holds a
 * shared flock on that file while QEMU loads the snapshot, and eviction
 * passes over a snapshot it cannot lock.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap/snap.h"
#include "util/util.h"

#define DEFAULT_BOUND (10ull << 30)

uint64_t vb_snap_max_bytes(void)
{
	return vb_env_bytes("VOIDBOX_SNAPSHOT_MAX_BYTES", DEFAULT_BOUND);
}

int vb_snap_use(const char *dir)
{
	_cleanup_free_ char *p = vb_strfmt("%s/used", dir);
	int fd = p ? open(p, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600) : -1;
	if (fd < 0)
		return -1;
	futimens(fd, NULL); /* now: the newest in the LRU */
	while (flock(fd, LOCK_SH) < 0 && errno == EINTR) {
	}
	return fd;
}

/* in ns: a restore and a save within one second are still ordered */
static int64_t used_ns(const struct vb_snap *s, const char *dir)
{
	_cleanup_free_ char *p = vb_strfmt("%s/used", dir);
	struct stat st;
	if (p && stat(p, &st) == 0)
		return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	return s->created * 1000000000; /* made before `used` existed */
}

int64_t vb_snap_last_used(const struct vb_snap *s, const char *dir)
{
	return used_ns(s, dir) / 1000000000;
}

uint64_t vb_snap_disk_bytes(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	uint64_t n = 0;
	struct dirent *e;
	struct stat st;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' || (e->d_name[1] && strcmp(e->d_name, "..")))
			if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISREG(st.st_mode))
				n += (uint64_t)st.st_blocks * 512u;
	closedir(d);
	return n;
}

struct entry {
	struct vb_snap s;
	uint64_t bytes;
	uint64_t cache; /* of those, its assembled RAM (a diff's ram.full) */
	int64_t used;
	int gone;
	int busy;
};

/* An exclusive lock on (root)/(id)/used without waiting: no restore is
 * loading it.  Returns the descriptor to close, or -1 if one is. */
static int lock_unused(const char *root, const char *id)
{
	_cleanup_free_ char *used = vb_strfmt("%s/%s/used", root, id);
	int fd = used ? open(used, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600) : -1;
	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return -1;
	}
	return fd >= 0 ? fd : -2; /* no file to lock (a read-only store): go on */
}

/* Drop assembled RAM files, least recently used first, while over
 * (max_bytes): a cache the next restore makes again (tens of ms), where
 * evicting a snapshot loses it. */
static void drop_caches(const char *root, struct entry *e, size_t n, const char *keep,
			uint64_t max_bytes, uint64_t *total)
{
	while (*total > max_bytes) {
		size_t pick = n;
		for (size_t i = 0; i < n; i++)
			if (e[i].cache && !e[i].busy && !(keep && !strcmp(e[i].s.id, keep)) &&
			    (pick == n || e[i].used < e[pick].used))
				pick = i;
		if (pick == n)
			return;
		int fd = lock_unused(root, e[pick].s.id);
		_cleanup_free_ char *full = vb_strfmt("%s/%s/ram.full", root, e[pick].s.id);
		_cleanup_free_ char *ok = vb_strfmt("%s/%s/ram.full.ok", root, e[pick].s.id);
		/* a VM running from it keeps its mapping */
		if (fd == -1 || !full || !ok || unlink(full) < 0) {
			e[pick].busy = 1;
		} else {
			unlink(ok);
			*total -= e[pick].cache;
			e[pick].bytes -= e[pick].cache;
			e[pick].cache = 0;
		}
		if (fd >= 0)
			close(fd);
	}
}

static int dependents_left(const struct entry *e, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (!e[i].gone && !strcmp(e[i].s.base, id))
			return 1;
	return 0;
}

int vb_snap_evict(uint64_t max_bytes, const char *keep, size_t *evicted, vb_error *err)
{
	if (evicted)
		*evicted = 0;
	if (max_bytes == 0)
		return 0;
	_cleanup_free_ char *root = vb_snap_root(err);
	struct vb_snap *all = NULL;
	size_t n = 0;
	if (!root || vb_snap_list(&all, &n, err) < 0)
		return -1;
	_cleanup_free_ struct entry *e = calloc(n ? n : 1, sizeof(*e));
	if (!e) {
		free(all);
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *dir = vb_strfmt("%s/%s", root, all[i].id);
		e[i].s = all[i];
		e[i].bytes = dir ? vb_snap_disk_bytes(dir) : 0;
		_cleanup_free_ char *full = vb_strfmt("%s/%s/ram.full", root, all[i].id);
		struct stat st;
		if (full && lstat(full, &st) == 0 && S_ISREG(st.st_mode))
			e[i].cache = (uint64_t)st.st_blocks * 512u;
		e[i].used = dir ? used_ns(&all[i], dir) : all[i].created * 1000000000;
		total += e[i].bytes;
	}
	free(all);
	drop_caches(root, e, n, keep, max_bytes, &total);
	for (size_t i = 0; i < n; i++)
		e[i].busy = 0; /* a restore may hold one: tried again below */
	while (total > max_bytes) {
		/* the least recently used of those nothing depends on; ties: the
		 * older first */
		size_t pick = n;
		for (size_t i = 0; i < n; i++) {
			if (e[i].gone || e[i].busy || (keep && !strcmp(e[i].s.id, keep)) ||
			    dependents_left(e, n, e[i].s.id))
				continue;
			if (pick == n || e[i].used < e[pick].used ||
			    (e[i].used == e[pick].used && e[i].s.created < e[pick].s.created))
				pick = i;
		}
		if (pick == n)
			break; /* what is left is kept, in use or a base of what is */
		/* a restore that holds it is loading it into QEMU right now */
		int fd = lock_unused(root, e[pick].s.id);
		vb_error ign = { 0 };
		if (fd == -1 || vb_snap_delete(&e[pick].s, &ign) < 0) {
			e[pick].busy = 1;
			if (fd >= 0)
				close(fd);
			continue;
		}
		if (fd >= 0)
			close(fd);
		e[pick].gone = 1;
		total -= e[pick].bytes;
		if (evicted)
			(*evicted)++;
	}
	return 0;
}
