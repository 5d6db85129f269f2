/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pull side of the OCI distribution spec over libcurl: the /v2/
 * challenge, anonymous or credentialed bearer tokens, basic auth from the
 * docker config, manifests with the full Accept list, and blobs streamed
 * through sha256 into the store (resumed with Range, never more bytes than
 * the descriptor declares).  429 and 5xx are retried with backoff.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "oci/oci.h"
#include "util/curl.h"
#include "util/term.h"
#include "util/util.h"
#include "voidbox/voidbox.h"

#define MAX_TOKEN_ANSWER (1u << 20)
#define MAX_ERROR_BODY (16u << 10)
#define MAX_ATTEMPTS 4

static const char ACCEPT[] = "Accept: " VB_OCI_MT_MANIFEST ", " VB_OCI_MT_INDEX ", "
			     VB_OCI_MT_DOCKER_MANIFEST ", " VB_OCI_MT_DOCKER_LIST;

struct vb_oci_reg {
	const struct vb_oci_ref *ref;
	char *base;  /* "https://host[:port]" */
	char *basic; /* "Basic <base64>" from the docker config, or NULL */
	int insecure;
	pthread_mutex_t lock;
	char *auth;  /* the Authorization value requests carry, or NULL */
};

/* ---- libcurl ------------------------------------------------------------- */

/* What one request brings back.  The body goes to (sink) only for a 2xx
 * answer; other answers' bodies are kept (bounded) for the message. */
struct resp {
	CURL *c;
	long status;
	char *ctype, *challenge, *digest;
	long retry_after;
	char *err_body;
	size_t err_len;
	/* the sink */
	size_t (*sink)(struct resp *r, const char *p, size_t n);
	void *sink_arg;
	int sink_failed; /* the sink refused: its own message is in sink_err */
	vb_error sink_err;
};

static char *header_value(const char *line, size_t n, const char *name)
{
	size_t k = strlen(name);
	if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
		return NULL;
	const char *v = line + k + 1;
	const char *end = line + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	return strndup(v, (size_t)(end - v));
}

static void set_str(char **slot, char *v)
{
	if (v) {
		free(*slot);
		*slot = v;
	}
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct resp *r = ud;
	size_t len = size * n;
	if (len >= 5 && !strncmp(p, "HTTP/", 5)) { /* a new answer (after a redirect) */
		free(r->ctype);
		free(r->challenge);
		free(r->digest);
		r->ctype = r->challenge = r->digest = NULL;
		r->retry_after = 0;
		return len;
	}
	if (len > 8192)
		return len;
	set_str(&r->ctype, header_value(p, len, "Content-Type"));
	set_str(&r->challenge, header_value(p, len, "WWW-Authenticate"));
	set_str(&r->digest, header_value(p, len, "Docker-Content-Digest"));
	char *ra = header_value(p, len, "Retry-After");
	if (ra) {
		r->retry_after = strtol(ra, NULL, 10);
		free(ra);
	}
	return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct resp *r = ud;
	size_t len = size * n;
	long status = 0;
	curl_easy_getinfo(r->c, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status < 300) {
		size_t k = r->sink(r, p, len);
		if (k != len)
			r->sink_failed = 1;
		return k;
	}
	size_t room = MAX_ERROR_BODY - r->err_len;
	size_t k = len < room ? len : room;
	if (k) {
		char *b = realloc(r->err_body, r->err_len + k + 1);
		if (!b)
			return 0;
		memcpy(b + r->err_len, p, k);
		r->err_body = b;
		r->err_len += k;
		b[r->err_len] = '\0';
	}
	return len;
}

static void resp_reset(struct resp *r)
{
	free(r->ctype);
	free(r->challenge);
	free(r->digest);
	free(r->err_body);
	r->ctype = r->challenge = r->digest = r->err_body = NULL;
	r->err_len = 0;
	r->status = 0;
	r->retry_after = 0;
	r->sink_failed = 0;
}

static const char *status_text(long s)
{
	switch (s) {
	case 400: return " Bad Request";
	case 401: return " Unauthorized";
	case 403: return " Forbidden";
	case 404: return " Not Found";
	case 416: return " Range Not Satisfiable";
	case 429: return " Too Many Requests";
	case 500: return " Internal Server Error";
	case 502: return " Bad Gateway";
	case 503: return " Service Unavailable";
	case 504: return " Gateway Timeout";
	default: return "";
	}
}

/* "HTTP 404 Not Found (MANIFEST_UNKNOWN: manifest unknown)" from a
 * registry's {"errors":[{"code","message"}]} body, made terminal-safe. */
static void status_message(const struct resp *r, char *out, size_t size)
{
	char detail[200] = "";
	json_t *doc = r->err_body ? json_loadb(r->err_body, r->err_len, 0, NULL) : NULL;
	json_t *e0 = json_array_get(json_object_get(doc, "errors"), 0);
	const char *code = json_string_value(json_object_get(e0, "code"));
	const char *msg = json_string_value(json_object_get(e0, "message"));
	if (code || msg) {
		char tmp[200];
		snprintf(tmp, sizeof(tmp), "%s%s%s", code ? code : "", code && msg ? ": " : "",
			 msg ? msg : "");
		vb_term_copy(detail, sizeof(detail), tmp, 0);
	}
	json_decref(doc);
	snprintf(out, size, "HTTP %ld%s%s%s%s", r->status, status_text(r->status),
		 detail[0] ? " (" : "", detail, detail[0] ? ")" : "");
}

static int retryable_curl(CURLcode rc)
{
	return rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
	       rc == CURLE_PARTIAL_FILE || rc == CURLE_GOT_NOTHING;
}

static void backoff(int attempt, long retry_after)
{
	long ms = 250L << attempt; /* 250 ms, 500 ms, 1 s */
	const char *base = getenv("VOIDBOX_OCI_RETRY_MS"); /* tests shorten it */
	if (base && base[0])
		ms = strtol(base, NULL, 10) << attempt;
	if (retry_after > 0)
		ms = (retry_after > 30 ? 30 : retry_after) * 1000L;
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* One GET (or HEAD) of (url) with (auth) (may be NULL) and (accept) (may be
 * NULL), (before) called before each attempt (to position a file sink).
 * Retries 429/5xx and transient transport failures.  Returns 0 with
 * r->status set (any status), or -1 for a transport failure (err). */
static int perform(const char *url, const char *auth, const char *accept, struct resp *r,
		   int (*before)(struct resp *r, CURL *c, vb_error *err), vb_error *err)
{
	for (int attempt = 0;; attempt++) {
		CURL *c = vb_curl_easy(err);
		if (!c)
			return -1;
		char errbuf[CURL_ERROR_SIZE] = "";
		struct curl_slist *h = NULL, *t;
		_cleanup_free_ char *authh = auth ? vb_strfmt("Authorization: %s", auth) : NULL;
		if (accept && (t = curl_slist_append(h, accept)))
			h = t;
		if (authh && (t = curl_slist_append(h, authh)))
			h = t;
		resp_reset(r);
		r->c = c;
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
		/* a redirect to object storage: followed, and libcurl drops our
		 * Authorization header when the host changes (no
		 * CURLOPT_UNRESTRICTED_AUTH) */
		vb_curl_download_defaults(c);
		curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
		int ok = before ? before(r, c, err) : 0;
		CURLcode rc = ok == 0 ? curl_easy_perform(c) : CURLE_ABORTED_BY_CALLBACK;
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
		curl_easy_cleanup(c);
		curl_slist_free_all(h);
		r->c = NULL;
		if (ok < 0)
			return -1;
		if (r->sink_failed) {
			*err = r->sink_err;
			return -1;
		}
		int again = (rc == CURLE_OK && (r->status == 429 || (r->status >= 500 && r->status != 501))) ||
			    (rc != CURLE_OK && retryable_curl(rc));
		if (again && attempt + 1 < MAX_ATTEMPTS) {
			backoff(attempt, r->retry_after);
			continue;
		}
		if (rc != CURLE_OK)
			return vb_error_set(err, VB_E_RUNTIME, "GET %s: %s", url,
					    errbuf[0] ? errbuf : curl_easy_strerror(rc));
		return 0;
	}
}

/* ---- sinks ------------------------------------------------------------------- */

struct mem {
	char *data;
	size_t len, max;
	const char *url;
};

static size_t mem_sink(struct resp *r, const char *p, size_t n)
{
	struct mem *m = r->sink_arg;
	if (m->len + n > m->max) {
		vb_error_set(&r->sink_err, VB_E_RUNTIME, "GET %s: larger than %zu KiB", m->url,
			     m->max >> 10);
		return 0;
	}
	char *d = realloc(m->data, m->len + n + 1);
	if (!d) {
		vb_error_set(&r->sink_err, VB_E_RUNTIME, "out of memory");
		return 0;
	}
	memcpy(d + m->len, p, n);
	m->data = d;
	m->len += n;
	d[m->len] = '\0';
	return n;
}

static int mem_before(struct resp *r, CURL *c, vb_error *err)
{
	(void)c;
	(void)err;
	struct mem *m = r->sink_arg;
	m->len = 0;
	return 0;
}

/* ---- credentials ------------------------------------------------------------ */

/* "https://index.docker.io/v1/" -> "index.docker.io" */
static int auths_key_matches(const char *key, const char *registry)
{
	const char *k = strstr(key, "://") ? strstr(key, "://") + 3 : key;
	size_t n = strcspn(k, "/");
	if (strlen(registry) == n && !strncmp(k, registry, n))
		return 1;
	if (!strcmp(registry, "docker.io"))
		return (n == 15 && !strncmp(k, "index.docker.io", n)) ||
		       (n == 20 && !strncmp(k, "registry-1.docker.io", n));
	return 0;
}

/* The credentials for (registry) in a docker-style auth file, as an
 * Authorization value, or NULL. */
static char *basic_from(const char *path, const char *registry)
{
	vb_error ignore = { 0 };
	size_t len = 0;
	_cleanup_free_ char *text = vb_read_file(path, 1u << 20, &len, &ignore);
	json_t *doc = text ? json_loadb(text, len, 0, NULL) : NULL;
	json_t *auths = json_object_get(doc, "auths");
	const char *key;
	json_t *v;
	char *out = NULL;
	json_object_foreach(auths, key, v) {
		if (!auths_key_matches(key, registry))
			continue;
		const char *a = json_string_value(json_object_get(v, "auth"));
		const char *u = json_string_value(json_object_get(v, "username"));
		const char *p = json_string_value(json_object_get(v, "password"));
		if (a && a[0] && strlen(a) < 4096 && !strpbrk(a, "\r\n")) {
			out = vb_strfmt("Basic %s", a);
		} else if (u && p && strlen(u) + strlen(p) < 2048) {
			_cleanup_free_ char *up = vb_strfmt("%s:%s", u, p);
			size_t k = up ? strlen(up) : 0;
			_cleanup_free_ char *b64 = up ? malloc(4 * ((k + 2) / 3) + 1) : NULL;
			if (b64) {
				EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)up, (int)k);
				out = vb_strfmt("Basic %s", b64);
			}
		}
		break;
	}
	json_decref(doc);
	return out;
}

/* $DOCKER_CONFIG/config.json or ~/.docker/config.json, then podman's and
 * skopeo's ${XDG_RUNTIME_DIR}/containers/auth.json (the same format). */
static char *docker_basic(const char *registry)
{
	const char *dir = getenv("DOCKER_CONFIG");
	const char *home = getenv("HOME");
	const char *run = getenv("XDG_RUNTIME_DIR");
	_cleanup_free_ char *docker = dir && dir[0] ? vb_strfmt("%s/config.json", dir)
				      : home && home[0] ? vb_strfmt("%s/.docker/config.json", home)
							: NULL;
	_cleanup_free_ char *containers = run && run[0] ? vb_strfmt("%s/containers/auth.json", run)
							: NULL;
	char *out = docker ? basic_from(docker, registry) : NULL;
	if (!out && containers)
		out = basic_from(containers, registry);
	return out;
}

static int listed_insecure(const char *registry)
{
	const char *l = getenv("VOIDBOX_INSECURE_REGISTRIES");
	if (!l)
		return 0;
	size_t n = strlen(registry);
	for (const char *p = l; *p;) {
		p += strspn(p, ", ");
		size_t k = strcspn(p, ", ");
		if (k == n && !strncmp(p, registry, n))
			return 1;
		p += k;
	}
	return 0;
}

/* May (url) be fetched?  https always; http only from a loopback or
 * insecure-listed host. */
static int url_allowed(const char *url)
{
	if (!strncmp(url, "https://", 8))
		return 1;
	if (strncmp(url, "http://", 7) != 0)
		return 0;
	const char *h = url + 7;
	_cleanup_free_ char *host = strndup(h, strcspn(h, "/?#"));
	return host && (vb_oci_host_loopback(host) || listed_insecure(host));
}

/* ---- the bearer challenge ------------------------------------------------- */

/* The value of (key)="..." in a WWW-Authenticate challenge, or NULL. */
static char *challenge_param(const char *ch, const char *key)
{
	size_t k = strlen(key);
	const char *p = ch;
	while ((p = strcasestr(p, key))) {
		int start = p == ch || p[-1] == ' ' || p[-1] == ',';
		if (!start || p[k] != '=') {
			p += k;
			continue;
		}
		const char *v = p + k + 1;
		char *out = malloc(strlen(v) + 1);
		if (!out)
			return NULL;
		size_t o = 0;
		if (*v == '"') {
			for (v++; *v && *v != '"'; v++) {
				if (*v == '\\' && v[1])
					v++;
				out[o++] = *v;
			}
		} else {
			while (*v && *v != ',' && *v != ' ')
				out[o++] = *v++;
		}
		out[o] = '\0';
		return out;
	}
	return NULL;
}

static int fetch_token(struct vb_oci_reg *g, const char *challenge, const char *refname,
		       vb_error *err)
{
	_cleanup_free_ char *realm = challenge_param(challenge, "realm");
	_cleanup_free_ char *service = challenge_param(challenge, "service");
	char shown[300];
	if (!realm || !realm[0])
		return vb_error_set(err, VB_E_RUNTIME, "%s: %s/v2/: a Bearer challenge without a realm",
				    refname, g->base);
	vb_term_copy(shown, sizeof(shown), realm, 0);
	if (!url_allowed(realm))
		return vb_error_set(err, VB_E_RUNTIME,
				    "%s: the token service %s is not https (plain http only for loopback or $VOIDBOX_INSECURE_REGISTRIES)",
				    refname, shown);
	vb_error ignore = { 0 };
	CURL *esc = vb_curl_easy(&ignore);
	_cleanup_free_ char *scope = vb_strfmt("repository:%s:pull", g->ref->repo);
	char *s_scope = esc && scope ? curl_easy_escape(esc, scope, 0) : NULL;
	char *s_service = esc && service ? curl_easy_escape(esc, service, 0) : NULL;
	_cleanup_free_ char *url = s_scope ? vb_strfmt("%s%sscope=%s%s%s", realm,
						       strchr(realm, '?') ? "&" : "?", s_scope,
						       s_service ? "&service=" : "",
						       s_service ? s_service : "")
					   : NULL;
	curl_free(s_scope);
	curl_free(s_service);
	curl_easy_cleanup(esc);
	if (!url)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	vb_term_copy(shown, sizeof(shown), url, 0);
	struct mem m = { .max = MAX_TOKEN_ANSWER, .url = shown };
	struct resp r = { .sink = mem_sink, .sink_arg = &m };
	int rc = perform(url, g->basic, NULL, &r, mem_before, err);
	if (rc == 0 && r.status != 200) {
		char st[300];
		status_message(&r, st, sizeof(st));
		rc = vb_error_set(err, VB_E_RUNTIME, "%s: token from GET %s: %s%s", refname, shown, st,
				  r.status == 401 && !g->basic ? " (no credentials for this registry in the docker config)" : "");
	} else if (rc < 0) {
		vb_error_prefix(err, "%s: token", refname);
	}
	json_t *doc = rc == 0 ? json_loadb(m.data ? m.data : "", m.len, 0, NULL) : NULL;
	const char *tok = json_string_value(json_object_get(doc, "token"));
	if (!tok || !tok[0])
		tok = json_string_value(json_object_get(doc, "access_token"));
	if (rc == 0 && (!tok || !tok[0] || strlen(tok) > 65536 || strpbrk(tok, "\r\n")))
		rc = vb_error_set(err, VB_E_RUNTIME, "%s: token from GET %s: no token in the answer",
				  refname, shown);
	if (rc == 0) {
		char *a = vb_strfmt("Bearer %s", tok);
		pthread_mutex_lock(&g->lock);
		free(g->auth);
		g->auth = a;
		pthread_mutex_unlock(&g->lock);
		if (!a)
			rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	json_decref(doc);
	free(m.data);
	resp_reset(&r);
	return rc;
}

/* After a 401: answer its challenge once.  0 = try again, -1 = give up. */
static int answer_challenge(struct vb_oci_reg *g, const char *challenge, const char *refname,
			    vb_error *err)
{
	if (challenge && !strncasecmp(challenge, "Bearer", 6))
		return fetch_token(g, challenge, refname, err);
	if (challenge && !strncasecmp(challenge, "Basic", 5) && g->basic) {
		pthread_mutex_lock(&g->lock);
		int had = g->auth && !strcmp(g->auth, g->basic);
		if (!had) {
			free(g->auth);
			g->auth = strdup(g->basic);
		}
		pthread_mutex_unlock(&g->lock);
		return had ? -1 : 0;
	}
	return -1;
}

static char *current_auth(struct vb_oci_reg *g)
{
	pthread_mutex_lock(&g->lock);
	char *a = g->auth ? strdup(g->auth) : NULL;
	pthread_mutex_unlock(&g->lock);
	return a;
}

static char *refname_of(const struct vb_oci_reg *g)
{
	return vb_oci_ref_string(g->ref);
}

/* A request with auth: a 401 is answered once (token fetched or basic
 * credentials sent) and the request made again. */
static int authed(struct vb_oci_reg *g, const char *url, const char *accept, struct resp *r,
		  int (*before)(struct resp *, CURL *, vb_error *), vb_error *err)
{
	_cleanup_free_ char *refname = refname_of(g);
	for (int round = 0;; round++) {
		_cleanup_free_ char *auth = current_auth(g);
		if (perform(url, auth, accept, r, before, err) < 0) {
			vb_error_prefix(err, "%s", refname);
			return -1;
		}
		if (r->status != 401 || round > 0)
			return 0;
		vb_error e2 = { 0 };
		_cleanup_free_ char *ch = r->challenge ? strdup(r->challenge) : NULL;
		int rc = answer_challenge(g, ch, refname, &e2);
		if (rc < 0 && e2.msg[0]) {
			*err = e2;
			return -1;
		}
		if (rc < 0)
			return 0; /* the caller reports the 401 */
	}
}

static int status_fail(struct vb_oci_reg *g, const char *url, const struct resp *r, vb_error *err)
{
	_cleanup_free_ char *refname = refname_of(g);
	char st[300];
	status_message(r, st, sizeof(st));
	const char *hint = "";
	if (r->status == 401)
		hint = g->basic ? " (the credentials in the docker config were refused)"
				: " (no credentials for this registry: add them to the docker config's auths)";
	vb_error_set(err, VB_E_RUNTIME, "%s: GET %s: %s%s", refname, url, st, hint);
	return r->status == 404 ? VB_OCI_ENOENT : -1;
}

/* ---- the session ------------------------------------------------------------ */

void vb_oci_reg_close(struct vb_oci_reg *g)
{
	if (!g)
		return;
	free(g->base);
	free(g->basic);
	free(g->auth);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

struct vb_oci_reg *vb_oci_reg_open(const struct vb_oci_ref *r, vb_error *err)
{
	struct vb_oci_reg *g = calloc(1, sizeof(*g));
	if (!g) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&g->lock, NULL);
	g->ref = r;
	g->insecure = vb_oci_host_loopback(r->registry) || listed_insecure(r->registry);
	g->base = vb_strfmt("%s://%s", g->insecure ? "http" : "https", vb_oci_ref_api_host(r));
	g->basic = docker_basic(r->registry);
	_cleanup_free_ char *url = g->base ? vb_strfmt("%s/v2/", g->base) : NULL;
	if (!url) {
		vb_oci_reg_close(g);
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	/* the ping: 200 (open), or 401 with the challenge to answer */
	struct mem m = { .max = 1u << 20, .url = url };
	struct resp rs = { .sink = mem_sink, .sink_arg = &m };
	int rc = authed(g, url, NULL, &rs, mem_before, err);
	if (rc == 0 && rs.status != 200 && rs.status != 401)
		rc = status_fail(g, url, &rs, err);
	free(m.data);
	resp_reset(&rs);
	if (rc < 0) {
		vb_oci_reg_close(g);
		return NULL;
	}
	return g;
}

/* ---- manifests -------------------------------------------------------------- */

static void sha256_hex(const void *p, size_t n, char out[72])
{
	unsigned char md[32];
	unsigned len = 0;
	EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
	memcpy(out, "sha256:", 7);
	for (int i = 0; i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

int vb_oci_reg_manifest(struct vb_oci_reg *g, const char *what, char **body, size_t *len,
			char **content_type, char digest[72], vb_error *err)
{
	*body = *content_type = NULL;
	*len = 0;
	_cleanup_free_ char *url = vb_strfmt("%s/v2/%s/manifests/%s", g->base, g->ref->repo, what);
	if (!url)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	struct mem m = { .max = VB_OCI_MAX_MANIFEST, .url = url };
	struct resp r = { .sink = mem_sink, .sink_arg = &m };
	int rc = authed(g, url, ACCEPT, &r, mem_before, err);
	if (rc == 0 && r.status != 200)
		rc = status_fail(g, url, &r, err);
	if (rc == 0) {
		sha256_hex(m.data ? m.data : "", m.len, digest);
		_cleanup_free_ char *refname = refname_of(g);
		if (vb_oci_digest_valid(what) && strcmp(what, digest) != 0)
			rc = vb_error_set(err, VB_E_RUNTIME,
					  "%s: GET %s: the manifest's content does not match its digest (it is %s)",
					  refname, url, digest);
		else if (r.digest && vb_oci_digest_valid(r.digest) && strcmp(r.digest, digest) != 0)
			rc = vb_error_set(err, VB_E_RUNTIME,
					  "%s: GET %s: the manifest's content (%s) does not match Docker-Content-Digest %s",
					  refname, url, digest, r.digest);
	}
	if (rc == 0) {
		*body = m.data ? m.data : strdup("");
		*len = m.len;
		*content_type = r.ctype ? strndup(r.ctype, strcspn(r.ctype, ";")) : NULL;
		m.data = NULL;
	}
	free(m.data);
	resp_reset(&r);
	return rc;
}

/* ---- blobs ------------------------------------------------------------------ */

struct blobsink {
	int fd;
	EVP_MD_CTX *ctx;
	uint64_t have, size; /* bytes in the partial, bytes declared */
	const char *url, *digest;
	vb_oci_progress_fn fn;
	void *arg;
	int positioned; /* this answer's first bytes seen */
	int overlong;   /* the server sent more than declared */
};

/* Hash what the partial already holds (a resumed download). */
static int rehash(struct blobsink *b, vb_error *err)
{
	EVP_DigestInit_ex(b->ctx, EVP_sha256(), NULL);
	if (lseek(b->fd, 0, SEEK_SET) < 0)
		return vb_error_errno(err, errno, "seeking a partial blob");
	static __thread unsigned char buf[1 << 16];
	uint64_t left = b->have;
	while (left) {
		ssize_t n = read(b->fd, buf, left < sizeof(buf) ? left : sizeof(buf));
		if (n <= 0)
			return vb_error_errno(err, n < 0 ? errno : EIO, "reading a partial blob");
		EVP_DigestUpdate(b->ctx, buf, (size_t)n);
		left -= (uint64_t)n;
	}
	return 0;
}

static int blob_before(struct resp *r, CURL *c, vb_error *err)
{
	struct blobsink *b = r->sink_arg;
	struct stat st;
	if (fstat(b->fd, &st) < 0)
		return vb_error_errno(err, errno, "stat of a partial blob");
	b->have = (uint64_t)st.st_size;
	if (b->have >= b->size && b->have > 0) { /* a complete (or overlong) partial: start over */
		if (ftruncate(b->fd, 0) < 0)
			return vb_error_errno(err, errno, "truncating a partial blob");
		b->have = 0;
	}
	if (rehash(b, err) < 0)
		return -1;
	b->positioned = 0;
	if (b->have)
		curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)b->have);
	return 0;
}

static size_t blob_sink(struct resp *r, const char *p, size_t n)
{
	struct blobsink *b = r->sink_arg;
	if (!b->positioned) {
		long status = 0;
		curl_easy_getinfo(r->c, CURLINFO_RESPONSE_CODE, &status);
		b->positioned = 1;
		if (status == 200 && b->have) { /* the range was ignored: the whole blob comes */
			if (ftruncate(b->fd, 0) < 0) {
				vb_error_errno(&r->sink_err, errno, "truncating a partial blob");
				return 0;
			}
			b->have = 0;
			EVP_DigestInit_ex(b->ctx, EVP_sha256(), NULL);
		}
		if (lseek(b->fd, (off_t)b->have, SEEK_SET) < 0) {
			vb_error_errno(&r->sink_err, errno, "seeking a partial blob");
			return 0;
		}
	}
	if (n > b->size - b->have) {
		b->overlong = 1;
		vb_error_set(&r->sink_err, VB_E_RUNTIME,
			     "GET %s: more bytes than the %llu its descriptor declares", b->url,
			     (unsigned long long)b->size);
		return 0;
	}
	if (vb_write_full(b->fd, p, n) < 0) {
		vb_error_errno(&r->sink_err, errno, "writing blob %s", b->digest);
		return 0;
	}
	EVP_DigestUpdate(b->ctx, p, n);
	b->have += n;
	if (b->fn)
		b->fn(b->arg, b->have);
	return n;
}

/* Open and lock (dir)/<hex>.partial; another process pulling the same blob
 * holds the lock until it renamed or deleted the file, so once we hold it
 * the path must still be our file. */
static int open_partial(const char *partial, vb_error *err)
{
	for (;;) {
		int fd = open(partial, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd < 0)
			return vb_error_errno(err, errno, "cannot create %s", partial);
		if (flock(fd, LOCK_EX) < 0) {
			int e = errno;
			close(fd);
			return vb_error_errno(err, e, "cannot lock %s", partial);
		}
		struct stat a, b;
		if (fstat(fd, &a) == 0 && stat(partial, &b) == 0 && a.st_ino == b.st_ino &&
		    a.st_dev == b.st_dev)
			return fd;
		close(fd);
	}
}

int vb_oci_reg_blob(struct vb_oci_reg *g, const char *digest, uint64_t size, const char *dir,
		    vb_oci_progress_fn fn, void *arg, vb_error *err)
{
	if (!vb_oci_digest_valid(digest))
		return vb_error_set(err, VB_E_RUNTIME, "not a sha256 digest");
	_cleanup_free_ char *final = vb_strfmt("%s/%s", dir, digest + 7);
	_cleanup_free_ char *partial = vb_strfmt("%s/%s.partial", dir, digest + 7);
	_cleanup_free_ char *url = vb_strfmt("%s/v2/%s/blobs/%s", g->base, g->ref->repo, digest);
	if (!final || !partial || !url)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	_cleanup_close_ int fd = open_partial(partial, err);
	if (fd < 0)
		return -1;
	if (access(final, F_OK) == 0) { /* someone else finished it */
		unlink(partial);
		return 0;
	}
	struct blobsink b = { .fd = fd, .size = size, .url = url, .digest = digest, .fn = fn,
			      .arg = arg };
	b.ctx = EVP_MD_CTX_new();
	if (!b.ctx)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	struct resp r = { .sink = blob_sink, .sink_arg = &b };
	_cleanup_free_ char *refname = refname_of(g);
	int rc = authed(g, url, NULL, &r, blob_before, err);
	if (rc == 0 && r.status == 416) { /* our range was beyond the blob: start over */
		if (ftruncate(fd, 0) < 0)
			rc = vb_error_errno(err, errno, "truncating %s", partial);
		else
			rc = authed(g, url, NULL, &r, blob_before, err);
	}
	if (rc == 0 && r.status != 200 && r.status != 206)
		rc = status_fail(g, url, &r, err);
	if (rc == 0 && b.have != size)
		rc = vb_error_set(err, VB_E_RUNTIME, "%s: GET %s: %llu bytes, its descriptor says %llu",
				  refname, url, (unsigned long long)b.have, (unsigned long long)size);
	int bad = 0;
	if (rc == 0) {
		unsigned char md[32];
		unsigned len = 0;
		char got[72];
		EVP_DigestFinal_ex(b.ctx, md, &len);
		memcpy(got, "sha256:", 7);
		for (int i = 0; i < 32; i++)
			snprintf(got + 7 + 2 * i, 3, "%02x", md[i]);
		if (strcmp(got, digest) != 0) {
			bad = 1;
			rc = vb_error_set(err, VB_E_RUNTIME,
					  "%s: GET %s: the blob's content does not match its digest %s (it is %s); refused",
					  refname, url, digest, got);
		}
	} else if (b.overlong) {
		bad = 1;
	}
	EVP_MD_CTX_free(b.ctx);
	resp_reset(&r);
	if (bad) {
		unlink(partial);
		return -1;
	}
	struct stat st;
	if (rc < 0 && fstat(fd, &st) == 0 && st.st_size == 0)
		unlink(partial); /* nothing to resume */
	if (rc < 0)
		return rc; /* the partial stays, to be resumed */
	if (fsync(fd) < 0 || fchmod(fd, 0444) < 0 || rename(partial, final) < 0) {
		int e = errno;
		unlink(partial);
		return vb_error_errno(err, e, "cannot store blob %s", digest);
	}
	return 0;
}
