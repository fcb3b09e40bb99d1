//! Beaconing scenarios: an implant on 10.1.0.20 calling home to 203.0.113.50 with
//! various sleep/jitter schedules, for the beaconing detectors.

use std::net::SocketAddr;

use super::{public_host, v4, wan_rtt, ScenarioCtx};
use crate::synth::packet::Packet;
use crate::synth::session::Trace;

/// The implant host.
pub const BEACON_CLIENT: [u8; 4] = [10, 1, 0, 20];
/// The command-and-control server.
pub const BEACON_SERVER: [u8; 4] = [203, 0, 113, 50];

fn client(rng_port: u16) -> SocketAddr {
    let [a, b, c, d] = BEACON_CLIENT;
    v4(a, b, c, d, rng_port)
}

fn server(port: u16) -> SocketAddr {
    let [a, b, c, d] = BEACON_SERVER;
    v4(a, b, c, d, port)
}

/// Emits one small check-in session (300±20 bytes up, 1200±50 down) at `secs` after the
/// capture start.
fn check_in(tr: &mut Trace, ctx: &ScenarioCtx, secs: f64) {
    let sport = tr.rng.ephemeral_port();
    let rtt = wan_rtt(&mut tr.rng);
    let up = tr.rng.range(280, 320);
    let down = tr.rng.range(1150, 1250);
    tr.tcp_session(client(sport), server(443), ctx.at(secs), rtt, up, down);
}

/// Check-ins at the times produced by `next_sleep` until `hours` have passed.
fn beacon(ctx: &ScenarioCtx, name: &str, hours: f64, mut next_sleep: impl FnMut(&mut Trace) -> f64) -> Trace {
    let mut tr = Trace::with_rng(ctx.rng(name));
    let mut t = 30.0;
    while t < hours * 3600.0 {
        check_in(&mut tr, ctx, t);
        t += next_sleep(&mut tr);
    }
    tr
}

/// 10.1.0.20 → 203.0.113.50:443 every 60 s exactly for 2 h (120 sessions, session starts
/// exactly 60 s apart). Expected: beaconing alert from both families for the pair.
pub fn beacon_60s_exact(ctx: &ScenarioCtx) -> Vec<Packet> {
    beacon(ctx, "beacon_60s_exact", 2.0, |_| 60.0).into_sorted()
}

/// 60 s sleep with ±20 % uniform jitter (48–72 s), 2 h. Expected: enhanced beaconing
/// alert; Sentinel likely silent (no single interval reaches 80 % of intervals).
pub fn beacon_60s_jitter20(ctx: &ScenarioCtx) -> Vec<Packet> {
    beacon(ctx, "beacon_60s_jitter20", 2.0, |tr| 60.0 * tr.rng.uniform(0.8, 1.2)).into_sorted()
}

/// Cobalt-Strike style: sleep 60 s × (1 − U[0, 0.5]), i.e. 30–60 s, 2 h. Expected:
/// enhanced beaconing alert; Sentinel silent.
pub fn beacon_60s_jitter50(ctx: &ScenarioCtx) -> Vec<Packet> {
    beacon(ctx, "beacon_60s_jitter50", 2.0, |tr| 60.0 * (1.0 - tr.rng.uniform(0.0, 0.5))).into_sorted()
}

/// Exact 45 s beacon to 203.0.113.50:443 for 2 h, while the same host browses 200 other
/// public sites (Poisson page loads, mean gap 36 s, 1–6 connections each). Expected:
/// enhanced beaconing alert for 10.1.0.20 → 203.0.113.50 only; no alert for the browsed
/// sites. None from sentinel: the rule measures each gap to the source's next session,
/// whatever its destination, so the browsing breaks the beacon's gaps.
pub fn beacon_45s_with_browsing(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = beacon(ctx, "beacon_45s_with_browsing", 2.0, |_| 45.0);
    let mut t = tr.rng.exp(36.0);
    while t < 7200.0 {
        let mut site = public_host(tr.rng.below(600) as u32, if tr.rng.chance(0.9) { 443 } else { 80 });
        if site.ip() == server(0).ip() {
            site = public_host(1, site.port());
        }
        let conns = tr.rng.range(1, 6);
        for _ in 0..conns {
            let at = t + tr.rng.uniform(0.0, 1.5);
            let sport = tr.rng.ephemeral_port();
            let rtt = wan_rtt(&mut tr.rng);
            let up = tr.rng.range(400, 1500);
            let down = tr.rng.range(2_000, 150_000);
            tr.tcp_session(client(sport), site, ctx.at(at), rtt, up, down);
        }
        t += tr.rng.exp(36.0);
    }
    tr.into_sorted()
}

/// Exact 300 s beacon for 6 h (72 sessions). Expected: beaconing alert from both
/// families (≥ 30 sessions, one dominant interval).
pub fn beacon_300s_hours(ctx: &ScenarioCtx) -> Vec<Packet> {
    beacon(ctx, "beacon_300s_hours", 6.0, |_| 300.0).into_sorted()
}

/// UDP beacon: 10.1.0.20 → 203.0.113.53:53 every 30 s exactly for 2 h (240 query/answer
/// pairs, random source port each). Expected: beaconing alert from both families.
pub fn beacon_udp(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("beacon_udp"));
    let dst = v4(203, 0, 113, 53, 53);
    let mut t = 30.0;
    while t < 7200.0 {
        let sport = tr.rng.ephemeral_port();
        let rtt = wan_rtt(&mut tr.rng);
        let q = tr.rng.range(40, 60) as u16;
        tr.udp_exchange(client(sport), dst, ctx.at(t), rtt, q, q + 80);
        t += 30.0;
    }
    tr.into_sorted()
}
