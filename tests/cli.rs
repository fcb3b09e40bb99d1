//! End-to-end CLI tests of the built binary: bad input gives one clear line and a
//! non-zero exit, nothing decoded before a fault is lost, `| head` is not an error,
//! replay is byte-for-byte deterministic.

mod common;
use common::*;
use std::process::{Command, Stdio};

/// A classic pcap file header (microsecond, little endian) with the given link type.
fn pcap_header(linktype: u32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&0i32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&65535u32.to_le_bytes());
    v.extend_from_slice(&linktype.to_le_bytes());
    v
}

fn one_line_error(o: &std::process::Output) -> String {
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(lines.len(), 1, "expected exactly one error line, got:\n{err}");
    lines[0].to_string()
}

#[test]
fn missing_file_is_a_clear_error() {
    let o = run(&["replay", "/nonexistent/missing.pcap"]);
    assert!(!o.status.success());
    let line = one_line_error(&o);
    assert!(line.contains("/nonexistent/missing.pcap"), "{line}");
    assert!(o.stdout.is_empty());
}

#[test]
fn non_pcap_file_is_a_clear_error() {
    let toml = repo().join("Cargo.toml");
    let o = run(&["replay", toml.to_str().unwrap()]);
    assert!(!o.status.success());
    let line = one_line_error(&o);
    assert!(line.contains("Cargo.toml"), "{line}");
}

#[test]
fn unknown_link_type_is_named() {
    let dir = scratch("linktype");
    let f = dir.join("usr0.pcap");
    let mut bytes = pcap_header(147);
    // one 4-byte packet
    for v in [1u32, 0, 4, 4] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes.extend_from_slice(&[1, 2, 3, 4]);
    std::fs::write(&f, bytes).unwrap();
    let o = run(&["replay", f.to_str().unwrap()]);
    assert!(!o.status.success());
    let line = one_line_error(&o);
    assert!(line.contains("147"), "{line}");
    assert!(line.contains("usr0.pcap") || line.contains("link type"), "{line}");
}

#[test]
fn truncated_file_keeps_everything_decoded_before_the_fault() {
    let src = shared_pcap("scan_nmap_tcp_syn__evilfingers.pcap");
    let full = run(&["replay", "--records", "-", "--rules", "sentinel", src.to_str().unwrap()]);
    assert!(full.status.success(), "{}", stderr(&full));
    let full_records = json_lines(&stdout(&full)).into_iter().filter(|v| v.get("EventType").is_some()).count();
    let bytes = std::fs::read(&src).unwrap();
    let dir = scratch("truncated");
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() * 6 / 10 + 7]).unwrap();
    let o = run(&["replay", "--records", "-", cut.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let line = one_line_error(&o);
    assert!(line.contains("cut.pcap"), "{line}");
    let records = json_lines(&stdout(&o)).into_iter().filter(|v| v.get("EventType").is_some()).count();
    assert!(records > full_records / 3, "only {records} of {full_records} records survived the fault");
    assert!(records <= full_records);
    assert!(stderr(&o).contains("summary"), "the summary is still printed");
}

#[test]
fn unknown_interface_is_named() {
    let o = run(&["live", "--interface", "nosuchif0"]);
    assert!(!o.status.success());
    let line = one_line_error(&o);
    assert!(line.contains("nosuchif0"), "{line}");
}

#[test]
fn capture_permission_error_names_the_capability() {
    if !require_root("capture_permission_error_names_the_capability") || !have("setpriv") {
        return;
    }
    // As an unprivileged user on loopback: the message must say what is missing.
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"])
        .arg(bin())
        .args(["live", "-i", "lo"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let line = one_line_error(&o);
    assert!(line.contains("CAP_NET_RAW"), "{line}");
    assert!(line.contains("setcap") || line.contains("root"), "{line}");
}

#[test]
fn closing_stdout_early_is_not_an_error() {
    let src = shared_pcap("scan_nmap_tcp_syn__evilfingers.pcap");
    let mut child = Command::new(bin())
        .args(["replay", "--records", "-", src.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read one line, then close the pipe, like `| head -1`.
    {
        use std::io::BufRead;
        let out = child.stdout.take().unwrap();
        let mut r = std::io::BufReader::new(out);
        let mut first = String::new();
        r.read_line(&mut first).unwrap();
        assert!(first.starts_with('{'));
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "exit {:?}: {}", o.status, stderr(&o));
    assert!(!stderr(&o).contains("error"), "{}", stderr(&o));
}

#[test]
fn replay_is_byte_identical_across_runs() {
    let a = shared_pcap("beacon_quasarrat_tcp1337_3.5s__corelight.pcap");
    let b = shared_pcap("scan_masscan_tcp_0-1000__esnet.pcap");
    let args = ["replay", "--records", "-", "--sensor-name", "t", a.to_str().unwrap(), b.to_str().unwrap()];
    let one = run(&args);
    let two = run(&args);
    assert!(one.status.success(), "{}", stderr(&one));
    assert!(one.stdout.len() > 10_000);
    assert_eq!(one.stdout, two.stdout);
}

#[test]
fn bad_flags_exit_2_with_a_message() {
    let o = run(&["replay", "--rules", "everything", "x.pcap"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(one_line_error(&o).contains("everything"));
    let o = run(&["replay", "--home-net", "300.1.1.1/8", "x.pcap"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(one_line_error(&o).contains("300.1.1.1"));
}

#[test]
fn demo_capture_raises_the_four_alerts_the_readme_promises() {
    let demo = capture("demo.pcap");
    let o = run(&["replay", "--home-net", "192.0.2.0/24", demo.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let alerts = json_lines(&stdout(&o));
    let has = |kind: &str, mode: &str, src: &str| {
        alerts.iter().any(|a| a["AlertType"] == kind && a["DetectionMode"] == mode && a["SrcIpAddr"] == src)
    };
    assert!(has("PortScan", "sentinel", "198.51.100.10"), "{alerts:?}");
    assert!(has("PortScan", "enhanced", "198.51.100.10"), "{alerts:?}");
    assert!(has("Beaconing", "sentinel", "192.0.2.30"), "{alerts:?}");
    assert!(has("Beaconing", "enhanced", "192.0.2.30"), "{alerts:?}");
    assert_eq!(alerts.len(), 4, "{alerts:?}");
}

#[test]
fn bpf_filter_replays_only_matching_packets_like_tcpdump() {
    // --bpf takes the libpcap read path (the fast classic-pcap reader has no filter).
    let f = shared_pcap("beacon_quasarrat_tcp1337_3.5s__corelight.pcap");
    let f = f.to_str().unwrap();
    let o = run(&["replay", "--bpf", "tcp port 1337", "--records", "-", f]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = json_lines(&stdout(&o));
    let records: Vec<_> = lines.iter().filter(|l| l["EventType"] == "NetworkSession").collect();
    assert!(records.len() > 10, "{} records", records.len());
    for r in &records {
        assert_eq!(r["NetworkProtocol"], "TCP", "{r}");
        assert!(r["SrcPortNumber"] == 1337 || r["DstPortNumber"] == 1337, "{r}");
    }
    let all = run(&["replay", "--records", "-", f]);
    let unfiltered = json_lines(&stdout(&all)).iter().filter(|l| l["EventType"] == "NetworkSession").count();
    assert!(unfiltered > records.len(), "the filter dropped nothing: {unfiltered}");
    if have("tcpdump") {
        let td = Command::new("tcpdump").args(["-r", f, "tcp port 1337"]).stderr(Stdio::null()).output().unwrap();
        let packets = String::from_utf8_lossy(&td.stdout).lines().count();
        assert!(stderr(&o).contains(&format!("packets read {packets},")), "tcpdump saw {packets}: {}", stderr(&o));
    }
    let bad = run(&["replay", "--bpf", "tcp port", f]);
    assert_eq!(bad.status.code(), Some(2));
    let line = one_line_error(&bad);
    assert!(line.contains("bad BPF filter 'tcp port'"), "{line}");
}
