#!/usr/bin/env bash
# Agent stages with the real codex binary (npm @openai/codex, pinned in
# src/agentbin) in the VM, as a user runs them: real VMs (TCG here), the
# model a scripted fake OpenAI Responses endpoint on the loopback
# (tests/fake/fake_llm.c) reached through the stage's LLM gateway over the
# guest's loopback forward.  codex is fetched into the cache on first use
# (about 100 MB from the npm registry).
TEST_TIMEOUT=${TEST_TIMEOUT:-400}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/lib_agent.sh"

llm_yaml() {
    printf '{provider: custom, agent: codex, base_url: "http://127.0.0.1:%s", api_key_env: VB_TEST_KEY, model: fake-model' "$port"
    printf '%s}' "${1:-}"
}


test_codex_runs_a_command_in_the_guest_and_its_answer_is_output() {
    export VB_TEST_KEY="sk-test-$RANDOM$RANDOM"
    fake '{"turns": [
      {"tool_use": {"name": "exec_command", "id": "call_1",
                    "input": {"cmd": "echo guest-says-$((6*7)); id -u; cat /proc/sys/kernel/random/boot_id"}},
       "usage": {"input_tokens": 120, "output_tokens": 30}},
      {"expect": "guest-says-42", "text": "the answer is 42", "usage": {"input_tokens": 200, "output_tokens": 7}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: coder
sandbox: {memory_mb: 1024}
llm: $(llm_yaml)
agent: {prompt: "-find out the boot id", timeout_secs: 240}
EOF
    vb run --output json "$T/a.yaml"
    expect_rc 0
    jqx '.kind == "agent" and .output == "the answer is 42" and .success'
    jqx '.stages[0].llm_requests == 2 and .stages[0].input_tokens == 320 and .stages[0].output_tokens == 37'
    [ "$(wc -l <"$T/fake.log")" -eq 2 ] || fail "$(wc -l <"$T/fake.log") requests reached the fake"
    jq -r .path "$T/fake.log" | sort -u | grep -qx /v1/responses || fail "paths: $(jq -r .path "$T/fake.log")"
    # the prompt reached the model as given (a leading '-' is no option)
    sed -n 1p "$T/fake.log" | jq -e '.body.input | tostring | contains("-find out the boot id")' >/dev/null ||
        fail "the prompt is not in the first request"
    # the command ran in this stage's VM, as uid 1000: its boot id came back
    local boot
    boot=$(events | jq -r 'select(.event == "vm.booted") | .boot_id')
    [ -n "$boot" ] || fail "no boot id in the events"
    sed -n 2p "$T/fake.log" | jq -e --arg b "$boot" '.body | tostring | contains($b) and contains("guest-says-42\\n1000\\n")' >/dev/null ||
        fail "the second request lacks the guest's output ($boot): $(sed -n 2p "$T/fake.log" | jq -c '.body.input[-1]' | head -c 600)"
    events | jq -se 'any(.[]; .event == "agent.tool" and .tool == "shell" and (.input | contains("guest-says")) and (.result | contains("guest-says-42")) and (.is_error | not))' >/dev/null ||
        fail "no agent.tool event for the command: $(events | grep agent.tool | head -c 600)"
    [ "$(events | jq -c 'select(.event == "llm.request" and .status == 200 and .path == "/v1/responses")' | wc -l)" -eq 2 ] ||
        fail "llm.request events: $(events | grep llm.request | head -c 600)"
    expect_clean
}

# --follow shows what codex says, not its JSONL (which stays the stage's
# stdout log); its messages are agent.message events as claude-code's are.
test_follow_shows_what_codex_says_not_its_jsonl() {
    export VB_TEST_KEY="sk-test-$RANDOM$RANDOM"
    fake '{"turns": [
      {"tool_use": {"name": "exec_command", "id": "call_1", "input": {"cmd": "echo counted-$((2*21))"}},
       "usage": {"input_tokens": 12, "output_tokens": 3}},
      {"expect": "counted-42", "text": "it is 42", "usage": {"input_tokens": 20, "output_tokens": 1}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: coder
sandbox: {memory_mb: 1024}
llm: $(llm_yaml)
agent: {prompt: "count", timeout_secs: 240}
EOF
    vb run --follow --output json "$T/a.yaml"
    expect_rc 0
    jqx '.output == "it is 42"'
    events | jq -se '[.[] | select(.event == "agent.message") | .text] | index("it is 42") != null' >/dev/null ||
        fail "agent.message events: $(events | grep agent.message | head -c 400)"
    grep -Eq '^coder +\| it is 42$' "$T/err" || fail "--follow lacks codex's answer: $(head -c 900 "$T/err")"
    ! grep -Eq '^coder +\| \{' "$T/err" || fail "--follow shows codex's JSONL: $(grep -Em2 '^coder +\| \{' "$T/err" | head -c 400)"
    vb logs "$(jq -r .run_id <"$T/out")" --stage coder
    expect_rc 0
    grep -q '"type":"turn.completed"' "$T/out" || fail "the stage's stdout log lacks codex's JSONL: $(head -c 400 "$T/out")"
    expect_clean
}

test_host_key_never_reaches_the_guest() {
    export VB_TEST_KEY="sk-canary-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    # every process's environment and command line, and every file outside
    # /proc, /sys, /dev and the read-only agent tree, go back to the model
    fake '{"turns": [
      {"tool_use": {"name": "exec_command", "id": "call_1",
                    "input": {"cmd": "for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do tr \"\\\\0\" \"\\\\n\" < $f; echo; done 2>/dev/null | sort -u; grep -rahoI --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev --exclude-dir=opt \"sk-canary-[0-9a-f]*\" / 2>/dev/null | sort -u; echo scanned-$(ls -d /proc/[0-9]* | wc -l)"}},
       "usage": {"input_tokens": 1, "output_tokens": 1}},
      {"expect": "scanned-", "text": "ok", "usage": {"input_tokens": 1, "output_tokens": 1}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: canary
sandbox: {memory_mb: 1024, env: {OPENAI_API_KEY: ""}}
llm: $(llm_yaml)
agent: {prompt: "look around", timeout_secs: 240}
EOF
    OPENAI_API_KEY="$VB_TEST_KEY" vb run --output json "$T/a.yaml"
    expect_rc 0
    jqx '.output == "ok"'
    sed -n 2p "$T/fake.log" | jq -e '.body | tostring | contains("OPENAI_BASE_URL=http://127.0.0.1:4381/v1")' >/dev/null ||
        fail "the scan did not come back: $(sed -n 2p "$T/fake.log" | head -c 600)"
    ! grep -q "$VB_TEST_KEY" <(jq -c .body "$T/fake.log") || fail "the canary is in a request body"
    [ "$(jq -r '.headers.authorization' "$T/fake.log" | sort -u)" = "Bearer $VB_TEST_KEY" ] ||
        fail "the fake did not get the host key in its header: $(jq -c .headers "$T/fake.log" | head -c 400)"
    ! grep -rq "$VB_TEST_KEY" "$T/state" || fail "the canary is in the run record"
    expect_clean
}

# In a pipeline: the carried input reaches codex's prompt, output_file is
# the output, the next box gets it.
test_output_file_wins_and_carries_on() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [
      {"expect": "carried-in-7", "tool_use": {"name": "exec_command", "id": "call_1",
                    "input": {"cmd": "echo \"{\\\"n\\\": $((6*7))}\" > /workspace/output.json; echo wrote"}},
       "usage": {"input_tokens": 5, "output_tokens": 5}},
      {"expect": "wrote", "text": "see the file", "usage": {"input_tokens": 5, "output_tokens": 5}}]}'
    spec p <<EOF
api_version: v1
kind: pipeline
name: two
sandbox: {memory_mb: 1024}
llm: $(llm_yaml)
pipeline:
  boxes:
    - {name: gen, run: {program: echo, args: [carried-in-7]}}
    - {name: think, prompt: "compute n", timeout_secs: 240}
    - {name: use, run: {program: cat, args: [/workspace/input.json]}}
EOF
    vb run --output json "$T/p.yaml"
    expect_rc 0
    jqx '.stages[1].output == "{\"n\": 42}\n" and .output == "{\"n\": 42}\n"'
    jqx '.input_tokens == 10 and (.stages[0] | has("input_tokens") | not)'
    expect_clean
}

test_provider_401_fails_the_stage_with_the_gateway_message() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [{"status": 401, "error_type": "invalid_request_error", "error": "Incorrect API key"}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: auth
sandbox: {memory_mb: 1024}
llm: $(llm_yaml)
agent: {prompt: "hello", timeout_secs: 240}
EOF
    vb run --output json "$T/a.yaml"
    expect_rc 1
    jqx ".error | startswith(\"box 'auth' failed: llm provider custom: HTTP 401 from http://127.0.0.1:$port/v1/responses\")"
    expect_clean
}

test_example_runs_against_a_responses_endpoint() {
    fake '{"turns": [
      {"tool_use": {"name": "exec_command", "id": "call_1", "input": {"cmd": "uname -s; grep -c processor /proc/cpuinfo"}},
       "usage": {"input_tokens": 40, "output_tokens": 9}},
      {"expect": "Linux", "text": "Linux, 1 CPU", "usage": {"input_tokens": 60, "output_tokens": 4}}]}'
    CODEX_BASE_URL="http://127.0.0.1:$port" CODEX_API_KEY=sk-example CODEX_MODEL=fake-model \
        vb run --output json "$ROOT/examples/agent-codex.yaml"
    expect_rc 0
    jqx '.output == "Linux, 1 CPU" and .input_tokens == 100'
    [ "$(jq -r '.headers.authorization' "$T/fake.log" | sort -u)" = "Bearer sk-example" ] || fail "key header"
    [ "$(jq -r '.body.model' "$T/fake.log" | sort -u)" = fake-model ] || fail "model"
    expect_clean
}

test_token_budget_stops_a_looping_codex() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [{"tool_use": {"name": "exec_command", "id": "call_1", "input": {"cmd": "true"}},
                      "usage": {"input_tokens": 12000, "output_tokens": 100}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: spender
sandbox: {memory_mb: 1024}
llm: $(llm_yaml ", budget: {max_tokens: 20000}")
agent: {prompt: "loop forever", timeout_secs: 240}
EOF
    vb run --output json "$T/a.yaml"
    expect_rc 1
    # codex's second request (~40 KB, estimated at ~10k tokens) would cross it
    jqx '.success == false and (.error | contains("budget exceeded (max_tokens 20000: 12100 used"))'
    jqx '.stages[0].input_tokens == 12000 and .stages[0].output_tokens == 100 and .stages[0].llm_requests == 1'
    [ "$(wc -l <"$T/fake.log")" -eq 1 ] || fail "$(wc -l <"$T/fake.log") requests reached the fake, expected 1"
    expect_clean
}

test_timeout_secs_kills_codex() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [{"tool_use": {"name": "exec_command", "id": "call_1", "input": {"cmd": "sleep 300", "yield_time_ms": 300000}},
                      "usage": {"input_tokens": 1, "output_tokens": 1}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: sleeper
sandbox: {memory_mb: 1024}
llm: $(llm_yaml)
agent: {prompt: "wait", timeout_secs: 20}
EOF
    local t0=$SECONDS
    vb run --output json "$T/a.yaml"
    expect_rc 1
    jqx '.error == "box '"'sleeper'"' failed: timed out after 20 s" and .stages[0].llm_requests >= 1'
    [ $((SECONDS - t0)) -lt 60 ] || fail "took $((SECONDS - t0)) s"
    expect_clean
}

# What codex prints comes from the guest: a command's output with terminal
# escapes reaches no terminal raw, and a JSONL line longer than the reader
# keeps (1 MiB: a command that printed 3 MB) is dropped without disturbing
# the stage.
test_hostile_command_output_is_contained() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [
      {"tool_use": {"name": "exec_command", "id": "call_1", "input": {"cmd": "printf \"\\033]0;pwned\\007\\033[31mred-mark\\n\""}},
       "usage": {"input_tokens": 1, "output_tokens": 1}},
      {"expect": "red-mark", "tool_use": {"name": "exec_command", "id": "call_2", "input": {"cmd": "head -c 3000000 /dev/zero | tr \"\\0\" x; echo; echo tail-mark"}},
       "usage": {"input_tokens": 1, "output_tokens": 1}},
      {"expect": "tail-mark", "text": "survived", "usage": {"input_tokens": 1, "output_tokens": 1}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: hostile
sandbox: {memory_mb: 1024}
llm: $(llm_yaml)
agent: {prompt: "print things", timeout_secs: 240}
EOF
    vb run --output json "$T/a.yaml"
    expect_rc 0
    jqx '.output == "survived" and .stages[0].llm_requests == 3'
    [ "$(events | jq -c 'select(.event == "agent.tool")' | wc -l)" -eq 1 ] ||
        fail "expected the escape command's agent.tool event only: $(events | grep agent.tool | cut -c1-300)"
    events | jq -se 'any(.[]; .event == "agent.tool" and (.result | contains("\u001b[31mred-mark")))' >/dev/null ||
        fail "the escape command's output is not in its agent.tool event"
    vb logs "$(jq -r .run_id <"$T/out")"
    expect_rc 0
    grep -q "agent.tool.*shell" "$T/out" || fail "voidbox logs lacks the tool call: $(head -c 600 "$T/out")"
    ! grep -q $'\033' "$T/out" "$T/err" || fail "a raw escape reached the terminal: $(cat -v "$T/out" | grep -m3 pwned)"
    expect_clean
}

run_tests
