//! The threads and the channels between them.
//!
//! ```text
//!  [capture "fs-capture"]            [one thread per detector family]     [writer "fs-write"]
//!  PacketSource::next_frame           "fs-sentinel": DetectorSet ──alerts──►┐
//!   ─► decode ─► FlowTable ──Arc<Batch>►                                     ├► merge ─► alerts sink
//!   (pcap file / interface)  │         "fs-enhanced": DetectorSet ──alerts──►┘
//!                            └─────────Arc<Batch>──────────────────────────► records sink
//! ```
//!
//! Each batch of FlowEvents goes, as one shared `Arc<Batch>`, over a bounded crossbeam
//! channel to every detector family thread (`--rules all` runs sentinel and enhanced
//! side by side on two cores) and to the writer thread. For every batch each family
//! thread sends back its alerts, each tagged with the index of the event that raised it;
//! the writer formats the batch's records, then merges the families' alerts by (event,
//! family order) — exactly the order one thread running sentinel then enhanced on every
//! event would produce — so output stays byte-identical and deterministic. The writer
//! hands emptied batch vectors back to the capture thread for reuse. Reload and Reopen
//! messages go down every channel in order with the batches, so they take effect at the
//! same batch boundary on every thread.
//!
//! Time comes only from packets: each batch carries `now`, the capture time reached. On a
//! live link that goes quiet, the capture thread advances `now` by the wall time elapsed
//! since the last packet (read timeout), so idle sessions still expire. The channels are
//! bounded; when one is full the capture thread waits (counted as `queue_waits`) and the
//! kernel's capture buffer absorbs the burst, dropping and counting packets beyond it —
//! nothing is ever queued without bound. At the end (EOF, signal, or a capture error)
//! every open session is flushed as a record and the detectors evaluate their pending
//! windows before the outputs are flushed.

use crate::capture::PacketSource;
use crate::config::Config;
use crate::detect::{Alert, DetectConfig, DetectorSet, DetectorUsage, RuleSet};
use crate::flow::{FlowEvent, FlowTable};
use crate::input::{Input, Inputs};
use crate::log;
use crate::output::records::{write_record, RecordContext};
use crate::output::sink::{Sink, SinkError};
use crate::stats::{Snapshot, Stats};
use crate::time::{Duration, Timestamp};
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

/// Flow events per batch before it is sent.
const BATCH_EVENTS: usize = 1024;
/// Packets read before a batch is sent even if it holds few events (so `now` advances).
const BATCH_PACKETS: u32 = 8192;
/// A packet this much older than capture time is worth a warning (files out of order).
const CLOCK_BACK_WARNING: Duration = Duration(3600 * 1_000_000_000);
/// Formatted records held before they are handed to the sink.
const REC_BUF_FLUSH: usize = 512 * 1024;
/// Batches the channel holds.
const CHANNEL_BATCHES: usize = 64;
/// On a live link, a batch waits at most this long (alert latency).
const LIVE_BATCH_DELAY: std::time::Duration = std::time::Duration::from_millis(100);

/// Flow events read up to capture time `now`, shared by the family threads and the writer.
pub struct Batch {
    pub events: Vec<FlowEvent>,
    pub now: Timestamp,
}

/// What the capture thread tells every detector family thread and the writer thread.
#[derive(Clone)]
pub enum ToDetector {
    Batch(Arc<Batch>),
    /// SIGHUP: new detector settings (home networks, thresholds, allowlists).
    Reload(Arc<DetectConfig>),
    /// SIGHUP: reopen output files (logrotate). Only the writer acts on it.
    Reopen,
}

/// What one detector family found in one batch (or at the end of input).
#[derive(Default)]
struct FamilyAlerts {
    alerts: Vec<Alert>,
    /// For each alert, the index in the batch of the event that raised it; the batch
    /// length for alerts raised when time advanced after the batch (`on_time`).
    raised_at: Vec<u32>,
    usage: DetectorUsage,
}

/// Flags set by signal handlers (see [`crate::service`]) and by the detector thread.
#[derive(Clone, Default)]
pub struct Control {
    /// Stop capturing, flush everything, exit.
    pub terminate: Arc<AtomicBool>,
    /// Reload settings and reopen outputs.
    pub reload: Arc<AtomicBool>,
    /// Print a stats line now.
    pub stats_now: Arc<AtomicBool>,
}

/// The JSON Lines outputs, opened before capture starts so a bad path fails early.
pub struct Outputs {
    pub records: Option<Sink>,
    /// None: alerts share the records sink (both on stdout).
    pub alerts: Option<Sink>,
}

impl Outputs {
    pub fn open(cfg: &Config) -> Result<Outputs, String> {
        let records = cfg.records.as_ref().map(|p| Sink::open("records", p)).transpose()?;
        let shared = matches!((&cfg.records, &cfg.alerts), (Some(r), a) if r == a);
        let alerts = if shared { None } else { Some(Sink::open("alerts", &cfg.alerts)?) };
        Ok(Outputs { records, alerts })
    }
}

/// How the run ended.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The capture failed (a file fault, the interface gone): exit non-zero. A replay
    /// goes on with the next file after a broken one, so there may be several.
    pub capture_errors: Vec<String>,
    /// Writing an output failed: exit non-zero.
    pub output_error: Option<String>,
    /// stdout was closed by its reader: not an error.
    pub broken_pipe: bool,
    pub stats: Snapshot,
}

/// Runs capture and detection to the end (EOF, termination, or a fatal error).
pub fn run(
    cfg: &Config,
    source: Box<dyn PacketSource + Send>,
    outputs: Outputs,
    control: Control,
    stats: Arc<Stats>,
) -> Outcome {
    let ctx = RecordContext { dvc: cfg.sensor_name.clone(), home_net: cfg.detect.home_net.clone() };
    let live = source.is_live();
    // Every consumer of the capture thread's messages: the family threads, then the writer.
    let mut to_consumers = Vec::new();
    let mut from_families = Vec::new();
    let mut family_threads = Vec::new();
    for (name, rules) in [("fs-sentinel", RuleSet::Sentinel), ("fs-enhanced", RuleSet::Enhanced)] {
        let wanted = if rules == RuleSet::Sentinel { cfg.detect.rules.sentinel() } else { cfg.detect.rules.enhanced() };
        if !wanted {
            continue;
        }
        let (tx, rx) = bounded::<ToDetector>(CHANNEL_BATCHES);
        let (found_tx, found_rx) = bounded::<FamilyAlerts>(CHANNEL_BATCHES);
        let detectors = DetectorSet::new(&DetectConfig { rules, ..cfg.detect.clone() });
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || family_thread(rx, found_tx, detectors))
            .expect("spawn detector thread");
        to_consumers.push(tx);
        from_families.push(found_rx);
        family_threads.push(thread);
    }
    let (tx, rx) = bounded::<ToDetector>(CHANNEL_BATCHES);
    to_consumers.push(tx);
    let (recycle_tx, recycle_rx) = bounded::<Vec<FlowEvent>>(CHANNEL_BATCHES);
    let writer = {
        let (stats, control) = (Arc::clone(&stats), control.clone());
        std::thread::Builder::new()
            .name("fs-write".into())
            .spawn(move || writer_thread(rx, from_families, recycle_tx, ctx, outputs, live, stats, control))
            .expect("spawn writer thread")
    };
    let capture = {
        let (cfg, stats, control) = (cfg.clone(), Arc::clone(&stats), control.clone());
        std::thread::Builder::new()
            .name("fs-capture".into())
            .spawn(move || capture_thread(source, &cfg, to_consumers, recycle_rx, stats, control))
            .expect("spawn capture thread")
    };
    let (capture_errors, last_stats_line) =
        capture.join().unwrap_or_else(|_| (vec!["capture thread panicked".into()], Snapshot::default()));
    let (mut output_error, broken_pipe) =
        writer.join().unwrap_or_else(|_| (Some("writer thread panicked".into()), false));
    for thread in family_threads {
        if thread.join().is_err() && output_error.is_none() {
            output_error = Some("detector thread panicked".into());
        }
    }
    let snapshot = stats.snapshot();
    if live {
        log::data(&final_stats_line(&snapshot, &last_stats_line));
    }
    Outcome { capture_errors, output_error, broken_pipe, stats: snapshot }
}

/// The last stats line of a live run, written once every output is flushed, marked
/// `"final":true`; its deltas cover the time since the previous stats line.
fn final_stats_line(snapshot: &Snapshot, prev: &Snapshot) -> String {
    let line = snapshot.to_json(prev, true);
    match serde_json::from_str::<serde_json::Value>(&line) {
        Ok(serde_json::Value::Object(mut m)) => {
            m.insert("final".into(), true.into());
            serde_json::Value::Object(m).to_string()
        }
        _ => line,
    }
}

/// Sends a message to every consumer (family threads and writer); waits (counted once)
/// when one is behind. Returns false when a consumer is gone.
fn send(txs: &[Sender<ToDetector>], msg: ToDetector, stats: &Stats) -> bool {
    let (mut waited, mut delivered) = (false, true);
    for tx in txs {
        match tx.try_send(msg.clone()) {
            Ok(()) => {}
            Err(TrySendError::Full(msg)) => {
                waited = true;
                delivered &= tx.send(msg).is_ok();
            }
            Err(TrySendError::Disconnected(_)) => delivered = false,
        }
    }
    if waited {
        stats.queue_waits.fetch_add(1, Relaxed);
    }
    delivered
}

struct Batcher {
    events: Vec<FlowEvent>,
    /// Emptied event vectors handed back by the writer.
    recycled: Receiver<Vec<FlowEvent>>,
    packets: u32,
    last_sent: Instant,
    detector_gone: bool,
}

impl Batcher {
    /// Sends the pending events in batches of at most `BATCH_EVENTS` (a flush of the
    /// whole table at exit or after a time jump must not become one huge message).
    fn flush(&mut self, txs: &[Sender<ToDetector>], now: Timestamp, stats: &Stats) {
        let fresh = self.recycled.try_recv().unwrap_or_else(|_| Vec::with_capacity(BATCH_EVENTS));
        let events = std::mem::replace(&mut self.events, fresh);
        if events.len() <= BATCH_EVENTS {
            self.send_batch(txs, events, now, stats);
        } else {
            // Each message gets its own right-sized Vec: `split_off` would leave every
            // chunk holding the whole burst's capacity (quadratic memory after a mass expiry).
            let mut pending = events.into_iter().peekable();
            while pending.peek().is_some() {
                let chunk: Vec<FlowEvent> = pending.by_ref().take(BATCH_EVENTS).collect();
                self.send_batch(txs, chunk, now, stats);
            }
        }
        self.packets = 0;
        self.last_sent = Instant::now();
    }

    fn send_batch(&mut self, txs: &[Sender<ToDetector>], events: Vec<FlowEvent>, now: Timestamp, stats: &Stats) {
        let n = events.len() as u64;
        if self.detector_gone || !send(txs, ToDetector::Batch(Arc::new(Batch { events, now })), stats) {
            self.detector_gone = true;
            stats.channel_drops.fetch_add(n, Relaxed);
        }
    }
}

/// Packets counted on the capture thread, published to [`Stats`] with the flow counters
/// (before every batch and stats line) rather than one atomic add per packet.
#[derive(Default)]
struct PacketCounts {
    read: u64,
    decoded: u64,
}

fn publish_flow_counters(table: &FlowTable, counts: &PacketCounts, stats: &Stats) {
    stats.packets_read.store(counts.read, Relaxed);
    stats.packets_decoded.store(counts.decoded, Relaxed);
    let c = table.counters();
    stats.sessions.store(c.sessions, Relaxed);
    stats.active_sessions.store(c.active, Relaxed);
    stats.evictions.store(c.evictions, Relaxed);
}

/// Reads, decodes and tracks flows until EOF, termination or a fatal capture error.
/// Returns the capture errors met (a broken replay file does not stop the files after
/// it) and the counters as of the last stats line. Always flushes every open session
/// before returning.
fn capture_thread(
    source: Box<dyn PacketSource + Send>,
    cfg: &Config,
    txs: Vec<Sender<ToDetector>>,
    recycled: Receiver<Vec<FlowEvent>>,
    stats: Arc<Stats>,
    control: Control,
) -> (Vec<String>, Snapshot) {
    let mut source = Inputs::new(source);
    let live = source.is_live();
    let mut table = FlowTable::new(cfg.flow.clone());
    let mut batch = Batcher {
        events: Vec::with_capacity(BATCH_EVENTS),
        recycled,
        packets: 0,
        last_sent: Instant::now(),
        detector_gone: false,
    };
    // Live: wall-clock instant of the newest packet, to advance time on a quiet link.
    let mut last_packet_at: Option<Instant> = None;
    let mut last_stats = Instant::now();
    let mut prev_snapshot = Snapshot::default();
    let mut errors = Vec::new();
    let mut warned_backwards = false;
    let mut counts = PacketCounts::default();
    loop {
        if control.terminate.load(Relaxed) {
            if live {
                log::info(&format!("stopping: flushing {} open sessions", table.counters().active));
            }
            break;
        }
        let input = source.next_input();
        let packet = match input {
            Input::Packet(meta) => Some(meta),
            Input::Skipped(reason) => {
                stats.skip(reason);
                None
            }
            Input::End => break,
            Input::Timeout => {
                // Quiet link: capture time moves on with the wall clock since the last packet.
                if let Some(at) = last_packet_at {
                    let elapsed = Duration(at.elapsed().as_nanos().min(i64::MAX as u128) as i64);
                    let now = table.now().saturating_add(elapsed);
                    if now > table.now() {
                        table.advance_to(now, &mut batch.events);
                        last_packet_at = Some(Instant::now());
                    }
                }
                // A live ring that was drained reports a timeout after every burst, which
                // can be thousands of times a second: send at most every LIVE_BATCH_DELAY,
                // so the detector and writer threads are not woken for a few events each.
                if batch.last_sent.elapsed() >= LIVE_BATCH_DELAY {
                    publish_flow_counters(&table, &counts, &stats);
                    batch.flush(&txs, table.now(), &stats);
                }
                housekeeping(&mut source, cfg, &txs, &stats, &control, &mut last_stats, &mut prev_snapshot);
                continue;
            }
            Input::Failed(e) if !live && e.is_file_fault() => {
                errors.push(e.to_string());
                continue;
            }
            Input::Failed(e) => {
                errors.push(e.to_string());
                break;
            }
        };
        counts.read += 1;
        if let Some(meta) = packet {
            counts.decoded += 1;
            if !warned_backwards && meta.ts.saturating_add(CLOCK_BACK_WARNING) < table.now() {
                warned_backwards = true;
                log::warn(&format!(
                    "packet time went back from {} to {}: sessions of the older packets will look \
                     unanswered; replay files in time order (e.g. merge them with mergecap)",
                    table.now(),
                    meta.ts
                ));
            }
            table.ingest_at(&meta, &mut batch.events);
        }
        batch.packets += 1;
        if live {
            last_packet_at = Some(Instant::now());
        }
        let due = batch.events.len() >= BATCH_EVENTS
            || batch.packets >= BATCH_PACKETS
            || (live && batch.packets % 64 == 0 && batch.last_sent.elapsed() >= LIVE_BATCH_DELAY);
        if due {
            publish_flow_counters(&table, &counts, &stats);
            batch.flush(&txs, table.now(), &stats);
        }
        if batch.packets % 1024 == 0 {
            publish_flow_counters(&table, &counts, &stats);
            housekeeping(&mut source, cfg, &txs, &stats, &control, &mut last_stats, &mut prev_snapshot);
        }
    }
    table.flush_all(&mut batch.events);
    publish_flow_counters(&table, &counts, &stats);
    if let Some(k) = source.stats() {
        store_kernel_stats(&stats, k);
    }
    batch.flush(&txs, table.now(), &stats);
    (errors, prev_snapshot)
}

fn store_kernel_stats(stats: &Stats, k: crate::capture::CaptureStats) {
    stats.kernel_received.store(k.received, Relaxed);
    stats.kernel_dropped.store(k.dropped, Relaxed);
    stats.interface_dropped.store(k.if_dropped, Relaxed);
}

/// Signals and timers checked between packets: SIGHUP reload, stats lines.
fn housekeeping(
    source: &mut Inputs,
    cfg: &Config,
    txs: &[Sender<ToDetector>],
    stats: &Stats,
    control: &Control,
    last_stats: &mut Instant,
    prev: &mut Snapshot,
) {
    if control.reload.swap(false, Relaxed) {
        match cfg.reload_detect() {
            Ok(d) => {
                log::info("SIGHUP: reopening outputs and reloading detector settings");
                send(txs, ToDetector::Reload(Arc::new(d)), stats);
            }
            Err(e) => log::error(&format!("SIGHUP: keeping the old settings: {e}")),
        }
        send(txs, ToDetector::Reopen, stats);
    }
    let periodic = cfg.stats_interval.is_some_and(|every| last_stats.elapsed() >= every);
    if periodic || control.stats_now.swap(false, Relaxed) {
        if let Some(k) = source.stats() {
            store_kernel_stats(stats, k);
        }
        let snap = stats.snapshot();
        log::data(&snap.to_json(prev, source.is_live()));
        *prev = snap;
        *last_stats = Instant::now();
    }
}

/// The writers' state on the detector thread.
struct Writers {
    outputs: Outputs,
    failed: Option<String>,
    broken_pipe: bool,
}

impl Writers {
    fn handle(&mut self, r: Result<(), SinkError>, control: &Control) -> bool {
        match r {
            Ok(()) => true,
            Err(SinkError::BrokenPipe) => {
                // The reader of stdout is gone (`| head`): stop quietly.
                self.broken_pipe = true;
                control.terminate.store(true, Relaxed);
                false
            }
            Err(SinkError::Failed(msg)) => {
                if self.failed.is_none() {
                    log::error(&msg);
                }
                self.failed = Some(msg);
                false
            }
        }
    }

    fn write_alerts(&mut self, alerts: &[Alert], control: &Control) {
        if alerts.is_empty() || self.broken_pipe {
            return;
        }
        let mut buf = String::new();
        for a in alerts {
            buf.push_str(&a.to_json());
            buf.push('\n');
        }
        let sink = match self.outputs.alerts.as_mut() {
            Some(s) => s,
            None => self.outputs.records.as_mut().expect("shared sink"),
        };
        let r = sink.write_lines(buf.as_bytes(), alerts.len() as u64).and_then(|_| sink.flush());
        if !self.handle(r, control) && !self.broken_pipe {
            // Never lose an alert silently: it goes to the log instead.
            for line in buf.lines() {
                log::error(&format!("alert not written to its output, logged here instead: {line}"));
            }
        }
    }

    fn write_records(&mut self, buf: &[u8], lines: u64, flush: bool, control: &Control) {
        if self.broken_pipe {
            return;
        }
        if let Some(sink) = self.outputs.records.as_mut() {
            let mut r = sink.write_lines(buf, lines);
            if flush && r.is_ok() {
                r = sink.flush();
            }
            self.handle(r, control);
        }
    }

    fn reopen(&mut self, control: &Control) {
        for sink in [self.outputs.records.as_mut(), self.outputs.alerts.as_mut()].into_iter().flatten() {
            let r = sink.reopen();
            if r.is_ok() {
                continue;
            }
            if let Err(SinkError::Failed(m)) = &r {
                log::error(&format!("reopen: {m}"));
            }
        }
        let _ = control;
    }

    fn finish(&mut self, control: &Control) {
        for i in 0..2 {
            let sink = if i == 0 { self.outputs.records.as_mut() } else { self.outputs.alerts.as_mut() };
            if let Some(s) = sink {
                let r = s.flush();
                self.handle(r, control);
            }
        }
    }
}

/// Runs one detector family over every batch and sends the writer what it found.
fn family_thread(rx: Receiver<ToDetector>, found: Sender<FamilyAlerts>, mut detectors: DetectorSet) {
    for msg in rx.iter() {
        match msg {
            ToDetector::Batch(batch) => {
                let mut out = FamilyAlerts::default();
                for (i, ev) in batch.events.iter().enumerate() {
                    detectors.on_event(ev, &mut out.alerts);
                    out.raised_at.resize(out.alerts.len(), i as u32);
                }
                let (now, len) = (batch.now, batch.events.len() as u32);
                // Let go of the batch first, so the writer can reuse its vector.
                drop(batch);
                detectors.on_time(now, &mut out.alerts);
                out.raised_at.resize(out.alerts.len(), len);
                out.usage = detectors.usage();
                if found.send(out).is_err() {
                    return;
                }
            }
            ToDetector::Reload(cfg) => detectors.reload(&cfg),
            ToDetector::Reopen => {}
        }
    }
    // The capture thread is done and every session was flushed: close pending windows.
    let mut out = FamilyAlerts::default();
    detectors.finish(&mut out.alerts);
    out.raised_at.resize(out.alerts.len(), 0);
    out.usage = detectors.usage();
    let _ = found.send(out);
}

/// Receives one `FamilyAlerts` from every family (the same batch, or the end) and merges
/// the alerts into the order a single thread running the families in turn on each event
/// would have produced: by the event that raised them, then by family. Also sums usage.
/// None when a family thread is gone (it panicked).
fn collect_alerts(families: &[Receiver<FamilyAlerts>]) -> Option<(Vec<Alert>, DetectorUsage)> {
    let mut usage = DetectorUsage::default();
    let mut found = Vec::with_capacity(families.len());
    for rx in families {
        let f = rx.recv().ok()?;
        usage.sources += f.usage.sources;
        usage.series += f.usage.series;
        usage.evictions += f.usage.evictions;
        found.push(f.raised_at.into_iter().zip(f.alerts).peekable());
    }
    let mut merged = Vec::new();
    loop {
        // The earliest event; for a tie the first family (min compares the index second).
        let next = found.iter_mut().enumerate().filter_map(|(fam, it)| it.peek().map(|(at, _)| (*at, fam))).min();
        match next {
            Some((_, fam)) => merged.extend(found[fam].next().map(|(_, alert)| alert)),
            None => return Some((merged, usage)),
        }
    }
}

/// Formats and writes each batch's records, then the families' merged alerts for it.
#[allow(clippy::too_many_arguments)]
fn writer_thread(
    rx: Receiver<ToDetector>,
    families: Vec<Receiver<FamilyAlerts>>,
    recycle: Sender<Vec<FlowEvent>>,
    mut ctx: RecordContext,
    outputs: Outputs,
    live: bool,
    stats: Arc<Stats>,
    control: Control,
) -> (Option<String>, bool) {
    let writing_records = outputs.records.is_some();
    let mut w = Writers { outputs, failed: None, broken_pipe: false };
    let mut rec_buf: Vec<u8> = Vec::with_capacity(512 * 1024);
    let (mut records, mut alert_count) = (0u64, 0u64);
    let families_gone = |w: &mut Writers| {
        w.failed.get_or_insert_with(|| "a detector thread stopped unexpectedly".into());
        control.terminate.store(true, Relaxed);
    };
    for msg in rx.iter() {
        match msg {
            ToDetector::Batch(batch) => {
                let mut lines = 0;
                let events = if writing_records { &batch.events[..] } else { &[] };
                for ev in events {
                    if let FlowEvent::End(r) = ev {
                        write_record(r, &ctx, &mut rec_buf);
                        lines += 1;
                        if rec_buf.len() >= REC_BUF_FLUSH {
                            w.write_records(&rec_buf, lines, false, &control);
                            records += lines;
                            rec_buf.clear();
                            lines = 0;
                        }
                    }
                }
                if lines > 0 {
                    w.write_records(&rec_buf, lines, live, &control);
                    records += lines;
                    rec_buf.clear();
                }
                let Some((alerts, u)) = collect_alerts(&families) else {
                    families_gone(&mut w);
                    break;
                };
                alert_count += alerts.len() as u64;
                w.write_alerts(&alerts, &control);
                stats.records.store(records, Relaxed);
                stats.alerts.store(alert_count, Relaxed);
                stats.tracked_sources.store(u.sources, Relaxed);
                stats.tracked_series.store(u.series, Relaxed);
                stats.detector_evictions.store(u.evictions, Relaxed);
                // The families have let go of the batch: hand its vector back for reuse.
                if let Ok(Batch { mut events, .. }) = Arc::try_unwrap(batch) {
                    if events.capacity() <= 4 * BATCH_EVENTS {
                        events.clear();
                        let _ = recycle.try_send(events);
                    }
                }
            }
            ToDetector::Reload(d) => ctx.home_net = d.home_net.clone(),
            ToDetector::Reopen => w.reopen(&control),
        }
    }
    match collect_alerts(&families) {
        Some((alerts, _)) => {
            alert_count += alerts.len() as u64;
            w.write_alerts(&alerts, &control);
        }
        None => families_gone(&mut w),
    }
    w.finish(&control);
    stats.records.store(records, Relaxed);
    stats.alerts.store(alert_count, Relaxed);
    (w.failed, w.broken_pipe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{AlertType, DetectionMode};

    fn alert(mode: DetectionMode, name: &str) -> Alert {
        Alert {
            alert_type: AlertType::PortScan,
            mode,
            time: Timestamp(0),
            name: name.into(),
            severity: "Low",
            tactics: &[],
            techniques: &[],
            src: "192.0.2.1".parse().unwrap(),
            dst: None,
            dport: None,
            evidence: Default::default(),
        }
    }

    fn found(mode: DetectionMode, tagged: &[(u32, &str)], sources: u64) -> FamilyAlerts {
        FamilyAlerts {
            alerts: tagged.iter().map(|(_, n)| alert(mode, n)).collect(),
            raised_at: tagged.iter().map(|(at, _)| *at).collect(),
            usage: DetectorUsage { sources, series: 1, evictions: 0 },
        }
    }

    #[test]
    fn alerts_merge_in_event_order_then_family_order() {
        use DetectionMode::{Enhanced, Sentinel};
        let (s_tx, s_rx) = bounded(1);
        let (e_tx, e_rx) = bounded(1);
        // Event 1 raised alerts in both families; 4 is the batch length (on_time).
        s_tx.send(found(Sentinel, &[(1, "s1"), (1, "s1b"), (3, "s3"), (4, "s-time")], 2)).unwrap();
        e_tx.send(found(Enhanced, &[(0, "e0"), (1, "e1"), (4, "e-time")], 5)).unwrap();
        let (merged, usage) = collect_alerts(&[s_rx, e_rx]).unwrap();
        let names: Vec<&str> = merged.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["e0", "s1", "s1b", "e1", "s3", "s-time", "e-time"]);
        assert_eq!(usage, DetectorUsage { sources: 7, series: 2, evictions: 0 });
    }

    #[test]
    fn a_stopped_family_is_reported() {
        let (s_tx, s_rx) = bounded(1);
        let (e_tx, e_rx) = bounded::<FamilyAlerts>(1);
        s_tx.send(FamilyAlerts::default()).unwrap();
        drop(e_tx);
        assert!(collect_alerts(&[s_rx, e_rx]).is_none());
    }
}
