#!/usr/bin/env bash
# How a root disk is built without root (docs/oci.md, "Root disks"): three
# layers made from this machine's Python and Perl trees and a few large
# shared libraries (~220 MB, a whiteout and an opaque directory), turned
# into an ext4-mountable image (a) in one fakeroot session: GNU tar
# extracts, whiteouts by rm, `mke2fs -t ext4 -d`; (b) by vb_rootfs_build:
# the layers merged in memory and streamed into `genext2fs -a -`.  Prints
# wall time and CPU for each, and whether e2fsck finds both clean.  Not a
# test; needs fakeroot, genext2fs, e2fsprogs, zstd.
#
# usage: bench/rootfs_methods.sh [BUILD_DIR] [RUNS]
set -euo pipefail
build=${1:-build}
runs=${2:-2}
rb=$(readlink -f "$build/tests/rootfs_build")
[ -x "$rb" ] || { echo "build first: make" >&2; exit 1; }
for t in fakeroot genext2fs zstd /usr/sbin/mke2fs /usr/sbin/e2fsck; do
    command -v "$t" >/dev/null || { echo "missing: $t" >&2; exit 1; }
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
lib=/usr/lib/x86_64-linux-gnu
mkdir -p 1/usr/lib 1/bin 2/usr/lib/x86_64-linux-gnu 2/usr/share 3$lib 3/usr/lib/python3.11 3/usr/share/perl
cp -a /usr/lib/python3.11 1/usr/lib/ 2>/dev/null || cp -a /usr/lib/python3* 1/usr/lib/
cp -a /bin/busybox 1/bin/ 2>/dev/null || true
cp -a /usr/lib/python3 2/usr/lib/ 2>/dev/null || true
cp -a /usr/share/perl 2/usr/share/ 2>/dev/null || true
cp -a "$lib/perl" 2$lib/ 2>/dev/null || true
for f in libicudata.so.72.1 libz3.so.4 libx265.so.199; do cp -a "$lib/$f" 3$lib/ 2>/dev/null || true; done
: >3/usr/lib/python3.11/.wh.test
: >3/usr/share/perl/.wh..wh..opq
tar --numeric-owner -C 1 -cf - . | gzip -6 >L1.tar.gz
tar --numeric-owner -C 2 -cf - . | zstd -q -3 >L2.tar.zst
tar --numeric-owner -C 3 -cf - . | gzip -6 >L3.tar.gz
echo "input: $(du -sm 1 2 3 | awk '{s+=$1} END {print s}') MB unpacked, $(find 1 2 3 | wc -l) entries," \
     "$(du -cm L1.tar.gz L2.tar.zst L3.tar.gz | tail -1 | cut -f1) MB compressed"
rm -rf 1 2 3
mb=$(( $(zcat L1.tar.gz | wc -c) + $(zstd -dc L2.tar.zst | wc -c) + $(zcat L3.tar.gz | wc -c) ))
mb=$(( mb / 1000000 * 12 / 10 + 16 ))
t() { /usr/bin/time -f "  %e s wall, %U s user, %S s sys" "$@"; }
for run in $(seq "$runs"); do
    rm -rf ra a.img b.img
    echo "run $run (a) fakeroot + tar -x + mke2fs -t ext4 -d (${mb}M, sized by hand)"
    t fakeroot sh -c "mkdir ra && tar --numeric-owner -xpzf L1.tar.gz -C ra &&
      tar --numeric-owner --zstd -xpf L2.tar.zst -C ra &&
      rm -rf ra/usr/lib/python3.11/test ra/usr/share/perl/* &&
      tar --numeric-owner -xpzf L3.tar.gz -C ra --exclude='.wh.*' &&
      /usr/sbin/mke2fs -q -t ext4 -d ra a.img ${mb}M"
    echo "run $run (b) vb_rootfs_build (genext2fs -a -)"
    t "$rb" b.img L1.tar.gz gzip L2.tar.zst zstd L3.tar.gz gzip 2>&1 | grep -v '^rootfs: layer'
    for i in a b; do
        /usr/sbin/e2fsck -fn $i.img >/dev/null 2>&1 && echo "  $i.img: e2fsck clean, $(du -m $i.img | cut -f1) MB" ||
            echo "  $i.img: e2fsck FAILED"
    done
done
