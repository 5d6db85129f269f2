/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The layer applier behind vb_rootfs_build (src/oci/unpack.c): OCI layers
 * applied in order to an in-memory tree, never to the host's filesystem.
 * The tree keeps, per path, the metadata of the entry that won and where
 * its bytes are (layer number, entry number), so that the merged root can
 * be streamed out by reading the layers a second time (src/oci/rootfs.c).
 *
 * Refused, with "layer N (LABEL): entry 'NAME': why": absolute names and
 * '..' components, hard links to paths outside the tree or to a directory,
 * entries whose parent is a symlink (a write through it)
 * or a file, and stacks claiming more bytes or entries than the bounds.
 * Kept: files, directories, symlinks (any target: nothing follows them on
 * the host), hard links.  Skipped with a notice: device nodes, FIFOs,
 * sockets.  Whiteouts (".wh.NAME", an overlayfs 0:0 character device) and
 * opaque markers (".wh..wh..opq") hide what the lower layers put there.
 */
#ifndef VB_OCI_UNPACK_H
#define VB_OCI_UNPACK_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "oci/rootfs.h"

struct archive;
struct vb_rootfs_tree;

/* A reader for (l)'s blob with the decompression its media type names;
 * an unknown media type is an error naming it. */
struct archive *vb_rootfs_layer_open(const struct vb_rootfs_layer *l, vb_error *err);
/* The same over a buffer (tests, the fuzzer); (media_type) NULL = plain tar. */
struct archive *vb_rootfs_layer_open_memory(const void *buf, size_t len, const char *media_type,
					    vb_error *err);

/* An empty tree (the root: a directory 0755 0:0).  0 bounds = defaults. */
struct vb_rootfs_tree *vb_rootfs_tree_new(uint64_t max_bytes, uint64_t max_entries);
void vb_rootfs_tree_free(struct vb_rootfs_tree *t);

/* Apply the layer read from (a), numbered (layer) (0 for the lowest, in
 * order); (label) names it in errors; notices go to (progress) (may be
 * NULL).  On error the tree is unusable except for free. */
int vb_rootfs_tree_apply(struct vb_rootfs_tree *t, struct archive *a, unsigned layer,
			 const char *label, FILE *progress, vb_error *err);

/* What the tree holds at (path) ("a/b", no leading '/'; "" = the root). */
struct vb_rootfs_stat {
	mode_t mode;	       /* type and permission bits */
	uid_t uid;
	gid_t gid;
	uint64_t size;	       /* regular files */
	const char *link;      /* symlink target, else NULL */
	const void *ino;       /* equal for hard links to one file */
	unsigned layer, entry; /* where a regular file's bytes are */
};
int vb_rootfs_tree_stat(const struct vb_rootfs_tree *t, const char *path, struct vb_rootfs_stat *st);

/* Totals, for sizing the image. */
struct vb_rootfs_totals {
	uint64_t inodes;     /* files (a hard-linked one once), directories, symlinks */
	uint64_t blocks;     /* 4 KiB blocks the data, directories, long symlinks and
			      * indirect blocks need */
	uint64_t bytes;      /* regular files' bytes */
};
void vb_rootfs_tree_totals(struct vb_rootfs_tree *t, struct vb_rootfs_totals *tot);

/* Write the merged tree as one tar to (out) (an archive opened for writing):
 * the directories, parents first; then every regular file, its bytes read
 * again from the layers (layers[i] is layer i) in their order; then
 * symlinks and the extra names of hard links. */
int vb_rootfs_tree_emit(struct vb_rootfs_tree *t, const struct vb_rootfs_layer *layers, size_t n,
			struct archive *out, vb_error *err);

#endif
