#!/usr/bin/env bash
# The terminal boundary (docs/cli.md, "Terminal safety"): what VoidBox
# formats from specs, paths and errors reaches the terminal without control
# sequences; a program's own output is passed as it is.  And SIGPIPE: when
# the reader of `voidbox exec`'s output goes away, the pipeline ends as a
# local one does.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

# A spec full of escape sequences in every field inspect shows: OSC 52
# (clipboard write), CSI 2J (clear screen), OSC 0 (title) ended by BEL, C1
# CSI written in UTF-8 (U+009B, from YAML's \x9b and \u009b), DEL.
evil_spec() {
    cat >"$1" <<'YAML'
api_version: v1
kind: pipeline
name: evil
sandbox:
  kernel: "/tmp/kernel\e]52;c;ZXZpbA==\a"
  initramfs: "/tmp/initrd\e[2J\x7f"
  mounts:
    - {host: "/tmp/mnt\e[2J", guest: "/mnt/\e]0;pwned\a"}
  allowed_commands: ["sh\x9b2J", "ls\e[31m"]
pipeline:
  boxes:
    - name: a
      output_file: "/workspace/out\u009b1m\e[2J.json"
      run:
        program: "sh\e]0;title\a"
        args: ["-c", "echo \e]52;c;AA==\a"]
YAML
}

# None of ESC, BEL or any other C0 control but \n and \t, DEL, C1 (raw
# 0x80-0x9f bytes or U+0080-U+009F in UTF-8) in file $1.
expect_no_controls() {
    if LC_ALL=C grep -naP '[\x00-\x08\x0b-\x1f\x7f-\x9f]|\xc2[\x80-\x9f]' "$1" >"$T/hits"; then
        fail "$2 carries control characters: $(od -c "$T/hits" | head -5)"
    fi
}

test_inspect_shows_no_escape_sequences() {
    evil_spec "$T/evil.yaml"
    vb inspect "$T/evil.yaml"
    expect_rc 0
    expect_no_controls "$T/out" "inspect's stdout"
    expect_no_controls "$T/err" "inspect's stderr"
    # the values are shown, with '?' for each control
    for want in 'kernel:       /tmp/kernel?]52;c;ZXZpbA==?' 'mounts:       /tmp/mnt?[2J -> /mnt/?]0;pwned? (ro)' \
                'commands:     only sh?2J, ls?[31m' 'output_file:  /workspace/out?1m?[2J.json' \
                "runs:         'sh?]0;title?' -c 'echo ?]52;c;AA==?'" 'initramfs:    /tmp/initrd?[2J?'; do
        grep -qF -- "$want" "$T/out" || fail "inspect lacks '$want': $out"
    done
}

test_inspect_json_escapes_them() {
    evil_spec "$T/evil.yaml"
    vb inspect -o json "$T/evil.yaml"
    expect_rc 0
    expect_no_controls "$T/out" "inspect -o json"
    # the escapes keep the values: a JSON reader gets the spec's own bytes
    jq -e '.stages[0].boxes[0].output_file == "/workspace/out\u009b1m\u001b[2J.json"' "$T/out" >/dev/null ||
        fail "output_file not kept: $(grep output_file "$T/out")"
    jq -e '.stages[0].boxes[0].vm.allowed_commands[0] == "sh\u009b2J"' "$T/out" >/dev/null ||
        fail "allowed_commands not kept: $(grep -A3 allowed_commands "$T/out")"
    grep -qF 'sh\u009b2J' "$T/out" || fail "U+009B not written as \\u009b"
}

test_validate_shows_no_escape_sequences() {
    evil_spec "$T/evil.yaml"
    # a file name with a raw 0x9b byte, an OSC title and a CSI
    name=$'ev\x9b2J\e]0;x\a.yaml'
    cp "$T/evil.yaml" "$T/$name"
    vb validate "$T/$name"
    expect_rc 0
    expect_no_controls "$T/out" "validate's stdout"
    grep -qF 'ev?2J?]0;x?.yaml: valid (kind pipeline' "$T/out" || fail "validate says: $out"
    vb validate -o json "$T/$name"
    expect_rc 0
    expect_no_controls "$T/out" "validate -o json"
    jq -e '.valid == true' "$T/out" >/dev/null || fail "validate -o json: $out"
}

test_errors_quoting_spec_text_show_no_escape_sequences() {
    # a missing file whose name is an OSC 52 clipboard write
    vb validate $'/nonexistent/x\e]52;c;ZXZpbA==\a\x9b.yaml'
    expect_rc 2
    expect_no_controls "$T/err" "the error"
    expect_err_has 'voidbox: /nonexistent/x?]52;c;ZXZpbA==??.yaml'
    # a problem quoting a field name and a value
    printf 'api_version: v1\nkind: pipeline\nname: "n\\e[2J"\n"\\e]0;x\\a": 1\npipeline: {boxes: [{name: a, run: {program: true}}]}\n' \
        >"$T/bad.yaml"
    vb validate "$T/bad.yaml"
    expect_rc 2
    expect_no_controls "$T/err" "validate's problems"
    expect_err_has "unknown field '?]0;x?'"
    vb inspect "$T/bad.yaml"
    expect_rc 2
    expect_no_controls "$T/err" "inspect's problems"
}

test_run_error_quoting_a_guest_path_shows_none() {
    # output_file names a directory: "reading PATH in the guest" quotes it
    cat >"$T/of.yaml" <<'YAML'
api_version: v1
kind: pipeline
name: of
pipeline:
  boxes:
    - name: a
      output_file: "/workspace/o\e]52;c;ZXZpbA==\a\x9b2J.json"
      run:
        program: sh
        args: ["-c", "mkdir \"$(printf '/workspace/o\\033]52;c;ZXZpbA==\\007\\302\\2332J.json')\""]
YAML
    vb run "$T/of.yaml"
    expect_rc 125
    expect_no_controls "$T/err" "run's stderr"
    expect_err_has 'voidbox: box '"'a'"' failed: reading /workspace/o?]52;c;ZXZpbA==??2J.json in the guest'
    id=$(sed -n 's/.*what happened: voidbox logs //p' "$T/err")
    [ -n "$id" ] || fail "no run id in: $err"
    vb logs "$id"
    expect_no_controls "$T/out" "logs"
    grep -qF 'reading /workspace/o?]52;c;ZXZpbA==??2J.json in the guest' "$T/out" || fail "logs: $out"
    expect_clean
}

test_exec_error_quoting_the_program_shows_none() {
    # the guest's "not found" quotes the program's name
    vb exec -- $'nope\e]0;pwned\a\e[2J'
    expect_rc 127
    expect_no_controls "$T/err" "exec's error"
    expect_err_has 'nope?]0;pwned??[2J'
    expect_clean
}

test_program_output_is_passed_as_is() {
    # the user's data, as with ssh: not filtered
    vb exec -- printf '\033[1mbold\033[0m\302\233\n'
    expect_rc 0
    [ "$(od -An -tx1 "$T/out" | tr -d ' \n')" = "1b5b316d626f6c641b5b306dc29b0a" ] ||
        fail "stdout changed: $(od -c "$T/out")"
}

# ---- SIGPIPE ----------------------------------------------------------------

# pipeline CMD...: run `voidbox CMD... | head -1` (60 s at most); sets
# $status to "voidbox's head's" statuses as bash reports them (PIPESTATUS)
# and $first to what head printed.
pipeline() {
    first=$(timeout -k 5 60 "$VB" "$@" 2>"$T/err" </dev/null | head -1; echo "${PIPESTATUS[*]}" >"$T/status")
    status=$(cat "$T/status")
    check_sanitizers
}

test_exec_yes_into_head_ends_as_locally() {
    local start=$SECONDS
    pipeline exec -- yes
    # a local `yes | head -1`: 141 0 (yes killed by SIGPIPE); 124 = hung
    [ "$status" = "141 0" ] || fail "PIPESTATUS '$status', expected '141 0' (stderr: $(head -c 300 "$T/err"))"
    [ "$first" = "y" ] || fail "head printed '$first'"
    [ $((SECONDS - start)) -lt 45 ] || fail "took $((SECONDS - start)) s"
    expect_clean
}

test_exec_sh_yes_into_head() {
    pipeline exec -- sh -c 'yes'
    [ "$status" = "141 0" ] || fail "PIPESTATUS '$status', expected '141 0'"
    [ "$first" = "y" ] || fail "head printed '$first'"
    expect_clean
}

test_exec_stderr_reader_gone() {
    # a closed stderr: the program gets SIGPIPE on its next write there
    status=$(timeout -k 5 60 "$VB" exec -- sh -c 'yes >&2' 2>&1 >/dev/null </dev/null | head -1 >/dev/null
             echo "${PIPESTATUS[*]}")
    [ "$status" = "141 0" ] || fail "PIPESTATUS '$status', expected '141 0'"
    expect_clean
}

test_exec_tty_yes_into_head_hangs_up() {
    # -t: the guest's terminal loses its screen: SIGHUP (129)
    pipeline exec -t -- yes
    [ "$status" = "129 0" ] || fail "PIPESTATUS '$status', expected '129 0'"
    [ "$first" = $'y\r' ] || fail "head printed '$(od -c <<<"$first")'"
    expect_clean
}

test_exec_into_dev_full() {
    # not EPIPE but ENOSPC: the output cannot be delivered either; the
    # program is told the same way, and the reason is said
    timeout -k 5 60 "$VB" exec -- yes >/dev/full 2>"$T/err" </dev/null
    rc=$?
    err=$(cat "$T/err")
    check_sanitizers
    expect_rc 141
    expect_err_has "voidbox: exec: cannot write the program's stdout (No space left on device): it is sent SIGPIPE"
    expect_clean
}

test_exec_reader_gone_program_still_finishes() {
    # the program outlives the reader and does not write again: no signal,
    # its own status, as locally (`sh -c 'echo a; sleep 3; exit 7' | head -1`)
    pipeline exec -- sh -c 'echo a; sleep 3; exit 7'
    [ "$status" = "7 0" ] || fail "PIPESTATUS '$status', expected '7 0'"
    [ "$first" = "a" ] || fail "head printed '$first'"
    expect_clean
}

run_tests
