/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Type-checked readers for document values.  YAML decides types by how a
 * value is written: a quoted "300" is a string, a plain 300 an integer.
 * String fields accept any scalar (a plain 8080 is the string "8080"), as
 * that is what users mean; integer and boolean fields want the real thing.
 */
#include "spec/spec_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <strings.h>
#include <unistd.h>

enum plain_kind { PK_NULL, PK_BOOL, PK_INT, PK_FLOAT, PK_STRING };

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static bool is_float(const char *s)
{
	static const char *const special[] = { ".inf", "-.inf", "+.inf", ".Inf", "-.Inf",
					       ".INF", ".nan", ".NaN", ".NAN", NULL };
	for (size_t i = 0; special[i]; i++)
		if (strcmp(s, special[i]) == 0)
			return true;
	if (*s == '-' || *s == '+')
		s++;
	bool digits = false;
	while (*s >= '0' && *s <= '9') {
		s++;
		digits = true;
	}
	if (*s == '.') {
		s++;
		while (*s >= '0' && *s <= '9') {
			s++;
			digits = true;
		}
	}
	if (!digits)
		return false;
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '-' || *s == '+')
			s++;
		if (!all_digits(s))
			return false;
		return true;
	}
	return *s == '\0';
}

static enum plain_kind plain_kind(const struct node *v)
{
	const char *s = v->str;
	if (!v->plain)
		return PK_STRING;
	if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL"))
		return PK_NULL;
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE") || !strcmp(s, "false") ||
	    !strcmp(s, "False") || !strcmp(s, "FALSE"))
		return PK_BOOL;
	if (all_digits(s + (*s == '-' || *s == '+')))
		return PK_INT;
	if (is_float(s))
		return PK_FLOAT;
	return PK_STRING;
}

bool spec_is_null(const struct node *v)
{
	return v && v->type == NODE_SCALAR && plain_kind(v) == PK_NULL;
}

const char *spec_describe(const struct node *v)
{
	if (!v)
		return "nothing";
	if (v->type == NODE_MAP)
		return "a map";
	if (v->type == NODE_SEQ)
		return "a list";
	switch (plain_kind(v)) {
	case PK_NULL:
		return "null";
	case PK_BOOL:
		return "a boolean";
	case PK_INT:
		return "an integer";
	case PK_FLOAT:
		return "a number";
	default:
		return "a string";
	}
}

/* "a string 'abc'", "a list", "null": what was found, for messages. */
static const char *found(const struct node *v, char *buf, size_t size)
{
	char clip[64];
	if (v && v->type == NODE_SCALAR && plain_kind(v) != PK_NULL)
		snprintf(buf, size, "%s '%s'", spec_describe(v), spec_clip(v->str, clip, sizeof(clip)));
	else
		snprintf(buf, size, "%s", spec_describe(v));
	return buf;
}

int spec_get_map(struct spec_ctx *c, const struct node *v, const char *path)
{
	char f[96];
	if (!v || spec_is_null(v))
		return 0;
	if (v->type == NODE_MAP)
		return 1;
	spec_diag(c, v->pos, path, "expected a map, found %s", found(v, f, sizeof(f)));
	return -1;
}

int spec_get_seq(struct spec_ctx *c, const struct node *v, const char *path)
{
	char f[96];
	if (!v || spec_is_null(v))
		return 0;
	if (v->type == NODE_SEQ)
		return 1;
	spec_diag(c, v->pos, path, "expected a list, found %s", found(v, f, sizeof(f)));
	return -1;
}

int spec_get_str(struct spec_ctx *c, const struct node *v, const char *path, struct vb_spec_str *out)
{
	char f[96];
	if (!v || spec_is_null(v))
		return 0;
	if (v->type != NODE_SCALAR) {
		spec_diag(c, v->pos, path, "expected a string, found %s", found(v, f, sizeof(f)));
		return -1;
	}
	if (strlen(v->str) != v->len) {
		spec_diag(c, v->pos, path, "a string may not contain a NUL character");
		return -1;
	}
	char *s = spec_strdup(c, v->str);
	if (!s)
		return -1;
	free(out->s);
	out->s = s;
	out->pos = v->pos;
	return 1;
}

int spec_get_int(struct spec_ctx *c, const struct node *v, const char *path, int64_t min,
		 int64_t max, struct vb_spec_int *out)
{
	char f[96];
	if (!v || spec_is_null(v))
		return 0;
	if (v->type != NODE_SCALAR || plain_kind(v) != PK_INT) {
		spec_diag(c, v->pos, path, "expected an integer, found %s", found(v, f, sizeof(f)));
		return -1;
	}
	errno = 0;
	long long x = strtoll(v->str, NULL, 10);
	if (errno == ERANGE) {
		spec_diag(c, v->pos, path, "integer %s is out of range", spec_clip(v->str, f, sizeof(f)));
		return -1;
	}
	if (x < min) {
		spec_diag(c, v->pos, path, "must be at least %lld (got %lld)", (long long)min, x);
		return -1;
	}
	if (x > max) {
		spec_diag(c, v->pos, path, "must be at most %lld (got %lld)", (long long)max, x);
		return -1;
	}
	out->v = x;
	out->set = true;
	out->pos = v->pos;
	return 1;
}

int spec_get_bool(struct spec_ctx *c, const struct node *v, const char *path, struct vb_spec_bool *out)
{
	char f[96];
	if (!v || spec_is_null(v))
		return 0;
	if (v->type != NODE_SCALAR || plain_kind(v) != PK_BOOL) {
		spec_diag(c, v->pos, path, "expected true or false, found %s", found(v, f, sizeof(f)));
		return -1;
	}
	out->v = v->str[0] == 't' || v->str[0] == 'T';
	out->set = true;
	out->pos = v->pos;
	return 1;
}

static int get_enum(struct spec_ctx *c, const struct node *v, const char *path,
		    const char *const *names, struct vb_spec_str *text, int *out, bool nocase)
{
	int rc = spec_get_str(c, v, path, text);
	if (rc <= 0)
		return rc;
	for (int i = 0; names[i]; i++) {
		if (nocase ? strcasecmp(text->s, names[i]) == 0 : strcmp(text->s, names[i]) == 0) {
			*out = i;
			return 1;
		}
	}
	char list[256] = "", clip[64], hint[96] = "";
	size_t n = 0;
	while (names[n])
		n++;
	for (size_t i = 0; i < n; i++) {
		size_t used = strlen(list);
		snprintf(list + used, sizeof(list) - used, "%s%s",
			 i == 0 ? "" : (i + 1 == n ? " or " : ", "), names[i]);
	}
	const char *s = vb_spec_suggest(text->s, names);
	if (s)
		snprintf(hint, sizeof(hint), " (did you mean '%s'?)", s);
	spec_diag(c, v->pos, path, "unknown value '%s': expected %s%s",
		  spec_clip(text->s, clip, sizeof(clip)), list, hint);
	return -1;
}

int spec_get_enum(struct spec_ctx *c, const struct node *v, const char *path,
		  const char *const *names, struct vb_spec_str *text, int *out)
{
	return get_enum(c, v, path, names, text, out, false);
}

int spec_get_enum_nocase(struct spec_ctx *c, const struct node *v, const char *path,
			 const char *const *names, struct vb_spec_str *text, int *out)
{
	return get_enum(c, v, path, names, text, out, true);
}

int spec_get_strlist(struct spec_ctx *c, const struct node *v, const char *path,
		     struct vb_spec_strlist *out)
{
	int rc = spec_get_seq(c, v, path);
	if (rc <= 0)
		return rc;
	out->set = true;
	out->pos = v->pos;
	if (!v->n)
		return 1;
	out->v = calloc(v->n, sizeof(*out->v));
	if (!out->v) {
		spec_oom(c);
		return -1;
	}
	rc = 1;
	for (size_t i = 0; i < v->n; i++) {
		char p[SPEC_PATH_MAX];
		spec_path_index(p, path, i);
		const struct node *item = v->items[i];
		if (spec_is_null(item)) {
			spec_diag(c, item->pos, p, "expected a string, found null");
			rc = -1;
			continue;
		}
		if (spec_get_str(c, item, p, &out->v[out->n]) < 0) {
			rc = -1;
			continue;
		}
		out->n++;
	}
	return rc;
}

bool spec_env_name_ok(const char *s)
{
	if (!*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

int spec_get_env(struct spec_ctx *c, const struct node *v, const char *path, struct vb_spec_env *out)
{
	int rc = spec_get_map(c, v, path);
	if (rc <= 0)
		return rc;
	out->set = true;
	out->pos = v->pos;
	if (!v->n)
		return 1;
	out->v = calloc(v->n, sizeof(*out->v));
	if (!out->v) {
		spec_oom(c);
		return -1;
	}
	rc = 1;
	for (size_t i = 0; i < v->n; i++) {
		const struct node *k = v->keys[i], *val = v->items[i];
		char p[SPEC_PATH_MAX], clip[64];
		if (k->type != NODE_SCALAR || spec_map_get(v, k->str) != val)
			continue; /* reported as a bad or duplicate key */
		spec_path(p, path, spec_clip(k->str, clip, sizeof(clip)));
		struct vb_spec_kv *kv = &out->v[out->n];
		if (!spec_env_name_ok(k->str) || strlen(k->str) != k->len) {
			spec_diag(c, k->pos, path, "'%s' is not a valid environment variable name",
				  spec_clip(k->str, clip, sizeof(clip)));
			rc = -1;
			continue;
		}
		/* The key as written: a key spelt "null" is still a name here. */
		if (spec_get_str(c, val, p, &kv->value) < 0) {
			rc = -1;
			continue;
		}
		kv->key.s = spec_strdup(c, k->str);
		kv->key.pos = k->pos;
		if (!kv->key.s) {
			free(kv->value.s);
			kv->value.s = NULL;
			return -1;
		}
		if (!kv->value.s) {
			kv->value.s = spec_strdup(c, "");
			kv->value.pos = val->pos;
		}
		kv->from_host = !kv->value.s || !kv->value.s[0];
		kv->provider_credential = vb_spec_is_provider_credential(kv->key.s);
		out->n++;
	}
	return rc;
}

void spec_check_fields(struct spec_ctx *c, const struct node *map, const char *path,
		       const char *where, const char *const *allowed)
{
	if (!map || map->type != NODE_MAP)
		return;
	for (size_t i = 0; i < map->n; i++) {
		const struct node *k = map->keys[i];
		bool ok = false;
		if (k->type != NODE_SCALAR)
			continue;
		/* "x-" fields at the top level are for the user (anchors to
		 * share with aliases), as in Compose files. */
		if (!*path && !strncmp(k->str, "x-", 2))
			continue;
		for (size_t j = 0; allowed[j] && !ok; j++)
			ok = strcmp(k->str, allowed[j]) == 0;
		if (ok)
			continue;
		char clip[64], hint[96] = "";
		const char *s = vb_spec_suggest(k->str, allowed);
		if (s)
			snprintf(hint, sizeof(hint), " (did you mean '%s'?)", s);
		spec_diag(c, k->pos, path, "unknown field '%s' %s%s", spec_clip(k->str, clip, sizeof(clip)),
			  where, hint);
	}
}

bool spec_require(struct spec_ctx *c, const struct node *map, const char *path,
		  const char *where, const char *key)
{
	if (!map || map->type != NODE_MAP)
		return false;
	const struct node *v = spec_map_get(map, key);
	if (!v) {
		/* A misspelt "promt" was already reported with its did-you-mean;
		 * "missing prompt" on top of it would only repeat it. */
		const char *const want[] = { key, NULL };
		for (size_t i = 0; i < map->n; i++)
			if (map->keys[i]->type == NODE_SCALAR && vb_spec_suggest(map->keys[i]->str, want))
				return false;
		spec_diag(c, map->pos, path, "missing required field '%s' %s", key, where);
		return false;
	}
	if (spec_is_null(v)) {
		char p[SPEC_PATH_MAX];
		spec_path(p, path, key);
		spec_diag(c, v->pos, p, "missing value for required field '%s' %s", key, where);
		return false;
	}
	return true;
}

int spec_check_name(struct spec_ctx *c, const struct vb_spec_str *s, const char *path)
{
	char clip[64];
	const char *p = s->s;
	if (!p)
		return 0;
	size_t len = strlen(p);
	bool ok = len > 0 && len <= SPEC_NAME_MAX;
	for (size_t i = 0; ok && i < len; i++) {
		char ch = p[i];
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
		ok = alnum || (i > 0 && (ch == '.' || ch == '_' || ch == '-'));
	}
	if (ok)
		return 0;
	if (len > SPEC_NAME_MAX)
		spec_diag(c, s->pos, path, "name is longer than %d characters", SPEC_NAME_MAX);
	else
		spec_diag(c, s->pos, path,
			  "name '%s' must start with a letter or digit and hold only letters, digits, '.', '_' and '-'",
			  spec_clip(p, clip, sizeof(clip)));
	return -1;
}

int spec_check_guest_path(struct spec_ctx *c, const struct vb_spec_str *s, const char *path)
{
	char clip[64];
	const char *p = s->s;
	if (!p)
		return 0;
	if (p[0] != '/') {
		spec_diag(c, s->pos, path, "guest path '%s' must be absolute (start with '/')",
			  spec_clip(p, clip, sizeof(clip)));
		return -1;
	}
	if (strlen(p) > SPEC_GUEST_PATH_MAX) {
		spec_diag(c, s->pos, path, "guest path is longer than %d characters", SPEC_GUEST_PATH_MAX);
		return -1;
	}
	/* ".." would let a mount or output land outside where it says. */
	for (const char *q = p; (q = strstr(q, "..")); q += 2) {
		if (q[-1] == '/' && (q[2] == '/' || q[2] == '\0')) {
			spec_diag(c, s->pos, path, "guest path '%s' must not contain '..'",
				  spec_clip(p, clip, sizeof(clip)));
			return -1;
		}
	}
	return 0;
}

int spec_get_host_path(struct spec_ctx *c, const struct node *v, const char *path,
		       struct vb_spec_path *out)
{
	int rc = spec_get_str(c, v, path, &out->text);
	if (rc <= 0)
		return rc;
	if (!out->text.s[0]) {
		spec_diag(c, v->pos, path, "host path is empty");
		return -1;
	}
	if (strlen(out->text.s) >= 4096) {
		spec_diag(c, v->pos, path, "host path is longer than 4095 characters");
		return -1;
	}
	const char *t = out->text.s;
	if (t[0] == '~' && (t[1] == '/' || !t[1])) {
		/* ~ is the home directory, as in a shell; ~user is not expanded */
		const char *home = getenv("HOME");
		if (!home || home[0] != '/') {
			struct passwd *pw = getpwuid(getuid());
			home = pw ? pw->pw_dir : NULL;
		}
		if (!home || home[0] != '/') {
			spec_diag(c, v->pos, path, "cannot expand ~: no home directory is known");
			return -1;
		}
		size_t n = strlen(home) + strlen(t) + 1;
		char *home_path = malloc(n);
		if (!home_path) {
			spec_oom(c);
			return -1;
		}
		snprintf(home_path, n, "%s%s", home, t + 1);
		out->abs = vb_spec_resolve_path(home_path, c->dir, &out->exists);
		free(home_path);
	} else {
		out->abs = vb_spec_resolve_path(t, c->dir, &out->exists);
	}
	if (!out->abs) {
		spec_oom(c);
		return -1;
	}
	return 1;
}
