# VoidBox — build, test, run.  `make run` and `make check` set up a fresh
# Debian 12 machine (scripts/deps.sh), build everything and do their job.
SHELL := /bin/bash
CC ?= gcc
MUSLCC ?= musl-gcc
O ?= build
SAN ?= 0
# `make install` (DESTDIR honoured; docs/install.md).  DATADIR is compiled
# in as the data directory's last fallback.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DATADIR ?= $(PREFIX)/share/voidbox
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
# `make check TESTS=REGEX` / `make test TESTS=REGEX`: only the tests whose
# FILE:NAME matches (tests/run.sh says how).
TESTS ?=
export TESTS

WARN := -std=c11 -Wall -Wextra -Werror -Wshadow -Wcast-qual -Wwrite-strings \
        -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla
CPPFLAGS := -D_GNU_SOURCE -Iinclude -Iproto -Isrc
CFLAGS ?= -O2 -g
CFLAGS += $(WARN) -fstack-protector-strong -fno-strict-aliasing -pthread
# libslirp (user-mode networking, src/net/): its pkg-config also names glib
SLIRP_CFLAGS := $(shell pkg-config --cflags slirp)
SLIRP_LIBS := $(shell pkg-config --libs slirp)
LDLIBS := -lyaml -ljansson -lmicrohttpd -lcurl -larchive -lcrypto $(SLIRP_LIBS) -pthread
ifeq ($(SAN),1)
CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -O1
LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRCS := proto/vb_proto.c $(sort $(filter-out src/cli/%,$(wildcard src/*/*.c)))
CLI_SRCS := $(sort $(wildcard src/cli/*.c))
AGENT_SRCS := proto/vb_proto.c $(sort $(wildcard guest/agent/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(O)/%.o) $(O)/src/image/agent_blob.o
CLI_OBJS := $(CLI_SRCS:%.c=$(O)/%.o)
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(O)/tests/%)
ITEST_SRCS := $(sort $(wildcard tests/integration/*.c))
ITEST_BINS := $(ITEST_SRCS:tests/integration/%.c=$(O)/tests/%)
EXAMPLE_SRCS := $(sort $(wildcard examples/*.c))
EXAMPLE_BINS := $(EXAMPLE_SRCS:examples/%.c=$(O)/examples/%)
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
REPLAY_BINS := $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=$(O)/tests/replay_%)

.PHONY: all deps kernel image run check test unit fuzz bench clean install uninstall FORCE
HOSTILE_BINS := $(O)/tests/hostile_guest $(O)/tests/hostile_agent $(O)/tests/net_flood
FAKE_BINS := $(O)/tests/fake_llm

all: $(O)/voidbox $(UNIT_BINS) $(ITEST_BINS) $(REPLAY_BINS) $(EXAMPLE_BINS) $(HOSTILE_BINS) $(FAKE_BINS)

# The guest agent: static, musl, no sanitizer (it is PID 1 in the guest).
$(O)/voidbox-agent: $(AGENT_SRCS) $(wildcard guest/agent/*.h) proto/vb_proto.h
	@mkdir -p $(@D)
	$(MUSLCC) -static -Os -g0 $(WARN) -D_GNU_SOURCE -Iproto -Iguest/agent -pthread \
	    -o $@ $(AGENT_SRCS)

# The hostile-guest suite (tests/integration/test_hostile.sh): a static tool
# run inside a guest, and a stand-in "QEMU" that plays a hostile agent.
$(O)/tests/hostile_guest: tests/hostile/hostile_guest.c
	@mkdir -p $(@D)
	$(MUSLCC) -static -Os -g0 $(WARN) -D_GNU_SOURCE -o $@ $<

# test_network.sh: a guest that floods its network with malformed packets
$(O)/tests/net_flood: tests/hostile/net_flood.c
	@mkdir -p $(@D)
	$(MUSLCC) -static -Os -g0 $(WARN) -D_GNU_SOURCE -o $@ $<

$(O)/tests/hostile_agent: tests/hostile/hostile_agent.c proto/vb_proto.c proto/vb_proto.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< proto/vb_proto.c

# A scripted model provider on the host's loopback for the LLM gateway's
# tests (tests/fake/fake_llm.c says how it is driven).
$(O)/tests/fake_llm: tests/fake/fake_llm.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< -lmicrohttpd -ljansson -pthread

$(O)/src/image/agent_blob.o: src/image/agent_blob.S $(O)/voidbox-agent
	@mkdir -p $(@D)
	$(CC) -c -DAGENT_PATH=\"$(O)/voidbox-agent\" -o $@ $<

$(O)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(O)/src/net/%.o: CPPFLAGS += $(SLIRP_CFLAGS)

# The data directory's last fallback (see vb_datadir in src/util/util.h).
$(O)/src/util/util.o: CPPFLAGS += -DVB_DATADIR=\"$(DATADIR)\"
$(O)/src/util/util.o: $(O)/install-paths

# What has the install paths in it is rebuilt when they change, so that
# `make && sudo make install PREFIX=/opt` installs a binary that knows /opt.
INSTALL_PATHS := $(PREFIX):$(LIBDIR):$(INCLUDEDIR):$(DATADIR)
$(O)/install-paths: FORCE
	@mkdir -p $(@D)
	@[ "$$(cat $@ 2>/dev/null)" = '$(INSTALL_PATHS)' ] || echo '$(INSTALL_PATHS)' >$@
FORCE:

$(O)/libvoidbox.a: $(LIB_OBJS)
	rm -f $@; ar rcs $@ $^

$(O)/voidbox: $(CLI_OBJS) $(O)/libvoidbox.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Tests (not the library) may know the source tree, e.g. for golden files.
$(O)/tests/%: tests/unit/%.c $(O)/libvoidbox.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -DVB_SRCDIR=\"$(CURDIR)\" $(CFLAGS) $(LDFLAGS) -o $@ $< $(O)/libvoidbox.a $(LDLIBS) -lcmocka

$(O)/tests/%: tests/integration/%.c tests/integration/itest.h $(O)/libvoidbox.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(O)/libvoidbox.a $(LDLIBS)

# The stand-in npm registry of test_agentbin.sh serves with libmicrohttpd.
$(O)/tests/fake_npm: LDLIBS += -lmicrohttpd

# Examples use only the public headers: -Iinclude, never -Isrc.
$(O)/examples/%: examples/%.c $(O)/libvoidbox.a $(wildcard include/voidbox/*.h)
	@mkdir -p $(@D)
	$(CC) -Iinclude $(CFLAGS) $(LDFLAGS) -o $@ $< $(O)/libvoidbox.a $(LDLIBS)

# Each fuzz target also builds as a plain program that replays its corpus.
$(O)/tests/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay_main.c $(O)/libvoidbox.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes $(LDFLAGS) -o $@ $< tests/fuzz/replay_main.c \
	    $(O)/libvoidbox.a $(LDLIBS)

deps:
	@scripts/deps.sh

kernel: deps
	@guest/kernel/build.sh

image: all kernel
	@$(O)/voidbox image build

# The main job: a pipe and a fan-out of command boxes, each in its own VM.
run: deps all kernel
	@$(O)/voidbox image build >/dev/null
	@$(O)/voidbox run examples/hello-pipeline.yaml

# Every test, in the normal build and again under ASAN+UBSAN.
check: deps
	@$(MAKE) --no-print-directory all O=build
	@$(MAKE) --no-print-directory all O=build-san SAN=1
	@guest/kernel/build.sh
	@build/voidbox image build
	@tests/run.sh build build-san

test: all
	@tests/run.sh $(O)

# libFuzzer builds of every parser of guest or file input; run e.g.
#   build/fuzz/fuzz_proto -max_total_time=600 tests/fuzz/corpus/proto
fuzz:
	@mkdir -p $(O)/fuzz
	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iproto \
	    -o $(O)/fuzz/fuzz_proto tests/fuzz/fuzz_proto.c proto/vb_proto.c
	clang -g -O1 -fsanitize=fuzzer,address,undefined $(CPPFLAGS) -Iinclude -Isrc \
	    -o $(O)/fuzz/fuzz_chan tests/fuzz/fuzz_chan.c src/channel/channel.c src/sandbox/forward.c \
	    proto/vb_proto.c \
	    src/util/util.c src/util/error.c src/util/term.c -pthread
	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc \
	    -o $(O)/fuzz/fuzz_spec tests/fuzz/fuzz_spec.c src/spec/*.c src/oci/ref.c src/util/error.c \
	    src/util/term.c src/util/util.c \
	    -lyaml -ljansson
	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc \
	    -o $(O)/fuzz/fuzz_usage tests/fuzz/fuzz_usage.c src/llm/usage.c -ljansson
	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc \
	    -o $(O)/fuzz/fuzz_netfilter tests/fuzz/fuzz_netfilter.c src/net/filter.c src/net/frame.c \
	    src/net/sni.c src/net/domain.c src/util/error.c
	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc \
	    -o $(O)/fuzz/fuzz_dns tests/fuzz/fuzz_dns.c src/net/dns.c src/net/domain.c src/util/error.c
	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc \
	    -o $(O)/fuzz/fuzz_sni tests/fuzz/fuzz_sni.c src/net/sni.c src/net/domain.c src/util/error.c
	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc \
	    -o $(O)/fuzz/fuzz_sse tests/fuzz/fuzz_sse.c src/builtin/stream.c src/util/term.c \
	    src/util/error.c -ljansson
	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc \
	    -o $(O)/fuzz/fuzz_skillmd tests/fuzz/fuzz_skillmd.c src/skill/frontmatter.c \
	    src/util/term.c src/util/error.c -lyaml
	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc \
	    -o $(O)/fuzz/fuzz_mcp tests/fuzz/fuzz_mcp.c src/skill/mcp.c src/util/term.c \
	    src/util/error.c src/util/util.c -ljansson
	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc \
	    -o $(O)/fuzz/fuzz_guestimg tests/fuzz/fuzz_guestimg.c src/oci/guestimg.c \
	    src/util/term.c src/util/error.c src/util/util.c -larchive
	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc \
	    -o $(O)/fuzz/fuzz_oci_layer tests/fuzz/fuzz_oci_layer.c src/oci/unpack.c src/util/term.c \
	    src/util/error.c -larchive
	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc \
	    -o $(O)/fuzz/fuzz_oci_manifest tests/fuzz/fuzz_oci_manifest.c src/oci/manifest.c \
	    src/oci/ref.c src/util/term.c src/util/error.c src/util/util.c -ljansson
	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc \
	    -o $(O)/fuzz/fuzz_snap_manifest tests/fuzz/fuzz_snap_manifest.c src/snap/store.c src/snap/diff.c src/snap/evict.c src/snap/memo.c \
	    src/util/term.c src/util/error.c src/util/util.c -ljansson -lcrypto

bench: all kernel
	@bench/boot.sh $(O)
	@bench/fanout.sh $(O)
	@bench/gateway.sh $(O)
	@bench/network.sh $(O)
	@bench/agent_start.sh $(O)
	@bench/oci.sh $(O)
	@bench/snapshot.sh $(O)

# The C API's link line for `pkg-config --cflags --libs voidbox`.  There is
# only a static library, so its own dependencies are in Libs.  Paths under
# the prefix are written as ${prefix}/... so that `pkg-config --define-prefix`
# works for a tree that was moved after installing.
pc_rel = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))
$(O)/voidbox.pc: voidbox.pc.in include/voidbox/voidbox.h $(O)/install-paths
	@mkdir -p $(@D)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(call pc_rel,$(LIBDIR))|' \
	    -e 's|@INCLUDEDIR@|$(call pc_rel,$(INCLUDEDIR))|' \
	    -e "s|@VERSION@|$$(sed -n 's/^#define VOIDBOX_VERSION "\(.*\)"/\1/p' include/voidbox/voidbox.h)|" \
	    $< >$@

INSTALLED_HEADERS := $(notdir $(wildcard include/voidbox/*.h))
DATA_FILES := guest/kernel/build.sh guest/kernel/voidbox.fragment

install: $(O)/voidbox $(O)/libvoidbox.a $(O)/voidbox.pc
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) \
	    $(DESTDIR)$(INCLUDEDIR)/voidbox $(DESTDIR)$(DATADIR)/guest/kernel
	install -m 0755 $(O)/voidbox $(DESTDIR)$(BINDIR)/voidbox
	install -m 0644 $(O)/libvoidbox.a $(DESTDIR)$(LIBDIR)/libvoidbox.a
	install -m 0644 $(O)/voidbox.pc $(DESTDIR)$(PKGCONFIGDIR)/voidbox.pc
	install -m 0644 $(addprefix include/voidbox/,$(INSTALLED_HEADERS)) $(DESTDIR)$(INCLUDEDIR)/voidbox/
	install -m 0755 guest/kernel/build.sh $(DESTDIR)$(DATADIR)/guest/kernel/build.sh
	install -m 0644 guest/kernel/voidbox.fragment $(DESTDIR)$(DATADIR)/guest/kernel/voidbox.fragment

# Removes what install put there, then the directories it made if empty;
# never the cache or the run records (docs/install.md).
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/voidbox $(DESTDIR)$(LIBDIR)/libvoidbox.a \
	    $(DESTDIR)$(PKGCONFIGDIR)/voidbox.pc \
	    $(addprefix $(DESTDIR)$(INCLUDEDIR)/voidbox/,$(INSTALLED_HEADERS)) \
	    $(addprefix $(DESTDIR)$(DATADIR)/,$(DATA_FILES))
	rmdir $(DESTDIR)$(INCLUDEDIR)/voidbox $(DESTDIR)$(DATADIR)/guest/kernel \
	    $(DESTDIR)$(DATADIR)/guest $(DESTDIR)$(DATADIR) 2>/dev/null || true

clean:
	rm -rf build build-san

-include $(shell find $(O) -name '*.d' 2>/dev/null)
