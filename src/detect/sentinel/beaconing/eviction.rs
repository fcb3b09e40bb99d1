//! The beaconing rule's eviction order, and eviction itself: when the row buffer is full,
//! whole sources holding the fewest rows go first, so a flood of one-row spoofed sources
//! cannot push out a beacon's rows. Kept with lazy deletion so a row costs one heap push.

use super::SentinelBeaconing;
use hashbrown::hash_map::Entry;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::IpAddr;

/// Row counts below this have their bucket in a `Vec` indexed by the count (no tree walk
/// per row); larger ones in a `BTreeMap`.
const SMALL_COUNTS: usize = 64;

/// Every buffered source by rows held, lowest address first within a count: the eviction
/// order (rows held, address). Lazy deletion: an entry counts only if it is the source's
/// current `count` (a row adds the new entry without looking for the old one); compacted
/// when stale entries pile up.
#[derive(Default)]
pub(super) struct EvictionOrder {
    /// Buckets of counts below `SMALL_COUNTS`, indexed by count.
    small: Vec<Bucket>,
    /// Every bucket of `small` below this index is empty.
    lowest_small: usize,
    /// Buckets of the larger counts.
    large: BTreeMap<usize, Bucket>,
    /// Entries held in the buckets, stale ones included.
    entries: usize,
    /// Whether the order is kept at all: only near the row cap. Far below it nothing is
    /// noted, and the order is rebuilt from the sources when an eviction comes (it holds
    /// then exactly the current entries, so evictions are the same).
    armed: bool,
}

/// The addresses of one count, in `IpAddr` order (IPv4 before IPv6, then by value) as
/// min-heaps of plain integers: cheaper to compare and move than `IpAddr`s.
#[derive(Default)]
struct Bucket {
    v4: BinaryHeap<Reverse<u32>>,
    v6: BinaryHeap<Reverse<u128>>,
}

impl Bucket {
    #[inline]
    fn push(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(a) => self.v4.push(Reverse(a.to_bits())),
            IpAddr::V6(a) => self.v6.push(Reverse(a.to_bits())),
        }
    }
    /// The lowest address, taken out.
    fn pop(&mut self) -> Option<IpAddr> {
        match self.v4.pop() {
            Some(Reverse(a)) => Some(IpAddr::V4(a.into())),
            None => self.v6.pop().map(|Reverse(a)| IpAddr::V6(a.into())),
        }
    }
    fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
}

impl EvictionOrder {
    /// Records that `ip` now holds `count` rows (its entries for other counts go stale).
    #[inline]
    pub(super) fn note(&mut self, count: usize, ip: IpAddr) {
        if !self.armed {
            return;
        }
        // Nearly every row: a small count whose bucket exists (a heap push, no call).
        match self.small.get_mut(count) {
            Some(bucket) => {
                bucket.push(ip);
                self.lowest_small = self.lowest_small.min(count);
                self.entries += 1;
            }
            None => self.push(count, ip),
        }
    }

    #[inline(never)]
    fn push(&mut self, count: usize, ip: IpAddr) {
        if count < SMALL_COUNTS {
            if self.small.len() <= count {
                self.small.resize_with(count + 1, Bucket::default);
            }
            self.small[count].push(ip);
            self.lowest_small = self.lowest_small.min(count);
        } else {
            self.large.entry(count).or_default().push(ip);
        }
        self.entries += 1;
    }

    /// Takes out the first entry (fewest rows, then lowest address) if it holds at most
    /// `limit` rows; the entry may be stale.
    fn pop_at_most(&mut self, limit: usize) -> Option<(usize, IpAddr)> {
        while self.lowest_small < self.small.len() {
            let count = self.lowest_small;
            if count > limit {
                return None;
            }
            if let Some(ip) = self.small[count].pop() {
                self.entries -= 1;
                return Some((count, ip));
            }
            self.lowest_small += 1;
        }
        loop {
            let mut bucket = self.large.first_entry()?;
            let count = *bucket.key();
            if count > limit {
                return None;
            }
            let Some(ip) = bucket.get_mut().pop() else {
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

    pub(super) fn is_armed(&self) -> bool {
        self.armed
    }

    /// Stops keeping the order (dropping its entries) until the next [`Self::rebuild`].
    pub(super) fn disarm(&mut self) {
        if self.armed {
            self.clear();
            self.armed = false;
        }
    }

    /// Rebuilds the order from every buffered source's (rows held, address), and keeps it
    /// from now on.
    pub(super) fn rebuild(&mut self, sizes: impl IntoIterator<Item = (usize, IpAddr)>) {
        self.clear();
        self.armed = true;
        for (count, ip) in sizes {
            self.note(count, ip);
        }
    }

    pub(super) fn clear(&mut self) {
        for bucket in &mut self.small {
            bucket.v4.clear();
            bucket.v6.clear();
        }
        self.lowest_small = self.small.len();
        self.large.clear();
        self.entries = 0;
    }
}

impl SentinelBeaconing {
    /// Full buffer, a row of `src` incoming: evicts whole sources, fewest rows first
    /// (then lowest address), holding no more rows than `src` will once the row is
    /// added, until an eighth of the buffer is free. False if nothing could be evicted.
    pub(super) fn evict_smaller_than(&mut self, src: IpAddr) -> bool {
        if !self.by_size.is_armed() {
            self.by_size.rebuild(self.sources.iter().map(|(ip, s)| (s.count, *ip)));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_fewest_rows_first_then_ip_addr_order_within_the_limit() {
        let mut order = EvictionOrder::default();
        order.rebuild([]);
        let mut want: Vec<(usize, IpAddr)> = Vec::new();
        let ips = ["203.0.113.9", "2001:db8::1", "9.9.9.9", "::1", "198.51.100.200", "10.0.0.1", "ffff::"];
        for (i, ip) in ips.iter().enumerate() {
            for count in [1, 2, 63, 64, 65, 1000, 7 * i + 1] {
                order.note(count, ip.parse().unwrap());
                want.push((count, ip.parse().unwrap()));
            }
        }
        want.sort();
        assert_eq!(order.pop_at_most(0), None);
        let mut got = Vec::new();
        while let Some(e) = order.pop_at_most(64) {
            got.push(e);
        }
        let (small, large): (Vec<_>, Vec<_>) = want.into_iter().partition(|e| e.0 <= 64);
        assert_eq!(got, small);
        // A new small entry goes first again.
        order.note(3, "192.0.2.1".parse().unwrap());
        assert_eq!(order.pop_at_most(usize::MAX), Some((3, "192.0.2.1".parse().unwrap())));
        while let Some(e) = order.pop_at_most(usize::MAX) {
            got.push(e);
        }
        assert_eq!(got[small.len()..], large[..]);
        assert_eq!(order.entries, 0);
    }

    #[test]
    fn a_disarmed_order_notes_nothing_until_rebuilt() {
        let mut order = EvictionOrder::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        order.note(1, ip);
        assert_eq!((order.entries, order.pop_at_most(usize::MAX)), (0, None));
        order.rebuild([(2, ip)]);
        order.note(3, ip);
        assert_eq!(order.pop_at_most(usize::MAX), Some((2, ip)));
        order.disarm();
        order.note(1, ip);
        assert_eq!((order.entries, order.pop_at_most(usize::MAX)), (0, None));
    }
}
