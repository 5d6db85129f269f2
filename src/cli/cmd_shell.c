/* SPDX-License-Identifier: Apache-2.0 */
/*
 * voidbox shell: boot a fresh micro-VM and open an interactive shell in it
 * over a pseudo-terminal, for `kind: sandbox` specs or plain flags.
 *
 * The session itself (raw mode, window size, the byte pump) is cli/pty.c,
 * shared with `voidbox exec -t`.  Raw mode starts only once the shell runs
 * (^C still cancels a boot) and is undone on every way out before anything
 * is printed.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/pty.h"
#include "oci/oci.h"
#include "run/image.h"
#include "run/vmconf.h"
#include "spec/spec.h"
#include "util/util.h"
#include "voidbox/sandbox.h"

#define MAX_LIST 256
#define MAX_MOUNTS 32
#define HOST_GRACE_MS 15000 /* behind the guest's own timeout */

static const char usage_text[] =
	"usage: voidbox shell [FILE | --file FILE] [OPTIONS] [-- PROG [ARGS...]]\n"
	"\n"
	"Boot a fresh micro-VM and open an interactive shell in it over a\n"
	"pseudo-terminal; the VM is torn down when the shell exits. FILE is a\n"
	"`kind: sandbox` spec whose sandbox settings apply; options override them.\n"
	"A terminal on stdin is put in raw mode for the session (every key, ^C and\n"
	"^D included, goes to the guest) and its window size follows resizes.\n"
	"\n"
	"options:\n"
	"  --file FILE            the spec (same as the FILE argument)\n"
	"  -m, --memory SIZE      guest memory: MiB, or with a unit (512M, 1G); also\n"
	"                         --memory-mb (default: the spec's, else 1024 MiB)\n"
	"  --cpus N               vCPUs (also --vcpus; default: spec, else 1)\n"
	"  -v, --mount HOST:GUEST[:ro|rw]  share a host directory (repeatable;\n"
	"                         default ro; a missing rw HOST directory is created)\n"
	"  -e, --env K=V          set a variable (repeatable; K alone copies the host's)\n"
	"  -w, --workdir DIR      working directory in the guest (also --working-dir)\n"
	"  -u, --user sandbox|root  run as uid 1000 'sandbox' (default) or root\n"
	"                         (on an image: its User by default)\n"
	"  --image REF            an OCI image as the VM's root filesystem (over the\n"
	"                         spec's sandbox.image); pulled when not in the store\n"
	"  --pull missing|always|never  when to pull it (default missing)\n"
	"  --snapshot ID|NAME     start from a stored snapshot (`voidbox snapshot\n"
	"                         list`) instead of booting (over the spec's\n"
	"                         sandbox.snapshot; docs/snapshots.md)\n"
	"  --cold                 boot the VM instead of restoring the warm snapshot\n"
	"                         (by default the VM starts from it when there is one\n"
	"                         and nothing asked for needs a boot)\n"
	"  --program PROG         what to run instead of sh (busybox ash)\n"
	"  --args ARG             one argument for PROG (repeatable)\n"
	VB_CLI_NET_HELP
	"                        (with a spec: --network turns it on; host ports,\n"
	"                        publish entries and domains given here replace the\n"
	"                        spec's)\n"
	VB_CLI_ACCEL_HELP
	"  -h, --help             this help\n"
	"\n"
	"exit codes: the shell's own; 128+N if it was killed by signal N (or\n"
	"voidbox by SIGTERM/SIGHUP/SIGINT from outside); 124 timeout (the spec's\n"
	"limits.timeout_secs); 125 VoidBox failed; 126/127 PROG not allowed or not\n"
	"found; 2 bad usage or a spec that is not `kind: sandbox`.\n";

struct opts {
	const char *file, *cwd, *program;
	unsigned memory_mib, vcpus;
	enum vb_accel accel;
	int accel_set, as_root;
	const char *args[MAX_LIST];
	size_t n_args;
	char *const *cmd; /* PROG ARGS... after "--" */
	struct vb_mount mounts[MAX_MOUNTS];
	size_t n_mounts;
	const char *env[MAX_LIST];
	size_t n_env;
	struct vb_cli_arena arena;
	struct vb_cli_net net;
	const char *image; /* --image, else the spec's sandbox.image */
	int pull, pull_set;
	const char *user;  /* -u sandbox: named, so an image's User does not win */
	struct vb_run_image im;
	const char *snapshot; /* --snapshot */
	int cold;             /* --cold */
};

/* ---- options ------------------------------------------------------------ */

static int parse_opt(struct opts *o, int c, const char *arg, vb_error *err)
{
	unsigned long v;
	switch (c) {
	case 'A':
		o->accel_set = 1;
		return vb_cli_parse_accel(arg, &o->accel, err);
	case 'f':
		if (o->file)
			return vb_error_set(err, VB_E_USAGE, "give the spec once: FILE or --file FILE");
		o->file = arg;
		return 0;
	case 'm':
		return vb_cli_parse_memory("shell", arg, &o->memory_mib, err);
	case 'c':
		if (vb_cli_parse_uint(arg, 64, &v) < 0 || v == 0)
			return vb_error_set(err, VB_E_USAGE, "--cpus: expected 1..64");
		o->vcpus = (unsigned)v;
		return 0;
	case 'v':
		return vb_cli_add_mount(&o->arena, o->mounts, &o->n_mounts, MAX_MOUNTS, arg, err);
	case 'e':
		return vb_cli_add_env(&o->arena, o->env, &o->n_env, MAX_LIST, arg, err);
	case 'w':
		if (arg[0] != '/')
			return vb_error_set(err, VB_E_USAGE, "--workdir: expected an absolute path");
		o->cwd = arg;
		return 0;
	case 'u':
		if (!strcmp(arg, "root") || !strcmp(arg, "0"))
			o->as_root = 1;
		else if (!strcmp(arg, "sandbox") || !strcmp(arg, "1000"))
			o->user = "sandbox";
		else
			return vb_error_set(err, VB_E_USAGE, "--user: expected sandbox (1000) or root (0)");
		return 0;
	case 'p':
		if (!arg[0])
			return vb_error_set(err, VB_E_USAGE, "--program: expected a program");
		o->program = arg;
		return 0;
	case VB_CLI_OPT_NETWORK:
	case VB_CLI_OPT_ALLOW_HOST_PORT:
	case VB_CLI_OPT_PUBLISH:
	case VB_CLI_OPT_NET_LEARN:
	case VB_CLI_OPT_ALLOW_DOMAIN:
		return vb_cli_net_option(&o->net, c, arg, err);
	case 'I': {
		struct vb_oci_ref r;
		if (vb_oci_ref_parse(arg, &r, err) < 0) {
			vb_error_prefix(err, "--image");
			return -1;
		}
		vb_oci_ref_clear(&r);
		o->image = arg;
		return 0;
	}
	case 'P':
		if (vb_run_image_pull_parse(arg, &o->pull) < 0)
			return vb_error_set(err, VB_E_USAGE, "--pull: expected missing, always or never");
		o->pull_set = 1;
		return 0;
	case 'S':
		if (!arg[0])
			return vb_error_set(err, VB_E_USAGE, "--snapshot: expected an id or a name");
		o->snapshot = arg;
		return 0;
	case 'C':
		o->cold = 1;
		return 0;
	case 'a':
		if (o->n_args >= MAX_LIST - 1)
			return vb_error_set(err, VB_E_USAGE, "too many --args");
		o->args[o->n_args++] = arg;
		return 0;
	default:
		return vb_error_set(err, VB_E_USAGE, "unknown or incomplete option (see --help)");
	}
}

/* Returns 1 to run, 0 for --help, -1 with (err) set.  Options may come
 * before or after FILE; "--" ends them and starts PROG ARGS. */
static int parse(int argc, char **argv, struct opts *o, vb_error *err)
{
	static const struct option longopts[] = {
		{ "file", required_argument, NULL, 'f' },    { "memory", required_argument, NULL, 'm' },
		{ "memory-mb", required_argument, NULL, 'm' }, { "cpus", required_argument, NULL, 'c' },
		{ "vcpus", required_argument, NULL, 'c' },   { "mount", required_argument, NULL, 'v' },
		{ "env", required_argument, NULL, 'e' },     { "workdir", required_argument, NULL, 'w' },
		{ "working-dir", required_argument, NULL, 'w' }, { "user", required_argument, NULL, 'u' },
		{ "program", required_argument, NULL, 'p' }, { "args", required_argument, NULL, 'a' },
		{ "accel", required_argument, NULL, 'A' },
		{ "image", required_argument, NULL, 'I' },   { "pull", required_argument, NULL, 'P' },
		{ "snapshot", required_argument, NULL, 'S' }, { "cold", no_argument, NULL, 'C' },
		VB_CLI_NET_LONGOPTS,
		{ "help", no_argument, NULL, 'h' },          { NULL, 0, NULL, 0 },
	};
	optind = 1;
	opterr = 0;
	for (;;) {
		int before = optind;
		int c = getopt_long(argc, argv, "+:he:w:m:v:u:", longopts, NULL);
		if (c == 'h')
			return 0;
		if (c == '?' || c == ':')
			return vb_cli_getopt_fail("shell", c, argv, longopts, err);
		if (c != -1) {
			if (parse_opt(o, c, optarg, err) < 0)
				return -1;
			continue;
		}
		if (optind == before + 1 && !strcmp(argv[before], "--")) {
			o->cmd = argv + optind; /* PROG ARGS */
			break;
		}
		if (optind >= argc)
			break;
		/* a positional argument: the spec; options may follow it */
		if (parse_opt(o, 'f', argv[optind++], err) < 0)
			return -1;
	}
	if (o->cmd && !o->cmd[0])
		return vb_error_set(err, VB_E_USAGE, "no program after '--'");
	if (o->cmd && o->program)
		return vb_error_set(err, VB_E_USAGE, "give the program once: --program or -- PROG");
	if (o->n_args && !o->program)
		return vb_error_set(err, VB_E_USAGE, "--args needs --program");
	if (o->snapshot && o->cold)
		return vb_error_set(err, VB_E_USAGE, "--snapshot restores, --cold boots: pick one");
	return 1;
}

/* ---- the VM and the program --------------------------------------------- */

/* Fill (vc) from the spec (if any), then the options on top.  (vc) is
 * zeroed first and safe to free whatever happens. */
static int configure(struct opts *o, struct vb_run_vmconf *vc, vb_error *err)
{
	memset(vc, 0, sizeof(*vc));
	if (o->file) {
		struct vb_spec *spec = vb_spec_load(o->file, err);
		if (!spec)
			return -1;
		int rc = 0;
		if (spec->kind != VB_SPEC_SANDBOX)
			rc = vb_error_set(err, VB_E_USAGE,
					  "voidbox shell needs a kind: sandbox spec; use voidbox run for "
					  "pipelines (%s is kind: %s)",
					  o->file, vb_spec_kind_name(spec->kind));
		else if (vb_run_vm_config_pull(&spec->vm, o->accel_set ? &o->accel : NULL,
					       &(struct vb_run_pull){ .policy = o->pull,
								      .progress = stderr },
					       vc, err) < 0)
			rc = -1; /* a guest image as --pull says, as `run` has it */
		else if (!o->image && spec->vm.image &&
			 !(o->image = vb_cli_keep(&o->arena, strdup(spec->vm.image))))
			rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
		vb_spec_free(spec); /* vc owns copies of all it needs */
		if (rc < 0)
			return -1;
		vb_run_vmconf_notify(vc, stderr);
	}
	if (o->accel_set)
		vc->cfg.accel = o->accel;
	if (o->memory_mib)
		vc->cfg.memory_mib = o->memory_mib;
	if (o->vcpus)
		vc->cfg.vcpus = o->vcpus;
	for (size_t i = 0; i < o->n_mounts; i++)
		if (vb_run_vmconf_add_mount(vc, o->mounts[i].host, o->mounts[i].guest, o->mounts[i].rw,
					    err) < 0)
			return -1;
	/* the network: the spec's, the options' on top; refusals on stderr */
	struct vb_network spec_net = vc->cfg.network;
	if (o->net.network || spec_net.enabled) {
		o->net.network = 1;
		vb_cli_net_apply(&o->net, &vc->cfg);
		struct vb_network *n = &vc->cfg.network;
		if (spec_net.enabled) {
			n->deny = spec_net.deny;
			n->n_deny = spec_net.n_deny;
			n->allow = spec_net.allow;
			n->n_allow = spec_net.n_allow;
			n->allow_set = spec_net.allow_set;
			if (!o->net.n_domains) {
				n->allow_domains = spec_net.allow_domains;
				n->n_allow_domains = spec_net.n_allow_domains;
			}
			n->allow_private = spec_net.allow_private;
			n->max_connections = spec_net.max_connections;
			n->connections_per_sec = spec_net.connections_per_sec;
			if (!o->net.n_host_ports) {
				n->host_ports = spec_net.host_ports;
				n->n_host_ports = spec_net.n_host_ports;
			}
			if (!o->net.n_publish) {
				n->publish = spec_net.publish;
				n->n_publish = spec_net.n_publish;
			}
			n->learn = o->net.learn || spec_net.learn;
		}
	}
	vc->cfg.name = "shell";
	if (o->pull_set && !o->image)
		return vb_error_set(err, VB_E_USAGE, "--pull needs --image (or a spec's sandbox.image)");
	/* how it starts: the options over the spec's sandbox.snapshot */
	const char *from = "sandbox.snapshot";
	if (o->snapshot) {
		vc->boot = VB_RUN_BOOT_SNAPSHOT;
		vc->snapshot = o->snapshot;
		from = "--snapshot";
	} else if (o->cold) {
		vc->boot = VB_RUN_BOOT_COLD;
	}
	if (vc->boot == VB_RUN_BOOT_SNAPSHOT && o->image) /* before any pull */
		return vb_error_set(err, VB_E_USAGE,
				    "%s: a VM restored from a snapshot has the snapshot's root, not "
				    "--image",
				    from);
	if (o->image && vb_run_image_prepare(o->image, o->pull, stderr, &o->im, &vc->cfg, err) < 0)
		return -1;
	return vb_run_vmconf_snapshot(vc, from, 0, err);
}

/* argv and env of the program.  env: the local TERM (as ssh does), then
 * the spec's, then --env, the last of a name winning in the guest. */
static int program(const struct opts *o, const struct vb_run_vmconf *vc, int tty,
		   const char ***argv, const char ***env, char **term, vb_error *err)
{
	size_t n_spec = vc->env ? vc->n_env : 0, n_cmd = 0;
	while (o->cmd && o->cmd[n_cmd])
		n_cmd++;
	*argv = calloc(o->n_args + n_cmd + 2, sizeof(char *));
	*env = calloc(1 + n_spec + o->n_env + 1, sizeof(char *));
	if (!*argv || !*env)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	if (o->cmd) {
		for (size_t i = 0; i < n_cmd; i++)
			(*argv)[i] = o->cmd[i];
	} else {
		(*argv)[0] = o->program ? o->program : "sh";
		for (size_t i = 0; i < o->n_args; i++)
			(*argv)[i + 1] = o->args[i];
	}
	size_t n = 0;
	if (tty && (*term = vb_cli_term_env()))
		(*env)[n++] = *term;
	for (size_t i = 0; i < n_spec; i++)
		(*env)[n++] = vc->env[i];
	for (size_t i = 0; i < o->n_env; i++)
		(*env)[n++] = o->env[i];
	return 0;
}

/* Boot, start the program, run the session.  Returns the exit code, or -1
 * with (err) set; the terminal is restored and the VM gone either way. */
static int shell(const struct opts *o, struct vb_run_vmconf *vc, struct vb_cli_pty_session *s,
		 struct vb_warm *warm, vb_error *err)
{
	int tty = isatty(0);
	const char **argv = NULL, **env = NULL;
	char *term_env = NULL;
	struct vb_cli_term t = { 0 };
	int code = -1;
	if (program(o, vc, tty, &argv, &env, &term_env, err) < 0)
		goto out;

	vc->cfg.cancel_fd = s->sfd;
	/* Warm by default, as exec: quiet, but for a restore that failed (one
	 * notice, then a cold boot); a named snapshot is never replaced by a
	 * cold boot */
	vb_sandbox *sb = vc->boot == VB_RUN_BOOT_SNAPSHOT ? vb_sandbox_restore(&vc->cfg, vc->snapshot, err)
			 : vc->boot == VB_RUN_BOOT_COLD   ? vb_sandbox_start(&vc->cfg, err)
							  : vb_sandbox_start_warm(&vc->cfg, warm, err);
	if (warm->notice[0])
		vb_cli_warn("%s", warm->notice);
	if (sb && vc->boot == VB_RUN_BOOT_SNAPSHOT)
		vb_cli_warn("boot: restored from %.12s in %lld ms", vb_sandbox_snapshot_id(sb),
			    (long long)vb_sandbox_boot_ms(sb));
	if (sb) {
		vb_cli_accel_notice(vb_sandbox_accel_info(sb), stderr);
		vb_cli_net_published(&vc->cfg.network, sb);
	}
	if (!sb) {
		warm->missing = 0; /* a maker's VM would not boot either */
		if (err->kind == VB_E_CANCELLED) {
			struct signalfd_siginfo si = { .ssi_signo = SIGINT };
			ssize_t n = read(s->sfd, &si, sizeof(si));
			(void)n;
			code = 128 + (int)si.ssi_signo;
		}
		goto out;
	}
	struct vb_exec_params p = {
		.argv = argv,
		.env = env,
		.cwd = o->cwd,
		.as_root = o->as_root,
		.user = o->user,
		.timeout_ms = vc->timeout_ms,
		.want_stdin = 1,
		.pty = 1,
	};
	vb_cli_term_size(&p.rows, &p.cols);
	s->ex = vb_exec_start(sb, &p, err);
	if (s->ex) {
		if (isatty(2))
			fprintf(stderr, "voidbox: VM ready (%s, %s isolation); exit the shell to stop it\n",
				vb_sandbox_accel(sb), vb_sandbox_isolation(sb));
		if (vc->timeout_ms)
			s->host_deadline = vb_now_ms() + vc->timeout_ms + HOST_GRACE_MS;
		if (!tty || vb_cli_term_raw(&t, err) == 0)
			code = vb_cli_pty_loop(s, err);
		vb_cli_term_restore(&t); /* before any message, and before the teardown */
		if (s->timed_out)
			code = vb_error_set(err, VB_E_TIMEOUT,
					    "the shell was stopped at its timeout (limits.timeout_secs)");
		vb_exec_free(s->ex);
		s->ex = NULL;
	}
	vb_cli_net_learned(&vc->cfg.network, sb);
	vb_sandbox_free(sb);
out:
	free(argv);
	free(env);
	free(term_env);
	return code;
}

int vb_cmd_shell(int argc, char **argv)
{
	struct opts o;
	memset(&o, 0, sizeof(o));
	struct vb_run_vmconf vc;
	memset(&vc, 0, sizeof(vc));
	struct vb_warm warm = { 0 };
	vb_error err = { 0 };
	int code, rc = parse(argc, argv, &o, &err);
	if (rc == 0) {
		fputs(usage_text, stdout);
		code = 0;
		goto done;
	}
	if (rc < 0 || configure(&o, &vc, &err) < 0) {
		code = vb_cli_fail(&err);
		goto done;
	}

	/* Signals arrive on descriptors; threads and QEMU inherit the block.
	 * Only the teardown signals may cancel a boot, not a resize. */
	sigset_t winch;
	sigemptyset(&winch);
	sigaddset(&winch, SIGWINCH);
	struct vb_cli_pty_session s = {
		.sfd = vb_cli_stop_signals(&winch, &err),
		.wfd = signalfd(-1, &winch, SFD_CLOEXEC | SFD_NONBLOCK),
		.stdin_open = 1,
	};
	if (s.sfd < 0 || s.wfd < 0) {
		vb_error_errno(&err, errno, "signalfd");
		code = -1;
	} else {
		code = shell(&o, &vc, &s, &warm, &err);
	}
	if (code < 0)
		code = vb_cli_fail(&err);
	if (s.sfd >= 0)
		close(s.sfd);
	if (s.wfd >= 0)
		close(s.wfd);
	/* made after the session, not during it (as after an exec); the maker
	 * makes the default image's, which a VM of another kernel never finds */
	if (warm.missing && !vc.cfg.kernel && !vc.cfg.initramfs)
		vb_cli_warm_spawn(&vc.cfg);
done:
	vb_run_vmconf_free(&vc);
	vb_run_image_free(&o.im);
	vb_cli_arena_free(&o.arena);
	return code;
}
