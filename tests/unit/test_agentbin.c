/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent binaries without a network or a VM: the integrity string, the
 * tarball unpacker's path checks on archives built here, and what an agent
 * stage's VM gets (mounts, PATH) from a cache laid out by hand.
 */
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
#include <unistd.h>

#include "agentbin/agentbin.h"
#include "run/vmconf.h"
#include "util/util.h"

static char *tmpdir(void)
{
	char *d = strdup("/tmp/vb-unit-agentbin-XXXXXX");
	assert_non_null(d);
	assert_non_null(mkdtemp(d));
	return d;
}

static void test_integrity(void **state)
{
	(void)state;
	unsigned char d[64];
	/* sha512 of the empty string */
	assert_int_equal(vb_agentbin_parse_integrity("sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==", d), 0);
	assert_int_equal(d[0], 0xcf);
	assert_int_equal(d[63], 0x3e);
	assert_int_equal(vb_agentbin_parse_integrity("sha1-2jmj7l5rSw0yVb/vlWAYkK/YBwk=", d), -1);
	assert_int_equal(vb_agentbin_parse_integrity("sha512-short==", d), -1);
	assert_int_equal(vb_agentbin_parse_integrity("sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaP!==", d), -1);
	assert_int_equal(vb_agentbin_parse_integrity(NULL, d), -1);
}

struct member {
	const char *name;
	unsigned type;      /* AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR */
	const char *target; /* link target, or hardlink when type is AE_IFREG */
};

/* A gzip'd tar of (m) at (path). */
static void make_tgz(const char *path, const struct member *m, size_t n)
{
	struct archive *a = archive_write_new();
	archive_write_add_filter_gzip(a);
	archive_write_set_format_pax_restricted(a);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, m[i].name);
		archive_entry_set_filetype(e, m[i].type);
		archive_entry_set_perm(e, 04755);
		if (m[i].type == AE_IFLNK)
			archive_entry_set_symlink(e, m[i].target);
		else if (m[i].target)
			archive_entry_set_hardlink(e, m[i].target);
		if (m[i].type == AE_IFREG && !m[i].target)
			archive_entry_set_size(e, 3);
		archive_write_header(a, e);
		if (m[i].type == AE_IFREG && !m[i].target)
			archive_write_data(a, "hi\n", 3);
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
}

/* Extract (m) into a fresh directory; returns the result, (*dest) set. */
static int extract(const struct member *m, size_t n, char **dest, char **base)
{
	*base = tmpdir();
	char *tgz = vb_strfmt("%s/p.tgz", *base);
	make_tgz(tgz, m, n);
	*dest = vb_strfmt("%s/tree", *base);
	vb_error err = { 0 };
	int rc = vb_agentbin_extract(tgz, *dest, &err);
	free(tgz);
	return rc;
}

static void test_extract_keeps_the_package(void **state)
{
	(void)state;
	static const struct member ok[] = {
		{ "package/", AE_IFDIR, NULL },
		{ "package/bin/x", AE_IFREG, NULL },
		{ "package/lib/y", AE_IFREG, NULL },
		{ "package/lib/link", AE_IFLNK, "../bin/x" },
	};
	char *dest, *base;
	assert_int_equal(extract(ok, 4, &dest, &base), 0);
	char *x = vb_strfmt("%s/bin/x", dest), *l = vb_strfmt("%s/lib/link", dest);
	struct stat st;
	assert_int_equal(stat(x, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755); /* no setuid from the archive */
	assert_int_equal(st.st_size, 3);
	assert_int_equal(stat(l, &st), 0);
	free(x);
	free(l);
	free(dest);
	vb_rm_rf(base);
	free(base);
}

static void test_extract_refuses_what_leaves_the_tree(void **state)
{
	(void)state;
	static const struct member bad[][2] = {
		{ { "package/x", AE_IFREG, NULL }, { "/etc/evil", AE_IFREG, NULL } },
		{ { "package/x", AE_IFREG, NULL }, { "package/../evil", AE_IFREG, NULL } },
		{ { "package/x", AE_IFREG, NULL }, { "package/a/../../evil", AE_IFREG, NULL } },
		{ { "package/x", AE_IFREG, NULL }, { "other/x", AE_IFREG, NULL } },
		{ { "package/x", AE_IFREG, NULL }, { "package/l", AE_IFLNK, "/etc" } },
		{ { "package/x", AE_IFREG, NULL }, { "package/l", AE_IFLNK, "../etc" } },
		{ { "package/x", AE_IFREG, NULL }, { "package/d/l", AE_IFLNK, "../../x" } },
		{ { "package/x", AE_IFREG, NULL }, { "package/h", AE_IFREG, "/etc/passwd" } },
		{ { "package/x", AE_IFREG, NULL }, { "package/c", AE_IFCHR, NULL } },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *dest, *base;
		assert_int_equal(extract(bad[i], 2, &dest, &base), -1);
		char *evil = vb_strfmt("%s/evil", base);
		assert_int_not_equal(access(evil, F_OK), 0);
		free(evil);
		free(dest);
		vb_rm_rf(base);
		free(base);
	}
}

/* A cache laid out as a pull leaves it, for a version given in the
 * environment; the support files are any readable files. */
static void fake_cache(const char *base, const char *kind_env, const char *ref_name)
{
	static const char integ[] = "sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==";
	setenv(kind_env, "1.0.0", 1);
	char *refs = vb_strfmt("%s/voidbox/agents/refs", base);
	vb_error err = { 0 };
	assert_int_equal(vb_mkdir_p(refs, 0755, &err), 0);
	char *ref = vb_strfmt("%s/%s", refs, ref_name);
	FILE *f = fopen(ref, "w");
	assert_non_null(f);
	fputs(integ, f);
	fclose(f);
	free(ref);
	free(refs);
}

static void test_vmconf_gets_mounts_and_path(void **state)
{
	(void)state;
	char *base = tmpdir();
	setenv("XDG_CACHE_HOME", base, 1);
	setenv("VOIDBOX_MUSL_LOADER", "/etc/hostname", 1);
	setenv("VOIDBOX_BASH_STATIC", "/etc/passwd", 1);
	fake_cache(base, "VOIDBOX_CLAUDE_CODE_VERSION",
		   "@anthropic-ai+claude-code-linux-x64-musl@1.0.0");
	fake_cache(base, "VOIDBOX_CODEX_VERSION", "@openai+codex@1.0.0-linux-x64");
	/* both versions point at the same (empty-string) tree: enough here */
	char *tree = vb_strfmt("%s/voidbox/agents/trees/sha512-cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce", base);
	vb_error err = { 0 };
	assert_int_equal(vb_mkdir_p(tree, 0755, &err), 0);

	struct vb_run_vmconf c;
	memset(&c, 0, sizeof(c));
	assert_int_equal(vb_run_vmconf_add_agent(&c, VB_AGENTBIN_CLAUDE_CODE, NULL, &err), 0);
	assert_int_equal(vb_run_vmconf_add_agent(&c, VB_AGENTBIN_CODEX, NULL, &err), 0);
	assert_int_equal(vb_run_vmconf_add_agent(&c, VB_AGENTBIN_CODEX, NULL, &err), 0);
	assert_int_equal(c.cfg.n_mounts, 3); /* two trees, one support directory */
	assert_string_equal(c.cfg.mounts[0].host, tree);
	assert_string_equal(c.cfg.mounts[0].guest, "/opt/voidbox/agents/claude-code");
	assert_string_equal(c.cfg.mounts[1].guest, "/opt/voidbox/support");
	assert_string_equal(c.cfg.mounts[2].guest, "/opt/voidbox/agents/codex");
	for (size_t i = 0; i < 3; i++)
		assert_false(c.cfg.mounts[i].rw);
	assert_int_equal(c.n_env, 1);
	assert_string_equal(c.env[0], "PATH=/opt/voidbox/agents/codex/bin:"
				      "/opt/voidbox/agents/claude-code/bin:"
				      "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
	assert_null(c.env[1]);
	vb_run_vmconf_free(&c);

	/* the support files are missing: the package to install is named */
	memset(&c, 0, sizeof(c));
	setenv("VOIDBOX_BASH_STATIC", "/nonexistent", 1);
	assert_int_equal(vb_run_vmconf_add_agent(&c, VB_AGENTBIN_CODEX, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "bash-static"));
	vb_run_vmconf_free(&c);
	free(tree);
	vb_rm_rf(base);
	free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_integrity),
		cmocka_unit_test(test_extract_keeps_the_package),
		cmocka_unit_test(test_extract_refuses_what_leaves_the_tree),
		cmocka_unit_test(test_vmconf_gets_mounts_and_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
