/* SPDX-License-Identifier: Apache-2.0 */
/*
 * boot.c — what PID 1 does before it serves anything: kernel file systems,
 * device nodes, the sandbox user, the per-VM boot data, hostname and the
 * 9p mounts; and the allowed roots of file operations.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Tried in order for every 9p mount (docs/agent.md has the measurements).
 * access=client: the guest kernel checks permissions and new files carry the
 * creating uid (QEMU's mapped-xattr stores it in xattrs).  cache=mmap: as
 * uncached as cache=none (the host sees every write at once) but shared
 * writable mmap works; under cache=none it fails with EINVAL (6.1 uses
 * generic_file_readonly_mmap there), which breaks e.g. sqlite. */
static const char *const p9_options[] = {
	"trans=virtio,version=9p2000.L,msize=262144,access=client,cache=mmap",
	"trans=virtio,version=9p2000.L,msize=262144,access=client,cache=none",
	"trans=virtio,version=9p2000.L,access=client",
	"trans=virtio,version=9p2000.L",
};

/* ---- helpers ------------------------------------------------------------- */

/* mkdir -p for paths we own (root-owned components, created by PID 1 before
 * anything else runs, so no symlink games are possible yet). */
int boot_mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof(buf))
		return errno = ENAMETOOLONG, -1;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int do_mount(const char *src, const char *target, const char *type, unsigned long flags,
		    const char *data)
{
	if (boot_mkdir_p(target, 0755) < 0) {
		agent_log("mkdir %s: %s", target, strerror(errno));
		return -1;
	}
	if (mount(src, target, type, flags, data) < 0) {
		if (errno == EBUSY) /* already mounted (e.g. by the kernel) */
			return 0;
		agent_log("mount %s on %s: %s", type, target, strerror(errno));
		return -1;
	}
	return 0;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0 || agent_write_all(fd, text, strlen(text)) < 0)
		agent_log("cannot write %s: %s", path, strerror(errno));
	if (fd >= 0) {
		fchmod(fd, mode);
		close(fd);
	}
}

static void make_dir(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
	if (boot_mkdir_p(path, mode) < 0 || chown(path, uid, gid) < 0 || chmod(path, mode) < 0)
		agent_log("cannot create %s: %s", path, strerror(errno));
}

/* devtmpfs is missing: a tmpfs /dev with the nodes programs expect. */
static void fallback_dev(void)
{
	static const struct {
		const char *name;
		unsigned maj, min;
		mode_t mode;
	} nodes[] = {
		{ "/dev/null", 1, 3, 0666 },   { "/dev/zero", 1, 5, 0666 },
		{ "/dev/full", 1, 7, 0666 },   { "/dev/random", 1, 8, 0666 },
		{ "/dev/urandom", 1, 9, 0666 }, { "/dev/tty", 5, 0, 0666 },
		{ "/dev/console", 5, 1, 0600 }, { "/dev/ptmx", 5, 2, 0666 },
	};
	if (do_mount("tmpfs", "/dev", "tmpfs", MS_NOSUID, "mode=0755") < 0)
		return;
	for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
		if (mknod(nodes[i].name, S_IFCHR | nodes[i].mode, makedev(nodes[i].maj, nodes[i].min)) < 0 &&
		    errno != EEXIST)
			agent_log("mknod %s: %s", nodes[i].name, strerror(errno));
		chmod(nodes[i].name, nodes[i].mode);
	}
}

/* fds 0-2 of PID 1 point at /dev/null (if the initramfs had no
 * /dev/console they are closed, and the first open() would take them). */
static void std_fds(void)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		agent_fatal("cannot open /dev/null: %s", strerror(errno));
	for (int i = 0; i < 3; i++)
		if (fd != i)
			dup2(fd, i); /* dup2 clears O_CLOEXEC on the copy */
	if (fd > 2)
		close(fd);
	else
		fcntl(fd, F_SETFD, 0);
}

/* ---- boot_system --------------------------------------------------------- */

void boot_system(void)
{
	/* the essential ones: without them nothing below works */
	if (do_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		agent_fatal("cannot mount /proc");
	if (do_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		agent_fatal("cannot mount /sys");
	if (do_mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755") < 0)
		fallback_dev();
	std_fds();
	agent_log_open("/dev/console");

	if (do_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		     "newinstance,ptmxmode=0666,mode=0620,gid=5") == 0) {
		struct stat st;
		if (lstat("/dev/ptmx", &st) < 0 && symlink("pts/ptmx", "/dev/ptmx") < 0)
			agent_log("symlink /dev/ptmx: %s", strerror(errno));
	}
	do_mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	static const char *const links[][2] = {
		{ "/proc/self/fd", "/dev/fd" },	    { "/proc/self/fd/0", "/dev/stdin" },
		{ "/proc/self/fd/1", "/dev/stdout" }, { "/proc/self/fd/2", "/dev/stderr" },
	};
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
		if (symlink(links[i][0], links[i][1]) < 0 && errno != EEXIST)
			agent_log("symlink %s: %s", links[i][1], strerror(errno));

	if (do_mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
		make_dir("/tmp", 01777, 0, 0);
	do_mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");

	make_dir("/etc", 0755, 0, 0);
	write_text("/etc/passwd",
		   "root:x:0:0:root:/root:/bin/sh\n"
		   "sandbox:x:1000:1000:sandbox:/home/sandbox:/bin/sh\n",
		   0644);
	write_text("/etc/group", "root:x:0:\ntty:x:5:\nsandbox:x:1000:\n", 0644);
	boot_user_dirs();
}

void boot_work_owner(uid_t *uid, gid_t *gid)
{
	int image = g_agent.has_def_user && g_agent.def_user.uid != 0;
	*uid = image ? g_agent.def_user.uid : AGENT_SANDBOX_UID;
	*gid = image ? g_agent.def_user.gid : AGENT_SANDBOX_GID;
}

void boot_user_dirs(void)
{
	uid_t uid;
	gid_t gid;
	boot_work_owner(&uid, &gid);
	make_dir("/root", 0700, 0, 0);
	make_dir("/home", 0755, 0, 0);
	make_dir("/home/sandbox", 0700, AGENT_SANDBOX_UID, AGENT_SANDBOX_GID);
	make_dir("/workspace", 0755, uid, gid);
}

/* ---- boot data ----------------------------------------------------------- */

int boot_load(const char *path, int consume, struct vb_boot *out)
{
	memset(out, 0, sizeof(*out));
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0) {
		agent_log("boot data missing: cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > (off_t)(VB_FRAME_HDR_LEN + VB_FRAME_MAX) || st.st_size < (off_t)VB_FRAME_HDR_LEN) {
		agent_log("boot data malformed: %s is not a boot frame", path);
		close(fd);
		return -1;
	}
	size_t size = (size_t)st.st_size, got = 0;
	uint8_t *buf = malloc(size);
	if (!buf) {
		close(fd);
		agent_log("boot data: out of memory");
		return -1;
	}
	while (got < size) {
		ssize_t r = read(fd, buf + got, size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (consume) {
		/* gone before anything else runs: no guest process can read it */
		if (unlink(path) < 0)
			agent_log("cannot remove %s: %s", path, strerror(errno));
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s", path);
		char *slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			rmdir(dir);
		}
	}
	int rc = got == size ? vb_boot_decode(buf, size, out) : VB_ERR_IO;
	explicit_bzero(buf, size);
	free(buf);
	if (rc != VB_ERR_NONE) {
		agent_log("boot data malformed: %s (%s)", path, vb_err_name(rc));
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

/* ---- boot_apply ---------------------------------------------------------- */

static void loopback_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, "lo", 3);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			agent_log("cannot bring up lo: %s", strerror(errno));
	}
	close(s);
}

static void set_addr(struct sockaddr *sa, const char *dotted)
{
	struct sockaddr_in *in = (struct sockaddr_in *)(void *)sa;
	memset(in, 0, sizeof(*in));
	in->sin_family = AF_INET;
	inet_pton(AF_INET, dotted, &in->sin_addr);
}

/* What NET_UP replaced, for NET_DOWN to put back (netup.c): a VM made to
 * be saved forgets its network before the save.  -1: not saved. */
static char *g_resolv_before;      /* /etc/resolv.conf's bytes, or NULL: none */
static int g_resolv_saved;
static char g_ipv6_before[8];     /* eth0's disable_ipv6, as read */

/* (path)'s bytes (at most 64 KiB, NUL-terminated), or NULL when it is not
 * there or not a regular file. */
static char *read_small(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	struct stat st;
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > 65536) {
		close(fd);
		return NULL;
	}
	char *buf = calloc(1, (size_t)st.st_size + 1);
	size_t got = 0;
	while (buf && got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	return buf;
}

/* The user-mode network (docs/network.md): a handful of ioctls (12 ms under
 * TCG, most of it bringing virtio-net up), so it is done before HELLO and
 * the first exec finds the network up.  Returns 0, or an errno with (why)
 * naming the step. */
int boot_network_up(char *why, size_t len)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		int e = errno;
		snprintf(why, len, "network: socket: %s", strerror(e));
		return e;
	}
	/* IPv6 is not offered (the host drops it): no link-local address, no
	 * router solicitations into the void */
	if (!g_resolv_saved) {
		char *v6 = read_small("/proc/sys/net/ipv6/conf/" VB_NET_IFNAME "/disable_ipv6");
		snprintf(g_ipv6_before, sizeof(g_ipv6_before), "%s", v6 ? v6 : "");
		free(v6);
		g_resolv_before = read_small("/etc/resolv.conf");
		g_resolv_saved = 1;
	}
	write_text("/proc/sys/net/ipv6/conf/" VB_NET_IFNAME "/disable_ipv6", "1\n", 0644);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", VB_NET_IFNAME);
	const char *step = "address";
	set_addr(&ifr.ifr_addr, VB_NET_GUEST_ADDR);
	if (ioctl(s, SIOCSIFADDR, &ifr) < 0)
		goto fail;
	step = "netmask";
	set_addr(&ifr.ifr_netmask, VB_NET_NETMASK);
	if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0)
		goto fail;
	step = "up";
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		goto fail;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		goto fail;
	step = "default route";
	struct rtentry rt;
	memset(&rt, 0, sizeof(rt));
	set_addr(&rt.rt_dst, "0.0.0.0");
	set_addr(&rt.rt_genmask, "0.0.0.0");
	set_addr(&rt.rt_gateway, VB_NET_GATEWAY_ADDR);
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	rt.rt_dev = ifr.ifr_name;
	if (ioctl(s, SIOCADDRT, &rt) < 0)
		goto fail;
	close(s);
	write_text("/etc/resolv.conf", "nameserver " VB_NET_DNS_ADDR "\n", 0644);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	agent_log("network up (%s %s) in %ld us", VB_NET_IFNAME, VB_NET_GUEST_ADDR,
		  (long)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000));
	return 0;
fail:;
	int e = errno;
	snprintf(why, len, "network: %s %s: %s", VB_NET_IFNAME, step, strerror(e));
	close(s);
	return e;
}

int boot_network_down(char *why, size_t len)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		int e = errno;
		snprintf(why, len, "network: socket: %s", strerror(e));
		return e;
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", VB_NET_IFNAME);
	/* the route first (gone with the interface anyway, but said), then
	 * the address (0.0.0.0 deletes it), then down: the neighbour cache
	 * goes with the interface */
	const char *step = "default route";
	struct rtentry rt;
	memset(&rt, 0, sizeof(rt));
	set_addr(&rt.rt_dst, "0.0.0.0");
	set_addr(&rt.rt_genmask, "0.0.0.0");
	set_addr(&rt.rt_gateway, VB_NET_GATEWAY_ADDR);
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	rt.rt_dev = ifr.ifr_name;
	if (ioctl(s, SIOCDELRT, &rt) < 0 && errno != ESRCH)
		goto fail;
	step = "address";
	set_addr(&ifr.ifr_addr, "0.0.0.0");
	if (ioctl(s, SIOCSIFADDR, &ifr) < 0 && errno != EADDRNOTAVAIL)
		goto fail;
	step = "down";
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		goto fail;
	ifr.ifr_flags &= ~(IFF_UP | IFF_RUNNING);
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		goto fail;
	close(s);
	if (g_resolv_saved) {
		if (g_resolv_before)
			write_text("/etc/resolv.conf", g_resolv_before, 0644);
		else if (unlink("/etc/resolv.conf") < 0 && errno != ENOENT)
			agent_log("cannot remove /etc/resolv.conf: %s", strerror(errno));
		if (g_ipv6_before[0])
			write_text("/proc/sys/net/ipv6/conf/" VB_NET_IFNAME "/disable_ipv6",
				   g_ipv6_before, 0644);
		free(g_resolv_before);
		g_resolv_before = NULL;
		g_resolv_saved = 0;
	}
	agent_log("network down (%s)", VB_NET_IFNAME);
	return 0;
fail:;
	int e = errno;
	snprintf(why, len, "network: %s %s: %s", VB_NET_IFNAME, step, strerror(e));
	close(s);
	return e;
}

/* A guest path for a mount: absolute, no "." or ".." components, not "/". */
static int sane_mount_path(const char *p)
{
	if (p[0] != '/' || p[1] == '\0' || strlen(p) >= PATH_MAX)
		return 0;
	for (const char *c = p; *c;) {
		while (*c == '/')
			c++;
		const char *e = strchrnul(c, '/');
		size_t n = (size_t)(e - c);
		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		c = e;
	}
	return 1;
}

int boot_mount_9p(const struct vb_boot_mount *m, char *why, size_t len)
{
	if (!sane_mount_path(m->path)) {
		snprintf(why, len, "mount %s: invalid guest path '%.256s'", m->tag, m->path);
		return EINVAL;
	}
	if (boot_mkdir_p(m->path, 0755) < 0) {
		int e = errno;
		snprintf(why, len, "mount %s: mkdir %.256s: %s", m->tag, m->path, strerror(e));
		return e;
	}
	unsigned long flags = MS_NOSUID | MS_NODEV | (m->ro ? MS_RDONLY : 0);
	int err = 0;
	size_t i = 0;
	for (; i < sizeof(p9_options) / sizeof(p9_options[0]); i++) {
		if (mount(m->tag, m->path, "9p", flags, p9_options[i]) == 0) {
			err = 0;
			break;
		}
		err = errno;
	}
	if (err) {
		snprintf(why, len, "mount 9p '%s' on %.256s: %s", m->tag, m->path, strerror(err));
		return err;
	}
	if (i > 0)
		agent_log("mounted 9p '%s' on %s with fallback options '%s'", m->tag, m->path,
			  p9_options[i]);
	if (!m->ro) {
		/* QEMU's mapped-xattr model stores a guest chown in xattrs: the
		 * sandbox user owns the mount in the guest, the host user keeps
		 * owning the files on the host. */
		struct stat st;
		uid_t uid;
		gid_t gid;
		boot_work_owner(&uid, &gid);
		if (stat(m->path, &st) == 0 && (st.st_uid != uid || st.st_gid != gid) &&
		    chown(m->path, uid, gid) < 0)
			agent_log("mount %s: cannot give %s to the stage's user: %s", m->tag, m->path,
				  strerror(errno));
	}
	return 0;
}

static void mount_9p(const struct vb_boot_mount *m)
{
	char why[512];
	if (boot_mount_9p(m, why, sizeof(why)))
		agent_fatal("%s", why);
}

void boot_apply(const struct vb_boot *boot)
{
	const char *host = boot->hostname && boot->hostname[0] ? boot->hostname : "voidbox";
	if (sethostname(host, strlen(host)) < 0)
		agent_log("sethostname: %s", strerror(errno));
	char text[256];
	snprintf(text, sizeof(text), "%s\n", host);
	write_text("/etc/hostname", text, 0644);
	snprintf(text, sizeof(text), "127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\t%s\n", host);
	write_text("/etc/hosts", text, 0644);
	loopback_up();
	char why[256];
	if (boot->net && boot_network_up(why, sizeof(why)) != 0)
		agent_log("%s", why); /* programs then see no route */
	for (size_t i = 0; i < boot->n_mounts; i++)
		mount_9p(&boot->mounts[i]);
}

/* ---- roots --------------------------------------------------------------- */

int boot_add_root(const char *path, int canonicalize)
{
	char buf[PATH_MAX];
	const char *p = path;
	if (canonicalize && realpath(path, buf))
		p = buf;
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		n--;
	if (p[0] != '/' || n <= 1) {
		agent_log("ignoring root '%.256s': not an absolute directory below /", path);
		return 0;
	}
	for (size_t i = 0; i < g_agent.n_roots; i++)
		if (strlen(g_agent.roots[i]) == n && !memcmp(g_agent.roots[i], p, n))
			return 0;
	char **r = realloc(g_agent.roots, (g_agent.n_roots + 1) * sizeof(*r));
	if (!r)
		return -1;
	g_agent.roots = r;
	if (!(r[g_agent.n_roots] = strndup(p, n)))
		return -1;
	g_agent.n_roots++;
	return 0;
}

void boot_remove_root(const char *path)
{
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	for (size_t i = 0; i < g_agent.n_roots; i++)
		if (strlen(g_agent.roots[i]) == n && !memcmp(g_agent.roots[i], path, n)) {
			free(g_agent.roots[i]);
			g_agent.roots[i] = g_agent.roots[--g_agent.n_roots];
			return;
		}
}

int boot_set_roots(const char *spec)
{
	if (spec && *spec) {
		char *copy = strdup(spec), *save = NULL;
		if (!copy)
			return -1;
		for (char *tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save))
			if (boot_add_root(tok, 1) < 0) {
				free(copy);
				return -1;
			}
		free(copy);
	} else {
		if (boot_add_root("/workspace", 0) < 0 || boot_add_root("/home/sandbox", 0) < 0 ||
		    boot_add_root("/tmp", 0) < 0)
			return -1;
	}
	for (size_t i = 0; i < g_agent.boot.n_mounts; i++)
		if (sane_mount_path(g_agent.boot.mounts[i].path) &&
		    boot_add_root(g_agent.boot.mounts[i].path, !g_agent.pid1) < 0)
			return -1;
	/* the disks (read-only) and the image's working directory */
	for (size_t i = 0; i < g_agent.boot.n_disks; i++)
		if (boot_add_root(g_agent.boot.disks[i].path, !g_agent.pid1) < 0)
			return -1;
	if (g_agent.boot.root_workdir && sane_mount_path(g_agent.boot.root_workdir) &&
	    boot_add_root(g_agent.boot.root_workdir, !g_agent.pid1) < 0)
		return -1;
	return g_agent.n_roots ? 0 : -1;
}
