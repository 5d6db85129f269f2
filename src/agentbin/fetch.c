/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The npm registry side: where it is, one version's metadata, and a
 * tarball downloaded with its sha512 computed on the way (libcurl, TLS
 * verified; OpenSSL's EVP for the hash).
 */
#include "agentbin/fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/curl.h"
#include "util/util.h"
#include "voidbox/voidbox.h"

#define MAX_METADATA (4u << 20)
#define MAX_TARBALL (2ull << 30)

/* ---- the registry URL ---------------------------------------------------- */

/* `registry=URL` from an npmrc file, or NULL. */
static char *npmrc_registry(const char *path)
{
	vb_error ignore = { 0 };
	_cleanup_free_ char *text = vb_read_file(path, 1u << 20, NULL, &ignore);
	if (!text)
		return NULL;
	char *found = NULL;
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		while (*l == ' ' || *l == '\t')
			l++;
		if (strncmp(l, "registry", 8) != 0)
			continue;
		char *v = l + 8;
		while (*v == ' ' || *v == '\t')
			v++;
		if (*v++ != '=')
			continue;
		while (*v == ' ' || *v == '\t')
			v++;
		size_t n = strcspn(v, " \t\r");
		free(found);
		found = strndup(v, n);
	}
	return found;
}

char *vb_agentbin_registry(void)
{
	const char *env = getenv("VOIDBOX_NPM_REGISTRY");
	if (!env || !env[0])
		env = getenv("npm_config_registry");
	char *r = env && env[0] ? strdup(env) : NULL;
	if (!r) {
		const char *home = getenv("HOME");
		_cleanup_free_ char *rc = home && home[0] ? vb_strfmt("%s/.npmrc", home) : NULL;
		r = rc ? npmrc_registry(rc) : NULL;
	}
	if (!r || !r[0]) { /* npm's own answer: its configured default */
		free(r);
		r = NULL;
		FILE *p = popen("npm config get registry 2>/dev/null", "r");
		char line[1024] = "";
		if (p) {
			if (!fgets(line, sizeof(line), p))
				line[0] = '\0';
			pclose(p);
		}
		line[strcspn(line, "\r\n")] = '\0';
		if (!strncmp(line, "http://", 7) || !strncmp(line, "https://", 8))
			r = strdup(line);
	}
	size_t n = r ? strlen(r) : 0;
	while (n > 0 && r[n - 1] == '/')
		r[--n] = '\0';
	return r;
}

/* ---- libcurl ------------------------------------------------------------- */

static CURL *new_handle(const char *url, char *errbuf, vb_error *err)
{
	CURL *c = vb_curl_easy(err);
	if (!c)
		return NULL;
	errbuf[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
	vb_curl_download_defaults(c);
	return c;
}

static int curl_fail(CURL *c, CURLcode rc, const char *url, const char *errbuf, vb_error *err)
{
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (rc == CURLE_HTTP_RETURNED_ERROR)
		return vb_error_set(err, VB_E_RUNTIME, "GET %s: HTTP %ld", url, status);
	return vb_error_set(err, VB_E_RUNTIME, "GET %s: %s", url,
			    errbuf[0] ? errbuf : curl_easy_strerror(rc));
}

/* ---- metadata ------------------------------------------------------------ */

struct mem {
	char *data;
	size_t len;
};

static size_t to_buf(char *p, size_t size, size_t n, void *ud)
{
	struct mem *b = ud;
	size_t k = size * n;
	if (b->len + k > MAX_METADATA)
		return 0; /* ends the transfer: CURLE_WRITE_ERROR */
	char *d = realloc(b->data, b->len + k + 1);
	if (!d)
		return 0;
	memcpy(d + b->len, p, k);
	b->data = d;
	b->len += k;
	return k;
}

/* The package name in a registry URL: a scope's '/' as %2f, as npm does. */
static char *escaped_name(const char *name)
{
	const char *slash = strchr(name, '/');
	if (!slash)
		return strdup(name);
	return vb_strfmt("%.*s%%2f%s", (int)(slash - name), name, slash + 1);
}

int vb_agentbin_metadata(const char *registry, const char *name, const char *version,
			 char **integrity, char **tarball, vb_error *err)
{
	*integrity = *tarball = NULL;
	_cleanup_free_ char *esc = escaped_name(name);
	_cleanup_free_ char *url = esc ? vb_strfmt("%s/%s/%s", registry, esc, version) : NULL;
	if (!url)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	char errbuf[CURL_ERROR_SIZE];
	CURL *c = new_handle(url, errbuf, err);
	if (!c)
		return -1;
	struct mem b = { 0 };
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, to_buf);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	CURLcode rc = curl_easy_perform(c);
	int ret = 0;
	if (rc != CURLE_OK) {
		ret = curl_fail(c, rc, url, errbuf, err);
		goto out;
	}
	json_error_t jerr;
	json_t *doc = json_loadb(b.data ? b.data : "", b.len, 0, &jerr);
	const char *integ = NULL, *tar = NULL;
	if (json_unpack(doc, "{s:{s:s, s:s}}", "dist", "integrity", &integ, "tarball", &tar) < 0 ||
	    strncmp(integ, "sha512-", 7) != 0) {
		ret = vb_error_set(err, VB_E_RUNTIME,
				   "GET %s: no dist.integrity (sha512) and dist.tarball in the answer",
				   url);
	} else if (!(*integrity = strdup(integ)) || !(*tarball = strdup(tar))) {
		ret = vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	json_decref(doc);
out:
	free(b.data);
	curl_easy_cleanup(c);
	if (ret < 0) {
		free(*integrity);
		free(*tarball);
		*integrity = *tarball = NULL;
	}
	return ret;
}

/* ---- hashing ------------------------------------------------------------- */

int vb_agentbin_parse_integrity(const char *s, unsigned char out[64])
{
	if (!s || strncmp(s, "sha512-", 7) != 0 || strlen(s + 7) != 88)
		return -1;
	unsigned char buf[66]; /* 88 base64 chars decode to 66 bytes with padding */
	int n = EVP_DecodeBlock(buf, (const unsigned char *)s + 7, 88);
	if (n != 66 || s[7 + 86] != '=' || s[7 + 87] != '=')
		return -1;
	memcpy(out, buf, 64);
	return 0;
}

int vb_agentbin_sha512_file(const char *path, unsigned char out[64], vb_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vb_error_errno(err, errno, "cannot open %s", path);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha512(), NULL)) {
		EVP_MD_CTX_free(ctx);
		return vb_error_set(err, VB_E_RUNTIME, "cannot start a sha512");
	}
	static __thread unsigned char buf[1 << 16];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		EVP_DigestUpdate(ctx, buf, (size_t)n);
	int e = errno;
	unsigned len = 0;
	EVP_DigestFinal_ex(ctx, out, &len);
	EVP_MD_CTX_free(ctx);
	if (n < 0)
		return vb_error_errno(err, e, "reading %s", path);
	return 0;
}

/* ---- download ------------------------------------------------------------ */

struct dl {
	int fd;
	EVP_MD_CTX *ctx;
	uint64_t got;
	int failed; /* errno of a failed write */
	FILE *progress;
	const char *what;
	int last_decile; /* the last progress line, in tenths of the total */
	int64_t last_ms;
};

static size_t to_file(char *p, size_t size, size_t n, void *ud)
{
	struct dl *d = ud;
	size_t len = size * n;
	if (d->got + len > MAX_TARBALL)
		return 0;
	if (vb_write_full(d->fd, p, len) < 0) {
		d->failed = errno;
		return 0;
	}
	EVP_DigestUpdate(d->ctx, p, len);
	d->got += len;
	return len;
}

/* A line per tenth of the download (or per 30 s when the size is not
 * known), so the ~400 MB of an agent never look like a hang. */
static int on_progress(void *ud, curl_off_t total, curl_off_t now, curl_off_t ut, curl_off_t un)
{
	(void)ut;
	(void)un;
	struct dl *d = ud;
	if (!d->progress || now <= 0)
		return 0;
	int64_t t = vb_now_ms();
	int decile = total > 0 ? (int)(now * 10 / total) : -1;
	if (total > 0 ? decile <= d->last_decile : t - d->last_ms < 30000)
		return 0;
	d->last_decile = decile;
	d->last_ms = t;
	if (total > 0)
		fprintf(d->progress, "voidbox: %s: %lld of %lld MB (%d%%)\n", d->what,
			(long long)(now >> 20), (long long)(total >> 20), (int)(now * 100 / total));
	else
		fprintf(d->progress, "voidbox: %s: %lld MB\n", d->what, (long long)(now >> 20));
	fflush(d->progress);
	return 0;
}

int vb_agentbin_download(const char *url, const char *path, unsigned char digest[64],
			 FILE *progress, const char *what, vb_error *err)
{
	struct dl d = { .progress = progress, .what = what, .last_decile = 0 };
	d.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (d.fd < 0)
		return vb_error_errno(err, errno, "cannot create %s", path);
	d.ctx = EVP_MD_CTX_new();
	char errbuf[CURL_ERROR_SIZE];
	CURL *c = d.ctx && EVP_DigestInit_ex(d.ctx, EVP_sha512(), NULL)
			  ? new_handle(url, errbuf, err)
			  : NULL;
	int ret = 0;
	if (!c) {
		ret = d.ctx ? -1 : vb_error_set(err, VB_E_RUNTIME, "out of memory");
		goto out;
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, to_file);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &d);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, &d);
	CURLcode rc = curl_easy_perform(c);
	if (rc == CURLE_WRITE_ERROR && d.failed)
		ret = vb_error_errno(err, d.failed, "writing %s", path);
	else if (rc == CURLE_WRITE_ERROR)
		ret = vb_error_set(err, VB_E_RUNTIME, "GET %s: larger than %llu MB", url,
				   MAX_TARBALL >> 20);
	else if (rc != CURLE_OK)
		ret = curl_fail(c, rc, url, errbuf, err);
	curl_easy_cleanup(c);
	unsigned len = 0;
	if (ret == 0)
		EVP_DigestFinal_ex(d.ctx, digest, &len);
out:
	EVP_MD_CTX_free(d.ctx);
	if (close(d.fd) < 0 && ret == 0)
		ret = vb_error_errno(err, errno, "writing %s", path);
	return ret;
}
