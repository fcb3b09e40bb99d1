#!/usr/bin/env bash
# Where the CPU goes, per thread: samples flowsentry (and tcpdump, for scale) with
# `perf record -e cpu-clock` (a software clock: works in VMs without hardware counters)
# while it replays one benchmark mix, then prints per thread its CPU seconds, ns per
# packet and per session, and its hottest functions. Symbols are resolved here from the
# binary's symbol table (the perf 6.1 in Debian 12 cannot read the ELF headers of
# binaries linked by recent Rust toolchains, "symsrc__init: cannot get elf header").
#
#   benches/profile.sh a                  # mix a, 2 M packets, alerts only
#   RECORDS=1 PACKETS=5000000 benches/profile.sh b
#   FILE=capture.pcap benches/profile.sh  # any capture
#
# Knobs: PACKETS, RECORDS (1: also --records to a file), TOP (functions per thread),
# FLOWSENTRY (binary to profile, default target/release/flowsentry), FILE, WORKDIR.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MIX=${1:-a}
PACKETS=${PACKETS:-2000000}
TOP=${TOP:-12}
for tool in perf nm python3 tcpdump; do
    command -v "$tool" >/dev/null || { echo "benches/profile.sh: $tool is not installed (tests/install-deps.sh bench)" >&2; exit 1; }
done
WORK=$(mktemp -d "${WORKDIR:-/tmp}/flowsentry-profile.XXXXXX")
if [[ -z "${KEEP:-}" ]]; then trap 'rm -rf "$WORK"' EXIT; else echo "keeping $WORK"; fi

if [[ -z "${FLOWSENTRY:-}" ]]; then
    (cd "$ROOT" && cargo build --release --bins --quiet)
    FLOWSENTRY="$ROOT/target/release/flowsentry"
fi
if [[ -n "${FILE:-}" ]]; then
    F=$FILE
else
    F="$WORK/mix.pcap"
    case "$MIX" in
        a) "$ROOT/target/release/flowsentry-synth" mixed -o "$F" --packets "$PACKETS" --session-rate 12500 --hosts 50000 ;;
        b) "$ROOT/target/release/flowsentry-synth" short -o "$F" --packets "$PACKETS" ;;
        c) "$ROOT/target/release/flowsentry-synth" hosts -o "$F" --packets "$PACKETS" ;;
        d) "$ROOT/target/release/flowsentry-synth" bulk -o "$F" --packets "$PACKETS" ;;
        e) "$ROOT/target/release/flowsentry-synth" syn_flood -o "$F" --packets "$PACKETS" ;;
        *) echo "benches/profile.sh: unknown mix '$MIX' (a b c d e)" >&2; exit 1 ;;
    esac 2>&1 | tail -1
fi
cat "$F" >/dev/null

args=(replay -a /dev/null)
[[ -n "${RECORDS:-}" ]] && args+=(--records "$WORK/records.json")
perf record -q -e cpu-clock -F 1999 -o "$WORK/fs.data" -- "$FLOWSENTRY" "${args[@]}" "$F" 2>"$WORK/fs.err" >/dev/null
perf record -q -e cpu-clock -F 1999 -o "$WORK/td.data" -- tcpdump -r "$F" -w /dev/null 2>/dev/null
summary=$(grep -o 'packets read [0-9]*.*' "$WORK/fs.err" || true)
echo "flowsentry ${args[*]} $F: $summary"

for d in fs td; do
    perf report -i "$WORK/$d.data" -n --sort comm,dso,sym --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' >"$WORK/$d.txt" || true
done
nm --defined-only "$FLOWSENTRY" | grep -iE ' [tw] ' | sort >"$WORK/syms"
readelf -SW "$FLOWSENTRY" | awk '$2 == ".text" {print $4, $5}' >"$WORK/text"

python3 - "$WORK" "$TOP" "$summary" <<'PY'
import bisect, re, subprocess, sys
from collections import defaultdict
work, top, summary = sys.argv[1], int(sys.argv[2]), sys.argv[3]
num = lambda key: int(re.search(key + r" (\d+)", summary).group(1)) if re.search(key + r" (\d+)", summary) else 0
packets, sessions = num("packets read"), num("sessions")
vaddr, off = (int(x, 16) for x in open(f"{work}/text").read().split())
syms = []
for line in open(f"{work}/syms"):
    a, _, name = line.rstrip("\n").split(" ", 2)
    syms.append((int(a, 16), name))
syms.sort()
addrs = [a for a, _ in syms]
names = [n for _, n in syms]
demangle = {}
def resolve(hexaddr):
    a = int(hexaddr, 16) + (vaddr - off)  # perf prints file offsets for DSOs it cannot read
    i = bisect.bisect_right(addrs, a) - 1
    return names[i] if i >= 0 else hexaddr
def parse(path):
    rows = []
    for line in open(path):
        m = re.match(r"\s*[\d.]+%\s+(\d+)\s+(\S+)\s+(\S+)\s+\[(.)\]\s+(.*)$", line)
        if not m:
            continue
        samples, comm, dso, kind, sym = int(m.group(1)), m.group(2), m.group(3), m.group(4), m.group(5).strip()
        if dso == "flowsentry" and sym.startswith("0x"):
            sym = resolve(sym)
        if kind == "k":
            sym = "[kernel] " + sym
        rows.append((comm, sym, samples))
    return rows
fs, td = parse(f"{work}/fs.txt"), parse(f"{work}/td.txt")
mangled = sorted({s for _, s, _ in fs if s.startswith("_R") or s.startswith("_ZN")})
if mangled:
    out = subprocess.run(["c++filt"], input="\n".join(mangled), capture_output=True, text=True).stdout.split("\n")
    demangle = dict(zip(mangled, out))
period = 1 / 1999  # seconds per sample
per_thread, per_fn = defaultdict(int), defaultdict(lambda: defaultdict(int))
for comm, sym, n in fs:
    per_thread[comm] += n
    name = demangle.get(sym, sym)
    name = re.sub(r"::h[0-9a-f]{16}$", "", name)
    per_fn[comm][name] += n
total = sum(per_thread.values())
td_total = sum(n for _, _, n in td)
print(f"\nCPU: flowsentry {total * period:.2f} s ({total * period * 1e9 / max(packets, 1):.0f} ns/packet), "
      f"tcpdump {td_total * period:.2f} s ({td_total * period * 1e9 / max(packets, 1):.0f} ns/packet); "
      f"{packets:,} packets, {sessions:,} sessions")
print("\n| thread | CPU s | share | ns/packet | ns/session |")
print("|---|---:|---:|---:|---:|")
for comm, n in sorted(per_thread.items(), key=lambda kv: -kv[1]):
    s = n * period
    print(f"| {comm} | {s:.2f} | {100 * n / total:.0f} % | {s * 1e9 / max(packets, 1):.0f} | {s * 1e9 / max(sessions, 1):.0f} |")
for comm, n in sorted(per_thread.items(), key=lambda kv: -kv[1]):
    if n < total * 0.03:
        continue
    print(f"\n{comm}: hottest functions (share of the thread)")
    for name, k in sorted(per_fn[comm].items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {100 * k / n:5.1f} %  {name[:150]}")
PY
