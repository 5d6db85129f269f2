/* SPDX-License-Identifier: Apache-2.0 */
/* The voidbox CLI: one file per verb, each a thin layer over libvoidbox. */
#ifndef VB_CLI_H
#define VB_CLI_H

#include "voidbox/error.h"

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

/* Print "voidbox: MESSAGE" to stderr and return the exit code for its kind
 * (125 runtime, 2 usage, 124 timeout, 126, 127, 130). */
int vb_cli_fail(const vb_error *err);
int vb_cli_exit_code(enum vb_error_kind kind);

#endif
