/* SPDX-License-Identifier: Apache-2.0 */
/* Host names, allow_domains patterns and the name table (src/net/domain.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "net/domain.h"

static const char *refused_name(const char *s)
{
	static vb_error err;
	char out[VB_DOMAIN_MAX];
	memset(&err, 0, sizeof(err));
	if (vb_domain_normalize(s, out, &err) != -1)
		fail_msg("'%s' accepted", s);
	return err.msg;
}

static const char *refused_pattern(const char *s)
{
	static vb_error err;
	struct vb_domain_pattern p;
	memset(&err, 0, sizeof(err));
	if (vb_domain_pattern_parse(s, &p, &err) != -1)
		fail_msg("'%s' accepted", s);
	assert_int_equal(err.kind, VB_E_USAGE);
	return err.msg;
}

static struct vb_domain_pattern pattern(const char *s)
{
	struct vb_domain_pattern p;
	vb_error err = { 0 };
	if (vb_domain_pattern_parse(s, &p, &err) != 0)
		fail_msg("'%s' refused: %s", s, err.msg);
	return p;
}

static void test_normalize(void **state)
{
	(void)state;
	char out[VB_DOMAIN_MAX];
	assert_int_equal(vb_domain_normalize("API.GitHub.com.", out, NULL), 0);
	assert_string_equal(out, "api.github.com");
	assert_int_equal(vb_domain_normalize("_dmarc.x-y.example", out, NULL), 0);
	assert_string_equal(out, "_dmarc.x-y.example");
	assert_int_equal(vb_domain_normalize("localhost", out, NULL), 0);
	assert_non_null(strstr(refused_name(""), "empty"));
	assert_non_null(strstr(refused_name("."), "empty"));
	assert_non_null(strstr(refused_name("a..b"), "empty label at column 3"));
	assert_non_null(strstr(refused_name(".a"), "column 1"));
	assert_non_null(strstr(refused_name("a.b.."), "empty label"));
	assert_non_null(strstr(refused_name("-a.com"), "starts or ends with '-'"));
	assert_non_null(strstr(refused_name("a-.com"), "starts or ends with '-'"));
	assert_non_null(strstr(refused_name("a b.com"), "column 2"));
	assert_non_null(strstr(refused_name("a\033[2J.com"), "column 2"));
	assert_non_null(strstr(refused_name("ex\xc3\xa4mple.com"), "column 3"));
	char label[80];
	memset(label, 'a', 64);
	strcpy(label + 64, ".com");
	assert_non_null(strstr(refused_name(label), "longer than 63"));
	strcpy(label + 63, ".com"); /* 63 is fine */
	assert_int_equal(vb_domain_normalize(label, out, NULL), 0);
	/* 253 characters fine, 254 not (255 with a trailing dot fine) */
	char longn[300];
	size_t n = 0;
	while (n < 253) {
		memcpy(longn + n, "abcdefghi.", 10);
		n += 10;
	}
	longn[253] = '\0';
	longn[251] = 'x'; /* "....abcdefghi.ax" - no trailing empty label */
	if (longn[252] == '.')
		longn[252] = 'y';
	assert_int_equal(vb_domain_normalize(longn, out, NULL), 0);
	strcpy(longn + 253, ".");
	assert_int_equal(vb_domain_normalize(longn, out, NULL), 0);
	strcpy(longn + 253, "z");
	assert_non_null(strstr(refused_name(longn), "longer than 253"));
}

static void test_patterns(void **state)
{
	(void)state;
	char s[VB_DOMAIN_MAX + 2];
	struct vb_domain_pattern p = pattern("api.github.com");
	assert_false(p.wildcard);
	assert_true(vb_domain_pattern_match(&p, "api.github.com"));
	assert_true(vb_domain_pattern_match(&p, "API.GITHUB.COM."));
	assert_false(vb_domain_pattern_match(&p, "x.api.github.com"));
	assert_false(vb_domain_pattern_match(&p, "github.com"));
	assert_false(vb_domain_pattern_match(&p, "api.github.co"));
	assert_false(vb_domain_pattern_match(&p, "api.github.com.."));

	p = pattern("*.PyPI.org.");
	assert_true(p.wildcard);
	assert_string_equal(vb_domain_pattern_format(&p, s, sizeof(s)), "*.pypi.org");
	assert_true(vb_domain_pattern_match(&p, "files.pypi.org"));
	assert_true(vb_domain_pattern_match(&p, "a.b.pypi.org"));
	assert_true(vb_domain_pattern_match(&p, "Files.PYPI.org."));
	assert_false(vb_domain_pattern_match(&p, "pypi.org"));
	assert_false(vb_domain_pattern_match(&p, "pypi.org."));
	assert_false(vb_domain_pattern_match(&p, ".pypi.org"));
	assert_false(vb_domain_pattern_match(&p, "evilpypi.org"));
	assert_false(vb_domain_pattern_match(&p, "files.pypi.org.evil.com"));
	assert_false(vb_domain_pattern_match(&p, ""));
	assert_false(vb_domain_pattern_match(&p, NULL));

	assert_non_null(strstr(refused_pattern("*"), "column 1"));
	assert_non_null(strstr(refused_pattern("*."), "empty"));
	assert_non_null(strstr(refused_pattern("a.*.com"), "column 3"));
	assert_non_null(strstr(refused_pattern("*.*.com"), "column 3"));
	assert_non_null(strstr(refused_pattern("*pypi.org"), "column 1"));
	assert_non_null(strstr(refused_pattern("**.pypi.org"), "column 1"));
	assert_non_null(strstr(refused_pattern("1.2.3.4"), "is an address"));
	assert_non_null(strstr(refused_pattern("*.1"), "is an address"));
	assert_non_null(strstr(refused_pattern("*.a_b c"), "in '*.a_b c'"));
	assert_non_null(strstr(refused_pattern("https://x.org"), "column 6"));
	assert_non_null(strstr(refused_pattern(""), "empty"));
}

static void test_list(void **state)
{
	(void)state;
	struct vb_domain_list l = { 0 };
	vb_error err = { 0 };
	assert_int_equal(vb_domain_list_add_str(&l, "api.github.com", &err), 0);
	assert_int_equal(vb_domain_list_add_str(&l, "*.pypi.org", &err), 0);
	assert_int_equal(vb_domain_list_add_str(&l, "pypi.org", &err), 0);
	assert_int_equal(vb_domain_list_add_str(&l, "bad name", &err), -1);
	assert_ptr_equal(vb_domain_list_match(&l, "files.pypi.org"), &l.v[1]);
	assert_ptr_equal(vb_domain_list_match(&l, "pypi.org"), &l.v[2]);
	assert_null(vb_domain_list_match(&l, "github.com"));
	while (l.n < VB_DOMAIN_LIST_MAX)
		assert_int_equal(vb_domain_list_add_str(&l, "x.org", &err), 0);
	assert_int_equal(vb_domain_list_add_str(&l, "x.org", &err), -1);
	vb_domain_list_free(&l);
	vb_domain_list_free(&l);
	assert_null(vb_domain_list_match(&l, "x.org"));
}

static const uint8_t *a4(const char *s)
{
	static uint8_t b[4][16];
	static int i;
	i = (i + 1) % 4;
	assert_int_equal(inet_pton(AF_INET, s, b[i]), 1);
	return b[i];
}

static const uint8_t *a6(const char *s)
{
	static uint8_t b[4][16];
	static int i;
	i = (i + 1) % 4;
	assert_int_equal(inet_pton(AF_INET6, s, b[i]), 1);
	return b[i];
}

static void test_nametab(void **state)
{
	(void)state;
	struct vb_nametab *t = vb_nametab_new(0);
	assert_non_null(t);
	int64_t now = 1000000;
	assert_int_equal(vb_nametab_add(t, "Files.PyPI.org.", AF_INET, a4("151.101.0.223"), 300, now), 0);
	assert_int_equal(vb_nametab_add(t, "pypi.org", AF_INET, a4("151.101.0.223"), 0, now), 0);
	assert_int_equal(vb_nametab_add(t, "pypi.org", AF_INET6, a6("2a04:4e42::223"), 86400, now), 0);
	assert_int_equal(vb_nametab_add(t, "bad name", AF_INET, a4("1.2.3.4"), 60, now), -1);
	assert_int_equal(vb_nametab_add(t, "x.org", AF_UNIX, a4("1.2.3.4"), 60, now), -1);
	assert_int_equal(vb_nametab_count(t), 3);

	/* is address A valid for name N */
	assert_true(vb_nametab_valid(t, "files.pypi.org", AF_INET, a4("151.101.0.223"), now));
	assert_true(vb_nametab_valid(t, "FILES.pypi.org.", AF_INET, a4("151.101.0.223"), now));
	assert_false(vb_nametab_valid(t, "files.pypi.org", AF_INET, a4("151.101.0.224"), now));
	assert_false(vb_nametab_valid(t, "evil.org", AF_INET, a4("151.101.0.223"), now));
	/* IPv4-mapped IPv6 is the IPv4 address */
	assert_true(vb_nametab_valid(t, "pypi.org", AF_INET6, a6("::ffff:151.101.0.223"), now));

	/* which names resolved to this address */
	const char *names[4];
	assert_int_equal(vb_nametab_names(t, AF_INET, a4("151.101.0.223"), now, names, 4), 2);
	assert_true((!strcmp(names[0], "files.pypi.org") && !strcmp(names[1], "pypi.org")) ||
		    (!strcmp(names[1], "files.pypi.org") && !strcmp(names[0], "pypi.org")));
	assert_int_equal(vb_nametab_names(t, AF_INET, a4("151.101.0.223"), now, names, 1), 2);
	assert_int_equal(vb_nametab_names(t, AF_INET, a4("9.9.9.9"), now, names, 4), 0);

	/* the TTL floor: 0 s holds for 30 s */
	assert_true(vb_nametab_valid(t, "pypi.org", AF_INET, a4("151.101.0.223"), now + 29999));
	assert_false(vb_nametab_valid(t, "pypi.org", AF_INET, a4("151.101.0.223"), now + 30000));
	assert_int_equal(vb_nametab_names(t, AF_INET, a4("151.101.0.223"), now + 30000, names, 4), 1);
	assert_string_equal(names[0], "files.pypi.org");
	/* the ceiling: a day holds for an hour */
	assert_true(vb_nametab_valid(t, "pypi.org", AF_INET6, a6("2a04:4e42::223"), now + 3599999));
	assert_false(vb_nametab_valid(t, "pypi.org", AF_INET6, a6("2a04:4e42::223"), now + 3600000));

	/* a refresh extends, never shortens */
	assert_int_equal(vb_nametab_add(t, "pypi.org", AF_INET, a4("151.101.0.223"), 100, now + 10000), 0);
	assert_true(vb_nametab_valid(t, "pypi.org", AF_INET, a4("151.101.0.223"), now + 109999));
	assert_int_equal(vb_nametab_add(t, "pypi.org", AF_INET, a4("151.101.0.223"), 30, now + 10000), 0);
	assert_true(vb_nametab_valid(t, "pypi.org", AF_INET, a4("151.101.0.223"), now + 109999));
	assert_int_equal(vb_nametab_count(t), 3);
	vb_nametab_free(t);
	vb_nametab_free(NULL);
}

static void test_nametab_bounded(void **state)
{
	(void)state;
	struct vb_nametab *t = vb_nametab_new(4);
	int64_t now = 0;
	char name[32];
	uint8_t a[4] = { 10, 0, 0, 0 };
	/* long-lived pairs fill it */
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "n%d.example", i);
		a[3] = (uint8_t)i;
		assert_int_equal(vb_nametab_add(t, name, AF_INET, a, 3600 - (uint32_t)i * 60, now), 0);
	}
	assert_int_equal(vb_nametab_count(t), 4);
	/* a fifth evicts the one that would expire soonest (n3) */
	a[3] = 9;
	assert_int_equal(vb_nametab_add(t, "new.example", AF_INET, a, 60, now), 0);
	assert_int_equal(vb_nametab_count(t), 4);
	assert_true(vb_nametab_valid(t, "new.example", AF_INET, a, now));
	a[3] = 3;
	assert_false(vb_nametab_valid(t, "n3.example", AF_INET, a, now));
	a[3] = 0;
	assert_true(vb_nametab_valid(t, "n0.example", AF_INET, a, now));
	/* an expired pair goes before a live one */
	a[3] = 10;
	assert_int_equal(vb_nametab_add(t, "later.example", AF_INET, a, 60, now + 61000), 0);
	assert_false(vb_nametab_valid(t, "new.example", AF_INET, (uint8_t[]){ 10, 0, 0, 9 }, now));
	assert_true(vb_nametab_valid(t, "n1.example", AF_INET, (uint8_t[]){ 10, 0, 0, 1 }, now));
	vb_nametab_free(t);
	/* the capacity is bounded */
	t = vb_nametab_new((size_t)1 << 40);
	assert_non_null(t);
	vb_nametab_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_patterns),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_nametab),
		cmocka_unit_test(test_nametab_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
