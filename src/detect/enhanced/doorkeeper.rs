//! The doorkeeper of [`super::bounded::BoundedMap`]: a blocked Bloom filter of the keys
//! the map evicted lately, consulted only when a key is about to be evicted from the
//! probation segment (a key evicted before that came back gets a second chance). It is
//! never consulted per new key, so a flood of one-off keys costs one filter insert per
//! eviction and nothing per event.
//!
//! Keys are hashed with a fixed multiply-rotate hash ([`FixedHasher`]), not the maps'
//! random seed: which key gets a second chance (false positives included) must be the
//! same on every run, or replay output under table overflow would not be deterministic.
//! Forcing false positives only buys a key a second chance, never an alert.

use std::hash::{Hash, Hasher};

/// Multiply-rotate hash of a key's words, finished with a folded multiply so every
/// output bit depends on every input bit.
#[derive(Clone, Copy, Default)]
pub struct FixedHasher(u64);

const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for FixedHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    #[inline]
    fn write_u8(&mut self, x: u8) {
        self.write_u64(u64::from(x));
    }
    #[inline]
    fn write_u16(&mut self, x: u16) {
        self.write_u64(u64::from(x));
    }
    #[inline]
    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }
    #[inline]
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0 ^ x).wrapping_mul(K).rotate_left(29);
    }
    #[inline]
    fn write_u128(&mut self, x: u128) {
        self.write_u64(x as u64);
        self.write_u64((x >> 64) as u64);
    }
    #[inline]
    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        let m = u128::from(self.0 ^ 0x2d35_8dcc_aa6c_78a5) * u128::from(K);
        (m as u64) ^ (m >> 64) as u64
    }
}

/// The fixed hash of a key (same on every run and every machine of one endianness).
pub fn fixed_hash<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut h = FixedHasher::default();
    key.hash(&mut h);
    h.finish()
}

/// Blocked Bloom filter: each key sets 3 bits of one 64-bit word (one cache line per
/// query). Remembers about `limit` keys at ~16 bits per key; [`Doorkeeper::age`] starts
/// afresh once that many were inserted. Inserts are a set union (their order does not
/// matter), so the map can age it between eviction passes only.
pub struct Doorkeeper {
    words: Vec<u64>,
    limit: usize,
    inserted: usize,
}

impl Doorkeeper {
    /// A doorkeeper remembering about `limit` keys (allocated at the first insert or
    /// [`Doorkeeper::age`]).
    pub fn new(limit: usize) -> Self {
        Doorkeeper { words: Vec::new(), limit: limit.max(64), inserted: 0 }
    }
    /// The word and bits of the key of fixed hash `h`, for [`Doorkeeper::contains_at`]
    /// and [`Doorkeeper::insert_at`] (valid until the filter is allocated or resized).
    #[inline]
    pub fn slot(&self, h: u64) -> (usize, u64) {
        let word = ((u128::from(h) * self.words.len() as u128) >> 64) as usize;
        let mask = 1u64 << (h & 63) | 1u64 << ((h >> 6) & 63) | 1u64 << ((h >> 12) & 63);
        (word, mask)
    }
    /// Whether the key of fixed hash `h` was inserted since the filter last started
    /// afresh (or is a false positive, ~0.8 % when full).
    #[cfg(test)]
    pub fn contains(&self, h: u64) -> bool {
        if self.words.is_empty() {
            return false;
        }
        self.contains_at(self.slot(h))
    }
    /// [`Doorkeeper::contains`] of a key's [`Doorkeeper::slot`] (the filter allocated).
    #[inline]
    pub fn contains_at(&self, (word, mask): (usize, u64)) -> bool {
        self.words[word] & mask == mask
    }
    #[cfg(test)]
    pub fn insert(&mut self, h: u64) {
        self.allocate();
        self.insert_at(self.slot(h));
    }
    /// [`Doorkeeper::insert`] of a key's [`Doorkeeper::slot`] (the filter allocated).
    #[inline]
    pub fn insert_at(&mut self, (word, mask): (usize, u64)) {
        self.words[word] |= mask;
        self.inserted += 1;
    }
    fn allocate(&mut self) {
        if self.words.is_empty() {
            self.words = vec![0; self.limit / 4];
        }
    }
    /// About how many keys it remembers.
    #[cfg(test)]
    pub fn limit(&self) -> usize {
        self.limit
    }
    /// Starts afresh if `limit` keys were inserted since the last time; allocates the
    /// filter (its slots stay valid until the next `age`).
    pub fn age(&mut self) {
        self.allocate();
        if self.inserted >= self.limit {
            self.words.fill(0);
            self.inserted = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_inserted_keys_with_few_false_positives_and_forgets_after_limit() {
        let mut d = Doorkeeper::new(10_000);
        assert!(!d.contains(fixed_hash(&1u32)));
        for k in 0..10_000u32 {
            d.insert(fixed_hash(&k));
            if k == 5_000 {
                d.age(); // below the limit: keeps everything
            }
        }
        assert!((0..10_000u32).all(|k| d.contains(fixed_hash(&k))));
        let false_positives = (10_000..110_000u32).filter(|k| d.contains(fixed_hash(k))).count();
        assert!(false_positives < 1_500, "{false_positives} false positives in 100 000");
        d.age(); // the limit was reached: starts afresh
        d.insert(fixed_hash(&777_777u32));
        assert!(d.contains(fixed_hash(&777_777u32)));
        assert!((0..10_000u32).filter(|k| d.contains(fixed_hash(k))).count() < 100);
    }

    #[test]
    fn fixed_hash_is_fixed_and_spreads_keys() {
        assert_eq!(fixed_hash(&0x0a01_0014u32), fixed_hash(&0x0a01_0014u32));
        assert_ne!(fixed_hash(&1u32), fixed_hash(&2u32));
        // Neighbouring keys land in different words of a 1024-word filter.
        let words: std::collections::HashSet<u64> =
            (0..1000u32).map(|k| ((u128::from(fixed_hash(&k)) * 1024) >> 64) as u64).collect();
        assert!(words.len() > 550, "{} distinct words", words.len());
    }
}
