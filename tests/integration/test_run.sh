#!/usr/bin/env bash
# `voidbox run` as a user runs it: pipelines (every box a fresh VM, TCG
# here), workflows (one VM), results, records, cancellation, the C API.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
ROOT=$(cd "$here/../.." && pwd); export ROOT

# spec NAME: write stdin to $T/NAME.yaml
spec() { cat >"$T/$1.yaml"; }

# jqx FILTER: evaluate FILTER on $out (JSON), fail when it is not true
jqx() {
    jq -e "$1" >/dev/null <<<"$out" || fail "jq '$1' is not true on: $(head -c 800 <<<"$out")"
}

test_pipe_carries_output_and_input_reaches_first_stage() {
    spec p <<'EOF'
api_version: v1
kind: pipeline
name: carry
sandbox: {memory_mb: 256}
pipeline:
  boxes:
    - name: first
      run: {program: sh, args: ["-c", "printf 'got:'; cat /workspace/input.json"]}
    - name: second
      run: {program: sh, args: ["-c", "echo ignored; printf '%s|' \"$(cat /workspace/input.json)\" > /workspace/output.json"]}
    - name: third
      output_file: /workspace/none.json
      run: {program: sh, args: ["-c", "cat /workspace/input.json; echo .; : > /workspace/output.json"]}
EOF
    vb run --input 'hello' "$T/p.yaml"
    expect_rc 0
    # first: stdout; second: its non-empty output_file wins over stdout;
    # third: the missing output_file counts as empty, so stdout
    expect_out 'got:hello|.'
    expect_clean
}

test_a_box_in_two_stages_runs_twice_and_stdin_from() {
    spec p <<'EOF'
api_version: v1
kind: pipeline
name: twice
sandbox: {memory_mb: 256}
pipeline:
  boxes:
    - {name: inc, run: {program: sh, args: ["-c", "echo $(( $(cat /workspace/input.json 2>/dev/null || echo 0) + 1 ))"]}}
    - {name: show, run: {program: sed, args: ["s/^/stdin:/"], stdin_from: inc}}
  stages:
    - {type: box, name: inc}
    - {type: box, name: inc}
    - {type: box, name: show}
EOF
    vb run --output json "$T/p.yaml"
    expect_rc 0
    # stdin_from takes the latest run of the box before this stage
    jqx '[.stages[] | .name + "=" + .output] == ["inc=1\n", "inc=2\n", "show=stdin:2\n"]'
    jqx '[.stages[] | .vm_id] | unique | length == 3'
}

test_fan_out_order_and_real_parallelism() {
    spec f <<'EOF'
api_version: v1
kind: pipeline
name: fan
sandbox: {memory_mb: 256}
pipeline:
  boxes:
    - {name: a, run: {program: sh, args: ["-c", "sleep 4; echo '{\"box\": \"a\"}'"]}}
    - {name: b, run: {program: sh, args: ["-c", "sleep 3; echo plain b"]}}
    - {name: c, run: {program: sh, args: ["-c", "sleep 2; echo 42"]}}
    - {name: d, run: {program: cat, args: ["/workspace/input.json"]}}
  stages:
    - {type: fan_out, boxes: [a, b, c]}
    - {type: box, name: d}
EOF
    vb run --max-parallel 3 "$T/f.yaml"
    expect_rc 0
    # declaration order, not completion order; JSON embedded, text as strings
    expect_out '[{"box":"a"},"plain b\n",42]'
    # Real parallelism, robust to a loaded machine: the three branches (boot
    # + sleep each) all ran at one moment, and the fan-out took well under
    # the sum of the branch times (serially it would take all of it).
    local ev=$(echo "$XDG_STATE_HOME"/voidbox/runs/*/events.jsonl) t
    t=$(jq -s -r '[.[] | select(.stage != "d")] as $e |
        [$e[] | select(.event == "stage.started") | .time_ms] as $s |
        [$e[] | select(.event == "stage.completed") | .time_ms] as $c |
        "\($s | max) \($c | min) \(($c | max) - ($s | min)) \(($c | add) - ($s | add))"' "$ev")
    read -r last_start first_end wall sum <<<"$t"
    echo "  fan-out of sleep 4/3/2: ${wall} ms wall, ${sum} ms summed over the branches" >&2
    [ "$last_start" -lt "$first_end" ] || fail "the branches never all ran at once"
    [ $((wall * 10)) -lt $((sum * 6)) ] || fail "wall $wall ms is not well under the sum $sum ms"
    expect_clean
}

test_max_parallel_bounds_the_fan_out() {
    spec f <<'EOF'
api_version: v1
kind: pipeline
name: bound
sandbox: {memory_mb: 256}
pipeline:
  boxes:
    - {name: a, run: {program: sleep, args: ["3"]}}
    - {name: b, run: {program: sleep, args: ["3"]}}
  stages:
    - {type: fan_out, boxes: [a, b]}
EOF
    vb run --max-parallel 1 "$T/f.yaml"
    expect_rc 0
    # one at a time: b boots only after a is done
    local ev=$XDG_STATE_HOME/voidbox/runs/*/events.jsonl
    jq -s -e '(map(select(.event=="stage.completed" and .stage=="a"))[0].time_ms) <=
              (map(select(.event=="stage.started" and .stage=="b"))[0].time_ms)' $ev >/dev/null ||
        fail "b started before a finished with --max-parallel 1"
}

test_a_file_written_in_one_stage_is_absent_in_the_next() {
    spec p <<'EOF'
api_version: v1
kind: pipeline
name: isolation
sandbox: {memory_mb: 256}
pipeline:
  boxes:
    - name: writer
      run: {program: sh, args: ["-c", "echo s > /workspace/secret; echo s > /tmp/secret; echo s > /home/sandbox/secret; cat /proc/sys/kernel/random/boot_id"]}
    - name: reader
      run: {program: sh, args: ["-c", "for f in /workspace/secret /tmp/secret /home/sandbox/secret; do [ -e $f ] && echo present $f; done; echo prev $(cat /workspace/input.json); echo mine $(cat /proc/sys/kernel/random/boot_id); ls /workspace"]}
EOF
    vb run "$T/p.yaml"
    expect_rc 0
    ! grep -q present <<<"$out" || fail "stage 1's file crossed over: $out"
    local prev mine
    prev=$(sed -n 's/^prev //p' <<<"$out"); mine=$(sed -n 's/^mine //p' <<<"$out")
    [ -n "$prev" ] && [ -n "$mine" ] && [ "$prev" != "$mine" ] || fail "same VM? $out"
    [ "$(tail -n1 <<<"$out")" = "input.json" ] || fail "workspace holds more than input.json: $out"
}

test_named_outputs_and_read_only_inputs() {
    spec p <<'EOF'
api_version: v1
kind: pipeline
name: outputs
sandbox: {memory_mb: 256}
pipeline:
  boxes:
    - name: make
      outputs: [{name: artifacts}, {name: other, guest: /workspace/other}]
      run: {program: sh, args: ["-c", "echo built > /workspace/output/a.txt && echo x > /workspace/other/o.txt"]}
    - name: use
      inputs: [{from: artifacts, guest: /in}]
      run: {program: sh, args: ["-c", "cat /in/a.txt; if echo no > /in/b.txt 2>/dev/null; then echo WRITABLE; else echo refused; fi; [ -e /workspace/other ] || echo no-other"]}
EOF
    vb run "$T/p.yaml"
    expect_rc 0
    expect_out $'built\nrefused\nno-other'
    local d
    d=$(echo "$XDG_STATE_HOME"/voidbox/runs/*/outputs)
    [ "$(cat "$d/artifacts/a.txt")" = built ] || fail "no artifacts/a.txt under $d"
    [ -f "$d/other/o.txt" ] || fail "no other/o.txt under $d"
    [ ! -e "$d/artifacts/b.txt" ] || fail "the ro input was written on the host"
}

test_a_failing_box_fails_the_run_and_names_itself() {
    spec p <<'EOF'
api_version: v1
kind: pipeline
name: failing
sandbox: {memory_mb: 256}
pipeline:
  boxes:
    - {name: ok-sibling, run: {program: sh, args: ["-c", "sleep 2; echo fine"]}}
    - {name: breaker, run: {program: sh, args: ["-c", "echo partial; exit 3"]}}
    - {name: later, run: {program: echo, args: ["never"]}}
  stages:
    - {type: fan_out, boxes: [ok-sibling, breaker]}
    - {type: box, name: later}
EOF
    vb run --output json "$T/p.yaml"
    expect_rc 1
    expect_err_has "box 'breaker' failed: exit code 3"
    jqx '.success == false and .output == ""'
    # siblings finish; later stages are skipped
    jqx '.stages[0].name == "ok-sibling" and .stages[0].success and .stages[0].output == "fine\n"'
    jqx '.stages[1].name == "breaker" and (.stages[1].success | not) and .stages[1].exit_code == 3'
    jqx '.stages[2].name == "later" and (.stages[2].success | not) and .stages[2].exit_code == -1 and .stages[2].vm_id == ""'
    grep -q '"event":"stage.skipped".*"stage":"later"' "$XDG_STATE_HOME"/voidbox/runs/*/events.jsonl ||
        fail "no stage.skipped for 'later'"
    # a program that is not there: 127, still a stage failure
    spec q <<'EOF'
api_version: v1
kind: pipeline
name: missing
pipeline:
  boxes:
    - {name: ghost, sandbox: {memory_mb: 256}, run: {program: no-such-program}}
EOF
    vb run "$T/q.yaml"
    expect_rc 1
    expect_err_has "box 'ghost' failed: exit code 127"
    expect_clean
}

test_timeouts() {
    spec p <<'EOF'
api_version: v1
kind: pipeline
name: slow
pipeline:
  boxes:
    - {name: sleeper, timeout_secs: 2, sandbox: {memory_mb: 256}, run: {program: sleep, args: ["60"]}}
EOF
    local t0=$SECONDS
    vb run --output json "$T/p.yaml"
    expect_rc 1
    expect_err_has "box 'sleeper' failed: timed out after 2 s (exit code 124)"
    jqx '.stages[0].exit_code == 124'
    [ $((SECONDS - t0)) -lt 30 ] || fail "the timeout did not stop it"
    # sandbox.limits.timeout_secs applies when the box has none
    spec q <<'EOF'
api_version: v1
kind: pipeline
name: slow2
sandbox: {memory_mb: 256, limits: {timeout_secs: 1}}
pipeline:
  boxes:
    - {name: sleeper, run: {program: sleep, args: ["60"]}}
EOF
    vb run "$T/q.yaml"
    expect_rc 1
    expect_err_has "timed out after 1 s"
    # workflow: a step's own timeout; service steps have none; a program's
    # own exit 124 is not a timeout
    spec w <<'EOF'
api_version: v1
kind: workflow
name: wt
sandbox: {memory_mb: 256, limits: {timeout_secs: 2}}
workflow:
  steps:
    - {name: svc, mode: service, run: {program: sh, args: ["-c", "sleep 4; echo served"]}}
    - {name: quick, timeout_secs: 1, run: {program: sleep, args: ["30"]}}
    - {name: own, run: {program: sh, args: ["-c", "exit 124"]}}
EOF
    vb run --output json "$T/w.yaml"
    expect_rc 1
    jqx '[.stages[] | [.name, .success, .exit_code]] == [["svc",true,0],["quick",false,124],["own",false,124]]'
    expect_err_has "step 'quick' failed: timed out after 1 s (exit code 124)"
    local ev
    ev=$(grep -l '"name":"wt"' "$XDG_STATE_HOME"/voidbox/runs/*/events.jsonl)
    jq -s -e 'map(select(.event == "stage.failed" and .stage == "own"))[0].error == "exit code 124"' \
        "$ev" >/dev/null || fail "own's exit 124 reported as: $(grep '"own"' "$ev" | grep failed)"
    expect_clean
}

test_workflow_dag_stdin_from_and_skipped_steps() {
    spec w <<'EOF'
api_version: v1
kind: workflow
name: dag
sandbox: {memory_mb: 256}
workflow:
  steps:
    - name: gen
      run: {program: sh, args: ["-c", "printf 'b\na\nc\n'; echo shared > /tmp/from-gen"]}
    - name: sort
      run: {program: sort, stdin_from: gen}
    - name: slow1
      run: {program: sh, args: ["-c", "sleep 3; cat /tmp/from-gen"]}
      depends_on: [gen]
    - name: slow2
      run: {program: sleep, args: ["3"]}
      depends_on: [gen]
    - name: bad
      run: {program: sh, args: ["-c", "exit 4"]}
      depends_on: [gen]
    - name: after-bad
      run: {program: echo, args: ["never"]}
      depends_on: [bad]
    - name: after-after
      run: {program: echo, args: ["never"]}
      depends_on: [after-bad, sort]
    - name: last
      run: {program: sh, args: ["-c", "cat /proc/sys/kernel/random/boot_id"]}
      depends_on: [slow1, slow2, sort]
  output_step: sort
EOF
    vb run --output json "$T/w.yaml"
    expect_rc 1
    expect_err_has "step 'bad' failed: exit code 4"
    jqx '.kind == "workflow"'
    jqx '[.stages[] | .name] == ["gen","sort","slow1","slow2","bad","after-bad","after-after","last"]'
    jqx '.stages[1].output == "a\nb\nc\n"'
    jqx '.stages[2].output == "shared\n"'           # one VM: /tmp is shared
    jqx '[.stages[] | select(.success) | .name] == ["gen","sort","slow1","slow2","last"]'
    jqx '[.stages[] | .vm_id] | map(select(. != "")) | unique | length == 1'
    local ev=$XDG_STATE_HOME/voidbox/runs/*/events.jsonl
    [ "$(grep -c '"event":"stage.skipped"' $ev)" -eq 2 ] || fail "expected 2 skipped steps"
    # slow1 and slow2 overlapped
    jq -s -e '(map(select(.event=="stage.started" and .stage=="slow2"))[0].time_ms) <
              (map(select(.event=="stage.completed" and .stage=="slow1"))[0].time_ms)' $ev >/dev/null ||
        fail "slow1 and slow2 did not run concurrently"
    # without the failing step the run succeeds and prints output_step's output
    sed -i '/name: bad/,/depends_on: \[bad\]/d; s/depends_on: \[after-bad, sort\]/depends_on: [sort]/' "$T/w.yaml"
    vb run "$T/w.yaml"
    expect_rc 0
    expect_out $'a\nb\nc'
    expect_clean
}

test_sigint_during_fan_out_tears_everything_down() {
    spec f <<'EOF'
api_version: v1
kind: pipeline
name: cancel
sandbox: {memory_mb: 256}
pipeline:
  boxes:
    - {name: a, run: {program: sleep, args: ["60"]}}
    - {name: b, run: {program: sleep, args: ["60"]}}
    - {name: c, run: {program: sleep, args: ["60"]}}
    - {name: after, run: {program: echo, args: ["never"]}}
  stages:
    - {type: fan_out, boxes: [a, b, c]}
    - {type: box, name: after}
EOF
    "$VB" run --max-parallel 2 "$T/f.yaml" >"$T/out" 2>"$T/err" </dev/null &
    local pid=$! i
    # wait until two VMs run their sleeps (c is still queued)
    for i in $(seq 1 100); do
        [ "$(grep -c 'running on' "$T/err")" -ge 2 ] && break
        sleep 0.2
    done
    kill -INT $pid
    local t0=$SECONDS
    wait $pid
    rc=$?
    check_sanitizers
    expect_rc 130
    [ $((SECONDS - t0)) -lt 15 ] || fail "teardown took $((SECONDS - t0)) s"
    expect_err_has "voidbox: cancelled"
    expect_clean
    local ev=$XDG_STATE_HOME/voidbox/runs/*/events.jsonl
    grep -q '"event":"run.cancelled"' $ev || fail "no run.cancelled event"
    ! grep -q '"event":"run.finished"' $ev || fail "run.finished after a cancel"
    jq -s -e 'map(select(.event=="stage.skipped")) | map(.stage) | sort == ["after","c"]' $ev >/dev/null ||
        fail "c and after should be skipped: $(grep skipped $ev)"
}

test_sigterm_during_boot_of_a_workflow() {
    spec w <<'EOF'
api_version: v1
kind: workflow
name: term
workflow:
  steps:
    - {name: one, run: {program: sleep, args: ["60"]}}
EOF
    "$VB" run "$T/w.yaml" >"$T/out" 2>"$T/err" </dev/null &
    local pid=$!
    sleep 0.5
    kill -TERM $pid
    wait $pid
    rc=$?
    check_sanitizers
    expect_rc 130
    expect_clean
}

test_a_vm_that_dies_fails_its_box_with_125() {
    spec p <<'EOF'
api_version: v1
kind: pipeline
name: dies
pipeline:
  boxes:
    - {name: victim, sandbox: {memory_mb: 256}, run: {program: sleep, args: ["60"]}}
EOF
    "$VB" run "$T/p.yaml" >"$T/out" 2>"$T/err" </dev/null &
    local pid=$! i
    for i in $(seq 1 100); do
        grep -q 'running on' "$T/err" && break
        sleep 0.2
    done
    pkill -9 -f "qemu-system.*$XDG_RUNTIME_DIR" || fail "no QEMU to kill"
    wait $pid
    rc=$?
    check_sanitizers
    expect_rc 125
    expect_err_has "box 'victim' failed: VM died:"
    expect_clean
}

test_workflow_gets_the_input() {
    spec w <<'EOF'
api_version: v1
kind: workflow
name: winput
sandbox: {memory_mb: 256}
workflow:
  steps:
    - {name: read, run: {program: cat, args: ["/workspace/input.json"]}}
EOF
    vb run --input '{"x": 1}' "$T/w.yaml"
    expect_rc 0
    expect_out '{"x": 1}'
}

test_json_output_is_the_spec_v1_result_object() {
    spec p <<'EOF'
api_version: v1
kind: pipeline
name: shape
pipeline:
  boxes:
    - {name: only, sandbox: {memory_mb: 256}, run: {program: printf, args: ["ok\\377\\n"]}}
EOF
    vb run --output json "$T/p.yaml"
    expect_rc 0
    [ "$(wc -l <<<"$out")" -eq 1 ] || fail "not one line of JSON"
    jqx 'keys_unsorted == ["run_id","name","kind","success","exit_code","error","duration_ms","output","output_truncated","output_bytes","output_path","stages"]'
    jqx '.name == "shape" and .kind == "pipeline" and .success == true and .exit_code == 0 and .error == null'
    jqx '.run_id | test("^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$")'
    jqx '.stages[0] | keys_unsorted == ["name","success","skipped","exit_code","error","output","duration_ms","vm_id","output_truncated","output_bytes","output_path","boot","snapshot","warm"]'
    jqx '.stages[0] | (.exit_code == 0) and (.duration_ms > 0) and (.vm_id | startswith("vm-"))'
    # bytes that are not UTF-8 become U+FFFD
    jqx '.output == "ok\ufffd\n" and .stages[0].output == .output'
    # the record holds the same result
    local res=$(echo "$XDG_STATE_HOME"/voidbox/runs/*/result.json)
    [ "$(jq -c . "$res")" = "$(jq -c . <<<"$out")" ] || fail "result.json differs from --output json"
    # human output: the run id on stderr, once, the output on stdout
    vb run "$T/p.yaml"
    expect_rc 0
    [ "$(grep -cE 'run [0-9]{8}-[0-9]{6}-[0-9a-f]{6}' "$T/err")" -eq 1 ] || fail "not one run id line: $err"
    vb run --quiet "$T/p.yaml"
    expect_rc 0
    [ -z "$err" ] || fail "--quiet printed: $err"
}

test_events_of_a_run() {
    spec p <<'EOF'
api_version: v1
kind: pipeline
name: events
sandbox: {memory_mb: 256}
pipeline:
  boxes:
    - {name: talk, run: {program: sh, args: ["-c", "echo out; echo err >&2"]}}
    - {name: fail, run: {program: sh, args: ["-c", "exit 1"]}}
    - {name: skip, run: {program: "true"}}
EOF
    vb run "$T/p.yaml"
    expect_rc 1
    local ev=$(echo "$XDG_STATE_HOME"/voidbox/runs/*/events.jsonl)
    local seq
    seq=$(jq -r '.event + ":" + (.stage // "-")' "$ev" | grep -v log.chunk | tr '\n' ' ')
    [ "$seq" = "run.started:- stage.queued:talk stage.queued:fail stage.queued:skip stage.started:talk vm.booted:talk stage.completed:talk stage.started:fail vm.booted:fail stage.failed:fail stage.skipped:skip run.finished:- " ] ||
        fail "event sequence: $seq"
    jq -s -e '.[0].run_id as $r | all(.[]; .run_id == $r)' "$ev" >/dev/null || fail "run ids differ"
    jq -s -e 'map(select(.event=="vm.booted")) | all(.[]; .accel != null and .isolation != null and .kernel != null and .boot_id != null)' "$ev" >/dev/null ||
        fail "vm.booted lacks facts"
    jq -s -e '[.[] | select(.event=="log.chunk") | .stream] | sort == ["stderr","stdout"]' "$ev" >/dev/null ||
        fail "log chunks: $(grep log.chunk "$ev")"
}

# Every agent (builtin, claude-code, codex) runs (tests/integration/
# test_agent_*.sh); what this version lacks stops before anything boots.
test_agent_refusals_before_booting() {
    spec a <<'EOF'
api_version: v1
kind: agent
name: agents
llm: {agent: builtin, provider: custom, base_url: "http://127.0.0.1:9", api_key_env: HOME}
agent: {prompt: "summarise the input", mode: interactive}
EOF
    vb run "$T/a.yaml"
    expect_rc 2 # stdin is no terminal (test_agent_modes.sh runs it on one)
    expect_err_has "agent mode 'interactive' attaches your terminal to the agent"
    [ "$(wc -l <"$T/err")" -eq 1 ] || fail "expected one line: $err"
    spec b <<'EOF'
api_version: v1
kind: agent
name: solo
llm: {provider: custom, base_url: "http://127.0.0.1:9", api_key_env: VB_TEST_UNSET_KEY}
agent: {prompt: "hello"}
EOF
    unset VB_TEST_UNSET_KEY
    vb run "$T/b.yaml"
    expect_rc 2
    expect_err_has "VB_TEST_UNSET_KEY"
    [ ! -d "$XDG_STATE_HOME/voidbox/runs" ] || [ -z "$(ls "$XDG_STATE_HOME/voidbox/runs")" ] ||
        fail "a run was recorded"
}

test_usage_and_spec_errors_are_2() {
    vb run;                                   expect_rc 2
    vb run --output xml x.yaml;               expect_rc 2; expect_err_has "--output"
    vb run --max-parallel 0 x.yaml;           expect_rc 2
    vb run --file a.yaml b.yaml;              expect_rc 2
    vb run --help;                            expect_rc 0; grep -q -- --max-parallel <<<"$out" || fail "help"
    printf 'api_version: v1\nkind: pipeline\npipeline:\n  boxes:\n    - {name: a, runn: {program: x}}\n' >"$T/bad.yaml"
    vb run "$T/bad.yaml";                     expect_rc 2; expect_err_has "bad.yaml:5:"
    expect_err_has "did you mean"
    printf 'api_version: v1\nkind: sandbox\nname: s\n' >"$T/sb.yaml"
    vb run --file "$T/sb.yaml";               expect_rc 2; expect_err_has "voidbox shell"
    vb run "$T/missing.yaml";                 [ "$rc" -ne 0 ] || fail "missing file ran"
}

test_unsupported_settings_fail_before_booting() {
    spec n <<'EOF'
api_version: v1
kind: pipeline
name: net
pipeline:
  boxes:
    - {name: first, run: {program: "true"}}
    - {name: online, sandbox: {snapshot: "abc123"}, run: {program: "true"}}
EOF
    vb run "$T/n.yaml"
    expect_rc 125
    expect_err_has "box 'online': sandbox.snapshot: no snapshot 'abc123'"
    ! grep -q booting "$T/err" || fail "something booted"
}

test_vm_boot_failure_is_125() {
    spec p <<'EOF'
api_version: v1
kind: pipeline
name: noboot
pipeline:
  boxes:
    - {name: only, run: {program: "true"}}
EOF
    VOIDBOX_QEMU=/nonexistent/qemu vb run "$T/p.yaml"
    expect_rc 125
    expect_err_has "box 'only' failed: VM failed to boot"
    expect_clean
}

test_mounts_env_and_allowlist_from_the_spec() {
    mkdir -p "$T/data"; echo "host data" >"$T/data/file.txt"
    export FROM_HOST_VAR=copied
    spec m <<EOF
api_version: v1
kind: pipeline
name: settings
sandbox:
  memory_mb: 256
  mounts: [{host: $T/data, guest: /data}, {host: $T/made, guest: /made, mode: rw}]
  env: {FROM_HOST_VAR: "", PLAIN: value, ANTHROPIC_API_KEY: ""}
  limits: {nofile: 77}
pipeline:
  boxes:
    - name: look
      run: {program: sh, args: ["-c", "cat /data/file.txt; echo \$FROM_HOST_VAR \$PLAIN \$\${ANTHROPIC_API_KEY:-nokey}; ulimit -n; echo w > /made/w; echo x > /data/x 2>/dev/null || echo ro"]}
    - name: strict
      sandbox: {allowed_commands: [echo]}
      run: {program: sh, args: ["-c", "echo no"]}
EOF
    ANTHROPIC_API_KEY=secret vb run --output json "$T/m.yaml"
    expect_rc 1
    expect_err_has "box 'strict' failed: exit code 126"
    expect_err_has "provider credentials"
    [ "$(grep -c 'provider credentials' "$T/err")" -eq 1 ] || fail "notice printed more than once"
    local got
    got=$(jq -r '.stages[0].output' <<<"$out")
    [ "$got" = $'host data\ncopied value nokey\n77\nro' ] || fail "look printed: $got"
    [ "$(cat "$T/made/w")" = w ] || fail "rw mount directory not created/written"
}

test_c_api_example_runs() {
    local ex=${VB_BUILD:-$(dirname "$VB")}/examples/pipeline
    [ -x "$ex" ] || fail "$ex not built"
    "$ex" "one two three" >"$T/out" 2>"$T/err"
    rc=$?; out=$(cat "$T/out")
    check_sanitizers
    expect_rc 0
    grep -q '^output: \[3,"EERHT OWT ENO"\]$' <<<"$out" || fail "output: $out"
    grep -q 'event: upper booted vm-' <<<"$out" || fail "no events: $out"
    expect_clean
}

test_every_example_runs() {
    local f n=0
    for f in "$ROOT"/examples/*.yaml; do
        vb validate "$f"; expect_rc 0
        # kind: sandbox is for `voidbox shell`; agents need a provider
        # (test_agent_*.sh run the agent examples against a fake one)
        grep -qE '^kind: *(pipeline|workflow)' "$f" || continue
        grep -qE '^ *(- )?(name: .*)?prompt:' "$f" && continue
        # OCI images come from a registry (test_oci_run.sh runs them offline)
        grep -qE '^ *(- )?\{?(image|guest_image): ' "$f" && continue
        vb run -q "$f"
        [ "$rc" -eq 0 ] || fail "$(basename "$f"): exit $rc: $(head -c 600 "$T/err")"
        n=$((n + 1))
        case $(basename "$f") in
        hello-pipeline.yaml)
            grep -q '^4 distinct boot ids for 4 VMs$' <<<"$out" || fail "hello-pipeline: $out"
            [ "$(grep -c 'secret.txt absent' <<<"$out")" -eq 2 ] || fail "hello-pipeline: $out";;
        parameters.yaml)
            [ "$(head -1 <<<"$out")" = "hello, world" ] || fail "parameters: $out";;
        esac
    done
    [ "$n" -ge 3 ] || fail "only $n examples"
    expect_clean
}

run_tests
