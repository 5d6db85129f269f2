#!/usr/bin/env bash
# Agent stages beyond the task mode with an API key, as a user runs them:
# logins refreshed on the host (claude-personal, codex's ChatGPT login)
# against a fake token endpoint on the loopback (tests/fake/fake_llm.c,
# VOIDBOX_LLM_OAUTH_TOKEN_URL), interactive and service modes.  Real VMs
# (TCG here).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/lib_agent.sh"

# claude-code's login file, as it writes it, in $T/claude (CLAUDE_CONFIG_DIR).
claude_login() { # ACCESS REFRESH EXPIRES_AT_MS
    mkdir -p "$T/claude"
    cat >"$T/claude/.credentials.json" <<EOF
{
  "claudeAiOauth": {
    "accessToken": "$1",
    "refreshToken": "$2",
    "expiresAt": $3,
    "scopes": ["user:inference", "user:profile"],
    "subscriptionType": "max",
    "rateLimitTier": "default_claude_max_20x"
  },
  "mcpOAuth": {"keep": "me"}
}
EOF
    chmod 600 "$T/claude/.credentials.json"
    export CLAUDE_CONFIG_DIR="$T/claude"
}

personal_spec() {
    spec a <<EOF
api_version: v1
kind: agent
name: personal
sandbox: {memory_mb: 256}
llm: {provider: claude-personal, agent: builtin, base_url: "http://127.0.0.1:$port", model: fake-model}
agent: {prompt: "say hello"}
EOF
}

now_ms() { echo $(($(date +%s) * 1000)); }
creds() { cat "$T/claude/.credentials.json"; }
model_requests() { jq -c 'select(.path | startswith("/v1/messages"))' "$T/fake.log"; }
token_requests() { jq -c 'select(.path == "/v1/oauth/token")' "$T/fake.log"; }

test_claude_personal_expired_login_is_refreshed_on_the_host() {
    local old="sk-ant-oat01-old-$RANDOM$RANDOM" rt="sk-ant-ort01-rt-$RANDOM$RANDOM"
    local new="sk-ant-oat01-new-$RANDOM$RANDOM" rt2="sk-ant-ort01-rt2-$RANDOM$RANDOM"
    claude_login "$old" "$rt" "$(($(now_ms) - 3600000))"
    fake '{"require_auth": "Bearer '"$new"'",
           "oauth": {"access_token": "'"$new"'", "refresh_token": "'"$rt2"'", "expires_in": 28800,
                     "scope": "user:inference user:profile"},
           "turns": [{"text": "hello from a fresh login"}]}'
    export VOIDBOX_LLM_OAUTH_TOKEN_URL="http://127.0.0.1:$port/v1/oauth/token"
    personal_spec
    vb run --output json "$T/a.yaml"
    expect_rc 0
    jqx '.success and .output == "hello from a fresh login"'
    # the refresh, in claude-code's wire format, once
    [ "$(token_requests | wc -l)" -eq 1 ] || fail "token requests: $(token_requests)"
    token_requests | jq -e --arg rt "$rt" '.method == "POST" and .body.grant_type == "refresh_token" and .body.refresh_token == $rt
        and .body.client_id == "9d1c250a-e61b-44d9-88ed-5944d1962f5e" and .body.scope == "user:inference user:profile"
        and (.headers["content-type"] | startswith("application/json"))' >/dev/null ||
        fail "the refresh request: $(token_requests)"
    # the model got the new token as a bearer, with the OAuth beta flag
    model_requests | jq -e --arg t "Bearer $new" '.headers.authorization == $t and (.headers["anthropic-beta"] | contains("oauth-2025-04-20"))' >/dev/null ||
        fail "the model request's credential: $(model_requests | jq -c .headers)"
    # the file: new tokens, a new expiry, everything else kept, still 0600
    creds | jq -e --arg a "$new" --arg r "$rt2" --argjson now "$(now_ms)" '.claudeAiOauth.accessToken == $a
        and .claudeAiOauth.refreshToken == $r and .claudeAiOauth.expiresAt > $now + 28000000
        and .claudeAiOauth.subscriptionType == "max" and .claudeAiOauth.rateLimitTier == "default_claude_max_20x"
        and .mcpOAuth.keep == "me"' >/dev/null || fail "the credentials file after the refresh: $(creds | jq -c '.claudeAiOauth | keys')"
    [ "$(stat -c %a "$T/claude/.credentials.json")" = 600 ] || fail "mode $(stat -c %a "$T/claude/.credentials.json")"
    [ -z "$(find "$T/claude" -name '*.tmp' -o -name '*.lock')" ] || fail "leftovers: $(ls -a "$T/claude")"
    [ ! -e "$T/claude.lock" ] || fail "claude-code's legacy lock was left"
    # no token in the run record or the output
    ! grep -rqe "$new" -e "$rt2" -e "$old" "$XDG_STATE_HOME" "$T/out" "$T/err" || fail "a token is in the run record or the output"
    expect_clean
}

test_claude_personal_401_refreshes_once_and_retries() {
    local old="sk-ant-oat01-revoked-$RANDOM" new="sk-ant-oat01-new-$RANDOM$RANDOM"
    claude_login "$old" "sk-ant-ort01-rt-$RANDOM" "$(($(now_ms) + 7200000))"
    fake '{"require_auth": "Bearer '"$new"'",
           "oauth": {"access_token": "'"$new"'", "expires_in": 3600},
           "turns": [{"text": "second try worked"}]}'
    export VOIDBOX_LLM_OAUTH_TOKEN_URL="http://127.0.0.1:$port/v1/oauth/token"
    personal_spec
    vb run --output json "$T/a.yaml"
    expect_rc 0
    jqx '.output == "second try worked" and .stages[0].llm_requests == 1'
    # the fake saw the old token refused, one refresh, then the new token
    [ "$(model_requests | jq -r .headers.authorization | tr '\n' ' ')" = "Bearer $old Bearer $new " ] ||
        fail "model requests' credentials: $(model_requests | jq -r .headers.authorization)"
    [ "$(token_requests | wc -l)" -eq 1 ] || fail "$(token_requests | wc -l) refreshes"
    # no refresh_token in the answer: the old one stays
    creds | jq -e --arg a "$new" '.claudeAiOauth.accessToken == $a and (.claudeAiOauth.refreshToken | startswith("sk-ant-ort01-rt-"))' >/dev/null ||
        fail "the file: $(creds | jq -c '.claudeAiOauth | keys')"
    expect_clean
}

test_claude_personal_refused_refresh_says_to_log_in_again() {
    claude_login "sk-ant-oat01-old" "sk-ant-ort01-dead" "$(($(now_ms) - 1000))"
    local before
    before=$(creds)
    fake '{"oauth": {"status": 400, "error": "invalid_grant", "error_description": "Refresh token not found or invalid"},
           "turns": [{"text": "never"}]}'
    export VOIDBOX_LLM_OAUTH_TOKEN_URL="http://127.0.0.1:$port/v1/oauth/token"
    personal_spec
    vb run --output json "$T/a.yaml"
    expect_rc 2
    grep -q "llm provider claude-personal: the login on this host has expired and can no longer be refreshed (HTTP 400 from http://127.0.0.1:$port/v1/oauth/token: invalid_grant: Refresh token not found or invalid); fix: run \`claude /login\` on the host" "$T/err" ||
        fail "the message: $(cat "$T/err")"
    [ "$(grep -c 'claude /login' "$T/err")" -eq 1 ] || fail "said more than once: $(cat "$T/err")"
    [ "$(model_requests | wc -l)" -eq 0 ] || fail "a model request went out"
    [ "$(creds)" = "$before" ] || fail "the credentials file changed"
    expect_clean
}
test_claude_personal_waits_for_claude_code_refreshing_on_the_host() {
    claude_login "sk-ant-oat01-old" "sk-ant-ort01-rt" "$(($(now_ms) - 1000))"
    fake '{"require_auth": "Bearer sk-ant-oat01-by-claude-code",
           "oauth": {"status": 500, "error": "server_error"},
           "turns": [{"text": "used the token claude-code got"}]}'
    export VOIDBOX_LLM_OAUTH_TOKEN_URL="http://127.0.0.1:$port/v1/oauth/token"
    personal_spec
    # claude-code is refreshing: it holds its lock directory
    mkdir "$T/claude/.oauth_refresh.lock"
    "$VB" run --output json "$T/a.yaml" >"$T/out" 2>"$T/err" </dev/null &
    local pid=$!
    sleep 3
    kill -0 $pid 2>/dev/null || fail "did not wait for claude-code's lock: $(cat "$T/err")"
    # ...and writes its new login the way it does (a new file renamed over)
    jq --argjson e "$(($(now_ms) + 3600000))" '.claudeAiOauth.accessToken = "sk-ant-oat01-by-claude-code" | .claudeAiOauth.expiresAt = $e' \
        "$T/claude/.credentials.json" >"$T/claude/.credentials.json.tmp"
    mv "$T/claude/.credentials.json.tmp" "$T/claude/.credentials.json"
    rmdir "$T/claude/.oauth_refresh.lock"
    wait $pid
    rc=$?
    out=$(cat "$T/out")
    expect_rc 0
    jqx '.output == "used the token claude-code got"'
    [ "$(token_requests | wc -l)" -eq 0 ] || fail "refreshed again: $(token_requests)"
    # a lock left by a claude-code that died (older than 60 s) is taken over
    claude_login "sk-ant-oat01-old" "sk-ant-ort01-rt" "$(($(now_ms) - 1000))"
    mkdir "$T/claude/.oauth_refresh.lock"
    touch -d '2 minutes ago' "$T/claude/.oauth_refresh.lock"
    vb run "$T/a.yaml"
    expect_rc 125 # the fake's token endpoint fails (500): but it was asked
    [ "$(token_requests | wc -l)" -eq 1 ] || fail "the stale lock was not taken over: $(cat "$T/err")"
    expect_err_has "refreshing it failed (HTTP 500 from http://127.0.0.1:$port/v1/oauth/token: server_error); fix: try again later, or run \`claude /login\` on the host"
    [ ! -e "$T/claude/.oauth_refresh.lock" ] || fail "the lock was left"
    expect_clean
}

test_claude_personal_with_claude_code_in_the_vm() {
    local new="sk-ant-oat01-cc-$RANDOM$RANDOM"
    claude_login "sk-ant-oat01-old" "sk-ant-ort01-rt-$RANDOM" "$(($(now_ms) - 60000))"
    fake '{"require_auth": "Bearer '"$new"'", "oauth": {"access_token": "'"$new"'", "expires_in": 3600},
           "turns": [{"expect": "say hello", "text": "hello through a personal login"}]}'
    export VOIDBOX_LLM_OAUTH_TOKEN_URL="http://127.0.0.1:$port/v1/oauth/token"
    spec a <<EOF
api_version: v1
kind: agent
name: personal
sandbox: {memory_mb: 1024}
llm: {provider: claude-personal, base_url: "http://127.0.0.1:$port", model: fake-model}
agent: {prompt: "say hello", timeout_secs: 300}
EOF
    vb run --output json "$T/a.yaml"
    expect_rc 0
    jqx '.output == "hello through a personal login" and .stages[0].llm_requests == 1'
    # claude-code sent its placeholder; the provider got the login's bearer
    model_requests | jq -e --arg t "Bearer $new" '.headers.authorization == $t and (.headers | has("x-api-key") | not)' >/dev/null ||
        fail "the model request's credential: $(model_requests | jq -c '.headers | keys')"
    ! grep -rqe "$new" "$XDG_STATE_HOME" "$T/out" "$T/err" || fail "the token is in the run record or the output"
    expect_clean
}

# A JWT (unsigned: only its exp is read) expiring at $1 (s since the epoch).
jwt() {
    b64() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
    printf '%s.%s.sig' "$(printf '{"alg":"none"}' | b64)" "$(printf '{"exp":%s,"sub":"%s"}' "$1" "$2" | b64)"
}

test_codex_chatgpt_login_is_refreshed_and_sent_with_its_account() {
    local old new rt="rt-codex-$RANDOM$RANDOM" rt2="rt2-codex-$RANDOM$RANDOM"
    old=$(jwt "$(($(date +%s) - 600))" "old$RANDOM") new=$(jwt "$(($(date +%s) + 86400))" "new$RANDOM")
    mkdir -p "$T/codex"
    cat >"$T/codex/auth.json" <<EOF
{"auth_mode": "chatgpt", "OPENAI_API_KEY": null,
 "tokens": {"id_token": "idt", "access_token": "$old", "refresh_token": "$rt", "account_id": "acct-77"},
 "last_refresh": "2026-01-01T00:00:00Z", "agent_identity": null}
EOF
    chmod 600 "$T/codex/auth.json"
    export CODEX_HOME="$T/codex"
    unset OPENAI_API_KEY
    fake '{"require_auth": "Bearer '"$new"'",
           "oauth": {"access_token": "'"$new"'", "refresh_token": "'"$rt2"'", "id_token": "idt2"},
           "turns": [{"text": "hello from chatgpt", "usage": {"input_tokens": 10, "output_tokens": 3}}]}'
    export VOIDBOX_LLM_OAUTH_TOKEN_URL="http://127.0.0.1:$port/oauth/token"
    spec a <<EOF
api_version: v1
kind: agent
name: chat
sandbox: {memory_mb: 1024}
llm: {provider: codex, base_url: "http://127.0.0.1:$port/backend-api/codex", model: fake-model}
agent: {prompt: "say hello", timeout_secs: 240}
EOF
    vb run --output json "$T/a.yaml"
    expect_rc 0
    jqx '.success and .output == "hello from chatgpt" and .stages[0].llm_requests == 1'
    # the refresh, in codex's wire format
    jq -c 'select(.path == "/oauth/token")' "$T/fake.log" | jq -se --arg rt "$rt" 'length == 1 and .[0].body.grant_type == "refresh_token"
        and .[0].body.refresh_token == $rt and .[0].body.client_id == "app_EMoamEEZ73f0CkXaXp7hrann"' >/dev/null ||
        fail "the refresh: $(grep oauth/token "$T/fake.log")"
    # the model request: the ChatGPT backend's path, bearer and account id
    local req
    req=$(jq -c 'select(.path | endswith("/responses"))' "$T/fake.log")
    jq -e --arg t "Bearer $new" '.path == "/backend-api/codex/responses" and .headers.authorization == $t
        and .headers["chatgpt-account-id"] == "acct-77"' <<<"$req" >/dev/null || fail "the model request: $(jq -c '{path, headers}' <<<"$req")"
    # auth.json: new tokens, last_refresh now, the rest kept, 0600
    jq -e --arg a "$new" --arg r "$rt2" '.tokens.access_token == $a and .tokens.refresh_token == $r and .tokens.id_token == "idt2"
        and .tokens.account_id == "acct-77" and .auth_mode == "chatgpt" and (.last_refresh | startswith("2026-01-01") | not)
        and has("agent_identity")' "$T/codex/auth.json" >/dev/null || fail "auth.json: $(jq -c '.tokens | keys' "$T/codex/auth.json")"
    [ "$(stat -c %a "$T/codex/auth.json")" = 600 ] || fail "mode"
    ! grep -rqe "$new" -e "$rt2" "$XDG_STATE_HOME" "$T/out" "$T/err" || fail "a token is in the run record or the output"
    expect_clean
}

# ---- mode: interactive ------------------------------------------------------

interactive_spec() { # AGENT [PROMPT_LINE]
    spec i <<EOF
api_version: v1
kind: agent
name: chat
sandbox: {memory_mb: 1024}
llm: {provider: custom, agent: $1, base_url: "http://127.0.0.1:$port", api_key_env: VB_TEST_KEY, model: fake-model}
agent: {mode: interactive${2:+, prompt: "$2"}}
EOF
}

# drive STEPS_JSON: `voidbox run` on a terminal; sets $rc and $term_flags.
drive() {
    local res
    res=$(STEPS="$1" timeout 200 python3 "$ROOT/tests/integration/pty_drive.py" "$T/screen.log" "$VB" run "$T/i.yaml" 2>"$T/drive.err")
    local drc=$?
    rc=$(sed -n 's/^exit //p' <<<"$res")
    term_flags=$(sed -n 's/^termios //p' <<<"$res")
    [ $drc -eq 0 ] || fail "driving the terminal: $(cat "$T/drive.err"); screen: $(tail -c 1500 "$T/screen.log" | tr -d '\033' | tail -c 700)"
}

test_interactive_claude_code_on_a_terminal() {
    export VB_TEST_KEY="sk-test-$RANDOM$RANDOM"
    fake '{"turns": [
      {"expect": "say the magic words", "text": "FIRST-ANSWER-4242"},
      {"expect": "and now the second", "text": "SECOND-ANSWER-777"}]}'
    interactive_spec claude-code "say the magic words"
    drive '[{"wait": "FIRST-ANSWER-4242", "timeout": 120},
            {"sleep": 1}, {"type": "and now the second"}, {"sleep": 0.5}, {"type": "\r"},
            {"wait": "SECOND-ANSWER-777", "timeout": 60},
            {"sleep": 1}, {"type": "/exit"}, {"sleep": 1}, {"type": "\r"}]'
    [ "$rc" = 0 ] || fail "exit code $rc: $(tail -c 600 "$T/screen.log" | tr -d '\033')"
    # the terminal was given back as it was (line editing and echo on)
    [ -n "$term_flags" ] && [ $((term_flags & 10)) -eq 10 ] || fail "terminal flags after the run: $term_flags"
    # the prompt came as claude's first prompt, the typed line as the next
    [ "$(jq -c 'select(.path | startswith("/v1/messages"))' "$T/fake.log" | wc -l)" -ge 2 ] || fail "model requests: $(jq -c .path "$T/fake.log")"
    [ "$(jq -r '.headers["x-api-key"]' "$T/fake.log" | sort -u)" = "$VB_TEST_KEY" ] || fail "the host key was not injected"
    ! grep -q "$VB_TEST_KEY" "$T/screen.log" || fail "the host key was on the screen"
    # recorded as a run: succeeded, its model requests as events
    local run
    run=$(find "$XDG_STATE_HOME" -name result.json | head -1)
    [ -n "$run" ] || fail "no run record"
    jq -e '.success and .stages[0].llm_requests >= 2' "$run" >/dev/null || fail "the result: $(cat "$run")"
    grep -q "succeeded" "$T/screen.log" || fail "the progress did not come back after the session"
    expect_clean
}

test_interactive_example_runs() {
    fake '{"turns": [{"expect": "wait for my questions", "text": "EXAMPLE-READY-5"}]}'
    cp "$ROOT/examples/agent-interactive.yaml" "$T/i.yaml"
    export ANTHROPIC_API_KEY="sk-ant-test-$RANDOM" VOIDBOX_LLM_BASE_URL="http://127.0.0.1:$port" AGENT_MODEL=fake-model
    drive '[{"wait": "EXAMPLE-READY-5", "timeout": 120}, {"sleep": 1},
            {"type": "/exit"}, {"sleep": 1}, {"type": "\r"}]'
    [ "$rc" = 0 ] || fail "exit code $rc: $(tail -c 600 "$T/screen.log" | tr -d '\033')"
    expect_clean
}

test_interactive_without_a_prompt_waits_for_the_person() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [{"expect": "typed-by-hand", "text": "NOPROMPT-ANSWER-1"}]}'
    interactive_spec claude-code
    drive '[{"wait": "bypass permissions on", "timeout": 120}, {"sleep": 2},
            {"type": "typed-by-hand"}, {"sleep": 0.5}, {"type": "\r"},
            {"wait": "NOPROMPT-ANSWER-1", "timeout": 60}, {"sleep": 1},
            {"type": "/exit"}, {"sleep": 1}, {"type": "\r"}]'
    [ "$rc" = 0 ] || fail "exit code $rc"
    [ "$(wc -l <"$T/fake.log")" -eq 1 ] || fail "requests: $(jq -c .path "$T/fake.log")"
    expect_clean
}

test_interactive_needs_a_terminal_and_an_agent_with_one() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [{"text": "never"}]}'
    interactive_spec claude-code "hi"
    vb run "$T/i.yaml" # stdin is /dev/null
    expect_rc 2
    expect_err_has "agent mode 'interactive' attaches your terminal to the agent: run it with \`voidbox run\` with stdin and stdout on a terminal (not in a pipe), or use mode: task"
    interactive_spec builtin "hi"
    drive '[]'
    [ "$rc" = 2 ] || fail "builtin interactive: exit code $rc"
    grep -q "the builtin agent has no interactive mode" "$T/screen.log" || fail "the message: $(cat "$T/screen.log")"
    [ ! -s "$T/fake.log" ] || fail "a request reached the model"
    expect_clean
}

test_interactive_codex_on_a_terminal() {
    export VB_TEST_KEY="sk-test-$RANDOM$RANDOM"
    fake '{"turns": [{"text": "CODEX-ANSWER-4242"}]}'
    interactive_spec codex "-say the magic words"
    drive '[{"wait": "CODEX-ANSWER-4242", "timeout": 120}, {"sleep": 1},
            {"type": "/quit"}, {"sleep": 1}, {"type": "\r"}]'
    [ "$rc" = 0 ] || fail "exit code $rc: $(tail -c 600 "$T/screen.log" | tr -d '\033')"
    [ $((term_flags & 10)) -eq 10 ] || fail "terminal flags after the run: $term_flags"
    jq -e -s 'any(.[]; .path == "/v1/responses" and (.body.input | tostring | contains("-say the magic words")))' "$T/fake.log" >/dev/null ||
        fail "the prompt did not reach the model: $(jq -c .path "$T/fake.log")"
    [ "$(jq -r '.headers.authorization' "$T/fake.log" | sort -u)" = "Bearer $VB_TEST_KEY" ] || fail "the host key was not injected"
    expect_clean
}

# ---- mode: service ------------------------------------------------------------

service_spec() {
    spec s <<EOF
api_version: v1
kind: agent
name: svc
sandbox: {memory_mb: 256}
llm: {provider: custom, agent: builtin, base_url: "http://127.0.0.1:$port", api_key_env: VB_TEST_KEY, model: fake-model}
agent: {mode: service, prompt: "serve", output_file: /workspace/served.json}
EOF
}

test_service_agent_runs_to_its_end_and_its_output_file_is_the_output() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [
      {"tool_use": {"name": "write_file", "id": "tu_1", "input": {"path": "/workspace/served.json", "content": "{\"served\": 42}"}}},
      {"expect": "tu_1", "text": "done serving"}]}'
    service_spec
    vb run --output json "$T/s.yaml"
    expect_rc 0
    jqx '.success and .output == "{\"served\": 42}" and .stages[0].llm_requests == 2'
    # without output_file it is no service (checked before anything runs)
    sed -i 's|, output_file: /workspace/served.json||' "$T/s.yaml"
    vb run "$T/s.yaml"
    expect_rc 2
    expect_err_has "mode 'service' needs an output_file"
    # and without a timeout
    sed -i 's|prompt: "serve"}|prompt: "serve", output_file: /workspace/o, timeout_secs: 5}|' "$T/s.yaml"
    vb run "$T/s.yaml"
    expect_rc 2
    expect_err_has "mode 'service' runs without a timeout"
    expect_clean
}

test_service_agent_that_never_writes_its_output_file_fails() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [{"text": "I forgot"}]}'
    service_spec
    vb run --output json "$T/s.yaml"
    expect_rc 1
    jqx '(.success | not) and .stages[0].error == "mode service: the agent ended without writing its output_file /workspace/served.json"'
    expect_clean
}

# ---- codex's events as they happen --------------------------------------------

test_codex_tool_events_arrive_while_it_runs() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    # the second answer streams slowly (1.5 s between its events): the
    # command's agent.tool event must come before it ends, not at codex's exit
    fake '{"turns": [
      {"tool_use": {"name": "exec_command", "id": "call_1", "input": {"cmd": "echo live-$((6*7))"}}},
      {"expect": "live-42", "text": "done", "delay_ms": 1500}]}'
    spec c <<EOF
api_version: v1
kind: agent
name: live
sandbox: {memory_mb: 1024}
llm: {provider: custom, agent: codex, base_url: "http://127.0.0.1:$port", api_key_env: VB_TEST_KEY, model: fake-model}
agent: {prompt: "run it", timeout_secs: 240}
EOF
    vb run --output json "$T/c.yaml"
    expect_rc 0
    jqx '.output == "done"'
    local tool second
    tool=$(events | jq -s '[.[] | select(.event == "agent.tool" and .tool == "shell" and (.result | contains("live-42")))][0].time_ms')
    second=$(events | jq -s '[.[] | select(.event == "llm.request")][1].time_ms')
    [ "$tool" != null ] && [ "$second" != null ] || fail "events: $(events | jq -c '{event, time_ms}' | tr '\n' ' ')"
    [ $((second - tool)) -ge 5000 ] || fail "the tool event came ${tool} ms, the second answer ended ${second} ms: not live"
    # and still bounded: its JSONL is kept as the record's
    [ -s "$(find "$XDG_STATE_HOME" -name codex.jsonl | head -1)" ] || fail "no codex.jsonl"
    expect_clean
}

test_interactive_sigterm_tears_down_and_gives_the_terminal_back() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [{"text": "WAITING-FOR-YOU-99"}]}'
    interactive_spec claude-code "hello"
    drive '[{"wait": "WAITING-FOR-YOU-99", "timeout": 120}, {"sleep": 1}, {"signal": "TERM"}]'
    [ "$rc" = 130 ] || fail "exit code $rc: $(tail -c 600 "$T/screen.log" | tr -d '\033')"
    [ $((term_flags & 10)) -eq 10 ] || fail "terminal flags after the run: $term_flags"
    jq -e '.success | not' "$(find "$XDG_STATE_HOME" -name result.json | head -1)" >/dev/null || fail "the run is not recorded as failed"
    expect_clean
}

run_tests
