//! A map that keeps its first few entries inline and moves to a keyed hash map only
//! when it outgrows them. Most sources the scan detector tracks contact one to three
//! targets before they are evicted or expire; keeping those inline saves a heap
//! allocation, a free and a cache miss per source. Lookup order never shows: callers
//! only count, look up and sort.
//!
//! A map cleared while on the heap can hand its hash map to a [`Spare`], and the next
//! map to spill take it from there: on a busy network thousands of sources a minute
//! outgrow their inline entries and are then evicted, and recycling their small hash
//! maps spares an allocation, a free and (for a map that had grown) a rehash each.

use crate::net::{KeyedHasher, KeyedMap};
use hashbrown::hash_map::Entry;
use std::hash::Hash;

/// What [`SmallMap::find_or_insert`] found or did.
pub enum Found<'a, V> {
    /// The key's value.
    Old(&'a mut V),
    /// The key was absent; it now has the value made for it.
    New,
    /// The key was absent and no value was made for it.
    Full,
}

/// Hash maps at most this large (capacity) are kept by a [`Spare`]; larger ones (a
/// scanner's thousand targets) are freed, so the spare maps hold a few hundred KiB at most.
const SPARE_MAX_CAPACITY: usize = 16;
/// Hash maps a [`Spare`] keeps at most.
const SPARE_MAPS: usize = 256;

/// Emptied hash maps of cleared [`SmallMap`]s, for the next ones that spill (a stack:
/// the last map put back, still warm in cache, is the next taken).
pub struct Spare<K, V> {
    maps: Vec<KeyedMap<K, V>>,
}

impl<K, V> Spare<K, V> {
    pub const fn new() -> Self {
        Spare { maps: Vec::new() }
    }

    /// Keeps `map` (emptied) for a later spill, unless it is large or enough are kept.
    pub fn put(&mut self, mut map: KeyedMap<K, V>) {
        if self.maps.len() < SPARE_MAPS && map.capacity() <= SPARE_MAX_CAPACITY {
            map.clear();
            self.maps.push(map);
        }
    }

    /// An empty hash map: a kept one, else a new one with room for `room` entries.
    pub fn take(&mut self, room: usize) -> KeyedMap<K, V> {
        self.maps.pop().unwrap_or_else(|| KeyedMap::with_capacity_and_hasher(room, KeyedHasher::default()))
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.maps.len()
    }
}

/// `repr(u8)` puts the tag and `len` (read by every lookup) in the first bytes, before
/// the items; Rust's own layout puts `len` after the items, a cache line away from the
/// first entry in a map of three 56-byte entries.
#[repr(u8)]
pub enum SmallMap<K, V, const N: usize> {
    /// `items[..len]` are all `Some`; the rest are never read (`None`, or entries left
    /// by [`SmallMap::clear`]), so clearing writes only `len` (`N` is at most 255).
    Inline {
        len: u8,
        items: [Option<(K, V)>; N],
    },
    Heap(KeyedMap<K, V>),
}

impl<K: Copy + Eq + Hash, V: Copy, const N: usize> SmallMap<K, V, N> {
    pub fn new() -> Self {
        const { assert!(N <= u8::MAX as usize, "inline length is a u8") };
        SmallMap::Inline { len: 0, items: [None; N] }
    }

    #[inline]
    pub fn len(&self) -> usize {
        match self {
            SmallMap::Inline { len, .. } => usize::from(*len),
            SmallMap::Heap(m) => m.len(),
        }
    }

    #[cfg(test)]
    pub fn get(&self, key: &K) -> Option<&V> {
        match self {
            SmallMap::Inline { len, items } => {
                items[..usize::from(*len)].iter().flatten().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            SmallMap::Heap(m) => m.get(key),
        }
    }

    #[cfg(test)]
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        match self {
            SmallMap::Inline { len, items } => {
                items[..usize::from(*len)].iter_mut().flatten().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            SmallMap::Heap(m) => m.get_mut(key),
        }
    }

    /// The value of `key` ([`Found::Old`]), or else a new entry for it with the value
    /// `make` gives, passed the current length ([`Found::New`]; [`Found::Full`] when it
    /// gives none). On the heap this is one hash-map lookup where a lookup and then an
    /// insert would hash and probe twice. A spill moves the entries to the empty hash map
    /// `fresh` gives, passed the room it should have.
    #[inline]
    pub fn find_or_insert(
        &mut self,
        key: K,
        make: impl FnOnce(usize) -> Option<V>,
        fresh: impl FnOnce(usize) -> KeyedMap<K, V>,
    ) -> Found<'_, V> {
        let len = self.len();
        let inline_at = match &*self {
            SmallMap::Inline { items, .. } => {
                items[..len].iter().position(|e| e.as_ref().is_some_and(|(k, _)| *k == key))
            }
            SmallMap::Heap(_) => None,
        };
        match (self, inline_at) {
            (SmallMap::Heap(m), _) => match m.entry(key) {
                Entry::Occupied(e) => Found::Old(e.into_mut()),
                Entry::Vacant(e) => match make(len) {
                    Some(v) => {
                        e.insert(v);
                        Found::New
                    }
                    None => Found::Full,
                },
            },
            (SmallMap::Inline { items, .. }, Some(i)) => {
                Found::Old(&mut items[i].as_mut().expect("inline entries below len are set").1)
            }
            (SmallMap::Inline { len: n, items }, None) if len < N => match make(len) {
                Some(v) => {
                    items[len] = Some((key, v));
                    *n += 1;
                    Found::New
                }
                None => Found::Full,
            },
            (map, None) => match make(len) {
                Some(v) => {
                    map.insert_new(key, v, fresh);
                    Found::New
                }
                None => Found::Full,
            },
        }
    }

    /// Inserts `key`, which the caller knows is absent (a spill as in
    /// [`SmallMap::find_or_insert`]).
    #[inline]
    pub fn insert_new(&mut self, key: K, value: V, fresh: impl FnOnce(usize) -> KeyedMap<K, V>) {
        match self {
            SmallMap::Inline { len, items } if usize::from(*len) < N => {
                items[usize::from(*len)] = Some((key, value));
                *len += 1;
            }
            SmallMap::Inline { .. } => {
                self.spill(fresh);
                if let SmallMap::Heap(m) = self {
                    m.insert(key, value);
                }
            }
            SmallMap::Heap(m) => {
                m.insert(key, value);
            }
        }
    }

    /// Removes every entry: inline, only the length is written (the old entries stay,
    /// unread, where the next inserts overwrite them); a hash map is handed to `put`.
    #[inline]
    pub fn clear(&mut self, put: impl FnOnce(KeyedMap<K, V>)) {
        match self {
            SmallMap::Inline { len, .. } => *len = 0,
            SmallMap::Heap(_) => self.clear_heap(put),
        }
    }

    /// [`SmallMap::clear`] of a map on the heap (out of line: most maps are inline).
    #[cold]
    #[inline(never)]
    fn clear_heap(&mut self, put: impl FnOnce(KeyedMap<K, V>)) {
        if let SmallMap::Heap(m) = std::mem::replace(self, SmallMap::new()) {
            put(m);
        }
    }

    /// Whether the entries are still kept inline (no hash map yet).
    #[inline]
    pub fn is_inline(&self) -> bool {
        matches!(self, SmallMap::Inline { .. })
    }

    /// Moves full inline entries to the empty hash map `fresh` gives, and returns it.
    #[cold]
    #[inline(never)]
    fn spill(&mut self, fresh: impl FnOnce(usize) -> KeyedMap<K, V>) {
        if let SmallMap::Inline { len, items } = self {
            let mut m = fresh(2 * N);
            m.extend(items[..usize::from(*len)].iter().flatten().copied());
            *self = SmallMap::Heap(m);
        }
    }

    #[cfg(test)]
    pub fn remove(&mut self, key: &K) {
        match self {
            SmallMap::Inline { len, items } => {
                if let Some(i) = items[..usize::from(*len)].iter().position(|e| e.is_some_and(|(k, _)| k == *key)) {
                    *len -= 1;
                    items.swap(i, usize::from(*len));
                    items[usize::from(*len)] = None;
                }
            }
            SmallMap::Heap(m) => {
                m.remove(key);
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        let (inline, heap) = match self {
            SmallMap::Inline { len, items } => {
                (Some(items[..usize::from(*len)].iter().flatten().map(|(k, v)| (k, v))), None)
            }
            SmallMap::Heap(m) => (None, Some(m.iter())),
        };
        inline.into_iter().flatten().chain(heap.into_iter().flatten())
    }

    /// Removes the entries for which `keep` is false, passing each removed one to `removed`.
    pub fn retain_with(&mut self, mut keep: impl FnMut(&K, &V) -> bool, mut removed: impl FnMut(K, V)) {
        match self {
            SmallMap::Inline { len, items } => {
                let mut i = 0;
                while i < usize::from(*len) {
                    let (k, v) = items[i].expect("inline entries below len are set");
                    if keep(&k, &v) {
                        i += 1;
                    } else {
                        *len -= 1;
                        items.swap(i, usize::from(*len));
                        items[usize::from(*len)] = None;
                        removed(k, v);
                    }
                }
            }
            SmallMap::Heap(m) => m.retain(|k, v| {
                let kept = keep(k, v);
                if !kept {
                    removed(*k, *v);
                }
                kept
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_map_inline_and_after_spilling() {
        let mut spare = Spare::new();
        let mut m: SmallMap<u32, u32, 2> = SmallMap::new();
        m.insert_new(1, 10, |room| spare.take(room));
        m.insert_new(2, 20, |room| spare.take(room));
        assert!(matches!(m, SmallMap::Inline { len: 2, .. }));
        assert_eq!(m.get(&2), Some(&20));
        *m.get_mut(&1).unwrap() += 1;
        assert_eq!(m.get(&1), Some(&11));
        m.remove(&1);
        assert_eq!((m.len(), m.get(&1), m.get(&2)), (1, None, Some(&20)));
        m.insert_new(3, 30, |room| spare.take(room));
        m.insert_new(4, 40, |room| spare.take(room));
        assert!(matches!(m, SmallMap::Heap(_)), "a third entry spills to the heap");
        let mut all: Vec<(u32, u32)> = m.iter().map(|(k, v)| (*k, *v)).collect();
        all.sort();
        assert_eq!(all, vec![(2, 20), (3, 30), (4, 40)]);
        let mut gone = Vec::new();
        m.retain_with(|k, _| *k != 3, |k, v| gone.push((k, v)));
        assert_eq!((m.len(), gone), (2, vec![(3, 30)]));
        let mut small: SmallMap<u32, u32, 4> = SmallMap::new();
        for k in 0..4 {
            small.insert_new(k, k, |room| spare.take(room));
        }
        let mut gone = Vec::new();
        small.retain_with(|k, _| k % 2 == 1, |k, _| gone.push(k));
        gone.sort();
        assert_eq!((small.len(), gone), (2, vec![0, 2]));
        assert!(small.get(&1).is_some() && small.get(&3).is_some() && small.get(&0).is_none());
        // Cleared inline, the old entries are never seen again; cleared after a spill,
        // it is inline again and its hash map, emptied, is the next spill's.
        small.clear(|m| spare.put(m));
        assert_eq!((small.len(), small.iter().count(), small.get(&1), spare.len()), (0, 0, None, 0));
        m.clear(|m| spare.put(m));
        assert!(m.is_inline() && m.len() == 0 && m.iter().next().is_none() && spare.len() == 1);
        small.insert_new(9, 90, |room| spare.take(room));
        small.insert_new(8, 80, |room| spare.take(room));
        small.insert_new(7, 70, |room| spare.take(room));
        small.insert_new(6, 60, |room| spare.take(room));
        small.insert_new(5, 50, |room| spare.take(room));
        let mut all: Vec<u32> = small.iter().map(|(k, _)| *k).collect();
        all.sort();
        assert_eq!(all, vec![5, 6, 7, 8, 9], "a spill takes only the live entries");
        assert_eq!(spare.len(), 0, "the spill took the spare map");
        small.clear(|m| spare.put(m));
        assert!(small.is_inline() && small.len() == 0 && spare.len() == 1);
        // A map that grew large is freed, not kept.
        for k in 0..1000 {
            small.insert_new(k, k, |room| spare.take(room));
        }
        small.clear(|m| spare.put(m));
        assert_eq!((small.len(), spare.len()), (0, 0));
    }

    #[test]
    fn find_or_insert_finds_inserts_or_declines_inline_and_on_the_heap() {
        let mut spare = Spare::new();
        let mut m: SmallMap<u32, u32, 2> = SmallMap::new();
        let upto = |cap| move |len| (len < cap).then_some(0);
        for round in 0..2 {
            // Inline in the first round (two keys), on the heap in the second (five).
            let keys: &[u32] = if round == 0 { &[1, 2] } else { &[1, 2, 3, 4, 5] };
            for &k in keys {
                assert!(matches!(m.find_or_insert(k, upto(5), |room| spare.take(room)), Found::New | Found::Old(_)));
            }
            match m.find_or_insert(1, upto(5), |room| spare.take(room)) {
                Found::Old(v) => *v += 10,
                _ => panic!("key 1 is there"),
            }
            assert!(matches!(m.find_or_insert(9, upto(keys.len()), |room| spare.take(room)), Found::Full));
            assert_eq!(
                (m.is_inline(), m.len(), m.get(&1), m.get(&9)),
                (round == 0, keys.len(), Some(&(10 * (round + 1))), None)
            );
        }
    }
}
