#!/usr/bin/env bash
# `make install` / `make uninstall`, an installed tree that was moved or
# copied still finding its data, the C API through pkg-config (the examples
# compiled and run against the installed tree only), and the kernel build's
# progress, measured on a fake kernel source.
here=$(cd "$(dirname "$0")" && pwd)
TEST_TIMEOUT=${TEST_TIMEOUT:-600}   # two C programs boot three VMs each
. "$here/lib.sh"
ROOT=$(cd "$here/../.." && pwd)
: "${VB_BUILD:=$(dirname "$VB")}"
# The user's real cache, before each test points XDG_CACHE_HOME elsewhere.
home=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
REAL_CACHE="${XDG_CACHE_HOME:-$home/.cache}/voidbox"
export ROOT VB_BUILD REAL_CACHE
unset VOIDBOX_DATADIR VOIDBOX_KERNEL

# install_tree install|uninstall [VAR=VALUE...]: `make install` of the build
# under test into $T/dest.  From a copy of it, so that an install with
# another PREFIX (which recompiles the file holding the prefix) leaves the
# build under test alone; with that build's sanitizer flags; without the
# outer make's jobserver.
install_tree() {
    local san=0
    grep -qa __asan_init "$VB" && san=1
    [ -d "$T/obj" ] || cp -a "$VB_BUILD" "$T/obj"
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$ROOT" --no-print-directory \
        O="$T/obj" SAN=$san DESTDIR="$T/dest" "$@" >"$T/make.log" 2>&1 ||
        fail "make $*: $(tail -20 "$T/make.log")"
}

# A private cache holding the already built kernel of the user's cache (a
# link: nothing is rebuilt and the real cache is not touched).
private_cache_with_the_kernel() {
    local k
    k=$(readlink "$REAL_CACHE/kernel-current") && [ -f "$REAL_CACHE/$k/bzImage" ] ||
        fail "no built kernel in $REAL_CACHE (run \`voidbox image build\` first)"
    mkdir -p "$T/cache/voidbox"
    ln -s "$REAL_CACHE/$k" "$T/cache/voidbox/$k"
    export XDG_CACHE_HOME="$T/cache"
}

# The prefix of the last install_tree (its pkg-config file).
build_prefix() { sed -n 's/^prefix=//p' "$T/obj/voidbox.pc"; }

test_install_puts_everything_under_prefix_and_uninstall_removes_it() {
    install_tree install
    local p
    p="$T/dest$(build_prefix)"
    for f in bin/voidbox lib/libvoidbox.a lib/pkgconfig/voidbox.pc \
             include/voidbox/voidbox.h include/voidbox/run.h include/voidbox/sandbox.h \
             include/voidbox/events.h include/voidbox/error.h \
             share/voidbox/guest/kernel/build.sh share/voidbox/guest/kernel/voidbox.fragment; do
        [ -f "$p/$f" ] || fail "make install did not install $f: $(find "$T/dest" -type f)"
    done
    [ -x "$p/bin/voidbox" ] && [ -x "$p/share/voidbox/guest/kernel/build.sh" ] ||
        fail "installed programs are not executable"
    for h in "$ROOT"/include/voidbox/*.h; do
        cmp -s "$h" "$p/include/voidbox/${h##*/}" || fail "${h##*/} differs from the source"
    done
    cmp -s "$ROOT/guest/kernel/voidbox.fragment" "$p/share/voidbox/guest/kernel/voidbox.fragment" ||
        fail "the fragment differs from the source"
    grep -qx 'Libs: -L${libdir} -lvoidbox -lyaml -ljansson -lmicrohttpd -lcurl -larchive -lcrypto -lslirp -lglib-2.0 -pthread' "$p/lib/pkgconfig/voidbox.pc" ||
        fail "voidbox.pc: $(cat "$p/lib/pkgconfig/voidbox.pc")"
    install_tree uninstall
    local left
    left=$(find "$T/dest" -type f)
    [ -z "$left" ] || fail "make uninstall left: $left"
    [ ! -e "$p/share/voidbox" ] && [ ! -e "$p/include/voidbox" ] ||
        fail "make uninstall left its directories: $(find "$T/dest")"
}

test_destdir_and_prefix_are_honoured() {
    install_tree install PREFIX=/opt/vb BINDIR=/opt/vb/sbin
    [ -x "$T/dest/opt/vb/sbin/voidbox" ] && [ -f "$T/dest/opt/vb/lib/libvoidbox.a" ] &&
        [ -f "$T/dest/opt/vb/share/voidbox/guest/kernel/build.sh" ] ||
        fail "not under DESTDIR/PREFIX: $(find "$T/dest" -type f)"
    grep -qx 'prefix=/opt/vb' "$T/dest/opt/vb/lib/pkgconfig/voidbox.pc" ||
        fail "voidbox.pc: $(cat "$T/dest/opt/vb/lib/pkgconfig/voidbox.pc")"
    # The binary knows the prefix it was installed with, not only the
    # one it was first built with.
    mkdir "$T/lone" && cp "$T/dest/opt/vb/sbin/voidbox" "$T/lone/"
    VB=$T/lone/voidbox vb doctor
    grep -qx "  data         not found (no guest/kernel/build.sh in /opt/vb/share/voidbox)" "$T/out" ||
        fail "doctor: $(grep data "$T/out")"
    VB=$T/dest/opt/vb/sbin/voidbox vb doctor
    grep -qx "  data         $T/dest/opt/vb/share/voidbox" "$T/out" || fail "doctor: $(grep data "$T/out")"
    install_tree uninstall PREFIX=/opt/vb BINDIR=/opt/vb/sbin
    [ -z "$(find "$T/dest" -type f)" ] || fail "left: $(find "$T/dest" -type f)"
}

test_a_moved_install_finds_its_data_and_a_lone_copy_says_where_it_looked() {
    install_tree install
    mv "$T/dest$(build_prefix)" "$T/moved"
    VB=$T/moved/bin/voidbox
    vb doctor
    grep -qx "  data         $T/moved/share/voidbox" "$T/out" ||
        fail "doctor's data line: $(grep data "$T/out")"
    private_cache_with_the_kernel
    vb image build
    expect_rc 0
    grep -qx "kernel:    $T/cache/voidbox/kernel-current/bzImage" "$T/out" ||
        fail "image build: $out"
    # The installed recipe hashed to the kernel already built: a no-op.
    grep -q "voidbox kernel: up to date" "$T/out" || fail "image build rebuilt the kernel: $out"

    # A lone copy, away from any share/voidbox and from the source tree:
    # only the prefix compiled in is left.
    mkdir "$T/lone"
    cp "$T/moved/bin/voidbox" "$T/lone/voidbox"
    VB=$T/lone/voidbox
    local d
    d="$(build_prefix)/share/voidbox"
    vb doctor
    if [ -x "$d/guest/kernel/build.sh" ]; then
        grep -qx "  data         $d" "$T/out" || fail "doctor: $(grep data "$T/out")"
    else
        grep -qx "  data         not found (no guest/kernel/build.sh in $d)" "$T/out" ||
            fail "doctor: $(grep data "$T/out")"
        vb image build
        expect_rc 125
        expect_err_has "$d/guest/kernel/build.sh"
        expect_err_has "VOIDBOX_DATADIR"
    fi
    VOIDBOX_DATADIR=$T/moved/share/voidbox vb image build
    expect_rc 0
    VOIDBOX_DATADIR=$T/moved/share/voidbox vb doctor
    grep -qx "  data         $T/moved/share/voidbox" "$T/out" || fail "doctor: $(grep data "$T/out")"
}

# cc_installed OUT SRC: compile against the moved tree with its pkg-config
# file only (from outside the source tree: no -I into it).
cc_installed() {
    local flags extra=""
    flags=$(PKG_CONFIG_PATH=$T/moved/lib/pkgconfig pkg-config --define-prefix --cflags --libs voidbox) ||
        fail "pkg-config found no voidbox"
    grep -qa __asan_init "$VB" && extra="-fsanitize=address,undefined"
    (cd "$T" && cc -std=c11 -Wall -Wextra -Werror $extra -o "$1" "$2" $flags) 2>"$T/cc.log" ||
        fail "compiling $2 failed: $(head -c 1500 "$T/cc.log")"
}

test_the_c_api_through_pkg_config_builds_and_runs_the_examples() {
    install_tree install
    mv "$T/dest$(build_prefix)" "$T/moved"
    local flags
    flags=$(PKG_CONFIG_PATH=$T/moved/lib/pkgconfig pkg-config --define-prefix --cflags --libs voidbox)
    [ "$(echo $flags)" = "-I$T/moved/include -L$T/moved/lib -lvoidbox -lyaml -ljansson -lmicrohttpd -lcurl -larchive -lcrypto -lslirp -lglib-2.0 -pthread" ] ||
        fail "pkg-config: '$flags'"

    cp "$ROOT/examples/pipeline.c" "$T/pipeline.c"
    cc_installed "$T/pipeline" "$T/pipeline.c"
    "$T/pipeline" "three little words" >"$T/out" 2>"$T/err" </dev/null
    rc=$?; out=$(cat "$T/out"); check_sanitizers
    expect_rc 0
    grep -q "^run .*: succeeded$" "$T/out" || fail "pipeline example: $out"
    grep -q "^stage count .* 3$" "$T/out" || fail "pipeline example's count stage: $out"

    # The example in include/voidbox/run.h's header comment, whole.
    { echo '#include <stdio.h>'
      echo '#include "voidbox/voidbox.h"'
      echo 'int main(void)'
      echo '{'
      sed -n '1,/\*\//p' "$T/moved/include/voidbox/run.h" | sed -n 's/^ \*     //p'
      echo '	return 0;'
      echo '}'; } >"$T/run_h_example.c"
    grep -q vb_pipeline_run "$T/run_h_example.c" || fail "no example found in run.h"
    cc_installed "$T/run_h_example" "$T/run_h_example.c"
    "$T/run_h_example" >"$T/out" 2>"$T/err" </dev/null
    rc=$?; out=$(cat "$T/out"); check_sanitizers
    expect_rc 0
    [ "$(head -n 1 "$T/out")" = ok ] || fail "run.h example: $out (stderr: $(cat "$T/err"))"
    # The fan-out's output: what each box printed of the first box's output.
    grep -qF '[{"n":1},"9 /workspace/input.json\n"]' "$T/out" || fail "run.h example: $out"
}

# A kernel source whose make prints what Kbuild prints: 6 compiles, one
# every 0.5 s, with archive lines between them that take no time.  Its top
# directory is named as in kernel.org's tarballs.
fake_kernel_tarball() {
    local s=$T/src/linux-6.1.999
    mkdir -p "$s/scripts/kconfig"
    printf '%s\n' \
        'tinyconfig:' "	@echo '# CONFIG_MODULES is not set' >.config" \
        'olddefconfig:' '	@true' \
        'bzImage:' \
        '	@for i in 1 2 3 4 5 6; do sleep 0.5; echo "  CC      obj$$i.o"; echo "  AR      d$$i/built-in.a"; done' \
        '	@mkdir -p arch/x86/boot && echo fake-kernel >arch/x86/boot/bzImage' >"$s/Makefile"
    printf '%s\n' '#!/bin/sh' \
        '# -m -O DIR CONFIG FRAGMENT: append the fragment as kconfig writes it' \
        'sed "s/^\(CONFIG_[A-Z0-9_]*\)=n$/# \1 is not set/" "$5" >>"$4"' \
        >"$s/scripts/kconfig/merge_config.sh"
    chmod +x "$s/scripts/kconfig/merge_config.sh"
    tar -C "$T/src" -cJf "$T/linux.tar.xz" linux-6.1.999
}

# check_progress FILE TOTAL APPROX: every progress line has N/M (P%) right
# and, from the third compile on, an ETA within a second of the truth
# (0.5 s per compile left).
check_progress() {
    local n m p eta want lines=0
    while read -r n m p eta; do
        lines=$((lines + 1))
        [ "$m" = "$3$2" ] || fail "total '$m', expected '$3$2': $(cat "$1")"
        want=$((100 * n / $2))
        [ "$n" -lt "$2" ] || [ -z "$3" ] || want=99   # an estimate reached is not 100%
        [ "$p" = "$want" ] || fail "$n/$3$2 shown as $p%, expected $want%"
        [ "$n" -ge 3 ] || continue
        want=$(( (6 - n) * 5 ))   # tenths of a second
        eta=$((10#${eta%:*} * 600 + 10#${eta#*:} * 10))
        [ $((eta - want)) -le 10 ] && [ $((want - eta)) -le 10 ] ||
            fail "at $n/6 the ETA is $((eta / 10))s, $((want / 10)).$((want % 10))s are left"
    done < <(sed -n 's|^voidbox kernel: \([0-9]*\)/\([~0-9]*\) (\([0-9]*\)%), ETA \([0-9:]*\)$|\1 \2 \3 \4|p' "$1")
    [ "$lines" -ge 6 ] || fail "only $lines progress lines: $(cat "$1")"
    grep -q "^voidbox kernel: 6/$3$2 " "$1" || fail "no line for the last compile: $(cat "$1")"
}

test_kernel_build_shows_a_fraction_and_an_eta() {
    fake_kernel_tarball
    export XDG_CACHE_HOME=$T/cache VOIDBOX_KERNEL_TARBALL=$T/linux.tar.xz VOIDBOX_KERNEL_PROGRESS_SECS=0
    # First build of this config: the total is the shipped recipe's estimate.
    vb image build
    expect_rc 0
    grep -q "^voidbox kernel: compiling about 1125 files" "$T/out" || fail "$out"
    grep -q "^voidbox kernel: 3/~1125 (0%), ETA " "$T/out" || fail "$out"
    local k
    k=$(readlink "$T/cache/voidbox/kernel-current")
    [ "$(cat "$T/cache/voidbox/$k/steps")" = 6 ] || fail "steps counted: $(cat "$T/cache/voidbox/$k/steps")"
    [ "$(cat "$T/cache/voidbox/$k/bzImage")" = fake-kernel ] || fail "not the fake kernel"
    # Again: now the total is this config's own count.
    vb image build --force
    expect_rc 0
    grep -q "^voidbox kernel: compiling 6 files" "$T/out" || fail "$out"
    check_progress "$T/out" 6 ""
    # Another config (a changed fragment) uses that count as an estimate.
    mkdir -p "$T/d/guest/kernel"
    cp "$ROOT"/guest/kernel/{build.sh,voidbox.fragment} "$T/d/guest/kernel/"
    echo "CONFIG_VOIDBOX_TEST_OPTION=y" >>"$T/d/guest/kernel/voidbox.fragment"
    VOIDBOX_DATADIR=$T/d vb image build
    expect_rc 0
    check_progress "$T/out" 6 "~"
    # And with a kernel built, it is a quick no-op.
    local t0
    t0=$(date +%s%N)
    vb image build
    expect_rc 0
    grep -q "^voidbox kernel: up to date" "$T/out" || fail "$out"
    [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 3000 ] || fail "a cached kernel took over 3 s"
}

test_kernel_build_progress_is_a_no_op_on_the_real_cached_kernel() {
    private_cache_with_the_kernel
    local t0
    t0=$(date +%s%N)
    "$ROOT/guest/kernel/build.sh" >"$T/out" 2>&1 || fail "build.sh: $(cat "$T/out")"
    grep -q "^voidbox kernel: up to date ($T/cache/voidbox/kernel-" "$T/out" || fail "$(cat "$T/out")"
    [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 3000 ] || fail "a cached kernel took over 3 s"
}

# `make check TESTS=...` hands TESTS to tests/run.sh: only what matches runs.
test_tests_filter_runs_only_the_matching_tests() {
    local build=${VB_BUILD#"$ROOT"/}
    (cd "$ROOT" && TESTS='^replay_proto$' tests/run.sh "$build") >"$T/out" 2>&1
    rc=$?; out=$(cat "$T/out")
    expect_rc 0
    [ "$(grep -c ' ok - ' "$T/out")" = 1 ] && grep -q ' ok - fuzz corpus tests/fuzz/corpus/proto' "$T/out" ||
        fail "TESTS=^replay_proto\$: $out"
    [ "$(tail -n 1 "$T/out")" = "1 passed, 0 failed" ] || fail "$out"

    (cd "$ROOT" && TESTS='test_exec.sh:(help_on_every_verb|usage_errors_are_2)$' tests/run.sh "$build") \
        >"$T/out" 2>&1
    rc=$?; out=$(cat "$T/out")
    expect_rc 0
    [ "$(grep ' ok - ' "$T/out" | sed 's/.* ok - //' | sort | tr '\n' ' ')" = \
      "help_on_every_verb usage_errors_are_2 " ] || fail "FILE:NAME filter: $out"
    [ "$(tail -n 1 "$T/out")" = "2 passed, 0 failed" ] || fail "$out"

    (cd "$ROOT" && TESTS='no_such_test_anywhere' tests/run.sh "$build") >"$T/out" 2>&1
    rc=$?; out=$(cat "$T/out")
    expect_rc 1
    grep -q "no test matches TESTS='no_such_test_anywhere'" "$T/out" || fail "$out"

    (cd "$ROOT" && TESTS='(' tests/run.sh "$build") >"$T/out" 2>&1
    rc=$?; out=$(cat "$T/out")
    expect_rc 2
    grep -q "is not an extended regex" "$T/out" || fail "$out"
}

run_tests
