//! Enhanced beaconing detection: one series per (src, dst, dport, protocol), a ring
//! buffer of the last sessions' start times and byte counts, scored on every new
//! session with robust statistics in the spirit of RITA's beacon analyzer: regular
//! gaps (small MAD relative to the median, Bowley skew near 0), consistent request
//! sizes, and enough check-ins. Jitter up to ~50 % (Cobalt Strike) still scores high,
//! exponential (Poisson) gaps and bursts do not. Sub-second bursts are collapsed.
//! Heavier jitter (up to ±90 %) is scored on persistence, bounded gaps and sizes
//! instead (see `jitter.rs`).
//!
//! Each series has a sibling made of the exchanges inside sessions that stay open
//! ([`FlowEvent::Exchange`]): a check-in every 20 s over one TCP connection, one
//! HTTP/1.1 keep-alive connection or one UDP 5-tuple is scored exactly like 20 s
//! connections, on the exchanges' start times and payload bytes. Its alerts say
//! `InSession` and name the sessions; a finding alerted by one sibling is not alerted
//! again by the other within the suppression period.

use super::beats::Beats;
use super::bounded::BoundedMap;
use super::config::{Allowlist, EnhancedConfig};
use super::jitter::{self, gap_shape, size_consistency};
use super::robust::summarize;
use super::scan::{lists_any, round};
use crate::detect::alert::SESSION_SAMPLE;
use crate::detect::{
    Alert, AlertType, DetectConfig, DetectionMode, Detector, DetectorUsage, EvictionCost, Severity, TableUsage, Tracks,
};
use crate::flow::key::{addr_bits, bits_addr};
use crate::flow::{FlowEvent, FlowRecord, SessionExchange, SessionStart};
use crate::net::NetSet;
use crate::time::{Duration, Timestamp};
use serde_json::Map;
use std::net::IpAddr;

/// The addresses are kept as [`addr_bits`] gives them (low word first, in `u64`s so the
/// key keeps its size and the slot its layout), with their IPv6 flags in `v6` (bit 0 the
/// source's, bit 1 the destination's): converted once per event, where `IpAddr`s were
/// converted again by each hash of the key (two for a key the full map lacks: the
/// table's and the fixed one of its nursery and admission).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SeriesKey {
    src: [u64; 2],
    dst: [u64; 2],
    dport: u16,
    proto: u8,
    v6: u8,
    /// The sibling series of exchanges inside sessions.
    inside: bool,
}

impl SeriesKey {
    fn src(&self) -> IpAddr {
        bits_addr(u128::from(self.src[0]) | u128::from(self.src[1]) << 64, self.v6 & 1 != 0)
    }
    fn dst(&self) -> IpAddr {
        bits_addr(u128::from(self.dst[0]) | u128::from(self.dst[1]) << 64, self.v6 & 2 != 0)
    }
}

/// Three word-sized hasher writes instead of the derived field-by-field hash (hot path).
impl std::hash::Hash for SeriesKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(u128::from(self.src[0]) | u128::from(self.src[1]) << 64);
        state.write_u128(u128::from(self.dst[0]) | u128::from(self.dst[1]) << 64);
        let families = u32::from(self.v6) | u32::from(self.inside) << 2;
        state.write_u32(u32::from(self.dport) | u32::from(self.proto) << 16 | families << 24);
    }
}

#[derive(Clone, Copy, Debug)]
struct Beat {
    ts: Timestamp,
    /// The session's flow-table id (for an exchange: the session it happened in).
    id: u64,
    /// Byte counts once the session's End record arrived (IP bytes); an exchange's
    /// payload bytes.
    bytes: Option<(u64, u64)>,
}

/// `repr(C)`: the beats, read by every event, at the front.
#[repr(C)]
struct Series {
    beats: Beats<Beat>,
    first_seen: Timestamp,
    connections: u64,
    collapsed: u64,
    alerted_at: Option<Timestamp>,
}

/// Which evidence made the score.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// Regular gaps (robust MAD/median, skew, coverage).
    Regular,
    /// Heavy jitter: persistence, bounded gaps and consistent sizes.
    Jittered,
}

impl Pattern {
    pub fn as_str(self) -> &'static str {
        match self {
            Pattern::Regular => "Regular",
            Pattern::Jittered => "Jittered",
        }
    }
}

/// Scores of one series at one moment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BeaconScore {
    pub score: f64,
    pub timing: f64,
    /// `None` when too few sessions have ended to judge sizes.
    pub bytes: Option<f64>,
    pub count: f64,
    pub interval: f64,
    pub jitter: f64,
    pub skew: f64,
    pub mean_src_bytes: f64,
    pub mean_dst_bytes: f64,
    pub pattern: Pattern,
    /// Share of bins (two mean gaps wide) across the span holding a check-in.
    pub persistence: f64,
    /// Longest gap over the mean gap.
    pub max_gap_ratio: f64,
    /// Coefficient of variation of the gaps.
    pub gap_cv: f64,
}

/// Gap coefficient of variation up to which the regular path's dispersion factor is 1
/// (falling to 0 over the next 0.4): `0.8 − 1.5/√gaps`, at most 0.6 — 0.23 at 7 gaps,
/// 0.46 at 19, 0.6 from 57. A handful of exponential gaps often has a CV near 0.5.
pub fn regular_cv_bound(gaps: usize) -> f64 {
    (0.8 - 1.5 / (gaps.max(1) as f64).sqrt()).min(0.6)
}

/// Scores start times (seconds) and per-session (src, dst) bytes; `None` when the
/// series is not yet eligible (too few sessions, span too short, period out of range).
pub fn score_series(times: &[f64], bytes: &[(u64, u64)], cfg: &EnhancedConfig) -> Option<BeaconScore> {
    if times.len() < cfg.beacon_min_connections {
        return None;
    }
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let g = summarize(&gaps);
    if g.median < cfg.beacon_min_interval_secs || g.median > cfg.beacon_max_interval_secs {
        return None;
    }
    let span = times[times.len() - 1] - times[0];
    if span < cfg.beacon_min_periods * g.median {
        return None;
    }
    let jitter_ratio = g.mad / g.median;
    let regularity = (1.0 - (jitter_ratio / cfg.beacon_jitter_tolerance).powi(2)).clamp(0.0, 1.0);
    let skew_score = 1.0 - g.bowley.abs();
    // Coverage: a beacon's regular gaps fill its whole span (n·median ≈ span); bursts
    // separated by long pauses have small "regular" gaps covering little of the span.
    let coverage = (gaps.len() as f64 * g.median / span.max(f64::MIN_POSITIVE)).min(1.0);
    // Dispersion: exponential (Poisson) gaps have a coefficient of variation near 1, a
    // beacon's stay well under 0.6 even with a few missed check-ins; a small Poisson
    // sample can still look regular to the robust statistics above, and its CV is biased
    // low, so the bound grows with the sample (see `regular_cv_bound`).
    let shape = gap_shape(times, &gaps);
    let cv_ok = regular_cv_bound(gaps.len());
    let dispersion = ((cv_ok + 0.4 - shape.cv) / 0.4).clamp(0.0, 1.0);
    let timing = (0.75 * regularity + 0.25 * skew_score) * (coverage / 0.6).min(1.0) * dispersion;
    // Confidence grows with the number of gaps; full at 24 (RITA also rewards count).
    let count = (gaps.len() as f64 / 24.0).min(1.0);
    let (bytes_score, mean_src, mean_dst) = if bytes.len() >= 3 {
        let src: Vec<f64> = bytes.iter().map(|b| b.0 as f64).collect();
        let dst: Vec<f64> = bytes.iter().map(|b| b.1 as f64).collect();
        let s = summarize(&src);
        let score = 0.7 * size_consistency(&src) + 0.3 * (1.0 - s.bowley.abs());
        (Some(score), s.mean, summarize(&dst).mean)
    } else {
        (None, 0.0, 0.0)
    };
    let score = match bytes_score {
        Some(b) => 0.65 * timing + 0.15 * count + 0.2 * b,
        None => (0.65 * timing + 0.15 * count) / 0.8,
    };
    let regular = BeaconScore {
        score: score.clamp(0.0, 1.0),
        timing,
        bytes: bytes_score,
        count,
        interval: g.median,
        jitter: g.mad,
        skew: g.bowley,
        mean_src_bytes: mean_src,
        mean_dst_bytes: mean_dst,
        pattern: Pattern::Regular,
        persistence: shape.persistence,
        max_gap_ratio: shape.max_ratio,
        gap_cv: shape.cv,
    };
    // Regular timing wins: the jittered path is only for what it cannot explain (a
    // series the regular path alerts on stays `Regular`, whatever the jittered score).
    match jitter::score(&shape, gaps.len(), bytes, cfg) {
        Some(j) if j.score > regular.score && regular.score < cfg.beacon_threshold => Some(BeaconScore {
            score: j.score,
            timing: j.timing,
            bytes: Some(j.sizes),
            // The median of gaps uniform over a wide range is a poor period estimate.
            interval: shape.mean,
            pattern: Pattern::Jittered,
            ..regular
        }),
        _ => Some(regular),
    }
}

pub struct BeaconDetector {
    cfg: EnhancedConfig,
    home: NetSet,
    allow: Allowlist,
    /// Whether `allow` lists anything (most configurations list nothing: no per-event check).
    allow_any: bool,
    suppression: Duration,
    series: BoundedMap<SeriesKey, Series>,
    /// `cfg.beacon_min_gap_secs` and `cfg.beacon_horizon_secs` as durations (per event).
    min_gap: Duration,
    horizon: Duration,
    last_sweep: Timestamp,
    /// Whether a reload changed what [`BeaconDetector::in_scope`] depends on: until then a
    /// session from outside the home network has no series, so its End needs no lookup.
    scope_changed: bool,
    /// Scratch buffers for scoring a series (reused, so scoring does not allocate).
    times: Vec<f64>,
    bytes: Vec<(u64, u64)>,
}

fn non_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            a.is_multicast() || a.is_broadcast() || a.is_link_local() || a.is_unspecified() || a.is_loopback()
        }
        IpAddr::V6(a) => {
            a.is_multicast() || a.is_unspecified() || a.is_loopback() || (a.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

impl BeaconDetector {
    pub fn new(cfg: &DetectConfig) -> Self {
        BeaconDetector {
            cfg: cfg.enhanced.clone(),
            home: cfg.home_net.clone(),
            allow: Allowlist::new(&cfg.enhanced).unwrap_or_default(),
            allow_any: lists_any(&cfg.enhanced),
            suppression: cfg.suppression,
            series: BoundedMap::new(cfg.enhanced.beacon_max_series),
            min_gap: Duration::from_secs_f64(cfg.enhanced.beacon_min_gap_secs),
            horizon: Duration::from_secs(cfg.enhanced.beacon_horizon_secs as i64),
            last_sweep: Timestamp::ZERO,
            scope_changed: false,
            times: Vec::new(),
            bytes: Vec::new(),
        }
    }

    /// Whether sessions from `src` to `dst:dport` have series. Asked per start and
    /// exchange (inlined: no call, no copies of the addresses); the tests are pure, so
    /// the cheapest run first: the allowed port (one compare by default), then the home
    /// network (mostly one bit test, see [`NetSet`]) and the destination's kind.
    #[inline(always)]
    fn in_scope(&self, src: IpAddr, dst: IpAddr, dport: u16) -> bool {
        !match self.cfg.beacon_allow_ports.as_slice() {
            // The default lists one port: one compare instead of a generic slice search.
            [port] => *port == dport,
            ports => ports.contains(&dport),
        } && self.home.contains(src)
            && !non_unicast(dst)
            && (self.cfg.beacon_internal || !self.home.contains(dst))
            && (!self.allow_any || !self.allow.pair_allowed(src, dst))
    }

    #[inline]
    fn key(src: IpAddr, dst: IpAddr, dport: Option<u16>, proto: u8, inside: bool) -> SeriesKey {
        let ((src, src_v6), (dst, dst_v6)) = (addr_bits(src), addr_bits(dst));
        SeriesKey {
            src: [src as u64, (src >> 64) as u64],
            dst: [dst as u64, (dst >> 64) as u64],
            dport: dport.unwrap_or(0),
            proto,
            v6: u8::from(src_v6) | u8::from(dst_v6) << 1,
            inside,
        }
    }

    fn on_start(&mut self, s: &SessionStart, alerts: &mut Vec<Alert>) {
        if s.segment != 0 || !self.in_scope(s.src, s.dst, s.dport.unwrap_or(0)) {
            return;
        }
        let key = Self::key(s.src, s.dst, s.dport, s.protocol, false);
        self.observe(key, Beat { ts: s.ts, id: s.id, bytes: None }, s.ts, alerts);
    }

    fn on_exchange(&mut self, x: &SessionExchange, alerts: &mut Vec<Alert>) {
        if !self.cfg.beacon_in_session || !self.in_scope(x.src, x.dst, x.dport.unwrap_or(0)) {
            return;
        }
        let key = Self::key(x.src, x.dst, x.dport, x.protocol, true);
        let beat = Beat { ts: x.start, id: x.id, bytes: Some((x.src_payload, x.dst_payload)) };
        self.observe(key, beat, x.end, alerts);
    }

    /// Adds a beat (a session start or an exchange) to its series, scores the series
    /// and alerts; `now` is the capture time the beat is known at.
    #[inline]
    fn observe(&mut self, key: SeriesKey, beat: Beat, now: Timestamp, alerts: &mut Vec<Alert>) {
        let (history, horizon, min_gap) = (self.cfg.beacon_history.max(2), self.horizon, self.min_gap);
        // A new series is made with its first beat (written once): nothing to collapse,
        // expire or suppress, and one beat is too few to score. Most series never get a
        // second one. (A series in the map always has beats: an expired one is removed.)
        let mut made = false;
        let series = self.series.touch_or_insert_with(key, || {
            made = true;
            Series { beats: Beats::One(beat), first_seen: beat.ts, connections: 1, collapsed: 0, alerted_at: None }
        });
        if made {
            if self.cfg.beacon_min_connections > 1 {
                return;
            }
            // One beat may score: the series takes it below, like any other.
            (series.beats, series.connections) = (Beats::new(), 0);
        }
        // Session starts arrive in time order; exchanges of several sessions of one
        // series may not (each is reported when its own session pauses again).
        let near = |b: &Beat| b.ts.0.abs_diff(beat.ts.0) < min_gap.0.unsigned_abs();
        let (at, collapse) = match series.beats.back() {
            Some(last) if last.ts > beat.ts => {
                let at = series.beats.len() - series.beats.iter().rev().take_while(|b| b.ts > beat.ts).count();
                let neighbours = [at.checked_sub(1), Some(at)];
                (at, neighbours.into_iter().flatten().any(|i| series.beats.get(i).is_some_and(near)))
            }
            last => (series.beats.len(), last.is_some_and(near)),
        };
        if collapse {
            series.collapsed += 1;
            return;
        }
        let cutoff = beat.ts.saturating_sub(horizon);
        let mut at = at;
        while series.beats.front().is_some_and(|b| b.ts < cutoff) {
            series.beats.pop_front();
            at = at.saturating_sub(1);
        }
        if series.beats.is_empty() || beat.ts < series.first_seen {
            series.first_seen = beat.ts;
        }
        while series.beats.len() >= history {
            series.beats.pop_front();
            at = at.saturating_sub(1);
        }
        series.beats.insert(at, beat);
        series.connections += 1;
        if series.alerted_at.is_some_and(|at| now.since(at) < self.suppression) {
            return;
        }
        // score_series judges nothing below beacon_min_connections sessions: skip the copies.
        if series.beats.len() < self.cfg.beacon_min_connections {
            return;
        }
        let first = series.beats.front().map_or(beat.ts, |b| b.ts);
        self.times.clear();
        self.times.extend(series.beats.iter().map(|b| b.ts.since(first).as_secs_f64()));
        self.bytes.clear();
        self.bytes.extend(series.beats.iter().filter_map(|b| b.bytes));
        let Some(sc) = score_series(&self.times, &self.bytes, &self.cfg) else {
            return;
        };
        if sc.score < self.cfg.beacon_threshold {
            return;
        }
        let found = Finding::of(series, sc);
        // A finding its sibling series (sessions / exchanges of the same pair) alerted
        // within the suppression period is the same finding.
        let sibling = SeriesKey { inside: !key.inside, ..key };
        if self.series.get(&sibling).and_then(|s| s.alerted_at).is_some_and(|at| now.since(at) < self.suppression) {
            return;
        }
        if let Some(series) = self.series.touch(&key) {
            series.alerted_at = Some(now);
        }
        alerts.push(found.alert(&key, now));
    }

    fn on_end(&mut self, r: &FlowRecord) {
        // Series are created in scope only (`on_start`), so only from home sources: from
        // elsewhere (a flood of outside sources) there is none to look up.
        if r.segment != 0 || (!self.scope_changed && !self.home.contains(r.src)) {
            return;
        }
        let key = Self::key(r.src, r.dst, r.dport, r.protocol, false);
        if let Some(series) = self.series.touch(&key) {
            if let Some(beat) = series.beats.iter_mut().rev().find(|b| b.ts == r.start) {
                beat.bytes = Some((r.src_bytes, r.dst_bytes));
            }
        }
    }
}

/// What an alert reports about a series that scored above the threshold.
struct Finding {
    score: BeaconScore,
    connections: u64,
    collapsed: u64,
    first_seen: Timestamp,
    last_seen: Timestamp,
    /// Distinct sessions behind the scored beats, latest last (at most [`SESSION_SAMPLE`],
    /// the alerts' bounded sample of `NetworkSessionIds`).
    sessions: Vec<u64>,
    /// Distinct sessions among the scored beats.
    distinct_sessions: usize,
}

impl Finding {
    fn of(series: &Series, score: BeaconScore) -> Self {
        let mut ids: Vec<u64> = series.beats.iter().map(|b| b.id).collect();
        ids.sort_unstable();
        ids.dedup();
        let distinct_sessions = ids.len();
        let mut sessions: Vec<u64> = Vec::with_capacity(SESSION_SAMPLE.min(distinct_sessions));
        for b in series.beats.iter().rev() {
            if sessions.len() == SESSION_SAMPLE {
                break;
            }
            if !sessions.contains(&b.id) {
                sessions.push(b.id);
            }
        }
        sessions.reverse();
        Finding {
            score,
            connections: series.connections,
            collapsed: series.collapsed,
            first_seen: series.first_seen,
            last_seen: series.beats.back().map_or(series.first_seen, |b| b.ts),
            sessions,
            distinct_sessions,
        }
    }

    fn alert(self, key: &SeriesKey, now: Timestamp) -> Alert {
        let sc = &self.score;
        let mut ev = Map::new();
        ev.insert("Score".into(), round(sc.score, 3).into());
        ev.insert("TimingScore".into(), round(sc.timing, 3).into());
        if let Some(b) = sc.bytes {
            ev.insert("BytesScore".into(), round(b, 3).into());
        }
        ev.insert("Pattern".into(), sc.pattern.as_str().into());
        ev.insert("IntervalSeconds".into(), round(sc.interval, 3).into());
        ev.insert("JitterSeconds".into(), round(sc.jitter, 3).into());
        ev.insert("JitterPercent".into(), round(100.0 * sc.jitter / sc.interval, 1).into());
        ev.insert("Skew".into(), round(sc.skew, 3).into());
        ev.insert("Persistence".into(), round(sc.persistence, 3).into());
        ev.insert("MaxGapRatio".into(), round(sc.max_gap_ratio, 3).into());
        ev.insert("GapCV".into(), round(sc.gap_cv, 3).into());
        ev.insert("InSession".into(), key.inside.into());
        if key.inside {
            ev.insert("Exchanges".into(), self.connections.into());
            ev.insert("Connections".into(), self.distinct_sessions.into());
        } else {
            ev.insert("Connections".into(), self.connections.into());
        }
        ev.insert("CollapsedBursts".into(), self.collapsed.into());
        ev.insert("FirstSeen".into(), self.first_seen.rfc3339().into());
        ev.insert("LastSeen".into(), self.last_seen.rfc3339().into());
        ev.insert("MeanSrcBytes".into(), round(sc.mean_src_bytes, 1).into());
        ev.insert("MeanDstBytes".into(), round(sc.mean_dst_bytes, 1).into());
        ev.insert("Protocol".into(), protocol_name(key.proto).into());
        let name = match (key.inside, self.distinct_sessions) {
            (false, _) => format!("Beaconing every {:.0}s", sc.interval),
            (true, 1) => format!("Beaconing every {:.0}s inside one session", sc.interval),
            (true, n) => format!("Beaconing every {:.0}s inside {n} sessions", sc.interval),
        };
        Alert {
            alert_type: AlertType::Beaconing,
            mode: DetectionMode::Enhanced,
            time: now,
            name,
            severity: if sc.score >= 0.9 { Severity::High } else { Severity::Medium },
            tactics: &["CommandAndControl"],
            techniques: &["T1071", "T1571"],
            src: key.src(),
            dst: Some(key.dst()),
            dport: (key.proto == 6 || key.proto == 17).then_some(key.dport),
            evidence: ev,
            sessions: self.sessions,
        }
    }
}

pub(crate) fn protocol_name(p: u8) -> String {
    match p {
        6 => "TCP".into(),
        17 => "UDP".into(),
        1 => "ICMP".into(),
        58 => "ICMPv6".into(),
        n => n.to_string(),
    }
}

impl Detector for BeaconDetector {
    fn on_event(&mut self, event: &FlowEvent, alerts: &mut Vec<Alert>) {
        match event {
            FlowEvent::Start(s) => self.on_start(s, alerts),
            FlowEvent::End(r) => self.on_end(r),
            FlowEvent::Exchange(x) => self.on_exchange(x, alerts),
        }
    }

    fn on_time(&mut self, now: Timestamp, _alerts: &mut Vec<Alert>) {
        if now.since(self.last_sweep) < Duration::from_secs(300) {
            return;
        }
        self.last_sweep = now;
        let cutoff = now.saturating_sub(self.horizon);
        self.series.retain(|_, s| s.beats.back().is_some_and(|b| b.ts >= cutoff));
    }

    fn finish(&mut self, _alerts: &mut Vec<Alert>) {}

    fn reload(&mut self, cfg: &DetectConfig) {
        // Series created under the old scope may be out of the new one.
        self.scope_changed |= cfg.enhanced != self.cfg || cfg.home_net != self.home;
        self.cfg = cfg.enhanced.clone();
        self.home = cfg.home_net.clone();
        self.allow = Allowlist::new(&cfg.enhanced).unwrap_or_default();
        self.allow_any = lists_any(&cfg.enhanced);
        self.suppression = cfg.suppression;
        self.series.set_cap(self.cfg.beacon_max_series);
        self.min_gap = Duration::from_secs_f64(self.cfg.beacon_min_gap_secs);
        self.horizon = Duration::from_secs(self.cfg.beacon_horizon_secs as i64);
    }

    fn usage(&self) -> DetectorUsage {
        DetectorUsage {
            tables: vec![TableUsage {
                detector: "enhanced beaconing",
                table: "series",
                entries: self.series.len() as u64,
                cap: Some(self.series.cap() as u64),
                evictions: self.series.evictions(),
                setting: Some("enhanced.beacon_max_series"),
                cost: EvictionCost::Detection,
                tracks: Tracks::Series,
                bytes: Some(self.series.len() as u64 * super::budget::SERIES_BYTES),
            }],
        }
    }
}
