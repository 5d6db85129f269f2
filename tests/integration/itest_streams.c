/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loopback forwards on a real VM: guest programs connect to 127.0.0.1:PORT
 * (busybox nc) and reach handlers on the host through guest-opened streams.
 * Exact bytes both ways (sha256 in the guest of what went out and what came
 * back, 32 MiB and 8 concurrent connections), a handler that does not read
 * stalls neither execs nor file requests, and either side's close ends the
 * connection on the other; and a hostile agent (tests/hostile/hostile_agent
 * as QEMU) that opens too many streams, ignores a stream's window or sends
 * data for a stream it never opened kills its VM with "the guest broke the
 * protocol (...)" within 20 s, the host's memory bounded.  Prints "ok - NAME" / "not ok - NAME" lines.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/util.h"
#include "voidbox/voidbox.h"

#include "itest.h"

enum { PORT_ECHO = 7001, PORT_SLOW = 7002, PORT_CLOSER = 7003, PORT_WATCH = 7004 };

static int spawn(void *(*fn)(void *), int fd)
{
	pthread_t t;
	if (pthread_create(&t, NULL, fn, (void *)(intptr_t)fd) != 0) {
		close(fd);
		return -1;
	}
	pthread_detach(t);
	return 0;
}

/* echo: every byte back, then half-close when the guest half-closed */
static atomic_ullong echoed;

static void *echo_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	static __thread char buf[65536];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (vb_write_full(fd, buf, (size_t)n) < 0)
			break;
		echoed += (unsigned long long)n;
	}
	shutdown(fd, SHUT_WR);
	close(fd);
	return NULL;
}

static int echo_accept(void *opaque, int fd)
{
	(void)opaque;
	return spawn(echo_main, fd);
}

/* slow: reads nothing until released, then counts what it drains */
static atomic_int slow_release;
static atomic_ullong slow_got;
static atomic_int slow_done;

static void *slow_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[65536];
	while (!slow_release)
		usleep(10000);
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		slow_got += (unsigned long long)n;
	close(fd);
	slow_done = 1;
	return NULL;
}

static int slow_accept(void *opaque, int fd)
{
	(void)opaque;
	return spawn(slow_main, fd);
}

/* closer: says bye and closes at once */
static int closer_accept(void *opaque, int fd)
{
	(void)opaque;
	int rc = vb_write_full(fd, "bye\n", 4) < 0 ? -1 : 0;
	close(fd);
	return rc;
}

/* watch: notes when the guest's side goes away */
static atomic_int watch_eof;

static void *watch_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[4096];
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	watch_eof = 1;
	close(fd);
	return NULL;
}

static int watch_accept(void *opaque, int fd)
{
	(void)opaque;
	return spawn(watch_main, fd);
}

static int sh(vb_sandbox *sb, const char *script, unsigned timeout_ms, struct vb_exec_result *res)
{
	const char *argv[] = { "sh", "-c", script, NULL };
	struct vb_exec_params p = { .argv = argv, .timeout_ms = timeout_ms };
	vb_error err = { 0 };
	if (vb_exec_run(sb, &p, NULL, 0, 1 << 20, res, &err) < 0) {
		fprintf(stderr, "  exec: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int test_round_trip(vb_sandbox *sb)
{
	struct vb_exec_result r;
	CHECK(sh(sb, "printf 'hello, host' | nc 127.0.0.1 7001", 60000, &r) == 0, "exec");
	int ok = r.exit_code == 0 && r.out_len == 11 && !memcmp(r.out, "hello, host", 11);
	fprintf(stderr, "  out '%.*s' err '%.*s' rc %d\n", (int)r.out_len, (char *)r.out,
		(int)r.err_len, (char *)r.errout, r.exit_code);
	vb_exec_result_free(&r);
	CHECK(ok, "the bytes came back");
	return 0;
}

/* Eight connections at once, 1 MiB each, each compared byte for byte. */
static int test_concurrent(vb_sandbox *sb)
{
	struct vb_exec_result r;
	CHECK(sh(sb,
		 "cd /tmp && for i in 1 2 3 4 5 6 7 8; do"
		 " head -c 1048576 /dev/urandom >in$i;"
		 " nc 127.0.0.1 7001 <in$i >out$i & done; wait;"
		 " for i in 1 2 3 4 5 6 7 8; do cmp in$i out$i || exit 1; done; echo same",
		 300000, &r) == 0,
	      "exec");
	int ok = r.exit_code == 0 && r.out_len == 5 && !memcmp(r.out, "same\n", 5);
	if (!ok)
		fprintf(stderr, "  out '%.*s' err '%.*s' rc %d\n", (int)r.out_len, (char *)r.out,
			(int)r.err_len, (char *)r.errout, r.exit_code);
	vb_exec_result_free(&r);
	CHECK(ok, "8 concurrent 1 MiB echoes");
	return 0;
}

/* 32 MiB out and back: sha256 of both ends in the guest, and the host
 * echoed exactly that many bytes. */
static int test_large(vb_sandbox *sb)
{
	struct vb_exec_result r;
	unsigned long long before = echoed;
	int64_t t0 = vb_now_ms();
	CHECK(sh(sb,
		 "cd /tmp && head -c 33554432 /dev/urandom >big &&"
		 " nc 127.0.0.1 7001 <big >big.out &&"
		 " a=$(sha256sum <big) && b=$(sha256sum <big.out) && rm big big.out &&"
		 " [ \"$a\" = \"$b\" ] && echo \"$a\"",
		 600000, &r) == 0,
	      "exec");
	int ok = r.exit_code == 0 && r.out_len > 64;
	if (!ok)
		fprintf(stderr, "  out '%.*s' err '%.*s' rc %d\n", (int)r.out_len, (char *)r.out,
			(int)r.err_len, (char *)r.errout, r.exit_code);
	vb_exec_result_free(&r);
	CHECK(ok, "32 MiB came back with the same sha256");
	CHECK(echoed - before == 32ull << 20, "the host echoed %llu bytes",
	      (unsigned long long)(echoed - before));
	fprintf(stderr, "  32 MiB both ways in %lld ms\n", (long long)(vb_now_ms() - t0));
	return 0;
}

/* A handler that does not read: the guest's writer blocks on flow
 * control, while execs and file requests go on; released, it gets every
 * byte. */
static int test_slow_handler(vb_sandbox *sb)
{
	const char *argv[] = { "sh", "-c",
			       "head -c 8388608 /dev/zero >/tmp/slow && nc 127.0.0.1 7002 </tmp/slow",
			       NULL };
	struct vb_exec_params p = { .argv = argv, .timeout_ms = 300000 };
	vb_error err = { 0 };
	vb_exec *ex = vb_exec_start(sb, &p, &err);
	CHECK(ex, "%s", err.msg);
	sleep(3); /* the window fills, the socketpair too */
	int64_t t0 = vb_now_ms();
	struct vb_exec_result r;
	int rc = sh(sb, "echo still here", 30000, &r);
	int ok = rc == 0 && r.exit_code == 0 && r.out_len == 11;
	if (rc == 0)
		vb_exec_result_free(&r);
	uint8_t *data = NULL;
	size_t len = 0;
	int frc = vb_file_write(sb, "/tmp/f", "abc", 3, 0, 0, &err);
	if (frc == 0)
		frc = vb_file_read(sb, "/tmp/f", 16, &data, &len, &err);
	free(data);
	int64_t took = vb_now_ms() - t0;
	slow_release = 1;
	struct vb_exec_event ev;
	int exit_code = -1;
	int64_t end = vb_now_ms() + 300000;
	while (exit_code < 0 && vb_now_ms() < end) {
		int n = vb_exec_next(ex, &ev, 1000, &err);
		if (n < 0)
			break;
		if (n > 0 && ev.kind == VB_EXEC_EXIT)
			exit_code = ev.exit_code;
	}
	vb_exec_free(ex);
	CHECK(ok, "an exec ran while the stream was stalled");
	CHECK(frc == 0 && len == 3, "file requests too: %s", err.msg);
	CHECK(took < 20000, "they took %lld ms", (long long)took);
	CHECK(exit_code == 0, "the writer finished once the handler read (%d)", exit_code);
	for (int i = 0; i < 500 && !slow_done; i++)
		usleep(10000);
	CHECK(slow_got == 8ull << 20, "the handler got %llu bytes", (unsigned long long)slow_got);
	return 0;
}

/* The host closes: the guest program sees the end (and the bytes before
 * it) although its own input is still open. */
static int test_host_closes(vb_sandbox *sb)
{
	struct vb_exec_result r;
	CHECK(sh(sb,
		 "cd /tmp && mkfifo hold && { nc 127.0.0.1 7003 <hold >bye & pid=$!;"
		 " exec 3>hold; wait $pid; echo rc=$?; cat bye; }",
		 60000, &r) == 0,
	      "exec");
	int ok = r.exit_code == 0 && strstr((char *)r.out, "bye") != NULL;
	if (!ok)
		fprintf(stderr, "  out '%.*s' err '%.*s' rc %d\n", (int)r.out_len, (char *)r.out,
			(int)r.err_len, (char *)r.errout, r.exit_code);
	vb_exec_result_free(&r);
	CHECK(ok, "nc ended after the host's close");
	return 0;
}

/* The guest program dies: the handler reads EOF. */
static int test_guest_closes(vb_sandbox *sb)
{
	struct vb_exec_result r;
	CHECK(sh(sb,
		 "cd /tmp && mkfifo hold2 && { nc 127.0.0.1 7004 <hold2 & pid=$!;"
		 " exec 3>hold2; sleep 2; kill -9 $pid; wait $pid; echo killed; }",
		 60000, &r) == 0,
	      "exec");
	vb_exec_result_free(&r);
	for (int i = 0; i < 1000 && !watch_eof; i++)
		usleep(10000);
	CHECK(watch_eof, "the handler saw the guest's side go away");
	return 0;
}

/* never reads; closed when the test is over */
static int held[64];
static atomic_int n_held;

static int hold_accept(void *opaque, int fd)
{
	(void)opaque;
	int i = n_held++;
	if (i >= 64) {
		close(fd);
		return -1;
	}
	held[i] = fd;
	return 0;
}

/* A sandbox whose "QEMU" is the hostile agent in (mode): the exec must end
 * with the violation naming (what), within 20 s. */
static int hostile(const char *agent, const char *mode, const char *what)
{
	setenv("VOIDBOX_QEMU", agent, 1);
	setenv("HOSTILE_MODE", mode, 1);
	struct vb_forward fw = { .guest_port = 7001, .accept = hold_accept };
	struct vb_sandbox_config cfg = { .accel = VB_ACCEL_TCG, .forwards = &fw, .n_forwards = 1 };
	vb_error err = { 0 };
	int64_t t0 = vb_now_ms();
	vb_sandbox *sb = vb_sandbox_start(&cfg, &err);
	unsetenv("VOIDBOX_QEMU");
	unsetenv("HOSTILE_MODE");
	CHECK(sb, "%s", err.msg);
	const char *argv[] = { "true", NULL };
	struct vb_exec_params p = { .argv = argv };
	vb_exec *ex = vb_exec_start(sb, &p, &err);
	int rc = ex ? 0 : -1;
	while (rc == 0 && vb_now_ms() - t0 < 30000) {
		struct vb_exec_event ev;
		int n = vb_exec_next(ex, &ev, 1000, &err);
		if (n < 0)
			rc = -1;
		else if (n > 0 && ev.kind == VB_EXEC_EXIT)
			break;
	}
	int64_t took = vb_now_ms() - t0;
	vb_exec_free(ex);
	vb_sandbox_free(sb);
	while (n_held > 0)
		close(held[--n_held]);
	CHECK(rc < 0, "the exec went on");
	CHECK(strstr(err.msg, "the guest broke the protocol (") && strstr(err.msg, what),
	      "'%s' lacks '%s'", err.msg, what);
	CHECK(took <= 20000, "took %lld ms", (long long)took);
	return 0;
}

/* The host's peak RSS through the attacks (ASAN's own overhead aside). */
static int rss_bounded(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return 0;
#else
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	fprintf(stderr, "  peak RSS %ld kB\n", ru.ru_maxrss);
	CHECK(ru.ru_maxrss < 64 * 1024, "peak RSS %ld kB", ru.ru_maxrss);
	return 0;
#endif
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	/* the stand-in sits next to this binary (make all builds both) */
	char agent[4096];
	snprintf(agent, sizeof(agent), "%s", argc > 0 ? argv[0] : "");
	char *slash = strrchr(agent, '/');
	snprintf(slash ? slash + 1 : agent, sizeof(agent) - (size_t)(slash ? slash + 1 - agent : 0),
		 "hostile_agent");
	report("hostile: too many streams",
	       hostile(agent, "stream-too-many", "STREAM_OPEN for stream 17 beyond 16 open streams"));
	report("hostile: stream data beyond its window",
	       hostile(agent, "stream-over-window",
		       "STREAM_DATA beyond its flow-control window for stream 1"));
	report("hostile: data for a stream never opened",
	       hostile(agent, "stream-unknown-id",
		       "STREAM_DATA frame for stream 5, which the guest never opened"));
	report("hostile: the host's memory stays bounded", rss_bounded());

	struct vb_forward fw[] = {
		{ .guest_port = PORT_ECHO, .accept = echo_accept },
		{ .guest_port = PORT_SLOW, .accept = slow_accept },
		{ .guest_port = PORT_CLOSER, .accept = closer_accept },
		{ .guest_port = PORT_WATCH, .accept = watch_accept },
	};
	vb_error err = { 0 };
	struct vb_sandbox_config cfg = { .memory_mib = 512, .forwards = fw, .n_forwards = 4 };
	vb_sandbox *sb = vb_sandbox_start(&cfg, &err);
	if (!sb) {
		fprintf(stderr, "  cannot boot: %s\n", err.msg);
		report("forwards: boot", -1);
		return 1;
	}
	report("forwards: bytes round-trip", test_round_trip(sb));
	report("forwards: 8 concurrent connections", test_concurrent(sb));
	report("forwards: 32 MiB both ways, same sha256", test_large(sb));
	report("forwards: a slow handler stalls neither execs nor files", test_slow_handler(sb));
	report("forwards: the host's close ends the guest's connection", test_host_closes(sb));
	report("forwards: the guest's close ends the host's connection", test_guest_closes(sb));
	vb_sandbox_free(sb);
	return failures ? 1 : 0;
}
