#!/usr/bin/env python3
"""Parity check: flowsentry's sentinel-mode alerts against the reference evaluator.

    compare.py RECORDS.jsonl ALERTS.jsonl

RECORDS.jsonl: flowsentry's ASIM records; ALERTS.jsonl: flowsentry's alerts (lines whose
DetectionMode is not "sentinel" are ignored). Prints every difference and exits 1 if any.

Keys: PortScan (SrcIpAddr, WindowStart); Beaconing (SrcIpAddr, WindowStart, DstIpAddr,
DstPortNumber). The alert sets must be equal. Beaconing count fields must be equal
(BeaconPercent within 1e-9). flowsentry raises a port scan the moment the 51st distinct port
of a bin arrives, so its AttemptedPortsCount must be > 50 and <= the query's final count, and
its AttemptedPorts must be that many distinct ports, all in the bin's full distinct set.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sentinel_rules  # noqa: E402

BEACON_FIELDS = ("TotalEvents", "MostFrequentTimeDeltaCount", "MostFrequentTimeDeltainSeconds",
                 "TotalSrcBytes", "TotalDstBytes")


def key(a):
    if a["AlertType"] == "PortScan":
        return ("PortScan", a["SrcIpAddr"], a["WindowStart"])
    return ("Beaconing", a["SrcIpAddr"], a["WindowStart"], a.get("DstIpAddr"), a.get("DstPortNumber"))


def load_alerts(path):
    out = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                a = json.loads(line)
            except ValueError as e:
                raise SystemExit(f"{path}:{n}: not JSON: {e}")
            if a.get("DetectionMode") != "sentinel":
                continue
            k = key(a)
            if k in out:
                raise SystemExit(f"{path}:{n}: duplicate alert {k}")
            out[k] = a
    return out


def differences(records_path, alerts_path):
    full_sets = {}
    expected = {key(a): a for a in sentinel_rules.evaluate(sentinel_rules.load_records(records_path), full_sets)}
    actual = load_alerts(alerts_path)
    diffs = []
    for k in sorted(expected.keys() - actual.keys(), key=repr):
        diffs.append(f"missing (query alerts, flowsentry does not): {k} {json.dumps(expected[k], sort_keys=True)}")
    for k in sorted(actual.keys() - expected.keys(), key=repr):
        diffs.append(f"extra (flowsentry alerts, query does not): {k}")
    for k in sorted(expected.keys() & actual.keys(), key=repr):
        e, a = expected[k], actual[k]
        if k[0] == "PortScan":
            count, ports = a.get("AttemptedPortsCount"), a.get("AttemptedPorts")
            full = full_sets[(k[1], k[2])]
            if not isinstance(count, int) or not 50 < count <= e["AttemptedPortsCount"]:
                diffs.append(f"{k}: AttemptedPortsCount {count} not in (50, {e['AttemptedPortsCount']}]")
            if not isinstance(ports, list) or len(set(ports)) != len(ports) or len(ports) != count:
                diffs.append(f"{k}: AttemptedPorts is not {count} distinct ports: {ports}")
            elif not set(ports) <= full:
                diffs.append(f"{k}: AttemptedPorts not seen by the query: {sorted(set(ports) - full)}")
        else:
            for field in BEACON_FIELDS:
                if a.get(field) != e[field]:
                    diffs.append(f"{k}: {field} flowsentry={a.get(field)} query={e[field]}")
            bp = a.get("BeaconPercent")
            if not isinstance(bp, (int, float)) or abs(bp - e["BeaconPercent"]) > 1e-9:
                diffs.append(f"{k}: BeaconPercent flowsentry={bp} query={e['BeaconPercent']}")
    return diffs, len(expected)


def main(argv):
    if len(argv) != 3:
        print("usage: compare.py RECORDS.jsonl ALERTS.jsonl", file=sys.stderr)
        return 2
    diffs, n = differences(argv[1], argv[2])
    for d in diffs:
        print(d)
    if diffs:
        print(f"{len(diffs)} difference(s)", file=sys.stderr)
        return 1
    print(f"parity: {n} sentinel alert(s) match")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
