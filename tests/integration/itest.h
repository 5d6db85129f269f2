/* SPDX-License-Identifier: MIT */
/*
 * The scaffolding every C integration test shares: a check that says where
 * and why it failed, and TAP-like "ok - NAME" lines counted into one exit
 * status. Header-only, because each itest is a single translation unit.
 */
#ifndef VB_ITEST_H
#define VB_ITEST_H

#include <stdio.h>

static int failures;

/* On failure: say where and why on stderr, then run `on_fail` (return -1 or
 * goto out, for tests that must clean up). */
#define CHECK_OR(on_fail, cond, ...)                                                              \
	do {                                                                                      \
		if (!(cond)) {                                                                    \
			fprintf(stderr, "  %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                             \
			fprintf(stderr, "\n");                                                    \
			on_fail;                                                                  \
		}                                                                                 \
	} while (0)

#ifndef CHECK
#define CHECK(cond, ...) CHECK_OR(return -1, cond, __VA_ARGS__)
#endif

static inline void report(const char *name, int rc)
{
	printf("%s - %s\n", rc == 0 ? "ok" : "not ok", name);
	fflush(stdout);
	failures += rc != 0;
}

#endif
