/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The provider table: where each `llm.provider` lives, how it authenticates
 * and where its credential comes from on the host.  Credentials are kept in
 * one buffer per provider, never formatted into messages, and wiped when
 * freed.
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "llm/llm.h"
#include "llm/oauth.h"
#include "util/term.h"
#include "util/util.h"

enum auth_style {
	AUTH_X_API_KEY, /* Anthropic's API keys */
	AUTH_BEARER,    /* OpenAI, OAuth tokens */
	AUTH_AS_SENT,   /* local and custom servers: the header the agent used */
};

enum cred_source { CRED_NONE, CRED_ENV, CRED_CLAUDE_OAUTH, CRED_CODEX };

struct provider_def {
	const char *name;
	const char *base_url;
	const char *key_env; /* CRED_ENV / CRED_CODEX */
	enum cred_source cred;
	enum auth_style auth;
	bool local;
	const char *fix_auth, *fix_unreachable, *fix_model;
};

static const struct provider_def providers[] = {
	{ .name = "claude", .base_url = "https://api.anthropic.com", .key_env = "ANTHROPIC_API_KEY",
	  .cred = CRED_ENV, .auth = AUTH_X_API_KEY,
	  .fix_auth = "set a valid ANTHROPIC_API_KEY in the host's environment",
	  .fix_unreachable = "check the host's network access to the provider (or llm.base_url, "
			     "VOIDBOX_LLM_BASE_URL)",
	  .fix_model = "set llm.model (or VOIDBOX_LLM_MODEL) to a model the provider serves" },
	{ .name = "claude-personal", .base_url = "https://api.anthropic.com",
	  .cred = CRED_CLAUDE_OAUTH, .auth = AUTH_BEARER,
	  .fix_auth = "log in again with `claude` on the host (~/.claude/.credentials.json)",
	  .fix_unreachable = "check the host's network access to the provider (or llm.base_url, "
			     "VOIDBOX_LLM_BASE_URL)",
	  .fix_model = "set llm.model (or VOIDBOX_LLM_MODEL) to a model your plan serves" },
	{ .name = "codex", .base_url = "https://api.openai.com", .key_env = "OPENAI_API_KEY",
	  .cred = CRED_CODEX, .auth = AUTH_BEARER,
	  .fix_auth = "set a valid OPENAI_API_KEY in the host's environment (or `codex login "
		      "--with-api-key` on the host)",
	  .fix_unreachable = "check the host's network access to the provider (or llm.base_url, "
			     "VOIDBOX_LLM_BASE_URL)",
	  .fix_model = "set llm.model (or VOIDBOX_LLM_MODEL) to a model the provider serves" },
	{ .name = "ollama", .base_url = "http://127.0.0.1:11434", .cred = CRED_NONE,
	  .auth = AUTH_AS_SENT, .local = true,
	  .fix_auth = "check the Ollama server's authentication settings",
	  .fix_unreachable = "start Ollama on the host (`ollama serve`) or set llm.base_url",
	  .fix_model = "pull the model on the host (`ollama pull MODEL`) or set llm.model" },
	{ .name = "lmstudio", .base_url = "http://127.0.0.1:1234", .cred = CRED_NONE,
	  .auth = AUTH_AS_SENT, .local = true,
	  .fix_auth = "check LM Studio's server authentication settings",
	  .fix_unreachable = "start LM Studio's server on the host (`lms server start`) or set "
			     "llm.base_url",
	  .fix_model = "load the model in LM Studio on the host or set llm.model" },
	{ .name = "custom", .cred = CRED_ENV, .auth = AUTH_AS_SENT,
	  .fix_auth = "set a valid key in the host variable named by llm.api_key_env",
	  .fix_unreachable = "check llm.base_url (or VOIDBOX_LLM_BASE_URL) and that the server runs",
	  .fix_model = "set llm.model (or VOIDBOX_LLM_MODEL) to a model the server serves" },
};

struct vb_llm_provider {
	const struct provider_def *def;
	pthread_mutex_t lock; /* secret, expires_ms: connections' threads share them */
	char *base_url, *model, *key_env;
	char *secret;       /* wiped on free; NULL = none */
	int64_t expires_ms; /* a login's token: when it expires (0 = unknown) */
	char *login_path;   /* claude-personal, codex's ChatGPT login: the login file */
	bool chatgpt;       /* codex with a ChatGPT login */
	char *account;      /* its account id (the chatgpt-account-id header) */
};

void vb_llm_wipe(void *p, size_t len)
{
	if (p)
		explicit_bzero(p, len);
}

void vb_llm_wipe_free(char *s)
{
	if (s) {
		vb_llm_wipe(s, strlen(s));
		free(s);
	}
}

static const char *env_nonempty(const char *name)
{
	const char *v = name ? getenv(name) : NULL;
	return v && *v ? v : NULL;
}

static char *home_path(const char *env_dir, const char *home_rel, const char *file)
{
	const char *dir = env_nonempty(env_dir);
	if (dir)
		return vb_strfmt("%s/%s", dir, file);
	const char *home = env_nonempty("HOME");
	return home ? vb_strfmt("%s/%s/%s", home, home_rel, file) : NULL;
}

/* A JSON login file, read into memory that is wiped after parsing. */
static json_t *load_secret_json(const char *path, vb_error *err)
{
	size_t len = 0;
	char *text = vb_read_file(path, 1 << 20, &len, err);
	if (!text)
		return NULL;
	json_error_t jerr;
	json_t *j = json_loadb(text, len, 0, &jerr);
	vb_llm_wipe(text, len);
	free(text);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		vb_error_set(err, VB_E_USAGE, "%s is not a JSON object (line %d)", path, jerr.line);
		return NULL;
	}
	return j;
}

/* Strings inside a jansson tree cannot be wiped through the API without a
 * cast; json_string_value's storage is ours until decref. */
static void wipe_json_strings(json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;
	if (json_is_string(j)) {
		vb_llm_wipe((void *)(uintptr_t)json_string_value(j), json_string_length(j));
	} else if (json_is_object(j)) {
		json_object_foreach(j, k, v)
			wipe_json_strings(v);
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			wipe_json_strings(v);
	}
}

/* A login refresh's error, with the provider and the fix when the login
 * code did not name them (a file that does not parse, a lock...). */
static int login_error(struct vb_llm_provider *p, const char *fix, vb_error *err)
{
	if (strncmp(err->msg, "llm provider ", 13)) {
		char msg[sizeof(err->msg)];
		snprintf(msg, sizeof(msg), "%s", err->msg);
		vb_error_set(err, err->kind, "llm provider %s: %.700s; fix: %s", p->def->name, msg,
			     fix);
	}
	return -1;
}

/* claude-code's login, ~/.claude/.credentials.json (CLAUDE_CONFIG_DIR moves
 * it): its access token, refreshed on the host when it has expired or does
 * soon, or when (stale) is the token a provider just refused (oauth.c). */
static int claude_login(struct vb_llm_provider *p, const char *stale, vb_error *err)
{
	struct vb_oauth_token t;
	if (vb_oauth_claude(p->login_path, stale, &t, err) < 0)
		return login_error(p, "run `claude /login` on the host", err);
	vb_llm_wipe_free(p->secret);
	p->secret = t.access;
	p->expires_ms = t.expires_ms;
	t.access = NULL;
	vb_oauth_token_clear(&t);
	return 0;
}

static int read_claude_oauth(struct vb_llm_provider *p, vb_error *err)
{
	p->login_path = home_path("CLAUDE_CONFIG_DIR", ".claude", ".credentials.json");
	if (!p->login_path)
		return vb_error_set(err, VB_E_USAGE, "claude-personal: HOME is not set");
	if (access(p->login_path, F_OK) < 0)
		return vb_error_set(err, VB_E_USAGE,
				    "llm provider claude-personal: no claude-code login on the host "
				    "(%.600s: %s); fix: run `claude` on the host and log in, or use "
				    "provider claude with ANTHROPIC_API_KEY",
				    p->login_path, strerror(errno));
	return claude_login(p, NULL, err);
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int codex_login(struct vb_llm_provider *p, const char *stale, vb_error *err);

/* Before each request: a token that has expired or does soon is refreshed
 * (under the provider's lock, so concurrent requests wait for one refresh). */
static int login_fresh(struct vb_llm_provider *p, vb_error *err)
{
	if (!p->login_path || !p->expires_ms || p->expires_ms > wall_ms() + VB_OAUTH_MARGIN_MS)
		return 0;
	return p->chatgpt ? codex_login(p, NULL, err) : claude_login(p, NULL, err);
}

/* codex's ChatGPT login, $CODEX_HOME/auth.json: its access token and
 * account id, refreshed on the host like claude-personal's (oauth.c). */
static int codex_login(struct vb_llm_provider *p, const char *stale, vb_error *err)
{
	struct vb_oauth_token t;
	if (vb_oauth_codex(p->login_path, stale, &t, err) < 0)
		return login_error(p, "run `codex login` on the host", err);
	vb_llm_wipe_free(p->secret);
	free(p->account);
	p->secret = t.access;
	p->account = t.account;
	p->expires_ms = t.expires_ms;
	t.access = t.account = NULL;
	vb_oauth_token_clear(&t);
	return 0;
}

/* codex: OPENAI_API_KEY, else what `codex login` saved in
 * $CODEX_HOME/auth.json (default ~/.codex): an API key, or a ChatGPT login,
 * whose requests go to the ChatGPT backend (CODEX_CHATGPT_URL unless the
 * spec names another root (base_set), without the /v1 prefix). */
#define CODEX_CHATGPT_URL "https://chatgpt.com/backend-api/codex"
static int read_codex(struct vb_llm_provider *p, bool base_set, vb_error *err)
{
	const char *env = env_nonempty("OPENAI_API_KEY");
	if (env) {
		p->secret = strdup(env);
		return p->secret ? 0 : vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	_cleanup_free_ char *path = home_path("CODEX_HOME", ".codex", "auth.json");
	vb_error e2 = { 0 };
	json_t *j = path ? load_secret_json(path, &e2) : NULL;
	if (!j)
		return vb_error_set(err, VB_E_USAGE,
				    "llm provider codex: no OPENAI_API_KEY in the host's environment "
				    "and no codex login (%.500s); fix: set OPENAI_API_KEY on the host "
				    "or run `codex login` there",
				    path ? e2.msg : "HOME is not set");
	const char *key = json_string_value(json_object_get(j, "OPENAI_API_KEY"));
	bool chatgpt = json_is_object(json_object_get(j, "tokens"));
	int rc = 0;
	if (key && *key) {
		p->secret = strdup(key);
		if (!p->secret)
			rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
	} else if (!chatgpt) {
		rc = vb_error_set(err, VB_E_USAGE,
				  "llm provider codex: %.400s holds no API key and no ChatGPT login; "
				  "fix: set OPENAI_API_KEY on the host or run `codex login` there",
				  path);
	}
	wipe_json_strings(j);
	json_decref(j);
	if (rc < 0 || !chatgpt || (key && *key))
		return rc;
	p->chatgpt = true;
	p->login_path = path;
	path = NULL;
	if (!base_set) {
		free(p->base_url);
		if (!(p->base_url = strdup(CODEX_CHATGPT_URL)))
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	return codex_login(p, NULL, err);
}

static char *dup_trimmed_url(const char *url)
{
	char *s = strdup(url);
	if (!s)
		return NULL;
	size_t n = strlen(s);
	while (n && s[n - 1] == '/')
		s[--n] = '\0';
	return s;
}

struct vb_llm_provider *vb_llm_provider_new(const struct vb_llm_config *cfg, vb_error *err)
{
	static const struct vb_llm_config none;
	if (!cfg)
		cfg = &none;
	const char *name = env_nonempty("VOIDBOX_LLM_PROVIDER");
	const char *model = env_nonempty("VOIDBOX_LLM_MODEL");
	const char *base = env_nonempty("VOIDBOX_LLM_BASE_URL");
	/* Another provider from the environment starts from its defaults. */
	bool same = !name || (cfg->provider ? !strcmp(name, cfg->provider) : !strcmp(name, "claude"));
	if (!name)
		name = cfg->provider ? cfg->provider : "claude";
	if (!model && same)
		model = cfg->model;
	if (!base && same)
		base = cfg->base_url;
	const struct provider_def *def = NULL;
	for (size_t i = 0; i < sizeof(providers) / sizeof(providers[0]); i++)
		if (!strcmp(providers[i].name, name))
			def = &providers[i];
	char safe[64];
	if (!def) {
		vb_error_set(err, VB_E_USAGE,
			     "unknown llm provider \"%s\"; fix: use claude, claude-personal, codex, "
			     "ollama, lmstudio or custom",
			     vb_term_copy(safe, sizeof(safe), name, 0));
		return NULL;
	}
	bool base_set = base != NULL;
	if (!base)
		base = def->base_url;
	if (!base) {
		vb_error_set(err, VB_E_USAGE,
			     "llm provider %s needs a base URL; fix: set llm.base_url (or "
			     "VOIDBOX_LLM_BASE_URL)",
			     def->name);
		return NULL;
	}
	if (strncmp(base, "http://", 7) && strncmp(base, "https://", 8)) {
		char u[256];
		vb_error_set(err, VB_E_USAGE,
			     "llm provider %s: base URL \"%s\" is not http:// or https://; fix: "
			     "set llm.base_url (or VOIDBOX_LLM_BASE_URL) to the API root",
			     def->name, vb_term_copy(u, sizeof(u), base, 0));
		return NULL;
	}
	struct vb_llm_provider *p = calloc(1, sizeof(*p));
	if (!p) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	p->def = def;
	pthread_mutex_init(&p->lock, NULL);
	p->base_url = dup_trimmed_url(base);
	p->model = model ? strdup(model) : NULL;
	const char *key_env = def->key_env;
	if (!strcmp(def->name, "custom"))
		key_env = same ? cfg->api_key_env : NULL;
	p->key_env = key_env ? strdup(key_env) : NULL;
	if (!p->base_url || (model && !p->model) || (key_env && !p->key_env)) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		goto fail;
	}
	int rc = 0;
	if (def->cred == CRED_CLAUDE_OAUTH) {
		rc = read_claude_oauth(p, err);
	} else if (def->cred == CRED_CODEX) {
		rc = read_codex(p, base_set, err);
	} else if (def->cred == CRED_ENV && p->key_env) {
		const char *v = env_nonempty(p->key_env);
		char envname[128];
		vb_term_copy(envname, sizeof(envname), p->key_env, 0);
		if (!v)
			rc = vb_error_set(err, VB_E_USAGE,
					  "llm provider %s: %s is not set in the host's environment; "
					  "fix: export %s=<your key> on the host",
					  def->name, envname, envname);
		else if (!(p->secret = strdup(v)))
			rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	if (rc < 0)
		goto fail;
	return p;
fail:
	vb_llm_provider_free(p);
	return NULL;
}

void vb_llm_provider_free(struct vb_llm_provider *p)
{
	if (!p)
		return;
	vb_llm_wipe_free(p->secret);
	pthread_mutex_destroy(&p->lock);
	free(p->base_url);
	free(p->model);
	free(p->key_env);
	free(p->login_path);
	free(p->account);
	free(p);
}

const char *vb_llm_provider_name(const struct vb_llm_provider *p)
{
	return p->def->name;
}

const char *vb_llm_provider_base_url(const struct vb_llm_provider *p)
{
	return p->base_url;
}

const char *vb_llm_provider_model(const struct vb_llm_provider *p)
{
	return p->model;
}

bool vb_llm_provider_is_local(const struct vb_llm_provider *p)
{
	return p->def->local;
}

const char *vb_llm_provider_fix(const struct vb_llm_provider *p, enum vb_llm_fail what)
{
	switch (what) {
	case VB_LLM_FAIL_AUTH:
		return p->def->fix_auth;
	case VB_LLM_FAIL_UNREACHABLE:
		return p->def->fix_unreachable;
	case VB_LLM_FAIL_MODEL:
		return p->def->fix_model;
	case VB_LLM_FAIL_RETRIES:
		break;
	}
	return "the provider keeps failing; try again later";
}

int vb_llm_provider_auth_header(struct vb_llm_provider *p, bool sent_bearer, char **hdr,
				vb_error *err)
{
	*hdr = NULL;
	int rc = 0;
	pthread_mutex_lock(&p->lock);
	rc = login_fresh(p, err);
	/* Local servers ignore the key but some insist on one being there. */
	const char *secret = p->secret ? p->secret : p->def->local ? p->def->name : NULL;
	if (rc == 0 && secret) {
		bool bearer = p->def->auth == AUTH_BEARER ||
			      (p->def->auth == AUTH_AS_SENT && sent_bearer);
		*hdr = bearer ? vb_strfmt("Authorization: Bearer %s", secret) :
				vb_strfmt("x-api-key: %s", secret);
		if (!*hdr)
			rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int vb_llm_provider_reauth(struct vb_llm_provider *p, const char *hdr_used, vb_error *err)
{
	if (!p->login_path)
		return 0; /* an API key: nothing to refresh */
	int rc = 1;
	pthread_mutex_lock(&p->lock);
	/* Another request may have refreshed it since (hdr_used) was made. */
	_cleanup_free_ char *now = p->secret ? vb_strfmt("Authorization: Bearer %s", p->secret) : NULL;
	bool same = !now || !hdr_used || !strcmp(now, hdr_used);
	if (now)
		vb_llm_wipe(now, strlen(now));
	if (same && (p->chatgpt ? codex_login(p, p->secret, err) : claude_login(p, p->secret, err)) < 0)
		rc = -1;
	pthread_mutex_unlock(&p->lock);
	return rc;
}

char *vb_llm_provider_account_header(struct vb_llm_provider *p)
{
	pthread_mutex_lock(&p->lock);
	char *h = p->chatgpt && p->account ? vb_strfmt("chatgpt-account-id: %s", p->account) : NULL;
	pthread_mutex_unlock(&p->lock);
	return h;
}

const char *vb_llm_provider_upstream_path(const struct vb_llm_provider *p, const char *path)
{
	/* The ChatGPT backend's paths have no /v1: /responses, /models. */
	if (p->chatgpt && !strncmp(path, "/v1/", 4))
		return path + 3;
	return path;
}
