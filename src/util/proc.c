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

/* Fields 3 (state) and 22 (starttime) of /proc/PID/stat; -1 if unreadable. */
static int read_stat(long pid, char *state, long long *start)
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
	if (!p || p[1] != ' ' || !p[2])
		return -1;
	*state = p[2];
	p++;
	/* p is at the space before field 3 (state); starttime is field 22 */
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -1;
	}
	char *end;
	*start = strtoll(p + 1, &end, 10);
	return end == p + 1 ? -1 : 0;
}

long long vb_pid_start(long pid)
{
	char state;
	long long start;
	return read_stat(pid, &state, &start) < 0 ? -1 : start;
}

int vb_pid_alive(long pid, long long start)
{
	if (pid <= 0 || pid > 0x7fffffff)
		return 0;
	if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
		return 0;
	char state;
	long long cur;
	if (read_stat(pid, &state, &cur) < 0)
		return 1; /* no /proc: kill() said it exists */
	if (state == 'Z' || state == 'X')
		return 0; /* a zombie is gone for our purposes */
	return start < 0 || cur == start; /* else the pid was reused */
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
