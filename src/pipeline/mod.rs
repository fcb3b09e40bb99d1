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
//!
//! One file per thread: [`capture`] ("fs-capture": flow table, batching, signals and
//! stats lines), [`family`] ("fs-sentinel"/"fs-enhanced" and the alert merge), [`writer`]
//! ("fs-write": records and alerts to their sinks). This file wires them together.

mod capture;
mod family;
mod writer;

use crate::capture::PacketSource;
use crate::config::Config;
use crate::detect::{DetectConfig, DetectorSet, RuleSet};
use crate::flow::FlowEvent;
use crate::log;
use crate::output::records::RecordContext;
use crate::output::sink::Sink;
use crate::stats::{Snapshot, Stats};
use crate::time::Timestamp;
use crossbeam_channel::bounded;
use std::sync::atomic::{AtomicBool, AtomicI32};
use std::sync::Arc;

use capture::capture_thread;
use family::{family_thread, FamilyAlerts};
use writer::writer_thread;

/// Flow events per batch before it is sent.
pub(crate) const BATCH_EVENTS: usize = 1024;
/// Batches the channel holds: 16 × 1 024 events smooth a detector's stall of a good
/// fraction of a second at live rates. More only held memory: a replay outruns its
/// detectors, so every channel stays full, and 64 batches in flight cost up to 15 MiB of
/// peak RSS (and its page faults) on short-session traffic, and made a long run's peak
/// depend on how far the detectors lagged.
pub(crate) const CHANNEL_BATCHES: usize = 16;

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
/// Flags set by signal handlers (see [`crate::service`]) and by the detector thread.
#[derive(Clone, Default)]
pub struct Control {
    /// Stop capturing, flush everything, exit.
    pub terminate: Arc<AtomicBool>,
    /// Reload settings and reopen outputs.
    pub reload: Arc<AtomicBool>,
    /// Print a stats line now.
    pub stats_now: Arc<AtomicBool>,
    /// The signal that asked for the stop (SIGINT, SIGTERM), 0 if none: a replay that
    /// was interrupted says so and exits 128 + the signal.
    pub stopped_by: Arc<AtomicI32>,
}

/// The outputs, opened before capture starts so a bad path fails early.
pub struct Outputs {
    pub records: Option<Sink>,
    /// None: alerts share the records sink (both on stdout).
    pub alerts: Option<Sink>,
    /// Alerts as readable lines (they go to a terminal and `--json` was not given).
    pub alerts_text: bool,
}

impl Outputs {
    /// Opens every output, then — for a replay without `--append` — empties the files,
    /// so an output that cannot be opened leaves the others untouched.
    pub fn open(cfg: &Config) -> Result<Outputs, String> {
        let mut records = cfg.records.as_ref().map(|p| Sink::open("records", p)).transpose()?;
        let shared = matches!((&cfg.records, &cfg.alerts), (Some(r), a) if r == a);
        let mut alerts = if shared { None } else { Some(Sink::open("alerts", &cfg.alerts)?) };
        if !cfg.append {
            for sink in [records.as_mut(), alerts.as_mut()].into_iter().flatten() {
                sink.truncate()?;
            }
        }
        let alerts_sink = alerts.as_ref().or(records.as_ref()).expect("an alerts sink");
        let alerts_text = !cfg.json_alerts && alerts_sink.is_terminal();
        Ok(Outputs { records, alerts, alerts_text })
    }
}

/// How the run ended.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The capture failed (a file fault, the interface gone): exit non-zero. A replay
    /// goes on with the next file after a broken one, so there may be several.
    pub capture_errors: Vec<String>,
    /// Writing an output failed: exit non-zero (already logged when it happened).
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
    let ctx = RecordContext::for_run(cfg);
    let live = source.is_live();
    stats.start_budget(&cfg.detect);
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
    let (mut output_error, broken_pipe) = writer.join().unwrap_or_else(|_| {
        log::error("the writer thread panicked");
        (Some("writer thread panicked".into()), false)
    });
    for thread in family_threads {
        if thread.join().is_err() && output_error.is_none() {
            log::error("a detector thread panicked");
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
