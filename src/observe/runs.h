/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading run records back: listing runs, resolving an id prefix or
 * suffix, a run's state (for `voidbox ps`), and an incremental reader of
 * events.jsonl (for `voidbox logs`, also while the run is writing it).
 */
#ifndef VB_OBSERVE_RUNS_H
#define VB_OBSERVE_RUNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "voidbox/error.h"

/* ${XDG_STATE_HOME:-~/.local/state}/voidbox/runs (not created). */
char *vb_runs_dir(vb_error *err);

/* The run ids in (runs_dir) (names shaped like vb_run_id_new's), oldest
 * first, as a malloc'd array of malloc'd strings; a missing directory is
 * an empty list.  At most (max) ids are kept, the newest ones (0 = all). */
int vb_runs_list(const char *runs_dir, size_t max, char ***ids, size_t *n, vb_error *err);
void vb_runs_list_free(char **ids, size_t n);

/* The id of the one run whose id is (query), starts with it or ends with it
 * (its random suffix: "5fcaaa", or a tail of it).  Errors (VB_E_USAGE):
 * "no run 'X' (see voidbox ps)", or an ambiguous query naming the
 * candidates. */
char *vb_run_resolve(const char *runs_dir, const char *query, vb_error *err);
/* The id of the newest run (by start time); VB_E_USAGE if there is none. */
char *vb_run_last(const char *runs_dir, vb_error *err);

enum vb_run_state {
	VB_RUN_RUNNING,
	VB_RUN_SUCCEEDED,
	VB_RUN_FAILED,
	VB_RUN_CANCELLED,
	VB_RUN_CRASHED, /* no final event and its process is gone */
};
/* "running", "succeeded", "failed", "cancelled", "crashed". */
const char *vb_run_state_name(enum vb_run_state state);

struct vb_run_info {
	char id[32];
	char *dir;                /* the run's directory */
	char *name, *kind;        /* from meta.json; NULL if unknown */
	char *error;              /* the final event's error, if any */
	long pid;                 /* 0 if unknown */
	long long pid_start;      /* its start time (clock ticks since boot), -1 if unknown */
	int other_host;           /* recorded on another host (a shared home): pid is not ours */
	int64_t started_ms;       /* wall clock; from the id if meta.json is unreadable */
	int64_t last_ms;          /* time of the final (or last seen) event, 0 if none */
	int64_t duration_ms;      /* final event's, else up to now (running) or last event */
	enum vb_run_state state;
};

/* Load what `ps` shows about run (id), reading meta.json and a bounded
 * tail of events.jsonl only (never the whole file).  Unreadable or odd files give
 * unknowns, not errors; fails only on allocation failure or a bad id.
 * Clear (info) with vb_run_info_clear even when this fails. */
int vb_run_info_load(const char *runs_dir, const char *id, struct vb_run_info *info, vb_error *err);
void vb_run_info_clear(struct vb_run_info *info);

/* 1 if the process recorded in (run_dir)/meta.json may still be running
 * (pid alive, same start time and boot; another host's run counts as
 * alive since it cannot be checked). */
int vb_run_pid_alive(const char *run_dir);

/* ---- deleting records (prune.c) ---------------------------------------- */

/* ${XDG_STATE_HOME:-~/.local/state}/voidbox/vm-logs: console logs of VMs
 * that died, kept by the sandbox (not created). */
char *vb_vm_logs_dir(vb_error *err);

/* Delete run (id)'s directory, whatever its state (the caller decides);
 * (*bytes) (may be NULL) gets the disk space it used. */
int vb_run_remove(const char *runs_dir, const char *id, uint64_t *bytes, vb_error *err);

/* One thing vb_prune removed (or would remove, dry run): what is "run",
 * "vm-log", or "error" (it could not be removed: detail says why). */
struct vb_prune_item {
	const char *what, *name;
	const char *detail; /* a run's state, an error; NULL for a log */
	uint64_t bytes;     /* disk space freed */
};
struct vb_prune_opts {
	int64_t older_than_ms; /* only what ended at least this long ago; 0 = any age */
	int dry_run;           /* report, remove nothing */
	void (*fn)(const struct vb_prune_item *item, void *arg); /* may be NULL */
	void *arg;
};
struct vb_prune_total {
	size_t runs, vm_logs, failed;
	uint64_t bytes;
};
/* Delete finished run records (never a running one, nor one being created)
 * whose last event is at least (older_than_ms) old, and kept VM console
 * logs (vm-logs/vm-*.log) as old by mtime.  Reads each run's meta.json and
 * the tail of its events only.  Fails only when a directory cannot be
 * listed; a single item that cannot be removed is reported and counted. */
int vb_prune(const struct vb_prune_opts *o, struct vb_prune_total *total, vb_error *err);

/* An incremental line reader of a JSONL file that may still be growing:
 * only complete lines are returned, a partial last line waits for more. */
struct vb_jsonl;
struct vb_jsonl *vb_jsonl_open(const char *path, vb_error *err);
enum {
	VB_JSONL_NONE = 0, /* no complete line (yet) */
	VB_JSONL_LINE = 1, /* (*line, *len): a line without its '\n', NUL-terminated */
	VB_JSONL_LONG = 2, /* a line over VB_REC_LINE_MAX was skipped */
};
/* Next line or VB_JSONL_NONE at the current end of file; -1 on a read
 * error.  (*line) is valid until the next call. */
int vb_jsonl_next(struct vb_jsonl *r, const char **line, size_t *len, vb_error *err);
void vb_jsonl_free(struct vb_jsonl *r);

#endif
