#!/usr/bin/env bash
# The named outputs quota as a user meets it: a writer that goes past
# limits.outputs_mb is stopped, the host keeps at most the quota plus the
# stated slack, the stage fails naming the output and the quota, later
# stages do not run; outputs under the quota still reach later boxes.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

spec() { cat >"$T/$1.yaml"; }
jqx() {
    jq -e "$1" >/dev/null <<<"$out" || fail "jq '$1' is not true on: $(head -c 800 <<<"$out")"
}

# What the slack may be (docs/run.md): QEMU's burst (a tenth of a second
# at 64 MiB/s) and 10 ms of writes before the VM is frozen, rounded up.
slack() { echo $((8 << 20)); }

# out_dir NAME: the run's named output directory NAME
out_dir() { echo "$XDG_STATE_HOME"/voidbox/runs/*/outputs/"$1"; }

# bytes DIR: what DIR costs the host, the larger of apparent size and disk use
bytes() {
    local a d
    a=$(du -sb "$1" | cut -f1); d=$(du -s --block-size=1 "$1" | cut -f1)
    echo $((a > d ? a : d))
}

test_the_quota_stops_a_writer() {
    spec p <<'EOF'
api_version: v1
kind: pipeline
name: flood
sandbox: {memory_mb: 256, limits: {fsize_mb: 4096, outputs_mb: 20}}
pipeline:
  boxes:
    - name: fill
      outputs: [{name: big}]
      run: {program: dd, args: ["if=/dev/zero", "of=/workspace/output/zero", "bs=1M", "count=3000"]}
    - name: after
      inputs: [{from: big}]
      run: {program: ls, args: ["-l", "/workspace/input"]}
EOF
    vb run --output json "$T/p.yaml"
    expect_rc 1
    jqx '.success == false and (.error | startswith("box '"'fill'"' failed: output '"'big'"' is over its quota: "))'
    jqx '.stages[0].error | test("MiB written, limits.outputs_mb is 20; the VM was stopped$")'
    jqx '.stages[1].skipped and .stages[1].error == "'"'fill'"' failed"'
    local d used
    d=$(out_dir big)
    used=$(bytes "$d")
    [ "$used" -gt $((20 << 20)) ] || fail "stopped before the quota? $used bytes"
    [ "$used" -le $(((20 << 20) + $(slack))) ] || fail "$used bytes on the host, quota 20 MiB + slack"
    sleep 1 # nothing is still writing
    [ "$(bytes "$d")" = "$used" ] || fail "the output still grows after the run"
    expect_clean
    # the human form says the same, once, naming the output and the quota
    vb run "$T/p.yaml"
    expect_rc 1
    expect_err_has "voidbox: box 'fill' failed: output 'big' is over its quota:"
    expect_err_has "limits.outputs_mb is 20"
}

test_background_writers_count_too() {
    # a writer in its own session, beyond the program's process group
    spec p <<'EOF'
api_version: v1
kind: pipeline
name: background
sandbox: {memory_mb: 256, limits: {fsize_mb: 4096, outputs_mb: 10}}
pipeline:
  boxes:
    - name: spawn
      outputs: [{name: o}]
      run: {program: sh, args: ["-c", "setsid dd if=/dev/zero of=/workspace/output/z bs=64k count=100000 >/dev/null 2>&1 & sleep 3; echo done"]}
EOF
    vb run --output json "$T/p.yaml"
    expect_rc 1
    jqx '.stages[0].error | startswith("output '"'o'"' is over its quota: ")'
    local used
    used=$(bytes "$(out_dir o)")
    [ "$used" -le $(((10 << 20) + $(slack))) ] || fail "$used bytes on the host, quota 10 MiB + slack"
    expect_clean
}

test_going_over_just_before_exiting_fails_too() {
    # a sparse file (no data for the write counter to see), then exit 0 at
    # once: the watcher's next measurement or the last one (the VM frozen
    # after the exit), whichever comes first, still fails the box
    spec p <<'EOF'
api_version: v1
kind: pipeline
name: late
sandbox: {memory_mb: 256, limits: {fsize_mb: 4096, outputs_mb: 10}}
pipeline:
  boxes:
    - name: quick
      outputs: [{name: o}]
      run: {program: sh, args: ["-c", "truncate -s 11M /workspace/output/h; exit ${CODE}"]}
EOF
    # whether the program then succeeds or fails, the quota is the cause
    for code in 0 3; do
        CODE=$code vb run --output json "$T/p.yaml"
        expect_rc 1
        jqx '.stages[0].error | startswith("output '"'o'"' is over its quota: 11.0 MiB written, limits.outputs_mb is 10")'
    done
    expect_clean
}

test_a_sparse_file_counts_at_its_size_and_the_default_is_1_gib() {
    # no outputs_mb: 1024 MiB; a sparse file costs what a copy would
    spec p <<'EOF'
api_version: v1
kind: pipeline
name: sparse
sandbox: {memory_mb: 256, limits: {fsize_mb: 4096}}
pipeline:
  boxes:
    - name: holey
      outputs: [{name: o}]
      run: {program: sh, args: ["-c", "truncate -s ${SIZE} /workspace/output/hole && sleep 2 && echo wrote"]}
EOF
    SIZE=1000M vb run --output json "$T/p.yaml"
    expect_rc 0
    jqx '.output == "wrote\n"'
    rm -rf "$XDG_STATE_HOME/voidbox/runs"
    SIZE=1025M vb run --output json "$T/p.yaml"
    expect_rc 1
    jqx '.stages[0].error | test("^output '"'o'"' is over its quota: 1025[.]0 MiB written, limits.outputs_mb is 1024")'
    expect_clean
}

test_outputs_under_the_quota_reach_later_boxes() {
    spec p <<'EOF'
api_version: v1
kind: pipeline
name: flow
sandbox: {memory_mb: 256, limits: {outputs_mb: 8}}
pipeline:
  boxes:
    - name: make
      outputs: [{name: a}, {name: b, guest: /workspace/b}]
      run: {program: sh, args: ["-c", "head -c 5000000 /dev/zero > /workspace/output/five && mkdir -p /workspace/b/sub && echo hi > /workspace/b/sub/x"]}
    - name: use
      inputs: [{from: a}, {from: b, guest: /in/b}]
      run: {program: sh, args: ["-c", "wc -c < /workspace/input/five; cat /in/b/sub/x"]}
EOF
    vb run "$T/p.yaml"
    expect_rc 0
    expect_out $'5000000\nhi'
    [ "$(stat -c %s "$(out_dir a)/five")" = 5000000 ] || fail "no 5 MB file on the host"
    expect_clean
}

test_the_quota_covers_all_of_a_box_s_outputs() {
    # 5 + 5 MB: each is under 8 MiB, together they are not
    spec p <<'EOF'
api_version: v1
kind: pipeline
name: together
sandbox: {memory_mb: 256, limits: {outputs_mb: 8}}
pipeline:
  boxes:
    - name: make
      outputs: [{name: a}, {name: b, guest: /workspace/b}]
      run: {program: sh, args: ["-c", "head -c 5000000 /dev/zero > /workspace/output/f; head -c 6000000 /dev/zero > /workspace/b/f; sleep 1"]}
EOF
    vb run --output json "$T/p.yaml"
    expect_rc 1
    # named: the output that holds the most when the watcher saw it
    jqx '.stages[0].error | test("^output .(a|b). is over its quota: [0-9.]+ MiB written to the box.s outputs in all [(].(a|b). holds [0-9.]+ MiB[)], limits.outputs_mb is 8")'
    expect_clean
}

test_outputs_mb_is_checked_before_anything_runs() {
    spec p <<'EOF'
api_version: v1
kind: pipeline
name: bad
sandbox: {limits: {outputs_mb: 0}}
pipeline:
  boxes:
    - {name: a, outputs: [{name: o}], run: {program: "true"}, sandbox: {limits: {outputs_mb: 2000000}}}
EOF
    vb validate "$T/p.yaml"
    expect_rc 2
    expect_err_has "sandbox.limits.outputs_mb"
    expect_err_has "pipeline.boxes[0].sandbox.limits.outputs_mb"
    vb run "$T/p.yaml"
    expect_rc 2
}

run_tests
