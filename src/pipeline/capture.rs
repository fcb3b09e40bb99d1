//! The capture thread ("fs-capture"): reads decoded packets, runs the flow table, and
//! sends its events in batches to every consumer; also signals and stats lines.

use super::{Batch, Control, ToDetector, BATCH_EVENTS};
use crate::capture::PacketSource;
use crate::config::Config;
use crate::flow::{FlowEvent, FlowTable};
use crate::input::{Input, Inputs};
use crate::log;
use crate::stats::{Snapshot, Stats};
use crate::time::{Duration, Timestamp};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

/// Packets read before a batch is sent even if it holds few events (so `now` advances).
const BATCH_PACKETS: u32 = 8192;
/// A packet this much older than capture time is worth a warning (replay inputs are
/// merged by time, so only a capture whose own clock stepped back gets here).
const CLOCK_BACK_WARNING: Duration = Duration(3600 * 1_000_000_000);
/// On a live link, a batch waits at most this long (alert latency).
const LIVE_BATCH_DELAY: std::time::Duration = std::time::Duration::from_millis(100);

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
        let fresh = self.empty_vec();
        let events = std::mem::replace(&mut self.events, fresh);
        if events.len() <= BATCH_EVENTS {
            self.send_batch(txs, events, now, stats);
        } else {
            // Each message gets its own right-sized Vec (a recycled one when the writer
            // has handed one back, so a burst does not fault in fresh pages for every
            // chunk): `split_off` would leave every chunk holding the whole burst's
            // capacity (quadratic memory after a mass expiry).
            let mut pending = events.into_iter().peekable();
            while pending.peek().is_some() {
                let mut chunk = self.empty_vec();
                chunk.extend(pending.by_ref().take(BATCH_EVENTS));
                self.send_batch(txs, chunk, now, stats);
            }
        }
        self.packets = 0;
        self.last_sent = Instant::now();
    }

    /// An empty event vector: one the writer handed back, else a new one.
    fn empty_vec(&self) -> Vec<FlowEvent> {
        self.recycled.try_recv().unwrap_or_else(|_| Vec::with_capacity(BATCH_EVENTS))
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
pub(super) fn capture_thread(
    source: Box<dyn PacketSource + Send>,
    cfg: &Config,
    txs: Vec<Sender<ToDetector>>,
    recycled: Receiver<Vec<FlowEvent>>,
    stats: Arc<Stats>,
    control: Control,
) -> (Vec<String>, Snapshot) {
    let mut source = Inputs::new(source, Arc::clone(&stats));
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
    let mut replay_stats = ReplayStats::new(live, cfg.stats_interval);
    loop {
        if control.terminate.load(Relaxed) {
            let active = table.counters().active;
            match control.stopped_by.load(Relaxed) {
                0 => {}
                sig if !live => log::info(&format!(
                    "{}: replay interrupted, flushing {active} open sessions",
                    crate::service::signal_name(sig)
                )),
                _ => log::info(&format!("stopping: flushing {active} open sessions")),
            }
            break;
        }
        let input = source.next_input();
        let packet = match input {
            Input::Packet(meta) => Some(meta),
            Input::Skipped(reason) => {
                stats.skip(*reason);
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
                // A replay waiting on a slow pipe never cuts a batch here: batch bounds
                // must not depend on timing, or its output would not be reproducible.
                if live && batch.last_sent.elapsed() >= LIVE_BATCH_DELAY {
                    publish_flow_counters(&table, &counts, &stats);
                    batch.flush(&txs, table.now(), &stats);
                } else if !live {
                    publish_flow_counters(&table, &counts, &stats);
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
                    "packet time went back from {} to {} inside a capture (its clock stepped back): \
                     sessions of the older packets will look unanswered",
                    table.now(),
                    meta.ts
                ));
            }
            table.ingest_at(meta, &mut batch.events);
            if table.now() >= replay_stats.next {
                replay_stats.due(table.now(), || {
                    publish_flow_counters(&table, &counts, &stats);
                    let snap = stats.snapshot();
                    log::data(&stats_line(&snap, &prev_snapshot, false, table.now()));
                    prev_snapshot = snap;
                });
            }
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

/// Periodic stats lines of a replay, in capture time: one each time packet time crosses
/// a multiple of the interval (so the lines of a replay are the same on every run).
struct ReplayStats {
    every: Option<Duration>,
    /// Capture time of the next line (MAX: none; MIN: not yet placed).
    next: Timestamp,
}

impl ReplayStats {
    fn new(live: bool, every: Option<std::time::Duration>) -> Self {
        let every = every.filter(|_| !live).map(|d| Duration(d.as_nanos().clamp(1, i64::MAX as u128) as i64));
        ReplayStats { every, next: if every.is_some() { Timestamp(i64::MIN) } else { Timestamp(i64::MAX) } }
    }

    /// Capture time reached `now` (≥ `self.next`): calls `print` unless this is the
    /// first packet, and moves `next` to the following multiple of the interval.
    fn due(&mut self, now: Timestamp, print: impl FnOnce()) {
        let Some(every) = self.every else { return };
        if self.next != Timestamp(i64::MIN) {
            print();
        }
        self.next = now.bin_start(every).saturating_add(every);
    }
}

/// A stats line: the counters, plus the capture time reached (replay) and the process's
/// memory (resident and peak resident set, from /proc/self/status), so memory can be
/// followed against capture time.
fn stats_line(snap: &Snapshot, prev: &Snapshot, live: bool, capture_time: Timestamp) -> String {
    let mut line = snap.to_json(prev, live);
    if line.ends_with('}') {
        line.pop();
        if !live {
            line.push_str(&format!(",\"capture_time\":\"{}\"", capture_time.rfc3339()));
        }
        let (rss, peak) = process_memory();
        line.push_str(&format!(",\"rss_bytes\":{rss},\"peak_rss_bytes\":{peak}}}"));
    }
    line
}

/// (VmRSS, VmHWM) of this process in bytes; zeros where /proc is not available.
fn process_memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (kib("VmRSS:"), kib("VmHWM:"))
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
    // Replays print their periodic lines in capture time (ReplayStats), not here.
    let periodic = source.is_live() && cfg.stats_interval.is_some_and(|every| last_stats.elapsed() >= every);
    if periodic || control.stats_now.swap(false, Relaxed) {
        if let Some(k) = source.stats() {
            store_kernel_stats(stats, k);
        }
        let snap = stats.snapshot();
        log::data(&stats_line(&snap, prev, source.is_live(), crate::time::Timestamp(0)));
        *prev = snap;
        *last_stats = Instant::now();
    }
}
