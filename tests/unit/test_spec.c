/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Spec loader tests: every file in tests/golden/specs is loaded and its
 * plan (valid specs) or error text (invalid ones) compared with NAME.expected;
 * plus targeted tests of the pieces (did-you-mean, CIDR, paths, cycles).
 * VB_GOLDEN_UPDATE=1 rewrites the .expected files (review before commit).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spec/spec.h"
#include "spec/spec_internal.h"

#ifndef VB_SRCDIR
#define VB_SRCDIR "."
#endif
#define GOLDEN_DIR VB_SRCDIR "/tests/golden/specs"

/* Messages must not depend on the host running the tests. */
#define PINNED_HOST_MEM_MB 16384

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	size_t n;
	while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len < 2) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (buf)
		buf[len] = '\0';
	return buf;
}

/* Replace every (from) in (s) with (to); returns a new string. */
static char *replace_all(const char *s, const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to), n = 0;
	for (const char *p = s; (p = strstr(p, from)); p += fl)
		n++;
	char *out = malloc(strlen(s) + n * (tl > fl ? tl - fl : 0) + 1), *o = out;
	if (!out)
		return NULL;
	for (const char *p = s, *q; ; p = q + fl) {
		q = strstr(p, from);
		if (!q) {
			strcpy(o, p);
			break;
		}
		memcpy(o, p, (size_t)(q - p));
		o += q - p;
		memcpy(o, to, tl);
		o += tl;
	}
	return out;
}

static char **split_lines(char *s, size_t *n)
{
	size_t cap = 16;
	char **v = malloc(cap * sizeof(*v));
	*n = 0;
	while (v && *s) {
		if (*n == cap) {
			cap *= 2;
			char **nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				free(v);
				return NULL;
			}
			v = nv;
		}
		v[(*n)++] = s;
		char *nl = strchr(s, '\n');
		if (!nl)
			break;
		*nl = '\0';
		s = nl + 1;
	}
	return v;
}

/* A line diff (LCS) of expected vs actual: "-" lines expected only, "+"
 * actual only; runs of more than 3 equal lines are elided. */
static void print_diff(const char *name, const char *exp, const char *act)
{
	char *a = strdup(exp), *b = strdup(act);
	size_t n, m;
	char **x = split_lines(a, &n), **y = split_lines(b, &m);
	unsigned *t = calloc((n + 1) * (m + 1), sizeof(*t));
	if (!a || !b || !x || !y || !t)
		goto out;
#define T(i, j) t[(i) * (m + 1) + (j)]
	for (size_t i = n; i-- > 0;)
		for (size_t j = m; j-- > 0;)
			T(i, j) = !strcmp(x[i], y[j]) ? T(i + 1, j + 1) + 1 :
			      T(i + 1, j) > T(i, j + 1) ? T(i + 1, j) : T(i, j + 1);
	fprintf(stderr, "--- %s.expected\n+++ %s (actual)\n", name, name);
	size_t i = 0, j = 0, same = 0;
	while (i < n || j < m) {
		if (i < n && j < m && !strcmp(x[i], y[j])) {
			if (same++ < 3)
				fprintf(stderr, " %s\n", x[i]);
			else if (same == 4)
				fprintf(stderr, " ...\n");
			i++;
			j++;
		} else if (i < n && (j == m || T(i + 1, j) >= T(i, j + 1))) {
			fprintf(stderr, "-%s\n", x[i++]);
			same = 0;
		} else {
			fprintf(stderr, "+%s\n", y[j++]);
			same = 0;
		}
	}
#undef T
out:
	free(t);
	free(x);
	free(y);
	free(a);
	free(b);
}

/* What a spec file produces: the plan, or the error text. */
static char *render(const char *file, bool *valid)
{
	vb_error err = { 0 };
	struct vb_spec *spec = vb_spec_load(file, &err);
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	if (!mem)
		return NULL;
	*valid = spec != NULL;
	if (spec) {
		assert_int_equal(vb_spec_print_plan(spec, mem), 0);
		/* The JSON plan exists and has the same name and kind. */
		json_t *j = vb_spec_plan_json(spec);
		assert_non_null(j);
		assert_string_equal(json_string_value(json_object_get(j, "kind")), vb_spec_kind_name(spec->kind));
		assert_string_equal(json_string_value(json_object_get(j, "name")), spec->name.s);
		char *dump = json_dumps(j, 0);
		assert_non_null(dump);
		free(dump);
		json_decref(j);
		vb_spec_free(spec);
	} else {
		assert_int_equal(err.kind, VB_E_USAGE);
		fprintf(mem, "%s\n", err.msg);
	}
	fclose(mem);
	return text;
}

static bool is_spec(const char *name)
{
	const char *dot = strrchr(name, '.');
	return dot && (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml") || !strcmp(dot, ".json"));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_golden(void **state)
{
	(void)state;
	char cwd[PATH_MAX], real[PATH_MAX];
	bool update = getenv("VB_GOLDEN_UPDATE") && !strcmp(getenv("VB_GOLDEN_UPDATE"), "1");
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	/* Names in messages are relative to the golden dir; absolute paths
	 * in plans are shown as $SPECDIR so any checkout compares equal. */
	assert_int_equal(chdir(GOLDEN_DIR), 0);
	assert_non_null(realpath(".", real));
	spec_host_mem_override_mb = PINNED_HOST_MEM_MB;

	DIR *d = opendir(".");
	assert_non_null(d);
	char *names[512];
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < 512)
		if (is_spec(e->d_name) || strstr(e->d_name, ".expected"))
			names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_str);

	size_t valid = 0, invalid = 0, failed = 0;
	for (size_t i = 0; i < n; i++) {
		char exp_path[PATH_MAX];
		if (!is_spec(names[i])) {
			/* An .expected file without its spec is stale. */
			char base[PATH_MAX];
			snprintf(base, sizeof(base), "%.*s", (int)(strlen(names[i]) - strlen(".expected")), names[i]);
			bool found = false;
			for (size_t j = 0; j < n && !found; j++)
				found = is_spec(names[j]) && !strcmp(names[j], base);
			if (!found) {
				fprintf(stderr, "golden: %s has no spec %s\n", names[i], base);
				failed++;
			}
			continue;
		}
		snprintf(exp_path, sizeof(exp_path), "%s.expected", names[i]);
		bool ok = false;
		char *raw = render(names[i], &ok);
		assert_non_null(raw);
		char *got = replace_all(raw, real, "$SPECDIR");
		free(raw);
		ok ? valid++ : invalid++;
		if (update) {
			FILE *f = fopen(exp_path, "w");
			assert_non_null(f);
			fputs(got, f);
			fclose(f);
		} else {
			char *want = read_all(exp_path);
			if (!want) {
				fprintf(stderr, "golden: %s: missing %s (VB_GOLDEN_UPDATE=1 writes it)\n", names[i], exp_path);
				failed++;
			} else if (strcmp(want, got) != 0) {
				print_diff(names[i], want, got);
				failed++;
			}
			free(want);
		}
		free(got);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	spec_host_mem_override_mb = 0;
	assert_int_equal(chdir(cwd), 0);
	fprintf(stderr, "golden: %zu valid and %zu invalid specs compared, %zu mismatches\n", valid, invalid, failed);
	assert_int_equal(failed, 0);
	assert_true(valid >= 12);
	assert_true(invalid >= 20);
}

/* ---- targeted tests ---- */

static struct vb_spec *load(const char *text, int is_yaml, vb_error *err)
{
	return vb_spec_load_string(text, strlen(text), "t.yaml", is_yaml, err);
}

static void expect_error(const char *text, int is_yaml, const char *needle)
{
	vb_error err = { 0 };
	struct vb_spec *spec = load(text, is_yaml, &err);
	if (spec || !strstr(err.msg, needle))
		fprintf(stderr, "want error containing [%s], got [%s]\n", needle, spec ? "(valid)" : err.msg);
	assert_null(spec);
	assert_non_null(strstr(err.msg, needle));
	assert_int_equal(err.kind, VB_E_USAGE);
}

static void test_suggest(void **state)
{
	(void)state;
	static const char *const fields[] = { "name", "prompt", "run", "skills", "timeout_secs", "sandbox", NULL };
	assert_string_equal(vb_spec_suggest("promt", fields), "prompt");
	assert_string_equal(vb_spec_suggest("pormpt", fields), "prompt"); /* swap = 1 edit */
	assert_string_equal(vb_spec_suggest("PROMPT", fields), "prompt"); /* any case */
	assert_string_equal(vb_spec_suggest("timeout_sec", fields), "timeout_secs");
	assert_string_equal(vb_spec_suggest("skils", fields), "skills");
	assert_string_equal(vb_spec_suggest("rnu", fields), "run");
	assert_null(vb_spec_suggest("frobnicate", fields));
	assert_null(vb_spec_suggest("x", fields));       /* too short to guess */
	assert_null(vb_spec_suggest("", fields));
	assert_int_equal(vb_spec_edit_distance("kitten", "sitting"), 3);
	assert_int_equal(vb_spec_edit_distance("ab", "ba"), 1);
	assert_int_equal(vb_spec_edit_distance("", "abc"), 3);
	assert_int_equal(vb_spec_edit_distance("same", "same"), 0);
	char longw[100];
	memset(longw, 'a', 99);
	longw[99] = '\0';
	assert_int_equal(vb_spec_edit_distance(longw, "a"), 255);

	expect_error("api_version: v1\nkind: agent\nname: a\nagent: {promt: hi}\n", 1,
		     "t.yaml:4:9: agent: unknown field 'promt' in agent (did you mean 'prompt'?)");
	expect_error("api_version: v1\nkind: pipeline\nname: a\npipeline:\n  boxes:\n  - name: collect\n    Prompt: x\n", 1,
		     "t.yaml:7:5: pipeline.boxes[0]: unknown field 'Prompt' in box 'collect' (did you mean 'prompt'?)");
}

static void test_cidr(void **state)
{
	(void)state;
	int fam;
	uint8_t a[16];
	unsigned pre;
	assert_int_equal(vb_spec_parse_cidr("10.0.0.0/8", &fam, a, &pre), 0);
	assert_int_equal(fam, AF_INET);
	assert_int_equal(pre, 8);
	assert_int_equal(a[0], 10);
	assert_int_equal(vb_spec_parse_cidr("169.254.169.254", &fam, a, &pre), 0);
	assert_int_equal(pre, 32);
	assert_int_equal(vb_spec_parse_cidr("0.0.0.0/0", &fam, a, &pre), 0);
	assert_int_equal(vb_spec_parse_cidr("10.1.2.3/12", &fam, a, &pre), 0);
	assert_int_equal(a[1], 0); /* host bits cleared */
	assert_int_equal(vb_spec_parse_cidr("fd00:ec2::254/128", &fam, a, &pre), 0);
	assert_int_equal(fam, AF_INET6);
	assert_int_equal(pre, 128);
	assert_int_equal(vb_spec_parse_cidr("::/0", &fam, a, &pre), 0);
	assert_int_equal(vb_spec_parse_cidr("fe80::1/10", &fam, a, &pre), 0);
	assert_int_equal(a[0], 0xfe);
	assert_int_equal(a[1], 0x80);
	assert_int_equal(a[15], 0);
	assert_int_equal(vb_spec_parse_cidr("::ffff:10.0.0.1", &fam, a, &pre), 0);
	assert_int_equal(fam, AF_INET6);

	static const char *const bad[] = { "", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/08", "10.0.0/8",
					   "300.1.1.1", "10.0.0.0/-1", "10.0.0.0/+8", "fe80::/129",
					   "fe80:::1", "host.example", "10.0.0.0/8/8", " 10.0.0.0/8",
					   "1.2.3.4/1000", NULL };
	for (size_t i = 0; bad[i]; i++) {
		if (vb_spec_parse_cidr(bad[i], &fam, a, &pre) == 0)
			fprintf(stderr, "accepted bad CIDR '%s'\n", bad[i]);
		assert_int_equal(vb_spec_parse_cidr(bad[i], &fam, a, &pre), -1);
	}
	expect_error("api_version: v1\nkind: sandbox\nname: s\nsandbox:\n  network_policy: {deny: [10.0.0.1/8]}\n", 1,
		     "'10.0.0.1/8' has host bits set (did you mean '10.0.0.0/8'?)");
}

static void touch(const char *path)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
}

static void test_paths(void **state)
{
	(void)state;
	char tmpl[] = "/tmp/vb-spec-test-XXXXXX", cwd[PATH_MAX], specdir[PATH_MAX + 8],
	     workdir[PATH_MAX + 8], path[PATH_MAX + 40];
	assert_non_null(mkdtemp(tmpl));
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	snprintf(specdir, sizeof(specdir), "%s/specs", tmpl);
	snprintf(workdir, sizeof(workdir), "%s/work", tmpl);
	assert_int_equal(mkdir(specdir, 0700), 0);
	assert_int_equal(mkdir(workdir, 0700), 0);
	snprintf(path, sizeof(path), "%s/both", specdir);
	touch(path);
	snprintf(path, sizeof(path), "%s/both", workdir);
	touch(path);
	snprintf(path, sizeof(path), "%s/cwd-only", workdir);
	touch(path);
	assert_int_equal(chdir(workdir), 0);

	bool exists;
	char *p = vb_spec_resolve_path("both", specdir, &exists);
	snprintf(path, sizeof(path), "%s/both", specdir);
	assert_string_equal(p, path); /* the spec's directory wins */
	assert_true(exists);
	free(p);
	p = vb_spec_resolve_path("./cwd-only", specdir, &exists);
	snprintf(path, sizeof(path), "%s/cwd-only", workdir);
	assert_string_equal(p, path); /* then the current directory */
	assert_true(exists);
	free(p);
	p = vb_spec_resolve_path("sub/../nowhere/", specdir, &exists);
	snprintf(path, sizeof(path), "%s/nowhere", specdir);
	assert_string_equal(p, path); /* neither: the spec's directory */
	assert_false(exists);
	free(p);
	p = vb_spec_resolve_path("/a/./b//c/../d/", specdir, &exists);
	assert_string_equal(p, "/a/b/d");
	free(p);
	p = vb_spec_resolve_path("/..", specdir, &exists);
	assert_string_equal(p, "/");
	free(p);

	/* Through a spec file: mounts and file: skills use the same rule. */
	char spec_path[PATH_MAX + 40];
	snprintf(spec_path, sizeof(spec_path), "%s/s.yaml", specdir);
	FILE *f = fopen(spec_path, "w");
	assert_non_null(f);
	fputs("api_version: v1\nkind: agent\nname: p\nsandbox:\n  mounts: [{host: both, guest: /b}, "
	      "{host: cwd-only, guest: /c, mode: rw}]\nagent: {prompt: x, skills: ['file:../specs/both']}\n", f);
	fclose(f);
	vb_error err = { 0 };
	struct vb_spec *spec = vb_spec_load(spec_path, &err);
	assert_non_null(spec);
	snprintf(path, sizeof(path), "%s/both", specdir);
	assert_string_equal(spec->sandbox.mounts[0].host.abs, path);
	assert_string_equal(spec->agent.skills.v[0].path.abs, path);
	snprintf(path, sizeof(path), "%s/cwd-only", workdir);
	assert_string_equal(spec->sandbox.mounts[1].host.abs, path);
	assert_int_equal(spec->sandbox.mounts[1].mode, VB_SPEC_MOUNT_RW);
	assert_string_equal(spec->dir, specdir);
	vb_spec_free(spec);

	assert_int_equal(chdir(cwd), 0);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
	assert_int_equal(system(cmd), 0);
}

static const char wf_head[] = "api_version: v1\nkind: workflow\nname: w\nworkflow:\n  steps:\n";

static void expect_wf_error(const char *steps, const char *needle)
{
	char text[2048];
	snprintf(text, sizeof(text), "%s%s", wf_head, steps);
	expect_error(text, 1, needle);
}

static void test_cycles(void **state)
{
	(void)state;
	expect_wf_error("  - {name: a, run: {program: x}, depends_on: [b]}\n"
			"  - {name: b, run: {program: x}, depends_on: [a]}\n",
			"t.yaml:6:46: workflow.steps[0].depends_on: dependency cycle: a -> b -> a");
	expect_wf_error("  - {name: a, run: {program: x}, depends_on: [a]}\n", "step 'a' depends on itself");
	/* A cycle behind a healthy step; stdin_from counts as a dependency. */
	expect_wf_error("  - {name: ok, run: {program: x}}\n"
			"  - {name: a, run: {program: x}, depends_on: [ok, c]}\n"
			"  - {name: b, run: {program: x, stdin_from: a}}\n"
			"  - {name: c, run: {program: x}, depends_on: [b]}\n",
			"dependency cycle: a -> c -> b -> a");
	expect_wf_error("  - {name: a, run: {program: x}, depends_on: [b]}\n"
			"  - {name: b, run: {program: x}, depends_on: [nope]}\n",
			"depends on unknown step 'nope'");

	/* A diamond is fine: levels 1, 2, 2, 3. */
	char text[1024];
	snprintf(text, sizeof(text), "%s%s", wf_head,
		 "  - {name: d, run: {program: x}, depends_on: [b, c]}\n"
		 "  - {name: b, run: {program: x}, depends_on: [a]}\n"
		 "  - {name: c, run: {program: x, stdin_from: a}}\n"
		 "  - {name: a, run: {program: x}}\n");
	vb_error err = { 0 };
	struct vb_spec *spec = load(text, 1, &err);
	if (!spec)
		fprintf(stderr, "%s\n", err.msg);
	assert_non_null(spec);
	assert_int_equal(spec->workflow.steps[0].level, 3);
	assert_int_equal(spec->workflow.steps[1].level, 2);
	assert_int_equal(spec->workflow.steps[2].level, 2);
	assert_int_equal(spec->workflow.steps[3].level, 1);
	assert_int_equal(spec->workflow.steps[2].run.stdin_index, 3);
	vb_spec_free(spec);

	/* A long chain: no recursion, no trouble. */
	size_t cap = 200000, len = 0;
	char *big = malloc(cap);
	assert_non_null(big);
	len += (size_t)snprintf(big, cap, "%s", wf_head);
	len += (size_t)snprintf(big + len, cap - len, "  - {name: s0, run: {program: x}}\n");
	for (int i = 1; i < 2000; i++)
		len += (size_t)snprintf(big + len, cap - len,
					"  - {name: s%d, run: {program: x}, depends_on: [s%d]}\n", i, i - 1);
	spec = vb_spec_load_string(big, len, "big.yaml", 1, &err);
	free(big);
	if (!spec)
		fprintf(stderr, "%s\n", err.msg);
	assert_non_null(spec);
	assert_int_equal(spec->workflow.steps[1999].level, 2000);
	vb_spec_free(spec);
}

static void test_errors_format(void **state)
{
	(void)state;
	vb_error err = { 0 };
	/* All problems, sorted by position, one per line. */
	struct vb_spec *spec = load("name: 7x!\nkind: agent\nagent: {prompt: hi, timeout_secs: 0}\nfoo: 1\n", 1, &err);
	assert_null(spec);
	assert_string_equal(err.msg,
			    "t.yaml:1:7: name: name '7x!' must start with a letter or digit and hold only letters, digits, '.', '_' and '-'\n"
			    "t.yaml:3:35: agent.timeout_secs: must be at least 1 (got 0)\n"
			    "t.yaml:4:1: unknown field 'foo' at the top level");
	/* More problems than fit: the rest are counted. */
	char text[8192];
	size_t len = (size_t)snprintf(text, sizeof(text), "api_version: v1\nkind: sandbox\nname: s\n");
	for (int i = 0; i < 80; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "unknown_field_number_%d: 1\n", i);
	spec = vb_spec_load_string(text, len, "many.yaml", 1, &err);
	assert_null(spec);
	assert_non_null(strstr(err.msg, "many.yaml:4:1: unknown field 'unknown_field_number_0' at the top level\n"));
	assert_non_null(strstr(err.msg, "more problems not shown)"));
	assert_true(strlen(err.msg) < sizeof(err.msg));
	/* JSON positions are exact too. */
	expect_error("{\"api_version\": \"v1\", \"kind\": \"agent\", \"name\": \"j\",\n \"agent\": {\"prompt\": \"x\", \"timeout_secs\": -5}}", 0,
		     "t.yaml:2:43: agent.timeout_secs: must be at least 1 (got -5)");
	expect_error("{\"kind\": \"agent\",\n\n   \"name\": \"j\" \"agent\": {}}", 0, "t.yaml:3:16: JSON syntax error:");
	expect_error("[1, 2]", 0, "t.yaml:1:1: expected a map at the top level");
	expect_error("", 1, "t.yaml:1:1: the spec is empty");
	expect_error("a: 1\n---\nb: 2\n", 1, "a spec file holds one YAML document");
	expect_error("a: *nope\n", 1, "unknown YAML anchor 'nope'");
	expect_error("a: [\"\\0\"]\nkind: agent\nname: \"a\\0b\"\n", 1, "a string may not contain a NUL character");
	expect_error("\xff\xfe\xfd: 1\n", 1, "YAML syntax error");
	/* A billion laughs stops at the value budget. */
	expect_error("a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
		     "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n", 1,
		     "spec too large");
	/* Deep nesting is refused, in both languages. */
	char deep[400];
	memset(deep, '[', 200);
	deep[200] = '\0';
	expect_error(deep, 0, "JSON syntax error");
	snprintf(deep, sizeof(deep), "a: %.*s1%.*s\n", 70, "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
		 70, "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
	expect_error(deep, 1, "nesting deeper than 64 levels");
	snprintf(deep, sizeof(deep), "{\"a\": %.*s1%.*s}", 70, "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
		 70, "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
	expect_error(deep, 0, "nesting deeper than 64 levels");

	/* Files: missing, a directory. */
	spec = vb_spec_load("/nonexistent/spec.yaml", &err);
	assert_null(spec);
	assert_int_equal(err.kind, VB_E_USAGE);
	assert_non_null(strstr(err.msg, "/nonexistent/spec.yaml: No such file"));
	spec = vb_spec_load("/tmp", &err);
	assert_null(spec);
	assert_non_null(strstr(err.msg, "is a directory"));
	vb_spec_free(NULL);
}

static void test_model(void **state)
{
	(void)state;
	vb_error err = { 0 };
	const char *text =
		"api_version: v1\nkind: pipeline\nname: m\n"
		"sandbox: {mode: mock, memory_mb: 512, env: {A: top, B: \"\", ANTHROPIC_API_KEY: \"\"},\n"
		"          mounts: [{host: /srv, guest: /srv}, {host: /opt, guest: /opt}]}\n"
		"pipeline:\n  boxes:\n"
		"  - name: one\n    run: {program: echo, args: [hi]}\n"
		"    sandbox: {vcpus: 2, env: {A: box}, mounts: [{host: /var, guest: /srv, mode: rw}]}\n"
		"    outputs: [{name: o}]\n"
		"  - name: two\n    prompt: go\n    inputs: [{from: o}]\n";
	struct vb_spec *spec = load(text, 1, &err);
	if (!spec)
		fprintf(stderr, "%s\n", err.msg);
	assert_non_null(spec);
	assert_true(spec->sandbox.mock_requested);
	assert_int_equal(spec->sandbox.mode, VB_SPEC_MODE_AUTO);
	const struct vb_spec_box *one = &spec->pipeline.boxes[0], *two = &spec->pipeline.boxes[1];
	assert_int_equal(one->vm.memory_mb, 512);
	assert_int_equal(one->vm.vcpus, 2);
	assert_int_equal(two->vm.vcpus, 1);
	assert_true(one->vm.mock_requested);
	/* env: top keys not overridden first, then the box's. */
	assert_int_equal(one->vm.n_env, 3);
	assert_string_equal(one->vm.env[0]->key.s, "B");
	assert_true(one->vm.env[0]->from_host);
	assert_true(one->vm.env[1]->provider_credential);
	assert_string_equal(one->vm.env[2]->value.s, "box");
	/* mounts: a box mount at the same guest path replaces the top one. */
	assert_int_equal(one->vm.n_mounts, 2);
	assert_string_equal(one->vm.mounts[0]->guest.s, "/opt");
	assert_string_equal(one->vm.mounts[1]->host.abs, "/var");
	assert_int_equal(two->vm.n_mounts, 2);
	assert_string_equal(one->outputs[0].guest.s, "/workspace/output");
	assert_string_equal(two->inputs[0].guest.s, "/workspace/input");
	assert_int_equal(two->inputs[0].box_index, 0);
	assert_string_equal(two->output_file.s, "/workspace/output.json");
	assert_true(spec->pipeline.stages_implicit);
	assert_int_equal(spec->pipeline.n_stages, 2);
	/* Positions are kept for later messages. */
	assert_int_equal(two->prompt.pos.line, 13);
	assert_int_equal(two->prompt.pos.col, 13);
	vb_spec_errorf(spec, two->prompt.pos, &err, "box %s failed", two->name.s);
	assert_string_equal(err.msg, "t.yaml:13:13: box two failed");
	vb_spec_free(spec);

	/* Env names that YAML would read as null or a boolean stay names
	 * (found by the fuzzer: a key "null" once crashed the loader). */
	spec = load("api_version: v1\nkind: sandbox\nname: s\nsandbox: {env: {null: x, true: ~}}\n", 1, &err);
	assert_non_null(spec);
	assert_string_equal(spec->vm.env[0]->key.s, "null");
	assert_string_equal(spec->vm.env[1]->key.s, "true");
	assert_true(spec->vm.env[1]->from_host);
	vb_spec_free(spec);
}

/* ${VAR} parameters, table-driven: the value a field ends up with, or the
 * error (with its position) a user sees. */
static void test_expansion(void **state)
{
	(void)state;
	static const struct {
		const char *value;   /* what the spec says for the box's program */
		const char *want;    /* the program after expansion; NULL: an error */
		const char *err;     /* a piece of the error */
	} cases[] = {
		{ "${VB_T_SET}", "set-value", NULL },
		{ "a-${VB_T_SET}-b", "a-set-value-b", NULL },
		{ "${VB_T_UNSET:-fallback}", "fallback", NULL },
		{ "${VB_T_EMPTY:-fallback}", "fallback", NULL },   /* :- also covers empty */
		{ "${VB_T_SET:-fallback}", "set-value", NULL },
		{ "${VB_T_UNSET:-}x", "x", NULL },
		{ "$$HOME", "$HOME", NULL },                      /* $$: a literal $ */
		{ "$$${VB_T_SET}", "$set-value", NULL },
		{ "$HOME $1 a$", "$HOME $1 a$", NULL },           /* shell text passes */
		{ "${VB_T_UNSET}", NULL, "t.yaml:6:32: pipeline.boxes[0].run.program: ${VB_T_UNSET} is not set" },
		{ "${VB_T_SET", NULL, "'${VB_T_SET': expected ${VB_T_SET} or ${VB_T_SET:-default}" },
		{ "${VB_T_SET-x}", NULL, "'${VB_T_SET...': expected" },
		{ "${1}", NULL, "'${1}' is not a variable reference" },
		{ "${}", NULL, "is not a variable reference" },
		{ "${A:-${B}}", NULL, "a default cannot hold another ${...}" },
	};
	setenv("VB_T_SET", "set-value", 1);
	setenv("VB_T_EMPTY", "", 1);
	unsetenv("VB_T_UNSET");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[512];
		snprintf(text, sizeof(text),
			 "api_version: v1\nkind: pipeline\nname: t\npipeline:\n  boxes:\n"
			 "    - {name: a, run: {program: \"%s\"}}\n",
			 cases[i].value);
		vb_error err = { 0 };
		struct vb_spec *spec = load(text, 1, &err);
		if (cases[i].want) {
			if (!spec)
				fprintf(stderr, "case %zu: %s\n", i, err.msg);
			assert_non_null(spec);
			assert_string_equal(spec->pipeline.boxes[0].run.program.s, cases[i].want);
			vb_spec_free(spec);
		} else {
			if (spec || !strstr(err.msg, cases[i].err))
				fprintf(stderr, "case %zu: want [%s], got [%s]\n", i, cases[i].err,
					spec ? "(valid)" : err.msg);
			assert_null(spec);
			assert_non_null(strstr(err.msg, cases[i].err));
			assert_int_equal(err.kind, VB_E_USAGE);
		}
	}

	/* a plain value takes its type after expansion (block style: inside
	 * YAML's {...} braces must be quoted) */
	setenv("VB_T_MEM", "320", 1);
	vb_error err = { 0 };
	struct vb_spec *spec = load("api_version: v1\nkind: sandbox\nname: s\n"
				    "sandbox:\n  memory_mb: ${VB_T_MEM}\n  vcpus: ${VB_T_UNSET:-2}\n",
				    1, &err);
	if (!spec)
		fprintf(stderr, "%s\n", err.msg);
	assert_non_null(spec);
	assert_int_equal(spec->vm.memory_mb, 320);
	assert_int_equal(spec->vm.vcpus, 2);
	vb_spec_free(spec);
	/* the same in JSON; keys are never expanded */
	expect_error("{\"api_version\": \"v1\", \"kind\": \"sandbox\", \"name\": \"${VB_T_UNSET}\"}", 0,
		     "t.yaml:1:50: name: ${VB_T_UNSET} is not set (set VB_T_UNSET, or write "
		     "${VB_T_UNSET:-default}; $$ is a literal $)");
	/* ... and only that: the unexpanded text is not checked as a name */
	assert_null(load("{\"api_version\": \"v1\", \"kind\": \"sandbox\", \"name\": \"${VB_T_UNSET}\"}", 0, &err));
	assert_null(strchr(err.msg, '\n'));
	expect_error("api_version: v1\nkind: sandbox\nname: s\n${VB_T_SET}: 1\n", 1,
		     "unknown field '${VB_T_SET}'");
	/* every unset variable is reported, in file order */
	expect_error("api_version: v1\nkind: ${VB_T_UNSET}\nname: ${VB_T_UNSET2}\n", 1,
		     "t.yaml:2:7: kind: ${VB_T_UNSET} is not set (set VB_T_UNSET, or write "
		     "${VB_T_UNSET:-default}; $$ is a literal $)\nt.yaml:3:7: name: ${VB_T_UNSET2} is not set");
	/* the C builder's text is taken literally */
	const char *lit = "{\"api_version\": \"v1\", \"kind\": \"sandbox\", \"name\": \"s\","
			  " \"sandbox\": {\"env\": {\"X\": \"${VB_T_UNSET} $$\"}}}";
	spec = vb_spec_load_string(lit, strlen(lit), "t.json", VB_SPEC_JSON | VB_SPEC_LITERAL, &err);
	assert_non_null(spec);
	assert_string_equal(spec->vm.env[0]->value.s, "${VB_T_UNSET} $$");
	vb_spec_free(spec);

	/* ~ in host paths is the home directory */
	char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	setenv("HOME", "/tmp/vb-home", 1);
	spec = load("api_version: v1\nkind: sandbox\nname: s\nsandbox:\n"
		    "  kernel: ~/k\n  mounts: [{host: \"~\", guest: /h}]\n", 1, &err);
	assert_non_null(spec);
	assert_string_equal(spec->vm.kernel, "/tmp/vb-home/k");
	assert_string_equal(spec->vm.mounts[0]->host.abs, "/tmp/vb-home");
	assert_string_equal(spec->vm.mounts[0]->host.text.s, "~");
	vb_spec_free(spec);
	if (home)
		setenv("HOME", home, 1);
	else
		unsetenv("HOME");
	free(home);
}

/* Which parser a text gets: YAML or JSON by the name, a guess otherwise. */
static void test_formats(void **state)
{
	(void)state;
	static const char json[] = "{\"api_version\": \"v1\", \"kind\": \"sandbox\", \"name\": \"s\"}";
	static const char yaml[] = "# a spec\napi_version: v1\nkind: sandbox\nname: s\n";
	vb_error err = { 0 };
	struct vb_spec *spec = vb_spec_load_string(json, strlen(json), "x", VB_SPEC_GUESS, &err);
	assert_non_null(spec);
	vb_spec_free(spec);
	spec = vb_spec_load_string(yaml, strlen(yaml), "x", VB_SPEC_GUESS, &err);
	assert_non_null(spec);
	vb_spec_free(spec);
	/* a JSON file gets JSON's errors, not YAML's */
	static const char bad[] = "  {\"api_version\": \"v1\",}";
	spec = vb_spec_load_string(bad, strlen(bad), "x", VB_SPEC_GUESS, &err);
	assert_null(spec);
	spec = vb_spec_load_string(yaml, strlen(yaml), "x", VB_SPEC_JSON, &err);
	assert_null(spec);

	/* files: .yaml/.yml YAML, .json JSON, anything else guessed */
	char dir[] = "/tmp/vbspecXXXXXX";
	assert_non_null(mkdtemp(dir));
	static const char *const names[] = { "spec.conf", "spec", "Spec.YML" };
	for (size_t i = 0; i < 3; i++) {
		char path[256];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fputs(yaml, f);
		fclose(f);
		spec = vb_spec_load(path, &err);
		if (!spec)
			fprintf(stderr, "%s: %s\n", path, err.msg);
		assert_non_null(spec);
		vb_spec_free(spec);
		unlink(path);
	}
	char path[256];
	snprintf(path, sizeof(path), "%s/spec.json", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(yaml, f);
	fclose(f);
	assert_null(vb_spec_load(path, &err));
	unlink(path);
	rmdir(dir);
}

/* void-box writes providers and modes in any case. */
static void test_case_insensitive_values(void **state)
{
	(void)state;
	vb_error err = { 0 };
	struct vb_spec *spec = load("api_version: v1\nkind: sandbox\nname: s\nsandbox: {mode: Mock}\n"
				    "llm: {provider: Claude}\n", 1, &err);
	if (!spec)
		fprintf(stderr, "%s\n", err.msg);
	assert_non_null(spec);
	assert_true(spec->vm.mock_requested);
	assert_int_equal(spec->llm_eff.provider, VB_SPEC_PROVIDER_CLAUDE);
	vb_spec_free(spec);
	spec = load("api_version: v1\nkind: sandbox\nname: s\nllm: {provider: LM-Studio}\n", 1, &err);
	assert_non_null(spec);
	assert_int_equal(spec->llm_eff.provider, VB_SPEC_PROVIDER_LMSTUDIO);
	vb_spec_free(spec);
	expect_error("api_version: v1\nkind: sandbox\nname: s\nllm: {provider: Claud}\n", 1,
		     "did you mean 'claude'?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_suggest),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_cycles),
		cmocka_unit_test(test_errors_format),
		cmocka_unit_test(test_model),
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_expansion),
		cmocka_unit_test(test_formats),
		cmocka_unit_test(test_case_insensitive_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
