/* SPDX-License-Identifier: Apache-2.0 */
/*
 * remote: skills — void-box's layout, <base>/<owner>/<repo>/main/skills/
 * <skill>/SKILL.md (a two-part id: the repository's root SKILL.md) — fetched
 * with libcurl and kept in the cache: cache_dir/skills/url-<sha256 of the
 * URL> holds the SHA-256 of the content, which is in sha256-<that>.  A URL
 * once fetched is not asked for again; deleting cache_dir/skills (or the
 * url- file) fetches it anew (docs/skills.md).
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "skill/skill.h"
#include "util/curl.h"
#include "util/term.h"
#include "util/util.h"

#define FETCH_TIMEOUT_S 60L

/* http: only to the host itself (a test's server, a local mirror): the
 * URL's host is 127.x.y.z, [::1] or localhost, nothing more. */
static int loopback_http(const char *url)
{
	if (strncmp(url, "http://", 7))
		return 0;
	const char *h = url + 7;
	size_t n = strcspn(h, "/?#");
	char host[64];
	if (n >= sizeof(host))
		return 0;
	memcpy(host, h, n);
	host[n] = 0;
	if (!strncmp(host, "[::1]", 5))
		return host[5] == 0 || host[5] == ':';
	char *colon = strchr(host, ':');
	if (colon)
		*colon = 0;
	struct in_addr a;
	if (inet_pton(AF_INET, host, &a) == 1)
		return (ntohl(a.s_addr) >> 24) == 127;
	return !strcmp(host, "localhost");
}

int vb_skill_remote_base(char **base, vb_error *err)
{
	const char *env = getenv("VOIDBOX_SKILLS_BASE_URL");
	const char *b = env && *env ? env : VB_SKILL_DEFAULT_BASE;
	char s[200];
	int ok = !strncmp(b, "https://", 8) || loopback_http(b);
	if (!ok)
		return vb_error_set(err, VB_E_USAGE,
				    "VOIDBOX_SKILLS_BASE_URL '%s' must be an https:// URL (http:// "
				    "only to 127.0.0.1, [::1] or localhost)",
				    vb_term_copy(s, sizeof(s), b, 0));
	*base = strdup(b);
	if (!*base)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	size_t n = strlen(*base);
	while (n && (*base)[n - 1] == '/')
		(*base)[--n] = 0;
	return 0;
}

char *vb_skill_remote_url(const char *base, const char *id)
{
	_cleanup_free_ char *copy = strdup(id);
	if (!copy)
		return NULL;
	char *repo = strchr(copy, '/');
	if (!repo)
		return NULL;
	*repo++ = 0;
	char *skill = strchr(repo, '/');
	if (skill)
		*skill++ = 0;
	return skill ? vb_strfmt("%s/%s/%s/main/skills/%s/SKILL.md", base, copy, repo, skill)
		     : vb_strfmt("%s/%s/%s/main/SKILL.md", base, copy, repo);
}

struct sink {
	uint8_t *buf;
	size_t len;
	int over;
};

static size_t on_data(char *p, size_t size, size_t n, void *opaque)
{
	struct sink *s = opaque;
	size_t add = size * n;
	if (s->len + add > VB_SKILL_MD_MAX) {
		s->over = 1;
		return 0; /* ends the transfer */
	}
	uint8_t *nb = realloc(s->buf, s->len + add + 1);
	if (!nb)
		return 0;
	s->buf = nb;
	memcpy(s->buf + s->len, p, add);
	s->len += add;
	s->buf[s->len] = 0;
	return add;
}

static int get(const char *url, uint8_t **data, size_t *len, vb_error *err)
{
	char u[400];
	vb_term_copy(u, sizeof(u), url, 0);
	CURL *c = vb_curl_easy(err);
	if (!c)
		return -1;
	struct sink s = { 0 };
	char ebuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, loopback_http(url) ? "http" : "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, FETCH_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (s.over) {
		free(s.buf);
		return vb_error_set(err, VB_E_USAGE, "GET %s: more than %zu KiB: the limit of a SKILL.md",
				    u, VB_SKILL_MD_MAX >> 10);
	}
	if (rc != CURLE_OK) {
		free(s.buf);
		return vb_error_set(err, VB_E_USAGE, "GET %s: %s", u,
				    *ebuf ? ebuf : curl_easy_strerror(rc));
	}
	if (status != 200) {
		free(s.buf);
		return vb_error_set(err, VB_E_USAGE, "GET %s: HTTP %ld", u, status);
	}
	if (!s.buf && !(s.buf = calloc(1, 1)))
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	*data = s.buf;
	*len = s.len;
	return 0;
}

/* Write (data) to (path) whole or not at all. */
static int put(const char *path, const void *data, size_t len)
{
	return vb_write_file_atomic(path, data, len, 0644);
}

/* The cached content of (url), checked against its hash; NULL if none. */
static uint8_t *cached(const char *dir, const char *url_key, size_t *len)
{
	_cleanup_free_ char *idx = vb_strfmt("%s/url-%s", dir, url_key);
	vb_error e = { 0 };
	size_t n;
	_cleanup_free_ char *hash = idx ? vb_read_file(idx, 128, &n, &e) : NULL;
	vb_error_clear(&e);
	if (!hash || n < 64)
		return NULL;
	hash[64] = 0;
	_cleanup_free_ char *path = vb_strfmt("%s/sha256-%s", dir, hash);
	char *data = path ? vb_read_file(path, VB_SKILL_MD_MAX, len, &e) : NULL;
	vb_error_clear(&e);
	char sum[65];
	if (data) {
		vb_skill_sha256(data, *len, sum);
		if (strcmp(sum, hash)) {
			free(data);
			return NULL;
		}
	}
	return (uint8_t *)data;
}

int vb_skill_fetch(const char *url, uint8_t **data, size_t *len, vb_error *err)
{
	char url_key[65], sum[65];
	vb_skill_sha256(url, strlen(url), url_key);
	vb_error e = { 0 };
	_cleanup_free_ char *cache = vb_cache_dir(&e);
	_cleanup_free_ char *dir = cache ? vb_strfmt("%s/skills", cache) : NULL;
	vb_error_clear(&e);
	if (dir && (*data = cached(dir, url_key, len)))
		return 0;
	if (get(url, data, len, err) < 0)
		return -1;
	/* a cache that cannot be written only costs the next run a fetch */
	if (dir && vb_mkdir_p(dir, 0700, &e) == 0) {
		vb_skill_sha256(*data, *len, sum);
		_cleanup_free_ char *path = vb_strfmt("%s/sha256-%s", dir, sum);
		_cleanup_free_ char *idx = vb_strfmt("%s/url-%s", dir, url_key);
		if (path && idx && put(path, *data, *len) == 0)
			put(idx, sum, 64);
	}
	vb_error_clear(&e);
	return 0;
}
