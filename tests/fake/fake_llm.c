/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A test-only model provider on the host's loopback: the Anthropic Messages
 * API (POST /v1/messages, SSE or JSON) and the OpenAI Responses API (POST
 * /v1/responses, SSE or JSON), answering from a script of canned turns.
 *
 *   fake_llm SCRIPT.json LOG.jsonl
 *
 * prints the port it listens on (127.0.0.1) on a line of its own, and runs
 * until its stdin closes.  Every request is appended to LOG.jsonl first, as
 * {"method", "path", "headers": {lowercase name: value}, "body", "time_ms"
 * (wall clock, when the request was whole)}, so tests
 * can check what reached the provider.  The script:
 *
 *   {"models": ["m1", ...],           optional: other models get a 404
 *    "turns": [{"status": 200,        one per model request, in order
 *               "text": "...",         a text block
 *               "tool_use": {"name", "input", "id"},   a tool call
 *                             (Responses: "namespace" too, optional)
 *               "usage": {"input_tokens", "output_tokens"},
 *               "delay_ms": 0,         between SSE events
 *               "error_type", "error", "retry_after"   for status >= 400
 *               "expect": "..."        the request must contain this text
 *                                      (e.g. the tool_result of the last
 *                                      turn's call), else a 400 saying so
 *              }, ...]}
 *
 * When the turns run out, the last one repeats.  Two more keys, for logins:
 *
 *   "require_auth": "Bearer TOKEN"    a model request whose Authorization
 *                                     is not this gets a 401 (a login's
 *                                     token that expired)
 *   "oauth": {"status": 200,          POST /v1/oauth/token (claude-code) and
 *             "access_token", "refresh_token", "expires_in",   /oauth/token
 *             "id_token", "scope",    (codex): a refresh's answer, or for a
 *             "error", "error_description"}   status >= 400 an OAuth error
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static json_t *script;
static size_t next_turn;
static FILE *log_file;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

struct req {
	char *body;
	size_t len;
	json_t *headers;
};

struct stream {
	json_t *events; /* array of strings, each a whole SSE event */
	size_t i, off; /* the event, and how much of it went */
	int delay_ms;
};

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *key,
				  const char *value)
{
	(void)kind;
	char name[256];
	size_t n = strlen(key) < sizeof(name) - 1 ? strlen(key) : sizeof(name) - 1;
	for (size_t i = 0; i < n; i++)
		name[i] = (char)(key[i] >= 'A' && key[i] <= 'Z' ? key[i] + 32 : key[i]);
	name[n] = '\0';
	json_object_set_new(cls, name, json_string(value ? value : ""));
	return MHD_YES;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *j,
				 const char *retry_after)
{
	char *text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_add_response_header(r, "request-id", "req_fake");
	if (retry_after)
		MHD_add_response_header(r, "retry-after", retry_after);
	enum MHD_Result rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static void sse(json_t *events, const char *type, json_t *data)
{
	char *d = json_dumps(data, JSON_COMPACT);
	json_decref(data);
	size_t n = strlen(type) + strlen(d) + 32;
	char *ev = malloc(n);
	snprintf(ev, n, "event: %s\ndata: %s\n\n", type, d);
	json_array_append_new(events, json_string(ev));
	free(ev);
	free(d);
}

static json_int_t usage_of(json_t *turn, const char *key, json_int_t def)
{
	json_t *v = json_object_get(json_object_get(turn, "usage"), key);
	return json_is_integer(v) ? json_integer_value(v) : def;
}

/* ---- Anthropic Messages -------------------------------------------------- */

static json_t *anthropic_content(json_t *turn)
{
	json_t *content = json_array();
	const char *text = json_string_value(json_object_get(turn, "text"));
	json_t *tool = json_object_get(turn, "tool_use");
	if (text)
		json_array_append_new(content, json_pack("{s:s,s:s}", "type", "text", "text", text));
	if (tool) {
		const char *id = json_string_value(json_object_get(tool, "id"));
		json_t *input = json_object_get(tool, "input");
		json_array_append_new(content,
				      json_pack("{s:s,s:s,s:s,s:O}", "type", "tool_use", "id",
						id ? id : "toolu_fake1", "name",
						json_string_value(json_object_get(tool, "name")),
						"input", input ? input : json_object()));
	}
	return content;
}

static json_t *anthropic_events(json_t *turn, const char *model)
{
	json_t *ev = json_array();
	json_int_t in = usage_of(turn, "input_tokens", 10), out = usage_of(turn, "output_tokens", 5);
	json_t *tool = json_object_get(turn, "tool_use");
	sse(ev, "message_start",
	    json_pack("{s:s,s:{s:s,s:s,s:s,s:s,s:[],s:n,s:n,s:{s:I,s:I}}}", "type", "message_start",
		      "message", "id", "msg_fake", "type", "message", "role", "assistant", "model",
		      model, "content", "stop_reason", "stop_sequence", "usage", "input_tokens", in,
		      "output_tokens", (json_int_t)1));
	int idx = 0;
	const char *text = json_string_value(json_object_get(turn, "text"));
	if (text) {
		sse(ev, "content_block_start",
		    json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_start", "index", idx,
			      "content_block", "type", "text", "text", ""));
		sse(ev, "ping", json_pack("{s:s}", "type", "ping"));
		/* two deltas, so a reader sees text arrive in pieces */
		size_t half = strlen(text) / 2;
		char *a = strndup(text, half);
		sse(ev, "content_block_delta",
		    json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_delta", "index", idx,
			      "delta", "type", "text_delta", "text", a));
		sse(ev, "content_block_delta",
		    json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_delta", "index", idx,
			      "delta", "type", "text_delta", "text", text + half));
		free(a);
		sse(ev, "content_block_stop",
		    json_pack("{s:s,s:i}", "type", "content_block_stop", "index", idx));
		idx++;
	}
	if (tool) {
		const char *id = json_string_value(json_object_get(tool, "id"));
		json_t *input = json_object_get(tool, "input");
		char *args = json_dumps(input ? input : json_object(), JSON_COMPACT);
		sse(ev, "content_block_start",
		    json_pack("{s:s,s:i,s:{s:s,s:s,s:s,s:{}}}", "type", "content_block_start", "index",
			      idx, "content_block", "type", "tool_use", "id", id ? id : "toolu_fake1",
			      "name", json_string_value(json_object_get(tool, "name")), "input"));
		/* in three pieces cut anywhere (on characters), as the real API
		 * sends it, so a reader must put the JSON together */
		size_t n = strlen(args), cut[4] = { 0, n / 3, 2 * n / 3, n };
		for (int k = 1; k < 3; k++)
			while (cut[k] < n && ((unsigned char)args[cut[k]] & 0xC0) == 0x80)
				cut[k]++;
		for (int k = 0; k < 3; k++) {
			char *piece = strndup(args + cut[k], cut[k + 1] > cut[k] ? cut[k + 1] - cut[k] : 0);
			sse(ev, "content_block_delta",
			    json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_delta", "index",
				      idx, "delta", "type", "input_json_delta", "partial_json", piece));
			free(piece);
		}
		sse(ev, "content_block_stop",
		    json_pack("{s:s,s:i}", "type", "content_block_stop", "index", idx));
		free(args);
	}
	sse(ev, "message_delta",
	    json_pack("{s:s,s:{s:s,s:n},s:{s:I}}", "type", "message_delta", "delta", "stop_reason",
		      tool ? "tool_use" : "end_turn", "stop_sequence", "usage", "output_tokens", out));
	sse(ev, "message_stop", json_pack("{s:s}", "type", "message_stop"));
	return ev;
}

static json_t *anthropic_message(json_t *turn, const char *model)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:n,s:{s:I,s:I}}", "id", "msg_fake", "type",
			 "message", "role", "assistant", "model", model, "content",
			 anthropic_content(turn), "stop_reason",
			 json_object_get(turn, "tool_use") ? "tool_use" : "end_turn", "stop_sequence",
			 "usage", "input_tokens", usage_of(turn, "input_tokens", 10), "output_tokens",
			 usage_of(turn, "output_tokens", 5));
}

/* ---- OpenAI Responses ---------------------------------------------------- */

static json_t *openai_output(json_t *turn)
{
	json_t *output = json_array();
	const char *text = json_string_value(json_object_get(turn, "text"));
	json_t *tool = json_object_get(turn, "tool_use");
	if (text)
		json_array_append_new(output,
				      json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:s,s:[]}]}", "type",
						"message", "id", "msg_fake", "status", "completed",
						"role", "assistant", "content", "type", "output_text",
						"text", text, "annotations"));
	if (tool) {
		const char *id = json_string_value(json_object_get(tool, "id"));
		json_t *input = json_object_get(tool, "input");
		char *args = json_dumps(input ? input : json_object(), JSON_COMPACT);
		json_t *fc = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "type", "function_call", "id",
				       "fc_fake", "call_id", id ? id : "call_fake1", "name",
				       json_string_value(json_object_get(tool, "name")), "arguments",
				       args, "status", "completed");
		/* a tool of a namespace (codex's MCP servers: mcp__SERVER) */
		json_t *ns = json_object_get(tool, "namespace");
		if (fc && json_is_string(ns))
			json_object_set(fc, "namespace", ns);
		json_array_append_new(output, fc);
		free(args);
	}
	return output;
}

static json_t *openai_response(json_t *turn, const char *model, const char *status)
{
	json_int_t in = usage_of(turn, "input_tokens", 10), out = usage_of(turn, "output_tokens", 5);
	json_t *r = json_pack("{s:s,s:s,s:s,s:s,s:o}", "id", "resp_fake", "object", "response",
			      "status", status, "model", model, "output",
			      strcmp(status, "completed") ? json_array() : openai_output(turn));
	if (!strcmp(status, "completed"))
		json_object_set_new(r, "usage",
				    json_pack("{s:I,s:I,s:I}", "input_tokens", in, "output_tokens",
					      out, "total_tokens", in + out));
	return r;
}

static void oa(json_t *ev, int *seq, const char *type, json_t *data)
{
	json_object_set_new(data, "type", json_string(type));
	json_object_set_new(data, "sequence_number", json_integer((*seq)++));
	sse(ev, type, data);
}

static json_t *openai_events(json_t *turn, const char *model)
{
	json_t *ev = json_array();
	int seq = 0, idx = 0;
	oa(ev, &seq, "response.created",
	   json_pack("{s:o}", "response", openai_response(turn, model, "in_progress")));
	oa(ev, &seq, "response.in_progress",
	   json_pack("{s:o}", "response", openai_response(turn, model, "in_progress")));
	json_t *items = openai_output(turn);
	size_t i;
	json_t *item;
	json_array_foreach(items, i, item) {
		const char *type = json_string_value(json_object_get(item, "type"));
		oa(ev, &seq, "response.output_item.added",
		   json_pack("{s:i,s:O}", "output_index", idx, "item", item));
		if (!strcmp(type, "message")) {
			const char *text = json_string_value(json_object_get(
				json_array_get(json_object_get(item, "content"), 0), "text"));
			oa(ev, &seq, "response.output_text.delta",
			   json_pack("{s:s,s:i,s:i,s:s}", "item_id", "msg_fake", "output_index", idx,
				     "content_index", 0, "delta", text));
			oa(ev, &seq, "response.output_text.done",
			   json_pack("{s:s,s:i,s:i,s:s}", "item_id", "msg_fake", "output_index", idx,
				     "content_index", 0, "text", text));
		} else {
			const char *args = json_string_value(json_object_get(item, "arguments"));
			oa(ev, &seq, "response.function_call_arguments.delta",
			   json_pack("{s:s,s:i,s:s}", "item_id", "fc_fake", "output_index", idx,
				     "delta", args));
			oa(ev, &seq, "response.function_call_arguments.done",
			   json_pack("{s:s,s:i,s:s}", "item_id", "fc_fake", "output_index", idx,
				     "arguments", args));
		}
		oa(ev, &seq, "response.output_item.done",
		   json_pack("{s:i,s:O}", "output_index", idx, "item", item));
		idx++;
	}
	json_decref(items);
	oa(ev, &seq, "response.completed",
	   json_pack("{s:o}", "response", openai_response(turn, model, "completed")));
	return ev;
}

/* ---- serving ------------------------------------------------------------- */

static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct stream *s = cls;
	if (s->i >= json_array_size(s->events))
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (s->i > 0 && !s->off && s->delay_ms)
		sleep_ms(s->delay_ms);
	const char *e = json_string_value(json_array_get(s->events, s->i));
	size_t n = strlen(e) - s->off;
	if (n > max)
		n = max; /* a big event goes in pieces */
	memcpy(buf, e + s->off, n);
	s->off += n;
	if (!e[s->off]) {
		s->i++;
		s->off = 0;
	}
	return (ssize_t)n;
}

static void free_stream(void *cls)
{
	struct stream *s = cls;
	json_decref(s->events);
	free(s);
}

static bool model_known(const char *model)
{
	json_t *models = json_object_get(script, "models");
	if (!json_is_array(models))
		return true;
	size_t i;
	json_t *m;
	json_array_foreach(models, i, m)
		if (model && json_string_value(m) && !strcmp(model, json_string_value(m)))
			return true;
	return false;
}

/* An OAuth token endpoint's answer to a refresh. */
static enum MHD_Result answer_oauth(struct MHD_Connection *c)
{
	json_t *o = json_object_get(script, "oauth");
	json_int_t status = json_integer_value(json_object_get(o, "status"));
	if (!status)
		status = 200;
	json_t *out = json_object();
	static const char *const keys[] = { "access_token", "refresh_token", "expires_in",
					    "id_token", "scope", "error", "error_description" };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (json_object_get(o, keys[i]))
			json_object_set(out, keys[i], json_object_get(o, keys[i]));
	if (status == 200)
		json_object_set_new(out, "token_type", json_string("Bearer"));
	return send_json(c, (unsigned)status, out, NULL);
}

static enum MHD_Result answer(struct MHD_Connection *c, const char *path, struct req *q)
{
	if (!strcmp(path, "/v1/oauth/token") || !strcmp(path, "/oauth/token"))
		return answer_oauth(c);
	const char *need = json_string_value(json_object_get(script, "require_auth"));
	const char *auth = json_string_value(json_object_get(q->headers, "authorization"));
	if (need && (!auth || strcmp(auth, need)))
		return send_json(c, 401,
				 json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type",
					   "authentication_error", "message",
					   "OAuth token has expired"),
				 NULL);
	bool openai = strstr(path, "/responses") != NULL;
	bool messages = strstr(path, "/messages") != NULL;
	json_t *body = json_loadb(q->body ? q->body : "", q->len, 0, NULL);
	if (messages && strstr(path, "count_tokens")) {
		json_decref(body);
		return send_json(c, 200, json_pack("{s:I}", "input_tokens", (json_int_t)(q->len / 4)),
				 NULL);
	}
	if (!openai && !messages) {
		json_decref(body);
		return send_json(c, 404,
				 json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type",
					   "not_found_error", "message", "no such endpoint"),
				 NULL);
	}
	const char *model = json_string_value(json_object_get(body, "model"));
	bool stream = json_is_true(json_object_get(body, "stream"));
	char model_copy[128];
	snprintf(model_copy, sizeof(model_copy), "%s", model ? model : "fake-model");
	json_decref(body);
	if (!model_known(model_copy)) {
		char msg[200];
		snprintf(msg, sizeof(msg), "model: %s", model_copy);
		return send_json(c, 404,
				 openai ? json_pack("{s:{s:s,s:s,s:s}}", "error", "message", msg,
						    "type", "invalid_request_error", "code",
						    "model_not_found") :
					  json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error",
						    "type", "not_found_error", "message", msg),
				 NULL);
	}
	pthread_mutex_lock(&lock);
	json_t *turns = json_object_get(script, "turns");
	size_t n = json_array_size(turns);
	json_t *turn = n ? json_array_get(turns, next_turn < n ? next_turn : n - 1) : NULL;
	next_turn++;
	json_incref(turn);
	pthread_mutex_unlock(&lock);
	if (!turn)
		turn = json_pack("{s:s}", "text", "ok");
	json_int_t status = json_integer_value(json_object_get(turn, "status"));
	if (!status)
		status = 200;
	enum MHD_Result rc;
	const char *expect = json_string_value(json_object_get(turn, "expect"));
	if (expect && (!q->body || !strstr(q->body, expect))) {
		char msg[512];
		snprintf(msg, sizeof(msg), "fake_llm: turn %zu expected %.400s in the request",
			 next_turn, expect);
		fprintf(stderr, "%s\n", msg);
		rc = send_json(c, 400,
			       openai ? json_pack("{s:{s:s,s:s,s:n}}", "error", "message", msg,
						  "type", "invalid_request_error", "code") :
					json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type",
						  "invalid_request_error", "message", msg),
			       NULL);
	} else if (status >= 400) {
		const char *type = json_string_value(json_object_get(turn, "error_type"));
		const char *msg = json_string_value(json_object_get(turn, "error"));
		const char *ra = json_string_value(json_object_get(turn, "retry_after"));
		type = type ? type : "api_error";
		msg = msg ? msg : "scripted failure";
		rc = send_json(c, (unsigned)status,
			       openai ? json_pack("{s:{s:s,s:s,s:n}}", "error", "message", msg, "type",
						  type, "code") :
					json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type",
						  type, "message", msg),
			       ra);
	} else if (!stream) {
		rc = send_json(c, (unsigned)status,
			       openai ? openai_response(turn, model_copy, "completed") :
					anthropic_message(turn, model_copy),
			       NULL);
	} else {
		struct stream *s = calloc(1, sizeof(*s));
		s->events = openai ? openai_events(turn, model_copy) :
				     anthropic_events(turn, model_copy);
		s->delay_ms = (int)json_integer_value(json_object_get(turn, "delay_ms"));
		struct MHD_Response *r = MHD_create_response_from_callback(
			MHD_SIZE_UNKNOWN, 65536, read_stream, s, free_stream);
		MHD_add_response_header(r, "Content-Type", "text/event-stream");
		MHD_add_response_header(r, "Cache-Control", "no-cache");
		MHD_add_response_header(r, "request-id", "req_fake");
		rc = MHD_queue_response(c, (unsigned)status, r);
		MHD_destroy_response(r);
	}
	json_decref(turn);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	(void)cls;
	(void)version;
	struct req *q = *con_cls;
	if (!q) {
		q = calloc(1, sizeof(*q));
		q->headers = json_object();
		MHD_get_connection_values(c, MHD_HEADER_KIND, add_header, q->headers);
		*con_cls = q;
		return MHD_YES;
	}
	if (*upload_size) {
		q->body = realloc(q->body, q->len + *upload_size + 1);
		memcpy(q->body + q->len, upload, *upload_size);
		q->len += *upload_size;
		q->body[q->len] = '\0';
		*upload_size = 0;
		return MHD_YES;
	}
	json_t *body = json_loadb(q->body ? q->body : "", q->len, 0, NULL);
	if (!body)
		body = json_string(q->body ? q->body : "");
	/* the path as sent, with its query */
	const char *beta = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "beta");
	char path[1024];
	snprintf(path, sizeof(path), "%s%s%s", url, beta ? "?beta=" : "", beta ? beta : "");
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	json_int_t ms = (json_int_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	json_t *line = json_pack("{s:s,s:s,s:O,s:o,s:I}", "method", method, "path", path, "headers",
				 q->headers, "body", body, "time_ms", ms);
	char *text = json_dumps(line, JSON_COMPACT);
	json_decref(line);
	pthread_mutex_lock(&lock);
	fprintf(log_file, "%s\n", text);
	fflush(log_file);
	pthread_mutex_unlock(&lock);
	free(text);
	return answer(c, url, q);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	struct req *q = *con_cls;
	if (!q)
		return;
	json_decref(q->headers);
	free(q->body);
	free(q);
	*con_cls = NULL;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: fake_llm SCRIPT.json LOG.jsonl\n");
		return 2;
	}
	json_error_t jerr;
	script = json_load_file(argv[1], 0, &jerr);
	if (!script) {
		fprintf(stderr, "fake_llm: %s: %s (line %d)\n", argv[1], jerr.text, jerr.line);
		return 2;
	}
	log_file = fopen(argv[2], "a");
	if (!log_file) {
		perror(argv[2]);
		return 2;
	}
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct MHD_Daemon *d = MHD_start_daemon(
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
		on_request, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED,
		on_completed, NULL, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "fake_llm: cannot listen\n");
		return 1;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	printf("%u\n", (unsigned)info->port);
	fflush(stdout);
	char b[64];
	while (read(0, b, sizeof(b)) > 0)
		;
	MHD_stop_daemon(d);
	fclose(log_file);
	json_decref(script);
	return 0;
}
