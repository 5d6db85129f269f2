/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `agent.mode: interactive` (docs/agents.md, "Interactive agent stages"):
 * the agent's own terminal interface (claude-code's, codex's TUI) runs in
 * the stage's VM on a guest terminal, and the person's terminal is attached
 * to it by the caller (vb_run_options.attach: `voidbox run` uses the PTY
 * session of `voidbox shell`).  The model is reached through the stage's
 * gateway exactly as in task mode, so the credential stays on the host.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentbin/agentbin.h"
#include "llm/llm.h"
#include "run/engine.h"
#include "util/util.h"

/* A first prompt goes in as one argument, which Linux caps at 128 KiB. */
#define PROMPT_ARG_MAX ((size_t)100 << 10)

int vb_run_interactive_check(const struct vb_spec_llm_eff *llm, const struct vb_run_options *o,
			     vb_error *err)
{
	if (!o || !o->attach)
		return vb_error_set(err, VB_E_USAGE,
				    "agent mode 'interactive' attaches your terminal to the agent: "
				    "run it with `voidbox run` with stdin and stdout on a terminal "
				    "(not in a pipe), or use mode: task");
	if (vb_run_agent_binary(llm) < 0)
		return vb_error_set(err, VB_E_USAGE,
				    "agent mode 'interactive' runs claude-code or codex in the VM; "
				    "the builtin agent has no interactive mode (set llm.agent: "
				    "claude-code or codex, or use mode: task)");
	return 0; /* the provider and its credential: vb_run_agent_check */
}

/* claude-code's first start asks about its theme, the folder's trust, the
 * API key and the permission mode: answered ahead, as the person would,
 * in the sandbox user's own files (the key approved is the gateway's
 * placeholder, by its last 20 characters as claude records it). */
static int claude_setup(const struct vb_run_interactive_params *p, vb_error *err)
{
	const char *tok = vb_llm_gateway_token(p->gw);
	size_t n = strlen(tok);
	_cleanup_free_ char *state = vb_strfmt(
		"{\"hasCompletedOnboarding\":true,\"theme\":\"dark\","
		"\"customApiKeyResponses\":{\"approved\":[\"%s\"],\"rejected\":[]},"
		"\"bypassPermissionsModeAccepted\":true,"
		"\"projects\":{\"/workspace\":{\"hasTrustDialogAccepted\":true,"
		"\"hasCompletedProjectOnboarding\":true}}}\n",
		n > 20 ? tok + n - 20 : tok);
	static const char settings[] = "{\"skipDangerousModePermissionPrompt\":true}\n";
	if (!state)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	if (vb_file_write(p->sb, "/home/sandbox/.claude.json", state, strlen(state), 0600, 0,
			  err) < 0 ||
	    vb_file_mkdir(p->sb, "/home/sandbox/.claude", 0700, 0, err) < 0 ||
	    vb_file_write(p->sb, "/home/sandbox/.claude/settings.json", settings,
			  strlen(settings), 0600, 0, err) < 0) {
		vb_error_prefix(err, "cannot prepare claude-code's settings");
		return -1;
	}
	return 0;
}

int vb_run_interactive(const struct vb_run_interactive_params *p, vb_error *err)
{
	const char *prompt = p->prompt && *p->prompt ? p->prompt : NULL;
	if (prompt && strlen(prompt) > PROMPT_ARG_MAX)
		return vb_error_set(err, VB_E_OK,
				    "the prompt (with its carried input) is %zu bytes; an "
				    "interactive agent takes at most %zu as its first prompt",
				    strlen(prompt), PROMPT_ARG_MAX);
	bool claude = p->agent == VB_AGENTBIN_CLAUDE_CODE;
	char url[64];
	_cleanup_free_ char *key = NULL;
	const char *argv[40];
	size_t a = 0;
	const char *ours[8];
	size_t k = 0;
	if (claude) {
		if (claude_setup(p, err) < 0)
			return -1;
		snprintf(url, sizeof(url), "ANTHROPIC_BASE_URL=http://127.0.0.1:%u%s",
			 VB_RUN_GATEWAY_PORT, vb_llm_base_path(VB_LLM_WIRE_ANTHROPIC));
		key = vb_strfmt("ANTHROPIC_API_KEY=%s", vb_llm_gateway_token(p->gw));
		for (size_t i = 0; i < VB_RUN_CLAUDE_QUIET_N; i++) /* as in task mode */
			ours[k++] = vb_run_claude_quiet_env[i];
		argv[a++] = "claude";
		argv[a++] = "--dangerously-skip-permissions";
	} else {
		snprintf(url, sizeof(url), "%s", vb_run_codex_base_url());
		key = vb_strfmt("OPENAI_API_KEY=%s", vb_llm_gateway_token(p->gw));
		ours[k++] = "RUST_LOG=error";
		/* as `codex exec` runs in task mode (agent_codex.c), plus the
		 * folder's trust, which its TUI would ask about first */
		argv[a++] = "codex";
		a = vb_run_codex_settings(argv, a);
		argv[a++] = "-c";
		argv[a++] = "projects.\"/workspace\".trust_level=\"trusted\"";
	}
	if (!key)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	ours[k++] = url;
	ours[k++] = key;
	if (p->model) {
		argv[a++] = "--model";
		argv[a++] = p->model;
	}
	if (prompt) {
		argv[a++] = "--"; /* a prompt that starts with '-' stays the prompt */
		argv[a++] = prompt;
	}
	argv[a] = NULL;
	_cleanup_free_ const char **env = vb_run_env_join(p->env, ours, k);
	if (!env)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	struct vb_exec_params xp = { .argv = argv, .env = env, .user = "sandbox" }; /* as claude.c */
	const struct vb_run_options *o = &p->r->opts;
	int code = o->attach(p->sb, &xp, o->attach_opaque, err);
	if (code < 0 && err->kind == VB_E_CANCELLED)
		atomic_store(&p->r->cancelled, 1); /* the session took the signal: the run's */
	if (code < 0)
		return -1;
	if (code != 0)
		return vb_error_set(err, VB_E_OK, "%s exited with code %d", claude ? "claude-code" : "codex",
				    code);
	return 0;
}
