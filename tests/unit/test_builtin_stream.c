/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The builtin agent's reading of a streamed Messages answer
 * (src/builtin/stream.c): a real-shaped stream in any split, its text
 * handed on a line at a time, tool input put together from pieces, and
 * hostile or broken streams ending with a reason.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin/builtin.h"

struct texts {
	char got[8][8192];
	int n;
};

static void on_text(const char *text, void *opaque)
{
	struct texts *t = opaque;
	if (t->n < 8)
		snprintf(t->got[t->n], sizeof(t->got[0]), "%s", text);
	t->n++;
}

static const char good[] =
	"event: message_start\n"
	"data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"content\":[],\"usage\":{\"input_tokens\":5}}}\n\n"
	"event: ping\ndata: {\"type\": \"ping\"}\n\n"
	": a comment\n"
	"event: content_block_start\n"
	"data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
	"event: content_block_delta\n"
	"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Let me look.\\nRun\"}}\n\n"
	"event: content_block_delta\n"
	"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"ning ls.\"}}\n\n"
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
	"event: content_block_start\n"
	"data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"tu_1\",\"name\":\"bash\",\"input\":{}}}\n\n"
	"event: content_block_delta\n"
	"data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"comm\"}}\n\n"
	"event: content_block_delta\n"
	"data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"and\\\": \\\"ls -\"}}\n\n"
	"event: content_block_delta\n"
	"data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"la\\\"}\"}}\n\n"
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
	"event: message_delta\n"
	"data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":9}}\n\n"
	"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

static json_t *read_all(const char *data, size_t len, size_t step, struct texts *t, char *why,
			size_t n)
{
	struct vb_builtin_stream *s = vb_builtin_stream_new(on_text, t);
	assert_non_null(s);
	for (size_t i = 0; i < len; i += step)
		vb_builtin_stream_feed(s, data + i, len - i < step ? len - i : step);
	json_t *c = vb_builtin_stream_end(s, why, n);
	vb_builtin_stream_free(s);
	return c;
}

static void check_good(json_t *c)
{
	assert_non_null(c);
	assert_int_equal(json_array_size(c), 2);
	json_t *text = json_array_get(c, 0), *tool = json_array_get(c, 1);
	assert_string_equal(json_string_value(json_object_get(text, "text")),
			    "Let me look.\nRunning ls.");
	assert_string_equal(json_string_value(json_object_get(tool, "name")), "bash");
	assert_string_equal(json_string_value(json_object_get(tool, "id")), "tu_1");
	assert_string_equal(json_string_value(json_object_get(json_object_get(tool, "input"),
							      "command")),
			    "ls -la");
}

static void test_any_split(void **state)
{
	(void)state;
	char why[512];
	size_t steps[] = { 1, 2, 3, 7, 64, sizeof(good) };
	for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
		struct texts t = { 0 };
		json_t *c = read_all(good, strlen(good), steps[k], &t, why, sizeof(why));
		check_good(c);
		json_decref(c);
		/* a line as soon as its newline came, the rest at the block's end */
		assert_int_equal(t.n, 2);
		assert_string_equal(t.got[0], "Let me look.");
		assert_string_equal(t.got[1], "Running ls.");
	}
}

/* CRLF and bare CR end lines too. */
static void test_line_endings(void **state)
{
	(void)state;
	char why[512];
	for (int mode = 0; mode < 2; mode++) {
		char *crlf = malloc(2 * sizeof(good)), *o = crlf;
		for (const char *p = good; *p; p++) {
			if (*p == '\n') {
				*o++ = '\r';
				if (mode == 0)
					*o++ = '\n';
			} else {
				*o++ = *p;
			}
		}
		*o = '\0';
		struct texts t = { 0 };
		json_t *c = read_all(crlf, strlen(crlf), 5, &t, why, sizeof(why));
		check_good(c);
		json_decref(c);
		free(crlf);
	}
}

#define START "data: {\"type\":\"message_start\",\"message\":{}}\n\n"
#define TEXT0 "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
#define STOP0 "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
#define MSTOP "data: {\"type\":\"message_stop\"}\n\n"

static void expect_bad(const char *stream, const char *reason)
{
	char why[512] = "";
	struct texts t = { 0 };
	json_t *c = read_all(stream, strlen(stream), 3, &t, why, sizeof(why));
	if (c)
		fail_msg("accepted: %s", stream);
	if (!strstr(why, reason))
		fail_msg("'%s' lacks '%s'", why, reason);
	assert_null(strchr(why, '\033'));
}

static void test_bad_streams(void **state)
{
	(void)state;
	/* an error event mid-stream, its message made safe */
	expect_bad(START TEXT0
		   "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
		   "\"message\":\"Overloaded \\u001b[2J\"}}\n\n",
		   "the model's stream failed (overloaded_error: Overloaded ?[2J)");
	expect_bad(START TEXT0, "no message_stop");
	expect_bad(START TEXT0 MSTOP, "ended inside a content block");
	expect_bad(START "data: {\"type\":\"content_block_start\",\"index\":3,\"content_block\":{\"type\":\"text\"}}\n\n",
		   "out of order");
	expect_bad(START TEXT0 TEXT0, "out of order");
	expect_bad(START STOP0, "no open content block");
	expect_bad(START TEXT0 "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\"}}\n\n",
		   "delta in the wrong kind of block");
	expect_bad(START "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"x\",\"name\":\"bash\"}}\n\n"
		   "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":\"}}\n\n"
		   STOP0 MSTOP,
		   "input is not a JSON object");
	expect_bad(START "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"x\",\"name\":\"bash\"}}\n\n"
		   "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"[1]\"}}\n\n"
		   STOP0 MSTOP,
		   "input is not a JSON object");
	expect_bad(START "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\"}}\n\n",
		   "without id or name");
	expect_bad(START "data: {not json\n\n", "not JSON");
	expect_bad("data: {\"type\":\"content_block_start\",\"index\":0}\n\n",
		   "before message_start");
	expect_bad("", "no message_stop");
	/* a line without end, longer than 1 MiB */
	size_t big = (1u << 20) + 10;
	char *line = malloc(big + 1);
	memset(line, 'a', big);
	line[big] = '\0';
	memcpy(line, "data: ", 6);
	expect_bad(line, "longer than 1 MiB");
	free(line);
	/* more than 256 blocks */
	size_t cap = 400 * 200, len = 0;
	char *many = malloc(cap);
	len += (size_t)snprintf(many + len, cap - len, START);
	for (int i = 0; i < 300; i++)
		len += (size_t)snprintf(many + len, cap - len,
					"data: {\"type\":\"content_block_start\",\"index\":%d,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
					"data: {\"type\":\"content_block_stop\",\"index\":%d}\n\n",
					i, i);
	expect_bad(many, "more than 256 content blocks");
	free(many);
}

/* After message_stop nothing counts; no data and a last line without its
 * newline are fine. */
static void test_edges(void **state)
{
	(void)state;
	char why[512];
	struct texts t = { 0 };
	const char *s = START TEXT0 STOP0 MSTOP "data: {\"type\":\"error\"}\n\n";
	json_t *c = read_all(s, strlen(s), 4, &t, why, sizeof(why));
	assert_non_null(c);
	assert_string_equal(json_string_value(json_object_get(json_array_get(c, 0), "text")), "");
	assert_int_equal(t.n, 0); /* empty text: no event */
	json_decref(c);
	const char *s2 = START "data: {\"type\":\"message_stop\"}";
	c = read_all(s2, strlen(s2), 100, &t, why, sizeof(why));
	assert_non_null(c);
	assert_int_equal(json_array_size(c), 0);
	json_decref(c);
}

/* Text with no newline is handed on in pieces of the flush size, never
 * splitting a character. */
static void test_long_text_pieces(void **state)
{
	(void)state;
	size_t n = 3 * VB_BUILTIN_TEXT_FLUSH;
	char *text = malloc(n + 1);
	for (size_t i = 0; i + 2 <= n; i += 2)
		memcpy(text + i, "\xc3\xa9", 2); /* é */
	text[n] = '\0';
	size_t cap = n + 1024;
	char *s = malloc(cap);
	/* one delta of a char's first half, then the rest */
	int len = snprintf(s, cap, START TEXT0
			   "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x%s\"}}\n\n"
			   STOP0 MSTOP,
			   text);
	struct texts t = { 0 };
	char why[512];
	json_t *c = read_all(s, (size_t)len, 1000, &t, why, sizeof(why));
	assert_non_null(c);
	assert_true(t.n >= 3);
	for (int i = 0; i < t.n && i < 8; i++) {
		assert_true(strlen(t.got[i]) <= VB_BUILTIN_TEXT_FLUSH);
		json_t *j = json_string(t.got[i]); /* NULL if not valid UTF-8 */
		assert_non_null(j);
		json_decref(j);
	}
	json_decref(c);
	free(s);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_any_split),
		cmocka_unit_test(test_line_endings),
		cmocka_unit_test(test_bad_streams),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_long_text_pieces),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
