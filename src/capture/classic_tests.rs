//! The fast classic-pcap reader against libpcap, frame by frame and error by error:
//! every real capture, files in every byte order and timestamp precision, lying record
//! headers, truncation at every byte offset, and randomly corrupted files. Every case is
//! also read as a stream — through a pipe, gzip-compressed and zstd-compressed — and
//! must give the same frames and errors as libpcap reading the plain file.

use super::*;
use crate::capture::test_streams::{rename, streams, Via};
use crate::time::Timestamp;
use proptest::prelude::*;
use std::path::PathBuf;

/// Everything a replay sees from a list of files: each frame and each error, in order.
#[derive(Debug, PartialEq)]
enum Item {
    Frame { link: LinkType, ts: Timestamp, wire_len: u32, data: Vec<u8> },
    Error(String),
}

fn read_all(paths: &[String], mode: ReadMode) -> (Result<Vec<Item>, String>, u64) {
    let mut src = match FileSource::open_with(paths, None, mode) {
        Ok(s) => s,
        Err(e) => return (Err(e.to_string()), 0),
    };
    let mut items = Vec::new();
    loop {
        match src.next_frame() {
            Ok(Some(f)) => {
                items.push(Item::Frame { link: f.link, ts: f.ts, wire_len: f.wire_len, data: f.data.to_vec() })
            }
            Ok(None) => break,
            Err(e) => items.push(Item::Error(e.to_string())),
        }
    }
    (Ok(items), src.fast_frames())
}

/// Both readers give the same items, for the files and for the same bytes arriving as
/// streams; returns (frames, errors, frames the fast reader read).
fn same_as_libpcap(paths: &[String]) -> (usize, usize, u64) {
    let (slow, slow_fast_frames) = read_all(paths, ReadMode::Libpcap);
    assert_eq!(slow_fast_frames, 0);
    let (fast, fast_frames) = read_all(paths, ReadMode::Fast);
    assert_same(paths, "file", &fast, &slow);
    // A scratch directory per thread: tests run in parallel.
    let scratch = temp_path(&format!("streams-{:?}", std::thread::current().id()), "");
    for via in Via::ALL {
        let (names, pipes, renames) = streams(paths, via, &scratch);
        let (streamed, streamed_fast) = read_all(&names, ReadMode::Fast);
        drop(pipes);
        let streamed = match streamed {
            Ok(items) => Ok(items
                .into_iter()
                .map(|i| match i {
                    Item::Error(e) => Item::Error(rename(&e, &renames)),
                    frame => frame,
                })
                .collect()),
            Err(e) => Err(rename(&e, &renames)),
        };
        assert_same(paths, &format!("{via:?}"), &streamed, &slow);
        assert_eq!(streamed_fast, fast_frames, "{paths:?} {via:?}: frames read by the fast reader");
    }
    let items = fast.unwrap_or_default();
    let errors = items.iter().filter(|i| matches!(i, Item::Error(_))).count();
    (items.len() - errors, errors, fast_frames)
}

/// Panics with both lists, briefly, when `fast` differs from libpcap's `slow`.
fn assert_same(paths: &[String], how: &str, fast: &Result<Vec<Item>, String>, slow: &Result<Vec<Item>, String>) {
    if fast != slow {
        let brief = |r: &Result<Vec<Item>, String>| -> Vec<String> {
            match r {
                Ok(items) => items
                    .iter()
                    .map(|i| match i {
                        Item::Frame { link, ts, wire_len, data } => {
                            format!("{link:?} {ts:?} {wire_len} {}", data.len())
                        }
                        Item::Error(e) => e.clone(),
                    })
                    .collect(),
                Err(e) => vec![e.clone()],
            }
        };
        panic!("{paths:?} ({how})\nfast:    {:?}\nlibpcap: {:?}", brief(fast), brief(slow));
    }
}

fn temp_path(test: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flowsentry-classic-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A record header plus data: (seconds, fraction, caplen, len, bytes).
type Rec = (u32, u32, u32, u32, Vec<u8>);

/// A classic pcap file: `big` = written big-endian, `nanos` = nanosecond magic.
fn pcap_bytes(big: bool, nanos: bool, snaplen: u32, dlt: u32, recs: &[Rec]) -> Vec<u8> {
    let w32 = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&if big { x.to_be_bytes() } else { x.to_le_bytes() });
    let w16 = |v: &mut Vec<u8>, x: u16| v.extend_from_slice(&if big { x.to_be_bytes() } else { x.to_le_bytes() });
    let mut v = Vec::new();
    w32(&mut v, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
    w16(&mut v, 2);
    w16(&mut v, 4);
    v.extend_from_slice(&[0; 8]);
    w32(&mut v, snaplen);
    w32(&mut v, dlt);
    for (sec, frac, caplen, len, data) in recs {
        for x in [*sec, *frac, *caplen, *len] {
            w32(&mut v, x);
        }
        v.extend_from_slice(data);
    }
    v
}

fn write(test: &str, bytes: &[u8]) -> String {
    let path = temp_path(test, "f.pcap");
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

fn udp_frame(payload: usize) -> Vec<u8> {
    let mut f = Vec::new();
    etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4([192, 0, 2, 1], [198, 51, 100, 2], 64)
        .udp(5353, 53)
        .write(&mut f, &vec![7u8; payload])
        .unwrap();
    f
}

fn shared_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/pcaps"))
}

#[test]
fn every_real_and_bundled_capture_reads_the_same_as_through_libpcap() {
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [shared_dir(), PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/captures"))] {
        for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut fast_total = 0;
    for f in &files {
        let path = f.to_str().unwrap().to_string();
        let (frames, errors, fast) = same_as_libpcap(std::slice::from_ref(&path));
        assert!(frames > 0 && errors == 0, "{path}");
        let magic = std::fs::read(f).unwrap()[..4].to_vec();
        let classic =
            [0xa1b2_c3d4u32, 0xa1b2_3c4d].iter().any(|m| magic == m.to_le_bytes() || magic == m.to_be_bytes());
        assert_eq!(fast, if classic { frames as u64 } else { 0 }, "{path}: which reader");
        fast_total += fast;
    }
    assert!(files.len() >= 16 && fast_total > 10_000, "{} files, {fast_total} fast frames", files.len());
    // All of them in one replay (link types and readers change between files).
    let all: Vec<String> = files.iter().map(|f| f.to_str().unwrap().to_string()).collect();
    same_as_libpcap(&all);
}

#[test]
fn byte_order_precision_and_odd_headers_match_libpcap() {
    let f = udp_frame(100);
    let n = f.len() as u32;
    for big in [false, true] {
        for nanos in [false, true] {
            for snaplen in [0, 60, 65535, 262_144, 300_000, 0x8000_0000, u32::MAX] {
                let recs: Vec<Rec> = vec![
                    (1_700_000_000, 123_456, n, n, f.clone()),
                    // caplen > len, len 0, caplen 0
                    (1_700_000_001, 999_999, n, 10, f.clone()),
                    (1_700_000_002, 0, n, 0, f.clone()),
                    (1_700_000_003, 5, 0, 60, Vec::new()),
                    // seconds and fractions with the top bit set; fraction past one second
                    (0x8000_0001, 0xffff_ffff, n, n, f.clone()),
                    (7, 2_000_000_000, n, n, f.clone()),
                ];
                let path = write("odd", &pcap_bytes(big, nanos, snaplen, 1, &recs));
                let (frames, errors, fast) = same_as_libpcap(std::slice::from_ref(&path));
                assert_eq!((frames, errors), (6, 0), "big={big} nanos={nanos} snaplen={snaplen}");
                assert_eq!(fast, 6);
            }
        }
    }
}

#[test]
fn impossible_and_truncated_records_give_libpcaps_errors() {
    let f = udp_frame(40);
    let n = f.len() as u32;
    let ok: Rec = (1, 0, n, n, f.clone());
    for (caplen, body) in [(262_145u32, vec![0u8; 300]), (u32::MAX, Vec::new()), (262_144, vec![1u8; 262_144])] {
        let path = write("huge", &pcap_bytes(false, false, 65535, 1, &[ok.clone(), (2, 0, caplen, caplen, body)]));
        let (frames, errors, _) = same_as_libpcap(std::slice::from_ref(&path));
        assert_eq!(frames + errors, 2, "caplen {caplen}");
    }
    // Truncated at every offset of a three-record file, in both byte orders.
    for big in [false, true] {
        let bytes = pcap_bytes(big, false, 65535, 1, &[ok.clone(), ok.clone(), (3, 0, n, n, f.clone())]);
        for cut in 0..bytes.len() {
            let path = write("cut", &bytes[..cut]);
            same_as_libpcap(std::slice::from_ref(&path));
        }
    }
}

#[test]
fn a_broken_file_does_not_stop_the_next_one() {
    let f = udp_frame(10);
    let n = f.len() as u32;
    let broken = pcap_bytes(false, false, 65535, 1, &[(1, 0, n, n, f.clone()), (2, 0, n, n, f[..5].to_vec())]);
    let good = pcap_bytes(true, true, 65535, 1, &[(3, 0, n, n, f.clone())]);
    let a = temp_path("two", "a.pcap");
    let b = temp_path("two", "b.pcap");
    std::fs::write(&a, broken).unwrap();
    std::fs::write(&b, good).unwrap();
    let paths = [a.to_str().unwrap().to_string(), b.to_str().unwrap().to_string()];
    assert_eq!(same_as_libpcap(&paths), (2, 1, 2));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    /// Random overwrites of a valid file's bytes (header fields, lengths, data) and a
    /// random cut: both readers still agree on every frame and error.
    #[test]
    fn corrupted_files_read_the_same(
        big in any::<bool>(),
        nanos in any::<bool>(),
        sizes in proptest::collection::vec(0usize..300, 1..6),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let recs: Vec<Rec> = sizes
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                let f = udp_frame(s);
                (1_000 + i as u32, 17, f.len() as u32, f.len() as u32, f)
            })
            .collect();
        let mut bytes = pcap_bytes(big, nanos, 65535, 1, &recs);
        for (at, v) in &edits {
            // Keep the 24-byte file header intact half of the time so records are reached.
            let i = at.index(bytes.len());
            if i >= 24 || v & 1 == 0 {
                bytes[i] = *v;
            }
        }
        let keep = cut.index(bytes.len() + 1);
        let path = write("prop", &bytes[..keep]);
        same_as_libpcap(std::slice::from_ref(&path));
    }
}
