//! Parity of the sentinel detectors with the independent reference evaluator
//! (tests/reference/compare.py) on pseudo-random session streams fed straight to the
//! detectors — beacons with jitter, interleaved destinations, long overlapping sessions
//! and scans across bin boundaries.

use flowsentry::detect::sentinel::{detectors_with, SentinelLimits};
use flowsentry::detect::{Alert, DetectConfig};
use flowsentry::flow::{ConnState, EndReason, EventResult, FirstPacket, FlowEvent, FlowRecord, SessionStart};
use flowsentry::output::records::{write_record, Device, RecordContext};
use flowsentry::time::{Duration, Timestamp};
use std::io::Write;
use std::net::IpAddr;
use std::process::Command;

struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

struct Session {
    start: Timestamp,
    end: Timestamp,
    src: IpAddr,
    dst: IpAddr,
    dport: Option<u16>,
    bytes: u64,
}

fn sessions(seed: u64) -> Vec<Session> {
    let mut rng = Lcg(seed);
    let t0 = 1_699_999_200i64 * 1_000_000_000 - 1_800 * 1_000_000_000;
    let srcs = ["192.0.2.10", "192.0.2.11", "203.0.113.5", "198.51.100.77", "2001:db8::7"];
    let dsts = ["198.51.100.7", "198.51.100.8", "203.0.113.9", "10.0.0.5", "2001:db8::9", "192.0.2.200"];
    let mut out = Vec::new();
    // Beacons: a source polls a destination every `period` s with jitter.
    for b in 0..6 {
        let src: IpAddr = srcs[b % 3].parse().unwrap();
        let dst: IpAddr = dsts[rng.next(dsts.len() as u64) as usize].parse().unwrap();
        let period = 20 + rng.next(100) as i64;
        let jitter = rng.next(3) as i64; // 0..2 s
        let mut t = t0 + rng.next(600) as i64 * 1_000_000_000;
        for _ in 0..(40 + rng.next(150)) {
            let j = if jitter > 0 { rng.next(jitter as u64 * 1000) as i64 * 1_000_000 } else { 0 };
            let start = Timestamp(t + j + rng.next(1_000_000) as i64 * 1000);
            let long = rng.next(10) == 0;
            let dur = if long { 200 + rng.next(3000) } else { rng.next(5) } as i64 * 1_000_000_000;
            out.push(Session {
                start,
                end: Timestamp(start.0 + dur),
                src,
                dst,
                dport: Some(443),
                bytes: 100 + rng.next(50),
            });
            t += period * 1_000_000_000;
        }
    }
    // Noise and scans.
    for _ in 0..3000 {
        let src: IpAddr = srcs[rng.next(srcs.len() as u64) as usize].parse().unwrap();
        let dst: IpAddr = dsts[rng.next(dsts.len() as u64) as usize].parse().unwrap();
        let start = Timestamp(t0 + rng.next(4 * 3600 * 1_000_000) as i64 * 1000);
        let dport = if rng.next(20) == 0 { None } else { Some(1 + rng.next(120) as u16) };
        out.push(Session {
            start,
            end: Timestamp(start.0 + rng.next(30_000_000) as i64 * 1000),
            src,
            dst,
            dport,
            bytes: rng.next(1000),
        });
    }
    out
}

/// Builds the event stream in capture order: Starts at their start, Ends at their end.
fn events(sessions: &[Session]) -> Vec<(Timestamp, FlowEvent)> {
    let mut ev = Vec::new();
    for (i, s) in sessions.iter().enumerate() {
        let id = i as u64 + 1;
        ev.push((
            s.start,
            0u8,
            id,
            FlowEvent::Start(SessionStart {
                id,
                ts: s.start,
                src: s.src,
                dst: s.dst,
                sport: s.dport.map(|_| 40000 + (id % 20000) as u16),
                dport: s.dport,
                protocol: if s.dport.is_some() { 6 } else { 1 },
                segment: 0,
                first: FirstPacket::default(),
            }),
        ));
        ev.push((
            s.end,
            1u8,
            id,
            FlowEvent::End(FlowRecord {
                id,
                segment: 0,
                start: s.start,
                end: s.end,
                src: s.src,
                dst: s.dst,
                sport: s.dport.map(|_| 40000 + (id % 20000) as u16),
                dport: s.dport,
                protocol: if s.dport.is_some() { 6 } else { 1 },
                src_bytes: s.bytes,
                dst_bytes: 3 * s.bytes,
                src_packets: 1,
                dst_packets: 1,
                icmp_type: None,
                icmp_code: None,
                vlan: None,
                conn_state: ConnState::SF,
                result: EventResult::Success,
                end_reason: EndReason::Fin,
                src_tcp_flags: 0,
                dst_tcp_flags: 0,
                icmp_errors: 0,
                last_icmp_error: None,
                first: FirstPacket::default(),
                history: Default::default(),
            }),
        ));
    }
    ev.sort_by_key(|(t, kind, id, _)| (*t, *kind, *id));
    ev.into_iter().map(|(t, _, _, e)| (t, e)).collect()
}

/// The record as flowsentry writes it (the real writer, so the reference reads the real format).
fn record_json(r: &FlowRecord, ctx: &RecordContext) -> String {
    let mut out = Vec::new();
    write_record(r, ctx, &mut out);
    String::from_utf8(out).unwrap()
}

fn run_parity(seed: u64, tick: Duration) -> usize {
    let evs = events(&sessions(seed));
    let mut dets = detectors_with(&DetectConfig::default(), SentinelLimits::default());
    let mut alerts: Vec<Alert> = Vec::new();
    let mut records = String::new();
    let device = Device { name: "parity".into(), ip: None, interface: None };
    let ctx = RecordContext::new(device, DetectConfig::default().home_net, 0, None);
    let mut last_tick = Timestamp(i64::MIN);
    for (t, e) in &evs {
        for d in dets.iter_mut() {
            d.on_event(e, &mut alerts);
        }
        if let FlowEvent::End(r) = e {
            records.push_str(&record_json(r, &ctx));
        }
        if t.0 - last_tick.0.max(i64::MIN / 2) >= tick.0 {
            last_tick = *t;
            for d in dets.iter_mut() {
                d.on_time(*t, &mut alerts);
            }
        }
    }
    for d in dets.iter_mut() {
        d.finish(&mut alerts);
    }
    let dir = std::env::temp_dir().join(format!("flowsentry-parity-{}-{seed}-{}", std::process::id(), tick.0));
    std::fs::create_dir_all(&dir).unwrap();
    let rec_path = dir.join("records.jsonl");
    let alert_path = dir.join("alerts.jsonl");
    std::fs::write(&rec_path, records).unwrap();
    let mut f = std::fs::File::create(&alert_path).unwrap();
    let ctx = flowsentry::output::records::RecordContext::new(
        flowsentry::output::records::Device { name: "parity".into(), ip: None, interface: None },
        flowsentry::net::NetSet::default_home(),
        0,
        None,
    );
    for a in &alerts {
        writeln!(f, "{}", a.to_json(&ctx)).unwrap();
    }
    let out = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/compare.py"))
        .arg(&rec_path)
        .arg(&alert_path)
        .output()
        .expect("python3 must be installed to run the parity check");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "seed {seed}: parity failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let beacons = alerts.iter().filter(|a| a.alert_type == flowsentry::detect::AlertType::Beaconing).count();
    eprintln!("seed {seed} tick {:?}: {} alerts, {beacons} beaconing", tick, alerts.len());
    alerts.len()
}

#[test]
fn sentinel_detectors_match_the_reference_queries() {
    let mut total = 0;
    for seed in 1..=6 {
        total += run_parity(seed, Duration::from_secs(1));
        total += run_parity(seed, Duration::from_secs(600));
    }
    assert!(total > 10, "the generated streams must produce alerts to compare ({total})");
}

#[test]
fn reference_self_test_passes() {
    let out = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/sentinel_rules.py"))
        .arg("--self-test")
        .output()
        .expect("python3 must be installed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}
