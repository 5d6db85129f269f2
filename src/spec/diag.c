/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Problems found in a spec are collected, not returned one at a time, so
 * that a user fixes a file in one pass.  They are reported sorted by
 * position, as "FILE:LINE:COL: PATH: message", one per line.
 */
#include "spec/spec_internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void spec_oom(struct spec_ctx *c)
{
	c->oom = true;
}

char *spec_strdup(struct spec_ctx *c, const char *s)
{
	char *d = strdup(s);
	if (!d)
		spec_oom(c);
	return d;
}

void spec_diag(struct spec_ctx *c, struct vb_spec_pos pos, const char *path, const char *fmt, ...)
{
	char msg[512], line[SPEC_PATH_MAX + 520];
	va_list ap;

	for (size_t i = 0; !c->expanding && i < c->n_unexpanded; i++)
		if (c->unexpanded[i].line == pos.line && c->unexpanded[i].col == pos.col)
			return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (path && *path)
		snprintf(line, sizeof(line), "%s: %s", path, msg);
	else
		snprintf(line, sizeof(line), "%s", msg);
	/* The same problem can be met twice (alias copies): say it once. */
	for (size_t i = 0; i < c->n_diags; i++)
		if (c->diags[i].pos.line == pos.line && c->diags[i].pos.col == pos.col &&
		    strcmp(c->diags[i].text, line) == 0)
			return;
	if (c->n_diags == SPEC_MAX_DIAGS) {
		c->n_more++;
		return;
	}
	char *text = strdup(line);
	if (!text) {
		spec_oom(c);
		return;
	}
	c->diags[c->n_diags++] = (struct diag){ .pos = pos, .seq = c->seq++, .text = text };
}

static int cmp_diag(const void *a, const void *b)
{
	const struct diag *x = a, *y = b;
	if (x->pos.line != y->pos.line)
		return x->pos.line < y->pos.line ? -1 : 1;
	if (x->pos.col != y->pos.col)
		return x->pos.col < y->pos.col ? -1 : 1;
	return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

/* Put every problem into (err), as many whole lines as fit in its buffer.
 * Returns -1 when there was any problem, 0 otherwise. */
int spec_diag_finish(struct spec_ctx *c, vb_error *err)
{
	if (c->oom)
		return vb_error_set(err, VB_E_RUNTIME, "%s: out of memory", c->file);
	if (!c->n_diags)
		return 0;
	qsort(c->diags, c->n_diags, sizeof(c->diags[0]), cmp_diag);

	char buf[sizeof(err->msg)];
	size_t used = 0, shown = 0;
	const size_t reserve = 40; /* room for the "(N more ...)" line */
	for (size_t i = 0; i < c->n_diags; i++) {
		char line[sizeof(buf)];
		const struct diag *d = &c->diags[i];
		if (d->pos.line)
			snprintf(line, sizeof(line), "%s:%u:%u: %s", c->file, d->pos.line,
				 d->pos.col, d->text);
		else
			snprintf(line, sizeof(line), "%s: %s", c->file, d->text);
		size_t len = strlen(line), sep = used ? 1 : 0;
		bool more_after = i + 1 < c->n_diags || c->n_more;
		size_t limit = sizeof(buf) - 1 - (more_after ? reserve : 0);
		if (used + sep + len > limit) {
			if (shown)
				break;
			len = limit - used - sep; /* a lone long line is cut, not dropped */
		}
		if (sep)
			buf[used++] = '\n';
		memcpy(buf + used, line, len);
		used += len;
		buf[used] = '\0';
		shown++;
	}
	size_t hidden = c->n_diags - shown + c->n_more;
	if (hidden)
		snprintf(buf + used, sizeof(buf) - used, "\n(%zu more problem%s not shown)", hidden,
			 hidden == 1 ? "" : "s");
	return vb_error_set(err, VB_E_USAGE, "%s", buf);
}

void spec_diag_free(struct spec_ctx *c)
{
	for (size_t i = 0; i < c->n_diags; i++)
		free(c->diags[i].text);
	c->n_diags = 0;
}

/* User text quoted in a message: at most ~40 characters, control
 * characters escaped, so a message stays one readable line. */
const char *spec_clip(const char *s, char *buf, size_t size)
{
	size_t o = 0;
	if (!s)
		s = "";
	for (size_t i = 0; s[i] && o + 5 < size; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (o >= 40 && (ch & 0xC0) != 0x80) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (ch == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else if (ch < 0x20 || ch == 0x7f) {
			buf[o++] = '?';
		} else {
			buf[o++] = (char)ch;
		}
	}
	buf[o] = '\0';
	return buf;
}

void spec_path(char *out, const char *parent, const char *field)
{
	char tmp[SPEC_PATH_MAX];
	if (parent && *parent)
		snprintf(tmp, sizeof(tmp), "%s.%s", parent, field);
	else
		snprintf(tmp, sizeof(tmp), "%s", field);
	memcpy(out, tmp, sizeof(tmp));
}

void spec_path_index(char *out, const char *parent, size_t i)
{
	char tmp[SPEC_PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s[%zu]", parent, i);
	memcpy(out, tmp, sizeof(tmp));
}

unsigned vb_spec_edit_distance(const char *a, const char *b)
{
	enum { MAXLEN = 64 };
	size_t n = strlen(a), m = strlen(b);
	if (n > MAXLEN || m > MAXLEN)
		return 255;
	unsigned d[MAXLEN + 1][MAXLEN + 1];
	for (size_t i = 0; i <= n; i++)
		d[i][0] = (unsigned)i;
	for (size_t j = 0; j <= m; j++)
		d[0][j] = (unsigned)j;
	for (size_t i = 1; i <= n; i++) {
		for (size_t j = 1; j <= m; j++) {
			unsigned cost = a[i - 1] != b[j - 1];
			unsigned v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			/* A swap of two neighbours counts as one edit. */
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[n][m] > 255 ? 255 : d[n][m];
}

const char *vb_spec_suggest(const char *word, const char *const *candidates)
{
	const char *best = NULL;
	unsigned best_d = 255;
	if (!word || !*word)
		return NULL;
	for (size_t i = 0; candidates[i]; i++)
		if (strcasecmp(word, candidates[i]) == 0)
			return candidates[i];
	/* Short words are close to everything: demand more of them. */
	size_t len = strlen(word);
	unsigned limit = len <= 2 ? 0 : len <= 4 ? 1 : 2;
	if (!limit)
		return NULL;
	for (size_t i = 0; candidates[i]; i++) {
		unsigned d = vb_spec_edit_distance(word, candidates[i]);
		if (d <= limit && d < best_d) {
			best = candidates[i];
			best_d = d;
		}
	}
	return best;
}
