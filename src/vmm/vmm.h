/* SPDX-License-Identifier: Apache-2.0 */
/*
 * VM backends behind one ops table.  A backend boots a kernel + initramfs
 * with the devices VoidBox needs (control channel, 9p mounts, rng, console
 * log) and runs it as a child process that can be waited on with a pidfd.
 * `qemu` drives qemu-system-x86_64 -M microvm; the native `kvm` VMM will sit
 * beside it.
 */
#ifndef VB_VMM_H
#define VB_VMM_H

#include <sys/types.h>

#include "vmm/logs.h"
#include "voidbox/error.h"
#include "voidbox/sandbox.h"

struct vb_vmm_spec {
	const char *accel; /* "kvm" or "tcg": decided by the caller (vmm/accel.h) */
	const char *kernel;
	int initrd_fd; /* readable fd of the complete initramfs */
	const char *cmdline;
	unsigned memory_mib, vcpus;
	const char *ctl_socket;  /* unix socket the VMM connects to: the control port;
				  * NULL = no control port (the accelerator probe) */
	const struct vb_mount *mounts; /* exported with tags "vbm0", "vbm1", ... */
	size_t n_mounts;
	/* > 0: a stream socket carrying the guest's Ethernet frames, each behind
	 * a 4-byte big-endian length (net/net.h); the VM gets a virtio-net
	 * device on it.  0 = no network device at all. */
	int net_fd;
	/* Read-only raw disk images (virtio-blk); disk i carries the serial
	 * VB_DISK_SERIAL"<i>", by which the guest finds it. */
	const char *const *disks;
	size_t n_disks;
	/* Snapshots (docs/snapshots.md).  (ram_file): guest RAM lives in this
	 * file (a memory-backend-file), shared (ram_shared: written through,
	 * the snapshot's memory) or mapped privately (copy-on-write: a restore
	 * never writes it).  (qmp_socket): QEMU's monitor listens there.
	 * (incoming_fd) > 0: a readable fd of a saved device state (0, as
	 * net_fd's, is none: a spec's unset fields mean a plain boot); the VM
	 * starts paused, loads it when restore() says so, and boots nothing
	 * (no kernel, initrd or command line: the guest booted long ago, and
	 * its RAM is the snapshot's). */
	const char *ram_file;
	int ram_shared;
	const char *qmp_socket;
	int incoming_fd;
};

struct vb_vmm {
	const struct vb_vmm_ops *ops;
	pid_t pid;
	int pidfd;      /* readable once the VMM process exited */
	int reaped;     /* status below is valid */
	int status;     /* waitpid status */
	char accel[16]; /* "kvm", "tcg", "hvf" */
	struct vb_vmm_logs logs; /* the serial console and the VMM's stderr, bounded */
	char *qmp_socket;        /* the spec's, or NULL */
};

struct vb_vmm_ops {
	const char *name;
	/* Can this backend run here?  When (desc) is not NULL, also a one-line
	 * description (version) of the VMM, which may take a process start;
	 * -1 with (err) if not. */
	int (*probe)(char *desc, size_t desc_len, vb_error *err);
	/* Which VMM binary would run, as a cache key ("path size mtime"):
	 * a verdict about it is void once it changes.  -1 if not found. */
	int (*identity)(char *buf, size_t len);
	/* Start the VM process.  The caller owns the returned vmm. */
	struct vb_vmm *(*start)(const struct vb_vmm_spec *spec, vb_error *err);
	/* Pause (vm) and write its device state to the new file (state_path);
	 * guest RAM is the spec's shared (ram_file) and is not copied.  The VM
	 * stays paused.  NULL in a backend without snapshots. */
	int (*save)(struct vb_vmm *vm, const char *state_path, int timeout_ms, vb_error *err);
	/* Load the state a VM was started with (incoming_fd) and run it. */
	int (*restore)(struct vb_vmm *vm, int timeout_ms, vb_error *err);
};

extern const struct vb_vmm_ops vb_vmm_qemu_ops;

/* The backend for (b): AUTO picks the first that probes fine. */
const struct vb_vmm_ops *vb_vmm_pick(enum vb_backend b, vb_error *err);

/* Wait up to (timeout_ms) for the VMM to exit (0 = just check).  Returns 1
 * once reaped, 0 if still running. */
int vb_vmm_wait(struct vb_vmm *vm, int timeout_ms);
/* What the guest printed on its console (VB_LOG_CONSOLE) or the VMM on its
 * stderr (VB_LOG_VMM): the first and last bytes, bounded whatever the guest
 * does (vmm/logs.h).  Waits up to (wait_ms) for the stream to end.  Caller
 * frees; NULL on allocation failure. */
char *vb_vmm_output(struct vb_vmm *vm, int which, int wait_ms, size_t *len);
/* Bytes the console or stderr carried so far. */
uint64_t vb_vmm_output_bytes(struct vb_vmm *vm, int which);
/* Write the NULL-terminated (parts) one after another to
 * ${XDG_STATE_HOME}/voidbox/vm-logs/(name) (0600), where the user can read
 * them after the VM is gone (`voidbox prune` removes them).  Fills (path)
 * and returns 0, or -1 when it could not be written (nothing to name). */
int vb_vmm_keep_log(const char *name, const char *const *parts, char *path, size_t path_len);
/* SIGKILL the VMM if it is still running, reap it, free.  Safe with NULL. */
void vb_vmm_destroy(struct vb_vmm *vm);

#endif
