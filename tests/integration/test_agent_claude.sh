#!/usr/bin/env bash
# Agent stages with claude-code, as a user runs them: the real claude-code
# binary (fetched into the user's cache once, as `voidbox agent pull` does)
# in a real VM (TCG here), its model a scripted fake Anthropic endpoint on
# the host's loopback (tests/fake/fake_llm.c) reached through the stage's
# LLM gateway over the VM's loopback forward.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/lib_agent.sh"

llm_yaml() {
    printf '{provider: custom, agent: claude-code, base_url: "http://127.0.0.1:%s", api_key_env: VB_TEST_KEY, model: fake-model' "$port"
    printf '%s}' "${1:-}"
}

requests() { jq -c 'select(.path | startswith("/v1/messages?"))' "$T/fake.log"; }

test_claude_code_runs_bash_in_the_guest_and_its_result_is_the_output() {
    export VB_TEST_KEY="sk-test-$RANDOM$RANDOM"
    fake '{"turns": [
      {"text": "Looking.", "tool_use": {"name": "Bash", "id": "toolu_1",
                    "input": {"command": "echo guest-says-$((6*7)); cat /proc/sys/kernel/random/boot_id; id -u", "description": "look"}},
       "usage": {"input_tokens": 120, "output_tokens": 30}},
      {"expect": "guest-says-42", "text": "the answer is 42", "usage": {"input_tokens": 200, "output_tokens": 10}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: cc
sandbox: {memory_mb: 1024, network: false}
llm: $(llm_yaml)
agent: {prompt: "find out the boot id", timeout_secs: 300}
EOF
    vb run --output json "$T/a.yaml"
    expect_rc 0
    jqx '.kind == "agent" and .success and .output == "the answer is 42"'
    jqx '.stages[0].llm_requests == 2 and .input_tokens == 320 and .output_tokens == 40'
    # the tool ran in this stage's VM, as uid 1000, and its output went back
    local boot
    boot=$(events | jq -r 'select(.event == "vm.booted") | .boot_id')
    [ -n "$boot" ] || fail "no boot id in the events"
    [ "$(requests | wc -l)" -eq 2 ] || fail "$(requests | wc -l) model requests reached the fake"
    requests | sed -n 2p | jq -e --arg b "$boot" '.body | tostring | contains($b) and contains("guest-says-42\\n\($b)\\n1000")' >/dev/null ||
        fail "the second request lacks the guest's boot id $boot and uid: $(requests | sed -n 2p | head -c 900)"
    requests | jq -e '.body.stream == true and .body.model == "fake-model"' >/dev/null || fail "not streamed"
    requests | sed -n 1p | jq -e '.body.messages | tostring | contains("find out the boot id")' >/dev/null ||
        fail "the prompt is not in the first request"
    # nothing but model requests left the guest (no telemetry, no update check)
    [ "$(wc -l <"$T/fake.log")" -eq 2 ] || fail "other requests reached the fake: $(jq -c '{method, path}' "$T/fake.log")"
    # events: the tool call with its name, input and result; the requests
    events | jq -se 'any(.[]; .event == "agent.tool" and .tool == "Bash" and (.input | contains("guest-says")) and (.result | contains("guest-says-42")) and (.is_error | not))' >/dev/null ||
        fail "no agent.tool event for Bash: $(events | grep -c agent.tool)"
    [ "$(events | jq -c 'select(.event == "llm.request" and .status == 200)' | wc -l)" -eq 2 ] ||
        fail "llm.request events: $(events | grep llm.request)"
    # what it said, and its own result
    events | jq -se '[.[] | select(.event == "agent.message") | .text] == ["Looking.", "the answer is 42"]' >/dev/null ||
        fail "agent.message events: $(events | grep agent.message)"
    events | jq -se 'any(.[]; .event == "agent.result" and .agent == "claude-code" and .subtype == "success" and (.is_error | not) and .result == "the answer is 42" and .num_turns >= 1)' >/dev/null ||
        fail "no agent.result event: $(events | grep agent.result)"
    grep -q "stage cc: says Looking." "$T/err" || fail "the progress lacks what it said: $(head -c 900 "$T/err")"
    vb logs "$(jq -r .run_id <"$T/out")"
    expect_rc 0
    grep -q "agent.tool.*Bash" "$T/out" || fail "voidbox logs does not show the tool call: $(head -c 600 "$T/out")"
    grep -q "agent.result.*claude-code success" "$T/out" || fail "voidbox logs does not show the result: $(head -c 900 "$T/out")"
    expect_clean
}

# --follow shows what claude says and what its tools print on stderr, as
# lines prefixed by the stage; its stream-json (the stage's stdout log) is
# the record's, not the person's.
test_follow_shows_what_claude_says_not_its_json() {
    export VB_TEST_KEY="sk-test-$RANDOM$RANDOM"
    fake '{"turns": [
      {"text": "Counting now.", "tool_use": {"name": "Bash", "id": "toolu_1",
                    "input": {"command": "echo counted-$((2*21))", "description": "count"}},
       "usage": {"input_tokens": 12, "output_tokens": 3}},
      {"expect": "counted-42", "text": "it is 42", "usage": {"input_tokens": 20, "output_tokens": 1}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: cc
sandbox: {memory_mb: 1024, network: false}
llm: $(llm_yaml)
agent: {prompt: "count", timeout_secs: 300}
EOF
    vb run --follow --output json "$T/a.yaml"
    expect_rc 0
    jqx '.output == "it is 42"'
    # lines are "cc   | TEXT": stage names padded to one width
    grep -Eq '^cc +\| Counting now\.$' "$T/err" || fail "--follow lacks what claude said: $(head -c 900 "$T/err")"
    grep -Eq '^cc +\| it is 42$' "$T/err" || fail "--follow lacks claude's answer: $(head -c 900 "$T/err")"
    ! grep -Eq '^cc +\| \{' "$T/err" || fail "--follow shows claude's JSON: $(grep -Em2 '^cc +\| \{' "$T/err" | head -c 400)"
    # the record keeps the JSON as the stage's stdout
    vb logs "$(jq -r .run_id <"$T/out")" --stage cc
    expect_rc 0
    grep -q '"type":"result"' "$T/out" || fail "the stage's stdout log lacks claude's result line: $(head -c 400 "$T/out")"
    expect_clean
}

test_host_key_never_reaches_the_guest() {
    export VB_TEST_KEY="sk-canary-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    fake '{"turns": [
      {"tool_use": {"name": "Bash", "id": "toolu_s",
        "input": {"command": "for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do tr \"\\\\0\" \"\\\\n\" < $f; echo; done 2>/dev/null | sort -u | grep -e ANTHROPIC -e sk- ; echo scanned-$(ls -d /proc/[0-9]* | wc -l)"}},
       "usage": {"input_tokens": 1, "output_tokens": 1}},
      {"expect": "scanned-", "text": "ok", "usage": {"input_tokens": 1, "output_tokens": 1}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: canary
sandbox: {memory_mb: 1024, env: {ANTHROPIC_API_KEY: ""}}
llm: $(llm_yaml)
agent: {prompt: "look around", timeout_secs: 300}
EOF
    ANTHROPIC_API_KEY="$VB_TEST_KEY" vb run --output json "$T/a.yaml"
    expect_rc 0
    jqx '.output == "ok"'
    # the scan saw claude's own environment: the placeholder, not the key
    requests | sed -n 2p | jq -e '.body | tostring | contains("ANTHROPIC_API_KEY=") and contains("ANTHROPIC_BASE_URL=http://127.0.0.1:")' >/dev/null ||
        fail "the environment scan did not come back: $(requests | sed -n 2p | head -c 900)"
    ! grep -q "$VB_TEST_KEY" <(jq -c .body "$T/fake.log") || fail "the canary is in a request body"
    [ "$(requests | jq -r '.headers["x-api-key"]' | sort -u)" = "$VB_TEST_KEY" ] ||
        fail "the fake did not get the host key in its header"
    ! grep -rq "$VB_TEST_KEY" "$XDG_STATE_HOME" || fail "the canary is in the run record"
    expect_clean
}

# (and a prompt longer than one argument may be: 150 KB)
test_output_file_wins_and_carries_to_the_next_box() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [
      {"expect": "PROMPT-END-MARK", "tool_use": {"name": "Bash", "id": "toolu_w", "input": {"command": "echo from-the-file-7 > /workspace/output.json"}}},
      {"expect": "toolu_w", "text": "I wrote it"}]}'
    local big
    big=$(head -c 150000 /dev/zero | tr '\0' a)
    [ ${#big} -eq 150000 ] || fail "the test's prompt text"
    spec p <<EOF
api_version: v1
kind: pipeline
name: carry
sandbox: {memory_mb: 1024}
llm: $(llm_yaml)
pipeline:
  boxes:
    - name: write
      prompt: "write your answer to /workspace/output.json $big PROMPT-END-MARK"
      timeout_secs: 300
    - {name: read, sandbox: {memory_mb: 256}, run: {program: cat, args: [/workspace/input.json]}}
EOF
    vb run --output json "$T/p.yaml"
    expect_rc 0
    jqx '.stages[0].output == "from-the-file-7\n" and .output == "from-the-file-7\n"'
    jqx '.stages[0].llm_requests == 2 and (.stages[1] | has("llm_requests") | not)'
    printf '%s PROMPT-END-MARK' "$big" >"$T/prompt.txt"
    requests | sed -n 1p | jq -r '.body.messages | tostring' | grep -qFf "$T/prompt.txt" ||
        fail "the whole prompt is not in the first request"
    expect_clean
}

test_a_failing_provider_fails_the_stage_with_the_gateway_message() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [{"status": 401, "error_type": "authentication_error", "error": "invalid x-api-key"}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: auth
sandbox: {memory_mb: 1024}
llm: $(llm_yaml)
agent: {prompt: "hello", timeout_secs: 300}
EOF
    vb run --output json "$T/a.yaml"
    expect_rc 1
    jqx ".error | contains(\"box 'auth' failed: llm provider custom: HTTP 401 from http://127.0.0.1:$port/v1/messages\")"
    jqx '.success == false and .stages[0].success == false'
    expect_clean
}

test_a_token_budget_stops_claude_at_the_gateway() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [{"tool_use": {"name": "Bash", "id": "toolu_l", "input": {"command": "true"}},
                      "usage": {"input_tokens": 15000, "output_tokens": 100}}]}'
    # (the gateway also refuses a request whose own size would cross the
    # budget: claude's are ~12k tokens each, with its tool definitions)
    spec a <<EOF
api_version: v1
kind: agent
name: spender
sandbox: {memory_mb: 1024}
llm: $(llm_yaml ", budget: {max_tokens: 40000}")
agent: {prompt: "loop forever", timeout_secs: 300}
EOF
    vb run --output json "$T/a.yaml"
    expect_rc 1
    jqx '.success == false and (.error | contains("budget exceeded (max_tokens 40000: 30200 used"))'
    jqx '.stages[0].input_tokens == 30000 and .stages[0].output_tokens == 200 and .stages[0].llm_requests == 2'
    [ "$(requests | wc -l)" -eq 2 ] || fail "$(requests | wc -l) requests reached the fake, expected 2"
    expect_clean
}

test_timeout_secs_stops_claude_and_its_tools() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [{"tool_use": {"name": "Bash", "id": "toolu_z", "input": {"command": "tail -f /dev/null"}}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: sleeper
sandbox: {memory_mb: 1024}
llm: $(llm_yaml)
agent: {prompt: "wait", timeout_secs: 30}
EOF
    local t0=$SECONDS
    vb run --output json "$T/a.yaml"
    expect_rc 1
    jqx '.error == "box '"'sleeper'"' failed: timed out after 30 s" and .stages[0].llm_requests == 1'
    [ $((SECONDS - t0)) -lt 60 ] || fail "took $((SECONDS - t0)) s"
    expect_clean
}

test_sigint_while_claude_works_tears_it_down() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [{"tool_use": {"name": "Bash", "id": "toolu_c", "input": {"command": "tail -f /dev/null"}}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: busy
sandbox: {memory_mb: 1024}
llm: $(llm_yaml)
agent: {prompt: "wait"}
EOF
    # once its tool runs (the model's first answer went back)
    interrupt_after_first_request 2 15
    expect_clean
}

test_example_runs_with_the_base_url_overridden() {
    fake '{"turns": [
      {"tool_use": {"name": "Bash", "id": "toolu_e", "input": {"command": "uname -s; nproc; grep MemTotal /proc/meminfo"}}},
      {"expect": "MemTotal", "text": "Linux, 1 CPU, 1 GiB", "usage": {"input_tokens": 60, "output_tokens": 4}}]}'
    VOIDBOX_LLM_BASE_URL="http://127.0.0.1:$port" ANTHROPIC_API_KEY=sk-example AGENT_MODEL=fake-model \
        vb run --output json "$ROOT/examples/agent-claude.yaml"
    expect_rc 0
    jqx '.output == "Linux, 1 CPU, 1 GiB" and .stages[0].llm_requests == 2'
    [ "$(requests | jq -r '.headers["x-api-key"]' | sort -u)" = sk-example ] || fail "key header"
    [ "$(requests | jq -r '.body.model' | sort -u)" = fake-model ] || fail "model"
    expect_clean
}

run_tests
