//! The doorkeeper of [`super::bounded::BoundedMap`]: a blocked Bloom filter of the keys
//! the map saw lately, its admission filter once the map has filled. A new key that the
//! doorkeeper does not know is kept aside (the map's nursery) and recorded; one it knows
//! (seen or evicted lately) is admitted into the map. Only a full map consults it, so
//! tables that never fill pay nothing for it.
//!
//! Keys are hashed with a fixed multiply-rotate hash ([`FixedHasher`]), not the maps'
//! random seed: which key is admitted (false positives included) must be the same on
//! every run, or replay output under table overflow would not be deterministic. Forcing
//! false positives only buys a key admission, never an alert.

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

/// Blocked Bloom filter in two generations: each key sets 3 bits of one 64-bit word
/// (one cache line per query) of the current generation, ~16 bits per key. Once
/// `limit` keys were inserted into it, the current generation becomes the previous one
/// (the older is forgotten) and a new one starts empty; a query asks both. So it
/// remembers the last `limit` to `2 × limit` keys inserted, never forgetting a key
/// inserted less than `limit` inserts ago.
pub struct Doorkeeper {
    current: Vec<u64>,
    previous: Vec<u64>,
    limit: usize,
    inserted: usize,
}

impl Doorkeeper {
    /// A doorkeeper of `limit` keys a generation (allocated at the first insert).
    pub fn new(limit: usize) -> Self {
        Doorkeeper { current: Vec::new(), previous: Vec::new(), limit: limit.max(64), inserted: 0 }
    }
    /// The word and bits of the key of fixed hash `h`, for [`Doorkeeper::contains_at`]
    /// and [`Doorkeeper::insert_at`] (the same for the doorkeeper's lifetime).
    #[inline]
    pub fn slot(&self, h: u64) -> (usize, u64) {
        let word = ((u128::from(h) * (self.limit / 4) as u128) >> 64) as usize;
        let mask = 1u64 << (h & 63) | 1u64 << ((h >> 6) & 63) | 1u64 << ((h >> 12) & 63);
        (word, mask)
    }
    /// Whether the key of fixed hash `h` was inserted in the last `limit` to `2 × limit`
    /// inserts (or is a false positive, ~1.6 % with both generations full).
    #[cfg(test)]
    pub fn contains(&self, h: u64) -> bool {
        self.contains_at(self.slot(h))
    }
    /// [`Doorkeeper::contains`] of a key's [`Doorkeeper::slot`].
    #[inline]
    pub fn contains_at(&self, (word, mask): (usize, u64)) -> bool {
        let has = |g: &[u64]| g.get(word).is_some_and(|w| w & mask == mask);
        has(&self.current) || has(&self.previous)
    }
    #[cfg(test)]
    pub fn insert(&mut self, h: u64) {
        self.insert_at(self.slot(h));
    }
    /// Inserts a key by its [`Doorkeeper::slot`]; a full generation is retired first.
    #[inline]
    pub fn insert_at(&mut self, (word, mask): (usize, u64)) {
        if self.inserted >= self.limit || self.current.is_empty() {
            self.next_generation();
        }
        self.current[word] |= mask;
        self.inserted += 1;
    }
    #[cold]
    fn next_generation(&mut self) {
        if self.current.is_empty() {
            self.current = vec![0; self.limit / 4];
        } else {
            std::mem::swap(&mut self.current, &mut self.previous);
            if self.current.is_empty() {
                self.current = vec![0; self.limit / 4];
            } else {
                self.current.fill(0);
            }
        }
        self.inserted = 0;
    }
    /// Keys a generation.
    #[cfg(test)]
    pub fn limit(&self) -> usize {
        self.limit
    }
    /// Bytes the filter takes once both generations are in use.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        2 * (self.limit / 4) * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_limit_keys_with_few_false_positives_and_forgets_older_ones() {
        let mut d = Doorkeeper::new(10_000);
        assert!(!d.contains(fixed_hash(&1u32)));
        for k in 0..10_000u32 {
            d.insert(fixed_hash(&k));
        }
        assert!((0..10_000u32).all(|k| d.contains(fixed_hash(&k))));
        let false_positives = (10_000..110_000u32).filter(|k| d.contains(fixed_hash(k))).count();
        assert!(false_positives < 1_500, "{false_positives} false positives in 100 000");
        // A second generation: the first is still asked.
        for k in 10_000..20_000u32 {
            d.insert(fixed_hash(&k));
        }
        assert!((0..20_000u32).all(|k| d.contains(fixed_hash(&k))));
        // A third: the first is forgotten, the last `limit` keys never are.
        d.insert(fixed_hash(&777_777u32));
        assert!(d.contains(fixed_hash(&777_777u32)));
        assert!((10_000..20_000u32).all(|k| d.contains(fixed_hash(&k))));
        assert!((0..10_000u32).filter(|k| d.contains(fixed_hash(k))).count() < 300);
        assert_eq!(d.bytes(), 2 * 2_500 * 8);
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
