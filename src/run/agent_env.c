/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What claude-code and codex get in the VM, in task mode (claude.c,
 * agent_codex.c) and in interactive mode (interactive.c) alike: their
 * environment (the spec's, then ours), claude-code's switches for the
 * traffic of its own, and codex's settings.
 */
#include <stdlib.h>

#include "run/engine.h"

const char **vb_run_env_join(const char *const *base, const char *const *ours, size_t n_ours)
{
	size_t n = 0;
	while (base && base[n])
		n++;
	const char **env = calloc(n + n_ours + 1, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++)
		env[i] = base[i];
	for (size_t i = 0; i < n_ours; i++)
		env[n + i] = ours[i];
	return env;
}

/* nothing but model requests leaves the guest (there may be no network:
 * these keep it from waiting on one) */
const char *const vb_run_claude_quiet_env[VB_RUN_CLAUDE_QUIET_N] = {
	"DISABLE_AUTOUPDATER=1",
	"DISABLE_TELEMETRY=1",
	"DISABLE_ERROR_REPORTING=1",
	"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
};

/* VB_RUN_CODEX_GATEWAY_PORT as text (it is an unsigned literal) */
#define CODEX_GATEWAY_URL "http://127.0.0.1:4381"
_Static_assert(VB_RUN_CODEX_GATEWAY_PORT == 4381, "CODEX_GATEWAY_URL names the forward's port");

/* The provider: ours, speaking Responses at the gateway.  Codex's own
 * sandbox is off (the VM is the sandbox: its Landlock sandbox would need
 * the guest kernel's support), it never asks for approval, and nothing of
 * its own goes online (update check, analytics; plugins and apps look
 * things up on api.github.com and chatgpt.com). */
static const char *const codex_settings[VB_RUN_CODEX_SETTINGS_N] = {
	"--sandbox",
	"danger-full-access",
	"-c",
	"approval_policy=\"never\"",
	"-c",
	"model_provider=\"voidbox\"",
	"-c",
	"model_providers.voidbox={name=\"VoidBox gateway\",base_url=\"" CODEX_GATEWAY_URL
	"/v1\",env_key=\"OPENAI_API_KEY\",wire_api=\"responses\"}",
	"-c",
	"check_for_update_on_startup=false",
	"-c",
	"analytics.enabled=false",
	"--disable",
	"plugins",
	"--disable",
	"apps",
	"--disable",
	"remote_plugin",
};

size_t vb_run_codex_settings(const char **argv, size_t a)
{
	for (size_t i = 0; i < VB_RUN_CODEX_SETTINGS_N; i++)
		argv[a++] = codex_settings[i];
	return a;
}

const char *vb_run_codex_base_url(void)
{
	return "OPENAI_BASE_URL=" CODEX_GATEWAY_URL "/v1";
}
