# Network test helpers (sourced after lib.sh) shared by test_network.sh,
# test_snapshot_net.sh and test_snapshot_create_net.sh.

# serve DIR: an HTTP server for DIR on the host's 127.0.0.1 (a free port);
# sets PORT; the server ends with the test.
serve() {
    mkdir -p "$1"
    python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$1" >"$T/srv.log" 2>&1 &
    echo $! >"$T/srv.pid"
    trap 'kill $(cat "$T/srv.pid") 2>/dev/null' EXIT
    for _ in $(seq 100); do
        PORT=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$T/srv.log")
        [ -n "$PORT" ] && return 0
        sleep 0.1
    done
    fail "the host's HTTP server did not start: $(cat "$T/srv.log")"
}

# expect_fast_refusal LABEL: the output line "LABEL rc=N ms=M" says the
# command failed within a second (an RST, not a timeout).
expect_fast_refusal() {
    local line rc ms
    line=$(grep -- "^$1 rc=" <<<"$out") || fail "no result for $1 in: $out"
    rc=$(sed 's/.*rc=\([0-9]*\).*/\1/' <<<"$line")
    ms=$(sed 's/.*ms=\([0-9]*\).*/\1/' <<<"$line")
    [ "$rc" -ne 0 ] || fail "$1 was not refused ($line)"
    [ "$ms" -lt 1000 ] || fail "$1 took $ms ms to fail: a refusal must be fast"
}
