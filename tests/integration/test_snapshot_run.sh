#!/usr/bin/env bash
# Snapshots in specs, pipelines and shells (docs/snapshots.md, "Specs,
# pipelines and shells"): sandbox.snapshot restores a named snapshot, none
# boots cold; stages restore the warm snapshot by default (a run that found
# none leaves one made), --cold boots; a damaged warm snapshot is one notice
# and a cold boot, a damaged or missing named one fails (the missing one
# before any VM boots); what a restore cannot give is refused at load with
# a position; `voidbox shell --snapshot`.  Real VMs (TCG here).
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/snap_lib.sh"

# booted: one line per vm.booted event of the last run: STAGE BOOT
# SNAPSHOT12 WARM BOOT_ID NOTICE? ("-" where there is none).
booted() {
    "$VB" logs --last -o json | python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    if e["event"] == "vm.booted":
        print(e["stage"], e.get("boot", "?"), (e.get("snapshot") or "-")[:12],
              "warm" if e.get("warm") else "-", e.get("boot_id") or "-",
              "notice" if e.get("boot_notice") else "-")'
}

warm_id() { "$VB" snapshot list | grep -oE '^[0-9a-f]{12} +warm-' | cut -c1-12; }

test_spec_snapshot_restores_it() {
    snap_setup
    create tools sh -c 'echo from-setup > /etc/setup-mark'
    mkdir -p "$T/w"
    cat >"$T/p.yaml" <<EOF
api_version: v1
kind: pipeline
name: snap
sandbox: {snapshot: tools}
pipeline:
  boxes:
    - name: a
      run: {program: sh, args: ["-c", "cat /etc/setup-mark"]}
    - name: b
      sandbox: {snapshot: none}
      run: {program: sh, args: ["-c", "test -e /etc/setup-mark && echo marked || echo clean"]}
    - name: c
      sandbox:
        snapshot: ${id:0:8}
        mounts: [{host: $T/w, guest: /w, mode: rw}]
      run: {program: sh, args: ["-c", "cat /etc/setup-mark > /w/seen; cat /workspace/input.json"]}
EOF
    vb validate "$T/p.yaml"
    expect_rc 0
    vb run "$T/p.yaml"
    expect_rc 0
    expect_out "clean"
    [ "$(cat "$T/w/seen" 2>/dev/null)" = from-setup ] || fail "box c did not see the setup's file"
    expect_err_has "stage a: running on vm-"
    grep -qE "stage a: running on vm-[0-9a-f]+ \(.*\), restored from ${id:0:12} in [0-9]+ ms$" "$T/err" ||
        fail "progress: $err"
    grep -qE "stage b: running on .*, booted cold in [0-9]+ ms$" "$T/err" || fail "progress: $err"
    local b; b=$(booted)
    grep -q "^a restored ${id:0:12} - " <<<"$b" || fail "a: $b"
    grep -q "^b cold - - " <<<"$b" || fail "b: $b"
    grep -q "^c restored ${id:0:12} - " <<<"$b" || fail "c: $b"
    [ "$(awk '{print $5}' <<<"$b" | sort -u | wc -l)" = 3 ] || fail "boot ids not distinct: $b"
    # the record says it too
    vb logs --last
    grep -qE "vm.booted +a +vm-[0-9a-f]+ tcg/emulated, restored from ${id:0:12} in [0-9]+ ms, " <<<"$out" ||
        fail "logs: $out"
    # --snapshot: every VM whose spec sets none; a spec's own (none) wins
    cat >"$T/q.yaml" <<'EOF'
api_version: v1
kind: pipeline
name: flag
pipeline:
  boxes:
    - name: x
      run: {program: cat, args: [/etc/setup-mark]}
    - name: y
      sandbox: {snapshot: none}
      run: {program: sh, args: ["-c", "test ! -e /etc/setup-mark && echo clean"]}
EOF
    vb run --snapshot tools -o json "$T/q.yaml"
    expect_rc 0
    python3 -c '
import json, sys
r = json.loads(sys.argv[1]); x, y = r["stages"]
assert x["output"] == "from-setup\n" and x["boot"] == "restored" and x["snapshot"].startswith(sys.argv[2]), x
assert y["output"] == "clean\n" and y["boot"] == "cold" and y["snapshot"] is None, y
' "$out" "$id" || fail "run --snapshot: $out"
    expect_clean
}

test_pipeline_and_workflow_stages_are_warm() {
    snap_setup
    cat >"$T/p.yaml" <<'EOF'
api_version: v1
kind: pipeline
name: warm
pipeline:
  boxes:
    - name: a
      run: {program: cat, args: [/proc/sys/kernel/random/boot_id]}
    - name: b
      run: {program: cat, args: [/proc/sys/kernel/random/boot_id]}
EOF
    # a fresh store: both boot cold, and the run leaves the warm snapshot made
    vb run "$T/p.yaml"
    expect_rc 0
    [ "$(booted | awk '{print $2}' | sort -u)" = cold ] || fail "first run: $(booted)"
    wait_warm
    local w; w=$(warm_id)
    # later runs restore it, each stage with an identity of its own
    vb run "$T/p.yaml"
    expect_rc 0
    local b; b=$(booted)
    grep -q "^a restored $w warm " <<<"$b" && grep -q "^b restored $w warm " <<<"$b" ||
        fail "stages not restored from $w: $b"
    [ "$(awk '{print $5}' <<<"$b" | sort -u | wc -l)" = 2 ] || fail "one boot id for two stages: $b"
    [ "$out" = "$(awk '$1 == "b" {print $5}' <<<"$b")" ] || fail "b's output is not its boot id: $out"
    ! grep -q "could not be restored" "$T/err" || fail "a notice: $err"
    # a workflow's one VM too
    cat >"$T/wf.yaml" <<'EOF'
api_version: v1
kind: workflow
name: wf
workflow:
  steps:
    - {name: one, run: {program: "true"}}
    - {name: two, run: {program: "true"}, depends_on: [one]}
EOF
    vb run "$T/wf.yaml"
    expect_rc 0
    b=$(booted)
    [ "$(awk '{print $1, $2, $3}' <<<"$b")" = "one restored $w
two restored $w" ] || fail "workflow: $b"
    # --cold boots them
    vb run --cold "$T/p.yaml"
    expect_rc 0
    [ "$(booted | awk '{print $2}' | sort -u)" = cold ] || fail "--cold: $(booted)"
    vb run --cold --snapshot x "$T/p.yaml"
    expect_rc 2
    expect_err_has "pick one"
    expect_clean
}

test_damaged_warm_snapshot_one_notice() {
    snap_setup
    vb snapshot warm
    expect_rc 0
    local id; id=$(tail -1 <<<"$out")
    [[ "$id" =~ ^[0-9a-f]{64}$ ]] || fail "snapshot warm printed '$out'"
    local d=$XDG_CACHE_HOME/voidbox/snapshots/$id
    chmod u+w "$d/state"
    printf 'XXXX' | dd of="$d/state" bs=1 seek=100 conv=notrunc status=none
    cat >"$T/p.yaml" <<'EOF'
api_version: v1
kind: pipeline
name: damaged
pipeline:
  boxes:
    - {name: only, run: {program: echo, args: [ran]}}
EOF
    vb run "$T/p.yaml"
    expect_rc 0
    expect_out ran
    [ "$(grep -c "could not be restored" "$T/err")" = 1 ] || fail "not one notice: $err"
    expect_err_has "voidbox: stage only: warm snapshot ${id:0:12} could not be restored (snapshot ${id:0:12} is damaged: 'state' does not match its digest); booted cold"
    grep -q "^only cold - - .* notice$" <<<"$(booted)" || fail "event: $(booted)"
    vb logs --last
    grep -q "booted cold in [0-9]* ms, .*; warm snapshot ${id:0:12} could not be restored" <<<"$out" ||
        fail "logs: $out"
    [ ! -e "$d" ] || fail "the damaged snapshot is still there"
    wait_warm # the run started a maker for a new one
    expect_clean
}

test_named_snapshot_missing_or_damaged_fails() {
    snap_setup
    cat >"$T/p.yaml" <<'EOF'
api_version: v1
kind: pipeline
name: missing
pipeline:
  boxes:
    - {name: first, sandbox: {snapshot: none}, run: {program: "true"}}
    - {name: second, sandbox: {snapshot: nosuch}, run: {program: "true"}}
EOF
    vb run "$T/p.yaml"
    expect_rc 125
    expect_err_has "box 'second': sandbox.snapshot: no snapshot 'nosuch'"
    # before any VM boots: not even the first box ran, no run was recorded
    ! grep -q "stage first" "$T/err" || fail "a stage started: $err"
    [ -z "$(ls "$XDG_STATE_HOME/voidbox/runs" 2>/dev/null)" ] || fail "a run was recorded"
    vb run --snapshot nosuch "$T/p.yaml"
    expect_rc 125
    expect_err_has "no snapshot 'nosuch'"
    # a directory outside the store is none of its snapshots
    sed -i "s|snapshot: nosuch|snapshot: $T|" "$T/p.yaml"
    vb run "$T/p.yaml"
    expect_rc 2
    expect_err_has "is not a snapshot of the store"
    # what a restore cannot give that only the run knows (--snapshot,
    # --mount): refused before anything boots
    create tools true
    cat >"$T/q.yaml" <<'EOF'
api_version: v1
kind: pipeline
name: q
pipeline:
  boxes:
    - {name: only, run: {program: "true"}}
EOF
    vb run --snapshot tools --mount "$T:/a" --mount "$T:/b" --mount "$T:/c" --mount "$T:/d" \
        --mount "$T:/e" "$T/q.yaml"
    expect_rc 2
    expect_err_has "box 'only': --snapshot: a VM restored from a snapshot cannot have 5 mounts"
    [ -z "$(ls "$XDG_STATE_HOME/voidbox/runs" 2>/dev/null)" ] || fail "a run was recorded"
    # one of another VM configuration fails its stage, naming both
    cat >"$T/r.yaml" <<'EOF'
api_version: v1
kind: workflow
name: other
sandbox: {snapshot: tools, memory_mb: 512}
workflow:
  steps:
    - {name: one, run: {program: "true"}}
EOF
    vb run "$T/r.yaml"
    expect_rc 125
    expect_err_has "the workflow's VM was not restored: snapshot ${id:0:12} was taken with another VM configuration (memory=1024"
    # the store's directory of a snapshot names it
    sed -i "s|snapshot: $T|snapshot: $XDG_CACHE_HOME/voidbox/snapshots/$id|; s|snapshot: none|snapshot: tools|" "$T/p.yaml"
    # a damaged one fails its stage with the reason: never a cold boot instead
    local d=$XDG_CACHE_HOME/voidbox/snapshots/$id
    chmod u+w "$d/state"
    printf 'XXXX' | dd of="$d/state" bs=1 seek=100 conv=notrunc status=none
    vb run "$T/p.yaml"
    expect_rc 125
    expect_err_has "box 'first' failed: VM not restored: snapshot ${id:0:12} is damaged: 'state' does not match its digest"
    [ -z "$(booted)" ] || fail "a VM started: $(booted)"
    expect_clean
}

test_validate_refuses_what_a_restore_cannot_give() {
    cat >"$T/bad.yaml" <<'EOF'
api_version: v1
kind: pipeline
name: bad
pipeline:
  boxes:
    - name: a
      sandbox:
        snapshot: tools
        limits: {nofile: 64}
      run: {program: "true"}
EOF
    vb validate "$T/bad.yaml"
    expect_rc 2
    expect_err_has "bad.yaml:8:19: pipeline.boxes[0].sandbox.snapshot: restored from a snapshot: sandbox.limits.nofile (line 9) cannot apply"
    vb run "$T/bad.yaml"
    expect_rc 2
    expect_err_has "bad.yaml:8:19:"
    sed -i 's/snapshot: tools/snapshot: none/' "$T/bad.yaml"
    vb validate "$T/bad.yaml"
    expect_rc 0
}

test_shell_snapshot_and_cold() {
    snap_setup
    create tools sh -c 'echo from-setup > /etc/setup-mark'
    vb_in $'cat /etc/setup-mark\n' shell --snapshot tools
    expect_rc 0 # EOF on stdin: the guest's ^D ends the shell
    grep -q '^from-setup' <<<"$out" || fail "the setup's file: $out"
    grep -q "^voidbox: boot: restored from ${id:0:12} in [0-9]* ms$" "$T/err" || fail "not restored: $err"
    # a kind: sandbox spec's sandbox.snapshot, and --cold over it
    cat >"$T/box.yaml" <<'EOF'
api_version: v1
kind: sandbox
name: box
sandbox: {snapshot: tools}
EOF
    vb_in '' shell "$T/box.yaml" -- cat /etc/setup-mark
    expect_rc 0
    [ "$(tr -d '\r' <<<"$out")" = from-setup ] || fail "the spec's snapshot: $out"
    expect_err_has "voidbox: boot: restored from ${id:0:12} in "
    vb_in '' shell "$T/box.yaml" --cold -- sh -c 'test -e /etc/setup-mark && echo marked || echo clean'
    expect_rc 0
    [ "$(tr -d '\r' <<<"$out")" = clean ] || fail "--cold: $out"
    ! grep -q "restored" "$T/err" || fail "--cold restored: $err"
    vb_in '' shell --snapshot nosuch -- true
    expect_rc 125
    expect_err_has "--snapshot: no snapshot 'nosuch'"
    vb_in '' shell --snapshot tools -v "$T:/a" -v "$T:/b" -v "$T:/c" -v "$T:/d" -v "$T:/e" -- true
    expect_rc 2
    expect_err_has "--snapshot: a VM restored from a snapshot cannot have 5 mounts"
    expect_clean
}

# `snapshot create --spec FILE`: the VM of the spec's top-level sandbox
# (memory, vCPUs; its env in the setup), which the spec's stages restore
# (a snapshot of 1024 MiB would be refused by a 512 MiB stage); what a
# restore cannot give is refused before any VM boots.
test_create_from_a_spec() {
    snap_setup
    cat >"$T/s.yaml" <<'EOF'
api_version: v1
kind: pipeline
name: fromspec
sandbox:
  memory_mb: 512
  env:
    GREETING: hello-from-spec
pipeline:
  boxes:
    - name: a
      sandbox: {snapshot: fromspec}
      run: {program: sh, args: ["-c", "cat /etc/setup; grep MemTotal /proc/meminfo"]}
EOF
    vb snapshot create --spec "$T/s.yaml" --name fromspec -- sh -c 'echo "$GREETING" > /etc/setup'
    expect_rc 0
    local id; id=$(tail -1 <<<"$out")
    vb snapshot inspect fromspec
    grep -q 'memory=512 ' <<<"$out" || fail "not a 512 MiB VM: $out"
    vb run "$T/s.yaml"
    expect_rc 0
    grep -q "^hello-from-spec$" <<<"$out" || fail "the setup's env or file: $out"
    local kb; kb=$(awk '/MemTotal/ {print $2}' <<<"$out")
    [ -n "$kb" ] && [ "$kb" -lt 524288 ] && [ "$kb" -gt 262144 ] || fail "MemTotal $kb kB for 512 MiB"
    grep -qE "stage a: running on .*, restored from ${id:0:12} in [0-9]+ ms$" "$T/err" || fail "not restored: $err"
    # options override the spec: this one is 1024 MiB, and the stage refuses it
    vb snapshot create --spec "$T/s.yaml" --memory 1024 --name big -- true
    expect_rc 0
    sed -i 's/snapshot: fromspec/snapshot: big/' "$T/s.yaml"
    vb run "$T/s.yaml"
    [ "$rc" -ne 0 ] || fail "a 512 MiB stage restored a 1024 MiB snapshot"
    # a spec whose VM a restore cannot give, and --from with --spec
    cat >"$T/bad.yaml" <<'EOF'
api_version: v1
kind: sandbox
name: limited
sandbox:
  limits: {nofile: 256}
EOF
    vb snapshot create --spec "$T/bad.yaml" -- true
    expect_rc 2
    expect_err_has "--spec: a VM restored from a snapshot cannot have sandbox.limits"
    vb snapshot create --spec "$T/s.yaml" --from fromspec -- true
    expect_rc 2
    expect_err_has "--from or --spec"
    vb snapshot list
    [ "$(grep -c '^[0-9a-f]\{12\} ' <<<"$out")" = 2 ] || fail "a refused create stored something: $out"
    expect_clean
}

run_tests
