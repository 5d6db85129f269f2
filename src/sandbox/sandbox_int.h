/* SPDX-License-Identifier: Apache-2.0 */
/* Internals shared by the files of src/sandbox/. */
#ifndef VB_SANDBOX_INT_H
#define VB_SANDBOX_INT_H

#include "channel/channel.h"
#include "net/net.h"
#include "vmm/vmm.h"
#include "voidbox/sandbox.h"

struct vb_sandbox {
	char id[32];
	char *name;
	char *rundir;
	char *ctl_path;
	struct vb_vmm *vm;
	struct vb_chan *ch;
	struct vb_chan_hello hello;
	int64_t boot_ms;
	struct vb_accel_info accel; /* how the VM's CPU runs, and why */
	char kept_log[512]; /* console log kept for the user after a failure */
	struct vb_fwd_set *fwd; /* the loopback forwards' streams, or NULL */
	struct vb_net_stream *net; /* the user-mode network, or NULL */
	struct vb_netdrop *netdrop; /* a snapshot VM's network device without one */
	int root_user; /* the VM has a default user (vb_sandbox_config.root_user) */
	int image_root; /* the VM's root is an image (vb_sandbox_config.rootfs) */
	/* snapshots (snapshot.c) */
	char *save_dir;              /* cfg->save_dir, copied */
	char *kernel, *initramfs;    /* what it booted, with save_dir */
	struct vb_sandbox_config conf; /* memory_mib and vcpus only, with save_dir */
	char *snap_devices;          /* with save_dir: vb_sandbox_snap_devices() at boot */
	uint8_t save_secret[32];     /* the secret the agent keeps, for the snapshot */
	char snapshot_id[65];        /* restored from this snapshot, or "" */
	int64_t restore_t0;          /* when vb_sandbox_restore() began */
	size_t n_slot_mounts;        /* the 9p devices MOUNT mounted (mount.c) */
	const struct vb_vmm_ops *ops;
};

/* How vb_sandbox_boot() loads a snapshot instead of booting cold. */
/* A snapshot's VM has this many virtio-9p devices (tags vbm0..), left
 * unmounted on an empty directory of its runtime directory: QEMU migrates
 * an export only while the guest has not mounted it.  A restore points the
 * first ones at its mounts and asks the agent to mount them (MOUNT).  Part
 * of the snapshot's configuration: the devices must match to load the
 * state.  4 leaves microvm's 8th transport for a network device. */
#define VB_SNAP_MOUNT_SLOTS 4u

struct vb_restore {
	const char *state;  /* the device state file */
	const char *ram;    /* the RAM file, mapped privately */
	const uint8_t *secret; /* the agent's secret in that snapshot */
	const char *id;        /* the snapshot's: `voidbox ps` shows it from the start */
};

/* vb_sandbox_start(), and with (restore) not NULL, a restore (snapshot.c):
 * no identity change yet, which vb_sandbox_restore() adds. */
vb_sandbox *vb_sandbox_boot(const struct vb_sandbox_config *cfg, const struct vb_restore *restore,
			    vb_error *err);
/* vb_sandbox_restore(), telling with (*mount_failed) that the restore
 * itself worked but mounting (cfg)'s directories did not (warm.c). */
vb_sandbox *vb_sandbox_restore_ex(const struct vb_sandbox_config *cfg, const char *ref,
				  int *mount_failed, vb_error *err);
/* After a restore's re-key: mount (cfg)'s mounts on the snapshot's 9p
 * devices (MOUNT, docs/protocol.md).  mount.c. */
int vb_sandbox_mount_slots(vb_sandbox *sb, const struct vb_sandbox_config *cfg, vb_error *err);
/* A snapshot's VM (saved, or restored without a network) has a virtio-net
 * device all the same, so that a restore with a network finds it: its
 * backend is this, a socket whose frames a thread reads and drops.
 * restored.c. */
struct vb_netdrop;
/* Start one; (*vmm_fd) gets QEMU's end (the caller closes it once QEMU
 * has its copy). */
struct vb_netdrop *vb_netdrop_start(int *vmm_fd, vb_error *err);
/* Stop the thread, close the socket.  Safe with NULL. */
void vb_netdrop_stop(struct vb_netdrop *d);
/* Send (req) (freed) and wait for the agent's OK; a failure is "(what):
 * reason", the VM's death noted.  The setup messages after a restore
 * (MOUNT, FORWARD, NET_UP).  restored.c. */
int vb_sandbox_ask(vb_sandbox *sb, struct vb_buf *req, const char *what, vb_error *err);
/* After a restore's re-key, with (cfg)'s network on: ask the agent to
 * configure eth0 (NET_UP, docs/protocol.md).  0 without a network.
 * restored.c. */
int vb_sandbox_net_restored(vb_sandbox *sb, const struct vb_sandbox_config *cfg, vb_error *err);
/* A VM to be saved (cfg->save_dir) that was booted, not restored: mount
 * (cfg)'s directories (MOUNT) and bring its network up (NET_UP) as a
 * restore does, so that a setup can use them.  snapsetup.c. */
int vb_sandbox_snap_setup(vb_sandbox *sb, const struct vb_sandbox_config *cfg, vb_error *err);
/* Before a save: unmount what MOUNT mounted (UNMOUNT), take the guest's
 * network down (NET_DOWN) and stop its host side, so the snapshot holds
 * neither; a guest that refuses fails the save.  snapsetup.c. */
int vb_sandbox_snap_quiesce(vb_sandbox *sb, vb_error *err);
/* What a snapshot of (cfg) under (accel) and the VMM (ops) depends on
 * besides kernel and initramfs, as text (snapshot.c); (devices) is
 * vb_sandbox_snap_devices()'s text, or NULL to make it from (cfg). */
int vb_sandbox_snap_config(const struct vb_sandbox_config *cfg, const char *accel,
			   const struct vb_vmm_ops *ops, const char *devices, char *buf, size_t len,
			   vb_error *err);
/* Room for a snapshot's configuration text (snap.h's config_text). */
#define VB_SNAP_CONF_MAX 512

/* ---- snapimage.c: snapshots with an image root and disks -------------- */

/* 9p devices of a snapshot's VM: VB_SNAP_MOUNT_SLOTS less one per disk
 * (the image root included): each disk takes a 9p device's transport. */
unsigned vb_sandbox_snap_slots(const struct vb_sandbox_config *cfg);
/* (cfg)'s mounts fit those devices, or VB_E_USAGE saying how many do. */
int vb_sandbox_snap_mounts_check(const struct vb_sandbox_config *cfg, vb_error *err);
/* The devices part of a snapshot's configuration: "devices=ctl,rng,net,
 * 9p*4" without disks; with them "devices=ctl,rng,net,blk*N,9p*M",
 * " root=ID image=REF" (the root file's identity by its stat, and the
 * boot data it brings) and " disks=ID:N".  Fails if a disk is gone. */
int vb_sandbox_snap_devices(const struct vb_sandbox_config *cfg, char *buf, size_t len,
			    vb_error *err);
/* Before the configurations are compared: a snapshot (id) taken with the
 * configuration text (then) against this VM's (now), for its image root
 * and disks, with a reason a user can act on (VB_E_USAGE).  On success
 * (ref) gets the snapshot's name of the image (the same root file may be
 * named otherwise now: a tag and its digest), for vb_sandbox_config's
 * root_ref when (now) is made again. */
int vb_sandbox_snap_image_check(const char *id, const char *then, const char *now,
				char *ref, size_t ref_len, vb_error *err);


/* ---- forward.c: guest-opened streams of the loopback forwards --------- */

struct vb_fwd_set;
/* Serve the guest's streams of (fw) (copied) on (ch): a STREAM_OPEN of
 * KIND i belongs to fw[i].  Each stream gets its own thread (at most
 * 2 * VB_MAX_STREAMS exist at once) pumping bytes between the stream and a
 * socketpair whose other end goes to fw[i].accept. */
struct vb_fwd_set *vb_fwd_start(struct vb_chan *ch, const struct vb_forward *fw, size_t n,
				vb_error *err);
/* After the channel is dead (vb_chan_shutdown): wait for every stream
 * thread, free.  Safe with NULL. */
void vb_fwd_stop(struct vb_fwd_set *fs);
/* After a restore's re-key: ask the agent to listen for (cfg)'s forwards
 * (FORWARD, docs/protocol.md); their streams are already served (sb->fwd).
 * A snapshot's agent read its boot data before this VM's forwards existed.
 * 0 with no forwards.  restored.c. */
int vb_sandbox_forward_restored(vb_sandbox *sb, const struct vb_sandbox_config *cfg,
				vb_error *err);

/* Replace (err) with the best explanation of why the VM went away (kernel
 * panic line, QEMU's own message, ...), keeping its console log.  Returns -1
 * so callers can `return vb_sandbox_died(sb, err);`. */
int vb_sandbox_died(vb_sandbox *sb, vb_error *err);

/* Write (rundir)/info.json (0600) for `voidbox ps` (src/sandbox/vms.h):
 * id, name, owner pid, accel, start time.  Best effort. */
void vb_sandbox_write_info(const vb_sandbox *sb);

/* ---- rootfs.c: the image root and read-only disks --------------------- */

/* Check the rootfs, root_* and disk_mounts fields of (cfg): files that are
 * ext4 images, sane absolute paths, bounded counts.  VB_E_USAGE if not. */
int vb_sandbox_root_check(const struct vb_sandbox_config *cfg, vb_error *err);
/* The VM's disks in order (the root image first) into (disks), and the
 * boot data's ROOT_* and DISK fields into (boot), pointing into (cfg) and
 * (bd).  Returns the number of disks. */
size_t vb_sandbox_root_disks(const struct vb_sandbox_config *cfg,
			     const char *disks[VB_SANDBOX_MAX_DISKS], struct vb_boot *boot,
			     struct vb_boot_disk bd[VB_SANDBOX_MAX_DISKS]);

/* Default reply timeout for short requests. */
#define VB_CALL_TIMEOUT_MS 30000

#endif
