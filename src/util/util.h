/* SPDX-License-Identifier: Apache-2.0 */
/* Small host-side helpers shared by every module of libvoidbox. */
#ifndef VB_UTIL_H
#define VB_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "voidbox/error.h"

/* Scope-bound resources: `_cleanup_free_ char *p = NULL;` */
static inline void vb_freep(void *p)
{
	free(*(void **)p);
}
static inline void vb_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
#define _cleanup_free_ __attribute__((cleanup(vb_freep)))
#define _cleanup_close_ __attribute__((cleanup(vb_closep)))

/* Move ownership out of a cleanup variable. */
#define vb_steal_ptr(p) ({ __typeof__(p) _t = (p); (p) = NULL; _t; })
#define vb_steal_fd(fd) ({ int _t = (fd); (fd) = -1; _t; })

/* Monotonic clock in milliseconds / nanoseconds. */
int64_t vb_now_ms(void);
int64_t vb_now_ns(void);

/* Fill (buf) with cryptographically random bytes. */
int vb_random(void *buf, size_t n, vb_error *err);
/* Random lowercase hex id of (2*nbytes) characters into (out). */
int vb_random_hex(char *out, size_t nbytes, vb_error *err);

/* Write all / read all, retrying on EINTR and short transfers.
 * vb_read_full returns the bytes read (< n only at EOF) or -1. */
int vb_write_full(int fd, const void *buf, size_t n);
ssize_t vb_read_full(int fd, void *buf, size_t n);

/* Replace (path) with (len) bytes of (data), mode (mode), whole or not at
 * all: written to a temporary file of its own beside it (unique per call,
 * so threads and processes writing the same path at once do not clash; the
 * last rename wins), then renamed over it.  -1 with errno set. */
/* A size from the environment variable (name): bytes, or with a K, M or G
 * suffix (binary).  Unset, empty, or what does not parse (a sign, junk,
 * an overflow) is (dflt): a typo never means "no bound". */
uint64_t vb_env_bytes(const char *name, uint64_t dflt);

/* Whether (n) bytes at (p) are all zero (a page of a RAM file, a chunk
 * that reads as a hole). */
int vb_is_zero(const void *p, size_t n);

int vb_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* mkdir -p with (mode) for the directories it creates. */
int vb_mkdir_p(const char *path, unsigned mode, vb_error *err);
/* rm -rf that never follows symlinks; missing path is not an error. */
int vb_rm_rf(const char *path);
/* Remove the entries of (dir) named (prefix)PID-... whose process PID is
 * gone: what a voidbox process killed before it could clean up left. */
void vb_sweep_dead_owners(const char *dir, const char *prefix);
/* Read a whole file (at most (max) bytes) into a NUL-terminated buffer. */
char *vb_read_file(const char *path, size_t max, size_t *len, vb_error *err);

/* ${XDG_CACHE_HOME:-~/.cache}/voidbox, ${XDG_STATE_HOME:-~/.local/state}/voidbox,
 * and the runtime root ${XDG_RUNTIME_DIR:-/tmp}/voidbox-UID (0700, checked to
 * be ours and not a symlink).  Return malloc'd strings. */
char *vb_cache_dir(vb_error *err);
char *vb_state_dir(vb_error *err);
char *vb_runtime_root(vb_error *err);

/* The first (or, with (last), the last) line of (text) that contains
 * (needle), from the needle to the end of the line, copied into (out) made
 * safe for a terminal by vb_term_copyn (it may come from a guest).  Returns 1 if found, else 0 and (out) is "". */
int vb_line_with(const char *text, const char *needle, int last, char *out, size_t n);

/* The start time of process (pid) in clock ticks since boot (field 22 of
 * /proc/PID/stat), or -1 if unknown. */
long long vb_pid_start(long pid);
/* 1 if process (pid) exists and is not a zombie, and, when (start) >= 0, its
 * start time is (start) (a reused pid is another process). */
int vb_pid_alive(long pid, long long start);
/* Send (sig) to (pid) if vb_pid_alive(pid, start), then wait up to
 * (timeout_ms) for it to go.  0: gone (or was), 1: still there, -1: the
 * signal could not be sent (err). */
int vb_pid_terminate(long pid, long long start, int sig, int timeout_ms, vb_error *err);

/* printf into a new string; NULL on allocation failure. */
char *vb_strfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The data directory (guest/kernel/build.sh and its config fragment live
 * below it): $VOIDBOX_DATADIR if set; else, found from the running binary,
 * BINDIR/../share/voidbox (an installed tree, wherever it was moved) or
 * BINDIR/.. (the source tree, for build/voidbox); else the install prefix
 * compiled in (VB_DATADIR).  The first two must hold guest/kernel/build.sh;
 * the last is returned even when it does not, so errors can name it. */
const char *vb_datadir(void);

#endif
