//! IP address sets: CIDR parsing, the home network, allowlists, the exact address
//! predicates the Sentinel rules use (Kusto's `ipv4_is_private`), and the hasher every
//! table keyed by addresses uses.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Hasher for tables keyed by addresses (and ports) that remote senders choose:
/// hashbrown's default (foldhash) draws a random seed per table, so a sender cannot aim
/// packets at one bucket and force collisions without knowing the seed, at a fraction of
/// SipHash's cost per lookup. Nothing is ever output in table order.
pub type KeyedHasher = hashbrown::DefaultHashBuilder;

/// A hash map keyed by sender-chosen values, seeded per map ([`KeyedHasher`]).
pub type KeyedMap<K, V> = hashbrown::HashMap<K, V, KeyedHasher>;

/// An empty [`KeyedMap`] with a fresh seed.
pub fn keyed_map<K, V>() -> KeyedMap<K, V> {
    KeyedMap::with_hasher(KeyedHasher::default())
}

/// One CIDR block, IPv4 or IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, String> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(format!("prefix length /{prefix} is too long for {addr} (max /{max})"));
        }
        Ok(Cidr { addr: mask(addr, prefix), prefix })
    }
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => mask(ip, self.prefix) == self.addr,
            _ => false,
        }
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix as u32) };
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix as u32) };
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| format!("'{s}' is not an IP address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().map_err(|_| format!("'{s}' has a bad prefix length"))?,
            None => max,
        };
        Cidr::new(addr, prefix).map_err(|e| format!("'{s}': {e}"))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A set of CIDR blocks (home network, allowlists). Small sets: a linear scan is fastest,
/// over each family's blocks as plain integer (mask, network) pairs (asked per event).
/// An IPv4 address is first looked up by its first octet, which decides most of them
/// (an outside address usually shares its first octet with no block) without a scan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetSet {
    blocks: Vec<Cidr>,
    /// The IPv4 and IPv6 blocks as (mask, network) bits, in `blocks` order.
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
    /// One bit per first octet of an IPv4 address: a block of prefix /8 or shorter holds
    /// every address starting with it (`v4_all`), or a longer block starts with it
    /// (`v4_some`: the blocks are scanned). Neither: no block holds the address.
    v4_all: [u64; 4],
    v4_some: [u64; 4],
}

impl NetSet {
    pub fn new(blocks: Vec<Cidr>) -> Self {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        let (mut v4_all, mut v4_some) = ([0u64; 4], [0u64; 4]);
        for b in &blocks {
            match b.addr {
                IpAddr::V4(a) => {
                    let m = if b.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(b.prefix)) };
                    v4.push((m, a.to_bits() & m));
                    if b.prefix <= 8 {
                        for octet in (0..256u32).filter(|o| o << 24 & m == a.to_bits() & m) {
                            v4_all[octet as usize / 64] |= 1 << (octet % 64);
                        }
                    } else {
                        let octet = a.to_bits() >> 24;
                        v4_some[octet as usize / 64] |= 1 << (octet % 64);
                    }
                }
                IpAddr::V6(a) => {
                    let m = if b.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(b.prefix)) };
                    v6.push((m, a.to_bits() & m));
                }
            }
        }
        NetSet { blocks, v4, v6, v4_all, v4_some }
    }
    /// RFC 1918, carrier-grade NAT (100.64.0.0/10) and unique-local IPv6 (fc00::/7).
    pub fn default_home() -> Self {
        Self::parse_list("10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fc00::/7").expect("static list")
    }
    /// Parses `a/b,c/d,...` (whitespace allowed).
    pub fn parse_list(s: &str) -> Result<Self, String> {
        let blocks =
            s.split(',').filter(|p| !p.trim().is_empty()).map(Cidr::from_str).collect::<Result<Vec<_>, _>>()?;
        Ok(NetSet::new(blocks))
    }
    /// Whether a block holds `ip` (an IPv4 block never holds an IPv6 address, mapped or not).
    /// Inlined everywhere: most answers are one bit test.
    #[inline(always)]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => {
                let bits = a.to_bits();
                let (word, bit) = ((bits >> 30) as usize, 1u64 << (bits >> 24 & 63));
                self.v4_all[word] & bit != 0
                    || (self.v4_some[word] & bit != 0 && self.v4.iter().any(|&(m, net)| bits & m == net))
            }
            IpAddr::V6(a) => {
                let bits = a.to_bits();
                self.v6.iter().any(|&(m, net)| bits & m == net)
            }
        }
    }
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
    pub fn blocks(&self) -> &[Cidr] {
        &self.blocks
    }
}

/// Kusto's `ipv4_is_private()`: true for 10/8, 172.16/12, 192.168/16; false for any
/// other IPv4 address; `None` (null) for anything that is not IPv4 — so in KQL both
/// `== false` and `== true` filters drop IPv6 addresses.
pub fn kusto_ipv4_is_private(ip: IpAddr) -> Option<bool> {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            Some(o[0] == 10 || (o[0] == 172 && (16..=31).contains(&o[1])) || (o[0] == 192 && o[1] == 168))
        }
        IpAddr::V6(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches_cidrs() {
        let set = NetSet::parse_list("10.0.0.0/8, 2001:db8::/32,192.0.2.7").unwrap();
        assert!(set.contains("10.1.2.3".parse().unwrap()));
        assert!(set.contains("2001:db8::1".parse().unwrap()));
        assert!(set.contains("192.0.2.7".parse().unwrap()));
        assert!(!set.contains("192.0.2.8".parse().unwrap()));
        assert!(!set.contains("11.0.0.1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("banana".parse::<Cidr>().unwrap_err().contains("banana"));
    }

    /// The per-family integer blocks answer exactly what each block's `Cidr::contains` does.
    #[test]
    fn contains_matches_the_blocks() {
        let set = NetSet::parse_list(
            "10.0.0.0/8,192.0.2.7/32,fc00::/7,2001:db8::1/128,172.16.0.0/12,100.64.0.0/10,64.0.0.0/6,0.0.0.0/0,::/0",
        )
        .unwrap();
        let fixed = ["192.0.2.7", "192.0.2.6", "172.31.255.255", "172.32.0.0", "2001:db8::1", "2001:db8::2", "fd00::1"];
        let fixed = fixed
            .into_iter()
            .map(String::from)
            .chain((0..=255).flat_map(|o| [format!("{o}.0.0.0"), format!("{o}.255.255.255")]));
        let fixed = fixed.map(|s| s.parse::<IpAddr>().unwrap());
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let random = (0..20_000u32).map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 2 == 0 {
                IpAddr::from(Ipv4Addr::from_bits(x as u32 & if i % 3 == 0 { 0x0aff_ffff } else { u32::MAX }))
            } else {
                IpAddr::from(Ipv6Addr::from_bits(u128::from(x) << 64 | u128::from(x.rotate_left(7))))
            }
        });
        for ip in fixed.chain(random) {
            for n in 1..=set.blocks().len() {
                let sub = NetSet::new(set.blocks()[..n].to_vec());
                assert_eq!(sub.contains(ip), sub.blocks().iter().any(|b| b.contains(ip)), "{ip} in {n} blocks");
            }
        }
        assert!(!NetSet::parse_list("10.0.0.0/8").unwrap().contains("::ffff:10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn kusto_private_is_null_for_ipv6() {
        assert_eq!(kusto_ipv4_is_private("172.31.255.255".parse().unwrap()), Some(true));
        assert_eq!(kusto_ipv4_is_private("172.32.0.1".parse().unwrap()), Some(false));
        assert_eq!(kusto_ipv4_is_private("100.64.0.1".parse().unwrap()), Some(false));
        assert_eq!(kusto_ipv4_is_private("fd00::1".parse().unwrap()), None);
    }
}
