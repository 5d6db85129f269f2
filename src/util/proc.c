/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Processes named by pid and start time: a pid alone can be reused, so
 * every check and signal below also compares the start time recorded
 * when the process was seen first.
 */
#include "util/util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

long long vb_pid_start(long pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* the command name may hold spaces and parentheses: skip to the last ')' */
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	p++;
	/* p is at the space before field 3 (state); starttime is field 22 */
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -1;
	}
	char *end;
	long long v = strtoll(p + 1, &end, 10);
	return end == p + 1 ? -1 : v;
}

int vb_pid_alive(long pid, long long start)
{
	if (pid <= 0 || pid > 0x7fffffff)
		return 0;
	if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
		return 0;
	if (start >= 0) {
		long long cur = vb_pid_start(pid);
		if (cur >= 0 && cur != start)
			return 0; /* the pid was reused */
		/* a zombie keeps its stat: it is gone for our purposes */
		char path[64], st[512];
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		FILE *f = fopen(path, "re");
		size_t n = f ? fread(st, 1, sizeof(st) - 1, f) : 0;
		if (f)
			fclose(f);
		st[n] = '\0';
		const char *p = strrchr(st, ')');
		if (p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'))
			return 0;
	}
	return 1;
}

int vb_pid_terminate(long pid, long long start, int sig, int timeout_ms, vb_error *err)
{
	if (!vb_pid_alive(pid, start))
		return 0;
	if (kill((pid_t)pid, sig) < 0) {
		if (errno == ESRCH)
			return 0;
		return vb_error_errno(err, errno, "cannot signal process %ld", pid);
	}
	int64_t deadline = vb_now_ms() + timeout_ms;
	while (vb_pid_alive(pid, start)) {
		if (vb_now_ms() >= deadline)
			return 1;
		struct timespec ts = { 0, 50 * 1000000L };
		nanosleep(&ts, NULL);
	}
	return 0;
}
