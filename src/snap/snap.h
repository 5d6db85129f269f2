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
#define VB_SNAP_FILES 3
#define VB_SNAP_NAME_MAX 64

/* What a snapshot came from: refused at restore when any differs. */
struct vb_snap_source {
	char kernel[VB_SNAP_HEX];    /* sha256 of the kernel image */
	char initramfs[VB_SNAP_HEX]; /* sha256 of the shared initramfs */
	char config[VB_SNAP_HEX];    /* sha256 of (config_text) */
	char config_text[256];       /* "memory=1024 vcpus=1 accel=tcg devices=... qemu=..." */
};

struct vb_snap_file {
	char name[16]; /* "state", "ram", "secret" */
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
	struct vb_snap_file files[VB_SNAP_FILES];
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

/* The sources of a VM: digests of (kernel), (initramfs) and (config_text). */
int vb_snap_sources(const char *kernel, const char *initramfs, const char *config_text,
		    struct vb_snap_source *src, vb_error *err);

/* Digest the files in (staging), write the manifest, and move the directory
 * to its id.  (name) may be NULL; a name already in the store is refused
 * (VB_E_USAGE).  Fills (out). */
int vb_snap_commit(const char *staging, const char *name, const struct vb_snap_source *src,
		   int64_t save_ms, struct vb_snap *out, vb_error *err);

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
/* Remove (s)'s directory. */
int vb_snap_delete(const struct vb_snap *s, vb_error *err);

#endif
