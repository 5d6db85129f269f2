#!/usr/bin/env bash
# `voidbox run` as a new user meets it: failures that explain themselves,
# results scripts can use, output followed live, and runs that take
# parameters (${VAR}, --env, --mount, a spec on stdin, input from a file).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

spec() { cat >"$T/$1.yaml"; }
jqx() {
    jq -e "$1" >/dev/null <<<"$out" || fail "jq '$1' is not true on: $(head -c 800 <<<"$out")"
}
expect_err_lacks() { ! grep -qF -- "$1" "$T/err" || fail "stderr has '$1': $(head -c 600 "$T/err")"; }
# count TEXT: lines of stderr holding TEXT
count() { grep -cF -- "$1" "$T/err"; }

failing_pipeline() {
    spec p <<'EOF'
api_version: v1
kind: pipeline
name: explain
sandbox: {memory_mb: 256}
pipeline:
  boxes:
    - name: produce
      run: {program: sh, args: ["-c", "echo partial; for i in 1 2 3 4 5 6 7 8; do echo \"problem $i\" >&2; done; printf 'esc \\033[31mred\\n' >&2; exit 3"]}
    - name: consume
      run: {program: "true"}
    - name: report
      run: {program: "true"}
EOF
}

test_a_failed_box_shows_its_stderr_and_the_logs_command() {
    failing_pipeline
    vb run "$T/p.yaml"
    expect_rc 1
    # the last lines of its stderr, terminal-safe, and not the first ones
    expect_err_has "produce: the last lines of its stderr:"
    expect_err_has "  | problem 8"
    expect_err_has "  | esc ?[31mred"
    expect_err_lacks "problem 1"
    grep -q $'\033' "$T/err" && fail "a raw escape reached the terminal"
    # the exact command, and it works
    local cmd
    cmd=$(sed -n 's/^produce: all of it: //p' "$T/err")
    [[ $cmd =~ ^voidbox\ logs\ [0-9]{8}-[0-9]{6}-[0-9a-f]{6}\ --stage\ produce\ --stderr$ ]] ||
        fail "no logs command: $err"
    local logs
    logs=$("$VB" ${cmd#voidbox }) || fail "'$cmd' failed"
    [ "$(head -1 <<<"$logs")" = "problem 1" ] || fail "'$cmd' printed: $logs"
    # skipped stages say why in a word; the cause is said where it happened
    expect_err_has "stage consume: skipped: 'produce' failed"
    expect_err_has "stage report: skipped: 'produce' failed"
    [ "$(count "exit code 3")" -eq 2 ] || fail "the failure is repeated: $err"
    [ "$(tail -1 "$T/err")" = "voidbox: box 'produce' failed: exit code 3" ] ||
        fail "last line: $(tail -1 "$T/err")"
}

test_a_vm_that_does_not_boot_is_said_once() {
    spec p <<'EOF'
api_version: v1
kind: pipeline
name: noboot
pipeline:
  boxes:
    - {name: first, run: {program: "true"}}
    - {name: second, run: {program: "true"}}
    - {name: third, run: {program: "true"}}
EOF
    VOIDBOX_QEMU=/nonexistent/qemu vb run "$T/p.yaml"
    expect_rc 125
    expect_err_has "stage second: skipped: 'first' failed"
    expect_err_has "stage third: skipped: 'first' failed"
    # the boot error: on the failed stage and in the final message, nowhere else
    [ "$(count "failed to boot")" -eq 2 ] || fail "boot error repeated: $err"
    expect_err_has "first: what happened: voidbox logs "
}

test_json_result_for_scripts() {
    failing_pipeline
    vb run --output json "$T/p.yaml"
    expect_rc 1
    local id
    id=$(jq -r .run_id <<<"$out")
    [ -d "$XDG_STATE_HOME/voidbox/runs/$id" ] || fail "run_id '$id' is not the recorded run"
    jqx '.success == false and .exit_code == 1 and .error == "box '"'produce'"' failed: exit code 3"'
    jqx '.duration_ms > 0'
    jqx '.stages[0] | .name == "produce" and .exit_code == 3 and .error == "exit code 3" and (.skipped | not) and .duration_ms > 0'
    jqx '.stages[1] | .skipped and (.success | not) and .exit_code == -1 and .error == "'"'produce'"' failed"'
    jqx '.stages[2].skipped'
    # no always-zero token or cost fields on command boxes
    jqx '[paths | map(tostring) | join(".") | select(test("token|cost"))] == []'
    # a successful run: error null, exit code 0
    printf 'api_version: v1\nkind: pipeline\nname: ok\npipeline:\n  boxes:\n    - {name: a, sandbox: {memory_mb: 256}, run: {program: echo, args: [hi]}}\n' >"$T/ok.yaml"
    vb run -o json "$T/ok.yaml"
    expect_rc 0
    jqx '.success and .exit_code == 0 and .error == null and .stages[0].error == null and .output == "hi\n"'
    # agent specs, before anything runs
    # (the default provider, claude, needs the host's key before anything boots)
    printf 'api_version: v1\nkind: agent\nname: a\nagent: {prompt: hi}\n' >"$T/agent.yaml"
    unset ANTHROPIC_API_KEY
    vb run "$T/agent.yaml"
    expect_rc 2
    expect_err_has "llm provider claude: ANTHROPIC_API_KEY is not set in the host's environment; fix:"
    expect_err_lacks "LLM provider"
}

test_output_without_a_newline_and_the_run_id_once() {
    spec p <<'EOF'
api_version: v1
kind: pipeline
name: nonl
sandbox: {memory_mb: 256}
pipeline:
  boxes:
    - {name: first, run: {program: printf, args: ["4 distinct boot ids for 4 VMs"]}}
    - {name: second, run: {program: printf, args: ["last words"]}}
EOF
    vb run --follow "$T/p.yaml"
    expect_rc 0
    expect_out "last words"
    # every line of stderr is a whole one: the output never runs into a progress line
    expect_err_has $'first  | 4 distinct boot ids for 4 VMs\n'
    grep -qE 'VMs.+\[' "$T/err" && fail "output ran into a progress line: $err"
    [ "$(grep -cE '[0-9]{8}-[0-9]{6}-[0-9a-f]{6}' "$T/err")" -eq 1 ] || fail "run id not printed once: $err"
    [ "$(tail -c 1 "$T/out" | od -An -c | tr -d ' ')" = '\n' ] || fail "stdout does not end with a newline"
    vb run "$T/p.yaml"
    expect_rc 0
    [ "$(grep -cE '[0-9]{8}-[0-9]{6}-[0-9a-f]{6}' "$T/err")" -eq 1 ] || fail "run id not printed once: $err"
}

test_workflow_steps_share_one_boot() {
    spec w <<'EOF'
api_version: v1
kind: workflow
name: shared
sandbox: {memory_mb: 256}
workflow:
  steps:
    - {name: a, run: {program: echo, args: [a]}}
    - {name: b, run: {program: echo, args: [b]}, depends_on: [a]}
    - {name: c, run: {program: echo, args: [c]}, depends_on: [a]}
EOF
    vb run "$T/w.yaml"
    expect_rc 0
    [ "$(count ": booting")" -eq 1 ] || fail "more than one step boots: $err"
    expect_err_has "stage a: booting"
    [ "$(grep -c 'running on vm-' "$T/err")" -eq 3 ] || fail "each step once on its VM: $err"
    [ "$(grep -o 'running on vm-[0-9a-f]*' "$T/err" | sort -u | wc -l)" -eq 1 ] || fail "steps in different VMs"
}

test_follow_shows_output_while_the_run_goes_on() {
    spec p <<'EOF'
api_version: v1
kind: pipeline
name: live
sandbox: {memory_mb: 256}
pipeline:
  boxes:
    - {name: talk, run: {program: sh, args: ["-c", "echo first; echo to-stderr >&2; sleep 4; echo second"]}}
EOF
    "$VB" run --follow "$T/p.yaml" >"$T/out" 2>"$T/err" </dev/null &
    local pid=$! i
    for i in $(seq 1 300); do
        grep -qF "talk | first" "$T/err" && break
        sleep 0.1
    done
    grep -qF "talk | first" "$T/err" || fail "no live line: $(cat "$T/err")"
    kill -0 $pid 2>/dev/null || fail "the run was over before its output showed"
    grep -qF "talk | second" "$T/err" && fail "'second' before its time"
    wait $pid; rc=$?
    expect_rc 0
    expect_err_has "talk | to-stderr"
    expect_err_has "talk | second"
    [ "$(cat "$T/out")" = $'first\nsecond' ] || fail "stdout: $(cat "$T/out")"
    vb run --follow --quiet "$T/p.yaml"
    expect_rc 2
    expect_err_has "--follow"
}

# Parameters: what the spec says, the environment, and what the box sees.
test_parameters_expand_from_the_environment() {
    local -a cases=(
        # value in the spec          | environment            | the box prints
        '${GREETING} world'          'GREETING=hello'         'hello world'
        '${GREETING:-hi} world'      ''                       'hi world'
        '${GREETING:-hi} world'      'GREETING='              'hi world'
        'cost: $$5, ${N}x'           'N=3'                    'cost: $5, 3x'
        '$HOME stays'                ''                       '$HOME stays'
    )
    local i
    for ((i = 0; i < ${#cases[@]}; i += 3)); do
        spec p <<EOF
api_version: v1
kind: pipeline
name: params
pipeline:
  boxes:
    - name: say
      sandbox:
        memory_mb: \${MEM:-256}
      run: {program: echo, args: ['${cases[i]}']}
EOF
        if [ -n "${cases[i+1]}" ]; then
            env -u GREETING -u N "${cases[i+1]}" "$VB" run -q "$T/p.yaml" >"$T/out" 2>"$T/err" </dev/null
        else
            env -u GREETING -u N "$VB" run -q "$T/p.yaml" >"$T/out" 2>"$T/err" </dev/null
        fi
        rc=$?; out=$(cat "$T/out"); check_sanitizers
        expect_rc 0
        [ "$out" = "${cases[i+2]}" ] || fail "'${cases[i]}' with '${cases[i+1]}': got '$out', want '${cases[i+2]}'"
    done
    # an unset variable: exit 2, where it is, nothing boots; validate and inspect agree
    spec bad <<'EOF'
api_version: v1
kind: pipeline
name: params
pipeline:
  boxes:
    - name: say
      run: {program: echo, args: ["${NOT_SET_ANYWHERE}"]}
EOF
    local verb before
    before=$(ls "$XDG_STATE_HOME/voidbox/runs" | wc -l)
    for verb in run validate inspect; do
        vb $verb "$T/bad.yaml"
        expect_rc 2
        expect_err_has "bad.yaml:7:35: pipeline.boxes[0].run.args[0]: \${NOT_SET_ANYWHERE} is not set"
    done
    [ "$(ls "$XDG_STATE_HOME/voidbox/runs" | wc -l)" -eq "$before" ] || fail "a run was recorded"
    # inspect shows the values the run will use
    MEM=300 vb inspect "$T/p.yaml"
    expect_rc 0
    grep -q "300 MiB" <<<"$out" || fail "inspect: $out"
    # ${...} in a YAML {...}: the syntax error says what to do
    printf 'api_version: v1\nkind: sandbox\nname: s\nsandbox: {memory_mb: ${MEM:-256}}\n' >"$T/flow.yaml"
    vb validate "$T/flow.yaml"
    expect_rc 2
    expect_err_has 'quote a value holding ${...}, or write it in block style'

    mkdir -p "$T/home/data"
    printf 'api_version: v1\nkind: pipeline\nname: t\npipeline:\n  boxes:\n    - name: a\n      sandbox: {mounts: [{host: "~/data", guest: /d}]}\n      run: {program: "true"}\n' >"$T/tilde.yaml"
    HOME=$T/home vb inspect "$T/tilde.yaml"
    expect_rc 0
    grep -qF "$T/home/data -> /d (ro)" <<<"$out" || fail "~ not expanded: $out"
}

test_env_and_mount_options_reach_every_box() {
    mkdir -p "$T/in" "$T/out-dir"
    echo "from the host" >"$T/in/f.txt"
    spec p <<'EOF'
api_version: v1
kind: pipeline
name: extras
sandbox:
  memory_mb: 256
  env: {MODE: spec, KEEP: kept}
pipeline:
  boxes:
    - {name: one, run: {program: sh, args: ["-c", "echo $MODE $KEEP $FROM_HOST; cat /in/f.txt; echo one > /out/one"]}}
    - {name: two, run: {program: sh, args: ["-c", "echo $MODE; cat /out/one; echo x > /in/x 2>/dev/null || echo read-only"]}}
  stages:
    - {type: fan_out, boxes: [one]}
    - {type: box, name: two}
EOF
    FROM_HOST=hostval vb run -o json -e MODE=cli --env FROM_HOST -v "$T/in:/in" --mount "$T/out-dir:/out:rw" "$T/p.yaml"
    expect_rc 0
    jqx '.stages[0].output == "cli kept hostval\nfrom the host\n"'
    jqx '.stages[1].output == "cli\none\nread-only\n"'
    [ "$(cat "$T/out-dir/one")" = one ] || fail "rw mount not written"
    [ ! -e "$T/in/x" ] || fail "ro mount written"
    # the same for a workflow's one VM
    spec w <<'EOF'
api_version: v1
kind: workflow
name: wextras
sandbox: {memory_mb: 256}
workflow:
  steps:
    - {name: s, run: {program: sh, args: ["-c", "echo $MODE; cat /in/f.txt"]}}
EOF
    vb run -e MODE=wf -v "$T/in:/in:ro" "$T/w.yaml"
    expect_rc 0
    expect_out $'wf\nfrom the host'
    # mistakes are usage errors, before anything boots
    local -a bad=(
        "-e =x"                          "expected K=V"
        "-v $T/in"                       "expected HOST:GUEST"
        "-v $T/in:/in:rx"                "mode must be ro or rw"
        "-v $T/nowhere:/in"              "nowhere"
    )
    local i
    for ((i = 0; i < ${#bad[@]}; i += 2)); do
        # shellcheck disable=SC2086
        vb run ${bad[i]} "$T/w.yaml"
        expect_rc 2
        expect_err_has "${bad[i+1]}"
        expect_err_lacks "booting"
    done
}

test_spec_on_stdin_and_input_from_a_file() {
    mkdir -p "$T/work/sub"
    echo '{"n": 41}' >"$T/input.json"
    echo "relative" >"$T/work/sub/r.txt"
    local s
    s=$(printf 'api_version: v1\nkind: pipeline\nname: stdin\npipeline:\n  boxes:\n    - name: a\n      sandbox: {memory_mb: 256, mounts: [{host: sub, guest: /sub}]}\n      run: {program: sh, args: ["-c", "cat /workspace/input.json /sub/r.txt"]}\n')
    # a relative path in a spec on stdin starts from the current directory
    cd "$T/work" || fail "cd"
    vb_in "$s" run -i "@$T/input.json" -
    expect_rc 0
    expect_out $'{"n": 41}\nrelative'
    # the same spec as JSON on stdin
    local j='{"api_version": "v1", "kind": "pipeline", "name": "j", "pipeline": {"boxes": [{"name": "a", "sandbox": {"memory_mb": 256}, "run": {"program": "cat", "args": ["/workspace/input.json"]}}]}}'
    vb_in "$j" run --input '{"m": 1}' -
    expect_rc 0
    expect_out '{"m": 1}'
    # validate and inspect read stdin the same way
    vb_in "$j" validate -
    expect_rc 0
    expect_out "<stdin>: valid (kind pipeline, api_version v1, 1 box, 1 stage)"
    vb_in "$j" inspect -
    expect_rc 0
    grep -q "cat /workspace/input.json" <<<"$out" || fail "inspect -: $out"
    # errors in a spec on stdin name it
    vb_in $'api_version: v1\nkind: pipelin\nname: x\n' run -
    expect_rc 2
    expect_err_has "<stdin>:2:7: kind: unknown value 'pipelin'"
    vb run -i @"$T/missing.json" "$T/input.json"
    expect_rc 2
    expect_err_has "missing.json"
    vb_in "$s" run -i @- -
    expect_rc 2
    expect_err_has "cannot both come from stdin"
}

test_yaml_under_any_name_and_void_box_spellings() {
    # YAML in a file not named .yaml (here .spec and none), JSON in another
    printf 'api_version: v1\nkind: sandbox\nname: s\nsandbox: {mode: Mock}\nllm: {provider: Claude}\n' >"$T/box.spec"
    cp "$T/box.spec" "$T/noext"
    vb validate "$T/box.spec"; expect_rc 0
    vb validate "$T/noext";    expect_rc 0
    printf '{"api_version": "v1", "kind": "sandbox", "name": "s", "llm": {"provider": "OLLAMA"}}' >"$T/box.conf"
    vb validate "$T/box.conf"; expect_rc 0
    # positioned errors stay right in both
    printf 'api_version: v1\nkind: sandbox\nname: s\nsandbox: {mode: mok}\n' >"$T/bad.spec"
    vb validate "$T/bad.spec"; expect_rc 2; expect_err_has "bad.spec:4:17: sandbox.mode: unknown value 'mok'"
    printf '{"api_version": "v1",\n "kind": "sandbox", "name": "s", "llm": {"provider": "Claud"}}' >"$T/bad.conf"
    vb validate "$T/bad.conf"; expect_rc 2; expect_err_has "bad.conf:2:54: llm.provider: unknown value 'Claud'"
    # a pipeline that says mode: Mock runs (as auto, with a notice)
    printf 'api_version: v1\nkind: pipeline\nname: m\nsandbox: {mode: MOCK, memory_mb: 256}\npipeline:\n  boxes:\n    - {name: a, run: {program: echo, args: [ran]}}\n' >"$T/m.pipeline"
    vb run "$T/m.pipeline"
    expect_rc 0
    expect_out ran
    expect_err_has "treated as 'auto'"
}

run_tests
