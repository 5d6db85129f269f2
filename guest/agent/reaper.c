/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reaper.c — PID 1 reaps every process; exec workers learn their child's
 * status through a table pid -> entry.
 *
 * The reaper waits with WNOWAIT first and looks the pid up while the child
 * is still a zombie: as long as the zombie exists neither its pid nor its
 * process group id can be reused, so the entry's callback may still signal
 * the group (exec.c kills what is left of it) before reaping.  Entries are
 * inserted with the table lock held across fork(), so an exit is never
 * looked up before its entry exists.  Unknown pids are orphans that were
 * reparented to us: just reaped.
 */
#include "agent.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t table_cond = PTHREAD_COND_INITIALIZER;
static struct reap_entry *table;
static unsigned long spawned; /* bumped on every add: wakes an idle reaper */

void reaper_lock(void)
{
	pthread_mutex_lock(&table_lock);
}

void reaper_unlock(void)
{
	pthread_mutex_unlock(&table_lock);
}

void reaper_add(struct reap_entry *e)
{
	e->next = table;
	table = e;
	spawned++;
	pthread_cond_broadcast(&table_cond);
}

int reaper_reap(pid_t pid)
{
	int status = 0;
	while (waitpid(pid, &status, WNOHANG) < 0 && errno == EINTR)
		;
	return status;
}

static void *reaper_main(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&table_lock);
		unsigned long gen = spawned;
		pthread_mutex_unlock(&table_lock);

		siginfo_t si;
		memset(&si, 0, sizeof(si));
		int rc = waitid(P_ALL, 0, &si, WEXITED | WNOWAIT);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0) {
			/* ECHILD: nothing to wait for until the next fork (orphans
			 * only come from our own descendants).  The timeout covers
			 * any child forked without reaper_add. */
			pthread_mutex_lock(&table_lock);
			while (gen == spawned) {
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_sec += 1;
				if (pthread_cond_timedwait(&table_cond, &table_lock, &ts) != 0)
					break;
			}
			pthread_mutex_unlock(&table_lock);
			continue;
		}
		pid_t pid = si.si_pid;
		if (pid <= 0)
			continue;
		pthread_mutex_lock(&table_lock);
		struct reap_entry **pp = &table, *e = NULL;
		for (; *pp; pp = &(*pp)->next) {
			if ((*pp)->pid == pid) {
				e = *pp;
				*pp = e->next;
				break;
			}
		}
		if (e)
			e->on_exit(e); /* reaps */
		else
			reaper_reap(pid);
		pthread_mutex_unlock(&table_lock);
	}
	return NULL;
}

void reaper_start(void)
{
	int rc = agent_thread(reaper_main, NULL);
	if (rc != 0)
		agent_fatal("cannot start the reaper thread: %s", strerror(rc));
}
