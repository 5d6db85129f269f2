/* SPDX-License-Identifier: Apache-2.0 */
/*
 * voidbox exec: run one command in a fresh micro-VM and behave like running
 * it locally — live stdout/stderr, stdin passed through, its exit code.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/util.h"
#include "voidbox/sandbox.h"

#define MAX_LIST 256
#define SIGNAL_GRACE_MS 3000

static const char usage_text[] =
	"usage: voidbox exec [OPTIONS] -- PROG [ARGS...]\n"
	"\n"
	"Boot a fresh micro-VM, run PROG in it, and tear the VM down. stdout and\n"
	"stderr stream live, stdin is passed through, and the exit code is PROG's.\n"
	"\n"
	"options:\n"
	"  --memory MiB          guest memory (default 512)\n"
	"  --cpus N              vCPUs (default 1)\n"
	"  --env K=V             set a variable (repeatable; K alone copies the host's)\n"
	"  --workdir DIR         working directory in the guest (default /workspace)\n"
	"  --timeout SECS        kill PROG's process group after SECS (exit 124)\n"
	"  --user sandbox|root   run as uid 1000 'sandbox' (default) or root\n"
	"  --mount HOST:GUEST[:ro|rw]  share a host directory (repeatable; default ro)\n"
	"  --allow PROG          allow only these programs (repeatable; default all)\n"
	"  --rlimit NAME=N       nofile, nproc or fsize (bytes) for every process\n"
	"  --backend auto|qemu   VM backend (default auto)\n"
	VB_CLI_ACCEL_HELP
	"  -h, --help            this help\n"
	"\n"
	"exit codes: PROG's own; 124 timeout; 125 VoidBox failed; 126 not executable\n"
	"or not allowed; 127 not found; 128+N killed by signal N.\n";

struct opts {
	struct vb_sandbox_config cfg;
	struct vb_exec_params ex;
	struct vb_mount mounts[32];
	const char *env[MAX_LIST + 1];
	const char *allow[MAX_LIST];
	size_t n_env, n_allow;
	struct vb_cli_arena arena;
};

static int parse_rlimit(struct opts *o, const char *arg, vb_error *err)
{
	const char *eq = strchr(arg, '=');
	unsigned long v;
	if (!eq || vb_cli_parse_uint(eq + 1, ULONG_MAX, &v) < 0 || v == 0)
		return vb_error_set(err, VB_E_USAGE, "--rlimit %s: expected NAME=N (N > 0)", arg);
	size_t n = (size_t)(eq - arg);
	if (n == 6 && !strncmp(arg, "nofile", n))
		o->cfg.rlimit_nofile = v;
	else if (n == 5 && !strncmp(arg, "nproc", n))
		o->cfg.rlimit_nproc = v;
	else if (n == 5 && !strncmp(arg, "fsize", n))
		o->cfg.rlimit_fsize = v;
	else
		return vb_error_set(err, VB_E_USAGE, "--rlimit %s: NAME is nofile, nproc or fsize",
				    arg);
	return 0;
}

/* Returns the index of PROG in argv, or -1 with (err) set; 0 for --help. */
static int parse(int argc, char **argv, struct opts *o, vb_error *err)
{
	static const struct option longopts[] = {
		{ "memory", required_argument, NULL, 'm' }, { "cpus", required_argument, NULL, 'c' },
		{ "env", required_argument, NULL, 'e' },    { "workdir", required_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 't' }, { "user", required_argument, NULL, 'u' },
		{ "mount", required_argument, NULL, 'v' },  { "allow", required_argument, NULL, 'a' },
		{ "rlimit", required_argument, NULL, 'r' }, { "backend", required_argument, NULL, 'b' },
		{ "accel", required_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
	};
	unsigned long v;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+he:w:", longopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (vb_cli_parse_uint(optarg, 1u << 20, &v) < 0 || v < 64)
				return vb_error_set(err, VB_E_USAGE, "--memory: expected MiB >= 64");
			o->cfg.memory_mib = (unsigned)v;
			break;
		case 'c':
			if (vb_cli_parse_uint(optarg, 64, &v) < 0 || v == 0)
				return vb_error_set(err, VB_E_USAGE, "--cpus: expected 1..64");
			o->cfg.vcpus = (unsigned)v;
			break;
		case 'e':
			if (vb_cli_add_env(&o->arena, o->env, &o->n_env, MAX_LIST, optarg, err) < 0)
				return -1;
			break;
		case 'w':
			if (optarg[0] != '/')
				return vb_error_set(err, VB_E_USAGE, "--workdir: expected an absolute path");
			o->ex.cwd = optarg;
			break;
		case 't':
			if (vb_cli_parse_uint(optarg, 86400 * 365, &v) < 0 || v == 0)
				return vb_error_set(err, VB_E_USAGE, "--timeout: expected seconds > 0");
			o->ex.timeout_ms = (unsigned)(v * 1000 > UINT_MAX ? UINT_MAX : v * 1000);
			break;
		case 'u':
			if (!strcmp(optarg, "root"))
				o->ex.as_root = 1;
			else if (strcmp(optarg, "sandbox"))
				return vb_error_set(err, VB_E_USAGE, "--user: expected sandbox or root");
			break;
		case 'v':
			if (vb_cli_add_mount(&o->arena, o->mounts, &o->cfg.n_mounts,
					     sizeof(o->mounts) / sizeof(o->mounts[0]), optarg, err) < 0)
				return -1;
			break;
		case 'a':
			if (o->n_allow >= MAX_LIST || !optarg[0] || strchr(optarg, '/'))
				return vb_error_set(err, VB_E_USAGE,
						    "--allow: expected a program name without '/'");
			o->allow[o->n_allow++] = optarg;
			break;
		case 'r':
			if (parse_rlimit(o, optarg, err) < 0)
				return -1;
			break;
		case 'b':
			if (!strcmp(optarg, "qemu"))
				o->cfg.backend = VB_BACKEND_QEMU;
			else if (strcmp(optarg, "auto"))
				return vb_error_set(err, VB_E_USAGE, "--backend: expected auto or qemu");
			break;
		case 'A':
			if (vb_cli_parse_accel(optarg, &o->cfg.accel, err) < 0)
				return -1;
			break;
		case 'h':
			return 0;
		default:
			return vb_error_set(err, VB_E_USAGE, "unknown or incomplete option '%s' (see --help)",
					    argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return vb_error_set(err, VB_E_USAGE, "no program given (usage: voidbox exec [OPTIONS] -- PROG [ARGS...])");
	o->env[o->n_env] = NULL;
	o->ex.env = o->env;
	if (o->n_allow) {
		o->cfg.allow = o->allow;
		o->cfg.n_allow = o->n_allow;
	}
	o->cfg.mounts = o->mounts;
	return optind;
}

/* Copy an event's bytes to our stdout/stderr.  A closed pipe on our side
 * is not the guest's fault: keep draining so the program can finish. */
static void emit(int fd, const uint8_t *p, size_t n, int *broken)
{
	if (*broken)
		return;
	if (vb_write_full(fd, p, n) < 0 && errno == EPIPE)
		*broken = 1;
}

struct loop {
	vb_exec *ex;
	int sfd;            /* signalfd for INT, TERM, HUP, QUIT */
	int stdin_open;
	int out_broken, err_broken;
	int first_sig;      /* forwarded signal, 0 if none */
	int64_t kill_at;    /* give up on the guest at this time */
	int64_t host_deadline; /* host-side guard behind the guest's own timeout */
};

static int pump_stdin(struct loop *l, vb_error *err)
{
	size_t room = vb_exec_stdin_room(l->ex);
	if (room == 0)
		return 0;
	uint8_t buf[65536]; /* one stream chunk */
	ssize_t n = read(0, buf, room < sizeof(buf) ? room : sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		l->stdin_open = 0;
		return vb_exec_close_stdin(l->ex, err);
	}
	/* room was reserved above and only we send: this never blocks */
	for (ssize_t off = 0; off < n;) {
		ssize_t w = vb_exec_write(l->ex, buf + off, (size_t)(n - off), -1, err);
		if (w < 0)
			return -1;
		off += w;
	}
	return 0;
}

/* Returns the exit code once the program is done. */
static int run_loop(struct loop *l, vb_error *err)
{
	for (;;) {
		struct vb_exec_event ev;
		int r;
		while ((r = vb_exec_next(l->ex, &ev, 0, err)) > 0) {
			if (ev.kind == VB_EXEC_STDOUT)
				emit(1, ev.data, ev.len, &l->out_broken);
			else if (ev.kind == VB_EXEC_STDERR)
				emit(2, ev.data, ev.len, &l->err_broken);
			else if (ev.timed_out)
				return 124;
			else
				return ev.exit_code;
		}
		if (r < 0)
			return -1;

		int64_t now = vb_now_ms();
		if (l->kill_at && now >= l->kill_at)
			return 128 + l->first_sig;
		if (l->host_deadline && now >= l->host_deadline)
			return vb_error_set(err, VB_E_TIMEOUT, "the guest did not stop the program at its timeout");
		int wait_ms = -1;
		if (l->kill_at)
			wait_ms = (int)(l->kill_at - now);
		if (l->host_deadline && (wait_ms < 0 || l->host_deadline - now < wait_ms))
			wait_ms = (int)(l->host_deadline - now);

		struct pollfd p[3] = {
			{ .fd = vb_exec_fd(l->ex), .events = POLLIN },
			{ .fd = l->sfd, .events = POLLIN },
			{ .fd = l->stdin_open && vb_exec_stdin_room(l->ex) ? 0 : -1, .events = POLLIN },
		};
		if (poll(p, 3, wait_ms) < 0 && errno != EINTR)
			return vb_error_errno(err, errno, "poll");
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(l->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				if (l->first_sig) /* second signal: stop waiting */
					return 128 + (int)si.ssi_signo;
				l->first_sig = (int)si.ssi_signo;
				l->kill_at = vb_now_ms() + SIGNAL_GRACE_MS;
				vb_exec_signal(l->ex, (int)si.ssi_signo, err);
			}
		}
		if (p[2].revents & (POLLIN | POLLHUP | POLLERR))
			if (pump_stdin(l, err) < 0)
				return -1;
	}
}

int vb_cmd_exec(int argc, char **argv)
{
	struct opts o;
	memset(&o, 0, sizeof(o));
	vb_error err = { 0 };
	int first = parse(argc, argv, &o, &err);
	int code;
	if (first == 0) {
		fputs(usage_text, stdout);
		code = 0;
		goto out;
	}
	if (first < 0) {
		code = vb_cli_fail(&err);
		goto out;
	}
	o.ex.argv = (const char *const *)(argv + first);

	/* Signals arrive on a descriptor; every thread (and QEMU, which resets
	 * its mask) inherits the block. */
	struct loop l = { .sfd = vb_cli_stop_signals(NULL, &err) };
	if (l.sfd < 0) {
		code = vb_cli_fail(&err);
		goto out;
	}
	o.cfg.cancel_fd = l.sfd;
	o.ex.want_stdin = 1;
	l.stdin_open = 1;

	vb_sandbox *sb = vb_sandbox_start(&o.cfg, &err);
	if (sb)
		vb_cli_accel_notice(vb_sandbox_accel_info(sb), stderr);
	if (!sb) {
		if (err.kind == VB_E_CANCELLED) {
			struct signalfd_siginfo si = { .ssi_signo = SIGINT };
			ssize_t r = read(l.sfd, &si, sizeof(si));
			(void)r;
			code = 128 + (int)si.ssi_signo;
		} else {
			code = vb_cli_fail(&err);
		}
		close(l.sfd);
		goto out;
	}
	l.ex = vb_exec_start(sb, &o.ex, &err);
	if (!l.ex) {
		code = vb_cli_fail(&err);
	} else {
		if (o.ex.timeout_ms)
			l.host_deadline = vb_now_ms() + o.ex.timeout_ms + 15000;
		code = run_loop(&l, &err);
		if (code < 0)
			code = vb_cli_fail(&err);
		vb_exec_free(l.ex);
	}
	vb_sandbox_free(sb);
	close(l.sfd);
out:
	vb_cli_arena_free(&o.arena);
	return code;
}
