/* SPDX-License-Identifier: Apache-2.0 */
/*
 * voidbox snapshot warm: make the warm snapshot of the default VM
 * configuration (docs/snapshots.md, "Warm by default"), and its start in
 * the background by an exec that found none.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "run/image.h"
#include "snap/snap.h"
#include "util/util.h"

#define WARM_KEEP_OTHERS 2u /* older warm snapshots kept besides the current one */
#define WARM_RETRY_S 3600  /* after a failed background make, execs wait this long */

/* <store>/.warm-failed-NAME: a background make of NAME failed at its mtime */
static char *failed_path(const char *root, const char *name)
{
	return vb_strfmt("%s/.warm-failed-%s", root, name);
}

/* Boot a VM with (cfg), save it as (name).  No setup: pristine. */
static int make(struct vb_sandbox_config *cfg, const char *name, char id[65], vb_error *err)
{
	_cleanup_free_ char *staging = vb_snap_staging(err);
	if (!staging)
		return -1;
	cfg->save_dir = staging;
	cfg->name = "warm";
	vb_sandbox *sb = vb_sandbox_start(cfg, err);
	int rc = sb ? vb_sandbox_save(sb, name, id, err) : -1;
	vb_sandbox_free(sb);
	vb_rm_rf(staging); /* gone already once stored */
	cfg->save_dir = NULL;
	return rc;
}

static int warm(struct vb_sandbox_config *cfg, int background);

int vb_cli_snapshot_warm(int argc, char **argv)
{
	enum { OPT_CPUS = 256, OPT_ACCEL, OPT_BACKGROUND, OPT_IMAGE, OPT_PULL };
	static const struct option longopts[] = {
		{ "image", required_argument, NULL, OPT_IMAGE },
		{ "pull", required_argument, NULL, OPT_PULL },
		{ "memory", required_argument, NULL, 'm' },
		{ "cpus", required_argument, NULL, OPT_CPUS },
		{ "accel", required_argument, NULL, OPT_ACCEL },
		{ "background", no_argument, NULL, OPT_BACKGROUND },
		{ NULL, 0, NULL, 0 },
	};
	vb_error err = { 0 };
	struct vb_sandbox_config cfg = { 0 };
	unsigned long v;
	int c, background = 0, pull = VB_OCI_PULL_MISSING;
	const char *image = NULL;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:m:", longopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (vb_cli_parse_memory("snapshot warm", optarg, &cfg.memory_mib, &err) < 0)
				return vb_cli_fail(&err);
			break;
		case OPT_CPUS:
			if (vb_cli_parse_uint(optarg, 64, &v) < 0 || v == 0) {
				vb_error_set(&err, VB_E_USAGE, "--cpus: expected 1..64");
				return vb_cli_fail(&err);
			}
			cfg.vcpus = (unsigned)v;
			break;
		case OPT_ACCEL:
			if (vb_cli_parse_accel(optarg, &cfg.accel, &err) < 0)
				return vb_cli_fail(&err);
			break;
		case OPT_BACKGROUND:
			background = 1;
			break;
		case OPT_IMAGE:
			image = optarg;
			break;
		case OPT_PULL:
			if (vb_run_image_pull_parse(optarg, &pull) < 0) {
				vb_error_set(&err, VB_E_USAGE, "--pull: expected missing, always or never");
				return vb_cli_fail(&err);
			}
			break;
		default:
			vb_cli_getopt_fail("snapshot warm", c, argv, longopts, &err);
			return vb_cli_fail(&err);
		}
	}
	if (optind < argc) {
		vb_error_set(&err, VB_E_USAGE, "snapshot warm takes no command (it is pristine)");
		return vb_cli_fail(&err);
	}
	/* an image's VM (exec --image): the warm name covers its root disk's
	 * identity, so the maker names what it boots, not what was asked */
	struct vb_run_image im = { 0 };
	if (image && vb_run_image_prepare(image, pull, background ? NULL : stderr, &im, &cfg,
					  &err) < 0) {
		vb_run_image_free(&im);
		vb_error_prefix(&err, "--image");
		return vb_cli_fail(&err);
	}
	int code = warm(&cfg, background);
	vb_run_image_free(&im);
	return code;
}

/* Find or make the warm snapshot of (cfg). */
static int warm(struct vb_sandbox_config *cfg, int background)
{
	vb_error err = { 0 };
	char name[VB_WARM_NAME_MAX];
	if (vb_sandbox_warm_name(cfg, name, sizeof(name), &err) < 0)
		return vb_cli_fail(&err);
	_cleanup_free_ char *root = vb_snap_root(&err);
	_cleanup_free_ char *lock = root ? vb_strfmt("%s/.warm.lock", root) : NULL;
	if (!lock)
		return vb_cli_fail(&err);
	/* One maker at a time: concurrent first execs start one VM, not N.
	 * The others wait their turn (never give up on a busy lock: whoever
	 * holds it may not be making this snapshot), then find it made. */
	_cleanup_close_ int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	int locked = lfd >= 0 ? flock(lfd, LOCK_EX) : -1;
	while (locked < 0 && lfd >= 0 && errno == EINTR)
		locked = flock(lfd, LOCK_EX);
	if (locked < 0) {
		vb_error_errno(&err, errno, "%s", lock);
		return vb_cli_fail(&err);
	}
	_cleanup_free_ char *failed = failed_path(root, name);
	struct stat st;
	if (background && failed && stat(failed, &st) == 0 &&
	    time(NULL) - st.st_mtime < WARM_RETRY_S)
		return 0; /* the maker before this one failed: not again yet */
	struct vb_snap snap;
	_cleanup_free_ char *dir = NULL;
	char id[65] = "";
	if (vb_snap_open(name, &snap, &dir, &err) == 0 && vb_snap_verify(&snap, dir, 0, &err) == 0) {
		snprintf(id, sizeof(id), "%s", snap.id);
	} else {
		if (dir) /* damaged: replaced (a base of diffs stays, unnamed) */
			vb_snap_retire(&snap, &err);
		vb_error_clear(&err);
		if (make(cfg, name, id, &err) < 0) {
			/* every later exec would try again, a VM each: not for a
			 * while; the reason is in the stamp (and .warm.log) */
			if (background && failed)
				vb_write_file_atomic(failed, err.msg, strlen(err.msg), 0600);
			vb_error_prefix(&err, "cannot make the warm snapshot");
			return vb_cli_fail(&err);
		}
		if (failed)
			unlink(failed);
	}
	vb_error e = { 0 };
	vb_sandbox_warm_evict(name, WARM_KEEP_OTHERS, &e);
	if (!background)
		printf("%s\n", id);
	return 0;
}

void vb_cli_warm_spawn(const struct vb_sandbox_config *cfg)
{
	vb_error err = { 0 };
	_cleanup_free_ char *root = vb_snap_root(&err);
	/* its VM's runtime directory is the store's, not the caller's: not
	 * one of the caller's VMs (`voidbox ps`), and nothing of it is left in
	 * the caller's runtime directory when the caller exits */
	_cleanup_free_ char *run = root ? vb_strfmt("%s/.run", root) : NULL;
	if (!run || (mkdir(run, 0700) < 0 && errno != EEXIST))
		return;
	char name[VB_WARM_NAME_MAX];
	if (vb_sandbox_warm_name(cfg, name, sizeof(name), &err) < 0)
		return;
	_cleanup_free_ char *failed = failed_path(root, name);
	struct stat st;
	if (!failed || (stat(failed, &st) == 0 && time(NULL) - st.st_mtime < WARM_RETRY_S))
		return;
	_cleanup_free_ char *logpath = vb_strfmt("%s/.warm.log", root);
	if (!logpath)
		return;
	char mem[32], cpus[32];
	snprintf(mem, sizeof(mem), "%u", cfg->memory_mib ? cfg->memory_mib : 1024u);
	snprintf(cpus, sizeof(cpus), "%u", cfg->vcpus ? cfg->vcpus : 1u);
	/* an image VM's maker takes the image from the store, never the
	 * network: the exec just had it */
	const char *argv[] = { "voidbox", "snapshot", "warm", "--background", "--memory", mem,
			       "--cpus", cpus, "--accel", vb_accel_name(cfg->accel),
			       cfg->root_ref ? "--image" : NULL, cfg->root_ref, "--pull", "never",
			       NULL };
	pid_t pid = fork();
	if (pid < 0)
		return;
	if (pid == 0) {
		/* detached: its own session, no terminal, our stdio gone */
		if (setsid() < 0 || fork() != 0)
			_exit(0);
		/* what it says (an error, a sanitizer's report) is kept in
		 * <store>/.warm.log, the last maker's only */
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		int log = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 ||
		    dup2(log >= 0 ? log : null, 2) < 0)
			_exit(127);
		syscall(SYS_close_range, 3u, ~0u, 0u);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* the user's next commands come first */
		if (setpriority(PRIO_PROCESS, 0, 10) < 0) { /* best effort */
		}
		setenv("XDG_RUNTIME_DIR", run, 1);
		execv("/proc/self/exe", (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	int wst;
	while (waitpid(pid, &wst, 0) < 0 && errno == EINTR) {
	}
}
