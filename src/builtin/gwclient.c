/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The builtin agent reaches its stage's gateway in-process, as an agent in
 * a guest does: over HTTP, so the same code checks the token, swaps in the
 * credential, enforces the budget and records the request.  libcurl cannot
 * be handed an already connected socket on the libcurl we build against
 * (curl/curl#10626), so it connects to a private unix socket whose accepted
 * ends go to vb_llm_gateway_serve_fd.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "builtin/builtin.h"
#include "util/curl.h"
#include "util/util.h"

struct vb_builtin_gw {
	struct vb_llm_gateway *gw;
	int (*cancelled)(void *opaque);
	void *opaque;
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	pthread_t thread;
	int started;
};

static void *accept_loop(void *arg)
{
	struct vb_builtin_gw *c = arg;
	for (;;) {
		int fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL; /* shut down */
		}
		vb_error err = { 0 };
		vb_llm_gateway_serve_fd(c->gw, fd, &err); /* takes fd; a failure shows as curl's */
	}
}

struct vb_builtin_gw *vb_builtin_gw_open(struct vb_llm_gateway *gw, int (*cancelled)(void *),
					 void *opaque, vb_error *err)
{
	_cleanup_free_ char *root = vb_runtime_root(err);
	if (!root)
		return NULL;
	char hex[17];
	if (vb_random_hex(hex, 8, err) < 0)
		return NULL;
	struct vb_builtin_gw *c = calloc(1, sizeof(*c));
	if (!c) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	c->gw = gw;
	c->cancelled = cancelled;
	c->opaque = opaque;
	int n = snprintf(c->path, sizeof(c->path), "%s/agent-%s.sock", root, hex);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
		vb_error_set(err, VB_E_RUNTIME, "the runtime directory %s is too long for a socket", root);
		free(c);
		return NULL;
	}
	memcpy(sa.sun_path, c->path, (size_t)n + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(c->fd, 8) < 0) {
		vb_error_errno(err, errno, "cannot open the agent's gateway socket %s", c->path);
		vb_builtin_gw_close(c);
		return NULL;
	}
	if (pthread_create(&c->thread, NULL, accept_loop, c) != 0) {
		vb_error_set(err, VB_E_RUNTIME, "cannot start the agent's gateway thread");
		vb_builtin_gw_close(c);
		return NULL;
	}
	c->started = 1;
	return c;
}

void vb_builtin_gw_close(struct vb_builtin_gw *c)
{
	if (!c)
		return;
	if (c->fd >= 0) {
		shutdown(c->fd, SHUT_RDWR); /* wakes accept() */
		if (c->started)
			pthread_join(c->thread, NULL);
		close(c->fd);
		unlink(c->path);
	}
	free(c);
}

struct sink {
	CURL *h;
	struct vb_builtin_stream *st;
	int mode;          /* 0: not known yet, 1: events to (st), 2: kept in (buf) */
	char *buf;
	size_t len, max;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *opaque)
{
	struct sink *s = opaque;
	size_t n = size * nmemb;
	if (!s->mode) { /* the headers are in: a 200 of events streams */
		long status = 0;
		char *type = NULL;
		curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(s->h, CURLINFO_CONTENT_TYPE, &type);
		s->mode = s->st && status == 200 && type && strstr(type, "text/event-stream") ? 1 : 2;
	}
	if (s->mode == 1)
		return vb_builtin_stream_feed(s->st, data, n) < 0 ? 0 : n;
	if (s->len + n > s->max)
		return 0; /* too large: curl fails the transfer */
	char *b = realloc(s->buf, s->len + n + 1);
	if (!b)
		return 0;
	s->buf = b;
	memcpy(s->buf + s->len, data, n);
	s->len += n;
	s->buf[s->len] = '\0';
	return n;
}

/* libcurl asks about once a second, and as data comes: a cancelled run
 * does not wait for the model to finish its answer. */
static int on_progress(void *opaque, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	struct vb_builtin_gw *c = opaque;
	return c->cancelled && c->cancelled(c->opaque) ? 1 : 0;
}

int vb_builtin_gw_post(struct vb_builtin_gw *c, const char *path, const char *body,
		     long timeout_ms, size_t max, struct vb_builtin_stream *st, long *status,
		     char **resp, size_t *resp_len, vb_error *err)
{
	CURL *h = vb_curl_easy(err);
	if (!h)
		return -1;
	_cleanup_free_ char *url = vb_strfmt("http://voidbox-gateway%s", path);
	_cleanup_free_ char *key = vb_strfmt("x-api-key: %s", vb_llm_gateway_token(c->gw));
	struct curl_slist *hdrs = NULL;
	const char *lines[] = { "content-type: application/json", "anthropic-version: 2023-06-01",
				key };
	struct sink s = { .h = h, .st = st, .max = max };
	int rc = 0;
	for (size_t i = 0; url && key && i < sizeof(lines) / sizeof(lines[0]); i++) {
		struct curl_slist *l = curl_slist_append(hdrs, lines[i]);
		if (!l) {
			curl_slist_free_all(hdrs);
			hdrs = NULL;
			break;
		}
		hdrs = l;
	}
	if (!url || !key || !hdrs) {
		rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->path);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
	if (timeout_ms > 0)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	CURLcode cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	if (s.mode == 1 && (cc == CURLE_OK || vb_builtin_stream_error(st))) {
		*resp = NULL; /* it went to (st), which says what was wrong */
		*resp_len = 0;
		goto out;
	}
	if (cc == CURLE_ABORTED_BY_CALLBACK) {
		rc = vb_error_set(err, VB_E_CANCELLED, "cancelled");
		goto out;
	}
	if (cc != CURLE_OK) {
		rc = vb_error_set(err, cc == CURLE_OPERATION_TIMEDOUT ? VB_E_TIMEOUT : VB_E_RUNTIME,
				  "model request through the gateway failed: %s",
				  curl_easy_strerror(cc));
		goto out;
	}
	*resp = s.buf ? s.buf : strdup("");
	*resp_len = s.len;
	s.buf = NULL;
	if (!*resp)
		rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
out:
	free(s.buf);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	return rc;
}
