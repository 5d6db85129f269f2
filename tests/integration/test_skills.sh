#!/usr/bin/env bash
# Skills as a user declares them (docs/skills.md): file: (a SKILL.md, a
# skill directory), inline and remote: skills resolved on the host and put
# where each agent looks, in real VMs (TCG here) with the scripted fake
# model endpoint (tests/fake/fake_llm.c); the agent's own tool reads them
# back and the next model request must hold what it read.  remote: skills
# come from a loopback HTTP server laid out like void-box's base URL.
TEST_TIMEOUT=${TEST_TIMEOUT:-400}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/lib_agent.sh"

llm_yaml() { # AGENT
    printf '{provider: custom, agent: %s, base_url: "http://127.0.0.1:%s", api_key_env: VB_TEST_KEY, model: fake-model}' "$1" "$port"
}

# Skill sources in $T/src: a lone SKILL.md, a directory with a script.
make_sources() {
    mkdir -p "$T/src/lone" "$T/src/tools/scripts"
    printf -- '---\nname: lone\ndescription: lone-desc-%s\n---\nlone-body-7301\n' "$1" >"$T/src/lone/SKILL.md"
    printf -- '---\nname: tools\ndescription: tools-desc-%s\n---\ntools-body-7302\n' "$1" >"$T/src/tools/SKILL.md"
    printf '#!/bin/sh\necho script-ran-$((40+2))\n' >"$T/src/tools/scripts/run.sh"
    chmod 755 "$T/src/tools/scripts/run.sh"
}

# serve: a loopback HTTP server over $T/www (void-box's layout); sets
# $www_port; its request log is $T/www.log.
serve() {
    mkdir -p "$T/www"
    python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$T/www" >"$T/www.out" 2>"$T/www.log" &
    echo $! >"$T/www.pid"
    for _ in $(seq 100); do grep -q 'port' "$T/www.out" 2>/dev/null && break; sleep 0.05; done
    www_port=$(sed -n 's/.* port \([0-9]*\).*/\1/p' "$T/www.out" | head -1)
    [ -n "$www_port" ] || fail "the HTTP server did not start: $(cat "$T/www.log")"
    export VOIDBOX_SKILLS_BASE_URL="http://127.0.0.1:$www_port"
}
unserve() {
    kill "$(cat "$T/www.pid")" 2>/dev/null || true
    # the cache entries of this server's URLs (its port is this test's)
    local c=${XDG_CACHE_HOME:-$HOME/.cache}/voidbox/skills u
    for u in "$@"; do
        local k; k=$(printf '%s' "$u" | sha256sum | cut -c1-64)
        [ -f "$c/url-$k" ] && rm -f "$c/sha256-$(cut -c1-64 "$c/url-$k")" "$c/url-$k"
    done
    return 0
}

test_builtin_gets_every_skill_form_in_the_guest_and_in_its_system_prompt() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    make_sources b
    serve
    mkdir -p "$T/www/org/repo/main/skills/remo"
    printf -- '---\nname: remo\ndescription: remote-desc\n---\nremote-body-7303\n' >"$T/www/org/repo/main/skills/remo/SKILL.md"
    local url="$VOIDBOX_SKILLS_BASE_URL/org/repo/main/skills/remo/SKILL.md"
    fake '{"turns": [
      {"tool_use": {"name": "bash", "id": "tu_1", "input": {"command": "cd ~/.agents/skills && cat lone/SKILL.md tools/SKILL.md style/SKILL.md remo/SKILL.md && sh tools/scripts/run.sh && stat -c \"%n %u %a\" tools/scripts/run.sh && ls -d ~/.claude/skills ~/.codex/skills 2>&1 | grep -c \"No such\""}},
       "usage": {"input_tokens": 10, "output_tokens": 5}},
      {"expect": "remote-body-7303", "text": "read them", "usage": {"input_tokens": 10, "output_tokens": 5}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: sk
sandbox: {memory_mb: 256}
llm: $(llm_yaml builtin)
agent:
  prompt: "use your skills"
  skills:
    - file:$T/src/lone/SKILL.md
    - file:src/tools
    - {name: style, content: "inline-body-7304"}
    - remote:org/repo/remo
EOF
    vb run --output json "$T/a.yaml"
    expect_rc 0
    jqx '.output == "read them"'
    # what the tool read in the guest came back to the model
    sed -n 2p "$T/fake.log" | jq -e '.body | tostring | contains("lone-body-7301") and contains("tools-body-7302") and contains("inline-body-7304") and contains("remote-body-7303") and contains("script-ran-42") and contains("tools/scripts/run.sh 1000 755") and contains("\\n2\\n")' >/dev/null ||
        fail "the guest's skill files did not come back: $(sed -n 2p "$T/fake.log" | jq -c '.body.messages[-1]' | head -c 900)"
    # the builtin agent's system prompt holds each SKILL.md
    sed -n 1p "$T/fake.log" | jq -e '.body.system | tostring | contains("## Skill: tools") and contains("tools-body-7302") and contains("inline-body-7304") and contains("remote-body-7303") and contains("/home/sandbox/.agents/skills/tools/")' >/dev/null ||
        fail "the system prompt lacks the skills: $(sed -n 1p "$T/fake.log" | jq -c '.body.system' | head -c 900)"
    # one skill.provisioned event each, with its size and content hash
    local sha
    sha=$(sha256sum "$T/src/tools/SKILL.md" | cut -c1-64)
    events | jq -se --arg sha "$sha" 'map(select(.event == "skill.provisioned")) | length == 4 and any(.[]; .name == "tools" and .type == "file" and .files == 2 and .sha256 == $sha and .path == "/home/sandbox/.agents/skills/tools" and .stage == "sk") and any(.[]; .name == "style" and .type == "inline" and .size == 16) and any(.[]; .name == "remo" and .type == "remote" and (.source | endswith("/org/repo/main/skills/remo/SKILL.md")))' >/dev/null ||
        fail "skill.provisioned events: $(events | grep skill.provisioned | head -c 1200)"
    grep -q "stage sk: skill tools (file, " "$T/err" || fail "the progress does not show the skill: $(head -c 900 "$T/err")"
    vb logs "$(jq -r .run_id <"$T/out")"
    grep -q "skill.provisioned.*remote remo, .* bytes in 1 file, sha256 " "$T/out" || fail "voidbox logs lacks the skill: $(grep skill "$T/out" | head -c 600)"
    [ "$(grep -c "GET /org/repo/main/skills/remo/SKILL.md" "$T/www.log")" -eq 1 ] || fail "requests: $(cat "$T/www.log")"
    # a second run takes the remote skill from the cache: no request
    : >"$T/fake.log"
    vb run --output json "$T/a.yaml"
    expect_rc 0
    [ "$(grep -c "GET " "$T/www.log")" -eq 1 ] || fail "the second run fetched again: $(cat "$T/www.log")"
    sed -n 2p "$T/fake.log" | jq -e '.body | tostring | contains("remote-body-7303")' >/dev/null ||
        fail "the cached remote skill is not in the guest"
    unserve "$url"
    expect_clean
}

test_claude_code_discovers_its_skills() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    make_sources c
    fake '{"turns": [
      {"text": "Reading.", "tool_use": {"name": "Bash", "id": "toolu_1", "input": {"command": "cat ~/.claude/skills/tools/SKILL.md ~/.claude/skills/style/SKILL.md; ~/.claude/skills/tools/scripts/run.sh; stat -c \"%U\" ~/.claude/skills/tools; ls ~/.agents 2>&1 | grep -c \"No such\"", "description": "read"}},
       "usage": {"input_tokens": 10, "output_tokens": 5}},
      {"expect": "tools-body-7302", "text": "done", "usage": {"input_tokens": 10, "output_tokens": 5}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: cc
sandbox: {memory_mb: 1024}
llm: $(llm_yaml claude-code)
agent:
  prompt: "use your skills"
  timeout_secs: 300
  skills:
    - file:$T/src/tools
    - {name: style, content: "---\nname: style\ndescription: style-desc-c\n---\ninline-body-7304\n"}
EOF
    vb run --output json "$T/a.yaml"
    expect_rc 0
    jqx '.output == "done"'
    local req2
    req2=$(jq -c 'select(.path | startswith("/v1/messages"))' "$T/fake.log" | sed -n 2p)
    jq -e '.body | tostring | contains("tools-body-7302") and contains("inline-body-7304") and contains("script-ran-42") and contains("sandbox\\n1")' >/dev/null <<<"$req2" ||
        fail "the skill files did not come back from the guest: $(jq -c '.body.messages[-1]' <<<"$req2" | head -c 900)"
    # claude-code found them itself: their descriptions are in its first
    # request, their bodies are not pasted before the prompt any more
    local req1
    req1=$(jq -c 'select(.path | startswith("/v1/messages"))' "$T/fake.log" | sed -n 1p)
    jq -e '.body | tostring | contains("tools-desc-c") and contains("style-desc-c")' >/dev/null <<<"$req1" ||
        fail "claude-code did not list the skills to the model: $(head -c 600 <<<"$req1")"
    jq -e '.body.messages | tostring | contains("tools-body-7302") | not' >/dev/null <<<"$req1" ||
        fail "the skill's body is still pasted into the prompt"
    # its init line lists them
    vb logs "$(jq -r .run_id <"$T/out")" --stage cc
    grep '"subtype":"init"' "$T/out" | jq -e '.skills | index("tools") and index("style")' >/dev/null ||
        fail "claude-code's init line lacks the skills: $(grep '"subtype":"init"' "$T/out" | head -c 900)"
    expect_clean
}

test_codex_discovers_its_skills() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    make_sources x
    fake '{"turns": [
      {"tool_use": {"name": "exec_command", "id": "call_1", "input": {"cmd": "cat ~/.codex/skills/tools/SKILL.md ~/.codex/skills/plain/SKILL.md; sh ~/.codex/skills/tools/scripts/run.sh"}},
       "usage": {"input_tokens": 10, "output_tokens": 5}},
      {"expect": "tools-body-7302", "text": "done", "usage": {"input_tokens": 10, "output_tokens": 5}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: cx
sandbox: {memory_mb: 1024}
llm: $(llm_yaml codex)
agent:
  prompt: "use your skills"
  timeout_secs: 300
  skills: [file:$T/src/tools, {name: plain, content: "# Plain \\"rule\\" 7305\\nplain-body-7305"}]
EOF
    vb run --output json "$T/a.yaml"
    expect_rc 0
    jqx '.output == "done"'
    sed -n 2p "$T/fake.log" | jq -e '.body | tostring | contains("tools-body-7302") and contains("script-ran-42") and contains("plain-body-7305")' >/dev/null ||
        fail "the skill did not come back from the guest: $(sed -n 2p "$T/fake.log" | head -c 900)"
    # codex found it itself: its description is in codex's first request
    sed -n 1p "$T/fake.log" | jq -e '.body | tostring | contains("tools-desc-x")' >/dev/null ||
        fail "codex did not list the skill to the model: $(sed -n 1p "$T/fake.log" | head -c 900)"
    # a SKILL.md without frontmatter gets one (codex skips a skill without):
    # its name, its first line as the description
    sed -n 2p "$T/fake.log" | jq -e '.body | tostring | contains("name: plain\\ndescription: \\\"Plain \\\\\\\"rule\\\\\\\" 7305\\\"\\n---\\n# Plain")' >/dev/null ||
        fail "no frontmatter was added: $(sed -n 2p "$T/fake.log" | head -c 1500)"
    sed -n 1p "$T/fake.log" | jq -e '.body | tostring | contains("Plain \\\"rule\\\" 7305")' >/dev/null ||
        fail "codex did not list the skill without frontmatter"
    expect_clean
}

# Not declared, not present: each box of a pipeline has its own skills
# only, whichever its agent.
test_pipeline_boxes_get_only_their_own_skills() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [
      {"tool_use": {"name": "bash", "id": "tu_1", "input": {"command": "echo A-sees; ls -a ~/.agents/skills ~/.claude/skills 2>&1"}},
       "usage": {"input_tokens": 1, "output_tokens": 1}},
      {"expect": "A-sees", "text": "a done", "usage": {"input_tokens": 1, "output_tokens": 1}},
      {"tool_use": {"name": "Bash", "id": "toolu_2", "input": {"command": "echo B-sees; ls -a ~/.claude/skills ~/.agents/skills 2>&1", "description": "look"}},
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
      skills: [{name: alpha-only, content: "alpha"}]
    - name: b
      prompt: "look"
      llm: $(llm_yaml claude-code)
      sandbox: {memory_mb: 1024}
      timeout_secs: 300
      skills: [{name: beta-only, content: "---\nname: beta-only\ndescription: beta\n---\nbeta"}]
  stages: [{type: box, name: a}, {type: box, name: b}]
EOF
    vb run --output json "$T/p.yaml"
    expect_rc 0
    local a b
    a=$(jq -c 'select(.body | tostring | contains("A-sees"))' "$T/fake.log" | head -1)
    b=$(jq -c 'select(.body | tostring | contains("B-sees"))' "$T/fake.log" | head -1)
    # what each box's ls printed: its tool_result
    local tr='[.body.messages[] | .content | arrays | .[] | select(.type == "tool_result")] | tostring'
    jq -e "$tr"' | contains("alpha-only") and (contains("beta-only") | not) and contains("/home/sandbox/.claude/skills") and contains("No such file")' >/dev/null <<<"$a" ||
        fail "box a saw: $(jq -c "$tr" <<<"$a" | head -c 600)"
    jq -e "$tr"' | contains("beta-only") and (contains("alpha-only") | not) and contains("/home/sandbox/.agents/skills") and contains("No such file")' >/dev/null <<<"$b" ||
        fail "box b saw: $(jq -c "$tr" <<<"$b" | head -c 600)"
    # and nothing of box a reached box b's model at all
    ! grep -q "alpha-only" <<<"$b" || fail "box b's request mentions box a's skill"
    events | jq -se '[.[] | select(.event == "skill.provisioned") | [.stage, .name]] == [["a", "alpha-only"], ["b", "beta-only"]]' >/dev/null ||
        fail "skill.provisioned events: $(events | grep skill.provisioned)"
    expect_clean
}

test_remote_404_fails_before_any_vm_naming_the_url() {
    export VB_TEST_KEY="sk-test-$RANDOM"
    serve
    port=9
    spec a <<EOF
api_version: v1
kind: agent
name: r
llm: $(llm_yaml builtin)
agent: {prompt: "x", skills: ["remote:org/repo/missing", "remote:org/onlyrepo"]}
EOF
    vb run "$T/a.yaml"
    [ "$rc" -ne 0 ] || fail "the run succeeded"
    expect_err_has "GET $VOIDBOX_SKILLS_BASE_URL/org/repo/main/skills/missing/SKILL.md: HTTP 404"
    expect_err_has "a.yaml:5:"
    ! grep -q "booted" "$T/err" || fail "a VM booted: $(cat "$T/err")"
    [ -z "$(find "$T/state" -name events.jsonl)" ] || fail "a run was recorded"
    # a two-part id is the repository's root SKILL.md
    sed -i 's|"remote:org/repo/missing", ||' "$T/a.yaml"
    vb run "$T/a.yaml"
    expect_err_has "GET $VOIDBOX_SKILLS_BASE_URL/org/onlyrepo/main/SKILL.md: HTTP 404"
    # https only, but for the loopback
    VOIDBOX_SKILLS_BASE_URL=http://example.com vb run "$T/a.yaml"
    expect_rc 2
    expect_err_has "must be an https:// URL"
    unserve
}

test_malformed_skills_are_refused_by_validate() {
    mkdir -p "$T/s/bad" "$T/s/out" "$T/s/big" "$T/s/trav"
    printf -- '---\nname: bad\ndescription: [unclosed\n---\nbody\n' >"$T/s/bad/SKILL.md"
    printf -- '---\nname: out\ndescription: d\n---\nbody\n' >"$T/s/out/SKILL.md"
    ln -s /etc/passwd "$T/s/out/passwd"
    truncate -s 100M "$T/s/big/SKILL.md"
    printf -- '---\nname: ../../etc\ndescription: d\n---\nbody\n' >"$T/s/trav/SKILL.md"
    check() { # SKILL EXPECTED...
        local sk=$1; shift
        printf 'api_version: v1\nkind: agent\nname: v\nllm: {provider: custom, agent: builtin, base_url: "http://127.0.0.1:9", api_key_env: HOME}\nagent:\n  prompt: x\n  skills:\n    - %s\n' "$sk" >"$T/v.yaml"
        vb validate "$T/v.yaml"
        expect_rc 2
        local e
        for e in "$@"; do expect_err_has "$e"; done
    }
    check "file:s/bad" "v.yaml:8:7: skill 'file:s/bad': $T/s/bad/SKILL.md:4:1: frontmatter: did not find expected ',' or ']' (while parsing a flow sequence that starts at line 3, column 14)"
    check "file:s/out" "$T/s/out/passwd is a symbolic link (to /etc/passwd)"
    check "file:s/big" "$T/s/big/SKILL.md is 100.0 MiB: the limit is 256.0 KiB"
    check "file:s/trav" "$T/s/trav/SKILL.md:2:7: frontmatter: name '../../etc' is not a safe skill name"
    check "{name: ok, content: \"---\\nname: other\\ndescription: d\\n---\\n\"}" "its frontmatter names it 'other', but the spec names it 'ok'"
    check "cli:no-such-tool" "skill 'cli:no-such-tool': program no-such-tool not found on this host's PATH"
    # the same name twice in one stage
    printf 'api_version: v1\nkind: agent\nname: v\nllm: {provider: custom, agent: builtin, base_url: "http://127.0.0.1:9", api_key_env: HOME}\nagent:\n  prompt: x\n  skills: [file:s/out/SKILL.md, {name: out, content: y}]\n' >"$T/v.yaml"
    rm "$T/s/out/passwd"
    vb validate "$T/v.yaml"
    expect_rc 2
    expect_err_has "another skill of this stage is also named 'out'"
    # agent: skills are informational: a mismatch is a warning
    printf 'api_version: v1\nkind: agent\nname: v\nllm: {provider: custom, agent: builtin, base_url: "http://127.0.0.1:9", api_key_env: HOME}\nagent:\n  prompt: x\n  skills: [agent:codex, file:s/out]\n' >"$T/v.yaml"
    vb validate "$T/v.yaml"
    expect_rc 0
    expect_err_has "v.yaml:7:12: agent.skills[0]: 'agent:codex' is informational: the stage runs builtin"
    # a command box has no agent to give skills to
    printf 'api_version: v1\nkind: pipeline\nname: v\npipeline:\n  boxes:\n    - {name: c, run: {program: "true"}, skills: [file:s/out]}\n' >"$T/v.yaml"
    vb validate "$T/v.yaml"
    expect_rc 0
    expect_err_has "pipeline.boxes[0].skills: a command box (run:) has no agent: its skills are not put into its VM"
}

test_example_specs_validate() {
    vb validate "$ROOT/examples/skills.yaml"
    expect_rc 0
    vb validate "$ROOT/examples/pipeline-skills.yaml"
    expect_rc 0
}

# examples/skills.yaml as a user runs it, its remote skill from a loopback
# mirror of the base URL's layout: every skill is in the VM.
test_example_skills_runs_against_an_anthropic_compatible_endpoint() {
    serve
    mkdir -p "$T/www/anthropics/skills/main/skills/skill-creator"
    printf -- '---\nname: skill-creator\ndescription: creates skills\n---\ncreator-body-7306\n' \
        >"$T/www/anthropics/skills/main/skills/skill-creator/SKILL.md"
    fake '{"turns": [
      {"tool_use": {"name": "bash", "id": "tu", "input": {"command": "cd ~/.agents/skills && ls -d * && cat release-notes/templates/notes.md"}},
       "usage": {"input_tokens": 1, "output_tokens": 1}},
      {"expect": "### Fixed", "text": "notes", "usage": {"input_tokens": 1, "output_tokens": 1}}]}'
    AGENT_BASE_URL="http://127.0.0.1:$port" AGENT_API_KEY=sk-example AGENT_MODEL=fake-model \
        vb run --output json "$ROOT/examples/skills.yaml"
    expect_rc 0
    jqx '.output == "notes"'
    sed -n 2p "$T/fake.log" | jq -e '.body | tostring | contains("no-emoji\\nplain-words\\nrelease-notes\\nskill-creator\\n")' >/dev/null ||
        fail "the skills in the VM: $(sed -n 2p "$T/fake.log" | head -c 900)"
    sed -n 1p "$T/fake.log" | jq -e '.body.system | tostring | contains("creator-body-7306") and contains("## Skill: plain-words")' >/dev/null ||
        fail "the system prompt lacks the skills"
    unserve "$VOIDBOX_SKILLS_BASE_URL/anthropics/skills/main/skills/skill-creator/SKILL.md"
    expect_clean
}

run_tests
