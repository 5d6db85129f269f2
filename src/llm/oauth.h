/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host-side refresh of the agent CLIs' OAuth logins (docs/agents.md,
 * "Logins and their refresh").  Private to src/llm/.
 *
 * A login file is first only read; one that needs a refresh is read again
 * and refreshed under locks, so that the CLI itself (claude-code, codex)
 * running on the host at the same time and other VoidBox stages neither
 * see a torn file nor spend the same rotating refresh token twice:
 *   - for claude-code, its own lock directories first (the ones claude-code
 *     takes around its refresh: CONFIG_DIR/.oauth_refresh.lock and
 *     CONFIG_DIR.lock, created with mkdir, stale after 60 s);
 *   - then flock(2) on the login file (VoidBox processes among themselves).
 * The new file replaces the old one by rename(2) (0600, every field the
 * refresh does not change kept as it was).
 */
#ifndef VB_LLM_OAUTH_H
#define VB_LLM_OAUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "voidbox/error.h"

/* Refresh this long before the token expires (claude-code's own margin). */
#define VB_OAUTH_MARGIN_MS (5 * 60 * 1000)

/* The variable that moves every login's token endpoint (tests). */
#define VB_OAUTH_URL_ENV "VOIDBOX_LLM_OAUTH_TOKEN_URL"

struct vb_oauth_token {
	char *access;     /* the bearer token; the caller wipes it (vb_llm_wipe_free) */
	char *account;    /* codex: tokens.account_id (NULL if none) */
	int64_t expires_ms; /* when it expires, ms since the epoch; 0 = unknown */
};
void vb_oauth_token_clear(struct vb_oauth_token *t);

/* Bring claude-code's login in (path) (~/.claude/.credentials.json) up to
 * date and return its access token.  It is refreshed when it is missing, has
 * expired or does within VB_OAUTH_MARGIN_MS, or when (stale) is set and the
 * file still holds that token (a provider's 401 said it is no good).  A
 * token someone else refreshed in the meantime is taken as it is.  Errors
 * name the file or the endpoint and the fix, never a token. */
int vb_oauth_claude(const char *path, const char *stale, struct vb_oauth_token *out, vb_error *err);

/* The same for codex's ChatGPT login in (path) ($CODEX_HOME/auth.json):
 * tokens.access_token (a JWT whose exp says when it expires), refreshed
 * with tokens.refresh_token. */
int vb_oauth_codex(const char *path, const char *stale, struct vb_oauth_token *out, vb_error *err);

#endif
