/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals shared by the files of src/observe/: text helpers (UTF-8,
 * base64, RFC 3339 times, terminal-safe copies) and the limits every
 * sink and reader keeps to.
 */
#ifndef VB_OBSERVE_INT_H
#define VB_OBSERVE_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "voidbox/events.h"

/* Stage names come from a validated spec; run ids from vb_run_id_new. */
#define VB_STAGE_NAME_MAX 64
#define VB_RUN_ID_LEN 22              /* "YYYYMMDD-HHMMSS-xxxxxx" */
#define VB_RUNS_KEEP 200              /* run directories kept by pruning */

/* Bounds of the run record. */
#define VB_REC_CHUNK_MAX (64 * 1024)          /* log bytes carried by one log.chunk line */
#define VB_REC_EVENTS_DATA_MAX (64L << 20)    /* events.jsonl size after which chunks carry no data */
#define VB_REC_LOG_MAX (256L << 20)           /* bytes kept per stages/<s>/std{out,err}.log */
#define VB_REC_STR_MAX 4096                   /* bytes kept of any other string field */
#define VB_REC_LINE_MAX (4L << 20)            /* longest events.jsonl line a reader accepts */

/* Wall clock in ms since the epoch (events carry wall-clock times). */
int64_t vb_obs_wall_ms(void);

/* "2024-05-01T12:03:04.123Z" (with_ms) or "2024-05-01T12:03:04Z" into
 * (buf) of at least 32 bytes. */
void vb_obs_rfc3339(int64_t ms, int with_ms, char *buf, size_t size);

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
int vb_obs_utf8_valid(const uint8_t *s, size_t len);
/* The longest prefix of (s) no longer than (len) that does not end inside a
 * multi-byte sequence: cutting valid UTF-8 there keeps it valid. */
size_t vb_obs_utf8_cut(const uint8_t *s, size_t len);

/* Base64 (RFC 4648, padded) of (len) bytes: a malloc'd string or NULL. */
char *vb_obs_base64(const uint8_t *s, size_t len);

/* A JSON string of (s), at most (max) bytes of it, invalid UTF-8 replaced
 * by U+FFFD; json_null() for NULL.  Never NULL unless out of memory. */
json_t *vb_obs_jstr(const char *s, size_t max);

/* Copy (s) for a terminal: control characters, DEL and invalid UTF-8
 * become '?', newlines and tabs a space; at most (size - 1) bytes, cut on
 * a character boundary.  (s) may be NULL (empty result). */
void vb_obs_term_copy(char *out, size_t size, const char *s);

/* 1 if (name) is a usable stage or run directory name: [A-Za-z0-9._-],
 * 1..64 bytes, no "..", not ".". */
int vb_obs_name_ok(const char *name);
/* 1 if (id) has the exact shape of vb_run_id_new's ids. */
int vb_obs_run_id_ok(const char *id);

/* "3.2s", "1m05s", "2h03m" into (buf). */
void vb_obs_fmt_duration(int64_t ms, char *buf, size_t size);
/* "512 B", "4.0 KiB", "12.3 MiB", "1.5 GiB" into (buf). */
void vb_obs_fmt_bytes(uint64_t bytes, char *buf, size_t size);

/* The event as the JSON object of its events.jsonl line (without the
 * log data of a LOG_CHUNK, which the record adds), or NULL on OOM. */
json_t *vb_obs_event_json(const struct vb_event *ev, const char *run_id, int64_t time_ms);

/* The start time of process (pid) in clock ticks since boot (field 22 of
 * /proc/PID/stat), or -1 if unknown. */
long long vb_obs_pid_start(long pid);
/* The kernel's boot id into (buf) (37 bytes), "" if unknown. */
void vb_obs_boot_id(char *buf, size_t size);

/* Remove the oldest run directories of (runs_dir) beyond the newest
 * (keep), never (keep_id), a running run, or one still being created. */
void vb_obs_prune(const char *runs_dir, const char *keep_id, size_t keep);

#endif
