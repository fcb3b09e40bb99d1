//! Session keys and the "who started it" decision: the canonical (direction-free)
//! 5-tuple key that both directions of a session hash to, and the rules that pick the
//! initiator from the first packet seen (SYN, SYN-ACK, ICMP echo, service-port heuristic).

use crate::decode::{proto, tcp_flags, IpHeader, PacketMeta, Transport};
use std::net::{IpAddr, Ipv4Addr};

/// Direction-free session key: the lower `(addr, port)` endpoint is always `a`.
/// ICMP echo sessions use the echo id as both "ports"; other ICMP and non-TCP/UDP
/// protocols use port 0. The VLAN is part of the key.
///
/// Addresses are held as 128-bit integers (IPv4 mapped into IPv6) plus family flags, so
/// building, comparing and hashing a key — done for every packet — is a handful of
/// integer operations rather than `IpAddr` enum matches. Packed to 8-byte alignment: 40
/// bytes rather than 48 (a 128-bit integer would round the key up to 16-byte
/// alignment), which leaves room beside the key in a session's first cache line.
#[derive(Clone, Copy, Debug)]
#[repr(C, packed(8))]
pub struct FlowKey {
    a: u128,
    b: u128,
    pa: u16,
    pb: u16,
    pub protocol: u8,
    /// Bit 0: `a` is IPv6; bit 1: `b` is IPv6; bit 2: a VLAN id is present.
    flags: u8,
    vlan: u16,
}

impl FlowKey {
    /// Key for a packet sent from `(src, sport)` to `(dst, dport)`.
    #[inline]
    pub fn new(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, protocol: u8, vlan: Option<u16>) -> Self {
        Self::oriented(src, sport, dst, dport, protocol, vlan).0
    }

    /// [`Self::new`], and whether the sender is the key's lower endpoint `a` (a packet
    /// between two equal endpoints has its sender at `a`).
    #[inline]
    pub fn oriented(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, protocol: u8, vlan: Option<u16>) -> (Self, bool) {
        if let (IpAddr::V4(s4), IpAddr::V4(d4)) = (src, dst) {
            return Self::oriented_v4(s4, sport, d4, dport, protocol, vlan);
        }
        let (s, s6) = addr_bits(src);
        let (d, d6) = addr_bits(dst);
        // Same order as comparing `(IpAddr, port)`: IPv4 before IPv6, then address, then port.
        let sender_is_a = (s6, s, sport) <= (d6, d, dport);
        let ((a, a6, pa), (b, b6, pb)) =
            if sender_is_a { ((s, s6, sport), (d, d6, dport)) } else { ((d, d6, dport), (s, s6, sport)) };
        let flags = u8::from(a6) | u8::from(b6) << 1 | u8::from(vlan.is_some()) << 2;
        (FlowKey { a, b, pa, pb, protocol, flags, vlan: vlan.unwrap_or(0) }, sender_is_a)
    }

    /// [`Self::oriented`] for `pkt`'s own endpoints, keyed straight from its IP header and
    /// transport in one pass; also returns whether the key's ports go in the records
    /// (TCP and UDP: ports; an ICMP echo is keyed by its id, anything else by 0).
    #[inline]
    pub fn of_packet(pkt: &PacketMeta) -> (Self, bool, bool) {
        let (ports, protocol) = match pkt.transport {
            Transport::Tcp { sport, dport, .. } => ((sport, dport, true), proto::TCP),
            Transport::Udp { sport, dport, .. } => ((sport, dport, true), proto::UDP),
            Transport::Icmp { v6, echo_id, .. } => {
                let id = echo_id.unwrap_or(0);
                ((id, id, false), if v6 { proto::ICMPV6 } else { proto::ICMP })
            }
            Transport::Other { protocol } => ((0, 0, false), protocol),
        };
        let (sport, dport, has_ports) = ports;
        let vlan = pkt.vlan.get();
        let (key, sender_is_a) = match pkt.ip {
            IpHeader::V4 { src, dst, .. } => Self::oriented_v4(src, sport, dst, dport, protocol, vlan),
            IpHeader::V6 { src, dst, .. } => {
                Self::oriented(IpAddr::V6(src), sport, IpAddr::V6(dst), dport, protocol, vlan)
            }
        };
        (key, sender_is_a, has_ports)
    }

    /// [`Self::oriented`] for two IPv4 endpoints (the common case): each endpoint as one
    /// `address << 16 | port` integer, which orders like `(address, port)`; one
    /// comparison, one swap.
    #[inline]
    fn oriented_v4(
        src: Ipv4Addr,
        sport: u16,
        dst: Ipv4Addr,
        dport: u16,
        protocol: u8,
        vlan: Option<u16>,
    ) -> (Self, bool) {
        let s = u64::from(u32::from(src)) << 16 | u64::from(sport);
        let d = u64::from(u32::from(dst)) << 16 | u64::from(dport);
        let sender_is_a = s <= d;
        let (a, b) = if sender_is_a { (s, d) } else { (d, s) };
        let key = FlowKey {
            a: V4_MAPPED | u128::from(a >> 16),
            b: V4_MAPPED | u128::from(b >> 16),
            pa: a as u16,
            pb: b as u16,
            protocol,
            flags: u8::from(vlan.is_some()) << 2,
            vlan: vlan.unwrap_or(0),
        };
        (key, sender_is_a)
    }

    /// Both endpoints are the same (address, family and port): a host talking to itself.
    #[inline]
    pub fn is_loop(&self) -> bool {
        self.a == self.b && self.pa == self.pb && (self.flags & 1) == (self.flags >> 1 & 1)
    }

    /// Every field but the addresses in one word: ports, protocol, flags and VLAN, in
    /// the order they are laid out (so reading it is one 8-byte load).
    #[inline]
    fn word(&self) -> u64 {
        u64::from(self.pa)
            | u64::from(self.pb) << 16
            | u64::from(self.protocol) << 32
            | u64::from(self.flags) << 40
            | u64::from(self.vlan) << 48
    }

    /// The VLAN id that is part of the key.
    pub fn vlan(&self) -> Option<u16> {
        (self.flags & 4 != 0).then_some(self.vlan)
    }

    /// The lower endpoint's address.
    pub fn addr_a(&self) -> IpAddr {
        bits_addr(self.a, self.flags & 1 != 0)
    }

    /// The higher endpoint's address.
    pub fn addr_b(&self) -> IpAddr {
        bits_addr(self.b, self.flags & 2 != 0)
    }

    /// The lower endpoint: address and key port.
    #[inline]
    pub fn endpoint_a(&self) -> (IpAddr, u16) {
        (self.addr_a(), self.pa)
    }

    /// The higher endpoint: address and key port.
    #[inline]
    pub fn endpoint_b(&self) -> (IpAddr, u16) {
        (self.addr_b(), self.pb)
    }
}

const _KEY_SIZE: () = assert!(std::mem::size_of::<FlowKey>() == 40);

/// Two keys are equal when their addresses and their [`FlowKey::word`]s are: three
/// integer comparisons folded into one test (the lookup of every packet compares keys).
impl PartialEq for FlowKey {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.a ^ other.a, self.b ^ other.b);
        (a | b | u128::from(self.word() ^ other.word())) == 0
    }
}

impl Eq for FlowKey {}

/// The 16-bit fields of a key in one word ([`FlowKey::word`]). A key of two IPv4 addresses (their low 32
/// bits; the rest is the mapped prefix every IPv4 key shares) is that word and both
/// addresses in one 128-bit write, which the table's hasher folds in a single multiply;
/// other keys are three writes. Equal keys have equal family flags, so they take the
/// same branch and hash alike.
impl std::hash::Hash for FlowKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let word = self.word();
        if self.flags & 3 == 0 {
            let (a, b) = (self.a as u32, self.b as u32);
            state.write_u128(u128::from(a) << 96 | u128::from(b) << 64 | u128::from(word));
        } else {
            state.write_u128(self.a);
            state.write_u128(self.b);
            state.write_u64(word);
        }
    }
}

/// IPv4-mapped IPv6 prefix `::ffff:0:0/96` as the high bits of a 128-bit address.
const V4_MAPPED: u128 = 0xffff << 32;

/// An address as a 128-bit integer (IPv4 mapped into IPv6) and whether it is IPv6 (so
/// an IPv4 address and its mapped IPv6 form stay apart when both are hashed or compared).
#[inline]
pub fn addr_bits(ip: IpAddr) -> (u128, bool) {
    match ip {
        IpAddr::V4(a) => (V4_MAPPED | u128::from(u32::from(a)), false),
        IpAddr::V6(a) => (u128::from(a), true),
    }
}

/// The address [`addr_bits`] made `(bits, v6)` of (an IPv4 address is the low 32 bits).
#[inline]
pub fn bits_addr(bits: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(std::net::Ipv6Addr::from(bits))
    } else {
        IpAddr::V4(std::net::Ipv4Addr::from(bits as u32))
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

    #[test]
    fn ipv4_keys_order_endpoints_by_address_then_port() {
        let x: IpAddr = "192.0.2.1".parse().unwrap();
        let y: IpAddr = "192.0.2.2".parse().unwrap();
        for (src, sport, dst, dport, sender_is_a) in
            [(x, 9, y, 1, true), (y, 1, x, 9, false), (x, 5, x, 6, true), (x, 6, x, 5, false), (x, 7, x, 7, true)]
        {
            let (k, a) = FlowKey::oriented(src, sport, dst, dport, 17, Some(3));
            assert_eq!(a, sender_is_a);
            let ((lo, plo), (hi, phi)) = if a { ((src, sport), (dst, dport)) } else { ((dst, dport), (src, sport)) };
            assert_eq!((k.addr_a(), k.pa, k.addr_b(), k.pb, k.vlan()), (lo, plo, hi, phi, Some(3)));
            assert_eq!(k.is_loop(), src == dst && sport == dport);
        }
    }

    #[test]
    fn keys_differing_in_any_field_are_unequal_and_equal_keys_hash_alike() {
        use std::hash::BuildHasher;
        let x: IpAddr = "192.0.2.1".parse().unwrap();
        let y: IpAddr = "192.0.2.2".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let hasher = crate::net::KeyedHasher::default();
        for (src, dst) in [(x, y), (x, v6)] {
            let k = FlowKey::new(src, 5000, dst, 80, 6, Some(7));
            for other in [
                FlowKey::new(src, 5001, dst, 80, 6, Some(7)),
                FlowKey::new(src, 5000, dst, 81, 6, Some(7)),
                FlowKey::new(src, 5000, dst, 80, 17, Some(7)),
                FlowKey::new(src, 5000, dst, 80, 6, Some(8)),
                FlowKey::new(src, 5000, dst, 80, 6, None),
                FlowKey::new(y, 5000, dst, 80, 6, Some(7)),
            ] {
                assert_ne!(k, other);
            }
            let back = FlowKey::new(dst, 80, src, 5000, 6, Some(7));
            assert_eq!(k, back);
            assert_eq!(hasher.hash_one(k), hasher.hash_one(back));
        }
    }

    #[test]
    fn ipv4_and_its_mapped_ipv6_form_are_different_keys_and_addresses_round_trip() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let other: IpAddr = "2001:db8::1".parse().unwrap();
        let k4 = FlowKey::new(v4, 1, other, 2, 17, None);
        let k6 = FlowKey::new(mapped, 1, other, 2, 17, None);
        assert_ne!(k4, k6);
        assert_eq!((k4.addr_a(), k4.addr_b()), (v4, other));
        assert_eq!((k6.addr_a(), k6.addr_b()), (mapped, other));
        // IPv4 sorts before IPv6 whichever way the packet went.
        assert_eq!(FlowKey::new(other, 2, v4, 1, 17, None).addr_a(), v4);
    }
}
