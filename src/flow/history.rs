//! A session's Zeek-style connection history (`conn.log` `history`, ASIM
//! `NetworkConnectionHistory`): one letter per kind of packet seen, in the order first
//! seen, upper case for the initiator and lower case for the responder, e.g. `ShADadFf`.
//!
//! Letters, as Zeek assigns them: `S` SYN without ACK, `H` SYN+ACK, `A` pure ACK (no
//! payload, no SYN/FIN/RST), `D` payload (no SYN/FIN/RST), `F` FIN, `R` RST, `Q` SYN
//! together with FIN or RST, `I` FIN together with RST. UDP sessions get `D`/`d` for
//! datagrams with payload. Each letter is recorded once per direction (Zeek repeats
//! S/H/F/R when the sequence number changes and adds T/W/C/G/^, which need state
//! flowsentry does not keep). A fixed array, so a session stays `Copy`-cheap.

use crate::decode::tcp_flags;

/// Letters in the order first seen; at most 8 kinds x 2 directions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct History {
    letters: [u8; 16],
    len: u8,
    /// Bit per letter kind already recorded (bits 0-7 initiator, 8-15 responder).
    seen: u16,
}

const KINDS: &[u8; 8] = b"SHADFRQI";

/// No letter for this segment (a bare segment without ACK, payload or SYN/FIN/RST).
const NO_KIND: u8 = u8::MAX;

/// Index into [`TCP_KIND`]: FIN, SYN, RST, ACK and "has payload", one bit each.
#[inline]
fn tcp_kind_index(flags: u8, payload: bool) -> usize {
    let bits = flags & (tcp_flags::FIN | tcp_flags::SYN | tcp_flags::RST) | (flags & tcp_flags::ACK) >> 1;
    usize::from(bits | u8::from(payload) << 4)
}

/// The letter kind (index into `KINDS`) of every combination of [`tcp_kind_index`].
const TCP_KIND: [u8; 32] = {
    let mut table = [NO_KIND; 32];
    let mut i = 0;
    while i < 32 {
        table[i] = tcp_kind(i & 2 != 0, i & 1 != 0, i & 4 != 0, i & 8 != 0, i & 16 != 0);
        i += 1;
    }
    table
};

/// Zeek's letter for a TCP segment: SYN/FIN/RST alone or together first, then payload,
/// then a pure ACK.
const fn tcp_kind(syn: bool, fin: bool, rst: bool, ack: bool, payload: bool) -> u8 {
    match syn as u8 + fin as u8 + rst as u8 {
        0 if payload => 3,
        0 if ack => 2,
        0 => NO_KIND,
        1 if syn => {
            if ack {
                1
            } else {
                0
            }
        }
        1 if fin => 4,
        1 => 5,
        _ if fin && rst => 7,
        _ => 6,
    }
}

impl History {
    /// The letters, e.g. `ShADadFf`; empty when nothing was recorded.
    pub fn as_bytes(&self) -> &[u8] {
        &self.letters[..self.len as usize]
    }

    /// The letters' 16-byte area (what is past [`History::as_bytes`] is unspecified) and
    /// their count: for fixed-size copies.
    #[inline]
    pub fn padded(&self) -> (&[u8; 16], usize) {
        (&self.letters, self.len as usize)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn add(&mut self, kind: usize, from_init: bool) {
        let bit = 1u16 << (kind + if from_init { 0 } else { 8 });
        if self.seen & bit != 0 {
            return;
        }
        self.seen |= bit;
        let letter = KINDS[kind];
        self.letters[self.len as usize] = if from_init { letter } else { letter.to_ascii_lowercase() };
        self.len += 1;
    }

    /// Records a TCP segment with these flags and this much payload (its letter is
    /// looked up in [`TCP_KIND`], once per packet).
    #[inline]
    pub fn tcp(&mut self, flags: u8, payload_len: u32, from_init: bool) {
        let kind = TCP_KIND[tcp_kind_index(flags, payload_len > 0)];
        if kind != NO_KIND {
            self.add(usize::from(kind), from_init);
        }
    }

    /// Records a UDP datagram with this much payload.
    pub fn udp(&mut self, payload_len: u32, from_init: bool) {
        if payload_len > 0 {
            self.add(3, from_init);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::tcp_flags::{ACK, FIN, PSH, RST, SYN};

    fn text(h: &History) -> &str {
        std::str::from_utf8(h.as_bytes()).unwrap()
    }

    #[test]
    fn full_tcp_exchange_reads_like_zeek() {
        let mut h = History::default();
        h.tcp(SYN, 0, true);
        h.tcp(SYN | ACK, 0, false);
        h.tcp(ACK, 0, true);
        h.tcp(ACK | PSH, 100, true);
        h.tcp(ACK, 0, false);
        h.tcp(ACK | PSH, 900, false);
        h.tcp(ACK | PSH, 100, true); // repeats add nothing
        h.tcp(FIN | ACK, 0, true);
        h.tcp(FIN | ACK, 0, false);
        h.tcp(ACK, 0, true);
        assert_eq!(text(&h), "ShADadFf");
    }

    #[test]
    fn rejected_scan_multi_flag_and_udp() {
        let mut h = History::default();
        h.tcp(SYN, 0, true);
        h.tcp(RST | ACK, 0, false);
        assert_eq!(text(&h), "Sr");
        let mut x = History::default();
        x.tcp(FIN | PSH | 0x20, 0, true); // Xmas probe: FIN alone among SYN/FIN/RST
        x.tcp(SYN | FIN, 0, true);
        x.tcp(FIN | RST, 0, false);
        x.tcp(PSH, 0, true); // no ACK, no payload: nothing
        assert_eq!(text(&x), "FQi");
        let mut u = History::default();
        u.udp(0, true);
        u.udp(40, true);
        u.udp(80, false);
        assert_eq!(text(&u), "Dd");
        assert!(History::default().is_empty());
    }

    #[test]
    fn kind_table_matches_the_rules_for_every_flag_byte() {
        for flags in 0..=255u8 {
            for payload in [false, true] {
                let (syn, fin, rst, ack) = (flags & SYN != 0, flags & FIN != 0, flags & RST != 0, flags & ACK != 0);
                let expected = match u8::from(syn) + u8::from(fin) + u8::from(rst) {
                    0 if payload => Some(b'D'),
                    0 if ack => Some(b'A'),
                    0 => None,
                    1 if syn && ack => Some(b'H'),
                    1 if syn => Some(b'S'),
                    1 if fin => Some(b'F'),
                    1 => Some(b'R'),
                    _ if fin && rst => Some(b'I'),
                    _ => Some(b'Q'),
                };
                let mut h = History::default();
                h.tcp(flags, u32::from(payload), true);
                assert_eq!(h.as_bytes().first().copied(), expected, "flags {flags:#04x} payload {payload}");
            }
        }
    }

    #[test]
    fn every_letter_fits() {
        let mut h = History::default();
        for from_init in [true, false] {
            for flags in [SYN, SYN | ACK, ACK, FIN, RST, SYN | RST, FIN | RST] {
                h.tcp(flags, 0, from_init);
            }
            h.tcp(ACK, 5, from_init);
        }
        assert_eq!(text(&h), "SHAFRQIDshafrqid");
    }
}
