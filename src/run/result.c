/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The result of a run: built from the run's units, printed as the SPEC-V1
 * result object, mapped to an exit code.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "run/engine.h"
#include "util/util.h"

/* Length of the valid UTF-8 sequence at (p) (at most (n) bytes), 0 if
 * invalid: no overlongs, surrogates or code points past U+10FFFF. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
	uint8_t c = p[0];
	if (c < 0x80)
		return 1;
	size_t len;
	uint32_t min, cp;
	if ((c & 0xE0) == 0xC0) {
		len = 2, min = 0x80, cp = c & 0x1F;
	} else if ((c & 0xF0) == 0xE0) {
		len = 3, min = 0x800, cp = c & 0x0F;
	} else if ((c & 0xF8) == 0xF0) {
		len = 4, min = 0x10000, cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

char *vb_run_utf8(const uint8_t *p, size_t n, size_t *out_len)
{
	/* worst case: every byte becomes the 3-byte U+FFFD */
	char *s = malloc(n * 3 + 1);
	if (!s)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq(p + i, n - i);
		if (k) {
			memcpy(s + o, p + i, k);
			o += k;
			i += k;
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
	res->kind = strdup(vb_spec_kind_name(r->spec->kind));
	res->output = (char *)vb_run_memdup(r->final ? r->final : (const uint8_t *)"", r->final_len);
	res->output_len = r->final_len;
	if (!res->stages || !res->run_id || !res->name || !res->kind || !res->output)
		goto oom;
	res->success = !r->error;
	res->cancelled = r->error_kind == VB_E_CANCELLED;
	res->error_kind = r->error ? r->error_kind : VB_E_OK;
	if (r->error && !(res->error = strdup(r->error)))
		goto oom;
	res->duration_ms = vb_now_ms() - r->t0;
	for (size_t k = 0; k < r->n_units; k++) {
		const struct vb_run_unit *u = &r->units[k];
		struct vb_run_stage *s = &res->stages[res->n_stages++];
		s->name = strdup(u->name);
		s->success = u->state == VB_UNIT_OK;
		s->skipped = u->state == VB_UNIT_SKIPPED || u->state == VB_UNIT_QUEUED;
		s->exit_code = u->exit_code;
		s->output = (char *)vb_run_memdup(u->output ? u->output : (const uint8_t *)"",
						  u->output_len);
		s->output_len = u->output_len;
		s->duration_ms = u->duration_ms;
		s->vm_id = dupz(u->vm_id);
		s->error = dupz(u->error);
		if (!s->name || !s->output || (u->vm_id && !s->vm_id) || (u->error && !s->error))
			goto oom;
	}
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

/* The SPEC-V1 result object plus what scripts need to tell what happened
 * (run id, errors, skips, exit codes).  Token and cost fields arrive with
 * agent stages: a command box has none. */
char *vb_run_result_json(const struct vb_run_result *r)
{
	json_t *stages = json_array();
	for (size_t i = 0; stages && i < r->n_stages; i++) {
		const struct vb_run_stage *s = &r->stages[i];
		json_t *o = json_pack("{s:o, s:b, s:b, s:i, s:o, s:o, s:I, s:o}", "name",
				      jstr(s->name, strlen(s->name)), "success", s->success,
				      "skipped", s->skipped, "exit_code", s->exit_code, "error",
				      jstr_or_null(s->error), "output", jstr(s->output, s->output_len),
				      "duration_ms", (json_int_t)s->duration_ms, "vm_id",
				      jstr(s->vm_id, s->vm_id ? strlen(s->vm_id) : 0));
		if (!o || json_array_append_new(stages, o) < 0) {
			json_decref(stages);
			stages = NULL;
		}
	}
	if (!stages)
		return NULL;
	json_t *o = json_pack("{s:o, s:o, s:o, s:b, s:i, s:o, s:I, s:o, s:o}", "run_id",
			      jstr(r->run_id, r->run_id ? strlen(r->run_id) : 0), "name",
			      jstr(r->name, strlen(r->name)), "kind", jstr(r->kind, strlen(r->kind)),
			      "success", r->success, "exit_code", vb_run_exit_code(r), "error",
			      jstr_or_null(r->error), "duration_ms", (json_int_t)r->duration_ms,
			      "output", jstr(r->output, r->output_len), "stages", stages);
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
		free(s->vm_id);
		free(s->error);
	}
	free(r->stages);
	free(r->run_id);
	free(r->name);
	free(r->kind);
	free(r->error);
	free(r->output);
	free(r->record_dir);
	free(r);
}
