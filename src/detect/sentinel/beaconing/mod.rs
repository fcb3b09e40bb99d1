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
//! up to four in a block of an arena all sources share ([`rows::RowBlocks`]: no
//! allocation per source), a few more in a small sorted `Vec`, and only many of them in a
//! `BTreeMap`.
//!
//! Cost per event: the per-event path does no formatting and no allocation for a
//! one-row source (a destination's string order is an integer, [`V4Text`]); open sessions
//! are a bit window plus a start-ordered queue ([`open_sessions`]); the eviction order
//! (per row count, appended integer addresses sorted when an eviction takes them out)
//! and the wake-up times are kept with lazy deletion (a row adds an entry, stale ones are
//! skipped when met and compacted when they pile up), so under the row cap the answer,
//! the evictions and the counters are those of the plain ordered sets.
//!
//! Layout: [`rows`] holds a source's sorted rows, [`ip_order`] the address orderings,
//! [`open_sessions`] the sessions the horizon waits for, [`wake_ups`] when to look at a
//! source again, [`eviction`] the eviction order, [`evaluate`] the per-hour decisions and
//! [`groups`] the aggregates and alerts of one hour.

mod evaluate;
mod eviction;
mod groups;
mod ip_order;
mod open_sessions;
mod rows;
#[cfg(test)]
mod tests;
mod wake_ups;

pub use ip_order::{IpText, V4Text};

use super::record_time;
use crate::detect::{Alert, Detector, DetectorUsage, Severity, Tracks};
use crate::flow::FlowEvent;
use crate::net::{keyed_map, kusto_ipv4_is_private, KeyedMap};
use crate::time::{Duration, Timestamp, NANOS_PER_SEC};
use eviction::EvictionOrder;
use hashbrown::hash_map::Entry;
use open_sessions::OpenSessions;
use rows::{RowBlocks, RowStore};
use std::net::{IpAddr, Ipv4Addr};
use wake_ups::WakeUps;

pub const RULE_NAME: &str = "Potential beaconing activity (ASIM Network Session schema)";
pub const SEVERITY: Severity = Severity::Low;
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

pub struct SentinelBeaconing {
    max_rows: usize,
    /// Keyed by sender-chosen addresses: randomly seeded.
    sources: KeyedMap<IpAddr, SourceRows>,
    /// The blocks of the sources holding a few rows (see [`RowStore`]).
    blocks: RowBlocks,
    rows_total: usize,
    /// Sessions started (with a qualifying destination) but not yet ended.
    open: OpenSessions,
    /// Capture time reached (from Starts and `on_time`).
    watermark: Timestamp,
    /// Horizon of the last evaluation: rows starting before it should already be known.
    settled: Timestamp,
    /// Sources waiting for the horizon to reach a time (see [`WakeUps`]).
    waiting: WakeUps,
    /// Every buffered source by rows held: the eviction order (see [`EvictionOrder`]).
    by_size: EvictionOrder,
    dropped_rows: u64,
    late_rows: u64,
    /// The hour of the last row's wake-up time.
    hour: Hour,
}

/// An hour `[start, end)` and the end-of-hour of a time, recomputed (two divisions) only
/// when the time leaves it: nearly every row falls in the hour of the one before.
struct Hour {
    start: Timestamp,
    end: Timestamp,
}

impl Hour {
    const NONE: Hour = Hour { start: Timestamp(i64::MAX), end: Timestamp(i64::MIN) };

    /// `t.bin_start(BIN_WIDTH).saturating_add(BIN_WIDTH)`.
    #[inline]
    fn end_of(&mut self, t: Timestamp) -> Timestamp {
        if t < self.start || t >= self.end {
            self.start = t.bin_start(BIN_WIDTH);
            self.end = self.start.saturating_add(BIN_WIDTH);
        }
        self.end
    }
}

impl SentinelBeaconing {
    pub fn new(max_rows: usize) -> Self {
        SentinelBeaconing {
            max_rows: max_rows.max(1),
            sources: keyed_map(),
            blocks: RowBlocks::default(),
            rows_total: 0,
            open: OpenSessions::default(),
            watermark: Timestamp(i64::MIN),
            settled: Timestamp(i64::MIN),
            waiting: WakeUps::default(),
            by_size: EvictionOrder::default(),
            dropped_rows: 0,
            late_rows: 0,
            hour: Hour::NONE,
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

    /// A record to a qualifying (IPv4) destination `dst_v4` ended: one row. Kept out of
    /// line so a Start, and a record the rule drops, cost no large frame.
    #[inline(never)]
    fn add_row(&mut self, rec: &crate::flow::FlowRecord, dst_v4: Ipv4Addr) {
        self.open.end(rec.id);
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
        let source = match self.sources.entry(rec.src) {
            Entry::Occupied(known) => {
                let source = known.into_mut();
                source.rows.add(&mut self.blocks, key, dst_v4, rec.id);
                source
            }
            // A new source (most of a flood) gets its row inline at once.
            Entry::Vacant(new) => {
                new.insert(SourceRows { rows: RowStore::one(key, dst_v4, rec.id), count: 0, wake_at: None })
            }
        };
        source.count += 1;
        let count = source.count;
        // The source is to be evaluated once the horizon passes its first row's hour:
        // before that, evaluating it would only wait for the hour's end (and once the
        // horizon is past it, the next sweep picks it up through `waiting`).
        let first = source.rows.view(&self.blocks).first_key().expect("a row was just added").0;
        let first_hour_end = self.hour.end_of(first);
        if source.wake_at != Some(first_hour_end) {
            source.wake_at = Some(first_hour_end);
            self.waiting.add(first_hour_end, rec.src);
        }
        self.by_size.note(count, rec.src);
        // Every source is in `sources` here, so the eviction order can be rebuilt from it.
        if self.by_size.is_mostly_stale(self.sources.len()) {
            self.by_size.rebuild(self.sources.iter().map(|(ip, s)| (s.count, *ip)));
        }
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
            // A record has its Start's endpoints (the flow table fixes them when the
            // session begins), and only Starts to a qualifying destination were opened:
            // the others (most of a flood's sessions) have nothing to close.
            FlowEvent::End(rec) => {
                // Qualifying destinations are IPv4.
                if let IpAddr::V4(dst) = rec.dst {
                    if destination_qualifies(rec.dst) {
                        self.add_row(rec, dst);
                    }
                }
            }
            // Not a record: the KQL never sees activity inside a session.
            FlowEvent::Exchange(_) => {}
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
        // Every source was released: no block is held.
        self.blocks.clear();
        // Every source was released: all entries of the eviction order are stale.
        self.by_size.disarm();
        self.open.clear();
    }
    fn usage(&self) -> DetectorUsage {
        let table = |table, entries, cap, evictions, setting, tracks| {
            super::table_usage("sentinel beaconing", table, entries, cap, evictions, setting, tracks)
        };
        DetectorUsage {
            tables: vec![
                table(
                    "rows",
                    self.rows_total as u64,
                    Some(self.max_rows as u64),
                    self.dropped_rows,
                    Some("sentinel.beacon_max_rows"),
                    Tracks::Series,
                ),
                // Only sources with buffered rows: bounded through the rows table.
                table("sources", self.sources.len() as u64, None, 0, None, Tracks::Sources),
            ],
        }
    }
}
