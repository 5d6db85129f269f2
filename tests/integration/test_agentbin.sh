#!/usr/bin/env bash
# The agent binaries as a user meets them (docs/agents.md, "Agent
# binaries"): `voidbox agent pull` fetches claude-code and codex once,
# checked against the registry's published sha512 integrity; a damaged
# download or cached tarball is caught; the real binaries answer
# --version in a VM as uid 1000.
#
# The real binaries (~330 MB of tarballs) come from the npm registry into
# the user's cache once per machine, through the same code as every pull.
# The other tests use a stand-in registry (build/tests/fake_npm) and a
# private cache, so they fetch a few bytes.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
export FAKE_NPM="${VB_BUILD:-$(dirname "$VB")}/tests/fake_npm"
TEST_TIMEOUT=${AGENTBIN_TEST_TIMEOUT:-600}

# ---- a stand-in registry --------------------------------------------------

# start_registry: serves $T/reg; sets REG (its URL) and the private cache
start_registry() {
    mkdir -p "$T/reg" "$T/cache"
    "$FAKE_NPM" "$T/reg" "$T/reg.log" >"$T/port" &
    echo $! >"$T/reg.pid"
    for _ in $(seq 50); do [ -s "$T/port" ] && break; sleep 0.1; done
    [ -s "$T/port" ] || fail "the stand-in registry did not start"
    REG="http://127.0.0.1:$(cat "$T/port")"
    export VOIDBOX_NPM_REGISTRY=$REG XDG_CACHE_HOME=$T/cache
    : >"$T/reg.log"
}
stop_registry() { kill "$(cat "$T/reg.pid")" 2>/dev/null; }

integrity() { echo "sha512-$(openssl dgst -sha512 -binary "$1" | base64 -w0)"; }

# publish NAME VERSION TGZ [INTEGRITY]: the version's metadata as the
# registry serves it, dist.integrity that of TGZ unless given
publish() {
    local name=$1 version=$2 tgz=$3 integ=${4:-}
    [ -n "$integ" ] || integ=$(integrity "$tgz")
    mkdir -p "$T/reg/$name" "$T/reg/tarballs"
    cp "$tgz" "$T/reg/tarballs/${tgz##*/}"
    jq -n --arg n "$name" --arg v "$version" --arg i "$integ" \
        --arg t "$REG/tarballs/${tgz##*/}" \
        '{name: $n, version: $v, dist: {integrity: $i, tarball: $t}}' >"$T/reg/$name/$version"
}

# fake_claude TGZ [EXTRA...]: a claude-code package whose claude prints a
# version; EXTRA are more tar arguments (run in the package's parent)
fake_claude() {
    local tgz=$1; shift
    mkdir -p "$T/pkg/package"
    printf '#!/bin/sh\necho "9.9.9 (fake)"\n' >"$T/pkg/package/claude"
    chmod 755 "$T/pkg/package/claude"
    echo '{"name":"@anthropic-ai/claude-code-linux-x64-musl","version":"9.9.9"}' \
        >"$T/pkg/package/package.json"
    tar -C "$T/pkg" -czf "$tgz" package "$@"
}

tgz_gets() { grep -c '^GET /tarballs/' "$T/reg.log"; }
cached_tgz() { echo "$XDG_CACHE_HOME"/voidbox/agents/tarballs/sha512-*.tgz; }

test_pull_checks_the_tarball_and_fetches_once() {
    start_registry
    export VOIDBOX_CLAUDE_CODE_VERSION=9.9.9
    fake_claude "$T/c.tgz"
    publish @anthropic-ai/claude-code-linux-x64-musl 9.9.9 "$T/c.tgz"
    # what a pull that was killed left behind goes
    local a=$XDG_CACHE_HOME/voidbox/agents
    mkdir -p "$a/tarballs" "$a/trees/sha512-x.tmp-99999"
    echo partial >"$a/tarballs/sha512-x.tgz.part-99999"
    vb agent pull claude-code
    expect_rc 0
    expect_err_has "fetching claude-code 9.9.9"
    [ ! -e "$a/tarballs/sha512-x.tgz.part-99999" ] && [ ! -e "$a/trees/sha512-x.tmp-99999" ] ||
        fail "leftovers of a killed pull stayed"
    local tree=${out#claude-code: }
    [ "$("$tree/bin/claude")" = "9.9.9 (fake)" ] || fail "no working bin/claude in '$tree'"
    [ "$(integrity "$(cached_tgz)")" = "$(integrity "$T/c.tgz")" ] || fail "cached tarball differs"
    [ "$(tgz_gets)" -eq 1 ] || fail "tarball fetched $(tgz_gets) times"
    # cached: nothing is asked of the registry at all
    : >"$T/reg.log"
    vb agent pull claude-code
    expect_rc 0
    [ ! -s "$T/reg.log" ] || fail "a cached pull asked the registry: $(cat "$T/reg.log")"
    grep -q fetching "$T/err" && fail "a cached pull fetched: $err"
    vb agent list -o json
    jq -e '.[] | select(.agent == "claude-code") | .cached and .version == "9.9.9" and
           (.pinned | not) and .size > 0' <<<"$out" >/dev/null || fail "agent list: $out"
    stop_registry
}

# flip_byte FILE: damage FILE in the middle
flip_byte() {
    local f=$1 off b
    off=$(($(stat -c %s "$f") / 2))
    b=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
    printf "\\$(printf '%03o' $(((b + 1) % 256)))" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}

test_a_corrupt_cached_tarball_is_caught_and_fetched_again() {
    start_registry
    export VOIDBOX_CLAUDE_CODE_VERSION=9.9.9
    fake_claude "$T/c.tgz"
    publish @anthropic-ai/claude-code-linux-x64-musl 9.9.9 "$T/c.tgz"
    vb agent pull claude-code
    expect_rc 0
    local good; good=$(integrity "$T/c.tgz")
    flip_byte "$(cached_tgz)"
    [ "$(integrity "$(cached_tgz)")" != "$good" ] || fail "the byte did not flip"
    vb agent pull --verify claude-code
    expect_rc 0
    expect_err_has "the cached tarball of claude-code 9.9.9 is corrupt"
    [ "$(tgz_gets)" -eq 2 ] || fail "tarball fetched $(tgz_gets) times, expected 2"
    [ "$(integrity "$(cached_tgz)")" = "$good" ] || fail "the tarball was not replaced"
    # without --verify, a tree that has to be unpacked again checks it too
    flip_byte "$(cached_tgz)"
    rm -rf "$XDG_CACHE_HOME"/voidbox/agents/trees
    vb agent pull claude-code
    expect_rc 0
    expect_err_has "is corrupt"
    [ "$(integrity "$(cached_tgz)")" = "$good" ] || fail "the tarball was not replaced"
    [ "$("${out#claude-code: }/bin/claude")" = "9.9.9 (fake)" ] || fail "no working bin/claude"
    stop_registry
}

test_a_download_not_matching_its_integrity_is_refused() {
    start_registry
    export VOIDBOX_CLAUDE_CODE_VERSION=9.9.9
    fake_claude "$T/c.tgz"
    echo other >"$T/other"
    publish @anthropic-ai/claude-code-linux-x64-musl 9.9.9 "$T/c.tgz" "$(integrity "$T/other")"
    vb agent pull claude-code
    expect_rc 125
    expect_err_has "does not match its published integrity (sha512): refusing it"
    [ -z "$(find "$XDG_CACHE_HOME"/voidbox/agents/tarballs "$XDG_CACHE_HOME"/voidbox/agents/trees \
              -mindepth 1)" ] || fail "something was cached"
    stop_registry
}

test_the_pinned_integrity_wins_over_the_registry() {
    start_registry
    unset VOIDBOX_CLAUDE_CODE_VERSION
    fake_claude "$T/c.tgz"
    local pinned; pinned=$("$VB" agent list -o json | jq -r '.[] | select(.agent == "claude-code") | .version')
    publish @anthropic-ai/claude-code-linux-x64-musl "$pinned" "$T/c.tgz"
    vb agent pull claude-code
    expect_rc 125
    expect_err_has "not the pinned one"
    [ "$(tgz_gets)" -eq 0 ] || fail "the tarball was fetched"
    stop_registry
}

test_unsafe_tarballs_are_refused() {
    start_registry
    export VOIDBOX_CLAUDE_CODE_VERSION=9.9.9
    mkdir -p "$T/pkg/package"
    ln -s /etc "$T/pkg/package/out"
    fake_claude "$T/link.tgz"
    rm "$T/pkg/package/out"
    fake_claude "$T/dotdot.tgz" --transform 's,^package/claude$,package/../../../escaped,' package/claude
    for t in link dotdot; do
        publish @anthropic-ai/claude-code-linux-x64-musl 9.9.9 "$T/$t.tgz"
        vb agent pull claude-code
        expect_rc 125
        expect_err_has "refusing member"
        [ -z "$(ls -A "$XDG_CACHE_HOME"/voidbox/agents/trees)" ] || fail "$t: a tree was left"
        rm -f "$XDG_CACHE_HOME"/voidbox/agents/tarballs/*
    done
    [ ! -e "$XDG_CACHE_HOME/voidbox/escaped" ] && [ ! -e "$XDG_CACHE_HOME/escaped" ] ||
        fail "a member escaped the tree"
    stop_registry
}

test_an_unreachable_registry_is_named() {
    export XDG_CACHE_HOME=$T/cache VOIDBOX_NPM_REGISTRY=http://127.0.0.1:1 VOIDBOX_CODEX_VERSION=9.9.9
    vb agent pull codex
    expect_rc 125
    expect_err_has "http://127.0.0.1:1/@openai%2fcodex/9.9.9-linux-x64"
    expect_err_has "VOIDBOX_NPM_REGISTRY"
}

test_a_missing_host_package_is_named() {
    start_registry
    export VOIDBOX_CLAUDE_CODE_VERSION=9.9.9 VOIDBOX_BASH_STATIC=$T/none
    fake_claude "$T/c.tgz"
    publish @anthropic-ai/claude-code-linux-x64-musl 9.9.9 "$T/c.tgz"
    vb exec --agent claude-code -- claude --version
    expect_rc 125
    expect_err_has "install Debian's bash-static"
    vb exec --agent nope -- true
    expect_rc 2
    expect_err_has "expected claude-code or codex"
    stop_registry
}

test_agent_usage_errors() {
    vb agent pull bogus
    expect_rc 2
    expect_err_has "agent pull: unknown agent 'bogus' (expected claude-code, codex or all)"
    vb agent pull
    expect_rc 2
    expect_err_has "which agent?"
    vb agent frob
    expect_rc 2
    expect_err_has "agent: unknown command 'frob'"
    vb agent list -o yaml
    expect_rc 2
    vb agent list -o json
    expect_rc 0
    jq -e 'map(.agent) == ["claude-code", "codex"] and all(.pinned)' <<<"$out" >/dev/null ||
        fail "agent list: $out"
}

# ---- the real binaries, in the user's cache -------------------------------

# pinned KIND: the pinned version
pinned() { "$VB" agent list -o json | jq -r ".[] | select(.agent == \"$1\") | .version"; }

test_claude_code_runs_in_a_vm_as_uid_1000() {
    vb agent pull claude-code
    expect_rc 0
    vb exec --agent claude-code -- sh -c 'id -u; claude --version'
    expect_rc 0
    expect_out "1000
$(pinned claude-code) (Claude Code)"
    expect_clean
}

test_codex_runs_in_a_vm_as_uid_1000() {
    vb agent pull codex
    expect_rc 0
    local v; v=$(pinned codex)
    vb exec --agent codex -- sh -c 'id -u; codex --version'
    expect_rc 0
    expect_out "1000
codex-cli ${v%-linux-x64}"
    expect_clean
}

test_both_agents_in_one_vm_with_bash_and_a_writable_home() {
    vb agent pull all
    expect_rc 0
    vb exec --agent claude-code --agent codex -- sh -c \
        'command -v claude; command -v codex; bash -c "echo \$BASH_VERSION" | cut -d. -f1;
         touch "$HOME/x" && echo home ok; touch /opt/voidbox/agents/codex/x 2>/dev/null || echo ro'
    expect_rc 0
    expect_out "/opt/voidbox/agents/claude-code/bin/claude
/opt/voidbox/agents/codex/bin/codex
5
home ok
ro"
}

# An agent stage's VM has more mounts than most: five work, a sixth is
# refused before anything boots.
test_five_mounts_work_and_a_sixth_is_refused() {
    mkdir -p "$T/m"; echo hi >"$T/m/f"
    vb agent pull codex
    expect_rc 0
    vb exec --agent codex -v "$T/m:/a" -v "$T/m:/b" -v "$T/m:/c" -- sh -c 'cat /a/f /b/f /c/f; command -v codex'
    expect_rc 0
    expect_out "hi
hi
hi
/opt/voidbox/agents/codex/bin/codex"
    vb exec --agent codex -v "$T/m:/a" -v "$T/m:/b" -v "$T/m:/c" -v "$T/m:/d" -- true
    expect_rc 2
    expect_err_has "at most 5 mounts per VM"
    expect_clean
}

test_a_cached_agent_needs_no_registry() {
    vb agent pull all
    expect_rc 0
    VOIDBOX_NPM_REGISTRY=http://127.0.0.1:1 vb agent pull all
    expect_rc 0
    grep -q fetching "$T/err" && fail "fetched again: $err"
    [ "$(wc -l <<<"$out")" -eq 2 ] || fail "expected a line per agent: $out"
}

run_tests
