//! Steps 2–4 of the query for one source-hour: the gap each row carries, the per
//! (destination, port) aggregates, the alert condition and the alert itself.

use super::ip_order::V4Text;
use super::rows::{RowKey, Rows};
use super::{
    PERCENT_BEACON_THRESHOLD, RULE_NAME, SEVERITY, TACTICS, TECHNIQUES, TIME_DELTA_THRESHOLD, TOTAL_EVENTS_THRESHOLD,
};
use crate::detect::alert::sample_session;
use crate::detect::{Alert, AlertType, DetectionMode};
use crate::time::Timestamp;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Per (destination, port) aggregate of one source-hour.
pub(super) struct Group {
    dst: IpAddr,
    per_gap: BTreeMap<i64, u64>,
    total: u64,
    src_bytes: u64,
    dst_bytes: u64,
    /// The first sessions of the group's counted rows, for the alert.
    sessions: Vec<u64>,
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
    pub(super) fn alerts(&self) -> bool {
        self.total > TOTAL_EVENTS_THRESHOLD && self.beacon_percent() > PERCENT_BEACON_THRESHOLD
    }
    /// Could this group alert once one more row with an unknown gap (maybe none) is added?
    /// Conservative: `>=` where the rule has `>`.
    pub(super) fn could_alert_with_one_more(&self) -> bool {
        let (m, t) = (self.most_frequent().0, self.total);
        let with = t + 1 > TOTAL_EVENTS_THRESHOLD && (m + 1) * 100 >= 80 * (t + 1);
        let without = t > TOTAL_EVENTS_THRESHOLD && m * 100 >= 80 * t;
        with || without
    }
}

/// Steps 2–3 of the query for the rows of one source before `boundary` (one hour), given
/// the time of the source's first row after them (`None`: there is none).
pub(super) fn aggregate(
    rows: Rows<'_>,
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
            sessions: Vec::new(),
        });
        *g.per_gap.entry(gap).or_insert(0) += 1;
        g.total += 1;
        g.src_bytes += key.4;
        g.dst_bytes += key.5;
        sample_session(&mut g.sessions, value.session);
    }
    groups
}

pub(super) fn make_alert(src: IpAddr, g: &Group, dport: Option<u16>, bin: Timestamp, time: Timestamp) -> Alert {
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
        sessions: g.sessions.clone(),
    }
}
