/* SPDX-License-Identifier: Apache-2.0 */
/*
 * root.c — the image root (docs/oci.md, "In the VM").  With ROOT_DISK in
 * the boot data, PID 1 mounts that read-only ext4 disk under a tmpfs
 * overlay, moves /dev, /proc, /sys, /tmp and /run into it and makes it
 * the root (MS_MOVE + chroot: the initramfs cannot be pivoted away); the
 * agent stays PID 1, its binary in memory.  Also: read-only disks at their
 * paths, the users of the root's /etc/passwd, and the image's defaults.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define STAGE "/.vbroot"         /* in the initramfs, hidden once the root moves */
#define LOWER STAGE "/lower"     /* the image, read-only */
#define RW STAGE "/rw"           /* tmpfs: the overlay's upper and work dirs */
#define MERGED STAGE "/root"     /* the overlay: the new / */
#define DISK_WAIT_MS 3000u       /* virtio-blk probes before init; a margin anyway */
#define PASSWD_MAX (1u << 20)

/* ---- finding a disk ------------------------------------------------------ */

/* /dev/vdX of the disk whose virtio serial is "vbd<index>" (the host
 * names them so: device order is not the guest's probe order). */
static int find_disk(uint32_t index, char *dev, size_t len)
{
	char want[16];
	snprintf(want, sizeof(want), "%s%u", VB_DISK_SERIAL, index);
	uint64_t deadline = agent_now_ms() + DISK_WAIT_MS;
	do {
		for (char c = 'a'; c <= 'z'; c++) {
			char path[64], *serial = NULL;
			snprintf(path, sizeof(path), "/sys/block/vd%c/serial", c);
			ssize_t n = agent_read_small(path, 64, &serial);
			while (n > 0 && (serial[n - 1] == '\n' || serial[n - 1] == ' '))
				serial[--n] = '\0';
			int match = n > 0 && !strcmp(serial, want);
			free(serial);
			if (match) {
				snprintf(dev, len, "/dev/vd%c", c);
				return 0;
			}
		}
		agent_sleep_ms(10);
	} while (agent_now_ms() < deadline);
	return -1;
}

static void mount_disk_ro(uint32_t index, const char *target, const char *what)
{
	char dev[32];
	if (find_disk(index, dev, sizeof(dev)) < 0)
		agent_fatal("%s: no virtio disk with serial %s%u", what, VB_DISK_SERIAL, index);
	if (boot_mkdir_p(target, 0755) < 0)
		agent_fatal("%s: mkdir %s: %s", what, target, strerror(errno));
	/* MS_NODEV: the image's device nodes (if any) are not the guest's */
	if (mount(dev, target, "ext4", MS_RDONLY | MS_NODEV, NULL) < 0)
		agent_fatal("%s: cannot mount %s (ext4, read-only) on %s: %s", what, dev, target,
			    strerror(errno));
}

/* ---- the switch ---------------------------------------------------------- */

static void move_into(const char *path)
{
	char to[PATH_MAX];
	snprintf(to, sizeof(to), MERGED "%s", path);
	if (boot_mkdir_p(to, 0755) < 0 || mount(path, to, NULL, MS_MOVE, NULL) < 0)
		agent_fatal("root image: cannot move %s into it: %s", path, strerror(errno));
}

/* Read-only bind of an initramfs file to (to) in the new root. */
static void bind_file_ro(const char *from, const char *to)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", to);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	int fd;
	if (boot_mkdir_p(dir, 0755) < 0 ||
	    (fd = open(to, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0755)) < 0) {
		agent_log("root image: cannot create %s: %s", to, strerror(errno));
		return;
	}
	close(fd);
	if (mount(from, to, NULL, MS_BIND, NULL) < 0 ||
	    mount(NULL, to, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
		agent_log("root image: cannot bind %s: %s", to, strerror(errno));
}

void root_switch(const struct vb_boot *boot)
{
	if (boot_mkdir_p(STAGE, 0700) < 0)
		agent_fatal("root image: mkdir %s: %s", STAGE, strerror(errno));
	mount_disk_ro(boot->root_disk, LOWER, "root image");
	if (boot_mkdir_p(RW, 0700) < 0 || mount("tmpfs", RW, "tmpfs", 0, "mode=0755") < 0 ||
	    boot_mkdir_p(RW "/upper", 0755) < 0 || boot_mkdir_p(RW "/work", 0755) < 0 ||
	    boot_mkdir_p(MERGED, 0755) < 0)
		agent_fatal("root image: the writable layer: %s", strerror(errno));
	if (mount("overlay", MERGED, "overlay", 0,
		  "lowerdir=" LOWER ",upperdir=" RW "/upper,workdir=" RW "/work") < 0)
		agent_fatal("root image: overlay: %s", strerror(errno));
	/* the overlay's root takes the image root's mode, but an image could
	 * leave / unreadable to others: programs need to walk it */
	chmod(MERGED, 0755);
	static const char *const moved[] = { "/dev", "/proc", "/sys", "/tmp", "/run" };
	for (size_t i = 0; i < sizeof(moved) / sizeof(moved[0]); i++)
		move_into(moved[i]);
	/* busybox from the initramfs, for images without a shell (debugging) */
	bind_file_ro("/bin/busybox", MERGED "/.voidbox/bin/busybox");
	if (chdir(MERGED) < 0 || mount(MERGED, "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 ||
	    chdir("/") < 0)
		agent_fatal("root image: cannot make it the root: %s", strerror(errno));
	agent_log("root: the image (read-only, tmpfs overlay)");
}

/* ---- users --------------------------------------------------------------- */

/* Find a line of (file) (passwd or group) whose field 0 is (name), or
 * whose field 2 is (id) when name is NULL.  Fills up to 7 fields into
 * (f) (pointing into *buf, which the caller frees).  Returns 1 if found. */
static int db_find(const char *file, const char *name, unsigned long id, char **buf, char *f[7])
{
	*buf = NULL;
	if (agent_read_small(file, PASSWD_MAX, buf) < 0)
		return 0;
	for (char *save = NULL, *line = strtok_r(*buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		int n = 0;
		for (char *p = line; n < 7; n++) {
			f[n] = p;
			char *c = strchr(p, ':');
			if (!c) {
				n++;
				break;
			}
			*c = '\0';
			p = c + 1;
		}
		if (n < 3)
			continue;
		static char empty[1];
		for (int i = n; i < 7; i++)
			f[i] = empty;
		if (name ? !strcmp(f[0], name)
			 : (f[2][0] && strtoul(f[2], NULL, 10) == id && strspn(f[2], "0123456789") ==
								       strlen(f[2])))
			return 1;
	}
	return 0;
}

/* A decimal id <= 65535 (what the protocol carries). */
static int parse_id(const char *s, unsigned long *out)
{
	if (!s[0] || strspn(s, "0123456789") != strlen(s) || strlen(s) > 5)
		return 0;
	*out = strtoul(s, NULL, 10);
	return *out <= 65535;
}

int user_resolve(const char *spec, struct agent_user *u, char *why, size_t len)
{
	char user[VB_MAX_USER + 1], *group = NULL;
	snprintf(user, sizeof(user), "%s", spec);
	char *colon = strchr(user, ':');
	if (colon) {
		*colon = '\0';
		group = colon + 1;
	}
	memset(u, 0, sizeof(*u));
	char *buf = NULL, *f[7];
	unsigned long id;
	int numeric = parse_id(user, &id);
	if (db_find("/etc/passwd", numeric ? NULL : user, numeric ? id : 0, &buf, f)) {
		unsigned long uid, gid;
		if (!parse_id(f[2], &uid) || !parse_id(f[3], &gid)) {
			snprintf(why, len, "user '%.64s': uid or gid in /etc/passwd out of range", user);
			free(buf);
			return -1;
		}
		u->uid = (uid_t)uid;
		u->gid = (gid_t)gid;
		snprintf(u->name, sizeof(u->name), "%s", f[0]);
		snprintf(u->home, sizeof(u->home), "%s", f[5][0] == '/' ? f[5] : "/");
	} else if (numeric) {
		/* a uid without an entry runs as it is, in group 0 (as Docker does) */
		u->uid = (uid_t)id;
		u->gid = 0;
		snprintf(u->name, sizeof(u->name), "%lu", id);
		snprintf(u->home, sizeof(u->home), "/");
	} else {
		snprintf(why, len, "user '%.64s' is not in /etc/passwd", user);
		free(buf);
		return -1;
	}
	free(buf);
	if (group) {
		if (parse_id(group, &id)) {
			u->gid = (gid_t)id;
		} else if (db_find("/etc/group", group, 0, &buf, f) && parse_id(f[2], &id)) {
			u->gid = (gid_t)id;
			free(buf);
		} else {
			free(buf);
			snprintf(why, len, "group '%.64s' is not in /etc/group", group);
			return -1;
		}
	}
	return 0;
}

void user_describe(uid_t uid, gid_t gid, struct agent_user *u)
{
	memset(u, 0, sizeof(*u));
	u->uid = uid;
	u->gid = gid;
	char *buf = NULL, *f[7];
	if (uid == 0) {
		snprintf(u->name, sizeof(u->name), "root");
		snprintf(u->home, sizeof(u->home), "/root");
	} else if (uid == AGENT_SANDBOX_UID) {
		snprintf(u->name, sizeof(u->name), "sandbox");
		snprintf(u->home, sizeof(u->home), "/home/sandbox");
	} else if (db_find("/etc/passwd", NULL, uid, &buf, f)) {
		snprintf(u->name, sizeof(u->name), "%s", f[0]);
		snprintf(u->home, sizeof(u->home), "%s", f[5][0] == '/' ? f[5] : "/");
	} else {
		snprintf(u->name, sizeof(u->name), "%u", (unsigned)uid);
		snprintf(u->home, sizeof(u->home), "/");
	}
	free(buf);
}

/* Append (line) to (file) unless a line starts with (prefix).  The image's
 * files are copied up into the tmpfs layer: the image stays as it is. */
static void db_ensure(const char *file, const char *prefix, const char *line)
{
	char *buf = NULL;
	ssize_t n = agent_read_small(file, PASSWD_MAX, &buf);
	if (n >= 0) {
		size_t pl = strlen(prefix);
		for (char *p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
			if (!strncmp(p, prefix, pl)) {
				free(buf);
				return;
			}
	}
	int fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 || (n > 0 && buf[n - 1] != '\n' && agent_write_all(fd, "\n", 1) < 0) ||
	    agent_write_all(fd, line, strlen(line)) < 0)
		agent_log("cannot add to %s: %s", file, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(buf);
}

/* ---- after the switch ---------------------------------------------------- */

/* (path)/(sub) exists as a directory. */
static int is_dir(const char *path, const char *sub)
{
	char p[PATH_MAX];
	struct stat st;
	snprintf(p, sizeof(p), "%s%s", path, sub);
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void add_disk_path(const char *dir)
{
	size_t old = g_agent.disk_path ? strlen(g_agent.disk_path) : 0;
	char *p = realloc(g_agent.disk_path, old + 1 + strlen(dir) + 1);
	if (!p)
		return;
	p[old] = ':';
	strcpy(p + old + 1, dir);
	g_agent.disk_path = p;
}

void root_disks(const struct vb_boot *boot)
{
	static const char *const bins[] = { "/usr/local/bin", "/usr/bin", "/bin" };
	for (size_t i = 0; i < boot->n_disks; i++) {
		const struct vb_boot_disk *d = &boot->disks[i];
		char what[64];
		snprintf(what, sizeof(what), "disk %u", d->index);
		mount_disk_ro(d->index, d->path, what);
		for (size_t b = 0; b < sizeof(bins) / sizeof(bins[0]); b++) {
			if (!is_dir(d->path, bins[b]))
				continue;
			char dir[PATH_MAX];
			snprintf(dir, sizeof(dir), "%s%s", d->path, bins[b]);
			add_disk_path(dir);
		}
	}
}

void root_setup(const struct vb_boot *boot)
{
	/* what boot_system wrote into the initramfs, now in the image's /etc */
	boot_mkdir_p("/etc", 0755);
	db_ensure("/etc/passwd", "root:", "root:x:0:0:root:/root:/bin/sh\n");
	db_ensure("/etc/passwd", "sandbox:",
		  "sandbox:x:1000:1000:sandbox:/home/sandbox:/bin/sh\n");
	db_ensure("/etc/group", "root:", "root:x:0:\n");
	db_ensure("/etc/group", "sandbox:", "sandbox:x:1000:\n");
	/* the agent binaries' loader and shell (src/image/image.c), unless
	 * the image has its own */
	static const char *const links[][2] = {
		{ AGENT_SUPPORT_DIR "/ld-musl-x86_64.so.1", "/lib/ld-musl-x86_64.so.1" },
		{ AGENT_SUPPORT_DIR "/bash", "/bin/bash" },
	};
	struct stat st;
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		if (lstat(links[i][1], &st) == 0)
			continue;
		boot_mkdir_p(links[i][1][1] == 'l' ? "/lib" : "/bin", 0755);
		if (symlink(links[i][0], links[i][1]) < 0)
			agent_log("symlink %s: %s", links[i][1], strerror(errno));
	}
	if (boot->root_user) {
		char why[160];
		if (user_resolve(boot->root_user, &g_agent.def_user, why, sizeof(why)) < 0)
			agent_fatal("the image's user: %s", why);
		g_agent.has_def_user = 1;
	}
	boot_user_dirs(); /* /workspace for the stage's user: after resolving it */
	if (boot->root_workdir && boot->root_workdir[1]) {
		uid_t uid;
		gid_t gid;
		boot_work_owner(&uid, &gid);
		struct stat wd;
		/* created for the stage's user; an existing one is left as
		 * the image has it */
		if (stat(boot->root_workdir, &wd) < 0 &&
		    (boot_mkdir_p(boot->root_workdir, 0755) < 0 ||
		     chown(boot->root_workdir, uid, gid) < 0))
			agent_log("cannot create the working directory %s: %s", boot->root_workdir,
				  strerror(errno));
	}
}
