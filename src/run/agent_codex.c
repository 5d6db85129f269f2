/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A codex stage: the real `codex exec --json` runs in the box's VM as uid
 * 1000, its model provider pointed at the stage's LLM gateway through the
 * loopback forward (docs/agents.md, "codex stages").  Its JSONL goes to a
 * file as it streams (also as the stage's stdout log lines) and is read as
 * it comes: tool calls become agent.tool events as they finish, its last
 * agent message the stage's answer, its turn's end the stage's verdict.
 *
 * Everything in that JSONL comes from the guest: lines are bounded, bad
 * JSON is skipped, and the text that reaches a message is made safe for a
 * terminal.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llm/llm.h"
#include "run/engine.h"
#include "util/term.h"
#include "util/util.h"

/* A JSONL line longer than this is skipped (codex's own lines are far
 * shorter; a command's aggregated output is the longest part). */
#define LINE_MAX_BYTES ((size_t)1 << 20)
/* How much of a tool's input and result an event keeps. */
#define TOOL_TEXT_MAX ((size_t)16 << 10)


struct seen {
	char *last_message;  /* the last agent_message's text */
	int turn_completed;
	char failure[512];   /* turn.failed's message, made safe */
	char last_error[512]; /* the last error event's ("Reconnecting... 1/5" is one) */
};

static char *cut(const char *s)
{
	size_t n = strlen(s);
	return strndup(s, n > TOOL_TEXT_MAX ? TOOL_TEXT_MAX : n);
}

static void tool_event(const struct vb_run_codex_params *p, const char *name, const char *input,
		       const char *result, int is_error)
{
	_cleanup_free_ char *in = cut(input ? input : "");
	_cleanup_free_ char *res = cut(result ? result : "");
	struct vb_event_tool t = { .name = name, .input = in, .result = res, .is_error = is_error };
	struct vb_event ev = { .type = VB_EV_AGENT_TOOL, .stage = p->u->name, .tool = &t,
			       .vm_id = p->u->vm_id };
	vb_run_emit(p->r, &ev);
}

/* What codex said, as claude-code's words are: an agent.message (bounded,
 * valid UTF-8; the progress display makes it safe for a terminal). */
static void message_event(const struct vb_run_codex_params *p, const char *text)
{
	size_t n = strlen(text), out;
	_cleanup_free_ char *said =
		vb_run_utf8((const uint8_t *)text, n > TOOL_TEXT_MAX ? TOOL_TEXT_MAX : n, &out);
	struct vb_event ev = { .type = VB_EV_AGENT_MESSAGE, .stage = p->u->name, .text = said,
			       .vm_id = p->u->vm_id };
	if (said && *said)
		vb_run_emit(p->r, &ev);
}

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* One finished item: a tool call as an event, an agent message kept. */
static void item_done(const struct vb_run_codex_params *p, json_t *item, struct seen *s)
{
	/* early previews said item_type and assistant_message */
	const char *type = str(item, "type");
	if (!type)
		type = str(item, "item_type");
	if (!type)
		return;
	if (!strcmp(type, "agent_message") || !strcmp(type, "assistant_message")) {
		const char *text = str(item, "text");
		if (text) {
			free(s->last_message);
			s->last_message = strdup(text);
			message_event(p, text);
		}
	} else if (!strcmp(type, "command_execution")) {
		json_t *in = json_pack("{s:s}", "command", str(item, "command") ? str(item, "command") : "");
		_cleanup_free_ char *input = in ? json_dumps(in, JSON_COMPACT) : NULL;
		json_decref(in);
		json_t *code = json_object_get(item, "exit_code");
		const char *status = str(item, "status");
		int bad = (json_is_integer(code) && json_integer_value(code) != 0) ||
			  (status && strcmp(status, "completed"));
		tool_event(p, "shell", input, str(item, "aggregated_output"), bad);
	} else if (!strcmp(type, "mcp_tool_call")) {
		char name[200];
		snprintf(name, sizeof(name), "mcp__%.80s__%.80s",
			 str(item, "server") ? str(item, "server") : "",
			 str(item, "tool") ? str(item, "tool") : "");
		_cleanup_free_ char *args =
			json_dumps(json_object_get(item, "arguments") ? json_object_get(item, "arguments")
								       : json_null(),
				   JSON_COMPACT | JSON_ENCODE_ANY);
		const char *status = str(item, "status");
		tool_event(p, name, args, status, status && strcmp(status, "completed"));
	} else if (!strcmp(type, "file_change")) {
		json_t *ch = json_object_get(item, "changes");
		_cleanup_free_ char *changes =
			json_dumps(ch ? ch : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
		const char *status = str(item, "status");
		tool_event(p, "file_change", changes, status, status && strcmp(status, "completed"));
	}
	/* reasoning, todo_list, web_search and warnings ("error" items) pass */
}

static void keep(char *out, size_t size, const char *msg)
{
	vb_term_copy(out, size, msg && *msg ? msg : "(no message)", 0);
}

static void line(const struct vb_run_codex_params *p, const char *text, size_t len,
		 struct seen *s)
{
	json_t *j = json_loadb(text, len, 0, NULL);
	const char *type = str(j, "type");
	if (!type) {
		json_decref(j);
		return;
	}
	if (!strcmp(type, "item.completed"))
		item_done(p, json_object_get(j, "item"), s);
	else if (!strcmp(type, "turn.completed"))
		s->turn_completed = 1;
	else if (!strcmp(type, "turn.failed"))
		keep(s->failure, sizeof(s->failure), str(json_object_get(j, "error"), "message"));
	else if (!strcmp(type, "error")) /* also retries on the way: not the verdict */
		keep(s->last_error, sizeof(s->last_error), str(j, "message"));
	json_decref(j);
}

/* codex's stdout, split into lines as it comes, in bounded memory: each
 * whole line is read at once (events as they happen); a line longer than
 * LINE_MAX_BYTES is skipped to its end. */
struct lines {
	const struct vb_run_codex_params *p;
	struct seen *s;
	char *buf;
	size_t len;
	int skipping;
};

static void on_stdout(const uint8_t *d, size_t n, void *opaque)
{
	struct lines *l = opaque;
	for (size_t i = 0; i < n; i++) {
		if (d[i] == '\n') {
			if (!l->skipping && l->len)
				line(l->p, l->buf, l->len, l->s);
			l->len = 0;
			l->skipping = 0;
		} else if (l->skipping) {
			continue;
		} else if (l->len == LINE_MAX_BYTES) {
			l->skipping = 1; /* too long to be codex's: dropped */
		} else {
			l->buf[l->len++] = (char)d[i];
		}
	}
}

int vb_run_codex(const struct vb_run_codex_params *p, char **final, vb_error *err)
{
	struct vb_run_unit *u = p->u;
	_cleanup_free_ char *path = vb_strfmt("%s/codex.jsonl", u->dir);
	if (!path)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return vb_error_errno(err, errno, "cannot create %s", path);

	/* The gateway's URL and placeholder key; no color codes in what it
	 * prints.  Its state goes to the sandbox user's ~/.codex (CODEX_HOME
	 * must exist already; ~/.codex codex makes itself). */
	_cleanup_free_ char *key = vb_strfmt("OPENAI_API_KEY=%s", vb_llm_gateway_token(p->gw));
	const char *own[] = { vb_run_codex_base_url(), key, "NO_COLOR=1", "RUST_LOG=error" };
	_cleanup_free_ char *model = p->model ? vb_strfmt("%s", p->model) : NULL;
	_cleanup_free_ const char **env =
		key ? vb_run_env_join(p->env, own, sizeof(own) / sizeof(own[0])) : NULL;
	size_t n_mcp = 0;
	while (p->mcp && p->mcp[n_mcp])
		n_mcp++;
	_cleanup_free_ const char **argv =
		calloc(10 + VB_RUN_CODEX_SETTINGS_N + 2 * n_mcp, sizeof(*argv));
	if (!argv) {
		close(fd);
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	size_t a = 0;
	argv[a++] = "codex";
	argv[a++] = "exec";
	argv[a++] = "--json";
	argv[a++] = "--skip-git-repo-check";
	argv[a++] = "--ephemeral";
	a = vb_run_codex_settings(argv, a); /* as in interactive mode */
	if (model) {
		argv[a++] = "--model";
		argv[a++] = model;
	}
	for (size_t i = 0; i < n_mcp; i++) { /* the spec's MCP servers */
		argv[a++] = "-c";
		argv[a++] = p->mcp[i];
	}
	argv[a++] = "--"; /* a prompt that starts with '-' stays the prompt */
	argv[a++] = p->prompt;
	argv[a] = NULL;
	if (!env) {
		close(fd);
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}

	/* its stdout (the JSONL) goes to the file instead of the stage's
	 * stdout, whose place the final answer takes */
	int saved_fd = u->out_fd;
	uint64_t saved_len = u->out_len;
	u->out_fd = fd;
	u->out_len = 0;
	u->out_overflow = 0;
	/* the sandbox user, whatever an image's User says (as claude.c) */
	struct vb_exec_params ep = { .argv = argv, .env = env, .user = "sandbox",
				     .timeout_ms = p->timeout_ms };
	int code = -1;
	struct seen s = { 0 };
	_cleanup_free_ char *linebuf = malloc(LINE_MAX_BYTES);
	struct lines lines = { .p = p, .s = &s, .buf = linebuf };
	struct vb_run_tap tap = { .stdout_fn = on_stdout, .opaque = &lines, .structured = 1 };
	int rc = linebuf ? vb_run_exec_tap(p->r, u, p->sb, &ep, -1, &tap, &code, err)
			 : vb_error_set(err, VB_E_RUNTIME, "out of memory");
	if (!lines.skipping && lines.len) /* a last line without its newline */
		line(p, lines.buf, lines.len, &s);
	vb_run_budget_give(p->r, u->out_len); /* the file is not the stage's output */
	int overflow = u->out_overflow;
	u->out_fd = saved_fd;
	u->out_len = saved_len;
	u->out_overflow = 0;
	close(fd);
	if (rc < 0) {
		free(s.last_message);
		return -1;
	}
	char why[512];
	if (code == VB_RUN_TIMED_OUT) {
		free(s.last_message);
		return vb_error_set(err, VB_E_TIMEOUT, "codex timed out");
	}
	/* the gateway knows best why a model request failed (budget,
	 * credential, provider) */
	if (vb_llm_gateway_failure(p->gw, why, sizeof(why))) {
		free(s.last_message);
		return vb_error_set(err, VB_E_OK, "%s", why);
	}
	if (code == 0 && s.turn_completed && !s.failure[0]) {
		*final = s.last_message ? s.last_message : strdup("");
		return *final ? 0 : vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	free(s.last_message);
	if (s.failure[0] || s.last_error[0])
		return vb_error_set(err, VB_E_OK, "codex failed: %s",
				    s.failure[0] ? s.failure : s.last_error);
	if (overflow)
		return vb_error_set(err, VB_E_OK,
				    "codex's event stream was larger than %zu MiB; it was cut",
				    VB_RUN_MAX_OUTPUT >> 20);
	return vb_error_set(err, VB_E_OK,
			    "codex exited with code %d before finishing its turn (its output is in "
			    "`voidbox logs`)",
			    code);
}
