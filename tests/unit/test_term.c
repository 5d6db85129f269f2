/* SPDX-License-Identifier: Apache-2.0 */
/* The terminal boundary's sanitizer (src/util/term.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/term.h"
#include "util/util.h"

/* What vb_term_write writes for (s, len) with (flags), as a string. */
static char *written(const char *s, size_t len, unsigned flags)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	assert_non_null(f);
	assert_int_equal(vb_term_write(f, s, len, flags), 0);
	fclose(f);
	return buf;
}

/* Every sequence the issue found reaching terminals, and its neighbours. */
static void test_controls(void **state)
{
	(void)state;
	char out[128];
	/* OSC 52 (clipboard), CSI 2J (clear), OSC 0 title with BEL, DEL */
	vb_term_copy(out, sizeof(out), "a\033]52;c;ZXZpbA==\007b\033[2Jc\033]0;t\007\177d", 0);
	assert_string_equal(out, "a?]52;c;ZXZpbA==?b?[2Jc?]0;t??d");
	/* raw 0x9b (8-bit CSI) and invalid UTF-8: '?' per byte */
	vb_term_copy(out, sizeof(out), "x\x9b" "2Jy\xff\xc3(", 0);
	assert_string_equal(out, "x?2Jy?" "?(");
	/* C1 written in UTF-8 (U+009B CSI, U+0085 NEL, U+0080), kept neighbours */
	vb_term_copy(out, sizeof(out), "\xc2\x9b" "1m\xc2\x85\xc2\x80\xc2\xa0|", 0);
	assert_string_equal(out, "?1m??\xc2\xa0|");
	/* bidi overrides and isolates (U+202E, U+2066), not other U+20xx */
	vb_term_copy(out, sizeof(out), "\xe2\x80\xae" "abc\xe2\x81\xa6\xe2\x80\x94", 0);
	assert_string_equal(out, "?abc?\xe2\x80\x94");
	/* overlong encodings and surrogates are invalid UTF-8 */
	vb_term_copy(out, sizeof(out), "\xc0\x9b\xed\xa0\x80", 0);
	assert_string_equal(out, "?????");
	/* UTF-8 text passes */
	vb_term_copy(out, sizeof(out), "héllo wörld ✓ 日本", 0);
	assert_string_equal(out, "héllo wörld ✓ 日本");
	/* NULL is empty */
	vb_term_copy(out, sizeof(out), NULL, 0);
	assert_string_equal(out, "");
}

static void test_lines(void **state)
{
	(void)state;
	char out[64];
	/* one line: \n \r \t become spaces, other C0 '?' */
	vb_term_copy(out, sizeof(out), "a\nb\rc\td\001", 0);
	assert_string_equal(out, "a b c d?");
	/* lines: \n and \t stay, \r does not (it rewrites the line) */
	vb_term_copy(out, sizeof(out), "a\nb\rc\td", VB_TERM_LINES);
	assert_string_equal(out, "a\nb?c\td");
}

static void test_cut(void **state)
{
	(void)state;
	char out[64];
	/* cut on a character boundary */
	vb_term_copy(out, 4, "héllo", 0);
	assert_string_equal(out, "hé");
	vb_term_copy(out, 3, "héllo", 0);
	assert_string_equal(out, "h");
	vb_term_copy(out, 1, "abc", 0);
	assert_string_equal(out, "");
	/* a length limit, and a sequence cut by it is invalid */
	vb_term_copyn(out, sizeof(out), "abcdef", 3, 0);
	assert_string_equal(out, "abc");
	vb_term_copyn(out, sizeof(out), "h\xc3\xa9", 2, 0);
	assert_string_equal(out, "h?");
	/* stops at a NUL inside (len) */
	vb_term_copyn(out, sizeof(out), "ab\0cd", 5, 0);
	assert_string_equal(out, "ab");
	/* (size) 0 writes nothing */
	out[0] = 'z';
	vb_term_copy(out, 0, "abc", 0);
	assert_int_equal(out[0], 'z');
}

static void test_write(void **state)
{
	(void)state;
	char *s = written("ok\033[2J\nx\0y\xc2\x9b", 11, VB_TERM_LINES);
	assert_string_equal(s, "ok?[2J\nx?y?");
	free(s);
	/* long text: no buffer limit */
	size_t n = 100000;
	char *big = malloc(n);
	assert_non_null(big);
	for (size_t i = 0; i < n; i++)
		big[i] = i % 100 == 99 ? '\033' : 'a';
	s = written(big, n, 0);
	assert_int_equal(strlen(s), n);
	assert_null(strchr(s, '\033'));
	free(s);
	free(big);
	/* printf: the whole text */
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	assert_int_equal(vb_term_printf(f, 0, "reading %s in the guest", "/x\033]52;c;AA==\007"), 0);
	fclose(f);
	assert_string_equal(buf, "reading /x?]52;c;AA==? in the guest");
	free(buf);
}

/* JSON text (as jansson writes it): C0 is escaped already; DEL, C1 and bidi
 * controls become \u escapes, so the value survives a JSON parser. */
static void test_json(void **state)
{
	(void)state;
	char *s = written("{\n  \"a\": \"x\177y\xc2\x9bz\xe2\x80\xae\\u001b\xc3\xa9\"\n}", 30, VB_TERM_JSON);
	assert_string_equal(s, "{\n  \"a\": \"x\\u007fy\\u009bz\\u202e\\u001b\xc3\xa9\"\n}");
	free(s);
}

static void test_utf8_seq(void **state)
{
	(void)state;
	assert_int_equal(vb_utf8_seq((const uint8_t *)"a", 1), 1);
	assert_int_equal(vb_utf8_seq((const uint8_t *)"\xc3\xa9", 2), 2);
	assert_int_equal(vb_utf8_seq((const uint8_t *)"\xc3\xa9", 1), -1);
	assert_int_equal(vb_utf8_seq((const uint8_t *)"\xe2\x9c\x93", 3), 3);
	assert_int_equal(vb_utf8_seq((const uint8_t *)"\xf0\x9f\x98\x80", 4), 4);
	assert_int_equal(vb_utf8_seq((const uint8_t *)"\x9b", 1), 0);
	assert_int_equal(vb_utf8_seq((const uint8_t *)"\xf5\x80\x80\x80", 4), 0);
}

/* Whatever the bytes, the output is valid UTF-8 with no control in it. */
static void test_random_bytes(void **state)
{
	(void)state;
	srand(7);
	for (int round = 0; round < 20000; round++) {
		uint8_t in[48];
		size_t len = (size_t)(rand() % (int)sizeof(in));
		for (size_t i = 0; i < len; i++) /* bias towards the interesting bytes */
			in[i] = (uint8_t)(rand() % 4 == 0 ? "\x1b\x9b\xc2\xe2\x80\xae\x07\x7f"[rand() % 8] : rand());
		char out[160];
		unsigned flags = round % 2 ? VB_TERM_LINES : 0;
		vb_term_copyn(out, sizeof(out), (const char *)in, len, flags);
		const uint8_t *u = (const uint8_t *)out;
		size_t n = strlen(out);
		for (size_t i = 0; i < n;) {
			int k = vb_utf8_seq(u + i, n - i);
			assert_true(k > 0);
			if (k == 1)
				assert_true((u[i] >= 0x20 && u[i] != 0x7f) ||
					    ((flags & VB_TERM_LINES) && (u[i] == '\n' || u[i] == '\t')));
			else if (k == 2)
				assert_false(u[i] == 0xc2 && u[i + 1] < 0xa0);
			else if (k == 3)
				assert_false(u[i] == 0xe2 && ((u[i + 1] == 0x80 && u[i + 2] >= 0xaa && u[i + 2] <= 0xae) ||
							      (u[i + 1] == 0x81 && u[i + 2] >= 0xa6 && u[i + 2] <= 0xa9)));
			i += (size_t)k;
		}
	}
}

/* The sanitizers this one replaced now call it. */
static void test_users(void **state)
{
	(void)state;
	char line[64];
	assert_int_equal(vb_line_with("x\nKernel panic: \033]0;pwn\007 now\nz", "Kernel panic", 0, line,
				      sizeof(line)), 1);
	assert_string_equal(line, "Kernel panic: ?]0;pwn? now");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_controls),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_cut),
		cmocka_unit_test(test_write),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_utf8_seq),
		cmocka_unit_test(test_random_bytes),
		cmocka_unit_test(test_users),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
