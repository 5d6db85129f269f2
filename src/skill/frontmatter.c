/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SKILL.md's frontmatter: the YAML mapping between a first line "---" and
 * the next "---" line, parsed with libyaml.  Only its `name` and
 * `description` matter here (the agents read the rest themselves), but the
 * whole of it must be YAML, so that an agent does not silently skip a
 * skill whose frontmatter it cannot read.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "skill/skill.h"
#include "util/term.h"

int vb_skill_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (!n || n > VB_SKILL_NAME_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return 0;
	}
	return 1;
}

/* Length of the line at (p) (without its "\n" or "\r\n"), and where the
 * next one starts. */
static size_t line_at(const char *p, const char *end, const char **next)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	const char *e = nl ? nl : end;
	*next = nl ? nl + 1 : end;
	if (e > p && e[-1] == '\r')
		e--;
	return (size_t)(e - p);
}

static int is_fence(const char *p, size_t n, int closing)
{
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	return n == 3 && (!memcmp(p, "---", 3) || (closing && !memcmp(p, "...", 3)));
}

static int fail_at(vb_error *err, const char *label, size_t line, size_t col, const char *fmt,
		   ...) __attribute__((format(printf, 5, 6)));
static int fail_at(vb_error *err, const char *label, size_t line, size_t col, const char *fmt,
		   ...)
{
	char safe[256], what[300];
	vb_term_copy(safe, sizeof(safe), label, 0);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return vb_error_set(err, VB_E_USAGE, "%s:%zu:%zu: frontmatter: %s", safe, line, col, what);
}

/* A scalar value of the mapping as a new string; an error for another
 * kind of node. */
static int scalar(yaml_document_t *doc, yaml_node_t *v, const char *label, const char *key,
		  char **out, vb_error *err)
{
	if (v->type != YAML_SCALAR_NODE)
		return fail_at(err, label, v->start_mark.line + 2, v->start_mark.column + 1,
			       "'%s' must be a string", key);
	(void)doc;
	free(*out);
	*out = strndup((const char *)v->data.scalar.value, v->data.scalar.length);
	if (!*out)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	return 0;
}

int vb_skill_frontmatter(const char *text, size_t len, const char *label, char **name,
			 char **desc, vb_error *err)
{
	*name = *desc = NULL;
	const char *end = text + len, *next;
	size_t n = line_at(text, end, &next);
	if (!is_fence(text, n, 0))
		return 0; /* no frontmatter */
	const char *body = next, *p = next;
	const char *close = NULL;
	size_t line = 2;
	while (p < end) {
		n = line_at(p, end, &next);
		if (is_fence(p, n, 1)) {
			close = p;
			break;
		}
		p = next;
		line++;
	}
	if (!close)
		return fail_at(err, label, 1, 1, "the '---' that opens it has no closing '---' line");

	yaml_parser_t parser;
	yaml_document_t doc;
	if (!yaml_parser_initialize(&parser))
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)body, (size_t)(close - body));
	if (!yaml_parser_load(&parser, &doc)) {
		size_t l = parser.problem_mark.line + 2, c = parser.problem_mark.column + 1;
		char why[300], ctx[160] = "";
		if (parser.context)
			snprintf(ctx, sizeof(ctx), " (%s that starts at line %zu, column %zu)",
				 parser.context, (size_t)parser.context_mark.line + 2,
				 (size_t)parser.context_mark.column + 1);
		snprintf(why, sizeof(why), "%s%s", parser.problem ? parser.problem : "not YAML", ctx);
		yaml_parser_delete(&parser);
		return fail_at(err, label, l, c, "%s", why);
	}
	yaml_parser_delete(&parser);
	int rc = 0;
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (!root || root->type != YAML_MAPPING_NODE) {
		rc = fail_at(err, label, root ? root->start_mark.line + 2 : 2,
			     root ? root->start_mark.column + 1 : 1,
			     "expected a mapping with 'name' and 'description'");
		goto out;
	}
	yaml_node_t *name_node = NULL;
	for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
	     pr < root->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(&doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(&doc, pr->value);
		if (!k || !v || k->type != YAML_SCALAR_NODE)
			continue;
		const char *key = (const char *)k->data.scalar.value;
		if (!strcmp(key, "name")) {
			if ((rc = scalar(&doc, v, label, "name", name, err)) < 0)
				goto out;
			name_node = v;
		} else if (!strcmp(key, "description")) {
			if ((rc = scalar(&doc, v, label, "description", desc, err)) < 0)
				goto out;
		}
	}
	if (!*name) {
		rc = fail_at(err, label, 1, 1, "'name' is missing");
	} else if (!vb_skill_name_ok(*name)) {
		char clip[80];
		vb_term_copy(clip, sizeof(clip), *name, 0);
		rc = fail_at(err, label, name_node->start_mark.line + 2,
			     name_node->start_mark.column + 1,
			     "name '%s' is not a safe skill name (letters, digits, '-', '_', '.'; "
			     "at most 64)",
			     clip);
	} else if (!*desc || !**desc) {
		rc = fail_at(err, label, 1, 1, "'description' is missing or empty");
	}
out:
	yaml_document_delete(&doc);
	if (rc < 0) {
		free(*name);
		free(*desc);
		*name = *desc = NULL;
	}
	return rc;
}
