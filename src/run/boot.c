/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How a run's VMs start (docs/snapshots.md, "Specs, pipelines and
 * shells"): restored from the snapshot their spec (or --snapshot) names,
 * from the warm snapshot of their configuration, or booted.  Every named
 * snapshot is found, and every VM that must be restored is checked for
 * what a restore cannot give it, before any VM boots.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run/engine.h"
#include "snap/snap.h"
#include "util/term.h"
#include "util/util.h"

/* A directory of the store (sandbox.snapshot: ~/.cache/voidbox/snapshots/ID)
 * is that snapshot's id; any other directory is none. */
static int dir_to_id(const char *ref, char id[VB_SNAP_HEX], vb_error *err)
{
	char shown[160];
	vb_term_copy(shown, sizeof(shown), ref, 0);
	_cleanup_free_ char *root = vb_snap_root(err);
	if (!root)
		return -1;
	_cleanup_free_ char *real_root = realpath(root, NULL);
	_cleanup_free_ char *real = realpath(ref, NULL);
	if (!real)
		return vb_error_set(err, VB_E_RUNTIME, "no snapshot '%s': %s", shown,
				    strerror(errno));
	size_t rl = real_root ? strlen(real_root) : 0;
	const char *base = real + rl + 1;
	if (!rl || strncmp(real, real_root, rl) != 0 || real[rl] != '/' || strlen(base) != 64 ||
	    strspn(base, "0123456789abcdef") != 64)
		return vb_error_set(err, VB_E_USAGE,
				    "'%s' is not a snapshot of the store (%s): give a snapshot's "
				    "name or id (voidbox snapshot list)",
				    shown, root);
	memcpy(id, base, VB_SNAP_HEX);
	return 0;
}

/* The snapshot (ref) names, as its full id: missing is the run's failure
 * (125, as an image that cannot be had), before any VM boots. */
static int find(const char *ref, char id[VB_SNAP_HEX], vb_error *err)
{
	if (strchr(ref, '/') && dir_to_id(ref, id, err) < 0)
		return -1;
	struct vb_snap snap;
	_cleanup_free_ char *dir = NULL;
	if (vb_snap_open(strchr(ref, '/') ? id : ref, &snap, &dir, err) < 0) {
		if (err && err->kind == VB_E_NOTFOUND)
			err->kind = VB_E_RUNTIME; /* NOTFOUND is a program not found */
		return -1;
	}
	memcpy(id, snap.id, VB_SNAP_HEX);
	return 0;
}

/* What of (cfg) a restore cannot give, tried one thing at a time against
 * the sandbox's own rule (vb_sandbox_warm_eligible), so that this says
 * what that rule refuses, whatever it is in this build. */
static void why_not(const struct vb_sandbox_config *cfg, char *buf, size_t size)
{
	const struct vb_sandbox_config base = { .backend = cfg->backend, .accel = cfg->accel,
						.memory_mib = cfg->memory_mib, .vcpus = cfg->vcpus };
	struct vb_sandbox_config t[9];
	const char *what[9];
	size_t n = 0;
	char mounts[120];
	snprintf(mounts, sizeof(mounts),
		 "%zu mounts (outputs, inputs and --mount/-v count; at most 4%s)", cfg->n_mounts,
		 cfg->rootfs ? ", 3 with sandbox.image" : "");
#define TRY(field_set, text)                \
	do {                                \
		t[n] = base;                \
		field_set;                  \
		what[n++] = (text);         \
	} while (0)
	if (cfg->network.enabled)
		TRY(t[n].network = cfg->network, "network: true");
	if (cfg->n_forwards)
		TRY((t[n].forwards = cfg->forwards, t[n].n_forwards = cfg->n_forwards),
		    "an agent that runs in the VM (its LLM gateway is a forward)");
	if (cfg->guest_initramfs)
		TRY(t[n].guest_initramfs = cfg->guest_initramfs, "sandbox.guest_image");
	if (cfg->allow)
		TRY((t[n].allow = cfg->allow, t[n].n_allow = cfg->n_allow),
		    "sandbox.allowed_commands");
	if (cfg->rlimit_nofile || cfg->rlimit_nproc || cfg->rlimit_fsize)
		TRY((t[n].rlimit_nofile = cfg->rlimit_nofile, t[n].rlimit_nproc = cfg->rlimit_nproc,
		     t[n].rlimit_fsize = cfg->rlimit_fsize),
		    "sandbox.limits (nofile, nproc, fsize_mb)");
	if (cfg->n_disk_mounts)
		TRY((t[n].disk_mounts = cfg->disk_mounts, t[n].n_disk_mounts = cfg->n_disk_mounts),
		    "image skills (disks)");
	if (cfg->n_mounts)
		/* the image root takes a mount's device (snapimage.c) */
		TRY((t[n].mounts = cfg->mounts, t[n].n_mounts = cfg->n_mounts,
		     t[n].rootfs = cfg->rootfs), mounts);
#undef TRY
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n && used < size; i++)
		if (!vb_sandbox_warm_eligible(&t[i]))
			used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? ", " : "",
						 what[i]);
	if (!buf[0])
		snprintf(buf, size, "what this VM asks for");
}

int vb_run_boot_prepare(struct vb_run *r, struct vb_run_vmconf *vc, size_t n_forwards,
			vb_error *err)
{
	const char *from = "sandbox.snapshot";
	if (vc->boot == VB_RUN_BOOT_WARM && r->opts.snapshot) {
		vc->boot = VB_RUN_BOOT_SNAPSHOT;
		vc->snapshot = r->opts.snapshot;
		from = "--snapshot";
	} else if (vc->boot == VB_RUN_BOOT_WARM && r->opts.cold) {
		vc->boot = VB_RUN_BOOT_COLD;
	}
	return vb_run_vmconf_snapshot(vc, from, n_forwards, err);
}

int vb_run_vmconf_snapshot(struct vb_run_vmconf *vc, const char *from, size_t n_forwards,
			   vb_error *err)
{
	if (vc->boot != VB_RUN_BOOT_SNAPSHOT)
		return 0;
	char id[VB_SNAP_HEX];
	if (find(vc->snapshot, id, err) < 0) {
		vb_error_prefix(err, "%s", from);
		return -1;
	}
	/* the one found now is the one every VM of this run restores, even if
	 * the name is given to another snapshot meanwhile */
	if (!(vc->snapshot = vb_run_vmconf_keep(vc, strdup(id))))
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	return vb_run_vmconf_restorable(vc, from, n_forwards, err);
}

int vb_run_vmconf_restorable(const struct vb_run_vmconf *vc, const char *from,
			     size_t n_forwards, vb_error *err)
{
	struct vb_sandbox_config c = vc->cfg;
	static const struct vb_forward fw;
	if (n_forwards) { /* set at boot (pipeline.c); only their count matters */
		c.forwards = &fw;
		c.n_forwards = n_forwards;
	}
	if (!vb_sandbox_warm_eligible(&c)) {
		char why[400];
		why_not(&c, why, sizeof(why));
		return vb_error_set(err, VB_E_USAGE,
				    "%s: a VM restored from a snapshot cannot have %s (yet); boot "
				    "this one cold (sandbox.snapshot: none)",
				    from, why);
	}
	return 0;
}

vb_sandbox *vb_run_boot(struct vb_run *r, const struct vb_run_vmconf *vc,
			const struct vb_sandbox_config *cfg, struct vb_run_boot *b, vb_error *err)
{
	memset(b, 0, sizeof(*b));
	if (vc->boot == VB_RUN_BOOT_SNAPSHOT) /* never replaced by a cold boot */
		return vb_sandbox_restore(cfg, vc->snapshot, err);
	if (vc->boot == VB_RUN_BOOT_COLD)
		return vb_sandbox_start(cfg, err);
	struct vb_warm w;
	vb_sandbox *sb = vb_sandbox_start_warm(cfg, &w, err);
	b->warm = w.restored;
	snprintf(b->notice, sizeof(b->notice), "%s", w.notice);
	/* the maker makes the default kernel's VM, on an OCI image's root when
	 * it has one (by its reference, from the store): a VM of another
	 * kernel would only ever find none; and one that could not boot would
	 * fail */
	if (sb && w.missing && !cfg->kernel && !cfg->initramfs && (!cfg->rootfs || cfg->root_ref)) {
		pthread_mutex_lock(&r->mu);
		if (!r->warm_missing) {
			r->warm_missing = 1;
			r->warm_cfg = (struct vb_sandbox_config){ .backend = cfg->backend,
								  .accel = cfg->accel,
								  .memory_mib = cfg->memory_mib,
								  .vcpus = cfg->vcpus };
			/* the run's own copy: its images are freed before the result */
			if (cfg->root_ref && !(r->warm_cfg.root_ref = r->warm_ref = strdup(cfg->root_ref)))
				r->warm_missing = 0;
		}
		pthread_mutex_unlock(&r->mu);
	}
	return sb;
}
