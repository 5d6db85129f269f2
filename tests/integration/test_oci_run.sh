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

test_exec_image_owners_and_users() {
    oci_env; registry_start
    oci_image_busybox test/bb v1
    # the image's User is 0: root by default; -u sandbox is uid 1000
    on_image -- sh -c 'id -u; stat -c "%u %a" /etc/owned-by-root; echo x >>/etc/owned-by-root && echo wrote'
    expect_rc 0
    expect_out "0
0 644
wrote"
    on_image -u sandbox -- sh -c 'id -u; echo x >>/etc/owned-by-root || echo refused'
    expect_rc 0
    expect_out "1000
refused"
    on_image -u 1000:1000 -- id -u
    expect_rc 0
    expect_out "1000"
}

test_exec_image_env_workdir() {
    oci_env; registry_start
    oci_image_busybox test/bb v1
    on_image -- sh -c 'echo $OCI_TEST; pwd; echo $PATH'
    expect_rc 0
    expect_out "1
/work
/usr/local/bin:/usr/bin:/bin"
    # the command line's wins over the image's
    on_image -e OCI_TEST=2 -w /tmp -- sh -c 'echo $OCI_TEST; pwd'
    expect_rc 0
    expect_out "2
/tmp"
}

test_exec_image_writes_do_not_persist() {
    oci_env; registry_start
    oci_image_busybox test/bb v1
    on_image -- sh -c 'echo new >/new-file && echo gone >/data/keep.txt && rm /bin/true && cat /new-file /data/keep.txt'
    expect_rc 0
    expect_out "new
gone"
    on_image -- sh -c 'ls /new-file 2>/dev/null; cat /data/keep.txt; ls /bin/true'
    expect_rc 0
    expect_out "keep
/bin/true"
}

test_exec_image_cached_offline() {
    oci_env; registry_start
    oci_image_busybox test/bb v1
    vb pull -q "$REG/test/bb:v1"
    expect_rc 0
    registry_stop
    # no registry: the store's copy, for the default policy and for never
    on_image -- cat /etc/zstd-layer
    expect_rc 0
    expect_out "zstd"
    expect_err_has "building the root disk"
    on_image --pull never -- cat /etc/zstd-layer
    expect_rc 0
    expect_out "zstd"
    grep -q "building the root disk" "$T/err" && fail "the root disk was built again"
    # always asks the registry, which is gone
    on_image --pull always -- true
    expect_rc 125
    expect_err_has "$REG/test/bb:v1"
    expect_err_has "http://$REG/v2/"
}

test_exec_image_missing() {
    oci_env; registry_start
    vb exec --image "$REG/test/nope:v9" -- true
    expect_rc 125
    expect_err_has "$REG/test/nope:v9"
    expect_err_has "http://$REG/v2/test/nope/manifests/v9"
    expect_err_has "404"
    vb exec --image "$REG/test/nope:v9" --pull never -- true
    expect_rc 125
    expect_err_has "$REG/test/nope:v9 is not in the store"
    vb exec --image 'Bad/Ref:x' -- true
    expect_rc 2
    expect_err_has "--image"
    vb exec --pull never -- true
    expect_rc 2
    expect_err_has "--pull needs --image"
    vb exec -u nobody -- true
    expect_rc 2
}

test_exec_image_entrypoint_cmd() {
    oci_env; registry_start
    oci_image_busybox test/bb v1
    # Cmd is ["/bin/sh"]: stdin is its script
    printf 'echo from-cmd; pwd\n' | "$VB" exec --timeout 120 --image "$REG/test/bb:v1" >"$T/out" 2>"$T/err"
    rc=$?; out=$(cat "$T/out")
    expect_rc 0
    expect_out "from-cmd
/work"
}

run_tests
