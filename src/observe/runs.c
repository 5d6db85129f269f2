/* SPDX-License-Identifier: Apache-2.0 */
/* Reading run records back: listing, id lookup, state, the newest run. */
#include "observe/runs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "observe/observe_int.h"
#include "util/util.h"

#define META_MAX (64 * 1024)
#define TAIL_BYTES (64 * 1024)
#define RESOLVE_SHOW 5

char *vb_runs_dir(vb_error *err)
{
	_cleanup_free_ char *state = vb_state_dir(err);
	if (!state)
		return NULL;
	char *dir = vb_strfmt("%s/runs", state);
	if (!dir)
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
	return dir;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void vb_runs_list_free(char **ids, size_t n)
{
	if (!ids)
		return;
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

int vb_runs_list(const char *runs_dir, size_t max, char ***ids, size_t *n, vb_error *err)
{
	*ids = NULL;
	*n = 0;
	DIR *d = opendir(runs_dir);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		return vb_error_errno(err, errno, "cannot list %s", runs_dir);
	}
	char **v = NULL;
	size_t cnt = 0, cap = 0;
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d))) {
		if (!vb_obs_run_id_ok(e->d_name))
			continue;
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			char **nv = realloc(v, ncap * sizeof(*nv));
			if (!nv) {
				rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
				break;
			}
			v = nv;
			cap = ncap;
		}
		if (!(v[cnt] = strdup(e->d_name))) {
			rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
			break;
		}
		cnt++;
	}
	closedir(d);
	if (rc < 0) {
		vb_runs_list_free(v, cnt);
		return -1;
	}
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_str);
	if (max && cnt > max) {
		size_t drop = cnt - max;
		for (size_t i = 0; i < drop; i++)
			free(v[i]);
		memmove(v, v + drop, max * sizeof(*v));
		cnt = max;
	}
	*ids = v;
	*n = cnt;
	return 0;
}

/* 1 if (id) is (query), starts with it, or ends with it (the random part,
 * or a tail of it: "5fcaaa", "caaa"). */
static int id_matches(const char *id, const char *query, size_t qlen)
{
	size_t n = strlen(id);
	return !strncmp(id, query, qlen) || (qlen <= n && !strcmp(id + n - qlen, query));
}

char *vb_run_resolve(const char *runs_dir, const char *query, vb_error *err)
{
	/* only id characters: never let a "prefix" become a path */
	size_t qlen = query ? strlen(query) : 0;
	int sane = qlen > 0 && qlen <= VB_RUN_ID_LEN;
	for (size_t i = 0; sane && i < qlen; i++)
		sane = (query[i] >= '0' && query[i] <= '9') || (query[i] >= 'a' && query[i] <= 'f') ||
		       query[i] == '-';
	if (!sane) {
		vb_error_set(err, VB_E_USAGE, "no run '%.80s' (see voidbox ps)", query ? query : "");
		return NULL;
	}
	char **ids;
	size_t n;
	if (vb_runs_list(runs_dir, 0, &ids, &n, err) < 0)
		return NULL;
	size_t hits = 0, first = 0, exact = SIZE_MAX;
	char shown[RESOLVE_SHOW * (VB_RUN_ID_LEN + 2) + 8] = "";
	for (size_t i = n; i-- > 0;) {
		if (!id_matches(ids[i], query, qlen))
			continue;
		if (!strcmp(ids[i], query))
			exact = i;
		if (hits == 0)
			first = i;
		if (hits < RESOLVE_SHOW) {
			strcat(shown, hits ? ", " : "");
			strcat(shown, ids[i]);
		} else if (hits == RESOLVE_SHOW) {
			strcat(shown, ", ...");
		}
		hits++;
	}
	char *id = NULL;
	if (exact != SIZE_MAX)
		first = exact;
	if (hits == 0)
		vb_error_set(err, VB_E_USAGE, "no run '%s' (see voidbox ps)", query);
	else if (hits > 1 && exact == SIZE_MAX)
		vb_error_set(err, VB_E_USAGE, "run id '%s' is ambiguous: %zu runs match (%s)", query,
			     hits, shown);
	else if (!(id = strdup(ids[first])))
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
	vb_runs_list_free(ids, n);
	return id;
}

/* Start time of run (id) from its meta.json, else its id's second. */
static int64_t started_ms(const char *runs_dir, const char *id);

char *vb_run_last(const char *runs_dir, vb_error *err)
{
	char **ids;
	size_t n;
	if (vb_runs_list(runs_dir, 0, &ids, &n, err) < 0)
		return NULL;
	if (n == 0) {
		vb_error_set(err, VB_E_USAGE, "no runs recorded yet (see voidbox run)");
		return NULL;
	}
	/* ids sort by second; within the newest second the start time decides */
	size_t best = n - 1;
	int64_t best_ms = started_ms(runs_dir, ids[best]);
	for (size_t i = n - 1; i-- > 0 && !strncmp(ids[i], ids[n - 1], 15);) {
		int64_t ms = started_ms(runs_dir, ids[i]);
		if (ms > best_ms) {
			best = i;
			best_ms = ms;
		}
	}
	char *id = strdup(ids[best]);
	if (!id)
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
	vb_runs_list_free(ids, n);
	return id;
}

const char *vb_run_state_name(enum vb_run_state state)
{
	switch (state) {
	case VB_RUN_RUNNING: return "running";
	case VB_RUN_SUCCEEDED: return "succeeded";
	case VB_RUN_FAILED: return "failed";
	case VB_RUN_CANCELLED: return "cancelled";
	case VB_RUN_CRASHED: return "crashed";
	}
	return "unknown";
}

static json_t *read_json_file(const char *dir, const char *name)
{
	_cleanup_free_ char *path = vb_strfmt("%s/%s", dir, name);
	if (!path)
		return NULL;
	size_t len;
	_cleanup_free_ char *text = vb_read_file(path, META_MAX, &len, NULL);
	if (!text)
		return NULL;
	json_t *j = json_loadb(text, len, 0, NULL);
	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

static int meta_alive(const json_t *meta)
{
	json_int_t pid = json_integer_value(json_object_get(meta, "pid"));
	if (pid <= 0 || pid > 0x7fffffff)
		return 0;
	const char *host = json_string_value(json_object_get(meta, "host"));
	char me[256] = "";
	if (host && gethostname(me, sizeof(me) - 1) == 0 && strcmp(host, me))
		return 1; /* another machine's run (shared home): cannot tell */
	const char *boot = json_string_value(json_object_get(meta, "boot_id"));
	char now_boot[64];
	vb_obs_boot_id(now_boot, sizeof(now_boot));
	if (boot && now_boot[0] && strcmp(boot, now_boot))
		return 0; /* recorded before the last reboot */
	json_t *start = json_object_get(meta, "pid_start");
	return vb_pid_alive((long)pid, json_is_integer(start) ? json_integer_value(start) : -1);
}

int vb_run_pid_alive(const char *run_dir)
{
	json_t *meta = read_json_file(run_dir, "meta.json");
	int alive = meta && meta_alive(meta);
	json_decref(meta);
	return alive;
}

void vb_run_info_clear(struct vb_run_info *info)
{
	if (!info)
		return;
	free(info->dir);
	free(info->name);
	free(info->kind);
	free(info->error);
	memset(info, 0, sizeof(*info));
}

/* Fold one parsed event into (info); returns 1 on a final event. */
static int apply_event(struct vb_run_info *info, const json_t *ev)
{
	const char *type = json_string_value(json_object_get(ev, "event"));
	if (!type)
		return 0;
	json_int_t t = json_integer_value(json_object_get(ev, "time_ms"));
	if (t > 0)
		info->last_ms = t;

	if (!strcmp(type, "run.started")) {
		if (!info->name && json_is_string(json_object_get(ev, "name")))
			info->name = strdup(json_string_value(json_object_get(ev, "name")));
		if (!info->kind && json_is_string(json_object_get(ev, "kind")))
			info->kind = strdup(json_string_value(json_object_get(ev, "kind")));
	} else if (!strcmp(type, "run.finished") || !strcmp(type, "run.cancelled")) {
		int cancelled = type[4] == 'c';
		info->state = cancelled ? VB_RUN_CANCELLED :
			      json_is_true(json_object_get(ev, "success")) ? VB_RUN_SUCCEEDED :
									     VB_RUN_FAILED;
		info->duration_ms = json_integer_value(json_object_get(ev, "duration_ms"));
		free(info->error);
		info->error = NULL;
		const char *e = json_string_value(json_object_get(ev, "error"));
		if (e) {
			char buf[512];
			vb_obs_term_copy(buf, sizeof(buf), e);
			info->error = strdup(buf);
		}
		return 1;
	}
	return 0;
}

static int apply_line(struct vb_run_info *info, const char *line, size_t len)
{
	json_t *ev = json_loadb(line, len, 0, NULL);
	if (!ev)
		return 0;
	int final = json_is_object(ev) && apply_event(info, ev);
	json_decref(ev);
	return final;
}

/* The final event is (nearly always) the last line: look at the tail. */
static int scan_tail(struct vb_run_info *info, const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0)
		return 0;
	off_t off = st.st_size > TAIL_BYTES ? st.st_size - TAIL_BYTES : 0;
	_cleanup_free_ char *buf = malloc(TAIL_BYTES + 1);
	if (!buf)
		return 0;
	ssize_t n = pread(fd, buf, TAIL_BYTES, off);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *p = buf;
	if (off > 0) { /* the first line is cut */
		p = memchr(buf, '\n', (size_t)n);
		if (!p)
			return 0;
		p++;
	}
	int final = 0;
	for (char *nl; (nl = memchr(p, '\n', (size_t)(buf + n - p))); p = nl + 1)
		final |= apply_line(info, p, (size_t)(nl - p));
	return final;
}

static int64_t id_time_ms(const char *id)
{
	struct tm tm = { 0 };
	if (sscanf(id, "%4d%2d%2d-%2d%2d%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
		   &tm.tm_min, &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000;
}

static char *dup_meta_str(const json_t *meta, const char *key)
{
	const char *s = json_string_value(json_object_get(meta, key));
	if (!s)
		return NULL;
	char buf[256];
	vb_obs_term_copy(buf, sizeof(buf), s);
	return strdup(buf);
}

int vb_run_info_load(const char *runs_dir, const char *id, struct vb_run_info *info, vb_error *err)
{
	memset(info, 0, sizeof(*info));
	if (!vb_obs_run_id_ok(id))
		return vb_error_set(err, VB_E_USAGE, "invalid run id '%.80s'", id ? id : "");
	snprintf(info->id, sizeof(info->id), "%s", id);
	info->dir = vb_strfmt("%s/%s", runs_dir, id);
	_cleanup_free_ char *events = vb_strfmt("%s/%s/events.jsonl", runs_dir, id);
	if (!info->dir || !events)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");

	json_t *meta = read_json_file(info->dir, "meta.json");
	int alive = 0;
	if (meta) {
		info->name = dup_meta_str(meta, "name");
		info->kind = dup_meta_str(meta, "kind");
		json_int_t pid = json_integer_value(json_object_get(meta, "pid"));
		info->pid = pid > 0 && pid <= 0x7fffffff ? (long)pid : 0;
		json_t *st = json_object_get(meta, "pid_start");
		info->pid_start = json_is_integer(st) ? json_integer_value(st) : -1;
		info->started_ms = json_integer_value(json_object_get(meta, "started_ms"));
		alive = meta_alive(meta);
		const char *host = json_string_value(json_object_get(meta, "host"));
		char me[256] = "";
		info->other_host = host && gethostname(me, sizeof(me) - 1) == 0 && strcmp(host, me);
		json_decref(meta);
	}
	if (info->started_ms <= 0)
		info->started_ms = id_time_ms(id);

	/* the final event is the last line: a bounded tail is enough, and
	 * events.jsonl (log chunks included) can be large */
	int final = scan_tail(info, events);
	if (!final) {
		info->state = alive ? VB_RUN_RUNNING : VB_RUN_CRASHED;
		int64_t end = info->state == VB_RUN_RUNNING ? vb_obs_wall_ms() : info->last_ms;
		info->duration_ms = end > info->started_ms ? end - info->started_ms : 0;
	} else if (info->duration_ms <= 0 && info->last_ms > info->started_ms) {
		info->duration_ms = info->last_ms - info->started_ms;
	}
	return 0;
}

static int64_t started_ms(const char *runs_dir, const char *id)
{
	_cleanup_free_ char *dir = vb_strfmt("%s/%s", runs_dir, id);
	json_t *meta = dir ? read_json_file(dir, "meta.json") : NULL;
	int64_t ms = json_integer_value(json_object_get(meta, "started_ms"));
	json_decref(meta);
	return ms > 0 ? ms : id_time_ms(id);
}
