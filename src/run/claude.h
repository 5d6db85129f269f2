/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading claude-code's `--output-format stream-json` (one JSON object per
 * line on its stdout) into VoidBox events, apart from the VM that runs it
 * so that it can be tested with any bytes (claude_parse.c).
 */
#ifndef VB_RUN_CLAUDE_H
#define VB_RUN_CLAUDE_H

#include <stddef.h>
#include <stdint.h>

#include "voidbox/error.h"
#include "voidbox/events.h"

/* The longest stdout line parsed; a longer one (a huge tool result) is
 * skipped, so that a guest cannot make the host buffer without end. */
#define VB_CLAUDE_LINE_MAX ((size_t)4 << 20)
/* Tool calls waiting for their result (older ones are reported without
 * one), and how much of each text an event keeps. */
#define VB_CLAUDE_PENDING_MAX 64
#define VB_CLAUDE_TEXT_MAX ((size_t)16 << 10)

struct vb_claude_parse;

/* (emit) gets every event with (stage) and (vm_id) set, on the calling
 * thread: LOG_CHUNK for the raw bytes, AGENT_MESSAGE, AGENT_TOOL,
 * AGENT_RESULT.  NULL on allocation failure. */
struct vb_claude_parse *vb_claude_parse_new(void (*emit)(struct vb_event *ev, void *opaque),
					    void *opaque, const char *stage, const char *vm_id);
/* Bytes of its stdout, in any pieces; -1 on allocation failure. */
int vb_claude_parse_stdout(struct vb_claude_parse *c, const uint8_t *d, size_t n);
/* Bytes of its stderr (logged; the tail is kept for the error message). */
void vb_claude_parse_stderr(struct vb_claude_parse *c, const uint8_t *d, size_t n);
/* It exited: a last line without a newline, and tool calls that never got
 * a result (AGENT_TOOL without one). */
void vb_claude_parse_end(struct vb_claude_parse *c);
/* What its last `result` line says, given its exit status (code): 0 with
 * the result text (valid UTF-8, never NULL) in *final; -1 with a stage
 * failure in (err), kind VB_E_OK and a message safe for a terminal. */
int vb_claude_parse_decide(struct vb_claude_parse *c, int code, char **final, vb_error *err);
void vb_claude_parse_free(struct vb_claude_parse *c);

#endif
