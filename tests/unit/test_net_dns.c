/* SPDX-License-Identifier: Apache-2.0 */
/* DNS wire format for the policy's resolver (src/net/dns.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net/dns.h"

/* A message under construction. */
struct mb {
	uint8_t b[2048];
	size_t n;
};

static void u8(struct mb *m, unsigned v)
{
	assert_true(m->n < sizeof(m->b));
	m->b[m->n++] = (uint8_t)v;
}
static void u16(struct mb *m, unsigned v)
{
	u8(m, v >> 8);
	u8(m, v & 0xFF);
}
static void u32(struct mb *m, uint32_t v)
{
	u16(m, v >> 16);
	u16(m, v & 0xFFFF);
}
/* A name in labels, uncompressed; "" is the root. */
static void name(struct mb *m, const char *s)
{
	while (*s) {
		size_t n = strcspn(s, ".");
		u8(m, (unsigned)n);
		for (size_t i = 0; i < n; i++)
			u8(m, (unsigned char)s[i]);
		s += n + (s[n] == '.');
	}
	u8(m, 0);
}
static void header(struct mb *m, unsigned id, unsigned flags, unsigned qd, unsigned an)
{
	m->n = 0;
	u16(m, id);
	u16(m, flags);
	u16(m, qd);
	u16(m, an);
	u16(m, 0);
	u16(m, 0);
}
static void question(struct mb *m, const char *n, unsigned type)
{
	name(m, n);
	u16(m, type);
	u16(m, VB_DNS_CLASS_IN);
}
/* An A/AAAA record; (owner) NULL: a pointer to the question's name. */
static void rr_addr(struct mb *m, const char *owner, const char *addr, uint32_t ttl)
{
	uint8_t a[16];
	bool v6 = strchr(addr, ':') != NULL;
	assert_int_equal(inet_pton(v6 ? AF_INET6 : AF_INET, addr, a), 1);
	if (owner)
		name(m, owner);
	else
		u16(m, 0xC00C);
	u16(m, v6 ? VB_DNS_TYPE_AAAA : VB_DNS_TYPE_A);
	u16(m, VB_DNS_CLASS_IN);
	u32(m, ttl);
	u16(m, v6 ? 16 : 4);
	for (int i = 0; i < (v6 ? 16 : 4); i++)
		u8(m, a[i]);
}
static void rr_cname(struct mb *m, const char *owner, const char *target, uint32_t ttl)
{
	if (owner)
		name(m, owner);
	else
		u16(m, 0xC00C);
	u16(m, VB_DNS_TYPE_CNAME);
	u16(m, VB_DNS_CLASS_IN);
	u32(m, ttl);
	size_t at = m->n;
	u16(m, 0);
	name(m, target);
	size_t len = m->n - at - 2;
	m->b[at] = (uint8_t)(len >> 8);
	m->b[at + 1] = (uint8_t)len;
}

static void query(struct mb *m, unsigned id, const char *n, unsigned type)
{
	header(m, id, 0x0100, 1, 0);
	question(m, n, type);
}

static void test_query(void **state)
{
	(void)state;
	struct mb m;
	struct vb_dns_query q;
	vb_error err = { 0 };
	query(&m, 0x1234, "WWW.Example.COM", VB_DNS_TYPE_A);
	u16(&m, 0); /* trailing bytes (an OPT record would be here) are not read */
	assert_int_equal(vb_dns_parse_query(m.b, m.n, &q, &err), 0);
	assert_int_equal(q.id, 0x1234);
	assert_string_equal(q.name, "www.example.com");
	assert_int_equal(q.qtype, VB_DNS_TYPE_A);
	assert_int_equal(q.qclass, VB_DNS_CLASS_IN);
	assert_true(q.has_question);

	query(&m, 7, "", 2); /* the root */
	assert_int_equal(vb_dns_parse_query(m.b, m.n, &q, &err), 0);
	assert_string_equal(q.name, "");

	/* every truncation is refused, and says FORMERR once a header is there */
	query(&m, 7, "files.pypi.org", VB_DNS_TYPE_AAAA);
	for (size_t n = 0; n < m.n; n++) {
		uint8_t *cut = malloc(n ? n : 1);
		memcpy(cut, m.b, n);
		assert_int_equal(vb_dns_parse_query(cut, n, &q, &err), -1);
		assert_int_equal(q.reply_rcode, n < VB_DNS_HEADER ? -1 : VB_DNS_FORMERR);
		assert_false(q.has_question);
		free(cut);
	}
	assert_int_equal(vb_dns_parse_query(NULL, 0, &q, &err), -1);
}

static void test_query_refused(void **state)
{
	(void)state;
	struct mb m;
	struct vb_dns_query q;
	vb_error err = { 0 };
	/* a response is not answered at all */
	header(&m, 1, 0x8180, 1, 0);
	question(&m, "a.org", 1);
	assert_int_equal(vb_dns_parse_query(m.b, m.n, &q, &err), -1);
	assert_int_equal(q.reply_rcode, -1);
	/* opcode 2 (STATUS) */
	header(&m, 1, 0x1000, 1, 0);
	question(&m, "a.org", 1);
	assert_int_equal(vb_dns_parse_query(m.b, m.n, &q, &err), -1);
	assert_int_equal(q.reply_rcode, VB_DNS_NOTIMP);
	assert_int_equal(q.id, 1);
	/* zero or two questions */
	header(&m, 1, 0, 0, 0);
	assert_int_equal(vb_dns_parse_query(m.b, m.n, &q, &err), -1);
	assert_int_equal(q.reply_rcode, VB_DNS_FORMERR);
	header(&m, 1, 0, 2, 0);
	question(&m, "a.org", 1);
	question(&m, "b.org", 1);
	assert_int_equal(vb_dns_parse_query(m.b, m.n, &q, &err), -1);
	/* a '.' or a control byte inside a label */
	query(&m, 1, "a.org", 1);
	m.b[13] = '.';
	assert_int_equal(vb_dns_parse_query(m.b, m.n, &q, &err), -1);
	assert_non_null(strstr(err.msg, "byte 0x2e"));
	query(&m, 1, "a.org", 1);
	m.b[13] = 0x1b;
	assert_int_equal(vb_dns_parse_query(m.b, m.n, &q, &err), -1);
	assert_string_equal(q.name, "");
	/* a label starting or ending with '-' is not a host name's */
	query(&m, 1, "a-.org", 1);
	assert_int_equal(vb_dns_parse_query(m.b, m.n, &q, &err), -1);
	assert_non_null(strstr(err.msg, "'-'"));
	query(&m, 1, "-.org", 1);
	assert_int_equal(vb_dns_parse_query(m.b, m.n, &q, &err), -1);
	query(&m, 1, "a-b.org", 1);
	assert_int_equal(vb_dns_parse_query(m.b, m.n, &q, &err), 0);
	/* extended label types */
	query(&m, 1, "a.org", 1);
	m.b[12] = 0x41;
	assert_int_equal(vb_dns_parse_query(m.b, m.n, &q, &err), -1);
	assert_non_null(strstr(err.msg, "label type"));
	/* a pointer to itself, and a loop through a label */
	header(&m, 1, 0, 1, 0);
	u16(&m, 0xC00C);
	u32(&m, 0x00010001);
	assert_int_equal(vb_dns_parse_query(m.b, m.n, &q, &err), -1);
	assert_non_null(strstr(err.msg, "compression pointer"));
	header(&m, 1, 0, 1, 0);
	u8(&m, 1);
	u8(&m, 'a');
	u16(&m, 0xC00C); /* back to the 'a' label, which leads here again */
	u32(&m, 0x00010001);
	assert_int_equal(vb_dns_parse_query(m.b, m.n, &q, &err), -1);
	assert_non_null(strstr(err.msg, "compression pointer"));
	/* a forward pointer */
	header(&m, 1, 0, 1, 0);
	u16(&m, 0xC020);
	assert_int_equal(vb_dns_parse_query(m.b, m.n, &q, &err), -1);
	/* longer than 253 characters: 5 labels of 63 */
	header(&m, 1, 0, 1, 0);
	for (int l = 0; l < 4; l++) {
		u8(&m, 63);
		for (int i = 0; i < 63; i++)
			u8(&m, 'x');
	}
	u8(&m, 0);
	u32(&m, 0x00010001);
	assert_int_equal(vb_dns_parse_query(m.b, m.n, &q, &err), -1);
	assert_non_null(strstr(err.msg, "longer than 253"));
	/* 253 exactly: 3 x 63 + 61, with dots */
	header(&m, 1, 0, 1, 0);
	for (int l = 0; l < 4; l++) {
		u8(&m, l < 3 ? 63 : 61);
		for (int i = 0; i < (l < 3 ? 63 : 61); i++)
			u8(&m, 'x');
	}
	u8(&m, 0);
	u32(&m, 0x00010001);
	assert_int_equal(vb_dns_parse_query(m.b, m.n, &q, &err), 0);
	assert_int_equal(strlen(q.name), 253);
}

static void test_reply(void **state)
{
	(void)state;
	struct mb m;
	struct vb_dns_query q;
	struct vb_dns_answer a;
	vb_error err = { 0 };
	uint8_t out[512];
	query(&m, 0xBEEF, "Evil.Example", VB_DNS_TYPE_A);
	assert_int_equal(vb_dns_parse_query(m.b, m.n, &q, &err), 0);
	int n = vb_dns_build_reply(&q, VB_DNS_NXDOMAIN, out, sizeof(out));
	assert_int_equal(n, (int)m.n);
	assert_int_equal(out[2], 0x81); /* QR, RD */
	assert_int_equal(out[3], 0x83); /* RA, NXDOMAIN */
	/* the question as asked, case included (DNS 0x20) */
	assert_string_equal(q.asked, "Evil.Example");
	assert_memory_equal(out + 12, "\x04" "Evil\x07" "Example\x00\x00\x01\x00\x01", 18);
	assert_int_equal(vb_dns_parse_response(out, (size_t)n, &q, &a, &err), 0);
	assert_int_equal(a.rcode, VB_DNS_NXDOMAIN);
	assert_int_equal(a.naddr, 0);
	assert_string_equal(a.name, "evil.example");
	/* too small a buffer, a bad rcode */
	for (size_t cap = 0; cap < (size_t)n; cap++)
		assert_int_equal(vb_dns_build_reply(&q, VB_DNS_REFUSED, out, cap), -1);
	assert_int_equal(vb_dns_build_reply(&q, 16, out, sizeof(out)), -1);
	/* a FORMERR for a query whose question could not be read */
	m.b[13] = '.';
	assert_int_equal(vb_dns_parse_query(m.b, m.n, &q, &err), -1);
	n = vb_dns_build_reply(&q, q.reply_rcode, out, sizeof(out));
	assert_int_equal(n, 12);
	assert_int_equal(out[0], 0xBE);
	assert_int_equal(out[3] & 0xF, VB_DNS_FORMERR);
	assert_int_equal(out[5], 0); /* no question */
	/* the root */
	query(&m, 9, "", 2);
	assert_int_equal(vb_dns_parse_query(m.b, m.n, &q, &err), 0);
	assert_int_equal(vb_dns_build_reply(&q, VB_DNS_REFUSED, out, sizeof(out)), 17);
}

static void response_header(struct mb *m, unsigned id, const char *qname, unsigned an)
{
	header(m, id, 0x8180, 1, an);
	question(m, qname, VB_DNS_TYPE_A);
}

static const char *addr_str(const struct vb_dns_addr *d)
{
	static char s[INET6_ADDRSTRLEN];
	return inet_ntop(d->family, d->addr, s, sizeof(s));
}

static void test_response(void **state)
{
	(void)state;
	struct mb m, qm;
	struct vb_dns_query q;
	struct vb_dns_answer a;
	vb_error err = { 0 };
	query(&qm, 42, "api.github.com", VB_DNS_TYPE_A);
	assert_int_equal(vb_dns_parse_query(qm.b, qm.n, &q, &err), 0);

	/* the final A first, then an unrelated name, then the CNAME (compressed owner) */
	response_header(&m, 42, "API.github.com", 5);
	rr_addr(&m, "lb.GitHub.com", "140.82.112.6", 60);
	rr_addr(&m, "other.example", "6.6.6.6", 60);
	rr_cname(&m, NULL, "lb.github.com", 30);
	rr_addr(&m, "lb.github.com", "2606:50c0::1", 0x80000000u);
	rr_addr(&m, "lb.github.com", "140.82.112.7", 10);
	assert_int_equal(vb_dns_parse_response(m.b, m.n, &q, &a, &err), 0);
	assert_int_equal(a.id, 42);
	assert_int_equal(a.rcode, 0);
	assert_string_equal(a.name, "api.github.com");
	assert_string_equal(a.canonical, "lb.github.com");
	assert_int_equal(a.ncname, 1);
	assert_int_equal(a.naddr, 3);
	assert_string_equal(addr_str(&a.addr[0]), "140.82.112.6");
	assert_int_equal(a.addr[0].ttl, 30); /* the CNAME's shorter TTL */
	assert_int_equal(a.addr[1].family, AF_INET6);
	assert_string_equal(addr_str(&a.addr[1]), "2606:50c0::1");
	assert_int_equal(a.addr[1].ttl, 0); /* a TTL with the top bit set is 0 */
	assert_int_equal(a.addr[2].ttl, 10);
	assert_false(a.more);

	/* every truncation is refused without reading past the end */
	for (size_t n = 0; n < m.n; n++) {
		uint8_t *cut = malloc(n ? n : 1);
		memcpy(cut, m.b, n);
		assert_int_equal(vb_dns_parse_response(cut, n, &q, &a, &err), -1);
		free(cut);
	}

	/* mismatches with the query */
	response_header(&m, 43, "api.github.com", 0);
	assert_int_equal(vb_dns_parse_response(m.b, m.n, &q, &a, &err), -1);
	assert_non_null(strstr(err.msg, "id"));
	response_header(&m, 42, "api.github.org", 0);
	assert_int_equal(vb_dns_parse_response(m.b, m.n, &q, &a, &err), -1);
	assert_non_null(strstr(err.msg, "another question"));
	assert_int_equal(vb_dns_parse_response(m.b, m.n, NULL, &a, &err), 0);
	/* a query is not a response */
	assert_int_equal(vb_dns_parse_response(qm.b, qm.n, NULL, &a, &err), -1);

	/* an A record of the wrong size */
	response_header(&m, 42, "api.github.com", 1);
	rr_addr(&m, NULL, "1.2.3.4", 60);
	m.b[m.n - 5] = 5;
	u8(&m, 0);
	assert_int_equal(vb_dns_parse_response(m.b, m.n, &q, &a, &err), -1);

	/* a record of another name only is not an address for the asked one */
	response_header(&m, 42, "api.github.com", 1);
	rr_addr(&m, "evil.example", "6.6.6.6", 60);
	assert_int_equal(vb_dns_parse_response(m.b, m.n, &q, &a, &err), 0);
	assert_int_equal(a.naddr, 0);
}

static void test_cname_chains(void **state)
{
	(void)state;
	struct mb m;
	struct vb_dns_answer a;
	vb_error err = { 0 };
	char from[32], to[32];
	/* 8 hops followed, 9 refused */
	for (int hops = 8; hops <= 9; hops++) {
		response_header(&m, 1, "n0.example", (unsigned)hops + 1);
		for (int i = hops - 1; i >= 0; i--) { /* in reverse order, to make it work */
			snprintf(from, sizeof(from), "n%d.example", i);
			snprintf(to, sizeof(to), "n%d.example", i + 1);
			rr_cname(&m, from, to, 300);
		}
		snprintf(to, sizeof(to), "n%d.example", hops);
		rr_addr(&m, to, "192.0.2.1", 300);
		int rc = vb_dns_parse_response(m.b, m.n, NULL, &a, &err);
		if (hops == 8) {
			assert_int_equal(rc, 0);
			assert_int_equal(a.ncname, 8);
			assert_int_equal(a.naddr, 1);
			assert_string_equal(a.canonical, "n8.example");
		} else {
			assert_int_equal(rc, -1);
			assert_non_null(strstr(err.msg, "longer than"));
		}
	}
	/* a loop */
	response_header(&m, 1, "a.example", 2);
	rr_cname(&m, "a.example", "b.example", 300);
	rr_cname(&m, "b.example", "A.example", 300);
	assert_int_equal(vb_dns_parse_response(m.b, m.n, NULL, &a, &err), -1);
	assert_non_null(strstr(err.msg, "loop"));
	/* CNAME data with bytes after the name */
	response_header(&m, 1, "a.example", 1);
	rr_cname(&m, "a.example", "b.example", 300);
	m.b[m.n - 12] += 1;
	u8(&m, 0);
	assert_int_equal(vb_dns_parse_response(m.b, m.n, NULL, &a, &err), -1);
}

static void test_many_addresses(void **state)
{
	(void)state;
	struct mb m;
	struct vb_dns_answer a;
	vb_error err = { 0 };
	char ip[32];
	response_header(&m, 1, "cdn.example", 40);
	for (int i = 0; i < 40; i++) {
		snprintf(ip, sizeof(ip), "198.51.100.%d", i);
		rr_addr(&m, NULL, ip, 60);
	}
	assert_int_equal(vb_dns_parse_response(m.b, m.n, NULL, &a, &err), 0);
	assert_int_equal(a.naddr, VB_DNS_MAX_ADDRS);
	assert_true(a.more);
	/* more records announced than present */
	m.b[7] = 41;
	assert_int_equal(vb_dns_parse_response(m.b, m.n, NULL, &a, &err), -1);
	/* fewer announced: the rest is not read */
	m.b[7] = 2;
	assert_int_equal(vb_dns_parse_response(m.b, m.n, NULL, &a, &err), 0);
	assert_int_equal(a.naddr, 2);
	/* truncated flag */
	m.b[2] |= 0x02;
	assert_int_equal(vb_dns_parse_response(m.b, m.n, NULL, &a, &err), 0);
	assert_true(a.truncated);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_query_refused),
		cmocka_unit_test(test_reply),
		cmocka_unit_test(test_response),
		cmocka_unit_test(test_cname_chains),
		cmocka_unit_test(test_many_addresses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
