#!/usr/bin/env bash
# Snapshots of VMs with an image root (docs/snapshots.md, "Image roots and
# disks"): `snapshot create --image` and `--spec` with sandbox.image, a
# restore with the very same image (its files and the setup's writes),
# refused with another image, none, or a root disk changed since; warm by
# default for `exec --image` and image stages.  Images come from Debian's
# docker-registry on loopback (oci_lib.sh).  Real VMs (TCG here).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/oci_lib.sh"
. "$here/snap_lib.sh"
TEST_TIMEOUT=${OCI_TEST_TIMEOUT:-400}

# snapshots and images in the test's own store; the image test/bb:v1 ($IMG)
# pushed to a registry of the test's own
img_setup() {
    snap_setup
    export HOME=$T/home VOIDBOX_OCI_RETRY_MS=10
    unset DOCKER_CONFIG VOIDBOX_INSECURE_REGISTRIES
    mkdir -p "$HOME"
    registry_start
    oci_image_busybox test/bb v1
    IMG=$REG/test/bb:v1
    DISK=$XDG_CACHE_HOME/voidbox/oci/rootfs/${OCI_DIGEST#sha256:}.ext4
}

# create_img NAME SETUP...: a snapshot of a VM on $IMG; $id is its id
create_img() {
    local name=$1; shift
    vb snapshot create --image "$IMG" --name "$name" -- "$@"
    expect_rc 0
    id=$(tail -1 <<<"$out")
    [[ "$id" =~ ^[0-9a-f]{64}$ ]] || fail "create printed '$out', not an id"
    [ -f "$DISK" ] || fail "no root disk at $DISK"
}

test_image_snapshot_restores_image_and_setup() {
    img_setup
    # usage, and an image that cannot be had: nothing boots, nothing stored
    vb snapshot create --pull never -- true
    expect_rc 2
    expect_err_has "--pull needs --image"
    vb snapshot create --image "$REG/test/bb:nope" --pull never -- true
    expect_rc 125
    expect_err_has "not in the store"
    [ -z "$("$VB" snapshot list | tail -n +2)" ] || fail "something was stored: $("$VB" snapshot list)"
    create_img onbb sh -c 'echo from-setup > /etc/setup-mark'
    # the snapshot says which image it is of
    vb snapshot inspect onbb
    expect_rc 0
    python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["image"]["reference"])' \
        <"$T/out" >"$T/ref" || fail "inspect has no image: $out"
    [ "$(cat "$T/ref")" = "$IMG" ] || fail "inspect's image: $(cat "$T/ref")"
    # the image's files, the setup's write (in the overlay), the image's
    # defaults (WorkingDir /work), and a mount on one of the 3 devices left
    mkdir -p "$T/w"
    vb exec --image "$IMG" --snapshot onbb -v "$T/w:/w:rw" -- \
        sh -c 'cat /etc/zstd-layer /etc/setup-mark; pwd; echo $OCI_TEST; echo hi > /w/x'
    expect_rc 0
    expect_out "zstd
from-setup
/work
1"
    grep -q "^voidbox: boot: restored from ${id:0:12} in [0-9]* ms$" "$T/err" || fail "not restored: $err"
    [ "$(cat "$T/w/x" 2>/dev/null)" = hi ] || fail "the mount was not written"
    # the disk took a mount's device: 3 left
    vb exec --image "$IMG" --snapshot onbb -v "$T/w:/a" -v "$T/w:/b" -v "$T/w:/c" -v "$T/w:/d" -- true
    expect_rc 2
    expect_err_has "at most 3 mounts on a VM restored from a snapshot with an image root or disks"
    # a diff of it (its image is the base's), restored on the image
    vb snapshot create --from onbb --name onbb-diff -- sh -c 'echo two > /etc/two'
    expect_rc 0
    vb exec --image "$IMG" --snapshot onbb-diff -- cat /etc/setup-mark /etc/two /etc/zstd-layer
    expect_rc 0
    expect_out "from-setup
two
zstd"
    # no image: refused, naming the image
    vb exec --snapshot onbb -- true
    expect_rc 2
    expect_err_has "snapshot ${id:0:12} was taken on image $IMG: restore it with that image"
    # another image
    oci_image_docker test/other v1
    vb exec --image "$REG/test/other:v1" --snapshot onbb -- true
    expect_rc 2
    expect_err_has "snapshot ${id:0:12} was taken on image $IMG, not $REG/test/other:v1"
    # an image on a snapshot without one
    create plain true
    vb exec --image "$IMG" --snapshot plain -- true
    expect_rc 2
    expect_err_has "snapshot ${id:0:12} was taken without an image root, this VM has image $IMG"
    expect_clean
}

test_image_snapshot_refused_when_root_disk_changed() {
    img_setup
    create_img onbb true
    # the same file, written since (its ctime moved)
    touch "$DISK"
    vb exec --image "$IMG" --snapshot onbb -- true
    expect_rc 2
    expect_err_has "snapshot ${id:0:12} was taken on another root disk of image $IMG"
    # a new snapshot of it is fine; then the file replaced by a copy
    create_img again true
    cp "$DISK" "$DISK.new" && mv "$DISK.new" "$DISK"
    vb exec --image "$IMG" --snapshot again -- true
    expect_rc 2
    expect_err_has "taken on another root disk of image $IMG"
    expect_clean
}

test_image_warm_by_default() {
    img_setup
    # the first exec on the image boots cold and starts the maker
    [ "$(restored --image "$IMG")" = cold ] || fail "the first exec was not cold: $(cat "$T/werr")"
    wait_warm
    local warm
    warm=$("$VB" snapshot list | awk '/ warm-/ {print $1; exit}')
    "$VB" snapshot inspect "$warm" | grep -q "\"reference\": \"$IMG\"" ||
        fail "the warm snapshot is not of the image: $("$VB" snapshot inspect "$warm")"
    # the next one is restored from it, and sees the image
    [ "$(restored --image "$IMG" | cut -c1-12)" = "$warm" ] || fail "not restored: $(cat "$T/werr")"
    vb exec --image "$IMG" -- cat /etc/zstd-layer
    expect_rc 0
    expect_out "zstd"
    # shell --image too
    "$VB" shell --image "$IMG" -- sleep 3 </dev/null >/dev/null 2>"$T/serr" &
    local pid=$! snap
    snap=$(running_snapshot)
    wait "$pid" || fail "shell --image failed: $(cat "$T/serr")"
    [ "${snap:0:12}" = "$warm" ] || fail "shell --image was not restored: $snap"
    # --cold boots; a VM without the image is not restored from it
    [ "$(restored --cold --image "$IMG")" = cold ] || fail "--cold was restored"
    [ "$(restored)" = cold ] || fail "an exec without the image was restored"
    # ... and its maker makes the default VM's, a warm snapshot of its own
    local i lock=$XDG_CACHE_HOME/voidbox/snapshots/.warm.lock
    for i in $(seq 1 120); do
        [ "$("$VB" snapshot list | grep -c ' warm-')" = 2 ] && flock -n "$lock" true && break
        sleep 1
    done
    [ "$("$VB" snapshot list | grep -c ' warm-')" = 2 ] ||
        fail "no second warm snapshot: $("$VB" snapshot list)"
    sleep 0.5
    expect_clean
}

# booted: STAGE BOOT SNAPSHOT12 WARM per vm.booted event of the last run
booted() {
    "$VB" logs --last -o json | python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    if e["event"] == "vm.booted":
        print(e["stage"], e.get("boot", "?"), (e.get("snapshot") or "-")[:12],
              "warm" if e.get("warm") else "-")'
}

test_image_spec_snapshot_and_warm_stages() {
    img_setup
    oci_image_docker test/other v1
    # the VM of a spec's top-level sandbox, on its image
    cat >"$T/make.yaml" <<EOF
api_version: v1
kind: pipeline
name: make
sandbox: {image: "$IMG"}
pipeline:
  boxes:
    - name: a
      run: {program: "true"}
EOF
    vb snapshot create --spec "$T/make.yaml" --name spec-bb -- sh -c 'echo spec-setup > /etc/setup-mark'
    expect_rc 0
    id=$(tail -1 <<<"$out")
    # image + snapshot is a valid spec; a box on another image fails its
    # stage with the reason
    cat >"$T/p.yaml" <<EOF
api_version: v1
kind: pipeline
name: img
sandbox: {image: "$IMG", snapshot: spec-bb}
pipeline:
  boxes:
    - name: a
      run: {program: sh, args: ["-c", "cat /etc/setup-mark /etc/zstd-layer"]}
EOF
    vb validate "$T/p.yaml"
    expect_rc 0
    vb run "$T/p.yaml"
    expect_rc 0
    expect_out "spec-setup
zstd"
    grep -q "^a restored ${id:0:12} -" <<<"$(booted)" || fail "a: $(booted)"
    sed -i 's|    - name: a|    - name: b\n      sandbox: {image: "'"$REG"'/test/other:v1"}|' "$T/p.yaml"
    vb run "$T/p.yaml"
    [ "$rc" -ne 0 ] || fail "box b on another image ran: $(cat "$T/p.yaml")"
    expect_err_has "box 'b' failed: VM not restored: snapshot ${id:0:12} was taken on image $IMG, not $REG/test/other:v1"
    # warm stages: the first run cold (and the maker), the next restored
    cat >"$T/w.yaml" <<EOF
api_version: v1
kind: pipeline
name: warm
sandbox: {image: "$IMG"}
pipeline:
  boxes:
    - name: a
      run: {program: cat, args: [/etc/zstd-layer]}
EOF
    vb run "$T/w.yaml"
    expect_rc 0
    expect_out "zstd"
    grep -q "^a cold - -" <<<"$(booted)" || fail "the first run: $(booted)"
    wait_warm
    vb run "$T/w.yaml"
    expect_rc 0
    expect_out "zstd"
    grep -qE "^a restored [0-9a-f]{12} warm" <<<"$(booted)" || fail "not warm: $(booted)"
    vb run --cold "$T/w.yaml"
    expect_rc 0
    grep -q "^a cold - -" <<<"$(booted)" || fail "--cold: $(booted)"
    expect_clean
}

run_tests
