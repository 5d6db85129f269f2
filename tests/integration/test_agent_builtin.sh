#!/usr/bin/env bash
# Agent stages with the builtin agent, as a user runs them: real VMs (TCG
# here), the model a scripted fake Anthropic endpoint on the loopback
# (tests/fake/fake_llm.c) reached through the stage's LLM gateway.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/lib_agent.sh"

# The llm section every spec here uses: the fake, a canary as the host key.
llm_yaml() {
    printf '{provider: custom, base_url: "http://127.0.0.1:%s", api_key_env: VB_TEST_KEY, model: fake-model' "$port"
    printf '%s}' "${1:-}"
}


test_tool_loop_runs_in_the_guest_and_final_text_is_output() {
    export VB_TEST_KEY="sk-test-$RANDOM$RANDOM"
    fake '{"turns": [
      {"tool_use": {"name": "bash", "id": "tu_1",
                    "input": {"command": "echo guest-says-$((6*7)); cat /proc/sys/kernel/random/boot_id; uname -r > /workspace/k"}},
       "usage": {"input_tokens": 120, "output_tokens": 30}},
      {"expect": "guest-says-42",
       "tool_use": {"name": "read_file", "id": "tu_2", "input": {"path": "/workspace/k"}},
       "usage": {"input_tokens": 200, "output_tokens": 10}},
      {"expect": "tu_2", "text": "all done", "usage": {"input_tokens": 250, "output_tokens": 5}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: looper
sandbox: {memory_mb: 256}
llm: $(llm_yaml)
agent: {prompt: "find out the boot id"}
EOF
    vb run --output json "$T/a.yaml"
    expect_rc 0
    jqx '.kind == "agent" and .output == "all done" and .success'
    jqx '.stages[0].name == "looper" and .stages[0].input_tokens == 570 and .stages[0].output_tokens == 45'
    jqx '.stages[0].llm_requests == 3 and .input_tokens == 570 and .output_tokens == 45 and .total_cost_usd == 0'
    # the guest's own boot id came back to the model in the second request
    local boot
    boot=$(events | jq -r 'select(.event == "vm.booted") | .boot_id')
    [ -n "$boot" ] || fail "no boot id in the events"
    [ "$(wc -l <"$T/fake.log")" -eq 3 ] || fail "$(wc -l <"$T/fake.log") requests reached the fake"
    sed -n 2p "$T/fake.log" | jq -e --arg b "$boot" '.body | tostring | contains($b)' >/dev/null ||
        fail "the second request lacks the guest's boot id $boot"
    sed -n 3p "$T/fake.log" | jq -e '.body | tostring | (contains("-voidbox") or contains("6."))' >/dev/null ||
        fail "the third request lacks the guest's kernel version"
    # events: one llm.request per model request, the tool calls
    [ "$(events | jq -c 'select(.event == "llm.request")' | wc -l)" -eq 3 ] || fail "llm.request events: $(events | grep llm)"
    events | jq -se 'any(.[]; .event == "llm.request" and .status == 200 and .provider == "custom" and .model == "fake-model" and .input_tokens == 120 and .output_tokens == 30)' >/dev/null ||
        fail "llm.request lacks its fields: $(events | grep llm.request | head -1)"
    events | jq -se 'any(.[]; .event == "agent.tool" and .tool == "bash" and (.result | contains("guest-says-42")))' >/dev/null ||
        fail "no agent.tool event for bash"
    vb logs "$(jq -r .run_id <"$T/out")"
    expect_rc 0
    grep -q "agent.tool.*bash {\"command\":\"echo guest-says" "$T/out" || fail "voidbox logs does not show the tool call: $(head -c 600 "$T/out")"
    grep -q "llm.request.*fake-model: HTTP 200, 120 in / 30 out tokens" "$T/out" || fail "voidbox logs does not show the model requests"
    expect_clean
}

test_token_budget_stops_a_looping_agent() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [{"tool_use": {"name": "bash", "id": "tu", "input": {"command": "true"}},
                      "usage": {"input_tokens": 1500, "output_tokens": 100}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: spender
sandbox: {memory_mb: 256}
llm: $(llm_yaml ", budget: {max_tokens: 3000}")
agent: {prompt: "loop forever"}
EOF
    vb run --output json "$T/a.yaml"
    expect_rc 1
    jqx '.success == false and (.error | contains("budget exceeded (max_tokens 3000: 3200 used"))'
    jqx '.stages[0].input_tokens == 3000 and .stages[0].output_tokens == 200 and .stages[0].llm_requests == 2'
    [ "$(wc -l <"$T/fake.log")" -eq 2 ] || fail "$(wc -l <"$T/fake.log") requests reached the fake, expected 2"
    expect_clean
}

test_provider_401_fails_the_stage_with_the_gateway_message() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [{"status": 401, "error_type": "authentication_error", "error": "invalid x-api-key"}]}'
    spec a <<EOF
api_version: v1
kind: pipeline
name: auth
sandbox: {memory_mb: 256}
llm: $(llm_yaml)
pipeline:
  boxes:
    - {name: think, prompt: "hello"}
    - {name: after, run: {program: "true"}}
EOF
    vb run --output json "$T/a.yaml"
    expect_rc 1
    jqx ".error | contains(\"box 'think' failed: llm provider custom: HTTP 401 from http://127.0.0.1:$port/v1/messages (authentication_error: invalid x-api-key); fix:\")"
    jqx '.stages[1].skipped and (.stages[1] | has("input_tokens") | not)'
    expect_clean
}

# (box a's inline skill reaches the model in its system prompt)
test_pipeline_of_two_agents_carries_output_and_sums_tokens() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [
      {"expect": "SKILLMARK-7", "text": "alpha-out", "usage": {"input_tokens": 10, "output_tokens": 5}},
      {"expect": "alpha-out", "tool_use": {"name": "bash", "id": "tu", "input": {"command": "cat /workspace/input.json"}},
       "usage": {"input_tokens": 20, "output_tokens": 7}},
      {"expect": "stdout:\\nalpha-out", "text": "beta-out", "usage": {"input_tokens": 30, "output_tokens": 1}}]}'
    spec p <<EOF
api_version: v1
kind: pipeline
name: two
sandbox: {memory_mb: 256}
llm: $(llm_yaml)
pipeline:
  boxes:
    - name: a
      prompt: "say alpha"
      skills: [{name: style, content: "answer tersely SKILLMARK-7"}]
    - {name: b, prompt: "read your input"}
    - {name: c, run: {program: cat, args: [/workspace/input.json]}}
EOF
    vb run --output json "$T/p.yaml"
    expect_rc 0
    jqx '.output == "beta-out" and .stages[1].output == "beta-out" and .stages[0].output == "alpha-out"'
    jqx '.input_tokens == 60 and .output_tokens == 13'
    jqx '.stages[0].input_tokens == 10 and .stages[1].input_tokens == 50'
    jqx '(.stages[2] | has("input_tokens") | not)'
    sed -n 1p "$T/fake.log" | jq -e '.body.system | contains("## Skill: style") and contains("SKILLMARK-7")' >/dev/null ||
        fail "the skill is not in the system prompt: $(sed -n 1p "$T/fake.log" | head -c 600)"
    expect_clean
}

test_host_key_never_reaches_the_guest() {
    export VB_TEST_KEY="sk-canary-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    fake '{"turns": [
      {"tool_use": {"name": "bash", "id": "tu", "input": {"command": "for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do tr \"\\\\0\" \"\\\\n\" < $f; echo; done 2>/dev/null | sort -u; echo scanned-$(ls -d /proc/[0-9]* | wc -l)"}},
       "usage": {"input_tokens": 1, "output_tokens": 1}},
      {"expect": "scanned-", "text": "ok", "usage": {"input_tokens": 1, "output_tokens": 1}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: canary
sandbox: {memory_mb: 256, env: {ANTHROPIC_API_KEY: ""}}
llm: $(llm_yaml)
agent: {prompt: "look around"}
EOF
    ANTHROPIC_API_KEY="$VB_TEST_KEY" vb run --output json "$T/a.yaml"
    expect_rc 0
    jqx '.output == "ok"'
    # what the guest's processes hold came back to the model: no canary in it
    sed -n 2p "$T/fake.log" | jq -e '.body | tostring | contains("PATH=")' >/dev/null ||
        fail "the environment scan did not come back: $(sed -n 2p "$T/fake.log" | head -c 600)"
    ! grep -q "$VB_TEST_KEY" <(jq -c .body "$T/fake.log") || fail "the canary is in a request body"
    [ "$(jq -r '.headers["x-api-key"]' "$T/fake.log" | sort -u)" = "$VB_TEST_KEY" ] ||
        fail "the fake did not get the host key in its header"
    ! grep -rq "$VB_TEST_KEY" "$T/state" || fail "the canary is in the run record"
    expect_clean
}

test_timeout_secs_bounds_the_agent_and_its_tools() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [{"tool_use": {"name": "bash", "id": "tu", "input": {"command": "sleep 60"}},
                      "usage": {"input_tokens": 1, "output_tokens": 1}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: sleeper
sandbox: {memory_mb: 256}
llm: $(llm_yaml)
agent: {prompt: "wait", timeout_secs: 4}
EOF
    local t0=$SECONDS
    vb run --output json "$T/a.yaml"
    expect_rc 1
    jqx '.error == "box '"'sleeper'"' failed: timed out after 4 s" and .stages[0].llm_requests == 1'
    [ $((SECONDS - t0)) -lt 30 ] || fail "took $((SECONDS - t0)) s"
    events | jq -se 'any(.[]; .event == "agent.tool" and .is_error and (.result | startswith("timed out")))' >/dev/null ||
        fail "the bash call was not cut by the stage's timeout"
    expect_clean
}

test_interactive_mode_is_refused_clearly() {
    spec a <<'EOF'
api_version: v1
kind: agent
name: cx
llm: {provider: custom, base_url: "http://127.0.0.1:9", api_key_env: HOME, agent: builtin}
agent: {prompt: "hi", mode: interactive}
EOF
    vb run "$T/a.yaml"
    expect_rc 2 # stdin is no terminal (test_agent_modes.sh runs it on one)
    expect_err_has "agent mode 'interactive' attaches your terminal to the agent"
    expect_clean
}

test_example_runs_against_an_anthropic_compatible_endpoint() {
    fake '{"turns": [
      {"tool_use": {"name": "bash", "id": "tu", "input": {"command": "uname -s; grep MemTotal /proc/meminfo"}},
       "usage": {"input_tokens": 40, "output_tokens": 9}},
      {"expect": "MemTotal", "text": "Linux, 512 MiB", "usage": {"input_tokens": 60, "output_tokens": 4}}]}'
    AGENT_BASE_URL="http://127.0.0.1:$port" AGENT_API_KEY=sk-example AGENT_MODEL=fake-model \
        vb run --output json "$ROOT/examples/agent-builtin.yaml"
    expect_rc 0
    jqx '.output == "Linux, 512 MiB" and .input_tokens == 100'
    [ "$(jq -r '.headers["x-api-key"]' "$T/fake.log" | sort -u)" = sk-example ] || fail "key header"
    [ "$(jq -r '.body.model' "$T/fake.log" | sort -u)" = fake-model ] || fail "model"
    expect_clean
}

test_example_agent_pipeline_fans_out_and_reduces() {
    # two agents in parallel (either may take either turn), then the reducer,
    # whose request must carry both answers
    fake '{"turns": [
      {"text": "cpu-or-disk-one", "usage": {"input_tokens": 10, "output_tokens": 3}},
      {"text": "cpu-or-disk-two", "usage": {"input_tokens": 10, "output_tokens": 3}},
      {"expect": "cpu-or-disk-two", "text": "one paragraph", "usage": {"input_tokens": 30, "output_tokens": 5}}]}'
    AGENT_BASE_URL="http://127.0.0.1:$port" AGENT_API_KEY=sk-example AGENT_MODEL=fake-model \
        vb run --output json "$ROOT/examples/agent-pipeline.yaml"
    expect_rc 0
    jqx '.output == "one paragraph" and .input_tokens == 50 and .output_tokens == 11'
    jqx '[.stages[].name] == ["cpu", "disk", "report"]'
    grep -q "cpu-or-disk-one" <(jq -r '.body.messages[0].content | tostring' "$T/fake.log" | tail -1) ||
        fail "the reducer did not get both answers"
    expect_clean
}

run_tests
