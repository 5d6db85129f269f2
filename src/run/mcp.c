/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A stage's MCP servers (mcp: skills), each a long-running exec in its VM
 * as the sandbox user — as the agent would run it — spoken to over its
 * stdin and stdout (MCP's stdio transport: one JSON-RPC message a line).
 * Before the agent starts, each is initialized and its tools listed; one
 * that does not answer, or answers garbage, fails the stage naming it and
 * the tail of its stderr.  The builtin agent's tool calls then go to the
 * same exec (tools/call).  What the server sends is hostile: src/skill/mcp.c
 * reads it, bounded.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run/engine.h"
#include "skill/skill.h"
#include "util/term.h"
#include "util/util.h"

#define MCP_PROTOCOL "2025-06-18"
#define MCP_LIST_MS 10000
#define MCP_ERRTAIL 600    /* stderr bytes kept for an error */

struct mcp_server {
	const struct vb_skill_mcp *m;
	vb_exec *ex;
	struct vb_mcp_reader rd;
	char errtail[MCP_ERRTAIL];
	size_t errlen;
	struct vb_mcp_tool *tools;
	size_t n_tools;
	long long next_id;
	int exited;
};

struct vb_run_mcp {
	struct mcp_server *v;
	size_t n;
};

static void keep_stderr(struct mcp_server *s, const uint8_t *d, size_t n)
{
	if (n >= MCP_ERRTAIL) {
		memcpy(s->errtail, d + n - MCP_ERRTAIL, MCP_ERRTAIL);
		s->errlen = MCP_ERRTAIL;
		return;
	}
	if (s->errlen + n > MCP_ERRTAIL) {
		size_t drop = s->errlen + n - MCP_ERRTAIL;
		memmove(s->errtail, s->errtail + drop, s->errlen - drop);
		s->errlen -= drop;
	}
	memcpy(s->errtail + s->errlen, d, n);
	s->errlen += n;
}

/* (err) prefixed with the server's name, and its stderr's tail after. */
static int fail(struct mcp_server *s, vb_error *err)
{
	while (s->errlen && (s->errtail[s->errlen - 1] == '\n' || s->errtail[s->errlen - 1] == '\r'))
		s->errlen--;
	if (s->errlen) {
		char tail[MCP_ERRTAIL * 4 + 1], why[sizeof(err->msg)];
		vb_term_copyn(tail, sizeof(tail), s->errtail, s->errlen, VB_TERM_LINES);
		memcpy(why, err->msg, sizeof(why));
		vb_error_set(err, err->kind ? err->kind : VB_E_RUNTIME, "%s; its stderr ends: %s",
			     why, tail);
	}
	vb_error_prefix(err, "MCP server '%s'", s->m->name);
	return -1;
}

static int send_msg(struct mcp_server *s, json_t *msg, vb_error *err)
{
	_cleanup_free_ char *line = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (!line)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	size_t n = strlen(line);
	line[n++] = '\n'; /* json_dumps' NUL, replaced: the line's end */
	for (size_t off = 0; off < n;) {
		ssize_t w = vb_exec_write(s->ex, line + off, n - off, 10000, err);
		if (w < 0)
			return -1;
		off += (size_t)w;
	}
	return 0;
}

/* Send (method) with (params) (taken) and wait up to (timeout_ms) for its
 * result. */
static int request(struct mcp_server *s, const char *method, json_t *params, int timeout_ms,
		   json_t **result, vb_error *err)
{
	if (s->exited) {
		json_decref(params);
		return vb_error_set(err, VB_E_RUNTIME, "has exited");
	}
	long long id = ++s->next_id;
	json_t *msg = json_pack("{s:s,s:I,s:s,s:o}", "jsonrpc", "2.0", "id", (json_int_t)id,
				"method", method, "params", params);
	if (!msg || send_msg(s, msg, err) < 0)
		return err->kind ? -1 : vb_error_set(err, VB_E_RUNTIME, "out of memory");
	int64_t deadline = vb_now_ms() + timeout_ms;
	for (;;) {
		char *line;
		size_t len;
		int got;
		while ((got = vb_mcp_reader_line(&s->rd, &line, &len)) > 0) {
			int rc = len ? vb_mcp_response(line, len, id, result, err) : 0;
			free(line);
			if (rc)
				return rc < 0 ? -1 : 0;
		}
		if (got < 0)
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
		int64_t left = deadline - vb_now_ms();
		if (left <= 0)
			return vb_error_set(err, VB_E_RUNTIME, "did not answer %s within %d s", method,
					    timeout_ms / 1000);
		struct vb_exec_event ev;
		int rc = vb_exec_next(s->ex, &ev, (int)left, err);
		if (rc < 0)
			return -1;
		if (rc == 0)
			continue;
		if (ev.kind == VB_EXEC_STDERR) {
			keep_stderr(s, ev.data, ev.len);
		} else if (ev.kind == VB_EXEC_STDOUT) {
			if (vb_mcp_reader_feed(&s->rd, ev.data, ev.len, err) < 0)
				return -1;
		} else {
			s->exited = 1;
			return vb_error_set(err, VB_E_RUNTIME, "exited (status %d) before answering %s",
					    ev.exit_code, method);
		}
	}
}

static int start_one(vb_sandbox *sb, struct mcp_server *s, vb_error *err)
{
	struct vb_exec_params p = { .argv = (const char *const *)s->m->argv,
				    .env = (const char *const *)s->m->env,
				    .want_stdin = 1 };
	s->ex = vb_exec_start(sb, &p, err);
	if (!s->ex)
		return -1;
	json_t *res = NULL;
	json_t *init = json_pack("{s:s,s:{},s:{s:s,s:s}}", "protocolVersion", MCP_PROTOCOL,
				 "capabilities", "clientInfo", "name", "voidbox", "version", "1");
	if (!init)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	if (request(s, "initialize", init, VB_RUN_MCP_START_MS, &res, err) < 0)
		return -1;
	int ok = json_is_object(res);
	json_decref(res);
	if (!ok)
		return vb_error_set(err, VB_E_RUNTIME, "initialize: the result is not an object");
	json_t *note = json_pack("{s:s,s:s}", "jsonrpc", "2.0", "method",
				 "notifications/initialized");
	if (!note || send_msg(s, note, err) < 0)
		return err->kind ? -1 : vb_error_set(err, VB_E_RUNTIME, "out of memory");
	res = NULL;
	if (request(s, "tools/list", json_object(), MCP_LIST_MS, &res, err) < 0)
		return -1;
	int rc = vb_mcp_tools(res, &s->tools, &s->n_tools, err);
	json_decref(res);
	return rc;
}

static void emit(struct vb_run *r, struct vb_run_unit *u, const struct mcp_server *s)
{
	const char *names[VB_MCP_TOOLS_MAX + 1];
	for (size_t i = 0; i < s->n_tools; i++)
		names[i] = s->tools[i].name;
	names[s->n_tools] = NULL;
	struct vb_event_skill k = { .type = "mcp", .name = s->m->name, .source = s->m->source,
				    .tools = names, .n_tools = s->n_tools };
	struct vb_event ev = { .type = VB_EV_SKILL_PROVISIONED, .stage = u->name, .skill = &k,
			       .vm_id = u->vm_id };
	vb_run_emit(r, &ev);
}

int vb_run_mcp_start(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb,
		     const struct vb_skill_set *set, struct vb_run_mcp **out, vb_error *err)
{
	*out = NULL;
	if (!set || !set->n_mcp)
		return 0;
	struct vb_run_mcp *m = calloc(1, sizeof(*m));
	if (m)
		m->v = calloc(set->n_mcp, sizeof(*m->v));
	if (!m || !m->v) {
		free(m);
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	for (size_t i = 0; i < set->n_mcp; i++) {
		struct mcp_server *s = &m->v[m->n++];
		s->m = &set->mcp[i];
		if (start_one(sb, s, err) < 0) {
			fail(s, err);
			vb_run_mcp_free(m);
			return -1;
		}
		emit(r, u, s);
	}
	*out = m;
	return 0;
}

void vb_run_mcp_free(struct vb_run_mcp *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		struct mcp_server *s = &m->v[i];
		if (s->ex) {
			if (!s->exited)
				vb_exec_signal(s->ex, SIGKILL, NULL);
			vb_exec_free(s->ex);
		}
		vb_mcp_reader_free(&s->rd);
		vb_mcp_tools_free(s->tools, s->n_tools);
	}
	free(m->v);
	free(m);
}

/* Whether (a), a tool name the model used, is (tool) with each '.' as '_'
 * (an Anthropic tool name has no '.'). */
static int same_tool(const char *a, const char *tool)
{
	for (; *a && *tool; a++, tool++)
		if (*a != (*tool == '.' ? '_' : *tool))
			return 0;
	return !*a && !*tool;
}

/* "mcp__SERVER__TOOL" ('.' in TOOL as '_'): what the model calls a
 * server's tool. */
void *vb_run_mcp_tools_json(const struct vb_run_mcp *m)
{
	json_t *a = json_array();
	for (size_t i = 0; a && m && i < m->n; i++)
		for (size_t j = 0; j < m->v[i].n_tools; j++) {
			const struct vb_mcp_tool *t = &m->v[i].tools[j];
			_cleanup_free_ char *name = vb_strfmt("mcp__%s__%s", m->v[i].m->name, t->name);
			for (char *d = name ? strchr(name, '.') : NULL; d; d = strchr(d, '.'))
				*d = '_';
			json_t *o = name ? json_pack("{s:s,s:s,s:O}", "name", name, "description",
						     t->description ? t->description : t->name,
						     "input_schema", t->schema)
					 : NULL;
			if (!o || json_array_append_new(a, o) < 0) {
				json_decref(a);
				return NULL;
			}
		}
	return a;
}

/* The text of a tools/call result's content, bounded. */
static char *content_text(json_t *res, size_t max)
{
	json_t *content = json_object_get(res, "content"), *c;
	size_t i;
	char *out = strdup("");
	json_array_foreach(content, i, c) {
		const char *t = json_string_value(json_object_get(c, "text"));
		if (!out || !t)
			continue;
		size_t have = strlen(out), tl = strlen(t);
		if (have + tl + 1 > max)
			tl = max > have + 1 ? max - have - 1 : 0;
		char *n = realloc(out, have + tl + 2);
		if (!n) {
			free(out);
			return NULL;
		}
		out = n;
		memcpy(out + have, t, tl);
		out[have + tl] = 0;
	}
	return out;
}

int vb_run_mcp_call(struct vb_run_mcp *m, const char *name, void *input, int64_t deadline_ms,
		    size_t max, char **out, int *is_error, vb_error *err)
{
	if (!m || strncmp(name, "mcp__", 5))
		return 0;
	for (size_t i = 0; i < m->n; i++) {
		struct mcp_server *s = &m->v[i];
		size_t nl = strlen(s->m->name);
		if (strncmp(name + 5, s->m->name, nl) || strncmp(name + 5 + nl, "__", 2))
			continue;
		const char *tool = name + 5 + nl + 2;
		for (size_t j = 0; j < s->n_tools; j++) {
			if (!same_tool(tool, s->tools[j].name))
				continue;
			int64_t left = deadline_ms ? deadline_ms - vb_now_ms() : 120000;
			if (left > 120000)
				left = 120000;
			json_t *args = json_is_object((json_t *)input) ? json_incref(input)
									: json_object();
			json_t *res = NULL;
			vb_error e = { 0 };
			if (left <= 0 ||
			    request(s, "tools/call",
				    json_pack("{s:s,s:o}", "name", s->tools[j].name, "arguments", args),
				    (int)left,
				    &res, &e) < 0) {
				fail(s, &e);
				*out = strdup(left <= 0 ? "the stage's time is up" : e.msg);
				*is_error = 1;
			} else {
				*out = content_text(res, max);
				*is_error = json_is_true(json_object_get(res, "isError"));
			}
			json_decref(res);
			if (!*out)
				return vb_error_set(err, VB_E_RUNTIME, "out of memory");
			return 1;
		}
	}
	return 0;
}

int vb_run_mcp_config_write(vb_sandbox *sb, const struct vb_skill_set *set, const char *path,
			    vb_error *err)
{
	json_t *servers = json_object(), *doc = json_pack("{s:o}", "mcpServers", servers);
	for (size_t i = 0; doc && i < set->n_mcp; i++) {
		const struct vb_skill_mcp *m = &set->mcp[i];
		json_t *args = json_array(), *env = json_object();
		for (size_t j = 1; m->argv[j]; j++)
			json_array_append_new(args, json_string(m->argv[j]));
		for (size_t j = 0; m->env && m->env[j]; j++) {
			const char *eq = strchr(m->env[j], '=');
			_cleanup_free_ char *k = eq ? strndup(m->env[j], (size_t)(eq - m->env[j])) : NULL;
			if (k)
				json_object_set_new(env, k, json_string(eq + 1));
		}
		if (json_object_set_new(servers, m->name,
					json_pack("{s:s,s:s,s:o,s:o}", "type", "stdio", "command",
						  m->argv[0], "args", args, "env", env)) < 0) {
			json_decref(doc);
			doc = NULL;
		}
	}
	_cleanup_free_ char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
	json_decref(doc);
	if (!text)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	return vb_file_write(sb, path, text, strlen(text), 0600, 0, err);
}

/* (s) as a TOML basic string onto (b). */
static char *toml_str(char *b, const char *s)
{
	for (; b && *s; s++) {
		unsigned char c = (unsigned char)*s;
		char *n = c == '"' || c == '\\' ? vb_strfmt("%s\\%c", b, c)
			  : c < 0x20 || c == 0x7f ? vb_strfmt("%s\\u%04x", b, c)
						  : vb_strfmt("%s%c", b, c);
		free(b);
		b = n;
	}
	return b;
}

static char *cat(char *b, const char *s)
{
	char *n = b ? vb_strfmt("%s%s", b, s) : NULL;
	free(b);
	return n;
}

char **vb_run_mcp_codex_overrides(const struct vb_skill_set *set)
{
	char **v = calloc(set->n_mcp + 1, sizeof(*v));
	for (size_t i = 0; v && i < set->n_mcp; i++) {
		const struct vb_skill_mcp *m = &set->mcp[i];
		/* the name is an identifier (vb_mcp_name_ok): a bare TOML key */
		char *b = vb_strfmt("mcp_servers.%s={command=\"", m->name);
		b = cat(toml_str(b, m->argv[0]), "\",args=[");
		for (size_t j = 1; m->argv[j]; j++)
			b = cat(toml_str(cat(b, j > 1 ? ",\"" : "\""), m->argv[j]), "\"");
		b = cat(b, "],env={");
		for (size_t j = 0; m->env && m->env[j]; j++) {
			const char *eq = strchr(m->env[j], '=');
			_cleanup_free_ char *k = strndup(m->env[j], (size_t)(eq - m->env[j]));
			if (!k) {
				free(b);
				b = NULL;
			}
			b = toml_str(cat(b, j ? ",\"" : "\""), k ? k : "");
			b = cat(toml_str(cat(b, "\"=\""), eq + 1), "\"");
		}
		/* required: codex waits for the server before its first request
		 * (else it does not: under TCG a node server is not up before
		 * codex asks the model, which is not offered its tools); and
		 * as long as our own check, not its default 10 s */
		char start[48];
		snprintf(start, sizeof(start), "},startup_timeout_sec=%d,required=true}",
			 VB_RUN_MCP_START_MS / 1000);
		b = cat(b, start);
		if (!b) {
			for (size_t j = 0; j < i; j++)
				free(v[j]);
			free(v);
			return NULL;
		}
		v[i] = b;
	}
	return v;
}
