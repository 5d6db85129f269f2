/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The LLM gateway (docs/agents.md, "The LLM gateway"): an HTTP/1.1 server on
 * the host that an agent in a guest reaches through connections handed over
 * as file descriptors.  It checks a per-sandbox placeholder token, swaps in
 * the provider's real credential (read on the host, never logged, wiped when
 * freed), forwards with libcurl and streams the answer back as it arrives,
 * counting tokens and cost, enforcing a budget and retrying what is worth
 * retrying.  One gateway serves one stage.
 */
#ifndef VB_LLM_H
#define VB_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "voidbox/error.h"

/* ---- providers (provider.c) --------------------------------------------- */

/* What a spec's `llm` says; NULL fields take the provider's defaults.
 * VOIDBOX_LLM_PROVIDER, VOIDBOX_LLM_MODEL and VOIDBOX_LLM_BASE_URL in the
 * host environment override them. */
struct vb_llm_config {
	const char *provider;    /* "claude" (NULL), "claude-personal", "codex",
				  * "ollama", "lmstudio", "custom" */
	const char *model;
	const char *base_url;    /* API root, e.g. http://127.0.0.1:11434 */
	const char *api_key_env; /* custom: the host variable holding the key */
};

struct vb_llm_provider;

/* Resolve (cfg) and read the provider's credential from the host (an
 * environment variable or the agent CLI's login file).  Fails, naming the
 * provider and the fix, when the provider is unknown or its credential is
 * missing.  Free with vb_llm_provider_free, which wipes the credential. */
struct vb_llm_provider *vb_llm_provider_new(const struct vb_llm_config *cfg, vb_error *err);
void vb_llm_provider_free(struct vb_llm_provider *p);

const char *vb_llm_provider_name(const struct vb_llm_provider *p);
const char *vb_llm_provider_base_url(const struct vb_llm_provider *p); /* no trailing '/' */
const char *vb_llm_provider_model(const struct vb_llm_provider *p);   /* NULL: agent's default */
/* True for providers on the host (ollama, lmstudio): cost is zero. */
bool vb_llm_provider_is_local(const struct vb_llm_provider *p);

/* The header line carrying the real credential ("x-api-key: ..." or
 * "Authorization: Bearer ..."), in a new string the caller wipes
 * (vb_llm_wipe_free); NULL with *hdr for a provider that needs none.
 * (sent_bearer): the agent sent its placeholder as a bearer token, which
 * decides the header for providers that take either.  A login's token
 * (claude-personal) is refreshed on the host first when it has expired or
 * does within 5 minutes. */
int vb_llm_provider_auth_header(struct vb_llm_provider *p, bool sent_bearer, char **hdr,
				vb_error *err);

/* The provider refused the credential in (hdr_used) (a 401): for a login
 * that can be refreshed, refresh it (unless another request already did)
 * and return 1, so that the request is sent once more with a new
 * vb_llm_provider_auth_header; 0 for a credential that cannot be refreshed
 * (an API key); -1 when the refresh failed, with the message to show. */
int vb_llm_provider_reauth(struct vb_llm_provider *p, const char *hdr_used, vb_error *err);

/* codex with a ChatGPT login: the "chatgpt-account-id: ID" header line its
 * requests carry besides the bearer token (a new string), else NULL. */
char *vb_llm_provider_account_header(struct vb_llm_provider *p);

/* The path to ask the provider's root for, for the agent's (path): the same,
 * except for codex's ChatGPT backend, whose paths have no "/v1" prefix. */
const char *vb_llm_provider_upstream_path(const struct vb_llm_provider *p, const char *path);

/* What a person should do about a failure of the given class, for messages. */
enum vb_llm_fail { VB_LLM_FAIL_AUTH, VB_LLM_FAIL_UNREACHABLE, VB_LLM_FAIL_MODEL,
		   VB_LLM_FAIL_RETRIES };
const char *vb_llm_provider_fix(const struct vb_llm_provider *p, enum vb_llm_fail what);

/* Zero (len) bytes of (p) in a way the compiler keeps, then free a string. */
void vb_llm_wipe(void *p, size_t len);
void vb_llm_wipe_free(char *s);

/* ---- accounting (usage.c) ------------------------------------------------ */

struct vb_llm_usage {
	uint64_t input_tokens;   /* fresh input */
	uint64_t cache_write_tokens, cache_read_tokens;
	uint64_t output_tokens;
	char model[128];         /* as the response named it, if it did */
};

/* Scan a response body as it streams: SSE events of the Anthropic Messages
 * and the OpenAI Responses APIs, or one JSON body (non-streaming).  Feed the
 * bytes in any split; vb_llm_usage_end parses what is left. */
struct vb_llm_usage_scan {
	struct vb_llm_usage u;
	bool sse;
	char *buf;     /* the current SSE line, or the whole JSON body */
	size_t len, cap;
	bool overflow; /* the line or body was too long to keep: skipped */
};
void vb_llm_usage_init(struct vb_llm_usage_scan *s, bool sse);
void vb_llm_usage_feed(struct vb_llm_usage_scan *s, const char *data, size_t len);
void vb_llm_usage_end(struct vb_llm_usage_scan *s);
void vb_llm_usage_free(struct vb_llm_usage_scan *s);

/* USD for (u) on (model); 0 with *known false for a model not in the price
 * table.  Cache writes cost 1.25x input, reads 0.1x (Anthropic's rates;
 * OpenAI reports cached tokens inside input and they are priced as input). */
double vb_llm_cost_usd(const char *model, const struct vb_llm_usage *u, bool *known);

/* The total tokens of (u) as budgets count them. */
uint64_t vb_llm_usage_tokens(const struct vb_llm_usage *u);

/* ---- the gateway (gateway.c) -------------------------------------------- */

/* Limits for one stage; 0 = none. */
struct vb_llm_budget {
	uint64_t max_tokens;
	double max_cost_usd;
	uint64_t max_requests;
};

/* One model request, as the `llm.request` event records it. */
struct vb_llm_request {
	const char *provider, *model; /* model: as the provider's answer named it,
				       * else as the request asked */
	const char *path;             /* e.g. /v1/messages */
	uint64_t input_tokens, output_tokens; /* input includes cache reads/writes */
	double cost_usd;
	int64_t latency_ms;           /* from the request to the last byte */
	int64_t ttfb_ms;              /* from the request to the first byte */
	int status;                   /* HTTP status the agent got */
	int attempts;                 /* 1 + retries */
	const char *error;            /* NULL on success */
};
/* Called from a gateway thread, after each model request; pointers are valid
 * during the call only. */
typedef void (*vb_llm_request_fn)(const struct vb_llm_request *req, void *opaque);

struct vb_llm_totals {
	uint64_t requests;      /* model requests forwarded */
	uint64_t refused;       /* refused by the budget */
	uint64_t unauthorized;  /* refused for a missing or wrong placeholder */
	uint64_t input_tokens, output_tokens;
	double cost_usd;
};

/* ---- a budget shared by gateways (budget.c) ------------------------------ */

/* A run's budget (`voidbox run --budget`): one set of limits and totals
 * that every stage's gateway charges on top of its own, under one lock,
 * so that stages running in parallel (a fan-out) share it exactly. */
struct vb_llm_shared_budget;

/* NULL on allocation failure.  (limits) is copied. */
struct vb_llm_shared_budget *vb_llm_shared_budget_new(const struct vb_llm_budget *limits);
void vb_llm_shared_budget_free(struct vb_llm_shared_budget *sb); /* NULL: no-op */
/* What every gateway charged so far (any thread). */
void vb_llm_shared_budget_totals(struct vb_llm_shared_budget *sb, struct vb_llm_totals *out);

/* Would one more request cross (b), given what is spent (requests made,
 * tokens used, cost) and what the request is estimated to need?  True if
 * it may go; else false with the reason in (why): "budget exceeded
 * (PREFIXmax_requests 2: 2 made)" and the like, PREFIX being "" for a
 * stage's budget and "run budget " for a shared one. */
bool vb_llm_budget_allows(const struct vb_llm_budget *b, const char *prefix, uint64_t requests,
			  uint64_t tokens, double cost, uint64_t need_tokens, double need_cost,
			  char *why, size_t n);

/* For the gateway: admit one request against (sb), reserving its estimate
 * until vb_llm_shared_budget_settle() replaces it with what it took (so
 * that requests in flight in parallel count too).  False with (why) when
 * it would cross the budget. */
bool vb_llm_shared_budget_take(struct vb_llm_shared_budget *sb, uint64_t need_tokens,
			       double need_cost, char *why, size_t n);
void vb_llm_shared_budget_settle(struct vb_llm_shared_budget *sb, uint64_t need_tokens,
				 double need_cost, uint64_t in, uint64_t out, double cost);

/* Which budget refused a request and so failed the stage. */
enum vb_llm_budget_hit { VB_LLM_BUDGET_NONE = 0, VB_LLM_BUDGET_STAGE, VB_LLM_BUDGET_RUN };

struct vb_llm_gateway_cfg {
	struct vb_llm_provider *provider; /* owned by the gateway from then on */
	struct vb_llm_budget budget;
	/* the run's budget, charged too; NULL = none.  Borrowed: it must
	 * outlive the gateway. */
	struct vb_llm_shared_budget *shared;
	vb_llm_request_fn on_request;
	void *opaque;
	int max_retries;   /* 429/5xx retries; 0 = the default (3) */
	int retry_base_ms; /* first backoff; doubles; 0 = the default (500) */
};

struct vb_llm_gateway;

/* Start a gateway (its own threads).  Takes (cfg->provider) even on error. */
struct vb_llm_gateway *vb_llm_gateway_new(const struct vb_llm_gateway_cfg *cfg, vb_error *err);
/* Stop serving, wait for the connections, free, wipe secrets.  NULL is a no-op. */
void vb_llm_gateway_free(struct vb_llm_gateway *gw);

/* The placeholder the guest gets as its API key (a random token, valid for
 * this gateway only; it is not a secret of the host). */
const char *vb_llm_gateway_token(const struct vb_llm_gateway *gw);

/* Where an agent's base URL points under the gateway's root: the gateway
 * forwards every path unchanged to the provider's root, so an Anthropic
 * client (ANTHROPIC_BASE_URL, which it appends /v1/messages to) gets the
 * root, and an OpenAI client (OPENAI_BASE_URL, which includes /v1) gets
 * "/v1". */
enum vb_llm_wire { VB_LLM_WIRE_ANTHROPIC, VB_LLM_WIRE_OPENAI };
const char *vb_llm_base_path(enum vb_llm_wire wire);

/* Serve one HTTP connection on (fd) (a socketpair end or a stream's host
 * side); takes (fd) even on error. */
int vb_llm_gateway_serve_fd(struct vb_llm_gateway *gw, int fd, vb_error *err);

/* Totals so far (any thread). */
void vb_llm_gateway_totals(struct vb_llm_gateway *gw, struct vb_llm_totals *out);

/* The first failure that should fail the stage ("budget exceeded (...)",
 * an authentication failure, an unreachable provider...), copied into
 * (out); returns false and "" if none. */
bool vb_llm_gateway_failure(struct vb_llm_gateway *gw, char *out, size_t size);
/* Whether that failure was a budget's refusal, and whose. */
enum vb_llm_budget_hit vb_llm_gateway_budget_hit(struct vb_llm_gateway *gw);

/* ---- pure helpers (gateway.c; unit-tested) ------------------------------- */

/* Constant-time: (got) equals (want)?  Time depends on strlen(want) only. */
bool vb_llm_token_equal(const char *got, size_t got_len, const char *want);

/* The placeholder carried by an x-api-key or Authorization header value
 * ("Bearer TOKEN"); (bearer) says which.  NULL if neither is set. */
const char *vb_llm_token_from(const char *x_api_key, const char *authorization, bool *bearer);

/* Does (path) ask the model (counted, budgeted): POST .../messages,
 * .../responses, .../chat/completions, ignoring the query? */
bool vb_llm_is_model_path(const char *path);

#endif
