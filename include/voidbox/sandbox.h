/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One micro-VM: boot it, run programs in it, move files in and out, tear it
 * down.  Every vb_sandbox is a fresh VM with its own kernel; nothing of it
 * survives vb_sandbox_free().
 *
 * Threading: a vb_sandbox may be used from several threads at once (requests
 * are multiplexed on one control connection).  vb_sandbox_free() must be
 * called by the thread that called vb_sandbox_start(): the VMM process is
 * tied to that thread's life (PR_SET_PDEATHSIG), so a crashed host never
 * leaves a VM behind.
 */
#ifndef VOIDBOX_SANDBOX_H
#define VOIDBOX_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "voidbox/error.h"

typedef struct vb_sandbox vb_sandbox;
typedef struct vb_exec vb_exec;

enum vb_backend {
	VB_BACKEND_AUTO = 0, /* the best available: qemu until the kvm VMM lands */
	VB_BACKEND_QEMU,
};

/* How the VM's CPU runs.  AUTO proves KVM before trusting it (see
 * vb_accel_resolve()); KVM insists on it (a VM that cannot run under KVM
 * fails with the reason); TCG is QEMU's software emulation, which works on
 * every host. */
enum vb_accel {
	VB_ACCEL_AUTO = 0,
	VB_ACCEL_KVM,
	VB_ACCEL_TCG,
};

struct vb_mount {
	const char *host;  /* existing host directory */
	const char *guest; /* absolute guest path */
	int rw;            /* 0: read-only (enforced by QEMU and the guest mount) */
	/* rw only: > 0 caps the guest's writes through this mount at this many
	 * MiB/s (QEMU's fsdev throttling), so that a host-side watcher of the
	 * directory's size can stop a writer within a known number of bytes;
	 * 0 = unthrottled. */
	unsigned write_mib_s;
};

/* A loopback forward: the guest agent listens on 127.0.0.1:(guest_port)
 * inside the VM, and every TCP connection a guest program makes to it
 * becomes a stream over the control channel (so it works without any
 * network).  On the host, (accept) is called once per connection on a
 * library thread with (fd): one end of a connected AF_UNIX stream
 * socketpair (blocking, close-on-exec), owned by the callee from then on,
 * also when it fails.  What the callee writes to (fd) reaches the guest
 * program, what that program sends is read from (fd); shutdown(fd,
 * SHUT_WR) half-closes towards the guest and EOF on (fd) means the guest
 * program half-closed; closing (fd) ends the connection.  Flow control is
 * end to end: a callee that stops reading stops the guest's writer, and
 * nothing else (exec output, file requests) waits for it.  (accept) must
 * return promptly (hand (fd) to a server loop, e.g. libmicrohttpd's
 * MHD_add_connection, or a thread): 0 = taken, -1 = refused (the guest's
 * connection is closed).  At most VB_SANDBOX_MAX_STREAMS connections are
 * served at once; more wait in the guest's listen queue. */
struct vb_forward {
	unsigned guest_port; /* 1..65535, distinct */
	int (*accept)(void *opaque, int fd);
	void *opaque;
};
#define VB_SANDBOX_MAX_FORWARDS 16u
#define VB_SANDBOX_MAX_STREAMS 16u

/* ---- user-mode networking (docs/network.md) ---------------------------
 *
 * With (enabled), the VM gets one virtio-net interface (10.0.2.15/24,
 * gateway 10.0.2.2, DNS 10.0.2.3) behind libslirp running in this process;
 * every frame the guest sends passes the policy below before libslirp sees
 * it.  IPv6 is not offered.  Without (enabled) the VM has no network device
 * at all. */
struct vb_net_cidr {
	int family;        /* AF_INET (AF_INET6 entries are accepted and have no effect:
			    * the guest has no IPv6) */
	uint8_t addr[16];  /* network byte order */
	unsigned prefix;
};

/* A host loopback listener forwarded to a guest TCP port. */
struct vb_net_publish {
	unsigned host_port;  /* 0 = a free port, picked at boot */
	unsigned guest_port; /* 1..65535 */
};

/* What the policy did, as it happens; called on the network's own thread
 * (concurrently with the caller's threads), pointers valid during the call. */
struct vb_net_event {
	enum { VB_NET_EV_DENIED = 1 } kind;
	const char *proto;    /* "tcp", "udp", "icmp", "ip" */
	const char *dst;      /* dotted IPv4 */
	unsigned port;        /* 0 when the protocol has none */
	const char *rule;     /* which rule refused it: "cloud-metadata", "host-loopback", ... */
	const char *hint;     /* how to allow it, or NULL */
	uint64_t suppressed;  /* refusals not reported since the last event (rate limit) */
};

struct vb_net_stats {
	uint64_t bytes_out, bytes_in;     /* frame bytes guest -> network, network -> guest */
	uint64_t frames_out, frames_in;
	uint64_t connections;             /* TCP connections the guest opened */
	uint64_t denied;                  /* frames refused by the policy */
	uint64_t malformed;               /* frames dropped unread: unparsable, IPv6,
					   * other ethertypes */
};

#define VB_NET_MAX_PUBLISH 16u
#define VB_NET_MAX_CONNECTIONS 4096u

struct vb_network {
	int enabled;
	const struct vb_net_cidr *deny;  /* added to the built-in denies */
	size_t n_deny;
	const struct vb_net_cidr *allow; /* with allow_set: default deny, these (and DNS) allowed */
	size_t n_allow;
	int allow_set;
	/* Domain mode: names ("api.github.com", "*.pypi.org") the guest may
	 * resolve and connect to (default-deny, as with allow); VoidBox answers
	 * the guest's DNS itself, and a TLS connection must name an allowed
	 * name that resolved to its address.  At most 1024. */
	const char *const *allow_domains;
	size_t n_allow_domains;
	const unsigned *host_ports;      /* TCP ports of the host's loopback reachable at 10.0.2.2 */
	size_t n_host_ports;
	int allow_private;               /* RFC 1918 ranges reachable */
	unsigned max_connections;        /* concurrent TCP connections; 0 = 64 */
	unsigned connections_per_sec;    /* new TCP connections a second; 0 = 50 */
	const struct vb_net_publish *publish; /* at most VB_NET_MAX_PUBLISH */
	size_t n_publish;
	void (*on_event)(void *opaque, const struct vb_net_event *ev); /* may be NULL */
	void *opaque;
	/* Learn mode: what a policy could open (deny, allow, private ranges,
	 * the host's loopback over TCP) is let through and recorded instead of
	 * refused; what no policy opens (cloud metadata, ...) is still refused.
	 * vb_sandbox_net_learned() drafts the network_policy. */
	int learn;
};

/* A read-only ext4 disk image mounted at (path) in the guest (an OCI
 * skill): its /bin, /usr/bin and /usr/local/bin (those that exist) join
 * every exec's PATH. */
struct vb_disk_mount {
	const char *image; /* existing host file: an ext4 image */
	const char *path;  /* absolute guest path, not "/" */
};
/* Disks of one VM, the root disk included (each takes a virtio transport,
 * as a mount does). */
#define VB_SANDBOX_MAX_DISKS 4u

struct vb_sandbox_config {
	enum vb_backend backend;
	enum vb_accel accel;  /* AUTO: $VOIDBOX_ACCEL if set, else the proven choice */
	unsigned memory_mib; /* 0 = 1024 (as a spec's sandbox.memory_mb) */
	unsigned vcpus;      /* 0 = 1 */
	const char *kernel;    /* NULL = the built guest kernel from the cache */
	const char *initramfs; /* NULL = the built initramfs from the cache */
	/* A guest image's own initramfs (sandbox.guest_image, src/oci/guestimg.h),
	 * or NULL: unpacked first, then (initramfs) and the per-VM boot data
	 * over it, so VoidBox's agent is /init (PID 1) and VoidBox's files
	 * replace the guest image's at the same paths.  Meant with (kernel). */
	const char *guest_initramfs;
	const struct vb_mount *mounts;
	size_t n_mounts;
	const char *const *allow; /* program basenames; NULL = all allowed */
	size_t n_allow;
	uint64_t rlimit_nofile, rlimit_nproc, rlimit_fsize; /* 0 = guest defaults */
	unsigned boot_timeout_ms; /* 0 = 60 s under emulation, 15 s with hw accel */
	const char *name;         /* for logs and the VM id; may be NULL */
	int cancel_fd; /* > 0: readable aborts the boot (VB_E_CANCELLED); 0 = none */
	const struct vb_forward *forwards; /* copied; at most VB_SANDBOX_MAX_FORWARDS */
	size_t n_forwards;
	struct vb_network network; /* copied */
	/* The image root (docs/oci.md, "In the VM").  (rootfs): NULL = the
	 * initramfs is the root; else a read-only ext4 image that becomes the
	 * guest's / under a tmpfs overlay (writes anywhere succeed and vanish
	 * with the VM; the image file is never written), the agent still PID 1
	 * from the initramfs.  The root_* defaults need (rootfs). */
	const char *rootfs;
	const char *const *root_env; /* "K=V" under every exec's own (image Env) */
	size_t n_root_env;
	const char *root_workdir;    /* absolute; default cwd of execs (image WorkingDir) */
	const char *root_user;       /* default user of execs (image User): name, uid or
				      * uid:gid, looked up in the image's /etc/passwd */
	/* The image's reference, or NULL: what a snapshot of this VM records
	 * and its messages name (docs/snapshots.md, "Image roots and disks");
	 * the root disk's identity is the file's, not this name. */
	const char *root_ref;
	const struct vb_disk_mount *disk_mounts; /* read-only; with rootfs at most
						  * VB_SANDBOX_MAX_DISKS - 1 */
	size_t n_disk_mounts;
	/* Snapshots (docs/snapshots.md): an existing empty directory where
	 * vb_sandbox_save() will write this VM, on the file system of the
	 * snapshot store (it is renamed into the store; `voidbox snapshot
	 * create` makes one inside it).  Its RAM lives in a file there from
	 * boot, and the guest agent keeps the session secret so that a
	 * restored copy can be reached.  Such a VM has no guest image or
	 * forwards (VB_E_USAGE); an image root and disks it may have.  Its
	 * mounts (at most 4, one fewer per disk) and network are set up after
	 * boot as a restore's are, and undone in the guest and on the host
	 * before vb_sandbox_save() saves it, so the snapshot has neither. */
	const char *save_dir;
};

/* ---- accelerator -------------------------------------------------------- */

/* "auto", "kvm", "tcg" (any case) to (out); -1 for anything else. */
int vb_accel_parse(const char *s, enum vb_accel *out);
const char *vb_accel_name(enum vb_accel a);

struct vb_accel_info {
	enum vb_accel wanted;  /* what was asked, after $VOIDBOX_ACCEL */
	char accel[8];         /* what VMs will use: "kvm" or "tcg" */
	/* Why KVM is not used when it was not asked away (no /dev/kvm, no
	 * permission, KVM cannot run the guest, ...); "" when accel is kvm or
	 * tcg was asked for. */
	char reason[512];
	int probed;            /* this call booted a probe VM to decide */
	int fell_back;         /* /dev/kvm is there but cannot be used: worth telling */
	int64_t probe_ms;      /* how long the probe took (0: no probe here) */
	char log[512];         /* a failed probe's log (QEMU's stderr + console), or "" */
};

/* Decide the accelerator for (want); AUTO first takes $VOIDBOX_ACCEL.
 * AUTO uses KVM only once a probe VM (the built guest kernel, or (kernel)
 * when not NULL) has booted under it on this host; the verdict is cached per
 * host boot, QEMU binary and kernel, so only the first VM after a reboot
 * pays (a KVM boot: well under a second; a hanging KVM is cut off after
 * 3 s).  KVM fails (VB_E_RUNTIME, naming the cause and `--accel tcg`) when
 * /dev/kvm cannot be opened or the cached verdict says KVM cannot run the
 * guest.  TCG never probes.  (flags): VB_ACCEL_NO_WRITE decides without
 * writing anything (no verdict cached, no initramfs built into the cache),
 * as `voidbox doctor` does. */
#define VB_ACCEL_NO_WRITE 1u
int vb_accel_resolve(enum vb_accel want, const char *kernel, unsigned flags,
		     struct vb_accel_info *info, vb_error *err);

/* The one line worth telling the user about (info) (no newline), when it was
 * just decided by a probe that found KVM unable to run the guest: what was
 * tried, why it failed, how to choose.  Returns 1 when (buf) was filled,
 * 0 when there is nothing to say. */
int vb_accel_notice(const struct vb_accel_info *info, char *buf, size_t len);

/* Boot a VM and authenticate its control channel.  (cfg) and everything it
 * points to is copied.  Returns NULL and fills (err) on failure (the VM, if
 * it got as far as starting, is already torn down). */
vb_sandbox *vb_sandbox_start(const struct vb_sandbox_config *cfg, vb_error *err);

/* Save a VM started with (save_dir) into the snapshot store: unmount its
 * mounts and take its network down (a guest refusing fails the save),
 * flush the guest's file systems (`sync`, as an exec that ends before the pause; the
 * caller has no exec in flight), pause the VM, write its device state and
 * secret beside its RAM in save_dir, and store that directory under its id
 * (written to (id), 64 hex digits) with (name) (may be NULL) and what it
 * came from (docs/snapshots.md).  The VM stays paused: only
 * vb_sandbox_free() should follow.  On failure save_dir is the caller's to
 * remove. */
int vb_sandbox_save(vb_sandbox *sb, const char *name, char id[65], vb_error *err);

/* Boot from the stored snapshot (ref) (a name or an id prefix) instead of
 * cold: its files checked against their digests, its kernel, initramfs
 * and VM configuration against (cfg)'s (VB_E_USAGE naming what differs;
 * VB_E_RUNTIME for one not in the store or damaged), then a fresh
 * identity given to the guest (vb_sandbox_rekey) before this returns.
 * (cfg) must ask for what a snapshot can hold (the image root and disks
 * it was taken with, the very same files; at most 4 mounts, one fewer per
 * disk; memory and vCPUs as saved).  Mounts,
 * loopback forwards and the network are set up after the re-key
 * (docs/snapshots.md, "Mounts", "Forwards", "Network").
 * vb_sandbox_boot_ms() is then the whole restore: checks, QEMU loading
 * the state, the channel and the re-key. */
vb_sandbox *vb_sandbox_restore(const struct vb_sandbox_config *cfg, const char *ref,
			       vb_error *err);
/* Warm by default (docs/snapshots.md): automatic snapshots are named
 * VB_WARM_PREFIX + 18 hex digits of their kernel, initramfs and
 * configuration. */
#define VB_WARM_PREFIX "warm-"
#define VB_WARM_NAME_MAX 40
struct vb_warm {
	char name[VB_WARM_NAME_MAX]; /* the warm snapshot's name, or "" */
	int restored;                /* the sandbox came from it */
	int missing;                 /* there is none (any more): worth making one */
	char notice[1200];           /* "" or one line: why it booted cold instead */
};
/* Can (cfg) start from a warm snapshot?  Not with an allowlist, rlimits,
 * disks other than an image root, or more mounts than a snapshot has
 * devices (boot data and devices a restore cannot change). */
int vb_sandbox_warm_eligible(const struct vb_sandbox_config *cfg);
/* The warm snapshot's name for (cfg) (hashes kernel and initramfs). */
int vb_sandbox_warm_name(const struct vb_sandbox_config *cfg, char *name, size_t len,
			 vb_error *err);
/* vb_sandbox_start(), from (cfg)'s warm snapshot when it is eligible and
 * there is one.  A restore that fails for any reason but a cancel deletes
 * that snapshot and boots cold (w->notice says why); (w) tells what
 * happened.  Errors are those of the cold boot. */
vb_sandbox *vb_sandbox_start_warm(const struct vb_sandbox_config *cfg, struct vb_warm *w,
				  vb_error *err);
/* Delete the warm snapshots but (keep) and the (max_others) newest others. */
int vb_sandbox_warm_evict(const char *keep, unsigned max_others, vb_error *err);

/* The snapshot a sandbox was restored from (its full id), or NULL. */
const char *vb_sandbox_snapshot_id(const vb_sandbox *sb);

/* Tear down: the VMM is killed and reaped, the runtime directory removed.
 * Safe with NULL.  Any vb_exec of this sandbox must be freed first.  The
 * forwards' streams end first (their host ends read EOF, writes fail);
 * this waits for the library threads serving them, so an (accept) callback
 * that does not return blocks it. */
void vb_sandbox_free(vb_sandbox *sb);

/* Give the running VM a fresh identity (docs/protocol.md, "Re-keying"):
 * what a snapshot restore calls before anything runs in the copy.  One
 * REKEY request inside the authenticated session carries a new secret and
 * 64 bytes of fresh host entropy (getrandom), credited to the guest
 * kernel's RNG, and the host's wall-clock time, which becomes the guest's
 * CLOCK_REALTIME; it also puts the agent in one-host mode, so after the
 * acknowledgement no HELLO authenticates any more — neither the old secret
 * (which anyone holding a snapshot knows) nor the new one, which both
 * sides wipe (the host keeps no secret of a running VM).  Execs, files and
 * streams of the session go on.  The sandbox's id (vb_sandbox_id, events,
 * `voidbox ps`) is not changed: a restored VM is a new vb_sandbox with its
 * own id.  On failure the channel is shut down (nothing more runs in this
 * VM, which may still hold the old identity): free the sandbox. */
int vb_sandbox_rekey(vb_sandbox *sb, vb_error *err);

/* Ask the guest to power off, wait up to (timeout_ms) for the VMM to exit. */
int vb_sandbox_shutdown(vb_sandbox *sb, unsigned timeout_ms, vb_error *err);

/* Send (sig) to the VMM process: SIGSTOP freezes the whole VM at once (it
 * writes nothing more to its mounts; only vb_sandbox_free() or SIGCONT
 * should follow), SIGKILL ends it (the owner's calls then fail as if the VM
 * died).  Unlike every other call, safe from any thread, until
 * vb_sandbox_free(). */
int vb_sandbox_signal(vb_sandbox *sb, int sig, vb_error *err);

/* How many bytes the VMM process has handed to write calls so far (its
 * mounts, sockets and logs together: /proc/PID/io's wchar), into *bytes.
 * A cheap, never decreasing upper bound on what the guest wrote through
 * its mounts.  Safe from any thread, like vb_sandbox_signal(). */
int vb_sandbox_vmm_written(vb_sandbox *sb, uint64_t *bytes, vb_error *err);

/* Facts about the running VM (owned by the sandbox). */
const char *vb_sandbox_id(const vb_sandbox *sb);
const char *vb_sandbox_accel(const vb_sandbox *sb);     /* "kvm", "tcg", ... */
const char *vb_sandbox_isolation(const vb_sandbox *sb); /* "hardware" or "emulated" */
/* How the accelerator was chosen for this VM (owned by the sandbox). */
const struct vb_accel_info *vb_sandbox_accel_info(const vb_sandbox *sb);
const char *vb_sandbox_kernel_release(const vb_sandbox *sb);
const char *vb_sandbox_boot_id(const vb_sandbox *sb);
int64_t vb_sandbox_boot_ms(const vb_sandbox *sb); /* VMM start to authenticated channel */

/* The network's counters so far (zeros without a network).  Safe from any
 * thread, like vb_sandbox_signal(). */
void vb_sandbox_net_stats(vb_sandbox *sb, struct vb_net_stats *st);
/* Learn mode's draft so far: a YAML block "network_policy:" indented by
 * (indent) spaces that would let what the guest reached through, and
 * nothing else.  Caller frees; NULL with (err) when the VM has no network
 * in learn mode. */
char *vb_sandbox_net_learned(vb_sandbox *sb, unsigned indent, vb_error *err);
/* The host port the (i)th publish entry listens on (127.0.0.1), 0 if none. */
unsigned vb_sandbox_published_port(const vb_sandbox *sb, size_t i);

/* ---- exec -------------------------------------------------------------- */

struct vb_exec_params {
	const char *const *argv; /* NULL-terminated; argv[0] found via PATH */
	const char *const *env;  /* NULL-terminated "K=V", added to the guest default */
	const char *cwd;         /* NULL = /workspace */
	int as_root;             /* 1 = root, whatever (user) and the VM's default say */
	/* NULL = the VM's default user: the image's User (root_user) when the
	 * sandbox has one, else uid/gid 1000 "sandbox".  Else a name, uid or
	 * uid:gid, looked up in the guest's /etc/passwd ("sandbox" is always
	 * there). */
	const char *user;
	unsigned timeout_ms;     /* 0 = none; the whole process group is killed */
	int want_stdin;          /* 0 = /dev/null (with pty: input ends at once) */
	/* Run on a pseudo-terminal in the guest: the program is a session
	 * leader with the terminal as stdin/stdout/stderr and its controlling
	 * terminal; TERM defaults to xterm-256color.  All output comes as
	 * VB_EXEC_STDOUT (the terminal's bytes, echo and \r\n included), stdin
	 * bytes are typed into the terminal (^C is a byte: the guest's line
	 * discipline turns it into SIGINT), and vb_exec_close_stdin() types the
	 * terminal's EOF character once the program waits for input. */
	int pty;
	unsigned rows, cols;     /* initial window size, 1..VB_EXEC_TERM_MAX; 0 = 24 x 80 */
};
#define VB_EXEC_TERM_MAX 10000u /* largest terminal rows and columns */

/* Start a process.  Errors: VB_E_NOTFOUND (no such program), VB_E_NOEXEC (not
 * executable or refused by the allowlist), VB_E_VMDIED, VB_E_RUNTIME. */
vb_exec *vb_exec_start(vb_sandbox *sb, const struct vb_exec_params *p, vb_error *err);

enum vb_exec_event_kind {
	VB_EXEC_STDOUT = 1,
	VB_EXEC_STDERR = 2,
	VB_EXEC_EXIT = 3,
};

struct vb_exec_event {
	enum vb_exec_event_kind kind;
	const uint8_t *data; /* STDOUT/STDERR; valid until the next call */
	size_t len;
	int exit_code;  /* EXIT: 0..255, or 128+signal */
	int signal;     /* EXIT: the signal that killed it, 0 if none */
	int timed_out;  /* EXIT: killed for its timeout */
};

/* Wait up to (timeout_ms) (-1 = forever) for the next event.  Returns 1 with
 * (ev) filled, 0 on timeout, -1 on error (e.g. VB_E_VMDIED; a guest that
 * broke the protocol is one: "the guest broke the protocol (...)").  After
 * EXIT no more events come.  Consuming output returns flow-control credit to
 * the guest, so a slow reader slows the guest program down instead of
 * buffering.  While events keep coming it also returns 0 at least every
 * 100 ms (vb_exec_fd() then stays readable), so a loop that drains events
 * until 0 gets back to its signals and deadlines whatever the guest sends. */
int vb_exec_next(vb_exec *ex, struct vb_exec_event *ev, int timeout_ms, vb_error *err);

/* A file descriptor that is readable while vb_exec_next() would not block
 * (for poll loops).  Owned by the exec. */
int vb_exec_fd(const vb_exec *ex);

/* Send stdin bytes (blocks while the guest's stdin window is full, up to
 * (timeout_ms); -1 = forever).  Returns bytes accepted (may be < n when the
 * window is short), or -1. */
ssize_t vb_exec_write(vb_exec *ex, const void *buf, size_t n, int timeout_ms, vb_error *err);
/* Bytes of stdin the guest will accept now without blocking. */
size_t vb_exec_stdin_room(const vb_exec *ex);
int vb_exec_close_stdin(vb_exec *ex, vb_error *err);
/* Send a signal to the process group. */
int vb_exec_signal(vb_exec *ex, int sig, vb_error *err);
/* Resize the terminal of a pty exec (rows, cols in 1..VB_EXEC_TERM_MAX); the guest
 * kernel sends SIGWINCH to the terminal's foreground process group.
 * VB_E_USAGE without a pty or for a size out of range; a no-op once the
 * program has exited. */
int vb_exec_resize(vb_exec *ex, unsigned rows, unsigned cols, vb_error *err);
pid_t vb_exec_pid(const vb_exec *ex);
void vb_exec_free(vb_exec *ex);

/* Run to completion, collecting output (each stream capped at (max_output)
 * bytes; the rest is counted but dropped).  Caller frees *out / *errout. */
struct vb_exec_result {
	uint8_t *out, *errout;
	size_t out_len, err_len;
	int exit_code, signal, timed_out;
};
int vb_exec_run(vb_sandbox *sb, const struct vb_exec_params *p, const void *stdin_data,
		size_t stdin_len, size_t max_output, struct vb_exec_result *res, vb_error *err);
void vb_exec_result_free(struct vb_exec_result *res);

/* ---- files (paths confined to the guest's allowed roots) -------------- */

struct vb_file_stat {
	uint64_t size, mode, uid, gid;
	int64_t mtime;
};

/* Write (len) bytes, replacing the file.  mode 0 = 0644; owner = sandbox
 * user unless (as_root). */
int vb_file_write(vb_sandbox *sb, const char *path, const void *data, size_t len,
		  unsigned mode, int as_root, vb_error *err);
/* Read a whole file of at most (max) bytes into a new buffer. */
int vb_file_read(vb_sandbox *sb, const char *path, size_t max, uint8_t **data, size_t *len,
		 vb_error *err);
/* Write what descriptor (fd) holds from its offset to its end into
 * (path), replacing the file, holding one 1 MiB buffer whatever the size. */
int vb_file_write_fd(vb_sandbox *sb, const char *path, int fd, unsigned mode, int as_root,
		     vb_error *err);
/* Append the guest file (path) to descriptor (fd), at most (max) bytes,
 * streaming (one 1 MiB reply at a time).  Returns 0 when all of it was
 * copied, 1 when the file holds more than (max) (the first (max) bytes were
 * copied), -1 with (err) set; (*len) is the bytes copied in every case. */
int vb_file_read_fd(vb_sandbox *sb, const char *path, uint64_t max, int fd, uint64_t *len,
		    vb_error *err);
int vb_file_stat(vb_sandbox *sb, const char *path, struct vb_file_stat *st, vb_error *err);
int vb_file_mkdir(vb_sandbox *sb, const char *path, unsigned mode, int as_root, vb_error *err);

/* ---- telemetry --------------------------------------------------------- */

struct vb_sample {
	uint64_t cpu_user, cpu_system, cpu_idle; /* clock ticks */
	uint64_t mem_total_kb, mem_avail_kb, uptime_ms, nprocs;
};
int vb_sandbox_sample(vb_sandbox *sb, struct vb_sample *s, vb_error *err);

#endif
