/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Run ids: "YYYYMMDD-HHMMSS-xxxxxx", UTC time then 24 random bits, so they
 * sort by start second.  24 bits alone would collide now and then among
 * many ids of one second, so this process remembers the suffixes it gave
 * out in the current second and draws again on a repeat; across processes
 * vb_record_open's exclusive mkdir catches the rest.
 */
#include "observe/observe.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "observe/observe_int.h"
#include "util/util.h"

#define SEEN_MAX 4096

static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static time_t seen_second = -1;
static uint32_t seen[SEEN_MAX];
static size_t n_seen;

/* 1 if (v) was already handed out this second; else remembers it. */
static int seen_before(time_t now, uint32_t v)
{
	int dup = 0;
	pthread_mutex_lock(&seen_lock);
	if (now != seen_second) {
		seen_second = now;
		n_seen = 0;
	}
	for (size_t i = 0; i < n_seen && !dup; i++)
		dup = seen[i] == v;
	if (!dup && n_seen < SEEN_MAX)
		seen[n_seen++] = v;
	pthread_mutex_unlock(&seen_lock);
	return dup;
}

char *vb_run_id_new(vb_error *err)
{
	int64_t ms = vb_obs_wall_ms();
	time_t now = (time_t)(ms / 1000);
	struct tm tm;
	if (!gmtime_r(&now, &tm)) {
		vb_error_set(err, VB_E_RUNTIME, "run id: the clock is out of range");
		return NULL;
	}
	char stamp[32];
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	uint32_t v = 0;
	for (int tries = 0; tries < 64; tries++) {
		uint8_t raw[3];
		if (vb_random(raw, sizeof(raw), err) < 0) {
			vb_error_prefix(err, "run id");
			return NULL;
		}
		v = (uint32_t)raw[0] << 16 | (uint32_t)raw[1] << 8 | raw[2];
		if (!seen_before(now, v))
			break;
	}
	char *id = vb_strfmt("%s-%06x", stamp, (unsigned)v);
	if (!id)
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
	return id;
}
