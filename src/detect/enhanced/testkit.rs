//! Test helpers for the enhanced detectors: a splitmix64 PRNG and builders that turn
//! short descriptions of sessions into time-ordered Start/End event streams.

use crate::detect::{Alert, DetectConfig, Detector};
use crate::flow::{
    ConnState, EndReason, EventResult, FirstPacket, FlowEvent, FlowRecord, SessionExchange, SessionStart,
};
use crate::net::NetSet;
use crate::time::{Duration, Timestamp};
use std::net::IpAddr;

pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;
pub const RST: u8 = 0x04;
pub const FIN: u8 = 0x01;
pub const PSH: u8 = 0x08;
pub const URG: u8 = 0x20;

/// Small deterministic PRNG (splitmix64).
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Check-in times from `start`, each next one `gap()` seconds after the last.
pub fn times_from_gaps(start: f64, n: usize, mut gap: impl FnMut() -> f64) -> Vec<f64> {
    let mut t = start;
    (0..n)
        .map(|_| {
            let now = t;
            t += gap();
            now
        })
        .collect()
}

/// Bursty browsing: page visits of 1 to `max_burst` connections 1.2–6 s apart, each
/// followed by a read of 10 s plus an exponential time of mean `mean_read` s, until `n`
/// session start times.
pub fn bursty_times(rng: &mut SplitMix64, n: usize, max_burst: u64, mean_read: f64) -> Vec<f64> {
    let mut times = Vec::new();
    let mut t = 0.0;
    while times.len() < n {
        for _ in 0..1 + rng.below(max_burst) {
            times.push(t);
            t += rng.uniform(1.2, 6.0);
        }
        t += rng.exp(mean_read) + 10.0;
    }
    times
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Home net 192.0.2.0/24 + 2001:db8:1::/48; everything else documentation space is "outside".
pub fn config() -> DetectConfig {
    DetectConfig { home_net: NetSet::parse_list("192.0.2.0/24,2001:db8:1::/48").unwrap(), ..DetectConfig::default() }
}

/// How a session went, from the initiator's first packet to its End record.
#[derive(Clone, Copy, Debug)]
pub enum Fate {
    /// Full handshake, data both ways, FIN close after `dur` seconds.
    Ok { dur: f64, src_bytes: u64, dst_bytes: u64 },
    /// SYN answered by RST.
    Rej,
    /// SYN never answered (End after the 10 s handshake timeout).
    S0,
    /// SYN, SYN-ACK, bare RST from the prober.
    HalfOpen,
    /// Full handshake, no data, RST from the initiator.
    ConnectEmpty,
    /// Stealth first packet `flags`; closed port answers RST, open port stays silent.
    Stealth { flags: u8, closed: bool },
    /// Mid-session pickup: ACK|PSH first packet, data both ways.
    MidSession,
    /// UDP answered (`answered`) or not; `unreachable` adds an ICMP port unreachable.
    Udp { answered: bool, unreachable: bool, src_bytes: u64, dst_bytes: u64 },
}

/// Accumulates sessions and yields their events in capture-time order.
#[derive(Clone, Default)]
pub struct Feed {
    events: Vec<(Timestamp, u64, FlowEvent)>,
    next_id: u64,
}

impl Feed {
    pub fn new() -> Self {
        Feed::default()
    }
    /// Adds one session starting at `t` seconds; `first` overrides the first packet.
    #[allow(clippy::too_many_arguments)]
    pub fn session_with(
        &mut self,
        t: f64,
        src: IpAddr,
        dst: IpAddr,
        sport: u16,
        dport: u16,
        fate: Fate,
        mut first: FirstPacket,
    ) {
        self.next_id += 1;
        let id = self.next_id;
        let ts = Timestamp::from_secs_f64(t);
        let proto = if matches!(fate, Fate::Udp { .. }) { 17 } else { 6 };
        let hdr: u64 = if src.is_ipv4() { 40 } else { 60 };
        // (end offset, state, result, src bytes/pkts, dst bytes/pkts, src flags, dst flags, icmp errors)
        let (dur, state, result, sb, sp, db, dp, sf, df, icmp) = match fate {
            Fate::Ok { dur, src_bytes, dst_bytes } => (
                dur,
                ConnState::SF,
                EventResult::Success,
                src_bytes + 5 * hdr,
                5,
                dst_bytes + 5 * hdr,
                5,
                SYN | ACK | PSH | FIN,
                SYN | ACK | PSH | FIN,
                0,
            ),
            Fate::Rej => (0.001, ConnState::REJ, EventResult::Failure, hdr + 4, 1, hdr, 1, SYN, RST | ACK, 0),
            Fate::S0 => (10.0, ConnState::S0, EventResult::Failure, hdr + 4, 1, 0, 0, SYN, 0, 0),
            Fate::HalfOpen => {
                (0.002, ConnState::RSTOS0, EventResult::Failure, 2 * hdr, 2, hdr + 4, 1, SYN | RST, SYN | ACK, 0)
            }
            Fate::ConnectEmpty => {
                (0.003, ConnState::RSTO, EventResult::Success, 3 * hdr, 3, hdr + 4, 1, SYN | ACK | RST, SYN | ACK, 0)
            }
            Fate::Stealth { closed: true, .. } => {
                (0.001, ConnState::OTH, EventResult::Failure, hdr, 1, hdr, 1, first.tcp_flags, RST | ACK, 0)
            }
            Fate::Stealth { closed: false, .. } => {
                (10.0, ConnState::OTH, EventResult::Failure, hdr, 1, 0, 0, first.tcp_flags, 0, 0)
            }
            Fate::MidSession => (
                30.0,
                ConnState::OTH,
                EventResult::NA,
                20 * hdr + 5000,
                20,
                20 * hdr + 90_000,
                20,
                ACK | PSH,
                ACK | PSH,
                0,
            ),
            Fate::Udp { answered, unreachable, src_bytes, dst_bytes } => {
                let result = if answered { EventResult::Success } else { EventResult::Failure };
                let (db, dp) = if answered { (dst_bytes + 28, 1) } else { (0, 0) };
                (
                    if answered { 0.05 } else { 60.0 },
                    if answered { ConnState::SF } else { ConnState::S0 },
                    result,
                    src_bytes + 28,
                    1,
                    db,
                    dp,
                    0,
                    0,
                    u32::from(unreachable),
                )
            }
        };
        if let Fate::Stealth { flags, .. } = fate {
            first.tcp_flags = flags;
        }
        if matches!(fate, Fate::MidSession) {
            first.tcp_flags = ACK | PSH;
            first.payload_len = 200;
        }
        if proto == 17 {
            first.tcp_flags = 0;
            first.tcp_window = 0;
        }
        let start = SessionStart {
            id,
            ts,
            src,
            dst,
            sport: Some(sport),
            dport: Some(dport),
            protocol: proto,
            segment: 0,
            first,
        };
        let end = ts.saturating_add(Duration::from_secs_f64(dur));
        let rec = FlowRecord {
            id,
            segment: 0,
            start: ts,
            end,
            src,
            dst,
            sport: Some(sport),
            dport: Some(dport),
            protocol: proto,
            src_bytes: sb,
            dst_bytes: db,
            src_packets: sp,
            dst_packets: dp,
            icmp_type: None,
            icmp_code: None,
            vlan: None,
            conn_state: state,
            result,
            end_reason: if dur >= 10.0 { EndReason::IdleTimeout } else { EndReason::Fin },
            src_tcp_flags: sf,
            dst_tcp_flags: df,
            icmp_errors: icmp,
            last_icmp_error: (icmp > 0).then_some((3, 3)),
            first,
            history: Default::default(),
        };
        self.events.push((ts, 2 * id, FlowEvent::Start(start)));
        self.events.push((end, 2 * id + 1, FlowEvent::End(rec)));
    }

    /// A session whose first packet is an ordinary OS SYN (or the fate's own flags).
    pub fn session(&mut self, t: f64, src: IpAddr, dst: IpAddr, sport: u16, dport: u16, fate: Fate) {
        let first = FirstPacket {
            tcp_flags: SYN,
            ttl: 64,
            ip_id: (self.next_id as u16).wrapping_mul(7919),
            tcp_window: 64240,
            tcp_seq: 1000,
            payload_len: 0,
        };
        self.session_with(t, src, dst, sport, dport, fate, first);
    }

    /// One long session that checks in at `times` (seconds): its Start just before the
    /// first check-in, one exchange per check-in with `sizes[i]` payload bytes each way
    /// (lasting `dur` seconds), each reported — as the flow table does — when the next
    /// one begins, the last just before the End. Returns the session's id.
    #[allow(clippy::too_many_arguments)]
    pub fn long_session(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        sport: u16,
        dport: u16,
        udp: bool,
        times: &[f64],
        sizes: &[(u64, u64)],
        dur: f64,
    ) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        let proto = if udp { 17 } else { 6 };
        let at = Timestamp::from_secs_f64;
        let start = at(times[0] - 0.05);
        let end = at(times[times.len() - 1] + dur + 1.0);
        let first = FirstPacket {
            tcp_flags: if udp { 0 } else { SYN },
            ttl: 64,
            ip_id: 1,
            tcp_window: 64240,
            tcp_seq: 1,
            payload_len: 0,
        };
        let s = SessionStart {
            id,
            ts: start,
            src,
            dst,
            sport: Some(sport),
            dport: Some(dport),
            protocol: proto,
            segment: 0,
            first,
        };
        self.events.push((start, 2 * id, FlowEvent::Start(s)));
        for (i, t) in times.iter().enumerate() {
            let (up, down) = sizes[i % sizes.len()];
            let x = SessionExchange {
                id,
                src,
                dst,
                sport: Some(sport),
                dport: Some(dport),
                protocol: proto,
                start: at(*t),
                end: at(t + dur),
                src_payload: up,
                dst_payload: down,
                opening: i == 0,
            };
            let reported = times.get(i + 1).map_or(end, |next| at(*next));
            self.events.push((reported, 2 * id, FlowEvent::Exchange(x)));
        }
        let rec = FlowRecord {
            id,
            segment: 0,
            start,
            end,
            src,
            dst,
            sport: Some(sport),
            dport: Some(dport),
            protocol: proto,
            src_bytes: sizes.iter().map(|s| s.0).sum(),
            dst_bytes: sizes.iter().map(|s| s.1).sum(),
            src_packets: times.len() as u64,
            dst_packets: times.len() as u64,
            icmp_type: None,
            icmp_code: None,
            vlan: None,
            conn_state: if udp { ConnState::SF } else { ConnState::S1 },
            result: EventResult::Success,
            end_reason: EndReason::Shutdown,
            src_tcp_flags: if udp { 0 } else { SYN | ACK | PSH },
            dst_tcp_flags: if udp { 0 } else { SYN | ACK | PSH },
            icmp_errors: 0,
            last_icmp_error: None,
            history: Default::default(),
            first,
        };
        self.events.push((end, 2 * id + 1, FlowEvent::End(rec)));
        id
    }

    /// The events in time order (what [`Feed::run`] feeds), for tests acting between them.
    pub fn into_events(mut self) -> Vec<(Timestamp, FlowEvent)> {
        self.events.sort_by_key(|(ts, order, _)| (*ts, *order));
        self.events.into_iter().map(|(ts, _, ev)| (ts, ev)).collect()
    }

    /// Runs the events through `det` in time order, calling `on_time` before each.
    pub fn run(mut self, det: &mut dyn Detector) -> Vec<Alert> {
        self.events.sort_by_key(|(ts, order, _)| (*ts, *order));
        let mut alerts = Vec::new();
        for (ts, _, ev) in &self.events {
            det.on_time(*ts, &mut alerts);
            det.on_event(ev, &mut alerts);
        }
        det.finish(&mut alerts);
        alerts
    }
}

/// The alert's JSON line (for assertion messages), with a test sensor's context.
pub fn json(a: &Alert) -> String {
    let device = crate::output::records::Device { name: "test".into(), ip: None, interface: None };
    a.to_json(&crate::output::records::RecordContext::new(device, NetSet::default_home(), 0, None))
}

pub fn ev_str<'a>(a: &'a Alert, key: &str) -> &'a str {
    a.evidence.get(key).and_then(|v| v.as_str()).unwrap_or_else(|| panic!("alert lacks string {key}: {a:?}"))
}

pub fn ev_f64(a: &Alert, key: &str) -> f64 {
    a.evidence.get(key).and_then(|v| v.as_f64()).unwrap_or_else(|| panic!("alert lacks number {key}: {a:?}"))
}
