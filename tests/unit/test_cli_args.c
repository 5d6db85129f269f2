/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CLI's shared option helpers (src/cli/args.c, compiled in here: the
 * CLI is not part of libvoidbox): sizes with units, the did-you-mean
 * distance and its threshold, the one wording of option errors, and rw
 * mount directories created while ro ones must exist.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cli/args.c"

static void test_sizes(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		uint64_t unit, want;
	} ok[] = {
		{ "512", 1u << 20, 512ull << 20 }, { "512M", 1u << 20, 512ull << 20 },
		{ "512m", 1, 512ull << 20 },      { "1G", 1u << 20, 1ull << 30 },
		{ "1g", 1u << 20, 1ull << 30 },   { "1GiB", 1u << 20, 1ull << 30 },
		{ "1GB", 1u << 20, 1ull << 30 },  { "64K", 1, 64ull << 10 },
		{ "10b", 1u << 20, 10 },          { "2T", 1, 2ull << 40 },
		{ "1Gi", 1, 1ull << 30 },         { "0", 1, 0 },
		{ "1048576", 1, 1048576 },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint64_t b = 1;
		assert_int_equal(vb_cli_parse_size(ok[i].s, ok[i].unit, &b), 0);
		assert_true(b == ok[i].want);
	}
	static const char *const bad[] = { "", "-1", "+1", " 1", "1X", "1GX", "1GiBB", "G", "1.5G",
					   "1 G", "99999999999999999999", "17179869184G", "1iB" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t b = 7;
		assert_int_equal(vb_cli_parse_size(bad[i], 1, &b), -1);
		assert_true(b == 7);
	}
}

static void test_memory(void **state)
{
	(void)state;
	unsigned mib = 0;
	vb_error err = { 0 };
	assert_int_equal(vb_cli_parse_memory("exec", "1G", &mib, &err), 0);
	assert_int_equal(mib, 1024);
	assert_int_equal(vb_cli_parse_memory("exec", "65536K", &mib, &err), 0);
	assert_int_equal(mib, 64);
	assert_int_equal(vb_cli_parse_memory("exec", "2048", &mib, &err), 0);
	assert_int_equal(mib, 2048);
	static const char *const bad[] = { "63", "32M", "1500K", "2T", "lots", "0" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		mib = 5;
		assert_int_equal(vb_cli_parse_memory("exec", bad[i], &mib, &err), -1);
		assert_int_equal(err.kind, VB_E_USAGE);
		assert_non_null(strstr(err.msg, "exec: --memory "));
		assert_int_equal(mib, 5);
	}
}

static void test_distance_and_suggestions(void **state)
{
	(void)state;
	assert_int_equal(vb_cli_distance("exec", "exec"), 0);
	assert_int_equal(vb_cli_distance("exce", "exec"), 1); /* a swap */
	assert_int_equal(vb_cli_distance("exe", "exec"), 1);
	assert_int_equal(vb_cli_distance("", "ps"), 2);
	assert_int_equal(vb_cli_distance("kitten", "sitting"), 3);
	assert_true(vb_cli_distance("a", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") == SIZE_MAX);

	static const char *const verbs[] = { "exec", "run", "shell", "logs", "ps", "validate",
					     "inspect", "image", "doctor", "version" };
	size_t n = sizeof(verbs) / sizeof(verbs[0]);
	assert_string_equal(vb_cli_suggest("exce", verbs, n), "exec");
	assert_string_equal(vb_cli_suggest("pss", verbs, n), "ps");
	assert_string_equal(vb_cli_suggest("valdiate", verbs, n), "validate");
	assert_string_equal(vb_cli_suggest("imgae", verbs, n), "image");
	assert_null(vb_cli_suggest("exec", verbs, n)); /* exact: nothing to suggest */
	assert_null(vb_cli_suggest("bogus", verbs, n));
	assert_null(vb_cli_suggest("x", verbs, n));
	assert_null(vb_cli_suggest("rn", verbs, n)); /* one edit in two letters: too far */
	assert_null(vb_cli_suggest("anything", NULL, 0));
}

static void test_error_wording(void **state)
{
	(void)state;
	vb_error err = { 0 };
	assert_int_equal(vb_cli_unknown_option("doctor", "--bogus=1", NULL, &err), -1);
	assert_int_equal(err.kind, VB_E_USAGE);
	assert_string_equal(err.msg, "doctor: unknown option '--bogus' (see 'voidbox doctor --help')");
	vb_cli_unknown_option("exec", "--memroy", "--memory", &err);
	assert_string_equal(err.msg, "exec: unknown option '--memroy'; did you mean '--memory'? "
				     "(see 'voidbox exec --help')");
	vb_cli_missing_value("exec", "-m", &err);
	assert_string_equal(err.msg, "exec: option '-m' needs a value (see 'voidbox exec --help')");
	/* one line: the escape is shown as ?, the line break as a space (util/term.h) */
	vb_cli_unexpected_arg("version", "a\033[2Jb\nc", &err);
	assert_string_equal(err.msg, "version: unexpected argument 'a?[2Jb c' (see 'voidbox version --help')");
	static const char *const subs[] = { "build", "list" };
	vb_cli_unknown_command("image", "lsit", subs, 2, &err);
	assert_string_equal(err.msg, "image: unknown command 'lsit'; did you mean 'list'? "
				     "(see 'voidbox image --help')");
	int json = 7;
	assert_int_equal(vb_cli_output_format("inspect", "json", &json, &err), 0);
	assert_int_equal(json, 1);
	assert_int_equal(vb_cli_output_format("inspect", "text", &json, &err), 0);
	assert_int_equal(json, 0);
	assert_int_equal(vb_cli_output_format("inspect", "yaml", &json, &err), -1);
	assert_string_equal(err.msg, "inspect: --output must be text or json, not 'yaml' "
				     "(see 'voidbox inspect --help')");
}

static void test_mounts(void **state)
{
	(void)state;
	char dir[] = "/tmp/vb-args-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct vb_cli_arena a = { .n = 0 };
	struct vb_mount m[4];
	size_t n = 0;
	vb_error err = { 0 };
	_cleanup_free_ char *rw = vb_strfmt("%s/new/deep:/out:rw", dir);
	_cleanup_free_ char *ro = vb_strfmt("%s/missing:/in:ro", dir);
	_cleanup_free_ char *dflt = vb_strfmt("%s/missing2:/in", dir);
	_cleanup_free_ char *made = vb_strfmt("%s/new/deep", dir);
	assert_int_equal(vb_cli_add_mount(&a, m, &n, 4, rw, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(m[0].host, made);
	assert_string_equal(m[0].guest, "/out");
	assert_int_equal(m[0].rw, 1);
	struct stat st;
	assert_int_equal(stat(made, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	/* ro (explicit or by default) must exist: nothing created */
	assert_int_equal(vb_cli_add_mount(&a, m, &n, 4, ro, &err), -1);
	assert_int_equal(err.kind, VB_E_USAGE);
	assert_int_equal(vb_cli_add_mount(&a, m, &n, 4, dflt, &err), -1);
	_cleanup_free_ char *missing = vb_strfmt("%s/missing", dir);
	assert_int_equal(stat(missing, &st), -1);
	assert_int_equal(n, 1);
	assert_int_equal(vb_cli_add_mount(&a, m, &n, 4, "/etc/passwd:/x:rw", &err), -1);
	assert_non_null(strstr(err.msg, "not a directory"));
	assert_int_equal(vb_cli_add_mount(&a, m, &n, 4, "/tmp:/x:rx", &err), -1);
	assert_int_equal(vb_cli_add_mount(&a, m, &n, 4, "/tmp", &err), -1);
	vb_cli_arena_free(&a);
	vb_rm_rf(dir);
}

static void test_llm_budget(void **state)
{
	(void)state;
	vb_error err = { 0 };
	struct vb_run_llm_budget b = { 0 };
	assert_int_equal(vb_cli_parse_llm_budget("max_tokens=5000,max_cost_usd=2.50", &b, &err), 0);
	assert_true(b.max_tokens == 5000 && b.max_cost_usd == 2.5 && b.max_requests == 0);
	/* a second --budget adds keys; a key twice is an error */
	assert_int_equal(vb_cli_parse_llm_budget("max_requests=3", &b, &err), 0);
	assert_true(b.max_requests == 3);
	assert_int_equal(vb_cli_parse_llm_budget("max_requests=4", &b, &err), -1);
	assert_string_equal(err.msg, "--budget: max_requests is given twice");
	struct vb_run_llm_budget c = { 0 };
	assert_int_equal(vb_cli_parse_llm_budget("max_cost_usd=.5", &c, &err), 0);
	assert_true(c.max_cost_usd == 0.5);
	static const struct {
		const char *arg, *msg;
	} bad[] = {
		{ "max_token=5", "--budget: unknown key 'max_token'; did you mean 'max_tokens'? "
				 "(keys: max_tokens, max_cost_usd, max_requests)" },
		{ "tokens=5", "--budget: unknown key 'tokens' (keys: max_tokens, max_cost_usd, "
			      "max_requests)" },
		{ "max_tokens=-5", "--budget max_tokens=-5: expected a whole number greater than 0 "
				   "(leave the key out for no limit)" },
		{ "max_cost_usd=-1", "--budget max_cost_usd=-1: expected an amount of US dollars "
				     "such as 2.50 greater than 0 (leave the key out for no limit)" },
		{ "max_requests=0", "--budget max_requests=0: expected a whole number greater than 0 "
				    "(leave the key out for no limit)" },
		{ "max_tokens", "--budget: 'max_tokens' is not KEY=VALUE (keys max_tokens, "
				"max_cost_usd, max_requests; e.g. --budget "
				"max_tokens=200000,max_cost_usd=2.50)" },
		{ "", NULL },
		{ "max_tokens=1,", NULL },
		{ "max_tokens=1e5", NULL },
		{ "max_tokens=0x10", NULL },
		{ "max_tokens= 5", NULL },
		{ "max_tokens=5.0", NULL },
		{ "max_tokens=99999999999999999999", NULL },
		{ "max_cost_usd=nan", NULL },
		{ "max_cost_usd=inf", NULL },
		{ "max_cost_usd=1.2.3", NULL },
		{ "max_cost_usd=.", NULL },
		{ "max_requests=3;rm", NULL },
		{ "\x1b[31m=1", "--budget: unknown key '?[31m' (keys: max_tokens, max_cost_usd, "
				"max_requests)" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vb_run_llm_budget d = { 0 };
		err = (vb_error){ 0 };
		assert_int_equal(vb_cli_parse_llm_budget(bad[i].arg, &d, &err), -1);
		assert_int_equal(err.kind, VB_E_USAGE);
		if (bad[i].msg)
			assert_string_equal(err.msg, bad[i].msg);
		assert_null(strchr(err.msg, '\x1b'));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_memory),
		cmocka_unit_test(test_distance_and_suggestions),
		cmocka_unit_test(test_error_wording),
		cmocka_unit_test(test_mounts),
		cmocka_unit_test(test_llm_budget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
