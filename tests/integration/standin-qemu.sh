#!/usr/bin/env bash
# A stand-in for qemu-system-x86_64 that behaves like QEMU on a host whose
# /dev/kvm opens but cannot run a normal guest (a PVM host): under
# `-accel kvm` it aborts the way QEMU 7.2 does there (STANDIN_MODE=abort) or
# runs forever without printing a byte (STANDIN_MODE=hang); with any other
# accelerator it is the real QEMU.  Each start is logged to $STANDIN_LOG as
# its accelerator, one line each.
accel=""
prev=""
for a in "$@"; do
    [ "$prev" = "-accel" ] && accel=$a
    prev=$a
done
[ -n "${STANDIN_LOG:-}" ] && echo "${accel:-none}" >>"$STANDIN_LOG"
if [ "$accel" = kvm ]; then
    case "${STANDIN_MODE:-abort}" in
    hang)
        exec sleep 600
        ;;
    *)
        echo "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69" >&2
        echo "qemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion \`ret == cpu->kvm_msr_buf->nmsrs' failed." >&2
        kill -ABRT $$
        exit 134
        ;;
    esac
fi
exec qemu-system-x86_64 "$@"
