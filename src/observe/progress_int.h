/* SPDX-License-Identifier: Apache-2.0 */
/* The live progress display's state, shared by its event side
 * (progress.c) and its renderer (progress_draw.c). */
#ifndef VB_OBSERVE_PROGRESS_INT_H
#define VB_OBSERVE_PROGRESS_INT_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "observe/observe_int.h"

#define VB_PROGRESS_ROWS_MAX 512
#define VB_PROGRESS_TICK_MS 150
#define VB_PROGRESS_TAIL_MAX 4096  /* stderr kept per stage for a failure */
#define VB_PROGRESS_TAIL_LINES 5   /* lines of it shown */
#define VB_PROGRESS_PART_MAX 1024  /* a followed line longer than this is cut in pieces */

enum vb_pstate { P_QUEUED, P_BOOTING, P_RUNNING, P_DONE, P_FAILED, P_SKIPPED };

struct vb_prow {
	char name[VB_STAGE_NAME_MAX + 1];
	enum vb_pstate st;
	unsigned group;           /* stages running side by side share a group */
	int64_t queued_ms, started_ms, ended_ms, duration_ms;
	char vm_id[48], accel[16], isolation[16];
	char boot[64];            /* "restored from ID in N ms", "booted cold in N ms" or "" */
	int restored;
	int exit_code;
	char why[200];            /* failure or skip reason, terminal-safe */
	char *tail;               /* the last VB_PROGRESS_TAIL_MAX bytes of stderr */
	size_t tail_len;
	char *part[2];            /* --follow: a started line of stdout, stderr */
	size_t part_len[2];
	int saw[2];               /* it wrote to stdout, stderr */
};

enum vb_prun { PR_NONE, PR_RUNNING, PR_SUCCEEDED, PR_FAILED, PR_CANCELLED };

struct vb_progress {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	FILE *out;
	int tty, color, utf8;

	struct vb_prow *rows;
	size_t n_rows, dropped;   /* dropped: stages past VB_PROGRESS_ROWS_MAX */
	unsigned next_group;

	enum vb_prun run;
	char run_id[32], name[64], kind[24], run_error[200];
	int64_t run_start, run_duration;

	int drawn;                /* lines of the last frame on screen */
	unsigned tick;            /* spinner phase */
	int finished;             /* final frame drawn: no more redraws */

	pthread_t ticker;
	int ticker_on, stopping;
	int follow;               /* print stage output as it comes */
	int lines_printed;        /* followed lines went out since the last frame */
	int held;                 /* another program has the terminal: draw nothing */
};

/* Redraw the whole frame in place (TTY mode); lock held. */
void vb_progress_draw(struct vb_progress *p, int64_t now_ms);
/* Print the plain line for (ev) (non-TTY mode), if it changes a state;
 * lock held, (ev) already folded into the state. */
void vb_progress_plain(struct vb_progress *p, const struct vb_event *ev, const struct vb_prow *row);

/* progress_logs.c, lock held: a LOG_CHUNK of (r) (keeps the stderr tail;
 * prints whole lines when following); the started lines of (r), ended
 * with a newline; after the final frame, what each failed stage left and
 * the `voidbox logs` command to see it all; freeing rows' buffers. */
void vb_progress_chunk(struct vb_progress *p, struct vb_prow *r, const struct vb_event *ev);
void vb_progress_flush(struct vb_progress *p, struct vb_prow *r);
/* --follow: an agent's text (agent.message), each line as "STAGE | line". */
void vb_progress_says(struct vb_progress *p, struct vb_prow *r, const char *text);
void vb_progress_failures(struct vb_progress *p);
void vb_progress_rows_free(struct vb_progress *p);

#endif
