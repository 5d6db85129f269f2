/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hostile_guest: run inside a VoidBox guest (as root, by
 * tests/integration/test_hostile.sh) and try every way we know for a stage
 * to reach the agent (PID 1) and its control port.  Static (musl), so it
 * runs from a read-only 9p mount with nothing else in the guest.
 *
 *   hostile_guest steal   pidfd_getfd() every descriptor of PID 1
 *   hostile_guest mem     read PID 1's memory: /proc/1/mem, process_vm_readv
 *   hostile_guest port    open the control port: every /dev/vport*, and a
 *                         fresh device node for it
 *   hostile_guest forge   all of the above; with a descriptor of the port,
 *                         flood it with empty frames of an unknown type
 *
 * Each attempt prints one line "NAME: refused (ERRNO)" or "NAME: GOT ...";
 * the exit status is the number of attempts that got through (0 = all
 * refused).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

static int breaches;
static int stolen = -1; /* a descriptor of the control port, if we got one */

static void refused(const char *what, int e)
{
	printf("%s: refused (%s)\n", what, strerror(e));
}

static void got(const char *what, const char *detail)
{
	printf("%s: GOT %s\n", what, detail);
	breaches++;
}

static int is_port(int fd)
{
	char path[64], link[256];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return 0;
	link[n] = '\0';
	return strncmp(link, "/dev/vport", 10) == 0;
}

static void try_steal(void)
{
	int pfd = (int)syscall(SYS_pidfd_open, 1, 0);
	if (pfd < 0) {
		refused("pidfd_open(1)", errno);
		return;
	}
	int first_err = 0, any = 0;
	for (int fd = 0; fd < 256; fd++) {
		int nfd = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
		if (nfd < 0) {
			if (errno != EBADF && !first_err)
				first_err = errno;
			continue;
		}
		char d[64];
		snprintf(d, sizeof(d), "PID 1's fd %d%s", fd, is_port(nfd) ? " (the control port)" : "");
		got("pidfd_getfd", d);
		any = 1;
		if (is_port(nfd) && stolen < 0)
			stolen = nfd;
		else
			close(nfd);
	}
	if (!any)
		refused("pidfd_getfd", first_err ? first_err : EBADF);
	close(pfd);
}

static void try_mem(void)
{
	int fd = open("/proc/1/mem", O_RDONLY);
	if (fd < 0) {
		refused("/proc/1/mem", errno);
	} else {
		char b[16];
		/* any mapped address will do: the agent's static image */
		if (pread(fd, b, sizeof(b), 0x400000) >= 0)
			got("/proc/1/mem", "PID 1's memory");
		else
			refused("/proc/1/mem read", errno);
		close(fd);
	}
	char buf[16];
	struct iovec local = { buf, sizeof(buf) }, remote = { (void *)0x400000, sizeof(buf) };
	if (process_vm_readv(1, &local, 1, &remote, 1, 0) >= 0)
		got("process_vm_readv", "PID 1's memory");
	else if (errno == EFAULT)
		got("process_vm_readv", "access to PID 1 (the address was unmapped)");
	else
		refused("process_vm_readv", errno);
	fd = open("/proc/1/environ", O_RDONLY);
	if (fd >= 0) {
		got("/proc/1/environ", "opened");
		close(fd);
	} else {
		refused("/proc/1/environ", errno);
	}
}

static void try_port(void)
{
	DIR *d = opendir("/dev");
	struct dirent *e;
	int seen = 0;
	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, "vport", 5) != 0)
			continue;
		char path[300], what[320];
		snprintf(path, sizeof(path), "/dev/%s", e->d_name);
		snprintf(what, sizeof(what), "open %s", path);
		seen = 1;
		int fd = open(path, O_RDWR | O_NONBLOCK);
		if (fd < 0) {
			refused(what, errno);
			continue;
		}
		got(what, "the control port");
		if (stolen < 0)
			stolen = fd;
		else
			close(fd);
	}
	if (d)
		closedir(d);
	if (!seen)
		printf("open /dev/vport*: no such node\n");
	/* a node of our own for the same device */
	struct stat st;
	if (stat("/dev/vport0p1", &st) == 0) {
		if (mknod("/tmp/vport-copy", S_IFCHR | 0600, st.st_rdev) < 0) {
			refused("mknod a copy of the port", errno);
		} else {
			int fd = open("/tmp/vport-copy", O_RDWR | O_NONBLOCK);
			if (fd < 0) {
				refused("open a copy of the port", errno);
			} else {
				got("open a copy of the port", "the control port");
				if (stolen < 0)
					stolen = fd;
				else
					close(fd);
			}
			unlink("/tmp/vport-copy");
		}
	}
}

/* What a root stage that got the port would do to the host: empty frames of
 * an unknown type for request 1 (a live exec), as fast as the port takes
 * them, for a while. */
static void forge(void)
{
	if (stolen < 0) {
		printf("forge: no descriptor of the control port\n");
		return;
	}
	uint8_t f[12] = { 0, 0, 0, 0, 0xe7, 0x03, 0, 0, 1, 0, 0, 0 }; /* len 0, type 999, id 1 */
	int fl = fcntl(stolen, F_GETFL);
	fcntl(stolen, F_SETFL, fl & ~O_NONBLOCK);
	long n = 0;
	for (; n < 10000000; n++)
		if (write(stolen, f, sizeof(f)) != (ssize_t)sizeof(f))
			break;
	printf("forge: wrote %ld frames\n", n);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *mode = argc > 1 ? argv[1] : "forge";
	int all = !strcmp(mode, "forge");
	if (all || !strcmp(mode, "steal"))
		try_steal();
	if (all || !strcmp(mode, "mem"))
		try_mem();
	if (all || !strcmp(mode, "port"))
		try_port();
	if (all)
		forge();
	if (!all && strcmp(mode, "steal") && strcmp(mode, "mem") && strcmp(mode, "port")) {
		fprintf(stderr, "usage: hostile_guest steal|mem|port|forge\n");
		return 100;
	}
	return breaches;
}
