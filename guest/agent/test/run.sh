#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# guest/agent/test/run.sh [OUTDIR]
#
# Builds the guest agent for the host (glibc, and again with ASAN+UBSAN),
# checks that the static musl build (what the Makefile ships) compiles with
# the project's warnings, and runs the protocol tests of agent_test.c
# against the agent in process mode.  Needs root for the uid-switching and
# ownership checks (they are skipped otherwise).  No VM is needed; see vm.sh
# for the same tests against a booted guest.
set -euo pipefail
cd "$(dirname "$0")/../../.."
O=${1:-build/agent-test}
mkdir -p "$O"

WARN="-std=c11 -Wall -Wextra -Werror -Wshadow -Wcast-qual -Wwrite-strings -Wstrict-prototypes
      -Wmissing-prototypes -Wformat=2 -Wvla"
CPP="-D_GNU_SOURCE -Iproto -Iguest/agent -pthread"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

echo "== build"
musl-gcc -static -Os -g0 $WARN $CPP -o "$O/voidbox-agent" proto/vb_proto.c guest/agent/*.c
gcc -O2 -g $WARN $CPP -DVB_AGENT_TEST -o "$O/agent" proto/vb_proto.c guest/agent/*.c
gcc -O1 -g $SAN $WARN $CPP -DVB_AGENT_TEST -o "$O/agent-san" proto/vb_proto.c guest/agent/*.c
gcc -O1 -g $SAN $WARN $CPP -Iguest/agent/test -o "$O/agent_test" \
	guest/agent/test/agent_test.c guest/agent/test/client.c proto/vb_proto.c
ls -l "$O/voidbox-agent"

echo "== tests: process mode, glibc build"
timeout 300 "$O/agent_test" --agent "$O/agent"

echo "== tests: process mode, ASAN+UBSAN build"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	timeout 600 "$O/agent_test" --agent "$O/agent-san"
