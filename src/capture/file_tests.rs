//! FileSource against the real captures in ../shared/pcaps (counts measured with
//! tcpdump) and against broken files made here: truncated, not a capture, missing,
//! unsupported link type, and a link type change between files.

use super::*;
use crate::decode::{decode, SkipReason, Transport};
use crate::time::Timestamp;
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
        assert_eq!(m.vlan.get(), Some(943));
        if let Transport::Tcp { flags: 0x02, .. } = m.transport {
            assert_eq!(m.dst(), "198.124.152.15".parse::<IpAddr>().unwrap());
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
    assert_eq!(src.packets_per_file(), vec![2028, 3103]);
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
        assert_eq!(m.ttl(), 9);
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

/// One frame (link, time, wire length, bytes) or error.
type Item = Result<(LinkType, Timestamp, u32, Vec<u8>), String>;

/// Every frame and error of a source, in order.
fn items(src: &mut FileSource) -> Vec<Item> {
    let mut out = Vec::new();
    loop {
        match src.next_frame() {
            Ok(Some(f)) => out.push(Ok((f.link, f.ts, f.wire_len, f.data.to_vec()))),
            Ok(None) => return out,
            Err(e) => out.push(Err(e.to_string())),
        }
    }
}

/// Frame times in milliseconds, and errors.
fn times(items: &[Item]) -> Vec<Result<i64, String>> {
    items.iter().map(|i| i.as_ref().map(|f| f.1 .0 / 1_000_000).map_err(|e| e.clone())).collect()
}

/// A one-byte-payload IPv4/UDP frame whose TTL tells which file it came from.
fn tagged(ttl: u8) -> Vec<u8> {
    let mut f = Vec::new();
    etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4([192, 0, 2, 1], [198, 51, 100, 2], ttl)
        .udp(1000, 53)
        .write(&mut f, b"x")
        .unwrap();
    f
}

#[test]
fn bpf_filtered_streams_read_like_libpcap_opening_the_file() {
    use crate::capture::test_streams::{rename, streams, Via};
    let files = [
        shared("beacon_quasarrat_tcp1337_3.5s__corelight.pcap"),
        shared("benign_iot_amazon_echo_3min__ndpi_alexa-app.pcapng"),
    ];
    for filter in ["tcp", "udp port 53 or icmp", "greater 200"] {
        let mut reference = FileSource::open_with(&files, Some(filter), ReadMode::Libpcap).unwrap();
        let want = items(&mut reference);
        assert!(want.len() > 100, "{filter}: {} frames", want.len());
        let mut fed = FileSource::open_filtered(&files, Some(filter)).unwrap();
        assert_eq!(items(&mut fed), want, "{filter}: files through the feeder");
        assert_eq!(fed.fast_frames(), 0, "a filter leaves every file to libpcap");
        let scratch = temp_path("bpf", "streams");
        std::fs::create_dir_all(&scratch).unwrap();
        for via in Via::ALL {
            let (names, pipes, renames) = streams(&files, via, &scratch);
            let mut src = FileSource::open_filtered(&names, Some(filter)).unwrap();
            let got: Vec<_> = items(&mut src).into_iter().map(|i| i.map_err(|e| rename(&e, &renames))).collect();
            drop(pipes);
            assert_eq!(got, want, "{filter} via {via:?}");
        }
    }
}

#[test]
fn inputs_merge_by_packet_time_whatever_their_order() {
    let (a, b, c) = (temp_path("merge", "a.pcap"), temp_path("merge", "b.pcap"), temp_path("merge", "c.pcap"));
    write_pcap(&a, 1, &[(1, 0, &tagged(1)), (3, 0, &tagged(1)), (5, 0, &tagged(1))]);
    write_pcap(&b, 1, &[(2, 0, &tagged(2)), (3, 0, &tagged(2)), (4, 0, &tagged(2))]);
    write_pcap(&c, 1, &[(0, 500_000, &tagged(3)), (9, 0, &tagged(3))]);
    let (a, b, c) = (a.to_str().unwrap(), b.to_str().unwrap(), c.to_str().unwrap());
    let order = |paths: &[&str]| -> Vec<(i64, u8)> {
        let mut src = FileSource::open(paths).unwrap();
        let mut out = Vec::new();
        while let Some(f) = src.next_frame().unwrap() {
            out.push((f.ts.0 / 1_000_000, decode(f.link, &f).unwrap().ttl()));
        }
        out
    };
    // Equal times (3 s) go in command-line order.
    assert_eq!(
        order(&[a, b, c]),
        vec![(500, 3), (1000, 1), (2000, 2), (3000, 1), (3000, 2), (4000, 2), (5000, 1), (9000, 3)]
    );
    assert_eq!(
        order(&[c, b, a]),
        vec![(500, 3), (1000, 1), (2000, 2), (3000, 2), (3000, 1), (4000, 2), (5000, 1), (9000, 3)]
    );
    // Real captures years apart, newest first on the command line: oldest packets first.
    let old = shared("scan_nmap_udp__evilfingers.pcap");
    let new = shared("benign_iot_amazon_echo_3min__ndpi_alexa-app.pcapng");
    let forward = items(&mut FileSource::open(&[old.clone(), new.clone()]).unwrap());
    let mut src = FileSource::open(&[new, old]).unwrap();
    assert_eq!(items(&mut src), forward);
    assert_eq!(src.packets_per_file(), vec![3103, 2028]);
}

#[test]
fn a_broken_input_stops_only_itself_in_a_merge() {
    let (a, b) = (temp_path("mergebroken", "a.pcap"), temp_path("mergebroken", "b.pcap"));
    write_pcap(&a, 1, &[(1, 0, &tagged(1)), (3, 0, &tagged(1)), (5, 0, &tagged(1))]);
    let cut = std::fs::read(&a).unwrap().len() - 10;
    std::fs::write(&a, &std::fs::read(&a).unwrap()[..cut]).unwrap();
    write_pcap(&b, 1, &[(2, 0, &tagged(2)), (4, 0, &tagged(2)), (6, 0, &tagged(2))]);
    let paths = [a.to_str().unwrap(), b.to_str().unwrap()];
    let got = times(&items(&mut FileSource::open(&paths).unwrap()));
    let err = format!(
        "error reading capture file {}: truncated dump file; tried to read 43 captured bytes, only got 33",
        paths[0]
    );
    assert_eq!(got, vec![Ok(1000), Ok(2000), Ok(3000), Err(err), Ok(4000), Ok(6000)]);
    // An input broken at its first record is reported before any frame.
    let c = temp_path("mergebroken", "c.pcap");
    write_pcap(&c, 1, &[(7, 0, &tagged(3))]);
    std::fs::write(&c, &std::fs::read(&c).unwrap()[..30]).unwrap();
    let got = times(&items(&mut FileSource::open(&[b.to_str().unwrap(), c.to_str().unwrap()]).unwrap()));
    assert!(matches!(&got[0], Err(e) if e.contains("c.pcap")), "{got:?}");
    assert_eq!(got[1..], [Ok(2000), Ok(4000), Ok(6000)]);
}

#[test]
fn truncated_compressed_inputs_deliver_good_packets_then_name_the_file() {
    use crate::capture::test_streams::{gzip, zstd};
    // Big enough for several zstd blocks (128 KiB each) before the cut.
    for name in [
        "benign_ad_workstation_browsing_44min__elcabezzonn_aug_16_par4.pcap",
        "benign_iot_amazon_echo_3min__ndpi_alexa-app.pcapng",
    ] {
        let plain = items(&mut FileSource::open(&[shared(name)]).unwrap());
        let bytes = std::fs::read(shared(name)).unwrap();
        for (format, packed) in [("gzip", gzip(&bytes)), ("zstd", zstd(&bytes))] {
            let path = temp_path("cutz", &format!("{name}.{format}"));
            std::fs::write(&path, &packed[..packed.len() * 2 / 3]).unwrap();
            let path = path.to_str().unwrap().to_string();
            let got = items(&mut FileSource::open(std::slice::from_ref(&path)).unwrap());
            let (last, good) = got.split_last().unwrap();
            assert!(good.len() > plain.len() / 3, "{name} {format}: {} of {} packets", good.len(), plain.len());
            assert_eq!(good, &plain[..good.len()], "{name} {format}: the packets before the cut");
            let msg = last.clone().unwrap_err();
            assert_eq!(
                msg,
                format!(
                    "error reading capture file {path}: {format} data is truncated (the compressed stream ends early)"
                )
            );
        }
    }
}

#[test]
fn corrupt_compressed_inputs_are_named_as_such() {
    use crate::capture::test_streams::{gzip, zstd};
    let bytes = std::fs::read(shared("scan_nmap_tcp_syn__evilfingers.pcap")).unwrap();
    for (format, mut packed) in [("gzip", gzip(&bytes)), ("zstd", zstd(&bytes))] {
        let mid = packed.len() / 2;
        for b in &mut packed[mid..mid + 40] {
            *b ^= 0x55;
        }
        let path = temp_path("corruptz", &format!("x.{format}"));
        std::fs::write(&path, &packed).unwrap();
        let got = items(&mut FileSource::open(&[path.to_str().unwrap()]).unwrap());
        let errors: Vec<&String> = got.iter().filter_map(|i| i.as_ref().err()).collect();
        assert_eq!(errors.len(), 1, "{format}: {errors:?}");
        assert!(errors[0].contains(&format!("corrupt {format} data")), "{}", errors[0]);
        assert!(got.last().unwrap().is_err() && got.len() > 100, "{format}: {} items", got.len());
    }
}

#[test]
fn progress_counts_the_bytes_of_every_input() {
    use crate::capture::test_streams::{gzip, PipeInput};
    let plain = shared("scan_nmap_xmas__evilfingers.pcap");
    let ng = shared("benign_iot_amazon_echo_3min__ndpi_alexa-app.pcapng");
    let gz = temp_path("progress", "x.pcap.gz");
    std::fs::write(&gz, gzip(&std::fs::read(&plain).unwrap())).unwrap();
    let size = |p: &str| std::fs::metadata(p).unwrap().len();
    let paths = [plain.clone(), ng.clone(), gz.to_str().unwrap().to_string()];
    let total: u64 = paths.iter().map(|p| size(p)).sum();
    let mut src = FileSource::open(&paths).unwrap();
    let start = src.progress().unwrap();
    assert_eq!(start.bytes_total, total);
    // (libpcap's feeder may already have moved a whole small file into its pipe.)
    assert!(start.bytes_read < total, "{start:?}");
    let mut mid = None;
    let mut n = 0;
    while src.next_frame().unwrap().is_some() {
        n += 1;
        if n == 3000 {
            mid = src.progress();
        }
    }
    let mid = mid.unwrap();
    assert!(mid.bytes_read >= start.bytes_read && mid.bytes_read <= total, "{mid:?}");
    assert_eq!(src.progress().unwrap(), InputProgress { bytes_read: total, bytes_total: total });

    // A pipe: the total is unknown, what was read is counted.
    let bytes = std::fs::read(&ng).unwrap();
    let pipe = PipeInput::new(bytes.clone());
    let mut src = FileSource::open(&[pipe.path.as_str()]).unwrap();
    while src.next_frame().unwrap().is_some() {}
    assert_eq!(src.progress().unwrap(), InputProgress { bytes_read: bytes.len() as u64, bytes_total: 0 });
}

#[test]
fn inputs_that_cannot_be_read_are_refused_by_name() {
    let dir = temp_path("refuse", "adir");
    std::fs::create_dir_all(&dir).unwrap();
    let msg = FileSource::open(&[dir.to_str().unwrap()]).err().unwrap().to_string();
    assert!(msg.ends_with("adir: is a directory"), "{msg}");
    let xz = temp_path("refuse", "x.pcap.xz");
    std::fs::write(&xz, [0xfd, b'7', b'z', b'X', b'Z', 0, 0, 4]).unwrap();
    let msg = FileSource::open(&[xz.to_str().unwrap()]).err().unwrap().to_string();
    assert!(msg.contains("x.pcap.xz: xz-compressed"), "{msg}");
    let msg = FileSource::open(&["-", "-"]).err().unwrap().to_string();
    assert!(msg.contains("standard input can be given only once"), "{msg}");
    let gz = temp_path("refuse", "notcap.gz");
    std::fs::write(&gz, crate::capture::test_streams::gzip(b"just some text, no capture here")).unwrap();
    let msg = FileSource::open(&[gz.to_str().unwrap()]).err().unwrap().to_string();
    assert!(msg.contains("notcap.gz: unknown file format"), "{msg}");
}
