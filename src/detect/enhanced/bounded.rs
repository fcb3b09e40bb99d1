//! A hash map with a hard size cap and least-recently-touched eviction. Keys are
//! attacker-controlled (addresses, ports), so every map is randomly seeded
//! ([`KeyedHasher`]). Eviction never depends on iteration order: entries carry a unique
//! touch stamp and the oldest are removed, so behaviour is deterministic.

use crate::net::KeyedHasher;
use hashbrown::HashTable;
use std::hash::{BuildHasher, Hash};

/// What the hash table holds: the key and the id of the entry's value and stamp. Kept
/// small on purpose: the table is probed on every event and resized as it fills (a
/// capped map that keeps evicting accumulates tombstones, which makes hashbrown grow it
/// well past its cap in buckets), so large values in the buckets would cost cache
/// misses, page faults and copies. Values never move once stored.
struct Entry<K> {
    key: K,
    id: u32,
}

/// Stamp of a free id: larger than every real stamp, so never among the oldest.
const FREE: u64 = u64::MAX;

/// Map capped at `cap` entries; inserting into a full map first drops the least
/// recently touched eighth (at least one entry), counted in [`BoundedMap::evictions`].
///
/// Values, touch stamps (unique, increasing) and key hashes live in dense arrays
/// indexed by a per-entry id; the hash table maps keys to ids. Finding the oldest
/// eighth reads the stamps (a few hundred KiB) instead of walking every entry, and the
/// evicted entries are then removed one by one through their stored hash.
pub struct BoundedMap<K, V> {
    /// A raw table so a key is hashed once per call, even when a full map must evict
    /// before inserting it.
    table: HashTable<Entry<K>>,
    hasher: KeyedHasher,
    cap: usize,
    clock: u64,
    evictions: u64,
    /// Value of each id (`None` for unused ids).
    values: Vec<Option<V>>,
    /// Touch stamp of each id (`FREE` for unused ids).
    stamps: Vec<u64>,
    /// Table hash of each id's key (meaningless for unused ids).
    hashes: Vec<u64>,
    /// Unused ids.
    free: Vec<u32>,
    /// Scratch copy of `stamps` for selecting the eviction cutoff (kept: no allocation).
    scratch: Vec<u64>,
}

impl<K: Hash + Eq, V> BoundedMap<K, V> {
    pub fn new(cap: usize) -> Self {
        BoundedMap {
            table: HashTable::new(),
            hasher: KeyedHasher::default(),
            cap: cap.max(1),
            clock: 0,
            evictions: 0,
            values: Vec::new(),
            stamps: Vec::new(),
            hashes: Vec::new(),
            free: Vec::new(),
            scratch: Vec::new(),
        }
    }
    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap.max(1);
        while self.table.len() > self.cap {
            self.evict_oldest();
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
    /// The entry for `key`, created with `make` if absent; marks it most recently used.
    pub fn touch_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        self.clock += 1;
        let clock = self.clock;
        let hash = self.hasher.hash_one(&key);
        let id = match self.table.find(hash, |e| e.key == key).map(|e| e.id) {
            Some(id) => id,
            None => {
                if self.table.len() >= self.cap {
                    self.evict_oldest();
                }
                let id = self.free.pop().unwrap_or_else(|| {
                    self.values.push(None);
                    self.stamps.push(FREE);
                    self.hashes.push(0);
                    u32::try_from(self.values.len() - 1).expect("bounded map ids fit in u32")
                });
                self.hashes[id as usize] = hash;
                self.values[id as usize] = Some(make());
                let hasher = &self.hasher;
                self.table.insert_unique(hash, Entry { key, id }, |e| hasher.hash_one(&e.key));
                id
            }
        };
        self.stamps[id as usize] = clock;
        self.values[id as usize].as_mut().expect("a mapped id has a value")
    }
    /// The entry for `key` if present; marks it most recently used.
    #[inline(always)]
    pub fn touch(&mut self, key: &K) -> Option<&mut V> {
        self.clock += 1;
        let hash = self.hasher.hash_one(key);
        let id = self.table.find(hash, |e| e.key == *key)?.id as usize;
        self.stamps[id] = self.clock;
        self.values[id].as_mut()
    }
    pub fn get(&self, key: &K) -> Option<&V> {
        let hash = self.hasher.hash_one(key);
        let id = self.table.find(hash, |e| e.key == *key)?.id as usize;
        self.values[id].as_ref()
    }
    /// Keeps entries for which `keep` is true (expiry; not counted as evictions).
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        let (values, stamps, free) = (&mut self.values, &mut self.stamps, &mut self.free);
        self.table.retain(|e| {
            let id = e.id as usize;
            let kept = keep(&e.key, values[id].as_mut().expect("a mapped id has a value"));
            if !kept {
                values[id] = None;
                stamps[id] = FREE;
                free.push(e.id);
            }
            kept
        });
    }
    fn evict_oldest(&mut self) {
        let n = (self.cap / 8).max(1).min(self.table.len());
        if n == 0 {
            return;
        }
        // The n smallest stamps are exactly the n least recently touched entries (stamps
        // are unique; free ids carry FREE, above every live stamp, and n <= live entries).
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.stamps);
        let (_, cutoff, _) = self.scratch.select_nth_unstable(n - 1);
        let cutoff = *cutoff;
        for id in 0..self.stamps.len() {
            if self.stamps[id] > cutoff {
                continue;
            }
            match self.table.find_entry(self.hashes[id], |e| e.id as usize == id) {
                Ok(entry) => {
                    entry.remove();
                }
                Err(_) => unreachable!("every stamped id has an entry"),
            }
            self.values[id] = None;
            self.stamps[id] = FREE;
            self.free.push(id as u32);
            self.evictions += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_touched_and_counts() {
        let mut m = BoundedMap::new(8);
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

    /// The eviction choice must match the straightforward definition: a full map drops
    /// the cap/8 entries with the smallest touch stamps. Checked against a naive model
    /// over a random mix of inserts, touches, expiry and cap changes.
    #[test]
    fn evicts_exactly_like_a_naive_stamp_model() {
        use std::collections::BTreeMap;
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |m: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % m
        };
        let mut m: BoundedMap<u32, u32> = BoundedMap::new(64);
        let (mut cap, mut clock, mut evictions) = (64usize, 0u64, 0u64);
        let mut model: BTreeMap<u32, (u64, u32)> = BTreeMap::new();
        let evict = |model: &mut BTreeMap<u32, (u64, u32)>, cap: usize, evictions: &mut u64| {
            let n = (cap / 8).max(1).min(model.len());
            let mut stamps: Vec<u64> = model.values().map(|v| v.0).collect();
            stamps.sort();
            let cutoff = stamps[n - 1];
            model.retain(|_, v| v.0 > cutoff);
            *evictions += n as u64;
        };
        for step in 0..200_000u32 {
            let key = next(300) as u32;
            match next(100) {
                0..=59 => {
                    clock += 1;
                    if model.len() >= cap && !model.contains_key(&key) {
                        evict(&mut model, cap, &mut evictions);
                    }
                    model.entry(key).or_insert((clock, step)).0 = clock;
                    assert_eq!(*m.touch_or_insert_with(key, || step), model[&key].1);
                }
                60..=89 => {
                    clock += 1;
                    if let Some(v) = model.get_mut(&key) {
                        v.0 = clock;
                    }
                    assert_eq!(m.touch(&key).copied(), model.get(&key).map(|v| v.1));
                }
                90..=97 => {
                    let modulus = 2 + next(20) as u32;
                    model.retain(|k, _| k % modulus != 0);
                    m.retain(|k, _| k % modulus != 0);
                }
                _ => {
                    cap = 1 + next(120) as usize;
                    while model.len() > cap {
                        evict(&mut model, cap, &mut evictions);
                    }
                    m.set_cap(cap);
                }
            }
            assert_eq!((m.len(), m.evictions()), (model.len(), evictions), "step {step}");
            if step % 1000 == 0 {
                for k in 0..300 {
                    assert_eq!(m.get(&k), model.get(&k).map(|v| &v.1), "step {step} key {k}");
                }
            }
        }
    }
}
