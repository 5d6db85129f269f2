/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pipelines built in C.  The builder writes the spec a user would have
 * written (as JSON) and runs it through the same loader and checks as a
 * spec file: one model, one validation, one engine.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "run/engine.h"
#include "util/util.h"
#include "voidbox/run.h"

struct vb_box {
	json_t *obj;          /* the box as a spec object */
	vb_error err;         /* the first setter error (sticky) */
};

struct vb_pipeline {
	char *name;
	json_t *boxes, *stages; /* spec objects: pipeline.boxes, pipeline.stages */
};

static void box_fail(vb_box *b, enum vb_error_kind kind, const char *what)
{
	const char *name = b ? json_string_value(json_object_get(b->obj, "name")) : NULL;
	if (b && b->err.kind == VB_E_OK)
		vb_error_set(&b->err, kind, "box '%s': %s", name ? name : "", what);
}

/* Set obj[key] = v; (v) is stolen in every case.  A NULL (v) or (obj) is
 * an allocation failure. */
static int put(vb_box *b, json_t *obj, const char *key, json_t *v)
{
	if (!v || !obj || json_object_set_new(obj, key, v) < 0) {
		if (!obj)
			json_decref(v);
		box_fail(b, VB_E_RUNTIME, "out of memory");
		return -1;
	}
	return 0;
}

/* The object at obj[key], created empty when missing (NULL when out of
 * memory). */
static json_t *sub(vb_box *b, json_t *obj, const char *key)
{
	json_t *o = obj ? json_object_get(obj, key) : NULL;
	if (!o && (!(o = json_object()) || put(b, obj, key, o) < 0))
		return NULL;
	return o;
}

static json_t *arr(vb_box *b, json_t *obj, const char *key)
{
	json_t *a = obj ? json_object_get(obj, key) : NULL;
	if (!a && (!(a = json_array()) || put(b, obj, key, a) < 0))
		return NULL;
	return a;
}

/* Append (v) to (a); (v) is stolen in every case. */
static void append(vb_box *b, json_t *a, json_t *v)
{
	if (!v || !a || json_array_append_new(a, v) < 0) {
		if (!a)
			json_decref(v);
		box_fail(b, VB_E_RUNTIME, "out of memory");
	}
}

vb_box *vb_box_new(const char *name, const char *program, const char *const *args)
{
	vb_box *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	json_t *argv = json_array();
	b->obj = json_pack("{s:s?, s:{s:s?, s:o}}", "name", name, "run", "program", program,
			   "args", argv);
	if (!b->obj) {
		free(b);
		return NULL;
	}
	if (!name || !name[0])
		vb_error_set(&b->err, VB_E_USAGE, "a box needs a name");
	else if (!program || !program[0])
		box_fail(b, VB_E_USAGE, "no program given");
	for (size_t i = 0; args && args[i]; i++)
		append(b, argv, json_string(args[i]));
	return b;
}

vb_box *vb_box_cmd(const char *name, const char *program, ...)
{
	const char *args[256];
	size_t n = 0;
	va_list ap;
	va_start(ap, program);
	const char *a;
	while ((a = va_arg(ap, const char *)) != NULL && n < 255)
		args[n++] = a;
	int too_many = a != NULL;
	va_end(ap);
	args[n] = NULL;
	vb_box *b = vb_box_new(name, program, args);
	if (b && too_many)
		box_fail(b, VB_E_USAGE, "more than 255 arguments (use vb_box_new)");
	return b;
}

void vb_box_free(vb_box *b)
{
	if (!b)
		return;
	json_decref(b->obj);
	free(b);
}

static json_t *sandbox(vb_box *b)
{
	return sub(b, b->obj, "sandbox");
}

void vb_box_memory(vb_box *b, unsigned mib)
{
	if (b)
		put(b, sandbox(b), "memory_mb", json_integer(mib));
}

void vb_box_vcpus(vb_box *b, unsigned n)
{
	if (b)
		put(b, sandbox(b), "vcpus", json_integer(n));
}

void vb_box_timeout(vb_box *b, unsigned secs)
{
	if (b)
		put(b, b->obj, "timeout_secs", json_integer(secs));
}

void vb_box_env(vb_box *b, const char *key, const char *value)
{
	if (!b)
		return;
	if (!key || !key[0]) {
		box_fail(b, VB_E_USAGE, "vb_box_env: no variable name");
		return;
	}
	put(b, sub(b, sandbox(b), "env"), key, json_string(value ? value : ""));
}

void vb_box_mount(vb_box *b, const char *host, const char *guest, int rw)
{
	if (!b)
		return;
	if (!host || !guest) {
		box_fail(b, VB_E_USAGE, "vb_box_mount: host and guest paths are required");
		return;
	}
	append(b, arr(b, sandbox(b), "mounts"),
	       json_pack("{s:s, s:s, s:s}", "host", host, "guest", guest, "mode", rw ? "rw" : "ro"));
}

void vb_box_allow(vb_box *b, const char *program)
{
	if (!b)
		return;
	if (!program) {
		box_fail(b, VB_E_USAGE, "vb_box_allow: no program");
		return;
	}
	append(b, arr(b, sandbox(b), "allowed_commands"), json_string(program));
}

void vb_box_rlimit(vb_box *b, const char *name, uint64_t value)
{
	if (!b)
		return;
	if (!name || (strcmp(name, "nofile") && strcmp(name, "nproc") && strcmp(name, "fsize_mb"))) {
		box_fail(b, VB_E_USAGE, "vb_box_rlimit: expected nofile, nproc or fsize_mb");
		return;
	}
	if (value > INT64_MAX) {
		box_fail(b, VB_E_USAGE, "vb_box_rlimit: value too large");
		return;
	}
	put(b, sub(b, sandbox(b), "limits"), name, json_integer((json_int_t)value));
}

void vb_box_snapshot(vb_box *b, const char *ref)
{
	if (!b)
		return;
	if (!ref || !ref[0]) {
		box_fail(b, VB_E_USAGE, "vb_box_snapshot: no snapshot (\"none\" boots cold)");
		return;
	}
	put(b, sandbox(b), "snapshot", json_string(ref));
}

void vb_box_output_file(vb_box *b, const char *guest_path)
{
	if (b && guest_path)
		put(b, b->obj, "output_file", json_string(guest_path));
}

void vb_box_stdin_from(vb_box *b, const char *box)
{
	if (b && box)
		put(b, sub(b, b->obj, "run"), "stdin_from", json_string(box));
}

void vb_box_output(vb_box *b, const char *name, const char *guest)
{
	if (!b)
		return;
	if (!name) {
		box_fail(b, VB_E_USAGE, "vb_box_output: no name");
		return;
	}
	append(b, arr(b, b->obj, "outputs"), json_pack("{s:s, s:s?}", "name", name, "guest", guest));
}

void vb_box_input(vb_box *b, const char *from, const char *guest)
{
	if (!b)
		return;
	if (!from) {
		box_fail(b, VB_E_USAGE, "vb_box_input: no output named");
		return;
	}
	append(b, arr(b, b->obj, "inputs"), json_pack("{s:s, s:s?}", "from", from, "guest", guest));
}

/* ---- pipelines ---------------------------------------------------------- */

vb_pipeline *vb_pipeline_new(const char *name)
{
	vb_pipeline *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->name = strdup(name ? name : "pipeline");
	p->boxes = json_array();
	p->stages = json_array();
	if (!p->name || !p->boxes || !p->stages) {
		vb_pipeline_free(p);
		return NULL;
	}
	return p;
}

void vb_pipeline_free(vb_pipeline *p)
{
	if (!p)
		return;
	free(p->name);
	json_decref(p->boxes);
	json_decref(p->stages);
	free(p);
}

static const char *box_name(const vb_box *b)
{
	return json_string_value(json_object_get(b->obj, "name"));
}

static int name_taken(const vb_pipeline *p, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(p->boxes, i, v)
		if (!strcmp(json_string_value(json_object_get(v, "name")), name))
			return 1;
	return 0;
}

/* Take the boxes in (all cases), append them and a stage naming them. */
static int add_stage(vb_pipeline *p, vb_box *const *boxes, size_t n, int fan, vb_error *err)
{
	int rc = 0;
	if (!n)
		rc = vb_error_set(err, VB_E_USAGE, "a fan-out needs at least one box");
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (!boxes[i])
			rc = vb_error_set(err, VB_E_RUNTIME, "out of memory (a NULL box)");
		else if (boxes[i]->err.kind != VB_E_OK)
			rc = (*err = boxes[i]->err, -1);
		else if (name_taken(p, box_name(boxes[i])))
			rc = vb_error_set(err, VB_E_USAGE, "duplicate box name '%s'", box_name(boxes[i]));
		for (size_t j = 0; rc == 0 && j < i; j++)
			if (!strcmp(box_name(boxes[j]), box_name(boxes[i])))
				rc = vb_error_set(err, VB_E_USAGE, "duplicate box name '%s'",
						  box_name(boxes[i]));
	}
	json_t *stage = NULL, *names = json_array();
	if (rc == 0) {
		for (size_t i = 0; names && i < n; i++)
			if (json_array_append_new(names, json_string(box_name(boxes[i]))) < 0)
				rc = -1;
		if (fan)
			stage = json_pack("{s:s, s:O}", "type", "fan_out", "boxes", names);
		else
			stage = json_pack("{s:s, s:s}", "type", "box", "name", box_name(boxes[0]));
		if (!names || rc < 0 || !stage || json_array_append_new(p->stages, stage) < 0)
			rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
		stage = NULL;
	}
	json_decref(names);
	for (size_t i = 0; i < n; i++) {
		if (!boxes[i])
			continue;
		if (rc == 0 && json_array_append(p->boxes, boxes[i]->obj) < 0)
			rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
		vb_box_free(boxes[i]);
	}
	return rc;
}

int vb_pipeline_pipe(vb_pipeline *p, vb_box *b, vb_error *err)
{
	return add_stage(p, &b, 1, 0, err);
}

int vb_pipeline_fan_out(vb_pipeline *p, vb_box *const *boxes, size_t n, vb_error *err)
{
	return add_stage(p, boxes, n, 1, err);
}

char *vb_pipeline_spec_json(const vb_pipeline *p, vb_error *err)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:{s:O, s:O}}", "api_version", "v1", "kind",
			      "pipeline", "name", p->name, "pipeline", "boxes", p->boxes, "stages",
			      p->stages);
	char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (!text)
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
	return text;
}

struct vb_run_result *vb_pipeline_run(const vb_pipeline *p, const struct vb_run_options *opts,
				      vb_error *err)
{
	_cleanup_free_ char *text = vb_pipeline_spec_json(p, err);
	if (!text)
		return NULL;
	struct vb_spec *spec =
		vb_spec_load_string(text, strlen(text), "(C API pipeline)",
				    VB_SPEC_JSON | VB_SPEC_LITERAL, err);
	if (!spec)
		return NULL;
	struct vb_run_result *res = vb_run_spec(spec, opts, err);
	vb_spec_free(spec);
	return res;
}
