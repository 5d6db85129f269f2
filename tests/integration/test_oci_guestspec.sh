#!/usr/bin/env bash
# sandbox.guest_image in a spec (docs/oci.md "Guest images from a spec"): a
# guest-image artifact built here from VoidBox's own cached kernel and a
# busybox initramfs with a marker file, pushed to Debian's docker-registry
# on loopback (oci_lib.sh), pulled by `voidbox run`, prepared once per
# manifest under <oci>/guest/<hex>/ and booted; rmi removes it.  Real VMs
# (TCG here).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/oci_lib.sh"
TEST_TIMEOUT=${OCI_TEST_TIMEOUT:-400}

spec() { cat >"$T/$1.yaml"; }

# A private OCI store; the guest kernel and initramfs still come from the
# user's cache (everything of it but oci/ linked in).
oci_env() {
    REAL_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/voidbox
    local e
    export XDG_CACHE_HOME=$T/cache
    mkdir -p "$T/cache/voidbox"
    for e in "$REAL_CACHE"/*; do
        [ "${e##*/}" = oci ] || ln -s "$e" "$T/cache/voidbox/${e##*/}"
    done
    STORE=$T/cache/voidbox/oci
}

# oci_guest_image REPO TAG [FILES...]: a FROM-scratch image whose one layer
# holds FILES of $T/img (default: vmlinuz rootfs.cpio.gz): the cached
# kernel and an initramfs with busybox, /etc/guest-image-marker and an
# /init that powers the VM off (so a boot that ran it instead of VoidBox's
# agent fails).  Sets OCI_DIGEST.
oci_guest_image() {
    local repo=$1 tag=$2 r=$T/img/root k
    shift 2
    k=${VOIDBOX_KERNEL:-$REAL_CACHE/kernel-current/bzImage}
    [ -r "$k" ] || fail "no cached guest kernel at $k (run \`voidbox image build\`)"
    mkdir -p "$r/bin" "$r/etc"
    cp /bin/busybox "$r/bin/busybox"
    ln -sf busybox "$r/bin/cat"
    echo "from the guest image" >"$r/etc/guest-image-marker"
    printf '#!/bin/busybox sh\n/bin/busybox poweroff -f\n' >"$r/init"
    chmod 755 "$r/init"
    (cd "$r" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$T/img/rootfs.cpio.gz"
    cp "$k" "$T/img/vmlinuz"
    tar -C "$T/img" -czf "$T/img/layer.tgz" "${@:-vmlinuz}" $([ $# -gt 0 ] || echo rootfs.cpio.gz)
    oci_config "$T/img/config.json" amd64
    oci_push_blob "$repo" "$T/img/config.json"
    oci_push_blob "$repo" "$T/img/layer.tgz"
    oci_manifest "$T/img/manifest.json" "$MT_OCI_MANIFEST" "$MT_OCI_CONFIG" "$T/img/config.json" \
        "$MT_OCI_GZIP:$T/img/layer.tgz"
    oci_push_manifest "$repo" "$tag" "$T/img/manifest.json" "$MT_OCI_MANIFEST"
    OCI_DIGEST=sha256:$(oci_sha "$T/img/manifest.json")
}

test_guest_image_from_the_registry_boots_a_run_stage() {
    oci_env; registry_start
    oci_guest_image test/guest v1
    spec g <<EOF
api_version: v1
kind: pipeline
name: gi
sandbox: {memory_mb: 256, guest_image: "$REG/test/guest:v1"}
pipeline:
  boxes:
    - {name: g, run: {program: sh, args: ["-c", "cat /etc/guest-image-marker; cat /proc/1/comm"]}}
EOF
    vb run "$T/g.yaml"
    expect_rc 0
    expect_out $'from the guest image\ninit'
    local dir=$STORE/guest/${OCI_DIGEST#sha256:}
    [ -f "$dir/vmlinuz" ] && [ -f "$dir/initramfs" ] || fail "no prepared guest image in $dir: $(ls -A "$STORE/guest" 2>&1)"
    # prepared once: a second run takes the store's copy, without the registry
    registry_stop
    vb run "$T/g.yaml"
    expect_rc 0
    expect_out $'from the guest image\ninit'
    # rmi removes the prepared kernel and initramfs with the image
    vb rmi "$REG/test/guest:v1"
    expect_rc 0
    [ ! -e "$dir" ] || fail "rmi left $dir"
    expect_clean
}

test_guest_image_without_a_kernel_fails_before_booting() {
    oci_env; registry_start
    oci_guest_image test/nokernel v1 rootfs.cpio.gz
    spec g <<EOF
api_version: v1
kind: pipeline
name: gi
sandbox: {memory_mb: 256, guest_image: "$REG/test/nokernel:v1"}
pipeline:
  boxes:
    - {name: g, run: {program: "true"}}
EOF
    # an image that cannot boot this VM cannot be had: 125, as docker run
    vb run "$T/g.yaml"
    expect_rc 125
    expect_err_has "box 'g': sandbox.guest_image $REG/test/nokernel:v1: the guest image has no kernel"
    grep -q "stage.started" "$(find "$T/state" -name events.jsonl | head -1)" 2>/dev/null &&
        fail "a stage started"
    # an unknown guest image is named with the registry's answer
    sed -i "s|test/nokernel:v1|test/nothing:v1|" "$T/g.yaml"
    vb run "$T/g.yaml"
    expect_rc 125
    expect_err_has "box 'g': sandbox.guest_image: $REG/test/nothing:v1"
    expect_err_has "http://$REG/v2/test/nothing/manifests/v1"
    expect_err_has "HTTP 404"
    # a spec's own kernel and a guest image are one too many
    sed -i "s|guest_image: |kernel: /nonexistent, guest_image: |" "$T/g.yaml"
    vb run "$T/g.yaml"
    expect_rc 2
    expect_err_has "sandbox.guest_image brings its own kernel and initramfs"
    expect_clean
}

# An image skill on a guest image: its kernel is checked for the disk
# drivers (VoidBox's own kernel has them) and the disk is mounted.
test_guest_image_with_an_image_skill() {
    oci_env; registry_start
    oci_guest_image test/guest v1
    local d=$T/tool
    mkdir -p "$d/root/bin"
    printf '#!/bin/sh\necho tool on the guest image\n' >"$d/root/bin/gi-tool"
    chmod 755 "$d/root/bin/gi-tool"
    oci_tar "$d/root" "$d/l.tar" && gzip -n -1 -c "$d/l.tar" >"$d/l.tar.gz"
    oci_config "$d/config.json" amd64
    oci_push_blob test/tool "$d/config.json"
    oci_push_blob test/tool "$d/l.tar.gz"
    oci_manifest "$d/manifest.json" "$MT_OCI_MANIFEST" "$MT_OCI_CONFIG" "$d/config.json" \
        "$MT_OCI_GZIP:$d/l.tar.gz"
    oci_push_manifest test/tool v1 "$d/manifest.json" "$MT_OCI_MANIFEST"
    spec g <<EOF
api_version: v1
kind: pipeline
name: gi
sandbox: {memory_mb: 256, guest_image: "$REG/test/guest:v1"}
pipeline:
  boxes:
    - name: g
      skills: [{image: "$REG/test/tool:v1", mount: /opt/tool}]
      run: {program: sh, args: ["-c", "cat /etc/guest-image-marker; gi-tool"]}
EOF
    vb run "$T/g.yaml"
    expect_rc 0
    expect_out $'from the guest image\ntool on the guest image'
    expect_clean
}

run_tests
