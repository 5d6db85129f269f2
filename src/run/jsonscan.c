/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Is this file one JSON value?  A streaming syntax check (RFC 8259, any
 * value at the top, as jansson's JSON_DECODE_ANY) that holds a bit per
 * nesting level and a 64 KiB buffer, whatever the file's size: a fan-out
 * box's large output is embedded in the stage's array as JSON when it is
 * JSON, without building it in memory.  It refuses what jansson refuses by
 * default (invalid UTF-8, raw control characters in strings, "\u0000",
 * lone surrogates, nesting deeper than 2048) so that the array it goes
 * into stays readable by the same parsers.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run/engine.h"
#include "util/util.h"

#define MAX_DEPTH 2048

enum want { W_VALUE, W_VALUE_OR_CLOSE, W_KEY, W_KEY_OR_CLOSE, W_COLON, W_AFTER };
enum lex {
	L_NONE,
	L_STR, L_ESC, L_HEX, L_UTF8,
	L_MINUS, L_ZERO, L_INT, L_DOT, L_FRAC, L_E, L_ESIGN, L_EXP,
	L_WORD,
};

struct scan {
	enum want want;
	enum lex lex;
	int key;                /* the string being read is an object key */
	unsigned depth;
	uint8_t objects[MAX_DEPTH / 8]; /* bit set: that level is an object */
	uint32_t hex;           /* \u escape: value so far */
	int hex_n;
	int high;               /* a high surrogate waits for its low half */
	int utf8_left;          /* continuation bytes still due */
	uint8_t utf8_lo, utf8_hi; /* range of the next continuation byte */
	const char *word;       /* true, false, null: the rest to match */
};

static int in_object(const struct scan *s)
{
	return s->depth && (s->objects[(s->depth - 1) / 8] >> ((s->depth - 1) % 8)) & 1;
}

/* A value (of any kind) ended. */
static void value_done(struct scan *s)
{
	s->want = W_AFTER;
}

static int is_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Between tokens: whitespace, structure, or the start of a token. */
static int structural(struct scan *s, uint8_t c)
{
	if (is_ws(c))
		return 0;
	switch (s->want) {
	case W_COLON:
		if (c != ':')
			return -1;
		s->want = W_VALUE;
		return 0;
	case W_AFTER:
		if (!s->depth)
			return -1; /* one value, then only whitespace */
		if (c == ',') {
			s->want = in_object(s) ? W_KEY : W_VALUE;
			return 0;
		}
		if (c == (in_object(s) ? '}' : ']')) {
			s->depth--;
			value_done(s);
			return 0;
		}
		return -1;
	case W_KEY_OR_CLOSE:
		if (c == '}') {
			s->depth--;
			value_done(s);
			return 0;
		}
		/* fall through */
	case W_KEY:
		if (c != '"')
			return -1;
		s->lex = L_STR;
		s->key = 1;
		return 0;
	case W_VALUE_OR_CLOSE:
		if (c == ']') {
			s->depth--;
			value_done(s);
			return 0;
		}
		/* fall through */
	case W_VALUE:
		break;
	}
	switch (c) {
	case '{':
	case '[':
		if (s->depth >= MAX_DEPTH)
			return -1;
		if (c == '{')
			s->objects[s->depth / 8] |= (uint8_t)(1u << (s->depth % 8));
		else
			s->objects[s->depth / 8] &= (uint8_t)~(1u << (s->depth % 8));
		s->depth++;
		s->want = c == '{' ? W_KEY_OR_CLOSE : W_VALUE_OR_CLOSE;
		return 0;
	case '"':
		s->lex = L_STR;
		s->key = 0;
		return 0;
	case '-':
		s->lex = L_MINUS;
		return 0;
	case '0':
		s->lex = L_ZERO;
		return 0;
	case 't':
		s->word = "rue";
		s->lex = L_WORD;
		return 0;
	case 'f':
		s->word = "alse";
		s->lex = L_WORD;
		return 0;
	case 'n':
		s->word = "ull";
		s->lex = L_WORD;
		return 0;
	default:
		if (c >= '1' && c <= '9') {
			s->lex = L_INT;
			return 0;
		}
		return -1;
	}
}

static int hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One byte inside a string. */
static int string_byte(struct scan *s, uint8_t c)
{
	switch (s->lex) {
	case L_UTF8:
		if (c < s->utf8_lo || c > s->utf8_hi)
			return -1;
		s->utf8_lo = 0x80;
		s->utf8_hi = 0xBF;
		if (--s->utf8_left == 0)
			s->lex = L_STR;
		return 0;
	case L_ESC:
		if (c == 'u') {
			s->lex = L_HEX;
			s->hex = 0;
			s->hex_n = 0;
			return 0;
		}
		if (s->high || !c || !strchr("\"\\/bfnrt", c))
			return -1;
		s->lex = L_STR;
		return 0;
	case L_HEX: {
		int v = hexval(c);
		if (v < 0)
			return -1;
		s->hex = s->hex << 4 | (uint32_t)v;
		if (++s->hex_n < 4)
			return 0;
		s->lex = L_STR;
		if (s->hex >= 0xDC00 && s->hex <= 0xDFFF) {
			if (!s->high)
				return -1; /* a low half alone */
			s->high = 0;
		} else if (s->high) {
			return -1; /* a high half without its low one */
		} else if (s->hex >= 0xD800 && s->hex <= 0xDBFF) {
			s->high = 1;
		} else if (s->hex == 0) {
			return -1; /* jansson refuses NUL by default */
		}
		return 0;
	}
	default: /* L_STR */
		if (s->high && c != '\\')
			return -1;
		if (c == '"') {
			s->lex = L_NONE;
			if (s->key)
				s->want = W_COLON;
			else
				value_done(s);
			return 0;
		}
		if (c == '\\') {
			s->lex = L_ESC;
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c < 0x80)
			return 0;
		/* strict UTF-8: no overlongs, surrogates or code points past U+10FFFF */
		s->utf8_lo = 0x80;
		s->utf8_hi = 0xBF;
		if (c >= 0xC2 && c <= 0xDF) {
			s->utf8_left = 1;
		} else if (c >= 0xE0 && c <= 0xEF) {
			s->utf8_left = 2;
			if (c == 0xE0)
				s->utf8_lo = 0xA0;
			if (c == 0xED)
				s->utf8_hi = 0x9F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			s->utf8_left = 3;
			if (c == 0xF0)
				s->utf8_lo = 0x90;
			if (c == 0xF4)
				s->utf8_hi = 0x8F;
		} else {
			return -1;
		}
		s->lex = L_UTF8;
		return 0;
	}
}

/* One byte of a number; 1 when (c) ended it (and is still to be read). */
static int number_byte(struct scan *s, uint8_t c)
{
	int digit = c >= '0' && c <= '9';
	switch (s->lex) {
	case L_MINUS:
		if (!digit)
			return -1;
		s->lex = c == '0' ? L_ZERO : L_INT;
		return 0;
	case L_ZERO:
	case L_INT:
		if (digit && s->lex == L_INT)
			return 0;
		if (c == '.') {
			s->lex = L_DOT;
			return 0;
		}
		if (c == 'e' || c == 'E') {
			s->lex = L_E;
			return 0;
		}
		break;
	case L_DOT:
		if (!digit)
			return -1;
		s->lex = L_FRAC;
		return 0;
	case L_FRAC:
		if (digit)
			return 0;
		if (c == 'e' || c == 'E') {
			s->lex = L_E;
			return 0;
		}
		break;
	case L_E:
		if (c == '+' || c == '-') {
			s->lex = L_ESIGN;
			return 0;
		}
		/* fall through */
	case L_ESIGN:
		if (!digit)
			return -1;
		s->lex = L_EXP;
		return 0;
	case L_EXP:
		if (digit)
			return 0;
		break;
	default:
		return -1;
	}
	s->lex = L_NONE;
	value_done(s);
	return 1;
}

static int feed(struct scan *s, uint8_t c)
{
	switch (s->lex) {
	case L_NONE:
		return structural(s, c);
	case L_STR:
	case L_ESC:
	case L_HEX:
	case L_UTF8:
		return string_byte(s, c);
	case L_WORD:
		if (c != (uint8_t)*s->word)
			return -1;
		if (!*++s->word) {
			s->lex = L_NONE;
			value_done(s);
		}
		return 0;
	default: {
		int rc = number_byte(s, c);
		return rc > 0 ? structural(s, c) : rc;
	}
	}
}

int vb_run_json_file_ok(const char *path)
{
	_cleanup_free_ uint8_t *buf = malloc(64 << 10);
	_cleanup_free_ struct scan *s = calloc(1, sizeof(*s));
	int fd = path ? open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
	if (!buf || !s || fd < 0) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	s->want = W_VALUE;
	int ok = 1;
	ssize_t n;
	while (ok && (n = vb_read_full(fd, buf, 64 << 10)) > 0)
		for (ssize_t i = 0; ok && i < n; i++)
			ok = feed(s, buf[i]) == 0;
	if (n < 0)
		ok = 0;
	close(fd);
	/* a number ends at the end of the text */
	if (ok && s->lex >= L_MINUS && s->lex <= L_EXP)
		ok = number_byte(s, ' ') == 1;
	return ok && s->lex == L_NONE && s->want == W_AFTER && s->depth == 0;
}
