//! A source's buffered rows, kept sorted by the KQL's sort key, in the cheapest storage for
//! how many there are: most sources of a flood hold one row, so that case must not
//! allocate; most of the others hold a few, which share the blocks of one arena
//! ([`RowBlocks`]) instead of an allocation each; a beacon's hour may hold hundreds.

use super::ip_order::V4Text;
use crate::time::Timestamp;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// Sort key of one row within its source: TimeGenerated, DstIpAddr (as a string),
/// DstPortNumber, then the tie-breaks SrcPortNumber, SrcBytes, DstBytes.
pub(super) type RowKey = (Timestamp, V4Text, Option<u16>, Option<u16>, u64, u64);

pub(super) fn first_key_at(t: Timestamp) -> RowKey {
    (t, V4Text::EMPTY, None, None, 0, 0)
}

#[derive(Clone, Copy)]
pub(super) struct RowValue {
    pub(super) dst: Ipv4Addr,
    /// Identical rows: all but the last get a gap of 0 to their twin.
    pub(super) copies: u32,
    /// The flow-table id of the row's session (of the first copy), for the alert's sample.
    pub(super) session: u64,
}

type Row = (RowKey, RowValue);

/// Rows a block of [`RowBlocks`] holds.
const BLOCK_ROWS: usize = 4;

/// An unused slot of a block.
const NO_ROW: Row =
    ((Timestamp(0), V4Text::EMPTY, None, None, 0, 0), RowValue { dst: Ipv4Addr::UNSPECIFIED, copies: 0, session: 0 });

/// Blocks of `BLOCK_ROWS` rows shared by every source holding 2 to `BLOCK_ROWS` distinct
/// rows: a source's second row takes a free block (one pop, or a push when none is free)
/// instead of allocating, and gives it back when it grows out of it or is released.
#[derive(Default)]
pub(super) struct RowBlocks {
    blocks: Vec<[Row; BLOCK_ROWS]>,
    /// Indexes of the blocks no source holds.
    free: Vec<u32>,
}

impl RowBlocks {
    fn take(&mut self) -> u32 {
        match self.free.pop() {
            Some(at) => at,
            None => {
                self.blocks.push([NO_ROW; BLOCK_ROWS]);
                u32::try_from(self.blocks.len() - 1).expect("fewer blocks than buffered rows")
            }
        }
    }
    fn give_back(&mut self, at: u32) {
        self.free.push(at);
    }
    /// Forgets every block: only once no source holds one.
    pub(super) fn clear(&mut self) {
        self.blocks.clear();
        self.free.clear();
    }
}

/// Rows kept sorted by key: inline while there is one (most sources of a flood hold one
/// row: no allocation), in a block of [`RowBlocks`] while at most `BLOCK_ROWS`, a small
/// `Vec` while few (a leaf of a `BTreeMap` costs ~800 bytes even for one row), a
/// `BTreeMap` beyond `FEW_ROWS`. Storage in a block is given back through
/// [`RowStore::release_before`] or [`RowStore::free`].
pub(super) enum RowStore {
    One(Row),
    /// The first `len` rows (at least one) of block `at`.
    Block {
        at: u32,
        len: u32,
    },
    /// Also the empty store.
    Few(Vec<Row>),
    Many(BTreeMap<RowKey, RowValue>),
}

const FEW_ROWS: usize = 16;

impl Default for RowStore {
    fn default() -> Self {
        RowStore::Few(Vec::new())
    }
}

/// A store's rows for reading: a sorted slice, or the map.
#[derive(Clone, Copy)]
pub(super) enum Rows<'a> {
    Slice(&'a [Row]),
    Map(&'a BTreeMap<RowKey, RowValue>),
}

impl RowStore {
    /// A store holding one copy of the row `key` (to `dst`, of session `session`).
    pub(super) fn one(key: RowKey, dst: Ipv4Addr, session: u64) -> Self {
        RowStore::One((key, RowValue { dst, copies: 1, session }))
    }
    /// Adds one copy of the row `key` (to `dst`, of session `session`).
    pub(super) fn add(&mut self, blocks: &mut RowBlocks, key: RowKey, dst: Ipv4Addr, session: u64) {
        let new = || (key, RowValue { dst, copies: 1, session });
        match self {
            RowStore::One((k, v)) if *k == key => v.copies += 1,
            RowStore::One(row) => {
                let row = *row;
                let at = blocks.take();
                let block = &mut blocks.blocks[at as usize];
                (block[0], block[1]) = if row.0 < key { (row, new()) } else { (new(), row) };
                *self = RowStore::Block { at, len: 2 };
            }
            RowStore::Block { at, len } => {
                let rows = &mut blocks.blocks[*at as usize][..*len as usize];
                match rows.binary_search_by(|(k, _)| k.cmp(&key)) {
                    Ok(i) => rows[i].1.copies += 1,
                    Err(i) if rows.len() < BLOCK_ROWS => {
                        let block = &mut blocks.blocks[*at as usize];
                        block.copy_within(i..*len as usize, i + 1);
                        block[i] = new();
                        *len += 1;
                    }
                    Err(i) => {
                        let mut v = Vec::with_capacity(2 * BLOCK_ROWS);
                        v.extend_from_slice(&rows[..i]);
                        v.push(new());
                        v.extend_from_slice(&rows[i..]);
                        blocks.give_back(*at);
                        *self = RowStore::Few(v);
                    }
                }
            }
            RowStore::Few(v) if v.is_empty() => *self = RowStore::One(new()),
            RowStore::Few(v) => match v.binary_search_by(|(k, _)| k.cmp(&key)) {
                Ok(i) => v[i].1.copies += 1,
                Err(i) => {
                    if v.len() < FEW_ROWS {
                        v.insert(i, new());
                    } else {
                        let mut map: BTreeMap<RowKey, RowValue> = std::mem::take(v).into_iter().collect();
                        map.insert(key, new().1);
                        *self = RowStore::Many(map);
                    }
                }
            },
            RowStore::Many(m) => m.entry(key).or_insert(RowValue { dst, copies: 0, session }).copies += 1,
        }
    }
    /// The row, if there is exactly one distinct row (held inline).
    pub(super) fn single(&self) -> Option<(&RowKey, &RowValue)> {
        match self {
            RowStore::One((k, v)) => Some((k, v)),
            _ => None,
        }
    }
    /// The rows, for reading.
    pub(super) fn view<'a>(&'a self, blocks: &'a RowBlocks) -> Rows<'a> {
        match self {
            RowStore::One(row) => Rows::Slice(std::slice::from_ref(row)),
            RowStore::Block { at, len } => Rows::Slice(&blocks.blocks[*at as usize][..*len as usize]),
            RowStore::Few(v) => Rows::Slice(v),
            RowStore::Many(m) => Rows::Map(m),
        }
    }
    /// Drops the store, giving back its block.
    #[inline]
    pub(super) fn free(self, blocks: &mut RowBlocks) {
        if let RowStore::Block { at, .. } = self {
            blocks.give_back(at);
        }
    }
    /// Removes the rows before `boundary`; returns how many (counting copies).
    pub(super) fn release_before(&mut self, blocks: &mut RowBlocks, boundary: &RowKey) -> usize {
        match self {
            RowStore::One((k, v)) => {
                if *k >= *boundary {
                    return 0;
                }
                let released = v.copies as usize;
                *self = RowStore::default();
                released
            }
            RowStore::Block { at, len } => {
                let block = &mut blocks.blocks[*at as usize];
                let n = block[..*len as usize].partition_point(|(k, _)| k < boundary);
                let released = block[..n].iter().map(|(_, r)| r.copies as usize).sum();
                if n == *len as usize {
                    blocks.give_back(*at);
                    *self = RowStore::default();
                } else {
                    block.copy_within(n..*len as usize, 0);
                    *len -= n as u32;
                }
                released
            }
            RowStore::Few(v) => {
                let n = v.partition_point(|(k, _)| k < boundary);
                let released = v[..n].iter().map(|(_, r)| r.copies as usize).sum();
                v.drain(..n);
                released
            }
            RowStore::Many(m) => {
                let rest = m.split_off(boundary);
                let released = m.values().map(|r| r.copies as usize).sum();
                *self = if rest.len() <= FEW_ROWS {
                    RowStore::Few(rest.into_iter().collect())
                } else {
                    RowStore::Many(rest)
                };
                released
            }
        }
    }
}

impl<'a> Rows<'a> {
    pub(super) fn first_key(self) -> Option<&'a RowKey> {
        match self {
            Rows::Slice(v) => v.first().map(|(k, _)| k),
            Rows::Map(m) => m.first_key_value().map(|(k, _)| k),
        }
    }
    /// The first key at or after `boundary`.
    pub(super) fn first_key_from(self, boundary: &RowKey) -> Option<&'a RowKey> {
        match self {
            Rows::Slice(v) => v.get(v.partition_point(|(k, _)| k < boundary)).map(|(k, _)| k),
            Rows::Map(m) => m.range(*boundary..).next().map(|(k, _)| k),
        }
    }
    /// The last key before `boundary`.
    pub(super) fn last_key_before(self, boundary: &RowKey) -> Option<&'a RowKey> {
        match self {
            Rows::Slice(v) => v[..v.partition_point(|(k, _)| k < boundary)].last().map(|(k, _)| k),
            Rows::Map(m) => m.range(..*boundary).next_back().map(|(k, _)| k),
        }
    }
    /// Whether at most `n` distinct rows lie before `boundary`.
    pub(super) fn at_most_before(self, boundary: &RowKey, n: usize) -> bool {
        match self {
            Rows::Slice(v) => v.partition_point(|(k, _)| k < boundary) <= n,
            Rows::Map(m) => m.range(..*boundary).nth(n).is_none(),
        }
    }
    /// Rows before `boundary`, in key order.
    pub(super) fn before(self, boundary: &RowKey) -> Box<dyn Iterator<Item = (&'a RowKey, &'a RowValue)> + 'a> {
        match self {
            Rows::Slice(v) => Box::new(v[..v.partition_point(|(k, _)| k < boundary)].iter().map(|(k, v)| (k, v))),
            Rows::Map(m) => Box::new(m.range(..*boundary)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every storage (inline, block, `Vec`, map) holds what a plain ordered map of copy
    /// counts would, through adds (new rows, twins) and releases.
    #[test]
    fn store_matches_an_ordered_map_through_adds_and_releases() {
        let key =
            |t: i64, d: u8| -> RowKey { (Timestamp(t), V4Text::new(Ipv4Addr::new(9, 9, 9, d)), Some(80), None, 0, 0) };
        let mut seed = 12345u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as i64
        };
        // Sources share the blocks: a second store takes and gives back blocks too.
        let mut blocks = RowBlocks::default();
        let mut other = RowStore::default();
        for round in 0..200 {
            let mut store = RowStore::default();
            let mut model: BTreeMap<RowKey, u32> = BTreeMap::new();
            let spread = 1 + round % 40;
            for _ in 0..60 {
                if next() % 5 == 0 {
                    let b = first_key_at(Timestamp(next() % spread));
                    let want: usize = model.range(..b).map(|(_, c)| *c as usize).sum();
                    model = model.split_off(&b);
                    assert_eq!(store.release_before(&mut blocks, &b), want);
                    other.release_before(&mut blocks, &b);
                } else {
                    let k = key(next() % spread, (next() % 3) as u8);
                    store.add(&mut blocks, k, Ipv4Addr::new(9, 9, 9, 1), 7);
                    other.add(&mut blocks, key(next() % spread, 5), Ipv4Addr::new(9, 9, 9, 5), 8);
                    *model.entry(k).or_default() += 1;
                }
                let rows = store.view(&blocks);
                let held: Vec<(RowKey, u32)> =
                    rows.before(&first_key_at(Timestamp(i64::MAX))).map(|(k, r)| (*k, r.copies)).collect();
                assert_eq!(held, model.iter().map(|(k, c)| (*k, *c)).collect::<Vec<_>>());
                assert_eq!(rows.first_key(), model.keys().next());
            }
            store.free(&mut blocks);
        }
        other.free(&mut blocks);
        assert_eq!(blocks.free.len(), blocks.blocks.len(), "every block given back");
    }
}
