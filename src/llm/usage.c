/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tokens and cost from what the provider answered.  The response passes
 * through the gateway untouched; this reads a copy of it as it goes: the
 * `usage` objects of the Anthropic Messages SSE events (message_start, then
 * message_delta's cumulative output count), of OpenAI's response.completed,
 * or of a whole non-streaming JSON body.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/llm.h"

/* An SSE data line above this is a large text delta, never a usage event. */
#define MAX_LINE (256 * 1024)
/* A non-streaming body above this is not scanned (its usage is lost). */
#define MAX_BODY (16 * 1024 * 1024)

void vb_llm_usage_init(struct vb_llm_usage_scan *s, bool sse)
{
	memset(s, 0, sizeof(*s));
	s->sse = sse;
}

void vb_llm_usage_free(struct vb_llm_usage_scan *s)
{
	free(s->buf);
	s->buf = NULL;
	s->len = s->cap = 0;
}

static uint64_t num(json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static void take_model(struct vb_llm_usage *u, json_t *o)
{
	const char *m = json_string_value(json_object_get(o, "model"));
	if (m && *m)
		snprintf(u->model, sizeof(u->model), "%s", m);
}

/* A usage object of either API: the counts it has replace ours (message_delta
 * repeats them cumulatively).  Anthropic counts cache tokens apart from
 * input_tokens; OpenAI counts them inside it. */
static void take_usage(struct vb_llm_usage *u, json_t *usage)
{
	json_t *v;
	if (!json_is_object(usage))
		return;
	if ((v = json_object_get(usage, "input_tokens")) || (v = json_object_get(usage, "prompt_tokens")))
		u->input_tokens = num(v);
	if ((v = json_object_get(usage, "cache_creation_input_tokens")))
		u->cache_write_tokens = num(v);
	if ((v = json_object_get(usage, "cache_read_input_tokens")))
		u->cache_read_tokens = num(v);
	if ((v = json_object_get(usage, "output_tokens")) ||
	    (v = json_object_get(usage, "completion_tokens")))
		u->output_tokens = num(v);
}

static void scan_object(struct vb_llm_usage *u, json_t *j)
{
	const char *type = json_string_value(json_object_get(j, "type"));
	if (!type)
		type = "";
	if (!strcmp(type, "message_start")) {
		json_t *msg = json_object_get(j, "message");
		take_model(u, msg);
		take_usage(u, json_object_get(msg, "usage"));
	} else if (!strcmp(type, "message_delta")) {
		/* cumulative; newer API versions repeat the input counts here */
		take_usage(u, json_object_get(j, "usage"));
	} else if (!strncmp(type, "response.", 9)) {
		json_t *r = json_object_get(j, "response");
		take_model(u, r);
		take_usage(u, json_object_get(r, "usage"));
	} else {
		/* a non-streaming body: Messages, Responses or Chat Completions */
		take_model(u, j);
		take_usage(u, json_object_get(j, "usage"));
	}
}

static void scan_json(struct vb_llm_usage *u, const char *text, size_t len)
{
	json_t *j = json_loadb(text, len, 0, NULL);
	if (json_is_object(j))
		scan_object(u, j);
	json_decref(j);
}

static void sse_line(struct vb_llm_usage_scan *s)
{
	size_t n = s->len;
	if (n && s->buf[n - 1] == '\r')
		n--;
	if (n > 5 && !memcmp(s->buf, "data:", 5))
		scan_json(&s->u, s->buf + 5, n - 5);
}

static bool append(struct vb_llm_usage_scan *s, const char *data, size_t len, size_t max)
{
	if (s->overflow || s->len + len > max) {
		s->overflow = true;
		return false;
	}
	if (s->len + len + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 1024;
		while (cap < s->len + len + 1)
			cap *= 2;
		char *b = realloc(s->buf, cap);
		if (!b) {
			s->overflow = true;
			return false;
		}
		s->buf = b;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, data, len);
	s->len += len;
	return true;
}

void vb_llm_usage_feed(struct vb_llm_usage_scan *s, const char *data, size_t len)
{
	if (!s->sse) {
		append(s, data, len, MAX_BODY);
		return;
	}
	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl ? (size_t)(nl - data) : len;
		append(s, data, take, MAX_LINE);
		if (!nl)
			return;
		if (!s->overflow)
			sse_line(s);
		s->len = 0;
		s->overflow = false;
		data += take + 1;
		len -= take + 1;
	}
}

void vb_llm_usage_end(struct vb_llm_usage_scan *s)
{
	if (!s->overflow && s->len) {
		if (s->sse)
			sse_line(s);
		else
			scan_json(&s->u, s->buf, s->len);
	}
	s->len = 0;
}

uint64_t vb_llm_usage_tokens(const struct vb_llm_usage *u)
{
	return u->input_tokens + u->cache_write_tokens + u->cache_read_tokens + u->output_tokens;
}

/* USD per million tokens, input and output, as published by Anthropic and
 * OpenAI.  Longest matching prefix wins; dated snapshots
 * ("claude-sonnet-4-5-20250929") match their family's entry. */
static const struct price {
	const char *prefix;
	double in, out;
} prices[] = {
	{ "claude-opus-4-5", 5, 25 },      { "claude-opus-4-1", 15, 75 },
	{ "claude-opus-4", 15, 75 },       { "claude-3-opus", 15, 75 },
	{ "claude-sonnet-4", 3, 15 },      { "claude-3-7-sonnet", 3, 15 },
	{ "claude-3-5-sonnet", 3, 15 },    { "claude-haiku-4-5", 1, 5 },
	{ "claude-3-5-haiku", 0.8, 4 },    { "claude-3-haiku", 0.25, 1.25 },
	{ "gpt-5-nano", 0.05, 0.4 },       { "gpt-5-mini", 0.25, 2 },
	{ "gpt-5", 1.25, 10 },             { "gpt-4.1-nano", 0.1, 0.4 },
	{ "gpt-4.1-mini", 0.4, 1.6 },      { "gpt-4.1", 2, 8 },
	{ "gpt-4o-mini", 0.15, 0.6 },      { "gpt-4o", 2.5, 10 },
	{ "o4-mini", 1.1, 4.4 },           { "o3-mini", 1.1, 4.4 },
	{ "o3", 2, 8 },                    { "codex-mini", 1.5, 6 },
};

/* Newer Claude models than the table knows: the family's latest price. */
static const struct price families[] = {
	{ "opus", 5, 25 },
	{ "sonnet", 3, 15 },
	{ "haiku", 1, 5 },
};

double vb_llm_cost_usd(const char *model, const struct vb_llm_usage *u, bool *known)
{
	const struct price *best = NULL;
	size_t best_len = 0;
	if (known)
		*known = false;
	if (!model)
		return 0;
	for (size_t i = 0; i < sizeof(prices) / sizeof(prices[0]); i++) {
		size_t n = strlen(prices[i].prefix);
		if (n > best_len && !strncmp(model, prices[i].prefix, n)) {
			best = &prices[i];
			best_len = n;
		}
	}
	if (!best && !strncmp(model, "claude-", 7))
		for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
			if (strstr(model, families[i].prefix))
				best = &families[i];
	if (!best)
		return 0;
	if (known)
		*known = true;
	double in = (double)u->input_tokens + 1.25 * (double)u->cache_write_tokens +
		    0.1 * (double)u->cache_read_tokens;
	return (in * best->in + (double)u->output_tokens * best->out) / 1e6;
}
