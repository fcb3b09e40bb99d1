//! A hash map with a hard size cap and least-recently-touched eviction. Keys are
//! attacker-controlled (addresses, ports), so the hasher is the randomly keyed
//! `RandomState`. Eviction never depends on iteration order: entries carry a unique
//! touch stamp and the oldest are removed, so behaviour is deterministic.

use hashbrown::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::Hash;

/// A keyed-hasher hashbrown map (the only map type the enhanced detectors use).
pub type KeyedMap<K, V> = HashMap<K, V, RandomState>;

pub fn keyed_map<K, V>() -> KeyedMap<K, V> {
    HashMap::with_hasher(RandomState::new())
}

struct Slot<V> {
    touched: u64,
    value: V,
}

/// Map capped at `cap` entries; inserting into a full map first drops the least
/// recently touched eighth (at least one entry), counted in [`BoundedMap::evictions`].
pub struct BoundedMap<K, V> {
    map: KeyedMap<K, Slot<V>>,
    cap: usize,
    clock: u64,
    evictions: u64,
}

impl<K: Hash + Eq, V> BoundedMap<K, V> {
    pub fn new(cap: usize) -> Self {
        BoundedMap { map: keyed_map(), cap: cap.max(1), clock: 0, evictions: 0 }
    }
    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap.max(1);
        while self.map.len() > self.cap {
            self.evict_oldest();
        }
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn evictions(&self) -> u64 {
        self.evictions
    }
    /// The entry for `key`, created with `make` if absent; marks it most recently used.
    pub fn touch_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        self.clock += 1;
        if self.map.len() >= self.cap && !self.map.contains_key(&key) {
            self.evict_oldest();
        }
        let clock = self.clock;
        let slot = self.map.entry(key).or_insert_with(|| Slot { touched: clock, value: make() });
        slot.touched = clock;
        &mut slot.value
    }
    /// The entry for `key` if present; marks it most recently used.
    pub fn touch(&mut self, key: &K) -> Option<&mut V> {
        self.clock += 1;
        let clock = self.clock;
        self.map.get_mut(key).map(|slot| {
            slot.touched = clock;
            &mut slot.value
        })
    }
    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key).map(|s| &s.value)
    }
    /// Keeps entries for which `keep` is true (expiry; not counted as evictions).
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.map.retain(|k, s| keep(k, &mut s.value));
    }
    fn evict_oldest(&mut self) {
        let n = (self.cap / 8).max(1).min(self.map.len());
        if n == 0 {
            return;
        }
        let mut stamps: Vec<u64> = self.map.values().map(|s| s.touched).collect();
        let (_, cutoff, _) = stamps.select_nth_unstable(n - 1);
        let cutoff = *cutoff;
        let before = self.map.len();
        self.map.retain(|_, s| s.touched > cutoff);
        self.evictions += (before - self.map.len()) as u64;
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
