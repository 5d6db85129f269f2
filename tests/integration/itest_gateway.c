/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Integration tests of the LLM gateway on the host (no VM): a scripted fake
 * provider (tests/fake/fake_llm.c) on the loopback, the gateway fed
 * connections as descriptors as the guest's will be, and libcurl as the
 * agent.  Prints "ok - NAME" / "not ok - NAME" lines.
 *
 *   itest_gateway            the tests
 *   itest_gateway bench N    time to first byte, straight to the fake and
 *                            through the gateway, N requests each (bench/gateway.sh)
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "llm/llm.h"
#include "util/util.h"

#include "itest.h"

static bool near(double a, double b)
{
	return a - b < 1e-9 && b - a < 1e-9;
}
static char fake_bin[PATH_MAX];

/* ---- the fake provider --------------------------------------------------- */

struct fake {
	pid_t pid;
	int in; /* its stdin: closing it stops it */
	unsigned port;
	char dir[64], log[96], url[64];
};

static int fake_start(struct fake *f, const char *script)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/vb-gw-XXXXXX");
	CHECK(mkdtemp(f->dir), "mkdtemp");
	char spath[96];
	snprintf(spath, sizeof(spath), "%s/script.json", f->dir);
	snprintf(f->log, sizeof(f->log), "%s/log.jsonl", f->dir);
	FILE *s = fopen(spath, "w");
	CHECK(s && fputs(script, s) >= 0 && fclose(s) == 0, "script");
	int in[2], out[2];
	CHECK(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0, "pipe");
	f->pid = fork();
	CHECK(f->pid >= 0, "fork");
	if (f->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execl(fake_bin, fake_bin, spath, f->log, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	f->in = in[1];
	char line[32] = "";
	ssize_t n = read(out[0], line, sizeof(line) - 1);
	close(out[0]);
	CHECK(n > 0, "the fake provider (%s) did not start", fake_bin);
	line[n] = '\0';
	f->port = (unsigned)atoi(line);
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u", f->port);
	return 0;
}

static void fake_stop(struct fake *f)
{
	if (f->pid > 0) {
		close(f->in);
		waitpid(f->pid, NULL, 0);
		f->pid = 0;
	}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "%s/log.jsonl", f->dir);
	unlink(cmd);
	snprintf(cmd, sizeof(cmd), "%s/script.json", f->dir);
	unlink(cmd);
	rmdir(f->dir);
}

/* The requests the fake received, as a JSON array. */
static json_t *fake_log(struct fake *f)
{
	json_t *a = json_array();
	FILE *l = fopen(f->log, "r");
	char *line = NULL;
	size_t cap = 0;
	while (l && getline(&line, &cap, l) > 0)
		json_array_append_new(a, json_loads(line, 0, NULL));
	free(line);
	if (l)
		fclose(l);
	return a;
}

static char *file_text(const char *path)
{
	vb_error err = { 0 };
	size_t len;
	return vb_read_file(path, 1 << 24, &len, &err);
}

/* ---- what the gateway reported ------------------------------------------- */

struct seen {
	pthread_mutex_t lock;
	int n, errors;
	struct vb_llm_request last;
	char provider[32], model[128], error[1024];
};

static void on_req(const struct vb_llm_request *r, void *opaque)
{
	struct seen *s = opaque;
	pthread_mutex_lock(&s->lock);
	s->n++;
	s->errors += r->error != NULL;
	s->last = *r;
	snprintf(s->provider, sizeof(s->provider), "%s", r->provider ? r->provider : "");
	snprintf(s->model, sizeof(s->model), "%s", r->model ? r->model : "");
	snprintf(s->error, sizeof(s->error), "%s", r->error ? r->error : "");
	s->last.provider = s->last.model = s->last.error = s->last.path = NULL;
	pthread_mutex_unlock(&s->lock);
}

static struct vb_llm_gateway *gateway(const struct vb_llm_config *cfg,
				      const struct vb_llm_budget *budget, struct seen *seen)
{
	vb_error err = { 0 };
	struct vb_llm_provider *p = vb_llm_provider_new(cfg, &err);
	if (!p) {
		fprintf(stderr, "  provider: %s\n", err.msg);
		return NULL;
	}
	struct vb_llm_gateway_cfg gc = { .provider = p, .on_request = on_req, .opaque = seen,
					 .max_retries = 2, .retry_base_ms = 20 };
	if (budget)
		gc.budget = *budget;
	struct vb_llm_gateway *gw = vb_llm_gateway_new(&gc, &err);
	if (!gw)
		fprintf(stderr, "  gateway: %s\n", err.msg);
	return gw;
}

/* ---- the agent: libcurl over a socketpair -------------------------------- */

struct resp {
	long status;
	char *body;
	size_t len;
	double t0, first, end; /* seconds */
};

static double now_s(void)
{
	return (double)vb_now_ns() / 1e9;
}

/* libcurl 7.88 (Debian 12) cannot be handed a connected socket
 * (CURL_SOCKOPT_ALREADY_CONNECTED is broken there: curl/curl#10626), so the
 * agent connects to a unix socket of the test's, and each connection's
 * accepted end, an AF_UNIX stream like a socketpair's, goes to the gateway
 * under test through vb_llm_gateway_serve_fd. */
static struct {
	int fd;
	char path[108];
	pthread_t thread;
	struct vb_llm_gateway *_Atomic gw;
	_Atomic int accepted;
	bool keep_alive; /* let curl reuse its connection */
} lsn = { .fd = -1 };

static void *accept_loop(void *unused)
{
	(void)unused;
	for (;;) {
		int fd = accept4(lsn.fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL;
		}
		vb_error err = { 0 };
		lsn.accepted++;
		struct vb_llm_gateway *gw = lsn.gw;
		if (!gw)
			close(fd);
		else if (vb_llm_gateway_serve_fd(gw, fd, &err) < 0)
			fprintf(stderr, "  serve_fd: %s\n", err.msg);
	}
}

static int listener_start(void)
{
	snprintf(lsn.path, sizeof(lsn.path), "/tmp/vb-gw-%d.sock", (int)getpid());
	unlink(lsn.path);
	lsn.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", lsn.path);
	if (lsn.fd < 0 || bind(lsn.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lsn.fd, 16) < 0)
		return -1;
	return pthread_create(&lsn.thread, NULL, accept_loop, NULL) == 0 ? 0 : -1;
}

static void listener_stop(void)
{
	shutdown(lsn.fd, SHUT_RDWR);
	pthread_join(lsn.thread, NULL);
	close(lsn.fd);
	unlink(lsn.path);
}

static size_t collect(char *data, size_t size, size_t nmemb, void *opaque)
{
	struct resp *r = opaque;
	size_t n = size * nmemb;
	if (!r->first)
		r->first = now_s();
	char *b = realloc(r->body, r->len + n + 1);
	if (!b)
		return 0;
	r->body = b;
	memcpy(r->body + r->len, data, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

/* POST (body) to (path) through (gw) (or to (direct_url) by TCP), with the
 * header lines (h1), (h2) if not NULL. */
static int post(struct vb_llm_gateway *gw, const char *direct_url, const char *path,
		const char *h1, const char *h2, const char *body, struct resp *r)
{
	memset(r, 0, sizeof(*r));
	static CURL *kept;
	CURL *e = lsn.keep_alive && kept ? kept : curl_easy_init();
	if (lsn.keep_alive) {
		kept = e;
		curl_easy_reset(e);
	}
	char url[256];
	snprintf(url, sizeof(url), "%s%s", gw ? "http://127.0.0.1" : direct_url, path);
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	h = curl_slist_append(h, "anthropic-version: 2023-06-01");
	h = curl_slist_append(h, "Expect:");
	if (h1)
		h = curl_slist_append(h, h1);
	if (h2)
		h = curl_slist_append(h, h2);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, lsn.keep_alive ? 0L : 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	if (getenv("VB_CURL_VERBOSE"))
		curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
	lsn.gw = gw;
	if (gw)
		curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, lsn.path);
	r->t0 = now_s();
	CURLcode rc = curl_easy_perform(e);
	r->end = now_s();
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(h);
	if (!lsn.keep_alive) {
		curl_easy_cleanup(e);
		if (e == kept)
			kept = NULL;
	}
	if (!r->body)
		r->body = strdup("");
	if (rc != CURLE_OK) {
		fprintf(stderr, "  curl: %s\n", curl_easy_strerror(rc));
		return -1;
	}
	return 0;
}

static char *auth_header(struct vb_llm_gateway *gw, bool bearer)
{
	return bearer ? vb_strfmt("Authorization: Bearer %s", vb_llm_gateway_token(gw)) :
			vb_strfmt("x-api-key: %s", vb_llm_gateway_token(gw));
}

/* The message of an Anthropic or OpenAI error body. */
static const char *error_message(const char *body, char *out, size_t n)
{
	json_t *j = json_loads(body, 0, NULL);
	const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
	snprintf(out, n, "%s", m ? m : "");
	json_decref(j);
	return out;
}

#define MSG_BODY                                                                              \
	"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":100,\"stream\":true,"                 \
	"\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"

/* ---- the tests ----------------------------------------------------------- */

static char canary[64];

static int t_canary_only_in_injected_header(void)
{
	struct fake f;
	CHECK(fake_start(&f, "{\"turns\":[{\"text\":\"hello\"}]}") == 0, "fake");
	setenv("ANTHROPIC_API_KEY", canary, 1);
	struct seen seen = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct vb_llm_config cfg = { .provider = "claude", .base_url = f.url };
	struct vb_llm_gateway *gw = gateway(&cfg, NULL, &seen);
	CHECK(gw, "gateway");
	_cleanup_free_ char *auth = auth_header(gw, false);
	struct resp r;
	int rc = post(gw, NULL, "/v1/messages?beta=true", auth, NULL, MSG_BODY, &r);
	char token[128];
	snprintf(token, sizeof(token), "%s", vb_llm_gateway_token(gw));
	vb_llm_gateway_free(gw);
	json_t *log = fake_log(&f);
	_cleanup_free_ char *raw = file_text(f.log);
	fake_stop(&f);
	CHECK(rc == 0 && r.status == 200, "status %ld: %s", r.status, r.body);
	CHECK(strstr(r.body, "event: message_stop"), "the stream reached the agent: %s", r.body);
	CHECK(!strstr(r.body, canary), "the host key reached the agent");
	CHECK(json_array_size(log) == 1, "%zu requests upstream", json_array_size(log));
	json_t *req = json_array_get(log, 0);
	json_t *hdrs = json_object_get(req, "headers");
	const char *xk = json_string_value(json_object_get(hdrs, "x-api-key"));
	CHECK(xk && !strcmp(xk, canary), "x-api-key upstream is %s", xk ? xk : "(none)");
	CHECK(!json_object_get(hdrs, "authorization"), "an Authorization header went upstream");
	/* the canary appears once in everything the provider saw: that header */
	const char *first = strstr(raw, canary);
	CHECK(first && !strstr(first + 1, canary), "the canary reached the provider elsewhere");
	CHECK(!strstr(raw, token), "the placeholder reached the provider");
	CHECK(!strcmp(json_string_value(json_object_get(req, "path")), "/v1/messages?beta=true"),
	      "path upstream: %s", json_string_value(json_object_get(req, "path")));
	CHECK(json_is_object(json_object_get(req, "body")), "the body went upstream as sent");
	json_decref(log);
	free(r.body);
	return 0;
}

static int t_wrong_or_missing_placeholder_refused(void)
{
	struct fake f;
	CHECK(fake_start(&f, "{\"turns\":[{\"text\":\"hello\"}]}") == 0, "fake");
	setenv("ANTHROPIC_API_KEY", canary, 1);
	struct seen seen = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct vb_llm_config cfg = { .provider = "claude", .base_url = f.url };
	struct vb_llm_gateway *gw = gateway(&cfg, NULL, &seen);
	CHECK(gw, "gateway");
	char wrong[160];
	snprintf(wrong, sizeof(wrong), "x-api-key: %s", vb_llm_gateway_token(gw));
	wrong[strlen(wrong) - 1] ^= 1; /* one character off */
	struct resp r1, r2, r3, r4;
	int rc1 = post(gw, NULL, "/v1/messages", wrong, NULL, MSG_BODY, &r1);
	int rc2 = post(gw, NULL, "/v1/messages", NULL, NULL, MSG_BODY, &r2);
	int rc3 = post(gw, NULL, "/v1/messages", "Authorization: Bearer sk-voidbox-", NULL, MSG_BODY,
		       &r3);
	_cleanup_free_ char *bearer = auth_header(gw, true);
	int rc4 = post(gw, NULL, "/v1/messages", bearer, NULL, MSG_BODY, &r4);
	struct vb_llm_totals t;
	vb_llm_gateway_totals(gw, &t);
	char failure[1024];
	bool failed = vb_llm_gateway_failure(gw, failure, sizeof(failure));
	vb_llm_gateway_free(gw);
	json_t *log = fake_log(&f);
	fake_stop(&f);
	char m[512];
	CHECK(rc1 == 0 && r1.status == 401, "wrong token: %ld", r1.status);
	CHECK(strstr(error_message(r1.body, m, sizeof(m)), "placeholder"), "message: %s", r1.body);
	CHECK(rc2 == 0 && r2.status == 401, "no token: %ld", r2.status);
	CHECK(rc3 == 0 && r3.status == 401, "a prefix of the token: %ld", r3.status);
	CHECK(rc4 == 0 && r4.status == 200, "the right token as a bearer: %ld %s", r4.status,
	      r4.body);
	CHECK(t.unauthorized == 3 && t.requests == 1, "unauthorized %llu, requests %llu",
	      (unsigned long long)t.unauthorized, (unsigned long long)t.requests);
	CHECK(json_array_size(log) == 1, "%zu requests upstream (only the good one)",
	      json_array_size(log));
	CHECK(!failed, "a guest's bad token is not the stage's failure: %s", failure);
	json_decref(log);
	free(r1.body);
	free(r2.body);
	free(r3.body);
	free(r4.body);
	return 0;
}

static int t_sse_streamed_as_it_arrives(void)
{
	struct fake f;
	/* 10 events, 150 ms apart: the whole answer takes 1.35 s */
	CHECK(fake_start(&f, "{\"turns\":[{\"text\":\"streamed words\",\"delay_ms\":150,"
			     "\"tool_use\":{\"name\":\"Bash\",\"input\":{\"command\":\"ls\"}}}]}") == 0,
	      "fake");
	setenv("ANTHROPIC_API_KEY", canary, 1);
	struct seen seen = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct vb_llm_config cfg = { .provider = "claude", .base_url = f.url };
	struct vb_llm_gateway *gw = gateway(&cfg, NULL, &seen);
	CHECK(gw, "gateway");
	_cleanup_free_ char *auth = auth_header(gw, false);
	struct resp r;
	int rc = post(gw, NULL, "/v1/messages", auth, NULL, MSG_BODY, &r);
	vb_llm_gateway_free(gw);
	fake_stop(&f);
	CHECK(rc == 0 && r.status == 200, "status %ld", r.status);
	double ttfb = r.first - r.t0, total = r.end - r.t0;
	printf("# sse: first byte after %.0f ms, last after %.0f ms\n", ttfb * 1e3, total * 1e3);
	CHECK(total > 1.2, "the fake's delays: %.3f s", total);
	CHECK(ttfb < 0.15, "the first event waited for later ones: %.3f s", ttfb);
	CHECK(strstr(r.body, "input_json_delta") && strstr(r.body, "event: message_stop"),
	      "the whole stream: %s", r.body);
	free(r.body);
	return 0;
}

static int t_usage_tokens_and_cost(void)
{
	struct fake f;
	CHECK(fake_start(&f, "{\"turns\":[{\"text\":\"a\",\"usage\":{\"input_tokens\":1000,"
			     "\"output_tokens\":500}},{\"text\":\"b\",\"usage\":{\"input_tokens\":"
			     "2000,\"output_tokens\":1000}}]}") == 0,
	      "fake");
	setenv("ANTHROPIC_API_KEY", canary, 1);
	setenv("OPENAI_API_KEY", canary, 1);
	struct seen s1 = { .lock = PTHREAD_MUTEX_INITIALIZER }, s2 = s1, s3 = s1;
	struct vb_llm_config c1 = { .provider = "claude", .base_url = f.url };
	struct vb_llm_gateway *gw = gateway(&c1, NULL, &s1);
	CHECK(gw, "gateway");
	_cleanup_free_ char *auth = auth_header(gw, false);
	struct resp r;
	int rc = post(gw, NULL, "/v1/messages", auth, NULL, MSG_BODY, &r);
	struct vb_llm_totals t;
	vb_llm_gateway_totals(gw, &t);
	vb_llm_gateway_free(gw);
	CHECK(rc == 0 && r.status == 200, "status %ld", r.status);
	free(r.body);
	CHECK(s1.n == 1, "%d llm.request records", s1.n);
	CHECK(!strcmp(s1.provider, "claude") && !strcmp(s1.model, "claude-sonnet-4-5"),
	      "provider %s model %s", s1.provider, s1.model);
	CHECK(s1.last.input_tokens == 1000 && s1.last.output_tokens == 500, "tokens %llu/%llu",
	      (unsigned long long)s1.last.input_tokens, (unsigned long long)s1.last.output_tokens);
	/* claude-sonnet-4-5: $3 in, $15 out per million */
	CHECK(near(s1.last.cost_usd, 0.0105), "cost %.6f", s1.last.cost_usd);
	CHECK(s1.last.status == 200 && s1.last.latency_ms >= 0 && !s1.error[0], "status %d, %s",
	      s1.last.status, s1.error);
	CHECK(t.requests == 1 && t.input_tokens == 1000 && t.output_tokens == 500 &&
		      near(t.cost_usd, 0.0105),
	      "totals %llu req %llu in %llu out $%f", (unsigned long long)t.requests,
	      (unsigned long long)t.input_tokens, (unsigned long long)t.output_tokens, t.cost_usd);

	/* codex over the Responses API, as a bearer token */
	struct vb_llm_config c2 = { .provider = "codex", .base_url = f.url };
	gw = gateway(&c2, NULL, &s2);
	CHECK(gw, "gateway");
	_cleanup_free_ char *bearer = auth_header(gw, true);
	rc = post(gw, NULL, "/v1/responses", bearer, NULL,
		  "{\"model\":\"gpt-4o\",\"stream\":true,\"input\":\"hi\"}", &r);
	vb_llm_gateway_free(gw);
	CHECK(rc == 0 && r.status == 200, "status %ld", r.status);
	CHECK(strstr(r.body, "response.completed"), "%s", r.body);
	free(r.body);
	CHECK(s2.n == 1 && s2.last.input_tokens == 2000 && s2.last.output_tokens == 1000,
	      "tokens %llu/%llu", (unsigned long long)s2.last.input_tokens,
	      (unsigned long long)s2.last.output_tokens);
	/* gpt-4o: $2.50 in, $10 out per million */
	CHECK(near(s2.last.cost_usd, 0.015), "cost %.6f", s2.last.cost_usd);

	/* a local provider costs nothing, a non-streaming answer counts too */
	struct vb_llm_config c3 = { .provider = "ollama", .base_url = f.url };
	gw = gateway(&c3, NULL, &s3);
	CHECK(gw, "gateway");
	_cleanup_free_ char *a3 = auth_header(gw, true);
	rc = post(gw, NULL, "/v1/messages", a3, NULL,
		  "{\"model\":\"claude-sonnet-4-5\",\"stream\":false,\"messages\":[]}", &r);
	vb_llm_gateway_free(gw);
	json_t *log = fake_log(&f);
	fake_stop(&f);
	CHECK(rc == 0 && r.status == 200, "status %ld", r.status);
	free(r.body);
	CHECK(s3.n == 1 && s3.last.input_tokens == 2000 && s3.last.cost_usd == 0,
	      "ollama: %llu tokens, $%f", (unsigned long long)s3.last.input_tokens,
	      s3.last.cost_usd);
	const char *ah = json_string_value(
		json_object_get(json_object_get(json_array_get(log, 1), "headers"), "authorization"));
	CHECK(ah && !strcmp(ah + 7, canary), "codex's bearer upstream: %s", ah ? ah : "(none)");
	json_decref(log);
	return 0;
}

static int t_budget_stops_the_crossing_request(void)
{
	struct fake f;
	CHECK(fake_start(&f, "{\"turns\":[{\"text\":\"a\",\"usage\":{\"input_tokens\":10,"
			     "\"output_tokens\":5}}]}") == 0,
	      "fake");
	setenv("ANTHROPIC_API_KEY", canary, 1);
	struct vb_llm_config cfg = { .provider = "claude", .base_url = f.url };
	/* requests: the third is refused */
	struct seen s1 = { .lock = PTHREAD_MUTEX_INITIALIZER }, s2 = s1;
	struct vb_llm_budget b1 = { .max_requests = 2 };
	struct vb_llm_gateway *gw = gateway(&cfg, &b1, &s1);
	CHECK(gw, "gateway");
	_cleanup_free_ char *auth = auth_header(gw, false);
	struct resp r[3];
	for (int i = 0; i < 3; i++)
		CHECK(post(gw, NULL, "/v1/messages", auth, NULL, MSG_BODY, &r[i]) == 0, "post");
	struct vb_llm_totals t;
	vb_llm_gateway_totals(gw, &t);
	char failure[1024], m[512];
	bool failed = vb_llm_gateway_failure(gw, failure, sizeof(failure));
	vb_llm_gateway_free(gw);
	json_t *log = fake_log(&f);
	CHECK(r[0].status == 200 && r[1].status == 200, "%ld %ld", r[0].status, r[1].status);
	CHECK(r[2].status == 402, "the third: %ld", r[2].status);
	CHECK(strstr(error_message(r[2].body, m, sizeof(m)),
		     "budget exceeded (max_requests 2: 2 made)"),
	      "the agent is told: %s", r[2].body);
	CHECK(failed && !strcmp(failure, "budget exceeded (max_requests 2: 2 made)"), "failure: %s",
	      failure);
	CHECK(t.requests == 2 && t.refused == 1 && t.input_tokens == 20 && t.output_tokens == 10,
	      "totals say how far it got");
	CHECK(json_array_size(log) == 2, "%zu requests upstream", json_array_size(log));
	CHECK(s1.n == 3 && s1.last.status == 402 && strstr(s1.error, "budget exceeded"),
	      "the refusal is recorded: %d %s", s1.n, s1.error);
	json_decref(log);
	for (int i = 0; i < 3; i++)
		free(r[i].body);

	/* tokens: 15 a request, and its input estimated at a token per 4 bytes
	 * of body: the first goes (0 + est), the second (15 + est), not the
	 * third (30 + est) */
	uint64_t est = strlen(MSG_BODY) / 4;
	struct vb_llm_budget b2 = { .max_tokens = 15 + est + 5 };
	gw = gateway(&cfg, &b2, &s2);
	CHECK(gw, "gateway");
	_cleanup_free_ char *auth2 = auth_header(gw, false);
	for (int i = 0; i < 3; i++)
		CHECK(post(gw, NULL, "/v1/messages", auth2, NULL, MSG_BODY, &r[i]) == 0, "post");
	vb_llm_gateway_totals(gw, &t);
	failed = vb_llm_gateway_failure(gw, failure, sizeof(failure));
	vb_llm_gateway_free(gw);
	fake_stop(&f);
	char want[128];
	snprintf(want, sizeof(want), "budget exceeded (max_tokens %llu: 30 used, this request needs ~%llu more)",
		 (unsigned long long)b2.max_tokens, (unsigned long long)est);
	CHECK(r[0].status == 200 && r[1].status == 200 && r[2].status == 402, "%ld %ld %ld",
	      r[0].status, r[1].status, r[2].status);
	CHECK(failed && !strcmp(failure, want), "failure: %s", failure);
	CHECK(t.input_tokens + t.output_tokens == 30, "totals: %llu tokens",
	      (unsigned long long)(t.input_tokens + t.output_tokens));
	for (int i = 0; i < 3; i++)
		free(r[i].body);
	return 0;
}

static int t_cost_budget(void)
{
	/* claude-sonnet-4-5, 1000 in and 500 out: $0.0105 a request */
	struct fake f;
	CHECK(fake_start(&f, "{\"turns\":[{\"text\":\"a\",\"usage\":{\"input_tokens\":1000,"
			     "\"output_tokens\":500}}]}") == 0,
	      "fake");
	setenv("ANTHROPIC_API_KEY", canary, 1);
	struct seen seen = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct vb_llm_config cfg = { .provider = "claude", .base_url = f.url };
	struct vb_llm_budget b = { .max_cost_usd = 0.015 };
	struct vb_llm_gateway *gw = gateway(&cfg, &b, &seen);
	CHECK(gw, "gateway");
	_cleanup_free_ char *auth = auth_header(gw, false);
	struct resp r[3];
	for (int i = 0; i < 3; i++)
		CHECK(post(gw, NULL, "/v1/messages", auth, NULL, MSG_BODY, &r[i]) == 0, "post");
	struct vb_llm_totals t;
	vb_llm_gateway_totals(gw, &t);
	char failure[1024];
	bool failed = vb_llm_gateway_failure(gw, failure, sizeof(failure));
	vb_llm_gateway_free(gw);
	json_t *log = fake_log(&f);
	fake_stop(&f);
	CHECK(r[0].status == 200 && r[1].status == 200 && r[2].status == 402, "%ld %ld %ld",
	      r[0].status, r[1].status, r[2].status);
	CHECK(failed && strstr(failure, "budget exceeded (max_cost_usd 0.0150: $0.0210 spent"),
	      "failure: %s", failure);
	CHECK(near(t.cost_usd, 0.021) && t.requests == 2, "totals: $%f, %llu requests", t.cost_usd,
	      (unsigned long long)t.requests);
	CHECK(json_array_size(log) == 2, "%zu requests upstream", json_array_size(log));
	json_decref(log);
	for (int i = 0; i < 3; i++)
		free(r[i].body);
	return 0;
}

static int t_oversized_request(void)
{
	struct fake f;
	CHECK(fake_start(&f, "{\"turns\":[{\"text\":\"a\"}]}") == 0, "fake");
	setenv("ANTHROPIC_API_KEY", canary, 1);
	struct seen seen = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct vb_llm_config cfg = { .provider = "claude", .base_url = f.url };
	struct vb_llm_gateway *gw = gateway(&cfg, NULL, &seen);
	CHECK(gw, "gateway");
	_cleanup_free_ char *auth = auth_header(gw, false);
	size_t big = (16u << 20) + 1;
	char *body = malloc(big + 1);
	CHECK(body, "malloc");
	memset(body, ' ', big);
	body[big] = '\0';
	struct resp r;
	int rc = post(gw, NULL, "/v1/messages", auth, NULL, body, &r);
	free(body);
	vb_llm_gateway_free(gw);
	json_t *log = fake_log(&f);
	fake_stop(&f);
	CHECK(rc == 0 && r.status == 413, "status %ld", r.status);
	CHECK(json_array_size(log) == 0, "%zu requests upstream", json_array_size(log));
	json_decref(log);
	free(r.body);
	return 0;
}

/* One scripted failure: the agent's status, the message it is shown (and
 * the gateway's failure) contain each of (want), the fake saw (upstream)
 * requests. */
static int provider_failure(const char *script, const char *provider, const char *base_url,
			    const char *body, long want_status, size_t upstream, const char *want1,
			    const char *want2, const char *want3)
{
	struct fake f;
	CHECK(fake_start(&f, script) == 0, "fake");
	setenv("ANTHROPIC_API_KEY", canary, 1);
	struct seen seen = { .lock = PTHREAD_MUTEX_INITIALIZER };
	char url[128];
	snprintf(url, sizeof(url), "%s", base_url ? base_url : f.url);
	struct vb_llm_config cfg = { .provider = provider, .base_url = url };
	struct vb_llm_gateway *gw = gateway(&cfg, NULL, &seen);
	CHECK(gw, "gateway");
	_cleanup_free_ char *auth = auth_header(gw, false);
	struct resp r;
	int rc = post(gw, NULL, "/v1/messages", auth, NULL, body ? body : MSG_BODY, &r);
	char failure[1024], m[1024];
	bool failed = vb_llm_gateway_failure(gw, failure, sizeof(failure));
	vb_llm_gateway_free(gw);
	json_t *log = fake_log(&f);
	fake_stop(&f);
	error_message(r.body, m, sizeof(m));
	printf("# %s\n", m);
	CHECK(rc == 0 && r.status == want_status, "status %ld: %s", r.status, r.body);
	CHECK(failed && !strcmp(failure, m), "the failure (%s) is what the agent saw", failure);
	const char *want[] = { want1, want2, want3 };
	for (int i = 0; i < 3; i++)
		CHECK(!want[i] || strstr(m, want[i]), "no \"%s\" in: %s", want[i], m);
	CHECK(json_array_size(log) == upstream, "%zu requests upstream, not %zu",
	      json_array_size(log), upstream);
	CHECK(!strstr(m, canary), "the key is in the message");
	json_decref(log);
	free(r.body);
	return 0;
}

static int t_upstream_401(void)
{
	return provider_failure("{\"turns\":[{\"status\":401,\"error_type\":\"authentication_error\","
				  "\"error\":\"invalid x-api-key\"}]}",
				  "claude", NULL, NULL, 401, 1, "llm provider claude: HTTP 401 from http://127.0.0.1:",
				  "/v1/messages (authentication_error: invalid x-api-key)",
				  "fix: set a valid ANTHROPIC_API_KEY in the host's environment");
}

static int t_429_then_success(void)
{
	struct fake f;
	CHECK(fake_start(&f, "{\"turns\":[{\"status\":429,\"error_type\":\"rate_limit_error\","
			     "\"retry_after\":\"0\"},{\"text\":\"after the retry\"}]}") == 0,
	      "fake");
	setenv("ANTHROPIC_API_KEY", canary, 1);
	struct seen seen = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct vb_llm_config cfg = { .provider = "claude", .base_url = f.url };
	struct vb_llm_gateway *gw = gateway(&cfg, NULL, &seen);
	CHECK(gw, "gateway");
	_cleanup_free_ char *auth = auth_header(gw, false);
	struct resp r;
	int rc = post(gw, NULL, "/v1/messages", auth, NULL, MSG_BODY, &r);
	char failure[1024];
	bool failed = vb_llm_gateway_failure(gw, failure, sizeof(failure));
	vb_llm_gateway_free(gw);
	json_t *log = fake_log(&f);
	fake_stop(&f);
	CHECK(rc == 0 && r.status == 200, "status %ld: %s", r.status, r.body);
	CHECK(strstr(r.body, "message_stop") && !strstr(r.body, "rate_limit"),
	      "the agent sees only the answer: %s", r.body);
	CHECK(json_array_size(log) == 2, "%zu requests upstream", json_array_size(log));
	CHECK(!failed, "failure: %s", failure);
	CHECK(seen.n == 1 && seen.last.attempts == 2 && seen.last.status == 200, "%d records, %d attempts",
	      seen.n, seen.last.attempts);
	json_decref(log);
	free(r.body);
	return 0;
}

static int t_500_retried_then_failed(void)
{
	/* max_retries 2: three attempts */
	return provider_failure("{\"turns\":[{\"status\":500,\"error_type\":\"api_error\","
				"\"error\":\"Internal server error\"}]}",
				"claude", NULL, NULL, 500, 3, "llm provider claude: HTTP 500 from http://127.0.0.1:",
				"after 3 attempts (api_error: Internal server error)", "; fix: ");
}

static int t_connection_refused(void)
{
	/* a port nothing listens on: the fake's own, once it is gone, would
	 * race; port 1 needs root to listen on */
	return provider_failure("{\"turns\":[]}", "ollama", "http://127.0.0.1:1", NULL, 502, 0,
				"llm provider ollama: cannot reach http://127.0.0.1:1/v1/messages",
				"fix: start Ollama on the host (`ollama serve`) or set llm.base_url",
				NULL);
}

static int t_unknown_model(void)
{
	return provider_failure("{\"models\":[\"claude-known\"],\"turns\":[{\"text\":\"x\"}]}",
				"claude", NULL,
				"{\"model\":\"claude-nope\",\"stream\":true,\"messages\":[]}", 404, 1,
				"llm provider claude: model \"claude-nope\" is not known at http://127.0.0.1:",
				"(not_found_error: model: claude-nope)",
				"fix: set llm.model (or VOIDBOX_LLM_MODEL) to a model the provider serves");
}

static int t_claude_personal_oauth_bearer(void)
{
	struct fake f;
	CHECK(fake_start(&f, "{\"turns\":[{\"text\":\"hello\"}]}") == 0, "fake");
	char home[96], cmd[200];
	snprintf(home, sizeof(home), "%s/home", f.dir);
	snprintf(cmd, sizeof(cmd), "%s/.claude", home);
	vb_error err = { 0 };
	CHECK(vb_mkdir_p(cmd, 0700, &err) == 0, "%s", err.msg);
	snprintf(cmd, sizeof(cmd), "%s/.claude/.credentials.json", home);
	FILE *c = fopen(cmd, "w");
	CHECK(c, "credentials");
	fprintf(c, "{\"claudeAiOauth\":{\"accessToken\":\"%s\",\"refreshToken\":\"r\","
		   "\"expiresAt\":%lld}}",
		canary, (long long)time(NULL) * 1000 + 3600000);
	fclose(c);
	char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	setenv("HOME", home, 1);
	unsetenv("CLAUDE_CONFIG_DIR");
	struct seen seen = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct vb_llm_config cfg = { .provider = "claude-personal", .base_url = f.url };
	struct vb_llm_gateway *gw = gateway(&cfg, NULL, &seen);
	if (old_home)
		setenv("HOME", old_home, 1);
	free(old_home);
	CHECK(gw, "gateway");
	_cleanup_free_ char *auth = auth_header(gw, false);
	struct resp r;
	int rc = post(gw, NULL, "/v1/messages", auth, "anthropic-beta: fine-grained-tool-streaming",
		      MSG_BODY, &r);
	vb_llm_gateway_free(gw);
	json_t *log = fake_log(&f);
	unlink(cmd);
	snprintf(cmd, sizeof(cmd), "%s/.claude", home);
	rmdir(cmd);
	rmdir(home);
	fake_stop(&f);
	CHECK(rc == 0 && r.status == 200, "status %ld: %s", r.status, r.body);
	json_t *h = json_object_get(json_array_get(log, 0), "headers");
	const char *ah = json_string_value(json_object_get(h, "authorization"));
	const char *beta = json_string_value(json_object_get(h, "anthropic-beta"));
	char want[128];
	snprintf(want, sizeof(want), "Bearer %s", canary);
	CHECK(ah && !strcmp(ah, want), "authorization upstream: %s", ah ? ah : "(none)");
	CHECK(!json_object_get(h, "x-api-key"), "the placeholder went upstream as x-api-key");
	CHECK(beta && !strcmp(beta, "fine-grained-tool-streaming,oauth-2025-04-20"),
	      "anthropic-beta upstream: %s", beta ? beta : "(none)");
	json_decref(log);
	free(r.body);
	return 0;
}

static int t_keep_alive_connection(void)
{
	struct fake f;
	CHECK(fake_start(&f, "{\"turns\":[{\"text\":\"first answer\"},{\"text\":\"second answer\"},"
			     "{\"text\":\"third answer\"}]}") == 0,
	      "fake");
	setenv("ANTHROPIC_API_KEY", canary, 1);
	struct seen seen = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct vb_llm_config cfg = { .provider = "claude", .base_url = f.url };
	struct vb_llm_gateway *gw = gateway(&cfg, NULL, &seen);
	CHECK(gw, "gateway");
	_cleanup_free_ char *auth = auth_header(gw, false);
	int before = lsn.accepted;
	lsn.keep_alive = true;
	struct resp r[3];
	int rc = 0;
	for (int i = 0; i < 3; i++)
		rc |= post(gw, NULL, "/v1/messages", auth, NULL, MSG_BODY, &r[i]);
	lsn.keep_alive = false;
	struct resp last;
	rc |= post(gw, NULL, "/v1/messages", auth, NULL, MSG_BODY, &last); /* frees the kept handle */
	int conns = lsn.accepted - before;
	vb_llm_gateway_free(gw);
	fake_stop(&f);
	CHECK(rc == 0, "post");
	CHECK(strstr(r[0].body, "\"first") && strstr(r[1].body, "\"second") &&
		      strstr(r[2].body, "\"third"),
	      "three answers in order");
	CHECK(conns == 2, "%d connections for 4 requests (3 on one)", conns);
	CHECK(seen.n == 4, "%d records", seen.n);
	for (int i = 0; i < 3; i++)
		free(r[i].body);
	free(last.body);
	return 0;
}

/* 4 MiB of deltas: more than the gateway lets pile up (it pauses the
 * provider), byte for byte what the provider sent. */
static int t_large_answer_whole(void)
{
	size_t big = 4u << 20;
	char *script = malloc(big + 64);
	CHECK(script, "malloc");
	int n = snprintf(script, 64, "{\"turns\":[{\"text\":\"");
	for (size_t i = 0; i < big; i++)
		script[n + i] = (char)('a' + i % 26);
	strcpy(script + n + big, "\"}]}");
	struct fake f;
	int rc = fake_start(&f, script);
	free(script);
	CHECK(rc == 0, "fake");
	setenv("ANTHROPIC_API_KEY", canary, 1);
	struct seen seen = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct vb_llm_config cfg = { .provider = "claude", .base_url = f.url };
	struct vb_llm_gateway *gw = gateway(&cfg, NULL, &seen);
	CHECK(gw, "gateway");
	_cleanup_free_ char *auth = auth_header(gw, false);
	struct resp direct, through;
	int rc1 = post(NULL, f.url, "/v1/messages", "x-api-key: x", NULL, MSG_BODY, &direct);
	int rc2 = post(gw, NULL, "/v1/messages", auth, NULL, MSG_BODY, &through);
	vb_llm_gateway_free(gw);
	fake_stop(&f);
	CHECK(rc1 == 0 && rc2 == 0 && through.status == 200, "status %ld", through.status);
	CHECK(direct.len > big && through.len == direct.len &&
		      !memcmp(direct.body, through.body, direct.len),
	      "%zu bytes through, %zu direct", through.len, direct.len);
	CHECK(seen.n == 1 && seen.last.output_tokens == 5 && !seen.error[0],
	      "accounted after the last byte: %d, %s", seen.n, seen.error);
	printf("# 4 MiB answer: %.0f ms direct, %.0f ms through the gateway\n",
	       (direct.end - direct.t0) * 1e3, (through.end - through.t0) * 1e3);
	free(direct.body);
	free(through.body);
	return 0;
}

static size_t hang_up(char *data, size_t size, size_t nmemb, void *opaque)
{
	(void)data;
	(void)opaque;
	(void)size;
	(void)nmemb;
	return 0; /* curl aborts the transfer and closes the connection */
}

/* The agent goes away mid-stream: the provider's transfer stops, the
 * request is recorded as cut, the gateway serves the next one. */
static int t_agent_hangs_up_mid_stream(void)
{
	struct fake f;
	CHECK(fake_start(&f, "{\"turns\":[{\"text\":\"slow words\",\"delay_ms\":300},"
			     "{\"text\":\"next\"}]}") == 0,
	      "fake");
	setenv("ANTHROPIC_API_KEY", canary, 1);
	struct seen seen = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct vb_llm_config cfg = { .provider = "claude", .base_url = f.url };
	struct vb_llm_gateway *gw = gateway(&cfg, NULL, &seen);
	CHECK(gw, "gateway");
	_cleanup_free_ char *auth = auth_header(gw, false);
	CURL *e = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, auth);
	lsn.gw = gw;
	curl_easy_setopt(e, CURLOPT_URL, "http://127.0.0.1/v1/messages");
	curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, lsn.path);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, MSG_BODY);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, hang_up);
	double t0 = now_s();
	CURLcode cc = curl_easy_perform(e);
	curl_easy_cleanup(e);
	curl_slist_free_all(h);
	/* the gateway notices at its next write: within an event or two */
	int waited = 0;
	while (!seen.n && waited++ < 100)
		usleep(20000);
	double after = now_s() - t0;
	struct resp r;
	int rc = post(gw, NULL, "/v1/messages", auth, NULL, MSG_BODY, &r);
	vb_llm_gateway_free(gw);
	fake_stop(&f);
	CHECK(cc == CURLE_WRITE_ERROR, "curl: %s", curl_easy_strerror(cc));
	CHECK(seen.n >= 1, "no record of the cut request after %.1f s", after);
	CHECK(rc == 0 && r.status == 200 && strstr(r.body, "message_stop"), "the next request: %ld",
	      r.status);
	CHECK(seen.n == 2 && seen.errors == 1, "%d records, %d with an error", seen.n, seen.errors);
	free(r.body);
	return 0;
}

/* What a raw connection to the gateway gets for (request): the status
 * line's code, or -1. */
static int raw_request(const char *request, char *reply, size_t n)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", lsn.path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	struct timeval tv = { .tv_sec = 10 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (vb_write_full(fd, request, strlen(request)) < 0) {
		close(fd);
		return -1;
	}
	ssize_t got = read(fd, reply, n - 1);
	close(fd);
	if (got < 12)
		return -1;
	reply[got] = '\0';
	return atoi(reply + 9);
}

/* A guest that knows the placeholder still cannot aim the credential at
 * another host: the request target must be a path. */
static int t_target_must_be_a_path(void)
{
	struct fake f, evil;
	CHECK(fake_start(&f, "{\"turns\":[{\"text\":\"hello\"}]}") == 0, "fake");
	CHECK(fake_start(&evil, "{\"turns\":[{\"text\":\"stolen\"}]}") == 0, "fake");
	setenv("ANTHROPIC_API_KEY", canary, 1);
	struct seen seen = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct vb_llm_config cfg = { .provider = "claude", .base_url = f.url };
	struct vb_llm_gateway *gw = gateway(&cfg, NULL, &seen);
	CHECK(gw, "gateway");
	lsn.gw = gw;
	const char *pre[] = { "@127.0.0.1:", "http://127.0.0.1:", ":" };
	const char *post_[] = { "/v1/messages", "/v1/messages", "@127.0.0.1/v1/messages" };
	const char *targets[3];
	int codes[3];
	char reply[4096];
	for (int i = 0; i < 3; i++) {
		char target[128], req[1024];
		snprintf(target, sizeof(target), "%s%u%s", pre[i], evil.port, post_[i]);
		targets[i] = pre[i];
		snprintf(req, sizeof(req),
			 "POST %s HTTP/1.1\r\nHost: x\r\nx-api-key: %s\r\nContent-Type: "
			 "application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
			 target, vb_llm_gateway_token(gw), strlen(MSG_BODY), MSG_BODY);
		codes[i] = raw_request(req, reply, sizeof(reply));
	}
	vb_llm_gateway_free(gw);
	json_t *l1 = fake_log(&f), *l2 = fake_log(&evil);
	fake_stop(&f);
	fake_stop(&evil);
	for (int i = 0; i < 3; i++)
		CHECK(codes[i] >= 400 && codes[i] < 500, "%s: %d", targets[i], codes[i]);
	CHECK(json_array_size(l1) == 0 && json_array_size(l2) == 0, "%zu and %zu requests went out",
	      json_array_size(l1), json_array_size(l2));
	json_decref(l1);
	json_decref(l2);
	return 0;
}

/* Freeing a gateway does not wait for a guest that keeps a connection
 * open and says nothing. */
static int t_free_with_an_idle_connection(void)
{
	setenv("ANTHROPIC_API_KEY", canary, 1);
	struct seen seen = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct vb_llm_config cfg = { .provider = "claude", .base_url = "http://127.0.0.1:1" };
	struct vb_llm_gateway *gw = gateway(&cfg, NULL, &seen);
	CHECK(gw, "gateway");
	lsn.gw = gw;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", lsn.path);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect");
	CHECK(vb_write_full(fd, "POST /v1/messages HTTP/1.1\r\n", 28) == 0, "write");
	usleep(100000);
	double t0 = now_s();
	vb_llm_gateway_free(gw);
	double took = now_s() - t0;
	close(fd);
	CHECK(took < 2.0, "vb_llm_gateway_free took %.1f s", took);
	return 0;
}

/* The fake checks what comes back (a tool loop's tool_result): a request
 * without the expected text gets a 400, passed to the agent as it came. */
static int t_fake_checks_the_request(void)
{
	struct fake f;
	CHECK(fake_start(&f, "{\"turns\":[{\"tool_use\":{\"name\":\"Bash\",\"id\":\"toolu_1\","
			     "\"input\":{\"command\":\"ls\"}}},{\"expect\":\"toolu_1\",\"text\":"
			     "\"done\"}]}") == 0,
	      "fake");
	setenv("ANTHROPIC_API_KEY", canary, 1);
	struct seen seen = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct vb_llm_config cfg = { .provider = "claude", .base_url = f.url };
	struct vb_llm_gateway *gw = gateway(&cfg, NULL, &seen);
	CHECK(gw, "gateway");
	_cleanup_free_ char *auth = auth_header(gw, false);
	struct resp r1, r2;
	int rc1 = post(gw, NULL, "/v1/messages", auth, NULL, MSG_BODY, &r1);
	int rc2 = post(gw, NULL, "/v1/messages", auth, NULL, MSG_BODY, &r2); /* no tool_result */
	char failure[1024], m[512];
	bool failed = vb_llm_gateway_failure(gw, failure, sizeof(failure));
	vb_llm_gateway_free(gw);
	fake_stop(&f);
	CHECK(rc1 == 0 && r1.status == 200 && strstr(r1.body, "\"tool_use\""), "%ld %s", r1.status,
	      r1.body);
	CHECK(rc2 == 0 && r2.status == 400, "status %ld", r2.status);
	CHECK(strstr(error_message(r2.body, m, sizeof(m)), "expected toolu_1 in the request"), "%s",
	      r2.body);
	CHECK(!failed, "an agent's bad request is not the provider's failure: %s", failure);
	free(r1.body);
	free(r2.body);
	return 0;
}

/* ---- bench --------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* (n) requests straight to the fake and (n) through the gateway,
 * interleaved so that both see the same machine; medians into (ttfb_ms)
 * and (total_ms), each [direct, through]. */
static int bench_pair(const char *script, int n, double ttfb_ms[2], double total_ms[2])
{
	struct fake f;
	if (fake_start(&f, script) != 0)
		return -1;
	struct seen seen = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct vb_llm_config cfg = { .provider = "claude", .base_url = f.url };
	struct vb_llm_gateway *gw = gateway(&cfg, NULL, &seen);
	if (!gw)
		return -1;
	_cleanup_free_ char *auth = auth_header(gw, false);
	double *v[4];
	for (int k = 0; k < 4; k++)
		v[k] = calloc((size_t)n, sizeof(double));
	int rc = 0;
	for (int i = 0; i < n && rc == 0; i++) {
		for (int through = 0; through < 2; through++) {
			struct resp r;
			if (post(through ? gw : NULL, f.url, "/v1/messages",
				 through ? auth : "x-api-key: direct", NULL, MSG_BODY, &r) < 0 ||
			    r.status != 200)
				rc = -1;
			v[through][i] = (r.first - r.t0) * 1e3;
			v[2 + through][i] = (r.end - r.t0) * 1e3;
			free(r.body);
		}
	}
	vb_llm_gateway_free(gw);
	fake_stop(&f);
	for (int k = 0; k < 4; k++) {
		qsort(v[k], (size_t)n, sizeof(double), cmp_double);
		(k < 2 ? ttfb_ms : total_ms)[k % 2] = v[k][n / 2];
		free(v[k]);
	}
	return rc;
}

static int bench(int n)
{
	setenv("ANTHROPIC_API_KEY", canary, 1);
	double ttfb[2], total[2], big_ttfb[2], big_total[2];
	/* a short answer: time to first byte */
	if (bench_pair("{\"turns\":[{\"text\":\"Hello from the fake provider.\"}]}", n, ttfb,
		       total) < 0)
		return 1;
	/* a 4 MiB answer: throughput */
	size_t big = 4u << 20;
	char *script = malloc(big + 64);
	int k = snprintf(script, 64, "{\"turns\":[{\"text\":\"");
	for (size_t i = 0; i < big; i++)
		script[k + i] = (char)('a' + i % 26);
	strcpy(script + k + big, "\"}]}");
	int nb = n / 5 > 3 ? n / 5 : 3;
	int rc = bench_pair(script, nb, big_ttfb, big_total);
	free(script);
	if (rc < 0)
		return 1;
	printf("LLM gateway vs straight to the fake provider, same run, interleaved\n");
	printf("time to first byte (median of %d): direct %.2f ms, through the gateway %.2f ms, "
	       "added %.2f ms (goal <= 5 ms)\n",
	       n, ttfb[0], ttfb[1], ttfb[1] - ttfb[0]);
	printf("short answer, whole (median of %d): direct %.2f ms, through the gateway %.2f ms\n", n,
	       total[0], total[1]);
	printf("4 MiB answer (median of %d): direct %.1f ms (%.0f MiB/s), through the gateway "
	       "%.1f ms (%.0f MiB/s)\n",
	       nb, big_total[0], 4 / (big_total[0] / 1e3), big_total[1],
	       4 / (big_total[1] / 1e3));
	return ttfb[1] - ttfb[0] <= 5.0 ? 0 : 3;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	char self[PATH_MAX];
	snprintf(self, sizeof(self), "%s", argv[0]);
	snprintf(fake_bin, sizeof(fake_bin), "%s/fake_llm", dirname(self));
	vb_error err = { 0 };
	char hex[33];
	if (vb_random_hex(hex, 16, &err) < 0)
		return 1;
	snprintf(canary, sizeof(canary), "sk-ant-canary-%s", hex);
	/* the provider's environment is the test's; overrides would change it */
	unsetenv("VOIDBOX_LLM_PROVIDER");
	unsetenv("VOIDBOX_LLM_MODEL");
	unsetenv("VOIDBOX_LLM_BASE_URL");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (listener_start() < 0) {
		printf("not ok - a unix socket for the agent side: %s\n", strerror(errno));
		return 1;
	}
	if (argc == 3 && !strcmp(argv[1], "bench")) {
		int rc = bench(atoi(argv[2]) > 0 ? atoi(argv[2]) : 50);
		listener_stop();
		return rc;
	}
	if (access(fake_bin, X_OK) != 0) {
		printf("not ok - the fake provider %s is missing (make all)\n", fake_bin);
		return 1;
	}
	report("canary key reaches the provider only in the injected header",
	       t_canary_only_in_injected_header());
	report("wrong or missing placeholder: 401, nothing forwarded",
	       t_wrong_or_missing_placeholder_refused());
	report("SSE passes through as it arrives", t_sse_streamed_as_it_arrives());
	report("usage: tokens and cost per request and in the totals", t_usage_tokens_and_cost());
	report("budget: the request that would cross it is refused",
	       t_budget_stops_the_crossing_request());
	report("budget: cost", t_cost_budget());
	report("a request over 16 MiB: 413, nothing forwarded", t_oversized_request());
	report("provider 401: one message naming provider, URL and fix", t_upstream_401());
	report("provider 429 then success: retried", t_429_then_success());
	report("provider 500: retried, then failed", t_500_retried_then_failed());
	report("provider unreachable: connection refused", t_connection_refused());
	report("unknown model", t_unknown_model());
	report("claude-personal: the OAuth login as a bearer token, with its beta flag",
	       t_claude_personal_oauth_bearer());
	report("several requests on one kept-alive connection", t_keep_alive_connection());
	report("a large answer passes whole", t_large_answer_whole());
	report("the agent hangs up mid-stream", t_agent_hangs_up_mid_stream());
	report("the request target must be a path (no other host gets the key)",
	       t_target_must_be_a_path());
	report("freeing a gateway does not wait for an idle guest connection",
	       t_free_with_an_idle_connection());
	report("the fake checks the request (other 4xx pass through)", t_fake_checks_the_request());
	listener_stop();
	curl_global_cleanup();
	return failures ? 1 : 0;
}
