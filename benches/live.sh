#!/usr/bin/env bash
# Live capture benchmark: tcpreplay --topspeed pushes a synthetic capture through a veth
# pair between two network namespaces this script creates (and deletes), while the
# capturer listens on the far end: first flowsentry, then `tcpdump -w /dev/null` on the
# same stream. Reports packets sent, received, dropped by the kernel, dropped in our
# queues, and CPU time per packet. Traffic never leaves the two namespaces and carries
# documentation addresses only: the mix is written with --documentation-only (every
# IPv4 address a.b.c.d becomes 2001:db8:aabb:ccdd::1, so the home net 10.0.0.0/8 becomes
# 2001:db8:a00::/40). benches/ceiling.sh finds the zero-drop ceiling with a faster sender.
#
#   sudo benches/live.sh                     # 1 M packets, default buffer and snaplen
#   PACKETS=200000 BUFFER=268435456 SNAPLEN=128 benches/live.sh
#
# Knobs: PACKETS, RATE, HOSTS, BUFFER (bytes, flowsentry -B and tcpdump -B), SNAPLEN.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PACKETS=${PACKETS:-1000000}
RATE=${RATE:-12500}
HOSTS=${HOSTS:-50000}
BUFFER=${BUFFER:-134217728}
SNAPLEN=${SNAPLEN:-256}
TX=fsbench-tx-$$
RX=fsbench-rx-$$

[[ $(id -u) == 0 ]] || { echo "benches/live.sh: needs root (network namespaces)" >&2; exit 1; }
for tool in ip tcpreplay tcpdump python3; do
    command -v "$tool" >/dev/null || { echo "benches/live.sh: $tool is not installed" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/flowsentry-live.XXXXXX)
cleanup() {
    ip netns del "$TX" 2>/dev/null || true
    ip netns del "$RX" 2>/dev/null || true
    [[ -n "${KEEP:-}" ]] || rm -rf "$WORK"
}
trap cleanup EXIT

(cd "$ROOT" && cargo build --release --bins --quiet)
FS="$ROOT/target/release/flowsentry"
"$ROOT/target/release/flowsentry-synth" mixed -o "$WORK/live.pcap" --packets "$PACKETS" --session-rate "$RATE" \
    --hosts "$HOSTS" --documentation-only >/dev/null 2>&1

ip netns add "$TX"
ip netns add "$RX"
ip netns exec "$TX" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec "$RX" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip link add vtx netns "$TX" type veth peer name vrx netns "$RX"
ip -n "$TX" link set vtx mtu 9000 up
ip -n "$RX" link set vrx mtu 9000 up
ip -n "$TX" link set lo up
ip -n "$RX" link set lo up

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# Waits (deadline 60 s) until process $1's CPU time stops growing: the capturer has drained
# everything the kernel queued for it.
wait_idle() {
    local pid=$1 prev=-1 now stable=0
    for _ in $(seq 200); do
        now=$(cpu_ticks "$pid")
        if [[ "$now" == "$prev" ]]; then stable=$((stable + 1)); else stable=0; fi
        (( stable >= 3 )) && return 0
        prev=$now
        sleep 0.3
    done
    echo "warning: capturer still busy after 60 s" >&2
}

# Waits (deadline 30 s) until file $1 contains $2.
wait_for() {
    for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "timed out waiting for '$2' in $1:" >&2; cat "$1" >&2; exit 1
}

replay() { # -> prints tcpreplay's "Actual" line, stores sent packet count in $WORK/sent
    ip netns exec "$TX" tcpreplay --topspeed -i vtx "$WORK/live.pcap" >"$WORK/tcpreplay.out" 2>&1
    grep -m1 -o 'Actual: [0-9]* packets' "$WORK/tcpreplay.out" | grep -o '[0-9]*' >"$WORK/sent"
    grep -m1 'Rated:' "$WORK/tcpreplay.out" | sed 's/^ *//' >"$WORK/rate"
}

TICK=$(getconf CLK_TCK)

echo "== flowsentry live -i vrx -B $BUFFER -s $SNAPLEN"
ip netns exec "$RX" "$FS" live -i vrx -B "$BUFFER" -s "$SNAPLEN" --stats-interval 0 --home-net 2001:db8:a00::/40 \
    -a "$WORK/alerts.json" 2>"$WORK/fs.err" &
FS_PID=$!
wait_for "$WORK/fs.err" "capturing on"
replay
wait_idle "$FS_PID"
FS_CPU=$(cpu_ticks "$FS_PID")
kill -USR1 "$FS_PID"
wait_for "$WORK/fs.err" '"type":"stats"'
kill -TERM "$FS_PID"
wait "$FS_PID" || true
FS_SENT=$(cat "$WORK/sent") FS_RATE=$(cat "$WORK/rate")

echo "== tcpdump -i vrx -B $((BUFFER / 1024)) KiB -s $SNAPLEN -w /dev/null"
ip netns exec "$RX" tcpdump -i vrx -B $((BUFFER / 1024)) -s "$SNAPLEN" -w /dev/null 2>"$WORK/td.err" &
TD_PID=$!
wait_for "$WORK/td.err" "listening on"
replay
wait_idle "$TD_PID"
TD_CPU=$(cpu_ticks "$TD_PID")
kill -INT "$TD_PID"
wait "$TD_PID" || true
TD_SENT=$(cat "$WORK/sent") TD_RATE=$(cat "$WORK/rate")

python3 - "$WORK" "$TICK" "$FS_SENT" "$FS_CPU" "$TD_SENT" "$TD_CPU" "$FS_RATE" "$TD_RATE" <<'PY'
import json, re, sys
work, tick = sys.argv[1], int(sys.argv[2])
fs_sent, fs_cpu, td_sent, td_cpu = map(int, sys.argv[3:7])
fs_rate, td_rate = sys.argv[7], sys.argv[8]
stats = next(json.loads(l[l.index("{"):]) for l in open(f"{work}/fs.err") if '"type":"stats"' in l)
td = open(f"{work}/td.err").read()
num = lambda pat: int(re.search(pat, td).group(1))
rows = [
    ("flowsentry", fs_sent, stats["packets_read"], stats["kernel_received"], stats["kernel_dropped"],
     stats["channel_drops"], stats["queue_waits"], fs_cpu, fs_rate),
    ("tcpdump -w /dev/null", td_sent, num(r"(\d+) packets? captured"), num(r"(\d+) packets? received by filter"),
     num(r"(\d+) packets? dropped by kernel"), 0, 0, td_cpu, td_rate),
]
print("| capturer | sent | processed | kernel received | kernel dropped | queue drops (events) | queue waits | CPU s | CPU ns/packet | tcpreplay rate |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for name, sent, got, recv, kdrop, qdrop, qwait, cpu, rate in rows:
    secs = cpu / tick
    print(f"| {name} | {sent:,} | {got:,} | {recv:,} | {kdrop:,} | {qdrop:,} | {qwait:,} | {secs:.2f} | "
          f"{secs * 1e9 / max(got, 1):.0f} | {rate} |")
PY
