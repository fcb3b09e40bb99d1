#!/usr/bin/env bash
# Checks that a speed change kept the output byte-identical: replays every benchmark mix
# (a–e, smaller than benches/run.sh's) and every real capture in ../shared/pcaps with
# two flowsentry builds, records and alerts, and compares them with cmp. Exit status 1
# on any difference.
#
#   cp target/release/flowsentry /tmp/flowsentry-before    # before the change
#   ... change, cargo build --release ...
#   benches/same-output.sh /tmp/flowsentry-before target/release/flowsentry
#
# Knobs: PACKETS (per mix, default 1 M; e uses 1 M SYNs too), WORKDIR.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OLD=${1:?usage: benches/same-output.sh OLD_FLOWSENTRY NEW_FLOWSENTRY}
NEW=${2:?usage: benches/same-output.sh OLD_FLOWSENTRY NEW_FLOWSENTRY}
PACKETS=${PACKETS:-1000000}
WORK=$(mktemp -d "${WORKDIR:-/tmp}/flowsentry-same.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
(cd "$ROOT" && cargo build --release --bin flowsentry-synth --quiet)
SYNTH="$ROOT/target/release/flowsentry-synth"

declare -a FILES=()
for mix in mixed short hosts bulk syn_flood; do
    f="$WORK/$mix.pcap"
    case $mix in
        mixed) "$SYNTH" mixed -o "$f" --packets "$PACKETS" --session-rate 12500 --hosts 50000 2>/dev/null ;;
        hosts) "$SYNTH" hosts -o "$f" --packets "$PACKETS" --session-rate 20 2>/dev/null ;;
        *) "$SYNTH" "$mix" -o "$f" --packets "$PACKETS" 2>/dev/null ;;
    esac
    FILES+=("$f")
done
for f in "$ROOT"/../shared/pcaps/*.pcap "$ROOT"/../shared/pcaps/*.pcapng; do [[ -e $f ]] && FILES+=("$f"); done

fail=0
for f in "${FILES[@]}"; do
    for bin in OLD NEW; do
        rm -f "$WORK/$bin.alerts" "$WORK/$bin.records" # the outputs append
        "${!bin}" replay -q --sensor-name same-output -a "$WORK/$bin.alerts" --records "$WORK/$bin.records" "$f" \
            2>"$WORK/$bin.err" || true
    done
    name=$(basename "$f")
    if cmp -s "$WORK/OLD.alerts" "$WORK/NEW.alerts" && cmp -s "$WORK/OLD.records" "$WORK/NEW.records" &&
        cmp -s "$WORK/OLD.err" "$WORK/NEW.err"; then
        echo "same: $name ($(wc -l <"$WORK/NEW.records") records, $(wc -l <"$WORK/NEW.alerts") alerts)"
    else
        echo "DIFFERENT: $name"
        cmp "$WORK/OLD.alerts" "$WORK/NEW.alerts" || true
        cmp "$WORK/OLD.records" "$WORK/NEW.records" || true
        cmp "$WORK/OLD.err" "$WORK/NEW.err" || true
        fail=1
    fi
done
exit $fail
