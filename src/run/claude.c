/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A claude-code stage (docs/agents.md, "claude-code stages"): the real
 * `claude` runs headless in the box's VM as uid 1000, its model requests
 * reach the stage's LLM gateway through a loopback forward, and its
 * stream-json stdout (one JSON object per line) becomes VoidBox events:
 * agent.message per text block it says, agent.tool per tool call (name,
 * input, the result that came back), agent.result for its final `result`
 * event, which decides the stage; the raw lines are the stage's log.  Its output is a hostile guest's: lines are bounded, anything
 * that does not parse is only logged, and nothing it says is trusted
 * beyond the stage's own result.
 */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/llm.h"
#include "run/engine.h"
#include "util/term.h"
#include "util/util.h"

/* The longest stdout line parsed; longer ones (a huge tool result) are
 * logged but skipped, so a guest cannot make the host buffer without end. */
#define LINE_MAX_BYTES ((size_t)4 << 20)
/* Tool calls waiting for their result, and how much of each is kept. */
#define PENDING_MAX 64
#define TOOL_TEXT_MAX ((size_t)16 << 10)
/* The stderr tail quoted when claude ends without a result. */
#define STDERR_TAIL 2048

struct pending {
	char *id, *name, *input;
	int64_t at_ms; /* when the call was seen */
};

struct claude {
	struct vb_run *r;
	struct vb_run_unit *u;
	vb_sandbox *sb;
	char *line;
	size_t len, cap;
	int skipping;              /* in a line longer than LINE_MAX_BYTES */
	struct pending pend[PENDING_MAX];
	size_t n_pend;
	json_t *result;            /* the last `result` event */
	char err_tail[STDERR_TAIL + 1];
	size_t err_len;
};

static void emit_chunk(struct claude *c, const char *stream, const uint8_t *d, size_t n)
{
	struct vb_event ev = { .type = VB_EV_LOG_CHUNK, .stage = c->u->name, .stream = stream,
			       .data = d, .len = n, .vm_id = c->u->vm_id };
	vb_run_emit(c->r, &ev);
}

/* (s) cut to TOOL_TEXT_MAX on a character boundary, valid UTF-8. */
static char *bounded(const char *s)
{
	size_t n = strlen(s), out;
	if (n > TOOL_TEXT_MAX)
		n = TOOL_TEXT_MAX;
	return vb_run_utf8((const uint8_t *)s, n, &out);
}

static void emit_tool(struct claude *c, const struct pending *p, const char *result,
		      int is_error)
{
	struct vb_event_tool t = { .name = p->name, .input = p->input, .result = result,
				   .is_error = is_error };
	struct vb_event ev = { .type = VB_EV_AGENT_TOOL, .stage = c->u->name, .tool = &t,
			       .vm_id = c->u->vm_id, .duration_ms = vb_now_ms() - p->at_ms };
	vb_run_emit(c->r, &ev);
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
static void on_assistant(struct claude *c, json_t *msg)
{
	json_t *content = json_object_get(json_object_get(msg, "message"), "content");
	size_t i;
	json_t *b;
	json_array_foreach (content, i, b) {
		if (!strcmp(str_of(b, "type"), "text") && *str_of(b, "text")) {
			_cleanup_free_ char *text = bounded(str_of(b, "text"));
			struct vb_event ev = { .type = VB_EV_AGENT_MESSAGE, .stage = c->u->name,
					       .text = text, .vm_id = c->u->vm_id };
			if (text)
				vb_run_emit(c->r, &ev);
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
static void on_user(struct claude *c, json_t *msg)
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
static void emit_result(struct claude *c, json_t *res)
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
	struct vb_event ev = { .type = VB_EV_AGENT_RESULT, .stage = c->u->name,
			       .agent_result = &a, .vm_id = c->u->vm_id };
	vb_run_emit(c->r, &ev);
}

static void on_line(struct claude *c, const char *line, size_t len)
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
static int on_stdout(struct claude *c, const uint8_t *d, size_t n)
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

static void on_stderr(struct claude *c, const uint8_t *d, size_t n)
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

/* Run claude to its exit; *code its exit status (VB_RUN_TIMED_OUT when its
 * timeout killed it). */
static int run_claude(struct claude *c, const struct vb_exec_params *p, int *code, vb_error *err)
{
	vb_exec *ex = vb_exec_start(c->sb, p, err);
	if (!ex)
		return -1;
	int64_t kill_at = 0, guard = p->timeout_ms ? vb_now_ms() + p->timeout_ms +
							     VB_RUN_TIMEOUT_GUARD_MS
						   : 0;
	int rc = 0;
	for (;;) {
		struct vb_exec_event ev;
		int n;
		while ((n = vb_exec_next(ex, &ev, 0, err)) > 0) {
			if (ev.kind == VB_EXEC_STDOUT) {
				if (on_stdout(c, ev.data, ev.len) < 0) {
					n = vb_error_set(err, VB_E_RUNTIME, "out of memory");
					break;
				}
			} else if (ev.kind == VB_EXEC_STDERR) {
				on_stderr(c, ev.data, ev.len);
			} else {
				*code = ev.timed_out ? VB_RUN_TIMED_OUT : ev.exit_code;
				break;
			}
		}
		if (n != 0) {
			rc = n > 0 ? 0 : -1;
			break;
		}
		int64_t now = vb_now_ms();
		if (!kill_at && vb_run_cancelled(c->r)) {
			vb_error ignore;
			vb_exec_signal(ex, SIGKILL, &ignore);
			kill_at = now + VB_RUN_CANCEL_GRACE_MS;
		}
		if (kill_at && now >= kill_at) {
			rc = -1;
			break;
		}
		if (guard && now >= guard) {
			rc = vb_error_set(err, VB_E_RUNTIME,
					  "the guest did not stop claude-code at its timeout");
			break;
		}
		struct pollfd pf[2] = {
			{ .fd = vb_exec_fd(ex), .events = POLLIN },
			{ .fd = !kill_at && c->r->opts.cancel_fd > 0 ? c->r->opts.cancel_fd : -1,
			  .events = POLLIN },
		};
		if (poll(pf, 2, 1000) < 0 && errno != EINTR) {
			rc = vb_error_errno(err, errno, "poll");
			break;
		}
	}
	vb_exec_free(ex);
	if (kill_at)
		return vb_error_set(err, VB_E_CANCELLED, "cancelled");
	return rc;
}

/* What claude's result says, as a stage failure (err kind VB_E_OK), or 0
 * with the result text in *final. */
static int decide(struct claude *c, int code, char **final, vb_error *err)
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

int vb_run_claude(const struct vb_run_claude_params *p, char **final, vb_error *err)
{
	char url[64], key[160], turns[32];
	snprintf(url, sizeof(url), "ANTHROPIC_BASE_URL=http://127.0.0.1:%u%s", VB_RUN_GATEWAY_PORT,
		 vb_llm_base_path(VB_LLM_WIRE_ANTHROPIC));
	snprintf(key, sizeof(key), "ANTHROPIC_API_KEY=%s", vb_llm_gateway_token(p->gw));
	snprintf(turns, sizeof(turns), "%u", p->max_turns);
	/* the spec's env first, ours after it: the later value of a key wins */
	size_t n_env = 0;
	while (p->env && p->env[n_env])
		n_env++;
	static const char *const ours[] = {
		/* nothing but model requests leaves the guest (there is no
		 * network anyway: these keep it from waiting on one) */
		"DISABLE_AUTOUPDATER=1", "DISABLE_TELEMETRY=1", "DISABLE_ERROR_REPORTING=1",
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
	};
	size_t n_ours = sizeof(ours) / sizeof(ours[0]);
	_cleanup_free_ const char **env = calloc(n_env + n_ours + 3, sizeof(*env));
	if (!env)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	size_t k = 0;
	for (size_t i = 0; i < n_env; i++)
		env[k++] = p->env[i];
	for (size_t i = 0; i < n_ours; i++)
		env[k++] = ours[i];
	env[k++] = url;
	env[k++] = key;
	const char *argv[16];
	size_t a = 0;
	argv[a++] = "claude";
	argv[a++] = "-p";
	argv[a++] = p->prompt;
	argv[a++] = "--output-format";
	argv[a++] = "stream-json";
	argv[a++] = "--verbose";
	argv[a++] = "--dangerously-skip-permissions";
	if (p->model) {
		argv[a++] = "--model";
		argv[a++] = p->model;
	}
	if (p->max_turns) {
		argv[a++] = "--max-turns";
		argv[a++] = turns;
	}
	argv[a] = NULL;
	struct vb_exec_params xp = { .argv = argv, .env = env, .timeout_ms = p->timeout_ms };
	struct claude *c = calloc(1, sizeof(*c));
	if (!c)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	c->r = p->r;
	c->u = p->u;
	c->sb = p->sb;
	int code = -1;
	int rc = run_claude(c, &xp, &code, err);
	if (rc == 0 && c->len && !c->skipping) /* a last line without its newline */
		on_line(c, c->line, c->len);
	for (size_t i = 0; i < c->n_pend; i++) { /* calls that never got a result */
		emit_tool(c, &c->pend[i], NULL, 0);
		pending_free(&c->pend[i]);
	}
	if (rc == 0 && code == VB_RUN_TIMED_OUT)
		rc = vb_error_set(err, VB_E_TIMEOUT, "timed out");
	else if (rc == 0)
		rc = decide(c, code, final, err);
	json_decref(c->result);
	free(c->line);
	free(c);
	return rc;
}
