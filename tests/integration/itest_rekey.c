/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Integration tests of REKEY (docs/protocol.md, "Re-keying") on real,
 * cold-booted VMs.  What a snapshot restore does right after the restore is
 * done here to a VM that booted normally:
 *
 *   - vb_sandbox_rekey() on a library sandbox: execs go on, the guest's
 *     clock is the host's, the agent reported the entropy credited (the
 *     call checks it), and a second re-key works too;
 *   - on a VM booted by hand in reconnect mode (no ONE_HOST, as a snapshot's
 *     VM must be so that its restorer can say HELLO): the raw REKEY frame
 *     with a clock an hour ahead; the next host's HELLO (on the serial port
 *     a new host is a HELLO inside the stream) with the old secret is
 *     refused, with the new one accepted, and the guest's clock is the one
 *     sent; malformed REKEYs before it are refused without harm (the agent
 *     answers, the old secret still works).
 *
 * That two restored copies of one VM produce different /dev/urandom output
 * needs snapshots: it is the snapshot tests' (issue 12, part S1).  A guest
 * that sends REKEY to the host is tests/unit/test_channel.c's.
 * Prints "ok - NAME" / "not ok - NAME" lines.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "channel/channel.h"
#include "image/image.h"
#include "util/util.h"
#include "vmm/vmm.h"
#include "voidbox/voidbox.h"

#include "itest.h"

static int64_t wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

/* ---- through the library ----------------------------------------------- */

/* Run (cmd) in the sandbox; its stdout (trimmed) into (out). */
static int sb_sh(vb_sandbox *sb, const char *cmd, char *out, size_t max)
{
	const char *argv[] = { "sh", "-c", cmd, NULL };
	struct vb_exec_params p = { .argv = argv, .timeout_ms = 30000 };
	struct vb_exec_result res;
	vb_error err = { 0 };
	CHECK(vb_exec_run(sb, &p, NULL, 0, 4096, &res, &err) == 0, "exec: %s", err.msg);
	int code = res.exit_code;
	size_t n = res.out_len < max - 1 ? res.out_len : max - 1;
	memcpy(out, res.out, n);
	out[n] = '\0';
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = '\0';
	vb_exec_result_free(&res);
	CHECK(code == 0, "'%s' exited %d", cmd, code);
	return 0;
}

static int test_sandbox_rekey(void)
{
	vb_error err = { 0 };
	struct vb_sandbox_config cfg = { .memory_mib = 256 };
	vb_sandbox *sb = vb_sandbox_start(&cfg, &err);
	CHECK(sb, "cannot boot: %s", err.msg);
	int rc = -1;
	char out[256];
	/* A stage cannot move the clock (the agent drops CAP_SYS_TIME), so
	 * here the guest's clock is already near the host's: the proof that
	 * REKEY sets it is the hand-booted VM's below, sent an hour ahead. */
	CHECK_OR(goto out, vb_sandbox_rekey(sb, &err) == 0, "rekey: %s", err.msg);
	CHECK_OR(goto out, sb_sh(sb, "echo still here", out, sizeof(out)) == 0, "exec after rekey");
	CHECK_OR(goto out, strcmp(out, "still here") == 0, "output '%s'", out);
	int64_t host = wall_s();
	CHECK_OR(goto out, sb_sh(sb, "date +%s", out, sizeof(out)) == 0, "date");
	CHECK_OR(goto out, atoll(out) >= host - 2 && atoll(out) <= host + 3,
		 "guest clock %s after the rekey, host %lld", out, (long long)host);
	/* a second re-key replaces the first */
	CHECK_OR(goto out, vb_sandbox_rekey(sb, &err) == 0, "second rekey: %s", err.msg);
	host = wall_s();
	CHECK_OR(goto out, sb_sh(sb, "date +%s", out, sizeof(out)) == 0, "date");
	long long guest = atoll(out);
	CHECK_OR(goto out, guest >= host - 2 && guest <= host + 3,
		 "guest clock %lld, host %lld", guest, (long long)host);
	rc = 0;
out:
	vb_sandbox_free(sb);
	return rc;
}

/* ---- a VM booted by hand, in reconnect mode ------------------------------ */

struct manual_vm {
	char dir[64];
	struct vb_vmm *vm;
	int cfd;
	uint8_t secret[VB_SECRET_LEN];
};

static void manual_free(struct manual_vm *m)
{
	if (m->cfd >= 0)
		close(m->cfd);
	vb_vmm_destroy(m->vm);
	if (m->dir[0])
		vb_rm_rf(m->dir);
}

static int manual_boot(struct manual_vm *m)
{
	vb_error err = { 0 };
	memset(m, 0, sizeof(*m));
	m->cfd = -1;
	snprintf(m->dir, sizeof(m->dir), "/tmp/vb-itest-XXXXXX");
	CHECK(mkdtemp(m->dir), "mkdtemp");
	_cleanup_free_ char *kernel = vb_image_kernel(&err);
	_cleanup_free_ char *shared = vb_image_initramfs(&err);
	CHECK(kernel && shared, "%s", err.msg);
	CHECK(vb_random(m->secret, sizeof(m->secret), &err) == 0, "%s", err.msg);
	struct vb_boot boot = { .hostname = (char *)(uintptr_t)"itest" }; /* no ONE_HOST */
	memcpy(boot.secret, m->secret, VB_SECRET_LEN);
	int initrd = vb_image_make_initrd(shared, &boot, &err);
	explicit_bzero(boot.secret, sizeof(boot.secret));
	CHECK(initrd >= 0, "%s", err.msg);
	char sock[96];
	snprintf(sock, sizeof(sock), "%s/ctl.sock", m->dir);
	struct vb_accel_info accel;
	CHECK(vb_accel_resolve(VB_ACCEL_AUTO, kernel, 0, &accel, &err) == 0, "%s", err.msg);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lfd, 1) == 0, "bind");
	struct vb_vmm_spec spec = { .accel = accel.accel, .kernel = kernel, .initrd_fd = initrd,
				    .cmdline = "console=ttyS0 quiet panic=-1 reboot=t acpi=off "
					       "no_timer_check",
				    .memory_mib = 256, .vcpus = 1, .ctl_socket = sock };
	m->vm = vb_vmm_qemu_ops.start(&spec, &err);
	close(initrd);
	CHECK(m->vm, "%s", err.msg);
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	CHECK(poll(&p, 1, 60000) == 1, "QEMU did not connect");
	m->cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	close(lfd);
	CHECK(m->cfd >= 0, "accept");
	return 0;
}

/* Send (b) (a complete frame) on (fd). */
static int raw_send(int fd, struct vb_buf *b)
{
	CHECK(b->len >= VB_FRAME_HDR_LEN && !b->oom, "frame not built");
	CHECK(vb_write_full(fd, b->data, b->len) == 0, "write: %s", strerror(errno));
	return 0;
}

static int read_within(int fd, uint8_t *p, size_t n, int64_t deadline)
{
	while (n > 0) {
		int64_t left = deadline - vb_now_ms();
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		CHECK(left > 0 && poll(&pfd, 1, (int)left) == 1, "no frame in time");
		ssize_t r = read(fd, p, n);
		CHECK(r > 0 || (r < 0 && errno == EINTR), "read: %s", r == 0 ? "EOF" : strerror(errno));
		if (r > 0) {
			p += r;
			n -= (size_t)r;
		}
	}
	return 0;
}

/* Read one frame (payload at most 4 KiB, NUL-terminated) within 60 s. */
static int raw_recv(int fd, struct vb_hdr *h, uint8_t payload[4097])
{
	uint8_t raw[VB_FRAME_HDR_LEN];
	int64_t deadline = vb_now_ms() + 60000;
	CHECK(read_within(fd, raw, sizeof(raw), deadline) == 0, "header");
	CHECK(vb_hdr_decode(raw, h) == 0 && h->len <= 4096, "bad header (len %u)", h->len);
	CHECK(read_within(fd, payload, h->len, deadline) == 0, "payload");
	payload[h->len] = '\0';
	return 0;
}

static int raw_hello(int fd, const uint8_t secret[VB_SECRET_LEN], struct vb_hdr *h,
		     uint8_t payload[4097])
{
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_HELLO, 0, 0);
	vb_msg_put_u64(&b, VB_TAG_VERSION, VB_PROTO_VERSION);
	vb_msg_put_bytes(&b, VB_TAG_SECRET, secret, VB_SECRET_LEN);
	vb_msg_end(&b);
	int rc = raw_send(fd, &b);
	vb_buf_free(&b);
	return rc < 0 ? -1 : raw_recv(fd, h, payload);
}

/* The agent's ERROR code of (payload), or -1. */
static int error_code(const struct vb_hdr *h, const uint8_t *payload)
{
	uint64_t code = 0;
	if (h->type != VB_MSG_ERROR || vb_payload_u64(payload, h->len, VB_TAG_CODE, &code) < 0)
		return -1;
	return (int)code;
}

/* Run a command over a raw channel and collect stdout. */
static int chan_sh(struct vb_chan *ch, const char *cmd, char *out, size_t max)
{
	struct vb_chan_slot slot = {
		.efd = -1,
		.max_queued = VB_OUTPUT_WINDOW + 8192,
		.accept = VB_CHAN_TYPE(VB_MSG_EXEC_STARTED) | VB_CHAN_TYPE(VB_MSG_EXEC_OUTPUT) |
			  VB_CHAN_TYPE(VB_MSG_EXEC_EXIT) | VB_CHAN_TYPE(VB_MSG_ERROR),
		.final = VB_CHAN_TYPE(VB_MSG_EXEC_EXIT) | VB_CHAN_TYPE(VB_MSG_ERROR),
	};
	vb_error err = { 0 };
	CHECK(vb_chan_register(ch, &slot, &err) == 0, "%s", err.msg);
	const char *argv[] = { "sh", "-c", cmd, NULL };
	struct vb_exec_req req = { .argv = (char **)(uintptr_t)argv, .argc = 3, .uid = 0 };
	struct vb_buf b = { 0 };
	vb_exec_req_encode(&b, 0, &req);
	int rc = vb_chan_send(ch, &b, slot.id, &err);
	size_t n = 0;
	while (rc == 0) {
		struct vb_chan_frame *f = NULL;
		if (vb_chan_recv(ch, &slot, &f, 30000, &err) <= 0) {
			rc = -1;
			break;
		}
		if (f->hdr.type == VB_MSG_EXEC_OUTPUT) {
			struct vb_field d;
			vb_payload_find(f->payload, f->hdr.len, VB_TAG_DATA, &d);
			if (d.data && n + d.len < max) {
				memcpy(out + n, d.data, d.len);
				n += d.len;
			}
			vb_msg_begin(&b, VB_MSG_EXEC_ACK, 0, 0);
			vb_msg_put_u64(&b, VB_TAG_COUNT, VB_CHAN_COST(f->hdr.len));
			vb_msg_end(&b);
			vb_chan_send(ch, &b, slot.id, &err);
		}
		int done = f->hdr.type == VB_MSG_EXEC_EXIT || f->hdr.type == VB_MSG_ERROR;
		free(f);
		if (done)
			break;
	}
	out[n] = '\0';
	while (n > 0 && out[n - 1] == '\n')
		out[--n] = '\0';
	vb_buf_free(&b);
	vb_chan_unregister(ch, &slot);
	CHECK(rc == 0, "exec failed: %s", err.msg);
	return 0;
}

/* Malformed or invalid REKEYs are refused, and nothing changes: the agent
 * still answers and the old secret still authenticates. */
static int malformed_rekeys(struct manual_vm *m)
{
	struct vb_hdr h;
	uint8_t pl[4097];
	struct vb_buf b = { 0 };
	uint8_t bytes[VB_REKEY_ENTROPY_MIN] = { 0 };
	/* too little entropy: ERROR INVAL, the session goes on */
	vb_msg_begin(&b, VB_MSG_REKEY, 0, 1);
	vb_msg_put_bytes(&b, VB_TAG_SECRET, bytes, VB_SECRET_LEN);
	vb_msg_put_bytes(&b, VB_TAG_ENTROPY, bytes, VB_REKEY_ENTROPY_MIN - 1);
	vb_msg_end(&b);
	CHECK_OR(vb_buf_free(&b); return -1, raw_send(m->cfd, &b) == 0, "send");
	CHECK_OR(vb_buf_free(&b); return -1, raw_recv(m->cfd, &h, pl) == 0, "no reply");
	CHECK_OR(vb_buf_free(&b); return -1, h.id == 1 && error_code(&h, pl) == VB_ERR_INVAL,
		 "short entropy: %s %d", vb_msg_name(h.type), error_code(&h, pl));
	/* a secret a byte short, with a hostile hostname */
	vb_msg_begin(&b, VB_MSG_REKEY, 0, 2);
	vb_msg_put_bytes(&b, VB_TAG_SECRET, bytes, VB_SECRET_LEN - 1);
	vb_msg_put_bytes(&b, VB_TAG_ENTROPY, bytes, VB_REKEY_ENTROPY_MIN);
	vb_msg_put_str(&b, VB_TAG_HOSTNAME, "\x1b]0;owned\x07");
	vb_msg_end(&b);
	CHECK_OR(vb_buf_free(&b); return -1, raw_send(m->cfd, &b) == 0, "send");
	CHECK_OR(vb_buf_free(&b); return -1, raw_recv(m->cfd, &h, pl) == 0, "no reply");
	CHECK_OR(vb_buf_free(&b); return -1, h.id == 2 && error_code(&h, pl) == VB_ERR_INVAL,
		 "short secret: %s %d", vb_msg_name(h.type), error_code(&h, pl));
	/* a field running past the payload's end: PROTO, the session ends (the
	 * serial port then hunts for the next HELLO with the secret) */
	vb_msg_begin(&b, VB_MSG_REKEY, 0, 3);
	vb_msg_put_bytes(&b, VB_TAG_SECRET, bytes, VB_SECRET_LEN);
	vb_msg_end(&b);
	b.data[VB_FRAME_HDR_LEN + 2] = 0xff; /* the SECRET field's length */
	CHECK_OR(vb_buf_free(&b); return -1, raw_send(m->cfd, &b) == 0, "send");
	vb_buf_free(&b);
	CHECK(raw_recv(m->cfd, &h, pl) == 0, "no reply");
	CHECK(error_code(&h, pl) == VB_ERR_PROTO, "truncated field: %s %d", vb_msg_name(h.type),
	      error_code(&h, pl));
	/* the agent lives, and the old secret is still the secret */
	CHECK(raw_hello(m->cfd, m->secret, &h, pl) == 0, "no reply to HELLO");
	CHECK(h.type == VB_MSG_HELLO_OK, "HELLO after malformed REKEYs: %s %d (%s)",
	      vb_msg_name(h.type), error_code(&h, pl), (const char *)pl);
	return 0;
}

static int test_reconnect_after_rekey(void)
{
	struct manual_vm m;
	struct vb_chan *ch = NULL;
	int rc = -1, fd2 = -1;
	if (manual_boot(&m) < 0)
		goto out;
	struct vb_hdr h;
	uint8_t pl[4097];
	CHECK_OR(goto out, raw_hello(m.cfd, m.secret, &h, pl) == 0, "no reply to HELLO");
	CHECK_OR(goto out, h.type == VB_MSG_HELLO_OK, "HELLO: %s", vb_msg_name(h.type));
	int bad = malformed_rekeys(&m);
	report("malformed REKEY refused, nothing changed", bad);
	if (bad < 0)
		goto out;

	/* the re-key, the clock an hour ahead of the host's */
	struct vb_rekey rk = { .n_entropy = 64, .hostname = "rekeyed" };
	vb_error err = { 0 };
	CHECK_OR(goto out, vb_random(rk.secret, VB_SECRET_LEN, &err) == 0 &&
				   vb_random(rk.entropy, rk.n_entropy, &err) == 0, "%s", err.msg);
	int64_t ahead = wall_s() + 3600;
	rk.time_ns = (uint64_t)ahead * 1000000000u;
	struct vb_buf b = { 0 };
	vb_rekey_encode(&b, 5, &rk);
	int sent = raw_send(m.cfd, &b);
	explicit_bzero(b.data, b.len);
	vb_buf_free(&b);
	CHECK_OR(goto out, sent == 0 && raw_recv(m.cfd, &h, pl) == 0, "REKEY");
	uint64_t bits = 0;
	CHECK_OR(goto out, h.type == VB_MSG_OK && h.id == 5, "REKEY: %s %d (%s)",
		 vb_msg_name(h.type), error_code(&h, pl), (const char *)pl);
	CHECK_OR(goto out, vb_payload_u64(pl, h.len, VB_TAG_ENTROPY_BITS, &bits) == 0 && bits == 512,
		 "entropy credited: %llu bits", (unsigned long long)bits);

	/* a new host with the old secret: refused (the HELLO goes to the
	 * session, which has no HELLO, and the port then hunts) */
	fd2 = dup(m.cfd);
	CHECK_OR(goto out, fd2 >= 0, "dup");
	struct vb_chan_hello hello;
	struct vb_chan *old = vb_chan_open(fd2, m.secret, 30000, m.vm->pidfd, -1, &hello, &err);
	fd2 = -1; /* owned by vb_chan_open */
	int refused = old == NULL;
	vb_chan_close(old);
	CHECK_OR(goto out, refused, "the old secret was accepted after the re-key");
	fprintf(stderr, "  old secret refused: %s\n", err.msg);
	/* with the new one: accepted */
	ch = vb_chan_open(m.cfd, rk.secret, 30000, m.vm->pidfd, -1, &hello, &err);
	m.cfd = -1;
	explicit_bzero(&rk, sizeof(rk));
	CHECK_OR(goto out, ch, "the new secret was refused: %s", err.msg);
	char out[256];
	CHECK_OR(goto out, chan_sh(ch, "date +%s; hostname", out, sizeof(out)) == 0, "exec");
	long long guest = atoll(out);
	CHECK_OR(goto out, guest >= ahead - 2 && guest <= ahead + 30,
		 "guest clock %lld, sent %lld", guest, (long long)ahead);
	const char *nl = strchr(out, '\n');
	CHECK_OR(goto out, nl && strcmp(nl + 1, "rekeyed") == 0, "hostname: %s", out);
	rc = 0;
out:
	vb_chan_close(ch);
	manual_free(&m);
	return rc;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	report("rekey a library sandbox: execs go on, clock is the host's",
	       test_sandbox_rekey());
	report("after rekey: old secret refused, new accepted, clock and hostname set",
	       test_reconnect_after_rekey());
	return failures ? 1 : 0;
}
