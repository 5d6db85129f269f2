#!/usr/bin/env bash
# The lifecycle verbs: `voidbox ps` listing VMs of every kind, `stop`, `rm`,
# `prune`, run ids by their random suffix, `logs --last`, and the flags these
# verbs share.  Most tests use records and VM runtime directories written by
# hand, with ordinary processes standing in for their voidbox owners; the
# last ones boot real VMs (voidbox exec, voidbox run).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

# (run_tests passes functions to each test, not variables: export these)
export TZ=UTC
export T0=1714564984000            # 2024-05-01T12:03:04Z, long ago
export DEAD_PID=2147483646         # no such process

runs_dir() { echo "$XDG_STATE_HOME/voidbox/runs"; }

# mkrun ID NAME PID [START_MS]: a run record by hand, events from stdin
# (@ID@ stands for the id).  With a live PID, meta.json carries its start
# time, as voidbox writes it.
mkrun() {
    local id=$1 name=$2 pid=$3 t=${4:-$T0} d start=
    d="$(runs_dir)/$id"
    mkdir -p "$d/stages"
    [ -r "/proc/$pid/stat" ] && start=",\"pid_start\":$(awk '{print $22}' "/proc/$pid/stat")"
    printf '{"run_id":"%s","name":"%s","kind":"pipeline","pid":%s%s,"started_ms":%s,"version":"0.1.0"}\n' \
        "$id" "$name" "$pid" "$start" "$t" >"$d/meta.json"
    sed "s/@ID@/$id/g" >"$d/events.jsonl"
}

# ev EVENT MS [JSON-FIELDS] [BASE_MS]: one events.jsonl line
ev() {
    printf '{"event":"%s","time":"x","time_ms":%s,"run_id":"@ID@"%s}\n' "$1" $((${4:-$T0} + $2)) "${3:+,$3}"
}

finished_run() { # ID NAME [BASE_MS]
    { ev run.started 0 '"name":"'"$2"'","kind":"pipeline"' "${3:-$T0}"
      ev run.finished 2200 '"success":true,"duration_ms":2200,"error":null' "${3:-$T0}"; } |
        mkrun "$1" "$2" "$DEAD_PID" "${3:-$T0}"
    printf 'built\n' >"$(runs_dir)/$1/stages/out.log"
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# A process standing in for `voidbox run ID`: on SIGTERM it records
# run.cancelled, as voidbox does, and exits; with "ignore" it ignores
# SIGTERM.  Sets $owner.
start_owner() {
    local id=$1 mode=${2:-}
    local ev_file
    ev_file="$(runs_dir)/$id/events.jsonl"
    mkdir -p "$(runs_dir)/$id"
    if [ "$mode" = ignore ]; then
        bash -c 'trap "" TERM; while :; do sleep 0.1; done' &
    else
        EV_FILE=$ev_file RUN=$id bash -c 'trap '\''printf "{\"event\":\"run.cancelled\",\"time\":\"x\",\"time_ms\":%s,\"run_id\":\"%s\",\"duration_ms\":5}\n" $(($(date +%s) * 1000)) "$RUN" >>"$EV_FILE"; exit 143'\'' TERM
                 while :; do sleep 0.1; done' &
    fi
    owner=$!
    sleep 0.2
}

# fake_vm PID HEX NAME COMMAND: a VM runtime directory as the sandbox
# writes it, owned by process PID.
fake_vm() {
    local pid=$1 hex=$2 name=$3 cmd=$4 root start
    root="$XDG_RUNTIME_DIR/voidbox-$(id -u)"
    mkdir -p -m 700 "$root" "$root/vm-$pid-$hex"
    start=$(awk '{print $22}' "/proc/$pid/stat" 2>/dev/null || echo 1)
    printf '{"vm_id":"vm-%s","name":%s,"pid":%s,"pid_start":%s,"vmm_pid":1,"started_ms":%s,"accel":"tcg","isolation":"emulated","command":"%s"}' \
        "${hex:0:12}" "$name" "$pid" "$start" "$(now_ms)" "$cmd" >"$root/vm-$pid-$hex/info.json"
}

expect_unknown_option() { # VERB OPTION: the one wording every verb uses
    vb "$1" "$2"
    expect_rc 2
    [ "$(head -1 <<<"$err")" = "voidbox: $1: unknown option '$2' (see 'voidbox $1 --help')" ] ||
        fail "$1 $2: $err"
}

expect_missing_value() { # VERB OPTION
    vb "$1" "$2"
    expect_rc 2
    [ "$err" = "voidbox: $1: option '$2' needs a value (see 'voidbox $1 --help')" ] ||
        fail "$1 $2: $err"
}

# ---- flags --------------------------------------------------------------

test_every_lifecycle_verb_rejects_unknown_options() {
    local verb
    for verb in ps logs stop rm prune; do
        expect_unknown_option "$verb" --bogus
        expect_unknown_option "$verb" -Z
    done
    # an option missing its value says so
    expect_missing_value logs --stage
    expect_missing_value logs -o
    expect_missing_value ps -o
    expect_missing_value stop --timeout
    expect_missing_value prune --older-than
    vb prune --older-tahn 1d
    expect_rc 2
    expect_err_has "did you mean '--older-than'?"
    for verb in ps logs stop rm prune; do
        vb "$verb" --help
        expect_rc 0
        [[ $out == "usage: voidbox $verb"* ]] || fail "$verb --help: $out"
    done
}

test_short_f_means_file_only() {
    finished_run 20240501-120304-a00001 one
    # -f is --file (run, validate, inspect): logs follows with -F, rm forces with --force
    vb logs -f 20240501-120304-a00001
    expect_rc 2
    [ "$err" = "voidbox: logs: unknown option '-f' (see 'voidbox logs --help')
voidbox: to follow a run: voidbox logs -F (--follow)" ] || fail "logs -f: $err"
    vb rm -f 20240501-120304-a00001
    expect_rc 2
    expect_err_has "to delete a running run: voidbox rm --force"
    [ -d "$(runs_dir)/20240501-120304-a00001" ] || fail "rm -f removed something"
    vb logs -F 20240501-120304-a00001
    expect_rc 0
    tail -1 <<<"$out" | grep -q 'run.finished .*succeeded' || fail "logs -F: $out"
    vb logs --help
    grep -q -- '-F, --follow' <<<"$out" || fail "help: $out"
}

test_output_json_on_ps_and_logs() {
    finished_run 20240501-120304-a00001 one
    vb logs --json 20240501-120304-a00001
    local want=$out
    [ "$(wc -l <<<"$want")" -eq 2 ] || fail "--json: $want"
    for f in "-o json" "--output json" "--output=json" "-ojson"; do
        # shellcheck disable=SC2086
        vb logs $f 20240501-120304-a00001
        expect_rc 0
        [ "$out" = "$want" ] || fail "logs $f: $out"
    done
    vb ps --json
    want=$out
    jq -e '.[0].run_id == "20240501-120304-a00001"' <<<"$want" >/dev/null || fail "ps --json: $want"
    for f in "-o json" "--output json" "--output=json"; do
        # shellcheck disable=SC2086
        vb ps $f
        expect_rc 0
        [ "$out" = "$want" ] || fail "ps $f: $out"
    done
    for f in human text; do
        vb ps -o $f
        expect_rc 0
        grep -q '^ID  *NAME  *KIND  *STATE' <<<"$out" || fail "ps -o $f: $out"
    done
    vb ps -o yaml
    expect_rc 2
    expect_err_has "ps: --output must be text or json, not 'yaml'"
    # the stage's carried output, once spelled --output, is --carried
    mkdir -p "$(runs_dir)/20240501-120304-a00001/stages/build"
    printf 'carried\n' >"$(runs_dir)/20240501-120304-a00001/stages/build/output"
    vb logs --stage build --carried 20240501-120304-a00001
    expect_rc 0
    expect_out carried
    vb logs --stage build --output 20240501-120304-a00001
    expect_rc 0
    expect_out carried
    vb logs --stage build -o json 20240501-120304-a00001
    expect_rc 2
}

# ---- ids ------------------------------------------------------------------

test_run_ids_by_suffix_and_last() {
    finished_run 20240501-120304-5fcaaa one
    finished_run 20240501-120305-77caaa two
    finished_run 20240502-080000-c0ffee three
    vb logs c0ffee
    expect_rc 0
    grep -q '^run 20240502-080000-c0ffee: three' <<<"$out" || fail "suffix: $out"
    vb logs ffee
    expect_rc 0
    grep -q '^run 20240502-080000-c0ffee' <<<"$out" || fail "tail of suffix: $out"
    vb logs 5fcaaa
    expect_rc 0
    grep -q '^run 20240501-120304-5fcaaa' <<<"$out" || fail "suffix: $out"
    # ambiguous: both candidates named, nothing shown
    vb logs caaa
    expect_rc 2
    expect_err_has "run id 'caaa' is ambiguous: 2 runs match"
    expect_err_has "20240501-120304-5fcaaa"
    expect_err_has "20240501-120305-77caaa"
    [ -z "$out" ] || fail "ambiguous printed: $out"
    # prefixes still work
    vb logs 20240501-120305
    expect_rc 0
    grep -q '^run 20240501-120305-77caaa' <<<"$out" || fail "prefix: $out"
    # --last: the newest by start time
    vb logs --last
    expect_rc 0
    grep -q '^run 20240502-080000-c0ffee' <<<"$out" || fail "--last: $out"
    vb logs --last --json
    expect_rc 0
    [ "$(jq -r .run_id <<<"$(head -1 <<<"$out")")" = 20240502-080000-c0ffee ] || fail "--last --json: $out"
    vb logs --last c0ffee
    expect_rc 2
    expect_err_has "one run at a time"
    rm -rf "$XDG_STATE_HOME/voidbox"
    vb logs --last
    expect_rc 2
    expect_err_has "no runs recorded yet"
}

# ---- ps -------------------------------------------------------------------

test_ps_lists_vms_of_every_kind() {
    sleep 300 & local exec_owner=$!
    sleep 300 & local lib_owner=$!
    fake_vm "$exec_owner" 0123456789abcdef null "/usr/bin/voidbox exec -m 256 -- sleep 300"
    fake_vm "$lib_owner" fedcba9876543210 '"worker\u001b[31m"' "./my-program --serve"
    # a VM of a running run: listed under it, by its owner's pid
    start_owner 20240501-120304-a00001
    { ev run.started 0 '"name":"live","kind":"pipeline"'; } | mkrun 20240501-120304-a00001 live "$owner" "$(now_ms)"
    fake_vm "$owner" aaaabbbbccccdddd '"nap"' "voidbox run slow.yaml"
    # a dead owner's directory, and a reused pid (another start time): not listed
    fake_vm "$DEAD_PID" 1111111111111111 null "voidbox exec -- true"
    fake_vm $$ 2222222222222222 null "voidbox exec -- true"
    sed -i 's/"pid_start":[0-9]*/"pid_start":1/' "$XDG_RUNTIME_DIR/voidbox-$(id -u)/vm-$$-2222222222222222/info.json"
    finished_run 20240501-120300-a00000 old

    vb ps
    expect_rc 0
    grep -qE '^vm-0123456789ab  +-  +exec  +running  ' <<<"$out" || fail "exec VM: $out"
    grep -qE "^ +pid $exec_owner  tcg, emulated  /usr/bin/voidbox exec -m 256 -- sleep 300$" <<<"$out" ||
        fail "exec VM details: $out"
    # a name with an escape sequence reaches the terminal defused
    grep -qE '^vm-fedcba987654  +worker\?\[31m +vm  +running' <<<"$out" || fail "library VM: $out"
    ! grep -q $'\e' <<<"$out" || fail "raw escape on the terminal"
    grep -qE '^20240501-120304-a00001  live +pipeline  running ' <<<"$out" || fail "run: $out"
    grep -qE '^ +vm vm-aaaabbbbcccc  stage nap  tcg, emulated$' <<<"$out" || fail "run's VM: $out"
    [ "$(grep -c 'vm-aaaabbbbcccc' <<<"$out")" -eq 1 ] || fail "run's VM listed twice: $out"
    ! grep -q 'vm-111111111111\|vm-222222222222' <<<"$out" || fail "dead or reused owners listed: $out"
    grep -qE '^20240501-120300-a00000  old ' <<<"$out" || fail "finished run: $out"

    vb ps -o json
    expect_rc 0
    jq -e --argjson p "$exec_owner" '[.[] | select(.vm_id == "vm-0123456789ab")][0]
        | .kind == "exec" and .state == "running" and .pid == $p and .run_id == null
          and .accel == "tcg" and (.command | startswith("/usr/bin/voidbox exec"))' <<<"$out" >/dev/null ||
        fail "exec VM json: $out"
    jq -e '[.[] | select(.run_id == "20240501-120304-a00001")][0].vms
        == [{"vm_id":"vm-aaaabbbbcccc","stage":"nap","accel":"tcg","isolation":"emulated","net":null}]' <<<"$out" >/dev/null ||
        fail "run VM json: $out"
    jq -e 'length == 4' <<<"$out" >/dev/null || fail "entries: $out"
    kill "$exec_owner" "$lib_owner" "$owner"
}

test_ps_and_prune_read_only_the_tail_of_big_logs() {
    # 64 GiB of (sparse) log data before the last event, in a finished run
    # and in a running one (no final event: its state comes from its
    # process, its VMs from their runtime directories): reading either
    # whole would take minutes
    local id=20240501-120304-b16b16 live=20240501-120305-b16b17 f last
    finished_run "$id" big
    start_owner "$live"
    { ev run.started 0 '"name":"biglive","kind":"pipeline"'; ev stage.started 5 '"stage":"x"'; } |
        mkrun "$live" biglive "$owner" "$(now_ms)"
    for f in "$(runs_dir)/$id/events.jsonl" "$(runs_dir)/$live/events.jsonl"; do
        last=$(tail -1 "$f")
        head -1 "$f" >"$f.new"
        truncate -s 64G "$f.new"
        printf '\n%s\n' "$last" >>"$f.new"
        mv "$f.new" "$f"
    done
    SECONDS=0
    vb ps
    expect_rc 0
    grep -qE "^$id  big +pipeline  succeeded " <<<"$out" || fail "ps: $out"
    grep -qE "^$live  biglive +pipeline  running " <<<"$out" || fail "ps: $out"
    vb prune --all --dry-run
    expect_rc 0
    grep -q "would remove run $id (succeeded" <<<"$out" || fail "prune: $out"
    ! grep -q "$live" <<<"$out" || fail "prune would remove a running run: $out"
    vb stop "$live"
    expect_rc 0
    expect_out "stopped run $live (cancelled)"
    [ "$SECONDS" -lt 10 ] || fail "took ${SECONDS}s: a whole file was read"
}

# ---- stop -----------------------------------------------------------------

test_stop_a_run_by_suffix() {
    local id=20240501-120304-5f0a11
    start_owner "$id"
    { ev run.started 0 '"name":"live","kind":"pipeline"'; } | mkrun "$id" live "$owner" "$(now_ms)"
    vb ps -o json
    jq -e '.[0].state == "running"' <<<"$out" >/dev/null || fail "not running: $out"
    vb stop 5f0a11
    expect_rc 0
    expect_out "stopped run $id (cancelled)"
    ! kill -0 "$owner" 2>/dev/null || fail "owner still running"
    vb ps -o json
    jq -e '.[0].state == "cancelled"' <<<"$out" >/dev/null || fail "after: $out"
    # again: it had ended; still success
    vb stop "$id"
    expect_rc 0
    expect_out "run $id had already ended (cancelled)"
}

test_stop_a_vm_and_timeouts() {
    sleep 300 & local a=$!
    fake_vm "$a" 0123456789abcdef null "voidbox exec -- sleep 300"
    # an owner that ignores SIGTERM: bounded wait, exit 1, nothing killed
    local id=20240501-120304-0bd0bd
    start_owner "$id" ignore
    { ev run.started 0 '"name":"stubborn","kind":"pipeline"'; } | mkrun "$id" stubborn "$owner" "$(now_ms)"
    SECONDS=0
    vb stop --timeout 1 0bd0bd vm-0123
    expect_rc 1
    [ "$SECONDS" -lt 5 ] || fail "waited ${SECONDS}s"
    expect_out "stopped vm-0123456789ab (pid $a: voidbox exec -- sleep 300)"
    expect_err_has "run $id is still running after 1 s (pid $owner): try again, or 'kill -KILL $owner'"
    kill -0 "$owner" || fail "stop killed the stubborn owner"
    ! kill -0 "$a" 2>/dev/null || fail "VM owner still running"
    kill -9 "$owner"
}

test_stop_unknown_and_ambiguous() {
    sleep 300 & local a=$!
    fake_vm "$a" abc100000000aaaa null "voidbox exec -- sleep 300"
    fake_vm "$a" abc2aac0ffee0000 null "voidbox exec -- sleep 300"
    finished_run 20240501-120304-c0ffee one
    vb stop
    expect_rc 2
    expect_err_has "which run or VM?"
    vb stop nosuch
    expect_rc 2
    [ "$err" = "voidbox: no run or VM 'nosuch' (see voidbox ps)" ] || fail "unknown: $err"
    vb stop vm-abc
    expect_rc 2
    expect_err_has "VM id 'vm-abc' is ambiguous: 2 VMs match ("
    expect_err_has "vm-abc100000000"
    expect_err_has "vm-abc2aac0ffee"
    # a run's suffix and a VM's tail at once
    vb stop c0ffee
    expect_rc 2
    expect_err_has "'c0ffee' is ambiguous: run 20240501-120304-c0ffee and vm-abc2aac0ffee match"
    # an unknown id among known ones: nothing is stopped
    vb stop vm-abc1 nosuch
    expect_rc 2
    kill -0 "$a" || fail "something was stopped"
    # the VM's hex digits alone, a prefix of them
    vb stop abc1
    expect_rc 0
    expect_out "stopped vm-abc100000000 (pid $a: voidbox exec -- sleep 300)"
}

# ---- rm -------------------------------------------------------------------

test_rm_runs() {
    finished_run 20240501-120304-a00001 one
    finished_run 20240501-120305-a00002 two
    finished_run 20240501-120306-a00003 three
    start_owner 20240501-120307-a00004
    { ev run.started 0 '"name":"live","kind":"pipeline"'; } | mkrun 20240501-120307-a00004 live "$owner" "$(now_ms)"
    vb rm
    expect_rc 2
    # an unknown id: nothing removed
    vb rm a00001 nosuch
    expect_rc 2
    expect_err_has "no run 'nosuch'"
    [ -d "$(runs_dir)/20240501-120304-a00001" ] || fail "removed despite the unknown id"
    vb rm a00001 20240501-120305
    expect_rc 0
    grep -qE '^removed run 20240501-120304-a00001 \([0-9.]+ (B|KiB)\)$' <<<"$out" || fail "rm: $out"
    grep -q '^removed run 20240501-120305-a00002 ' <<<"$out" || fail "rm: $out"
    [ ! -e "$(runs_dir)/20240501-120304-a00001" ] && [ ! -e "$(runs_dir)/20240501-120305-a00002" ] ||
        fail "still there"
    # running: refused without --force, the others still go
    vb rm a00004 a00003
    expect_rc 1
    expect_err_has "run 20240501-120307-a00004 is running: stop it first (voidbox stop 20240501-120307-a00004), or rm --force"
    [ -d "$(runs_dir)/20240501-120307-a00004" ] || fail "a running run was removed"
    [ ! -e "$(runs_dir)/20240501-120306-a00003" ] || fail "a00003 not removed"
    kill -0 "$owner" || fail "refusing stopped the run"
    vb rm --force a00004
    expect_rc 0
    grep -q '^stopped run 20240501-120307-a00004' <<<"$out" || fail "--force: $out"
    grep -q '^removed run 20240501-120307-a00004' <<<"$out" || fail "--force: $out"
    ! kill -0 "$owner" 2>/dev/null || fail "owner still running"
    [ ! -e "$(runs_dir)/20240501-120307-a00004" ] || fail "still there"
    vb ps -o json
    [ "$(jq -c . <<<"$out")" = "[]" ] || fail "ps: $out"
}

# ---- prune ----------------------------------------------------------------

test_prune_runs_and_vm_logs() {
    local now logs
    now=$(now_ms)
    finished_run 20240501-120304-a00001 old                          # long ago
    finished_run 20240501-120305-a00002 old2
    { ev run.started 0 '"name":"gone","kind":"pipeline"'; } | mkrun 20240501-120306-a00003 gone "$DEAD_PID"  # crashed
    finished_run "$(date -u +%Y%m%d-%H%M%S)-a00004" fresh "$now"    # just now
    start_owner 20240501-120300-a00005                                 # running, old start
    { ev run.started 0 '"name":"live","kind":"pipeline"'; } | mkrun 20240501-120300-a00005 live "$owner"
    logs="$XDG_STATE_HOME/voidbox/vm-logs"
    mkdir -p "$logs"
    head -c 10000 /dev/zero >"$logs/vm-0000000000a1.console.log"
    touch -d '3 days ago' "$logs/vm-0000000000a1.console.log"
    echo new >"$logs/vm-0000000000a2.console.log"
    echo mine >"$logs/notes.txt"
    touch -d '3 days ago' "$logs/notes.txt"

    vb prune --older-than 2x
    expect_rc 2
    expect_err_has "--older-than: expected N followed by s, m, h, d or w"
    vb prune --all --older-than 1d
    expect_rc 2

    vb prune --dry-run
    expect_rc 0
    grep -q '^would remove run 20240501-120304-a00001 (succeeded, ' <<<"$out" || fail "dry: $out"
    grep -q '^would remove run 20240501-120306-a00003 (crashed, ' <<<"$out" || fail "dry: $out"
    grep -q '^would remove vm-log vm-0000000000a1.console.log (12.0 KiB)$' <<<"$out" ||
        grep -q '^would remove vm-log vm-0000000000a1.console.log (' <<<"$out" || fail "dry: $out"
    grep -qE '^would prune 3 runs and 1 VM log: [0-9.]+ KiB would be freed$' <<<"$out" || fail "dry total: $out"
    [ -d "$(runs_dir)/20240501-120304-a00001" ] && [ -f "$logs/vm-0000000000a1.console.log" ] ||
        fail "--dry-run removed something"

    # default: older than a day
    vb prune
    expect_rc 0
    grep -qE '^pruned 3 runs and 1 VM log: [0-9.]+ KiB freed$' <<<"$out" || fail "prune: $out"
    [ "$(ls "$(runs_dir)" | sort | tr '\n' ' ')" = "20240501-120300-a00005 $(ls "$(runs_dir)" | grep a00004) " ] ||
        fail "left: $(ls "$(runs_dir)")"
    [ ! -e "$logs/vm-0000000000a1.console.log" ] && [ -f "$logs/vm-0000000000a2.console.log" ] ||
        fail "vm-logs: $(ls "$logs")"
    [ -f "$logs/notes.txt" ] || fail "a file that is not a VM log was removed"
    vb prune
    expect_rc 0
    [[ $out == "nothing to prune"* ]] || fail "again: $out"
    vb prune --older-than 1h
    [[ $out == "nothing to prune"* ]] || fail "1h: $out"

    # --all: whatever the age; never a running run
    vb prune --all
    expect_rc 0
    grep -qE '^pruned 1 run and 1 VM log: ' <<<"$out" || fail "--all: $out"
    [ "$(ls "$(runs_dir)")" = "20240501-120300-a00005" ] || fail "left: $(ls "$(runs_dir)")"
    kill "$owner"
}

# ---- real VMs ---------------------------------------------------------------

test_ps_and_stop_a_real_exec_vm() {
    "$VB" exec -e VB_TEST_TOKEN=hunter2 -- sleep 120 >"$T/exec.out" 2>"$T/exec.err" </dev/null &
    local pid=$! i vm=
    for i in $(seq 1 300); do
        vb ps -o json
        vm=$(jq -r '[.[] | select(.kind == "exec")][0].vm_id // empty' <<<"$out")
        [ -n "$vm" ] && break
        sleep 0.2
    done
    [ -n "$vm" ] || fail "never saw the exec VM: $out"
    jq -e --argjson p "$pid" '.[0].pid == $p and .[0].state == "running" and .[0].run_id == null
        and (.[0].command | test("exec -e VB_TEST_TOKEN=\\.\\.\\. -- sleep 120$"))' <<<"$out" >/dev/null ||
        fail "ps json: $out"
    ! grep -q hunter2 "$XDG_RUNTIME_DIR"/voidbox-"$(id -u)"/vm-"$pid"-*/info.json || fail "the -e value was recorded"
    local f="$XDG_RUNTIME_DIR/voidbox-$(id -u)/vm-$pid-"*/info.json
    # shellcheck disable=SC2086
    [ "$(stat -c %a $f)" = 600 ] || fail "info.json mode: $(stat -c %a $f)"
    vb ps
    grep -qE "^$vm  +-  +exec  +running " <<<"$out" || fail "ps: $out"
    vb stop "${vm: -6}"
    expect_rc 0
    [[ $out == "stopped $vm (pid $pid: "* ]] || fail "stop: $out"
    wait "$pid"
    [ $? -eq 143 ] || fail "exec exit code $? (stderr: $(cat "$T/exec.err"))"
    vb ps -o json
    [ "$(jq -c . <<<"$out")" = "[]" ] || fail "after: $out"
    expect_clean
}

test_stop_a_real_run() {
    cat >"$T/slow.yaml" <<'EOF'
api_version: v1
kind: pipeline
name: slow
sandbox: {memory_mb: 256}
pipeline:
  boxes:
    - name: nap
      run: {program: sleep, args: ["120"]}
EOF
    "$VB" run --quiet "$T/slow.yaml" >"$T/run.out" 2>"$T/run.err" </dev/null &
    local runpid=$! i id=
    for i in $(seq 1 300); do
        vb ps -o json
        if jq -e '.[0].state == "running" and (.[0].vms | length) == 1' <<<"$out" >/dev/null; then
            id=$(jq -r '.[0].run_id' <<<"$out")
            break
        fi
        sleep 0.2
    done
    [ -n "$id" ] || fail "never saw the run with its VM: $out"
    jq -e '.[0].vms[0].stage == "nap" and length == 1' <<<"$out" >/dev/null || fail "ps: $out"
    # stopping the run's VM stops the run
    local vm
    vm=$(jq -r '.[0].vms[0].vm_id' <<<"$out")
    vb stop "$vm"
    expect_rc 0
    expect_out "stopped $vm (and its run $id, pid $runpid)"
    wait "$runpid"
    [ $? -ne 0 ] || fail "the run succeeded"
    vb ps -o json
    jq -e --arg id "$id" '.[0].run_id == $id and .[0].state == "cancelled" and .[0].vms == []' <<<"$out" >/dev/null ||
        fail "after: $out"
    vb logs --last
    tail -1 <<<"$out" | grep -q 'run.cancelled' || fail "logs --last: $out"
    expect_clean
}

run_tests
