//! `NetworkSessionId`: unique across sensors, restarts and replays written into one
//! workspace, yet byte-identical when the same capture is replayed again.
//!
//! An id is `<run prefix>-<n>`: `n` is the flow table's session number (unique within a
//! run, also carried by alerts as `Alert::sessions`), the run prefix is 16 hex digits of
//! SHA-1 over
//! - the sensor name (`--sensor-name`): two sensors never share a prefix;
//! - live capture: the wall-clock start time (ns): a restarted sensor gets a new prefix;
//! - the first session of the run (its first packet's capture time in ns, addresses,
//!   ports, protocol, and header fields: TTL, IP id, TCP sequence number, window, flags,
//!   payload length): replays of different captures get different prefixes, while the
//!   same capture replayed again gets the same one, since nothing else goes in.
//!
//! The prefix is known once the first session starts, before any record or alert of the
//! run is written; [`SessionIds::observe`] takes it from the first event the flow table
//! emits (always that session's Start).

use crate::flow::{FlowEvent, SessionStart};
use sha1::{Digest, Sha1};
use std::net::IpAddr;

/// Hex digits of the run prefix.
pub const PREFIX_LEN: usize = 16;

#[derive(Clone, Debug)]
pub struct SessionIds {
    sensor: String,
    live_start_ns: Option<i128>,
    prefix: [u8; PREFIX_LEN],
    seeded: bool,
}

impl SessionIds {
    /// `live_start_ns`: wall-clock start of a live capture (None for a replay).
    pub fn new(sensor: &str, live_start_ns: Option<i128>) -> Self {
        let mut ids =
            SessionIds { sensor: sensor.to_string(), live_start_ns, prefix: [b'0'; PREFIX_LEN], seeded: false };
        ids.prefix = ids.digest(None);
        ids
    }

    /// Takes the run prefix from the run's first session; later calls change nothing.
    #[inline]
    pub fn observe(&mut self, events: &[FlowEvent]) {
        if self.seeded {
            return;
        }
        if let Some(FlowEvent::Start(first)) = events.first() {
            self.prefix = self.digest(Some(first));
            self.seeded = true;
        }
    }

    /// The run prefix (16 lowercase hex digits).
    pub fn prefix(&self) -> &str {
        std::str::from_utf8(&self.prefix).expect("hex")
    }

    /// The run prefix as bytes.
    #[inline]
    pub fn prefix_bytes(&self) -> &[u8; PREFIX_LEN] {
        &self.prefix
    }

    /// Appends `<prefix>-<id>` (no quotes).
    #[inline]
    pub fn write(&self, id: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.prefix);
        out.push(b'-');
        super::text::push_u64(out, id);
    }

    /// `<prefix>-<id>` as a string.
    pub fn format(&self, id: u64) -> String {
        let mut out = Vec::with_capacity(PREFIX_LEN + 21);
        self.write(id, &mut out);
        String::from_utf8(out).expect("ascii")
    }

    fn digest(&self, first: Option<&SessionStart>) -> [u8; PREFIX_LEN] {
        let mut h = Sha1::new();
        h.update(b"flowsentry NetworkSessionId v1\0");
        h.update((self.sensor.len() as u64).to_be_bytes());
        h.update(self.sensor.as_bytes());
        match self.live_start_ns {
            Some(ns) => {
                h.update(b"L");
                h.update(ns.to_be_bytes());
            }
            None => h.update(b"R"),
        }
        if let Some(s) = first {
            h.update(b"F");
            h.update(s.ts.0.to_be_bytes());
            for ip in [s.src, s.dst] {
                match ip {
                    IpAddr::V4(a) => h.update(a.octets()),
                    IpAddr::V6(a) => h.update(a.octets()),
                }
            }
            h.update(s.sport.unwrap_or(0).to_be_bytes());
            h.update(s.dport.unwrap_or(0).to_be_bytes());
            h.update([s.protocol, s.first.tcp_flags, s.first.ttl]);
            h.update(s.first.ip_id.to_be_bytes());
            h.update(s.first.tcp_window.to_be_bytes());
            h.update(s.first.tcp_seq.to_be_bytes());
            h.update(s.first.payload_len.to_be_bytes());
        }
        let digest = h.finalize();
        let mut out = [0u8; PREFIX_LEN];
        for (i, b) in digest.iter().take(PREFIX_LEN / 2).enumerate() {
            out[2 * i] = b"0123456789abcdef"[usize::from(b >> 4)];
            out[2 * i + 1] = b"0123456789abcdef"[usize::from(b & 15)];
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::FirstPacket;
    use crate::time::Timestamp;

    fn start(ts: i64, seq: u32) -> FlowEvent {
        FlowEvent::Start(SessionStart {
            id: 1,
            ts: Timestamp(ts),
            src: "192.0.2.1".parse().unwrap(),
            dst: "198.51.100.2".parse().unwrap(),
            sport: Some(40000),
            dport: Some(443),
            protocol: 6,
            segment: 0,
            first: FirstPacket { tcp_seq: seq, ..FirstPacket::default() },
        })
    }

    fn prefix_after(sensor: &str, live: Option<i128>, first: &FlowEvent) -> String {
        let mut ids = SessionIds::new(sensor, live);
        ids.observe(std::slice::from_ref(first));
        ids.prefix().to_string()
    }

    #[test]
    fn prefix_separates_sensors_restarts_and_captures_but_repeats_a_replay() {
        let a = start(1_700_000_000_000_000_000, 7);
        let base = prefix_after("s1", None, &a);
        assert_eq!(base.len(), PREFIX_LEN);
        assert!(base.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(prefix_after("s1", None, &a), base, "a replay must repeat its ids");
        assert_ne!(prefix_after("s2", None, &a), base, "another sensor");
        assert_ne!(prefix_after("s1", None, &start(1_700_000_000_000_000_001, 7)), base, "another capture");
        assert_ne!(prefix_after("s1", None, &start(1_700_000_000_000_000_000, 8)), base, "another first packet");
        let live1 = prefix_after("s1", Some(1), &a);
        assert_ne!(live1, base);
        assert_ne!(prefix_after("s1", Some(2), &a), live1, "a restart");
    }

    #[test]
    fn only_the_first_session_counts_and_ids_format() {
        let mut ids = SessionIds::new("s1", None);
        let before = ids.prefix().to_string();
        ids.observe(&[]);
        assert_eq!(ids.prefix(), before);
        ids.observe(&[start(5, 1)]);
        let seeded = ids.prefix().to_string();
        assert_ne!(seeded, before);
        ids.observe(&[start(6, 2)]);
        assert_eq!(ids.prefix(), seeded);
        assert_eq!(ids.format(42), format!("{seeded}-42"));
        let mut out = b"x".to_vec();
        ids.write(u64::MAX, &mut out);
        assert_eq!(out, format!("x{seeded}-{}", u64::MAX).as_bytes());
    }
}
