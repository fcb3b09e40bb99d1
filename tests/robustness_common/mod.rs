//! Helpers for the robustness tests: hand-built pcap bytes (so files can be broken in
//! exact ways), a small real capture cut from a shared one at test time, the exit
//! summary parsed into numbers, and running the binary under a deadline.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "../common/mod.rs"]
pub mod common;

/// A classic pcap file header (microsecond magic, little-endian).
pub fn pcap_header(linktype: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(24);
    h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&[0u8; 8]);
    h.extend_from_slice(&65535u32.to_le_bytes());
    h.extend_from_slice(&linktype.to_le_bytes());
    h
}

/// One pcap record with explicit caplen and wire length (which may lie).
pub fn pcap_record(out: &mut Vec<u8>, secs: u32, usecs: u32, caplen: u32, len: u32, data: &[u8]) {
    out.extend_from_slice(&secs.to_le_bytes());
    out.extend_from_slice(&usecs.to_le_bytes());
    out.extend_from_slice(&caplen.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(data);
}

/// Byte offsets where each record of a classic little-endian pcap starts, plus the
/// file length at the end.
pub fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offs = Vec::new();
    let mut off = 24;
    while off + 16 <= bytes.len() {
        offs.push(off);
        let caplen = u32::from_le_bytes(bytes[off + 8..off + 12].try_into().unwrap()) as usize;
        off += 16 + caplen;
    }
    assert_eq!(off, bytes.len(), "whole records");
    offs.push(off);
    offs
}

/// The first `n` packets of a shared capture, cut with tcpdump into `dir` (never
/// committed: made fresh by each test run).
pub fn small_real_capture(dir: &Path, shared: &str, n: usize) -> PathBuf {
    let src = common::shared_pcap(shared);
    let out = dir.join(format!("first{n}.pcap"));
    let o = Command::new("tcpdump")
        .args(["-r", src.to_str().unwrap(), "-c", &n.to_string(), "-w", out.to_str().unwrap()])
        .output()
        .expect("run tcpdump");
    assert!(o.status.success(), "tcpdump failed: {}", String::from_utf8_lossy(&o.stderr));
    out
}

/// Numbers from the exit summary line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub read: u64,
    pub decoded: u64,
    pub skipped: u64,
    pub sessions: u64,
    pub records: u64,
    pub alerts: u64,
    pub evictions: u64,
    pub detector_evictions: u64,
}

fn number_after(line: &str, label: &str) -> u64 {
    let at = line.find(label).unwrap_or_else(|| panic!("no `{label}` in summary {line:?}")) + label.len();
    line[at..].chars().take_while(|c| c.is_ascii_digit()).collect::<String>().parse().unwrap()
}

/// Parses the `summary:` line of stderr.
pub fn summary(stderr: &str) -> Summary {
    let line = stderr
        .lines()
        .find(|l| l.contains("summary: packets read"))
        .unwrap_or_else(|| panic!("no summary line in stderr:\n{stderr}"));
    let s = Summary {
        read: number_after(line, "packets read "),
        decoded: number_after(line, "decoded "),
        skipped: number_after(line, "skipped "),
        sessions: number_after(line, "sessions "),
        records: number_after(line, "records "),
        alerts: number_after(line, "alerts "),
        evictions: number_after(line, "flow evictions "),
        detector_evictions: number_after(line, "detector evictions "),
    };
    assert_eq!(s.decoded + s.skipped, s.read, "decoded + skipped == read: {line}");
    s
}

/// Runs the binary with `args`; fails the test if it takes longer than `deadline`.
pub fn run_within(args: &[&str], deadline: Duration) -> (Output, Duration) {
    let began = Instant::now();
    let mut child = Command::new(common::bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn flowsentry");
    // Drain the pipes on threads so a chatty child never blocks on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).map(|_| v).unwrap_or_default()
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        err.read_to_end(&mut v).map(|_| v).unwrap_or_default()
    });
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if began.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("flowsentry {args:?} did not finish within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = began.elapsed();
    let o = Output { status, stdout: t_out.join().unwrap(), stderr: t_err.join().unwrap() };
    (o, elapsed)
}

/// Lines of stdout parsed as JSON, split into records (have `EventType`) and alerts.
pub fn records_and_alerts(stdout: &[u8]) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let all = common::json_lines(&String::from_utf8_lossy(stdout));
    all.into_iter().partition(|v| v.get("EventType").is_some())
}

use flowsentry::capture::PacketSource;
use flowsentry::decode::decode;
use flowsentry::detect::{Alert, DetectConfig, DetectorSet};
use flowsentry::flow::{FlowConfig, FlowEvent, FlowTable};

/// What [`run_chain`] saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct ChainCounts {
    pub read: u64,
    pub decoded: u64,
    pub skipped: u64,
    pub records: u64,
    /// Exchanges reported inside sessions (FlowEvent::Exchange).
    pub exchanges: u64,
    pub capture_errors: u64,
}

/// Runs a source through decode → FlowTable → DetectorSet the way the pipeline does,
/// checking the invariants on the way: every Start has one End with the same id, no
/// record ends before it starts, the table never holds more than `max_flows`, and
/// after the flush `records == sessions + active_splits` and nothing is open.
pub fn run_chain(source: &mut dyn PacketSource, max_flows: usize) -> ChainCounts {
    let mut table = FlowTable::new(FlowConfig { max_flows, ..FlowConfig::default() });
    let mut detectors = DetectorSet::new(&DetectConfig::default());
    let mut events: Vec<FlowEvent> = Vec::new();
    let mut alerts: Vec<Alert> = Vec::new();
    let mut open = std::collections::HashSet::new();
    let mut c = ChainCounts::default();
    let ctx = flowsentry::output::records::RecordContext::new(
        flowsentry::output::records::Device { name: "robustness".into(), ip: None, interface: None },
        flowsentry::net::NetSet::default_home(),
        0,
        None,
    );
    let mut drain =
        |events: &mut Vec<FlowEvent>, det: &mut DetectorSet, alerts: &mut Vec<Alert>, c: &mut ChainCounts| {
            for ev in events.iter() {
                match ev {
                    FlowEvent::Start(s) => assert!(open.insert(s.id), "duplicate Start {}", s.id),
                    FlowEvent::End(r) => {
                        assert!(open.remove(&r.id), "End {} without Start", r.id);
                        assert!(r.start <= r.end, "record ends before it starts: {r:?}");
                        c.records += 1;
                    }
                    FlowEvent::Exchange(x) => {
                        assert!(open.contains(&x.id), "Exchange of session {} that is not open", x.id);
                        assert!(x.start <= x.end, "exchange ends before it starts: {x:?}");
                        c.exchanges += 1;
                    }
                }
                det.on_event(ev, alerts);
            }
            events.clear();
            for a in alerts.drain(..) {
                serde_json::from_str::<serde_json::Value>(&a.to_json(&ctx)).expect("alert is JSON");
            }
        };
    loop {
        let frame = match source.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => {
                c.capture_errors += 1;
                assert!(c.capture_errors < 1000, "errors without end");
                continue;
            }
        };
        c.read += 1;
        match decode(frame.link, &frame) {
            Ok(meta) => {
                c.decoded += 1;
                table.ingest_at(&meta, &mut events);
            }
            Err(_) => c.skipped += 1,
        }
        assert!(table.counters().active as usize <= max_flows.max(1), "flow cap");
        drain(&mut events, &mut detectors, &mut alerts, &mut c);
        detectors.on_time(table.now(), &mut alerts);
    }
    table.flush_all(&mut events);
    drain(&mut events, &mut detectors, &mut alerts, &mut c);
    detectors.finish(&mut alerts);
    drain(&mut events, &mut detectors, &mut alerts, &mut c);
    assert_eq!(c.decoded + c.skipped, c.read, "decoded + skipped == read");
    let t = table.counters();
    assert_eq!(t.active, 0, "nothing open after the flush");
    assert_eq!(t.records, t.sessions + t.active_splits, "records == sessions + active splits");
    assert_eq!(c.records, t.records, "every counted record was emitted");
    assert!(open.is_empty(), "{} sessions never ended", open.len());
    c
}

/// Encodes generated packets as (time, frame bytes).
pub fn frames_of(pkts: &[flowsentry::synth::Packet]) -> Vec<(flowsentry::time::Timestamp, Vec<u8>)> {
    pkts.iter()
        .map(|p| {
            let mut b = Vec::new();
            flowsentry::synth::encode_frame(p, &mut b);
            (p.ts, b)
        })
        .collect()
}
