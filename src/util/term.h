/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The terminal boundary: every string VoidBox formats for a person (spec
 * values, paths, error messages, names from run records, guest text it
 * quotes) goes through here on its way to stdout or stderr, so that no
 * spec, file name or guest can drive the user's terminal (OSC 52 writes
 * the clipboard, CSI clears the screen, a title sequence lies about what
 * runs).  The output of a program run by `exec`/`shell` is the user's
 * data and is not filtered, as with ssh.
 *
 * Policy (docs/cli.md, "Terminal safety"): valid UTF-8 passes, except
 *  - C0 controls (0x00-0x1f), DEL (0x7f) and C1 controls (U+0080-U+009F),
 *  - the bidirectional overrides and isolates (U+202A-U+202E,
 *    U+2066-U+2069), which reorder what is shown,
 *  - every byte that is not part of valid UTF-8 (a raw 0x9b is a C1 CSI
 *    to some terminals),
 * each of which becomes one '?'.  With VB_TERM_LINES, '\n' and '\t' stay
 * (multi-line messages); without it (one line: a table cell, a progress
 * line) '\n', '\r' and '\t' become a space.  With VB_TERM_JSON the text is
 * JSON that jansson wrote: C0 is already escaped there, and DEL, C1 and
 * the bidi controls become their \u escapes instead, so the value is kept.
 */
#ifndef VB_TERM_H
#define VB_TERM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum {
	VB_TERM_LINES = 1 << 0, /* keep '\n' and '\t' */
	VB_TERM_JSON = 1 << 1,	/* (s) is JSON text: escape, do not replace */
};

/* Length of the UTF-8 sequence at s[0] (n bytes available) if complete and
 * valid (1 for ASCII); 0 if invalid; -1 if valid so far but cut by n. */
int vb_utf8_seq(const uint8_t *s, size_t n);

/* Copy the first (len) bytes of (s) (stopping at a NUL) into (out) of
 * (size) bytes, made safe for a terminal as above, cut at a character
 * boundary when it does not fit; always NUL-terminated when size > 0.
 * NULL (s) copies as "".  Returns (out), to be used as a printf argument. */
const char *vb_term_copyn(char *out, size_t size, const char *s, size_t len, unsigned flags);
/* The same for a NUL-terminated (s). */
const char *vb_term_copy(char *out, size_t size, const char *s, unsigned flags);

/* Write (len) bytes of (s) (NULs included, shown as '?') to (out), made
 * safe, of any length.  Returns 0, or -1 when (out) has an error. */
int vb_term_write(FILE *out, const char *s, size_t len, unsigned flags);
/* The same for a NUL-terminated (s). */
int vb_term_puts(FILE *out, const char *s, unsigned flags);
/* printf, then vb_term_write of the whole text with (flags): for text that
 * holds no escape sequences of VoidBox's own. */
int vb_term_printf(FILE *out, unsigned flags, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
