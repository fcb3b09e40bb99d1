#!/usr/bin/env bash
# Replay benchmark: flowsentry (alerts only, and with --records) next to tcpdump,
# softflowd and argus on the same synthetic capture, then the scaling runs (packets and
# distinct hosts). One command; everything generated goes to a temporary directory that
# is removed at the end (KEEP=1 keeps it).
#
#   benches/run.sh                 # full run (5 M packets, scaling 1 M / 5 M / 20 M)
#   QUICK=1 benches/run.sh         # smoke test: 200 k packets, 2 runs, small scaling
#
# Knobs (environment): PACKETS, RATE (new sessions/s), HOSTS, RUNS, SCALE ("1000000 ...",
# packets per scaling step), SCALE_RUNS, WORKDIR (parent of the temp dir, default /tmp).
# Needs: cargo, hyperfine, python3, tcpdump, softflowd, argus, /usr/bin/time.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [[ -n "${QUICK:-}" ]]; then
    : "${PACKETS:=200000}" "${RUNS:=2}" "${SCALE:=100000 400000}" "${SCALE_RUNS:=1}"
fi
PACKETS=${PACKETS:-5000000}
RATE=${RATE:-12500}
HOSTS=${HOSTS:-50000}
RUNS=${RUNS:-5}
SCALE=${SCALE:-1000000 5000000 20000000}
SCALE_RUNS=${SCALE_RUNS:-3}

for tool in hyperfine python3 tcpdump softflowd argus /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "benches/run.sh: $tool is not installed" >&2; exit 1; }
done

WORK=$(mktemp -d "${WORKDIR:-/tmp}/flowsentry-bench.XXXXXX")
if [[ -z "${KEEP:-}" ]]; then trap 'rm -rf "$WORK"' EXIT; else echo "keeping $WORK"; fi

(cd "$ROOT" && cargo build --release --bins --quiet)
FS="$ROOT/target/release/flowsentry"
SYNTH="$ROOT/target/release/flowsentry-synth"

gen() { # gen FILE PACKETS HOSTS
    "$SYNTH" mixed -o "$1" --packets "$2" --session-rate "$RATE" --hosts "$3" >/dev/null 2>&1
}

# Per-packet bytes on disk ~375: refuse scaling steps that would not fit (keep 2 GB spare).
fits() { # fits PACKETS -> 0 when a capture of that many packets fits in $WORK
    local need=$(( $1 * 400 / 1024 + 2 * 1024 * 1024 )) free
    free=$(df -Pk "$WORK" | awk 'NR==2 {print $4}')
    (( free > need ))
}

echo "== machine"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB RAM"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "kernel: $(uname -r); $(tcpdump --version 2>&1 | head -1); softflowd $(softflowd -h 2>&1 | grep -o 'version [0-9.]*' | head -1); argus $(argus -h 2>&1 | grep -m1 -o 'Version [0-9.]*' || true)"

MAIN="$WORK/mixed.pcap"
gen "$MAIN" "$PACKETS" "$HOSTS"
cat "$MAIN" >/dev/null # page cache: every tool reads from memory
echo "capture: $PACKETS packets, $RATE new sessions/s, $HOSTS hosts, $(du -h "$MAIN" | cut -f1)"

# The commands compared. softflowd: -r reads the file, -c none = no control socket (with
# one, v1.1.0 blocks in accept() after the first read), no -n = nothing is exported.
declare -a NAMES CMDS
NAMES=(flowsentry-alerts flowsentry-records tcpdump softflowd argus)
CMDS=(
    "$FS replay -q $MAIN"
    "$FS replay -q --records $WORK/records.json $MAIN"
    "tcpdump -r $MAIN -w /dev/null"
    "softflowd -r $MAIN -d -6 -m 262144 -c none -p $WORK/softflowd.pid"
    "argus -r $MAIN -w /dev/null"
)

echo
echo "== replay of $PACKETS packets, $RUNS runs each (hyperfine)"
HF_ARGS=()
for i in "${!NAMES[@]}"; do HF_ARGS+=(-n "${NAMES[$i]}" "${CMDS[$i]}"); done
hyperfine --style basic --warmup 1 --runs "$RUNS" --output null --export-json "$WORK/replay.json" "${HF_ARGS[@]}" >"$WORK/hyperfine.log" 2>&1 ||
    { cat "$WORK/hyperfine.log" >&2; exit 1; }

echo "peak RSS: one extra run of each command under /usr/bin/time"
for i in "${!NAMES[@]}"; do
    # shellcheck disable=SC2086
    /usr/bin/time -o "$WORK/rss.${NAMES[$i]}" -f '%M' ${CMDS[$i]} >/dev/null 2>&1
done

python3 - "$WORK" "$PACKETS" "${NAMES[@]}" <<'PY'
import json, sys, statistics
work, packets, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
res = {r["command"]: r for r in json.load(open(f"{work}/replay.json"))["results"]}
base = res["tcpdump"]["median"]
print(f"| command | median wall s | min-max s | × tcpdump | CPU s (user+sys) | ns/packet (wall) | peak RSS MiB |")
print(f"|---|---:|---:|---:|---:|---:|---:|")
for n in names:
    r = res[n]
    rss = int(open(f"{work}/rss.{n}").read().split()[-1]) / 1024
    print(f"| {n} | {r['median']:.2f} | {r['min']:.2f}-{r['max']:.2f} | {r['median']/base:.2f} | "
          f"{r['user']+r['system']:.2f} | {r['median']*1e9/packets:.0f} | {rss:.0f} |")
PY

echo
echo "== scaling: flowsentry alerts-only, $SCALE_RUNS runs per step (median)"
scale_row() { # scale_row LABEL FILE PACKETS
    local times=() rss
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
    if ! fits "$n"; then
        echo "| $n packets skipped: not enough space in $WORK | | | | | |"
        continue
    fi
    if [[ "$n" == "$PACKETS" ]]; then f="$MAIN"; else f="$WORK/scale.pcap"; gen "$f" "$n" "$HOSTS"; fi
    scale_row "hosts=$HOSTS" "$f" "$n"
    [[ "$f" == "$MAIN" ]] || rm -f "$f"
done
# Ten times more distinct hosts, same packet count.
f="$WORK/hosts.pcap"
gen "$f" "$PACKETS" $(( HOSTS * 10 ))
scale_row "hosts=$(( HOSTS * 10 ))" "$f" "$PACKETS"
rm -f "$f"
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
