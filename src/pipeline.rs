//! The threads and the channel between them.
//!
//! ```text
//!  [capture thread "fs-capture"]                         [detector thread "fs-detect"]
//!  PacketSource::next_frame ─► decode ─► FlowTable ──────► DetectorSet (sentinel, enhanced)
//!        (pcap file / interface)       batches of          ├─► records sink (ASIM JSON Lines)
//!                                      FlowEvents over a   └─► alerts sink (JSON Lines)
//!                                      bounded crossbeam channel
//! ```
//!
//! Time comes only from packets: each batch carries `now`, the capture time reached. On a
//! live link that goes quiet, the capture thread advances `now` by the wall time elapsed
//! since the last packet (read timeout), so idle sessions still expire. The channel is
//! bounded; when it is full the capture thread waits (counted as `queue_waits`) and the
//! kernel's capture buffer absorbs the burst, dropping and counting packets beyond it —
//! nothing is ever queued without bound. At the end (EOF, signal, or a capture error)
//! every open session is flushed as a record and the detectors evaluate their pending
//! windows before the outputs are flushed.

use crate::capture::{CaptureError, PacketSource};
use crate::config::Config;
use crate::decode::decode;
use crate::detect::{Alert, DetectConfig, DetectorSet};
use crate::flow::{FlowEvent, FlowTable};
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

/// What the capture thread tells the detector thread.
pub enum ToDetector {
    Batch {
        events: Vec<FlowEvent>,
        now: Timestamp,
    },
    /// SIGHUP: new detector settings (home networks, thresholds, allowlists).
    Reload(Box<DetectConfig>),
    /// SIGHUP: reopen output files (logrotate).
    Reopen,
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
    let (tx, rx) = bounded::<ToDetector>(CHANNEL_BATCHES);
    let ctx = RecordContext { dvc: cfg.sensor_name.clone(), home_net: cfg.detect.home_net.clone() };
    let live = source.is_live();
    let detector = {
        let (cfg_d, stats, control) = (cfg.detect.clone(), Arc::clone(&stats), control.clone());
        std::thread::Builder::new()
            .name("fs-detect".into())
            .spawn(move || detector_thread(rx, cfg_d, ctx, outputs, live, stats, control))
            .expect("spawn detector thread")
    };
    let capture = {
        let (cfg, stats, control) = (cfg.clone(), Arc::clone(&stats), control.clone());
        std::thread::Builder::new()
            .name("fs-capture".into())
            .spawn(move || capture_thread(source, &cfg, tx, stats, control))
            .expect("spawn capture thread")
    };
    let (capture_errors, last_stats_line) =
        capture.join().unwrap_or_else(|_| (vec!["capture thread panicked".into()], Snapshot::default()));
    let (output_error, broken_pipe) =
        detector.join().unwrap_or_else(|_| (Some("detector thread panicked".into()), false));
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

/// Sends a batch; waits (counted) when the detector is behind. Returns false when the
/// detector thread is gone.
fn send(tx: &Sender<ToDetector>, msg: ToDetector, stats: &Stats) -> bool {
    match tx.try_send(msg) {
        Ok(()) => true,
        Err(TrySendError::Full(msg)) => {
            stats.queue_waits.fetch_add(1, Relaxed);
            tx.send(msg).is_ok()
        }
        Err(TrySendError::Disconnected(_)) => false,
    }
}

struct Batcher {
    events: Vec<FlowEvent>,
    packets: u32,
    last_sent: Instant,
    detector_gone: bool,
}

impl Batcher {
    /// Sends the pending events in batches of at most `BATCH_EVENTS` (a flush of the
    /// whole table at exit or after a time jump must not become one huge message).
    fn flush(&mut self, tx: &Sender<ToDetector>, now: Timestamp, stats: &Stats) {
        let events = std::mem::replace(&mut self.events, Vec::with_capacity(BATCH_EVENTS));
        // Each message gets its own right-sized Vec: `split_off` would leave every chunk
        // holding the whole burst's capacity (quadratic memory after a mass expiry).
        let mut pending = events.into_iter().peekable();
        loop {
            let events: Vec<FlowEvent> = pending.by_ref().take(BATCH_EVENTS).collect();
            let n = events.len() as u64;
            if self.detector_gone || !send(tx, ToDetector::Batch { events, now }, stats) {
                self.detector_gone = true;
                stats.channel_drops.fetch_add(n, Relaxed);
            }
            if pending.peek().is_none() {
                break;
            }
        }
        self.packets = 0;
        self.last_sent = Instant::now();
    }
}

fn publish_flow_counters(table: &FlowTable, stats: &Stats) {
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
    mut source: Box<dyn PacketSource + Send>,
    cfg: &Config,
    tx: Sender<ToDetector>,
    stats: Arc<Stats>,
    control: Control,
) -> (Vec<String>, Snapshot) {
    let live = source.is_live();
    let mut table = FlowTable::new(cfg.flow.clone());
    let mut batch = Batcher {
        events: Vec::with_capacity(BATCH_EVENTS),
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
    loop {
        if control.terminate.load(Relaxed) {
            if live {
                log::info(&format!("stopping: flushing {} open sessions", table.counters().active));
            }
            break;
        }
        match source.next_frame() {
            Ok(Some(frame)) => {
                stats.packets_read.fetch_add(1, Relaxed);
                match decode(frame.link, &frame) {
                    Ok(meta) => {
                        stats.packets_decoded.fetch_add(1, Relaxed);
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
                    Err(reason) => stats.skip(reason),
                }
                batch.packets += 1;
                if live {
                    last_packet_at = Some(Instant::now());
                }
                let due = batch.events.len() >= BATCH_EVENTS
                    || batch.packets >= BATCH_PACKETS
                    || (live && batch.packets % 64 == 0 && batch.last_sent.elapsed() >= LIVE_BATCH_DELAY);
                if due {
                    publish_flow_counters(&table, &stats);
                    batch.flush(&tx, table.now(), &stats);
                }
                if batch.packets % 1024 == 0 {
                    housekeeping(&mut *source, cfg, &tx, &stats, &control, &mut last_stats, &mut prev_snapshot);
                }
            }
            Ok(None) => break,
            Err(CaptureError::Timeout) => {
                // Quiet link: capture time moves on with the wall clock since the last packet.
                if let Some(at) = last_packet_at {
                    let elapsed = Duration(at.elapsed().as_nanos().min(i64::MAX as u128) as i64);
                    let now = table.now().saturating_add(elapsed);
                    if now > table.now() {
                        table.advance_to(now, &mut batch.events);
                        last_packet_at = Some(Instant::now());
                    }
                }
                publish_flow_counters(&table, &stats);
                batch.flush(&tx, table.now(), &stats);
                housekeeping(&mut *source, cfg, &tx, &stats, &control, &mut last_stats, &mut prev_snapshot);
            }
            Err(e @ (CaptureError::ReadFile { .. } | CaptureError::OpenFile { .. })) if !live => {
                errors.push(e.to_string());
            }
            Err(e) => {
                errors.push(e.to_string());
                break;
            }
        }
    }
    table.flush_all(&mut batch.events);
    publish_flow_counters(&table, &stats);
    if let Some(k) = source.stats() {
        store_kernel_stats(&stats, k);
    }
    batch.flush(&tx, table.now(), &stats);
    (errors, prev_snapshot)
}

fn store_kernel_stats(stats: &Stats, k: crate::capture::CaptureStats) {
    stats.kernel_received.store(k.received, Relaxed);
    stats.kernel_dropped.store(k.dropped, Relaxed);
    stats.interface_dropped.store(k.if_dropped, Relaxed);
}

/// Signals and timers checked between packets: SIGHUP reload, stats lines.
fn housekeeping(
    source: &mut dyn PacketSource,
    cfg: &Config,
    tx: &Sender<ToDetector>,
    stats: &Stats,
    control: &Control,
    last_stats: &mut Instant,
    prev: &mut Snapshot,
) {
    if control.reload.swap(false, Relaxed) {
        match cfg.reload_detect() {
            Ok(d) => {
                log::info("SIGHUP: reopening outputs and reloading detector settings");
                send(tx, ToDetector::Reload(Box::new(d)), stats);
            }
            Err(e) => log::error(&format!("SIGHUP: keeping the old settings: {e}")),
        }
        send(tx, ToDetector::Reopen, stats);
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

fn detector_thread(
    rx: Receiver<ToDetector>,
    cfg: DetectConfig,
    mut ctx: RecordContext,
    outputs: Outputs,
    live: bool,
    stats: Arc<Stats>,
    control: Control,
) -> (Option<String>, bool) {
    let mut detectors = DetectorSet::new(&cfg);
    let writing_records = outputs.records.is_some();
    let mut w = Writers { outputs, failed: None, broken_pipe: false };
    let mut alerts: Vec<Alert> = Vec::new();
    let mut rec_buf: Vec<u8> = Vec::with_capacity(512 * 1024);
    let (mut records, mut alert_count) = (0u64, 0u64);
    for msg in rx.iter() {
        match msg {
            ToDetector::Batch { events, now } => {
                let mut lines = 0;
                for ev in &events {
                    if let (FlowEvent::End(r), true) = (ev, writing_records) {
                        write_record(r, &ctx, &mut rec_buf);
                        lines += 1;
                        if rec_buf.len() >= REC_BUF_FLUSH {
                            w.write_records(&rec_buf, lines, false, &control);
                            records += lines;
                            rec_buf.clear();
                            lines = 0;
                        }
                    }
                    detectors.on_event(ev, &mut alerts);
                }
                detectors.on_time(now, &mut alerts);
                if lines > 0 {
                    w.write_records(&rec_buf, lines, live, &control);
                    records += lines;
                    rec_buf.clear();
                }
                alert_count += alerts.len() as u64;
                w.write_alerts(&alerts, &control);
                alerts.clear();
                let u = detectors.usage();
                stats.records.store(records, Relaxed);
                stats.alerts.store(alert_count, Relaxed);
                stats.tracked_sources.store(u.sources, Relaxed);
                stats.tracked_series.store(u.series, Relaxed);
                stats.detector_evictions.store(u.evictions, Relaxed);
            }
            ToDetector::Reload(d) => {
                detectors.reload(&d);
                ctx.home_net = d.home_net.clone();
            }
            ToDetector::Reopen => w.reopen(&control),
        }
    }
    // The capture thread is done and every session was flushed: close pending windows.
    detectors.finish(&mut alerts);
    alert_count += alerts.len() as u64;
    w.write_alerts(&alerts, &control);
    w.finish(&control);
    stats.records.store(records, Relaxed);
    stats.alerts.store(alert_count, Relaxed);
    (w.failed, w.broken_pipe)
}
