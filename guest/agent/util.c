/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util.c — logging, clocks, errno mapping and small I/O helpers.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

struct agent g_agent;

static int log_fd = 2;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void agent_log_open(const char *path)
{
	if (!path) {
		log_fd = 2;
		return;
	}
	/* O_NONBLOCK: PID 1 must never stall on a full console (a stalled
	 * console once froze a whole agent); a dropped line is the lesser evil. */
	int fd = open(path, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0)
		log_fd = fd;
}

/* Write (n) bytes; on a full console wait at most (wait_ms) in total. */
static void log_write(const char *p, size_t n, int wait_ms)
{
	uint64_t deadline = agent_now_ms() + (uint64_t)wait_ms;
	while (n > 0) {
		ssize_t w = write(log_fd, p, n);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			uint64_t now = agent_now_ms();
			if (now >= deadline)
				return;
			struct pollfd pfd = { .fd = log_fd, .events = POLLOUT };
			poll(&pfd, 1, (int)(deadline - now));
			continue;
		}
		return;
	}
}

__attribute__((format(printf, 2, 0)))
static void vlog(int wait_ms, const char *fmt, va_list ap)
{
	char line[512];
	size_t pre = strlen(AGENT_LOG_PREFIX);
	memcpy(line, AGENT_LOG_PREFIX, pre);
	int n = vsnprintf(line + pre, sizeof(line) - pre - 1, fmt, ap);
	if (n < 0)
		return;
	size_t len = pre + ((size_t)n < sizeof(line) - pre - 1 ? (size_t)n : sizeof(line) - pre - 2);
	line[len++] = '\n';
	pthread_mutex_lock(&log_lock);
	log_write(line, len, wait_ms);
	pthread_mutex_unlock(&log_lock);
}

__attribute__((format(printf, 1, 2)))
static void log_wait(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(1000, fmt, ap);
	va_end(ap);
}

void agent_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(0, fmt, ap);
	va_end(ap);
}

/* Give the serial console up to a second to put the last lines out. */
static void drain_console(void)
{
	for (int i = 0; i < 100; i++) {
		int pending = 0;
		if (ioctl(log_fd, TIOCOUTQ, &pending) < 0 || pending <= 0)
			return;
		agent_sleep_ms(10);
	}
}

_Noreturn void agent_poweroff(void)
{
	if (!g_agent.pid1)
		exit(0);
	drain_console();
	sync();
	/* -no-reboot + reboot=t: a reboot makes QEMU exit */
	reboot(RB_AUTOBOOT);
	for (;;) /* PID 1 must not exit: that would panic the kernel */
		pause();
}

_Noreturn void agent_fatal(const char *fmt, ...)
{
	char msg[480];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* "fatal: " + the reason on one line: the host quotes the last such
	 * line when the VM powers off (src/sandbox/sandbox.c) */
	log_wait("fatal: %s", msg);
	if (!g_agent.pid1)
		exit(70);
	agent_log("powering off after a fatal error");
	agent_poweroff();
}

uint64_t agent_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void agent_sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int agent_errno_to_vb(int e)
{
	switch (e) {
	case ENOENT:
		return VB_ERR_NOENT;
	case ENOTDIR:
		return VB_ERR_NOTDIR;
	case EISDIR:
		return VB_ERR_ISDIR;
	case EEXIST:
	case ENOTEMPTY:
		return VB_ERR_EXIST;
	case EACCES:
	case EPERM:
	case ETXTBSY:
		return VB_ERR_ACCESS;
	case EROFS:
		return VB_ERR_ROFS;
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return VB_ERR_NOSPC;
	case ELOOP:
	case EXDEV:
		return VB_ERR_OUTSIDE;
	case EINVAL:
	case ENAMETOOLONG:
	case EOVERFLOW:
		return VB_ERR_INVAL;
	case ENOEXEC:
		return VB_ERR_NOEXEC;
	case ENOMEM:
	case EMFILE:
	case ENFILE:
		return VB_ERR_INTERNAL;
	case EAGAIN:
	case EBUSY:
		return VB_ERR_BUSY;
	default:
		return VB_ERR_IO;
	}
}

ssize_t agent_read_small(const char *path, size_t max, char **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	char *buf = malloc(max + 1);
	if (!buf) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	size_t len = 0;
	while (len < max) {
		ssize_t r = read(fd, buf + len, max - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			close(fd);
			errno = e;
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	return (ssize_t)len;
}

int agent_write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

int agent_thread(void *(*fn)(void *), void *arg)
{
	pthread_attr_t a;
	pthread_t t;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, AGENT_THREAD_STACK);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	int rc = pthread_create(&t, &a, fn, arg);
	pthread_attr_destroy(&a);
	return rc;
}

void agent_wake(int efd)
{
	uint64_t one = 1;
	ssize_t r = write(efd, &one, sizeof(one));
	(void)r; /* EAGAIN means the counter is already nonzero: still woken */
}
