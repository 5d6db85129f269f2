#!/usr/bin/env bash
# Snapshots with host directories (docs/snapshots.md, "Mounts"): a restored
# VM mounts `-v` directories on the 9p devices its snapshot has unmounted;
# parallel restores each see their own.  Warm by default ("Warm by
# default"): the first exec boots cold and leaves the warm snapshot made in
# the background; later execs restore it (`voidbox ps` says so), quietly,
# each with its own boot id; --cold boots; a damaged one is replaced after
# one notice, the exec succeeding.  Real VMs under whatever
# accelerator voidbox picks (TCG here).
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/snap_lib.sh"

test_restore_with_mounts() {
    snap_setup
    create base true
    mkdir -p "$T/rw" "$T/ro"
    echo from-host > "$T/rw/in.txt"
    echo read-only > "$T/ro/r.txt"
    vb exec --snapshot base -v "$T/rw:/work:rw" -v "$T/ro:/data" -- \
        sh -c 'cat /work/in.txt /data/r.txt; echo from-guest > /work/out.txt;
               echo x > /data/no.txt 2>/dev/null && echo wrote-ro; echo done'
    expect_rc 0
    expect_out "from-host
read-only
done"
    grep -q "^voidbox: boot: restored from ${id:0:12} in [0-9]* ms$" "$T/err" ||
        fail "not restored: $err"
    [ "$(cat "$T/rw/out.txt" 2>/dev/null)" = from-guest ] || fail "the guest's write is not on the host"
    [ ! -e "$T/ro/no.txt" ] || fail "a read-only mount was written"
    # file operations reach the mounts too (they are roots of the agent)
    vb exec --snapshot base -v "$T/rw:/work:rw" -w /work -- sh -c 'pwd; ls'
    expect_rc 0
    expect_out "/work
in.txt
out.txt"
    # more mounts than the snapshot has devices
    vb exec --snapshot base -v "$T/rw:/a" -v "$T/rw:/b" -v "$T/rw:/c" -v "$T/rw:/d" -v "$T/rw:/e" -- true
    expect_rc 2
    expect_err_has "at most 4 mounts on a VM restored from a snapshot"
    # a bad guest path is the agent's refusal, and nothing runs
    vb exec --snapshot base -v "$T/rw:/proc/1/x:rw" -- echo ran
    [ "$rc" -ne 0 ] || fail "a mount on /proc/1/x was accepted: $out"
    [ -z "$out" ] || fail "the command ran: $out"
    expect_clean
}

test_parallel_restores_own_mounts() {
    snap_setup
    create base true
    mkdir -p "$T/a" "$T/b"
    echo A > "$T/a/who"; echo B > "$T/b/who"
    local i
    for i in a b; do
        "$VB" exec --snapshot base -v "$T/$i:/w:rw" -- \
            sh -c 'cat /w/who; touch /w/seen-$(cat /w/who); ls /w | tr "\n" " "' \
            >"$T/out.$i" 2>"$T/err.$i" </dev/null &
    done
    wait
    [ "$(head -1 "$T/out.a")" = A ] || fail "restore a: $(cat "$T/out.a" "$T/err.a")"
    [ "$(head -1 "$T/out.b")" = B ] || fail "restore b: $(cat "$T/out.b" "$T/err.b")"
    [ "$(ls "$T/a" | tr '\n' ' ')" = "seen-A who " ] || fail "a holds: $(ls "$T/a")"
    [ "$(ls "$T/b" | tr '\n' ' ')" = "seen-B who " ] || fail "b holds: $(ls "$T/b")"
    grep -q "restored from" "$T/err.a" && grep -q "restored from" "$T/err.b" ||
        fail "not both restored: $(cat "$T/err.a" "$T/err.b")"
    expect_clean
}



test_warm_exec_by_default() {
    snap_setup
    # the first exec: cold, quiet, and it leaves no VM of its own behind
    [ "$(restored)" = cold ] || fail "the first exec was not cold"
    # (but for the accelerator's notice: this test's cache is its own, so on
    # a host whose /dev/kvm cannot run the guest its first VM probes KVM
    # and says so, once)
    ! grep -v 'KVM cannot run the guest on this host' "$T/werr" | grep -q . ||
        fail "the first exec was not quiet: $(cat "$T/werr")"
    expect_clean
    wait_warm
    vb snapshot list
    grep -qE '^[0-9a-f]{12} +warm-[0-9a-f]{18} ' <<<"$out" || fail "list: $out"
    local id; id=$(grep -oE '^[0-9a-f]{12} +warm-' <<<"$out" | cut -c1-12)
    # later ones restore it, quietly
    [ "$(restored)" = "$id" ] || fail "the second exec was not restored from $id"
    [ ! -s "$T/werr" ] || fail "a warm exec was not quiet: $(cat "$T/werr")"
    # each with an identity of its own: distinct boot ids, made after the re-key
    vb exec -- cat /proc/sys/kernel/random/boot_id
    expect_rc 0
    local b1=$out
    vb exec -- cat /proc/sys/kernel/random/boot_id
    expect_rc 0
    [[ "$b1" =~ ^[0-9a-f-]{36}$ ]] && [ "$out" != "$b1" ] ||
        fail "boot ids of two restores: '$b1' '$out'"
    # with a mount, and as any exec (stdin, exit code)
    mkdir -p "$T/w"
    [ "$(restored -v "$T/w:/workspace:rw")" = "$id" ] || fail "exec with a mount not restored"
    vb_in "data" exec -i -v "$T/w:/workspace:rw" -- sh -c "cat > /workspace/in; exit 7"
    expect_rc 7
    [ "$(cat "$T/w/in")" = data ] || fail "stdin not written through the mount"
    # a mount the agent refuses is the exec's error, as cold; the warm
    # snapshot is not blamed (no notice, still there)
    vb exec -v "$T/w:/proc/1/x" -- echo ran
    [ "$rc" -ne 0 ] && [ -z "$out" ] || fail "a mount on /proc/1/x: rc $rc, out '$out'"
    expect_err_has "mount vbm0"
    ! grep -q "could not be restored" "$T/err" || fail "blamed the warm snapshot: $err"
    vb snapshot list
    grep -q "^$id " <<<"$out" || fail "the warm snapshot went: $out"
    # --cold, and what a restore cannot give (rlimits), boot
    [ "$(restored --cold)" = cold ] || fail "--cold restored"
    [ "$(restored --rlimit nofile=256)" = cold ] || fail "--rlimit restored"
    vb exec --rlimit nofile=256 -- sh -c "ulimit -n"
    expect_rc 0
    expect_out 256
    expect_clean
}

test_warm_damaged_falls_back() {
    snap_setup
    vb snapshot warm
    expect_rc 0
    local id; id=$(tail -1 <<<"$out")
    [[ "$id" =~ ^[0-9a-f]{64}$ ]] || fail "snapshot warm printed '$out'"
    vb snapshot warm # there already: the same one
    expect_rc 0
    [ "$(tail -1 <<<"$out")" = "$id" ] || fail "a second warm snapshot: $out"
    local d=$XDG_CACHE_HOME/voidbox/snapshots/$id
    chmod u+w "$d/state"
    printf 'XXXX' | dd of="$d/state" bs=1 seek=100 conv=notrunc status=none
    # the maker this exec starts finds the store's lock held by someone
    # else (another maker, a `snapshot warm`): it waits, it does not give up
    flock "$XDG_CACHE_HOME/voidbox/snapshots/.warm.lock" sleep 3 &
    local holder=$!
    sleep 0.3
    vb exec -- echo ran
    expect_rc 0
    expect_out ran
    [ "$(wc -l <"$T/err")" = 1 ] || fail "not one notice: $err"
    expect_err_has "warm snapshot ${id:0:12} could not be restored (snapshot ${id:0:12} is damaged: 'state' does not match its digest); booted cold"
    [ ! -e "$d" ] || fail "the damaged snapshot is still there"
    # replaced in the background; the next execs restore the new one
    wait "$holder"
    wait_warm
    local nid; nid=$("$VB" snapshot list | grep -oE '^[0-9a-f]{12} +warm-' | cut -c1-12)
    [ -n "$nid" ] && [ "$nid" != "${id:0:12}" ] || fail "not replaced: $nid"
    local got; got=$(restored)
    [ "$got" = "$nid" ] || fail "not restored from the replacement ($nid): $got, $(cat "$T/werr")"
    [ ! -s "$T/werr" ] || fail "notice again: $(cat "$T/werr")"
    expect_clean
}

# A damaged warm snapshot that a diff was made from (`create --from`)
# cannot be deleted: it stays, without its name, for the diff to be refused
# with its damage, and the replacement takes the name.
test_warm_damaged_base_of_a_diff_replaced() {
    snap_setup
    vb snapshot warm
    expect_rc 0
    local id; id=$(tail -1 <<<"$out")
    local name; name=$("$VB" snapshot list | awk -v i="${id:0:12}" '$1 == i {print $2}')
    [[ "$name" == warm-* ]] || fail "no warm name for $id: $("$VB" snapshot list)"
    vb snapshot create --from "$name" --name mine -- sh -c 'echo x > /home/sandbox/x'
    expect_rc 0
    local d=$XDG_CACHE_HOME/voidbox/snapshots/$id
    chmod u+w "$d/state"
    printf 'XXXX' | dd of="$d/state" bs=1 seek=100 conv=notrunc status=none
    vb exec -- echo ran
    expect_rc 0
    expect_out ran
    expect_err_has "warm snapshot ${id:0:12} could not be restored"
    [ -d "$d" ] || fail "the base of a diff was deleted"
    wait_warm
    local nid; nid=$("$VB" snapshot list | awk -v n="$name" '$2 == n {print $1}')
    [ -n "$nid" ] && [ "$nid" != "${id:0:12}" ] || fail "the name not given to a new one: $("$VB" snapshot list)"
    local got; got=$(restored)
    [ "$got" = "$nid" ] || fail "not restored from the replacement ($nid): $got, $(cat "$T/werr")"
    [ ! -s "$T/werr" ] || fail "notice again: $(cat "$T/werr")"
    # the old one is listed under no name, and its diff refused with its damage
    "$VB" snapshot list | grep -qE "^${id:0:12} +- " || fail "the old base not listed unnamed: $("$VB" snapshot list)"
    vb exec --snapshot mine -- true
    expect_rc 125
    expect_err_has "is a diff of ${id:0:12}: snapshot ${id:0:12} is damaged"
    expect_clean
}

# A maker that fails leaves its reason, and for an hour no exec starts
# another (each would boot a VM for nothing); a foreground `snapshot warm`
# tries regardless, says why it cannot, and once it can, clears the stamp.
test_warm_failed_make_not_retried() {
    snap_setup
    local store=$XDG_CACHE_HOME/voidbox/snapshots
    # a QEMU that cannot take snapshots while $T/broken exists: it refuses
    # the file-backed RAM only a snapshot's VM has
    printf '%s\n' '#!/bin/sh' \
        "if [ -e '$T/broken' ]; then" \
        '    case "$*" in *memory-backend-file*) echo "qemu: no snapshots here" >&2; exit 1;; esac' \
        'fi' \
        'exec qemu-system-x86_64 "$@"' >"$T/qemu"
    chmod +x "$T/qemu"
    touch "$T/broken"
    export VOIDBOX_QEMU=$T/qemu
    vb exec -- echo ran
    expect_rc 0
    expect_out ran
    ! grep -v 'KVM cannot run the guest on this host' "$T/err" | grep -q . || fail "not quiet: $err"
    local i
    for i in $(seq 1 60); do
        ls "$store"/.warm-failed-* >/dev/null 2>&1 && flock -n "$store/.warm.lock" true && break
        sleep 1
    done
    local stamp; stamp=$(ls "$store"/.warm-failed-* 2>/dev/null)
    [ -n "$stamp" ] || fail "no stamp of the failed make: $(ls -a "$store"; cat "$store/.warm.log")"
    grep -q . "$stamp" || fail "the stamp gives no reason"
    grep -q "cannot make the warm snapshot" "$store/.warm.log" || fail "log: $(cat "$store/.warm.log")"
    ! "$VB" snapshot list | grep -q ' warm-' || fail "a warm snapshot was made"
    # the next exec boots cold and starts no maker (the log is not rewritten)
    local before; before=$(stat -c %y "$store/.warm.log")
    vb exec -- echo again
    expect_rc 0
    expect_out again
    sleep 2
    [ "$(stat -c %y "$store/.warm.log")" = "$before" ] || fail "another maker ran: $(cat "$store/.warm.log")"
    # the foreground tries regardless and says why not
    vb snapshot warm
    [ "$rc" -ne 0 ] || fail "snapshot warm succeeded with a QEMU that cannot"
    expect_err_has "cannot make the warm snapshot"
    # mended: it makes it, the stamp goes, execs restore it
    rm "$T/broken"
    vb snapshot warm
    expect_rc 0
    local id; id=$(tail -1 <<<"$out")
    [ ! -e "$stamp" ] || fail "the stamp outlived a successful make"
    [ "$(restored)" = "${id:0:12}" ] || fail "not restored from ${id:0:12}"
    expect_clean
}

run_tests
