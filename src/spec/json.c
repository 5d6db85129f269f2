/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The JSON front end.  jansson decides whether the text is JSON and, if not,
 * says where (its messages are precise).  jansson keeps no positions for
 * values, so a second, small scanner then builds our document tree with a
 * line:col for every key and value.  The scanner only ever sees text that
 * jansson accepted, yet it checks everything itself: it must stay safe even
 * if the two were to disagree.  (libyaml could read most JSON too, but not
 * all of it: surrogate-pair escapes and some tab placements fail there.)
 */
#include "spec/spec_internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct scan {
	struct spec_ctx *c;
	const char *s;
	size_t len, i;
	struct vb_spec_pos pos;
};

static void adv(struct scan *t)
{
	unsigned char ch = (unsigned char)t->s[t->i++];
	if (ch == '\n') {
		t->pos.line++;
		t->pos.col = 1;
	} else if ((ch & 0xC0) != 0x80) {
		t->pos.col++;
	}
}

static void skip_ws(struct scan *t)
{
	while (t->i < t->len && strchr(" \t\r\n", t->s[t->i]) && t->s[t->i])
		adv(t);
}

static int bad(struct scan *t, const char *what)
{
	spec_diag(t->c, t->pos, "", "JSON syntax error: %s", what);
	return -1;
}

static int hex4(struct scan *t, unsigned *out)
{
	unsigned v = 0;
	for (int k = 0; k < 4; k++) {
		if (t->i >= t->len)
			return -1;
		char ch = t->s[t->i];
		v <<= 4;
		if (ch >= '0' && ch <= '9')
			v |= (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v |= (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			v |= (unsigned)(ch - 'A' + 10);
		else
			return -1;
		adv(t);
	}
	*out = v;
	return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* A string starting at the opening quote.  Decoded text never grows: an
 * escape of 6 or 12 characters yields at most 3 or 4 bytes. */
static struct node *scan_string(struct scan *t)
{
	struct node *n = spec_node_new(t->c, NODE_SCALAR, t->pos);
	if (!n)
		return NULL;
	adv(t); /* " */
	size_t start = t->i, end = start;
	while (end < t->len && t->s[end] != '"') {
		if (t->s[end] == '\\')
			end++;
		end++;
	}
	if (end >= t->len) {
		bad(t, "unterminated string");
		goto fail;
	}
	n->str = malloc(end - start + 1);
	if (!n->str) {
		spec_oom(t->c);
		goto fail;
	}
	size_t o = 0;
	while (t->i < end) {
		char ch = t->s[t->i];
		if (ch != '\\') {
			n->str[o++] = ch;
			adv(t);
			continue;
		}
		adv(t);
		ch = t->s[t->i];
		adv(t);
		switch (ch) {
		case '"':
		case '\\':
		case '/':
			n->str[o++] = ch;
			continue;
		case 'b':
			n->str[o++] = '\b';
			continue;
		case 'f':
			n->str[o++] = '\f';
			continue;
		case 'n':
			n->str[o++] = '\n';
			continue;
		case 'r':
			n->str[o++] = '\r';
			continue;
		case 't':
			n->str[o++] = '\t';
			continue;
		default:
			break;
		}
		unsigned cp, lo;
		if (ch != 'u' || hex4(t, &cp) < 0) {
			bad(t, "invalid escape in string");
			goto fail;
		}
		if (cp >= 0xD800 && cp <= 0xDBFF) {
			if (t->i + 6 > end || t->s[t->i] != '\\' || t->s[t->i + 1] != 'u') {
				bad(t, "lone surrogate in string");
				goto fail;
			}
			adv(t);
			adv(t);
			if (hex4(t, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF) {
				bad(t, "invalid surrogate pair in string");
				goto fail;
			}
			cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
		} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
			bad(t, "lone surrogate in string");
			goto fail;
		}
		o += put_utf8(n->str + o, cp);
	}
	n->str[o] = '\0';
	n->len = o;
	adv(t); /* " */
	return n;
fail:
	spec_node_free(n);
	return NULL;
}

static struct node *scan_value(struct scan *t, unsigned depth);

static struct node *scan_container(struct scan *t, unsigned depth, bool is_map)
{
	if (depth >= SPEC_MAX_DEPTH) {
		spec_diag(t->c, t->pos, "", "nesting deeper than %d levels", SPEC_MAX_DEPTH);
		return NULL;
	}
	struct node *n = spec_node_new(t->c, is_map ? NODE_MAP : NODE_SEQ, t->pos);
	if (!n)
		return NULL;
	char close = is_map ? '}' : ']';
	adv(t);
	skip_ws(t);
	if (t->i < t->len && t->s[t->i] == close) {
		adv(t);
		return n;
	}
	for (;;) {
		skip_ws(t);
		if (is_map) {
			if (t->i >= t->len || t->s[t->i] != '"') {
				bad(t, "expected a string key");
				goto fail;
			}
			struct node *k = scan_string(t);
			if (!k || spec_node_add(t->c, n, k) < 0)
				goto fail;
			skip_ws(t);
			if (t->i >= t->len || t->s[t->i] != ':') {
				bad(t, "expected ':'");
				goto fail;
			}
			adv(t);
		}
		struct node *v = scan_value(t, depth + 1);
		if (!v || spec_node_add(t->c, n, v) < 0)
			goto fail;
		skip_ws(t);
		if (t->i < t->len && t->s[t->i] == ',') {
			adv(t);
			continue;
		}
		if (t->i < t->len && t->s[t->i] == close) {
			adv(t);
			return n;
		}
		bad(t, is_map ? "expected ',' or '}'" : "expected ',' or ']'");
		goto fail;
	}
fail:
	spec_node_free(n);
	return NULL;
}

static struct node *scan_value(struct scan *t, unsigned depth)
{
	skip_ws(t);
	if (t->i >= t->len) {
		bad(t, "unexpected end of text");
		return NULL;
	}
	char ch = t->s[t->i];
	if (ch == '{' || ch == '[')
		return scan_container(t, depth, ch == '{');
	if (ch == '"')
		return scan_string(t);
	/* Numbers, true, false, null: kept as plain text, typed on use. */
	size_t start = t->i;
	struct vb_spec_pos pos = t->pos;
	while (t->i < t->len && strchr("+-.0123456789eEtruefalsn", t->s[t->i]) && t->s[t->i])
		adv(t);
	if (t->i == start) {
		bad(t, "unexpected character");
		return NULL;
	}
	struct node *n = spec_node_new(t->c, NODE_SCALAR, pos);
	if (!n)
		return NULL;
	n->len = t->i - start;
	n->str = malloc(n->len + 1);
	if (!n->str) {
		spec_oom(t->c);
		spec_node_free(n);
		return NULL;
	}
	memcpy(n->str, t->s + start, n->len);
	n->str[n->len] = '\0';
	n->plain = true;
	return n;
}

int spec_parse_json(struct spec_ctx *c, const char *text, size_t len, struct node **out)
{
	json_error_t jerr;
	*out = NULL;
	/* Flags 0: the top level must be an object or array, NUL is refused. */
	json_t *j = json_loadb(text, len, 0, &jerr);
	if (!j) {
		struct vb_spec_pos pos = { jerr.line > 0 ? (uint32_t)jerr.line : 1,
					   jerr.column > 0 ? (uint32_t)jerr.column : 1 };
		/* jansson points at the last character of the token it names
		 * ("... near 'TOKEN'"); point at its first one instead. */
		const char *near = strstr(jerr.text, "near '");
		size_t tl = near ? strlen(near + 6) : 0;
		if (tl > 1 && near[6 + tl - 1] == '\'' && !memchr(near + 6, '\n', tl - 1)) {
			uint32_t chars = 0;
			for (size_t i = 0; i + 1 < tl; i++)
				chars += ((unsigned char)near[6 + i] & 0xC0) != 0x80;
			if (chars && pos.col > chars)
				pos.col -= chars - 1;
		}
		spec_diag(c, pos, "", "JSON syntax error: %s", jerr.text);
		return -1;
	}
	json_decref(j);

	struct scan t = { .c = c, .s = text, .len = len, .pos = { 1, 1 } };
	struct node *root = scan_value(&t, 0);
	if (!root)
		return -1;
	skip_ws(&t);
	if (t.i < t.len) {
		spec_node_free(root);
		return bad(&t, "text after the end of the document");
	}
	*out = root;
	return 0;
}
