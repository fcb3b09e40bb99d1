//! Scan detector tests: each scan style caught and classified, each benign pattern
//! (NAT, resolver, busy server, mid-session pickup) left alone, memory caps held.

use super::testkit::*;
use super::ScanDetector;
use crate::detect::{AlertType, DetectConfig, Detector};
use crate::flow::FirstPacket;
use std::net::{IpAddr, Ipv4Addr};

fn scan(cfg: &DetectConfig, feed: Feed) -> Vec<crate::detect::Alert> {
    let mut det = ScanDetector::new(cfg);
    feed.run(&mut det)
}

fn nmap_syn(seq: u32) -> FirstPacket {
    FirstPacket { tcp_flags: SYN, ttl: 44, ip_id: 31337, tcp_window: 1024, tcp_seq: seq, payload_len: 0 }
}

#[test]
fn nmap_syn_scan_is_vertical_syn_nmap_and_alerts_once() {
    let (src, dst) = (ip("203.0.113.5"), ip("192.0.2.10"));
    let mut f = Feed::new();
    for p in 1..=1000u16 {
        let fate = if [22, 80, 443].contains(&p) { Fate::HalfOpen } else { Fate::Rej };
        f.session_with(100.0 + p as f64 * 0.002, src, dst, 40000, p, fate, nmap_syn(p as u32 * 77));
    }
    let alerts = scan(&config(), f);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(a.alert_type, AlertType::PortScan);
    assert_eq!(ev_str(a, "ScanType"), "Vertical");
    assert_eq!(ev_str(a, "ProbeType"), "SYN");
    assert_eq!(ev_str(a, "Tool"), "nmap");
    assert_eq!(a.dst, Some(dst));
    assert!(ev_f64(a, "PortCount") >= 15.0);
    assert!(a.time.as_secs_f64() < 100.2, "fingerprinted probes alert at once, got {}", a.time);
}

#[test]
fn connect_scan_is_classified_connect() {
    let (src, dst) = (ip("192.0.2.66"), ip("192.0.2.10"));
    let mut f = Feed::new();
    for p in 1..=200u16 {
        let fate = if p % 10 == 0 { Fate::ConnectEmpty } else { Fate::Rej };
        f.session(10.0 + p as f64 * 0.01, src, dst, 50000 + p, p, fate);
    }
    let alerts = scan(&config(), f);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(ev_str(&alerts[0], "ProbeType"), "Connect");
    assert!(alerts[0].evidence.get("Tool").is_none());
}

#[test]
fn fin_null_xmas_scans_are_classified_and_alert_before_any_timeout() {
    for (flags, name) in [(FIN, "FIN"), (0, "NULL"), (FIN | PSH | URG, "XMAS")] {
        let (src, dst) = (ip("198.51.100.9"), ip("192.0.2.20"));
        let mut f = Feed::new();
        for p in 1..=100u16 {
            let first =
                FirstPacket { tcp_flags: flags, ttl: 50, ip_id: p, tcp_window: 65535, tcp_seq: 0, payload_len: 0 };
            f.session_with(
                5.0 + p as f64 * 0.01,
                src,
                dst,
                33000,
                p,
                Fate::Stealth { flags, closed: p % 7 != 0 },
                first,
            );
        }
        let alerts = scan(&config(), f);
        assert_eq!(alerts.len(), 1, "{name}: {alerts:?}");
        assert_eq!(ev_str(&alerts[0], "ProbeType"), name);
        assert_eq!(alerts[0].severity, "High");
        assert!(alerts[0].time.as_secs_f64() < 5.0 + 0.01 * 16.0, "{name} alerted late at {}", alerts[0].time);
    }
}

#[test]
fn horizontal_sweep_of_254_hosts_on_port_22() {
    let src = ip("192.0.2.99");
    let mut f = Feed::new();
    for h in 1..=254u8 {
        let dst = IpAddr::V4(Ipv4Addr::new(198, 51, 100, h));
        let fate = match h % 20 {
            0 => Fate::Ok { dur: 0.5, src_bytes: 500, dst_bytes: 900 },
            1..=4 => Fate::Rej,
            _ => Fate::S0,
        };
        f.session(1000.0 + h as f64 * 0.05, src, dst, 41000 + h as u16, 22, fate);
    }
    let alerts = scan(&config(), f);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(ev_str(a, "ScanType"), "Horizontal");
    assert_eq!(a.dport, Some(22));
    assert_eq!(ev_f64(a, "PortCount"), 1.0);
    assert!(ev_f64(a, "TargetCount") >= 15.0);
    assert!(a.evidence["TargetsSample"].as_array().unwrap().len() <= 20);
}

#[test]
fn udp_scan_answered_by_icmp_unreachable() {
    let (src, dst) = (ip("203.0.113.77"), ip("192.0.2.30"));
    let mut f = Feed::new();
    for p in 1..=120u16 {
        let fate = Fate::Udp { answered: p == 53, unreachable: p != 53, src_bytes: 0, dst_bytes: 40 };
        f.session(0.5 * p as f64, src, dst, 60000, p, fate);
    }
    let alerts = scan(&config(), f);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(ev_str(&alerts[0], "ProbeType"), "UDP");
    assert_eq!(ev_str(&alerts[0], "ScanType"), "Vertical");
}

#[test]
fn masscan_and_zmap_are_fingerprinted() {
    let src = ip("203.0.113.200");
    let mut f = Feed::new();
    let mut rng = SplitMix64(7);
    for h in 1..=100u8 {
        let dst = Ipv4Addr::new(198, 51, 100, h);
        let seq = rng.next_u64() as u32;
        let ip_id = ((u32::from(dst) ^ 443 ^ seq) & 0xffff) as u16;
        let first = FirstPacket { tcp_flags: SYN, ttl: 255, ip_id, tcp_window: 1024, tcp_seq: seq, payload_len: 0 };
        f.session_with(h as f64, src, IpAddr::V4(dst), 61000, 443, Fate::S0, first);
    }
    let alerts = scan(&config(), f);
    assert_eq!(alerts.len(), 1);
    assert_eq!(ev_str(&alerts[0], "Tool"), "masscan");
    assert_eq!(ev_str(&alerts[0], "ScanType"), "Horizontal");

    let mut f = Feed::new();
    for h in 1..=100u8 {
        let first = FirstPacket {
            tcp_flags: SYN,
            ttl: 255,
            ip_id: 54321,
            tcp_window: 65535,
            tcp_seq: h as u32,
            payload_len: 0,
        };
        f.session_with(h as f64, src, IpAddr::V4(Ipv4Addr::new(198, 51, 100, h)), 61000, 80, Fate::S0, first);
    }
    let alerts = scan(&config(), f);
    assert_eq!(alerts.len(), 1);
    assert_eq!(ev_str(&alerts[0], "Tool"), "zmap");
}

#[test]
fn scan_split_45_45_across_a_five_minute_boundary_is_caught_by_the_sliding_window() {
    let mut cfg = config();
    cfg.enhanced.scan_min_failed_targets = 60;
    cfg.enhanced.scan_fast_vertical_ports = 80;
    let (src, dst) = (ip("203.0.113.8"), ip("192.0.2.40"));
    let build = |ports: u16| {
        let mut f = Feed::new();
        for i in 0..ports {
            // 45 probes in 270..299.9 s, 45 more in 300..330 s (the 300 s bin boundary).
            f.session(270.0 + i as f64 * (60.0 / 90.0), src, dst, 40001, 1000 + i, Fate::Rej);
        }
        f
    };
    assert!(scan(&cfg, build(45)).is_empty(), "45 failed ports alone are below the 60 threshold");
    let alerts = scan(&cfg, build(90));
    assert_eq!(alerts.len(), 1);
    assert!(ev_f64(&alerts[0], "PortCount") >= 60.0);
    assert!(alerts[0].time.as_secs_f64() > 300.0);
}

#[test]
fn ipv6_scan_is_caught() {
    let (src, dst) = (ip("2001:db8:bad::1"), ip("2001:db8:1::10"));
    let mut f = Feed::new();
    for p in 1..=100u16 {
        f.session(1.0 + p as f64 * 0.01, src, dst, 45000, p, Fate::Rej);
    }
    let alerts = scan(&config(), f);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].src, src);
    assert_eq!(ev_str(&alerts[0], "ScanType"), "Vertical");
}

#[test]
fn fast_vertical_path_alerts_on_pending_syns_before_timeouts() {
    let (src, dst) = (ip("198.51.100.50"), ip("192.0.2.41"));
    let mut f = Feed::new();
    for p in 1..=200u16 {
        f.session(50.0 + p as f64 * 0.001, src, dst, 45000, p, Fate::S0);
    }
    let alerts = scan(&config(), f);
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].time.as_secs_f64() < 51.0, "should not wait for S0 timeouts: {}", alerts[0].time);
}

#[test]
fn nat_with_2000_successful_sessions_to_one_service_is_not_flagged() {
    let (nat, svc) = (ip("192.0.2.1"), ip("198.51.100.80"));
    let mut f = Feed::new();
    let mut rng = SplitMix64(1);
    for i in 0..2000u32 {
        f.session(
            i as f64 * 0.3,
            nat,
            svc,
            1024 + (i % 60000) as u16,
            443,
            Fate::Ok { dur: rng.uniform(0.1, 30.0), src_bytes: 800, dst_bytes: 20_000 },
        );
    }
    // The same NAT also browses 300 sites with 5 % failures.
    for h in 0..300u32 {
        let dst = IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(203, 0, 113, 0)) + (h % 256)));
        let port = if h < 256 { 443 } else { 80 };
        let fate = if rng.unit() < 0.05 { Fate::S0 } else { Fate::Ok { dur: 2.0, src_bytes: 900, dst_bytes: 40_000 } };
        f.session(rng.uniform(0.0, 600.0), nat, dst, 2000 + h as u16, port, fate);
    }
    assert!(scan(&config(), f).is_empty());
}

#[test]
fn recursive_dns_resolver_is_not_flagged() {
    let resolver = ip("192.0.2.53");
    let mut f = Feed::new();
    let mut rng = SplitMix64(2);
    for i in 0..3000u32 {
        let dst = IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 51, 100, 0)) + rng.below(256) as u32));
        let answered = rng.unit() > 0.03;
        f.session(
            i as f64 * 0.1,
            resolver,
            dst,
            10000 + (i % 50000) as u16,
            53,
            Fate::Udp { answered, unreachable: false, src_bytes: 40, dst_bytes: 200 },
        );
    }
    assert!(scan(&config(), f).is_empty());
}

#[test]
fn busy_server_and_mid_session_traffic_are_not_flagged() {
    let server = ip("192.0.2.80");
    let mut f = Feed::new();
    let mut rng = SplitMix64(3);
    for i in 0..2000u32 {
        let client = IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(203, 0, 113, 0)) + rng.below(256) as u32));
        f.session(
            i as f64 * 0.2,
            client,
            server,
            30000 + (i % 30000) as u16,
            443,
            Fate::Ok { dur: 1.0, src_bytes: 500, dst_bytes: 9000 },
        );
    }
    // Sensor started mid-stream: the server's established sessions appear as OTH pickups
    // in both directions, many distinct ports and hosts.
    for i in 0..300u32 {
        let client = IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(203, 0, 113, 0)) + i % 256));
        f.session(1.0 + i as f64 * 0.01, server, client, 443, 30000 + i as u16, Fate::MidSession);
    }
    let alerts = scan(&config(), f);
    assert!(alerts.is_empty(), "{alerts:?}");
}

#[test]
fn slow_scanner_is_suppressed_after_one_alert_and_allowlist_silences() {
    let (src, dst) = (ip("203.0.113.9"), ip("192.0.2.10"));
    let build = || {
        let mut f = Feed::new();
        for p in 1..=600u16 {
            f.session(p as f64 * 3.0, src, dst, 40000, p, Fate::Rej);
        }
        f
    };
    assert_eq!(scan(&config(), build()).len(), 1, "30 minutes of scanning, one alert per suppression period");
    let mut cfg = config();
    cfg.enhanced.allow_src = vec!["203.0.113.0/28".into()];
    assert!(scan(&cfg, build()).is_empty());
}

#[test]
fn flood_of_one_million_random_sources_respects_the_cap() {
    let mut cfg = config();
    cfg.enhanced.scan_max_sources = 10_000;
    let mut det = ScanDetector::new(&cfg);
    let mut rng = SplitMix64(99);
    let mut alerts = Vec::new();
    let dst = ip("192.0.2.10");
    for i in 0..1_000_000u64 {
        let src = IpAddr::V4(Ipv4Addr::from(rng.next_u64() as u32));
        let start = crate::flow::SessionStart {
            id: i,
            ts: crate::time::Timestamp::from_secs_f64(i as f64 * 1e-4),
            src,
            dst,
            sport: Some(1234),
            dport: Some(80),
            protocol: 6,
            segment: 0,
            first: FirstPacket { tcp_flags: SYN, ttl: 64, ip_id: 1, tcp_window: 64240, tcp_seq: 5, payload_len: 0 },
        };
        det.on_event(&crate::flow::FlowEvent::Start(start), &mut alerts);
        if i % 100_000 == 0 {
            assert!(det.usage().sources() <= 10_000);
        }
    }
    let u = det.usage();
    assert!(u.sources() <= 10_000, "{u:?}");
    assert!(u.evictions() >= 990_000, "{u:?}");
    assert!(alerts.is_empty());
}

#[test]
fn udp_chatter_and_tcp_sweep_from_one_source_are_two_findings() {
    // Hide-and-Seek: UDP P2P to many peers AND a telnet SYN sweep over a few ports.
    let src = ip("192.168.2.16");
    let mut f = Feed::new();
    for h in 1..=60u8 {
        let peer = IpAddr::V4(Ipv4Addr::new(198, 51, 100, h));
        f.session(
            h as f64 * 0.5,
            src,
            peer,
            40000,
            10_000 + h as u16,
            Fate::Udp { answered: false, unreachable: false, src_bytes: 60, dst_bytes: 0 },
        );
    }
    for h in 1..=120u8 {
        let dst = IpAddr::V4(Ipv4Addr::new(203, 0, 113, h));
        let port = [23, 2323, 8080, 9527][h as usize % 4];
        f.session(40.0 + h as f64 * 0.5, src, dst, 50000 + h as u16, port, Fate::S0);
    }
    let alerts = scan(&config(), f);
    let kinds: Vec<(&str, &str)> = alerts.iter().map(|a| (ev_str(a, "ProbeType"), ev_str(a, "ScanType"))).collect();
    assert_eq!(alerts.len(), 2, "{kinds:?}");
    assert!(kinds.iter().any(|k| k.0 == "UDP"), "{kinds:?}");
    assert!(kinds.contains(&("SYN", "Horizontal")), "a few ports over many hosts is horizontal: {kinds:?}");
}

#[test]
fn multicast_broadcast_and_discovery_answers_are_not_scan_targets() {
    let src = ip("192.168.1.46");
    let mut f = Feed::new();
    let mut t = 0.0;
    for i in 0..200u16 {
        t += 0.5;
        let group = ["224.0.0.251", "239.255.255.250", "255.255.255.255", "192.168.1.255"][i as usize % 4];
        f.session(
            t,
            src,
            ip(group),
            50000 + i,
            1000 + i,
            Fate::Udp { answered: false, unreachable: false, src_bytes: 80, dst_bytes: 0 },
        );
        // LLMNR answer to a multicast query: unicast from 5355 to the querier's port.
        let querier = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1 + (i % 200) as u8));
        f.session(
            t + 0.1,
            src,
            querier,
            5355,
            50000 + i,
            Fate::Udp { answered: false, unreachable: false, src_bytes: 90, dst_bytes: 0 },
        );
    }
    let alerts = scan(&config(), f);
    assert!(alerts.is_empty(), "{alerts:?}");
}

#[test]
fn the_alert_samples_the_earliest_probes_sessions() {
    let (src, dst) = (ip("203.0.113.5"), ip("192.0.2.10"));
    let mut f = Feed::new();
    // Session 1 succeeds (not a probe); sessions 2.. are refused probes.
    f.session(100.0, src, dst, 40000, 80, Fate::Ok { dur: 0.1, src_bytes: 100, dst_bytes: 100 });
    for p in 1..=200u16 {
        f.session_with(100.5 + p as f64 * 0.002, src, dst, 40000, 1000 + p, Fate::Rej, nmap_syn(p as u32 * 77));
    }
    let alerts = scan(&config(), f);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let n = crate::detect::alert::SESSION_SAMPLE as u64;
    assert_eq!(alerts[0].sessions, (2..2 + n).collect::<Vec<u64>>());
}

/// `n` probes of `flags` from `src` to ports 1..=n of `dst`, starting at `t0`, 10 ms apart.
fn probes(f: &mut Feed, t0: f64, src: IpAddr, dst: IpAddr, flags: u8, n: u16) {
    for p in 1..=n {
        let first = FirstPacket { tcp_flags: flags, ttl: 50, ip_id: p, tcp_window: 65535, tcp_seq: 0, payload_len: 0 };
        let t = t0 + p as f64 * 0.01;
        if flags == SYN {
            f.session_with(t, src, dst, 33000, p, Fate::Rej, first);
        } else {
            f.session_with(t, src, dst, 33000, p, Fate::Stealth { flags, closed: true }, first);
        }
    }
}

#[test]
fn a_second_scan_type_within_the_suppression_period_is_its_own_finding() {
    let (src, dst) = (ip("198.51.100.9"), ip("192.0.2.20"));
    let mut f = Feed::new();
    probes(&mut f, 10.0, src, dst, SYN, 200);
    probes(&mut f, 300.0, src, dst, FIN | PSH | URG, 200);
    probes(&mut f, 900.0, src, dst, FIN, 100);
    // The same types again, well within the hour: already reported.
    probes(&mut f, 1500.0, src, ip("192.0.2.21"), SYN, 200);
    probes(&mut f, 2000.0, src, ip("192.0.2.21"), FIN | PSH | URG, 200);
    let alerts = scan(&config(), f);
    let kinds: Vec<&str> = alerts.iter().map(|a| ev_str(a, "ProbeType")).collect();
    assert_eq!(kinds, ["SYN", "XMAS", "FIN"], "{alerts:?}");
    // Each finding counts its own probes, and alerts soon after its type starts.
    let xmas = &alerts[1];
    assert_eq!((ev_str(xmas, "ScanType"), xmas.dst), ("Vertical", Some(dst)));
    // Counted: the targets the XMAS probes reached so far, not the SYN scan's 200.
    assert!((15.0..=60.0).contains(&ev_f64(xmas, "Failures")), "{}", json(xmas));
    assert!(xmas.time.as_secs_f64() < 300.0 + 0.01 * 20.0, "XMAS alerted late at {}", xmas.time);
    assert_eq!(xmas.severity, "High");
    assert!(alerts[2].time.as_secs_f64() < 900.0 + 0.01 * 20.0);
}

#[test]
fn tcp_then_udp_scan_from_one_source_are_two_findings() {
    let (src, dst) = (ip("198.51.100.9"), ip("192.0.2.20"));
    let mut f = Feed::new();
    probes(&mut f, 10.0, src, dst, SYN, 200);
    for p in 1..=200u16 {
        let udp = Fate::Udp { answered: false, unreachable: true, src_bytes: 0, dst_bytes: 0 };
        f.session(100.0 + p as f64 * 0.01, src, dst, 33001, p, udp);
    }
    let alerts = scan(&config(), f);
    let kinds: Vec<&str> = alerts.iter().map(|a| ev_str(a, "ProbeType")).collect();
    assert_eq!(kinds, ["SYN", "UDP"], "{alerts:?}");
}

#[test]
fn probe_types_fold_connect_and_half_open_into_syn() {
    use super::probe::{ProbeKind, PROBE_KINDS};
    for i in 0..PROBE_KINDS {
        let k = ProbeKind::from_index(i);
        let expect = match k {
            ProbeKind::Syn | ProbeKind::Connect | ProbeKind::HalfOpen => ProbeKind::Syn.index(),
            k => k.index(),
        };
        assert_eq!(super::scan::probe_class(k), expect, "{k:?}");
    }
}

/// An ACK scan is judged at each probe's end (its start is deferred), so those ends show
/// the source: while one-off sources keep the table full, the scanner's second probe
/// brings it into the table (a refresh would leave it in the nursery, overwritten
/// every few probes), and the scan is found.
#[test]
fn an_ack_scan_is_found_while_one_off_sources_keep_the_table_full() {
    let mut cfg = config();
    cfg.enhanced.scan_max_sources = 1024;
    let mut f = Feed::new();
    let mut rng = SplitMix64(7);
    let (scanner, dst) = (ip("203.0.113.66"), ip("192.0.2.10"));
    // 4 000 one-off sources a second for 30 s: the table fills in the first second.
    for i in 0..120_000 {
        let src = IpAddr::V4(Ipv4Addr::from(0x0b00_0000 | rng.below(1 << 24) as u32));
        f.session(i as f64 * 0.000_25, src, dst, 40000, 80, Fate::Rej);
    }
    // A filtered host: bare ACKs left unanswered (ended by the 10 s timeout), 10 ms apart.
    for p in 1..=100u16 {
        let first = FirstPacket { tcp_flags: ACK, ttl: 50, ip_id: p, tcp_window: 1024, tcp_seq: 0, payload_len: 0 };
        f.session_with(
            10.0 + p as f64 * 0.01,
            scanner,
            dst,
            33000,
            p,
            Fate::Stealth { flags: ACK, closed: false },
            first,
        );
    }
    let mut det = ScanDetector::new(&cfg);
    let alerts = f.run(&mut det);
    assert!(det.usage().evictions() > 100_000, "{:?}", det.usage());
    let found: Vec<_> = alerts.iter().filter(|a| a.src == scanner).collect();
    assert_eq!(found.len(), 1, "{alerts:?}");
    assert_eq!(ev_str(found[0], "ProbeType"), "ACK");
}
