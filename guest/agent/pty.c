/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pty.c — the pseudo-terminal of a PTY exec (EXEC with PTY 1).
 *
 * The exec thread owns the master: it reads the program's output from it
 * (one stream; EIO once every holder of the slave is gone is the end) and
 * writes the host's input to it.  The child gets the slave as its
 * controlling terminal and fds 0-2 (see exec.c).  The exec thread keeps a
 * slave descriptor of its own until the child exits: it is how the input
 * queue is watched for the end-of-input logic below.
 *
 * End of input.  A terminal has no end of file: closing the master hangs
 * the terminal up (SIGHUP) and loses the output.  What a user types
 * instead is the VEOF character (^D), and that is what the host's EOF
 * becomes, written the way util-linux script(1) does it: only once the
 * program has consumed all earlier input.  Two more conditions make it
 * land where a user's ^D would:
 *   - the terminal has been quiet (no input written, no output read) for
 *     PTY_EOF_QUIET_MS, so the program is waiting rather than working;
 *   - in canonical mode the foreground process group is the exec's own
 *     (a shell's foreground job in cooked mode may be anything, e.g. a
 *     `sleep`; a ^D arriving then would wait in the queue and reach the
 *     shell's raw-mode line editor later as a NUL byte, not an EOF).
 * In canonical mode after an unterminated line VEOF is written twice (the
 * first ends the line, the second reads as end of file).  In raw mode it
 * is written once and means what the program makes of it: a shell's line
 * editor exits on ^D at an empty prompt.  The quiet period is a heuristic:
 * a shell builtin that blocks silently in cooked mode (`wait`) can still
 * get the ^D too early.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#define PTY_EOF_QUIET_MS 250u

static void close_quietly(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

int pty_open(uid_t uid, unsigned rows, unsigned cols, int *master, int *slave)
{
	int m = -1, s = -1, saved;
	char name[64];
	*master = *slave = -1;
	m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return -1;
	if (grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, name, sizeof(name)) != 0)
		goto fail;
	s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0)
		goto fail;
	/* a non-root program must be able to open its own terminal again
	 * (/dev/tty, `tty`, ssh-style password prompts): it owns the slave */
	if (g_agent.is_root && uid != 0 && fchown(s, uid, (gid_t)-1) < 0)
		goto fail;
	struct termios t;
	if (tcgetattr(s, &t) == 0) {
		t.c_iflag |= IUTF8; /* line editing by characters, not bytes */
		tcsetattr(s, TCSANOW, &t);
	}
	if (pty_resize(m, rows, cols) < 0)
		goto fail;
	int fl = fcntl(m, F_GETFL);
	if (fl < 0 || fcntl(m, F_SETFL, fl | O_NONBLOCK) < 0)
		goto fail;
	*master = m;
	*slave = s;
	return 0;
fail:
	saved = errno;
	close_quietly(&s);
	close_quietly(&m);
	errno = saved;
	return -1;
}

int pty_resize(int master, unsigned rows, unsigned cols)
{
	struct winsize ws = { .ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols };
	/* the kernel sends SIGWINCH to the foreground process group */
	return ioctl(master, TIOCSWINSZ, &ws);
}

void pty_eof_note_input(struct pty_eof *pe, const uint8_t *p, size_t n, uint64_t now)
{
	if (n == 0)
		return;
	pe->last = p[n - 1];
	pe->have_last = 1;
	pe->active_at = now;
}

void pty_eof_note_output(struct pty_eof *pe, uint64_t now)
{
	pe->active_at = now;
}

/* Did the input so far end a line (or was there none)? */
static int line_ended(const struct pty_eof *pe, const struct termios *t)
{
	if (!pe->have_last)
		return 1;
	uint8_t c = pe->last;
	if (c == '\n' || (c == '\r' && (t->c_iflag & ICRNL) && !(t->c_iflag & IGNCR)))
		return 1;
	return (t->c_cc[VEOF] && c == t->c_cc[VEOF]) || (t->c_cc[VEOL] && c == t->c_cc[VEOL]) ||
	       (t->c_cc[VEOL2] && c == t->c_cc[VEOL2]);
}

int pty_eof_step(struct pty_eof *pe, int master, int slave, pid_t leader, uint64_t now)
{
	if (pe->left == 0) { /* not decided yet: is the program waiting for input? */
		if (now < pe->active_at + PTY_EOF_QUIET_MS) /* activity may postdate (now) */
			return 0;
		int queued = 0;
		struct termios t;
		if (ioctl(slave, FIONREAD, &queued) < 0 || tcgetattr(slave, &t) < 0)
			return -1;
		if (queued > 0)
			return 0;
		int canonical = (t.c_lflag & ICANON) != 0;
		if (canonical && tcgetpgrp(master) != leader)
			return 0;
		pe->c = t.c_cc[VEOF] ? t.c_cc[VEOF] : 4; /* ^D when disabled */
		pe->left = canonical && !line_ended(pe, &t) ? 2 : 1;
	}
	while (pe->left > 0) {
		ssize_t w = write(master, &pe->c, 1);
		if (w == 1) {
			pe->left--;
			continue;
		}
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			return 0;
		return -1;
	}
	return 1;
}
