# Helpers for the CLI integration tests (sourced).  Each test is a function
# test_NAME; `run_tests` runs them all, each in a subshell with a private
# runtime directory and a time limit, and prints "ok - NAME" or
# "not ok - NAME" with the reason.
set -u
: "${VB:?VB must point to the voidbox binary}"
TEST_TIMEOUT=${TEST_TIMEOUT:-180}

fail() { echo "  FAIL: $*" >&2; exit 1; }

# vb ARGS...: run voidbox; sets $out, $err (file contents) and $rc.
vb() {
    "$VB" "$@" >"$T/out" 2>"$T/err" </dev/null
    rc=$?
    out=$(cat "$T/out"); err=$(cat "$T/err")
    check_sanitizers
}

# vb_in INPUT ARGS...: like vb with INPUT on stdin.
vb_in() {
    local input=$1; shift
    printf '%s' "$input" | "$VB" "$@" >"$T/out" 2>"$T/err"
    rc=$?
    out=$(cat "$T/out"); err=$(cat "$T/err")
    check_sanitizers
}

check_sanitizers() {
    if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T/err" 2>/dev/null; then
        cat "$T/err" >&2
        fail "sanitizer report"
    fi
}

expect_rc() { [ "$rc" -eq "$1" ] || fail "exit code $rc, expected $1 (stderr: $(head -c 600 "$T/err"))"; }
expect_out() { [ "$out" = "$1" ] || fail "stdout '$(head -c 300 <<<"$out")', expected '$1'"; }
expect_err_has() { grep -qF -- "$1" "$T/err" || fail "stderr lacks '$1': $(head -c 600 "$T/err")"; }

# No QEMU of this test left running, no runtime directory left behind.
expect_clean() {
    local left
    left=$(pgrep -f "qemu-system.*$XDG_RUNTIME_DIR" || true)
    [ -z "$left" ] || fail "QEMU still running: $left"
    left=$(find "$XDG_RUNTIME_DIR" -mindepth 2 -maxdepth 2 -name 'vm-*' 2>/dev/null)
    [ -z "$left" ] || fail "runtime directory left behind: $left"
}

# TESTS=REGEX runs only the tests whose "FILE:NAME" matches (FILE this
# script's name, NAME the function's without "test_"; see tests/run.sh).
run_tests() {
    local fns t status file=${0##*/}
    fns=$(declare -F | awk '{print $3}' | grep '^test_' )
    for t in $fns; do
        [ -z "${TESTS:-}" ] || [[ "$file:${t#test_}" =~ $TESTS ]] || continue
        T=$(mktemp -d /tmp/vbtest.XXXXXX)
        mkdir -p "$T/run" "$T/state"
        (
            export XDG_RUNTIME_DIR="$T/run" XDG_STATE_HOME="$T/state" T
            # timeout leads a process group of its own: whatever the test
            # left running (a failed test's background servers, stand-ins)
            # goes with it, or it would hold this script's output open
            timeout -k 5 "$TEST_TIMEOUT" bash -c "$(declare -f); $(declare -p VB T 2>/dev/null); set -u; $t" 2>"$T/test.log" &
            local tpid=$! st
            wait "$tpid"; st=$?
            kill -KILL -- "-$tpid" 2>/dev/null
            exit "$st"
        )
        status=$?
        if [ $status -eq 0 ]; then
            echo "ok - ${t#test_}"
        else
            [ $status -eq 124 ] && echo "  (timed out after ${TEST_TIMEOUT}s)" >>"$T/test.log"
            echo "not ok - ${t#test_}"
            sed 's/^/    /' "$T/test.log" | tail -20
        fi
        # whatever a failed test left behind must not leak into the next one;
        # a background warm maker of the test's own store (`exec` spawns it in
        # a session of its own, out of the test's process group) goes too,
        # with its VM, or it would write in $T while it is removed
        local p
        for p in $(grep -lsz "^XDG_CACHE_HOME=$T/" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3); do
            kill -9 "$p" 2>/dev/null || true
        done
        pkill -9 -f "qemu-system.*$T/" 2>/dev/null || true
        rm -rf "$T" 2>/dev/null || { sleep 1; rm -rf "$T"; }
    done
}
