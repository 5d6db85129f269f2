#!/usr/bin/env bash
# OCI benchmark, everything from a docker-registry on loopback, in the same
# run:
#   1. pull + unpack: `voidbox pull` plus the build of its read-only root
#      disk, against `skopeo copy` (registry -> OCI layout) + `umoci unpack
#      --rootless` of the same image (both from Debian);
#   2. a stage on the image: the first `voidbox exec --image REF -- true`
#      (builds the root disk), the cached one, and `voidbox exec -- true` on
#      the default initramfs.
# The image has four gzip layers (umoci 0.4.7 reads no zstd): busybox, the
# host's Python standard library, its Perl modules, and a layer with a
# whiteout and an opaque directory -- about 100 MB unpacked.  Each run
# starts with the image out of the store (`voidbox rmi`).  Prints medians and ratios.  Not a test.
#
# usage: bench/oci.sh [BUILD_DIR] [RUNS]
set -euo pipefail
build=${1:-build}
runs=${2:-3}
vb="$(cd "$build" && pwd)/voidbox"
[ -x "$vb" ] || { echo "build first: make" >&2; exit 1; }
for p in docker-registry skopeo umoci python3 jq; do
    command -v "$p" >/dev/null || { echo "needs $p (scripts/deps.sh installs it)" >&2; exit 1; }
done
"$vb" image build >/dev/null

T=$(mktemp -d)
export T
fail() { echo "bench/oci.sh: $*" >&2; exit 1; }
# shellcheck source=../tests/integration/oci_lib.sh
. "$(dirname "$0")/../tests/integration/oci_lib.sh"
cleanup() { registry_stop; rm -rf "$T"; }
set +e # oci_lib.sh's functions are written for the tests' harness, without -e
registry_start
set -e
trap cleanup EXIT
export XDG_STATE_HOME="$T/state" # the benchmark's run records stay out of the user's

# ---- the image --------------------------------------------------------------
d=$T/img
mkdir -p "$d"
oci_layers # busybox root (l1.tar.gz) and the whiteout/opaque layer (l3.tar.gz)
copy_tree() { # copy_tree SRC DST-ROOT: SRC's tree at the same path under DST-ROOT
    [ -d "$1" ] || fail "no $1 on this host"
    mkdir -p "$2$(dirname "$1")"
    cp -a "$1" "$2$1"
}
copy_tree /usr/lib/python3.11 "$d/py"
copy_tree /usr/share/perl "$d/perl"
for n in py perl; do
    oci_tar "$d/$n" "$d/$n.tar" && gzip -n -1 -c "$d/$n.tar" >"$d/$n.tar.gz"
    rm -rf "${d:?}/$n"
done
# the config names each layer's uncompressed digest (diff_ids), as umoci checks
diff_ids=
for t in "$T/oci/l1.tar" "$d/py.tar" "$d/perl.tar" "$T/oci/l3.tar"; do
    diff_ids="$diff_ids${diff_ids:+,}\"sha256:$(oci_sha "$t")\""
done
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/bin:/usr/bin:/bin"],"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
    "$diff_ids" >"$d/config.json"
layers=("$T/oci/l1.tar.gz" "$d/py.tar.gz" "$d/perl.tar.gz" "$T/oci/l3.tar.gz")
for f in "$d/config.json" "${layers[@]}"; do oci_push_blob bench/img "$f"; done
descs=()
for f in "${layers[@]}"; do descs+=("$MT_OCI_GZIP:$f"); done
oci_manifest "$d/manifest.json" "$MT_OCI_MANIFEST" "$MT_OCI_CONFIG" "$d/config.json" "${descs[@]}"
oci_push_manifest bench/img v1 "$d/manifest.json" "$MT_OCI_MANIFEST"
ref=$REG/bench/img:v1
packed=0
for f in "${layers[@]}"; do packed=$((packed + $(stat -c %s "$f"))); done
unpacked=$(($(stat -c %s "$T/oci/l1.tar") + $(stat -c %s "$d/py.tar") + $(stat -c %s "$d/perl.tar")))
rm -f "$d/py.tar" "$d/perl.tar"

# ---- timing -----------------------------------------------------------------
now() { date +%s%N; }
ms() { echo $((($2 - $1) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
: >"$T/pull" ; : >"$T/disk" ; : >"$T/first" ; : >"$T/cached" ; : >"$T/default" ; : >"$T/base"
for i in $(seq "$runs"); do
    "$vb" rmi "$ref" >/dev/null 2>&1 || true # from an empty store (the registry's port is new)
    rm -rf "$T/layout" "$T/bundle"
    t0=$(now)
    skopeo copy -q --src-tls-verify=false "docker://$ref" "oci:$T/layout:v1" >/dev/null
    umoci unpack --rootless --image "$T/layout:v1" "$T/bundle" >/dev/null
    t1=$(now)
    ms "$t0" "$t1" >>"$T/base"
    rm -rf "$T/layout" "$T/bundle"

    t0=$(now)
    "$vb" pull -q "$ref" >/dev/null
    t1=$(now)
    "$vb" exec --image "$ref" -- true
    t2=$(now)
    "$vb" exec --image "$ref" -- true
    t3=$(now)
    "$vb" exec -- true
    t4=$(now)
    ms "$t0" "$t1" >>"$T/pull"
    ms "$t1" "$t2" >>"$T/first"
    ms "$t2" "$t3" >>"$T/cached"
    ms "$t3" "$t4" >>"$T/default"
    # the disk build is what the first run pays over a cached one
    echo $(( $(ms "$t1" "$t2") - $(ms "$t2" "$t3") )) >>"$T/disk"
    "$vb" rmi "$ref" >/dev/null
done

pull=$(median <"$T/pull"); disk=$(median <"$T/disk"); base=$(median <"$T/base")
first=$(median <"$T/first"); cached=$(median <"$T/cached"); def=$(median <"$T/default")
accel=$("$vb" doctor -o json | jq -r .accel)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", (b > 0) ? a / b : 0 }'; }
echo "image: 4 gzip layers, $((packed / 1048576)) MiB packed, $((unpacked / 1048576)) MiB unpacked; accel $accel; medians of $runs"
printf '%-44s %8s ms\n' "skopeo copy + umoci unpack --rootless" "$base"
printf '%-44s %8s ms\n' "voidbox pull" "$pull"
printf '%-44s %8s ms\n' "voidbox root disk build (first exec - cached)" "$disk"
printf '%-44s %8s ms   %s of skopeo+umoci\n' "voidbox pull + root disk" "$((pull + disk))" \
    "$(ratio $((pull + disk)) "$base")"
printf '%-44s %8s ms   %s of the default\n' "exec --image, first (builds the disk)" "$first" "$(ratio "$first" "$def")"
printf '%-44s %8s ms   %s of the default\n' "exec --image, cached" "$cached" "$(ratio "$cached" "$def")"
printf '%-44s %8s ms\n' "exec on the default initramfs" "$def"
