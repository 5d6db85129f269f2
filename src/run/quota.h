/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The quota on a pipeline box's named outputs.  The outputs are host
 * directories the guest writes through 9p, so the host does the
 * accounting: QEMU caps the write rate of those mounts
 * (VB_QUOTA_WRITE_MIB_S), a watcher thread measures the directories while
 * the box runs and kills the VM the moment they hold more than the quota,
 * and a last measurement with the VM frozen decides the box's fate.  What
 * a writer can add past the quota is therefore bounded by the rate times
 * the watcher's reaction time (docs/run.md has the numbers).
 */
#ifndef VB_RUN_QUOTA_H
#define VB_RUN_QUOTA_H

#include <stddef.h>
#include <stdint.h>

#include "voidbox/sandbox.h"

struct vb_run;
struct vb_run_unit;

/* The write rate QEMU allows into a named output, in MiB/s. */
#define VB_QUOTA_WRITE_MIB_S 64u
/* A box's named outputs hold at most this much unless limits.outputs_mb. */
#define VB_QUOTA_DEFAULT_MB 1024u
/* More entries or deeper nesting than this is over the quota too: it
 * keeps every measurement short, hence the reaction time. */
#define VB_QUOTA_MAX_ENTRIES 100000u
#define VB_QUOTA_MAX_DEPTH 64

struct vb_quota_use {
	uint64_t bytes;   /* every entry's size or disk use, whichever is larger */
	uint64_t entries; /* files, directories, links, ... */
	int too_deep;     /* a directory deeper than VB_QUOTA_MAX_DEPTH */
	size_t biggest;   /* index of the directory that holds the most */
	uint64_t biggest_bytes;
};

/* Measure (dirs) without following symlinks.  A missing directory counts
 * as empty.  Stops counting past VB_QUOTA_MAX_ENTRIES. */
void vb_quota_measure(const char *const *dirs, size_t n, struct vb_quota_use *use);

/* True when (use) is over (limit) bytes, or over the entry or depth caps. */
int vb_quota_over(const struct vb_quota_use *use, uint64_t limit);

typedef struct vb_quota vb_quota;

/* Start watching box (bi)'s named outputs while it runs in (sb).  *out is
 * NULL when the box has none.  The watcher kills the VM when over. */
int vb_quota_start(struct vb_run *r, size_t bi, vb_sandbox *sb, vb_quota **out, vb_error *err);

/* When the box's outputs went over the quota: fail (u) with a message
 * naming the output and the quota and return 1; else 0.  (final): nothing
 * more is asked of the VM (its program exited, or it is gone), so stop the
 * watcher, freeze the VM and measure once more: nothing it does afterwards
 * reaches the host.  Without (final), only what the watcher saw.  (q)
 * NULL: 0. */
int vb_quota_fail_unit(vb_quota *q, struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb,
		       int final);

/* Stop the watcher and freeze the VM (which vb_sandbox_free() then
 * ends); call before vb_sandbox_free().  NULL is a no-op. */
void vb_quota_free(vb_quota *q);

#endif
