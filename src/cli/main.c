/* SPDX-License-Identifier: Apache-2.0 */
/* voidbox: the command line.  One file per verb; this one dispatches. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

struct verb {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct verb verbs[] = {
	{ "exec", vb_cmd_exec, "run a command in a fresh micro-VM" },
	{ "run", vb_cmd_run, "run a pipeline, workflow or agent spec" },
	{ "shell", vb_cmd_shell, "an interactive shell in a fresh micro-VM (kind: sandbox)" },
	{ "logs", vb_cmd_logs, "show a recorded run's events or a stage's log" },
	{ "ps", vb_cmd_ps, "list runs and live VMs (exec, shell, run)" },
	{ "stop", vb_cmd_stop, "stop runs and VMs (SIGTERM to their voidbox process)" },
	{ "rm", vb_cmd_rm, "delete run records" },
	{ "prune", vb_cmd_prune, "delete finished run records and old VM console logs" },
	{ "validate", vb_cmd_validate, "check a spec file" },
	{ "inspect", vb_cmd_inspect, "show the resolved plan of a spec file" },
	{ "pull", vb_cmd_pull, "fetch an OCI image into the store" },
	{ "images", vb_cmd_images, "list the OCI images in the store" },
	{ "rmi", vb_cmd_rmi, "remove OCI images from the store" },
	{ "snapshot", vb_cmd_snapshot, "save a booted VM; list, inspect, delete snapshots" },
	{ "image", vb_cmd_image, "build or list the guest image (kernel + initramfs)" },
	{ "agent", vb_cmd_agent, "fetch or list the agent binaries (claude-code, codex)" },
	{ "doctor", vb_cmd_doctor, "check this machine: backend, accelerator, image" },
	{ "version", vb_cmd_version, "print the version" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: voidbox COMMAND [OPTIONS]\n\n"
		     "VoidBox runs every command or agent stage in its own micro-VM.\n\n"
		     "commands:\n");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(out, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
	fprintf(out, "\nRun 'voidbox help COMMAND' (or 'voidbox COMMAND --help') for a command's\n"
		     "options.  Exit codes: 0 success; 2 bad usage; 125 VoidBox failed; exec\n"
		     "and shell return the program's own (124 timeout, 126/127 cannot run it).\n");
}

int vb_cli_exit_code(enum vb_error_kind kind)
{
	switch (kind) {
	case VB_E_OK: return 0;
	case VB_E_USAGE: return 2;
	case VB_E_NOTFOUND: return 127;
	case VB_E_NOEXEC: return 126;
	case VB_E_TIMEOUT: return 124;
	case VB_E_CANCELLED: return 130;
	case VB_E_RUNTIME:
	case VB_E_VMDIED:
	default: return 125;
	}
}

/* (m) on stderr with one "voidbox: " per line, so multi-problem messages
 * stay greppable.  Messages quote spec values, paths and guest text: they
 * cross the terminal boundary here (util/term.h). */
static void say(const char *m)
{
	while (*m) {
		size_t n = strcspn(m, "\n");
		fputs("voidbox: ", stderr);
		vb_term_write(stderr, m, n, 0);
		fputc('\n', stderr);
		m += n + (m[n] == '\n');
	}
}

int vb_cli_fail(const vb_error *err)
{
	say(err->msg[0] ? err->msg : "unknown error");
	return vb_cli_exit_code(err->kind);
}

void vb_cli_warn(const char *fmt, ...)
{
	va_list ap;
	char *m = NULL;
	va_start(ap, fmt);
	int n = vasprintf(&m, fmt, ap);
	va_end(ap);
	if (n >= 0)
		say(m);
	free(m);
}

static const struct verb *find(const char *name)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (!strcmp(name, verbs[i].name))
			return &verbs[i];
	return NULL;
}

static int unknown_verb(const char *name)
{
	const char *names[sizeof(verbs) / sizeof(verbs[0])];
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		names[i] = verbs[i].name;
	const char *near = vb_cli_suggest(name, names, sizeof(names) / sizeof(names[0]));
	vb_error err = { 0 };
	char shown[64];
	vb_term_copy(shown, sizeof(shown), name, 0);
	if (near)
		vb_error_set(&err, VB_E_USAGE, "unknown command '%s'; did you mean '%s'? (see 'voidbox help')",
			     shown, near);
	else
		vb_error_set(&err, VB_E_USAGE, "unknown command '%s' (see 'voidbox help')", shown);
	return vb_cli_fail(&err);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *verb = argv[1];
	if (!strcmp(verb, "--help") || !strcmp(verb, "-h") || (!strcmp(verb, "help") && argc == 2)) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(verb, "help")) { /* voidbox help CMD = voidbox CMD --help */
		const struct verb *v = find(argv[2]);
		if (argc > 3) {
			vb_error err = { 0 };
			vb_error_set(&err, VB_E_USAGE, "help: one command at a time (voidbox help COMMAND)");
			return vb_cli_fail(&err);
		}
		if (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h") || !strcmp(argv[2], "help")) {
			usage(stdout);
			return 0;
		}
		if (!v)
			return unknown_verb(argv[2]);
		char help_opt[] = "--help";
		char *help_argv[] = { argv[2], help_opt, NULL };
		return v->fn(2, help_argv);
	}
	if (!strcmp(verb, "--version"))
		verb = "version";
	if (verb[0] == '-') { /* "voidbox -m 1G exec": options go after the command */
		vb_error err = { 0 };
		char shown[64];
		vb_error_set(&err, VB_E_USAGE,
			     "unknown option '%s' before the command; usage: voidbox COMMAND [OPTIONS] "
			     "(see 'voidbox help')",
			     vb_term_copy(shown, sizeof(shown), verb, 0));
		return vb_cli_fail(&err);
	}
	const struct verb *v = find(verb);
	if (!v)
		return unknown_verb(verb);
	return v->fn(argc - 1, argv + 1);
}
