//! Session keys and the "who started it" decision: the canonical (direction-free)
//! 5-tuple key that both directions of a session hash to, and the rules that pick the
//! initiator from the first packet seen (SYN, SYN-ACK, ICMP echo, service-port heuristic).

use crate::decode::{proto, tcp_flags, PacketMeta, Transport};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

/// Direction-free session key: the lower `(addr, port)` endpoint is always `a`.
/// ICMP echo sessions use the echo id as both "ports"; other ICMP and non-TCP/UDP
/// protocols use port 0. The VLAN is part of the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey {
    pub a: IpAddr,
    pub b: IpAddr,
    pub pa: u16,
    pub pb: u16,
    pub protocol: u8,
    pub vlan: Option<u16>,
}

impl FlowKey {
    /// Key for a packet sent from `(src, sport)` to `(dst, dport)`.
    pub fn new(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, protocol: u8, vlan: Option<u16>) -> Self {
        if (src, sport) <= (dst, dport) {
            FlowKey { a: src, b: dst, pa: sport, pb: dport, protocol, vlan }
        } else {
            FlowKey { a: dst, b: src, pa: dport, pb: sport, protocol, vlan }
        }
    }
}

/// Hashes the whole key as one 40-byte block: a single `write` costs the keyed SipHash
/// far less than the dozen small writes a derived `Hash` makes for two `IpAddr`s.
/// Equal keys give equal bytes, so this agrees with the derived `Eq`.
impl Hash for FlowKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut buf = [0u8; 40];
        buf[..16].copy_from_slice(&addr_bytes(self.a));
        buf[16..32].copy_from_slice(&addr_bytes(self.b));
        buf[32..34].copy_from_slice(&self.pa.to_le_bytes());
        buf[34..36].copy_from_slice(&self.pb.to_le_bytes());
        buf[36] = self.protocol;
        // Family flags: an IPv4 address and its IPv4-mapped IPv6 form are different keys.
        buf[37] = u8::from(self.a.is_ipv6()) | u8::from(self.b.is_ipv6()) << 1 | u8::from(self.vlan.is_some()) << 2;
        buf[38..40].copy_from_slice(&self.vlan.unwrap_or(0).to_le_bytes());
        state.write(&buf);
    }
}

/// 16 bytes of an address (IPv4 mapped into IPv6; callers hash the family separately).
pub fn addr_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

/// The packet's endpoints as used for keying: `(sport, dport, ports_in_record)`.
pub fn key_ports(pkt: &PacketMeta) -> (u16, u16, bool) {
    match pkt.transport {
        Transport::Tcp { sport, dport, .. } | Transport::Udp { sport, dport, .. } => (sport, dport, true),
        Transport::Icmp { echo_id: Some(id), .. } => (id, id, false),
        Transport::Icmp { .. } | Transport::Other { .. } => (0, 0, false),
    }
}

/// High ports that are nevertheless servers (databases, RDP, VNC, web alternates, ...).
const HIGH_SERVICE_PORTS: &[u16] = &[
    1080, 1194, 1433, 1434, 1521, 1723, 1883, 2049, 2375, 2376, 3000, 3128, 3306, 3389, 4443, 5000, 5060, 5061, 5222,
    5432, 5601, 5671, 5672, 5900, 5984, 6379, 6443, 6667, 8000, 8008, 8080, 8081, 8088, 8443, 8883, 8888, 9000, 9042,
    9092, 9200, 9300, 9418, 11211, 27017,
];

/// A port a server listens on: below 1024 or a well-known high service port.
pub fn is_service_port(port: u16) -> bool {
    port < 1024 || HIGH_SERVICE_PORTS.binary_search(&port).is_ok()
}

/// Whether the first packet's sender should be taken as the initiator.
/// Bare SYN: yes. SYN-ACK: no (the receiver sent the SYN we missed). ICMP echo reply:
/// no. Otherwise (mid-session TCP, UDP): yes, unless the sender talks from a service
/// port to an ephemeral one — then it is the server answering.
pub fn sender_is_initiator(pkt: &PacketMeta) -> bool {
    match pkt.transport {
        Transport::Tcp { sport, dport, flags, .. } => {
            let syn = flags & tcp_flags::SYN != 0;
            let ack = flags & tcp_flags::ACK != 0;
            if syn && !ack {
                true
            } else if syn && ack {
                false
            } else {
                !looks_like_server_reply(sport, dport)
            }
        }
        Transport::Udp { sport, dport, .. } => !looks_like_server_reply(sport, dport),
        Transport::Icmp { v6, icmp_type, .. } => {
            let echo_reply = if v6 { 129 } else { 0 };
            icmp_type != echo_reply
        }
        Transport::Other { .. } => true,
    }
}

fn looks_like_server_reply(sport: u16, dport: u16) -> bool {
    is_service_port(sport) && dport >= 1024 && !is_service_port(dport)
}

/// ICMP/ICMPv6 types that are errors or informational noise rather than requests that
/// expect an answer (a one-way session of these is not a "failed" attempt).
pub fn icmp_is_request(protocol: u8, icmp_type: u8) -> bool {
    match protocol {
        // echo, timestamp, information, address mask requests
        proto::ICMP => matches!(icmp_type, 8 | 13 | 15 | 17),
        // echo request, multicast listener query, router/neighbor solicitation
        proto::ICMPV6 => matches!(icmp_type, 128 | 130 | 133 | 135),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_port_table_is_sorted_for_binary_search() {
        assert!(HIGH_SERVICE_PORTS.windows(2).all(|w| w[0] < w[1]));
        assert!(is_service_port(443) && is_service_port(3389) && is_service_port(27017));
        assert!(!is_service_port(49152) && !is_service_port(1024));
    }

    #[test]
    fn key_is_the_same_both_ways() {
        let x: IpAddr = "192.0.2.1".parse().unwrap();
        let y: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(FlowKey::new(x, 5000, y, 80, 6, None), FlowKey::new(y, 80, x, 5000, 6, None));
        assert_ne!(FlowKey::new(x, 5000, y, 80, 6, None), FlowKey::new(x, 5000, y, 80, 6, Some(7)));
    }
}
