//! Exchanges inside sessions, packet by packet: what is a pause, what is activity (new
//! payload) and what is not (bare ACKs, keepalive probes, retransmissions, RSTs), how
//! exchanges are reported (times, bytes, order against Start/End, active-timeout
//! splits) and that sessions which never pause report nothing.

use super::*;
use crate::decode::{tcp_flags as F, IpHeader, PacketMeta, Transport, Vlan};
use crate::time::{Duration, Timestamp};
use std::net::IpAddr;

const C: &str = "192.0.2.10";
const S: &str = "203.0.113.20";
const BASE: i64 = 1_700_000_000;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// `ms` milliseconds after the base instant.
fn t(ms: i64) -> Timestamp {
    Timestamp(BASE * 1_000_000_000 + ms * 1_000_000)
}

/// One TCP segment of the client 192.0.2.10:40000 ↔ server 203.0.113.20:443 connection.
fn seg(ms: i64, from_client: bool, flags: u8, seq: u32, payload: u32) -> PacketMeta {
    let (src, dst, sport, dport) = if from_client { (C, S, 40000, 443) } else { (S, C, 443, 40000) };
    PacketMeta {
        ts: t(ms),
        ip_len: 40 + payload,
        vlan: Vlan::NONE,
        ip: IpHeader::new(ip(src), ip(dst), 64, 1).unwrap(),
        transport: Transport::Tcp { sport, dport, flags, seq, window: 502, payload_len: payload },
    }
}

fn dgram(ms: i64, from_client: bool, payload: u32) -> PacketMeta {
    let (src, dst, sport, dport) = if from_client { (C, S, 41414, 4000) } else { (S, C, 4000, 41414) };
    PacketMeta {
        ts: t(ms),
        ip_len: 28 + payload,
        vlan: Vlan::NONE,
        ip: IpHeader::new(ip(src), ip(dst), 64, 1).unwrap(),
        transport: Transport::Udp { sport, dport, payload_len: payload },
    }
}

/// A client and a server with their next sequence numbers; builds well-formed segments.
struct Conn {
    pkts: Vec<PacketMeta>,
    cseq: u32,
    sseq: u32,
}

impl Conn {
    /// Handshake at `ms` (client ISN `isn`).
    fn open(ms: i64, isn: u32) -> Self {
        let mut c = Conn { pkts: Vec::new(), cseq: isn, sseq: 7_000_000 };
        c.pkts.push(seg(ms, true, F::SYN, c.cseq, 0));
        c.pkts.push(seg(ms + 20, false, F::SYN | F::ACK, c.sseq, 0));
        c.pkts.push(seg(ms + 20, true, F::ACK, c.cseq + 1, 0));
        c.cseq = c.cseq.wrapping_add(1);
        c.sseq = c.sseq.wrapping_add(1);
        c
    }
    fn up(&mut self, ms: i64, n: u32) {
        self.pkts.push(seg(ms, true, F::PSH | F::ACK, self.cseq, n));
        self.cseq = self.cseq.wrapping_add(n);
    }
    fn down(&mut self, ms: i64, n: u32) {
        self.pkts.push(seg(ms, false, F::PSH | F::ACK, self.sseq, n));
        self.sseq = self.sseq.wrapping_add(n);
    }
    fn ack(&mut self, ms: i64, from_client: bool) {
        let seq = if from_client { self.cseq } else { self.sseq };
        self.pkts.push(seg(ms, from_client, F::ACK, seq, 0));
    }
    /// A check-in: request, reply 30 ms later, client ACK.
    fn check_in(&mut self, ms: i64, up: u32, down: u32) {
        self.up(ms, up);
        self.down(ms + 30, down);
        self.ack(ms + 31, true);
    }
    fn close(&mut self, ms: i64) {
        self.pkts.push(seg(ms, true, F::FIN | F::ACK, self.cseq, 0));
        self.pkts.push(seg(ms + 20, false, F::FIN | F::ACK, self.sseq, 0));
        self.pkts.push(seg(ms + 21, true, F::ACK, self.cseq + 1, 0));
    }
}

fn run_with(cfg: FlowConfig, pkts: &[PacketMeta]) -> Vec<FlowEvent> {
    let mut tab = FlowTable::new(cfg);
    let mut out = Vec::new();
    for p in pkts {
        tab.ingest_at(p, &mut out);
    }
    tab.flush_all(&mut out);
    out
}

fn run(pkts: &[PacketMeta]) -> Vec<FlowEvent> {
    run_with(FlowConfig::default(), pkts)
}

fn exchanges(ev: &[FlowEvent]) -> Vec<SessionExchange> {
    ev.iter()
        .filter_map(|e| match e {
            FlowEvent::Exchange(x) => Some(x.clone()),
            _ => None,
        })
        .collect()
}

/// (start ms, end ms, payload up, payload down, opening) of each exchange.
fn summary(ev: &[FlowEvent]) -> Vec<(i64, i64, u64, u64, bool)> {
    let ms = |ts: Timestamp| (ts.0 - BASE * 1_000_000_000) / 1_000_000;
    exchanges(ev).iter().map(|x| (ms(x.start), ms(x.end), x.src_payload, x.dst_payload, x.opening)).collect()
}

#[test]
fn check_ins_over_one_connection_are_exchanges_with_their_payload() {
    let mut c = Conn::open(0, 1000);
    c.check_in(100, 300, 1200); // opening activity
    for i in 1..=4 {
        c.check_in(i * 15_000, 70 + i as u32, 40);
    }
    c.close(70_000);
    let ev = run(&c.pkts);
    assert_eq!(
        summary(&ev),
        vec![
            (100, 130, 300, 1200, true),
            (15_000, 15_030, 71, 40, false),
            (30_000, 30_030, 72, 40, false),
            (45_000, 45_030, 73, 40, false),
            // The last one is still open at the FIN: reported with the End.
            (60_000, 60_030, 74, 40, false),
        ]
    );
    let x = &exchanges(&ev)[1];
    assert_eq!((x.src, x.dst, x.sport, x.dport, x.protocol), (ip(C), ip(S), Some(40000), Some(443), 6));
    // One session: every exchange carries its id, and all of them come before its End.
    let end_at = ev.iter().position(|e| matches!(e, FlowEvent::End(_))).unwrap();
    let FlowEvent::End(r) = &ev[end_at] else { unreachable!() };
    assert!(exchanges(&ev).iter().all(|x| x.id == r.id));
    assert!(ev[..end_at].iter().filter(|e| matches!(e, FlowEvent::Exchange(_))).count() == 5);
    // The record is the same as without exchange tracking: exchanges are not records.
    let plain = run_with(FlowConfig { exchange_gap: Duration(0), ..FlowConfig::default() }, &c.pkts);
    assert!(exchanges(&plain).is_empty());
    let records =
        |ev: &[FlowEvent]| ev.iter().filter(|e| !matches!(e, FlowEvent::Exchange(_))).cloned().collect::<Vec<_>>();
    assert_eq!(records(&ev), records(&plain));
}

#[test]
fn a_session_that_never_pauses_reports_nothing() {
    // A long bulk download: a segment every 200 ms for five minutes, client ACKs.
    let mut c = Conn::open(0, 5);
    c.up(50, 120);
    let mut ms = 100;
    while ms < 300_000 {
        c.down(ms, 1400);
        c.ack(ms + 1, true);
        ms += 200;
    }
    c.close(ms);
    assert!(exchanges(&run(&c.pkts)).is_empty());
    // A request, a reply, then silence until the close: a pause ended by nothing.
    let mut c = Conn::open(0, 5);
    c.check_in(100, 300, 900);
    c.close(60_000);
    assert!(exchanges(&run(&c.pkts)).is_empty());
}

#[test]
fn keepalive_probes_and_bare_acks_do_not_end_a_pause() {
    // An idle connection kept up by the kernel: after one exchange, a keepalive every
    // 5 s for 5 minutes — Linux style (no payload, seq − 1) and Windows style (one
    // byte at seq − 1, repeating the last byte sent) — each answered by a bare ACK.
    for one_byte in [false, true] {
        let mut c = Conn::open(0, 77);
        c.check_in(100, 22, 8);
        let mut ms = 5_000;
        while ms <= 300_000 {
            c.pkts.push(seg(ms, true, F::ACK, c.cseq.wrapping_sub(1), u32::from(one_byte)));
            c.ack(ms + 20, false);
            ms += 5_000;
        }
        c.close(301_000);
        let ev = run(&c.pkts);
        assert!(exchanges(&ev).is_empty(), "one-byte probes {one_byte}: {:?}", summary(&ev));
    }
}

#[test]
fn retransmissions_are_not_activity_and_only_new_bytes_count() {
    let mut c = Conn::open(0, 4000);
    c.check_in(100, 200, 500);
    // The server's reply retransmitted 6 s later (lost ACK): no new data, no pause end.
    let reply_seq = c.sseq.wrapping_sub(500);
    c.pkts.push(seg(6_100, false, F::PSH | F::ACK, reply_seq, 500));
    // The client's request retransmitted 9 s later: the same.
    c.pkts.push(seg(9_100, true, F::PSH | F::ACK, c.cseq.wrapping_sub(200), 200));
    // A real check-in at 13 s (under 5 s after the retransmissions, so they must not
    // count) whose segment overlaps 50 already-sent bytes: 80 are new.
    c.pkts.push(seg(13_000, true, F::PSH | F::ACK, c.cseq.wrapping_sub(50), 130));
    c.cseq = c.cseq.wrapping_add(80);
    c.down(13_030, 40);
    c.check_in(40_000, 90, 40);
    c.close(41_000);
    assert_eq!(
        summary(&run(&c.pkts)),
        vec![(100, 130, 200, 500, true), (13_000, 13_030, 80, 40, false), (40_000, 40_030, 90, 40, false)]
    );
}

#[test]
fn sequence_numbers_that_wrap_are_still_new_data() {
    let mut c = Conn::open(0, u32::MAX - 150);
    c.check_in(100, 100, 10); // crosses 2^32
    c.check_in(10_000, 100, 10);
    c.check_in(20_000, 100, 10);
    c.close(21_000);
    assert_eq!(
        summary(&run(&c.pkts)),
        vec![(100, 130, 100, 10, true), (10_000, 10_030, 100, 10, false), (20_000, 20_030, 100, 10, false)]
    );
}

#[test]
fn only_the_initiator_starts_an_exchange() {
    let mut c = Conn::open(0, 1);
    c.check_in(100, 50, 50);
    // The server pushes after a pause: that ends the opening block, but its block is
    // not an exchange; the client's answer 1 s later belongs to the server's block.
    c.down(10_000, 300);
    c.up(11_000, 20);
    // The client speaks after a pause: an exchange.
    c.check_in(30_000, 60, 30);
    c.close(31_000);
    assert_eq!(summary(&run(&c.pkts)), vec![(100, 130, 50, 50, true), (30_000, 30_030, 60, 30, false)]);
}

#[test]
fn pause_length_is_configurable_and_zero_turns_tracking_off() {
    let mut c = Conn::open(0, 1);
    for i in 0..6 {
        c.check_in(100 + i * 3_000, 40, 40);
    }
    c.close(20_000);
    assert!(exchanges(&run(&c.pkts)).is_empty(), "3 s gaps are not pauses at the default 5 s");
    let short = FlowConfig { exchange_gap: Duration::from_secs(2), ..FlowConfig::default() };
    assert_eq!(exchanges(&run_with(short, &c.pkts)).len(), 6);
    let off = FlowConfig { exchange_gap: Duration(0), ..FlowConfig::default() };
    assert!(exchanges(&run_with(off, &c.pkts)).is_empty());
}

#[test]
fn udp_beacon_from_one_source_port_is_one_session_with_exchanges() {
    let mut pkts = Vec::new();
    for i in 0..5 {
        pkts.push(dgram(i * 12_000, true, 52));
        pkts.push(dgram(i * 12_000 + 40, false, 28));
    }
    let ev = run(&pkts);
    assert_eq!(ev.iter().filter(|e| matches!(e, FlowEvent::End(_))).count(), 1, "one 5-tuple, one session");
    let got = summary(&ev);
    assert_eq!(got.len(), 5);
    for (i, x) in got.iter().enumerate() {
        assert_eq!(*x, (i as i64 * 12_000, i as i64 * 12_000 + 40, 52, 28, i == 0));
    }
    assert_eq!(exchanges(&ev)[0].protocol, 17);
}

#[test]
fn an_exchange_after_an_active_timeout_split_follows_the_new_start() {
    let cfg = FlowConfig { active_timeout: Duration::from_secs(60), ..FlowConfig::default() };
    let mut c = Conn::open(0, 1);
    for i in 0..6 {
        c.check_in(100 + i * 20_000, 40, 40);
    }
    c.close(101_000);
    let ev = run_with(cfg, &c.pkts);
    // The check-in at 60.1 s splits the session (segment 1) and completes the 40.1 s one.
    let split = ev.iter().position(|e| matches!(e, FlowEvent::Start(s) if s.segment == 1)).unwrap();
    let FlowEvent::Start(second) = &ev[split] else { unreachable!() };
    assert!(matches!(&ev[split - 1], FlowEvent::End(r) if r.end_reason == EndReason::ActiveTimeout));
    assert!(matches!(&ev[split + 1], FlowEvent::Exchange(x) if x.id == second.id && x.start == t(40_100)));
    assert_eq!(exchanges(&ev).len(), 6);
}

#[test]
fn idle_timeout_and_eviction_report_the_open_exchange_before_the_end() {
    let mut pkts = Vec::new();
    for i in 0..3 {
        pkts.push(dgram(i * 10_000, true, 30));
    }
    // Another flow long after: the UDP session expires (60 s idle) on the way.
    let mut later = dgram(200_000, true, 30);
    if let Transport::Udp { sport, .. } = &mut later.transport {
        *sport = 50000;
    }
    pkts.push(later);
    let mut tab = FlowTable::new(FlowConfig::default());
    let mut ev = Vec::new();
    for p in &pkts {
        tab.ingest_at(p, &mut ev);
    }
    let kinds: Vec<&str> = ev
        .iter()
        .map(|e| match e {
            FlowEvent::Start(_) => "start",
            FlowEvent::Exchange(_) => "exchange",
            FlowEvent::End(_) => "end",
        })
        .collect();
    assert_eq!(kinds, ["start", "exchange", "exchange", "exchange", "end", "start"]);
    assert_eq!(summary(&ev).last().unwrap().0, 20_000);
    // The same when the session is evicted from a full table.
    let mut tab = FlowTable::new(FlowConfig { max_flows: 1, ..FlowConfig::default() });
    let mut ev = Vec::new();
    let mut soon = pkts[3].clone();
    soon.ts = t(21_000);
    for p in pkts[..3].iter().chain([&soon]) {
        tab.ingest_at(p, &mut ev);
    }
    assert!(matches!(&ev[4], FlowEvent::End(r) if r.end_reason == EndReason::Evicted));
    assert!(matches!(&ev[3], FlowEvent::Exchange(x) if x.start == t(20_000)));
}

#[test]
fn an_older_packet_does_not_make_a_pause() {
    let mut c = Conn::open(0, 1);
    c.check_in(100, 50, 50);
    c.check_in(10_000, 50, 50);
    // A client segment stamped 8 s earlier than the latest packet (reordered capture).
    c.pkts.push(seg(2_000, true, F::PSH | F::ACK, c.cseq, 10));
    c.cseq += 10;
    c.check_in(12_000, 50, 50);
    c.close(13_000);
    let got = summary(&run(&c.pkts));
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1], (10_000, 12_030, 110, 100, false));
}
