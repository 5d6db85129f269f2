/* SPDX-License-Identifier: Apache-2.0 */
/* CIDR parsing and matching for the network policy (src/net/cidr.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "net/cidr.h"

static struct vb_cidr parse_ok(const char *s)
{
	struct vb_cidr c;
	vb_error err = { 0 };
	if (vb_cidr_parse(s, &c, &err) != 0)
		fail_msg("'%s' refused: %s", s, err.msg);
	return c;
}

/* The error message for (s), which must be refused. */
static const char *refused(const char *s)
{
	static vb_error err;
	struct vb_cidr c;
	memset(&err, 0, sizeof(err));
	if (vb_cidr_parse(s, &c, &err) != -1)
		fail_msg("'%s' accepted", s);
	assert_int_equal(err.kind, VB_E_USAGE);
	return err.msg;
}

static bool in4(const struct vb_cidr *c, const char *a)
{
	uint8_t b[4];
	assert_int_equal(inet_pton(AF_INET, a, b), 1);
	return vb_cidr_contains(c, AF_INET, b);
}

static bool in6(const struct vb_cidr *c, const char *a)
{
	uint8_t b[16];
	assert_int_equal(inet_pton(AF_INET6, a, b), 1);
	return vb_cidr_contains(c, AF_INET6, b);
}

static void test_parse(void **state)
{
	(void)state;
	char s[VB_CIDR_STRLEN];
	struct vb_cidr c = parse_ok("10.0.0.0/8");
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefix, 8);
	assert_string_equal(vb_cidr_format(&c, s, sizeof(s)), "10.0.0.0/8");
	c = parse_ok("1.2.3.4");
	assert_int_equal(c.prefix, 32);
	assert_string_equal(vb_cidr_format(&c, s, sizeof(s)), "1.2.3.4/32");
	c = parse_ok("fd00:ec2::254/128");
	assert_int_equal(c.family, AF_INET6);
	assert_string_equal(vb_cidr_format(&c, s, sizeof(s)), "fd00:ec2::254/128");
	c = parse_ok("::/0");
	assert_int_equal(c.prefix, 0);
	c = parse_ok("0.0.0.0/0");
	assert_string_equal(vb_cidr_format(&c, s, sizeof(s)), "0.0.0.0/0");
	c = parse_ok("FD00::/8");
	assert_string_equal(vb_cidr_format(&c, s, sizeof(s)), "fd00::/8");
	c = parse_ok("169.254.0.0/16");
	c = parse_ok("10.1.2.0/23"); /* a prefix not on a byte boundary */
	assert_int_equal(c.prefix, 23);
}

static void test_refused(void **state)
{
	(void)state;
	/* the spellings busybox accepts for 169.254.169.254 are not CIDRs */
	assert_non_null(strstr(refused("2852039166"), "not an IPv4"));
	assert_non_null(strstr(refused("0xA9FEA9FE"), "column 2"));
	refused("0251.0376.0251.0376");
	refused("169.254.43518");
	refused("1.2.3");
	refused("1.2.3.4.5");
	assert_non_null(strstr(refused(""), "empty"));
	assert_non_null(strstr(refused("/8"), "no address"));
	assert_non_null(strstr(refused("10.0.0.0/"), "no prefix length after '/' (column 10)"));
	assert_non_null(strstr(refused("10.0.0.0/8x"), "column 11"));
	assert_non_null(strstr(refused("10.0.0.0/-8"), "column 10"));
	assert_non_null(strstr(refused("10.0.0.0/ 8"), "column 10"));
	assert_non_null(strstr(refused("10.0.0.0/08"), "leading zero"));
	assert_non_null(strstr(refused("10.0.0.0/33"), "more than 32"));
	assert_non_null(strstr(refused("::/129"), "more than 128"));
	assert_non_null(strstr(refused("10.0.0.0/99999999999"), "more than 32"));
	assert_non_null(strstr(refused("example.com"), "column 2"));
	assert_non_null(strstr(refused(" 10.0.0.0/8"), "column 1"));
	refused("fe80::1%eth0");
	refused("10.0.0.0/8/8");
	/* host bits: say what the user probably meant */
	assert_non_null(strstr(refused("10.0.0.1/8"), "did you mean '10.0.0.0/8'"));
	assert_non_null(strstr(refused("10.1.3.0/23"), "did you mean '10.1.2.0/23'"));
	assert_non_null(strstr(refused("fd00::1/8"), "did you mean 'fd00::/8'"));
	char longs[200];
	memset(longs, '1', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = '\0';
	assert_non_null(strstr(refused(longs), "too long"));
}

static void test_contains(void **state)
{
	(void)state;
	struct vb_cidr c = parse_ok("169.254.0.0/16");
	assert_true(in4(&c, "169.254.169.254"));
	assert_true(in4(&c, "169.254.0.0"));
	assert_true(in4(&c, "169.254.255.255"));
	assert_false(in4(&c, "169.255.0.0"));
	assert_false(in4(&c, "169.253.255.255"));
	/* an IPv4-mapped IPv6 address is the IPv4 address it carries */
	assert_true(in6(&c, "::ffff:169.254.169.254"));
	assert_false(in6(&c, "::169.254.169.254"));
	assert_false(in6(&c, "64:ff9b::169.254.169.254"));

	c = parse_ok("10.1.2.0/23");
	assert_true(in4(&c, "10.1.3.255"));
	assert_false(in4(&c, "10.1.4.0"));
	assert_false(in4(&c, "10.1.1.255"));

	c = parse_ok("fd00:ec2::254/128");
	assert_true(in6(&c, "fd00:ec2::254"));
	assert_false(in6(&c, "fd00:ec2::255"));
	assert_false(in4(&c, "0.0.0.0"));

	c = parse_ok("::/0");
	assert_true(in6(&c, "2001:db8::1"));
	assert_false(in4(&c, "1.2.3.4")); /* a family matches only itself */
	c = parse_ok("0.0.0.0/0");
	assert_true(in4(&c, "1.2.3.4"));
	assert_true(in6(&c, "::ffff:1.2.3.4"));
	assert_false(in6(&c, "2001:db8::1"));
	uint8_t any[16] = { 0 };
	assert_false(vb_cidr_contains(&c, AF_UNIX, any));
	assert_false(vb_cidr_contains(NULL, AF_INET, any));
}

static void test_list(void **state)
{
	(void)state;
	struct vb_cidr_list l = VB_CIDR_LIST_INIT;
	vb_error err = { 0 };
	assert_int_equal(vb_cidr_list_add_str(&l, "169.254.0.0/16", &err), 0);
	assert_int_equal(vb_cidr_list_add_str(&l, "100.100.100.200/32", &err), 0);
	assert_int_equal(vb_cidr_list_add_str(&l, "fd00:ec2::254/128", &err), 0);
	assert_int_equal(vb_cidr_list_add_str(&l, "10.0.0.1/8", &err), -1);
	assert_int_equal(l.n, 3);
	uint8_t a[16];
	inet_pton(AF_INET, "100.100.100.200", a);
	const struct vb_cidr *hit = vb_cidr_list_find(&l, AF_INET, a);
	assert_ptr_equal(hit, &l.v[1]);
	inet_pton(AF_INET, "100.100.100.201", a);
	assert_false(vb_cidr_list_contains(&l, AF_INET, a));
	inet_pton(AF_INET6, "fd00:ec2::254", a);
	assert_true(vb_cidr_list_contains(&l, AF_INET6, a));
	assert_false(vb_cidr_list_contains(NULL, AF_INET6, a));
	/* bounded */
	struct vb_cidr c = l.v[0];
	while (l.n < VB_CIDR_LIST_MAX)
		assert_int_equal(vb_cidr_list_add(&l, &c, &err), 0);
	assert_int_equal(vb_cidr_list_add(&l, &c, &err), -1);
	assert_non_null(strstr(err.msg, "more than"));
	vb_cidr_list_free(&l);
	assert_int_equal(l.n, 0);
	vb_cidr_list_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_contains),
		cmocka_unit_test(test_list),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
