/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest image: a kernel built from Debian's linux-source (by
 * guest/kernel/build.sh, cached per config hash) and an initramfs holding the
 * static guest agent as /init plus busybox.  Each VM's initramfs is that
 * shared archive followed by a tiny per-VM cpio segment with the boot data.
 */
#ifndef VB_IMAGE_H
#define VB_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "vb_proto.h"
#include "voidbox/error.h"

/* Where agent VMs mount what claude-code and codex need beside their own
 * binaries (src/agentbin): the initramfs has /lib/ld-musl-x86_64.so.1 and
 * /bin/bash as links into it. */
#define VB_IMAGE_AGENT_SUPPORT "/opt/voidbox/support"

/* The guest kernel: $VOIDBOX_KERNEL, else the cached build.  Fails with a
 * "run `voidbox image build`" hint if it is not built. */
char *vb_image_kernel(vb_error *err);

/* The shared initramfs: $VOIDBOX_INITRAMFS, else the cache entry for this
 * agent + busybox, built on first use (a few milliseconds). */
char *vb_image_initramfs(vb_error *err);

/* A readable fd of the shared initramfs (as above); when it is not cached
 * and (may_write) is 0, it is built in memory and nothing is written. */
int vb_image_initramfs_open(int may_write, vb_error *err);
/* True if the shared initramfs is already there (nothing is built). */
int vb_image_initramfs_cached(void);

/* Build the kernel (runs guest/kernel/build.sh, ~20 min on 2 cores the
 * first time, progress on stderr) and the initramfs. */
int vb_image_build(int force, vb_error *err);

/* Append to (out) the per-VM segment: a cpio archive with VB_BOOT_PATH
 * holding the encoded (boot) frame. */
int vb_image_boot_segment(struct vb_buf *out, const struct vb_boot *boot, vb_error *err);

/* A copy of (shared) followed by the boot segment, in a memfd
 * (the secret never touches a disk).  Returns the fd (O_CLOEXEC) or -1. */
int vb_image_make_initrd(const char *shared, const struct vb_boot *boot, vb_error *err);
/* The same with the archive (first) before (shared), padded with zeros to
 * 4 bytes: a guest image's own initramfs (any compression its kernel
 * unpacks), then VoidBox's, whose entries (the agent as /init, busybox in
 * /bin) replace the first one's at the same paths when the kernel unpacks
 * them in order.  (first) NULL is vb_image_make_initrd(). */
int vb_image_make_initrd_over(const char *first, const char *shared, const struct vb_boot *boot,
			      vb_error *err);

/* ---- cpio "newc" writer ------------------------------------------------ */

int vb_cpio_dir(struct vb_buf *out, const char *name, unsigned mode);
int vb_cpio_file(struct vb_buf *out, const char *name, unsigned mode, const void *data,
		 size_t len);
int vb_cpio_symlink(struct vb_buf *out, const char *name, const char *target);
int vb_cpio_chardev(struct vb_buf *out, const char *name, unsigned mode, unsigned major,
		    unsigned minor);
int vb_cpio_trailer(struct vb_buf *out);

/* The embedded agent (src/image/agent_blob.S). */
const uint8_t *vb_agent_bytes(size_t *len);

#endif
