#!/usr/bin/env bash
# User-mode networking as a user meets it (docs/network.md): real VMs (TCG
# here), real HTTP servers on the host's loopback, the policy in between.
# VB_BUILD (the build directory) is needed for the flooding guest program.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/net_lib.sh"

# The guest shell function `timed CMD...`: runs CMD and prints "rc=N ms=M"
# (M: wall time in the guest, from /proc/uptime).
timed_def() {
    # shellcheck disable=SC2016
    echo 'timed() { t=$(cut -d" " -f1 /proc/uptime); "$@"; r=$?; echo "rc=$r ms=$(awk -v a="$t" -v b="$(cut -d" " -f1 /proc/uptime)" "BEGIN{printf \"%d\", (b-a)*1000}")"; }'
}

# events FILE-OF-THE-LATEST-RUN: the run's events.jsonl path.
latest_events() {
    local d
    d=$(ls -td "$XDG_STATE_HOME"/voidbox/runs/*/ | head -1)
    echo "${d}events.jsonl"
}

test_declared_host_port_reachable() {
    mkdir -p "$T/www"; echo "hello from the host" >"$T/www/index.html"
    serve "$T/www"
    vb exec --network --allow-host-port "$PORT" -- wget -qO- "http://10.0.2.2:$PORT/index.html"
    expect_rc 0
    expect_out "hello from the host"
    [ -z "$err" ] || fail "unexpected stderr: $err"
    expect_clean
}

test_undeclared_host_port_refused_fast_with_hint() {
    mkdir -p "$T/www"; echo secret >"$T/www/index.html"
    serve "$T/www"
    # the server is there, but its port is not declared; nor is any other
    vb exec --network -- sh -c "$(timed_def)
        echo -n 'host '; timed wget -qO- http://10.0.2.2:$PORT/index.html
        echo -n 'other '; timed wget -qO- http://10.0.2.2:1/"
    expect_rc 0
    expect_fast_refusal host
    expect_fast_refusal other
    grep -q secret <<<"$out" && fail "the undeclared port served: $out"
    expect_err_has "network: refused tcp 10.0.2.2:$PORT (host-loopback)"
    expect_err_has "allow it with --allow-host-port $PORT or network_policy.host_ports: [$PORT]"
    # the hint comes once, however many ports are refused
    [ "$(grep -c 'allow it with' "$T/err")" -eq 1 ] || fail "the hint was repeated: $err"
}

test_metadata_refused_in_every_spelling() {
    # dotted, decimal, hex, octal: busybox wget takes them all; each must
    # end at the same refusal, fast
    vb exec --network -- sh -c "$(timed_def)
        for u in 169.254.169.254 2852039166 0xa9fea9fe 0251.0376.0251.0376; do
            echo -n \"\$u \"; timed wget -qO- http://\$u/latest/meta-data/
        done
        echo -n 'alibaba '; timed wget -qO- http://100.100.100.200/"
    expect_rc 0
    for u in 169.254.169.254 2852039166 0xa9fea9fe 0251.0376.0251.0376 alibaba; do
        expect_fast_refusal "$u"
    done
    [ "$(grep -c 'refused tcp 169.254.169.254:80 (cloud-metadata)' "$T/err")" -eq 4 ] ||
        fail "expected 4 refusals of 169.254.169.254: $err"
    expect_err_has "refused tcp 100.100.100.200:80 (cloud-metadata)"
}

test_spec_network_policy_and_events() {
    mkdir -p "$T/www"; echo "via the spec" >"$T/www/index.html"
    serve "$T/www"
    cat >"$T/net.yaml" <<EOF
api_version: v1
kind: pipeline
name: net
sandbox:
  memory_mb: 256
  network: true
  network_policy:
    host_ports: [$PORT]
    deny: [203.0.113.0/24]
pipeline:
  boxes:
    - name: fetch
      run:
        program: sh
        args:
          - -c
          - |
            $(timed_def)
            wget -qO- http://10.0.2.2:$PORT/index.html
            echo -n 'denied '; timed wget -qO- http://203.0.113.5/
            echo -n 'private '; timed wget -qO- http://192.168.77.1/
EOF
    vb run "$T/net.yaml"
    expect_rc 0
    grep -q "via the spec" <<<"$out" || fail "the declared port did not serve: $out"
    expect_fast_refusal denied
    expect_fast_refusal private
    ev=$(latest_events)
    grep '"event":"net.denied"' "$ev" | grep '"dst":"203.0.113.5"' | grep -q '"rule":"deny"' ||
        fail "no net.denied event for the deny rule: $(grep net. "$ev")"
    grep '"event":"net.denied"' "$ev" | grep '"dst":"192.168.77.1"' | grep -q '"rule":"private"' ||
        fail "no net.denied event for the private range"
    grep '"event":"net.summary"' "$ev" | grep -q '"connections":1,' ||
        fail "net.summary does not count the one connection: $(grep net.summary "$ev")"
    grep '"event":"net.summary"' "$ev" | grep -q '"denied":[1-9]' || fail "net.summary counts no refusal"
    # voidbox logs says them in words
    vb logs "$(basename "$(dirname "$ev")")"
    expect_rc 0
    grep -q "net.denied.*tcp 203.0.113.5:80 refused (deny)" "$T/out" ||
        fail "voidbox logs lacks the refusal: $(grep net "$T/out" | head -c 600)"
    grep -q "net.summary.*1 connections" "$T/out" || fail "voidbox logs lacks the summary: $(grep net "$T/out" | head -c 600)"
    # allow: default-deny, only the listed ranges (and DNS)
    sed -i 's|deny: \[203.0.113.0/24\]|allow: [198.51.100.0/24]|' "$T/net.yaml"
    sed -i 's|http://203.0.113.5/|http://93.184.216.34/|' "$T/net.yaml"
    vb run "$T/net.yaml"
    expect_rc 0
    expect_fast_refusal denied
    ev=$(latest_events)
    grep '"event":"net.denied"' "$ev" | grep '"dst":"93.184.216.34"' | grep -q '"rule":"not-allowed"' ||
        fail "no not-allowed refusal: $(grep net. "$ev")"
    # inspect shows the resolved policy
    vb inspect "$T/net.yaml"
    expect_rc 0
    grep -q "allow only \[198.51.100.0/24\], host ports \[$PORT\]" <<<"$out" || fail "inspect: $out"
}

# dns NAME=IP...: a DNS responder on the host's loopback answering those
# names (tests/fake/fake_dns.py); sets DNSPORT; it ends with the test.
dns() {
    local py="$(dirname "$VB")/../tests/fake/fake_dns.py"
    [ -f "$py" ] || py=tests/fake/fake_dns.py # run from the source tree
    python3 -u "$py" "$@" >"$T/dns.port" 2>"$T/dns.log" &
    echo $! >>"$T/srv.pid"
    trap 'kill $(cat "$T/srv.pid") 2>/dev/null' EXIT
    for _ in $(seq 100); do
        DNSPORT=$(head -1 "$T/dns.port")
        [ -n "$DNSPORT" ] && return 0
        sleep 0.1
    done
    fail "the DNS responder did not start: $(cat "$T/dns.log")"
}

test_allow_domains() {
    # allowed.test and shared.test share an address; only the first is allowed
    dns allowed.test=198.51.100.7 shared.test=198.51.100.7 x.wild.test=198.51.100.9 wild.test=198.51.100.10
    # ClientHellos as a TLS client writes them, naming each
    mkdir -p "$T/hello"
    python3 - "$T/hello" <<'EOF'
import ssl, sys
for name in ["allowed.test", "shared.test"]:
    i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ssl.create_default_context().wrap_bio(i, o, server_hostname=name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    open(f"{sys.argv[1]}/{name}.bin", "wb").write(o.read())
EOF
    cat >"$T/d.yaml" <<EOF
api_version: v1
kind: pipeline
name: domains
sandbox:
  memory_mb: 256
  network: true
  network_policy:
    allow_domains: [allowed.test, "*.wild.test"]
pipeline:
  boxes:
    - name: dom
      run:
        program: sh
        args:
          - -c
          - |
            $(timed_def)
            echo -n 'allowed '; nslookup allowed.test | grep -c 198.51.100.7
            echo -n 'wild '; nslookup x.wild.test | grep -c 198.51.100.9
            echo -n 'apex '; timed sh -c 'nslookup wild.test >/dev/null 2>&1'
            echo -n 'other '; timed sh -c 'nslookup shared.test >/dev/null 2>&1'
            echo -n 'unresolved '; timed nc 198.51.100.8 80 </dev/null
            echo -n 'resolved '; timed sh -c 'echo | timeout 3 nc 198.51.100.7 80 >/dev/null'
            for n in allowed.test shared.test; do
                echo -n "tls-\$n "; timed sh -c "timeout 5 nc 198.51.100.7 443 </h/\$n.bin | head -c1 | grep -q ."
            done
EOF
    VOIDBOX_DNS_SERVER="127.0.0.1:$DNSPORT" vb run -v "$T/hello:/h:ro" "$T/d.yaml"
    expect_rc 0
    grep -q '^allowed 1' <<<"$out" || fail "allowed.test did not resolve: $out"
    grep -q '^wild 1' <<<"$out" || fail "x.wild.test did not resolve: $out"
    # "*.wild.test" is strictly below wild.test; shared.test is not allowed: NXDOMAIN, fast
    expect_fast_refusal apex
    expect_fast_refusal other
    ev=$(latest_events)
    grep '"rule":"domain"' "$ev" | grep -q '"dst":"shared.test"' || fail "no domain refusal: $(grep net. "$ev")"
    grep -q "query shared.test" "$T/dns.log" && fail "a name not allowed reached the resolver"
    # an address no allowed name resolved to is refused; one that did is not
    expect_fast_refusal unresolved
    grep '"dst":"198.51.100.8"' "$ev" | grep -q '"rule":"not-allowed"' || fail "198.51.100.8 was not refused"
    grep '"event":"net.denied"' "$ev" | grep '"dst":"198.51.100.7"' | grep -q '"port":80,' &&
        fail "the resolved address was refused"
    # the SNI check: shared.test on allowed.test's address is refused (no
    # domain fronting), fast and in an event, whatever the network is
    expect_fast_refusal tls-shared.test
    grep '"dst":"198.51.100.7"' "$ev" | grep '"port":443' | grep -q '"rule":"sni"' ||
        fail "no sni refusal: $(grep net. "$ev")"
    [ "$(grep -c '"rule":"sni"' "$ev")" -eq 1 ] || fail "allowed.test's ClientHello was refused too"
    # allowed.test's handshake got an answer only where 198.51.100.7:443
    # answers at all (this host's network may have no route there)
    if timeout 4 bash -c 'echo >/dev/tcp/198.51.100.7/443' 2>/dev/null; then
        grep -q '^tls-allowed.test rc=0' <<<"$out" || fail "allowed.test's TLS got no answer: $out"
    else
        echo "  (198.51.100.7:443 unreachable from this host: the allowed handshake's answer not checked)" >&2
    fi
}

test_max_connections_holds() {
    mkdir -p "$T/www"; echo ok >"$T/www/index.html"
    serve "$T/www"
    cat >"$T/cap.yaml" <<EOF
api_version: v1
kind: pipeline
name: cap
sandbox:
  memory_mb: 256
  network: true
  network_policy: {host_ports: [$PORT], max_connections: 2}
pipeline:
  boxes:
    - name: cap
      run:
        program: sh
        args:
          - -c
          - |
            $(timed_def)
            # two connections held open (the server waits for a request)
            sleep 30 | nc 10.0.2.2 $PORT & sleep 30 | nc 10.0.2.2 $PORT &
            sleep 2
            echo -n 'third '; timed wget -qO- http://10.0.2.2:$PORT/index.html
EOF
    vb run "$T/cap.yaml"
    expect_rc 0
    expect_fast_refusal third
    grep '"event":"net.denied"' "$(latest_events)" | grep -q '"rule":"max_connections"' ||
        fail "no max_connections refusal: $(grep net. "$(latest_events)")"
}

test_publish_serves_guest_http() {
    # the guest serves; the host reaches it on the port voidbox prints
    "$VB" exec --publish 0:8080 -- sh -c \
        'mkdir -p /tmp/www && echo "served by the guest" >/tmp/www/index.html &&
         httpd -p 8080 -h /tmp/www && echo up && sleep 120' >"$T/out" 2>"$T/err" </dev/null &
    pid=$!
    for _ in $(seq 600); do
        grep -q '^up' "$T/out" 2>/dev/null && break
        sleep 0.1
    done
    port=$(sed -n 's/.*published 127.0.0.1:\([0-9]*\) -> guest port 8080.*/\1/p' "$T/err")
    [ -n "$port" ] || fail "no published port on stderr: $(cat "$T/err")"
    got=$(curl -sS -m 20 "http://127.0.0.1:$port/index.html") || fail "curl failed"
    [ "$got" = "served by the guest" ] || fail "got '$got'"
    # ^C ends the VM, its network thread and the listener
    kill -INT "$pid"
    wait "$pid"
    rc=$?
    expect_rc 130
    curl -s -m 3 "http://127.0.0.1:$port/" >/dev/null && fail "the listener outlived the VM"
    expect_clean
}

test_no_network_no_interface() {
    # (a warm exec's VM, restored from a snapshot, has the snapshot's eth0,
    # but down, without an address, and wired to nothing: docs/snapshots.md)
    vb exec -- sh -c 'ip -4 addr | grep inet | grep -v " 127\."; ip -4 route; ip link | grep -c ",UP"'
    expect_rc 0
    grep -q inet <<<"$out" && fail "a VM without network has an address: $out"
    grep -q default <<<"$out" && fail "a VM without network has a route: $out"
    [ "$(tail -1 <<<"$out")" = 1 ] || fail "an interface other than lo is up: $out"
    # and with it: eth0 configured, DNS set
    vb exec --network -- sh -c 'ip -4 addr show eth0; ip route; cat /etc/resolv.conf'
    expect_rc 0
    grep -q "inet 10.0.2.15/24" <<<"$out" || fail "no address: $out"
    grep -q "default via 10.0.2.2" <<<"$out" || fail "no route: $out"
    grep -q "nameserver 10.0.2.3" <<<"$out" || fail "no resolver: $out"
}

test_malformed_flood_contained() {
    : "${VB_BUILD:?VB_BUILD must point to the build directory}"
    [ -x "$VB_BUILD/tests/net_flood" ] || fail "no $VB_BUILD/tests/net_flood"
    mkdir -p "$T/www"; echo "still here" >"$T/www/index.html"
    serve "$T/www"
    # another VM fetches all along: its network is its own
    "$VB" exec --allow-host-port "$PORT" -- sh -c \
        "i=0; while [ \$i -lt 8 ]; do wget -qO- http://10.0.2.2:$PORT/index.html || exit 1; sleep 0.5; i=\$((i+1)); done" \
        >"$T/other.out" 2>"$T/other.err" </dev/null &
    other=$!
    # 3 s of garbage as root (fragments, lying lengths, every protocol and
    # destination); then the same VM's network still works
    vb exec --user root --allow-host-port "$PORT" -v "$VB_BUILD/tests:/hostile:ro" -- sh -c "$(timed_def)
        /hostile/net_flood 3 && wget -qO- http://10.0.2.2:$PORT/index.html
        /hostile/net_flood 2 syn && echo -n 'capped '; timed wget -qO- http://10.0.2.2:$PORT/index.html"
    expect_rc 0
    grep -q "^sent [1-9]" <<<"$out" || fail "the flood sent nothing: $out"
    grep -q "still here" <<<"$out" || fail "the network did not survive the flood: $out"
    # a flood of SYNs fills the VM's own connection cap: refused fast, no hang
    expect_fast_refusal capped
    grep -qE '\((max_connections|connections_per_sec)\)' "$T/err" || fail "no cap refusal: $(tail -5 "$T/err")"
    # refusals are reported rate-limited (a burst of 20, then 5 a second)
    n=$(grep -c 'network: refused' "$T/err")
    [ "$n" -le 60 ] || fail "$n refusal lines: not rate limited"
    grep -q 'more not shown' "$T/err" || fail "the suppressed refusals are not counted"
    wait "$other" || fail "the other VM's fetches failed: $(cat "$T/other.err")"
    [ "$(grep -c 'still here' "$T/other.out")" -eq 8 ] || fail "the other VM got: $(cat "$T/other.out")"
    expect_clean
}

test_learn_mode_drafts_a_policy_that_runs() {
    mkdir -p "$T/www"; echo "learned" >"$T/www/index.html"
    serve "$T/www"
    dns allowed.test=198.51.100.7 other.test=198.51.100.7
    export VOIDBOX_DNS_SERVER="127.0.0.1:$DNSPORT"
    # no policy declares the port or the name: learn mode lets them through
    # and records them (the guest's DNS is answered by VoidBox to learn names)
    cat >"$T/l.yaml" <<EOF
api_version: v1
kind: pipeline
name: learn
sandbox:
  memory_mb: 256
  network: true
pipeline:
  boxes:
    - name: fetch
      run:
        program: sh
        args:
          - -c
          - |
            wget -qO- http://10.0.2.2:$PORT/index.html
            echo | timeout 3 nc allowed.test 80 >/dev/null
            wget -qO- http://169.254.169.254/ || true
EOF
    vb run --net-learn "$T/l.yaml"
    expect_rc 0
    grep -q learned <<<"$out" || fail "learn mode refused the undeclared port: $err"
    expect_err_has "stage fetch: learned network policy"
    draft=$(ls "$XDG_STATE_HOME"/voidbox/runs/*/stages/fetch/network_policy.yaml)
    grep -q "host_ports: \[$PORT\]" "$draft" || fail "draft: $(cat "$draft")"
    grep -q '"allowed.test"  # tcp/80' "$draft" || fail "draft: $(cat "$draft")"
    # metadata stays refused in learn mode, and the draft says so in a comment
    grep -q '"rule":"cloud-metadata"' "$(latest_events)" || fail "metadata was not refused"
    grep -q "# refused whatever the policy: 169.254.169.254" "$draft" || fail "draft: $(cat "$draft")"
    # pasted under sandbox:, the same stage runs without learn mode...
    awk -v d="$draft" '{print} /^  network: true$/ {while ((getline l < d) > 0) print l}' \
        "$T/l.yaml" >"$T/p.yaml"
    vb run "$T/p.yaml"
    expect_rc 0
    grep -q learned <<<"$out" || fail "the pasted policy did not let the stage run: $err"
    grep '"event":"net.denied"' "$(latest_events)" | grep -q '"dst":"198.51.100.7"' &&
        fail "the learned name's address was refused"
    # ...and nothing else gets through: another port, another name
    sed -i "s|wget -qO- http://169.254.169.254/|wget -qO- http://10.0.2.2:1/ \|\| nslookup other.test|" "$T/p.yaml"
    vb run "$T/p.yaml"
    expect_rc 0
    ev=$(latest_events)
    grep '"event":"net.denied"' "$ev" | grep -q '"port":1,' || fail "an unlearned port was let through"
    grep '"event":"net.denied"' "$ev" | grep '"dst":"other.test"' | grep -q '"rule":"domain"' ||
        fail "an unlearned name was resolved: $(grep net. "$ev")"
}

test_network_takes_one_mount_slot() {
    # microvm's virtio-mmio transports are few: the network device takes
    # one, so 4 mounts fit beside it, and a fifth is refused clearly
    mkdir -p "$T/m"; echo hi >"$T/m/f"
    vb exec --network -v "$T/m:/a" -v "$T/m:/b" -v "$T/m:/c" -v "$T/m:/d" -- \
        sh -c 'cat /a/f /b/f /c/f /d/f; ls /sys/class/net | grep -c eth0'
    expect_rc 0
    expect_out $'hi\nhi\nhi\nhi\n1'
    vb exec --network -v "$T/m:/a" -v "$T/m:/b" -v "$T/m:/c" -v "$T/m:/d" -v "$T/m:/e" -- true
    expect_rc 2
    expect_err_has "at most 4 mounts per VM on the qemu backend when the VM has a network"
    expect_clean
}

test_ps_shows_live_traffic() {
    mkdir -p "$T/www"; head -c 100000 /dev/urandom >"$T/www/blob"
    serve "$T/www"
    "$VB" exec --allow-host-port "$PORT" -- sh -c \
        "wget -qO /dev/null http://10.0.2.2:$PORT/blob; wget -qO- http://169.254.169.254/ 2>/dev/null; echo done; sleep 30" \
        >"$T/out" 2>"$T/err" </dev/null &
    pid=$!
    for _ in $(seq 600); do grep -q done "$T/out" 2>/dev/null && break; sleep 0.1; done
    sleep 2 # the counters are written once a second
    vb ps -o json
    expect_rc 0
    python3 -c '
import json, sys
vms = [v for v in json.loads(sys.stdin.read()) if v.get("vm_id")]
assert len(vms) == 1, vms
net = vms[0]["net"]
assert net["bytes_in"] > 100000 and net["connections"] == 1 and net["denied"] >= 1, net
' <<<"$out" || fail "ps: $out"
    vb ps
    grep -qE "net [0-9.]+ [KMG]?i?B out, [0-9.]+ [KMG]?i?B in, 1 connection, [1-9][0-9]* refused" <<<"$out" ||
        fail "ps: $out"
    kill -INT "$pid"
    wait "$pid"
    expect_clean
}

test_exec_allow_domain() {
    dns allowed.test=198.51.100.7 other.test=198.51.100.8
    VOIDBOX_DNS_SERVER="127.0.0.1:$DNSPORT" vb exec --allow-domain allowed.test -- sh -c \
        'nslookup allowed.test | grep -c 198.51.100.7; nslookup other.test >/dev/null 2>&1; echo other=$?
         nc 198.51.100.8 80 </dev/null; echo addr=$?'
    expect_rc 0
    expect_out $'1\nother=1\naddr=1'
    expect_err_has "network: refused dns other.test:53 (domain)"
    expect_err_has "network: refused tcp 198.51.100.8:80 (not-allowed)"
    grep -q "query other.test" "$T/dns.log" && fail "a name not allowed reached the resolver"
    vb exec --allow-domain '*' -- true
    expect_rc 2
    expect_err_has "--allow-domain *: expected a host name or *.name"
}

run_tests
