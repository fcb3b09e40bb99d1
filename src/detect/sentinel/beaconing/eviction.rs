//! The beaconing rule's eviction order, and eviction itself: when the row buffer is full,
//! whole sources holding the fewest rows go first, so a flood of one-row spoofed sources
//! cannot push out a beacon's rows. Kept with lazy deletion so a row costs one append
//! (see [`V4Order`]).

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
/// plain integers: cheaper to compare and move than `IpAddr`s. IPv6 sources (rare: the
/// rule wants an IPv4 destination) are kept in a min-heap.
#[derive(Default)]
struct Bucket {
    v4: V4Order,
    v6: BinaryHeap<Reverse<u128>>,
}

impl Bucket {
    #[inline]
    fn push(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(a) => self.v4.push(a.to_bits()),
            IpAddr::V6(a) => self.v6.push(Reverse(a.to_bits())),
        }
    }
    /// The lowest address, taken out.
    #[inline]
    fn pop(&mut self) -> Option<IpAddr> {
        match self.v4.pop() {
            Some(a) => Some(IpAddr::V4(a.into())),
            None => self.v6.pop().map(|Reverse(a)| IpAddr::V6(a.into())),
        }
    }
    fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
    fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
    }
}

/// IPv4 addresses (with repeats) taken out lowest first, for a push much cheaper than a
/// heap's (an append) and a cheaper take-out: eviction takes an eighth of the buffer at
/// once, so the addresses pushed since the last one are sorted together (a radix sort)
/// and merged into the sorted ones (one pass) when a take-out finds them, and each
/// take-out is a pop.
#[derive(Default)]
struct V4Order {
    /// Sorted highest first: the lowest is popped from the end.
    sorted: Vec<u32>,
    /// Pushed since the last take-out, in any order.
    pending: Vec<u32>,
    /// The radix sort's scratch space and the merge's output (kept for its allocation).
    scratch: Vec<u32>,
}

impl V4Order {
    #[inline]
    fn push(&mut self, a: u32) {
        self.pending.push(a);
    }

    fn pop(&mut self) -> Option<u32> {
        if !self.pending.is_empty() {
            self.merge_pending();
        }
        self.sorted.pop()
    }

    /// Sorts `pending` into `sorted`.
    #[inline(never)]
    fn merge_pending(&mut self) {
        let (sorted, pending, out) = (&self.sorted, &mut self.pending, &mut self.scratch);
        sort_highest_first(pending, out);
        out.clear();
        out.reserve(sorted.len() + pending.len());
        let (mut i, mut j) = (0, 0);
        while i < sorted.len() && j < pending.len() {
            if sorted[i] >= pending[j] {
                out.push(sorted[i]);
                i += 1;
            } else {
                out.push(pending[j]);
                j += 1;
            }
        }
        out.extend_from_slice(&sorted[i..]);
        out.extend_from_slice(&pending[j..]);
        pending.clear();
        std::mem::swap(&mut self.sorted, &mut self.scratch);
    }

    fn is_empty(&self) -> bool {
        self.sorted.is_empty() && self.pending.is_empty()
    }

    fn clear(&mut self) {
        self.sorted.clear();
        self.pending.clear();
    }
}

/// Sorts `v` highest first: a least-significant-digit radix sort, one byte per pass (a
/// byte all the values share is skipped); `tmp` is its scratch space.
fn sort_highest_first(v: &mut Vec<u32>, tmp: &mut Vec<u32>) {
    if v.len() <= 64 {
        v.sort_unstable_by(|a, b| b.cmp(a));
        return;
    }
    // Bucket of a value's byte `d`, highest byte value first.
    let bucket = |x: u32, d: usize| 255 - ((x >> (8 * d)) & 0xff) as usize;
    let mut counts = [[0usize; 256]; 4];
    for &x in v.iter() {
        for (d, c) in counts.iter_mut().enumerate() {
            c[bucket(x, d)] += 1;
        }
    }
    tmp.clear();
    tmp.resize(v.len(), 0);
    for (d, c) in counts.iter().enumerate() {
        if c.contains(&v.len()) {
            continue;
        }
        let mut next = [0usize; 256];
        let mut at = 0;
        for (n, count) in next.iter_mut().zip(c) {
            *n = at;
            at += count;
        }
        for &x in v.iter() {
            let b = &mut next[bucket(x, d)];
            tmp[*b] = x;
            *b += 1;
        }
        std::mem::swap(v, tmp);
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
    /// `limit` rows; the entry may be stale. Inline: called once per entry an eviction
    /// takes out.
    #[inline]
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
            bucket.clear();
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
            entry.remove().rows.free(&mut self.blocks);
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
    fn v4_order_takes_out_what_a_min_heap_would() {
        let mut order = V4Order::default();
        let mut model: BinaryHeap<Reverse<u32>> = BinaryHeap::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..300u32 {
            // Pushes of every size (both sides of the radix sort's cutoff), from narrow
            // and wide address ranges (bytes shared by all values are skipped), repeats.
            let pushes = next() % 700;
            let mask = [0x0000_00ff, 0x00ff_ff00, 0xffff_ffff][(next() % 3) as usize];
            for _ in 0..pushes {
                let a = 0x0a00_0000 | (next() as u32 & mask);
                order.push(a);
                model.push(Reverse(a));
            }
            for _ in 0..next() % 900 {
                assert_eq!(order.pop(), model.pop().map(|Reverse(a)| a), "round {round}");
            }
            assert_eq!(order.is_empty(), model.is_empty());
        }
    }

    #[test]
    fn sorts_highest_first() {
        let mut tmp = Vec::new();
        for n in [0, 1, 64, 65, 1000] {
            let mut v: Vec<u32> = (0..n).map(|i: u32| i.wrapping_mul(2_654_435_761) ^ (i >> 3)).collect();
            let mut want = v.clone();
            want.sort_by(|a, b| b.cmp(a));
            sort_highest_first(&mut v, &mut tmp);
            assert_eq!(v, want);
        }
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
