/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sandbox.guest_image: the artifact pulled (when missing from the store),
 * its kernel and initramfs prepared once per manifest under
 * <oci>/guest/<manifest-hex>/ (src/oci/guestimg.c), the kernel checked for
 * what this VM needs, and both handed to the sandbox (cfg.kernel,
 * cfg.guest_initramfs).  docs/oci.md "Guest images from a spec".
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oci/guestimg.h"
#include "oci/oci.h"
#include "oci/root.h"
#include "run/vmconf.h"
#include "util/util.h"

/* As for sandbox.image (vb_oci_root_prepare): the store's copy when there
 * is one and the policy allows it, else a pull. */
static int pull(const char *ref, const struct vb_run_pull *p, struct vb_oci_image **img,
		vb_error *err)
{
	int policy = p ? p->policy : VB_OCI_PULL_MISSING;
	struct vb_oci_pull_opts po = { .progress = p ? p->progress : NULL,
				       .cached_only = policy != VB_OCI_PULL_ALWAYS };
	int rc = vb_oci_pull(ref, &po, img, err);
	if (rc == VB_OCI_ENOENT && policy == VB_OCI_PULL_MISSING) {
		vb_error_clear(err);
		po.cached_only = 0;
		rc = vb_oci_pull(ref, &po, img, err);
	}
	return rc;
}

static int prepare(const char *oci, const struct vb_oci_image *img, char **kernel, char **initramfs,
		   vb_error *err)
{
	const char *hex = strchr(img->manifest_digest, ':');
	hex = hex ? hex + 1 : img->manifest_digest;
	_cleanup_free_ char *dir = vb_strfmt("%s/guest/%s", oci, hex);
	_cleanup_free_ char *parent = vb_strfmt("%s/guest", oci);
	size_t n = img->n_layers;
	const char **paths = calloc(n ? n : 1, sizeof(*paths));
	const char **types = calloc(n ? n : 1, sizeof(*types));
	int rc = -1;
	if (!dir || !parent || !paths || !types) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		paths[i] = img->layers[i].path;
		types[i] = img->layers[i].media_type;
	}
	if (vb_mkdir_p(parent, 0755, err) < 0)
		goto out;
	rc = vb_guestimg_prepare((const char *const *)paths, (const char *const *)types, n, dir,
				 kernel, initramfs, err);
out:
	free(paths);
	free(types);
	return rc;
}

int vb_run_guest_image(struct vb_run_vmconf *c, const struct vb_spec_vm *vm,
		       const struct vb_run_pull *p, vb_error *err)
{
	if (!vm->guest_image)
		return 0;
	if (vm->kernel || vm->initramfs)
		return vb_error_set(err, VB_E_USAGE,
				    "sandbox.guest_image brings its own kernel and initramfs: drop "
				    "sandbox.kernel and sandbox.initramfs, or the guest image");
	struct vb_oci_image *img = NULL;
	if (pull(vm->guest_image, p, &img, err) < 0) {
		/* an image that cannot be had (404 included) is VoidBox's 125, as
		 * for docker run; only a malformed reference stays a usage error */
		if (err && err->kind != VB_E_USAGE)
			err->kind = VB_E_RUNTIME;
		vb_error_prefix(err, "sandbox.guest_image");
		return -1;
	}
	_cleanup_free_ char *oci = vb_oci_dir(err);
	/* held shared: a concurrent rmi or GC waits instead of removing the
	 * directory of a manifest it no longer sees referenced */
	int gc = oci ? vb_oci_store_lock(oci, 0, err) : -1;
	char *kernel = NULL, *initramfs = NULL;
	int rc = gc < 0 ? -1 : prepare(oci, img, &kernel, &initramfs, err);
	if (gc >= 0)
		close(gc);
	/* the kernel's drivers for what this VM uses; a root disk (sandbox.image
	 * or image skills) is checked by the callers that add one */
	unsigned need = (vm->network ? VB_GUESTIMG_NEED_NET : 0) |
			(vm->image ? VB_GUESTIMG_NEED_DISK : 0);
	if (rc == 0)
		rc = vb_guestimg_check_kernel(kernel, need, err);
	if (rc < 0) {
		/* an image that is there but cannot boot this VM cannot be had
		 * either: 125, as a container image refused as a root is */
		if (err && err->kind == VB_E_USAGE)
			err->kind = VB_E_RUNTIME;
		vb_error_prefix(err, "sandbox.guest_image %s", img->reference);
	}
	vb_oci_image_free(img);
	if (rc == 0) {
		c->cfg.kernel = vb_run_vmconf_keep(c, kernel);
		c->cfg.guest_initramfs = vb_run_vmconf_keep(c, initramfs);
		kernel = initramfs = NULL;
		if (!c->cfg.kernel || !c->cfg.guest_initramfs)
			rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	free(kernel);
	free(initramfs);
	return rc;
}
