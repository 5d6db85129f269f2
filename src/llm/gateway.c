/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The LLM gateway's HTTP side.  libmicrohttpd serves connections handed in
 * as descriptors (no listening socket), one thread per connection, so that a
 * response can be fed by a reader that blocks: each connection's thread
 * drives its own libcurl transfer to the provider (a curl multi handle used
 * from that thread only) and hands every chunk to MHD as it arrives, which
 * keeps server-sent events unbuffered.  A request is admitted (placeholder
 * token, budget), forwarded with the real credential, retried on 429/5xx
 * until its status is final, and only then answered: the agent never sees
 * an attempt that was retried.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "llm/llm.h"
#include "util/curl.h"
#include "util/term.h"
#include "util/util.h"

#define MAX_BODY (16u << 20)       /* a request bigger than this is refused (413) */
#define MAX_ERR_BODY (64u << 10)   /* of an error answer, kept for the message */
#define PAUSE_AT (256u << 10)      /* pause the provider when the agent lags this much */
#define MAX_CONNECTIONS 16         /* with MAX_BODY: 256 MiB at most held for a guest */
#define TOKEN_PREFIX "sk-voidbox-"

struct vb_llm_gateway {
	struct MHD_Daemon *mhd;
	struct vb_llm_provider *provider;
	struct vb_llm_budget budget;
	struct vb_llm_shared_budget *shared; /* borrowed; NULL: none */
	vb_llm_request_fn on_request;
	void *opaque;
	int max_retries, retry_base_ms;
	char token[sizeof(TOKEN_PREFIX) + 48];
	atomic_bool stopping;

	pthread_mutex_t lock; /* the fields below */
	struct vb_llm_totals totals;
	char failure[1024];
	enum vb_llm_budget_hit failure_budget; /* the failure was a budget's refusal */
};

/* One request on one connection, from its first byte to its last. */
struct req {
	struct vb_llm_gateway *gw;
	int64_t t0;
	char *body;
	size_t len, cap;
	bool too_big;
	bool unauthorized;  /* its upload is read and dropped */
	bool bearer;        /* the agent sent its placeholder as a bearer token */
	char path[512];
	char url[2048];     /* upstream, without the query (for messages) */
	char model[128];
	bool model_req;     /* counted and budgeted */
	bool sse;
	bool shared_taken;  /* admitted by the shared budget, not settled yet */
	uint64_t need_tokens; /* the estimate it was admitted with */
	double need_cost;

	CURL *easy;
	CURLM *multi;
	struct curl_slist *hdrs;
	char *auth;         /* the credential's header line (wiped) */
	bool transfer_done, headers_done, committed, paused, accounted;
	CURLcode result;
	long status;
	int attempts;
	int64_t ttfb;
	struct curl_slist *resp_hdrs; /* of the current attempt */
	char *buf;          /* bytes from the provider not yet given to the agent */
	size_t blen, boff, bcap;
	struct vb_llm_usage_scan scan;
};

/* ---- pure helpers -------------------------------------------------------- */

bool vb_llm_token_equal(const char *got, size_t got_len, const char *want)
{
	size_t n = strlen(want);
	volatile unsigned char diff = got_len != n;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(i < got_len ? got[i] : 0) ^ (unsigned char)want[i];
	return diff == 0;
}

const char *vb_llm_token_from(const char *x_api_key, const char *authorization, bool *bearer)
{
	*bearer = false;
	if (x_api_key && *x_api_key)
		return x_api_key;
	if (authorization && !strncasecmp(authorization, "Bearer ", 7)) {
		*bearer = true;
		const char *t = authorization + 7;
		while (*t == ' ')
			t++;
		return t;
	}
	return NULL;
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
	size_t m = strlen(suffix);
	return n >= m && !memcmp(s + n - m, suffix, m);
}

bool vb_llm_is_model_path(const char *path)
{
	size_t n = strcspn(path, "?");
	while (n && path[n - 1] == '/')
		n--;
	return ends_with(path, n, "/messages") || ends_with(path, n, "/responses") ||
	       ends_with(path, n, "/chat/completions");
}

const char *vb_llm_base_path(enum vb_llm_wire wire)
{
	return wire == VB_LLM_WIRE_OPENAI ? "/v1" : "";
}

static bool openai_shaped(const char *path)
{
	return strstr(path, "/responses") || strstr(path, "/completions");
}

static int64_t since_ms(int64_t t0)
{
	return (vb_now_ns() - t0) / 1000000;
}

/* ---- answers the gateway makes itself ------------------------------------ */

/* An error in the wire format the agent speaks, so that it shows (message);
 * x-should-retry stops the Anthropic and OpenAI SDKs from retrying what the
 * gateway already retried or refused. */
static enum MHD_Result answer_error(struct MHD_Connection *c, const char *path, unsigned status,
				    const char *type, const char *message)
{
	json_t *j = openai_shaped(path) ?
			    json_pack("{s:{s:s,s:s,s:s}}", "error", "message", message, "type", type,
				      "code", type) :
			    json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", type,
				      "message", message);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!text)
		return MHD_NO;
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_add_response_header(r, "x-should-retry", "false");
	enum MHD_Result rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static void set_failure(struct vb_llm_gateway *gw, const char *msg)
{
	pthread_mutex_lock(&gw->lock);
	if (!gw->failure[0])
		snprintf(gw->failure, sizeof(gw->failure), "%s", msg);
	pthread_mutex_unlock(&gw->lock);
}

static void emit(struct req *q, int status, uint64_t in, uint64_t out, double cost,
		 const char *error)
{
	struct vb_llm_gateway *gw = q->gw;
	if (!gw->on_request || !q->model_req)
		return;
	struct vb_llm_request ev = {
		.provider = vb_llm_provider_name(gw->provider),
		.model = q->model[0] ? q->model : NULL,
		.path = q->path,
		.input_tokens = in,
		.output_tokens = out,
		.cost_usd = cost,
		.latency_ms = since_ms(q->t0),
		.ttfb_ms = q->ttfb >= 0 ? q->ttfb : -1,
		.status = status,
		.attempts = q->attempts,
		.error = error,
	};
	gw->on_request(&ev, gw->opaque);
}

/* ---- admission ----------------------------------------------------------- */

/* The request that would cross a limit is refused: the requests it would
 * be, the tokens spent plus its input (estimated at 4 bytes a token), the
 * cost spent plus that input's price.  The stage's budget is asked first,
 * then the run's (shared); admitted requests are counted in both now. */
static bool admit(struct req *q, char *why, size_t n)
{
	struct vb_llm_gateway *gw = q->gw;
	struct vb_llm_usage est = { .input_tokens = q->len / 4 };
	double est_cost = vb_llm_provider_is_local(gw->provider) ?
				  0 :
				  vb_llm_cost_usd(q->model, &est, NULL);
	enum vb_llm_budget_hit hit = VB_LLM_BUDGET_NONE;
	pthread_mutex_lock(&gw->lock);
	struct vb_llm_totals *t = &gw->totals;
	if (!vb_llm_budget_allows(&gw->budget, "", t->requests, t->input_tokens + t->output_tokens,
				  t->cost_usd, est.input_tokens, est_cost, why, n))
		hit = VB_LLM_BUDGET_STAGE;
	else if (gw->shared &&
		 !vb_llm_shared_budget_take(gw->shared, est.input_tokens, est_cost, why, n))
		hit = VB_LLM_BUDGET_RUN;
	if (!hit) {
		t->requests++;
		q->shared_taken = gw->shared != NULL;
		q->need_tokens = est.input_tokens;
		q->need_cost = est_cost;
	} else {
		t->refused++;
		if (!gw->failure[0]) {
			snprintf(gw->failure, sizeof(gw->failure), "%s", why);
			gw->failure_budget = hit;
		}
	}
	pthread_mutex_unlock(&gw->lock);
	return !hit;
}

/* The shared budget's reservation becomes what the request took (nothing
 * for one that failed before an answer). */
static void settle_shared(struct req *q, uint64_t in, uint64_t out, double cost)
{
	if (!q->shared_taken)
		return;
	q->shared_taken = false;
	vb_llm_shared_budget_settle(q->gw->shared, q->need_tokens, q->need_cost, in, out, cost);
}

/* ---- the upstream transfer ----------------------------------------------- */

static size_t on_header(char *data, size_t size, size_t nmemb, void *opaque)
{
	struct req *q = opaque;
	size_t n = size * nmemb;
	if (n >= 5 && !memcmp(data, "HTTP/", 5)) { /* a new response (or a 100) */
		curl_slist_free_all(q->resp_hdrs);
		q->resp_hdrs = NULL;
		return n;
	}
	size_t len = n;
	while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		len--;
	if (!len) {
		long status = 0;
		curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200) {
			q->status = status;
			q->headers_done = true;
		}
		return n;
	}
	char line[4096];
	if (len < sizeof(line)) {
		memcpy(line, data, len);
		line[len] = '\0';
		struct curl_slist *l = curl_slist_append(q->resp_hdrs, line);
		if (l)
			q->resp_hdrs = l;
	}
	return n;
}

static bool buf_add(struct req *q, const char *data, size_t n)
{
	if (q->boff && q->boff == q->blen)
		q->boff = q->blen = 0;
	if (q->blen + n > q->bcap) {
		size_t cap = q->bcap ? q->bcap : 16384;
		while (cap < q->blen + n)
			cap *= 2;
		char *b = realloc(q->buf, cap);
		if (!b)
			return false;
		q->buf = b;
		q->bcap = cap;
	}
	memcpy(q->buf + q->blen, data, n);
	q->blen += n;
	return true;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *opaque)
{
	struct req *q = opaque;
	size_t n = size * nmemb;
	/* Before the answer is committed to the agent, curl may already bring
	 * the start of a success's body (kept whole, it is about to be passed
	 * on) or an error's (its head is kept for the message). */
	if (!q->committed && !(q->headers_done && q->status < 400)) {
		size_t keep = q->blen < MAX_ERR_BODY ? MAX_ERR_BODY - q->blen : 0;
		if (keep)
			buf_add(q, data, n < keep ? n : keep);
		return n;
	}
	if (q->blen - q->boff >= PAUSE_AT) {
		q->paused = true;
		return CURL_WRITEFUNC_PAUSE;
	}
	if (!buf_add(q, data, n))
		return 0; /* out of memory: the transfer fails */
	if (q->committed) /* commit() scans what came before */
		vb_llm_usage_feed(&q->scan, data, n);
	return n;
}

static enum MHD_Result collect_arg(void *opaque, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	struct req *q = opaque;
	size_t n = strlen(q->url);
	char *k = curl_easy_escape(NULL, key, 0);
	char *v = value ? curl_easy_escape(NULL, value, 0) : NULL;
	if (k)
		snprintf(q->url + n, sizeof(q->url) - n, "%s%s%s%s", strchr(q->url, '?') ? "&" : "?",
			 k, v ? "=" : "", v ? v : "");
	curl_free(k);
	curl_free(v);
	return MHD_YES;
}

static bool hop_by_hop(const char *name)
{
	static const char *const skip[] = {
		"host", "connection", "keep-alive", "proxy-connection", "proxy-authorization",
		"te", "trailer", "transfer-encoding", "upgrade", "content-length", "expect",
		"accept-encoding", "x-api-key", "authorization", "chatgpt-account-id",
	};
	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (!strcasecmp(name, skip[i]))
			return true;
	return false;
}

struct hdr_ctx {
	struct req *q;
	bool oauth; /* claude-personal: its beta flag joins the agent's */
	bool beta_seen;
	bool failed;
};

static enum MHD_Result collect_header(void *opaque, enum MHD_ValueKind kind, const char *key,
			  const char *value)
{
	(void)kind;
	struct hdr_ctx *h = opaque;
	if (hop_by_hop(key))
		return MHD_YES;
	_cleanup_free_ char *line = NULL;
	if (h->oauth && !strcasecmp(key, "anthropic-beta")) {
		h->beta_seen = true;
		line = vb_strfmt("%s: %s,oauth-2025-04-20", key, value ? value : "");
	} else {
		line = vb_strfmt("%s: %s", key, value ? value : "");
	}
	struct curl_slist *l = line ? curl_slist_append(h->q->hdrs, line) : NULL;
	if (!l)
		h->failed = true;
	else
		h->q->hdrs = l;
	return MHD_YES;
}

static void drop_transfer(struct req *q)
{
	if (q->easy) {
		if (q->multi)
			curl_multi_remove_handle(q->multi, q->easy);
		curl_easy_cleanup(q->easy);
		q->easy = NULL;
	}
	curl_slist_free_all(q->resp_hdrs);
	q->resp_hdrs = NULL;
}

/* Start one attempt. */
static int start_attempt(struct req *q, struct MHD_Connection *c, const char *method,
			 vb_error *err)
{
	drop_transfer(q);
	q->transfer_done = q->headers_done = q->paused = false;
	q->status = 0;
	q->blen = q->boff = 0;
	q->attempts++;
	CURL *e = curl_easy_init();
	if (!e)
		return vb_error_set(err, VB_E_RUNTIME, "curl_easy_init failed");
	q->easy = e;
	/* The query MHD took apart, put back; q->url stays without it. */
	char full[sizeof(q->url)];
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, q);
	snprintf(full, sizeof(full), "%s", q->url);
	q->url[strcspn(q->url, "?")] = '\0';
	curl_easy_setopt(e, CURLOPT_URL, full);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 15000L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	/* A provider silent for 10 minutes is gone (claude-code's own default
	 * request timeout); streams send pings far more often. */
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 600L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, q->hdrs);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, q);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, q);
	if (!strcmp(method, "POST")) {
		curl_easy_setopt(e, CURLOPT_POST, 1L);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, q->body ? q->body : "");
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->len);
	} else if (!strcmp(method, "HEAD")) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET")) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
		if (q->len) {
			curl_easy_setopt(e, CURLOPT_POSTFIELDS, q->body);
			curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->len);
		}
	}
	if (curl_multi_add_handle(q->multi, e) != CURLM_OK)
		return vb_error_set(err, VB_E_RUNTIME, "curl_multi_add_handle failed");
	return 0;
}

/* Let the transfer make progress, waiting at most (wait_ms) for it. */
static void drive(struct req *q, int wait_ms)
{
	int running = 0;
	curl_multi_perform(q->multi, &running);
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(q->multi, &left)))
		if (m->msg == CURLMSG_DONE && m->easy_handle == q->easy) {
			q->transfer_done = true;
			q->result = m->data.result;
		}
	if (!running && !q->transfer_done) {
		q->transfer_done = true;
		q->result = CURLE_OK;
	}
	if (q->transfer_done || q->blen > q->boff)
		return;
	curl_multi_poll(q->multi, NULL, 0, wait_ms, NULL);
}

/* The provider's own words about an error, made safe to show. */
static void upstream_message(struct req *q, char *out, size_t n)
{
	char raw[512] = "";
	json_t *j = q->blen ? json_loadb(q->buf + q->boff, q->blen - q->boff, 0, NULL) : NULL;
	json_t *e = json_object_get(j, "error");
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *type = json_string_value(json_object_get(e, "type"));
	if (!msg)
		msg = json_string_value(e); /* Ollama: {"error": "..."} */
	if (msg)
		snprintf(raw, sizeof(raw), "%s%s%s", type ? type : "", type ? ": " : "", msg);
	else if (q->blen)
		snprintf(raw, sizeof(raw), "%.*s", (int)(q->blen - q->boff < 200 ? q->blen - q->boff : 200),
			 q->buf + q->boff);
	json_decref(j);
	vb_term_copy(out, n, raw, 0);
}

static bool model_unknown(struct req *q)
{
	if (q->status < 400 || q->status >= 500)
		return false;
	char body[2048];
	size_t n = q->blen - q->boff < sizeof(body) - 1 ? q->blen - q->boff : sizeof(body) - 1;
	memcpy(body, q->buf ? q->buf + q->boff : "", n);
	body[n] = '\0';
	if (strstr(body, "model_not_found"))
		return true;
	return q->status == 404 && strcasestr(body, "model");
}

static unsigned retry_after_ms(struct req *q)
{
	for (struct curl_slist *l = q->resp_hdrs; l; l = l->next)
		if (!strncasecmp(l->data, "retry-after:", 12)) {
			long s = strtol(l->data + 12, NULL, 10);
			return s > 0 ? (unsigned)(s < 30 ? s : 30) * 1000 : 0;
		}
	return 0;
}

static void sleep_ms_unless_stopping(struct vb_llm_gateway *gw, unsigned ms)
{
	while (ms && !atomic_load(&gw->stopping)) {
		unsigned step = ms < 50 ? ms : 50;
		struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)step * 1000000L };
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

/* ---- streaming the answer to the agent ----------------------------------- */

static void account(struct req *q)
{
	if (q->accounted)
		return;
	q->accounted = true;
	vb_llm_usage_end(&q->scan);
	struct vb_llm_usage *u = &q->scan.u;
	struct vb_llm_gateway *gw = q->gw;
	/* The provider's word for the model it ran, which is what it bills. */
	if (u->model[0])
		snprintf(q->model, sizeof(q->model), "%s", u->model);
	double cost = vb_llm_provider_is_local(gw->provider) ? 0 : vb_llm_cost_usd(q->model, u, NULL);
	uint64_t in = u->input_tokens + u->cache_write_tokens + u->cache_read_tokens;
	if (q->model_req) {
		pthread_mutex_lock(&gw->lock);
		gw->totals.input_tokens += in;
		gw->totals.output_tokens += u->output_tokens;
		gw->totals.cost_usd += cost;
		pthread_mutex_unlock(&gw->lock);
		settle_shared(q, in, u->output_tokens, cost);
	}
	const char *error = NULL;
	char msg[256];
	if (!q->transfer_done || q->result != CURLE_OK) {
		snprintf(msg, sizeof(msg), "the stream was cut: %s",
			 !q->transfer_done ? "the agent closed the connection" :
					     curl_easy_strerror(q->result));
		error = msg;
	}
	emit(q, (int)q->status, in, u->output_tokens, cost, error);
}

static ssize_t read_body(void *opaque, uint64_t pos, char *out, size_t max)
{
	(void)pos;
	struct req *q = opaque;
	for (;;) {
		if (q->blen > q->boff) {
			size_t n = q->blen - q->boff < max ? q->blen - q->boff : max;
			memcpy(out, q->buf + q->boff, n);
			q->boff += n;
			if (q->ttfb < 0)
				q->ttfb = since_ms(q->t0);
			if (q->paused && q->blen == q->boff) {
				q->paused = false;
				curl_easy_pause(q->easy, CURLPAUSE_CONT);
			}
			return (ssize_t)n;
		}
		if (q->transfer_done) {
			account(q);
			return q->result == CURLE_OK ? MHD_CONTENT_READER_END_OF_STREAM :
						       MHD_CONTENT_READER_END_WITH_ERROR;
		}
		if (atomic_load(&q->gw->stopping))
			return MHD_CONTENT_READER_END_WITH_ERROR;
		drive(q, 100);
	}
}

static bool forwardable_response_header(const char *name, size_t n)
{
	static const char *const skip[] = {
		"connection", "keep-alive", "transfer-encoding", "content-length", "date",
		"content-encoding", "proxy-authenticate", "trailer", "upgrade",
	};
	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (strlen(skip[i]) == n && !strncasecmp(name, skip[i], n))
			return false;
	return true;
}

static enum MHD_Result commit(struct req *q, struct MHD_Connection *c)
{
	q->committed = true;
	for (struct curl_slist *l = q->resp_hdrs; l; l = l->next) {
		const char *colon = strchr(l->data, ':');
		if (!colon)
			continue;
		if (!strncasecmp(l->data, "content-type", 12) && strstr(colon, "text/event-stream"))
			q->sse = true;
	}
	vb_llm_usage_init(&q->scan, q->sse);
	/* What came with the headers (curl may have delivered some already). */
	if (q->blen > q->boff)
		vb_llm_usage_feed(&q->scan, q->buf + q->boff, q->blen - q->boff);
	struct MHD_Response *r =
		MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, read_body, q, NULL);
	if (!r)
		return MHD_NO;
	for (struct curl_slist *l = q->resp_hdrs; l; l = l->next) {
		char *colon = strchr(l->data, ':');
		if (!colon || !forwardable_response_header(l->data, (size_t)(colon - l->data)))
			continue;
		*colon = '\0';
		const char *v = colon + 1;
		while (*v == ' ')
			v++;
		MHD_add_response_header(r, l->data, v);
		*colon = ':';
	}
	enum MHD_Result rc = MHD_queue_response(c, (unsigned)q->status, r);
	MHD_destroy_response(r);
	return rc;
}

/* Fail the request and the stage with one message naming the provider, the
 * URL and the fix. */
static enum MHD_Result fail_upstream(struct req *q, struct MHD_Connection *c, unsigned status,
				     const char *type, const char *msg)
{
	set_failure(q->gw, msg);
	emit(q, (int)status, 0, 0, 0, msg);
	return answer_error(c, q->path, status, type, msg);
}

static void free_headers(struct req *q)
{
	/* curl_slist_append copied the credential's line */
	for (struct curl_slist *l = q->hdrs; l; l = l->next)
		vb_llm_wipe(l->data, strlen(l->data));
	curl_slist_free_all(q->hdrs);
	q->hdrs = NULL;
	vb_llm_wipe_free(q->auth);
	q->auth = NULL;
}

/* The upstream request's headers: the agent's, less hop-by-hop ones and its
 * placeholder, plus the real credential.  -1: the credential failed (err)
 * or memory did (no message). */
static int build_headers(struct req *q, struct MHD_Connection *c, vb_error *err)
{
	struct vb_llm_provider *p = q->gw->provider;
	free_headers(q);
	if (vb_llm_provider_auth_header(p, q->bearer, &q->auth, err) < 0)
		return -1;
	struct hdr_ctx h = { .q = q, .oauth = !strcmp(vb_llm_provider_name(p), "claude-personal") };
	MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, &h);
	struct curl_slist *l = NULL;
	if (!h.failed && h.oauth && !h.beta_seen)
		h.failed = !(l = curl_slist_append(q->hdrs, "anthropic-beta: oauth-2025-04-20")) ||
			   !(q->hdrs = l);
	/* No "Expect: 100-continue" round trip before the body. */
	if (!h.failed)
		h.failed = !(l = curl_slist_append(q->hdrs, "Expect:")) || !(q->hdrs = l);
	if (!h.failed && q->auth)
		h.failed = !(l = curl_slist_append(q->hdrs, q->auth)) || !(q->hdrs = l);
	_cleanup_free_ char *account = vb_llm_provider_account_header(p);
	if (!h.failed && account)
		h.failed = !(l = curl_slist_append(q->hdrs, account)) || !(q->hdrs = l);
	return h.failed ? -1 : 0;
}

static enum MHD_Result forward(struct req *q, struct MHD_Connection *c, const char *method)
{
	struct vb_llm_gateway *gw = q->gw;
	struct vb_llm_provider *p = gw->provider;
	const char *name = vb_llm_provider_name(p);
	vb_error err = { 0 };
	char msg[2048], up[300];
	bool reauthed = false;
	if (build_headers(q, c, &err) < 0)
		return err.msg[0] ? fail_upstream(q, c, 401, "authentication_error", err.msg) : MHD_NO;
	snprintf(q->url, sizeof(q->url), "%s%s", vb_llm_provider_base_url(p),
		 vb_llm_provider_upstream_path(p, q->path));
	char safe_url[600];
	vb_term_copy(safe_url, sizeof(safe_url), q->url, 0);

	for (;;) {
		if (start_attempt(q, c, method, &err) < 0)
			return MHD_NO;
		while (!q->headers_done && !q->transfer_done && !atomic_load(&gw->stopping))
			drive(q, 100);
		if (atomic_load(&gw->stopping))
			return MHD_NO;
		if (!q->headers_done) {
			snprintf(msg, sizeof(msg), "llm provider %s: cannot reach %s (%s); fix: %s", name,
				 safe_url, curl_easy_strerror(q->result),
				 vb_llm_provider_fix(p, VB_LLM_FAIL_UNREACHABLE));
			return fail_upstream(q, c, 502, "api_error", msg);
		}
		long s = q->status;
		bool retryable = s == 429 || s >= 500;
		if (!retryable && s != 401 && s != 403 && s < 400)
			return commit(q, c);
		/* An error: read it whole (it is small) to say what it was. */
		while (!q->transfer_done && !atomic_load(&gw->stopping))
			drive(q, 100);
		if (!retryable && s != 401 && s != 403 && !model_unknown(q)) {
			/* another 4xx: the agent's own mistake, passed on as it came */
			return commit(q, c);
		}
		/* A login's token the provider no longer takes: refreshed on the
		 * host, and the request sent once more. */
		if (s == 401 && !reauthed) {
			reauthed = true;
			int r = vb_llm_provider_reauth(p, q->auth, &err);
			if (r < 0)
				return fail_upstream(q, c, 401, "authentication_error", err.msg);
			if (r > 0) {
				drop_transfer(q); /* it points at the old headers */
				if (build_headers(q, c, &err) < 0)
					return err.msg[0] ? fail_upstream(q, c, 401, "authentication_error",
									  err.msg) :
							    MHD_NO;
				continue;
			}
		}
		upstream_message(q, up, sizeof(up));
		if (s == 401 || s == 403) {
			snprintf(msg, sizeof(msg), "llm provider %s: HTTP %ld from %s (%s); fix: %s", name,
				 s, safe_url, up, vb_llm_provider_fix(p, VB_LLM_FAIL_AUTH));
			return fail_upstream(q, c, (unsigned)s,
					     s == 401 ? "authentication_error" : "permission_error", msg);
		}
		if (!retryable) {
			char m[160];
			snprintf(msg, sizeof(msg),
				 "llm provider %s: model \"%s\" is not known at %s (%s); fix: %s", name,
				 vb_term_copy(m, sizeof(m), q->model, 0), safe_url, up,
				 vb_llm_provider_fix(p, VB_LLM_FAIL_MODEL));
			return fail_upstream(q, c, (unsigned)s, "not_found_error", msg);
		}
		if (q->attempts > gw->max_retries) {
			snprintf(msg, sizeof(msg),
				 "llm provider %s: HTTP %ld from %s after %d attempts (%s); fix: %s",
				 name, s, safe_url, q->attempts, up,
				 s == 429 ? "wait and run again, or use a key with a higher rate "
					    "limit" :
					    vb_llm_provider_fix(p, VB_LLM_FAIL_RETRIES));
			return fail_upstream(q, c, (unsigned)s,
					     s == 429 ? "rate_limit_error" : "api_error", msg);
		}
		unsigned wait = (unsigned)gw->retry_base_ms << (q->attempts - 1);
		unsigned ra = retry_after_ms(q);
		sleep_ms_unless_stopping(gw, ra > wait ? ra : wait);
	}
}

/* ---- the MHD handler ----------------------------------------------------- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_size, void **con_cls)
{
	(void)version;
	struct vb_llm_gateway *gw = cls;
	struct req *q = *con_cls;
	if (!q) {
		q = calloc(1, sizeof(*q));
		if (!q)
			return MHD_NO;
		q->gw = gw;
		q->t0 = vb_now_ns();
		q->ttfb = -1;
		snprintf(q->path, sizeof(q->path), "%s", url);
		/* Checked with the headers, so that a stranger's upload is never
		 * kept. */
		const char *tok = vb_llm_token_from(
			MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-api-key"),
			MHD_lookup_connection_value(c, MHD_HEADER_KIND, "authorization"), &q->bearer);
		q->unauthorized = !tok || !vb_llm_token_equal(tok, strlen(tok), gw->token);
		*con_cls = q;
		return MHD_YES;
	}
	if (*upload_size) { /* the body must be consumed before any answer */
		if (!q->unauthorized && !q->too_big && q->len + *upload_size <= MAX_BODY) {
			if (q->len + *upload_size + 1 > q->cap) {
				size_t cap = q->cap ? q->cap : 65536;
				while (cap < q->len + *upload_size + 1)
					cap *= 2;
				char *b = realloc(q->body, cap);
				if (!b)
					return MHD_NO;
				q->body = b;
				q->cap = cap;
			}
			memcpy(q->body + q->len, upload_data, *upload_size);
			q->len += *upload_size;
			q->body[q->len] = '\0';
		} else {
			q->too_big = !q->unauthorized;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (q->multi) /* answered already */
		return MHD_YES;

	if (q->unauthorized) {
		pthread_mutex_lock(&gw->lock);
		gw->totals.unauthorized++;
		pthread_mutex_unlock(&gw->lock);
		return answer_error(c, q->path, 401, "authentication_error",
				    "voidbox gateway: missing or wrong placeholder API key (use the "
				    "one VoidBox put in this sandbox's environment)");
	}
	if (q->too_big)
		return answer_error(c, q->path, 413, "request_too_large",
				    "voidbox gateway: request body larger than 16 MiB");
	/* Only a path goes after the provider's root: "@host/..." or an
	 * absolute URL would send the credential elsewhere. */
	if (q->path[0] != '/' || strlen(url) >= sizeof(q->path))
		return answer_error(c, "", 400, "invalid_request_error",
				    "voidbox gateway: the request target must be a path");
	q->model_req = !strcmp(method, "POST") && vb_llm_is_model_path(q->path);
	if (q->model_req && q->len) {
		json_t *j = json_loadb(q->body, q->len, 0, NULL);
		const char *m = json_string_value(json_object_get(j, "model"));
		if (m)
			snprintf(q->model, sizeof(q->model), "%s", m);
		json_decref(j);
	}
	char why[512];
	if (q->model_req && !admit(q, why, sizeof(why))) {
		emit(q, 402, 0, 0, 0, why);
		char shown[600];
		snprintf(shown, sizeof(shown), "voidbox gateway: %s", why);
		return answer_error(c, q->path, 402, "budget_exceeded", shown);
	}
	q->multi = curl_multi_init();
	if (!q->multi)
		return MHD_NO;
	return forward(q, c, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	struct req *q = *con_cls;
	if (!q)
		return;
	*con_cls = NULL;
	if (q->committed)
		account(q); /* no-op unless the agent went away mid-stream */
	settle_shared(q, 0, 0, 0);
	drop_transfer(q);
	if (q->multi)
		curl_multi_cleanup(q->multi);
	free_headers(q);
	vb_llm_usage_free(&q->scan);
	if (q->body)
		vb_llm_wipe(q->body, q->len);
	free(q->body);
	free(q->buf);
	free(q);
}

/* ---- lifetime ------------------------------------------------------------ */

static void quiet_log(void *cls, const char *fmt, va_list ap)
{
	/* MHD warns that TCP_NODELAY does not apply to AF_UNIX; nothing else it
	 * says reaches a person from here. */
	(void)cls;
	(void)fmt;
	(void)ap;
}

struct vb_llm_gateway *vb_llm_gateway_new(const struct vb_llm_gateway_cfg *cfg, vb_error *err)
{
	struct vb_llm_gateway *gw = calloc(1, sizeof(*gw));
	if (!gw) {
		vb_llm_provider_free(cfg->provider);
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	gw->provider = cfg->provider;
	gw->budget = cfg->budget;
	gw->shared = cfg->shared;
	gw->on_request = cfg->on_request;
	gw->opaque = cfg->opaque;
	gw->max_retries = cfg->max_retries > 0 ? cfg->max_retries : 3;
	gw->retry_base_ms = cfg->retry_base_ms > 0 ? cfg->retry_base_ms : 500;
	pthread_mutex_init(&gw->lock, NULL);
	if (!gw->provider) {
		vb_error_set(err, VB_E_RUNTIME, "LLM gateway without a provider");
		goto fail;
	}
	char hex[49];
	if (vb_random_hex(hex, 24, err) < 0)
		goto fail;
	snprintf(gw->token, sizeof(gw->token), TOKEN_PREFIX "%s", hex);
	if (vb_curl_global(err) < 0)
		goto fail;
	gw->mhd = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_NO_LISTEN_SOCKET |
					   MHD_USE_ITC,
				   0, NULL, NULL, on_request, gw, MHD_OPTION_NOTIFY_COMPLETED,
				   on_completed, gw, MHD_OPTION_CONNECTION_LIMIT,
				   (unsigned)MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
				   (unsigned)0, MHD_OPTION_EXTERNAL_LOGGER, quiet_log, NULL,
				   MHD_OPTION_END);
	if (!gw->mhd) {
		vb_error_set(err, VB_E_RUNTIME, "the LLM gateway's HTTP server did not start");
		goto fail;
	}
	return gw;
fail:
	vb_llm_gateway_free(gw);
	return NULL;
}

void vb_llm_gateway_free(struct vb_llm_gateway *gw)
{
	if (!gw)
		return;
	atomic_store(&gw->stopping, true);
	if (gw->mhd)
		MHD_stop_daemon(gw->mhd);
	vb_llm_provider_free(gw->provider);
	pthread_mutex_destroy(&gw->lock);
	vb_llm_wipe(gw->token, sizeof(gw->token));
	free(gw);
}

const char *vb_llm_gateway_token(const struct vb_llm_gateway *gw)
{
	return gw->token;
}

int vb_llm_gateway_serve_fd(struct vb_llm_gateway *gw, int fd, vb_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (MHD_add_connection(gw->mhd, fd, (const struct sockaddr *)&sa, sizeof(sa)) != MHD_YES) {
		/* MHD closes (fd) when it refuses it */
		return vb_error_set(err, VB_E_RUNTIME,
				    "the LLM gateway refused a connection (%d at once at most)",
				    MAX_CONNECTIONS);
	}
	return 0;
}

void vb_llm_gateway_totals(struct vb_llm_gateway *gw, struct vb_llm_totals *out)
{
	pthread_mutex_lock(&gw->lock);
	*out = gw->totals;
	pthread_mutex_unlock(&gw->lock);
}

bool vb_llm_gateway_failure(struct vb_llm_gateway *gw, char *out, size_t size)
{
	pthread_mutex_lock(&gw->lock);
	snprintf(out, size, "%s", gw->failure);
	bool any = gw->failure[0] != '\0';
	pthread_mutex_unlock(&gw->lock);
	return any;
}

enum vb_llm_budget_hit vb_llm_gateway_budget_hit(struct vb_llm_gateway *gw)
{
	pthread_mutex_lock(&gw->lock);
	enum vb_llm_budget_hit hit = gw->failure_budget;
	pthread_mutex_unlock(&gw->lock);
	return hit;
}
