//! Long sessions: beacons that check in inside one connection (or one UDP 5-tuple), a
//! heavily jittered beacon, and the long, quiet, legitimate sessions every network is
//! full of — for the in-session exchange tracking and the jittered-beacon scoring.
//!
//! The shapes follow the real-tool captures of `captures/make-long-sessions.sh` (same
//! periods and jitter), on this generator's address plan: implants on 10.1.0.24–.27,
//! benign clients on 10.1.0.31–.35, servers in 203.0.113.0/24 and 198.51.100.0/24.

use std::net::SocketAddr;

use super::{v4, wan_rtt, ScenarioCtx};
use crate::synth::packet::{flags, Packet, TcpSpec, Transport};
use crate::synth::rng::Rng;
use crate::synth::session::{TcpConn, Trace, LOCAL_TTL, REMOTE_TTL};
use crate::time::Timestamp;

fn at(t: Timestamp, secs: f64) -> Timestamp {
    Timestamp(t.0 + (secs * 1e9).round() as i64)
}

/// A normal draw (Box–Muller), for log-normal human timing.
fn normal(rng: &mut Rng) -> f64 {
    let (u, v) = (rng.unit().max(1e-12), rng.unit());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// Log-normal with this median and sigma, clipped to [lo, hi].
fn log_normal(rng: &mut Rng, median: f64, sigma: f64, lo: f64, hi: f64) -> f64 {
    (median.ln() + sigma * normal(rng)).exp().clamp(lo, hi)
}

/// The client sends `up` bytes at `t` (seconds after the capture start); the server
/// answers `down` bytes one round trip later.
fn request(tr: &mut Trace, ctx: &ScenarioCtx, c: &mut TcpConn, t: f64, up: u64, down: u64) {
    c.t = ctx.at(t);
    tr.send_up(c, up);
    if down > 0 {
        tr.send_down(c, down);
    }
}

/// One TCP segment of connection `c` with the given sequence number and payload length
/// (an ACK; PSH when it carries data).
fn segment(tr: &mut Trace, ts: Timestamp, c: &TcpConn, from_client: bool, seq: u32, payload_len: u16) {
    let (from, to, ttl, ack) =
        if from_client { (c.client, c.server, LOCAL_TTL, c.sseq) } else { (c.server, c.client, REMOTE_TTL, c.cseq) };
    let ip_id = tr.rng.next_u16();
    let fl = if payload_len > 0 { flags::ACK | flags::PSH } else { flags::ACK };
    let spec = TcpSpec { payload_len, ..TcpSpec::plain(from.port(), to.port(), seq, ack, fl, 502) };
    tr.push(Packet { ts, src: from.ip(), dst: to.ip(), ttl, ip_id, transport: Transport::Tcp(spec) });
}

fn conn(tr: &mut Trace, ctx: &ScenarioCtx, client: SocketAddr, server: SocketAddr, t: f64) -> TcpConn {
    let rtt = wan_rtt(&mut tr.rng);
    tr.tcp_handshake(client, server, ctx.at(t), rtt)
}

/// Persistent TCP C2 (Sliver / Manx style): 10.1.0.24 keeps one connection to
/// 203.0.113.60:4444 open for 10 minutes and checks in every 15 s ± 15 % (uniform) with
/// 64–80 bytes, answered by 32–40; two check-ins get a task (420 bytes) whose 900-byte
/// result follows 0.2 s later. Expected: enhanced in-session beaconing alert (≈ 15 s,
/// one session); Sentinel nothing (one record).
pub fn beacon_c2_persistent_tcp(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("beacon_c2_persistent_tcp"));
    let mut c = conn(&mut tr, ctx, v4(10, 1, 0, 24, 49_152), v4(203, 0, 113, 60, 4444), 5.0);
    let mut t = 5.5;
    for i in 0..40 {
        let (up, down) = (tr.rng.range(64, 80), tr.rng.range(32, 40));
        if i == 11 || i == 27 {
            request(&mut tr, ctx, &mut c, t, up, 420);
            request(&mut tr, ctx, &mut c, t + 0.2, 900, 16);
        } else {
            request(&mut tr, ctx, &mut c, t, up, down);
        }
        t += 15.0 * tr.rng.uniform(0.85, 1.15);
    }
    c.t = ctx.at(t);
    tr.tcp_close(&mut c);
    tr.into_sorted()
}

/// HTTP/1.1 keep-alive polling: 10.1.0.25 POSTs to 203.0.113.61:80 every 10 s ± 30 %
/// on one connection (40 requests of 420–480 bytes, 160–200-byte replies). Expected:
/// enhanced in-session beaconing alert (≈ 10 s); Sentinel nothing.
pub fn beacon_http_keepalive(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("beacon_http_keepalive"));
    let mut c = conn(&mut tr, ctx, v4(10, 1, 0, 25, 50_000), v4(203, 0, 113, 61, 80), 2.0);
    let mut t = 2.2;
    for _ in 0..40 {
        let (up, down) = (tr.rng.range(420, 480), tr.rng.range(160, 200));
        request(&mut tr, ctx, &mut c, t, up, down);
        t += 10.0 * tr.rng.uniform(0.7, 1.3);
    }
    c.t = ctx.at(t);
    tr.tcp_close(&mut c);
    tr.into_sorted()
}

/// UDP beacon from one fixed source port: 10.1.0.26:41414 → 203.0.113.62:4000 every
/// 12 s ± 5 %, 30 datagrams of 48–56 bytes, each answered (24–32). One 5-tuple, so one
/// session. Expected: enhanced in-session beaconing alert, Protocol UDP; Sentinel nothing.
pub fn beacon_udp_fixed_port(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("beacon_udp_fixed_port"));
    let (client, server) = (v4(10, 1, 0, 26, 41_414), v4(203, 0, 113, 62, 4000));
    let mut t = 3.0;
    for _ in 0..30 {
        let rtt = wan_rtt(&mut tr.rng);
        let (q, a) = (tr.rng.range(48, 56) as u16, tr.rng.range(24, 32) as u16);
        tr.udp_exchange(client, server, ctx.at(t), rtt, q, a);
        t += 12.0 * tr.rng.uniform(0.95, 1.05);
    }
    tr.into_sorted()
}

/// Heavily jittered HTTP beacon: 10.1.0.27 → 203.0.113.63:80, a new connection each
/// time, sleep uniform in [0.1, 1.9] × 10 s (Empire-style 90 % jitter), 40 check-ins
/// (GET of 180 bytes, 700-byte reply). Expected: enhanced beaconing alert, Pattern
/// Jittered (gap regularity alone fails); Sentinel nothing (no dominant gap).
pub fn beacon_heavy_jitter(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("beacon_heavy_jitter"));
    let mut t = 4.0;
    for _ in 0..40 {
        let sport = tr.rng.ephemeral_port();
        let rtt = wan_rtt(&mut tr.rng);
        tr.tcp_session(v4(10, 1, 0, 27, sport), v4(203, 0, 113, 63, 80), ctx.at(t), rtt, 180, 700);
        t += 10.0 * tr.rng.uniform(0.1, 1.9);
    }
    tr.into_sorted()
}

/// An idle TCP connection kept up by kernel keepalives: 10.1.0.31 → 198.51.100.90:5222,
/// one hello/welcome exchange, then for 5 minutes a keepalive probe every 5 s (no
/// payload, seq − 1) answered by a bare ACK. Expected: nothing (no payload after the
/// first second: no exchange at all).
pub fn benign_keepalive_idle(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("benign_keepalive_idle"));
    let mut c = conn(&mut tr, ctx, v4(10, 1, 0, 31, 51_000), v4(198, 51, 100, 90, 5222), 1.0);
    request(&mut tr, ctx, &mut c, 1.1, 22, 8);
    let mut t = 6.1;
    while t <= 306.0 {
        segment(&mut tr, ctx.at(t), &c, true, c.cseq.wrapping_sub(1), 0);
        segment(&mut tr, at(ctx.at(t), c.rtt.as_secs_f64()), &c, false, c.sseq, 0);
        t += 5.0;
    }
    c.t = ctx.at(t);
    tr.tcp_close(&mut c);
    tr.into_sorted()
}

/// An interactive session (telnet-like, remote echo): 10.1.0.32 → 198.51.100.91:23 for
/// about 6 minutes, one segment per keystroke echoed by the server, command output after
/// each Enter; think times log-normal (median 5 s, sigma 1.0, clipped to [0.4, 60] s),
/// keystroke gaps log-normal (median 0.12 s), output log-normal (median 400 B).
/// Expected: nothing (pauses are human: heavy-tailed, sizes vary).
pub fn benign_interactive(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("benign_interactive"));
    let mut c = conn(&mut tr, ctx, v4(10, 1, 0, 32, 52_000), v4(198, 51, 100, 91, 23), 1.0);
    request(&mut tr, ctx, &mut c, 1.1, 30, 120); // login banner exchange
    let mut t = 3.0;
    while t < 360.0 {
        let keys = 3 + tr.rng.below(16);
        for _ in 0..keys {
            request(&mut tr, ctx, &mut c, t, 1, 1);
            t += log_normal(&mut tr.rng, 0.12, 0.45, 0.03, 1.0);
        }
        let output = log_normal(&mut tr.rng, 400.0, 1.2, 0.0, 6000.0) as u64;
        request(&mut tr, ctx, &mut c, t, 1, 2 + output);
        t += log_normal(&mut tr.rng, 5.0, 1.0, 0.4, 60.0);
    }
    c.t = ctx.at(t);
    tr.tcp_close(&mut c);
    tr.into_sorted()
}

/// A long bulk download: 10.1.0.33 GETs 5.6 MB from 198.51.100.92:80, delivered at a
/// steady 160 kbit/s for about 5 minutes (a segment every 70 ms, client ACKs). Expected:
/// nothing (one request, then a continuous flow: never a pause).
pub fn benign_bulk_download(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("benign_bulk_download"));
    let mut c = conn(&mut tr, ctx, v4(10, 1, 0, 33, 53_000), v4(198, 51, 100, 92, 80), 1.0);
    request(&mut tr, ctx, &mut c, 1.1, 160, 0);
    let mut t = 1.2;
    let mut left: u64 = 5_600_000;
    while left > 0 {
        let n = left.min(1400) as u16;
        segment(&mut tr, ctx.at(t), &c, false, c.sseq, n);
        c.sseq = c.sseq.wrapping_add(u32::from(n));
        segment(&mut tr, at(ctx.at(t), 0.0005), &c, true, c.cseq, 0);
        left -= u64::from(n);
        t += 0.07;
    }
    c.t = ctx.at(t);
    tr.tcp_close(&mut c);
    tr.into_sorted()
}

/// A constant-bitrate video stream (RTP-like, UDP): 10.1.0.34:5004 sends one PLAY
/// datagram to 198.51.100.93:5004, which streams 1200-byte packets every 40 ms for 5
/// minutes. Expected: nothing (continuous, never pauses).
pub fn benign_video_stream(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("benign_video_stream"));
    let (client, server) = (v4(10, 1, 0, 34, 5004), v4(198, 51, 100, 93, 5004));
    tr.udp(ctx.at(1.0), client, server, LOCAL_TTL, 64);
    for i in 0..7500 {
        tr.udp(ctx.at(1.05 + 0.04 * i as f64), server, client, REMOTE_TTL, 1200);
    }
    tr.into_sorted()
}

/// A long-lived TLS session with sporadic requests: 10.1.0.35 → 198.51.100.94:443, a
/// handshake, then request lines at exponential gaps (mean 20 s, clipped to [3, 80] s)
/// for about 6 minutes, 30–300 bytes each way. Expected: nothing (few requests at
/// memoryless times).
pub fn benign_tls_sporadic(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("benign_tls_sporadic"));
    let mut c = conn(&mut tr, ctx, v4(10, 1, 0, 35, 54_000), v4(198, 51, 100, 94, 443), 1.0);
    request(&mut tr, ctx, &mut c, 1.1, 517, 2_900); // TLS handshake
    let mut t = 3.0;
    while t < 360.0 {
        let (up, down) = (tr.rng.range(30, 300), tr.rng.range(30, 300));
        request(&mut tr, ctx, &mut c, t, up + 22, down + 22);
        t += tr.rng.exp(20.0).clamp(3.0, 80.0);
    }
    c.t = ctx.at(t);
    tr.tcp_close(&mut c);
    tr.into_sorted()
}
