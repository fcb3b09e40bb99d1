//! Microbenchmarks of the hot paths, with plain timing loops (`harness = false`, no extra
//! dependency): decode, flow table, detectors, record formatting. Input is the synthetic
//! benchmark mix generated in memory, so runs are reproducible anywhere.
//!
//!   cargo bench --bench micro                 # 300 k packets
//!   MICRO_PACKETS=1000000 cargo bench --bench micro
//!
//! Each stage runs 5 times over the same input; the median time per item is printed.

use flowsentry::capture::Frame;
use flowsentry::capture::LinkType;
use flowsentry::decode::{decode, PacketMeta};
use flowsentry::detect::{DetectConfig, DetectorSet, RuleSet};
use flowsentry::flow::{FlowConfig, FlowEvent, FlowTable};
use flowsentry::net::NetSet;
use flowsentry::output::records::{write_record, Device, RecordContext};
use flowsentry::synth::{write_mixed, MixedParams, PcapWriter, ScenarioCtx, TsResolution};
use flowsentry::time::Timestamp;
use std::hint::black_box;
use std::time::Instant;

const REPEATS: usize = 5;

/// Generates the mix and splits the in-memory pcap (nanosecond, little endian) into frames.
fn frames(packets: u64) -> Vec<(Timestamp, Vec<u8>)> {
    let mut w = PcapWriter::new(Vec::new(), TsResolution::Nano).expect("pcap writer");
    let params = MixedParams { packets, session_rate: 12_500.0, hosts: 50_000 };
    write_mixed(&ScenarioCtx::new(1, 1_700_000_000), &params, &mut w).expect("generate mix");
    let pcap = w.finish().expect("finish pcap");
    let mut out = Vec::with_capacity(packets as usize);
    let mut at = 24;
    let u32_at = |i: usize| u32::from_le_bytes(pcap[i..i + 4].try_into().expect("4 bytes"));
    while at + 16 <= pcap.len() {
        let ts = Timestamp::from_sec_nsec(i64::from(u32_at(at)), i64::from(u32_at(at + 4)));
        let len = u32_at(at + 8) as usize;
        out.push((ts, pcap[at + 16..at + 16 + len].to_vec()));
        at += 16 + len;
    }
    out
}

/// Runs `f` REPEATS times; prints and returns the median nanoseconds per item.
fn bench(name: &str, items: usize, mut f: impl FnMut()) -> f64 {
    let mut ns: Vec<f64> = (0..REPEATS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_nanos() as f64 / items as f64
        })
        .collect();
    ns.sort_by(f64::total_cmp);
    let median = ns[REPEATS / 2];
    println!("{name:<34} {items:>9} items  {median:>8.1} ns/item  (min {:.1}, max {:.1})", ns[0], ns[REPEATS - 1]);
    median
}

fn flow_events(metas: &[PacketMeta]) -> Vec<FlowEvent> {
    let mut table = FlowTable::new(FlowConfig::default());
    let mut events = Vec::new();
    for m in metas {
        table.ingest_at(m, &mut events);
    }
    table.flush_all(&mut events);
    events
}

fn run_detectors(rules: RuleSet, events: &[FlowEvent]) -> usize {
    let cfg = DetectConfig { rules, ..DetectConfig::default() };
    let mut set = DetectorSet::new(&cfg);
    let mut alerts = Vec::new();
    let mut now = Timestamp::ZERO;
    for (i, ev) in events.iter().enumerate() {
        now = now.max(match ev {
            FlowEvent::Start(s) => s.ts,
            FlowEvent::End(r) => r.end,
            FlowEvent::Exchange(x) => x.end,
        });
        set.on_event(ev, &mut alerts);
        if i % 1024 == 1023 {
            set.on_time(now, &mut alerts);
        }
    }
    set.finish(&mut alerts);
    alerts.len()
}

fn main() {
    let packets: u64 = std::env::var("MICRO_PACKETS").ok().and_then(|v| v.parse().ok()).unwrap_or(300_000);
    let t = Instant::now();
    let frames = frames(packets);
    println!("input: {} frames of the benchmark mix, generated in {:.2} s", frames.len(), t.elapsed().as_secs_f64());

    bench("decode (Ethernet)", frames.len(), || {
        for (ts, data) in &frames {
            let f = Frame { link: LinkType::Ethernet, ts: *ts, wire_len: data.len() as u32, data };
            let _ = black_box(decode(LinkType::Ethernet, &f));
        }
    });
    let metas: Vec<PacketMeta> = frames
        .iter()
        .filter_map(|(ts, data)| {
            let f = Frame { link: LinkType::Ethernet, ts: *ts, wire_len: data.len() as u32, data };
            decode(LinkType::Ethernet, &f).ok()
        })
        .collect();

    bench("flow table ingest", metas.len(), || {
        let mut table = FlowTable::new(FlowConfig::default());
        let mut events = Vec::with_capacity(4096);
        for m in &metas {
            table.ingest_at(m, &mut events);
            if events.len() > 4000 {
                black_box(&events);
                events.clear();
            }
        }
        table.flush_all(&mut events);
        black_box(events);
    });

    let events = flow_events(&metas);
    let ends: Vec<_> = events.iter().filter_map(|e| if let FlowEvent::End(r) = e { Some(r) } else { None }).collect();
    println!("flow events: {} ({} records)", events.len(), ends.len());
    for (name, rules) in [
        ("detectors: all", RuleSet::All),
        ("detectors: sentinel", RuleSet::Sentinel),
        ("detectors: enhanced", RuleSet::Enhanced),
    ] {
        bench(name, events.len(), || {
            black_box(run_detectors(rules, &events));
        });
    }

    let device =
        Device { name: "bench-sensor".into(), ip: Some([192, 0, 2, 1].into()), interface: Some("eth1".into()) };
    let mut ctx = RecordContext::new(device, NetSet::default_home(), 0, None);
    ctx.observe(&events);
    let mut buf = Vec::with_capacity(1 << 20);
    bench("record JSON formatting", ends.len(), || {
        for r in &ends {
            write_record(r, &ctx, &mut buf);
            if buf.len() > 1 << 19 {
                black_box(&buf);
                buf.clear();
            }
        }
    });
}
