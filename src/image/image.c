/* SPDX-License-Identifier: Apache-2.0 */
#include "image/image.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/util.h"

/* Bump when the initramfs layout changes. */
#define INITRAMFS_FORMAT 2

extern const uint8_t vb_agent_blob[], vb_agent_blob_end[];

const uint8_t *vb_agent_bytes(size_t *len)
{
	*len = (size_t)(vb_agent_blob_end - vb_agent_blob);
	return vb_agent_blob;
}

static const char *busybox_path(void)
{
	const char *b = getenv("VOIDBOX_BUSYBOX");
	return b && b[0] ? b : "/bin/busybox";
}

char *vb_image_kernel(vb_error *err)
{
	const char *env = getenv("VOIDBOX_KERNEL");
	if (env && env[0]) {
		if (access(env, R_OK) != 0) {
			vb_error_errno(err, errno, "VOIDBOX_KERNEL=%s", env);
			return NULL;
		}
		return strdup(env);
	}
	_cleanup_free_ char *cache = vb_cache_dir(err);
	if (!cache)
		return NULL;
	char *path = vb_strfmt("%s/kernel-current/bzImage", cache);
	if (path && access(path, R_OK) != 0) {
		vb_error_set(err, VB_E_RUNTIME,
			     "the guest kernel is not built yet (run `voidbox image build`, "
			     "a few minutes, once)");
		free(path);
		return NULL;
	}
	return path;
}

/* 64-bit FNV-1a: a cache key, not a security boundary (the cache is the
 * user's own). */
static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* Refuse a dynamically linked busybox: it cannot run in the guest. */
static int check_static(const uint8_t *elf, size_t len, const char *path, vb_error *err)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)elf;
	if (len < sizeof(*eh) || memcmp(elf, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64)
		return vb_error_set(err, VB_E_RUNTIME, "%s is not a 64-bit ELF program", path);
	for (size_t i = 0; i < eh->e_phnum; i++) {
		size_t off = eh->e_phoff + i * sizeof(Elf64_Phdr);
		if (off + sizeof(Elf64_Phdr) > len || off < eh->e_phoff)
			break;
		Elf64_Phdr ph;
		memcpy(&ph, elf + off, sizeof(ph));
		if (ph.p_type == PT_INTERP)
			return vb_error_set(err, VB_E_RUNTIME,
					    "%s is dynamically linked (install busybox-static)", path);
	}
	return 0;
}

/* The applets' install paths ("bin/sh", "usr/bin/awk", ...). */
static char *busybox_applets(const char *busybox, vb_error *err)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		vb_error_errno(err, errno, "pipe");
		return NULL;
	}
	pid_t pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		execl(busybox, "busybox", "--list-full", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	size_t cap = 16384, n = 0;
	char *buf = malloc(cap);
	ssize_t r = 0;
	while (buf && (r = read(pfd[0], buf + n, cap - n - 1)) > 0) {
		n += (size_t)r;
		if (n + 1 == cap) {
			char *nb = cap < (1u << 20) ? realloc(buf, cap *= 2) : NULL;
			if (!nb)
				free(buf);
			buf = nb;
		}
	}
	close(pfd[0]);
	int status = 0;
	if (pid > 0)
		waitpid(pid, &status, 0);
	if (!buf || pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || n == 0) {
		free(buf);
		vb_error_set(err, VB_E_RUNTIME, "`%s --list-full` failed", busybox);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* The shared initramfs archive into (b). */
static int build_initramfs(struct vb_buf *b, const uint8_t *agent, size_t agent_len,
			   const uint8_t *bb, size_t bb_len, vb_error *err)
{
	static const char *const dirs[] = { "bin", "sbin", "usr", "usr/bin", "usr/sbin",
					    "dev", "proc", "sys", "tmp", "run", "etc",
					    "root", "home", "mnt", "var", "lib" };
	_cleanup_free_ char *applets = busybox_applets(busybox_path(), err);
	if (!applets)
		return -1;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		vb_cpio_dir(b, dirs[i], strcmp(dirs[i], "tmp") ? 0755 : 01777);
	/* the kernel opens /dev/console for init before anything is mounted */
	vb_cpio_chardev(b, "dev/console", 0600, 5, 1);
	vb_cpio_file(b, "init", 0755, agent, agent_len);
	vb_cpio_file(b, "bin/busybox", 0755, bb, bb_len);
	for (char *save = NULL, *line = strtok_r(applets, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		while (*line == '/')
			line++;
		if (*line && strcmp(line, "bin/busybox") && strcmp(line, "init") &&
		    strcmp(line, "sbin/init") && strcmp(line, "linuxrc") && !strstr(line, ".."))
			vb_cpio_symlink(b, line, "/bin/busybox");
	}
	/* What claude-code and codex need beside their binaries comes on a
	 * read-only mount only agent VMs get (src/agentbin): the musl loader
	 * and a bash, 3 MB that every other VM would unpack for nothing.
	 * Elsewhere these links dangle, as if the files were absent. */
	vb_cpio_symlink(b, "lib/ld-musl-x86_64.so.1",
			VB_IMAGE_AGENT_SUPPORT "/ld-musl-x86_64.so.1");
	vb_cpio_symlink(b, "bin/bash", VB_IMAGE_AGENT_SUPPORT "/bash");
	vb_cpio_trailer(b);
	return b->oom ? vb_error_set(err, VB_E_RUNTIME, "out of memory building the initramfs") : 0;
}

static int write_atomically(const char *path, const struct vb_buf *b, vb_error *err)
{
	/* the stages of a fan-out may build the same file at once */
	if (vb_write_file_atomic(path, b->data, b->len, 0644) < 0)
		return vb_error_errno(err, errno, "cannot write %s", path);
	return 0;
}

/* The cache path of the shared initramfs for this agent and busybox; when
 * (b) is not NULL and the file is not there yet, the archive is built into
 * (b) (and written to the cache only if (write)). */
/* The cache key of (agent, busybox), remembered for this process by
 * busybox's stat identity: one VM start asks for its initramfs up to three
 * times (warm name, restore checks, boot), and hashing 2-3 MB cost ~2 ms
 * each.  A busybox replaced meanwhile has another identity. */
static pthread_mutex_t key_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	int valid;
	char id[PATH_MAX + 128];
	uint64_t h;
} key_memo;

static int busybox_id(char *id, size_t len)
{
	struct stat st;
	if (stat(busybox_path(), &st) < 0)
		return -1;
	int n = snprintf(id, len, "%llu %llu %lld %lld.%09ld %lld.%09ld %s",
			 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
			 (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
			 (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec, busybox_path());
	return n > 0 && (size_t)n < len ? 0 : -1;
}

static char *read_busybox(size_t *len, vb_error *err)
{
	char *bb = vb_read_file(busybox_path(), 64u << 20, len, err);
	if (!bb) {
		vb_error_prefix(err, "busybox (install busybox-static)");
		return NULL;
	}
	if (check_static((const uint8_t *)bb, *len, busybox_path(), err) < 0) {
		free(bb);
		return NULL;
	}
	return bb;
}

/* The cache path of the shared initramfs for this agent and busybox; when
 * (b) is not NULL and the file is not there yet, the archive is built into
 * (b) (and written to the cache only if (write)). */
static char *initramfs_path(struct vb_buf *b, int write, vb_error *err)
{
	size_t agent_len, bb_len = 0;
	const uint8_t *agent = vb_agent_bytes(&agent_len);
	char id[sizeof(key_memo.id)];
	int keyed = busybox_id(id, sizeof(id)) == 0;
	uint64_t h = 0;
	int known = 0;
	pthread_mutex_lock(&key_lock);
	if (keyed && key_memo.valid && !strcmp(key_memo.id, id)) {
		h = key_memo.h;
		known = 1;
	}
	pthread_mutex_unlock(&key_lock);
	_cleanup_free_ char *bb = NULL;
	if (!known) {
		if (!(bb = read_busybox(&bb_len, err)))
			return NULL;
		h = fnv1a(0xcbf29ce484222325ull, agent, agent_len);
		h = fnv1a(h, (const uint8_t *)bb, bb_len);
		h ^= INITRAMFS_FORMAT;
		char after[sizeof(id)];
		/* remembered only if busybox did not change while it was read */
		if (keyed && busybox_id(after, sizeof(after)) == 0 && !strcmp(after, id)) {
			pthread_mutex_lock(&key_lock);
			snprintf(key_memo.id, sizeof(key_memo.id), "%s", id);
			key_memo.h = h;
			key_memo.valid = 1;
			pthread_mutex_unlock(&key_lock);
		}
	}
	_cleanup_free_ char *cache = vb_cache_dir(err);
	if (!cache || (write && vb_mkdir_p(cache, 0700, err) < 0))
		return NULL;
	char *path = vb_strfmt("%s/initramfs-%016llx.cpio", cache, (unsigned long long)h);
	if (!path) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	if (!b || access(path, R_OK) == 0)
		return path;
	if ((!bb && !(bb = read_busybox(&bb_len, err))) ||
	    build_initramfs(b, agent, agent_len, (const uint8_t *)bb, bb_len, err) < 0 ||
	    (write && write_atomically(path, b, err) < 0)) {
		free(path);
		return NULL;
	}
	return path;
}

char *vb_image_initramfs(vb_error *err)
{
	const char *env = getenv("VOIDBOX_INITRAMFS");
	if (env && env[0])
		return strdup(env);
	struct vb_buf b = { 0 };
	char *path = initramfs_path(&b, 1, err);
	vb_buf_free(&b);
	return path;
}

int vb_image_initramfs_open(int may_write, vb_error *err)
{
	const char *env = getenv("VOIDBOX_INITRAMFS");
	struct vb_buf b = { 0 };
	_cleanup_free_ char *path = env && env[0] ? strdup(env) : initramfs_path(&b, may_write, err);
	if (!path) {
		vb_buf_free(&b);
		return env && env[0] ? vb_error_set(err, VB_E_RUNTIME, "out of memory") : -1;
	}
	int fd;
	if (b.len && !may_write) { /* built here and not cached: hand it over in memory */
		fd = memfd_create("voidbox-initramfs", MFD_CLOEXEC);
		if (fd < 0 || vb_write_full(fd, b.data, b.len) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
			int e = errno;
			if (fd >= 0)
				close(fd);
			vb_buf_free(&b);
			return vb_error_errno(err, e, "cannot hold the initramfs in memory");
		}
	} else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		fd = vb_error_errno(err, errno, "cannot open %s", path);
	}
	vb_buf_free(&b);
	return fd;
}

int vb_image_initramfs_cached(void)
{
	const char *env = getenv("VOIDBOX_INITRAMFS");
	vb_error e;
	_cleanup_free_ char *path = env && env[0] ? strdup(env) : initramfs_path(NULL, 0, &e);
	return path && access(path, R_OK) == 0;
}

int vb_image_build(int force, vb_error *err)
{
	_cleanup_free_ char *script = vb_strfmt("%s/guest/kernel/build.sh", vb_datadir());
	if (!script)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	if (access(script, X_OK) != 0)
		return vb_error_errno(err, errno, "kernel build script %s (set VOIDBOX_DATADIR)",
				      script);
	pid_t pid = fork();
	if (pid == 0) {
		execl(script, script, force ? "--force" : (char *)NULL, (char *)NULL);
		_exit(127);
	}
	int status = 0;
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return vb_error_errno(err, errno, "cannot run %s", script);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return vb_error_set(err, VB_E_RUNTIME, "the guest kernel build failed");
	_cleanup_free_ char *initramfs = vb_image_initramfs(err);
	return initramfs ? 0 : -1;
}

int vb_image_boot_segment(struct vb_buf *out, const struct vb_boot *boot, vb_error *err)
{
	struct vb_buf frame = { 0 };
	if (vb_boot_encode(&frame, boot) < 0) {
		vb_buf_free(&frame);
		return vb_error_set(err, VB_E_RUNTIME, "cannot encode the boot data");
	}
	vb_cpio_dir(out, ".voidbox", 0700);
	vb_cpio_file(out, VB_BOOT_PATH + 1, 0400, frame.data, frame.len);
	vb_cpio_trailer(out);
	explicit_bzero(frame.data, frame.len);
	vb_buf_free(&frame);
	return out->oom ? vb_error_set(err, VB_E_RUNTIME, "out of memory") : 0;
}


/* Append the file (path) to (fd), then zeros up to a multiple of 4 bytes:
 * the kernel looks for the next archive's magic at a 4-byte aligned offset
 * and skips zeros in between. */
static int append_file(int fd, const char *path, int pad, vb_error *err)
{
	_cleanup_close_ int in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return vb_error_errno(err, errno, "cannot open %s", path);
	struct stat st;
	if (fstat(in, &st) < 0 || (pad ? !S_ISREG(st.st_mode) : st.st_size % 4 != 0))
		return vb_error_set(err, VB_E_RUNTIME, "%s is not a valid initramfs", path);
	off_t off = 0;
	while (off < st.st_size) {
		ssize_t n = sendfile(fd, in, &off, (size_t)(st.st_size - off));
		if (n <= 0)
			return vb_error_errno(err, n < 0 ? errno : EIO, "copying %s", path);
	}
	static const char zeros[4];
	size_t tail = (size_t)(st.st_size % 4);
	if (pad && tail && vb_write_full(fd, zeros, 4 - tail) < 0)
		return vb_error_errno(err, errno, "copying %s", path);
	return 0;
}

int vb_image_make_initrd(const char *shared, const struct vb_boot *boot, vb_error *err)
{
	return vb_image_make_initrd_over(NULL, shared, boot, err);
}

int vb_image_make_initrd_over(const char *first, const char *shared, const struct vb_boot *boot,
			      vb_error *err)
{
	int fd = memfd_create("voidbox-initrd", MFD_CLOEXEC);
	if (fd < 0)
		return vb_error_errno(err, errno, "memfd_create");
	if ((first && append_file(fd, first, 1, err) < 0) || append_file(fd, shared, 0, err) < 0) {
		close(fd);
		return -1;
	}
	struct vb_buf seg = { 0 };
	int rc = vb_image_boot_segment(&seg, boot, err);
	if (rc == 0 && vb_write_full(fd, seg.data, seg.len) < 0)
		rc = vb_error_errno(err, errno, "writing the boot segment");
	if (seg.data)
		explicit_bzero(seg.data, seg.len);
	vb_buf_free(&seg);
	if (rc < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

