#!/usr/bin/env bash
# Cold-start benchmark: `voidbox exec true` against a bare QEMU boot of the
# same kernel and initramfs to init-and-reboot (the agent, given no boot
# data, powers off at once), both measured in this run.  Prints medians, the
# overhead ratio and the voidbox host process's peak RSS.  Not a test.
#
# usage: bench/boot.sh [BUILD_DIR] [RUNS]
set -euo pipefail
build=${1:-build}
runs=${2:-7}
vb="$build/voidbox"
[ -x "$vb" ] || { echo "build first: make" >&2; exit 1; }
kernel=$("$vb" image build >/dev/null && readlink -f "${XDG_CACHE_HOME:-$HOME/.cache}/voidbox/kernel-current/bzImage")
initramfs=$("$vb" image list >/dev/null; ls -t "${XDG_CACHE_HOME:-$HOME/.cache}"/voidbox/initramfs-*.cpio | head -1)
# the accelerator voidbox itself chose (KVM only once a probe proved it)
accel=$("$vb" doctor -o json | jq -r .accel)
cpu=max; [ "$accel" = kvm ] && cpu=host

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
ms() { date +%s%N | cut -c1-13; }
# Run voidbox and sample its own VmHWM (peak RSS of the host process alone;
# GNU time would report the largest waited-for descendant, i.e. QEMU).
run_vb() {
    "$vb" exec -- true &
    local pid=$! hwm=0 v
    while kill -0 "$pid" 2>/dev/null; do
        v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || true
        [ -n "$v" ] && hwm=$v
        sleep 0.01
    done
    wait "$pid"
    echo "$hwm" >>"$tmp/rss"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

bare() {
    qemu-system-x86_64 -M microvm,acpi=off -accel $accel -cpu $cpu -nodefaults -no-user-config \
        -no-reboot -display none -sandbox on -m 512 -smp 1 -kernel "$kernel" -initrd "$initramfs" \
        -append "console=ttyS0 quiet panic=-1 reboot=t acpi=off 8250.nr_uarts=1" \
        -serial "file:$tmp/console.log" -device virtio-serial-device,max_ports=2 \
        -device virtio-rng-device </dev/null >/dev/null 2>&1
}

echo "accelerator: $accel   kernel: $kernel   runs: $runs"
bare # warm the page cache
"$vb" exec -- true
for i in $(seq "$runs"); do
    t0=$(ms); bare; t1=$(ms); echo $((t1 - t0)) >>"$tmp/bare"
    t0=$(ms); "$vb" exec -- true; t1=$(ms)
    echo $((t1 - t0)) >>"$tmp/vb"
done
for i in 1 2 3; do run_vb; done # peak RSS, in runs of their own: sampling costs time
grep -q "voidbox-agent" "$tmp/console.log" || echo "warning: the bare boot never reached the agent" >&2
b=$(median <"$tmp/bare"); v=$(median <"$tmp/vb"); r=$(median <"$tmp/rss")
printf '%-34s %8s ms\n' "bare QEMU boot to init+reboot" "$b"
printf '%-34s %8s ms\n' "voidbox exec true (cold)" "$v"
awk -v v="$v" -v b="$b" 'BEGIN {printf "%-34s %8.3fx  (goal <= 1.15x)\n", "overhead ratio", v / b}'
printf '%-34s %8s KiB\n' "voidbox host peak RSS (median)" "$r"
