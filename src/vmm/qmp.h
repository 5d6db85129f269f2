/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small QMP client (QEMU's JSON monitor) over a unix socket: enough to
 * pause a VM and save it through QEMU's migration machinery, and to load
 * it back (docs/snapshots.md).  Every read is bounded (one reply line of at
 * most 64 KiB) and every wait has a deadline: QEMU is trusted code, but a
 * hung or dying QEMU must not hang voidbox.
 */
#ifndef VB_VMM_QMP_H
#define VB_VMM_QMP_H

#include "voidbox/error.h"

struct vb_qmp;

/* Connect to (path) (retrying until QEMU has created it, or (pidfd)
 * becomes readable: the VMM died), read the greeting, negotiate
 * capabilities.  NULL with (err) after (timeout_ms). */
struct vb_qmp *vb_qmp_open(const char *path, int pidfd, int timeout_ms, vb_error *err);
/* Run (cmd) with (args_json) ("{...}" or NULL) and wait up to (timeout_ms)
 * for its reply, skipping events.  On success 0, and when (ret) is not NULL
 * the "return" member as JSON text (caller frees).  An "error" reply is
 * VB_E_RUNTIME with QEMU's description. */
int vb_qmp_cmd(struct vb_qmp *q, const char *cmd, const char *args_json, int timeout_ms,
	       char **ret, vb_error *err);
/* Poll query-migrate until "completed" (0), "failed"/"cancelled" (-1 with
 * QEMU's error-desc) or (timeout_ms). */
int vb_qmp_wait_migration(struct vb_qmp *q, int timeout_ms, vb_error *err);
/* Poll query-status until the run state is (state) ("paused", "running"). */
int vb_qmp_wait_status(struct vb_qmp *q, const char *state, int timeout_ms, vb_error *err);
/* Close.  Safe with NULL. */
void vb_qmp_close(struct vb_qmp *q);

#endif
