/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An image's layers → one read-only ext4 root disk (docs/oci.md, "Root
 * disks").  Nothing is extracted on the host: the layers are merged in
 * memory (whiteouts, opaque directories, hard links), then streamed as one
 * tar into genext2fs, which writes the image with the owners and modes the
 * layers say, without root and without fakeroot.
 */
#ifndef VB_OCI_ROOTFS_H
#define VB_OCI_ROOTFS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "voidbox/error.h"

/* A layer blob file and its media type (OCI or Docker layer types). */
struct vb_rootfs_layer {
	const char *path;
	const char *media_type;
};

struct vb_rootfs_opts {
	FILE *progress;     /* NULL = quiet; plain lines (device nodes skipped, sizes) */
	uint64_t max_bytes; /* bound on the bytes the layers claim, summed; 0 = VB_ROOTFS_MAX_BYTES */
};

/* Defaults of the bounds: a layer stack claiming more is refused while its
 * headers are read, before anything is written. */
#define VB_ROOTFS_MAX_BYTES (8ULL << 30)
#define VB_ROOTFS_MAX_ENTRIES 1000000ULL

/* Apply (layers) (n of them, lowest first) and write a read-only ext4 image
 * at (out_path), atomically: a temp file beside it, renamed over it at the
 * end, so two builds of the same path do not clash (the last rename wins,
 * both images equal).  A layer with a path that leaves the root, a hard link
 * out of it or a write through a symlink is refused with a message naming
 * the layer and the entry; nothing but the temp image is written, and it is
 * removed on every error.  (o) may be NULL. */
int vb_rootfs_build(const struct vb_rootfs_layer *layers, size_t n, const char *out_path,
		    const struct vb_rootfs_opts *o, vb_error *err);

#endif
