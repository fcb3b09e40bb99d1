//! Issue 3 "must show": every synthetic scenario of `flowsentry-synth` replayed through
//! the built binary in each detector mode, with the expected alerts asserted per mode
//! (and sentinel-mode parity with the reference evaluator over the emitted records).
//!
//! Expected outcome per scenario (seed 1; verified here, not the generator's guesses):
//!
//! | Scenario | `--rules sentinel` | `--rules enhanced` | Why |
//! |---|---|---|---|
//! | public_syn_scan (203.0.113.66, 200 ports) | PortScan 203.0.113.66 | Vertical SYN scan, Tool nmap, dst 10.1.0.5 | both: > 50 ports in a 5-min bin / failed targets |
//! | internal_syn_scan (10.1.0.66) | none | Vertical SYN scan, Tool nmap | KQL keeps only non-private sources |
//! | scan_split_boundary (45 + 45 ports) | none | Vertical SYN scan 198.51.100.23 | each 5-min bin holds 45 ≤ 50 ports; enhanced uses a sliding window |
//! | horizontal_sweep (port 22 × 254 hosts) | none | Horizontal SYN scan, DstPortNumber 22 | KQL counts distinct ports only (1) |
//! | udp_scan_icmp (200 UDP ports, ICMP unreachable) | PortScan 203.0.113.88 | Vertical UDP scan | every record counts for the KQL; ICMP errors are failures |
//! | ipv6_scan (2001:db8:bad::66) | none | Vertical SYN scan | Kusto `ipv4_is_private` is null for IPv6, the row is dropped |
//! | stealth_scans (FIN/NULL/XMAS, 100 ports each) | PortScan ×3 (.101, .102, .103) | FIN, NULL, XMAS scans (one per source) | 100 ports each; stealth flags fail by definition |
//! | masscan_like (100 ports × 16 hosts) | PortScan 203.0.113.120 | Mixed SYN scan, Tool masscan | masscan IP-ID cookie |
//! | zmap_like (443 × 254 hosts) | none | Horizontal SYN scan, Tool zmap, port 443 | one port; IP ID 54321 |
//! | nat_many_sessions (2000 sessions, one service) | none | none | one port; all successes |
//! | busy_public_server | none | none | clients use one port each; successes / mid-session |
//! | midstream_downloads | none | none | ACK-bearing first packets are not attempts |
//! | dns_resolver | none | none | one port per source; answered |
//! | beacon_60s_exact (10.1.0.20 → 203.0.113.50:443) | Beaconing, gap 60 s (one per hour bin) | Beaconing, interval 60 s | one dominant gap |
//! | beacon_60s_jitter20 | none | Beaconing | no single whole-second gap reaches 80 % |
//! | beacon_60s_jitter50 | none | Beaconing | same; MAD/median tolerates 50 % jitter |
//! | beacon_45s_with_browsing | none | Beaconing for the C2 pair only | KQL gap = to the source's next row whatever its destination: browsing rows break the 45 s gaps |
//! | beacon_300s_hours (6 h) | none | Beaconing, interval 300 s | ≤ 12 sessions per 1-h bin, KQL needs > 15 gaps per bin |
//! | beacon_udp (→ 203.0.113.53:53 every 30 s) | Beaconing, gap 30 s | Beaconing, Protocol UDP | protocol-agnostic in both |
//! | benign_bursty_browsing | none | none | bursts collapsed, low coverage |
//! | benign_cdn_burst | none | none | sub-second burst is one event |
//! | benign_internal_polling (10.1.0.30 → 10.1.0.40:8080) | none (also with `--beacon-internal`) | none; Beaconing with `--beacon-internal` | KQL wants a public destination; enhanced scope is home → outside unless asked |
//! | benign_poisson_visits | none | none | exponential gaps: high MAD, skew |
//! | beacon_c2_persistent_tcp (10.1.0.24 → 203.0.113.60:4444, one connection) | none (one record) | Beaconing ≈ 15 s inside one session, InSession | exchanges after pauses are scored like sessions |
//! | beacon_http_keepalive (→ 203.0.113.61:80, one connection) | none | Beaconing ≈ 10 s inside one session | same, ±30 % jitter |
//! | beacon_udp_fixed_port (10.1.0.26:41414 → 203.0.113.62:4000) | none (one 5-tuple, one record) | Beaconing ≈ 12 s inside one session, Protocol UDP | UDP datagrams after a pause are exchanges |
//! | beacon_heavy_jitter (→ 203.0.113.63:80, U(0.1, 1.9) × 10 s) | none | Beaconing, Pattern Jittered | gaps too irregular for regularity; persistent, bounded, same sizes |
//! | benign_keepalive_idle | none | none | keepalive probes carry no new data: no exchange |
//! | benign_interactive | none | none | human pauses: log-normal, sizes vary |
//! | benign_bulk_download, benign_video_stream | none | none | never pause |
//! | benign_tls_sporadic | none | none | memoryless request times |

mod detection_common;

use detection_common::*;
use serde_json::Value;
use std::path::PathBuf;

/// One scenario generated once, with both modes' alerts (sentinel checked for parity).
struct Run {
    pcap: PathBuf,
    sentinel: Vec<Value>,
    enhanced: Vec<Value>,
}

fn run(name: &str) -> Run {
    let dir = scratch(&format!("detection-{name}"));
    let pcap = synth(&dir, name, &[]);
    let sentinel = sentinel_parity(&dir, name, &[&pcap]);
    for a in &sentinel {
        assert_eq!(a["DetectionMode"], "sentinel", "{a}");
    }
    let enhanced = replay(&[&pcap], "enhanced", &[]);
    Run { pcap, sentinel, enhanced }
}

fn assert_sentinel_scan(alerts: &[Value], src: &str) {
    assert_scans_only_from(alerts, src);
    for a in alerts {
        assert!(a["AttemptedPortsCount"].as_u64().unwrap() > 50, "{a}");
    }
}

/// The only enhanced alert is a scan from `src` of this type/probe (and tool, if given).
fn assert_enhanced_scan(alerts: &[Value], src: &str, scan_type: &str, probe: &str, tool: Option<&str>) -> Value {
    assert_scans_only_from(alerts, src);
    assert_eq!(alerts.len(), 1, "one finding, alerted once:\n{}", brief(alerts));
    let a = &alerts[0];
    assert_eq!(s(a, "ScanType"), scan_type, "{a}");
    assert_eq!(s(a, "ProbeType"), probe, "{a}");
    assert_eq!(a.get("Tool").and_then(Value::as_str), tool, "{a}");
    a.clone()
}

fn enhanced_interval(alerts: &[Value]) -> f64 {
    alerts[0]["IntervalSeconds"].as_f64().expect("IntervalSeconds")
}

// ---------------------------------------------------------------- scans

#[test]
fn public_syn_scan() {
    let r = run("public_syn_scan");
    assert_sentinel_scan(&r.sentinel, "203.0.113.66");
    assert_eq!(r.sentinel.len(), 1);
    let a = assert_enhanced_scan(&r.enhanced, "203.0.113.66", "Vertical", "SYN", Some("nmap"));
    assert_eq!(a["DstIpAddr"], "10.1.0.5");
}

#[test]
fn internal_syn_scan() {
    let r = run("internal_syn_scan");
    assert_none(&r.sentinel, "sentinel: private source");
    let a = assert_enhanced_scan(&r.enhanced, "10.1.0.66", "Vertical", "SYN", Some("nmap"));
    assert_eq!(a["DstIpAddr"], "10.1.0.5");
}

#[test]
fn scan_split_across_a_five_minute_boundary() {
    let r = run("scan_split_boundary");
    assert_none(&r.sentinel, "sentinel: 45 ports per bin");
    let a = assert_enhanced_scan(&r.enhanced, "198.51.100.23", "Vertical", "SYN", Some("nmap"));
    assert!(a["PortCount"].as_u64().unwrap() >= 15, "{a}");
}

#[test]
fn one_port_sweep_of_many_hosts() {
    let r = run("horizontal_sweep");
    assert_none(&r.sentinel, "sentinel: one distinct port");
    let a = assert_enhanced_scan(&r.enhanced, "203.0.113.77", "Horizontal", "SYN", Some("nmap"));
    assert_eq!(a["DstPortNumber"], 22);
    assert_eq!(a["PortCount"], 1);
}

#[test]
fn udp_scan_answered_by_icmp() {
    let r = run("udp_scan_icmp");
    assert_sentinel_scan(&r.sentinel, "203.0.113.88");
    let a = assert_enhanced_scan(&r.enhanced, "203.0.113.88", "Vertical", "UDP", None);
    assert_eq!(a["DstIpAddr"], "10.1.0.5");
}

#[test]
fn ipv6_scan() {
    let r = run("ipv6_scan");
    assert_none(&r.sentinel, "sentinel: ipv4_is_private is null for IPv6");
    let a = assert_enhanced_scan(&r.enhanced, "2001:db8:bad::66", "Vertical", "SYN", Some("nmap"));
    assert_eq!(a["DstIpAddr"], "2001:db8:1::5");
}

#[test]
fn fin_null_xmas_scans() {
    let r = run("stealth_scans");
    let srcs = |alerts: &[Value]| {
        let mut v: Vec<String> = alerts.iter().map(|a| s(a, "SrcIpAddr").to_owned()).collect();
        v.sort();
        v
    };
    assert_eq!(srcs(&r.sentinel), ["203.0.113.101", "203.0.113.102", "203.0.113.103"], "{}", brief(&r.sentinel));
    assert_eq!(of_type(&r.sentinel, "PortScan").len(), 3);
    assert_eq!(srcs(&r.enhanced), ["203.0.113.101", "203.0.113.102", "203.0.113.103"], "{}", brief(&r.enhanced));
    for (src, probe) in [("203.0.113.101", "FIN"), ("203.0.113.102", "NULL"), ("203.0.113.103", "XMAS")] {
        let a = r.enhanced.iter().find(|a| a["SrcIpAddr"] == src).unwrap();
        assert_eq!((s(a, "ScanType"), s(a, "ProbeType")), ("Vertical", probe), "{a}");
        assert_eq!(a["Severity"], "High", "stealth scans are High: {a}");
    }
}

#[test]
fn masscan_fingerprinted_scan() {
    let r = run("masscan_like");
    assert_sentinel_scan(&r.sentinel, "203.0.113.120");
    assert_enhanced_scan(&r.enhanced, "203.0.113.120", "Mixed", "SYN", Some("masscan"));
}

#[test]
fn zmap_fingerprinted_sweep() {
    let r = run("zmap_like");
    assert_none(&r.sentinel, "sentinel: one distinct port");
    let a = assert_enhanced_scan(&r.enhanced, "203.0.113.121", "Horizontal", "SYN", Some("zmap"));
    assert_eq!(a["DstPortNumber"], 443);
}

#[test]
fn nat_address_with_2000_sessions_to_one_service() {
    let r = run("nat_many_sessions");
    assert_none(&r.sentinel, "sentinel");
    assert_none(&r.enhanced, "enhanced");
}

#[test]
fn busy_public_server() {
    let r = run("busy_public_server");
    assert_none(&r.sentinel, "sentinel");
    assert_none(&r.enhanced, "enhanced");
}

#[test]
fn downloads_running_at_capture_start() {
    let r = run("midstream_downloads");
    assert_none(&r.sentinel, "sentinel");
    assert_none(&r.enhanced, "enhanced");
}

#[test]
fn recursive_dns_resolver() {
    let r = run("dns_resolver");
    assert_none(&r.sentinel, "sentinel");
    assert_none(&r.enhanced, "enhanced");
}

// ---------------------------------------------------------------- beacons

const IMPLANT: &str = "10.1.0.20";
const C2: &str = "203.0.113.50";

#[test]
fn beacon_exactly_every_60s() {
    let r = run("beacon_60s_exact");
    assert_beacons_only(&r.sentinel, IMPLANT, C2, 443);
    for a in &r.sentinel {
        assert_eq!(a["MostFrequentTimeDeltainSeconds"], 60, "{a}");
        assert!(a["TotalEvents"].as_u64().unwrap() > 15, "{a}");
    }
    assert_beacons_only(&r.enhanced, IMPLANT, C2, 443);
    assert!((enhanced_interval(&r.enhanced) - 60.0).abs() < 0.5, "{}", r.enhanced[0]);
}

#[test]
fn beacon_60s_with_20_percent_jitter() {
    let r = run("beacon_60s_jitter20");
    assert_none(&r.sentinel, "sentinel: no dominant whole-second gap");
    assert_beacons_only(&r.enhanced, IMPLANT, C2, 443);
    let i = enhanced_interval(&r.enhanced);
    assert!((48.0..=72.0).contains(&i), "interval {i}");
}

#[test]
fn beacon_60s_with_50_percent_jitter() {
    let r = run("beacon_60s_jitter50");
    assert_none(&r.sentinel, "sentinel: no dominant whole-second gap");
    assert_beacons_only(&r.enhanced, IMPLANT, C2, 443);
    let i = enhanced_interval(&r.enhanced);
    assert!((30.0..=60.0).contains(&i), "interval {i}");
}

#[test]
fn beacon_45s_from_a_host_that_also_browses() {
    let r = run("beacon_45s_with_browsing");
    assert_none(&r.sentinel, "sentinel: gaps run to the next row of the source, browsing breaks them");
    assert_beacons_only(&r.enhanced, IMPLANT, C2, 443);
    assert!((enhanced_interval(&r.enhanced) - 45.0).abs() < 0.5);
}

#[test]
fn beacon_every_300s_over_hours() {
    let r = run("beacon_300s_hours");
    assert_none(&r.sentinel, "sentinel: at most 12 sessions per hour bin");
    assert_beacons_only(&r.enhanced, IMPLANT, C2, 443);
    assert!((enhanced_interval(&r.enhanced) - 300.0).abs() < 1.0);
}

#[test]
fn udp_beacon() {
    let r = run("beacon_udp");
    assert_beacons_only(&r.sentinel, IMPLANT, "203.0.113.53", 53);
    assert_eq!(r.sentinel[0]["MostFrequentTimeDeltainSeconds"], 30);
    assert_beacons_only(&r.enhanced, IMPLANT, "203.0.113.53", 53);
    assert_eq!(r.enhanced[0]["Protocol"], "UDP");
    assert!((enhanced_interval(&r.enhanced) - 30.0).abs() < 0.5);
}

#[test]
fn bursty_browsing_is_not_a_beacon() {
    let r = run("benign_bursty_browsing");
    assert_none(&r.sentinel, "sentinel");
    assert_none(&r.enhanced, "enhanced");
}

#[test]
fn cdn_burst_is_not_a_beacon() {
    let r = run("benign_cdn_burst");
    assert_none(&r.sentinel, "sentinel");
    assert_none(&r.enhanced, "enhanced");
}

#[test]
fn internal_polling_alerts_only_with_beacon_internal() {
    let r = run("benign_internal_polling");
    assert_none(&r.sentinel, "sentinel");
    assert_none(&r.enhanced, "enhanced (default scope: home -> outside)");
    let with = replay(&[&r.pcap], "enhanced", &["--beacon-internal"]);
    assert_beacons_only(&with, "10.1.0.30", "10.1.0.40", 8080);
    assert!((enhanced_interval(&with) - 30.0).abs() < 0.5);
    assert_none(&replay(&[&r.pcap], "sentinel", &["--beacon-internal"]), "sentinel ignores --beacon-internal");
}

#[test]
fn poisson_visits_to_one_site_are_not_a_beacon() {
    let r = run("benign_poisson_visits");
    assert_none(&r.sentinel, "sentinel");
    assert_none(&r.enhanced, "enhanced");
}

// ---------------------------------------------------------------- long sessions

/// The only enhanced alert is an in-session beacon of this pair; returns it.
fn assert_in_session_beacon(alerts: &[Value], src: &str, dst: &str, port: u64, proto: &str, interval: f64) -> Value {
    assert_beacons_only(alerts, src, dst, port);
    assert_eq!(alerts.len(), 1, "{}", brief(alerts));
    let a = alerts[0].clone();
    assert_eq!((a["InSession"].as_bool(), a["Connections"].as_u64()), (Some(true), Some(1)), "{a}");
    assert!(s(&a, "AlertName").ends_with("inside one session"), "{a}");
    assert_eq!(s(&a, "Protocol"), proto, "{a}");
    let got = a["IntervalSeconds"].as_f64().unwrap();
    assert!((got - interval).abs() <= 0.2 * interval, "interval {got} vs {interval}: {a}");
    assert!(a["Exchanges"].as_u64().unwrap() >= 8, "{a}");
    a
}

#[test]
fn persistent_tcp_c2_inside_one_connection() {
    let r = run("beacon_c2_persistent_tcp");
    assert_none(&r.sentinel, "sentinel: one session is one record");
    assert_in_session_beacon(&r.enhanced, "10.1.0.24", "203.0.113.60", 4444, "TCP", 15.0);
    // Scope: with the C2 inside the home network only --beacon-internal scores it.
    let home = ["--home-net", "10.0.0.0/8,203.0.113.0/24"];
    assert_none(&replay(&[&r.pcap], "enhanced", &home), "internal destination, default scope");
    let with: Vec<&str> = home.iter().copied().chain(["--beacon-internal"]).collect();
    assert_in_session_beacon(&replay(&[&r.pcap], "enhanced", &with), "10.1.0.24", "203.0.113.60", 4444, "TCP", 15.0);
}

#[test]
fn http_keepalive_polling_inside_one_connection() {
    let r = run("beacon_http_keepalive");
    assert_none(&r.sentinel, "sentinel");
    assert_in_session_beacon(&r.enhanced, "10.1.0.25", "203.0.113.61", 80, "TCP", 10.0);
}

#[test]
fn udp_beacon_from_one_fixed_source_port() {
    let r = run("beacon_udp_fixed_port");
    assert_none(&r.sentinel, "sentinel");
    assert_in_session_beacon(&r.enhanced, "10.1.0.26", "203.0.113.62", 4000, "UDP", 12.0);
}

#[test]
fn heavily_jittered_beacon_is_found_on_persistence() {
    let r = run("beacon_heavy_jitter");
    assert_none(&r.sentinel, "sentinel: no dominant gap");
    assert_beacons_only(&r.enhanced, "10.1.0.27", "203.0.113.63", 80);
    assert_eq!(r.enhanced.len(), 1, "{}", brief(&r.enhanced));
    let a = &r.enhanced[0];
    assert_eq!((s(a, "Pattern"), a["InSession"].as_bool()), ("Jittered", Some(false)), "{a}");
    // Found at its 20th check-in by the bounded-sleep cut (persistence ≥ 0.8; 0.9 here).
    assert!(a["Persistence"].as_f64().unwrap() >= 0.8, "{a}");
    assert!((20..=40).contains(&a["Connections"].as_u64().unwrap()), "{a}");
}

#[test]
fn benign_long_sessions_are_not_beacons() {
    for name in [
        "benign_keepalive_idle",
        "benign_interactive",
        "benign_bulk_download",
        "benign_video_stream",
        "benign_tls_sporadic",
    ] {
        let r = run(name);
        assert_none(&r.sentinel, &format!("{name}: sentinel"));
        assert_none(&r.enhanced, &format!("{name}: enhanced"));
        assert_none(&replay(&[&r.pcap], "enhanced", &["--beacon-internal"]), &format!("{name}: --beacon-internal"));
    }
}

/// Every scenario the generator lists is covered above (a new one must get a test).
#[test]
fn every_listed_scenario_has_an_expectation() {
    let o = std::process::Command::new(synth_bin()).arg("--list").output().unwrap();
    assert!(o.status.success());
    let listed: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    let covered = include_str!("detection_scenarios.rs");
    assert!(listed.len() >= 32, "{listed:?}");
    // `mixed`, `short`, `hosts` and `bulk` are the benchmark mixes a-d (their shapes are
    // tested in src/synth/mixes_tests.rs, mix c's planted scanner and beacons end to end
    // in tests/perf_host_stress.rs); `syn_flood` is covered by tests/robustness_flood.rs.
    let benchmark = |n: &str| matches!(n, "mixed" | "short" | "hosts" | "bulk" | "syn_flood");
    for name in listed.iter().filter(|n| !benchmark(n)) {
        let named = covered.contains(&format!("run(\"{name}\")")) || covered.contains(&format!("\"{name}\",\n"));
        assert!(named, "scenario {name} has no test in detection_scenarios.rs");
    }
}
