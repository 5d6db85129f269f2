/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The run record: a directory per run with meta.json, events.jsonl (one
 * compact JSON object a line, each written by one write() under one lock,
 * so lines never interleave or tear), per-stage logs and outputs, and
 * result.json.  The sink side never fails loudly: a write it cannot make
 * is counted and skipped, and odd events are written as well as they can
 * be or ignored.
 */
#include "observe/observe.h"

#include <errno.h>
#include <fcntl.h>
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

struct vb_record {
	pthread_mutex_t lock;
	char id[32];
	char *dir;
	int dirfd;            /* the run directory */
	int stagesfd;         /* its stages/ */
	int evfd;             /* events.jsonl, O_APPEND */
	long long ev_bytes;   /* bytes written to events.jsonl */
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

static void append_log(struct vb_record *rec, const struct vb_event *ev, const uint8_t *data,
		       size_t len)
{
	const char *file = NULL;
	if (ev->stream && !strcmp(ev->stream, "stdout"))
		file = "stdout.log";
	else if (ev->stream && !strcmp(ev->stream, "stderr"))
		file = "stderr.log";
	if (!file || !len)
		return;
	int fd = open_stage_file(rec, ev->stage, file, 0);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		rec->errors++;
	} else if (st.st_size < VB_REC_LOG_MAX) {
		size_t room = (size_t)(VB_REC_LOG_MAX - st.st_size);
		if (vb_write_full(fd, data, len < room ? len : room) < 0)
			rec->errors++;
	}
	if (fd >= 0)
		close(fd);
}

static void write_output(struct vb_record *rec, const struct vb_event *ev)
{
	int fd = open_stage_file(rec, ev->stage, "output", 1);
	if (fd < 0 || (ev->output && ev->output_len && vb_write_full(fd, ev->output, ev->output_len) < 0))
		rec->errors++;
	if (fd >= 0)
		close(fd);
}

/* The log bytes a log.chunk line carries: text as "data", anything else as
 * "data_b64", cut to the per-line and per-file budgets.  NUL is valid
 * UTF-8 but most JSON readers (jansson among them) refuse "\u0000" by
 * default, so text with NULs goes as base64 too. */
static int add_chunk_data(struct vb_record *rec, json_t *o, const uint8_t *data, size_t len)
{
	size_t carry = len;
	if (rec->ev_bytes >= VB_REC_EVENTS_DATA_MAX)
		carry = 0;
	else if (carry > VB_REC_CHUNK_MAX)
		carry = VB_REC_CHUNK_MAX;
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

void vb_record_event(const struct vb_event *ev, void *record)
{
	struct vb_record *rec = record;
	if (!rec || !ev || !vb_event_name(ev->type))
		return;
	int64_t t = ev->time_ms > 0 ? ev->time_ms : vb_obs_wall_ms();
	json_t *o = vb_obs_event_json(ev, ev->run_id ? ev->run_id : rec->id, t);
	if (!o) {
		rec->errors++;
		return;
	}
	const uint8_t *data = ev->data ? ev->data : (const uint8_t *)"";
	size_t len = ev->data ? ev->len : 0;

	pthread_mutex_lock(&rec->lock);
	char *line = NULL;
	int ok = 0;
	if (ev->type == VB_EV_LOG_CHUNK) {
		append_log(rec, ev, data, len);
		if (add_chunk_data(rec, o, data, len))
			goto out;
	} else if (ev->type == VB_EV_STAGE_COMPLETED) {
		write_output(rec, ev);
	}
	line = json_dumps(o, JSON_COMPACT);
	size_t n = line ? strlen(line) : 0;
	char *grown = line ? realloc(line, n + 2) : NULL;
	if (!grown)
		goto out;
	line = grown;
	line[n++] = '\n';
	/* one write() of the whole line: with O_APPEND lines never interleave,
	 * and a regular file takes it whole unless the disk is full */
	if (vb_write_full(rec->evfd, line, n) == 0) {
		rec->ev_bytes += (long long)n;
		ok = 1;
	}
out:
	if (!ok)
		rec->errors++;
	pthread_mutex_unlock(&rec->lock);
	free(line);
	json_decref(o);
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
