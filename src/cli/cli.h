/* SPDX-License-Identifier: Apache-2.0 */
/* The voidbox CLI: one file per verb, each a thin layer over libvoidbox. */
#ifndef VB_CLI_H
#define VB_CLI_H

#include <signal.h>
#include <stddef.h>

#include "voidbox/error.h"
#include "voidbox/sandbox.h"

/* Each verb gets argv after the verb name (argv[0] is the verb) and returns
 * the process exit code.  Errors are printed once, as "voidbox: MESSAGE". */
int vb_cmd_exec(int argc, char **argv);
int vb_cmd_doctor(int argc, char **argv);
int vb_cmd_image(int argc, char **argv);
int vb_cmd_version(int argc, char **argv);
int vb_cmd_validate(int argc, char **argv);
int vb_cmd_inspect(int argc, char **argv);
int vb_cmd_run(int argc, char **argv);
int vb_cmd_shell(int argc, char **argv);
int vb_cmd_logs(int argc, char **argv);
int vb_cmd_ps(int argc, char **argv);
int vb_cmd_stop(int argc, char **argv);
int vb_cmd_rm(int argc, char **argv);
int vb_cmd_prune(int argc, char **argv);

/* Print "voidbox: MESSAGE" to stderr and return the exit code for its kind
 * (125 runtime, 2 usage, 124 timeout, 126, 127, 130). */
int vb_cli_fail(const vb_error *err);
int vb_cli_exit_code(enum vb_error_kind kind);

/* ---- shared by the verbs that boot VMs (args.c) ------------------------ */

/* Strings the option parsers allocate, freed together. */
struct vb_cli_arena {
	char *owned[768];
	size_t n;
};
/* Take ownership of (s); NULL (and s freed) when s is NULL or it is full. */
char *vb_cli_keep(struct vb_cli_arena *a, char *s);
void vb_cli_arena_free(struct vb_cli_arena *a);
int vb_cli_parse_uint(const char *s, unsigned long max, unsigned long *out);
/* Append "HOST:GUEST[:ro|rw]" to list[*n] (at most (max) entries), HOST
 * made absolute (it must exist). */
int vb_cli_add_mount(struct vb_cli_arena *a, struct vb_mount *list, size_t *n, size_t max,
		     const char *arg, vb_error *err);
/* Append "K=V" to list[*n] (at most (max)); "K" alone copies the host's
 * value, and adds nothing when the host has no such variable. */
int vb_cli_add_env(struct vb_cli_arena *a, const char **list, size_t *n, size_t max,
		   const char *arg, vb_error *err);
/* The spec file among a verb's arguments: FILE, --file FILE, -f FILE or
 * --file=FILE, at most once.  Returns 1 if argv[*i] was it (*i advanced past
 * a separate value), 0 if argv[*i] is another option, -1 on error. */
int vb_cli_file_arg(const char *verb, int argc, char **argv, int *i, const char **file,
		    vb_error *err);
/* Block SIGINT, SIGTERM, SIGHUP, SIGQUIT and (extra) (may be NULL) for every
 * thread to come, QEMU resets its mask; ignore SIGPIPE.  Returns a signalfd
 * for the four teardown signals, or -1. */
int vb_cli_stop_signals(const sigset_t *extra, vb_error *err);

/* Stop run (id) of (runs_dir) as `voidbox stop` does (cmd_stop.c), printing
 * what happened: 0 stopped or had ended, 1 still running after
 * (timeout_ms), -1 (err) when it cannot be signalled. */
int vb_cli_stop_run(const char *runs_dir, const char *id, int timeout_ms, vb_error *err);

#endif
