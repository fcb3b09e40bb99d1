//! When a source's next hour is decidable, and deciding it: the sweep picks the sources
//! whose wake-up time the horizon has reached (or all of them at the end of input), and
//! each is evaluated hour by hour until an hour must wait for the horizon or for the
//! source's next row.

use super::groups::{aggregate, make_alert, Group};
use super::ip_order::{ip_string_order, V4Text};
use super::rows::{first_key_at, RowBlocks, RowKey, RowStore};
use super::{SentinelBeaconing, SourceRows, BIN_WIDTH, TOTAL_EVENTS_THRESHOLD};
use crate::detect::Alert;
use crate::time::Timestamp;
use hashbrown::hash_map::Entry;
use std::net::IpAddr;

enum Progress {
    /// Nothing left for this source.
    Empty,
    /// Wait until the horizon reaches this time.
    WaitUntil(Timestamp),
    /// Wait for the source's next row.
    WaitForRow,
}

impl SentinelBeaconing {
    /// Evaluates every source whose next hour may have become decidable; `None` = input over.
    ///
    /// Deterministic alert order: by SrcIpAddr as the KQL sorts it (string order). The
    /// evaluation of one source touches no other source's rows, so the sources are
    /// evaluated in any order (each in place, one lookup) and only this sweep's alerts (few)
    /// are put in that order (stable: a source's alerts keep their hour order).
    pub(super) fn sweep(&mut self, horizon: Option<Timestamp>, alerts: &mut Vec<Alert>) {
        let first_alert = alerts.len();
        let watermark = self.watermark;
        match horizon {
            None => {
                // Input over: every source is decided to its last hour and released.
                for (ip, mut source) in self.sources.drain() {
                    let (_, released) = evaluate_source(ip, &mut source, &mut self.blocks, None, watermark, alerts);
                    self.rows_total -= released;
                }
            }
            Some(h) => {
                self.settled = self.settled.max(h);
                while let Some((w, ips)) = self.waiting.pop_due(h) {
                    for ip in ips {
                        let Entry::Occupied(mut entry) = self.sources.entry(ip) else { continue };
                        let source = entry.get_mut();
                        if source.wake_at != Some(w) {
                            continue; // stale entry
                        }
                        source.wake_at = None;
                        let (progress, released) =
                            evaluate_source(ip, source, &mut self.blocks, horizon, watermark, alerts);
                        self.rows_total -= released;
                        match progress {
                            Progress::Empty => {
                                entry.remove();
                                continue;
                            }
                            // The new time is past the horizon: not popped again this sweep.
                            Progress::WaitUntil(w) => {
                                source.wake_at = Some(w);
                                self.waiting.add(w, ip);
                            }
                            Progress::WaitForRow => {}
                        }
                        if released > 0 {
                            self.by_size.note(source.count, ip);
                        }
                    }
                }
            }
        }
        if alerts.len() - first_alert > 1 {
            alerts[first_alert..].sort_by(|a, b| src_string_order(a.src, b.src));
        }
        if self.waiting.is_mostly_stale(self.sources.len()) {
            self.waiting.rebuild(self.sources.iter().filter_map(|(ip, s)| s.wake_at.map(|w| (*ip, w))));
        }
        // Far below the cap: no eviction soon, so stop keeping the eviction order.
        if self.rows_total < self.max_rows / 2 {
            self.by_size.disarm();
        }
    }
}

/// Decides the hours of `source` that can be decided, in order; returns where it stands
/// and how many rows (counting copies) were released. Only the source's final count needs
/// an entry in the eviction order (its earlier ones would be stale at once).
fn evaluate_source(
    src: IpAddr,
    source: &mut SourceRows,
    blocks: &mut RowBlocks,
    horizon: Option<Timestamp>,
    watermark: Timestamp,
    alerts: &mut Vec<Alert>,
) -> (Progress, usize) {
    // Fast path for the commonest source, one distinct row (what the loop below would do):
    // its hour can never alert (one row), so it is released once the horizon has passed
    // the hour, whatever its gap.
    if let Some((key, row)) = source.rows.single() {
        let bin_end = key.0.bin_start(BIN_WIDTH).saturating_add(BIN_WIDTH);
        if horizon.is_some_and(|h| bin_end > h) {
            return (Progress::WaitUntil(bin_end), 0);
        }
        let released = row.copies as usize;
        source.rows = RowStore::default();
        source.count -= released;
        return (Progress::Empty, released);
    }
    let mut released = 0;
    loop {
        let rows = source.rows.view(blocks);
        let Some(first) = rows.first_key() else {
            return (Progress::Empty, released);
        };
        let bin = first.0.bin_start(BIN_WIDTH);
        let bin_end = bin.saturating_add(BIN_WIDTH);
        if let Some(h) = horizon {
            if bin_end > h {
                return (Progress::WaitUntil(bin_end), released);
            }
        }
        let boundary = first_key_at(bin_end);
        let next_row_time = rows.first_key_from(&boundary).map(|k| k.0);
        // The first row after the hour, if it is certain; Err(wait) otherwise.
        let successor: Result<Option<Timestamp>, Progress> = match (next_row_time, horizon) {
            (Some(t), Some(h)) if t <= h => Ok(Some(t)),
            (Some(t), None) => Ok(Some(t)),
            (None, None) => Ok(None),
            (Some(t), Some(_)) => Err(Progress::WaitUntil(t)),
            (None, Some(_)) => Err(Progress::WaitForRow),
        };
        // A group counts at most one row per distinct row of the hour (twins have a gap
        // of 0): with no more distinct rows than the threshold no group can alert, even
        // with the last row's gap still unknown, so the hour is decided now.
        if rows.at_most_before(&boundary, TOTAL_EVENTS_THRESHOLD as usize) {
            if let Err(wait @ Progress::WaitUntil(_)) = successor {
                return (wait, released);
            }
            released += release_hour(source, blocks, &boundary);
            continue;
        }
        let groups = match successor {
            Ok(succ) => aggregate(rows, &boundary, succ),
            Err(wait @ Progress::WaitUntil(_)) => return (wait, released),
            Err(wait) => {
                // The source may stay quiet for long: decide now if the group holding
                // the last row could not alert whatever its gap.
                let groups = aggregate(rows, &boundary, None);
                let last = rows.last_key_before(&boundary).expect("bin has rows");
                let pending = (last.1, last.2);
                if groups.get(&pending).is_some_and(Group::could_alert_with_one_more) {
                    return (wait, released);
                }
                groups
            }
        };
        let time = bin_end.min(watermark.max(bin));
        for ((_, dport), g) in &groups {
            if g.alerts() {
                alerts.push(make_alert(src, g, *dport, bin, time));
            }
        }
        released += release_hour(source, blocks, &boundary);
    }
}

/// Drops the evaluated rows of `source` before `boundary`; returns how many.
fn release_hour(source: &mut SourceRows, blocks: &mut RowBlocks, boundary: &RowKey) -> usize {
    let released = source.rows.release_before(blocks, boundary);
    source.count -= released;
    released
}

/// `SrcIpAddr` order as the KQL sorts it: as strings (an integer compare for IPv4).
fn src_string_order(a: IpAddr, b: IpAddr) -> std::cmp::Ordering {
    match (a, b) {
        (IpAddr::V4(x), IpAddr::V4(y)) => V4Text::new(x).cmp(&V4Text::new(y)),
        _ => (ip_string_order(a), a).cmp(&(ip_string_order(b), b)),
    }
}
