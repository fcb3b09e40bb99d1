//! The streaming benchmark mix: sessions start as a Poisson process at a given rate among
//! many hosts (mostly 8-packet TCP sessions, DNS-like UDP exchanges, some inbound and
//! long sessions, rejected/unanswered attempts and the occasional port scan), streamed by
//! [`super::stream`] so memory stays bounded by the active sessions. This is mix (a) of
//! `benches/run.sh`; the other mixes are in [`super::mixes`].

use std::io::{self, Write};
use std::net::SocketAddr;

use super::pcap_writer::PcapWriter;
use super::scenarios::{public_host, v4, ScenarioCtx};
use super::session::{PortState, ScanKind, ScannerStyle, Trace};
pub use super::stream::MixedStats;
use super::stream::{check_rate, write_sessions, Limit, Resumes, SessionMix, Started};
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

/// Internal host number `i` (0-based) inside 10.1.0.0/12-ish space: 10.(1 + i/65536).x.y,
/// skipping .0 and .255 host bytes.
pub(crate) fn internal_host(i: u32, port: u16) -> SocketAddr {
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
    check_rate(params.session_rate)?;
    if params.hosts == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "--hosts must be at least 1"));
    }
    let mut tr = Trace::with_rng(ctx.rng("mixed"));
    write_sessions(
        &mut Mixed { hosts: params.hosts },
        &mut tr,
        ctx.start,
        params.session_rate,
        Limit::packets(params.packets),
        out,
    )
}

/// The mix's recipe: every session is short, so nothing is ever resumed.
struct Mixed {
    hosts: u32,
}

impl SessionMix for Mixed {
    fn start(&mut self, tr: &mut Trace, t: Timestamp, _: &mut Resumes) -> Started {
        if one_session(tr, self.hosts, t) {
            Started::Scan
        } else {
            Started::Session
        }
    }

    fn resume(&mut self, _: &mut Trace, _: u32, _: Timestamp, _: &mut Resumes) {
        unreachable!("the benchmark mix has no long sessions to resume")
    }
}

/// Appends one session starting at `t` to `tr.packets`; returns true if it was a scan.
pub(crate) fn one_session(tr: &mut Trace, hosts: u32, t: Timestamp) -> bool {
    let rng = &mut tr.rng;
    let host = internal_host(rng.below(hosts as u64) as u32, rng.ephemeral_port());
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
