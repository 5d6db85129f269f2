/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The snapshot store (docs/snapshots.md): one directory per snapshot under
 * ${XDG_CACHE_HOME}/voidbox/snapshots/<id>/, holding
 *
 *   state     QEMU's device state (the migration stream, ~100 KB)
 *   ram       the guest's RAM, sparse (only pages the guest touched)
 *   secret    the control channel's secret at save time (0600)
 *   manifest.json
 *   verified  when the files were last checked in full (vb_snap_verify)
 *   used      its mtime: when it was last restored (LRU eviction); a
 *             restore holds a shared flock on it while QEMU loads it
 *
 * A diff (taken from another snapshot, its base) stores in `ram` only the
 * 4 KiB pages of its RAM that differ from its base's (holes elsewhere),
 * and in `ram.map` a bitmap of those pages; `ram.full` is its whole RAM,
 * assembled by the first restore that needs it (a cache: checked against
 * the manifest's `full` digest, rebuilt when it does not match).
 *
 * The id is the sha256 of what the snapshot is: its files' digests, the
 * sources it came from and its config.  Files are checked against the
 * manifest before every restore; nothing here trusts a manifest's text
 * (a damaged one is an error, never a crash: fuzz_snap_manifest).
 */
#ifndef VB_SNAP_H
#define VB_SNAP_H

#include <stddef.h>
#include <stdint.h>

#include "voidbox/error.h"

#define VB_SNAP_HEX 65 /* sha256 in hex + NUL */
#define VB_SNAP_FILES 3     /* a full snapshot's files: state, ram, secret */
#define VB_SNAP_FILES_MAX 4 /* a diff's: and ram.map */
#define VB_SNAP_CHUNK (64u * 1024u) /* of a file's digest */
#define VB_SNAP_PAGE 4096u          /* of a diff: measured, docs/snapshots.md */
#define VB_SNAP_CHAIN_MAX 8 /* diffs of diffs: at most this deep */
#define VB_SNAP_NAME_MAX 64

/* What a snapshot came from: refused at restore when any differs. */
struct vb_snap_source {
	char kernel[VB_SNAP_HEX];    /* sha256 of the kernel image */
	char initramfs[VB_SNAP_HEX]; /* sha256 of the shared initramfs */
	char config[VB_SNAP_HEX];    /* sha256 of (config_text) */
	char config_text[512];       /* "memory=1024 vcpus=1 accel=tcg devices=... qemu=..." */
};

struct vb_snap_file {
	char name[16]; /* "state", "ram", "secret", "ram.map" */
	uint64_t size;
	uint64_t data; /* bytes in 64 KiB chunks that are not all zero */
	char sha256[VB_SNAP_HEX]; /* vb_snap_digest */
};

struct vb_snap {
	char id[VB_SNAP_HEX];
	char name[VB_SNAP_NAME_MAX + 1]; /* "" = none; [A-Za-z0-9._-] */
	int64_t created;                 /* Unix seconds */
	int64_t save_ms;                 /* how long the save took */
	struct vb_snap_source src;
	/* a diff: the id of its base, and the digest of its whole RAM (the
	 * base's with the diff's chunks over it); "" and zeros otherwise */
	char base[VB_SNAP_HEX];
	struct vb_snap_file full;
	int n_files; /* VB_SNAP_FILES, or VB_SNAP_FILES_MAX for a diff */
	struct vb_snap_file files[VB_SNAP_FILES_MAX];
};

/* ${XDG_CACHE_HOME}/voidbox/snapshots (created 0700).  Caller frees. */
char *vb_snap_root(vb_error *err);
/* A new, empty staging directory in the store, where a snapshot is saved
 * before vb_snap_commit() names it.  Caller frees (and removes it on
 * failure). */
char *vb_snap_staging(vb_error *err);

/* The file's digest: sha256 over its size (u64 LE), then each 64 KiB chunk
 * that is not all zeros as its index (u64 LE) and its bytes.  Only chunks
 * with data extents are read (SEEK_DATA/SEEK_HOLE): a sparse RAM file of
 * 1 GiB whose guest touched 50 MB costs 50 MB of reading, and how a copy
 * laid out its holes does not matter; any changed byte does.  Fills
 * (size) and (data) too. */
int vb_snap_digest(const char *path, struct vb_snap_file *f, vb_error *err);
/* The digest of a snapshot source (kernel, initramfs) as vb_snap_digest's,
 * remembered by the file's stat identity for this process and the next
 * ones (memo.c). */
int vb_snap_source_digest(const char *path, char out[VB_SNAP_HEX], vb_error *err);

/* The sources of a VM: digests of (kernel), (initramfs) and (config_text). */
int vb_snap_sources(const char *kernel, const char *initramfs, const char *config_text,
		    struct vb_snap_source *src, vb_error *err);

/* Digest the files in (staging), write the manifest, and move the directory
 * to its id.  (name) may be NULL; a name already in the store is refused
 * (VB_E_USAGE).  With (base) (a full id), staging's `ram` is the whole RAM
 * of a VM restored from it: only the chunks that differ from the base's
 * are kept (a diff).  Then the store is held to its bound
 * (vb_snap_evict), the new snapshot kept.  Fills (out). */
int vb_snap_commit(const char *staging, const char *name, const struct vb_snap_source *src,
		   int64_t save_ms, const char *base, struct vb_snap *out, vb_error *err);

/* Parse a manifest (untrusted bytes: bounded, every field checked).
 * VB_E_RUNTIME naming what is wrong. */
int vb_snap_parse(const char *json, size_t len, struct vb_snap *out, vb_error *err);
/* The manifest of (s) as JSON (caller frees), as vb_snap_parse reads it. */
char *vb_snap_format(const struct vb_snap *s);
/* The id (s) must have: sha256 over its fields. */
void vb_snap_compute_id(const struct vb_snap *s, char id[VB_SNAP_HEX]);

/* Find (ref): a name, a full id or a unique id prefix (at least 4 hex
 * digits).  VB_E_NOTFOUND if none.  Fills (out) and (dir) (caller frees). */
int vb_snap_open(const char *ref, struct vb_snap *out, char **dir, vb_error *err);
/* Check every file of (s) in (dir) against the manifest: sizes and
 * digests.  VB_E_RUNTIME "snapshot ID is damaged: ..." if not.  A full
 * check leaves a stamp (dir/verified: each file's device, inode, size,
 * mtime and ctime); while the files still match it, later checks skip the
 * digests (a write through the file system moves the ctime, a copy the
 * inode), unless (flags) has VB_SNAP_VERIFY_FULL. */
#define VB_SNAP_VERIFY_FULL 1u
int vb_snap_verify(const struct vb_snap *s, const char *dir, unsigned flags, vb_error *err);
/* (now) against what (s) came from: VB_E_USAGE naming what differs. */
int vb_snap_check_sources(const struct vb_snap *s, const struct vb_snap_source *now,
			  vb_error *err);
/* Every snapshot in the store, newest first (damaged ones skipped).
 * Caller frees (*out). */
int vb_snap_list(struct vb_snap **out, size_t *n, vb_error *err);
/* Remove (s)'s directory.  Refused (VB_E_USAGE, naming them) while diffs
 * in the store have (s) as their base. */
int vb_snap_delete(const struct vb_snap *s, vb_error *err);
/* Out of the way of a replacement (a damaged warm snapshot): deleted, or,
 * when diffs depend on it, kept without its name (its diffs are then
 * refused with its damage, not as missing). */
int vb_snap_retire(const struct vb_snap *s, vb_error *err);

/* ---- diffs (diff.c) ---------------------------------------------------- */

/* The whole RAM file of (s) in (dir), for a restore to map: its `ram`, or
 * for a diff its `ram.full`, assembled from its base's whole RAM (checked,
 * recursively) and its chunks the first time.  A base that is missing,
 * damaged or of other sources makes it VB_E_RUNTIME naming the base.
 * Caller frees. */
char *vb_snap_ram(const struct vb_snap *s, const char *dir, vb_error *err);
/* Copy (from) to a new file (to), 0600, holes kept as holes. */
int vb_snap_copy_sparse(const char *from, const char *to, vb_error *err);
/* Turn (ram), the whole RAM of a VM restored from a snapshot whose whole
 * RAM is (base_ram), into a diff: (ram) keeps only the pages
 * (VB_SNAP_PAGE) that differ, (map) gets their bitmap.  (*changed) counts
 * them. */
int vb_snap_make_diff(const char *ram, const char *base_ram, const char *map, uint64_t *changed,
		      vb_error *err);

/* ---- use and eviction (evict.c) ---------------------------------------- */

/* Mark (s) in (dir) used now (its `used` file), and hold a shared lock on
 * it that eviction respects: returns the descriptor to close when QEMU has
 * loaded the snapshot, or -1 (best effort: not an error). */
int vb_snap_use(const char *dir);
/* When (s) was last used (restored or made): Unix seconds. */
int64_t vb_snap_last_used(const struct vb_snap *s, const char *dir);
/* Bytes on disk of (dir) (its blocks, the cache included). */
uint64_t vb_snap_disk_bytes(const char *dir);
/* $VOIDBOX_SNAPSHOT_MAX_BYTES: bytes, or with K, M or G; 0 = no bound;
 * default 10G. */
uint64_t vb_snap_max_bytes(void);
/* While the store is over (max_bytes) (0: never): delete the assembled RAM
 * of diffs (a cache), least recently used first, then the least recently
 * used snapshots: never (keep), never a base before its diffs, never one
 * a restore holds (vb_snap_use).  (*evicted) counts the snapshots. */
int vb_snap_evict(uint64_t max_bytes, const char *keep, size_t *evicted, vb_error *err);
/* The diffs in the store whose base is (id); caller frees (*out). */
int vb_snap_dependents(const char *id, struct vb_snap **out, size_t *n, vb_error *err);

#endif
