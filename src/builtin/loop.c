/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The builtin agent's loop: ask the model (Anthropic Messages, streamed,
 * so that its text shows as it comes; the tools wait for the whole
 * answer), run the tools it calls in the guest, send their results back,
 * until it answers without a tool call.  Its final text is the stage's
 * output.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "builtin/builtin.h"
#include "util/term.h"
#include "util/util.h"

#define MAX_ANSWER ((size_t)32 << 20)

static const char base_system[] =
	"You are an agent running inside an isolated Linux sandbox VM (VoidBox). Use the tools "
	"to run commands and to read and write files in the VM; the working directory is "
	"/workspace. When the task is done, answer with the final result as plain text: that "
	"answer is the output of this stage.";

/* The error an answer carries ({"error": {"type", "message"}}), for a
 * message; made safe for a terminal. */
static void answer_error(const char *body, char *out, size_t size)
{
	json_t *j = json_loads(body, 0, NULL);
	json_t *e = json_object_get(j, "error");
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *type = json_string_value(json_object_get(e, "type"));
	char m[256];
	vb_term_copy(m, sizeof(m), msg ? msg : body, 0);
	snprintf(out, size, "%s%s%s", type ? type : "", type ? ": " : "", m);
	json_decref(j);
}

/* One model request, streamed: the answer's content blocks in *content
 * (text handed to p->on_text as it arrives).  A provider that answers a
 * 200 with one JSON body instead of events (it ignored "stream") is read
 * the same. */
static int ask(struct vb_builtin_gw *c, const struct vb_builtin_params *p, json_t *req,
	       json_t **content, vb_error *err)
{
	*content = NULL;
	_cleanup_free_ char *body = json_dumps(req, JSON_COMPACT);
	if (!body)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	long timeout = 0;
	if (p->deadline_ms) {
		timeout = (long)(p->deadline_ms - vb_now_ms());
		if (timeout <= 0)
			return vb_error_set(err, VB_E_TIMEOUT, "timed out");
	}
	struct vb_builtin_stream *st = vb_builtin_stream_new(p->on_text, p->opaque);
	if (!st)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	long status = 0;
	_cleanup_free_ char *resp = NULL;
	size_t len = 0;
	int rc = vb_builtin_gw_post(c, "/v1/messages", body, timeout, MAX_ANSWER, st, &status,
				    &resp, &len, err);
	char why[600];
	if (rc < 0) {
		/* the request itself failed (a timeout...): err says so */
	} else if (vb_llm_gateway_failure(p->gw, why, sizeof(why))) {
		rc = vb_error_set(err, VB_E_OK, "%s", why);
	} else if (status != 200) {
		char e[300];
		answer_error(resp ? resp : "", e, sizeof(e));
		rc = vb_error_set(err, VB_E_OK, "the model answered HTTP %ld (%s)", status, e);
	} else if (!resp) { /* streamed */
		*content = vb_builtin_stream_end(st, why, sizeof(why));
		if (!*content)
			rc = vb_error_set(err, VB_E_OK, "%s", why);
	} else {
		json_t *answer = json_loadb(resp, len, 0, NULL);
		json_t *blocks = json_object_get(answer, "content");
		if (json_is_array(blocks))
			*content = json_incref(blocks);
		else
			rc = vb_error_set(err, VB_E_OK,
					  "the model's answer is not a Messages response");
		json_decref(answer);
		/* not streamed: its text comes whole */
		size_t i;
		json_t *b;
		json_array_foreach (*content, i, b) {
			const char *t = json_string_value(json_object_get(b, "text"));
			if (p->on_text && t && *t)
				p->on_text(t, p->opaque);
		}
	}
	vb_builtin_stream_free(st);
	return rc;
}

/* A string member of (o), or "" (never NULL). */
static const char *member(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

/* The text blocks of (content), joined by newlines. */
static char *text_of(json_t *content)
{
	size_t n = 0, i;
	json_t *b;
	json_array_foreach(content, i, b) {
		if (!strcmp(member(b, "type"), "text"))
			n += strlen(member(b, "text")) + 1;
	}
	char *s = malloc(n + 1), *o = s;
	if (!s)
		return NULL;
	json_array_foreach(content, i, b) {
		const char *t = member(b, "text");
		if (!strcmp(member(b, "type"), "text")) {
			if (o != s)
				*o++ = '\n';
			size_t k = strlen(t);
			memcpy(o, t, k);
			o += k;
		}
	}
	*o = '\0';
	return s;
}

/* Run every tool_use block of (content): a user message of tool_results,
 * or NULL when there is none (*failed set if a tool broke the sandbox). */
static json_t *run_tools(const struct vb_builtin_params *p, json_t *content, int *failed,
			 vb_error *err)
{
	json_t *results = json_array(), *b;
	size_t i;
	json_array_foreach(content, i, b) {
		if (strcmp(member(b, "type"), "tool_use"))
			continue;
		const char *name = member(b, "name");
		const char *id = member(b, "id");
		json_t *input = json_object_get(b, "input");
		char *out = NULL;
		int is_error = 0;
		int64_t t0 = vb_now_ms();
		int ext = p->extra_tool ? p->extra_tool(name, input, p->deadline_ms, &out, &is_error,
							p->opaque, err)
					: 0;
		if (ext < 0 || (!ext && vb_builtin_tool_run(p->sb, name, input, p->deadline_ms, &out,
							   &is_error, err) < 0)) {
			*failed = 1;
			json_decref(results);
			return NULL;
		}
		if (p->on_tool) {
			_cleanup_free_ char *in = input ? json_dumps(input, JSON_COMPACT | JSON_ENCODE_ANY)
							: NULL;
			struct vb_builtin_tool_call call = { .name = name, .input = in ? in : "{}",
							   .result = out, .is_error = is_error,
							   .duration_ms = vb_now_ms() - t0 };
			p->on_tool(&call, p->opaque);
		}
		json_array_append_new(results,
				      json_pack("{s:s,s:s,s:s,s:b}", "type", "tool_result",
						"tool_use_id", id, "content", out, "is_error",
						is_error));
		free(out);
	}
	if (!json_array_size(results)) {
		json_decref(results);
		return NULL;
	}
	return json_pack("{s:s,s:o}", "role", "user", "content", results);
}

int vb_builtin_run(const struct vb_builtin_params *p, char **final, vb_error *err)
{
	*final = NULL;
	unsigned max_turns = p->max_turns ? p->max_turns : VB_BUILTIN_MAX_TURNS;
	_cleanup_free_ char *system =
		p->system && *p->system ? vb_strfmt("%s\n\n%s", base_system, p->system)
					: strdup(base_system);
	json_t *tools = vb_builtin_tools_json();
	if (tools && p->extra_tools && json_array_extend(tools, p->extra_tools) < 0) {
		json_decref(tools);
		tools = NULL;
	}
	json_t *messages =
		json_pack("[{s:s,s:s}]", "role", "user", "content", p->prompt ? p->prompt : "");
	struct vb_builtin_gw *c = NULL;
	int rc = -1;
	if (!system || !tools || !messages) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		goto out;
	}
	if (!(c = vb_builtin_gw_open(p->gw, p->cancelled, p->opaque, err)))
		goto out;
	for (unsigned turn = 0; turn < max_turns; turn++) {
		if (p->cancelled && p->cancelled(p->opaque)) {
			vb_error_set(err, VB_E_CANCELLED, "cancelled");
			goto out;
		}
		json_t *req = json_pack("{s:s,s:i,s:s,s:O,s:O,s:b}", "model",
					p->model ? p->model : VB_BUILTIN_DEFAULT_MODEL, "max_tokens",
					VB_BUILTIN_MAX_TOKENS, "system", system, "tools", tools,
					"messages", messages, "stream", 1);
		json_t *answer = NULL;
		int arc = req ? ask(c, p, req, &answer, err)
			      : vb_error_set(err, VB_E_RUNTIME, "out of memory");
		json_decref(req);
		if (arc < 0)
			goto out;
		json_t *content = answer;
		json_array_append_new(messages, json_pack("{s:s,s:O}", "role", "assistant",
							  "content", content));
		int failed = 0;
		json_t *results = run_tools(p, content, &failed, err);
		if (failed) {
			json_decref(answer);
			goto out;
		}
		if (!results) { /* no tool call: the answer is final */
			*final = text_of(content);
			json_decref(answer);
			if (!*final) {
				vb_error_set(err, VB_E_RUNTIME, "out of memory");
				goto out;
			}
			rc = 0;
			goto out;
		}
		json_decref(answer);
		json_array_append_new(messages, results);
	}
	if (p->max_turns)
		vb_error_set(err, VB_E_OK,
			     "the agent did not finish within max_turns %u (model requests); raise "
			     "agent.max_turns (a box's max_turns) if it needs more",
			     max_turns);
	else
		vb_error_set(err, VB_E_OK,
			     "the agent did not finish within %u model requests (the builtin "
			     "agent's default; set agent.max_turns for another limit)",
			     max_turns);
out:
	vb_builtin_gw_close(c);
	json_decref(tools);
	json_decref(messages);
	return rc;
}
