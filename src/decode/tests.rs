//! Byte-level tests of the decoder: every link type, VLAN stacks, IPv6 extension
//! headers, fragments, snaplen truncation, ICMP errors and garbage that must not panic.

use super::*;
use etherparse::PacketBuilder;
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

const A4: [u8; 4] = [192, 0, 2, 1];
const B4: [u8; 4] = [198, 51, 100, 7];
const A6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const B6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

fn frame(data: &[u8]) -> Frame<'_> {
    Frame { link: LinkType::Ethernet, ts: Timestamp::from_secs(1_700_000_000), wire_len: data.len() as u32, data }
}

fn dec(link: LinkType, data: &[u8]) -> Result<PacketMeta, SkipReason> {
    decode(link, &frame(data))
}

/// IPv4 + TCP SYN from 192.0.2.1:40000 to 198.51.100.7:443 with `payload`.
fn ipv4_tcp_syn(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(A4, B4, 64).tcp(40000, 443, 1000, 4096).syn().write(&mut v, payload).unwrap();
    v
}

fn ipv4_udp(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(A4, B4, 32).udp(5353, 53).write(&mut v, payload).unwrap();
    v
}

fn ipv6_udp(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(A6.octets(), B6.octets(), 33).udp(5353, 53).write(&mut v, payload).unwrap();
    v
}

/// A hand-built IPv6 packet whose first next-header is `next` and body `rest`.
fn ipv6_raw(next: u8, rest: &[u8]) -> Vec<u8> {
    let mut v = vec![0x60, 0, 0, 0];
    v.extend_from_slice(&(rest.len() as u16).to_be_bytes());
    v.extend_from_slice(&[next, 55]);
    v.extend_from_slice(&A6.octets());
    v.extend_from_slice(&B6.octets());
    v.extend_from_slice(rest);
    v
}

fn udp_header(sport: u16, dport: u16, payload_len: usize) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend(std::iter::repeat_n(0xAB, payload_len));
    v
}

fn ethernet(ether_type: u16, vlans: &[(u16, u16)], ip: &[u8]) -> Vec<u8> {
    let mut v = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    for &(tpid, id) in vlans {
        v.extend_from_slice(&tpid.to_be_bytes());
        v.extend_from_slice(&(0x2000 | id).to_be_bytes()); // PCP 1 must not leak into the id
    }
    v.extend_from_slice(&ether_type.to_be_bytes());
    v.extend_from_slice(ip);
    v
}

fn assert_syn(m: &PacketMeta, payload_len: u32) {
    assert_eq!(m.src(), IpAddr::from(A4));
    assert_eq!(m.dst(), IpAddr::from(B4));
    assert_eq!(m.ttl(), 64);
    match &m.transport {
        &Transport::Tcp { sport, dport, flags, seq, window, payload_len: p, .. } => {
            assert_eq!((sport, dport, flags, seq, window, p), (40000, 443, tcp_flags::SYN, 1000, 4096, payload_len));
        }
        other => panic!("expected TCP, got {other:?}"),
    }
}

#[test]
fn ethernet_ipv4_tcp() {
    let ip = ipv4_tcp_syn(b"hello");
    let m = dec(LinkType::Ethernet, &ethernet(0x0800, &[], &ip)).unwrap();
    assert_syn(&m, 5);
    assert_eq!(m.ip_len, 20 + 20 + 5);
    assert_eq!(m.vlan.get(), None);
    assert_eq!(m.protocol(), proto::TCP);
}

#[test]
fn ethernet_padding_does_not_count() {
    let ip = ipv4_tcp_syn(b"");
    let mut f = ethernet(0x0800, &[], &ip);
    f.extend_from_slice(&[0; 6]); // padded to the 60-byte minimum
    let m = dec(LinkType::Ethernet, &f).unwrap();
    assert_eq!(m.ip_len, 40);
    assert_syn(&m, 0);
}

#[test]
fn single_vlan_and_qinq_report_innermost_id() {
    let ip = ipv4_tcp_syn(b"");
    let m = dec(LinkType::Ethernet, &ethernet(0x0800, &[(0x8100, 42)], &ip)).unwrap();
    assert_eq!(m.vlan.get(), Some(42));
    assert_syn(&m, 0);
    let m = dec(LinkType::Ethernet, &ethernet(0x0800, &[(0x88A8, 100), (0x8100, 7)], &ip)).unwrap();
    assert_eq!(m.vlan.get(), Some(7));
    assert_syn(&m, 0);
    let m = dec(LinkType::Ethernet, &ethernet(0x86DD, &[(0x9100, 5), (0x8100, 4094)], &ipv6_udp(b"x"))).unwrap();
    assert_eq!(m.vlan.get(), Some(4094));
}

#[test]
fn vlan_tag_cut_off_is_truncated() {
    let f = ethernet(0x0800, &[(0x8100, 42)], &[]);
    assert_eq!(dec(LinkType::Ethernet, &f[..16]), Err(SkipReason::Truncated));
}

#[test]
fn ethernet_non_ip_and_short() {
    let arp = ethernet(0x0806, &[], &[0; 28]);
    assert_eq!(dec(LinkType::Ethernet, &arp), Err(SkipReason::NonIp));
    assert_eq!(dec(LinkType::Ethernet, &[0; 13]), Err(SkipReason::Truncated));
    assert_eq!(dec(LinkType::Ethernet, &ethernet(0x0800, &[], &[0x45, 0, 0])), Err(SkipReason::Truncated));
    assert_eq!(dec(LinkType::Ethernet, &ethernet(0x0800, &[], &[])), Err(SkipReason::Truncated));
}

#[test]
fn ether_type_contradicting_ip_version_is_malformed() {
    let f = ethernet(0x0800, &[], &ipv6_udp(b""));
    assert_eq!(dec(LinkType::Ethernet, &f), Err(SkipReason::Malformed));
    let mut ip = ipv4_tcp_syn(b"");
    ip[0] = 0x43; // IHL 3 < 5
    assert_eq!(dec(LinkType::Ethernet, &ethernet(0x0800, &[], &ip)), Err(SkipReason::Malformed));
}

#[test]
fn linux_sll_v1_and_v2() {
    let ip = ipv4_udp(b"abc");
    let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0];
    sll.extend_from_slice(&0x0800u16.to_be_bytes());
    sll.extend_from_slice(&ip);
    let m = dec(LinkType::LinuxSll, &sll).unwrap();
    assert_eq!(m.transport, Transport::Udp { sport: 5353, dport: 53, payload_len: 3 });
    assert_eq!(m.ttl(), 32);

    let mut sll2 = 0x86DDu16.to_be_bytes().to_vec();
    sll2.extend_from_slice(&[0, 0, 0, 0, 0, 3, 0, 1, 0, 0, 6, 1, 2, 3, 4, 5, 6, 0]);
    assert_eq!(sll2.len(), 20);
    sll2.extend_from_slice(&ipv6_udp(b"abcd"));
    let m = dec(LinkType::LinuxSll2, &sll2).unwrap();
    assert_eq!((m.src(), m.dst()), (IpAddr::V6(A6), IpAddr::V6(B6)));
    assert_eq!(m.transport, Transport::Udp { sport: 5353, dport: 53, payload_len: 4 });
    assert_eq!(m.ip_len, 40 + 8 + 4);
    assert_eq!(m.ttl(), 33);

    assert_eq!(dec(LinkType::LinuxSll2, &sll2[..19]), Err(SkipReason::Truncated));
    assert_eq!(dec(LinkType::LinuxSll, &sll[..15]), Err(SkipReason::Truncated));
    let mut arp = sll.clone();
    arp[14..16].copy_from_slice(&0x0806u16.to_be_bytes());
    assert_eq!(dec(LinkType::LinuxSll, &arp), Err(SkipReason::NonIp));
}

#[test]
fn raw_ip_picks_version_from_nibble() {
    let m = dec(LinkType::Raw, &ipv4_tcp_syn(b"")).unwrap();
    assert_syn(&m, 0);
    let m = dec(LinkType::Raw, &ipv6_udp(b"")).unwrap();
    assert_eq!(m.src(), IpAddr::V6(A6));
    assert_eq!(dec(LinkType::Raw, &[0x55; 40]), Err(SkipReason::Malformed));
    assert_eq!(dec(LinkType::Raw, &[]), Err(SkipReason::Truncated));
}

#[test]
fn ipv4_and_ipv6_link_types_check_version() {
    assert_syn(&dec(LinkType::Ipv4, &ipv4_tcp_syn(b"")).unwrap(), 0);
    assert!(dec(LinkType::Ipv6, &ipv6_udp(b"")).is_ok());
    assert_eq!(dec(LinkType::Ipv4, &ipv6_udp(b"")), Err(SkipReason::Malformed));
    assert_eq!(dec(LinkType::Ipv6, &ipv4_tcp_syn(b"")), Err(SkipReason::Malformed));
}

#[test]
fn bsd_null_accepts_both_byte_orders_and_all_inet6_values() {
    let ip4 = ipv4_tcp_syn(b"");
    for af in [2u32.to_le_bytes(), 2u32.to_be_bytes()] {
        let f = [af.as_slice(), &ip4].concat();
        assert_syn(&dec(LinkType::Null, &f).unwrap(), 0);
    }
    let ip6 = ipv6_udp(b"");
    for af in [10u32, 24, 28, 30] {
        for bytes in [af.to_le_bytes(), af.to_be_bytes()] {
            let f = [bytes.as_slice(), &ip6].concat();
            assert_eq!(dec(LinkType::Null, &f).unwrap().src(), IpAddr::V6(A6), "AF {af}");
        }
    }
    let f = [7u32.to_le_bytes().as_slice(), &ip4].concat();
    assert_eq!(dec(LinkType::Null, &f), Err(SkipReason::NonIp));
    assert_eq!(dec(LinkType::Null, &[2, 0, 0]), Err(SkipReason::Truncated));
}

#[test]
fn loop_is_network_byte_order_only() {
    let ip4 = ipv4_tcp_syn(b"");
    assert_syn(&dec(LinkType::Loop, &[2u32.to_be_bytes().as_slice(), &ip4].concat()).unwrap(), 0);
    assert_eq!(dec(LinkType::Loop, &[2u32.to_le_bytes().as_slice(), &ip4].concat()), Err(SkipReason::NonIp));
    let f = [24u32.to_be_bytes().as_slice(), &ipv6_udp(b"")].concat();
    assert_eq!(dec(LinkType::Loop, &f).unwrap().dst(), IpAddr::V6(B6));
}

#[test]
fn ipv6_extension_headers_are_walked() {
    // hop-by-hop (8 bytes) -> destination options (8 bytes) -> UDP
    let mut rest = vec![60, 0, 1, 4, 0, 0, 0, 0];
    rest.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
    rest.extend_from_slice(&udp_header(1234, 53, 10));
    let m = dec(LinkType::Raw, &ipv6_raw(0, &rest)).unwrap();
    assert_eq!(m.transport, Transport::Udp { sport: 1234, dport: 53, payload_len: 10 });
    assert_eq!(m.ip_len, 40 + 16 + 18);
}

#[test]
fn fragments_are_skipped() {
    // IPv4: more-fragments set, then a non-first fragment.
    let mut ip = ipv4_udp(b"0123456789");
    ip[6] = 0x20;
    assert_eq!(dec(LinkType::Raw, &ip), Err(SkipReason::Fragment));
    ip[6] = 0x00;
    ip[7] = 0x10;
    assert_eq!(dec(LinkType::Raw, &ip), Err(SkipReason::Fragment));
    // Don't-fragment alone is not a fragment.
    ip[6] = 0x40;
    ip[7] = 0;
    assert!(dec(LinkType::Raw, &ip).is_ok());

    // IPv6 fragment header with M set and offset 0 (first fragment).
    let mut rest = vec![17, 0, 0x00, 0x01, 0, 0, 0, 9];
    rest.extend_from_slice(&udp_header(1234, 53, 10));
    assert_eq!(dec(LinkType::Raw, &ipv6_raw(44, &rest)), Err(SkipReason::Fragment));
    // Non-first fragment after a hop-by-hop header.
    let mut rest = vec![44, 0, 1, 4, 0, 0, 0, 0];
    rest.extend_from_slice(&[17, 0, 0x00, 0x08, 0, 0, 0, 9]);
    rest.extend_from_slice(&[0; 16]);
    assert_eq!(dec(LinkType::Raw, &ipv6_raw(0, &rest)), Err(SkipReason::Fragment));
}

#[test]
fn snaplen_truncated_packet_keeps_header_lengths() {
    let ip = ipv4_tcp_syn(&[0x11; 1400]);
    let f = ethernet(0x0800, &[], &ip);
    let cut = Frame {
        link: LinkType::Ethernet,
        ts: Timestamp::from_secs(1),
        wire_len: f.len() as u32,
        data: &f[..14 + 20 + 20 + 10],
    };
    let m = decode(LinkType::Ethernet, &cut).unwrap();
    assert_eq!(m.ip_len, 1440);
    assert_syn(&m, 1400);
}

#[test]
fn truncated_transport_keeps_what_is_readable() {
    let ip = ipv4_tcp_syn(b"");
    // 10 bytes of TCP: ports readable but not the flags -> Other.
    let m = dec(LinkType::Raw, &ip[..30]).unwrap();
    assert_eq!(m.transport, Transport::Other { protocol: proto::TCP });
    assert_eq!(m.ip_len, 40);
    // 14 bytes: flags readable, window not.
    let m = dec(LinkType::Raw, &ip[..34]).unwrap();
    match m.transport {
        Transport::Tcp { flags, window, dport, .. } => assert_eq!((flags, window, dport), (tcp_flags::SYN, 0, 443)),
        other => panic!("{other:?}"),
    }
    let udp = ipv4_udp(b"zz");
    let m = dec(LinkType::Raw, &udp[..24]).unwrap();
    assert_eq!(m.transport, Transport::Udp { sport: 5353, dport: 53, payload_len: 2 });
    let m = dec(LinkType::Raw, &udp[..23]).unwrap();
    assert_eq!(m.transport, Transport::Other { protocol: proto::UDP });
    assert_eq!(dec(LinkType::Raw, &udp[..19]), Err(SkipReason::Truncated));
    assert_eq!(dec(LinkType::Raw, &ipv6_udp(b"")[..39]), Err(SkipReason::Truncated));
}

#[test]
fn zero_length_fields_fall_back_to_wire_length() {
    // TSO: IPv4 total length 0.
    let mut ip = ipv4_tcp_syn(&[1; 100]);
    ip[2] = 0;
    ip[3] = 0;
    let m = dec(LinkType::Raw, &ip).unwrap();
    assert_eq!(m.ip_len, 140);
    assert_syn(&m, 100);
    // IPv6 payload length 0 (jumbogram-like), captured 60 of 1060 bytes.
    let mut ip6 = ipv6_raw(17, &udp_header(1, 2, 1012));
    ip6[4] = 0;
    ip6[5] = 0;
    let cut = Frame { link: LinkType::Ethernet, ts: Timestamp::from_secs(1), wire_len: 1060, data: &ip6[..60] };
    let m = decode(LinkType::Raw, &cut).unwrap();
    assert_eq!(m.ip_len, 1060);
    assert_eq!(m.transport, Transport::Udp { sport: 1, dport: 2, payload_len: 1012 });
}

#[test]
fn other_protocol_and_bad_tcp_offset() {
    let mut ip = ipv4_udp(b"");
    ip[9] = 47; // GRE
    let m = dec(LinkType::Raw, &ip).unwrap();
    assert_eq!(m.transport, Transport::Other { protocol: 47 });
    let mut tcp = ipv4_tcp_syn(b"");
    tcp[32] = 0x40; // data offset 4 words < 5
    assert_eq!(dec(LinkType::Raw, &tcp), Err(SkipReason::Malformed));
}

#[test]
fn icmp_echo_ids() {
    let mut v = Vec::new();
    PacketBuilder::ipv4(A4, B4, 64).icmpv4_echo_request(0x1234, 1).write(&mut v, b"ping").unwrap();
    let m = dec(LinkType::Raw, &v).unwrap();
    assert_eq!(m.transport, Transport::Icmp { v6: false, icmp_type: 8, code: 0, echo_id: Some(0x1234), quoted: None });
    let mut v = Vec::new();
    PacketBuilder::ipv6(A6.octets(), B6.octets(), 64).icmpv6_echo_reply(77, 1).write(&mut v, b"").unwrap();
    let m = dec(LinkType::Raw, &v).unwrap();
    assert_eq!(m.transport, Transport::Icmp { v6: true, icmp_type: 129, code: 0, echo_id: Some(77), quoted: None });
    assert_eq!(m.protocol(), proto::ICMPV6);
}

/// An ICMP error from `router` quoting the first 28 bytes (v4) / 48 bytes (v6) of `original`.
fn icmp_error(v6: bool, icmp_type: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
    let mut body = vec![icmp_type, code, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(quoted);
    if v6 {
        ipv6_raw(58, &body)
    } else {
        let mut v = Vec::new();
        PacketBuilder::ipv4(B4, A4, 250).write(&mut v, etherparse::IpNumber(1), &body).unwrap();
        v
    }
}

#[test]
fn icmpv4_errors_quote_tcp_and_udp() {
    let syn = ipv4_tcp_syn(b"some payload that is not quoted");
    let m = dec(LinkType::Raw, &icmp_error(false, 3, 3, &syn[..28])).unwrap();
    let want = QuotedTuple { src: A4.into(), dst: B4.into(), protocol: proto::TCP, sport: 40000, dport: 443 };
    assert_eq!(
        m.transport,
        Transport::Icmp { v6: false, icmp_type: 3, code: 3, echo_id: None, quoted: Some(Box::new(want)) }
    );
    assert_eq!(m.src(), IpAddr::from(B4));
    let udp = ipv4_udp(b"abc");
    for t in [3u8, 4, 5, 11, 12] {
        let m = dec(LinkType::Raw, &icmp_error(false, t, 0, &udp[..28])).unwrap();
        let Transport::Icmp { quoted: Some(q), .. } = m.transport else { panic!("type {t}: {:?}", m.transport) };
        assert_eq!((q.protocol, q.sport, q.dport, q.src), (proto::UDP, 5353, 53, IpAddr::from(A4)));
    }
    // Quote cut inside the IP header: no tuple, still an ICMP packet.
    let m = dec(LinkType::Raw, &icmp_error(false, 3, 1, &udp[..12])).unwrap();
    assert!(matches!(m.transport, Transport::Icmp { icmp_type: 3, quoted: None, .. }));
    // Quote without the ports: tuple with zero ports.
    let m = dec(LinkType::Raw, &icmp_error(false, 11, 0, &udp[..22])).unwrap();
    let Transport::Icmp { quoted: Some(q), .. } = m.transport else { panic!() };
    assert_eq!((q.sport, q.dport, q.protocol), (0, 0, proto::UDP));
    // Not an error type: nothing quoted.
    let m = dec(LinkType::Raw, &icmp_error(false, 13, 0, &udp[..28])).unwrap();
    assert!(matches!(m.transport, Transport::Icmp { quoted: None, echo_id: None, .. }));
}

#[test]
fn icmpv6_errors_quote_tcp_and_udp() {
    let udp = ipv6_udp(b"payload");
    for t in 1u8..=4 {
        let m = dec(LinkType::Raw, &icmp_error(true, t, 4, &udp[..48])).unwrap();
        let want = QuotedTuple { src: A6.into(), dst: B6.into(), protocol: proto::UDP, sport: 5353, dport: 53 };
        assert_eq!(
            m.transport,
            Transport::Icmp { v6: true, icmp_type: t, code: 4, echo_id: None, quoted: Some(Box::new(want)) }
        );
    }
    let mut tcp = Vec::new();
    PacketBuilder::ipv6(A6.octets(), B6.octets(), 64).tcp(1111, 22, 5, 100).syn().write(&mut tcp, b"").unwrap();
    let m = dec(LinkType::Raw, &icmp_error(true, 1, 3, &tcp)).unwrap();
    let Transport::Icmp { quoted: Some(q), .. } = m.transport else { panic!() };
    assert_eq!((q.protocol, q.sport, q.dport, q.dst), (proto::TCP, 1111, 22, IpAddr::V6(B6)));
    // Neighbour solicitation is not an error.
    let m = dec(LinkType::Raw, &icmp_error(true, 135, 0, &udp[..48])).unwrap();
    assert!(matches!(m.transport, Transport::Icmp { v6: true, quoted: None, .. }));
    let _ = Ipv4Addr::LOCALHOST;
}

#[test]
fn ipv4_options_and_identification() {
    let mut ip = ipv4_udp(b"xy");
    ip[4..6].copy_from_slice(&0xBEEFu16.to_be_bytes());
    // Insert 4 bytes of options (NOPs): IHL 6, total length + 4.
    let mut with_opts = ip[..20].to_vec();
    with_opts[0] = 0x46;
    with_opts[2..4].copy_from_slice(&((ip.len() + 4) as u16).to_be_bytes());
    with_opts.extend_from_slice(&[1, 1, 1, 1]);
    with_opts.extend_from_slice(&ip[20..]);
    let m = dec(LinkType::Raw, &with_opts).unwrap();
    assert_eq!(m.ip_id(), 0xBEEF);
    assert_eq!(m.ip_len, 34);
    assert_eq!(m.transport, Transport::Udp { sport: 5353, dport: 53, payload_len: 2 });
}

const ALL_LINKS: [LinkType; 8] = LinkType::ALL;

proptest! {
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200), wire_extra in 0u32..70000) {
        for link in ALL_LINKS {
            let f = Frame { link: LinkType::Ethernet, ts: Timestamp::from_secs(0), wire_len: data.len() as u32 + wire_extra, data: &data };
            let _ = decode(link, &f);
        }
    }

    /// Random bytes behind a valid IPv4/IPv6 start reach the transport parsers.
    #[test]
    fn random_ip_payloads_never_panic(proto_num in any::<u8>(), body in proptest::collection::vec(any::<u8>(), 0..120), v6 in any::<bool>()) {
        let ip = if v6 { ipv6_raw(proto_num, &body) } else {
            let mut v = Vec::new();
            PacketBuilder::ipv4(A4, B4, 1).write(&mut v, etherparse::IpNumber(proto_num), &body).unwrap();
            v
        };
        for cut in 0..=ip.len() {
            let _ = dec(LinkType::Raw, &ip[..cut]);
        }
    }
}

/// A well-formed Ethernet (optionally VLAN-tagged) + IPv4/IPv6 + TCP/UDP frame, the kind
/// the fast path takes, from the proptest's choices.
fn fast_path_frame(v6: bool, tcp: bool, vlan: bool, payload: &[u8], seed: u16) -> Vec<u8> {
    let mut ip = Vec::new();
    let b = if v6 {
        PacketBuilder::ipv6(A6.octets(), B6.octets(), (seed & 0xFF) as u8)
    } else {
        PacketBuilder::ipv4(A4, B4, (seed & 0xFF) as u8)
    };
    if tcp {
        b.tcp(seed, 443, u32::from(seed) << 8, seed ^ 0x5555).ack(7).psh().write(&mut ip, payload).unwrap();
    } else {
        b.udp(seed, 53).write(&mut ip, payload).unwrap();
    }
    let ether_type = if v6 { 0x86DD } else { 0x0800 };
    let vlans: &[(u16, u16)] = if vlan { &[(0x8100, 42)] } else { &[] };
    ethernet(ether_type, vlans, &ip)
}

#[test]
fn fast_path_matches_general_path_on_common_packets() {
    for v6 in [false, true] {
        for tcp in [false, true] {
            for vlan in [false, true] {
                for len in [0usize, 1, 6, 200] {
                    let data = fast_path_frame(v6, tcp, vlan, &vec![0x5A; len], 40_000);
                    let f = frame(&data);
                    let fast = decode(LinkType::Ethernet, &f);
                    assert!(fast.is_ok(), "{fast:?}");
                    assert_eq!(fast, decode_general(LinkType::Ethernet, &f));
                    // Ethernet padding after a short IPv4 packet; a snaplen cut.
                    let mut padded = data.clone();
                    padded.extend_from_slice(&[0; 18]);
                    assert_eq!(
                        decode(LinkType::Ethernet, &frame(&padded)),
                        decode_general(LinkType::Ethernet, &frame(&padded))
                    );
                    let cut = Frame { wire_len: data.len() as u32, ..frame(&data[..data.len().min(54)]) };
                    assert_eq!(decode(LinkType::Ethernet, &cut), decode_general(LinkType::Ethernet, &cut));
                }
            }
        }
    }
}

proptest! {
    /// The fixed-offset fast path and the `etherparse` path agree on every frame: common
    /// packets with header bytes overwritten at random (version, IHL, lengths, fragment
    /// bits, protocol, TCP data offset, ...), cut anywhere, with any wire length.
    #[test]
    fn fast_path_matches_general_path_on_mutated_frames(
        v6 in any::<bool>(), tcp in any::<bool>(), vlan in any::<bool>(), seed in any::<u16>(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        edits in proptest::collection::vec((0usize..96, any::<u8>()), 0..4),
        cut in any::<u16>(), wire_extra in 0u32..3000,
    ) {
        let mut data = fast_path_frame(v6, tcp, vlan, &payload, seed);
        for (at, byte) in edits {
            if let Some(b) = data.get_mut(at) {
                *b = byte;
            }
        }
        let keep = usize::from(cut) % (data.len() + 1);
        let wire_len = keep as u32 + wire_extra;
        for link in [LinkType::Ethernet, LinkType::Raw] {
            let bytes = if link == LinkType::Raw { data.get(14 + 4 * usize::from(vlan)..keep).unwrap_or(&[]) } else { &data[..keep] };
            let f = Frame { link, ts: Timestamp::from_secs(1), wire_len, data: bytes };
            prop_assert_eq!(decode(link, &f), decode_general(link, &f));
        }
    }
}
