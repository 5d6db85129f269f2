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
