#!/usr/bin/env bash
# Snapshot benchmark (docs/snapshots.md): cold `voidbox exec --cold true`
# against `true` run in a VM restored from a snapshot of a booted VM (named,
# and the warm snapshot `voidbox exec true` uses by default), against a bare
# QEMU boot to init-and-reboot, all in this run; the restore/cold ratio, the
# snapshot's sizes, and the host memory of 4 restored VMs against 4 cold
# ones; a diff snapshot after writing 10 MB in the guest: its size against
# its base's, and its restore time against the base's.  Not a test.
#
# usage: bench/snapshot.sh [BUILD_DIR] [RUNS]
set -euo pipefail
build=${1:-build}
runs=${2:-5}
vb="$build/voidbox"
[ -x "$vb" ] || { echo "build first: make" >&2; exit 1; }
paths=$("$vb" image build 2>/dev/null)
kernel=$(sed -n 's/^kernel: *//p' <<<"$paths")
initramfs=$(sed -n 's/^initramfs: *//p' <<<"$paths")
accel=$(sed -n 's/^accel: *//p' <<<"$paths")
cpu=max; [ "$accel" = kvm ] && cpu=host

tmp=$(mktemp -d)
# a store of its own: the bench's snapshot never meets the user's
export VOIDBOX_KERNEL=$kernel VOIDBOX_INITRAMFS=$initramfs XDG_CACHE_HOME=$tmp/cache \
    XDG_RUNTIME_DIR=$tmp/run XDG_STATE_HOME=$tmp/state
mkdir -p "$XDG_RUNTIME_DIR"
trap 'rm -rf "$tmp"' EXIT
ms() { date +%s%N | cut -c1-13; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

bare() {
    qemu-system-x86_64 -M microvm,acpi=off -accel "$accel" -cpu $cpu -nodefaults -no-user-config \
        -no-reboot -display none -sandbox on -m 1024 -smp 1 -kernel "$kernel" -initrd "$initramfs" \
        -append "console=ttyS0 quiet panic=-1 reboot=t acpi=off 8250.nr_uarts=1" \
        -serial "file:$tmp/console.log" -device virtio-serial-device,max_ports=2 \
        -device virtio-rng-device </dev/null >/dev/null 2>&1
}

echo "accelerator: $accel   memory: 1024 MiB   runs: $runs"
t0=$(ms); id=$("$vb" snapshot create --name bench -- true); t1=$(ms)
echo "snapshot create (boot + save + digests): $((t1 - t0)) ms"
# a fresh store: the first exec is cold and makes the warm snapshot after
t0=$(ms); "$vb" exec -- true; t1=$(ms)
echo "first voidbox exec true (cold, then the warm snapshot in the background): $((t1 - t0)) ms"
"$vb" snapshot warm >/dev/null # waits for the background maker (its lock)
bare; "$vb" exec --cold -- true; "$vb" exec --snapshot bench -- true 2>/dev/null # warm the page cache
"$vb" exec -- true
for i in $(seq "$runs"); do
    t0=$(ms); bare; t1=$(ms); echo $((t1 - t0)) >>"$tmp/bare"
    t0=$(ms); "$vb" exec --cold -- true; t1=$(ms); echo $((t1 - t0)) >>"$tmp/cold"
    t0=$(ms); "$vb" exec -- true; t1=$(ms); echo $((t1 - t0)) >>"$tmp/default"
    t0=$(ms); "$vb" exec --snapshot bench -- true 2>"$tmp/warm.err"; t1=$(ms)
    echo $((t1 - t0)) >>"$tmp/warm"
    sed -n 's/^voidbox: boot: restored from [0-9a-f]* in \([0-9]*\) ms$/\1/p' "$tmp/warm.err" >>"$tmp/restore"
done
b=$(median <"$tmp/bare"); c=$(median <"$tmp/cold"); w=$(median <"$tmp/warm"); r=$(median <"$tmp/restore")
dw=$(median <"$tmp/default")
printf '%-44s %8s ms\n' "bare QEMU boot to init+reboot" "$b"
printf '%-44s %8s ms\n' "voidbox exec --cold true" "$c"
printf '%-44s %8s ms\n' "voidbox exec true (warm by default)" "$dw"
printf '%-44s %8s ms\n' "exec --snapshot true (restored)" "$w"
printf '%-44s %8s ms\n' "  of which the restore (checks..re-key)" "$r"
awk -v w="$w" -v c="$c" 'BEGIN {printf "%-44s %8.3fx  (goal <= 0.1x)\n", "restore/cold ratio", w / c}'
awk -v w="$dw" -v c="$c" 'BEGIN {printf "%-44s %8.3fx\n", "warm exec/cold ratio", w / c}'

# Where a warm exec's time goes: voidbox's own start, the restore, and the
# first command in the restored VM against a second one in the same VM
# (a workflow of three `true` steps in one VM, from its events).  Under
# TCG a restored QEMU translates every guest instruction it runs anew (its
# translation cache is not part of any snapshot): the first command pays
# for the kernel's and agent's paths, later ones do not.
for i in $(seq "$runs"); do
    t0=$(ms); "$vb" --version >/dev/null; t1=$(ms); echo $((t1 - t0)) >>"$tmp/start"
done
cat >"$tmp/wf.yaml" <<'YAML'
api_version: v1
kind: workflow
name: bench-steps
workflow:
  steps:
    - {name: a, run: {program: "true"}}
    - {name: b, depends_on: [a], run: {program: "true"}}
YAML
steps() { # restored|cold: "FIRST SECOND" ms of the two steps, from the run's events
    local how=$1 d
    if [ "$how" = cold ]; then "$vb" run --cold "$tmp/wf.yaml" >/dev/null 2>&1
    else "$vb" run --snapshot bench "$tmp/wf.yaml" >/dev/null 2>&1; fi
    d=$(ls -td "$XDG_STATE_HOME"/voidbox/runs/*/ | head -1)
    python3 -c '
import json, sys
t = {}
for line in open(sys.argv[1]):
    e = json.loads(line)
    t[(e["event"], e.get("stage"))] = e["time_ms"]
print(t[("stage.completed", "a")] - t[("vm.booted", "a")],
      t[("stage.completed", "b")] - t[("stage.started", "b")])' "$d/events.jsonl"
}
for i in $(seq "$runs"); do
    read -r f s < <(steps restored); echo "$f" >>"$tmp/rfirst"; echo "$s" >>"$tmp/rsecond"
    read -r f s < <(steps cold); echo "$f" >>"$tmp/cfirst"; echo "$s" >>"$tmp/csecond"
done
st=$(median <"$tmp/start"); rf=$(median <"$tmp/rfirst"); rs=$(median <"$tmp/rsecond")
printf '%-44s %8s ms\n' "voidbox's own start (voidbox --version)" "$st"
printf '%-44s %8s ms\n' "first true in a restored VM" "$rf"
printf '%-44s %8s ms\n' "second true in the same VM" "$rs"
printf '%-44s %8s ms\n' "first / second true in a cold VM" "$(median <"$tmp/cfirst") / $(median <"$tmp/csecond")"
printf '%-44s %8s ms\n' "  rest: QEMU start to restore, teardown" "$((w - st - r - rf))"

d="$XDG_CACHE_HOME/voidbox/snapshots/$id"
printf '%-44s %8s\n' "snapshot: device state" "$(du -h --apparent-size "$d/state" | cut -f1)"
printf '%-44s %8s (of %s)\n' "snapshot: RAM on disk" "$(du -h "$d/ram" | cut -f1)" \
    "$(du -h --apparent-size "$d/ram" | cut -f1)"

# a diff: the base restored, 10 MB written in the guest, saved again
t0=$(ms)
did=$("$vb" snapshot create --from bench --name bench-diff -- \
    sh -c 'head -c 10000000 /dev/urandom > /home/sandbox/10mb' | tail -1)
t1=$(ms)
dd="$XDG_CACHE_HOME/voidbox/snapshots/$did"
echo "snapshot create --from (restore + 10 MB + save + diff): $((t1 - t0)) ms"
printf '%-44s %8s\n' "snapshot: base on disk" "$(du -sh "$d" | cut -f1)"
printf '%-44s %8s (pages: %s)\n' "snapshot: diff after 10 MB on disk" "$(du -sh "$dd" | cut -f1)" \
    "$(du -h "$dd/ram" | cut -f1)"
# the first restore assembles the diff's whole RAM (once: a cache)
"$vb" exec --snapshot bench-diff -- true 2>"$tmp/d.err"
echo "first restore of the diff (assembles its RAM): $(sed -n 's/^voidbox: boot: restored from [0-9a-f]* in \([0-9]*\) ms$/\1/p' "$tmp/d.err") ms"
for i in $(seq "$runs"); do
    "$vb" exec --snapshot bench-diff -- true 2>"$tmp/d.err"
    sed -n 's/^voidbox: boot: restored from [0-9a-f]* in \([0-9]*\) ms$/\1/p' "$tmp/d.err" >>"$tmp/drestore"
    "$vb" exec --snapshot bench -- true 2>"$tmp/b.err"
    sed -n 's/^voidbox: boot: restored from [0-9a-f]* in \([0-9]*\) ms$/\1/p' "$tmp/b.err" >>"$tmp/brestore"
done
printf '%-44s %8s ms\n' "restore of the diff (checks..re-key)" "$(median <"$tmp/drestore")"
printf '%-44s %8s ms\n' "restore of its base (checks..re-key)" "$(median <"$tmp/brestore")"
"$vb" snapshot delete bench-diff >/dev/null

# host memory: 4 VMs at once, each running `sleep 5`; the QEMUs' summed
# proportional set size (Pss: shared pages split between their sharers)
pss() { # PIDS...
    local t=0 p v
    for p in "$@"; do
        v=$(awk '/^Pss:/ {s += $2} END {print s + 0}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
        t=$((t + v))
    done
    echo $((t / 1024))
}
four() { # cold|warm
    local i pids
    for i in 1 2 3 4; do
        if [ "$1" = cold ]; then "$vb" exec --cold -- sleep 8 >/dev/null 2>&1 &
        else "$vb" exec --snapshot bench -- sleep 8 >/dev/null 2>&1 & fi
    done
    sleep 6
    pids=$(pgrep -f "qemu-system.*$tmp/run" || true)
    printf '%-44s %8s MiB (%s QEMUs)\n' "4 $1 VMs: QEMU Pss, summed" "$(pss $pids)" "$(wc -w <<<"$pids")"
    wait
}
four cold
four warm
"$vb" snapshot delete bench >/dev/null
