/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Snapshots of a VM (docs/snapshots.md): save a running sandbox into the
 * store's staging directory, and boot a new one from a stored snapshot.
 * The files and their digests are src/snap/'s; QEMU's part is the vmm ops
 * table's save/restore.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image/image.h"
#include "sandbox/sandbox_int.h"
#include "snap/snap.h"
#include "util/util.h"

#define SAVE_TIMEOUT_MS 60000
#define DEFAULT_MEMORY_MIB 1024u

int vb_sandbox_snap_config(const struct vb_sandbox_config *cfg, const char *accel,
			   const struct vb_vmm_ops *ops, const char *devices, char *buf, size_t len,
			   vb_error *err)
{
	char qemu[512] = "?", dev[VB_SNAP_CONF_MAX];
	if (ops->identity)
		ops->identity(qemu, sizeof(qemu));
	if (!devices && vb_sandbox_snap_devices(cfg, dev, sizeof(dev), err) < 0)
		return -1;
	/* device state only loads into the same machine: same RAM size, vCPUs,
	 * devices (the disks: the same files, snapimage.c), accelerator and
	 * VMM binary */
	int n = snprintf(buf, len, "memory=%u vcpus=%u accel=%s %s vmm=%s %s",
			 cfg->memory_mib ? cfg->memory_mib : DEFAULT_MEMORY_MIB,
			 cfg->vcpus ? cfg->vcpus : 1, accel, devices ? devices : dev, ops->name, qemu);
	if (n < 0 || (size_t)n >= len)
		return vb_error_set(err, VB_E_RUNTIME, "snapshot configuration too long");
	return 0;
}

int vb_sandbox_save(vb_sandbox *sb, const char *name, char id[65], vb_error *err)
{
	if (!sb->save_dir)
		return vb_error_set(err, VB_E_USAGE, "this VM was not started to be saved (save_dir)");
	if (!sb->ops->save)
		return vb_error_set(err, VB_E_USAGE, "the %s backend has no snapshots", sb->ops->name);
	/* Quiesce: what the guest wrote is in its page cache, which is in
	 * the RAM we save; `sync` still leaves nothing half-written for the
	 * disks a later version may give snapshot VMs.  It runs as an exec
	 * and ends before we pause: no exec of ours is in flight. */
	if (vb_sandbox_snap_quiesce(sb, err) < 0)
		return -1;
	static const char *const argv[] = { "sync", NULL };
	/* an image may have no sync: the initramfs's busybox is in every
	 * image root (docs/oci.md, "The root") */
	static const char *const image_argv[] = { "/.voidbox/bin/busybox", "sync", NULL };
	struct vb_exec_params p = { .argv = sb->image_root ? image_argv : argv, .as_root = 1,
				    .timeout_ms = 30000 };
	struct vb_exec_result res = { 0 };
	if (vb_exec_run(sb, &p, NULL, 0, 4096, &res, err) < 0)
		return -1;
	int rc = res.exit_code;
	vb_exec_result_free(&res);
	if (rc != 0)
		return vb_error_set(err, VB_E_RUNTIME, "sync in the guest failed (exit %d)", rc);
	int64_t t0 = vb_now_ms();
	_cleanup_free_ char *state = vb_strfmt("%s/state", sb->save_dir);
	_cleanup_free_ char *secret = vb_strfmt("%s/secret", sb->save_dir);
	if (!state || !secret)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	if (sb->ops->save(sb->vm, state, SAVE_TIMEOUT_MS, err) < 0)
		return -1;
	_cleanup_close_ int fd = open(secret, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || vb_write_full(fd, sb->save_secret, sizeof(sb->save_secret)) < 0 ||
	    fsync(fd) < 0)
		return vb_error_errno(err, errno, "%s", secret);
	/* the RAM file is written through by QEMU's shared mapping: on disk
	 * before it is digested and named */
	_cleanup_free_ char *ram = vb_strfmt("%s/ram", sb->save_dir);
	_cleanup_close_ int rfd = ram ? open(ram, O_RDONLY | O_CLOEXEC) : -1;
	if (rfd < 0 || fsync(rfd) < 0)
		return vb_error_errno(err, errno, "%s", ram ? ram : "ram");
	int64_t save_ms = vb_now_ms() - t0;
	char conf[VB_SNAP_CONF_MAX];
	struct vb_snap_source src;
	struct vb_snap snap;
	if (vb_sandbox_snap_config(&sb->conf, sb->vm->accel, sb->ops, sb->snap_devices, conf,
				   sizeof(conf), err) < 0 ||
	    vb_snap_sources(sb->kernel, sb->initramfs, conf, &src, err) < 0 ||
	    vb_snap_commit(sb->save_dir, name, &src, save_ms,
			   sb->snapshot_id[0] ? sb->snapshot_id : NULL, &snap, err) < 0)
		return -1;
	memcpy(id, snap.id, VB_SNAP_HEX);
	return 0;
}

/* Checks, then the restore itself: the copy keeps the snapshot's identity.
 * With (cfg->save_dir), a VM to be saved again (`snapshot create --from`):
 * its RAM is a copy of the snapshot's in save_dir, mapped shared. */
static vb_sandbox *restore_unkeyed(const struct vb_sandbox_config *cfg, const char *ref,
				   vb_error *err)
{
	int64_t t0 = vb_now_ms();
	if (cfg->guest_initramfs) {
		vb_error_set(err, VB_E_USAGE,
			     "a VM restored from a snapshot has no guest image (yet)");
		return NULL;
	}
	if (cfg->allow || cfg->rlimit_nofile || cfg->rlimit_nproc || cfg->rlimit_fsize) {
		/* boot data its agent read at its own boot: never silently dropped */
		vb_error_set(err, VB_E_USAGE, "a VM restored from a snapshot takes no command "
			     "allowlist or rlimits (they are boot settings): boot it cold");
		return NULL;
	}
	if (vb_sandbox_snap_mounts_check(cfg, err) < 0)
		return NULL;
	struct vb_snap snap;
	_cleanup_free_ char *dir = NULL;
	if (vb_snap_open(ref, &snap, &dir, err) < 0) {
		/* not in the store: a VM that cannot be had, as an image that
		 * cannot be pulled (125); NOTFOUND is a program not found (127) */
		if (err && err->kind == VB_E_NOTFOUND)
			err->kind = VB_E_RUNTIME;
		return NULL;
	}
	/* in use: eviction passes it over until QEMU has loaded it */
	_cleanup_close_ int use_fd = vb_snap_use(dir);
	/* everything checked before anything runs: never half-restored; a
	 * diff's base too, as the whole RAM is made of it */
	if (vb_snap_verify(&snap, dir, 0, err) < 0)
		return NULL;
	_cleanup_free_ char *ram = vb_snap_ram(&snap, dir, err);
	if (!ram)
		return NULL;
	const struct vb_vmm_ops *ops = vb_vmm_pick(cfg->backend, err);
	_cleanup_free_ char *kernel = !ops ? NULL : cfg->kernel ? strdup(cfg->kernel) : vb_image_kernel(err);
	_cleanup_free_ char *initramfs =
		!kernel ? NULL : cfg->initramfs ? strdup(cfg->initramfs) : vb_image_initramfs(err);
	if (!initramfs)
		return NULL;
	if (!ops->restore) {
		vb_error_set(err, VB_E_USAGE, "the %s backend has no snapshots", ops->name);
		return NULL;
	}
	struct vb_accel_info ai;
	char conf[VB_SNAP_CONF_MAX], image_ref[128];
	struct vb_snap_source now;
	struct vb_sandbox_config same = *cfg;
	same.root_ref = image_ref; /* the snapshot's name of the same root file */
	if (vb_accel_resolve(cfg->accel, kernel, 0, &ai, err) < 0 ||
	    vb_sandbox_snap_config(cfg, ai.accel, ops, NULL, conf, sizeof(conf), err) < 0 ||
	    vb_sandbox_snap_image_check(snap.id, snap.src.config_text, conf, image_ref,
					sizeof(image_ref), err) < 0 ||
	    vb_sandbox_snap_config(&same, ai.accel, ops, NULL, conf, sizeof(conf), err) < 0 ||
	    vb_snap_sources(kernel, initramfs, conf, &now, err) < 0 ||
	    vb_snap_check_sources(&snap, &now, err) < 0)
		return NULL;
	_cleanup_free_ char *state = vb_strfmt("%s/state", dir);
	_cleanup_free_ char *secret_path = vb_strfmt("%s/secret", dir);
	uint8_t secret[32];
	_cleanup_close_ int fd = secret_path ? open(secret_path, O_RDONLY | O_CLOEXEC) : -1;
	if (!state || !ram || fd < 0 || vb_read_full(fd, secret, sizeof(secret)) != sizeof(secret)) {
		vb_error_errno(err, errno, "snapshot %.12s: cannot read its secret", snap.id);
		return NULL;
	}
	if (cfg->save_dir) {
		/* the save writes the RAM file: a copy, never the snapshot */
		_cleanup_free_ char *copy = vb_strfmt("%s/ram", cfg->save_dir);
		if (!copy || vb_snap_copy_sparse(ram, copy, err) < 0) {
			explicit_bzero(secret, sizeof(secret));
			return NULL;
		}
	}
	struct vb_restore r = { .state = state, .ram = ram, .secret = secret, .id = snap.id };
	struct vb_sandbox_config c = *cfg;
	c.kernel = kernel;
	c.initramfs = initramfs;
	vb_sandbox *sb = vb_sandbox_boot(&c, &r, err);
	explicit_bzero(secret, sizeof(secret));
	if (!sb) {
		vb_error_prefix(err, "cannot restore snapshot %.12s", snap.id);
		return NULL;
	}
	sb->restore_t0 = t0;
	return sb;
}

vb_sandbox *vb_sandbox_restore_ex(const struct vb_sandbox_config *cfg, const char *ref,
				  int *mount_failed, vb_error *err)
{
	if (mount_failed)
		*mount_failed = 0;
	/* The copy still holds the snapshot's session secret, RNG state and
	 * clock: every restore of one snapshot would be the same machine
	 * until the re-key, so nothing runs in it before that. */
	vb_sandbox *sb = restore_unkeyed(cfg, ref, err);
	if (sb && vb_sandbox_rekey(sb, err) < 0) {
		vb_error_prefix(err, "restored snapshot %.12s", sb->snapshot_id);
		vb_sandbox_free(sb);
		return NULL;
	}
	if (sb && vb_sandbox_mount_slots(sb, cfg, err) < 0) {
		/* the caller's mounts, not the snapshot, most likely (a guest path
		 * the agent refuses): a cold boot would fail the same way */
		if (mount_failed)
			*mount_failed = 1;
		vb_error_prefix(err, "restored snapshot %.12s", sb->snapshot_id);
		vb_sandbox_free(sb);
		return NULL;
	}
	/* a forward failing is the snapshot's (a setup that took the port)
	 * or ours, never the caller's: a cold boot would listen */
	if (sb && vb_sandbox_forward_restored(sb, cfg, err) < 0) {
		vb_error_prefix(err, "restored snapshot %.12s", sb->snapshot_id);
		vb_sandbox_free(sb);
		return NULL;
	}
	if (sb && vb_sandbox_net_restored(sb, cfg, err) < 0) {
		vb_error_prefix(err, "restored snapshot %.12s", sb->snapshot_id);
		vb_sandbox_free(sb);
		return NULL;
	}
	if (sb) /* "boot" covers the restore and the re-key: the VM is usable */
		sb->boot_ms = vb_now_ms() - sb->restore_t0;
	return sb;
}

vb_sandbox *vb_sandbox_restore(const struct vb_sandbox_config *cfg, const char *ref,
			       vb_error *err)
{
	return vb_sandbox_restore_ex(cfg, ref, NULL, err);
}

const char *vb_sandbox_snapshot_id(const vb_sandbox *sb)
{
	return sb->snapshot_id[0] ? sb->snapshot_id : NULL;
}
