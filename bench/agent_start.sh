#!/usr/bin/env bash
# Agent start-up: the time from `voidbox run` of a one-stage agent spec to
# the agent's first model request reaching the model (the scripted fake
# provider records when each request arrived), for the builtin agent,
# claude-code and codex, against `voidbox exec -- true` (boot, one exec,
# teardown) measured interleaved in the same run as the baseline.  Prints
# medians and their ratios to the baseline, and the whole run (the fake
# answers the first request with a final text, so each agent stops there).
# Not a test.  An agent not in the cache is skipped (`voidbox agent pull`
# fetches it), so the bench never downloads on its own.
#
# usage: bench/agent_start.sh [BUILD_DIR] [RUNS]
set -euo pipefail
build=${1:-build}
runs=${2:-5}
vb="$build/voidbox"
fake_bin="$build/tests/fake_llm"
[ -x "$vb" ] && [ -x "$fake_bin" ] || { echo "build first: make" >&2; exit 1; }
"$vb" image build >/dev/null
accel=$("$vb" doctor -o json | jq -r .accel)

tmp=$(mktemp -d)
fake_pid=
cleanup() {
    exec 9>&- 2>/dev/null || true
    [ -n "$fake_pid" ] && wait "$fake_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
export XDG_STATE_HOME="$tmp/state" # the bench's run records go away with it
ms() { date +%s%N | cut -c1-13; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# The fake: every model request gets a final text, in either API.
echo '{"turns": [{"text": "done", "usage": {"input_tokens": 10, "output_tokens": 2}}]}' >"$tmp/script.json"
mkfifo "$tmp/fake.in"
"$fake_bin" "$tmp/script.json" "$tmp/fake.log" <"$tmp/fake.in" >"$tmp/fake.port" 2>"$tmp/fake.err" &
fake_pid=$!
exec 9>"$tmp/fake.in"
for _ in $(seq 100); do [ -s "$tmp/fake.port" ] && break; sleep 0.05; done
port=$(head -1 "$tmp/fake.port")
[ -n "$port" ] || { echo "the fake provider did not start: $(cat "$tmp/fake.err")" >&2; exit 1; }
export VB_BENCH_KEY=sk-bench-not-a-secret

agents=(builtin)
for a in claude-code codex; do
    if "$vb" agent list -o json | jq -e --arg a "$a" '.[] | select(.agent == $a) | .cached' >/dev/null; then
        agents+=("$a")
    else
        echo "skipped: $a is not cached (voidbox agent pull $a)" >&2
    fi
done
for a in "${agents[@]}"; do
    cat >"$tmp/$a.yaml" <<EOF
api_version: v1
kind: agent
name: bench-$a
llm: {provider: custom, agent: $a, base_url: "http://127.0.0.1:$port", api_key_env: VB_BENCH_KEY, model: fake-model}
agent: {prompt: "say done", timeout_secs: 300}
EOF
done

# One agent run: the first model request's arrival and the run's end,
# each in ms from the start of `voidbox run`.
run_agent() {
    local a=$1 before t0 t1 first
    before=$(wc -l <"$tmp/fake.log" 2>/dev/null || echo 0)
    t0=$(ms)
    if ! "$vb" run -q "$tmp/$a.yaml" >"$tmp/out" 2>"$tmp/err"; then
        echo "warning: the $a run failed: $(head -c 300 "$tmp/err")" >&2
        return
    fi
    t1=$(ms)
    first=$(tail -n +"$((before + 1))" "$tmp/fake.log" |
        jq -s 'map(select(.path | test("/(messages|responses)"))) | .[0].time_ms // empty')
    [ -n "$first" ] || { echo "warning: no model request from $a" >&2; return; }
    echo $((first - t0)) >>"$tmp/first-$a"
    echo $((t1 - t0)) >>"$tmp/total-$a"
}

echo "accelerator: $accel   runs: $runs   agents: ${agents[*]}"
"$vb" exec -- true # warm the page cache, and each agent's files
for a in "${agents[@]}"; do run_agent "$a"; done
rm -f "$tmp"/first-* "$tmp"/total-*
for _ in $(seq "$runs"); do
    t0=$(ms); "$vb" exec -- true; t1=$(ms); echo $((t1 - t0)) >>"$tmp/exec"
    for a in "${agents[@]}"; do run_agent "$a"; done
done
base=$(median <"$tmp/exec")
printf '%-40s %8s ms\n' "voidbox exec -- true (baseline)" "$base"
for a in "${agents[@]}"; do
    [ -s "$tmp/first-$a" ] || continue
    f=$(median <"$tmp/first-$a"); t=$(median <"$tmp/total-$a")
    awk -v a="$a" -v f="$f" -v t="$t" -v b="$base" 'BEGIN {
        printf "%-40s %8s ms  %6.2fx baseline   (whole run %s ms, %.2fx)\n",
               "voidbox run -> first request: " a, f, f / b, t, t / b }'
done
