//! Shape tests of the benchmark mixes: each promises a traffic profile (packets per
//! session, frame sizes, host counts, who carries the packets, what is planted), read back
//! here from the bytes written, the way flowsentry will read them.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};

use super::*;
use crate::synth::scenarios::DEFAULT_START_SECS;
use crate::synth::{PcapWriter, TsResolution};

/// One decoded frame of a generated capture.
struct Seen {
    ts: i64,
    len: usize,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    syn_only: bool,
    payload: usize,
}

type Gen = fn(&ScenarioCtx, &MixParams, &mut PcapWriter<Vec<u8>>) -> io::Result<MixReport>;

/// Generates a mix in memory and decodes every frame back; checks time order on the way.
fn generate(write: Gen, p: MixParams, seed: u64) -> (MixReport, Vec<Seen>, Vec<u8>) {
    let ctx = ScenarioCtx::new(seed, DEFAULT_START_SECS);
    let mut w = PcapWriter::new(Vec::new(), TsResolution::Nano).unwrap();
    let report = write(&ctx, &p, &mut w).unwrap();
    let bytes = w.finish().unwrap();
    let rd = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) as usize;
    let (mut off, mut out) = (24, Vec::new());
    while off < bytes.len() {
        let ts = (rd(off) * 1_000_000_000 + rd(off + 4)) as i64;
        let len = rd(off + 8);
        let s = SlicedPacket::from_ethernet(&bytes[off + 16..off + 16 + len]).unwrap();
        let (src, dst) = match &s.net {
            Some(NetSlice::Ipv4(ip)) => {
                (IpAddr::V4(ip.header().source_addr()), IpAddr::V4(ip.header().destination_addr()))
            }
            Some(NetSlice::Ipv6(ip)) => {
                (IpAddr::V6(ip.header().source_addr()), IpAddr::V6(ip.header().destination_addr()))
            }
            _ => panic!("frame without IP"),
        };
        let (sport, dport, syn_only, payload) = match &s.transport {
            Some(TransportSlice::Tcp(t)) => {
                (t.source_port(), t.destination_port(), t.syn() && !t.ack(), t.payload().len())
            }
            Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port(), false, u.payload().len()),
            _ => (0, 0, false, 0),
        };
        if let Some(last) = out.last() {
            let last: &Seen = last;
            assert!(ts >= last.ts, "frame {} goes back in time", out.len());
        }
        out.push(Seen { ts, len, src, dst, sport, dport, syn_only, payload });
        off += 16 + len;
    }
    assert_eq!(out.len() as u64, p.packets);
    assert_eq!(report.stream.packets, p.packets);
    (report, out, bytes)
}

fn is_internal(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(a) if a.octets()[0] == 10)
}

#[test]
fn external_addresses_are_distinct_public_and_spread() {
    let mut seen = HashSet::new();
    for i in (0..2_000_000u32).chain([(1 << 30) - 1, SERVERS_BASE, SCANNERS_BASE]) {
        let a = external_v4(i);
        assert!((11..=74).contains(&a.octets()[0]), "{a}");
        assert!(!a.is_private() && !a.is_documentation() && !a.is_loopback(), "{a}");
        assert!(seen.insert(a), "{a} twice");
    }
    // Consecutive indices land in different /16s (no hot spot in one prefix).
    let prefixes: HashSet<[u8; 2]> = (0..1000).map(|i| external_v4(i).octets()[..2].try_into().unwrap()).collect();
    assert!(prefixes.len() > 900, "{} /16 prefixes", prefixes.len());
}

#[test]
fn short_mix_has_small_sessions_small_frames_dns_and_scans() {
    let p = MixParams { packets: 300_000, session_rate: 5000.0, hosts: 50_000, duration_secs: None };
    let (report, seen, bytes) = generate(write_short, p, 3);
    let per_session = p.packets as f64 / report.stream.sessions as f64;
    assert!((6.0..7.0).contains(&per_session), "{per_session:.2} packets per session");
    let mean_len = seen.iter().map(|s| s.len).sum::<usize>() as f64 / seen.len() as f64;
    assert!(mean_len < 250.0, "mean frame {mean_len:.0} bytes");
    let dns = seen.iter().filter(|s| s.dport == 53 || s.sport == 53).count() as f64 / seen.len() as f64;
    assert!((0.05..0.12).contains(&dns), "DNS share {dns:.3}");
    assert!(report.stream.scans > 10, "{} scans", report.stream.scans);
    let clients: HashSet<IpAddr> = seen.iter().filter(|s| s.syn_only && is_internal(s.src)).map(|s| s.src).collect();
    assert!(clients.len() > 20_000, "{} clients", clients.len());
    let servers: HashSet<IpAddr> =
        seen.iter().filter(|s| is_internal(s.src) && !is_internal(s.dst)).map(|s| s.dst).collect();
    assert!(servers.len() > 4_000, "{} servers", servers.len());
    let ports: HashSet<u16> =
        seen.iter().filter(|s| s.syn_only && is_internal(s.src) && !is_internal(s.dst)).map(|s| s.dport).collect();
    assert_eq!(ports.len(), 19, "TCP service ports: {ports:?}"); // + DNS on UDP 53
                                                                 // Same seed, same bytes.
    assert_eq!(generate(write_short, p, 3).2, bytes);
}

#[test]
fn hosts_mix_has_many_external_sources_and_the_planted_scanner_and_beacons() {
    let p = MixParams { packets: 300_000, session_rate: 20.0, hosts: 1_000_000, duration_secs: None };
    let (report, seen, _) = generate(write_hosts, p, 4);
    let sources: HashSet<IpAddr> = seen.iter().filter(|s| !is_internal(s.src)).map(|s| s.src).collect();
    // Every external source counted by the generator shows up; most draws are new hosts.
    assert!(sources.len() as u64 >= report.external_sources, "{} < {}", sources.len(), report.external_sources);
    assert!(report.external_sources > 40_000, "{} distinct sources", report.external_sources);
    let start = seen[0].ts;
    let span = (seen.last().unwrap().ts - start) as f64 / 1e9;
    assert!(span > 2400.0, "only {span:.0} s of traffic");
    // The scanner: 200 distinct ports of the target, from scan_at on, one a second.
    let planted = &HOSTS_PLANTED;
    let probes: Vec<&Seen> = seen.iter().filter(|s| s.src == IpAddr::V4(planted.scanner) && s.syn_only).collect();
    let ports: HashSet<u16> = probes.iter().map(|s| s.dport).collect();
    assert_eq!((probes.len(), ports.len()), (200, 200));
    assert!(probes.iter().all(|s| s.dst == IpAddr::V4(planted.scan_target)));
    assert_eq!(probes[0].ts - start, planted.scan_at_secs * 1_000_000_000);
    // The beacons: one SYN per period, exactly, to the C2 server, and no other traffic
    // from the implants (the Sentinel rule measures gaps across all of a source's sessions).
    for (implant, c2, period) in planted.beacons {
        let from: Vec<&Seen> = seen.iter().filter(|s| s.src == IpAddr::V4(implant)).collect();
        assert!(from.iter().all(|s| s.dst == IpAddr::V4(c2) && s.dport == 443));
        let syns: Vec<i64> = from.iter().filter(|s| s.syn_only).map(|s| s.ts).collect();
        assert!(syns.len() as f64 >= span / period as f64 - 1.0, "{implant}: {} check-ins", syns.len());
        assert!(syns.windows(2).all(|w| w[1] - w[0] == period * 1_000_000_000), "{implant}: irregular");
    }
    // Nobody else uses the planted addresses.
    let planted_hosts: HashSet<IpAddr> =
        [planted.scanner, Ipv4Addr::new(203, 0, 113, 50), Ipv4Addr::new(203, 0, 113, 51)]
            .into_iter()
            .map(IpAddr::V4)
            .collect();
    assert!(seen.iter().filter(|s| planted_hosts.contains(&s.dst)).all(|s| is_internal(s.src)));
}

#[test]
fn bulk_mix_few_transfers_carry_most_packets() {
    let p = MixParams { packets: 300_000, session_rate: 300.0, hosts: 20_000, duration_secs: None };
    let (report, seen, _) = generate(write_bulk, p, 5);
    let mut per_flow: HashMap<(IpAddr, u16, IpAddr, u16), u64> = HashMap::new();
    for s in &seen {
        let key = if (s.src, s.sport) < (s.dst, s.dport) {
            (s.src, s.sport, s.dst, s.dport)
        } else {
            (s.dst, s.dport, s.src, s.sport)
        };
        *per_flow.entry(key).or_default() += 1;
    }
    let mut counts: Vec<u64> = per_flow.into_values().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let top = counts.len() / 100; // the biggest 1 % of flows
    let share = counts[..top].iter().sum::<u64>() as f64 / p.packets as f64;
    assert!(share > 0.8, "top 1 % of {} flows carry only {:.2} of the packets", counts.len(), share);
    let full = seen.iter().filter(|s| s.payload == usize::from(crate::synth::session::MSS)).count();
    assert!(full as f64 > 0.5 * p.packets as f64, "{full} full-size segments");
    assert!(seen.iter().all(|s| s.len <= 1514));
    assert!(report.stream.sessions > 1000);
}

#[test]
fn mixes_reject_bad_parameters() {
    let ctx = ScenarioCtx::default();
    let mut w = PcapWriter::new(Vec::new(), TsResolution::Micro).unwrap();
    let p = MixParams { packets: 10, session_rate: 0.0, hosts: 10, duration_secs: None };
    assert!(write_short(&ctx, &p, &mut w).unwrap_err().to_string().contains("--session-rate"));
    let p = MixParams { packets: 10, session_rate: 10.0, hosts: 0, duration_secs: None };
    assert!(write_hosts(&ctx, &p, &mut w).unwrap_err().to_string().contains("--hosts"));
}

#[test]
fn duration_limits_a_mix_to_that_much_traffic() {
    let ctx = ScenarioCtx::new(6, DEFAULT_START_SECS);
    let p = MixParams { packets: u64::MAX, session_rate: 50.0, hosts: 1000, duration_secs: Some(120.0) };
    let mut w = PcapWriter::new(Vec::new(), TsResolution::Nano).unwrap();
    let r = write_hosts(&ctx, &p, &mut w).unwrap();
    let span = r.stream.last_ts.since(ctx.start).as_secs_f64();
    assert!((119.0..=120.0).contains(&span), "{span} s");
    assert!(r.stream.packets > 20_000, "{} packets", r.stream.packets);
}

#[test]
fn documentation_only_writes_every_address_inside_2001_db8() {
    let ctx = ScenarioCtx::new(7, DEFAULT_START_SECS);
    let p = MixParams { packets: 20_000, session_rate: 5000.0, hosts: 1000, duration_secs: None };
    let mut w = PcapWriter::new(Vec::new(), TsResolution::Nano).unwrap().documentation_only();
    write_short(&ctx, &p, &mut w).unwrap();
    let bytes = w.finish().unwrap();
    let rd = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) as usize;
    let (mut off, mut n, mut internal) = (24, 0, 0);
    while off < bytes.len() {
        let len = rd(off + 8);
        let s = SlicedPacket::from_ethernet(&bytes[off + 16..off + 16 + len]).unwrap();
        let Some(NetSlice::Ipv6(ip)) = &s.net else { panic!("frame {n} is not IPv6") };
        for a in [ip.header().source_addr(), ip.header().destination_addr()] {
            assert_eq!(a.segments()[..2], [0x2001, 0xdb8], "{a}");
            internal += (a.segments()[2] >> 8 == 0x0a) as usize; // was 10.0.0.0/8
        }
        off += 16 + len;
        n += 1;
    }
    assert_eq!(n, 20_000);
    assert!(internal >= n, "every packet has one side in the mapped 10/8");
}
