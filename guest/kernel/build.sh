#!/usr/bin/env bash
# Build the VoidBox guest kernel: Linux 6.1 from Debian's linux-source-6.1,
# tinyconfig plus our fragment. Built once per config hash into the cache.
#
# usage: build.sh [--print-path] [--force]
#   --print-path  print where the kernel for the current config lives and exit
#                 (exit 1 if it is not built yet)
# env: XDG_CACHE_HOME (cache root), VOIDBOX_KERNEL_JOBS (make -j, default nproc)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
fragment="$here/voidbox.fragment"
tarball=/usr/src/linux-source-6.1.tar.xz
home=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
cache="${XDG_CACHE_HOME:-$home/.cache}/voidbox"

die() { echo "voidbox kernel: $*" >&2; exit 1; }

[ -r "$tarball" ] || die "missing $tarball (install: apt-get install linux-source-6.1)"
srcver=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || stat -c %s "$tarball")
# Bump RECIPE when the build steps below change what gets built.
RECIPE=1
hash=$( { cat "$fragment"; echo "$srcver"; echo "recipe $RECIPE"; } | sha256sum | cut -c1-16)
out="$cache/kernel-$hash"

# The host finds the kernel through this link without re-hashing each boot.
publish() { ln -sfn "kernel-$hash" "$cache/kernel-current"; }

if [ "${1:-}" = "--print-path" ]; then
    [ -f "$out/bzImage" ] || exit 1
    echo "$out/bzImage"; exit 0
fi
if [ -f "$out/bzImage" ] && [ "${1:-}" != "--force" ]; then
    publish
    echo "voidbox kernel: up to date ($out/bzImage)"
    exit 0
fi

for tool in make gcc flex bison bc; do
    command -v "$tool" >/dev/null || die "missing '$tool' (install: apt-get install build-essential flex bison bc libelf-dev)"
done
mkdir -p "$cache"
work="$cache/kernel-build-$hash"
rm -rf "$work"; mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
echo "voidbox kernel: unpacking $tarball"
tar -xf "$tarball" -C "$work"
src=$(echo "$work"/linux-source-6.1)
[ -d "$src" ] || die "unexpected tarball layout"

echo "voidbox kernel: configuring (tinyconfig + $(basename "$fragment"))"
make -C "$src" -s tinyconfig >"$work/config.log" 2>&1
"$src/scripts/kconfig/merge_config.sh" -m -O "$src" "$src/.config" "$fragment" >>"$work/config.log" 2>&1
make -C "$src" -s olddefconfig >>"$work/config.log" 2>&1

# kconfig silently drops options whose dependencies are off: check each one.
missing=""
while IFS= read -r line; do
    case "$line" in CONFIG_*=*) ;; *) continue ;; esac
    opt=${line%%=*}; val=${line#*=}
    if [ "$val" = n ]; then
        grep -qx "$opt=.*" "$src/.config" && missing="$missing $opt=n"
    else
        grep -qx "$line" "$src/.config" || missing="$missing $line"
    fi
done < "$fragment"
[ -z "$missing" ] || die "options not in the final .config (a dependency is off?):$missing"

jobs=${VOIDBOX_KERNEL_JOBS:-$(nproc)}
echo "voidbox kernel: compiling with -j$jobs (about 20 minutes on 2 cores; log: $work/build.log)"
set +e
make -C "$src" -j"$jobs" bzImage 2>&1 | tee "$work/build.log" | {
    n=0; last=0
    while IFS= read -r l; do
        case "$l" in *" CC "*|*" AS "*|*" LD "*|*" AR "*) n=$((n + 1)) ;; esac
        now=$(date +%s)
        if [ $((now - last)) -ge 15 ]; then
            last=$now
            printf 'voidbox kernel: %4ds elapsed, %5d steps done\n' $((now - start)) "$n"
        fi
    done
}
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
    tail -n 30 "$work/build.log" >&2
    trap - EXIT
    die "build failed (full log: $work/build.log)"
fi
tmp="$out.tmp.$$"
rm -rf "$tmp"; mkdir -p "$tmp"
cp "$src/arch/x86/boot/bzImage" "$tmp/bzImage"
cp "$src/.config" "$tmp/config"
cp "$fragment" "$tmp/fragment"
rm -rf "$out"; mv "$tmp" "$out"
publish
echo "voidbox kernel: built $out/bzImage in $(( $(date +%s) - start ))s"
