//! Round-trip and sanity tests for the synthetic captures: generated files parse back with
//! libpcap, frames slice back with etherparse, seeds are deterministic and each scenario
//! has the shape its documentation promises.

use std::collections::BTreeSet;
use std::io::Cursor;
use std::net::IpAddr;
use std::path::PathBuf;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};

use super::*;

fn write_to_vec(pkts: &[Packet], res: TsResolution) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), res).unwrap();
    w.write_all_packets(pkts).unwrap();
    w.finish().unwrap()
}

fn temp_pcap(name: &str, bytes: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("flowsentry-synth-test-{}-{name}.pcap", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn build(name: &str) -> Vec<Packet> {
    let s = find_scenario(name).unwrap_or_else(|| panic!("scenario {name} missing"));
    (s.build)(&ScenarioCtx::default())
}

fn tcp_of(p: &Packet) -> Option<TcpSpec> {
    match p.transport {
        Transport::Tcp(t) => Some(t),
        _ => None,
    }
}

#[test]
fn written_pcap_parses_back_with_libpcap() {
    for res in [TsResolution::Micro, TsResolution::Nano] {
        let pkts = build("udp_scan_icmp");
        let bytes = write_to_vec(&pkts, res);
        let path = temp_pcap(&format!("{res:?}"), &bytes);
        let precision = match res {
            TsResolution::Micro => pcap::Precision::Micro,
            TsResolution::Nano => pcap::Precision::Nano,
        };
        let mut cap = pcap::Capture::from_file_with_precision(&path, precision).unwrap();
        assert_eq!(cap.get_datalink(), pcap::Linktype::ETHERNET);
        let mut n = 0usize;
        let mut last = i64::MIN;
        while let Ok(p) = cap.next_packet() {
            let scale = if res == TsResolution::Nano { 1 } else { 1000 };
            // tv_sec / tv_usec are not i64 on every platform
            #[allow(clippy::unnecessary_cast)]
            let ts = p.header.ts.tv_sec as i64 * 1_000_000_000 + p.header.ts.tv_usec as i64 * scale;
            assert!(ts >= last, "timestamps go backwards at packet {n}");
            let expected = match res {
                TsResolution::Nano => pkts[n].ts.0,
                TsResolution::Micro => pkts[n].ts.0 / 1000 * 1000,
            };
            assert_eq!(ts, expected, "packet {n} timestamp");
            assert_eq!(p.header.caplen, p.header.len);
            last = ts;
            n += 1;
        }
        assert_eq!(n, pkts.len());
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
fn snaplen_truncates_but_keeps_original_length() {
    let pkts = build("midstream_downloads");
    let mut w = PcapWriter::with_snaplen(Vec::new(), TsResolution::Micro, 96).unwrap();
    w.write_all_packets(&pkts[..50]).unwrap();
    let bytes = w.finish().unwrap();
    let path = temp_pcap("snap", &bytes);
    let mut cap = pcap::Capture::from_file(&path).unwrap();
    let mut saw_truncated = false;
    while let Ok(p) = cap.next_packet() {
        assert!(p.header.caplen <= 96);
        saw_truncated |= p.header.len > 96;
    }
    assert!(saw_truncated, "downloads carry full-size segments");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn frames_slice_back_to_the_described_packets() {
    let mut pkts = build("public_syn_scan");
    pkts.extend(build("ipv6_scan"));
    pkts.extend(build("beacon_udp").into_iter().take(20));
    pkts.extend(build("udp_scan_icmp").into_iter().take(20));
    let mut buf = Vec::new();
    for p in &pkts {
        encode_frame(p, &mut buf);
        let s = SlicedPacket::from_ethernet(&buf).unwrap();
        let (src, dst): (IpAddr, IpAddr) = match &s.net {
            Some(NetSlice::Ipv4(ip)) => {
                let h = ip.header().to_header();
                assert_eq!(h.calc_header_checksum(), h.header_checksum, "IPv4 header checksum");
                assert_eq!(h.time_to_live, p.ttl);
                assert_eq!(h.identification, p.ip_id);
                (h.source.into(), h.destination.into())
            }
            Some(NetSlice::Ipv6(ip)) => (ip.header().source_addr().into(), ip.header().destination_addr().into()),
            other => panic!("no IP layer: {other:?}"),
        };
        assert_eq!((src, dst), (p.src, p.dst));
        match (&s.transport, p.transport) {
            (Some(TransportSlice::Tcp(t)), Transport::Tcp(spec)) => {
                assert_eq!((t.source_port(), t.destination_port()), (spec.sport, spec.dport));
                assert_eq!(t.payload().len(), spec.payload_len as usize);
                let h = t.to_header();
                let c = match &s.net {
                    Some(NetSlice::Ipv4(ip)) => h.calc_checksum_ipv4(&ip.header().to_header(), t.payload()),
                    Some(NetSlice::Ipv6(ip)) => h.calc_checksum_ipv6(&ip.header().to_header(), t.payload()),
                    _ => unreachable!(),
                };
                assert_eq!(c.unwrap(), h.checksum, "TCP checksum");
            }
            (Some(TransportSlice::Udp(u)), Transport::Udp(spec)) => {
                assert_eq!((u.source_port(), u.destination_port()), (spec.sport, spec.dport));
                let h = u.to_header();
                let Some(NetSlice::Ipv4(ip)) = &s.net else { panic!("beacon_udp is IPv4") };
                assert_eq!(h.calc_checksum_ipv4(&ip.header().to_header(), u.payload()).unwrap(), h.checksum);
            }
            (Some(TransportSlice::Icmpv4(i)), Transport::PortUnreachable { .. }) => {
                assert_eq!((i.type_u8(), i.code_u8()), (3, 3));
            }
            (got, want) => panic!("transport mismatch: {got:?} vs {want:?}"),
        }
    }
}

#[test]
fn same_seed_same_bytes_and_seed_changes_output() {
    let bytes = |seed: u64| {
        let ctx = ScenarioCtx::new(seed, scenarios::DEFAULT_START_SECS);
        let mut all = Vec::new();
        for s in SCENARIOS.iter().filter(|s| !s.name.starts_with("busy")) {
            all.extend(write_to_vec(&(s.build)(&ctx), TsResolution::Micro));
        }
        all
    };
    let a = bytes(42);
    assert_eq!(a, bytes(42));
    assert_ne!(a, bytes(43));
}

#[test]
fn every_scenario_is_time_sorted_and_uses_only_allowed_addresses() {
    let allowed = |ip: IpAddr| match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            o[0] == 10 || o[..3] == [192, 0, 2] || o[..3] == [198, 51, 100] || o[..3] == [203, 0, 113]
        }
        IpAddr::V6(a) => a.segments()[..2] == [0x2001, 0x0db8],
    };
    for s in SCENARIOS {
        let pkts = (s.build)(&ScenarioCtx::default());
        assert!(!pkts.is_empty(), "{} is empty", s.name);
        assert!(pkts.windows(2).all(|w| w[0].ts <= w[1].ts), "{} not sorted", s.name);
        for p in &pkts {
            assert!(allowed(p.src) && allowed(p.dst), "{}: {} -> {}", s.name, p.src, p.dst);
        }
    }
}

#[test]
fn public_syn_scan_hits_200_ports_with_three_open() {
    let pkts = build("public_syn_scan");
    let scanner: IpAddr = "203.0.113.66".parse().unwrap();
    let syns: Vec<TcpSpec> =
        pkts.iter().filter(|p| p.src == scanner).filter_map(tcp_of).filter(|t| t.flags == flags::SYN).collect();
    let ports: BTreeSet<u16> = syns.iter().map(|t| t.dport).collect();
    assert!(ports.len() >= 200, "{} ports", ports.len());
    assert!(syns.iter().all(|t| t.window == 1024 && t.mss == Some(1460)));
    let synacks: BTreeSet<u16> =
        pkts.iter().filter_map(tcp_of).filter(|t| t.flags == flags::SYN | flags::ACK).map(|t| t.sport).collect();
    assert_eq!(synacks, BTreeSet::from([22, 80, 443]));
    let rsts = pkts.iter().filter_map(tcp_of).filter(|t| t.flags == flags::RST | flags::ACK).count();
    assert_eq!(rsts, 197);
}

#[test]
fn scan_split_boundary_has_45_ports_each_side_of_a_bin_edge() {
    let pkts = build("scan_split_boundary");
    let width = crate::time::Duration::from_secs(300);
    let mut per_bin: std::collections::BTreeMap<i64, BTreeSet<u16>> = Default::default();
    for p in pkts.iter().filter(|p| p.src.to_string() == "198.51.100.23") {
        per_bin.entry(p.ts.bin_start(width).0).or_default().insert(tcp_of(p).unwrap().dport);
    }
    let sizes: Vec<usize> = per_bin.values().map(|s| s.len()).collect();
    assert_eq!(sizes, vec![45, 45]);
    let all: BTreeSet<u16> = per_bin.values().flatten().copied().collect();
    assert_eq!(all.len(), 90);
    let first = pkts.first().unwrap().ts;
    let last = pkts.last().unwrap().ts;
    assert!(last.since(first).as_secs_f64() < 240.0);
}

fn syn_times(pkts: &[Packet], dst_port: u16) -> Vec<i64> {
    pkts.iter()
        .filter(|p| tcp_of(p).is_some_and(|t| t.flags == flags::SYN && t.dport == dst_port))
        .map(|p| p.ts.0)
        .collect()
}

#[test]
fn beacon_60s_exact_intervals_are_exactly_60_s() {
    let pkts = build("beacon_60s_exact");
    let t = syn_times(&pkts, 443);
    assert_eq!(t.len(), 120);
    assert!(t.windows(2).all(|w| w[1] - w[0] == 60_000_000_000));
    // 8 packets per session
    assert_eq!(pkts.len(), 120 * 8);
}

#[test]
fn jittered_beacons_stay_within_their_jitter_bounds() {
    for (name, lo, hi) in [("beacon_60s_jitter20", 48.0, 72.0), ("beacon_60s_jitter50", 30.0, 60.0)] {
        let t = syn_times(&build(name), 443);
        let gaps: Vec<f64> = t.windows(2).map(|w| (w[1] - w[0]) as f64 / 1e9).collect();
        assert!(gaps.len() > 100, "{name}: {} gaps", gaps.len());
        assert!(gaps.iter().all(|g| (lo - 1e-6..=hi + 1e-6).contains(g)), "{name}");
        let distinct: BTreeSet<i64> = gaps.iter().map(|g| g.round() as i64).collect();
        assert!(distinct.len() > 10, "{name} should be jittered");
    }
}

#[test]
fn masscan_and_zmap_probes_carry_their_fingerprints() {
    for p in build("masscan_like").iter().filter(|p| p.src.to_string() == "203.0.113.120") {
        let t = tcp_of(p).unwrap();
        if t.flags != flags::SYN {
            continue;
        }
        let IpAddr::V4(dst) = p.dst else { panic!() };
        assert_eq!(p.ip_id, (u32::from(dst) ^ t.dport as u32 ^ t.seq) as u16);
        assert_eq!((t.window, t.sport, p.ttl, t.mss), (1024, 61_000, 255, None));
    }
    let z = build("zmap_like");
    let probes: Vec<&Packet> =
        z.iter().filter(|p| p.src.to_string() == "203.0.113.121" && tcp_of(p).unwrap().flags == flags::SYN).collect();
    assert_eq!(probes.len(), 254);
    assert!(probes.iter().all(|p| p.ip_id == 54321 && tcp_of(p).unwrap().window == 65535));
}

#[test]
fn midstream_downloads_start_without_handshakes() {
    let pkts = build("midstream_downloads");
    let first: Vec<&Packet> = pkts.iter().take(40).collect();
    assert!(first.iter().all(|p| tcp_of(p).unwrap().flags & flags::SYN == 0));
    assert!(first.iter().any(|p| p.src.to_string().starts_with("203.0.113.") && tcp_of(p).unwrap().payload_len > 0));
}

#[test]
fn nat_sessions_are_2000_complete_handshakes_to_one_service() {
    let pkts = build("nat_many_sessions");
    let syns = syn_times(&pkts, 443);
    assert_eq!(syns.len(), 2000);
    let closes =
        pkts.iter().filter_map(tcp_of).filter(|t| t.flags == flags::FIN | flags::ACK && t.sport == 443).count();
    assert_eq!(closes, 2000);
}

#[test]
fn mixed_streams_in_time_order_with_bounded_pending() {
    let ctx = ScenarioCtx::new(5, scenarios::DEFAULT_START_SECS);
    let params = MixedParams { packets: 200_000, session_rate: 3000.0, hosts: 30_000 };
    let mut w = PcapWriter::new(Vec::new(), TsResolution::Nano).unwrap();
    let stats = write_mixed(&ctx, &params, &mut w).unwrap();
    let bytes = w.finish().unwrap();
    assert_eq!(stats.packets, 200_000);
    assert!(stats.sessions > 20_000, "{} sessions", stats.sessions);
    assert!(stats.peak_pending < 100_000, "peak {}", stats.peak_pending);
    // Walk the records: timestamps never decrease and every frame slices.
    let mut off = 24;
    let mut last = 0u64;
    let mut n = 0;
    let mut hosts = BTreeSet::new();
    while off < bytes.len() {
        let rd = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) as u64;
        let ts = rd(off) * 1_000_000_000 + rd(off + 4);
        let len = rd(off + 8) as usize;
        assert!(ts >= last, "record {n} goes back in time");
        last = ts;
        let frame = &bytes[off + 16..off + 16 + len];
        let s = SlicedPacket::from_ethernet(frame).unwrap();
        if let Some(NetSlice::Ipv4(ip)) = s.net {
            let src = ip.header().source();
            if src[0] == 10 {
                hosts.insert(src);
            }
        }
        off += 16 + len;
        n += 1;
    }
    assert_eq!(n, 200_000);
    assert!(hosts.len() > 10_000, "{} internal hosts", hosts.len());
    // Same seed, same stream.
    let mut w2 = PcapWriter::new(Vec::new(), TsResolution::Nano).unwrap();
    write_mixed(&ctx, &params, &mut w2).unwrap();
    assert_eq!(w2.finish().unwrap(), bytes);
}

#[test]
fn mixed_rejects_bad_parameters() {
    let ctx = ScenarioCtx::default();
    let mut w = PcapWriter::new(Vec::new(), TsResolution::Micro).unwrap();
    let bad = MixedParams { session_rate: 0.0, ..MixedParams::default() };
    let err = write_mixed(&ctx, &bad, &mut w).unwrap_err();
    assert!(err.to_string().contains("session-rate"));
}

#[test]
fn writer_rejects_pre_epoch_timestamps() {
    let mut w = PcapWriter::new(Cursor::new(Vec::new()), TsResolution::Micro).unwrap();
    let err = w.write_frame(crate::time::Timestamp(-1), &[0u8; 60]).unwrap_err();
    assert!(err.to_string().contains("outside the classic pcap range"));
}
