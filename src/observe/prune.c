/* SPDX-License-Identifier: Apache-2.0 */
/* Keep the runs directory bounded: the newest VB_RUNS_KEEP runs stay. */
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
