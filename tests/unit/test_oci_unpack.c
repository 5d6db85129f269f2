/* SPDX-License-Identifier: Apache-2.0 */
/* The layer applier (src/oci/unpack.c): layers made here as tars in memory,
 * applied to the in-memory tree, and what the tree then holds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "oci/unpack.h"

/* the layers below are tables of positional rows, most fields left 0 */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* One tar entry: type 'f' file, 'd' dir, 'l' symlink, 'h' hard link,
 * 'c' char device, 'p' FIFO; (arg) the contents / link target. */
struct ent {
	char type;
	const char *path;
	unsigned mode, uid, gid;
	const char *arg;
	long long size; /* a size claim for 'f' without contents (no data follows) */
	unsigned rdev;
};

struct layer {
	char buf[1 << 20];
	size_t used;
};

static void make_layer_f(struct layer *l, const struct ent *e, size_t n, int filter)
{
	struct archive *a = archive_write_new();
	assert_non_null(a);
	assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
	if (filter)
		assert_int_equal(archive_write_add_filter(a, filter), ARCHIVE_OK);
	assert_int_equal(archive_write_open_memory(a, l->buf, sizeof(l->buf), &l->used), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *ae = archive_entry_new();
		archive_entry_copy_pathname(ae, e[i].path);
		archive_entry_set_perm(ae, e[i].mode ? e[i].mode : 0644);
		archive_entry_set_uid(ae, e[i].uid);
		archive_entry_set_gid(ae, e[i].gid);
		size_t len = 0;
		switch (e[i].type) {
		case 'f':
			archive_entry_set_filetype(ae, AE_IFREG);
			len = e[i].arg ? strlen(e[i].arg) : 0;
			archive_entry_set_size(ae, e[i].size ? e[i].size : (long long)len);
			break;
		case 'd':
			archive_entry_set_filetype(ae, AE_IFDIR);
			break;
		case 'l':
			archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_copy_symlink(ae, e[i].arg);
			break;
		case 'h':
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_copy_hardlink(ae, e[i].arg);
			break;
		case 'c':
			archive_entry_set_filetype(ae, AE_IFCHR);
			archive_entry_set_rdev(ae, e[i].rdev);
			break;
		case 'p':
			archive_entry_set_filetype(ae, AE_IFIFO);
			break;
		}
		assert_true(archive_write_header(a, ae) >= ARCHIVE_WARN);
		if (len)
			assert_int_equal(archive_write_data(a, e[i].arg, len), (ssize_t)len);
		archive_entry_free(ae);
	}
	archive_write_close(a);
	archive_write_free(a);
}

static void make_layer(struct layer *l, const struct ent *e, size_t n)
{
	make_layer_f(l, e, n, 0);
}

/* Apply (e) as layer (num) of (t); returns the apply's result, the message in (err). */
static int apply(struct vb_rootfs_tree *t, unsigned num, const struct ent *e, size_t n, vb_error *err)
{
	static struct layer l;
	make_layer(&l, e, n);
	struct archive *a = vb_rootfs_layer_open_memory(l.buf, l.used, NULL, err);
	assert_non_null(a);
	int rc = vb_rootfs_tree_apply(t, a, num, "L", NULL, err);
	archive_read_free(a);
	return rc;
}
#define APPLY(t, num, ...)                                                                      \
	({                                                                                      \
		const struct ent e_[] = { __VA_ARGS__ };                                        \
		apply(t, num, e_, sizeof(e_) / sizeof(e_[0]), &err);                            \
	})

static int has(struct vb_rootfs_tree *t, const char *path)
{
	struct vb_rootfs_stat st;
	return vb_rootfs_tree_stat(t, path, &st) == 0;
}

static void test_whiteouts(void **state)
{
	(void)state;
	vb_error err = { 0 };
	struct vb_rootfs_tree *t = vb_rootfs_tree_new(0, 0);
	assert_int_equal(APPLY(t, 0, { 'd', "etc/", 0755 }, { 'f', "etc/a", 0, 0, 0, "a" },
			       { 'f', "etc/b", 0, 0, 0, "b" }, { 'd', "opt/", 0755 },
			       { 'f', "opt/x", 0, 0, 0, "x" }, { 'd', "opt/sub" }, { 'f', "opt/sub/y", 0, 0, 0, "y" },
			       { 'f', "var/c", 0, 0, 0, "c" }),
			 0);
	assert_true(has(t, "var") && has(t, "etc/a") && has(t, "opt/sub/y"));
	/* a whiteout hides a lower file; an opaque dir everything lower in it,
	 * but not what its own layer puts there (before or after the marker);
	 * an overlayfs 0:0 device is a whiteout too */
	assert_int_equal(APPLY(t, 1, { 'f', "etc/.wh.a" }, { 'f', "opt/new", 0, 0, 0, "n" },
			       { 'f', "opt/.wh..wh..opq" }, { 'f', "opt/sub/z", 0, 0, 0, "z" },
			       { 'c', "var/c", 0, 0, 0, NULL, 0, 0 }, { 'f', "etc/.wh.nothere" }),
			 0);
	assert_false(has(t, "etc/a"));
	assert_true(has(t, "etc/b"));
	assert_false(has(t, "opt/x"));
	assert_false(has(t, "opt/sub/y"));
	assert_true(has(t, "opt/new") && has(t, "opt/sub/z"));
	assert_false(has(t, "var/c"));
	assert_false(has(t, "etc/.wh.a") || has(t, "opt/.wh..wh..opq"));
	/* a whiteout in the same layer as its file does not hide it */
	assert_int_equal(APPLY(t, 2, { 'f', "same", 0, 0, 0, "s" }, { 'f', ".wh.same" }), 0);
	assert_true(has(t, "same"));
	/* markers repeated, and nested under an opaque directory */
	assert_int_equal(APPLY(t, 3, { 'f', "etc/.wh..wh..opq" }, { 'f', "etc/c", 0, 0, 0, "c" },
			       { 'f', "etc/.wh..wh..opq" }, { 'f', "etc/sub/.wh..wh..opq" }),
			 0);
	assert_false(has(t, "etc/b"));
	assert_true(has(t, "etc/c") && has(t, "etc/sub"));
	/* a whiteout of a directory hides all of it */
	assert_int_equal(APPLY(t, 4, { 'f', ".wh.opt" }), 0);
	assert_false(has(t, "opt") || has(t, "opt/sub/z"));
	vb_rootfs_tree_free(t);
}

static void test_links_owners_modes(void **state)
{
	(void)state;
	vb_error err = { 0 };
	struct vb_rootfs_tree *t = vb_rootfs_tree_new(0, 0);
	assert_int_equal(APPLY(t, 0, { 'd', "./usr/bin/", 0755 }, { 'f', "./usr/bin/su", 04755, 0, 0, "su" },
			       { 'h', "./usr/bin/su2", 0, 0, 0, "./usr/bin/su" },
			       { 'l', "./bin", 0777, 0, 0, "usr/bin" }, { 'l', "./abs", 0777, 0, 0, "/etc/passwd" },
			       { 'f', "./home/u/f", 0600, 1000, 1000, "u" }, { 'c', "./dev/null", 0666, 0, 0, NULL, 0, 0x103 },
			       { 'p', "./fifo" }),
			 0);
	struct vb_rootfs_stat su, su2, st;
	assert_int_equal(vb_rootfs_tree_stat(t, "usr/bin/su", &su), 0);
	assert_int_equal(vb_rootfs_tree_stat(t, "usr/bin/su2", &su2), 0);
	assert_int_equal(su.mode, S_IFREG | 04755);
	assert_ptr_equal(su.ino, su2.ino);
	assert_int_equal(vb_rootfs_tree_stat(t, "bin", &st), 0);
	assert_true(S_ISLNK(st.mode));
	assert_string_equal(st.link, "usr/bin");
	assert_int_equal(vb_rootfs_tree_stat(t, "abs", &st), 0);
	assert_string_equal(st.link, "/etc/passwd");
	assert_int_equal(vb_rootfs_tree_stat(t, "home/u/f", &st), 0);
	assert_int_equal(st.uid, 1000);
	assert_int_equal(st.gid, 1000);
	assert_int_equal(st.mode, S_IFREG | 0600);
	assert_false(has(t, "dev/null") || has(t, "fifo")); /* skipped */
	/* a hard link to a symlink: a symlink with the same target */
	assert_int_equal(APPLY(t, 1, { 'h', "bin2", 0, 0, 0, "bin" }), 0);
	assert_int_equal(vb_rootfs_tree_stat(t, "bin2", &st), 0);
	assert_true(S_ISLNK(st.mode));
	assert_string_equal(st.link, "usr/bin");
	/* replacing one name of a hard link leaves the other */
	assert_int_equal(APPLY(t, 2, { 'f', "usr/bin/su", 0755, 0, 0, "new" }), 0);
	assert_int_equal(vb_rootfs_tree_stat(t, "usr/bin/su2", &su2), 0);
	assert_int_equal(su2.mode, S_IFREG | 04755);
	assert_int_equal(su2.layer, 0);
	struct vb_rootfs_totals tot;
	vb_rootfs_tree_totals(t, &tot);
	/* root, usr, usr/bin, su, su2 (old), bin, bin2, abs, home, home/u, f */
	assert_int_equal(tot.inodes, 11);
	vb_rootfs_tree_free(t);
}

/* Each malicious layer is refused, naming the layer and the entry. */
static void refused(const struct ent *e, size_t n, const char *entry, const char *why)
{
	vb_error err = { 0 };
	struct vb_rootfs_tree *t = vb_rootfs_tree_new(1 << 30, 0);
	const struct ent base[] = { { 'd', "etc/" }, { 'l', "evil", 0777, 0, 0, "/etc" },
				    { 'l', "up", 0777, 0, 0, "../../.." } };
	assert_int_equal(apply(t, 0, base, 3, &err), 0);
	assert_int_equal(apply(t, 1, e, n, &err), -1);
	char want[256];
	snprintf(want, sizeof(want), "layer 2 (L): entry '%s': ", entry);
	if (!strstr(err.msg, want) || !strstr(err.msg, why))
		fail_msg("message '%s' lacks '%s' or '%s'", err.msg, want, why);
	vb_rootfs_tree_free(t);
}
#define REFUSED(entry, why, ...)                                                         \
	do {                                                                             \
		const struct ent e_[] = { __VA_ARGS__ };                                 \
		refused(e_, sizeof(e_) / sizeof(e_[0]), entry, why);                     \
	} while (0)

static void test_malicious(void **state)
{
	(void)state;
	REFUSED("../escape", "'..'", { 'f', "../escape", 0, 0, 0, "x" });
	REFUSED("a/../../escape", "'..'", { 'f', "a/../../escape", 0, 0, 0, "x" });
	REFUSED("/etc/passwd", "absolute", { 'f', "/etc/passwd", 0, 0, 0, "x" });
	REFUSED("evil/passwd", "symlink", { 'f', "evil/passwd", 0, 0, 0, "x" });
	REFUSED("up/x", "symlink", { 'f', "up/x", 0, 0, 0, "x" });
	/* the symlink and the write through it in one layer */
	REFUSED("l2/x", "symlink", { 'l', "l2", 0777, 0, 0, "/tmp" }, { 'f', "l2/x", 0, 0, 0, "x" });
	REFUSED("hl", "'..'", { 'h', "hl", 0, 0, 0, "../../etc/shadow" });
	REFUSED("hl", "absolute", { 'h', "hl", 0, 0, 0, "/etc/shadow" });
	REFUSED("hl", "not in the layers", { 'h', "hl", 0, 0, 0, "etc/shadow" });
	REFUSED("hl", "symlink", { 'h', "hl", 0, 0, 0, "evil/shadow" });
	REFUSED("hl", "a hard link to a directory", { 'h', "hl", 0, 0, 0, "etc" });
	REFUSED("big", "bound", { 'f', "big", 0, 0, 0, NULL, 10LL << 30 });
}

static void test_bounds(void **state)
{
	(void)state;
	vb_error err = { 0 };
	struct vb_rootfs_tree *t = vb_rootfs_tree_new(100, 3);
	assert_int_equal(APPLY(t, 0, { 'f', "a", 0, 0, 0, "0123456789" }), 0);
	/* the sum of the claims counts, across layers */
	assert_int_equal(APPLY(t, 1, { 'f', "b", 0, 0, 0, NULL, 95 }), -1);
	assert_non_null(strstr(err.msg, "bound"));
	vb_rootfs_tree_free(t);
	t = vb_rootfs_tree_new(0, 3);
	assert_int_equal(APPLY(t, 0, { 'f', "a" }, { 'f', "b" }, { 'f', "c" }, { 'f', "d" }), -1);
	assert_non_null(strstr(err.msg, "more entries"));
	vb_rootfs_tree_free(t);
}

/* A layer cut inside a file's bytes is refused while it is read. */
static void test_cut_short(void **state)
{
	(void)state;
	static struct layer l;
	static char big[3000];
	memset(big, 'x', sizeof(big) - 1);
	const struct ent e[] = { { 'f', "first", 0644, 0, 0, "1" }, { 'f', "cut", 0644, 0, 0, big } };
	make_layer(&l, e, 2);
	vb_error err = { 0 };
	struct vb_rootfs_tree *t = vb_rootfs_tree_new(0, 0);
	struct archive *a = vb_rootfs_layer_open_memory(l.buf, 512 * 4 + 1000, NULL, &err);
	assert_non_null(a);
	assert_int_equal(vb_rootfs_tree_apply(t, a, 0, "L", NULL, &err), -1);
	if (!strstr(err.msg, "layer 1 (L): entry 'cut': "))
		fail_msg("message: %s", err.msg);
	archive_read_free(a);
	vb_rootfs_tree_free(t);
}

static void test_media_types(void **state)
{
	(void)state;
	vb_error err = { 0 };
	assert_null(vb_rootfs_layer_open_memory("x", 1, "application/vnd.oci.image.layer.v1.tar+bzip2", &err));
	assert_non_null(strstr(err.msg, "unknown layer media type 'application/vnd.oci.image.layer.v1.tar+bzip2'"));
	/* each known type reads a layer compressed as it says */
	static const struct {
		const char *type;
		int filter;
	} ok[] = { { "application/vnd.oci.image.layer.v1.tar", 0 },
		   { "application/vnd.oci.image.layer.v1.tar+gzip", ARCHIVE_FILTER_GZIP },
		   { "application/vnd.oci.image.layer.v1.tar+zstd", ARCHIVE_FILTER_ZSTD },
		   { "application/vnd.docker.image.rootfs.diff.tar.gzip", ARCHIVE_FILTER_GZIP } };
	static struct layer l;
	const struct ent e[] = { { 'f', "hello", 0644, 0, 0, "hi" } };
	for (size_t i = 0; i < 4; i++) {
		make_layer_f(&l, e, 1, ok[i].filter);
		struct vb_rootfs_tree *t = vb_rootfs_tree_new(0, 0);
		struct archive *a = vb_rootfs_layer_open_memory(l.buf, l.used, ok[i].type, &err);
		assert_non_null(a);
		assert_int_equal(vb_rootfs_tree_apply(t, a, 0, "L", NULL, &err), 0);
		assert_true(has(t, "hello"));
		archive_read_free(a);
		vb_rootfs_tree_free(t);
	}
	/* a layer of no bytes is an empty layer */
	{
		struct vb_rootfs_tree *t = vb_rootfs_tree_new(0, 0);
		struct archive *a = vb_rootfs_layer_open_memory("", 0, "application/vnd.oci.image.layer.v1.tar", &err);
		assert_non_null(a);
		assert_int_equal(vb_rootfs_tree_apply(t, a, 0, "L", NULL, &err), 0);
		archive_read_free(a);
		vb_rootfs_tree_free(t);
	}
	/* a layer that is not what its type says: a clear error */
	assert_null(vb_rootfs_layer_open_memory("garbage", 7, "application/vnd.oci.image.layer.v1.tar+gzip", &err));
	assert_non_null(strstr(err.msg, "cannot read the layer as application/vnd.oci.image.layer.v1.tar+gzip"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whiteouts),
		cmocka_unit_test(test_links_owners_modes),
		cmocka_unit_test(test_malicious),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_cut_short),
		cmocka_unit_test(test_media_types),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
