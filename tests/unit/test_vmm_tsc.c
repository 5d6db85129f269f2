/* SPDX-License-Identifier: Apache-2.0 */
/* The host's TSC frequency that TCG guests are given (vmm/tsc.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "vmm/tsc.h"

#if defined(__x86_64__)
#include <x86intrin.h>

static int host_has_constant_tsc(void)
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

static int64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC_RAW, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* The figure agrees with the TSC's ticks over a longer, independent
 * interval, and is measured once: every VM of a process gets the same. */
static void test_matches_the_tsc(void **state)
{
	(void)state;
	if (!host_has_constant_tsc())
		skip();
	unsigned khz = vb_host_tsc_khz();
	assert_true(khz > 0);
	assert_int_equal(vb_host_tsc_khz(), khz);
	/* several tries: the runner may be preempted inside one */
	int ok = 0;
	for (int i = 0; i < 5 && !ok; i++) {
		int64_t t0 = now_ns();
		uint64_t c0 = __rdtsc();
		struct timespec d = { 0, 100 * 1000 * 1000 };
		nanosleep(&d, NULL);
		uint64_t c1 = __rdtsc();
		int64_t t1 = now_ns();
		double seen = (double)(c1 - c0) * 1e6 / (double)(t1 - t0);
		ok = seen > khz * 0.99 && seen < khz * 1.01;
	}
	assert_true(ok);
}
#else
static void test_matches_the_tsc(void **state)
{
	(void)state;
	assert_int_equal(vb_host_tsc_khz(), 0);
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matches_the_tsc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
