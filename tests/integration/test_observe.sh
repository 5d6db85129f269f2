#!/usr/bin/env bash
# `voidbox ps` and `voidbox logs` on run records written by hand (every
# state, prefixes, unknown ids, --follow), then on the records of real runs
# (examples/hello-pipeline.yaml, and a run watched while it is running).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

# (run_tests passes functions to each test, not variables: export these)
export TZ=UTC
export T0=1714564984000            # 2024-05-01T12:03:04Z
export DEAD_PID=2147483646         # no such process

# mkrun ID NAME PID: a run record by hand; events.jsonl from stdin, where
# @ID@ stands for the id.  PID 0 writes no meta.json.
mkrun() {
    local id=$1 name=$2 pid=$3
    local d="$XDG_STATE_HOME/voidbox/runs/$id"
    mkdir -p "$d/stages"
    if [ "$pid" != 0 ]; then
        printf '{"run_id":"%s","name":"%s","kind":"pipeline","pid":%s,"started":"2024-05-01T12:03:04Z","started_ms":%s,"version":"0.1.0"}\n' \
            "$id" "$name" "$pid" "$T0" >"$d/meta.json"
    fi
    sed "s/@ID@/$id/g" >"$d/events.jsonl"
}

# ev EVENT MS [JSON-FIELDS]: one events.jsonl line
ev() {
    printf '{"event":"%s","time":"x","time_ms":%s,"run_id":"@ID@"%s}\n' "$1" $((T0 + $2)) "${3:+,$3}"
}

finished_run() { # ID NAME SUCCESS
    {
        ev run.started 0 '"name":"'"$2"'","kind":"pipeline"'
        ev stage.queued 1 '"stage":"build"'
        ev stage.started 2 '"stage":"build"'
        ev vm.booted 1302 '"stage":"build","vm_id":"vm-aaa111","accel":"tcg","isolation":"emulated","kernel":"6.1.0","boot_id":"b-1","boot_ms":1300'
        ev log.chunk 1400 '"stage":"build","stream":"stdout","len":6,"data":"built\n"'
        ev log.chunk 1401 '"stage":"build","stream":"stderr","len":5,"data_b64":"AP9hYgo="'
        if [ "$3" = true ]; then
            ev stage.completed 2100 '"stage":"build","exit_code":0,"duration_ms":2098,"output_bytes":6'
            ev run.finished 2200 '"success":true,"duration_ms":2200,"error":null'
        else
            ev stage.failed 2100 '"stage":"build","exit_code":3,"duration_ms":2098,"error":"exit code 3"'
            ev run.finished 2200 '"success":false,"duration_ms":2200,"error":"stage '"'build'"' failed: exit code 3"'
        fi
    } | mkrun "$1" "$2" "$DEAD_PID"
    local s="$XDG_STATE_HOME/voidbox/runs/$1/stages/build"
    mkdir -p "$s"
    printf 'built\n' >"$s/stdout.log"
    printf '\000\377ab\n' >"$s/stderr.log"
    printf 'built\n' >"$s/output"
}

running_run() { # ID PID: two VMs booted, one stage done
    {
        ev run.started 0 '"name":"live","kind":"pipeline"'
        ev stage.queued 1 '"stage":"one"'
        ev stage.queued 1 '"stage":"two"'
        ev stage.queued 1 '"stage":"three"'
        ev stage.started 2 '"stage":"one"'
        ev stage.started 2 '"stage":"two"'
        ev vm.booted 1000 '"stage":"one","vm_id":"vm-one111","accel":"tcg","isolation":"emulated","kernel":"k","boot_id":"b","boot_ms":998'
        ev vm.booted 1100 '"stage":"two","vm_id":"vm-two222","accel":"tcg","isolation":"emulated","kernel":"k","boot_id":"c","boot_ms":1098'
        ev stage.completed 1500 '"stage":"one","exit_code":0,"duration_ms":1498,"output_bytes":0'
        ev stage.started 1600 '"stage":"three"'
    } | mkrun "$1" live "$2"
}

# live_vm PID VM_ID NAME: the runtime directory of a live VM owned by PID,
# as the sandbox writes it (ps lists live VMs from there, not from events)
live_vm() {
    local root="$XDG_RUNTIME_DIR/voidbox-$(id -u)"
    mkdir -p -m 700 "$root" "$root/vm-$1-00000000000000aa"
    printf '{"vm_id":"%s","name":"%s","pid":%s,"started_ms":%s,"accel":"tcg","isolation":"emulated","command":"voidbox run x.yaml"}' \
        "$2" "$3" "$1" "$T0" >"$root/vm-$1-00000000000000aa/info.json"
}

test_ps_without_runs() {
    vb ps
    expect_rc 0
    [[ $out == "no runs recorded yet"* ]] || fail "ps: $out"
    vb ps --json
    expect_rc 0
    [ "$(jq -c . <<<"$out")" = "[]" ] || fail "ps --json: $out"
    vb ps --bogus
    expect_rc 2
    expect_err_has "--bogus"
}

test_ps_states_and_vms() {
    finished_run 20240501-120304-a00001 good true
    finished_run 20240501-120305-a00002 bad false
    { ev run.started 0 '"name":"stopped","kind":"pipeline"'; ev run.cancelled 900 '"duration_ms":900'; } |
        mkrun 20240501-120306-a00003 stopped "$DEAD_PID"
    { ev run.started 0 '"name":"gone","kind":"pipeline"'; ev stage.started 5 '"stage":"x"'; } |
        mkrun 20240501-120307-a00004 gone "$DEAD_PID"
    running_run 20240501-120308-a00005 $$
    live_vm $$ vm-two222 two
    vb ps
    expect_rc 0
    # newest first, one line a run (plus one per live VM)
    local ids
    ids=$(awk 'NR > 1 && /^2024/ {print $1}' <<<"$out" | tr '\n' ' ')
    [ "$ids" = "20240501-120308-a00005 20240501-120307-a00004 20240501-120306-a00003 20240501-120305-a00002 20240501-120304-a00001 " ] ||
        fail "order: $ids"
    grep -q '^ID  *NAME  *KIND  *STATE  *STARTED  *DURATION$' <<<"$out" || fail "header: $out"
    grep -qE '^20240501-120304-a00001  good +pipeline  succeeded  2024-05-01 12:03:04  2\.2s$' <<<"$out" || fail "succeeded: $out"
    grep -qE '^20240501-120305-a00002  bad +pipeline  failed ' <<<"$out" || fail "failed: $out"
    grep -qE '^20240501-120306-a00003  stopped +pipeline  cancelled .* 0\.9s$' <<<"$out" || fail "cancelled: $out"
    grep -qE '^20240501-120307-a00004  gone +pipeline  crashed ' <<<"$out" || fail "crashed: $out"
    grep -qE '^20240501-120308-a00005  live +pipeline  running ' <<<"$out" || fail "running: $out"
    # the live VMs: stage two's (one's is gone; three has not booted)
    grep -qE '^ +vm vm-two222  stage two  tcg, emulated$' <<<"$out" || fail "vm line: $out"
    ! grep -q 'vm-one111' <<<"$out" || fail "a completed stage's VM listed: $out"

    vb ps --json
    expect_rc 0
    jq -e 'length == 5' <<<"$out" >/dev/null || fail "json: $out"
    jq -e '.[0].run_id == "20240501-120308-a00005" and .[0].state == "running" and .[0].pid > 0
           and (.[0].vms | length) == 1 and .[0].vms[0].vm_id == "vm-two222"
           and .[0].vms[0].stage == "two" and .[0].vms[0].accel == "tcg"
           and .[0].vms[0].isolation == "emulated"' <<<"$out" >/dev/null || fail "running json: $out"
    jq -e '[.[].state] == ["running","crashed","cancelled","failed","succeeded"]' <<<"$out" >/dev/null ||
        fail "states: $out"
    jq -e '.[3].error == "stage '"'build'"' failed: exit code 3" and .[4].duration_ms == 2200
           and .[4].started == "2024-05-01T12:03:04Z" and .[4].name == "good" and .[4].kind == "pipeline"
           and .[4].vms == []' <<<"$out" >/dev/null || fail "finished json: $out"
}

test_ps_last_20_and_all() {
    local i
    for i in $(seq 1 25); do
        finished_run "$(printf '20240501-1203%02d-b%05d' "$i" "$i")" "run$i" true
    done
    # a directory that is not a run is ignored
    mkdir -p "$XDG_STATE_HOME/voidbox/runs/not-a-run"
    vb ps
    expect_rc 0
    [ "$(grep -c '^2024' <<<"$out")" -eq 20 ] || fail "default: $(grep -c '^2024' <<<"$out") runs"
    head -2 <<<"$out" | grep -q '^20240501-120325-b00025' || fail "newest first: $out"
    ! grep -q 'b00005' <<<"$out" || fail "older than the last 20 shown"
    vb ps --all
    expect_rc 0
    [ "$(grep -c '^2024' <<<"$out")" -eq 25 ] || fail "--all: $out"
    vb ps --all --json
    [ "$(jq length <<<"$out")" -eq 25 ] || fail "--all --json"
}

test_logs_human_and_json() {
    finished_run 20240501-120305-a00002 bad false
    vb logs 20240501-120305-a00002
    expect_rc 0
    local want
    want=$(cat <<'EOF'
run 20240501-120305-a00002: bad (pipeline), failed, started 2024-05-01 12:03:04 UTC
12:03:04.000  run.started      -             bad (pipeline)
12:03:04.001  stage.queued     build
12:03:04.002  stage.started    build
12:03:05.302  vm.booted        build         vm-aaa111 tcg/emulated, booted in 1300 ms, kernel 6.1.0, boot id b-1
12:03:05.400  log.chunk        build         stdout 6 bytes: built
12:03:05.401  log.chunk        build         stderr 5 bytes (binary)
12:03:06.100  stage.failed     build         exit 3 in 2.0s: exit code 3
12:03:06.200  run.finished     -             failed in 2.2s: stage 'build' failed: exit code 3
EOF
)
    [ "$out" = "$want" ] || fail "logs: $(diff <(echo "$want") <(echo "$out"))"
    vb logs --json 20240501-120305-a00002
    expect_rc 0
    [ "$out" = "$(cat "$XDG_STATE_HOME/voidbox/runs/20240501-120305-a00002/events.jsonl")" ] ||
        fail "--json is not events.jsonl: $out"
    # the void-box spelling
    vb logs --run-id 20240501-120305-a00002 --json
    expect_rc 0
    [ "$(wc -l <<<"$out")" -eq 8 ] || fail "--run-id: $out"
    # guest output never reaches the terminal raw: escapes are neutralised
    { ev run.started 0 '"name":"esc","kind":"pipeline"'
      ev log.chunk 5 '"stage":"s","stream":"stdout","len":9,"data":"\u001b[2Jboom\n"'
      ev stage.failed 6 '"stage":"s","exit_code":1,"duration_ms":1,"error":"bad \u001b]0;title\u0007"'; } |
        mkrun 20240501-120309-a00009 esc "$DEAD_PID"
    vb logs 20240501-120309
    expect_rc 0
    ! grep -q $'\033' "$T/out" || fail "an escape sequence went through: $(cat -v "$T/out")"
    grep -q 'stdout 9 bytes: ?\[2Jboom$' <<<"$out" || fail "escaped chunk: $out"
}

test_logs_prefix_and_unknown_ids() {
    finished_run 20240501-120304-a00001 one true
    finished_run 20240501-120304-a00002 two true
    finished_run 20240502-080000-c0ffee three true
    vb logs 20240502
    expect_rc 0
    grep -q '^run 20240502-080000-c0ffee: three' <<<"$out" || fail "prefix: $out"
    vb logs 20240501-120304-a0000
    expect_rc 2
    expect_err_has "ambiguous"
    expect_err_has "20240501-120304-a00001"
    expect_err_has "20240501-120304-a00002"
    vb logs 20991231
    expect_rc 2
    [ "$err" = "voidbox: no run '20991231' (see voidbox ps)" ] || fail "unknown: $err"
    vb logs ../../etc
    expect_rc 2
    expect_err_has "no run '../../etc' (see voidbox ps)"
    vb logs
    expect_rc 2
    expect_err_has "which run"
    vb logs a b
    expect_rc 2
    vb logs --frobnicate 2024
    expect_rc 2
    expect_err_has "--frobnicate"
    # no runs directory at all
    rm -rf "$XDG_STATE_HOME/voidbox"
    vb logs 2024
    expect_rc 2
    expect_err_has "no run '2024'"
}

test_logs_stage_logs() {
    finished_run 20240501-120304-a00001 good true
    vb logs 20240501-120304 --stage build
    expect_rc 0
    expect_out "built"
    "$VB" logs 20240501-120304 --stage build --stderr >"$T/bin" 2>"$T/err"
    rc=$?
    expect_rc 0
    cmp -s "$T/bin" <(printf '\000\377ab\n') || fail "stderr log not byte-exact: $(od -c "$T/bin")"
    vb logs 20240501-120304 --stage=build --output
    expect_rc 0
    expect_out "built"
    vb logs 20240501-120304 --stage nosuch
    expect_rc 2
    expect_err_has "has no stage 'nosuch'"
    vb logs 20240501-120304 --stage ../meta.json
    expect_rc 2
    expect_err_has "not a stage name"
    vb logs 20240501-120304 --stderr
    expect_rc 2
    # a stage that ran but wrote nothing: empty, not an error
    { ev run.started 0 '"name":"quiet","kind":"pipeline"'; ev stage.queued 1 '"stage":"mute"'
      ev run.finished 9 '"success":true,"duration_ms":9,"error":null'; } |
        mkrun 20240501-120310-a00010 quiet "$DEAD_PID"
    vb logs 20240501-120310 --stage mute
    expect_rc 0
    expect_out ""
}

test_logs_follow_until_final() {
    running_run 20240501-120308-a00005 $$
    local d="$XDG_STATE_HOME/voidbox/runs/20240501-120308-a00005"
    mkdir -p "$d/stages/three"
    (
        sleep 1
        printf 'late output\n' >>"$d/stages/three/stdout.log"
        ev stage.completed 3000 '"stage":"three","exit_code":0,"duration_ms":1400,"output_bytes":0' |
            sed 's/@ID@/20240501-120308-a00005/' >>"$d/events.jsonl"
        sleep 1
        ev run.finished 4000 '"success":true,"duration_ms":4000,"error":null' |
            sed 's/@ID@/20240501-120308-a00005/' >>"$d/events.jsonl"
    ) &
    local start=$SECONDS
    timeout 30 "$VB" logs --follow 20240501-120308 >"$T/out" 2>"$T/err"
    rc=$?
    expect_rc 0
    out=$(cat "$T/out")
    [ $((SECONDS - start)) -ge 1 ] || fail "returned before the run ended"
    tail -1 <<<"$out" | grep -q 'run.finished  *-  *succeeded in 4.0s' || fail "follow: $out"
    grep -q 'stage.completed  three' <<<"$out" || fail "follow missed a line: $out"
    wait
    # the stage log, followed: all of it, once the run has ended
    vb logs --follow 20240501-120308 --stage three
    expect_rc 0
    expect_out "late output"
    # --json follows too
    vb logs -F --json 20240501-120308
    expect_rc 0
    [ "$(wc -l <<<"$out")" -eq 12 ] || fail "json follow: $out"
}

test_logs_follow_stops_when_crashed() {
    sleep 0.1 & local pid=$!
    wait $pid
    { ev run.started 0 '"name":"gone","kind":"pipeline"'; ev stage.started 5 '"stage":"x"'; } |
        mkrun 20240501-120307-a00004 gone "$pid"
    timeout 20 "$VB" logs --follow 20240501-120307 >"$T/out" 2>"$T/err"
    rc=$?
    expect_rc 0
    expect_err_has "ended without a final event"
    [ "$(wc -l <"$T/out")" -eq 3 ] || fail "follow: $(cat "$T/out")"
}

# --- real runs (they boot VMs) ---------------------------------------------

test_hello_pipeline_record() {
    local spec="$VB_SRCDIR/examples/hello-pipeline.yaml"
    [ -f "$spec" ] || fail "missing $spec"
    vb run --quiet "$spec"
    expect_rc 0
    local dir id
    dir=$(ls -d "$XDG_STATE_HOME"/voidbox/runs/2*)
    id=$(basename "$dir")
    [ "$(wc -l <<<"$dir")" -eq 1 ] || fail "expected one run: $dir"
    local ev="$dir/events.jsonl"
    # every line a JSON object with the common fields
    jq -e -s 'all(.[]; has("event") and has("time") and has("time_ms") and .run_id == "'"$id"'")' "$ev" >/dev/null ||
        fail "common fields"
    jq -e -s '.[0].event == "run.started" and .[0].name == "hello-pipeline" and .[0].kind == "pipeline"
              and .[-1].event == "run.finished" and .[-1].success == true' "$ev" >/dev/null ||
        fail "first/last: $(head -c 600 "$ev")"
    # each stage: started, then its VM booted, then completed, in that order
    jq -e -s '
        . as $evs
        | def idx(e; s): [$evs | to_entries[] | select(.value.event == e and .value.stage == s) | .key] | first;
        [.[] | select(.event == "stage.queued") | .stage] as $stages
        | ($stages == ["produce", "left", "right", "report"])
          and all($stages[]; . as $s
                 | idx("stage.started"; $s) != null
                 and idx("stage.started"; $s) < idx("vm.booted"; $s)
                 and idx("vm.booted"; $s) < idx("stage.completed"; $s))' "$ev" >/dev/null ||
        fail "stage order: $(jq -c '[.event, .stage]' "$ev" | tr '\n' ' ')"
    jq -e -s '[.[] | select(.event == "vm.booted")] | length == 4
              and all(.[]; (.vm_id | startswith("vm-")) and (.accel == "kvm" or .accel == "tcg")
                      and (.isolation == "hardware" or .isolation == "emulated")
                      and (.boot_id | length) > 0 and .boot_ms > 0)' "$ev" >/dev/null ||
        fail "vm.booted fields"
    [ -s "$dir/result.json" ] && jq -e '.success == true' "$dir/result.json" >/dev/null || fail "result.json"
    [ "$(cat "$dir/stages/produce/output")" = "$(cat "$dir/stages/produce/stdout.log")" ] || fail "produce output"
    grep -q 'distinct boot ids for 4 VMs' "$dir/stages/report/stdout.log" || fail "report log"

    vb logs "${id:0:17}"
    expect_rc 0
    grep -q "^run $id: hello-pipeline (pipeline), succeeded" <<<"$out" || fail "logs header: $out"
    [ "$(grep -c ' vm.booted ' <<<"$out")" -eq 4 ] || fail "logs: $out"
    tail -1 <<<"$out" | grep -q 'run.finished  *-  *succeeded in' || fail "logs end: $out"
    vb logs "$id" --stage report
    expect_rc 0
    grep -q 'distinct boot ids for 4 VMs' <<<"$out" || fail "stage log: $out"
    vb ps
    expect_rc 0
    grep -qE "^$id  hello-pipeline  pipeline  succeeded " <<<"$out" || fail "ps: $out"
    expect_clean
}

test_ps_shows_a_running_run_and_its_vm() {
    cat >"$T/slow.yaml" <<'EOF'
api_version: v1
kind: pipeline
name: slow
sandbox: {memory_mb: 256}
pipeline:
  boxes:
    - name: nap
      run: {program: sh, args: ["-c", "sleep 8; echo rested"]}
EOF
    "$VB" run --quiet "$T/slow.yaml" >"$T/run.out" 2>"$T/run.err" </dev/null &
    local runpid=$! i seen=
    for i in $(seq 1 300); do
        vb ps --json
        if jq -e '.[0].state == "running" and (.[0].vms | length) == 1' <<<"$out" >/dev/null; then
            seen=1
            break
        fi
        sleep 0.2
    done
    [ -n "$seen" ] || fail "never saw the run with its VM: $out"
    jq -e '.[0].name == "slow" and .[0].vms[0].stage == "nap" and (.[0].vms[0].vm_id | startswith("vm-"))' \
        <<<"$out" >/dev/null || fail "ps --json: $out"
    vb ps
    grep -qE '^ +vm vm-[0-9a-f]+  stage nap  (kvm|tcg)' <<<"$out" || fail "ps: $out"
    # follow it to the end
    vb ps --json
    local id
    id=$(jq -r '.[0].run_id' <<<"$out")
    timeout 60 "$VB" logs --follow "$id" >"$T/follow" 2>"$T/err"
    rc=$?
    expect_rc 0
    tail -1 "$T/follow" | grep -q 'run.finished .*succeeded' || fail "follow: $(cat "$T/follow")"
    wait "$runpid" || fail "run failed: $(cat "$T/run.err")"
    [ "$(cat "$T/run.out")" = "rested" ] || fail "run output: $(cat "$T/run.out")"
    vb ps --json
    jq -e '.[0].state == "succeeded" and .[0].vms == []' <<<"$out" >/dev/null || fail "after: $out"
    expect_clean
}

VB_SRCDIR=$(cd "$here/../.." && pwd)
export VB_SRCDIR
run_tests
