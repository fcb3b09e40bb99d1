//! What a single session tells the scan detector: the kind of probe its first packet
//! was (SYN, FIN, NULL, XMAS, ACK, UDP, ICMP echo), the scanning tool its header fields
//! betray (masscan, zmap, nmap), and — once it ends — whether the attempt failed.

use crate::flow::{ConnState, FirstPacket, FlowRecord, SessionStart};
use std::net::IpAddr;

pub use crate::decode::proto::{ICMP, ICMPV6, TCP, UDP};
pub use crate::decode::tcp_flags::{ACK, FIN, PSH, RST, SYN, URG};

/// How the initiator probed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProbeKind {
    /// SYN only; half-open (SYN → SYN-ACK → RST) or unanswered.
    Syn,
    /// Full handshake with no data, then closed (connect() scan).
    Connect,
    /// SYN answered by SYN-ACK, then a bare RST from the prober (raw SYN scanner).
    HalfOpen,
    Fin,
    Null,
    Xmas,
    /// ACK-only packet on a new session answered by at most a RST.
    Ack,
    /// Other flag combinations without SYN/ACK/RST (e.g. FIN|PSH).
    OddFlags,
    Udp,
    IcmpEcho,
}

pub const PROBE_KINDS: usize = 10;

impl ProbeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Syn => "SYN",
            ProbeKind::Connect => "Connect",
            ProbeKind::HalfOpen => "SYN",
            ProbeKind::Fin => "FIN",
            ProbeKind::Null => "NULL",
            ProbeKind::Xmas => "XMAS",
            ProbeKind::Ack => "ACK",
            ProbeKind::OddFlags => "OddFlags",
            ProbeKind::Udp => "UDP",
            ProbeKind::IcmpEcho => "ICMP",
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
    pub fn from_index(i: usize) -> ProbeKind {
        [
            ProbeKind::Syn,
            ProbeKind::Connect,
            ProbeKind::HalfOpen,
            ProbeKind::Fin,
            ProbeKind::Null,
            ProbeKind::Xmas,
            ProbeKind::Ack,
            ProbeKind::OddFlags,
            ProbeKind::Udp,
            ProbeKind::IcmpEcho,
        ][i]
    }
    /// A packet no normal stack sends to open a connection.
    pub fn is_stealth(self) -> bool {
        matches!(self, ProbeKind::Fin | ProbeKind::Null | ProbeKind::Xmas | ProbeKind::OddFlags | ProbeKind::Ack)
    }
}

/// Scanner software recognisable from the first packet's header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tool {
    Masscan,
    Zmap,
    Nmap,
}

pub const TOOLS: usize = 3;

impl Tool {
    pub fn as_str(self) -> &'static str {
        match self {
            Tool::Masscan => "masscan",
            Tool::Zmap => "zmap",
            Tool::Nmap => "nmap",
        }
    }
    pub fn from_index(i: usize) -> Tool {
        [Tool::Masscan, Tool::Zmap, Tool::Nmap][i]
    }
}

/// What the first packet of a new session (segment 0) says at Start time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartVerdict {
    /// An attempt whose outcome is unknown until the End record.
    Attempt(ProbeKind),
    /// A probe that fails whatever the answer (stealth flags, fingerprinted tool).
    Probe(ProbeKind),
    /// Decide at End (ACK-only could be a probe or mid-session pickup; ICMP type unknown).
    Defer,
    /// Not an attempt (mid-session traffic, odd protocol).
    Ignore,
}

/// Classifies the first TCP flags of a new session.
pub fn tcp_first_kind(flags: u8) -> Option<ProbeKind> {
    if flags & (SYN | ACK | RST) == SYN {
        return Some(ProbeKind::Syn);
    }
    if flags & (SYN | ACK | RST) != 0 {
        return None; // ACK-bearing or RST: mid-session or reply traffic
    }
    Some(match flags & (FIN | PSH | URG) {
        0 if flags == 0 => ProbeKind::Null,
        FIN if flags == FIN => ProbeKind::Fin,
        x if x == FIN | PSH | URG => ProbeKind::Xmas,
        _ => ProbeKind::OddFlags,
    })
}

/// Recognises scanner tools from a TCP SYN's header fields (IPv4 needs the IP ID).
pub fn fingerprint(dst: IpAddr, dport: u16, first: &FirstPacket) -> Option<Tool> {
    if first.tcp_flags & (SYN | ACK | RST) != SYN {
        return None;
    }
    if let IpAddr::V4(d) = dst {
        // masscan: ip_id = ip_them ^ port_them ^ seqno (templ-pkt.c), truncated to 16 bits.
        let expect = (u32::from(d) ^ dport as u32 ^ first.tcp_seq) & 0xffff;
        if first.tcp_window == 1024 && first.ip_id as u32 == expect {
            return Some(Tool::Masscan);
        }
        if first.ip_id == 54321 {
            return Some(Tool::Zmap);
        }
    }
    if matches!(first.tcp_window, 1024 | 2048 | 3072 | 4096) && first.payload_len == 0 {
        return Some(Tool::Nmap);
    }
    None
}

/// Whether `dst` can be a scan target at all. Multicast, limited broadcast (and the
/// unspecified address) reach groups, not a host: mDNS, SSDP, LLMNR, DHCP and IPv6
/// neighbour discovery send to them all the time and never answer like a unicast
/// service, so counting them would make every chatty workstation a "scanner". Without
/// the link layer, a subnet-directed broadcast is recognised by its host part: IPv4
/// addresses ending in `.255` (the broadcast of every /24 and shorter prefix whose last
/// octet is all ones) are skipped too — at the cost of ignoring a genuine host `x.y.z.255`
/// in a /23 or wider, one address in 256 of a sweep.
pub fn scan_target_eligible(dst: IpAddr) -> bool {
    match dst {
        IpAddr::V4(a) => !(a.is_multicast() || a.is_broadcast() || a.is_unspecified() || a.octets()[3] == 255),
        IpAddr::V6(a) => !(a.is_multicast() || a.is_unspecified()),
    }
}

/// UDP source ports of discovery protocols whose queries go to a group address and
/// whose answers come back unicast from the responder's service port (LLMNR 5355, mDNS
/// 5353, SSDP 1900, WS-Discovery 3702, NetBIOS name/datagram 137/138, DHCP 67/68,
/// DHCPv6 546/547). The query went to multicast or broadcast, so the flow table cannot
/// pair the answer with it and the answer starts a session of its own, "initiated" by
/// the responder towards the querier's ephemeral port: a reply, not an attempt.
#[cfg_attr(not(test), allow(dead_code))]
pub const DISCOVERY_RESPONSE_PORTS: &[u16] = &[67, 68, 137, 138, 546, 547, 1900, 3702, 5353, 5355];

/// A UDP session that is an answer to a group-addressed discovery query (see
/// [`DISCOVERY_RESPONSE_PORTS`]).
pub fn discovery_response(protocol: u8, sport: Option<u16>) -> bool {
    // A match compiles to a few compares; the test keeps it equal to the list.
    protocol == UDP && sport.is_some_and(|p| matches!(p, 67 | 68 | 137 | 138 | 546 | 547 | 1900 | 3702 | 5353 | 5355))
}

/// What a session start says, given its [`fingerprint`] (`None` for non-TCP sessions;
/// the scan detector computes it anyway, so it is passed in rather than computed twice).
#[inline]
pub fn start_verdict(s: &SessionStart, tool: Option<Tool>) -> StartVerdict {
    if s.segment != 0 || !scan_target_eligible(s.dst) || discovery_response(s.protocol, s.sport) {
        return StartVerdict::Ignore;
    }
    match s.protocol {
        TCP => match tcp_first_kind(s.first.tcp_flags) {
            Some(ProbeKind::Syn) => {
                if tool.is_some() {
                    StartVerdict::Probe(ProbeKind::Syn)
                } else {
                    StartVerdict::Attempt(ProbeKind::Syn)
                }
            }
            Some(k) => StartVerdict::Probe(k),
            None if s.first.tcp_flags == ACK && s.first.payload_len == 0 => StartVerdict::Defer,
            None => StartVerdict::Ignore,
        },
        UDP => StartVerdict::Attempt(ProbeKind::Udp),
        ICMP | ICMPV6 => StartVerdict::Defer,
        _ => StartVerdict::Ignore,
    }
}

/// Outcome of an ended session, for scan counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Pending,
    Failure,
    Success,
}

/// True when neither side sent application data (IP bytes within header allowance).
fn no_payload(rec: &FlowRecord) -> bool {
    let per_packet = if rec.src.is_ipv4() { 20 + 60 } else { 40 + 60 };
    rec.src_bytes <= rec.src_packets * per_packet && rec.dst_bytes <= rec.dst_packets * per_packet
}

/// Probe kind and outcome of an ended session; `None` when it is not an attempt.
pub fn end_verdict(rec: &FlowRecord) -> Option<(ProbeKind, Outcome)> {
    if rec.segment != 0 || !scan_target_eligible(rec.dst) || discovery_response(rec.protocol, rec.sport) {
        return None;
    }
    match rec.protocol {
        TCP => {
            let kind = tcp_first_kind(rec.first.tcp_flags);
            match kind {
                Some(ProbeKind::Syn) => {}
                Some(k) => return Some((k, Outcome::Failure)),
                None => {
                    // ACK-only on a new session, answered by nothing or a bare RST.
                    let ack_probe = rec.first.tcp_flags == ACK
                        && rec.first.payload_len == 0
                        && rec.src_packets <= 2
                        && rec.dst_tcp_flags & !RST == 0
                        && no_payload(rec);
                    return ack_probe.then_some((ProbeKind::Ack, Outcome::Failure));
                }
            }
            if rec.icmp_errors > 0 && rec.dst_packets == 0 {
                return Some((ProbeKind::Syn, Outcome::Failure));
            }
            match rec.conn_state {
                ConnState::S0 | ConnState::REJ | ConnState::RSTOS0 | ConnState::SH => {
                    Some((ProbeKind::Syn, Outcome::Failure))
                }
                ConnState::RSTRH | ConnState::SHR | ConnState::OTH => None,
                _ => {
                    let handshake = rec.dst_tcp_flags & (SYN | ACK) == SYN | ACK;
                    if !handshake {
                        return Some((ProbeKind::Syn, Outcome::Failure));
                    }
                    if rec.src_tcp_flags & ACK == 0 {
                        // SYN, SYN-ACK, bare RST: raw half-open scan (nmap -sS, masscan).
                        return Some((ProbeKind::HalfOpen, Outcome::Failure));
                    }
                    if no_payload(rec) && rec.src_packets <= 4 && rec.dst_packets <= 3 {
                        return Some((ProbeKind::Connect, Outcome::Failure));
                    }
                    Some((ProbeKind::Syn, Outcome::Success))
                }
            }
        }
        UDP => {
            let failed = rec.icmp_errors > 0 || rec.dst_packets == 0;
            Some((ProbeKind::Udp, if failed { Outcome::Failure } else { Outcome::Success }))
        }
        ICMP | ICMPV6 => {
            let echo = matches!((rec.protocol, rec.icmp_type), (ICMP, Some(8)) | (ICMPV6, Some(128)));
            if !echo {
                return None;
            }
            let failed = rec.icmp_errors > 0 || rec.dst_packets == 0;
            Some((ProbeKind::IcmpEcho, if failed { Outcome::Failure } else { Outcome::Success }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_first_flags() {
        assert_eq!(tcp_first_kind(SYN), Some(ProbeKind::Syn));
        assert_eq!(tcp_first_kind(SYN | 0xC0), Some(ProbeKind::Syn));
        assert_eq!(tcp_first_kind(FIN), Some(ProbeKind::Fin));
        assert_eq!(tcp_first_kind(0), Some(ProbeKind::Null));
        assert_eq!(tcp_first_kind(FIN | PSH | URG), Some(ProbeKind::Xmas));
        assert_eq!(tcp_first_kind(FIN | PSH), Some(ProbeKind::OddFlags));
        assert_eq!(tcp_first_kind(ACK), None);
        assert_eq!(tcp_first_kind(ACK | PSH), None);
        assert_eq!(tcp_first_kind(SYN | ACK), None);
    }

    #[test]
    fn fingerprints_masscan_zmap_nmap() {
        let dst: IpAddr = "198.51.100.7".parse().unwrap();
        let seq = 0xdead_beef;
        let ip_id = ((u32::from(std::net::Ipv4Addr::new(198, 51, 100, 7)) ^ 443 ^ seq) & 0xffff) as u16;
        let mut p = FirstPacket { tcp_flags: SYN, ttl: 255, ip_id, tcp_window: 1024, tcp_seq: seq, payload_len: 0 };
        assert_eq!(fingerprint(dst, 443, &p), Some(Tool::Masscan));
        assert_eq!(fingerprint(dst, 444, &p), Some(Tool::Nmap), "wrong port breaks the masscan cookie");
        p.ip_id = 54321;
        p.tcp_window = 65535;
        assert_eq!(fingerprint(dst, 443, &p), Some(Tool::Zmap));
        p.ip_id = 7;
        assert_eq!(fingerprint(dst, 443, &p), None);
        p.tcp_window = 64240;
        assert_eq!(fingerprint(dst, 443, &p), None);
    }

    #[test]
    fn group_and_broadcast_destinations_are_never_scan_targets() {
        for a in [
            "224.0.0.251",
            "239.255.255.250",
            "255.255.255.255",
            "192.168.1.255",
            "0.0.0.0",
            "ff02::1:3",
            "ff02::fb",
            "::",
        ] {
            assert!(!scan_target_eligible(a.parse().unwrap()), "{a}");
        }
        for a in ["192.168.1.254", "10.0.0.1", "198.51.100.7", "fe80::1", "2001:db8::1"] {
            assert!(scan_target_eligible(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn unicast_answers_to_discovery_queries_are_not_attempts() {
        assert!(discovery_response(UDP, Some(5355)));
        assert!(discovery_response(UDP, Some(1900)));
        assert!(!discovery_response(UDP, Some(53)), "nmap -g 53 scans must still count");
        assert!(!discovery_response(TCP, Some(5355)));
        assert!(!discovery_response(UDP, None));
        for p in 0..=u16::MAX {
            assert_eq!(discovery_response(UDP, Some(p)), DISCOVERY_RESPONSE_PORTS.contains(&p), "port {p}");
        }
    }
}
