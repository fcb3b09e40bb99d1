//! Behaviour tests for the flow table: handshakes and teardowns, initiator choice,
//! timeouts, ICMP error attribution, bounds, odd timestamps, and a property test that
//! every Start is matched by exactly one End.

use super::*;
use crate::decode::{proto, tcp_flags as F, IpHeader, PacketMeta, QuotedTuple, Transport, Vlan};
use crate::time::{Duration, Timestamp};
use std::collections::HashMap;
use std::net::IpAddr;

const C: &str = "192.0.2.10";
const S: &str = "198.51.100.20";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// IP header fields of a packet from `src` to `dst` (TTL 64).
fn hdr(src: &str, dst: &str, ip_id: u16) -> IpHeader {
    IpHeader::new(ip(src), ip(dst), 64, ip_id).unwrap()
}

fn t(ms: i64) -> Timestamp {
    Timestamp(1_700_000_000 * 1_000_000_000 + ms * 1_000_000)
}

fn tcp(ms: i64, src: &str, sport: u16, dst: &str, dport: u16, flags: u8, len: u32) -> PacketMeta {
    PacketMeta {
        ts: t(ms),
        ip_len: len,
        vlan: Vlan::NONE,
        ip: hdr(src, dst, 7),
        transport: Transport::Tcp { sport, dport, flags, seq: 1000, window: 1024, payload_len: len.saturating_sub(40) },
    }
}

fn udp(ms: i64, src: &str, sport: u16, dst: &str, dport: u16, len: u32) -> PacketMeta {
    PacketMeta {
        ts: t(ms),
        ip_len: len,
        vlan: Vlan::NONE,
        ip: hdr(src, dst, 1),
        transport: Transport::Udp { sport, dport, payload_len: len.saturating_sub(28) },
    }
}

fn icmp(
    ms: i64,
    src: &str,
    dst: &str,
    icmp_type: u8,
    code: u8,
    echo_id: Option<u16>,
    quoted: Option<QuotedTuple>,
) -> PacketMeta {
    PacketMeta {
        ts: t(ms),
        ip_len: 84,
        vlan: Vlan::NONE,
        ip: hdr(src, dst, 2),
        transport: Transport::Icmp { v6: false, icmp_type, code, echo_id, quoted: quoted.map(Box::new) },
    }
}

fn table() -> FlowTable {
    FlowTable::new(FlowConfig::default())
}

fn feed(tab: &mut FlowTable, pkts: &[PacketMeta]) -> Vec<FlowEvent> {
    let mut out = Vec::new();
    for p in pkts {
        tab.ingest_at(p, &mut out);
    }
    out
}

fn ends(ev: &[FlowEvent]) -> Vec<FlowRecord> {
    ev.iter()
        .filter_map(|e| match e {
            FlowEvent::End(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

fn starts(ev: &[FlowEvent]) -> Vec<SessionStart> {
    ev.iter()
        .filter_map(|e| match e {
            FlowEvent::Start(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn run_and_flush(pkts: &[PacketMeta]) -> (Vec<FlowEvent>, FlowTable) {
    let mut tab = table();
    let mut ev = feed(&mut tab, pkts);
    tab.flush_all(&mut ev);
    (ev, tab)
}

fn only_record(pkts: &[PacketMeta]) -> FlowRecord {
    let (ev, _) = run_and_flush(pkts);
    let r = ends(&ev);
    assert_eq!(r.len(), 1, "expected one record, got {r:?}");
    r[0].clone()
}

#[test]
fn handshake_and_fin_is_sf_with_counts() {
    let mut tab = table();
    let mut ev = feed(
        &mut tab,
        &[
            tcp(0, C, 40000, S, 443, F::SYN, 60),
            tcp(10, S, 443, C, 40000, F::SYN | F::ACK, 60),
            tcp(20, C, 40000, S, 443, F::ACK, 52),
            tcp(30, C, 40000, S, 443, F::ACK | F::PSH, 552),
            tcp(40, S, 443, C, 40000, F::ACK | F::PSH, 1052),
            tcp(50, C, 40000, S, 443, F::FIN | F::ACK, 52),
            tcp(60, S, 443, C, 40000, F::FIN | F::ACK, 52),
            tcp(70, C, 40000, S, 443, F::ACK, 52),
        ],
    );
    assert_eq!(starts(&ev).len(), 1);
    assert!(ends(&ev).is_empty(), "record waits for the closed linger");
    tab.advance_to(t(70 + 2000), &mut ev);
    let r = ends(&ev);
    assert_eq!(r.len(), 1);
    let r = &r[0];
    assert_eq!(r.id, starts(&ev)[0].id);
    assert_eq!((r.src, r.sport, r.dst, r.dport), (ip(C), Some(40000), ip(S), Some(443)));
    assert_eq!((r.src_packets, r.dst_packets), (5, 3));
    assert_eq!((r.src_bytes, r.dst_bytes), (60 + 52 + 552 + 52 + 52, 60 + 1052 + 52));
    assert_eq!(r.conn_state, ConnState::SF);
    assert_eq!(r.result, EventResult::Success);
    assert_eq!(r.end_reason, EndReason::Fin);
    assert_eq!((r.start, r.end), (t(0), t(70)));
    assert_eq!(r.src_tcp_flags, F::SYN | F::ACK | F::PSH | F::FIN);
    assert_eq!(r.dst_tcp_flags, F::SYN | F::ACK | F::PSH | F::FIN);
    assert_eq!(r.first.tcp_flags, F::SYN);
    assert_eq!((r.first.ttl, r.first.tcp_window, r.first.payload_len), (64, 1024, 20));
    assert_eq!(tab.counters().active, 0);
}

#[test]
fn syn_answered_by_rst_is_rej_failure() {
    let r = only_record(&[tcp(0, C, 40001, S, 22, F::SYN, 60), tcp(1, S, 22, C, 40001, F::RST | F::ACK, 40)]);
    assert_eq!(r.conn_state, ConnState::REJ);
    assert_eq!(r.result, EventResult::Failure);
    assert_eq!(r.end_reason, EndReason::Rst);
    assert_eq!((r.src, r.dport), (ip(C), Some(22)));
}

#[test]
fn unanswered_syn_times_out_as_s0() {
    let mut tab = table();
    let mut ev = feed(&mut tab, &[tcp(0, C, 40002, S, 80, F::SYN, 60), tcp(1000, C, 40002, S, 80, F::SYN, 60)]);
    tab.advance_to(t(1000 + 9_999), &mut ev);
    assert!(ends(&ev).is_empty(), "handshake idle is 10 s from the last packet");
    tab.advance_to(t(1000 + 10_000), &mut ev);
    let r = &ends(&ev)[0];
    assert_eq!(r.conn_state, ConnState::S0);
    assert_eq!(r.result, EventResult::Failure);
    assert_eq!(r.end_reason, EndReason::IdleTimeout);
    assert_eq!(r.src_packets, 2);
}

#[test]
fn rst_mid_session_is_rsto_or_rstr() {
    let hs = |p: u16| {
        vec![tcp(0, C, p, S, 80, F::SYN, 60), tcp(1, S, 80, C, p, F::SYN | F::ACK, 60), tcp(2, C, p, S, 80, F::ACK, 52)]
    };
    let mut a = hs(40003);
    a.push(tcp(3, C, 40003, S, 80, F::RST, 40));
    let r = only_record(&a);
    assert_eq!((r.conn_state, r.result, r.end_reason), (ConnState::RSTO, EventResult::Success, EndReason::Rst));
    let mut b = hs(40004);
    b.push(tcp(3, S, 80, C, 40004, F::RST, 40));
    b.push(tcp(4, C, 40004, S, 80, F::RST, 40));
    assert_eq!(only_record(&b).conn_state, ConnState::RSTR);
}

#[test]
fn mid_session_server_reply_first_keeps_client_as_initiator() {
    let r = only_record(&[
        tcp(0, S, 443, C, 51000, F::ACK | F::PSH, 1500),
        tcp(1, S, 443, C, 51000, F::ACK, 1500),
        tcp(2, C, 51000, S, 443, F::ACK, 52),
    ]);
    assert_eq!((r.src, r.sport, r.dst, r.dport), (ip(C), Some(51000), ip(S), Some(443)));
    assert_eq!((r.src_packets, r.dst_packets, r.dst_bytes), (1, 2, 3000));
    assert_eq!(r.conn_state, ConnState::OTH);
    assert_eq!(r.result, EventResult::Success);
    assert_eq!(r.end_reason, EndReason::Shutdown);
    assert_eq!(r.first.tcp_flags, F::ACK, "first packet fields come from the initiator");
    // Both sides on service ports: the sender stays the initiator.
    let r = only_record(&[tcp(0, S, 443, C, 3389, F::ACK, 52)]);
    assert_eq!(r.src, ip(S));
}

#[test]
fn syn_ack_first_makes_receiver_the_initiator() {
    let r = only_record(&[tcp(0, S, 8080, C, 40005, F::SYN | F::ACK, 60), tcp(1, C, 40005, S, 8080, F::ACK, 52)]);
    assert_eq!((r.src, r.sport, r.dport), (ip(C), Some(40005), Some(8080)));
    assert_eq!((r.src_packets, r.dst_packets), (1, 1));
    assert_eq!(r.result, EventResult::Success);
    let r = only_record(&[tcp(0, S, 8080, C, 40006, F::SYN | F::ACK, 60), tcp(1, S, 8080, C, 40006, F::RST, 40)]);
    assert_eq!(r.conn_state, ConnState::RSTRH);
}

#[test]
fn udp_two_way_is_success_and_one_way_failure() {
    let r = only_record(&[udp(0, C, 53000, S, 53, 60), udp(5, S, 53, C, 53000, 120)]);
    assert_eq!((r.sport, r.dport, r.src_bytes, r.dst_bytes), (Some(53000), Some(53), 60, 120));
    assert_eq!((r.conn_state, r.result), (ConnState::OTH, EventResult::Success));
    let mut tab = table();
    let mut ev = feed(&mut tab, &[udp(0, C, 53001, S, 161, 70)]);
    tab.advance_to(t(60_000), &mut ev);
    let r = &ends(&ev)[0];
    assert_eq!((r.result, r.end_reason, r.dst_packets), (EventResult::Failure, EndReason::IdleTimeout, 0));
    // A DNS reply seen first still has the client as initiator.
    let r = only_record(&[udp(0, S, 53, C, 53002, 120)]);
    assert_eq!((r.src, r.sport, r.dst_packets), (ip(C), Some(53002), 1));
}

#[test]
fn icmp_echo_pairs_by_id_without_ports() {
    let (ev, _) = run_and_flush(&[
        icmp(0, C, S, 8, 0, Some(7), None),
        icmp(1, S, C, 0, 0, Some(7), None),
        icmp(2, C, S, 8, 0, Some(8), None),
    ]);
    let r = ends(&ev);
    assert_eq!(r.len(), 2);
    assert_eq!((r[0].sport, r[0].dport, r[0].protocol), (None, None, proto::ICMP));
    assert_eq!((r[0].icmp_type, r[0].icmp_code, r[0].result), (Some(8), Some(0), EventResult::Success));
    assert_eq!((r[0].src_packets, r[0].dst_packets), (1, 1));
    assert_eq!((r[1].result, r[1].src_packets), (EventResult::Failure, 1));
    // Reply seen first: the requester is still the initiator.
    let r = only_record(&[icmp(0, S, C, 0, 0, Some(9), None)]);
    assert_eq!((r.src, r.dst_packets, r.icmp_type), (ip(C), 1, None));
}

#[test]
fn icmp_port_unreachable_is_attributed_to_the_udp_session() {
    let q = QuotedTuple { src: ip(C), dst: ip(S), protocol: proto::UDP, sport: 53003, dport: 9999 };
    let (ev, tab) = run_and_flush(&[udp(0, C, 53003, S, 9999, 60), icmp(1, S, C, 3, 3, None, Some(q))]);
    let r = ends(&ev);
    assert_eq!(r.len(), 1, "the error must not create a session");
    let r = &r[0];
    assert_eq!((r.icmp_errors, r.last_icmp_error), (1, Some((3, 3))));
    assert_eq!((r.dst_packets, r.dst_bytes), (1, 84));
    assert_eq!(r.result, EventResult::Failure);
    assert_eq!((tab.counters().icmp_errors_matched, tab.counters().icmp_errors_unmatched), (1, 0));
    // No matching session: the error becomes its own ICMP session.
    let (ev, tab) = run_and_flush(&[icmp(1, S, C, 3, 3, None, Some(q))]);
    let r = &ends(&ev)[0];
    assert_eq!((r.protocol, r.icmp_type, r.icmp_errors, r.result), (proto::ICMP, Some(3), 0, EventResult::NA));
    assert_eq!(tab.counters().icmp_errors_unmatched, 1);
}

#[test]
fn active_timeout_splits_into_segments() {
    let cfg = FlowConfig { active_timeout: Duration::from_secs(60), ..FlowConfig::default() };
    let mut tab = FlowTable::new(cfg);
    let mut pkts = vec![tcp(0, C, 40007, S, 80, F::SYN, 60), tcp(1, S, 80, C, 40007, F::SYN | F::ACK, 60)];
    for i in 1..=15 {
        pkts.push(tcp(i * 10_000, C, 40007, S, 80, F::ACK, 100));
    }
    let mut ev = feed(&mut tab, &pkts);
    tab.flush_all(&mut ev);
    let (s, e) = (starts(&ev), ends(&ev));
    assert_eq!((s.len(), e.len()), (3, 3));
    assert_eq!(s.iter().map(|x| x.segment).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert_eq!(e[0].end_reason, EndReason::ActiveTimeout);
    assert_eq!(e[0].src_packets + e[0].dst_packets, 2 + 6);
    assert_eq!(s[1].ts, t(70_000));
    assert_eq!(e[1].start, t(70_000));
    assert_eq!(e[2].end_reason, EndReason::Shutdown);
    assert_eq!(e.iter().map(|r| r.src_packets + r.dst_packets).sum::<u64>(), 17);
    assert!(e.iter().all(|r| r.conn_state == ConnState::S1));
    for (a, b) in s.iter().zip(&e) {
        assert_eq!(a.id, b.id);
    }
    assert_eq!(tab.counters().active_splits, 2);
}

#[test]
fn full_table_evicts_the_longest_idle_session() {
    let cfg = FlowConfig { max_flows: 2, ..FlowConfig::default() };
    let mut tab = FlowTable::new(cfg);
    let ev = feed(
        &mut tab,
        &[
            udp(0, C, 1111, S, 53, 60),
            tcp(1, C, 2222, S, 80, F::ACK, 60),
            udp(2, C, 1111, S, 53, 60), // refreshes the UDP session
            udp(3, C, 3333, S, 53, 60),
        ],
    );
    let r = ends(&ev);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].sport, r[0].end_reason), (Some(2222), EndReason::Evicted));
    assert_eq!((tab.counters().evictions, tab.counters().active), (1, 2));
}

#[test]
fn out_of_order_packet_counts_but_does_not_move_time_back() {
    let mut tab = table();
    let ev = feed(&mut tab, &[udp(5_000, C, 4000, S, 53, 60), udp(1_000, S, 53, C, 4000, 60)]);
    assert_eq!(tab.now(), t(5_000));
    let mut ev2 = ev;
    tab.flush_all(&mut ev2);
    let r = &ends(&ev2)[0];
    assert_eq!((r.start, r.end, r.dst_packets), (t(1_000), t(5_000), 1));
}

#[test]
fn ten_year_jump_expires_without_walking_the_gap() {
    let mut tab = table();
    let mut ev = feed(&mut tab, &[udp(0, C, 4001, S, 53, 60), tcp(0, C, 4002, S, 80, F::SYN, 60)]);
    let later = Timestamp(t(0).0 + 10 * 365 * 86_400 * 1_000_000_000);
    let mut p = udp(0, C, 4001, S, 53, 60);
    p.ts = later;
    tab.ingest_at(&p, &mut ev);
    let e = ends(&ev);
    assert_eq!(e.len(), 2);
    assert!(e.iter().all(|r| r.end_reason == EndReason::IdleTimeout));
    assert_eq!(starts(&ev).len(), 3, "the late packet starts a new session");
    assert_eq!(tab.now(), later);
}

#[test]
fn flush_orders_by_start_then_id() {
    let (ev, _) = run_and_flush(&[
        udp(300, C, 5003, S, 53, 60),
        udp(100, C, 5001, S, 53, 60),
        udp(200, C, 5002, S, 53, 60),
        udp(100, C, 5000, S, 53, 60),
    ]);
    let ports: Vec<_> = ends(&ev).iter().map(|r| r.sport.unwrap()).collect();
    assert_eq!(ports, vec![5001, 5000, 5002, 5003]);
}

#[test]
fn vlan_separates_sessions_and_ids_increase() {
    let mut a = udp(0, C, 6000, S, 53, 60);
    let mut b = a.clone();
    a.vlan = Vlan::id(10);
    b.vlan = Vlan::id(20);
    let (ev, _) = run_and_flush(&[a, b]);
    let s = starts(&ev);
    assert_eq!(s.len(), 2);
    assert!(s[0].id < s[1].id);
    assert_eq!(ends(&ev)[0].vlan, Some(10));
}

#[test]
fn syn_after_fin_on_same_tuple_starts_a_new_session() {
    let (ev, _) = run_and_flush(&[
        tcp(0, C, 40010, S, 80, F::SYN, 60),
        tcp(1, S, 80, C, 40010, F::SYN | F::ACK, 60),
        tcp(2, C, 40010, S, 80, F::FIN | F::ACK, 52),
        tcp(3, S, 80, C, 40010, F::FIN | F::ACK, 52),
        tcp(4, C, 40010, S, 80, F::SYN, 60),
    ]);
    let e = ends(&ev);
    assert_eq!(e.len(), 2);
    assert_eq!((e[0].conn_state, e[0].end_reason), (ConnState::SF, EndReason::Fin));
    assert_eq!(e[1].conn_state, ConnState::S0);
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    fn arb_packet() -> impl Strategy<Value = PacketMeta> {
        (0i64..400_000, 0usize..3, 0usize..3, 0u8..4, any::<u8>(), 0u16..3, 40u32..1500).prop_map(
            |(ms, a, b, kind, flags, port, len)| {
                let hosts = ["192.0.2.1", "192.0.2.2", "2001:db8::1"];
                let (src, dst) = (hosts[a], hosts[b]);
                let (src, dst) = if ip(src).is_ipv4() != ip(dst).is_ipv4() { (src, src) } else { (src, dst) };
                let mut p = match kind {
                    0 => tcp(ms, src, 1000 + port, dst, 80, flags & 0x17, len),
                    1 => tcp(ms, dst, 80, src, 1000 + port, flags & 0x17, len),
                    2 => udp(ms, src, 53, dst, 2000 + port, len),
                    _ => icmp(ms, src, dst, if flags & 1 == 0 { 8 } else { 0 }, 0, Some(port), None),
                };
                p.ip_len = len;
                p
            },
        )
    }

    proptest! {
        #[test]
        fn every_start_has_one_end_and_counts_add_up(
            pkts in proptest::collection::vec(arb_packet(), 0..120),
            max_flows in 1usize..6,
            active in 1i64..200,
        ) {
            let cfg = FlowConfig { max_flows, active_timeout: Duration::from_secs(active), ..FlowConfig::default() };
            let mut tab = FlowTable::new(cfg);
            let mut ev = Vec::new();
            for p in &pkts {
                tab.ingest_at(p, &mut ev);
                prop_assert!(tab.counters().active as usize <= max_flows);
                prop_assert!(tab.buckets_consistent());
            }
            tab.flush_all(&mut ev);
            let mut open: HashMap<u64, bool> = HashMap::new();
            let mut last_id = 0;
            let (mut packets, mut bytes) = (0u64, 0u64);
            for e in &ev {
                match e {
                    FlowEvent::Start(s) => {
                        prop_assert!(s.id > last_id, "ids in order");
                        last_id = s.id;
                        prop_assert!(open.insert(s.id, true).is_none());
                    }
                    FlowEvent::End(r) => {
                        prop_assert_eq!(open.remove(&r.id), Some(true), "End without open Start");
                        packets += r.src_packets + r.dst_packets;
                        bytes += r.src_bytes + r.dst_bytes;
                        prop_assert!(r.start <= r.end);
                    }
                    FlowEvent::Exchange(x) => {
                        prop_assert_eq!(open.get(&x.id), Some(&true), "Exchange of a session not open");
                        prop_assert!(x.start <= x.end);
                    }
                }
            }
            prop_assert!(open.is_empty());
            prop_assert_eq!(tab.counters().active, 0);
            prop_assert_eq!(packets, pkts.len() as u64);
            prop_assert_eq!(bytes, pkts.iter().map(|p| u64::from(p.ip_len)).sum::<u64>());
            let c = tab.counters();
            prop_assert_eq!(c.records, c.sessions + c.active_splits);
        }
    }
}

/// Sessions record their map bucket; the map grows (past its initial 65,536) and, once
/// full of churn, rehashes in place: every recorded bucket must follow, or an End would
/// remove another session's entry.
#[test]
fn map_buckets_follow_growth_and_rehash() {
    let cfg = FlowConfig { max_flows: 110_000, ..FlowConfig::default() };
    let mut tab = FlowTable::new(cfg);
    let mut ev = Vec::new();
    for n in 0..400_000u32 {
        // Every third packet repeats an older flow (a refresh or, once evicted, a new one).
        let m = if n % 3 == 2 { n / 2 } else { n };
        let src = IpAddr::from([10, (m >> 16) as u8, (m >> 8) as u8, m as u8]);
        let mut p = udp(i64::from(n / 100), C, 1000, S, 53, 60);
        p.ip = IpHeader::new(src, ip(S), 64, 1).unwrap();
        tab.ingest_at(&p, &mut ev);
        if n % 20_000 == 0 || n == 65_537 {
            assert!(tab.buckets_consistent(), "after packet {n}");
        }
        ev.clear();
    }
    assert!(tab.buckets_consistent());
    assert!(tab.counters().evictions > 200_000);
    tab.flush_all(&mut ev);
    assert_eq!(ends(&ev).len(), 110_000);
    assert_eq!(tab.counters().active, 0);
}

/// The same with a small table kept full by churn: deleted buckets pile up until the
/// map rehashes, growing or (once it is large enough for its sessions) in place.
#[test]
fn map_buckets_follow_rehash_in_place() {
    for max_flows in [20, 27, 28, 50, 113] {
        let mut tab = FlowTable::new(FlowConfig { max_flows, ..FlowConfig::default() });
        let mut ev = Vec::new();
        let mut x = 12345u32;
        for n in 0..20_000i64 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let port = 1000 + (x >> 16) as u16 % 400;
            tab.ingest_at(&udp(n, C, port, S, 53, 60), &mut ev);
            assert!(tab.buckets_consistent(), "max_flows {max_flows}, packet {n}");
        }
        tab.flush_all(&mut ev);
        assert_eq!(tab.counters().active, 0);
        assert_eq!(tab.counters().records, tab.counters().sessions);
    }
}

#[test]
fn expiry_follows_each_list_head_as_it_changes() {
    let cfg = FlowConfig {
        tcp_handshake_idle: Duration::from_secs(10),
        udp_idle: Duration::from_secs(30),
        icmp_idle: Duration::from_secs(5),
        ..FlowConfig::default()
    };
    let mut tab = FlowTable::new(cfg);
    let mut ev = feed(
        &mut tab,
        &[
            udp(0, C, 1001, S, 53, 60),             // udp head, due at 30 s
            tcp(1_000, C, 2002, S, 80, F::SYN, 60), // handshake head, due at 11 s
            icmp(2_000, C, S, 8, 0, Some(7), None), // icmp head, due at 7 s
            udp(3_000, C, 1004, S, 53, 60),         // second on the udp list, due at 33 s
            udp(5_000, C, 1001, S, 53, 60),         // the udp head moves to the tail: due at 35 s
            tcp(6_000, C, 2002, S, 80, F::SYN, 60), // the handshake head is touched: due at 16 s
        ],
    );
    assert!(ends(&ev).is_empty());
    // (ms to advance to, ports of the sessions ended by then, in order)
    let steps: [(i64, &[Option<u16>]); 8] = [
        (6_999, &[]),
        (7_000, &[None]),
        (15_999, &[]),
        (16_000, &[Some(2002)]),
        (32_999, &[]),
        (33_000, &[Some(1004)]),
        (34_999, &[]),
        (35_000, &[Some(1001)]),
    ];
    for (ms, want) in steps {
        ev.clear();
        tab.advance_to(t(ms), &mut ev);
        let got: Vec<Option<u16>> = ends(&ev).iter().map(|r| r.sport).collect();
        assert_eq!(got, want, "sessions ended at {ms} ms");
        assert!(ends(&ev).iter().all(|r| r.end_reason == EndReason::IdleTimeout));
    }
    assert_eq!(tab.counters().active, 0);
}

/// `flush_all` empties the map, the lists and the slab at once: the table then starts
/// over cleanly (new sessions, expiry and eviction on a full table all work again).
#[test]
fn table_starts_over_after_flush() {
    let cfg = FlowConfig { max_flows: 2, udp_idle: Duration::from_secs(30), ..FlowConfig::default() };
    let mut tab = FlowTable::new(cfg);
    let mut ev = feed(&mut tab, &[udp(0, C, 1001, S, 53, 60), tcp(10, C, 2002, S, 80, F::SYN, 60)]);
    tab.flush_all(&mut ev);
    assert_eq!(ends(&ev).len(), 2);
    assert_eq!((tab.counters().active, tab.counters().records), (0, 2));
    assert!(tab.buckets_consistent());
    let ev = feed(
        &mut tab,
        &[
            udp(1_000, C, 1001, S, 53, 60), // the same tuple again: a new session
            udp(2_000, C, 1002, S, 53, 60),
            udp(3_000, C, 1003, S, 53, 60),  // full table: evicts the longest idle (1001)
            udp(40_000, C, 1004, S, 53, 60), // 1002 and 1003 expire first
        ],
    );
    let ended: Vec<(Option<u16>, EndReason)> = ends(&ev).iter().map(|r| (r.sport, r.end_reason)).collect();
    assert_eq!(
        ended,
        [(Some(1001), EndReason::Evicted), (Some(1002), EndReason::IdleTimeout), (Some(1003), EndReason::IdleTimeout)]
    );
    assert_eq!(starts(&ev).len(), 4);
    assert_eq!(tab.counters().active, 1);
    assert!(tab.buckets_consistent());
}

/// The flush order (oldest start first, then by id) is the same whether the sort keys
/// pack the slot beside the id or carry it apart; sessions made out of start order,
/// with starts stretched back by older packets, slots reused after ends, and equal starts.
#[test]
fn flush_order_packed_and_unpacked_agree() {
    let mut tab = table();
    let mut ev = Vec::new();
    for n in 0..3_000u32 {
        // Start times out of order (and some equal); every seventh packet an older
        // repeat of an earlier flow, which stretches its start back.
        let port = if n % 7 == 6 { 1000 + (n / 2) as u16 } else { 1000 + n as u16 };
        let ms = i64::from((n * 7919) % 1_000) + if n % 7 == 6 { -500 } else { 0 };
        tab.ingest_at(&udp(ms, C, port, S, 53, 60), &mut ev);
        if n % 11 == 10 {
            // A RST-closed TCP session, ended (its slot freed) by a new SYN on its tuple.
            tab.ingest_at(&tcp(ms, C, 40_000, S, 80, F::SYN, 60), &mut ev);
            tab.ingest_at(&tcp(ms, S, 80, C, 40_000, F::RST | F::ACK, 40), &mut ev);
        }
    }
    let packed = tab.open_in_flush_order(true);
    assert!(packed.len() > 2_000);
    assert_eq!(packed, tab.open_in_flush_order(false));
    let mut flushed = Vec::new();
    tab.flush_all(&mut flushed);
    let keys: Vec<(Timestamp, u64)> = ends(&flushed).iter().map(|r| (r.start, r.id)).collect();
    assert_eq!(keys.len(), packed.len());
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "flush order is (start, id)");
}
