/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A driver for tests/integration/test_snapshot_net.sh (not an itest_*:
 * tests/run.sh runs those bare, and this needs a snapshot store): loopback
 * forwards on a VM restored from a snapshot, which no CLI verb asks for
 * (agent stages do, for their gateway).
 *
 *   snapfwd_driver REF|--warm PORT[,PORT...] SCRIPT
 *
 * Starts a VM with a forward on each guest PORT, from the snapshot REF
 * (vb_sandbox_restore) or, with --warm, as `voidbox exec` does
 * (vb_sandbox_start_warm).  Each forward's handler reads the connection to
 * its end and answers "PORT:" and what it read.  Prints "restored ID" or
 * "cold" on stdout, then runs SCRIPT with sh -c as root and passes on its
 * stdout, stderr and exit code.  Errors go to stderr as "error: MESSAGE",
 * exit 2 for a usage error, 1 otherwise.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "voidbox/voidbox.h"

#define MAX_PORTS 4

static int fail(const vb_error *err)
{
	fprintf(stderr, "error: %s\n", err->msg);
	return err->kind == VB_E_USAGE ? 2 : 1;
}

struct conn {
	int fd;
	unsigned port;
};

static void *answer(void *arg)
{
	struct conn *c = arg;
	char in[4096], out[4200];
	size_t n = 0;
	ssize_t r;
	while (n < sizeof(in) && (r = read(c->fd, in + n, sizeof(in) - n)) > 0)
		n += (size_t)r;
	int len = snprintf(out, sizeof(out), "%u:%.*s", c->port, (int)n, in);
	if (len > 0 && write(c->fd, out, (size_t)len) < 0)
		perror("write");
	close(c->fd);
	free(c);
	return NULL;
}

static int on_accept(void *opaque, int fd)
{
	struct conn *c = malloc(sizeof(*c));
	pthread_t t;
	if (!c) {
		close(fd);
		return -1;
	}
	*c = (struct conn){ .fd = fd, .port = (unsigned)(uintptr_t)opaque };
	if (pthread_create(&t, NULL, answer, c) != 0) {
		close(fd);
		free(c);
		return -1;
	}
	pthread_detach(t);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: snapfwd_driver REF|--warm PORT[,PORT...] SCRIPT\n");
		return 2;
	}
	struct vb_forward fw[MAX_PORTS];
	size_t n = 0;
	for (char *p = strtok(argv[2], ","); p; p = strtok(NULL, ",")) {
		if (n == MAX_PORTS) {
			fprintf(stderr, "error: at most %d ports\n", MAX_PORTS);
			return 2;
		}
		unsigned long port = strtoul(p, NULL, 10);
		fw[n++] = (struct vb_forward){ .guest_port = (unsigned)port,
					       .accept = on_accept,
					       .opaque = (void *)(uintptr_t)port };
	}
	struct vb_sandbox_config cfg = { .forwards = fw, .n_forwards = n };
	vb_error err = { 0 };
	struct vb_warm warm = { 0 };
	vb_sandbox *sb = !strcmp(argv[1], "--warm") ? vb_sandbox_start_warm(&cfg, &warm, &err)
						     : vb_sandbox_restore(&cfg, argv[1], &err);
	if (!sb)
		return fail(&err);
	if (warm.notice[0])
		fprintf(stderr, "notice: %s\n", warm.notice);
	const char *id = vb_sandbox_snapshot_id(sb);
	printf(id ? "restored %s\n" : "cold\n", id);
	fflush(stdout);
	const char *args[] = { "sh", "-c", argv[3], NULL };
	struct vb_exec_params p = { .argv = args, .timeout_ms = 120000, .user = "root" };
	struct vb_exec_result res;
	int rc = vb_exec_run(sb, &p, NULL, 0, 1 << 20, &res, &err);
	vb_sandbox_free(sb);
	if (rc < 0)
		return fail(&err);
	if (res.out_len)
		fwrite(res.out, 1, res.out_len, stdout);
	if (res.err_len)
		fwrite(res.errout, 1, res.err_len, stderr);
	int code = res.exit_code;
	vb_exec_result_free(&res);
	return code;
}
