//! The writer thread ("fs-write"): formats each batch's records, merges the families'
//! alerts for the batch and writes both outputs; hands emptied batch vectors back.
//!
//! Alerts leave in `TimeGenerated` order. Detectors stamp an alert with the time of its
//! evidence, and some evidence is old when it is acted on: an enhanced scan alert raised
//! when an unanswered attempt expires carries that attempt's last packet time (seconds
//! to minutes back), a Sentinel beaconing alert is raised once every session of its hour
//! has ended and carries the hour's end (up to the active timeout back). Holding every
//! alert back until nothing older could still come would delay all alerts by that much,
//! live. Instead `TimeGenerated` is the capture time at which the alert was raised — as
//! the README defines it, and as Sentinel stamps a scheduled rule's alerts: the newest
//! packet time among the events up to the one that raised it (the batch's capture time
//! for alerts raised when time advanced), never earlier than its evidence's time. That
//! clock only moves forward, so the output is in order without any holding back, and it
//! depends only on the events and batch bounds, so a replay stays byte-identical.

use super::family::collect_alerts;
use super::{Batch, Control, FamilyAlerts, Outputs, ToDetector, BATCH_EVENTS};
use crate::detect::Alert;
use crate::flow::FlowEvent;
use crate::log;
use crate::output::alert_text;
use crate::output::records::{RecordBuffer, RecordContext, RecordWriter};
use crate::output::sink::SinkError;
use crate::stats::Stats;
use crate::time::Timestamp;
use crossbeam_channel::{Receiver, Sender};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Formatted records held before they are handed to the sink. Small enough to stay in
/// the core's L2 cache while it is formatted and then copied by the kernel (a chunk this
/// big goes past the sink's buffer straight to the file, see `Sink::write_lines`): with
/// 512 KiB the kernel's copy into the page cache took 1.0 s instead of 0.56 s of system
/// time on a 5 M-packet mix-b replay with --records.
const REC_BUF_FLUSH: usize = 64 * 1024;

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

    fn write_alerts(&mut self, alerts: &[Alert], ctx: &RecordContext, control: &Control) {
        if alerts.is_empty() || self.broken_pipe {
            return;
        }
        let mut buf = String::new();
        for a in alerts {
            if self.outputs.alerts_text {
                buf.push_str(&alert_text::format(a, ctx));
            } else {
                buf.push_str(&a.to_json(ctx));
            }
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
/// The capture clock of [`writer_thread`]'s alert ordering (see the module comment).
struct AlertClock {
    now: Timestamp,
}

/// The newest packet time an event carries (an exchange is reported once it is over:
/// its last payload).
fn event_time(ev: &FlowEvent) -> Timestamp {
    match ev {
        FlowEvent::Start(s) => s.ts,
        FlowEvent::End(r) => r.end,
        FlowEvent::Exchange(x) => x.end,
    }
}

impl AlertClock {
    /// Stamps a batch's merged alerts, each tagged with the index of the event that
    /// raised it (`events.len()` for alerts raised after the batch, at `batch_now`).
    fn stamp(&mut self, tagged: Vec<(u32, Alert)>, events: &[FlowEvent], batch_now: Timestamp) -> Vec<Alert> {
        let mut seen = 0usize;
        let mut out = Vec::with_capacity(tagged.len());
        for (at, mut alert) in tagged {
            let upto = (at as usize).saturating_add(1).min(events.len());
            while seen < upto {
                self.now = self.now.max(event_time(&events[seen]));
                seen += 1;
            }
            if at as usize >= events.len() {
                self.now = self.now.max(batch_now);
            }
            self.now = self.now.max(alert.time);
            alert.time = self.now;
            out.push(alert);
        }
        self.now = self.now.max(batch_now);
        out
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
    // One buffer the records are formatted into in place, reused for every batch.
    let (mut rec_buf, mut rec_writer) = (RecordBuffer::default(), RecordWriter::default());
    let (mut records, mut alert_count) = (0u64, 0u64);
    let mut clock = AlertClock { now: Timestamp(i64::MIN) };
    let families_gone = |w: &mut Writers| {
        if w.failed.is_none() {
            log::error("a detector thread stopped unexpectedly");
        }
        w.failed.get_or_insert_with(|| "a detector thread stopped unexpectedly".into());
        control.terminate.store(true, Relaxed);
    };
    for msg in rx.iter() {
        match msg {
            ToDetector::Batch(batch) => {
                // The run's first session fixes the NetworkSessionId prefix.
                ctx.observe(&batch.events);
                let events = if writing_records { &batch.events[..] } else { &[] };
                for ev in events {
                    if let FlowEvent::End(r) = ev {
                        rec_writer.write(r, &ctx, &mut rec_buf);
                        if rec_buf.len() >= REC_BUF_FLUSH {
                            w.write_records(rec_buf.as_bytes(), rec_buf.lines(), false, &control);
                            records += rec_buf.lines();
                            rec_buf.clear();
                        }
                    }
                }
                if rec_buf.lines() > 0 {
                    w.write_records(rec_buf.as_bytes(), rec_buf.lines(), live, &control);
                    records += rec_buf.lines();
                    rec_buf.clear();
                }
                let Some((tagged, u)) = collect_alerts(&families) else {
                    families_gone(&mut w);
                    break;
                };
                let alerts = clock.stamp(tagged, &batch.events, batch.now);
                alert_count += alerts.len() as u64;
                w.write_alerts(&alerts, &ctx, &control);
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
            ToDetector::Reload(d) => {
                ctx.home_net = d.home_net.clone();
                stats.reload_budget(&d);
            }
            ToDetector::Reopen => w.reopen(&control),
        }
    }
    match collect_alerts(&families) {
        Some((tagged, u)) => {
            let alerts = clock.stamp(tagged, &[], Timestamp(i64::MIN));
            stats.detector_evictions.store(u.evictions(), Relaxed);
            if let Ok(mut tables) = stats.detector_tables.lock() {
                *tables = u.tables;
            }
            alert_count += alerts.len() as u64;
            w.write_alerts(&alerts, &ctx, &control);
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
    use crate::detect::alert::test_alert;
    use crate::detect::DetectionMode;
    use crate::flow::{FirstPacket, SessionStart};

    fn alert(secs: i64, name: &str) -> Alert {
        test_alert(DetectionMode::Enhanced, Timestamp::from_secs(secs), name)
    }

    fn start(secs: i64) -> FlowEvent {
        FlowEvent::Start(SessionStart {
            id: 0,
            ts: Timestamp::from_secs(secs),
            src: "192.0.2.1".parse().unwrap(),
            dst: "192.0.2.2".parse().unwrap(),
            sport: Some(1),
            dport: Some(2),
            protocol: 6,
            segment: 0,
            first: FirstPacket::default(),
        })
    }

    #[test]
    fn alerts_are_stamped_with_the_capture_time_they_were_raised_at_and_stay_in_order() {
        let mut clock = AlertClock { now: Timestamp(i64::MIN) };
        let events = [start(100), start(110), start(120)];
        // Event 1 raised an alert about evidence at 50 (an expired attempt); event 2 one
        // at its own time; after the batch (capture time 130), a window close about 0.
        let tagged = vec![(0, alert(100, "a")), (1, alert(50, "old")), (2, alert(120, "b")), (3, alert(0, "window"))];
        let out = clock.stamp(tagged, &events, Timestamp::from_secs(130));
        let times: Vec<i64> = out.iter().map(|a| a.time.0 / 1_000_000_000).collect();
        assert_eq!(times, [100, 110, 120, 130]);
        // The next batch's alerts, and those raised at the end, never go back in time.
        let out = clock.stamp(vec![(0, alert(125, "c"))], &[start(125)], Timestamp::from_secs(140));
        assert_eq!(out[0].time, Timestamp::from_secs(130));
        let out = clock.stamp(vec![(0, alert(10, "end"))], &[], Timestamp(i64::MIN));
        assert_eq!(out[0].time, Timestamp::from_secs(140));
    }
}
