/* SPDX-License-Identifier: Apache-2.0 */
/*
 * From a resolved spec VM (struct vb_spec_vm: top-level sandbox and box
 * override merged) to what libvoidbox boots and runs: a vb_sandbox_config
 * plus the environment and default timeout of every exec in that VM.
 * Shared by the run engine and `voidbox shell`.
 */
#ifndef VB_RUN_VMCONF_H
#define VB_RUN_VMCONF_H

#include <stdio.h>

#include "spec/spec.h"
#include "voidbox/sandbox.h"

/* Notices a spec may call for; each is printed at most once per process. */
enum {
	VB_RUN_NOTICE_MOCK = 1u << 0,        /* sandbox.mode mock runs as auto */
	VB_RUN_NOTICE_CREDENTIALS = 1u << 1, /* provider credentials stay on the host */
};

/* How a VM starts (sandbox.snapshot, `--snapshot`, `--cold`). */
enum vb_run_boot_mode {
	VB_RUN_BOOT_WARM = 0, /* from the warm snapshot when there is one, else cold */
	VB_RUN_BOOT_COLD,     /* booted: sandbox.snapshot: none, --cold */
	VB_RUN_BOOT_SNAPSHOT, /* restored from (snapshot), never booted instead */
};

struct vb_run_vmconf {
	/* Ready for vb_sandbox_start(): mounts/allow point into this struct.
	 * name and cancel_fd are left 0 for the caller to set. */
	struct vb_sandbox_config cfg;
	enum vb_run_boot_mode boot;
	const char *snapshot;    /* VB_RUN_BOOT_SNAPSHOT: a name, an id (prefix) or
				  * a directory of the store, as written */
	/* For vb_exec_params.env: NULL-terminated "K=V" (never NULL itself). */
	const char *const *env;
	size_t n_env;
	/* limits.timeout_secs in ms; 0 = none.  A box's timeout_secs wins. */
	unsigned timeout_ms;
	unsigned notices;        /* VB_RUN_NOTICE_* that apply to this VM */
	/* Owned storage behind the pointers above. */
	struct vb_mount *mounts_v;
	size_t n_mounts, cap_mounts;
	char **allow_v;
	char **env_v;
	struct vb_net_cidr *net_cidrs; /* deny then allow */
	unsigned *net_ports;
	struct vb_net_publish *net_publish;
	char **net_domains;      /* strings in strs */
	struct vb_disk_mount *disks_v; /* cfg.disk_mounts (image skills) */
	size_t n_disks;
	char **strs;             /* every string we copied */
	size_t n_strs, cap_strs;
};

/*
 * Fill (out) from (vm).  Everything (out) points to is owned by it, so
 * (vm) may go away afterwards; release with vb_run_vmconf_free() (also
 * after a failure, which leaves (out) safe to free).  rw mount host
 * directories are created if missing; a missing ro one is an error.
 * Environment entries with from_host take the host's value (skipped when
 * the host has none); provider credentials are never passed into the guest.
 * (*accel), when (accel) is not NULL, overrides the spec's backend (else
 * $VOIDBOX_ACCEL does, if set).
 * network: true fills cfg.network from the policy and sandbox.ports (its
 * on_event is left for the caller).
 * sandbox.guest_image is pulled when missing and prepared
 * (vb_run_guest_image; vb_run_vm_config_pull for another pull policy).
 * sandbox.snapshot sets (boot) and (snapshot) (none: VB_RUN_BOOT_COLD);
 * nothing looks for the snapshot here (vb_run_boot_prepare does).
 * Errors: VB_E_RUNTIME for what this version cannot honour
 * (sandbox.image is the engine's, src/run/image.h);
 * VB_E_USAGE for a missing ro mount directory.  The caller prefixes the box
 * name.  Prints nothing: see
 * vb_run_vmconf_notify().
 */
int vb_run_vm_config(const struct vb_spec_vm *vm, const enum vb_accel *accel,
		     struct vb_run_vmconf *out, vb_error *err);

/* How an image is had: (policy) an enum vb_oci_pull_policy (0, "missing",
 * by default), the pull's progress on (progress) (NULL: quiet). */
struct vb_run_pull {
	int policy;
	FILE *progress;
};
/* vb_run_vm_config with the guest image had as (*pull) says (NULL: as
 * vb_run_vm_config). */
int vb_run_vm_config_pull(const struct vb_spec_vm *vm, const enum vb_accel *accel,
			  const struct vb_run_pull *pull, struct vb_run_vmconf *out, vb_error *err);

/* Add a mount (strings copied), e.g. a pipeline box's outputs and inputs.
 * (cfg.mounts) is updated. */
int vb_run_vmconf_add_mount(struct vb_run_vmconf *c, const char *host, const char *guest, int rw,
			    vb_error *err);

/* Add a read-only disk image mounted at (guest) (an image skill; strings
 * copied).  (cfg.disk_mounts) is updated. */
int vb_run_vmconf_add_disk(struct vb_run_vmconf *c, const char *image, const char *guest,
			   vb_error *err);

/* The same for a user's host directory: a missing rw one is created, a
 * missing ro one is an error (VB_E_USAGE), as for spec mounts. */
int vb_run_vmconf_add_host_mount(struct vb_run_vmconf *c, const char *host, const char *guest,
				 int rw, vb_error *err);

/* Take (s) (malloc'd) into (c)'s storage: freed with (c); NULL (and (s)
 * freed) when out of memory. */
char *vb_run_vmconf_keep(struct vb_run_vmconf *c, char *s);

/* sandbox.guest_image (src/run/guestspec.c): pulled as (p) says,
 * its kernel and initramfs prepared once per manifest under
 * <oci>/guest/<manifest-hex>/ and checked (virtio-net when vm->network,
 * a root disk's drivers when vm->image), set as cfg.kernel and
 * cfg.guest_initramfs.  Nothing when the VM names no guest image; a
 * guest image with sandbox.kernel or .initramfs, or a malformed reference,
 * is VB_E_USAGE; one that cannot be had (404 included) VB_E_RUNTIME.
 * (p) NULL: pulled only when not in the store, quietly. */
int vb_run_guest_image(struct vb_run_vmconf *c, const struct vb_spec_vm *vm,
		       const struct vb_run_pull *p, vb_error *err);

/* Set "K=V" in the exec environment, replacing an earlier value of K
 * (string copied).  (c->env) is updated. */
int vb_run_vmconf_set_env(struct vb_run_vmconf *c, const char *kv, vb_error *err);

/* For a stage whose agent is claude-code or codex (src/agentbin): its
 * binary (fetched first if it is not cached, progress lines on (progress),
 * may be NULL) and the musl loader and bash it needs, as read-only mounts,
 * and PATH with the agent's bin/ first, so that `claude` / `codex` runs as
 * is.  (kind) is an enum vb_agentbin_kind.  Errors: the pull's (network,
 * integrity, a missing Debian package on the host), VB_E_RUNTIME. */
int vb_run_vmconf_add_agent(struct vb_run_vmconf *c, int kind, FILE *progress, vb_error *err);

/* Before (c) boots: when it must restore a snapshot (VB_RUN_BOOT_SNAPSHOT),
 * find it (c->snapshot becomes its full id: no such snapshot is
 * VB_E_RUNTIME, as an image that cannot be had; a directory outside the
 * store VB_E_USAGE) and check that a restore can give (c->cfg), with
 * (n_forwards) forwards to come, all it asks (VB_E_USAGE naming what it
 * cannot).  Errors start with (from), e.g. "--snapshot".  (src/run/boot.c) */
int vb_run_vmconf_snapshot(struct vb_run_vmconf *c, const char *from, size_t n_forwards,
			   vb_error *err);

/* Whether a VM restored from a snapshot can have all (c->cfg) asks, with
 * (n_forwards) forwards to come: VB_E_USAGE naming what it cannot, the
 * message starting with (from).  (src/run/boot.c) */
int vb_run_vmconf_restorable(const struct vb_run_vmconf *c, const char *from, size_t n_forwards,
			     vb_error *err);

/* Print the one-line notices (c->notices) to (out), each at most once per
 * process (thread-safe).  NULL (out) does nothing. */
void vb_run_vmconf_notify(const struct vb_run_vmconf *c, FILE *out);

void vb_run_vmconf_free(struct vb_run_vmconf *c);

#endif
