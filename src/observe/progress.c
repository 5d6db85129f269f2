/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Live progress: folds run events into one row per stage and shows them,
 * redrawn in place on a terminal (every event plus a ticker thread for the
 * clocks and spinners), as plain lines otherwise.  Log chunks are never
 * shown: the engine prints the run's output itself.
 */
#include "observe/observe.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "observe/progress_int.h"
#include "util/term.h"

static int env_utf8(void)
{
	static const char *const vars[] = { "LC_ALL", "LC_CTYPE", "LANG" };
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *v = getenv(vars[i]);
		if (v && *v)
			return strcasestr(v, "utf-8") || strcasestr(v, "utf8");
	}
	return 0;
}

static void *ticker_main(void *arg)
{
	struct vb_progress *p = arg;
	pthread_mutex_lock(&p->lock);
	while (!p->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += VB_PROGRESS_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&p->cond, &p->lock, &ts);
		if (!p->stopping && !p->finished && !p->held && (p->n_rows || p->run != PR_NONE)) {
			p->tick++;
			vb_progress_draw(p, vb_obs_wall_ms());
		}
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct vb_progress *vb_progress_new(FILE *out, int is_tty, int color)
{
	if (!out)
		return NULL;
	struct vb_progress *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->rows = calloc(VB_PROGRESS_ROWS_MAX, sizeof(*p->rows));
	if (!p->rows) {
		free(p);
		return NULL;
	}
	p->out = out;
	p->tty = !!is_tty;
	p->color = p->tty && color;
	p->utf8 = env_utf8();
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (p->tty) {
		/* the ticker takes no signals: they belong to the caller's threads */
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		p->ticker_on = pthread_create(&p->ticker, NULL, ticker_main, p) == 0;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	return p;
}

/* Stop and join the ticker once, whoever asks first; lock not held. */
static void stop_ticker(struct vb_progress *p)
{
	pthread_mutex_lock(&p->lock);
	int join = p->ticker_on && !p->stopping;
	p->stopping = 1;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	if (join)
		pthread_join(p->ticker, NULL);
}

void vb_progress_free(struct vb_progress *p)
{
	if (!p)
		return;
	stop_ticker(p);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	vb_progress_rows_free(p);
	free(p->rows);
	free(p);
}

void vb_progress_hold(struct vb_progress *p, int on)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->held = !!on;
	if (!on && p->tty) {
		p->drawn = 0; /* the old frame went with the other program's screen */
		if (!p->finished)
			vb_progress_draw(p, vb_obs_wall_ms());
	}
	pthread_mutex_unlock(&p->lock);
}

void vb_progress_follow(struct vb_progress *p, int on)
{
	if (p)
		p->follow = !!on;
}

static void copy(char *dst, size_t size, const char *s)
{
	vb_term_copy(dst, size, s, 0);
}

static struct vb_prow *find_row(struct vb_progress *p, const char *stage, int create, int64_t t)
{
	char name[VB_STAGE_NAME_MAX + 1];
	copy(name, sizeof(name), stage ? stage : "?");
	for (size_t i = 0; i < p->n_rows; i++)
		if (!strcmp(p->rows[i].name, name))
			return &p->rows[i];
	if (!create)
		return NULL;
	if (p->n_rows >= VB_PROGRESS_ROWS_MAX) {
		p->dropped++;
		return NULL;
	}
	struct vb_prow *r = &p->rows[p->n_rows];
	memset(r, 0, sizeof(*r));
	memcpy(r->name, name, sizeof(name));
	r->queued_ms = t;
	r->exit_code = -1;
	r->group = ++p->next_group;
	p->n_rows++;
	return r;
}

/* A stage that starts while the group of the stage queued just before it
 * still runs is a branch beside it (a fan-out, or workflow steps running
 * together): it joins that group, so its line stays with theirs. */
static void join_running_group(struct vb_progress *p, struct vb_prow *r)
{
	size_t i = (size_t)(r - p->rows);
	if (i == 0 || !p->rows[i - 1].started_ms)
		return;
	unsigned g = p->rows[i - 1].group;
	for (size_t j = 0; j < p->n_rows; j++) {
		const struct vb_prow *o = &p->rows[j];
		if (j != i && o->group == g && (o->st == P_BOOTING || o->st == P_RUNNING)) {
			r->group = g;
			return;
		}
	}
}

static void fold(struct vb_progress *p, const struct vb_event *ev, int64_t t, struct vb_prow **rowp)
{
	struct vb_prow *r = NULL;
	if (p->run_start == 0)
		p->run_start = t;
	switch (ev->type) {
	case VB_EV_RUN_STARTED:
		p->run = PR_RUNNING;
		p->run_start = t;
		copy(p->run_id, sizeof(p->run_id), ev->run_id);
		copy(p->name, sizeof(p->name), ev->name);
		copy(p->kind, sizeof(p->kind), ev->kind);
		break;
	case VB_EV_STAGE_QUEUED:
		r = find_row(p, ev->stage, 1, t);
		if (r)
			r->st = P_QUEUED;
		break;
	case VB_EV_STAGE_STARTED:
		if ((r = find_row(p, ev->stage, 1, t))) {
			if (!r->started_ms)
				join_running_group(p, r);
			r->started_ms = t;
			/* with a VM: the one its workflow booted, nothing boots */
			r->st = ev->vm_id ? P_RUNNING : P_BOOTING;
			if (ev->vm_id) {
				copy(r->vm_id, sizeof(r->vm_id), ev->vm_id);
				copy(r->accel, sizeof(r->accel), ev->accel);
				copy(r->isolation, sizeof(r->isolation), ev->isolation);
			}
		}
		break;
	case VB_EV_VM_BOOTED:
		if ((r = find_row(p, ev->stage, 1, t))) {
			if (!r->started_ms) {
				join_running_group(p, r);
				r->started_ms = t;
			}
			r->st = P_RUNNING;
			copy(r->vm_id, sizeof(r->vm_id), ev->vm_id);
			copy(r->accel, sizeof(r->accel), ev->accel);
			copy(r->isolation, sizeof(r->isolation), ev->isolation);
			/* how it started (a caller's event may not say: nothing) */
			r->restored = ev->snapshot != NULL;
			if (ev->snapshot)
				snprintf(r->boot, sizeof(r->boot), "restored from %.12s in %lld ms",
					 ev->snapshot, (long long)ev->boot_ms);
			else if (ev->boot_ms > 0)
				snprintf(r->boot, sizeof(r->boot), "booted cold in %lld ms",
					 (long long)ev->boot_ms);
			else
				r->boot[0] = '\0';
		}
		break;
	case VB_EV_STAGE_COMPLETED:
	case VB_EV_STAGE_FAILED:
	case VB_EV_STAGE_SKIPPED:
		if ((r = find_row(p, ev->stage, 1, t))) {
			r->st = ev->type == VB_EV_STAGE_COMPLETED ? P_DONE :
				ev->type == VB_EV_STAGE_FAILED	  ? P_FAILED :
								    P_SKIPPED;
			r->ended_ms = t;
			r->exit_code = ev->type == VB_EV_STAGE_SKIPPED ? -1 : ev->exit_code;
			r->duration_ms = ev->duration_ms > 0 ? ev->duration_ms :
					 r->started_ms ? t - r->started_ms : 0;
			copy(r->why, sizeof(r->why), ev->type == VB_EV_STAGE_COMPLETED ? NULL : ev->error);
		}
		break;
	case VB_EV_RUN_FINISHED:
	case VB_EV_RUN_CANCELLED:
		p->run = ev->type == VB_EV_RUN_CANCELLED ? PR_CANCELLED :
			 ev->success			 ? PR_SUCCEEDED :
							   PR_FAILED;
		p->run_duration = ev->duration_ms > 0 ? ev->duration_ms : t - p->run_start;
		copy(p->run_error, sizeof(p->run_error), ev->error);
		break;
	case VB_EV_LOG_CHUNK:
		vb_progress_chunk(p, find_row(p, ev->stage, 0, t), ev);
		break;
	case VB_EV_AGENT_MESSAGE:
		r = find_row(p, ev->stage, 0, t);
		if (p->follow) /* an agent's words, as they come, like its output */
			vb_progress_says(p, r, ev->text);
		break;
	case VB_EV_LLM_REQUEST:
	case VB_EV_AGENT_TOOL:
	case VB_EV_AGENT_RESULT:
	case VB_EV_NET_DENIED:
	case VB_EV_NET_PUBLISHED:
	case VB_EV_NET_SUMMARY:
	case VB_EV_SKILL_PROVISIONED:
		r = find_row(p, ev->stage, 0, t); /* shown as a line, no state */
		break;
	}
	*rowp = r;
}

void vb_progress_event(const struct vb_event *ev, void *progress)
{
	struct vb_progress *p = progress;
	if (!p || !ev || !vb_event_name(ev->type))
		return;
	int64_t t = ev->time_ms > 0 ? ev->time_ms : vb_obs_wall_ms();
	int final = ev->type == VB_EV_RUN_FINISHED || ev->type == VB_EV_RUN_CANCELLED;
	pthread_mutex_lock(&p->lock);
	if (p->finished) {
		pthread_mutex_unlock(&p->lock);
		return;
	}
	struct vb_prow *row;
	int was_running = 0;
	if (ev->type == VB_EV_VM_BOOTED) {
		/* a workflow step shown running on its VM already: nothing new */
		const struct vb_prow *o = find_row(p, ev->stage, 0, t);
		was_running = o && o->st == P_RUNNING && ev->vm_id && !strcmp(o->vm_id, ev->vm_id);
	}
	if (p->held) { /* taken in, shown when the terminal is back */
		fold(p, ev, t, &row);
		pthread_mutex_unlock(&p->lock);
		return;
	}
	if (ev->type == VB_EV_STAGE_COMPLETED || ev->type == VB_EV_STAGE_FAILED)
		vb_progress_flush(p, find_row(p, ev->stage, 0, t));
	p->lines_printed = 0;
	fold(p, ev, t, &row);
	if (ev->type == VB_EV_LOG_CHUNK || (ev->type == VB_EV_AGENT_MESSAGE && p->follow)) {
		/* output changes no state: the frame comes back below new lines */
		if (p->tty && p->lines_printed)
			vb_progress_draw(p, vb_obs_wall_ms());
	} else if (p->tty) {
		vb_progress_draw(p, final ? t : vb_obs_wall_ms());
	} else if (!was_running) {
		vb_progress_plain(p, ev, row);
	}
	if (final) {
		p->finished = 1;
		vb_progress_failures(p);
	}
	pthread_mutex_unlock(&p->lock);
	if (final)
		stop_ticker(p);
}
