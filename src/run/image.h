/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sandbox.image and `exec/shell --image`: an OCI image made ready as a
 * VM's root (src/oci/root.h) and put into a sandbox config.  A run has
 * every image ready before any VM boots (vb_run_vm_image, engine.h), so
 * that one that cannot be had fails the run before anything ran.
 */
#ifndef VB_RUN_IMAGE_H
#define VB_RUN_IMAGE_H

#include <stdio.h>

#include "oci/root.h"
#include "voidbox/sandbox.h"

struct vb_run_image {
	struct vb_oci_root root;
	const char **env; /* root.env as a const array for the config */
};

/* "missing", "always", "never" to (*out) (an enum vb_oci_pull_policy);
 * -1 for anything else. */
int vb_run_image_pull_parse(const char *s, int *out);

/* Pull (ref) if the policy says so (progress lines on (progress), may be
 * NULL), build or find its root disk, and point (cfg)'s rootfs and root_*
 * defaults at (im) (which must outlive the VM's start; release with
 * vb_run_image_free, also after a failure).  Errors name the reference
 * and, for the registry, the URL and HTTP status; kind VB_E_USAGE for a
 * malformed reference, VB_E_RUNTIME for everything else (a missing image
 * too: the CLI's 125, never "program not found"). */
int vb_run_image_prepare(const char *ref, int pull, FILE *progress, struct vb_run_image *im,
			 struct vb_sandbox_config *cfg, vb_error *err);
void vb_run_image_free(struct vb_run_image *im);

#endif
