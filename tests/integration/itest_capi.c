/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The run C API (include/voidbox/run.h) on real VMs: the builder and its
 * errors, the spec it writes, events in order from concurrent stages,
 * binary input, results without a record, a spec file, and cancelling a
 * fan-out through a descriptor with nothing left behind.
 * Prints "ok - NAME" / "not ok - NAME" lines.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "spec/spec.h"
#include "util/util.h"
#include "voidbox/voidbox.h"

#define CHECK(cond, ...) CHECK_OR(goto out, cond, __VA_ARGS__)
#include "itest.h"

static char runtime_dir[64], state_dir[64];

/* No VM directory left under our private runtime root. */
static int runtime_clean(void)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/voidbox-%u", runtime_dir, (unsigned)getuid());
	DIR *d = opendir(path);
	if (!d)
		return 1;
	struct dirent *e;
	int clean = 1;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "vm-", 3))
			clean = 0;
	closedir(d);
	return clean;
}

/* ---- events, collected from any thread ---------------------------------- */

#define MAX_EV 512
struct evlog {
	pthread_mutex_t mu;
	struct {
		enum vb_event_type type;
		char stage[32];
		char vm_id[32];
	} ev[MAX_EV];
	size_t n;
	char stdout_text[256];
	int booted, cancel_fd, run_ids_match;
	char run_id[40];
};

static void collect(const struct vb_event *ev, void *opaque)
{
	struct evlog *l = opaque;
	pthread_mutex_lock(&l->mu);
	if (!l->run_id[0]) {
		snprintf(l->run_id, sizeof(l->run_id), "%s", ev->run_id);
		l->run_ids_match = 1;
	} else if (strcmp(l->run_id, ev->run_id)) {
		l->run_ids_match = 0;
	}
	if (l->n < MAX_EV) {
		l->ev[l->n].type = ev->type;
		snprintf(l->ev[l->n].stage, sizeof(l->ev[l->n].stage), "%s", ev->stage ? ev->stage : "");
		snprintf(l->ev[l->n].vm_id, sizeof(l->ev[l->n].vm_id), "%s", ev->vm_id ? ev->vm_id : "");
		l->n++;
	}
	if (ev->type == VB_EV_LOG_CHUNK && !strcmp(ev->stream, "stdout")) {
		size_t have = strlen(l->stdout_text);
		size_t n = ev->len < sizeof(l->stdout_text) - 1 - have ? ev->len
								       : sizeof(l->stdout_text) - 1 - have;
		memcpy(l->stdout_text + have, ev->data, n);
		l->stdout_text[have + n] = '\0';
	}
	/* cancel once two VMs are up */
	if (ev->type == VB_EV_VM_BOOTED && ++l->booted == 2 && l->cancel_fd > 0) {
		uint64_t one = 1;
		if (write(l->cancel_fd, &one, sizeof(one)) != sizeof(one))
			abort();
	}
	pthread_mutex_unlock(&l->mu);
}

/* Index of the first event of (type) for (stage), or -1. */
static int find(const struct evlog *l, enum vb_event_type type, const char *stage)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->ev[i].type == type && (!stage || !strcmp(l->ev[i].stage, stage)))
			return (int)i;
	return -1;
}

/* ---- tests ---------------------------------------------------------------- */

static int test_builder_errors(void)
{
	int rc = -1;
	vb_error err = { 0 };
	char *json = NULL;
	struct vb_spec *spec = NULL;
	vb_pipeline *p = vb_pipeline_new("errors");
	CHECK(p, "no pipeline");
	/* a sticky setter error is reported when the box is added */
	vb_box *b = vb_box_cmd("empty", "", NULL);
	vb_box_env(b, "OK", "1");
	CHECK(vb_pipeline_pipe(p, b, &err) < 0 && err.kind == VB_E_USAGE, "empty program accepted");
	CHECK(strstr(err.msg, "box 'empty': no program given"), "message: %s", err.msg);
	vb_box *r = vb_box_cmd("x", "true", NULL);
	vb_box_rlimit(r, "cores", 1);
	CHECK(vb_pipeline_pipe(p, r, &err) < 0 && strstr(err.msg, "nofile, nproc or fsize_mb"),
	      "message: %s", err.msg);
	/* duplicate names, within a fan-out and across stages */
	CHECK(vb_pipeline_pipe(p, vb_box_cmd("one", "true", NULL), &err) == 0, "%s", err.msg);
	vb_box *dup[2] = { vb_box_cmd("two", "true", NULL), vb_box_cmd("two", "true", NULL) };
	CHECK(vb_pipeline_fan_out(p, dup, 2, &err) < 0 && strstr(err.msg, "duplicate box name 'two'"),
	      "message: %s", err.msg);
	CHECK(vb_pipeline_pipe(p, vb_box_cmd("one", "true", NULL), &err) < 0, "dup accepted");
	/* the spec it writes is what a user would write, and it loads */
	vb_box *full = vb_box_cmd("full", "sh", "-c", "cat", NULL);
	vb_box_memory(full, 128);
	vb_box_vcpus(full, 1);
	vb_box_timeout(full, 9);
	vb_box_env(full, "K", "v");
	vb_box_env(full, "HOME_COPY", NULL);
	vb_box_allow(full, "sh");
	vb_box_rlimit(full, "nofile", 64);
	vb_box_output_file(full, "/workspace/out.txt");
	vb_box_stdin_from(full, "one");
	vb_box_output(full, "art", NULL);
	CHECK(vb_pipeline_pipe(p, full, &err) == 0, "%s", err.msg);
	vb_box *in = vb_box_cmd("reader", "ls", "/in", NULL);
	vb_box_input(in, "art", "/in");
	vb_box_mount(in, "/tmp", "/host-tmp", 0);
	CHECK(vb_pipeline_pipe(p, in, &err) == 0, "%s", err.msg);
	json = vb_pipeline_spec_json(p, &err);
	CHECK(json, "%s", err.msg);
	spec = vb_spec_load_string(json, strlen(json), "built.json", 0, &err);
	CHECK(spec, "%s\n%s", err.msg, json);
	CHECK(spec->kind == VB_SPEC_PIPELINE && spec->pipeline.n_boxes == 3 &&
		      spec->pipeline.n_stages == 3,
	      "shape");
	const struct vb_spec_box *fb = &spec->pipeline.boxes[1];
	CHECK(fb->vm.memory_mb == 128 && fb->timeout_secs.v == 9 && fb->run.stdin_index == 0 &&
		      fb->vm.n_env == 2 && fb->vm.env[1]->from_host && fb->n_outputs == 1,
	      "box settings lost");
	CHECK(spec->pipeline.boxes[2].n_inputs == 1 && spec->pipeline.boxes[2].vm.n_mounts == 1,
	      "inputs/mounts lost");
	rc = 0;
out:
	vb_spec_free(spec);
	free(json);
	vb_pipeline_free(p);
	return rc;
}

static int test_validation_errors_come_from_the_spec_loader(void)
{
	int rc = -1;
	vb_error err = { 0 };
	vb_pipeline *p = vb_pipeline_new("invalid");
	vb_box *b = vb_box_cmd("b", "cat", NULL);
	vb_box_stdin_from(b, "nobody");
	CHECK(vb_pipeline_pipe(p, b, &err) == 0, "%s", err.msg);
	struct vb_run_result *r = vb_pipeline_run(p, NULL, &err);
	CHECK(!r, "ran");
	CHECK(err.kind == VB_E_USAGE && strstr(err.msg, "stdin_from names unknown box"), "%s",
	      err.msg);
	CHECK(runtime_clean(), "a VM was started");
	rc = 0;
out:
	vb_pipeline_free(p);
	return rc;
}

static int test_run_events_and_result(void)
{
	int rc = -1;
	vb_error err = { 0 };
	struct vb_run_result *r = NULL;
	struct evlog *l = calloc(1, sizeof(*l));
	pthread_mutex_init(&l->mu, NULL);
	vb_pipeline *p = vb_pipeline_new("events");
	vb_box *a = vb_box_cmd("a", "sh", "-c", "wc -c < /workspace/input.json", NULL);
	vb_box_memory(a, 256);
	vb_box *fan[2] = { vb_box_cmd("b", "cat", "/workspace/input.json", NULL),
			   vb_box_cmd("c", "sh", "-c", "exit 7", NULL) };
	vb_box_memory(fan[0], 256);
	vb_box_memory(fan[1], 256);
	vb_box *never = vb_box_cmd("d", "true", NULL);
	CHECK(vb_pipeline_pipe(p, a, &err) == 0 && vb_pipeline_fan_out(p, fan, 2, &err) == 0 &&
		      vb_pipeline_pipe(p, never, &err) == 0,
	      "%s", err.msg);
	/* binary input: NUL bytes and all */
	struct vb_run_options o = { .input = "a\0b", .input_len = 3, .max_parallel = 2,
				    .on_event = collect, .opaque = l, .no_record = 1 };
	r = vb_pipeline_run(p, &o, &err);
	CHECK(r, "%s", err.msg);
	CHECK(!r->success && vb_run_exit_code(r) == 1 && r->error_kind == VB_E_OK, "result");
	CHECK(r->error && !strcmp(r->error, "box 'c' failed: exit code 7"), "error: %s", r->error);
	CHECK(!r->record_dir, "a record dir without recording");
	CHECK(r->n_stages == 4, "%zu stages", r->n_stages);
	CHECK(!strcmp(r->stages[0].output, "3\n") && r->stages[0].success, "a: %s", r->stages[0].output);
	CHECK(!strcmp(r->stages[1].name, "b") && !strcmp(r->stages[1].output, "3\n"), "b");
	CHECK(!strcmp(r->stages[2].name, "c") && r->stages[2].exit_code == 7 && !r->stages[2].skipped,
	      "c");
	CHECK(r->stages[3].skipped && !r->stages[3].vm_id && r->stages[3].exit_code == -1, "d");
	CHECK(r->stages[0].vm_id && r->stages[1].vm_id && strcmp(r->stages[0].vm_id, r->stages[1].vm_id),
	      "VMs shared");
	/* events: in order per stage, all of one run */
	CHECK(l->run_ids_match && !strcmp(l->run_id, r->run_id), "run ids");
	CHECK(find(l, VB_EV_RUN_STARTED, NULL) == 0, "RUN_STARTED not first");
	CHECK(l->ev[l->n - 1].type == VB_EV_RUN_FINISHED, "RUN_FINISHED not last");
	const char *st[] = { "a", "b", "c" };
	for (int i = 0; i < 3; i++) {
		int q = find(l, VB_EV_STAGE_QUEUED, st[i]), s = find(l, VB_EV_STAGE_STARTED, st[i]);
		int b = find(l, VB_EV_VM_BOOTED, st[i]);
		int e = find(l, i == 2 ? VB_EV_STAGE_FAILED : VB_EV_STAGE_COMPLETED, st[i]);
		CHECK(q > 0 && q < s && s < b && b < e, "order for %s: %d %d %d %d", st[i], q, s, b, e);
		CHECK(l->ev[b].vm_id[0] && !strcmp(l->ev[b].vm_id, l->ev[e].vm_id), "vm id of %s", st[i]);
	}
	CHECK(find(l, VB_EV_STAGE_SKIPPED, "d") > find(l, VB_EV_STAGE_FAILED, "c"), "d not skipped");
	CHECK(find(l, VB_EV_STAGE_STARTED, "d") < 0, "d started");
	CHECK(strstr(l->stdout_text, "3\n"), "stdout chunks: %s", l->stdout_text);
	char runs[128];
	snprintf(runs, sizeof(runs), "%s/voidbox/runs", state_dir);
	CHECK(access(runs, F_OK) != 0, "no_record wrote %s", runs);
	CHECK(runtime_clean(), "VM left behind");
	/* outputs are files, there until the result is freed */
	CHECK(r->scratch_dir && r->stages[0].output_path && r->stages[0].output_size == 2 &&
		      !strncmp(r->stages[0].output_path, r->scratch_dir, strlen(r->scratch_dir)) &&
		      access(r->stages[0].output_path, R_OK) == 0,
	      "a's output file: %s", r->stages[0].output_path ? r->stages[0].output_path : "none");
	char scratch[512];
	snprintf(scratch, sizeof(scratch), "%s", r->scratch_dir);
	vb_run_result_free(r);
	r = NULL;
	CHECK(access(scratch, F_OK) != 0, "%s left behind", scratch);
	rc = 0;
out:
	vb_run_result_free(r);
	vb_pipeline_free(p);
	pthread_mutex_destroy(&l->mu);
	free(l);
	return rc;
}

static int test_run_a_spec_file(void)
{
	int rc = -1;
	vb_error err = { 0 };
	struct vb_run_result *r = NULL;
	char path[128];
	snprintf(path, sizeof(path), "%s/wf.yaml", state_dir);
	FILE *f = fopen(path, "w");
	CHECK(f, "fopen");
	fputs("api_version: v1\nkind: workflow\nname: wf\nsandbox: {memory_mb: 256}\n"
	      "workflow:\n  steps:\n"
	      "    - {name: a, run: {program: echo, args: [hi]}}\n"
	      "    - {name: b, run: {program: tr, args: [a-z, A-Z], stdin_from: a}}\n",
	      f);
	fclose(f);
	r = vb_run_file(path, NULL, &err);
	CHECK(r, "%s", err.msg);
	CHECK(r->success && !strcmp(r->output, "HI\n") && !strcmp(r->kind, "workflow"), "output %s",
	      r->output);
	CHECK(r->record_dir && access(r->record_dir, F_OK) == 0, "no record");
	char *json = vb_run_result_json(r);
	CHECK(json && strstr(json, "\"output\":\"HI\\n\""), "json %s", json ? json : "");
	free(json);
	rc = 0;
out:
	vb_run_result_free(r);
	return rc;
}

static int test_cancel_a_fan_out(void)
{
	int rc = -1;
	vb_error err = { 0 };
	struct vb_run_result *r = NULL;
	struct evlog *l = calloc(1, sizeof(*l));
	pthread_mutex_init(&l->mu, NULL);
	l->cancel_fd = eventfd(0, EFD_CLOEXEC);
	vb_pipeline *p = vb_pipeline_new("cancel");
	vb_box *fan[3] = { vb_box_cmd("x", "sleep", "60", NULL), vb_box_cmd("y", "sleep", "60", NULL),
			   vb_box_cmd("z", "sleep", "60", NULL) };
	for (int i = 0; i < 3; i++)
		vb_box_memory(fan[i], 256);
	CHECK(vb_pipeline_fan_out(p, fan, 3, &err) == 0, "%s", err.msg);
	struct vb_run_options o = { .max_parallel = 2, .on_event = collect, .opaque = l,
				    .cancel_fd = l->cancel_fd };
	int64_t t0 = vb_now_ms();
	r = vb_pipeline_run(p, &o, &err);
	int64_t took = vb_now_ms() - t0;
	CHECK(r, "%s", err.msg);
	CHECK(r->cancelled && vb_run_exit_code(r) == 130 && !r->success, "not cancelled");
	CHECK(took < 30000, "took %lld ms", (long long)took);
	CHECK(l->ev[l->n - 1].type == VB_EV_RUN_CANCELLED, "last event %d", l->ev[l->n - 1].type);
	CHECK(find(l, VB_EV_RUN_FINISHED, NULL) < 0, "RUN_FINISHED too");
	CHECK(r->stages[2].skipped && find(l, VB_EV_STAGE_STARTED, "z") < 0, "z ran");
	CHECK(runtime_clean(), "VM left behind");
	rc = 0;
out:
	vb_run_result_free(r);
	vb_pipeline_free(p);
	close(l->cancel_fd);
	pthread_mutex_destroy(&l->mu);
	free(l);
	return rc;
}

int main(void)
{
	snprintf(runtime_dir, sizeof(runtime_dir), "/tmp/vb-capi-run-XXXXXX");
	snprintf(state_dir, sizeof(state_dir), "/tmp/vb-capi-state-XXXXXX");
	if (!mkdtemp(runtime_dir) || !mkdtemp(state_dir)) {
		perror("mkdtemp");
		return 1;
	}
	setenv("XDG_RUNTIME_DIR", runtime_dir, 1);
	setenv("XDG_STATE_HOME", state_dir, 1);
	report("builder errors are sticky and the built spec loads", test_builder_errors());
	report("validation errors come from the spec loader",
	       test_validation_errors_come_from_the_spec_loader());
	report("run: events in order, result, binary input, no record", test_run_events_and_result());
	report("run a spec file (workflow)", test_run_a_spec_file());
	report("cancel a fan-out through cancel_fd", test_cancel_a_fan_out());
	vb_rm_rf(runtime_dir);
	vb_rm_rf(state_dir);
	return failures ? 1 : 0;
}
