/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Observability tests: event names, run ids, the run record on disk (every
 * field of every event type, parsed back), concurrency, atomic results,
 * pruning and reading records back (the progress display: test_progress.c).
 * Each record test gets its own ${XDG_STATE_HOME} under a mkdtemp directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "observe/observe.h"
#include "observe/observe_int.h"
#include "observe/runs.h"
#include "util/util.h"
#include "voidbox/voidbox.h"

struct fixture {
	char base[64];   /* the mkdtemp directory: XDG_STATE_HOME */
	char runs[128];  /* its voidbox/runs */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->base, sizeof(f->base), "/tmp/vb-observe-XXXXXX");
	if (!mkdtemp(f->base)) {
		free(f);
		return -1;
	}
	snprintf(f->runs, sizeof(f->runs), "%s/voidbox/runs", f->base);
	setenv("XDG_STATE_HOME", f->base, 1);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	vb_rm_rf(f->base);
	free(f);
	return 0;
}

static char *slurp(const char *path, size_t *len)
{
	return vb_read_file(path, 256u << 20, len, NULL);
}

static char *slurp_at(const char *dir, const char *rel, size_t *len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	return slurp(path, len);
}

/* Every line of events.jsonl, parsed; fails the test on a bad line. */
static json_t *read_events(const char *dir)
{
	size_t len;
	char *text = slurp_at(dir, "events.jsonl", &len);
	assert_non_null(text);
	json_t *arr = json_array();
	char *p = text;
	while (*p) {
		char *nl = strchr(p, '\n');
		assert_non_null(nl); /* every line is complete */
		json_error_t je;
		json_t *ev = json_loadb(p, (size_t)(nl - p), 0, &je);
		if (!ev)
			fail_msg("bad line: %.200s (%s)", p, je.text);
		assert_true(json_is_object(ev));
		json_array_append_new(arr, ev);
		p = nl + 1;
	}
	free(text);
	return arr;
}

static const char *sget(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static long long iget(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v))
		fail_msg("%s is not an integer", key);
	return json_integer_value(v);
}

static void assert_keys(const json_t *o, const char *const *keys)
{
	size_t n = 0;
	for (; keys[n]; n++)
		if (!json_object_get(o, keys[n]))
			fail_msg("%s lacks \"%s\"", sget(o, "event"), keys[n]);
	if (json_object_size(o) != n) {
		char *s = json_dumps(o, JSON_COMPACT);
		fail_msg("unexpected keys in %s (want %zu)", s, n);
	}
}

static int is_rfc3339_ms(const char *s)
{
	/* 2024-05-01T12:03:04.123Z */
	if (!s || strlen(s) != 24)
		return 0;
	const char *pat = "dddd-dd-ddTdd:dd:dd.dddZ";
	for (int i = 0; i < 24; i++)
		if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
			return 0;
	return 1;
}

/* ---------------------------------------------------------------- names, ids */

static void test_event_names(void **state)
{
	(void)state;
	static const char *const want[] = { "run.started", "stage.queued", "stage.started",
					    "vm.booted", "log.chunk", "stage.completed",
					    "stage.failed", "stage.skipped", "run.finished",
					    "run.cancelled" };
	for (int t = VB_EV_RUN_STARTED; t <= VB_EV_RUN_CANCELLED; t++)
		assert_string_equal(vb_event_name((enum vb_event_type)t), want[t - 1]);
	assert_null(vb_event_name((enum vb_event_type)0));
	assert_null(vb_event_name((enum vb_event_type)99));
}

/* vm.booted says how the VM started: restored (from which snapshot, warm
 * or not) or cold, with the notice of a warm restore that fell back. */
static void test_boot_fields(void **state)
{
	(void)state;
	static const char id[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	struct vb_event ev = { .type = VB_EV_VM_BOOTED, .stage = "a", .vm_id = "vm-1",
			       .snapshot = id, .warm = 1, .boot_ms = 90 };
	json_t *o = vb_obs_event_json(&ev, "r", 1);
	assert_non_null(o);
	assert_string_equal(sget(o, "boot"), "restored");
	assert_string_equal(sget(o, "snapshot"), id);
	assert_true(json_is_true(json_object_get(o, "warm")));
	assert_null(json_object_get(o, "boot_notice"));
	json_decref(o);
	ev = (struct vb_event){ .type = VB_EV_VM_BOOTED, .stage = "a", .vm_id = "vm-2",
				.boot_notice = "warm snapshot x could not be restored (y); booted cold" };
	o = vb_obs_event_json(&ev, "r", 1);
	assert_non_null(o);
	assert_string_equal(sget(o, "boot"), "cold");
	assert_null(json_object_get(o, "snapshot"));
	assert_null(json_object_get(o, "warm"));
	assert_string_equal(sget(o, "boot_notice"), ev.boot_notice);
	json_decref(o);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_run_ids(void **state)
{
	(void)state;
	enum { N = 1000 };
	char *ids[N];
	time_t before = time(NULL);
	for (int i = 0; i < N; i++) {
		vb_error err = { 0 };
		ids[i] = vb_run_id_new(&err);
		assert_non_null(ids[i]);
		const char *s = ids[i];
		assert_int_equal(strlen(s), 22);
		for (int k = 0; k < 22; k++) {
			if (k == 8 || k == 15)
				assert_int_equal(s[k], '-');
			else if (k < 15)
				assert_true(s[k] >= '0' && s[k] <= '9');
			else
				assert_non_null(strchr("0123456789abcdef", s[k]));
		}
		assert_true(vb_obs_run_id_ok(s));
	}
	/* UTC, now */
	struct tm tm;
	char stamp[32];
	gmtime_r(&before, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H", &tm);
	assert_memory_equal(ids[0], stamp, 11);
	/* sortable: later ids never sort before earlier seconds */
	assert_true(strncmp(ids[0], ids[N - 1], 15) <= 0);
	qsort(ids, N, sizeof(ids[0]), cmp_str);
	for (int i = 1; i < N; i++)
		assert_string_not_equal(ids[i - 1], ids[i]);
	for (int i = 0; i < N; i++)
		free(ids[i]);
	assert_false(vb_obs_run_id_ok("20240101-000000-abcdeg"));
	assert_false(vb_obs_run_id_ok("20240101-000000-abcde"));
	assert_false(vb_obs_run_id_ok("../../etc/passwd-00000"));
}

/* ----------------------------------------------------------- the record */

static struct vb_record *open_record(char *id_out)
{
	vb_error err = { 0 };
	char *id = vb_run_id_new(&err);
	assert_non_null(id);
	struct vb_record *rec = vb_record_open(id, "hello", "pipeline", &err);
	if (!rec)
		fail_msg("vb_record_open: %s", err.msg);
	if (id_out)
		strcpy(id_out, id);
	free(id);
	return rec;
}

static void test_record_layout(void **state)
{
	struct fixture *f = *state;
	char id[32];
	struct vb_record *rec = open_record(id);
	char want[256];
	snprintf(want, sizeof(want), "%s/%s", f->runs, id);
	assert_string_equal(vb_record_dir(rec), want);

	struct stat st;
	assert_int_equal(stat(want, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(stat(f->runs, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	char sub[300];
	snprintf(sub, sizeof(sub), "%s/stages", want);
	assert_int_equal(stat(sub, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	snprintf(sub, sizeof(sub), "%s/events.jsonl", want);
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	size_t len;
	char *text = slurp_at(want, "meta.json", &len);
	assert_non_null(text);
	json_t *meta = json_loads(text, 0, NULL);
	free(text);
	assert_non_null(meta);
	assert_string_equal(sget(meta, "run_id"), id);
	assert_string_equal(sget(meta, "name"), "hello");
	assert_string_equal(sget(meta, "kind"), "pipeline");
	assert_int_equal(iget(meta, "pid"), getpid());
	assert_string_equal(sget(meta, "version"), VOIDBOX_VERSION);
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	assert_string_equal(sget(meta, "host"), host);
	const char *started = sget(meta, "started");
	assert_non_null(started);
	assert_int_equal(strlen(started), 20); /* 2024-05-01T12:03:04Z */
	assert_int_equal(started[19], 'Z');
	assert_true(iget(meta, "started_ms") > 1600000000000LL);
	json_decref(meta);

	/* a second record with the same id is refused, not merged */
	vb_error err = { 0 };
	assert_null(vb_record_open(id, "x", "pipeline", &err));
	assert_non_null(strstr(err.msg, id));
	assert_null(vb_record_open("not-an-id", "x", "pipeline", &err));
	assert_int_equal(err.kind, VB_E_USAGE);
	vb_record_close(rec);
	vb_record_close(NULL);
}

static void emit(struct vb_record *rec, struct vb_event ev)
{
	ev.run_id = ev.run_id ? ev.run_id : "20240501-120304-abc123";
	vb_record_event(&ev, rec);
}

static void test_record_every_event(void **state)
{
	(void)state;
	char id[32];
	struct vb_record *rec = open_record(id);
	const char *dir = vb_record_dir(rec);
	int64_t t = 1714564984123; /* 2024-05-01T12:03:04.123Z */
	const uint8_t out[] = "{\"carried\": true}";
	emit(rec, (struct vb_event){ .type = VB_EV_RUN_STARTED, .time_ms = t, .run_id = id,
				     .name = "hello", .kind = "pipeline" });
	emit(rec, (struct vb_event){ .type = VB_EV_STAGE_QUEUED, .time_ms = t + 1, .stage = "fetch" });
	emit(rec, (struct vb_event){ .type = VB_EV_STAGE_STARTED, .time_ms = t + 2, .stage = "fetch",
				     .accel = "tcg", .isolation = "emulated" });
	emit(rec, (struct vb_event){ .type = VB_EV_VM_BOOTED, .time_ms = t + 3, .stage = "fetch",
				     .vm_id = "vm-3fa2c1", .accel = "tcg", .isolation = "emulated",
				     .kernel = "6.1.0", .boot_id = "b00t", .boot_ms = 1269 });
	emit(rec, (struct vb_event){ .type = VB_EV_LOG_CHUNK, .time_ms = t + 4, .stage = "fetch",
				     .vm_id = "vm-3fa2c1", .stream = "stdout",
				     .data = (const uint8_t *)"héllo\n", .len = 7 });
	emit(rec, (struct vb_event){ .type = VB_EV_LOG_CHUNK, .time_ms = t + 5, .stage = "fetch",
				     .stream = "stderr", .data = (const uint8_t *)"oops\n", .len = 5 });
	emit(rec, (struct vb_event){ .type = VB_EV_LOG_CHUNK, .time_ms = t + 6, .stage = "fetch",
				     .stream = "stdout", .data = (const uint8_t *)"again\n", .len = 6 });
	emit(rec, (struct vb_event){ .type = VB_EV_STAGE_COMPLETED, .time_ms = t + 7, .stage = "fetch",
				     .vm_id = "vm-3fa2c1", .exit_code = 0, .duration_ms = 2100,
				     .output = out, .output_len = sizeof(out) - 1,
				     .output_size = 12345 });
	emit(rec, (struct vb_event){ .type = VB_EV_STAGE_FAILED, .time_ms = t + 8, .stage = "build",
				     .exit_code = 3, .duration_ms = 500, .error = "exit code 3" });
	emit(rec, (struct vb_event){ .type = VB_EV_STAGE_SKIPPED, .time_ms = t + 9, .stage = "ship",
				     .error = "'build' failed" });
	emit(rec, (struct vb_event){ .type = VB_EV_RUN_FINISHED, .time_ms = t + 10, .success = 0,
				     .duration_ms = 3000, .error = "stage 'build' failed" });
	emit(rec, (struct vb_event){ .type = VB_EV_RUN_CANCELLED, .time_ms = t + 11, .duration_ms = 3001 });
	emit(rec, (struct vb_event){ .type = VB_EV_RUN_FINISHED, .success = 1, .duration_ms = 1 });

	json_t *evs = read_events(dir);
	assert_int_equal(json_array_size(evs), 13);
	static const char *const k_run_started[] = { "event", "time", "time_ms", "run_id", "name", "kind", NULL };
	static const char *const k_queued[] = { "event", "time", "time_ms", "run_id", "stage", NULL };
	static const char *const k_started[] = { "event", "time", "time_ms", "run_id", "stage", "accel",
						 "isolation", NULL };
	static const char *const k_booted[] = { "event", "time", "time_ms", "run_id", "stage", "vm_id",
						"accel", "isolation", "kernel", "boot_id", "boot_ms", "boot", NULL };
	static const char *const k_chunk_vm[] = { "event", "time", "time_ms", "run_id", "stage", "vm_id",
						  "stream", "len", "offset", "data", NULL };
	static const char *const k_chunk[] = { "event", "time", "time_ms", "run_id", "stage", "stream",
					       "len", "offset", "data", NULL };
	static const char *const k_completed[] = { "event", "time", "time_ms", "run_id", "stage", "vm_id",
						   "exit_code", "duration_ms", "output_bytes",
						   "stdout_bytes", "stderr_bytes", NULL };
	static const char *const k_failed[] = { "event", "time", "time_ms", "run_id", "stage", "exit_code",
						"duration_ms", "error", NULL };
	static const char *const k_skipped[] = { "event", "time", "time_ms", "run_id", "stage", "error", NULL };
	static const char *const k_finished[] = { "event", "time", "time_ms", "run_id", "success",
						  "duration_ms", "error", NULL };
	static const char *const k_cancelled[] = { "event", "time", "time_ms", "run_id", "duration_ms", NULL };
	static const char *const *const keys[] = { k_run_started, k_queued, k_started, k_booted,
						   k_chunk_vm, k_chunk, k_chunk_vm, k_completed,
						   k_failed, k_skipped, k_finished, k_cancelled,
						   k_finished };
	static const char *const names[] = { "run.started", "stage.queued", "stage.started",
					     "vm.booted", "log.chunk", "log.chunk", "log.chunk",
					     "stage.completed", "stage.failed", "stage.skipped",
					     "run.finished", "run.cancelled", "run.finished" };
	for (size_t i = 0; i < 13; i++) {
		json_t *ev = json_array_get(evs, i);
		assert_string_equal(sget(ev, "event"), names[i]);
		assert_keys(ev, keys[i]);
		assert_true(is_rfc3339_ms(sget(ev, "time")));
		if (i < 12)
			assert_int_equal(iget(ev, "time_ms"), t + (int64_t)i);
	}
	json_t *e;
	e = json_array_get(evs, 0);
	assert_string_equal(sget(e, "time"), "2024-05-01T12:03:04.123Z");
	assert_string_equal(sget(e, "run_id"), id);
	assert_string_equal(sget(e, "name"), "hello");
	assert_string_equal(sget(e, "kind"), "pipeline");
	e = json_array_get(evs, 1);
	assert_string_equal(sget(e, "run_id"), "20240501-120304-abc123");
	assert_string_equal(sget(e, "stage"), "fetch");
	e = json_array_get(evs, 3);
	assert_string_equal(sget(e, "vm_id"), "vm-3fa2c1");
	assert_string_equal(sget(e, "accel"), "tcg");
	assert_string_equal(sget(e, "isolation"), "emulated");
	assert_string_equal(sget(e, "kernel"), "6.1.0");
	assert_string_equal(sget(e, "boot_id"), "b00t");
	assert_int_equal(iget(e, "boot_ms"), 1269);
	assert_string_equal(sget(e, "boot"), "cold");
	e = json_array_get(evs, 4);
	assert_string_equal(sget(e, "stream"), "stdout");
	assert_string_equal(sget(e, "data"), "héllo\n");
	assert_int_equal(iget(e, "len"), 7);
	/* the second stdout chunk came 2 ms after the first: pooled, and
	 * written before the stage's end, stamped with its own time */
	e = json_array_get(evs, 6);
	assert_string_equal(sget(e, "data"), "again\n");
	assert_int_equal(iget(e, "offset"), 7);
	e = json_array_get(evs, 7);
	assert_int_equal(iget(e, "exit_code"), 0);
	assert_int_equal(iget(e, "duration_ms"), 2100);
	assert_int_equal(iget(e, "output_bytes"), 12345);
	assert_int_equal(iget(e, "stdout_bytes"), 13);
	assert_int_equal(iget(e, "stderr_bytes"), 5);
	e = json_array_get(evs, 8);
	assert_int_equal(iget(e, "exit_code"), 3);
	assert_int_equal(iget(e, "duration_ms"), 500);
	assert_string_equal(sget(e, "error"), "exit code 3");
	e = json_array_get(evs, 9);
	assert_string_equal(sget(e, "error"), "'build' failed");
	e = json_array_get(evs, 10);
	assert_true(json_is_false(json_object_get(e, "success")));
	assert_int_equal(iget(e, "duration_ms"), 3000);
	assert_string_equal(sget(e, "error"), "stage 'build' failed");
	e = json_array_get(evs, 11);
	assert_int_equal(iget(e, "duration_ms"), 3001);
	e = json_array_get(evs, 12); /* no time given: now; no error: null */
	assert_true(json_is_true(json_object_get(e, "success")));
	assert_true(json_is_null(json_object_get(e, "error")));
	assert_true(iget(e, "time_ms") > 1600000000000LL);
	json_decref(evs);

	size_t len;
	char *s = slurp_at(dir, "stages/fetch/stdout.log", &len);
	assert_non_null(s);
	assert_string_equal(s, "héllo\nagain\n");
	free(s);
	s = slurp_at(dir, "stages/fetch/stderr.log", &len);
	assert_string_equal(s, "oops\n");
	free(s);
	/* the output file is the engine's (carry.c): the record writes none */
	assert_null(slurp_at(dir, "stages/fetch/output", &len));
	vb_record_close(rec);
}

static uint8_t *b64_decode(const char *s, size_t *out_len)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(s);
	uint8_t *out = malloc(n / 4 * 3 + 1);
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n && s[i] != '='; i++) {
		const char *p = strchr(tab, s[i]);
		assert_non_null(p);
		acc = acc << 6 | (uint32_t)(p - tab);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	*out_len = o;
	return out;
}

static void test_record_binary_and_big_chunks(void **state)
{
	(void)state;
	struct vb_record *rec = open_record(NULL);
	const char *dir = vb_record_dir(rec);
	const uint8_t bin[] = { 0x00, 0xff, 0xfe, 'a', 0x80, 0x0a, 0xc3 };
	/* a second apart: a line each (closer chunks are pooled) */
	int64_t t = 1714564984123;
	emit(rec, (struct vb_event){ .type = VB_EV_LOG_CHUNK, .stage = "s", .stream = "stdout",
				     .time_ms = t, .data = bin, .len = sizeof(bin) });
	/* a valid UTF-8 character cut by the chunk boundary is not UTF-8 */
	emit(rec, (struct vb_event){ .type = VB_EV_LOG_CHUNK, .stage = "s", .stream = "stdout",
				     .time_ms = t + 1000, .data = (const uint8_t *)"ab\xc3", .len = 3 });
	/* NUL is valid UTF-8, but JSON readers refuse \u0000 by default */
	emit(rec, (struct vb_event){ .type = VB_EV_LOG_CHUNK, .stage = "s", .stream = "stdout",
				     .time_ms = t + 2000, .data = (const uint8_t *)"a\0b", .len = 3 });
	/* bigger than a line's preview: cut on a character boundary */
	size_t big = VB_REC_CHUNK_MAX + 1000;
	uint8_t *text = malloc(big);
	text[0] = 'x'; /* then é's: the line's limit falls inside one */
	for (size_t i = 1; i + 1 < big; i += 2) {
		text[i] = 0xc3;
		text[i + 1] = 0xa9;
	}
	text[big - 1] = 'y';
	assert_true(vb_obs_utf8_valid(text, big));
	emit(rec, (struct vb_event){ .type = VB_EV_LOG_CHUNK, .stage = "s", .stream = "stdout",
				     .time_ms = t + 3000, .data = text, .len = big });
	/* no data at all: nothing to say; a NULL stream: a line of its own */
	emit(rec, (struct vb_event){ .type = VB_EV_LOG_CHUNK, .stage = "s", .stream = "stdout",
				     .time_ms = t + 4000, .data = NULL, .len = 55 });
	emit(rec, (struct vb_event){ .type = VB_EV_LOG_CHUNK, .stage = "s", .time_ms = t + 5000,
				     .data = bin, .len = 2 });

	json_t *evs = read_events(dir);
	assert_int_equal(json_array_size(evs), 5);
	json_t *e = json_array_get(evs, 0);
	assert_null(json_object_get(e, "data"));
	size_t n;
	uint8_t *dec = b64_decode(sget(e, "data_b64"), &n);
	assert_int_equal(n, sizeof(bin));
	assert_memory_equal(dec, bin, n);
	free(dec);
	e = json_array_get(evs, 1);
	assert_string_equal(sget(e, "data_b64"), "YWLD");
	e = json_array_get(evs, 2);
	assert_null(json_object_get(e, "data"));
	assert_string_equal(sget(e, "data_b64"), "YQBi");
	json_t *d;
	e = json_array_get(evs, 3);
	assert_true(json_is_true(json_object_get(e, "truncated")));
	assert_int_equal(iget(e, "len"), big);
	d = json_object_get(e, "data");
	assert_non_null(d);
	assert_int_equal(json_string_length(d), VB_REC_CHUNK_MAX - 1);
	assert_memory_equal(json_string_value(d), text, VB_REC_CHUNK_MAX - 1);
	e = json_array_get(evs, 4);
	assert_true(json_is_null(json_object_get(e, "stream")));
	json_decref(evs);

	/* the log file has every byte */
	char *log = slurp_at(dir, "stages/s/stdout.log", &n);
	assert_int_equal(n, sizeof(bin) + 3 + 3 + big);
	assert_memory_equal(log, bin, sizeof(bin));
	assert_memory_equal(log + sizeof(bin) + 6, text, big);
	free(log);
	free(text);
	vb_record_close(rec);
}

/* One byte at a time: pooled into a line a second; past the record's cap
 * the bytes are counted, not kept, and record.truncated says so once. */
static void test_record_pools_chunks_and_caps(void **state)
{
	(void)state;
	struct vb_record *rec = open_record(NULL);
	const char *dir = vb_record_dir(rec);
	int64_t t = 1714564984000;
	for (int i = 0; i < 3000; i++) /* 3 s of a byte a millisecond */
		emit(rec, (struct vb_event){ .type = VB_EV_LOG_CHUNK, .time_ms = t + i, .stage = "s",
					     .stream = "stderr", .data = (const uint8_t *)"x", .len = 1 });
	emit(rec, (struct vb_event){ .type = VB_EV_STAGE_FAILED, .time_ms = t + 3000, .stage = "s",
				     .exit_code = 1, .error = "exit code 1" });
	json_t *evs = read_events(dir);
	/* at t, t+1000 and t+2000 a line each (the bytes since the last),
	 * and the rest before the stage's end */
	assert_int_equal(json_array_size(evs), 5);
	long long sum = 0;
	for (size_t i = 0; i < 4; i++) {
		json_t *e = json_array_get(evs, i);
		assert_string_equal(sget(e, "event"), "log.chunk");
		assert_int_equal(iget(e, "offset"), sum);
		sum += iget(e, "len");
	}
	assert_int_equal(sum, 3000);
	assert_int_equal(iget(json_array_get(evs, 1), "len"), 1000);
	/* the preview: at most 512 bytes of them */
	assert_int_equal(strlen(sget(json_array_get(evs, 1), "data")), VB_REC_CHUNK_MAX);
	assert_true(json_is_true(json_object_get(json_array_get(evs, 1), "truncated")));
	assert_int_equal(iget(json_array_get(evs, 4), "stderr_bytes"), 3000);
	json_decref(evs);

	/* a cap the log reaches: the rest is counted, not kept */
	struct stat st;
	char path[600];
	snprintf(path, sizeof(path), "%s/events.jsonl", dir);
	assert_int_equal(stat(path, &st), 0);
	vb_record_limit(rec, (uint64_t)st.st_size + 3000 + 10000);
	static uint8_t blob[4096];
	memset(blob, 'y', sizeof(blob));
	for (int i = 0; i < 10; i++)
		emit(rec, (struct vb_event){ .type = VB_EV_LOG_CHUNK, .time_ms = t + 5000 + i * 1000,
					     .stage = "big", .stream = "stdout", .data = blob,
					     .len = sizeof(blob) });
	emit(rec, (struct vb_event){ .type = VB_EV_STAGE_COMPLETED, .time_ms = t + 20000,
				     .stage = "big", .output_size = 0 });
	size_t n;
	char *log = slurp_at(dir, "stages/big/stdout.log", &n);
	assert_non_null(log);
	assert_true(n > 8192 && n < 13000);
	free(log);
	evs = read_events(dir);
	size_t truncs = 0, idx;
	json_t *e, *done = NULL;
	json_array_foreach(evs, idx, e) {
		if (!strcmp(sget(e, "event"), "record.truncated")) {
			truncs++;
			assert_non_null(strstr(sget(e, "error"), "size cap"));
		}
		if (!strcmp(sget(e, "event"), "stage.completed"))
			done = e;
	}
	assert_int_equal(truncs, 1);
	assert_non_null(done); /* the state events go on */
	assert_int_equal(iget(done, "stdout_bytes"), 10 * sizeof(blob));
	json_decref(evs);
	vb_record_close(rec);
}

static void test_record_refuses_odd_names(void **state)
{
	struct fixture *f = *state;
	struct vb_record *rec = open_record(NULL);
	const char *dir = vb_record_dir(rec);
	static const char *const bad[] = { "../../escape", "a/b", "..", ".", "", "x..y",
					   "a\nb", "0123456789012345678901234567890123456789012345678901234567890123456789" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		emit(rec, (struct vb_event){ .type = VB_EV_LOG_CHUNK, .stage = bad[i], .stream = "stdout",
					     .data = (const uint8_t *)"x", .len = 1 });
		emit(rec, (struct vb_event){ .type = VB_EV_STAGE_COMPLETED, .stage = bad[i],
					     .output = (const uint8_t *)"o", .output_len = 1 });
	}
	/* odd input: ignored, never a crash */
	vb_record_event(NULL, rec);
	struct vb_event ev = { .type = (enum vb_event_type)42 };
	vb_record_event(&ev, rec);
	ev.type = VB_EV_STAGE_QUEUED;
	vb_record_event(&ev, NULL);
	vb_record_event(&ev, rec); /* NULL stage: written with "stage": null */
	/* invalid UTF-8 in strings is replaced, not dropped */
	emit(rec, (struct vb_event){ .type = VB_EV_STAGE_FAILED, .stage = "ok", .exit_code = -1,
				     .error = "bad \xff byte" });

	json_t *evs = read_events(dir);
	size_t nbad = sizeof(bad) / sizeof(bad[0]);
	assert_int_equal(json_array_size(evs), 2 * nbad + 2);
	assert_true(json_is_null(json_object_get(json_array_get(evs, 2 * nbad), "stage")));
	assert_string_equal(sget(json_array_get(evs, 2 * nbad + 1), "error"), "bad \xef\xbf\xbd byte");
	json_decref(evs);
	/* nothing but the one stage directory the names could not name */
	char path[512];
	snprintf(path, sizeof(path), "%s/stages", dir);
	struct stat st;
	snprintf(path, sizeof(path), "%s/escape", f->runs);
	assert_int_not_equal(stat(path, &st), 0);
	snprintf(path, sizeof(path), "%s/escape", f->base);
	assert_int_not_equal(stat(path, &st), 0);
	snprintf(path, sizeof(path), "%s/stages/a", dir);
	assert_int_not_equal(stat(path, &st), 0);
	snprintf(path, sizeof(path), "%s/stages/output", dir);
	assert_int_not_equal(stat(path, &st), 0);
	snprintf(path, sizeof(path), "%s/output", dir);
	assert_int_not_equal(stat(path, &st), 0);
	vb_record_close(rec);
}

struct writer {
	struct vb_record *rec;
	int n;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	char stage[16], data[64];
	snprintf(stage, sizeof(stage), "w%d", w->n);
	for (int i = 0; i < 1000; i++) {
		int len = snprintf(data, sizeof(data), "%d:%d\n", w->n, i);
		if (i % 2)
			emit(w->rec, (struct vb_event){ .type = VB_EV_LOG_CHUNK, .stage = stage,
							.stream = "stdout", .data = (const uint8_t *)data,
							.len = (size_t)len });
		else
			emit(w->rec, (struct vb_event){ .type = VB_EV_STAGE_FAILED, .stage = stage,
							.exit_code = i, .error = data });
	}
	return NULL;
}

static void test_record_concurrent_writers(void **state)
{
	(void)state;
	struct vb_record *rec = open_record(NULL);
	pthread_t th[8];
	struct writer w[8];
	for (int i = 0; i < 8; i++) {
		w[i] = (struct writer){ rec, i };
		assert_int_equal(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	/* each writer's last chunk is pending until the run ends */
	emit(rec, (struct vb_event){ .type = VB_EV_RUN_FINISHED, .success = 1 });
	json_t *evs = read_events(vb_record_dir(rec));
	assert_int_equal(json_array_size(evs), 8001);
	json_array_remove(evs, 8000);
	int next[8] = { 0 };
	size_t idx;
	json_t *e;
	json_array_foreach(evs, idx, e) {
		const char *stage = sget(e, "stage");
		assert_non_null(stage);
		int t = stage[1] - '0';
		assert_in_range(t, 0, 7);
		/* each writer's events stay in its order */
		const char *payload = sget(e, "data") ? sget(e, "data") : sget(e, "error");
		int wt, wi;
		assert_int_equal(sscanf(payload, "%d:%d", &wt, &wi), 2);
		assert_int_equal(wt, t);
		assert_int_equal(wi, next[t]);
		next[t]++;
	}
	json_decref(evs);
	for (int t = 0; t < 8; t++) {
		char rel[64];
		size_t n;
		snprintf(rel, sizeof(rel), "stages/w%d/stdout.log", t);
		char *log = slurp_at(vb_record_dir(rec), rel, &n);
		assert_non_null(log);
		int lines = 0;
		for (char *p = log; (p = strchr(p, '\n')); p++)
			lines++;
		assert_int_equal(lines, 500);
		free(log);
	}
	vb_record_close(rec);
}

struct result_reader {
	const char *path;
	atomic_int stop;
	int reads, bad;
};

static void *result_reader_main(void *arg)
{
	struct result_reader *r = arg;
	while (!atomic_load(&r->stop)) {
		size_t n;
		char *s = slurp(r->path, &n);
		if (!s)
			continue; /* not written yet */
		json_t *j = json_loadb(s, n, 0, NULL);
		if (!j)
			r->bad++;
		json_decref(j);
		free(s);
		r->reads++;
	}
	return NULL;
}

static void test_record_result_atomic(void **state)
{
	(void)state;
	struct vb_record *rec = open_record(NULL);
	char path[512];
	snprintf(path, sizeof(path), "%s/result.json", vb_record_dir(rec));
	struct result_reader rr = { .path = path };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, result_reader_main, &rr), 0);
	/* alternate a small and a large document: a torn file would not parse */
	char *bigdoc = malloc(300000);
	strcpy(bigdoc, "{\"name\":\"big\",\"output\":\"");
	memset(bigdoc + strlen(bigdoc), 'x', 250000);
	strcpy(bigdoc + 24 + 250000, "\"}");
	for (int i = 0; i < 100; i++) {
		vb_error err = { 0 };
		assert_int_equal(vb_record_write_result(rec, i % 2 ? bigdoc : "{\"success\":true}", &err), 0);
	}
	atomic_store(&rr.stop, 1);
	pthread_join(th, NULL);
	free(bigdoc);
	assert_int_equal(rr.bad, 0);
	size_t n;
	char *s = slurp(path, &n);
	assert_non_null(strstr(s, "\"big\""));
	assert_int_equal(s[n - 1], '\n');
	free(s);
	/* no temporary file left behind */
	char tmp[600];
	snprintf(tmp, sizeof(tmp), "%s/.result.json.tmp", vb_record_dir(rec));
	assert_int_not_equal(access(tmp, F_OK), 0);
	vb_error err = { 0 };
	assert_int_equal(vb_record_write_result(rec, NULL, &err), -1);
	vb_record_close(rec);
}

/* ------------------------------------------------------- pruning, reading back */

static void fake_run(const char *runs, const char *id, long pid, const char *final)
{
	char dir[256], path[300];
	snprintf(dir, sizeof(dir), "%s/%s", runs, id);
	assert_int_equal(vb_mkdir_p(dir, 0700, NULL), 0);
	if (pid) {
		snprintf(path, sizeof(path), "%s/meta.json", dir);
		FILE *fp = fopen(path, "w");
		fprintf(fp, "{\"run_id\":\"%s\",\"name\":\"fake\",\"kind\":\"pipeline\",\"pid\":%ld}\n", id, pid);
		fclose(fp);
	}
	snprintf(path, sizeof(path), "%s/events.jsonl", dir);
	FILE *fp = fopen(path, "w");
	fprintf(fp, "{\"event\":\"run.started\",\"time_ms\":1000,\"run_id\":\"%s\"}\n", id);
	if (final)
		fprintf(fp, "{\"event\":\"%s\",\"time_ms\":2000,\"success\":true,\"duration_ms\":1000}\n", final);
	fclose(fp);
}

static int exists(const char *runs, const char *id)
{
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/%s", runs, id);
	return access(dir, F_OK) == 0;
}

#define DEAD_PID 2147483646L

static void test_prune_keeps_running(void **state)
{
	struct fixture *f = *state;
	char id[32];
	/* 205 old runs: the 3 oldest still running (our pid, no final event),
	 * the 4th a fresh directory without meta.json, the rest done or
	 * crashed; plus the new one: 206, so 6 must go, and they can only be
	 * the 6 oldest that are not running */
	for (int i = 0; i < 205; i++) {
		snprintf(id, sizeof(id), "20200101-00%04d-%06x", i, i);
		if (i < 3)
			fake_run(f->runs, id, getpid(), NULL);
		else if (i == 3)
			fake_run(f->runs, id, 0, NULL);
		else
			fake_run(f->runs, id, DEAD_PID, i % 3 ? "run.finished" : i % 2 ? "run.cancelled" : NULL);
	}
	struct vb_record *rec = open_record(NULL);
	char **ids;
	size_t n;
	assert_int_equal(vb_runs_list(f->runs, 0, &ids, &n, NULL), 0);
	assert_int_equal(n, 200);
	vb_runs_list_free(ids, n);
	for (int i = 0; i < 205; i++) {
		snprintf(id, sizeof(id), "20200101-00%04d-%06x", i, i);
		if (i < 4 || i >= 10)
			assert_true(exists(f->runs, id));
		else
			assert_false(exists(f->runs, id));
	}
	vb_record_close(rec);
	/* not a run id: never touched */
	char other[256];
	snprintf(other, sizeof(other), "%s/keep-me", f->runs);
	assert_int_equal(mkdir(other, 0700), 0);
	rec = open_record(NULL);
	assert_int_equal(access(other, F_OK), 0);
	vb_record_close(rec);
}

static void test_runs_info_and_resolve(void **state)
{
	struct fixture *f = *state;
	char id[32];
	struct vb_record *rec = open_record(id);
	emit(rec, (struct vb_event){ .type = VB_EV_RUN_STARTED, .run_id = id, .name = "hello", .kind = "pipeline" });
	emit(rec, (struct vb_event){ .type = VB_EV_VM_BOOTED, .stage = "a", .vm_id = "vm-a", .accel = "tcg",
				     .isolation = "emulated" });
	emit(rec, (struct vb_event){ .type = VB_EV_VM_BOOTED, .stage = "b", .vm_id = "vm-b", .accel = "kvm",
				     .isolation = "hardware" });
	emit(rec, (struct vb_event){ .type = VB_EV_LOG_CHUNK, .stage = "b", .stream = "stdout",
				     .data = (const uint8_t *)"x", .len = 1 });
	emit(rec, (struct vb_event){ .type = VB_EV_STAGE_COMPLETED, .stage = "a" });

	struct vb_run_info info;
	vb_error err = { 0 };
	void *grow = malloc(64 << 20); /* liveness must not depend on our size */
	assert_true(vb_run_pid_alive(vb_record_dir(rec)));
	free(grow);
	assert_int_equal(vb_run_info_load(f->runs, id, &info, &err), 0);
	assert_int_equal(info.state, VB_RUN_RUNNING);
	assert_string_equal(info.name, "hello");
	assert_string_equal(info.kind, "pipeline");
	assert_int_equal(info.pid, getpid());
	assert_int_equal(info.pid_start, vb_obs_pid_start(getpid()));
	vb_run_info_clear(&info);

	emit(rec, (struct vb_event){ .type = VB_EV_RUN_FINISHED, .success = 0, .duration_ms = 4200,
				     .error = "stage 'b' failed" });
	assert_int_equal(vb_run_info_load(f->runs, id, &info, &err), 0);
	assert_int_equal(info.state, VB_RUN_FAILED);
	assert_int_equal(info.duration_ms, 4200);
	assert_string_equal(info.error, "stage 'b' failed");
	vb_run_info_clear(&info);
	vb_record_close(rec);

	/* crashed: no final event, pid gone; cancelled; succeeded */
	fake_run(f->runs, "20200101-000000-aaaaaa", DEAD_PID, NULL);
	fake_run(f->runs, "20200101-000000-aaaabb", DEAD_PID, "run.cancelled");
	fake_run(f->runs, "20200101-000001-cccccc", DEAD_PID, "run.finished");
	static const struct { const char *id; enum vb_run_state st; } want[] = {
		{ "20200101-000000-aaaaaa", VB_RUN_CRASHED },
		{ "20200101-000000-aaaabb", VB_RUN_CANCELLED },
		{ "20200101-000001-cccccc", VB_RUN_SUCCEEDED },
	};
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(vb_run_info_load(f->runs, want[i].id, &info, &err), 0);
		assert_int_equal(info.state, want[i].st);
		vb_run_info_clear(&info);
	}
	assert_string_equal(vb_run_state_name(VB_RUN_CRASHED), "crashed");

	/* our pid, but another process's start time: the pid was reused */
	fake_run(f->runs, "20200101-000002-dddddd", 0, NULL);
	char meta[256];
	snprintf(meta, sizeof(meta), "%s/20200101-000002-dddddd/meta.json", f->runs);
	FILE *fp = fopen(meta, "w");
	fprintf(fp, "{\"pid\":%d,\"pid_start\":1}\n", (int)getpid());
	fclose(fp);
	assert_int_equal(vb_run_info_load(f->runs, "20200101-000002-dddddd", &info, &err), 0);
	assert_int_equal(info.state, VB_RUN_CRASHED);
	vb_run_info_clear(&info);

	char *got = vb_run_resolve(f->runs, "20200101-000001", &err);
	assert_string_equal(got, "20200101-000001-cccccc");
	free(got);
	got = vb_run_resolve(f->runs, id, &err);
	assert_string_equal(got, id);
	free(got);
	assert_null(vb_run_resolve(f->runs, "20200101-000000-aaaa", &err));
	assert_int_equal(err.kind, VB_E_USAGE);
	assert_non_null(strstr(err.msg, "ambiguous"));
	assert_null(vb_run_resolve(f->runs, "19990101", &err));
	assert_string_equal(err.msg, "no run '19990101' (see voidbox ps)");
	assert_null(vb_run_resolve(f->runs, "../x", &err));
	assert_string_equal(err.msg, "no run '../x' (see voidbox ps)");
	/* the random suffix, or a tail of it */
	got = vb_run_resolve(f->runs, "cccccc", &err);
	assert_string_equal(got, "20200101-000001-cccccc");
	free(got);
	got = vb_run_resolve(f->runs, "2-dddddd", &err);
	assert_string_equal(got, "20200101-000002-dddddd");
	free(got);
	got = vb_run_resolve(f->runs, "aaaabb", &err);
	assert_string_equal(got, "20200101-000000-aaaabb");
	free(got);
	/* the newest run: the record opened above (now) */
	got = vb_run_last(f->runs, &err);
	assert_string_equal(got, id);
	free(got);
}

static void test_jsonl_reader_partial_lines(void **state)
{
	struct fixture *f = *state;
	char path[256];
	snprintf(path, sizeof(path), "%s/x.jsonl", f->base);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	struct vb_jsonl *r = vb_jsonl_open(path, NULL);
	assert_non_null(r);
	const char *line;
	size_t len;
	assert_int_equal(vb_jsonl_next(r, &line, &len, NULL), VB_JSONL_NONE);
	assert_int_equal(write(fd, "{\"a\":1}\n{\"b\"", 12), 12);
	assert_int_equal(vb_jsonl_next(r, &line, &len, NULL), VB_JSONL_LINE);
	assert_string_equal(line, "{\"a\":1}");
	assert_int_equal(vb_jsonl_next(r, &line, &len, NULL), VB_JSONL_NONE);
	assert_int_equal(write(fd, ":2}\n", 4), 4);
	assert_int_equal(vb_jsonl_next(r, &line, &len, NULL), VB_JSONL_LINE);
	assert_string_equal(line, "{\"b\":2}");
	/* an overlong line is skipped, the next one read */
	char *huge = malloc(VB_REC_LINE_MAX + 10);
	memset(huge, 'x', VB_REC_LINE_MAX + 9);
	huge[VB_REC_LINE_MAX + 9] = '\n';
	assert_int_equal(vb_write_full(fd, huge, VB_REC_LINE_MAX + 10), 0);
	free(huge);
	assert_int_equal(write(fd, "{\"c\":3}\n", 8), 8);
	assert_int_equal(vb_jsonl_next(r, &line, &len, NULL), VB_JSONL_LONG);
	assert_int_equal(vb_jsonl_next(r, &line, &len, NULL), VB_JSONL_LINE);
	assert_string_equal(line, "{\"c\":3}");
	assert_int_equal(len, 7);
	close(fd);
	vb_jsonl_free(r);
	vb_jsonl_free(NULL);
}

/* ------------------------------------------------------------- text helpers */

static void test_text_helpers(void **state)
{
	(void)state;
	assert_true(vb_obs_utf8_valid((const uint8_t *)"héllo €𝄞", strlen("héllo €𝄞")));
	assert_false(vb_obs_utf8_valid((const uint8_t *)"\xc0\xaf", 2));      /* overlong */
	assert_false(vb_obs_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3));  /* surrogate */
	assert_false(vb_obs_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(vb_obs_utf8_valid((const uint8_t *)"\xe2\x82", 2));      /* cut short */
	assert_int_equal(vb_obs_utf8_cut((const uint8_t *)"a\xe2\x82", 3), 1);
	assert_int_equal(vb_obs_utf8_cut((const uint8_t *)"a\xe2\x82\xac", 4), 4);
	static const char *const b64[][2] = { { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" },
					      { "foo", "Zm9v" }, { "foobar", "Zm9vYmFy" } };
	for (size_t i = 0; i < 5; i++) {
		char *s = vb_obs_base64((const uint8_t *)b64[i][0], strlen(b64[i][0]));
		assert_string_equal(s, b64[i][1]);
		free(s);
	}
	/* the terminal sanitizer has its own test: test_term.c */
	char d[32];
	vb_obs_fmt_duration(3250, d, sizeof(d));
	assert_string_equal(d, "3.2s");
	vb_obs_fmt_duration(65000, d, sizeof(d));
	assert_string_equal(d, "1m05s");
	vb_obs_fmt_duration(7380000, d, sizeof(d));
	assert_string_equal(d, "2h03m");
	/* the start time of a process: field 22 of /proc/PID/stat */
	size_t n;
	char *stat = slurp("/proc/self/stat", &n);
	assert_non_null(stat);
	unsigned long long start = 0;
	assert_int_equal(sscanf(strrchr(stat, ')') + 2,
				"%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
				&start), 1);
	free(stat);
	void *grow = malloc(64 << 20); /* vsize (field 23) changes, starttime does not */
	assert_int_equal(vb_obs_pid_start(getpid()), (long long)start);
	free(grow);
	assert_int_equal(vb_obs_pid_start(2147483646), -1);
	/* alive: the pid with the start time it had; a zombie is gone */
	assert_true(vb_pid_alive(getpid(), (long long)start));
	assert_true(vb_pid_alive(getpid(), -1));
	assert_false(vb_pid_alive(getpid(), (long long)start + 1));
	assert_false(vb_pid_alive(2147483646, -1));
	pid_t child = fork();
	if (child == 0)
		_exit(0);
	long long cstart = vb_pid_start(child);
	for (int i = 0; i < 200 && vb_pid_alive(child, cstart); i++)
		usleep(10000);
	assert_false(vb_pid_alive(child, cstart)); /* not reaped yet: a zombie */
	assert_int_equal(waitpid(child, NULL, 0), child);
	vb_obs_fmt_bytes(512, d, sizeof(d));
	assert_string_equal(d, "512 B");
	vb_obs_fmt_bytes(12 * 1024 + 512, d, sizeof(d));
	assert_string_equal(d, "12.5 KiB");
	vb_obs_fmt_bytes(3ULL << 30, d, sizeof(d));
	assert_string_equal(d, "3.0 GiB");
	assert_true(vb_obs_name_ok("fetch-1.x_y"));
	assert_false(vb_obs_name_ok("a/b"));
	assert_false(vb_obs_name_ok(".."));
	assert_false(vb_obs_name_ok(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event_names),
		cmocka_unit_test(test_boot_fields),
		cmocka_unit_test(test_run_ids),
		cmocka_unit_test(test_text_helpers),
		cmocka_unit_test_setup_teardown(test_record_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_every_event, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_binary_and_big_chunks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_pools_chunks_and_caps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_refuses_odd_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_concurrent_writers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_result_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune_keeps_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_runs_info_and_resolve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jsonl_reader_partial_lines, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
