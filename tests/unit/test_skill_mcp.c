/* SPDX-License-Identifier: Apache-2.0 */
/* mcp: skills on the host (src/skill/mcp.c): names, the command string
 * split into words, and the reading of a server's JSON-RPC lines. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "run/engine.h"
#include "skill/skill.h"

static void test_names(void **state)
{
	(void)state;
	assert_true(vb_mcp_name_ok("srv"));
	assert_true(vb_mcp_name_ok("my-server_2"));
	assert_false(vb_mcp_name_ok(""));
	assert_false(vb_mcp_name_ok("2srv"));
	assert_false(vb_mcp_name_ok("a.b"));
	assert_false(vb_mcp_name_ok("a__b\x1b"));
	assert_false(vb_mcp_name_ok("abcdefghijabcdefghijabcdefghijabc")); /* 33 */
}

static void test_string_form(void **state)
{
	(void)state;
	char v1[] = "/opt/bin/fs-server.py --root '/a b' \"x\"y", v2[] = "   ",
	     v3[] = "9p-server";
	struct vb_spec_skill in = { .type = VB_SPEC_SKILL_MCP, .value = v1 };
	struct vb_skill_mcp m;
	vb_error err = { 0 };
	assert_int_equal(vb_skill_mcp_resolve(&in, &m, &err), 0);
	assert_string_equal(m.name, "fs-server");
	assert_string_equal(m.argv[0], "/opt/bin/fs-server.py");
	assert_string_equal(m.argv[1], "--root");
	assert_string_equal(m.argv[2], "/a b");
	assert_string_equal(m.argv[3], "xy");
	assert_null(m.argv[4]);
	assert_null(m.env);
	vb_skill_mcp_free(&m);
	in.value = v2;
	assert_int_equal(vb_skill_mcp_resolve(&in, &m, &err), -1);
	assert_non_null(strstr(err.msg, "no command"));
	in.value = v3;
	assert_int_equal(vb_skill_mcp_resolve(&in, &m, &err), -1);
	assert_non_null(strstr(err.msg, "'9p-server' is not a usable MCP server name"));
}

static void test_reader(void **state)
{
	(void)state;
	struct vb_mcp_reader r = { 0 };
	vb_error err = { 0 };
	char *line;
	size_t len;
	assert_int_equal(vb_mcp_reader_feed(&r, "{\"a\":", 5, &err), 0);
	assert_int_equal(vb_mcp_reader_line(&r, &line, &len), 0);
	assert_int_equal(vb_mcp_reader_feed(&r, "1}\r\n{}\npart", 12, &err), 0);
	assert_int_equal(vb_mcp_reader_line(&r, &line, &len), 1);
	assert_string_equal(line, "{\"a\":1}");
	free(line);
	assert_int_equal(vb_mcp_reader_line(&r, &line, &len), 1);
	assert_string_equal(line, "{}");
	free(line);
	assert_int_equal(vb_mcp_reader_line(&r, &line, &len), 0);
	/* a line that never ends is refused at the limit */
	char *big = malloc(VB_MCP_LINE_MAX);
	memset(big, 'x', VB_MCP_LINE_MAX);
	assert_int_equal(vb_mcp_reader_feed(&r, big, VB_MCP_LINE_MAX, &err), -1);
	assert_non_null(strstr(err.msg, "a message longer than"));
	free(big);
	vb_mcp_reader_free(&r);
}

static void test_response_and_tools(void **state)
{
	(void)state;
	json_t *res = NULL;
	vb_error err = { 0 };
	const char *note = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}";
	assert_int_equal(vb_mcp_response(note, strlen(note), 2, &res, &err), 0);
	const char *other = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}";
	assert_int_equal(vb_mcp_response(other, strlen(other), 2, &res, &err), 0);
	const char *junk = "hello \x1b[31mworld";
	assert_int_equal(vb_mcp_response(junk, strlen(junk), 2, &res, &err), -1);
	assert_null(strchr(err.msg, '\x1b'));
	assert_non_null(strstr(err.msg, "not a JSON-RPC 2.0 message"));
	const char *e = "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":-32601,\"message\":\"no \\u001b\"}}";
	assert_int_equal(vb_mcp_response(e, strlen(e), 2, &res, &err), -1);
	assert_non_null(strstr(err.msg, "error response: no "));
	assert_null(strchr(err.msg, '\x1b'));
	const char *ok = "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"tools\":["
			 "{\"name\":\"echo\",\"description\":\"E\\u001b[2J\",\"inputSchema\":{\"type\":\"object\"}},"
			 "{\"name\":\"bare\"}]}}";
	assert_int_equal(vb_mcp_response(ok, strlen(ok), 2, &res, &err), 1);
	struct vb_mcp_tool *t;
	size_t n;
	assert_int_equal(vb_mcp_tools(res, &t, &n, &err), 0);
	json_decref(res);
	assert_int_equal(n, 2);
	assert_string_equal(t[0].name, "echo");
	assert_null(strchr(t[0].description, '\x1b'));
	assert_null(t[1].description);
	assert_string_equal(json_string_value(json_object_get(t[1].schema, "type")), "object");
	vb_mcp_tools_free(t, n);
	/* unsafe or duplicate names, too many tools */
	json_t *bad = json_pack("{s:[{s:s}]}", "tools", "name", "a/b");
	assert_int_equal(vb_mcp_tools(bad, &t, &n, &err), -1);
	json_decref(bad);
	bad = json_pack("{s:[{s:s},{s:s}]}", "tools", "name", "x", "name", "x");
	assert_int_equal(vb_mcp_tools(bad, &t, &n, &err), -1);
	assert_non_null(strstr(err.msg, "two tools named 'x'"));
	json_decref(bad);
	bad = json_pack("{s:[{s:s},{s:s}]}", "tools", "name", "a.b", "name", "a_b");
	assert_int_equal(vb_mcp_tools(bad, &t, &n, &err), -1);
	assert_non_null(strstr(err.msg, "two tools named 'a_b'"));
	json_decref(bad);
	bad = json_pack("{s:[]}", "tools");
	for (int i = 0; i <= VB_MCP_TOOLS_MAX; i++)
		json_array_append_new(json_object_get(bad, "tools"), json_pack("{s:s}", "name", "t"));
	assert_int_equal(vb_mcp_tools(bad, &t, &n, &err), -1);
	assert_non_null(strstr(err.msg, "at most 128"));
	json_decref(bad);
}

/* codex's -c override: the server's command, args and env as TOML,
 * required (codex waits for it) and as long to start as VoidBox's check */
static void test_codex_override(void **state)
{
	(void)state;
	char a0[] = "node", a1[] = "/opt/mcp/a \"b\".js", a2[] = "/workspace", e0[] = "K=v\\w",
	     name[] = "fs";
	char *argv[] = { a0, a1, a2, NULL }, *env[] = { e0, NULL };
	struct vb_skill_mcp m = { .name = name, .argv = argv, .env = env };
	struct vb_skill_set set = { .mcp = &m, .n_mcp = 1 };
	char **v = vb_run_mcp_codex_overrides(&set);
	assert_non_null(v);
	assert_string_equal(v[0], "mcp_servers.fs={command=\"node\",args=[\"/opt/mcp/a \\\"b\\\".js\","
				  "\"/workspace\"],env={\"K\"=\"v\\\\w\"},startup_timeout_sec=60,required=true}");
	assert_null(v[1]);
	free(v[0]);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_string_form),
		cmocka_unit_test(test_reader),
		cmocka_unit_test(test_response_and_tools),
		cmocka_unit_test(test_codex_override),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
