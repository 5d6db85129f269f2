/* SPDX-License-Identifier: Apache-2.0 */
/*
 * memo.c — the digests of a snapshot's sources (kernel, initramfs),
 * remembered by the files' stat identity (docs/snapshots.md, "Sources").
 *
 * Every restore compares the kernel and initramfs it would boot with the
 * ones the snapshot was taken from.  Hashing them (~5 MB) cost ~4 ms,
 * and a warm exec asked twice (its warm name, then the restore's check).  A digest is kept
 * for this process and in `snapshots/.sources` for the next ones, under
 * the file's device, inode, size, mtime and ctime: a write to the file,
 * a rename over it or a `touch -d` back in time all change the ctime,
 * which no user can set, so a remembered digest is never one of other
 * bytes.  It is taken before and after hashing and recorded only when
 * equal (nothing changed while it was read) and the file had been left
 * alone for a while (a change in the same clock tick keeps the ctime).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "snap/snap.h"
#include "util/util.h"

#define MEMO_ENTRIES 16u /* lines kept in .sources: a few kernels and initramfs */
#define MEMO_LINE 640u   /* digest, stat identity, a path below PATH_MAX-ish */
#define MEMO_PATH_MAX 512u
#define MEMO_SETTLED_S 2 /* seconds since its last change before a file's digest is kept */

struct memo {
	char key[MEMO_LINE]; /* "dev ino size mtime ctime path" */
	char sha[VB_SNAP_HEX];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct memo mine[MEMO_ENTRIES]; /* this process's, newest at [0] */

static int key_of(const char *path, char *key, size_t len, time_t *ctime_s)
{
	struct stat st;
	if (strlen(path) >= MEMO_PATH_MAX || strchr(path, '\n') || stat(path, &st) < 0 ||
	    !S_ISREG(st.st_mode))
		return -1;
	int n = snprintf(key, len, "%llu %llu %lld %lld.%09ld %lld.%09ld %s",
			 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
			 (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
			 (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec, path);
	if (ctime_s)
		*ctime_s = st.st_ctim.tv_sec;
	return n > 0 && (size_t)n < len ? 0 : -1;
}

/* The path at the end of a key, after its 5 stat fields; NULL if damaged. */
static const char *key_path(const char *key)
{
	const char *p = key;
	for (int k = 0; k < 5; k++) {
		p = strchr(p, ' ');
		if (!p)
			return NULL;
		p++;
	}
	return p;
}

static int is_hex64(const char *s)
{
	for (int i = 0; i < VB_SNAP_HEX - 1; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* Lines "SHA KEY" of (text) into (m); returns how many. */
static size_t parse(char *text, struct memo *m, size_t max)
{
	size_t n = 0;
	for (char *line = text, *next; line && *line && n < max; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		size_t len = strlen(line);
		if (len <= VB_SNAP_HEX || len - VB_SNAP_HEX >= MEMO_LINE || line[VB_SNAP_HEX - 1] != ' ' ||
		    !is_hex64(line))
			continue; /* damaged: as if not there */
		if (!key_path(line + VB_SNAP_HEX))
			continue;
		memcpy(m[n].sha, line, VB_SNAP_HEX - 1);
		m[n].sha[VB_SNAP_HEX - 1] = '\0';
		snprintf(m[n].key, sizeof(m[n].key), "%s", line + VB_SNAP_HEX);
		n++;
	}
	return n;
}

static char *memo_path(void)
{
	vb_error e;
	_cleanup_free_ char *root = vb_snap_root(&e);
	return root ? vb_strfmt("%s/.sources", root) : NULL;
}

static int lookup(const struct memo *m, size_t n, const char *key, char out[VB_SNAP_HEX])
{
	for (size_t i = 0; i < n; i++)
		if (m[i].key[0] && !strcmp(m[i].key, key)) {
			memcpy(out, m[i].sha, VB_SNAP_HEX);
			return 1;
		}
	return 0;
}

/* (e) first, then up to MEMO_ENTRIES - 1 of (old) that are not for its
 * path: one digest per file, the newest. */
static size_t push(struct memo *dst, const struct memo *e, const struct memo *old, size_t n_old)
{
	size_t n = 0;
	dst[n++] = *e;
	const char *path = key_path(e->key);
	for (size_t i = 0; i < n_old && n < MEMO_ENTRIES; i++) {
		const char *p = key_path(old[i].key);
		if (p && path && strcmp(p, path) != 0)
			dst[n++] = old[i];
	}
	return n;
}

/* Into this process's memo (callers may be threads of one run). */
static void remember(const struct memo *e)
{
	pthread_mutex_lock(&lock);
	struct memo copy[MEMO_ENTRIES];
	memcpy(copy, mine, sizeof(copy));
	memset(mine, 0, sizeof(mine));
	push(mine, e, copy, MEMO_ENTRIES);
	pthread_mutex_unlock(&lock);
}

static void save(const struct memo *e)
{
	_cleanup_free_ char *path = memo_path();
	if (!path)
		return;
	size_t len = 0;
	vb_error ign;
	_cleanup_free_ char *text = vb_read_file(path, MEMO_ENTRIES * (MEMO_LINE + VB_SNAP_HEX) * 2,
						 &len, &ign);
	struct memo old[MEMO_ENTRIES], all[MEMO_ENTRIES];
	size_t n_old = text ? parse(text, old, MEMO_ENTRIES) : 0;
	size_t n = push(all, e, old, n_old);
	char out[MEMO_ENTRIES * (MEMO_LINE + VB_SNAP_HEX + 2)];
	size_t off = 0;
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(out + off, sizeof(out) - off, "%s %s\n", all[i].sha,
					all[i].key);
	/* best effort: without it the next process hashes again */
	vb_write_file_atomic(path, out, off, 0600);
}

int vb_snap_source_digest(const char *path, char out[VB_SNAP_HEX], vb_error *err)
{
	char before[MEMO_LINE];
	time_t changed = 0;
	if (key_of(path, before, sizeof(before), &changed) == 0) {
		pthread_mutex_lock(&lock);
		int hit = lookup(mine, MEMO_ENTRIES, before, out);
		pthread_mutex_unlock(&lock);
		if (hit)
			return 0;
		_cleanup_free_ char *mp = memo_path();
		size_t len = 0;
		vb_error ign;
		_cleanup_free_ char *text =
			mp ? vb_read_file(mp, MEMO_ENTRIES * (MEMO_LINE + VB_SNAP_HEX) * 2, &len, &ign)
			   : NULL;
		struct memo disk[MEMO_ENTRIES];
		size_t n = text ? parse(text, disk, MEMO_ENTRIES) : 0;
		if (lookup(disk, n, before, out)) {
			struct memo e = { .key = "" };
			snprintf(e.key, sizeof(e.key), "%s", before);
			memcpy(e.sha, out, VB_SNAP_HEX);
			remember(&e);
			return 0;
		}
	} else {
		before[0] = '\0';
	}
	struct vb_snap_file f;
	if (vb_snap_digest(path, &f, err) < 0)
		return -1;
	memcpy(out, f.sha256, VB_SNAP_HEX);
	char after[MEMO_LINE];
	if (!before[0] || key_of(path, after, sizeof(after), NULL) < 0 || strcmp(before, after) != 0)
		return 0; /* changed while read (or not a file we can key): not remembered */
	/* File times tick with the kernel's coarse clock: a file changed in
	 * the same tick as the one we read would keep its ctime.  Only a file
	 * left alone for a while is remembered ("racily clean", as git says). */
	if (time(NULL) - changed < MEMO_SETTLED_S)
		return 0;
	struct memo e = { .key = "" };
	snprintf(e.key, sizeof(e.key), "%s", before);
	memcpy(e.sha, out, VB_SNAP_HEX);
	remember(&e);
	save(&e);
	return 0;
}
