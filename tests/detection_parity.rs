//! Sentinel-mode parity over REAL emitted records: captures are replayed with
//! `--rules sentinel --records R --alerts A`, and the independent Python evaluator
//! (tests/reference/sentinel_rules.py, written from the KQL) must raise the same alerts
//! from R (tests/reference/compare.py R A exits 0). The captures that trigger the rules
//! assert how many alerts were compared, so parity can never pass vacuously.

mod detection_common;

use detection_common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn count(alerts: &[Value], alert_type: &str) -> usize {
    of_type(alerts, alert_type).len()
}

fn record_count(dir: &Path, tag: &str) -> usize {
    std::fs::read_to_string(dir.join(format!("{tag}.records.jsonl"))).unwrap().lines().count()
}

#[test]
fn synthetic_scenarios_that_trigger_each_rule() {
    let dir = scratch("parity-scenarios");
    // (scenario, port-scan alerts, beaconing alerts) in sentinel mode.
    let cases: &[(&str, usize, usize)] = &[
        ("public_syn_scan", 1, 0),
        ("stealth_scans", 3, 0),
        ("udp_scan_icmp", 1, 0),
        ("masscan_like", 1, 0),
        ("beacon_60s_exact", 0, 2),
        ("beacon_udp", 0, 2),
        // Near misses the KQL must also agree on: 45 + 45 ports, browsing between beats.
        ("scan_split_boundary", 0, 0),
        ("beacon_45s_with_browsing", 0, 0),
    ];
    let mut compared = 0;
    for &(name, scans, beacons) in cases {
        let pcap = synth(&dir, name, &[]);
        let alerts = sentinel_parity(&dir, name, &[&pcap]);
        assert_eq!(
            (count(&alerts, "PortScan"), count(&alerts, "Beaconing")),
            (scans, beacons),
            "{name}:\n{}",
            brief(&alerts)
        );
        compared += alerts.len();
    }
    assert_eq!(compared, 10);
}

/// Scans and beacons interleaved in one capture (merged by timestamp with mergecap):
/// the same implant runs a 60 s TCP beacon and a 30 s UDP beacon, so the KQL's
/// gap-to-the-source's-next-row sees the UDP rows between the TCP ones — the 60 s beacon
/// disappears for the rule, the UDP one stays. Parity must hold on that subtlety too.
#[test]
fn interleaved_scans_and_beacons_in_one_capture() {
    let dir = scratch("parity-merged");
    let names = [
        "public_syn_scan",
        "stealth_scans",
        "udp_scan_icmp",
        "beacon_60s_exact",
        "beacon_udp",
        "benign_bursty_browsing",
        "benign_poisson_visits",
    ];
    let parts: Vec<_> = names.iter().map(|n| synth(&dir, n, &[])).collect();
    let merged = dir.join("merged.pcap");
    let o = Command::new("mergecap")
        .args(["-F", "pcap", "-w"])
        .arg(&merged)
        .args(&parts)
        .output()
        .expect("mergecap (package tshark/wireshark-common, see tests/install-deps.sh) must be installed");
    assert!(o.status.success(), "mergecap: {}", String::from_utf8_lossy(&o.stderr));
    let alerts = sentinel_parity(&dir, "merged", &[&merged]);
    let mut scanners: Vec<&str> = of_type(&alerts, "PortScan").iter().map(|a| s(a, "SrcIpAddr")).collect();
    scanners.sort();
    assert_eq!(scanners, ["203.0.113.101", "203.0.113.102", "203.0.113.103", "203.0.113.66", "203.0.113.88"]);
    let beacons = of_type(&alerts, "Beaconing");
    assert_eq!(beacons.len(), 2, "{}", brief(&alerts));
    for b in beacons {
        assert_eq!(
            (s(b, "SrcIpAddr"), s(b, "DstIpAddr"), &b["DstPortNumber"]),
            ("10.1.0.20", "203.0.113.53", &53.into())
        );
    }
}

/// The benchmark mix: thousands of hosts, rejected attempts, a few port scans.
#[test]
fn mixed_traffic() {
    let dir = scratch("parity-mixed");
    let pcap = synth(&dir, "mixed", &["--packets", "200000"]);
    let alerts = sentinel_parity(&dir, "mixed", &[&pcap]);
    assert!(count(&alerts, "PortScan") >= 1, "the mix holds port scans: {}", brief(&alerts));
    assert!(record_count(&dir, "mixed") > 10_000);
    let _ = std::fs::remove_file(&pcap); // large; records are kept for inspection
}

/// The real captures: none triggers a sentinel rule (private scanners, sub-10 s or
/// internal beacons), and the reference agrees on every one of their records.
#[test]
fn shared_public_captures() {
    let dir = scratch("parity-shared");
    let names = [
        "scan_nmap_tcp_syn__evilfingers.pcap",
        "scan_nmap_udp__evilfingers.pcap",
        "scan_nmap_xmas__evilfingers.pcap",
        "scan_masscan_tcp_0-1000__esnet.pcap",
        "scan_horizontal_telnet_hideandseek_botnet__slips_test7.pcap",
        "beacon_quasarrat_tcp1337_3.5s__corelight.pcap",
        "beacon_empire_http_5s__elcabezzonn_wmi_to_vss.pcap",
        "benign_ad_workstation_browsing_44min__elcabezzonn_aug_16_par4.pcap",
        "benign_iot_amazon_echo_3min__ndpi_alexa-app.pcapng",
    ];
    for (i, name) in names.iter().enumerate() {
        let tag = format!("shared{i}");
        let alerts = sentinel_parity(&dir, &tag, &[&shared_pcap(name)]);
        assert_none(&alerts, name);
        assert!(record_count(&dir, &tag) >= 50, "{name}: too few records to mean anything");
    }
}
