//! The host-count stress mix (benchmark mix c) end to end: more external sources and
//! outbound series than the detector tables hold, and the planted scanner and beacons must
//! still be found by both families; and the capture-time stats lines a replay prints with
//! `--stats-interval` (what the long-run benchmark plots memory from).

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

fn synth(args: &[&str], out: &Path) {
    let o = Command::new(env!("CARGO_BIN_EXE_flowsentry-synth")).args(args).arg("-o").arg(out).output().unwrap();
    assert!(o.status.success(), "flowsentry-synth failed: {}", String::from_utf8_lossy(&o.stderr));
}

fn found(alerts: &[serde_json::Value], mode: &str, kind: &str, src: &str, dst: Option<&str>) -> bool {
    alerts.iter().any(|a| {
        a["DetectionMode"] == mode
            && a["AlertType"] == kind
            && a["SrcIpAddr"] == src
            && dst.map_or(true, |d| a["DstIpAddr"] == d)
    })
}

#[test]
fn planted_scanner_and_beacons_are_found_when_the_population_overflows_the_tables() {
    let dir = scratch("host-stress");
    let pcap = dir.join("hosts.pcap");
    // ~65 k distinct external sources and ~12 k outbound series over 67 min of traffic.
    synth(&["hosts", "--packets", "400000", "--session-rate", "20"], &pcap);
    let cfg = dir.join("small-tables.toml");
    std::fs::write(&cfg, "[enhanced]\nscan_max_sources = 4096\nbeacon_max_series = 4096\n").unwrap();
    let out = run(&["replay", "-c", cfg.to_str().unwrap(), pcap.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = stderr(&out);
    let evictions: u64 = summary
        .split("detector evictions ")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no detector evictions in the summary: {summary}"));
    assert!(evictions > 50_000, "the tables did not overflow: {evictions} evictions");
    let alerts = json_lines(&stdout(&out));
    let scanner = "203.0.113.66";
    assert!(found(&alerts, "enhanced", "PortScan", scanner, None), "enhanced missed the scanner: {alerts:?}");
    assert!(found(&alerts, "sentinel", "PortScan", scanner, None), "sentinel missed the scanner");
    for (implant, c2) in [("10.1.0.20", "203.0.113.50"), ("10.1.0.21", "203.0.113.51")] {
        assert!(found(&alerts, "enhanced", "Beaconing", implant, Some(c2)), "enhanced missed beacon {implant}");
    }
    assert!(found(&alerts, "sentinel", "Beaconing", "10.1.0.20", Some("203.0.113.50")), "sentinel missed the beacon");
    // Nothing else: the radiation and the busy services raise no alert.
    assert_eq!(alerts.len(), 5, "unexpected alerts: {alerts:#?}");
}

#[test]
fn replay_stats_interval_prints_lines_in_capture_time_with_memory() {
    let dir = scratch("replay-stats");
    let pcap = dir.join("hosts.pcap");
    synth(&["hosts", "--packets", "60000", "--session-rate", "20"], &pcap); // ~10 min
    let lines = |extra: &[&str]| {
        let mut args = vec!["replay", "-q", "-a", "/dev/null"];
        args.extend_from_slice(extra);
        args.push(pcap.to_str().unwrap());
        let out = run(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        json_lines(&stderr(&out))
    };
    let stats = lines(&["--stats-interval", "60"]);
    // The capture starts on a minute boundary and spans ~10 minutes: one line per minute
    // crossed after the first packet.
    assert!((9..=11).contains(&stats.len()), "{} stats lines", stats.len());
    let mut last_packets = 0;
    for (i, s) in stats.iter().enumerate() {
        assert_eq!(s["type"], "stats");
        let t = s["capture_time"].as_str().unwrap();
        assert!(t.starts_with(&format!("2024-05-01T12:{:02}:00", i + 1)), "line {i} at {t}");
        let packets = s["packets_read"].as_u64().unwrap();
        assert!(packets > last_packets, "packets_read does not grow: {stats:?}");
        last_packets = packets;
        assert!(s["rss_bytes"].as_u64().unwrap() > 1 << 20);
        assert!(s["peak_rss_bytes"].as_u64().unwrap() >= s["rss_bytes"].as_u64().unwrap());
    }
    // Capture time, not wall time: the same lines (packet counts) on every run.
    let again: Vec<u64> =
        lines(&["--stats-interval", "60"]).iter().map(|s| s["packets_read"].as_u64().unwrap()).collect();
    assert_eq!(again, stats.iter().map(|s| s["packets_read"].as_u64().unwrap()).collect::<Vec<_>>());
    // Without the flag a replay prints no stats line.
    assert!(lines(&[]).is_empty());
}
