#!/usr/bin/env bash
# Live ceiling: the highest packet rate flowsentry captures with zero drops, next to
# `tcpdump -w /dev/null`, and CPU per packet of both at one common rate.
#
# trafgen (netsniff-ng: mmap TX ring, far cheaper per packet than tcpreplay's sendto)
# sends through a veth pair between two network namespaces this script creates (and
# deletes). The traffic uses documentation addresses only (2001:db8::/32): one "round"
# of the trafgen configuration is an 8-packet TCP session (handshake, 300 bytes up, 800
# down, FIN teardown) plus a DNS query and answer, and counters make every round a new
# client and server (60 000 of each, then reused), with each session's packets spread
# over 7 000 rounds so ~7 000 sessions are open at once, interleaved as on a real link.
#
# For each capturer, rates go up the RATES ladder (each trial sends TRIAL_SECS of
# traffic); the first rate with a drop (kernel drop, or a packet not processed) is
# bisected against the last clean one (BISECT steps). A trial where trafgen itself fell
# more than 10 % short of the asked rate (start-up included) ends the climb ("generator limit").
#
#   sudo benches/ceiling.sh
#   RATES="50000 100000" TRIAL_SECS=2 BISECT=0 sudo benches/ceiling.sh    # quick check
#
# Knobs: RATES, TRIAL_SECS, BISECT, COMMON_RATE (pps for the CPU comparison), BUFFER
# (bytes, flowsentry -B and tcpdump -B), SNAPLEN, GEN_CPUS (trafgen instances, default 1:
# one core sends, the other is left to the capturer... and the kernel's receive work;
# with 2, two independent trafgen processes, pinned one per core, each send half the
# rate from their own address ranges — trafgen's own `-P 2` dies with "xfree: NULL
# pointer" before its last packets when the configuration has more than eight templates),
# CPU_QUOTA (percent of one core: each capturer runs in a CPU cgroup with that quota, so
# its ceiling falls below what the generator can send and both ceilings can be found
# under the same CPU allowance; pair it with a small BUFFER so a trial measures the
# sustained rate, not the socket buffer).
#
#   CPU_QUOTA=10 BUFFER=4194304 RATES="25000 50000 100000 200000 300000" sudo benches/ceiling.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RATES=${RATES:-100000 200000 300000 400000 500000 600000 800000 1000000 1300000 1600000 2000000}
TRIAL_SECS=${TRIAL_SECS:-5}
BISECT=${BISECT:-3}
COMMON_RATE=${COMMON_RATE:-200000}
BUFFER=${BUFFER:-134217728}
SNAPLEN=${SNAPLEN:-256}
GEN_CPUS=${GEN_CPUS:-1}
CPU_QUOTA=${CPU_QUOTA:-}
TX=fsceil-tx-$$
RX=fsceil-rx-$$

[[ $(id -u) == 0 ]] || { echo "benches/ceiling.sh: needs root (network namespaces)" >&2; exit 1; }
for tool in ip trafgen tcpdump python3; do
    command -v "$tool" >/dev/null || { echo "benches/ceiling.sh: $tool is not installed (tests/install-deps.sh bench)" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/flowsentry-ceiling.XXXXXX)
CAP_PID=
CGROUP=
cleanup() {
    [[ -n "$CAP_PID" ]] && kill "$CAP_PID" 2>/dev/null || true
    [[ -n "$CGROUP" ]] && rmdir "$CGROUP" 2>/dev/null || true
    ip netns del "$TX" 2>/dev/null || true
    ip netns del "$RX" 2>/dev/null || true
    [[ -n "${KEEP:-}" ]] || rm -rf "$WORK"
}
trap cleanup EXIT

(cd "$ROOT" && cargo build --release --bins --quiet)
FS="$ROOT/target/release/flowsentry"

# The capturers' CPU cgroup (CPU_QUOTA): cgroup v2 (cpu.max) or v1 (cpu controller).
if [[ -n "$CPU_QUOTA" ]]; then
    quota=$(( CPU_QUOTA * 1000 ))
    if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
        CGROUP=/sys/fs/cgroup/fsceil-$$
        echo +cpu >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
        mkdir "$CGROUP"
        echo "$quota 100000" >"$CGROUP/cpu.max"
    elif [[ -d /sys/fs/cgroup/cpu ]]; then
        CGROUP=/sys/fs/cgroup/cpu/fsceil-$$
        mkdir "$CGROUP"
        echo 100000 >"$CGROUP/cpu.cfs_period_us"
        echo "$quota" >"$CGROUP/cpu.cfs_quota_us"
    else
        echo "benches/ceiling.sh: CPU_QUOTA needs a cgroup CPU controller (none under /sys/fs/cgroup)" >&2
        exit 1
    fi
fi
# Prefix of the capturer commands: enter the cgroup, then exec (the capturer keeps the
# pid that is signalled).
IN_QUOTA=()
[[ -n "$CGROUP" ]] && IN_QUOTA=(sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CGROUP")
TICK=$(getconf CLK_TCK)

ip netns add "$TX"
ip netns add "$RX"
for ns in "$TX" "$RX"; do
    # No IPv6 stack on the veth ends: the frames are only captured, never answered.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" link set lo up
done
ip link add vtx netns "$TX" type veth peer name vrx netns "$RX"
ip -n "$TX" link set vtx up
ip -n "$RX" link set vrx up

# The trafgen configuration: template j of a session uses counters that start (7-j)*D
# rounds ahead, so packet j of session X is sent D rounds after packet j-1. Generator
# instance k (0, 1, ...) gets its own configuration, round-K.cfg, with its own clients
# (2001:db8:aK1::/48, DNS 2001:db8:aK2::/48) and servers (2001:db8:cb00:71K0::/64).
for ((k = 0; k < GEN_CPUS; k++)); do
python3 - "$k" >"$WORK/round-$k.cfg" <<'PY'
import sys
K = int(sys.argv[1])
D, P = 1000, 50000  # rounds between a session's packets; clients, servers and ports per cycle (ports stay < 65536)
def pair(j, up, hl):
    lo = (7 - j) * D + 1
    c = f"2001:db8:a{K}1::{lo:x}"
    s = f"2001:db8:cb00:71{K}0::{lo:x}"
    cnt = f"dinc({lo}, {lo + P - 1})"
    src, dst = (c, s) if up else (s, c)
    ip = f"ip6(sa={src}, sa={cnt}, da={dst}, da={cnt}, hl={hl})"
    port = f"dinc({1024 + lo}, {1024 + lo + P - 1})"
    ports = f"sp={port}, dp=443" if up else f"sp=443, dp={port}"
    mac = "sa=02:00:00:00:00:01, da=02:00:00:00:00:02" if up else "sa=02:00:00:00:00:02, da=02:00:00:00:00:01"
    return f"eth({mac}, type=0x86dd), {ip}", ports
session = [  # (up, tcp fields, payload bytes)
    (True, "seq=1000, syn, win=64240", 0),
    (False, "seq=5000, aseq=1001, syn, ack, win=65160", 0),
    (True, "seq=1001, aseq=5001, ack, win=502", 0),
    (True, "seq=1001, aseq=5001, ack, psh, win=502", 300),
    (False, "seq=5001, aseq=1301, ack, psh, win=509", 800),
    (True, "seq=1301, aseq=5801, fin, ack, win=502", 0),
    (False, "seq=5801, aseq=1302, fin, ack, win=509", 0),
    (True, "seq=1302, aseq=5802, ack, win=502", 0),
]
for j, (up, fields, payload) in enumerate(session):
    hdr, ports = pair(j, up, 64 if up else 52)
    fill = f", fill(0x41, {payload})" if payload else ""
    print(f"{{ {hdr}, tcp({ports}, {fields}){fill} }}")
# A DNS query and its answer, 50 000 clients of one resolver.
for up in (True, False):
    lo = 2 if up else 1  # the answer goes to the previous round's query
    cnt = f"dinc({lo}, {lo + P - 1})"
    c, s = f"2001:db8:a{K}2::{lo:x}", f"2001:db8:cb00:71{K}5::53"
    if up:
        ip, udp = f"ip6(sa={c}, sa={cnt}, da={s}, hl=64)", f"udp(sp=dinc({1024 + lo}, {1024 + lo + P - 1}), dp=53), fill(0x42, 40)"
        mac = "sa=02:00:00:00:00:01, da=02:00:00:00:00:02"
    else:
        ip, udp = f"ip6(sa={s}, da={c}, da={cnt}, hl=52)", f"udp(sp=53, dp=dinc({1024 + lo}, {1024 + lo + P - 1})), fill(0x43, 120)"
        mac = "sa=02:00:00:00:00:02, da=02:00:00:00:00:01"
    print(f"{{ eth({mac}, type=0x86dd), {ip}, {udp} }}")
PY
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# Waits (deadline 60 s) until process $1's CPU time stops growing.
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

wait_for() { # wait_for FILE TEXT (deadline 30 s)
    for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "timed out waiting for '$2' in $1:" >&2; cat "$1" >&2; exit 1
}

tx_packets() { ip netns exec "$TX" cat /sys/class/net/vtx/statistics/tx_packets; }

# send RATE PACKETS: trafgen at RATE pps in all (0 = as fast as it can); prints "sent secs".
# GEN_CPUS instances each send PACKETS/GEN_CPUS at RATE/GEN_CPUS, instance k pinned to
# core k. Sent packets are counted by the veth itself: trafgen 0.6.8 sends every packet
# but may exit with "xfree: NULL pointer" instead of its statistics when the
# configuration has more than eight templates.
send() {
    local rate=$1 n=$2 t0 t1 before after k share
    local -a rate_arg=() pids=()
    share=$(( n / GEN_CPUS ))
    (( rate > 0 )) && rate_arg=(-b "$(( rate / GEN_CPUS ))pps")
    before=$(tx_packets)
    t0=$(date +%s.%N)
    for ((k = 0; k < GEN_CPUS; k++)); do
        ip netns exec "$TX" taskset -c "$(( k % $(nproc) ))" trafgen -i "$WORK/round-$k.cfg" -o vtx -P 1 \
            -n "$share" "${rate_arg[@]}" -C -Q >"$WORK/trafgen-$k.out" 2>&1 &
        pids+=($!)
    done
    for k in "${pids[@]}"; do wait "$k" || true; done
    t1=$(date +%s.%N)
    after=$(tx_packets)
    if (( after - before < share * GEN_CPUS )); then
        echo "benches/ceiling.sh: trafgen sent $((after - before)) of $((share * GEN_CPUS)) packets:" >&2
        grep -hv Warning "$WORK"/trafgen-*.out | tail -5 >&2
        exit 1
    fi
    echo "$((after - before)) $(python3 -c "print($t1 - $t0)")"
}

# trial CAPTURER RATE: one trial; prints "sent secs processed kernel_dropped cpu_ticks".
trial() {
    local who=$1 rate=$2 n=$(( $2 * TRIAL_SECS )) out processed kdrop ticks
    if [[ $who == flowsentry ]]; then
        "${IN_QUOTA[@]}" ip netns exec "$RX" "$FS" live -i vrx -B "$BUFFER" -s "$SNAPLEN" --stats-interval 0 \
            --home-net 2001:db8:a00::/40 -a "$WORK/alerts.json" 2>"$WORK/cap.err" &
        CAP_PID=$!
        wait_for "$WORK/cap.err" "capturing on"
    else
        "${IN_QUOTA[@]}" ip netns exec "$RX" tcpdump -i vrx -B $((BUFFER / 1024)) -s "$SNAPLEN" -w /dev/null 2>"$WORK/cap.err" &
        CAP_PID=$!
        wait_for "$WORK/cap.err" "listening on"
    fi
    out=$(send "$rate" "$n")
    wait_idle "$CAP_PID"
    ticks=$(cpu_ticks "$CAP_PID")
    if [[ $who == flowsentry ]]; then
        kill -USR1 "$CAP_PID"
        wait_for "$WORK/cap.err" '"type":"stats"'
        kill -TERM "$CAP_PID"
        wait "$CAP_PID" || true
        read -r processed kdrop < <(python3 -c '
import json, sys
s = next(json.loads(l[l.index("{"):]) for l in open(sys.argv[1]) if "\"type\":\"stats\"" in l)
print(s["packets_read"], s["kernel_dropped"] + s["interface_dropped"])' "$WORK/cap.err")
    else
        kill -INT "$CAP_PID"
        wait "$CAP_PID" || true
        processed=$(grep -o '[0-9]* packets\? captured' "$WORK/cap.err" | grep -o '^[0-9]*')
        kdrop=$(grep -o '[0-9]* packets\? dropped by kernel' "$WORK/cap.err" | grep -o '^[0-9]*')
    fi
    CAP_PID=
    echo "$out $processed $kdrop $ticks"
}

echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
[[ -n "$CPU_QUOTA" ]] && echo "== capturers limited to $CPU_QUOTA % of one core ($CGROUP), buffer $BUFFER bytes"
echo "== trafgen alone (no capturer), $GEN_CPUS process(es), as fast as it can"
read -r sent secs < <(send 0 $((1000000 * GEN_CPUS)))
echo "generator ceiling: $(python3 -c "print(f'{$sent / $secs:,.0f}')") packets/s ($sent packets in $(printf %.2f "$secs") s)"

: >"$WORK/trials"
climb() { # climb CAPTURER: ladder, then bisection; appends to $WORK/trials
    local who=$1 good=0 bad=0 rate r
    for rate in $RATES; do
        read -r sent secs processed kdrop ticks < <(trial "$who" "$rate")
        echo "$who $rate $sent $secs $processed $kdrop $ticks" >>"$WORK/trials"
        printf '  %-10s asked %9s pps: sent %9s at %9.0f pps, processed %9s, kernel dropped %s\n' \
            "$who" "$rate" "$sent" "$(python3 -c "print($sent / $secs)")" "$processed" "$kdrop"
        if python3 -c "import sys; sys.exit(0 if $sent / $secs < 0.9 * $rate else 1)"; then
            echo "  generator limit reached at $rate pps"
            [[ $kdrop == 0 && $processed == "$sent" ]] && good=$rate
            bad=0
            break
        fi
        if [[ $kdrop == 0 && $processed == "$sent" ]]; then good=$rate; else bad=$rate; break; fi
    done
    if (( bad > 0 )); then
        for _ in $(seq "$BISECT"); do
            r=$(( (good + bad) / 2 ))
            read -r sent secs processed kdrop ticks < <(trial "$who" "$r")
            echo "$who $r $sent $secs $processed $kdrop $ticks" >>"$WORK/trials"
            printf '  %-10s asked %9s pps: sent %9s at %9.0f pps, processed %9s, kernel dropped %s\n' \
                "$who" "$r" "$sent" "$(python3 -c "print($sent / $secs)")" "$processed" "$kdrop"
            if [[ $kdrop == 0 && $processed == "$sent" ]]; then good=$r; else bad=$r; fi
        done
    fi
    echo "$who ceiling $good $bad" >>"$WORK/ceilings"
}

: >"$WORK/ceilings"
for who in flowsentry tcpdump; do
    echo "== $who: climbing ($TRIAL_SECS s of traffic per trial)"
    climb "$who"
done

echo "== CPU per packet at $COMMON_RATE packets/s"
for who in flowsentry tcpdump; do
    read -r sent secs processed kdrop ticks < <(trial "$who" "$COMMON_RATE")
    echo "$who common $sent $secs $processed $kdrop $ticks" >>"$WORK/common"
done

python3 - "$WORK" "$TICK" <<'PY'
import sys
work, tick = sys.argv[1], int(sys.argv[2])
ceil = {l.split()[0]: (int(l.split()[2]), int(l.split()[3])) for l in open(f"{work}/ceilings")}
common = {l.split()[0]: l.split()[2:] for l in open(f"{work}/common")}
print()
print("| capturer | zero-drop ceiling (packets/s) | first rate with drops | at the common rate: sent | processed | kernel dropped | CPU ns/packet |")
print("|---|---:|---:|---:|---:|---:|---:|")
for who in ("flowsentry", "tcpdump"):
    good, bad = ceil[who]
    sent, secs, processed, kdrop, ticks = common[who]
    ns = int(ticks) / tick * 1e9 / max(int(processed), 1)
    print(f"| {who} | {good:,} | {f'{bad:,}' if bad else 'none up to the generator or ladder limit'} | {int(sent):,} | {int(processed):,} | {kdrop} | {ns:.0f} |")
PY
