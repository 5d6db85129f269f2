/* SPDX-License-Identifier: Apache-2.0 */
/*
 * claude-code's stream-json as VoidBox reads it (src/run/claude_parse.c):
 * the events a real transcript gives, its result deciding the stage, and
 * what a hostile guest can send instead (lines cut anywhere, huge lines,
 * garbage, terminal escapes, a thousand unanswered tool calls).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run/claude.h"
#include "util/util.h"

/* What the parser emitted, one compact line per event. */
struct seen {
	char *log;          /* "type name/text|..." lines */
	size_t chunks;      /* LOG_CHUNK bytes */
	size_t tools, messages, results;
};

static void append(struct seen *s, const char *line)
{
	char *n = vb_strfmt("%s%s\n", s->log ? s->log : "", line);
	free(s->log);
	s->log = n;
}

static void on_event(struct vb_event *ev, void *opaque)
{
	struct seen *s = opaque;
	assert_string_equal(ev->stage, "box");
	assert_string_equal(ev->vm_id, "vm-1");
	char line[1024];
	switch (ev->type) {
	case VB_EV_LOG_CHUNK:
		s->chunks += ev->len;
		return;
	case VB_EV_AGENT_MESSAGE:
		s->messages++;
		snprintf(line, sizeof(line), "say %.200s", ev->text);
		break;
	case VB_EV_AGENT_TOOL:
		s->tools++;
		assert_true(ev->duration_ms >= 0);
		snprintf(line, sizeof(line), "tool %s %.100s -> %.100s%s", ev->tool->name,
			 ev->tool->input, ev->tool->result ? ev->tool->result : "(none)",
			 ev->tool->is_error ? " (error)" : "");
		break;
	case VB_EV_AGENT_RESULT:
		s->results++;
		snprintf(line, sizeof(line), "result %s %s turns=%lld in=%llu out=%llu cost=%.3f %.100s",
			 ev->agent_result->agent, ev->agent_result->subtype,
			 (long long)ev->agent_result->num_turns,
			 (unsigned long long)ev->agent_result->input_tokens,
			 (unsigned long long)ev->agent_result->output_tokens,
			 ev->agent_result->cost_usd, ev->agent_result->text);
		break;
	default:
		fail_msg("unexpected event %d", ev->type);
	}
	if (s->tools + s->messages + s->results < 200)
		append(s, line);
}

static struct vb_claude_parse *parser(struct seen *s)
{
	memset(s, 0, sizeof(*s));
	struct vb_claude_parse *c = vb_claude_parse_new(on_event, s, "box", "vm-1");
	assert_non_null(c);
	return c;
}

static void feed(struct vb_claude_parse *c, const char *text)
{
	assert_int_equal(vb_claude_parse_stdout(c, (const uint8_t *)text, strlen(text)), 0);
}

/* A transcript as 2.1.332 prints it (trimmed), fed one byte at a time. */
static const char transcript[] =
	"{\"type\":\"system\",\"subtype\":\"init\",\"cwd\":\"/workspace\",\"tools\":[\"Bash\"]}\n"
	"{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"Looking.\"},"
	"{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"Bash\",\"input\":{\"command\":\"echo "
	"$((6*7))\"}}]}}\n"
	"{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":"
	"\"toolu_1\",\"content\":\"42\",\"is_error\":false}]}}\n"
	"{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":"
	"\"toolu_unknown\",\"content\":\"x\"}]}}\n"
	"{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"It is 42.\"}]}}\n"
	"{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"num_turns\":2,"
	"\"result\":\"It is 42.\",\"total_cost_usd\":0.0125,\"usage\":{\"input_tokens\":10,"
	"\"cache_read_input_tokens\":5,\"output_tokens\":7}}\n";

static void test_a_transcript_gives_events_and_the_result(void **state)
{
	(void)state;
	struct seen s;
	struct vb_claude_parse *c = parser(&s);
	for (size_t i = 0; transcript[i]; i++)
		assert_int_equal(vb_claude_parse_stdout(c, (const uint8_t *)transcript + i, 1), 0);
	vb_claude_parse_end(c);
	assert_string_equal(s.log, "say Looking.\n"
				   "tool Bash {\"command\":\"echo $((6*7))\"} -> 42\n"
				   "say It is 42.\n"
				   "result claude-code success turns=2 in=15 out=7 cost=0.013 It is 42.\n");
	assert_int_equal(s.chunks, strlen(transcript));
	char *final = NULL;
	vb_error err = { 0 };
	assert_int_equal(vb_claude_parse_decide(c, 0, &final, &err), 0);
	assert_string_equal(final, "It is 42.");
	free(final);
	free(s.log);
	vb_claude_parse_free(c);
}

static void test_an_error_result_fails_the_stage(void **state)
{
	(void)state;
	static const struct {
		const char *line, *msg;
	} cases[] = {
		{ "{\"type\":\"result\",\"subtype\":\"error_max_turns\",\"is_error\":true}",
		  "claude-code ended with error_max_turns" },
		{ "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":true,\"result\":"
		  "\"API Error: 401\"}",
		  "claude-code ended with success: API Error: 401" },
		{ "{\"type\":\"result\",\"is_error\":false,\"result\":\"no subtype\"}",
		  "claude-code ended with unknown: no subtype" },
		/* a guest's escape sequences do not reach the terminal */
		{ "{\"type\":\"result\",\"subtype\":\"\\u001b]52;c;AAAA\\u0007\",\"is_error\":true,"
		  "\"result\":\"\\u001b[2Jgone\\nnext\"}",
		  "claude-code ended with ?]52;c;AAAA?: ?[2Jgone next" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct seen s;
		struct vb_claude_parse *c = parser(&s);
		feed(c, cases[i].line);
		vb_claude_parse_end(c); /* no newline at the end: still read */
		assert_int_equal(s.results, 1);
		char *final = NULL;
		vb_error err = { 0 };
		assert_int_equal(vb_claude_parse_decide(c, 1, &final, &err), -1);
		assert_null(final);
		assert_int_equal(err.kind, VB_E_OK);
		if (strcmp(err.msg, cases[i].msg))
			fail_msg("case %zu: '%s'", i, err.msg);
		free(s.log);
		vb_claude_parse_free(c);
	}
}

static void test_no_result_says_the_exit_code_and_stderr(void **state)
{
	(void)state;
	struct seen s;
	struct vb_claude_parse *c = parser(&s);
	feed(c, "{\"type\":\"system\",\"subtype\":\"init\"}\nnot json at all\n[1,2]\n\"str\"\n{\"type\":");
	/* a long stderr: only its tail is quoted, sanitized */
	char big[5000];
	memset(big, 'x', sizeof(big));
	vb_claude_parse_stderr(c, (const uint8_t *)big, sizeof(big));
	const char *tail = "Error: \x1b[31mcannot connect\x1b[0m\n";
	vb_claude_parse_stderr(c, (const uint8_t *)tail, strlen(tail));
	vb_claude_parse_end(c);
	assert_int_equal(s.results + s.messages + s.tools, 0);
	char *final = NULL;
	vb_error err = { 0 };
	assert_int_equal(vb_claude_parse_decide(c, 3, &final, &err), -1);
	assert_int_equal(err.kind, VB_E_OK);
	assert_non_null(strstr(err.msg, "claude-code exited with code 3 without a result: xxx"));
	assert_non_null(strstr(err.msg, "Error: ?[31mcannot connect?[0m"));
	assert_null(strchr(err.msg, '\x1b'));
	free(s.log);
	vb_claude_parse_free(c);
}

static void test_a_huge_line_is_skipped_and_reading_goes_on(void **state)
{
	(void)state;
	struct seen s;
	struct vb_claude_parse *c = parser(&s);
	/* a result line longer than the limit, sent in 64 KiB pieces */
	size_t n = VB_CLAUDE_LINE_MAX + 100;
	char *huge = malloc(n + 1);
	assert_non_null(huge);
	const char *start = "{\"type\":\"result\",\"subtype\":\"success\",\"result\":\"";
	memcpy(huge, start, strlen(start));
	memset(huge + strlen(start), 'a', n - strlen(start));
	huge[n] = '\0';
	for (size_t off = 0; off < n; off += 65536)
		assert_int_equal(vb_claude_parse_stdout(c, (const uint8_t *)huge + off,
							n - off < 65536 ? n - off : 65536),
				 0);
	free(huge);
	feed(c, "\"}\n{\"type\":\"result\",\"subtype\":\"success\",\"result\":\"short\"}\n");
	vb_claude_parse_end(c);
	assert_int_equal(s.results, 1);
	char *final = NULL;
	vb_error err = { 0 };
	assert_int_equal(vb_claude_parse_decide(c, 0, &final, &err), 0);
	assert_string_equal(final, "short");
	free(final);
	free(s.log);
	vb_claude_parse_free(c);
}

static void test_tool_texts_are_bounded_and_unanswered_calls_reported(void **state)
{
	(void)state;
	struct seen s;
	struct vb_claude_parse *c = parser(&s);
	/* a tool result of 1 MiB, with invalid UTF-8: cut, repaired */
	size_t n = (size_t)1 << 20;
	json_t *content = json_array();
	json_array_append_new(
		content, json_pack("{s:s,s:s,s:s,s:{s:s}}", "type", "tool_use", "id", "t0", "name",
				   "Bash", "input", "command", "yes"));
	json_t *msg = json_pack("{s:s,s:{s:o}}", "type", "assistant", "message", "content", content);
	char *line = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	feed(c, line);
	feed(c, "\n");
	free(line);
	char *big = malloc(n + 1);
	assert_non_null(big);
	memset(big, 'y', n);
	big[n] = '\0';
	line = vb_strfmt("{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"tool_result\","
			 "\"tool_use_id\":\"t0\",\"content\":[{\"type\":\"text\",\"text\":\"\\u00ff%s\"}],"
			 "\"is_error\":true}]}}\n",
			 big);
	free(big);
	feed(c, line);
	free(line);
	assert_int_equal(s.tools, 1);
	assert_non_null(strstr(s.log, "tool Bash {\"command\":\"yes\"} -> \xc3\xbfyyy"));
	assert_non_null(strstr(s.log, " (error)\n"));
	/* a thousand calls that never get an answer: bounded, each reported */
	for (int i = 0; i < 1000; i++) {
		char l[256];
		snprintf(l, sizeof(l),
			 "{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"tool_use\","
			 "\"id\":\"u%d\",\"name\":\"Read\",\"input\":{}}]}}\n",
			 i);
		feed(c, l);
	}
	vb_claude_parse_end(c);
	assert_int_equal(s.tools, 1001);
	assert_non_null(strstr(s.log, "tool Read {} -> (none)\n"));
	free(s.log);
	vb_claude_parse_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_transcript_gives_events_and_the_result),
		cmocka_unit_test(test_an_error_result_fails_the_stage),
		cmocka_unit_test(test_no_result_says_the_exit_code_and_stderr),
		cmocka_unit_test(test_a_huge_line_is_skipped_and_reading_goes_on),
		cmocka_unit_test(test_tool_texts_are_bounded_and_unanswered_calls_reported),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
