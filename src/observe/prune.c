/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Keeping the state directory bounded: the runs directory keeps its newest
 * VB_RUNS_KEEP runs on every new run, and `voidbox prune` / `voidbox rm`
 * delete finished run records and kept VM console logs on request.  Nothing
 * here reads more than a run's meta.json and the tail of its events.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "observe/observe_int.h"
#include "observe/runs.h"
#include "util/util.h"

/* A run directory without meta.json this young may be another process's
 * run between its mkdir and its first write. */
#define YOUNG_SECS 60
#define DU_DEPTH 8

static int removable(const char *runs_dir, const char *id)
{
	_cleanup_free_ char *meta = vb_strfmt("%s/%s/meta.json", runs_dir, id);
	_cleanup_free_ char *dir = vb_strfmt("%s/%s", runs_dir, id);
	if (!meta || !dir)
		return 0;
	struct stat st;
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return 0;
	if (access(meta, F_OK) < 0 && time(NULL) - st.st_mtime < YOUNG_SECS)
		return 0;
	struct vb_run_info info;
	int ok = vb_run_info_load(runs_dir, id, &info, NULL) == 0 && info.state != VB_RUN_RUNNING;
	vb_run_info_clear(&info);
	return ok;
}

void vb_obs_prune(const char *runs_dir, const char *keep_id, size_t keep)
{
	char **ids;
	size_t n;
	if (vb_runs_list(runs_dir, 0, &ids, &n, NULL) < 0)
		return;
	size_t excess = n > keep ? n - keep : 0;
	for (size_t i = 0; i < n && excess > 0; i++) {
		if (keep_id && !strcmp(ids[i], keep_id))
			continue;
		if (!removable(runs_dir, ids[i]))
			continue;
		_cleanup_free_ char *dir = vb_strfmt("%s/%s", runs_dir, ids[i]);
		if (dir && vb_rm_rf(dir) == 0)
			excess--;
	}
	vb_runs_list_free(ids, n);
}

/* Disk space of (name) below (parent): allocated blocks, symlinks not
 * followed, at most DU_DEPTH levels (a run record has three). */
static uint64_t du_at(int parent, const char *name, int depth)
{
	struct stat st;
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	uint64_t total = (uint64_t)st.st_blocks * 512;
	if (!S_ISDIR(st.st_mode) || depth >= DU_DEPTH)
		return total;
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return total;
	}
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			total += du_at(dirfd(d), e->d_name, depth + 1);
	closedir(d);
	return total;
}

int vb_run_remove(const char *runs_dir, const char *id, uint64_t *bytes, vb_error *err)
{
	if (!vb_obs_run_id_ok(id))
		return vb_error_set(err, VB_E_USAGE, "invalid run id '%.80s'", id ? id : "");
	_cleanup_free_ char *dir = vb_strfmt("%s/%s", runs_dir, id);
	if (!dir)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	uint64_t size = du_at(AT_FDCWD, dir, 0);
	if (vb_rm_rf(dir) < 0)
		return vb_error_errno(err, errno, "cannot remove %s", dir);
	if (bytes)
		*bytes = size;
	return 0;
}

char *vb_vm_logs_dir(vb_error *err)
{
	_cleanup_free_ char *state = vb_state_dir(err);
	if (!state)
		return NULL;
	char *dir = vb_strfmt("%s/vm-logs", state);
	if (!dir)
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
	return dir;
}

/* When a finished run last changed: its final (or last) event, else its
 * start. */
static int64_t run_end_ms(const struct vb_run_info *info)
{
	if (info->last_ms > 0)
		return info->last_ms;
	return info->started_ms + (info->duration_ms > 0 ? info->duration_ms : 0);
}

static void report(const struct vb_prune_opts *o, const char *what, const char *name,
		   const char *detail, uint64_t bytes)
{
	if (o->fn)
		o->fn(&(struct vb_prune_item){ .what = what, .name = name, .detail = detail, .bytes = bytes },
		      o->arg);
}

static int prune_runs(const char *runs_dir, const struct vb_prune_opts *o, int64_t now,
		      struct vb_prune_total *t, vb_error *err)
{
	char **ids;
	size_t n;
	if (vb_runs_list(runs_dir, 0, &ids, &n, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (!removable(runs_dir, ids[i]))
			continue; /* running, or being created */
		struct vb_run_info info;
		if (vb_run_info_load(runs_dir, ids[i], &info, err) < 0) {
			vb_run_info_clear(&info);
			rc = -1;
			break;
		}
		int old = !o->older_than_ms || now - run_end_ms(&info) >= o->older_than_ms;
		const char *state = vb_run_state_name(info.state);
		if (old && o->dry_run) {
			_cleanup_free_ char *dir = vb_strfmt("%s/%s", runs_dir, ids[i]);
			uint64_t size = dir ? du_at(AT_FDCWD, dir, 0) : 0;
			report(o, "run", ids[i], state, size);
			t->runs++;
			t->bytes += size;
		} else if (old) {
			uint64_t size = 0;
			vb_error e = { 0 };
			if (vb_run_remove(runs_dir, ids[i], &size, &e) == 0) {
				report(o, "run", ids[i], state, size);
				t->runs++;
				t->bytes += size;
			} else {
				report(o, "error", ids[i], e.msg, 0);
				t->failed++;
			}
		}
		vb_run_info_clear(&info);
	}
	vb_runs_list_free(ids, n);
	return rc;
}

/* Only the files the sandbox keeps there: vm-<hex>.console.log. */
static int vm_log_name(const char *name)
{
	size_t n = strlen(name);
	return n > 7 && !strncmp(name, "vm-", 3) && !strcmp(name + n - 4, ".log") &&
	       !strchr(name, '/');
}

static int prune_vm_logs(const char *dir, const struct vb_prune_opts *o, int64_t now,
			 struct vb_prune_total *t, vb_error *err)
{
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? 0 : vb_error_errno(err, errno, "cannot open %s", dir);
	int lfd = dup(dfd);
	DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
	if (!d) {
		if (lfd >= 0)
			close(lfd);
		return vb_error_errno(err, errno, "cannot list %s", dir);
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		struct stat st;
		if (!vm_log_name(e->d_name) || fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		int64_t mtime = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
		if (o->older_than_ms && now - mtime < o->older_than_ms)
			continue;
		uint64_t size = (uint64_t)st.st_blocks * 512;
		if (!o->dry_run && unlinkat(dfd, e->d_name, 0) < 0 && errno != ENOENT) {
			char why[256];
			snprintf(why, sizeof(why), "%s", strerror(errno));
			report(o, "error", e->d_name, why, 0);
			t->failed++;
			continue;
		}
		report(o, "vm-log", e->d_name, NULL, size);
		t->vm_logs++;
		t->bytes += size;
	}
	closedir(d);
	return 0;
}

int vb_prune(const struct vb_prune_opts *o, struct vb_prune_total *total, vb_error *err)
{
	memset(total, 0, sizeof(*total));
	_cleanup_free_ char *runs = vb_runs_dir(err);
	_cleanup_free_ char *logs = runs ? vb_vm_logs_dir(err) : NULL;
	if (!logs)
		return -1;
	int64_t now = vb_obs_wall_ms();
	if (prune_runs(runs, o, now, total, err) < 0)
		return -1;
	return prune_vm_logs(logs, o, now, total, err);
}
