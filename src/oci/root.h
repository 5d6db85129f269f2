/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An OCI image as a VM's root: pulled when missing (docker's default), its
 * layers built once into a read-only root disk cached beside the store
 * (<oci>/rootfs/<manifest-hex>.ext4), and the image config's defaults.
 * The seam between src/oci and the run engine / CLI.
 */
#ifndef VB_OCI_ROOT_H
#define VB_OCI_ROOT_H

#include <stdint.h>
#include <stdio.h>

#include "voidbox/error.h"

enum vb_oci_pull_policy {
	VB_OCI_PULL_MISSING = 0, /* use the store's copy; pull only what is not there */
	VB_OCI_PULL_ALWAYS,      /* resolve the tag again at the registry */
	VB_OCI_PULL_NEVER,       /* never touch the network */
};

struct vb_oci_root_opts {
	FILE *progress; /* NULL = quiet; as vb_oci_pull and vb_rootfs_build */
	enum vb_oci_pull_policy pull;
};

struct vb_oci_root {
	char *reference;          /* normalized */
	char manifest_digest[72];
	char *disk;               /* the read-only root disk */
	uint64_t disk_size;
	int built;                /* 1: the disk was built by this call; 0: cached */
	/* the image config's defaults (may be NULL / 0) */
	char **env;               /* "K=V" */
	size_t n_env;
	char **entrypoint;
	size_t n_entrypoint;
	char **cmd;
	size_t n_cmd;
	char *working_dir, *user;
};

/* Fill (out) for (ref): 0, VB_OCI_ENOENT (-2: no such image, or not in the
 * store with VB_OCI_PULL_NEVER) or -1, with (err) naming the reference.
 * Release with vb_oci_root_clear (also after a failure). */
int vb_oci_root_prepare(const char *ref, const struct vb_oci_root_opts *o, struct vb_oci_root *out,
			vb_error *err);
void vb_oci_root_clear(struct vb_oci_root *r);

#endif
