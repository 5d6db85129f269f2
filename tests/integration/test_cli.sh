#!/usr/bin/env bash
# The command line as a docker user meets it: flags, help texts, JSON,
# option errors and did-you-mean.  Most cases are rows of a table and boot
# nothing: QEMU is set to a missing program, so an accepted exec stops at
# the VM start with 125 while a rejected one stops at parsing with 2.  A few
# tests at the end boot real VMs for what only a guest can show.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
EXAMPLES=$(cd "$here/../../examples" && pwd)
export EXAMPLES

# Every verb of `voidbox help`.
VERBS="exec run shell logs ps validate inspect image agent doctor version"
# The verbs whose option parsing is args.c's (exact wording checked).
SHARED_WORDING="exec shell doctor version validate inspect"
export VERBS SHARED_WORDING

# check_table: one case a line, "RC | STREAM | TEXT | ARGV".  STREAM is out
# or err, where TEXT must appear (fixed string; empty: nothing to check).
# ARGV is shell words, evaluated (so "$T" and quotes work).
check_table() {
    local line want stream text args n=0
    while IFS= read -r line; do
        [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
        IFS='|' read -r want stream text args <<<"$line"
        want=${want//[[:space:]]/}; stream=${stream//[[:space:]]/}
        text=$(sed 's/^ *//; s/ *$//' <<<"$text")
        eval "set -- $args"
        VOIDBOX_QEMU=/nonexistent/qemu vb "$@"
        [ "$rc" -eq "$want" ] || fail "voidbox$(printf ' %q' "$@"): exit $rc, expected $want (stderr: $err)"
        if [ -n "$text" ]; then
            grep -qF -- "$text" "$T/$stream" ||
                fail "voidbox$(printf ' %q' "$@"): $stream lacks '$text': $(head -c 400 "$T/$stream")"
        fi
        n=$((n + 1))
    done
    [ "$n" -gt 0 ] || fail "empty table"
}

# ---- help ------------------------------------------------------------------

test_help_every_verb_three_ways() {
    local v
    for v in $VERBS; do
        for form in "help $v" "$v --help" "$v -h"; do
            vb $form
            expect_rc 0
            grep -q "^usage: voidbox $v" "$T/out" || fail "'voidbox $form' prints no usage: $out"
            [ -z "$err" ] || fail "'voidbox $form' wrote to stderr: $err"
        done
    done
    vb help;        expect_rc 0; grep -q '^usage: voidbox COMMAND' "$T/out" || fail "$out"
    vb --help;      expect_rc 0
    vb help help;   expect_rc 0
    vb;             expect_rc 2; expect_err_has "usage: voidbox COMMAND"
}

test_exec_help_documents_the_docker_flags() {
    vb exec --help
    expect_rc 0
    local want
    for want in "-e, --env K=V" "-w, --workdir DIR" "-v, --mount HOST:GUEST[:ro|rw]" \
        "-m, --memory SIZE" "512M, 1G" "default 1024 MiB" "-u, --user" "-t, --tty" \
        "-i, --interactive" "a missing rw HOST directory is created" \
        "nofile=N" "nproc=N" "fsize_mb=MiB" "fsize=SIZE" \
        "Only PROG itself is" "checked, not what it runs"; do
        grep -qF -- "$want" "$T/out" || fail "exec --help lacks '$want'"
    done
    vb shell --help
    for want in "-m, --memory SIZE" "1024 MiB" "-v, --mount" "-e, --env" "-w, --workdir" "-u, --user"; do
        grep -qF -- "$want" "$T/out" || fail "shell --help lacks '$want'"
    done
}

# ---- option errors: one wording, every verb -------------------------------

test_every_verb_rejects_unknown_options() {
    local v
    for v in $VERBS; do
        vb $v --bogus
        expect_rc 2
        expect_err_has "'--bogus'"
        vb $v -Z
        expect_rc 2
        expect_err_has "'-Z'"
    done
    for v in $SHARED_WORDING; do
        vb $v --bogus
        [ "$err" = "voidbox: $v: unknown option '--bogus' (see 'voidbox $v --help')" ] ||
            fail "$v: '$err'"
    done
    vb image list --bogus
    [ "$err" = "voidbox: image list: unknown option '--bogus' (see 'voidbox image list --help')" ] || fail "$err"
}

test_option_error_table() {
    check_table <<'EOF'
# a value missing
2 | err | exec: option '--memory' needs a value (see 'voidbox exec --help') | exec --memory
2 | err | exec: option '-m' needs a value                | exec -m
2 | err | shell: option '-e' needs a value               | shell -e
2 | err | version: option '--output' needs a value       | version --output
2 | err | inspect: option '-o' needs a value             | inspect -o
# a flag given a value
2 | err | doctor: option '--help' takes no value         | doctor --help=yes
# typos of long options
2 | err | exec: unknown option '--memroy'; did you mean '--memory'? | exec --memroy 1G -- true
2 | err | did you mean '--workdir'?                       | exec --wrokdir /tmp -- true
2 | err | did you mean '--output'?                        | inspect --outptu json x.yaml
2 | err | did you mean '--force'?                         | image build --forse
# stray arguments
2 | err | doctor: unexpected argument 'now' (see 'voidbox doctor --help') | doctor now
2 | err | version: unexpected argument 'x'               | version x
2 | err | image build: unexpected argument 'x'           | image build x
2 | err | validate: one spec file at a time              | validate a.yaml b.yaml
2 | err | inspect: one spec file at a time               | inspect --file a.yaml b.yaml
# -f means --follow where it exists, never --file
2 | err | validate: unknown option '-f'                  | validate -f "$EXAMPLES/workflow.yaml"
2 | err | inspect: unknown option '-f'                   | inspect -f "$EXAMPLES/workflow.yaml"
2 | err | shell: unknown option '-f'                     | shell -f "$EXAMPLES/sandbox.yaml"
0 | out | valid (kind workflow                           | validate --file "$EXAMPLES/workflow.yaml"
# options before the command
2 | err | unknown option '-m' before the command; usage: voidbox COMMAND [OPTIONS] | -m 1G exec -- true
EOF
}

test_control_bytes_never_reach_the_terminal() {
    vb exec $'--bo\e[31mgus' -- true
    expect_rc 2
    ! grep -q $'\e' "$T/err" || fail "an escape byte reached stderr: $(od -c "$T/err" | head -3)"
    expect_err_has "--bo?[31mgus"
    vb $'ex\e]0;pwned\aec'
    expect_rc 2
    ! grep -q $'\e\|\a' "$T/err" || fail "control bytes reached stderr"
    vb version -o $'j\eson'
    expect_rc 2
    ! grep -q $'\e' "$T/err" || fail "control bytes reached stderr"
}

# ---- verbs: did-you-mean ---------------------------------------------------

test_unknown_verbs_suggest_the_near_one() {
    check_table <<'EOF'
2 | err | voidbox: unknown command 'exce'; did you mean 'exec'? (see 'voidbox help') | exce -- true
2 | err | did you mean 'exec'?     | exe
2 | err | did you mean 'image'?    | imgae list
2 | err | did you mean 'validate'? | valdiate x.yaml
2 | err | did you mean 'inspect'?  | inpsect x.yaml
2 | err | did you mean 'ps'?       | pss
2 | err | did you mean 'exec'?     | help exce
2 | err | image: unknown command 'lsit'; did you mean 'list'? | image lsit
2 | err | unknown command 'frobnicate' (see 'voidbox help') | frobnicate
EOF
    # nothing near: no suggestion
    vb bogus
    expect_rc 2
    ! grep -q 'did you mean' "$T/err" || fail "a far word got a suggestion: $err"
    [ "$(wc -l <"$T/err")" -eq 1 ] || fail "expected one line: $err"
}

# ---- exec's flags, as parsed (no VM: QEMU is missing, 125 = accepted) -----

test_exec_flags_table() {
    check_table <<'EOF'
# accepted: parsing passes, the (missing) QEMU fails
125 | err | /nonexistent/qemu | exec -e A=1 -w /tmp -u root -m 1G -t -i -- true
125 | err |                   | exec -it -- sh
125 | err |                   | exec --env A=1 --workdir /tmp --user 0 --memory 512 --tty --interactive -- true
125 | err |                   | exec -m 512M -- true
125 | err |                   | exec -m 1g -- true
125 | err |                   | exec -m 1GiB -- true
125 | err |                   | exec -m 65536K -- true
125 | err |                   | exec --memory=2048 -- true
125 | err |                   | exec -u 1000 -- true
125 | err |                   | exec --rlimit nofile=64 --rlimit nproc=32 --rlimit fsize_mb=1 -- true
125 | err |                   | exec --rlimit fsize=1048576 --rlimit fsize=10M -- true
125 | err |                   | exec -v /tmp:/data -v /tmp:/d2:ro -- true
125 | err |                   | exec echo no double dash needed
# rejected at parsing
2 | err | exec: --memory 1X: expected a size from 64M to 1T in whole MiB | exec -m 1X -- true
2 | err | exec: --memory 32M  | exec -m 32M -- true
2 | err | exec: --memory 63   | exec -m 63 -- true
2 | err | in whole MiB        | exec -m 1500K -- true
2 | err | exec: --memory -1G  | exec -m -1G -- true
2 | err | exec: --memory 1GX  | exec -m 1GX -- true
2 | err | exec: --memory 99999999999999999999 | exec -m 99999999999999999999 -- true
2 | err | exec: --rlimit cpu=1: expected nofile=N, nproc=N, fsize_mb=MiB or fsize=SIZE | exec --rlimit cpu=1 -- true
2 | err | exec: --rlimit fsize_mb=x: expected a number > 0 | exec --rlimit fsize_mb=x -- true
2 | err | exec: --rlimit nofile=0 | exec --rlimit nofile=0 -- true
2 | err | --user: expected sandbox (1000) or root (0) | exec -u nobody -- true
2 | err | --workdir: expected an absolute path | exec -w rel -- true
2 | err | mode must be ro or rw | exec -v /tmp:/x:rx -- true
2 | err | expected HOST:GUEST  | exec -v /tmp -- true
2 | err | /nonexistent-ro-dir  | exec -v /nonexistent-ro-dir:/x -- true
2 | err | /nonexistent-ro-dir  | exec -v /nonexistent-ro-dir:/x:ro -- true
2 | err | not a directory      | exec -v /etc/passwd:/x:rw -- true
2 | err | exec: no program given | exec -e A=1
EOF
    [ ! -e /nonexistent-ro-dir ] || fail "a ro mount directory was created"
}

test_missing_rw_mount_dir_is_created() {
    # parsing creates it, before any VM; relative HOST is made absolute
    cd "$T"
    VOIDBOX_QEMU=/nonexistent/qemu vb exec -v res/deep:/out:rw -- true
    expect_rc 125
    [ -d "$T/res/deep" ] || fail "the rw mount directory was not created"
    VOIDBOX_QEMU=/nonexistent/qemu vb shell --mount "$T/other:/o:rw"
    expect_rc 125
    [ -d "$T/other" ] || fail "shell: the rw mount directory was not created"
}

# ---- JSON: -o json / --output json wherever data is printed ---------------

test_json_output() {
    vb version -o json
    expect_rc 0
    jq -e '(.version | type == "string") and (.protocol | type == "number")' "$T/out" >/dev/null ||
        fail "version -o json: $out"
    vb version --output=json
    expect_rc 0
    jq -e .version "$T/out" >/dev/null || fail "version --output=json: $out"
    vb version -o text
    grep -q '^voidbox [0-9]' "$T/out" || fail "version -o text: $out"

    vb validate -o json "$EXAMPLES/hello-pipeline.yaml"
    expect_rc 0
    jq -e '.valid == true and .kind == "pipeline" and .boxes == 4 and .stages == 3' "$T/out" >/dev/null ||
        fail "validate -o json: $out"
    vb validate "$EXAMPLES/workflow.yaml" --output json
    jq -e '.valid == true and .kind == "workflow" and (.steps | type == "number")' "$T/out" >/dev/null ||
        fail "validate --output json after FILE: $out"
    printf 'api_version: v1\nkind: pipeline\nname: x\nbogus_field: 1\n' >"$T/bad.yaml"
    vb validate -o json "$T/bad.yaml"
    expect_rc 2
    jq -e '.valid == false and (.problems | length) >= 1' "$T/out" >/dev/null || fail "invalid spec: $out"
    expect_err_has "bad.yaml"

    vb inspect -o json "$EXAMPLES/sandbox.yaml"
    expect_rc 0
    jq -e '.kind == "sandbox"' "$T/out" >/dev/null || fail "inspect -o json: $out"

    XDG_CACHE_HOME="$T/cache" vb image list -o json
    expect_rc 0
    [ "$(jq -c . "$T/out")" = "[]" ] || fail "empty cache: $out"
    mkdir -p "$T/cache/voidbox/kernel-abc" && head -c 1000 /dev/zero >"$T/cache/voidbox/kernel-abc/bzImage"
    ln -s kernel-abc "$T/cache/voidbox/kernel-current"
    XDG_CACHE_HOME="$T/cache" vb image list --output json
    expect_rc 0
    jq -e 'map(select(.kind == "kernel")) == [{"name": "kernel-abc", "kind": "kernel", "size": 1000, "current": true}]' \
        "$T/out" >/dev/null ||
        fail "image list -o json: $out"
    XDG_CACHE_HOME="$T/cache" vb image list
    grep -qE '^kernel-abc +1000 +current$' "$T/out" || fail "image list: $out"

    check_table <<'EOF'
2 | err | version: --output must be text or json, not 'yaml' (see 'voidbox version --help') | version -o yaml
2 | err | inspect: --output must be text or json, not 'xml'  | inspect -o xml x.yaml
2 | err | validate: --output must be text or json            | validate --output=csv x.yaml
2 | err | image list: --output must be text or json          | image list -o yaml
EOF
}

# ---- with VMs ------------------------------------------------------------

test_exec_short_flags_in_the_guest() {
    mkdir -p "$T/data" && echo from-host >"$T/data/f"
    FROM_HOST=hv vb exec -e A=1 -e FROM_HOST -w /tmp -u root -v "$T/data:/data" -v "$T/res:/res:rw" -- \
        sh -c 'echo "$A $FROM_HOST"; pwd; id -u; cat /data/f; echo out > /res/r'
    expect_rc 0
    expect_out $'1 hv\n/tmp\n0\nfrom-host'
    [ "$(cat "$T/res/r")" = out ] || fail "the created rw mount did not carry the file back"
    expect_clean
}

memtotal_kb() { sed -n 's/^MemTotal: *\([0-9]*\) kB.*/\1/p' <<<"$out" | head -1; }

test_memory_units_and_the_1024_default() {
    vb exec -- grep MemTotal /proc/meminfo
    expect_rc 0
    local kb; kb=$(memtotal_kb)
    # the guest kernel keeps a little for itself: 1024 MiB shows as ~1000000 kB
    [ -n "$kb" ] && [ "$kb" -gt 900000 ] && [ "$kb" -le 1048576 ] || fail "default: MemTotal $kb kB"
    vb exec -m 512M -- grep MemTotal /proc/meminfo
    kb=$(memtotal_kb)
    [ -n "$kb" ] && [ "$kb" -gt 400000 ] && [ "$kb" -le 524288 ] || fail "-m 512M: MemTotal $kb kB"
    vb exec --memory 2G -- grep MemTotal /proc/meminfo
    kb=$(memtotal_kb)
    [ -n "$kb" ] && [ "$kb" -gt 1900000 ] && [ "$kb" -le 2097152 ] || fail "--memory 2G: MemTotal $kb kB"
    expect_clean
}

test_rlimit_spec_names() {
    vb exec --rlimit nofile=77 --rlimit nproc=33 --rlimit fsize_mb=1 -- sh -c '
        ulimit -n; ulimit -u
        head -c 2000000 /dev/zero > /tmp/f 2>/dev/null; stat -c %s /tmp/f'
    expect_out $'77\n33\n1048576'
    vb exec --rlimit fsize=512K -- sh -c 'head -c 2000000 /dev/zero > /tmp/f 2>/dev/null; stat -c %s /tmp/f'
    expect_out 524288
}

test_exec_tty_without_a_terminal() {
    vb exec -t -- sh -c 'tty; echo "[$TERM]"; stty size; exit 5'
    expect_rc 5
    grep -qE '^/dev/pts/[0-9]+'$'\r''$' "$T/out" || fail "no guest terminal (or no \\r\\n): $(od -c "$T/out" | head)"
    grep -q '^\[xterm-256color\]' "$T/out" || fail "TERM: $out"
    grep -q '^24 80' "$T/out" || fail "default size: $out"
    # without -t: pipes, no terminal
    vb exec -- sh -c 'tty'
    expect_rc 1
    expect_out "not a tty"
    expect_clean
}

test_exec_it_under_a_terminal() {
    command -v script >/dev/null || fail "script(1) is needed (util-linux)"
    # type into a real local terminal: wait for the guest shell, then start
    # a sleep, ^C it (a byte for the guest in raw mode, not a signal to
    # voidbox), and exit with a code
    {
        for _ in $(seq 1 600); do grep -q 'ready-42' "$T/out" 2>/dev/null && break; sleep 0.1; done
        printf 'sleep 100; echo sleep-ended\n'
        sleep 2
        printf '\003'
        sleep 0.5
        printf 'echo alive-$((1+1)); exit 6\n'
    } | script -qfec "stty -g >$T/before; \
        $(printf %q "$VB") exec -it -- sh -c 'echo ready-\$((6*7)); exec sh -i' 2>$T/err; \
        echo \$? >$T/rc; stty -g >$T/after" /dev/null >"$T/out"
    rc=$(cat "$T/rc"); check_sanitizers
    expect_rc 6
    grep -q 'alive-2' "$T/out" || fail "the shell did not survive ^C: $(tail -c 400 "$T/out")"
    # (the terminal echoes what is typed: only a line starting with it counts)
    ! grep -q '^sleep-ended' "$T/out" || fail "^C did not interrupt sleep"
    cmp -s "$T/before" "$T/after" || fail "terminal settings not restored"
    expect_clean
}

# VB_ONLY=name runs one test
if [ -n "${VB_ONLY:-}" ]; then
    for f in $(declare -F | awk '{print $3}' | grep '^test_' | grep -v "^test_${VB_ONLY}\$"); do unset -f "$f"; done
fi
run_tests
