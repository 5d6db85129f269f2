#!/usr/bin/env bash
# Run every test against each build directory given (e.g. `build build-san`):
# cmocka unit tests, C integration tests and the CLI integration tests, which
# boot real VMs.  The last line is "N passed, N failed".
#
# TESTS=REGEX (`make check TESTS=...`) runs only the matching tests: an
# extended regex, unanchored, matched against "FILE:NAME" for the CLI tests
# (test_exec.sh:timeout_kills_the_vm, NAME without "test_"), and against the
# program's name for the compiled ones, which run whole (test_spec,
# itest_capi, replay_proto; the guest agent's are agent_process_mode).
# TESTS=exec runs test_exec.sh (and any test named *exec*);
# TESTS='test_run.sh:(cancel|fan)' two kinds of test_run.sh's.  When nothing
# matches it fails, so a typo cannot pass.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cd "$root"
[ $# -gt 0 ] || set -- build

TESTS=${TESTS:-}
export TESTS
if [ -n "$TESTS" ]; then
    [[ "" =~ $TESTS ]]
    if [ $? -eq 2 ]; then echo "TESTS='$TESTS' is not an extended regex"; exit 2; fi
    echo "only tests matching TESTS='$TESTS'"
fi
wanted() { [ -z "$TESTS" ] || [[ $1 =~ $TESTS ]]; }

passed=0 failed=0
failures=()
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=99}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

count_cmocka() { # $1 = build, $2 = binary
    local out rc p f
    out=$(timeout 300 "$2" 2>&1); rc=$?
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' <<<"$out" | tail -1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' <<<"$out" | tail -1)
    p=${p:-0}; f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed or sanitizer report
    if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' <<<"$out"; then f=$((f + 1)); fi
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$f" -ne 0 ]; then
        failures+=("$1: $(basename "$2")")
        printf '%s\n' "$out" | tail -40
    fi
    printf '%-8s %-40s %d passed, %d failed\n' "$1" "$(basename "$2")" "$p" "$f"
}

count_tap() { # lines "ok - NAME" / "not ok - NAME" from a test program
    local build=$1; shift
    local out rc p f
    out=$("$@" 2>&1); rc=$?
    printf '%s\n' "$out" | grep -E '^(not )?ok ' | sed "s/^/$build  /"
    p=$(grep -cE "^ok " <<<"$out"); f=$(grep -cE "^not ok " <<<"$out")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1; printf '%s\n' "$out" | tail -30
    fi
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$f" -ne 0 ]; then
        failures+=("$build: $*")
        printf '%s\n' "$out" | grep -B2 -A25 '^not ok' | head -80
    fi
}

replay() { # a fuzz target's replay build over its corpus, as one test
    local out
    if out=$(timeout 300 "$1" "$2" 2>&1); then
        echo "ok - fuzz corpus $2: ${out##*$'\n'}"
    else
        printf '%s\n' "$out" | tail -20
        echo "not ok - fuzz corpus $2"
    fi
}

for build in "$@"; do
    [ -x "$build/voidbox" ] || { echo "missing $build/voidbox"; failed=$((failed + 1)); continue; }
    for t in "$build"/tests/test_*; do
        [ -x "$t" ] && wanted "${t##*/}" && count_cmocka "$build" "$t"
    done
    for t in "$build"/tests/replay_*; do   # fuzz corpora, replayed
        wanted "${t##*/}" || continue
        name=${t##*/replay_}
        corpus=tests/fuzz/corpus/$name
        [ "$name" = spec ] && corpus=tests/golden/specs
        count_tap "$build" replay "$t" "$corpus"
    done
    for t in "$build"/tests/itest_*; do
        [ -x "$t" ] && wanted "${t##*/}" && count_tap "$build" timeout 900 "$t"
    done
    for t in tests/integration/test_*.sh; do   # they filter by FILE:NAME themselves
        count_tap "$build" env VB="$root/$build/voidbox" VB_BUILD="$root/$build" \
            timeout 1800 bash "$t"
    done
done

# The guest agent's protocol tests in process mode, glibc and ASAN+UBSAN
# builds (the shipped agent is static musl and cannot carry sanitizers).
if wanted agent_process_mode; then
    out=$(bash guest/agent/test/run.sh build/agent-test 2>&1); rc=$?
    while read -r n f; do
        passed=$((passed + n - f)); failed=$((failed + f))
        printf '%-8s %-40s %d passed, %d failed\n' agent "process-mode protocol checks" $((n - f)) "$f"
    done < <(sed -n 's/^\([0-9]*\) checks, \([0-9]*\) failures$/\1 \2/p' <<<"$out")
    if [ "$rc" -ne 0 ]; then
        failed=$((failed + 1)); failures+=("agent process-mode tests (exit $rc)")
        printf '%s\n' "$out" | grep -vE '^voidbox-agent: ' | tail -40
    fi
fi

if [ -n "$TESTS" ] && [ $((passed + failed)) -eq 0 ]; then
    failed=1; failures+=("no test matches TESTS='$TESTS'")
fi
if [ ${#failures[@]} -gt 0 ]; then
    echo "failed:"; printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
