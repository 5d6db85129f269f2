/* SPDX-License-Identifier: Apache-2.0 */
/* cli: skills resolved on the host (src/skill/cli.c): a program found on
 * PATH with its library closure and loader, and what is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "skill/skill.h"
#include "util/util.h"

/* Resolve (name) into a one-skill set (freed by the caller). */
static int resolve(const char *name, struct vb_skill_set *set, vb_error *err)
{
	set->v = calloc(1, sizeof(*set->v));
	assert_non_null(set->v);
	set->n = 1;
	return vb_skill_cli_resolve(name, &set->v[0], err);
}

static void test_dynamic_program_with_its_closure(void **state)
{
	(void)state;
	vb_error err = { 0 };
	struct vb_skill_set set = { 0 };
	/* sh: a dynamic program on every host that builds VoidBox */
	assert_int_equal(resolve("sh", &set, &err), 0);
	const struct vb_skill *s = &set.v[0];
	assert_string_equal(s->type, "cli");
	assert_string_equal(s->name, "sh");
	assert_non_null(strstr(s->source, "/sh"));
	assert_string_equal(s->files[0].rel, "sh");
	assert_true(s->n_files >= 3); /* the program, its loader, libc at least */
	assert_true(!strncmp(s->files[1].rel, "lib/ld-", 7));
	int libc = 0;
	size_t total = 0;
	for (size_t i = 0; i < s->n_files; i++) {
		libc |= !strcmp(s->files[i].rel, "lib/libc.so.6");
		total += s->files[i].len;
		assert_int_equal(s->files[i].mode, 0755);
	}
	assert_true(libc);
	assert_int_equal(total, s->total);
	assert_int_equal(strlen(s->sha256), 64);
	vb_skill_set_free(&set);
}

static void test_refused(void **state)
{
	(void)state;
	vb_error err = { 0 };
	struct vb_skill_set set = { 0 };
	assert_int_equal(resolve("no-such-tool-4711", &set, &err), -1);
	assert_non_null(strstr(err.msg, "program no-such-tool-4711 not found on this host's PATH"));
	vb_skill_set_free(&set);
	const char *bad[] = { "..", ".hidden", "-rf", "a b", "", NULL };
	for (size_t i = 0; bad[i]; i++) {
		vb_error_clear(&err);
		assert_int_equal(resolve(bad[i], &set, &err), -1);
		assert_non_null(strstr(err.msg, "is not a program name"));
		vb_skill_set_free(&set);
	}

	/* a script, a setuid program and a directory on PATH */
	char dir[] = "/tmp/vbclitest.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char p[256], old[4096];
	snprintf(old, sizeof(old), "%s", getenv("PATH") ? getenv("PATH") : "");
	setenv("PATH", dir, 1);
	snprintf(p, sizeof(p), "%s/script", dir);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs("#!/bin/sh\necho hi\n", f);
	fclose(f);
	assert_int_equal(chmod(p, 0755), 0);
	vb_error_clear(&err);
	assert_int_equal(resolve("script", &set, &err), -1);
	assert_non_null(strstr(err.msg, "is not an ELF program"));
	vb_skill_set_free(&set);

	char cmd[600];
	snprintf(cmd, sizeof(cmd), "/bin/cp /bin/true %s/suid && /bin/chmod 4755 %s/suid", dir, dir);
	assert_int_equal(system(cmd), 0);
	vb_error_clear(&err);
	assert_int_equal(resolve("suid", &set, &err), -1);
	assert_non_null(strstr(err.msg, "setuid or setgid: refused"));
	vb_skill_set_free(&set);

	/* too big (a sparse file: refused before it is read) */
	snprintf(p, sizeof(p), "%s/huge", dir);
	f = fopen(p, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(truncate(p, (off_t)257 << 20), 0);
	assert_int_equal(chmod(p, 0755), 0);
	vb_error_clear(&err);
	assert_int_equal(resolve("huge", &set, &err), -1);
	assert_non_null(strstr(err.msg, "more than 256 MiB with its libraries"));
	vb_skill_set_free(&set);

	snprintf(p, sizeof(p), "%s/adir", dir);
	assert_int_equal(mkdir(p, 0755), 0);
	vb_error_clear(&err);
	assert_int_equal(resolve("adir", &set, &err), -1);
	assert_non_null(strstr(err.msg, "not found"));
	vb_skill_set_free(&set);

	setenv("PATH", old, 1);
	snprintf(cmd, sizeof(cmd), "/bin/rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dynamic_program_with_its_closure),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
