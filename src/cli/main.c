/* SPDX-License-Identifier: Apache-2.0 */
/* voidbox: the command line.  One file per verb; this one dispatches. */
#include <stdio.h>
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
	{ "ps", vb_cmd_ps, "list recorded runs and the VMs of running ones" },
	{ "stop", vb_cmd_stop, "stop runs and VMs (SIGTERM to their voidbox process)" },
	{ "rm", vb_cmd_rm, "delete run records" },
	{ "prune", vb_cmd_prune, "delete finished run records and old VM console logs" },
	{ "validate", vb_cmd_validate, "check a spec file" },
	{ "inspect", vb_cmd_inspect, "show the resolved plan of a spec file" },
	{ "image", vb_cmd_image, "build or list the guest image (kernel + initramfs)" },
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
	fprintf(out, "\nRun 'voidbox COMMAND --help' for a command's options.\n");
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

int vb_cli_fail(const vb_error *err)
{
	const char *m = err->msg[0] ? err->msg : "unknown error";
	/* one "voidbox: " per line, so multi-problem messages stay greppable */
	while (*m) {
		size_t n = strcspn(m, "\n");
		fprintf(stderr, "voidbox: %.*s\n", (int)n, m);
		m += n + (m[n] == '\n');
	}
	return vb_cli_exit_code(err->kind);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *verb = argv[1];
	if (!strcmp(verb, "--help") || !strcmp(verb, "-h") || !strcmp(verb, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(verb, "--version"))
		verb = "version";
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (!strcmp(verb, verbs[i].name))
			return verbs[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "voidbox: unknown command '%s'\n", verb);
	usage(stderr);
	return 2;
}
