//! Named traffic scenarios: each builds one reproducible capture for a detection case
//! (port scans, beacons, benign look-alikes) and documents the expected verdict.
//!
//! Address plan (the files are never sent on a network):
//! - internal hosts use RFC 1918 `10.1.0.0/16` (home net for both detector families);
//! - public hosts use the documentation ranges 192.0.2.0/24, 198.51.100.0/24,
//!   203.0.113.0/24 and 2001:db8::/32 (public to both families).
//!
//! Detector thresholds referred to below: the Sentinel port-scan rule alerts when one
//! source reaches more than 50 distinct destination ports within one 5-minute bin; the
//! Sentinel beaconing rule wants a private source, a public destination, at least 30
//! sessions per pair and one dominant inter-session interval (≥ 80 % of intervals).

mod beacons;
mod benign;
mod long_sessions;
mod scans;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::packet::Packet;
use super::rng::Rng;
use crate::time::{Duration, Timestamp};

pub use beacons::*;
pub use benign::*;
pub use long_sessions::*;
pub use scans::*;

/// Default capture start: 2024-05-01T12:00:00Z (aligned to 5-minute bins).
pub const DEFAULT_START_SECS: i64 = 1_714_564_800;

/// What a scenario needs to know: its seed and when the capture starts.
#[derive(Clone, Copy, Debug)]
pub struct ScenarioCtx {
    pub seed: u64,
    pub start: Timestamp,
}

impl ScenarioCtx {
    pub fn new(seed: u64, start_secs: i64) -> Self {
        ScenarioCtx { seed, start: Timestamp::from_secs(start_secs) }
    }

    /// The scenario's random source (distinct per scenario name for the same seed).
    pub fn rng(&self, name: &str) -> Rng {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        Rng::new(self.seed ^ h)
    }

    /// `start + secs`.
    pub fn at(&self, secs: f64) -> Timestamp {
        Timestamp(self.start.0 + (secs * 1e9).round() as i64)
    }
}

impl Default for ScenarioCtx {
    fn default() -> Self {
        ScenarioCtx::new(1, DEFAULT_START_SECS)
    }
}

/// A named scenario for the `flowsentry-synth` binary and tests.
pub struct Scenario {
    pub name: &'static str,
    pub summary: &'static str,
    pub build: fn(&ScenarioCtx) -> Vec<Packet>,
}

/// Every fixed-size scenario, in `--list` order (the streaming `mixed` benchmark generator
/// lives in [`crate::synth::mixed`]).
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "public_syn_scan",
        summary: "203.0.113.66 SYN-scans 200 ports of 10.1.0.5 (3 open)",
        build: public_syn_scan,
    },
    Scenario {
        name: "internal_syn_scan",
        summary: "10.1.0.66 SYN-scans 200 ports of 10.1.0.5",
        build: internal_syn_scan,
    },
    Scenario {
        name: "scan_split_boundary",
        summary: "45 + 45 ports straddling a 5-minute bin boundary",
        build: scan_split_boundary,
    },
    Scenario { name: "horizontal_sweep", summary: "203.0.113.77 probes port 22 on 254 hosts", build: horizontal_sweep },
    Scenario {
        name: "udp_scan_icmp",
        summary: "203.0.113.88 UDP-scans 200 ports, ICMP port unreachable replies",
        build: udp_scan_icmp,
    },
    Scenario { name: "ipv6_scan", summary: "2001:db8:bad::66 SYN-scans 200 ports of 2001:db8:1::5", build: ipv6_scan },
    Scenario {
        name: "stealth_scans",
        summary: "FIN, NULL and XMAS scans of 100 ports from three sources",
        build: stealth_scans,
    },
    Scenario {
        name: "masscan_like",
        summary: "masscan-fingerprinted SYN scan, 100 ports x 16 hosts",
        build: masscan_like,
    },
    Scenario {
        name: "zmap_like",
        summary: "zmap-fingerprinted SYN sweep of port 443 over 254 hosts",
        build: zmap_like,
    },
    Scenario {
        name: "nat_many_sessions",
        summary: "2000 successful sessions from NAT 198.51.100.7 to 10.1.0.80:443",
        build: nat_many_sessions,
    },
    Scenario {
        name: "busy_public_server",
        summary: "10.1.0.80:443 serving 3000 public clients, some mid-session",
        build: busy_public_server,
    },
    Scenario {
        name: "midstream_downloads",
        summary: "capture starts with 20 downloads already running",
        build: midstream_downloads,
    },
    Scenario {
        name: "dns_resolver",
        summary: "resolver 10.1.0.53 querying public servers and answering clients",
        build: dns_resolver,
    },
    Scenario {
        name: "beacon_60s_exact",
        summary: "10.1.0.20 -> 203.0.113.50:443 every 60 s for 2 h",
        build: beacon_60s_exact,
    },
    Scenario {
        name: "beacon_60s_jitter20",
        summary: "60 s beacon with +-20 % uniform jitter, 2 h",
        build: beacon_60s_jitter20,
    },
    Scenario {
        name: "beacon_60s_jitter50",
        summary: "Cobalt-Strike style 60 s beacon, 50 % jitter, 2 h",
        build: beacon_60s_jitter50,
    },
    Scenario {
        name: "beacon_45s_with_browsing",
        summary: "45 s beacon hidden in browsing of 200 sites, 2 h",
        build: beacon_45s_with_browsing,
    },
    Scenario { name: "beacon_300s_hours", summary: "300 s beacon for 6 h", build: beacon_300s_hours },
    Scenario { name: "beacon_udp", summary: "UDP 10.1.0.20 -> 203.0.113.53:53 every 30 s for 2 h", build: beacon_udp },
    Scenario {
        name: "benign_bursty_browsing",
        summary: "page-load bursts to 100 sites with long think times",
        build: benign_bursty_browsing,
    },
    Scenario {
        name: "benign_cdn_burst",
        summary: "60 connections in 5 s to one CDN address on 443",
        build: benign_cdn_burst,
    },
    Scenario {
        name: "benign_internal_polling",
        summary: "10.1.0.30 -> 10.1.0.40:8080 every 30 s for 2 h",
        build: benign_internal_polling,
    },
    Scenario {
        name: "benign_poisson_visits",
        summary: "Poisson visits (mean 120 s) to 192.0.2.80:443 for 4 h",
        build: benign_poisson_visits,
    },
    Scenario {
        name: "beacon_c2_persistent_tcp",
        summary: "10.1.0.24 -> 203.0.113.60:4444 check-ins every 15 s +-15 % over one TCP connection",
        build: beacon_c2_persistent_tcp,
    },
    Scenario {
        name: "beacon_http_keepalive",
        summary: "10.1.0.25 -> 203.0.113.61:80 POST every 10 s +-30 % on one keep-alive connection",
        build: beacon_http_keepalive,
    },
    Scenario {
        name: "beacon_udp_fixed_port",
        summary: "10.1.0.26:41414 -> 203.0.113.62:4000 every 12 s from one source port",
        build: beacon_udp_fixed_port,
    },
    Scenario {
        name: "beacon_heavy_jitter",
        summary: "10.1.0.27 -> 203.0.113.63:80 new connection every U(0.1, 1.9) x 10 s",
        build: beacon_heavy_jitter,
    },
    Scenario {
        name: "benign_keepalive_idle",
        summary: "idle TCP connection kept up by keepalive probes every 5 s for 5 min",
        build: benign_keepalive_idle,
    },
    Scenario {
        name: "benign_interactive",
        summary: "interactive session, one segment per keystroke, log-normal think times",
        build: benign_interactive,
    },
    Scenario {
        name: "benign_bulk_download",
        summary: "5.6 MB download at 160 kbit/s over 5 minutes",
        build: benign_bulk_download,
    },
    Scenario {
        name: "benign_video_stream",
        summary: "UDP video stream, 25 packets/s for 5 minutes",
        build: benign_video_stream,
    },
    Scenario {
        name: "benign_tls_sporadic",
        summary: "one TLS session with requests at exponential gaps (mean 20 s)",
        build: benign_tls_sporadic,
    },
];

/// Looks a scenario up by name.
pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// Shorthand for an IPv4 socket address.
pub fn v4(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), port)
}

/// Shorthand for an IPv6 socket address from its text form.
pub(crate) fn v6(addr: &str, port: u16) -> SocketAddr {
    let ip: Ipv6Addr = addr.parse().expect("valid IPv6 literal");
    SocketAddr::new(IpAddr::V6(ip), port)
}

/// The `i`-th public documentation address (cycling through the three IPv4 ranges,
/// host numbers 1..=254).
pub fn public_host(i: u32, port: u16) -> SocketAddr {
    let prefix = [(192, 0, 2), (198, 51, 100), (203, 0, 113)][(i % 3) as usize];
    let host = 1 + ((i / 3) % 254) as u8;
    v4(prefix.0, prefix.1, prefix.2, host, port)
}

/// A plausible round-trip time to a public host: 10..80 ms.
pub(crate) fn wan_rtt(rng: &mut Rng) -> Duration {
    Duration(rng.range(10_000_000, 80_000_000) as i64)
}

/// A LAN round-trip time: 0.2..1 ms.
pub(crate) fn lan_rtt(rng: &mut Rng) -> Duration {
    Duration(rng.range(200_000, 1_000_000) as i64)
}

/// `n` distinct ports drawn from `1..=max`, always including `must` (in random order).
pub(crate) fn distinct_ports(rng: &mut Rng, n: usize, max: u16, must: &[u16]) -> Vec<u16> {
    let mut all: Vec<u16> = (1..=max).filter(|p| !must.contains(p)).collect();
    rng.shuffle(&mut all);
    let mut ports: Vec<u16> = must.to_vec();
    ports.extend(all.into_iter().take(n.saturating_sub(must.len())));
    rng.shuffle(&mut ports);
    ports
}
