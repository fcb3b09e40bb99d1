//! The streaming benchmark mix: sessions start as a Poisson process at a given rate among
//! many hosts (mostly 8-packet TCP sessions, DNS-like UDP exchanges, some inbound and
//! long sessions, rejected/unanswered attempts and the occasional port scan). Packets of
//! all active sessions wait in a min-heap keyed by (timestamp, insertion order) and are
//! written as soon as no session yet to start can precede them, so memory stays bounded
//! by the active sessions however many packets are generated.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::io::{self, Write};
use std::net::SocketAddr;

use super::packet::Packet;
use super::pcap_writer::PcapWriter;
use super::scenarios::{public_host, v4, ScenarioCtx};
use super::session::{PortState, ScanKind, ScannerStyle, Trace};
use crate::time::{Duration, Timestamp};

/// Knobs of the benchmark mix.
#[derive(Clone, Copy, Debug)]
pub struct MixedParams {
    /// Stop after writing this many packets.
    pub packets: u64,
    /// New sessions per second (Poisson).
    pub session_rate: f64,
    /// Number of distinct internal hosts.
    pub hosts: u32,
}

impl Default for MixedParams {
    fn default() -> Self {
        MixedParams { packets: 1_000_000, session_rate: 2000.0, hosts: 20_000 }
    }
}

/// What [`write_mixed`] produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MixedStats {
    pub packets: u64,
    pub sessions: u64,
    pub scans: u64,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    /// Largest number of packets waiting in the heap at once.
    pub peak_pending: usize,
}

struct Pending {
    ts: Timestamp,
    order: u64,
    pkt: Packet,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.ts, self.order) == (other.ts, other.order)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.ts, self.order).cmp(&(other.ts, other.order))
    }
}

/// Internal host number `i` (0-based) inside 10.1.0.0/12-ish space: 10.(1 + i/65536).x.y,
/// skipping .0 and .255 host bytes.
fn internal_host(i: u32, port: u16) -> SocketAddr {
    let n = i % (1 << 22);
    let hi = (n / (254 * 256)) as u8;
    let mid = ((n / 254) % 256) as u8;
    let lo = (n % 254) as u8 + 1;
    v4(10, 1 + hi, mid, lo, port)
}

/// Generates the mix into `out` until `params.packets` packets are written.
pub fn write_mixed<W: Write>(
    ctx: &ScenarioCtx,
    params: &MixedParams,
    out: &mut PcapWriter<W>,
) -> io::Result<MixedStats> {
    if params.session_rate <= 0.0 || !params.session_rate.is_finite() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--session-rate must be a positive number, got {}", params.session_rate),
        ));
    }
    if params.hosts == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "--hosts must be at least 1"));
    }
    let mut tr = Trace::with_rng(ctx.rng("mixed"));
    let mut heap: BinaryHeap<Reverse<Pending>> = BinaryHeap::with_capacity(1 << 16);
    let mut order = 0u64;
    let mut stats = MixedStats::default();
    let mean_gap_ns = 1e9 / params.session_rate;
    let mut next_start = ctx.start;
    while stats.packets < params.packets {
        let ready = heap.peek().is_some_and(|Reverse(p)| p.ts <= next_start);
        if ready {
            let Reverse(p) = heap.pop().expect("peeked");
            if stats.packets == 0 {
                stats.first_ts = p.ts;
            }
            out.write_packet(&p.pkt)?;
            stats.packets += 1;
            stats.last_ts = p.ts;
            continue;
        }
        let scan = one_session(&mut tr, params, next_start);
        stats.sessions += 1;
        stats.scans += scan as u64;
        for pkt in tr.packets.drain(..) {
            heap.push(Reverse(Pending { ts: pkt.ts, order, pkt }));
            order += 1;
        }
        stats.peak_pending = stats.peak_pending.max(heap.len());
        let gap = tr.rng.exp(mean_gap_ns).max(1.0) as i64;
        next_start = Timestamp(next_start.0 + gap);
    }
    Ok(stats)
}

/// Appends one session starting at `t` to `tr.packets`; returns true if it was a scan.
fn one_session(tr: &mut Trace, params: &MixedParams, t: Timestamp) -> bool {
    let rng = &mut tr.rng;
    let host = internal_host(rng.below(params.hosts as u64) as u32, rng.ephemeral_port());
    let rtt = Duration(rng.range(5_000_000, 90_000_000) as i64);
    let pick = rng.below(10_000);
    match pick {
        // 80 %: ordinary outbound web session, mostly one segment each way
        0..=7_999 => {
            let port = if rng.chance(0.85) { 443 } else { 80 };
            let server = public_host(rng.below(762) as u32, port);
            let up = rng.range(200, 1200);
            let down = if rng.chance(0.9) { rng.range(300, 1400) } else { rng.range(2_000, 30_000) };
            tr.tcp_session(host, server, t, rtt, up, down);
        }
        // 10 %: DNS-like UDP exchange
        8_000..=8_999 => {
            let server = public_host(rng.below(762) as u32, if rng.chance(0.9) { 53 } else { 123 });
            let q = rng.range(30, 80) as u16;
            tr.udp_exchange(host, server, t, rtt, q, q + 60);
        }
        // 5 %: inbound session from a public client to an internal server
        9_000..=9_499 => {
            let client = public_host(rng.below(762) as u32, rng.ephemeral_port());
            let mut server = host;
            server.set_port(if rng.chance(0.5) { 443 } else { 22 });
            let up = rng.range(200, 1200);
            let down = rng.range(300, 1400);
            tr.tcp_session(client, server, t, rtt, up, down);
        }
        // 1 %: long session with periodic exchanges
        9_500..=9_599 => {
            let server = public_host(rng.below(762) as u32, 443);
            let duration = Duration::from_secs(rng.range(30, 300) as i64);
            let period = Duration::from_secs(rng.range(5, 20) as i64);
            tr.tcp_long_session(host, server, t, rtt, duration, period, 150, 400);
        }
        // 2 %: rejected attempt
        9_600..=9_799 => {
            let server = public_host(rng.below(762) as u32, 8443);
            tr.tcp_rejected(host, server, t, rtt);
        }
        // ~2 %: unanswered attempt with retransmissions
        9_800..=9_997 => {
            let server = public_host(rng.below(762) as u32, 443);
            let retries = rng.range(0, 2) as u32;
            tr.tcp_unanswered(host, server, t, retries);
        }
        // 0.02 %: a 100-port SYN scan of one internal host from a public scanner
        _ => {
            let scanner = public_host(rng.below(762) as u32, rng.ephemeral_port());
            let target = host.ip();
            for i in 0..100u16 {
                let port = 1 + tr.rng.below(1024) as u16;
                let at = Timestamp(t.0 + i as i64 * 5_000_000);
                let state = if tr.rng.chance(0.1) { PortState::Filtered } else { PortState::Closed };
                tr.scan_probe(
                    ScannerStyle::Nmap,
                    ScanKind::Syn,
                    scanner,
                    SocketAddr::new(target, port),
                    at,
                    rtt,
                    state,
                );
            }
            return true;
        }
    }
    false
}
