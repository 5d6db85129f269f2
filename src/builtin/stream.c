/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The builtin agent's streamed answer: server-sent events of the Anthropic
 * Messages API (message_start, content_block_start / delta / stop with
 * text_delta and input_json_delta, message_delta, message_stop, error)
 * assembled into the answer's content blocks, its text handed on a line at
 * a time as it arrives.  The bytes come from the provider through the
 * gateway, so nothing in them is trusted: every buffer is bounded, blocks
 * must come in order, and anything out of shape ends the stream with a
 * reason rather than a guess.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin/builtin.h"
#include "util/term.h"

struct buf {
	char *p;
	size_t len, cap;
};

struct vb_builtin_stream {
	vb_builtin_text_fn on_text;
	void *opaque;
	/* SSE framing */
	struct buf line;     /* the line being read */
	bool after_cr;       /* a '\r' ended the last line: a '\n' next is its end too */
	char event[64];      /* the event: field */
	struct buf data;     /* the data: lines of the event, joined by '\n' */
	bool have_data;
	/* the message */
	bool started, stopped;
	json_t *content;     /* the blocks so far */
	bool open;           /* the last block is open (deltas go to it) */
	struct buf text;     /* the open text block's text */
	struct buf json;     /* the open tool_use block's input, as it came */
	struct buf pending;  /* text not handed to on_text yet */
	size_t total;        /* bytes of text and tool input kept, in all */
	char error[512];     /* set once: the stream is bad, the rest is ignored */
};

static bool put(struct buf *b, const char *s, size_t n, size_t max)
{
	if (b->len + n > max)
		return false;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return false;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return true;
}

/* The first reason the stream is bad; it quotes the provider's bytes, so
 * it is made safe for a terminal. */
static void fail(struct vb_builtin_stream *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void fail(struct vb_builtin_stream *s, const char *fmt, ...)
{
	if (s->error[0])
		return;
	char raw[sizeof(s->error)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	vb_term_copy(s->error, sizeof(s->error), raw, 0);
}

struct vb_builtin_stream *vb_builtin_stream_new(vb_builtin_text_fn on_text, void *opaque)
{
	struct vb_builtin_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->on_text = on_text;
	s->opaque = opaque;
	if (!(s->content = json_array())) {
		free(s);
		return NULL;
	}
	return s;
}

void vb_builtin_stream_free(struct vb_builtin_stream *s)
{
	if (!s)
		return;
	free(s->line.p);
	free(s->data.p);
	free(s->text.p);
	free(s->json.p);
	free(s->pending.p);
	json_decref(s->content);
	free(s);
}

/* Hand (n) bytes of pending text on, without its trailing newline; blank
 * pieces are not worth an event. */
static void hand_on(struct vb_builtin_stream *s, size_t n)
{
	char *p = s->pending.p;
	size_t k = n;
	while (k && (p[k - 1] == '\n' || p[k - 1] == '\r'))
		k--;
	bool blank = true;
	for (size_t i = 0; i < k && blank; i++)
		blank = p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r';
	if (!blank && s->on_text) {
		char save = p[k];
		p[k] = '\0';
		s->on_text(p, s->opaque);
		p[k] = save;
	}
	memmove(p, p + n, s->pending.len - n);
	s->pending.len -= n;
	p[s->pending.len] = '\0';
}

/* Every whole line of the pending text; all of it at the end of a block.
 * A line longer than the flush size goes in pieces of that size, each cut
 * before a character's first byte (the text is valid UTF-8: it came out of
 * JSON strings). */
static void flush_text(struct vb_builtin_stream *s, bool all)
{
	while (s->pending.len) {
		char *nl = memchr(s->pending.p, '\n', s->pending.len);
		size_t upto = nl ? (size_t)(nl - s->pending.p) + 1 : 0;
		if (nl && upto <= VB_BUILTIN_TEXT_FLUSH) {
			hand_on(s, upto);
			continue;
		}
		if (!nl && !all && s->pending.len < VB_BUILTIN_TEXT_FLUSH)
			return;
		size_t n = s->pending.len;
		if (n > VB_BUILTIN_TEXT_FLUSH) {
			const unsigned char *u = (const unsigned char *)s->pending.p;
			n = VB_BUILTIN_TEXT_FLUSH;
			while (n > 1 && (u[n] & 0xC0) == 0x80)
				n--;
		}
		hand_on(s, n);
	}
}

static bool keep(struct vb_builtin_stream *s, struct buf *b, const char *p, size_t n)
{
	if (s->total + n > VB_BUILTIN_ANSWER_MAX || !put(b, p, n, VB_BUILTIN_ANSWER_MAX)) {
		fail(s, "the model's answer is larger than 32 MiB");
		return false;
	}
	s->total += n;
	return true;
}

static json_int_t index_of(json_t *ev)
{
	json_t *i = json_object_get(ev, "index");
	return json_is_integer(i) ? json_integer_value(i) : -1;
}

static const char *str(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v ? v : "";
}

static void block_start(struct vb_builtin_stream *s, json_t *ev)
{
	json_t *b = json_object_get(ev, "content_block");
	if (s->open || !json_is_object(b) || index_of(ev) != (json_int_t)json_array_size(s->content)) {
		fail(s, "the model's answer has a content block out of order");
		return;
	}
	if (json_array_size(s->content) >= VB_BUILTIN_MAX_BLOCKS) {
		fail(s, "the model's answer has more than 256 content blocks");
		return;
	}
	const char *type = str(b, "type");
	json_t *copy;
	if (!strcmp(type, "text")) {
		copy = json_pack("{s:s}", "type", "text");
		const char *t = str(b, "text");
		if (*t && keep(s, &s->text, t, strlen(t))) {
			put(&s->pending, t, strlen(t), VB_BUILTIN_ANSWER_MAX);
			flush_text(s, false);
		}
	} else if (!strcmp(type, "tool_use")) {
		const char *id = json_string_value(json_object_get(b, "id"));
		const char *name = json_string_value(json_object_get(b, "name"));
		if (!id || !name) {
			fail(s, "the model's answer has a tool call without id or name");
			return;
		}
		copy = json_pack("{s:s,s:s,s:s}", "type", "tool_use", "id", id, "name", name);
	} else { /* a block type this agent does not ask for: kept as it came */
		copy = json_deep_copy(b);
	}
	if (!copy || json_array_append_new(s->content, copy) < 0) {
		fail(s, "out of memory reading the model's answer");
		return;
	}
	s->open = true;
	s->text.len = s->json.len = 0;
}

static json_t *open_block(struct vb_builtin_stream *s, json_t *ev)
{
	size_t n = json_array_size(s->content);
	if (!s->open || !n || index_of(ev) != (json_int_t)(n - 1)) {
		fail(s, "the model's answer has a delta for no open content block");
		return NULL;
	}
	return json_array_get(s->content, n - 1);
}

static void block_delta(struct vb_builtin_stream *s, json_t *ev)
{
	json_t *b = open_block(s, ev);
	if (!b)
		return;
	json_t *d = json_object_get(ev, "delta");
	const char *type = str(d, "type"), *btype = str(b, "type");
	if (!strcmp(type, "text_delta") && !strcmp(btype, "text")) {
		json_t *t = json_object_get(d, "text");
		if (!json_is_string(t)) {
			fail(s, "the model's answer has a text delta without text");
			return;
		}
		size_t n = json_string_length(t);
		if (keep(s, &s->text, json_string_value(t), n)) {
			put(&s->pending, json_string_value(t), n, VB_BUILTIN_ANSWER_MAX);
			flush_text(s, false);
		}
	} else if (!strcmp(type, "input_json_delta") && !strcmp(btype, "tool_use")) {
		json_t *j = json_object_get(d, "partial_json");
		if (!json_is_string(j)) {
			fail(s, "the model's answer has a tool input delta without partial_json");
			return;
		}
		keep(s, &s->json, json_string_value(j), json_string_length(j));
	} else if (!strcmp(btype, "text") || !strcmp(btype, "tool_use")) {
		fail(s, "the model's answer has a '%s' delta in the wrong kind of block", type);
	} /* else: a delta of a block kept as it came (e.g. a signature) */
}

static void block_stop(struct vb_builtin_stream *s, json_t *ev)
{
	json_t *b = open_block(s, ev);
	if (!b)
		return;
	s->open = false;
	const char *btype = str(b, "type");
	int rc = 0;
	if (!strcmp(btype, "text")) {
		flush_text(s, true);
		rc = json_object_set_new(b, "text", json_stringn(s->text.p ? s->text.p : "", s->text.len));
	} else if (!strcmp(btype, "tool_use")) {
		json_t *input = s->json.len ? json_loadb(s->json.p, s->json.len, 0, NULL) : json_object();
		if (!json_is_object(input)) {
			json_decref(input);
			fail(s, "the model's tool call input is not a JSON object");
			return;
		}
		rc = json_object_set_new(b, "input", input);
	}
	if (rc < 0)
		fail(s, "out of memory reading the model's answer");
	s->text.len = s->json.len = 0;
}

/* One whole event: its data is one JSON object whose type says what it is
 * (the event: line says the same, and is only used for errors). */
static void dispatch(struct vb_builtin_stream *s)
{
	if (!s->have_data || s->stopped) /* after message_stop nothing counts */
		return;
	json_t *ev = json_loadb(s->data.p, s->data.len, 0, NULL);
	const char *type = str(ev, "type");
	if (!json_is_object(ev)) {
		fail(s, "the model's stream has an event that is not JSON (%s)", s->event);
	} else if (!strcmp(type, "error") || !strcmp(s->event, "error")) {
		json_t *e = json_object_get(ev, "error");
		char m[300];
		snprintf(m, sizeof(m), "%s%s%s", str(e, "type"), *str(e, "type") ? ": " : "",
			 str(e, "message"));
		fail(s, "the model's stream failed (%s)", m);
	} else if (!strcmp(type, "message_start")) {
		s->started = true;
	} else if (!s->started && strcmp(type, "ping")) {
		fail(s, "the model's stream has '%s' before message_start", type);
	} else if (!strcmp(type, "content_block_start")) {
		block_start(s, ev);
	} else if (!strcmp(type, "content_block_delta")) {
		block_delta(s, ev);
	} else if (!strcmp(type, "content_block_stop")) {
		block_stop(s, ev);
	} else if (!strcmp(type, "message_stop")) {
		if (s->open)
			fail(s, "the model's answer ended inside a content block");
		s->stopped = true;
	} /* message_delta (usage: the gateway counts it), ping, newer types: nothing to do */
	json_decref(ev);
}

static void field(struct vb_builtin_stream *s)
{
	const char *l = s->line.p ? s->line.p : "";
	size_t n = s->line.len;
	if (!n) { /* a blank line ends the event */
		dispatch(s);
		s->event[0] = '\0';
		s->data.len = 0;
		s->have_data = false;
		return;
	}
	if (l[0] == ':')
		return; /* a comment */
	const char *colon = memchr(l, ':', n);
	size_t k = colon ? (size_t)(colon - l) : n;
	const char *v = colon ? colon + 1 : l + n;
	if (*v == ' ')
		v++;
	size_t vn = n - (size_t)(v - l);
	if (k == 5 && !memcmp(l, "event", 5)) {
		snprintf(s->event, sizeof(s->event), "%.*s", (int)vn, v);
	} else if (k == 4 && !memcmp(l, "data", 4)) {
		if ((s->have_data && !put(&s->data, "\n", 1, VB_BUILTIN_SSE_EVENT_MAX)) ||
		    !put(&s->data, v, vn, VB_BUILTIN_SSE_EVENT_MAX))
			fail(s, "the model's stream has an event larger than 1 MiB");
		s->have_data = true;
	} /* id:, retry:, others: not used */
}

int vb_builtin_stream_feed(struct vb_builtin_stream *s, const char *p, size_t n)
{
	for (size_t i = 0; i < n && !s->error[0]; i++) {
		char ch = p[i];
		if (ch == '\n' && s->after_cr) {
			s->after_cr = false;
			continue;
		}
		s->after_cr = ch == '\r';
		if (ch == '\r' || ch == '\n') {
			field(s);
			s->line.len = 0;
			continue;
		}
		if (!put(&s->line, &ch, 1, VB_BUILTIN_SSE_EVENT_MAX))
			fail(s, "the model's stream has a line longer than 1 MiB");
	}
	return s->error[0] ? -1 : 0;
}

void *vb_builtin_stream_end(struct vb_builtin_stream *s, char *why, size_t n)
{
	if (!s->error[0] && s->line.len) /* a last line without its newline */
		field(s);
	if (!s->error[0] && s->have_data) /* and an event without its blank line */
		dispatch(s);
	if (!s->error[0] && !s->stopped)
		fail(s, "the model's answer stopped before its end (no message_stop)");
	if (s->error[0]) {
		snprintf(why, n, "%s", s->error);
		return NULL;
	}
	json_t *c = s->content;
	s->content = NULL;
	return c;
}

const char *vb_builtin_stream_error(const struct vb_builtin_stream *s)
{
	return s->error[0] ? s->error : NULL;
}
