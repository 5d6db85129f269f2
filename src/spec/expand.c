/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Parameters: ${VAR} in spec values, expanded from the environment of the
 * process that loads the spec, after parsing and before the schema checks.
 * Expanding the document tree (not the text) keeps every position right and
 * lets a plain value become a number (`memory_mb: ${MEM:-512}`).  Keys are
 * never expanded.  `$$` is a literal `$`; a `$` before anything else stays
 * as written, so shell snippets with `$HOME` or `$1` pass through.
 */
#include "spec/spec_internal.h"

#include <stdlib.h>
#include <string.h>

/* Expanded text may grow a spec to at most this many bytes of values: an
 * environment variable repeated a million times must not eat the host. */
#define EXPAND_BUDGET ((size_t)16 << 20)

struct buf {
	char *s;
	size_t len, cap;
};

static int put(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *ns = realloc(b->s, cap);
		if (!ns)
			return -1;
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
	return 0;
}

static bool name_start(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
}

static bool name_char(char ch)
{
	return name_start(ch) || (ch >= '0' && ch <= '9');
}

/* The reference at s[i] ("${..."), at most (len) bytes: its value appended
 * to (b), (*end) past its closing brace.  0, or -1 with a problem reported
 * (or c->oom). */
static int reference(struct spec_ctx *c, const struct node *n, const char *path, size_t i,
		     size_t *end, struct buf *b)
{
	const char *s = n->str;
	size_t len = n->len, j = i + 2, name_len;
	char clip[64], name[SPEC_NAME_MAX + 1];
	while (j < len && name_char(s[j]))
		j++;
	name_len = j - (i + 2);
	if (!name_len || !name_start(s[i + 2]) || name_len > SPEC_NAME_MAX) {
		size_t show = len - i < 24 ? len - i : 24;
		memcpy(clip, s + i, show);
		clip[show] = '\0';
		spec_diag(c, n->pos, path,
			  "'%s' is not a variable reference: write ${NAME} (letters, digits, _), "
			  "or $$ for a literal $",
			  spec_clip(clip, name, sizeof(name)));
		return -1;
	}
	memcpy(name, s + i + 2, name_len);
	name[name_len] = '\0';
	const char *deflt = NULL;
	size_t deflt_len = 0;
	if (j + 1 < len && s[j] == ':' && s[j + 1] == '-') {
		deflt = s + j + 2;
		const char *close = memchr(deflt, '}', len - (j + 2));
		if (close)
			deflt_len = (size_t)(close - deflt);
		j = close ? (size_t)(close - s) : len;
		if (close && memmem(deflt, deflt_len, "${", 2)) {
			spec_diag(c, n->pos, path,
				  "${%s:-...}: a default cannot hold another ${...}", name);
			return -1;
		}
	}
	if (j >= len || s[j] != '}') {
		spec_diag(c, n->pos, path,
			  "'${%s%s': expected ${%s} or ${%s:-default} ($$ is a literal $)", name,
			  j < len ? "..." : "", name, name);
		return -1;
	}
	*end = j + 1;
	const char *val = getenv(name);
	if (deflt && (!val || !*val)) {
		val = deflt;
	} else if (!val) {
		spec_diag(c, n->pos, path,
			  "${%s} is not set (set %s, or write ${%s:-default}; $$ is a literal $)",
			  name, name, name);
		return -1;
	}
	size_t vlen = val == deflt ? deflt_len : strlen(val);
	if (put(b, val, vlen) < 0) {
		spec_oom(c);
		return -1;
	}
	return 0;
}

/* Expand one scalar in place.  (budget) counts the bytes added so far. */
static void expand_scalar(struct spec_ctx *c, struct node *n, const char *path, size_t *budget)
{
	if (!n->str || !memchr(n->str, '$', n->len))
		return;
	const char *s = n->str;
	struct buf b = { 0 };
	bool bad = false, referenced = false;
	for (size_t i = 0; i < n->len && !bad;) {
		size_t run = i;
		while (run < n->len && s[run] != '$')
			run++;
		if (put(&b, s + i, run - i) < 0)
			goto oom;
		i = run;
		if (i >= n->len)
			break;
		if (i + 1 < n->len && s[i + 1] == '$') { /* $$: a literal $ */
			if (put(&b, "$", 1) < 0)
				goto oom;
			i += 2;
		} else if (i + 1 < n->len && s[i + 1] == '{') {
			size_t end = i;
			if (reference(c, n, path, i, &end, &b) < 0)
				bad = true;
			referenced = true;
			i = end;
		} else {
			if (put(&b, "$", 1) < 0)
				goto oom;
			i++;
		}
	}
	if (bad || c->oom) {
		if (c->n_unexpanded < SPEC_MAX_DIAGS)
			c->unexpanded[c->n_unexpanded++] = n->pos;
		free(b.s);
		return;
	}
	if (b.len > n->len && (*budget += b.len - n->len) > EXPAND_BUDGET) {
		spec_diag(c, n->pos, path, "expanding variables makes the spec larger than %zu MiB",
			  EXPAND_BUDGET >> 20);
		free(b.s);
		return;
	}
	if (!b.s && put(&b, "", 0) < 0)
		goto oom;
	free(n->str);
	n->str = b.s;
	n->len = b.len;
	/* An unquoted value that expanded to nothing is an empty string, not
	 * YAML's null: `prompt: ${EMPTY}` must not mean "no prompt". */
	if (referenced && !b.len)
		n->plain = false;
	return;
oom:
	free(b.s);
	spec_oom(c);
}

static void walk(struct spec_ctx *c, struct node *n, const char *path, size_t *budget,
		 unsigned depth)
{
	if (!n || c->oom || depth > SPEC_MAX_DEPTH + 1)
		return;
	char p[SPEC_PATH_MAX];
	switch (n->type) {
	case NODE_SCALAR:
		expand_scalar(c, n, path, budget);
		break;
	case NODE_MAP:
		for (size_t i = 0; i < n->n; i++) {
			const struct node *k = n->keys ? n->keys[i] : NULL;
			spec_path(p, path, k && k->type == NODE_SCALAR && k->str ? k->str : "?");
			walk(c, n->items[i], p, budget, depth + 1);
		}
		break;
	case NODE_SEQ:
		for (size_t i = 0; i < n->n; i++) {
			spec_path_index(p, path, i);
			walk(c, n->items[i], p, budget, depth + 1);
		}
		break;
	}
}

void spec_expand(struct spec_ctx *c, struct node *root)
{
	size_t budget = 0;
	c->expanding = true;
	walk(c, root, "", &budget, 0);
	c->expanding = false;
}
