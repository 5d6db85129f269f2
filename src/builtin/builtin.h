/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The builtin agent (docs/agents.md, "The builtin agent"): VoidBox's own
 * small agent.  Its conversation with the model runs on the host, through
 * the stage's LLM gateway (so the gateway's credential handling, budget and
 * llm.request records apply to it as to any agent); only its tools run in
 * the VM, through the sandbox's exec and file requests.  Streamed
 * Anthropic Messages requests with tool_use / tool_result blocks.
 */
#ifndef VB_BUILTIN_H
#define VB_BUILTIN_H

#include <stddef.h>
#include <stdint.h>

#include "llm/llm.h"
#include "voidbox/error.h"
#include "voidbox/sandbox.h"

/* Defaults and bounds of the agent loop. */
#define VB_BUILTIN_MAX_TURNS 50           /* model requests per stage */
#define VB_BUILTIN_MAX_TOKENS 4096        /* max_tokens of one answer */
#define VB_BUILTIN_TOOL_OUTPUT (32u << 10) /* bytes of a tool's answer the model sees */
#define VB_BUILTIN_BASH_TIMEOUT_MS 120000 /* one bash call, unless the stage has less left */
#define VB_BUILTIN_DEFAULT_MODEL "claude-sonnet-4-5"

/* One tool call, as the agent.tool event records it; valid during the call. */
struct vb_builtin_tool_call {
	const char *name;   /* bash, read_file, write_file, list_dir */
	const char *input;  /* its input, compact JSON */
	const char *result; /* what the model gets back (bounded) */
	int is_error;
	int64_t duration_ms;
};
typedef void (*vb_builtin_tool_fn)(const struct vb_builtin_tool_call *call, void *opaque);

/* A piece of the answer's text as it arrives: a line (without its newline),
 * or VB_BUILTIN_TEXT_FLUSH bytes of a longer one, or what is left when a
 * text block ends; never blank; valid UTF-8.  Valid during the call. */
typedef void (*vb_builtin_text_fn)(const char *text, void *opaque);

struct vb_builtin_params {
	vb_sandbox *sb;
	struct vb_llm_gateway *gw;
	const char *model;        /* NULL: VB_BUILTIN_DEFAULT_MODEL */
	const char *system;       /* skills text etc.; NULL: the default only */
	const char *prompt;
	unsigned max_turns;       /* 0: VB_BUILTIN_MAX_TURNS */
	int64_t deadline_ms;      /* vb_now_ms() at which to stop; 0: none */
	vb_builtin_tool_fn on_tool;
	vb_builtin_text_fn on_text;   /* the answers' text as it streams in; NULL: none */
	int (*cancelled)(void *opaque); /* checked before each model request; NULL: never */
	void *opaque;
	/* More tools (the stage's MCP servers'): a json_t array of Anthropic
	 * tool definitions offered after the built-in ones, and what runs a call
	 * of one: 1 with its result in (*out), 0 when (name) is none of them,
	 * -1 on a VoidBox failure.  NULL: none. */
	void *extra_tools;
	int (*extra_tool)(const char *name, void *input, int64_t deadline_ms, char **out,
			  int *is_error, void *opaque, vb_error *err);
};

/* Run the loop to the model's final answer: its text in *final (new
 * string).  Fails with the gateway's failure when there is one (budget
 * exceeded, provider 401...), or saying why the loop stopped. */
int vb_builtin_run(const struct vb_builtin_params *p, char **final, vb_error *err);

/* ---- the streamed answer (stream.c) ---- */

#define VB_BUILTIN_SSE_EVENT_MAX (1u << 20)  /* one SSE line, one event's data */
#define VB_BUILTIN_ANSWER_MAX (32u << 20)    /* an answer's text and tool inputs, in all */
#define VB_BUILTIN_MAX_BLOCKS 256            /* content blocks of one answer */
#define VB_BUILTIN_TEXT_FLUSH 4096           /* text without a newline handed on at this size */

/* Reads an Anthropic Messages SSE stream (any bytes, in any split) into
 * the answer's content blocks.  NULL on allocation failure. */
struct vb_builtin_stream;
struct vb_builtin_stream *vb_builtin_stream_new(vb_builtin_text_fn on_text, void *opaque);
void vb_builtin_stream_free(struct vb_builtin_stream *s); /* NULL: no-op */
/* 0, or -1 once the stream is bad (a reason in vb_builtin_stream_error;
 * what follows is ignored). */
int vb_builtin_stream_feed(struct vb_builtin_stream *s, const char *data, size_t len);
/* At the end of the bytes: the answer's content (a json_t * array of
 * text and tool_use blocks with their input objects, the caller's), or
 * NULL with (why): the stream was bad, carried an error event, or stopped
 * before message_stop. */
void *vb_builtin_stream_end(struct vb_builtin_stream *s, char *why, size_t n);
const char *vb_builtin_stream_error(const struct vb_builtin_stream *s);

/* ---- the gateway, reached in-process (gwclient.c) ---- */

struct vb_builtin_gw;
/* A private unix socket (in the runtime root, 0700) whose connections are
 * served by (gw): libcurl reaches the gateway through it.  (cancelled)
 * (may be NULL) is asked while an answer streams in: true ends the
 * request (VB_E_CANCELLED). */
struct vb_builtin_gw *vb_builtin_gw_open(struct vb_llm_gateway *gw, int (*cancelled)(void *),
					 void *opaque, vb_error *err);
void vb_builtin_gw_close(struct vb_builtin_gw *c);
/* POST (body) to (path) through the gateway with the placeholder token:
 * the answer's status, and its body (NUL-terminated, at most (max) bytes)
 * in *resp, unless it is a 200 of server-sent events and (st) is given:
 * then the events go to (st) as they arrive, and *resp is NULL.  A stream
 * that (st) finds bad ends the transfer (vb_builtin_stream_error says
 * why; this returns 0). */
int vb_builtin_gw_post(struct vb_builtin_gw *c, const char *path, const char *body,
		     long timeout_ms, size_t max, struct vb_builtin_stream *st, long *status,
		     char **resp, size_t *resp_len, vb_error *err);

/* ---- tools (tools.c) ---- */

/* The tools' definitions for the request, a JSON array (jansson json_t *). */
void *vb_builtin_tools_json(void);
/* Run tool (name) with (input) (a json_t * object) in (sb): the text the
 * model gets back in *out (new string), *is_error set for a failure the
 * model should see.  -1 only when the sandbox itself failed. */
int vb_builtin_tool_run(vb_sandbox *sb, const char *name, void *input, int64_t deadline_ms,
		      char **out, int *is_error, vb_error *err);

#endif
