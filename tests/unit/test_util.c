/* SPDX-License-Identifier: Apache-2.0 */
/* util: atomic file replacement and the sweep of dead processes' leftovers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/util.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/vb-util-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return vb_rm_rf(dir);
}

static int exists(const char *name)
{
	char p[128];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

static void mk(const char *name)
{
	char p[128];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	assert_int_equal(mkdir(p, 0700), 0);
}

/* A pid that is certainly gone: a child that exited and was reaped. */
static pid_t dead_pid(void)
{
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	assert_true(p > 0);
	assert_int_equal(waitpid(p, NULL, 0), p);
	return p;
}

static void sweep_removes_only_dead_owners(void **state)
{
	(void)state;
	char name[64];
	pid_t gone = dead_pid();
	snprintf(name, sizeof(name), "vm-%d-abc", (int)gone);
	mk(name);
	char mine[64];
	snprintf(mine, sizeof(mine), "vm-%d-def", (int)getpid());
	mk(mine);
	mk("vm-notapid-x");
	mk("vm--1-x");
	mk("other-1-x");
	char nodash[64];
	snprintf(nodash, sizeof(nodash), "vm-%d", (int)gone);
	mk(nodash);
	vb_sweep_dead_owners(dir, "vm-");
	assert_false(exists(name));
	assert_true(exists(mine));
	assert_true(exists("vm-notapid-x"));
	assert_true(exists("vm--1-x"));
	assert_true(exists("other-1-x"));
	assert_true(exists(nodash)); /* not this naming: left alone */
}

static void atomic_write_replaces_whole(void **state)
{
	(void)state;
	char p[128];
	snprintf(p, sizeof(p), "%s/f", dir);
	assert_int_equal(vb_write_file_atomic(p, "first", 5, 0600), 0);
	assert_int_equal(vb_write_file_atomic(p, "second", 6, 0644), 0);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 6);
	assert_int_equal(st.st_mode & 0777, 0644);
	/* a directory that is not there: -1, nothing left behind */
	snprintf(p, sizeof(p), "%s/missing/f", dir);
	assert_int_equal(vb_write_file_atomic(p, "x", 1, 0600), -1);
}

struct writer {
	char path[128];
	char byte;
	int rc;
};

static void *write_many(void *arg)
{
	struct writer *w = arg;
	char buf[65536];
	memset(buf, w->byte, sizeof(buf));
	for (int i = 0; i < 50 && w->rc == 0; i++)
		w->rc = vb_write_file_atomic(w->path, buf, sizeof(buf), 0644);
	return NULL;
}

/* Threads of one process writing one path at once: every write succeeds
 * and the file is always one writer's whole content (the fan-out case). */
static void atomic_write_from_threads(void **state)
{
	(void)state;
	struct writer w[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		snprintf(w[i].path, sizeof(w[i].path), "%s/shared", dir);
		w[i].byte = (char)('a' + i);
		w[i].rc = 0;
		assert_int_equal(pthread_create(&t[i], NULL, write_many, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].rc, 0);
	}
	FILE *f = fopen(w[0].path, "rb");
	assert_non_null(f);
	char buf[65536 + 1];
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	assert_int_equal(n, 65536);
	for (size_t i = 1; i < n; i++)
		assert_int_equal(buf[i], buf[0]);
	/* no temporary file left */
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "test $(ls -A %s | wc -l) -eq 1", dir);
	assert_int_equal(system(cmd), 0);
}

/* vb_is_zero: every byte, not the first or the last only. */
static void is_zero(void **state)
{
	(void)state;
	unsigned char b[4096] = { 0 };
	assert_true(vb_is_zero(b, sizeof(b)));
	assert_true(vb_is_zero(b, 0));
	assert_true(vb_is_zero(b, 1));
	size_t at[] = { 0, 1, 2047, 4095 };
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		b[at[i]] = 0x80;
		assert_false(vb_is_zero(b, sizeof(b)));
		b[at[i]] = 0;
	}
	memset(b, 7, sizeof(b)); /* all equal, but not zero */
	assert_false(vb_is_zero(b, sizeof(b)));
}

/* vb_env_bytes: sizes with binary suffixes; anything else the default. */
static void env_bytes(void **state)
{
	(void)state;
	const char *v = "VB_TEST_BYTES";
	unsetenv(v);
	assert_int_equal(vb_env_bytes(v, 7), 7);
	struct {
		const char *text;
		uint64_t want;
	} cases[] = { { "0", 0 }, { "12345", 12345 }, { "2k", 2048 }, { "130M", 130ull << 20 },
		      { "2g", 2ull << 30 }, { "", 7 }, { "-1", 7 }, { "+5", 7 }, { " 5", 7 },
		      { "5x", 7 }, { "5kb", 7 }, { "k", 7 }, { "99999999999999999999", 7 },
		      { "17179869184G", 7 } };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		setenv(v, cases[i].text, 1);
		assert_int_equal(vb_env_bytes(v, 7), cases[i].want);
	}
	unsetenv(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(sweep_removes_only_dead_owners, setup, teardown),
		cmocka_unit_test_setup_teardown(atomic_write_replaces_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(atomic_write_from_threads, setup, teardown),
		cmocka_unit_test(is_zero),
		cmocka_unit_test(env_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
