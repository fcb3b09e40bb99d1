//! A hash map with a hard size cap, a segmented LRU eviction that one-off keys cannot
//! thrash and, once the map has filled, an admission filter that keeps one-off keys out
//! of it altogether. Keys are attacker-controlled (addresses, ports), so every map is
//! randomly seeded ([`KeyedHasher`]). Eviction and admission never depend on the table's
//! iteration order: entries carry a unique touch stamp, the oldest are removed, and the
//! doorkeeper and the nursery use a fixed hash, so behaviour is deterministic.
//!
//! Two segments (SLRU): a new key enters *probation* (until the map fills, see below);
//! a key seen again (a promoting touch) moves to *protected*, which holds at most 80 %
//! of the cap (its oldest are demoted back to probation). A full map evicts the oldest
//! probation entries first, so a flood of sources seen once cannot push out a slow
//! scanner or a beacon that came back. Eviction drops about an eighth of the cap per
//! pass. Up to 4 096 entries the cutoffs are exact; in larger tables they are read from
//! 1 024 sampled stamps (a fixed pseudo-random sequence), so a pass costs one
//! sequential walk of the stamps.
//!
//! Admission (TinyLFU's doorkeeper with a small window): under a flood or background
//! radiation nearly every key is new and never seen again (840 k of mix b's 850 k
//! beacon series), and inserting each into the map only to evict it later was a fifth
//! of the detector thread. So once the map has filled (its first eviction pass), and
//! while it is at least 3/4 full, a new key enters the map only if a promoting call
//! shows it and the [`Doorkeeper`] knows it (recorded in the last `cap` to `2 × cap`
//! keys it saw: kept aside before, or evicted); it enters protected, having been seen
//! twice. Any other new key is recorded in the doorkeeper and lives in the *nursery*: a
//! direct-mapped array of `cap / 16` slots indexed by the key's fixed hash, where a
//! newcomer overwrites (evicts) whatever was there, reusing the slot in place
//! ([`Fill::reset`]; no hash-table insert or removal). A lookup that misses the map
//! checks the key's nursery slot (one compare of a fixed hash); a promoting touch moves
//! a nursery entry, value and all, into protected, a refresh leaves it where it is. So
//! a scanner's next probe or a beacon's next session brings it into the map, with its
//! state when its nursery slot survived and afresh otherwise, and the map holds keys
//! seen at least twice. Nursery entries count in the cap ([`BoundedMap::len`]) and their
//! overwrites in [`BoundedMap::evictions`]. A map that never fills behaves exactly as
//! one without admission (no nursery, no doorkeeper lookups); a map of under 16
//! entries has no nursery, and every new key enters it. (This replaces the second
//! chance an evicted key got from the doorkeeper before: evicted keys are recorded in
//! it, and admitted again when they come back.)

use super::doorkeeper::{fixed_hash, Doorkeeper};
use crate::net::KeyedHasher;
use hashbrown::HashTable;
use std::hash::{BuildHasher, Hash};
use std::mem::align_of;

/// An entry: the key first, next to the front of its value (a `repr(C)` value keeps
/// what every event reads at its front), so the key compare of a lookup reads the cache
/// line the caller reads next. Slots never move once stored. `A` sets the slot's
/// alignment ([`CacheLine`]: each slot starts a cache line, so the lines an event
/// reads are the same for every slot), without taking room.
#[repr(C)]
struct Slot<K, V, A> {
    key: K,
    value: V,
    align: [A; 0],
}

impl<K, V, A> Slot<K, V, A> {
    /// Puts `key` and the value `make` gives in `slot`: reset in place over a stale
    /// entry left there (an evicted one, or one overwritten in the nursery), else made.
    /// Returns the value (no second index and check of the slot).
    #[inline(always)]
    fn fill(slot: &mut Option<Self>, key: K, make: impl Fill<V>) -> &mut V {
        match slot {
            Some(stale) => {
                stale.key = key;
                make.reset(&mut stale.value);
                &mut stale.value
            }
            slot => &mut slot.insert(Slot { key, value: make.make(), align: [] }).value,
        }
    }
}

/// A slot alignment of one cache line (64 bytes): `BoundedMap<K, V, CacheLine>`.
#[derive(Clone, Copy)]
#[repr(align(64))]
pub struct CacheLine;

/// The value of a new entry: made afresh in an unused slot, or reset in the slot an
/// evicted entry left (its old value is still there, see `evict_pass`; in the nursery,
/// the slot of the entry it overwrites). A closure makes
/// a fresh value either way; a value type can reset only what its readers read, and
/// spare the writes (and cache lines) of the rest.
pub trait Fill<V> {
    fn make(self) -> V;
    fn reset(self, stale: &mut V);
}

impl<V, F: FnOnce() -> V> Fill<V> for F {
    #[inline(always)]
    fn make(self) -> V {
        self()
    }
    #[inline(always)]
    fn reset(self, stale: &mut V) {
        *stale = self();
    }
}

/// Stamp of a free id: larger than every real stamp, so never among the oldest.
const FREE: u64 = u64::MAX;
/// Stamp bits: `clock << 1 | PROTECTED`.
const PROTECTED: u64 = 1;
/// Tables with more live entries pick eviction cutoffs from samples.
const EXACT_UP_TO: usize = 4096;
const SAMPLES: usize = 1024;
/// Stamps a pass classifies before visiting the slots of those leaving.
const WALK_CHUNK: usize = 64;
/// Nursery slots: one per this many entries of the cap (none below it). Measured on the
/// flood (callgrind, `fs-enhanced`, 300 k SYNs): cap/4 426 M, cap/16 421 M, cap/64 423 M.
const NURSERY_SHARE: usize = 16;

/// Map capped at `cap` entries (nursery included); inserting into a full map first runs
/// an eviction pass (about `cap / 8` entries, at least one, counted in
/// [`BoundedMap::evictions`]).
///
/// Keys with their values, touch stamps (unique, increasing; the low bit holds the
/// segment) and key hashes live in dense arrays indexed by a per-entry id; the hash
/// table holds only the ids (4 bytes a bucket: a capped map that keeps evicting
/// accumulates tombstones, which makes hashbrown grow it to 4 buckets per entry, so
/// keys in the buckets would cost megabytes and page faults). A pass reads the stamps (a
/// few hundred KiB) instead of walking every entry, and the evicted entries are then
/// removed one by one through their stored hash.
pub struct BoundedMap<K, V, A = ()> {
    /// A raw table of ids (rehashed through `hashes`) so a key is hashed once per call,
    /// even when a full map must evict before inserting it.
    table: HashTable<u32>,
    hasher: KeyedHasher,
    cap: usize,
    clock: u64,
    evictions: u64,
    /// Key and value of each id (`None` for unused ids).
    slots: Vec<Option<Slot<K, V, A>>>,
    /// Touch stamp of each id (`FREE` for unused ids).
    stamps: Vec<u64>,
    /// Table hash of each id's key (meaningless for unused ids).
    hashes: Vec<u64>,
    /// Unused ids.
    free: Vec<u32>,
    /// Keys kept aside or evicted lately (fixed hashes): who is admitted.
    doorkeeper: Doorkeeper,
    /// Whether the map has filled (run an eviction pass) since it was made or got a new
    /// cap: admission applies from then on, while it is at least 3/4 full.
    filled: bool,
    /// The nursery (allocated when the map fills): entries not admitted, each in the
    /// slot of its key's fixed hash; a slot of no live entry may hold a stale one.
    nursery: Vec<Option<Slot<K, V, A>>>,
    /// Fixed hash (`| 1`) of the live key of each nursery slot, 0 for none.
    tags: Vec<u64>,
    /// Live nursery entries.
    nursery_len: usize,
    /// State of the sampling sequence (xorshift; fixed seed).
    rng: u64,
    /// Scratch buffers (kept: no allocation): a pass's probation and protected stamps and
    /// entries leaving (stamp, id); ids freed by `retain`.
    probation: Vec<u64>,
    protected: Vec<u64>,
    candidates: Vec<(u64, u32)>,
    freed: Vec<u32>,
}

/// The stamp cutoff that selects `take` of a segment of `len` entries, given the
/// segment's stamps in `stamps` (all of them, or a sample): the `take`-th smallest, or
/// its share of the sample. 0 (below every stamp) when nothing is to be taken.
fn cutoff(stamps: &mut [u64], take: usize, len: usize) -> u64 {
    if take == 0 || stamps.is_empty() {
        return 0;
    }
    let k = if stamps.len() == len { take } else { (take * stamps.len() + len / 2) / len };
    *stamps.select_nth_unstable(k.clamp(1, stamps.len()) - 1).1
}

impl<K: Hash + Eq, V, A> BoundedMap<K, V, A> {
    pub fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        BoundedMap {
            table: HashTable::new(),
            hasher: KeyedHasher::default(),
            cap,
            clock: 0,
            evictions: 0,
            slots: Vec::new(),
            stamps: Vec::new(),
            hashes: Vec::new(),
            free: Vec::new(),
            doorkeeper: Doorkeeper::new(cap),
            filled: false,
            nursery: Vec::new(),
            tags: Vec::new(),
            nursery_len: 0,
            rng: 0x2545_f491_4f6c_dd1d,
            probation: Vec::new(),
            protected: Vec::new(),
            candidates: Vec::new(),
            freed: Vec::new(),
        }
    }
    /// A new cap (a reload): admission starts afresh (the doorkeeper is resized and
    /// forgets, the nursery's entries are evicted and it is resized when the map fills
    /// again), and a map above the new cap evicts down to it.
    pub fn set_cap(&mut self, cap: usize) {
        let cap = cap.max(1);
        if cap != self.cap {
            self.doorkeeper = Doorkeeper::new(cap);
            self.evictions += self.nursery_len as u64;
            (self.nursery, self.tags, self.nursery_len, self.filled) = (Vec::new(), Vec::new(), 0, false);
        }
        self.cap = cap;
        while self.len() > self.cap {
            self.evict_pass();
        }
    }
    /// Entries, nursery included.
    pub fn len(&self) -> usize {
        self.table.len() + self.nursery_len
    }
    pub fn cap(&self) -> usize {
        self.cap
    }
    /// Entries evicted by passes or overwritten in the nursery.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }
    /// The entry for `key`, created with `make` if absent (in probation, or once the map
    /// has filled as the module doc says); marks it most recently used, and an entry that
    /// was there is promoted (seen again).
    #[inline(always)]
    pub fn touch_or_insert_with(&mut self, key: K, make: impl Fill<V>) -> &mut V {
        self.entry_with(key, make, true)
    }
    /// Like [`BoundedMap::touch_or_insert_with`] without promoting an entry that was
    /// there: for events that do not show the key again (the end of what its last
    /// promoting event started). Under admission (see the module doc) a new key it
    /// makes stays in the nursery.
    #[inline(always)]
    pub fn refresh_or_insert_with(&mut self, key: K, make: impl Fill<V>) -> &mut V {
        self.entry_with(key, make, false)
    }
    #[inline(always)]
    fn entry_with(&mut self, key: K, make: impl Fill<V>, promote: bool) -> &mut V {
        self.clock += 1;
        let hash = self.hasher.hash_one(&key);
        let slots = &self.slots;
        let id = match self.table.find(hash, |&id| slots[id as usize].as_ref().is_some_and(|s| s.key == key)).copied() {
            Some(id) => {
                let old = self.stamps[id as usize];
                let segment = if promote { PROTECTED } else { old & PROTECTED };
                self.stamps[id as usize] = self.clock << 1 | segment;
                id
            }
            None if !self.filled => self.insert_new(hash, key, make, 0),
            None => return self.enter(hash, key, make, promote),
        };
        &mut self.slots[id as usize].as_mut().expect("a mapped id has a slot").value
    }
    /// A key not in the map once the map has filled: found in the nursery (and moved
    /// into the map by a promoting call), admitted, or put in the nursery.
    #[inline]
    fn enter(&mut self, hash: u64, key: K, make: impl Fill<V>, promote: bool) -> &mut V {
        let fixed = fixed_hash(&key);
        let at = self.nursery_at(fixed);
        let nursed = self.nursery_holds(at, fixed, &key);
        if nursed && !promote {
            return self.nursery_value(at);
        }
        let id = if nursed {
            // Seen again: into protected with its value (the map has room: the
            // nursery's entry counted in the cap).
            self.tags[at] = 0;
            self.nursery_len -= 1;
            let id = self.new_id();
            std::mem::swap(&mut self.slots[id as usize], &mut self.nursery[at]);
            self.place(id, hash, PROTECTED);
            id
        } else if self.tags.is_empty() || self.len() < self.cap - self.cap / 4 {
            // No nursery (a small map), or room enough: no admission.
            self.insert_new(hash, key, make, 0)
        } else {
            let door = self.doorkeeper.slot(fixed);
            let known = self.doorkeeper.contains_at(door);
            if known && promote {
                self.insert_new(hash, key, make, PROTECTED)
            } else {
                if !known {
                    self.doorkeeper.insert_at(door);
                }
                if self.tags[at] != 0 {
                    self.evictions += 1; // the entry there leaves
                } else {
                    self.nursery_len += 1;
                    while self.len() > self.cap {
                        self.evict_pass();
                    }
                }
                self.tags[at] = fixed | 1;
                return Slot::fill(&mut self.nursery[at], key, make);
            }
        };
        &mut self.slots[id as usize].as_mut().expect("a mapped id has a slot").value
    }
    /// The nursery slot of the key of fixed hash `fixed` (0 without a nursery).
    #[inline]
    fn nursery_at(&self, fixed: u64) -> usize {
        // The high bits pick the doorkeeper's word: rotated, the others pick the slot.
        ((u128::from(fixed.rotate_left(32)) * self.tags.len() as u128) >> 64) as usize
    }
    /// Whether nursery slot `at` holds `key` (of fixed hash `fixed`) live.
    #[inline]
    fn nursery_holds(&self, at: usize, fixed: u64, key: &K) -> bool {
        self.tags.get(at) == Some(&(fixed | 1)) && self.nursery[at].as_ref().is_some_and(|s| s.key == *key)
    }
    fn nursery_value(&mut self, at: usize) -> &mut V {
        &mut self.nursery[at].as_mut().expect("a live nursery slot has its entry").value
    }
    /// The nursery slot holding `key`, if one does.
    #[inline]
    fn find_nursed(&self, key: &K) -> Option<usize> {
        if self.nursery_len == 0 {
            return None;
        }
        let fixed = fixed_hash(key);
        let at = self.nursery_at(fixed);
        self.nursery_holds(at, fixed, key).then_some(at)
    }
    /// A new entry in the map, in the segment `segment`, most recently used.
    #[inline(always)]
    fn insert_new(&mut self, hash: u64, key: K, make: impl Fill<V>, segment: u64) -> u32 {
        let id = self.new_id();
        // An evicted entry left in place (see `evict_pass`) is overwritten.
        Slot::fill(&mut self.slots[id as usize], key, make);
        self.place(id, hash, segment);
        id
    }
    /// An unused id (after an eviction pass if the map is full); its slot is empty or
    /// holds an evicted entry.
    #[inline(always)]
    fn new_id(&mut self) -> u32 {
        while self.len() >= self.cap {
            self.evict_pass();
        }
        self.free.pop().unwrap_or_else(|| {
            if self.slots.capacity() == 0 && align_of::<Slot<K, V, A>>() > 16 {
                // The allocator grows over-aligned blocks by copying them: the slots of
                // a table of up to 64 Ki entries are reserved at once (address space;
                // pages are touched as slots are).
                self.slots.reserve_exact(self.cap.min(1 << 16));
            }
            self.slots.push(None);
            self.stamps.push(FREE);
            self.hashes.push(0);
            u32::try_from(self.slots.len() - 1).expect("bounded map ids fit in u32")
        })
    }
    /// Maps id `id`, whose slot holds its key of table hash `hash`.
    #[inline(always)]
    fn place(&mut self, id: u32, hash: u64, segment: u64) {
        self.hashes[id as usize] = hash;
        self.stamps[id as usize] = self.clock << 1 | segment;
        let hashes = &self.hashes;
        self.table.insert_unique(hash, id, |&id| hashes[id as usize]);
    }
    /// The entry for `key` if present; marks it most recently used (not a promotion).
    #[inline(always)]
    pub fn touch(&mut self, key: &K) -> Option<&mut V> {
        self.clock += 1;
        let Some(id) = self.find(key) else {
            let at = self.find_nursed(key)?;
            return Some(self.nursery_value(at));
        };
        self.stamps[id] = self.clock << 1 | self.stamps[id] & PROTECTED;
        self.slots[id].as_mut().map(|s| &mut s.value)
    }
    pub fn get(&self, key: &K) -> Option<&V> {
        let slot = match self.find(key) {
            Some(id) => &self.slots[id],
            None => &self.nursery[self.find_nursed(key)?],
        };
        slot.as_ref().map(|s| &s.value)
    }
    #[inline(always)]
    fn find(&self, key: &K) -> Option<usize> {
        let hash = self.hasher.hash_one(key);
        let slots = &self.slots;
        self.table.find(hash, |&id| slots[id as usize].as_ref().is_some_and(|s| s.key == *key)).map(|&id| id as usize)
    }
    /// Keeps entries for which `keep` is true (expiry; not counted as evictions). Freed
    /// ids are reused in id order, whatever order the table visited them in.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        let (slots, stamps, freed) = (&mut self.slots, &mut self.stamps, &mut self.freed);
        freed.clear();
        self.table.retain(|&mut id| {
            let slot = slots[id as usize].as_mut().expect("a mapped id has a slot");
            let kept = keep(&slot.key, &mut slot.value);
            if !kept {
                slots[id as usize] = None;
                stamps[id as usize] = FREE;
                freed.push(id);
            }
            kept
        });
        freed.sort_unstable();
        self.free.extend(freed.iter().rev());
        if self.nursery_len > 0 {
            // A nursery entry that leaves stays in its slot, stale, for the next one there.
            for (tag, slot) in self.tags.iter_mut().zip(&mut self.nursery) {
                if *tag != 0 {
                    let s = slot.as_mut().expect("a live nursery slot has its entry");
                    if !keep(&s.key, &mut s.value) {
                        *tag = 0;
                        self.nursery_len -= 1;
                    }
                }
            }
        }
    }
    /// Next id of the sampling sequence, below `n`.
    fn sample(&mut self, n: usize) -> usize {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        ((u128::from(self.rng) * n as u128) >> 64) as usize
    }
    /// One eviction pass: about `cap / 8` entries leave, the oldest probation ones first,
    /// then, if probation is short, the oldest protected ones; protected entries beyond
    /// its share are demoted to probation. The evicted keys are recorded in the
    /// doorkeeper (admitted again if they come back). The first pass starts admission.
    fn evict_pass(&mut self) {
        let len = self.table.len();
        let n = (self.cap / 8).max(1).min(len);
        if n == 0 {
            return;
        }
        if !self.filled {
            self.filled = true;
            let size = nursery_size(self.cap);
            self.nursery.resize_with(size, || None);
            self.tags = vec![0; size];
        }
        self.probation.clear();
        self.protected.clear();
        if len > EXACT_UP_TO {
            for _ in 0..SAMPLES {
                let id = self.sample(self.stamps.len());
                match self.stamps[id] {
                    FREE => {}
                    s if s & PROTECTED != 0 => self.protected.push(s),
                    s => self.probation.push(s),
                }
            }
        }
        let sampled = self.probation.len() + self.protected.len();
        if sampled < SAMPLES / 4 {
            // Small table, or samples that mostly hit free ids: every stamp.
            self.probation.clear();
            self.protected.clear();
            for &s in &self.stamps {
                match s {
                    FREE => {}
                    s if s & PROTECTED != 0 => self.protected.push(s),
                    s => self.probation.push(s),
                }
            }
        }
        let sampled = self.probation.len() + self.protected.len();
        let probation_len = if sampled == len { self.probation.len() } else { (len * self.probation.len()) / sampled };
        let protected_len = len - probation_len;
        let from_probation = n.min(probation_len);
        let from_protected = n - from_probation;
        let protected_cap = self.cap - self.cap / 5;
        let demote = protected_len.saturating_sub(from_protected).saturating_sub(protected_cap);
        let probation_cut = cutoff(&mut self.probation, from_probation, probation_len);
        let evict_cut = cutoff(&mut self.protected, from_protected, protected_len);
        let demote_cut = cutoff(&mut self.protected, from_protected + demote, protected_len);
        // A tight walk of the stamps classifies them (one compare skips those above
        // every cutoff, FREE included): demotions are done in place, and the entries to
        // evict are set aside (marked FREE) a chunk at a time, so the list stays in L1
        // and the walk does no bounds checks or calls.
        let top = probation_cut.max(evict_cut).max(demote_cut);
        for start in (0..self.stamps.len()).step_by(WALK_CHUNK) {
            let end = self.stamps.len().min(start + WALK_CHUNK);
            self.candidates.clear();
            for (id, stamp) in (start..end).zip(&mut self.stamps[start..end]) {
                let s = *stamp;
                if s > top {
                    continue;
                }
                let evict = if s & PROTECTED == 0 {
                    s <= probation_cut
                } else if s <= evict_cut {
                    true
                } else {
                    if s <= demote_cut {
                        *stamp = s & !PROTECTED;
                    }
                    false
                };
                if evict {
                    self.candidates.push((s, id as u32));
                    *stamp = FREE;
                }
            }
            for &(_, id) in &self.candidates {
                let key = &self.slots[id as usize].as_ref().expect("a stamped id has a slot").key;
                let door = self.doorkeeper.slot(fixed_hash(key));
                if !self.doorkeeper.contains_at(door) {
                    self.doorkeeper.insert_at(door);
                }
                match self.table.find_entry(self.hashes[id as usize], |&e| e == id) {
                    Ok(entry) => {
                        entry.remove();
                    }
                    Err(_) => unreachable!("every stamped id has an entry"),
                }
                // The slot stays as it is until its id is reused: moving a large value
                // out to drop it costs a copy per eviction, and the next insert
                // overwrites it.
                self.free.push(id);
                self.evictions += 1;
            }
        }
    }
}

/// Nursery slots of a map of cap `cap`.
fn nursery_size(cap: usize) -> usize {
    cap / NURSERY_SHARE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_touched_and_counts() {
        let mut m = BoundedMap::<_, _>::new(8);
        for k in 0..8u32 {
            m.touch_or_insert_with(k, || k);
        }
        m.touch(&0); // 0 is now the most recent; 1 is the oldest
        m.touch_or_insert_with(100, || 100);
        assert_eq!(m.len(), 8);
        assert_eq!(m.evictions(), 1);
        assert!(m.get(&1).is_none());
        assert!(m.get(&0).is_some());
        for k in 1000..101_000u32 {
            m.touch_or_insert_with(k, || k);
            assert!(m.len() <= 8);
        }
        assert_eq!(m.evictions(), 1 + 100_000);
    }

    /// The eviction and admission choices must match their straightforward definition
    /// (exact cutoffs in small tables): a pass evicts the oldest cap/8 probation entries
    /// (the oldest protected ones when probation is short) into the doorkeeper and
    /// demotes protected entries beyond 80 % of the cap; once the map has filled and while
    /// it is 3/4 full, a new key enters it only on a promoting call the doorkeeper knows
    /// it for, any other goes to its nursery slot, and a promoting call moves a nursery
    /// entry into the map. Checked against a naive model over a random mix of promoting
    /// and plain inserts, touches, expiry and cap changes.
    #[test]
    fn evicts_and_admits_exactly_like_a_naive_model() {
        use std::collections::BTreeMap;
        type Model = BTreeMap<u32, (u64, u32)>;
        #[derive(Default)]
        struct Counts {
            nursed: u64,
            moved: u64,
            admitted: u64,
        }
        struct Naive {
            map: Model,
            nursery: Vec<Option<(u32, u32)>>,
            filled: bool,
            clock: u64,
            evictions: u64,
            doorkeeper: Doorkeeper,
            counts: Counts,
        }
        impl Naive {
            fn len(&self) -> usize {
                self.map.len() + self.nursery.iter().flatten().count()
            }
            fn get(&self, key: u32) -> Option<u32> {
                let nursed = self.nursery.iter().flatten().find(|(k, _)| *k == key).map(|(_, v)| *v);
                self.map.get(&key).map(|v| v.1).or(nursed)
            }
            fn pass(&mut self, cap: usize) {
                let n = (cap / 8).max(1).min(self.map.len());
                if n == 0 {
                    return;
                }
                if !self.filled {
                    self.filled = true;
                    self.nursery = vec![None; nursery_size(cap)];
                }
                let segment = |protected: u64| {
                    let mut v: Vec<u64> =
                        self.map.values().map(|v| v.0).filter(|s| s & PROTECTED == protected).collect();
                    v.sort();
                    v
                };
                let (probation, protected) = (segment(0), segment(PROTECTED));
                let from_probation = n.min(probation.len());
                let from_protected = n - from_probation;
                let demote = protected.len().saturating_sub(from_protected).saturating_sub(cap - cap / 5);
                let cut = |v: &[u64], k: usize| if k == 0 { 0 } else { v[k - 1] };
                let probation_cut = cut(&probation, from_probation);
                let evict_cut = cut(&protected, from_protected);
                let demote_cut = cut(&protected, from_protected + demote);
                let mut evicted = Vec::new();
                for (k, v) in self.map.iter_mut() {
                    let s = v.0;
                    if s & PROTECTED == 0 {
                        if s <= probation_cut {
                            evicted.push(*k);
                        }
                    } else if s <= evict_cut {
                        evicted.push(*k);
                    } else if s <= demote_cut {
                        v.0 = s & !PROTECTED;
                    }
                }
                for k in evicted {
                    self.map.remove(&k);
                    if !self.doorkeeper.contains(fixed_hash(&k)) {
                        self.doorkeeper.insert(fixed_hash(&k));
                    }
                    self.evictions += 1;
                }
            }
            /// Into the map (after passes while full), most recently used.
            fn insert(&mut self, key: u32, value: u32, segment: u64, cap: usize) -> u32 {
                while self.len() >= cap {
                    self.pass(cap);
                }
                self.map.insert(key, (self.clock << 1 | segment, value));
                value
            }
            fn entry(&mut self, key: u32, value: u32, promote: bool, cap: usize) -> u32 {
                self.clock += 1;
                if let Some(v) = self.map.get_mut(&key) {
                    let segment = if promote { PROTECTED } else { v.0 & PROTECTED };
                    v.0 = self.clock << 1 | segment;
                    return v.1;
                }
                let h = fixed_hash(&key);
                let at = ((u128::from(h.rotate_left(32)) * self.nursery.len() as u128) >> 64) as usize;
                if let Some(&Some((k, v))) = self.nursery.get(at) {
                    if k == key {
                        if !promote {
                            return v;
                        }
                        self.nursery[at] = None;
                        self.counts.moved += 1;
                        return self.insert(key, v, PROTECTED, cap);
                    }
                }
                if !self.filled || self.nursery.is_empty() || self.len() < cap - cap / 4 {
                    return self.insert(key, value, 0, cap);
                }
                let known = self.doorkeeper.contains(h);
                if known && promote {
                    self.counts.admitted += 1;
                    return self.insert(key, value, PROTECTED, cap);
                }
                if !known {
                    self.doorkeeper.insert(h);
                }
                self.counts.nursed += 1;
                if self.nursery[at].replace((key, value)).is_some() {
                    self.evictions += 1;
                }
                while self.len() > cap {
                    self.pass(cap);
                }
                value
            }
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |m: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % m
        };
        let mut m: BoundedMap<u32, u32> = BoundedMap::new(64);
        let mut cap = 64usize;
        let mut model = Naive {
            map: Model::new(),
            nursery: Vec::new(),
            filled: false,
            clock: 0,
            evictions: 0,
            doorkeeper: Doorkeeper::new(64),
            counts: Counts::default(),
        };
        let mut demotions = 0;
        for step in 0..200_000u32 {
            // Mostly a small set of recurring keys, sometimes one of many more.
            let key = if next(4) == 0 { 1_000 + next(5_000) } else { next(300) } as u32;
            match next(100) {
                0..=29 => assert_eq!(*m.touch_or_insert_with(key, || step), model.entry(key, step, true, cap)),
                30..=59 => assert_eq!(*m.refresh_or_insert_with(key, || step), model.entry(key, step, false, cap)),
                60..=89 => {
                    model.clock += 1;
                    let clock = model.clock;
                    if let Some(v) = model.map.get_mut(&key) {
                        v.0 = clock << 1 | v.0 & PROTECTED;
                    }
                    assert_eq!(m.touch(&key).copied(), model.get(key));
                }
                90..=97 => {
                    let modulus = 2 + next(20) as u32;
                    model.map.retain(|k, _| k % modulus != 0);
                    model.nursery.iter_mut().for_each(|e| *e = e.filter(|(k, _)| k % modulus != 0));
                    m.retain(|k, _| k % modulus != 0);
                }
                _ => {
                    let new_cap = 1 + next(120) as usize;
                    if new_cap != cap {
                        // Admission starts afresh.
                        model.doorkeeper = Doorkeeper::new(new_cap);
                        model.evictions += model.nursery.iter().flatten().count() as u64;
                        model.nursery.clear();
                        model.filled = false;
                    }
                    cap = new_cap;
                    while model.len() > cap {
                        model.pass(cap);
                    }
                    m.set_cap(cap);
                }
            }
            assert_eq!((m.len(), m.evictions()), (model.len(), model.evictions), "step {step}");
            demotions += model.map.values().filter(|v| v.0 & PROTECTED == 0).count();
            if step % 1000 == 0 {
                for k in (0..300).chain(1_000..6_000) {
                    assert_eq!(m.get(&k).copied(), model.get(k), "step {step} key {k}");
                }
            }
        }
        // The model exercised admission, the nursery, moves out of it, and both segments.
        let c = &model.counts;
        assert!(c.nursed > 5_000 && c.moved > 20 && c.admitted > 500, "{} {} {}", c.nursed, c.moved, c.admitted);
        assert!(demotions > 1000, "{demotions}");
    }

    /// Above 4 096 entries a pass reads its cutoff from 1 024 sampled stamps: it evicts
    /// about an eighth, and exactly the oldest entries.
    #[test]
    fn sampled_cutoff_evicts_the_oldest_about_an_eighth() {
        let cap = 65_536u32;
        let mut m = BoundedMap::<_, _>::new(cap as usize);
        for k in 0..=cap {
            m.touch_or_insert_with(k, || k);
        }
        let evicted = m.evictions();
        assert!((6_500..=10_000).contains(&evicted), "{evicted} evicted, expected ~8 192");
        for k in 0..=cap {
            assert_eq!(m.get(&k).is_none(), u64::from(k) < evicted, "key {k}");
        }
    }

    /// A key seen again is promoted: a flood of one-off keys, many times the table,
    /// never evicts it, though it comes back only after three tables' worth of them.
    #[test]
    fn a_repeated_key_survives_a_flood_of_one_off_keys() {
        for cap in [1_000usize, 32_768] {
            let mut m = BoundedMap::<_, _>::new(cap);
            let slow = u32::MAX;
            m.touch_or_insert_with(slow, || 7);
            m.touch_or_insert_with(slow, || 8);
            for k in 0..(40 * cap) as u32 {
                m.touch_or_insert_with(k, || k);
                if k as usize % (3 * cap) == 0 {
                    assert_eq!(m.touch_or_insert_with(slow, || 9), &7, "cap {cap}: evicted by one-offs");
                }
            }
            assert!(m.len() <= cap && m.len() >= cap - cap / 8, "{} entries", m.len());
            assert!(m.evictions() >= (39 * cap) as u64);
        }
    }

    /// A reload's new cap starts admission afresh: the doorkeeper is resized with it
    /// (`cap` keys a generation) and forgets, the nursery's entries are evicted; an
    /// unchanged cap keeps both.
    #[test]
    fn set_cap_starts_admission_afresh() {
        let mut m = BoundedMap::<_, _>::new(64);
        assert_eq!(m.doorkeeper.limit(), 64);
        for k in 0..100u32 {
            m.touch_or_insert_with(k, || k);
        }
        let evicted = fixed_hash(&0u32);
        assert!(m.doorkeeper.contains(evicted));
        assert!(m.nursery_len > 0 && m.len() <= 64, "{} nursed, {} entries", m.nursery_len, m.len());
        let (nursed, evictions) = (m.nursery_len, m.evictions());
        m.set_cap(64);
        assert!(m.doorkeeper.contains(evicted), "same cap: the doorkeeper is kept");
        assert_eq!((m.nursery_len, m.evictions()), (nursed, evictions));
        let len = m.len();
        m.set_cap(4096);
        assert_eq!((m.cap(), m.doorkeeper.limit()), (4096, 4096));
        assert!(!m.doorkeeper.contains(evicted) && !m.filled);
        assert_eq!((m.nursery_len, m.len(), m.evictions()), (0, len - nursed, evictions + nursed as u64));
        for k in 100..7_000u32 {
            m.touch_or_insert_with(k, || k);
        }
        assert_eq!(m.tags.len(), 4096 / 16);
        assert!(m.len() <= 4096);
        m.set_cap(16);
        assert!(m.len() <= 16 && m.doorkeeper.limit() == 64, "{} entries", m.len());
    }

    /// A new entry in a slot an evicted entry left is reset in place ([`Fill::reset`]),
    /// in an unused slot made afresh; slots of a `CacheLine` map start cache lines.
    #[test]
    fn new_entries_reuse_evicted_slots_through_fill() {
        struct Counted(u32);
        impl Fill<(u32, u32)> for Counted {
            fn make(self) -> (u32, u32) {
                (self.0, 0)
            }
            fn reset(self, stale: &mut (u32, u32)) {
                *stale = (self.0, stale.1 + 1);
            }
        }
        let mut m: BoundedMap<u32, (u32, u32), CacheLine> = BoundedMap::new(8);
        for k in 0..8 {
            assert_eq!(*m.touch_or_insert_with(k, Counted(k)), (k, 0));
        }
        // A full map evicts the oldest entry; the new key takes its slot, reset.
        assert_eq!(*m.refresh_or_insert_with(100, Counted(100)), (100, 1));
        assert_eq!(m.get(&0), None);
        assert_eq!(m.touch(&7).copied(), Some((7, 0)));
        assert!(m.slots.iter().all(|s| std::ptr::from_ref(s).addr() % 64 == 0));
        assert_eq!(std::mem::size_of::<Slot<u32, (u32, u32), CacheLine>>(), 64);
        // Expiry frees slots: a new entry there is made afresh.
        m.retain(|_, _| false);
        assert_eq!(*m.touch_or_insert_with(5, Counted(5)), (5, 0));
    }

    /// A key evicted from a full map that comes back is admitted again (the doorkeeper
    /// recorded it): it outlives a key inserted with it that was never seen before, which
    /// waits in the nursery.
    #[test]
    fn a_returning_key_is_admitted_again() {
        let mut m = BoundedMap::<_, _>::new(64);
        let (returning, fresh) = (1_000_000u32, 2_000_000u32);
        m.touch_or_insert_with(returning, || 1);
        for k in 0..64 {
            m.touch_or_insert_with(k, || k);
        }
        assert!(m.get(&returning).is_none(), "evicted as the oldest");
        m.touch_or_insert_with(returning, || 2);
        m.touch_or_insert_with(fresh, || 3);
        assert!(m.find(&returning).is_some() && m.find(&fresh).is_none(), "admitted / nursed");
        for k in 100..170 {
            m.touch_or_insert_with(k, || k);
        }
        assert_eq!(m.get(&returning), Some(&2));
        assert!(m.get(&fresh).is_none(), "overwritten in the nursery");
    }

    /// Under a flood of one-off keys a filled map keeps them in its nursery: they never
    /// push out a recurring key, which comes back only after three tables' worth of
    /// them; a key first seen during the flood is moved into the map, value and all, by
    /// its next promoting call (a refresh leaves it in the nursery); and a one-off costs
    /// no hash-table insert (almost none enters the map).
    #[test]
    fn one_off_keys_stay_in_the_nursery_and_a_promoted_key_reaches_the_map() {
        let cap = 4096usize;
        let mut m = BoundedMap::<_, _>::new(cap);
        for k in 0..=cap as u32 {
            m.touch_or_insert_with(k, || k);
        }
        assert!(m.filled);
        let recurring = u32::MAX;
        m.touch_or_insert_with(recurring, || 7);
        assert!(m.find(&recurring).is_none() && m.find_nursed(&recurring).is_some(), "first seen: nursed");
        m.refresh_or_insert_with(recurring, || 8);
        assert!(m.find(&recurring).is_none(), "a refresh does not move it");
        assert_eq!(m.touch_or_insert_with(recurring, || 9), &7, "moved with its value");
        assert!(m.find(&recurring).is_some() && m.find_nursed(&recurring).is_none(), "in the map");
        let late = u32::MAX - 1;
        let flood = 1_000_000..1_000_000 + 40 * cap as u32;
        for k in flood.clone() {
            m.touch_or_insert_with(k, || k);
            if k as usize % (3 * cap) == 0 {
                assert_eq!(m.touch_or_insert_with(recurring, || 9), &7, "evicted by one-offs");
            }
            if k == flood.start + 20 * cap as u32 {
                m.touch_or_insert_with(late, || 1);
                m.touch_or_insert_with(k + 1, || 0); // one newcomer between its sightings
                assert_eq!(m.touch_or_insert_with(late, || 2), &1);
                assert!(m.find(&late).is_some(), "a second sighting brings it in");
            }
            assert!(m.len() <= cap);
        }
        assert_eq!(m.get(&late), Some(&1));
        let (flooded, admitted) = (flood.len(), flood.filter(|k| m.find(k).is_some()).count());
        assert!(admitted < flooded / 50, "{admitted} one-offs in the map (doorkeeper false positives)");
        assert!(m.evictions() >= 39 * cap as u64);
    }
}
