#!/usr/bin/env bash
# The accelerator choice: KVM is proven before it is trusted.  A stand-in
# QEMU (standin-qemu.sh) plays a host whose /dev/kvm opens but cannot run the
# guest; VOIDBOX_KVM_DEVICE=/dev/null stands for a /dev/kvm that opens, so
# these tests mean the same on hosts with and without KVM.  The last test
# uses the real QEMU and this host's real /dev/kvm, and says which case ran.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

export STANDIN="$here/standin-qemu.sh"
export REAL_KERNEL="${XDG_CACHE_HOME:-$HOME/.cache}/voidbox/kernel-current/bzImage"

# A private cache (so the verdict is this test's alone), the built kernel,
# the stand-in QEMU in MODE, a KVM device that opens.
standin() {
    export XDG_CACHE_HOME="$T/cache" VOIDBOX_KERNEL="$REAL_KERNEL" \
        VOIDBOX_QEMU="$STANDIN" STANDIN_MODE=$1 STANDIN_LOG="$T/qemu.log" \
        VOIDBOX_KVM_DEVICE=/dev/null
    unset VOIDBOX_ACCEL
    : >"$T/qemu.log"
}
kvm_starts() { grep -c '^kvm$' "$T/qemu.log"; }
verdict() { cat "$T"/cache/voidbox/accel/*.json 2>/dev/null; }

test_auto_falls_back_when_qemu_aborts_under_kvm() {
    standin abort
    local t0=$SECONDS
    vb exec -- echo hello
    expect_rc 0
    expect_out hello
    expect_err_has "KVM cannot run the guest on this host"
    expect_err_has "failed to set MSR 0x10a to 0x69"
    expect_err_has "--accel"
    [ "$(grep -c 'KVM cannot run' "$T/err")" -eq 1 ] || fail "said more than once: $err"
    [ "$(kvm_starts)" -eq 1 ] || fail "expected one KVM probe, got $(kvm_starts)"
    grep -q '^tcg$' "$T/qemu.log" || fail "the VM did not run under TCG"
    verdict | jq -e '.accel == "tcg" and (.reason | test("MSR"))' >/dev/null ||
        fail "verdict not cached: $(verdict)"
    log=$(verdict | jq -r .log)
    grep -q "kvm_buf_set_msrs" "$log" || fail "probe log $log lacks QEMU's stderr"
    [ $((SECONDS - t0)) -lt 30 ] || fail "took $((SECONDS - t0)) s"

    # the next VM pays nothing and says nothing
    vb exec -- true
    expect_rc 0
    [ -z "$err" ] || fail "second run printed: $err"
    [ "$(kvm_starts)" -eq 1 ] || fail "probed again"

    # doctor reports the cached verdict; ready, since TCG boots
    vb doctor
    expect_rc 0
    grep -E '^  accelerator +tcg' <<<"$out" | grep -q "failed to set MSR" ||
        fail "doctor: $out"
    grep -q '^status: ready' <<<"$out" || fail "doctor: $out"

    # insisting on KVM against that verdict fails at once, naming cause and fix
    t0=$SECONDS
    vb exec --accel kvm -- true
    expect_rc 125
    expect_err_has "KVM was asked for, but it cannot run the guest on this host"
    expect_err_has "failed to set MSR"
    expect_err_has "--accel tcg"
    [ "$(wc -l <"$T/err")" -eq 1 ] || fail "expected one line: $err"
    [ "$(kvm_starts)" -eq 1 ] || fail "--accel kvm started QEMU"
    expect_clean
}

test_auto_cuts_a_silent_kvm_off() {
    standin hang
    local t0=$SECONDS
    vb exec -- echo hello
    expect_rc 0
    expect_out hello
    expect_err_has "printed nothing within 3 s under KVM"
    ms=$(verdict | jq -r .probe_ms)
    [ "$ms" -ge 2900 ] && [ "$ms" -lt 6000 ] || fail "the probe took $ms ms"
    [ $((SECONDS - t0)) -lt 40 ] || fail "took $((SECONDS - t0)) s"
    pgrep -f "^sleep 600" >/dev/null && fail "the hanging VMM was left running"
    expect_clean
}

test_concurrent_first_boots_probe_once() {
    standin abort
    for i in 1 2 3; do
        "$VB" exec -- echo "vm$i" >"$T/out$i" 2>"$T/err$i" &
    done
    wait
    for i in 1 2 3; do
        [ "$(cat "$T/out$i")" = "vm$i" ] || fail "VM $i: $(cat "$T/err$i")"
    done
    [ "$(kvm_starts)" -eq 1 ] || fail "$(kvm_starts) probes for 3 concurrent VMs"
    [ "$(cat "$T"/err? | grep -c 'KVM cannot run')" -eq 1 ] || fail "notice count: $(cat "$T"/err?)"
}

test_explicit_kvm_that_cannot_work_is_125() {
    standin abort
    vb exec --accel kvm -- true
    expect_rc 125
    expect_err_has "failed to set MSR 0x10a to 0x69"
    expect_err_has "--accel tcg"
    [ "$(wc -l <"$T/err")" -eq 1 ] || fail "expected one line: $err"
    log=$(grep -o 'console log: [^)]*' "$T/err" | cut -d' ' -f3)
    grep -q "kvm_buf_set_msrs" "$log" || fail "the console log $log lacks QEMU's stderr"
    [ -z "$(verdict)" ] || fail "explicit kvm probed"
    # VOIDBOX_ACCEL means the same; a hanging KVM ends with the boot timeout
    standin hang
    VOIDBOX_ACCEL=kvm VOIDBOX_BOOT_TIMEOUT_MS=3000 vb exec -- true
    expect_rc 125
    expect_err_has "--accel tcg"
    # no /dev/kvm at all
    VOIDBOX_KVM_DEVICE=/nonexistent/kvm vb exec --accel kvm -- true
    expect_rc 125
    expect_err_has "no /nonexistent/kvm on this host"
    expect_err_has "--accel tcg"
    expect_clean
}

test_tcg_never_probes() {
    standin abort
    vb exec --accel tcg -- true
    expect_rc 0
    VOIDBOX_ACCEL=tcg vb exec -- true
    expect_rc 0
    VOIDBOX_ACCEL=TCG vb doctor
    expect_rc 0
    grep -qE '^  accelerator +tcg \(asked for by VOIDBOX_ACCEL\)' <<<"$out" || fail "doctor: $out"
    [ "$(kvm_starts)" -eq 0 ] || fail "KVM was tried"
    [ -z "$(verdict)" ] || fail "a verdict was written"
    vb exec --accel fast -- true
    expect_rc 2
    expect_err_has "--accel: expected auto, kvm or tcg"
    VOIDBOX_ACCEL=fast vb exec -- true
    expect_rc 2
    expect_err_has "VOIDBOX_ACCEL=fast"
}

test_run_records_the_choice_and_honours_accel() {
    standin abort
    cat >"$T/p.yaml" <<'YAML'
api_version: v1
kind: pipeline
name: accel
sandbox: {backend: kvm}
pipeline:
  boxes:
    - {name: one, run: {program: echo, args: ['{"ok": 1}']}}
YAML
    # the spec insists on kvm: that fails, with the fix named
    vb run "$T/p.yaml"
    expect_rc 125
    expect_err_has "--accel tcg"
    # --accel auto over the spec: falls back, says so once, records why
    vb run --accel auto "$T/p.yaml"
    expect_rc 0
    expect_err_has "KVM cannot run the guest on this host"
    ev=$(grep -l '"vm.booted"' "$T"/state/voidbox/runs/*/events.jsonl)
    [ -n "$ev" ] || fail "no run record"
    id=$(jq -r 'select(.event == "run.started") | .run_id' "$ev")
    vb logs "$id" --json
    jq -se 'map(select(.event == "vm.booted")) | length == 1 and
            (.[0] | .accel == "tcg" and (.accel_reason | test("MSR")))' \
        <<<"$out" >/dev/null || fail "vm.booted lacks the reason: $out"
    # VOIDBOX_ACCEL=tcg over the spec's kvm
    VOIDBOX_ACCEL=tcg vb run "$T/p.yaml"
    expect_rc 0
    [ "$(kvm_starts)" -eq 2 ] || fail "KVM starts: $(kvm_starts) (expected the spec's try and one probe)"
}

test_doctor_writes_nothing() {
    standin abort
    unset VOIDBOX_KERNEL
    mkdir -p "$T/cache/voidbox"
    ln -s "$(dirname "$(readlink -f "$REAL_KERNEL")")" "$T/cache/voidbox/kernel-current"
    before=$(find "$T/cache" "$T/state" | sort)
    vb doctor -o json
    expect_rc 0
    jq -e '.status == "ready" and .accel == "tcg" and (.accel_reason | test("MSR"))' <<<"$out" \
        >/dev/null || fail "doctor: $out"
    [ "$(kvm_starts)" -eq 1 ] || fail "doctor did not probe"
    after=$(find "$T/cache" "$T/state" | sort)
    [ "$before" = "$after" ] || fail "doctor wrote: $(diff <(echo "$before") <(echo "$after"))"
    vb doctor --bogus
    expect_rc 2
    expect_err_has "doctor: unknown option '--bogus'"
}

test_this_host_as_it_is() {
    # No stand-in, no variables: what a user gets here.  An independent
    # check says whether KVM can boot the guest; voidbox must agree.
    unset VOIDBOX_QEMU VOIDBOX_KVM_DEVICE VOIDBOX_ACCEL
    export XDG_CACHE_HOME="$T/cache" VOIDBOX_KERNEL="$REAL_KERNEL"
    local works=no
    if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
        "$VB" exec --accel tcg -- true >/dev/null 2>&1 || fail "no VM under TCG"
        initrd=$(ls "$T"/cache/voidbox/initramfs-*.cpio)
        timeout 20 qemu-system-x86_64 -M microvm,acpi=off -accel kvm -cpu host -nodefaults \
            -no-user-config -no-reboot -display none -m 256 -kernel "$REAL_KERNEL" \
            -initrd "$initrd" -append "console=ttyS0 panic=-1 reboot=t acpi=off" \
            -serial "file:$T/kvm-console.log" </dev/null >/dev/null 2>&1
        grep -q voidbox-agent "$T/kvm-console.log" 2>/dev/null && works=yes
    fi
    vb exec -- cat /proc/cpuinfo
    expect_rc 0
    vb doctor -o json
    accel=$(jq -r .accel <<<"$out")
    if [ "$works" = yes ]; then
        echo "# accel case: KVM boots the guest here; voidbox chose $accel"
        [ "$accel" = kvm ] || fail "KVM works here, but auto chose $accel: $out"
        jq -e '.isolation == "hardware"' <<<"$out" >/dev/null || fail "$out"
    elif [ -e /dev/kvm ]; then
        echo "# accel case: /dev/kvm is here but cannot boot the guest; voidbox chose $accel"
        [ "$accel" = tcg ] || fail "auto chose $accel"
        jq -e '.accel_reason | length > 0' <<<"$out" >/dev/null || fail "no reason: $out"
    else
        echo "# accel case: no /dev/kvm; voidbox chose $accel"
        [ "$accel" = tcg ] || fail "auto chose $accel"
        jq -e '.accel_reason | test("no /dev/kvm")' <<<"$out" >/dev/null || fail "$out"
    fi
}

run_tests
