#!/usr/bin/env bash
# The LLM gateway's cost: time to first byte and throughput of a streamed
# (SSE) answer from the scripted fake provider, straight from the host and
# through the gateway (over a unix-socket connection handed to it, as the
# guest's streams will be), interleaved in the same run.  Goal: at most
# 5 ms added to the time to first token.  Exits 3 if the goal is missed.
# Not a test.  The guest's own hop (its stream over the control channel)
# is not in these figures.
#
# usage: bench/gateway.sh [BUILD_DIR] [REQUESTS]
set -euo pipefail
build=${1:-build}
n=${2:-100}
bin="$build/tests/itest_gateway"
[ -x "$bin" ] && [ -x "$build/tests/fake_llm" ] || { echo "build first: make" >&2; exit 1; }
exec "$bin" bench "$n"
