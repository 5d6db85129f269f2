#!/usr/bin/env bash
# A real MCP server from the npm registry, as a user declares it
# (docs/skills.md, examples/mcp-npm.yaml): @modelcontextprotocol/
# server-filesystem, installed with npm on the host, shared with the VM by
# a read-only mount and run there by the host's node given as cli:node.
# Its handshake passes before the agent starts (its tools in the events),
# and the model's call of its read_text_file tool reads a file the agent
# wrote in the guest — for the builtin agent, for the real claude-code
# binary (whose init line lists the server as connected) and for codex.
# Under TCG.
#
# The package is fetched from the npm registry once (pinned, with npm, as
# a user would) into ${XDG_CACHE_HOME:-~/.cache}/voidbox/tests/npm/; later
# runs use that copy.  A fetch that fails fails the test: like claude-code's
# binary (test_agent_claude.sh), it is a download the suite needs.
TEST_TIMEOUT=${TEST_TIMEOUT:-300}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/lib_agent.sh"

export FS_PKG=@modelcontextprotocol/server-filesystem
export FS_VERSION=2026.8.31

# $FS: the npm prefix holding the package (node_modules/...), fetched once.
npm_fs() {
    FS=${XDG_CACHE_HOME:-$HOME/.cache}/voidbox/tests/npm/server-filesystem-$FS_VERSION
    [ -f "$FS/node_modules/$FS_PKG/dist/index.js" ] && return 0
    command -v npm >/dev/null || fail "npm is not installed: it fetches $FS_PKG@$FS_VERSION"
    command -v node >/dev/null || fail "node is not installed: cli:node takes the host's"
    mkdir -p "$(dirname "$FS")"
    local tmp="$FS.tmp.$$"
    rm -rf "$tmp"
    # installed beside and moved into place: no half-installed tree is
    # ever taken for the cache
    npm install --prefix "$tmp" --no-audit --no-fund --no-update-notifier \
        "$FS_PKG@$FS_VERSION" >"$T/npm.log" 2>&1 ||
        { rm -rf "$tmp"; fail "npm could not fetch $FS_PKG@$FS_VERSION: $(tail -c 600 "$T/npm.log")"; }
    mv -T "$tmp" "$FS" 2>/dev/null || rm -rf "$tmp" # a parallel run won
    [ -f "$FS/node_modules/$FS_PKG/dist/index.js" ] || fail "no dist/index.js in $FS"
}

# examples/mcp-npm.yaml as a user runs it (the prefix it mounts from the
# environment, its model the fake): (AGENT_KIND) with (MEMORY_MB).
run_example() {
    MCP_FS_PREFIX="$FS" AGENT_BASE_URL="http://127.0.0.1:$port" AGENT_API_KEY="$VB_TEST_KEY" \
        AGENT_MODEL=fake-model AGENT_KIND="$1" MEMORY_MB="$2" \
        vb run --output json "$ROOT/examples/mcp-npm.yaml"
}

test_builtin_reads_a_guest_file_through_the_npm_filesystem_server() {
    npm_fs
    export VB_TEST_KEY="sk-test-$RANDOM"
    local tok="npm-fs-$RANDOM$RANDOM"
    fake '{"turns": [
      {"tool_use": {"name": "bash", "id": "tu_1", "input": {"command": "echo '"$tok"' > /workspace/notes.txt && echo written"}},
       "usage": {"input_tokens": 10, "output_tokens": 5}},
      {"expect": "written", "tool_use": {"name": "mcp__fs__read_text_file", "id": "tu_2", "input": {"path": "/workspace/notes.txt"}},
       "usage": {"input_tokens": 10, "output_tokens": 5}},
      {"expect": "'"$tok"'", "tool_use": {"name": "mcp__fs__list_allowed_directories", "id": "tu_3", "input": {}},
       "usage": {"input_tokens": 10, "output_tokens": 5}},
      {"expect": "/workspace", "text": "read it", "usage": {"input_tokens": 10, "output_tokens": 5}}]}'
    local t0=$SECONDS
    run_example builtin 1024
    expect_rc 0
    echo "    (builtin stage with node + server-filesystem: $((SECONDS - t0)) s)" >&2
    jqx '.output == "read it"'
    # the server's real tools, with their schemas, offered to the model
    sed -n 1p "$T/fake.log" | jq -e '.body.tools | any(.[]; .name == "mcp__fs__read_text_file" and (.input_schema.properties | has("path"))) and any(.[]; .name == "mcp__fs__list_directory")' >/dev/null ||
        fail "the tools offered: $(sed -n 1p "$T/fake.log" | jq -c '[.body.tools[].name]')"
    # its result: the file the agent's bash wrote in the VM
    sed -n 3p "$T/fake.log" | jq -e --arg t "$tok" '.body.messages[-1].content[0] | .type == "tool_result" and .tool_use_id == "tu_2" and (.content | tostring | contains($t)) and .is_error == false' >/dev/null ||
        fail "the tool result: $(sed -n 3p "$T/fake.log" | jq -c '.body.messages[-1]' | head -c 900)"
    # the directory it was given (its argument in the spec) is its only one
    sed -n 4p "$T/fake.log" | jq -e '.body.messages[-1].content[0] | .tool_use_id == "tu_3" and (.content | tostring | test("Allowed directories:\\s*/workspace"))' >/dev/null ||
        fail "list_allowed_directories: $(sed -n 4p "$T/fake.log" | jq -c '.body.messages[-1]' | head -c 900)"
    events | jq -se 'map(select(.event == "skill.provisioned" and .type == "mcp")) | length == 1 and .[0].name == "fs" and (.[0].tools | index("read_text_file") and index("list_directory") and index("write_file"))' >/dev/null ||
        fail "skill.provisioned events: $(events | grep skill.provisioned | head -c 1500)"
    events | jq -se 'any(.[]; .event == "skill.provisioned" and .type == "cli" and .name == "node")' >/dev/null ||
        fail "no cli node event: $(events | grep skill.provisioned | head -c 1500)"
    grep -q "stage mcp-npm: MCP server fs started, [0-9]* tools: .*read_text_file" "$T/err" ||
        fail "the progress does not show the server: $(head -c 1500 "$T/err")"
    expect_clean
}

test_claude_code_connects_to_the_npm_filesystem_server_and_reads_a_file() {
    npm_fs
    export VB_TEST_KEY="sk-test-$RANDOM"
    local tok="npm-cc-$RANDOM$RANDOM"
    fake '{"turns": [
      {"tool_use": {"name": "Bash", "id": "toolu_1", "input": {"command": "echo '"$tok"' > /workspace/notes.txt && echo written-$MCP_TIMEOUT", "description": "write"}},
       "usage": {"input_tokens": 10, "output_tokens": 5}},
      {"expect": "written-60000", "tool_use": {"name": "mcp__fs__read_text_file", "id": "toolu_2", "input": {"path": "/workspace/notes.txt"}},
       "usage": {"input_tokens": 10, "output_tokens": 5}},
      {"expect": "'"$tok"'", "text": "done", "usage": {"input_tokens": 10, "output_tokens": 5}}]}'
    local t0=$SECONDS
    # claude-code waits for its MCP servers as long as VoidBox does
    # (MCP_TIMEOUT, its own default 30 s is tight for node under TCG)
    run_example claude-code 1024
    expect_rc 0
    echo "    (claude-code stage with node + server-filesystem: $((SECONDS - t0)) s)" >&2
    jqx '.output == "done"'
    local reqs
    reqs=$(jq -c 'select(.path | startswith("/v1/messages"))' "$T/fake.log")
    # claude-code 2.1 defers MCP tools behind its ToolSearch: the first
    # request names the server's tools
    sed -n 1p <<<"$reqs" | jq -e '.body | tostring | contains("mcp__fs__read_text_file")' >/dev/null ||
        fail "claude-code did not offer the server's tool: $(sed -n 1p <<<"$reqs" | jq -c '[.body.tools[]?.name]')"
    # the call went to the server claude-code started; its answer came back
    sed -n 3p <<<"$reqs" | jq -e --arg t "$tok" '.body.messages[-1].content | tostring | contains($t) and contains("toolu_2")' >/dev/null ||
        fail "the tool result: $(sed -n 3p <<<"$reqs" | jq -c '.body.messages[-1]' | head -c 900)"
    events | jq -se 'any(.[]; .event == "skill.provisioned" and .type == "mcp" and .name == "fs" and (.tools | index("read_text_file")))' >/dev/null ||
        fail "skill.provisioned events: $(events | grep skill.provisioned | head -c 1500)"
    vb logs "$(jq -r .run_id <"$T/out")" --stage mcp-npm
    grep '"subtype":"init"' "$T/out" | jq -e '.mcp_servers | any(.[]; .name == "fs" and .status == "connected")' >/dev/null ||
        fail "claude-code's init line: $(grep '"subtype":"init"' "$T/out" | jq -c .mcp_servers)"
    expect_clean
}

# codex too: it starts its own copy of the server, marked required (else
# codex 0.171 does not wait for it: its first requests go out before node
# is up under TCG, without the server's tools) with 60 s to start
test_codex_reads_a_guest_file_through_the_npm_filesystem_server() {
    npm_fs
    export VB_TEST_KEY="sk-test-$RANDOM"
    local tok="npm-cx-$RANDOM$RANDOM"
    fake '{"turns": [
      {"tool_use": {"name": "exec_command", "id": "call_1", "input": {"cmd": "echo '"$tok"' > /workspace/notes.txt && echo written"}},
       "usage": {"input_tokens": 10, "output_tokens": 5}},
      {"expect": "written", "tool_use": {"namespace": "mcp__fs", "name": "read_text_file", "id": "call_2", "input": {"path": "/workspace/notes.txt"}},
       "usage": {"input_tokens": 10, "output_tokens": 5}},
      {"expect": "'"$tok"'", "text": "done", "usage": {"input_tokens": 10, "output_tokens": 5}}]}'
    run_example codex 1024
    expect_rc 0
    jqx '.output == "done"'
    sed -n 1p "$T/fake.log" | jq -e '.body.tools | any(.[]; .type == "namespace" and .name == "mcp__fs" and any(.tools[]; .name == "read_text_file"))' >/dev/null ||
        fail "codex did not offer the server's tool: $(sed -n 1p "$T/fake.log" | jq -c '[.body.tools[]? | .name // .type]')"
    # the call's output (from the server codex started) holds the file
    sed -n 3p "$T/fake.log" | jq -e --arg t "$tok" '.body.input | any(.[]; .type == "function_call_output" and .call_id == "call_2" and (.output | contains($t)))' >/dev/null ||
        fail "the tool result did not come back: $(sed -n 3p "$T/fake.log" | jq -c '.body.input[-1]' | head -c 900)"
    expect_clean
}

run_tests
