/* SPDX-License-Identifier: Apache-2.0 */
/*
 * voidbox run: run a pipeline or workflow spec, every box in a fresh VM,
 * with live progress on stderr and the final output (or the SPEC-V1 result
 * object) on stdout.
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
#include "observe/observe.h"
#include "util/util.h"
#include "voidbox/run.h"

static const char usage_text[] =
	"usage: voidbox run [OPTIONS] FILE\n"
	"       voidbox run --file FILE [OPTIONS]\n"
	"\n"
	"Run a pipeline or workflow spec (YAML or JSON). Every pipeline box boots a\n"
	"fresh micro-VM; a workflow's steps share one. Progress goes to stderr, the\n"
	"final output to stdout. Each run is recorded: see `voidbox logs RUN_ID`.\n"
	"\n"
	"options:\n"
	"  -f, --file FILE        the spec (same as the FILE argument)\n"
	"  -i, --input TEXT       give TEXT to the first stage as /workspace/input.json\n"
	"  -o, --output FORMAT    human (default: the output) or json (the result object)\n"
	"  -j, --max-parallel N   fan-out boxes or workflow steps at once (default 4)\n"
	"  -q, --quiet            no progress, run id or notices on stderr (errors only)\n"
	"  --accel auto|kvm|tcg   every VM's accelerator, over the spec's sandbox.backend\n"
	"                         (default: the spec's, else $VOIDBOX_ACCEL, else auto:\n"
	"                         KVM once a probe VM proved it works here, else TCG)\n"
	"  -h, --help             this help\n"
	"\n"
	"exit codes: 0 success; 1 a stage failed; 2 bad usage or spec; 125 VoidBox\n"
	"failed (e.g. a VM did not boot, agent boxes without an LLM provider);\n"
	"130 interrupted (every VM of the run is torn down).\n";

struct opts {
	const char *file, *input;
	int json, quiet;
	unsigned max_parallel;
	enum vb_accel accel;
	int accel_set;
};

/* Returns 1 to run, 0 for --help, -1 with (err) set. */
static int parse(int argc, char **argv, struct opts *o, vb_error *err)
{
	static const struct option longopts[] = {
		{ "file", required_argument, NULL, 'f' },   { "input", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' }, { "max-parallel", required_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },        { "help", no_argument, NULL, 'h' },
		{ "accel", required_argument, NULL, 'A' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "f:i:o:j:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			o->file = optarg;
			break;
		case 'i':
			o->input = optarg;
			break;
		case 'o':
			if (!strcmp(optarg, "json"))
				o->json = 1;
			else if (strcmp(optarg, "human"))
				return vb_error_set(err, VB_E_USAGE, "--output: expected human or json");
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
			return vb_error_set(err, VB_E_USAGE, "unknown or incomplete option '%s' (see --help)",
					    argv[optind - 1]);
		}
	}
	if (optind < argc) {
		if (o->file)
			return vb_error_set(err, VB_E_USAGE, "give the spec once: FILE or --file FILE");
		o->file = argv[optind++];
	}
	if (optind < argc)
		return vb_error_set(err, VB_E_USAGE, "unexpected argument '%s'", argv[optind]);
	if (!o->file)
		return vb_error_set(err, VB_E_USAGE, "no spec given (usage: voidbox run FILE)");
	return 1;
}

struct sink {
	struct vb_progress *progress;
	int quiet;
};

static void on_event(const struct vb_event *ev, void *opaque)
{
	struct sink *s = opaque;
	if (ev->type == VB_EV_RUN_STARTED && !s->quiet) {
		fprintf(stderr, "run %s\n", ev->run_id);
		fflush(stderr);
	}
	if (s->progress)
		vb_progress_event(ev, s->progress);
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
		printf("%s\n", text);
	} else if (res->success && res->output_len) {
		fwrite(res->output, 1, res->output_len, stdout);
		if (res->output[res->output_len - 1] != '\n')
			putchar('\n'); /* a JSON array has none; the shell prompt wants one */
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

int vb_cmd_run(int argc, char **argv)
{
	struct opts o = { 0 };
	vb_error err = { 0 };
	int r = parse(argc, argv, &o, &err);
	if (r == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (r < 0)
		return vb_cli_fail(&err);

	/* Signals become a descriptor the engine watches: readable = cancel.
	 * Every thread, and QEMU, inherits the block. */
	int sfd = vb_cli_stop_signals(NULL, &err);
	if (sfd < 0)
		return vb_cli_fail(&err);

	int tty = isatty(2);
	const char *no_color = getenv("NO_COLOR");
	struct sink sink = { .quiet = o.quiet };
	if (!o.quiet)
		sink.progress = vb_progress_new(stderr, tty, tty && !(no_color && no_color[0]));
	struct vb_run_options ro = {
		.input = o.input,
		.max_parallel = o.max_parallel,
		.on_event = on_event,
		.opaque = &sink,
		.cancel_fd = sfd,
		.accel_set = o.accel_set,
		.accel = o.accel,
		.notices = o.quiet ? NULL : stderr,
	};
	struct vb_run_result *res = vb_run_file(o.file, &ro, &err);
	vb_progress_free(sink.progress);
	int code;
	if (!res)
		code = vb_cli_fail(&err);
	else
		code = print_result(res, o.json);
	vb_run_result_free(res);
	close(sfd);
	return code;
}
