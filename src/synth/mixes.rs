//! The benchmark mixes besides the original one ([`super::mixed`], mix (a)): each a
//! different shape of real traffic, so a speed or memory target is checked on more than
//! one traffic profile (`benches/run.sh` runs them all).
//!
//! - [`write_short`], mix (b): short sessions with small frames between many clients and
//!   servers, ~6.5 packets per session (8-packet TCP sessions, DNS pairs), Poisson
//!   arrivals, SYN scans embedded (~1 session in 1200).
//! - [`write_hosts`], mix (c): host-count stress. Internet-facing services and the
//!   background scanning radiation of the internet: 500 k–1 M distinct external sources
//!   over the file, plus outbound browsing to 200 k destinations. Hidden in it, a real
//!   scanner and two beacons that detection must still find ([`HOSTS_PLANTED`]).
//! - [`write_bulk`], mix (d): a few long bulk transfers carry most packets (full-size
//!   segments, delayed ACKs), over a background of mix (a)'s short sessions.
//!
//! External addresses are drawn from 11.0.0.0–74.255.255.255 ([`external_v4`]): public
//! addresses, as a host-count stress needs more than the documentation ranges hold. These
//! files are only ever read back, never sent on a network (the live benchmark generates
//! its own documentation-address traffic).

use std::collections::HashSet;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::mixed::{internal_host, one_session};
use super::packet::{flags, Packet, TcpSpec, Transport};
use super::pcap_writer::PcapWriter;
use super::scenarios::{v4, ScenarioCtx};
use super::session::{PortState, ScanKind, ScannerStyle, TcpConn, Trace, LOCAL_TTL, MSS, REMOTE_TTL};
use super::stream::{write_sessions, Limit, MixedStats, Resumes, SessionMix, Started};
use crate::time::{Duration, Timestamp};

/// Common knobs of the mixes: packets to write, new sessions per second (Poisson) and
/// the size of the mix's host population (what "hosts" means is per mix).
#[derive(Clone, Copy, Debug)]
pub struct MixParams {
    pub packets: u64,
    pub session_rate: f64,
    pub hosts: u32,
    /// Stop earlier, at this many seconds of traffic (long-run captures).
    pub duration_secs: Option<f64>,
}

impl MixParams {
    fn limit(&self, ctx: &ScenarioCtx) -> Limit {
        Limit { packets: self.packets, until: self.duration_secs.map(|s| ctx.at(s)) }
    }
}

/// What a mix produced: the stream's counters plus the distinct external sources seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MixReport {
    pub stream: MixedStats,
    /// Distinct external (public) addresses that sent at least one packet.
    pub external_sources: u64,
}

/// The `i`-th external IPv4 address (`i < 2^30`): a bijective scramble of `i` into
/// 11.0.0.0–74.255.255.255 (public unicast space, no private or reserved block), so
/// distinct indices give distinct, well-spread addresses.
pub fn external_v4(i: u32) -> Ipv4Addr {
    let scrambled = (u64::from(i) * 0x9E37_79B1) & ((1 << 30) - 1);
    Ipv4Addr::from(0x0B00_0000 + scrambled as u32)
}

fn external(i: u32, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(external_v4(i)), port)
}

/// Index ranges of [`external_v4`] used for different roles (disjoint, so a server is
/// never also a radiation source).
const SERVERS_BASE: u32 = 1 << 29;
const SCANNERS_BASE: u32 = (1 << 29) + (1 << 28);

fn check_hosts(hosts: u32) -> io::Result<()> {
    if hosts == 0 || hosts >= 1 << 28 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("--hosts must be 1..2^28, got {hosts}")));
    }
    Ok(())
}

fn ms(lo: u64, hi: u64, rng: &mut super::Rng) -> Duration {
    Duration(rng.range(lo * 1_000_000, hi * 1_000_000) as i64)
}

/// A SYN scan of `ports` random ports (1..=1024) of `target` by `scanner`, `gap` apart:
/// ~90 % closed (RST/ACK), ~8 % filtered, ~2 % open.
fn syn_scan(tr: &mut Trace, scanner: SocketAddr, target: IpAddr, ports: u16, t: Timestamp, gap: Duration) {
    let rtt = ms(1, 40, &mut tr.rng);
    for i in 0..ports {
        let port = 1 + tr.rng.below(1024) as u16;
        let at = Timestamp(t.0 + i64::from(i) * gap.0);
        let roll = tr.rng.below(100);
        let state = match roll {
            0..=1 => PortState::Open,
            2..=9 => PortState::Filtered,
            _ => PortState::Closed,
        };
        tr.scan_probe(ScannerStyle::Nmap, ScanKind::Syn, scanner, SocketAddr::new(target, port), at, rtt, state);
    }
}

// ---------------------------------------------------------------------------------------
// (b) short sessions, small frames

/// Service ports of mix (b)'s servers (server `j` listens on `SHORT_PORTS[j % 20]`).
const SHORT_PORTS: [u16; 20] =
    [443, 80, 53, 8080, 22, 25, 993, 995, 3306, 5432, 8443, 143, 110, 587, 21, 3389, 5222, 1883, 6379, 9000];
/// Servers of mix (b).
pub const SHORT_SERVERS: u32 = 5_000;

struct Short {
    clients: u32,
}

impl Short {
    fn server(&self, rng: &mut super::Rng, dns: bool) -> SocketAddr {
        let mut j = rng.below(u64::from(SHORT_SERVERS)) as u32;
        let is_dns = SHORT_PORTS[(j % 20) as usize] == 53;
        if dns != is_dns {
            // Move to the nearest server of the wanted kind (port 53 is index 2).
            j = if dns { j - j % 20 + 2 } else { j + 1 };
        }
        external(SERVERS_BASE + j, SHORT_PORTS[(j % 20) as usize])
    }
}

impl SessionMix for Short {
    fn start(&mut self, tr: &mut Trace, t: Timestamp, _: &mut Resumes) -> Started {
        let client_no = tr.rng.below(u64::from(self.clients)) as u32;
        let client = internal_host(client_no, tr.rng.ephemeral_port());
        let rtt = ms(1, 40, &mut tr.rng);
        match tr.rng.below(10_000) {
            // 72 %: a TCP session with one small segment each way (8 packets)
            0..=7_199 => {
                let server = self.server(&mut tr.rng, false);
                let up = tr.rng.range(20, 400);
                let down = tr.rng.range(40, 1000);
                tr.tcp_session(client, server, t, rtt, up, down);
            }
            // 27 %: a DNS query and its answer
            7_200..=9_899 => {
                let server = self.server(&mut tr.rng, true);
                let q = tr.rng.range(30, 70) as u16;
                let a = q + tr.rng.range(16, 200) as u16;
                tr.udp_exchange(client, server, t, rtt, q, a);
            }
            // ~1 %: rejected attempt (closed port)
            9_900..=9_991 => {
                let server = self.server(&mut tr.rng, false);
                tr.tcp_rejected(client, server, t, rtt);
            }
            // 0.08 %: a SYN scan of 20–300 ports, 70 % from outside, 30 % from a client
            _ => {
                let ports = tr.rng.range(20, 300) as u16;
                let gap = ms(1, 10, &mut tr.rng);
                let (scanner, target) = if tr.rng.chance(0.7) {
                    let s = external(SCANNERS_BASE + tr.rng.below(100_000) as u32, tr.rng.ephemeral_port());
                    (s, internal_host(tr.rng.below(u64::from(self.clients)) as u32, 0).ip())
                } else {
                    (client, internal_host(tr.rng.below(u64::from(self.clients)) as u32, 0).ip())
                };
                syn_scan(tr, scanner, target, ports, t, gap);
                return Started::Scan;
            }
        }
        Started::Session
    }

    fn resume(&mut self, _: &mut Trace, _: u32, _: Timestamp, _: &mut Resumes) {
        unreachable!("mix (b) has no long sessions")
    }
}

/// Mix (b): `hosts` internal clients (the capture had 50 000), [`SHORT_SERVERS`]
/// external servers on 20 ports, ~6.5 packets per session.
pub fn write_short<W: Write>(ctx: &ScenarioCtx, p: &MixParams, out: &mut PcapWriter<W>) -> io::Result<MixReport> {
    check_hosts(p.hosts)?;
    let mut tr = Trace::with_rng(ctx.rng("short"));
    let stream =
        write_sessions(&mut Short { clients: p.hosts }, &mut tr, ctx.start, p.session_rate, p.limit(ctx), out)?;
    Ok(MixReport { stream, external_sources: 0 })
}

// ---------------------------------------------------------------------------------------
// (c) host-count stress

/// What mix (c) hides, and what detection must find in it. Times are after the capture
/// start; both beacons run until the capture ends.
pub struct Planted {
    /// Public scanner: SYN-scans 200 distinct ports of `scan_target`, one probe a second,
    /// starting `scan_at_secs` into the capture (after the tables have filled up).
    pub scanner: Ipv4Addr,
    pub scan_target: Ipv4Addr,
    pub scan_at_secs: i64,
    /// (implant, C2 server:443, period s): one 8-packet TCP session per period from 30 s on.
    pub beacons: [(Ipv4Addr, Ipv4Addr, i64); 2],
}

/// The scanner and beacons planted in mix (c): a 60 s beacon both detector families
/// should report (given at least an hour of capture), and a 300 s one only the enhanced
/// family looks for (the Sentinel rule wants more than 15 sessions an hour).
pub const HOSTS_PLANTED: Planted = Planted {
    scanner: Ipv4Addr::new(203, 0, 113, 66),
    scan_target: Ipv4Addr::new(10, 1, 0, 5),
    scan_at_secs: 600,
    beacons: [
        (Ipv4Addr::new(10, 1, 0, 20), Ipv4Addr::new(203, 0, 113, 50), 60),
        (Ipv4Addr::new(10, 1, 0, 21), Ipv4Addr::new(203, 0, 113, 51), 300),
    ],
};

/// Internet-facing servers of mix (c): 10.2.0.1..=8, each on one port.
const HOSTS_SERVICES: [u16; 8] = [443, 443, 443, 80, 80, 25, 22, 993];
/// Ports the background radiation knocks on (Telnet, SSH, SMB, RDP, web, databases,
/// IoT/router management).
const RADIATION_PORTS: [u16; 16] =
    [23, 22, 445, 3389, 80, 8080, 1433, 5900, 2323, 81, 8443, 6379, 5555, 7547, 37215, 3306];
/// Outbound browsing destinations of mix (c).
const BROWSE_DESTINATIONS: u32 = 200_000;
/// Internal clients of mix (c) (10.1.4.1 onwards: 10.1.0.x holds the planted hosts).
const HOSTS_CLIENTS: u32 = 20_000;
const CLIENT_OFFSET: u32 = 254 * 4;

const RESUME_SCAN: u32 = 0;
const RESUME_BEACON: u32 = 1; // + beacon index

struct Hosts {
    sources: u32,
    primed: bool,
    seen: HashSet<u32>,
}

impl Hosts {
    fn source(&mut self, rng: &mut super::Rng) -> SocketAddr {
        let i = rng.below(u64::from(self.sources)) as u32;
        self.seen.insert(i);
        external(i, rng.ephemeral_port())
    }
}

impl SessionMix for Hosts {
    fn start(&mut self, tr: &mut Trace, t: Timestamp, resumes: &mut Resumes) -> Started {
        if !self.primed {
            self.primed = true;
            resumes.at(Timestamp(t.0 + HOSTS_PLANTED.scan_at_secs * 1_000_000_000), RESUME_SCAN);
            for b in 0..HOSTS_PLANTED.beacons.len() as u32 {
                resumes.at(Timestamp(t.0 + 30_000_000_000), RESUME_BEACON + b);
            }
        }
        let rtt = ms(10, 80, &mut tr.rng);
        match tr.rng.below(10_000) {
            // 40 %: a client on the internet uses one of the services
            0..=3_999 => {
                let client = self.source(&mut tr.rng);
                let s = tr.rng.below(HOSTS_SERVICES.len() as u64) as usize;
                let server = v4(10, 2, 0, s as u8 + 1, HOSTS_SERVICES[s]);
                let up = tr.rng.range(100, 800);
                let down = tr.rng.range(200, 1400);
                tr.tcp_session(client, server, t, rtt, up, down);
            }
            // 15 %: an internal client browses the internet
            4_000..=5_499 => {
                let n = CLIENT_OFFSET + tr.rng.below(u64::from(HOSTS_CLIENTS)) as u32;
                let client = internal_host(n, tr.rng.ephemeral_port());
                let dst = SERVERS_BASE + tr.rng.below(u64::from(BROWSE_DESTINATIONS)) as u32;
                let server = external(dst, if tr.rng.chance(0.85) { 443 } else { 80 });
                let up = tr.rng.range(200, 1200);
                let down = tr.rng.range(300, 1400);
                tr.tcp_session(client, server, t, rtt, up, down);
            }
            // 5 %: an internet client tries a closed port on a server
            5_500..=5_999 => {
                let client = self.source(&mut tr.rng);
                let server = v4(10, 2, 0, 1 + tr.rng.below(8) as u8, 8000 + tr.rng.below(100) as u16);
                tr.tcp_rejected(client, server, t, Duration(rtt.0 / 10));
            }
            // 40 %: background radiation: one probe to a random address of 10.3.0.0/16
            _ => {
                let source = self.source(&mut tr.rng);
                let target = v4(10, 3, tr.rng.below(256) as u8, 1 + tr.rng.below(254) as u8, 0).ip();
                let port = RADIATION_PORTS[tr.rng.below(RADIATION_PORTS.len() as u64) as usize];
                if tr.rng.chance(0.15) {
                    let udp_port = [53, 123, 161, 1900, 5060][tr.rng.below(5) as usize];
                    let len = tr.rng.range(20, 120) as u16;
                    tr.udp(t, source, SocketAddr::new(target, udp_port), 49, len);
                } else {
                    let state = if tr.rng.chance(0.25) { PortState::Closed } else { PortState::Filtered };
                    let style = if tr.rng.chance(0.5) { ScannerStyle::Masscan } else { ScannerStyle::Zmap };
                    let rtt = Duration(rtt.0 / 10);
                    tr.scan_probe(style, ScanKind::Syn, source, SocketAddr::new(target, port), t, rtt, state);
                }
            }
        }
        Started::Session
    }

    fn resume(&mut self, tr: &mut Trace, id: u32, t: Timestamp, resumes: &mut Resumes) {
        if id == RESUME_SCAN {
            let p = &HOSTS_PLANTED;
            let scanner = SocketAddr::new(IpAddr::V4(p.scanner), 45_112);
            let mut ports: Vec<u16> = (1..=1024).collect();
            tr.rng.shuffle(&mut ports);
            let rtt = ms(10, 80, &mut tr.rng);
            for (i, &port) in ports[..200].iter().enumerate() {
                let at = Timestamp(t.0 + i as i64 * 1_000_000_000);
                let state = if matches!(port, 22 | 80 | 443) { PortState::Open } else { PortState::Closed };
                let target = SocketAddr::new(IpAddr::V4(p.scan_target), port);
                tr.scan_probe(ScannerStyle::Nmap, ScanKind::Syn, scanner, target, at, rtt, state);
            }
            return;
        }
        let (implant, c2, period) = HOSTS_PLANTED.beacons[(id - RESUME_BEACON) as usize];
        let client = SocketAddr::new(IpAddr::V4(implant), tr.rng.ephemeral_port());
        let rtt = ms(10, 80, &mut tr.rng);
        let (up, down) = (tr.rng.range(280, 320), tr.rng.range(1150, 1250));
        tr.tcp_session(client, SocketAddr::new(IpAddr::V4(c2), 443), t, rtt, up, down);
        resumes.at(Timestamp(t.0 + period * 1_000_000_000), id);
    }
}

/// Mix (c): external sources drawn from a population of `hosts` (1 M by default in
/// `benches/run.sh`), with [`HOSTS_PLANTED`] hidden in it.
pub fn write_hosts<W: Write>(ctx: &ScenarioCtx, p: &MixParams, out: &mut PcapWriter<W>) -> io::Result<MixReport> {
    check_hosts(p.hosts)?;
    let mut tr = Trace::with_rng(ctx.rng("hosts"));
    let mut mix = Hosts { sources: p.hosts, primed: false, seen: HashSet::new() };
    let stream = write_sessions(&mut mix, &mut tr, ctx.start, p.session_rate, p.limit(ctx), out)?;
    Ok(MixReport { stream, external_sources: mix.seen.len() as u64 })
}

// ---------------------------------------------------------------------------------------
// (d) bulk transfers

/// Segments produced per resume of a bulk transfer.
const BULK_CHUNK: u32 = 128;

struct BulkFlow {
    conn: TcpConn,
    left: u64,
    gap_ns: i64,
    segs: u32,
}

struct Bulk {
    hosts: u32,
    flows: Vec<Option<BulkFlow>>,
    free: Vec<u32>,
}

/// Log-uniform in `[lo, hi]`.
fn log_uniform(rng: &mut super::Rng, lo: f64, hi: f64) -> f64 {
    (lo.ln() + (hi.ln() - lo.ln()) * rng.unit()).exp()
}

impl SessionMix for Bulk {
    fn start(&mut self, tr: &mut Trace, t: Timestamp, resumes: &mut Resumes) -> Started {
        // 0.5 % of sessions are downloads of 1–200 MB at 0.5–10 MB/s; they carry ~95 % of
        // the packets. The rest is mix (a).
        if !tr.rng.chance(0.005) {
            return if one_session(tr, self.hosts, t) { Started::Scan } else { Started::Session };
        }
        let client = internal_host(tr.rng.below(u64::from(self.hosts)) as u32, tr.rng.ephemeral_port());
        let server = external(SERVERS_BASE + tr.rng.below(2_000) as u32, 443);
        let rtt = ms(5, 60, &mut tr.rng);
        let bytes = log_uniform(&mut tr.rng, 1e6, 200e6) as u64;
        let rate = log_uniform(&mut tr.rng, 0.5e6, 10e6);
        let mut conn = tr.tcp_handshake(client, server, t, rtt);
        let request = tr.rng.range(200, 600);
        tr.send_up(&mut conn, request);
        conn.t = Timestamp(conn.t.0 + rtt.0);
        let flow = BulkFlow { conn, left: bytes, gap_ns: (f64::from(MSS) * 1e9 / rate).max(1000.0) as i64, segs: 0 };
        let id = match self.free.pop() {
            Some(id) => {
                self.flows[id as usize] = Some(flow);
                id
            }
            None => {
                self.flows.push(Some(flow));
                self.flows.len() as u32 - 1
            }
        };
        resumes.at(conn.t, id);
        Started::Session
    }

    fn resume(&mut self, tr: &mut Trace, id: u32, t: Timestamp, resumes: &mut Resumes) {
        let flow = self.flows[id as usize].as_mut().expect("resumed flow is live");
        let c = &mut flow.conn;
        let mut at = t;
        for _ in 0..BULK_CHUNK {
            if flow.left == 0 {
                break;
            }
            let len = flow.left.min(u64::from(MSS)) as u16;
            flow.left -= u64::from(len);
            flow.segs += 1;
            let fl = if flow.left == 0 { flags::PSH | flags::ACK } else { flags::ACK };
            let seg = TcpSpec { payload_len: len, ..TcpSpec::plain(0, 0, c.sseq, c.cseq, fl, 509) };
            push_tcp(tr, at, c.server, c.client, REMOTE_TTL, seg);
            c.sseq = c.sseq.wrapping_add(u32::from(len));
            if flow.segs % 2 == 0 || flow.left == 0 {
                let ack = TcpSpec::plain(0, 0, c.cseq, c.sseq, flags::ACK, 502);
                push_tcp(tr, Timestamp(at.0 + 10_000), c.client, c.server, LOCAL_TTL, ack);
            }
            c.t = Timestamp(at.0 + 10_000);
            at = Timestamp(at.0 + flow.gap_ns);
        }
        if flow.left > 0 {
            resumes.at(at, id);
        } else {
            let mut conn = flow.conn;
            tr.tcp_close(&mut conn);
            self.flows[id as usize] = None;
            self.free.push(id);
        }
    }
}

fn push_tcp(tr: &mut Trace, ts: Timestamp, from: SocketAddr, to: SocketAddr, ttl: u8, spec: TcpSpec) {
    let ip_id = tr.rng.next_u16();
    let transport = Transport::Tcp(TcpSpec { sport: from.port(), dport: to.port(), ..spec });
    tr.push(Packet { ts, src: from.ip(), dst: to.ip(), ttl, ip_id, transport });
}

/// Mix (d): bulk downloads among `hosts` internal clients over a background of mix (a).
pub fn write_bulk<W: Write>(ctx: &ScenarioCtx, p: &MixParams, out: &mut PcapWriter<W>) -> io::Result<MixReport> {
    check_hosts(p.hosts)?;
    let mut tr = Trace::with_rng(ctx.rng("bulk"));
    let mut mix = Bulk { hosts: p.hosts, flows: Vec::new(), free: Vec::new() };
    let stream = write_sessions(&mut mix, &mut tr, ctx.start, p.session_rate, p.limit(ctx), out)?;
    Ok(MixReport { stream, external_sources: 0 })
}

#[cfg(test)]
#[path = "mixes_tests.rs"]
mod tests;
