/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent.h — shared declarations of the VoidBox guest agent.
 *
 * The agent is PID 1 of every VM (static, musl).  It boots the guest
 * (boot.c), reaps every process (reaper.c), and serves the control protocol
 * of proto/vb_proto.h on the virtio-serial port and, when present, on vsock
 * (conn.c).  Requests run off the connection's reader thread: every EXEC on
 * its own thread (exec.c), file operations (files.c) and SAMPLE (sample.c)
 * on a short-lived thread each, bounded per connection.
 *
 * Run as anything but PID 1 it is a plain process serving one transport
 * given on the command line ("process mode", used by the host's tests and
 * the `process` backend): see main.c.
 */
#ifndef VB_AGENT_H
#define VB_AGENT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vb_proto.h"

#define AGENT_LOG_PREFIX "voidbox-agent: "
#define AGENT_SANDBOX_UID 1000u
#define AGENT_SANDBOX_GID 1000u
#define AGENT_MAX_INFLIGHT 64u              /* requests in flight per connection */
#define AGENT_MAX_INFLIGHT_BYTES VB_FRAME_MAX /* payload bytes held by them */
#define AGENT_PREAUTH_MAX 4096u             /* largest frame before the handshake */
#define AGENT_THREAD_STACK (256u << 10)
#define AGENT_DEFAULT_NOFILE 1024u
#define AGENT_DEFAULT_NPROC 512u
#define AGENT_DEFAULT_FSIZE (100ull << 20)
#define AGENT_DRAIN_MS 2000u                /* output drain after exit, see exec.c */
#define AGENT_HUP_GRACE_MS 1000u            /* a reconnect's port-open event, see conn.c */
#define AGENT_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
/* Where the host mounts the agent binaries' support files: the same as
 * src/image/image.h's VB_IMAGE_AGENT_SUPPORT. */
#define AGENT_SUPPORT_DIR "/opt/voidbox/support"

/* A user of the root's /etc/passwd, resolved. */
struct agent_user {
	uid_t uid;
	gid_t gid;
	char name[64];
	char home[256];
};

/* ---- global state (set up once at start, read-only afterwards) ---------- */

struct agent {
	int pid1;            /* PID 1 of a VM (else process mode) */
	int is_root;         /* euid 0: may switch users and chown */
	struct vb_boot boot; /* decoded boot data; holds the session secret */
	atomic_int secret_gone; /* boot.one_host: wiped after the first handshake */
	/* boot.secret, boot.one_host and secret_gone change after start (the
	 * one-host handshake, REKEY): read and write them only in conn.c,
	 * under its secret lock */
	char **roots;        /* allowed roots of file operations, canonical */
	size_t n_roots;      /* roots[0] is also the default cwd of an exec */
	int has_def_user;    /* the image's User, resolved at boot (root.c) */
	struct agent_user def_user;
	char *disk_path;     /* ":dir:dir": the disks' bin dirs, appended to PATH; or NULL */
};
extern struct agent g_agent;

/* ---- util.c -------------------------------------------------------------- */

/* Log one line "voidbox-agent: ..." to the console (PID 1) or stderr.  Never
 * blocks: the console is opened O_NONBLOCK and a line that does not fit is
 * dropped.  Never pass the secret or request data that may carry secrets. */
void agent_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Open the log destination: (path) or NULL for stderr. */
void agent_log_open(const char *path);
/* Log, then (PID 1) sync and reboot, which makes QEMU exit; in process mode
 * exit(70).  PID 1 never returns from main any other way. */
_Noreturn void agent_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Power the VM off (PID 1) or exit (process mode). */
_Noreturn void agent_poweroff(void);

uint64_t agent_now_ms(void); /* CLOCK_MONOTONIC */
void agent_sleep_ms(unsigned ms);
/* Map an errno value to a VB_ERR_* code. */
int agent_errno_to_vb(int e);
/* Read a whole small file (at most max bytes) into a NUL-terminated buffer
 * (caller frees).  Returns the length or -1 with errno set. */
ssize_t agent_read_small(const char *path, size_t max, char **out);
/* Write/read all of a buffer, retrying on EINTR. */
int agent_write_all(int fd, const void *p, size_t n);
/* Start a detached thread with the agent's stack size; returns 0 or errno. */
int agent_thread(void *(*fn)(void *), void *arg);
/* Write (val) to an eventfd; errors are harmless (the counter is nonzero). */
void agent_wake(int efd);

/* ---- boot.c -------------------------------------------------------------- */

/* PID 1: mount /proc, /sys, /dev, /dev/pts, /tmp, /run; device nodes; users;
 * /workspace and /home/sandbox.  Failures of essential steps are fatal. */
void boot_system(void);
/* Read and decode the boot frame at (path) into (out).  With (consume) the
 * file is unlinked (and its directory removed).  The raw bytes are wiped.
 * Returns 0, or -1 after logging why. */
int boot_load(const char *path, int consume, struct vb_boot *out);
/* PID 1: hostname and the 9p mounts of (boot).  A failed mount is fatal. */
void boot_apply(const struct vb_boot *boot);
/* Mount the 9p export (m) (a checked path, mkdir -p, the fallback options,
 * an rw root given to the stage's user).  Returns 0, or an errno with
 * (why) filled. */
int boot_mount_9p(const struct vb_boot_mount *m, char *why, size_t len);
/* Configure eth0 on the user-mode network's fixed addressing (VB_NET_*:
 * address, netmask, up, default route, /etc/resolv.conf).  Returns 0, or
 * an errno with (why) naming the step. */
int boot_network_up(char *why, size_t len);
/* Undo boot_network_up: the default route and the address deleted, eth0
 * down (its neighbours forgotten), /etc/resolv.conf and IPv6 as they were
 * before it.  Returns 0, or an errno with (why) naming the step. */
int boot_network_down(char *why, size_t len);
/* Add (path) to g_agent.roots (realpath'd with canonicalize).  Not
 * thread-safe against file operations: only at boot or with no request in
 * flight (mount.c).  Returns 0 or -1. */
int boot_add_root(const char *path, int canonicalize);
/* Set g_agent.roots: from (spec) (colon-separated, process mode) or the
 * defaults, plus every mount path of the boot data.  Returns 0 or -1. */
int boot_set_roots(const char *spec);
/* Remove (path), as boot_add_root added it, from g_agent.roots (same
 * threading rule). */
void boot_remove_root(const char *path);

/* Who owns the places VoidBox prepares for the stage to write (/workspace,
 * the roots of rw 9p mounts, a created working directory): the image's
 * user when it has a non-root one, else the sandbox user. */
void boot_work_owner(uid_t *uid, gid_t *gid);
/* mkdir -p of root-owned directories (PID 1, before anything else runs). */
int boot_mkdir_p(const char *path, mode_t mode);
/* /root, /home/sandbox and /workspace with their owners. */
void boot_user_dirs(void);

/* ---- root.c -------------------------------------------------------------- */

/* PID 1, boot data with ROOT_DISK: make the disk (ext4, read-only) under a
 * tmpfs overlay the root, moving /dev, /proc, /sys, /tmp and /run into it.
 * Fatal on failure (the host reports the agent's line). */
void root_switch(const struct vb_boot *boot);
/* PID 1, after root_switch: users and directories VoidBox needs in the
 * image's root, the links agent binaries need, the default user (fatal if
 * the image's User is not found) and working directory. */
void root_setup(const struct vb_boot *boot);
/* PID 1: mount every DISK read-only at its path; note their bin dirs. */
void root_disks(const struct vb_boot *boot);
/* Resolve (spec) ("name", "uid", "uid:gid", "name:group") in /etc/passwd
 * and /etc/group.  Returns 0, or -1 with (why) filled. */
int user_resolve(const char *spec, struct agent_user *u, char *why, size_t len);
/* Name and home of (uid) for the environment. */
void user_describe(uid_t uid, gid_t gid, struct agent_user *u);

/* ---- reaper.c ------------------------------------------------------------ */

/* A child the reaper must report.  Embedded in its owner; (on_exit) runs on
 * the reaper thread with the table lock held and MUST reap (pid) with
 * reaper_reap() — the child is still a zombie when it is called, so its pid
 * (and process group id) cannot have been reused yet. */
struct reap_entry {
	pid_t pid;
	void (*on_exit)(struct reap_entry *e);
	struct reap_entry *next;
};

void reaper_start(void);
/* Hold across fork() + reaper_add() so the reaper can never see the exit of
 * a child before its entry is in the table. */
void reaper_lock(void);
void reaper_unlock(void);
void reaper_add(struct reap_entry *e); /* with the lock held */
/* Reap (pid) (a zombie); returns its wait status. */
int reaper_reap(pid_t pid);

/* ---- conn.c -------------------------------------------------------------- */

/* A transport endpoint: the virtio-serial port (lives forever, sessions come
 * and go on it) or one stream connection (vsock, unix socket, pipe). */
enum chan_kind { CHAN_STREAM, CHAN_SERIAL };

struct chan {
	int rfd, wfd;
	enum chan_kind kind;
	pthread_mutex_t wlock; /* whole frames go out one at a time */
	/* bytes to read again before the fd (reader thread only): where the
	 * serial port resynchronised on a HELLO */
	uint8_t *pb;
	size_t pb_len, pb_off;
};

struct exec;

/* One session: from the host's HELLO to its disconnect (or a protocol
 * error).  Reference counted: the reader, every exec and every job hold one. */
struct conn {
	struct chan *chan;
	atomic_int dead;      /* no more writes; checked under chan->wlock */
	pthread_mutex_t lock; /* everything below */
	int refs;
	int closing;          /* the reader ended the session */
	unsigned inflight;    /* requests running (execs included) */
	size_t inflight_bytes;
	struct exec *execs;   /* running execs, by request id */
	struct fwd *fwd;      /* the loopback forwards' thread (reader thread only) */
};

/* Serve a stream connection until EOF or a protocol error; closes the fds
 * (rfd == wfd allowed).  Runs on the calling thread. */
void conn_serve_stream(int rfd, int wfd);
/* Serve the virtio-serial port (fd) forever, session after session. */
_Noreturn void conn_serve_serial(int fd);

void conn_ref(struct conn *c);
void conn_unref(struct conn *c);
/* Send a complete frame (built with vb_msg_begin ... vb_msg_end); returns 0
 * or -1 if the session is gone (the frame is then dropped).  Thread-safe. */
int conn_send(struct conn *c, struct vb_buf *frame);
/* Build and send ERROR {CODE, MESSAGE}. */
void conn_send_error(struct conn *c, uint32_t id, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A request finished: release its in-flight slot and (bytes). */
void conn_request_done(struct conn *c, size_t bytes);
/* The kernel's boot id, trailing newline cut (*out: caller frees); its
 * length, or <= 0 with (*out) maybe NULL.  The first read makes it. */
ssize_t agent_read_boot_id(char **out);
/* REKEY: make (secret) the session secret, the old one wiped, in one step
 * against every handshake and hunt; with (one_host) (or a one-host boot)
 * the new one is wiped too and no HELLO authenticates any more. */
void conn_secret_replace(const uint8_t secret[VB_SECRET_LEN], int one_host);

/* ---- rekey.c ------------------------------------------------------------- */

/* Handle REKEY on the reader thread of an authenticated session (so no
 * later frame is served under the old identity): entropy, clock, hostname,
 * then the secret, then OK (ENTROPY_BITS); or ERROR, the secret unchanged.
 * (payload) stays the caller's; it wipes it. */
void rekey_handle(struct conn *c, const struct vb_hdr *h, const uint8_t *payload);

/* ---- mount.c ------------------------------------------------------------- */

/* Handle MOUNT on the reader thread of an authenticated session: the 9p
 * exports of a restored VM, mounted and added to the roots of file
 * operations; OK, or ERROR naming the first mount that failed (those
 * before it stay mounted).  Refused (BUSY) while a request of the session
 * is in flight, and in process mode. */
void mount_handle(struct conn *c, const struct vb_hdr *h, const uint8_t *payload);
/* Handle NET_UP likewise: the network of a restored VM (boot_network_up),
 * once; OK or ERROR.  Only as a VM's PID 1. */
void netup_handle(struct conn *c, const struct vb_hdr *h);
/* Handle NET_DOWN: undo NET_UP before a save (boot_network_down); OK, or
 * ERROR (INVAL when the network is not up).  Only as a VM's PID 1. */
void netdown_handle(struct conn *c, const struct vb_hdr *h);
/* Handle UNMOUNT: unmount every export MOUNT mounted (not lazily: a busy
 * one is ERROR BUSY naming it, those before it unmounted) and drop the
 * roots MOUNT added; OK.  Same rules as MOUNT. */
void unmount_handle(struct conn *c, const struct vb_hdr *h);
/* True if the session has no request in flight. */
int conn_idle(struct conn *c);

/* ---- exec.c -------------------------------------------------------------- */

/* Handle EXEC (id, payload): on success the exec thread owns a conn
 * reference and one in-flight slot (already counted by the caller) and the
 * call returns 0; otherwise it has replied ERROR and returns -1 (the caller
 * releases the slot). */
int exec_start(struct conn *c, uint32_t id, const uint8_t *payload, size_t len);
/* Route EXEC_ACK / EXEC_STDIN / EXEC_SIGNAL / EXEC_RESIZE to the exec (id).
 * Frames for an exec that has finished are ignored, and so are a SIGNAL
 * outside 1..64, an invalid size and a RESIZE of an exec without a PTY.
 * Returns 0, or -1 for a protocol violation (ACK without COUNT, stdin beyond
 * VB_STDIN_WINDOW): the caller sends ERROR PROTO and ends the session. */
int exec_control(struct conn *c, const struct vb_hdr *h, const uint8_t *payload);
/* The session ended: kill every exec of (c) and stop their output. */
void exec_cancel_all(struct conn *c);

/* ---- forward.c ------------------------------------------------------------ */

/* Listen on 127.0.0.1 for every forward of (boot) (once, at start). */
void forward_listen(const struct vb_boot *boot);
/* Handle FORWARD on the reader thread of an authenticated session: listen
 * on every port asked and serve them on (c); OK, or ERROR (nothing left
 * listening).  Refused (EXIST) once the VM has listeners. */
void forward_handle(struct conn *c, const struct vb_hdr *h, const uint8_t *payload);
/* An authenticated session begins: serve the listeners' connections as
 * streams on (c) (a thread holding a reference), if there are any. */
void forward_session_start(struct conn *c);
/* Route STREAM_DATA / ACK / SHUT / RESET from the host (reader thread).
 * Frames for streams that have ended are ignored.  Returns 0, or -1 for a
 * protocol violation (data beyond the window or after STREAM_SHUT). */
int forward_control(struct conn *c, const struct vb_hdr *h, const uint8_t *payload);
/* The session ended: the thread closes every connection and exits. */
void forward_cancel(struct conn *c);

/* ---- pty.c --------------------------------------------------------------- */

/* Open a pseudo-terminal for an exec as (uid): the master (non-blocking)
 * and the slave, both close-on-exec and neither our controlling terminal;
 * the slave is owned by (uid) (when we may chown), its window is rows x
 * cols.  Returns 0, or -1 with errno set and nothing left open. */
int pty_open(uid_t uid, unsigned rows, unsigned cols, int *master, int *slave);
/* Set the window size (TIOCSWINSZ; the kernel signals SIGWINCH). */
int pty_resize(int master, unsigned rows, unsigned cols);

/* The host's EOF on a terminal, written as VEOF (see pty.c).  Zero it,
 * report every input write and output read, then call pty_eof_step()
 * until it returns 1 (written) or -1 (the terminal is gone). */
struct pty_eof {
	uint64_t active_at; /* last input written or output read */
	uint8_t last;       /* last input byte written */
	int have_last;
	uint8_t c;          /* the VEOF character being written */
	int left;           /* VEOF bytes still to write; 0 = not decided */
};
void pty_eof_note_input(struct pty_eof *pe, const uint8_t *p, size_t n, uint64_t now);
void pty_eof_note_output(struct pty_eof *pe, uint64_t now);
/* (leader): the exec's pid, the terminal's session.  Returns 0 to be
 * called again later (within PTY_EOF_TICK_MS), 1 when done, -1 on error. */
int pty_eof_step(struct pty_eof *pe, int master, int slave, pid_t leader, uint64_t now);
#define PTY_EOF_TICK_MS 25

/* ---- files.c / sample.c --------------------------------------------------- */

/* Run one request and reply to it (OK or ERROR).  (payload) stays owned by
 * the caller. */
void files_handle(struct conn *c, const struct vb_hdr *h, const uint8_t *payload);
void sample_handle(struct conn *c, const struct vb_hdr *h);

/* Confined path resolution, exposed for exec's cwd check and for tests:
 * open (path) (absolute) with openat2 under the allowed root that contains
 * it, refusing "..", symlinks and escapes.  Returns an fd, or -1 with
 * *vb_err set (and errno for the message). */
int files_open(const char *path, int flags, mode_t mode, int *vb_err);

#endif /* VB_AGENT_H */
