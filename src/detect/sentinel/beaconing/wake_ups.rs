//! The beaconing rule's wake-up buckets: which sources to evaluate once the horizon reaches
//! a time. They let a sweep visit only the sources that may have become decidable instead
//! of every buffered source, at the cost of one push per registration (lazy deletion).

use crate::time::Timestamp;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Sources waiting for the horizon to reach a time, by that time: a source with new rows
/// waits for the end of its first row's hour (the sweep evaluates it once the horizon gets
/// there). Lazy deletion: an address counts only if its source's `wake_at` is still that
/// time. Order within a time does not matter (the sweep sorts what it evaluates).
#[derive(Default)]
pub(super) struct WakeUps {
    by_time: BTreeMap<Timestamp, Vec<IpAddr>>,
    /// Addresses held in `by_time`, stale ones included (bounds it by compaction).
    entries: usize,
}

impl WakeUps {
    /// Registers `ip` to be evaluated once the horizon reaches `w`.
    pub(super) fn add(&mut self, w: Timestamp, ip: IpAddr) {
        self.by_time.entry(w).or_default().push(ip);
        self.entries += 1;
    }

    /// Takes out the earliest bucket if its time is at or before `horizon`; its addresses
    /// may be stale.
    pub(super) fn pop_due(&mut self, horizon: Timestamp) -> Option<(Timestamp, Vec<IpAddr>)> {
        let entry = self.by_time.first_entry()?;
        if *entry.key() > horizon {
            return None;
        }
        let (w, ips) = entry.remove_entry();
        self.entries -= ips.len();
        Some((w, ips))
    }

    /// Whether stale entries have piled up compared with `live_sources`.
    pub(super) fn is_mostly_stale(&self, live_sources: usize) -> bool {
        self.entries > 2 * live_sources + 1024
    }

    /// Rebuilds the buckets from every buffered source's (address, wake-up time).
    pub(super) fn rebuild(&mut self, wake_ups: impl IntoIterator<Item = (IpAddr, Timestamp)>) {
        let mut by_time: BTreeMap<Timestamp, Vec<IpAddr>> = BTreeMap::new();
        for (ip, w) in wake_ups {
            by_time.entry(w).or_default().push(ip);
        }
        self.entries = by_time.values().map(Vec::len).sum();
        self.by_time = by_time;
    }

    pub(super) fn clear(&mut self) {
        self.by_time.clear();
        self.entries = 0;
    }
}
