#!/usr/bin/env bash
# LLM budgets as a user sets them: `voidbox run --budget`, one budget for
# all the run's agent stages (fan-outs included) on top of each stage's
# llm.budget.  Real VMs (TCG here), the builtin agent, the scripted fake
# Anthropic endpoint (tests/fake/fake_llm.c) behind each stage's gateway.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/lib_agent.sh"

llm_yaml() {
    printf '{provider: custom, base_url: "http://127.0.0.1:%s", api_key_env: VB_TEST_KEY, model: fake-model' "$port"
    printf '%s}' "${1:-}"
}

# The run's result.json in its record.
record_result() { cat "$(find "$T/state" -name result.json | head -1)"; }

# A tool call that never ends the loop: an agent that would go on forever.
loop_turn() {
    printf '%s' '{"tool_use": {"name": "bash", "id": "tu", "input": {"command": "true"}}, "usage": {"input_tokens": 100, "output_tokens": 10}}'
}

test_run_budget_stops_the_second_agent_of_a_pipeline() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [
      {"tool_use": {"name": "bash", "id": "tu_1", "input": {"command": "echo hi"}}, "usage": {"input_tokens": 100, "output_tokens": 10}},
      {"text": "alpha-out", "usage": {"input_tokens": 100, "output_tokens": 10}},
      '"$(loop_turn)"']}'
    spec p <<EOF
api_version: v1
kind: pipeline
name: budgeted
sandbox: {memory_mb: 256}
llm: $(llm_yaml)
pipeline:
  boxes:
    - {name: a, prompt: "say alpha"}
    - {name: b, prompt: "loop forever"}
    - {name: c, run: {program: "true"}}
EOF
    vb run --output json --budget max_requests=3 "$T/p.yaml"
    expect_rc 1
    # a ran whole (2 requests); b got the third and was refused the fourth
    [ "$(wc -l <"$T/fake.log")" -eq 3 ] || fail "$(wc -l <"$T/fake.log") requests reached the fake, expected 3"
    jqx '.stages[0].success and .stages[0].output == "alpha-out" and .stages[0].llm_requests == 2 and .stages[0].budget_exceeded == null'
    jqx ".stages[1].success == false and .stages[1].llm_requests == 1 and .stages[1].budget_exceeded == \"run\""
    jqx '.stages[1].error == "budget exceeded (run budget max_requests 3: 3 made)"'
    jqx '.stages[2].skipped'
    jqx ".error | contains(\"box 'b' failed: budget exceeded (run budget max_requests 3: 3 made)\")"
    # the totals reached, the budget given, and which one stopped the run
    jqx '.llm_requests == 3 and .input_tokens == 300 and .output_tokens == 30'
    jqx '.budget == {"max_requests": 3}'
    jqx '.budget_exceeded == {"budget": "run", "stage": "b", "error": "budget exceeded (run budget max_requests 3: 3 made)"}'
    # the same in the run record
    out=$(record_result)
    jqx '.budget_exceeded.budget == "run" and .llm_requests == 3 and .budget.max_requests == 3'
    # and the refused request is an llm.request event with its 402
    [ "$(events | jq -c 'select(.event == "llm.request" and .status == 402)' | wc -l)" -eq 1 ] ||
        fail "no llm.request event with status 402: $(events | grep llm.request)"
    expect_clean
}

# Two agents at once share the run's budget: their sum stops at it.
test_fan_out_shares_the_run_budget() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": ['"$(loop_turn)"']}'
    spec p <<EOF
api_version: v1
kind: pipeline
name: fan
sandbox: {memory_mb: 256}
llm: $(llm_yaml ", budget: {max_requests: 20}")
pipeline:
  boxes:
    - {name: left, prompt: "loop"}
    - {name: right, prompt: "loop"}
    - {name: reduce, prompt: "merge"}
  stages:
    - {type: fan_out, boxes: [left, right]}
    - {type: box, name: reduce}
EOF
    vb run --output json --budget max_requests=5,max_tokens=100000 "$T/p.yaml"
    expect_rc 1
    [ "$(wc -l <"$T/fake.log")" -eq 5 ] || fail "$(wc -l <"$T/fake.log") requests reached the fake, expected 5"
    jqx '.stages[0].llm_requests + .stages[1].llm_requests == 5 and .llm_requests == 5'
    jqx '.stages[0].budget_exceeded == "run" and .stages[1].budget_exceeded == "run"'
    jqx '[.stages[0,1].error] | all(. == "budget exceeded (run budget max_requests 5: 5 made)")'
    jqx '.stages[2].skipped and .budget == {"max_tokens": 100000, "max_requests": 5}'
    jqx '.budget_exceeded.budget == "run" and .input_tokens == 500'
    expect_clean
}

# Both limits apply: the stage's own llm.budget, hit first, is named.
test_stage_budget_hit_first_is_named() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": ['"$(loop_turn)"']}'
    spec a <<EOF
api_version: v1
kind: agent
name: spender
sandbox: {memory_mb: 256}
llm: $(llm_yaml ", budget: {max_requests: 2}")
agent: {prompt: "loop"}
EOF
    vb run --output json --budget max_requests=10,max_cost_usd=5 "$T/a.yaml"
    expect_rc 1
    [ "$(wc -l <"$T/fake.log")" -eq 2 ] || fail "$(wc -l <"$T/fake.log") requests reached the fake, expected 2"
    jqx '.stages[0].error == "budget exceeded (max_requests 2: 2 made)" and .stages[0].budget_exceeded == "stage"'
    jqx '.budget_exceeded == {"budget": "stage", "stage": "spender", "error": "budget exceeded (max_requests 2: 2 made)"}'
    jqx '.budget == {"max_cost_usd": 5, "max_requests": 10} and .llm_requests == 2'
    # text mode: the reason on stderr
    vb run --budget max_requests=1 "$T/a.yaml"
    expect_rc 1
    expect_err_has "budget exceeded (run budget max_requests 1: 1 made)"
    expect_clean
}

# Bad --budget text stops before anything boots, saying what is wrong.
test_bad_budget_syntax_is_refused() {
    spec c <<EOF
api_version: v1
kind: pipeline
name: cmd
pipeline:
  boxes:
    - {name: a, run: {program: "true"}}
EOF
    vb run --budget max_token=5 "$T/c.yaml"
    expect_rc 2
    expect_err_has "--budget: unknown key 'max_token'; did you mean 'max_tokens'? (keys: max_tokens, max_cost_usd, max_requests)"
    vb run --budget max_requests=-1 "$T/c.yaml"
    expect_rc 2
    expect_err_has "--budget max_requests=-1: expected a whole number greater than 0 (leave the key out for no limit)"
    vb run --budget max_cost_usd=cheap "$T/c.yaml"
    expect_rc 2
    expect_err_has "--budget max_cost_usd=cheap: expected an amount of US dollars such as 2.50 greater than 0"
    vb run --budget lots "$T/c.yaml"
    expect_rc 2
    expect_err_has "--budget: 'lots' is not KEY=VALUE"
    vb run --budget max_tokens=5,max_tokens=6 "$T/c.yaml"
    expect_rc 2
    expect_err_has "--budget: max_tokens is given twice"
    vb run --budget "$(printf 'max_\033[2Jx=1')" "$T/c.yaml"
    expect_rc 2
    grep -q $'\033' "$T/err" && fail "an escape reached the terminal: $(od -c "$T/err" | head)"
    [ -z "$(find "$T/state" -name events.jsonl 2>/dev/null)" ] || fail "a run was recorded"
    # a run without agent stages takes a budget and is not bothered by it
    vb run --budget max_requests=1 "$T/c.yaml"
    expect_rc 0
    expect_clean
}

# The builtin agent streams: its text is an agent.message event, a line at
# a time, as it arrives (long before the answer ends), --follow prints it
# live, and a tool call's input comes together from pieces.
test_builtin_agent_text_streams_as_it_arrives() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    # the fake cuts the text in two deltas ("first-line\n" | "second-line!")
    # and its tool input in three; 700 ms between SSE events
    fake '{"turns": [
      {"tool_use": {"name": "bash", "id": "tu_1", "input": {"command": "echo pieces-$((40+2)) \"caf\u00e9\""}},
       "usage": {"input_tokens": 10, "output_tokens": 5}},
      {"expect": "pieces-42 caf\u00e9", "text": "first-line\nsecond-line!", "delay_ms": 700,
       "usage": {"input_tokens": 10, "output_tokens": 5}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: talker
sandbox: {memory_mb: 256}
llm: $(llm_yaml)
agent: {prompt: "talk"}
EOF
    vb run --follow --output json "$T/a.yaml"
    expect_rc 0
    jqx '.output == "first-line\nsecond-line!"'
    # the request asked for a stream
    sed -n 2p "$T/fake.log" | jq -e '.body.stream == true' >/dev/null || fail "the request is not streamed"
    events | jq -se '[.[] | select(.event == "agent.message") | .text] == ["first-line", "second-line!"]' >/dev/null ||
        fail "agent.message events: $(events | grep agent.message)"
    # the first line came when it arrived (3 events in: ~2.1 s), the
    # request ended 8 events in (~4.9 s)
    local msg req
    msg=$(events | jq -s '[.[] | select(.event == "agent.message")][0].time_ms')
    req=$(events | jq -s '[.[] | select(.event == "llm.request")][1].time_ms')
    [ $((req - msg)) -ge 2000 ] || fail "the first line came $((req - msg)) ms before the request ended, expected >= 2000"
    expect_err_has "talker | first-line"
    expect_err_has "talker | second-line!"
    expect_clean
}

# agent.max_turns (extension): the builtin agent's loop stops there, with a
# message that says which limit; claude-code gets it as --max-turns; on a
# codex stage validate warns that it cannot apply.
test_max_turns_stops_a_looping_builtin_agent() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": ['"$(loop_turn)"']}'
    spec a <<EOF
api_version: v1
kind: agent
name: looper
sandbox: {memory_mb: 256}
llm: $(llm_yaml)
agent: {prompt: "loop forever", max_turns: 2}
EOF
    vb run --output json "$T/a.yaml"
    expect_rc 1
    [ "$(wc -l <"$T/fake.log")" -eq 2 ] || fail "$(wc -l <"$T/fake.log") requests reached the fake, expected 2"
    jqx '.stages[0].error == "the agent did not finish within max_turns 2 (model requests); raise agent.max_turns (a box'"'"'s max_turns) if it needs more"'
    jqx '.stages[0].llm_requests == 2 and .stages[0].budget_exceeded == null'
    [ "$(events | jq -c 'select(.event == "agent.tool")' | wc -l)" -eq 2 ] || fail "agent.tool events: $(events | grep -c agent.tool)"
    expect_clean
}

test_max_turns_reaches_claude_code_and_is_validated() {
    spec bad <<EOF
api_version: v1
kind: pipeline
name: bad
pipeline:
  boxes:
    - {name: a, prompt: "hi", max_turns: 0}
    - {name: b, run: {program: "true"}, max_turns: 2}
    - {name: c, prompt: "hi", max_turn: 2}
EOF
    vb validate "$T/bad.yaml"
    expect_rc 2
    expect_err_has "bad.yaml:6:42: pipeline.boxes[0].max_turns: must be at least 1 (got 0)"
    expect_err_has "pipeline.boxes[1].max_turns: max_turns is for agent boxes (with 'prompt'); box 'b' runs a command"
    expect_err_has "unknown field 'max_turn' in box 'c' (did you mean 'max_turns'?)"
    spec cx <<EOF
api_version: v1
kind: agent
name: cx
llm: {provider: codex}
agent: {prompt: "hi", max_turns: 3}
EOF
    vb validate "$T/cx.yaml"
    expect_rc 0
    expect_err_has "cx.yaml:5:34: agent.max_turns: codex has no limit on its turns: max_turns is not applied to codex"
    # claude-code: --max-turns 1 and a model that keeps calling tools
    [ -d "${XDG_CACHE_HOME:-$HOME/.cache}/voidbox/agents/trees" ] || { echo "# skipped: claude-code is not cached" >&2; return 0; }
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [{"tool_use": {"name": "Bash", "id": "toolu_1", "input": {"command": "true", "description": "x"}},
                      "usage": {"input_tokens": 10, "output_tokens": 5}}]}'
    spec cc <<EOF
api_version: v1
kind: agent
name: cc
sandbox: {memory_mb: 1024}
llm: {provider: custom, agent: claude-code, base_url: "http://127.0.0.1:$port", api_key_env: VB_TEST_KEY, model: fake-model}
agent: {prompt: "loop", max_turns: 1, timeout_secs: 300}
EOF
    vb run --output json "$T/cc.yaml"
    expect_rc 1
    jqx '.stages[0].error | startswith("claude-code ended with error_max_turns")'
    events | jq -se 'any(.[]; .event == "agent.result" and .subtype == "error_max_turns")' >/dev/null ||
        fail "no error_max_turns result: $(events | grep agent.result)"
    expect_clean
}

# A cancel does not wait for a slow answer to finish streaming.
test_sigint_during_a_streamed_answer_stops_at_once() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [{"text": "slow\nvery slow", "delay_ms": 4000}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: slow
sandbox: {memory_mb: 256}
llm: $(llm_yaml)
agent: {prompt: "take your time"}
EOF
    interrupt_after_first_request 1 10 # the answer would take ~28 s more
    expect_clean
}

run_tests "$@"
