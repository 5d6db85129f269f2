/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The named outputs quota without a VM: what a measurement counts (sparse
 * files at full size, symlinks not followed, missing directories empty),
 * the entry and depth caps, and limits.outputs_mb in the spec.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run/quota.h"
#include "spec/spec.h"
#include "util/util.h"

static char *tmpdir_in(const char *base)
{
	char *d = vb_strfmt("%s/vb-unit-quota-XXXXXX", base);
	assert_non_null(d);
	assert_non_null(mkdtemp(d));
	return d;
}

static char *tmpdir(void)
{
	return tmpdir_in("/tmp");
}

static void write_bytes(const char *path, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	char buf[4096];
	memset(buf, 'x', sizeof(buf));
	while (n) {
		size_t k = n < sizeof(buf) ? n : sizeof(buf);
		assert_int_equal(write(fd, buf, k), (ssize_t)k);
		n -= k;
	}
	close(fd);
}

static void test_counts_files_sparse_and_links(void **state)
{
	(void)state;
	char *a = tmpdir(), *b = tmpdir(), *outside = tmpdir();
	char *p = vb_strfmt("%s/f", a);
	write_bytes(p, 100000);
	free(p);
	/* a sparse file costs its full size: a copy of it would */
	p = vb_strfmt("%s/sparse", b);
	int fd = open(p, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 50 << 20), 0);
	close(fd);
	free(p);
	/* a symlink to something big outside is not followed */
	p = vb_strfmt("%s/big", outside);
	write_bytes(p, 3 << 20);
	char *l = vb_strfmt("%s/link", a);
	assert_int_equal(symlink(p, l), 0);
	free(l);
	l = vb_strfmt("%s/dirlink", a);
	assert_int_equal(symlink(outside, l), 0);
	free(l);
	free(p);

	const char *dirs[] = { a, b, "/nonexistent/vb-unit-quota" };
	struct vb_quota_use u;
	vb_quota_measure(dirs, 3, &u);
	assert_int_equal(u.entries, 4);
	assert_true(u.bytes >= 100000 + (50u << 20));
	assert_true(u.bytes < 100000 + (50u << 20) + 64 * 1024); /* not the 3 MiB behind the link */
	assert_int_equal(u.biggest, 1);
	assert_true(u.biggest_bytes >= 50u << 20);
	assert_false(u.too_deep);
	assert_false(vb_quota_over(&u, 51u << 20));
	assert_true(vb_quota_over(&u, 50u << 20));

	/* nothing at all: zero, and never over */
	vb_quota_measure(dirs + 2, 1, &u);
	assert_int_equal(u.bytes, 0);
	assert_int_equal(u.entries, 0);
	assert_false(vb_quota_over(&u, 1));

	vb_rm_rf(a);
	vb_rm_rf(b);
	vb_rm_rf(outside);
	free(a);
	free(b);
	free(outside);
}

static void test_depth_cap(void **state)
{
	(void)state;
	char *root = tmpdir();
	char *p = strdup(root);
	for (int i = 0; i < VB_QUOTA_MAX_DEPTH; i++) {
		char *q = vb_strfmt("%s/d", p);
		assert_int_equal(mkdir(q, 0700), 0);
		free(p);
		p = q;
	}
	const char *dirs[] = { root };
	struct vb_quota_use u;
	vb_quota_measure(dirs, 1, &u);
	assert_false(u.too_deep); /* exactly the cap is fine */
	assert_false(vb_quota_over(&u, 1u << 30));
	char *q = vb_strfmt("%s/d", p);
	assert_int_equal(mkdir(q, 0700), 0);
	free(q);
	vb_quota_measure(dirs, 1, &u);
	assert_true(u.too_deep);
	assert_true(vb_quota_over(&u, 1u << 30));
	free(p);
	vb_rm_rf(root);
	free(root);
}

static void test_entry_cap(void **state)
{
	(void)state;
	/* 100,001 files: in memory if we can, it is much faster */
	struct stat st;
	char *root = tmpdir_in(stat("/dev/shm", &st) == 0 && access("/dev/shm", W_OK) == 0
				       ? "/dev/shm"
				       : "/tmp");
	for (unsigned i = 0; i <= VB_QUOTA_MAX_ENTRIES; i++) {
		char name[64];
		snprintf(name, sizeof(name), "%s/%u", root, i);
		int fd = open(name, O_WRONLY | O_CREAT, 0600);
		assert_true(fd >= 0);
		close(fd);
		if (i + 1 == VB_QUOTA_MAX_ENTRIES) {
			const char *dirs[] = { root };
			struct vb_quota_use u;
			vb_quota_measure(dirs, 1, &u);
			assert_int_equal(u.entries, VB_QUOTA_MAX_ENTRIES);
			assert_false(vb_quota_over(&u, 1u << 30));
		}
	}
	const char *dirs[] = { root };
	struct vb_quota_use u;
	vb_quota_measure(dirs, 1, &u);
	assert_int_equal(u.entries, VB_QUOTA_MAX_ENTRIES + 1); /* stops counting there */
	assert_true(vb_quota_over(&u, 1u << 30));
	vb_rm_rf(root);
	free(root);
}

static struct vb_spec *load(const char *limits, vb_error *err)
{
	char *y = vb_strfmt("api_version: v1\nkind: pipeline\nname: t\n"
			    "sandbox: {limits: %s}\n"
			    "pipeline:\n  boxes:\n"
			    "    - {name: a, outputs: [{name: o}], run: {program: sh}}\n",
			    limits);
	struct vb_spec *s = vb_spec_load_string(y, strlen(y), "t.yaml", 1, err);
	free(y);
	return s;
}

static void test_spec_outputs_mb(void **state)
{
	(void)state;
	vb_error err = { 0 };
	struct vb_spec *s = load("{outputs_mb: 5}", &err);
	assert_non_null(s);
	const struct vb_spec_limits *l = s->pipeline.boxes[0].vm.limits;
	assert_non_null(l);
	assert_true(l->outputs_mb.set);
	assert_int_equal(l->outputs_mb.v, 5);
	vb_spec_free(s);

	s = load("{nofile: 9}", &err); /* unset: the default applies */
	assert_non_null(s);
	assert_false(s->pipeline.boxes[0].vm.limits->outputs_mb.set);
	vb_spec_free(s);

	const char *bad[] = { "{outputs_mb: 0}", "{outputs_mb: 1048577}", "{outputs_mb: \"5\"}" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vb_error e = { 0 };
		assert_null(load(bad[i], &e));
		assert_non_null(strstr(e.msg, "limits.outputs_mb"));
	}
	vb_error e = { 0 };
	assert_null(load("{output_mb: 5}", &e));
	assert_non_null(strstr(e.msg, "did you mean 'outputs_mb'"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_files_sparse_and_links),
		cmocka_unit_test(test_depth_cap),
		cmocka_unit_test(test_entry_cap),
		cmocka_unit_test(test_spec_outputs_mb),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
