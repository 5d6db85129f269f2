/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest images (`sandbox.guest_image`): an OCI artifact whose layer(s) carry
 * a Linux kernel and an initramfs, void-box's layout (a `FROM scratch` image
 * with /vmlinuz and /rootfs.cpio.gz).  VoidBox boots that kernel with the
 * image's initramfs first and its own agent archive after it, so the agent is
 * PID 1 (vb_sandbox_config.guest_initramfs).  docs/oci.md "Guest images".
 */
#ifndef VB_OCI_GUESTIMG_H
#define VB_OCI_GUESTIMG_H

#include <stddef.h>

#include "voidbox/error.h"

/* Bounds: a kernel file, an initramfs file, and all the tar data read from
 * a guest image's layers (skipped entries count too). */
#define VB_GUESTIMG_MAX_KERNEL (128ull << 20)
#define VB_GUESTIMG_MAX_INITRAMFS (1ull << 30)
#define VB_GUESTIMG_MAX_LAYER_DATA (4ull << 30)

/* From a guest-image artifact's layer blobs (paths[i] with media_types[i],
 * in application order; tar, tar+gzip or tar+zstd, OCI or Docker types; a
 * NULL media type means "detect"), the kernel and the initramfs, extracted
 * into (cache_dir) (created; meant to be keyed by the manifest digest) as
 * cache_dir/vmlinuz and cache_dir/initramfs.  Only regular files at a
 * layer's root are taken: the kernel from `vmlinuz` (else `vmlinux`, else
 * `bzImage`), the initramfs from `rootfs.cpio.gz` (else `initramfs.cpio.gz`,
 * `rootfs.cpio`, `initramfs.cpio`); a later layer replaces an earlier one's
 * file, a root whiteout (`.wh.vmlinuz`) removes it.  Nothing else of the
 * layers is written anywhere.  The kernel is checked with
 * vb_guestimg_check_kernel(path, 0) and the initramfs must read as a "newc"
 * cpio archive before anything lands in (cache_dir); an initramfs in a
 * compression the kernel is not known to unpack is cached decompressed
 * (docs/oci.md says how that is known); the files are renamed into
 * place and a marker written last, so a cache dir with the marker is reused
 * without reading the layers again.  (*kernel) and (*initramfs) are
 * malloc'd paths the caller frees.  VB_E_USAGE when the image is not a
 * usable guest image (a file missing, a kernel lacking drivers, ...),
 * naming what is wrong; VB_E_RUNTIME for I/O failures. */
int vb_guestimg_prepare(const char *const *layer_paths, const char *const *media_types, size_t n,
			const char *cache_dir, char **kernel, char **initramfs, vb_error *err);

/* What a VM may need beyond the core set (virtio-mmio with command-line
 * devices, the virtio console that carries the control channel, 9p over
 * virtio, initramfs support, a 64-bit x86 kernel QEMU's microvm loads). */
#define VB_GUESTIMG_NEED_NET 1u  /* virtio-net */
#define VB_GUESTIMG_NEED_DISK 2u /* virtio-blk, ext4, overlayfs (a root disk) */

/* Check that the kernel at (path) is one QEMU's microvm boots with -kernel
 * (an x86-64 bzImage, or an ELF vmlinux with a PVH entry note) and has
 * built in (the agent loads no modules) what VoidBox needs, plus what (need)
 * adds.  An embedded config (CONFIG_IKCONFIG) is read when present; else
 * the (decompressed) image is searched for strings each driver carries, a
 * heuristic.  Fails with VB_E_USAGE naming every missing piece. */
int vb_guestimg_check_kernel(const char *path, unsigned need, vb_error *err);

#endif
