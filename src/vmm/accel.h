/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The accelerator decision: one place that says whether a VM runs under KVM
 * or TCG.  A /dev/kvm that opens is not trusted: on some hosts (nested
 * clouds offering KVM through PVM, broken modules) QEMU aborts or hangs
 * under it.  `auto` boots a probe VM under KVM once per host boot, QEMU
 * binary and kernel, and caches the verdict in the user's cache directory.
 */
#ifndef VB_VMM_ACCEL_H
#define VB_VMM_ACCEL_H

#include "vmm/vmm.h"
#include "voidbox/sandbox.h"

/* What a probe boot needs. */
struct vb_accel_env {
	const struct vb_vmm_ops *ops;
	const char *kernel; /* the guest kernel the verdict is about; NULL: */
	const vb_error *no_kernel; /* why there is none (needed only to probe) */
	/* A readable fd of an initramfs whose /init is the VoidBox agent
	 * (given no boot data, it says so on the console and powers off).
	 * Called only when a probe runs. */
	int (*open_initrd)(void *ctx, unsigned flags, vb_error *err);
	void *ctx;
	unsigned flags; /* VB_ACCEL_NO_WRITE */
};

/* Decide for (want) (AUTO first takes $VOIDBOX_ACCEL).  Fills (info);
 * -1 with (err) when (want) cannot be honoured.  Thread- and process-safe:
 * concurrent first boots wait for one probe. */
int vb_vmm_accel_decide(enum vb_accel want, const struct vb_accel_env *env,
			struct vb_accel_info *info, vb_error *err);

/* The device that stands for KVM: $VOIDBOX_KVM_DEVICE (for tests) or
 * /dev/kvm. */
const char *vb_vmm_kvm_device(void);

#endif
