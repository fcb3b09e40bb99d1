//! Helpers shared by the fuzz targets: the link type picked by one input byte, a
//! splitter that turns fuzz bytes into timestamped frames, and the whole
//! decode → flow table → detectors chain with its invariants checked.

#![allow(dead_code)] // each target uses part of this module

use flowsentry::capture::{LinkType, PacketSource};
use flowsentry::decode::decode;
use flowsentry::detect::alert::SESSION_SAMPLE;
use flowsentry::detect::{Alert, DetectConfig, DetectorSet};
use flowsentry::flow::{FlowConfig, FlowEvent, FlowTable};
use flowsentry::net::NetSet;
use flowsentry::output::records::{Device, RecordContext};
use flowsentry::time::Timestamp;
use std::collections::{HashMap, HashSet};

/// Every link type the decoder supports, indexed by the first input byte.
pub const LINKS: [LinkType; 8] = LinkType::ALL;

pub fn link_from(byte: u8) -> LinkType {
    LINKS[usize::from(byte) % LINKS.len()]
}

/// Splits `data` into frames: each frame is a 2-byte length, a 1-byte time step code,
/// then that many bytes. Time steps include backwards jumps and jumps of years.
pub fn frames(mut data: &[u8]) -> Vec<(Timestamp, Vec<u8>)> {
    let mut out = Vec::new();
    let mut ts: i64 = 1_714_564_800_000_000_000;
    while data.len() >= 3 && out.len() < 4096 {
        let len = usize::from(u16::from_le_bytes([data[0], data[1]]) % 2048);
        let step = data[2];
        data = &data[3..];
        ts = match step % 8 {
            0 => ts,
            1 => ts.saturating_add(1_000_000),
            2 => ts.saturating_add(i64::from(step) * 1_000_000_000),
            3 => ts.saturating_sub(i64::from(step) * 1_000_000_000),
            4 => ts.saturating_add(10 * 365 * 86_400 * 1_000_000_000),
            5 => ts.saturating_sub(10 * 365 * 86_400 * 1_000_000_000),
            6 => 0,
            _ => ts.saturating_add(61_000_000_000),
        };
        let take = len.min(data.len());
        out.push((Timestamp(ts), data[..take].to_vec()));
        data = &data[take..];
    }
    out
}

/// Runs frames from `source` through decode, a small flow table and every detector,
/// and checks the counters and the Start/End pairing.
pub fn run_pipeline(source: &mut dyn PacketSource, max_flows: usize) {
    let flow_cfg = FlowConfig { max_flows, ..FlowConfig::default() };
    let mut table = FlowTable::new(flow_cfg);
    let mut detectors = DetectorSet::new(&DetectConfig::default());
    let mut events: Vec<FlowEvent> = Vec::new();
    let mut alerts: Vec<Alert> = Vec::new();
    let mut open: HashMap<u64, ()> = HashMap::new();
    let mut started: HashSet<u64> = HashSet::new();
    let ctx = RecordContext::new(Device { name: "fuzz".into(), ip: None, interface: None }, NetSet::default_home(), 0, None);
    // An alert's sessions are a bounded, non-empty sample of sessions that started.
    let check_alert = |a: &Alert, started: &HashSet<u64>| {
        assert!(!a.sessions.is_empty() && a.sessions.len() <= SESSION_SAMPLE, "sessions {:?}", a.sessions);
        assert!(a.sessions.iter().all(|id| started.contains(id)), "unknown session in {:?}", a.sessions);
        let _ = a.to_json(&ctx);
    };
    let (mut read, mut decoded, mut skipped) = (0u64, 0u64, 0u64);
    let mut check = |events: &mut Vec<FlowEvent>, detectors: &mut DetectorSet, alerts: &mut Vec<Alert>| {
        for ev in events.iter() {
            match ev {
                FlowEvent::Start(s) => {
                    assert!(open.insert(s.id, ()).is_none(), "duplicate Start {}", s.id);
                    started.insert(s.id);
                }
                FlowEvent::End(r) => {
                    assert!(open.remove(&r.id).is_some(), "End {} without Start", r.id);
                    assert!(r.start <= r.end, "record ends before it starts");
                }
                FlowEvent::Exchange(x) => {
                    assert!(open.contains_key(&x.id), "Exchange of session {} that is not open", x.id);
                    assert!(x.start <= x.end, "exchange ends before it starts");
                }
            }
            detectors.on_event(ev, alerts);
        }
        events.clear();
        for a in alerts.drain(..) {
            check_alert(&a, &started);
        }
    };
    loop {
        let frame = match source.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) | Err(_) => break,
        };
        read += 1;
        match decode(frame.link, &frame) {
            Ok(meta) => {
                decoded += 1;
                table.ingest_at(&meta, &mut events);
            }
            Err(_) => skipped += 1,
        }
        assert!(table.counters().active as usize <= max_flows.max(1));
        check(&mut events, &mut detectors, &mut alerts);
        detectors.on_time(table.now(), &mut alerts);
    }
    table.flush_all(&mut events);
    check(&mut events, &mut detectors, &mut alerts);
    detectors.finish(&mut alerts);
    for a in &alerts {
        let _ = a.to_json(&ctx);
        assert!(!a.sessions.is_empty() && a.sessions.len() <= SESSION_SAMPLE);
    }
    assert_eq!(decoded + skipped, read);
    let c = table.counters();
    assert_eq!(c.active, 0);
    assert_eq!(c.records, c.sessions + c.active_splits, "records != sessions + splits");
    assert!(open.is_empty(), "{} sessions never ended", open.len());
}
