#!/usr/bin/env bash
# Stages and execs on OCI images (docs/oci.md, "Running on an image"):
# `voidbox exec --image`, `sandbox.image` in run specs, `validate` of a
# reference, against Debian's docker-registry on loopback with images the
# test builds itself (oci_lib.sh).  Boots VMs (TCG here): every test has a
# time limit.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/oci_lib.sh"
TEST_TIMEOUT=${OCI_TEST_TIMEOUT:-300}
# the guest kernel stays where `voidbox image build` put it; the store is
# the test's own
export REAL_KERNEL="${VOIDBOX_KERNEL:-${XDG_CACHE_HOME:-$HOME/.cache}/voidbox/kernel-current/bzImage}"

oci_env() {
    export XDG_CACHE_HOME=$T/cache HOME=$T/home VOIDBOX_KERNEL=$REAL_KERNEL VOIDBOX_OCI_RETRY_MS=10
    unset DOCKER_CONFIG VOIDBOX_INSECURE_REGISTRIES
    mkdir -p "$HOME"
    STORE=$T/cache/voidbox/oci
}

# one exec on the image; $out is its stdout
on_image() { vb exec --timeout 120 --image "$REG/test/bb:v1" "$@"; }

test_exec_image_layers() {
    oci_env; registry_start
    oci_image_busybox test/bb v1
    on_image -- sh -c 'cat /etc/zstd-layer /data/keep.txt; ls /data; ls /opq; cat /opq/c'
    expect_rc 0
    expect_out "zstd
keep
keep.txt
c
c"
    expect_err_has "building the root disk of $REG/test/bb:v1"
    [ -f "$STORE/rootfs/${OCI_DIGEST#sha256:}.ext4" ] || fail "no cached root disk"
}

run_tests
