#!/usr/bin/env bash
# Replay benchmark over several traffic mixes, all made by the project's generator
# (flowsentry-synth): for each mix, flowsentry alerts-only and with --records next to
# `tcpdump -r F -w /dev/null` (plus softflowd and argus on mix a, and `tcpdump -r F -w
# FILE`, which writes about as many bytes as the records take), wall time (median and
# range), CPU seconds (user+sys, median) and peak RSS, ratios to tcpdump from the same
# run. Commands run round-robin (one run of each, then the next round), so a load change
# on the machine hits all of them alike. Then the scaling runs (packets, hosts) on mix a.
# Everything generated goes to a temporary directory removed at the end (KEEP=1 keeps it).
#
#   benches/run.sh                 # full run: 5 mixes of 5 M packets (3 M SYNs for e)
#   QUICK=1 benches/run.sh         # smoke test: 200 k packets per mix, 2 runs, small scaling
#   MIXES="b c" benches/run.sh     # some mixes only
#
# Mixes: a = today's mix (`mixed`: web, DNS, inbound, long sessions, a few scans);
#        b = short sessions, small frames (`short`: ~6.5 packets/session, 50 k clients,
#            5 k servers on 20 ports, DNS pairs, embedded SYN scans);
#        c = host-count stress (`hosts`: services + scanning radiation from ~600 k distinct
#            sources in 5 M packets; a planted scanner and two beacons must be found);
#        d = bulk transfers (`bulk`: a few long downloads carry ~95 % of the packets);
#        e = the spoofed SYN flood (`syn_flood`, 3 M SYNs, hiding a scan and a beacon).
# Mix c also runs flowsentry with detector tables big enough for the whole population
# ("big tables"), to show what table churn costs.
#
# Knobs (environment): PACKETS (per mix; e uses FLOOD_PACKETS), RUNS, MIXES, C_RATE (mix c's
# sessions per second: 110 makes 5 M packets span ~2.5 h of traffic), SCALE
# ("1000000 ...": packets per scaling step on mix a, "" skips), SCALE_RUNS, ONE_CORE (1, the
# default: also run flowsentry pinned to one core with `taskset -c 0`; 0 skips), WORKDIR.
# Needs: cargo, python3, tcpdump, softflowd, argus, taskset (util-linux), /usr/bin/time.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [[ -n "${QUICK:-}" ]]; then
    : "${PACKETS:=200000}" "${FLOOD_PACKETS:=200000}" "${RUNS:=2}" "${SCALE:=100000 400000}" "${SCALE_RUNS:=1}"
    # Mix c must still span over an hour, so the planted scanner and beacons are in it.
    : "${C_RATE:=10}"
fi
PACKETS=${PACKETS:-5000000}
FLOOD_PACKETS=${FLOOD_PACKETS:-3000000}
RUNS=${RUNS:-5}
MIXES=${MIXES:-a b c d e}
SCALE=${SCALE-1000000 5000000 20000000}
SCALE_RUNS=${SCALE_RUNS:-3}
C_RATE=${C_RATE:-110}
ONE_CORE=${ONE_CORE:-1}

for tool in python3 tcpdump softflowd argus taskset /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "benches/run.sh: $tool is not installed" >&2; exit 1; }
done

WORK=$(mktemp -d "${WORKDIR:-/tmp}/flowsentry-bench.XXXXXX")
if [[ -z "${KEEP:-}" ]]; then trap 'rm -rf "$WORK"' EXIT; else echo "keeping $WORK"; fi

(cd "$ROOT" && cargo build --release --bins --quiet)
FS="$ROOT/target/release/flowsentry"
SYNTH="$ROOT/target/release/flowsentry-synth"

# Detector tables big enough for mix c's whole population (for the churn comparison).
cat >"$WORK/big-tables.toml" <<'EOF'
[enhanced]
scan_max_sources = 2000000
beacon_max_series = 2000000
EOF

# gen MIX FILE PACKETS [extra synth args...]: writes the mix, prints the generator's line.
gen() {
    local mix=$1 file=$2 packets=$3 name
    shift 3
    case "$mix" in
        a) name=mixed; set -- --session-rate 12500 --hosts 50000 "$@" ;;
        b) name=short ;;
        c) name=hosts; set -- --session-rate "$C_RATE" "$@" ;;
        d) name=bulk ;;
        e) name=syn_flood ;;
        *) echo "benches/run.sh: unknown mix '$mix' (a b c d e)" >&2; exit 1 ;;
    esac
    "$SYNTH" "$name" -o "$file" --packets "$packets" "$@" 2>&1 >/dev/null | tail -1
}

# Per-packet bytes on disk: refuse files that would not fit (keep 2 GB spare).
fits() { # fits PACKETS BYTES_PER_PACKET
    local need=$(( $1 * $2 / 1024 + 2 * 1024 * 1024 )) free
    free=$(df -Pk "$WORK" | awk 'NR==2 {print $4}')
    (( free > need ))
}

echo "== machine"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB RAM"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "kernel: $(uname -r); $(tcpdump --version 2>&1 | head -1); softflowd $(softflowd -h 2>&1 | grep -o 'version [0-9.]*' | head -1); argus $(argus -h 2>&1 | grep -m1 -o 'Version [0-9.]*' || true)"
echo "flowsentry $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')"

# bench MIX FILE PACKETS NAME=CMD...: RUNS rounds (plus one warm-up round) of every
# command, round-robin, each under /usr/bin/time; appends "mix name wall user sys rss_kb"
# lines to $WORK/times.
bench() {
    local mix=$1 file=$2 packets=$3 round i name cmd
    shift 3
    local -a names=() cmds=()
    for spec in "$@"; do names+=("${spec%%=*}"); cmds+=("${spec#*=}"); done
    for round in $(seq 0 "$RUNS"); do
        for i in "${!names[@]}"; do
            name=${names[$i]} cmd=${cmds[$i]}
            # shellcheck disable=SC2086
            if ! /usr/bin/time -o "$WORK/t" -f '%e %U %S %M' $cmd >/dev/null 2>"$WORK/err"; then
                echo "benches/run.sh: '$cmd' failed:" >&2; tail -5 "$WORK/err" >&2; exit 1
            fi
            (( round == 0 )) || echo "$mix $name $packets $(cat "$WORK/t")" >>"$WORK/times"
            # The records and the tcpdump copy (~1 GB a run) are otherwise written back by
            # kernel threads during the next timed command, taking one of the two cores.
            sync
        done
    done
}

# check_found ALERTS LABEL FAMILY SRC [DST]: is there an alert of FAMILY from SRC (to DST)?
check_found() {
    local alerts=$1 label=$2 family=$3 src=$4 dst=${5:-}
    if python3 - "$alerts" "$family" "$src" "$dst" <<'PY'; then echo "  found: $label"; else echo "  MISSED: $label"; fi
import json, sys
path, family, src, dst = sys.argv[1:]
for line in open(path):
    a = json.loads(line)
    if a.get("DetectionMode") == family and a.get("SrcIpAddr") == src and (not dst or a.get("DstIpAddr") == dst):
        sys.exit(0)
sys.exit(1)
PY
}

: >"$WORK/times"
for mix in $MIXES; do
    n=$PACKETS bpp=400
    [[ $mix == e ]] && n=$FLOOD_PACKETS bpp=100
    [[ $mix == d ]] && bpp=1000
    if ! fits "$n" "$bpp"; then echo "mix $mix skipped: not enough space in $WORK"; continue; fi
    f="$WORK/mix-$mix.pcap"
    echo
    echo "== mix $mix: $(gen "$mix" "$f" "$n"), $(du -h "$f" | cut -f1)"
    cat "$f" >/dev/null # page cache: every tool reads from memory
    specs=(
        "flowsentry-alerts=$FS replay -q -a $WORK/alerts.json $f"
        "flowsentry-records=$FS replay -q -a /dev/null --records $WORK/records.json $f"
        "tcpdump=tcpdump -r $f -w /dev/null"
        # For --records: about as many bytes written to a file as the records take.
        "tcpdump-to-file=tcpdump -r $f -w $WORK/copy.pcap"
    )
    if [[ $mix == a ]]; then
        # softflowd: -r reads the file, -c none = no control socket (with one, v1.1.0
        # blocks in accept() after the first read), no -n = nothing is exported.
        specs+=("softflowd=softflowd -r $f -d -6 -m 262144 -c none -p $WORK/softflowd.pid"
            "argus=argus -r $f -w /dev/null")
    fi
    [[ $mix == c ]] && specs+=("flowsentry-alerts-big-tables=$FS replay -q -a /dev/null -c $WORK/big-tables.toml $f")
    # Every thread on one core: no cache lines cross between cores. Next to the normal
    # run it shows how much of the CPU time is the cost of handing data between cores,
    # which on this VM depends on where the host places the two vCPUs at the moment.
    [[ $ONE_CORE == 1 ]] && specs+=("flowsentry-alerts-one-core=taskset -c 0 $FS replay -q -a /dev/null $f")
    bench "$mix" "$f" "$n" "${specs[@]}"
    "$FS" replay -a "$WORK/alerts.json" "$f" 2>&1 | grep -o 'sessions [0-9]*.*' | sed 's/^/  flowsentry: /'
    echo "  records file $(du -h "$WORK/records.json" | cut -f1), capture $(du -h "$f" | cut -f1)"
    case $mix in
        c)
            check_found "$WORK/alerts.json" "scanner 203.0.113.66 (enhanced)" enhanced 203.0.113.66
            check_found "$WORK/alerts.json" "scanner 203.0.113.66 (sentinel)" sentinel 203.0.113.66
            check_found "$WORK/alerts.json" "60 s beacon 10.1.0.20 -> 203.0.113.50 (enhanced)" enhanced 10.1.0.20 203.0.113.50
            check_found "$WORK/alerts.json" "60 s beacon 10.1.0.20 -> 203.0.113.50 (sentinel)" sentinel 10.1.0.20 203.0.113.50
            check_found "$WORK/alerts.json" "300 s beacon 10.1.0.21 -> 203.0.113.51 (enhanced)" enhanced 10.1.0.21 203.0.113.51
            ;;
        e)
            check_found "$WORK/alerts.json" "scanner 203.0.113.66 (enhanced)" enhanced 203.0.113.66
            check_found "$WORK/alerts.json" "scanner 203.0.113.66 (sentinel)" sentinel 203.0.113.66
            check_found "$WORK/alerts.json" "60 s beacon 10.1.0.20 -> 203.0.113.50 (enhanced)" enhanced 10.1.0.20 203.0.113.50
            ;;
    esac
    rm -f "$f" "$WORK/records.json" "$WORK/copy.pcap"
done

echo
echo "== replay: median of $RUNS runs (round-robin, after one warm-up round); ratios to tcpdump on the same file"
python3 - "$WORK/times" <<'PY'
import sys, statistics
from collections import OrderedDict
rows = OrderedDict()
for line in open(sys.argv[1]):
    mix, name, packets, wall, user, sys_, rss = line.split()
    rows.setdefault((mix, name), []).append((int(packets), float(wall), float(user) + float(sys_), int(rss)))
print("| mix | command | median wall s | min-max s | × tcpdump wall | CPU s (user+sys) | × tcpdump CPU | ns/packet (CPU) | peak RSS MiB |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for (mix, name), runs in rows.items():
    packets = runs[0][0]
    wall = statistics.median(r[1] for r in runs)
    cpu = statistics.median(r[2] for r in runs)
    base = rows.get((mix, "tcpdump"))
    bw = statistics.median(r[1] for r in base) if base else float("nan")
    bc = statistics.median(r[2] for r in base) if base else float("nan")
    print(f"| {mix} | {name} | {wall:.2f} | {min(r[1] for r in runs):.2f}-{max(r[1] for r in runs):.2f} | "
          f"{wall / bw:.2f} | {cpu:.2f} | {cpu / max(bc, 0.005):.2f} | {cpu * 1e9 / packets:.0f} | "
          f"{max(r[3] for r in runs) / 1024:.0f} |")
PY

if [[ -n "$SCALE" ]]; then
    echo
    echo "== scaling (mix a): flowsentry alerts-only, $SCALE_RUNS runs per step (median)"
    scale_row() { # scale_row LABEL FILE PACKETS
        local times=()
        for _ in $(seq "$SCALE_RUNS"); do
            /usr/bin/time -o "$WORK/t" -f '%e %U %S %M' "$FS" replay -q "$2" >/dev/null 2>&1
            times+=("$(cat "$WORK/t")")
        done
        python3 - "$1" "$3" "${times[@]}" <<'PY'
import sys, statistics
label, packets, runs = sys.argv[1], int(sys.argv[2]), [list(map(float, t.split())) for t in sys.argv[3:]]
wall = statistics.median(r[0] for r in runs)
cpu = statistics.median(r[1] + r[2] for r in runs)
rss = max(r[3] for r in runs) / 1024
print(f"| {label} | {packets:,} | {wall:.2f} | {wall*1e9/packets:.0f} | {cpu*1e9/packets:.0f} | {rss:.0f} |")
PY
    }
    echo "| capture | packets | median wall s | ns/packet (wall) | ns/packet (CPU) | peak RSS MiB |"
    echo "|---|---:|---:|---:|---:|---:|"
    for n in $SCALE; do
        if ! fits "$n" 400; then
            echo "| $n packets skipped: not enough space in $WORK | | | | | |"
            continue
        fi
        f="$WORK/scale.pcap"
        gen a "$f" "$n" >/dev/null
        scale_row "hosts=50000" "$f" "$n"
        rm -f "$f"
    done
    # Ten times more distinct hosts, same packet count.
    f="$WORK/hosts.pcap"
    "$SYNTH" mixed -o "$f" --packets "$PACKETS" --session-rate 12500 --hosts 500000 2>/dev/null
    scale_row "hosts=500000" "$f" "$PACKETS"
    rm -f "$f"
fi
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
