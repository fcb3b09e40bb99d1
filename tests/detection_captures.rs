//! The project's own real-tool captures (`captures/`, made by `captures/make-captures.sh`
//! and `captures/make-long-sessions.sh`; ground truth in captures/README.md) replayed in
//! each detector mode, with the expected findings asserted.
//!
//! | Capture | sentinel | enhanced |
//! |---|---|---|
//! | nmap_fin_null_xmas_v4 (`-sF`, `-sN`, `-sX` in a row from 198.51.100.10) | PortScan (public source, 100 ports per 5-min bin) | three findings: FIN, NULL and XMAS scans |
//!
//! The long-session captures, replayed with `--home-net 198.51.100.0/24` (their clients):
//!
//! | Capture | sentinel | enhanced |
//! |---|---|---|
//! | beacon_c2_tcp_persistent (→ 203.0.113.41:4444, one connection) | none (one record) | Beaconing ≈ 15 s inside one session (InSession) |
//! | beacon_http_keepalive (→ 203.0.113.42:80, one connection) | none (one record) | Beaconing ≈ 10 s inside one session |
//! | beacon_udp_fixed_port (→ 203.0.113.43:4000, one 5-tuple) | none (one record) | Beaconing ≈ 12 s inside one session, UDP |
//! | beacon_http_jittered (→ 203.0.113.44:80, 40 connections) | none (no dominant gap) | Beaconing, Pattern Jittered, by the 20th check-in |
//! | benign_tcp_keepalive_idle, benign_interactive, benign_bulk_download, benign_video_stream, benign_tls_session | none | none (also with `--beacon-internal`) |
//!
//! With the default home network (RFC 1918) the clients are outside it and nothing is
//! scored; with the servers inside it, only `--beacon-internal` scores them.

mod detection_common;

use detection_common::*;
use serde_json::Value;
use std::path::PathBuf;

const CLIENTS: [&str; 2] = ["--home-net", "198.51.100.0/24"];

fn capture(name: &str) -> PathBuf {
    let p = repo().join("captures").join(name);
    assert!(p.exists(), "{} is missing (made by the scripts in captures/)", p.display());
    p
}

#[test]
fn three_nmap_stealth_scans_in_a_row_are_three_findings() {
    let p = capture("nmap_fin_null_xmas_v4.pcap");
    let enhanced = replay(&[&p], "enhanced", &[]);
    assert_scans_only_from(&enhanced, "198.51.100.10");
    let kinds: Vec<&str> = enhanced.iter().map(|a| s(a, "ProbeType")).collect();
    assert_eq!(kinds, ["FIN", "NULL", "XMAS"], "{}", brief(&enhanced));
    for a in &enhanced {
        assert_eq!(
            (s(a, "ScanType"), s(a, "DstIpAddr"), s(a, "Severity")),
            ("Vertical", "203.0.113.20", "High"),
            "{a}"
        );
    }
    let sentinel = replay(&[&p], "sentinel", &[]);
    assert_scans_only_from(&sentinel, "198.51.100.10");
}

/// Sentinel: no alert, and parity with the reference evaluator over the records; for a
/// capture of one session, exactly one record (exchanges are not records).
fn sentinel_quiet(name: &str) -> PathBuf {
    let p = capture(name);
    let dir = scratch(&format!("captures-{name}"));
    let alerts = sentinel_parity(&dir, name, &[&p]);
    assert_none(&alerts, &format!("{name}: sentinel"));
    let records = std::fs::read_to_string(dir.join(format!("{name}.records.jsonl"))).unwrap();
    if !name.contains("jittered") {
        assert_eq!(records.lines().count(), 1, "{name}: one session, one record");
    }
    p
}

/// The only enhanced alert is an in-session beacon src → dst:port; returns it.
fn in_session(alerts: &[Value], src: &str, dst: &str, port: u64, proto: &str, interval: f64) -> Value {
    assert_beacons_only(alerts, src, dst, port);
    assert_eq!(alerts.len(), 1, "{}", brief(alerts));
    let a = alerts[0].clone();
    assert_eq!(a["InSession"], true, "{a}");
    assert_eq!(a["Connections"], 1, "one session: {a}");
    assert!(s(&a, "AlertName").ends_with("inside one session"), "{a}");
    assert_eq!(s(&a, "Protocol"), proto, "{a}");
    let got = a["IntervalSeconds"].as_f64().unwrap();
    assert!((got - interval).abs() <= 0.15 * interval, "interval {got} vs {interval}: {a}");
    assert!(a["Exchanges"].as_u64().unwrap() >= 8, "{a}");
    a
}

#[test]
fn persistent_tcp_c2_is_a_beacon_inside_one_session() {
    let p = sentinel_quiet("beacon_c2_tcp_persistent.pcap");
    let a = in_session(&replay(&[&p], "enhanced", &CLIENTS), "198.51.100.41", "203.0.113.41", 4444, "TCP", 15.0);
    // Payload bytes per exchange: 64–80 up, 32–40 down (two tasked check-ins aside).
    let (up, down) = (a["MeanSrcBytes"].as_f64().unwrap(), a["MeanDstBytes"].as_f64().unwrap());
    assert!((60.0..200.0).contains(&up) && (30.0..100.0).contains(&down), "{a}");
    // Default scope: the clients are not in the home network, nothing is scored.
    assert_none(&replay(&[&p], "enhanced", &[]), "default home network");
    // The C2 server inside the home network: only --beacon-internal scores it.
    let both = ["--home-net", "198.51.100.0/24,203.0.113.0/24"];
    assert_none(&replay(&[&p], "enhanced", &both), "internal destination");
    let with: Vec<&str> = both.iter().copied().chain(["--beacon-internal"]).collect();
    in_session(&replay(&[&p], "enhanced", &with), "198.51.100.41", "203.0.113.41", 4444, "TCP", 15.0);
}

#[test]
fn http_keepalive_polling_is_a_beacon_inside_one_session() {
    let p = sentinel_quiet("beacon_http_keepalive.pcap");
    in_session(&replay(&[&p], "enhanced", &CLIENTS), "198.51.100.42", "203.0.113.42", 80, "TCP", 10.0);
}

#[test]
fn fixed_port_udp_beacon_is_a_beacon_inside_one_session() {
    let p = sentinel_quiet("beacon_udp_fixed_port.pcap");
    in_session(&replay(&[&p], "enhanced", &CLIENTS), "198.51.100.43", "203.0.113.43", 4000, "UDP", 12.0);
}

#[test]
fn heavily_jittered_curl_beacon_is_found_on_persistence() {
    let p = sentinel_quiet("beacon_http_jittered.pcap");
    let enhanced = replay(&[&p], "enhanced", &CLIENTS);
    assert_beacons_only(&enhanced, "198.51.100.44", "203.0.113.44", 80);
    assert_eq!(enhanced.len(), 1, "{}", brief(&enhanced));
    let a = &enhanced[0];
    assert_eq!((s(a, "Pattern"), &a["InSession"]), ("Jittered", &Value::Bool(false)), "{a}");
    assert!(a["Connections"].as_u64().unwrap() <= 40, "{a}");
    assert!(a["Persistence"].as_f64().unwrap() >= 0.95 && a["MaxGapRatio"].as_f64().unwrap() < 2.3, "{a}");
    // Without the jittered path, gap regularity alone does not find it.
    let dir = scratch("captures-jitter-off");
    let off = dir.join("off.toml");
    std::fs::write(&off, "[enhanced]\nbeacon_jitter_min_connections = 0\n").unwrap();
    let args: Vec<&str> = CLIENTS.iter().copied().chain(["--config", off.to_str().unwrap()]).collect();
    assert_none(&replay(&[&p], "enhanced", &args), "regularity alone");
}

#[test]
fn benign_long_sessions_are_quiet() {
    for name in [
        "benign_tcp_keepalive_idle.pcap",
        "benign_interactive.pcap",
        "benign_bulk_download.pcap",
        "benign_video_stream.pcap",
        "benign_tls_session.pcap",
    ] {
        let p = sentinel_quiet(name);
        assert_none(&replay(&[&p], "enhanced", &CLIENTS), &format!("{name}: enhanced"));
        let both = ["--home-net", "198.51.100.0/24,203.0.113.0/24", "--beacon-internal"];
        assert_none(&replay(&[&p], "enhanced", &both), &format!("{name}: --beacon-internal"));
    }
}

/// All nine merged into one trace (`mergecap`: they were recorded at the same time, on
/// separate links): each beacon still belongs to its pair, and nothing else alerts.
#[test]
fn all_long_sessions_merged_name_only_the_four_beacons() {
    let names = [
        "beacon_c2_tcp_persistent.pcap",
        "beacon_http_keepalive.pcap",
        "beacon_udp_fixed_port.pcap",
        "beacon_http_jittered.pcap",
        "benign_tcp_keepalive_idle.pcap",
        "benign_interactive.pcap",
        "benign_bulk_download.pcap",
        "benign_video_stream.pcap",
        "benign_tls_session.pcap",
    ];
    let merged = scratch("captures-merged").join("long-sessions.pcap");
    let o = std::process::Command::new("mergecap")
        .arg("-F")
        .arg("pcap")
        .arg("-w")
        .arg(&merged)
        .args(names.iter().map(|n| capture(n)))
        .output()
        .expect("run mergecap (wireshark-common; see tests/install-deps.sh)");
    assert!(o.status.success(), "mergecap: {}", String::from_utf8_lossy(&o.stderr));
    let enhanced = replay(&[&merged], "enhanced", &CLIENTS);
    let mut pairs: Vec<(&str, &str)> = enhanced.iter().map(|a| (s(a, "SrcIpAddr"), s(a, "DstIpAddr"))).collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [
            ("198.51.100.41", "203.0.113.41"),
            ("198.51.100.42", "203.0.113.42"),
            ("198.51.100.43", "203.0.113.43"),
            ("198.51.100.44", "203.0.113.44")
        ],
        "{}",
        brief(&enhanced)
    );
}
