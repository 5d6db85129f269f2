/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The run record: a directory per run with meta.json, events.jsonl (one
 * compact JSON object a line, each written by one write() under one lock,
 * so lines never interleave or tear), per-stage logs, and result.json.
 * Whatever a guest writes, the record stays bounded: log chunks are pooled
 * into a line a second per stream, and the whole record has a size cap.  The sink side never fails loudly: a write it cannot make
 * is counted and skipped, and odd events are written as well as they can
 * be or ignored.
 */
#include "observe/observe.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "observe/observe_int.h"
#include "observe/runs.h"
#include "util/util.h"
#include "voidbox/voidbox.h"

/* One stage's stdout or stderr: its log file, kept open, and the bytes
 * not yet said by a log.chunk line. */
struct stream {
	char stage[VB_STAGE_NAME_MAX + 1];
	int is_err;
	int fd;               /* its .log, -1 when it cannot have one */
	uint64_t total;       /* bytes the stage wrote (all counted) */
	uint64_t logged;      /* bytes written to the log */
	uint64_t pending;     /* bytes since the last log.chunk line */
	uint64_t pending_at;  /* their offset in the stream */
	uint8_t preview[VB_REC_CHUNK_MAX];
	size_t preview_len;
	int64_t last_line_ms; /* when its last log.chunk line was written */
	int64_t last_chunk_ms; /* when its latest pending bytes came */
	char *vm_id, *accel, *isolation;
	int cut;              /* record.truncated said for its log */
};

struct vb_record {
	pthread_mutex_t lock;
	char id[32];
	char *dir;
	int dirfd;            /* the run directory */
	int stagesfd;         /* its stages/ */
	int evfd;             /* events.jsonl, O_APPEND */
	long long ev_bytes;   /* bytes written to events.jsonl */
	long long bytes;      /* events.jsonl and logs */
	long long max;        /* cap of (bytes) */
	int cut_events;       /* record.truncated said for log.chunk lines */
	int cut_total;        /* ... for the whole record */
	struct stream *streams;
	size_t n_streams;
	unsigned long errors; /* writes that failed (disk full, ...) */
};

/* Write (name) in (dirfd) atomically: a temporary file, fsync, rename. */
static int write_atomic(int dirfd, const char *name, const char *data, size_t len, vb_error *err)
{
	char tmp[128];
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return vb_error_errno(err, errno, "cannot create %s", tmp);
	int saved = 0;
	if (vb_write_full(fd, data, len) < 0 || fsync(fd) < 0)
		saved = errno ? errno : EIO;
	if (close(fd) < 0 && !saved)
		saved = errno;
	if (!saved && renameat(dirfd, tmp, dirfd, name) < 0)
		saved = errno;
	if (saved) {
		unlinkat(dirfd, tmp, 0);
		return vb_error_errno(err, saved, "cannot write %s", name);
	}
	return 0;
}

static char *meta_json(const char *id, const char *name, const char *kind)
{
	char started[40], host[256] = "", boot[64];
	int64_t now = vb_obs_wall_ms();
	vb_obs_rfc3339(now, 0, started, sizeof(started));
	if (gethostname(host, sizeof(host) - 1) < 0)
		host[0] = '\0';
	vb_obs_boot_id(boot, sizeof(boot));
	long long pid_start = vb_obs_pid_start((long)getpid());

	json_t *o = json_object();
	if (!o)
		return NULL;
	int rc = 0;
	rc |= json_object_set_new(o, "run_id", json_string(id));
	rc |= json_object_set_new(o, "name", vb_obs_jstr(name, VB_REC_STR_MAX));
	rc |= json_object_set_new(o, "kind", vb_obs_jstr(kind, VB_REC_STR_MAX));
	rc |= json_object_set_new(o, "pid", json_integer(getpid()));
	if (pid_start >= 0)
		rc |= json_object_set_new(o, "pid_start", json_integer(pid_start));
	rc |= json_object_set_new(o, "started", json_string(started));
	rc |= json_object_set_new(o, "started_ms", json_integer(now));
	rc |= json_object_set_new(o, "host", vb_obs_jstr(host, sizeof(host)));
	if (boot[0])
		rc |= json_object_set_new(o, "boot_id", vb_obs_jstr(boot, sizeof(boot)));
	rc |= json_object_set_new(o, "version", json_string(VOIDBOX_VERSION));
	char *text = rc ? NULL : json_dumps(o, JSON_INDENT(2));
	json_decref(o);
	return text;
}

struct vb_record *vb_record_open(const char *run_id, const char *name, const char *kind,
				 vb_error *err)
{
	if (!vb_obs_run_id_ok(run_id)) {
		vb_error_set(err, VB_E_USAGE, "invalid run id '%.80s' (expected YYYYMMDD-HHMMSS-xxxxxx)",
			     run_id ? run_id : "");
		return NULL;
	}
	_cleanup_free_ char *runs = vb_runs_dir(err);
	if (!runs || vb_mkdir_p(runs, 0700, err) < 0) {
		vb_error_prefix(err, "run record");
		return NULL;
	}
	struct vb_record *rec = calloc(1, sizeof(*rec));
	if (!rec || !(rec->dir = vb_strfmt("%s/%s", runs, run_id))) {
		free(rec);
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	snprintf(rec->id, sizeof(rec->id), "%s", run_id);
	rec->dirfd = rec->stagesfd = rec->evfd = -1;
	rec->max = VB_REC_TOTAL_MAX;
	pthread_mutex_init(&rec->lock, NULL);
	if (mkdir(rec->dir, 0700) < 0) {
		vb_error_errno(err, errno, "cannot create run directory %s", rec->dir);
		free(rec->dir);
		pthread_mutex_destroy(&rec->lock);
		free(rec);
		return NULL;
	}
	_cleanup_free_ char *meta = NULL;
	rec->dirfd = open(rec->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rec->dirfd < 0 || mkdirat(rec->dirfd, "stages", 0700) < 0) {
		vb_error_errno(err, errno, "cannot set up run directory %s", rec->dir);
		goto fail;
	}
	rec->stagesfd = openat(rec->dirfd, "stages", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rec->stagesfd < 0) {
		vb_error_errno(err, errno, "cannot open %s/stages", rec->dir);
		goto fail;
	}
	if (!(meta = meta_json(run_id, name, kind))) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		goto fail;
	}
	if (write_atomic(rec->dirfd, "meta.json", meta, strlen(meta), err) < 0)
		goto fail;
	rec->evfd = openat(rec->dirfd, "events.jsonl",
			   O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (rec->evfd < 0) {
		vb_error_errno(err, errno, "cannot create %s/events.jsonl", rec->dir);
		goto fail;
	}
	vb_obs_prune(runs, run_id, VB_RUNS_KEEP);
	return rec;
fail:
	vb_error_prefix(err, "run record");
	vb_rm_rf(rec->dir);
	vb_record_close(rec);
	return NULL;
}

const char *vb_record_dir(const struct vb_record *rec)
{
	return rec ? rec->dir : NULL;
}

void vb_record_close(struct vb_record *rec)
{
	if (!rec)
		return;
	if (rec->evfd >= 0)
		close(rec->evfd);
	for (size_t i = 0; i < rec->n_streams; i++) {
		struct stream *st = &rec->streams[i];
		if (st->fd >= 0)
			close(st->fd);
		free(st->vm_id);
		free(st->accel);
		free(st->isolation);
	}
	free(rec->streams);
	if (rec->stagesfd >= 0)
		close(rec->stagesfd);
	if (rec->dirfd >= 0)
		close(rec->dirfd);
	pthread_mutex_destroy(&rec->lock);
	free(rec->dir);
	free(rec);
}

/* Open stages/<stage>/<file> for writing (append or truncate); -1 for a
 * stage name that could leave the directory. */
static int open_stage_file(struct vb_record *rec, const char *stage, const char *file, int trunc)
{
	if (!vb_obs_name_ok(stage))
		return -1;
	if (mkdirat(rec->stagesfd, stage, 0700) < 0 && errno != EEXIST)
		return -1;
	int dfd = openat(rec->stagesfd, stage, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (trunc ? O_TRUNC : O_APPEND);
	int fd = openat(dfd, file, flags, 0600);
	close(dfd);
	return fd;
}

void vb_record_limit(struct vb_record *rec, uint64_t max)
{
	if (!rec)
		return;
	pthread_mutex_lock(&rec->lock);
	rec->max = max ? (max > (uint64_t)LLONG_MAX ? LLONG_MAX : (long long)max) : VB_REC_TOTAL_MAX;
	pthread_mutex_unlock(&rec->lock);
}

/* Write one line (no newline in it) to events.jsonl: one write(), so with
 * O_APPEND lines never interleave, and a regular file takes it whole
 * unless the disk is full.  Takes ownership of (line). */
static int put_line(struct vb_record *rec, char *line)
{
	size_t n = line ? strlen(line) : 0;
	char *grown = line ? realloc(line, n + 2) : NULL;
	if (!grown) {
		free(line);
		rec->errors++;
		return -1;
	}
	grown[n++] = '\n';
	int rc = vb_write_full(rec->evfd, grown, n);
	free(grown);
	if (rc < 0) {
		rec->errors++;
		return -1;
	}
	rec->ev_bytes += (long long)n;
	rec->bytes += (long long)n;
	return 0;
}

static int put_json(struct vb_record *rec, json_t *o)
{
	return put_line(rec, json_dumps(o, JSON_COMPACT));
}

/* The record.truncated line: said once per reason (and per log). */
static void truncated(struct vb_record *rec, int64_t t, const struct stream *st, const char *why,
		      long long limit)
{
	char when[40];
	vb_obs_rfc3339(t, 1, when, sizeof(when));
	json_t *o = json_object();
	if (!o)
		return;
	int rc = 0;
	rc |= json_object_set_new(o, "event", json_string("record.truncated"));
	rc |= json_object_set_new(o, "time", json_string(when));
	rc |= json_object_set_new(o, "time_ms", json_integer(t));
	rc |= json_object_set_new(o, "run_id", json_string(rec->id));
	if (st) {
		rc |= json_object_set_new(o, "stage", vb_obs_jstr(st->stage, VB_REC_STR_MAX));
		rc |= json_object_set_new(o, "stream", json_string(st->is_err ? "stderr" : "stdout"));
	}
	rc |= json_object_set_new(o, "limit", json_integer(limit));
	rc |= json_object_set_new(o, "error", json_string(why));
	if (!rc)
		put_json(rec, o);
	json_decref(o);
}

static void flush_stream(struct vb_record *rec, struct stream *st, int64_t now);

/* Where the stage runs, as its log.chunk lines say. */
static void set_facts(struct stream *st, const struct vb_event *ev)
{
	free(st->vm_id);
	free(st->accel);
	free(st->isolation);
	st->vm_id = ev->vm_id ? strdup(ev->vm_id) : NULL;
	st->accel = ev->accel ? strdup(ev->accel) : NULL;
	st->isolation = ev->isolation ? strdup(ev->isolation) : NULL;
}

static struct stream *find_stream(struct vb_record *rec, const struct vb_event *ev)
{
	int is_err;
	if (ev->stream && !strcmp(ev->stream, "stdout"))
		is_err = 0;
	else if (ev->stream && !strcmp(ev->stream, "stderr"))
		is_err = 1;
	else
		return NULL;
	const char *stage = ev->stage ? ev->stage : "";
	if (strlen(stage) > VB_STAGE_NAME_MAX)
		return NULL;
	for (size_t i = 0; i < rec->n_streams; i++)
		if (rec->streams[i].is_err == is_err && !strcmp(rec->streams[i].stage, stage)) {
			/* a box in two stages runs in two VMs */
			struct stream *st = &rec->streams[i];
			if (ev->vm_id && (!st->vm_id || strcmp(st->vm_id, ev->vm_id))) {
				flush_stream(rec, st, 0);
				set_facts(st, ev);
			}
			return st;
		}
	struct stream *grown = realloc(rec->streams, (rec->n_streams + 1) * sizeof(*grown));
	if (!grown)
		return NULL;
	rec->streams = grown;
	struct stream *st = &rec->streams[rec->n_streams++];
	memset(st, 0, sizeof(*st));
	snprintf(st->stage, sizeof(st->stage), "%s", stage);
	st->is_err = is_err;
	st->fd = open_stage_file(rec, stage, is_err ? "stderr.log" : "stdout.log", 0);
	set_facts(st, ev);
	return st;
}

/* The stream's log gets what fits under its caps; the rest is counted. */
static void append_log(struct vb_record *rec, struct stream *st, int64_t t, const uint8_t *data,
		       size_t len)
{
	st->total += len;
	if (st->fd < 0 || !len)
		return;
	size_t n = len;
	if (st->logged + n > (uint64_t)VB_REC_LOG_MAX) {
		n = st->logged >= (uint64_t)VB_REC_LOG_MAX ? 0 : (size_t)(VB_REC_LOG_MAX - st->logged);
		if (!st->cut) {
			st->cut = 1;
			truncated(rec, t, st,
				  "the stage's log reached 256 MiB: the rest is counted, not kept",
				  VB_REC_LOG_MAX);
		}
	}
	if (rec->bytes + (long long)n > rec->max) {
		n = rec->bytes >= rec->max ? 0 : (size_t)(rec->max - rec->bytes);
		if (!rec->cut_total) {
			rec->cut_total = 1;
			truncated(rec, t, NULL,
				  "the run record reached its size cap: stage output past it is "
				  "counted, not kept",
				  rec->max);
		}
	}
	if (n && vb_write_full(st->fd, data, n) < 0) {
		rec->errors++;
		return;
	}
	st->logged += n;
	rec->bytes += (long long)n;
}

/* The preview a log.chunk line carries: text as "data", anything else as
 * "data_b64".  NUL is valid UTF-8 but most JSON readers (jansson among
 * them) refuse "\u0000" by default, so text with NULs goes as base64. */
static int add_chunk_data(json_t *o, const uint8_t *data, size_t carry, uint64_t len)
{
	int rc = 0;
	size_t text = carry < len ? vb_obs_utf8_cut(data, carry) : carry;
	if (!memchr(data, '\0', text) && vb_obs_utf8_valid(data, text)) {
		rc |= json_object_set_new(o, "data", json_stringn((const char *)data, text));
		carry = text;
	} else {
		char *b64 = vb_obs_base64(data, carry);
		rc |= json_object_set_new(o, "data_b64", b64 ? json_string(b64) : NULL);
		free(b64);
	}
	if (carry < len)
		rc |= json_object_set_new(o, "truncated", json_true());
	return rc;
}

/* Say the stream's pending bytes in one log.chunk line, stamped with the
 * time of the latest of them. */
static void flush_stream(struct vb_record *rec, struct stream *st, int64_t now)
{
	if (!st->pending)
		return;
	int64_t t = st->last_chunk_ms ? st->last_chunk_ms : now;
	uint64_t len = st->pending;
	st->pending = 0;
	st->last_line_ms = t;
	size_t plen = st->preview_len;
	st->preview_len = 0;
	if (rec->ev_bytes >= VB_REC_EVENTS_MAX - (64 << 10) || rec->bytes >= rec->max) {
		if (!rec->cut_events && rec->bytes < rec->max) {
			rec->cut_events = 1;
			truncated(rec, t, NULL,
				  "events.jsonl reached 16 MiB: no more log.chunk lines (the stage "
				  "logs go on)",
				  VB_REC_EVENTS_MAX);
		}
		return;
	}
	struct vb_event ev = {
		.type = VB_EV_LOG_CHUNK, .stage = st->stage, .stream = st->is_err ? "stderr" : "stdout",
		.vm_id = st->vm_id, .accel = st->accel, .isolation = st->isolation,
		.data = st->preview, .len = plen,
	};
	json_t *o = vb_obs_event_json(&ev, rec->id, t);
	if (!o || json_object_set_new(o, "len", json_integer((json_int_t)len)) ||
	    json_object_set_new(o, "offset", json_integer((json_int_t)st->pending_at)) ||
	    add_chunk_data(o, st->preview, plen, len)) {
		rec->errors++;
	} else {
		put_json(rec, o);
	}
	json_decref(o);
}

static void chunk(struct vb_record *rec, const struct vb_event *ev, int64_t t)
{
	struct stream *st = find_stream(rec, ev);
	const uint8_t *data = ev->data ? ev->data : (const uint8_t *)"";
	size_t len = ev->data ? ev->len : 0;
	if (!st) { /* no stream to pool it in: a line of its own, as it can */
		if (rec->ev_bytes >= VB_REC_EVENTS_MAX - (64 << 10))
			return;
		json_t *o = vb_obs_event_json(ev, rec->id, t);
		size_t carry = len < VB_REC_CHUNK_MAX ? len : VB_REC_CHUNK_MAX;
		if (o && !add_chunk_data(o, data, carry, len))
			put_json(rec, o);
		json_decref(o);
		return;
	}
	if (!st->pending)
		st->pending_at = st->total;
	append_log(rec, st, t, data, len);
	size_t room = sizeof(st->preview) - st->preview_len;
	size_t take = len < room ? len : room;
	memcpy(st->preview + st->preview_len, data, take);
	st->preview_len += take;
	st->pending += len;
	st->last_chunk_ms = t;
	if (st->pending >= VB_REC_CHUNK_BYTES || t - st->last_line_ms >= VB_REC_CHUNK_MS)
		flush_stream(rec, st, t);
}

/* Every pending line of (stage), or of all stages when NULL. */
static void flush_stage(struct vb_record *rec, const char *stage, int64_t t)
{
	for (size_t i = 0; i < rec->n_streams; i++)
		if (!stage || !strcmp(rec->streams[i].stage, stage))
			flush_stream(rec, &rec->streams[i], t);
}

void vb_record_tick(struct vb_record *rec)
{
	if (!rec)
		return;
	int64_t t = vb_obs_wall_ms();
	pthread_mutex_lock(&rec->lock);
	for (size_t i = 0; i < rec->n_streams; i++) {
		struct stream *st = &rec->streams[i];
		if (st->pending && t - st->last_line_ms >= VB_REC_CHUNK_MS)
			flush_stream(rec, st, t);
	}
	pthread_mutex_unlock(&rec->lock);
}

/* What the stage wrote, counted whether or not the logs kept it. */
static int add_counts(struct vb_record *rec, json_t *o, const char *stage)
{
	int rc = 0;
	for (size_t i = 0; i < rec->n_streams; i++) {
		const struct stream *st = &rec->streams[i];
		if (stage && !strcmp(st->stage, stage))
			rc |= json_object_set_new(o, st->is_err ? "stderr_bytes" : "stdout_bytes",
						  json_integer((json_int_t)st->total));
	}
	return rc;
}

void vb_record_event(const struct vb_event *ev, void *record)
{
	struct vb_record *rec = record;
	if (!rec || !ev || !vb_event_name(ev->type))
		return;
	int64_t t = ev->time_ms > 0 ? ev->time_ms : vb_obs_wall_ms();
	pthread_mutex_lock(&rec->lock);
	if (ev->type == VB_EV_LOG_CHUNK) {
		chunk(rec, ev, t);
		pthread_mutex_unlock(&rec->lock);
		return;
	}
	/* a box in two stages: each run counts its own bytes */
	if (ev->type == VB_EV_STAGE_STARTED)
		for (size_t i = 0; i < rec->n_streams; i++)
			if (!strcmp(rec->streams[i].stage, ev->stage ? ev->stage : "")) {
				flush_stream(rec, &rec->streams[i], t);
				rec->streams[i].total = 0;
			}
	/* what a stage said comes before how it ended */
	int ends_stage = ev->type == VB_EV_STAGE_COMPLETED || ev->type == VB_EV_STAGE_FAILED;
	if (ends_stage)
		flush_stage(rec, ev->stage ? ev->stage : "", t);
	else if (ev->type == VB_EV_RUN_FINISHED || ev->type == VB_EV_RUN_CANCELLED)
		flush_stage(rec, NULL, t);
	json_t *o = vb_obs_event_json(ev, ev->run_id ? ev->run_id : rec->id, t);
	if (!o || (ends_stage && add_counts(rec, o, ev->stage ? ev->stage : "")))
		rec->errors++;
	else
		put_json(rec, o);
	json_decref(o);
	pthread_mutex_unlock(&rec->lock);
}

int vb_record_write_result(struct vb_record *rec, const char *json, vb_error *err)
{
	if (!rec || !json)
		return vb_error_set(err, VB_E_RUNTIME, "run record: no result to write");
	size_t n = strlen(json);
	_cleanup_free_ char *text = malloc(n + 2);
	if (!text)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	memcpy(text, json, n);
	if (!n || json[n - 1] != '\n')
		text[n++] = '\n';
	pthread_mutex_lock(&rec->lock);
	int rc = write_atomic(rec->dirfd, "result.json", text, n, err);
	pthread_mutex_unlock(&rec->lock);
	if (rc < 0)
		vb_error_prefix(err, "run record %s", rec->id);
	return rc;
}
