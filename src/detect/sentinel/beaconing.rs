//! Sentinel rule "Potential beaconing activity (ASIM Network Session schema)" v1.1.3,
//! evaluated hour by hour as soon as each hour's answer is certain.
//!
//! What the KQL does, step by step (see tests/reference/beaconing.kql):
//! 1. keep records whose `DstIpAddr` is public IPv4 (`not(ipv4_is_private(..))`, null for
//!    IPv6, so IPv6 is dropped) and outside 169.254.0.0/16 and 127.0.0.0/8;
//! 2. sort by `SrcIpAddr, TimeGenerated, DstIpAddr, DstPortNumber` ascending (strings
//!    compare as strings, nulls first), then give each row the gap to the NEXT row:
//!    `datetime_diff('second', next, this)` = floor(next) − floor(this) in whole seconds,
//!    kept only if the next row has the same source — whatever its destination;
//! 3. keep gaps > 10 s; per `bin(TimeGenerated, 1h)`, source, destination and port count
//!    rows per gap value; `TotalEvents` = rows with a kept gap, `MostFrequentTimeDeltaCount`
//!    the largest per-gap count, bytes are the sums over the kept rows;
//! 4. alert when `TotalEvents > 15` and `MostFrequentTimeDeltaCount / TotalEvents * 100 > 80`.
//!
//! Decisions where Kusto leaves a choice: rows equal in all four sort keys are ordered by
//! `SrcPortNumber` (nulls first), `SrcBytes`, `DstBytes` ascending, so the last of them is
//! the one that carries the gap to the following row; among gap values tied for most
//! frequent (`arg_max`), the smallest gap is reported. The whole capture is one query
//! window (the rule's daily 1-day window boundaries are not reproduced).
//!
//! Streaming: a row is a [`FlowEvent::End`] record whose start is its `TimeGenerated`.
//! All rows starting before the horizon `min(capture time, earliest open session start)`
//! are known. An hour of a source is evaluated once the horizon has passed the hour AND the
//! gap of its last row is certain: the source's first row after the hour is known (or input
//! has ended). While waiting for that row, the hour is decided early if the group holding
//! the last row could not alert whatever its gap turns out to be. Evaluated rows are
//! released; at most `max_rows` rows are buffered. When the buffer is full, the rows of
//! the sources holding the fewest rows (never more than the incoming row's source would
//! hold) are evicted an eighth of the buffer at a time, so a flood of one-row spoofed
//! sources cannot push out a beacon's rows; if nothing is small enough the incoming row
//! is dropped. Both are counted as evictions; under the cap the answer is the KQL's.
//! Alerts carry the end of their hour (or the end of capture, if earlier) as time.
//!
//! Memory: most sources of a flood hold one row, so a source's single row is held inline,
//! a few rows in a small sorted `Vec`, and only many of them in a `BTreeMap`.
//!
//! Cost per event: the per-event path does no formatting and no allocation for a
//! one-row source (a destination's string order is an integer, [`V4Text`]); open sessions
//! are a bit window plus a lazy heap ([`super::open_sessions`]); the eviction order and
//! the wake-up times are kept with lazy deletion (a row adds an entry, stale ones are
//! skipped when met and compacted when they pile up), so under the row cap the answer,
//! the evictions and the counters are those of the plain ordered sets.

use super::open_sessions::OpenSessions;
use super::record_time;
use crate::detect::{Alert, AlertType, DetectionMode, Detector, DetectorUsage};
use crate::flow::FlowEvent;
use crate::net::kusto_ipv4_is_private;
use crate::time::{Duration, Timestamp, NANOS_PER_SEC};
use hashbrown::HashMap;
use serde_json::{Map, Value};
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};
use std::net::{IpAddr, Ipv4Addr};

/// Hasher of the tables keyed by addresses that senders choose: foldhash, seeded at random
/// per table, so a remote sender cannot predict collisions (and much cheaper than SipHash).
type Keyed = hashbrown::DefaultHashBuilder;

pub const RULE_NAME: &str = "Potential beaconing activity (ASIM Network Session schema)";
pub const SEVERITY: &str = "Low";
pub const TACTICS: &[&str] = &["CommandAndControl"];
pub const TECHNIQUES: &[&str] = &["T1071", "T1571"];
/// `TimeDeltaThreshold`: gaps must be longer than this many seconds.
pub const TIME_DELTA_THRESHOLD: i64 = 10;
/// `TotalEventsThreshold`: more kept gaps than this per group.
pub const TOTAL_EVENTS_THRESHOLD: u64 = 15;
/// `PercentBeaconThreshold`: the most frequent gap's share must exceed this percentage.
pub const PERCENT_BEACON_THRESHOLD: f64 = 80.0;
pub const BIN_WIDTH: Duration = Duration(3600 * NANOS_PER_SEC);

/// The KQL's destination filter.
pub fn destination_qualifies(dst: IpAddr) -> bool {
    // 169.254.0.0/16 and 127.0.0.0/8, compared on the octets (same as `Cidr::contains`).
    let excluded = match dst {
        IpAddr::V4(a) => {
            let o = a.octets();
            (o[0] == 169 && o[1] == 254) || o[0] == 127
        }
        IpAddr::V6(_) => false,
    };
    kusto_ipv4_is_private(dst) == Some(false) && !excluded
}

/// Sort key of one row within its source: TimeGenerated, DstIpAddr (as a string),
/// DstPortNumber, then the tie-breaks SrcPortNumber, SrcBytes, DstBytes.
type RowKey = (Timestamp, V4Text, Option<u16>, Option<u16>, u64, u64);

fn first_key_at(t: Timestamp) -> RowKey {
    (t, V4Text::EMPTY, None, None, 0, 0)
}

/// An IPv4 address's text ("a.b.c.d", at most 15 characters) packed into a `u64` whose
/// integer order is exactly the string order, built without formatting: one nibble per
/// character, first character highest; end of text = 0, '.' = 1, digit d = d + 2, which
/// keeps the characters' order ('.' sorts before the digits) and sorts a prefix first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct V4Text(u64);

impl V4Text {
    /// The empty string: sorts before every address.
    pub const EMPTY: Self = V4Text(0);
    pub fn new(ip: Ipv4Addr) -> Self {
        let mut packed = 0u64;
        let mut shift = 64;
        let mut push = |symbol: u8| {
            shift -= 4;
            packed |= u64::from(symbol) << shift;
        };
        for (i, octet) in ip.octets().into_iter().enumerate() {
            if i > 0 {
                push(1);
            }
            if octet >= 100 {
                push(octet / 100 + 2);
            }
            if octet >= 10 {
                push(octet / 10 % 10 + 2);
            }
            push(octet % 10 + 2);
        }
        V4Text(packed)
    }
}

/// An address ordered exactly as `IpAddr`'s own `Ord` (V4 before V6, then by value), but
/// compared as integers rather than byte arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct OrdIp(IpAddr);

impl Ord for OrdIp {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.0, other.0) {
            (IpAddr::V4(a), IpAddr::V4(b)) => a.to_bits().cmp(&b.to_bits()),
            (IpAddr::V6(a), IpAddr::V6(b)) => a.to_bits().cmp(&b.to_bits()),
            (IpAddr::V4(_), IpAddr::V6(_)) => Ordering::Less,
            (IpAddr::V6(_), IpAddr::V4(_)) => Ordering::Greater,
        }
    }
}

impl PartialOrd for OrdIp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// An address's text form held inline (no heap allocation per row), ordered exactly as
/// the string: bytes compare lexicographically and the zero padding sorts before every
/// character, so a prefix sorts first. `N` = 15 fits any IPv4 address, 39 any address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpText<const N: usize>([u8; N]);

impl<const N: usize> IpText<N> {
    /// The empty string: sorts before every address.
    pub const EMPTY: Self = IpText([0; N]);
    /// `None` when the text does not fit in `N` bytes.
    pub fn new(ip: IpAddr) -> Option<Self> {
        use std::io::Write;
        let mut text = [0u8; 39];
        let mut cursor = std::io::Cursor::new(&mut text[..]);
        write!(cursor, "{ip}").ok()?;
        let len = cursor.position() as usize;
        let mut buf = [0u8; N];
        buf.get_mut(..len)?.copy_from_slice(&text[..len]);
        Some(IpText(buf))
    }
}

/// String-order sort key of any address (39 bytes hold the longest IPv6 text).
fn ip_string_order(ip: IpAddr) -> IpText<39> {
    IpText::new(ip).expect("an IP address's text is at most 39 bytes")
}

struct RowValue {
    dst: Ipv4Addr,
    /// Identical rows: all but the last get a gap of 0 to their twin.
    copies: u32,
}

#[derive(Default)]
struct SourceRows {
    rows: RowStore,
    /// Rows held (sum of `copies`); the address's valid entry in `SentinelBeaconing::by_size`
    /// is the one in this count's bucket.
    count: usize,
    /// The wake-up time registered in `SentinelBeaconing::waiting`, if any (entries of
    /// `waiting` that do not match it are stale).
    wake_at: Option<Timestamp>,
}

/// Rows kept sorted by key: inline while there is one (most sources of a flood hold one
/// row: no allocation), a small `Vec` while few (a leaf of a `BTreeMap` costs ~800 bytes
/// even for one row), a `BTreeMap` beyond `FEW_ROWS`.
enum RowStore {
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
    /// Adds one copy of the row `key` (to `dst`).
    fn add(&mut self, key: RowKey, dst: Ipv4Addr) {
        match self {
            RowStore::One((k, v)) if *k == key => v.copies += 1,
            RowStore::One(_) => {
                let RowStore::One(row) = std::mem::take(self) else { unreachable!("matched One") };
                let new = (key, RowValue { dst, copies: 1 });
                let mut rows = Vec::with_capacity(4);
                if row.0 < key {
                    rows.extend([row, new]);
                } else {
                    rows.extend([new, row]);
                }
                *self = RowStore::Few(rows);
            }
            RowStore::Few(v) if v.is_empty() => *self = RowStore::One((key, RowValue { dst, copies: 1 })),
            RowStore::Few(v) => match v.binary_search_by(|(k, _)| k.cmp(&key)) {
                Ok(i) => v[i].1.copies += 1,
                Err(i) => {
                    if v.len() < FEW_ROWS {
                        v.insert(i, (key, RowValue { dst, copies: 1 }));
                    } else {
                        let mut map: BTreeMap<RowKey, RowValue> = std::mem::take(v).into_iter().collect();
                        map.insert(key, RowValue { dst, copies: 1 });
                        *self = RowStore::Many(map);
                    }
                }
            },
            RowStore::Many(m) => m.entry(key).or_insert(RowValue { dst, copies: 0 }).copies += 1,
        }
    }
    /// The rows as a sorted slice, unless held in a map.
    fn as_slice(&self) -> Option<&[(RowKey, RowValue)]> {
        match self {
            RowStore::One(row) => Some(std::slice::from_ref(row)),
            RowStore::Few(v) => Some(v),
            RowStore::Many(_) => None,
        }
    }
    fn first_key(&self) -> Option<&RowKey> {
        match (self, self.as_slice()) {
            (_, Some(v)) => v.first().map(|(k, _)| k),
            (RowStore::Many(m), None) => m.first_key_value().map(|(k, _)| k),
            _ => unreachable!("only a map has no slice"),
        }
    }
    /// The first key at or after `boundary`.
    fn first_key_from(&self, boundary: &RowKey) -> Option<&RowKey> {
        match (self, self.as_slice()) {
            (_, Some(v)) => v.get(v.partition_point(|(k, _)| k < boundary)).map(|(k, _)| k),
            (RowStore::Many(m), None) => m.range(*boundary..).next().map(|(k, _)| k),
            _ => unreachable!("only a map has no slice"),
        }
    }
    /// The last key before `boundary`.
    fn last_key_before(&self, boundary: &RowKey) -> Option<&RowKey> {
        match (self, self.as_slice()) {
            (_, Some(v)) => v[..v.partition_point(|(k, _)| k < boundary)].last().map(|(k, _)| k),
            (RowStore::Many(m), None) => m.range(..*boundary).next_back().map(|(k, _)| k),
            _ => unreachable!("only a map has no slice"),
        }
    }
    /// Rows before `boundary`, in key order.
    fn before<'a>(&'a self, boundary: &RowKey) -> Box<dyn Iterator<Item = (&'a RowKey, &'a RowValue)> + 'a> {
        match (self, self.as_slice()) {
            (_, Some(v)) => Box::new(v[..v.partition_point(|(k, _)| k < boundary)].iter().map(|(k, v)| (k, v))),
            (RowStore::Many(m), None) => Box::new(m.range(..*boundary)),
            _ => unreachable!("only a map has no slice"),
        }
    }
    /// Removes the rows before `boundary`; returns how many (counting copies).
    fn release_before(&mut self, boundary: &RowKey) -> usize {
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

/// Per (destination, port) aggregate of one source-hour.
struct Group {
    dst: IpAddr,
    per_gap: BTreeMap<i64, u64>,
    total: u64,
    src_bytes: u64,
    dst_bytes: u64,
}

impl Group {
    /// (count, gap) of the most frequent gap; the smallest gap wins ties.
    fn most_frequent(&self) -> (u64, i64) {
        let mut best = (0, 0);
        for (&gap, &n) in &self.per_gap {
            if n > best.0 {
                best = (n, gap);
            }
        }
        best
    }
    fn beacon_percent(&self) -> f64 {
        self.most_frequent().0 as f64 / self.total as f64 * 100.0
    }
    fn alerts(&self) -> bool {
        self.total > TOTAL_EVENTS_THRESHOLD && self.beacon_percent() > PERCENT_BEACON_THRESHOLD
    }
    /// Could this group alert once one more row with an unknown gap (maybe none) is added?
    /// Conservative: `>=` where the rule has `>`.
    fn could_alert_with_one_more(&self) -> bool {
        let (m, t) = (self.most_frequent().0, self.total);
        let with = t + 1 > TOTAL_EVENTS_THRESHOLD && (m + 1) * 100 >= 80 * (t + 1);
        let without = t > TOTAL_EVENTS_THRESHOLD && m * 100 >= 80 * t;
        with || without
    }
}

enum Progress {
    /// Nothing left for this source.
    Empty,
    /// Wait until the horizon reaches this time.
    WaitUntil(Timestamp),
    /// Wait for the source's next row.
    WaitForRow,
}

pub struct SentinelBeaconing {
    max_rows: usize,
    sources: HashMap<IpAddr, SourceRows, Keyed>,
    rows_total: usize,
    /// Sessions started (with a qualifying destination) but not yet ended.
    open: OpenSessions,
    /// Capture time reached (from Starts and `on_time`).
    watermark: Timestamp,
    /// Horizon of the last evaluation: rows starting before it should already be known.
    settled: Timestamp,
    /// Sources waiting for the horizon to reach a time, by that time: a source with new
    /// rows waits for the end of its first row's hour (the sweep evaluates it once the
    /// horizon gets there). Lazy deletion: an address counts only if its source's
    /// `wake_at` is still that time. Order within a time does not matter (the sweep sorts
    /// what it evaluates).
    waiting: BTreeMap<Timestamp, Vec<IpAddr>>,
    /// Addresses held in `waiting`, stale ones included (bounds it by compaction).
    waiting_entries: usize,
    /// Every buffered source by rows held, lowest address first within a count: the
    /// eviction order (rows held, address). Lazy deletion: an entry counts only if it is
    /// the source's current `count` (a row adds the new entry without looking for the old
    /// one); compacted when stale entries pile up.
    by_size: BTreeMap<usize, BinaryHeap<Reverse<OrdIp>>>,
    /// Entries held in `by_size`, stale ones included.
    by_size_entries: usize,
    dropped_rows: u64,
    late_rows: u64,
}

impl SentinelBeaconing {
    pub fn new(max_rows: usize) -> Self {
        SentinelBeaconing {
            max_rows: max_rows.max(1),
            sources: HashMap::with_hasher(Keyed::default()),
            rows_total: 0,
            open: OpenSessions::default(),
            watermark: Timestamp(i64::MIN),
            settled: Timestamp(i64::MIN),
            waiting: BTreeMap::new(),
            waiting_entries: 0,
            by_size: BTreeMap::new(),
            by_size_entries: 0,
            dropped_rows: 0,
            late_rows: 0,
        }
    }

    /// Records that arrived after their hour had been evaluated (out-of-order capture).
    pub fn late_rows(&self) -> u64 {
        self.late_rows
    }

    /// All rows with `TimeGenerated` before this are known.
    fn horizon(&mut self) -> Timestamp {
        let w = record_time(self.watermark);
        match self.open.earliest() {
            Some(t) => w.min(t),
            None => w,
        }
    }

    fn add_row(&mut self, rec: &crate::flow::FlowRecord) {
        self.open.end(rec.id);
        if !destination_qualifies(rec.dst) {
            return;
        }
        // Qualifying destinations are IPv4.
        let IpAddr::V4(dst_v4) = rec.dst else {
            return;
        };
        let dst_text = V4Text::new(dst_v4);
        let t = record_time(rec.start);
        if t < self.settled {
            self.late_rows += 1;
            return;
        }
        if self.rows_total >= self.max_rows && !self.evict_smaller_than(rec.src) {
            self.dropped_rows += 1;
            return;
        }
        self.rows_total += 1;
        let key = (t, dst_text, rec.dport, rec.sport, rec.src_bytes, rec.dst_bytes);
        let source = self.sources.entry(rec.src).or_default();
        source.rows.add(key, dst_v4);
        source.count += 1;
        let count = source.count;
        // The source is to be evaluated once the horizon passes its first row's hour:
        // before that, evaluating it would only wait for the hour's end (and once the
        // horizon is past it, the next sweep picks it up through `waiting`).
        let first = source.rows.first_key().expect("a row was just added").0;
        let first_hour_end = first.bin_start(BIN_WIDTH).saturating_add(BIN_WIDTH);
        if source.wake_at != Some(first_hour_end) {
            source.wake_at = Some(first_hour_end);
            self.wake_at(first_hour_end, rec.src);
        }
        self.note_size(count, rec.src);
        // Every source is in `sources` here, so the eviction order can be rebuilt from it.
        if self.by_size_entries > 2 * self.sources.len() + 1024 {
            self.by_size.clear();
            self.by_size_entries = 0;
            let sizes: Vec<(usize, IpAddr)> = self.sources.iter().map(|(ip, s)| (s.count, *ip)).collect();
            for (count, ip) in sizes {
                self.note_size(count, ip);
            }
        }
    }

    /// Records that `ip` now holds `count` rows (its entries for other counts go stale).
    fn note_size(&mut self, count: usize, ip: IpAddr) {
        self.by_size.entry(count).or_default().push(Reverse(OrdIp(ip)));
        self.by_size_entries += 1;
    }

    /// Registers `ip` to be evaluated once the horizon reaches `w`.
    fn wake_at(&mut self, w: Timestamp, ip: IpAddr) {
        self.waiting.entry(w).or_default().push(ip);
        self.waiting_entries += 1;
    }

    /// Full buffer, a row of `src` incoming: evicts whole sources, fewest rows first
    /// (then lowest address), holding no more rows than `src` will once the row is
    /// added, until an eighth of the buffer is free. False if nothing could be evicted.
    fn evict_smaller_than(&mut self, src: IpAddr) -> bool {
        let limit = self.sources.get(&src).map_or(0, |s| s.count) + 1;
        let goal = (self.max_rows / 8).max(1);
        let mut freed = 0;
        let mut skipped_self = None;
        while freed < goal {
            let Some(mut bucket) = self.by_size.first_entry() else { break };
            let count = *bucket.key();
            if count > limit {
                break;
            }
            let Some(Reverse(OrdIp(ip))) = bucket.get_mut().pop() else {
                bucket.remove();
                continue;
            };
            if bucket.get().is_empty() {
                bucket.remove();
            }
            self.by_size_entries -= 1;
            if !self.sources.get(&ip).is_some_and(|s| s.count == count) {
                continue; // stale entry
            }
            if ip == src {
                skipped_self = Some(count);
                continue;
            }
            self.sources.remove(&ip);
            // Its entries in `waiting` go stale: the sweep skips them.
            freed += count;
        }
        if let Some(count) = skipped_self {
            self.note_size(count, src);
        }
        self.rows_total -= freed;
        self.dropped_rows += freed as u64;
        freed > 0
    }

    /// Evaluates every source whose next hour may have become decidable; `None` = input over.
    fn sweep(&mut self, horizon: Option<Timestamp>, alerts: &mut Vec<Alert>) {
        let mut candidates: Vec<IpAddr> = match horizon {
            None => self.sources.keys().copied().collect(),
            Some(h) => {
                let mut c = Vec::new();
                while let Some(entry) = self.waiting.first_entry() {
                    if *entry.key() > h {
                        break;
                    }
                    let (w, ips) = entry.remove_entry();
                    self.waiting_entries -= ips.len();
                    for ip in ips {
                        if let Some(s) = self.sources.get_mut(&ip) {
                            if s.wake_at == Some(w) {
                                s.wake_at = None;
                                c.push(ip);
                            }
                        }
                    }
                }
                c
            }
        };
        if let Some(h) = horizon {
            self.settled = self.settled.max(h);
        }
        // Deterministic alert order: by SrcIpAddr as the KQL sorts it (string order).
        candidates.sort_unstable_by(|a, b| match (a, b) {
            (IpAddr::V4(x), IpAddr::V4(y)) => V4Text::new(*x).cmp(&V4Text::new(*y)),
            _ => (ip_string_order(*a), *a).cmp(&(ip_string_order(*b), *b)),
        });
        candidates.dedup();
        for ip in candidates {
            let Some(mut source) = self.sources.remove(&ip) else {
                continue;
            };
            source.wake_at = None;
            let progress = self.evaluate_source(ip, &mut source, horizon, alerts);
            match progress {
                Progress::Empty => {}
                Progress::WaitUntil(w) => {
                    source.wake_at = Some(w);
                    self.wake_at(w, ip);
                    self.sources.insert(ip, source);
                }
                Progress::WaitForRow => {
                    self.sources.insert(ip, source);
                }
            }
        }
        if self.waiting_entries > 2 * self.sources.len() + 1024 {
            let mut waiting: BTreeMap<Timestamp, Vec<IpAddr>> = BTreeMap::new();
            for (ip, s) in &self.sources {
                if let Some(w) = s.wake_at {
                    waiting.entry(w).or_default().push(*ip);
                }
            }
            self.waiting_entries = waiting.values().map(Vec::len).sum();
            self.waiting = waiting;
        }
    }

    fn evaluate_source(
        &mut self,
        src: IpAddr,
        source: &mut SourceRows,
        horizon: Option<Timestamp>,
        alerts: &mut Vec<Alert>,
    ) -> Progress {
        loop {
            let Some(first) = source.rows.first_key() else {
                return Progress::Empty;
            };
            let bin = first.0.bin_start(BIN_WIDTH);
            let bin_end = bin.saturating_add(BIN_WIDTH);
            if let Some(h) = horizon {
                if bin_end > h {
                    return Progress::WaitUntil(bin_end);
                }
            }
            let boundary = first_key_at(bin_end);
            let next_row_time = source.rows.first_key_from(&boundary).map(|k| k.0);
            // The first row after the hour, if it is certain; Err(wait) otherwise.
            let successor: Result<Option<Timestamp>, Progress> = match (next_row_time, horizon) {
                (Some(t), Some(h)) if t <= h => Ok(Some(t)),
                (Some(t), None) => Ok(Some(t)),
                (None, None) => Ok(None),
                (Some(t), Some(_)) => Err(Progress::WaitUntil(t)),
                (None, Some(_)) => Err(Progress::WaitForRow),
            };
            let groups = match successor {
                Ok(succ) => aggregate(&source.rows, &boundary, succ),
                Err(wait @ Progress::WaitUntil(_)) => return wait,
                Err(wait) => {
                    // The source may stay quiet for long: decide now if the group holding
                    // the last row could not alert whatever its gap.
                    let groups = aggregate(&source.rows, &boundary, None);
                    let last = source.rows.last_key_before(&boundary).expect("bin has rows");
                    let pending = (last.1, last.2);
                    if groups.get(&pending).is_some_and(Group::could_alert_with_one_more) {
                        return wait;
                    }
                    groups
                }
            };
            let time = bin_end.min(self.watermark.max(bin));
            for ((_, dport), g) in &groups {
                if g.alerts() {
                    alerts.push(make_alert(src, g, *dport, bin, time));
                }
            }
            let released = source.rows.release_before(&boundary);
            self.rows_total -= released;
            source.count -= released;
            if source.count > 0 {
                self.note_size(source.count, src);
            }
        }
    }
}

/// Steps 2–3 of the query for the rows of one source before `boundary` (one hour), given
/// the time of the source's first row after them (`None`: there is none).
fn aggregate(
    rows: &RowStore,
    boundary: &RowKey,
    successor: Option<Timestamp>,
) -> BTreeMap<(V4Text, Option<u16>), Group> {
    let mut groups: BTreeMap<(V4Text, Option<u16>), Group> = BTreeMap::new();
    let mut iter = rows.before(boundary).peekable();
    while let Some((key, value)) = iter.next() {
        let next = iter.peek().map(|(k, _)| k.0).or(successor);
        // Twins (copies - 1 of them) have a gap of 0 to each other: never kept.
        let Some(next) = next else { continue };
        let gap = next.floor_secs() - key.0.floor_secs();
        if gap <= TIME_DELTA_THRESHOLD {
            continue;
        }
        let g = groups.entry((key.1, key.2)).or_insert_with(|| Group {
            dst: IpAddr::V4(value.dst),
            per_gap: BTreeMap::new(),
            total: 0,
            src_bytes: 0,
            dst_bytes: 0,
        });
        *g.per_gap.entry(gap).or_insert(0) += 1;
        g.total += 1;
        g.src_bytes += key.4;
        g.dst_bytes += key.5;
    }
    groups
}

fn make_alert(src: IpAddr, g: &Group, dport: Option<u16>, bin: Timestamp, time: Timestamp) -> Alert {
    let (count, gap) = g.most_frequent();
    let mut evidence = Map::new();
    evidence.insert("WindowStart".into(), Value::String(bin.rfc3339()));
    evidence.insert("TotalEvents".into(), g.total.into());
    evidence.insert("MostFrequentTimeDeltaCount".into(), count.into());
    evidence.insert("MostFrequentTimeDeltainSeconds".into(), gap.into());
    evidence.insert("BeaconPercent".into(), g.beacon_percent().into());
    evidence.insert("TotalSrcBytes".into(), g.src_bytes.into());
    evidence.insert("TotalDstBytes".into(), g.dst_bytes.into());
    Alert {
        alert_type: AlertType::Beaconing,
        mode: DetectionMode::Sentinel,
        time,
        name: RULE_NAME.into(),
        severity: SEVERITY,
        tactics: TACTICS,
        techniques: TECHNIQUES,
        src,
        dst: Some(g.dst),
        dport,
        evidence,
    }
}

impl Detector for SentinelBeaconing {
    fn on_event(&mut self, event: &FlowEvent, _alerts: &mut Vec<Alert>) {
        match event {
            FlowEvent::Start(s) => {
                self.watermark = self.watermark.max(s.ts);
                if destination_qualifies(s.dst) {
                    self.open.start(record_time(s.ts), s.id);
                }
            }
            FlowEvent::End(rec) => self.add_row(rec),
        }
    }
    fn on_time(&mut self, now: Timestamp, alerts: &mut Vec<Alert>) {
        self.watermark = self.watermark.max(now);
        let h = self.horizon();
        self.sweep(Some(h), alerts);
    }
    fn finish(&mut self, alerts: &mut Vec<Alert>) {
        self.sweep(None, alerts);
        self.waiting.clear();
        self.waiting_entries = 0;
        // Every source was released: all entries of the eviction order are stale.
        self.by_size.clear();
        self.by_size_entries = 0;
        self.open.clear();
    }
    fn usage(&self) -> DetectorUsage {
        DetectorUsage {
            sources: self.sources.len() as u64,
            series: self.rows_total as u64,
            evictions: self.dropped_rows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{ConnState, EndReason, EventResult, FirstPacket, FlowRecord, SessionStart};

    const T0: f64 = 1_699_999_200.0; // an hour boundary (1_699_999_200 = 472_222 h)

    struct Feed {
        det: SentinelBeaconing,
        alerts: Vec<Alert>,
        next_id: u64,
    }

    impl Feed {
        fn new() -> Self {
            Feed { det: SentinelBeaconing::new(10_000), alerts: Vec::new(), next_id: 1 }
        }
        fn start(&mut self, secs: f64, src: &str, dst: &str, dport: Option<u16>) -> (u64, SessionStart) {
            let id = self.next_id;
            self.next_id += 1;
            let s = SessionStart {
                id,
                ts: Timestamp::from_secs_f64(secs),
                src: src.parse().unwrap(),
                dst: dst.parse().unwrap(),
                sport: Some(50000),
                dport,
                protocol: 6,
                segment: 0,
                first: FirstPacket::default(),
            };
            self.det.on_event(&FlowEvent::Start(s.clone()), &mut self.alerts);
            (id, s)
        }
        fn end(&mut self, s: &SessionStart, bytes: u64) {
            let rec = FlowRecord {
                id: s.id,
                segment: 0,
                start: s.ts,
                end: s.ts.saturating_add(Duration::from_millis(100)),
                src: s.src,
                dst: s.dst,
                sport: s.sport,
                dport: s.dport,
                protocol: 6,
                src_bytes: bytes,
                dst_bytes: 2 * bytes,
                src_packets: 1,
                dst_packets: 1,
                icmp_type: None,
                icmp_code: None,
                vlan: None,
                conn_state: ConnState::SF,
                result: EventResult::Success,
                end_reason: EndReason::Fin,
                src_tcp_flags: 0,
                dst_tcp_flags: 0,
                icmp_errors: 0,
                last_icmp_error: None,
                first: FirstPacket::default(),
            };
            self.det.on_event(&FlowEvent::End(rec), &mut self.alerts);
        }
        /// A short session: Start and End at once, then capture time moves to its start.
        fn session(&mut self, secs: f64, src: &str, dst: &str, dport: Option<u16>) {
            let (_, s) = self.start(secs, src, dst, dport);
            self.end(&s, 100);
            self.det.on_time(Timestamp::from_secs_f64(secs), &mut self.alerts);
        }
        fn finish(mut self) -> Vec<Alert> {
            self.det.finish(&mut self.alerts);
            self.alerts
        }
    }

    fn beacon(feed: &mut Feed, n: usize, period: f64, dst: &str) {
        for i in 0..n {
            feed.session(T0 + 5.0 + period * i as f64, "192.0.2.10", dst, Some(443));
        }
    }

    #[test]
    fn seventeen_sessions_give_sixteen_gaps_and_alert() {
        let mut feed = Feed::new();
        beacon(&mut feed, 17, 60.0, "198.51.100.7");
        let alerts = feed.finish();
        assert_eq!(alerts.len(), 1);
        let a = &alerts[0];
        assert_eq!(a.name, RULE_NAME);
        assert_eq!(a.dst, Some("198.51.100.7".parse().unwrap()));
        assert_eq!(a.dport, Some(443));
        assert_eq!(a.evidence["TotalEvents"], 16);
        assert_eq!(a.evidence["MostFrequentTimeDeltaCount"], 16);
        assert_eq!(a.evidence["MostFrequentTimeDeltainSeconds"], 60);
        assert_eq!(a.evidence["BeaconPercent"], 100.0);
        // Bytes of the 16 rows that carry a gap (the last row has none).
        assert_eq!(a.evidence["TotalSrcBytes"], 1600);
        assert_eq!(a.evidence["TotalDstBytes"], 3200);
        assert_eq!(a.evidence["WindowStart"], Timestamp::from_secs(T0 as i64).rfc3339());
    }

    #[test]
    fn sixteen_sessions_give_only_fifteen_gaps_unless_a_later_row_follows() {
        let mut feed = Feed::new();
        beacon(&mut feed, 16, 60.0, "198.51.100.7");
        assert!(feed.finish().is_empty());
        // Any later row of the same source (another destination) gives the 16th a gap.
        let mut feed = Feed::new();
        beacon(&mut feed, 16, 60.0, "198.51.100.7");
        feed.session(T0 + 5.0 + 16.0 * 60.0, "192.0.2.10", "203.0.113.99", Some(80));
        let alerts = feed.finish();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].evidence["TotalEvents"], 16);
    }

    #[test]
    fn interleaved_destination_steals_the_gaps() {
        // A every 60 s, B 5 s after each A: A's rows get 5 s gaps (dropped), B's get 55 s.
        let mut feed = Feed::new();
        for i in 0..20 {
            let t = T0 + 5.0 + 60.0 * i as f64;
            feed.session(t, "192.0.2.10", "198.51.100.7", Some(443));
            feed.session(t + 5.0, "192.0.2.10", "203.0.113.8", Some(443));
        }
        let alerts = feed.finish();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].dst, Some("203.0.113.8".parse().unwrap()));
        assert_eq!(alerts[0].evidence["MostFrequentTimeDeltainSeconds"], 55);
        assert_eq!(alerts[0].evidence["TotalEvents"], 19);
    }

    #[test]
    fn gaps_of_ten_seconds_or_less_are_dropped() {
        let mut feed = Feed::new();
        beacon(&mut feed, 40, 10.0, "198.51.100.7");
        assert!(feed.finish().is_empty());
        let mut feed = Feed::new();
        beacon(&mut feed, 40, 11.0, "198.51.100.7");
        let alerts = feed.finish();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].evidence["MostFrequentTimeDeltainSeconds"], 11);
    }

    #[test]
    fn gaps_count_second_boundaries_like_datetime_diff() {
        // Starts at x.9 and x.1 alternately, x 60 s apart: the real gaps alternate 59.2 and
        // 60.8 s (rounding would give 59/61 and no beacon), but floor(next) - floor(this)
        // is always 60.
        let mut feed = Feed::new();
        for i in 0..30 {
            let frac = if i % 2 == 0 { 0.9 } else { 0.1 };
            feed.session(T0 + 60.0 * i as f64 + frac, "192.0.2.10", "198.51.100.7", Some(443));
        }
        let alerts = feed.finish();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].evidence["MostFrequentTimeDeltainSeconds"], 60);
        assert_eq!(alerts[0].evidence["MostFrequentTimeDeltaCount"], 29);
    }

    #[test]
    fn private_ipv6_link_local_and_loopback_destinations_are_ignored() {
        for dst in ["10.0.0.5", "172.20.1.1", "192.168.0.1", "169.254.1.1", "127.0.0.5", "2001:db8::5"] {
            let mut feed = Feed::new();
            beacon(&mut feed, 30, 60.0, dst);
            assert!(feed.finish().is_empty(), "{dst}");
        }
    }

    #[test]
    fn hour_waits_for_open_sessions_and_for_the_next_row() {
        let mut feed = Feed::new();
        beacon(&mut feed, 20, 60.0, "198.51.100.7"); // rows until T0+1145
                                                     // A long session starting inside the hour keeps it open past its end.
        let (_, long) = feed.start(T0 + 1200.0, "192.0.2.99", "198.51.100.50", Some(22));
        feed.det.on_time(Timestamp::from_secs_f64(T0 + 4000.0), &mut feed.alerts);
        assert!(feed.alerts.is_empty(), "hour must wait for the open session");
        feed.end(&long, 10);
        feed.det.on_time(Timestamp::from_secs_f64(T0 + 4001.0), &mut feed.alerts);
        // The last beacon row still needs its source's next row: only 19 gaps are certain,
        // and the 20th could still change the answer's numbers.
        assert!(feed.alerts.is_empty(), "last row's gap is not known yet");
        feed.session(T0 + 7200.0, "192.0.2.10", "203.0.113.99", Some(80));
        assert_eq!(feed.alerts.len(), 1);
        assert_eq!(feed.alerts[0].evidence["TotalEvents"], 20);
        assert_eq!(feed.alerts[0].time, Timestamp::from_secs(T0 as i64 + 3600));
        assert_eq!(feed.det.usage().series, 1, "evaluated rows are released");
        assert!(feed.finish().len() == 1);
    }

    #[test]
    fn quiet_source_is_decided_early_when_it_cannot_alert() {
        let mut feed = Feed::new();
        beacon(&mut feed, 5, 60.0, "198.51.100.7");
        feed.det.on_time(Timestamp::from_secs_f64(T0 + 3700.0), &mut feed.alerts);
        assert_eq!(feed.det.usage().series, 0);
        assert!(feed.finish().is_empty());
    }

    #[test]
    fn row_cap_counts_dropped_rows() {
        let mut feed = Feed::new();
        feed.det = SentinelBeaconing::new(3);
        beacon(&mut feed, 5, 60.0, "198.51.100.7");
        assert_eq!(feed.det.usage().series, 3);
        assert_eq!(feed.det.usage().evictions, 2);
    }

    #[test]
    fn flood_of_one_row_sources_does_not_push_out_a_beacon() {
        let mut feed = Feed::new();
        feed.det = SentinelBeaconing::new(100);
        let mut spoofed = 0u32;
        for i in 0..20 {
            let t = T0 + 5.0 + 60.0 * i as f64;
            feed.session(t, "192.0.2.10", "198.51.100.7", Some(443));
            for j in 0..50 {
                spoofed += 1;
                feed.session(t + 1.0 + j as f64 * 0.01, &format!("2001:db8::{spoofed:x}"), "203.0.113.9", Some(80));
            }
        }
        let usage = feed.det.usage();
        assert!(usage.series <= 100, "row cap holds: {usage:?}");
        assert!(usage.evictions >= 900, "flood rows evicted and counted: {usage:?}");
        let alerts = feed.finish();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].src, "192.0.2.10".parse::<IpAddr>().unwrap());
        assert_eq!(alerts[0].evidence["TotalEvents"], 19);
    }

    #[test]
    fn eviction_takes_fewest_rows_then_lowest_address_skipping_stale_entries() {
        let mut feed = Feed::new();
        feed.det = SentinelBeaconing::new(4); // evicts one row's worth at a time
        let mut secs = T0 + 5.0;
        let mut row = |feed: &mut Feed, src: &str| {
            secs += 1.0;
            feed.session(secs, src, "198.51.100.7", Some(443));
        };
        let held = |feed: &Feed, src: &str| feed.det.sources.get(&src.parse::<IpAddr>().unwrap()).map(|s| s.count);
        // .5 grows to 2 rows: its entry for 1 row goes stale and is the lowest of that count.
        for src in ["192.0.2.5", "192.0.2.5", "192.0.2.20", "192.0.2.10"] {
            row(&mut feed, src);
        }
        row(&mut feed, "192.0.2.40"); // full: the one-row source with the lowest address goes
        assert_eq!((held(&feed, "192.0.2.10"), held(&feed, "192.0.2.5")), (None, Some(2)));
        assert_eq!(feed.det.usage().evictions, 1);
        row(&mut feed, "192.0.2.5"); // may evict sources of up to 3 rows: .20 is the smallest
        assert_eq!(
            (held(&feed, "192.0.2.20"), held(&feed, "192.0.2.40"), held(&feed, "192.0.2.5")),
            (None, Some(1), Some(3))
        );
        // .40 may only evict sources of up to 2 rows: itself and .5's stale entry do not count.
        row(&mut feed, "192.0.2.40");
        assert_eq!((held(&feed, "192.0.2.40"), held(&feed, "192.0.2.5")), (Some(1), Some(3)));
        assert_eq!(feed.det.usage().evictions, 3, "two evicted rows and one dropped row");
        row(&mut feed, "192.0.2.60"); // .40 kept its place in the eviction order
        assert_eq!((held(&feed, "192.0.2.40"), held(&feed, "192.0.2.60")), (None, Some(1)));
        assert_eq!(feed.det.usage().series, 4);
        assert_eq!(feed.det.usage().evictions, 4);
    }

    #[test]
    fn many_rows_then_release_back_to_few_keeps_the_answer() {
        // 40 rows in the first hour (map storage), 3 in the next (back to a small Vec).
        let mut feed = Feed::new();
        beacon(&mut feed, 40, 60.0, "198.51.100.7");
        for i in 0..3 {
            feed.session(T0 + 3600.0 + 100.0 * i as f64, "192.0.2.10", "198.51.100.7", Some(443));
        }
        assert_eq!(feed.det.usage().series, 3, "first hour released");
        feed.det.finish(&mut feed.alerts);
        assert_eq!(feed.det.usage().series, 0, "every row released at the end");
        assert_eq!(feed.det.usage().sources, 0);
        assert_eq!(feed.alerts.len(), 1);
        assert_eq!(feed.alerts[0].evidence["TotalEvents"], 40);
    }
}

#[cfg(test)]
mod ip_text_tests {
    use super::*;

    #[test]
    fn ip_text_orders_like_the_string() {
        let ips: Vec<IpAddr> = [
            "1.2.3.4",
            "1.2.3.40",
            "1.2.30.4",
            "10.0.0.1",
            "9.9.9.9",
            "203.0.113.5",
            "203.0.113.50",
            "2.0.0.0",
            "255.255.255.255",
            "198.51.100.7",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        for a in &ips {
            for b in &ips {
                let want = a.to_string().cmp(&b.to_string());
                assert_eq!(IpText::<15>::new(*a).unwrap().cmp(&IpText::new(*b).unwrap()), want, "{a} vs {b}");
                assert_eq!(ip_string_order(*a).cmp(&ip_string_order(*b)), want, "{a} vs {b}");
                let (IpAddr::V4(a4), IpAddr::V4(b4)) = (a, b) else { unreachable!("IPv4 list") };
                assert_eq!(V4Text::new(*a4).cmp(&V4Text::new(*b4)), want, "{a} vs {b}");
                assert_eq!(OrdIp(*a).cmp(&OrdIp(*b)), a.cmp(b), "{a} vs {b}");
            }
            assert!(IpText::<15>::EMPTY < IpText::new(*a).unwrap());
            let IpAddr::V4(a4) = a else { unreachable!("IPv4 list") };
            assert!(V4Text::EMPTY < V4Text::new(*a4));
        }
        let v6: IpAddr = "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap();
        assert!(IpText::<15>::new(v6).is_none());
        let one: IpAddr = "::1".parse().unwrap();
        assert_eq!(ip_string_order(one).cmp(&ip_string_order(v6)), one.to_string().cmp(&v6.to_string()));
        let v4: IpAddr = "255.255.255.255".parse().unwrap();
        for (a, b) in [(v4, one), (one, v6), (v6, v4), (one, one)] {
            assert_eq!(OrdIp(a).cmp(&OrdIp(b)), a.cmp(&b), "{a} vs {b}");
        }
    }

    #[test]
    fn v4_text_orders_like_the_string_for_every_octet_length() {
        // Every octet value in every position against neighbours of all text lengths.
        let probes = [0u8, 1, 2, 9, 10, 11, 19, 20, 25, 99, 100, 101, 109, 110, 199, 200, 249, 250, 255];
        let mut ips = Vec::new();
        for pos in 0..4 {
            for v in 0..=255u8 {
                let mut o = [1u8, 22, 133, 4];
                o[pos] = v;
                ips.push(Ipv4Addr::from(o));
            }
        }
        for p in probes {
            ips.push(Ipv4Addr::new(p, p, p, p));
        }
        for a in &ips {
            for b in ips.iter().step_by(7) {
                assert_eq!(V4Text::new(*a).cmp(&V4Text::new(*b)), a.to_string().cmp(&b.to_string()), "{a} vs {b}");
            }
        }
    }
}
