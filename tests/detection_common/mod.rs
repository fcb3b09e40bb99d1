//! Helpers shared by the detection_* integration tests: generate a synthetic scenario
//! with the built `flowsentry-synth`, replay captures with the built `flowsentry` in one
//! detector mode, run the Python reference evaluator, and pick alerts apart.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn flowsentry() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_flowsentry"))
}

pub fn synth_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_flowsentry-synth"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh scratch directory for one test (target/test-scratch/NAME-PID).
pub fn scratch(name: &str) -> PathBuf {
    let d = repo().join("target").join("test-scratch").join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A public capture from ../shared/pcaps.
pub fn shared_pcap(name: &str) -> PathBuf {
    let p = repo().join("../shared/pcaps").join(name);
    assert!(p.exists(), "shared capture {} is missing (see ../shared/pcaps/MANIFEST.md)", p.display());
    p
}

/// Writes scenario `name` (seed 1) into `dir` and returns the capture's path.
pub fn synth(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(format!("{name}.pcap"));
    let o = Command::new(synth_bin()).arg(name).arg("-o").arg(&out).args(extra).output().expect("run flowsentry-synth");
    assert!(o.status.success(), "flowsentry-synth {name} failed: {}", String::from_utf8_lossy(&o.stderr));
    assert!(out.metadata().map(|m| m.len() > 24).unwrap_or(false), "{name}: empty capture");
    out
}

/// Parses JSON Lines.
pub fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// `flowsentry replay --rules MODE [extra] FILES`, alerts from stdout. Every alert must
/// carry the mode it was asked for.
pub fn replay(files: &[&Path], mode: &str, extra: &[&str]) -> Vec<Value> {
    let o = Command::new(flowsentry())
        .args(["replay", "--quiet", "--rules", mode])
        .args(extra)
        .args(files)
        .output()
        .expect("run flowsentry");
    assert!(o.status.success(), "flowsentry replay {files:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    let alerts = json_lines(&String::from_utf8_lossy(&o.stdout));
    for a in &alerts {
        assert_eq!(a["DetectionMode"], mode, "alert from the wrong family: {a}");
        assert_has_columns(a);
    }
    alerts
}

/// Every key of an alert line is a column of the Sentinel alerts table
/// (`flowsentry::detect::alert::ALERT_COLUMNS`): a new evidence key needs a column there
/// and in deploy/sentinel (`FLOWSENTRY_WRITE_DEPLOY=1 cargo test --release --test
/// sentinel_deploy` regenerates the template), or ingestion would drop it.
pub fn assert_has_columns(a: &Value) {
    for key in a.as_object().expect("alert is an object").keys() {
        assert!(
            flowsentry::detect::alert::alert_column(key).is_some(),
            "alert key {key} has no column in ALERT_COLUMNS: {a}"
        );
    }
}

/// Sentinel replay writing records and alerts to files in `dir`; returns
/// (records path, alerts path, alerts).
pub fn replay_sentinel_to_files(dir: &Path, tag: &str, files: &[&Path]) -> (PathBuf, PathBuf, Vec<Value>) {
    let records = dir.join(format!("{tag}.records.jsonl"));
    let alerts_path = dir.join(format!("{tag}.alerts.jsonl"));
    let o = Command::new(flowsentry())
        .args(["replay", "--quiet", "--rules", "sentinel", "--records"])
        .arg(&records)
        .arg("--alerts")
        .arg(&alerts_path)
        .args(files)
        .output()
        .expect("run flowsentry");
    assert!(o.status.success(), "flowsentry replay {files:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    let alerts = json_lines(&std::fs::read_to_string(&alerts_path).expect("alerts file written"));
    alerts.iter().for_each(assert_has_columns);
    (records, alerts_path, alerts)
}

/// Runs a reference script; panics with its output unless it exits 0. Returns stdout.
pub fn python(script: &str, args: &[&Path]) -> String {
    let o = Command::new("python3")
        .arg(repo().join("tests/reference").join(script))
        .args(args)
        .output()
        .expect("run python3 (tests need it; see tests/install-deps.sh)");
    assert!(
        o.status.success(),
        "{script} {args:?} exited {:?}:\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Checks sentinel parity of a capture with the reference evaluator over the records
/// flowsentry itself emitted; returns the alerts flowsentry raised (which the reference
/// agreed with).
pub fn sentinel_parity(dir: &Path, tag: &str, files: &[&Path]) -> Vec<Value> {
    let (records, alerts_path, alerts) = replay_sentinel_to_files(dir, tag, files);
    let reference = json_lines(&python("sentinel_rules.py", &[&records]));
    assert_eq!(
        reference.len(),
        alerts.len(),
        "{tag}: reference evaluator raised {} alerts, flowsentry {}",
        reference.len(),
        alerts.len()
    );
    python("compare.py", &[&records, &alerts_path]);
    alerts
}

pub fn s<'a>(a: &'a Value, field: &str) -> &'a str {
    a[field].as_str().unwrap_or_else(|| panic!("alert lacks string {field}: {a}"))
}

pub fn of_type<'a>(alerts: &'a [Value], alert_type: &str) -> Vec<&'a Value> {
    alerts.iter().filter(|a| a["AlertType"] == alert_type).collect()
}

/// Renders alerts briefly for assertion messages.
pub fn brief(alerts: &[Value]) -> String {
    alerts
        .iter()
        .map(|a| {
            format!(
                "{} {} {}->{}:{} {}",
                a["AlertType"], a["AlertName"], a["SrcIpAddr"], a["DstIpAddr"], a["DstPortNumber"], a["ScanType"]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts there are alerts and every one is a port scan from `src`; returns them.
pub fn assert_scans_only_from<'a>(alerts: &'a [Value], src: &str) -> &'a [Value] {
    assert!(!alerts.is_empty(), "expected a port-scan alert from {src}, got none");
    for a in alerts {
        assert_eq!(a["AlertType"], "PortScan", "unexpected alert: {a}");
        assert_eq!(s(a, "SrcIpAddr"), src, "scan alert for the wrong source:\n{}", brief(alerts));
    }
    alerts
}

/// Asserts there are alerts and every one is a beacon src → dst:port; returns them.
pub fn assert_beacons_only(alerts: &[Value], src: &str, dst: &str, port: u64) {
    assert!(!alerts.is_empty(), "expected a beaconing alert {src} -> {dst}:{port}, got none");
    for a in alerts {
        assert_eq!(a["AlertType"], "Beaconing", "unexpected alert: {a}");
        assert_eq!(
            (s(a, "SrcIpAddr"), s(a, "DstIpAddr"), a["DstPortNumber"].as_u64()),
            (src, dst, Some(port)),
            "beacon for the wrong pair:\n{}",
            brief(alerts)
        );
    }
}

pub fn assert_none(alerts: &[Value], what: &str) {
    assert!(alerts.is_empty(), "{what}: expected no alerts, got:\n{}", brief(alerts));
}
