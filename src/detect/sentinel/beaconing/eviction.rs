//! The beaconing rule's eviction order, and eviction itself: when the row buffer is full,
//! whole sources holding the fewest rows go first, so a flood of one-row spoofed sources
//! cannot push out a beacon's rows. Kept with lazy deletion so a row costs one heap push.

use super::ip_order::OrdIp;
use super::SentinelBeaconing;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use hashbrown::hash_map::Entry;
use std::net::IpAddr;

/// Every buffered source by rows held, lowest address first within a count: the eviction
/// order (rows held, address). Lazy deletion: an entry counts only if it is the source's
/// current `count` (a row adds the new entry without looking for the old one); compacted
/// when stale entries pile up.
#[derive(Default)]
pub(super) struct EvictionOrder {
    by_size: BTreeMap<usize, BinaryHeap<Reverse<OrdIp>>>,
    /// Entries held in `by_size`, stale ones included.
    entries: usize,
}

impl EvictionOrder {
    /// Records that `ip` now holds `count` rows (its entries for other counts go stale).
    pub(super) fn note(&mut self, count: usize, ip: IpAddr) {
        self.by_size.entry(count).or_default().push(Reverse(OrdIp(ip)));
        self.entries += 1;
    }

    /// Takes out the first entry (fewest rows, then lowest address) if it holds at most
    /// `limit` rows; the entry may be stale.
    fn pop_at_most(&mut self, limit: usize) -> Option<(usize, IpAddr)> {
        loop {
            let mut bucket = self.by_size.first_entry()?;
            let count = *bucket.key();
            if count > limit {
                return None;
            }
            let Some(Reverse(OrdIp(ip))) = bucket.get_mut().pop() else {
                bucket.remove();
                continue;
            };
            if bucket.get().is_empty() {
                bucket.remove();
            }
            self.entries -= 1;
            return Some((count, ip));
        }
    }

    /// Whether stale entries have piled up compared with `live_sources`.
    pub(super) fn is_mostly_stale(&self, live_sources: usize) -> bool {
        self.entries > 2 * live_sources + 1024
    }

    /// Rebuilds the order from every buffered source's (rows held, address).
    pub(super) fn rebuild(&mut self, sizes: impl IntoIterator<Item = (usize, IpAddr)>) {
        self.clear();
        for (count, ip) in sizes {
            self.note(count, ip);
        }
    }

    pub(super) fn clear(&mut self) {
        self.by_size.clear();
        self.entries = 0;
    }
}

impl SentinelBeaconing {
    /// Full buffer, a row of `src` incoming: evicts whole sources, fewest rows first
    /// (then lowest address), holding no more rows than `src` will once the row is
    /// added, until an eighth of the buffer is free. False if nothing could be evicted.
    pub(super) fn evict_smaller_than(&mut self, src: IpAddr) -> bool {
        let limit = self.sources.get(&src).map_or(0, |s| s.count) + 1;
        let goal = (self.max_rows / 8).max(1);
        let mut freed = 0;
        let mut skipped_self = None;
        while freed < goal {
            let Some((count, ip)) = self.by_size.pop_at_most(limit) else { break };
            // One lookup: a current entry (the source holds `count` rows) is removed through
            // it; a stale one is skipped.
            let Entry::Occupied(entry) = self.sources.entry(ip) else { continue };
            if entry.get().count != count {
                continue; // stale entry
            }
            if ip == src {
                skipped_self = Some(count);
                continue;
            }
            entry.remove();
            // Its entries in `waiting` go stale: the sweep skips them.
            freed += count;
        }
        if let Some(count) = skipped_self {
            self.by_size.note(count, src);
        }
        self.rows_total -= freed;
        self.dropped_rows += freed as u64;
        freed > 0
    }
}
