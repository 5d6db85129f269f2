/* SPDX-License-Identifier: Apache-2.0 */
/* TLS ClientHello server_name extraction (src/net/sni.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/sni.h"
#include "util/util.h"

struct buf {
	uint8_t b[VB_SNI_MAX_BYTES * 2];
	size_t n;
};

static void put(struct buf *o, const void *p, size_t n)
{
	assert_true(o->n + n <= sizeof(o->b));
	memcpy(o->b + o->n, p, n);
	o->n += n;
}
static void u8(struct buf *o, unsigned v)
{
	uint8_t b = (uint8_t)v;
	put(o, &b, 1);
}
static void u16(struct buf *o, unsigned v)
{
	u8(o, v >> 8);
	u8(o, v & 0xFF);
}
static void u24(struct buf *o, size_t v)
{
	u8(o, (unsigned)(v >> 16));
	u16(o, (unsigned)(v & 0xFFFF));
}

/* A server_name extension naming (names) (host_name entries). */
static void ext_sni(struct buf *e, const char *const *names, size_t n)
{
	size_t list = 0;
	for (size_t i = 0; i < n; i++)
		list += 3 + strlen(names[i]);
	u16(e, 0);
	u16(e, (unsigned)(list + 2));
	u16(e, (unsigned)list);
	for (size_t i = 0; i < n; i++) {
		u8(e, 0);
		u16(e, (unsigned)strlen(names[i]));
		put(e, names[i], strlen(names[i]));
	}
}

/* A ClientHello handshake message (header included) with extensions (ext)
 * (NULL: no extensions field at all). */
static void hello(struct buf *h, const struct buf *ext)
{
	struct buf body = { .n = 0 };
	u16(&body, 0x0303);
	for (int i = 0; i < 32; i++)
		u8(&body, (unsigned)i);
	u8(&body, 32); /* session id */
	for (int i = 0; i < 32; i++)
		u8(&body, 0xAA);
	u16(&body, 4); /* two suites */
	u16(&body, 0x1301);
	u16(&body, 0x1302);
	u8(&body, 1);
	u8(&body, 0);
	if (ext) {
		u16(&body, (unsigned)ext->n);
		put(&body, ext->b, ext->n);
	}
	h->n = 0;
	u8(h, 1);
	u24(h, body.n);
	put(h, body.b, body.n);
}

/* (h) as TLS records of at most (max) bytes of payload each. */
static void records(struct buf *out, const struct buf *h, size_t max)
{
	out->n = 0;
	for (size_t off = 0; off < h->n;) {
		size_t n = h->n - off < max ? h->n - off : max;
		u8(out, 0x16);
		u16(out, 0x0301);
		u16(out, (unsigned)n);
		put(out, h->b + off, n);
		off += n;
	}
}

static enum vb_sni_result parse(const struct buf *s, char *name, size_t *need)
{
	/* an exact-size copy, so ASAN sees a read past the end */
	uint8_t *p = malloc(s->n ? s->n : 1);
	memcpy(p, s->b, s->n);
	enum vb_sni_result r = vb_sni_parse(p, s->n, name, need);
	free(p);
	return r;
}

/* A stream with one extension list: an unrelated extension, then (names). */
static void stream_with(struct buf *s, const char *const *names, size_t n, size_t recmax)
{
	static struct buf e, h;
	e.n = 0;
	u16(&e, 0x000a); /* supported_groups */
	u16(&e, 4);
	u16(&e, 2);
	u16(&e, 0x001d);
	if (names)
		ext_sni(&e, names, n);
	u16(&e, 0x002b); /* supported_versions */
	u16(&e, 3);
	u8(&e, 2);
	u16(&e, 0x0304);
	hello(&h, &e);
	records(s, &h, recmax);
}

static void test_found(void **state)
{
	(void)state;
	static struct buf s;
	char name[VB_DOMAIN_MAX];
	size_t need = 99;
	const char *one[] = { "Files.PyPI.org." };
	stream_with(&s, one, 1, 16384);
	assert_int_equal(parse(&s, name, &need), VB_SNI_FOUND);
	assert_string_equal(name, "files.pypi.org");
	assert_int_equal(need, 0);
	/* data after the ClientHello (TCP may carry more) changes nothing */
	u8(&s, 0x17);
	assert_int_equal(parse(&s, name, &need), VB_SNI_FOUND);

	/* split over records of 7 bytes: reassembled */
	stream_with(&s, one, 1, 7);
	assert_int_equal(parse(&s, name, &need), VB_SNI_FOUND);
	assert_string_equal(name, "files.pypi.org");

	/* no server_name, no extensions at all */
	stream_with(&s, NULL, 0, 16384);
	assert_int_equal(parse(&s, name, &need), VB_SNI_ABSENT);
	assert_string_equal(name, "");
	static struct buf h;
	hello(&h, NULL);
	records(&s, &h, 16384);
	assert_int_equal(parse(&s, name, &need), VB_SNI_ABSENT);
	assert_string_equal(vb_sni_result_name(VB_SNI_ABSENT), "absent");
}

static void test_need_more(void **state)
{
	(void)state;
	static struct buf s, part;
	char name[VB_DOMAIN_MAX];
	size_t need;
	const char *one[] = { "api.github.com" };
	for (size_t recmax = 16384; recmax >= 50; recmax = recmax > 100 ? 100 : 50) {
		stream_with(&s, one, 1, recmax);
		/* every cut asks for more, never more than the whole, and feeding
		 * what it asked for makes progress until the name comes out */
		size_t have = 0, rounds = 0;
		for (;;) {
			part.n = 0;
			put(&part, s.b, have);
			enum vb_sni_result r = parse(&part, name, &need);
			if (r == VB_SNI_FOUND)
				break;
			assert_int_equal(r, VB_SNI_NEED_MORE);
			assert_true(need > have && need <= s.n);
			have = need;
			assert_true(++rounds < 100);
		}
		assert_string_equal(name, "api.github.com");
		assert_int_equal(have, s.n);
		for (size_t cut = 0; cut < s.n; cut++) {
			part.n = 0;
			put(&part, s.b, cut);
			assert_int_equal(parse(&part, name, &need), VB_SNI_NEED_MORE);
			assert_true(need > cut && need <= s.n);
		}
		if (recmax == 50)
			break;
	}
	/* the empty stream */
	assert_int_equal(vb_sni_parse(NULL, 0, name, &need), VB_SNI_NEED_MORE);
	assert_int_equal(need, 5);
}

static void test_not_tls(void **state)
{
	(void)state;
	char name[VB_DOMAIN_MAX];
	size_t need;
	const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	assert_int_equal(vb_sni_parse((const uint8_t *)http, strlen(http), name, &need),
			 VB_SNI_NOT_TLS);
	assert_int_equal(vb_sni_parse((const uint8_t *)"\x16", 1, name, &need), VB_SNI_NEED_MORE);
	assert_int_equal(vb_sni_parse((const uint8_t *)"\x16\x02", 2, name, &need), VB_SNI_NOT_TLS);
	/* SSH's banner, an application-data record */
	assert_int_equal(vb_sni_parse((const uint8_t *)"SSH-2.0-x\r\n", 11, name, &need),
			 VB_SNI_NOT_TLS);
	assert_int_equal(vb_sni_parse((const uint8_t *)"\x17\x03\x03\x00\x01\x00", 6, name, &need),
			 VB_SNI_NOT_TLS);
}

static void test_invalid(void **state)
{
	(void)state;
	static struct buf s, e, h;
	char name[VB_DOMAIN_MAX];
	size_t need;
	/* two host names, two server_name extensions: ambiguous */
	const char *two[] = { "allowed.example", "evil.example" };
	stream_with(&s, two, 2, 16384);
	assert_int_equal(parse(&s, name, &need), VB_SNI_INVALID);
	const char *one[] = { "allowed.example" };
	e.n = 0;
	ext_sni(&e, one, 1);
	const char *other[] = { "evil.example" };
	ext_sni(&e, other, 1);
	hello(&h, &e);
	records(&s, &h, 16384);
	assert_int_equal(parse(&s, name, &need), VB_SNI_INVALID);
	/* a good name, then a malformed extension after it: no name comes out */
	e.n = 0;
	ext_sni(&e, one, 1);
	u16(&e, 0x000a);
	u16(&e, 10); /* longer than what is left */
	hello(&h, &e);
	records(&s, &h, 16384);
	strcpy(name, "stale");
	assert_int_equal(parse(&s, name, &need), VB_SNI_INVALID);
	assert_string_equal(name, "");
	/* a name that is not a host name: NUL, space, empty, IDN bytes, too long */
	const char *bad[] = { "evil.example\0.allowed.example", "a b.example", "",
			      "\xc3\xa4.example", "a..example" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		e.n = 0;
		size_t len = i == 0 ? 29 : strlen(bad[i]);
		u16(&e, 0);
		u16(&e, (unsigned)(len + 5));
		u16(&e, (unsigned)(len + 3));
		u8(&e, 0);
		u16(&e, (unsigned)len);
		put(&e, bad[i], len);
		hello(&h, &e);
		records(&s, &h, 16384);
		assert_int_equal(parse(&s, name, &need), VB_SNI_INVALID);
	}
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	for (size_t i = 50; i < sizeof(longname) - 1; i += 50)
		longname[i] = '.';
	const char *lng[] = { longname };
	stream_with(&s, lng, 1, 16384);
	assert_int_equal(parse(&s, name, &need), VB_SNI_INVALID);
	/* another name type alone is no host name */
	e.n = 0;
	u16(&e, 0);
	u16(&e, 8);
	u16(&e, 6);
	u8(&e, 7);
	u16(&e, 3);
	put(&e, "abc", 3);
	hello(&h, &e);
	records(&s, &h, 16384);
	assert_int_equal(parse(&s, name, &need), VB_SNI_ABSENT);

	/* lengths that disagree, at every place a length is */
	stream_with(&s, one, 1, 16384);
	for (size_t i = 0; i < s.n; i++) {
		static struct buf m;
		m = s;
		m.b[i] ^= 0x40;
		enum vb_sni_result r = parse(&m, name, &need);
		if (r == VB_SNI_FOUND)
			assert_true(strlen(name) > 0);
		if (r == VB_SNI_NEED_MORE)
			assert_true(need > m.n && need <= VB_SNI_MAX_BYTES);
	}
	/* a record of zero bytes, a record too long, a handshake other than a ClientHello */
	assert_int_equal(vb_sni_parse((const uint8_t *)"\x16\x03\x01\x00\x00", 5, name, &need),
			 VB_SNI_INVALID);
	assert_int_equal(vb_sni_parse((const uint8_t *)"\x16\x03\x01\x40\x01", 5, name, &need),
			 VB_SNI_INVALID);
	assert_int_equal(vb_sni_parse((const uint8_t *)"\x16\x03\x01\x00\x04\x02\x00\x00\x00", 9,
				      name, &need), VB_SNI_INVALID);
	/* a ClientHello announcing more than fits the bound */
	assert_int_equal(vb_sni_parse((const uint8_t *)"\x16\x03\x01\x00\x04\x01\x01\x00\x00", 9,
				      name, &need), VB_SNI_INVALID);
	/* just within: asks for more */
	assert_int_equal(vb_sni_parse((const uint8_t *)"\x16\x03\x01\x00\x04\x01\x00\x3f\xf0", 9,
				      name, &need), VB_SNI_NEED_MORE);
	assert_true(need <= VB_SNI_MAX_BYTES);
	/* a second record of another type before the ClientHello is complete */
	hello(&h, NULL);
	records(&s, &h, 20);
	s.b[25] = 0x17;
	assert_int_equal(parse(&s, name, &need), VB_SNI_INVALID);
	/* many tiny records: more than the bound allows */
	static struct buf big;
	e.n = 0;
	u16(&e, 0x0015); /* padding */
	u16(&e, 4000);
	for (int i = 0; i < 4000; i++)
		u8(&e, 0);
	hello(&h, &e);
	records(&big, &h, 1);
	assert_int_equal(parse(&big, name, &need), VB_SNI_INVALID);
}

/* ClientHellos written by a real TLS stack (Python's ssl, see the corpus). */
static void test_real(void **state)
{
	(void)state;
	static const struct {
		const char *file, *name;
		enum vb_sni_result r;
	} cases[] = {
		{ "python_tls13.bin", "files.pypi.org", VB_SNI_FOUND },
		{ "python_tls12.bin", "api.github.com", VB_SNI_FOUND },
		{ "two_records.bin", "files.pypi.org", VB_SNI_FOUND },
		{ "python_nosni.bin", "", VB_SNI_ABSENT },
		{ "http.bin", "", VB_SNI_NOT_TLS },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char path[512], name[VB_DOMAIN_MAX];
		snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/sni/%s", VB_SRCDIR, cases[i].file);
		size_t len = 0, need;
		vb_error err = { 0 };
		char *data = vb_read_file(path, 1 << 20, &len, &err);
		if (!data)
			fail_msg("%s", err.msg);
		assert_int_equal(vb_sni_parse((const uint8_t *)data, len, name, &need), cases[i].r);
		assert_string_equal(name, cases[i].name);
		free(data);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_found),
		cmocka_unit_test(test_need_more),
		cmocka_unit_test(test_not_tls),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_real),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
