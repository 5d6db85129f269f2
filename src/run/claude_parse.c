/* SPDX-License-Identifier: Apache-2.0 */
/*
 * claude-code's stream-json output, read as a hostile guest's: lines are
 * bounded, anything that does not parse is only logged, and nothing it
 * says is trusted beyond the stage's own result.  See run/claude.h.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run/claude.h"
#include "run/engine.h"
#include "util/term.h"
#include "util/util.h"

#define LINE_MAX_BYTES VB_CLAUDE_LINE_MAX
#define PENDING_MAX VB_CLAUDE_PENDING_MAX
#define TOOL_TEXT_MAX VB_CLAUDE_TEXT_MAX
/* The stderr tail quoted when claude ends without a result. */
#define STDERR_TAIL 2048

struct pending {
	char *id, *name, *input;
	int64_t at_ms; /* when the call was seen */
};

struct vb_claude_parse {
	void (*emit)(struct vb_event *ev, void *opaque);
	void *opaque;
	char *stage, *vm_id;
	char *line;
	size_t len, cap;
	int skipping;              /* in a line longer than LINE_MAX_BYTES */
	struct pending pend[PENDING_MAX];
	size_t n_pend;
	json_t *result;            /* the last `result` event */
	char err_tail[STDERR_TAIL + 1];
	size_t err_len;
};

static void emit_chunk(struct vb_claude_parse *c, const char *stream, const uint8_t *d, size_t n)
{
	struct vb_event ev = { .type = VB_EV_LOG_CHUNK, .stage = c->stage, .stream = stream,
			       .data = d, .len = n, .vm_id = c->vm_id,
			       .structured = !strcmp(stream, "stdout") };
	c->emit(&ev, c->opaque);
}

/* (s) cut to TOOL_TEXT_MAX on a character boundary, valid UTF-8. */
static char *bounded(const char *s)
{
	size_t n = strlen(s), out;
	if (n > TOOL_TEXT_MAX)
		n = TOOL_TEXT_MAX;
	return vb_run_utf8((const uint8_t *)s, n, &out);
}

static void emit_tool(struct vb_claude_parse *c, const struct pending *p, const char *result,
		      int is_error)
{
	struct vb_event_tool t = { .name = p->name, .input = p->input, .result = result,
				   .is_error = is_error };
	struct vb_event ev = { .type = VB_EV_AGENT_TOOL, .stage = c->stage, .tool = &t,
			       .vm_id = c->vm_id, .duration_ms = vb_now_ms() - p->at_ms };
	c->emit(&ev, c->opaque);
}

/* A member that is a string, else "". */
static const char *str_of(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static void pending_free(struct pending *p)
{
	free(p->id);
	free(p->name);
	free(p->input);
	memset(p, 0, sizeof(*p));
}

/* An assistant message: its text blocks are agent.message events, its
 * tool_use blocks wait for their tool_result. */
static void on_assistant(struct vb_claude_parse *c, json_t *msg)
{
	json_t *content = json_object_get(json_object_get(msg, "message"), "content");
	size_t i;
	json_t *b;
	json_array_foreach (content, i, b) {
		if (!strcmp(str_of(b, "type"), "text") && *str_of(b, "text")) {
			_cleanup_free_ char *text = bounded(str_of(b, "text"));
			struct vb_event ev = { .type = VB_EV_AGENT_MESSAGE, .stage = c->stage,
					       .text = text, .vm_id = c->vm_id };
			if (text)
				c->emit(&ev, c->opaque);
			continue;
		}
		if (strcmp(str_of(b, "type"), "tool_use"))
			continue;
		const char *id = json_string_value(json_object_get(b, "id"));
		const char *name = json_string_value(json_object_get(b, "name"));
		_cleanup_free_ char *input = json_dumps(json_object_get(b, "input"), JSON_COMPACT);
		if (!id || !name)
			continue;
		if (c->n_pend == PENDING_MAX) { /* never answered: say so, make room */
			emit_tool(c, &c->pend[0], NULL, 0);
			pending_free(&c->pend[0]);
			memmove(&c->pend[0], &c->pend[1], sizeof(c->pend[0]) * (PENDING_MAX - 1));
			c->n_pend--;
		}
		struct pending *p = &c->pend[c->n_pend];
		p->id = bounded(id);
		p->name = bounded(name);
		p->input = bounded(input ? input : "{}");
		p->at_ms = vb_now_ms();
		if (p->id && p->name && p->input)
			c->n_pend++;
		else
			pending_free(p);
	}
}

/* The text of a tool_result's content: a string, or its text blocks. */
static char *result_text(json_t *content)
{
	if (json_is_string(content))
		return bounded(json_string_value(content));
	char *out = strdup("");
	size_t i;
	json_t *b;
	json_array_foreach (content, i, b) {
		const char *t = json_string_value(json_object_get(b, "text"));
		if (!t || !out || strlen(out) >= TOOL_TEXT_MAX)
			continue;
		char *n = vb_strfmt("%s%s", out, t);
		free(out);
		out = n;
	}
	if (!out)
		return NULL;
	char *b2 = bounded(out);
	free(out);
	return b2;
}

/* A user message's tool_result blocks complete their calls: agent.tool. */
static void on_user(struct vb_claude_parse *c, json_t *msg)
{
	json_t *content = json_object_get(json_object_get(msg, "message"), "content");
	size_t i;
	json_t *b;
	json_array_foreach (content, i, b) {
		if (strcmp(str_of(b, "type"), "tool_result"))
			continue;
		const char *id = json_string_value(json_object_get(b, "tool_use_id"));
		for (size_t k = 0; id && k < c->n_pend; k++) {
			if (strcmp(c->pend[k].id, id))
				continue;
			_cleanup_free_ char *text = result_text(json_object_get(b, "content"));
			emit_tool(c, &c->pend[k], text ? text : "",
				  json_is_true(json_object_get(b, "is_error")));
			pending_free(&c->pend[k]);
			memmove(&c->pend[k], &c->pend[k + 1],
				sizeof(c->pend[0]) * (c->n_pend - k - 1));
			c->n_pend--;
			break;
		}
	}
}

static uint64_t uint_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

/* The result event as agent.result: what claude says it did and cost. */
static void emit_result(struct vb_claude_parse *c, json_t *res)
{
	json_t *usage = json_object_get(res, "usage");
	json_t *cost = json_object_get(res, "total_cost_usd");
	json_t *turns = json_object_get(res, "num_turns");
	_cleanup_free_ char *subtype = bounded(str_of(res, "subtype"));
	_cleanup_free_ char *text = bounded(str_of(res, "result"));
	struct vb_event_agent_result a = {
		.agent = "claude-code", .subtype = subtype, .text = text,
		.is_error = json_is_true(json_object_get(res, "is_error")),
		.num_turns = json_is_integer(turns) ? json_integer_value(turns) : -1,
		.input_tokens = uint_of(usage, "input_tokens") +
				uint_of(usage, "cache_creation_input_tokens") +
				uint_of(usage, "cache_read_input_tokens"),
		.output_tokens = uint_of(usage, "output_tokens"),
		.cost_usd = json_is_number(cost) && json_number_value(cost) >= 0
				    ? json_number_value(cost)
				    : 0,
	};
	struct vb_event ev = { .type = VB_EV_AGENT_RESULT, .stage = c->stage,
			       .agent_result = &a, .vm_id = c->vm_id };
	c->emit(&ev, c->opaque);
}

static void on_line(struct vb_claude_parse *c, const char *line, size_t len)
{
	json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return;
	}
	const char *type = json_string_value(json_object_get(j, "type"));
	if (type && !strcmp(type, "assistant")) {
		on_assistant(c, j);
	} else if (type && !strcmp(type, "user")) {
		on_user(c, j);
	} else if (type && !strcmp(type, "result")) {
		emit_result(c, j);
		json_decref(c->result);
		c->result = j;
		return;
	}
	json_decref(j);
}

/* Stdout bytes: logged as they come, parsed a whole line at a time. */
int vb_claude_parse_stdout(struct vb_claude_parse *c, const uint8_t *d, size_t n)
{
	emit_chunk(c, "stdout", d, n);
	for (size_t i = 0; i < n; i++) {
		if (d[i] == '\n') {
			if (!c->skipping)
				on_line(c, c->line ? c->line : "", c->len);
			c->len = 0;
			c->skipping = 0;
			continue;
		}
		if (c->skipping)
			continue;
		if (c->len == LINE_MAX_BYTES) {
			c->skipping = 1;
			c->len = 0;
			continue;
		}
		if (c->len == c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 4096;
			char *p = realloc(c->line, cap);
			if (!p)
				return -1;
			c->line = p;
			c->cap = cap;
		}
		c->line[c->len++] = (char)d[i];
	}
	return 0;
}

void vb_claude_parse_stderr(struct vb_claude_parse *c, const uint8_t *d, size_t n)
{
	emit_chunk(c, "stderr", d, n);
	if (n >= STDERR_TAIL) {
		memcpy(c->err_tail, d + n - STDERR_TAIL, STDERR_TAIL);
		c->err_len = STDERR_TAIL;
	} else {
		size_t keep = c->err_len + n > STDERR_TAIL ? STDERR_TAIL - n : c->err_len;
		memmove(c->err_tail, c->err_tail + c->err_len - keep, keep);
		memcpy(c->err_tail + keep, d, n);
		c->err_len = keep + n;
	}
	c->err_tail[c->err_len] = '\0';
}

/* What claude's result says, as a stage failure (err kind VB_E_OK), or 0
 * with the result text in *final. */
int vb_claude_parse_decide(struct vb_claude_parse *c, int code, char **final, vb_error *err)
{
	char why[600];
	json_t *res = c->result;
	if (!res) {
		char tail[700];
		const char *t = c->err_len > 400 ? c->err_tail + c->err_len - 400 : c->err_tail;
		vb_term_copy(tail, sizeof(tail), t, 0);
		return vb_error_set(err, VB_E_OK, "claude-code exited with code %d without a result%s%s",
				    code, *tail ? ": " : "", tail);
	}
	const char *subtype = json_string_value(json_object_get(res, "subtype"));
	const char *text = json_string_value(json_object_get(res, "result"));
	if (json_is_true(json_object_get(res, "is_error")) || !subtype ||
	    strcmp(subtype, "success")) {
		vb_term_copy(why, sizeof(why), text ? text : "", 0);
		char st[64];
		vb_term_copy(st, sizeof(st), subtype ? subtype : "unknown", 0);
		return vb_error_set(err, VB_E_OK, "claude-code ended with %s%s%s", st,
				    *why ? ": " : "", why);
	}
	size_t n;
	*final = vb_run_utf8((const uint8_t *)(text ? text : ""), text ? strlen(text) : 0, &n);
	return *final ? 0 : vb_error_set(err, VB_E_RUNTIME, "out of memory");
}


struct vb_claude_parse *vb_claude_parse_new(void (*emit)(struct vb_event *ev, void *opaque),
					    void *opaque, const char *stage, const char *vm_id)
{
	struct vb_claude_parse *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->emit = emit;
	c->opaque = opaque;
	c->stage = strdup(stage ? stage : "");
	c->vm_id = vm_id ? strdup(vm_id) : NULL;
	if (!c->stage || (vm_id && !c->vm_id)) {
		vb_claude_parse_free(c);
		return NULL;
	}
	return c;
}

void vb_claude_parse_end(struct vb_claude_parse *c)
{
	if (c->len && !c->skipping) /* a last line without its newline */
		on_line(c, c->line, c->len);
	c->len = 0;
	for (size_t i = 0; i < c->n_pend; i++) /* calls that never got a result */
		emit_tool(c, &c->pend[i], NULL, 0);
	for (size_t i = 0; i < c->n_pend; i++)
		pending_free(&c->pend[i]);
	c->n_pend = 0;
}

void vb_claude_parse_free(struct vb_claude_parse *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_pend; i++)
		pending_free(&c->pend[i]);
	json_decref(c->result);
	free(c->line);
	free(c->stage);
	free(c->vm_id);
	free(c);
}
