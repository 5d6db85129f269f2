#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# guest/agent/test/vm.sh [BZIMAGE]
#
# Boots the static agent as PID 1 in a QEMU microvm (TCG is fine) and runs
# agent_test.c against it over the virtio-serial control port:
#
#   initramfs = base segment (gzip: /init = agent, busybox + applet links,
#               deliberately no /dev/console) + a per-VM uncompressed segment
#               holding /.voidbox/boot, padded to 4 bytes like the product's
#   9p        = a rw mount at /workspace/out and a ro mount at /mnt/ro,
#               security_model=mapped-xattr
#
# The client connects as soon as QEMU's socket exists, i.e. long before the
# agent opens the port: QEMU holds the HELLO until the guest side opens.
# Run guest/agent/test/run.sh first (it builds the binaries used here).
set -euo pipefail
cd "$(dirname "$0")/../../.."
O=build/agent-test
KERNEL=${1:-$(ls -t "$HOME"/.cache/voidbox/kernel-*/bzImage 2>/dev/null | head -1)}
[ -n "$KERNEL" ] && [ -f "$KERNEL" ] || { echo "vm.sh: no kernel (pass a bzImage)"; exit 77; }
[ -x "$O/agent_test" ] || { echo "vm.sh: run guest/agent/test/run.sh first"; exit 2; }

W=$(mktemp -d /tmp/agent-vm.XXXXXX)
QPID=
cleanup() {
	[ -n "$QPID" ] && kill "$QPID" 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT

mkdir -p "$W/root/bin" "$W/seg/.voidbox" "$W/share/rw" "$W/share/ro"
musl-gcc -static -Os -g0 -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -Iproto -Iguest/agent \
	-pthread -o "$W/root/init" proto/vb_proto.c guest/agent/*.c
cp "$(command -v busybox)" "$W/root/bin/busybox"
for p in $("$W/root/bin/busybox" --list-full); do
	[ -e "$W/root/$p" ] && continue
	mkdir -p "$W/root/$(dirname "$p")"
	ln -s /bin/busybox "$W/root/$p"
done
(cd "$W/root" && find . | cpio -o -H newc --quiet | gzip -9) >"$W/base.cpio.gz"
"$O/agent_test" --mkboot "$W/seg/.voidbox/boot" "$W/secret" \
	--mount rw0:/workspace/out:rw --mount ro0:/mnt/ro:ro
(cd "$W/seg" && find . | cpio -o -H newc --quiet) >"$W/boot.cpio"
cp "$W/base.cpio.gz" "$W/initrd"
pad=$(((4 - $(stat -c %s "$W/initrd") % 4) % 4))
head -c "$pad" /dev/zero >>"$W/initrd"
cat "$W/boot.cpio" >>"$W/initrd"
echo "ro" >"$W/share/ro/hello.txt"
echo "initrd: $(stat -c %s "$W/initrd") bytes, kernel $KERNEL"

# the accelerator voidbox proved for this host (a /dev/kvm that opens may not
# run a guest); TCG when there is no voidbox build to ask
ACCEL=tcg
if [ -x build/voidbox ]; then
	ACCEL=$(build/voidbox doctor -o json | jq -r .accel)
fi
t0=$(date +%s.%N)
qemu-system-x86_64 -M microvm,acpi=off -nodefaults -no-user-config -no-reboot -display none \
	-accel "$ACCEL" -cpu max -m 512 -smp 2 -kernel "$KERNEL" -initrd "$W/initrd" \
	-append "console=ttyS0 acpi=off reboot=t panic=-1 quiet" \
	-serial "file:$W/console.log" \
	-chardev "socket,id=ctl,path=$W/ctl.sock,server=on,wait=off" \
	-device virtio-serial-device -device virtserialport,chardev=ctl,name=org.voidbox.control \
	-fsdev "local,id=fs0,path=$W/share/rw,security_model=mapped-xattr" \
	-device virtio-9p-device,fsdev=fs0,mount_tag=rw0 \
	-fsdev "local,id=fs1,path=$W/share/ro,security_model=mapped-xattr,readonly=on" \
	-device virtio-9p-device,fsdev=fs1,mount_tag=ro0 \
	-device virtio-rng-device &
QPID=$!
for _ in $(seq 100); do [ -S "$W/ctl.sock" ] && break; sleep 0.05; done

rc=0
timeout 600 "$O/agent_test" --connect "$W/ctl.sock" --secret "$W/secret" \
	--mount /workspace/out --ro-mount /mnt/ro --shutdown || rc=$?
for _ in $(seq 100); do kill -0 "$QPID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$QPID" 2>/dev/null; then
	echo "FAIL: QEMU still running after SHUTDOWN"
	rc=1
else
	wait "$QPID" || true
	QPID=
	echo "QEMU exited after SHUTDOWN ($(echo "$(date +%s.%N) - $t0" | bc) s after start)"
fi
echo "== console"
cat "$W/console.log"

# Without valid boot data the agent must say so on the console and power
# the VM off by itself.
boot_fails() { # initrd expected-console-text
	rm -f "$W/fail.log"
	timeout 60 qemu-system-x86_64 -M microvm,acpi=off -nodefaults -no-user-config -no-reboot \
		-display none -accel $ACCEL -cpu max -m 256 -kernel "$KERNEL" -initrd "$1" \
		-append "console=ttyS0 acpi=off reboot=t panic=-1 quiet" -serial "file:$W/fail.log" \
		-device virtio-serial-device || true
	if grep -q "$2" "$W/fail.log" && grep -q "powering off" "$W/fail.log"; then
		echo "ok: $(grep -m1 "$2" "$W/fail.log")"
	else
		echo "FAIL: expected '$2' and a power-off on the console:"; cat "$W/fail.log"; rc=1
	fi
}
echo "== boot without boot data"
boot_fails "$W/base.cpio.gz" "boot data missing"
echo "== boot with corrupt boot data"
printf 'VOIDBOX-NOT-A-FRAME' >"$W/seg/.voidbox/boot"
(cd "$W/seg" && find . | cpio -o -H newc --quiet) >"$W/bad.cpio"
cp "$W/base.cpio.gz" "$W/bad-initrd"
head -c "$pad" /dev/zero >>"$W/bad-initrd"
cat "$W/bad.cpio" >>"$W/bad-initrd"
boot_fails "$W/bad-initrd" "boot data malformed"
echo "== host view of the rw share"
ls -ln "$W/share/rw"
if grep -qaF -f <(od -An -tx1 "$W/secret" | tr -d ' \n') "$W/console.log"; then
	echo "FAIL: the secret (hex) appears on the console"
	rc=1
fi
exit $rc
