/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Integration tests of the control channel and the library API, on real VMs:
 * authentication (a wrong secret and a non-HELLO first frame are refused),
 * the secret's absence from everything a guest process can read, files with
 * their confinement, telemetry, and requests served while an exec runs.
 * Prints "ok - NAME" / "not ok - NAME" lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "channel/channel.h"
#include "image/image.h"
#include "util/util.h"
#include "vmm/vmm.h"
#include "voidbox/voidbox.h"

#include "itest.h"

/* ---- a VM booted by hand, so the test knows its secret ------------------ */

struct manual_vm {
	char dir[64];
	struct vb_vmm *vm;
	int cfd;
	uint8_t secret[VB_SECRET_LEN];
};

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
	struct vb_boot boot = { .hostname = (char *)(uintptr_t)"itest" };
	memcpy(boot.secret, m->secret, VB_SECRET_LEN);
	int initrd = vb_image_make_initrd(shared, &boot, &err);
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
				    .cmdline = "console=ttyS0 quiet panic=-1 reboot=t acpi=off",
				    .memory_mib = 256, .vcpus = 1, .ctl_socket = sock };
	m->vm = vb_vmm_qemu_ops.start(&spec, &err);
	close(initrd);
	CHECK(m->vm, "%s", err.msg);
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	CHECK(poll(&p, 1, 30000) == 1, "QEMU did not connect");
	m->cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	close(lfd);
	CHECK(m->cfd >= 0, "accept");
	return 0;
}

static void manual_free(struct manual_vm *m)
{
	if (m->cfd >= 0)
		close(m->cfd);
	vb_vmm_destroy(m->vm);
	vb_rm_rf(m->dir);
}

static int test_wrong_secret_refused(void)
{
	struct manual_vm m;
	if (manual_boot(&m) < 0) {
		manual_free(&m);
		return -1;
	}
	uint8_t wrong[VB_SECRET_LEN];
	memcpy(wrong, m.secret, sizeof(wrong));
	wrong[VB_SECRET_LEN - 1] ^= 1; /* one bit off */
	struct vb_chan_hello hello;
	vb_error err = { 0 };
	struct vb_chan *ch = vb_chan_open(m.cfd, wrong, 30000, m.vm->pidfd, -1, &hello, &err);
	m.cfd = -1; /* owned by vb_chan_open */
	int ok = ch == NULL;
	vb_chan_close(ch);
	manual_free(&m);
	CHECK(ok, "a wrong secret was accepted");
	fprintf(stderr, "  refused: %s\n", err.msg);
	return 0;
}

static int test_first_frame_must_be_hello(void)
{
	struct manual_vm m;
	if (manual_boot(&m) < 0) {
		manual_free(&m);
		return -1;
	}
	/* an EXEC before authenticating must not run anything */
	struct vb_buf b = { 0 };
	const char *argv[] = { "sh", "-c", "echo pwned", NULL };
	struct vb_exec_req req = { .argv = (char **)(uintptr_t)argv, .argc = 3, .uid = 0 };
	vb_exec_req_encode(&b, 7, &req);
	int w = vb_write_full(m.cfd, b.data, b.len);
	vb_buf_free(&b);
	/* then the right HELLO: the connection must already be closed for good */
	vb_error err = { 0 };
	struct vb_chan_hello hello;
	struct vb_chan *ch = vb_chan_open(m.cfd, m.secret, 20000, m.vm->pidfd, -1, &hello, &err);
	m.cfd = -1;
	int ok = w == 0 && ch == NULL;
	vb_chan_close(ch);
	manual_free(&m);
	CHECK(ok, "the agent served a connection whose first frame was not HELLO");
	return 0;
}

/* Run a command over a raw channel and collect stdout (for the secret test). */
static int raw_exec(struct vb_chan *ch, const char *cmd, char *out, size_t max)
{
	/* an exec's frames, as src/sandbox/exec.c declares them */
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
			vb_msg_begin(&b, VB_MSG_EXEC_ACK, 0, 0); /* credit is whole frames */
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
	vb_buf_free(&b);
	vb_chan_unregister(ch, &slot);
	CHECK(rc == 0, "exec failed: %s", err.msg);
	return 0;
}

static int test_secret_invisible_in_guest(void)
{
	struct manual_vm m;
	if (manual_boot(&m) < 0) {
		manual_free(&m);
		return -1;
	}
	vb_error err = { 0 };
	struct vb_chan_hello hello;
	struct vb_chan *ch = vb_chan_open(m.cfd, m.secret, 60000, m.vm->pidfd, -1, &hello, &err);
	m.cfd = -1;
	if (!ch) {
		manual_free(&m);
		CHECK(0, "right secret refused: %s", err.msg);
	}
	static char out[1 << 20];
	/* everything a guest process can read about boot and environment,
	 * hex-dumped so raw secret bytes can be searched for as text too */
	int rc = raw_exec(ch,
			  "cat /proc/cmdline; env; cat /proc/1/environ | tr '\\0' '\\n';"
			  "ls -la /.voidbox 2>&1; echo ==HEX==;"
			  "cat /proc/cmdline /proc/1/environ /proc/self/environ | od -An -tx1 | tr -d ' \\n'",
			  out, sizeof(out));
	vb_chan_close(ch);
	manual_free(&m);
	if (rc < 0)
		return -1;
	char hex[2 * VB_SECRET_LEN + 1];
	for (size_t i = 0; i < VB_SECRET_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", m.secret[i]);
	CHECK(strstr(out, "==HEX==") != NULL, "command did not run: %.300s", out);
	CHECK(strstr(out, hex) == NULL, "secret found in the guest's cmdline/environment");
	CHECK(memmem(out, strlen(out), m.secret, 8) == NULL, "raw secret bytes found");
	CHECK(strstr(out, "No such file") != NULL, "/.voidbox still exists: %.500s", out);
	return 0;
}

/* ---- the public API ---------------------------------------------------- */

static int test_files_and_confinement(vb_sandbox *sb)
{
	vb_error err = { 0 };
	const char *text = "hello from the host\n";
	CHECK(vb_file_mkdir(sb, "/workspace/a/b/c", 0, 0, &err) == 0, "%s", err.msg);
	CHECK(vb_file_write(sb, "/workspace/a/b/c/f.txt", text, strlen(text), 0600, 0, &err) == 0,
	      "%s", err.msg);
	struct vb_file_stat st;
	CHECK(vb_file_stat(sb, "/workspace/a/b/c/f.txt", &st, &err) == 0, "%s", err.msg);
	CHECK(st.size == strlen(text) && (st.mode & 0777) == 0600 && st.uid == 1000 && st.gid == 1000,
	      "size %llu mode %llo uid %llu", (unsigned long long)st.size,
	      (unsigned long long)st.mode, (unsigned long long)st.uid);
	uint8_t *data = NULL;
	size_t len = 0;
	CHECK(vb_file_read(sb, "/workspace/a/b/c/f.txt", 1 << 20, &data, &len, &err) == 0, "%s",
	      err.msg);
	int same = len == strlen(text) && memcmp(data, text, len) == 0;
	free(data);
	CHECK(same, "read back differs");

	/* a 20 MiB file crosses several frames each way */
	size_t big = 20u << 20;
	uint8_t *blob = malloc(big);
	CHECK(blob, "oom");
	for (size_t i = 0; i < big; i++)
		blob[i] = (uint8_t)(i * 2654435761u >> 13);
	int wrc = vb_file_write(sb, "/tmp/big.bin", blob, big, 0, 0, &err);
	int rrc = wrc == 0 ? vb_file_read(sb, "/tmp/big.bin", big, &data, &len, &err) : -1;
	same = rrc == 0 && len == big && memcmp(data, blob, big) == 0;
	free(blob);
	if (rrc == 0)
		free(data);
	CHECK(same, "20 MiB round trip failed: %s", err.msg);

	/* confinement: outside the roots, through a symlink, with .. */
	CHECK(vb_file_write(sb, "/etc/evil", "x", 1, 0, 1, &err) < 0, "wrote /etc/evil");
	struct vb_exec_result res;
	const char *ln[] = { "ln", "-s", "/etc", "/workspace/link", NULL };
	struct vb_exec_params p = { .argv = ln };
	CHECK(vb_exec_run(sb, &p, NULL, 0, 4096, &res, &err) == 0 && res.exit_code == 0, "ln: %s",
	      err.msg);
	vb_exec_result_free(&res);
	CHECK(vb_file_write(sb, "/workspace/link/passwd", "x", 1, 0, 1, &err) < 0,
	      "wrote through a symlink");
	CHECK(vb_file_read(sb, "/workspace/link/passwd", 4096, &data, &len, &err) < 0,
	      "read through a symlink");
	CHECK(vb_file_read(sb, "/workspace/../etc/passwd", 4096, &data, &len, &err) < 0,
	      "read through ..");
	return 0;
}

static int test_sample(vb_sandbox *sb)
{
	vb_error err = { 0 };
	struct vb_sample s;
	CHECK(vb_sandbox_sample(sb, &s, &err) == 0, "%s", err.msg);
	CHECK(s.mem_total_kb > 100000 && s.mem_avail_kb > 0 && s.mem_avail_kb <= s.mem_total_kb,
	      "mem %llu/%llu", (unsigned long long)s.mem_avail_kb,
	      (unsigned long long)s.mem_total_kb);
	CHECK(s.uptime_ms > 0 && s.nprocs >= 1 && s.cpu_user + s.cpu_system + s.cpu_idle > 0,
	      "uptime %llu nprocs %llu", (unsigned long long)s.uptime_ms,
	      (unsigned long long)s.nprocs);
	return 0;
}

static int test_requests_served_during_long_exec(vb_sandbox *sb)
{
	vb_error err = { 0 };
	const char *argv[] = { "sleep", "6", NULL };
	struct vb_exec_params p = { .argv = argv };
	vb_exec *ex = vb_exec_start(sb, &p, &err);
	CHECK(ex, "%s", err.msg);
	int64_t t0 = vb_now_ms();
	struct vb_sample s;
	int rc = vb_sandbox_sample(sb, &s, &err);
	rc |= vb_file_write(sb, "/tmp/during", "x", 1, 0, 0, &err);
	const char *echo[] = { "echo", "parallel", NULL };
	struct vb_exec_params q = { .argv = echo };
	struct vb_exec_result res;
	rc |= vb_exec_run(sb, &q, NULL, 0, 4096, &res, &err);
	int64_t took = vb_now_ms() - t0;
	int echoed = rc == 0 && res.out_len == 9 && !memcmp(res.out, "parallel\n", 9);
	if (rc == 0)
		vb_exec_result_free(&res);
	vb_exec_free(ex);
	CHECK(rc == 0 && echoed, "requests failed: %s", err.msg);
	CHECK(took < 5000, "requests waited for the long exec (%lld ms)", (long long)took);
	return 0;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	report("wrong secret is refused", test_wrong_secret_refused());
	report("first frame must be HELLO", test_first_frame_must_be_hello());
	report("secret absent from guest cmdline and environment", test_secret_invisible_in_guest());

	vb_error err = { 0 };
	struct vb_sandbox_config cfg = { .memory_mib = 256 };
	vb_sandbox *sb = vb_sandbox_start(&cfg, &err);
	if (!sb) {
		fprintf(stderr, "  cannot boot: %s\n", err.msg);
		report("files and confinement", -1);
		report("telemetry sample", -1);
		report("requests served during a long exec", -1);
	} else {
		report("files and confinement", test_files_and_confinement(sb));
		report("telemetry sample", test_sample(sb));
		report("requests served during a long exec", test_requests_served_during_long_exec(sb));
		vb_sandbox_free(sb);
	}
	return failures ? 1 : 0;
}
