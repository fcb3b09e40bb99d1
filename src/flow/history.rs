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

impl History {
    /// The letters, e.g. `ShADadFf`; empty when nothing was recorded.
    pub fn as_bytes(&self) -> &[u8] {
        &self.letters[..self.len as usize]
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

    /// Records a TCP segment with these flags and this much payload.
    #[inline]
    pub fn tcp(&mut self, flags: u8, payload_len: u32, from_init: bool) {
        let syn = flags & tcp_flags::SYN != 0;
        let fin = flags & tcp_flags::FIN != 0;
        let rst = flags & tcp_flags::RST != 0;
        match u8::from(syn) + u8::from(fin) + u8::from(rst) {
            0 if payload_len > 0 => self.add(3, from_init),
            0 if flags & tcp_flags::ACK != 0 => self.add(2, from_init),
            0 => {}
            1 if syn => self.add(if flags & tcp_flags::ACK != 0 { 1 } else { 0 }, from_init),
            1 if fin => self.add(4, from_init),
            1 => self.add(5, from_init),
            _ if fin && rst => self.add(7, from_init),
            _ => self.add(6, from_init),
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
