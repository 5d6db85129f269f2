/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A stage's skills in its VM: each resolved skill (src/skill) written, file
 * by file, through the sandbox's file requests (no mount: a stage's VM has
 * few mount slots, and skills are small) into the directory its agent reads
 * skills from, before the agent starts.  Only the stage's own skills are
 * written: a skill of another box is never in this VM.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentbin/agentbin.h"
#include "run/engine.h"
#include "skill/skill.h"
#include "util/util.h"

#define HOME "/home/sandbox"

/* The agent's own directory (made private, as the agent would) and where
 * its user skills live below it. */
static void roots(int agent, const char **home_dir, const char **skills)
{
	if (agent == VB_AGENTBIN_CLAUDE_CODE) {
		*home_dir = HOME "/.claude";
		*skills = HOME "/.claude/skills";
	} else if (agent == VB_AGENTBIN_CODEX) {
		*home_dir = HOME "/.codex"; /* CODEX_HOME: codex reads $CODEX_HOME/skills */
		*skills = HOME "/.codex/skills";
	} else {
		*home_dir = HOME "/.agents";
		*skills = HOME "/.agents/skills";
	}
}

/* A SKILL.md without frontmatter, as claude-code and codex need one (codex
 * skips a skill without): its name, and its first non-empty line (without
 * a heading's '#') as the description, double-quoted for YAML.  NULL when
 * it has one (the resolver took its description) or out of memory. */
static char *frontmatter_for(const struct vb_skill *s)
{
	if (s->description)
		return NULL;
	const char *t = (const char *)s->files[0].data, *end = t + s->files[0].len;
	while (t < end && (*t == '\n' || *t == '\r' || *t == ' ' || *t == '\t' || *t == '#'))
		t++;
	char desc[204];
	size_t n = 0;
	for (; t < end && *t != '\n' && n < 200; t++) {
		unsigned char c = (unsigned char)*t;
		if (c == '"' || c == '\\')
			desc[n++] = '\\';
		desc[n++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	desc[n] = 0;
	return vb_strfmt("---\nname: %s\ndescription: \"%s\"\n---\n", s->name,
			 n ? desc : s->name);
}

static int put_skill(vb_sandbox *sb, const char *dir, const struct vb_skill *s, int agent,
		     vb_error *err)
{
	if (vb_file_mkdir(sb, dir, 0755, 0, err) < 0)
		return -1;
	_cleanup_free_ char *fm = agent >= 0 ? frontmatter_for(s) : NULL;
	for (size_t i = 0; i < s->n_files; i++) {
		const struct vb_skill_file *f = &s->files[i];
		_cleanup_free_ char *path = vb_strfmt("%s/%s", dir, f->rel);
		if (!path)
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
		if (i == 0 && fm) {
			size_t fl = strlen(fm);
			_cleanup_free_ char *md = malloc(fl + f->len + 1);
			if (!md)
				return vb_error_set(err, VB_E_RUNTIME, "out of memory");
			memcpy(md, fm, fl);
			memcpy(md + fl, f->data, f->len);
			if (vb_file_write(sb, path, md, fl + f->len, f->mode, 0, err) < 0)
				return -1;
			continue;
		}
		char *slash = strrchr(path, '/');
		if (slash - path > (ptrdiff_t)strlen(dir)) { /* in a subdirectory */
			*slash = 0;
			int rc = vb_file_mkdir(sb, path, 0755, 0, err);
			*slash = '/';
			if (rc < 0)
				return -1;
		}
		if (vb_file_write(sb, path, f->data, f->len, f->mode, 0, err) < 0)
			return -1;
	}
	return 0;
}

int vb_run_skills_provision(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb,
			    const struct vb_skill_set *set, int agent, vb_error *err)
{
	if (!set || !set->n)
		return 0;
	const char *home_dir, *skills;
	roots(agent, &home_dir, &skills);
	if (vb_file_mkdir(sb, home_dir, 0700, 0, err) < 0 ||
	    vb_file_mkdir(sb, skills, 0755, 0, err) < 0)
		return -1;
	for (size_t i = 0; i < set->n; i++) {
		const struct vb_skill *s = &set->v[i];
		if (!strcmp(s->type, "cli")) { /* a tool on PATH, not a skill directory */
			if (vb_run_skills_cli(r, u, sb, set, s, err) < 0) {
				vb_error_prefix(err, "cli tool '%s'", s->name);
				return -1;
			}
			continue;
		}
		_cleanup_free_ char *dir = vb_strfmt("%s/%s", skills, s->name);
		if (!dir)
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
		if (put_skill(sb, dir, s, agent, err) < 0) {
			vb_error_prefix(err, "skill '%s'", s->name);
			return -1;
		}
		struct vb_event_skill k = { .type = s->type, .name = s->name, .source = s->source,
					    .sha256 = s->sha256, .path = dir, .size = s->total,
					    .files = s->n_files };
		struct vb_event ev = { .type = VB_EV_SKILL_PROVISIONED, .stage = u->name,
				       .skill = &k, .vm_id = u->vm_id };
		vb_run_emit(r, &ev);
	}
	return 0;
}

char *vb_run_skills_text(const struct vb_skill_set *set)
{
	char *out = strdup("");
	const char *home_dir, *skills;
	roots(-1, &home_dir, &skills);
	for (size_t i = 0; out && set && i < set->n; i++) {
		const struct vb_skill *s = &set->v[i];
		if (!strcmp(s->type, "cli"))
			continue; /* on PATH; not a SKILL.md */
		const struct vb_skill_file *md = &s->files[0];
		char *n = vb_strfmt("%s\n## Skill: %s\n\n(Its files are in %s/%s/ in your "
				    "environment.)\n\n%.*s\n",
				    out, s->name, skills, s->name, (int)md->len, (const char *)md->data);
		free(out);
		out = n;
	}
	return out;
}
