#!/usr/bin/env bash
# Stages and execs on OCI images (docs/oci.md, "Running on an image"):
# `voidbox exec --image`, `sandbox.image` in run specs, `validate` of a
# reference, against Debian's docker-registry on loopback with images the
# test builds itself (oci_lib.sh).  Boots VMs (TCG here): every test has a
# time limit.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/oci_lib.sh"
. "$here/lib_agent.sh"   # spec, events, the fake model provider
TEST_TIMEOUT=${OCI_TEST_TIMEOUT:-300}
# the guest kernel stays where `voidbox image build` put it; the store is
# the test's own
export REAL_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}"
export REAL_KERNEL="${VOIDBOX_KERNEL:-$REAL_CACHE/voidbox/kernel-current/bzImage}"

oci_env() {
    export XDG_CACHE_HOME=$T/cache HOME=$T/home VOIDBOX_KERNEL=$REAL_KERNEL VOIDBOX_OCI_RETRY_MS=10
    unset DOCKER_CONFIG VOIDBOX_INSECURE_REGISTRIES
    mkdir -p "$HOME"
    STORE=$T/cache/voidbox/oci
}

# one exec on the image; $out is its stdout
on_image() { vb exec --timeout 120 --image "$REG/test/bb:v1" "$@"; }

test_exec_image_layers() {
    oci_env; registry_start
    oci_image_busybox test/bb v1
    on_image -- sh -c 'cat /etc/zstd-layer /data/keep.txt; ls /data; ls /opq; cat /opq/c'
    expect_rc 0
    expect_out "zstd
keep
keep.txt
c
c"
    expect_err_has "building the root disk of $REG/test/bb:v1"
    [ -f "$STORE/rootfs/${OCI_DIGEST#sha256:}.ext4" ] || fail "no cached root disk"
}

test_exec_image_owners_and_users() {
    oci_env; registry_start
    oci_image_busybox test/bb v1
    # the image's User is 0: root by default; -u sandbox is uid 1000
    on_image -- sh -c 'id -u; stat -c "%u %a" /etc/owned-by-root; echo x >>/etc/owned-by-root && echo wrote'
    expect_rc 0
    expect_out "0
0 644
wrote"
    on_image -u sandbox -- sh -c 'id -u; echo x >>/etc/owned-by-root || echo refused'
    expect_rc 0
    expect_out "1000
refused"
    on_image -u 1000:1000 -- id -u
    expect_rc 0
    expect_out "1000"
}

test_exec_image_env_workdir() {
    oci_env; registry_start
    oci_image_busybox test/bb v1
    on_image -- sh -c 'echo $OCI_TEST; pwd; echo $PATH'
    expect_rc 0
    expect_out "1
/work
/usr/local/bin:/usr/bin:/bin"
    # the command line's wins over the image's
    on_image -e OCI_TEST=2 -w /tmp -- sh -c 'echo $OCI_TEST; pwd'
    expect_rc 0
    expect_out "2
/tmp"
}

test_exec_image_writes_do_not_persist() {
    oci_env; registry_start
    oci_image_busybox test/bb v1
    on_image -- sh -c 'echo new >/new-file && echo gone >/data/keep.txt && rm /bin/true && cat /new-file /data/keep.txt'
    expect_rc 0
    expect_out "new
gone"
    on_image -- sh -c 'ls /new-file 2>/dev/null; cat /data/keep.txt; ls /bin/true'
    expect_rc 0
    expect_out "keep
/bin/true"
}

test_exec_image_cached_offline() {
    oci_env; registry_start
    oci_image_busybox test/bb v1
    vb pull -q "$REG/test/bb:v1"
    expect_rc 0
    registry_stop
    # no registry: the store's copy, for the default policy and for never
    on_image -- cat /etc/zstd-layer
    expect_rc 0
    expect_out "zstd"
    expect_err_has "building the root disk"
    on_image --pull never -- cat /etc/zstd-layer
    expect_rc 0
    expect_out "zstd"
    grep -q "building the root disk" "$T/err" && fail "the root disk was built again"
    # always asks the registry, which is gone
    on_image --pull always -- true
    expect_rc 125
    expect_err_has "$REG/test/bb:v1"
    expect_err_has "http://$REG/v2/"
}

test_exec_image_missing() {
    oci_env; registry_start
    vb exec --image "$REG/test/nope:v9" -- true
    expect_rc 125
    expect_err_has "$REG/test/nope:v9"
    expect_err_has "http://$REG/v2/test/nope/manifests/v9"
    expect_err_has "404"
    vb exec --image "$REG/test/nope:v9" --pull never -- true
    expect_rc 125
    expect_err_has "$REG/test/nope:v9 is not in the store"
    vb exec --image 'Bad/Ref:x' -- true
    expect_rc 2
    expect_err_has "--image"
    vb exec --pull never -- true
    expect_rc 2
    expect_err_has "--pull needs --image"
    vb exec -u nobody -- true
    expect_rc 2
}

test_exec_image_entrypoint_cmd() {
    oci_env; registry_start
    oci_image_busybox test/bb v1
    # Cmd is ["/bin/sh"]: stdin is its script
    printf 'echo from-cmd; pwd\n' | "$VB" exec --timeout 120 --image "$REG/test/bb:v1" >"$T/out" 2>"$T/err"
    rc=$?; out=$(cat "$T/out")
    expect_rc 0
    expect_out "from-cmd
/work"
}


test_pipeline_boxes_on_their_own_images() {
    oci_env; registry_start
    oci_image_busybox test/bb v1
    local d1=$OCI_DIGEST
    # a second image: the same layers, User 1000, so another manifest
    OCI_USER=1000 oci_image_busybox test/bb1000 v1
    local d2=$OCI_DIGEST
    [ "$d1" != "$d2" ] || fail "the two images have one manifest"
    spec p <<EOF
api_version: v1
kind: pipeline
name: two-roots
sandbox: {memory_mb: 256}
pipeline:
  boxes:
    - {name: first, sandbox: {image: "$REG/test/bb:v1"}, run: {program: sh, args: ["-c", "cat /etc/zstd-layer; id -u; pwd; echo \$OCI_TEST"]}}
    - name: second
      sandbox: {image: "$REG/test/bb1000:v1"}
      run: {program: sh, args: ["-c", "cat /workspace/input.json; id -u; ls /opq"]}
    - name: plain
      run: {program: sh, args: ["-c", "cat /workspace/input.json; ls /etc/zstd-layer 2>&1 || echo no-image-here"]}
  stages:
    - {type: box, name: first}
    - {type: box, name: second}
    - {type: box, name: plain}
EOF
    vb run "$T/p.yaml"
    expect_rc 0
    grep -q "no-image-here" <<<"$out" || fail "the third box ran on an image: $out"
    grep -q "^zstd" <<<"$out" || fail "output: $out"
    grep -q "^1000$" <<<"$out" || fail "the second box did not run as its image's User: $out"
    # each VM says which image it booted
    events | jq -se --arg r "$REG/test/bb:v1" --arg d "$d1" \
        'any(.[]; .event == "vm.booted" and .stage == "first" and .image == $r and .image_digest == $d)' >/dev/null ||
        fail "vm.booted of first: $(events | grep vm.booted)"
    events | jq -se --arg r "$REG/test/bb1000:v1" --arg d "$d2" \
        'any(.[]; .event == "vm.booted" and .stage == "second" and .image == $r and .image_digest == $d)' >/dev/null ||
        fail "vm.booted of second: $(events | grep vm.booted)"
    events | jq -se 'any(.[]; .event == "vm.booted" and .stage == "plain" and (has("image") | not))' >/dev/null ||
        fail "vm.booted of plain: $(events | grep vm.booted)"
    expect_clean
}

# no stage.started anywhere: nothing booted (a run stopped before its
# record opened has no events at all)
no_stage_started() {
    local f
    for f in $(find "$T/state" -name events.jsonl 2>/dev/null); do
        grep -q '"stage.started"' "$f" && fail "a stage started: $(cat "$f")"
    done
    return 0
}

# Every image of a run is had before any VM boots: a pipeline whose second
# box names a missing image runs no box at all, exit 125 (as docker run),
# the message naming the box, the reference, the URL and the 404.
test_run_spec_image_missing_fails_before_any_box() {
    oci_env; registry_start
    spec p <<EOF
api_version: v1
kind: pipeline
name: missing
sandbox: {memory_mb: 256}
pipeline:
  boxes:
    - {name: ok, run: {program: echo, args: [fine]}}
    - {name: gone, sandbox: {image: "$REG/test/gone:v1"}, run: {program: "true"}}
  stages:
    - {type: box, name: ok}
    - {type: box, name: gone}
EOF
    vb run -o json "$T/p.yaml"
    expect_rc 125
    expect_err_has "box 'gone': sandbox.image: $REG/test/gone:v1"
    expect_err_has "http://$REG/v2/test/gone/manifests/v1"
    expect_err_has "404"
    [[ "$out" != *fine* ]] || fail "the first box ran: $out"
    no_stage_started
    # --pull never: not in the store, no registry asked; 125 as well
    vb run --pull never -o json "$T/p.yaml"
    expect_rc 125
    expect_err_has "box 'gone': sandbox.image: $REG/test/gone:v1 is not in the store"
    no_stage_started
    # a workflow's image: its run stops before the VM boots
    spec w <<EOF
api_version: v1
kind: workflow
name: wf
sandbox: {memory_mb: 256, image: "$REG/test/gone:v1"}
workflow:
  steps:
    - {name: s1, run: {program: echo, args: [fine]}}
EOF
    vb run "$T/w.yaml"
    expect_rc 125
    expect_err_has "workflow 'wf': sandbox.image: $REG/test/gone:v1"
    expect_err_has "404"
    no_stage_started
    # a registry that cannot be reached: the same
    registry_stop
    vb run "$T/p.yaml"
    expect_rc 125
    expect_err_has "box 'gone': sandbox.image: $REG/test/gone:v1"
    expect_err_has "http://$REG/v2/"
    no_stage_started
    # only a malformed reference is a usage error
    vb run --pull sometimes "$T/p.yaml"
    expect_rc 2
    expect_err_has "--pull: expected missing, always or never"
    sed -i "s|$REG/test/gone:v1|Bad/Ref:x|" "$T/p.yaml"
    vb run "$T/p.yaml"
    expect_rc 2
    no_stage_started
    expect_clean
}

# --pull always asks the registry once per run and reference, not once per
# box or VM boot: two boxes in two stages on one image, and the same image
# again as an image skill.
test_run_pull_always_once_per_run() {
    oci_env; REG_ACCESSLOG=1 registry_start
    oci_image_busybox test/bb v1
    spec p <<EOF
api_version: v1
kind: pipeline
name: always
sandbox: {memory_mb: 256, image: "$REG/test/bb:v1"}
pipeline:
  boxes:
    - {name: a, run: {program: sh, args: ["-c", "cat /etc/zstd-layer"]}}
    - name: b
      skills: [{image: "$REG/test/bb:v1", mount: /opt/bb}]
      run: {program: sh, args: ["-c", "cat /opt/bb/etc/zstd-layer"]}
  stages:
    - {type: box, name: a}
    - {type: box, name: b}
EOF
    local before after
    before=$(grep -c 'manifests/v1 HTTP' "$T/registry/log")
    vb run --pull always "$T/p.yaml"
    expect_rc 0
    expect_out "zstd"
    after=$(grep -c 'manifests/v1 HTTP' "$T/registry/log")
    [ $((after - before)) -eq 1 ] ||
        fail "the registry was asked $((after - before)) times for the manifest: $(grep 'manifests/v1 HTTP' "$T/registry/log")"
    expect_clean
}

test_workflow_on_an_image() {
    oci_env; registry_start
    oci_image_busybox test/bb v1
    spec w <<EOF
api_version: v1
kind: workflow
name: wf-image
sandbox: {memory_mb: 256, image: "$REG/test/bb:v1", env: {OCI_TEST: from-spec}}
workflow:
  steps:
    - {name: write, run: {program: sh, args: ["-c", "echo shared >/data/new"]}}
    - name: read
      depends_on: [write]
      run: {program: sh, args: ["-c", "cat /data/new /etc/zstd-layer; echo \$OCI_TEST; pwd"]}
  output_step: read
EOF
    vb run "$T/w.yaml"
    expect_rc 0
    expect_out "shared
zstd
from-spec
/work"
    [ "$(events | jq -c 'select(.event == "vm.booted" and .image != null)' | wc -l)" -eq 2 ] ||
        fail "vm.booted events: $(events | grep vm.booted)"
    expect_clean
}

test_validate_image_reference() {
    oci_env
    spec v <<'EOF'
api_version: v1
kind: pipeline
name: bad-ref
sandbox:
  image: "Python:3.12"
pipeline:
  boxes:
    - name: a
      sandbox: {image: "ok/name:v1@sha256:1234"}
      run: {program: "true"}
  stages:
    - {type: box, name: a}
EOF
    vb validate "$T/v.yaml"
    expect_rc 2
    expect_err_has "$T/v.yaml:5:10: sandbox.image: image reference 'Python:3.12'"
    expect_err_has "$T/v.yaml:9:24: pipeline.boxes[0].sandbox.image: "
    # a good one validates without any registry
    sed -i 's|"Python:3.12"|"python:3.12-slim"|; s|@sha256:1234||' "$T/v.yaml"
    vb validate "$T/v.yaml"
    expect_rc 0
}

# The builtin agent on an image whose User is root: its tools run as the
# sandbox user (its files are the sandbox user's), in the image's root.
test_builtin_agent_on_an_image() {
    oci_env; registry_start
    oci_image_busybox test/bb v1
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [
      {"tool_use": {"name": "bash", "id": "tu_1",
                    "input": {"command": "echo uid=$(id -u); cat /etc/zstd-layer; echo made >/workspace/f"}},
       "usage": {"input_tokens": 10, "output_tokens": 5}},
      {"expect": "uid=1000",
       "tool_use": {"name": "read_file", "id": "tu_2", "input": {"path": "/workspace/f"}},
       "usage": {"input_tokens": 10, "output_tokens": 5}},
      {"expect": "made", "text": "done on the image", "usage": {"input_tokens": 10, "output_tokens": 5}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: on-image
sandbox: {memory_mb: 256, image: "$REG/test/bb:v1"}
llm: {provider: custom, base_url: "http://127.0.0.1:$port", api_key_env: VB_TEST_KEY, model: fake-model, agent: builtin}
agent: {prompt: "look around"}
EOF
    vb run --output json "$T/a.yaml"
    expect_rc 0
    jqx '.output == "done on the image" and .success'
    jq -e --arg r "$REG/test/bb:v1" --arg d "$OCI_DIGEST" '.stages[0].image == {"reference": $r, "digest": $d}' <<<"$out" >/dev/null ||
        fail "the result's stage lacks its image: $(jq -c .stages[0] <<<"$out")"
    sed -n 2p "$T/fake.log" | jq -e '.body | tostring | (contains("uid=1000") and contains("zstd"))' >/dev/null ||
        fail "the tool did not run as the sandbox user on the image: $(sed -n 2p "$T/fake.log" | head -c 600)"
    events | jq -se --arg r "$REG/test/bb:v1" 'any(.[]; .event == "vm.booted" and .image == $r)' >/dev/null ||
        fail "vm.booted lacks the image"
    vb logs "$(jq -r .run_id <"$T/out")"
    grep -q "image $REG/test/bb:v1 (sha256:" "$T/out" || fail "voidbox logs does not name the image: $(head -c 600 "$T/out")"
    expect_clean
}

test_shell_on_an_image() {
    oci_env; registry_start
    oci_image_busybox test/bb v1
    vb shell --image "$REG/test/bb:v1" -- sh -c 'cat /etc/zstd-layer; id -u; pwd'
    expect_rc 0
    [ "$(tr -d '\r' <<<"$out")" = "zstd
0
/work" ] || fail "shell --image: $out"
    # a kind: sandbox spec's image, -u sandbox over the image's User
    spec s <<EOF
api_version: v1
kind: sandbox
name: sb
sandbox: {memory_mb: 256, image: "$REG/test/bb:v1"}
EOF
    vb shell "$T/s.yaml" -u sandbox -- sh -c 'ls /opq; id -u'
    expect_rc 0
    [ "$(tr -d '\r' <<<"$out")" = "c
1000" ] || fail "shell on the spec's image: $out"
    vb shell --pull never -- true
    expect_rc 2
    expect_err_has "--pull needs --image"
    # an image that cannot be had: 125, as exec --image
    vb shell --image "$REG/test/nope:v9" -- true
    expect_rc 125
    expect_err_has "http://$REG/v2/test/nope/manifests/v9"
    expect_err_has "404"
    expect_clean
}

# claude-code on an image whose User is root: it runs as the sandbox user
# (its settings and skills live in /home/sandbox), with the image's files.
# Needs the real claude-code binary in the user's cache (as test_agent_claude.sh).
test_claude_code_on_an_image() {
    local real=${REAL_CACHE}/voidbox/agents
    if ! "$VB" agent list -o json | jq -e '.[] | select(.agent == "claude-code") | .cached' >/dev/null; then
        echo "  skipped: claude-code is not in the cache (voidbox agent pull claude-code)" >&2
        return 0
    fi
    oci_env; registry_start
    mkdir -p "$XDG_CACHE_HOME/voidbox" && ln -s "$real" "$XDG_CACHE_HOME/voidbox/agents"
    oci_image_busybox test/bb v1
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [
      {"tool_use": {"name": "Bash", "id": "toolu_1",
                    "input": {"command": "echo uid=$(id -u); cat /etc/zstd-layer; ls /opq", "description": "look"}},
       "usage": {"input_tokens": 10, "output_tokens": 5}},
      {"expect": "uid=1000", "text": "claude on the image", "usage": {"input_tokens": 10, "output_tokens": 5}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: cc-image
sandbox: {memory_mb: 1024, image: "$REG/test/bb:v1"}
llm: {provider: custom, agent: claude-code, base_url: "http://127.0.0.1:$port", api_key_env: VB_TEST_KEY, model: fake-model}
agent: {prompt: "look around", timeout_secs: 300}
EOF
    vb run --output json "$T/a.yaml"
    expect_rc 0
    jqx '.output == "claude on the image" and .success'
    jq -c 'select(.path | startswith("/v1/messages?"))' "$T/fake.log" | sed -n 2p |
        jq -e '.body | tostring | (contains("uid=1000\\nzstd\\nc"))' >/dev/null ||
        fail "claude's Bash did not run as the sandbox user on the image: $(sed -n 2p "$T/fake.log" | head -c 900)"
    expect_clean
}

# a fan-out whose boxes share an image not yet pulled: both pull and build
# at once (the store's locks), both run on it
test_fan_out_on_one_new_image() {
    oci_env; registry_start
    oci_image_busybox test/bb v1
    spec f <<EOF
api_version: v1
kind: pipeline
name: fan-image
sandbox: {memory_mb: 256, image: "$REG/test/bb:v1"}
pipeline:
  boxes:
    - {name: a, run: {program: sh, args: ["-c", "cat /etc/zstd-layer"]}}
    - {name: b, run: {program: sh, args: ["-c", "ls /opq"]}}
  stages:
    - {type: fan_out, boxes: [a, b]}
EOF
    vb run --max-parallel 2 "$T/f.yaml"
    expect_rc 0
    expect_out '["zstd\n","c\n"]'
    [ "$(ls "$STORE/rootfs")" = "${OCI_DIGEST#sha256:}.ext4" ] || fail "rootfs/: $(ls "$STORE/rootfs")"
    expect_clean
}

# examples/oci-python.yaml on a stand-in for python:3.12-slim (Docker Hub is
# not reachable offline): the host's python3 with its libraries and
# standard library as a one-layer image on the loopback registry.
test_example_oci_python_on_a_python_image() {
    local py
    py=$(readlink -f /usr/bin/python3 2>/dev/null)
    if [ ! -x "$py" ] || ! ldd "$py" >/dev/null 2>&1 || [ ! -d "/usr/lib/$(basename "$py")" ]; then
        echo "  skipped: no Debian python3 on this host to build an image from" >&2
        return 0
    fi
    oci_env; registry_start
    local r=$T/py lib
    mkdir -p "$r/usr/bin" "$r/usr/lib" "$r/bin" "$r/tmp"
    cp "$py" "$r/usr/bin/" && ln -s "$(basename "$py")" "$r/usr/bin/python3"
    for lib in $(ldd "$py" | grep -o '/[^ ]*'); do
        mkdir -p "$r$(dirname "$lib")" && cp -L "$lib" "$r$lib"
    done
    tar -C /usr/lib --exclude=test --exclude=__pycache__ --exclude=idlelib --exclude=tkinter \
        -cf - "$(basename "$py")" | tar -C "$r/usr/lib" -xf -
    cp "$OCI_BUSYBOX" "$r/bin/busybox" && ln -s busybox "$r/bin/sh"
    chmod 1777 "$r/tmp"
    oci_tar "$r" "$T/py.tar" && gzip -n -1 "$T/py.tar"
    printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/bin:/usr/bin:/bin","PYTHON_VERSION=3.test","LANG=C.UTF-8"],"Cmd":["python3"]},"rootfs":{"type":"layers","diff_ids":[]}}' >"$T/pycfg.json"
    oci_push_blob test/python "$T/pycfg.json"; oci_push_blob test/python "$T/py.tar.gz"
    oci_manifest "$T/pym.json" "$MT_OCI_MANIFEST" "$MT_OCI_CONFIG" "$T/pycfg.json" "$MT_OCI_GZIP:$T/py.tar.gz"
    oci_push_manifest test/python slim "$T/pym.json" "$MT_OCI_MANIFEST"
    grep -q '^  image: python:3.12-slim$' "$ROOT/examples/oci-python.yaml" || fail "the example's image line changed"
    sed "s|^  image: python:3.12-slim$|  image: $REG/test/python:slim|" "$ROOT/examples/oci-python.yaml" >"$T/ex.yaml"
    vb run -q "$T/ex.yaml"
    expect_rc 0
    jq -e '.python == "3.test" and .machine == "x86_64" and .uid == 1000 and .primes_below_100 == 25 and .largest == 97' \
        <<<"$out" >/dev/null || fail "the example's output: $out"
    expect_clean
}

# the root disk takes one of the VM's transports: one mount fewer, said
# before anything boots
test_exec_image_transport_budget() {
    oci_env; registry_start
    oci_image_busybox test/bb v1
    mkdir -p "$T/m"
    on_image -v "$T/m:/a" -v "$T/m:/b" -v "$T/m:/c" -v "$T/m:/d" -v "$T/m:/e" -- true
    expect_rc 2
    expect_err_has "at most 4 mounts per VM"
    on_image --network -v "$T/m:/a" -v "$T/m:/b" -v "$T/m:/c" -v "$T/m:/d" -- true
    expect_rc 2
    expect_err_has "at most 3 mounts per VM"
    on_image -v "$T/m:/a" -v "$T/m:/b" -v "$T/m:/c" -v "$T/m:/d" -- ls -d /a /d
    expect_rc 0
    expect_out "/a
/d"
    expect_clean
}

run_tests
