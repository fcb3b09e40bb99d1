//! Correctness against an independent tool: for real captures, flowsentry's per-session
//! packet and byte counts (each direction) agree with tshark's dissection of the same
//! file. Sessions are compared per 5-tuple (all records of a tuple summed), so the
//! two tools' different views of where one session ends and the next begins on a reused
//! tuple do not matter; every packet and every IP-layer byte must be accounted for.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::process::Command;

/// (proto, ip a, port a, ip b, port b) in the direction "a sent to b".
type Dir = (u8, String, u16, String, u16);

/// Per direction: (packets, IP-layer bytes) as tshark counts them.
fn tshark_counts(file: &std::path::Path) -> BTreeMap<Dir, (u64, u64)> {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(file)
        .args([
            "-Y",
            "(tcp or udp) and not icmp and not icmpv6 and not (ip.flags.mf == 1 or ip.frag_offset > 0) and not ipv6.fragment",
            "-T",
            "fields",
            "-E",
            "separator=\t",
            "-E",
            "aggregator=|",
            "-e",
            "ip.src",
            "-e",
            "ipv6.src",
            "-e",
            "ip.dst",
            "-e",
            "ipv6.dst",
            "-e",
            "tcp.srcport",
            "-e",
            "udp.srcport",
            "-e",
            "tcp.dstport",
            "-e",
            "udp.dstport",
            "-e",
            "ip.len",
            "-e",
            "ipv6.plen",
        ])
        .output()
        .expect("run tshark");
    assert!(out.status.success(), "tshark failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut map = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        if line.contains('|') {
            continue; // tunnels: several IP headers in one frame
        }
        let f: Vec<&str> = line.split('\t').collect();
        let pick = |a: &str, b: &str| if a.is_empty() { b.to_string() } else { a.to_string() };
        let (src, dst) = (pick(f[0], f[1]), pick(f[2], f[3]));
        let (proto, sport, dport) = if !f[4].is_empty() { (6u8, f[4], f[6]) } else { (17u8, f[5], f[7]) };
        let bytes: u64 = if !f[8].is_empty() { f[8].parse().unwrap() } else { f[9].parse::<u64>().unwrap() + 40 };
        let e = map.entry((proto, src, sport.parse().unwrap(), dst, dport.parse().unwrap())).or_insert((0, 0));
        e.0 += 1;
        e.1 += bytes;
    }
    map
}

/// The same per-direction totals from flowsentry's records, and the tuples that some
/// ICMP error quoted: flowsentry folds such errors into the quoted session (counted
/// opposite to the packet they quote) while tshark counts them as ICMP, so those tuples
/// are left out of the comparison.
fn flowsentry_counts(file: &std::path::Path) -> (BTreeMap<Dir, (u64, u64)>, usize, Vec<Dir>) {
    let o = run(&["replay", "--rules", "sentinel", "--records", "-", "--alerts", "/dev/null", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let records = json_lines(&stdout(&o));
    let mut map = BTreeMap::new();
    let mut n = 0;
    let mut quoted = Vec::new();
    for r in &records {
        let proto = match r["NetworkProtocol"].as_str().unwrap() {
            "TCP" => 6u8,
            "UDP" => 17,
            _ => continue,
        };
        n += 1;
        let s = r["SrcIpAddr"].as_str().unwrap().to_string();
        let d = r["DstIpAddr"].as_str().unwrap().to_string();
        let sp = r["SrcPortNumber"].as_u64().unwrap() as u16;
        let dp = r["DstPortNumber"].as_u64().unwrap() as u16;
        let num = |k: &str| r[k].as_u64().unwrap();
        if r["AdditionalFields"].get("IcmpErrors").is_some() {
            quoted.push((proto, s.clone(), sp, d.clone(), dp));
            quoted.push((proto, d.clone(), dp, s.clone(), sp));
        }
        for (key, p, b) in [
            ((proto, s.clone(), sp, d.clone(), dp), num("SrcPackets"), num("SrcBytes")),
            ((proto, d, dp, s, sp), num("DstPackets"), num("DstBytes")),
        ] {
            if p == 0 {
                continue;
            }
            let e = map.entry(key).or_insert((0, 0));
            e.0 += p;
            e.1 += b;
        }
    }
    (map, n, quoted)
}

fn assert_agrees(file: std::path::PathBuf, min_sessions: usize) {
    if !have("tshark") {
        assert!(std::env::var_os("FLOWSENTRY_REQUIRE_ROOT_TESTS").is_none(), "tshark is missing");
        eprintln!("skipped: tshark not installed");
        return;
    }
    let mut theirs = tshark_counts(&file);
    let (mut ours, sessions, quoted) = flowsentry_counts(&file);
    for k in &quoted {
        theirs.remove(k);
        ours.remove(k);
    }
    if min_sessions > 1 {
        assert!(theirs.len() >= min_sessions / 2, "{}: too little left to compare", file.display());
    }
    assert!(sessions >= min_sessions, "{}: only {sessions} TCP/UDP records", file.display());
    let mut diffs = Vec::new();
    for (k, v) in &theirs {
        if ours.get(k) != Some(v) {
            diffs.push(format!("{k:?}: tshark {v:?}, flowsentry {:?}", ours.get(k)));
        }
    }
    for (k, v) in &ours {
        if !theirs.contains_key(k) {
            diffs.push(format!("{k:?}: only flowsentry {v:?}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{}: {} of {} directions differ, e.g.\n{}",
        file.display(),
        diffs.len(),
        theirs.len(),
        diffs.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn nmap_syn_scan_counts_match_tshark() {
    assert_agrees(shared_pcap("scan_nmap_tcp_syn__evilfingers.pcap"), 1000);
}

#[test]
fn masscan_vlan_counts_match_tshark() {
    assert_agrees(shared_pcap("scan_masscan_tcp_0-1000__esnet.pcap"), 1000);
}

#[test]
fn quasar_beacon_counts_match_tshark() {
    assert_agrees(shared_pcap("beacon_quasarrat_tcp1337_3.5s__corelight.pcap"), 100);
}

#[test]
fn empire_and_smb_counts_match_tshark() {
    assert_agrees(shared_pcap("beacon_empire_http_5s__elcabezzonn_wmi_to_vss.pcap"), 40);
}

#[test]
fn workstation_44min_counts_match_tshark() {
    assert_agrees(shared_pcap("benign_ad_workstation_browsing_44min__elcabezzonn_aug_16_par4.pcap"), 500);
}

#[test]
fn pcapng_iot_counts_match_tshark() {
    assert_agrees(shared_pcap("benign_iot_amazon_echo_3min__ndpi_alexa-app.pcapng"), 100);
}

#[test]
fn project_captures_match_tshark() {
    let dir = repo().join("captures");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "pcap") {
            assert_agrees(p, 1);
            n += 1;
        }
    }
    assert!(n >= 5, "expected the bundled captures in {}", dir.display());
}
