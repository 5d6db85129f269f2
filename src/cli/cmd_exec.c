/* SPDX-License-Identifier: Apache-2.0 */
/*
 * voidbox exec: run one command in a fresh micro-VM and behave like running
 * it locally — live stdout/stderr, stdin passed through, its exit code —
 * or, with -t, on a guest terminal (the session of cli/pty.c).
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

#include "agentbin/agentbin.h"
#include "cli/cli.h"
#include "cli/pty.h"
#include "oci/oci.h"
#include "run/image.h"
#include "util/util.h"
#include "voidbox/sandbox.h"

#define MAX_LIST 256
#define SIGNAL_GRACE_MS 3000
#define HOST_GRACE_MS 15000 /* behind the guest's own timeout */

static const char usage_text[] =
	"usage: voidbox exec [OPTIONS] [--] PROG [ARGS...]\n"
	"       voidbox exec --image REF [OPTIONS] [-- PROG [ARGS...]]\n"
	"\n"
	"Boot a fresh micro-VM, run PROG in it, and tear the VM down. stdout and\n"
	"stderr stream live, stdin is passed through, and the exit code is PROG's.\n"
	"When the reader of stdout or stderr goes away (exec -- yes | head -1), PROG\n"
	"gets SIGPIPE, as a local program would (exit 141; SIGHUP, 129, with -t).\n"
	"Options end at PROG (or at \"--\").\n"
	"\n"
	"options:\n"
	"  -e, --env K=V         set a variable (repeatable; K alone copies the host's)\n"
	"  -w, --workdir DIR     working directory in the guest (default /workspace)\n"
	"  -v, --mount HOST:GUEST[:ro|rw]  share a host directory (repeatable; default\n"
	"                        ro; a missing rw HOST directory is created, a ro one\n"
	"                        must exist)\n"
	"  -m, --memory SIZE     guest memory: a plain number is MiB, or 512M, 1G\n"
	"                        (default 1024 MiB, as a spec's sandbox.memory_mb)\n"
	"  --cpus N              vCPUs (default 1)\n"
	"  -u, --user sandbox|root  run as uid 1000 'sandbox' (default) or root\n"
	"                        (1000 and 0 work too); with --image, also a user of\n"
	"                        the image (NAME, UID or UID:GID), and the default is\n"
	"                        the image's User if it names one\n"
	"  --image REF           run on an OCI image as the VM's root filesystem\n"
	"                        (python:3.12-slim, ghcr.io/org/img:tag): pulled when\n"
	"                        not in the store; its Env, WorkingDir and User are\n"
	"                        the defaults; writes land in memory and vanish with\n"
	"                        the VM. Without PROG, the image's Entrypoint + Cmd\n"
	"  --pull missing|always|never  with --image: pull only when not in the\n"
	"                        store (default), resolve the tag again, or never\n"
	"                        touch the network\n"
	"  -t, --tty             run PROG on a terminal in the guest, as `voidbox\n"
	"                        shell` does: a terminal on stdin is put in raw mode\n"
	"                        (^C goes to PROG), its size follows resizes, and\n"
	"                        stdout carries the terminal's output (stderr too)\n"
	"  -i, --interactive     keep stdin attached (always the case; for -it habits)\n"
	"  --timeout SECS        kill PROG's process group after SECS (exit 124)\n"
	"  --allow NAME          refuse to start PROG unless its basename is a NAME\n"
	"                        (repeatable; default: anything). Only PROG itself is\n"
	"                        checked, not what it runs: with --allow sh, PROG sh\n"
	"                        may run any program of the guest\n"
	"  --rlimit NAME=N       a limit for every process of PROG: nofile=N,\n"
	"                        nproc=N, fsize_mb=MiB (the spec's limits names), or\n"
	"                        fsize=SIZE (bytes, or with a unit: 10M)\n"
	"  --agent claude-code|codex  attach that agent's binary read-only (fetched\n"
	"                        first if not cached: `voidbox agent pull`) with what\n"
	"                        it needs (musl loader, /bin/bash); its program\n"
	"                        (claude, codex) is on PATH (repeatable)\n"
	VB_CLI_NET_HELP
	"  --snapshot ID|NAME    start from a stored snapshot (`voidbox snapshot\n"
	"                        list`) instead of booting: checked first, refused\n"
	"                        if damaged or taken with another kernel, initramfs,\n"
	"                        VM configuration or image (docs/snapshots.md)\n"
	"  --cold                boot the VM instead of restoring the warm snapshot\n"
	"                        of the default VM, or of --image's (the default when\n"
	"                        there is one and nothing asked for needs a boot;\n"
	"                        docs/snapshots.md)\n"
	"  --backend auto|qemu   VM backend (default auto)\n"
	VB_CLI_ACCEL_HELP
	"  -h, --help            this help\n"
	"\n"
	"exit codes: PROG's own; 124 timeout; 125 VoidBox failed (an image that\n"
	"cannot be pulled too); 126 not executable\n"
	"or not allowed; 127 not found; 128+N killed by signal N; 2 bad usage.\n";

struct opts {
	struct vb_sandbox_config cfg;
	struct vb_exec_params ex;
	struct vb_mount mounts[32 + VB_AGENTBIN_N + 1]; /* + the agents' */
	const char *env[MAX_LIST + 3]; /* + PATH with --agent, + TERM with -t, + NULL */
	const char *allow[MAX_LIST];
	size_t n_env, n_allow;
	int tty;
	unsigned agents; /* 1u << enum vb_agentbin_kind */
	struct vb_agentbin_attach attach[VB_AGENTBIN_N];
	char *agent_path;
	struct vb_cli_arena arena;
	struct vb_cli_net net;
	const char *image;    /* --image */
	int pull, pull_set;   /* --pull (an enum vb_oci_pull_policy) */
	const char *user;     /* -u as given, resolved once --image is known */
	struct vb_run_image im;
	const char **image_argv; /* Entrypoint + Cmd when no PROG was given */
	const char *snapshot; /* --snapshot */
	int cold;             /* --cold: no warm snapshot */
};

/* --rlimit NAME=N, with the spec's names (limits.nofile, nproc, fsize_mb)
 * and fsize in bytes (or with a unit). */
static int parse_rlimit(struct opts *o, const char *arg, vb_error *err)
{
	const char *eq = strchr(arg, '=');
	size_t n = eq ? (size_t)(eq - arg) : 0;
	unsigned long v;
	uint64_t bytes;
	int ok;
	if (n == 6 && !strncmp(arg, "nofile", n)) {
		ok = vb_cli_parse_uint(eq + 1, ULONG_MAX, &v) == 0 && v > 0;
		o->cfg.rlimit_nofile = v;
	} else if (n == 5 && !strncmp(arg, "nproc", n)) {
		ok = vb_cli_parse_uint(eq + 1, ULONG_MAX, &v) == 0 && v > 0;
		o->cfg.rlimit_nproc = v;
	} else if (n == 8 && !strncmp(arg, "fsize_mb", n)) {
		ok = vb_cli_parse_size(eq + 1, 1ull << 20, &bytes) == 0 && bytes > 0;
		o->cfg.rlimit_fsize = bytes;
	} else if (n == 5 && !strncmp(arg, "fsize", n)) {
		ok = vb_cli_parse_size(eq + 1, 1, &bytes) == 0 && bytes > 0;
		o->cfg.rlimit_fsize = bytes;
	} else {
		return vb_error_set(err, VB_E_USAGE,
				    "exec: --rlimit %s: expected nofile=N, nproc=N, fsize_mb=MiB or "
				    "fsize=SIZE",
				    arg);
	}
	if (!ok)
		return vb_error_set(err, VB_E_USAGE, "exec: --rlimit %s: expected a number > 0", arg);
	return 0;
}

/* --agent: each agent's tree and the support directory as read-only mounts,
 * PATH with their bin/ first (an --env PATH=... given by the user comes
 * later in the list, so it wins). */
static int attach_agents(struct opts *o, vb_error *err)
{
	if (!o->agents)
		return 0;
	size_t len = strlen("PATH=" VB_AGENTBIN_GUEST_PATH) + 1;
	const char *support = NULL;
	for (int k = 0; k < VB_AGENTBIN_N; k++) {
		struct vb_agentbin_attach *a = &o->attach[k];
		if (!(o->agents & (1u << k)))
			continue;
		if (vb_agentbin_attach((enum vb_agentbin_kind)k, stderr, a, err) < 0)
			return -1;
		o->mounts[o->cfg.n_mounts++] =
			(struct vb_mount){ .host = a->tree_host, .guest = a->tree_guest };
		support = a->support_host;
		len += strlen(a->bin_guest) + 1;
	}
	o->mounts[o->cfg.n_mounts++] =
		(struct vb_mount){ .host = support, .guest = VB_AGENTBIN_GUEST_SUPPORT };
	if (!(o->agent_path = malloc(len)))
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	strcpy(o->agent_path, "PATH=");
	for (int k = 0; k < VB_AGENTBIN_N; k++)
		if (o->agents & (1u << k))
			strcat(strcat(o->agent_path, o->attach[k].bin_guest), ":");
	strcat(o->agent_path, VB_AGENTBIN_GUEST_PATH);
	memmove(o->env + 1, o->env, (o->n_env + 1) * sizeof(o->env[0]));
	o->env[0] = o->agent_path;
	o->n_env++;
	return 0;
}

/* -u: sandbox or root everywhere; with --image also a user of the image
 * (the guest looks it up in the image's /etc/passwd). */
static int set_user(struct opts *o, const char *u, vb_error *err)
{
	if (!strcmp(u, "root") || !strcmp(u, "0")) {
		o->ex.as_root = 1;
		return 0;
	}
	if (!strcmp(u, "sandbox") || !strcmp(u, "1000")) {
		/* named: with an image, its User would be the default */
		o->ex.user = "sandbox";
		return 0;
	}
	int ok = o->image && u[0] && strlen(u) <= 64;
	for (const char *c = u; ok && *c; c++)
		ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		     (*c >= '0' && *c <= '9') || strchr("_-.:", *c);
	if (!ok)
		return vb_error_set(err, VB_E_USAGE,
				    o->image ? "--user: expected sandbox, root, or a NAME, UID or "
					       "UID:GID of the image"
					 : "--user: expected sandbox (1000) or root (0)");
	o->ex.user = u;
	return 0;
}

/* --image: the root disk and defaults into the config; without PROG the
 * image's Entrypoint + Cmd, as `docker run IMAGE` does. */
static int prepare_image(struct opts *o, vb_error *err)
{
	if (vb_run_image_prepare(o->image, o->pull, stderr, &o->im, &o->cfg, err) < 0)
		return -1;
	if (o->ex.argv)
		return 0;
	const struct vb_oci_root *r = &o->im.root;
	size_t n = r->n_entrypoint + r->n_cmd;
	if (!n)
		return vb_error_set(err, VB_E_USAGE,
				    "exec: no program given, and %s has no Entrypoint or Cmd",
				    r->reference);
	if (!(o->image_argv = calloc(n + 1, sizeof(char *))))
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	for (size_t i = 0; i < r->n_entrypoint; i++)
		o->image_argv[i] = r->entrypoint[i];
	for (size_t i = 0; i < r->n_cmd; i++)
		o->image_argv[r->n_entrypoint + i] = r->cmd[i];
	o->ex.argv = o->image_argv;
	return 0;
}

/* Returns the index of PROG in argv, or -1 with (err) set; 0 for --help. */
static int parse(int argc, char **argv, struct opts *o, vb_error *err)
{
	enum { OPT_CPUS = 256, OPT_TIMEOUT, OPT_ALLOW, OPT_RLIMIT, OPT_BACKEND, OPT_ACCEL,
	       OPT_AGENT, OPT_IMAGE, OPT_PULL, OPT_SNAPSHOT, OPT_COLD };
	static const struct option longopts[] = {
		{ "memory", required_argument, NULL, 'm' },
		{ "cpus", required_argument, NULL, OPT_CPUS },
		{ "env", required_argument, NULL, 'e' },
		{ "workdir", required_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "user", required_argument, NULL, 'u' },
		{ "mount", required_argument, NULL, 'v' },
		{ "allow", required_argument, NULL, OPT_ALLOW },
		{ "rlimit", required_argument, NULL, OPT_RLIMIT },
		{ "backend", required_argument, NULL, OPT_BACKEND },
		{ "accel", required_argument, NULL, OPT_ACCEL },
		{ "agent", required_argument, NULL, OPT_AGENT },
		{ "image", required_argument, NULL, OPT_IMAGE },
		{ "pull", required_argument, NULL, OPT_PULL },
		{ "snapshot", required_argument, NULL, OPT_SNAPSHOT },
		{ "cold", no_argument, NULL, OPT_COLD },
		{ "tty", no_argument, NULL, 't' },
		{ "interactive", no_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		VB_CLI_NET_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	unsigned long v;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:he:w:v:m:u:ti", longopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (vb_cli_parse_memory("exec", optarg, &o->cfg.memory_mib, err) < 0)
				return -1;
			break;
		case OPT_CPUS:
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
		case OPT_TIMEOUT:
			if (vb_cli_parse_uint(optarg, 86400 * 365, &v) < 0 || v == 0)
				return vb_error_set(err, VB_E_USAGE, "--timeout: expected seconds > 0");
			o->ex.timeout_ms = (unsigned)(v * 1000 > UINT_MAX ? UINT_MAX : v * 1000);
			break;
		case 'u':
			o->user = optarg;
			break;
		case OPT_IMAGE:
			if (!optarg[0])
				return vb_error_set(err, VB_E_USAGE, "--image: expected a reference");
			o->image = optarg;
			break;
		case OPT_PULL:
			if (vb_run_image_pull_parse(optarg, &o->pull) < 0)
				return vb_error_set(err, VB_E_USAGE,
						    "--pull: expected missing, always or never");
			o->pull_set = 1;
			break;
		case 't':
			o->tty = 1;
			break;
		case 'i': /* stdin is always passed through */
			break;
		case 'v':
			if (vb_cli_add_mount(&o->arena, o->mounts, &o->cfg.n_mounts,
					     32, optarg, err) < 0)
				return -1;
			break;
		case OPT_ALLOW:
			if (o->n_allow >= MAX_LIST || !optarg[0] || strchr(optarg, '/'))
				return vb_error_set(err, VB_E_USAGE,
						    "--allow: expected a program name without '/'");
			o->allow[o->n_allow++] = optarg;
			break;
		case OPT_RLIMIT:
			if (parse_rlimit(o, optarg, err) < 0)
				return -1;
			break;
		case OPT_BACKEND:
			if (!strcmp(optarg, "qemu"))
				o->cfg.backend = VB_BACKEND_QEMU;
			else if (strcmp(optarg, "auto"))
				return vb_error_set(err, VB_E_USAGE, "--backend: expected auto or qemu");
			break;
		case OPT_ACCEL:
			if (vb_cli_parse_accel(optarg, &o->cfg.accel, err) < 0)
				return -1;
			break;
		case OPT_SNAPSHOT:
			o->snapshot = optarg;
			break;
		case OPT_COLD:
			o->cold = 1;
			break;
		case OPT_AGENT: {
			enum vb_agentbin_kind k;
			if (vb_agentbin_parse(optarg, &k) < 0)
				return vb_error_set(err, VB_E_USAGE,
						    "--agent: expected claude-code or codex");
			o->agents |= 1u << k;
			break;
		}
		case VB_CLI_OPT_NETWORK:
		case VB_CLI_OPT_ALLOW_HOST_PORT:
		case VB_CLI_OPT_PUBLISH:
		case VB_CLI_OPT_NET_LEARN:
		case VB_CLI_OPT_ALLOW_DOMAIN:
			if (vb_cli_net_option(&o->net, c, optarg, err) < 0)
				return -1;
			break;
		case 'h':
			return 0;
		default:
			return vb_cli_getopt_fail("exec", c, argv, longopts, err);
		}
	}
	if (o->user && set_user(o, o->user, err) < 0)
		return -1;
	if (o->pull_set && !o->image)
		return vb_error_set(err, VB_E_USAGE, "--pull needs --image");
	if (o->image) {
		struct vb_oci_ref ref;
		if (vb_oci_ref_parse(o->image, &ref, err) < 0) {
			vb_error_prefix(err, "--image");
			return -1;
		}
		vb_oci_ref_clear(&ref);
	}
	if (optind >= argc && !o->image)
		return vb_error_set(err, VB_E_USAGE, "exec: no program given (usage: voidbox exec [OPTIONS] [--] PROG [ARGS...])");
	o->env[o->n_env] = NULL;
	o->ex.env = o->env;
	if (o->n_allow) {
		o->cfg.allow = o->allow;
		o->cfg.n_allow = o->n_allow;
	}
	o->cfg.mounts = o->mounts;
	vb_cli_net_apply(&o->net, &o->cfg);
	return optind;
}

struct loop {
	vb_exec *ex;
	int sfd;            /* signalfd for INT, TERM, HUP, QUIT */
	int stdin_open;
	int out_broken, err_broken;
	int first_sig;      /* forwarded signal, 0 if none */
	int64_t kill_at;    /* give up on the guest at this time */
	int64_t host_deadline; /* host-side guard behind the guest's own timeout */
	/* Output our reader has not taken yet.  While there is some, no more
	 * events are taken from the guest (it waits for credit), and the loop
	 * waits for the reader and for signals alike: a slow reader never
	 * keeps ^C from working. */
	uint8_t *pend;
	size_t pend_len, pend_cap;
	int pend_fd;
};

/* Our reader went away (`voidbox exec -- yes | head -1`): the program
 * gets SIGPIPE, as a local one does on its next write to a closed pipe, and
 * what it writes to that stream from then on is dropped, so the pipeline
 * ends as a local one would, with the program's 141 as our status.  Any
 * other write error (ENOSPC on /dev/full) cannot be passed to the guest
 * program either; it is told the same way, as ssh's remote program would
 * be, and the error is said on stderr. */
static void broken(struct loop *l, int fd, int e)
{
	*(fd == 1 ? &l->out_broken : &l->err_broken) = 1;
	if (e != EPIPE && fd == 1)
		vb_cli_warn("exec: cannot write the program's stdout (%s): it is sent SIGPIPE", strerror(e));
	vb_error ignore = { 0 };
	vb_exec_signal(l->ex, SIGPIPE, &ignore); /* a dead VM shows up in vb_exec_next() */
}

/* Write what (fd) takes without blocking: at most PIPE_BUF at a time, and
 * only while poll() says it is writable.  Returns the bytes written. */
static size_t write_ready(struct loop *l, int fd, const uint8_t *p, size_t n)
{
	size_t done = 0;
	while (done < n) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		if (poll(&pfd, 1, 0) <= 0 || !(pfd.revents & (POLLOUT | POLLERR | POLLHUP)))
			break;
		size_t k = n - done < PIPE_BUF ? n - done : PIPE_BUF;
		ssize_t w = write(fd, p + done, k);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w <= 0) {
			broken(l, fd, w < 0 ? errno : EIO);
			return n;
		}
		done += (size_t)w;
	}
	return done;
}

/* Copy an event's bytes to our stdout (fd 1) or stderr (fd 2); what the
 * reader cannot take now is kept in l->pend.  Returns 0, or -1 when out
 * of memory. */
static int emit(struct loop *l, int fd, const uint8_t *p, size_t n)
{
	if (*(fd == 1 ? &l->out_broken : &l->err_broken))
		return 0;
	size_t done = write_ready(l, fd, p, n);
	if (done == n)
		return 0;
	if (n - done > l->pend_cap) {
		uint8_t *b = realloc(l->pend, n - done);
		if (!b)
			return -1;
		l->pend = b;
		l->pend_cap = n - done;
	}
	memcpy(l->pend, p + done, n - done);
	l->pend_len = n - done;
	l->pend_fd = fd;
	return 0;
}

/* Hand the reader more of the pending output. */
static void drain_pending(struct loop *l)
{
	size_t done = write_ready(l, l->pend_fd, l->pend, l->pend_len);
	memmove(l->pend, l->pend + done, l->pend_len - done);
	l->pend_len -= done;
}

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

/* The stop signal that arrived on l->sfd, or 0. */
static int stop_signal(struct loop *l)
{
	struct signalfd_siginfo si;
	return read(l->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si) ? (int)si.ssi_signo : 0;
}

/* Returns the exit code once the program is done. */
static int run_loop(struct loop *l, vb_error *err)
{
	for (;;) {
		struct vb_exec_event ev;
		int r = 0;
		while (!l->pend_len && (r = vb_exec_next(l->ex, &ev, 0, err)) > 0) {
			if (ev.kind == VB_EXEC_STDOUT || ev.kind == VB_EXEC_STDERR) {
				if (emit(l, ev.kind == VB_EXEC_STDOUT ? 1 : 2, ev.data, ev.len) < 0)
					return vb_error_set(err, VB_E_RUNTIME, "out of memory");
			} else if (ev.timed_out) {
				return 124;
			} else {
				/* the exit comes after all output: hand the rest over */
				while (l->pend_len && !l->kill_at) {
					struct pollfd p[2] = { { .fd = l->pend_fd, .events = POLLOUT },
							       { .fd = l->sfd, .events = POLLIN } };
					if (poll(p, 2, -1) < 0 && errno != EINTR)
						break;
					if (p[1].revents & POLLIN)
						return 128 + stop_signal(l);
					drain_pending(l);
				}
				return ev.exit_code;
			}
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

		struct pollfd p[4] = {
			{ .fd = l->pend_len ? -1 : vb_exec_fd(l->ex), .events = POLLIN },
			{ .fd = l->sfd, .events = POLLIN },
			{ .fd = l->stdin_open && vb_exec_stdin_room(l->ex) ? 0 : -1, .events = POLLIN },
			{ .fd = l->pend_len ? l->pend_fd : -1, .events = POLLOUT },
		};
		if (poll(p, 4, wait_ms) < 0 && errno != EINTR)
			return vb_error_errno(err, errno, "poll");
		if (p[1].revents & POLLIN) {
			int sig = stop_signal(l);
			if (sig > 0 && l->kill_at) /* second signal: stop waiting */
				return 128 + sig;
			if (sig > 0) {
				l->first_sig = sig;
				l->kill_at = vb_now_ms() + SIGNAL_GRACE_MS;
				vb_exec_signal(l->ex, sig, err);
			}
		}
		if (p[3].revents)
			drain_pending(l);
		if (p[2].revents & (POLLIN | POLLHUP | POLLERR))
			if (pump_stdin(l, err) < 0)
				return -1;
	}
}

/* -t: PROG on a guest terminal, the session of `voidbox shell`.  Returns
 * the exit code, or -1 with (err) set; the terminal is restored. */
static int tty_session(vb_sandbox *sb, struct opts *o, int sfd, vb_error *err)
{
	sigset_t winch;
	sigemptyset(&winch);
	sigaddset(&winch, SIGWINCH);
	struct vb_cli_pty_session s = {
		.sfd = sfd,
		.wfd = signalfd(-1, &winch, SFD_CLOEXEC | SFD_NONBLOCK),
		.stdin_open = 1,
	};
	if (s.wfd < 0)
		return vb_error_errno(err, errno, "signalfd");
	int tty = isatty(0), code = -1;
	/* the local TERM first (as ssh does), so --env TERM=... still wins */
	_cleanup_free_ char *term = tty ? vb_cli_term_env() : NULL;
	if (term) {
		memmove(o->env + 1, o->env, (o->n_env + 1) * sizeof(o->env[0]));
		o->env[0] = term;
	}
	o->ex.pty = 1;
	vb_cli_term_size(&o->ex.rows, &o->ex.cols);
	s.ex = vb_exec_start(sb, &o->ex, err);
	if (s.ex) {
		struct vb_cli_term t = { 0 };
		if (o->ex.timeout_ms)
			s.host_deadline = vb_now_ms() + o->ex.timeout_ms + HOST_GRACE_MS;
		if (!tty || vb_cli_term_raw(&t, err) == 0)
			code = vb_cli_pty_loop(&s, err);
		vb_cli_term_restore(&t); /* before any message, and before the teardown */
		vb_exec_free(s.ex);
	}
	close(s.wfd);
	return code;
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
	if (first < argc)
		o.ex.argv = (const char *const *)(argv + first);
	if (attach_agents(&o, &err) < 0 || (o.image && prepare_image(&o, &err) < 0)) {
		code = vb_cli_fail(&err);
		goto out;
	}

	/* Signals arrive on descriptors; every thread (and QEMU, which resets
	 * its mask) inherits the block.  Only the teardown signals may cancel
	 * a boot, not a resize. */
	sigset_t winch;
	sigemptyset(&winch);
	if (o.tty)
		sigaddset(&winch, SIGWINCH);
	struct loop l = { .sfd = vb_cli_stop_signals(&winch, &err) };
	if (l.sfd < 0) {
		code = vb_cli_fail(&err);
		goto out;
	}
	o.cfg.cancel_fd = l.sfd;
	o.ex.want_stdin = 1;
	l.stdin_open = 1;

	/* Warm by default: the default VM restored from its pristine snapshot
	 * when there is one; quiet either way, but for a restore that failed
	 * (one notice, then a cold boot) */
	struct vb_warm warm = { 0 };
	vb_sandbox *sb = o.snapshot ? vb_sandbox_restore(&o.cfg, o.snapshot, &err)
			 : o.cold   ? vb_sandbox_start(&o.cfg, &err)
				    : vb_sandbox_start_warm(&o.cfg, &warm, &err);
	if (warm.notice[0])
		vb_cli_warn("%s", warm.notice);
	if (sb && o.snapshot)
		vb_cli_warn("boot: restored from %.12s in %lld ms", vb_sandbox_snapshot_id(sb),
			    (long long)vb_sandbox_boot_ms(sb));
	if (sb) {
		vb_cli_accel_notice(vb_sandbox_accel_info(sb), stderr);
		vb_cli_net_published(&o.cfg.network, sb);
	}
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
	if (o.tty) {
		code = tty_session(sb, &o, l.sfd, &err);
		if (code < 0)
			code = vb_cli_fail(&err);
		goto teardown;
	}
	l.ex = vb_exec_start(sb, &o.ex, &err);
	if (!l.ex) {
		code = vb_cli_fail(&err);
	} else {
		if (o.ex.timeout_ms)
			l.host_deadline = vb_now_ms() + o.ex.timeout_ms + HOST_GRACE_MS;
		code = run_loop(&l, &err);
		if (code < 0)
			code = vb_cli_fail(&err);
		vb_exec_free(l.ex);
		free(l.pend);
	}
teardown:
	vb_cli_net_learned(&o.cfg.network, sb);
	vb_sandbox_free(sb);
	close(l.sfd);
	/* made after this exec, not during it: the first exec of a host is
	 * not slowed by a second VM booting beside it */
	if (warm.missing)
		vb_cli_warm_spawn(&o.cfg);
out:
	vb_cli_arena_free(&o.arena);
	for (int k = 0; k < VB_AGENTBIN_N; k++)
		vb_agentbin_attach_free(&o.attach[k]);
	free(o.agent_path);
	free(o.image_argv);
	vb_run_image_free(&o.im);
	return code;
}
