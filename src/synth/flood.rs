//! The SYN flood generator for load and robustness tests: millions of TCP SYNs from
//! spoofed random sources (random IPv4 addresses, random hosts in 2001:db8::/32) at a
//! fixed high rate, streamed straight to a [`PcapWriter`] so memory stays flat however
//! many packets are written. Real traffic (a scan, a beacon: any time-sorted packets)
//! can be mixed in; it is merged by timestamp.
//!
//! Victims are internal hosts (10.1.0.80, 2001:db8:1::80); a quarter of the IPv4 flood
//! goes the other way (random 10.0.0.0/8 sources to random public documentation hosts)
//! so detector state keyed by outbound pairs fills up too. Nothing here is ever sent on
//! a network: the sources are only bytes in a file.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::packet::{flags, Packet, TcpSpec, Transport};
use super::pcap_writer::PcapWriter;
use super::scenarios::{public_host, ScenarioCtx};
use crate::time::Timestamp;

/// Knobs of the flood.
#[derive(Clone, Copy, Debug)]
pub struct FloodParams {
    /// SYNs to write.
    pub packets: u64,
    /// SYNs per second (capture time).
    pub rate: f64,
    /// Seconds after the capture start when the flood begins.
    pub start_secs: f64,
    /// Share of the SYNs that are IPv6 (0..=1).
    pub v6_share: f64,
}

impl Default for FloodParams {
    fn default() -> Self {
        FloodParams { packets: 2_000_000, rate: 200_000.0, start_secs: 600.0, v6_share: 0.25 }
    }
}

/// The internal IPv4 victim of the inbound flood.
pub const FLOOD_VICTIM_V4: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 80);

/// The `i`-th flood SYN (deterministic from the rng).
fn flood_syn(rng: &mut super::Rng, ts: Timestamp, v6_share: f64) -> Packet {
    let sport = 1024 + (rng.next_u16() % 64_512);
    let (src, dst, dport) = if rng.chance(v6_share) {
        let r = rng.next_u64();
        let src = Ipv6Addr::new(0x2001, 0xdb8, (r >> 48) as u16, (r >> 32) as u16, (r >> 16) as u16, r as u16, 0, 1);
        (IpAddr::V6(src), IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x80)), 80)
    } else if rng.chance(0.25) {
        let r = rng.next_u32();
        let src = Ipv4Addr::new(10, (r >> 16) as u8, (r >> 8) as u8, r as u8);
        let dst = public_host(rng.next_u32() % 762, 443);
        (IpAddr::V4(src), dst.ip(), 443)
    } else {
        (IpAddr::V4(Ipv4Addr::from(rng.next_u32())), IpAddr::V4(FLOOD_VICTIM_V4), 80)
    };
    let tcp = TcpSpec { mss: Some(1460), ..TcpSpec::plain(sport, dport, rng.next_u32(), 0, flags::SYN, 64_240) };
    Packet { ts, src, dst, ttl: 64, ip_id: rng.next_u16(), transport: Transport::Tcp(tcp) }
}

/// Writes the flood with `mixed_in` (time-sorted packets) merged in by timestamp.
/// Returns the number of packets written.
pub fn write_syn_flood<W: Write>(
    ctx: &ScenarioCtx,
    params: &FloodParams,
    mixed_in: &[Packet],
    w: &mut PcapWriter<W>,
) -> io::Result<u64> {
    let mut rng = ctx.rng("syn_flood");
    let start = ctx.at(params.start_secs);
    let gap_ns = 1e9 / params.rate.max(1e-3);
    let mut extra = mixed_in.iter().peekable();
    let mut written = 0u64;
    for i in 0..params.packets {
        let ts = Timestamp(start.0 + (i as f64 * gap_ns) as i64);
        while let Some(p) = extra.next_if(|p| p.ts <= ts) {
            w.write_packet(p)?;
            written += 1;
        }
        w.write_packet(&flood_syn(&mut rng, ts, params.v6_share))?;
        written += 1;
    }
    for p in extra {
        w.write_packet(p)?;
        written += 1;
    }
    Ok(written)
}

/// The real attacks hidden in the flood by `flowsentry-synth syn_flood`: the
/// `public_syn_scan` scanner (203.0.113.66) starting 5 s into the flood, and the
/// `beacon_60s_exact` implant (10.1.0.20 → 203.0.113.50 every 60 s for 2 h), time-sorted.
pub fn flood_mixed_in(ctx: &ScenarioCtx, params: &FloodParams) -> Vec<Packet> {
    // public_syn_scan starts 10 s after its context's start.
    let scan_ctx = ScenarioCtx { seed: ctx.seed, start: ctx.at(params.start_secs - 5.0) };
    let mut pkts = super::scenarios::public_syn_scan(&scan_ctx);
    pkts.extend(super::scenarios::beacon_60s_exact(ctx));
    super::sort_packets(&mut pkts);
    pkts
}
