//! The project's own real-tool captures (`captures/`, made by `captures/make-captures.sh`
//! and `captures/make-long-sessions.sh`; ground truth in captures/README.md) replayed in
//! each detector mode, with the expected findings asserted.
//!
//! | Capture | sentinel | enhanced |
//! |---|---|---|
//! | nmap_fin_null_xmas_v4 (`-sF`, `-sN`, `-sX` in a row from 198.51.100.10) | PortScan (public source, 100 ports per 5-min bin) | three findings: FIN, NULL and XMAS scans |

mod detection_common;

use detection_common::*;
use std::path::PathBuf;

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
