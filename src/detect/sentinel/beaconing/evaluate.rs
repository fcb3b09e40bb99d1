//! When a source's next hour is decidable, and deciding it: the sweep picks the sources
//! whose wake-up time the horizon has reached (or all of them at the end of input), and
//! each is evaluated hour by hour until an hour must wait for the horizon or for the
//! source's next row.

use super::groups::{aggregate, make_alert, Group};
use super::ip_order::{ip_string_order, V4Text};
use super::rows::first_key_at;
use super::{SentinelBeaconing, SourceRows, BIN_WIDTH};
use crate::detect::Alert;
use crate::time::Timestamp;
use std::net::{IpAddr, Ipv4Addr};

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
    pub(super) fn sweep(&mut self, horizon: Option<Timestamp>, alerts: &mut Vec<Alert>) {
        let mut candidates: Vec<IpAddr> = match horizon {
            None => self.sources.keys().copied().collect(),
            Some(h) => {
                let mut c = Vec::new();
                while let Some((w, ips)) = self.waiting.pop_due(h) {
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
        // Deterministic alert order: by SrcIpAddr as the KQL sorts it (string order). The
        // sources are IPv4 (their destinations qualified): their string keys are computed
        // once each rather than at every comparison.
        let v4: Option<Vec<(V4Text, Ipv4Addr)>> = candidates
            .iter()
            .map(|ip| match ip {
                IpAddr::V4(a) => Some((V4Text::new(*a), *a)),
                IpAddr::V6(_) => None,
            })
            .collect();
        if let Some(mut keyed) = v4 {
            keyed.sort_unstable();
            candidates.clear();
            candidates.extend(keyed.into_iter().map(|(_, a)| IpAddr::V4(a)));
        } else {
            candidates.sort_unstable_by(|a, b| match (a, b) {
                (IpAddr::V4(x), IpAddr::V4(y)) => V4Text::new(*x).cmp(&V4Text::new(*y)),
                _ => (ip_string_order(*a), *a).cmp(&(ip_string_order(*b), *b)),
            });
        }
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
                    self.waiting.add(w, ip);
                    self.sources.insert(ip, source);
                }
                Progress::WaitForRow => {
                    self.sources.insert(ip, source);
                }
            }
        }
        if self.waiting.is_mostly_stale(self.sources.len()) {
            self.waiting.rebuild(self.sources.iter().filter_map(|(ip, s)| s.wake_at.map(|w| (*ip, w))));
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
                self.by_size.note(source.count, src);
            }
        }
    }
}
