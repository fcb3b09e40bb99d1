//! Counters shared between threads (plain relaxed atomics: each has a single writer),
//! the exit summary, and the periodic JSON stats line.

use crate::decode::SkipReason;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Default, Debug)]
pub struct Stats {
    // capture thread
    pub packets_read: AtomicU64,
    pub packets_decoded: AtomicU64,
    pub skipped: [AtomicU64; 4],
    pub sessions: AtomicU64,
    pub active_sessions: AtomicU64,
    pub evictions: AtomicU64,
    /// Times the capture thread found the channel to the detector full and had to wait.
    pub queue_waits: AtomicU64,
    /// Flow events that could not be handed to the detector thread (it had already stopped).
    pub channel_drops: AtomicU64,
    pub kernel_received: AtomicU64,
    pub kernel_dropped: AtomicU64,
    pub interface_dropped: AtomicU64,
    /// Replay progress: capture-file bytes consumed so far (compressed bytes for a
    /// compressed file), and the total when known (0 = unknown: a pipe). Set by the reader.
    pub input_bytes_read: AtomicU64,
    pub input_bytes_total: AtomicU64,
    // detector thread
    pub records: AtomicU64,
    pub alerts: AtomicU64,
    pub tracked_sources: AtomicU64,
    pub tracked_series: AtomicU64,
    pub detector_evictions: AtomicU64,
}

/// A copy of all counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub packets_read: u64,
    pub packets_decoded: u64,
    pub skipped: [u64; 4],
    pub sessions: u64,
    pub active_sessions: u64,
    pub evictions: u64,
    pub queue_waits: u64,
    pub channel_drops: u64,
    pub kernel_received: u64,
    pub kernel_dropped: u64,
    pub interface_dropped: u64,
    pub records: u64,
    pub alerts: u64,
    pub tracked_sources: u64,
    pub tracked_series: u64,
    pub detector_evictions: u64,
}

impl Stats {
    pub fn skip(&self, reason: SkipReason) {
        self.skipped[reason.index()].fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let l = |a: &AtomicU64| a.load(Relaxed);
        Snapshot {
            packets_read: l(&self.packets_read),
            packets_decoded: l(&self.packets_decoded),
            skipped: [l(&self.skipped[0]), l(&self.skipped[1]), l(&self.skipped[2]), l(&self.skipped[3])],
            sessions: l(&self.sessions),
            active_sessions: l(&self.active_sessions),
            evictions: l(&self.evictions),
            queue_waits: l(&self.queue_waits),
            channel_drops: l(&self.channel_drops),
            kernel_received: l(&self.kernel_received),
            kernel_dropped: l(&self.kernel_dropped),
            interface_dropped: l(&self.interface_dropped),
            records: l(&self.records),
            alerts: l(&self.alerts),
            tracked_sources: l(&self.tracked_sources),
            tracked_series: l(&self.tracked_series),
            detector_evictions: l(&self.detector_evictions),
        }
    }
}

impl Snapshot {
    /// One JSON stats line; kernel counters as deltas since `prev` as well as totals.
    pub fn to_json(&self, prev: &Snapshot, live: bool) -> String {
        let mut m = serde_json::Map::new();
        m.insert("type".into(), "stats".into());
        m.insert("packets_read".into(), self.packets_read.into());
        m.insert("packets_decoded".into(), self.packets_decoded.into());
        let mut sk = serde_json::Map::new();
        for r in SkipReason::ALL {
            sk.insert(r.as_str().into(), self.skipped[r.index()].into());
        }
        m.insert("skipped".into(), sk.into());
        if live {
            m.insert("kernel_received".into(), self.kernel_received.into());
            m.insert("kernel_dropped".into(), self.kernel_dropped.into());
            m.insert("interface_dropped".into(), self.interface_dropped.into());
            m.insert("kernel_received_delta".into(), self.kernel_received.saturating_sub(prev.kernel_received).into());
            m.insert("kernel_dropped_delta".into(), self.kernel_dropped.saturating_sub(prev.kernel_dropped).into());
            m.insert(
                "interface_dropped_delta".into(),
                self.interface_dropped.saturating_sub(prev.interface_dropped).into(),
            );
        }
        m.insert("queue_waits".into(), self.queue_waits.into());
        m.insert("channel_drops".into(), self.channel_drops.into());
        m.insert("sessions".into(), self.sessions.into());
        m.insert("active_sessions".into(), self.active_sessions.into());
        m.insert("evictions".into(), self.evictions.into());
        m.insert("records_written".into(), self.records.into());
        m.insert("alerts_written".into(), self.alerts.into());
        m.insert("tracked_sources".into(), self.tracked_sources.into());
        m.insert("tracked_series".into(), self.tracked_series.into());
        m.insert("detector_evictions".into(), self.detector_evictions.into());
        serde_json::Value::Object(m).to_string()
    }

    /// The human exit summary (one line).
    pub fn summary(&self, live: bool) -> String {
        let skipped: Vec<String> =
            SkipReason::ALL.iter().map(|r| format!("{}={}", r.as_str(), self.skipped[r.index()])).collect();
        let mut s = format!(
            "summary: packets read {}, decoded {}, skipped {} ({}); sessions {}, records {}, alerts {}, flow evictions {}, detector evictions {}",
            self.packets_read,
            self.packets_decoded,
            self.skipped.iter().sum::<u64>(),
            skipped.join(" "),
            self.sessions,
            self.records,
            self.alerts,
            self.evictions,
            self.detector_evictions,
        );
        if live {
            s.push_str(&format!(
                "; kernel received {}, dropped {}, interface dropped {}",
                self.kernel_received, self.kernel_dropped, self.interface_dropped
            ));
        }
        s
    }
}
