/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Runs: pipelines and workflows of commands, every pipeline box in a fresh
 * micro-VM.  The programmatic twin of the YAML specs (docs/spec.md,
 * docs/run.md): build a pipeline in C, or load a spec file, run it, read
 * the result and, on the way, the events.
 *
 *     vb_error err = { 0 };
 *     struct vb_run_result *r = NULL;
 *     vb_pipeline *p = vb_pipeline_new("hello");
 *     vb_box *a = vb_box_cmd("produce", "sh", "-c", "echo '{\"n\": 1}'", NULL);
 *     if (vb_pipeline_pipe(p, a, &err) == 0) {
 *             vb_box *fan[2] = { vb_box_cmd("left", "cat", "/workspace/input.json", NULL),
 *                                vb_box_cmd("right", "wc", "-c", "/workspace/input.json", NULL) };
 *             if (vb_pipeline_fan_out(p, fan, 2, &err) == 0)
 *                     r = vb_pipeline_run(p, NULL, &err);
 *     }
 *     vb_pipeline_free(p);
 *     if (r)
 *             printf("%s\n%s\n", r->success ? "ok" : r->error, r->output);
 *     else
 *             fprintf(stderr, "%s\n", err.msg);
 *     vb_run_result_free(r);
 *
 * (tests/integration/test_install.sh compiles and runs this example against
 * an installed tree: keep it whole.)  Link with `pkg-config --cflags --libs
 * voidbox` (docs/install.md).
 *
 * The builder produces the same validated model as a spec file (it is
 * checked by the same loader), and one engine runs both.
 */
#ifndef VOIDBOX_RUN_H
#define VOIDBOX_RUN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "voidbox/error.h"
#include "voidbox/events.h"
#include "voidbox/sandbox.h"

/* ---- running ------------------------------------------------------------ */

struct vb_run_options {
	const char *input;      /* given to the first stage as /workspace/input.json; NULL = none */
	size_t input_len;       /* 0 = strlen(input) */
	unsigned max_parallel;  /* fan-out boxes / workflow steps at once; 0 = 4 */
	vb_event_fn on_event;   /* called from any run thread, concurrently; may be NULL */
	void *opaque;           /* passed to on_event */
	int cancel_fd;          /* > 0: once readable, the run is cancelled: every VM torn
				 * down, RUN_CANCELLED emitted.  Never read by the engine
				 * (level-triggered: an eventfd or pipe that stays readable) */
	int no_record;          /* 1: no run record under the state dir (see docs/run.md) */
	int accel_set;          /* 1: every VM uses (accel), whatever the spec says; 0: as
				 * $VOIDBOX_ACCEL says if set, else the spec's sandbox.backend */
	enum vb_accel accel;
	FILE *notices;          /* one-line notices (e.g. "mode mock is treated as auto"),
				 * each once per process; NULL = none */
	/* Added to every box and step (`voidbox run --env/--mount`), after the
	 * spec's own: "K=V" entries replace the spec's value of K; mounts
	 * come after the spec's (an rw host directory is created if missing). */
	const char *const *env;
	size_t n_env;
	const struct vb_mount *mounts;
	size_t n_mounts;
	/* Bounds on what the guests can make the host keep (docs/run.md,
	 * "Bounded outputs" and "The run record"); 0 = the default.  A stage
	 * that goes past one fails, saying which. */
	uint64_t output_budget; /* bytes of carried outputs the run keeps in all
				 * (every box's output and the stdout it carries);
				 * default 256 MiB */
	uint64_t carry_max;     /* the largest fan-out carry (its JSON array);
				 * default 64 MiB */
	uint64_t record_max;    /* bytes of the run record (events.jsonl and the
				 * stage logs); default 1 GiB */
	/* One LLM budget for the whole run (`voidbox run --budget`), shared by
	 * every agent stage, fan-out boxes in parallel included, on top of
	 * each stage's own llm.budget (docs/agents.md, "Budgets"); 0 = no
	 * limit. */
	struct vb_run_llm_budget {
		uint64_t max_tokens;
		double max_cost_usd;
		uint64_t max_requests;
	} llm_budget;
	/* mode: interactive agent stages (docs/agents.md): start (p), a
	 * program to run on a terminal (the caller adds pty, stdin, the
	 * window size), in (sb), attach the caller's terminal to it until it
	 * exits, and return its exit code; -1 with (err) on failure, kind
	 * VB_E_CANCELLED when a teardown signal ended it.  Called on the
	 * stage's thread.  NULL: such specs are refused before anything boots
	 * ("needs a terminal"). */
	int (*attach)(vb_sandbox *sb, const struct vb_exec_params *p, void *opaque,
		      vb_error *err);
	void *attach_opaque;
	/* 1: the VMs with a network run in learn mode (struct vb_network.learn);
	 * each stage's draft network_policy goes to (notices) and to
	 * network_policy.yaml in its stage directory. */
	int net_learn;
	/* sandbox.image (docs/oci.md, "Running on an image"): 0 = pull an
	 * image only when it is not in the store (docker's default), 1 =
	 * resolve its tag at the registry for every VM, 2 = never touch the
	 * network (an image not in the store fails its stage). */
	int pull;
	/* How the VMs start (docs/snapshots.md, "Specs, pipelines and shells").
	 * By default a VM whose spec sets no sandbox.snapshot restores the warm
	 * snapshot of its configuration when there is one and a restore can
	 * give it what it asks (else it boots), and one whose spec names a
	 * snapshot restores that one.  (snapshot): a name, id (prefix) or
	 * store directory restored by every VM whose spec sets no
	 * sandbox.snapshot; NULL: none.  (cold) 1: those VMs boot instead of
	 * restoring the warm snapshot.  A spec's own sandbox.snapshot (a
	 * snapshot, or none) wins over both.  Every snapshot a run restores
	 * is found before any VM boots. */
	const char *snapshot;
	int cold;
};

/* Which budget refused a stage a model request (and so failed it). */
enum vb_run_budget_hit { VB_RUN_BUDGET_NONE = 0, VB_RUN_BUDGET_STAGE, VB_RUN_BUDGET_RUN };

struct vb_run_stage {
	char *name;            /* box or step */
	int success;
	int skipped;           /* never ran: an earlier stage or a dependency failed */
	int exit_code;         /* the program's (124 timed out); -1 when it did not run to an exit */
	/* The carried output is a file (output_path, output_size bytes); in
	 * memory only its start: (output) holds at most 16 KiB of it, cut on
	 * a UTF-8 character boundary, NUL-terminated (output_len bytes). */
	char *output;
	size_t output_len;
	uint64_t output_size;
	char *output_path;     /* NULL when it has none (skipped, failed to start) */
	int64_t duration_ms;
	char *vm_id;           /* NULL when no VM was booted for it */
	char *error;           /* why it failed or was skipped; NULL on success */
	/* Agent stages only (is_agent): what its model requests took, counted
	 * by its LLM gateway (docs/agents.md), also when it failed. */
	int is_agent;
	uint64_t llm_requests, input_tokens, output_tokens;
	double cost_usd;
	enum vb_run_budget_hit budget_hit; /* its llm.budget or the run's stopped it */
	/* sandbox.image: the normalized reference and the platform manifest's
	 * digest its VM ran on; NULL on the initramfs root (or when its image
	 * could not be had) */
	char *image, *image_digest;
	/* How its VM started: the full id of the snapshot it was restored
	 * from (warm: the warm snapshot of its configuration), NULL when it
	 * booted cold (or had no VM) */
	char *snapshot;
	int warm;
};

struct vb_run_result {
	char *run_id;
	char *name, *kind;     /* "pipeline", "workflow" */
	int success;
	int cancelled;
	/* VB_E_OK when the run succeeded or a program failed (exit code, timeout,
	 * not found); VB_E_RUNTIME / VB_E_VMDIED when VoidBox itself failed (a VM
	 * did not boot or died); VB_E_CANCELLED when cancelled. */
	enum vb_error_kind error_kind;
	char *error;           /* the first failure, naming the box or step; NULL on success */
	/* The final output, as in a stage: a preview (output, output_len) of
	 * the file output_path (output_size bytes; NULL when the run failed). */
	char *output;
	size_t output_len;
	uint64_t output_size;
	char *output_path;
	struct vb_run_stage *stages; /* in run order: a fan-out's boxes in declaration order */
	size_t n_stages;
	int64_t duration_ms;
	char *record_dir;      /* the run's directory (record, named outputs); NULL if none */
	/* The output files of a run with no_record live in this temporary
	 * directory until vb_run_result_free() removes it; NULL otherwise. */
	char *scratch_dir;
	/* Sums over the agent stages; has_agents is 0 when there are none. */
	int has_agents;
	uint64_t llm_requests, input_tokens, output_tokens;
	double total_cost_usd;
	/* The run's budget as given (all 0: none), and the first stage a
	 * budget stopped, if any (index into stages, budget_hit says whose). */
	struct vb_run_llm_budget llm_budget;
	size_t budget_stage;   /* SIZE_MAX: no budget stopped a stage */
	/* A VM of the run looked for the warm snapshot of its configuration
	 * and found none (or one that could not be restored, now deleted):
	 * worth making one for the next run (`voidbox run` starts `voidbox
	 * snapshot warm --background` once; the library never does).  In
	 * (warm_cfg) only backend, accel, memory_mib, vcpus and root_ref (an
	 * OCI image's reference, owned by the result; NULL: no image) are
	 * set: the first such VM's. */
	int warm_missing;
	struct vb_sandbox_config warm_cfg;
};

/* Load a spec file (YAML or JSON; "-" = stdin, see vb_spec_load) and run
 * it.  Returns NULL with (err) set when nothing could run: a bad spec or
 * an unset ${VAR} (VB_E_USAGE), a kind that `voidbox run` does not run
 * (sandbox: VB_E_USAGE), an agent other than builtin, which this version
 * does not run yet (VB_E_RUNTIME), an agent's missing provider credential
 * (VB_E_USAGE), a setting this version cannot honour, or a failure to
 * set up.  Otherwise a result (success or not) the caller frees.
 * (opts) may be NULL. */
struct vb_run_result *vb_run_file(const char *path, const struct vb_run_options *opts,
				  vb_error *err);

/* The process exit code for a result: 0 success, 1 a stage failed, 125
 * VoidBox failed, 130 cancelled. */
int vb_run_exit_code(const struct vb_run_result *r);

/* The result object of SPEC-V1 as compact JSON text (caller frees); NULL on
 * allocation failure.  Outputs appear as their previews ("output", bad
 * UTF-8 replaced by U+FFFD) with "output_bytes", "output_path" and
 * "output_truncated", so the text stays small whatever the outputs are. */
char *vb_run_result_json(const struct vb_run_result *r);

void vb_run_result_free(struct vb_run_result *r);

/* ---- building a pipeline in C ------------------------------------------ */

typedef struct vb_pipeline vb_pipeline;
typedef struct vb_box vb_box;

/* A command box: (program) with (args) (NULL-terminated; NULL = none).
 * Returns NULL only on allocation failure.  Setter errors (bad values, no
 * memory) are sticky: the box remembers the first, and vb_pipeline_pipe()
 * or vb_pipeline_fan_out() reports it. */
vb_box *vb_box_new(const char *name, const char *program, const char *const *args);
/* Same with the arguments inline, ending with NULL. */
vb_box *vb_box_cmd(const char *name, const char *program, ...) __attribute__((sentinel));
void vb_box_free(vb_box *b);

void vb_box_memory(vb_box *b, unsigned mib);
void vb_box_vcpus(vb_box *b, unsigned n);
void vb_box_timeout(vb_box *b, unsigned secs);      /* timed out = failed, exit 124 */
void vb_box_env(vb_box *b, const char *key, const char *value); /* NULL value = the host's */
void vb_box_mount(vb_box *b, const char *host, const char *guest, int rw);
void vb_box_allow(vb_box *b, const char *program);  /* the allowlist (basenames) */
void vb_box_rlimit(vb_box *b, const char *name, uint64_t value); /* nofile, nproc, fsize_mb */
/* sandbox.snapshot (docs/snapshots.md): restore the box's VM from the
 * snapshot (ref) names (a name, an id prefix), or "none": always boot it
 * cold.  Without it the VM is warm by default. */
void vb_box_snapshot(vb_box *b, const char *ref);
void vb_box_output_file(vb_box *b, const char *guest_path); /* default /workspace/output.json */
void vb_box_stdin_from(vb_box *b, const char *box);         /* an earlier box's stdout */
/* A named host directory (under the run directory) mounted rw at (guest)
 * (NULL = /workspace/output); a later box mounts it ro with vb_box_input(). */
void vb_box_output(vb_box *b, const char *name, const char *guest);
void vb_box_input(vb_box *b, const char *from, const char *guest); /* NULL = /workspace/input */

/* A new, empty pipeline.  NULL only on allocation failure. */
vb_pipeline *vb_pipeline_new(const char *name);
void vb_pipeline_free(vb_pipeline *p);

/* Append a stage of one box / of (n) boxes run in parallel.  The pipeline
 * takes ownership of the boxes in every case (also on failure).  Errors:
 * the box's sticky error, a duplicate name (VB_E_USAGE). */
int vb_pipeline_pipe(vb_pipeline *p, vb_box *b, vb_error *err);
int vb_pipeline_fan_out(vb_pipeline *p, vb_box *const *boxes, size_t n, vb_error *err);

/* The pipeline as spec JSON text (what a spec file would hold); caller
 * frees.  NULL with (err) set on allocation failure. */
char *vb_pipeline_spec_json(const vb_pipeline *p, vb_error *err);

/* Validate and run, as vb_run_file() does a spec file. */
struct vb_run_result *vb_pipeline_run(const vb_pipeline *p, const struct vb_run_options *opts,
				      vb_error *err);

#endif
