/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PTY session of `voidbox shell` and `voidbox exec -t`.  The guest side
 * is a PTY exec (docs/protocol.md): the program owns a real terminal in the
 * guest, whose bytes come back as one stream.  Locally, a terminal on stdin
 * is put into raw mode by the caller once the program runs (^C still
 * cancels a boot) and restored on every way out before anything is
 * printed.  With stdin not a terminal the guest still gets one; local
 * termios is left alone and EOF on stdin becomes the guest terminal's ^D.
 */
#include "cli/pty.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/util.h"

/* ---- the local terminal ------------------------------------------------- */

int vb_cli_term_raw(struct vb_cli_term *t, vb_error *err)
{
	struct termios raw;
	if (tcgetattr(0, &t->saved) < 0)
		return vb_error_errno(err, errno, "reading the terminal settings");
	raw = t->saved;
	cfmakeraw(&raw);
	/* TCSANOW: keys typed during the boot stay queued for the program */
	if (tcsetattr(0, TCSANOW, &raw) < 0)
		return vb_error_errno(err, errno, "setting the terminal to raw mode");
	t->raw = 1;
	return 0;
}

void vb_cli_term_restore(struct vb_cli_term *t)
{
	if (!t->raw)
		return;
	/* TCSADRAIN: the guest's last bytes reach the screen first */
	while (tcsetattr(0, TCSADRAIN, &t->saved) < 0 && errno == EINTR)
		;
	t->raw = 0;
}

void vb_cli_term_size(unsigned *rows, unsigned *cols)
{
	struct winsize ws;
	*rows = *cols = 0;
	for (int fd = 0; fd < 3; fd++) {
		if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
			*rows = ws.ws_row < VB_EXEC_TERM_MAX ? ws.ws_row : VB_EXEC_TERM_MAX;
			*cols = ws.ws_col < VB_EXEC_TERM_MAX ? ws.ws_col : VB_EXEC_TERM_MAX;
			return;
		}
	}
}

char *vb_cli_term_env(void)
{
	const char *t = getenv("TERM");
	if (!t || !t[0] || strlen(t) > 64)
		return NULL;
	for (const char *p = t; *p; p++)
		if (*p <= ' ' || *p > '~')
			return NULL;
	return vb_strfmt("TERM=%s", t);
}

/* ---- the session -------------------------------------------------------- */

/* The guest terminal's bytes to stdout.  When they cannot be written (the
 * reader of our stdout went away: `voidbox exec -t -- yes | head -1`), the
 * guest's terminal has lost its screen: it hangs up, SIGHUP, as when an
 * ssh session's terminal closes; the rest is dropped.  A program that
 * ignores it goes on, and its exit status is still ours. */
static void emit(struct vb_cli_pty_session *s, const uint8_t *p, size_t n)
{
	if (s->out_broken || vb_cli_write_out(1, p, n) == 0)
		return;
	s->out_broken = 1;
	vb_error ignore = { 0 };
	vb_exec_signal(s->ex, SIGHUP, &ignore); /* a dead VM shows up in vb_exec_next() */
}

static int pump_stdin(struct vb_cli_pty_session *s, vb_error *err)
{
	uint8_t buf[65536]; /* one stream chunk */
	size_t room = vb_exec_stdin_room(s->ex);
	if (room == 0)
		return 0;
	ssize_t n = read(0, buf, room < sizeof(buf) ? room : sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) { /* EOF, or a hung-up terminal: the guest gets its ^D */
		s->stdin_open = 0;
		return vb_exec_close_stdin(s->ex, err);
	}
	for (ssize_t off = 0; off < n;) { /* room was reserved: never blocks */
		ssize_t w = vb_exec_write(s->ex, buf + off, (size_t)(n - off), -1, err);
		if (w < 0)
			return -1;
		off += w;
	}
	return 0;
}

static void resize(struct vb_cli_pty_session *s)
{
	struct signalfd_siginfo si;
	while (read(s->wfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		;
	unsigned rows, cols;
	vb_cli_term_size(&rows, &cols);
	vb_error ignore;
	if (rows && cols) /* a dead VM shows up in vb_exec_next() */
		vb_exec_resize(s->ex, rows, cols, &ignore);
}

int vb_cli_pty_loop(struct vb_cli_pty_session *s, vb_error *err)
{
	for (;;) {
		struct vb_exec_event ev;
		int r;
		while ((r = vb_exec_next(s->ex, &ev, 0, err)) > 0) {
			if (ev.kind != VB_EXEC_EXIT) {
				emit(s, ev.data, ev.len);
				continue;
			}
			if (ev.timed_out) {
				s->timed_out = 1;
				return 124;
			}
			return ev.exit_code;
		}
		if (r < 0)
			return -1;
		int64_t now = vb_now_ms(), wait_ms = -1;
		if (s->host_deadline) {
			if (now >= s->host_deadline)
				return vb_error_set(err, VB_E_TIMEOUT,
						    "the guest did not stop the program at its timeout");
			wait_ms = s->host_deadline - now;
		}
		struct pollfd p[4] = {
			{ .fd = vb_exec_fd(s->ex), .events = POLLIN },
			{ .fd = s->sfd, .events = POLLIN },
			{ .fd = s->wfd, .events = POLLIN },
			{ .fd = s->stdin_open && vb_exec_stdin_room(s->ex) ? 0 : -1, .events = POLLIN },
		};
		if (poll(p, 4, (int)(wait_ms > INT_MAX ? INT_MAX : wait_ms)) < 0 && errno != EINTR)
			return vb_error_errno(err, errno, "poll");
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si = { .ssi_signo = SIGTERM };
			ssize_t n = read(s->sfd, &si, sizeof(si));
			(void)n;
			s->signalled = (int)si.ssi_signo;
			return 128 + (int)si.ssi_signo; /* the caller tears the VM down */
		}
		if (p[2].revents & POLLIN)
			resize(s);
		if ((p[3].revents & (POLLIN | POLLHUP | POLLERR)) && pump_stdin(s, err) < 0)
			return -1;
	}
}

int vb_cli_pty_attach(vb_sandbox *sb, const struct vb_exec_params *p, int sfd, vb_error *err)
{
	size_t n = 0;
	while (p->env && p->env[n])
		n++;
	_cleanup_free_ char *term = vb_cli_term_env();
	_cleanup_free_ const char **env = calloc(n + 2, sizeof(*env));
	if (!env)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	size_t k = 0;
	if (term) /* before the given ones, which win */
		env[k++] = term;
	for (size_t i = 0; i < n; i++)
		env[k++] = p->env[i];
	struct vb_exec_params xp = *p;
	xp.env = env;
	xp.pty = 1;
	xp.want_stdin = 1;
	vb_cli_term_size(&xp.rows, &xp.cols);
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
	int code = -1;
	s.ex = vb_exec_start(sb, &xp, err);
	if (s.ex) {
		struct vb_cli_term t = { 0 };
		if (!isatty(0) || vb_cli_term_raw(&t, err) == 0)
			code = vb_cli_pty_loop(&s, err);
		vb_cli_term_restore(&t); /* before any message */
		vb_exec_free(s.ex);
	}
	close(s.wfd);
	if (s.signalled) {
		vb_error_clear(err);
		return vb_error_set(err, VB_E_CANCELLED, "interrupted");
	}
	return code;
}
