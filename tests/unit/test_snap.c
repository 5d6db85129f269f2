/* SPDX-License-Identifier: Apache-2.0 */
/* The snapshot store (src/snap/): manifests, digests, the checks a
 * restore relies on.  No VM: the store's files are made here. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "snap/snap.h"
#include "util/util.h"

static char tmp[64];

static int setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/vb-test-snap.XXXXXX");
	if (!mkdtemp(tmp))
		return -1;
	setenv("XDG_CACHE_HOME", tmp, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	vb_rm_rf(tmp);
	return 0;
}

static void write_at(const char *path, off_t off, const void *b, size_t n, off_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	if (size >= 0)
		assert_int_equal(ftruncate(fd, size), 0);
	assert_int_equal(pwrite(fd, b, n, off), (ssize_t)n);
	close(fd);
}

/* A snapshot directory with a sparse 64 MiB "ram", committed; (*s) filled. */
static void make_snapshot(const char *name, struct vb_snap *s)
{
	vb_error err = { 0 };
	char *staging = vb_snap_staging(&err);
	assert_non_null(staging);
	char p[512];
	snprintf(p, sizeof(p), "%s/state", staging);
	write_at(p, 0, "QEVM state", 10, -1);
	snprintf(p, sizeof(p), "%s/ram", staging);
	write_at(p, 1 << 20, "guest page", 10, 64 << 20);
	snprintf(p, sizeof(p), "%s/secret", staging);
	uint8_t secret[32] = { 1, 2, 3 };
	write_at(p, 0, secret, 32, -1);
	struct vb_snap_source src = { 0 };
	snprintf(p, sizeof(p), "%s/state", staging);
	assert_int_equal(vb_snap_sources(p, p, "memory=64 vcpus=1", &src, &err), 0);
	assert_int_equal(vb_snap_commit(staging, name, &src, 12, NULL, s, &err), 0);
	free(staging);
}

static void test_commit_open_verify(void **state)
{
	(void)state;
	struct vb_snap s, o;
	make_snapshot("base", &s);
	assert_int_equal(s.files[1].size, 64u << 20);
	assert_int_equal(s.files[1].data, 64u << 10); /* one non-zero chunk */
	vb_error err = { 0 };
	char *dir = NULL;
	assert_int_equal(vb_snap_open("base", &o, &dir, &err), 0);
	assert_string_equal(o.id, s.id);
	assert_int_equal(vb_snap_verify(&o, dir, 0, &err), 0);
	free(dir);
	char prefix[9];
	snprintf(prefix, sizeof(prefix), "%.8s", s.id);
	assert_int_equal(vb_snap_open(prefix, &o, &dir, &err), 0);
	free(dir);
	assert_int_equal(vb_snap_open("nosuch", &o, &dir, &err), -1);
	assert_int_equal(err.kind, VB_E_NOTFOUND);
	/* a second snapshot of that name is refused */
	struct vb_snap t;
	char *staging = vb_snap_staging(&err);
	assert_non_null(staging);
	struct vb_snap_source src = { 0 };
	assert_int_equal(vb_snap_commit(staging, "base", &src, 0, NULL, &t, &err), -1);
	assert_int_equal(err.kind, VB_E_USAGE);
	assert_non_null(strstr(err.msg, "exists"));
	vb_rm_rf(staging);
	free(staging);
	assert_int_equal(vb_snap_delete(&s, &err), 0);
	assert_int_equal(vb_snap_open("base", &o, &dir, &err), -1);
}

static void test_damage_detected(void **state)
{
	(void)state;
	struct vb_snap s;
	make_snapshot("dmg", &s);
	vb_error err = { 0 };
	char *root = vb_snap_root(&err), p[512];
	snprintf(p, sizeof(p), "%s/%s/ram", root, s.id);
	chmod(p, 0600);
	char dir[512];
	/* the stamp the commit left lets a check skip the digests, until a
	 * write moves the file's ctime */
	snprintf(dir, sizeof(dir), "%s/%s/verified", root, s.id);
	assert_int_equal(access(dir, F_OK), 0);
	snprintf(dir, sizeof(dir), "%s/%s", root, s.id);
	assert_int_equal(vb_snap_verify(&s, dir, 0, &err), 0);
	usleep(20000); /* past the file system's timestamp granularity */
	write_at(p, 40 << 20, "y", 1, -1);
	assert_int_equal(vb_snap_verify(&s, dir, 0, &err), -1);
	assert_non_null(strstr(err.msg, "'ram' does not match its digest"));
	write_at(p, 40 << 20, "", 1, -1);
	assert_int_equal(vb_snap_verify(&s, dir, 0, &err), 0);
	/* a zero written into a hole is no change; a non-zero byte is */
	write_at(p, 40 << 20, "", 1, -1);
	assert_int_equal(vb_snap_verify(&s, dir, VB_SNAP_VERIFY_FULL, &err), 0);
	write_at(p, 40 << 20, "x", 1, -1);
	assert_int_equal(vb_snap_verify(&s, dir, VB_SNAP_VERIFY_FULL, &err), -1);
	assert_non_null(strstr(err.msg, "'ram' does not match its digest"));
	write_at(p, 40 << 20, "", 1, -1);
	assert_int_equal(vb_snap_verify(&s, dir, VB_SNAP_VERIFY_FULL, &err), 0);
	/* a flipped byte in the data */
	write_at(p, (1 << 20) + 3, "X", 1, -1);
	assert_int_equal(vb_snap_verify(&s, dir, VB_SNAP_VERIFY_FULL, &err), -1);
	write_at(p, (1 << 20) + 3, "s", 1, -1);
	assert_int_equal(vb_snap_verify(&s, dir, VB_SNAP_VERIFY_FULL, &err), 0);
	/* truncated */
	snprintf(p, sizeof(p), "%s/%s/state", root, s.id);
	chmod(p, 0600);
	assert_int_equal(truncate(p, 5), 0);
	assert_int_equal(vb_snap_verify(&s, dir, VB_SNAP_VERIFY_FULL, &err), -1);
	assert_non_null(strstr(err.msg, "'state' is 5 bytes, not 10 (truncated?)"));
	/* gone */
	unlink(p);
	assert_int_equal(vb_snap_verify(&s, dir, VB_SNAP_VERIFY_FULL, &err), -1);
	assert_non_null(strstr(err.msg, "is damaged"));
	free(root);
}

static void test_digest_ignores_hole_layout(void **state)
{
	(void)state;
	char a[600], b[600];
	snprintf(a, sizeof(a), "%s/a", tmp);
	snprintf(b, sizeof(b), "%s/b", tmp);
	write_at(a, 200000, "data", 4, 1 << 22); /* sparse */
	_cleanup_free_ char *zeros = calloc(1, 1 << 22);
	assert_non_null(zeros);
	memcpy(zeros + 200000, "data", 4);
	write_at(b, 0, zeros, 1 << 22, -1); /* the same bytes, no holes */
	struct vb_snap_file fa, fb;
	vb_error err = { 0 };
	assert_int_equal(vb_snap_digest(a, &fa, &err), 0);
	assert_int_equal(vb_snap_digest(b, &fb, &err), 0);
	assert_string_equal(fa.sha256, fb.sha256);
	assert_int_equal(fa.data, fb.data);
	/* the same bytes one chunk later are another file */
	write_at(a, 200000, "\0\0\0\0", 4, -1);
	write_at(a, 200000 + 65536, "data", 4, -1);
	assert_int_equal(vb_snap_digest(a, &fa, &err), 0);
	assert_string_not_equal(fa.sha256, fb.sha256);
	/* and a longer run of zeros at the end too */
	write_at(b, (1 << 22) - 1, "", 1, (1 << 22) + 1);
	struct vb_snap_file fc;
	assert_int_equal(vb_snap_digest(b, &fc, &err), 0);
	assert_string_not_equal(fc.sha256, fb.sha256);
	assert_int_equal(fc.size, (1u << 22) + 1);
}

static void test_parse_round_trip_and_refusals(void **state)
{
	(void)state;
	struct vb_snap s;
	make_snapshot("rt", &s);
	char *text = vb_snap_format(&s);
	assert_non_null(text);
	struct vb_snap p;
	vb_error err = { 0 };
	assert_int_equal(vb_snap_parse(text, strlen(text), &p, &err), 0);
	assert_memory_equal(&p, &s, sizeof(s));
	/* any field changed: the id no longer matches its contents */
	char *edit = strdup(text), *at = strstr(edit, "\"size\": 10");
	assert_non_null(at);
	at[9] = '1';
	assert_int_equal(vb_snap_parse(edit, strlen(edit), &p, &err), -1);
	assert_non_null(strstr(err.msg, "id does not match"));
	free(edit);
	static const char *const bad[] = {
		"", "[]", "{}", "{\"version\":1}", "nul\0l",
		"{\"version\":1,\"id\":\"x\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(vb_snap_parse(bad[i], strlen(bad[i]), &p, &err), -1);
	/* a name with a path in it is refused */
	edit = strdup(text);
	at = strstr(edit, "\"name\": \"rt\"");
	assert_non_null(at);
	at[9] = '/';
	assert_int_equal(vb_snap_parse(edit, strlen(edit), &p, &err), -1);
	assert_non_null(strstr(err.msg, "'name'"));
	free(edit);
	/* oversized */
	size_t big = 70000;
	char *huge = malloc(big);
	assert_non_null(huge);
	memset(huge, ' ', big);
	assert_int_equal(vb_snap_parse(huge, big, &p, &err), -1);
	free(huge);
	free(text);
}

static void test_sources_mismatch_named(void **state)
{
	(void)state;
	struct vb_snap s = { 0 };
	snprintf(s.id, sizeof(s.id), "%064d", 0);
	memset(s.src.kernel, 'a', 64);
	memset(s.src.initramfs, 'b', 64);
	memset(s.src.config, 'c', 64);
	snprintf(s.src.config_text, sizeof(s.src.config_text), "memory=1024");
	struct vb_snap_source now = s.src;
	vb_error err = { 0 };
	assert_int_equal(vb_snap_check_sources(&s, &now, &err), 0);
	now.kernel[0] = 'f';
	assert_int_equal(vb_snap_check_sources(&s, &now, &err), -1);
	assert_non_null(strstr(err.msg, "another kernel"));
	now = s.src;
	now.config[5] = 'd';
	snprintf(now.config_text, sizeof(now.config_text), "memory=512");
	assert_int_equal(vb_snap_check_sources(&s, &now, &err), -1);
	assert_non_null(strstr(err.msg, "(memory=1024; now memory=512)"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_commit_open_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damage_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_digest_ignores_hole_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_round_trip_and_refusals, setup, teardown),
		cmocka_unit_test(test_sources_mismatch_named),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
