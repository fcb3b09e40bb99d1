//! Flow sessions: the bounded flow table that turns decoded packets into bidirectional
//! 5-tuple sessions and emits a [`FlowEvent::Start`] when a session (or an active-timeout
//! segment of one) begins and a [`FlowEvent::End`] record when it ends. Every Start is
//! matched by exactly one End (FIN/RST, idle or active timeout, eviction, shutdown).
//! Sessions that stay open and pause also report each [`FlowEvent::Exchange`] that
//! follows a pause (see [`exchange`]), before their End.

mod exchange;
pub mod history;
pub mod key;
mod session;
pub mod table;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_exchange;

use crate::time::{Duration, Timestamp};
use std::net::IpAddr;

pub use table::FlowTable;

/// Flow-table settings (timeouts are in capture time).
#[derive(Clone, Debug, PartialEq)]
pub struct FlowConfig {
    /// Established TCP sessions idle this long are closed.
    pub tcp_idle: Duration,
    /// TCP attempts never answered (S0) or half-open are closed after this.
    pub tcp_handshake_idle: Duration,
    /// After FIN exchange or RST, late packets are absorbed for this long.
    pub tcp_closed_linger: Duration,
    pub udp_idle: Duration,
    pub icmp_idle: Duration,
    pub other_idle: Duration,
    /// Sessions longer than this are split: a record is emitted and counting restarts.
    pub active_timeout: Duration,
    /// Most sessions held at once; when full, the longest-idle session is evicted (and
    /// emitted as a record). The default (131072) keeps the whole process under 256 MiB
    /// during a spoofed-source SYN flood together with the detectors' default caps.
    pub max_flows: usize,
    /// Silence (no new payload either way) that makes a pause inside a session; the
    /// payload after it is a new exchange ([`FlowEvent::Exchange`]). Zero: not tracked.
    pub exchange_gap: Duration,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            tcp_idle: Duration::from_secs(300),
            tcp_handshake_idle: Duration::from_secs(10),
            tcp_closed_linger: Duration::from_secs(2),
            udp_idle: Duration::from_secs(60),
            icmp_idle: Duration::from_secs(30),
            other_idle: Duration::from_secs(60),
            active_timeout: Duration::from_secs(1800),
            max_flows: 131_072,
            exchange_gap: Duration::from_secs(5),
        }
    }
}

/// Zeek-style connection state (conn.log `conn_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnState {
    /// Connection attempt seen, no reply.
    S0,
    /// Established, not terminated.
    S1,
    /// Normal establishment and termination.
    SF,
    /// Connection attempt rejected (SYN answered by RST).
    REJ,
    /// Established, originator sent FIN, no FIN from responder.
    S2,
    /// Established, responder sent FIN, no FIN from originator.
    S3,
    /// Established, originator aborted with RST.
    RSTO,
    /// Established, responder aborted with RST.
    RSTR,
    /// Originator sent SYN then RST, no SYN-ACK seen.
    RSTOS0,
    /// Responder sent SYN-ACK then RST; no SYN from originator seen.
    RSTRH,
    /// Originator sent SYN then FIN, no SYN-ACK ("half open").
    SH,
    /// Responder sent SYN-ACK then FIN, no SYN from originator.
    SHR,
    /// No SYN seen, just midstream traffic (or non-TCP).
    OTH,
}

impl ConnState {
    pub const fn as_str(self) -> &'static str {
        match self {
            ConnState::S0 => "S0",
            ConnState::S1 => "S1",
            ConnState::SF => "SF",
            ConnState::REJ => "REJ",
            ConnState::S2 => "S2",
            ConnState::S3 => "S3",
            ConnState::RSTO => "RSTO",
            ConnState::RSTR => "RSTR",
            ConnState::RSTOS0 => "RSTOS0",
            ConnState::RSTRH => "RSTRH",
            ConnState::SH => "SH",
            ConnState::SHR => "SHR",
            ConnState::OTH => "OTH",
        }
    }
}

/// Why a record was emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// TCP FIN exchange completed.
    Fin,
    /// TCP reset.
    Rst,
    IdleTimeout,
    /// Split by the active timeout; the session continues in a new segment.
    ActiveTimeout,
    /// The flow table was full and this was the longest-idle session.
    Evicted,
    /// End of replay input or sensor shutdown.
    Shutdown,
}

impl EndReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            EndReason::Fin => "fin",
            EndReason::Rst => "rst",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::ActiveTimeout => "active_timeout",
            EndReason::Evicted => "evicted",
            EndReason::Shutdown => "shutdown",
        }
    }
}

/// ASIM `EventResult`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventResult {
    Success,
    Failure,
    NA,
}

impl EventResult {
    pub const fn as_str(self) -> &'static str {
        match self {
            EventResult::Success => "Success",
            EventResult::Failure => "Failure",
            EventResult::NA => "NA",
        }
    }
}

/// Header fields of the initiator's first packet, for scanner fingerprints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FirstPacket {
    pub tcp_flags: u8,
    pub ttl: u8,
    pub ip_id: u16,
    pub tcp_window: u16,
    pub tcp_seq: u32,
    pub payload_len: u32,
}

/// A session (or active-timeout segment) has begun.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionStart {
    /// Unique per segment within a run; the matching [`FlowRecord`] has the same id.
    pub id: u64,
    pub ts: Timestamp,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    pub protocol: u8,
    /// 0 for a new session; n for the n-th active-timeout continuation.
    pub segment: u32,
    pub first: FirstPacket,
}

/// A finished session (or segment): one ASIM NetworkSession record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowRecord {
    pub id: u64,
    pub segment: u32,
    pub start: Timestamp,
    pub end: Timestamp,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    pub protocol: u8,
    /// IP-layer bytes and packets, initiator → responder and back.
    pub src_bytes: u64,
    pub dst_bytes: u64,
    pub src_packets: u64,
    pub dst_packets: u64,
    /// For ICMP sessions: type/code of the initiator's first message.
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    pub vlan: Option<u16>,
    pub conn_state: ConnState,
    pub result: EventResult,
    pub end_reason: EndReason,
    /// OR of all TCP flags sent by the initiator / responder.
    pub src_tcp_flags: u8,
    pub dst_tcp_flags: u8,
    /// ICMP errors (unreachable, time exceeded, ...) that quoted this session, and the
    /// last one's type/code.
    pub icmp_errors: u32,
    pub last_icmp_error: Option<(u8, u8)>,
    pub first: FirstPacket,
    /// Zeek-style connection history of the whole session so far (TCP and UDP).
    pub history: history::History,
}

/// One exchange inside a session that paused: payload that followed at least
/// [`FlowConfig::exchange_gap`] of silence, up to the next pause (or the session's end).
/// Not a record: record writers and the Sentinel rules ignore it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionExchange {
    /// The session segment current when the exchange was reported (the id of its
    /// Start/End; an exchange straddling an active-timeout split carries the later one).
    pub id: u64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    pub protocol: u8,
    /// First and last new payload of the exchange (millisecond precision).
    pub start: Timestamp,
    pub end: Timestamp,
    /// Payload bytes (transport payload, new data only) initiator → responder and back.
    pub src_payload: u64,
    pub dst_payload: u64,
    /// The session's opening activity, reported once the session first paused (the
    /// exchanges after it each followed a pause).
    pub opening: bool,
}

/// What the flow table tells the detector thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowEvent {
    Start(SessionStart),
    End(FlowRecord),
    /// Activity inside a session that stays open (reported before the session's End).
    Exchange(SessionExchange),
}
