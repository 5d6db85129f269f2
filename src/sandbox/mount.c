/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The mounts of a VM restored from a snapshot (docs/snapshots.md,
 * "Mounts"): its 9p devices already point at the host directories (the
 * restore's QEMU command line); the agent mounts them on request (MOUNT),
 * after the re-key and before anything runs.
 */
#include <stdio.h>
#include <stdlib.h>

#include "sandbox/sandbox_int.h"
#include "util/util.h"

int vb_sandbox_mount_slots(vb_sandbox *sb, const struct vb_sandbox_config *cfg, vb_error *err)
{
	if (!cfg->n_mounts)
		return 0;
	if (vb_sandbox_snap_mounts_check(cfg, err) < 0)
		return -1;
	if (cfg->n_mounts > VB_MOUNT_REQ_MAX)
		return vb_error_set(err, VB_E_USAGE, "at most %u mounts on a VM restored from a snapshot",
				    VB_MOUNT_REQ_MAX);
	struct vb_mount_req *r = calloc(1, sizeof(*r));
	if (!r)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	for (size_t i = 0; i < cfg->n_mounts; i++) {
		snprintf(r->m[i].tag, sizeof(r->m[i].tag), "vbm%u", (unsigned)(i & 7u));
		if (snprintf(r->m[i].path, sizeof(r->m[i].path), "%s", cfg->mounts[i].guest) >=
		    (int)sizeof(r->m[i].path)) {
			free(r);
			return vb_error_set(err, VB_E_USAGE, "mount target too long");
		}
		r->m[i].ro = !cfg->mounts[i].rw;
	}
	r->n = cfg->n_mounts;
	struct vb_buf req = { 0 };
	int rc = vb_mount_encode(&req, 0, r);
	free(r);
	if (rc < 0) {
		vb_buf_free(&req);
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	if (vb_sandbox_ask(sb, &req, "cannot mount the VM's directories", err) < 0)
		return -1;
	sb->n_slot_mounts = cfg->n_mounts; /* a save unmounts them (snapsetup.c) */
	return 0;
}
