//! One thread per detector family ("fs-sentinel", "fs-enhanced"): runs its detectors over
//! every batch and hands the writer what it found, tagged with the raising event; and the
//! merge of the families' alerts into one deterministic order.

use super::ToDetector;
use crate::detect::{Alert, DetectorSet, DetectorUsage};
use crossbeam_channel::{Receiver, Sender};

#[derive(Default)]
pub(super) struct FamilyAlerts {
    pub(super) alerts: Vec<Alert>,
    /// For each alert, the index in the batch of the event that raised it; the batch
    /// length for alerts raised when time advanced after the batch (`on_time`).
    pub(super) raised_at: Vec<u32>,
    pub(super) usage: DetectorUsage,
}

/// Runs one detector family over every batch and sends the writer what it found.
pub(super) fn family_thread(rx: Receiver<ToDetector>, found: Sender<FamilyAlerts>, mut detectors: DetectorSet) {
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
/// would have produced: by the event that raised them, then by family. Each alert comes
/// with the index of its event (the batch length for alerts raised after the batch).
/// Also gathers the families' table usage. None when a family thread is gone (it panicked).
pub(super) fn collect_alerts(families: &[Receiver<FamilyAlerts>]) -> Option<(Vec<(u32, Alert)>, DetectorUsage)> {
    let mut usage = DetectorUsage::default();
    let mut found = Vec::with_capacity(families.len());
    for rx in families {
        let f = rx.recv().ok()?;
        usage.extend(f.usage);
        found.push(f.raised_at.into_iter().zip(f.alerts).peekable());
    }
    let mut merged = Vec::new();
    loop {
        // The earliest event; for a tie the first family (min compares the index second).
        let next = found.iter_mut().enumerate().filter_map(|(fam, it)| it.peek().map(|(at, _)| (*at, fam))).min();
        match next {
            Some((_, fam)) => merged.extend(found[fam].next()),
            None => return Some((merged, usage)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::alert::test_alert;
    use crate::detect::DetectionMode;
    use crate::time::Timestamp;
    use crossbeam_channel::bounded;

    fn alert(mode: DetectionMode, name: &str) -> Alert {
        test_alert(mode, Timestamp(0), name)
    }

    fn found(mode: DetectionMode, tagged: &[(u32, &str)], sources: u64) -> FamilyAlerts {
        FamilyAlerts {
            alerts: tagged.iter().map(|(_, n)| alert(mode, n)).collect(),
            raised_at: tagged.iter().map(|(at, _)| *at).collect(),
            usage: DetectorUsage {
                tables: vec![crate::detect::TableUsage {
                    detector: mode.as_str(),
                    table: "sources",
                    entries: sources,
                    cap: None,
                    evictions: 0,
                    setting: None,
                    cost: crate::detect::EvictionCost::Detection,
                    tracks: crate::detect::Tracks::Sources,
                    bytes: None,
                }],
            },
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
        let names: Vec<&str> = merged.iter().map(|(_, a)| a.name.as_str()).collect();
        assert_eq!(names, ["e0", "s1", "s1b", "e1", "s3", "s-time", "e-time"]);
        assert_eq!((usage.sources(), usage.tables.len()), (7, 2));
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
