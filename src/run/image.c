/* SPDX-License-Identifier: Apache-2.0 */
/* An OCI image as a VM's root, for the run engine and the CLI. */
#include "run/image.h"

#include <stdlib.h>
#include <string.h>

#include "run/engine.h"
#include "util/util.h"

int vb_run_image_pull_parse(const char *s, int *out)
{
	static const char *const names[] = { "missing", "always", "never" };
	for (int i = 0; i < 3; i++)
		if (s && !strcmp(s, names[i])) {
			*out = i; /* the order of enum vb_oci_pull_policy */
			return 0;
		}
	return -1;
}

int vb_run_image_prepare(const char *ref, int pull, FILE *progress, struct vb_run_image *im,
			 struct vb_sandbox_config *cfg, vb_error *err)
{
	memset(im, 0, sizeof(*im));
	struct vb_oci_root_opts o = { .progress = progress, .pull = (enum vb_oci_pull_policy)pull };
	int rc = vb_oci_root_prepare(ref, &o, &im->root, err);
	if (rc < 0) {
		/* A missing image is not a missing program: keep it off 127. */
		if (err && err->kind != VB_E_USAGE)
			err->kind = VB_E_RUNTIME;
		return -1;
	}
	if (im->root.n_env && !(im->env = calloc(im->root.n_env, sizeof(*im->env))))
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	for (size_t i = 0; i < im->root.n_env; i++)
		im->env[i] = im->root.env[i];
	cfg->rootfs = im->root.disk;
	cfg->root_ref = im->root.reference; /* what a snapshot of it records */
	cfg->root_env = im->env;
	cfg->n_root_env = im->root.n_env;
	/* OCI says WorkingDir is absolute; anything else is left to /workspace */
	cfg->root_workdir = im->root.working_dir && im->root.working_dir[0] == '/'
				    ? im->root.working_dir
				    : NULL;
	cfg->root_user = im->root.user && im->root.user[0] ? im->root.user : NULL;
	return 0;
}

void vb_run_image_free(struct vb_run_image *im)
{
	if (!im)
		return;
	free(im->env);
	vb_oci_root_clear(&im->root);
	memset(im, 0, sizeof(*im));
}

int vb_run_pull_policy(struct vb_run *r, const char *ref)
{
	if (r->opts.pull != VB_OCI_PULL_ALWAYS || !ref)
		return r->opts.pull;
	for (size_t i = 0; i < r->n_pulled; i++)
		if (!strcmp(r->pulled[i], ref))
			return VB_OCI_PULL_NEVER; /* the store has what was just resolved */
	char **v = realloc(r->pulled, (r->n_pulled + 1) * sizeof(*v));
	if (v) {
		r->pulled = v;
		if ((v[r->n_pulled] = strdup(ref)))
			r->n_pulled++;
	}
	return VB_OCI_PULL_ALWAYS;
}

int vb_run_vm_image(struct vb_run *r, size_t i, const char *ref, vb_error *err)
{
	if (!r->images && !(r->images = calloc(r->n_vmc, sizeof(*r->images))))
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	int rc = vb_run_image_prepare(ref, vb_run_pull_policy(r, ref), r->opts.notices,
				      &r->images[i], &r->vmc[i].cfg, err);
	if (r->opts.notices)
		fflush(r->opts.notices);
	if (rc < 0)
		vb_error_prefix(err, "sandbox.image");
	return rc;
}

void vb_run_unit_image(struct vb_run *r, struct vb_run_unit *u, size_t i)
{
	const struct vb_run_image *im = r->images ? &r->images[i] : NULL;
	if (!im || !im->root.reference)
		return;
	free(u->image);
	free(u->image_digest);
	u->image = strdup(im->root.reference);
	u->image_digest = strdup(im->root.manifest_digest);
}
