/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rootfs.c — the image root and read-only disks of a VM's config: checked
 * on the host (so that a bad config is a usage error, not a guest that
 * fails to boot), then turned into the VMM's disk list and the boot data's
 * ROOT_* and DISK fields (docs/oci.md, "In the VM").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/sandbox_int.h"
#include "util/util.h"

#define EXT4_MAGIC_OFFSET 1080 /* superblock at 1024, s_magic at +56 */

/* An absolute path below "/" without "." or ".." components. */
static int sane_path(const char *p)
{
	if (!p || p[0] != '/' || p[1] == '\0' || strlen(p) >= VB_MAX_PATH)
		return 0;
	for (const char *c = p; *c;) {
		while (*c == '/')
			c++;
		size_t n = strcspn(c, "/");
		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		c += n;
	}
	return 1;
}

/* A regular file carrying the ext2/3/4 superblock magic: what the guest
 * mounts as ext4.  A corrupt image with a good magic still fails in the
 * guest, and the agent says why. */
static int check_ext4(const char *what, const char *path, vb_error *err)
{
	struct stat st;
	if (!path || stat(path, &st) < 0)
		return vb_error_set(err, VB_E_USAGE, "%s '%s': %s", what, path ? path : "",
				    path ? strerror(errno) : "no file");
	if (!S_ISREG(st.st_mode))
		return vb_error_set(err, VB_E_USAGE, "%s '%s' is not a regular file", what, path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vb_error_errno(err, errno, "%s '%s'", what, path);
	uint8_t m[2] = { 0, 0 };
	ssize_t n = pread(fd, m, sizeof(m), EXT4_MAGIC_OFFSET);
	close(fd);
	if (n != 2 || m[0] != 0x53 || m[1] != 0xEF)
		return vb_error_set(err, VB_E_USAGE, "%s '%s' is not an ext4 image", what, path);
	return 0;
}

/* What a passwd line or an image's User can hold: "name", "uid" or
 * "uid:gid" (the guest decoder checks the same). */
static int sane_user(const char *s)
{
	size_t n = strlen(s), colons = 0;
	if (n == 0 || n > VB_MAX_USER || s[0] == ':' || s[n - 1] == ':')
		return 0;
	for (const char *c = s; *c; c++) {
		if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f)
			return 0;
		colons += *c == ':';
	}
	return colons <= 1;
}

int vb_sandbox_root_check(const struct vb_sandbox_config *cfg, vb_error *err)
{
	if (!cfg->rootfs && (cfg->n_root_env || cfg->root_workdir || cfg->root_user))
		return vb_error_set(err, VB_E_USAGE,
				    "image defaults (env, workdir, user) need a root image");
	if (cfg->rootfs && check_ext4("root image", cfg->rootfs, err) < 0)
		return -1;
	if (cfg->n_root_env > VB_MAX_ENV)
		return vb_error_set(err, VB_E_USAGE, "at most %u image env entries", VB_MAX_ENV);
	for (size_t i = 0; i < cfg->n_root_env; i++) {
		const char *e = cfg->root_env ? cfg->root_env[i] : NULL;
		if (!e || e[0] == '=' || !strchr(e, '=') || strlen(e) > VB_MAX_STR)
			return vb_error_set(err, VB_E_USAGE,
					    "image env entry %zu is not KEY=VALUE", i);
	}
	if (cfg->root_workdir && (cfg->root_workdir[0] != '/' ||
				  (cfg->root_workdir[1] && !sane_path(cfg->root_workdir))))
		return vb_error_set(err, VB_E_USAGE,
				    "image working directory '%s' must be an absolute path",
				    cfg->root_workdir);
	if (cfg->root_user && !sane_user(cfg->root_user))
		return vb_error_set(err, VB_E_USAGE,
				    "image user '%s' is not a name, uid or uid:gid",
				    cfg->root_user);
	size_t max = VB_SANDBOX_MAX_DISKS - (cfg->rootfs != NULL);
	if (cfg->n_disk_mounts > max)
		return vb_error_set(err, VB_E_USAGE, "at most %zu disk mounts%s", max,
				    cfg->rootfs ? " besides the root image" : "");
	for (size_t i = 0; i < cfg->n_disk_mounts; i++) {
		const struct vb_disk_mount *d = &cfg->disk_mounts[i];
		if (!sane_path(d->path))
			return vb_error_set(err, VB_E_USAGE,
					    "disk mount target '%s' must be an absolute guest path "
					    "below /", d->path ? d->path : "");
		if (check_ext4("disk image", d->image, err) < 0)
			return -1;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(cfg->disk_mounts[j].path, d->path))
				return vb_error_set(err, VB_E_USAGE, "two disks are mounted at %s",
						    d->path);
		for (size_t j = 0; j < cfg->n_mounts; j++)
			if (cfg->mounts[j].guest && !strcmp(cfg->mounts[j].guest, d->path))
				return vb_error_set(err, VB_E_USAGE,
						    "%s is both a disk mount and a directory mount",
						    d->path);
	}
	return 0;
}

size_t vb_sandbox_root_disks(const struct vb_sandbox_config *cfg,
			     const char *disks[VB_SANDBOX_MAX_DISKS], struct vb_boot *boot,
			     struct vb_boot_disk bd[VB_SANDBOX_MAX_DISKS])
{
	size_t n = 0;
	if (cfg->rootfs) {
		disks[n++] = cfg->rootfs;
		boot->has_root = 1;
		boot->root_disk = 0;
		boot->root_env = (char **)(uintptr_t)cfg->root_env;
		boot->n_root_env = cfg->n_root_env;
		boot->root_workdir = (char *)(uintptr_t)cfg->root_workdir;
		boot->root_user = (char *)(uintptr_t)cfg->root_user;
	}
	for (size_t i = 0; i < cfg->n_disk_mounts; i++) {
		bd[i] = (struct vb_boot_disk){ .index = (uint32_t)n,
					       .path = (char *)(uintptr_t)cfg->disk_mounts[i].path };
		disks[n++] = cfg->disk_mounts[i].image;
	}
	boot->disks = cfg->n_disk_mounts ? bd : NULL;
	boot->n_disks = cfg->n_disk_mounts;
	return n;
}
