//! Benign scenarios that resemble beaconing or scanning but must not alert.

use super::{lan_rtt, public_host, v4, wan_rtt, ScenarioCtx};
use crate::synth::packet::Packet;
use crate::synth::session::Trace;

/// 10.1.0.21 browses for 2 h: page loads of 5–30 connections to 1–5 of 100 public sites
/// within 2 s, separated by exponential think times (mean 90 s). Expected: no alert.
pub fn benign_bursty_browsing(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("benign_bursty_browsing"));
    let mut t = tr.rng.exp(90.0);
    while t < 7200.0 {
        let sites: Vec<u32> = (0..tr.rng.range(1, 5)).map(|_| tr.rng.below(100) as u32 * 5).collect();
        for _ in 0..tr.rng.range(5, 30) {
            let site = sites[tr.rng.below(sites.len() as u64) as usize];
            let port = if site % 4 == 0 { 80 } else { 443 };
            let at = ctx.at(t + tr.rng.uniform(0.0, 2.0));
            let sport = tr.rng.ephemeral_port();
            let rtt = wan_rtt(&mut tr.rng);
            let up = tr.rng.range(400, 1500);
            let down = tr.rng.range(1_000, 200_000);
            tr.tcp_session(v4(10, 1, 0, 21, sport), public_host(site, port), at, rtt, up, down);
        }
        t += tr.rng.exp(90.0);
    }
    tr.into_sorted()
}

/// 10.1.0.22 opens 60 connections within 5 s to one CDN address 198.51.100.80:443 (a
/// page with many assets). Expected: no alert (one port, no periodicity).
pub fn benign_cdn_burst(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("benign_cdn_burst"));
    for _ in 0..60 {
        let at = ctx.at(10.0 + tr.rng.uniform(0.0, 5.0));
        let sport = tr.rng.ephemeral_port();
        let rtt = wan_rtt(&mut tr.rng);
        let down = tr.rng.range(2_000, 80_000);
        tr.tcp_session(v4(10, 1, 0, 22, sport), v4(198, 51, 100, 80, 443), at, rtt, 600, down);
    }
    tr.into_sorted()
}

/// 10.1.0.30 polls the internal service 10.1.0.40:8080 every 30 s exactly for 2 h.
/// Expected: no Sentinel alert (destination is private); no enhanced alert with default
/// settings (internal beaconing off), an alert if `beacon_internal` is enabled.
pub fn benign_internal_polling(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("benign_internal_polling"));
    let mut t = 15.0;
    while t < 7200.0 {
        let sport = tr.rng.ephemeral_port();
        let rtt = lan_rtt(&mut tr.rng);
        tr.tcp_session(v4(10, 1, 0, 30, sport), v4(10, 1, 0, 40, 8080), ctx.at(t), rtt, 200, 800);
        t += 30.0;
    }
    tr.into_sorted()
}

/// 10.1.0.23 visits 192.0.2.80:443 at Poisson times (mean gap 120 s) for 4 h (~120
/// sessions). Expected: no beaconing alert (exponential gaps have no dominant interval).
pub fn benign_poisson_visits(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("benign_poisson_visits"));
    let mut t = tr.rng.exp(120.0);
    while t < 4.0 * 3600.0 {
        let sport = tr.rng.ephemeral_port();
        let rtt = wan_rtt(&mut tr.rng);
        let down = tr.rng.range(3_000, 60_000);
        tr.tcp_session(v4(10, 1, 0, 23, sport), v4(192, 0, 2, 80, 443), ctx.at(t), rtt, 700, down);
        t += tr.rng.exp(120.0);
    }
    tr.into_sorted()
}
