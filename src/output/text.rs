//! Fast text of the numbers, addresses and times in records, without `core::fmt`: the
//! record writer's hot path. Every function here writes exactly what `Display` (or
//! [`Timestamp::rfc3339`]) writes for the same value; the tests compare them.
//!
//! - integers: two digits at a time from a 200-byte table;
//! - IPv4: each octet's text from a 256-entry table;
//! - IPv6: by hand, with RFC 5952 zero compression (the longest run of two or more zero
//!   groups, the first of equal runs) and `::ffff:a.b.c.d` for v4-mapped addresses, as
//!   std's `Display` does;
//! - times: [`TimeText`] keeps the text up to the second of the last second it saw, so a
//!   record in the same second only formats its microseconds.

use crate::time::{civil_from_days, Timestamp, NANOS_PER_SEC};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// "00" "01" ... "99".
const DIGITS2: [u8; 200] = {
    let mut t = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        t[2 * i] = b'0' + (i / 10) as u8;
        t[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
};

/// Each octet's decimal text: `[len, d0, d1, d2]`.
const OCTETS: [[u8; 4]; 256] = {
    let mut t = [[0u8; 4]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if i >= 100 {
            [3, b'0' + (i / 100) as u8, b'0' + (i / 10 % 10) as u8, b'0' + (i % 10) as u8]
        } else if i >= 10 {
            [2, b'0' + (i / 10) as u8, b'0' + (i % 10) as u8, 0]
        } else {
            [1, b'0' + i as u8, 0, 0]
        };
        i += 1;
    }
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `v` (< 100) as two digits at `dst[0..2]`.
#[inline]
fn put2(dst: &mut [u8], v: usize) {
    dst[..2].copy_from_slice(&DIGITS2[2 * v..2 * v + 2]);
}

/// Writes `v` (< 10 000) at `out[0..]` without leading zeros; returns its length (1 to 4).
#[inline(always)]
fn put_upto4(out: &mut [u8; 20], v: u32) -> usize {
    if v < 100 {
        if v < 10 {
            out[0] = b'0' + v as u8;
            1
        } else {
            put2(out, v as usize);
            2
        }
    } else {
        let (hi, lo) = ((v / 100) as usize, (v % 100) as usize);
        if hi < 10 {
            out[0] = b'0' + hi as u8;
            put2(&mut out[1..], lo);
            3
        } else {
            put2(out, hi);
            put2(&mut out[2..], lo);
            4
        }
    }
}

/// Writes `v`'s decimal text at `buf[at..]`; returns the new end (`buf` needs 20 bytes
/// free). Up to 8 digits (every port, count and session number in practice) take 32-bit
/// arithmetic and no loop: the leading 1 to 4 digits by comparisons, then 4 digits
/// exactly; longer numbers are written two digits at a time, last first, after `ilog10`
/// has given their length.
#[inline(always)]
pub fn put_u64(buf: &mut [u8], at: usize, v: u64) -> usize {
    let out: &mut [u8; 20] = (&mut buf[at..at + 20]).try_into().expect("20 bytes");
    if v < 10_000 {
        return at + put_upto4(out, v as u32);
    }
    if v < 100_000_000 {
        let v = v as u32;
        let n = put_upto4(out, v / 10_000);
        let low = (v % 10_000) as usize;
        put2(&mut out[n..], low / 100);
        put2(&mut out[n + 2..], low % 100);
        return at + n + 4;
    }
    let len = v.ilog10() as usize + 1;
    let (mut v, mut i) = (v, len);
    while v >= 100 {
        i -= 2;
        put2(&mut out[i..], (v % 100) as usize);
        v /= 100;
    }
    if v >= 10 {
        put2(out, v as usize);
    } else {
        out[0] = b'0' + v as u8;
    }
    at + len
}

/// Decimal text of `v`.
#[inline]
pub fn push_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 20];
    let n = put_u64(&mut buf, 0, v);
    out.extend_from_slice(&buf[..n]);
}

/// Writes `v`'s decimal text, `-` first when negative; returns the new end (21 bytes).
#[inline]
pub fn put_i64(buf: &mut [u8], mut at: usize, v: i64) -> usize {
    if v < 0 {
        buf[at] = b'-';
        at += 1;
    }
    put_u64(buf, at, v.unsigned_abs())
}

/// Decimal text of `v`, `-` first when negative.
#[inline]
pub fn push_i64(out: &mut Vec<u8>, v: i64) {
    let mut buf = [0u8; 21];
    let n = put_i64(&mut buf, 0, v);
    out.extend_from_slice(&buf[..n]);
}

/// Each octet's decimal text followed by a dot, zero-padded to 4 bytes, and the length of
/// text and dot.
const OCTET_DOT: [([u8; 4], u8); 256] = {
    let mut t = [([0u8; 4], 0u8); 256];
    let mut i = 0;
    while i < 256 {
        let [len, d0, d1, d2] = OCTETS[i];
        let mut text = [d0, d1, d2, 0];
        text[len as usize] = b'.';
        t[i] = (text, len + 1);
        i += 1;
    }
    t
};

/// Writes `a`'s dotted-quad text at `buf[at..]`; returns the new end (`buf` needs 18
/// bytes free; 16 are written). Each octet is one 4-byte copy of its text and a dot; the
/// last dot is left past the end.
#[inline]
pub fn put_v4(buf: &mut [u8], at: usize, a: Ipv4Addr) -> usize {
    let out: &mut [u8; 16] = (&mut buf[at..at + 16]).try_into().expect("16 bytes");
    let octets = a.octets();
    let mut n = 0;
    let mut octet = |o: u8| {
        let (text, len) = &OCTET_DOT[usize::from(o)];
        out[n..n + 4].copy_from_slice(text);
        n += usize::from(*len);
    };
    octet(octets[0]);
    octet(octets[1]);
    octet(octets[2]);
    octet(octets[3]);
    at + n - 1
}

/// IPv4 text, as `Ipv4Addr`'s `Display`.
#[inline]
pub fn push_v4(out: &mut Vec<u8>, a: Ipv4Addr) {
    // 15 characters at most, plus slack for the 3-byte octet copies.
    let mut buf = [0u8; 18];
    let n = put_v4(&mut buf, 0, a);
    out.extend_from_slice(&buf[..n]);
}

/// Appends one group's lowercase hex without leading zeros; returns the new end.
#[inline]
fn put_group(buf: &mut [u8], mut at: usize, g: u16) -> usize {
    let digits = if g >= 0x1000 {
        4
    } else if g >= 0x100 {
        3
    } else if g >= 0x10 {
        2
    } else {
        1
    };
    for i in (0..digits).rev() {
        buf[at] = HEX[usize::from((g >> (4 * i)) & 0xf)];
        at += 1;
    }
    at
}

/// Appends groups `gs` joined by `:`; returns the new end.
#[inline]
fn put_groups(buf: &mut [u8], mut at: usize, gs: &[u16]) -> usize {
    for (i, &g) in gs.iter().enumerate() {
        if i > 0 {
            buf[at] = b':';
            at += 1;
        }
        at = put_group(buf, at, g);
    }
    at
}

/// Writes `a`'s text (as `Ipv6Addr`'s `Display`, RFC 5952) at `buf[at..]`; returns the
/// new end (`buf` needs 42 bytes free).
pub fn put_v6(buf: &mut [u8], at: usize, a: Ipv6Addr) -> usize {
    let s = a.segments();
    if s[..5] == [0; 5] && s[5] == 0xffff {
        buf[at..at + 7].copy_from_slice(b"::ffff:");
        put_v4(buf, at + 7, Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8))
    } else {
        // The longest run of zero groups (the first of equal ones).
        let (mut best_start, mut best_len, mut cur_start, mut cur_len) = (0, 0, 0, 0);
        for (i, &g) in s.iter().enumerate() {
            if g == 0 {
                if cur_len == 0 {
                    cur_start = i;
                }
                cur_len += 1;
                if cur_len > best_len {
                    (best_start, best_len) = (cur_start, cur_len);
                }
            } else {
                cur_len = 0;
            }
        }
        if best_len > 1 {
            let at = put_groups(buf, at, &s[..best_start]);
            buf[at..at + 2].copy_from_slice(b"::");
            put_groups(buf, at + 2, &s[best_start + best_len..])
        } else {
            put_groups(buf, at, &s)
        }
    }
}

/// IPv6 text, as `Ipv6Addr`'s `Display` (RFC 5952).
pub fn push_v6(out: &mut Vec<u8>, a: Ipv6Addr) {
    // 39 characters at most ("::ffff:" + 15 for a v4-mapped one), plus copy slack.
    let mut buf = [0u8; 48];
    let n = put_v6(&mut buf, 0, a);
    out.extend_from_slice(&buf[..n]);
}

/// Writes `ip`'s text (as `IpAddr`'s `Display`) at `buf[at..]`; returns the new end
/// (`buf` needs 42 bytes free).
#[inline]
pub fn put_ip(buf: &mut [u8], at: usize, ip: IpAddr) -> usize {
    match ip {
        IpAddr::V4(a) => put_v4(buf, at, a),
        IpAddr::V6(a) => put_v6(buf, at, a),
    }
}

/// An address's text, as `IpAddr`'s `Display`.
#[inline]
pub fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => push_v4(out, a),
        IpAddr::V6(a) => push_v6(out, a),
    }
}

/// Length of a quoted record time: `"YYYY-MM-DDTHH:MM:SS.uuuuuuZ"`.
pub const TIME_LEN: usize = 29;

/// Longest quoted time (a year of i64 nanoseconds has at most 6 digits and a sign).
pub const TIME_MAX: usize = 40;

/// Quoted RFC 3339 UTC times with microseconds (the text of [`Timestamp::rfc3339`]),
/// caching the text up to the second: consecutive times in one second only format their
/// microseconds.
#[derive(Clone, Debug)]
pub struct TimeText {
    /// The second `text[..21]` holds (`"YYYY-MM-DDTHH:MM:SS.`); None before the first.
    sec: Option<i64>,
    text: [u8; TIME_LEN],
}

impl Default for TimeText {
    fn default() -> Self {
        TimeText { sec: None, text: *b"\"0000-00-00T00:00:00.000000Z\"" }
    }
}

impl TimeText {
    /// The quoted text of `ts`; None for a year outside 0..=9999 (see [`write_time`]).
    #[inline]
    pub fn quoted(&mut self, ts: Timestamp) -> Option<&[u8; TIME_LEN]> {
        let secs = ts.floor_secs();
        if self.sec != Some(secs) {
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            if !(0..=9999).contains(&y) {
                return None;
            }
            let sod = secs.rem_euclid(86_400) as usize;
            let t = &mut self.text;
            put2(&mut t[1..], y as usize / 100);
            put2(&mut t[3..], y as usize % 100);
            put2(&mut t[6..], m as usize);
            put2(&mut t[9..], d as usize);
            put2(&mut t[12..], sod / 3600);
            put2(&mut t[15..], sod / 60 % 60);
            put2(&mut t[18..], sod % 60);
            self.sec = Some(secs);
        }
        // The nanoseconds into the second from the second already found (no second
        // division by 10^9), as u32s.
        let micros = ((ts.0 - secs * NANOS_PER_SEC) as u32 / 1000) as usize;
        let (hi, lo) = (micros / 10_000, micros % 10_000);
        let t = &mut self.text;
        put2(&mut t[21..], hi);
        put2(&mut t[23..], lo / 100);
        put2(&mut t[25..], lo % 100);
        Some(&self.text)
    }

    /// Writes the quoted text of `ts` at `buf[at..]`; returns the new end (`buf` needs
    /// [`TIME_MAX`] bytes free).
    #[inline]
    pub fn put(&mut self, ts: Timestamp, buf: &mut [u8], at: usize) -> usize {
        match self.quoted(ts) {
            Some(t) => {
                buf[at..at + TIME_LEN].copy_from_slice(t);
                at + TIME_LEN
            }
            None => {
                let mut general = Vec::with_capacity(TIME_MAX);
                write_time_general(ts, &mut general);
                buf[at..at + general.len()].copy_from_slice(&general);
                at + general.len()
            }
        }
    }

    /// Appends the quoted text of `ts`.
    #[inline]
    pub fn write(&mut self, ts: Timestamp, out: &mut Vec<u8>) {
        match self.quoted(ts) {
            Some(t) => out.extend_from_slice(t),
            None => write_time_general(ts, out),
        }
    }
}

/// Quoted time of a year outside what four digits hold: the general (slow) path.
#[cold]
fn write_time_general(ts: Timestamp, out: &mut Vec<u8>) {
    let mut general = String::with_capacity(32);
    ts.write_rfc3339(&mut general);
    out.push(b'"');
    out.extend_from_slice(general.as_bytes());
    out.push(b'"');
}

/// Appends the quoted text of `ts` without a cache.
pub fn write_time(ts: Timestamp, out: &mut Vec<u8>) {
    TimeText::default().write(ts, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*: reproducible pseudo-random input without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn integers_match_display() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut values = vec![0u64, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 65_535, u64::MAX, u64::MAX - 1];
        values.extend((0..20).map(|i| 10u64.pow(i)));
        values.extend((1..20).map(|i| 10u64.pow(i) - 1));
        values.extend((0..10_000).map(|_| rng.next() >> (rng.next() % 64)));
        for v in values {
            assert_eq!(text(|o| push_u64(o, v)), v.to_string());
            let s = v as i64;
            assert_eq!(text(|o| push_i64(o, s)), s.to_string());
        }
        for v in [i64::MIN, i64::MIN + 1, -1, -10, -99, -100] {
            assert_eq!(text(|o| push_i64(o, v)), v.to_string());
        }
    }

    #[test]
    fn ipv4_matches_display_for_every_octet() {
        for i in 0..=255u8 {
            for a in [Ipv4Addr::new(i, 0, 255, i), Ipv4Addr::new(9, i, i, 100), Ipv4Addr::new(255, 255, i, 10)] {
                assert_eq!(text(|o| push_v4(o, a)), a.to_string());
            }
        }
        let mut rng = Rng(7);
        for _ in 0..10_000 {
            let a = Ipv4Addr::from(rng.next() as u32);
            assert_eq!(text(|o| push_ip(o, a.into())), a.to_string());
        }
    }

    /// A random address with zero groups, zero runs and v4-mapped / v4-compatible forms
    /// over-represented.
    fn random_v6(rng: &mut Rng) -> Ipv6Addr {
        let mut s = [0u16; 8];
        let kind = rng.next() % 8;
        for g in s.iter_mut() {
            let r = rng.next();
            *g = match r % 4 {
                0 => 0,
                1 => (r >> 8) as u16 & 0xf,
                2 => (r >> 8) as u16 & 0xfff,
                _ => (r >> 8) as u16,
            };
        }
        match kind {
            0 => {
                // v4-mapped
                s[..5].fill(0);
                s[5] = 0xffff;
            }
            1 => s[..6].fill(0), // v4-compatible (deprecated), printed as groups
            2 => {
                // one zero run of random place and length
                let start = (rng.next() % 8) as usize;
                let len = (rng.next() % (8 - start as u64 + 1)) as usize;
                s[start..start + len].fill(0);
            }
            3 => {
                // two runs of equal length: the first one is compressed
                let len = 1 + (rng.next() % 3) as usize;
                s.fill(1);
                s[..len].fill(0);
                s[8 - len..].fill(0);
            }
            _ => {}
        }
        Ipv6Addr::from(s)
    }

    #[test]
    fn ipv6_matches_display_on_random_and_edge_addresses() {
        let mut fixed: Vec<Ipv6Addr> = [
            "::",
            "::1",
            "1::",
            "2001:db8::1",
            "2001:db8:0:1:1:1:1:1",
            "2001:0:0:1::1",
            "1:0:0:2:0:0:0:3",
            "0:0:1:0:0:1:0:0",
            "::ffff:192.0.2.1",
            "::ffff:0.0.0.0",
            "::192.0.2.1",
            "::ffff:1:192.0.2.1",
            "fe80::1:2:3:4",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let mut rng = Rng(0x1234_5678_9abc_def1);
        fixed.extend((0..60_000).map(|_| random_v6(&mut rng)));
        for a in fixed {
            assert_eq!(text(|o| push_ip(o, a.into())), a.to_string());
        }
    }

    #[test]
    fn times_match_rfc3339_cached_or_not() {
        let mut rng = Rng(99);
        let mut cached = TimeText::default();
        let mut ns: Vec<i64> = vec![
            0,
            -1,
            -1_500_000,
            951_782_400_123_456_789,
            1_704_067_199_999_999_999,
            1_704_067_200_000_000_000,
            253_402_300_799_999_999, // 9999-12-31T23:59:59.999999
            253_402_300_800_000_000, // year 10000: general path
            -62_167_219_200_000_000, // 0000-01-01
            -62_167_219_200_000_001, // year -1: general path
            i64::MIN,
            i64::MAX,
        ];
        // Runs within one second (the cache hit), across seconds and days, and jumps back.
        let mut t = 1_700_000_000_000_000_000i64;
        for _ in 0..20_000 {
            t += (rng.next() % 400_000_000) as i64 - 100_000_000;
            ns.push(t);
            if rng.next() % 50 == 0 {
                ns.push(rng.next() as i64 >> 2);
            }
        }
        for n in ns {
            let ts = Timestamp(n);
            let want = format!("\"{}\"", ts.rfc3339());
            assert_eq!(text(|o| cached.write(ts, o)), want, "{n}");
            assert_eq!(text(|o| write_time(ts, o)), want, "{n}");
        }
    }
}
