//! The sessions the beaconing rule waits for — started (with a qualifying destination)
//! but not ended — and the earliest start among them, below which every record is known.
//!
//! Built for the per-event path, where a hash table of open sessions costs a cache miss
//! per Start and per End: the flow table numbers sessions in the order it announces them,
//! so "is session `id` open" is one bit in a window of ids starting at the oldest word
//! holding an open session (a few KB: words whose sessions all ended are dropped from its
//! front). Ids outside the window (announced out of order, or very far ahead of a session
//! that stays open) go to a small hash set instead. The earliest start comes from the
//! (start, id) of every open session, kept in a queue while starts arrive in time order
//! (the flow table announces sessions as their first packets come, so nearly always: a
//! push at the back, and the earliest is at the front) and in a min-heap for the few that
//! arrive out of order. Ended entries are dropped lazily, when they reach the front or the
//! top, or all at once when they outnumber the open sessions.

use crate::time::Timestamp;
use hashbrown::HashSet;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Most words of the id window (64 ids each): 8 MiB, 64 Mi ids.
const MAX_WINDOW_WORDS: u64 = 1 << 20;

#[derive(Default)]
pub struct OpenSessions {
    /// Bit `id - base` set while session `id` is open.
    bits: VecDeque<u64>,
    /// First id of `bits` (a multiple of 64).
    base: u64,
    /// Open sessions whose id is outside the window.
    outside: HashSet<u64>,
    /// (start, id) of open sessions (plus ended ones not dropped yet) in start order: every
    /// start not earlier than the last one queued.
    in_order: VecDeque<(Timestamp, u64)>,
    /// The same for the starts that came out of order.
    heap: BinaryHeap<Reverse<(Timestamp, u64)>>,
    /// Open sessions.
    open: usize,
}

impl OpenSessions {
    /// Session `id`, starting at `t`, is open.
    #[inline(never)]
    pub fn start(&mut self, t: Timestamp, id: u64) {
        if self.bits.is_empty() {
            self.base = id & !63;
        }
        let newly_open = match self.word_of(id) {
            Some(w) => {
                if w >= self.bits.len() {
                    self.bits.resize(w + 1, 0);
                }
                let (word, bit) = (&mut self.bits[w], 1 << (id % 64));
                let was_open = *word & bit != 0;
                *word |= bit;
                !was_open
            }
            None => self.outside.insert(id),
        };
        if newly_open {
            self.open += 1;
        }
        if self.in_order.len() + self.heap.len() >= 2 * self.open + 1024 {
            self.compact();
        }
        match self.in_order.back() {
            Some(&(last, _)) if t < last => self.heap.push(Reverse((t, id))),
            _ => self.in_order.push_back((t, id)),
        }
    }

    /// Drops the ended sessions' entries from the queue and the heap (rare: out of line).
    #[cold]
    #[inline(never)]
    fn compact(&mut self) {
        // Compacted in place on one slice, the window's words read from one slice too:
        // `VecDeque::retain` and indexing go through the ring's index arithmetic.
        let (bits, base, outside) = ((&*self.bits.make_contiguous(), &[][..]), self.base, &self.outside);
        let queued = self.in_order.make_contiguous();
        let mut kept = 0;
        for i in 0..queued.len() {
            if is_open(bits, base, outside, queued[i].1) {
                queued[kept] = queued[i];
                kept += 1;
            }
        }
        self.in_order.truncate(kept);
        self.heap.retain(|&Reverse((_, id))| is_open(bits, base, outside, id));
    }

    /// Session `id` has ended (nothing happens if it was not open).
    #[inline(never)]
    pub fn end(&mut self, id: u64) {
        let was_open = match self.word_of(id) {
            Some(w) if w < self.bits.len() => {
                let bit = 1 << (id % 64);
                let was = self.bits[w] & bit != 0;
                self.bits[w] &= !bit;
                was
            }
            _ => false,
        } || (!self.outside.is_empty() && self.outside.remove(&id));
        if was_open {
            self.open -= 1;
            while self.bits.front() == Some(&0) {
                self.bits.pop_front();
                self.base += 64;
            }
        }
    }

    /// Start of the earliest open session.
    pub fn earliest(&mut self) -> Option<Timestamp> {
        let queued = loop {
            match self.in_order.front() {
                Some(&(t, id)) if is_open(self.bits.as_slices(), self.base, &self.outside, id) => break Some(t),
                Some(_) => {
                    self.in_order.pop_front();
                }
                None => break None,
            }
        };
        let heaped = loop {
            match self.heap.peek() {
                Some(&Reverse((t, id))) if is_open(self.bits.as_slices(), self.base, &self.outside, id) => {
                    break Some(t)
                }
                Some(_) => {
                    self.heap.pop();
                }
                None => break None,
            }
        };
        match (queued, heaped) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn clear(&mut self) {
        *self = OpenSessions::default();
    }

    /// Index in `bits` of the word that holds (or would hold) `id`, if inside the window.
    fn word_of(&self, id: u64) -> Option<usize> {
        let offset = id.checked_sub(self.base)? / 64;
        (offset < MAX_WINDOW_WORDS).then_some(offset as usize)
    }
}

/// Whether session `id` is open, the window's words given as `VecDeque::as_slices`.
fn is_open(bits: (&[u64], &[u64]), base: u64, outside: &HashSet<u64>, id: u64) -> bool {
    let word = |i: usize| bits.0.get(i).or_else(|| bits.1.get(i - bits.0.len()));
    let in_window = id.checked_sub(base).and_then(|off| word((off / 64) as usize).map(|w| w & (1 << (off % 64)) != 0));
    in_window == Some(true) || (!outside.is_empty() && outside.contains(&id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    #[test]
    fn earliest_follows_starts_and_ends_in_any_order() {
        let mut open = OpenSessions::default();
        assert_eq!(open.earliest(), None);
        open.start(t(10), 1);
        open.start(t(5), 2); // out-of-order start time
        open.start(t(20), 3);
        assert_eq!(open.earliest(), Some(t(5)));
        open.end(2);
        assert_eq!(open.earliest(), Some(t(10)));
        open.end(99); // never started: ignored
        open.end(1);
        assert_eq!(open.earliest(), Some(t(20)));
        open.end(3);
        assert_eq!(open.earliest(), None);
    }

    #[test]
    fn ids_below_or_far_beyond_the_window_are_tracked_too() {
        let mut open = OpenSessions::default();
        open.start(t(100), 1000);
        open.start(t(50), 3); // below the window's base
        let far = 1000 + 64 * MAX_WINDOW_WORDS + 5;
        open.start(t(70), far);
        assert_eq!(open.earliest(), Some(t(50)));
        open.end(3);
        assert_eq!(open.earliest(), Some(t(70)));
        open.end(far);
        assert_eq!(open.earliest(), Some(t(100)));
        open.end(1000);
        assert_eq!(open.earliest(), None);
        assert!(open.bits.is_empty() && open.outside.is_empty());
    }

    #[test]
    fn a_long_open_session_keeps_the_heap_bounded() {
        let mut open = OpenSessions::default();
        open.start(t(0), 1);
        for id in 2..100_000u64 {
            open.start(t(id as i64), id);
            open.end(id);
            // Bounded by the open sessions just before this end (one more than now).
            let held = open.in_order.len() + open.heap.len();
            assert!(held <= 2 * (open.open + 1) + 1024, "{held} entries for {} open", open.open);
        }
        assert_eq!(open.earliest(), Some(t(0)));
        open.end(1);
        assert_eq!(open.earliest(), None);
        assert!(open.bits.is_empty(), "the window empties once nothing is open");
    }

    #[test]
    fn matches_a_plain_ordered_set_on_a_shuffled_workload() {
        use std::collections::BTreeSet;
        let mut open = OpenSessions::default();
        let mut model: BTreeSet<(Timestamp, u64)> = BTreeSet::new();
        let mut starts = std::collections::HashMap::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut next_id = 1u64;
        for _ in 0..20_000 {
            if next() % 3 != 0 || starts.is_empty() {
                let ts = t((next() % 5_000) as i64);
                open.start(ts, next_id);
                model.insert((ts, next_id));
                starts.insert(next_id, ts);
                next_id += if next() % 10 == 0 { 70 } else { 1 };
            } else {
                let id = *starts.keys().nth((next() % starts.len() as u64) as usize).unwrap();
                let ts = starts.remove(&id).unwrap();
                model.remove(&(ts, id));
                open.end(id);
            }
            assert_eq!(open.earliest(), model.first().map(|&(ts, _)| ts));
        }
    }
}
