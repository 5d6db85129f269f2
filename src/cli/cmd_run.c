/* SPDX-License-Identifier: Apache-2.0 */
/*
 * voidbox run: run a pipeline or workflow spec, every box in a fresh VM,
 * with live progress on stderr and the final output (or the SPEC-V1 result
 * object) on stdout.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/pty.h"
#include "observe/observe.h"
#include "run/image.h"
#include "util/term.h"
#include "util/util.h"
#include "voidbox/run.h"

static const char usage_text[] =
	"usage: voidbox run [OPTIONS] FILE\n"
	"       voidbox run --file FILE [OPTIONS]\n"
	"\n"
	"Run a pipeline or workflow spec (YAML or JSON; a FILE of - is read from stdin).\n"
	"Every pipeline box boots a fresh micro-VM; a workflow's steps share one.\n"
	"Progress goes to stderr, the final output to stdout. Each run is recorded:\n"
	"see `voidbox logs RUN_ID`. ${VAR} and ${VAR:-default} in the spec's values\n"
	"come from the environment (an unset one is an error; $$ is a literal $).\n"
	"\n"
	"options:\n"
	"  -f, --file FILE        the spec (same as the FILE argument)\n"
	"  -i, --input TEXT       give TEXT to the first stage as /workspace/input.json;\n"
	"                         @PATH gives the file's contents (@- stdin)\n"
	"  -e, --env K=V          set K in every box's environment (K alone: the host's\n"
	"                         value); repeatable, wins over the spec\n"
	"  -v, --mount HOST:GUEST[:ro|rw]\n"
	"                         mount a host directory in every box (default ro);\n"
	"                         repeatable, after the spec's mounts\n"
	"      --follow           print every line the stages write as it comes, as\n"
	"                         STAGE | line, on stderr above the progress\n"
	"  -o, --output FORMAT    text (default: the output) or json (the result object)\n"
	"  -j, --max-parallel N   fan-out boxes or workflow steps at once (default 4)\n"
	"      --output-budget SIZE\n"
	"                         the most the run's outputs may take in all (boxes'\n"
	"                         outputs and carried stdout; default 256M, e.g. 1G);\n"
	"                         a box that goes past it fails\n"
	"      --budget max_tokens=N,max_cost_usd=X,max_requests=N\n"
	"                         one LLM budget for all the run's agent stages together\n"
	"                         (any of the keys; fan-out boxes share it), on top of\n"
	"                         each stage's llm.budget: the model request that would\n"
	"                         cross it is refused and its stage fails\n"
	"      --net-learn        learn mode for the stages with network: true: what a\n"
	"                         policy could allow is let through and recorded, and\n"
	"                         each stage's draft network_policy is printed and\n"
	"                         written to its stage directory (docs/network.md)\n"
	"      --pull missing|always|never  when to pull the images of sandbox.image:\n"
	"                         only those not in the store (default), all of them\n"
	"                         again, or none (an image not in the store fails its\n"
	"                         stage)\n"
	"  -q, --quiet            no progress, run id or notices on stderr (errors only)\n"
	"  --accel auto|kvm|tcg   every VM's accelerator, over the spec's sandbox.backend\n"
	"                         (default: the spec's, else $VOIDBOX_ACCEL, else auto:\n"
	"                         KVM once a probe VM proved it works here, else TCG)\n"
	"      --snapshot ID|NAME restore every VM whose spec sets no sandbox.snapshot\n"
	"                         from this snapshot (`voidbox snapshot list`) instead\n"
	"                         of booting it; found before any VM boots\n"
	"      --cold             boot those VMs instead of restoring the warm snapshot\n"
	"                         (by default each VM a restore can give what it asks\n"
	"                         starts from it; docs/snapshots.md)\n"
	"  -h, --help             this help\n"
	"\n"
	"A failed stage's last stderr lines and the `voidbox logs` command that shows\n"
	"all of it follow the progress.\n"
	"\n"
	"exit codes: 0 success; 1 a stage failed; 2 bad usage or spec (or an unset\n"
	"${VAR}); 125 VoidBox failed (e.g. a VM did not boot, agent stages, which\n"
	"this version does not run yet, a snapshot to restore that is not in the\n"
	"store or damaged); 130 interrupted (every VM of the run is torn down).\n";

#define MAX_EXTRA 64
/* The most --input @PATH reads: what a box could carry on. */
#define INPUT_MAX ((size_t)32 << 20)

struct opts {
	const char *file, *input, *snapshot;
	int json, quiet, follow, net_learn, pull, cold;
	unsigned max_parallel;
	uint64_t output_budget;
	struct vb_run_llm_budget llm_budget;
	enum vb_accel accel;
	int accel_set;
	const char *env[MAX_EXTRA];
	size_t n_env;
	struct vb_mount mounts[MAX_EXTRA];
	size_t n_mounts;
	struct vb_cli_arena arena;
};

/* Returns 1 to run, 0 for --help, -1 with (err) set. */
static int parse(int argc, char **argv, struct opts *o, vb_error *err)
{
	enum { OPT_FOLLOW = 256, OPT_BUDGET, OPT_LLM_BUDGET, OPT_NET_LEARN, OPT_PULL, OPT_SNAPSHOT,
	       OPT_COLD };
	static const struct option longopts[] = {
		{ "file", required_argument, NULL, 'f' },   { "input", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' }, { "max-parallel", required_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },        { "help", no_argument, NULL, 'h' },
		{ "accel", required_argument, NULL, 'A' },
		{ "env", required_argument, NULL, 'e' },    { "mount", required_argument, NULL, 'v' },
		{ "follow", no_argument, NULL, OPT_FOLLOW },
		{ "output-budget", required_argument, NULL, OPT_BUDGET },
		{ "budget", required_argument, NULL, OPT_LLM_BUDGET },
		{ "net-learn", no_argument, NULL, OPT_NET_LEARN },
		{ "pull", required_argument, NULL, OPT_PULL },
		{ "snapshot", required_argument, NULL, OPT_SNAPSHOT },
		{ "cold", no_argument, NULL, OPT_COLD },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:i:o:j:qhe:v:", longopts, NULL)) != -1) {
		switch (c) {
		case 'e':
			if (vb_cli_add_env(&o->arena, o->env, &o->n_env, MAX_EXTRA, optarg, err) < 0)
				return -1;
			break;
		case 'v':
			if (vb_cli_add_mount(&o->arena, o->mounts, &o->n_mounts, MAX_EXTRA, optarg,
					     err) < 0)
				return -1;
			break;
		case OPT_FOLLOW:
			o->follow = 1;
			break;
		case OPT_NET_LEARN:
			o->net_learn = 1;
			break;
		case OPT_SNAPSHOT:
			if (!optarg[0])
				return vb_error_set(err, VB_E_USAGE, "--snapshot: expected an id or a name");
			o->snapshot = optarg;
			break;
		case OPT_COLD:
			o->cold = 1;
			break;
		case OPT_PULL:
			if (vb_run_image_pull_parse(optarg, &o->pull) < 0)
				return vb_error_set(err, VB_E_USAGE,
						    "--pull: expected missing, always or never");
			break;
		case OPT_BUDGET: {
			char shown[64];
			if (vb_cli_parse_size(optarg, 1ull << 20, &o->output_budget) < 0 ||
			    !o->output_budget)
				return vb_error_set(err, VB_E_USAGE,
						    "--output-budget %s: expected a size such as "
						    "512M or 2G (a plain number is MiB)",
						    vb_term_copy(shown, sizeof(shown), optarg, 0));
			break;
		}
		case OPT_LLM_BUDGET:
			if (vb_cli_parse_llm_budget(optarg, &o->llm_budget, err) < 0)
				return -1;
			break;
		case 'f':
			o->file = optarg;
			break;
		case 'i':
			o->input = optarg;
			break;
		case 'o':
			if (vb_cli_output_format("run", optarg, &o->json, err) < 0)
				return -1;
			break;
		case 'j': {
			char *end;
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-' || v == 0 || v > 64)
				return vb_error_set(err, VB_E_USAGE, "--max-parallel: expected 1..64");
			o->max_parallel = (unsigned)v;
			break;
		}
		case 'q':
			o->quiet = 1;
			break;
		case 'A':
			o->accel_set = 1;
			if (vb_cli_parse_accel(optarg, &o->accel, err) < 0)
				return -1;
			break;
		case 'h':
			return 0;
		default:
			return vb_cli_getopt_fail("run", c, argv, longopts, err);
		}
	}
	if (optind < argc) {
		if (o->file)
			return vb_error_set(err, VB_E_USAGE, "give the spec once: FILE or --file FILE");
		o->file = argv[optind++];
	}
	if (optind < argc)
		return vb_cli_unexpected_arg("run", argv[optind], err);
	if (!o->file)
		return vb_error_set(err, VB_E_USAGE, "no spec given (usage: voidbox run FILE)");
	if (o->snapshot && o->cold)
		return vb_error_set(err, VB_E_USAGE,
				    "--snapshot restores, --cold boots: pick one");
	if (o->follow && o->quiet)
		return vb_error_set(err, VB_E_USAGE,
				    "--follow shows the stages' output, --quiet hides it: pick one");
	if (o->input && o->input[0] == '@' && !strcmp(o->input, "@-") && !strcmp(o->file, "-"))
		return vb_error_set(err, VB_E_USAGE,
				    "the spec and --input cannot both come from stdin");
	return 1;
}

/* --input @PATH: the file's contents (@- stdin), at most INPUT_MAX bytes. */
static char *read_input(const char *path, size_t *len, vb_error *err)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	if (!f) {
		vb_error_errno(err, errno, "--input @%s", path);
		err->kind = VB_E_USAGE;
		return NULL;
	}
	char *buf = malloc(INPUT_MAX + 1);
	size_t n = buf ? fread(buf, 1, INPUT_MAX + 1, f) : 0;
	int bad = ferror(f);
	if (f != stdin)
		fclose(f);
	if (!buf) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	if (bad || n > INPUT_MAX) {
		free(buf);
		vb_error_set(err, VB_E_USAGE, "--input @%s: %s", path,
			     bad ? "cannot read it" : "larger than 32 MiB");
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

struct sink {
	struct vb_progress *progress;
	int sfd; /* the teardown signals */
};

/* The run id is on the progress display's first line (plain) or header
 * (terminal): printed once, by it. */
static void on_event(const struct vb_event *ev, void *opaque)
{
	struct sink *s = opaque;
	if (s->progress)
		vb_progress_event(ev, s->progress);
}

/* The final output, whole: from its file, a piece at a time (it can be
 * large), else the preview. */
static void print_output(const struct vb_run_result *res)
{
	int fd = res->output_path ? open(res->output_path, O_RDONLY | O_CLOEXEC) : -1;
	char buf[64 << 10], last = '\n';
	uint64_t n = 0;
	if (fd < 0) {
		fwrite(res->output, 1, res->output_len, stdout);
		n = res->output_len;
		if (n)
			last = res->output[n - 1];
	} else {
		ssize_t k;
		while ((k = read(fd, buf, sizeof(buf))) > 0 || (k < 0 && errno == EINTR)) {
			if (k <= 0)
				continue;
			if (fwrite(buf, 1, (size_t)k, stdout) != (size_t)k)
				break;
			n += (uint64_t)k;
			last = buf[k - 1];
		}
		close(fd);
	}
	if (n && last != '\n')
		putchar('\n'); /* a JSON array has none; the shell prompt wants one */
}

static int print_result(const struct vb_run_result *res, int json)
{
	if (json) {
		_cleanup_free_ char *text = vb_run_result_json(res);
		if (!text) {
			vb_error err;
			vb_error_set(&err, VB_E_RUNTIME, "out of memory printing the result");
			return vb_cli_fail(&err);
		}
		vb_term_puts(stdout, text, VB_TERM_JSON); /* DEL and C1 as \u escapes */
		putchar('\n');
	} else if (res->success) {
		print_output(res);
	}
	fflush(stdout);
	if (!res->success) {
		vb_error err;
		vb_error_set(&err, res->error_kind == VB_E_OK ? VB_E_RUNTIME : res->error_kind, "%s",
			     res->error ? res->error : "the run failed");
		vb_cli_fail(&err);
	}
	return vb_run_exit_code(res);
}

/* mode: interactive (docs/agents.md): the terminal goes to the agent; the
 * progress display holds still meanwhile (the run record keeps every
 * event) and draws afresh below when it is back. */
static int attach(vb_sandbox *sb, const struct vb_exec_params *p, void *opaque, vb_error *err)
{
	struct sink *s = opaque;
	vb_progress_hold(s->progress, 1);
	int code = vb_cli_pty_attach(sb, p, s->sfd, err);
	vb_progress_hold(s->progress, 0);
	return code;
}

int vb_cmd_run(int argc, char **argv)
{
	struct opts o = { 0 };
	vb_error err = { 0 };
	int r = parse(argc, argv, &o, &err);
	if (r == 0) {
		vb_cli_arena_free(&o.arena);
		fputs(usage_text, stdout);
		return 0;
	}
	if (r < 0) {
		vb_cli_arena_free(&o.arena);
		return vb_cli_fail(&err);
	}
	_cleanup_free_ char *input = NULL;
	size_t input_len = 0;
	if (o.input && o.input[0] == '@') {
		if (!(input = read_input(o.input + 1, &input_len, &err))) {
			vb_cli_arena_free(&o.arena);
			return vb_cli_fail(&err);
		}
	}

	/* Signals become a descriptor the engine watches: readable = cancel.
	 * Every thread, and QEMU, inherits the block. */
	sigset_t winch; /* blocked in every thread: an interactive stage follows it */
	sigemptyset(&winch);
	sigaddset(&winch, SIGWINCH);
	int sfd = vb_cli_stop_signals(&winch, &err);
	if (sfd < 0) {
		vb_cli_arena_free(&o.arena);
		return vb_cli_fail(&err);
	}

	int tty = isatty(2);
	const char *no_color = getenv("NO_COLOR");
	struct sink sink = { .sfd = sfd };
	if (!o.quiet) {
		sink.progress = vb_progress_new(stderr, tty, tty && !(no_color && no_color[0]));
		vb_progress_follow(sink.progress, o.follow);
	}
	struct vb_run_options ro = {
		.input = input ? input : o.input,
		.input_len = input ? input_len : 0,
		.env = o.env,
		.n_env = o.n_env,
		.mounts = o.mounts,
		.n_mounts = o.n_mounts,
		.max_parallel = o.max_parallel,
		.output_budget = o.output_budget,
		.llm_budget = o.llm_budget,
		.net_learn = o.net_learn,
		.pull = o.pull,
		.snapshot = o.snapshot,
		.cold = o.cold,
		.on_event = on_event,
		.opaque = &sink,
		.cancel_fd = sfd,
		.accel_set = o.accel_set,
		.accel = o.accel,
		.notices = o.quiet ? NULL : stderr,
		/* interactive agent stages need the person's terminal */
		.attach = isatty(0) && isatty(1) ? attach : NULL,
		.attach_opaque = &sink,
	};
	struct vb_run_result *res = vb_run_file(o.file, &ro, &err);
	vb_progress_free(sink.progress);
	int code;
	if (!res)
		code = vb_cli_fail(&err);
	else
		code = print_result(res, o.json);
	/* Warm by default: a VM found no warm snapshot; one is made after
	 * the run, once (as after an exec), when its VMs are gone, so that it
	 * slows none of them */
	if (res && res->warm_missing && !res->cancelled)
		vb_cli_warm_spawn(&res->warm_cfg);
	vb_run_result_free(res);
	close(sfd);
	vb_cli_arena_free(&o.arena);
	return code;
}
