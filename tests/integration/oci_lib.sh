# OCI test helpers (sourced after lib.sh): Debian's docker-registry on a
# free loopback port with its storage in the test's $T, and images built
# and pushed with tar, gzip/zstd, sha256sum and curl -- no docker, no
# network.  Every function works inside one test (a subshell with its own
# $T); registry_start arranges for the registry to stop when the test ends
# (it sets the test's EXIT trap: a test with its own should call
# registry_stop and proxy_stop from it).  Needs lib.sh (fail) and $T.
#
#   registry_start [USER:PASS]   start it (htpasswd basic auth when given);
#                                sets REG (127.0.0.1:PORT), REG_URL, REG_PID
#   registry_stop                stop it (also done at the test's exit)
#   oci_image_busybox REPO TAG   busybox-static root (gzip), a zstd layer, a
#                                gzip layer with a whiteout and an opaque dir
#   oci_image_index REPO TAG     an OCI index: linux/amd64 (the image above)
#                                + linux/arm64 + an attestation entry
#   oci_image_docker REPO TAG    a Docker v2 manifest (Docker media types)
# Each oci_image_* sets OCI_DIGEST (the manifest's, or the index's, digest),
# OCI_AMD64 (the linux/amd64 manifest's digest) and OCI_LAYERS (the layer
# digests, in order).  Config: Env PATH and OCI_TEST=1, WorkingDir /work,
# User $OCI_USER (default "0"), Cmd ["/bin/sh"].
#
# What the layers hold (for tests that look inside):
#   layer 1 (tar+gzip): /bin/busybox and links (sh ls cat id echo env ...),
#            /etc/passwd (root, user 1000), /work/, /data/old.txt,
#            /data/keep.txt, /opq/a, /opq/b, /etc/owned-by-root (0644 root)
#   layer 2 (tar+zstd): /etc/zstd-layer ("zstd")
#   layer 3 (tar+gzip): /data/.wh.old.txt (whiteout), /opq/.wh..wh..opq
#            (opaque), /opq/c ("c")

# Tests run as functions in a fresh bash (lib.sh), so what they need from
# here is exported or a function.
export OCI_BUSYBOX=${OCI_BUSYBOX:-/bin/busybox}
OCI_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export OCI_LIB_DIR
export MT_OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
export MT_OCI_INDEX=application/vnd.oci.image.index.v1+json
export MT_OCI_CONFIG=application/vnd.oci.image.config.v1+json
export MT_OCI_GZIP=application/vnd.oci.image.layer.v1.tar+gzip
export MT_OCI_ZSTD=application/vnd.oci.image.layer.v1.tar+zstd
export MT_DOCKER_MANIFEST=application/vnd.docker.distribution.manifest.v2+json
export MT_DOCKER_CONFIG=application/vnd.docker.container.image.v1+json
export MT_DOCKER_GZIP=application/vnd.docker.image.rootfs.diff.tar.gzip

oci_curl() { curl -sS --fail-with-body --max-time 60 "${REG_AUTH[@]}" "$@"; }

oci_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

registry_start() {
    local auth=${1:-} port cfg=$T/registry/config.yml
    mkdir -p "$T/registry/data"
    port=$(oci_free_port)
    {
        echo "version: 0.1"
        # REG_ACCESSLOG=1: every request logged to $T/registry/log (for
        # tests that count the registry's requests)
        echo "log: {level: error, accesslog: {disabled: $([ -n "${REG_ACCESSLOG:-}" ] && echo false || echo true)}}"
        echo "storage: {filesystem: {rootdirectory: $T/registry/data}, delete: {enabled: true}}"
        echo "http: {addr: 127.0.0.1:$port}"
        if [ -n "$auth" ]; then
            htpasswd -Bbn "${auth%%:*}" "${auth#*:}" >"$T/registry/htpasswd" || fail "htpasswd"
            echo "auth: {htpasswd: {realm: test-realm, path: $T/registry/htpasswd}}"
        fi
    } >"$cfg"
    docker-registry serve "$cfg" >"$T/registry/log" 2>&1 &
    REG_PID=$!
    REG=127.0.0.1:$port REG_URL=http://127.0.0.1:$port REG_AUTH=()
    [ -z "$auth" ] || REG_AUTH=(-u "$auth")
    trap registry_stop EXIT
    local code
    for _ in $(seq 100); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$REG_URL/v2/" 2>/dev/null)
        [ "$code" = 200 ] || [ "$code" = 401 ] && return 0
        kill -0 "$REG_PID" 2>/dev/null || break
        sleep 0.05
    done
    cat "$T/registry/log" >&2
    fail "docker-registry did not start on $REG"
}

registry_stop() {
    [ -n "${REG_PID:-}" ] || return 0
    kill "$REG_PID" 2>/dev/null
    wait "$REG_PID" 2>/dev/null
    REG_PID=
}

oci_sha() { sha256sum "$1" | cut -d' ' -f1; }

# oci_push_blob REPO FILE: upload (POST + PUT) unless the registry has it
oci_push_blob() {
    local repo=$1 file=$2 d loc
    d=sha256:$(oci_sha "$file")
    if oci_curl -o /dev/null -I "$REG_URL/v2/$repo/blobs/$d" 2>/dev/null; then
        return 0
    fi
    loc=$(oci_curl -o /dev/null -D - -X POST "$REG_URL/v2/$repo/blobs/uploads/" |
          tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
    [ -n "$loc" ] || fail "no upload location for $repo"
    case $loc in http*) ;; *) loc=$REG_URL$loc ;; esac
    case $loc in *\?*) loc="$loc&digest=$d" ;; *) loc="$loc?digest=$d" ;; esac
    oci_curl -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
        --data-binary "@$file" "$loc" || fail "pushing blob $d to $repo"
}

# oci_push_manifest REPO REF FILE MEDIATYPE
oci_push_manifest() {
    oci_curl -o /dev/null -X PUT -H "Content-Type: $4" \
        --data-binary "@$3" "$REG_URL/v2/$1/manifests/$2" || fail "pushing manifest $1:$2"
}

# oci_desc MEDIATYPE FILE: a descriptor's JSON
oci_desc() { printf '{"mediaType":"%s","digest":"sha256:%s","size":%s}' "$1" "$(oci_sha "$2")" "$(stat -c %s "$2")"; }

# oci_config OUT ARCH [MEDIATYPE-ignored]: an image config
oci_config() {
    printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/usr/local/bin:/usr/bin:/bin","OCI_TEST=1"],"WorkingDir":"/work","User":"%s","Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":[]}}' \
        "$2" "${OCI_USER:-0}" >"$1"
}

# oci_tar DIR OUT: a reproducible, root-owned tar of DIR's contents
oci_tar() {
    tar --owner=0 --group=0 --numeric-owner --sort=name --mtime=@0 -C "$1" -cf "$2" .
}

# the three layers of the description above, built once per test in $T/oci
oci_layers() {
    local d=$T/oci
    [ -s "$d/l3.tar.gz" ] && return 0
    mkdir -p "$d/r1/bin" "$d/r1/etc" "$d/r1/work" "$d/r1/data" "$d/r1/opq" "$d/r2/etc" "$d/r3/data" "$d/r3/opq"
    cp "$OCI_BUSYBOX" "$d/r1/bin/busybox"
    local a
    for a in sh ls cat id echo env stat mkdir touch rm grep head wc sleep test true false printf; do
        ln -s busybox "$d/r1/bin/$a"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n' >"$d/r1/etc/passwd"
    printf 'root:x:0:\nuser:x:1000:\n' >"$d/r1/etc/group"
    echo owned >"$d/r1/etc/owned-by-root"
    echo old >"$d/r1/data/old.txt"
    echo keep >"$d/r1/data/keep.txt"
    echo a >"$d/r1/opq/a"
    echo b >"$d/r1/opq/b"
    echo zstd >"$d/r2/etc/zstd-layer"
    : >"$d/r3/data/.wh.old.txt"
    : >"$d/r3/opq/.wh..wh..opq"
    echo c >"$d/r3/opq/c"
    oci_tar "$d/r1" "$d/l1.tar" && gzip -n -1 -c "$d/l1.tar" >"$d/l1.tar.gz"
    oci_tar "$d/r2" "$d/l2.tar" && zstd -q -1 -f "$d/l2.tar" -o "$d/l2.tar.zst"
    oci_tar "$d/r3" "$d/l3.tar" && gzip -n -1 -c "$d/l3.tar" >"$d/l3.tar.gz"
}

# oci_manifest OUT MEDIATYPE CONFIG_MT CONFIG LAYER_MT:FILE...
oci_manifest() {
    local out=$1 mt=$2 cmt=$3 cfg=$4 sep='' l
    shift 4
    {
        printf '{"schemaVersion":2,"mediaType":"%s","config":%s,"layers":[' "$mt" "$(oci_desc "$cmt" "$cfg")"
        for l in "$@"; do printf '%s%s' "$sep" "$(oci_desc "${l%%:*}" "${l#*:}")"; sep=,; done
        printf ']}'
    } >"$out"
}

oci_image_busybox() {
    local repo=$1 tag=$2 d=$T/oci
    oci_layers
    oci_config "$d/config-amd64.json" amd64
    local f
    for f in "$d/config-amd64.json" "$d/l1.tar.gz" "$d/l2.tar.zst" "$d/l3.tar.gz"; do
        oci_push_blob "$repo" "$f"
    done
    oci_manifest "$d/manifest-amd64.json" "$MT_OCI_MANIFEST" "$MT_OCI_CONFIG" "$d/config-amd64.json" \
        "$MT_OCI_GZIP:$d/l1.tar.gz" "$MT_OCI_ZSTD:$d/l2.tar.zst" "$MT_OCI_GZIP:$d/l3.tar.gz"
    oci_push_manifest "$repo" "$tag" "$d/manifest-amd64.json" "$MT_OCI_MANIFEST"
    OCI_DIGEST=sha256:$(oci_sha "$d/manifest-amd64.json")
    OCI_AMD64=$OCI_DIGEST
    OCI_LAYERS="sha256:$(oci_sha "$d/l1.tar.gz") sha256:$(oci_sha "$d/l2.tar.zst") sha256:$(oci_sha "$d/l3.tar.gz")"
}

oci_image_index() {
    local repo=$1 tag=$2 d=$T/oci
    oci_image_busybox "$repo" "$tag-amd64"
    mkdir -p "$d/arm/etc"
    echo arm64 >"$d/arm/etc/arch"
    oci_tar "$d/arm" "$d/arm.tar" && gzip -n -1 -c "$d/arm.tar" >"$d/arm.tar.gz"
    oci_config "$d/config-arm64.json" arm64
    oci_push_blob "$repo" "$d/config-arm64.json"
    oci_push_blob "$repo" "$d/arm.tar.gz"
    oci_manifest "$d/manifest-arm64.json" "$MT_OCI_MANIFEST" "$MT_OCI_CONFIG" "$d/config-arm64.json" \
        "$MT_OCI_GZIP:$d/arm.tar.gz"
    oci_push_manifest "$repo" "$tag-arm64" "$d/manifest-arm64.json" "$MT_OCI_MANIFEST"
    local arm amd
    arm=$(oci_desc "$MT_OCI_MANIFEST" "$d/manifest-arm64.json")
    amd=$(oci_desc "$MT_OCI_MANIFEST" "$d/manifest-amd64.json")
    printf '{"schemaVersion":2,"mediaType":"%s","manifests":[%s,%s,%s]}' "$MT_OCI_INDEX" \
        "${arm%\}},\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}}" \
        "${arm%\}},\"platform\":{\"architecture\":\"unknown\",\"os\":\"unknown\"},\"annotations\":{\"vnd.docker.reference.type\":\"attestation-manifest\"}}" \
        "${amd%\}},\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}" >"$d/index.json"
    oci_push_manifest "$repo" "$tag" "$d/index.json" "$MT_OCI_INDEX"
    OCI_DIGEST=sha256:$(oci_sha "$d/index.json")
    OCI_ARM64=sha256:$(oci_sha "$d/manifest-arm64.json")
}

oci_image_docker() {
    local repo=$1 tag=$2 d=$T/oci
    oci_layers
    oci_config "$d/config-docker.json" amd64
    oci_push_blob "$repo" "$d/config-docker.json"
    oci_push_blob "$repo" "$d/l1.tar.gz"
    oci_manifest "$d/manifest-docker.json" "$MT_DOCKER_MANIFEST" "$MT_DOCKER_CONFIG" \
        "$d/config-docker.json" "$MT_DOCKER_GZIP:$d/l1.tar.gz"
    oci_push_manifest "$repo" "$tag" "$d/manifest-docker.json" "$MT_DOCKER_MANIFEST"
    OCI_DIGEST=sha256:$(oci_sha "$d/manifest-docker.json")
    OCI_AMD64=$OCI_DIGEST
    OCI_LAYERS="sha256:$(oci_sha "$d/l1.tar.gz")"
}

# proxy_start [--bearer]: tests/integration/oci_proxy.py in front of the
# registry (registry_start first); sets PROXY (127.0.0.1:PORT); its log is
# $T/proxy.log, its mode file $T/proxy.mode (see the script).
proxy_start() {
    rm -f "$T/proxy.port"
    : >"$T/proxy.log"
    python3 "$OCI_LIB_DIR/oci_proxy.py" "$REG_URL" "$T/proxy.port" "$T/proxy.log" \
        "$T/proxy.mode" "$@" 2>"$T/proxy.err" &
    PROXY_PID=$!
    trap 'proxy_stop; registry_stop' EXIT
    for _ in $(seq 100); do [ -s "$T/proxy.port" ] && break; sleep 0.05; done
    [ -s "$T/proxy.port" ] || { cat "$T/proxy.err" >&2; fail "the registry proxy did not start"; }
    PROXY=127.0.0.1:$(cat "$T/proxy.port")
}

proxy_stop() {
    [ -n "${PROXY_PID:-}" ] || return 0
    kill "$PROXY_PID" 2>/dev/null
    wait "$PROXY_PID" 2>/dev/null
    PROXY_PID=
}
