/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Observability sinks for run events: the run record on disk and the live
 * progress display.  Both are vb_event_fn sinks.
 */
#ifndef VB_OBSERVE_H
#define VB_OBSERVE_H

#include <stdio.h>

#include "voidbox/error.h"
#include "voidbox/events.h"

/* A new, sortable, unique run id: "YYYYMMDD-HHMMSS-xxxxxx". */
char *vb_run_id_new(vb_error *err);

/* The run's directory: ${XDG_STATE_HOME:-~/.local/state}/voidbox/runs/<id>/
 * holding events.jsonl (one JSON object a line), meta.json (pid, name,
 * kind, start time), stages/<stage>/{stdout.log,stderr.log,output} and,
 * once finished, result.json. */
struct vb_record;
struct vb_record *vb_record_open(const char *run_id, const char *name, const char *kind,
				 vb_error *err);
/* vb_event_fn: append the event to events.jsonl (flushed per line) and
 * LOG_CHUNK data to the stage's log, STAGE_COMPLETED output to its file. */
void vb_record_event(const struct vb_event *ev, void *record);
int vb_record_write_result(struct vb_record *rec, const char *json, vb_error *err);
const char *vb_record_dir(const struct vb_record *rec);
void vb_record_close(struct vb_record *rec);

/* Live progress: on a terminal one line per stage, redrawn in place with its
 * state and elapsed time (fan-out branches side by side); otherwise plain
 * lines as states change.  (color) off when NO_COLOR is set. */
struct vb_progress;
struct vb_progress *vb_progress_new(FILE *out, int is_tty, int color);
void vb_progress_event(const struct vb_event *ev, void *progress);
/* Show every line stages print as it comes ("STAGE | line"), a line cut
 * short ended with a newline before the stage's next state line.  Off by
 * default: the run's output is the caller's to print.  Whether on or off,
 * a failed stage's last stderr lines and the `voidbox logs` command that
 * shows it all are printed after the run's last line. */
void vb_progress_follow(struct vb_progress *p, int on);
void vb_progress_free(struct vb_progress *p);

#endif
