//! The writer thread ("fs-write"): formats each batch's records, merges the families'
//! alerts for the batch and writes both outputs; hands emptied batch vectors back.

use super::family::collect_alerts;
use super::{Batch, Control, FamilyAlerts, Outputs, ToDetector, BATCH_EVENTS};
use crate::detect::Alert;
use crate::flow::FlowEvent;
use crate::log;
use crate::output::records::{write_record, RecordContext};
use crate::output::sink::SinkError;
use crate::stats::Stats;
use crossbeam_channel::{Receiver, Sender};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Formatted records held before they are handed to the sink.
const REC_BUF_FLUSH: usize = 512 * 1024;

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
#[allow(clippy::too_many_arguments)]
pub(super) fn writer_thread(
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
                stats.tracked_sources.store(u.sources(), Relaxed);
                stats.tracked_series.store(u.series(), Relaxed);
                stats.detector_evictions.store(u.evictions(), Relaxed);
                if let Ok(mut tables) = stats.detector_tables.lock() {
                    *tables = u.tables;
                }
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
        Some((alerts, u)) => {
            stats.detector_evictions.store(u.evictions(), Relaxed);
            if let Ok(mut tables) = stats.detector_tables.lock() {
                *tables = u.tables;
            }
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
