#!/usr/bin/env bash
# Root disks from OCI layers (src/oci/rootfs.c, docs/oci.md "Root disks"):
# layers made here with tar, gzip and zstd go through vb_rootfs_build (the
# small tests/integration/rootfs_build.c), and the image is checked with
# debugfs as a user would: what a whiteout or an opaque directory hides is
# gone, links are kept, owners and modes (setuid, uid 1000) are the layer's,
# though the build runs without root (as nobody when the tests run as
# root).  Malicious layers are refused, naming the layer and the entry, and
# leave nothing behind: no image, no temp file, nothing in a canary dir.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

# The layers and the build, in $T/l and $T/w.
setup() {
    RB=$(dirname "$VB")/tests/rootfs_build
    [ -x "$RB" ] || fail "no $RB (make all)"
    command -v genext2fs >/dev/null || fail "genext2fs missing (scripts/deps.sh)"
    DEBUGFS=$(command -v debugfs || echo /usr/sbin/debugfs)
    chmod 755 "$T"
    mkdir -p "$T/l" "$T/w" "$T/canary"
    echo keep >"$T/canary/keep"
    if [ "$(id -u)" -eq 0 ]; then
        chown 65534:65534 "$T/w"
        AS=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    else
        AS=()
    fi
}

# build OUT LAYER TYPE...: run the builder (as nobody if we are root)
build() {
    "${AS[@]}" "$RB" "$@" >"$T/out" 2>"$T/err"
    rc=$?
    err=$(cat "$T/err")
    check_sanitizers
}

# dstat IMG PATH: debugfs's stat of PATH in IMG
dstat() { "$DEBUGFS" -R "stat $2" "$1" 2>&1; }
expect_stat() { # IMG PATH REGEX
    dstat "$1" "$2" | grep -qE -- "$3" || fail "$2: no /$3/ in: $(dstat "$1" "$2" | head -5)"
}
expect_absent() {
    dstat "$1" "$2" | grep -q 'File not found' || fail "$2 is in the image: $(dstat "$1" "$2" | head -3)"
}

# The three layers of a small image.
make_layers() {
    local r="$T/r1"
    mkdir -p "$r/etc" "$r/opt/sub" "$r/usr/bin" "$r/home/u"
    echo a >"$r/etc/a"; echo b >"$r/etc/b"; echo motd >"$r/etc/motd"; echo u8 >"$r/etc/café"
    echo x >"$r/opt/x"; echo y >"$r/opt/sub/y"
    echo su >"$r/usr/bin/su"; chmod 4755 "$r/usr/bin/su"
    ln "$r/usr/bin/su" "$r/usr/bin/su2"
    ln -s usr/bin "$r/bin"
    ln -P "$r/bin" "$r/bin2"   # a hard link to a symlink
    echo u >"$r/home/u/f"
    tar --numeric-owner --owner=0 --group=0 -C "$r" -cf "$T/l/1.tar" --exclude=./home/u/f .
    tar --numeric-owner --owner=1000 --group=1000 -C "$r" -rf "$T/l/1.tar" ./home/u/f
    local s="$T/r2"
    mkdir -p "$s/etc" "$s/opt"
    : >"$s/etc/.wh.a"; : >"$s/opt/.wh..wh..opq"; echo new >"$s/opt/new"
    tar --numeric-owner --owner=0 --group=0 -C "$s" -cf - . | gzip -c >"$T/l/2.tar.gz"
    local z="$T/r3"
    mkdir -p "$z/etc"
    echo b3 >"$z/etc/b"
    tar --numeric-owner --owner=0 --group=0 -C "$z" -cf - . | zstd -q -c >"$T/l/3.tar.zst"
}

test_layers_make_the_root_as_they_say() {
    setup; make_layers
    build "$T/w/root.img" "$T/l/1.tar" tar "$T/l/2.tar.gz" gzip "$T/l/3.tar.zst" zstd
    [ "$rc" -eq 0 ] || fail "build failed: $err"
    img="$T/w/root.img"
    e2fsck -fn "$img" >/dev/null 2>&1 || fail "e2fsck: $(e2fsck -fn "$img" 2>&1 | tail -5)"
    # whiteout and opaque directory
    expect_absent "$img" /etc/a
    expect_absent "$img" /opt/x
    expect_absent "$img" /opt/sub
    expect_stat "$img" /opt/new 'Type: regular'
    expect_stat "$img" /etc/café 'Type: regular'
    [ "$("$DEBUGFS" -R 'cat /etc/b' "$img" 2>/dev/null)" = b3 ] || fail "/etc/b is not the top layer's"
    # owners and modes, though nobody built it
    expect_stat "$img" /usr/bin/su 'Mode: +04755'
    expect_stat "$img" /usr/bin/su 'User: +0 +Group: +0 '
    expect_stat "$img" /etc/motd 'Mode: +0644'
    expect_stat "$img" /etc/motd 'User: +0 +Group: +0 '
    expect_stat "$img" /home/u/f 'User: +1000 +Group: +1000 '
    # hard link: one inode, two names; symlink kept as written
    local i1 i2
    i1=$(dstat "$img" /usr/bin/su | sed -n 's/^Inode: *\([0-9]*\).*/\1/p')
    i2=$(dstat "$img" /usr/bin/su2 | sed -n 's/^Inode: *\([0-9]*\).*/\1/p')
    [ -n "$i1" ] && [ "$i1" = "$i2" ] || fail "su ($i1) and su2 ($i2) are not one inode"
    expect_stat "$img" /usr/bin/su 'Links: 2'
    expect_stat "$img" /bin 'Type: symlink'
    expect_stat "$img" /bin 'Fast link dest: "usr/bin"'
    expect_stat "$img" /bin2 'Fast link dest: "usr/bin"'
    # nothing else left in the output directory
    [ "$(ls "$T/w")" = root.img ] || fail "left in the output dir: $(ls "$T/w")"
}

test_docker_media_type_and_device_nodes() {
    setup
    mkdir -p "$T/r/dev" "$T/r/etc"
    echo hi >"$T/r/etc/hi"
    if [ "$(id -u)" -eq 0 ]; then
        mknod "$T/r/dev/null" c 1 3
    else
        echo "  (not root: no device node in the layer)" >&2
    fi
    tar --numeric-owner -C "$T/r" -cf - . | gzip -c >"$T/l/d.tar.gz"
    build "$T/w/d.img" "$T/l/d.tar.gz" docker
    [ "$rc" -eq 0 ] || fail "build failed: $err"
    expect_stat "$T/w/d.img" /etc/hi 'Type: regular'
    if [ "$(id -u)" -eq 0 ]; then
        grep -q "skipped device node 'dev/null'" "$T/err" || fail "no notice of the skipped device: $err"
        expect_absent "$T/w/d.img" /dev/null
    fi
}

test_unknown_media_type_is_refused() {
    setup; make_layers
    build "$T/w/u.img" "$T/l/1.tar" application/vnd.oci.image.layer.v1.tar+bzip2
    [ "$rc" -eq 1 ] || fail "exit $rc, expected 1"
    grep -q "unknown layer media type 'application/vnd.oci.image.layer.v1.tar+bzip2'" "$T/err" ||
        fail "message: $err"
    [ -z "$(ls "$T/w")" ] || fail "left behind: $(ls "$T/w")"
}

# refused NAME ENTRY WHY: the evil layer $T/l/NAME.tar on top of 1.tar is
# refused naming layer 2 and ENTRY, and nothing is left anywhere.
refused() {
    touch "$T/stamp"; sleep 0.01
    build "$T/w/evil.img" "$T/l/1.tar" tar "$T/l/$1.tar" tar
    [ "$rc" -eq 1 ] || fail "$1: exit $rc, expected 1 ($err)"
    grep -qF "layer 2 ($1.tar): entry '$2'" "$T/err" || fail "$1: message does not name the entry: $err"
    echo "  $1: $err" >&2
    grep -qiF "$3" "$T/err" || fail "$1: message lacks '$3': $err"
    [ -z "$(ls -A "$T/w")" ] || fail "$1: left in the output dir: $(ls -A "$T/w")"
    [ "$(ls -A "$T/canary")" = keep ] || fail "$1: the canary dir changed: $(ls -A "$T/canary")"
    local new
    new=$(find "$T" -newer "$T/stamp" -not -path "$T" -not -path "$T/err" \
        -not -path "$T/out" -not -path "$T/w" -not -path "$T/test.log" 2>/dev/null | head -5)
    [ -z "$new" ] || fail "$1: new files: $new"
}

test_malicious_layers_are_refused() {
    setup; make_layers
    local e="$T/e"
    mkdir -p "$e" && cd "$e" || fail "cd"
    echo pwned >f
    # ../ in a name, and an absolute name pointing at the canary
    tar -P --transform "s,^f\$,../../canary/pwned," -cf "$T/l/dotdot.tar" f
    tar -P --transform "s,^f\$,$T/canary/pwned," -cf "$T/l/abs.tar" f
    # an absolute symlink, then a write through it
    ln -s "$T/canary" link
    mkdir -p d && echo pwned >d/pwned
    tar -P --transform 's,^d,link,' -cf "$T/l/symlink.tar" link d/pwned
    # a hard link whose target leaves the root
    ln f g
    tar -P --transform "s,^f\$,../../canary/keep,R" -cf "$T/l/hardlink.tar" f g
    # a 10 GB sparse file
    truncate -s 10G big
    tar -S -cf "$T/l/sparse.tar" big
    cd / || fail "cd"
    refused dotdot ../../canary/pwned "'..'"
    refused abs "$T/canary/pwned" absolute
    refused symlink link/pwned symlink
    refused hardlink g "'..'"
    refused sparse big bound
    # a lower bound refuses smaller claims too
    build --max-bytes 1000 "$T/w/b.img" "$T/l/1.tar" tar
    [ "$rc" -eq 0 ] || fail "small image refused under a 1000-byte bound: $err"
    rm -f "$T/w/b.img"
    build --max-bytes 10 "$T/w/b.img" "$T/l/1.tar" tar
    [ "$rc" -eq 1 ] && grep -q bound "$T/err" || fail "10-byte bound: exit $rc: $err"
}

test_concurrent_builds_of_one_path() {
    setup; make_layers
    local i
    local pids=()
    for i in 1 2 3; do
        "${AS[@]}" "$RB" "$T/w/c.img" "$T/l/1.tar" tar "$T/l/2.tar.gz" gzip >/dev/null 2>"$T/err.$i" &
        pids+=($!)
    done
    for i in 1 2 3; do wait "${pids[$((i - 1))]}" || fail "build $i: $(cat "$T/err.$i")"; done
    [ "$(ls "$T/w")" = c.img ] || fail "left in the output dir: $(ls "$T/w")"
    e2fsck -fn "$T/w/c.img" >/dev/null 2>&1 || fail "the image that won is damaged"
    expect_stat "$T/w/c.img" /opt/new 'Type: regular'
}

run_tests
