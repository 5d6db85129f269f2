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
	unsetenv("VOIDBOX_SNAPSHOT_MAX_BYTES");
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

static void make_snapshot_v(const char *name, uint8_t variant, struct vb_snap *s);

/* A snapshot directory with a sparse 64 MiB "ram", committed; (*s) filled. */
static void make_snapshot(const char *name, struct vb_snap *s)
{
	make_snapshot_v(name, 0, s);
}

/* The same with (variant) in its secret: another snapshot. */
static void make_snapshot_v(const char *name, uint8_t variant, struct vb_snap *s)
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
	uint8_t secret[32] = { 1, 2, 3, variant };
	write_at(p, 0, secret, 32, -1);
	struct vb_snap_source src = { 0 };
	snprintf(p, sizeof(p), "%s/state", staging);
	assert_int_equal(vb_snap_sources(p, p, "memory=64 vcpus=1", &src, &err), 0);
	assert_int_equal(vb_snap_commit(staging, name, &src, 12, NULL, s, &err), 0);
	free(staging);
}

/* A diff of (base): its RAM the base's with the page at 1 MiB zeroed and
 * "new page" at 8 MiB. */
static void make_diff(const char *name, const struct vb_snap *base, struct vb_snap *d)
{
	vb_error err = { 0 };
	_cleanup_free_ char *staging = vb_snap_staging(&err), *root = vb_snap_root(&err);
	assert_non_null(staging);
	char p[512], bram[512];
	snprintf(bram, sizeof(bram), "%s/%s/ram", root, base->id);
	snprintf(p, sizeof(p), "%s/ram", staging);
	assert_int_equal(vb_snap_copy_sparse(bram, p, &err), 0);
	write_at(p, 1 << 20, "\0\0\0\0\0\0\0\0\0\0", 10, -1);
	write_at(p, 8 << 20, "new page", 8, -1);
	snprintf(p, sizeof(p), "%s/state", staging);
	write_at(p, 0, "QEVM state", 10, -1);
	struct vb_snap_source src = { 0 };
	assert_int_equal(vb_snap_sources(p, p, "memory=64 vcpus=1", &src, &err), 0);
	snprintf(p, sizeof(p), "%s/secret", staging);
	uint8_t secret[32] = { 9 };
	write_at(p, 0, secret, 32, -1);
	assert_int_equal(vb_snap_commit(staging, name, &src, 3, base->id, d, &err), 0);
}

static void read_at(const char *path, off_t off, void *b, size_t n)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, b, n, off), (ssize_t)n);
	close(fd);
}

static void test_diff_commit_and_assemble(void **state)
{
	(void)state;
	struct vb_snap b, d, o;
	make_snapshot("base", &b);
	make_diff("diff", &b, &d);
	assert_string_equal(d.base, b.id);
	assert_int_equal(d.n_files, VB_SNAP_FILES_MAX);
	/* its ram holds one page in one chunk; the map a bit a page */
	assert_int_equal(d.files[1].size, 64u << 20);
	assert_int_equal(d.files[1].data, 64u << 10);
	assert_string_equal(d.files[3].name, "ram.map");
	assert_int_equal(d.files[3].size, (64u << 20) / VB_SNAP_PAGE / 8);
	assert_int_equal(d.full.data, 64u << 10); /* the base's page is zeros now */
	vb_error err = { 0 };
	char *dir = NULL;
	assert_int_equal(vb_snap_open("diff", &o, &dir, &err), 0);
	assert_memory_equal(&o, &d, sizeof(d));
	assert_int_equal(vb_snap_verify(&o, dir, VB_SNAP_VERIFY_FULL, &err), 0);
	/* the whole RAM: the base's with the diff's pages over it */
	char *ram = vb_snap_ram(&o, dir, &err);
	assert_non_null(ram);
	assert_non_null(strstr(ram, "/ram.full"));
	char buf[10];
	read_at(ram, 8 << 20, buf, 8);
	assert_memory_equal(buf, "new page", 8);
	read_at(ram, 1 << 20, buf, 10);
	assert_memory_equal(buf, "\0\0\0\0\0\0\0\0\0\0", 10);
	struct vb_snap_file f;
	assert_int_equal(vb_snap_digest(ram, &f, &err), 0);
	assert_string_equal(f.sha256, d.full.sha256);
	/* a damaged cache is made again */
	chmod(ram, 0600);
	usleep(20000);
	write_at(ram, 30 << 20, "x", 1, -1);
	free(ram);
	ram = vb_snap_ram(&o, dir, &err);
	assert_non_null(ram);
	read_at(ram, 30 << 20, buf, 1);
	assert_int_equal(buf[0], 0);
	free(ram);
	/* the base cannot go while the diff is there */
	assert_int_equal(vb_snap_delete(&b, &err), -1);
	assert_int_equal(err.kind, VB_E_USAGE);
	char want[128];
	snprintf(want, sizeof(want), "is the base of 1 diff: %.12s (diff); delete it first", d.id);
	assert_non_null(strstr(err.msg, want));
	struct vb_snap *deps = NULL;
	size_t nd = 0;
	assert_int_equal(vb_snap_dependents(b.id, &deps, &nd, &err), 0);
	assert_int_equal(nd, 1);
	assert_string_equal(deps[0].id, d.id);
	free(deps);
	/* a damaged base: its diff is refused, naming it */
	_cleanup_free_ char *root = vb_snap_root(&err);
	char bram[512];
	snprintf(bram, sizeof(bram), "%s/%s/ram", root, b.id);
	chmod(bram, 0600);
	usleep(20000);
	write_at(bram, (1 << 20) + 3, "X", 1, -1);
	assert_null(vb_snap_ram(&o, dir, &err));
	snprintf(want, sizeof(want), "snapshot %.12s is a diff of %.12s: snapshot %.12s is damaged",
		 d.id, b.id, b.id);
	assert_non_null(strstr(err.msg, want));
	write_at(bram, (1 << 20) + 3, "s", 1, -1);
	ram = vb_snap_ram(&o, dir, &err);
	assert_non_null(ram);
	free(ram);
	free(dir);
	/* a diff of a diff */
	struct vb_snap d2;
	make_diff("diff2", &d, &d2);
	assert_string_equal(d2.base, d.id);
	/* diffs first, then the base */
	assert_int_equal(vb_snap_delete(&d, &err), -1);
	assert_int_equal(vb_snap_delete(&d2, &err), 0);
	assert_int_equal(vb_snap_delete(&d, &err), 0);
	assert_int_equal(vb_snap_delete(&b, &err), 0);
}

static void set_used(const struct vb_snap *s, time_t t)
{
	vb_error err = { 0 };
	_cleanup_free_ char *root = vb_snap_root(&err);
	char p[512];
	snprintf(p, sizeof(p), "%s/%s/used", root, s->id);
	struct timespec ts[2] = { { .tv_sec = t }, { .tv_sec = t } };
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static int present(const struct vb_snap *s)
{
	vb_error err = { 0 };
	_cleanup_free_ char *root = vb_snap_root(&err);
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", root, s->id);
	return access(p, F_OK) == 0;
}

static void test_evict_lru(void **state)
{
	(void)state;
	struct vb_snap a, b, c;
	make_snapshot_v("a", 1, &a);
	make_snapshot_v("b", 2, &b);
	make_snapshot_v("c", 3, &c);
	set_used(&a, 1000);
	set_used(&b, 3000);
	set_used(&c, 2000);
	vb_error err = { 0 };
	_cleanup_free_ char *root = vb_snap_root(&err);
	char p[512];
	uint64_t total = 0;
	const struct vb_snap *all[] = { &a, &b, &c };
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", root, all[i]->id);
		uint64_t n = vb_snap_disk_bytes(p);
		assert_true(n >= 4096); /* a page of ram, the small files */
		total += n;
	}
	size_t n = 9;
	/* within the bound, or none: nothing goes */
	assert_int_equal(vb_snap_evict(total, NULL, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(vb_snap_evict(0, NULL, &n, &err), 0);
	assert_int_equal(n, 0);
	/* one over: the least recently used */
	assert_int_equal(vb_snap_evict(total - 1, NULL, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_false(present(&a));
	assert_true(present(&b) && present(&c));
	/* one a restore holds is passed over; the kept one is kept */
	snprintf(p, sizeof(p), "%s/%s", root, c.id);
	int fd = vb_snap_use(p);
	assert_true(fd >= 0);
	assert_int_equal(vb_snap_evict(1, b.id, &n, &err), 0);
	assert_int_equal(n, 0);
	close(fd);
	/* vb_snap_use made c the newest: b would go first, but it is kept */
	assert_int_equal(vb_snap_evict(1, b.id, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_true(present(&b));
	assert_false(present(&c));
}

static void test_evict_diffs_before_their_base(void **state)
{
	(void)state;
	struct vb_snap b, d, x;
	make_snapshot("base", &b);
	make_diff("diff", &b, &d);
	make_snapshot_v("x", 7, &x);
	set_used(&b, 1000); /* the least recently used, but a base */
	set_used(&d, 2000);
	set_used(&x, 3000);
	vb_error err = { 0 };
	size_t n = 0;
	assert_int_equal(vb_snap_evict(1, x.id, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_false(present(&d));
	assert_false(present(&b));
	assert_true(present(&x));
}

static void test_evict_caches_first(void **state)
{
	(void)state;
	struct vb_snap b, d, o;
	make_snapshot("base", &b);
	make_diff("diff", &b, &d);
	vb_error err = { 0 };
	char *dir = NULL;
	assert_int_equal(vb_snap_open("diff", &o, &dir, &err), 0);
	char *ram = vb_snap_ram(&o, dir, &err);
	assert_non_null(ram);
	_cleanup_free_ char *root = vb_snap_root(&err);
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", root, b.id);
	uint64_t total = vb_snap_disk_bytes(p) + vb_snap_disk_bytes(dir);
	/* one byte over: the diff's assembled RAM goes, no snapshot */
	size_t n = 9;
	assert_int_equal(vb_snap_evict(total - 1, NULL, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(access(ram, F_OK), -1);
	assert_true(present(&b) && present(&d));
	/* and the next restore makes it again */
	free(ram);
	ram = vb_snap_ram(&o, dir, &err);
	assert_non_null(ram);
	assert_int_equal(access(ram, F_OK), 0);
	free(ram);
	free(dir);
}

static void test_max_bytes(void **state)
{
	(void)state;
	unsetenv("VOIDBOX_SNAPSHOT_MAX_BYTES");
	assert_true(vb_snap_max_bytes() == 10ull << 30);
	setenv("VOIDBOX_SNAPSHOT_MAX_BYTES", "0", 1);
	assert_true(vb_snap_max_bytes() == 0);
	setenv("VOIDBOX_SNAPSHOT_MAX_BYTES", "130M", 1);
	assert_true(vb_snap_max_bytes() == 130ull << 20);
	setenv("VOIDBOX_SNAPSHOT_MAX_BYTES", "2g", 1);
	assert_true(vb_snap_max_bytes() == 2ull << 30);
	setenv("VOIDBOX_SNAPSHOT_MAX_BYTES", "12345", 1);
	assert_true(vb_snap_max_bytes() == 12345);
	static const char *const bad[] = { "x", "5T", "-1", "1MB", "99999999999999999999G" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("VOIDBOX_SNAPSHOT_MAX_BYTES", bad[i], 1);
		assert_true(vb_snap_max_bytes() == 10ull << 30);
	}
	unsetenv("VOIDBOX_SNAPSHOT_MAX_BYTES");
}

static void test_diff_manifest(void **state)
{
	(void)state;
	struct vb_snap b, d, p;
	make_snapshot("base", &b);
	make_diff("diff", &b, &d);
	_cleanup_free_ char *text = vb_snap_format(&d);
	assert_non_null(text);
	vb_error err = { 0 };
	assert_int_equal(vb_snap_parse(text, strlen(text), &p, &err), 0);
	assert_memory_equal(&p, &d, sizeof(d));
	assert_non_null(strstr(text, "\"version\": 2"));
	/* the map's size is a bit a page of the RAM */
	char *edit = strdup(text), *at = strstr(edit, "\"size\": 2048");
	assert_non_null(at);
	at[11] = '9';
	assert_int_equal(vb_snap_parse(edit, strlen(edit), &p, &err), -1);
	assert_non_null(strstr(err.msg, "'files'"));
	free(edit);
	/* another base: another id */
	edit = strdup(text);
	at = strstr(edit, "\"base\": \"");
	assert_non_null(at);
	at[9] = at[9] == 'a' ? 'b' : 'a';
	assert_int_equal(vb_snap_parse(edit, strlen(edit), &p, &err), -1);
	assert_non_null(strstr(err.msg, "id does not match"));
	free(edit);
	/* a version 1 manifest has no base */
	_cleanup_free_ char *v1 = vb_snap_format(&b);
	edit = malloc(strlen(v1) + 128);
	assert_non_null(edit);
	snprintf(edit, strlen(v1) + 128, "{\"base\": \"%s\", %s", b.id, v1 + 1);
	assert_int_equal(vb_snap_parse(edit, strlen(edit), &p, &err), -1);
	assert_non_null(strstr(err.msg, "'base'"));
	free(edit);
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

/* Source digests are remembered by stat identity (memo.c): the same as a
 * fresh digest, kept only for a settled file, and never the digest of
 * other bytes after a rewrite that keeps size and mtime. */
static void test_source_digest_memo(void **state)
{
	(void)state;
	char f[128], memo[128], d[VB_SNAP_HEX];
	snprintf(f, sizeof(f), "%s/kernel", tmp);
	snprintf(memo, sizeof(memo), "%s/voidbox/snapshots/.sources", tmp);
	uint8_t a[8192], b[8192];
	memset(a, 'a', sizeof(a));
	memset(b, 'b', sizeof(b));
	write_at(f, 0, a, sizeof(a), -1);
	struct vb_snap_file fa, fb;
	vb_error err = { 0 };
	assert_int_equal(vb_snap_digest(f, &fa, &err), 0);
	assert_int_equal(vb_snap_source_digest(f, d, &err), 0);
	assert_string_equal(d, fa.sha256);
	/* just written: not remembered (a change in the same tick would
	 * keep its ctime) */
	size_t len = 0;
	char *text = vb_read_file(memo, 1 << 20, &len, &err);
	assert_true(!text || !strstr(text, fa.sha256));
	free(text);
	sleep(3);
	assert_int_equal(vb_snap_source_digest(f, d, &err), 0);
	assert_string_equal(d, fa.sha256);
	text = vb_read_file(memo, 1 << 20, &len, &err);
	assert_non_null(text);
	assert_non_null(strstr(text, fa.sha256));
	free(text);
	/* other bytes, same size, the old mtime put back: another ctime */
	struct stat st;
	assert_int_equal(stat(f, &st), 0);
	write_at(f, 0, b, sizeof(b), -1);
	struct timespec ts[2] = { st.st_atim, st.st_mtim };
	assert_int_equal(utimensat(AT_FDCWD, f, ts, 0), 0);
	assert_int_equal(vb_snap_digest(f, &fb, &err), 0);
	assert_string_not_equal(fa.sha256, fb.sha256);
	assert_int_equal(vb_snap_source_digest(f, d, &err), 0);
	assert_string_equal(d, fb.sha256);
	/* a damaged memo is as none */
	write_at(memo, 0, "garbage\n\n0 1 2\n", 15, 15);
	assert_int_equal(vb_snap_source_digest(f, d, &err), 0);
	assert_string_equal(d, fb.sha256);
	/* a file that is not there is an error, not a remembered digest */
	unlink(f);
	assert_int_equal(vb_snap_source_digest(f, d, &err), -1);
}

/* A damaged warm snapshot makes way for its replacement (vb_snap_retire):
 * deleted, or, a base of diffs, kept under no name for them. */
static void test_retire(void **state)
{
	(void)state;
	struct vb_snap b, d, x, o;
	make_snapshot("warm-base", &b);
	make_diff("diff", &b, &d);
	make_snapshot_v("warm-x", 7, &x);
	vb_error err = { 0 };
	assert_int_equal(vb_snap_retire(&x, &err), 0);
	assert_false(present(&x));
	assert_int_equal(vb_snap_retire(&b, &err), 0);
	assert_true(present(&b));
	char *dir = NULL;
	assert_int_equal(vb_snap_open("warm-base", &o, &dir, &err), -1);
	assert_int_equal(err.kind, VB_E_NOTFOUND);
	/* the same snapshot, by its id: its files and its diff untouched */
	assert_int_equal(vb_snap_open(b.id, &o, &dir, &err), 0);
	assert_string_equal(o.name, "");
	assert_string_equal(o.id, b.id);
	assert_int_equal(vb_snap_verify(&o, dir, VB_SNAP_VERIFY_FULL, &err), 0);
	free(dir);
	dir = NULL;
	assert_int_equal(vb_snap_open("diff", &o, &dir, &err), 0);
	assert_string_equal(o.base, b.id);
	free(dir);
	/* the name is free for the replacement */
	struct vb_snap n;
	make_snapshot_v("warm-base", 9, &n);
	assert_string_not_equal(n.id, b.id);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_commit_open_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damage_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_digest_ignores_hole_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_round_trip_and_refusals, setup, teardown),
		cmocka_unit_test(test_sources_mismatch_named),
		cmocka_unit_test_setup_teardown(test_source_digest_memo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retire, setup, teardown),
		cmocka_unit_test_setup_teardown(test_diff_commit_and_assemble, setup, teardown),
		cmocka_unit_test_setup_teardown(test_evict_lru, setup, teardown),
		cmocka_unit_test_setup_teardown(test_evict_diffs_before_their_base, setup, teardown),
		cmocka_unit_test_setup_teardown(test_evict_caches_first, setup, teardown),
		cmocka_unit_test(test_max_bytes),
		cmocka_unit_test_setup_teardown(test_diff_manifest, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
