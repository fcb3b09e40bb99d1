//! Real public captures (../shared/pcaps, see MANIFEST.md there) replayed in each
//! detector mode: the scanners and beacons the manifest verified must be named with the
//! right source, probe, tool and pair, and nothing else may alert — the benign captures
//! and the Windows/IoT background traffic inside the malicious ones are false-positive
//! tests.
//!
//! | Capture | sentinel | enhanced |
//! |---|---|---|
//! | scan_nmap_tcp_syn (192.168.1.10 → .25) | none (RFC 1918 source) | Vertical SYN scan, Tool nmap |
//! | scan_nmap_udp | none | Vertical UDP scan |
//! | scan_nmap_xmas | none | Vertical XMAS scan, High |
//! | scan_masscan_tcp_0-1000 (172.31.15.102) | none | Vertical SYN scan, Tool masscan |
//! | Hide-and-Seek (192.168.2.16) | none | Horizontal SYN scan (23/2323/8080/9527) + its UDP P2P finding |
//! | QuasarRAT 192.168.100.7 → 86.136.67.231:1337 | none (3.5 s gaps ≤ the KQL's 10 s) | Beaconing ≈ 3.5 s, nothing else (no LLMNR/IPv6 "scan") |
//! | Empire 192.168.1.195 → 192.168.1.161:80 | none (private destination) | none; Beaconing ≈ 5 s with `--beacon-internal` |
//! | benign AD workstation, 44 min | none | none (also with `--beacon-internal`) |
//! | benign Amazon Echo | none | none (also with `--beacon-internal`) |

mod detection_common;

use detection_common::*;
use serde_json::Value;

const NMAP_SYN: &str = "scan_nmap_tcp_syn__evilfingers.pcap";
const NMAP_UDP: &str = "scan_nmap_udp__evilfingers.pcap";
const NMAP_XMAS: &str = "scan_nmap_xmas__evilfingers.pcap";
const MASSCAN: &str = "scan_masscan_tcp_0-1000__esnet.pcap";
const HIDE_AND_SEEK: &str = "scan_horizontal_telnet_hideandseek_botnet__slips_test7.pcap";
const QUASAR: &str = "beacon_quasarrat_tcp1337_3.5s__corelight.pcap";
const EMPIRE: &str = "beacon_empire_http_5s__elcabezzonn_wmi_to_vss.pcap";
const AD_WORKSTATION: &str = "benign_ad_workstation_browsing_44min__elcabezzonn_aug_16_par4.pcap";
const ECHO: &str = "benign_iot_amazon_echo_3min__ndpi_alexa-app.pcapng";

fn modes(name: &str, extra: &[&str]) -> (Vec<Value>, Vec<Value>) {
    let p = shared_pcap(name);
    (replay(&[&p], "sentinel", extra), replay(&[&p], "enhanced", extra))
}

/// One enhanced scan alert and nothing else; returns it.
fn single_scan(alerts: &[Value], src: &str, scan_type: &str, probe: &str, tool: Option<&str>) -> Value {
    assert_scans_only_from(alerts, src);
    assert_eq!(alerts.len(), 1, "{}", brief(alerts));
    let a = alerts[0].clone();
    assert_eq!((s(&a, "ScanType"), s(&a, "ProbeType")), (scan_type, probe), "{a}");
    assert_eq!(a.get("Tool").and_then(Value::as_str), tool, "{a}");
    a
}

#[test]
fn nmap_syn_scan() {
    let (sentinel, enhanced) = modes(NMAP_SYN, &[]);
    assert_none(&sentinel, "sentinel: the port-scan rule ignores private sources");
    let a = single_scan(&enhanced, "192.168.1.10", "Vertical", "SYN", Some("nmap"));
    assert_eq!(a["DstIpAddr"], "192.168.1.25");
}

#[test]
fn nmap_udp_scan() {
    let (sentinel, enhanced) = modes(NMAP_UDP, &[]);
    assert_none(&sentinel, "sentinel");
    let a = single_scan(&enhanced, "192.168.1.10", "Vertical", "UDP", None);
    assert_eq!(a["DstIpAddr"], "192.168.1.25");
    assert!(a["PortCount"].as_u64().unwrap() >= 50, "{a}");
}

#[test]
fn nmap_xmas_scan() {
    let (sentinel, enhanced) = modes(NMAP_XMAS, &[]);
    assert_none(&sentinel, "sentinel");
    let a = single_scan(&enhanced, "192.168.1.10", "Vertical", "XMAS", None);
    assert_eq!(a["DstIpAddr"], "192.168.1.25");
    assert_eq!(a["Severity"], "High");
}

#[test]
fn masscan_scan() {
    let (sentinel, enhanced) = modes(MASSCAN, &[]);
    assert_none(&sentinel, "sentinel: 172.31.15.102 is private");
    let a = single_scan(&enhanced, "172.31.15.102", "Vertical", "SYN", Some("masscan"));
    assert_eq!(a["DstIpAddr"], "198.124.152.15");
}

#[test]
fn hide_and_seek_telnet_sweep_is_horizontal_syn() {
    let (sentinel, enhanced) = modes(HIDE_AND_SEEK, &[]);
    assert_none(&sentinel, "sentinel: private source");
    assert_scans_only_from(&enhanced, "192.168.2.16");
    let syn: Vec<&Value> = enhanced.iter().filter(|a| a["ProbeType"] == "SYN").collect();
    assert_eq!(syn.len(), 1, "the telnet sweep must be reported:\n{}", brief(&enhanced));
    let a = syn[0];
    assert_eq!(s(a, "ScanType"), "Horizontal", "{a}");
    assert_eq!(a["DstPortNumber"], 23, "{a}");
    let ports: Vec<u64> = a["PortsSample"].as_array().unwrap().iter().map(|p| p.as_u64().unwrap()).collect();
    for p in [23, 2323, 8080, 9527] {
        assert!(ports.contains(&p), "port {p} missing from {ports:?}");
    }
    assert!(a["TargetCount"].as_u64().unwrap() >= 15, "{a}");
    // Its UDP P2P chatter is a separate finding (not hiding the sweep), and nothing else.
    assert!(enhanced.len() <= 2, "{}", brief(&enhanced));
    for b in &enhanced {
        assert!(b["ProbeType"] == "SYN" || b["ProbeType"] == "UDP", "{b}");
    }
}

#[test]
fn quasarrat_beacon_and_no_link_local_scan() {
    let (sentinel, enhanced) = modes(QUASAR, &[]);
    assert_none(&sentinel, "sentinel: 3.5 s gaps are under the 10 s TimeDeltaThreshold");
    // The Windows background (LLMNR answers, mDNS, DHCPv6, neighbour discovery to
    // multicast groups) must not make fe80::704:cdbc:5747:ce2d a UDP "scanner".
    assert_beacons_only(&enhanced, "192.168.100.7", "86.136.67.231", 1337);
    assert_eq!(enhanced.len(), 1, "{}", brief(&enhanced));
    let i = enhanced[0]["IntervalSeconds"].as_f64().unwrap();
    assert!((3.3..=3.8).contains(&i), "interval {i}");
}

#[test]
fn empire_beacon_is_internal_and_needs_beacon_internal() {
    let (sentinel, enhanced) = modes(EMPIRE, &[]);
    assert_none(&sentinel, "sentinel: private destination");
    assert_none(&enhanced, "enhanced default scope is home -> outside");
    let (sentinel, enhanced) = modes(EMPIRE, &["--beacon-internal"]);
    assert_none(&sentinel, "sentinel ignores --beacon-internal");
    assert_beacons_only(&enhanced, "192.168.1.195", "192.168.1.161", 80);
    assert_eq!(enhanced.len(), 1, "the WMI/SMB lateral movement is not a beacon: {}", brief(&enhanced));
    let i = enhanced[0]["IntervalSeconds"].as_f64().unwrap();
    assert!((4.8..=5.4).contains(&i), "interval {i}");
}

#[test]
fn benign_ad_workstation_is_quiet() {
    for extra in [&[][..], &["--beacon-internal"][..]] {
        let (sentinel, enhanced) = modes(AD_WORKSTATION, extra);
        assert_none(&sentinel, "sentinel");
        assert_none(&enhanced, &format!("enhanced {extra:?}"));
    }
}

#[test]
fn benign_amazon_echo_is_quiet() {
    for extra in [&[][..], &["--beacon-internal"][..]] {
        let (sentinel, enhanced) = modes(ECHO, extra);
        assert_none(&sentinel, "sentinel");
        assert_none(&enhanced, &format!("enhanced {extra:?}"));
    }
}

/// All captures in one replay, in chronological order (one file after another, as
/// `replay A B C` does): each finding still belongs to its own capture's actors. (Files
/// whose clock runs backwards — a 2016 capture after a 2024 one — are a different matter:
/// see the report on non-monotonic multi-file replay.)
#[test]
fn all_captures_in_one_replay_name_only_the_known_actors() {
    let names = [NMAP_SYN, NMAP_XMAS, NMAP_UDP, AD_WORKSTATION, ECHO, HIDE_AND_SEEK, MASSCAN, QUASAR];
    let paths: Vec<_> = names.iter().map(|n| shared_pcap(n)).collect();
    let refs: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
    let enhanced = replay(&refs, "enhanced", &[]);
    let known = ["192.168.1.10", "172.31.15.102", "192.168.2.16", "192.168.100.7"];
    for a in &enhanced {
        assert!(known.contains(&s(a, "SrcIpAddr")), "unexpected alert: {a}");
    }
    for src in known {
        assert!(enhanced.iter().any(|a| a["SrcIpAddr"] == src), "{src} not reported:\n{}", brief(&enhanced));
    }
}
