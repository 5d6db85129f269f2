/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image skills in a stage's VM: each image pulled as --pull says (once a
 * run) and built into its root disk on the host (src/oci/root.c) before
 * any VM boots, the disk attached read-only at the skill's mount (its bin
 * dirs join PATH in the guest: docs/oci.md "In the VM"), and a
 * skill.provisioned event once the VM is up.  A box gets only its own:
 * the disks are part of its VM's config, no other box's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oci/guestimg.h"
#include "oci/oci.h"
#include "oci/root.h"
#include "run/engine.h"
#include "skill/skill.h"
#include "util/term.h"
#include "util/util.h"

int vb_run_skills_oci_attach(struct vb_run *r, struct vb_run_vmconf *vc, struct vb_skill_set *set,
			     vb_error *err)
{
	if (!set || !set->n_oci)
		return 0;
	const char *file = r->spec->file ? r->spec->file : "";
	char f[256], a[200], b[200];
	vb_term_copy(f, sizeof(f), file, 0);
	/* a guest image's kernel must mount them (virtio-blk, ext4) */
	if (vc->cfg.guest_initramfs &&
	    vb_guestimg_check_kernel(vc->cfg.kernel, VB_GUESTIMG_NEED_DISK, err) < 0) {
		vb_error_prefix(err, "%s: image skills on sandbox.guest_image", f);
		return -1;
	}
	/* the root image (sandbox.image, prepared just before) takes a disk */
	int has_root = vc->cfg.rootfs || set->root_image;
	size_t room = VB_SANDBOX_MAX_DISKS - (has_root ? 1 : 0) - vc->n_disks;
	for (size_t i = 0; i < set->n_oci; i++) {
		struct vb_skill_oci *o = &set->oci[i];
		vb_term_copy(a, sizeof(a), o->image, 0);
		if (i >= room)
			return vb_error_set(err, VB_E_USAGE,
					    "%s:%u:%u: skill image '%s': a VM has at most %u disks, "
					    "its root image included: this stage can take %zu image "
					    "skill%s",
					    f, o->pos.line, o->pos.col, a, VB_SANDBOX_MAX_DISKS, room,
					    room == 1 ? "" : "s");
		for (size_t m = 0; m < vc->n_mounts; m++)
			if (vb_skill_paths_overlap(o->mount, vc->mounts_v[m].guest)) {
				char mp[200];
				vb_term_copy(b, sizeof(b), vc->mounts_v[m].guest, 0);
				vb_term_copy(mp, sizeof(mp), o->mount, 0);
				return vb_error_set(err, VB_E_USAGE,
						    "%s:%u:%u: skill image '%s': its mount %s clashes "
						    "with the directory mounted at %s",
						    f, o->pos.line, o->pos.col, a, mp, b);
			}
		struct vb_oci_root_opts ro = { .progress = r->opts.notices,
					       .pull = vb_run_pull_policy(r, o->image) };
		struct vb_oci_root root;
		int rc = vb_oci_root_prepare(o->image, &ro, &root, err);
		if (rc == 0) {
			o->reference = root.reference;
			o->disk = root.disk;
			root.reference = root.disk = NULL;
			memcpy(o->digest, root.manifest_digest, sizeof(o->digest));
			o->size = root.disk_size;
		}
		vb_oci_root_clear(&root);
		if (rc < 0) {
			/* an image that cannot be had (404 included) is VoidBox's
			 * 125, as for docker run; a malformed reference stays 2 */
			if (err && err->kind != VB_E_USAGE)
				err->kind = VB_E_RUNTIME;
			/* the message already names the reference */
			vb_error_prefix(err, "%s:%u:%u: skill image", f, o->pos.line, o->pos.col);
			return -1;
		}
		if (vb_run_vmconf_add_disk(vc, o->disk, o->mount, err) < 0)
			return -1;
	}
	return 0;
}

void vb_run_skills_oci_booted(struct vb_run *r, struct vb_run_unit *u, const struct vb_skill_set *set)
{
	for (size_t i = 0; set && i < set->n_oci; i++) {
		const struct vb_skill_oci *o = &set->oci[i];
		struct vb_event_skill k = { .type = "oci", .name = o->reference, .source = o->image,
					    .digest = o->digest, .path = o->mount, .size = o->size };
		struct vb_event ev = { .type = VB_EV_SKILL_PROVISIONED, .stage = u->name,
				       .skill = &k, .vm_id = u->vm_id };
		vb_run_emit(r, &ev);
	}
}
