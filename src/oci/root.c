/* SPDX-License-Identifier: Apache-2.0 */
/* An OCI image as a VM's root: pull + root disk + config defaults. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oci/oci.h"
#include "oci/root.h"
#include "oci/rootfs.h"
#include "util/util.h"

/* The disk is derived from the manifest alone, so a cached one is reused
 * for every reference naming that manifest.  The store's GC lock is held
 * shared meanwhile: a concurrent `rmi` or GC then waits instead of
 * deleting the disk of a manifest it no longer sees referenced. */
static int root_disk(const char *oci, const struct vb_oci_image *img, FILE *progress,
		     struct vb_oci_root *out, vb_error *err)
{
	const char *hex = strchr(img->manifest_digest, ':');
	hex = hex ? hex + 1 : img->manifest_digest;
	out->disk = vb_strfmt("%s/rootfs/%s.ext4", oci, hex);
	if (!out->disk)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	struct stat st;
	if (stat(out->disk, &st) == 0 && S_ISREG(st.st_mode)) {
		out->disk_size = (uint64_t)st.st_size;
		return 0;
	}
	struct vb_rootfs_layer *l = calloc(img->n_layers ? img->n_layers : 1, sizeof(*l));
	if (!l)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	for (size_t i = 0; i < img->n_layers; i++)
		l[i] = (struct vb_rootfs_layer){ img->layers[i].path, img->layers[i].media_type };
	if (progress)
		fprintf(progress, "voidbox: building the root disk of %s (%zu layer%s)\n", img->reference,
			img->n_layers, img->n_layers == 1 ? "" : "s");
	struct vb_rootfs_opts ro = { .progress = progress };
	int rc = vb_rootfs_build(l, img->n_layers, out->disk, &ro, err);
	free(l);
	if (rc < 0) {
		vb_error_prefix(err, "%s", img->reference);
		return -1;
	}
	if (stat(out->disk, &st) == 0)
		out->disk_size = (uint64_t)st.st_size;
	out->built = 1;
	return 0;
}

/* Move the config's defaults from (img) to (out). */
static void take_config(struct vb_oci_image *img, struct vb_oci_root *out)
{
#define TAKE(f) do { out->f = img->f; img->f = NULL; } while (0)
	TAKE(env);
	TAKE(entrypoint);
	TAKE(cmd);
	TAKE(working_dir);
	TAKE(user);
#undef TAKE
	out->n_env = img->n_env;
	out->n_entrypoint = img->n_entrypoint;
	out->n_cmd = img->n_cmd;
	img->n_env = img->n_entrypoint = img->n_cmd = 0;
}

int vb_oci_root_prepare(const char *ref, const struct vb_oci_root_opts *o, struct vb_oci_root *out,
			vb_error *err)
{
	memset(out, 0, sizeof(*out));
	enum vb_oci_pull_policy policy = o ? o->pull : VB_OCI_PULL_MISSING;
	struct vb_oci_pull_opts po = { .progress = o ? o->progress : NULL };
	struct vb_oci_image *img = NULL;
	int rc;
	if (policy == VB_OCI_PULL_ALWAYS) {
		rc = vb_oci_pull(ref, &po, &img, err);
	} else {
		po.cached_only = 1;
		rc = vb_oci_pull(ref, &po, &img, err);
		if (rc == VB_OCI_ENOENT && policy == VB_OCI_PULL_MISSING) {
			vb_error_clear(err);
			po.cached_only = 0;
			rc = vb_oci_pull(ref, &po, &img, err);
		}
	}
	if (rc < 0)
		return rc;
	if (img->artifact_type) {
		/* a guest image or another artifact: its layers are not a root */
		vb_error_set(err, VB_E_RUNTIME,
			     "%s is not a container image (its type is %.100s), it cannot be a root "
			     "filesystem",
			     img->reference, img->artifact_type);
		vb_oci_image_free(img);
		return -1;
	}
	_cleanup_free_ char *oci = vb_oci_dir(err);
	int gc = oci ? vb_oci_store_lock(oci, 0, err) : -1;
	if (gc < 0) {
		vb_oci_image_free(img);
		return -1;
	}
	out->reference = strdup(img->reference);
	memcpy(out->manifest_digest, img->manifest_digest, sizeof(out->manifest_digest));
	rc = out->reference ? root_disk(oci, img, po.progress, out, err)
			    : vb_error_set(err, VB_E_RUNTIME, "out of memory");
	close(gc);
	if (rc == 0)
		take_config(img, out);
	vb_oci_image_free(img);
	return rc < 0 ? -1 : 0;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

void vb_oci_root_clear(struct vb_oci_root *r)
{
	if (!r)
		return;
	free(r->reference);
	free(r->disk);
	free_strv(r->env, r->n_env);
	free_strv(r->entrypoint, r->n_entrypoint);
	free_strv(r->cmd, r->n_cmd);
	free(r->working_dir);
	free(r->user);
	memset(r, 0, sizeof(*r));
}
