/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A PTY session with a guest program, shared by `voidbox shell` and
 * `voidbox exec -t`: the local terminal in raw mode, its size passed along
 * and followed on SIGWINCH, stdin typed into the guest terminal, the
 * terminal's bytes to stdout.
 */
#ifndef VB_CLI_PTY_H
#define VB_CLI_PTY_H

#include <stdint.h>
#include <termios.h>

#include "voidbox/error.h"
#include "voidbox/sandbox.h"

/* ---- the local terminal ------------------------------------------------- */

struct vb_cli_term {
	int raw;                /* stdin is in raw mode; (saved) restores it */
	struct termios saved;
};

/* Put the terminal on stdin in raw mode (every key, ^C and ^D included, is
 * a byte for the guest's line discipline).  Call only when isatty(0). */
int vb_cli_term_raw(struct vb_cli_term *t, vb_error *err);
/* Undo vb_cli_term_raw(), if it was done; before printing anything. */
void vb_cli_term_restore(struct vb_cli_term *t);
/* The window size of the first terminal among stdin, stdout, stderr, or
 * 0 x 0 (the guest's default), clamped to what the protocol carries. */
void vb_cli_term_size(unsigned *rows, unsigned *cols);
/* "TERM=..." of the local terminal if it is worth passing on (printable,
 * short), newly allocated; NULL if not (or out of memory). */
char *vb_cli_term_env(void);

/* ---- the session -------------------------------------------------------- */

struct vb_cli_pty_session {
	vb_exec *ex;           /* a pty exec with want_stdin */
	int sfd;               /* signalfd: INT, TERM, HUP, QUIT (teardown) */
	int wfd;               /* signalfd: WINCH, non-blocking */
	int stdin_open;        /* set to 1 before the loop */
	int out_broken;
	int64_t host_deadline; /* 0 = none: guard behind the guest's own timeout */
	int timed_out;         /* out: the guest stopped the program at its timeout */
	int signalled;         /* out: the teardown signal that ended the loop, 0 if none */
};

/* Pump bytes until the program exits.  Returns its exit code (124 with
 * (timed_out) set for the guest's timeout; 128+N when teardown signal N
 * arrived, the caller then tears the VM down), or -1 with (err) set. */
int vb_cli_pty_loop(struct vb_cli_pty_session *s, vb_error *err);

/* Run (p) in (sb) on a guest terminal with this process's terminal
 * attached (stdin in raw mode while it runs, the window size followed;
 * TERM passed on), as `voidbox shell` does; (sfd) is the teardown signals'
 * descriptor (vb_cli_stop_signals, with SIGWINCH blocked too).  Returns the
 * program's exit code; -1 with (err), kind VB_E_CANCELLED when a teardown
 * signal came (it is read from sfd). */
int vb_cli_pty_attach(vb_sandbox *sb, const struct vb_exec_params *p, int sfd, vb_error *err);

#endif
