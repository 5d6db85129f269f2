/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gen_corpus.c — writes the seed corpus of fuzz_proto with the real encoders
 * of proto/vb_proto.c, so the seeds follow the wire format as it evolves.
 *
 *   gcc -std=c11 -D_GNU_SOURCE -Iproto -o gen_corpus tests/fuzz/gen_corpus.c proto/vb_proto.c
 *   ./gen_corpus tests/fuzz/corpus/proto
 *
 * Valid frames of every kind the peers exchange, a whole session as one
 * stream, boot segments, and malformed variants of each (truncated frames,
 * fields running past the end, values the decoders must refuse).
 */
#include "vb_proto.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *outdir = "tests/fuzz/corpus/proto";
static int failed;

static void die(const char *what)
{
	fprintf(stderr, "gen_corpus: %s\n", what);
	exit(1);
}

static void write_bytes(const char *name, const void *p, size_t n)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", outdir, name);
	FILE *fp = fopen(path, "wb");
	if (!fp) {
		perror(path);
		failed = 1;
		return;
	}
	if ((n && fwrite(p, 1, n, fp) != n) || fclose(fp) != 0) {
		perror(path);
		failed = 1;
	}
}

static void write_buf(const char *name, const struct vb_buf *b)
{
	write_bytes(name, b->data, b->len);
}

/* Append the frame in (src) to the stream in (dst). */
static void append(struct vb_buf *dst, const struct vb_buf *src)
{
	uint8_t *p = realloc(dst->data, dst->len + src->len);
	if (!p)
		die("out of memory");
	memcpy(p + dst->len, src->data, src->len);
	dst->data = p;
	dst->len += src->len;
	dst->cap = dst->len;
}

static void end(struct vb_buf *b)
{
	if (vb_msg_end(b) < 0)
		die("vb_msg_end failed");
}

/* Overwrite the u32 length of the field whose header starts at (off). */
static void patch_field_len(struct vb_buf *b, size_t off, uint32_t len)
{
	for (int i = 0; i < 4; i++)
		b->data[off + 2 + (size_t)i] = (uint8_t)(len >> (8 * i));
}

static void patch_hdr(struct vb_buf *b, uint32_t len, uint16_t type)
{
	struct vb_hdr h;
	if (vb_hdr_decode(b->data, &h) < 0)
		h.len = 0;
	h.len = len;
	h.type = type;
	vb_hdr_encode(b->data, &h);
}

static void secret(uint8_t s[VB_SECRET_LEN])
{
	for (size_t i = 0; i < VB_SECRET_LEN; i++)
		s[i] = (uint8_t)(0x11 * (i + 1));
}

static void hello(struct vb_buf *b)
{
	uint8_t s[VB_SECRET_LEN];
	secret(s);
	vb_msg_begin(b, VB_MSG_HELLO, 0, 0);
	vb_msg_put_u64(b, VB_TAG_VERSION, VB_PROTO_VERSION);
	vb_msg_put_bytes(b, VB_TAG_SECRET, s, VB_SECRET_LEN);
	end(b);
}

static void exec_full(struct vb_buf *b, uint32_t id)
{
	char a0[] = "/bin/sh", a1[] = "-c", a2[] = "echo \"$GREETING\" from $(pwd); cat";
	char e0[] = "PATH=/usr/local/bin:/usr/bin:/bin", e1[] = "GREETING=hello", e2[] = "EMPTY=";
	char cwd[] = "/workspace";
	char *argv[] = { a0, a1, a2, NULL };
	char *envp[] = { e0, e1, e2, NULL };
	struct vb_exec_req r = { .argv = argv,
		                 .argc = 3,
		                 .envp = envp,
		                 .envc = 3,
		                 .cwd = cwd,
		                 .uid = 1000,
		                 .gid = 1000,
		                 .timeout_ms = 30000,
		                 .want_stdin = 1 };
	if (vb_exec_req_encode(b, id, &r) < 0)
		die("vb_exec_req_encode failed");
}

static void exec_minimal(struct vb_buf *b, uint32_t id)
{
	char a0[] = "true";
	char *argv[] = { a0, NULL };
	char *envp[] = { NULL };
	struct vb_exec_req r = { .argv = argv, .argc = 1, .envp = envp, .envc = 0, .uid = 0, .gid = 0 };
	if (vb_exec_req_encode(b, id, &r) < 0)
		die("vb_exec_req_encode failed");
}

/* An interactive shell on a terminal, as `voidbox shell` starts it. */
static void exec_pty(struct vb_buf *b, uint32_t id)
{
	char a0[] = "sh", e0[] = "TERM=xterm-256color";
	char *argv[] = { a0, NULL };
	char *envp[] = { e0, NULL };
	struct vb_exec_req r = { .argv = argv, .argc = 1, .envp = envp, .envc = 1, .uid = 1000,
		                 .gid = 1000, .want_stdin = 1, .pty = 1, .rows = 50, .cols = 132 };
	if (vb_exec_req_encode(b, id, &r) < 0)
		die("vb_exec_req_encode failed");
}

static void boot_full(struct vb_buf *b)
{
	char a0[] = "sh", a1[] = "python3", a2[] = "ls", a3[] = "cat";
	char *allow[] = { a0, a1, a2, a3 };
	char t0[] = "workspace", p0[] = "/workspace", t1[] = "ro-data", p1[] = "/data";
	struct vb_boot_mount mounts[] = { { t0, p0, 0 }, { t1, p1, 1 } };
	char host[] = "voidbox-seed";
	struct vb_boot boot = { .allow = allow,
		                .n_allow = 4,
		                .rlimit_nofile = 1024,
		                .rlimit_nproc = 256,
		                .rlimit_fsize = 1u << 30,
		                .mounts = mounts,
		                .n_mounts = 2,
		                .hostname = host };
	secret(boot.secret);
	if (vb_boot_encode(b, &boot) < 0)
		die("vb_boot_encode failed");
}

static void boot_forwards(struct vb_buf *b)
{
	struct vb_boot_forward fw[] = { { 8080, 0 }, { 11434, 1 } };
	struct vb_boot boot = { .forwards = fw, .n_forwards = 2, .one_host = 1 };
	secret(boot.secret);
	if (vb_boot_encode(b, &boot) < 0)
		die("vb_boot_encode failed");
}

static void boot_root(struct vb_buf *b)
{
	char e0[] = "PATH=/usr/local/bin:/usr/bin:/bin", e1[] = "LANG=C.UTF-8";
	char *env[] = { e0, e1 };
	char wd[] = "/app", user[] = "app", p0[] = "/skills/tool";
	struct vb_boot_disk disks[] = { { 1, p0 } };
	struct vb_boot boot = { .has_root = 1, .root_disk = 0, .root_env = env, .n_root_env = 2,
		                .root_workdir = wd, .root_user = user, .disks = disks, .n_disks = 1 };
	secret(boot.secret);
	if (vb_boot_encode(b, &boot) < 0)
		die("vb_boot_encode failed");
}

int main(int argc, char **argv)
{
	struct vb_buf b = { 0 }, s = { 0 };
	uint8_t sec[VB_SECRET_LEN];
	secret(sec);
	if (argc > 1)
		outdir = argv[1];

	/* ---- valid frames ---- */
	hello(&b);
	write_buf("hello.bin", &b);

	boot_forwards(&b);
	write_buf("boot_forwards.bin", &b);
	boot_root(&b);
	write_buf("boot_root.bin", &b);

	vb_msg_begin(&b, VB_MSG_STREAM_OPEN, 0, VB_GUEST_ID_BIT | 1);
	vb_msg_put_u64(&b, VB_TAG_KIND, 0);
	end(&b);
	vb_msg_begin(&s, VB_MSG_STREAM_DATA, 0, VB_GUEST_ID_BIT | 1);
	vb_msg_put_bytes(&s, VB_TAG_DATA, "GET / HTTP/1.1\r\n\r\n", 18);
	end(&s);
	append(&b, &s);
	vb_msg_begin(&s, VB_MSG_STREAM_ACK, 0, VB_GUEST_ID_BIT | 1);
	vb_msg_put_u64(&s, VB_TAG_COUNT, 36);
	end(&s);
	append(&b, &s);
	vb_msg_begin(&s, VB_MSG_STREAM_SHUT, 0, VB_GUEST_ID_BIT | 1);
	end(&s);
	append(&b, &s);
	vb_msg_begin(&s, VB_MSG_STREAM_END, 0, VB_GUEST_ID_BIT | 1);
	end(&s);
	append(&b, &s);
	write_buf("stream_session.bin", &b);

	exec_full(&b, 1);
	write_buf("exec_full.bin", &b);

	exec_minimal(&b, 2);
	write_buf("exec_minimal.bin", &b);

	vb_msg_begin(&b, VB_MSG_EXEC_STDIN, 0, 1);
	vb_msg_put_bytes(&b, VB_TAG_DATA, "line one\nline two\n", 18);
	end(&b);
	write_buf("exec_stdin.bin", &b);

	exec_pty(&b, 3);
	write_buf("exec_pty.bin", &b);

	if (vb_resize_encode(&b, 3, 40, 120) < 0)
		die("vb_resize_encode failed");
	write_buf("exec_resize.bin", &b);

	struct vb_rekey rk = { .n_entropy = 64, .time_ns = 1764556800123456789ull,
			       .hostname = "vm-restored", .one_host = 1 };
	for (size_t i = 0; i < VB_SECRET_LEN; i++)
		rk.secret[i] = (uint8_t)(0xa0 + i);
	for (size_t i = 0; i < rk.n_entropy; i++)
		rk.entropy[i] = (uint8_t)(i * 7);
	if (vb_rekey_encode(&b, 5, &rk) < 0)
		die("vb_rekey_encode failed");
	write_buf("rekey.bin", &b);
	/* too little entropy, and a secret one byte short */
	vb_msg_begin(&b, VB_MSG_REKEY, 0, 5);
	vb_msg_put_bytes(&b, VB_TAG_SECRET, rk.secret, VB_SECRET_LEN - 1);
	vb_msg_put_bytes(&b, VB_TAG_ENTROPY, rk.entropy, VB_REKEY_ENTROPY_MIN - 1);
	end(&b);
	write_buf("rekey_short.bin", &b);
	/* a hostname with a control character, ONE_HOST 2 */
	vb_msg_begin(&b, VB_MSG_REKEY, 0, 5);
	vb_msg_put_bytes(&b, VB_TAG_SECRET, rk.secret, VB_SECRET_LEN);
	vb_msg_put_bytes(&b, VB_TAG_ENTROPY, rk.entropy, VB_REKEY_ENTROPY_MIN);
	vb_msg_put_bytes(&b, VB_TAG_HOSTNAME, "a\x1b[2Jb", 6);
	vb_msg_put_u64(&b, VB_TAG_ONE_HOST, 2);
	end(&b);
	write_buf("rekey_bad_fields.bin", &b);

	struct vb_mount_req *mr = calloc(1, sizeof(*mr));
	if (!mr)
		die("out of memory");
	mr->n = 2;
	snprintf(mr->m[0].tag, sizeof(mr->m[0].tag), "vbm0");
	snprintf(mr->m[0].path, sizeof(mr->m[0].path), "/workspace");
	snprintf(mr->m[1].tag, sizeof(mr->m[1].tag), "vbm1");
	snprintf(mr->m[1].path, sizeof(mr->m[1].path), "/data");
	mr->m[1].ro = 1;
	if (vb_mount_encode(&b, 6, mr) < 0)
		die("vb_mount_encode failed");
	write_buf("mount.bin", &b);
	free(mr);
	/* a tag that is no device of ours, a relative path, RO 2, a tag twice */
	vb_msg_begin(&b, VB_MSG_MOUNT, 0, 6);
	long off = vb_msg_nest_begin(&b, VB_TAG_MOUNT);
	vb_msg_put_str(&b, VB_TAG_MOUNT_TAG, "vbm07");
	vb_msg_put_str(&b, VB_TAG_MOUNT_PATH, "data");
	vb_msg_put_u64(&b, VB_TAG_MOUNT_RO, 2);
	vb_msg_nest_end(&b, off);
	off = vb_msg_nest_begin(&b, VB_TAG_MOUNT);
	vb_msg_put_str(&b, VB_TAG_MOUNT_TAG, "host\x1b]0;x");
	vb_msg_put_str(&b, VB_TAG_MOUNT_PATH, "/a");
	vb_msg_put_str(&b, VB_TAG_MOUNT_TAG, "vbm1");
	vb_msg_nest_end(&b, off);
	end(&b);
	write_buf("mount_bad.bin", &b);

	struct vb_fwd_req fr = { .n = 2, .f = { { .port = 4380, .kind = 0 }, { .port = 8080, .kind = 1 } } };
	if (vb_fwd_encode(&b, 7, &fr) < 0)
		die("vb_fwd_encode failed");
	write_buf("forward.bin", &b);
	/* port 0, a kind beyond any forward, a port twice */
	vb_msg_begin(&b, VB_MSG_FORWARD, 0, 7);
	off = vb_msg_nest_begin(&b, VB_TAG_FORWARD);
	vb_msg_put_u64(&b, VB_TAG_FWD_PORT, 0);
	vb_msg_put_u64(&b, VB_TAG_KIND, 99);
	vb_msg_nest_end(&b, off);
	for (int i = 0; i < 2; i++) {
		off = vb_msg_nest_begin(&b, VB_TAG_FORWARD);
		vb_msg_put_u64(&b, VB_TAG_FWD_PORT, 4380);
		vb_msg_nest_end(&b, off);
	}
	end(&b);
	write_buf("forward_bad.bin", &b);

	/* the undo messages before a save carry nothing; one with a field */
	vb_msg_begin(&b, VB_MSG_NET_DOWN, 0, 8);
	end(&b);
	write_buf("net_down.bin", &b);
	vb_msg_begin(&b, VB_MSG_UNMOUNT, 0, 9);
	vb_msg_put_str(&b, VB_TAG_MOUNT_TAG, "vbm0");
	end(&b);
	write_buf("unmount_field.bin", &b);

	vb_msg_begin(&b, VB_MSG_EXEC_STDIN, VB_FLAG_EOF, 1);
	vb_msg_put_bytes(&b, VB_TAG_DATA, NULL, 0);
	end(&b);
	write_buf("exec_stdin_eof.bin", &b);

	vb_msg_begin(&b, VB_MSG_FILE_WRITE, VB_FLAG_TRUNC, 5);
	vb_msg_put_str(&b, VB_TAG_PATH, "/workspace/notes.txt");
	vb_msg_put_bytes(&b, VB_TAG_DATA, "hello, file\n", 12);
	vb_msg_put_u64(&b, VB_TAG_OFFSET, 0);
	vb_msg_put_u64(&b, VB_TAG_MODE, 0644);
	vb_msg_put_u64(&b, VB_TAG_UID, 1000);
	vb_msg_put_u64(&b, VB_TAG_GID, 1000);
	end(&b);
	write_buf("file_write.bin", &b);

	vb_msg_begin(&b, VB_MSG_FILE_READ, 0, 6);
	vb_msg_put_str(&b, VB_TAG_PATH, "/workspace/notes.txt");
	vb_msg_put_u64(&b, VB_TAG_OFFSET, 4);
	vb_msg_put_u64(&b, VB_TAG_LENGTH, 4096);
	end(&b);
	write_buf("file_read.bin", &b);

	boot_full(&b);
	write_buf("boot_full.bin", &b);

	{
		struct vb_boot boot;
		memset(&boot, 0, sizeof(boot));
		secret(boot.secret);
		if (vb_boot_encode(&b, &boot) < 0)
			die("vb_boot_encode failed");
		write_buf("boot_minimal.bin", &b);
	}

	/* a whole session as one stream */
	vb_buf_reset(&s);
	hello(&b);
	append(&s, &b);
	exec_full(&b, 1);
	append(&s, &b);
	vb_msg_begin(&b, VB_MSG_EXEC_STDIN, VB_FLAG_EOF, 1);
	vb_msg_put_bytes(&b, VB_TAG_DATA, "input\n", 6);
	end(&b);
	append(&s, &b);
	vb_msg_begin(&b, VB_MSG_EXEC_ACK, 0, 1);
	vb_msg_put_u64(&b, VB_TAG_COUNT, 65536);
	end(&b);
	append(&s, &b);
	vb_msg_begin(&b, VB_MSG_EXEC_SIGNAL, 0, 1);
	vb_msg_put_u64(&b, VB_TAG_SIGNAL, 15);
	end(&b);
	append(&s, &b);
	vb_msg_begin(&b, VB_MSG_MKDIR, 0, 2);
	vb_msg_put_str(&b, VB_TAG_PATH, "/workspace/a/b/c");
	vb_msg_put_u64(&b, VB_TAG_MODE, 0755);
	end(&b);
	append(&s, &b);
	vb_msg_begin(&b, VB_MSG_SHUTDOWN, 0, 3);
	end(&b);
	append(&s, &b);
	write_buf("session_stream.bin", &s);

	/* an interactive session: a shell on a terminal, typing, a resize, ^C, ^D */
	vb_buf_reset(&s);
	hello(&b);
	append(&s, &b);
	exec_pty(&b, 1);
	append(&s, &b);
	vb_msg_begin(&b, VB_MSG_EXEC_STDIN, 0, 1);
	vb_msg_put_bytes(&b, VB_TAG_DATA, "sleep 100\r\x03", 11);
	end(&b);
	append(&s, &b);
	if (vb_resize_encode(&b, 1, 24, 80) < 0)
		die("vb_resize_encode failed");
	append(&s, &b);
	vb_msg_begin(&b, VB_MSG_EXEC_STDIN, VB_FLAG_EOF, 1);
	vb_msg_put_bytes(&b, VB_TAG_DATA, "exit 3\r", 7);
	end(&b);
	append(&s, &b);
	write_buf("session_pty_stream.bin", &s);

	/* what the guest sends: handshake reply, an exec's life, replies */
	vb_buf_reset(&s);
	vb_msg_begin(&b, VB_MSG_HELLO_OK, 0, 0);
	vb_msg_put_u64(&b, VB_TAG_VERSION, VB_PROTO_VERSION);
	vb_msg_put_str(&b, VB_TAG_KERNEL, "6.1.0-voidbox");
	vb_msg_put_str(&b, VB_TAG_BOOT_ID, "3f2b7c1e-5d4a-4e8f-9a61-0c2d3e4f5a6b");
	end(&b);
	append(&s, &b);
	vb_msg_begin(&b, VB_MSG_EXEC_STARTED, 0, 1);
	vb_msg_put_u64(&b, VB_TAG_PID, 42);
	end(&b);
	append(&s, &b);
	vb_msg_begin(&b, VB_MSG_EXEC_OUTPUT, 0, 1);
	vb_msg_put_u64(&b, VB_TAG_STREAM, 2);
	vb_msg_put_bytes(&b, VB_TAG_DATA, "warning: \x00\xff binary\n", 19);
	end(&b);
	append(&s, &b);
	vb_msg_begin(&b, VB_MSG_EXEC_EXIT, 0, 1);
	vb_msg_put_u64(&b, VB_TAG_EXIT_CODE, 0);
	vb_msg_put_u64(&b, VB_TAG_SIGNAL, 9);
	vb_msg_put_u64(&b, VB_TAG_TIMED_OUT, 1);
	end(&b);
	append(&s, &b);
	vb_msg_begin(&b, VB_MSG_OK, 0, 7);
	vb_msg_put_u64(&b, VB_TAG_CPU_USER, 1234);
	vb_msg_put_u64(&b, VB_TAG_MEM_TOTAL_KB, 262144);
	vb_msg_put_u64(&b, VB_TAG_UPTIME_MS, 98765);
	vb_msg_put_u64(&b, VB_TAG_NPROCS, 3);
	end(&b);
	append(&s, &b);
	vb_msg_begin(&b, VB_MSG_ERROR, 0, 6);
	vb_msg_put_u64(&b, VB_TAG_CODE, VB_ERR_OUTSIDE);
	vb_msg_put_str(&b, VB_TAG_MESSAGE, "path escapes the allowed roots");
	end(&b);
	append(&s, &b);
	write_buf("guest_replies_stream.bin", &s);

	/* a boot segment nested in a stream after a frame */
	vb_buf_reset(&s);
	exec_minimal(&b, 9);
	append(&s, &b);
	boot_full(&b);
	append(&s, &b);
	write_buf("stream_exec_boot.bin", &s);

	/* ---- malformed frames ---- */

	/* the header claims more payload than the input has */
	exec_full(&b, 1);
	write_bytes("exec_truncated.bin", b.data, b.len - 5);

	/* a field running past the end of an otherwise consistent frame */
	vb_msg_begin(&b, VB_MSG_EXEC, 0, 1);
	vb_msg_put_str(&b, VB_TAG_ARG, "/bin/ls");
	{
		size_t off = b.len;
		vb_msg_put_str(&b, VB_TAG_CWD, "/tmp");
		patch_field_len(&b, off, 0x7fffffff);
	}
	end(&b);
	write_buf("exec_field_past_end.bin", &b);

	/* half a field header at the end */
	vb_msg_begin(&b, VB_MSG_EXEC, 0, 1);
	vb_msg_put_str(&b, VB_TAG_ARG, "/bin/ls");
	vb_msg_put_bytes(&b, VB_TAG_ENV, NULL, 0);
	b.len -= 3;
	end(&b);
	write_buf("exec_half_field_hdr.bin", &b);

	vb_msg_begin(&b, VB_MSG_EXEC, 0, 1);
	vb_msg_put_str(&b, VB_TAG_ARG, "");
	vb_msg_put_str(&b, VB_TAG_ARG, "x");
	end(&b);
	write_buf("exec_empty_argv0.bin", &b);

	vb_msg_begin(&b, VB_MSG_EXEC, 0, 1);
	vb_msg_put_str(&b, VB_TAG_ARG, "env");
	vb_msg_put_str(&b, VB_TAG_ENV, "NOEQUALS");
	vb_msg_put_str(&b, VB_TAG_ENV, "=value");
	vb_msg_put_str(&b, VB_TAG_CWD, "relative/dir");
	end(&b);
	write_buf("exec_bad_env_cwd.bin", &b);

	vb_msg_begin(&b, VB_MSG_EXEC, 0, 1);
	vb_msg_put_str(&b, VB_TAG_ARG, "id");
	vb_msg_put_u64(&b, VB_TAG_UID, 65536);
	vb_msg_put_bytes(&b, VB_TAG_GID, "\x01\x02\x03\x04", 4);
	vb_msg_put_u64(&b, VB_TAG_STDIN, 2);
	end(&b);
	write_buf("exec_bad_ints.bin", &b);

	vb_msg_begin(&b, VB_MSG_EXEC, 0, 1);
	vb_msg_put_bytes(&b, VB_TAG_ARG, "rm\0-rf", 6);
	end(&b);
	write_buf("exec_nul_in_arg.bin", &b);

	/* terminal fields out of range or of the wrong size */
	vb_msg_begin(&b, VB_MSG_EXEC, 0, 1);
	vb_msg_put_str(&b, VB_TAG_ARG, "sh");
	vb_msg_put_u64(&b, VB_TAG_PTY, 2);
	vb_msg_put_u64(&b, VB_TAG_ROWS, 0);
	vb_msg_put_u64(&b, VB_TAG_COLS, VB_TERM_MAX + 1);
	end(&b);
	write_buf("exec_bad_pty.bin", &b);

	vb_msg_begin(&b, VB_MSG_EXEC_RESIZE, 0, 1);
	vb_msg_put_u64(&b, VB_TAG_ROWS, 0);
	vb_msg_put_bytes(&b, VB_TAG_COLS, "\x50\x00", 2);
	end(&b);
	write_buf("resize_bad.bin", &b);

	vb_msg_begin(&b, VB_MSG_EXEC_RESIZE, 0, 1);
	vb_msg_put_u64(&b, VB_TAG_ROWS, 24);
	end(&b);
	write_buf("resize_no_cols.bin", &b);

	/* header length over VB_FRAME_MAX */
	hello(&b);
	patch_hdr(&b, VB_FRAME_MAX + 1, VB_MSG_HELLO);
	write_buf("hdr_too_big.bin", &b);

	/* less than one header */
	write_bytes("short_header.bin", "\x05\x00\x00\x00\x01", 5);

	/* boot: wrong version, relative mount, '/' in an allow entry */
	vb_msg_begin(&b, VB_MSG_BOOT, 0, 0);
	vb_msg_put_u64(&b, VB_TAG_VERSION, 2);
	vb_msg_put_bytes(&b, VB_TAG_SECRET, sec, VB_SECRET_LEN);
	vb_msg_put_str(&b, VB_TAG_ALLOW, "sh");
	end(&b);
	write_buf("boot_bad_version.bin", &b);

	vb_msg_begin(&b, VB_MSG_BOOT, 0, 0);
	vb_msg_put_u64(&b, VB_TAG_VERSION, VB_PROTO_VERSION);
	vb_msg_put_bytes(&b, VB_TAG_SECRET, sec, VB_SECRET_LEN);
	{
		long off = vb_msg_nest_begin(&b, VB_TAG_MOUNT);
		vb_msg_put_str(&b, VB_TAG_MOUNT_TAG, "good");
		vb_msg_put_str(&b, VB_TAG_MOUNT_PATH, "/good");
		vb_msg_nest_end(&b, off);
		off = vb_msg_nest_begin(&b, VB_TAG_MOUNT);
		vb_msg_put_str(&b, VB_TAG_MOUNT_TAG, "bad");
		vb_msg_put_str(&b, VB_TAG_MOUNT_PATH, "relative/path");
		vb_msg_put_u64(&b, VB_TAG_MOUNT_RO, 0);
		vb_msg_nest_end(&b, off);
	}
	end(&b);
	write_buf("boot_relative_mount.bin", &b);

	vb_msg_begin(&b, VB_MSG_BOOT, 0, 0);
	vb_msg_put_u64(&b, VB_TAG_VERSION, VB_PROTO_VERSION);
	vb_msg_put_bytes(&b, VB_TAG_SECRET, sec, VB_SECRET_LEN);
	vb_msg_put_str(&b, VB_TAG_ALLOW, "ls");
	vb_msg_put_str(&b, VB_TAG_ALLOW, "/bin/sh");
	vb_msg_put_str(&b, VB_TAG_HOSTNAME, "h");
	end(&b);
	write_buf("boot_allow_slash.bin", &b);

	/* boot: secret of the wrong length, a malformed nested mount */
	vb_msg_begin(&b, VB_MSG_BOOT, 0, 0);
	vb_msg_put_u64(&b, VB_TAG_VERSION, VB_PROTO_VERSION);
	vb_msg_put_bytes(&b, VB_TAG_SECRET, sec, VB_SECRET_LEN - 1);
	{
		long off = vb_msg_nest_begin(&b, VB_TAG_MOUNT);
		size_t inner = b.len;
		vb_msg_put_str(&b, VB_TAG_MOUNT_TAG, "t");
		patch_field_len(&b, inner, 2);
		vb_msg_nest_end(&b, off);
	}
	end(&b);
	write_buf("boot_bad_secret_mount.bin", &b);

	/* boot: one mount and one allow entry over the limits */
	vb_msg_begin(&b, VB_MSG_BOOT, 0, 0);
	vb_msg_put_u64(&b, VB_TAG_VERSION, VB_PROTO_VERSION);
	vb_msg_put_bytes(&b, VB_TAG_SECRET, sec, VB_SECRET_LEN);
	for (unsigned i = 0; i < VB_MAX_MOUNTS + 1; i++) {
		long off = vb_msg_nest_begin(&b, VB_TAG_MOUNT);
		vb_msg_put_str(&b, VB_TAG_MOUNT_TAG, "t");
		vb_msg_put_str(&b, VB_TAG_MOUNT_PATH, "/m");
		vb_msg_nest_end(&b, off);
	}
	end(&b);
	write_buf("boot_too_many_mounts.bin", &b);

	vb_msg_begin(&b, VB_MSG_BOOT, 0, 0);
	vb_msg_put_u64(&b, VB_TAG_VERSION, VB_PROTO_VERSION);
	vb_msg_put_bytes(&b, VB_TAG_SECRET, sec, VB_SECRET_LEN);
	for (unsigned i = 0; i < VB_MAX_ALLOW + 1; i++)
		vb_msg_put_str(&b, VB_TAG_ALLOW, "x");
	end(&b);
	write_buf("boot_too_many_allow.bin", &b);

	/* boot with trailing garbage after the frame */
	boot_full(&b);
	{
		struct vb_buf g = { 0 };
		append(&g, &b);
		struct vb_buf junk = { .data = (uint8_t *)sec, .len = 7, .cap = 7, .oom = 0 };
		append(&g, &junk);
		write_buf("boot_trailing_garbage.bin", &g);
		vb_buf_free(&g);
	}

	vb_buf_free(&b);
	vb_buf_free(&s);
	return failed;
}
