//! Microbenchmarks of the hot paths, with plain timing loops (`harness = false`, no extra
//! dependency): decode, flow table, detectors (and each Sentinel rule alone), record
//! formatting, on benchmark mixes a, b and c (and the SYN flood e, with `MICRO_MIXES`) generated in memory (so runs are
//! reproducible anywhere); then the detector-table
//! churn ("thrash") comparison on mixes b and c, whose sources far outnumber the default
//! tables: each family with its default tables against tables big enough. Mix e (the
//! SYN flood with its hidden scan and beacon; `MICRO_THRASH_MIXES="c e"`) works too.
//!
//!   cargo bench --bench micro                 # 300 k packets per mix, 1 M for the churn
//!   MICRO_PACKETS=1000000 MICRO_MIXES="a b" MICRO_THRASH_MIXES=c MICRO_THRASH_PACKETS=2000000 \
//!       cargo bench --bench micro
//!
//! `MICRO_MIXES` picks the mixes (default "a b c"; `e` is the SYN flood, whose
//! `packets` counts flood SYNs as in benches/run.sh).
//! `MICRO_STAGES=flow` stops each mix after decode and the flow table (no detectors or
//! formatting), for quick before/after runs of the reader and capture threads' work.
//! `MICRO_STAGES=records` skips the detectors and times record formatting alone (the
//! writer thread's work, and no churn runs unless `MICRO_THRASH_MIXES` is set), e.g.
//! `MICRO_STAGES=records MICRO_MIXES="a b" cargo bench --bench micro`.
//!
//! Each stage runs 5 times over the same input; the median time per item is printed.

use flowsentry::capture::Frame;
use flowsentry::capture::LinkType;
use flowsentry::decode::{decode, PacketMeta};
use flowsentry::detect::{DetectConfig, DetectorSet, RuleSet};
use flowsentry::flow::{FlowConfig, FlowEvent, FlowRecord, FlowTable};
use flowsentry::net::NetSet;
use flowsentry::output::records::{Device, RecordBuffer, RecordContext, RecordWriter};
use flowsentry::synth::{
    flood::flood_mixed_in, write_hosts, write_mixed, write_short, write_syn_flood, FloodParams, MixParams, MixedParams,
    PcapWriter, ScenarioCtx, TsResolution,
};
use flowsentry::time::Timestamp;
use std::hint::black_box;
use std::time::Instant;

const REPEATS: usize = 5;

/// Generates mix `mix` (as benches/run.sh does) and splits the in-memory pcap
/// (nanosecond, little endian) into frames.
fn frames(mix: &str, packets: u64) -> Vec<(Timestamp, Vec<u8>)> {
    let mut w = PcapWriter::new(Vec::new(), TsResolution::Nano).expect("pcap writer");
    let ctx = ScenarioCtx::new(1, 1_700_000_000);
    match mix {
        "a" => {
            let params = MixedParams { packets, session_rate: 12_500.0, hosts: 50_000 };
            write_mixed(&ctx, &params, &mut w).map(|_| ())
        }
        "b" => {
            write_short(&ctx, &MixParams { packets, session_rate: 5000.0, hosts: 50_000, duration_secs: None }, &mut w)
                .map(|_| ())
        }
        "c" => write_hosts(
            &ctx,
            &MixParams { packets, session_rate: 110.0, hosts: 1_000_000, duration_secs: None },
            &mut w,
        )
        .map(|_| ()),
        "e" => {
            // The SYN flood of benches/run.sh mix e (with its hidden scanner and beacon).
            let params = FloodParams { packets, ..FloodParams::default() };
            let hidden = flood_mixed_in(&ctx, &params);
            write_syn_flood(&ctx, &params, &hidden, &mut w).map(|_| ())
        }
        other => panic!("MICRO_MIXES: unknown mix {other} (a, b, c or e)"),
    }
    .expect("generate mix");
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
    run_detectors_with(&DetectConfig { rules, ..DetectConfig::default() }, events).0
}

/// Runs the detectors of `cfg` over `events`; returns (alerts, detector evictions).
fn run_detectors_with(cfg: &DetectConfig, events: &[FlowEvent]) -> (usize, u64) {
    drive(&mut DetectorSet::new(cfg), events)
}

/// Feeds `events` to `set` as a family thread does (capture time after every 1024
/// events), then finishes it: the alerts raised and the table evictions.
fn drive(set: &mut DetectorSet, events: &[FlowEvent]) -> (usize, u64) {
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
    (alerts.len(), set.usage().evictions())
}

fn decoded(frames: &[(Timestamp, Vec<u8>)]) -> Vec<PacketMeta> {
    frames
        .iter()
        .filter_map(|(ts, data)| {
            let f = Frame { link: LinkType::Ethernet, ts: *ts, wire_len: data.len() as u32, data };
            decode(LinkType::Ethernet, &f).ok()
        })
        .collect()
}

fn main() {
    let env = |k: &str| std::env::var(k).ok();
    let packets: u64 = env("MICRO_PACKETS").and_then(|v| v.parse().ok()).unwrap_or(300_000);
    let thrash_packets: u64 = env("MICRO_THRASH_PACKETS").and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let mixes = env("MICRO_MIXES").unwrap_or_else(|| "a b c".into());
    for mix in mixes.split_whitespace() {
        stages(mix, packets);
    }
    // MICRO_STAGES=records is about formatting alone: no churn runs unless asked for.
    let default_thrash = if env("MICRO_STAGES").is_some_and(|v| v == "records") { "" } else { "b c" };
    for mix in env("MICRO_THRASH_MIXES").unwrap_or_else(|| default_thrash.into()).split_whitespace() {
        thrash(mix, thrash_packets);
    }
}

/// Every stage on one mix.
fn stages(mix: &str, packets: u64) {
    let t = Instant::now();
    let frames = frames(mix, packets);
    println!("\n== mix {mix}: {} frames, generated in {:.2} s", frames.len(), t.elapsed().as_secs_f64());

    bench("decode (Ethernet)", frames.len(), || {
        for (ts, data) in &frames {
            let f = Frame { link: LinkType::Ethernet, ts: *ts, wire_len: data.len() as u32, data };
            let _ = black_box(decode(LinkType::Ethernet, &f));
        }
    });
    let metas = decoded(&frames);

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

    let stage = std::env::var("MICRO_STAGES").unwrap_or_default();
    if stage == "flow" {
        return; // decode and flow table only (MICRO_STAGES=flow)
    }
    let events = flow_events(&metas);
    let ends: Vec<_> = events.iter().filter_map(|e| if let FlowEvent::End(r) = e { Some(r) } else { None }).collect();
    println!("flow events: {} ({} records)", events.len(), ends.len());
    if stage != "records" {
        detector_stages(&events);
    }
    record_stage(&events, &ends);
}

/// The detectors, all together, per family and per Sentinel rule.
fn detector_stages(events: &[FlowEvent]) {
    for (name, rules) in [
        ("detectors: all", RuleSet::All),
        ("detectors: sentinel", RuleSet::Sentinel),
        ("detectors: enhanced", RuleSet::Enhanced),
    ] {
        bench(name, events.len(), || {
            black_box(run_detectors(rules, events));
        });
    }
    sentinel_rules(events);
}

/// Record formatting (the writer thread's work per ended session).
fn record_stage(events: &[FlowEvent], ends: &[&FlowRecord]) {
    let device =
        Device { name: "bench-sensor".into(), ip: Some([192, 0, 2, 1].into()), interface: Some("eth1".into()) };
    let mut ctx = RecordContext::new(device, NetSet::default_home(), 0, None);
    ctx.observe(events);
    let (mut buf, mut writer) = (RecordBuffer::default(), RecordWriter::default());
    bench("record JSON formatting", ends.len(), || {
        for r in ends {
            writer.write(r, &ctx, &mut buf);
            if buf.len() > 1 << 19 {
                black_box(buf.as_bytes());
                buf.clear();
            }
        }
    });
}

/// Detector-table churn: each family on a mix with its default tables (mixes b and c
/// have more sources than the default tables hold) and with enhanced tables big enough
/// for the whole population; the cost per event of the first over the second.
fn thrash(mix: &str, packets: u64) {
    let frames = frames(mix, packets);
    let events = flow_events(&decoded(&frames));
    drop(frames);
    println!("\n== table churn: mix {mix}, {packets} packets, {} flow events", events.len());
    let mut big = DetectConfig::default();
    big.enhanced.scan_max_sources = 4_000_000;
    big.enhanced.beacon_max_series = 4_000_000;
    for (family, rules) in [("enhanced", RuleSet::Enhanced), ("sentinel", RuleSet::Sentinel)] {
        let small = DetectConfig { rules, ..DetectConfig::default() };
        let big = DetectConfig { rules, ..big.clone() };
        let (alerts_s, ev_s) = run_detectors_with(&small, &events);
        let (alerts_b, ev_b) = run_detectors_with(&big, &events);
        let ns_small = bench(&format!("{family}: default tables"), events.len(), || {
            black_box(run_detectors_with(&small, &events));
        });
        let ns_big = bench(&format!("{family}: tables >= population"), events.len(), || {
            black_box(run_detectors_with(&big, &events));
        });
        println!(
            "{family}: default tables {ns_small:.0} ns/event ({ev_s} evictions, {alerts_s} alerts), big tables \
             {ns_big:.0} ns/event ({ev_b} evictions, {alerts_b} alerts): churn costs {:.2}x",
            ns_small / ns_big
        );
    }
}

/// Each Sentinel rule alone (default limits), fed as the family thread feeds it: every
/// event, capture time after every 1024.
fn sentinel_rules(events: &[FlowEvent]) {
    use flowsentry::detect::sentinel::{beaconing::SentinelBeaconing, portscan::SentinelPortScan, SentinelLimits};
    let limits = SentinelLimits::default();
    let run = |det: Box<dyn flowsentry::detect::Detector>| drive(&mut DetectorSet::of(vec![det]), events).0;
    bench("sentinel: port scan rule", events.len(), || {
        black_box(run(Box::new(SentinelPortScan::new(limits.portscan_max_sources))));
    });
    bench("sentinel: beaconing rule", events.len(), || {
        black_box(run(Box::new(SentinelBeaconing::new(limits.beacon_max_rows))));
    });
}
