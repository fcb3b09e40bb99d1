//! Packet descriptions and the frame encoder. Generators describe packets as small `Copy`
//! values ([`Packet`]); [`encode_frame`] turns one into Ethernet + IPv4/IPv6 + TCP/UDP/ICMP
//! bytes in a caller-owned buffer (no per-packet allocation), with correct IPv4 header,
//! TCP, UDP and ICMP checksums. Payloads are zero-filled: only their length matters here.

use std::net::IpAddr;

use crate::time::Timestamp;

/// TCP flag bits as they appear in the header's flags byte.
pub use crate::decode::tcp_flags as flags;

/// Largest payload one generated packet may carry (Ethernet MTU minus IPv6 + TCP headers
/// with options), so every frame stays within a normal 1514-byte Ethernet frame.
pub const MAX_PAYLOAD: u16 = 1400;

/// A TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSpec {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    /// MSS option (kind 2), usually only on SYN and SYN-ACK.
    pub mss: Option<u16>,
    /// Window-scale option (kind 3).
    pub wscale: Option<u8>,
    /// SACK-permitted option (kind 4).
    pub sack_permitted: bool,
    pub payload_len: u16,
}

impl TcpSpec {
    /// A segment without options.
    pub fn plain(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, window: u16) -> Self {
        TcpSpec {
            sport,
            dport,
            seq,
            ack,
            flags,
            window,
            mss: None,
            wscale: None,
            sack_permitted: false,
            payload_len: 0,
        }
    }

    fn options_len(&self) -> usize {
        let mut n = 0;
        if self.mss.is_some() {
            n += 4;
        }
        if self.wscale.is_some() {
            n += 4; // NOP + kind 3
        }
        if self.sack_permitted {
            n += 4; // NOP NOP + kind 4
        }
        n
    }
}

/// A UDP datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpSpec {
    pub sport: u16,
    pub dport: u16,
    pub payload_len: u16,
}

/// The transport part of a [`Packet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp(TcpSpec),
    Udp(UdpSpec),
    /// ICMP / ICMPv6 echo request (the IP family follows the packet's addresses).
    EchoRequest {
        ident: u16,
        seq: u16,
        payload_len: u16,
    },
    EchoReply {
        ident: u16,
        seq: u16,
        payload_len: u16,
    },
    /// ICMP destination unreachable / port unreachable (ICMPv6 type 1 code 4) quoting the
    /// UDP datagram that provoked it. The quoted datagram went from this packet's `dst` to
    /// its `src` (the unreachable host answers the prober), with the given TTL and IP id.
    PortUnreachable {
        quoted: UdpSpec,
        quoted_ttl: u8,
        quoted_ip_id: u16,
    },
}

/// One packet to generate: capture time, IP header fields and the transport part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    pub ts: Timestamp,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL / hop limit.
    pub ttl: u8,
    /// IPv4 identification (ignored for IPv6).
    pub ip_id: u16,
    pub transport: Transport,
}

const IPV4_LEN: usize = 20;
use crate::decode::proto::{ICMP as PROTO_ICMP, ICMPV6 as PROTO_ICMPV6, TCP as PROTO_TCP, UDP as PROTO_UDP};
/// RFC 1812: an ICMPv4 error carries as much of the original as fits in 576 bytes.
const ICMPV4_ERROR_LIMIT: usize = 576;
/// RFC 4443: an ICMPv6 error must not exceed the minimum IPv6 MTU.
const ICMPV6_ERROR_LIMIT: usize = 1280;

/// A locally administered MAC address derived from an IP address, so every host keeps
/// one stable MAC across the capture.
pub fn mac_for(ip: IpAddr) -> [u8; 6] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |b: u8| {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    };
    match ip {
        IpAddr::V4(a) => a.octets().iter().for_each(|&b| feed(b)),
        IpAddr::V6(a) => a.octets().iter().for_each(|&b| feed(b)),
    }
    let b = h.to_be_bytes();
    [0x02, b[1], b[2], b[3], b[4], b[5]]
}

/// Encodes `pkt` as an Ethernet frame into `buf` (cleared first).
///
/// # Panics
/// If `src` and `dst` are of different IP families (a generator bug).
pub fn encode_frame(pkt: &Packet, buf: &mut Vec<u8>) {
    buf.clear();
    let v6 = match (pkt.src, pkt.dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => false,
        (IpAddr::V6(_), IpAddr::V6(_)) => true,
        _ => panic!("synthetic packet mixes IPv4 and IPv6: {} -> {}", pkt.src, pkt.dst),
    };
    buf.extend_from_slice(&mac_for(pkt.dst));
    buf.extend_from_slice(&mac_for(pkt.src));
    buf.extend_from_slice(if v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
    encode_ip(pkt, buf);
}

/// Appends the IP packet (header + transport + payload) for `pkt` to `buf`.
fn encode_ip(pkt: &Packet, buf: &mut Vec<u8>) {
    let ip_start = buf.len();
    let v6 = pkt.src.is_ipv6();
    let proto = match pkt.transport {
        Transport::Tcp(_) => PROTO_TCP,
        Transport::Udp(_) => PROTO_UDP,
        _ if v6 => PROTO_ICMPV6,
        _ => PROTO_ICMP,
    };
    write_ip_header(pkt, proto, buf);
    let l4_start = buf.len();
    match pkt.transport {
        Transport::Tcp(t) => write_tcp(&t, buf),
        Transport::Udp(u) => write_udp(&u, buf),
        Transport::EchoRequest { ident, seq, payload_len } => write_echo(v6, true, ident, seq, payload_len, buf),
        Transport::EchoReply { ident, seq, payload_len } => write_echo(v6, false, ident, seq, payload_len, buf),
        Transport::PortUnreachable { quoted, quoted_ttl, quoted_ip_id } => {
            let (typ, code) = if v6 { (1, 4) } else { (3, 3) };
            buf.extend_from_slice(&[typ, code, 0, 0, 0, 0, 0, 0]);
            let orig = Packet {
                ts: pkt.ts,
                src: pkt.dst,
                dst: pkt.src,
                ttl: quoted_ttl,
                ip_id: quoted_ip_id,
                transport: Transport::Udp(quoted),
            };
            encode_ip(&orig, buf);
            let limit = if v6 { ICMPV6_ERROR_LIMIT } else { ICMPV4_ERROR_LIMIT };
            buf.truncate(ip_start + limit.min(buf.len() - ip_start));
        }
    }
    let l4_len = buf.len() - l4_start;
    // Lengths first (the transport checksums cover them through the pseudo-header).
    if v6 {
        buf[ip_start + 4..ip_start + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
    } else {
        let total = (buf.len() - ip_start) as u16;
        buf[ip_start + 2..ip_start + 4].copy_from_slice(&total.to_be_bytes());
        let c = checksum_fold(sum_be_words(&buf[ip_start..ip_start + IPV4_LEN]));
        buf[ip_start + 10..ip_start + 12].copy_from_slice(&c.to_be_bytes());
    }
    if let Transport::Udp(_) = pkt.transport {
        buf[l4_start + 4..l4_start + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
    }
    let csum_at = match pkt.transport {
        Transport::Tcp(_) => 16,
        Transport::Udp(_) => 6,
        _ => 2,
    };
    let with_pseudo = v6 || proto != PROTO_ICMP;
    let mut sum = sum_be_words(&buf[l4_start..]);
    if with_pseudo {
        sum += pseudo_header_sum(pkt.src, pkt.dst, proto, l4_len as u32);
    }
    let mut c = checksum_fold(sum);
    if proto == PROTO_UDP && c == 0 {
        c = 0xffff; // RFC 768: a computed zero is sent as all ones
    }
    buf[l4_start + csum_at..l4_start + csum_at + 2].copy_from_slice(&c.to_be_bytes());
}

fn write_ip_header(pkt: &Packet, proto: u8, buf: &mut Vec<u8>) {
    match (pkt.src, pkt.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            // Don't-fragment on TCP/UDP as Linux sets it; ICMP errors without it.
            let frag: u16 = if proto == PROTO_ICMP { 0 } else { 0x4000 };
            buf.extend_from_slice(&[0x45, 0, 0, 0]);
            buf.extend_from_slice(&pkt.ip_id.to_be_bytes());
            buf.extend_from_slice(&frag.to_be_bytes());
            buf.extend_from_slice(&[pkt.ttl, proto, 0, 0]);
            buf.extend_from_slice(&s.octets());
            buf.extend_from_slice(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            buf.extend_from_slice(&[0x60, 0, 0, 0, 0, 0, proto, pkt.ttl]);
            buf.extend_from_slice(&s.octets());
            buf.extend_from_slice(&d.octets());
        }
        _ => panic!("synthetic packet mixes IPv4 and IPv6: {} -> {}", pkt.src, pkt.dst),
    }
}

fn write_tcp(t: &TcpSpec, buf: &mut Vec<u8>) {
    let hdr_len = 20 + t.options_len();
    buf.extend_from_slice(&t.sport.to_be_bytes());
    buf.extend_from_slice(&t.dport.to_be_bytes());
    buf.extend_from_slice(&t.seq.to_be_bytes());
    buf.extend_from_slice(&t.ack.to_be_bytes());
    buf.extend_from_slice(&[((hdr_len / 4) as u8) << 4, t.flags]);
    buf.extend_from_slice(&t.window.to_be_bytes());
    buf.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    if let Some(mss) = t.mss {
        buf.extend_from_slice(&[2, 4]);
        buf.extend_from_slice(&mss.to_be_bytes());
    }
    if t.sack_permitted {
        buf.extend_from_slice(&[1, 1, 4, 2]);
    }
    if let Some(ws) = t.wscale {
        buf.extend_from_slice(&[1, 3, 3, ws]);
    }
    zero_fill(buf, t.payload_len);
}

fn write_udp(u: &UdpSpec, buf: &mut Vec<u8>) {
    buf.extend_from_slice(&u.sport.to_be_bytes());
    buf.extend_from_slice(&u.dport.to_be_bytes());
    buf.extend_from_slice(&[0, 0, 0, 0]); // length and checksum, filled in later
    zero_fill(buf, u.payload_len);
}

fn write_echo(v6: bool, request: bool, ident: u16, seq: u16, payload_len: u16, buf: &mut Vec<u8>) {
    let typ = match (v6, request) {
        (false, true) => 8,
        (false, false) => 0,
        (true, true) => 128,
        (true, false) => 129,
    };
    buf.extend_from_slice(&[typ, 0, 0, 0]);
    buf.extend_from_slice(&ident.to_be_bytes());
    buf.extend_from_slice(&seq.to_be_bytes());
    zero_fill(buf, payload_len);
}

fn zero_fill(buf: &mut Vec<u8>, n: u16) {
    buf.resize(buf.len() + n as usize, 0);
}

fn sum_be_words(data: &[u8]) -> u32 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [last] = chunks.remainder() {
        sum += (*last as u32) << 8;
    }
    sum
}

fn pseudo_header_sum(src: IpAddr, dst: IpAddr, proto: u8, len: u32) -> u32 {
    let mut sum = proto as u32 + (len >> 16) + (len & 0xffff);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            sum += sum_be_words(&s.octets()) + sum_be_words(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            sum += sum_be_words(&s.octets()) + sum_be_words(&d.octets());
        }
        _ => unreachable!("families checked by encode_frame"),
    }
    sum
}

fn checksum_fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    const ETH_LEN: usize = 14;
    const IPV6_LEN: usize = 40;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn tcp_pkt(src: &str, dst: &str, payload_len: u16) -> Packet {
        Packet {
            ts: Timestamp(0),
            src: v4(src),
            dst: v4(dst),
            ttl: 64,
            ip_id: 0x1234,
            transport: Transport::Tcp(TcpSpec {
                mss: Some(1460),
                wscale: Some(7),
                sack_permitted: true,
                payload_len,
                ..TcpSpec::plain(40000, 443, 1000, 2000, flags::SYN | flags::ACK, 64240)
            }),
        }
    }

    #[test]
    fn ipv4_tcp_frame_reads_back_with_valid_checksums() {
        let pkt = tcp_pkt("10.1.0.20", "203.0.113.50", 101);
        let mut buf = Vec::new();
        encode_frame(&pkt, &mut buf);
        let sliced = SlicedPacket::from_ethernet(&buf).expect("frame parses");
        let Some(NetSlice::Ipv4(ip)) = &sliced.net else { panic!("not ipv4") };
        let hdr = ip.header().to_header();
        assert_eq!(hdr.calc_header_checksum(), hdr.header_checksum);
        assert_eq!(hdr.source, [10, 1, 0, 20]);
        assert_eq!(hdr.destination, [203, 0, 113, 50]);
        assert_eq!(hdr.identification, 0x1234);
        let Some(TransportSlice::Tcp(tcp)) = &sliced.transport else { panic!("not tcp") };
        assert_eq!(tcp.source_port(), 40000);
        assert_eq!(tcp.destination_port(), 443);
        assert!(tcp.syn() && tcp.ack() && !tcp.fin());
        assert_eq!(tcp.sequence_number(), 1000);
        assert_eq!(tcp.acknowledgment_number(), 2000);
        assert_eq!(tcp.payload().len(), 101);
        let th = tcp.to_header();
        assert_eq!(th.calc_checksum_ipv4(&hdr, tcp.payload()).unwrap(), th.checksum);
        assert_eq!(th.window_size, 64240);
    }

    #[test]
    fn ipv6_udp_frame_has_valid_checksum() {
        let pkt = Packet {
            ts: Timestamp(0),
            src: v4("2001:db8:1::5"),
            dst: v4("2001:db8:bad::66"),
            ttl: 64,
            ip_id: 0,
            transport: Transport::Udp(UdpSpec { sport: 53, dport: 5353, payload_len: 33 }),
        };
        let mut buf = Vec::new();
        encode_frame(&pkt, &mut buf);
        let sliced = SlicedPacket::from_ethernet(&buf).expect("frame parses");
        let Some(NetSlice::Ipv6(ip)) = &sliced.net else { panic!("not ipv6") };
        let hdr = ip.header().to_header();
        let Some(TransportSlice::Udp(udp)) = &sliced.transport else { panic!("not udp") };
        assert_eq!(udp.source_port(), 53);
        assert_eq!(udp.destination_port(), 5353);
        assert_eq!(udp.payload().len(), 33);
        let uh = udp.to_header();
        assert_eq!(uh.calc_checksum_ipv6(&hdr, udp.payload()).unwrap(), uh.checksum);
    }

    #[test]
    fn port_unreachable_quotes_the_probe() {
        for (src, dst) in [("10.1.0.5", "203.0.113.66"), ("2001:db8:1::5", "2001:db8:bad::66")] {
            let pkt = Packet {
                ts: Timestamp(0),
                src: v4(src),
                dst: v4(dst),
                ttl: 64,
                ip_id: 7,
                transport: Transport::PortUnreachable {
                    quoted: UdpSpec { sport: 55555, dport: 161, payload_len: 2000 },
                    quoted_ttl: 40,
                    quoted_ip_id: 99,
                },
            };
            let mut buf = Vec::new();
            encode_frame(&pkt, &mut buf);
            let sliced = SlicedPacket::from_ethernet(&buf).expect("frame parses");
            let limit = if pkt.src.is_ipv6() { 1280 } else { 576 };
            assert_eq!(buf.len() - ETH_LEN, limit, "quote truncated to the RFC limit");
            let icmp_bytes = match &sliced.transport {
                Some(TransportSlice::Icmpv4(i)) => {
                    assert_eq!((i.type_u8(), i.code_u8()), (3, 3));
                    assert_eq!(checksum_fold(sum_be_words(i.slice())), 0, "icmp checksum");
                    i.payload().to_vec()
                }
                Some(TransportSlice::Icmpv6(i)) => {
                    assert_eq!((i.type_u8(), i.code_u8()), (1, 4));
                    let sum = sum_be_words(i.slice()) + pseudo_header_sum(pkt.src, pkt.dst, 58, i.slice().len() as u32);
                    assert_eq!(checksum_fold(sum), 0, "icmpv6 checksum");
                    i.payload().to_vec()
                }
                other => panic!("not icmp: {other:?}"),
            };
            // The quote is the original probe from dst to src.
            let quoted = etherparse::LaxSlicedPacket::from_ip(&icmp_bytes).expect("quote parses");
            let Some(etherparse::TransportSlice::Udp(u)) = quoted.transport else { panic!("quote not udp") };
            assert_eq!((u.source_port(), u.destination_port()), (55555, 161));
            let (qs, qd) = match quoted.net.unwrap() {
                etherparse::LaxNetSlice::Ipv4(ip) => {
                    (IpAddr::from(ip.header().source()), IpAddr::from(ip.header().destination()))
                }
                etherparse::LaxNetSlice::Ipv6(ip) => {
                    (IpAddr::from(ip.header().source()), IpAddr::from(ip.header().destination()))
                }
                other => panic!("quote is not IP: {other:?}"),
            };
            assert_eq!((qs, qd), (pkt.dst, pkt.src));
        }
    }

    #[test]
    fn echo_frames_have_valid_checksums() {
        for (src, dst) in [("10.1.0.5", "198.51.100.1"), ("2001:db8:1::5", "2001:db8::1")] {
            let pkt = Packet {
                ts: Timestamp(0),
                src: v4(src),
                dst: v4(dst),
                ttl: 64,
                ip_id: 1,
                transport: Transport::EchoRequest { ident: 9, seq: 3, payload_len: 56 },
            };
            let mut buf = Vec::new();
            encode_frame(&pkt, &mut buf);
            let l4 = &buf[ETH_LEN + if pkt.src.is_ipv6() { IPV6_LEN } else { IPV4_LEN }..];
            let mut sum = sum_be_words(l4);
            if pkt.src.is_ipv6() {
                sum += pseudo_header_sum(pkt.src, pkt.dst, PROTO_ICMPV6, l4.len() as u32);
                assert_eq!(l4[0], 128);
            } else {
                assert_eq!(l4[0], 8);
            }
            assert_eq!(checksum_fold(sum), 0);
            assert_eq!(l4.len(), 8 + 56);
        }
    }
}
