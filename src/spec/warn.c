/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Warnings: what a valid spec asks for that the runtime will not do, said
 * by `voidbox validate` and at the start of `voidbox run`, without making
 * the spec invalid.
 */
#include <stdio.h>
#include <string.h>

#include "spec/spec.h"
#include "util/term.h"

/* The agent a stage runs, as the spec says (VOIDBOX_LLM_PROVIDER can still
 * change it at run time). */
static enum vb_spec_agent_bin agent_of(const struct vb_spec_llm_eff *e)
{
	return e->agent_explicit ? e->agent : vb_spec_default_agent(e->provider);
}

static void max_turns(const struct vb_spec *spec, const struct vb_spec_int *mt,
		      const struct vb_spec_llm_eff *e, const char *path, vb_spec_warn_fn fn,
		      void *opaque)
{
	if (!mt->set || agent_of(e) != VB_SPEC_AGENT_CODEX)
		return;
	char line[600], file[256];
	snprintf(line, sizeof(line),
		 "%s:%u:%u: %s: codex has no limit on its turns: max_turns is not applied to "
		 "codex (it is for the builtin agent and claude-code); timeout_secs and "
		 "llm.budget do apply",
		 vb_term_copy(file, sizeof(file), spec->file ? spec->file : "", 0), mt->pos.line,
		 mt->pos.col, path);
	fn(line, opaque);
}

static const char *agent_word(enum vb_spec_agent_bin a)
{
	return a == VB_SPEC_AGENT_CODEX	    ? "codex" :
	       a == VB_SPEC_AGENT_BUILTIN ? "builtin" :
					    "claude-code";
}

/* Image skills are disks of the VM: a command box gets them too. */
static bool only_images(const struct vb_spec_skills *sk)
{
	for (size_t i = 0; i < sk->n; i++)
		if (sk->v[i].type != VB_SPEC_SKILL_OCI)
			return false;
	return true;
}

/* `agent:` skills are informational: one that names another agent than
 * the stage's llm runs is most likely a mistake. */
static void agent_skills(const struct vb_spec *spec, const struct vb_spec_skills *sk,
			 const struct vb_spec_llm_eff *e, const char *path, vb_spec_warn_fn fn,
			 void *opaque)
{
	const char *runs = agent_word(agent_of(e));
	for (size_t i = 0; i < sk->n; i++) {
		const struct vb_spec_skill *s = &sk->v[i];
		if (s->type != VB_SPEC_SKILL_AGENT || !s->value || !strcmp(s->value, runs))
			continue;
		char line[700], file[256], val[80];
		vb_term_copy(val, sizeof(val), s->value, 0);
		if (strcmp(s->value, "claude-code") && strcmp(s->value, "codex") &&
		    strcmp(s->value, "builtin"))
			snprintf(line, sizeof(line),
				 "%s:%u:%u: %s.skills[%zu]: 'agent:%s' is not an agent VoidBox knows "
				 "(claude-code, codex, builtin); the stage runs %s",
				 vb_term_copy(file, sizeof(file), spec->file ? spec->file : "", 0),
				 s->pos.line, s->pos.col, path, i, val, runs);
		else
			snprintf(line, sizeof(line),
				 "%s:%u:%u: %s.skills[%zu]: 'agent:%s' is informational: the stage "
				 "runs %s (llm decides; set llm.agent: %s to run it)",
				 vb_term_copy(file, sizeof(file), spec->file ? spec->file : "", 0),
				 s->pos.line, s->pos.col, path, i, val, runs, val);
		fn(line, opaque);
	}
}

void vb_spec_warnings(const struct vb_spec *spec, vb_spec_warn_fn fn, void *opaque)
{
	if (spec->kind == VB_SPEC_AGENT) {
		max_turns(spec, &spec->agent.max_turns, &spec->llm_eff, "agent.max_turns", fn,
			  opaque);
		agent_skills(spec, &spec->agent.skills, &spec->llm_eff, "agent", fn, opaque);
	}
	if (spec->kind != VB_SPEC_PIPELINE)
		return;
	for (size_t i = 0; i < spec->pipeline.n_boxes; i++) {
		const struct vb_spec_box *b = &spec->pipeline.boxes[i];
		char path[64];
		snprintf(path, sizeof(path), "pipeline.boxes[%zu].max_turns", i);
		if (b->prompt.s)
			max_turns(spec, &b->max_turns, &b->llm_eff, path, fn, opaque);
		snprintf(path, sizeof(path), "pipeline.boxes[%zu]", i);
		if (b->prompt.s) {
			agent_skills(spec, &b->skills, &b->llm_eff, path, fn, opaque);
		} else if (b->skills.n && !only_images(&b->skills)) {
			char line[600], file[256];
			snprintf(line, sizeof(line),
				 "%s:%u:%u: %s.skills: a command box (run:) has no agent: its skills "
				 "are not put into its VM (image skills are)",
				 vb_term_copy(file, sizeof(file), spec->file ? spec->file : "", 0),
				 b->skills.v[0].pos.line, b->skills.v[0].pos.col, path);
			fn(line, opaque);
		}
	}
}
