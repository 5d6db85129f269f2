# Snapshot test helpers (sourced after lib.sh) shared by test_snapshot.sh
# and test_snapshot_warm.sh.

# Each test gets a store of its own ($T/cache), and the real kernel and
# initramfs by path (what `voidbox image build` links), so snapshots of
# concurrent test runs never meet.
snap_setup() {
    local paths
    paths=$("$VB" image build 2>/dev/null) || fail "voidbox image build failed"
    VOIDBOX_KERNEL=$(sed -n 's/^kernel: *//p' <<<"$paths")
    VOIDBOX_INITRAMFS=$(sed -n 's/^initramfs: *//p' <<<"$paths")
    [ -f "$VOIDBOX_KERNEL" ] && [ -f "$VOIDBOX_INITRAMFS" ] || fail "no kernel/initramfs: $paths"
    export VOIDBOX_KERNEL VOIDBOX_INITRAMFS XDG_CACHE_HOME=$T/cache
    mkdir -p "$XDG_CACHE_HOME"
}

# create NAME [SETUP...]: a snapshot; $id is its id.
create() {
    local name=$1; shift
    vb snapshot create --name "$name" -- "$@"
    expect_rc 0
    id=$(tail -1 <<<"$out")
    [[ "$id" =~ ^[0-9a-f]{64}$ ]] || fail "create printed '$out', not an id"
}

# wait_warm: until the background maker is done (it holds the store's
# lock) and a warm snapshot is listed; then none of its QEMUs is left.
wait_warm() {
    local lock=$XDG_CACHE_HOME/voidbox/snapshots/.warm.lock i
    for i in $(seq 1 120); do
        if [ -e "$lock" ] && flock -n "$lock" true &&
            "$VB" snapshot list 2>/dev/null | grep -q ' warm-'; then
            break
        fi
        sleep 1
    done
    local store=$XDG_CACHE_HOME/voidbox/snapshots
    "$VB" snapshot list | grep -q ' warm-' ||
        fail "no warm snapshot made: $("$VB" snapshot list); the maker said: $(cat "$store"/.warm.log \
              "$store"/.warm-failed-* 2>&1 | head -c 2000)"
    ! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$store/.warm.log" 2>/dev/null ||
        fail "the maker's sanitizer report: $(head -c 3000 "$store/.warm.log")"
    sleep 0.5
    ! pgrep -f "qemu-system.*$XDG_CACHE_HOME" >/dev/null || fail "the warm maker's QEMU is left"
}

# restored ARGS...: run `voidbox exec ARGS -- sleep 3` and print what
# `voidbox ps -o json` says it was restored from ("cold" if nothing);
# the exec's stderr in $T/werr.
restored() {
    "$VB" exec "$@" -- sleep 3 >/dev/null 2>"$T/werr" </dev/null &
    local pid=$! snap
    snap=$(running_snapshot)
    wait "$pid" || fail "exec $* failed: $(cat "$T/werr")"
    echo "$snap"
}

# running_snapshot: wait (up to 10 s) for a VM of this test to be listed
# by `voidbox ps -o json`, and print what it was restored from ("cold" if
# nothing, "none" if no VM came).
running_snapshot() {
    local i snap=
    for i in $(seq 1 50); do
        snap=$("$VB" ps -o json 2>/dev/null | python3 -c '
import json, sys
for v in json.load(sys.stdin):
    if v.get("vm_id"):
        print(v.get("snapshot", "cold")); break' 2>/dev/null)
        [ -n "$snap" ] && break
        sleep 0.2
    done
    echo "${snap:-none}"
}
