//! Scan scenarios (and their benign look-alikes: NAT, busy servers, mid-stream captures,
//! DNS resolvers) for the port-scan detectors.

use std::net::SocketAddr;

use super::{distinct_ports, lan_rtt, public_host, v4, v6, wan_rtt, ScenarioCtx};
use crate::synth::packet::Packet;
use crate::synth::session::{PortState, ScanKind, ScannerStyle, Trace};
use crate::time::{Duration, Timestamp};

/// Probes every port in `ports` of `target` from `scanner`, one every `gap_s` seconds
/// starting at `t0`; ports in `open` answer as open, the rest as `others`.
#[allow(clippy::too_many_arguments)]
fn port_scan(
    tr: &mut Trace,
    style: ScannerStyle,
    kind: ScanKind,
    scanner: SocketAddr,
    target: SocketAddr,
    ports: &[u16],
    open: &[u16],
    others: PortState,
    t0: Timestamp,
    gap_s: f64,
    rtt: Duration,
) {
    for (i, &port) in ports.iter().enumerate() {
        let t = Timestamp(t0.0 + (i as f64 * gap_s * 1e9) as i64);
        let state = if open.contains(&port) { PortState::Open } else { others };
        let mut dst = target;
        dst.set_port(port);
        tr.scan_probe(style, kind, scanner, dst, t, rtt, state);
    }
}

/// 203.0.113.66 (public) SYN-scans 200 distinct ports of internal 10.1.0.5 with nmap's
/// fingerprint in 2 s; 22, 80 and 443 are open (SYN-ACK, scanner RST), the rest answer
/// RST/ACK. Expected: port-scan alert from both families for source 203.0.113.66
/// (200 distinct ports in one 5-minute bin).
pub fn public_syn_scan(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("public_syn_scan"));
    let ports = distinct_ports(&mut tr.rng, 200, 1024, &[22, 80, 443]);
    let rtt = wan_rtt(&mut tr.rng);
    port_scan(
        &mut tr,
        ScannerStyle::Nmap,
        ScanKind::Syn,
        v4(203, 0, 113, 66, 45_112),
        v4(10, 1, 0, 5, 0),
        &ports,
        &[22, 80, 443],
        PortState::Closed,
        ctx.at(10.0),
        0.01,
        rtt,
    );
    tr.into_sorted()
}

/// Internal host 10.1.0.66 SYN-scans 200 ports of 10.1.0.5 (22, 80, 443 open) in 2 s.
/// Expected: enhanced port-scan alert for source 10.1.0.66 (an internal scanner: lateral
/// movement); none from sentinel, whose rule only looks at public sources.
pub fn internal_syn_scan(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("internal_syn_scan"));
    let ports = distinct_ports(&mut tr.rng, 200, 1024, &[22, 80, 443]);
    let rtt = lan_rtt(&mut tr.rng);
    port_scan(
        &mut tr,
        ScannerStyle::Nmap,
        ScanKind::Syn,
        v4(10, 1, 0, 66, 51_000),
        v4(10, 1, 0, 5, 0),
        &ports,
        &[22, 80, 443],
        PortState::Closed,
        ctx.at(10.0),
        0.01,
        rtt,
    );
    tr.into_sorted()
}

/// 198.51.100.23 probes 45 ports of 10.1.0.5 in the last 2 minutes of one 5-minute bin
/// and 45 *other* ports in the first 2 minutes of the next (90 distinct ports within
/// 4 minutes). Expected: no Sentinel alert (45 ≤ 50 per bin); enhanced (sliding window)
/// alerts for 198.51.100.23.
pub fn scan_split_boundary(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("scan_split_boundary"));
    let width = Duration::from_secs(300);
    let boundary = Timestamp(ctx.start.bin_start(width).0 + 2 * width.0);
    let ports = distinct_ports(&mut tr.rng, 90, 1024, &[]);
    let rtt = wan_rtt(&mut tr.rng);
    let scanner = v4(198, 51, 100, 23, 40_404);
    let target = v4(10, 1, 0, 5, 0);
    let gap = 110.0 / 45.0;
    port_scan(
        &mut tr,
        ScannerStyle::Nmap,
        ScanKind::Syn,
        scanner,
        target,
        &ports[..45],
        &[],
        PortState::Closed,
        Timestamp(boundary.0 - 115_000_000_000),
        gap,
        rtt,
    );
    port_scan(
        &mut tr,
        ScannerStyle::Nmap,
        ScanKind::Syn,
        scanner,
        target,
        &ports[45..],
        &[],
        PortState::Closed,
        Timestamp(boundary.0 + 1_000_000_000),
        gap,
        rtt,
    );
    tr.into_sorted()
}

/// 203.0.113.77 probes port 22 on every host of 10.1.1.0/24 (254 hosts, 10 of them
/// answer SYN-ACK, 40 RST, the rest silent). Expected: no Sentinel port-scan alert (one
/// distinct port); enhanced reports a horizontal sweep from 203.0.113.77.
pub fn horizontal_sweep(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("horizontal_sweep"));
    let rtt = lan_rtt(&mut tr.rng);
    let mut hosts: Vec<u8> = (1..=254).collect();
    tr.rng.shuffle(&mut hosts);
    for (i, &h) in hosts.iter().enumerate() {
        let state = match i % 25 {
            0 => PortState::Open,
            1..=4 => PortState::Closed,
            _ => PortState::Filtered,
        };
        tr.scan_probe(
            ScannerStyle::Nmap,
            ScanKind::Syn,
            v4(203, 0, 113, 77, 33_333),
            v4(10, 1, 1, h, 22),
            ctx.at(5.0 + i as f64 * 0.02),
            rtt,
            state,
        );
    }
    tr.into_sorted()
}

/// 203.0.113.88 sends UDP probes to 200 ports of 10.1.0.5, 2 probes per second; 53, 123
/// and 161 answer with UDP, all others with ICMP port unreachable quoting the probe.
/// Expected: port-scan alert from both families for 203.0.113.88 (200 distinct ports
/// within 100 s).
pub fn udp_scan_icmp(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("udp_scan_icmp"));
    let ports = distinct_ports(&mut tr.rng, 200, 1024, &[53, 123, 161]);
    let rtt = wan_rtt(&mut tr.rng);
    let scanner = v4(203, 0, 113, 88, 61_616);
    for (i, &port) in ports.iter().enumerate() {
        let t = ctx.at(3.0 + i as f64 * 0.5);
        let target = v4(10, 1, 0, 5, port);
        if [53, 123, 161].contains(&port) {
            tr.udp_exchange(scanner, target, t, rtt, 40, 90);
        } else {
            tr.udp_unanswered_with_icmp_unreach(scanner, target, t, rtt, 0);
        }
    }
    tr.into_sorted()
}

/// 2001:db8:bad::66 SYN-scans 200 ports of 2001:db8:1::5 (22 and 443 open, rest
/// RST/ACK). Expected: enhanced port-scan alert for 2001:db8:bad::66; none from sentinel
/// (Kusto's `ipv4_is_private` is null for IPv6, so the rule drops it).
pub fn ipv6_scan(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("ipv6_scan"));
    let ports = distinct_ports(&mut tr.rng, 200, 1024, &[22, 443]);
    let rtt = wan_rtt(&mut tr.rng);
    port_scan(
        &mut tr,
        ScannerStyle::Nmap,
        ScanKind::Syn,
        v6("2001:db8:bad::66", 47_001),
        v6("2001:db8:1::5", 0),
        &ports,
        &[22, 443],
        PortState::Closed,
        ctx.at(10.0),
        0.01,
        rtt,
    );
    tr.into_sorted()
}

/// FIN scan from 203.0.113.101, NULL scan from 203.0.113.102 and XMAS scan from
/// 203.0.113.103, each of 100 ports of 10.1.0.5 (22, 80, 443 open and silent, the rest
/// RST/ACK), one minute apart. Expected: three port-scan alerts from both families, one
/// per source (enhanced may also name the stealth technique).
pub fn stealth_scans(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("stealth_scans"));
    let rtt = wan_rtt(&mut tr.rng);
    for (i, kind) in [ScanKind::Fin, ScanKind::Null, ScanKind::Xmas].into_iter().enumerate() {
        let ports = distinct_ports(&mut tr.rng, 100, 1024, &[22, 80, 443]);
        port_scan(
            &mut tr,
            ScannerStyle::Nmap,
            kind,
            v4(203, 0, 113, 101 + i as u8, 50_000 + i as u16),
            v4(10, 1, 0, 5, 0),
            &ports,
            &[22, 80, 443],
            PortState::Closed,
            ctx.at(10.0 + 60.0 * i as f64),
            0.02,
            rtt,
        );
    }
    tr.into_sorted()
}

/// masscan from 203.0.113.120 (fixed source port 61000, window 1024, TTL 255, no TCP
/// options, IP id = dst_ip ^ dst_port ^ seq) probing 100 ports on each of 10.1.0.1..=16
/// in random order at 1000 packets/s; most probes unanswered, some RST, port 80 open.
/// Expected: port-scan alert from both families for 203.0.113.120 (100 distinct ports);
/// enhanced can recognise the masscan fingerprint.
pub fn masscan_like(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("masscan_like"));
    let ports = distinct_ports(&mut tr.rng, 100, 10_000, &[80, 443, 22]);
    let rtt = wan_rtt(&mut tr.rng);
    let mut targets: Vec<SocketAddr> =
        (1..=16u8).flat_map(|h| ports.iter().map(move |&p| v4(10, 1, 0, h, p))).collect();
    tr.rng.shuffle(&mut targets);
    for (i, &target) in targets.iter().enumerate() {
        let state = if target.port() == 80 {
            PortState::Open
        } else if tr.rng.chance(0.2) {
            PortState::Closed
        } else {
            PortState::Filtered
        };
        tr.scan_probe(
            ScannerStyle::Masscan,
            ScanKind::Syn,
            v4(203, 0, 113, 120, 61_000),
            target,
            ctx.at(2.0 + i as f64 * 0.001),
            rtt,
            state,
        );
    }
    tr.into_sorted()
}

/// zmap from 203.0.113.121 (IP id 54321, window 65535, TTL 255) probing port 443 on all
/// of 10.1.2.0/24; 20 hosts answer SYN-ACK. Expected: no Sentinel port-scan alert (one
/// port); enhanced reports a sweep and can recognise the zmap fingerprint.
pub fn zmap_like(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("zmap_like"));
    let rtt = wan_rtt(&mut tr.rng);
    let mut hosts: Vec<u8> = (1..=254).collect();
    tr.rng.shuffle(&mut hosts);
    for (i, &h) in hosts.iter().enumerate() {
        let state = if i % 12 == 0 { PortState::Open } else { PortState::Filtered };
        let sport = 40_000 + tr.rng.below(20_000) as u16;
        tr.scan_probe(
            ScannerStyle::Zmap,
            ScanKind::Syn,
            v4(203, 0, 113, 121, sport),
            v4(10, 1, 2, h, 443),
            ctx.at(1.0 + i as f64 * 0.004),
            rtt,
            state,
        );
    }
    tr.into_sorted()
}

/// 2000 successful HTTPS sessions from one public NAT address 198.51.100.7 (distinct
/// random source ports) to the internal service 10.1.0.80:443 over 10 minutes.
/// Expected: no alert from either family (one destination port, every session completes).
pub fn nat_many_sessions(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("nat_many_sessions"));
    let mut sports: Vec<u16> = (1024..=65535).collect();
    tr.rng.shuffle(&mut sports);
    for &sport in sports.iter().take(2000) {
        let t = ctx.at(tr.rng.uniform(0.0, 600.0));
        let rtt = wan_rtt(&mut tr.rng);
        let up = tr.rng.range(300, 2000);
        let down = tr.rng.range(500, 40_000);
        tr.tcp_session(v4(198, 51, 100, 7, sport), v4(10, 1, 0, 80, 443), t, rtt, up, down);
    }
    tr.into_sorted()
}

/// Internal web server 10.1.0.80:443 serving 3000 sessions from ~760 public clients over
/// 10 minutes; 200 extra downloads are already running when the capture starts, so their
/// first packet goes from the server to the client's ephemeral port. Expected: no alert
/// (10.1.0.80 must not look like it scans client ports; clients use one port).
pub fn busy_public_server(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("busy_public_server"));
    let server = v4(10, 1, 0, 80, 443);
    for i in 0..200u32 {
        let client = public_host(i * 7 + 1, tr.rng.ephemeral_port());
        let t = ctx.at(tr.rng.uniform(0.0, 0.5));
        let bytes = tr.rng.range(20_000, 400_000);
        let close = tr.rng.chance(0.7);
        tr.midstream_download(client, server, t, bytes, 1_000_000, close);
    }
    for _ in 0..3000 {
        let client = public_host(tr.rng.below(762) as u32, tr.rng.ephemeral_port());
        let t = ctx.at(tr.rng.uniform(0.0, 600.0));
        let rtt = wan_rtt(&mut tr.rng);
        let up = tr.rng.range(300, 1500);
        let down = tr.rng.range(1000, 30_000);
        tr.tcp_session(client, server, t, rtt, up, down);
    }
    tr.into_sorted()
}

/// The capture starts while internal hosts 10.1.0.21..=40 each download 0.2–2 MB from
/// 203.0.113.10..=29:443 (server speaks first, no handshake seen); a few ordinary sessions
/// follow. Expected: no alert; each download is one session with the internal host as
/// client (destination port 443).
pub fn midstream_downloads(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("midstream_downloads"));
    for i in 0..20u8 {
        let client = v4(10, 1, 0, 21 + i, tr.rng.ephemeral_port());
        let server = v4(203, 0, 113, 10 + i, 443);
        let bytes = tr.rng.range(200_000, 2_000_000);
        let t = ctx.at(tr.rng.uniform(0.0, 0.2));
        tr.midstream_download(client, server, t, bytes, 500_000, true);
    }
    for _ in 0..20 {
        let client = v4(10, 1, 0, 21 + tr.rng.below(20) as u8, tr.rng.ephemeral_port());
        let server = public_host(tr.rng.below(600) as u32, 443);
        let t = ctx.at(tr.rng.uniform(1.0, 60.0));
        let rtt = wan_rtt(&mut tr.rng);
        tr.tcp_session(client, server, t, rtt, 500, 5000);
    }
    tr.into_sorted()
}

/// Internal resolver 10.1.0.53 answers 2000 queries from clients 10.1.0.100..=149 and
/// recurses to 300 public name servers on port 53 (random source ports) over 10
/// minutes, Poisson timed. Expected: no alert (destination port is always 53; timing is
/// random; many destinations are normal for a resolver).
pub fn dns_resolver(ctx: &ScenarioCtx) -> Vec<Packet> {
    let mut tr = Trace::with_rng(ctx.rng("dns_resolver"));
    let resolver = v4(10, 1, 0, 53, 53);
    let mut t = 0.0;
    while t < 600.0 {
        t += tr.rng.exp(0.3);
        let client = v4(10, 1, 0, 100 + tr.rng.below(50) as u8, tr.rng.ephemeral_port());
        let at = ctx.at(t);
        let lan = lan_rtt(&mut tr.rng);
        if tr.rng.chance(0.6) {
            // cache miss: the resolver recurses before answering
            let ns = public_host(tr.rng.below(300) as u32, 53);
            let mut out = resolver;
            out.set_port(tr.rng.ephemeral_port());
            let wan = wan_rtt(&mut tr.rng);
            tr.udp(at, client, resolver, 64, 40);
            let q = Timestamp(at.0 + 50_000);
            let back = tr.udp_exchange(out, ns, q, wan, 40, 120);
            tr.udp(Timestamp(back.0 + 50_000 + lan.0 / 2), resolver, client, 64, 120);
        } else {
            tr.udp_exchange(client, resolver, at, lan, 40, 120);
        }
    }
    tr.into_sorted()
}
