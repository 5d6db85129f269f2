/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Run engine pieces that need no VM: a spec VM turned into a sandbox
 * config (env, credentials, limits, mounts, what this version refuses),
 * UTF-8 repair, the result object and exit codes, and the runs refused
 * before anything boots (agents, sandbox kind).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run/engine.h"
#include "run/vmconf.h"
#include "spec/spec.h"
#include "util/util.h"

static struct vb_spec *load(const char *yaml)
{
	vb_error err = { 0 };
	struct vb_spec *s = vb_spec_load_string(yaml, strlen(yaml), "t.yaml", 1, &err);
	if (!s)
		fail_msg("spec: %s", err.msg);
	return s;
}

static void test_vmconf(void **state)
{
	(void)state;
	char dir[] = "/tmp/vb-unit-run-XXXXXX";
	assert_non_null(mkdtemp(dir));
	setenv("VB_UNIT_FROM_HOST", "copied", 1);
	unsetenv("VB_UNIT_UNSET");
	char *yaml = vb_strfmt(
		"api_version: v1\nkind: pipeline\nname: t\n"
		"sandbox:\n  mode: mock\n  memory_mb: 300\n  vcpus: 2\n"
		"  env: {A: x, VB_UNIT_FROM_HOST: \"\", VB_UNIT_UNSET: \"\", OPENAI_API_KEY: k}\n"
		"  limits: {nofile: 10, nproc: 20, fsize_mb: 3, timeout_secs: 7}\n"
		"  allowed_commands: [sh, cat]\n"
		"  mounts: [{host: %s, guest: /ro}, {host: %s/new/deep, guest: /rw, mode: rw}]\n"
		"pipeline:\n  boxes:\n"
		"    - {name: a, sandbox: {env: {A: y}}, run: {program: sh}}\n",
		dir, dir);
	struct vb_spec *s = load(yaml);
	struct vb_run_vmconf c;
	vb_error err = { 0 };
	assert_int_equal(vb_run_vm_config(&s->pipeline.boxes[0].vm, NULL, &c, &err), 0);
	assert_int_equal(c.cfg.memory_mib, 300);
	assert_int_equal(c.cfg.accel, VB_ACCEL_AUTO);
	assert_int_equal(c.cfg.vcpus, 2);
	assert_int_equal(c.cfg.backend, VB_BACKEND_AUTO);
	assert_int_equal(c.cfg.rlimit_nofile, 10);
	assert_int_equal(c.cfg.rlimit_nproc, 20);
	assert_int_equal(c.cfg.rlimit_fsize, 3 * 1024 * 1024);
	assert_int_equal(c.timeout_ms, 7000);
	assert_int_equal(c.cfg.n_allow, 2);
	assert_string_equal(c.cfg.allow[1], "cat");
	/* box keys win; from_host copied, unset skipped; credentials never */
	assert_int_equal(c.n_env, 2);
	assert_null(c.env[2]);
	int a_first = !strcmp(c.env[0], "A=y");
	assert_string_equal(c.env[a_first ? 0 : 1], "A=y");
	assert_string_equal(c.env[a_first ? 1 : 0], "VB_UNIT_FROM_HOST=copied");
	assert_int_equal(c.notices, VB_RUN_NOTICE_MOCK | VB_RUN_NOTICE_CREDENTIALS);
	assert_int_equal(c.cfg.n_mounts, 2);
	assert_string_equal(c.cfg.mounts[0].guest, "/ro");
	assert_false(c.cfg.mounts[0].rw);
	assert_true(c.cfg.mounts[1].rw);
	struct stat st;
	char *deep = vb_strfmt("%s/new/deep", dir);
	assert_int_equal(stat(deep, &st), 0); /* rw host dir created */
	assert_int_equal(vb_run_vmconf_add_mount(&c, "/x", "/y", 0, &err), 0);
	assert_int_equal(c.cfg.n_mounts, 3);
	assert_string_equal(c.cfg.mounts[2].host, "/x");
	/* --env: replaces the spec's value of a key, or adds one */
	assert_int_equal(vb_run_vmconf_set_env(&c, "A=cli", &err), 0);
	assert_int_equal(vb_run_vmconf_set_env(&c, "NEW=1=2", &err), 0);
	assert_int_equal(vb_run_vmconf_set_env(&c, "AB=other", &err), 0);
	assert_int_equal(c.n_env, 4);
	assert_string_equal(c.env[a_first ? 0 : 1], "A=cli");
	assert_string_equal(c.env[2], "NEW=1=2");
	assert_string_equal(c.env[3], "AB=other");
	assert_null(c.env[4]);
	assert_int_equal(vb_run_vmconf_set_env(&c, "=x", &err), -1);
	/* --mount: a missing rw directory is made, a missing ro one refused */
	char *made = vb_strfmt("%s/cli-rw", dir), *gone = vb_strfmt("%s/cli-ro", dir);
	assert_int_equal(vb_run_vmconf_add_host_mount(&c, made, "/m", 1, &err), 0);
	assert_int_equal(stat(made, &st), 0);
	assert_int_equal(vb_run_vmconf_add_host_mount(&c, gone, "/g", 0, &err), -1);
	assert_int_equal(err.kind, VB_E_USAGE);
	assert_int_equal(c.cfg.n_mounts, 4);
	free(made);
	free(gone);
	/* notices: each once per process */
	char buf[2048] = "";
	FILE *f = fmemopen(buf, sizeof(buf), "w");
	vb_run_vmconf_notify(&c, f);
	vb_run_vmconf_notify(&c, f);
	fclose(f);
	assert_non_null(strstr(buf, "'mock' is treated as 'auto'"));
	assert_non_null(strstr(buf, "provider credentials"));
	assert_null(strstr(strstr(buf, "mock") + 1, "'mock'"));
	vb_run_vmconf_free(&c);
	vb_spec_free(s);
	free(yaml);
	vb_rm_rf(dir);
	free(deep);
}

static void test_vmconf_refusals(void **state)
{
	(void)state;
	static const char *const cases[][2] = {
		{ "ports: [{host: 0, guest: 80}]", "sandbox.ports needs network: true" },
		{ "mounts: [{host: /nonexistent/vb-unit, guest: /x}]", "/nonexistent/vb-unit" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *yaml = vb_strfmt("api_version: v1\nkind: workflow\nname: w\nsandbox: {%s}\n"
				       "workflow:\n  steps:\n    - {name: a, run: {program: sh}}\n",
				       cases[i][0]);
		struct vb_spec *s = load(yaml);
		struct vb_run_vmconf c;
		vb_error err = { 0 };
		assert_int_equal(vb_run_vm_config(&s->vm, NULL, &c, &err), -1);
		if (!strstr(err.msg, cases[i][1]))
			fail_msg("%s: %s", cases[i][0], err.msg);
		vb_run_vmconf_free(&c);
		vb_spec_free(s);
		free(yaml);
	}
}

/* network: true: the policy and the ports reach the VM's config, copied. */
static void test_vmconf_network(void **state)
{
	(void)state;
	struct vb_spec *s = load("api_version: v1\nkind: workflow\nname: w\n"
				 "sandbox:\n  network: true\n  ports: [{host: 0, guest: 80}]\n"
				 "  network_policy:\n    deny: [203.0.113.0/24]\n    allow: [198.51.100.0/24]\n"
				 "    allow_domains: [api.github.com]\n    host_ports: [8080]\n"
				 "    allow_private: true\n    max_connections: 7\n"
				 "workflow:\n  steps:\n    - {name: a, run: {program: sh}}\n");
	struct vb_run_vmconf c;
	vb_error err = { 0 };
	assert_int_equal(vb_run_vm_config(&s->vm, NULL, &c, &err), 0);
	vb_spec_free(s); /* the config owns copies */
	const struct vb_network *n = &c.cfg.network;
	assert_true(n->enabled);
	assert_int_equal(n->n_deny, 1);
	assert_int_equal(n->deny[0].prefix, 24);
	assert_int_equal(n->deny[0].addr[0], 203);
	assert_int_equal(n->n_allow, 1);
	assert_true(n->allow_set);
	assert_int_equal(n->allow[0].addr[2], 100);
	assert_int_equal(n->n_allow_domains, 1);
	assert_string_equal(n->allow_domains[0], "api.github.com");
	assert_int_equal(n->n_host_ports, 1);
	assert_int_equal(n->host_ports[0], 8080);
	assert_true(n->allow_private);
	assert_int_equal(n->max_connections, 7);
	assert_int_equal(n->connections_per_sec, 0);
	assert_int_equal(n->n_publish, 1);
	assert_int_equal(n->publish[0].host_port, 0);
	assert_int_equal(n->publish[0].guest_port, 80);
	vb_run_vmconf_free(&c);
	/* network off: no device, whatever the policy says */
	s = load("api_version: v1\nkind: workflow\nname: w\n"
		 "sandbox: {network_policy: {host_ports: [1]}}\n"
		 "workflow:\n  steps:\n    - {name: a, run: {program: sh}}\n");
	assert_int_equal(vb_run_vm_config(&s->vm, NULL, &c, &err), 0);
	assert_false(c.cfg.network.enabled);
	vb_run_vmconf_free(&c);
	vb_spec_free(s);
}

/* --accel over $VOIDBOX_ACCEL over sandbox.backend. */
static void test_vmconf_accel(void **state)
{
	(void)state;
	static const struct {
		const char *backend, *env;
		int flag_set;
		enum vb_accel flag, want;
	} cases[] = {
		{ "auto", NULL, 0, VB_ACCEL_AUTO, VB_ACCEL_AUTO },
		{ "qemu", NULL, 0, VB_ACCEL_AUTO, VB_ACCEL_AUTO },
		{ "kvm", NULL, 0, VB_ACCEL_AUTO, VB_ACCEL_KVM },
		{ "tcg", NULL, 0, VB_ACCEL_AUTO, VB_ACCEL_TCG },
		{ "kvm", "tcg", 0, VB_ACCEL_AUTO, VB_ACCEL_TCG },
		{ "kvm", "TCG", 0, VB_ACCEL_AUTO, VB_ACCEL_TCG },
		{ "tcg", "auto", 0, VB_ACCEL_AUTO, VB_ACCEL_AUTO },
		{ "kvm", "tcg", 1, VB_ACCEL_KVM, VB_ACCEL_KVM },
		{ "kvm", NULL, 1, VB_ACCEL_TCG, VB_ACCEL_TCG },
		{ "kvm", NULL, 1, VB_ACCEL_AUTO, VB_ACCEL_AUTO },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *yaml = vb_strfmt("api_version: v1\nkind: workflow\nname: w\n"
				       "sandbox: {backend: %s}\n"
				       "workflow:\n  steps:\n    - {name: a, run: {program: sh}}\n",
				       cases[i].backend);
		struct vb_spec *s = load(yaml);
		struct vb_run_vmconf c;
		vb_error err = { 0 };
		if (cases[i].env)
			setenv("VOIDBOX_ACCEL", cases[i].env, 1);
		else
			unsetenv("VOIDBOX_ACCEL");
		assert_int_equal(vb_run_vm_config(&s->vm, cases[i].flag_set ? &cases[i].flag : NULL, &c,
						  &err),
				 0);
		if (c.cfg.accel != cases[i].want)
			fail_msg("case %zu: accel %d, expected %d", i, c.cfg.accel, cases[i].want);
		vb_run_vmconf_free(&c);
		vb_spec_free(s);
		free(yaml);
	}
	setenv("VOIDBOX_ACCEL", "fast", 1);
	char *yaml = vb_strfmt("api_version: v1\nkind: workflow\nname: w\n"
			       "workflow:\n  steps:\n    - {name: a, run: {program: sh}}\n");
	struct vb_spec *s = load(yaml);
	struct vb_run_vmconf c;
	vb_error err = { 0 };
	assert_int_equal(vb_run_vm_config(&s->vm, NULL, &c, &err), -1);
	assert_non_null(strstr(err.msg, "VOIDBOX_ACCEL=fast: expected auto, kvm or tcg"));
	assert_int_equal(err.kind, VB_E_USAGE);
	unsetenv("VOIDBOX_ACCEL");
	vb_run_vmconf_free(&c);
	vb_spec_free(s);
	free(yaml);
}

static void test_utf8(void **state)
{
	(void)state;
	size_t n;
	char *s = vb_run_utf8((const uint8_t *)"a\xff\xc3\xa9\xed\xa0\x80z\xf0\x9f\x98", 11, &n);
	/* a, bad, é, a surrogate (3 bad bytes), z, a cut 4-byte sequence (3 bad) */
	assert_string_equal(s, "a\xEF\xBF\xBD\xc3\xa9\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDz"
			       "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
	assert_int_equal(n, strlen(s));
	free(s);
	s = vb_run_utf8((const uint8_t *)"", 0, &n);
	assert_string_equal(s, "");
	free(s);
}

static void test_result_json_and_exit_codes(void **state)
{
	(void)state;
	char a[] = "a", b[] = "b", out[] = "x\xff", empty[] = "", vm[] = "vm-1", n[] = "n",
	     kind[] = "pipeline";
	char rid[] = "20261130-120000-abcdef", why[] = "'a' failed", err[] = "box 'a' failed: exit code 3";
	char apath[] = "/r/stages/a/output";
	/* a's output is 40000 bytes in its file; the result shows the preview */
	struct vb_run_stage st[2] = {
		{ .name = a, .success = 0, .exit_code = 3, .output = out, .output_len = 2,
		  .output_size = 40000, .output_path = apath, .duration_ms = 12, .vm_id = vm,
		  .error = err + 16 },
		{ .name = b, .skipped = 1, .exit_code = -1, .output = empty, .error = why },
	};
	struct vb_run_result r = { .run_id = rid, .name = n, .kind = kind, .success = 0,
				   .error_kind = VB_E_OK, .error = err, .output = empty,
				   .stages = st, .n_stages = 2, .duration_ms = 40 };
	char *json = vb_run_result_json(&r);
	assert_non_null(json);
	/* no token or cost fields: command boxes have none */
	assert_string_equal(json,
			    "{\"run_id\":\"20261130-120000-abcdef\",\"name\":\"n\",\"kind\":\"pipeline\","
			    "\"success\":false,\"exit_code\":1,\"error\":\"box 'a' failed: exit code 3\","
			    "\"duration_ms\":40,\"output\":\"\",\"output_truncated\":false,"
			    "\"output_bytes\":0,\"output_path\":null,"
			    "\"stages\":[{\"name\":\"a\",\"success\":false,\"skipped\":false,\"exit_code\":3,"
			    "\"error\":\"exit code 3\",\"output\":\"x\xEF\xBF\xBD\",\"duration_ms\":12,"
			    "\"vm_id\":\"vm-1\",\"output_truncated\":true,\"output_bytes\":40000,"
			    "\"output_path\":\"/r/stages/a/output\",\"boot\":\"cold\",\"snapshot\":null,"
			    "\"warm\":false},"
			    "{\"name\":\"b\",\"success\":false,\"skipped\":true,\"exit_code\":-1,"
			    "\"error\":\"'a' failed\",\"output\":\"\",\"duration_ms\":0,\"vm_id\":\"\","
			    "\"output_truncated\":false,\"output_bytes\":0,\"output_path\":null}]}");
	free(json);
	/* success: error is null */
	r.success = 1;
	r.error = NULL;
	st[0].error = st[1].error = NULL;
	json = vb_run_result_json(&r);
	assert_non_null(json);
	assert_non_null(strstr(json, "\"success\":true,\"exit_code\":0,\"error\":null,"));
	r.success = 0;
	free(json);
	r.error_kind = VB_E_OK;
	assert_int_equal(vb_run_exit_code(&r), 1);
	r.error_kind = VB_E_VMDIED;
	assert_int_equal(vb_run_exit_code(&r), 125);
	r.error_kind = VB_E_RUNTIME;
	assert_int_equal(vb_run_exit_code(&r), 125);
	r.error_kind = VB_E_CANCELLED;
	assert_int_equal(vb_run_exit_code(&r), 130);
	r.success = 1;
	assert_int_equal(vb_run_exit_code(&r), 0);
	assert_int_equal(vb_run_exit_code(NULL), 125);
}

static void put_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Outputs in files: previews cut on characters, the budget, and a
 * fan-out's array streamed to a file (JSON embedded, the rest escaped,
 * the cap). */
static void test_outputs_in_files(void **state)
{
	(void)state;
	char dir[] = "/tmp/vb-unit-carry-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char p1[300], p2[300], p3[300], arr[300];
	snprintf(p1, sizeof(p1), "%s/json", dir);
	snprintf(p2, sizeof(p2), "%s/text", dir);
	snprintf(p3, sizeof(p3), "%s/big", dir);
	snprintf(arr, sizeof(arr), "%s/arr.json", dir);
	put_file(p1, "{\"n\": 1}\n", 9);
	/* quotes, a control byte, a backslash, é, a bad byte, a cut é */
	put_file(p2, "a\"\x01\\\xc3\xa9\xff\xc3", 8);

	/* preview: the first (max) bytes, but not half a character */
	size_t n;
	uint8_t *pv = vb_run_preview(p2, 5, &n);
	assert_int_equal(n, 4); /* "a\"\x01\\" and not the é's first byte */
	free(pv);
	pv = vb_run_preview(p2, 6, &n);
	assert_int_equal(n, 6);
	free(pv);
	pv = vb_run_preview(p2, 100, &n); /* all of it, as it is */
	assert_int_equal(n, 8);
	free(pv);
	pv = vb_run_preview("/nonexistent/x", 100, &n);
	assert_int_equal(n, 0);
	assert_string_equal((char *)pv, "");
	free(pv);

	struct vb_run r = { .opts = { .output_budget = 100, .carry_max = 1000 } };
	assert_int_equal(vb_run_budget_take(&r, 60), 0);
	assert_int_equal(vb_run_budget_take(&r, 41), -1);
	assert_int_equal(vb_run_budget_take(&r, 40), 0);
	assert_int_equal(vb_run_budget_take(&r, 1), -1);
	vb_run_budget_give(&r, 60);
	assert_int_equal(vb_run_budget_take(&r, 60), 0);
	char msg[300];
	vb_run_budget_msg(&r, msg, sizeof(msg));
	assert_non_null(strstr(msg, "output budget of 100 bytes is used up"));

	struct vb_run_unit u[3] = {
		{ .output_path = p1, .output_len = 9 },
		{ .output_path = p2, .output_len = 8 },
		{ .output_path = NULL, .output_len = 0 }, /* none: "" */
	};
	vb_error err = { 0 };
	uint64_t len = 0;
	assert_int_equal(vb_run_fan_carry(&r, u, 3, arr, &len, &err), 0);
	size_t got;
	char *text = vb_read_file(arr, 4096, &got, NULL);
	assert_non_null(text);
	assert_string_equal(text, "[{\"n\":1},\"a\\\"\\u0001\\\\\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\",\"\"]");
	assert_int_equal(len, got);
	json_t *j = json_loads(text, 0, NULL);
	assert_non_null(j); /* valid JSON a reader takes */
	json_decref(j);
	free(text);

	/* a JSON output of more than 1 MiB: checked and copied as a stream,
	 * embedded compact */
	char p4[300];
	snprintf(p4, sizeof(p4), "%s/bigjson", dir);
	FILE *f = fopen(p4, "w");
	assert_non_null(f);
	fputs("{ \"s\": \"keep  these \\\" spaces\",\n  \"v\": [", f);
	for (int i = 0; i < 300000; i++)
		fputs(i ? ", 1234" : "1234", f);
	fputs(" ] }\n", f);
	assert_int_equal(fclose(f), 0);
	struct stat sb;
	assert_int_equal(stat(p4, &sb), 0);
	assert_true((size_t)sb.st_size > VB_RUN_JSON_EMBED_MAX);
	struct vb_run_unit bj[2] = { { .output_path = p4, .output_len = (uint64_t)sb.st_size },
				     { .output_path = p1, .output_len = 9 } };
	r.opts.carry_max = 16u << 20;
	assert_int_equal(vb_run_fan_carry(&r, bj, 2, arr, &len, &err), 0);
	text = vb_read_file(arr, 8u << 20, &got, NULL);
	assert_non_null(text);
	assert_memory_equal(text, "[{\"s\":\"keep  these \\\" spaces\",\"v\":[1234,1234,", 44);
	j = json_loadb(text, got, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(json_array_get(j, 0), "v")), 300000);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 1), "n")), 1);
	json_decref(j);
	free(text);
	/* a large output that is not JSON: a string */
	put_file(p4, "{\"cut\": [1, 2", 13);
	bj[0].output_len = VB_RUN_JSON_EMBED_MAX + 1; /* as if large */
	assert_int_equal(vb_run_fan_carry(&r, bj, 1, arr, &len, &err), 0);
	text = vb_read_file(arr, 4096, &got, NULL);
	assert_string_equal(text, "[\"{\\\"cut\\\": [1, 2\"]");
	free(text);

	/* 2 MiB of 0x01: 12 MiB as a JSON string, over a cap of 8 MiB */
	size_t big = 2u << 20;
	uint8_t *ones = malloc(big);
	memset(ones, 1, big);
	put_file(p3, ones, big);
	free(ones);
	struct vb_run_unit b[1] = { { .output_path = p3, .output_len = big } };
	r.opts.carry_max = 8u << 20;
	assert_int_equal(vb_run_fan_carry(&r, b, 1, arr, &len, &err), 1);
	assert_int_equal(err.kind, VB_E_OK);
	assert_non_null(strstr(err.msg, "larger than 8 MiB, the most a fan-out can carry"));
	assert_int_not_equal(access(arr, F_OK), 0); /* no partial array left */
	/* under the cap: one string, every byte escaped */
	r.opts.carry_max = 16u << 20;
	vb_error_clear(&err);
	assert_int_equal(vb_run_fan_carry(&r, b, 1, arr, &len, &err), 0);
	assert_int_equal(len, 2 + 2 + big * 6);
	vb_rm_rf(dir);
}

/* The streaming JSON check agrees with jansson (JSON_DECODE_ANY, default
 * flags) on what is one JSON value. */
static void test_json_scan_agrees_with_jansson(void **state)
{
	(void)state;
	static const struct { const char *text; size_t len; } cases[] = {
#define C(s) { s, sizeof(s) - 1 }
		C("{\"a\":[1,2.5e-3,true,false,null,\"x\\u00e9\\ud83d\\ude00\\n\\/\"]}"), C(" 42 \n"),
		C("\"s\""), C("-0"), C("[]"), C("{}"), C("[ {} , [ ] ]"), C("0.5E+10"), C("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""),
		C("01"), C("[1,]"), C("{\"a\"}"), C("{\"a\":1,}"), C("\"\\u0000\""), C("\"\\ud800\""),
		C("\"\\udc00\""), C("\"\\ud800x\""), C("\"\x01\""), C("\"\xff\""), C("\"\xc0\xaf\""),
		C("\"\xed\xa0\x80\""), C("\"\xf4\x90\x80\x80\""), C("1 2"), C("["), C("tru"), C(""),
		C("   "), C("-"), C("1."), C("1e"), C("1e+"), C("\"abc"), C("{\"a\" 1}"), C("{1:2}"),
		C("[1 2]"), C("nul"), C("truex"), C("\"\\x\""), C("\"\\u12g4\""), C("+1"), C(".5"),
		C("[\"a\",]"), C("{\"a\":}"), C("}"), C("]"), C("\"a\"\"b\""), C("1,"), C("[-]"),
		C("{\"\\u00e9\":[null]}"), C("-12.0e-0"), C("\"\xe0\xa0\x80\""), C("\"\xe0\x9f\xbf\""),
		C("\"\\ud83d\\u0041\""), C("\"\x7f\""), C("\t[\r]\n"),
#undef C
	};
	char dir[] = "/tmp/vb-unit-jscan-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[300];
	snprintf(path, sizeof(path), "%s/t", dir);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		put_file(path, cases[i].text, cases[i].len);
		json_error_t jerr;
		json_t *j = json_loadb(cases[i].text, cases[i].len, JSON_DECODE_ANY, &jerr);
		int want = j != NULL;
		json_decref(j);
		if (vb_run_json_file_ok(path) != want)
			fail_msg("case %zu '%s': scan says %d, jansson %d", i, cases[i].text, !want, want);
	}
	/* nesting: jansson's limit is 2048 levels */
	for (size_t depth = 2047; depth <= 2049; depth++) {
		char *t = malloc(depth * 2);
		memset(t, '[', depth);
		memset(t + depth, ']', depth);
		put_file(path, t, depth * 2);
		json_t *j = json_loadb(t, depth * 2, JSON_DECODE_ANY, NULL);
		assert_int_equal(vb_run_json_file_ok(path), j != NULL);
		json_decref(j);
		free(t);
	}
	assert_int_equal(vb_run_json_file_ok("/nonexistent/x"), 0);
	vb_rm_rf(dir);
}

static void test_refused_before_booting(void **state)
{
	(void)state;
	static const struct {
		const char *yaml, *msg;
		enum vb_error_kind kind;
	} cases[] = {
		/* interactive needs the caller's terminal (vb_run_options.attach) */
		{ "api_version: v1\nkind: agent\nname: a\nllm: {agent: codex}\n"
		  "agent: {prompt: hi, mode: interactive}\n",
		  "agent mode 'interactive' attaches your terminal to the agent", VB_E_USAGE },
		{ "api_version: v1\nkind: agent\nname: a\n"
		  "llm: {provider: custom, base_url: 'http://127.0.0.1:9', api_key_env: VB_NOPE_KEY}\n"
		  "agent: {prompt: hi}\n",
		  "VB_NOPE_KEY", VB_E_USAGE },
		{ "api_version: v1\nkind: sandbox\nname: s\n", "voidbox shell t.yaml", VB_E_USAGE },
	};
	unsetenv("VOIDBOX_LLM_PROVIDER");
	unsetenv("VB_NOPE_KEY");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vb_spec *s = load(cases[i].yaml);
		vb_error err = { 0 };
		struct vb_run_options o = { .no_record = 1 };
		assert_null(vb_run_spec(s, &o, &err));
		assert_int_equal(err.kind, cases[i].kind);
		if (!strstr(err.msg, cases[i].msg))
			fail_msg("case %zu: %s", i, err.msg);
		vb_spec_free(s);
	}
}

/* vb_box_snapshot: the spec a user would write, and the run's refusals
 * before anything boots (a missing snapshot, what a restore cannot give). */
static void test_builder_snapshot(void **state)
{
	(void)state;
	char tmpl[] = "/tmp/vb-unit-snap-XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	const char *old = getenv("XDG_CACHE_HOME");
	char *saved = old ? strdup(old) : NULL;
	setenv("XDG_CACHE_HOME", tmpl, 1); /* an empty store */
	vb_error err = { 0 };
	vb_pipeline *p = vb_pipeline_new("snap");
	vb_box *a = vb_box_cmd("a", "true", NULL);
	vb_box_snapshot(a, "nosuch");
	assert_int_equal(vb_pipeline_pipe(p, a, &err), 0);
	char *json = vb_pipeline_spec_json(p, &err);
	assert_non_null(json);
	assert_non_null(strstr(json, "\"snapshot\": \"nosuch\""));
	free(json);
	struct vb_run_options o = { .no_record = 1 };
	assert_null(vb_pipeline_run(p, &o, &err));
	assert_int_equal(err.kind, VB_E_RUNTIME); /* 125, as an image that cannot be had */
	if (!strstr(err.msg, "box 'a': sandbox.snapshot: no snapshot 'nosuch'"))
		fail_msg("%s", err.msg);
	vb_pipeline_free(p);
	/* boot data a restore cannot give: refused at load, the run never starts */
	p = vb_pipeline_new("snap2");
	a = vb_box_cmd("a", "true", NULL);
	vb_box_snapshot(a, "tools");
	vb_box_rlimit(a, "nofile", 64);
	assert_int_equal(vb_pipeline_pipe(p, a, &err), 0);
	err = (vb_error){ 0 };
	assert_null(vb_pipeline_run(p, &o, &err));
	assert_int_equal(err.kind, VB_E_USAGE);
	if (!strstr(err.msg, "restored from a snapshot: sandbox.limits.nofile"))
		fail_msg("%s", err.msg);
	vb_pipeline_free(p);
	/* no reference: the box's sticky error */
	p = vb_pipeline_new("snap3");
	a = vb_box_cmd("a", "true", NULL);
	vb_box_snapshot(a, NULL);
	assert_int_equal(vb_pipeline_pipe(p, a, &err), -1);
	assert_non_null(strstr(err.msg, "vb_box_snapshot"));
	vb_pipeline_free(p);
	if (saved)
		setenv("XDG_CACHE_HOME", saved, 1);
	else
		unsetenv("XDG_CACHE_HOME");
	free(saved);
	vb_rm_rf(tmpl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vmconf),
		cmocka_unit_test(test_vmconf_refusals),
		cmocka_unit_test(test_vmconf_network),
		cmocka_unit_test(test_vmconf_accel),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_result_json_and_exit_codes),
		cmocka_unit_test(test_refused_before_booting),
		cmocka_unit_test(test_builder_snapshot),
		cmocka_unit_test(test_outputs_in_files),
		cmocka_unit_test(test_json_scan_agrees_with_jansson),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
