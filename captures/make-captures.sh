#!/usr/bin/env bash
# make-captures.sh — regenerate every capture in this directory with REAL tools
# (nmap, curl, python3 http.server, tcpdump) running in throw-away network
# namespaces joined by a private bridge. Only documentation addresses are used
# (198.51.100.0/24, 203.0.113.0/24, 192.0.2.0/24, 2001:db8::/32); no namespace
# has a route anywhere else, so no packet can leave the machine.
#
# Why it exists: flowsentry's tests and README demo need small, honest captures
# of real scanner / client behaviour; this script is how they were made and how
# anyone can remake them.
#
# Usage (as root, from anywhere):   sudo captures/make-captures.sh
# Takes about 5 minutes (the demo beacon runs in real time: 20 requests, 12 s apart).
# FSCAP_SKIP_DEMO=1 skips demo.pcap (about 1 minute then).
# Outputs (in this directory): nmap_*.pcap, curl_sessions.pcap, periodic_client.pcap,
# demo.pcap, their lines in SHA256SUMS (other lines are kept), capture-stats.txt.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [[ $(id -u) -ne 0 ]]; then
    echo "make-captures.sh: must run as root (network namespaces, raw sockets)" >&2
    exit 1
fi
for tool in ip nmap tcpdump curl tshark; do
    command -v "$tool" >/dev/null || { echo "make-captures.sh: missing tool: $tool" >&2; exit 1; }
done
PYTHON=$(command -v /usr/bin/python3 || command -v python3)

# ---- topology ---------------------------------------------------------------
# Three hosts, each in its own namespace with one veth "eth0", all plugged into
# bridge br0 inside a fourth namespace (the "wire"). Captures are taken on the
# server's eth0, so they see every packet to or from the server.
NS_LAN=fscap-lan
NS_SCAN=fscap-scan     # scanner / client
NS_SRV=fscap-srv       # server
NS_BEACON=fscap-beacon # periodic (beacon-like) client
ALL_NS=("$NS_SCAN" "$NS_SRV" "$NS_BEACON" "$NS_LAN")

SCAN4=198.51.100.10
SCAN6=2001:db8:1::10
SCAN_MAC=02:00:00:00:00:10
SRV4=203.0.113.20
SRV6=2001:db8:1::20
SRV_MAC=02:00:00:00:00:20
BEACON4=192.0.2.30
BEACON6=2001:db8:1::30
BEACON_MAC=02:00:00:00:00:30

# The kernel sends MLD reports (from :: to ff02::16) for the solicited-node
# groups of the IPv6 addresses; they are not part of any experiment and carry
# no documentation address, so the captures leave IPv6 multicast out. Nothing
# else is filtered.
CAPTURE_FILTER='not ip6 multicast'

# Readiness deadline (seconds) for servers and tcpdump.
READY_TIMEOUT=10

WORK=$(mktemp -d /tmp/fscap.XXXXXX)
BG_PIDS=()

log() { printf '[make-captures %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

delete_namespaces() {
    local ns
    for ns in "${ALL_NS[@]}"; do
        if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
            ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
            ip netns del "$ns" 2>/dev/null || true
        fi
    done
}

cleanup() {
    local status=$?
    local pid
    for pid in "${BG_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${BG_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    delete_namespaces
    rm -rf "$WORK"
    rm -f "$HERE"/*.pcap.partial
    if [[ $status -ne 0 ]]; then
        log "failed (exit $status); namespaces removed"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_ns() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}

# running PID: true while PID runs (an exited but not yet reaped child is a
# zombie, which `kill -0` would still report as present).
running() {
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ $state != Z* ]]
}

# wait_until DESCRIPTION COMMAND... : poll COMMAND until it succeeds or the deadline passes.
wait_until() {
    local what=$1
    shift
    local deadline=$((SECONDS + READY_TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "timed out after ${READY_TIMEOUT}s waiting for $what"
        sleep 0.05
    done
}

# ---- network setup ------------------------------------------------------------
add_host() { # NS MAC ADDR4 ADDR6 PORT_NAME
    local ns=$1 mac=$2 a4=$3 a6=$4 port=$5
    ip netns add "$ns"
    in_ns "$ns" ip link set lo up
    in_ns "$ns" sysctl -qw net.ipv6.conf.default.accept_ra=0 net.ipv6.conf.default.router_solicitations=0
    ip -n "$ns" link add eth0 type veth peer name "$port" netns "$NS_LAN"
    # No link-local address: the captures must hold documentation addresses only.
    ip -n "$ns" link set eth0 address "$mac" addrgenmode none
    in_ns "$ns" sysctl -qw net.ipv6.conf.eth0.accept_ra=0 net.ipv6.conf.eth0.router_solicitations=0 \
        net.ipv6.conf.eth0.accept_dad=0
    ip -n "$ns" addr add "$a4/32" dev eth0
    ip -n "$ns" addr add "$a6/64" dev eth0 nodad
    ip -n "$NS_LAN" link set "$port" master br0 up
    ip -n "$ns" link set eth0 up
}

# Static (permanent) neighbour entries and on-link host routes: no ARP or
# neighbour discovery on the wire, and no default route anywhere.
link_hosts() { # NS then triples of PEER_MAC PEER4 PEER6
    local ns=$1
    shift
    while (($#)); do
        local mac=$1 a4=$2 a6=$3
        shift 3
        ip -n "$ns" route add "$a4/32" dev eth0 scope link
        ip -n "$ns" neigh replace "$a4" lladdr "$mac" dev eth0 nud permanent
        ip -n "$ns" -6 neigh replace "$a6" lladdr "$mac" dev eth0 nud permanent
    done
}

setup_network() {
    log "creating namespaces ${ALL_NS[*]}"
    ip netns add "$NS_LAN"
    in_ns "$NS_LAN" ip link set lo up
    in_ns "$NS_LAN" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$NS_LAN" link add br0 type bridge mcast_snooping 0 stp_state 0
    ip -n "$NS_LAN" link set br0 up

    add_host "$NS_SCAN" "$SCAN_MAC" "$SCAN4" "$SCAN6" p-scan
    add_host "$NS_SRV" "$SRV_MAC" "$SRV4" "$SRV6" p-srv
    add_host "$NS_BEACON" "$BEACON_MAC" "$BEACON4" "$BEACON6" p-beacon

    link_hosts "$NS_SCAN" "$SRV_MAC" "$SRV4" "$SRV6" "$BEACON_MAC" "$BEACON4" "$BEACON6"
    link_hosts "$NS_SRV" "$SCAN_MAC" "$SCAN4" "$SCAN6" "$BEACON_MAC" "$BEACON4" "$BEACON6"
    link_hosts "$NS_BEACON" "$SCAN_MAC" "$SCAN4" "$SCAN6" "$SRV_MAC" "$SRV4" "$SRV6"

    # The kernel rate-limits ICMP errors by default (per destination, and a
    # host-wide budget of 1000/s with a burst of 50); a UDP scan needs every
    # port-unreachable answer.
    in_ns "$NS_SRV" sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0 \
        net.ipv4.icmp_msgs_per_sec=1000000 net.ipv4.icmp_msgs_burst=1000000

    wait_until "IPv4 reachability scanner->server" in_ns "$NS_SCAN" \
        "$PYTHON" -c "import socket; s=socket.socket(); s.settimeout(0.2); s.connect_ex(('$SRV4', 9))"
}

# ---- services in the server namespace ----------------------------------------
make_webroot() {
    mkdir -p "$WORK/www"
    # Deterministic content of exactly the named size.
    local size
    for size in 1000 10000 100000; do
        "$PYTHON" -c "import sys; sys.stdout.buffer.write((b'flowsentry-capture-payload\n' * ($size // 27 + 1))[:$size])" \
            >"$WORK/www/size_$size.bin"
        [[ $(stat -c %s "$WORK/www/size_$size.bin") -eq $size ]] || die "webroot file size_$size.bin has wrong size"
    done
    printf 'flowsentry test server\n' >"$WORK/www/index.html"
}

cat >"$WORK/udp_echo.py" <<'PY'
"""Dual-stack UDP echo on the ports given as arguments (open UDP ports for nmap -sU)."""
import selectors
import socket
import sys

sel = selectors.DefaultSelector()
for port in map(int, sys.argv[1:]):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    sel.register(s, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        data, peer = key.fileobj.recvfrom(65535)
        key.fileobj.sendto(data or b"\n", peer)
PY

start_services() {
    make_webroot
    local port
    for port in 22 80 443 8080; do
        ip netns exec "$NS_SRV" "$PYTHON" -m http.server --bind :: --directory "$WORK/www" "$port" \
            >"$WORK/http-$port.log" 2>&1 &
        BG_PIDS+=($!)
    done
    ip netns exec "$NS_SRV" "$PYTHON" "$WORK/udp_echo.py" 7 53 >"$WORK/udp.log" 2>&1 &
    BG_PIDS+=($!)
    for port in 22 80 443 8080; do
        wait_until "http.server on tcp/$port" bash -c \
            "ip netns exec $NS_SRV ss -Hltn 'sport = :$port' | grep -q LISTEN"
    done
    for port in 7 53; do
        wait_until "udp echo on udp/$port" bash -c \
            "ip netns exec $NS_SRV ss -Hlun 'sport = :$port' | grep -q ."
    done
    log "server: http.server on tcp/22,80,443,8080; udp echo on udp/7,53"
}

# ---- capture control ------------------------------------------------------------
CAP_PID=
CAP_OUT=
start_capture() { # FILE SNAPLEN
    CAP_OUT=$1
    local snap=$2
    local err="$WORK/tcpdump-$(basename "$CAP_OUT").err"
    rm -f "$HERE/$CAP_OUT.partial"
    : >"$err"
    # Started with `ip netns exec` directly (not through a shell function) so
    # that $! is tcpdump itself. A background job of a non-interactive shell starts with SIGINT ignored;
    # restore the default so tcpdump's own SIGINT handler (flush and exit) runs.
    ip netns exec "$NS_SRV" env --default-signal=INT tcpdump -i eth0 -n -U --immediate-mode -Z root -s "$snap" -w "$HERE/$CAP_OUT.partial" \
        "$CAPTURE_FILTER" 2>"$err" &
    CAP_PID=$!
    BG_PIDS+=("$CAP_PID")
    local deadline=$((SECONDS + READY_TIMEOUT))
    until grep -q "listening on" "$err"; do
        running "$CAP_PID" || die "tcpdump for $CAP_OUT exited: $(cat "$err")"
        ((SECONDS < deadline)) || die "tcpdump for $CAP_OUT not listening after ${READY_TIMEOUT}s"
        sleep 0.05
    done
    log "capturing $CAP_OUT (snaplen $snap)"
}

stop_capture() {
    # Let the last in-flight packets (final ACKs, RSTs) cross the wire: a short
    # settle for traffic, not a readiness guess.
    sleep 0.5
    kill -INT "$CAP_PID"
    local deadline=$((SECONDS + READY_TIMEOUT))
    while running "$CAP_PID"; do
        ((SECONDS < deadline)) || die "tcpdump for $CAP_OUT ignored SIGINT for ${READY_TIMEOUT}s"
        sleep 0.05
    done
    wait "$CAP_PID" || true
    mv "$HERE/$CAP_OUT.partial" "$HERE/$CAP_OUT"
    log "wrote $CAP_OUT ($(stat -c %s "$HERE/$CAP_OUT") bytes)"
}

# Nmap with raw IP sends (the kernel supplies the static neighbour entry, so
# nmap does no ARP/ND of its own) and no host discovery / DNS.
scan() { in_ns "$NS_SCAN" nmap -n -Pn --send-ip "$@" >>"$WORK/nmap.log" 2>&1; }

fetch() { # NS URL EXPECTED_BYTES
    local got
    got=$(in_ns "$1" curl -sS --max-time 10 -o /dev/null -w '%{size_download}' "$2")
    [[ $got -eq $3 ]] || die "curl $2 downloaded $got bytes, expected $3"
}

# periodic NS URL PERIOD COUNT: one GET every PERIOD seconds on an absolute
# schedule (start times keep the same sub-second phase, so whole-second gaps
# are exactly PERIOD).
periodic() {
    local ns=$1 url=$2 period=$3 count=$4 i
    local t0
    t0=$(( $(date +%s) + 1 ))
    for ((i = 0; i < count; i++)); do
        local target=$((t0 + i * period))
        local wait_s
        wait_s=$("$PYTHON" -c "import time; print(max(0.0, $target + 0.25 - time.time()))")
        sleep "$wait_s"
        in_ns "$ns" curl -sS --max-time 5 -o /dev/null "$url" || log "periodic request $i to $url failed"
    done
}

# ---- the captures ------------------------------------------------------------
capture_syn_v4() {
    start_capture nmap_syn_v4.pcap 256
    scan -sS -p1-200 -T4 --max-retries 1 "$SRV4"
    stop_capture
}

capture_udp_v4() {
    start_capture nmap_udp_v4.pcap 256
    scan -sU -p1-100 -T5 --max-retries 0 "$SRV4"
    stop_capture
}

capture_syn_v6() {
    start_capture nmap_syn_v6.pcap 256
    scan -6 -sS -p1-200 -T4 --max-retries 1 "$SRV6"
    stop_capture
}

capture_fin_null_xmas_v4() {
    start_capture nmap_fin_null_xmas_v4.pcap 256
    scan -sF -p1-100 -T4 --max-retries 1 "$SRV4"
    scan -sN -p1-100 -T4 --max-retries 1 "$SRV4"
    scan -sX -p1-100 -T4 --max-retries 1 "$SRV4"
    stop_capture
}

capture_curl_sessions() {
    start_capture curl_sessions.pcap 0
    fetch "$NS_SCAN" "http://$SRV4/size_1000.bin" 1000
    fetch "$NS_SCAN" "http://$SRV4:8080/size_100000.bin" 100000
    fetch "$NS_SCAN" "http://$SRV4/size_10000.bin" 10000
    fetch "$NS_SCAN" "http://[$SRV6]/size_1000.bin" 1000
    fetch "$NS_SCAN" "http://[$SRV6]:8080/size_100000.bin" 100000
    fetch "$NS_BEACON" "http://$SRV4:443/size_10000.bin" 10000
    stop_capture
}

capture_periodic_client() {
    start_capture periodic_client.pcap 256
    periodic "$NS_BEACON" "http://$SRV4:8080/size_1000.bin" 2 20
    stop_capture
}

# Sentinel's beacon rule bins by the clock hour: keep the ~4 minute beacon
# inside one hour so the README demo alerts whenever it is regenerated.
avoid_hour_boundary() {
    local into_hour=$(( $(date -u +%s) % 3600 ))
    if ((into_hour > 3600 - 300)); then
        local wait_s=$((3600 - into_hour + 2))
        log "waiting ${wait_s}s for the next clock hour so the demo beacon fits in one hour bin"
        sleep "$wait_s"
    fi
}

capture_demo() {
    avoid_hour_boundary
    start_capture demo.pcap 256
    periodic "$NS_BEACON" "http://$SRV4/size_1000.bin" 12 20 &
    local beacon_pid=$!
    BG_PIDS+=("$beacon_pid")
    # Wait until the beacon has made two requests (the server logs each one).
    local deadline=$((SECONDS + 40))
    until (($(grep -c '"GET /size_1000.bin' "$WORK/http-80.log" || true) >= 2)); do
        ((SECONDS < deadline)) || die "demo beacon made no requests"
        sleep 0.2
    done
    scan -sS -p1-200 -T4 --max-retries 1 "$SRV4"
    fetch "$NS_SCAN" "http://$SRV4:8080/size_10000.bin" 10000
    fetch "$NS_SCAN" "http://[$SRV6]:8080/size_1000.bin" 1000
    fetch "$NS_SCAN" "http://$SRV4/size_100000.bin" 100000
    wait "$beacon_pid"
    stop_capture
}

# ---- verification --------------------------------------------------------------
# Every IP address in every capture must be a documentation address.
check_addresses() {
    local f bad
    for f in "$@"; do
        bad=$(tshark -r "$HERE/$f" -T fields -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst \
            -e arp.src.proto_ipv4 -e arp.dst.proto_ipv4 2>/dev/null |
            tr '\t,' '\n\n' | sed '/^$/d' | sort -u |
            grep -Ev '^(192\.0\.2|198\.51\.100|203\.0\.113)\.[0-9]+$|^2001:db8:' || true)
        [[ -z $bad ]] || die "$f holds non-documentation addresses: $bad"
    done
    log "address check passed: only documentation addresses in $*"
}

main() {
    local start=$SECONDS
    delete_namespaces # leftovers from an earlier run killed with SIGKILL
    setup_network
    start_services
    capture_syn_v4
    capture_udp_v4
    capture_syn_v6
    capture_fin_null_xmas_v4
    capture_curl_sessions
    capture_periodic_client
    local files=(nmap_syn_v4.pcap nmap_udp_v4.pcap nmap_syn_v6.pcap nmap_fin_null_xmas_v4.pcap
        curl_sessions.pcap periodic_client.pcap)
    if [[ ${FSCAP_SKIP_DEMO:-0} == 1 ]]; then
        log "FSCAP_SKIP_DEMO=1: keeping the existing demo.pcap"
    else
        capture_demo
    fi
    [[ -f $HERE/demo.pcap ]] && files+=(demo.pcap)
    check_addresses "${files[@]}"
    # Replace only this script's lines: make-long-sessions.sh keeps its own there.
    (cd "$HERE" && {
        grep -v -F -f <(printf '  %s\n' "${files[@]}") SHA256SUMS 2>/dev/null || true
        sha256sum "${files[@]}"
    } >SHA256SUMS.partial && mv SHA256SUMS.partial SHA256SUMS)
    "$HERE/capture-stats.sh" "${files[@]}" >"$HERE/capture-stats.txt"
    log "done in $((SECONDS - start))s"
}

main
