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
///
/// Nearly every registration on the per-row path is for the same time (the end of the
/// current hour), so the bucket of the latest registered time is held apart (`recent`)
/// and a registration for it is a plain push, without a tree walk.
#[derive(Default)]
pub(super) struct WakeUps {
    by_time: BTreeMap<Timestamp, Vec<IpAddr>>,
    /// The bucket of the time registered last, not in `by_time` (empty = none).
    recent: (Timestamp, Vec<IpAddr>),
    /// Addresses held in `by_time` and `recent`, stale ones included (bounds them by
    /// compaction).
    entries: usize,
}

impl WakeUps {
    /// Registers `ip` to be evaluated once the horizon reaches `w`.
    #[inline]
    pub(super) fn add(&mut self, w: Timestamp, ip: IpAddr) {
        if self.recent.0 != w || self.recent.1.is_empty() {
            self.switch_recent(w);
        }
        self.recent.1.push(ip);
        self.entries += 1;
    }

    /// Makes `w`'s bucket the `recent` one (rare on the per-row path: kept out of line).
    #[inline(never)]
    fn switch_recent(&mut self, w: Timestamp) {
        self.park_recent();
        let bucket = self.by_time.remove(&w).unwrap_or_default();
        self.recent = (w, bucket);
    }

    /// Moves the `recent` bucket into `by_time`.
    fn park_recent(&mut self) {
        let (w, ips) = std::mem::take(&mut self.recent);
        if !ips.is_empty() {
            // `recent`'s time has no bucket in `by_time`.
            self.by_time.insert(w, ips);
        }
    }

    /// Takes out the earliest bucket if its time is at or before `horizon`; its addresses
    /// may be stale.
    pub(super) fn pop_due(&mut self, horizon: Timestamp) -> Option<(Timestamp, Vec<IpAddr>)> {
        if !self.recent.1.is_empty() && self.recent.0 <= horizon {
            self.park_recent();
        }
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

    /// Rebuilds the buckets from every buffered source's (address, wake-up time). The
    /// `recent` bucket keeps its time and its allocation (it grew to hold the registrations
    /// since the last rebuild, and they come back at the same pace).
    pub(super) fn rebuild(&mut self, wake_ups: impl IntoIterator<Item = (IpAddr, Timestamp)>) {
        let mut by_time: BTreeMap<Timestamp, Vec<IpAddr>> = BTreeMap::new();
        let (recent_w, recent) = (self.recent.0, &mut self.recent.1);
        recent.clear();
        for (ip, w) in wake_ups {
            if w == recent_w {
                recent.push(ip);
            } else {
                by_time.entry(w).or_default().push(ip);
            }
        }
        self.entries = by_time.values().map(Vec::len).sum::<usize>() + recent.len();
        self.by_time = by_time;
    }

    pub(super) fn clear(&mut self) {
        self.by_time.clear();
        self.recent.1.clear();
        self.entries = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_what_a_plain_map_of_buckets_would() {
        let mut w = WakeUps::default();
        let mut model: BTreeMap<Timestamp, Vec<IpAddr>> = BTreeMap::new();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for step in 0..5_000u32 {
            let r = next();
            if r % 5 == 0 {
                let h = Timestamp((r >> 8) as i64 % 40);
                loop {
                    let got = w.pop_due(h);
                    let want = match model.first_entry() {
                        Some(e) if *e.key() <= h => Some(e.remove_entry()),
                        _ => None,
                    };
                    let Some((t, mut ips)) = got else {
                        assert_eq!(want, None, "step {step}");
                        break;
                    };
                    ips.sort();
                    assert_eq!(Some((t, ips)), want, "step {step}");
                }
            } else if r % 97 == 0 {
                let all: Vec<(IpAddr, Timestamp)> =
                    model.iter().flat_map(|(t, ips)| ips.iter().map(move |ip| (*ip, *t))).collect();
                w.rebuild(all);
            } else {
                // Mostly the same time, as on the per-row path.
                let t = Timestamp(if r % 3 == 0 { (r >> 16) as i64 % 40 } else { 30 });
                let ip = IpAddr::from([192, 0, 2, (r >> 24) as u8]);
                w.add(t, ip);
                let bucket = model.entry(t).or_default();
                bucket.push(ip);
                bucket.sort();
            }
            assert_eq!(w.entries, model.values().map(Vec::len).sum::<usize>(), "step {step}");
        }
    }
}
