/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bounded captures of what a VM prints: its serial console and the VMM's own
 * stderr.  Both are the guest's to fill (root in the guest writes to
 * /dev/ttyS0 as fast as it likes; a misbehaving guest makes QEMU complain),
 * so neither goes to a file that grows: a thread drains both pipes and
 * keeps the first (head) and the last (tail) bytes of each, counting what
 * fell between.  Memory per VM is bounded by the four sizes.
 */
#ifndef VB_VMM_LOGS_H
#define VB_VMM_LOGS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "voidbox/error.h"

enum { VB_LOG_CONSOLE = 0, VB_LOG_VMM = 1, VB_LOG_N = 2 };

struct vb_log_capture {
	int rfd;
	uint8_t *head, *tail;   /* tail is a ring of tail_max bytes */
	size_t head_len, head_max;
	size_t tail_pos, tail_len, tail_max;
	uint64_t total;
	int eof;
};

struct vb_vmm_logs {
	struct vb_log_capture cap[VB_LOG_N];
	int wfd[VB_LOG_N]; /* the child's ends, until vb_vmm_logs_run() */
	int stop_efd;
	pthread_t thread;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cond; /* a capture reached EOF */
};

/* Pipes for a child's console and stderr (write ends in logs->wfd[]). */
int vb_vmm_logs_init(struct vb_vmm_logs *logs, vb_error *err);
/* After fork: close the write ends here and start draining. */
int vb_vmm_logs_run(struct vb_vmm_logs *logs, vb_error *err);
/* Bytes captured so far (total, including any dropped). */
uint64_t vb_vmm_logs_total(struct vb_vmm_logs *logs, int which);
/* What was captured: head, a line saying how much was dropped (if any),
 * tail; NUL-terminated, caller frees.  Waits up to (wait_ms) for the
 * stream's end first (once the child exited, so nothing is missed).  NULL
 * on allocation failure. */
char *vb_vmm_logs_text(struct vb_vmm_logs *logs, int which, int wait_ms, size_t *len);
/* Stop draining (what the child writes after this is not read) and free. */
void vb_vmm_logs_free(struct vb_vmm_logs *logs);

#endif
