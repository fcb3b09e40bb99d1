//! Session-level traffic builders: whole TCP conversations (handshake, data, teardown),
//! rejected and unanswered connection attempts, UDP exchanges, ICMP replies, scanner
//! probes with nmap / masscan / zmap fingerprints, and mid-session downloads. Each helper
//! appends [`Packet`]s to a [`Trace`]; call [`Trace::into_sorted`] to get capture order.
//!
//! Time model: the sensor sits next to the client (or the scanner), so a reply is seen one
//! round-trip time after the packet that caused it.

use std::net::{IpAddr, SocketAddr};

use super::packet::{flags, Packet, TcpSpec, Transport, UdpSpec, MAX_PAYLOAD};
use super::rng::Rng;
use crate::time::{Duration, Timestamp};

/// TTL of packets sent by hosts next to the sensor.
pub const LOCAL_TTL: u8 = 64;
/// TTL of packets that crossed the network to reach the sensor.
pub const REMOTE_TTL: u8 = 52;
/// Segment size used to split data.
pub const MSS: u16 = MAX_PAYLOAD;
/// Gap between back-to-back segments of one burst.
const SEGMENT_GAP_NS: i64 = 100_000;
/// Host processing delay before answering (delayed ACK, application think time).
const HOST_DELAY_NS: i64 = 40_000;

/// How a scanner's probe packets look on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScannerStyle {
    /// nmap: window 1024, MSS option, random IP id and TTL 37..=59.
    Nmap,
    /// masscan: window 1024, no options, TTL 255, IP id = dst_ip ^ dst_port ^ seq (low 16 bits).
    Masscan,
    /// zmap: window 65535, no options, TTL 255, IP id 54321.
    Zmap,
}

/// TCP scan technique (which flags the probe carries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanKind {
    Syn,
    Fin,
    Null,
    Xmas,
    Ack,
}

impl ScanKind {
    pub fn probe_flags(self) -> u8 {
        match self {
            ScanKind::Syn => flags::SYN,
            ScanKind::Fin => flags::FIN,
            ScanKind::Null => 0,
            ScanKind::Xmas => flags::FIN | flags::PSH | flags::URG,
            ScanKind::Ack => flags::ACK,
        }
    }
}

/// What the probed port does with a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortState {
    /// Listening: SYN gets SYN-ACK (the scanner's kernel then resets); FIN/NULL/XMAS get
    /// nothing; ACK gets RST.
    Open,
    /// Closed: answered with RST (RST/ACK for non-ACK probes).
    Closed,
    /// Firewalled: no answer at all.
    Filtered,
}

/// A packet list under construction plus the random source used to fill in ISNs, IP ids
/// and sizes.
#[derive(Clone, Debug)]
pub struct Trace {
    pub packets: Vec<Packet>,
    pub rng: Rng,
}

/// One TCP connection in progress (sequence numbers and the time of the last packet).
#[derive(Clone, Copy, Debug)]
pub struct TcpConn {
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// Next sequence number the client will send.
    pub cseq: u32,
    /// Next sequence number the server will send.
    pub sseq: u32,
    /// Time of the latest packet of this connection.
    pub t: Timestamp,
    pub rtt: Duration,
}

fn add(t: Timestamp, ns: i64) -> Timestamp {
    Timestamp(t.0.saturating_add(ns))
}

impl Trace {
    pub fn new(seed: u64) -> Self {
        Trace { packets: Vec::new(), rng: Rng::new(seed) }
    }

    pub fn with_rng(rng: Rng) -> Self {
        Trace { packets: Vec::new(), rng }
    }

    /// The packets in capture order (stable: equal timestamps keep insertion order).
    pub fn into_sorted(mut self) -> Vec<Packet> {
        sort_packets(&mut self.packets);
        self.packets
    }

    pub fn push(&mut self, p: Packet) {
        self.packets.push(p);
    }

    fn tcp(&mut self, ts: Timestamp, from: SocketAddr, to: SocketAddr, ttl: u8, spec: TcpSpec) {
        let ip_id = self.rng.next_u16();
        self.packets.push(Packet {
            ts,
            src: from.ip(),
            dst: to.ip(),
            ttl,
            ip_id,
            transport: Transport::Tcp(TcpSpec { sport: from.port(), dport: to.port(), ..spec }),
        });
    }

    /// Sends the three-way handshake starting at `start`; returns the open connection.
    pub fn tcp_handshake(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        start: Timestamp,
        rtt: Duration,
    ) -> TcpConn {
        let c_isn = self.rng.next_u32();
        let s_isn = self.rng.next_u32();
        let syn_opts = |seq, ack, fl, window| TcpSpec {
            mss: Some(1460),
            wscale: Some(7),
            sack_permitted: true,
            ..TcpSpec::plain(0, 0, seq, ack, fl, window)
        };
        self.tcp(start, client, server, LOCAL_TTL, syn_opts(c_isn, 0, flags::SYN, 64240));
        let t1 = add(start, rtt.0);
        let synack = syn_opts(s_isn, c_isn.wrapping_add(1), flags::SYN | flags::ACK, 65160);
        self.tcp(t1, server, client, REMOTE_TTL, synack);
        let t2 = add(t1, HOST_DELAY_NS / 2);
        let ack = TcpSpec::plain(0, 0, c_isn.wrapping_add(1), s_isn.wrapping_add(1), flags::ACK, 502);
        self.tcp(t2, client, server, LOCAL_TTL, ack);
        TcpConn { client, server, cseq: c_isn.wrapping_add(1), sseq: s_isn.wrapping_add(1), t: t2, rtt }
    }

    /// An already-established connection whose handshake the capture did not see.
    pub fn tcp_established(&mut self, client: SocketAddr, server: SocketAddr, t: Timestamp, rtt: Duration) -> TcpConn {
        TcpConn { client, server, cseq: self.rng.next_u32(), sseq: self.rng.next_u32(), t, rtt }
    }

    /// Client sends `bytes` in MSS-sized segments starting shortly after `conn.t`.
    pub fn send_up(&mut self, conn: &mut TcpConn, bytes: u64) {
        self.send_data(conn, bytes, true);
    }

    /// Server sends `bytes` one RTT after the client's last packet; the client ACKs every
    /// second segment (delayed ACK).
    pub fn send_down(&mut self, conn: &mut TcpConn, bytes: u64) {
        conn.t = add(conn.t, conn.rtt.0);
        self.send_data(conn, bytes, false);
    }

    fn send_data(&mut self, conn: &mut TcpConn, bytes: u64, upward: bool) {
        let mut left = bytes;
        let mut segs = 0u32;
        let mut t = add(conn.t, HOST_DELAY_NS);
        while left > 0 {
            let len = left.min(MSS as u64) as u16;
            left -= len as u64;
            segs += 1;
            let fl = if left == 0 { flags::PSH | flags::ACK } else { flags::ACK };
            let (from, to, ttl, seq, ack) = if upward {
                (conn.client, conn.server, LOCAL_TTL, conn.cseq, conn.sseq)
            } else {
                (conn.server, conn.client, REMOTE_TTL, conn.sseq, conn.cseq)
            };
            let spec =
                TcpSpec { payload_len: len, ..TcpSpec::plain(0, 0, seq, ack, fl, if upward { 502 } else { 509 }) };
            self.tcp(t, from, to, ttl, spec);
            if upward {
                conn.cseq = conn.cseq.wrapping_add(len as u32);
            } else {
                conn.sseq = conn.sseq.wrapping_add(len as u32);
                if segs % 2 == 0 && left > 0 {
                    // Receiver's delayed ACK of two full segments; the sender's own ACKs
                    // come back from far away, so only the receiver ACKs locally.
                    let ack = TcpSpec::plain(0, 0, conn.cseq, conn.sseq, flags::ACK, 502);
                    self.tcp(add(t, HOST_DELAY_NS / 4), conn.client, conn.server, LOCAL_TTL, ack);
                }
            }
            conn.t = t;
            t = add(t, SEGMENT_GAP_NS);
        }
    }

    /// Client-initiated FIN/ACK, server FIN/ACK, client ACK. Returns the last packet's time.
    pub fn tcp_close(&mut self, conn: &mut TcpConn) -> Timestamp {
        let t0 = add(conn.t, HOST_DELAY_NS);
        let fin = TcpSpec::plain(0, 0, conn.cseq, conn.sseq, flags::FIN | flags::ACK, 502);
        self.tcp(t0, conn.client, conn.server, LOCAL_TTL, fin);
        conn.cseq = conn.cseq.wrapping_add(1);
        let t1 = add(t0, conn.rtt.0);
        let sfin = TcpSpec::plain(0, 0, conn.sseq, conn.cseq, flags::FIN | flags::ACK, 509);
        self.tcp(t1, conn.server, conn.client, REMOTE_TTL, sfin);
        conn.sseq = conn.sseq.wrapping_add(1);
        let t2 = add(t1, HOST_DELAY_NS / 2);
        let last = TcpSpec::plain(0, 0, conn.cseq, conn.sseq, flags::ACK, 502);
        self.tcp(t2, conn.client, conn.server, LOCAL_TTL, last);
        conn.t = t2;
        t2
    }

    /// A complete TCP session: handshake, `bytes_up` from the client, `bytes_down` in
    /// reply, FIN teardown. With one segment each way that is 8 packets. Returns the time
    /// of the last packet.
    pub fn tcp_session(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        start: Timestamp,
        rtt: Duration,
        bytes_up: u64,
        bytes_down: u64,
    ) -> Timestamp {
        let mut c = self.tcp_handshake(client, server, start, rtt);
        if bytes_up > 0 {
            self.send_up(&mut c, bytes_up);
        }
        if bytes_down > 0 {
            self.send_down(&mut c, bytes_down);
        }
        self.tcp_close(&mut c)
    }

    /// A long-lived session: handshake, then every `period` an exchange of `bytes_up` /
    /// `bytes_down`, until `duration` has passed; then teardown.
    #[allow(clippy::too_many_arguments)]
    pub fn tcp_long_session(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        start: Timestamp,
        rtt: Duration,
        duration: Duration,
        period: Duration,
        bytes_up: u64,
        bytes_down: u64,
    ) -> Timestamp {
        let mut c = self.tcp_handshake(client, server, start, rtt);
        let end = add(start, duration.0);
        let mut next = add(c.t, period.0.max(1));
        while next < end {
            c.t = next;
            self.send_up(&mut c, bytes_up);
            self.send_down(&mut c, bytes_down);
            next = add(next, period.0.max(1));
        }
        c.t = c.t.max(end);
        self.tcp_close(&mut c)
    }

    /// A download already running when the capture starts: server data segments (no
    /// handshake in the capture) at `bytes_per_sec`, client ACKs, and a FIN teardown if
    /// `close` is set. Returns the last packet's time.
    pub fn midstream_download(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        start: Timestamp,
        bytes: u64,
        bytes_per_sec: u64,
        close: bool,
    ) -> Timestamp {
        let mut c = self.tcp_established(client, server, start, Duration(20_000_000));
        let gap = (MSS as i64 * 1_000_000_000 / bytes_per_sec.max(1) as i64).max(1000);
        let mut t = start;
        let mut left = bytes;
        let mut segs = 0u32;
        while left > 0 {
            let len = left.min(MSS as u64) as u16;
            left -= len as u64;
            segs += 1;
            let spec = TcpSpec { payload_len: len, ..TcpSpec::plain(0, 0, c.sseq, c.cseq, flags::ACK, 509) };
            self.tcp(t, server, client, REMOTE_TTL, spec);
            c.sseq = c.sseq.wrapping_add(len as u32);
            if segs % 2 == 0 || left == 0 {
                let ack = TcpSpec::plain(0, 0, c.cseq, c.sseq, flags::ACK, 502);
                self.tcp(add(t, HOST_DELAY_NS / 4), client, server, LOCAL_TTL, ack);
            }
            c.t = add(t, HOST_DELAY_NS / 4);
            t = add(t, gap);
        }
        if close {
            self.tcp_close(&mut c)
        } else {
            c.t
        }
    }

    /// SYN answered by RST/ACK (closed port).
    pub fn tcp_rejected(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        start: Timestamp,
        rtt: Duration,
    ) -> Timestamp {
        let isn = self.rng.next_u32();
        let syn = TcpSpec {
            mss: Some(1460),
            wscale: Some(7),
            sack_permitted: true,
            ..TcpSpec::plain(0, 0, isn, 0, flags::SYN, 64240)
        };
        self.tcp(start, client, server, LOCAL_TTL, syn);
        let t = add(start, rtt.0);
        let rst = TcpSpec::plain(0, 0, 0, isn.wrapping_add(1), flags::RST | flags::ACK, 0);
        self.tcp(t, server, client, REMOTE_TTL, rst);
        t
    }

    /// SYN that nobody answers, retransmitted `retransmits` times with doubling timeouts
    /// starting at 1 s (Linux). Returns the last SYN's time.
    pub fn tcp_unanswered(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        start: Timestamp,
        retransmits: u32,
    ) -> Timestamp {
        let isn = self.rng.next_u32();
        let syn = TcpSpec {
            mss: Some(1460),
            wscale: Some(7),
            sack_permitted: true,
            ..TcpSpec::plain(0, 0, isn, 0, flags::SYN, 64240)
        };
        let mut t = start;
        let mut rto = 1_000_000_000i64;
        for i in 0..=retransmits {
            if i > 0 {
                t = add(t, rto);
                rto *= 2;
            }
            self.tcp(t, client, server, LOCAL_TTL, syn);
        }
        t
    }

    /// UDP request and response (DNS/NTP-like).
    pub fn udp_exchange(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        start: Timestamp,
        rtt: Duration,
        request_len: u16,
        response_len: u16,
    ) -> Timestamp {
        self.udp(start, client, server, LOCAL_TTL, request_len);
        let t = add(start, rtt.0);
        self.udp(t, server, client, REMOTE_TTL, response_len);
        t
    }

    /// One UDP datagram.
    pub fn udp(&mut self, ts: Timestamp, from: SocketAddr, to: SocketAddr, ttl: u8, len: u16) {
        let ip_id = self.rng.next_u16();
        self.packets.push(Packet {
            ts,
            src: from.ip(),
            dst: to.ip(),
            ttl,
            ip_id,
            transport: Transport::Udp(UdpSpec { sport: from.port(), dport: to.port(), payload_len: len }),
        });
    }

    /// UDP datagram to a closed port, answered by ICMP port unreachable quoting it.
    pub fn udp_unanswered_with_icmp_unreach(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        start: Timestamp,
        rtt: Duration,
        len: u16,
    ) -> Timestamp {
        self.udp(start, client, server, LOCAL_TTL, len);
        let probe = *self.packets.last().expect("just pushed");
        let Transport::Udp(quoted) = probe.transport else { unreachable!("udp() pushes UDP") };
        let t = add(start, rtt.0);
        let ip_id = self.rng.next_u16();
        self.packets.push(Packet {
            ts: t,
            src: server.ip(),
            dst: client.ip(),
            ttl: REMOTE_TTL,
            ip_id,
            transport: Transport::PortUnreachable {
                quoted,
                quoted_ttl: probe.ttl.saturating_sub(LOCAL_TTL - REMOTE_TTL),
                quoted_ip_id: probe.ip_id,
            },
        });
        t
    }

    /// `count` pings one second apart, each answered after `rtt`.
    pub fn ping(&mut self, client: IpAddr, server: IpAddr, start: Timestamp, rtt: Duration, count: u16) {
        let ident = self.rng.next_u16();
        for seq in 0..count {
            let t = add(start, seq as i64 * 1_000_000_000);
            for (ts, src, dst, ttl, reply) in
                [(t, client, server, LOCAL_TTL, false), (add(t, rtt.0), server, client, REMOTE_TTL, true)]
            {
                let ip_id = self.rng.next_u16();
                let transport = if reply {
                    Transport::EchoReply { ident, seq, payload_len: 56 }
                } else {
                    Transport::EchoRequest { ident, seq, payload_len: 56 }
                };
                self.packets.push(Packet { ts, src, dst, ttl, ip_id, transport });
            }
        }
    }

    /// One scanner probe to `target` and the target's reaction for `state`, with the
    /// scanner's wire fingerprint. `seq` is the probe's sequence number (masscan: its SYN
    /// cookie). Returns the time of the last packet.
    #[allow(clippy::too_many_arguments)]
    pub fn scan_probe(
        &mut self,
        style: ScannerStyle,
        kind: ScanKind,
        scanner: SocketAddr,
        target: SocketAddr,
        start: Timestamp,
        rtt: Duration,
        state: PortState,
    ) -> Timestamp {
        let seq = self.rng.next_u32();
        let ack = if kind == ScanKind::Ack { self.rng.next_u32() } else { 0 };
        let (window, mss, ttl, ip_id) = match style {
            ScannerStyle::Nmap => (1024, Some(1460), self.rng.range(37, 59) as u8, self.rng.next_u16()),
            ScannerStyle::Masscan => (1024, None, 255, masscan_ip_id(target, seq)),
            ScannerStyle::Zmap => (65535, None, 255, 54321),
        };
        let probe_mss = if kind == ScanKind::Syn { mss } else { None };
        self.packets.push(Packet {
            ts: start,
            src: scanner.ip(),
            dst: target.ip(),
            ttl,
            ip_id,
            transport: Transport::Tcp(TcpSpec {
                mss: probe_mss,
                ..TcpSpec::plain(scanner.port(), target.port(), seq, ack, kind.probe_flags(), window)
            }),
        });
        let t = add(start, rtt.0);
        let consumed = match kind {
            ScanKind::Syn | ScanKind::Fin | ScanKind::Xmas => 1,
            _ => 0,
        };
        let reply_ack = seq.wrapping_add(consumed);
        match (kind, state) {
            (_, PortState::Filtered) => start,
            (ScanKind::Syn, PortState::Open) => {
                let s_isn = self.rng.next_u32();
                let synack = TcpSpec {
                    mss: Some(1460),
                    ..TcpSpec::plain(0, 0, s_isn, reply_ack, flags::SYN | flags::ACK, 65160)
                };
                self.tcp(t, target, scanner, REMOTE_TTL, synack);
                // The scanner's kernel never opened this connection, so it resets it.
                let rst = TcpSpec::plain(0, 0, reply_ack, 0, flags::RST, 0);
                let t2 = add(t, HOST_DELAY_NS / 4);
                self.tcp(t2, scanner, target, LOCAL_TTL, rst);
                t2
            }
            (ScanKind::Ack, _) => {
                let rst = TcpSpec::plain(0, 0, ack, 0, flags::RST, 0);
                self.tcp(t, target, scanner, REMOTE_TTL, rst);
                t
            }
            (_, PortState::Open) => start, // FIN/NULL/XMAS: open ports stay silent
            (_, PortState::Closed) => {
                let rst = TcpSpec::plain(0, 0, 0, reply_ack, flags::RST | flags::ACK, 0);
                self.tcp(t, target, scanner, REMOTE_TTL, rst);
                t
            }
        }
    }
}

/// masscan's IP id: `ip_them ^ port_them ^ seqno`, truncated to 16 bits (IPv4 only; for
/// IPv6 targets the low 32 bits of the address are used).
pub fn masscan_ip_id(target: SocketAddr, seq: u32) -> u16 {
    let ip = match target.ip() {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => u128::from(a) as u32,
    };
    (ip ^ target.port() as u32 ^ seq) as u16
}

/// Sorts packets by timestamp, keeping insertion order for equal timestamps.
pub fn sort_packets(pkts: &mut [Packet]) {
    pkts.sort_by_key(|p| p.ts);
}
