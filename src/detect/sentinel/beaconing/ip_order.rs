//! Orderings of IP addresses the beaconing rule needs, computed without formatting text on
//! the per-event path: the KQL sorts `DstIpAddr` and `SrcIpAddr` as strings ([`V4Text`],
//! [`IpText`]).

use std::net::{IpAddr, Ipv4Addr};

/// An IPv4 address's text ("a.b.c.d", at most 15 characters) packed into a `u64` whose
/// integer order is exactly the string order, built without formatting: one nibble per
/// character, first character highest; end of text = 0, '.' = 1, digit d = d + 2, which
/// keeps the characters' order ('.' sorts before the digits) and sorts a prefix first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct V4Text(u64);

impl V4Text {
    /// The empty string: sorts before every address.
    pub const EMPTY: Self = V4Text(0);
    pub fn new(ip: Ipv4Addr) -> Self {
        // Whole octets from tables (one shift and one or per octet, no divisions): the
        // first octet's digits, then each other octet's '.' and digits.
        let [a, b, c, d] = ip.octets();
        let (mut packed, mut bits) = OCTET_SYMBOLS[a as usize];
        for octet in [b, c, d] {
            let (symbols, width) = DOTTED_OCTET_SYMBOLS[octet as usize];
            packed = (packed << width) | symbols;
            bits += width;
        }
        // At most 15 nibbles: the text starts at the highest one.
        V4Text(packed << (64 - bits))
    }
}

/// Per octet value: its decimal digits as [`V4Text`] symbols (digit d = d + 2), first digit
/// highest, and their width in bits (4 per digit).
const OCTET_SYMBOLS: [(u64, u32); 256] = octet_table(false);

/// The same preceded by a '.' (symbol 1): an octet after the first.
const DOTTED_OCTET_SYMBOLS: [(u64, u32); 256] = octet_table(true);

const fn octet_table(dotted: bool) -> [(u64, u32); 256] {
    let mut table = [(0u64, 0u32); 256];
    let mut v = 0;
    while v < 256 {
        let (h, t, u) = ((v / 100) as u64, (v / 10 % 10) as u64, (v % 10) as u64);
        let (symbols, digits) = if v >= 100 {
            (((h + 2) << 8) | ((t + 2) << 4) | (u + 2), 3)
        } else if v >= 10 {
            (((t + 2) << 4) | (u + 2), 2)
        } else {
            (u + 2, 1)
        };
        table[v] = if dotted { ((1 << (4 * digits)) | symbols, 4 * (digits + 1)) } else { (symbols, 4 * digits) };
        v += 1;
    }
    table
}

/// An address's text form held inline (no heap allocation per row), ordered exactly as
/// the string: bytes compare lexicographically and the zero padding sorts before every
/// character, so a prefix sorts first. `N` = 15 fits any IPv4 address, 39 any address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpText<const N: usize>([u8; N]);

impl<const N: usize> IpText<N> {
    /// The empty string: sorts before every address.
    pub const EMPTY: Self = IpText([0; N]);
    /// `None` when the text does not fit in `N` bytes.
    pub fn new(ip: IpAddr) -> Option<Self> {
        use std::io::Write;
        let mut text = [0u8; 39];
        let mut cursor = std::io::Cursor::new(&mut text[..]);
        write!(cursor, "{ip}").ok()?;
        let len = cursor.position() as usize;
        let mut buf = [0u8; N];
        buf.get_mut(..len)?.copy_from_slice(&text[..len]);
        Some(IpText(buf))
    }
}

/// String-order sort key of any address (39 bytes hold the longest IPv6 text).
pub(super) fn ip_string_order(ip: IpAddr) -> IpText<39> {
    IpText::new(ip).expect("an IP address's text is at most 39 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_text_orders_like_the_string() {
        let ips: Vec<IpAddr> = [
            "1.2.3.4",
            "1.2.3.40",
            "1.2.30.4",
            "10.0.0.1",
            "9.9.9.9",
            "203.0.113.5",
            "203.0.113.50",
            "2.0.0.0",
            "255.255.255.255",
            "198.51.100.7",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        for a in &ips {
            for b in &ips {
                let want = a.to_string().cmp(&b.to_string());
                assert_eq!(IpText::<15>::new(*a).unwrap().cmp(&IpText::new(*b).unwrap()), want, "{a} vs {b}");
                assert_eq!(ip_string_order(*a).cmp(&ip_string_order(*b)), want, "{a} vs {b}");
                let (IpAddr::V4(a4), IpAddr::V4(b4)) = (a, b) else { unreachable!("IPv4 list") };
                assert_eq!(V4Text::new(*a4).cmp(&V4Text::new(*b4)), want, "{a} vs {b}");
            }
            assert!(IpText::<15>::EMPTY < IpText::new(*a).unwrap());
            let IpAddr::V4(a4) = a else { unreachable!("IPv4 list") };
            assert!(V4Text::EMPTY < V4Text::new(*a4));
        }
        let v6: IpAddr = "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap();
        assert!(IpText::<15>::new(v6).is_none());
        let one: IpAddr = "::1".parse().unwrap();
        assert_eq!(ip_string_order(one).cmp(&ip_string_order(v6)), one.to_string().cmp(&v6.to_string()));
    }

    /// The packing as first written (one digit at a time), for the table-driven one.
    fn v4_text_by_digits(ip: Ipv4Addr) -> V4Text {
        let mut packed = 0u64;
        let mut shift = 64;
        let mut push = |symbol: u8| {
            shift -= 4;
            packed |= u64::from(symbol) << shift;
        };
        for (i, octet) in ip.octets().into_iter().enumerate() {
            if i > 0 {
                push(1);
            }
            if octet >= 100 {
                push(octet / 100 + 2);
            }
            if octet >= 10 {
                push(octet / 10 % 10 + 2);
            }
            push(octet % 10 + 2);
        }
        V4Text(packed)
    }

    #[test]
    fn v4_text_table_packs_every_octet_in_every_position_as_digit_by_digit() {
        for pos in 0..4 {
            for v in 0..=255u8 {
                for fill in [0u8, 7, 42, 255] {
                    let mut o = [fill; 4];
                    o[pos] = v;
                    let ip = Ipv4Addr::from(o);
                    assert_eq!(V4Text::new(ip), v4_text_by_digits(ip), "{ip}");
                }
            }
        }
    }

    #[test]
    fn v4_text_orders_like_the_string_for_every_octet_length() {
        // Every octet value in every position against neighbours of all text lengths.
        let probes = [0u8, 1, 2, 9, 10, 11, 19, 20, 25, 99, 100, 101, 109, 110, 199, 200, 249, 250, 255];
        let mut ips = Vec::new();
        for pos in 0..4 {
            for v in 0..=255u8 {
                let mut o = [1u8, 22, 133, 4];
                o[pos] = v;
                ips.push(Ipv4Addr::from(o));
            }
        }
        for p in probes {
            ips.push(Ipv4Addr::new(p, p, p, p));
        }
        for a in &ips {
            for b in ips.iter().step_by(7) {
                assert_eq!(V4Text::new(*a).cmp(&V4Text::new(*b)), a.to_string().cmp(&b.to_string()), "{a} vs {b}");
            }
        }
    }
}
