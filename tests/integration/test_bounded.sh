#!/usr/bin/env bash
# What a guest can make the host keep is bounded (issue 7, "Bounded
# outputs" and "Bounded records"): huge outputs live in files and the
# results hold previews, a run has an output budget and a fan-out carry
# cap, and events.jsonl stays small however a stage writes.  Real VMs
# (TCG here), small ones, few at once.
TEST_TIMEOUT=${TEST_TIMEOUT:-600}   # eight boxes of 32 MiB each under TCG
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

# The sanitizer build keeps freed memory in quarantine: keep it small, so
# that what is measured is what VoidBox holds.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16"

spec() { cat >"$T/$1.yaml"; }

jqx() {
    jq -e "$1" >/dev/null <<<"$out" || fail "jq '$1' is not true on: $(head -c 800 <<<"$out")"
}

# The most host memory voidbox itself may use in these tests (its own
# VmHWM, not QEMU's): outputs are streamed through buffers of about 1 MiB
# a box.  Before outputs went to files one 32 MiB box took ~1 GB.
hwm_limit_kb() {
    if nm "$VB" 2>/dev/null | grep -q '__asan_init'; then
        echo $((256 * 1024))    # ASAN's shadow memory and allocator
    else
        echo $((64 * 1024))
    fi
}

# vb_hwm ARGS...: like vb, and sets $hwm to voidbox's peak resident set
# (VmHWM, kB) sampled from /proc/PID/status while it runs.  VmHWM only
# grows, so the last sample before exit is the peak but for growth in the
# last few milliseconds.
vb_hwm() {
    "$VB" "$@" >"$T/out" 2>"$T/err" </dev/null &
    local pid=$! k v _
    hwm=0
    while [ -r "/proc/$pid/status" ]; do
        while read -r k v _; do
            [ "$k" = VmHWM: ] && hwm=$v
        done <"/proc/$pid/status" 2>/dev/null
        sleep 0.02
    done
    wait "$pid"
    rc=$?
    out=$(cat "$T/out"); err=$(cat "$T/err")
    check_sanitizers
}

expect_hwm_bounded() {
    local lim; lim=$(hwm_limit_kb)
    [ "$hwm" -gt 0 ] || fail "no VmHWM sampled"
    [ "$hwm" -le "$lim" ] || fail "voidbox peaked at $hwm kB, over the bound of $lim kB"
}

size_of() { stat -c %s "$1"; }

# A box that writes 32 MiB of byte 0x01 (6 bytes each as JSON text).
ctl_box() {
    echo "    - {name: $1, run: {program: sh, args: [\"-c\", \"head -c 33554432 /dev/zero | tr '\\\\000' '\\\\001' > /workspace/output.json\"]}}"
}

test_a_32mib_control_character_output_stays_bounded() {
    { cat <<'EOF'
api_version: v1
kind: pipeline
name: ctl
sandbox: {memory_mb: 128}
pipeline:
  boxes:
EOF
      ctl_box ctl; } | spec p
    vb_hwm run -q --output json "$T/p.yaml"
    expect_rc 0
    expect_hwm_bounded
    # the result says how much there is and where; it holds a preview
    jqx '.success and .output_bytes == 33554432 and .output_truncated'
    jqx '(.output | length) == 16384 and (.output | test("^\u0001+$"))'
    jqx '.stages[0].output_bytes == 33554432 and .stages[0].output_path == .output_path'
    local path; path=$(jq -r .output_path <<<"$out")
    [ "$(size_of "$path")" -eq 33554432 ] || fail "$path holds $(size_of "$path") bytes"
    [ "$(tr -d '\001' <"$path" | wc -c)" -eq 0 ] || fail "$path is not all 0x01"
    case $path in "$XDG_STATE_HOME"/voidbox/runs/*/stages/ctl/output) ;; *) fail "output_path $path";; esac
    # result.json: two previews of at most 16 KiB, 6 bytes a byte as JSON
    local res; res=$(echo "$XDG_STATE_HOME"/voidbox/runs/*/result.json)
    [ "$(size_of "$res")" -le $((256 * 1024)) ] || fail "result.json is $(size_of "$res") bytes"
    expect_clean
}

test_a_fan_out_of_8_such_boxes_stays_bounded() {
    { cat <<'EOF'
api_version: v1
kind: pipeline
name: fan8
sandbox: {memory_mb: 128}
pipeline:
  boxes:
EOF
      for i in 1 2 3 4 5 6 7 8; do ctl_box "c$i"; done
      cat <<'EOF'
    - {name: after, run: {program: wc, args: ["-c", "/workspace/input.json"]}}
  stages:
    - {type: fan_out, boxes: [c1, c2, c3, c4, c5, c6, c7, c8]}
    - {type: box, name: after}
EOF
    } | spec p
    vb_hwm run -q --max-parallel 2 --output json "$T/p.yaml"
    # 8 x 32 MiB fit the default budget of 256 MiB; as one JSON array
    # (1.5 GB) they would not fit the fan-out carry cap
    expect_rc 1
    expect_hwm_bounded
    expect_err_has "its boxes' outputs as one JSON array would be larger than 64 MiB, the most a fan-out can carry"
    jqx '[.stages[] | select(.name != "after") | .success and .output_bytes == 33554432] | length == 8 and all'
    jqx '.stages[8] | .skipped and (.error | test("fan-out"))'
    local run; run=$(echo "$XDG_STATE_HOME"/voidbox/runs/*)
    [ "$(size_of "$run/result.json")" -le $((1024 * 1024)) ] ||
        fail "result.json is $(size_of "$run/result.json") bytes"
    # no half-written array is left behind
    [ -z "$(ls -A "$run/carries" 2>/dev/null)" ] || fail "carries left: $(ls "$run/carries")"
    expect_clean
}

test_the_output_budget_fails_the_box_that_goes_past_it() {
    spec p <<'EOF'
api_version: v1
kind: pipeline
name: budget
sandbox: {memory_mb: 128}
pipeline:
  boxes:
    - {name: two, run: {program: sh, args: ["-c", "head -c 2097152 /dev/zero | tr '\\000' a"]}}
EOF
    # within the budget: `run` prints the whole output, not the preview
    vb run -q --output-budget 4M "$T/p.yaml"
    expect_rc 0
    [ "$(size_of "$T/out")" -eq 2097153 ] || fail "printed $(size_of "$T/out") bytes"
    [ "$(tr -d a <"$T/out")" = "" ] || fail "printed something else"
    vb run -q --output-budget 1M "$T/p.yaml"
    expect_rc 1
    expect_err_has "box 'two' failed: the run's output budget of 1 MiB is used up"
    vb run --output-budget 0 "$T/p.yaml"
    expect_rc 2
    expect_err_has "--output-budget 0: expected a size"
    # output_file counts too: two boxes of 600 KiB within 1 MiB
    spec q <<'EOF'
api_version: v1
kind: pipeline
name: budget2
sandbox: {memory_mb: 128}
pipeline:
  boxes:
    - {name: one, run: {program: sh, args: ["-c", "head -c 614400 /dev/zero > /workspace/output.json"]}}
    - {name: other, run: {program: sh, args: ["-c", "head -c 614400 /dev/zero > /workspace/output.json"]}}
EOF
    vb run -q --output-budget 1M --output json "$T/q.yaml"
    expect_rc 1
    jqx '.stages[0].success and (.stages[1].error | test("output budget of 1 MiB is used up"))'
    expect_clean
}

test_byte_at_a_time_stderr_keeps_events_small() {
    # one write() a byte for 20 s: the log has every byte, events.jsonl a
    # line a second or so
    spec p <<'EOF'
api_version: v1
kind: pipeline
name: drip
sandbox: {memory_mb: 128}
pipeline:
  boxes:
    - name: drip
      run: {program: sh, args: ["-c", "trap 'exit 0' TERM; (sleep 20; kill $$$$) & while :; do printf x >&2; done"]}
EOF
    vb run -q "$T/p.yaml"
    expect_rc 0
    local run; run=$(echo "$XDG_STATE_HOME"/voidbox/runs/*)
    local ev=$run/events.jsonl log=$run/stages/drip/stderr.log
    local bytes; bytes=$(size_of "$log")
    [ "$bytes" -ge 2000 ] || fail "only $bytes bytes written: not a test of many small writes"
    [ "$(size_of "$ev")" -le $((32 * 1024)) ] || fail "events.jsonl is $(size_of "$ev") bytes for $bytes bytes of stderr"
    local lines; lines=$(jq -s '[.[] | select(.event == "log.chunk")] | length' "$ev")
    [ "$lines" -le 50 ] || fail "$lines log.chunk lines in about 20 s"
    # every byte is counted: in the chunk lines and in stage.completed
    jq -s -e --argjson n "$bytes" '([.[] | select(.event == "log.chunk" and .stream == "stderr") | .len] | add) == $n' "$ev" >/dev/null ||
        fail "log.chunk lens do not add up to $bytes"
    jq -s -e --argjson n "$bytes" '.[] | select(.event == "stage.completed") | .stderr_bytes == $n' "$ev" >/dev/null ||
        fail "stage.completed does not count $bytes bytes: $(grep stage.completed "$ev")"
    # and the log is what `voidbox logs` shows
    vb logs --last --stage drip --stderr
    expect_rc 0
    [ "$(size_of "$T/out")" -eq "$bytes" ] || fail "logs printed $(size_of "$T/out") of $bytes bytes"
    expect_clean
}

test_outputs_in_files_keep_the_carry_rules() {
    # stdout and output_file both 600 KiB: the output_file is the output,
    # and the stdout nobody reads is given back to a budget of 1 MiB
    spec p <<'EOF'
api_version: v1
kind: pipeline
name: files
sandbox: {memory_mb: 128}
pipeline:
  boxes:
    - {name: both, run: {program: sh, args: ["-c", "head -c 614400 /dev/zero | tr '\\000' s; head -c 614400 /dev/zero | tr '\\000' o > /workspace/output.json"]}}
EOF
    vb run -q --output-budget 1M --output json "$T/p.yaml"
    expect_rc 0
    jqx '.output_bytes == 614400 and (.output | test("^o+$"))'
    local run; run=$(echo "$XDG_STATE_HOME"/voidbox/runs/*)
    [ ! -e "$run/stages/both/stdout.carry" ] || fail "unread stdout kept"
    [ "$(size_of "$run/stages/both/stdout.log")" -eq 614400 ] || fail "stdout.log incomplete"
    rm -rf "${XDG_STATE_HOME:?}/voidbox/runs"
    # a later box reads the stdout (stdin_from) and gets the output_file
    # as its input.json: both from their files
    spec q <<'EOF'
api_version: v1
kind: pipeline
name: files2
sandbox: {memory_mb: 128}
pipeline:
  boxes:
    - {name: both, run: {program: sh, args: ["-c", "head -c 614400 /dev/zero | tr '\\000' s; head -c 614401 /dev/zero | tr '\\000' o > /workspace/output.json"]}}
    - {name: reader, run: {program: sh, args: ["-c", "tr -d s | wc -c; tr -d o < /workspace/input.json | wc -c; wc -c < /workspace/input.json"], stdin_from: both}}
EOF
    vb run -q "$T/q.yaml"
    expect_rc 0
    expect_out "$(printf '0\n0\n614401')"
    run=$(echo "$XDG_STATE_HOME"/voidbox/runs/*)
    [ "$(size_of "$run/stages/both/stdout.carry")" -eq 614400 ] || fail "read stdout not kept"
    expect_clean
}

run_tests
