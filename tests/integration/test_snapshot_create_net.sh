#!/usr/bin/env bash
# A network and host mounts while a snapshot is made (docs/snapshots.md,
# "A network and mounts while a snapshot is made"): `snapshot create
# --network [policy] -v HOST:GUEST -- SETUP` gives the setup a
# policy-filtered network and the host's directories, and takes both away
# in the guest (NET_DOWN, UNMOUNT) and on the host before the save; a
# restore has neither unless it asks.  A guest that will not let go fails
# the create and leaves nothing.  Real VMs (TCG here), real HTTP servers
# on the host's loopback; a diff (create --from) likewise.
TEST_TIMEOUT=${TEST_TIMEOUT:-400}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/snap_lib.sh"
. "$here/net_lib.sh"

# no_snapshots: the store lists none and holds no staging directory
no_snapshots() {
    "$VB" snapshot list >"$T/list" 2>&1 || fail "snapshot list: $(cat "$T/list")"
    ! grep -q '^[0-9a-f]\{12\} ' "$T/list" || fail "a failed create stored: $(cat "$T/list")"
    local left
    left=$(find "$XDG_CACHE_HOME/voidbox/snapshots" -maxdepth 1 -name '.tmp-*' 2>/dev/null)
    [ -z "$left" ] || fail "staging directory left: $left"
}

test_setup_downloads_over_its_network() {
    snap_setup
    mkdir -p "$T/www"; echo "tool v1 from the host" >"$T/www/tool.txt"
    serve "$T/www"
    vb snapshot create --name dl --allow-host-port "$PORT" -- sh -c \
        "mkdir -p /opt && wget -qO /opt/tool.txt http://10.0.2.2:$PORT/tool.txt && cat /opt/tool.txt"
    expect_rc 0
    grep -q "^tool v1 from the host$" <<<"$out" || fail "the setup did not download: $out"
    # restored without a network: the file is there, the network is not
    # (no address, no route, no resolv.conf, eth0 down) and the server
    # is out of reach even for root configuring eth0 by hand
    vb exec --snapshot dl -u root -- sh -c "cat /opt/tool.txt
        ifconfig eth0 | grep -c 'inet addr' ; ifconfig eth0 | grep -c ' UP '
        route -n | grep -c '^0.0.0.0'; test -e /etc/resolv.conf && echo resolv
        timeout 5 wget -qO- http://10.0.2.2:$PORT/tool.txt 2>/dev/null; echo \"plain rc=\$?\"
        ifconfig eth0 10.0.2.15 netmask 255.255.255.0 up && route add default gw 10.0.2.2
        timeout 5 wget -qO- http://10.0.2.2:$PORT/tool.txt 2>/dev/null; echo \"by hand rc=\$?\""
    expect_rc 0
    [ "$(head -4 <<<"$out")" = "tool v1 from the host
0
0
0" ] || fail "a restore without network: $out"
    grep -q resolv <<<"$out" && fail "resolv.conf was left in the snapshot: $out"
    grep -q "^plain rc=0" <<<"$out" && fail "reached the server without a network: $out"
    grep -q "^by hand rc=0" <<<"$out" && fail "root reached the server by hand: $out"
    [ "$(grep -c 'tool v1' <<<"$out")" = 1 ] || fail "the server answered a restore without network: $out"
    # restored with a network: the restorer's (NET_UP)
    vb exec --snapshot dl --allow-host-port "$PORT" -- wget -qO- "http://10.0.2.2:$PORT/tool.txt"
    expect_rc 0
    expect_out "tool v1 from the host"
    expect_clean
}

test_policy_holds_during_create() {
    snap_setup
    mkdir -p "$T/www"; echo secret >"$T/www/index.html"
    serve "$T/www"
    # --network alone: the host's port is not declared, the metadata
    # address never reachable; the setup passes only if both are refused
    vb snapshot create --name pol --network -- sh -c \
        "timeout 5 wget -qO- http://10.0.2.2:$PORT/ && exit 1
         timeout 5 wget -qO- http://169.254.169.254/latest/meta-data/ && exit 2; echo refused"
    expect_rc 0
    grep -q "^refused$" <<<"$out" || fail "setup: $out"
    grep -q secret <<<"$out" && fail "the undeclared port served: $out"
    expect_err_has "network: refused tcp 10.0.2.2:$PORT (host-loopback)"
    expect_err_has "network: refused tcp 169.254.169.254:80"
    expect_clean
}

test_setup_copies_tools_from_a_mount() {
    snap_setup
    mkdir -p "$T/tools" "$T/res" "$T/other"
    printf '#!/bin/sh\necho "hello from a host tool: $*"\n' >"$T/tools/hello-tool"
    chmod +x "$T/tools/hello-tool"
    echo other >"$T/other/mark"
    vb snapshot create --name tools -v "$T/tools:/mnt/tools" -v "$T/res:/mnt/out:rw" -- sh -c \
        'mkdir -p /usr/local/bin && cp /mnt/tools/hello-tool /usr/local/bin/ &&
         echo written-by-setup > /mnt/out/result && grep -c " 9p " /proc/mounts'
    expect_rc 0
    grep -q "^2$" <<<"$out" || fail "the setup did not see 2 9p mounts: $out"
    [ "$(cat "$T/res/result")" = written-by-setup ] || fail "the rw mount did not reach the host"
    # restored: the tool is in the snapshot, no 9p mount is
    vb exec --snapshot tools -- sh -c 'hello-tool x; grep -c " 9p " /proc/mounts; ls -A /mnt/tools | wc -l'
    expect_rc 0
    expect_out "hello from a host tool: x
0
0"
    # the devices are free for a restore's own -v (MOUNT again, same path)
    vb exec --snapshot tools -v "$T/other:/mnt/tools" -- sh -c 'cat /mnt/tools/mark; grep -c " 9p " /proc/mounts'
    expect_rc 0
    expect_out "other
1"
    vb snapshot create -v "$T/tools:/a" -v "$T/tools:/b" -v "$T/tools:/c" -v "$T/tools:/d" \
        -v "$T/tools:/e" -- true
    expect_rc 2
    expect_err_has "at most 4 mounts"
    expect_clean
}

test_create_from_a_spec_with_network_and_mounts() {
    snap_setup
    mkdir -p "$T/www" "$T/tools"; echo "spec payload" >"$T/www/p.txt"; echo from-mount >"$T/tools/m"
    serve "$T/www"
    cat >"$T/s.yaml" <<EOF
api_version: v1
kind: sandbox
name: netspec
sandbox:
  network: true
  network_policy:
    host_ports: [$PORT]
  mounts: [{host: $T/tools, guest: /mnt/t, mode: ro}]
EOF
    vb snapshot create --spec "$T/s.yaml" --name fromspec -- sh -c \
        "mkdir -p /opt && wget -qO /opt/p.txt http://10.0.2.2:$PORT/p.txt && cp /mnt/t/m /opt/m &&
         { timeout 5 wget -qO- http://10.0.2.2:1/ && exit 3; true; }"
    expect_rc 0
    expect_err_has "network: refused tcp 10.0.2.2:1 (host-loopback)"
    vb exec --snapshot fromspec -- sh -c 'cat /opt/p.txt /opt/m; grep -c " 9p " /proc/mounts; ifconfig eth0 | grep -c "inet addr"; true'
    expect_rc 0
    expect_out "spec payload
from-mount
0
0"
    expect_clean
}

# create --from BASE with them: the restore mounts and brings the network
# up, the save undoes both, as for a booted VM.
test_diff_with_network_and_mounts() {
    snap_setup
    mkdir -p "$T/www" "$T/tools"; echo "diff payload" >"$T/www/d.txt"; echo via-mount >"$T/tools/m"
    serve "$T/www"
    create base true
    vb snapshot create --from base --name d1 --allow-host-port "$PORT" -v "$T/tools:/mnt/t" -- sh -c \
        "mkdir -p /opt && wget -qO /opt/d.txt http://10.0.2.2:$PORT/d.txt && cp /mnt/t/m /opt/m"
    expect_rc 0
    vb exec --snapshot d1 -- sh -c 'cat /opt/d.txt /opt/m; grep -c " 9p " /proc/mounts; ifconfig eth0 | grep -c "inet addr"; true'
    expect_rc 0
    expect_out "diff payload
via-mount
0
0"
    expect_clean
}

# A guest that will not let go: a setup process still in the mount (the
# agent's UNMOUNT answers BUSY), a setup that renamed eth0 (NET_DOWN
# answers an error).  Each create fails naming why, stores nothing and
# leaves no QEMU.
test_guest_refusing_to_let_go_fails_the_create() {
    snap_setup
    mkdir -p "$T/tools"
    vb snapshot create --name busy -v "$T/tools:/mnt/tools" -- sh -c \
        'cd /mnt/tools && setsid sleep 300 </dev/null >/dev/null 2>&1 & sleep 1'
    expect_rc 125
    expect_err_has "cannot unmount the VM's directories before the save"
    expect_err_has "vbm0 from /mnt/tools"
    no_snapshots
    expect_clean
    vb snapshot create --name renamed --network -- sh -c \
        'ip link set eth0 down && ip link set eth0 name vbx0'
    expect_rc 125
    expect_err_has "cannot take the VM's network down before the save"
    no_snapshots
    expect_clean
}

run_tests
