//! Enhanced port-scan detection: per-source sliding windows of distinct targets
//! (dst, port, protocol) with their first-contact outcomes, scored with a Threshold
//! Random Walk likelihood ratio (Jung et al. 2004). Failures (REJ, S0, RSTOS0, ICMP
//! unreachable, unanswered UDP, stealth probes) push a source towards "scanner",
//! successes push it back, so busy clients, NAT gateways, resolvers and servers stay
//! quiet while a scanner is named after a handful of probes. Stealth and fingerprinted
//! probes fail at Start, and many pending probes of one host alert at once, so alerts
//! need not wait for idle timeouts.
//!
//! A finding is a (source, protocol, probe type): once a source is alerted for a SYN
//! scan, an XMAS (or FIN, NULL, ACK) scan it runs within the suppression period is a
//! finding of its own, alerted as soon as the probes of that type alone make a scan.

use super::bounded::{BoundedMap, CacheLine, Fill};
use super::budget::{ALERTED_BYTES, SOURCE_BYTES};
use super::config::{Allowlist, EnhancedConfig};
use super::probe::{
    end_verdict, fingerprint, start_verdict, Outcome, ProbeKind, StartVerdict, Tool, PROBE_KINDS, TOOLS,
};
use super::small::{Found, SmallMap, Spare};
use crate::detect::alert::SESSION_SAMPLE;
use crate::detect::{
    Alert, AlertType, DetectConfig, DetectionMode, Detector, DetectorUsage, EvictionCost, Severity, TableUsage, Tracks,
};
use crate::flow::key::{addr_bits, bits_addr};
use crate::flow::FlowEvent;
use crate::net::{keyed_map, KeyedMap};
use crate::time::{Duration, Timestamp};
use hashbrown::hash_map::Entry;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// Findings are kept per (source, transport protocol): a TCP scan is judged on TCP
/// outcomes and a UDP scan on UDP outcomes, and each is alerted (and suppressed) on its
/// own. Otherwise a bot's UDP P2P chatter and its TCP telnet sweep (Hide-and-Seek) share
/// one alert whose suppression hides the second finding, and a host's successful TCP
/// browsing would pay for its failed UDP probes.
///
/// The source is kept as [`addr_bits`] gives it (low word first, in `u64`s so the key
/// keeps its 8-byte alignment and size): converted once per event, where an `IpAddr`
/// was converted again by each hash of the key (two for a key the map lacks: the
/// table's and the fixed one of its admission).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ScanKey {
    src: [u64; 2],
    v6: bool,
    proto: u8,
}

impl ScanKey {
    #[inline]
    fn new(src: IpAddr, proto: u8) -> Self {
        let (bits, v6) = addr_bits(src);
        ScanKey { src: [bits as u64, (bits >> 64) as u64], v6, proto }
    }
    fn src(&self) -> IpAddr {
        bits_addr(u128::from(self.src[0]) | u128::from(self.src[1]) << 64, self.v6)
    }
}

/// Two word-sized hasher writes instead of the derived field-by-field hash (hot path).
impl std::hash::Hash for ScanKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(u128::from(self.src[0]) | u128::from(self.src[1]) << 64);
        state.write_u16(u16::from(self.proto) | u16::from(self.v6) << 8);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Target {
    dst: IpAddr,
    port: u16,
    proto: u8,
}

/// Two word-sized hasher writes instead of the derived field-by-field hash (hot path).
impl std::hash::Hash for Target {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(crate::flow::key::addr_bits(self.dst).0);
        state.write_u32(u32::from(self.port) | u32::from(self.proto) << 16 | u32::from(self.dst.is_ipv6()) << 24);
    }
}

#[derive(Clone, Copy)]
struct TargetState {
    first_seen: Timestamp,
    last_seen: Timestamp,
    outcome: Outcome,
    kind: ProbeKind,
    tool: Option<Tool>,
    /// The flow-table id of the session that first contacted the target.
    session: u64,
    /// Bit per probe type ([`probe_class`]) that reached this target.
    classes: u16,
}

/// Targets kept inline per source before a hash map is allocated (most sources of a
/// busy network contact one to three targets before they expire or are evicted).
const INLINE_TARGETS: usize = 3;

/// A source's distinct targets counted by outcome.
struct Tally {
    failed: u32,
    succeeded: u32,
    pending: u32,
}

impl Tally {
    #[inline]
    fn count(&mut self, o: Outcome, delta: i32) {
        let c = match o {
            Outcome::Pending => &mut self.pending,
            Outcome::Failure => &mut self.failed,
            Outcome::Success => &mut self.succeeded,
        };
        *c = c.saturating_add_signed(delta);
    }
}

/// What a source keeps once the fast vertical path asks for a per-host count while its
/// targets are on the heap (only a source already near the scan threshold), or once its
/// targets overflow the per-source cap.
struct Spilled {
    /// Pending + failed distinct targets per destination host (fast vertical path);
    /// until the spill they are counted when asked ([`SourceState::unanswered_on`]), so a busy
    /// client whose targets outgrew their inline slots pays no map update per event.
    per_dst: KeyedMap<IpAddr, u32>,
    /// New targets not stored because the per-source cap was reached (still evidence).
    overflow: u64,
}

/// Adds `delta` to the count of `dst` (one lookup; a count of 0 is removed).
#[inline]
fn count_dst(spilled: &mut Option<Box<Spilled>>, dst: IpAddr, delta: i32) {
    let Some(sp) = spilled else { return };
    match sp.per_dst.entry(dst) {
        Entry::Occupied(mut e) => {
            let n = e.get().saturating_add_signed(delta);
            if n == 0 {
                e.remove();
            } else {
                *e.get_mut() = n;
            }
        }
        Entry::Vacant(e) => {
            let n = 0u32.saturating_add_signed(delta);
            if n != 0 {
                e.insert(n);
            }
        }
    }
}

/// Everything remembered about one source within the sliding window. `repr(C)` keeps
/// what every event reads at the front (Rust would put it last), next to the key in the
/// map's slot, which starts a cache line ([`CacheLine`]): the key, the times, the tally
/// (read by every judgement) and the spill pointer fill the first line, the targets' tag
/// and length with the first inline target the second, so an event of a source with one
/// target (most) or with its targets on the heap reads two lines of the slot's four,
/// and a new source in a slot an evicted one left writes only those two
/// ([`SourceState::reset`]).
#[repr(C)]
struct SourceState {
    last_prune: Timestamp,
    last_seen: Timestamp,
    tally: Tally,
    /// Per-host counts and overflow, boxed (a pointer most sources never use: made only
    /// for a source near the scan threshold with its targets on the heap, or over the cap).
    spilled: Option<Box<Spilled>>,
    targets: SmallMap<Target, TargetState, INLINE_TARGETS>,
}

thread_local! {
    /// Emptied hash maps of the targets of sources whose slots new sources took (an
    /// expired source's map is freed: on mix b none expires with its targets on the
    /// heap), for the next sources whose targets outgrow their inline slots. Per thread,
    /// not per detector, so the hot path passes nothing for them: only a spill and the
    /// reset of a source whose targets were on the heap reach them.
    static SPARE: RefCell<Spare<Target, TargetState>> = const { RefCell::new(Spare::new()) };
}

/// An empty hash map of targets with room for `room` (a spare one if there is one).
fn fresh_targets(room: usize) -> KeyedMap<Target, TargetState> {
    SPARE.with(|s| s.borrow_mut().take(room))
}

/// Keeps an emptied hash map of targets for a later spill.
fn spare_targets(map: KeyedMap<Target, TargetState>) {
    SPARE.with(|s| s.borrow_mut().put(map));
}

/// A new source's state: made afresh, or reset in the slot an evicted source left.
struct NewSource(Timestamp);

impl Fill<SourceState> for NewSource {
    #[inline]
    fn make(self) -> SourceState {
        SourceState::new(self.0)
    }
    #[inline]
    fn reset(self, stale: &mut SourceState) {
        stale.reset(self.0);
    }
}

impl SourceState {
    fn new(now: Timestamp) -> Self {
        SourceState {
            targets: SmallMap::new(),
            tally: Tally { failed: 0, succeeded: 0, pending: 0 },
            spilled: None,
            last_seen: now,
            last_prune: now,
        }
    }
    /// Makes the state of a source just seen at `now` out of an evicted one, writing
    /// only what [`SourceState::new`] would make differ (the inline targets past the
    /// length are never read); a hash map of targets is kept for a later spill.
    #[inline]
    fn reset(&mut self, now: Timestamp) {
        self.last_prune = now;
        self.last_seen = now;
        self.tally = Tally { failed: 0, succeeded: 0, pending: 0 };
        self.spilled = None;
        self.targets.clear(spare_targets);
    }
    /// Pending + failed distinct targets on host `dst`: counted among inline targets,
    /// looked up once per-host counts are kept, which the first ask for targets on the
    /// heap starts (the source is near the scan threshold and asks on every event).
    fn unanswered_on(&mut self, dst: IpAddr) -> u32 {
        let sp = match &self.spilled {
            Some(sp) => sp,
            None if self.targets.is_inline() => {
                return self.targets.iter().filter(|(t, s)| t.dst == dst && s.outcome != Outcome::Success).count()
                    as u32
            }
            None => &*self.spill(),
        };
        sp.per_dst.get(&dst).copied().unwrap_or(0)
    }
    /// New targets not stored because the per-source cap was reached.
    fn overflow(&self) -> u64 {
        self.spilled.as_ref().map_or(0, |sp| sp.overflow)
    }
    /// Starts counting the targets per host (from now on kept up to date).
    #[cold]
    fn spill(&mut self) -> &mut Spilled {
        let mut per_dst = keyed_map();
        per_dst.reserve(2 * INLINE_TARGETS);
        for (t, _) in self.targets.iter().filter(|(_, s)| s.outcome != Outcome::Success) {
            *per_dst.entry(t.dst).or_insert(0) += 1;
        }
        self.spilled.insert(Box::new(Spilled { per_dst, overflow: 0 }))
    }
    fn prune(&mut self, cutoff: Timestamp) {
        let (tally, spilled) = (&mut self.tally, &mut self.spilled);
        self.targets.retain_with(
            |_, s| s.last_seen >= cutoff,
            |t, s| {
                tally.count(s.outcome, -1);
                if s.outcome != Outcome::Success {
                    count_dst(spilled, t.dst, -1);
                }
            },
        );
    }
    /// Records an attempt; outcomes only move Pending → Failure → Success.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        t: Target,
        ts: Timestamp,
        kind: ProbeKind,
        outcome: Outcome,
        tool: Option<Tool>,
        cap: usize,
        session: u64,
    ) {
        let class = probe_class(kind);
        self.last_seen = self.last_seen.max(ts);
        let classes = 1 << class;
        let new = |len| {
            (len < cap).then_some(TargetState { first_seen: ts, last_seen: ts, outcome, kind, tool, session, classes })
        };
        match self.targets.find_or_insert(t, new, fresh_targets) {
            Found::Old(st) => {
                st.last_seen = st.last_seen.max(ts);
                st.classes |= classes;
                let old = st.outcome;
                if outcome > old {
                    st.outcome = outcome;
                    if st.kind == ProbeKind::Syn && kind != ProbeKind::Syn {
                        st.kind = kind;
                    }
                    self.tally.count(old, -1);
                    self.tally.count(outcome, 1);
                    // Pending → Failure keeps the target counted on its host.
                    if outcome == Outcome::Success {
                        count_dst(&mut self.spilled, t.dst, -1);
                    }
                }
            }
            Found::New => {
                self.tally.count(outcome, 1);
                if outcome != Outcome::Success {
                    count_dst(&mut self.spilled, t.dst, 1);
                }
            }
            // The per-source cap is reached: not stored, but still evidence.
            Found::Full => match &mut self.spilled {
                Some(sp) => sp.overflow += 1,
                None => self.spill().overflow += 1,
            },
        }
    }
}

/// The probe type a finding is about: SYN, connect and half-open probes are one type
/// (a SYN scan), every other [`ProbeKind`] its own.
#[inline]
pub(super) fn probe_class(kind: ProbeKind) -> usize {
    // Syn, Connect and HalfOpen are the first three kinds (checked by a test).
    let i = kind.index();
    i * usize::from(i > ProbeKind::HalfOpen.index())
}

/// The alerts of one (source, protocol) within the suppression period, per probe type:
/// when it was alerted and how many failed + pending targets it had then.
#[derive(Clone, Copy, Default)]
struct Alerted {
    by_class: [Option<(Timestamp, u32)>; PROBE_KINDS],
}

impl Alerted {
    /// Whether any probe type is still within its suppression period at `now`.
    fn any_recent(&self, now: Timestamp, suppression: Duration) -> bool {
        self.by_class.iter().flatten().any(|(at, _)| now.since(*at) < suppression)
    }
}

pub struct ScanDetector {
    cfg: EnhancedConfig,
    weights: Weights,
    allow: Allowlist,
    /// Whether `allow` lists anything (most configurations list nothing: no per-event check).
    allow_any: bool,
    /// Whether `allow` or `scan_allow_ports` lists anything (one per-event test).
    ignore_any: bool,
    /// The sliding window, and the time after which a source's targets are pruned
    /// again (an eighth of it): computed once per configuration, not per event.
    window: Duration,
    prune_every: Duration,
    suppression: Duration,
    sources: BoundedMap<ScanKey, SourceState, CacheLine>,
    /// (Source, protocol) → its alerts per probe type.
    alerted: BoundedMap<ScanKey, Alerted>,
    last_sweep: Timestamp,
}

impl ScanDetector {
    pub fn new(cfg: &DetectConfig) -> Self {
        let e = &cfg.enhanced;
        ScanDetector {
            cfg: e.clone(),
            weights: Weights::new(e),
            allow: Allowlist::new(e).unwrap_or_default(),
            allow_any: lists_any(e),
            ignore_any: lists_any(e) || !e.scan_allow_ports.is_empty(),
            window: window(e),
            prune_every: prune_every(e),
            suppression: cfg.suppression,
            sources: BoundedMap::new(e.scan_max_sources),
            alerted: BoundedMap::new(e.scan_max_sources),
            last_sweep: Timestamp::ZERO,
        }
    }

    #[inline]
    fn ignored(&self, src: IpAddr, dst: IpAddr, port: u16) -> bool {
        self.ignore_any
            && ((self.allow_any && self.allow.pair_allowed(src, dst)) || self.cfg.scan_allow_ports.contains(&port))
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn observe(
        &mut self,
        session: u64,
        src: IpAddr,
        t: Target,
        ts: Timestamp,
        kind: ProbeKind,
        o: Outcome,
        tool: Option<Tool>,
        shows: bool,
        alerts: &mut Vec<Alert>,
    ) {
        let cap = self.cfg.scan_max_targets_per_source;
        let key = ScanKey::new(src, t.proto);
        // A session start shows the source again (promoted in the table, admitted into
        // a full one); its end only concludes what the start began.
        let st = if shows {
            self.sources.touch_or_insert_with(key, NewSource(ts))
        } else {
            self.sources.refresh_or_insert_with(key, NewSource(ts))
        };
        if ts.since(st.last_prune) >= self.prune_every {
            st.prune(ts.saturating_sub(self.window));
            st.last_prune = ts;
        }
        st.record(t, ts, kind, o, tool, cap, session);
        // Most sources, on every event: no judge to build (see `too_few`).
        if too_few(&self.cfg, st.tally.failed, st.tally.pending) {
            return;
        }
        let class = probe_class(kind);
        // The state just touched is judged in place (no second lookup of the source).
        let judge = Judge { cfg: &self.cfg, weights: &self.weights, allow: &self.allow, suppression: self.suppression };
        judge.evaluate(&mut self.alerted, key, st, t.dst, class, ts, alerts);
    }
}

/// Whether a source with `failed` failed and `pending` pending targets is no scan
/// whatever its score: the TRW needs `scan_min_failed_targets` failures, the fast path
/// `scan_fast_vertical_ports` unanswered targets on one host, which are among the failed
/// and pending ones (checked by a test). Two integer compares instead of the
/// log-likelihood sum (most sources, on every event).
#[inline(always)]
fn too_few(cfg: &EnhancedConfig, failed: u32, pending: u32) -> bool {
    failed < cfg.scan_min_failed_targets
        && u64::from(failed) + u64::from(pending) < u64::from(cfg.scan_fast_vertical_ports)
}

/// Logarithms the scorer needs on every event, computed once per configuration.
struct Weights {
    /// Log-likelihood ratio added per failed / per successful target.
    per_failure: f64,
    per_success: f64,
    /// ln of the TRW threshold.
    threshold: f64,
}

impl Weights {
    fn new(cfg: &EnhancedConfig) -> Self {
        let (b, s) = (cfg.scan_trw_benign_success, cfg.scan_trw_scanner_success);
        Weights {
            per_failure: ((1.0 - s) / (1.0 - b)).ln(),
            per_success: (s / b).ln(),
            threshold: cfg.scan_trw_threshold.ln(),
        }
    }
    /// Threshold Random Walk log-likelihood ratio of "scanner" vs "benign".
    fn llr(&self, failed: u32, succeeded: u32) -> f64 {
        failed as f64 * self.per_failure + succeeded as f64 * self.per_success
    }
}

/// What deciding whether a source's state raises an alert reads (split from the
/// detector so the source's state can stay borrowed from the source map).
struct Judge<'a> {
    cfg: &'a EnhancedConfig,
    weights: &'a Weights,
    allow: &'a Allowlist,
    suppression: Duration,
}

impl Judge<'_> {
    /// Whether failed / pending targets make a scan: the Threshold Random Walk, or many
    /// unanswered probes of one host (`to_dst`). Returns the log-likelihood ratio.
    #[inline]
    fn is_scan(&self, failed: u32, succeeded: u32, pending: u32, to_dst: u32) -> Option<f64> {
        self.is_scan_with(failed, succeeded, pending, || to_dst)
    }

    /// [`Judge::is_scan`] that counts the unanswered probes of one host only when the
    /// answer depends on them.
    #[inline]
    fn is_scan_with(&self, failed: u32, succeeded: u32, pending: u32, to_dst: impl FnOnce() -> u32) -> Option<f64> {
        if too_few(self.cfg, failed, pending) {
            return None;
        }
        let llr = self.weights.llr(failed, succeeded);
        let trw = failed >= self.cfg.scan_min_failed_targets && llr >= self.weights.threshold;
        let fast =
            || llr + pending as f64 * 0.5 >= self.weights.threshold && to_dst() >= self.cfg.scan_fast_vertical_ports;
        (trw || fast()).then_some(llr)
    }

    /// Judges the source after an attempt of probe type `class` to `dst`.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn evaluate(
        &self,
        alerted: &mut BoundedMap<ScanKey, Alerted>,
        key: ScanKey,
        st: &mut SourceState,
        dst: IpAddr,
        class: usize,
        now: Timestamp,
        alerts: &mut Vec<Alert>,
    ) {
        let Tally { failed, succeeded, pending } = st.tally;
        if let Some(llr) = self.is_scan_with(failed, succeeded, pending, || st.unanswered_on(dst)) {
            self.scanner(alerted, key, st, dst, class, now, llr, alerts);
        }
    }

    /// The source is a scanner: alert unless this finding (or, for a source already
    /// alerted, this probe type) was alerted within the suppression period.
    #[allow(clippy::too_many_arguments)]
    #[cold]
    fn scanner(
        &self,
        alerted: &mut BoundedMap<ScanKey, Alerted>,
        key: ScanKey,
        st: &SourceState,
        dst: IpAddr,
        class: usize,
        now: Timestamp,
        llr: f64,
        alerts: &mut Vec<Alert>,
    ) {
        let src = key.src();
        let tally = &st.tally;
        // Read in place (a scanner's every probe after its alert comes here).
        let previous = alerted.get(&key);
        // While the source is alerted for some probe type, only the probes of the type
        // just seen are judged: a new type is a new finding once it alone is a scan.
        let only = if previous.is_some_and(|p| p.any_recent(now, self.suppression)) {
            if let Some((at, size)) = previous.and_then(|p| p.by_class[class]) {
                let escalated = self.cfg.scan_escalation_factor > 0
                    && tally.failed + tally.pending >= size.saturating_mul(self.cfg.scan_escalation_factor);
                if now.since(at) < self.suppression && !escalated {
                    return;
                }
            }
            Some(class)
        } else {
            None
        };
        if self.allow.src_allowed(src) {
            return;
        }
        let (llr, evidence_size) = match only {
            None => (llr, tally.failed + tally.pending),
            Some(class) => {
                let (mut failed, mut pending, mut to_dst) = (0, 0, 0);
                for (t, s) in st.targets.iter().filter(|(_, s)| s.classes & 1 << class != 0) {
                    match s.outcome {
                        Outcome::Failure => failed += 1,
                        Outcome::Pending => pending += 1,
                        Outcome::Success => continue,
                    }
                    to_dst += u32::from(t.dst == dst);
                }
                match self.is_scan(failed, tally.succeeded, pending, to_dst) {
                    Some(llr) => (llr, failed + pending),
                    None => return,
                }
            }
        };
        let (alert, reported) = build_alert(src, st, only, now, llr);
        let entry = alerted.touch_or_insert_with(key, Alerted::default);
        if only.is_none() {
            // A new suppression period for the source: earlier types are forgotten.
            *entry = Alerted::default();
        }
        entry.by_class[reported] = Some((now, evidence_size));
        alerts.push(alert);
    }
}

/// The alert for a source's scan; with `only`, for its probes of that type alone.
/// Also returns the probe type it reports.
fn build_alert(src: IpAddr, st: &SourceState, only: Option<usize>, now: Timestamp, llr: f64) -> (Alert, usize) {
    // Scan targets are those not (yet) successful; sorted for deterministic output.
    let mut probes: Vec<(&Target, &TargetState)> = st
        .targets
        .iter()
        .filter(|(_, s)| s.outcome != Outcome::Success && only.map_or(true, |c| s.classes & 1 << c != 0))
        .collect();
    probes.sort_by_key(|(t, _)| (t.dst, t.port, t.proto));
    let mut ports_by_dst: BTreeMap<IpAddr, u32> = BTreeMap::new();
    let mut dsts_by_port: BTreeMap<u16, u32> = BTreeMap::new();
    let mut kinds = [0u32; PROBE_KINDS];
    let mut tools = [0u32; TOOLS];
    let mut first_seen = now;
    for (t, s) in &probes {
        *ports_by_dst.entry(t.dst).or_default() += 1;
        *dsts_by_port.entry(t.port).or_default() += 1;
        kinds[s.kind.index()] += 1;
        if let Some(tool) = s.tool {
            tools[tool as usize] += 1;
        }
        first_seen = first_seen.min(s.first_seen);
    }
    let n = probes.len().max(1) as u32;
    let (top_dst, top_dst_ports) = ports_by_dst
        .iter()
        .max_by_key(|(d, c)| (**c, std::cmp::Reverse(**d)))
        .map(|(d, c)| (*d, *c))
        .unwrap_or((src, 0));
    let (top_port, top_port_dsts) =
        dsts_by_port.iter().max_by_key(|(p, c)| (**c, std::cmp::Reverse(**p))).map(|(p, c)| (*p, *c)).unwrap_or((0, 0));
    let scan_type = if ports_by_dst.len() == 1 || (top_dst_ports * 5 >= n * 4 && top_dst_ports > top_port_dsts) {
        "Vertical"
    } else if dsts_by_port.len() == 1 || top_port_dsts * 5 >= n * 4 || dsts_by_port.len() * 4 <= ports_by_dst.len() {
        // One dominant port, or a few ports swept over many more hosts (a botnet's
        // telnet sweep of 23/2323/8080/9527): a horizontal scan.
        "Horizontal"
    } else {
        "Mixed"
    };
    // Closed ports look alike (REJ) for SYN and connect scans: a connect scan is one
    // whose open ports completed handshakes and no port saw a raw half-open probe.
    let connect = kinds[ProbeKind::Connect.index()] > 0 && kinds[ProbeKind::HalfOpen.index()] == 0;
    kinds[ProbeKind::Syn.index()] += kinds[ProbeKind::HalfOpen.index()] + kinds[ProbeKind::Connect.index()];
    kinds[ProbeKind::HalfOpen.index()] = 0;
    kinds[ProbeKind::Connect.index()] = 0;
    let probe_kind = match only {
        // A finding for one probe type: the targets may have seen other types first.
        Some(class) => ProbeKind::from_index(class),
        None => (0..PROBE_KINDS)
            .max_by_key(|&i| (kinds[i], std::cmp::Reverse(i)))
            .map(ProbeKind::from_index)
            .unwrap_or(ProbeKind::Syn),
    };
    let probe_kind = if connect && probe_kind == ProbeKind::Syn { ProbeKind::Connect } else { probe_kind };
    let tool = (0..TOOLS)
        .filter(|&i| tools[i] * 2 >= n)
        .max_by_key(|&i| (tools[i], std::cmp::Reverse(i)))
        .map(Tool::from_index);
    let targets: BTreeSet<IpAddr> = ports_by_dst.keys().copied().collect();
    // The earliest probes' sessions (flow-table ids grow with time).
    let mut sessions: Vec<u64> = probes.iter().map(|(_, s)| s.session).collect();
    sessions.sort_unstable();
    sessions.truncate(SESSION_SAMPLE);
    let ports: BTreeSet<u16> = dsts_by_port.keys().copied().collect();
    let tally = &st.tally;
    // A finding for one probe type counts that type's targets (and the source's successes).
    let (failed, pending, overflow) = match only {
        None => (tally.failed, tally.pending, st.overflow()),
        Some(_) => {
            let failed = probes.iter().filter(|(_, s)| s.outcome == Outcome::Failure).count() as u32;
            (failed, probes.len() as u32 - failed, 0)
        }
    };
    let resolved = failed + tally.succeeded;
    let failure_ratio = if resolved == 0 { 1.0 } else { failed as f64 / resolved as f64 };

    let mut ev = Map::new();
    ev.insert("ScanType".into(), scan_type.into());
    ev.insert("ProbeType".into(), probe_kind.as_str().into());
    if let Some(tool) = tool {
        ev.insert("Tool".into(), tool.as_str().into());
    }
    ev.insert("TargetCount".into(), targets.len().into());
    ev.insert(
        "TargetsSample".into(),
        targets.iter().take(20).map(|d| Value::from(d.to_string())).collect::<Vec<_>>().into(),
    );
    ev.insert("PortCount".into(), ports.len().into());
    ev.insert("PortsSample".into(), ports.iter().take(50).map(|p| Value::from(*p)).collect::<Vec<_>>().into());
    ev.insert("Attempts".into(), (failed as u64 + tally.succeeded as u64 + pending as u64 + overflow).into());
    ev.insert("Failures".into(), failed.into());
    ev.insert("Pending".into(), pending.into());
    ev.insert("FailureRatio".into(), round(failure_ratio, 3).into());
    ev.insert("FirstSeen".into(), first_seen.rfc3339().into());
    ev.insert("WindowSeconds".into(), round(now.since(first_seen).as_secs_f64(), 3).into());
    ev.insert("Score".into(), round(llr, 2).into());

    let stealthy = probe_kind.is_stealth();
    let alert = Alert {
        alert_type: AlertType::PortScan,
        mode: DetectionMode::Enhanced,
        time: now,
        name: format!("{scan_type} {} port scan", probe_kind.as_str()),
        severity: if tool.is_some() || stealthy || targets.len() * ports.len() >= 500 {
            Severity::High
        } else {
            Severity::Medium
        },
        tactics: &["Reconnaissance", "Discovery"],
        techniques: &["T1046", "T1595"],
        src,
        dst: (scan_type == "Vertical").then_some(top_dst),
        dport: (scan_type == "Horizontal").then_some(top_port),
        evidence: ev,
        sessions,
    };
    (alert, probe_class(probe_kind))
}

/// The sliding window of `cfg`.
fn window(cfg: &EnhancedConfig) -> Duration {
    Duration::from_secs(cfg.scan_window_secs as i64)
}

/// How long after its last pruning a source's targets are pruned again: an eighth of
/// the window.
fn prune_every(cfg: &EnhancedConfig) -> Duration {
    Duration(window(cfg).0 / 8)
}

/// Whether the allowlists of `cfg` list anything.
pub(super) fn lists_any(cfg: &EnhancedConfig) -> bool {
    !(cfg.allow_src.is_empty() && cfg.allow_dst.is_empty() && cfg.allow_pairs.is_empty())
}

pub(crate) fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

impl Detector for ScanDetector {
    fn on_event(&mut self, event: &FlowEvent, alerts: &mut Vec<Alert>) {
        // One call of `observe` (inlined here) for every kind of event that is an attempt.
        let (id, src, t, ts, kind, outcome, tool, shows) = match event {
            FlowEvent::Start(s) => {
                let port = s.dport.unwrap_or(0);
                if self.ignored(s.src, s.dst, port) {
                    return;
                }
                let t = Target { dst: s.dst, port, proto: s.protocol };
                let tool = if s.protocol == super::probe::TCP { fingerprint(s.dst, port, &s.first) } else { None };
                let (k, o) = match start_verdict(s, tool) {
                    StartVerdict::Attempt(k) => (k, Outcome::Pending),
                    StartVerdict::Probe(k) => (k, Outcome::Failure),
                    StartVerdict::Defer | StartVerdict::Ignore => return,
                };
                (s.id, s.src, t, s.ts, k, o, tool, true)
            }
            FlowEvent::End(r) => {
                let port = r.dport.unwrap_or(0);
                if self.ignored(r.src, r.dst, port) {
                    return;
                }
                let t = Target { dst: r.dst, port, proto: r.protocol };
                let tool = if r.protocol == super::probe::TCP { fingerprint(r.dst, port, &r.first) } else { None };
                let Some((k, o)) = end_verdict(r) else { return };
                // An ACK or ICMP echo probe is judged at its end (its start was
                // deferred): the end is the one event of the session that shows the
                // source. Other ends conclude what their start showed.
                let shows = matches!(k, ProbeKind::Ack | ProbeKind::IcmpEcho);
                (r.id, r.src, t, r.end, k, o, tool, shows)
            }
            // Activity inside an established session is not a connection attempt.
            FlowEvent::Exchange(_) => return,
        };
        self.observe(id, src, t, ts, kind, outcome, tool, shows, alerts);
    }

    fn on_time(&mut self, now: Timestamp, _alerts: &mut Vec<Alert>) {
        let window = self.window;
        if now.since(self.last_sweep).0 < window.0 / 4 {
            return;
        }
        self.last_sweep = now;
        let cutoff = now.saturating_sub(window);
        self.sources.retain(|_, st| st.last_seen >= cutoff);
        let suppression = self.suppression;
        self.alerted.retain(|_, a| a.any_recent(now, suppression));
    }

    fn finish(&mut self, _alerts: &mut Vec<Alert>) {}

    fn reload(&mut self, cfg: &DetectConfig) {
        self.cfg = cfg.enhanced.clone();
        self.weights = Weights::new(&self.cfg);
        self.allow = Allowlist::new(&cfg.enhanced).unwrap_or_default();
        self.allow_any = lists_any(&cfg.enhanced);
        self.ignore_any = self.allow_any || !self.cfg.scan_allow_ports.is_empty();
        (self.window, self.prune_every) = (window(&self.cfg), prune_every(&self.cfg));
        self.suppression = cfg.suppression;
        self.sources.set_cap(self.cfg.scan_max_sources);
        self.alerted.set_cap(self.cfg.scan_max_sources);
    }

    fn usage(&self) -> DetectorUsage {
        let table = |table, map_len: usize, cap: usize, evictions, cost, tracks| TableUsage {
            bytes: Some(map_len as u64 * if tracks == Tracks::Sources { SOURCE_BYTES } else { ALERTED_BYTES }),
            detector: "enhanced port scan",
            table,
            entries: map_len as u64,
            cap: Some(cap as u64),
            evictions,
            setting: Some("enhanced.scan_max_sources"),
            cost,
            tracks,
        };
        DetectorUsage {
            tables: vec![
                table(
                    "sources",
                    self.sources.len(),
                    self.sources.cap(),
                    self.sources.evictions(),
                    EvictionCost::Detection,
                    Tracks::Sources,
                ),
                table(
                    "alerted sources",
                    self.alerted.len(),
                    self.alerted.cap(),
                    self.alerted.evictions(),
                    EvictionCost::Suppression,
                    Tracks::Other,
                ),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-host count of failed + pending targets is the same whether it is counted
    /// on demand (targets inline) or kept in a map (from the first ask with the targets on
    /// the heap, or an overflow), through new targets,
    /// outcome changes, overflow and pruning; it never exceeds the source's failed +
    /// pending targets.
    #[test]
    fn per_host_counts_match_the_targets_inline_and_after_the_spill() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let dsts: Vec<IpAddr> = (1..=4u8).map(|i| IpAddr::from([10, 0, 0, i])).collect();
        let (mut spilled, mut inline_checks) = (0, 0);
        for round in 0..200 {
            let mut st = SourceState::new(Timestamp::from_secs(0));
            let cap = 2 + round % 12;
            for step in 0..60i64 {
                let ts = Timestamp::from_secs(step);
                if next(10) == 0 {
                    st.prune(Timestamp::from_secs(step - next(30) as i64));
                } else if next(40) == 0 {
                    // An evicted source's slot taken by a new one: as good as new.
                    st.reset(ts);
                    let new = SourceState::new(ts);
                    assert!(st.targets.len() == 0 && st.targets.iter().next().is_none() && st.spilled.is_none());
                    assert_eq!((st.last_prune, st.last_seen, st.overflow()), (new.last_prune, new.last_seen, 0));
                } else {
                    let t = Target { dst: dsts[next(4) as usize], port: next(6) as u16, proto: 6 };
                    let o = [Outcome::Pending, Outcome::Failure, Outcome::Success][next(3) as usize];
                    st.record(t, ts, ProbeKind::Syn, o, None, cap, step as u64);
                }
                // Asked now and then, as the scorer does: the counts start on the first
                // ask after the targets moved to the heap.
                for &d in dsts.iter().filter(|_| next(3) == 0) {
                    let truth =
                        st.targets.iter().filter(|(t, s)| t.dst == d && s.outcome != Outcome::Success).count() as u32;
                    assert_eq!(st.unanswered_on(d), truth, "round {round} step {step}");
                    // What the scorer's shortcut counts on (`too_few`).
                    assert!(truth <= st.tally.failed + st.tally.pending);
                }
                let all = |o| st.targets.iter().filter(|(_, s)| s.outcome == o).count() as u32;
                assert_eq!(
                    (st.tally.pending, st.tally.failed, st.tally.succeeded),
                    (all(Outcome::Pending), all(Outcome::Failure), all(Outcome::Success))
                );
                if st.spilled.is_some() {
                    spilled += 1;
                } else {
                    inline_checks += 1;
                }
            }
        }
        assert!(spilled > 1000 && inline_checks > 1000, "{spilled} {inline_checks}");
    }

    /// The window, pruning interval and ignore test kept with the detector follow a reload.
    #[test]
    fn a_reload_recomputes_what_is_kept_per_configuration() {
        let mut cfg = DetectConfig::default();
        let mut d = ScanDetector::new(&cfg);
        assert_eq!((d.window, d.prune_every, d.ignore_any), (window(&cfg.enhanced), prune_every(&cfg.enhanced), false));
        cfg.enhanced.scan_window_secs = 80;
        cfg.enhanced.scan_allow_ports = vec![443];
        d.reload(&cfg);
        assert_eq!((d.window, d.prune_every, d.ignore_any), (Duration::from_secs(80), Duration::from_secs(10), true));
        assert!(d.ignored(IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]), 443));
        assert!(!d.ignored(IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]), 80));
    }

    /// The layout the hot path counts on: in a slot (key first, 64-byte aligned) the key,
    /// times, tally and spill pointer fill the first cache line, the targets' tag and
    /// length with the first inline target the second; a slot is four lines.
    #[test]
    fn a_source_slot_is_four_cache_lines_with_the_hot_fields_in_the_first_two() {
        use std::mem::{align_of, offset_of, size_of};
        let value_at = size_of::<ScanKey>().next_multiple_of(align_of::<SourceState>());
        assert_eq!(value_at + offset_of!(SourceState, targets), 64);
        let first_target = size_of::<(u8, u8)>().next_multiple_of(align_of::<Option<(Target, TargetState)>>());
        assert!(64 + first_target + size_of::<Option<(Target, TargetState)>>() <= 128);
        assert!(value_at + size_of::<SourceState>() <= 256);
    }
}
