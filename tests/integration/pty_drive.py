#!/usr/bin/env python3
"""Drive a program on a pseudo-terminal, as a person at a terminal would.

    STEPS='[...]' pty_drive.py SCREEN_LOG COMMAND [ARGS...]

runs COMMAND with a 120x40 terminal as its stdin, stdout and stderr, and
goes through the steps in order:

    {"wait": TEXT, "timeout": S}   until TEXT is on the screen (escape
                                   sequences and line breaks ignored)
    {"type": TEXT}                 typed, a character at a time
    {"sleep": S}                   reading what comes meanwhile
    {"signal": "TERM"}             sent to the program

then waits (60 s at most) for the program to exit.  Everything the terminal
showed goes to SCREEN_LOG.  Prints "exit CODE" and, as "termios LFLAG",
the terminal's local flags after the exit (a program that restored the
terminal leaves ICANON and ECHO on).  Exits 0, or 3 when a wait timed out or
the program did not exit (it is then killed).
"""
import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time

log, argv = sys.argv[1], sys.argv[2:]
steps = json.loads(os.environ.get("STEPS", "[]"))
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
screen = b""


def pump(seconds):
    """Read for (seconds); False once the terminal is closed."""
    global screen
    end = time.time() + seconds
    while time.time() < end:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:
            return False
        if not data:
            return False
        screen += data
        with open(log, "ab") as f:
            f.write(data)
    return True


def shown():
    text = re.sub(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-Z]|\x1b[=>78]",
                  b"", screen)
    return re.sub(rb"[\r\n]", b"", text)


ok = True
for step in steps:
    if "wait" in step:
        want = step["wait"].encode()
        end = time.time() + step.get("timeout", 60)
        alive = True
        while want not in shown():
            if time.time() > end or not alive:
                print("timed out waiting for %r" % step["wait"], file=sys.stderr)
                ok = False
                break
            alive = pump(0.3)
        if not ok:
            break
    elif "type" in step:
        for ch in step["type"]:
            os.write(fd, ch.encode())
            time.sleep(0.03)
    elif "sleep" in step:
        pump(step["sleep"])
    elif "signal" in step:
        os.kill(pid, getattr(signal, "SIG" + step["signal"]))

status = None
end = time.time() + 60
while time.time() < end:
    pump(0.3)
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        status = st
        break
if status is None:
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    print("the program did not exit", file=sys.stderr)
    ok = False
pump(0.3)
print("exit", os.waitstatus_to_exitcode(status))
try:
    print("termios", termios.tcgetattr(fd)[3])
except termios.error:
    print("termios unknown")
sys.exit(0 if ok else 3)
