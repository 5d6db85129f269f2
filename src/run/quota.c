/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The named outputs quota (see quota.h): measure, watch, stop the VM.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

#include "run/engine.h"
#include "run/quota.h"
#include "util/util.h"

/* Between two measurements the watcher rests this long plus four times
 * as long as the last one took (so a big tree costs at most a fifth of a
 * core); the write counter covers data in between. */
#define REST_MS 20
#define TICK_MS 10

/* A file's cost: its size or its disk use, whichever is larger (a sparse
 * file counts at its full size: copying it would). */
static uint64_t cost(const struct stat *st)
{
	uint64_t disk = (uint64_t)st->st_blocks * 512;
	uint64_t size = st->st_size > 0 ? (uint64_t)st->st_size : 0;
	return disk > size ? disk : size;
}

/* Takes (dfd).  One descriptor per level: the depth cap bounds them. */
static void walk(int dfd, int depth, struct vb_quota_use *use, uint64_t *bytes)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)) && use->entries <= VB_QUOTA_MAX_ENTRIES) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone meanwhile */
		use->entries++;
		*bytes += cost(&st);
		if (!S_ISDIR(st.st_mode))
			continue;
		if (depth > VB_QUOTA_MAX_DEPTH) {
			use->too_deep = 1;
			continue;
		}
		int fd = openat(dirfd(d), e->d_name,
				O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
		if (fd < 0 && errno == EPERM) /* O_NOATIME on a file not ours */
			fd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			walk(fd, depth + 1, use, bytes);
	}
	closedir(d);
}

void vb_quota_measure(const char *const *dirs, size_t n, struct vb_quota_use *use)
{
	memset(use, 0, sizeof(*use));
	for (size_t i = 0; i < n; i++) {
		uint64_t bytes = 0;
		int fd = open(dirs[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			walk(fd, 1, use, &bytes);
		use->bytes += bytes;
		if (bytes > use->biggest_bytes) {
			use->biggest = i;
			use->biggest_bytes = bytes;
		}
	}
}

int vb_quota_over(const struct vb_quota_use *use, uint64_t limit)
{
	return use->bytes > limit || use->entries > VB_QUOTA_MAX_ENTRIES || use->too_deep;
}

struct vb_quota {
	vb_sandbox *sb;
	char **dirs;
	const char **names; /* borrowed from the spec */
	size_t n;
	uint64_t limit;
	pthread_t tid;
	int started;
	int stop_fd;        /* eventfd: the watcher ends when readable */
	atomic_int over;    /* set by whoever saw it first */
	int frozen;
	struct vb_quota_use seen; /* when (over): the measurement that said so */
	pthread_mutex_t mu;       /* guards (seen) */
};

/* Record a measurement that is over the quota, once. */
static int note_over(vb_quota *q, const struct vb_quota_use *use)
{
	pthread_mutex_lock(&q->mu);
	int first = !atomic_exchange(&q->over, 1);
	if (first)
		q->seen = *use;
	pthread_mutex_unlock(&q->mu);
	return first;
}

/* Over: say why (the first to see it says it), then kill the VM. */
static void kill_over(vb_quota *q, const struct vb_quota_use *use)
{
	note_over(q, use); /* first: the owner must find it when its exec fails */
	vb_error ignore = { 0 };
	vb_sandbox_signal(q->sb, SIGKILL, &ignore);
}

/* One measurement, which becomes the new base: (*base_w) the VMM's write
 * counter, (*base_bytes) what the outputs held.  (frozen): the VM is
 * stopped around it, so the base is exact.  1 when over (the VM killed). */
static int check(vb_quota *q, int frozen, int *counted, uint64_t *base_w, uint64_t *base_bytes,
		 int64_t *took)
{
	vb_error ignore = { 0 };
	int64_t t0 = vb_now_ms();
	if (frozen)
		vb_sandbox_signal(q->sb, SIGSTOP, &ignore);
	/* the counter first: what is written during the walk counts again
	 * in the next estimate, never not at all */
	if (*counted && vb_sandbox_vmm_written(q->sb, base_w, &ignore) < 0)
		*counted = 0;
	struct vb_quota_use use;
	vb_quota_measure((const char *const *)q->dirs, q->n, &use);
	*took = vb_now_ms() - t0;
	if (vb_quota_over(&use, q->limit)) {
		kill_over(q, &use);
		return 1;
	}
	if (frozen)
		vb_sandbox_signal(q->sb, SIGCONT, &ignore);
	*base_bytes = use.bytes;
	return 0;
}

/* What the guest can write through a throttled mount in (ms), plus the
 * throttle's burst (a tenth of a second's worth). */
static uint64_t can_write(int64_t ms)
{
	uint64_t rate = (uint64_t)VB_QUOTA_WRITE_MIB_S << 20;
	return rate * (uint64_t)(ms > 0 ? ms : 0) / 1000 + rate / 10;
}

/* Two clocks.  Every TICK_MS the VMM's write counter: what the outputs
 * hold is at most the last measurement plus everything written since, and
 * once that estimate passes the quota the VM is frozen and measured at
 * rest (killed when over, else the estimate starts again from the truth).
 * A writer thus gets at most TICK_MS of writes, plus the throttle's burst,
 * past the quota, however big the tree.  And a full measurement every
 * REST_MS plus four times its own duration, for what no byte counter sees
 * (entries, directories, sparse sizes); done frozen when the guest could
 * write past the quota while it runs unwatched. */
static void *watch(void *arg)
{
	vb_quota *q = arg;
	vb_error ignore = { 0 };
	uint64_t base_w = 0, base_bytes = 0, w = 0;
	int counted = 1;
	int64_t took = 0;
	if (check(q, 0, &counted, &base_w, &base_bytes, &took))
		return NULL;
	for (;;) {
		int64_t next = vb_now_ms() + REST_MS + 4 * (took < 10000 ? took : 10000);
		for (int64_t now = vb_now_ms(); now < next; now = vb_now_ms()) {
			struct pollfd p = { .fd = q->stop_fd, .events = POLLIN };
			int64_t wait = next - now < TICK_MS ? next - now : TICK_MS;
			int rc = poll(&p, 1, counted ? (int)wait : (int)(next - now));
			if (rc > 0 || (rc < 0 && errno != EINTR))
				return NULL;
			if (!counted)
				continue;
			if (vb_sandbox_vmm_written(q->sb, &w, &ignore) < 0) {
				counted = 0;
				continue;
			}
			if (base_bytes + (w - base_w) > q->limit &&
			    check(q, 1, &counted, &base_w, &base_bytes, &took))
				return NULL;
		}
		if (counted && vb_sandbox_vmm_written(q->sb, &w, &ignore) < 0)
			counted = 0;
		uint64_t est = base_bytes + (counted ? w - base_w : 0);
		int frozen = counted && est + can_write(2 * took + 50) > q->limit;
		if (check(q, frozen, &counted, &base_w, &base_bytes, &took))
			return NULL;
	}
}

static void stop_watcher(vb_quota *q)
{
	if (!q->started)
		return;
	uint64_t one = 1;
	ssize_t w = write(q->stop_fd, &one, sizeof(one));
	(void)w; /* an eventfd write fails only on overflow: not after one write */
	pthread_join(q->tid, NULL);
	q->started = 0;
}

void vb_quota_free(vb_quota *q)
{
	if (!q)
		return;
	stop_watcher(q);
	if (!q->frozen) { /* background writers stop here, not at teardown */
		vb_error ignore = { 0 };
		vb_sandbox_signal(q->sb, SIGSTOP, &ignore);
	}
	if (q->stop_fd >= 0)
		close(q->stop_fd);
	for (size_t i = 0; i < q->n; i++)
		free(q->dirs[i]);
	free(q->dirs);
	free(q->names);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

int vb_quota_start(struct vb_run *r, size_t bi, vb_sandbox *sb, vb_quota **out, vb_error *err)
{
	const struct vb_spec_box *b = &r->spec->pipeline.boxes[bi];
	*out = NULL;
	if (!b->n_outputs)
		return 0;
	vb_quota *q = calloc(1, sizeof(*q));
	if (!q)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	pthread_mutex_init(&q->mu, NULL);
	q->stop_fd = -1;
	q->sb = sb;
	const struct vb_spec_limits *l = b->vm.limits;
	uint64_t mb = l && l->outputs_mb.set ? (uint64_t)l->outputs_mb.v : VB_QUOTA_DEFAULT_MB;
	q->limit = mb << 20;
	q->dirs = calloc(b->n_outputs, sizeof(*q->dirs));
	q->names = calloc(b->n_outputs, sizeof(*q->names));
	if (!q->dirs || !q->names)
		goto oom;
	for (size_t o = 0; o < b->n_outputs; o++, q->n++) {
		q->names[o] = b->outputs[o].name.s;
		q->dirs[o] = vb_strfmt("%s/outputs/%s", r->run_dir, b->outputs[o].name.s);
		if (!q->dirs[o])
			goto oom;
	}
	q->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (q->stop_fd < 0) {
		vb_error_errno(err, errno, "eventfd");
		goto fail;
	}
	if (pthread_create(&q->tid, NULL, watch, q) != 0) {
		vb_error_set(err, VB_E_RUNTIME, "cannot start the outputs quota watcher");
		goto fail;
	}
	q->started = 1;
	*out = q;
	return 0;
oom:
	vb_error_set(err, VB_E_RUNTIME, "out of memory");
fail:
	q->frozen = 1; /* nothing ran: leave the VM alone */
	vb_quota_free(q);
	return -1;
}

static double mib(uint64_t b)
{
	return (double)b / (1024.0 * 1024.0);
}

int vb_quota_fail_unit(vb_quota *q, struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb,
		       int final)
{
	if (!q)
		return 0;
	if (final && !atomic_load(&q->over)) {
		stop_watcher(q);
		vb_error ignore = { 0 };
		vb_sandbox_signal(sb, SIGSTOP, &ignore);
		q->frozen = 1;
		struct vb_quota_use use;
		vb_quota_measure((const char *const *)q->dirs, q->n, &use);
		if (vb_quota_over(&use, q->limit))
			note_over(q, &use);
	}
	if (!atomic_load(&q->over))
		return 0;
	pthread_mutex_lock(&q->mu);
	struct vb_quota_use s = q->seen;
	pthread_mutex_unlock(&q->mu);
	const char *name = q->names[s.biggest];
	char what[200];
	if (s.too_deep)
		snprintf(what, sizeof(what), "it nests directories deeper than %d levels",
			 VB_QUOTA_MAX_DEPTH);
	else if (s.entries > VB_QUOTA_MAX_ENTRIES)
		snprintf(what, sizeof(what), "more than %u files and directories",
			 VB_QUOTA_MAX_ENTRIES);
	else if (q->n == 1)
		snprintf(what, sizeof(what), "%.1f MiB written, limits.outputs_mb is %llu",
			 mib(s.bytes), (unsigned long long)(q->limit >> 20));
	else
		snprintf(what, sizeof(what),
			 "%.1f MiB written to the box's outputs in all ('%s' holds %.1f MiB), "
			 "limits.outputs_mb is %llu",
			 mib(s.bytes), name, mib(s.biggest_bytes),
			 (unsigned long long)(q->limit >> 20));
	vb_run_unit_fail(r, u, sb, VB_E_OK, "output '%s' is over its quota: %s; the VM was stopped",
			 name, what);
	return 1;
}
