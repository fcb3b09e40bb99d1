#!/usr/bin/env bash
# make-long-sessions.sh — record the long-session captures with REAL tools: beacons
# that live inside one connection (persistent TCP C2, HTTP/1.1 keep-alive polling, a UDP
# beacon on one fixed source port), a heavily jittered HTTP beacon (curl), and benign
# long sessions (kernel TCP keepalive, an interactive session, a shaped bulk download,
# a constant-bitrate RTP-like stream, an openssl TLS session).
#
# Why it exists: detecting beacons inside long sessions, and not flagging the quiet
# long sessions every network has, needs real captures of both whose ground truth is
# known. The schedule is drawn from a seed (FSLONG_SEED, default 20261122) by
# long_sessions.py, printed, and saved as long-sessions.json; rerunning with the same
# seed replays the same schedule.
#
# Each scenario runs in its own pair of network namespaces joined by one veth pair
# (client 198.51.100.x, server 203.0.113.x; documentation addresses only, no route
# anywhere else). All nine run at the same time, so the script takes about as long as
# the longest scenario: about 7 minutes in all, plus up to 7 minutes of waiting when the clock
# hour is about to turn (see avoid_hour_boundary).
#
# Usage (as root):  captures/make-long-sessions.sh
# Needs: ip, tc, ethtool, tcpdump, tshark, curl, openssl, python3.
# Outputs (in this directory): beacon_*.pcap, benign_*.pcap, long-sessions.json,
# long-sessions-stats.txt, and their lines in SHA256SUMS (other lines are kept).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ME=make-long-sessions.sh

if [[ $(id -u) -ne 0 ]]; then
    echo "$ME: must run as root (network namespaces, packet capture)" >&2
    exit 1
fi
for tool in ip tc ethtool tcpdump tshark curl openssl ss; do
    command -v "$tool" >/dev/null || { echo "$ME: missing tool: $tool" >&2; exit 1; }
done
PYTHON=$(command -v /usr/bin/python3 || command -v python3)
HELPER="$HERE/long_sessions.py"
SEED=${FSLONG_SEED:-20261122}
[[ $SEED =~ ^[0-9]+$ ]] || { echo "$ME: FSLONG_SEED must be a non-negative integer, got '$SEED'" >&2; exit 1; }

# Readiness deadline (seconds) for servers and tcpdump; overall deadline for one client.
READY_TIMEOUT=10
CLIENT_TIMEOUT=600
# Longest scenario (s) plus margin: the run must fit inside one clock hour.
RUN_SECONDS=420

# Scenario table: TAG NAME CLIENT SERVER. The tag names the namespaces
# (fsl<PID>-<TAG>-c / -s), so runs never collide with each other or with tests.
SCENARIOS=(
    "c2   beacon_c2_tcp_persistent  198.51.100.41 203.0.113.41"
    "poll beacon_http_keepalive     198.51.100.42 203.0.113.42"
    "udp  beacon_udp_fixed_port     198.51.100.43 203.0.113.43"
    "jit  beacon_http_jittered      198.51.100.44 203.0.113.44"
    "idle benign_tcp_keepalive_idle 198.51.100.51 203.0.113.51"
    "tty  benign_interactive        198.51.100.52 203.0.113.52"
    "bulk benign_bulk_download      198.51.100.53 203.0.113.53"
    "rtp  benign_video_stream       198.51.100.54 203.0.113.54"
    "tls  benign_tls_session        198.51.100.55 203.0.113.55"
)
NS_PREFIX="fsl$$-"

WORK=$(mktemp -d /tmp/fslong.XXXXXX)
PLAN="$WORK/plan.json"
BG_PIDS=()
declare -A CAP_PID SERVER_PID CLIENT_PID SNAPLEN

log() { printf '[%s %s] %s\n' "${ME%.sh}" "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Namespaces of this run, and of earlier runs whose script process is gone (killed
# with SIGKILL before its trap could run).
our_namespaces() {
    ip netns list | awk '{print $1}' | while read -r ns; do
        if [[ $ns == "$NS_PREFIX"* ]]; then
            echo "$ns"
        elif [[ $ns =~ ^fsl([0-9]+)- ]] && ! kill -0 "${BASH_REMATCH[1]}" 2>/dev/null; then
            echo "$ns"
        fi
    done
}

delete_namespaces() {
    local ns
    for ns in $(our_namespaces); do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
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

# running PID: true while PID runs (a zombie does not count).
running() {
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ $state != Z* ]]
}

wait_until() { # DESCRIPTION COMMAND...
    local what=$1
    shift
    local deadline=$((SECONDS + READY_TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "timed out after ${READY_TIMEOUT}s waiting for $what"
        sleep 0.05
    done
}

# ---- network: one namespace pair per scenario ---------------------------------------
# Client namespace <tag>-c and server namespace <tag>-s, joined by a veth pair named
# eth0 on both sides (the names live only inside the namespaces). IPv6 is disabled (no
# router solicitations or MLD), neighbours are static (no ARP), offloads are off so
# the wire carries MTU-sized frames with real checksums, as on a physical link.
make_pair() { # TAG INDEX CLIENT SERVER
    local tag=$1 idx=$2 client=$3 server=$4
    local nc="${NS_PREFIX}${tag}-c" nsv="${NS_PREFIX}${tag}-s"
    local mac_c mac_s
    mac_c=$(printf '02:00:00:00:%02x:01' "$idx")
    mac_s=$(printf '02:00:00:00:%02x:02' "$idx")
    local ns
    for ns in "$nc" "$nsv"; do
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    done
    ip -n "$nc" link add eth0 type veth peer name eth0 netns "$nsv"
    ip -n "$nc" link set eth0 address "$mac_c"
    ip -n "$nsv" link set eth0 address "$mac_s"
    ip -n "$nc" addr add "$client/32" dev eth0
    ip -n "$nsv" addr add "$server/32" dev eth0
    for ns in "$nc" "$nsv"; do
        ip netns exec "$ns" ethtool -K eth0 tx off tso off gso off gro off >/dev/null 2>&1 ||
            die "ethtool could not turn offloads off in $ns"
        ip -n "$ns" link set eth0 up
    done
    ip -n "$nc" route add "$server/32" dev eth0 scope link
    ip -n "$nsv" route add "$client/32" dev eth0 scope link
    ip -n "$nc" neigh replace "$server" lladdr "$mac_s" dev eth0 nud permanent
    ip -n "$nsv" neigh replace "$client" lladdr "$mac_c" dev eth0 nud permanent
}

# ---- capture control ------------------------------------------------------------------
# tcpdump on the client's eth0: what a sensor at the client's edge sees.
start_capture() { # TAG NAME SNAPLEN
    local tag=$1 name=$2 snap=$3
    local err="$WORK/tcpdump-$name.err"
    : >"$err"
    # Started with `ip netns exec` directly so that $! is tcpdump; SIGINT restored to
    # its default (a background job starts with it ignored) so tcpdump flushes on it.
    ip netns exec "${NS_PREFIX}${tag}-c" env --default-signal=INT tcpdump -i eth0 -n -U --immediate-mode -Z root \
        -s "$snap" -w "$HERE/$name.pcap.partial" 2>"$err" &
    CAP_PID[$name]=$!
    BG_PIDS+=("$!")
    local deadline=$((SECONDS + READY_TIMEOUT))
    until grep -q "listening on" "$err"; do
        running "${CAP_PID[$name]}" || die "tcpdump for $name exited: $(cat "$err")"
        ((SECONDS < deadline)) || die "tcpdump for $name not listening after ${READY_TIMEOUT}s"
        sleep 0.05
    done
}

stop_capture() { # NAME
    local name=$1 pid=${CAP_PID[$1]}
    kill -INT "$pid"
    local deadline=$((SECONDS + READY_TIMEOUT))
    while running "$pid"; do
        ((SECONDS < deadline)) || die "tcpdump for $name ignored SIGINT for ${READY_TIMEOUT}s"
        sleep 0.05
    done
    wait "$pid" || true
    mv "$HERE/$name.pcap.partial" "$HERE/$name.pcap"
    log "wrote $name.pcap ($(stat -c %s "$HERE/$name.pcap") bytes)"
}

# ---- servers --------------------------------------------------------------------------
in_server() { local tag=$1; shift; ip netns exec "${NS_PREFIX}${tag}-s" "$@"; }
in_client() { local tag=$1; shift; ip netns exec "${NS_PREFIX}${tag}-c" "$@"; }

start_server() { # TAG NAME COMMAND...
    local tag=$1 name=$2
    shift 2
    in_server "$tag" "$@" >"$WORK/server-$name.log" 2>&1 &
    SERVER_PID[$name]=$!
    BG_PIDS+=("$!")
}

wait_listening() { # TAG tcp|udp PORT
    wait_until "$3/$2 listening in ${NS_PREFIX}$1-s" bash -c \
        "ip netns exec ${NS_PREFIX}$1-s ss -Hl$([[ $2 == tcp ]] && echo t || echo u)n 'sport = :$3' | grep -q ."
}

make_content() {
    mkdir -p "$WORK/www/updates" "$WORK/bulk"
    "$PYTHON" - "$WORK" <<'PY'
import sys
work = sys.argv[1]
def write(path, size):
    data = (b"flowsentry-long-session-content\n" * (size // 32 + 1))[:size]
    with open(path, "wb") as f:
        f.write(data)
write(f"{work}/www/updates/check", 700)
write(f"{work}/bulk/bulk.bin", 5600000)
PY
    # A fresh self-signed certificate for the TLS server (never leaves $WORK).
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj "/CN=tls.example.net" -keyout "$WORK/tls.key" -out "$WORK/tls.crt" >/dev/null 2>&1 ||
        die "openssl could not make the self-signed certificate"
}

start_servers() {
    make_content
    start_server c2 beacon_c2_tcp_persistent "$PYTHON" "$HELPER" c2-server "$PLAN" beacon_c2_tcp_persistent
    start_server poll beacon_http_keepalive "$PYTHON" "$HELPER" poll-server "$PLAN" beacon_http_keepalive
    start_server udp beacon_udp_fixed_port "$PYTHON" "$HELPER" udp-server "$PLAN" beacon_udp_fixed_port
    start_server jit beacon_http_jittered "$PYTHON" -m http.server --bind 0.0.0.0 --directory "$WORK/www" 80
    start_server idle benign_tcp_keepalive_idle "$PYTHON" "$HELPER" idle-server "$PLAN" benign_tcp_keepalive_idle
    start_server tty benign_interactive "$PYTHON" "$HELPER" shell-server "$PLAN" benign_interactive
    # The bulk download goes through a 160 kbit/s token bucket on the server's egress.
    tc -n "${NS_PREFIX}bulk-s" qdisc add dev eth0 root tbf rate 160kbit burst 4500 latency 400ms
    start_server bulk benign_bulk_download "$PYTHON" -m http.server --bind 0.0.0.0 --directory "$WORK/bulk" 80
    start_server rtp benign_video_stream "$PYTHON" "$HELPER" rtp-server "$PLAN" benign_video_stream
    start_server tls benign_tls_session openssl s_server -accept 443 -cert "$WORK/tls.crt" -key "$WORK/tls.key" \
        -rev -naccept 1 -quiet
    wait_listening c2 tcp 4444
    wait_listening poll tcp 80
    wait_listening udp udp 4000
    wait_listening jit tcp 80
    wait_listening idle tcp 5222
    wait_listening tty tcp 23
    wait_listening bulk tcp 80
    wait_listening rtp udp 5004
    wait_listening tls tcp 443
    log "servers listening in all nine server namespaces"
}

# ---- clients ----------------------------------------------------------------------------
start_client() { # TAG NAME ROLE T0
    local tag=$1 name=$2 role=$3 t0=$4
    in_client "$tag" timeout "$CLIENT_TIMEOUT" "$PYTHON" "$HELPER" "$role" "$PLAN" "$name" "$t0" \
        >"$WORK/client-$name.log" 2>&1 &
    CLIENT_PID[$name]=$!
    BG_PIDS+=("$!")
}

# Sentinel's beacon rule bins by clock hour: keep the whole run inside one hour so the
# ground truth for the sentinel mode does not depend on when the files were made.
avoid_hour_boundary() {
    local into_hour=$(($(date -u +%s) % 3600))
    if ((into_hour > 3600 - RUN_SECONDS)); then
        local wait_s=$((3600 - into_hour + 2))
        log "waiting ${wait_s}s for the next clock hour so the run fits in one hour bin"
        sleep "$wait_s"
    fi
}

# ---- verification and bookkeeping ----------------------------------------------------------
check_addresses() { # FILES...
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

# Replace this script's lines in SHA256SUMS, keeping every other capture's line.
update_sums() { # FILES...
    local f keep="$WORK/sums.keep"
    : >"$keep"
    if [[ -f $HERE/SHA256SUMS ]]; then
        cp "$HERE/SHA256SUMS" "$keep"
        for f in "$@"; do
            grep -v "  $f\$" "$keep" >"$keep.new" || true
            mv "$keep.new" "$keep"
        done
    fi
    (cd "$HERE" && cat "$keep" && sha256sum "$@") >"$WORK/sums.new"
    mv "$WORK/sums.new" "$HERE/SHA256SUMS"
}

main() {
    local start=$SECONDS
    delete_namespaces # leftovers from an earlier run killed with SIGKILL
    log "drawing the schedule from seed $SEED"
    "$PYTHON" "$HELPER" plan "$SEED" "$PLAN"
    avoid_hour_boundary

    local idx=0 row tag name client server files=()
    for row in "${SCENARIOS[@]}"; do
        read -r tag name client server <<<"$row"
        idx=$((idx + 1))
        make_pair "$tag" "$idx" "$client" "$server"
        files+=("$name.pcap")
    done
    log "created ${#SCENARIOS[@]} namespace pairs (${NS_PREFIX}*)"
    start_servers

    for row in "${SCENARIOS[@]}"; do
        read -r tag name client server <<<"$row"
        SNAPLEN[$name]=$("$PYTHON" -c "import json,sys; print(json.load(open(sys.argv[1]))['scenarios'][sys.argv[2]]['snaplen'])" "$PLAN" "$name")
        start_capture "$tag" "$name" "${SNAPLEN[$name]}"
    done
    log "capturing on all nine client interfaces"

    # One common start, far enough ahead for nine Python clients to start on a busy
    # machine, so every scenario runs on the planned clock (a client that falls more
    # than 0.1 s behind its schedule fails the run).
    local t0
    t0=$("$PYTHON" -c 'import time; print(f"{time.time() + 10:.3f}")')
    log "T0 = $(date -u -d "@${t0%.*}" +%H:%M:%S) UTC; scenarios run for about 6 minutes"
    start_client c2 beacon_c2_tcp_persistent c2-client "$t0"
    start_client poll beacon_http_keepalive poll-client "$t0"
    start_client udp beacon_udp_fixed_port udp-client "$t0"
    start_client jit beacon_http_jittered jitter-client "$t0"
    start_client idle benign_tcp_keepalive_idle idle-client "$t0"
    start_client tty benign_interactive shell-client "$t0"
    start_client bulk benign_bulk_download bulk-client "$t0"
    start_client rtp benign_video_stream rtp-client "$t0"
    start_client tls benign_tls_session tls-client "$t0"

    for row in "${SCENARIOS[@]}"; do
        read -r tag name client server <<<"$row"
        wait "${CLIENT_PID[$name]}" || die "client of $name failed: $(tail -n 3 "$WORK/client-$name.log")"
        log "client of $name finished"
    done
    # Servers that serve one session exit by themselves once it is over; their exit
    # status says whether they saw the planned exchange. (The http.server ones run on.)
    for name in beacon_c2_tcp_persistent beacon_udp_fixed_port benign_tcp_keepalive_idle benign_interactive \
        benign_video_stream benign_tls_session; do
        local deadline=$((SECONDS + READY_TIMEOUT))
        while running "${SERVER_PID[$name]}"; do
            ((SECONDS < deadline)) || die "server of $name still running ${READY_TIMEOUT}s after its client"
            sleep 0.05
        done
        wait "${SERVER_PID[$name]}" || die "server of $name failed: $(tail -n 3 "$WORK/server-$name.log")"
    done
    # Let the last in-flight packets (final ACKs) cross the wire, then stop all captures.
    sleep 1
    for row in "${SCENARIOS[@]}"; do
        read -r tag name client server <<<"$row"
        stop_capture "$name"
    done

    check_addresses "${files[@]}"
    cp "$PLAN" "$HERE/long-sessions.json"
    update_sums "${files[@]}"
    "$HERE/capture-stats.sh" --sessions "${files[@]}" >"$HERE/long-sessions-stats.txt"
    log "done in $((SECONDS - start))s: ${files[*]}"
}

main
