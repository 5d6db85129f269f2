# Helpers for the agent-stage tests (sourced after lib.sh): specs, jq
# checks, and the scripted fake model provider (tests/fake/fake_llm.c).
export VB_BUILD="${VB_BUILD:-$(dirname "$VB")}"
ROOT=$(cd "$here/../.." && pwd); export ROOT

spec() { cat >"$T/$1.yaml"; }
jqx() {
    jq -e "$1" >/dev/null <<<"$out" || fail "jq '$1' is not true on: $(head -c 1500 <<<"$out")"
}

# fake SCRIPT_JSON: start the fake provider on $T/script.json; sets $port.
# It runs until fd 9 (its stdin) closes, which the test's end does.
fake() {
    printf '%s' "$1" >"$T/script.json"
    mkfifo "$T/fake.in"
    "$VB_BUILD/tests/fake_llm" "$T/script.json" "$T/fake.log" <"$T/fake.in" >"$T/fake.port" \
        2>"$T/fake.err" &
    exec 9>"$T/fake.in"
    for _ in $(seq 100); do [ -s "$T/fake.port" ] && break; sleep 0.05; done
    port=$(head -1 "$T/fake.port")
    [ -n "$port" ] || fail "the fake provider did not start: $(cat "$T/fake.err")"
}

# The run's events.jsonl.
events() { cat "$(find "$T/state" -name events.jsonl | head -1)"; }

# interrupt_after_first_request SETTLE MAX: `voidbox run $T/a.yaml` in the
# background, ^C (SIGINT) once its first model request reached the fake and
# SETTLE more seconds passed; it must end cancelled (130) within MAX s.
interrupt_after_first_request() {
    "$VB" run "$T/a.yaml" >"$T/out" 2>"$T/err" </dev/null &
    local pid=$! i t0
    for i in $(seq 1 300); do
        [ -s "$T/fake.log" ] && break
        sleep 0.2
    done
    [ -s "$T/fake.log" ] || fail "no request reached the fake: $(head -c 600 "$T/err")"
    sleep "$1"
    kill -INT $pid
    t0=$SECONDS
    wait $pid
    rc=$?
    check_sanitizers
    expect_rc 130
    [ $((SECONDS - t0)) -lt "$2" ] || fail "the cancel took $((SECONDS - t0)) s (limit $2 s)"
    expect_err_has "voidbox: cancelled"
}
