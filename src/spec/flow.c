/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Schema v1, part two: pipelines (boxes and stages) and workflows (steps and
 * their dependencies), with every cross-reference checked: stages name
 * boxes, inputs name outputs of earlier stages, steps name steps, and the
 * step graph has no cycle.
 */
#include "spec/spec_internal.h"

#include <stdlib.h>
#include <string.h>

#define MAX_SECS 31536000

static const char *const pipeline_fields[] = { "boxes", "stages", NULL };
static const char *const box_fields[] = { "name", "prompt", "run", "skills", "llm",
					  "timeout_secs", "sandbox", "outputs", "inputs",
					  "output_file", "max_turns", NULL };
static const char *const run_fields[] = { "program", "args", "stdin_from", NULL };
static const char *const output_fields[] = { "name", "guest", NULL };
static const char *const input_fields[] = { "from", "guest", NULL };
static const char *const stage_types[] = { "box", "fan_out", NULL };
static const char *const stage_box_fields[] = { "type", "name", NULL };
static const char *const stage_fan_fields[] = { "type", "boxes", NULL };
static const char *const stage_any_fields[] = { "type", "name", "boxes", NULL };
static const char *const workflow_fields[] = { "steps", "output_step", NULL };
static const char *const step_fields[] = { "name", "run", "depends_on", "mode", "timeout_secs", NULL };
static const char *const step_modes[] = { "task", "service", NULL };

/* Names to indices, sorted for lookup; also finds duplicates. */
struct name_entry {
	const struct vb_spec_str *name;
	size_t idx;                       /* position in the list */
};

struct name_index {
	struct name_entry *v;             /* sorted by name, then position */
	const char **list;                /* NULL-terminated, file order: for suggestions */
	size_t n;
};

static int cmp_entry(const void *a, const void *b)
{
	const struct name_entry *x = a, *y = b;
	int r = strcmp(x->name->s, y->name->s);
	if (r)
		return r;
	return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

/* (names)[i] may have s == NULL (a box without a valid name): skipped.
 * Duplicates are reported as "duplicate WHAT name", at
 * (item_paths)[i] if given, else at LIST_PATH[i].ITEM. */
static int index_build(struct spec_ctx *c, struct name_index *ix, const struct vb_spec_str *const *names,
		       size_t n, const char *what, const char *list_path, const char *item,
		       char (*item_paths)[SPEC_PATH_MAX])
{
	memset(ix, 0, sizeof(*ix));
	ix->v = calloc(n + 1, sizeof(*ix->v));
	ix->list = calloc(n + 1, sizeof(*ix->list));
	if (!ix->v || !ix->list) {
		free(ix->v);
		free(ix->list);
		memset(ix, 0, sizeof(*ix));
		spec_oom(c);
		return -1;
	}
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (names[i]->s) {
			ix->list[m] = names[i]->s;
			ix->v[m++] = (struct name_entry){ names[i], i };
		}
	}
	qsort(ix->v, m, sizeof(*ix->v), cmp_entry);
	size_t k = 0;
	for (size_t j = 0; j < m; j++) {
		struct name_entry e = ix->v[j];
		if (k && strcmp(ix->v[k - 1].name->s, e.name->s) == 0) {
			char p[SPEC_PATH_MAX], ip[SPEC_PATH_MAX], clip[64];
			if (item_paths) {
				memcpy(p, item_paths[e.idx], sizeof(p));
			} else {
				spec_path_index(ip, list_path, e.idx);
				spec_path(p, ip, item);
			}
			spec_diag(c, e.name->pos, p, "duplicate %s name '%s' (first used at %u:%u)", what,
				  spec_clip(e.name->s, clip, sizeof(clip)), ix->v[k - 1].name->pos.line,
				  ix->v[k - 1].name->pos.col);
			continue;
		}
		ix->v[k++] = e;
	}
	ix->n = k;
	return 0;
}

static size_t index_find(const struct name_index *ix, const char *name)
{
	size_t lo = 0, hi = ix->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(ix->v[mid].name->s, name);
		if (!r)
			return ix->v[mid].idx;
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return SIZE_MAX;
}

static void index_free(struct name_index *ix)
{
	free(ix->v);
	free(ix->list);
}

/* Look (ref) up; report "WHAT unknown KIND 'x' (did you mean 'y'?)". */
static size_t resolve_ref(struct spec_ctx *c, const struct name_index *ix,
			  const struct vb_spec_str *ref, const char *path, const char *what)
{
	size_t i = index_find(ix, ref->s);
	if (i != SIZE_MAX)
		return i;
	char clip[64], hint[96] = "";
	const char *s = vb_spec_suggest(ref->s, ix->list);
	if (s)
		snprintf(hint, sizeof(hint), " (did you mean '%s'?)", s);
	spec_diag(c, ref->pos, path, "%s '%s'%s", what, spec_clip(ref->s, clip, sizeof(clip)), hint);
	return SIZE_MAX;
}

static const struct node *field(const struct node *map, const char *key, const char *parent,
				char *path)
{
	spec_path(path, parent, key);
	return spec_map_get(map, key);
}

static void parse_run(struct spec_ctx *c, const struct node *v, const char *path, const char *where,
		      struct vb_spec_run *run)
{
	char p[SPEC_PATH_MAX];
	if (spec_is_null(v)) {
		spec_diag(c, v->pos, path, "expected a map with 'program', found null");
		return;
	}
	if (spec_get_map(c, v, path) <= 0)
		return;
	run->set = true;
	run->pos = v->pos;
	run->stdin_index = SIZE_MAX;
	spec_check_fields(c, v, path, where, run_fields);
	if (spec_require(c, v, path, where, "program") &&
	    spec_get_str(c, field(v, "program", path, p), p, &run->program) > 0 && !run->program.s[0])
		spec_diag(c, run->program.pos, p, "program is empty");
	spec_get_strlist(c, field(v, "args", path, p), p, &run->args);
	spec_get_str(c, field(v, "stdin_from", path, p), p, &run->stdin_from);
}

/* "in box 'x'" when the name is known, else "in a box". */
static void where_of(char *buf, size_t size, const char *what, const struct vb_spec_str *name)
{
	char clip[64];
	if (name->s)
		snprintf(buf, size, "in %s '%s'", what, spec_clip(name->s, clip, sizeof(clip)));
	else
		snprintf(buf, size, "in a %s", what);
}

static const struct node *item_map(struct spec_ctx *c, const struct node *v, const char *path)
{
	if (spec_is_null(v)) {
		spec_diag(c, v->pos, path, "expected a map, found null");
		return NULL;
	}
	return spec_get_map(c, v, path) > 0 ? v : NULL;
}

static void parse_outputs(struct spec_ctx *c, const struct node *v, const char *path,
			  struct vb_spec_box *b)
{
	if (spec_get_seq(c, v, path) <= 0 || !v->n)
		return;
	b->outputs = calloc(v->n, sizeof(*b->outputs));
	if (!b->outputs) {
		spec_oom(c);
		return;
	}
	for (size_t i = 0; i < v->n; i++) {
		char p[SPEC_PATH_MAX], pf[SPEC_PATH_MAX];
		spec_path_index(p, path, i);
		const struct node *m = item_map(c, v->items[i], p);
		if (!m)
			continue;
		struct vb_spec_output *o = &b->outputs[b->n_outputs++];
		o->pos = m->pos;
		spec_check_fields(c, m, p, "in an output", output_fields);
		if (spec_require(c, m, p, "in an output", "name") &&
		    spec_get_str(c, field(m, "name", p, pf), pf, &o->name) > 0 &&
		    spec_check_name(c, &o->name, pf) < 0) {
			free(o->name.s);
			o->name.s = NULL;
		}
		if (spec_get_str(c, field(m, "guest", p, pf), pf, &o->guest) > 0)
			spec_check_guest_path(c, &o->guest, pf);
	}
}

static void parse_inputs(struct spec_ctx *c, const struct node *v, const char *path,
			 struct vb_spec_box *b)
{
	if (spec_get_seq(c, v, path) <= 0 || !v->n)
		return;
	b->inputs = calloc(v->n, sizeof(*b->inputs));
	if (!b->inputs) {
		spec_oom(c);
		return;
	}
	for (size_t i = 0; i < v->n; i++) {
		char p[SPEC_PATH_MAX], pf[SPEC_PATH_MAX];
		spec_path_index(p, path, i);
		const struct node *m = item_map(c, v->items[i], p);
		if (!m)
			continue;
		struct vb_spec_input *in = &b->inputs[b->n_inputs++];
		in->pos = m->pos;
		in->box_index = SIZE_MAX;
		spec_check_fields(c, m, p, "in an input", input_fields);
		if (spec_require(c, m, p, "in an input", "from"))
			spec_get_str(c, field(m, "from", p, pf), pf, &in->from);
		if (spec_get_str(c, field(m, "guest", p, pf), pf, &in->guest) > 0)
			spec_check_guest_path(c, &in->guest, pf);
	}
}

/* A key that is a near miss of (key): already reported as unknown with a
 * did-you-mean, so "needs 'prompt'" would only say it again. */
static bool misspelt(const struct node *map, const char *key)
{
	const char *const want[] = { key, NULL };
	for (size_t i = 0; i < map->n; i++)
		if (map->keys[i]->type == NODE_SCALAR && strcmp(map->keys[i]->str, key) != 0 &&
		    vb_spec_suggest(map->keys[i]->str, want))
			return true;
	return false;
}

static void parse_box(struct spec_ctx *c, const struct node *v, const char *path, struct vb_spec_box *b)
{
	char p[SPEC_PATH_MAX], where[96], clip[64];
	b->pos = v->pos;
	b->run.stdin_index = SIZE_MAX;
	if (spec_require(c, v, path, "in a box", "name") &&
	    spec_get_str(c, field(v, "name", path, p), p, &b->name) > 0 &&
	    spec_check_name(c, &b->name, p) < 0) {
		free(b->name.s);
		b->name.s = NULL;
	}
	where_of(where, sizeof(where), "box", &b->name);
	spec_check_fields(c, v, path, where, box_fields);
	const struct node *prompt = spec_map_get(v, "prompt"), *run = spec_map_get(v, "run");
	const char *who = b->name.s ? spec_clip(b->name.s, clip, sizeof(clip)) : "";
	if (prompt && run)
		spec_diag(c, v->pos, path,
			  "box '%s' has both 'prompt' (an agent) and 'run' (a command): keep one", who);
	else if (!prompt && !run && !misspelt(v, "prompt") && !misspelt(v, "run"))
		spec_diag(c, v->pos, path, "box '%s' needs 'prompt' (an agent) or 'run' (a command)", who);
	spec_path(p, path, "prompt");
	if (prompt && spec_is_null(prompt))
		spec_diag(c, prompt->pos, p, "prompt is empty");
	else if (spec_get_str(c, prompt, p, &b->prompt) > 0 &&
		 !b->prompt.s[strspn(b->prompt.s, " \t\r\n")])
		spec_diag(c, b->prompt.pos, p, "prompt is empty");
	if (run) {
		char w[96];
		where_of(w, sizeof(w), "the run of box", &b->name);
		spec_path(p, path, "run");
		parse_run(c, run, p, w, &b->run);
	}
	spec_parse_skills(c, field(v, "skills", path, p), p, &b->skills);
	char w[112];
	where_of(w, sizeof(w), "the llm of box", &b->name);
	spec_parse_llm(c, field(v, "llm", path, p), p, w, &b->llm);
	spec_get_int(c, field(v, "timeout_secs", path, p), p, 1, MAX_SECS, &b->timeout_secs);
	if (spec_get_int(c, field(v, "max_turns", path, p), p, 1, VB_SPEC_MAX_TURNS, &b->max_turns) >
		    0 &&
	    run && !prompt)
		spec_diag(c, b->max_turns.pos, p,
			  "max_turns is for agent boxes (with 'prompt'); box '%s' runs a command", who);
	where_of(w, sizeof(w), "the sandbox of box", &b->name);
	spec_parse_sandbox(c, field(v, "sandbox", path, p), p, w, true, &b->sandbox);
	parse_outputs(c, field(v, "outputs", path, p), p, b);
	parse_inputs(c, field(v, "inputs", path, p), p, b);
	if (spec_get_str(c, field(v, "output_file", path, p), p, &b->output_file) > 0)
		spec_check_guest_path(c, &b->output_file, p);
}

static void parse_stage(struct spec_ctx *c, const struct node *v, const char *path,
			const struct name_index *boxes, struct vb_spec_stage *st)
{
	char p[SPEC_PATH_MAX];
	struct vb_spec_str type = { 0 };
	int idx = -1;
	st->pos = v->pos;
	bool type_ok = spec_require(c, v, path, "in a stage", "type") &&
		       spec_get_enum(c, field(v, "type", path, p), p, stage_types, &type, &idx) > 0;
	free(type.s);
	if (!type_ok) {
		spec_check_fields(c, v, path, "in a stage", stage_any_fields);
		return;
	}
	st->type = (enum vb_spec_stage_type)idx;
	if (st->type == VB_SPEC_STAGE_BOX) {
		spec_check_fields(c, v, path, "in a box stage", stage_box_fields);
		if (!spec_require(c, v, path, "in a box stage", "name"))
			return;
		st->names.v = calloc(1, sizeof(*st->names.v));
		if (!st->names.v) {
			spec_oom(c);
			return;
		}
		st->names.set = true;
		if (spec_get_str(c, field(v, "name", path, p), p, &st->names.v[0]) > 0)
			st->names.n = 1;
	} else {
		spec_check_fields(c, v, path, "in a fan_out stage", stage_fan_fields);
		if (!spec_require(c, v, path, "in a fan_out stage", "boxes"))
			return;
		const struct node *bn = field(v, "boxes", path, p);
		if (spec_get_strlist(c, bn, p, &st->names) > 0 && !bn->n)
			spec_diag(c, bn->pos, p, "a fan_out stage needs at least one box");
	}
	if (!st->names.n)
		return;
	st->box_index = calloc(st->names.n, sizeof(*st->box_index));
	if (!st->box_index) {
		spec_oom(c);
		return;
	}
	for (size_t i = 0; i < st->names.n; i++) {
		char pi[SPEC_PATH_MAX];
		if (st->type == VB_SPEC_STAGE_FAN_OUT)
			spec_path_index(pi, p, i);
		else
			memcpy(pi, p, sizeof(pi));
		st->box_index[i] = resolve_ref(c, boxes, &st->names.v[i], pi, "unknown box");
		for (size_t j = 0; j < i && st->box_index[i] != SIZE_MAX; j++) {
			if (st->box_index[j] == st->box_index[i]) {
				char clip[64];
				spec_diag(c, st->names.v[i].pos, pi, "box '%s' is twice in this fan_out",
					  spec_clip(st->names.v[i].s, clip, sizeof(clip)));
				break;
			}
		}
	}
}

/* Inputs and stdin_from carry data forward: the producer must run in an
 * earlier stage than the consumer. */
static void check_carry(struct spec_ctx *c, struct vb_spec_pipeline *pl, const struct name_index *boxes)
{
	size_t n_out = 0;
	size_t *first = malloc((pl->n_boxes + 1) * sizeof(*first));
	if (!first) {
		spec_oom(c);
		return;
	}
	for (size_t b = 0; b < pl->n_boxes; b++) {
		first[b] = SIZE_MAX;
		n_out += pl->boxes[b].n_outputs;
	}
	for (size_t s = pl->n_stages; s-- > 0;)
		for (size_t i = 0; i < pl->stages[s].names.n; i++)
			if (pl->stages[s].box_index && pl->stages[s].box_index[i] != SIZE_MAX)
				first[pl->stages[s].box_index[i]] = s;

	const struct vb_spec_str **names = calloc(n_out + 1, sizeof(*names));
	size_t *owner = calloc(n_out + 1, sizeof(*owner));
	char (*paths)[SPEC_PATH_MAX] = calloc(n_out + 1, sizeof(*paths));
	struct name_index outs = { 0 };
	if (!names || !owner || !paths)
		goto oom;
	size_t k = 0;
	for (size_t b = 0; b < pl->n_boxes; b++) {
		for (size_t o = 0; o < pl->boxes[b].n_outputs; o++) {
			char bp[SPEC_PATH_MAX];
			snprintf(bp, sizeof(bp), "pipeline.boxes[%zu].outputs[%zu]", b, o);
			spec_path(paths[k], bp, "name");
			owner[k] = b;
			names[k++] = &pl->boxes[b].outputs[o].name;
		}
	}
	/* Output names share one namespace across the pipeline: they name
	 * host directories. */
	if (index_build(c, &outs, names, k, "output", NULL, NULL, paths) < 0)
		goto out;
	for (size_t b = 0; b < pl->n_boxes; b++) {
		struct vb_spec_box *bx = &pl->boxes[b];
		char bp[SPEC_PATH_MAX], p[SPEC_PATH_MAX], clip[64], clip2[64];
		spec_path_index(bp, "pipeline.boxes", b);
		for (size_t i = 0; i < bx->n_inputs; i++) {
			struct vb_spec_input *in = &bx->inputs[i];
			char ip[SPEC_PATH_MAX];
			if (!in->from.s)
				continue;
			spec_path(p, bp, "inputs");
			spec_path_index(ip, p, i);
			spec_path(p, ip, "from");
			size_t o = resolve_ref(c, &outs, &in->from, p, "input from unknown output");
			if (o == SIZE_MAX)
				continue;
			size_t prod = owner[o];
			in->box_index = prod;
			if (prod == b)
				spec_diag(c, in->from.pos, p, "box '%s' cannot read its own output '%s'",
					  spec_clip(bx->name.s, clip, sizeof(clip)),
					  spec_clip(in->from.s, clip2, sizeof(clip2)));
			else if (first[b] != SIZE_MAX && first[prod] >= first[b])
				spec_diag(c, in->from.pos, p,
					  "output '%s' comes from box '%s', which does not run in an earlier stage",
					  spec_clip(in->from.s, clip, sizeof(clip)),
					  spec_clip(pl->boxes[prod].name.s, clip2, sizeof(clip2)));
		}
		if (bx->run.stdin_from.s) {
			spec_path(p, bp, "run.stdin_from");
			size_t prod = resolve_ref(c, boxes, &bx->run.stdin_from, p, "stdin_from names unknown box");
			bx->run.stdin_index = prod;
			if (prod == SIZE_MAX)
				continue;
			if (prod == b)
				spec_diag(c, bx->run.stdin_from.pos, p, "box '%s' cannot read its own output",
					  spec_clip(bx->name.s, clip, sizeof(clip)));
			else if (first[b] != SIZE_MAX && first[prod] >= first[b])
				spec_diag(c, bx->run.stdin_from.pos, p,
					  "box '%s' does not run in an earlier stage than box '%s'",
					  spec_clip(pl->boxes[prod].name.s, clip, sizeof(clip)),
					  spec_clip(bx->name.s, clip2, sizeof(clip2)));
		}
	}
	goto out;
oom:
	spec_oom(c);
out:
	index_free(&outs);
	free(names);
	free(owner);
	free(paths);
	free(first);
}

void spec_parse_pipeline(struct spec_ctx *c, const struct node *v, struct vb_spec_pipeline *pl)
{
	char p[SPEC_PATH_MAX];
	pl->pos = v->pos;
	spec_check_fields(c, v, "pipeline", "in pipeline", pipeline_fields);
	const struct node *boxes = field(v, "boxes", "pipeline", p);
	if (!spec_require(c, v, "pipeline", "in pipeline", "boxes") || spec_get_seq(c, boxes, p) <= 0)
		return;
	if (!boxes->n) {
		spec_diag(c, boxes->pos, p, "a pipeline needs at least one box");
		return;
	}
	pl->boxes = calloc(boxes->n, sizeof(*pl->boxes));
	const struct vb_spec_str **names = calloc(boxes->n, sizeof(*names));
	if (!pl->boxes || !names) {
		free(names);
		spec_oom(c);
		return;
	}
	for (size_t i = 0; i < boxes->n; i++) {
		char bp[SPEC_PATH_MAX];
		spec_path_index(bp, "pipeline.boxes", i);
		const struct node *m = item_map(c, boxes->items[i], bp);
		struct vb_spec_box *b = &pl->boxes[pl->n_boxes];
		names[pl->n_boxes++] = &b->name;
		if (m)
			parse_box(c, m, bp, b);
	}
	struct name_index ix;
	if (index_build(c, &ix, names, pl->n_boxes, "box", "pipeline.boxes", "name", NULL) < 0) {
		free(names);
		return;
	}
	free(names);

	const struct node *stages = field(v, "stages", "pipeline", p);
	if (spec_get_seq(c, stages, p) > 0 && stages->n) {
		pl->stages = calloc(stages->n, sizeof(*pl->stages));
		if (!pl->stages) {
			spec_oom(c);
			goto out;
		}
		for (size_t i = 0; i < stages->n; i++) {
			char sp[SPEC_PATH_MAX];
			spec_path_index(sp, "pipeline.stages", i);
			const struct node *m = item_map(c, stages->items[i], sp);
			if (m)
				parse_stage(c, m, sp, &ix, &pl->stages[pl->n_stages++]);
		}
	} else if (!stages || spec_is_null(stages) || stages->type == NODE_SEQ) {
		/* No stages written: each box is a stage, in file order. */
		pl->stages_implicit = true;
		pl->stages = calloc(pl->n_boxes, sizeof(*pl->stages));
		if (!pl->stages) {
			spec_oom(c);
			goto out;
		}
		for (size_t i = 0; i < pl->n_boxes; i++) {
			struct vb_spec_stage *st = &pl->stages[pl->n_stages++];
			st->type = VB_SPEC_STAGE_BOX;
			st->names.v = calloc(1, sizeof(*st->names.v));
			st->box_index = calloc(1, sizeof(*st->box_index));
			if (!st->names.v || !st->box_index) {
				spec_oom(c);
				goto out;
			}
			if (pl->boxes[i].name.s) {
				st->names.v[0].s = spec_strdup(c, pl->boxes[i].name.s);
				st->names.n = 1;
				st->box_index[0] = i;
			}
		}
	}
	check_carry(c, pl, &ix);
out:
	index_free(&ix);
}

static void check_graph(struct spec_ctx *c, struct vb_spec_workflow *w);

static void parse_step(struct spec_ctx *c, const struct node *v, const char *path, struct vb_spec_step *st)
{
	char p[SPEC_PATH_MAX], where[96];
	int idx;
	st->pos = v->pos;
	st->run.stdin_index = SIZE_MAX;
	if (spec_require(c, v, path, "in a step", "name") &&
	    spec_get_str(c, field(v, "name", path, p), p, &st->name) > 0 &&
	    spec_check_name(c, &st->name, p) < 0) {
		free(st->name.s);
		st->name.s = NULL;
	}
	where_of(where, sizeof(where), "step", &st->name);
	spec_check_fields(c, v, path, where, step_fields);
	if (spec_require(c, v, path, where, "run")) {
		char w[112];
		where_of(w, sizeof(w), "the run of step", &st->name);
		parse_run(c, field(v, "run", path, p), p, w, &st->run);
	}
	spec_get_strlist(c, field(v, "depends_on", path, p), p, &st->depends_on);
	if (spec_get_enum(c, field(v, "mode", path, p), p, step_modes, &st->mode_text, &idx) > 0)
		st->service = idx == 1;
	spec_get_int(c, field(v, "timeout_secs", path, p), p, 1, MAX_SECS, &st->timeout_secs);
	if (st->service && st->timeout_secs.set)
		spec_diag(c, st->timeout_secs.pos, p,
			  "a service step runs without a timeout: remove timeout_secs");
}

void spec_parse_workflow(struct spec_ctx *c, const struct node *v, struct vb_spec_workflow *w)
{
	char p[SPEC_PATH_MAX];
	w->pos = v->pos;
	w->output_index = SIZE_MAX;
	spec_check_fields(c, v, "workflow", "in workflow", workflow_fields);
	spec_get_str(c, field(v, "output_step", "workflow", p), p, &w->output_step);
	const struct node *steps = field(v, "steps", "workflow", p);
	if (!spec_require(c, v, "workflow", "in workflow", "steps") || spec_get_seq(c, steps, p) <= 0)
		return;
	if (!steps->n) {
		spec_diag(c, steps->pos, p, "a workflow needs at least one step");
		return;
	}
	w->steps = calloc(steps->n, sizeof(*w->steps));
	const struct vb_spec_str **names = calloc(steps->n, sizeof(*names));
	if (!w->steps || !names) {
		free(names);
		spec_oom(c);
		return;
	}
	for (size_t i = 0; i < steps->n; i++) {
		char sp[SPEC_PATH_MAX];
		spec_path_index(sp, "workflow.steps", i);
		const struct node *m = item_map(c, steps->items[i], sp);
		struct vb_spec_step *st = &w->steps[w->n_steps];
		names[w->n_steps++] = &st->name;
		if (m)
			parse_step(c, m, sp, st);
	}
	struct name_index ix;
	int rc = index_build(c, &ix, names, w->n_steps, "step", "workflow.steps", "name", NULL);
	free(names);
	if (rc < 0)
		return;

	bool all_ok = true;
	for (size_t i = 0; i < w->n_steps; i++) {
		struct vb_spec_step *st = &w->steps[i];
		char sp[SPEC_PATH_MAX], clip[64];
		spec_path_index(sp, "workflow.steps", i);
		if (st->depends_on.n) {
			st->dep_index = calloc(st->depends_on.n, sizeof(*st->dep_index));
			if (!st->dep_index) {
				spec_oom(c);
				break;
			}
		}
		for (size_t d = 0; d < st->depends_on.n; d++) {
			spec_path(p, sp, "depends_on");
			spec_path_index(p, p, d);
			size_t j = resolve_ref(c, &ix, &st->depends_on.v[d], p, "depends on unknown step");
			st->dep_index[d] = j;
			if (j == SIZE_MAX)
				all_ok = false;
			else if (j == i) {
				spec_diag(c, st->depends_on.v[d].pos, p, "step '%s' depends on itself",
					  spec_clip(st->name.s, clip, sizeof(clip)));
				all_ok = false;
			}
		}
		if (st->run.stdin_from.s) {
			spec_path(p, sp, "run.stdin_from");
			size_t j = resolve_ref(c, &ix, &st->run.stdin_from, p, "stdin_from names unknown step");
			st->run.stdin_index = j;
			if (j == SIZE_MAX)
				all_ok = false;
			else if (j == i) {
				spec_diag(c, st->run.stdin_from.pos, p, "step '%s' cannot read its own output",
					  spec_clip(st->name.s, clip, sizeof(clip)));
				all_ok = false;
			}
		}
	}
	if (w->output_step.s)
		w->output_index = resolve_ref(c, &ix, &w->output_step, "workflow.output_step",
					      "output_step names unknown step");
	index_free(&ix);
	if (all_ok && !c->oom)
		check_graph(c, w);
}

/* Kahn's algorithm gives each step its level (1 + the deepest dependency);
 * steps left over lie on or behind a cycle.  Iterative: no recursion depth
 * to worry about, however long the chain. */
static void check_graph(struct spec_ctx *c, struct vb_spec_workflow *w)
{
	size_t n = w->n_steps, n_edges = 0;
	for (size_t i = 0; i < n; i++)
		n_edges += w->steps[i].depends_on.n + (w->steps[i].run.stdin_index != SIZE_MAX);
	size_t *indeg = calloc(n, sizeof(size_t)), *start = calloc(n + 1, sizeof(size_t));
	size_t *adj = calloc(n_edges + 1, sizeof(size_t)), *queue = calloc(n, sizeof(size_t));
	size_t *fill = calloc(n, sizeof(size_t));
	if (!indeg || !start || !adj || !queue || !fill) {
		spec_oom(c);
		goto out;
	}
	/* Edges run from a dependency to the steps that need it (CSR form). */
	for (size_t i = 0; i < n; i++) {
		struct vb_spec_step *st = &w->steps[i];
		for (size_t d = 0; d < st->depends_on.n; d++)
			start[st->dep_index[d] + 1]++;
		if (st->run.stdin_index != SIZE_MAX)
			start[st->run.stdin_index + 1]++;
		indeg[i] = st->depends_on.n + (st->run.stdin_index != SIZE_MAX);
	}
	for (size_t i = 0; i < n; i++)
		start[i + 1] += start[i];
	for (size_t i = 0; i < n; i++) {
		struct vb_spec_step *st = &w->steps[i];
		for (size_t d = 0; d < st->depends_on.n; d++) {
			size_t j = st->dep_index[d];
			adj[start[j] + fill[j]++] = i;
		}
		if (st->run.stdin_index != SIZE_MAX) {
			size_t j = st->run.stdin_index;
			adj[start[j] + fill[j]++] = i;
		}
	}
	size_t head = 0, tail = 0;
	for (size_t i = 0; i < n; i++) {
		if (!indeg[i]) {
			w->steps[i].level = 1;
			queue[tail++] = i;
		}
	}
	while (head < tail) {
		size_t j = queue[head++];
		for (size_t e = start[j]; e < start[j + 1]; e++) {
			size_t i = adj[e];
			if (w->steps[i].level < w->steps[j].level + 1)
				w->steps[i].level = w->steps[j].level + 1;
			if (--indeg[i] == 0)
				queue[tail++] = i;
		}
	}
	if (tail == n)
		goto out;

	/* Every leftover step waits on a leftover dependency: follow first
	 * such dependencies from the first leftover step until one repeats. */
	size_t cur = 0;
	while (!indeg[cur])
		cur++;
	for (size_t i = 0; i < n; i++)
		fill[i] = SIZE_MAX; /* reused: position on the walk */
	size_t steps = 0;
	while (fill[cur] == SIZE_MAX) {
		fill[cur] = steps;
		queue[steps++] = cur;
		struct vb_spec_step *st = &w->steps[cur];
		size_t next = SIZE_MAX;
		for (size_t d = 0; d < st->depends_on.n && next == SIZE_MAX; d++)
			if (indeg[st->dep_index[d]])
				next = st->dep_index[d];
		if (next == SIZE_MAX)
			next = st->run.stdin_index;
		if (next == SIZE_MAX)
			goto out; /* cannot happen: a leftover step has a leftover dependency */
		cur = next;
	}
	char msg[400] = "", clip[64];
	size_t from = fill[cur];
	for (size_t k = from; k <= steps; k++) {
		size_t used = strlen(msg);
		size_t s = k < steps ? queue[k] : cur;
		snprintf(msg + used, sizeof(msg) - used, "%s%s", k == from ? "" : " -> ",
			 spec_clip(w->steps[s].name.s, clip, sizeof(clip)));
	}
	char p[SPEC_PATH_MAX];
	const struct vb_spec_step *st = &w->steps[cur];
	spec_path_index(p, "workflow.steps", cur);
	spec_path(p, p, st->depends_on.n ? "depends_on" : "run.stdin_from");
	spec_diag(c, st->depends_on.n ? st->depends_on.pos : st->run.stdin_from.pos, p,
		  "dependency cycle: %s (each step waits for the next)", msg);
out:
	free(indeg);
	free(start);
	free(adj);
	free(queue);
	free(fill);
}
