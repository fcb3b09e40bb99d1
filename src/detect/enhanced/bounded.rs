//! A hash map with a hard size cap and least-recently-touched eviction. Keys are
//! attacker-controlled (addresses, ports), so every map is randomly seeded: hashbrown's
//! default hasher (foldhash) draws a fresh random seed per map, so a remote sender cannot
//! predict bucket positions and force collisions — the reason these maps are keyed — at
//! a fraction of SipHash's cost. Eviction never depends on iteration order: entries carry
//! a unique touch stamp and the oldest are removed, so behaviour is deterministic.

use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use std::hash::{BuildHasher, Hash};

/// A randomly seeded hashbrown map (the plain map type the enhanced detectors use).
pub type KeyedMap<K, V> = HashMap<K, V, DefaultHashBuilder>;

pub fn keyed_map<K, V>() -> KeyedMap<K, V> {
    HashMap::with_hasher(DefaultHashBuilder::default())
}

struct Slot<K, V> {
    touched: u64,
    key: K,
    value: V,
}

/// Map capped at `cap` entries; inserting into a full map first drops the least
/// recently touched eighth (at least one entry), counted in [`BoundedMap::evictions`].
pub struct BoundedMap<K, V> {
    /// A raw table so a key is hashed once per call, even when a full map must evict
    /// before inserting it.
    table: HashTable<Slot<K, V>>,
    hasher: DefaultHashBuilder,
    cap: usize,
    clock: u64,
    evictions: u64,
    /// Touch stamps gathered by an eviction, kept so evictions do not allocate.
    stamps: Vec<u64>,
}

impl<K: Hash + Eq, V> BoundedMap<K, V> {
    pub fn new(cap: usize) -> Self {
        BoundedMap {
            table: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            cap: cap.max(1),
            clock: 0,
            evictions: 0,
            stamps: Vec::new(),
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
    pub fn evictions(&self) -> u64 {
        self.evictions
    }
    /// The entry for `key`, created with `make` if absent; marks it most recently used.
    pub fn touch_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        self.clock += 1;
        let clock = self.clock;
        let hash = self.hasher.hash_one(&key);
        // A bucket index, not a reference, so the miss path below may use the table.
        if let Some(index) = self.table.find_bucket_index(hash, |s| s.key == key) {
            let slot = self.table.get_bucket_mut(index).expect("bucket just found");
            slot.touched = clock;
            return &mut slot.value;
        }
        if self.table.len() >= self.cap {
            self.evict_oldest();
        }
        let hasher = &self.hasher;
        let slot = Slot { touched: clock, key, value: make() };
        &mut self.table.insert_unique(hash, slot, |s| hasher.hash_one(&s.key)).into_mut().value
    }
    /// The entry for `key` if present; marks it most recently used.
    pub fn touch(&mut self, key: &K) -> Option<&mut V> {
        self.clock += 1;
        let clock = self.clock;
        let hash = self.hasher.hash_one(key);
        self.table.find_mut(hash, |s| s.key == *key).map(|slot| {
            slot.touched = clock;
            &mut slot.value
        })
    }
    pub fn get(&self, key: &K) -> Option<&V> {
        let hash = self.hasher.hash_one(key);
        self.table.find(hash, |s| s.key == *key).map(|s| &s.value)
    }
    /// Keeps entries for which `keep` is true (expiry; not counted as evictions).
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.table.retain(|s| keep(&s.key, &mut s.value));
    }
    fn evict_oldest(&mut self) {
        let n = (self.cap / 8).max(1).min(self.table.len());
        if n == 0 {
            return;
        }
        self.stamps.clear();
        self.stamps.extend(self.table.iter().map(|s| s.touched));
        let (_, cutoff, _) = self.stamps.select_nth_unstable(n - 1);
        let cutoff = *cutoff;
        let before = self.table.len();
        self.table.retain(|s| s.touched > cutoff);
        self.evictions += (before - self.table.len()) as u64;
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
}
