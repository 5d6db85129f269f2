/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The image root on real VMs (docs/oci.md, "In the VM"), through the
 * library API: an ext4 image built here (fakeroot + mke2fs -d, a
 * busybox-static tree) becomes the guest's root under a tmpfs overlay; the
 * image's Env, WorkingDir and User apply unless a request says otherwise;
 * a read-only disk appears at its path with its binaries on PATH; 9p
 * mounts still work; nothing persists and the image file never changes; a
 * VM without these fields is as before; bad images fail clearly.
 * Prints "ok - NAME" / "not ok - NAME" lines; skips (exit 0, a "# skip"
 * line) without fakeroot, mke2fs or a static busybox.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"
#include "voidbox/sandbox.h"

#define CHECK(cond, ...) CHECK_OR(goto out, cond, __VA_ARGS__)
#include "itest.h"

#define EXEC_MS 60000u

static char dir[64], runtime_dir[96], state_dir[96];
static char rootfs[160], skill[160], corrupt[160], notext4[160], share[160];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static void sha256(const char *path, char out[65])
{
	char cmd[256];
	out[0] = '\0';
	snprintf(cmd, sizeof(cmd), "sha256sum '%s'", path);
	FILE *p = popen(cmd, "r");
	if (p) {
		if (fscanf(p, "%64s", out) != 1)
			out[0] = '\0';
		pclose(p);
	}
}

/* The images: the root (busybox, an os-release marker, a root-owned 0644
 * file, a setuid file, a user "app" 1234), a skill disk with one tool, an
 * ext4 image with its block groups zeroed, and a file that is no ext4. */
static int build_images(void)
{
	return sh("set -e; cd %s; B=$(command -v busybox)\n"
		  "mkdir -p t/bin t/etc t/usr/bin t/home/app s/bin share\n"
		  "cp \"$B\" t/bin/busybox\n"
		  "for a in sh cat id pwd ls touch echo env stat test mkdir rm printf true; do "
		  "ln -s /bin/busybox t/bin/$a; done\n"
		  "printf 'ID=vbtest\\nVB_MARKER=rootfs-ok\\n' > t/etc/os-release\n"
		  "printf 'root:x:0:0:root:/root:/bin/sh\\napp:x:1234:1234:app:/home/app:/bin/sh\\n' "
		  "> t/etc/passwd\n"
		  "printf 'root:x:0:\\napp:x:1234:\\n' > t/etc/group\n"
		  "echo secret > t/etc/rootonly; chmod 644 t/etc/rootonly\n"
		  "cp \"$B\" t/usr/bin/suidprog\n"
		  "printf '#!/bin/sh\\necho skill-ran\\n' > s/bin/skilltool; chmod 755 s/bin/skilltool\n"
		  "echo shared > share/hello\n"
		  "fakeroot sh -c 'chown -R 0:0 t s && chown -R 1234:1234 t/home/app && "
		  "chmod 4755 t/usr/bin/suidprog && mke2fs -q -t ext4 -d t root.ext4 16M && "
		  "mke2fs -q -t ext4 -d s skill.ext4 4M'\n"
		  "cp root.ext4 corrupt.ext4\n"
		  /* keep the superblock (the host's check passes), wreck the rest */
		  "dd if=/dev/zero of=corrupt.ext4 bs=4096 seek=1 count=64 conv=notrunc status=none\n"
		  "head -c 1048576 /dev/urandom > notext4.img\n",
		  dir) == 0
		       ? 0
		       : -1;
}

/* Run (argv) to completion; stdout into (out) (trimmed), returns the
 * exit code, -1 on failure (err printed). */
static int run(vb_sandbox *sb, const struct vb_exec_params *tmpl, const char *script, char *out,
	       size_t len)
{
	const char *argv[] = { "sh", "-c", script, NULL };
	struct vb_exec_params p = *tmpl;
	p.argv = argv;
	p.timeout_ms = EXEC_MS;
	struct vb_exec_result r = { 0 };
	vb_error err = { 0 };
	if (vb_exec_run(sb, &p, NULL, 0, 65536, &r, &err) < 0) {
		fprintf(stderr, "  exec failed: %s\n", err.msg);
		snprintf(out, len, "%s", err.msg);
		return -1;
	}
	size_t n = r.out_len < len - 1 ? r.out_len : len - 1;
	if (n)
		memcpy(out, r.out, n);
	out[n] = '\0';
	while (n > 0 && out[n - 1] == '\n')
		out[--n] = '\0';
	if (r.err_len)
		fprintf(stderr, "  [stderr of '%s'] %.*s\n", script, (int)r.err_len, (char *)r.errout);
	int rc = r.exit_code;
	vb_exec_result_free(&r);
	return rc;
}

static vb_sandbox *boot(const struct vb_sandbox_config *cfg, vb_error *err)
{
	return vb_sandbox_start(cfg, err);
}

static const char *const image_env[] = { "IMG_ONLY=from-image", "SHARED=image",
					 "PATH=/usr/bin:/bin:/image/bin" };

static int test_image_root(void)
{
	int rc = -1;
	char out[4096], before[65], after[65];
	vb_error err = { 0 };
	sha256(rootfs, before);
	struct vb_mount m = { .host = share, .guest = "/mnt/share", .rw = 1 };
	struct vb_disk_mount dm = { .image = skill, .path = "/skills/tool" };
	struct vb_sandbox_config cfg = {
		.rootfs = rootfs,
		.root_env = image_env,
		.n_root_env = 3,
		.root_workdir = "/app",
		.root_user = "app",
		.disk_mounts = &dm,
		.n_disk_mounts = 1,
		.mounts = &m,
		.n_mounts = 1,
		.name = "itest-rootfs",
		.network = { .enabled = 1 },
	};
	vb_sandbox *sb = boot(&cfg, &err);
	CHECK(sb, "boot: %s", err.msg);
	struct vb_exec_params def = { 0 }, root = { .as_root = 1 }, sbx = { .user = "sandbox" };

	/* the image's files, and the defaults */
	CHECK(run(sb, &def, "cat /etc/os-release", out, sizeof(out)) == 0 &&
		      strstr(out, "VB_MARKER=rootfs-ok"),
	      "os-release: %s", out);
	CHECK(run(sb, &def, "echo $(id -u):$(id -g) $(pwd) $HOME $USER", out, sizeof(out)) == 0 &&
		      !strcmp(out, "1234:1234 /app /home/app app"),
	      "image defaults: %s", out);
	CHECK(run(sb, &def, "echo $IMG_ONLY $SHARED $PATH", out, sizeof(out)) == 0 &&
		      !strcmp(out, "from-image image /usr/bin:/bin:/image/bin:/skills/tool/bin"),
	      "image env: %s", out);
	/* the request's values win */
	const char *env[] = { "SHARED=request", NULL };
	struct vb_exec_params over = { .env = env, .cwd = "/tmp", .user = "sandbox" };
	CHECK(run(sb, &over, "echo $(id -u) $(pwd) $SHARED $IMG_ONLY $HOME", out, sizeof(out)) == 0 &&
		      !strcmp(out, "1000 /tmp request from-image /home/sandbox"),
	      "overrides: %s", out);
	CHECK(run(sb, &root, "id -u", out, sizeof(out)) == 0 && !strcmp(out, "0"), "as_root: %s",
	      out);
	struct vb_exec_params numeric = { .user = "1234:0" };
	CHECK(run(sb, &numeric, "id -u; id -g", out, sizeof(out)) == 0 && !strcmp(out, "1234\n0"),
	      "uid:gid: %s", out);
	struct vb_exec_params nobody = { .user = "nosuchuser" };
	CHECK(run(sb, &nobody, "true", out, sizeof(out)) == -1 && strstr(out, "nosuchuser"),
	      "unknown user: %s", out);

	/* writes anywhere (root), ownership as the image says */
	CHECK(run(sb, &root, "echo x > /usr/x && cat /usr/x", out, sizeof(out)) == 0 &&
		      !strcmp(out, "x"),
	      "write /usr/x: %s", out);
	CHECK(run(sb, &sbx, "echo y >> /etc/rootonly", out, sizeof(out)) != 0,
	      "sandbox user wrote a root-owned file");
	CHECK(run(sb, &def, "stat -c '%u %a' /etc/rootonly /usr/bin/suidprog", out, sizeof(out)) == 0 &&
		      !strcmp(out, "0 644\n0 4755"),
	      "modes: %s", out);
	/* the sandbox user exists in the image's root too */
	CHECK(run(sb, &sbx, "id -un; stat -c %U /home/sandbox", out, sizeof(out)) == 0 &&
		      !strcmp(out, "sandbox\nsandbox"),
	      "sandbox user: %s", out);
	CHECK(run(sb, &sbx, "touch /home/sandbox/f && echo $HOME", out, sizeof(out)) == 0 &&
		      !strcmp(out, "/home/sandbox"),
	      "sandbox home: %s", out);
	/* the disk: its tool on PATH, read-only even to root */
	CHECK(run(sb, &def, "skilltool", out, sizeof(out)) == 0 && !strcmp(out, "skill-ran"),
	      "skill tool: %s", out);
	CHECK(run(sb, &root, "touch /skills/tool/x", out, sizeof(out)) != 0,
	      "root wrote to the read-only disk");
	/* a 9p mount inside the image root, both ways */
	CHECK(run(sb, &def, "cat /mnt/share/hello && echo back > /mnt/share/back", out, sizeof(out)) ==
			      0 &&
		      !strcmp(out, "shared"),
	      "9p: %s", out);
	/* the places VoidBox prepares for writing belong to the image's user */
	CHECK(run(sb, &def, "stat -c %U /workspace /mnt/share /app && touch /workspace/w", out,
		  sizeof(out)) == 0 &&
		      !strcmp(out, "app\napp\napp"),
	      "work owner: %s", out);
	/* the network comes up in the image root (eth0, its resolv.conf) */
	CHECK(run(sb, &def, "cat /etc/resolv.conf /proc/net/route", out, sizeof(out)) == 0 &&
		      strstr(out, "nameserver 10.0.2.3") && strstr(out, "eth0\t00000000\t0202000A"),
	      "network: %s", out);
	/* a terminal: /dev moved along */
	struct vb_exec_params pty = { .pty = 1 };
	CHECK(run(sb, &pty, "test -t 0 && echo on-a-tty", out, sizeof(out)) == 0 &&
		      strstr(out, "on-a-tty"),
	      "pty: %s", out);
	/* the initramfs's busybox, read-only; the agent binaries' loader link */
	CHECK(run(sb, &root,
		  "/.voidbox/bin/busybox echo bb; /.voidbox/bin/busybox readlink "
		  "/lib/ld-musl-x86_64.so.1; echo x >> /.voidbox/bin/busybox || echo ro",
		  out, sizeof(out)) == 0 &&
		      !strcmp(out, "bb\n/opt/voidbox/support/ld-musl-x86_64.so.1\nro"),
	      "busybox, loader: %s", out);
	/* the file requests work in the image root */
	CHECK(vb_file_write(sb, "/home/sandbox/skill.md", "hi", 2, 0, 0, &err) == 0, "file write: %s",
	      err.msg);
	uint8_t *data = NULL;
	size_t dlen = 0;
	CHECK(vb_file_read(sb, "/home/sandbox/skill.md", 64, &data, &dlen, &err) == 0 && dlen == 2 &&
		      !memcmp(data, "hi", 2),
	      "file read: %s", err.msg);
	free(data);
	vb_sandbox_free(sb);
	sb = NULL;
	char back[64] = "";
	char bpath[200];
	snprintf(bpath, sizeof(bpath), "%s/back", share);
	FILE *bf = fopen(bpath, "r");
	CHECK(bf && fgets(back, sizeof(back), bf) && !strcmp(back, "back\n"), "9p write not on host");
	fclose(bf);

	/* nothing persisted: a second VM on the same image */
	sb = boot(&cfg, &err);
	CHECK(sb, "second boot: %s", err.msg);
	CHECK(run(sb, &root, "test -e /usr/x && echo present || echo absent", out, sizeof(out)) == 0 &&
		      !strcmp(out, "absent"),
	      "/usr/x persisted: %s", out);
	vb_sandbox_free(sb);
	sb = NULL;
	sha256(rootfs, after);
	CHECK(before[0] && !strcmp(before, after), "the image changed: %s -> %s", before, after);
	rc = 0;
out:
	vb_sandbox_free(sb);
	return rc;
}

/* Without the new fields: the initramfs root, the sandbox user, /workspace. */
static int test_plain_vm_unchanged(void)
{
	int rc = -1;
	char out[1024];
	vb_error err = { 0 };
	struct vb_sandbox_config cfg = { .name = "itest-plain" };
	vb_sandbox *sb = boot(&cfg, &err);
	CHECK(sb, "boot: %s", err.msg);
	struct vb_exec_params def = { 0 };
	CHECK(run(sb, &def, "echo $(id -u) $(pwd) $HOME; test -e /etc/os-release || echo no-image",
		  out, sizeof(out)) == 0 &&
		      !strcmp(out, "1000 /workspace /home/sandbox\nno-image"),
	      "plain VM: %s", out);
	rc = 0;
out:
	vb_sandbox_free(sb);
	return rc;
}

/* A disk on the initramfs root (an OCI skill on a plain stage). */
static int test_disk_on_plain_root(void)
{
	int rc = -1;
	char out[1024];
	vb_error err = { 0 };
	struct vb_disk_mount dm = { .image = skill, .path = "/opt/skill" };
	struct vb_sandbox_config cfg = { .name = "itest-disk", .disk_mounts = &dm, .n_disk_mounts = 1 };
	vb_sandbox *sb = boot(&cfg, &err);
	CHECK(sb, "boot: %s", err.msg);
	struct vb_exec_params def = { 0 };
	CHECK(run(sb, &def, "skilltool; echo $PATH", out, sizeof(out)) == 0 &&
		      !strcmp(out, "skill-ran\n/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin:/opt/skill/bin"),
	      "disk on the initramfs: %s", out);
	rc = 0;
out:
	vb_sandbox_free(sb);
	return rc;
}

static int test_bad_images(void)
{
	int rc = -1;
	vb_error err = { 0 };
	/* not ext4: refused before any VM starts */
	struct vb_sandbox_config cfg = { .rootfs = notext4 };
	vb_sandbox *sb = boot(&cfg, &err);
	CHECK(!sb && err.kind == VB_E_USAGE && strstr(err.msg, "not an ext4 image"), "not ext4: %s",
	      err.msg);
	struct vb_sandbox_config nofile = { .rootfs = "/nonexistent/root.ext4" };
	CHECK(!(sb = boot(&nofile, &err)) && err.kind == VB_E_USAGE, "missing: %s", err.msg);
	struct vb_sandbox_config defaults_only = { .root_user = "app" };
	CHECK(!(sb = boot(&defaults_only, &err)) && err.kind == VB_E_USAGE, "defaults: %s", err.msg);
	struct vb_disk_mount rel = { .image = skill, .path = "skills" };
	struct vb_sandbox_config relative = { .disk_mounts = &rel, .n_disk_mounts = 1 };
	CHECK(!(sb = boot(&relative, &err)) && err.kind == VB_E_USAGE, "relative: %s", err.msg);
	/* a corrupt ext4: the guest cannot mount it, and the host says what
	 * the agent said (not a boot timeout) */
	struct vb_sandbox_config bad = { .rootfs = corrupt, .name = "itest-corrupt" };
	CHECK(!(sb = boot(&bad, &err)) && err.kind == VB_E_VMDIED &&
		      strstr(err.msg, "the guest agent failed (voidbox-agent: fatal: root image: cannot mount"),
	      "corrupt: %s", err.msg);
	fprintf(stderr, "  # corrupt image: %s\n", err.msg);
	/* the image's User must exist */
	struct vb_sandbox_config nouser = { .rootfs = rootfs, .root_user = "ghost" };
	CHECK(!(sb = boot(&nouser, &err)) && strstr(err.msg, "user 'ghost' is not in /etc/passwd"),
	      "missing user: %s", err.msg);
	rc = 0;
out:
	vb_sandbox_free(sb);
	return rc;
}

int main(void)
{
	if (sh("command -v fakeroot >/dev/null && command -v mke2fs >/dev/null && "
	       "busybox --list 2>/dev/null | grep -qx sh && ! ldd \"$(command -v busybox)\" "
	       ">/dev/null 2>&1") != 0) {
		printf("# skip itest_rootfs: needs fakeroot, mke2fs and a static busybox\n");
		return 0;
	}
	snprintf(dir, sizeof(dir), "/tmp/vb-rootfs-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(runtime_dir, sizeof(runtime_dir), "%s/run", dir);
	snprintf(state_dir, sizeof(state_dir), "%s/state", dir);
	mkdir(runtime_dir, 0700);
	mkdir(state_dir, 0700);
	setenv("XDG_RUNTIME_DIR", runtime_dir, 1);
	setenv("XDG_STATE_HOME", state_dir, 1);
	snprintf(rootfs, sizeof(rootfs), "%s/root.ext4", dir);
	snprintf(skill, sizeof(skill), "%s/skill.ext4", dir);
	snprintf(corrupt, sizeof(corrupt), "%s/corrupt.ext4", dir);
	snprintf(notext4, sizeof(notext4), "%s/notext4.img", dir);
	snprintf(share, sizeof(share), "%s/share", dir);
	if (build_images() < 0) {
		printf("not ok - build the test images\n");
		vb_rm_rf(dir);
		return 1;
	}
	report("image root: files, defaults, overrides, writes, disk, 9p, nothing persists",
	       test_image_root());
	report("a VM without a root image is as before", test_plain_vm_unchanged());
	report("a read-only disk on the initramfs root", test_disk_on_plain_root());
	report("bad images and configs fail clearly", test_bad_images());
	vb_rm_rf(dir);
	return failures ? 1 : 0;
}
