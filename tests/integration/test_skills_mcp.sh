#!/usr/bin/env bash
# mcp: skills as a user declares them (docs/skills.md): an MCP server over
# stdio, started in the stage's VM (TCG here) before the builtin agent; its
# tools offered to the scripted fake model (tests/fake/fake_llm.c), whose
# call reaches the server and whose result comes back in the next request.
# A server that does not answer, or answers garbage, fails the stage by
# name.  The test's server is a busybox sh script delivered as a file:
# skill directory.
TEST_TIMEOUT=${TEST_TIMEOUT:-400}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/lib_agent.sh"

llm_yaml() {
    printf '{provider: custom, agent: builtin, base_url: "http://127.0.0.1:%s", api_key_env: VB_TEST_KEY, model: fake-model}' "$port"
}

export SRV=/home/sandbox/.agents/skills/srv/srv.sh

# $T/srv: a skill directory whose srv.sh is a tiny MCP server (one tool,
# echo) reading JSON-RPC lines on stdin; it answers by the method's name
# and takes the id and the text with sed (VoidBox writes compact JSON).
make_server() {
    mkdir -p "$T/srv"
    printf -- '---\nname: srv\ndescription: holds the test MCP server\n---\nsrv\n' >"$T/srv/SKILL.md"
    cat >"$T/srv/srv.sh" <<'EOF'
#!/bin/sh
echo "srv starting" >&2
while IFS= read -r line; do
  id=$(printf '%s' "$line" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
  case "$line" in
  *'"method":"initialize"'*)
    echo '{"jsonrpc":"2.0","id":'"$id"',"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"srv","version":"1"}}}';;
  *'"method":"tools/list"'*)
    echo '{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"hi"}}'
    more=
    [ -z "$SRV_DOTS" ] || more=',{"name":"say.hi","description":"Say hi"}'
    echo '{"jsonrpc":"2.0","id":'"$id"',"result":{"tools":[{"name":"echo","description":"Echo the text back","inputSchema":{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}}'"$more"']}}';;
  *'"method":"tools/call"'*'"name":"say.hi"'*)
    echo '{"jsonrpc":"2.0","id":'"$id"',"result":{"content":[{"type":"text","text":"hi from say.hi"}]}}';;
  *'"method":"tools/call"'*)
    text=$(printf '%s' "$line" | sed -n 's/.*"text":"\([^"]*\)".*/\1/p')
    mode=$(printf '%s' "${SRV_MODE:-none}" | tr -cd 'a-z ')
    echo '{"jsonrpc":"2.0","id":'"$id"',"result":{"content":[{"type":"text","text":"echo '"$text"' as uid '"$(id -u)"' mode '"$mode"'"}]}}';;
  *)
    [ -z "$id" ] || echo '{"jsonrpc":"2.0","id":'"$id"',"error":{"code":-32601,"message":"no such method"}}';;
  esac
done
EOF
    chmod 755 "$T/srv/srv.sh"
}

test_builtin_calls_a_tool_of_an_mcp_server_in_its_vm() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    make_server
    fake '{"turns": [
      {"tool_use": {"name": "mcp__srv__echo", "id": "tu_1", "input": {"text": "hi-4242"}},
       "usage": {"input_tokens": 10, "output_tokens": 5}},
      {"expect": "echo hi-4242 as uid 1000 mode none", "tool_use": {"name": "mcp__srv__say_hi", "id": "tu_2", "input": {}},
       "usage": {"input_tokens": 10, "output_tokens": 5}},
      {"expect": "hi from say.hi", "text": "echoed", "usage": {"input_tokens": 10, "output_tokens": 5}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: mc
sandbox: {memory_mb: 256}
llm: $(llm_yaml)
agent:
  prompt: "use the echo tool"
  skills:
    - file:$T/srv
    - {name: srv, command: $SRV, env: {SRV_DOTS: "1"}}
EOF
    vb validate "$T/a.yaml"
    expect_rc 0
    vb run --output json "$T/a.yaml"
    expect_rc 0
    jqx '.output == "echoed"'
    # the first request offers the server's tool, with its inputSchema
    # (a '.' in a tool's name is '_' to the model, which has no '.' in names;
    # a tool without an inputSchema takes an object)
    sed -n 1p "$T/fake.log" | jq -e '.body.tools | any(.[]; .name == "mcp__srv__echo" and .description == "Echo the text back" and .input_schema.required == ["text"]) and any(.[]; .name == "mcp__srv__say_hi" and .input_schema == {"type": "object"}) and any(.[]; .name == "bash")' >/dev/null ||
        fail "the tools offered: $(sed -n 1p "$T/fake.log" | jq -c '[.body.tools[].name]')"
    # the call's result (from the server, run as the sandbox user) came back
    sed -n 2p "$T/fake.log" | jq -e '.body.messages[-1].content[0] | .type == "tool_result" and .tool_use_id == "tu_1" and (.content | tostring | contains("echo hi-4242 as uid 1000")) and .is_error == false' >/dev/null ||
        fail "the tool result: $(sed -n 2p "$T/fake.log" | jq -c '.body.messages[-1]' | head -c 900)"
    events | jq -se 'map(select(.event == "skill.provisioned" and .type == "mcp")) | length == 1 and .[0].name == "srv" and .[0].tools == ["echo", "say.hi"] and .[0].source == "'"$SRV"'"' >/dev/null ||
        fail "skill.provisioned events: $(events | grep skill.provisioned | head -c 1200)"
    grep -q "stage mc: MCP server srv started, 2 tools: echo say.hi" "$T/err" || fail "the progress does not show the server: $(head -c 900 "$T/err")"
    vb logs "$(jq -r .run_id <"$T/out")"
    grep -q "skill.provisioned.*mcp srv, $SRV, tools: echo say.hi" "$T/out" || fail "voidbox logs lacks the server: $(grep skill "$T/out" | head -c 600)"
    expect_clean
}

test_claude_code_connects_to_an_mcp_server_and_calls_its_tool() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    make_server
    local srv=/home/sandbox/.claude/skills/srv/srv.sh
    fake '{"turns": [
      {"tool_use": {"name": "mcp__srv__echo", "id": "toolu_1", "input": {"text": "hi-5151"}},
       "usage": {"input_tokens": 10, "output_tokens": 5}},
      {"expect": "echo hi-5151 as uid 1000", "text": "done", "usage": {"input_tokens": 10, "output_tokens": 5}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: cc
sandbox: {memory_mb: 1024}
llm: {provider: custom, agent: claude-code, base_url: "http://127.0.0.1:$port", api_key_env: VB_TEST_KEY, model: fake-model}
agent:
  prompt: "use the echo tool"
  timeout_secs: 300
  skills:
    - file:$T/srv
    - {name: srv, command: $srv}
EOF
    vb run --output json "$T/a.yaml"
    expect_rc 0
    jqx '.output == "done"'
    local req1
    req1=$(jq -c 'select(.path | startswith("/v1/messages"))' "$T/fake.log" | sed -n 1p)
    # claude-code 2.1 defers MCP tools behind its ToolSearch: the first
    # request names the tool (its schema comes when the model searches)
    jq -e '.body | tostring | contains("mcp__srv__echo")' >/dev/null <<<"$req1" ||
        fail "claude-code did not offer the server's tool: $(jq -c '[.body.tools[]?.name]' <<<"$req1")"
    events | jq -se 'any(.[]; .event == "skill.provisioned" and .type == "mcp" and .name == "srv" and .tools == ["echo"])' >/dev/null ||
        fail "skill.provisioned events: $(events | grep skill.provisioned | head -c 1200)"
    vb logs "$(jq -r .run_id <"$T/out")" --stage cc
    grep '"subtype":"init"' "$T/out" | jq -e '.mcp_servers | any(.[]; .name == "srv" and .status == "connected")' >/dev/null ||
        fail "claude-code's init line: $(grep '"subtype":"init"' "$T/out" | jq -c .mcp_servers)"
    expect_clean
}

test_codex_connects_to_an_mcp_server_and_calls_its_tool() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    make_server
    local srv=/home/sandbox/.codex/skills/srv/srv.sh
    fake '{"turns": [
      {"tool_use": {"namespace": "mcp__srv", "name": "echo", "id": "call_1", "input": {"text": "hi-6161"}},
       "usage": {"input_tokens": 10, "output_tokens": 5}},
      {"expect": "echo hi-6161 as uid 1000 mode a quoted value", "text": "done", "usage": {"input_tokens": 10, "output_tokens": 5}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: cx
sandbox: {memory_mb: 1024}
llm: {provider: custom, agent: codex, base_url: "http://127.0.0.1:$port", api_key_env: VB_TEST_KEY, model: fake-model}
agent:
  prompt: "use the echo tool"
  timeout_secs: 300
  skills:
    - file:$T/srv
    - {name: srv, command: $srv, env: {SRV_MODE: "a \"quoted\" value"}}
EOF
    vb run --output json "$T/a.yaml"
    expect_rc 0
    jqx '.output == "done"'
    # codex 0.171 offers a server's tools as a namespace, mcp__SERVER
    sed -n 1p "$T/fake.log" | jq -e '.body.tools | any(.[]; .type == "namespace" and .name == "mcp__srv" and any(.tools[]; .name == "echo" and .description == "Echo the text back"))' >/dev/null ||
        fail "codex did not offer the server's tool: $(sed -n 1p "$T/fake.log" | jq -c '[.body.tools[]? | .name // .type]')"
    events | jq -se 'any(.[]; .event == "skill.provisioned" and .type == "mcp" and .name == "srv" and .tools == ["echo"])' >/dev/null ||
        fail "skill.provisioned events: $(events | grep skill.provisioned | head -c 1200)"
    expect_clean
}

# Not declared, not present: the server of box a is not box b's (its
# model is not offered its tools, no such process runs in b's VM).
test_a_pipeline_box_gets_only_its_own_mcp_servers() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    make_server
    fake '{"turns": [
      {"tool_use": {"name": "bash", "id": "tu_1", "input": {"command": "echo A-sees; ps -ef | grep -c [s]rv.sh"}},
       "usage": {"input_tokens": 1, "output_tokens": 1}},
      {"expect": "A-sees\\n1\\n", "text": "a done", "usage": {"input_tokens": 1, "output_tokens": 1}},
      {"tool_use": {"name": "bash", "id": "tu_2", "input": {"command": "echo B-sees; ps -ef | grep -c [s]rv.sh; ls ~/.agents/skills 2>&1"}},
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
      llm: $(llm_yaml)
      skills: [file:$T/srv, mcp:$SRV]
    - name: b
      prompt: "look"
      llm: $(llm_yaml)
  stages: [{type: box, name: a}, {type: box, name: b}]
EOF
    vb run --output json "$T/p.yaml"
    expect_rc 0
    sed -n 1p "$T/fake.log" | jq -e '.body.tools | any(.[]; .name == "mcp__srv__echo")' >/dev/null ||
        fail "box a was not offered its server's tool"
    local b
    b=$(sed -n 4p "$T/fake.log")
    jq -e '[.body.tools[].name] | all(startswith("mcp__") | not)' >/dev/null <<<"$b" ||
        fail "box b was offered: $(jq -c '[.body.tools[].name]' <<<"$b")"
    jq -e '.body.messages[-1].content[0].content | tostring | contains("B-sees\n0\nNo such file") or contains("B-sees\n0\nls: ")' >/dev/null <<<"$b" ||
        fail "box b saw: $(jq -c '.body.messages[-1].content[0].content' <<<"$b" | head -c 600)"
    events | jq -se '[.[] | select(.event == "skill.provisioned" and .type == "mcp") | .stage] == ["a"]' >/dev/null ||
        fail "skill.provisioned events: $(events | grep skill.provisioned)"
    expect_clean
}

test_an_mcp_server_that_does_not_answer_fails_the_stage_by_name() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [{"text": "never asked", "usage": {"input_tokens": 1, "output_tokens": 1}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: mute
llm: $(llm_yaml)
agent:
  prompt: x
  skills:
    - {name: mute, command: sh, args: ["-c", "echo mute-is-thinking-8811 >&2; exec sleep 1000"]}
EOF
    vb run "$T/a.yaml"
    expect_rc 1
    expect_err_has "MCP server 'mute': did not answer initialize within 60 s; its stderr ends: mute-is-thinking-8811"
    [ ! -s "$T/fake.log" ] || fail "the model was asked: $(head -c 300 "$T/fake.log")"
    expect_clean
}

test_an_mcp_server_that_prints_garbage_fails_the_stage_clearly() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [{"text": "never asked", "usage": {"input_tokens": 1, "output_tokens": 1}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: junk
llm: $(llm_yaml)
agent:
  prompt: x
  skills:
    - {name: junk, command: sh, args: ["-c", 'printf "hello \033[31mworld\n"; exec sleep 1000']}
EOF
    vb run "$T/a.yaml"
    expect_rc 1
    expect_err_has "MCP server 'junk': not a JSON-RPC 2.0 message: 'hello "
    grep -q $'\033' "$T/err" && fail "a raw escape reached the terminal: $(od -c "$T/err" | head)"
    [ ! -s "$T/fake.log" ] || fail "the model was asked"
    expect_clean
}

test_mcp_skills_are_validated_with_positions() {
    check() { # SKILLS EXPECTED
        printf 'api_version: v1\nkind: agent\nname: v\nllm: {provider: custom, agent: builtin, base_url: "http://127.0.0.1:9", api_key_env: HOME}\nagent:\n  prompt: x\n  skills: %s\n' "$1" >"$T/v.yaml"
        vb validate "$T/v.yaml"
        expect_rc 2
        expect_err_has "$2"
    }
    # the string form's name is its program's basename: two "node"s clash
    check '["mcp:node a.js", "mcp:/usr/bin/node b.js"]' "v.yaml:7:29: skill 'mcp:/usr/bin/node b.js': another MCP server of this stage is also named 'node'"
    check '[{name: "9lives", command: x}]' "is not a usable MCP server name"
    check "[\"mcp:'unclosed\"]" "skill 'mcp:'unclosed': unterminated ' quote"
    check '[{name: s, args: [a]}]' "a skill object needs 'image' (OCI image), 'command' (MCP server) or 'content'"
    # claude-code and codex are not given MCP servers in this version: the
    # spec is valid, the run says so
    printf 'api_version: v1\nkind: agent\nname: v\nllm: {provider: custom, agent: builtin, base_url: "http://127.0.0.1:9", api_key_env: HOME}\nagent:\n  prompt: x\n  skills: ["mcp:my-server --stdio", {name: fs, command: npx, args: [-y, server], env: {A: b}}]\n' >"$T/v.yaml"
    vb validate "$T/v.yaml"
    expect_rc 0
}

# examples/skills.yaml as a user runs it: its MCP server (changes.sh of
# its release-notes skill) answers the model's call.  Its remote: skill
# comes from a loopback mirror of the base URL's layout.
test_example_skills_mcp_server_answers() {
    mkdir -p "$T/www/anthropics/skills/main/skills/skill-creator"
    printf -- '---\nname: skill-creator\ndescription: creates skills\n---\nbody\n' \
        >"$T/www/anthropics/skills/main/skills/skill-creator/SKILL.md"
    python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$T/www" >"$T/www.out" 2>"$T/www.log" &
    local www=$!
    for _ in $(seq 100); do grep -q 'port' "$T/www.out" 2>/dev/null && break; sleep 0.05; done
    local wport; wport=$(sed -n 's/.* port \([0-9]*\).*/\1/p' "$T/www.out" | head -1)
    fake '{"turns": [
      {"tool_use": {"name": "mcp__changes__list_changes", "id": "tu", "input": {}},
       "usage": {"input_tokens": 1, "output_tokens": 1}},
      {"expect": "fix a crash when the spec file is empty", "text": "notes", "usage": {"input_tokens": 1, "output_tokens": 1}}]}'
    VOIDBOX_SKILLS_BASE_URL="http://127.0.0.1:$wport" AGENT_BASE_URL="http://127.0.0.1:$port" \
        AGENT_API_KEY=sk-example AGENT_MODEL=fake-model vb run --output json "$ROOT/examples/skills.yaml"
    kill "$www"
    # the remote skill's cache entry of this test's URL
    local c=${XDG_CACHE_HOME:-$HOME/.cache}/voidbox/skills k
    k=$(printf '%s' "http://127.0.0.1:$wport/anthropics/skills/main/skills/skill-creator/SKILL.md" | sha256sum | cut -c1-64)
    [ -f "$c/url-$k" ] && rm -f "$c/sha256-$(cut -c1-64 "$c/url-$k")" "$c/url-$k"
    expect_rc 0
    jqx '.output == "notes"'
    expect_clean
}

run_tests
