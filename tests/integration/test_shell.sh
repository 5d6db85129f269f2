#!/usr/bin/env bash
# `voidbox shell` as a user runs it: under a real terminal (tmux, and
# script(1) where a scripted session is enough) and with piped stdin.
# Every test boots real VMs (TCG here).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
EXAMPLES=$(cd "$here/../../examples" && pwd)
PROMPT='/workspace \$ $'   # busybox ash's, for uid 1000
export EXAMPLES PROMPT      # the tests run in child shells

# ---- a terminal: tmux on a private socket ---------------------------------

tm() { tmux -S "$T/tmux.sock" "$@"; }

# start_tmux COLS ROWS ARGS...: `voidbox shell ARGS...` in a fresh tmux
# window; the wrapper records the terminal settings before and after, the
# exit code in $T/rc, voidbox's stderr in $T/err (sanitizer reports too).
start_tmux() {
    local cols=$1 rows=$2; shift 2
    command -v tmux >/dev/null || fail "tmux is needed for the terminal tests (apt-get install tmux)"
    {
        echo 'stty -g >"$T/before"; echo $$ >"$T/wrapper"'
        echo '"$@" 2>"$T/err"; echo $? >"$T/rc.tmp"; stty -g >"$T/after"; mv "$T/rc.tmp" "$T/rc"'
        echo 'sleep 600'
    } >"$T/wrap.sh"
    trap 'tm kill-server 2>/dev/null' EXIT
    tm -f /dev/null new-session -d -s vb -x "$cols" -y "$rows" \
        "T=$(printf %q "$T") sh $(printf %q "$T/wrap.sh") $(printf '%q ' "$VB" shell "$@")"
    tm set-option -t vb window-size manual >/dev/null 2>&1 || true
}

pane() { tm capture-pane -p -J -t vb -S -300 2>/dev/null; }

# wait_pane REGEX [SECS]: until the terminal shows REGEX.
wait_pane() {
    local i
    for ((i = 0; i < ${2:-90} * 10; i++)); do
        pane | grep -qE -- "$1" && return 0
        [ -e "$T/rc" ] && break
        sleep 0.1
    done
    pane | grep -qE -- "$1" && return 0
    fail "the terminal never showed '$1'; it shows: $(pane | grep -v '^$' | tail -12); stderr: $(cat "$T/err" 2>/dev/null)"
}

keys() { tm send-keys -t vb "$@"; }

# wait_rc [SECS]: until voidbox has exited; sets $rc.
wait_rc() {
    local i
    for ((i = 0; i < ${1:-60} * 10; i++)); do
        [ -e "$T/rc" ] && break
        sleep 0.1
    done
    [ -e "$T/rc" ] || fail "voidbox did not exit; the terminal shows: $(pane | grep -v '^$' | tail -8)"
    rc=$(cat "$T/rc")
    check_sanitizers
}

expect_stty_restored() {
    cmp -s "$T/before" "$T/after" ||
        fail "terminal settings not restored: before $(cat "$T/before"), after $(cat "$T/after")"
}

test_tty_commands_and_exit_code() {
    start_tmux 80 24
    wait_pane "$PROMPT"
    keys 'tty; echo out-$((6*7)); echo "T=$TERM"' Enter
    wait_pane '^out-42$'
    pane | grep -qE '^/dev/pts/[0-9]+$' || fail "tty does not name a pseudo-terminal: $(pane | tail -6)"
    pane | grep -qE '^T=(tmux|screen)' || fail "the local TERM was not passed on: $(pane | tail -6)"
    keys 'exit 3' Enter
    wait_rc
    expect_rc 3
    expect_stty_restored
    expect_clean
}

test_window_resize() {
    start_tmux 100 30
    wait_pane "$PROMPT"
    keys 'stty size' Enter
    wait_pane '^30 100$'
    tm resize-window -t vb -x 132 -y 43
    sleep 0.5
    keys 'stty size' Enter
    wait_pane '^43 132$' 30
    keys 'exit' Enter
    wait_rc
    expect_rc 0
    expect_stty_restored
    expect_clean
}

test_ctrl_c_interrupts_the_guest_not_the_vm() {
    start_tmux 80 24
    wait_pane "$PROMPT"
    keys 'sleep 100; echo sleep-ended' Enter
    sleep 1.5
    keys C-c
    keys 'echo alive-$((1+1))' Enter
    wait_pane '^alive-2$' 20
    ! pane | grep -q '^sleep-ended' || fail "^C did not interrupt sleep"
    keys 'exit 0' Enter
    wait_rc
    expect_rc 0
    expect_stty_restored
    expect_clean
}

test_sigterm_tears_down_and_restores() {
    start_tmux 80 24
    wait_pane "$PROMPT"
    local vbpid
    vbpid=$(pgrep -P "$(cat "$T/wrapper")") || fail "no voidbox process"
    kill -TERM "$vbpid"
    wait_rc 30
    expect_rc 143
    expect_stty_restored
    expect_clean
}

test_vm_death_is_125_with_terminal_restored() {
    start_tmux 80 24
    wait_pane "$PROMPT"
    pkill -9 -f "qemu-system.*$T/run"
    wait_rc 30
    expect_rc 125
    [ "$(grep -c '^voidbox: ' "$T/err")" -ge 1 ] || fail "no message: $(cat "$T/err")"
    expect_stty_restored
    expect_clean
}

test_hangup_leaves_nothing() {
    start_tmux 80 24
    wait_pane "$PROMPT"
    local vbpid i
    vbpid=$(pgrep -P "$(cat "$T/wrapper")") || fail "no voidbox process"
    tm kill-server  # the terminal goes away: SIGHUP
    for ((i = 0; i < 100; i++)); do
        kill -0 "$vbpid" 2>/dev/null || break
        sleep 0.1
    done
    ! kill -0 "$vbpid" 2>/dev/null || fail "voidbox survived its terminal"
    check_sanitizers
    expect_clean
}

# ---- script(1): a pseudo-terminal fed from a pipe -------------------------

test_under_script() {
    command -v script >/dev/null || fail "script(1) is needed (util-linux)"
    printf 'tty; echo via-$((2*4))\nexit 4\n' |
        script -qfec "stty -g >$T/before; $(printf %q "$VB") shell 2>$T/err; echo \$? >$T/rc; stty -g >$T/after" /dev/null >"$T/out"
    rc=$(cat "$T/rc"); check_sanitizers
    expect_rc 4
    grep -qE '/dev/pts/[0-9]+' "$T/out" || fail "no tty in: $(tail -c 400 "$T/out")"
    grep -q 'via-8' "$T/out" || fail "command output missing: $(tail -c 400 "$T/out")"
    expect_stty_restored
    expect_clean
}

# ---- without a terminal ----------------------------------------------------

test_piped_stdin_still_gets_a_pty() {
    vb_in $'tty\necho hi-$((6*7))\n' shell
    expect_rc 0   # EOF on stdin: the guest's ^D ends the shell
    grep -qE '^/dev/pts/[0-9]+' <<<"$out" || fail "no pty: $out"
    grep -q '^hi-42' <<<"$out" || fail "no output: $out"
    [ -z "$err" ] || fail "stderr is not a terminal, yet: $err"
    vb_in $'exit 3\n' shell
    expect_rc 3
    vb_in '' shell -- sh -c 'stty size; tty'
    expect_rc 0
    grep -q '^24 80' <<<"$out" || fail "default size: $out"
    # void-box's spellings
    vb_in '' shell --program sh --args -c --args 'echo "$0-$1"' --args a --args b --working-dir /tmp
    expect_rc 0
    grep -q '^a-b' <<<"$out" || fail "--program/--args: $out"
    expect_clean
}

test_large_output_byte_exact_through_the_terminal() {
    # 3 MB through the guest terminal (raw output: no \r\n) and the
    # credit window; the program's own checksum comes last
    "$VB" shell -- sh -c 'stty -opost; head -c 3000000 /dev/urandom >/tmp/r; base64 /tmp/r; md5sum </tmp/r' \
        </dev/null >"$T/out" 2>"$T/err"
    rc=$?; check_sanitizers
    expect_rc 0
    local want got
    want=$(tail -n 1 "$T/out" | cut -d' ' -f1)
    got=$(head -n -1 "$T/out" | base64 -d | md5sum | cut -d' ' -f1)
    [ -n "$want" ] && [ "$want" = "$got" ] || fail "md5 guest '$want' host '$got' ($(wc -c <"$T/out") bytes)"
    expect_clean
}

test_spec_settings_and_overrides() {
    mkdir -p "$T/data" && echo from-host >"$T/data/hello.txt"
    cat >"$T/box.yaml" <<EOF
api_version: v1
kind: sandbox
name: settings
sandbox:
  memory_mb: 256
  env: {FOO: from-spec, BAR: spec}
  mounts: [{host: $T/data, guest: /data}]
  limits: {nofile: 77}
EOF
    vb_in $'echo "$FOO $BAR"; ulimit -n; cat /data/hello.txt; grep MemTotal /proc/meminfo\n' \
        shell "$T/box.yaml" --env BAR=flag
    expect_rc 0
    grep -q '^from-spec flag' <<<"$out" || fail "env: $out"
    grep -q '^77' <<<"$out" || fail "limits.nofile: $out"
    grep -q '^from-host' <<<"$out" || fail "spec mount: $out"
    local kb
    kb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB.*/\1/p' <<<"$out" | head -1)
    [ -n "$kb" ] && [ "$kb" -lt 262144 ] || fail "memory_mb 256: MemTotal $kb kB"
    vb_in $'cat /more/hello.txt; grep MemTotal /proc/meminfo\n' shell --file "$T/box.yaml" --memory-mb 400 --mount "$T/data:/more"
    expect_rc 0
    grep -q '^from-host' <<<"$out" || fail "--mount: $out"
    kb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB.*/\1/p' <<<"$out" | head -1)
    [ -n "$kb" ] && [ "$kb" -gt 262144 ] || fail "--memory-mb 400 over the spec: MemTotal $kb kB"
    vb_in '' shell "$EXAMPLES/sandbox.yaml" -- sh -c 'ls /examples/sandbox.yaml'
    expect_rc 0
    expect_clean
}

test_not_a_sandbox_spec_is_2() {
    vb shell "$EXAMPLES/workflow.yaml"
    expect_rc 2
    expect_err_has "voidbox shell needs a kind: sandbox spec; use voidbox run for pipelines"
    [ "$(wc -l <"$T/err")" -eq 1 ] || fail "expected one line: $err"
    vb shell --memory lots;         expect_rc 2; expect_err_has "--memory"
    vb shell --args x;              expect_rc 2; expect_err_has "--args needs --program"
    vb shell a.yaml b.yaml;         expect_rc 2
    vb shell --mount /nonexistent:/x; expect_rc 2
    vb shell --help;                expect_rc 0
    expect_clean
}

test_runtime_failure_is_125_with_one_message() {
    VOIDBOX_QEMU=/nonexistent/qemu vb_in '' shell
    expect_rc 125
    [ "$(wc -l <"$T/err")" -eq 1 ] || fail "expected one line: $err"
    vb_in '' shell -- no-such-program
    expect_rc 127
    expect_err_has "no-such-program"
    expect_clean
}

run_tests
