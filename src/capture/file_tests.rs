//! FileSource against the real captures in ../shared/pcaps (counts measured with
//! tcpdump) and against broken files made here: truncated, not a capture, missing,
//! unsupported link type, and a link type change between files.

use super::*;
use crate::decode::{decode, SkipReason, Transport};
use std::net::IpAddr;
use std::path::PathBuf;

fn shared(name: &str) -> String {
    format!("{}/../shared/pcaps/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A path in a fresh per-test temporary directory.
fn temp_path(test: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flowsentry-file-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A classic little-endian microsecond pcap with `dlt` and the given frames.
fn write_pcap(path: &PathBuf, dlt: u32, frames: &[(u32, u32, &[u8])]) {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&65535u32.to_le_bytes());
    v.extend_from_slice(&dlt.to_le_bytes());
    for (sec, usec, data) in frames {
        v.extend_from_slice(&sec.to_le_bytes());
        v.extend_from_slice(&usec.to_le_bytes());
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
    }
    std::fs::write(path, v).unwrap();
}

#[derive(Default, Debug, PartialEq)]
struct Tally {
    frames: u64,
    decoded: u64,
    skipped: [u64; 4],
}

fn tally(paths: &[String]) -> Tally {
    let mut src = FileSource::open(paths).unwrap();
    let mut t = Tally::default();
    while let Some(frame) = src.next_frame().unwrap() {
        t.frames += 1;
        match decode(frame.link, &frame) {
            Ok(_) => t.decoded += 1,
            Err(reason) => t.skipped[reason.index()] += 1,
        }
    }
    t
}

/// (file, frames, IP packets) from `tshark -r FILE [-Y "ip or ipv6"] | wc -l`; none holds IP fragments.
const MEASURED: [(&str, u64, u64); 9] = [
    ("benign_ad_workstation_browsing_44min__elcabezzonn_aug_16_par4.pcap", 7645, 7645),
    ("beacon_empire_http_5s__elcabezzonn_wmi_to_vss.pcap", 635, 635),
    ("beacon_quasarrat_tcp1337_3.5s__corelight.pcap", 3874, 3155),
    ("benign_iot_amazon_echo_3min__ndpi_alexa-app.pcapng", 3103, 3074),
    ("scan_horizontal_telnet_hideandseek_botnet__slips_test7.pcap", 2000, 1969),
    ("scan_nmap_tcp_syn__evilfingers.pcap", 2020, 2011),
    ("scan_nmap_udp__evilfingers.pcap", 2028, 2027),
    ("scan_nmap_xmas__evilfingers.pcap", 2000, 2000),
    // all 1005 are 802.1Q-tagged (VLAN 943)
    ("scan_masscan_tcp_0-1000__esnet.pcap", 1005, 1005),
];

#[test]
fn shared_captures_decode_like_tcpdump_counts() {
    for (name, frames, ip) in MEASURED {
        let t = tally(&[shared(name)]);
        assert_eq!(t.frames, frames, "{name}: frames");
        assert_eq!(t.decoded, ip, "{name}: decoded IP packets ({t:?})");
        assert_eq!(t.skipped[SkipReason::NonIp.index()], frames - ip, "{name}: non-IP");
    }
}

#[test]
fn masscan_frames_carry_vlan_943() {
    let mut src = FileSource::open(&[shared("scan_masscan_tcp_0-1000__esnet.pcap")]).unwrap();
    let mut syns = 0;
    while let Some(frame) = src.next_frame().unwrap() {
        let m = decode(LinkType::Ethernet, &frame).unwrap();
        assert_eq!(m.vlan, Some(943));
        if let Transport::Tcp { flags: 0x02, .. } = m.transport {
            assert_eq!(m.dst, "198.124.152.15".parse::<IpAddr>().unwrap());
            syns += 1;
        }
    }
    assert!(syns >= 1001, "masscan probes 1001 ports, saw {syns} SYNs");
}

#[test]
fn timestamps_have_full_precision_and_files_play_in_order() {
    let a = shared("scan_nmap_udp__evilfingers.pcap");
    let b = shared("benign_iot_amazon_echo_3min__ndpi_alexa-app.pcapng");
    let mut src = FileSource::open(&[a.clone(), b]).unwrap();
    let first = src.next_frame().unwrap().unwrap().ts;
    assert_eq!(first, Timestamp::from_sec_nsec(1231042114, 960_241_000));
    let mut last = first;
    let mut n = 1;
    while let Some(f) = src.next_frame().unwrap() {
        n += 1;
        if n == 2029 {
            // first packet of the pcapng (tcpdump --nano -tt)
            assert_eq!(f.ts, Timestamp::from_sec_nsec(1490976022, 526_783_000));
        }
        last = f.ts;
    }
    assert_eq!(n, 2028 + 3103);
    assert!(last > first);
    assert_eq!(src.packets_per_file(), &[2028, 3103]);
    assert_eq!(src.paths()[0], a);
}

#[test]
fn truncated_file_delivers_good_packets_then_names_the_file() {
    let full = std::fs::read(shared("scan_nmap_udp__evilfingers.pcap")).unwrap();
    let path = temp_path("trunc", "cut.pcap");
    std::fs::write(&path, &full[..100_000]).unwrap();
    let path = path.to_str().unwrap().to_string();
    let mut src = FileSource::open(std::slice::from_ref(&path)).unwrap();
    let mut good = 0;
    let err = loop {
        match src.next_frame() {
            Ok(Some(_)) => good += 1,
            Ok(None) => panic!("truncation not reported after {good} packets"),
            Err(e) => break e,
        }
    };
    // tcpdump -r on the same cut file prints 1394 packets, then "truncated dump file".
    assert_eq!(good, 1394);
    let msg = err.to_string();
    assert!(matches!(err, CaptureError::ReadFile { .. }), "{msg}");
    assert!(msg.contains(&path) && msg.contains("truncated dump file"), "{msg}");
    assert!(!msg.contains('\n'));
    assert!(src.next_frame().unwrap().is_none());
}

#[test]
fn truncated_pcapng_is_reported_too() {
    let full = std::fs::read(shared("benign_iot_amazon_echo_3min__ndpi_alexa-app.pcapng")).unwrap();
    let path = temp_path("truncng", "cut.pcapng");
    std::fs::write(&path, &full[..300_000]).unwrap();
    let mut src = FileSource::open(&[path.to_str().unwrap()]).unwrap();
    let mut good = 0;
    let err = loop {
        match src.next_frame() {
            Ok(Some(_)) => good += 1,
            Ok(None) => panic!("truncation not reported"),
            Err(e) => break e,
        }
    };
    assert_eq!(good, 827); // tshark: 827 packets; tcpdump then says "truncated pcapng dump file"
    assert!(err.to_string().contains("truncated pcapng dump file"), "{err}");
}

#[test]
fn open_errors_name_the_file() {
    let missing = temp_path("missing", "nope.pcap");
    let err = FileSource::open(&[missing.to_str().unwrap()]).err().unwrap();
    let msg = err.to_string();
    assert!(msg.contains("nope.pcap") && msg.contains("no such file"), "{msg}");

    let text = temp_path("notcap", "notes.pcap");
    std::fs::write(&text, "this is not a capture file, just some text\n").unwrap();
    let err = FileSource::open(&[text.to_str().unwrap()]).err().unwrap();
    let msg = err.to_string();
    assert!(matches!(err, CaptureError::OpenFile { .. }));
    assert!(msg.contains("notes.pcap") && msg.contains("format"), "{msg}");

    let wifi = temp_path("dlt", "wifi.pcap");
    write_pcap(&wifi, 105, &[]);
    // A bad last file fails before anything is read.
    let err =
        FileSource::open(&[shared("scan_nmap_xmas__evilfingers.pcap"), wifi.to_str().unwrap().into()]).err().unwrap();
    let msg = err.to_string();
    assert!(msg.contains("wifi.pcap") && msg.contains("105") && msg.contains("IEEE802_11"), "{msg}");
    assert!(FileSource::open::<&str>(&[]).is_err());
}

#[test]
fn each_frame_carries_its_own_files_link_type() {
    let raw = temp_path("links", "raw.pcap");
    let mut ip = Vec::new();
    etherparse::PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 9).udp(1, 2).write(&mut ip, b"x").unwrap();
    write_pcap(&raw, 101, &[(10, 5, &ip), (11, 0, &ip)]);
    let null = temp_path("links", "null.pcap");
    let looped = [2u32.to_le_bytes().as_slice(), &ip].concat();
    write_pcap(&null, 0, &[(12, 0, &looped)]);
    let paths = [raw.to_str().unwrap(), null.to_str().unwrap()];
    let mut src = FileSource::open(&paths).unwrap();
    let mut seen = Vec::new();
    while let Some(frame) = src.next_frame().unwrap() {
        let m = decode(frame.link, &frame).unwrap();
        assert_eq!(m.ttl, 9);
        seen.push((frame.link, frame.ts));
    }
    assert_eq!(
        seen,
        vec![
            (LinkType::Raw, Timestamp::from_sec_usec(10, 5)),
            (LinkType::Raw, Timestamp::from_sec_usec(11, 0)),
            (LinkType::Null, Timestamp::from_sec_usec(12, 0)),
        ]
    );
}
