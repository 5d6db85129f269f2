/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Refreshing the agent CLIs' OAuth logins on the host (oauth.h).  The wire
 * formats are the CLIs' own:
 *
 *   claude-code: POST https://platform.claude.com/v1/oauth/token, JSON
 *     {"grant_type": "refresh_token", "refresh_token", "client_id", "scope"}
 *     -> {"access_token", "refresh_token"?, "expires_in", "scope"?,
 *         "refresh_token_expires_in"?}; the login is claudeAiOauth in
 *     .credentials.json (accessToken, refreshToken, expiresAt in ms, scopes).
 *   codex: POST https://auth.openai.com/oauth/token, JSON
 *     {"client_id", "grant_type": "refresh_token", "refresh_token"}
 *     -> {"id_token"?, "access_token"?, "refresh_token"?}; the login is
 *     tokens.{id_token, access_token, refresh_token, account_id} in
 *     auth.json, plus last_refresh (RFC 3339).
 *
 * Every buffer that held a token is wiped before it is freed.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "llm/llm.h"
#include "llm/oauth.h"
#include "util/curl.h"
#include "util/term.h"
#include "util/util.h"
#include "voidbox/voidbox.h"

#define MAX_LOGIN_FILE (1u << 20)
#define MAX_ANSWER (1u << 20)
#define LOCK_WAIT_MS 30000
#define HTTP_TIMEOUT_S 30L
#define CLAUDE_LOCK_STALE_S 60 /* proper-lockfile's default, as claude-code uses it */

#define CLAUDE_TOKEN_URL "https://platform.claude.com/v1/oauth/token"
#define CLAUDE_CLIENT_ID "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
/* What claude-code asks for when the file names no scopes. */
#define CLAUDE_SCOPES "user:profile user:inference user:sessions:claude_code user:mcp_servers " \
		      "user:file_upload"
#define CLAUDE_FIX "run `claude /login` on the host"

#define CODEX_TOKEN_URL "https://auth.openai.com/oauth/token"
#define CODEX_CLIENT_ID "app_EMoamEEZ73f0CkXaXp7hrann"
#define CODEX_FIX "run `codex login` on the host"

void vb_oauth_token_clear(struct vb_oauth_token *t)
{
	vb_llm_wipe_free(t->access);
	free(t->account);
	*t = (struct vb_oauth_token){ 0 };
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Strings in a jansson tree are ours until decref; wipe them first. */
static void wipe_json(json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;
	if (json_is_string(j)) {
		vb_llm_wipe((void *)(uintptr_t)json_string_value(j), json_string_length(j));
	} else if (json_is_object(j)) {
		json_object_foreach(j, k, v)
			wipe_json(v);
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			wipe_json(v);
	}
}

static void free_secret_json(json_t *j)
{
	if (j) {
		wipe_json(j);
		json_decref(j);
	}
}

/* ---- the login file, locked ---------------------------------------------- */

struct login {
	char *path;   /* the file itself (symlinks resolved) */
	int fd;       /* open on it, flock'ed */
	char *locks[2]; /* claude-code's lock directories we made */
	json_t *root;
};

static void login_close(struct login *l)
{
	for (int i = 1; i >= 0; i--)
		if (l->locks[i]) {
			rmdir(l->locks[i]);
			free(l->locks[i]);
		}
	if (l->fd >= 0)
		close(l->fd); /* and its flock with it */
	free_secret_json(l->root);
	free(l->path);
	*l = (struct login){ .fd = -1 };
}

/* flock the file, making sure the lock is on the file the path names now
 * (a writer renames a new file over it). */
static int lock_file(struct login *l, const char *what, vb_error *err)
{
	int64_t deadline = wall_ms() + LOCK_WAIT_MS;
	for (;;) {
		int fd = open(l->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return vb_error_errno(err, errno, "cannot open %s", l->path);
		while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			if (errno != EWOULDBLOCK && errno != EINTR) {
				int e = errno;
				close(fd);
				return vb_error_errno(err, e, "cannot lock %s", l->path);
			}
			if (wall_ms() > deadline) {
				close(fd);
				return vb_error_set(err, VB_E_RUNTIME,
						    "%s: %s stayed locked by another process for %d s",
						    what, l->path, LOCK_WAIT_MS / 1000);
			}
			sleep_ms(100);
		}
		struct stat a, b;
		if (fstat(fd, &a) == 0 && stat(l->path, &b) == 0 && a.st_dev == b.st_dev &&
		    a.st_ino == b.st_ino) {
			l->fd = fd;
			return 0;
		}
		close(fd); /* replaced while we waited: lock the new one */
	}
}

/* claude-code's own refresh lock: a directory made with mkdir, which it
 * considers stale when its mtime is more than 60 s old (proper-lockfile). */
static int lock_dir(struct login *l, int slot, char *dir, vb_error *err)
{
	int64_t deadline = wall_ms() + LOCK_WAIT_MS;
	for (;;) {
		if (mkdir(dir, 0700) == 0) {
			l->locks[slot] = dir;
			return 0;
		}
		if (errno != EEXIST) {
			int e = errno;
			vb_error_errno(err, e, "cannot take claude-code's refresh lock %s", dir);
			free(dir);
			return -1;
		}
		struct stat st;
		if (stat(dir, &st) == 0 && time(NULL) - st.st_mtime > CLAUDE_LOCK_STALE_S) {
			rmdir(dir); /* stale: its holder died */
			continue;
		}
		if (wall_ms() > deadline) {
			vb_error_set(err, VB_E_RUNTIME,
				     "claude-code on this host has been refreshing its login for %d s "
				     "(%s is held)",
				     LOCK_WAIT_MS / 1000, dir);
			free(dir);
			return -1;
		}
		sleep_ms(100);
	}
}

static int read_locked(struct login *l, vb_error *err)
{
	struct stat st;
	if (fstat(l->fd, &st) < 0)
		return vb_error_errno(err, errno, "cannot stat %s", l->path);
	if (st.st_size > (off_t)MAX_LOGIN_FILE)
		return vb_error_set(err, VB_E_USAGE, "%s is larger than 1 MiB", l->path);
	size_t n = (size_t)st.st_size;
	char *text = malloc(n + 1);
	if (!text)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	ssize_t got = pread(l->fd, text, n, 0);
	int rc = 0;
	if (got < 0 || (size_t)got != n) {
		rc = vb_error_errno(err, got < 0 ? errno : EIO, "cannot read %s", l->path);
	} else {
		json_error_t jerr;
		l->root = json_loadb(text, n, 0, &jerr);
		if (!json_is_object(l->root)) {
			json_decref(l->root);
			l->root = NULL;
			rc = vb_error_set(err, VB_E_USAGE, "%s is not a JSON object (line %d)",
					  l->path, jerr.line);
		}
	}
	vb_llm_wipe(text, n);
	free(text);
	return rc;
}

/* Open (path) and read it: only a look (lock false), or locked for a
 * refresh: for claude-code its lock directories first (claude_locks), in
 * the order claude-code takes them, then the file itself (flock). */
static int login_open(struct login *l, const char *path, bool lock, bool claude_locks,
		      const char *what, vb_error *err)
{
	*l = (struct login){ .fd = -1 };
	l->path = realpath(path, NULL);
	if (!l->path)
		return vb_error_errno(err, errno, "cannot open %s", path);
	if (!lock) {
		l->fd = open(l->path, O_RDONLY | O_CLOEXEC);
		if (l->fd < 0)
			return vb_error_errno(err, errno, "cannot open %s", l->path);
		return read_locked(l, err);
	}
	if (claude_locks) {
		/* claude-code's config directory: the file's, as named */
		const char *slash = strrchr(path, '/');
		_cleanup_free_ char *dir = !slash ? strdup(".") :
				   slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
		if (!dir)
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
		_cleanup_free_ char *real_dir = realpath(dir, NULL);
		char *a = vb_strfmt("%s/.oauth_refresh.lock", strcmp(dir, "/") ? dir : "");
		char *b = real_dir ? vb_strfmt("%s.lock", real_dir) : NULL;
		if (!a || !b) {
			free(a);
			free(b);
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
		}
		if (lock_dir(l, 0, a, err) < 0) {
			free(b);
			return -1;
		}
		if (lock_dir(l, 1, b, err) < 0)
			return -1;
	}
	/* the file last: claude-code may have replaced it while we waited */
	if (lock_file(l, what, err) < 0)
		return -1;
	return read_locked(l, err);
}

/* Replace the file by a new one: same directory, 0600, renamed over it. */
static int login_write(struct login *l, vb_error *err)
{
	char *text = json_dumps(l->root, JSON_INDENT(2));
	if (!text)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	size_t n = strlen(text);
	char rnd[17];
	_cleanup_free_ char *tmp = NULL;
	int rc = vb_random_hex(rnd, 8, err);
	if (rc == 0 && !(tmp = vb_strfmt("%s.voidbox-%s.tmp", l->path, rnd)))
		rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
	int fd = -1;
	if (rc == 0 && (fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0)
		rc = vb_error_errno(err, errno, "cannot write next to %s", l->path);
	if (rc == 0 && (vb_write_full(fd, text, n) < 0 || vb_write_full(fd, "\n", 1) < 0 ||
			fsync(fd) < 0))
		rc = vb_error_errno(err, errno, "cannot write %s", tmp);
	if (fd >= 0)
		close(fd);
	if (rc == 0 && rename(tmp, l->path) < 0)
		rc = vb_error_errno(err, errno, "cannot replace %s", l->path);
	if (rc < 0 && tmp)
		unlink(tmp);
	vb_llm_wipe(text, n);
	free(text);
	if (rc == 0) { /* the rename itself, on disk */
		char *slash = strrchr(l->path, '/');
		_cleanup_free_ char *dir = slash ? strndup(l->path, (size_t)(slash - l->path)) : NULL;
		_cleanup_close_ int dfd = dir ? open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
		if (dfd >= 0)
			fsync(dfd);
	}
	return rc;
}

/* ---- the token endpoint -------------------------------------------------- */

struct answer {
	char *buf;
	size_t len;
	bool too_big;
};

static size_t on_data(char *data, size_t size, size_t nmemb, void *opaque)
{
	struct answer *a = opaque;
	size_t n = size * nmemb;
	if (a->len + n > MAX_ANSWER) {
		a->too_big = true;
		return 0;
	}
	char *b = realloc(a->buf, a->len + n + 1);
	if (!b)
		return 0;
	memcpy(b + a->len, data, n);
	a->buf = b;
	a->len += n;
	a->buf[a->len] = '\0';
	return n;
}

/* The token endpoint: the CLI's own, or VOIDBOX_LLM_OAUTH_TOKEN_URL.  A
 * refresh token goes only over https, or plain http to this host (tests). */
static int token_url(const char *def, char *out, size_t n, vb_error *err)
{
	const char *u = getenv(VB_OAUTH_URL_ENV);
	if (!u || !*u)
		u = def;
	bool ok = !strncmp(u, "https://", 8);
	static const char *const local[] = { "http://127.0.0.1:", "http://127.0.0.1/",
					     "http://localhost:", "http://localhost/",
					     "http://[::1]:", "http://[::1]/" };
	for (size_t i = 0; !ok && i < sizeof(local) / sizeof(local[0]); i++)
		ok = !strncmp(u, local[i], strlen(local[i]));
	vb_term_copy(out, n, u, 0);
	if (!ok || strlen(u) >= n)
		return vb_error_set(err, VB_E_USAGE,
				    "%s=\"%s\" is not an https:// URL (plain http only to "
				    "127.0.0.1, localhost or [::1])",
				    VB_OAUTH_URL_ENV, out);
	return 0;
}

/* POST (body) as JSON to (url); the answer's status and body (wiped by the
 * caller).  -1 only when no answer came. */
static int post_json(const char *url, const char *body, long *status, struct answer *a,
		     vb_error *err)
{
	CURL *e = vb_curl_easy(err);
	if (!e)
		return -1;
	struct curl_slist *h = NULL, *t;
	if ((t = curl_slist_append(h, "Content-Type: application/json")))
		h = t;
	if ((t = curl_slist_append(h, "Accept: application/json")))
		h = t;
	if ((t = curl_slist_append(h, "Expect:")))
		h = t;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, HTTP_TIMEOUT_S);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body); /* not copied: the caller wipes it */
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, a);
	CURLcode c = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(e);
	curl_slist_free_all(h);
	if (c != CURLE_OK && !(a->too_big && *status))
		return vb_error_set(err, VB_E_RUNTIME, "%s", curl_easy_strerror(c));
	return 0;
}

/* "error: description" from an OAuth error answer, made safe to show. */
static void oauth_error(const struct answer *a, char *out, size_t n, char *code, size_t cn)
{
	char raw[400] = "";
	json_t *j = a->buf ? json_loadb(a->buf, a->len, 0, NULL) : NULL;
	json_t *e = json_object_get(j, "error");
	const char *c = json_string_value(e);
	const char *d = json_string_value(json_object_get(j, "error_description"));
	if (!c && json_is_object(e)) { /* {"error": {"code"|"type", "message"}} */
		c = json_string_value(json_object_get(e, "code"));
		if (!c)
			c = json_string_value(json_object_get(e, "type"));
		d = json_string_value(json_object_get(e, "message"));
	}
	if (!c)
		c = json_string_value(json_object_get(j, "code"));
	snprintf(raw, sizeof(raw), "%s%s%s", c ? c : "", c && d ? ": " : "", d ? d : "");
	vb_term_copy(code, cn, c ? c : "", 0);
	json_decref(j);
	vb_term_copy(out, n, raw, 0);
}

/* Send the refresh; the endpoint's JSON answer, or an error naming the
 * endpoint and the fix.  (body) is wiped. */
static json_t *refresh(const char *who, const char *fix, const char *def_url, json_t *req,
		       vb_error *err)
{
	char url[512];
	if (token_url(def_url, url, sizeof(url), err) < 0) {
		free_secret_json(req);
		return NULL;
	}
	char *body = json_dumps(req, JSON_COMPACT);
	free_secret_json(req);
	if (!body) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	long status = 0;
	struct answer a = { 0 };
	vb_error e2 = { 0 };
	int rc = post_json(url, body, &status, &a, &e2);
	vb_llm_wipe(body, strlen(body));
	free(body);
	json_t *j = NULL;
	if (rc < 0) {
		vb_error_set(err, VB_E_RUNTIME,
			     "llm provider %s: the login on this host has expired and refreshing it "
			     "failed: cannot reach %s (%s); fix: check the host's network, or %s",
			     who, url, e2.msg, fix);
	} else if (status != 200) {
		char why[400], code[64];
		oauth_error(&a, why, sizeof(why), code, sizeof(code));
		bool dead = !strcmp(code, "invalid_grant") || status == 401 ||
			    !strncmp(code, "refresh_token_", 14);
		if (dead)
			vb_error_set(err, VB_E_USAGE,
				     "llm provider %s: the login on this host has expired and can no "
				     "longer be refreshed (HTTP %ld from %s: %s); fix: %s",
				     who, status, url, why[0] ? why : "refused", fix);
		else
			vb_error_set(err, VB_E_RUNTIME,
				     "llm provider %s: the login on this host has expired and "
				     "refreshing it failed (HTTP %ld from %s: %s); fix: try again "
				     "later, or %s",
				     who, status, url, why[0] ? why : "no reason given", fix);
	} else {
		j = a.buf ? json_loadb(a.buf, a.len, 0, NULL) : NULL;
		if (!json_is_object(j) ||
		    !json_string_value(json_object_get(j, "access_token")) ||
		    !*json_string_value(json_object_get(j, "access_token"))) {
			free_secret_json(j);
			j = NULL;
			vb_error_set(err, VB_E_RUNTIME,
				     "llm provider %s: the token endpoint %s answered without an "
				     "access_token; fix: %s",
				     who, url, fix);
		}
	}
	if (a.buf) {
		vb_llm_wipe(a.buf, a.len);
		free(a.buf);
	}
	return j;
}

static int set_str(json_t *o, const char *key, const char *v, vb_error *err)
{
	if (json_object_set_new(o, key, json_string(v)) < 0)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	return 0;
}

static int dup_access(struct vb_oauth_token *out, const char *tok, vb_error *err)
{
	out->access = strdup(tok);
	return out->access ? 0 : vb_error_set(err, VB_E_RUNTIME, "out of memory");
}

/* ---- claude-code ----------------------------------------------------------- */

int vb_oauth_claude(const char *path, const char *stale, struct vb_oauth_token *out, vb_error *err)
{
	static const char who[] = "claude-personal";
	*out = (struct vb_oauth_token){ 0 };
	struct login l;
	int rc = 0;
	json_t *o = NULL;
	const char *access = NULL;
	/* a look first; the locks only when it needs a refresh, then a
	 * second look under them (someone may have refreshed it meanwhile) */
	for (int locked = 0; locked < 2; locked++) {
		if (locked)
			login_close(&l);
		if ((rc = login_open(&l, path, locked, true, who, err)) < 0)
			goto done;
		o = json_object_get(l.root, "claudeAiOauth");
		access = json_string_value(json_object_get(o, "accessToken"));
		json_t *exp = json_object_get(o, "expiresAt");
		int64_t expires = json_is_number(exp) ? (int64_t)json_number_value(exp) : 0;
		bool expiring = expires && expires <= wall_ms() + VB_OAUTH_MARGIN_MS;
		if (access && *access && !expiring && !(stale && !strcmp(stale, access))) {
			out->expires_ms = expires;
			rc = dup_access(out, access, err);
			goto done;
		}
	}
	const char *rt = json_string_value(json_object_get(o, "refreshToken"));
	if (!json_is_object(o) || !rt || !*rt) {
		rc = vb_error_set(err, VB_E_USAGE,
				  "llm provider %s: the claude-code login in %.400s %s and holds no "
				  "refresh token; fix: " CLAUDE_FIX,
				  who, l.path, access && *access ? "has expired" : "holds no token");
		goto done;
	}
	/* The scopes it has, as claude-code asks for them again. */
	char scope[1024] = "";
	json_t *scopes = json_object_get(o, "scopes"), *s;
	size_t i;
	json_array_foreach(scopes, i, s) {
		size_t n = strlen(scope);
		if (json_string_value(s))
			snprintf(scope + n, sizeof(scope) - n, "%s%s", n ? " " : "",
				 json_string_value(s));
	}
	const char *client = json_string_value(json_object_get(o, "clientId"));
	json_t *req = json_pack("{s:s,s:s,s:s,s:s}", "grant_type", "refresh_token",
				"refresh_token", rt, "client_id", client ? client : CLAUDE_CLIENT_ID,
				"scope", scope[0] ? scope : CLAUDE_SCOPES);
	if (!req) {
		rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
		goto done;
	}
	json_t *j = refresh(who, CLAUDE_FIX, CLAUDE_TOKEN_URL, req, err);
	if (!j) {
		rc = -1;
		goto done;
	}
	int64_t now = wall_ms();
	const char *at = json_string_value(json_object_get(j, "access_token"));
	const char *nrt = json_string_value(json_object_get(j, "refresh_token"));
	json_t *ein = json_object_get(j, "expires_in");
	json_t *rein = json_object_get(j, "refresh_token_expires_in");
	const char *sc = json_string_value(json_object_get(j, "scope"));
	rc = set_str(o, "accessToken", at, err);
	if (rc == 0 && nrt && *nrt)
		rc = set_str(o, "refreshToken", nrt, err);
	out->expires_ms = json_is_number(ein) ? now + (int64_t)(json_number_value(ein) * 1000) : 0;
	if (rc == 0)
		json_object_set_new(o, "expiresAt", out->expires_ms ? json_integer(out->expires_ms) :
								     json_null());
	if (rc == 0 && json_is_number(rein))
		json_object_set_new(o, "refreshTokenExpiresAt",
				    json_integer(now + (int64_t)(json_number_value(rein) * 1000)));
	if (rc == 0 && sc) {
		json_t *arr = json_array();
		_cleanup_free_ char *copy = strdup(sc);
		char *save = NULL;
		for (char *w = copy ? strtok_r(copy, " ", &save) : NULL; w; w = strtok_r(NULL, " ", &save))
			json_array_append_new(arr, json_string(w));
		json_object_set_new(o, "scopes", arr);
	}
	if (rc == 0)
		rc = dup_access(out, at, err);
	free_secret_json(j);
	if (rc == 0)
		rc = login_write(&l, err);
done:
	login_close(&l);
	if (rc < 0)
		vb_oauth_token_clear(out);
	return rc;
}

/* ---- codex ----------------------------------------------------------------- */

/* A JWT's exp claim, in ms; 0 when it has none or is not a JWT. */
static int64_t jwt_exp_ms(const char *jwt)
{
	const char *a = strchr(jwt, '.');
	const char *b = a ? strchr(a + 1, '.') : NULL;
	if (!b || b - a - 1 > 16384)
		return 0;
	size_t n = (size_t)(b - a - 1);
	char b64[16384 + 4];
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		b64[m++] = a[1 + i] == '-' ? '+' : a[1 + i] == '_' ? '/' : a[1 + i];
	while (m % 4)
		b64[m++] = '=';
	unsigned char raw[12300];
	int got = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)m);
	if (got <= 0)
		return 0;
	/* EVP_DecodeBlock counts the padding as zero bytes */
	while (got > 0 && raw[got - 1] == '\0')
		got--;
	json_t *j = json_loadb((const char *)raw, (size_t)got, 0, NULL);
	json_t *exp = json_object_get(j, "exp");
	int64_t ms = json_is_number(exp) ? (int64_t)json_number_value(exp) * 1000 : 0;
	free_secret_json(j);
	vb_llm_wipe(raw, sizeof(raw));
	return ms;
}

int vb_oauth_codex(const char *path, const char *stale, struct vb_oauth_token *out, vb_error *err)
{
	static const char who[] = "codex";
	*out = (struct vb_oauth_token){ 0 };
	struct login l;
	int rc = 0;
	json_t *t = NULL;
	const char *access = NULL;
	for (int locked = 0; locked < 2; locked++) { /* as vb_oauth_claude */
		if (locked)
			login_close(&l);
		if ((rc = login_open(&l, path, locked, false, who, err)) < 0)
			goto done;
		t = json_object_get(l.root, "tokens");
		access = json_string_value(json_object_get(t, "access_token"));
		const char *account = json_string_value(json_object_get(t, "account_id"));
		free(out->account);
		out->account = NULL;
		if (account && *account && !(out->account = strdup(account))) {
			rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
			goto done;
		}
		int64_t expires = access ? jwt_exp_ms(access) : 0;
		bool expiring = expires && expires <= wall_ms() + VB_OAUTH_MARGIN_MS;
		if (access && *access && !expiring && !(stale && !strcmp(stale, access))) {
			out->expires_ms = expires;
			rc = dup_access(out, access, err);
			goto done;
		}
	}
	const char *rt = json_string_value(json_object_get(t, "refresh_token"));
	if (!rt || !*rt) {
		rc = vb_error_set(err, VB_E_USAGE,
				  "llm provider %s: the ChatGPT login in %.400s %s and holds no "
				  "refresh token; fix: " CODEX_FIX,
				  who, l.path, access && *access ? "has expired" : "holds no token");
		goto done;
	}
	json_t *req = json_pack("{s:s,s:s,s:s}", "client_id", CODEX_CLIENT_ID, "grant_type",
				"refresh_token", "refresh_token", rt);
	if (!req) {
		rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
		goto done;
	}
	json_t *j = refresh(who, CODEX_FIX, CODEX_TOKEN_URL, req, err);
	if (!j) {
		rc = -1;
		goto done;
	}
	static const char *const keys[] = { "id_token", "access_token", "refresh_token" };
	for (size_t i = 0; rc == 0 && i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *v = json_string_value(json_object_get(j, keys[i]));
		if (v && *v)
			rc = set_str(t, keys[i], v, err);
	}
	char when[40];
	time_t now = time(NULL);
	struct tm tm;
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	if (rc == 0)
		rc = set_str(l.root, "last_refresh", when, err);
	const char *at = json_string_value(json_object_get(j, "access_token"));
	out->expires_ms = jwt_exp_ms(at);
	if (rc == 0)
		rc = dup_access(out, at, err);
	free_secret_json(j);
	if (rc == 0)
		rc = login_write(&l, err);
done:
	login_close(&l);
	if (rc < 0)
		vb_oauth_token_clear(out);
	return rc;
}
