#!/usr/bin/env bash
# Snapshots (docs/snapshots.md): create from a setup command, restore, the
# store's checks (damaged, truncated, another kernel or configuration),
# delete; every restore a new identity (its own random numbers, the
# host's clock); nothing left running.  Real VMs under whatever
# accelerator voidbox picks (TCG here).
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/snap_lib.sh"

snapdir() { echo "$XDG_CACHE_HOME/voidbox/snapshots/$1"; }

# drive REF PROG...: restore REF and run PROG in it as root
drive() {
    local ref=$1; shift
    vb exec --snapshot "$ref" -u root -- "$@"
}

setup_script() { echo 'echo from-setup > /home/sandbox/setup.txt
setsid sh -c "echo \$\$ > /tmp/daemon.pid; exec sleep 1000" </dev/null >/dev/null 2>&1 &
sleep 0.5'; }
check_script() { echo 'cat /home/sandbox/setup.txt; p=$(cat /tmp/daemon.pid); tr "\0" " " </proc/$p/cmdline; echo'; }

test_create_restore_keeps_setup() {
    snap_setup
    create base sh -c "$(setup_script)"
    # what the user sees
    vb snapshot list
    expect_rc 0
    grep -q "^${id:0:12} *base " <<<"$out" || fail "list lacks base: $out"
    vb snapshot inspect base
    expect_rc 0
    grep -q "\"id\": \"$id\"" <<<"$out" || fail "inspect: $out"
    # two restores: the setup's file and its still-running process in each
    for i in 1 2; do
        drive base sh -c "$(check_script)"
        expect_rc 0
        [ "$out" = "from-setup
sleep 1000 " ] || fail "restore $i: '$out' (stderr: $err)"
        grep -q "^voidbox: boot: restored from ${id:0:12} in [0-9]* ms$" "$T/err" ||
            fail "no restore line: $err"
    done
    # the snapshot is unchanged by what the restores did (private mapping)
    vb snapshot inspect "${id:0:8}"
    expect_rc 0
    expect_clean
}

test_each_restore_a_new_identity() {
    snap_setup
    create base true
    sleep 5 # the saved guest clock falls behind the host's
    drive base sh -c 'head -c 16 /dev/urandom | od -An -tx1 | tr -d " \n"; echo; date +%s'
    expect_rc 0
    local r1 t1 now
    r1=$(head -1 <<<"$out"); t1=$(tail -1 <<<"$out"); now=$(date +%s)
    [ "${#r1}" = 32 ] || fail "urandom: '$out'"
    # the re-key set the guest clock from the host's
    [ $((now - t1)) -le 3 ] && [ $((t1 - now)) -le 3 ] || fail "guest clock $t1, host $now"
    drive base sh -c 'head -c 16 /dev/urandom | od -An -tx1 | tr -d " \n"; echo'
    expect_rc 0
    [ "$out" != "$r1" ] || fail "two restores gave the same random bytes: $r1"
    # each restored VM has an id of its own
    vb exec --snapshot base -- true
    expect_rc 0
    vb exec --snapshot nosuch -- true
    expect_rc 125
    expect_err_has "no snapshot 'nosuch'"
    # a network is the restore's own (test_snapshot_net.sh)
    vb exec --snapshot base --network -- true
    expect_rc 0
    # boot settings its agent read at its own boot are refused, not dropped
    vb exec --snapshot base --rlimit nofile=256 -- sh -c 'ulimit -n'
    expect_rc 2
    expect_err_has "takes no command allowlist or rlimits"
    [ -z "$out" ] || fail "ran without its rlimit: $out"
    vb exec --snapshot base --allow sh -- true
    expect_rc 2
    expect_err_has "takes no command allowlist or rlimits"
    expect_clean
}

test_damaged_snapshot_refused() {
    snap_setup
    create base true
    local d; d=$(snapdir "$id")
    cp -a "$d" "$T/pristine"
    # a flipped byte inside the RAM's data
    chmod u+w "$d/ram"
    python3 - "$d/ram" <<'PY' || fail "cannot flip a byte"
import os, sys
f = os.open(sys.argv[1], os.O_RDWR)
off = os.lseek(f, 0, os.SEEK_DATA) + 4096
b = os.pread(f, 1, off)
os.pwrite(f, bytes([b[0] ^ 0xff]), off)
PY
    drive base true
    expect_rc 125
    expect_err_has "is damaged: 'ram' does not match its digest"
    vb exec --snapshot base -- true
    expect_rc 125
    expect_err_has "is damaged"
    vb snapshot inspect base
    expect_rc 125
    # a byte written into a hole of the RAM file
    rm -rf "$d"; cp -a "$T/pristine" "$d"; chmod u+w "$d/ram"
    printf '\x01' | dd of="$d/ram" bs=1 seek=$((1 << 29)) conv=notrunc status=none
    vb exec --snapshot base -- true
    expect_rc 125
    expect_err_has "'ram' does not match"
    # a truncated state file
    rm -rf "$d"; cp -a "$T/pristine" "$d"; chmod u+w "$d/state"
    truncate -s -100 "$d/state"
    drive base true
    expect_rc 125
    expect_err_has "'state' is"
    expect_err_has "(truncated?)"
    # a damaged manifest: not listed, named when asked for
    rm -rf "$d"; cp -a "$T/pristine" "$d"; chmod u+w "$d/manifest.json"
    sed -i 's/"save_ms": [0-9]*/"save_ms": "x"/' "$d/manifest.json"
    vb snapshot list
    expect_rc 0
    ! grep -q base <<<"$out" || fail "a damaged snapshot listed: $out"
    vb snapshot inspect "$id"
    expect_rc 125
    expect_err_has "is damaged: manifest: bad or missing 'created'"
    # and the pristine copy still restores
    rm -rf "$d"; cp -a "$T/pristine" "$d"
    drive base true
    expect_rc 0
    expect_clean
}

test_other_kernel_or_config_refused() {
    snap_setup
    create base true
    # a kernel that differs by one byte: refused before anything boots
    cp "$VOIDBOX_KERNEL" "$T/bzImage"; printf 'x' >>"$T/bzImage"
    VOIDBOX_KERNEL=$T/bzImage VOIDBOX_ACCEL=$(sed -n 's/.*accel=\([a-z]*\).*/\1/p' \
        "$(snapdir "$id")/manifest.json") vb exec --snapshot base -- true
    expect_rc 2
    expect_err_has "was taken with another kernel"
    cp "$VOIDBOX_INITRAMFS" "$T/initramfs"; printf 'x' >>"$T/initramfs"
    VOIDBOX_INITRAMFS=$T/initramfs vb exec --snapshot base -- true
    expect_rc 2
    expect_err_has "was taken with another initramfs"
    vb exec --snapshot base -m 512 -- true
    expect_rc 2
    expect_err_has "another VM configuration (memory=1024"
    expect_err_has "now memory=512"
    expect_clean
}

test_setup_fails_no_snapshot() {
    snap_setup
    vb snapshot create --name bad -- sh -c 'echo partial; exit 3'
    expect_rc 125
    expect_err_has "setup failed (exit 3): no snapshot taken"
    [ "$out" = partial ] || fail "setup output: $out"
    vb snapshot list -o json
    expect_rc 0
    expect_out "[]"
    # no staging directory (with its RAM file) left behind
    [ -z "$(ls -A "$XDG_CACHE_HOME/voidbox/snapshots")" ] ||
        fail "left in the store: $(ls -A "$XDG_CACHE_HOME/voidbox/snapshots")"
    vb snapshot create --name 'bad name' -- true
    expect_rc 2
    expect_err_has "snapshot name 'bad name'"
    expect_clean
}

test_delete() {
    snap_setup
    create one true
    local first=$id
    vb snapshot create --name one -- true
    expect_rc 2
    expect_err_has "a snapshot named 'one' exists"
    vb snapshot delete one
    expect_rc 0
    expect_out "deleted ${first:0:12}"
    [ ! -e "$(snapdir "$first")" ] || fail "directory still there"
    vb snapshot inspect one
    expect_rc 1
    expect_err_has "no snapshot 'one'"
    vb snapshot delete one
    expect_rc 1
    vb snapshot list -o json
    expect_out "[]"
    expect_clean
}

run_tests
