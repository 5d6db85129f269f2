/* SPDX-License-Identifier: Apache-2.0 */
/* Image skills checked on the host (src/skill/oci.c): mount paths, clashes,
 * readonly, references, and the per-stage bound in vb_skill_resolve. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skill/skill.h"

static struct vb_spec_skill oci(const char *image, const char *mount)
{
	struct vb_spec_skill s = { .type = VB_SPEC_SKILL_OCI, .object_form = true };
	s.image.s = (char *)(uintptr_t)image;
	s.mount.s = (char *)(uintptr_t)mount;
	s.readonly.v = true;
	s.pos.line = 7;
	s.pos.col = 9;
	return s;
}

static void test_overlap(void **state)
{
	(void)state;
	assert_true(vb_skill_paths_overlap("/opt/a", "/opt/a"));
	assert_true(vb_skill_paths_overlap("/opt/a/", "/opt/a"));
	assert_true(vb_skill_paths_overlap("/opt/a/b", "/opt/a"));
	assert_true(vb_skill_paths_overlap("/opt", "/opt/a"));
	assert_false(vb_skill_paths_overlap("/opt/ab", "/opt/a"));
	assert_false(vb_skill_paths_overlap("/opt/a", "/opt/ab"));
	assert_false(vb_skill_paths_overlap("/srv/x", "/opt/x"));
}

/* (mount) refused, the message holding (want). */
static void refused(const char *mount, const char *want)
{
	struct vb_spec_skill s = oci("tools:1", mount);
	struct vb_skill_oci o;
	vb_error err = { 0 };
	assert_int_equal(vb_skill_oci_check(&s, NULL, 0, &o, &err), -1);
	assert_int_equal(err.kind, VB_E_USAGE);
	if (!strstr(err.msg, want))
		fail_msg("mount %s: '%s' lacks '%s'", mount, err.msg, want);
	vb_skill_oci_free(&o);
}

static void test_mounts(void **state)
{
	(void)state;
	refused("opt/x", "must be an absolute guest path");
	refused("/", "would hide the stage's own root");
	refused("//", "would hide the stage's own root");
	refused("/opt/./x", "'.' or '..' components");
	refused("/opt/x/..", "'.' or '..' components");
	refused("/usr/local/tools", "clashes with /usr");
	refused("/workspace/tools", "clashes with /workspace");
	refused("/home", "clashes with /home");
	refused("/opt", "clashes with /opt/voidbox"); /* around it */
	refused("/proc", "clashes with /proc");
	refused("/.voidbox/x", "clashes with /.voidbox");
	struct vb_spec_skill s = oci("tools:1", "/opt/tools/");
	struct vb_skill_oci o[2];
	vb_error err = { 0 };
	assert_int_equal(vb_skill_oci_check(&s, NULL, 0, &o[0], &err), 0);
	assert_string_equal(o[0].mount, "/opt/tools"); /* one form */
	assert_string_equal(o[0].image, "tools:1");
	s = oci("other:2", "/opt/tools/sub");
	assert_int_equal(vb_skill_oci_check(&s, o, 1, &o[1], &err), -1);
	assert_non_null(strstr(err.msg, "clashes with the mount of skill image 'tools:1' (line 7)"));
	vb_skill_oci_free(&o[1]);
	s = oci("other:2", "/opt/toolsX");
	assert_int_equal(vb_skill_oci_check(&s, o, 1, &o[1], &err), 0);
	vb_skill_oci_free(&o[0]);
	vb_skill_oci_free(&o[1]);
}

static void test_readonly_and_reference(void **state)
{
	(void)state;
	struct vb_spec_skill s = oci("tools:1", "/opt/t");
	s.readonly.set = true;
	s.readonly.v = false;
	struct vb_skill_oci o;
	vb_error err = { 0 };
	assert_int_equal(vb_skill_oci_check(&s, NULL, 0, &o, &err), -1);
	assert_non_null(strstr(err.msg, "readonly: false is not supported"));
	vb_skill_oci_free(&o);
	s = oci("Bad/UPPER:x", "/opt/t");
	assert_int_equal(vb_skill_oci_check(&s, NULL, 0, &o, &err), -1);
	assert_int_equal(err.kind, VB_E_USAGE);
	vb_skill_oci_free(&o);
}

static void test_resolve_bound(void **state)
{
	(void)state;
	struct vb_spec_skill v[5];
	char img[5][32], mnt[5][32];
	for (int i = 0; i < 5; i++) {
		snprintf(img[i], sizeof(img[i]), "t%d:1", i);
		snprintf(mnt[i], sizeof(mnt[i]), "/opt/t%d", i);
		v[i] = oci(img[i], mnt[i]);
		v[i].pos.line = (unsigned)(10 + i);
	}
	struct vb_spec_skills sk = { .v = v, .n = 4 };
	struct vb_skill_set set;
	vb_error err = { 0 };
	assert_int_equal(vb_skill_resolve(&sk, "s.yaml", VB_SKILL_NO_FETCH, &set, &err), 0);
	assert_int_equal(set.n_oci, 4);
	assert_int_equal(set.n, 0);
	assert_string_equal(set.oci[3].mount, "/opt/t3");
	vb_skill_set_free(&set);
	sk.n = 5;
	assert_int_equal(vb_skill_resolve(&sk, "s.yaml", VB_SKILL_NO_FETCH, &set, &err), -1);
	assert_non_null(strstr(err.msg, "s.yaml:14:9: skill image 't4:1': a stage may have at most 4"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_overlap),
		cmocka_unit_test(test_mounts),
		cmocka_unit_test(test_readonly_and_reference),
		cmocka_unit_test(test_resolve_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
