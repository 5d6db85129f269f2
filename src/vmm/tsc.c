/* SPDX-License-Identifier: Apache-2.0 */
/* The host's TSC frequency (tsc.h). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vmm/tsc.h"

#if defined(__x86_64__)
#include <x86intrin.h>

/* A TSC reading and the time it was taken at: of a few tries, the one
 * whose two clock reads bracket it most tightly (not preempted between).
 * Returns that bracket's width in ns. */
static int64_t sample(uint64_t *tsc, int64_t *ns)
{
	int64_t best = INT64_MAX;
	for (int i = 0; i < 5; i++) {
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC_RAW, &a);
		uint64_t c = __rdtsc();
		clock_gettime(CLOCK_MONOTONIC_RAW, &b);
		int64_t ta = (int64_t)a.tv_sec * 1000000000 + a.tv_nsec;
		int64_t tb = (int64_t)b.tv_sec * 1000000000 + b.tv_nsec;
		if (tb - ta < best) {
			best = tb - ta;
			*tsc = c;
			*ns = ta + (tb - ta) / 2;
		}
	}
	return best;
}

static int constant_tsc(void)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[4096];
	int yes = 0;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "flags", 5)) {
			yes = strstr(line, " constant_tsc") != NULL;
			break;
		}
	if (f)
		fclose(f);
	return yes;
}

static unsigned khz;

static void measure(void)
{
	if (!constant_tsc())
		return;
	for (int attempt = 0; attempt < 3; attempt++) {
		uint64_t c0, c1;
		int64_t t0, t1;
		int64_t w = sample(&c0, &t0);
		struct timespec d = { 0, 20 * 1000 * 1000 };
		while (nanosleep(&d, &d) != 0)
			;
		w += sample(&c1, &t1);
		/* the brackets bound the error: believe it to 0.1%, or not at
		 * all (then the guest calibrates as it would without us) */
		if (t1 <= t0 || c1 <= c0 || w * 1000 > t1 - t0)
			continue;
		uint64_t k = (uint64_t)((double)(c1 - c0) * 1e6 / (double)(t1 - t0));
		if (k >= 100000 && k <= 20000000) /* 100 MHz to 20 GHz */
			khz = (unsigned)k;
		return;
	}
}

unsigned vb_host_tsc_khz(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, measure);
	return khz;
}
#else
unsigned vb_host_tsc_khz(void)
{
	return 0;
}
#endif
