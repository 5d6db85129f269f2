/* SPDX-License-Identifier: Apache-2.0 */
/* vb_accel_resolve(): the accelerator decision (vmm/accel.c) with this
 * library's guest image as the probe. */
#include <stdio.h>
#include <string.h>

#include "image/image.h"
#include "sandbox/sandbox_int.h"
#include "util/util.h"
#include "vmm/accel.h"

static int open_initrd(void *ctx, unsigned flags, vb_error *err)
{
	(void)ctx;
	return vb_image_initramfs_open(!(flags & VB_ACCEL_NO_WRITE), err);
}

int vb_accel_resolve(enum vb_accel want, const char *kernel, unsigned flags,
		     struct vb_accel_info *info, vb_error *err)
{
	const struct vb_vmm_ops *ops = vb_vmm_pick(VB_BACKEND_AUTO, err);
	if (!ops)
		return -1;
	/* the kernel matters only if there is a KVM to prove */
	vb_error no_kernel = { 0 };
	_cleanup_free_ char *built = kernel ? NULL : vb_image_kernel(&no_kernel);
	struct vb_accel_env env = {
		.ops = ops,
		.kernel = kernel ? kernel : built,
		.no_kernel = &no_kernel,
		.open_initrd = open_initrd,
		.flags = flags,
	};
	return vb_vmm_accel_decide(want, &env, info, err);
}

int vb_accel_notice(const struct vb_accel_info *info, char *buf, size_t len)
{
	if (!info->probed || !info->fell_back)
		return 0;
	snprintf(buf, len,
		 "voidbox: KVM cannot run the guest on this host (%s%s%s); using TCG software "
		 "emulation, slower but the same VM boundary. Checked once per host boot; choose "
		 "with --accel kvm|tcg or VOIDBOX_ACCEL.",
		 info->reason, info->log[0] ? "; log: " : "", info->log);
	return 1;
}
