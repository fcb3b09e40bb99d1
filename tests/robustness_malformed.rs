//! Malformed captures through the real binary and through the library: a small real
//! capture truncated at every byte offset, bad magic, lying record headers (huge caplen,
//! caplen > len, zero length), and frames with bogus IP/TCP/IPv6/ICMP headers. Nothing
//! may panic; a broken file gives a clear error and exit code 1 after every session
//! decoded before the fault has been reported; bad packets are counted as skipped.

mod robustness_common;

use flowsentry::capture::file::FileSource;
use flowsentry::capture::PacketSource;
use flowsentry::decode::decode;
use flowsentry::flow::{FlowConfig, FlowEvent, FlowRecord, FlowTable};
use flowsentry::synth::Trace;
use flowsentry::time::{Duration as TsDuration, Timestamp};
use robustness_common::common::{json_lines, scratch, stderr, stdout};
use robustness_common::*;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const SMALL: &str = "scan_nmap_tcp_syn__evilfingers.pcap";

/// Records the library makes from a file, plus the capture error (if any).
fn library_records(path: &Path) -> (Vec<FlowRecord>, Option<String>, u64) {
    let mut src = match FileSource::open(&[path.to_str().unwrap()]) {
        Ok(s) => s,
        Err(e) => return (Vec::new(), Some(e.to_string()), 0),
    };
    let mut table = FlowTable::new(FlowConfig::default());
    let mut events = Vec::new();
    let mut error = None;
    let mut read = 0;
    loop {
        match src.next_frame() {
            Ok(Some(f)) => {
                read += 1;
                if let Ok(m) = decode(f.link, &f) {
                    table.ingest_at(&m, &mut events);
                }
            }
            Ok(None) => break,
            Err(e) => {
                assert!(error.is_none(), "one error per broken file");
                error = Some(e.to_string());
            }
        }
    }
    table.flush_all(&mut events);
    let recs = events
        .into_iter()
        .filter_map(|e| match e {
            FlowEvent::End(r) => Some(r),
            FlowEvent::Start(_) | FlowEvent::Exchange(_) => None,
        })
        .collect();
    (recs, error, read)
}

#[test]
fn truncation_at_every_byte_offset_keeps_every_complete_packet() {
    let dir = scratch("trunc-every");
    let small = small_real_capture(&dir, SMALL, 30);
    let bytes = std::fs::read(&small).unwrap();
    let offsets = record_offsets(&bytes);
    assert_eq!(offsets.len(), 31, "30 records");
    // Reference: records of the clean prefix with k complete packets.
    let mut reference = Vec::new();
    for &end in &offsets {
        let p = dir.join("prefix.pcap");
        std::fs::write(&p, &bytes[..end]).unwrap();
        let (recs, err, _) = library_records(&p);
        assert!(err.is_none(), "clean prefix reads without error: {err:?}");
        reference.push(recs);
    }
    let cut = dir.join("cut.pcap");
    for len in 0..bytes.len() {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        let (recs, err, read) = library_records(&cut);
        if len < 24 {
            let err = err.unwrap_or_else(|| panic!("{len}: a cut file header is an error"));
            assert!(err.contains("cannot open capture file"), "{len}: {err}");
            continue;
        }
        // Complete packets before the cut.
        let k = offsets.iter().filter(|&&o| o + 16 <= len).filter(|&&o| {
            let i = offsets.iter().position(|&x| x == o).unwrap();
            i + 1 < offsets.len() && offsets[i + 1] <= len
        });
        let k = k.count();
        assert_eq!(read, k as u64, "{len}: packets read before the fault");
        let at_boundary = offsets.contains(&len);
        assert_eq!(err.is_some(), !at_boundary, "{len}: error only when a record is cut: {err:?}");
        if let Some(e) = &err {
            assert!(e.contains("error reading capture file") && e.contains("cut.pcap"), "{len}: {e}");
        }
        let strip =
            |v: &[FlowRecord]| v.iter().map(|r| (r.src, r.dst, r.sport, r.dport, r.src_packets)).collect::<Vec<_>>();
        assert_eq!(strip(&recs), strip(&reference[k]), "{len}: the sessions of the {k} good packets");
    }
}

#[test]
fn truncated_file_through_the_binary_reports_records_error_and_exit_1() {
    let dir = scratch("trunc-bin");
    let small = small_real_capture(&dir, SMALL, 30);
    let bytes = std::fs::read(&small).unwrap();
    let offsets = record_offsets(&bytes);
    // A handful of cuts: in the file header, mid record header, mid data, at the end.
    let cuts = [10, 24 + 7, offsets[5] + 20, offsets[17] + 3, offsets[29] + 30, bytes.len() - 1];
    for cut in cuts {
        let p = dir.join(format!("cut{cut}.pcap"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let (o, _) = run_within(
            &["replay", "--records", "-", "--alerts", "/dev/null", p.to_str().unwrap()],
            Duration::from_secs(60),
        );
        let err = stderr(&o);
        if cut < 24 {
            assert_eq!(o.status.code(), Some(2), "unopenable file: exit 2\n{err}");
            assert!(err.contains("cannot open capture file") && err.contains(&format!("cut{cut}.pcap")), "{err}");
            continue;
        }
        assert_eq!(o.status.code(), Some(1), "broken file: exit 1\n{err}");
        assert!(err.contains("error reading capture file") && err.contains(&format!("cut{cut}.pcap")), "{err}");
        let k = offsets.windows(2).filter(|w| w[1] <= cut).count();
        let s = summary(&err);
        assert_eq!(s.read, k as u64, "cut {cut}: every complete packet read");
        let recs = json_lines(&stdout(&o));
        assert_eq!(recs.len() as u64, s.records, "cut {cut}: every record written");
        let (lib, _, _) = library_records(&p);
        assert_eq!(recs.len(), lib.len(), "cut {cut}: same sessions as the library sees");
        assert!(!recs.is_empty() || k == 0);
    }
}

#[test]
fn bad_magic_is_a_clear_error() {
    let dir = scratch("bad-magic");
    let mut b = pcap_header(1);
    b[0..4].copy_from_slice(&0xdead_beefu32.to_le_bytes());
    let p = dir.join("magic.pcap");
    std::fs::write(&p, &b).unwrap();
    let (o, _) = run_within(&["replay", p.to_str().unwrap()], Duration::from_secs(30));
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("cannot open capture file") && err.contains("magic.pcap"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// A good TCP session (10.1.0.9 → 203.0.113.9:port) as Ethernet frames.
fn good_session(port: u16, at: Timestamp) -> Vec<(Timestamp, Vec<u8>)> {
    let mut tr = Trace::new(7);
    let c: SocketAddr = "10.1.0.9:40000".parse().unwrap();
    let mut s: SocketAddr = "203.0.113.9:0".parse().unwrap();
    s.set_port(port);
    tr.tcp_session(c, s, at, TsDuration::from_millis(20), 300, 900);
    frames_of(&tr.into_sorted())
}

fn write_pcap(path: &Path, frames: &[(Timestamp, Vec<u8>)]) {
    let mut b = pcap_header(1);
    for (ts, f) in frames {
        let secs = ts.0.div_euclid(1_000_000_000) as u32;
        let us = (ts.0.rem_euclid(1_000_000_000) / 1000) as u32;
        pcap_record(&mut b, secs, us, f.len() as u32, f.len() as u32, f);
    }
    std::fs::write(path, b).unwrap();
}

/// An IPv4/TCP SYN frame from the synthesizer, to be broken in place.
fn syn_v4() -> Vec<u8> {
    let mut tr = Trace::new(3);
    tr.tcp_handshake(
        "198.51.100.7:1234".parse().unwrap(),
        "10.1.0.5:80".parse().unwrap(),
        Timestamp::from_secs(1),
        TsDuration::from_millis(1),
    );
    frames_of(&tr.into_sorted()).remove(0).1
}

fn syn_v6() -> Vec<u8> {
    let mut tr = Trace::new(3);
    tr.tcp_handshake(
        "[2001:db8::7]:1234".parse().unwrap(),
        "[2001:db8:1::5]:80".parse().unwrap(),
        Timestamp::from_secs(1),
        TsDuration::from_millis(1),
    );
    frames_of(&tr.into_sorted()).remove(0).1
}

/// Ethernet + IPv6 header (next header `nh`) + `body`, with payload length set.
fn v6_frame(nh: u8, body: &[u8]) -> Vec<u8> {
    let mut f = syn_v6()[..54].to_vec();
    f[14 + 6] = nh;
    f[14 + 4..14 + 6].copy_from_slice(&(body.len() as u16).to_be_bytes());
    f.extend_from_slice(body);
    f
}

/// Ethernet + IPv4 ICMP (type, code) carrying `quoted` bytes after the 8-byte header.
fn icmp_error_v4(icmp_type: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
    let mut f = syn_v4()[..34].to_vec();
    f[14 + 9] = 1;
    let total = 20 + 8 + quoted.len();
    f[16..18].copy_from_slice(&(total as u16).to_be_bytes());
    f.extend_from_slice(&[icmp_type, code, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(quoted);
    f
}

fn hostile_frames() -> Vec<Vec<u8>> {
    let base = syn_v4();
    let mut v = Vec::new();
    let mut with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = base.clone();
        f(&mut b);
        v.push(b);
    };
    // IPv4 header length (IHL) 0, 3, 15 (past the end).
    for ihl in [0u8, 3, 15] {
        with(&|b| b[14] = 0x40 | ihl);
    }
    // Total length 0, shorter than the header, 65535 (past the capture).
    for tl in [0u16, 12, 65535] {
        with(&|b| b[16..18].copy_from_slice(&tl.to_be_bytes()));
    }
    // TCP data offset 0, 3, 15 (past the end).
    for off in [0u8, 3, 15] {
        with(&|b| b[14 + 20 + 12] = off << 4);
    }
    // Wrong version nibble, frame cut right after the Ethernet header, cut mid TCP.
    with(&|b| b[14] = 0x75);
    with(&|b| b.truncate(14));
    with(&|b| b.truncate(14 + 20 + 7));
    // 50 stacked VLAN tags.
    with(&|b| {
        let mut tags = Vec::new();
        for _ in 0..50 {
            tags.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        }
        b.splice(12..12, tags);
    });
    let mut out = v;
    // IPv6: 200 chained destination-options headers, a routing header chain, a chain
    // whose last header is cut, a hop-by-hop header that is not first.
    let mut chain = Vec::new();
    for _ in 0..200 {
        chain.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
    }
    out.push(v6_frame(60, &chain));
    let mut routing = Vec::new();
    for _ in 0..100 {
        routing.extend_from_slice(&[43, 0, 0, 0, 0, 0, 0, 0]);
    }
    out.push(v6_frame(43, &routing));
    out.push(v6_frame(60, &[60, 255, 0, 0]));
    out.push(v6_frame(60, &[0, 0, 1, 4, 0, 0, 0, 0, 6, 0, 1, 4, 0, 0, 0, 0]));
    // IPv6 payload length larger than the packet, and zero (jumbogram without option).
    let mut big = syn_v6();
    big[18..20].copy_from_slice(&65535u16.to_be_bytes());
    out.push(big);
    let mut zero = syn_v6();
    zero[18..20].copy_from_slice(&0u16.to_be_bytes());
    out.push(zero);
    // ICMP errors quoting garbage, a quoted header with IHL 15, a quoted IPv6 loop,
    // nothing at all, and an ICMPv6 error quoting garbage.
    out.push(icmp_error_v4(3, 3, &[0xff; 40]));
    let mut q = base[14..].to_vec();
    q[0] = 0x4f;
    out.push(icmp_error_v4(3, 1, &q));
    out.push(icmp_error_v4(11, 0, &v6_frame(60, &chain)[14..]));
    out.push(icmp_error_v4(3, 3, &[]));
    out.push(v6_frame(58, &[1, 4, 0, 0, 0, 0, 0, 0, 0x60, 0xff, 0xff]));
    out.push(v6_frame(58, &[1, 4, 0, 0, 0, 0, 0, 0]));
    out
}

#[test]
fn bogus_headers_are_skipped_or_decoded_and_good_sessions_survive() {
    let dir = scratch("bogus-headers");
    let t0 = Timestamp::from_secs(1_714_564_800);
    let mut frames = good_session(1111, t0);
    let hostile = hostile_frames();
    let n_hostile = hostile.len();
    for (i, f) in hostile.into_iter().enumerate() {
        frames.push((Timestamp(t0.0 + 1_000_000_000 + i as i64 * 1000), f));
    }
    frames.extend(good_session(2222, Timestamp(t0.0 + 2_000_000_000)));
    let p = dir.join("bogus.pcap");
    write_pcap(&p, &frames);
    let (o, _) = run_within(
        &["replay", "--records", "-", "--alerts", "/dev/null", p.to_str().unwrap()],
        Duration::from_secs(60),
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "bad packets are not a broken file\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    let s = summary(&err);
    assert_eq!(s.read, frames.len() as u64);
    // The decoder is lax (a bad TCP header still yields an IP packet of protocol 6), but
    // headers that are not IP at all must be skipped: IHL 0 and 3, version 7, cut at 14.
    assert!(s.skipped >= 4 && s.skipped < n_hostile as u64, "hostile frames skipped: {s:?}");
    let recs = json_lines(&stdout(&o));
    assert_eq!(recs.len() as u64, s.records);
    for port in [1111, 2222] {
        let r = recs
            .iter()
            .find(|r| r["DstPortNumber"] == port && r["SrcIpAddr"] == "10.1.0.9")
            .unwrap_or_else(|| panic!("good session to port {port} reported"));
        assert_eq!(r["NetworkProtocol"], "TCP", "{r}");
    }
}

/// A record header claiming a huge caplen, caplen > len, zero-length records.
#[test]
fn lying_record_headers() {
    let dir = scratch("lying-headers");
    let good = good_session(3333, Timestamp::from_secs(1_714_564_800));
    let syn = syn_v4();
    let mut b = pcap_header(1);
    for (ts, f) in &good {
        pcap_record(&mut b, (ts.0 / 1_000_000_000) as u32, 0, f.len() as u32, f.len() as u32, f);
    }
    // caplen greater than len; zero-length with len 0 and with len 1500.
    pcap_record(&mut b, 1_714_564_801, 0, syn.len() as u32, 20, &syn);
    pcap_record(&mut b, 1_714_564_801, 1, 0, 0, &[]);
    pcap_record(&mut b, 1_714_564_801, 2, 0, 1500, &[]);
    let ok_len = b.len();
    // Then a record claiming a 4 GB caplen with a little data behind it.
    pcap_record(&mut b, 1_714_564_802, 0, 0xffff_fff0, 60, &syn);
    let p = dir.join("lying.pcap");
    std::fs::write(&p, &b).unwrap();
    let (o, _) = run_within(
        &["replay", "--records", "-", "--alerts", "/dev/null", p.to_str().unwrap()],
        Duration::from_secs(30),
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "huge caplen breaks the file\n{err}");
    assert!(err.contains("error reading capture file") && err.contains("lying.pcap"), "{err}");
    let s = summary(&err);
    assert_eq!(s.read, good.len() as u64 + 3, "every record before the bad one: {s:?}");
    assert!(s.skipped >= 2, "zero-length records are skipped: {s:?}");
    let recs = json_lines(&stdout(&o));
    assert!(recs.iter().any(|r| r["DstPortNumber"] == 3333), "the good session is reported");
    // Without the broken record the same file is clean.
    std::fs::write(&p, &b[..ok_len]).unwrap();
    let (o, _) = run_within(&["replay", "--records", "/dev/null", p.to_str().unwrap()], Duration::from_secs(30));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}
