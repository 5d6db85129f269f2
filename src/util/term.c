/* SPDX-License-Identifier: Apache-2.0 */
/* The terminal boundary's one sanitizer (policy in term.h). */
#include "util/term.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int vb_utf8_seq(const uint8_t *s, size_t n)
{
	uint8_t c = s[0];
	int len;
	uint32_t min, cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2, min = 0x80, cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3, min = 0x800, cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4, min = 0x10000, cp = c & 0x07;
	} else {
		return 0;
	}
	for (int i = 1; i < len; i++) {
		if ((size_t)i >= n)
			return -1;
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
		/* reject overlongs and out-of-range as early as possible */
		if (i == 1 && len == 3 && c == 0xe0 && s[1] < 0xa0)
			return 0;
		if (i == 1 && len == 3 && c == 0xed && s[1] >= 0xa0)
			return 0; /* surrogates */
		if (i == 1 && len == 4 && c == 0xf0 && s[1] < 0x90)
			return 0;
		if (i == 1 && len == 4 && c == 0xf4 && s[1] >= 0x90)
			return 0;
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static uint32_t decode(const uint8_t *u, int n)
{
	static const uint8_t lead_mask[] = { 0, 0x7f, 0x1f, 0x0f, 0x07 };
	uint32_t cp = u[0] & lead_mask[n];
	for (int i = 1; i < n; i++)
		cp = (cp << 6) | (u[i] & 0x3f);
	return cp;
}

/* Code points a terminal acts on, or that reorder what it shows. */
static int is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069);
}

/* The character at u[0] (len > 0 bytes available): the bytes it takes
 * (returned, >= 1) and what to show for it (rep, *rn bytes, at most 6). */
static size_t one(const uint8_t *u, size_t len, unsigned flags, char rep[8], size_t *rn)
{
	int n = vb_utf8_seq(u, len);
	if (n <= 0) { /* not UTF-8: one '?' per byte */
		rep[0] = '?';
		*rn = 1;
		return 1;
	}
	uint32_t cp = decode(u, n);
	if (!is_control(cp)) {
		memcpy(rep, u, (size_t)n);
		*rn = (size_t)n;
		return (size_t)n;
	}
	int space = cp == '\n' || cp == '\t' || cp == '\r';
	if ((flags & (VB_TERM_LINES | VB_TERM_JSON)) && (cp == '\n' || cp == '\t')) {
		rep[0] = (char)cp;
		*rn = 1;
	} else if ((flags & VB_TERM_JSON) && cp == '\r') {
		rep[0] = '\r'; /* JSON whitespace: inside strings jansson escapes it */
		*rn = 1;
	} else if (flags & VB_TERM_JSON) {
		snprintf(rep, 8, "\\u%04x", (unsigned)cp);
		*rn = 6;
	} else {
		rep[0] = space && !(flags & VB_TERM_LINES) ? ' ' : '?';
		*rn = 1;
	}
	return (size_t)n;
}

const char *vb_term_copyn(char *out, size_t size, const char *s, size_t len, unsigned flags)
{
	if (!size)
		return out;
	const uint8_t *u = (const uint8_t *)(s ? s : "");
	len = strnlen((const char *)u, len);
	size_t o = 0;
	char rep[8];
	size_t rn;
	for (size_t i = 0; i < len;) {
		size_t took = one(u + i, len - i, flags, rep, &rn);
		if (o + rn >= size)
			break;
		memcpy(out + o, rep, rn);
		o += rn;
		i += took;
	}
	out[o] = '\0';
	return out;
}

const char *vb_term_copy(char *out, size_t size, const char *s, unsigned flags)
{
	return vb_term_copyn(out, size, s, SIZE_MAX, flags);
}

int vb_term_write(FILE *out, const char *s, size_t len, unsigned flags)
{
	const uint8_t *u = (const uint8_t *)s;
	char rep[8];
	size_t rn;
	for (size_t i = 0; i < len;) {
		/* runs of plain printable ASCII in one go */
		size_t run = 0;
		while (i + run < len && u[i + run] >= 0x20 && u[i + run] < 0x7f)
			run++;
		if (run) {
			fwrite(u + i, 1, run, out);
			i += run;
			continue;
		}
		i += one(u + i, len - i, flags, rep, &rn);
		fwrite(rep, 1, rn, out);
	}
	return ferror(out) ? -1 : 0;
}

int vb_term_puts(FILE *out, const char *s, unsigned flags)
{
	return vb_term_write(out, s ? s : "", s ? strlen(s) : 0, flags);
}

int vb_term_printf(FILE *out, unsigned flags, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	int rc = vb_term_write(out, s, (size_t)n, flags);
	free(s);
	return rc;
}
