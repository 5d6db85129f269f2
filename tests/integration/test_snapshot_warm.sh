#!/usr/bin/env bash
# Snapshots with host directories (docs/snapshots.md, "Mounts"): a restored
# VM mounts `-v` directories on the 9p devices its snapshot has unmounted;
# parallel restores each see their own.  Real VMs under whatever
# accelerator voidbox picks (TCG here).
. "$(dirname "$0")/lib.sh"

# A store of its own per test ($T/cache) and the real kernel and initramfs
# by path, as in test_snapshot.sh.
snap_setup() {
    local paths
    paths=$("$VB" image build 2>/dev/null) || fail "voidbox image build failed"
    VOIDBOX_KERNEL=$(sed -n 's/^kernel: *//p' <<<"$paths")
    VOIDBOX_INITRAMFS=$(sed -n 's/^initramfs: *//p' <<<"$paths")
    [ -f "$VOIDBOX_KERNEL" ] && [ -f "$VOIDBOX_INITRAMFS" ] || fail "no kernel/initramfs: $paths"
    export VOIDBOX_KERNEL VOIDBOX_INITRAMFS XDG_CACHE_HOME=$T/cache
    mkdir -p "$XDG_CACHE_HOME"
}

create() {
    local name=$1; shift
    vb snapshot create --name "$name" -- "$@"
    expect_rc 0
    id=$(tail -1 <<<"$out")
    [[ "$id" =~ ^[0-9a-f]{64}$ ]] || fail "create printed '$out', not an id"
}

test_restore_with_mounts() {
    snap_setup
    create base true
    mkdir -p "$T/rw" "$T/ro"
    echo from-host > "$T/rw/in.txt"
    echo read-only > "$T/ro/r.txt"
    vb exec --snapshot base -v "$T/rw:/work:rw" -v "$T/ro:/data" -- \
        sh -c 'cat /work/in.txt /data/r.txt; echo from-guest > /work/out.txt;
               echo x > /data/no.txt 2>/dev/null && echo wrote-ro; echo done'
    expect_rc 0
    expect_out "from-host
read-only
done"
    grep -q "^voidbox: boot: restored from ${id:0:12} in [0-9]* ms$" "$T/err" ||
        fail "not restored: $err"
    [ "$(cat "$T/rw/out.txt" 2>/dev/null)" = from-guest ] || fail "the guest's write is not on the host"
    [ ! -e "$T/ro/no.txt" ] || fail "a read-only mount was written"
    # file operations reach the mounts too (they are roots of the agent)
    vb exec --snapshot base -v "$T/rw:/work:rw" -w /work -- sh -c 'pwd; ls'
    expect_rc 0
    expect_out "/work
in.txt
out.txt"
    # more mounts than the snapshot has devices
    vb exec --snapshot base -v "$T/rw:/a" -v "$T/rw:/b" -v "$T/rw:/c" -v "$T/rw:/d" -v "$T/rw:/e" -- true
    expect_rc 2
    expect_err_has "at most 4 mounts on a VM restored from a snapshot"
    # a bad guest path is the agent's refusal, and nothing runs
    vb exec --snapshot base -v "$T/rw:/proc/1/x:rw" -- echo ran
    [ "$rc" -ne 0 ] || fail "a mount on /proc/1/x was accepted: $out"
    [ -z "$out" ] || fail "the command ran: $out"
    expect_clean
}

test_parallel_restores_own_mounts() {
    snap_setup
    create base true
    mkdir -p "$T/a" "$T/b"
    echo A > "$T/a/who"; echo B > "$T/b/who"
    local i
    for i in a b; do
        "$VB" exec --snapshot base -v "$T/$i:/w:rw" -- \
            sh -c 'cat /w/who; touch /w/seen-$(cat /w/who); ls /w | tr "\n" " "' \
            >"$T/out.$i" 2>"$T/err.$i" </dev/null &
    done
    wait
    [ "$(head -1 "$T/out.a")" = A ] || fail "restore a: $(cat "$T/out.a" "$T/err.a")"
    [ "$(head -1 "$T/out.b")" = B ] || fail "restore b: $(cat "$T/out.b" "$T/err.b")"
    [ "$(ls "$T/a" | tr '\n' ' ')" = "seen-A who " ] || fail "a holds: $(ls "$T/a")"
    [ "$(ls "$T/b" | tr '\n' ' ')" = "seen-B who " ] || fail "b holds: $(ls "$T/b")"
    grep -q "restored from" "$T/err.a" && grep -q "restored from" "$T/err.b" ||
        fail "not both restored: $(cat "$T/err.a" "$T/err.b")"
    expect_clean
}

run_tests
