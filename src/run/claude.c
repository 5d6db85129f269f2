/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A claude-code stage (docs/agents.md, "claude-code stages"): the real
 * `claude` runs headless in the box's VM as uid 1000, its model requests
 * reach the stage's LLM gateway through a loopback forward, and its
 * stream-json stdout becomes VoidBox events (claude_parse.c): the raw
 * lines as the stage's log, agent.message per text block it says,
 * agent.tool per tool call (name, input, the result that came back),
 * agent.result for its final `result` line, which decides the stage.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/llm.h"
#include "run/claude.h"
#include "run/engine.h"
#include "util/util.h"

/* Where the prompt waits for claude's stdin (the guest's tmpfs). */
#define PROMPT_FILE "/tmp/.voidbox-prompt"

struct ctx {
	struct vb_run *r;
	vb_sandbox *sb;
	struct vb_claude_parse *parse;
};

static void emit(struct vb_event *ev, void *opaque)
{
	struct ctx *c = opaque;
	vb_run_emit(c->r, ev);
}

/* Run claude to its exit; *code its exit status (VB_RUN_TIMED_OUT when its
 * timeout killed it). */
static int run_claude(struct ctx *c, const struct vb_exec_params *p, int *code, vb_error *err)
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
				if (vb_claude_parse_stdout(c->parse, ev.data, ev.len) < 0) {
					n = vb_error_set(err, VB_E_RUNTIME, "out of memory");
					break;
				}
			} else if (ev.kind == VB_EXEC_STDERR) {
				vb_claude_parse_stderr(c->parse, ev.data, ev.len);
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

int vb_run_claude(const struct vb_run_claude_params *p, char **final, vb_error *err)
{
	char url[64], key[160], turns[32];
	snprintf(url, sizeof(url), "ANTHROPIC_BASE_URL=http://127.0.0.1:%u%s", VB_RUN_GATEWAY_PORT,
		 vb_llm_base_path(VB_LLM_WIRE_ANTHROPIC));
	snprintf(key, sizeof(key), "ANTHROPIC_API_KEY=%s", vb_llm_gateway_token(p->gw));
	snprintf(turns, sizeof(turns), "%u", p->max_turns);
	/* the spec's env first, ours after it: the later value of a key wins */
	const char *ours[VB_RUN_CLAUDE_QUIET_N + 3];
	size_t n_ours = 0;
	for (size_t i = 0; i < VB_RUN_CLAUDE_QUIET_N; i++)
		ours[n_ours++] = vb_run_claude_quiet_env[i];
	ours[n_ours++] = url;
	ours[n_ours++] = key;
	/* claude-code gives an MCP server 30 s to connect: under TCG a node
	 * server takes a third of that idle, so as long as our own check,
	 * unless the spec's env says otherwise */
	char mcp_timeout[40];
	snprintf(mcp_timeout, sizeof(mcp_timeout), "MCP_TIMEOUT=%d", VB_RUN_MCP_START_MS);
	int spec_timeout = 0;
	for (size_t i = 0; p->env && p->env[i]; i++)
		spec_timeout |= !strncmp(p->env[i], "MCP_TIMEOUT=", 12);
	if (p->mcp_config && !spec_timeout)
		ours[n_ours++] = mcp_timeout;
	_cleanup_free_ const char **env = vb_run_env_join(p->env, ours, n_ours);
	if (!env)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	/* the prompt goes in on stdin, from a file: with the carried input
	 * it may be longer than one argument may be (128 KiB) */
	if (vb_file_write(p->sb, PROMPT_FILE, p->prompt, strlen(p->prompt), 0600, 0, err) < 0) {
		vb_error_prefix(err, "cannot give claude-code its prompt");
		return -1;
	}
	const char *argv[20];
	size_t a = 0;
	argv[a++] = "sh";
	argv[a++] = "-c";
	argv[a++] = "f=$1; shift; exec \"$@\" < \"$f\"";
	argv[a++] = "sh";
	argv[a++] = PROMPT_FILE;
	argv[a++] = "claude";
	argv[a++] = "-p";
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
	if (p->mcp_config) { /* the spec's MCP servers, and no others */
		argv[a++] = "--mcp-config";
		argv[a++] = p->mcp_config;
		argv[a++] = "--strict-mcp-config";
	}
	argv[a] = NULL;
	struct vb_exec_params xp = { .argv = argv, .env = env, .timeout_ms = p->timeout_ms };
	struct ctx c = { .r = p->r, .sb = p->sb };
	c.parse = vb_claude_parse_new(emit, &c, p->u->name, p->u->vm_id);
	if (!c.parse)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	int code = -1;
	int rc = run_claude(&c, &xp, &code, err);
	vb_claude_parse_end(c.parse);
	if (rc == 0 && code == VB_RUN_TIMED_OUT)
		rc = vb_error_set(err, VB_E_TIMEOUT, "timed out");
	else if (rc == 0)
		rc = vb_claude_parse_decide(c.parse, code, final, err);
	vb_claude_parse_free(c.parse);
	return rc;
}
