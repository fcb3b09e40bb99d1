//! Time anomalies through the real binary: timestamps that go backwards, jump 76 years
//! ahead and back to 1970, and a file whose timestamps are all zero. The run must end
//! promptly (nothing loops over the gap), every session must be reported once with a
//! sane start/end, and the counters must add up.

mod robustness_common;

use flowsentry::synth::scenarios::public_syn_scan;
use flowsentry::synth::{PcapWriter, ScenarioCtx, Trace, TsResolution};
use flowsentry::time::{Duration as TsDuration, Timestamp};
use robustness_common::common::{scratch, stderr};
use robustness_common::*;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Session starts (seconds since the epoch) in file order: normal, an hour back, 76
/// years ahead, the epoch itself, back to normal, and a second ahead of the start.
const EPOCHS: [i64; 6] = [1_714_564_800, 1_714_561_200, 4_112_000_000, 0, 1_714_564_900, 1_714_564_801];

fn write_jumpy(path: &Path) -> usize {
    let mut w = PcapWriter::new(std::fs::File::create(path).unwrap(), TsResolution::Nano).unwrap();
    let mut n = 0;
    for (i, &secs) in EPOCHS.iter().enumerate() {
        // A scan at every epoch (detector windows), then one distinct TCP session.
        let mut pkts = public_syn_scan(&ScenarioCtx::new(i as u64, secs));
        let mut tr = Trace::new(i as u64);
        let c: SocketAddr = format!("10.1.0.{}:40000", 10 + i).parse().unwrap();
        let s: SocketAddr = "203.0.113.9:443".parse().unwrap();
        tr.tcp_session(c, s, Timestamp::from_secs(secs + 30), TsDuration::from_millis(30), 500, 5000);
        pkts.extend(tr.into_sorted());
        for p in &pkts {
            w.write_packet(p).unwrap();
        }
        n += pkts.len();
    }
    w.finish().unwrap();
    n
}

fn check_records(recs: &[serde_json::Value]) {
    for r in recs {
        let start = r["EventStartTime"].as_str().unwrap();
        let end = r["EventEndTime"].as_str().unwrap();
        assert!(start <= end, "start after end: {r}");
        let dur = r["NetworkDuration"].as_u64().unwrap_or(0);
        assert!(dur < 3_600_000, "no session spans a time jump: {r}");
    }
}

#[test]
fn timestamps_jumping_back_and_forth_by_decades() {
    let dir = scratch("time-jumps");
    let p = dir.join("jumpy.pcap");
    let n = write_jumpy(&p);
    let (o, took) = run_within(&["replay", "--records", "-", p.to_str().unwrap()], Duration::from_secs(120));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let s = summary(&err);
    assert_eq!(s.read, n as u64);
    assert_eq!(s.decoded, n as u64);
    let (recs, alerts) = records_and_alerts(&o.stdout);
    assert_eq!(recs.len() as u64, s.records);
    assert_eq!(s.records, s.sessions, "no active-timeout split from a jump");
    check_records(&recs);
    // Every epoch's TCP session is reported exactly once.
    for i in 0..EPOCHS.len() {
        let src = format!("10.1.0.{}", 10 + i);
        let n = recs.iter().filter(|r| r["SrcIpAddr"] == src.as_str() && r["DstPortNumber"] == 443).count();
        assert_eq!(n, 1, "session from {src}");
    }
    assert!(alerts.iter().any(|a| a["AlertType"] == "PortScan"), "scans are still found");
    eprintln!("jumpy replay took {took:?}");
}

#[test]
fn all_zero_timestamps() {
    let dir = scratch("time-zero");
    let p = dir.join("zero.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&p).unwrap(), TsResolution::Micro).unwrap();
    let mut pkts = public_syn_scan(&ScenarioCtx::new(1, 0));
    for q in pkts.iter_mut() {
        q.ts = Timestamp::ZERO;
    }
    for q in &pkts {
        w.write_packet(q).unwrap();
    }
    w.finish().unwrap();
    let (o, _) = run_within(&["replay", "--records", "-", p.to_str().unwrap()], Duration::from_secs(60));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let s = summary(&err);
    assert_eq!(s.read, pkts.len() as u64);
    let (recs, alerts) = records_and_alerts(&o.stdout);
    assert_eq!(recs.len() as u64, s.records);
    assert!(s.records > 100, "one record per probed port: {s:?}");
    for r in &recs {
        assert!(r["EventStartTime"].as_str().unwrap().starts_with("1970-01-01T00:00:00"), "{r}");
    }
    check_records(&recs);
    assert!(alerts.iter().any(|a| a["AlertType"] == "PortScan"), "a scan at time zero is a scan");
}
