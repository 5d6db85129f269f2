/* SPDX-License-Identifier: Apache-2.0 */
/* Internals shared by the files of src/sandbox/. */
#ifndef VB_SANDBOX_INT_H
#define VB_SANDBOX_INT_H

#include "channel/channel.h"
#include "vmm/vmm.h"
#include "voidbox/sandbox.h"

struct vb_sandbox {
	char id[32];
	char *name;
	char *rundir;
	char *ctl_path;
	struct vb_vmm *vm;
	struct vb_chan *ch;
	struct vb_chan_hello hello;
	int64_t boot_ms;
	struct vb_accel_info accel; /* how the VM's CPU runs, and why */
	char kept_log[512]; /* console log kept for the user after a failure */
};

/* Replace (err) with the best explanation of why the VM went away (kernel
 * panic line, QEMU's own message, ...), keeping its console log.  Returns -1
 * so callers can `return vb_sandbox_died(sb, err);`. */
int vb_sandbox_died(vb_sandbox *sb, vb_error *err);

/* Write (rundir)/info.json (0600) for `voidbox ps` (src/sandbox/vms.h):
 * id, name, owner pid, accel, start time.  Best effort. */
void vb_sandbox_write_info(const vb_sandbox *sb);

/* Default reply timeout for short requests. */
#define VB_CALL_TIMEOUT_MS 30000

#endif
