#!/usr/bin/env bash
# Guest images (src/oci/guestimg.c, docs/oci.md "Guest images"): layers
# built here from VoidBox's own cached kernel and a busybox initramfs of the
# test's, prepared by vb_guestimg_prepare() and booted through the library
# with VoidBox's agent merged in as PID 1 (tests/integration/guestimg_driver.c
# drives the library until the spec names guest images).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

export OCI_GZIP=application/vnd.oci.image.layer.v1.tar+gzip
export OCI_ZSTD=application/vnd.oci.image.layer.v1.tar+zstd
export OCI_TAR=application/vnd.oci.image.layer.v1.tar

gi() { "${VB_BUILD:-$(dirname "$VB")}/tests/guestimg_driver" "$@" >"$T/out" 2>"$T/err" </dev/null
       rc=$?; out=$(cat "$T/out"); err=$(cat "$T/err"); check_sanitizers; }

# VoidBox's own kernel, as `voidbox image build` cached it.
cached_kernel() {
    local k=${VOIDBOX_KERNEL:-${XDG_CACHE_HOME:-$HOME/.cache}/voidbox/kernel-current/bzImage}
    [ -r "$k" ] || fail "no cached guest kernel at $k (run \`voidbox image build\`)"
    echo "$k"
}

# $T/img/{vmlinuz,rootfs.cpio.gz}: the cached kernel and an initramfs with
# busybox, a marker file and an /init of the image's own that powers the VM
# off at once (so a boot that ran it instead of VoidBox's agent fails).
make_guest_files() {
    local r=$T/img/root
    mkdir -p "$r/bin" "$r/etc"
    cp /bin/busybox "$r/bin/busybox"
    ln -s busybox "$r/bin/cat"
    echo "from the guest image" >"$r/etc/guest-image-marker"
    printf '#!/bin/busybox sh\n/bin/busybox poweroff -f\n' >"$r/init"
    chmod 755 "$r/init"
    (cd "$r" && find . | cpio -o -H newc 2>/dev/null | gzip -9) >"$T/img/rootfs.cpio.gz"
    cp "$(cached_kernel)" "$T/img/vmlinuz"
}

# A file that looks like an x86-64 bzImage (the cached kernel's setup
# header) whose compressed payload is gzip(stdin) instead of the kernel.
fake_bzimage() {
    local k out=$1 setup po len
    k=$(cached_kernel)
    setup=$(od -An -tu1 -j $((0x1f1)) -N1 "$k" | tr -d ' ')
    [ "$setup" -eq 0 ] && setup=4
    po=$(od -An -tu4 -j $((0x248)) -N4 "$k" | tr -d ' ')
    head -c $(((setup + 1) * 512 + po)) "$k" >"$out"
    gzip -9 >"$out.payload"
    len=$(stat -c %s "$out.payload")
    cat "$out.payload" >>"$out"
    printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((len & 255)) $((len >> 8 & 255)) \
        $((len >> 16 & 255)) $((len >> 24 & 255)))" |
        dd of="$out" bs=1 seek=$((0x24c)) conv=notrunc status=none
}

# Nothing but what prepare may write: the cache dir's three files.
expect_cache_only() {
    local left
    left=$(cd "$1" && ls -A | sort | tr '\n' ' ')
    [ "$left" = "guest-image.ok initramfs vmlinuz " ] || fail "cache dir holds: $left"
}

test_guest_image_boots_with_the_agent_as_pid1() {
    make_guest_files
    tar -C "$T/img" -czf "$T/layer.tgz" vmlinuz rootfs.cpio.gz
    gi prepare "$T/cache" "$T/layer.tgz=$OCI_GZIP"
    expect_rc 0
    [ "$out" = $'kernel '"$T/cache/vmlinuz"$'\ninitramfs '"$T/cache/initramfs" ] || fail "prepare said: $out"
    cmp -s "$T/cache/vmlinuz" "$T/img/vmlinuz" || fail "the kernel differs from the layer's"
    cmp -s "$T/cache/initramfs" "$T/img/rootfs.cpio.gz" || fail "the initramfs differs from the layer's"
    expect_cache_only "$T/cache"
    # the image's files are there, and VoidBox's agent answers as PID 1
    # (the image's own /init would have powered the VM off)
    gi boot "$T/cache/vmlinuz" "$T/cache/initramfs" sh -c 'cat /etc/guest-image-marker; cat /proc/1/comm'
    expect_rc 0
    [ "$out" = $'from the guest image\ninit' ] || fail "guest said '$out' (stderr: $err)"
    # prepared once: the cache is used without the layers
    gi prepare "$T/cache" "$T/gone.tgz=$OCI_GZIP"
    expect_rc 0
    grep -qF "kernel $T/cache/vmlinuz" "$T/out" || fail "the cached guest image was not reused: $err"
    expect_clean
}

test_zstd_and_plain_layers_later_layer_wins() {
    make_guest_files
    tar -C "$T/img" -cf - vmlinuz | zstd -q >"$T/k.tar.zst"
    echo junk >"$T/img/rootfs.cpio"   # an earlier initramfs, replaced below
    tar -C "$T/img" -cf "$T/old.tar" rootfs.cpio
    tar -C "$T/img" -cf "$T/new.tar" --transform 's,^\./,,' ./rootfs.cpio.gz
    gi prepare "$T/cache" "$T/k.tar.zst=$OCI_ZSTD" "$T/old.tar=$OCI_TAR" "$T/new.tar=$OCI_TAR"
    expect_rc 0
    cmp -s "$T/cache/initramfs" "$T/img/rootfs.cpio.gz" || fail "rootfs.cpio.gz was not preferred"
    # a whiteout in a later layer removes a file of an earlier one
    mkdir -p "$T/wh" && : >"$T/wh/.wh.rootfs.cpio.gz" && : >"$T/wh/.wh.rootfs.cpio"
    tar -C "$T/wh" -cf "$T/wh.tar" .wh.rootfs.cpio.gz .wh.rootfs.cpio
    gi prepare "$T/cache2" "$T/k.tar.zst=$OCI_ZSTD" "$T/new.tar=$OCI_TAR" "$T/wh.tar=$OCI_TAR"
    expect_rc 2
    expect_err_has "the guest image has no initramfs"
}

test_missing_kernel_or_initramfs_is_named() {
    make_guest_files
    tar -C "$T/img" -czf "$T/noker.tgz" rootfs.cpio.gz
    gi prepare "$T/cache" "$T/noker.tgz=$OCI_GZIP"
    expect_rc 2
    expect_err_has "the guest image has no kernel (a regular file /vmlinuz"
    # a kernel in a subdirectory is not the image's kernel
    mkdir -p "$T/img/boot" && cp "$T/img/vmlinuz" "$T/img/boot/"
    tar -C "$T/img" -czf "$T/noinit.tgz" boot/vmlinuz vmlinuz
    gi prepare "$T/cache" "$T/noinit.tgz=$OCI_GZIP"
    expect_rc 2
    expect_err_has "the guest image has no initramfs (a regular file /rootfs.cpio.gz"
    [ ! -e "$T/cache/vmlinuz" ] || fail "a failed prepare left a kernel in the cache"
    [ -z "$(ls -A "$T/cache")" ] || fail "a failed prepare left $(ls -A "$T/cache")"
    # the media type must match the bytes, and be a tar layer at all
    tar -C "$T/img" -czf "$T/ok.tgz" vmlinuz rootfs.cpio.gz
    gi prepare "$T/cache" "$T/ok.tgz=$OCI_ZSTD"
    expect_rc 2
    expect_err_has "its media type says $OCI_ZSTD, its bytes are gzip"
    gi prepare "$T/cache" "$T/ok.tgz=application/vnd.oci.image.config.v1+json"
    expect_rc 2
    expect_err_has "not a tar layer"
    # an initramfs that is no cpio archive
    echo "not a cpio" | gzip >"$T/img/rootfs.cpio.gz"
    tar -C "$T/img" -czf "$T/badinit.tgz" vmlinuz rootfs.cpio.gz
    gi prepare "$T/cache" "$T/badinit.tgz=$OCI_GZIP"
    expect_rc 2
    expect_err_has "initramfs /rootfs.cpio.gz is not a cpio archive"
    # a cpio the kernel cannot read ("odc" instead of "newc")
    (cd "$T/img" && echo vmlinuz | cpio -o -H odc 2>/dev/null | gzip) >"$T/img/rootfs.cpio.gz"
    tar -C "$T/img" -czf "$T/odc.tgz" vmlinuz rootfs.cpio.gz
    gi prepare "$T/cache" "$T/odc.tgz=$OCI_GZIP"
    expect_rc 2
    expect_err_has "not the \"newc\" cpio format"
}

test_oversized_kernel_is_refused() {
    # 200 MiB claimed by a few-KiB sparse member: refused by its size,
    # before anything is decompressed into the cache
    mkdir -p "$T/img"
    truncate -s 200M "$T/img/vmlinuz"
    echo x | gzip >"$T/img/rootfs.cpio.gz"
    tar -C "$T/img" --sparse -czf "$T/big.tgz" vmlinuz rootfs.cpio.gz
    [ "$(stat -c %s "$T/big.tgz")" -lt 100000 ] || fail "the test layer is not small"
    gi prepare "$T/cache" "$T/big.tgz=$OCI_GZIP"
    expect_rc 2
    expect_err_has "layer 1: /vmlinuz is larger than 128 MiB"
    [ -z "$(ls -A "$T/cache")" ] || fail "left in the cache: $(ls -A "$T/cache")"
}

test_hostile_layer_writes_nothing_outside_the_cache() {
    make_guest_files
    mkdir -p "$T/victim"
    python3 - "$T" <<'EOF'
import io, sys, tarfile
T = sys.argv[1]
def reg(t, name, data):
    i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
with tarfile.open(T + "/evil.tar", "w") as t:
    reg(t, "../victim/dotdot", b"x")
    reg(t, "/" + T.lstrip("/") + "/victim/absolute", b"x")
    reg(t, "./../../victim/vmlinuz", b"x")
    l = tarfile.TarInfo("link"); l.type = tarfile.SYMTYPE; l.linkname = T + "/victim"
    t.addfile(l)
    reg(t, "link/through", b"x")
    for n in ("vmlinuz", "rootfs.cpio.gz"):
        t.add(T + "/img/" + n, arcname=n)
with tarfile.open(T + "/symk.tar", "w") as t:
    l = tarfile.TarInfo("vmlinuz"); l.type = tarfile.SYMTYPE; l.linkname = "/etc/passwd"
    t.addfile(l)
    t.add(T + "/img/rootfs.cpio.gz", arcname="rootfs.cpio.gz")
EOF
    gi prepare "$T/cache" "$T/evil.tar=$OCI_TAR"
    expect_rc 0
    [ -z "$(ls -A "$T/victim")" ] || fail "written outside the cache: $(ls -A "$T/victim")"
    [ ! -e "$T/link" ] && [ ! -e "$T/cache/link" ] || fail "the symlink was created"
    expect_cache_only "$T/cache"
    cmp -s "$T/cache/vmlinuz" "$T/img/vmlinuz" || fail "the kernel is not the root one"
    # a kernel that is a link is refused, not followed
    gi prepare "$T/cache2" "$T/symk.tar=$OCI_TAR"
    expect_rc 2
    expect_err_has "/vmlinuz is not a regular file"
    [ -z "$(ls -A "$T/cache2")" ] || fail "left in the cache: $(ls -A "$T/cache2")"
}

test_kernel_without_the_drivers_names_what_is_missing() {
    make_guest_files
    # the right boot header, but a payload with only two of the drivers
    printf 'retain_initrd\0virtio-mmio\0virtio_blk\0' | fake_bzimage "$T/img/vmlinuz"
    tar -C "$T/img" -czf "$T/layer.tgz" vmlinuz rootfs.cpio.gz
    gi prepare "$T/cache" "$T/layer.tgz=$OCI_GZIP"
    expect_rc 2
    expect_err_has "guest kernel /vmlinuz lacks what VoidBox needs built in"
    for want in CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES CONFIG_VIRTIO_CONSOLE CONFIG_NET_9P_VIRTIO CONFIG_9P_FS; do
        expect_err_has "$want=y"
    done
    for present in "CONFIG_VIRTIO_MMIO=" CONFIG_BLK_DEV_INITRD CONFIG_VIRTIO_BLK CONFIG_VIRTIO_NET; do
        ! grep -qF "$present" "$T/err" || fail "named $present, which it has or was not asked for"
    done
    [ -z "$(ls -A "$T/cache")" ] || fail "a refused image left $(ls -A "$T/cache")"
    # asked for a network and a root disk: those drivers are named too
    gi check "$T/img/vmlinuz" net disk
    expect_rc 2
    expect_err_has "virtio-net (the network) (CONFIG_VIRTIO_NET=y)"
    expect_err_has "(CONFIG_EXT4_FS=y)"
    ! grep -qF CONFIG_VIRTIO_BLK "$T/err" || fail "named virtio-blk, which it has"
    # VoidBox's own kernel has all of them
    gi check "$(cached_kernel)" net disk
    expect_rc 0
}

test_embedded_config_is_read_when_present() {
    # CONFIG_IKCONFIG: the config between IKCFG_ST and IKCFG_ED decides, a
    # module (=m) does not count (the agent loads none)
    {
        printf 'virtio_console\0IKCFG_ST'
        printf '#\n# config\n#\nCONFIG_BLK_DEV_INITRD=y\nCONFIG_VIRTIO_MMIO=y\nCONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y\nCONFIG_VIRTIO_CONSOLE=m\nCONFIG_NET_9P_VIRTIO=y\nCONFIG_9P_FS=y\n' | gzip
        printf 'IKCFG_ED'
    } | fake_bzimage "$T/k"
    gi check "$T/k"
    expect_rc 2
    expect_err_has "its embedded config says"
    expect_err_has "the virtio console (the control channel) (CONFIG_VIRTIO_CONSOLE=y)"
    ! grep -qF CONFIG_9P_FS "$T/err" || fail "named 9p, which the config has"
}

test_initramfs_the_kernel_may_not_unpack_is_decompressed() {
    make_guest_files
    # lz4 (legacy, as Linux reads it): no trace tells whether VoidBox's
    # kernel unpacks it, so the cache gets the plain cpio, and it boots
    gzip -dc "$T/img/rootfs.cpio.gz" >"$T/plain.cpio"
    lz4 -lq -c "$T/plain.cpio" >"$T/img/rootfs.cpio.gz"
    tar -C "$T/img" -czf "$T/lz4.tgz" vmlinuz rootfs.cpio.gz
    gi prepare "$T/cache" "$T/lz4.tgz=$OCI_GZIP"
    expect_rc 0
    cmp -s "$T/cache/initramfs" "$T/plain.cpio" || fail "the lz4 initramfs was not decompressed"
    gi boot "$T/cache/vmlinuz" "$T/cache/initramfs" cat /etc/guest-image-marker
    expect_rc 0
    expect_out "from the guest image"
    # an embedded config decides: gzip kept only with CONFIG_RD_GZIP=y
    local drivers='CONFIG_BLK_DEV_INITRD=y\nCONFIG_VIRTIO_MMIO=y\nCONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y\nCONFIG_VIRTIO_CONSOLE=y\nCONFIG_NET_9P_VIRTIO=y\nCONFIG_9P_FS=y\n'
    gzip -9 <"$T/plain.cpio" >"$T/img/rootfs.cpio.gz"
    for rd in y n; do
        { printf 'IKCFG_ST'; printf "#\n${drivers}CONFIG_RD_GZIP=$rd\n" | gzip; printf 'IKCFG_ED'; } |
            fake_bzimage "$T/img/vmlinuz"
        tar -C "$T/img" -czf "$T/cfg-$rd.tgz" vmlinuz rootfs.cpio.gz
        gi prepare "$T/cache-$rd" "$T/cfg-$rd.tgz=$OCI_GZIP"
        expect_rc 0
    done
    cmp -s "$T/cache-y/initramfs" "$T/img/rootfs.cpio.gz" || fail "gzip not kept with CONFIG_RD_GZIP=y"
    cmp -s "$T/cache-n/initramfs" "$T/plain.cpio" || fail "gzip kept without CONFIG_RD_GZIP"
    expect_cache_only "$T/cache-n"
}

test_elf_vmlinux_and_plain_cpio_boot() {
    make_guest_files
    # the ELF inside the cached bzImage (it has the PVH entry note), named
    # /vmlinux, and an uncompressed /rootfs.cpio
    local k setup po pl
    k=$(cached_kernel)
    setup=$(od -An -tu1 -j $((0x1f1)) -N1 "$k" | tr -d ' ')
    [ "$setup" -eq 0 ] && setup=4
    po=$(od -An -tu4 -j $((0x248)) -N4 "$k" | tr -d ' ')
    pl=$(od -An -tu4 -j $((0x24c)) -N4 "$k" | tr -d ' ')
    tail -c +$(((setup + 1) * 512 + po + 1)) "$k" | head -c "$pl" | gzip -dc >"$T/img/vmlinux" 2>/dev/null
    [ "$(head -c 4 "$T/img/vmlinux" | od -An -c | tr -d ' ')" = '177ELF' ] ||
        fail "the cached kernel's payload is not gzip (guest/kernel/voidbox.fragment says gzip)"
    gzip -dc "$T/img/rootfs.cpio.gz" >"$T/img/rootfs.cpio"
    tar -C "$T/img" -cf "$T/layer.tar" vmlinux rootfs.cpio
    gi prepare "$T/cache" "$T/layer.tar=$OCI_TAR"
    expect_rc 0
    cmp -s "$T/cache/vmlinuz" "$T/img/vmlinux" || fail "the kernel is not the layer's vmlinux"
    gi boot "$T/cache/vmlinuz" "$T/cache/initramfs" cat /etc/guest-image-marker
    expect_rc 0
    expect_out "from the guest image"
    expect_clean
}

test_not_a_kernel() {
    echo "#!/bin/sh" >"$T/k"
    gi check "$T/k"
    expect_rc 2
    expect_err_has "is not a Linux kernel QEMU's microvm boots"
    # an ELF without a PVH note (busybox) is no bootable vmlinux
    gi check /bin/busybox
    expect_rc 2
    expect_err_has "an ELF kernel without an x86-64 PVH entry note"
}

run_tests
