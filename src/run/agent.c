/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Agent boxes (a pipeline box with `prompt`, and kind: agent, which runs as
 * a pipeline of one box): the stage's LLM gateway, the builtin agent's loop
 * against it with its tools in the box's VM, and what it did as events
 * (llm.request per model request, agent.tool per tool call) and totals.
 * claude-code (claude.c) and codex (agent_codex.c) run in the VM instead,
 * reaching the same gateway through a loopback forward (agent_link.c).
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentbin/agentbin.h"
#include "builtin/builtin.h"
#include "llm/llm.h"
#include "run/engine.h"
#include "skill/skill.h"
#include "util/util.h"

/* How much of the carried input the prompt holds inline (SPEC-V1: the rest
 * is in /workspace/input.json, which the prompt points to). */
#define PROMPT_INPUT_MAX ((size_t)16 << 10)

static const char *provider_name(enum vb_spec_provider p)
{
	static const char *const names[] = { "claude", "claude-personal", "codex",
					     "ollama", "lmstudio", "custom" };
	return (size_t)p < sizeof(names) / sizeof(names[0]) ? names[p] : "claude";
}

static const char *agent_name(enum vb_spec_agent_bin a)
{
	return a == VB_SPEC_AGENT_CODEX ? "codex" : a == VB_SPEC_AGENT_BUILTIN ? "builtin"
										: "claude-code";
}

static enum vb_spec_provider provider_by_name(const char *s, enum vb_spec_provider def)
{
	for (int i = 0; i <= VB_SPEC_PROVIDER_CUSTOM; i++)
		if (!strcmp(s, provider_name((enum vb_spec_provider)i)))
			return (enum vb_spec_provider)i;
	return def;
}

/* The agent a box runs: llm.agent, else its provider's default, where the
 * provider may come from VOIDBOX_LLM_PROVIDER (as the provider table
 * applies it). */
static enum vb_spec_agent_bin agent_of(const struct vb_spec_llm_eff *e)
{
	if (e->agent_explicit)
		return e->agent;
	const char *env = getenv("VOIDBOX_LLM_PROVIDER");
	return vb_spec_default_agent(env && *env ? provider_by_name(env, e->provider)
						 : e->provider);
}

static struct vb_llm_provider *provider_of(const struct vb_spec_llm_eff *e, vb_error *err)
{
	struct vb_llm_config cfg = { .provider = provider_name(e->provider), .model = e->model,
				     .base_url = e->base_url, .api_key_env = e->api_key_env };
	return vb_llm_provider_new(&cfg, err);
}

int vb_run_agent_check(const struct vb_spec_llm_eff *e, vb_error *err)
{
	enum vb_spec_agent_bin agent = agent_of(e);
	if (agent != VB_SPEC_AGENT_BUILTIN && agent != VB_SPEC_AGENT_CLAUDE_CODE &&
	    agent != VB_SPEC_AGENT_CODEX)
		return vb_error_set(err, VB_E_RUNTIME,
				    "agent '%s' is not available in this version yet; set llm.agent: "
				    "builtin, claude-code or codex",
				    agent_name(agent));
	struct vb_llm_provider *p = provider_of(e, err); /* its credential is there */
	if (!p)
		return -1;
	vb_llm_provider_free(p);
	return 0;
}

int vb_run_agent_binary(const struct vb_spec_llm_eff *e)
{
	enum vb_spec_agent_bin agent = agent_of(e);
	return agent == VB_SPEC_AGENT_CLAUDE_CODE ? VB_AGENTBIN_CLAUDE_CODE
	       : agent == VB_SPEC_AGENT_CODEX	  ? VB_AGENTBIN_CODEX
						  : -1;
}

/* The prompt with the carried input inline (cut at PROMPT_INPUT_MAX on a
 * character boundary, with a pointer to the whole file). */
static char *make_prompt(const char *prompt, const char *in_path, const uint8_t *in_mem,
			 size_t in_len, int has)
{
	if (!has)
		return strdup(prompt);
	_cleanup_free_ uint8_t *head = NULL;
	size_t n = 0;
	uint64_t total = in_len;
	if (in_path) {
		head = vb_run_preview(in_path, PROMPT_INPUT_MAX, &n);
		struct stat st;
		total = stat(in_path, &st) == 0 ? (uint64_t)st.st_size : n;
	} else {
		n = in_len > PROMPT_INPUT_MAX ? PROMPT_INPUT_MAX : in_len;
		head = vb_run_memdup(in_mem ? in_mem : (const uint8_t *)"", n);
	}
	if (!head)
		return NULL;
	_cleanup_free_ char *text = vb_run_utf8(head, n, &n);
	if (!text)
		return NULL;
	if (n < total)
		return vb_strfmt("%s\n\nInput (from the previous stage; the first %zu of %llu bytes, "
				 "the whole input is in /workspace/input.json):\n%s\n[truncated]",
				 prompt, n, (unsigned long long)total, text);
	return vb_strfmt("%s\n\nInput (from the previous stage, also in /workspace/input.json):\n%s",
			 prompt, text);
}

struct ctx {
	struct vb_run *r;
	struct vb_run_unit *u;
	struct vb_run_mcp *mcp; /* the stage's MCP servers (builtin agent) */
};

/* claude-code's MCP servers: its own directory, private to the sandbox user */
#define VB_RUN_CLAUDE_MCP_DIR "/home/sandbox/.claude"
#define VB_RUN_CLAUDE_MCP_CONFIG VB_RUN_CLAUDE_MCP_DIR "/voidbox-mcp.json"

/* The builtin agent's call of an MCP server's tool. */
static int mcp_tool(const char *name, void *input, int64_t deadline_ms, char **out,
		    int *is_error, void *opaque, vb_error *err)
{
	struct ctx *c = opaque;
	return vb_run_mcp_call(c->mcp, name, input, deadline_ms, VB_BUILTIN_TOOL_OUTPUT, out,
			       is_error, err);
}

static void on_request(const struct vb_llm_request *q, void *opaque)
{
	struct ctx *c = opaque;
	struct vb_event_llm l = { .provider = q->provider, .model = q->model, .path = q->path,
				  .input_tokens = q->input_tokens,
				  .output_tokens = q->output_tokens, .cost_usd = q->cost_usd,
				  .latency_ms = q->latency_ms, .ttfb_ms = q->ttfb_ms,
				  .status = q->status, .attempts = q->attempts };
	struct vb_event ev = { .type = VB_EV_LLM_REQUEST, .stage = c->u->name, .llm = &l,
			       .error = q->error, .vm_id = c->u->vm_id };
	vb_run_emit(c->r, &ev);
}

/* The builtin agent's text as it streams in, a line at a time. */
static void on_text(const char *text, void *opaque)
{
	struct ctx *c = opaque;
	struct vb_event ev = { .type = VB_EV_AGENT_MESSAGE, .stage = c->u->name, .text = text,
			       .vm_id = c->u->vm_id };
	vb_run_emit(c->r, &ev);
}

static int is_cancelled(void *opaque)
{
	struct ctx *c = opaque;
	return vb_run_cancelled(c->r);
}

static void on_tool(const struct vb_builtin_tool_call *call, void *opaque)
{
	struct ctx *c = opaque;
	struct vb_event_tool t = { .name = call->name, .input = call->input,
				   .result = call->result, .is_error = call->is_error };
	struct vb_event ev = { .type = VB_EV_AGENT_TOOL, .stage = c->u->name, .tool = &t,
			       .duration_ms = call->duration_ms, .vm_id = c->u->vm_id };
	vb_run_emit(c->r, &ev);
}

static int run_agent(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb,
		     const struct vb_run_agent_box *a, struct vb_run_mcp *mcp, vb_error *err)
{
	struct vb_llm_provider *prov = provider_of(a->llm, err); /* checked before the run */
	if (!prov) {
		err->kind = VB_E_OK;
		return 1;
	}
	const char *model = vb_llm_provider_model(prov);
	_cleanup_free_ char *model_copy = model ? strdup(model) : NULL;
	struct ctx c = { .r = r, .u = u, .mcp = mcp };
	const struct vb_spec_llm_budget *b = a->llm->budget;
	struct vb_llm_gateway_cfg gc = {
		.provider = prov,
		.budget = { .max_tokens = b && b->max_tokens.set ? (uint64_t)b->max_tokens.v : 0,
			    .max_requests = b && b->max_requests.set ? (uint64_t)b->max_requests.v : 0,
			    .max_cost_usd = b ? b->max_cost_usd : 0 },
		.shared = r->llm_budget,
		.on_request = on_request,
		.opaque = &c,
	};
	struct vb_llm_gateway *gw = vb_llm_gateway_new(&gc, err);
	if (!gw)
		return 1;
	_cleanup_free_ char *system = vb_run_skills_text(a->skills);
	_cleanup_free_ char *prompt =
		make_prompt(a->prompt ? a->prompt : "", a->in_path, a->in_mem, a->in_len, a->in_has);
	char *final = NULL;
	int rc;
	if (!system || !prompt) {
		rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
	} else if (a->mode == VB_SPEC_AGENT_INTERACTIVE) {
		/* claude-code and codex read their skills from their skills
		 * directories themselves */
		struct vb_run_interactive_params p = {
			.r = r, .sb = sb, .gw = gw, .agent = vb_run_agent_binary(a->llm), .env = a->env,
			.model = model_copy, .prompt = prompt,
		};
		vb_run_agent_link_set(a->link, gw);
		rc = vb_run_interactive(&p, err);
		vb_run_agent_link_set(a->link, NULL);
		if (rc == 0)
			final = strdup("");
		if (rc == 0 && !final)
			rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
	} else if (vb_run_agent_binary(a->llm) == VB_AGENTBIN_CLAUDE_CODE) {
		struct vb_run_claude_params p = {
			.r = r, .u = u, .sb = sb, .gw = gw, .env = a->env, .model = model_copy,
			.prompt = prompt, .timeout_ms = a->timeout_ms, .max_turns = a->max_turns,
			.mcp_config = a->skills && a->skills->n_mcp ? VB_RUN_CLAUDE_MCP_CONFIG : NULL,
		};
		vb_run_agent_link_set(a->link, gw);
		rc = vb_run_claude(&p, &final, err);
		vb_run_agent_link_set(a->link, NULL);
	} else if (agent_of(a->llm) == VB_SPEC_AGENT_CODEX) {
		struct vb_run_codex_params p = {
			.r = r, .u = u, .sb = sb, .gw = gw, .env = a->env, .model = model_copy,
			.prompt = prompt, .timeout_ms = a->timeout_ms,
		};
		char **over = a->skills && a->skills->n_mcp ? vb_run_mcp_codex_overrides(a->skills)
							     : NULL;
		p.mcp = (const char *const *)over;
		if (a->skills && a->skills->n_mcp && !over) {
			rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
		} else {
			vb_run_agent_link_set(a->link, gw);
			rc = vb_run_codex(&p, &final, err);
			vb_run_agent_link_set(a->link, NULL);
		}
		for (size_t i = 0; over && over[i]; i++)
			free(over[i]);
		free(over);
	} else {
		struct vb_builtin_params p = {
			.sb = sb, .gw = gw, .model = model_copy, .system = system, .prompt = prompt,
			.max_turns = a->max_turns,
			.deadline_ms = a->timeout_ms ? vb_now_ms() + a->timeout_ms : 0,
			.on_tool = on_tool, .on_text = on_text, .cancelled = is_cancelled,
			.opaque = &c, .extra_tools = mcp ? vb_run_mcp_tools_json(mcp) : NULL,
			.extra_tool = mcp ? mcp_tool : NULL,
		};
		if (mcp && !p.extra_tools)
			rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
		else
			rc = vb_builtin_run(&p, &final, err);
		json_decref(p.extra_tools);
	}
	/* the agent failed after the gateway refused or failed a request (a
	 * budget, the provider's 401...): that is why, whatever it said */
	char gw_why[512];
	if (rc < 0 && err->kind == VB_E_OK && vb_llm_gateway_failure(gw, gw_why, sizeof(gw_why))) {
		vb_error_clear(err);
		rc = vb_error_set(err, VB_E_OK, "%s", gw_why);
		enum vb_llm_budget_hit hit = vb_llm_gateway_budget_hit(gw);
		u->budget_hit = hit == VB_LLM_BUDGET_RUN     ? VB_RUN_BUDGET_RUN :
				hit == VB_LLM_BUDGET_STAGE   ? VB_RUN_BUDGET_STAGE :
							       VB_RUN_BUDGET_NONE;
	}
	struct vb_llm_totals t;
	vb_llm_gateway_totals(gw, &t);
	u->llm_requests = t.requests;
	u->llm_input_tokens = t.input_tokens;
	u->llm_output_tokens = t.output_tokens;
	u->llm_cost_usd = t.cost_usd;
	u->is_agent = 1;
	vb_llm_gateway_free(gw);
	if (rc < 0) {
		if (err->kind == VB_E_TIMEOUT) {
			vb_error_clear(err);
			vb_error_set(err, VB_E_OK, "timed out after %u s", a->timeout_ms / 1000);
		}
		return err->kind == VB_E_OK ? 1 : -1;
	}
	/* the final text is the agent's stdout: the output unless output_file has one */
	size_t len = strlen(final);
	if (len && vb_run_budget_take(r, len) < 0) {
		free(final);
		char why[300];
		vb_run_budget_msg(r, why, sizeof(why));
		vb_error_set(err, VB_E_OK, "%s", why);
		return 1;
	}
	int w = vb_write_full(u->out_fd, final, len);
	free(final);
	if (w < 0)
		return vb_error_errno(err, errno, "cannot keep the agent's answer");
	u->out_len = len;
	u->exit_code = 0;
	return 0;
}

int vb_run_agent(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb,
		 const struct vb_run_agent_box *a, vb_error *err)
{
	/* the stage's skills, where its agent looks, before it starts */
	if (vb_run_skills_provision(r, u, sb, a->skills, vb_run_agent_binary(a->llm), err) < 0)
		return err->kind == VB_E_OK ? 1 : -1; /* VB_E_OK: the stage's own tool failed */
	/* MCP servers: the builtin agent's loop speaks to them itself; the
	 * other agents are not given them yet (docs/skills.md) */
	struct vb_run_mcp *mcp = NULL;
	int bin = vb_run_agent_binary(a->llm);
	if (a->skills && a->skills->n_mcp) {
		if (a->mode == VB_SPEC_AGENT_INTERACTIVE) {
			vb_error_set(err, VB_E_OK,
				     "MCP servers (mcp: skills) are not given to an interactive agent "
				     "in this version");
			return 1;
		}
		/* each server answers once before the agent starts; claude-code
		 * then starts its own from its --mcp-config */
		if (vb_run_mcp_start(r, u, sb, a->skills, &mcp, err) < 0) {
			if (err->kind != VB_E_VMDIED && err->kind != VB_E_CANCELLED)
				err->kind = VB_E_OK; /* the server's failure: the stage's */
			return err->kind == VB_E_OK ? 1 : -1;
		}
		if (bin >= 0) { /* claude-code and codex start their own */
			vb_run_mcp_free(mcp);
			mcp = NULL;
		}
		if (bin == VB_AGENTBIN_CLAUDE_CODE) {
			if (vb_file_mkdir(sb, VB_RUN_CLAUDE_MCP_DIR, 0700, 0, err) < 0 ||
			    vb_run_mcp_config_write(sb, a->skills, VB_RUN_CLAUDE_MCP_CONFIG, err) < 0)
				return -1;
		}
	}
	int rc = run_agent(r, u, sb, a, mcp, err);
	vb_run_mcp_free(mcp);
	return rc;
}
