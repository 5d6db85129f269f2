/* SPDX-License-Identifier: Apache-2.0 */
/* The LLM gateway's pure parts: usage scanning, prices, the placeholder
 * check, and the provider table with its credential sources (src/llm/). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "llm/llm.h"
#include "util/util.h"

static bool near(double a, double b)
{
	return a - b < 1e-12 && b - a < 1e-12;
}

/* Feed (text) in pieces of (step) bytes: a scanner must not care. */
static struct vb_llm_usage scan(const char *text, bool sse, size_t step)
{
	struct vb_llm_usage_scan s;
	vb_llm_usage_init(&s, sse);
	for (size_t i = 0; i < strlen(text); i += step) {
		size_t n = strlen(text) - i < step ? strlen(text) - i : step;
		vb_llm_usage_feed(&s, text + i, n);
	}
	vb_llm_usage_end(&s);
	struct vb_llm_usage u = s.u;
	vb_llm_usage_free(&s);
	return u;
}

static const char anthropic_sse[] =
	"event: message_start\r\n"
	"data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"claude-sonnet-4-5\","
	"\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":100,"
	"\"cache_read_input_tokens\":1000,\"output_tokens\":1}}}\r\n\r\n"
	"event: content_block_delta\n"
	"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
	"\"text\":\"usage: {\\\"output_tokens\\\": 999}\"}}\n\n"
	"event: message_delta\n"
	"data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
	"\"usage\":{\"output_tokens\":15}}\n\n"
	"event: message_stop\n"
	"data: {\"type\":\"message_stop\"}\n\n";

static void test_usage_anthropic_sse(void **state)
{
	(void)state;
	size_t steps[] = { 1, 7, 64, 100000 };
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct vb_llm_usage u = scan(anthropic_sse, true, steps[i]);
		assert_int_equal(u.input_tokens, 25);
		assert_int_equal(u.cache_write_tokens, 100);
		assert_int_equal(u.cache_read_tokens, 1000);
		assert_int_equal(u.output_tokens, 15); /* message_delta's, not the text's */
		assert_string_equal(u.model, "claude-sonnet-4-5");
		assert_int_equal(vb_llm_usage_tokens(&u), 1140);
	}
}

static void test_usage_openai_sse(void **state)
{
	(void)state;
	const char *text =
		"event: response.created\n"
		"data: {\"type\":\"response.created\",\"response\":{\"model\":\"gpt-4o\",\"status\":"
		"\"in_progress\"}}\n\n"
		"event: response.output_text.delta\n"
		"data: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\n\n"
		"event: response.completed\n"
		"data: {\"type\":\"response.completed\",\"response\":{\"model\":\"gpt-4o-2024-08-06\","
		"\"usage\":{\"input_tokens\":300,\"output_tokens\":40,\"total_tokens\":340}}}\n\n";
	struct vb_llm_usage u = scan(text, true, 5);
	assert_int_equal(u.input_tokens, 300);
	assert_int_equal(u.output_tokens, 40);
	assert_string_equal(u.model, "gpt-4o-2024-08-06");
}

static void test_usage_json_bodies(void **state)
{
	(void)state;
	struct vb_llm_usage u = scan("{\"type\":\"message\",\"model\":\"claude-haiku-4-5\",\"usage\":"
				     "{\"input_tokens\":7,\"output_tokens\":3}}",
				     false, 4);
	assert_int_equal(u.input_tokens, 7);
	assert_int_equal(u.output_tokens, 3);
	/* Chat Completions' names */
	u = scan("{\"model\":\"x\",\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":2}}", false,
		 100);
	assert_int_equal(u.input_tokens, 11);
	assert_int_equal(u.output_tokens, 2);
	/* garbage: nothing, no crash */
	u = scan("data: {not json\n\n", true, 3);
	assert_int_equal(vb_llm_usage_tokens(&u), 0);
	u = scan("{\"usage\":{\"input_tokens\":-5,\"output_tokens\":\"9\"}}", false, 100);
	assert_int_equal(vb_llm_usage_tokens(&u), 0);
}

static void test_usage_long_line_skipped(void **state)
{
	(void)state;
	/* a 1 MiB delta line is skipped, the usage after it still counts */
	size_t big = 1 << 20;
	char *text = malloc(big + 512);
	assert_non_null(text);
	strcpy(text, "data: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"");
	size_t n = strlen(text);
	memset(text + n, 'a', big);
	strcpy(text + n + big, "\"}}\n\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":"
			       "42}}\n\n");
	struct vb_llm_usage u = scan(text, true, 4096);
	assert_int_equal(u.output_tokens, 42);
	free(text);
}

static void test_cost(void **state)
{
	(void)state;
	struct vb_llm_usage u = { .input_tokens = 1000000, .output_tokens = 1000000 };
	bool known;
	assert_true(near(vb_llm_cost_usd("claude-sonnet-4-5-20250929", &u, &known), 18));
	assert_true(known);
	assert_true(near(vb_llm_cost_usd("claude-opus-4-1", &u, &known), 90));
	assert_true(near(vb_llm_cost_usd("claude-opus-4-5", &u, &known), 30));
	assert_true(near(vb_llm_cost_usd("gpt-4o-mini", &u, &known), 0.75));
	assert_true(near(vb_llm_cost_usd("gpt-4o", &u, &known), 12.5));
	assert_true(near(vb_llm_cost_usd("gpt-5-mini", &u, &known), 2.25));
	/* a newer Claude than the table: its family's price */
	assert_true(near(vb_llm_cost_usd("claude-opus-5-5", &u, &known), 30));
	assert_true(known);
	/* unknown: zero, and said so */
	assert_true(near(vb_llm_cost_usd("qwen3-coder:7b", &u, &known), 0));
	assert_false(known);
	assert_true(near(vb_llm_cost_usd(NULL, &u, &known), 0));
	/* cache writes 1.25x, reads 0.1x the input price */
	struct vb_llm_usage c = { .cache_write_tokens = 1000000, .cache_read_tokens = 1000000 };
	assert_true(near(vb_llm_cost_usd("claude-sonnet-4-5", &c, NULL), 3 * 1.25 + 3 * 0.1));
}

static void test_token_check(void **state)
{
	(void)state;
	const char *want = "sk-voidbox-0123456789abcdef";
	assert_true(vb_llm_token_equal(want, strlen(want), want));
	assert_false(vb_llm_token_equal("sk-voidbox-0123456789abcdeF", strlen(want), want));
	assert_false(vb_llm_token_equal("sk-voidbox-", 11, want));              /* a prefix */
	assert_false(vb_llm_token_equal("sk-voidbox-0123456789abcdef0", 28, want)); /* longer */
	assert_false(vb_llm_token_equal("", 0, want));
	bool bearer;
	assert_string_equal(vb_llm_token_from("k", "Bearer b", &bearer), "k");
	assert_false(bearer);
	assert_string_equal(vb_llm_token_from(NULL, "Bearer  b", &bearer), "b");
	assert_true(bearer);
	assert_string_equal(vb_llm_token_from("", "bearer b", &bearer), "b");
	assert_null(vb_llm_token_from(NULL, "Basic abc", &bearer));
	assert_null(vb_llm_token_from(NULL, NULL, &bearer));
}

static void test_model_paths(void **state)
{
	(void)state;
	assert_true(vb_llm_is_model_path("/v1/messages"));
	assert_true(vb_llm_is_model_path("/v1/messages?beta=true"));
	assert_true(vb_llm_is_model_path("/v1/responses"));
	assert_true(vb_llm_is_model_path("/v1/chat/completions/"));
	assert_false(vb_llm_is_model_path("/v1/messages/count_tokens?beta=true"));
	assert_false(vb_llm_is_model_path("/v1/models"));
	assert_false(vb_llm_is_model_path("/"));
	assert_string_equal(vb_llm_base_path(VB_LLM_WIRE_ANTHROPIC), "");
	assert_string_equal(vb_llm_base_path(VB_LLM_WIRE_OPENAI), "/v1");
}

/* ---- providers ----------------------------------------------------------- */

static char home[64];

static int setup_env(void **state)
{
	(void)state;
	snprintf(home, sizeof(home), "/tmp/vb-llm-unit-XXXXXX");
	if (!mkdtemp(home))
		return -1;
	setenv("HOME", home, 1);
	const char *vars[] = { "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "CLAUDE_CONFIG_DIR",
			       "CODEX_HOME", "VOIDBOX_LLM_PROVIDER", "VOIDBOX_LLM_MODEL",
			       "VOIDBOX_LLM_BASE_URL", "MY_KEY", "VOIDBOX_LLM_OAUTH_TOKEN_URL" };
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	return 0;
}

static int teardown_env(void **state)
{
	(void)state;
	vb_rm_rf(home);
	return 0;
}

static void write_file(const char *rel, const char *text)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", home, rel);
	char dir[256];
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	vb_error err = { 0 };
	assert_int_equal(vb_mkdir_p(dir, 0700, &err), 0);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *header_of(struct vb_llm_provider *p, bool bearer)
{
	char *h = NULL;
	vb_error err = { 0 };
	assert_int_equal(vb_llm_provider_auth_header(p, bearer, &h, &err), 0);
	return h;
}

static void test_provider_claude(void **state)
{
	(void)state;
	vb_error err = { 0 };
	struct vb_llm_config cfg = { 0 };
	assert_null(vb_llm_provider_new(&cfg, &err));
	assert_non_null(strstr(err.msg, "ANTHROPIC_API_KEY is not set in the host's environment"));
	assert_non_null(strstr(err.msg, "fix: "));
	setenv("ANTHROPIC_API_KEY", "sk-ant-test", 1);
	struct vb_llm_provider *p = vb_llm_provider_new(&cfg, &err);
	assert_non_null(p);
	assert_string_equal(vb_llm_provider_name(p), "claude");
	assert_string_equal(vb_llm_provider_base_url(p), "https://api.anthropic.com");
	assert_false(vb_llm_provider_is_local(p));
	char *h = header_of(p, true); /* Anthropic keys go as x-api-key, always */
	assert_string_equal(h, "x-api-key: sk-ant-test");
	vb_llm_wipe_free(h);
	vb_llm_provider_free(p);
	unsetenv("ANTHROPIC_API_KEY");
}

static void test_provider_overrides(void **state)
{
	(void)state;
	vb_error err = { 0 };
	struct vb_llm_config cfg = { .provider = "ollama", .model = "qwen3-coder:7b",
				     .base_url = "http://127.0.0.1:9999/" };
	struct vb_llm_provider *p = vb_llm_provider_new(&cfg, &err);
	assert_non_null(p);
	assert_string_equal(vb_llm_provider_base_url(p), "http://127.0.0.1:9999"); /* no '/' */
	assert_true(vb_llm_provider_is_local(p));
	char *h = header_of(p, true); /* a local server gets a dummy in the agent's style */
	assert_string_equal(h, "Authorization: Bearer ollama");
	vb_llm_wipe_free(h);
	vb_llm_provider_free(p);
	/* the environment wins; another provider starts from its own defaults */
	setenv("VOIDBOX_LLM_PROVIDER", "lmstudio", 1);
	p = vb_llm_provider_new(&cfg, &err);
	assert_non_null(p);
	assert_string_equal(vb_llm_provider_name(p), "lmstudio");
	assert_string_equal(vb_llm_provider_base_url(p), "http://127.0.0.1:1234");
	assert_null(vb_llm_provider_model(p));
	vb_llm_provider_free(p);
	setenv("VOIDBOX_LLM_MODEL", "local-model", 1);
	setenv("VOIDBOX_LLM_BASE_URL", "http://10.0.0.1:1", 1);
	p = vb_llm_provider_new(&cfg, &err);
	assert_non_null(p);
	assert_string_equal(vb_llm_provider_model(p), "local-model");
	assert_string_equal(vb_llm_provider_base_url(p), "http://10.0.0.1:1");
	vb_llm_provider_free(p);
	setenv("VOIDBOX_LLM_PROVIDER", "gemini", 1);
	assert_null(vb_llm_provider_new(&cfg, &err));
	assert_non_null(strstr(err.msg, "unknown llm provider \"gemini\""));
	setenv("VOIDBOX_LLM_PROVIDER", "ollama", 1);
	setenv("VOIDBOX_LLM_BASE_URL", "file:///etc/passwd", 1);
	assert_null(vb_llm_provider_new(&cfg, &err));
	assert_non_null(strstr(err.msg, "is not http:// or https://"));
	unsetenv("VOIDBOX_LLM_PROVIDER");
	unsetenv("VOIDBOX_LLM_MODEL");
	unsetenv("VOIDBOX_LLM_BASE_URL");
}

static void test_provider_custom(void **state)
{
	(void)state;
	vb_error err = { 0 };
	struct vb_llm_config cfg = { .provider = "custom" };
	assert_null(vb_llm_provider_new(&cfg, &err));
	assert_non_null(strstr(err.msg, "needs a base URL"));
	cfg.base_url = "https://llm.example.org";
	cfg.api_key_env = "MY_KEY";
	assert_null(vb_llm_provider_new(&cfg, &err));
	assert_non_null(strstr(err.msg, "MY_KEY is not set"));
	setenv("MY_KEY", "k-custom", 1);
	struct vb_llm_provider *p = vb_llm_provider_new(&cfg, &err);
	assert_non_null(p);
	char *h = header_of(p, false); /* as the agent sent it */
	assert_string_equal(h, "x-api-key: k-custom");
	vb_llm_wipe_free(h);
	h = header_of(p, true);
	assert_string_equal(h, "Authorization: Bearer k-custom");
	vb_llm_wipe_free(h);
	vb_llm_provider_free(p);
	unsetenv("MY_KEY");
}

static void test_provider_codex(void **state)
{
	(void)state;
	vb_error err = { 0 };
	struct vb_llm_config cfg = { .provider = "codex" };
	assert_null(vb_llm_provider_new(&cfg, &err));
	assert_non_null(strstr(err.msg, "no OPENAI_API_KEY"));
	/* a ChatGPT login: its token as a bearer, its account id, the ChatGPT
	 * backend without /v1 (refreshing it: test_agent_modes.sh) */
	write_file(".codex/auth.json", "{\"OPENAI_API_KEY\":null,\"tokens\":{\"access_token\":"
				       "\"x\",\"account_id\":\"acct-1\"}}");
	struct vb_llm_provider *pc = vb_llm_provider_new(&cfg, &err);
	assert_non_null(pc);
	char *hc = header_of(pc, false);
	assert_string_equal(hc, "Authorization: Bearer x");
	vb_llm_wipe_free(hc);
	hc = vb_llm_provider_account_header(pc);
	assert_string_equal(hc, "chatgpt-account-id: acct-1");
	free(hc);
	assert_string_equal(vb_llm_provider_base_url(pc), "https://chatgpt.com/backend-api/codex");
	assert_string_equal(vb_llm_provider_upstream_path(pc, "/v1/responses"), "/responses");
	vb_llm_provider_free(pc);
	/* neither a key nor a login: said so */
	write_file(".codex/auth.json", "{\"OPENAI_API_KEY\":null}");
	assert_null(vb_llm_provider_new(&cfg, &err));
	assert_non_null(strstr(err.msg, "no API key and no ChatGPT login"));
	write_file(".codex/auth.json", "{\"OPENAI_API_KEY\":\"sk-from-file\"}");
	struct vb_llm_provider *p = vb_llm_provider_new(&cfg, &err);
	assert_non_null(p);
	char *h = header_of(p, false);
	assert_string_equal(h, "Authorization: Bearer sk-from-file");
	vb_llm_wipe_free(h);
	assert_null(vb_llm_provider_account_header(p));
	assert_string_equal(vb_llm_provider_upstream_path(p, "/v1/responses"), "/v1/responses");
	vb_llm_provider_free(p);
	setenv("OPENAI_API_KEY", "sk-from-env", 1); /* the environment first */
	p = vb_llm_provider_new(&cfg, &err);
	assert_non_null(p);
	h = header_of(p, false);
	assert_string_equal(h, "Authorization: Bearer sk-from-env");
	vb_llm_wipe_free(h);
	vb_llm_provider_free(p);
	unsetenv("OPENAI_API_KEY");
}

static void test_provider_claude_personal(void **state)
{
	(void)state;
	vb_error err = { 0 };
	struct vb_llm_config cfg = { .provider = "claude-personal" };
	assert_null(vb_llm_provider_new(&cfg, &err));
	assert_non_null(strstr(err.msg, "no claude-code login on the host"));
	char text[256];
	long long future = (long long)time(NULL) * 1000 + 3600 * 1000;
	snprintf(text, sizeof(text),
		 "{\"claudeAiOauth\":{\"accessToken\":\"sk-ant-oat01-x\",\"refreshToken\":\"r\","
		 "\"expiresAt\":%lld}}",
		 future);
	write_file(".claude/.credentials.json", text);
	struct vb_llm_provider *p = vb_llm_provider_new(&cfg, &err);
	assert_non_null(p);
	char *h = header_of(p, false); /* OAuth: a bearer token */
	assert_string_equal(h, "Authorization: Bearer sk-ant-oat01-x");
	vb_llm_wipe_free(h);
	/* expired, and nothing to refresh it with: a clear failure (the
	 * refresh itself: tests/integration/test_agent_modes.sh) */
	write_file(".claude/.credentials.json",
		   "{\"claudeAiOauth\":{\"accessToken\":\"tok-canary-9\",\"expiresAt\":1000}}");
	vb_llm_provider_free(p);
	assert_null(vb_llm_provider_new(&cfg, &err));
	assert_non_null(strstr(err.msg, "has expired and holds no refresh token"));
	assert_non_null(strstr(err.msg, "fix: run `claude /login` on the host"));
	assert_null(strstr(err.msg, "tok-canary-9"));
	/* a file that is not JSON: named, with the fix */
	write_file(".claude/.credentials.json", "{nope");
	assert_null(vb_llm_provider_new(&cfg, &err));
	assert_non_null(strstr(err.msg, "llm provider claude-personal: "));
	assert_non_null(strstr(err.msg, "is not a JSON object"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_usage_anthropic_sse),
		cmocka_unit_test(test_usage_openai_sse),
		cmocka_unit_test(test_usage_json_bodies),
		cmocka_unit_test(test_usage_long_line_skipped),
		cmocka_unit_test(test_cost),
		cmocka_unit_test(test_token_check),
		cmocka_unit_test(test_model_paths),
		cmocka_unit_test_setup_teardown(test_provider_claude, setup_env, teardown_env),
		cmocka_unit_test_setup_teardown(test_provider_overrides, setup_env, teardown_env),
		cmocka_unit_test_setup_teardown(test_provider_custom, setup_env, teardown_env),
		cmocka_unit_test_setup_teardown(test_provider_codex, setup_env, teardown_env),
		cmocka_unit_test_setup_teardown(test_provider_claude_personal, setup_env,
						teardown_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
