/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vb_proto.h — the host <-> guest wire format of VoidBox, version 2.
 *
 * This header and vb_proto.c are compiled into both the host library and the
 * static guest agent, so the two sides cannot drift apart.  Nothing here
 * allocates without first checking a bound, and every decoder treats its
 * input as hostile: the guest may be compromised, and the host must never
 * crash on what it sends.
 *
 * Frame = 12-byte little-endian header + payload:
 *
 *     u32 len    payload length in bytes, <= VB_FRAME_MAX
 *     u16 type   enum vb_msg_type
 *     u16 flags  VB_FLAG_*
 *     u32 id     request id; replies and stream frames carry the id of the
 *                request they belong to; 0 is reserved for the handshake
 *
 * Payload = a sequence of fields, each
 *
 *     u16 tag    enum vb_tag
 *     u32 len    field length in bytes
 *     u8  data[len]
 *
 * Integers are u64 little-endian (len 8); strings are bytes without a NUL
 * (a NUL inside a string is malformed); bytes travel as bytes.  Unknown tags
 * are skipped, so fields can be added without a version bump.  Repeated tags
 * (ARG, ENV, ALLOW, MOUNT) keep their order.
 */
#ifndef VB_PROTO_H
#define VB_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define VB_PROTO_VERSION 2u /* 2: guest-opened streams (ids with VB_GUEST_ID_BIT) */
#define VB_FRAME_HDR_LEN 12u
#define VB_FIELD_HDR_LEN 6u
#define VB_FRAME_MAX (64u << 20) /* largest payload, checked before allocating */
#define VB_SECRET_LEN 32u
#define VB_PORT_NAME "org.voidbox.control" /* virtio-serial port name */
#define VB_VSOCK_PORT 1024u
#define VB_BOOT_PATH "/.voidbox/boot" /* per-VM initramfs segment file */

/* Limits shared by both sides (the decoder enforces them). */
#define VB_MAX_ARGS 4096u
#define VB_MAX_ENV 4096u
#define VB_MAX_STR 65536u /* one argument, env entry or path */
#define VB_MAX_PATH 4096u
#define VB_MAX_ALLOW 1024u
#define VB_MAX_MOUNTS 32u
#define VB_TERM_MAX 10000u /* largest terminal rows/cols (PTY execs) */

/* Flow control of exec streams (bytes).  Output credit counts whole
 * EXEC_OUTPUT frames on the wire (header and fields included), so a frame
 * is never free: a chunk of n bytes costs n + VB_OUTPUT_FRAME_OVERHEAD. */
#define VB_OUTPUT_WINDOW (1u << 20) /* unacknowledged EXEC_OUTPUT bytes per exec */
#define VB_OUTPUT_FRAME_OVERHEAD (VB_FRAME_HDR_LEN + 2u * VB_FIELD_HDR_LEN + 8u) /* STREAM, DATA */
#define VB_STDIN_WINDOW (256u << 10) /* unacknowledged stdin per exec */
#define VB_CHUNK_MAX (64u << 10)     /* largest data field in a stream frame */
#define VB_FILE_CHUNK_MAX (8u << 20) /* largest data field in a file frame */

/* Streams (docs/protocol.md, "Streams").  Ids of streams the guest opens
 * carry VB_GUEST_ID_BIT; the host's request ids never do, so the two sides
 * never collide.  Credit counts whole STREAM_DATA frames on the wire, in
 * both directions, like exec output. */
#define VB_GUEST_ID_BIT 0x80000000u
#define VB_STREAM_WINDOW (256u << 10) /* unacknowledged STREAM_DATA bytes per direction */
#define VB_STREAM_FRAME_OVERHEAD (VB_FRAME_HDR_LEN + VB_FIELD_HDR_LEN) /* DATA field */
#define VB_MAX_STREAMS 16u  /* guest-opened streams open at once */
#define VB_MAX_FORWARDS 16u /* loopback forwards in the boot data */
#define VB_MAX_DISKS 4u     /* read-only virtio-blk disks (root disk included) */
#define VB_MAX_USER 256u    /* a user spec: name, uid or uid:gid */
#define VB_DISK_SERIAL "vbd" /* disk i carries the virtio-blk serial "vbd<i>" */

enum vb_msg_type {
	/* handshake: the host's first frame must be HELLO with the secret */
	VB_MSG_HELLO = 1,    /* H->G: VERSION, SECRET */
	VB_MSG_HELLO_OK = 2, /* G->H: VERSION, KERNEL, BOOT_ID */
	/* generic replies */
	VB_MSG_OK = 3,    /* G->H: request-specific fields */
	VB_MSG_ERROR = 4, /* G->H: CODE (enum vb_err), MESSAGE */
	/* processes */
	VB_MSG_EXEC = 16,           /* H->G: ARG+, ENV*, CWD, UID, GID, TIMEOUT_MS, STDIN,
				     * PTY, ROWS, COLS, USER, DEFAULT_USER */
	VB_MSG_EXEC_STARTED = 17,   /* G->H: PID */
	VB_MSG_EXEC_STDIN = 18,     /* H->G: DATA; VB_FLAG_EOF closes stdin (PTY: types VEOF) */
	VB_MSG_EXEC_OUTPUT = 19,    /* G->H: STREAM, DATA (PTY: STREAM 1 only) */
	VB_MSG_EXEC_ACK = 20,       /* H->G: COUNT of output credit (frame bytes) consumed */
	VB_MSG_EXEC_STDIN_ACK = 21, /* G->H: COUNT of stdin bytes delivered */
	VB_MSG_EXEC_EXIT = 22,      /* G->H: EXIT_CODE, SIGNAL, TIMED_OUT; last frame of an exec */
	VB_MSG_EXEC_SIGNAL = 23,    /* H->G: SIGNAL, sent to the process group */
	VB_MSG_EXEC_RESIZE = 24,    /* H->G: ROWS, COLS of a PTY exec's terminal */
	/* files (paths confined to the agent's allowed roots) */
	VB_MSG_FILE_WRITE = 32, /* H->G: PATH, DATA, OFFSET, MODE, UID, GID; VB_FLAG_TRUNC */
	VB_MSG_FILE_READ = 33,  /* H->G: PATH, OFFSET, LENGTH -> OK: DATA, SIZE */
	VB_MSG_FILE_STAT = 34,  /* H->G: PATH -> OK: SIZE, MODE, UID, GID, MTIME */
	VB_MSG_MKDIR = 35,      /* H->G: PATH, MODE, UID, GID (mkdir -p) */
	/* streams: either side sends DATA/ACK/SHUT; the guest opens and ends */
	VB_MSG_STREAM_OPEN = 40,  /* G->H: KIND; the id is new, with VB_GUEST_ID_BIT */
	VB_MSG_STREAM_DATA = 41,  /* both: DATA, 1 byte..VB_CHUNK_MAX */
	VB_MSG_STREAM_ACK = 42,   /* both: COUNT of credit (frame bytes) consumed */
	VB_MSG_STREAM_SHUT = 43,  /* both: no more DATA from the sender (half-close) */
	VB_MSG_STREAM_RESET = 44, /* H->G: abort; the guest answers STREAM_END */
	VB_MSG_STREAM_END = 45,   /* G->H: the guest's last frame of the stream */
	/* machine */
	VB_MSG_SAMPLE = 48,   /* H->G -> OK: CPU_*, MEM_*, UPTIME_MS, NPROCS */
	VB_MSG_SHUTDOWN = 49, /* H->G -> OK, then the guest reboots (QEMU exits) */
	VB_MSG_REKEY = 50,    /* H->G: SECRET, ENTROPY, TIME_NS, HOSTNAME, ONE_HOST
			       * -> OK: ENTROPY_BITS (a fresh identity, struct vb_rekey) */
	VB_MSG_MOUNT = 51,    /* H->G: MOUNT+ (nested MOUNT_TAG, MOUNT_PATH, MOUNT_RO) -> OK:
			       * mount 9p exports after a restore (struct vb_mount_req) */
	VB_MSG_FORWARD = 52,  /* H->G: FORWARD+ (nested FWD_PORT, KIND) -> OK: listen for
			       * loopback forwards after a restore (struct vb_fwd_req) */
	VB_MSG_NET_UP = 53,   /* H->G: (no fields) -> OK: configure eth0 on the user-mode
			       * network (VB_NET_*) after a restore */
	VB_MSG_NET_DOWN = 54, /* H->G: (no fields) -> OK: undo NET_UP (eth0 down, address and
			       * route gone, resolv.conf as before) before a save */
	VB_MSG_UNMOUNT = 55,  /* H->G: (no fields) -> OK: unmount what MOUNT mounted, before
			       * a save (QEMU migrates no mounted 9p export) */
	/* the per-VM boot segment (never sent on the wire) */
	VB_MSG_BOOT = 64, /* SECRET, ALLOW_SET, ALLOW*, RLIMIT_*, MOUNT*, HOSTNAME, ONE_HOST,
			   * FORWARD*, NET, ROOT_DISK, ROOT_ENV*, ROOT_WORKDIR,
			   * ROOT_USER, DISK* */
};

enum vb_flag {
	VB_FLAG_EOF = 1u << 0,   /* EXEC_STDIN: no more input */
	VB_FLAG_TRUNC = 1u << 1, /* FILE_WRITE: truncate before writing */
};

enum vb_tag {
	VB_TAG_VERSION = 1,
	VB_TAG_SECRET = 2,
	VB_TAG_KERNEL = 3,  /* uname release */
	VB_TAG_BOOT_ID = 4, /* /proc/sys/kernel/random/boot_id */
	VB_TAG_CODE = 5,
	VB_TAG_MESSAGE = 6,
	VB_TAG_ARG = 16,        /* repeated; ARG[0] is the program */
	VB_TAG_ENV = 17,        /* repeated "KEY=VALUE" */
	VB_TAG_CWD = 18,
	VB_TAG_UID = 19,
	VB_TAG_GID = 20,
	VB_TAG_TIMEOUT_MS = 21, /* 0 = none */
	VB_TAG_STDIN = 22,      /* 1 = host will send stdin; 0 = /dev/null */
	VB_TAG_PID = 23,
	VB_TAG_STREAM = 24, /* 1 = stdout, 2 = stderr */
	VB_TAG_DATA = 25,
	VB_TAG_COUNT = 26,
	VB_TAG_EXIT_CODE = 27, /* 0..255 when the process exited */
	VB_TAG_SIGNAL = 28,    /* signal that killed it, 0 if none */
	VB_TAG_TIMED_OUT = 29, /* 1 if the agent killed it for its timeout */
	VB_TAG_PATH = 32,
	VB_TAG_OFFSET = 33,
	VB_TAG_LENGTH = 34,
	VB_TAG_MODE = 35,
	VB_TAG_SIZE = 36,
	VB_TAG_MTIME = 37,
	VB_TAG_CPU_USER = 48,   /* clock ticks since boot, all CPUs */
	VB_TAG_CPU_SYSTEM = 49,
	VB_TAG_CPU_IDLE = 50,
	VB_TAG_MEM_TOTAL_KB = 51,
	VB_TAG_MEM_AVAIL_KB = 52,
	VB_TAG_UPTIME_MS = 53,
	VB_TAG_NPROCS = 54,
	VB_TAG_ALLOW = 64,        /* repeated program basename; none = all allowed */
	VB_TAG_RLIMIT_NOFILE = 65,
	VB_TAG_RLIMIT_NPROC = 66,
	VB_TAG_RLIMIT_FSIZE = 67, /* bytes */
	VB_TAG_MOUNT = 68,        /* repeated; nested fields MOUNT_* */
	VB_TAG_MOUNT_TAG = 69,
	VB_TAG_MOUNT_PATH = 70,
	VB_TAG_MOUNT_RO = 71,
	VB_TAG_HOSTNAME = 72,
	VB_TAG_ALLOW_SET = 73, /* 1: an allowlist is in force, even an empty one */
	VB_TAG_ONE_HOST = 74,  /* 1: the host connects once; the agent forgets the
				* secret after the first handshake */
	VB_TAG_NET = 75,       /* BOOT: 1 = configure eth0 for the user-mode network
				* (VB_NET_GUEST_ADDR etc.); absent = no network */
	VB_TAG_PTY = 80,       /* EXEC: 1 = run on a pseudo-terminal; 0/absent = pipes */
	VB_TAG_ROWS = 81,      /* EXEC, EXEC_RESIZE: terminal rows, 1..VB_TERM_MAX */
	VB_TAG_COLS = 82,      /* EXEC, EXEC_RESIZE: terminal columns, 1..VB_TERM_MAX */
	VB_TAG_KIND = 90,      /* STREAM_OPEN, FORWARD: what the stream is for */
	VB_TAG_FORWARD = 91,   /* BOOT: repeated; nested FWD_PORT, KIND */
	VB_TAG_FWD_PORT = 92,  /* guest TCP port on 127.0.0.1, 1..65535 */
	/* the image root (docs/oci.md, "In the VM") */
	VB_TAG_ROOT_DISK = 93,    /* BOOT: index of the disk that is the root, < VB_MAX_DISKS */
	VB_TAG_ROOT_ENV = 94,     /* BOOT: repeated "K=V": the image's Env, under every exec's */
	VB_TAG_ROOT_WORKDIR = 95, /* BOOT: absolute; the default cwd of execs */
	VB_TAG_ROOT_USER = 96,    /* BOOT: the default user of execs (name, uid, uid:gid) */
	VB_TAG_DISK = 97,         /* BOOT: repeated; nested DISK_INDEX, DISK_PATH */
	VB_TAG_DISK_INDEX = 98,   /* < VB_MAX_DISKS */
	VB_TAG_DISK_PATH = 99,    /* absolute guest path, not "/" */
	VB_TAG_USER = 100,        /* EXEC: run as this user of the root's /etc/passwd
				   * (name, uid, uid:gid); replaces UID/GID */
	VB_TAG_DEFAULT_USER = 101, /* EXEC: 1 = the VM's default user (ROOT_USER) if it has
				    * one, else UID/GID */
	VB_TAG_ENTROPY = 102,      /* REKEY: host randomness for the guest's kernel RNG */
	VB_TAG_TIME_NS = 103,      /* REKEY: the host's CLOCK_REALTIME, ns since the epoch */
	VB_TAG_ENTROPY_BITS = 104, /* REKEY's OK: bits credited to the guest's RNG (0 in
				    * process mode, which shares its host's kernel) */
};

/* Error codes carried in ERROR frames: portable, not errno values. */
enum vb_err {
	VB_ERR_NONE = 0,
	VB_ERR_NOENT = 1,    /* no such file or program (exec: exit 127) */
	VB_ERR_NOEXEC = 2,   /* not executable (exec: exit 126) */
	VB_ERR_DENIED = 3,   /* refused by the policy allowlist (exec: exit 126) */
	VB_ERR_ACCESS = 4,   /* permission denied */
	VB_ERR_INVAL = 5,    /* malformed or invalid request */
	VB_ERR_IO = 6,
	VB_ERR_EXIST = 7,
	VB_ERR_NOTDIR = 8,
	VB_ERR_ISDIR = 9,
	VB_ERR_NOSPC = 10,
	VB_ERR_OUTSIDE = 11, /* path outside the allowed roots, or through a symlink */
	VB_ERR_BUSY = 12,    /* too many requests in flight */
	VB_ERR_PROTO = 13,   /* protocol violation; the connection will close */
	VB_ERR_INTERNAL = 14,
	VB_ERR_ROFS = 15,    /* read-only file system */
};

/* ---- encoding ---------------------------------------------------------- */

/* A growable byte buffer.  Zero-initialise; release with vb_buf_free(). */
struct vb_buf {
	uint8_t *data;
	size_t len, cap;
	int oom; /* set once an allocation failed; later puts are no-ops */
};

void vb_buf_free(struct vb_buf *b);
void vb_buf_reset(struct vb_buf *b);

/* Start a frame in (b) (which is reset).  Puts append fields; vb_msg_end()
 * patches the length.  Each returns 0, or -1 if memory ran out or the
 * payload would exceed VB_FRAME_MAX (the error sticks until the reset). */
int vb_msg_begin(struct vb_buf *b, uint16_t type, uint16_t flags, uint32_t id);
int vb_msg_put_u64(struct vb_buf *b, uint16_t tag, uint64_t v);
int vb_msg_put_bytes(struct vb_buf *b, uint16_t tag, const void *p, size_t n);
int vb_msg_put_str(struct vb_buf *b, uint16_t tag, const char *s);
int vb_msg_end(struct vb_buf *b);

/* Put a nested field: call vb_msg_nest_begin(), put fields, then
 * vb_msg_nest_end() with the returned offset. Returns the offset or -1. */
long vb_msg_nest_begin(struct vb_buf *b, uint16_t tag);
int vb_msg_nest_end(struct vb_buf *b, long off);

/* ---- decoding ---------------------------------------------------------- */

struct vb_hdr {
	uint32_t len;
	uint16_t type, flags;
	uint32_t id;
};

/* Decode a 12-byte header.  Returns 0, or -1 if len > VB_FRAME_MAX. */
int vb_hdr_decode(const uint8_t raw[VB_FRAME_HDR_LEN], struct vb_hdr *h);
void vb_hdr_encode(uint8_t raw[VB_FRAME_HDR_LEN], const struct vb_hdr *h);

struct vb_field {
	uint16_t tag;
	uint32_t len;
	const uint8_t *data; /* points into the payload */
};

/* Iterate the fields of a payload (or of a nested field's data). */
struct vb_reader {
	const uint8_t *p;
	size_t left;
};
void vb_reader_init(struct vb_reader *r, const void *payload, size_t len);
/* Returns 1 and fills (f), 0 at the end, -1 if the payload is malformed. */
int vb_reader_next(struct vb_reader *r, struct vb_field *f);

/* Typed views of one field.  Return 0, or -1 if the field is malformed. */
int vb_field_u64(const struct vb_field *f, uint64_t *out);
/* Copy a string field into a new NUL-terminated buffer (caller frees).
 * Fails on embedded NULs or len > max. */
int vb_field_strdup(const struct vb_field *f, size_t max, char **out);

/* Walk a whole payload: returns 0 if well-formed, -1 if not.  If (tag) is
 * found, (*found) is set to its first occurrence (found->data NULL if absent). */
int vb_payload_find(const void *payload, size_t len, uint16_t tag, struct vb_field *found);
/* Convenience: read an optional u64 (left unchanged when absent). */
int vb_payload_u64(const void *payload, size_t len, uint16_t tag, uint64_t *out);

/* ---- messages ---------------------------------------------------------- */

/* An exec request, as decoded by the agent.  All strings are owned by the
 * struct (one allocation each); release with vb_exec_req_free(). */
struct vb_exec_req {
	char **argv; /* NULL-terminated, argc >= 1 */
	size_t argc;
	char **envp; /* NULL-terminated, each "K=V" with a non-empty K */
	size_t envc;
	char *cwd;   /* NULL = default */
	uint64_t uid, gid;
	uint64_t timeout_ms;
	int want_stdin;
	int pty;             /* run on a pseudo-terminal: one output stream (1) */
	uint32_t rows, cols; /* initial terminal size; 0 = absent (agent default) */
	char *user;          /* NULL = UID/GID; else resolved by the agent */
	int default_user;    /* the caller did not choose: the VM's default user */
};
int vb_exec_req_encode(struct vb_buf *b, uint32_t id, const struct vb_exec_req *r);
/* Returns 0 or a VB_ERR_* (> 0) describing why the request is invalid. */
int vb_exec_req_decode(const void *payload, size_t len, struct vb_exec_req *r);
void vb_exec_req_free(struct vb_exec_req *r);

/* EXEC_RESIZE: the new size of a PTY exec's terminal.  Encode checks
 * nothing; decode returns 0, VB_ERR_PROTO for a malformed payload or
 * VB_ERR_INVAL unless both ROWS and COLS are present and in 1..VB_TERM_MAX
 * (the last of a repeated tag wins; (rows) and (cols) are set only on
 * success). */
int vb_resize_encode(struct vb_buf *b, uint32_t id, uint32_t rows, uint32_t cols);
int vb_resize_decode(const void *payload, size_t len, uint32_t *rows, uint32_t *cols);

/* REKEY: a fresh identity for a VM that already runs (after a snapshot
 * restore: docs/protocol.md, "Re-keying").  Fixed-size, nothing allocated. */
#define VB_REKEY_ENTROPY_MIN 32u  /* bytes */
#define VB_REKEY_ENTROPY_MAX 512u
#define VB_HOSTNAME_MAX 64u
struct vb_rekey {
	uint8_t secret[VB_SECRET_LEN]; /* the new session secret (required) */
	uint8_t entropy[VB_REKEY_ENTROPY_MAX];
	size_t n_entropy;              /* VB_REKEY_ENTROPY_MIN..MAX (required) */
	uint64_t time_ns;              /* CLOCK_REALTIME to set; 0 = leave the clock */
	char hostname[VB_HOSTNAME_MAX + 1]; /* "" = keep; else [A-Za-z0-9.-] */
	int one_host;                  /* 1: no reconnects from now on (the new secret
					* is forgotten at once); 0 keeps the mode */
};
/* Encode checks nothing but the sizes it copies (n_entropy is clamped).
 * Decode returns 0, VB_ERR_PROTO for a malformed payload, or VB_ERR_INVAL
 * for a missing or repeated SECRET/ENTROPY, a wrong size, a bad hostname or
 * ONE_HOST other than 0/1; (rk) is filled only on success.  The caller
 * wipes (rk) and the frame with explicit_bzero once used. */
int vb_rekey_encode(struct vb_buf *b, uint32_t id, const struct vb_rekey *rk);
int vb_rekey_decode(const void *payload, size_t len, struct vb_rekey *rk);

/* MOUNT: 9p exports the VM already has as devices (tags "vbm<N>") that
 * the agent mounts now rather than at boot: a VM restored from a snapshot
 * (docs/snapshots.md, "Mounts").  Fixed-size, nothing allocated. */
#define VB_MOUNT_REQ_MAX 8u
#define VB_MOUNT_TAG_MAX 5u /* "vbm" and at most 2 digits */
struct vb_mount_req {
	size_t n; /* 1..VB_MOUNT_REQ_MAX */
	struct {
		char tag[VB_MOUNT_TAG_MAX + 1]; /* "vbm0".."vbm99", no leading zero */
		char path[VB_MAX_PATH + 1];    /* starts with '/' */
		int ro;                        /* default 1 */
	} m[VB_MOUNT_REQ_MAX];
};
/* Encode checks nothing.  Decode returns 0, VB_ERR_PROTO for a malformed
 * payload, or VB_ERR_INVAL for no MOUNT or more than VB_MOUNT_REQ_MAX, a
 * mount without a tag or path, a bad tag, a path not starting with '/',
 * MOUNT_RO other than 0/1, or a tag or path given twice; (r) is filled only
 * on success.  The agent checks the paths further (no "." or ".."). */
int vb_mount_encode(struct vb_buf *b, uint32_t id, const struct vb_mount_req *r);
int vb_mount_decode(const void *payload, size_t len, struct vb_mount_req *r);

/* A loopback forward: the agent listens on 127.0.0.1:port in the guest and
 * opens a stream of (kind) for every connection. */
struct vb_boot_forward {
	uint16_t port;
	uint64_t kind;
};

/* FORWARD: the loopback forwards of a VM restored from a snapshot, which
 * the agent sets up now rather than from its boot data (docs/snapshots.md,
 * "Forwards").  Fixed-size, nothing allocated.  Encode checks nothing.
 * Decode returns 0, VB_ERR_PROTO for a malformed payload, or VB_ERR_INVAL
 * for no FORWARD or more than VB_MAX_FORWARDS, a forward without a port,
 * a port outside 1..65535, a KIND not below VB_MAX_FORWARDS, or a port
 * given twice; (r) is filled only on success. */
struct vb_fwd_req {
	size_t n; /* 1..VB_MAX_FORWARDS */
	struct vb_boot_forward f[VB_MAX_FORWARDS];
};
int vb_fwd_encode(struct vb_buf *b, uint32_t id, const struct vb_fwd_req *r);
int vb_fwd_decode(const void *payload, size_t len, struct vb_fwd_req *r);

struct vb_boot_mount {
	char *tag;  /* virtio-9p mount tag */
	char *path; /* absolute guest path */
	int ro;
};

/* A read-only disk mounted at (path) (ext4). */
struct vb_boot_disk {
	uint32_t index; /* the disk's serial is VB_DISK_SERIAL<index> */
	char *path;
};

/* The user-mode network's fixed addressing (docs/network.md): the guest
 * configures it itself when the boot data carries VB_TAG_NET. */
#define VB_NET_GUEST_ADDR "10.0.2.15"
#define VB_NET_NETMASK "255.255.255.0"
#define VB_NET_GATEWAY_ADDR "10.0.2.2"
#define VB_NET_DNS_ADDR "10.0.2.3"
#define VB_NET_IFNAME "eth0"

/* The per-VM boot data, read by the agent from VB_BOOT_PATH. */
struct vb_boot {
	uint8_t secret[VB_SECRET_LEN];
	char **allow; /* NULL = every program allowed; else n_allow (maybe 0) basenames */
	size_t n_allow;
	uint64_t rlimit_nofile, rlimit_nproc, rlimit_fsize;
	struct vb_boot_mount *mounts;
	size_t n_mounts;
	char *hostname; /* may be NULL */
	int one_host;   /* no reconnects: wipe the secret once it has been used */
	struct vb_boot_forward *forwards; /* at most VB_MAX_FORWARDS, ports distinct */
	size_t n_forwards;
	int net;        /* bring up eth0 on the user-mode network */
	/* The image root: with has_root, disk (root_disk) becomes / (read-only
	 * ext4 under a tmpfs overlay); the rest are defaults of every exec. */
	int has_root;
	uint32_t root_disk;
	char **root_env; /* "K=V", at most VB_MAX_ENV */
	size_t n_root_env;
	char *root_workdir; /* may be NULL */
	char *root_user;    /* may be NULL */
	struct vb_boot_disk *disks; /* at most VB_MAX_DISKS, indexes and paths distinct */
	size_t n_disks;
};
/* Encode as a complete VB_MSG_BOOT frame (header included). */
int vb_boot_encode(struct vb_buf *b, const struct vb_boot *boot);
/* Decode a complete frame (header included).  Returns 0 or a VB_ERR_*. */
int vb_boot_decode(const void *frame, size_t len, struct vb_boot *boot);
void vb_boot_free(struct vb_boot *boot);

/* True if basename(prog) is in the allowlist (or there is no allowlist). */
int vb_policy_allows(const struct vb_boot *boot, const char *prog);

/* Constant-time comparison of two secrets: 1 if equal. */
int vb_secret_equal(const uint8_t a[VB_SECRET_LEN], const uint8_t b[VB_SECRET_LEN]);

/* Static name of a message type / error code, for logs ("?" if unknown). */
const char *vb_msg_name(uint16_t type);
const char *vb_err_name(int code);

#endif /* VB_PROTO_H */
