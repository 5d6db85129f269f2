#!/usr/bin/env bash
# The guest's clock when the host is loaded (docs/architecture.md, "The
# guest's clock under TCG"): a VM whose vCPU thread is held off the CPU for
# a while, as a busy host does under TCG, keeps a fine-grained clock, and
# what depends on it keeps working (busybox nslookup matches its A and AAAA
# answers by a time-derived id).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

# stall_vm: stop and continue this test's QEMU a few times, like a host
# whose cores are busy with other work.
stall_vm() {
    local q
    q=$(pgrep -f "qemu-system.*$XDG_RUNTIME_DIR" | head -1)
    [ -n "$q" ] || fail "no QEMU to stall"
    for _ in 1 2 3 4 5 6 7 8; do
        kill -STOP "$q" 2>/dev/null || return 0
        sleep 0.4
        kill -CONT "$q" 2>/dev/null || return 0
        sleep 0.3
    done
}

test_refused_lookups_stay_fast_after_the_vm_stalled() {
    # the lookups are refused by policy: answered at once by VoidBox itself
    VOIDBOX_DNS_SERVER=127.0.0.1:9 "$VB" exec --network --allow-domain allowed.test -- sh -c '
        echo ready; sleep 8
        echo "clock $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
        for i in 1 2 3; do
            t=$(cut -d" " -f1 /proc/uptime); nslookup refused.test >/dev/null 2>&1
            echo "lookup ms=$(awk -v a="$t" -v b="$(cut -d" " -f1 /proc/uptime)" "BEGIN{printf \"%d\", (b-a)*1000}")"
        done' >"$T/out" 2>"$T/err" </dev/null &
    local vbp=$!
    for _ in $(seq 600); do
        grep -q '^ready' "$T/out" && break
        sleep 0.1
    done
    grep -q '^ready' "$T/out" || fail "the guest did not start: $(head -c 600 "$T/err")"
    stall_vm
    wait "$vbp"
    rc=$?
    out=$(cat "$T/out")
    check_sanitizers
    expect_rc 0
    # a jiffies clock ticks every few ms: two reads in a row return the same time
    grep -q '^clock ' <<<"$out" || fail "no clock source in: $out"
    grep -Eq '^clock (refined-)?jiffies' <<<"$out" && fail "the guest fell back to a jiffies clock: $out"
    [ "$(grep -c '^lookup ms=' <<<"$out")" -eq 3 ] || fail "lookups missing: $out"
    local ms
    for ms in $(sed -n 's/^lookup ms=//p' <<<"$out"); do
        [ "$ms" -lt 1000 ] || fail "a refused lookup took $ms ms (its answer was dropped): $out"
    done
    expect_clean
}

run_tests
