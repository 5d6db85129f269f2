#!/usr/bin/env bash
# Fan-out benchmark: one pipeline stage of N command boxes (each `sleep
# HOLD` in its own VM), for N = 1, 2, 4, 8, with --max-parallel N so every
# VM of the stage is up at once.  Prints wall time and host memory against N
# as a table.  Not a test.
#
# usage: bench/fanout.sh [BUILD_DIR] [GUEST_MEMORY_MB] [HOLD_SECONDS]
#
# Memory method.  While the run goes, the voidbox process and its QEMU
# children are sampled every 100 ms from /proc/PID/smaps:
#   - host RSS: voidbox's RSS plus every QEMU's RSS.  Shared pages (QEMU's
#     libraries, the page cache of the kernel and initramfs files) are
#     counted once per process, so this is an upper bound;
#   - host PSS: the same with shared pages split between the processes that
#     map them: the sum is what the N VMs really cost the host together;
#   - guest-touched: in each QEMU, the resident part of the guest's RAM
#     (the anonymous mapping exactly GUEST_MEMORY_MB in size).  That is
#     memory the guest asked for, not VoidBox's overhead, so it is taken
#     out: overhead per VM = (host total - guest-touched) / N.
# The row for N reports the sample with the highest host RSS among those
# taken while all N QEMUs were running.  Wall time is GNU time's, for the
# whole `voidbox run` (boots, sleeps, teardown).  Under TCG (no /dev/kvm)
# each QEMU also holds its translated-code buffer, counted as overhead.
set -euo pipefail
build=${1:-build}
mem=${2:-256}
hold=${3:-4}
vb="$build/voidbox"
[ -x "$vb" ] || { echo "build first: make" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_STATE_HOME="$tmp/state" # keep the benchmark's run records out of the user's

spec() { # N: a fan-out of N boxes
    local n=$1 i names=""
    {
        echo "api_version: v1"
        echo "kind: pipeline"
        echo "name: fanout-$n"
        echo "sandbox: {memory_mb: $mem}"
        echo "pipeline:"
        echo "  boxes:"
        for i in $(seq "$n"); do
            echo "    - {name: b$i, run: {program: sleep, args: [\"$hold\"]}}"
            names="$names${names:+, }b$i"
        done
        echo "  stages:"
        echo "    - {type: fan_out, boxes: [$names]}"
    } >"$tmp/fan-$n.yaml"
}

# sample VB_PID: one line "n_qemu host_rss_kb host_pss_kb guest_kb voidbox_rss_kb"
sample() {
    local pid=$1 q files=()
    for q in $(pgrep -P "$pid" 2>/dev/null || true); do
        files+=("/proc/$q/smaps")
    done
    {
        awk '/^Rss:/ {r += $2} /^Pss:/ {p += $2} END {print "vb", r + 0, p + 0}' \
            "/proc/$pid/smaps_rollup" 2>/dev/null || true
        [ ${#files[@]} -eq 0 ] ||
            awk -v guest_kb=$((mem * 1024)) '
                FNR == 1 { n++ }
                /^[0-9a-f]+-[0-9a-f]+ / { anon = (NF < 6) }
                /^Size:/ { size = $2 }
                /^Rss:/ { r += $2; if (anon && size == guest_kb) g += $2 }
                /^Pss:/ { p += $2 }
                END { print "qemu", n, r + 0, p + 0, g + 0 }' "${files[@]}" 2>/dev/null || true
    } | awk '$1 == "vb" {vr = $2; vp = $3} $1 == "qemu" {n = $2; qr = $3; qp = $4; g = $5}
             END {print n + 0, vr + qr, vp + qp, g + 0, vr + 0}'
}

run_one() { # N: prints "N wall_s rss_kb pss_kb guest_kb vb_kb"
    local n=$1 tpid vbpid="" line best=""
    spec "$n"
    /usr/bin/time -f %e -o "$tmp/time" "$vb" run -q --max-parallel "$n" "$tmp/fan-$n.yaml" \
        >/dev/null 2>"$tmp/err" &
    tpid=$!
    : >"$tmp/samples"
    while kill -0 "$tpid" 2>/dev/null; do
        [ -n "$vbpid" ] || vbpid=$(pgrep -P "$tpid" 2>/dev/null | head -1 || true)
        [ -z "$vbpid" ] || sample "$vbpid" >>"$tmp/samples"
        sleep 0.1
    done
    wait "$tpid" || { echo "voidbox run failed for N=$n: $(cat "$tmp/err")" >&2; exit 1; }
    best=$(awk -v n="$n" '$1 == n && $2 > max {max = $2; line = $0} END {print line}' "$tmp/samples")
    [ -n "$best" ] || { echo "N=$n: never saw all $n VMs at once" >&2; exit 1; }
    echo "$n $(tail -1 "$tmp/time") ${best#* }"
}

accel=$("$vb" doctor -o json | jq -r .accel)
echo "fan-out of N boxes, each 'sleep $hold' in a VM with $mem MiB; accelerator $accel; $(nproc) host CPUs"
spec 1
"$vb" run -q "$tmp/fan-1.yaml" >/dev/null 2>&1 || true # warm the caches
printf '%3s %8s %12s %12s %14s %14s %14s %12s\n' N "wall s" "host RSS MiB" "host PSS MiB" \
    "guest-touched" "overhead/VM" "overhead/VM" "voidbox RSS"
printf '%3s %8s %12s %12s %14s %14s %14s %12s\n' "" "" "(peak)" "(peak)" "MiB" "RSS MiB" "PSS MiB" "MiB"
for n in 1 2 4 8; do
    run_one "$n" | awk '{
        n = $1; wall = $2; rss = $3 / 1024; pss = $4 / 1024; g = $5 / 1024; vbr = $6 / 1024
        printf "%3d %8.2f %12.1f %12.1f %14.1f %14.1f %14.1f %12.1f\n",
            n, wall, rss, pss, g, (rss - g) / n, (pss - g) / n, vbr }'
done
