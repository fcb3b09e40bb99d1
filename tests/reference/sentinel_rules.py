#!/usr/bin/env python3
"""Independent reference evaluator of the two Microsoft Sentinel ASIM NetworkSession rules
that flowsentry's sentinel mode reproduces (see portscan.kql and beaconing.kql here).

Written from the KQL, not from the Rust detectors, so integration tests can check parity:
    sentinel_rules.py RECORDS.jsonl        -> alerts as sorted JSON lines on stdout
    sentinel_rules.py --self-test          -> hand-built cases
Input: flowsentry's ASIM records, one JSON object per line, read as the rules see them in
the workspace: ingestion into ASimNetworkSessionLogs keeps only the table's columns
(Microsoft's list, copied in tests/data/asim/ASimNetworkSessionLogs.columns.tsv), and the
rules use TimeGenerated (RFC 3339), SrcIpAddr, DstIpAddr, DstPortNumber (may be
absent/null), SrcPortNumber (optional), SrcBytes, DstBytes, which the native parser
(_Im_NetworkSession) passes through unchanged. Python 3 standard library only.

Choices where Kusto leaves the result unspecified (flowsentry makes the same ones):
- make_set order: first-seen in TimeGenerated order (file order among equal times);
- rows equal in all four sort keys of B8: ordered by SrcPortNumber (nulls first), SrcBytes,
  DstBytes ascending;
- arg_max ties in B16: the smallest TimeDeltainSeconds;
- dcount is treated as exact (Kusto's estimate is exact at these small cardinalities);
- the whole file is one query window (the rule's scheduling window is not reproduced).
"""

import calendar
import ipaddress
import json
import os
import sys

US = 1_000_000


def parse_time_us(text):
    """RFC 3339 UTC ('2024-05-01T12:00:00.123456Z') -> integer microseconds since the epoch
    (extra fractional digits are floored, as Kusto's datetime has 100 ns ticks and we
    only compare at microsecond precision)."""
    if not isinstance(text, str) or len(text) < 20:
        raise ValueError(f"bad TimeGenerated {text!r}")
    body = text[:-1] if text.endswith("Z") else text
    if body.endswith("+00:00"):
        body = body[:-6]
    date, _, clock = body.partition("T")
    y, mo, d = (int(x) for x in date.split("-"))
    hms, _, frac = clock.partition(".")
    h, mi, s = (int(x) for x in hms.split(":"))
    micros = int((frac + "000000")[:6]) if frac else 0
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) * US + micros


def format_time_us(us):
    secs, micros = divmod(us, US)
    import time as _t
    tm = _t.gmtime(secs)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (tm[0], tm[1], tm[2], tm[3], tm[4], tm[5], micros)


def ipv4_is_private(addr):
    """Kusto ipv4_is_private(): True/False for IPv4 text, None (null) otherwise."""
    try:
        ip = ipaddress.ip_address(addr)
    except (ValueError, TypeError):
        return None
    if ip.version != 4:
        return None
    return any(ip in ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


def ipv4_is_in_any_range(addr, ranges):
    """Kusto ipv4_is_in_any_range(): None (null) for non-IPv4 text."""
    try:
        ip = ipaddress.ip_address(addr)
    except (ValueError, TypeError):
        return None
    if ip.version != 4:
        return None
    return any(ip in ipaddress.ip_network(r) for r in ranges)


def kusto_bin(us, width_s):
    """bin(TimeGenerated, width): floor to a multiple of width since the epoch."""
    w = width_s * US
    return (us // w) * w


def nulls_first(v):
    return (0, 0) if v is None else (1, v)


TABLE_COLUMNS_TSV = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "asim",
                                 "ASimNetworkSessionLogs.columns.tsv")


def table_columns(path=TABLE_COLUMNS_TSV):
    """Column name -> Kusto type of ASimNetworkSessionLogs (rows marked repo-only are not
    columns: the Azure Monitor page wins over the repository's JSON)."""
    cols = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or line.startswith("column\t") or not line.strip():
                continue
            name, kusto_type, source = line.rstrip("\n").split("\t")
            if source != "repo-only":
                cols[name] = kusto_type
    return cols


def ingest(record, columns):
    """What ASimNetworkSessionLogs stores of a record: its keys that are columns."""
    return {k: v for k, v in record.items() if k in columns}


def load_records(path):
    columns = table_columns()
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                r = ingest(json.loads(line), columns)
                rows.append({
                    "TimeGenerated": parse_time_us(r["TimeGenerated"]),
                    "SrcIpAddr": r["SrcIpAddr"],
                    "DstIpAddr": r["DstIpAddr"],
                    "DstPortNumber": r.get("DstPortNumber"),
                    "SrcPortNumber": r.get("SrcPortNumber"),
                    "SrcBytes": r.get("SrcBytes"),
                    "DstBytes": r.get("DstBytes"),
                })
            except (ValueError, KeyError) as e:
                raise SystemExit(f"{path}:{n}: bad record: {e}")
    return rows


def port_scan(rows, full_sets=None):
    """portscan.kql. If full_sets is a dict, it receives every alert's full distinct port
    set (keyed by (SrcIpAddr, WindowStart)) for the parity checker."""
    threshold = 50  # P1: let PortScanThreshold = 50
    groups = {}
    # P2: records in TimeGenerated order (stable: file order among equal times)
    for r in sorted(rows, key=lambda r: r["TimeGenerated"]):
        # P3: where ipv4_is_private(SrcIpAddr) == False   (null == False is not true)
        if ipv4_is_private(r["SrcIpAddr"]) is not False:
            continue
        # P4: where SrcIpAddr !in ("127.0.0.1", "::1")
        if r["SrcIpAddr"] in ("127.0.0.1", "::1"):
            continue
        # P5: summarize ... by SrcIpAddr, bin(TimeGenerated, 5m)
        key = (r["SrcIpAddr"], kusto_bin(r["TimeGenerated"], 300))
        ports = groups.setdefault(key, [])
        p = r["DstPortNumber"]
        # dcount / make_set ignore nulls
        if p is not None and p not in ports:
            ports.append(p)
    alerts = []
    for (src, window), ports in groups.items():
        count = len(ports)  # P5: AttemptedPortsCount = dcount(DstPortNumber)
        if count > threshold:  # P6: where AttemptedPortsCount > PortScanThreshold
            alerts.append({
                "AlertType": "PortScan",
                "SrcIpAddr": src,
                "WindowStart": format_time_us(window),
                "AttemptedPortsCount": count,
                "AttemptedPorts": ports[:100],  # P5: make_set(DstPortNumber, 100)
            })
            if full_sets is not None:
                full_sets[(src, format_time_us(window))] = set(ports)
    return alerts


def beaconing(rows):
    """beaconing.kql."""
    time_delta_threshold, total_events_threshold, percent_beacon_threshold = 10, 15, 80  # B2
    local_networks = ["169.254.0.0/16", "127.0.0.0/8"]  # B3
    kept = []
    for r in rows:  # B4 (whole file = the query window)
        # B5: where not(ipv4_is_private(DstIpAddr))   (not(null) is null: dropped)
        if ipv4_is_private(r["DstIpAddr"]) is not False:
            continue
        # B6: where not(ipv4_is_in_any_range(DstIpAddr, LocalNetworks))
        if ipv4_is_in_any_range(r["DstIpAddr"], local_networks) is not False:
            continue
        kept.append(r)  # B7: project (columns kept as they are)
    # B8: sort by SrcIpAddr asc, TimeGenerated asc, DstIpAddr asc, DstPortNumber asc
    # (strings compare as strings; nulls first) + the documented tie-break.
    kept.sort(key=lambda r: (r["SrcIpAddr"], r["TimeGenerated"], r["DstIpAddr"], nulls_first(r["DstPortNumber"]),
                             nulls_first(r["SrcPortNumber"]), nulls_first(r["SrcBytes"]), nulls_first(r["DstBytes"])))
    # B9: serialize (row order is now fixed)
    per_delta = {}
    for i, r in enumerate(kept):
        # B10: next(TimeGenerated, 1), next(SrcIpAddr, 1) (null after the last row)
        nxt = kept[i + 1] if i + 1 < len(kept) else None
        # B12: where SrcIpAddr == nextSrcIpAddr   (null: not equal)
        if nxt is None or nxt["SrcIpAddr"] != r["SrcIpAddr"]:
            continue
        # B11: datetime_diff('second', next, this): whole-second boundaries crossed
        delta = nxt["TimeGenerated"] // US - r["TimeGenerated"] // US
        # B13: where TimeDeltainSeconds > TimeDeltaThreshold
        if not delta > time_delta_threshold:
            continue
        # B14 project; B15: summarize count(), sum(DstBytes), sum(SrcBytes)
        #   by TimeDeltainSeconds, bin(TimeGenerated, 1h), SrcIpAddr, DstIpAddr, DstPortNumber
        key = (delta, kusto_bin(r["TimeGenerated"], 3600), r["SrcIpAddr"], r["DstIpAddr"], r["DstPortNumber"])
        agg = per_delta.setdefault(key, {"count_": 0, "sum_DstBytes": 0, "sum_SrcBytes": 0})
        agg["count_"] += 1
        agg["sum_DstBytes"] += r["DstBytes"] or 0  # sum() ignores nulls
        agg["sum_SrcBytes"] += r["SrcBytes"] or 0
    # B16: summarize arg_max(count_, TimeDeltainSeconds), TotalEvents = sum(count_), ...
    #   by bin(TimeGenerated, 1h), SrcIpAddr, DstIpAddr, DstPortNumber
    groups = {}
    for (delta, window, src, dst, dport), agg in sorted(per_delta.items(), key=lambda kv: kv[0][0]):
        g = groups.setdefault((window, src, dst, dport), {
            "MostFrequentTimeDeltaCount": 0, "MostFrequentTimeDeltainSeconds": None,
            "TotalEvents": 0, "TotalSrcBytes": 0, "TotalDstBytes": 0})
        # arg_max: strictly greater replaces, so the smallest delta wins ties (deltas ascending)
        if agg["count_"] > g["MostFrequentTimeDeltaCount"]:
            g["MostFrequentTimeDeltaCount"] = agg["count_"]
            g["MostFrequentTimeDeltainSeconds"] = delta
        g["TotalEvents"] += agg["count_"]
        g["TotalSrcBytes"] += agg["sum_SrcBytes"]
        g["TotalDstBytes"] += agg["sum_DstBytes"]
    alerts = []
    for (window, src, dst, dport), g in groups.items():
        # B17: where TotalEvents > TotalEventsThreshold
        if not g["TotalEvents"] > total_events_threshold:
            continue
        # B18: BeaconPercent = MostFrequentTimeDeltaCount / toreal(TotalEvents) * 100
        percent = g["MostFrequentTimeDeltaCount"] / float(g["TotalEvents"]) * 100
        # B19: where BeaconPercent > PercentBeaconThreshold
        if not percent > percent_beacon_threshold:
            continue
        alert = {"AlertType": "Beaconing", "SrcIpAddr": src, "DstIpAddr": dst, "DstPortNumber": dport,
                 "WindowStart": format_time_us(window), "BeaconPercent": percent}
        alert.update(g)
        alerts.append(alert)
    return alerts


def sort_key(a):
    return (a["AlertType"], a["SrcIpAddr"], a["WindowStart"], a.get("DstIpAddr") or "",
            nulls_first(a.get("DstPortNumber")))


def evaluate(rows, full_sets=None):
    return sorted(port_scan(rows, full_sets) + beaconing(rows), key=sort_key)


def _rec(t_s, src, dst, dport, sb=100, db=200):
    return {"TimeGenerated": int(t_s * US), "SrcIpAddr": src, "DstIpAddr": dst, "DstPortNumber": dport,
            "SrcPortNumber": 50000, "SrcBytes": sb, "DstBytes": db}


def self_test():
    t0 = 1_699_999_200  # an hour (and 5-minute) boundary
    ok = True

    def check(name, cond):
        nonlocal ok
        print(("ok   " if cond else "FAIL ") + name)
        ok = ok and cond

    assert format_time_us(parse_time_us("2023-11-14T22:13:20.123456Z")) == "2023-11-14T22:13:20.123456Z"
    cols = table_columns()
    check("table copy has the rule columns", all(cols.get(c) for c in (
        "TimeGenerated", "SrcIpAddr", "DstIpAddr", "DstPortNumber", "SrcPortNumber", "SrcBytes", "DstBytes")))
    check("ingestion drops non-columns", ingest({"SrcIpAddr": "x", "FlowsentryConnState": "SF"}, cols) == {"SrcIpAddr": "x"})
    scan51 = [_rec(t0 + i * 0.5, "203.0.113.5", "192.0.2.1", 1000 + i) for i in range(51)]
    check("51 ports alert", [a["AttemptedPortsCount"] for a in port_scan(scan51)] == [51])
    check("50 ports do not", port_scan(scan51[:50]) == [])
    icmp = [_rec(t0, "203.0.113.5", "192.0.2.1", None) for _ in range(100)]
    check("null ports count nothing", port_scan(scan51[:50] + icmp) == [])
    for src in ("10.0.0.1", "127.0.0.1", "2001:db8::1"):
        rows = [dict(r, SrcIpAddr=src) for r in scan51]
        check(f"source {src} ignored", port_scan(rows) == [])
    split = [_rec(t0 - 45 + i, "203.0.113.5", "192.0.2.1", 1000 + i) for i in range(90)]
    check("45/45 across a bin boundary: none", port_scan(split) == [])

    beacon17 = [_rec(t0 + 5 + 60 * i, "192.0.2.10", "198.51.100.7", 443) for i in range(17)]
    b = beaconing(beacon17)
    check("17 sessions -> 16 gaps -> alert",
          len(b) == 1 and b[0]["TotalEvents"] == 16 and b[0]["MostFrequentTimeDeltainSeconds"] == 60
          and b[0]["TotalSrcBytes"] == 1600 and b[0]["BeaconPercent"] == 100.0)
    check("16 sessions -> 15 gaps -> none", beaconing(beacon17[:16]) == [])
    follow = beacon17[:16] + [_rec(t0 + 5 + 960, "192.0.2.10", "203.0.113.99", 80)]
    check("16 sessions + later row elsewhere -> alert", len(beaconing(follow)) == 1)
    inter = []
    for i in range(20):
        inter.append(_rec(t0 + 5 + 60 * i, "192.0.2.10", "198.51.100.7", 443))
        inter.append(_rec(t0 + 10 + 60 * i, "192.0.2.10", "203.0.113.8", 443))
    b = beaconing(inter)
    check("interleaved destination takes the gaps",
          len(b) == 1 and b[0]["DstIpAddr"] == "203.0.113.8" and b[0]["MostFrequentTimeDeltainSeconds"] == 55)
    ten = [_rec(t0 + 10 * i, "192.0.2.10", "198.51.100.7", 443) for i in range(40)]
    check("10 s gaps dropped", beaconing(ten) == [])
    frac = [_rec(t0 + 60 * i + (0.9 if i % 2 == 0 else 0.1), "192.0.2.10", "198.51.100.7", 443) for i in range(30)]
    b = beaconing(frac)
    check("datetime_diff floors seconds", len(b) == 1 and b[0]["MostFrequentTimeDeltainSeconds"] == 60)
    for dst in ("10.0.0.5", "169.254.1.1", "127.0.0.5", "2001:db8::5"):
        rows = [dict(r, DstIpAddr=dst) for r in beacon17 * 2]
        check(f"destination {dst} ignored", beaconing(rows) == [])
    return ok


def main(argv):
    if argv[1:] == ["--self-test"]:
        return 0 if self_test() else 1
    if len(argv) != 2:
        print("usage: sentinel_rules.py RECORDS.jsonl | --self-test", file=sys.stderr)
        return 2
    for alert in evaluate(load_records(argv[1])):
        print(json.dumps(alert, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
