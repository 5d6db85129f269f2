#!/usr/bin/env bash
# Build the VoidBox guest kernel: Linux 6.1 from Debian's linux-source-6.1,
# tinyconfig plus our fragment. Built once per config hash into the cache.
#
# usage: build.sh [--print-path] [--force]
#   --print-path  print where the kernel for the current config lives and exit
#                 (exit 1 if it is not built yet)
# env: XDG_CACHE_HOME (cache root), VOIDBOX_KERNEL_JOBS (make -j, default nproc),
#      VOIDBOX_KERNEL_TARBALL (a Linux 6.1 source tarball; default Debian's
#      linux-source-6.1 package's),
#      VOIDBOX_KERNEL_PROGRESS_SECS (seconds between progress lines, default 15)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
fragment="$here/voidbox.fragment"
debian_tarball=/usr/src/linux-source-6.1.tar.xz
tarball=${VOIDBOX_KERNEL_TARBALL:-$debian_tarball}
home=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
cache="${XDG_CACHE_HOME:-$home/.cache}/voidbox"
# Compiles (CC, AS lines) the shipped fragment takes with RECIPE 1; the
# progress total until a build has counted its own (kernel-*/steps).
STEPS_SHIPPED=1125

die() { echo "voidbox kernel: $*" >&2; exit 1; }

# Progress of the kernel's make output on stdin, one line every
# VOIDBOX_KERNEL_PROGRESS_SECS: "N/M (P%), ETA mm:ss".  Only compiles count
# (CC, AS): they take nearly all the time, while the hundreds of AR lines of
# tinyconfig's empty directories take none, so a linear ETA over compiles is
# within ~20% from a quarter of the way (measured on a 2-core build, where
# one over all lines was 30-60% too long).  (approx) "~" marks a total taken
# from another config's build.  The final count goes to (countfile).
progress() { # TOTAL APPROX COUNTFILE
    local total=$1 approx=$2 countfile=$3 every=${VOIDBOX_KERNEL_PROGRESS_SECS:-15}
    local n=0 t0 now last l pct eta
    t0=${EPOCHREALTIME//[.,]/}; last=$t0     # microseconds, without a fork per line
    while IFS= read -r l; do
        case "$l" in "  CC "*|"  AS "*) n=$((n + 1)) ;; esac
        now=${EPOCHREALTIME//[.,]/}
        [ $((now - last)) -ge $((every * 1000000)) ] || continue
        last=$now
        if [ "$n" -ge "$total" ]; then
            # Done, when the total is this config's own count; an estimate
            # reached only says that the end is near.
            pct=100; [ -z "$approx" ] || pct=99
            eta=00:00
        else
            pct=$((100 * n / total)) eta=--:--
            if [ "$n" -gt 0 ]; then
                eta=$(( (now - t0) * (total - n) / n / 1000000 ))
                printf -v eta '%02d:%02d' $((eta / 60)) $((eta % 60))
            fi
        fi
        printf 'voidbox kernel: %d/%s%d (%d%%), ETA %s\n' "$n" "$approx" "$total" "$pct" "$eta"
    done
    echo "$n" >"$countfile"
}

[ -r "$tarball" ] || die "missing $tarball (install: apt-get install linux-source-6.1)"
if [ "$tarball" = "$debian_tarball" ]; then
    srcver=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || stat -c %s "$tarball")
else
    srcver=$(stat -L -c '%s %Y' "$tarball")
fi
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
mkdir "$work/src"
tar -xf "$tarball" -C "$work/src"
# linux-source-6.1/ in Debian's, linux-6.1.N/ in kernel.org's: the one directory.
tops=("$work"/src/*/)
[ ${#tops[@]} -eq 1 ] && [ -d "${tops[0]}" ] || die "$tarball does not hold one top directory"
src=${tops[0]%/}

echo "voidbox kernel: configuring (tinyconfig + $(basename "$fragment"))"
config_failed() { tail -n 20 "$work/config.log" >&2; die "configuring the kernel failed"; }
make -C "$src" -s tinyconfig >"$work/config.log" 2>&1 || config_failed
"$src/scripts/kconfig/merge_config.sh" -m -O "$src" "$src/.config" "$fragment" >>"$work/config.log" 2>&1 ||
    config_failed
make -C "$src" -s olddefconfig >>"$work/config.log" 2>&1 || config_failed

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

# The progress total: this config's previous build, else the newest build of
# any config, else the shipped fragment's.
total="" approx=""
if [ -r "$out/steps" ]; then
    total=$(cat "$out/steps")
else
    approx="~"
    latest=$(ls -t "$cache"/kernel-*/steps 2>/dev/null | head -n 1 || true)
    [ -z "$latest" ] || total=$(cat "$latest")
fi
case "$total" in ''|*[!0-9]*|0) total=$STEPS_SHIPPED approx="~" ;; esac

jobs=${VOIDBOX_KERNEL_JOBS:-$(nproc)}
echo "voidbox kernel: compiling ${approx:+about }$total files with -j$jobs (log: $work/build.log)"
set +e
make -C "$src" -j"$jobs" bzImage 2>&1 | tee "$work/build.log" | progress "$total" "$approx" "$work/compiled"
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
cp "$work/compiled" "$tmp/steps"
rm -rf "$out"; mv "$tmp" "$out"
publish
echo "voidbox kernel: built $out/bzImage in $(( $(date +%s) - start ))s"
