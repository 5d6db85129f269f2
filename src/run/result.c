/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The result of a run: built from the run's units, printed as the SPEC-V1
 * result object, mapped to an exit code.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "run/engine.h"
#include "util/term.h"
#include "util/util.h"


char *vb_run_utf8(const uint8_t *p, size_t n, size_t *out_len)
{
	/* worst case: every byte becomes the 3-byte U+FFFD */
	char *s = malloc(n * 3 + 1);
	if (!s)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		int k = vb_utf8_seq(p + i, n - i);
		if (k > 0) {
			memcpy(s + o, p + i, (size_t)k);
			o += (size_t)k;
			i += (size_t)k;
		} else {
			memcpy(s + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
		}
	}
	s[o] = '\0';
	*out_len = o;
	return s;
}

static char *dupz(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct vb_run_result *vb_run_make_result(struct vb_run *r, vb_error *err)
{
	struct vb_run_result *res = calloc(1, sizeof(*res));
	if (!res)
		goto oom;
	res->stages = calloc(r->n_units ? r->n_units : 1, sizeof(*res->stages));
	res->run_id = dupz(r->run_id);
	res->name = strdup(r->spec->name.s ? r->spec->name.s : "");
	res->kind = strdup(r->kind ? r->kind : vb_spec_kind_name(r->spec->kind));
	res->output = (char *)vb_run_preview(r->final_path, VB_RUN_PREVIEW_MAX, &res->output_len);
	res->output_size = r->final_path ? r->final_len : 0;
	res->output_path = dupz(r->final_path);
	if (!res->stages || !res->run_id || !res->name || !res->kind || !res->output ||
	    (r->final_path && !res->output_path))
		goto oom;
	res->success = !r->error;
	res->cancelled = r->error_kind == VB_E_CANCELLED;
	res->error_kind = r->error ? r->error_kind : VB_E_OK;
	if (r->error && !(res->error = strdup(r->error)))
		goto oom;
	res->duration_ms = vb_now_ms() - r->t0;
	res->llm_budget = r->opts.llm_budget;
	res->budget_stage = SIZE_MAX;
	for (size_t k = 0; k < r->n_units; k++) {
		const struct vb_run_unit *u = &r->units[k];
		struct vb_run_stage *s = &res->stages[res->n_stages++];
		s->name = strdup(u->name);
		s->success = u->state == VB_UNIT_OK;
		s->skipped = u->state == VB_UNIT_SKIPPED || u->state == VB_UNIT_QUEUED;
		s->exit_code = u->exit_code;
		s->output = (char *)vb_run_memdup(u->preview ? u->preview : (const uint8_t *)"",
						  u->preview_len);
		s->output_len = u->preview ? u->preview_len : 0;
		s->output_size = u->output_path ? u->output_len : 0;
		s->output_path = dupz(u->output_path);
		s->duration_ms = u->duration_ms;
		s->vm_id = dupz(u->vm_id);
		s->image = dupz(u->vm_id ? u->image : NULL); /* only once it booted on it */
		s->image_digest = dupz(u->vm_id ? u->image_digest : NULL);
		s->snapshot = dupz(u->snapshot);
		s->warm = u->warm;
		s->error = dupz(u->error);
		if (u->is_agent) {
			s->is_agent = res->has_agents = 1;
			s->llm_requests = u->llm_requests;
			s->input_tokens = u->llm_input_tokens;
			s->output_tokens = u->llm_output_tokens;
			s->cost_usd = u->llm_cost_usd;
			s->budget_hit = u->budget_hit;
			if (u->budget_hit && res->budget_stage == SIZE_MAX)
				res->budget_stage = res->n_stages - 1;
			res->llm_requests += u->llm_requests;
			res->input_tokens += u->llm_input_tokens;
			res->output_tokens += u->llm_output_tokens;
			res->total_cost_usd += u->llm_cost_usd;
		}
		if (!s->name || !s->output || (u->vm_id && !s->vm_id) || (u->error && !s->error) ||
		    (u->vm_id && u->image && !s->image) ||
		    (u->vm_id && u->image_digest && !s->image_digest) ||
		    (u->output_path && !s->output_path) || (u->snapshot && !s->snapshot))
			goto oom;
	}
	res->warm_missing = r->warm_missing;
	res->warm_cfg = r->warm_cfg;
	/* the result's own copy, freed with it */
	if (r->warm_cfg.root_ref && !(res->warm_cfg.root_ref = strdup(r->warm_cfg.root_ref)))
		goto oom;
	return res;
oom:
	vb_run_result_free(res);
	vb_error_set(err, VB_E_RUNTIME, "out of memory");
	return NULL;
}

int vb_run_exit_code(const struct vb_run_result *r)
{
	if (!r)
		return 125;
	if (r->success)
		return 0;
	switch (r->error_kind) {
	case VB_E_CANCELLED:
		return 130;
	case VB_E_OK:
	case VB_E_TIMEOUT:
	case VB_E_NOTFOUND:
	case VB_E_NOEXEC:
		return 1;
	default:
		return 125;
	}
}

static json_t *jstr(const char *s, size_t n)
{
	size_t len = 0;
	char *u = vb_run_utf8((const uint8_t *)(s ? s : ""), s ? n : 0, &len);
	json_t *j = u ? json_stringn(u, len) : NULL;
	free(u);
	return j;
}

/* A string or JSON null (an error that is not there). */
static json_t *jstr_or_null(const char *s)
{
	return s ? jstr(s, strlen(s)) : json_null();
}

/* "run", "stage" or null: which budget refused a stage a request. */
static json_t *budget_name(enum vb_run_budget_hit hit)
{
	return hit == VB_RUN_BUDGET_RUN	  ? json_string("run") :
	       hit == VB_RUN_BUDGET_STAGE ? json_string("stage") :
					    json_null();
}

/* The first stage a budget stopped: {budget, stage, error}, or null. */
static json_t *budget_stop(const struct vb_run_result *r)
{
	if (r->budget_stage >= r->n_stages || !r->stages[r->budget_stage].budget_hit)
		return json_null();
	const struct vb_run_stage *s = &r->stages[r->budget_stage];
	return json_pack("{s:o, s:o, s:o}", "budget", budget_name(s->budget_hit), "stage",
			 jstr(s->name, strlen(s->name)), "error", jstr_or_null(s->error));
}

/* The SPEC-V1 result object plus what scripts need to tell what happened
 * (run id, errors, skips, exit codes).  Token and cost fields are on
 * agent stages only (a command box has none), and their sums on a run
 * that has agent stages. */
char *vb_run_result_json(const struct vb_run_result *r)
{
	json_t *stages = json_array();
	for (size_t i = 0; stages && i < r->n_stages; i++) {
		const struct vb_run_stage *s = &r->stages[i];
		json_t *o = json_pack("{s:o, s:b, s:b, s:i, s:o, s:o, s:I, s:o, s:b, s:I, s:o}",
				      "name", jstr(s->name, strlen(s->name)), "success", s->success,
				      "skipped", s->skipped, "exit_code", s->exit_code, "error",
				      jstr_or_null(s->error), "output", jstr(s->output, s->output_len),
				      "duration_ms", (json_int_t)s->duration_ms, "vm_id",
				      jstr(s->vm_id, s->vm_id ? strlen(s->vm_id) : 0),
				      "output_truncated", s->output_len < s->output_size,
				      "output_bytes", (json_int_t)s->output_size, "output_path",
				      jstr_or_null(s->output_path));
		if (o && s->is_agent &&
		    (json_object_set_new(o, "input_tokens", json_integer((json_int_t)s->input_tokens)) ||
		     json_object_set_new(o, "output_tokens",
					 json_integer((json_int_t)s->output_tokens)) ||
		     json_object_set_new(o, "cost_usd", json_real(s->cost_usd)) ||
		     json_object_set_new(o, "llm_requests", json_integer((json_int_t)s->llm_requests)) ||
		     json_object_set_new(o, "budget_exceeded", budget_name(s->budget_hit)))) {
			json_decref(o);
			o = NULL;
		}
		/* how its VM started (null: it had none) */
		if (o && s->vm_id &&
		    (json_object_set_new(o, "boot", json_string(s->snapshot ? "restored" : "cold")) ||
		     json_object_set_new(o, "snapshot", jstr_or_null(s->snapshot)) ||
		     json_object_set_new(o, "warm", json_boolean(s->warm)))) {
			json_decref(o);
			o = NULL;
		}
		if (o && s->image &&
		    json_object_set_new(o, "image",
					json_pack("{s:o, s:o}", "reference", jstr_or_null(s->image),
						  "digest", jstr_or_null(s->image_digest)))) {
			json_decref(o);
			o = NULL;
		}
		if (!o || json_array_append_new(stages, o) < 0) {
			json_decref(stages);
			stages = NULL;
		}
	}
	if (!stages)
		return NULL;
	json_t *o = json_pack("{s:o, s:o, s:o, s:b, s:i, s:o, s:I, s:o, s:b, s:I, s:o, s:o}",
			      "run_id", jstr(r->run_id, r->run_id ? strlen(r->run_id) : 0), "name",
			      jstr(r->name, strlen(r->name)), "kind", jstr(r->kind, strlen(r->kind)),
			      "success", r->success, "exit_code", vb_run_exit_code(r), "error",
			      jstr_or_null(r->error), "duration_ms", (json_int_t)r->duration_ms,
			      "output", jstr(r->output, r->output_len), "output_truncated",
			      r->output_len < r->output_size, "output_bytes",
			      (json_int_t)r->output_size, "output_path", jstr_or_null(r->output_path),
			      "stages", stages);
	if (o && r->has_agents &&
	    (json_object_set_new(o, "total_cost_usd", json_real(r->total_cost_usd)) ||
	     json_object_set_new(o, "input_tokens", json_integer((json_int_t)r->input_tokens)) ||
	     json_object_set_new(o, "output_tokens", json_integer((json_int_t)r->output_tokens)) ||
	     json_object_set_new(o, "llm_requests", json_integer((json_int_t)r->llm_requests)) ||
	     json_object_set_new(o, "budget_exceeded", budget_stop(r)))) {
		json_decref(o);
		o = NULL;
	}
	const struct vb_run_llm_budget *b = &r->llm_budget;
	if (o && (b->max_tokens || b->max_requests || b->max_cost_usd > 0)) {
		json_t *lim = json_object();
		if (!lim || (b->max_tokens && json_object_set_new(lim, "max_tokens",
								  json_integer((json_int_t)b->max_tokens))) ||
		    (b->max_cost_usd > 0 &&
		     json_object_set_new(lim, "max_cost_usd", json_real(b->max_cost_usd))) ||
		    (b->max_requests && json_object_set_new(lim, "max_requests",
							    json_integer((json_int_t)b->max_requests))) ||
		    json_object_set_new(o, "budget", lim)) {
			json_decref(o);
			o = NULL;
		}
	}
	if (!o)
		return NULL;
	char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return text;
}

void vb_run_result_free(struct vb_run_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_stages; i++) {
		struct vb_run_stage *s = &r->stages[i];
		free(s->name);
		free(s->output);
		free(s->output_path);
		free(s->vm_id);
		free(s->image);
		free(s->image_digest);
		free(s->snapshot);
		free(s->error);
	}
	free(r->stages);
	free(r->run_id);
	free(r->name);
	free(r->kind);
	free(r->error);
	free(r->output);
	free(r->output_path);
	free(r->record_dir);
	free((char *)(uintptr_t)r->warm_cfg.root_ref);
	if (r->scratch_dir)
		vb_rm_rf(r->scratch_dir);
	free(r->scratch_dir);
	free(r);
}
