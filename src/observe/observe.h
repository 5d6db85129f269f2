/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Observability sinks for run events: the run record on disk and the live
 * progress display.  Both are vb_event_fn sinks.
 */
#ifndef VB_OBSERVE_H
#define VB_OBSERVE_H

#include <stdint.h>
#include <stdio.h>

#include "voidbox/error.h"
#include "voidbox/events.h"

/* A new, sortable, unique run id: "YYYYMMDD-HHMMSS-xxxxxx". */
char *vb_run_id_new(vb_error *err);

/* The run's directory: ${XDG_STATE_HOME:-~/.local/state}/voidbox/runs/<id>/
 * holding events.jsonl (one JSON object a line), meta.json (pid, name,
 * kind, start time), stages/<stage>/{stdout.log,stderr.log} and, once
 * finished, result.json.  (The run engine keeps its output files there
 * too: stages/<stage>/output, carries/.) */
struct vb_record;
struct vb_record *vb_record_open(const char *run_id, const char *name, const char *kind,
				 vb_error *err);
/* vb_event_fn: append the event to events.jsonl (flushed per line) and
 * LOG_CHUNK data to the stage's log.  Log chunks are coalesced: one
 * log.chunk line per stage stream per second or per 64 KiB, whichever
 * comes first, with the byte count and a 512-byte preview; a stage's
 * pending chunk line is written before its stage.completed/failed line. */
void vb_record_event(const struct vb_event *ev, void *record);
/* The record's size cap: events.jsonl and the logs together at most (max)
 * bytes (0 = 1 GiB).  Past it (or past 16 MiB of events.jsonl for
 * log.chunk lines) output is counted but not written, and one
 * record.truncated line says so. */
void vb_record_limit(struct vb_record *rec, uint64_t max);
/* Write the pending log.chunk lines that have waited a second: call it
 * now and then while stages run (cheap when there are none). */
void vb_record_tick(struct vb_record *rec);
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
/* (on) 1: draw nothing until called with 0 (another program has the
 * terminal: an interactive stage); events are still taken in.  At 0 the
 * display starts afresh below whatever is on the screen.  NULL: no-op. */
void vb_progress_hold(struct vb_progress *p, int on);
void vb_progress_free(struct vb_progress *p);

#endif
