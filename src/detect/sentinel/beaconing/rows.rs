//! A source's buffered rows, kept sorted by the KQL's sort key, in the cheapest storage for
//! how many there are: most sources of a flood hold one row, so that case must not
//! allocate, while a beacon's hour may hold hundreds.

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

pub(super) struct RowValue {
    pub(super) dst: Ipv4Addr,
    /// Identical rows: all but the last get a gap of 0 to their twin.
    pub(super) copies: u32,
    /// The flow-table id of the row's session (of the first copy), for the alert's sample.
    pub(super) session: u64,
}

/// Rows kept sorted by key: inline while there is one (most sources of a flood hold one
/// row: no allocation), a small `Vec` while few (a leaf of a `BTreeMap` costs ~800 bytes
/// even for one row), a `BTreeMap` beyond `FEW_ROWS`.
pub(super) enum RowStore {
    One((RowKey, RowValue)),
    /// Also the empty store.
    Few(Vec<(RowKey, RowValue)>),
    Many(BTreeMap<RowKey, RowValue>),
}

const FEW_ROWS: usize = 16;

impl Default for RowStore {
    fn default() -> Self {
        RowStore::Few(Vec::new())
    }
}

impl RowStore {
    /// A store holding one copy of the row `key` (to `dst`, of session `session`).
    pub(super) fn one(key: RowKey, dst: Ipv4Addr, session: u64) -> Self {
        RowStore::One((key, RowValue { dst, copies: 1, session }))
    }
    /// Adds one copy of the row `key` (to `dst`, of session `session`).
    pub(super) fn add(&mut self, key: RowKey, dst: Ipv4Addr, session: u64) {
        match self {
            RowStore::One((k, v)) if *k == key => v.copies += 1,
            RowStore::One(_) => {
                let RowStore::One(row) = std::mem::take(self) else { unreachable!("matched One") };
                let new = (key, RowValue { dst, copies: 1, session });
                let mut rows = Vec::with_capacity(4);
                if row.0 < key {
                    rows.extend([row, new]);
                } else {
                    rows.extend([new, row]);
                }
                *self = RowStore::Few(rows);
            }
            RowStore::Few(v) if v.is_empty() => *self = RowStore::One((key, RowValue { dst, copies: 1, session })),
            RowStore::Few(v) => match v.binary_search_by(|(k, _)| k.cmp(&key)) {
                Ok(i) => v[i].1.copies += 1,
                Err(i) => {
                    if v.len() < FEW_ROWS {
                        v.insert(i, (key, RowValue { dst, copies: 1, session }));
                    } else {
                        let mut map: BTreeMap<RowKey, RowValue> = std::mem::take(v).into_iter().collect();
                        map.insert(key, RowValue { dst, copies: 1, session });
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
    /// The rows as a sorted slice, unless held in a map.
    pub(super) fn as_slice(&self) -> Option<&[(RowKey, RowValue)]> {
        match self {
            RowStore::One(row) => Some(std::slice::from_ref(row)),
            RowStore::Few(v) => Some(v),
            RowStore::Many(_) => None,
        }
    }
    pub(super) fn first_key(&self) -> Option<&RowKey> {
        match (self, self.as_slice()) {
            (_, Some(v)) => v.first().map(|(k, _)| k),
            (RowStore::Many(m), None) => m.first_key_value().map(|(k, _)| k),
            _ => unreachable!("only a map has no slice"),
        }
    }
    /// The first key at or after `boundary`.
    pub(super) fn first_key_from(&self, boundary: &RowKey) -> Option<&RowKey> {
        match (self, self.as_slice()) {
            (_, Some(v)) => v.get(v.partition_point(|(k, _)| k < boundary)).map(|(k, _)| k),
            (RowStore::Many(m), None) => m.range(*boundary..).next().map(|(k, _)| k),
            _ => unreachable!("only a map has no slice"),
        }
    }
    /// The last key before `boundary`.
    pub(super) fn last_key_before(&self, boundary: &RowKey) -> Option<&RowKey> {
        match (self, self.as_slice()) {
            (_, Some(v)) => v[..v.partition_point(|(k, _)| k < boundary)].last().map(|(k, _)| k),
            (RowStore::Many(m), None) => m.range(..*boundary).next_back().map(|(k, _)| k),
            _ => unreachable!("only a map has no slice"),
        }
    }
    /// Whether at most `n` distinct rows lie before `boundary`.
    pub(super) fn at_most_before(&self, boundary: &RowKey, n: usize) -> bool {
        match (self, self.as_slice()) {
            (_, Some(v)) => v.partition_point(|(k, _)| k < boundary) <= n,
            (RowStore::Many(m), None) => m.range(..*boundary).nth(n).is_none(),
            _ => unreachable!("only a map has no slice"),
        }
    }
    /// Rows before `boundary`, in key order.
    pub(super) fn before<'a>(&'a self, boundary: &RowKey) -> Box<dyn Iterator<Item = (&'a RowKey, &'a RowValue)> + 'a> {
        match (self, self.as_slice()) {
            (_, Some(v)) => Box::new(v[..v.partition_point(|(k, _)| k < boundary)].iter().map(|(k, v)| (k, v))),
            (RowStore::Many(m), None) => Box::new(m.range(..*boundary)),
            _ => unreachable!("only a map has no slice"),
        }
    }
    /// Removes the rows before `boundary`; returns how many (counting copies).
    pub(super) fn release_before(&mut self, boundary: &RowKey) -> usize {
        match self {
            RowStore::One((k, v)) => {
                if *k >= *boundary {
                    return 0;
                }
                let released = v.copies as usize;
                *self = RowStore::default();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every storage (inline, `Vec`, map) holds what a plain ordered map of copy
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
        for round in 0..200 {
            let mut store = RowStore::default();
            let mut model: BTreeMap<RowKey, u32> = BTreeMap::new();
            let spread = 1 + round % 40;
            for _ in 0..60 {
                if next() % 5 == 0 {
                    let b = first_key_at(Timestamp(next() % spread));
                    let want: usize = model.range(..b).map(|(_, c)| *c as usize).sum();
                    model = model.split_off(&b);
                    assert_eq!(store.release_before(&b), want);
                } else {
                    let k = key(next() % spread, (next() % 3) as u8);
                    store.add(k, Ipv4Addr::new(9, 9, 9, 1), 7);
                    *model.entry(k).or_default() += 1;
                }
                let held: Vec<(RowKey, u32)> = match store.as_slice() {
                    Some(v) => v.iter().map(|(k, r)| (*k, r.copies)).collect(),
                    None => store.before(&first_key_at(Timestamp(i64::MAX))).map(|(k, r)| (*k, r.copies)).collect(),
                };
                assert_eq!(held, model.iter().map(|(k, c)| (*k, *c)).collect::<Vec<_>>());
                assert_eq!(store.first_key(), model.keys().next());
            }
        }
    }
}
