//! One session's state inside the flow table: counters per direction, the TCP
//! handshake/teardown history, and the rules that turn it into a Zeek `conn_state`, an
//! ASIM `EventResult` and finally a [`FlowRecord`].

use super::exchange::{Block, Exchanges};
use super::history::History;
use super::key::{icmp_is_request, FlowKey};
use super::{ConnState, EndReason, EventResult, FirstPacket, FlowRecord, SessionExchange, SessionStart};
use crate::decode::{proto, tcp_flags, PacketMeta, Transport};
use crate::time::Timestamp;
use std::net::IpAddr;

/// Index meaning "no entry" in the intrusive idle lists.
pub const NIL: u32 = u32::MAX;

/// Idle-timeout class; each has its own idle list in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutClass {
    /// TCP attempt not (yet) answered by a SYN-ACK.
    TcpHandshake = 0,
    TcpEstablished = 1,
    /// FIN exchange done or RST seen: lingering for late packets.
    TcpClosed = 2,
    Udp = 3,
    Icmp = 4,
    Other = 5,
}

pub const CLASS_COUNT: usize = 6;

// TCP history bits (initiator = O, responder = R).
const O_SYN: u8 = 1;
const R_SYNACK: u8 = 2;
const O_FIN: u8 = 4;
const R_FIN: u8 = 8;
const O_RST: u8 = 16;
const R_RST: u8 = 32;
/// Not a packet kind: the first RST seen came from the initiator.
const O_FIRST_RST: u8 = 64;

/// `bucket` of a slot on the free list.
const FREE: u32 = u32::MAX;

/// A session slot (on the free list when not [`Self::live`]).
///
/// Laid out by hand (`repr(C)`, 64-byte aligned: exactly three cache lines) so that an
/// ordinary packet touches two lines: line 0 holds the key (the lookup), the span and
/// the one-byte state, line 1 the counters and the history. Line 2 holds what payload
/// packets (the exchange tracker), ICMP errors, the Start and End events and the table's
/// bookkeeping use. Nothing the key already says is stored again: the initiator's and
/// responder's endpoints are the key's two, in the order `init_is_a` tells, and the map
/// hash is the key's. The field order is the layout; `_SLOT_LAYOUT` checks it.
#[derive(Clone, Debug)]
#[repr(C, align(64))]
pub struct Session {
    // Line 0: lookup, span and state.
    pub key: FlowKey,
    pub start: Timestamp,
    pub last: Timestamp,
    pub class: TimeoutClass,
    /// Set once FIN-both or RST closed the session.
    pub closed: Option<EndReason>,
    pub src_flags: u8,
    pub dst_flags: u8,
    history: u8,
    pub has_first: bool,
    /// The initiator is the key's lower endpoint (so a packet's direction is known from
    /// its key's orientation, without comparing addresses).
    init_is_a: bool,
    /// Initiator and responder are the same endpoint (a host talking to itself).
    self_talk: bool,
    // Line 1: what every packet counts.
    pub src_bytes: u64,
    pub dst_bytes: u64,
    pub src_packets: u64,
    pub dst_packets: u64,
    /// Zeek-style history; kept across active-timeout segments like the TCP state.
    pub conn_history: History,
    pub icmp_first: Option<(u8, u8)>,
    pub has_ports: bool,
    pub segment: u32,
    pub icmp_errors: u32,
    // Line 2: payload packets, ICMP errors, events, table bookkeeping.
    pub id: u64,
    /// Packets counted in `dst_packets` that were ICMP errors (not real answers).
    pub dst_error_packets: u64,
    /// Pauses and exchanges inside the session; kept across active-timeout segments.
    pub exchanges: Exchanges,
    pub last_icmp_error: Option<(u8, u8)>,
    pub first: FirstPacket,
    /// The table's map bucket that holds this slot's index (so ending the session
    /// removes it from the map without a probe); the table renews it when the map
    /// rehashes. `FREE` while the slot is on the free list.
    pub bucket: u32,
}

/// Compile-time check of the slot layout: three cache lines, with the per-packet fields
/// in the first two.
const _SLOT_LAYOUT: () = {
    assert!(std::mem::size_of::<Session>() == 192);
    assert!(std::mem::offset_of!(Session, self_talk) == 63);
    assert!(std::mem::offset_of!(Session, src_bytes) == 64);
    assert!(std::mem::offset_of!(Session, icmp_errors) == 124);
    assert!(std::mem::offset_of!(Session, id) == 128);
};

impl Session {
    /// A free slot placeholder (every field is set again by [`Self::init`]).
    pub fn vacant(key: FlowKey) -> Self {
        Session {
            key,
            bucket: FREE,
            has_ports: false,
            init_is_a: false,
            self_talk: false,
            id: 0,
            segment: 0,
            start: Timestamp::ZERO,
            last: Timestamp::ZERO,
            class: TimeoutClass::Other,
            src_bytes: 0,
            dst_bytes: 0,
            src_packets: 0,
            dst_packets: 0,
            dst_error_packets: 0,
            src_flags: 0,
            dst_flags: 0,
            history: 0,
            closed: None,
            icmp_first: None,
            icmp_errors: 0,
            last_icmp_error: None,
            first: FirstPacket::default(),
            has_first: false,
            conn_history: History::default(),
            exchanges: Exchanges::default(),
        }
    }

    /// Whether the slot holds a session (is not on the free list).
    pub fn live(&self) -> bool {
        self.bucket != FREE
    }

    /// Puts the slot on the free list (after the table took it out of the map).
    pub fn free(&mut self) {
        self.bucket = FREE;
    }

    /// Resets this slot for a new session, field by field in place (no whole new
    /// `Session` built and moved over the slot). The table sets `bucket` once the session
    /// is in the map.
    #[inline]
    pub fn init(&mut self, key: FlowKey, has_ports: bool, init_is_a: bool, id: u64, ts: Timestamp) {
        self.key = key;
        self.has_ports = has_ports;
        self.init_is_a = init_is_a;
        self.self_talk = key.is_loop();
        self.id = id;
        self.segment = 0;
        self.reset_counters(ts);
        self.class = match key.protocol {
            proto::TCP if has_ports => TimeoutClass::TcpEstablished,
            proto::UDP => TimeoutClass::Udp,
            proto::ICMP | proto::ICMPV6 => TimeoutClass::Icmp,
            _ => TimeoutClass::Other,
        };
        self.history = 0;
        self.closed = None;
        self.icmp_first = None;
        self.first = FirstPacket::default();
        self.has_first = false;
        self.conn_history = History::default();
        self.exchanges = Exchanges::default();
    }

    /// Starts the next active-timeout segment: fresh counters and id; the TCP history
    /// (so the state stays meaningful) and the first-packet fields carry over.
    pub fn next_segment(&mut self, id: u64, ts: Timestamp) {
        self.id = id;
        self.segment += 1;
        self.reset_counters(ts);
    }

    /// What a new session and a new segment both start from: the span at `ts`, no bytes,
    /// packets, flags or ICMP errors counted yet.
    fn reset_counters(&mut self, ts: Timestamp) {
        self.start = ts;
        self.last = ts;
        self.src_bytes = 0;
        self.dst_bytes = 0;
        self.src_packets = 0;
        self.dst_packets = 0;
        self.dst_error_packets = 0;
        self.src_flags = 0;
        self.dst_flags = 0;
        self.icmp_errors = 0;
        self.last_icmp_error = None;
    }

    /// Whether a packet of this session travels initiator → responder (`sender_is_a`: its
    /// sender is the key's lower endpoint, from [`FlowKey::oriented`]).
    #[inline]
    pub fn is_from_initiator(&self, pkt: &PacketMeta, sender_is_a: bool) -> bool {
        if self.self_talk {
            // Talking to itself: only the echo type tells the directions apart.
            return match pkt.transport {
                Transport::Icmp { v6, icmp_type, .. } => icmp_type != if v6 { 129 } else { 0 },
                _ => true,
            };
        }
        sender_is_a == self.init_is_a
    }

    fn span(&mut self, ts: Timestamp) {
        if ts < self.start {
            self.start = ts;
        }
        if ts > self.last {
            self.last = ts;
        }
    }

    /// Counts an ordinary packet and updates TCP/ICMP history.
    pub fn count(&mut self, pkt: &PacketMeta, from_init: bool) {
        self.span(pkt.ts);
        let len = u64::from(pkt.ip_len);
        if from_init {
            self.src_bytes += len;
            self.src_packets += 1;
        } else {
            self.dst_bytes += len;
            self.dst_packets += 1;
        }
        match pkt.transport {
            Transport::Tcp { flags, seq, window, payload_len, .. } => {
                if from_init && !self.has_first {
                    self.record_first(pkt, flags, seq, window, payload_len);
                }
                self.tcp_flags(flags, from_init);
                self.conn_history.tcp(flags, payload_len, from_init);
            }
            Transport::Udp { payload_len, .. } => {
                if from_init && !self.has_first {
                    self.record_first(pkt, 0, 0, 0, payload_len);
                }
                self.conn_history.udp(payload_len, from_init);
            }
            Transport::Icmp { icmp_type, code, .. } => {
                if from_init && !self.has_first {
                    self.record_first(pkt, 0, 0, 0, 0);
                }
                if from_init && self.icmp_first.is_none() {
                    self.icmp_first = Some((icmp_type, code));
                }
            }
            Transport::Other { .. } => {
                if from_init && !self.has_first {
                    self.record_first(pkt, 0, 0, 0, 0);
                }
            }
        }
    }

    /// Tracks the packet's payload for exchanges (`gap_ms`: the pause length, > 0);
    /// returns the exchange it completed, if any.
    #[inline]
    pub fn track_exchange(&mut self, pkt: &PacketMeta, from_init: bool, gap_ms: u32) -> Option<Block> {
        match pkt.transport {
            Transport::Tcp { flags, seq, payload_len, .. } if payload_len > 0 && flags & tcp_flags::RST == 0 => {
                // A SYN occupies the first sequence number (TCP Fast Open data follows it).
                let data_seq = seq.wrapping_add(u32::from(flags & tcp_flags::SYN != 0));
                self.exchanges.tcp(pkt.ts, from_init, data_seq, payload_len, gap_ms)
            }
            Transport::Udp { payload_len, .. } => self.exchanges.datagram(pkt.ts, from_init, payload_len, gap_ms),
            _ => None,
        }
    }

    /// Counts an ICMP error that quoted this session. It travels opposite to the quoted
    /// packet: when the initiator's packet was quoted, it counts as responder → initiator.
    pub fn count_icmp_error(&mut self, pkt: &PacketMeta, quoted_from_init: bool, icmp_type: u8, code: u8) {
        self.span(pkt.ts);
        let len = u64::from(pkt.ip_len);
        if quoted_from_init {
            self.dst_bytes += len;
            self.dst_packets += 1;
            self.dst_error_packets += 1;
        } else {
            self.src_bytes += len;
            self.src_packets += 1;
        }
        self.icmp_errors = self.icmp_errors.saturating_add(1);
        self.last_icmp_error = Some((icmp_type, code));
    }

    fn record_first(&mut self, pkt: &PacketMeta, flags: u8, seq: u32, window: u16, payload_len: u32) {
        self.has_first = true;
        self.first = FirstPacket {
            tcp_flags: flags,
            ttl: pkt.ttl(),
            ip_id: pkt.ip_id(),
            tcp_window: window,
            tcp_seq: seq,
            payload_len,
        };
    }

    fn tcp_flags(&mut self, flags: u8, from_init: bool) {
        let syn = flags & tcp_flags::SYN != 0;
        let ack = flags & tcp_flags::ACK != 0;
        let (s, f, r) = if from_init {
            self.src_flags |= flags;
            (if syn && !ack { O_SYN } else { 0 }, O_FIN, O_RST)
        } else {
            self.dst_flags |= flags;
            (if syn && ack { R_SYNACK } else { 0 }, R_FIN, R_RST)
        };
        // Only SYN, FIN and RST add history bits, and the closing reason and the class
        // follow from the history: both were worked out by the packet that last changed
        // it (a new session's empty history classes it established, as `init` sets). So
        // a packet with none of the three (most of a session's) changes nothing more.
        if flags & (tcp_flags::SYN | tcp_flags::FIN | tcp_flags::RST) == 0 {
            return;
        }
        self.history |= s;
        if flags & tcp_flags::FIN != 0 {
            self.history |= f;
        }
        if flags & tcp_flags::RST != 0 {
            if self.history & (O_RST | R_RST) == 0 && from_init {
                self.history |= O_FIRST_RST;
            }
            self.history |= r;
        }
        if self.closed.is_none() {
            if self.history & (O_RST | R_RST) != 0 {
                self.closed = Some(EndReason::Rst);
            } else if self.history & (O_FIN | R_FIN) == O_FIN | R_FIN {
                self.closed = Some(EndReason::Fin);
            }
        }
        self.class = if self.closed.is_some() {
            TimeoutClass::TcpClosed
        } else if self.history & (O_SYN | R_SYNACK) == O_SYN {
            TimeoutClass::TcpHandshake
        } else {
            TimeoutClass::TcpEstablished
        };
    }

    fn is_tcp(&self) -> bool {
        self.key.protocol == proto::TCP && self.has_ports
    }

    /// Zeek `conn_state` from the TCP history (OTH for everything that is not TCP).
    pub fn conn_state(&self) -> ConnState {
        if !self.is_tcp() {
            return ConnState::OTH;
        }
        let h = self.history;
        let has = |bit: u8| h & bit != 0;
        match (has(O_SYN), has(R_SYNACK)) {
            (false, false) => ConnState::OTH,
            (true, false) => {
                if has(R_RST) {
                    ConnState::REJ
                } else if has(O_RST) {
                    ConnState::RSTOS0
                } else if has(O_FIN) {
                    ConnState::SH
                } else if self.dst_packets == 0 {
                    ConnState::S0
                } else {
                    ConnState::OTH
                }
            }
            (false, true) if has(R_RST) && !has(O_RST) => ConnState::RSTRH,
            (false, true) if has(R_FIN) && !has(O_FIN) => ConnState::SHR,
            _ => {
                if has(O_RST) || has(R_RST) {
                    if has(O_FIRST_RST) {
                        ConnState::RSTO
                    } else {
                        ConnState::RSTR
                    }
                } else {
                    match (has(O_FIN), has(R_FIN)) {
                        (true, true) => ConnState::SF,
                        (true, false) => ConnState::S2,
                        (false, true) => ConnState::S3,
                        (false, false) => ConnState::S1,
                    }
                }
            }
        }
    }

    /// ASIM EventResult. Success: TCP handshake completed, or packets both ways (ICMP
    /// errors do not count as an answer). Failure: REJ/S0/RSTOS0/SH, unanswered UDP or
    /// ICMP request. NA otherwise (one-way other protocols, stray ICMP, RSTRH/SHR, ...).
    pub fn event_result(&self, state: ConnState) -> EventResult {
        let answered = self.src_packets > 0 && self.dst_packets > self.dst_error_packets;
        if self.is_tcp() {
            return match state {
                ConnState::REJ | ConnState::S0 | ConnState::RSTOS0 | ConnState::SH => EventResult::Failure,
                _ if self.history & (O_SYN | R_SYNACK) == O_SYN | R_SYNACK => EventResult::Success,
                ConnState::RSTRH | ConnState::SHR => EventResult::NA,
                _ if answered => EventResult::Success,
                _ => EventResult::NA,
            };
        }
        match self.key.protocol {
            _ if answered => EventResult::Success,
            proto::UDP => EventResult::Failure,
            proto::ICMP | proto::ICMPV6 => match self.icmp_first {
                Some((t, _)) if icmp_is_request(self.key.protocol, t) => EventResult::Failure,
                // Answered only by an ICMP error, whatever was asked.
                _ if self.dst_error_packets > 0 => EventResult::Failure,
                _ => EventResult::NA,
            },
            _ if self.dst_error_packets > 0 => EventResult::Failure,
            _ => EventResult::NA,
        }
    }

    /// The initiator's and the responder's endpoints: address and key port (the echo id
    /// for ICMP echo, 0 for other ICMP and other protocols).
    #[inline]
    pub fn endpoints(&self) -> ((IpAddr, u16), (IpAddr, u16)) {
        let (a, b) = (self.key.endpoint_a(), self.key.endpoint_b());
        if self.init_is_a {
            (a, b)
        } else {
            (b, a)
        }
    }

    /// The endpoints' addresses and, for sessions with ports, their ports.
    #[inline]
    fn addresses_and_ports(&self) -> (IpAddr, IpAddr, Option<u16>, Option<u16>) {
        let ((src, sport), (dst, dport)) = self.endpoints();
        if self.has_ports {
            (src, dst, Some(sport), Some(dport))
        } else {
            (src, dst, None, None)
        }
    }

    pub fn start_event(&self) -> SessionStart {
        let (src, dst, sport, dport) = self.addresses_and_ports();
        SessionStart {
            id: self.id,
            ts: self.start,
            src,
            dst,
            sport,
            dport,
            protocol: self.key.protocol,
            segment: self.segment,
            first: self.first,
        }
    }

    /// The exchange event for a finished block of this session.
    pub fn exchange_event(&self, b: Block) -> SessionExchange {
        let (src, dst, sport, dport) = self.addresses_and_ports();
        SessionExchange {
            id: self.id,
            src,
            dst,
            sport,
            dport,
            protocol: self.key.protocol,
            start: b.start,
            end: b.end,
            src_payload: u64::from(b.src_bytes),
            dst_payload: u64::from(b.dst_bytes),
            opening: b.opening,
        }
    }

    /// The exchange still open when the session ends, if it is one.
    pub fn final_exchange(&self) -> Option<SessionExchange> {
        self.exchanges.finish(self.last).map(|b| self.exchange_event(b))
    }

    #[inline(always)]
    pub fn record(&self, end_reason: EndReason) -> FlowRecord {
        // State and result first: the endpoints (two `IpAddr`s, many registers) are then
        // only live while the record is stored, not across these branches.
        let conn_state = self.conn_state();
        let result = self.event_result(conn_state);
        let (src, dst, sport, dport) = self.addresses_and_ports();
        FlowRecord {
            id: self.id,
            segment: self.segment,
            start: self.start,
            end: self.last,
            src,
            dst,
            sport,
            dport,
            protocol: self.key.protocol,
            src_bytes: self.src_bytes,
            dst_bytes: self.dst_bytes,
            src_packets: self.src_packets,
            dst_packets: self.dst_packets,
            icmp_type: self.icmp_first.map(|(t, _)| t),
            icmp_code: self.icmp_first.map(|(_, c)| c),
            vlan: self.key.vlan(),
            conn_state,
            result,
            end_reason,
            src_tcp_flags: self.src_flags,
            dst_tcp_flags: self.dst_flags,
            icmp_errors: self.icmp_errors,
            last_icmp_error: self.last_icmp_error,
            first: self.first,
            history: self.conn_history,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flag folding as it was written before the shortcut: every bit, the closing
    /// reason and the class worked out for every packet.
    fn reference(s: &mut Session, flags: u8, from_init: bool) {
        let syn = flags & tcp_flags::SYN != 0;
        let ack = flags & tcp_flags::ACK != 0;
        let (b, f, r) = if from_init {
            s.src_flags |= flags;
            (if syn && !ack { O_SYN } else { 0 }, O_FIN, O_RST)
        } else {
            s.dst_flags |= flags;
            (if syn && ack { R_SYNACK } else { 0 }, R_FIN, R_RST)
        };
        s.history |= b;
        if flags & tcp_flags::FIN != 0 {
            s.history |= f;
        }
        if flags & tcp_flags::RST != 0 {
            if s.history & (O_RST | R_RST) == 0 && from_init {
                s.history |= O_FIRST_RST;
            }
            s.history |= r;
        }
        if s.closed.is_none() {
            if s.history & (O_RST | R_RST) != 0 {
                s.closed = Some(EndReason::Rst);
            } else if s.history & (O_FIN | R_FIN) == O_FIN | R_FIN {
                s.closed = Some(EndReason::Fin);
            }
        }
        s.class = if s.closed.is_some() {
            TimeoutClass::TcpClosed
        } else if s.history & (O_SYN | R_SYNACK) == O_SYN {
            TimeoutClass::TcpHandshake
        } else {
            TimeoutClass::TcpEstablished
        };
    }

    /// From every state a session can be in (each history, each closing reason that
    /// history allows, the class that goes with them), every flag byte either way leaves
    /// the same history, closing reason, class and direction flags as the reference.
    #[test]
    fn tcp_flags_shortcut_matches_the_reference() {
        let key = FlowKey::new([192, 0, 2, 1].into(), 1000, [192, 0, 2, 2].into(), 80, proto::TCP, None);
        let mut checked = 0;
        for history in 0..128u8 {
            let rst = history & (O_RST | R_RST) != 0;
            let fins = history & (O_FIN | R_FIN) == O_FIN | R_FIN;
            let mut closings = vec![];
            if !rst && !fins {
                closings.push(None);
            }
            if rst {
                closings.push(Some(EndReason::Rst));
            }
            if fins {
                closings.push(Some(EndReason::Fin));
            }
            for closed in closings {
                let mut start = Session::vacant(key);
                start.init(key, true, true, 1, Timestamp::ZERO);
                (start.history, start.closed, start.src_flags, start.dst_flags) = (history, closed, 0x10, 0x02);
                // The class the reference would have left (a packet that adds nothing).
                reference(&mut start, 0, true);
                start.src_flags = 0x10;
                for flags in 0..=255u8 {
                    for from_init in [false, true] {
                        let (mut new, mut old) = (start.clone(), start.clone());
                        new.tcp_flags(flags, from_init);
                        reference(&mut old, flags, from_init);
                        let state = |s: &Session| (s.history, s.closed, s.class, s.src_flags, s.dst_flags);
                        assert_eq!(state(&new), state(&old), "history {history:#x} {closed:?} flags {flags:#x}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 60_000);
    }
}
