//! Many sensors, one workspace: a capture split by flow across two sensor instances (as a
//! packet broker load-balancing by flow would feed them) gives, over the union of their
//! records, the same seed-rule alerts as one sensor over the whole capture (the reference
//! evaluation of the two Sentinel rules, tests/reference/sentinel_rules.py); every
//! sensor's own sentinel-mode alerts match the rules over its own records; and
//! `NetworkSessionId`s never collide across the sensors.

mod detection_common;

use detection_common::*;
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs tests/fleet/split_by_flow.py (`by`: `flow` or `pair`); returns the two halves
/// and their packet counts.
fn split_by(dir: &Path, capture: &Path, by: &str) -> ([PathBuf; 2], [u64; 2]) {
    let halves = [dir.join(format!("a-{by}.pcap")), dir.join(format!("b-{by}.pcap"))];
    let o = Command::new("python3")
        .arg(repo().join("tests/fleet/split_by_flow.py"))
        .args(["--by", by])
        .arg(capture)
        .args(&halves)
        .output()
        .expect("run python3");
    assert!(o.status.success(), "split_by_flow.py {}: {}", capture.display(), String::from_utf8_lossy(&o.stderr));
    let counts: Vec<u64> =
        String::from_utf8_lossy(&o.stdout).split_whitespace().map(|n| n.parse().expect("packet count")).collect();
    (halves, [counts[0], counts[1]])
}

fn split(dir: &Path, capture: &Path) -> ([PathBuf; 2], [u64; 2]) {
    split_by(dir, capture, "flow")
}

fn packets(capture: &Path) -> u64 {
    let o = Command::new("capinfos").args(["-c", "-M"]).arg(capture).output().expect("run capinfos (wireshark-common)");
    let text = String::from_utf8_lossy(&o.stdout);
    let line = text.lines().find(|l| l.starts_with("Number of packets")).expect("capinfos packet count");
    line.rsplit(' ').next().unwrap().trim().parse().expect("packet count")
}

struct Sensor {
    records: PathBuf,
    alerts: PathBuf,
}

/// One sensor instance: `flowsentry replay --sensor-name NAME` with both outputs to files.
fn sensor(dir: &Path, name: &str, capture: &Path) -> Sensor {
    let s =
        Sensor { records: dir.join(format!("{name}.records.jsonl")), alerts: dir.join(format!("{name}.alerts.jsonl")) };
    let o = Command::new(flowsentry())
        .args(["replay", "--quiet", "--sensor-name", name, "--records"])
        .arg(&s.records)
        .arg("--alerts")
        .arg(&s.alerts)
        .arg(capture)
        .output()
        .expect("run flowsentry");
    assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
    s
}

fn lines(path: &Path) -> Vec<Value> {
    json_lines(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn session_ids(records: &[Value]) -> Vec<String> {
    records.iter().map(|r| r["NetworkSessionId"].as_str().expect("NetworkSessionId is a string").to_owned()).collect()
}

/// The sensor a record names.
fn dvc(r: &Value) -> &str {
    r["Dvc"].as_str().unwrap_or_default()
}

/// Splits `capture`, runs one sensor on the whole and one on each half, and checks the
/// fleet's promises; returns how many seed-rule alerts the workspace would raise.
fn check_fleet(name: &str, capture: &Path) -> usize {
    let dir = scratch(&format!("fleet-{name}"));
    let (halves, counts) = split(&dir, capture);
    assert_eq!(counts[0] + counts[1], packets(capture), "{name}: every packet goes to exactly one half");

    let whole = sensor(&dir, "whole", capture);
    let fleet = [sensor(&dir, "sensor-a", &halves[0]), sensor(&dir, "sensor-b", &halves[1])];

    // Both directions of every flow went to one half: no session is cut in two.
    let whole_records = lines(&whole.records);
    // With a handful of sessions or more, both sensors get some (a one-session capture
    // rightly goes to one of them).
    if whole_records.len() >= 10 {
        assert!(counts[0] > 0 && counts[1] > 0, "{name}: a half is empty: {counts:?}");
    }
    let fleet_records: Vec<Vec<Value>> = fleet.iter().map(|s| lines(&s.records)).collect();
    assert_eq!(
        fleet_records[0].len() + fleet_records[1].len(),
        whole_records.len(),
        "{name}: the halves' sessions do not add up to the whole's"
    );

    // NetworkSessionIds: unique within each sensor and never shared between sensors.
    let mut seen: HashSet<String> = HashSet::new();
    for (records, who) in [(&fleet_records[0], "sensor-a"), (&fleet_records[1], "sensor-b"), (&whole_records, "whole")]
    {
        for id in session_ids(records) {
            assert!(seen.insert(id.clone()), "{name}: NetworkSessionId {id} of {who} collides");
        }
    }
    for (records, who) in [(&fleet_records[0], "sensor-a"), (&fleet_records[1], "sensor-b")] {
        assert!(records.iter().all(|r| dvc(r) == who), "{name}: a record of {who} names another sensor");
    }

    // The workspace: the two seed rules over the union of the sensors' records raise
    // exactly the alerts they raise over one sensor's records of the whole capture.
    let union = dir.join("union.records.jsonl");
    let mut text = std::fs::read_to_string(&fleet[0].records).unwrap();
    text.push_str(&std::fs::read_to_string(&fleet[1].records).unwrap());
    std::fs::write(&union, text).unwrap();
    let reference = |p: &Path| -> BTreeSet<String> {
        json_lines(&python("sentinel_rules.py", &[p])).iter().map(|a| a.to_string()).collect()
    };
    let (over_whole, over_union) = (reference(&whole.records), reference(&union));
    assert_eq!(over_union, over_whole, "{name}: the seed rules see the fleet's union differently from one sensor");

    // Each sensor's sentinel mode is exact over its own records.
    for s in fleet.iter().chain([&whole]) {
        python("compare.py", &[&s.records, &s.alerts]);
    }
    over_whole.len()
}

#[test]
fn the_seed_rules_over_two_sensors_records_equal_one_sensor_over_the_whole_capture() {
    let dir = scratch("fleet-captures");
    // Every bundled capture (scans, beacons, long sessions), then synthetic scenarios.
    let mut captures: Vec<(String, PathBuf)> = std::fs::read_dir(repo().join("captures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    captures.sort();
    assert!(captures.iter().any(|(n, _)| n == "demo"), "captures/demo.pcap");
    // A UDP scan answered by ICMP unreachables (errors must follow their session), an
    // exact beacon, and a beacon hidden in browsing (the rule's gaps cross destinations).
    for scenario in ["udp_scan_icmp", "beacon_60s_exact", "beacon_45s_with_browsing", "public_syn_scan"] {
        captures.push((scenario.into(), synth(&dir, scenario, &[])));
    }
    let mut alerts = 0;
    for (name, capture) in &captures {
        let n = check_fleet(name, capture);
        eprintln!("{name}: {n} seed-rule alert(s) over the whole capture and over the fleet's union");
        alerts += n;
    }
    assert!(alerts >= 4, "the comparison must not be empty: {alerts} alerts in all");
}

#[test]
fn the_splitter_keeps_icmp_errors_with_the_session_they_quote() {
    // Every ICMP unreachable of the UDP scan lands in the half holding the probe it
    // quotes: each sensor attributes all its errors, so no record is an ICMP session.
    let dir = scratch("fleet-icmp");
    let capture = synth(&dir, "udp_scan_icmp", &[]);
    let (halves, _) = split(&dir, &capture);
    let mut errors = 0;
    for (i, half) in halves.iter().enumerate() {
        let s = sensor(&dir, &format!("half{i}"), half);
        for r in lines(&s.records) {
            assert_ne!(r["NetworkProtocol"], "ICMP", "an ICMP error was split from its session: {r}");
            errors += r["AdditionalFields"]["IcmpErrors"].as_u64().unwrap_or(0);
        }
    }
    assert!(errors > 100, "the scan's ICMP errors were attributed ({errors})");
}

/// An alert without what names its sensor and sessions (which differ by design).
fn finding(a: &Value) -> String {
    let mut a = a.clone();
    for k in ["AlertId", "Dvc", "NetworkSessionIds"] {
        a.as_object_mut().unwrap().remove(k);
    }
    a.to_string()
}

#[test]
fn with_ip_pair_balancing_each_beacon_stays_on_one_sensor() {
    // Every beacon session has a new source port: balanced by 5-tuple, a beacon's
    // sessions spread over both sensors and neither sees its rhythm; balanced by host
    // pair, one sensor sees them all and raises the alerts one sensor on the whole would.
    let dir = scratch("fleet-pair");
    let mut enhanced_beacons = 0;
    for scenario in ["beacon_60s_exact", "beacon_45s_with_browsing"] {
        let capture = synth(&dir, scenario, &[]);
        let whole = sensor(&dir, &format!("{scenario}-whole"), &capture);
        let beacons = |alerts: &[Value]| -> BTreeSet<String> {
            alerts
                .iter()
                .filter(|a| a["AlertType"] == "Beaconing" && a["DetectionMode"] == "enhanced")
                .map(finding)
                .collect()
        };
        let want = beacons(&lines(&whole.alerts));
        assert!(!want.is_empty(), "{scenario}: the whole capture has an enhanced beacon");
        enhanced_beacons += want.len();

        let (halves, _) = split_by(&dir, &capture, "pair");
        let mut got = BTreeSet::new();
        for (i, half) in halves.iter().enumerate() {
            got.extend(beacons(&lines(&sensor(&dir, &format!("{scenario}-pair{i}"), half).alerts)));
        }
        assert_eq!(got, want, "{scenario}: the pair-balanced fleet's enhanced beacons differ from the whole's");

        let (halves, _) = split_by(&dir, &capture, "flow");
        let mut by_flow = BTreeSet::new();
        for (i, half) in halves.iter().enumerate() {
            by_flow.extend(beacons(&lines(&sensor(&dir, &format!("{scenario}-flow{i}"), half).alerts)));
        }
        assert_ne!(by_flow, want, "{scenario}: 5-tuple balancing was expected to break the beacon up");
    }
    assert!(enhanced_beacons >= 2);
}
