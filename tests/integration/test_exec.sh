#!/usr/bin/env bash
# `voidbox exec` as a user runs it: every test boots real VMs (TCG here).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

test_stdout_and_stderr_kept_apart() {
    vb exec -- sh -c 'echo to-out; echo to-err >&2; echo more-out'
    expect_rc 0
    expect_out $'to-out\nmore-out'
    [ "$err" = "to-err" ] || fail "stderr is '$err'"
    expect_clean
}

test_64MiB_output_byte_exact() {
    # a deterministic, non-repeating stream: 64 MiB of a counter through sha
    "$VB" exec -- sh -c 'head -c 67108864 /dev/urandom | tee /tmp/x | sha256sum >&2; cat /tmp/x' \
        >"$T/big" 2>"$T/sum" </dev/null
    rc=$?
    expect_rc 0
    size=$(stat -c %s "$T/big")
    [ "$size" -eq 67108864 ] || fail "got $size bytes"
    want=$(cut -d' ' -f1 "$T/sum")
    got=$(sha256sum "$T/big" | cut -d' ' -f1)
    [ "$want" = "$got" ] || fail "sha256 guest $want host $got"
}

test_stdin_piped_through() {
    vb_in $'line one\nline two\n' exec -- sh -c 'wc -l; echo done'
    expect_rc 0
    expect_out $'2\ndone'
    # binary stdin, bigger than the flow-control window
    head -c 3000000 /dev/urandom >"$T/in"
    "$VB" exec -- sha256sum <"$T/in" >"$T/out" 2>"$T/err"
    rc=$?
    expect_rc 0
    [ "$(cut -d' ' -f1 "$T/out")" = "$(sha256sum <"$T/in" | cut -d' ' -f1)" ] || fail "stdin corrupted"
}

test_exit_codes() {
    vb exec -- true;                        expect_rc 0
    vb exec -- sh -c 'exit 3';              expect_rc 3
    vb exec -- sh -c 'kill -9 $$';          expect_rc 137
    vb exec -- no-such-program;             expect_rc 127; expect_err_has "no-such-program"
    vb exec -- /etc/passwd;                 expect_rc 126
    vb exec --timeout 1 -- sleep 30;        expect_rc 124
    expect_clean
}

test_runtime_failure_is_125_with_one_message() {
    VOIDBOX_QEMU=/nonexistent/qemu vb exec -- true
    expect_rc 125
    expect_err_has "voidbox: "
    [ "$(wc -l <"$T/err")" -eq 1 ] || fail "expected one line: $err"
    VOIDBOX_KERNEL=/nonexistent vb exec -- true
    expect_rc 125
    expect_err_has "/nonexistent"
}

test_usage_errors_are_2() {
    vb exec --memory lots -- true;  expect_rc 2; expect_err_has "--memory"
    vb exec;                        expect_rc 2
    vb exec --mount /nonexistent:/x -- true; expect_rc 2
}

test_uid_1000_by_default_root_on_request() {
    vb exec -- sh -c 'id -u; id -g; echo $HOME; pwd'
    expect_rc 0
    expect_out $'1000\n1000\n/home/sandbox\n/workspace'
    vb exec --user root -- id -u
    expect_rc 0
    expect_out 0
}

test_rlimits_applied() {
    vb exec -- sh -c 'ulimit -n; ulimit -u; ulimit -f'
    expect_rc 0
    # busybox's ulimit -f counts 512-byte blocks: 100 MiB = 204800
    expect_out $'1024\n512\n204800'
    vb exec --rlimit nofile=64 -- sh -c 'ulimit -n'
    expect_out 64
    # writing past RLIMIT_FSIZE fails
    vb exec --rlimit fsize=1048576 -- sh -c 'head -c 2000000 /dev/zero > /tmp/f; echo rc=$?; stat -c %s /tmp/f'
    [ "$(tail -1 <<<"$out")" = 1048576 ] || fail "file grew past the limit: $out"
}

test_allowlist_refusal() {
    vb exec --allow echo -- echo allowed
    expect_rc 0
    expect_out allowed
    vb exec --allow echo -- cat /etc/passwd
    expect_rc 126
    expect_err_has "cat"
    expect_err_has "allow"
}

test_env_and_workdir() {
    FROM_HOST=hostval vb exec --env A=1 --env 'B=two words' --env FROM_HOST --workdir /tmp -- \
        sh -c 'echo "$A|$B|$FROM_HOST"; pwd'
    expect_rc 0
    expect_out $'1|two words|hostval\n/tmp'
    vb exec --workdir /does/not/exist -- true
    [ "$rc" -ne 0 ] || fail "missing workdir accepted"
    expect_err_has "/does/not/exist"
}

test_timeout_kills_the_process_group() {
    start=$(date +%s)
    vb exec --timeout 2 -- sh -c 'sleep 100 & sleep 100 & wait'
    expect_rc 124
    [ $(( $(date +%s) - start )) -lt 30 ] || fail "took too long"
    expect_clean
}

test_four_at_once_do_not_interfere() {
    for i in 1 2 3 4; do
        "$VB" exec --env N=$i -- sh -c 'cat /proc/sys/kernel/random/boot_id; echo "n=$N"; echo $N > /workspace/f; sleep 1; cat /workspace/f' \
            >"$T/o$i" 2>"$T/e$i" </dev/null &
    done
    wait
    for i in 1 2 3 4; do
        [ "$(sed -n 2p "$T/o$i")" = "n=$i" ] || fail "VM $i: $(cat "$T/o$i" "$T/e$i")"
        [ "$(sed -n 3p "$T/o$i")" = "$i" ] || fail "VM $i saw another VM's file"
    done
    ids=$(for i in 1 2 3 4; do head -1 "$T/o$i"; done | sort -u | wc -l)
    [ "$ids" -eq 4 ] || fail "boot ids not distinct"
    expect_clean
}

test_guest_kernel_panic_is_125() {
    start=$(date +%s)
    vb exec --user root -- sh -c 'echo c > /proc/sysrq-trigger; sleep 100'
    expect_rc 125
    expect_err_has "kernel panic"
    [ $(( $(date +%s) - start )) -lt 60 ] || fail "panic noticed too late"
    expect_clean
}

test_console_flood_is_bounded() {
    # guest root floods the serial console, then the kernel panics: the kept
    # log holds the boot, a note of what was dropped and the panic at the end
    # (--cold: a VM restored from the warm snapshot has no boot in its log)
    vb exec --cold --user root -- sh -c '
        head -c 3000000 /dev/zero | tr "\000" x > /dev/ttyS0
        echo c > /proc/sysrq-trigger; sleep 100'
    expect_rc 125
    expect_err_has "kernel panic"
    log=$(grep -o 'console log: [^)]*' "$T/err" | cut -d' ' -f3)
    [ -f "$log" ] || fail "no console log named: $err"
    size=$(stat -c %s "$log")
    [ "$size" -lt 1300000 ] || fail "kept console log is $size bytes"
    grep -q "voidbox-agent: ready" "$log" || fail "the boot messages were not kept"
    grep -qE '\[voidbox: [0-9]+ bytes dropped here\]' "$log" || fail "no drop note"
    tail -c 200000 "$log" | grep -q "Kernel panic" || fail "the panic at the end was not kept"
    expect_clean
}

test_sigint_with_a_slow_reader() {
    # our stdout's reader does not read: output waits in voidbox (bounded),
    # the guest waits for credit, and ^C still ends it within its grace
    mkfifo "$T/fifo"
    (sleep 60; cat >/dev/null) <"$T/fifo" &
    local rpid=$!
    "$VB" exec -- sh -c 'yes' >"$T/fifo" 2>"$T/err" &
    local vbpid=$! i
    for i in $(seq 150); do
        ls "$XDG_RUNTIME_DIR"/voidbox-*/vm-"$vbpid"-*/info.json >/dev/null 2>&1 && break
        sleep 0.2
    done
    sleep 3 # the VM runs `yes`: the pipe is full by now
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$vbpid/status")
    [ "$rss" -lt 65536 ] || fail "voidbox holds $rss KiB"
    local t0=$SECONDS
    kill -INT "$vbpid"
    wait "$vbpid"
    rc=$?
    kill "$rpid" 2>/dev/null
    [ $((SECONDS - t0)) -lt 8 ] || fail "SIGINT took $((SECONDS - t0)) s"
    expect_rc 130
    expect_clean
}

test_agent_crash_is_125() {
    # A stage can no longer crash the agent (root cannot write /proc/1/mem:
    # test_hostile.sh), so a stand-in QEMU plays a guest whose PID 1 died:
    # the kernel's panic line on the console, then QEMU exits.
    start=$(date +%s)
    VOIDBOX_QEMU="${VB_BUILD:-$(dirname "$VB")}/tests/hostile_agent" HOSTILE_MODE=crash \
        vb exec --accel tcg -- sleep 100
    expect_rc 125
    expect_err_has "the guest agent (PID 1) crashed"
    [ $(( $(date +%s) - start )) -lt 60 ] || fail "crash noticed too late"
    expect_clean
}

test_sigterm_tears_down() {
    "$VB" exec -- sleep 100 >"$T/out" 2>"$T/err" </dev/null &
    pid=$!
    for _ in $(seq 1 120); do
        pgrep -f "qemu-system.*$XDG_RUNTIME_DIR" >/dev/null && break
        sleep 0.5
    done
    sleep 3 # let the guest start sleep
    kill -TERM $pid
    wait $pid
    rc=$?
    [ "$rc" -eq 143 ] || fail "exit $rc after SIGTERM, expected 143"
    expect_clean
}

test_sigint_during_boot_tears_down() {
    "$VB" exec -- true >"$T/out" 2>"$T/err" </dev/null &
    pid=$!
    for _ in $(seq 1 100); do
        pgrep -f "qemu-system.*$XDG_RUNTIME_DIR" >/dev/null && break
        sleep 0.05
    done
    kill -INT $pid
    wait $pid
    rc=$?
    [ "$rc" -eq 130 ] || [ "$rc" -eq 0 ] || fail "exit $rc after SIGINT"
    expect_clean
}

test_mounts_ro_and_rw() {
    mkdir -p "$T/ro" "$T/rw"
    echo hello >"$T/ro/greeting"
    vb exec --mount "$T/ro:/data" --mount "$T/rw:/out:rw" -- sh -c '
        cat /data/greeting
        echo nope > /data/x 2>/dev/null && echo "ro write succeeded"
        echo written > /out/result
        mkdir -p /out/sub && echo deep > /out/sub/file
        stat -c %u /out/result'
    expect_rc 0
    expect_out $'hello\n1000'
    [ ! -e "$T/ro/x" ] || fail "write reached the ro mount"
    [ "$(cat "$T/rw/result")" = written ] || fail "rw write did not reach the host"
    [ "$(cat "$T/rw/sub/file")" = deep ] || fail "nested rw write missing"
    [ "$(stat -c %u "$T/rw/result")" -eq "$(id -u)" ] || fail "host owner is not the invoking user"
    expect_clean
}

test_help_on_every_verb() {
    for verb in exec image doctor version; do
        vb "$verb" --help
        expect_rc 0
        grep -q usage "$T/out" || fail "$verb --help prints no usage"
    done
    vb version
    expect_rc 0
    grep -q '^voidbox ' "$T/out" || fail "version: $out"
}

test_doctor_reports_backend_and_isolation() {
    vb doctor
    expect_rc 0
    grep -q 'qemu' "$T/out" || fail "no backend: $out"
    grep -qE 'isolation +(hardware|emulated)' "$T/out" || fail "no isolation level: $out"
    grep -q 'status: ready' "$T/out" || fail "$out"
}

test_console_never_mixed_into_stdout() {
    vb exec -- true
    expect_rc 0
    [ -z "$out" ] || fail "unexpected stdout: $out"
    [ -z "$err" ] || fail "unexpected stderr: $err"
}

# VB_ONLY=name runs one test
if [ -n "${VB_ONLY:-}" ]; then
    for f in $(declare -F | awk '{print $3}' | grep '^test_' | grep -v "^test_${VB_ONLY}\$"); do unset -f "$f"; done
fi
run_tests
