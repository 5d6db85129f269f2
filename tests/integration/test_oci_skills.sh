#!/usr/bin/env bash
# Image skills {image, mount, readonly: true} (docs/oci.md "Image skills"):
# an image the test builds and pushes to Debian's docker-registry on
# loopback (oci_lib.sh), mounted read-only in the box that declares it, its
# tool on PATH by name, absent from a sibling box of the same pipeline; the
# checks `validate` makes without the network; a missing image named.
# Real VMs (TCG here).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/oci_lib.sh"
. "$here/lib_agent.sh"
TEST_TIMEOUT=${OCI_TEST_TIMEOUT:-400}

# A private OCI store; the guest kernel and initramfs still come from the
# user's cache (everything of it but oci/ linked in).
oci_env() {
    local real=${XDG_CACHE_HOME:-$HOME/.cache}/voidbox e
    export XDG_CACHE_HOME=$T/cache
    mkdir -p "$T/cache/voidbox"
    for e in "$real"/*; do
        [ "${e##*/}" = oci ] || ln -s "$e" "$T/cache/voidbox/${e##*/}"
    done
    STORE=$T/cache/voidbox/oci
}

# oci_image_tool REPO TAG: one layer with /bin/hello-skill (a script the
# guest's sh runs) and /share/data.txt; sets OCI_DIGEST.
oci_image_tool() {
    local repo=$1 tag=$2 d=$T/tool
    mkdir -p "$d/root/bin" "$d/root/share"
    printf '#!/bin/sh\necho "hello from the skill image"\n' >"$d/root/bin/hello-skill"
    chmod 755 "$d/root/bin/hello-skill"
    echo "skill data" >"$d/root/share/data.txt"
    oci_tar "$d/root" "$d/l.tar" && gzip -n -1 -c "$d/l.tar" >"$d/l.tar.gz"
    oci_config "$d/config.json" amd64
    oci_push_blob "$repo" "$d/config.json"
    oci_push_blob "$repo" "$d/l.tar.gz"
    oci_manifest "$d/manifest.json" "$MT_OCI_MANIFEST" "$MT_OCI_CONFIG" "$d/config.json" \
        "$MT_OCI_GZIP:$d/l.tar.gz"
    oci_push_manifest "$repo" "$tag" "$d/manifest.json" "$MT_OCI_MANIFEST"
    OCI_DIGEST=sha256:$(oci_sha "$d/manifest.json")
}

test_skill_image_in_one_box_only() {
    oci_env; registry_start
    oci_image_tool test/tool v1
    spec p <<EOF
api_version: v1
kind: pipeline
name: skills
sandbox: {memory_mb: 256}
pipeline:
  boxes:
    - name: with
      skills: [{image: "$REG/test/tool:v1", mount: /opt/tool}]
      run: {program: sh, args: ["-c", "hello-skill; cat /opt/tool/share/data.txt; command -v hello-skill; if touch /opt/tool/new 2>/dev/null; then echo WRITABLE; else echo read-only; fi; grep ' /opt/tool ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1"]}
    - name: without
      run: {program: sh, args: ["-c", "ls /opt/tool 2>/dev/null || echo no-mount; command -v hello-skill || echo no-tool"]}
  stages:
    - {type: fan_out, boxes: [with, without]}
EOF
    vb validate "$T/p.yaml"
    expect_rc 0
    grep -q "command box" "$T/err" && fail "validate warns about an image skill on a command box: $err"
    vb run "$T/p.yaml"
    expect_rc 0
    local with without
    with=$(jq -r '.[0]' <<<"$out") without=$(jq -r '.[1]' <<<"$out")
    [ "$with" = $'hello from the skill image\nskill data\n/opt/tool/bin/hello-skill\nread-only\nro' ] ||
        fail "the box with the skill said: $with"
    [ "$without" = $'no-mount\nno-tool' ] || fail "the sibling box said: $without"
    # one event, for the box that has it: reference, manifest, mount, size
    events | jq -se --arg ref "$REG/test/tool:v1" --arg dg "$OCI_DIGEST" \
        'map(select(.event == "skill.provisioned")) | length == 1 and .[0].stage == "with" and
         .[0].type == "oci" and .[0].name == $ref and .[0].digest == $dg and
         .[0].path == "/opt/tool" and .[0].size > 0' >/dev/null ||
        fail "skill.provisioned events: $(events | grep skill.provisioned | head -c 800)"
    # shown by the progress display and by voidbox logs
    grep -q "stage with: skill $REG/test/tool:v1 (oci, [0-9]* bytes) in /opt/tool" "$T/err" ||
        fail "the progress does not show the skill: $(head -c 900 "$T/err")"
    local run
    run=$(basename "$(dirname "$(find "$T/state" -name events.jsonl | head -1)")")
    vb logs "$run"
    grep -q "skill.provisioned .*oci $REG/test/tool:v1, sha256:[0-9a-f]\{12\}, [0-9]* bytes, at /opt/tool" "$T/out" ||
        fail "voidbox logs lacks the skill: $(grep skill "$T/out" | head -c 600)"
    # the disk was built once, in the store, by manifest
    [ -f "$STORE/rootfs/${OCI_DIGEST#sha256:}.ext4" ] || fail "no root disk in the store"
    # a second run uses the store: no registry needed
    registry_stop
    vb run "$T/p.yaml"
    expect_rc 0
    expect_clean
}

test_skill_checks_without_the_network() {
    oci_env
    local base='api_version: v1
kind: pipeline
name: bad
pipeline:
  boxes:
    - name: b
      run: {program: "true"}
      skills:'
    printf '%s\n        - {image: "127.0.0.1:9/x:v1", mount: /opt/x, readonly: false}\n' "$base" >"$T/ro.yaml"
    vb validate "$T/ro.yaml"
    expect_rc 2
    expect_err_has "ro.yaml:9:11: skill image '127.0.0.1:9/x:v1': readonly: false is not supported"
    printf '%s\n        - {image: "127.0.0.1:9/x:v1", mount: /usr/local}\n' "$base" >"$T/sys.yaml"
    vb validate "$T/sys.yaml"
    expect_rc 2
    expect_err_has "sys.yaml:9:11: skill image '127.0.0.1:9/x:v1': mount '/usr/local' clashes with /usr"
    printf '%s\n        - {image: "127.0.0.1:9/x:v1", mount: /}\n' "$base" >"$T/root.yaml"
    vb validate "$T/root.yaml"
    expect_rc 2
    expect_err_has "mount '/' would hide the stage's own root"
    printf '%s\n        - {image: "127.0.0.1:9/x:v1", mount: /opt/x}\n        - {image: "127.0.0.1:9/y:v1", mount: /opt/x/sub}\n' "$base" >"$T/two.yaml"
    vb validate "$T/two.yaml"
    expect_rc 2
    expect_err_has "two.yaml:10:11: skill image '127.0.0.1:9/y:v1': mount '/opt/x/sub' clashes with the mount of skill image '127.0.0.1:9/x:v1' (line 9)"
    printf '%s\n        - {image: "127.0.0.1:9/UPPER", mount: /opt/x}\n' "$base" >"$T/ref.yaml"
    vb validate "$T/ref.yaml"
    expect_rc 2
    expect_err_has "ref.yaml:9:11: skill image '127.0.0.1:9/UPPER'"
    { printf '%s\n' "$base"; for i in 1 2 3 4 5; do printf '        - {image: "127.0.0.1:9/x%s:v1", mount: /opt/x%s}\n' $i $i; done; } >"$T/many.yaml"
    vb validate "$T/many.yaml"
    expect_rc 2
    expect_err_has "many.yaml:13:11: skill image '127.0.0.1:9/x5:v1': a stage may have at most 4 image skills"
    # a clash with the box's own directory mount is found when the run
    # prepares the VM, before anything is pulled
    mkdir -p "$T/data"
    printf '%s\n        - {image: "127.0.0.1:9/x:v1", mount: /data/tools}\n      sandbox: {mounts: [{host: "%s", guest: /data}]}\n' "$base" "$T/data" >"$T/mnt.yaml"
    vb run "$T/mnt.yaml"
    expect_rc 2
    expect_err_has "mnt.yaml:9:11: skill image '127.0.0.1:9/x:v1': its mount /data/tools clashes with the directory mounted at /data"
}

test_unknown_skill_image_fails_naming_it() {
    oci_env; registry_start
    spec p <<EOF
api_version: v1
kind: pipeline
name: missing
sandbox: {memory_mb: 256}
pipeline:
  boxes:
    - name: b
      skills: [{image: "$REG/test/nothing:v9", mount: /opt/n}]
      run: {program: "true"}
EOF
    # an image that cannot be had: VoidBox's 125 (as docker run), before
    # any VM boots, naming the box, the skill, the URL and the 404
    vb run "$T/p.yaml"
    expect_rc 125
    expect_err_has "box 'b': $T/p.yaml:8:16: skill image: $REG/test/nothing:v9"
    expect_err_has "http://$REG/v2/test/nothing/manifests/v9"
    expect_err_has "HTTP 404"
    # nothing booted
    events 2>/dev/null | grep -q stage.started && fail "a stage started"
    expect_clean
}


# cli:NAME with images in the stage: the image's tool when its PATH has
# NAME (nothing copied), the host's otherwise; the events say which.
test_cli_from_the_image_else_the_host() {
    oci_env; registry_start
    oci_image_tool test/tool v1
    export VB_TEST_KEY="sk-test-$RANDOM"
    fake '{"turns": [
      {"tool_use": {"name": "bash", "id": "tu_1", "input": {"command": "hello-skill; command -v hello-skill; ls /home/sandbox/.voidbox/cli"}},
       "usage": {"input_tokens": 10, "output_tokens": 5}},
      {"expect": "hello from the skill image", "text": "done", "usage": {"input_tokens": 10, "output_tokens": 5}}]}'
    spec a <<EOF
api_version: v1
kind: agent
name: ci
sandbox: {memory_mb: 256}
llm: {provider: custom, agent: builtin, base_url: "http://127.0.0.1:$port", api_key_env: VB_TEST_KEY, model: fake-model}
agent:
  prompt: "use the tools"
  skills:
    - cli:hello-skill
    - cli:jq
    - {image: "$REG/test/tool:v1", mount: /opt/tool}
EOF
    # hello-skill is on no host PATH: validate leaves it to the image
    command -v hello-skill >/dev/null && fail "the host has a hello-skill"
    vb validate "$T/a.yaml"
    expect_rc 0
    vb run --output json "$T/a.yaml"
    expect_rc 0
    jqx '.output == "done"'
    # the image's tool ran by name; only jq was copied from the host
    local tr='[.body.messages[] | .content | arrays | .[] | select(.type == "tool_result")] | tostring'
    sed -n 2p "$T/fake.log" | jq -e "$tr"' | contains("hello from the skill image\\n/opt/tool/bin/hello-skill\\nbin\\njq\\n")' >/dev/null ||
        fail "the tool's result: $(sed -n 2p "$T/fake.log" | jq -c "$tr" | head -c 900)"
    events | jq -se 'map(select(.event == "skill.provisioned" and .type == "cli")) |
        (map(select(.name == "hello-skill"))[0] | .from == "image" and .path == "/opt/tool/bin/hello-skill") and
        (map(select(.name == "jq"))[0] | .from == "host" and .path == "/home/sandbox/.voidbox/cli/jq")' >/dev/null ||
        fail "skill.provisioned events: $(events | grep skill.provisioned | head -c 1200)"
    # without the image skill, hello-skill is found nowhere: validate says so
    sed -i '/mount: \/opt\/tool/d' "$T/a.yaml"
    vb validate "$T/a.yaml"
    expect_rc 2
    expect_err_has "skill 'cli:hello-skill': program hello-skill not found on this host's PATH"
    expect_clean
}

# examples/oci-skill.yaml as a user runs it, its image from the loopback
# registry (IMAGE=...): a stand-in yq (a script at /usr/bin/yq, where the
# real image has its static binary) in the first box only.
test_example_oci_skill_runs() {
    oci_env; registry_start
    local d=$T/yq
    mkdir -p "$d/root/usr/bin"
    printf '#!/bin/sh\necho "{\\"name\\": \\"yq\\", \\"from\\": \\"an image skill\\"}"\n' >"$d/root/usr/bin/yq"
    chmod 755 "$d/root/usr/bin/yq"
    oci_tar "$d/root" "$d/l.tar" && gzip -n -1 -c "$d/l.tar" >"$d/l.tar.gz"
    oci_config "$d/config.json" amd64
    oci_push_blob test/yq "$d/config.json"
    oci_push_blob test/yq "$d/l.tar.gz"
    oci_manifest "$d/manifest.json" "$MT_OCI_MANIFEST" "$MT_OCI_CONFIG" "$d/config.json" \
        "$MT_OCI_GZIP:$d/l.tar.gz"
    oci_push_manifest test/yq 4 "$d/manifest.json" "$MT_OCI_MANIFEST"
    IMAGE=$REG/test/yq:4 vb validate "$ROOT/examples/oci-skill.yaml"
    expect_rc 0
    export IMAGE=$REG/test/yq:4
    vb run "$ROOT/examples/oci-skill.yaml"
    expect_rc 0
    expect_out $'query said: {"name": "yq", "from": "an image skill"}\nno yq in this box'
    expect_clean
}

run_tests
