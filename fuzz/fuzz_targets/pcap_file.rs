//! Fuzzes libpcap file parsing through `FileSource`: the bytes are written to a temp
//! file and opened as a pcap/pcapng capture. Half the inputs get a valid classic-pcap
//! header prepended (link type from the first byte) so record parsing is reached
//! quickly. Whatever the file holds: no panic, flowsentry's own classic-pcap reader
//! hands out exactly the frames and errors libpcap does, and the pipeline invariants
//! hold for whatever packets come out.
#![no_main]

mod common;

use flowsentry::capture::file::{FileSource, ReadMode};
use flowsentry::capture::PacketSource;
use libfuzzer_sys::fuzz_target;
use std::io::Write;

const DLTS: [u32; 8] = [0, 1, 101, 108, 113, 228, 229, 276];

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let path = std::env::temp_dir().join(format!("flowsentry-fuzz-{}.pcap", std::process::id()));
    {
        let mut f = std::fs::File::create(&path).expect("temp file");
        if first & 1 == 0 {
            let magic: u32 = if first & 2 == 0 { 0xa1b2_c3d4 } else { 0xa1b2_3c4d };
            let dlt = DLTS[usize::from(first >> 2) % DLTS.len()];
            let mut hdr = Vec::with_capacity(24);
            hdr.extend_from_slice(&magic.to_le_bytes());
            hdr.extend_from_slice(&2u16.to_le_bytes());
            hdr.extend_from_slice(&4u16.to_le_bytes());
            hdr.extend_from_slice(&[0u8; 8]);
            hdr.extend_from_slice(&65535u32.to_le_bytes());
            hdr.extend_from_slice(&dlt.to_le_bytes());
            f.write_all(&hdr).expect("write header");
        }
        f.write_all(rest).expect("write body");
    }
    let paths = [path.to_str().expect("utf-8 temp path")];
    assert_eq!(read_all(&paths, ReadMode::Fast), read_all(&paths, ReadMode::Libpcap), "fast reader differs from libpcap");
    if let Ok(mut source) = FileSource::open(&paths) {
        common::run_pipeline(&mut source, 64);
    }
    let _ = std::fs::remove_file(&path);
});

/// Every frame (time, wire length, bytes) and error a reader gives for `paths`.
fn read_all(paths: &[&str], mode: ReadMode) -> Result<Vec<Result<(i64, u32, Vec<u8>), String>>, String> {
    let mut source = FileSource::open_with(paths, None, mode).map_err(|e| e.to_string())?;
    let mut items = Vec::new();
    loop {
        match source.next_frame() {
            Ok(Some(f)) => items.push(Ok((f.ts.0, f.wire_len, f.data.to_vec()))),
            Ok(None) => return Ok(items),
            Err(e) => items.push(Err(e.to_string())),
        }
    }
}
