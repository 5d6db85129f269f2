#!/usr/bin/env bash
# Diff snapshots and the store's bound (docs/snapshots.md, "Diffs" and
# "Eviction"): `snapshot create --from BASE` keeps what differs from BASE,
# a restore of it sees both; a base with diffs is not deleted; a damaged
# base refuses its diffs; least recently used snapshots are evicted when
# the store is over $VOIDBOX_SNAPSHOT_MAX_BYTES, never the one just made
# and never a base before its diffs.  Real VMs (TCG here).
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/snap_lib.sh"

snapdir() { echo "$XDG_CACHE_HOME/voidbox/snapshots/$1"; }
kib() { du -sk "$1" | cut -f1; }
# flip FILE: invert a byte inside the file's data
flip() {
    chmod u+w "$1"
    python3 - "$1" <<'PY' || fail "cannot flip a byte of $1"
import os, sys
f = os.open(sys.argv[1], os.O_RDWR)
off = os.lseek(f, 0, os.SEEK_DATA)
off += 4096 if os.fstat(f).st_size > off + 4096 else 0
b = os.pread(f, 1, off)
os.pwrite(f, bytes([b[0] ^ 0xff]), off)
PY
}

# diff NAME BASE [SETUP...]: a diff snapshot; $id is its id.
diff_create() {
    local name=$1 base=$2; shift 2
    vb snapshot create --from "$base" --name "$name" -- "$@"
    expect_rc 0
    id=$(tail -1 <<<"$out")
    [[ "$id" =~ ^[0-9a-f]{64}$ ]] || fail "create --from printed '$out', not an id"
}

test_diff_restore_sees_base_and_diff() {
    snap_setup
    create base sh -c 'echo from-base > /home/sandbox/base.txt'
    local base=$id
    diff_create child base sh -c 'echo from-diff > /home/sandbox/diff.txt
setsid sh -c "echo \$\$ > /tmp/daemon.pid; exec sleep 1000" </dev/null >/dev/null 2>&1 &
sleep 0.5'
    local child=$id
    # on disk, before anything restored it: the diff is what the setup changed
    local b c
    b=$(kib "$(snapdir "$base")"); c=$(kib "$(snapdir "$child")")
    [ "$c" -lt $((b / 2)) ] || fail "diff takes ${c} KiB, its base ${b} KiB"
    # what the user sees: the diff's base, its size and the total
    vb snapshot list
    expect_rc 0
    grep -q "^${child:0:12} *child *[0-9-]* [0-9:]* *${base:0:12} " <<<"$out" ||
        fail "list lacks the diff's base: $out"
    grep -q "^${base:0:12} *base *[0-9-]* [0-9:]* *- " <<<"$out" || fail "list: $out"
    vb snapshot list -o json
    jq -e --arg c "$child" --arg b "$base" '.[] | select(.id == $c) |
        .base == $b and .own_bytes * 2 < .total_bytes' <<<"$out" >/dev/null ||
        fail "list -o json: $out"
    # both files and the diff's process, in each of two restores, each
    # with a boot id of its own
    local ids=""
    for i in 1 2; do
        vb exec --snapshot child -u root -- sh -c 'cat /home/sandbox/base.txt /home/sandbox/diff.txt
tr "\0" " " </proc/$(cat /tmp/daemon.pid)/cmdline; echo; cat /proc/sys/kernel/random/boot_id'
        expect_rc 0
        [ "$(head -3 <<<"$out")" = "from-base
from-diff
sleep 1000 " ] || fail "restore $i: '$out' (stderr: $err)"
        expect_err_has "boot: restored from ${child:0:12} in"
        ids="$ids $(tail -1 <<<"$out")"
    done
    [ "$(tr ' ' '\n' <<<"$ids" | sort -u | grep -c .)" = 2 ] || fail "boot ids: $ids"
    # inspect names the base and checks it
    vb snapshot inspect child
    expect_rc 0
    jq -e --arg b "$base" '.base == $b and .version == 2 and .disk.own_bytes > 0' \
        <<<"$out" >/dev/null || fail "inspect: $out"
    # the base still restores as it was: no file of the diff in it
    vb exec --snapshot base -- sh -c 'cat /home/sandbox/base.txt; ls /home/sandbox'
    expect_rc 0
    [ "$out" = "from-base
base.txt" ] || fail "base: '$out'"
    expect_clean
}

test_diff_of_a_diff() {
    snap_setup
    create base sh -c 'echo 1 > /home/sandbox/one'
    diff_create mid base sh -c 'echo 2 > /home/sandbox/two'
    local mid=$id
    diff_create top mid sh -c 'echo 3 > /home/sandbox/three'
    vb exec --snapshot top -- cat /home/sandbox/one /home/sandbox/two /home/sandbox/three
    expect_rc 0
    expect_out "1
2
3"
    vb snapshot inspect top
    jq -e --arg m "$mid" '.base == $m' <<<"$out" >/dev/null || fail "inspect: $out"
    expect_clean
}

test_delete_base_refused_naming_diffs() {
    snap_setup
    create base true
    local base=$id
    diff_create child base true
    local child=$id
    vb snapshot delete base
    expect_rc 2
    expect_err_has "snapshot ${base:0:12} is the base of 1 diff: ${child:0:12} (child); delete it first"
    [ -d "$(snapdir "$base")" ] || fail "the base was deleted"
    vb exec --snapshot child -- true
    expect_rc 0
    # diffs first, then the base
    vb snapshot delete child base
    expect_rc 0
    vb snapshot list -o json
    expect_out "[]"
    expect_clean
}

test_damaged_base_refuses_diff() {
    snap_setup
    create base true
    local base=$id
    diff_create child base sh -c 'echo x > /home/sandbox/x'
    local child=$id
    # once restored, the diff's whole RAM is assembled and kept: the base
    # is still checked on every restore
    vb exec --snapshot child -- true
    expect_rc 0
    flip "$(snapdir "$base")/ram"
    vb exec --snapshot child -- true
    expect_rc 125
    expect_err_has "snapshot ${child:0:12} is a diff of ${base:0:12}: snapshot ${base:0:12} is damaged: 'ram' does not match its digest"
    [ -z "$out" ] || fail "something ran: $out"
    vb snapshot create --from child -- true
    expect_rc 125
    expect_err_has "is damaged"
    expect_clean
}

test_damaged_diff_cache_rebuilt() {
    snap_setup
    create base true
    diff_create child base sh -c 'echo kept > /home/sandbox/k'
    local child=$id
    vb exec --snapshot child -- true
    expect_rc 0
    # the assembled RAM is a cache: damaged, it is made again from the
    # checked base and diff, and the restore goes on
    local f; f="$(snapdir "$child")/ram.full"
    [ -f "$f" ] || fail "no assembled RAM"
    chmod u+w "$f"
    printf '\x01' | dd of="$f" bs=1 seek=$((1 << 29)) conv=notrunc status=none
    vb exec --snapshot child -- cat /home/sandbox/k
    expect_rc 0
    expect_out "kept"
    # the diff's own pages are part of the snapshot: damaged, refused
    flip "$(snapdir "$child")/ram.map"
    vb exec --snapshot child -- true
    expect_rc 125
    expect_err_has "snapshot ${child:0:12} is damaged: 'ram.map' does not match its digest"
    expect_clean
}

test_eviction_least_recently_used() {
    snap_setup
    # each snapshot of a booted VM takes ~50 MiB: room for two
    export VOIDBOX_SNAPSHOT_MAX_BYTES=130M
    create s1 true
    local s1=$id
    create s2 true
    local s2=$id
    # s1 restored: s2 is now the least recently used
    vb exec --snapshot s1 -- true
    expect_rc 0
    create s3 true
    local s3=$id
    [ -d "$(snapdir "$s1")" ] || fail "s1 (restored since) was evicted"
    [ ! -d "$(snapdir "$s2")" ] || fail "s2 (least recently used) was kept"
    [ -d "$(snapdir "$s3")" ] || fail "s3 (just made) was evicted"
    # a bound below one snapshot: all go but the one just made
    VOIDBOX_SNAPSHOT_MAX_BYTES=1K vb snapshot create --name s4 -- true
    expect_rc 0
    vb snapshot list -o json
    [ "$(jq -r '[.[].name] | join(",")' <<<"$out")" = s4 ] || fail "left: $out"
    expect_clean
}

test_eviction_never_a_base_before_its_diffs() {
    snap_setup
    create base true
    diff_create child base true
    # over the bound with the new one (~50 MiB each but the diff): the base
    # is the least recently used, and deleting it alone would do; but its
    # diff goes first, then it: never a diff left without its base
    VOIDBOX_SNAPSHOT_MAX_BYTES=100M vb snapshot create --name other -- true
    expect_rc 0
    vb snapshot list -o json
    jq -e 'map(select(.base != null)) as $d | [.[].id] as $ids |
        all($d[]; .base as $b | $ids | index($b))' <<<"$out" >/dev/null ||
        fail "a diff without its base: $out"
    [ "$(jq -r '[.[].name] | join(",")' <<<"$out")" = other ] || fail "left: $out"
    # within the bound nothing goes
    VOIDBOX_SNAPSHOT_MAX_BYTES=10G vb snapshot create --name more -- true
    expect_rc 0
    vb snapshot list -o json
    [ "$(jq -r '[.[].name] | sort | join(",")' <<<"$out")" = more,other ] || fail "left: $out"
    expect_clean
}

test_eviction_drops_assembled_ram_first() {
    snap_setup
    create base true
    diff_create child base sh -c 'echo kept > /home/sandbox/k'
    local child=$id
    vb exec --snapshot child -- true # assembles the diff's whole RAM
    expect_rc 0
    [ -f "$(snapdir "$child")/ram.full" ] || fail "no assembled RAM"
    # base, the diff's cache and a new one: over; the cache is enough
    VOIDBOX_SNAPSHOT_MAX_BYTES=130M vb snapshot create --name other -- true
    expect_rc 0
    [ ! -f "$(snapdir "$child")/ram.full" ] || fail "the cache was kept"
    vb snapshot list -o json
    [ "$(jq -r '[.[].name] | sort | join(",")' <<<"$out")" = base,child,other ] ||
        fail "left: $out"
    vb exec --snapshot child -- cat /home/sandbox/k
    expect_rc 0
    expect_out "kept"
    expect_clean
}

run_tests
