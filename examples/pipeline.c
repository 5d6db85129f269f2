/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The C twin of a pipeline spec: a box piped into a fan-out of two boxes,
 * every box in its own micro-VM, events printed as they happen, then the
 * result.  Uses only the public headers.
 *
 *     build/examples/pipeline [INPUT]
 *
 * Exit code: 0 when the pipeline succeeded, as `voidbox run` otherwise.
 */
#include <stdio.h>
#include <string.h>

#include "voidbox/voidbox.h"

static void on_event(const struct vb_event *ev, void *opaque)
{
	FILE *out = opaque;
	switch (ev->type) {
	case VB_EV_VM_BOOTED:
		fprintf(out, "event: %s booted %s (%s, %s) in %lld ms\n", ev->stage, ev->vm_id,
			ev->accel, ev->isolation, (long long)ev->boot_ms);
		break;
	case VB_EV_STAGE_COMPLETED:
	case VB_EV_STAGE_FAILED:
	case VB_EV_STAGE_SKIPPED:
		fprintf(out, "event: %s %s%s%s\n", vb_event_name(ev->type), ev->stage,
			ev->error ? ": " : "", ev->error ? ev->error : "");
		break;
	default:
		break;
	}
}

int main(int argc, char **argv)
{
	vb_error err = { 0 };
	vb_pipeline *p = vb_pipeline_new("c-api-example");
	if (!p)
		return 125;

	/* Stage 1: uppercase what the pipeline was given. */
	vb_box *upper = vb_box_cmd("upper", "sh", "-c",
				   "tr a-z A-Z < /workspace/input.json > /workspace/output.json",
				   NULL);
	vb_box_memory(upper, 256);
	vb_box_timeout(upper, 60);

	/* Stage 2, in parallel: count the words, and reverse the text. */
	vb_box *fan[2] = {
		vb_box_cmd("count", "sh", "-c", "wc -w < /workspace/input.json", NULL),
		vb_box_cmd("reverse", "rev", "/workspace/input.json", NULL),
	};
	vb_box_memory(fan[0], 256);
	vb_box_memory(fan[1], 256);
	vb_box_env(fan[1], "GREETING", "hi");

	if (vb_pipeline_pipe(p, upper, &err) < 0 || vb_pipeline_fan_out(p, fan, 2, &err) < 0) {
		fprintf(stderr, "pipeline: %s\n", err.msg);
		vb_pipeline_free(p);
		return 2;
	}

	struct vb_run_options opts = {
		.input = argc > 1 ? argv[1] : "hello from the c api",
		.max_parallel = 2,
		.on_event = on_event,
		.opaque = stdout,
	};
	struct vb_run_result *r = vb_pipeline_run(p, &opts, &err);
	vb_pipeline_free(p);
	if (!r) {
		fprintf(stderr, "pipeline: %s\n", err.msg);
		return err.kind == VB_E_USAGE ? 2 : 125;
	}
	for (size_t i = 0; i < r->n_stages; i++) {
		const struct vb_run_stage *s = &r->stages[i];
		printf("stage %-8s %s exit %d in %lld ms on %s: %.*s", s->name,
		       s->success ? "ok    " : "FAILED", s->exit_code, (long long)s->duration_ms,
		       s->vm_id ? s->vm_id : "-", (int)s->output_len, s->output);
		if (!s->output_len || s->output[s->output_len - 1] != '\n')
			putchar('\n');
	}
	printf("run %s: %s\noutput: %s\n", r->run_id, r->success ? "succeeded" : r->error,
	       r->output);
	int code = vb_run_exit_code(r);
	vb_run_result_free(r);
	return code;
}
