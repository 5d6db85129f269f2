/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mcp: skills on the host: the spec's command split into an argv and named,
 * and the reading of a server's answers — newline-delimited JSON-RPC 2.0
 * (MCP's stdio transport) from a program in the guest, so every byte is
 * hostile: lines are bounded, tools counted and named safely, and any text
 * that may reach a terminal is made safe first.  No VM here.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skill/skill.h"
#include "util/term.h"
#include "util/util.h"

static int is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_ident(char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

int vb_mcp_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (!n || n > VB_MCP_NAME_MAX || !is_alpha(name[0]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_ident(name[i]))
			return 0;
	return 1;
}

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

void vb_skill_mcp_free(struct vb_skill_mcp *m)
{
	free(m->name);
	strv_free(m->argv);
	strv_free(m->env);
	free(m->source);
	*m = (struct vb_skill_mcp){ 0 };
}

static int push(char ***v, size_t *n, char *s)
{
	if (!s)
		return -1;
	char **nv = realloc(*v, (*n + 2) * sizeof(*nv));
	if (!nv) {
		free(s);
		return -1;
	}
	nv[(*n)++] = s;
	nv[*n] = NULL;
	*v = nv;
	return 0;
}

/* "mcp:<command string>": words split at blanks; '...' and "..." quote
 * (no escapes, no expansion: the guest gets exactly these words). */
static int split(const char *cmd, char ***out, vb_error *err)
{
	char **v = NULL;
	size_t n = 0, len = strlen(cmd);
	_cleanup_free_ char *w = malloc(len + 1);
	if (!w)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	const char *p = cmd;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		size_t wl = 0;
		while (*p && *p != ' ' && *p != '\t') {
			if (*p == '\'' || *p == '"') {
				char q = *p++;
				const char *e = strchr(p, q);
				if (!e) {
					strv_free(v);
					return vb_error_set(err, VB_E_USAGE, "unterminated %c quote", q);
				}
				memcpy(w + wl, p, (size_t)(e - p));
				wl += (size_t)(e - p);
				p = e + 1;
			} else {
				w[wl++] = *p++;
			}
		}
		w[wl] = 0;
		if (push(&v, &n, strdup(w)) < 0) {
			strv_free(v);
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
		}
	}
	if (!n)
		return vb_error_set(err, VB_E_USAGE, "no command");
	*out = v;
	return 0;
}

/* The string form's name: the program's basename up to its first '.',
 * other characters that are not allowed made '_'. */
static char *derive_name(const char *prog)
{
	const char *b = strrchr(prog, '/');
	b = b ? b + 1 : prog;
	size_t n = strcspn(b, ".");
	if (n > VB_MCP_NAME_MAX)
		n = VB_MCP_NAME_MAX;
	char *s = strndup(b, n);
	for (size_t i = 0; s && s[i]; i++)
		if (!is_ident(s[i]))
			s[i] = '_';
	return s;
}

int vb_skill_mcp_resolve(const struct vb_spec_skill *in, struct vb_skill_mcp *out,
			 vb_error *err)
{
	*out = (struct vb_skill_mcp){ 0 };
	char c[200];
	if (!in->object_form) {
		if (split(in->value, &out->argv, err) < 0)
			return -1;
		out->source = strdup(in->value);
		out->name = derive_name(out->argv[0]);
	} else {
		size_t n = 0;
		if (!in->command.s || !*in->command.s)
			return vb_error_set(err, VB_E_USAGE, "an MCP skill needs a 'command'");
		if (push(&out->argv, &n, strdup(in->command.s)) < 0)
			goto oom;
		for (size_t i = 0; i < in->args.n; i++)
			if (push(&out->argv, &n, strdup(in->args.v[i].s ? in->args.v[i].s : "")) < 0)
				goto oom;
		n = 0;
		for (size_t i = 0; i < in->env.n; i++) {
			/* "" or null: the host's value, as a stage's env */
			const struct vb_spec_kv *kv = &in->env.v[i];
			const char *val = kv->from_host ? getenv(kv->key.s) : kv->value.s;
			if (push(&out->env, &n, vb_strfmt("%s=%s", kv->key.s, val ? val : "")) < 0)
				goto oom;
		}
		out->source = strdup(in->command.s);
		out->name = in->name.s ? strdup(in->name.s) : derive_name(in->command.s);
	}
	if (!out->source || !out->name)
		goto oom;
	if (!vb_mcp_name_ok(out->name)) {
		vb_error_set(err, VB_E_USAGE,
			     "'%s' is not a usable MCP server name (1-%d letters, digits, '_' or '-', "
			     "starting with a letter): give one with {name: ..., command: ...}",
			     vb_term_copy(c, sizeof(c), out->name, 0), VB_MCP_NAME_MAX);
		vb_skill_mcp_free(out);
		return -1;
	}
	return 0;
oom:
	vb_skill_mcp_free(out);
	return vb_error_set(err, VB_E_RUNTIME, "out of memory");
}

/* ---- the wire ---- */

int vb_mcp_reader_feed(struct vb_mcp_reader *r, const void *data, size_t n, vb_error *err)
{
	/* every line, the one still open included, is bounded */
	const char *nl = r->len ? memrchr(r->buf, '\n', r->len) : NULL;
	size_t open = nl ? r->len - (size_t)(nl + 1 - r->buf) : r->len;
	const char *p = data, *end = p + n;
	while (p < end) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		open += (size_t)((e ? e : end) - p);
		if (open > VB_MCP_LINE_MAX)
			return vb_error_set(err, VB_E_RUNTIME, "a message longer than %zu bytes",
					    VB_MCP_LINE_MAX);
		if (!e)
			break;
		open = 0;
		p = e + 1;
	}
	if (r->len + n + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		while (cap < r->len + n + 1)
			cap *= 2;
		char *b = realloc(r->buf, cap);
		if (!b)
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
		r->buf = b;
		r->cap = cap;
	}
	memcpy(r->buf + r->len, data, n);
	r->len += n;
	return 0;
}

int vb_mcp_reader_line(struct vb_mcp_reader *r, char **line, size_t *len)
{
	char *nl = r->len ? memchr(r->buf, '\n', r->len) : NULL;
	if (!nl)
		return 0;
	size_t l = (size_t)(nl - r->buf);
	size_t keep = l;
	if (keep && r->buf[keep - 1] == '\r')
		keep--;
	char *s = malloc(keep + 1);
	if (!s)
		return -1;
	memcpy(s, r->buf, keep);
	s[keep] = 0;
	memmove(r->buf, nl + 1, r->len - l - 1);
	r->len -= l + 1;
	*line = s;
	*len = keep;
	return 1;
}

void vb_mcp_reader_free(struct vb_mcp_reader *r)
{
	free(r->buf);
	*r = (struct vb_mcp_reader){ 0 };
}

int vb_mcp_response(const char *line, size_t len, long long id, json_t **result, vb_error *err)
{
	char c[200];
	json_error_t je;
	json_t *m = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	if (!m || !json_is_object(m) || !json_is_string(json_object_get(m, "jsonrpc")) ||
	    strcmp(json_string_value(json_object_get(m, "jsonrpc")), "2.0")) {
		json_decref(m);
		return vb_error_set(err, VB_E_RUNTIME, "not a JSON-RPC 2.0 message: '%s'",
				    vb_term_copyn(c, 80, line, len, 0));
	}
	json_t *jid = json_object_get(m, "id");
	/* a notification, a request of the server's, or another response */
	if (!jid || json_object_get(m, "method") || !json_is_integer(jid) ||
	    json_integer_value(jid) != id) {
		json_decref(m);
		return 0;
	}
	json_t *e = json_object_get(m, "error"), *res = json_object_get(m, "result");
	if (e || !res) {
		const char *msg = json_string_value(json_object_get(e, "message"));
		vb_error_set(err, VB_E_RUNTIME, "error response: %s",
			     msg ? vb_term_copy(c, sizeof(c), msg, 0) : "(no message)");
		json_decref(m);
		return -1;
	}
	*result = json_incref(res);
	json_decref(m);
	return 1;
}

static int tool_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (!n || n > VB_MCP_TOOL_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_ident(s[i]) && s[i] != '.')
			return 0;
	return 1;
}

/* (a) and (b) the same once '.' is '_' (as the builtin agent names them
 * to the model). */
static int same_name(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if ((*a == '.' ? '_' : *a) != (*b == '.' ? '_' : *b))
			return 0;
	return !*a && !*b;
}

void vb_mcp_tools_free(struct vb_mcp_tool *tools, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(tools[i].name);
		free(tools[i].description);
		json_decref(tools[i].schema);
	}
	free(tools);
}

int vb_mcp_tools(json_t *result, struct vb_mcp_tool **tools, size_t *n, vb_error *err)
{
	char c[100];
	*tools = NULL;
	*n = 0;
	json_t *arr = json_object_get(result, "tools");
	if (!json_is_array(arr))
		return vb_error_set(err, VB_E_RUNTIME, "tools/list: no 'tools' array");
	size_t k = json_array_size(arr);
	if (k > VB_MCP_TOOLS_MAX)
		return vb_error_set(err, VB_E_RUNTIME, "tools/list: %zu tools (at most %d)", k,
				    VB_MCP_TOOLS_MAX);
	struct vb_mcp_tool *v = calloc(k ? k : 1, sizeof(*v));
	if (!v)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	for (size_t i = 0; i < k; i++) {
		json_t *t = json_array_get(arr, i);
		const char *name = json_string_value(json_object_get(t, "name"));
		const char *desc = json_string_value(json_object_get(t, "description"));
		json_t *schema = json_object_get(t, "inputSchema");
		if (!tool_name_ok(name)) {
			vb_error_set(err, VB_E_RUNTIME,
				     "tools/list: tool %zu's name '%s' is not 1-%d letters, digits, "
				     "'_', '-' or '.'",
				     i, vb_term_copy(c, sizeof(c), name ? name : "", 0),
				     VB_MCP_TOOL_NAME_MAX);
			goto fail;
		}
		for (size_t j = 0; j < i; j++)
			if (same_name(v[j].name, name)) {
				vb_error_set(err, VB_E_RUNTIME, "tools/list: two tools named '%s'", name);
				goto fail;
			}
		if (schema && !json_is_object(schema)) {
			vb_error_set(err, VB_E_RUNTIME, "tools/list: tool '%s': inputSchema is not an object",
				     name);
			goto fail;
		}
		v[i].name = strdup(name);
		if (desc) {
			size_t dl = strlen(desc) + 1;
			v[i].description = malloc(dl);
			if (v[i].description)
				vb_term_copy(v[i].description, dl, desc, 0);
		}
		v[i].schema = schema ? json_deep_copy(schema) : json_pack("{s:s}", "type", "object");
		*n = i + 1;
		if (!v[i].name || (desc && !v[i].description) || !v[i].schema) {
			vb_error_set(err, VB_E_RUNTIME, "out of memory");
			goto fail;
		}
	}
	*tools = v;
	*n = k;
	return 0;
fail:
	vb_mcp_tools_free(v, *n);
	*n = 0;
	return -1;
}
