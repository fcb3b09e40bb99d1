//! Fuzzes the decoder over every supported link type (the first byte picks it): any
//! bytes must decode or be skipped with a reason, never panic, and a decoded packet's
//! fields must be consistent.
#![no_main]

mod common;

use flowsentry::capture::Frame;
use flowsentry::decode::{decode, Transport};
use flowsentry::time::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let link = common::link_from(first);
    // The second bit-field of the first byte also varies the wire length vs. caplen.
    let wire_len = if first & 0x80 != 0 { rest.len() as u32 + u32::from(first) * 97 } else { rest.len() as u32 };
    let frame = Frame { link, ts: Timestamp(1), wire_len, data: rest };
    if let Ok(meta) = decode(link, &frame) {
        if let Transport::Tcp { payload_len, .. } | Transport::Udp { payload_len, .. } = meta.transport {
            assert!(payload_len <= meta.ip_len, "payload {payload_len} > ip_len {}", meta.ip_len);
        }
        assert!(meta.src.is_ipv4() == meta.dst.is_ipv4());
    }
});
