/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OCI without a registry: references as users type them, manifests,
 * indexes and configs as registries send them, and the store's index.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oci/oci.h"
#include "util/util.h"

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void expect_ref(const char *in, const char *norm, const char *registry, const char *repo)
{
	struct vb_oci_ref r;
	vb_error err = { 0 };
	if (vb_oci_ref_parse(in, &r, &err) < 0)
		fail_msg("%s: %s", in, err.msg);
	char *s = vb_oci_ref_string(&r);
	assert_string_equal(s, norm);
	assert_string_equal(r.registry, registry);
	assert_string_equal(r.repo, repo);
	free(s);
	vb_oci_ref_clear(&r);
}

static void expect_bad_ref(const char *in, const char *says)
{
	struct vb_oci_ref r;
	vb_error err = { 0 };
	assert_int_equal(vb_oci_ref_parse(in, &r, &err), -1);
	assert_int_equal(err.kind, VB_E_USAGE);
	if (!strstr(err.msg, says))
		fail_msg("%s: '%s' lacks '%s'", in, err.msg, says);
}

static void test_ref(void **state)
{
	(void)state;
	expect_ref("python:3.12", "docker.io/library/python:3.12", "docker.io", "library/python");
	expect_ref("python", "docker.io/library/python:latest", "docker.io", "library/python");
	expect_ref("user/tool", "docker.io/user/tool:latest", "docker.io", "user/tool");
	expect_ref("index.docker.io/library/busybox:1", "docker.io/library/busybox:1", "docker.io",
		   "library/busybox");
	expect_ref("ghcr.io/org/sub/img:v1.2_x", "ghcr.io/org/sub/img:v1.2_x", "ghcr.io", "org/sub/img");
	expect_ref("localhost/img", "localhost/img:latest", "localhost", "img");
	expect_ref("127.0.0.1:5000/a/b@sha256:" H64, "127.0.0.1:5000/a/b@sha256:" H64,
		   "127.0.0.1:5000", "a/b");
	expect_ref("reg.example:443/a_b__c-d.e:t@sha256:" H64,
		   "reg.example:443/a_b__c-d.e:t@sha256:" H64, "reg.example:443", "a_b__c-d.e");
	expect_ref("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000", "x");

	struct vb_oci_ref r;
	vb_error err = { 0 };
	assert_int_equal(vb_oci_ref_parse("python@sha256:" H64, &r, &err), 0);
	assert_null(r.tag);
	assert_string_equal(r.digest, "sha256:" H64);
	assert_string_equal(vb_oci_ref_api_host(&r), "registry-1.docker.io");
	vb_oci_ref_clear(&r);

	expect_bad_ref("", "empty");
	expect_bad_ref("Python:3", "repository name");
	expect_bad_ref("a//b", "repository name");
	expect_bad_ref("a/b/", "repository name");
	expect_bad_ref("img:", "tag");
	expect_bad_ref("img:-x", "tag");
	expect_bad_ref("img@sha256:abc", "digest");
	expect_bad_ref("img@md5:" H64, "digest");
	expect_bad_ref("reg.io:99999/x", "registry host");
	expect_bad_ref("reg.io:/x", "registry host");
	expect_bad_ref("img:a b", "tag");
	expect_bad_ref("img\x1b[31m", "repository name");
}

static void test_loopback(void **state)
{
	(void)state;
	assert_true(vb_oci_host_loopback("127.0.0.1:5000"));
	assert_true(vb_oci_host_loopback("localhost"));
	assert_true(vb_oci_host_loopback("[::1]:80"));
	assert_true(vb_oci_host_loopback("127.1.2.3"));
	assert_false(vb_oci_host_loopback("127.0.0.1.evil.com"));
	assert_false(vb_oci_host_loopback("localhost.evil.com"));
	assert_false(vb_oci_host_loopback("ghcr.io"));
	assert_false(vb_oci_host_loopback("[::1]x"));
	assert_true(vb_oci_digest_valid("sha256:" H64));
	assert_false(vb_oci_digest_valid("sha256:" H64 "0"));
	assert_false(vb_oci_digest_valid("sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"));
}

static int parse(const char *json, const char *ct, struct vb_oci_manifest *m, vb_error *err)
{
	return vb_oci_manifest_parse(json, strlen(json), ct, m, err);
}

static void test_manifest(void **state)
{
	(void)state;
	struct vb_oci_manifest m;
	vb_error err = { 0 };
	const char *oci = "{\"schemaVersion\":2,\"mediaType\":\"" VB_OCI_MT_MANIFEST "\","
			  "\"config\":{\"mediaType\":\"" VB_OCI_MT_CONFIG "\",\"digest\":\"sha256:" H64 "\",\"size\":7},"
			  "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\","
			  "\"digest\":\"sha256:" H64 "\",\"size\":12345}]}";
	assert_int_equal(parse(oci, NULL, &m, &err), 0);
	assert_false(m.is_index);
	assert_int_equal(m.n_layers, 1);
	assert_int_equal(m.layers[0].size, 12345);
	assert_int_equal(m.config.size, 7);
	assert_string_equal(m.layers[0].media_type, "application/vnd.oci.image.layer.v1.tar+zstd");
	vb_oci_manifest_clear(&m);

	const char *idx = "{\"schemaVersion\":2,\"manifests\":["
			  "{\"mediaType\":\"" VB_OCI_MT_MANIFEST "\",\"digest\":\"sha256:" H64 "\",\"size\":1,"
			  "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}},"
			  "{\"mediaType\":\"" VB_OCI_MT_MANIFEST "\",\"digest\":\"sha256:" H64 "\",\"size\":1,"
			  "\"platform\":{\"os\":\"unknown\",\"architecture\":\"unknown\"},"
			  "\"annotations\":{\"vnd.docker.reference.type\":\"attestation-manifest\"}},"
			  "{\"mediaType\":\"" VB_OCI_MT_MANIFEST "\",\"digest\":\"sha256:" H64 "\",\"size\":1,"
			  "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}";
	assert_int_equal(parse(idx, VB_OCI_MT_INDEX, &m, &err), 0);
	assert_true(m.is_index);
	assert_int_equal(m.n_layers, 3);
	assert_true(m.layers[1].attestation);
	assert_int_equal(vb_oci_index_select(&m, "linux", "amd64", &err), 2);
	assert_int_equal(vb_oci_index_select(&m, "linux", "s390x", &err), -1);
	assert_non_null(strstr(err.msg, "linux/arm64"));
	assert_null(strstr(err.msg, "unknown"));
	vb_oci_manifest_clear(&m);

	/* refused */
	static const char *const bad[] = {
		"[]", "{\"schemaVersion\":1}", "not json",
		"{\"schemaVersion\":2,\"mediaType\":\"" VB_OCI_MT_MANIFEST "\",\"layers\":[]}",
		"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:abc\",\"size\":1},\"layers\":[]}",
		"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:" H64 "\",\"size\":-1},\"layers\":[]}",
		"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:" H64 "\"},\"layers\":[]}",
		"{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:" H64 "\",\"size\":1},\"layers\":[]}",
		"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:" H64 "\",\"size\":1},\"layers\":{}}",
		"{\"schemaVersion\":2,\"mediaType\":\"text/plain\",\"layers\":[]}",
		"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:" H64 "\",\"size\":99999999999999999},\"layers\":[]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.msg[0] = '\0';
		if (parse(bad[i], NULL, &m, &err) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_non_null(strstr(err.msg, "manifest"));
	}
	/* too many layers */
	size_t cap = 300 * 200 + 200;
	char *big = malloc(cap);
	size_t k = (size_t)snprintf(big, cap, "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:" H64 "\",\"size\":1},\"layers\":[");
	for (int i = 0; i < 300; i++)
		k += (size_t)snprintf(big + k, cap - k, "%s{\"mediaType\":\"x\",\"digest\":\"sha256:" H64 "\",\"size\":1}", i ? "," : "");
	snprintf(big + k, cap - k, "]}");
	assert_int_equal(parse(big, NULL, &m, &err), -1);
	assert_non_null(strstr(err.msg, "300 layers"));
	free(big);
}

static void test_config(void **state)
{
	(void)state;
	const char *c = "{\"config\":{\"Env\":[\"PATH=/bin\",\"X=1\"],\"Cmd\":[\"sh\",\"-c\",\"x\"],"
			"\"WorkingDir\":\"/w\",\"User\":\"1000\"}}";
	struct vb_oci_image *img = calloc(1, sizeof(*img));
	vb_error err = { 0 };
	assert_int_equal(vb_oci_config_parse(c, strlen(c), img, &err), 0);
	assert_int_equal(img->n_env, 2);
	assert_string_equal(img->env[1], "X=1");
	assert_int_equal(img->n_cmd, 3);
	assert_int_equal(img->n_entrypoint, 0);
	assert_string_equal(img->working_dir, "/w");
	assert_string_equal(img->user, "1000");
	vb_oci_image_free(img);
	img = calloc(1, sizeof(*img));
	const char *bad = "{\"config\":{\"Env\":[\"NOEQUALS\"]}}";
	assert_int_equal(vb_oci_config_parse(bad, strlen(bad), img, &err), -1);
	vb_oci_image_free(img);
}

/* ---- the store ---------------------------------------------------------- */

static char *store_dir(void)
{
	char *d = strdup("/tmp/vb-unit-oci-XXXXXX");
	assert_non_null(mkdtemp(d));
	char *p = vb_strfmt("%s/blobs/sha256", d);
	vb_error err = { 0 };
	assert_int_equal(vb_mkdir_p(p, 0755, &err), 0);
	free(p);
	p = vb_strfmt("%s/rootfs", d);
	assert_int_equal(vb_mkdir_p(p, 0755, &err), 0);
	free(p);
	return d;
}

static void put_file(const char *dir, const char *name, const char *text)
{
	char *p = vb_strfmt("%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	free(p);
}

static int exists(const char *dir, const char *name)
{
	char *p = vb_strfmt("%s/%s", dir, name);
	int r = access(p, F_OK) == 0;
	free(p);
	return r;
}

#define D(c) "sha256:" c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c \
	c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c
#define HEX(c) (D(c) + 7)

/* manifest (m) naming config (c) and layers (l1), (l2) */
static void put_manifest(const char *oci, const char *m, const char *c, const char *l1,
			 const char *l2)
{
	char *blobs = vb_strfmt("%s/blobs/sha256", oci);
	char *text = vb_strfmt("{\"schemaVersion\":2,\"mediaType\":\"" VB_OCI_MT_MANIFEST "\","
			       "\"config\":{\"mediaType\":\"x\",\"digest\":\"%s\",\"size\":2},"
			       "\"layers\":[{\"mediaType\":\"x\",\"digest\":\"%s\",\"size\":2},"
			       "{\"mediaType\":\"x\",\"digest\":\"%s\",\"size\":2}]}", c, l1, l2);
	put_file(blobs, m + 7, text);
	put_file(blobs, c + 7, "{}");
	put_file(blobs, l1 + 7, "l1");
	put_file(blobs, l2 + 7, "l2");
	free(text);
	free(blobs);
}

static void test_store(void **state)
{
	(void)state;
	char *oci = store_dir();
	char *blobs = vb_strfmt("%s/blobs/sha256", oci);
	char *rootfs = vb_strfmt("%s/rootfs", oci);
	vb_error err = { 0 };
	/* a: manifest 1, config 2, layers 3 4; b: manifest 5, config 6, layers 3 7 */
	put_manifest(oci, D("1"), D("2"), D("3"), D("4"));
	put_manifest(oci, D("5"), D("6"), D("3"), D("7"));
	put_file(rootfs, "1111111111111111111111111111111111111111111111111111111111111111.ext4", "disk");
	put_file(blobs, "8888888888888888888888888888888888888888888888888888888888888888", "orphan");
	char ra[] = "r/a:1", rb[] = "r/b:1";
	struct vb_oci_entry a = { .reference = ra, .digest = D("1"), .manifest = D("1"),
				  .size = 10, .last_used = 100 };
	struct vb_oci_entry b = { .reference = rb, .digest = D("5"), .manifest = D("5"),
				  .size = 10, .last_used = 200 };
	assert_int_equal(vb_oci_store_put(oci, &a, &err), 0);
	assert_int_equal(vb_oci_store_put(oci, &b, &err), 0);
	a.size = 11; /* replaces, does not add */
	assert_int_equal(vb_oci_store_put(oci, &a, &err), 0);
	struct vb_oci_entry *e;
	size_t n;
	assert_int_equal(vb_oci_store_list(oci, &e, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(e[0].reference, "r/a:1");
	assert_int_equal(e[0].size, 11);
	vb_oci_entries_free(e, n);
	struct vb_oci_entry got;
	assert_int_equal(vb_oci_store_get(oci, "r/none:1", 0, &got, &err), 1);
	assert_int_equal(vb_oci_store_get(oci, "r/a:1", 0, &got, &err), 0);
	assert_string_equal(got.manifest, D("1"));
	assert_int_equal(got.last_used, 100);
	free(got.reference);

	/* GC without a bound: only the orphan goes */
	uint64_t freed = 0;
	assert_int_equal(vb_oci_store_gc(oci, 0, NULL, 1, &freed, &err), 0);
	assert_int_equal(freed, 6);
	assert_false(exists(blobs, HEX("8")));
	assert_true(exists(blobs, HEX("4")));

	/* rmi a: its own blobs and root disk go, the shared layer stays */
	assert_int_equal(vb_oci_store_remove(oci, "r/a:1", &freed, &err), 0);
	assert_int_equal(vb_oci_store_remove(oci, "r/a:1", &freed, &err), 1);
	assert_false(exists(blobs, HEX("1")));
	assert_false(exists(blobs, HEX("2")));
	assert_false(exists(blobs, HEX("4")));
	assert_false(exists(rootfs, "1111111111111111111111111111111111111111111111111111111111111111.ext4"));
	assert_true(exists(blobs, HEX("3")));
	assert_true(exists(blobs, HEX("5")));

	/* a bound: the least recently used goes first, never (keep) */
	put_manifest(oci, D("1"), D("2"), D("3"), D("4"));
	a.last_used = 300; /* a is now the newer one */
	assert_int_equal(vb_oci_store_put(oci, &a, &err), 0);
	assert_int_equal(vb_oci_store_gc(oci, 1, "r/b:1", 1, &freed, &err), 0);
	assert_int_equal(vb_oci_store_list(oci, &e, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(e[0].reference, "r/b:1");
	vb_oci_entries_free(e, n);
	assert_false(exists(blobs, HEX("1")));
	assert_true(exists(blobs, HEX("7")));

	vb_rm_rf(oci);
	free(blobs);
	free(rootfs);
	free(oci);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ref),
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_manifest),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_store),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
