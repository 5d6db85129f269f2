#!/usr/bin/env bash
# Network path benchmark: guest->host and host->guest TCP bulk throughput and
# the connection-setup rate, through QEMU's own user networking (-netdev user
# with a virtio-net device on the same microvm, kernel and initramfs voidbox
# boots: `voidbox exec` with a QEMU wrapper that adds the device) and, when
# `voidbox exec --network` exists, through VoidBox's path (libslirp in the
# host process, behind the policy), interleaved in the same run.  Prints
# medians and the ratio VoidBox/QEMU (goal >= 0.9x; higher is better for
# all three).  Not a test.
#
# The guest reaches servers on the host's loopback at the gateway 10.0.2.2
# (declared with --allow-host-port on VoidBox's path): a sink that answers
# one byte once it has all the data (so the upload is timed to its last
# byte, not to the guest's socket buffer), a source, and an acceptor that
# closes at once.  Times are the guest's own ($EPOCHREALTIME around each
# step).  Bulk goes through busybox dd | nc, and each connection is one nc
# process: the figures include the guest's own copying and process
# creation, the same on both paths.  Under TCG (no usable /dev/kvm) the
# emulated guest is slow and may be the bottleneck of both paths.
#
# usage: bench/network.sh [BUILD_DIR] [RUNS] [MIB] [CONNECTIONS]
set -euo pipefail
build=${1:-build}
runs=${2:-3}
mib=${3:-64}
conns=${4:-200}
vb="$build/voidbox"
[ -x "$vb" ] || { echo "build first: make" >&2; exit 1; }
command -v python3 >/dev/null || { echo "needs python3 (the host-side servers)" >&2; exit 1; }
"$vb" image build >/dev/null
accel=$("$vb" doctor -o json | jq -r .accel)
qemu=${VOIDBOX_QEMU:-qemu-system-x86_64}

tmp=$(mktemp -d)
server=
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
export XDG_STATE_HOME="$tmp/state" # keep the benchmark's run records out of the user's

# The host side: three listeners on 127.0.0.1, their ports on one line.
cat >"$tmp/servers.py" <<'EOF'
import socket, sys, threading
size = int(sys.argv[1])
def listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    return s
def sink(s):  # read `size` bytes, answer one byte
    while True:
        c, _ = s.accept()
        n = 0
        while n < size:
            b = c.recv(1 << 16)
            if not b:
                break
            n += len(b)
        c.sendall(b"k")
        c.close()
def source(s):  # send `size` bytes and close
    buf = bytes(1 << 16)
    while True:
        c, _ = s.accept()
        left = size
        while left > 0:
            left -= c.send(buf[:min(left, len(buf))])
        c.close()
def acceptor(s):
    while True:
        s.accept()[0].close()
socks = [listener() for _ in range(3)]
for fn, s in zip((sink, source, acceptor), socks):
    threading.Thread(target=fn, args=(s,), daemon=True).start()
print(*(s.getsockname()[1] for s in socks), flush=True)
threading.Event().wait()
EOF
mkfifo "$tmp/ports"
python3 "$tmp/servers.py" $((mib << 20)) >"$tmp/ports" &
server=$!
read -r sink source acceptor <"$tmp/ports"

# QEMU's own user networking: the same VM with a virtio-net device on
# -netdev user (the guest is given its address below).
cat >"$tmp/qemu-user-net" <<EOF
#!/bin/sh
exec $qemu "\$@" -netdev user,id=vbn0 -device virtio-net-device,netdev=vbn0
EOF
chmod +x "$tmp/qemu-user-net"

# In the guest, as root (to set the address when nothing did).  Prints
# "up SECONDS", "down SECONDS", "conn SECONDS".
guest="
ip -4 addr show dev eth0 2>/dev/null | grep -q 'inet ' || {
    ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 &&
    ip route add default via 10.0.2.2; } || exit 3
el() { awk -v a=\$1 -v b=\$2 'BEGIN { printf \"%.6f\", b - a }'; }
t0=\$EPOCHREALTIME
dd if=/dev/zero bs=65536 count=$((mib * 16)) 2>/dev/null | nc 10.0.2.2 $sink | head -c1 >/dev/null
t1=\$EPOCHREALTIME
echo up \$(el \$t0 \$t1)
t0=\$EPOCHREALTIME
got=\$(nc 10.0.2.2 $source </dev/null | wc -c)
t1=\$EPOCHREALTIME
[ \"\$got\" -eq $((mib << 20)) ] || { echo \"download: \$got bytes\" >&2; exit 4; }
echo down \$(el \$t0 \$t1)
t0=\$EPOCHREALTIME
i=0
while [ \$i -lt $conns ]; do nc 10.0.2.2 $acceptor </dev/null || exit 5; i=\$((i + 1)); done
t1=\$EPOCHREALTIME
echo conn \$(el \$t0 \$t1)
"

run_qemu() {
    VOIDBOX_QEMU="$tmp/qemu-user-net" "$vb" exec --accel "$accel" -u root -m 512 -- sh -c "$guest"
}
# VoidBox's path as a one-box pipeline rather than `exec --network
# --allow-host-port ...`: a spec can lift the policy's connections_per_sec
# cap (default 50), which would otherwise be what the rate line measures.
# The agent sets the guest's address itself.  ($$ is a literal $ in a spec.)
run_vb() {
    jq -n --arg g "${guest//\$/\$\$}" --argjson ports "[$sink, $source, $acceptor]" '{
        api_version: "v1", kind: "pipeline", name: "netbench",
        sandbox: {memory_mb: 512, network: true,
                  network_policy: {host_ports: $ports, connections_per_sec: 100000}},
        pipeline: {boxes: [{name: "bench", run: {program: "sh", args: ["-c", $g]}}],
                   stages: [{type: "box", name: "bench"}]}}' >"$tmp/netbench.json"
    "$vb" run -q --accel "$accel" "$tmp/netbench.json"
}
have_vb=0
"$vb" exec --help 2>&1 | grep -q -- --network && have_vb=1

record() { # PATH: one run's three lines into PATH.up, PATH.down, PATH.conn
    local out
    out=$("run_$1") || { echo "the $1 path failed" >&2; exit 1; }
    awk -v m="$mib" -v n="$conns" -v p="$tmp/$1" '
        $1 == "up" { print m / $2 >> (p ".up") }
        $1 == "down" { print m / $2 >> (p ".down") }
        $1 == "conn" { print n / $2 >> (p ".conn") }' <<<"$out"
}
median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "accelerator: $accel   runs: $runs   transfer: $mib MiB   connections: $conns"
for _ in $(seq "$runs"); do
    record qemu
    if [ "$have_vb" = 1 ]; then record vb; fi
done

printf '%-28s %12s %12s %8s\n' "" "QEMU user" "VoidBox" "ratio"
for k in up down conn; do
    case $k in
    up) label="guest->host TCP (MiB/s)" ;;
    down) label="host->guest TCP (MiB/s)" ;;
    conn) label="connections/s" ;;
    esac
    q=$(median "$tmp/qemu.$k")
    if [ "$have_vb" = 1 ]; then
        v=$(median "$tmp/vb.$k")
        awk -v l="$label" -v q="$q" -v v="$v" \
            'BEGIN { printf "%-28s %12.1f %12.1f %7.2fx\n", l, q, v, v / q }'
    else
        awk -v l="$label" -v q="$q" 'BEGIN { printf "%-28s %12.1f %12s %8s\n", l, q, "-", "-" }'
    fi
done
[ "$have_vb" = 1 ] || echo "(voidbox exec has no --network here: only QEMU's user networking was measured)"
echo "goal: VoidBox >= 0.9x QEMU's user networking on each line"
