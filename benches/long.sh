#!/usr/bin/env bash
# Long-run benchmark: a capture spanning 24 h of traffic time (the host-count stress mix,
# c, at a modest session rate: ~1 M distinct external sources over the day), replayed
# with a stats line every 10 minutes of capture time. Prints memory (resident set)
# against capture time, hour by hour, and checks that peak RSS stays flat after warm-up
# (within 10 % of its value at the end of the warm-up) and that every table stays within
# its cap. Warm-up ends when the detector tables are full and their contents have settled:
# the first stats line after the first detector eviction at which the tables' estimated
# memory (`detector_memory.estimated_bytes`) grew less than 5 % over the hour before —
# until then memory may grow, by design, up to the caps: a full series table still fills
# its rings for hours. Or after WARMUP_HOURS if given. Exit status 1 if a check fails.
#
#   benches/long.sh                       # 24 h of mix c at 15 sessions/s (~6.5 M packets)
#   HOURS=6 RATE=30 MIX=short benches/long.sh
#
# Knobs: HOURS, RATE (sessions/s), HOSTS (external source population), MIX (hosts, short,
# bulk), WARMUP_HOURS (default: when the tables are full), INTERVAL (stats interval, capture seconds), WORKDIR.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
HOURS=${HOURS:-24}
RATE=${RATE:-15}
HOSTS=${HOSTS:-1000000}
MIX=${MIX:-hosts}
WARMUP_HOURS=${WARMUP_HOURS:-auto}
INTERVAL=${INTERVAL:-600}

WORK=$(mktemp -d "${WORKDIR:-/tmp}/flowsentry-long.XXXXXX")
if [[ -z "${KEEP:-}" ]]; then trap 'rm -rf "$WORK"' EXIT; else echo "keeping $WORK"; fi

(cd "$ROOT" && cargo build --release --bins --quiet)
FS="$ROOT/target/release/flowsentry"
SYNTH="$ROOT/target/release/flowsentry-synth"

secs=$(python3 -c "print(int($HOURS * 3600))")
echo "== generating $HOURS h of mix '$MIX' at $RATE sessions/s"
"$SYNTH" "$MIX" -o "$WORK/long.pcap" --packets 1000000000 --session-rate "$RATE" --hosts "$HOSTS" \
    --duration "$secs" 2>&1 >/dev/null | tail -1
echo "capture: $(du -h "$WORK/long.pcap" | cut -f1)"

echo "== flowsentry replay --stats-interval $INTERVAL (alerts only, default settings)"
/usr/bin/time -o "$WORK/time" -f '%e %U %S %M' "$FS" replay --stats-interval "$INTERVAL" -a "$WORK/alerts.json" \
    "$WORK/long.pcap" 2>"$WORK/stderr" >/dev/null
grep -v '"type":"stats"' "$WORK/stderr" | sed 's/^/  /' || true
read -r wall user sys maxrss <"$WORK/time"
echo "wall ${wall} s, CPU $(python3 -c "print(round($user + $sys, 2))") s, peak RSS $((maxrss / 1024)) MiB (/usr/bin/time)"

python3 - "$WORK/stderr" "$WARMUP_HOURS" "$INTERVAL" <<'PY'
import json, sys
path, warmup, interval = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = [json.loads(l[l.index("{"):]) for l in open(path) if '"type":"stats"' in l]
if not lines:
    sys.exit("no stats lines: is --stats-interval supported by this build?")
MAX_FLOWS = 131072  # --max-flows default
per_hour = max(1, 3600 // interval)
def table_bytes(s):
    return (s.get("detector_memory") or {}).get("estimated_bytes")
def table_mib(s):
    b = table_bytes(s)
    return "–" if b is None else f"{b / 2**20:.1f}"
print()
print("| capture time | hours | packets read | active sessions | tracked sources | tracked series | detector evictions | detector tables MiB (estimate) | RSS MiB | peak RSS MiB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for i, s in enumerate(lines):
    if (i + 1) % per_hour and i != len(lines) - 1:
        continue
    print(f"| {s['capture_time'][:16]}Z | {(i + 1) * interval / 3600:.1f} | {s['packets_read']:,} | {s['active_sessions']:,} | "
          f"{s['tracked_sources']:,} | {s['tracked_series']:,} | {s['detector_evictions']:,} | {table_mib(s)} | "
          f"{s['rss_bytes'] / 2**20:.0f} | {s['peak_rss_bytes'] / 2**20:.0f} |")
ok = True
if warmup == "auto":
    full = next((i for i, s in enumerate(lines) if s["detector_evictions"] > 0), None)
    if full is None:
        sys.exit("the detector tables never filled up: make the capture longer or busier (warm-up not reached)")
    def settled(i):
        now, before = table_bytes(lines[i]), table_bytes(lines[max(0, i - per_hour)])
        return now is None or before is None or now < before * 1.05  # builds without the estimate: full is enough
    warm = next((i for i in range(max(full, per_hour), len(lines)) if settled(i)), None)
    if warm is None:
        sys.exit("the detector tables never settled (estimated memory still growing 5 %/h): make the capture longer")
    how = f"tables full at {(full + 1) * interval / 3600:.1f} h, contents settled"
else:
    warm, how = int(float(warmup) * 3600 // interval) - 1, "fixed"
if warm >= len(lines) - 1:
    sys.exit(f"capture too short for the warm-up")
warmup_h = (warm + 1) * interval / 3600
base = lines[warm]["peak_rss_bytes"]
peak = max(s["peak_rss_bytes"] for s in lines)
growth = peak / base - 1
print()
print(f"peak RSS after the warm-up ({warmup_h:.1f} h, {how}): {base / 2**20:.0f} MiB; at the end: {peak / 2**20:.0f} MiB "
      f"({growth * 100:+.1f} %, limit +10 %)")
ok &= growth <= 0.10
over = [s["capture_time"] for s in lines if s["active_sessions"] > MAX_FLOWS]
print(f"flow table within its cap ({MAX_FLOWS}): {'yes' if not over else 'NO at ' + over[0]}")
ok &= not over
tables = [t for s in lines for t in s.get("detector_tables", [])]
if tables:
    bad = [t for t in tables if t.get("cap") is not None and t["entries"] > t["cap"]]
    caps = sorted({(t["detector"], t["table"], t["cap"]) for t in lines[-1]["detector_tables"]}, key=str)
    for d, t, c in caps:
        most = max(x["entries"] for x in tables if (x["detector"], x["table"]) == (d, t))
        print(f"  {d} {t}: at most {most:,} entries (cap {c if c is not None else 'none'})")
    print(f"detector tables within their caps: {'yes' if not bad else 'NO: ' + str(bad[0])}")
    ok &= not bad
else:
    print("detector tables: this build's stats lines have no per-table caps (tracked totals above)")
sys.exit(0 if ok else 1)
PY
