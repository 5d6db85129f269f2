/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A run from start to end: check what the spec asks for, prepare every VM
 * config and have every image it needs (so nothing boots unless all can:
 * docs/run.md "Before anything boots"), open the record, emit the run
 * and queue events, hand over to the pipeline or workflow runner, and turn
 * what happened into the result.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llm/llm.h"
#include "run/engine.h"
#include "run/image.h"
#include "skill/skill.h"
#include "util/util.h"

#define DEFAULT_MAX_PARALLEL 4

void vb_run_set_error(struct vb_run *r, enum vb_error_kind kind, const char *fmt, ...)
{
	pthread_mutex_lock(&r->mu);
	if (!r->error) {
		va_list ap;
		va_start(ap, fmt);
		if (vasprintf(&r->error, fmt, ap) < 0)
			r->error = NULL;
		va_end(ap);
		r->error_kind = kind;
	}
	pthread_mutex_unlock(&r->mu);
}

int vb_run_add_extras(struct vb_run *r, struct vb_run_vmconf *vc, vb_error *err)
{
	for (size_t i = 0; i < r->opts.n_env; i++)
		if (vb_run_vmconf_set_env(vc, r->opts.env[i], err) < 0)
			return -1;
	for (size_t i = 0; i < r->opts.n_mounts; i++) {
		const struct vb_mount *m = &r->opts.mounts[i];
		if (vb_run_vmconf_add_host_mount(vc, m->host, m->guest, m->rw, err) < 0)
			return -1;
	}
	return 0;
}

/* What this version runs; agent boxes need the builtin agent or codex (checked
 * here, with their provider's credential, so that nothing boots when one
 * cannot run). */
static int check_runnable(const struct vb_spec *spec, const struct vb_run_options *o,
			  vb_error *err)
{
	switch (spec->kind) {
	case VB_SPEC_SANDBOX:
		return vb_error_set(err, VB_E_USAGE,
				    "%s is a kind: sandbox spec, which opens an interactive VM: use "
				    "`voidbox shell %s`",
				    spec->file, spec->file);
	case VB_SPEC_AGENT:
		if (spec->agent.mode == VB_SPEC_AGENT_INTERACTIVE &&
		    vb_run_interactive_check(&spec->llm_eff, o, err) < 0) {
			vb_error_prefix(err, "%s", spec->file);
			return -1;
		}
		if (vb_run_agent_check(&spec->llm_eff, err) < 0) {
			vb_error_prefix(err, "%s", spec->file);
			return -1;
		}
		return 0;
	case VB_SPEC_PIPELINE:
		for (size_t i = 0; i < spec->pipeline.n_boxes; i++)
			if (spec->pipeline.boxes[i].prompt.s &&
			    vb_run_agent_check(&spec->pipeline.boxes[i].llm_eff, err) < 0) {
				vb_error_prefix(err, "box '%s'", spec->pipeline.boxes[i].name.s);
				return -1;
			}
		return 0;
	case VB_SPEC_WORKFLOW:
		return 0;
	}
	return vb_error_set(err, VB_E_USAGE, "unknown spec kind");
}

/* kind: agent runs as a pipeline of one agent box, named after the spec. */
struct agent_pipeline {
	struct vb_spec spec;
	struct vb_spec_box box;
	struct vb_spec_stage stage;
	size_t index;
};

static const struct vb_spec *as_pipeline(const struct vb_spec *spec, struct agent_pipeline *ap)
{
	if (spec->kind != VB_SPEC_AGENT)
		return spec;
	*ap = (struct agent_pipeline){ 0 };
	ap->spec = *spec;
	ap->spec.kind = VB_SPEC_PIPELINE;
	static char unnamed[] = "agent";
	ap->box.name.s = spec->name.s ? spec->name.s : unnamed;
	ap->box.prompt = spec->agent.prompt;
	/* an interactive agent may have no first prompt: still an agent box */
	static char no_prompt[] = "";
	if (!ap->box.prompt.s)
		ap->box.prompt.s = no_prompt;
	ap->box.skills = spec->agent.skills;
	ap->box.timeout_secs = spec->agent.timeout_secs;
	ap->box.max_turns = spec->agent.max_turns;
	ap->box.output_file = spec->agent.output_file;
	ap->box.run.stdin_index = SIZE_MAX;
	ap->box.vm = spec->vm;
	ap->box.llm_eff = spec->llm_eff;
	ap->box.agent_mode = (int)spec->agent.mode;
	ap->stage.type = VB_SPEC_STAGE_BOX;
	ap->stage.names.v = &ap->box.name;
	ap->stage.names.n = 1;
	ap->stage.box_index = &ap->index;
	ap->spec.pipeline = (struct vb_spec_pipeline){ .boxes = &ap->box, .n_boxes = 1,
						       .stages = &ap->stage, .n_stages = 1,
						       .stages_implicit = true };
	return &ap->spec;
}

static void run_free(struct vb_run *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_units; i++) {
		struct vb_run_unit *u = &r->units[i];
		if (u->out_fd >= 0)
			close(u->out_fd);
		free(u->dir);
		free(u->out_path);
		free(u->output_path);
		free(u->preview);
		free(u->vm_id);
		free(u->image);
		free(u->image_digest);
		free(u->snapshot);
		free(u->error);
	}
	free(r->units);
	for (size_t i = 0; i < r->n_vmc; i++) {
		vb_run_vmconf_free(&r->vmc[i]);
		if (r->images)
			vb_run_image_free(&r->images[i]);
	}
	free(r->vmc);
	free(r->images);
	for (size_t i = 0; i < r->n_pulled; i++)
		free(r->pulled[i]);
	free(r->pulled);
	free(r->warm_ref);
	free(r->box_unit);
	if (r->skills)
		for (size_t i = 0; i < r->spec->pipeline.n_boxes; i++)
			vb_skill_set_free(&r->skills[i]);
	free(r->skills);
	free(r->final_path);
	if (r->work_tmp && r->work_dir) /* no result took it */
		vb_rm_rf(r->work_dir);
	free(r->work_dir);
	free(r->error);
	free(r->run_id);
	free(r->run_dir);
	vb_llm_shared_budget_free(r->llm_budget);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

/* Units: a pipeline's boxes stage by stage (a box in two stages runs
 * twice), a workflow's steps as declared. */
static int make_units(struct vb_run *r, vb_error *err)
{
	const struct vb_spec *s = r->spec;
	const struct vb_spec_pipeline *pl = &s->pipeline;
	int pipeline = s->kind == VB_SPEC_PIPELINE;
	if (pipeline) {
		for (size_t st = 0; st < pl->n_stages; st++)
			r->n_units += pl->stages[st].names.n;
		r->box_unit = malloc((pl->n_boxes ? pl->n_boxes : 1) * sizeof(*r->box_unit));
		if (!r->box_unit)
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
		for (size_t b = 0; b < pl->n_boxes; b++)
			r->box_unit[b] = SIZE_MAX;
	} else {
		r->n_units = s->workflow.n_steps;
	}
	r->units = calloc(r->n_units ? r->n_units : 1, sizeof(*r->units));
	if (!r->units)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	size_t k = 0;
	for (size_t st = 0; pipeline && st < pl->n_stages; st++)
		for (size_t i = 0; i < pl->stages[st].names.n; i++)
			r->units[k++].name = pl->boxes[pl->stages[st].box_index[i]].name.s;
	for (size_t i = 0; !pipeline && i < r->n_units; i++)
		r->units[i].name = s->workflow.steps[i].name.s;
	for (size_t i = 0; i < r->n_units; i++) {
		r->units[i].exit_code = -1;
		r->units[i].out_fd = -1;
	}
	return 0;
}

/* Every box's skills, read (remote ones fetched) before anything boots:
 * a skill that cannot be had fails the run naming the box and the skill. */
static int resolve_skills(struct vb_run *r, vb_error *err)
{
	const struct vb_spec *spec = r->spec;
	if (spec->kind != VB_SPEC_PIPELINE)
		return 0;
	r->skills = calloc(spec->pipeline.n_boxes, sizeof(*r->skills));
	if (!r->skills)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	for (size_t i = 0; i < spec->pipeline.n_boxes; i++) {
		const struct vb_spec_box *b = &spec->pipeline.boxes[i];
		if (vb_skill_resolve(&b->skills, spec->file, b->vm.image ? VB_SKILL_IMAGES : 0,
				     &r->skills[i], err) < 0 ||
		    vb_run_skills_oci_attach(r, &r->vmc[i], &r->skills[i], err) < 0) {
			if (strcmp(r->kind, "agent"))
				vb_error_prefix(err, "box '%s'", b->name.s);
			return -1;
		}
	}
	return 0;
}

static struct vb_run *run_new(const struct vb_spec *spec, const struct vb_run_options *opts,
			      vb_error *err)
{
	struct vb_run *r = calloc(1, sizeof(*r));
	if (!r) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&r->mu, NULL);
	r->spec = spec;
	if (opts)
		r->opts = *opts;
	if (!r->opts.max_parallel)
		r->opts.max_parallel = DEFAULT_MAX_PARALLEL;
	if (r->opts.input && !r->opts.input_len)
		r->opts.input_len = strlen(r->opts.input);
	_cleanup_free_ char *state = NULL;
	if (!(r->run_id = vb_run_id_new(err)) || !(state = vb_state_dir(err)))
		goto fail;
	if (!(r->run_dir = vb_strfmt("%s/runs/%s", state, r->run_id))) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		goto fail;
	}
	if (make_units(r, err) < 0)
		goto fail;
	const struct vb_run_llm_budget *b = &r->opts.llm_budget;
	if (b->max_tokens || b->max_requests || b->max_cost_usd > 0) {
		struct vb_llm_budget limits = { .max_tokens = b->max_tokens,
						.max_cost_usd = b->max_cost_usd,
						.max_requests = b->max_requests };
		if (!(r->llm_budget = vb_llm_shared_budget_new(&limits))) {
			vb_error_set(err, VB_E_RUNTIME, "out of memory");
			goto fail;
		}
	}
	int rc = spec->kind == VB_SPEC_PIPELINE ? vb_run_pipeline_prepare(r, err)
						: vb_run_workflow_prepare(r, err);
	if (rc < 0)
		goto fail;
	return r;
fail:
	run_free(r);
	return NULL;
}

static void print_warning(const char *line, void *opaque)
{
	fprintf(opaque, "voidbox: warning: %s\n", line);
}

static int has_outputs(const struct vb_spec *spec)
{
	if (spec->kind != VB_SPEC_PIPELINE)
		return 0;
	for (size_t i = 0; i < spec->pipeline.n_boxes; i++)
		if (spec->pipeline.boxes[i].n_outputs)
			return 1;
	return 0;
}

struct vb_run_result *vb_run_spec(const struct vb_spec *spec, const struct vb_run_options *opts,
				  vb_error *err)
{
	if (check_runnable(spec, opts, err) < 0)
		return NULL;
	if (opts && opts->notices)
		vb_spec_warnings(spec, print_warning, opts->notices);
	const char *kind = vb_spec_kind_name(spec->kind);
	struct agent_pipeline ap;
	spec = as_pipeline(spec, &ap);
	struct vb_run *r = run_new(spec, opts, err);
	if (!r)
		return NULL;
	r->kind = kind;
	if (resolve_skills(r, err) < 0) {
		run_free(r);
		return NULL;
	}
	const char *name = spec->name.s ? spec->name.s : "";
	if (!r->opts.no_record) {
		r->rec = vb_record_open(r->run_id, name, kind, err);
		if (!r->rec) {
			vb_error_prefix(err, "cannot record the run");
			run_free(r);
			return NULL;
		}
	}
	if (r->rec)
		vb_record_limit(r->rec, r->opts.record_max);
	if (vb_run_work_open(r, err) < 0) {
		vb_error_prefix(err, "run %s", r->run_id);
		if (r->rec)
			vb_record_close(r->rec);
		run_free(r);
		return NULL;
	}
	r->t0 = vb_now_ms();
	struct vb_event ev = { .type = VB_EV_RUN_STARTED, .name = name, .kind = kind };
	vb_run_emit(r, &ev);
	for (size_t i = 0; i < r->n_units; i++) {
		ev = (struct vb_event){ .type = VB_EV_STAGE_QUEUED, .stage = r->units[i].name };
		vb_run_emit(r, &ev);
	}

	int rc = spec->kind == VB_SPEC_PIPELINE ? vb_run_pipeline(r, err) : vb_run_workflow(r, err);
	if (rc < 0)
		vb_run_set_error(r, err->kind == VB_E_OK ? VB_E_RUNTIME : err->kind, "%s", err->msg);
	if (vb_run_cancelled(r)) {
		free(r->error);
		r->error = strdup("cancelled");
		r->error_kind = VB_E_CANCELLED;
	}
	int64_t dur = vb_now_ms() - r->t0;
	if (r->error_kind == VB_E_CANCELLED)
		ev = (struct vb_event){ .type = VB_EV_RUN_CANCELLED, .duration_ms = dur };
	else
		ev = (struct vb_event){ .type = VB_EV_RUN_FINISHED, .success = !r->error,
					.duration_ms = dur, .error = r->error };
	vb_run_emit(r, &ev);

	vb_error rerr = { 0 };
	struct vb_run_result *res = vb_run_make_result(r, &rerr);
	if (res && r->rec) {
		_cleanup_free_ char *json = vb_run_result_json(res);
		if (json)
			vb_record_write_result(r->rec, json, &rerr);
		res->record_dir = strdup(vb_record_dir(r->rec));
	} else if (res && has_outputs(spec)) {
		res->record_dir = strdup(r->run_dir); /* named outputs live there */
	}
	if (res && r->work_tmp) { /* the result's output files live there */
		res->scratch_dir = r->work_dir;
		r->work_dir = NULL;
	}
	if (r->rec)
		vb_record_close(r->rec);
	if (!res)
		*err = rerr;
	run_free(r);
	return res;
}

struct vb_run_result *vb_run_file(const char *path, const struct vb_run_options *opts,
				  vb_error *err)
{
	struct vb_spec *spec = vb_spec_load(path, err);
	if (!spec)
		return NULL;
	struct vb_run_result *res = vb_run_spec(spec, opts, err);
	vb_spec_free(spec);
	return res;
}
