/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c — entry point: PID 1 of a VM, or a plain process ("process mode").
 *
 * PID 1: boot the guest, read and delete the boot data, start the reaper,
 * listen on vsock if the VM has it, then serve the virtio-serial port
 * forever.  PID 1 never returns: fatal errors power the VM off.
 *
 * Process mode (getpid() != 1; used by tests and the `process` backend, it
 * provides no isolation):
 *
 *     voidbox-agent --boot FILE (--stdio | --fd N | --listen PATH)
 *
 * serves stdin/stdout, an inherited socket (e.g. one end of a socketpair)
 * or every connection to a unix socket.  The boot file is read but kept.
 * VB_AGENT_ROOTS=dir:dir... replaces the default roots of file operations
 * (/workspace, /home/sandbox, /tmp); the first root is the default cwd.
 * Execs switch to the requested uid/gid only when the agent runs as root.
 */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#define PORT_WAIT_MS 5000u
#define VB_VMADDR_CID_ANY 0xFFFFFFFFu
#define VB_IOCTL_VM_SOCKETS_GET_LOCAL_CID 0x7b9 /* _IO(7, 0xb9) */

/* <linux/vm_sockets.h> is not available to musl-gcc. */
struct vb_sockaddr_vm {
	sa_family_t svm_family;
	unsigned short svm_reserved1;
	unsigned int svm_port;
	unsigned int svm_cid;
	unsigned char svm_flags;
	unsigned char svm_zero[3];
};

/* ---- serving stream connections ------------------------------------------ */

static void *stream_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	conn_serve_stream(fd, fd);
	return NULL;
}

static void *accept_main(void *arg)
{
	int ls = (int)(intptr_t)arg;
	for (;;) {
		int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EINTR && errno != ECONNABORTED)
				agent_sleep_ms(100); /* EMFILE and friends: back off */
			continue;
		}
		int rc = agent_thread(stream_main, (void *)(intptr_t)fd);
		if (rc != 0) {
			agent_log("cannot start a connection thread: %s", strerror(rc));
			close(fd);
		}
	}
	return NULL;
}

/* Listen on vsock if the VM has a transport.  Returns 1 if listening. */
static int vsock_start(void)
{
	int dev = open("/dev/vsock", O_RDONLY | O_CLOEXEC);
	unsigned int cid = VB_VMADDR_CID_ANY;
	if (dev >= 0) {
		if (ioctl(dev, VB_IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) < 0)
			cid = VB_VMADDR_CID_ANY;
		close(dev);
	}
	if (cid == VB_VMADDR_CID_ANY || cid <= 2)
		return 0; /* no vsock device: normal on QEMU without vhost-vsock */
	int s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return 0;
	struct vb_sockaddr_vm sa;
	memset(&sa, 0, sizeof(sa));
	sa.svm_family = AF_VSOCK;
	sa.svm_port = VB_VSOCK_PORT;
	sa.svm_cid = VB_VMADDR_CID_ANY;
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 16) < 0) {
		agent_log("vsock: cannot listen on port %u: %s", VB_VSOCK_PORT, strerror(errno));
		close(s);
		return 0;
	}
	if (agent_thread(accept_main, (void *)(intptr_t)s) != 0) {
		close(s);
		return 0;
	}
	agent_log("listening on vsock port %u (cid %u)", VB_VSOCK_PORT, cid);
	return 1;
}

/* ---- the virtio-serial port ---------------------------------------------- */

static int try_open_port(void)
{
	DIR *d = opendir("/sys/class/virtio-ports");
	if (!d)
		return -1;
	struct dirent *de;
	int fd = -1;
	while (fd < 0 && (de = readdir(d))) {
		if (de->d_name[0] == '.' || strlen(de->d_name) > 64)
			continue;
		char path[320], *name = NULL;
		snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", de->d_name);
		ssize_t n = agent_read_small(path, 256, &name);
		while (n > 0 && (name[n - 1] == '\n' || name[n - 1] == ' '))
			name[--n] = '\0';
		int match = n > 0 && !strcmp(name, VB_PORT_NAME);
		free(name);
		if (!match)
			continue;
		snprintf(path, sizeof(path), "/dev/%s", de->d_name);
		fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
		if (fd < 0 && errno == ENOENT) {
			/* no devtmpfs: make the node from sysfs */
			char devp[320], *dev = NULL;
			unsigned maj, min;
			snprintf(devp, sizeof(devp), "/sys/class/virtio-ports/%s/dev", de->d_name);
			if (agent_read_small(devp, 32, &dev) > 0 && sscanf(dev, "%u:%u", &maj, &min) == 2 &&
			    mknod(path, S_IFCHR | 0600, makedev(maj, min)) == 0)
				fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
			free(dev);
		}
		if (fd < 0)
			agent_log("cannot open %s: %s", path, strerror(errno));
	}
	closedir(d);
	return fd;
}

static int open_port(void)
{
	uint64_t deadline = agent_now_ms() + PORT_WAIT_MS;
	for (;;) {
		int fd = try_open_port();
		if (fd >= 0 || agent_now_ms() >= deadline)
			return fd;
		agent_sleep_ms(5);
	}
}

static _Noreturn void pid1_main(void)
{
	boot_system();
	if (boot_load(VB_BOOT_PATH, 1, &g_agent.boot) < 0)
		agent_fatal("cannot start without valid boot data");
	if (g_agent.boot.has_root) {
		root_switch(&g_agent.boot);
		root_setup(&g_agent.boot);
	}
	root_disks(&g_agent.boot); /* before the 9p mounts: either may nest in the other */
	boot_apply(&g_agent.boot);
	if (boot_set_roots(NULL) < 0)
		agent_fatal("out of memory");
	forward_listen(&g_agent.boot); /* after lo is up */
	reaper_start();
	int vsock = vsock_start();
	int fd = open_port();
	char *up = NULL;
	if (agent_read_small("/proc/uptime", 64, &up) > 0)
		up[strcspn(up, " \n")] = '\0';
	if (fd < 0) {
		if (!vsock)
			agent_fatal("no control channel: virtio-serial port %s not found and no vsock",
				    VB_PORT_NAME);
		agent_log("ready (vsock only) at %ss", up ? up : "?");
		free(up);
		for (;;)
			pause();
	}
	agent_log("ready at %ss", up ? up : "?");
	free(up);
	conn_serve_serial(fd);
}

/* ---- process mode -------------------------------------------------------- */

static _Noreturn void usage(void)
{
	fprintf(stderr, "usage: voidbox-agent --boot FILE (--stdio | --fd N | --listen PATH)\n"
			"       (as PID 1 it takes no arguments)\n");
	exit(2);
}

static int process_main(int argc, char **argv)
{
	const char *boot = NULL, *listen_path = NULL;
	int fd = -1, stdio_mode = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--boot") && i + 1 < argc)
			boot = argv[++i];
		else if (!strcmp(argv[i], "--stdio"))
			stdio_mode = 1;
		else if (!strcmp(argv[i], "--fd") && i + 1 < argc)
			fd = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--listen") && i + 1 < argc)
			listen_path = argv[++i];
		else
			usage();
	}
	if (!boot || (stdio_mode + (fd >= 0) + (listen_path != NULL)) != 1)
		usage();
	/* escaped grandchildren are re-parented to us, not to the real init */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (boot_load(boot, 0, &g_agent.boot) < 0)
		return 1;
	if (boot_set_roots(getenv("VB_AGENT_ROOTS")) < 0) {
		agent_log("no usable roots");
		return 1;
	}
	reaper_start();
	forward_listen(&g_agent.boot);
	if (stdio_mode) {
		conn_serve_stream(0, 1);
		return 0;
	}
	if (fd >= 0) {
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		conn_serve_stream(fd, fd);
		return 0;
	}
	if (!listen_path)
		usage();
	int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (ls < 0 || strlen(listen_path) >= sizeof(sa.sun_path)) {
		agent_log("cannot listen on %s", listen_path);
		return 1;
	}
	memcpy(sa.sun_path, listen_path, strlen(listen_path) + 1);
	unlink(listen_path);
	if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 16) < 0) {
		agent_log("cannot listen on %s: %s", listen_path, strerror(errno));
		return 1;
	}
	accept_main((void *)(intptr_t)ls);
	return 0;
}

int main(int argc, char **argv)
{
	g_agent.pid1 = getpid() == 1;
	g_agent.is_root = geteuid() == 0;
	/* modes are always set explicitly (fchmod after create) */
	umask(0);
	/* a vanished reader must be an EPIPE, never a fatal signal */
	signal(SIGPIPE, SIG_IGN);
	if (!g_agent.pid1)
		return process_main(argc, argv);
	/* PID 1 is not dumpable: its /proc entries stay root-only */
	prctl(PR_SET_DUMPABLE, 0);
	pid1_main();
}
