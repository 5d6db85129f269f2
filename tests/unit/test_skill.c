/* SPDX-License-Identifier: Apache-2.0 */
/* Skills resolved on the host (src/skill): names, SKILL.md frontmatter,
 * remote URLs, and file:/inline resolution with its limits. */
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

#include "skill/skill.h"
#include "util/util.h"

static int fm(const char *text, char **name, char **desc, vb_error *err)
{
	return vb_skill_frontmatter(text, strlen(text), "S.md", name, desc, err);
}

static void test_names(void **state)
{
	(void)state;
	assert_true(vb_skill_name_ok("release-notes"));
	assert_true(vb_skill_name_ok("a.b_c-1"));
	assert_false(vb_skill_name_ok(""));
	assert_false(vb_skill_name_ok("."));
	assert_false(vb_skill_name_ok(".."));
	assert_false(vb_skill_name_ok("a/b"));
	assert_false(vb_skill_name_ok("../etc"));
	assert_false(vb_skill_name_ok("a\x1b[31m"));
	assert_false(vb_skill_name_ok("a b"));
	char long_name[80];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = 0;
	assert_false(vb_skill_name_ok(long_name));
}

static void test_frontmatter(void **state)
{
	(void)state;
	vb_error err = { 0 };
	char *n = NULL, *d = NULL;
	/* none: fine, nothing set */
	assert_int_equal(fm("# Title\nbody\n", &n, &d, &err), 0);
	assert_null(n);
	assert_null(d);
	assert_int_equal(fm("", &n, &d, &err), 0);
	/* name and description, other keys ignored, CRLF and "..." closing */
	assert_int_equal(fm("---\r\nname: x-y\r\ndescription: does x\r\nlicense: MIT\r\n...\r\nbody", &n,
			    &d, &err),
			 0);
	assert_string_equal(n, "x-y");
	assert_string_equal(d, "does x");
	free(n);
	free(d);
	/* never closed */
	assert_int_equal(fm("---\nname: a\ndescription: b\n", &n, &d, &err), -1);
	assert_string_equal(err.msg, "S.md:1:1: frontmatter: the '---' that opens it has no closing '---' line");
	vb_error_clear(&err);
	/* a YAML error, positioned in the file (line 2 is the first inside) */
	assert_int_equal(fm("---\nname: a\ndescription: b: c\n---\n", &n, &d, &err), -1);
	assert_non_null(strstr(err.msg, "S.md:3:"));
	assert_int_equal(err.kind, VB_E_USAGE);
	vb_error_clear(&err);
	/* not a mapping */
	assert_int_equal(fm("---\n- a\n---\n", &n, &d, &err), -1);
	assert_string_equal(err.msg, "S.md:2:1: frontmatter: expected a mapping with 'name' and 'description'");
	vb_error_clear(&err);
	/* name missing, description missing, description not a string */
	assert_int_equal(fm("---\ndescription: b\n---\n", &n, &d, &err), -1);
	assert_non_null(strstr(err.msg, "'name' is missing"));
	vb_error_clear(&err);
	assert_int_equal(fm("---\nname: a\n---\n", &n, &d, &err), -1);
	assert_non_null(strstr(err.msg, "'description' is missing"));
	vb_error_clear(&err);
	assert_int_equal(fm("---\nname: a\ndescription: [1, 2]\n---\n", &n, &d, &err), -1);
	assert_string_equal(err.msg, "S.md:3:14: frontmatter: 'description' must be a string");
	vb_error_clear(&err);
	/* a name that is no safe path component, at its position */
	assert_int_equal(fm("---\nname: ../../x\ndescription: b\n---\n", &n, &d, &err), -1);
	assert_non_null(strstr(err.msg, "S.md:2:7: frontmatter: name '../../x' is not a safe skill name"));
	vb_error_clear(&err);
	assert_null(n);
	assert_null(d);
}

static void test_remote(void **state)
{
	(void)state;
	char *u = vb_skill_remote_url("https://h", "o/r/s");
	assert_string_equal(u, "https://h/o/r/main/skills/s/SKILL.md");
	free(u);
	u = vb_skill_remote_url("https://h", "o/r");
	assert_string_equal(u, "https://h/o/r/main/SKILL.md");
	free(u);
	vb_error err = { 0 };
	char *b = NULL;
	unsetenv("VOIDBOX_SKILLS_BASE_URL");
	assert_int_equal(vb_skill_remote_base(&b, &err), 0);
	assert_string_equal(b, VB_SKILL_DEFAULT_BASE);
	free(b);
	static const char *const ok[] = { "http://127.0.0.1:8080/", "http://localhost",
					  "http://[::1]:9/x", "https://mirror.example/skills" };
	static const char *const bad[] = { "http://example.com", "http://127.0.0.1.example.com/",
					   "http://localhost.example.com", "ftp://127.0.0.1",
					   "file:///etc" };
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		setenv("VOIDBOX_SKILLS_BASE_URL", ok[i], 1);
		assert_int_equal(vb_skill_remote_base(&b, &err), 0);
		assert_true(b[strlen(b) - 1] != '/');
		free(b);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("VOIDBOX_SKILLS_BASE_URL", bad[i], 1);
		assert_int_equal(vb_skill_remote_base(&b, &err), -1);
		vb_error_clear(&err);
	}
	unsetenv("VOIDBOX_SKILLS_BASE_URL");
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_resolve(void **state)
{
	(void)state;
	char tmpl[] = "/tmp/vb_skill_XXXXXX";
	char *dir = mkdtemp(tmpl);
	assert_non_null(dir);
	char p[512];
	snprintf(p, sizeof(p), "%s/tools", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/tools/sub", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/tools/SKILL.md", dir);
	write_file(p, "no frontmatter\n");
	snprintf(p, sizeof(p), "%s/tools/sub/x.sh", dir);
	write_file(p, "echo x\n");
	chmod(p, 0755);
	snprintf(p, sizeof(p), "%s/tools", dir);

	struct vb_spec_skill sk[3] = { 0 };
	sk[0].type = VB_SPEC_SKILL_FILE;
	sk[0].value = (char[]){ "tools" };
	sk[0].path.abs = p;
	sk[1].type = VB_SPEC_SKILL_INLINE;
	sk[1].name.s = (char[]){ "style" };
	sk[1].content.s = (char[]){ "be brief" };
	sk[2].type = VB_SPEC_SKILL_AGENT;
	sk[2].value = (char[]){ "codex" };
	struct vb_spec_skills list = { .v = sk, .n = 3 };
	struct vb_skill_set set;
	vb_error err = { 0 };
	assert_int_equal(vb_skill_resolve(&list, "s.yaml", 0, &set, &err), 0);
	assert_int_equal(set.n, 2); /* agent: is informational */
	assert_string_equal(set.v[0].name, "tools"); /* the directory's name */
	assert_int_equal(set.v[0].n_files, 2);
	assert_string_equal(set.v[0].files[0].rel, "SKILL.md");
	assert_string_equal(set.v[0].files[1].rel, "sub/x.sh");
	assert_int_equal(set.v[0].files[1].mode, 0755);
	assert_int_equal(set.v[0].total, 15 + 7);
	assert_int_equal(strlen(set.v[0].sha256), 64);
	assert_string_equal(set.v[1].name, "style");
	assert_string_equal(set.v[1].type, "inline");
	vb_skill_set_free(&set);

	/* two skills of one name */
	sk[1].name.s = (char[]){ "tools" };
	assert_int_equal(vb_skill_resolve(&list, "s.yaml", 0, &set, &err), -1);
	assert_non_null(strstr(err.msg, "also named 'tools'"));
	vb_error_clear(&err);
	sk[1].name.s = (char[]){ "style" };

	/* too many files: the limit is named */
	for (int i = 0; i < VB_SKILL_DIR_FILES_MAX; i++) {
		char f[600];
		snprintf(f, sizeof(f), "%s/tools/sub/f%d", dir, i);
		write_file(f, "");
	}
	assert_int_equal(vb_skill_resolve(&list, "s.yaml", 0, &set, &err), -1);
	assert_non_null(strstr(err.msg, "at most 256 files"));
	assert_int_equal(err.kind, VB_E_USAGE);
	vb_error_clear(&err);

	/* mcp: an MCP server, not a skill directory; errors positioned */
	struct vb_spec_skill m = { .type = VB_SPEC_SKILL_MCP, .value = (char[]){ "srv" },
				   .pos = { .line = 4, .col = 7 } };
	struct vb_spec_skills ml = { .v = &m, .n = 1 };
	assert_int_equal(vb_skill_resolve(&ml, "s.yaml", 0, &set, &err), 0);
	assert_int_equal(set.n, 0);
	assert_int_equal(set.n_mcp, 1);
	assert_string_equal(set.mcp[0].name, "srv");
	vb_skill_set_free(&set);
	m.value = (char[]){ "'srv" };
	assert_int_equal(vb_skill_resolve(&ml, "s.yaml", 0, &set, &err), -1);
	assert_string_equal(err.msg, "s.yaml:4:7: skill 'mcp:'srv': unterminated ' quote");
	vb_error_clear(&err);

	/* remote: without fetching (validate): the id's parts are checked */
	struct vb_spec_skill r = { .type = VB_SPEC_SKILL_REMOTE, .value = (char[]){ "o/r/s" } };
	struct vb_spec_skills rl = { .v = &r, .n = 1 };
	assert_int_equal(vb_skill_resolve(&rl, "s.yaml", VB_SKILL_NO_FETCH, &set, &err), 0);
	assert_string_equal(set.v[0].name, "s");
	vb_skill_set_free(&set);
	r.value = (char[]){ "o/../s" };
	assert_int_equal(vb_skill_resolve(&rl, "s.yaml", VB_SKILL_NO_FETCH, &set, &err), -1);
	assert_non_null(strstr(err.msg, "'..' is not a safe owner"));
	vb_error_clear(&err);

	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_frontmatter),
		cmocka_unit_test(test_remote),
		cmocka_unit_test(test_resolve),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
