#!/usr/bin/env bash
# voidbox pull / images / rmi against Debian's docker-registry on loopback
# (docs/oci.md, "Pulling" and "The store"), with images the test builds
# itself (oci_lib.sh) and a misbehaving stand-in in front of the registry
# for the bearer flow, corrupt and overlong blobs and an interrupted pull.
# No VM is booted.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/oci_lib.sh"
TEST_TIMEOUT=${OCI_TEST_TIMEOUT:-120}

# a private cache and home (no docker config of the user's)
oci_env() {
    export XDG_CACHE_HOME=$T/cache HOME=$T/home VOIDBOX_OCI_RETRY_MS=10
    unset DOCKER_CONFIG VOIDBOX_INSECURE_REGISTRIES
    mkdir -p "$HOME"
    STORE=$T/cache/voidbox/oci
}

expect_blob() {
    local f=$STORE/blobs/sha256/${1#sha256:}
    [ -f "$f" ] || fail "blob $1 not in the store"
    [ "sha256:$(oci_sha "$f")" = "$1" ] || fail "blob $1 in the store has other content"
}
expect_no_blob() { [ ! -e "$STORE/blobs/sha256/${1#sha256:}" ] || fail "blob $1 is in the store"; }
expect_no_partial() {
    local left
    left=$(find "$STORE/blobs" -name '*.partial' 2>/dev/null)
    [ -z "$left" ] || fail "partial downloads left: $left"
}

test_pull_by_tag_and_digest() {
    oci_env; registry_start
    oci_image_busybox test/bb v1
    vb pull "$REG/test/bb:v1"
    expect_rc 0
    expect_out "$REG/test/bb:v1 $OCI_DIGEST"
    local l
    for l in $OCI_LAYERS; do expect_blob "$l"; done
    expect_blob "$OCI_DIGEST"
    expect_err_has "fetched"
    [ "$(stat -c %a "$STORE/blobs/sha256/${OCI_DIGEST#sha256:}")" = 444 ] || fail "blobs are not read-only"
    vb pull "$REG/test/bb@$OCI_DIGEST"
    expect_rc 0
    expect_out "$REG/test/bb@$OCI_DIGEST $OCI_DIGEST"
    expect_err_has "already in the store"
    # a digest that is not the tag's content: refused by the registry
    vb pull "$REG/test/bb@sha256:$(printf 0%.0s $(seq 64))"
    expect_rc 1
    expect_err_has "HTTP 404"
}

test_index_picks_linux_amd64() {
    oci_env; registry_start
    oci_image_index test/multi v2
    vb pull -q "$REG/test/multi:v2"
    expect_rc 0
    expect_out "$REG/test/multi:v2 $OCI_AMD64"
    [ -z "$err" ] || fail "-q printed: $err"
    expect_blob "$OCI_DIGEST"     # the index itself
    expect_no_blob "$OCI_ARM64"   # the other platform is not fetched
    vb images -o json
    [ "$(jq -r '.[0].digest' <<<"$out")" = "$OCI_DIGEST" ] || fail "images: $out"
    [ "$(jq -r '.[0].manifest' <<<"$out")" = "$OCI_AMD64" ] || fail "images: $out"
}

test_docker_v2_manifest() {
    oci_env; registry_start
    oci_image_docker test/dock latest
    vb pull "$REG/test/dock"
    expect_rc 0
    expect_out "$REG/test/dock:latest $OCI_DIGEST"
    expect_blob "$OCI_LAYERS"
}

test_basic_auth_from_docker_config() {
    oci_env; registry_start alice:s3cret
    oci_image_busybox private/img v1
    vb pull "$REG/private/img:v1"
    expect_rc 125
    expect_err_has "$REG/private/img:v1: GET $REG_URL/v2/"
    expect_err_has "HTTP 401"
    expect_err_has "no credentials for this registry"
    mkdir -p "$T/dockercfg"
    printf '{"auths":{"%s":{"auth":"%s"}}}' "$REG" "$(printf alice:s3cret | base64)" >"$T/dockercfg/config.json"
    DOCKER_CONFIG=$T/dockercfg vb pull "$REG/private/img:v1"
    expect_rc 0
    expect_out "$REG/private/img:v1 $OCI_DIGEST"
    # podman's and skopeo's auth file
    vb rmi "$REG/private/img:v1"
    mkdir -p "$XDG_RUNTIME_DIR/containers"
    cp "$T/dockercfg/config.json" "$XDG_RUNTIME_DIR/containers/auth.json"
    vb pull -q "$REG/private/img:v1"
    expect_rc 0
    rm "$XDG_RUNTIME_DIR/containers/auth.json"
    # ~/.docker/config.json, username/password form, wrong password
    mkdir -p "$HOME/.docker"
    printf '{"auths":{"http://%s/v2/":{"username":"alice","password":"wrong"}}}' "$REG" >"$HOME/.docker/config.json"
    vb pull "$REG/private/img:v1"
    expect_rc 125
    expect_err_has "HTTP 401"
    expect_err_has "credentials in the docker config were refused"
}

test_bearer_token_flow() {
    oci_env; registry_start
    oci_image_busybox team/tool v3
    proxy_start --bearer
    vb pull "$PROXY/team/tool:v3"
    expect_rc 0
    expect_out "$PROXY/team/tool:v3 $OCI_DIGEST"
    grep -q '^GET /token?scope=repository%3Ateam%2Ftool%3Apull&service=fake-registry ' "$T/proxy.log" ||
        fail "no token request with scope and service: $(cat "$T/proxy.log")"
    grep -q "^GET /v2/team/tool/blobs/.* auth=Bearer" "$T/proxy.log" || fail "blobs fetched without the token"
    # a blob redirected to another host (object storage) gets no token
    vb rmi "$PROXY/team/tool:v3"; expect_rc 0
    echo redirect >"$T/proxy.mode"
    : >"$T/proxy.log"
    vb pull -q "$PROXY/team/tool:v3"
    expect_rc 0
    grep -q "^GET /redirected/v2/team/tool/blobs/.* auth=-$" "$T/proxy.log" || fail "no redirected blob: $(cat "$T/proxy.log")"
    ! grep -q "^GET /redirected/.* auth=Bearer" "$T/proxy.log" || fail "the token followed a redirect to another host"
    ! grep "^GET /v2/team/tool/manifests/v3 .*auth=-" "$T/proxy.log" | grep -q . ||
        fail "a manifest request without the token was answered"
}

test_corrupt_blob_refused() {
    oci_env; registry_start
    oci_image_busybox test/bad v1
    proxy_start
    echo corrupt >"$T/proxy.mode"
    vb pull "$PROXY/test/bad:v1"
    expect_rc 125
    local big=${OCI_LAYERS%% *}
    expect_err_has "$PROXY/test/bad:v1: GET http://$PROXY/v2/test/bad/blobs/$big: the blob's content does not match its digest $big (it is sha256:"
    expect_no_blob "$big"
    expect_no_partial
    vb images -o json
    [ "$(jq length <<<"$out")" = 0 ] || fail "a refused image is listed: $out"
    # more bytes than the descriptor declares: refused as they arrive
    echo toolong >"$T/proxy.mode"
    vb pull "$PROXY/test/bad:v1"
    expect_rc 125
    expect_err_has "GET http://$PROXY/v2/test/bad/blobs/$big: more bytes than the"
    expect_no_blob "$big"
    expect_no_partial
    echo normal >"$T/proxy.mode"
    vb pull "$PROXY/test/bad:v1"
    expect_rc 0
}

test_429_and_5xx_retried() {
    oci_env; registry_start
    oci_image_busybox test/flaky v1
    proxy_start
    echo flaky >"$T/proxy.mode"
    vb pull -q "$PROXY/test/flaky:v1"
    expect_rc 0
    expect_out "$PROXY/test/flaky:v1 $OCI_DIGEST"
    [ "$(grep -c "^GET /v2/test/flaky/manifests/v1 " "$T/proxy.log")" = 3 ] ||
        fail "manifest not asked 3 times: $(cat "$T/proxy.log")"
    # a registry that stays down: a bounded number of tries, then its status
    echo down >"$T/proxy.mode"
    vb pull -q "$PROXY/test/flaky:v2"
    expect_rc 125
    expect_err_has "$PROXY/test/flaky:v2: GET http://$PROXY/v2/test/flaky/manifests/v2: HTTP 503 Service Unavailable (UNAVAILABLE: try later)"
    [ "$(grep -c "^GET /v2/test/flaky/manifests/v2 " "$T/proxy.log")" = 4 ] ||
        fail "not 4 tries: $(cat "$T/proxy.log")"
}

test_interrupted_pull_resumes() {
    oci_env; registry_start
    oci_image_busybox test/big v1
    proxy_start
    echo slow >"$T/proxy.mode"
    local big=${OCI_LAYERS%% *} partial
    partial=$STORE/blobs/sha256/${big#sha256:}.partial
    "$VB" pull -q "$PROXY/test/big:v1" >"$T/out1" 2>"$T/err1" &
    local pid=$!
    for _ in $(seq 200); do [ "$(stat -c %s "$partial" 2>/dev/null || echo 0)" -ge 65536 ] && break; sleep 0.05; done
    kill -9 "$pid"; wait "$pid" 2>/dev/null
    [ "$(stat -c %s "$partial")" = 65536 ] || fail "no 64 KiB partial after the kill: $(ls -l "$STORE/blobs/sha256")"
    echo normal >"$T/proxy.mode"
    vb pull "$PROXY/test/big:v1"
    expect_rc 0
    expect_blob "$big"
    expect_no_partial
    grep -q "^GET /v2/test/big/blobs/$big range=bytes=65536-" "$T/proxy.log" ||
        fail "no Range request: $(grep blobs "$T/proxy.log")"
}

test_images_and_rmi() {
    oci_env; registry_start
    oci_image_busybox test/a v1
    oci_image_docker test/b v1
    vb images
    expect_rc 0
    expect_out "REFERENCE                                          DIGEST                    SIZE  LAST USED"
    vb pull -q "$REG/test/a:v1"; expect_rc 0
    vb pull -q "$REG/test/b:v1"; expect_rc 0
    mkdir -p "$STORE/rootfs"
    : >"$STORE/rootfs/${OCI_DIGEST#sha256:}.ext4"   # a root disk part U would have made
    vb images
    expect_rc 0
    grep -q "^$REG/test/a:v1 .* sha256:[0-9a-f]\{12\} .* just now$" "$T/out" || fail "images: $out"
    grep -q "^$REG/test/b:v1 .*${OCI_DIGEST:0:19} " "$T/out" || fail "images: $out"
    # the layer both images share stays when one goes
    local shared=${OCI_LAYERS%% *}
    vb rmi "$REG/test/b:v1"
    expect_rc 0
    [ ! -e "$STORE/rootfs/${OCI_DIGEST#sha256:}.ext4" ] || fail "rmi left the root disk"
    expect_no_blob "$OCI_DIGEST"
    expect_blob "$shared"
    vb images -o json
    [ "$(jq -r '.[].reference' <<<"$out")" = "$REG/test/a:v1" ] || fail "images after rmi: $out"
    vb rmi "$REG/test/b:v1"
    expect_rc 1
    expect_err_has "$REG/test/b:v1 is not in the store"
    vb rmi "NOT A REF"
    expect_rc 2
}

test_errors_name_reference_url_status() {
    oci_env; registry_start
    vb pull "$REG/test/missing:v9"
    expect_rc 1
    expect_err_has "$REG/test/missing:v9: GET $REG_URL/v2/test/missing/manifests/v9: HTTP 404 Not Found (MANIFEST_UNKNOWN"
    vb pull "Python:3"
    expect_rc 2
    expect_err_has "repository name"
    vb pull
    expect_rc 2
    # nothing listening: the URL and the transport error
    local port
    port=$(oci_free_port)
    vb pull "127.0.0.1:$port/x/y:z"
    expect_rc 125
    expect_err_has "127.0.0.1:$port/x/y:z: GET http://127.0.0.1:$port/v2/"
    # a registry that is not loopback is reached over https unless listed
    VOIDBOX_INSECURE_REGISTRIES=other.invalid:1 vb pull "registry.invalid:5000/x:y"
    expect_rc 125
    expect_err_has "GET https://registry.invalid:5000/v2/"
    VOIDBOX_INSECURE_REGISTRIES=other.invalid,registry.invalid:5000 vb pull "registry.invalid:5000/x:y"
    expect_rc 125
    expect_err_has "GET http://registry.invalid:5000/v2/"
}

test_concurrent_pulls() {
    oci_env; registry_start
    oci_image_busybox test/c v1
    local i pids=()
    for i in 1 2 3; do "$VB" pull -q "$REG/test/c:v1" >"$T/c$i.out" 2>"$T/c$i.err" & pids+=($!); done
    wait "${pids[@]}"
    for i in 1 2 3; do
        [ "$(cat "$T/c$i.out")" = "$REG/test/c:v1 $OCI_DIGEST" ] || fail "pull $i: $(cat "$T/c$i.err")"
    done
    for i in $OCI_LAYERS; do expect_blob "$i"; done
    expect_no_partial
    vb images -o json
    [ "$(jq length <<<"$out")" = 1 ] || fail "images: $out"
}

test_gc_bound_and_prune() {
    oci_env; registry_start
    oci_image_busybox test/a v1
    local a_digest=$OCI_DIGEST a_zstd
    a_zstd=$(echo "$OCI_LAYERS" | cut -d' ' -f2)
    oci_image_docker test/b v1
    vb pull -q "$REG/test/a:v1"; expect_rc 0
    local stale fresh orphan
    stale=$STORE/blobs/sha256/$(printf f%.0s $(seq 64)).partial
    fresh=$STORE/blobs/sha256/$(printf e%.0s $(seq 64)).partial
    orphan=$STORE/rootfs/$(printf d%.0s $(seq 64)).ext4
    echo x >"$stale"; touch -d '2 hours ago' "$stale"
    echo x >"$fresh"; echo x >"$orphan"
    # over the bound: the least recently used image goes, the new one stays
    VOIDBOX_OCI_MAX_BYTES=1 vb pull -q "$REG/test/b:v1"
    expect_rc 0
    vb images -o json
    [ "$(jq -r '.[].reference' <<<"$out")" = "$REG/test/b:v1" ] || fail "images: $out"
    expect_no_blob "$a_digest"
    expect_no_blob "$a_zstd"
    expect_blob "$OCI_LAYERS"   # shared with b
    [ ! -e "$stale" ] || fail "a stale partial stayed"
    [ ! -e "$orphan" ] || fail "a root disk of no image stayed"
    [ -e "$fresh" ] || fail "a recent partial (a pull to resume) was deleted"
    vb images --prune
    expect_rc 0
    expect_out "freed 0 B"
    vb images -o json
    [ "$(jq length <<<"$out")" = 1 ] || fail "--prune within the bound dropped an image: $out"
}

run_tests
