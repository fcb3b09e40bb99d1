//! Community ID against Wireshark's own implementation: for every bundled capture and every
//! ../shared/pcaps capture, tshark computes each packet's Community ID
//! (`tshark --enable-protocol communityid -e communityid`), and every flowsentry record's
//! `AdditionalFields.CommunityId` must equal the one tshark gives every packet of that flow
//! (TCP/UDP: the 5-tuple either way; ICMP/ICMPv6: the address pair with the type and its
//! counterpart or code; other protocols: the address pair). Also with a non-zero seed.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

/// How packets and records are matched: the Community ID's own tuple — protocol, then the
/// endpoints (sorted unless one-way ICMP) with their ports, or for ICMP the type and its
/// counterpart (request/reply types) or code (one-way types).
type FlowKey = (u8, (IpAddr, u16), (IpAddr, u16));

fn icmp_counterpart(v6: bool, t: u16) -> Option<u16> {
    let pairs: &[(u16, u16)] = if v6 {
        &[(128, 129), (133, 134), (135, 136), (130, 131), (139, 140), (144, 145)]
    } else {
        &[(8, 0), (13, 14), (15, 16), (10, 9), (17, 18)]
    };
    pairs.iter().find_map(|&(a, b)| {
        if a == t {
            Some(b)
        } else if b == t {
            Some(a)
        } else {
            None
        }
    })
}

fn key(proto: u8, src: IpAddr, dst: IpAddr, ports: Option<(u16, u16)>, icmp: Option<(u16, u16)>) -> FlowKey {
    let (a, b, ordered) = match (icmp, ports) {
        (Some((t, code)), _) => match icmp_counterpart(proto == 58, t) {
            Some(other) => ((src, t), (dst, other), false),
            None => ((src, t), (dst, code), true),
        },
        (None, Some((sp, dp))) => ((src, sp), (dst, dp), false),
        (None, None) => ((src, 0), (dst, 0), false),
    };
    if ordered || a <= b {
        (proto, a, b)
    } else {
        (proto, b, a)
    }
}

/// Community IDs tshark computed per flow key, over the packets whose outer transport is
/// what flowsentry keys on.
fn tshark_ids(pcap: &Path, seed: u16) -> BTreeMap<FlowKey, BTreeSet<String>> {
    let fields = [
        "frame.protocols",
        "ip.src",
        "ip.dst",
        "ipv6.src",
        "ipv6.dst",
        "ip.proto",
        "tcp.srcport",
        "tcp.dstport",
        "udp.srcport",
        "udp.dstport",
        "icmp.type",
        "icmp.code",
        "icmpv6.type",
        "icmpv6.code",
        "communityid",
    ];
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(pcap).args(["--enable-protocol", "communityid", "-o", &format!("communityid.seed:{seed}")]);
    cmd.args(["-T", "fields", "-E", "occurrence=f", "-E", "separator=\t"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark must be installed (tests/install-deps.sh test)");
    assert!(out.status.success(), "tshark on {}: {}", pcap.display(), String::from_utf8_lossy(&out.stderr));
    let mut map: BTreeMap<FlowKey, BTreeSet<String>> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), fields.len(), "{line}");
        let id = f[14];
        if id.is_empty() {
            continue;
        }
        // The outer network and transport layers (IPv6 extension headers skipped).
        let layers: Vec<&str> = f[0].split(':').filter(|l| !l.starts_with("ipv6.")).collect();
        let Some(ip_at) = layers.iter().position(|l| *l == "ip" || *l == "ipv6") else { continue };
        let v6 = layers[ip_at] == "ipv6";
        let (src, dst) = if v6 { (f[3], f[4]) } else { (f[1], f[2]) };
        let (Ok(src), Ok(dst)) = (src.parse::<IpAddr>(), dst.parse::<IpAddr>()) else { continue };
        let num = |s: &str| s.parse::<u16>().ok();
        let k = match layers.get(ip_at + 1).copied() {
            Some("tcp") => key(6, src, dst, num(f[6]).zip(num(f[7])), None),
            Some("udp") => key(17, src, dst, num(f[8]).zip(num(f[9])), None),
            Some("icmp") => key(1, src, dst, None, num(f[10]).zip(num(f[11]))),
            Some("icmpv6") => key(58, src, dst, None, num(f[12]).zip(num(f[13]))),
            _ if !v6 => match f[5].parse::<u8>() {
                Ok(p) if ![1, 6, 17, 58].contains(&p) => key(p, src, dst, None, None),
                _ => continue,
            },
            _ => continue,
        };
        map.entry(k).or_default().insert(id.to_string());
    }
    map
}

fn protocol_number(name: &str) -> u8 {
    match name {
        "TCP" => 6,
        "UDP" => 17,
        "ICMP" => 1,
        "IPv6-ICMP" => 58,
        "IGMP" => 2,
        "GRE" => 47,
        "ESP" => 50,
        "AH" => 51,
        "OSPFIGP" => 89,
        "PIM" => 103,
        "VRRP" => 112,
        "SCTP" => 132,
        other => other.parse().unwrap_or_else(|_| panic!("unknown NetworkProtocol {other}")),
    }
}

fn record_key(r: &Value) -> FlowKey {
    let proto = protocol_number(r["NetworkProtocol"].as_str().unwrap());
    let ip = |k: &str| r[k].as_str().unwrap().parse::<IpAddr>().unwrap();
    let port = |k: &str| r[k].as_u64().map(|p| p as u16);
    let icmp =
        r["NetworkIcmpType"].as_str().map(|_| (icmp_type_number(r), r["NetworkIcmpCode"].as_u64().unwrap() as u16));
    key(proto, ip("SrcIpAddr"), ip("DstIpAddr"), port("SrcPortNumber").zip(port("DstPortNumber")), icmp)
}

/// The ICMP type number behind `NetworkIcmpType` (a name, or the number when unnamed).
fn icmp_type_number(r: &Value) -> u16 {
    let v6 = r["NetworkProtocol"] == "IPv6-ICMP";
    let name = r["NetworkIcmpType"].as_str().unwrap();
    if let Ok(n) = name.parse() {
        return n;
    }
    (0..=255u8)
        .find(|t| flowsentry::output::records::icmp_type_name(v6, *t) == Some(name))
        .unwrap_or_else(|| panic!("unknown ICMP type name {name}")) as u16
}

fn records(pcap: &Path, seed: u16) -> Vec<Value> {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = scratch(&format!("community-id-{}", RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    let path = dir.join("records.jsonl");
    let out = run(&[
        "replay",
        pcap.to_str().unwrap(),
        "--records",
        path.to_str().unwrap(),
        "--alerts",
        dir.join("alerts.jsonl").to_str().unwrap(),
        "--community-id-seed",
        &seed.to_string(),
        "-q",
    ]);
    assert!(out.status.success(), "{}: {}", pcap.display(), stderr(&out));
    let recs = json_lines(&std::fs::read_to_string(&path).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
    recs
}

fn check(pcap: &Path, seed: u16) -> usize {
    let wire = tshark_ids(pcap, seed);
    let recs = records(pcap, seed);
    assert!(!recs.is_empty(), "{}: no records", pcap.display());
    let mut mismatches = Vec::new();
    for r in &recs {
        let ours = r["AdditionalFields"]["CommunityId"].as_str().expect("every record has a CommunityId");
        let k = record_key(r);
        match wire.get(&k) {
            Some(theirs) if theirs.len() == 1 && theirs.contains(ours) => {}
            theirs => mismatches.push(format!("{k:?}: flowsentry {ours}, tshark {theirs:?}")),
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} (seed {seed}): {} of {} records differ from tshark, e.g.\n{}",
        pcap.display(),
        mismatches.len(),
        recs.len(),
        mismatches.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );
    recs.len()
}

#[test]
fn community_ids_equal_tsharks_on_every_capture() {
    let mut total = 0;
    for pcap in all_captures() {
        let n = check(&pcap, 0);
        eprintln!("{}: {n} records, every Community ID equals tshark's", pcap.display());
        total += n;
    }
    assert!(total > 1000, "too few records compared: {total}");
}

#[test]
fn a_seed_changes_the_ids_as_tshark_does() {
    for name in ["demo.pcap", "nmap_syn_v6.pcap", "nmap_udp_v4.pcap"] {
        check(&capture(name), 4242);
    }
}
