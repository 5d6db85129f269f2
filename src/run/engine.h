/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The run engine, inside: one struct vb_run per run, a unit per pipeline
 * box run or workflow step, and the pieces the pipeline and workflow runners
 * share (events, streaming one exec, cancellation).
 *
 * Threads: the calling thread runs stages in order; a fan-out or a set of
 * ready workflow steps run on worker threads that are all joined before the
 * stage is over.  A unit is written only by the thread running it and read
 * by others only after that thread is joined, or under (mu).
 */
#ifndef VB_RUN_ENGINE_H
#define VB_RUN_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>

#include "observe/observe.h"
#include "run/vmconf.h"
#include "spec/spec.h"
#include "voidbox/run.h"
#include "voidbox/sandbox.h"

/* The most a box or step may carry forward (stdout or output_file). */
#define VB_RUN_MAX_OUTPUT ((size_t)32 << 20)
/* After a cancel, how long a killed program gets to report its exit before
 * the VM is torn down regardless. */
#define VB_RUN_CANCEL_GRACE_MS 3000
/* Host-side guard behind the guest's own exec timeout. */
#define VB_RUN_TIMEOUT_GUARD_MS 15000

enum vb_unit_state { VB_UNIT_QUEUED = 0, VB_UNIT_RUNNING, VB_UNIT_OK, VB_UNIT_FAILED, VB_UNIT_SKIPPED };

struct vb_run_unit {
	const char *name;           /* borrowed from the spec */
	enum vb_unit_state state;
	int exit_code;              /* -1 until the program exited */
	enum vb_error_kind fail_kind; /* VB_E_OK: the program failed; else VoidBox or cancel */
	uint8_t *out;               /* collected stdout (NUL-terminated) */
	size_t out_len, out_cap;
	int out_overflow;           /* stdout went past VB_RUN_MAX_OUTPUT */
	uint8_t *output;            /* the carried output (NUL-terminated) */
	size_t output_len;
	int64_t started_ms, duration_ms;
	int boot_announced;         /* workflow: STAGE_STARTED said while its VM booted */
	char *vm_id;
	char *error;
};

struct vb_run {
	const struct vb_spec *spec;
	struct vb_run_options opts;
	char *run_id;
	char *run_dir;              /* record + named outputs live here */
	struct vb_record *rec;      /* NULL when not recording */
	int64_t t0;
	atomic_int cancelled;
	/* pipeline: one per box of every stage, in run order (a box named by
	 * two stages runs twice); workflow: one per step */
	struct vb_run_unit *units;
	size_t n_units;
	size_t *box_unit;           /* pipeline: each box's latest finished unit */
	struct vb_run_vmconf *vmc;  /* pipeline: per box; workflow: one */
	size_t n_vmc;
	uint8_t *final;             /* the run's output */
	size_t final_len;
	char *error;                /* the first failure, naming its box or step */
	enum vb_error_kind error_kind; /* as in struct vb_run_result */
	pthread_mutex_t mu;         /* guards unit states read across threads */
};

/* Fill in time and run id, then hand (ev) to the record and the caller. */
void vb_run_emit(struct vb_run *r, struct vb_event *ev);

/* True once the cancel descriptor fired (checked without blocking). */
int vb_run_cancelled(struct vb_run *r);

/* Unit bookkeeping, each emitting its event. */
void vb_run_unit_start(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb);
void vb_run_unit_booted(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb);
void vb_run_unit_ok(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb);
/* (kind) as in fail_kind; (fmt) says why, e.g. "exit code 3". */
void vb_run_unit_fail(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb,
		      enum vb_error_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
void vb_run_unit_skip(struct vb_run *r, struct vb_run_unit *u, const char *why);
/* A failed exec (vb_error) as a unit failure: not found → 127, refused →
 * 126, VM died / runtime → VoidBox failure, cancelled. */
void vb_run_unit_fail_err(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb,
			  const vb_error *err);

/* Run one program to its exit in (sb), streaming LOG_CHUNK events and
 * collecting stdout into (u->out).  (in) is its stdin (NULL = /dev/null).
 * Returns 0 when it exited (exit status in *code, or VB_RUN_TIMED_OUT when
 * its timeout killed it), -1 with (err) set otherwise (VB_E_CANCELLED when
 * the run was cancelled). */
#define VB_RUN_TIMED_OUT (-124)
int vb_run_exec(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb,
		const struct vb_exec_params *p, const uint8_t *in, size_t in_len, int *code,
		vb_error *err);

/* Copy bytes into a new NUL-terminated buffer (NULL on allocation failure). */
uint8_t *vb_run_memdup(const void *p, size_t n);

/* (p, n) as valid UTF-8, bad bytes replaced by U+FFFD: a new NUL-terminated
 * string with its length in (*out_len); NULL on allocation failure. */
char *vb_run_utf8(const uint8_t *p, size_t n, size_t *out_len);

/* Record the run's first failure (later calls keep the first one). */
void vb_run_set_error(struct vb_run *r, enum vb_error_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Add the run options' env and mounts (--env, --mount) to (vc). */
int vb_run_add_extras(struct vb_run *r, struct vb_run_vmconf *vc, vb_error *err);

/* Before anything runs: every VM's config (errors name the box). */
int vb_run_pipeline_prepare(struct vb_run *r, vb_error *err);
int vb_run_workflow_prepare(struct vb_run *r, vb_error *err);
/* Run every stage; failures of boxes and steps land in the units and
 * (r->error).  -1 only when the engine itself could not go on. */
int vb_run_pipeline(struct vb_run *r, vb_error *err);
int vb_run_workflow(struct vb_run *r, vb_error *err);

/* Build the public result from a finished run. */
struct vb_run_result *vb_run_make_result(struct vb_run *r, vb_error *err);

/* Run an already loaded spec (the CLI and the builder's way in). */
struct vb_run_result *vb_run_spec(const struct vb_spec *spec, const struct vb_run_options *opts,
				  vb_error *err);

#endif
