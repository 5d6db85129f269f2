/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Warm by default (docs/snapshots.md, "Warm by default"): a VM of the
 * default image starts from a pristine post-boot snapshot of its kernel,
 * initramfs and configuration when there is one, and falls back to a cold
 * boot when it cannot be restored.  The snapshot itself is made by
 * `voidbox snapshot warm` (the CLI runs it in the background after a cold
 * exec found none).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "sandbox/sandbox_int.h"
#include "snap/snap.h"
#include "util/util.h"

int vb_sandbox_warm_eligible(const struct vb_sandbox_config *cfg)
{
	/* what a restore cannot give: boot data other than the mounts, the
	 * forwards and the network (the snapshot's was read at its boot;
	 * those are set up after the re-key), another kernel.  An image root
	 * is the snapshot's own when the files match (snapimage.c); skill
	 * disks too, but the warm maker (`snapshot warm`) can only make a VM
	 * with an image root, so a VM with disks boots cold. */
	return !cfg->save_dir && !cfg->guest_initramfs && !cfg->allow && !cfg->rlimit_nofile &&
	       !cfg->rlimit_nproc && !cfg->rlimit_fsize && !cfg->n_disk_mounts &&
	       cfg->n_mounts <= vb_sandbox_snap_slots(cfg);
}

/* (ai) gets the accelerator decision, which may have just been made by a
 * probe VM: the caller must tell the user about it (vb_accel_notice). */
static int warm_name(const struct vb_sandbox_config *cfg, char *name, size_t len,
		     struct vb_accel_info *ai, vb_error *err)
{
	const struct vb_vmm_ops *ops = vb_vmm_pick(cfg->backend, err);
	if (!ops)
		return -1;
	if (!ops->restore)
		return vb_error_set(err, VB_E_USAGE, "the %s backend has no snapshots", ops->name);
	_cleanup_free_ char *kernel = cfg->kernel ? strdup(cfg->kernel) : vb_image_kernel(err);
	_cleanup_free_ char *initramfs =
		!kernel ? NULL : cfg->initramfs ? strdup(cfg->initramfs) : vb_image_initramfs(err);
	if (!initramfs)
		return -1;
	char conf[VB_SNAP_CONF_MAX];
	struct vb_snap_source src;
	if (vb_accel_resolve(cfg->accel, kernel, 0, ai, err) < 0 ||
	    vb_sandbox_snap_config(cfg, ai->accel, ops, NULL, conf, sizeof(conf), err) < 0 ||
	    vb_snap_sources(kernel, initramfs, conf, &src, err) < 0)
		return -1;
	/* one name per kernel + initramfs + configuration: a new build or
	 * another --memory is another warm snapshot, never a refused one */
	if (snprintf(name, len, "%s%.6s%.6s%.6s", VB_WARM_PREFIX, src.kernel, src.initramfs,
		     src.config) >= (int)len)
		return vb_error_set(err, VB_E_RUNTIME, "name buffer too small");
	return 0;
}

int vb_sandbox_warm_name(const struct vb_sandbox_config *cfg, char *name, size_t len,
			 vb_error *err)
{
	struct vb_accel_info ai;
	return warm_name(cfg, name, len, &ai, err);
}

/* When naming the warm snapshot ran the accelerator probe, the sandbox
 * says so as if its own start had (its own resolve then found the verdict
 * cached), so that the user hears about a KVM that cannot run the guest. */
static vb_sandbox *with_probe(vb_sandbox *sb, const struct vb_accel_info *ai)
{
	if (sb && ai->probed && !strcmp(ai->accel, sb->accel.accel))
		sb->accel = *ai;
	return sb;
}

static vb_sandbox *start_warm(const struct vb_sandbox_config *cfg, struct vb_warm *w,
			      struct vb_accel_info *ai, vb_error *err)
{
	memset(w, 0, sizeof(*w));
	if (!vb_sandbox_warm_eligible(cfg))
		return vb_sandbox_start(cfg, err);
	vb_error e = { 0 };
	if (warm_name(cfg, w->name, sizeof(w->name), ai, &e) < 0) {
		/* nothing to restore from; the cold boot says what is wrong */
		w->name[0] = '\0';
		vb_error_clear(&e);
		return vb_sandbox_start(cfg, err);
	}
	struct vb_snap snap;
	_cleanup_free_ char *dir = NULL;
	if (vb_snap_open(w->name, &snap, &dir, &e) < 0) {
		/* not there, or not readable: either way the maker tries */
		w->missing = 1;
		if (e.kind != VB_E_NOTFOUND)
			snprintf(w->notice, sizeof(w->notice), "warm snapshot %s: %s; booted cold",
				 w->name, e.msg);
		vb_error_clear(&e);
		return vb_sandbox_start(cfg, err);
	}
	int mount_failed = 0;
	vb_sandbox *sb = vb_sandbox_restore_ex(cfg, w->name, &mount_failed, &e);
	if (sb) {
		w->restored = 1;
		return sb;
	}
	if (e.kind == VB_E_CANCELLED) {
		if (err)
			*err = e;
		return NULL;
	}
	if (mount_failed) {
		/* the snapshot is fine; the cold boot reports the mount's error
		 * as it always did */
		vb_error_clear(&e);
		return vb_sandbox_start(cfg, err);
	}
	/* Whatever broke it (a damaged file, QEMU refusing the state), the
	 * next exec should not meet it again: it goes (or, a base of diffs,
	 * loses its name), and a new one is made after this exec as when
	 * there was none. */
	snprintf(w->notice, sizeof(w->notice), "warm snapshot %.12s could not be restored (%s); "
		 "booted cold", snap.id, e.msg);
	vb_error_clear(&e);
	if (vb_snap_retire(&snap, &e) < 0)
		vb_error_clear(&e);
	w->missing = 1;
	return vb_sandbox_start(cfg, err);
}

vb_sandbox *vb_sandbox_start_warm(const struct vb_sandbox_config *cfg, struct vb_warm *w,
				  vb_error *err)
{
	struct vb_accel_info ai = { 0 };
	return with_probe(start_warm(cfg, w, &ai, err), &ai);
}

int vb_sandbox_warm_evict(const char *keep, unsigned max_others, vb_error *err)
{
	struct vb_snap *all = NULL;
	size_t n = 0;
	if (vb_snap_list(&all, &n, err) < 0)
		return -1;
	unsigned kept = 0;
	for (size_t i = 0; i < n; i++) { /* newest first */
		if (strncmp(all[i].name, VB_WARM_PREFIX, strlen(VB_WARM_PREFIX)) != 0 ||
		    (keep && !strcmp(all[i].name, keep)))
			continue;
		if (kept < max_others) {
			kept++;
			continue;
		}
		vb_error e = { 0 };
		if (vb_snap_delete(&all[i], &e) < 0)
			vb_error_clear(&e);
	}
	free(all);
	return 0;
}
