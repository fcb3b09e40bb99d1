//! A hash map with a hard size cap and a segmented LRU eviction that one-off keys
//! cannot thrash. Keys are attacker-controlled (addresses, ports), so every map is
//! randomly seeded ([`KeyedHasher`]). Eviction never depends on the table's iteration
//! order: entries carry a unique touch stamp, the oldest are removed, and the
//! doorkeeper hashes keys with a fixed hash, so behaviour is deterministic.
//!
//! Two segments (SLRU): a new key enters *probation*; a key seen again (a promoting
//! touch) moves to *protected*, which holds at most 80 % of the cap (its oldest are
//! demoted back to probation). A full map evicts the oldest probation entries first,
//! so a flood of sources seen once cannot push out a slow scanner or a beacon that
//! came back. A key about to be evicted from probation that was evicted before (the
//! [`Doorkeeper`], consulted only then, never per new key) gets a second chance once.
//!
//! Eviction drops about an eighth of the cap per pass. Up to 4 096 entries the cutoffs
//! are exact; in larger tables they are read from 1 024 sampled stamps (a fixed
//! pseudo-random sequence), so a pass costs one sequential walk of the stamps.

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

/// A slot alignment of one cache line (64 bytes): `BoundedMap<K, V, CacheLine>`.
#[derive(Clone, Copy)]
#[repr(align(64))]
pub struct CacheLine;

/// The value of a new entry: made afresh in an unused slot, or reset in the slot an
/// evicted entry left (its old value is still there, see `evict_pass`). A closure makes
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
/// Stamp bits: `clock << 2 | PROTECTED | CHANCED`.
const PROTECTED: u64 = 2;
/// A probation entry that already had its second chance.
const CHANCED: u64 = 1;
/// Tables with more live entries pick eviction cutoffs from samples.
const EXACT_UP_TO: usize = 4096;
const SAMPLES: usize = 1024;
/// Stamps a pass classifies before visiting the slots of those leaving.
const WALK_CHUNK: usize = 64;

/// Map capped at `cap` entries; inserting into a full map first runs an eviction pass
/// (about `cap / 8` entries, at least one, counted in [`BoundedMap::evictions`]).
///
/// Keys with their values, touch stamps (unique, increasing; the low bits hold the
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
    /// Keys evicted lately (fixed hashes), for second chances.
    doorkeeper: Doorkeeper,
    /// State of the sampling sequence (xorshift; fixed seed).
    rng: u64,
    /// Scratch buffers of a pass (kept: no allocation): probation and protected stamps,
    /// entries leaving or getting a second chance, evicted keys' doorkeeper slots, second
    /// chances (stamp, id).
    probation: Vec<u64>,
    protected: Vec<u64>,
    candidates: Vec<(u64, u32)>,
    evicted: Vec<(usize, u64)>,
    chances: Vec<(u64, u32)>,
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
            doorkeeper: Doorkeeper::new(2 * cap),
            rng: 0x2545_f491_4f6c_dd1d,
            probation: Vec::new(),
            protected: Vec::new(),
            candidates: Vec::new(),
            evicted: Vec::new(),
            chances: Vec::new(),
        }
    }
    /// A new cap (a reload): the doorkeeper is resized with it (starting afresh), and a
    /// map above the new cap evicts down to it.
    pub fn set_cap(&mut self, cap: usize) {
        let cap = cap.max(1);
        if cap != self.cap {
            self.doorkeeper = Doorkeeper::new(2 * cap);
        }
        self.cap = cap;
        while self.table.len() > self.cap {
            self.evict_pass();
        }
    }
    pub fn len(&self) -> usize {
        self.table.len()
    }
    pub fn cap(&self) -> usize {
        self.cap
    }
    pub fn evictions(&self) -> u64 {
        self.evictions
    }
    /// The entry for `key`, created with `make` if absent (in probation); marks it most
    /// recently used, and an entry that was there is promoted (seen again).
    #[inline(always)]
    pub fn touch_or_insert_with(&mut self, key: K, make: impl Fill<V>) -> &mut V {
        self.entry_with(key, make, true)
    }
    /// Like [`BoundedMap::touch_or_insert_with`] without promoting an entry that was
    /// there: for events that do not show the key again (the end of what its last
    /// promoting event started).
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
                let segment = if promote { PROTECTED } else { old & (PROTECTED | CHANCED) };
                self.stamps[id as usize] = self.clock << 2 | segment;
                id
            }
            None => {
                let id = self.insert_new(hash, key, make);
                self.stamps[id as usize] = self.clock << 2;
                id
            }
        };
        &mut self.slots[id as usize].as_mut().expect("a mapped id has a slot").value
    }
    #[inline(always)]
    fn insert_new(&mut self, hash: u64, key: K, make: impl Fill<V>) -> u32 {
        while self.table.len() >= self.cap {
            self.evict_pass();
        }
        let id = self.free.pop().unwrap_or_else(|| {
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
        });
        self.hashes[id as usize] = hash;
        match &mut self.slots[id as usize] {
            // An evicted entry left in place (see `evict_pass`) is overwritten.
            Some(stale) => {
                stale.key = key;
                make.reset(&mut stale.value);
            }
            slot => *slot = Some(Slot { key, value: make.make(), align: [] }),
        }
        let hashes = &self.hashes;
        self.table.insert_unique(hash, id, |&id| hashes[id as usize]);
        id
    }
    /// The entry for `key` if present; marks it most recently used (not a promotion).
    #[inline(always)]
    pub fn touch(&mut self, key: &K) -> Option<&mut V> {
        self.clock += 1;
        let id = self.find(key)?;
        self.stamps[id] = self.clock << 2 | self.stamps[id] & (PROTECTED | CHANCED);
        self.slots[id].as_mut().map(|s| &mut s.value)
    }
    pub fn get(&self, key: &K) -> Option<&V> {
        self.slots[self.find(key)?].as_ref().map(|s| &s.value)
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
        let (slots, stamps, freed) = (&mut self.slots, &mut self.stamps, &mut self.chances);
        freed.clear();
        self.table.retain(|&mut id| {
            let slot = slots[id as usize].as_mut().expect("a mapped id has a slot");
            let kept = keep(&slot.key, &mut slot.value);
            if !kept {
                slots[id as usize] = None;
                stamps[id as usize] = FREE;
                freed.push((0, id));
            }
            kept
        });
        freed.sort_unstable();
        self.free.extend(freed.iter().rev().map(|&(_, id)| id));
    }
    /// Next id of the sampling sequence, below `n`.
    fn sample(&mut self, n: usize) -> usize {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        ((u128::from(self.rng) * n as u128) >> 64) as usize
    }
    /// One eviction pass: about `cap / 8` entries leave, the oldest probation ones
    /// first (those the doorkeeper knows get a second chance instead), then, if
    /// probation is short, the oldest protected ones; protected entries beyond its
    /// share are demoted to probation.
    fn evict_pass(&mut self) {
        let len = self.table.len();
        let n = (self.cap / 8).max(1).min(len);
        if n == 0 {
            return;
        }
        self.doorkeeper.age();
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
        self.evicted.clear();
        self.chances.clear();
        // A tight walk of the stamps classifies them (one compare skips those above
        // every cutoff, FREE included): demotions are done in place, and the entries to
        // evict are set aside with their stamps (marked FREE meanwhile) a chunk at a time,
        // so the list stays in L1 and the walk does no bounds checks or calls.
        let top = probation_cut.max(evict_cut).max(demote_cut);
        // Second chances keep their order; their clocks span `low..=high`.
        let (mut low, mut high) = (u64::MAX, 0);
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
            for &(s, id) in &self.candidates {
                let key = &self.slots[id as usize].as_ref().expect("a stamped id has a slot").key;
                // The doorkeeper's word and bits, for the check and the insert (the
                // filter is allocated by `age`).
                let fixed = self.doorkeeper.slot(fixed_hash(key));
                if s & (PROTECTED | CHANCED) == 0 && self.doorkeeper.contains_at(fixed) {
                    self.chances.push((s, id));
                    (low, high) = (low.min(s >> 2), high.max(s >> 2));
                    continue;
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
                self.evicted.push(fixed);
                self.free.push(id);
                self.evictions += 1;
            }
        }
        for &fixed in &self.evicted {
            self.doorkeeper.insert_at(fixed);
        }
        // Second chances become the newest probation entries, in their previous order:
        // their clocks move past the map's by the same offset (no sort; only the order
        // of stamps matters, and they stay unique and below every later one).
        if !self.chances.is_empty() {
            let shift = self.clock + 1 - low;
            for &(s, id) in &self.chances {
                self.stamps[id as usize] = ((s >> 2) + shift) << 2 | CHANCED;
            }
            self.clock = high + shift;
        }
    }
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

    /// The eviction choice must match the straightforward definition of a pass (exact
    /// cutoffs in small tables): the oldest cap/8 probation entries leave (the oldest
    /// protected ones when probation is short), those the doorkeeper knows get a second
    /// chance instead, protected entries beyond 80 % of the cap are demoted. Checked
    /// against a naive model over a random mix of promoting and plain inserts, touches,
    /// expiry and cap changes.
    #[test]
    fn evicts_exactly_like_a_naive_segmented_model() {
        use std::collections::BTreeMap;
        type Model = BTreeMap<u32, (u64, u32)>;
        struct Naive {
            map: Model,
            clock: u64,
            evictions: u64,
            doorkeeper: Doorkeeper,
        }
        impl Naive {
            fn pass(&mut self, cap: usize) {
                let n = (cap / 8).max(1).min(self.map.len());
                self.doorkeeper.age();
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
                let (mut chances, mut evicted) = (Vec::new(), Vec::new());
                for (k, v) in self.map.iter_mut() {
                    let s = v.0;
                    if s & PROTECTED == 0 {
                        if s <= probation_cut {
                            if s & CHANCED == 0 && self.doorkeeper.contains(fixed_hash(k)) {
                                chances.push((s, *k));
                            } else {
                                evicted.push(*k);
                            }
                        }
                    } else if s <= evict_cut {
                        evicted.push(*k);
                    } else if s <= demote_cut {
                        v.0 = s & !PROTECTED;
                    }
                }
                for k in evicted {
                    self.map.remove(&k);
                    self.doorkeeper.insert(fixed_hash(&k));
                    self.evictions += 1;
                }
                chances.sort();
                for (_, k) in chances {
                    self.clock += 1;
                    self.map.get_mut(&k).expect("chanced key").0 = self.clock << 2 | CHANCED;
                }
            }
            fn entry(&mut self, key: u32, value: u32, promote: bool, cap: usize) -> u32 {
                self.clock += 1;
                match self.map.get_mut(&key) {
                    Some(v) => {
                        let segment = if promote { PROTECTED } else { v.0 & (PROTECTED | CHANCED) };
                        v.0 = self.clock << 2 | segment;
                    }
                    None => {
                        while self.map.len() >= cap {
                            self.pass(cap);
                        }
                        self.map.insert(key, (self.clock << 2, value));
                    }
                }
                self.map[&key].1
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
        let mut model = Naive { map: Model::new(), clock: 0, evictions: 0, doorkeeper: Doorkeeper::new(128) };
        let (mut chances, mut demotions) = (0, 0);
        for step in 0..200_000u32 {
            let key = next(300) as u32;
            match next(100) {
                0..=29 => assert_eq!(*m.touch_or_insert_with(key, || step), model.entry(key, step, true, cap)),
                30..=59 => assert_eq!(*m.refresh_or_insert_with(key, || step), model.entry(key, step, false, cap)),
                60..=89 => {
                    model.clock += 1;
                    let clock = model.clock;
                    if let Some(v) = model.map.get_mut(&key) {
                        v.0 = clock << 2 | v.0 & (PROTECTED | CHANCED);
                    }
                    assert_eq!(m.touch(&key).copied(), model.map.get(&key).map(|v| v.1));
                }
                90..=97 => {
                    let modulus = 2 + next(20) as u32;
                    model.map.retain(|k, _| k % modulus != 0);
                    m.retain(|k, _| k % modulus != 0);
                }
                _ => {
                    let new_cap = 1 + next(120) as usize;
                    if new_cap != cap {
                        model.doorkeeper = Doorkeeper::new(2 * new_cap); // resized with the cap
                    }
                    cap = new_cap;
                    while model.map.len() > cap {
                        model.pass(cap);
                    }
                    m.set_cap(cap);
                }
            }
            assert_eq!((m.len(), m.evictions()), (model.map.len(), model.evictions), "step {step}");
            chances += model.map.values().filter(|v| v.0 & CHANCED != 0).count();
            demotions += model.map.values().filter(|v| v.0 & (PROTECTED | CHANCED) == 0).count();
            if step % 1000 == 0 {
                for k in 0..300 {
                    assert_eq!(m.get(&k), model.map.get(&k).map(|v| &v.1), "step {step} key {k}");
                }
            }
        }
        // The model exercised second chances and both segments.
        assert!(chances > 1000 && demotions > 1000, "{chances} {demotions}");
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

    /// A reload's new cap resizes the doorkeeper with it (2 × cap keys): a map grown
    /// from 64 to 4 096 entries remembers every key its passes evicted, not only the last
    /// 128; an unchanged cap keeps what the doorkeeper knows.
    #[test]
    fn set_cap_resizes_the_doorkeeper() {
        let mut m = BoundedMap::<_, _>::new(64);
        assert_eq!(m.doorkeeper.limit(), 128);
        for k in 0..100u32 {
            m.touch_or_insert_with(k, || k);
        }
        let evicted = fixed_hash(&0u32);
        assert!(m.doorkeeper.contains(evicted));
        m.set_cap(64);
        assert!(m.doorkeeper.contains(evicted), "same cap: the doorkeeper is kept");
        m.set_cap(4096);
        assert_eq!((m.cap(), m.doorkeeper.limit()), (4096, 8192));
        for k in 100..7_000u32 {
            m.touch_or_insert_with(k, || k);
        }
        // Every key evicted since is remembered (fewer than 8 192 evictions: no ageing);
        // the old doorkeeper would have started afresh every 128.
        let evicted: Vec<u32> = (100..7_000).filter(|k| m.get(k).is_none()).collect();
        assert!(evicted.len() > 2_000, "{} evicted", evicted.len());
        assert!(evicted.iter().all(|k| m.doorkeeper.contains(fixed_hash(k))));
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

    /// A key evicted once that comes back gets a second chance (the doorkeeper): it
    /// outlives a key inserted with it that was never seen before.
    #[test]
    fn a_returning_key_gets_a_second_chance() {
        let mut m = BoundedMap::<_, _>::new(64);
        let (returning, fresh) = (1_000_000u32, 2_000_000u32);
        m.touch_or_insert_with(returning, || 1);
        for k in 0..64 {
            m.touch_or_insert_with(k, || k);
        }
        assert!(m.get(&returning).is_none(), "evicted as the oldest");
        m.touch_or_insert_with(returning, || 2);
        m.touch_or_insert_with(fresh, || 3);
        for k in 100..170 {
            m.touch_or_insert_with(k, || k);
        }
        assert_eq!(m.get(&returning), Some(&2));
        assert!(m.get(&fresh).is_none());
    }
}
