//! Sentinel rule "Port scan detected (ASIM Network Session schema)" v1.0.6, streamed.
//!
//! The KQL keeps records whose `SrcIpAddr` is not private IPv4 (`ipv4_is_private(..) ==
//! False`, so IPv6 — where the function is null — is dropped) and is not the exact string
//! "127.0.0.1" or "::1", then per `SrcIpAddr` and `bin(TimeGenerated, 5m)` alerts when
//! `dcount(DstPortNumber) > 50` (null ports count nothing).
//!
//! Every [`FlowEvent::Start`] is one future record (TimeGenerated = session start), so the
//! rule runs on Starts: the alert is raised as soon as the 51st distinct port of a
//! (source, bin) arrives, once per (source, bin). Its `AttemptedPortsCount` and
//! `AttemptedPorts` are as of that moment (51 ports, in first-seen order), not the final
//! count of the bin; parity with the query is about which (SrcIpAddr, WindowStart) pairs
//! alert. The alert names the one destination all those ports went to, if there is one,
//! and the sessions that brought its first distinct ports. Memory: one bin per source (the newest seen); a Start for an older bin than the
//! source's current one is ignored and counted as late; sources are dropped when capture
//! time leaves their bin, and at most `max_sources` are tracked per bin.

use super::ports::PortList;
use super::record_time;
use crate::detect::alert::SESSION_SAMPLE;
use crate::detect::{Alert, AlertType, DetectionMode, Detector, DetectorUsage, Severity, Tracks};
use crate::flow::{FlowEvent, SessionStart};
use crate::net::{keyed_map, kusto_ipv4_is_private, KeyedMap};
use crate::time::{Duration, Timestamp};
use hashbrown::hash_map::Entry;
use serde_json::{Map, Value};
use std::net::{IpAddr, Ipv4Addr};

/// Rule name exactly as published (the double space is in the rule's `name`).
pub const RULE_NAME: &str = "Port scan detected  (ASIM Network Session schema)";
pub const SEVERITY: Severity = Severity::Medium;
pub const TACTICS: &[&str] = &["Discovery"];
pub const TECHNIQUES: &[&str] = &["T1046"];
/// `let PortScanThreshold = 50;` — alert when the distinct port count is greater.
pub const PORT_SCAN_THRESHOLD: usize = 50;
pub const BIN_WIDTH: Duration = Duration(300 * crate::time::NANOS_PER_SEC);
// A source's first Start brings one port at most: it never alerts. A second port moves the
// first one's session into the sample.
const _: () = assert!(PORT_SCAN_THRESHOLD >= 1 && SESSION_SAMPLE >= 2);

/// The KQL's source filter.
pub fn source_qualifies(src: IpAddr) -> bool {
    kusto_ipv4_is_private(src) == Some(false) && src != IpAddr::V4(Ipv4Addr::LOCALHOST)
}

struct SourceBin {
    bin: Timestamp,
    /// Distinct ports in first-seen order, the sessions that brought the first ones and
    /// the one destination all of them went to; `Alerted` once the alert is raised.
    ports: Ports,
}

impl SourceBin {
    /// The state of a source's first Start in `bin` (one port at most: never an alert).
    #[inline]
    fn first(bin: Timestamp, s: &SessionStart) -> Self {
        let ports = match (s.dport, s.dst) {
            (Some(port), IpAddr::V4(dst)) => Ports::One { port, dst, session: s.id },
            (Some(port), dst) => Ports::Many(ManyPorts::new(port, s.id, Some(dst))),
            (None, _) => Ports::None,
        };
        SourceBin { bin, ports }
    }
}

/// The distinct ports of a (source, bin). A one-port source — every source of a spoofed
/// flood — holds its port, session and (IPv4) destination inline: a table entry of 32
/// bytes with its IPv4 key, no allocation. The second port (or an IPv6 destination, which
/// a flow from an IPv4 source does not have in practice) moves them into one allocation.
enum Ports {
    None,
    One {
        port: u16,
        dst: Ipv4Addr,
        session: u64,
    },
    Many(Box<ManyPorts>),
    /// The alert was raised: nothing more is tracked in this bin.
    Alerted,
}

struct ManyPorts {
    ports: PortList,
    /// The sessions that brought the first `SESSION_SAMPLE` distinct ports.
    sessions: [u64; SESSION_SAMPLE],
    n_sessions: usize,
    /// The one destination every port went to; `None` once a second one is seen.
    target: Option<IpAddr>,
}

impl ManyPorts {
    #[cold]
    fn new(port: u16, session: u64, target: Option<IpAddr>) -> Box<Self> {
        let mut m = ManyPorts { ports: PortList::default(), sessions: [0; SESSION_SAMPLE], n_sessions: 1, target };
        m.ports.push(port);
        m.sessions[0] = session;
        Box::new(m)
    }
}

impl Ports {
    fn len(&self) -> usize {
        match self {
            Ports::None | Ports::Alerted => 0,
            Ports::One { .. } => 1,
            Ports::Many(m) => m.ports.len(),
        }
    }

    fn contains(&self, port: u16) -> bool {
        match self {
            Ports::None | Ports::Alerted => false,
            Ports::One { port: p, .. } => *p == port,
            Ports::Many(m) => m.ports.contains(&port),
        }
    }

    /// Adds a port not held yet, brought by `session` to `dst`.
    fn push(&mut self, port: u16, session: u64, dst: IpAddr) {
        match self {
            Ports::None | Ports::Alerted => {
                *self = match dst {
                    IpAddr::V4(dst) => Ports::One { port, dst, session },
                    IpAddr::V6(_) => Ports::Many(ManyPorts::new(port, session, Some(dst))),
                }
            }
            Ports::One { port: first, dst: first_dst, session: first_session } => {
                let target = (IpAddr::V4(*first_dst) == dst).then_some(dst);
                let mut m = ManyPorts::new(*first, *first_session, target);
                m.ports.push(port);
                m.sessions[1] = session;
                m.n_sessions = 2;
                *self = Ports::Many(m);
            }
            Ports::Many(m) => {
                m.ports.push(port);
                if m.n_sessions < SESSION_SAMPLE {
                    m.sessions[m.n_sessions] = session;
                    m.n_sessions += 1;
                }
                if m.target != Some(dst) {
                    m.target = None;
                }
            }
        }
    }

    /// The ports in first-seen order, their sessions and their one destination, leaving
    /// the state `Alerted`.
    fn take_for_alert(&mut self) -> (Vec<u16>, Vec<u64>, Option<IpAddr>) {
        match std::mem::replace(self, Ports::Alerted) {
            Ports::None | Ports::Alerted => (Vec::new(), Vec::new(), None),
            Ports::One { port, dst, session } => (vec![port], vec![session], Some(IpAddr::V4(dst))),
            Ports::Many(m) => (m.ports.as_slice().to_vec(), m.sessions[..m.n_sessions].to_vec(), m.target),
        }
    }

    /// Whether a table sweep keeps the source: alerted, or more than one port.
    fn keep_in_sweep(&self) -> bool {
        matches!(self, Ports::Alerted | Ports::Many(_))
    }
}

pub struct SentinelPortScan {
    max_sources: usize,
    /// Keyed by sender-chosen addresses (IPv4 only: the others do not qualify, so the
    /// key is the address's integer): randomly seeded.
    sources: KeyedMap<u32, SourceBin>,
    /// When the table is full, a sweep drops single-port sources (a spoofed flood's
    /// sources have one port each) — at most once per `max_sources / 8` refusals, so a
    /// flood costs O(1) per event. A real scanner has two ports after its second probe.
    next_sweep_at: u64,
    /// Start of the newest bin capture time has reached.
    current_bin: Timestamp,
    untracked: u64,
    late: u64,
    /// Sum of `ports.len()` over `sources`, kept as they change so `usage()` (asked after
    /// every batch) costs O(1) rather than a walk over the table.
    tracked_ports: u64,
}

impl SentinelPortScan {
    pub fn new(max_sources: usize) -> Self {
        SentinelPortScan {
            max_sources: max_sources.max(1),
            sources: keyed_map(),
            next_sweep_at: 0,
            current_bin: Timestamp(i64::MIN),
            untracked: 0,
            late: 0,
            tracked_ports: 0,
        }
    }

    /// Starts whose bin is older than their source's current bin (ignored).
    pub fn late_events(&self) -> u64 {
        self.late
    }

    #[inline]
    fn advance(&mut self, now: Timestamp) {
        // Still inside the current bin (nearly every call): no division, no call.
        if now >= self.current_bin && now < self.current_bin.saturating_add(BIN_WIDTH) {
            return;
        }
        self.enter_bin(now);
    }

    #[inline(never)]
    fn enter_bin(&mut self, now: Timestamp) {
        let bin = now.bin_start(BIN_WIDTH);
        if bin > self.current_bin {
            self.current_bin = bin;
            self.drop_sources(|s| s.bin >= bin);
        }
    }

    /// Keeps only the sources that `keep` accepts. When few stay (a new bin, a flood's
    /// sweep), they are moved into the emptied table (or, if none stay, the table is just
    /// cleared) rather than the others erased one by one: erasing leaves tombstones in a
    /// full table, and a table of tombstones is soon rehashed in place (a sixth of the
    /// rule's CPU under a SYN flood).
    fn drop_sources(&mut self, keep: impl Fn(&SourceBin) -> bool) {
        // One walk counts what stays and the ports of what goes.
        let (mut kept, mut dropped_ports) = (0, 0);
        for s in self.sources.values() {
            if keep(s) {
                kept += 1;
            } else {
                dropped_ports += s.ports.len() as u64;
            }
        }
        if kept == 0 {
            // (A flood's sweep: nothing stays, so nothing is moved either.)
            self.sources.clear();
        } else if kept * 4 < self.sources.len() {
            let mut stay = Vec::with_capacity(kept);
            stay.extend(self.sources.drain().filter(|(_, s)| keep(s)));
            self.sources.extend(stay);
        } else {
            self.sources.retain(|_, s| keep(s));
        }
        self.tracked_ports -= dropped_ports;
    }

    /// Frees room in a full table by dropping sources with a single port and no alert;
    /// true when at least an eighth of the table was freed.
    fn sweep(&mut self) -> bool {
        if self.untracked < self.next_sweep_at {
            return false;
        }
        let before = self.sources.len();
        self.drop_sources(|s| s.ports.keep_in_sweep());
        let freed = before - self.sources.len();
        self.untracked += freed as u64;
        if freed * 8 >= self.max_sources {
            return true;
        }
        self.next_sweep_at = self.untracked + (self.max_sources / 8).max(1) as u64;
        freed > 0
    }

    /// A Start from a qualifying source, `src` (IPv4) as an integer. Kept out of line so
    /// that the other events (and the Starts the rule ignores) cost no large frame.
    #[inline(never)]
    fn on_start(&mut self, src: u32, s: &SessionStart, alerts: &mut Vec<Alert>) {
        let dport = s.dport;
        // Bins are whole microseconds wide and start on one, so the record's time
        // (`record_time`, floored to the microsecond) is in the bin `s.ts` is in: no
        // division for it unless an alert is raised. A time in the current bin has its bin.
        let bin = if s.ts >= self.current_bin && s.ts < self.current_bin.saturating_add(BIN_WIDTH) {
            self.current_bin
        } else {
            s.ts.bin_start(BIN_WIDTH)
        };
        // (The length test first: one lookup per event while the table is not full.)
        if self.sources.len() >= self.max_sources && !self.sources.contains_key(&src) && !self.sweep() {
            self.untracked += 1;
            return;
        }
        let state = match self.sources.entry(src) {
            // A new source (every source of a spoofed flood): one lookup, one write.
            Entry::Vacant(new) => {
                let state = new.insert(SourceBin::first(bin, s));
                self.tracked_ports += state.ports.len() as u64;
                return;
            }
            Entry::Occupied(known) => known.into_mut(),
        };
        if bin < state.bin {
            self.late += 1;
            return;
        }
        if bin > state.bin {
            self.tracked_ports -= state.ports.len() as u64;
            *state = SourceBin::first(bin, s);
            self.tracked_ports += state.ports.len() as u64;
            return;
        }
        let Some(port) = dport else { return };
        if matches!(state.ports, Ports::Alerted) || state.ports.contains(port) {
            return;
        }
        state.ports.push(port, s.id, s.dst);
        self.tracked_ports += 1;
        if state.ports.len() > PORT_SCAN_THRESHOLD {
            self.tracked_ports -= state.ports.len() as u64;
            alerts.push(alert(bin, s, &mut state.ports));
        }
    }
}

/// The alert of a (source, bin) whose `ports` just passed the threshold (left `Alerted`);
/// `s` is the Start that brought the last port. Rare: kept out of the per-event frame.
#[cold]
#[inline(never)]
fn alert(bin: Timestamp, s: &SessionStart, ports: &mut Ports) -> Alert {
    let (ports, sessions, target) = ports.take_for_alert();
    let mut evidence = Map::new();
    evidence.insert("WindowStart".into(), Value::String(bin.rfc3339()));
    evidence.insert("AttemptedPortsCount".into(), ports.len().into());
    evidence.insert("AttemptedPorts".into(), ports.iter().map(|p| Value::from(*p)).collect::<Vec<_>>().into());
    Alert {
        alert_type: AlertType::PortScan,
        mode: DetectionMode::Sentinel,
        time: record_time(s.ts),
        name: RULE_NAME.into(),
        severity: SEVERITY,
        tactics: TACTICS,
        techniques: TECHNIQUES,
        src: s.src,
        dst: target,
        dport: None,
        evidence,
        sessions,
    }
}

impl Detector for SentinelPortScan {
    fn on_event(&mut self, event: &FlowEvent, alerts: &mut Vec<Alert>) {
        if let FlowEvent::Start(s) = event {
            self.advance(s.ts);
            if let IpAddr::V4(src) = s.src {
                if source_qualifies(s.src) {
                    self.on_start(src.to_bits(), s, alerts);
                }
            }
        }
    }
    fn on_time(&mut self, now: Timestamp, _alerts: &mut Vec<Alert>) {
        self.advance(now);
    }
    fn finish(&mut self, _alerts: &mut Vec<Alert>) {
        self.sources.clear();
        self.tracked_ports = 0;
    }
    fn usage(&self) -> DetectorUsage {
        let table = |table, entries, cap, evictions, setting, tracks| {
            super::table_usage("sentinel port scan", table, entries, cap, evictions, setting, tracks)
        };
        DetectorUsage {
            tables: vec![
                table(
                    "sources",
                    self.sources.len() as u64,
                    Some(self.max_sources as u64),
                    self.untracked,
                    Some("sentinel.portscan_max_sources"),
                    Tracks::Sources,
                ),
                // At most 51 per source: bounded through the sources table.
                table("ports", self.tracked_ports, None, 0, None, Tracks::Series),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{FirstPacket, SessionStart};

    fn start(id: u64, secs: f64, src: &str, dport: Option<u16>) -> FlowEvent {
        FlowEvent::Start(SessionStart {
            id,
            ts: Timestamp::from_secs_f64(secs),
            src: src.parse().unwrap(),
            dst: "192.0.2.10".parse().unwrap(),
            sport: dport.map(|_| 40000),
            dport,
            protocol: if dport.is_some() { 6 } else { 1 },
            segment: 0,
            first: FirstPacket::default(),
        })
    }

    /// Feeds `n` distinct ports from `src`, `step` seconds apart from `t0`.
    fn scan(det: &mut SentinelPortScan, src: &str, t0: f64, step: f64, n: u16) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for i in 0..n {
            det.on_event(&start(i as u64, t0 + step * i as f64, src, Some(1000 + i)), &mut alerts);
        }
        det.finish(&mut alerts);
        alerts
    }

    #[test]
    fn a_one_port_source_fits_a_small_table_entry() {
        assert!(std::mem::size_of::<(u32, SourceBin)>() <= 32);
    }

    #[test]
    fn fifty_one_distinct_ports_alert_once_fifty_do_not() {
        let mut det = SentinelPortScan::new(100);
        let alerts = scan(&mut det, "203.0.113.5", 1_700_000_100.0, 0.5, 80);
        assert_eq!(alerts.len(), 1);
        let a = &alerts[0];
        assert_eq!(a.name, RULE_NAME);
        assert_eq!(a.evidence["AttemptedPortsCount"], 51);
        assert_eq!(a.evidence["AttemptedPorts"][0], 1000);
        assert_eq!(a.evidence["AttemptedPorts"][50], 1050);
        assert_eq!(a.evidence["WindowStart"], Timestamp::from_secs(1_700_000_100).rfc3339());
        assert_eq!(a.time, Timestamp::from_secs_f64(1_700_000_100.0 + 25.0));

        let mut det = SentinelPortScan::new(100);
        assert!(scan(&mut det, "203.0.113.5", 1_700_000_100.0, 0.5, 50).is_empty());
    }

    #[test]
    fn the_alert_names_its_target_and_the_sessions_of_its_first_ports() {
        let mut det = SentinelPortScan::new(100);
        let mut alerts = Vec::new();
        // Session 1000 repeats port 1000 (not a new port): not in the sample.
        det.on_event(&start(7, 1_700_000_100.0, "203.0.113.5", Some(1000)), &mut alerts);
        det.on_event(&start(1000, 1_700_000_100.1, "203.0.113.5", Some(1000)), &mut alerts);
        for i in 1..60u16 {
            det.on_event(&start(7 + u64::from(i), 1_700_000_101.0, "203.0.113.5", Some(1000 + i)), &mut alerts);
        }
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].sessions, (7..7 + SESSION_SAMPLE as u64).collect::<Vec<_>>());
        assert_eq!(alerts[0].dst, Some("192.0.2.10".parse().unwrap()));

        // One port on a second host: no single target any more.
        let mut det = SentinelPortScan::new(100);
        let mut alerts = Vec::new();
        let mut other = start(1, 1_700_000_100.0, "203.0.113.5", Some(1));
        if let FlowEvent::Start(s) = &mut other {
            s.dst = "192.0.2.11".parse().unwrap();
        }
        det.on_event(&other, &mut alerts);
        for i in 2..60u16 {
            det.on_event(&start(u64::from(i), 1_700_000_101.0, "203.0.113.5", Some(i)), &mut alerts);
        }
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].dst, None);
        assert_eq!(alerts[0].sessions.len(), SESSION_SAMPLE);
    }

    #[test]
    fn repeated_ports_and_icmp_add_nothing() {
        let mut det = SentinelPortScan::new(100);
        let mut alerts = Vec::new();
        for i in 0..200u64 {
            det.on_event(&start(i, 1_700_000_100.0, "203.0.113.5", Some(1000 + (i % 50) as u16)), &mut alerts);
            det.on_event(&start(1000 + i, 1_700_000_100.0, "203.0.113.5", None), &mut alerts);
        }
        assert!(alerts.is_empty());
    }

    #[test]
    fn private_loopback_and_ipv6_sources_are_ignored() {
        for src in ["10.1.2.3", "172.16.0.9", "192.168.1.1", "127.0.0.1", "2001:db8::1", "::1"] {
            let mut det = SentinelPortScan::new(100);
            assert!(scan(&mut det, src, 1_700_000_100.0, 0.1, 100).is_empty(), "{src}");
        }
        // Only the exact string 127.0.0.1 is excluded; the rest of 127/8 is "not private".
        let mut det = SentinelPortScan::new(100);
        assert_eq!(scan(&mut det, "127.0.0.2", 1_700_000_100.0, 0.1, 100).len(), 1);
    }

    #[test]
    fn a_scan_split_by_a_bin_boundary_does_not_alert() {
        // 1_700_000_100 is a 5-minute boundary; 45 ports before it and 45 after.
        let mut det = SentinelPortScan::new(100);
        assert!(scan(&mut det, "203.0.113.5", 1_700_000_100.0 - 45.0, 1.0, 90).is_empty());
    }

    #[test]
    fn source_cap_counts_untracked_sources() {
        let mut det = SentinelPortScan::new(1);
        let mut alerts = Vec::new();
        det.on_event(&start(1, 1_700_000_100.0, "203.0.113.5", Some(1)), &mut alerts);
        det.on_event(&start(2, 1_700_000_101.0, "203.0.113.6", Some(1)), &mut alerts);
        assert_eq!(det.usage().sources(), 1);
        assert_eq!(det.usage().evictions(), 1);
        // The next bin frees the table.
        det.on_time(Timestamp::from_secs(1_700_000_400), &mut alerts);
        assert_eq!(det.usage().sources(), 0);
    }

    #[test]
    fn a_spoofed_flood_filling_the_table_does_not_hide_a_scanner() {
        let mut det = SentinelPortScan::new(1000);
        let mut alerts = Vec::new();
        let t0 = 1_700_000_100.0;
        let mut id = 0;
        for i in 0..30_000u32 {
            id += 1;
            let spoofed = std::net::Ipv4Addr::from(0xC633_0000 | (i * 7919 % 65_536)).to_string();
            det.on_event(&start(id, t0 + i as f64 * 1e-3, &spoofed, Some(80)), &mut alerts);
            if i % 300 == 0 {
                id += 1;
                let port = 1000 + (i / 300) as u16;
                det.on_event(&start(id, t0 + i as f64 * 1e-3, "203.0.113.66", Some(port)), &mut alerts);
            }
        }
        assert!(det.usage().sources() <= 1000);
        assert!(det.usage().evictions() > 0);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].src.to_string(), "203.0.113.66");
    }

    #[test]
    fn usage_counts_tracked_ports_through_bins_sweeps_and_alerts() {
        // A small table (sweeps), sources in several bins (drops), scanners (alerts), a
        // late event: after every event the running count equals a walk over the table.
        let mut det = SentinelPortScan::new(40);
        let mut alerts = Vec::new();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for id in 0..20_000u64 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let src = format!("203.0.113.{}", rng % 60);
            let port = if rng % 11 == 0 { None } else { Some((rng >> 8) as u16 % 120) };
            // Mostly forward in time, across 5-minute bins, sometimes a little back.
            let secs = 1_700_000_000.0 + id as f64 * 0.05 - (rng % 7) as f64 * 5.0;
            det.on_event(&start(id, secs, &src, port), &mut alerts);
            let walked: u64 = det.sources.values().map(|s| s.ports.len() as u64).sum();
            assert_eq!(det.usage().series(), walked, "after event {id}");
        }
        assert!(!alerts.is_empty() && det.untracked > 0 && det.late_events() > 0);
        det.finish(&mut alerts);
        assert_eq!(det.usage().series(), 0);
    }
}
