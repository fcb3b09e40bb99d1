//! Output failures through the real binary: an output that cannot be opened (a path
//! under /proc), one that fails on every write (/dev/full: disk full), and a real full
//! disk (a 64 KiB tmpfs in a private mount namespace, root only). Each gives a clear
//! error naming the output, exit code 1 or 2, no panic — and alerts whose sink failed
//! are logged on stderr instead of being lost.

mod robustness_common;

use flowsentry::synth::scenarios::public_syn_scan;
use flowsentry::synth::{PcapWriter, ScenarioCtx, TsResolution};
use robustness_common::common::{json_lines, require_root, scratch, stderr};
use robustness_common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A capture with a port scan (about 200 sessions and a few alerts).
fn scan_capture(dir: &Path) -> PathBuf {
    let p = dir.join("scan.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&p).unwrap(), TsResolution::Micro).unwrap();
    w.write_all_packets(&public_syn_scan(&ScenarioCtx::default())).unwrap();
    w.finish().unwrap();
    p
}

#[test]
fn unopenable_output_is_a_clear_error_before_capture() {
    let dir = scratch("out-unopenable");
    let cap = scan_capture(&dir);
    let (o, _) = run_within(
        &["replay", "--records", "/proc/flowsentry-nope/records.json", cap.to_str().unwrap()],
        Duration::from_secs(30),
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot open records output /proc/flowsentry-nope/records.json"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn records_to_a_full_device_fail_with_exit_1() {
    let dir = scratch("out-full-records");
    let cap = scan_capture(&dir);
    let (o, _) = run_within(&["replay", "--records", "/dev/full", cap.to_str().unwrap()], Duration::from_secs(60));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("writing records to /dev/full failed: no space left on device"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Alerts still went to stdout.
    let alerts = json_lines(&String::from_utf8_lossy(&o.stdout));
    assert!(alerts.iter().any(|a| a["AlertType"] == "PortScan"), "alerts are not lost with the records");
}

#[test]
fn alerts_to_a_full_device_are_logged_instead() {
    let dir = scratch("out-full-alerts");
    let cap = scan_capture(&dir);
    let (o, _) = run_within(
        &["replay", "--records", "/dev/null", "--alerts", "/dev/full", cap.to_str().unwrap()],
        Duration::from_secs(60),
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("writing alerts to /dev/full failed"), "{err}");
    let s = summary(&err);
    assert!(s.alerts > 0, "the scan raises alerts: {s:?}");
    let logged: Vec<serde_json::Value> = err
        .lines()
        .filter_map(|l| {
            l.split_once("logged here instead: ").map(|(_, j)| serde_json::from_str(j).expect("alert JSON"))
        })
        .collect();
    assert_eq!(logged.len() as u64, s.alerts, "every alert is logged on stderr:\n{err}");
    assert!(logged.iter().all(|a| a["AlertType"] == "PortScan" || a["AlertType"] == "Beaconing"));
}

#[test]
fn disk_full_on_a_tiny_tmpfs() {
    if !require_root("disk_full_on_a_tiny_tmpfs") {
        return;
    }
    let dir = scratch("out-tmpfs");
    let cap = scan_capture(&dir);
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    // A private mount namespace: the tmpfs vanishes with the shell, the host never sees it.
    let script = format!(
        "mount -t tmpfs -o size=64k flowsentry-test {m} && {bin} replay --records {m}/records.json --alerts {m}/alerts.json {cap}; \
         rc=$?; echo \"size=$(stat -c %s {m}/records.json)\" >&2; exit $rc",
        m = mnt.display(),
        bin = robustness_common::common::bin().display(),
        cap = cap.display()
    );
    let o = Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("no space left on device") && err.contains("records.json"), "{err}");
    assert_eq!(err.matches("no space left on device").count(), 1, "the failure is reported once: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let size: u64 = err.lines().find_map(|l| l.strip_prefix("size=")).unwrap().trim().parse().unwrap();
    assert!(size > 0 && size <= 64 * 1024, "the disk filled up: {size}");
    // The host's view of the directory is untouched.
    assert!(std::fs::read_dir(&mnt).unwrap().next().is_none());
}
