#!/usr/bin/env bash
# Loopback forwards and the network on VMs restored from a snapshot
# (docs/snapshots.md, "Forwards", "Network"): a restored VM listens for
# the forwards its restorer asks for (FORWARD, after the re-key), also
# when it is a warm exec; agent stages restored from one snapshot each
# have their own gateway token; a restored VM without network has none.
# Real VMs under whatever accelerator voidbox picks (TCG here).
# Forwards have no CLI: tests/integration/snapfwd_driver.c drives them.
TEST_TIMEOUT=${TEST_TIMEOUT:-400}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/snap_lib.sh"
. "$here/lib_agent.sh"

# fwd REF|--warm PORTS SCRIPT: the driver; sets $out, $err and $rc.
fwd() {
    "$VB_BUILD/tests/snapfwd_driver" "$@" >"$T/out" 2>"$T/err" </dev/null
    rc=$?
    out=$(cat "$T/out"); err=$(cat "$T/err")
    check_sanitizers
}

test_restored_vm_serves_its_forwards() {
    snap_setup
    create base true
    # two forwards, each answered by its own handler on the host; a port
    # not forwarded has no listener
    fwd base 7001,7002 'printf one | nc 127.0.0.1 7001; echo; printf two | nc 127.0.0.1 7002; echo
                        nc 127.0.0.1 7003 </dev/null 2>/dev/null; echo "7003 rc=$?"'
    expect_rc 0
    expect_out "restored $id
7001:one
7002:two
7003 rc=1"
    # the listeners are the restorer's: another restore of the same
    # snapshot forwards other ports, and the first ones are gone
    fwd base 7005 'printf x | nc 127.0.0.1 7005; echo; nc 127.0.0.1 7001 </dev/null 2>/dev/null; echo "7001 rc=$?"'
    expect_rc 0
    expect_out "restored $id
7005:x
7001 rc=1"
    expect_clean
}

test_forward_on_a_port_the_snapshot_took_fails_the_restore() {
    snap_setup
    # a setup that leaves a daemon on 127.0.0.1:7001 in the snapshot
    create busy sh -c 'setsid nc -l -p 7001 </dev/null >/dev/null 2>&1 & sleep 0.5; netstat -ltn | grep -q :7001'
    fwd busy 7001 'echo ran'
    [ "$rc" -ne 0 ] || fail "the restore succeeded: $out"
    grep -q "cannot set up the VM's loopback forwards" <<<"$err" || fail "stderr: $err"
    grep -q "127.0.0.1:7001" <<<"$err" || fail "the port is not named: $err"
    grep -q ran <<<"$out" && fail "the command ran: $out"
    expect_clean
}

test_warm_start_with_forwards_restores() {
    snap_setup
    vb snapshot warm
    expect_rc 0
    local warm_id
    warm_id=$(tail -1 <<<"$out")
    [[ "$warm_id" =~ ^[0-9a-f]{64}$ ]] || fail "snapshot warm printed '$out'"
    fwd --warm 4380 'printf gw | nc 127.0.0.1 4380'
    expect_rc 0
    expect_out "restored $warm_id
4380:gw"
    [ -z "$err" ] || fail "a warm start with forwards said: $err"
    expect_clean
}

test_restored_vm_without_network_has_none() {
    snap_setup
    create base true
    mkdir -p "$T/www"; echo secret >"$T/www/index.html"
    python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$T/www" >"$T/srv.log" 2>&1 &
    local port=""
    for _ in $(seq 100); do
        port=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$T/srv.log")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || fail "no HTTP server: $(cat "$T/srv.log")"
    vb exec --snapshot base -- sh -c "ls /sys/class/net | grep -v -e '^lo\$' -e '^sit0\$' | sed 's/^/if: /';
        ip -4 route | sed 's/^/route: /'; echo up=\$(ip link | grep -c ',UP');
        echo 'GET /index.html HTTP/1.0' | nc -w 3 10.0.2.2 $port 2>&1; echo nc-rc=\$?"
    expect_rc 0
    grep -q "^if: " <<<"$out" && fail "a restored VM without network has an interface: $out"
    grep -q "^route: " <<<"$out" && fail "a restored VM without network has a route: $out"
    grep -qx "up=1" <<<"$out" || fail "an interface other than lo is up: $out"
    grep -q secret <<<"$out" && fail "the host's server was reached: $out"
    grep -qx "nc-rc=1" <<<"$out" || fail "nc did not fail: $out"
    expect_clean
}

test_network_on_a_restore_is_refused_clearly() {
    snap_setup
    create base true
    # not done yet: a network device in snapshot VMs (docs/snapshots.md)
    vb exec --snapshot base --network -- echo ran
    expect_rc 2
    expect_err_has "a VM restored from a snapshot has no network"
    [ -z "$out" ] || fail "the command ran: $out"
    vb exec --snapshot base -p 8080:80 -- echo ran
    [ "$rc" -ne 0 ] || fail "-p on a restore was accepted: $out"
    [ -z "$out" ] || fail "the command ran: $out"
    expect_clean
}

# Two codex stages restored from one snapshot (sandbox.snapshot): each has
# the placeholder token its own gateway made after the restore; the second
# stage's gateway refuses the first stage's token.  codex comes from the
# agent cache (linked into this test's store); the model is the fake.
test_agent_stages_restored_from_one_snapshot_have_their_own_tokens() {
    local real_cache="${XDG_CACHE_HOME:-$HOME/.cache}/voidbox"
    snap_setup
    [ -d "$real_cache/agents" ] && mkdir -p "$XDG_CACHE_HOME/voidbox" &&
        ln -s "$real_cache/agents" "$XDG_CACHE_HOME/voidbox/agents"
    create base true
    export VB_TEST_KEY="sk-test-$RANDOM$RANDOM"
    mkdir -p "$T/share"; chmod 0777 "$T/share"
    fake '{"turns": [
      {"tool_use": {"name": "exec_command", "id": "call_1",
                    "input": {"cmd": "printf %s \"$OPENAI_API_KEY\" > /share/a.tok; echo a-wrote-${#OPENAI_API_KEY}"}},
       "usage": {"input_tokens": 1, "output_tokens": 1}},
      {"expect": "a-wrote-", "text": "a done", "usage": {"input_tokens": 1, "output_tokens": 1}},
      {"tool_use": {"name": "exec_command", "id": "call_2",
                    "input": {"cmd": "a=$(cat /share/a.tok); [ -n \"$a\" ] && [ \"$a\" != \"$OPENAI_API_KEY\" ] && echo tokens-differ; wget -qO- --header \"Authorization: Bearer $a\" http://127.0.0.1:4381/v1/models 2>&1; echo; echo b-done"}},
       "usage": {"input_tokens": 1, "output_tokens": 1}},
      {"expect": "b-done", "text": "b done", "usage": {"input_tokens": 1, "output_tokens": 1}}]}'
    spec a <<EOF
api_version: v1
kind: pipeline
name: twins
sandbox: {memory_mb: 1024, snapshot: base, mounts: [{host: "$T/share", guest: /share, mode: rw}]}
llm: {provider: custom, agent: codex, base_url: "http://127.0.0.1:$port", api_key_env: VB_TEST_KEY, model: fake-model}
pipeline:
  boxes:
    - {name: a, prompt: "write your token", timeout_secs: 240}
    - {name: b, prompt: "try the other token", timeout_secs: 240}
EOF
    vb run --output json "$T/a.yaml"
    # runs restore stages from sandbox.snapshot only with wip-run's part of
    # issue 12; until then the stages boot cold, which proves nothing here
    if ! events | grep -q "${id:0:12}"; then
        echo "# skipped: this build's runs do not restore sandbox.snapshot (rc $rc)" >&2
        return 0
    fi
    expect_rc 0
    [ "$(wc -l <"$T/fake.log")" -eq 4 ] || fail "$(wc -l <"$T/fake.log") requests reached the fake"
    local second
    second=$(sed -n 4p "$T/fake.log" | jq -c '.body.input[-1]')
    grep -q "tokens-differ" <<<"$second" || fail "the stages share a token: $(head -c 600 <<<"$second")"
    grep -q "401" <<<"$second" || fail "b's gateway accepted a's token: $(head -c 600 <<<"$second")"
    [ -s "$T/share/a.tok" ] || fail "stage a wrote no token"
    ! grep -q "$(cat "$T/share/a.tok")" <(jq -c .headers "$T/fake.log") ||
        fail "a placeholder reached the provider"
    expect_clean
}

run_tests
