#!/usr/bin/env bash
# cli:NAME skills as a user declares them (docs/skills.md): the host's
# program (jq here, a dynamic glibc program) with its libraries and loader
# copied into the stage's VM (whose image has no glibc) and put on PATH, in
# real VMs (TCG here) with the scripted fake model endpoint
# (tests/fake/fake_llm.c): the agent's own shell tool runs it and the next
# model request must hold what it printed.
TEST_TIMEOUT=${TEST_TIMEOUT:-400}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/lib_agent.sh"

llm_yaml() { # AGENT
    printf '{provider: custom, agent: %s, base_url: "http://127.0.0.1:%s", api_key_env: VB_TEST_KEY, model: fake-model}' "$1" "$port"
}


test_builtin_runs_host_jq_in_the_guest() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [
      {"tool_use": {"name": "bash", "id": "tu_1", "input": {"command": "echo \u0027{\"a\":41}\u0027 | jq \u0027.a+1\u0027; command -v jq; ls /lib"}},
       "usage": {"input_tokens": 10, "output_tokens": 5}},
      {"expect": "42", "text": "jq ran", "usage": {"input_tokens": 10, "output_tokens": 5}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: cj
sandbox: {memory_mb: 256}
llm: $(llm_yaml builtin)
agent:
  prompt: "use jq"
  skills:
    - cli:jq
EOF
    vb run --output json "$T/a.yaml"
    expect_rc 0
    jqx '.output == "jq ran"'
    # what jq printed in the guest came back to the model, and the guest
    # image itself has no glibc (musl's loader only)
    local tr='[.body.messages[] | .content | arrays | .[] | select(.type == "tool_result")] | tostring'
    sed -n 2p "$T/fake.log" | jq -e "$tr"' | contains("stdout:\\n42\\n/usr/local/bin/jq\\n") and contains("ld-musl") and (contains("libc.so.6") | not)' >/dev/null ||
        fail "jq's result did not come back: $(sed -n 2p "$T/fake.log" | jq -c "$tr" | head -c 900)"
    # not a SKILL.md: nothing in the system prompt
    sed -n 1p "$T/fake.log" | jq -e '.body.system | tostring | contains("Skill: jq") | not' >/dev/null ||
        fail "the cli skill leaked into the system prompt"
    local sha
    sha=$(sha256sum "$(command -v jq)" | cut -c1-64)
    events | jq -se --arg sha "$sha" --arg src "$(command -v jq)" 'map(select(.event == "skill.provisioned")) | length == 1 and .[0].type == "cli" and .[0].name == "jq" and .[0].sha256 == $sha and .[0].source == $src and .[0].files >= 3 and .[0].size > 100000 and .[0].path == "/home/sandbox/.voidbox/cli/jq"' >/dev/null ||
        fail "skill.provisioned events: $(events | grep skill.provisioned | head -c 1200)"
    grep -q "stage cj: skill jq (cli, " "$T/err" || fail "the progress does not show the tool: $(head -c 900 "$T/err")"
    vb logs "$(jq -r .run_id <"$T/out")"
    grep -q "skill.provisioned .* cli jq, [0-9]* bytes in [0-9]* files, sha256 ${sha:0:12}, from $(command -v jq) to /home/sandbox/.voidbox/cli/jq" "$T/out" ||
        fail "voidbox logs lacks the tool: $(grep skill "$T/out" | head -c 600)"
    expect_clean
}

test_unknown_tool_fails_validate_and_run_naming_it() {
    export VB_TEST_KEY="sk-test-$RANDOM" port=9
    spec a <<EOF
api_version: v1
kind: agent
name: nt
llm: $(llm_yaml builtin)
agent:
  prompt: "x"
  skills:
    - cli:no-such-tool
EOF
    vb validate "$T/a.yaml"
    expect_rc 2
    expect_err_has "a.yaml:8:7: skill 'cli:no-such-tool': program no-such-tool not found on this host's PATH"
    vb run "$T/a.yaml"
    expect_rc 2
    expect_err_has "program no-such-tool not found"
    # a name that is not a plain program name never reaches the host's PATH
    sed -i 's/cli:no-such-tool/cli:..x/' "$T/a.yaml"
    vb validate "$T/a.yaml"
    expect_rc 2
    expect_err_has "'..x' is not a program name"
    # a script is not a program VoidBox can carry
    mkdir -p "$T/bin"
    printf '#!/bin/sh\necho hi\n' >"$T/bin/vbscript"
    chmod 755 "$T/bin/vbscript"
    sed -i 's/cli:\.\.x/cli:vbscript/' "$T/a.yaml"
    PATH="$T/bin:$PATH" vb validate "$T/a.yaml"
    expect_rc 2
    expect_err_has "$T/bin/vbscript is not an ELF program"
}

test_pipeline_box_without_the_tool_cannot_find_it() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [
      {"tool_use": {"name": "bash", "id": "tu_1", "input": {"command": "echo A-sees; echo \u0027{\"a\":1}\u0027 | jq \u0027.a+6\u0027"}},
       "usage": {"input_tokens": 1, "output_tokens": 1}},
      {"expect": "A-sees", "text": "a done", "usage": {"input_tokens": 1, "output_tokens": 1}},
      {"tool_use": {"name": "bash", "id": "tu_2", "input": {"command": "echo B-sees; jq -n 1; echo rc=$?; ls -a ~/.voidbox 2>&1"}},
       "usage": {"input_tokens": 1, "output_tokens": 1}},
      {"expect": "B-sees", "text": "b done", "usage": {"input_tokens": 1, "output_tokens": 1}}]}'
    spec p <<EOF
api_version: v1
kind: pipeline
name: two
pipeline:
  boxes:
    - name: a
      prompt: "look"
      llm: $(llm_yaml builtin)
      sandbox: {memory_mb: 256}
      skills: [cli:jq]
    - name: b
      prompt: "look"
      llm: $(llm_yaml builtin)
      sandbox: {memory_mb: 256}
      skills: [{name: beta-only, content: "beta"}]
  stages: [{type: box, name: a}, {type: box, name: b}]
EOF
    vb run --output json "$T/p.yaml"
    expect_rc 0
    local a b
    a=$(jq -c 'select(.body | tostring | contains("A-sees"))' "$T/fake.log" | sed -n 2p)
    b=$(jq -c 'select(.body | tostring | contains("B-sees"))' "$T/fake.log" | sed -n 2p)
    local tr='[.body.messages[] | .content | arrays | .[] | select(.type == "tool_result")] | tostring'
    jq -e "$tr"' | contains("A-sees\\n7\\n")' >/dev/null <<<"$a" ||
        fail "box a saw: $(jq -c "$tr" <<<"$a" | head -c 600)"
    jq -e "$tr"' | contains("rc=127") and contains("No such file")' >/dev/null <<<"$b" ||
        fail "box b saw: $(jq -c "$tr" <<<"$b" | head -c 600)"
    events | jq -se '[.[] | select(.event == "skill.provisioned") | [.stage, .type, .name]] == [["a", "cli", "jq"], ["b", "inline", "beta-only"]]' >/dev/null ||
        fail "skill.provisioned events: $(events | grep skill.provisioned)"
    expect_clean
}

test_claude_code_runs_jq_through_its_bash_tool() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [
      {"text": "Running.", "tool_use": {"name": "Bash", "id": "toolu_1", "input": {"command": "echo \u0027{\"a\":41}\u0027 | jq \u0027.a+1\u0027", "description": "jq"}},
       "usage": {"input_tokens": 10, "output_tokens": 5}},
      {"expect": "42", "text": "done", "usage": {"input_tokens": 10, "output_tokens": 5}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: cc
sandbox: {memory_mb: 1024}
llm: $(llm_yaml claude-code)
agent:
  prompt: "use jq"
  timeout_secs: 300
  skills: [cli:jq]
EOF
    vb run --output json "$T/a.yaml"
    expect_rc 0
    jqx '.output == "done"'
    local req2 tr='[.body.messages[] | .content | arrays | .[] | select(.type == "tool_result")] | tostring'
    req2=$(jq -c 'select(.path | startswith("/v1/messages"))' "$T/fake.log" | sed -n 2p)
    jq -e "$tr"' | contains("42")' >/dev/null <<<"$req2" ||
        fail "claude-code's Bash did not run jq: $(jq -c "$tr" <<<"$req2" | head -c 900)"
    expect_clean
}

test_codex_runs_jq_through_its_shell_tool() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [
      {"tool_use": {"name": "exec_command", "id": "call_1", "input": {"cmd": "echo \u0027{\"a\":41}\u0027 | jq \u0027.a+1\u0027"}},
       "usage": {"input_tokens": 10, "output_tokens": 5}},
      {"expect": "42", "text": "done", "usage": {"input_tokens": 10, "output_tokens": 5}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: cx
sandbox: {memory_mb: 1024}
llm: $(llm_yaml codex)
agent:
  prompt: "use jq"
  timeout_secs: 300
  skills: [cli:jq]
EOF
    vb run --output json "$T/a.yaml"
    expect_rc 0
    jqx '.output == "done"'
    events | jq -se 'map(select(.event == "skill.provisioned")) | length == 1 and .[0].type == "cli"' >/dev/null ||
        fail "skill.provisioned events: $(events | grep skill.provisioned)"
    expect_clean
}

# A static program is copied as it is; a program that cannot start in the
# guest (here: one that says so with exit 127) fails the stage before the
# agent runs, naming the tool and what it printed.
test_static_tool_runs_and_a_tool_that_cannot_start_fails_the_stage() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    mkdir -p "$T/bin"
    printf '#include <stdio.h>\n#include <string.h>\nint main(int c, char **v) { if (c > 1 && !strcmp(v[1], "--version")) { fputs("cannot-start-5150\\n", stderr); return BAD; } puts("static-ran-5151"); return 0; }\n' >"$T/s.c"
    cc -static -O1 -DBAD=0 -o "$T/bin/vbstatic" "$T/s.c" 2>"$T/cc.err" || fail "cc -static: $(cat "$T/cc.err")"
    cc -static -O1 -DBAD=127 -o "$T/bin/vbbroken" "$T/s.c" 2>"$T/cc.err" || fail "cc -static: $(cat "$T/cc.err")"
    fake '{"turns": [
      {"tool_use": {"name": "bash", "id": "tu_1", "input": {"command": "vbstatic"}},
       "usage": {"input_tokens": 1, "output_tokens": 1}},
      {"expect": "static-ran-5151", "text": "ok", "usage": {"input_tokens": 1, "output_tokens": 1}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: st
sandbox: {memory_mb: 256}
llm: $(llm_yaml builtin)
agent:
  prompt: "x"
  skills: [cli:vbstatic]
EOF
    PATH="$T/bin:$PATH" vb run --output json "$T/a.yaml"
    expect_rc 0
    jqx '.output == "ok"'
    events | jq -se --arg src "$T/bin/vbstatic" 'map(select(.event == "skill.provisioned")) | .[0].files == 1 and .[0].source == $src and .[0].path == "/home/sandbox/.voidbox/cli/bin/vbstatic"' >/dev/null ||
        fail "skill.provisioned events: $(events | grep skill.provisioned)"
    local n
    n=$(wc -l <"$T/fake.log")
    sed -i 's/cli:vbstatic/cli:vbbroken/' "$T/a.yaml"
    PATH="$T/bin:$PATH" vb run --output json "$T/a.yaml"
    expect_rc 1
    expect_err_has "cli tool 'vbbroken': does not start in the guest (vbbroken --version: exit 127): cannot-start-5150"
    [ "$(wc -l <"$T/fake.log")" -eq "$n" ] || fail "the agent ran although its tool could not start"
    expect_clean
}

run_tests
