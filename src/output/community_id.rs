//! Community ID v1 (<https://github.com/corelight/community-id-spec>): the open flow hash
//! Zeek, Suricata, Elastic, Arkime and Wireshark share, so an analyst can pivot from a
//! flowsentry record to the same flow in those tools.
//!
//! `"1:" + base64(sha1(seed . saddr . daddr . proto . 0 . sport . dport))`, all in network
//! byte order, the endpoints ordered so the smaller address (then port) comes first. ICMP
//! and ICMPv6 use the type as the source port and, for request/reply types, the
//! counterpart type as the destination port (both directions then hash alike); other
//! ICMP types are one-way: the code is the destination port and the order is kept. Other
//! protocols hash the addresses and protocol only. Allocation-free: the result is a
//! fixed 30-byte array.

use crate::decode::proto;
use std::net::IpAddr;

/// Length of a v1 Community ID: `1:` and 28 base64 characters.
pub const LEN: usize = 30;

/// ICMP request/reply counterparts (pycommunityid's icmp.py / Zeek's ICMP analyzer).
fn icmp_counterpart(v6: bool, icmp_type: u8) -> Option<u8> {
    Some(match (v6, icmp_type) {
        (false, 8) => 0,
        (false, 0) => 8,
        (false, 13) => 14,
        (false, 14) => 13,
        (false, 15) => 16,
        (false, 16) => 15,
        (false, 10) => 9,
        (false, 9) => 10,
        (false, 17) => 18,
        (false, 18) => 17,
        (true, 128) => 129,
        (true, 129) => 128,
        (true, 133) => 134,
        (true, 134) => 133,
        (true, 135) => 136,
        (true, 136) => 135,
        (true, 130) => 131,
        (true, 131) => 130,
        (true, 139) => 140,
        (true, 140) => 139,
        (true, 144) => 145,
        (true, 145) => 144,
        _ => return None,
    })
}

/// What a flow's Community ID is computed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    /// TCP/UDP ports, initiator first.
    pub ports: Option<(u16, u16)>,
    /// ICMP/ICMPv6: type and code of the initiator's first message.
    pub icmp: Option<(u8, u8)>,
}

/// The Community ID v1 of `flow` with `seed`, e.g. `1:LQU9qZlK+B5F3KDmev6m5PMibrg=`.
pub fn community_id(seed: u16, flow: &FlowTuple) -> [u8; LEN] {
    let is_icmp = flow.protocol == proto::ICMP || flow.protocol == proto::ICMPV6;
    let (ports, one_way) = match (is_icmp, flow.icmp, flow.ports) {
        (true, Some((t, code)), _) => match icmp_counterpart(flow.protocol == proto::ICMPV6, t) {
            Some(other) => (Some((u16::from(t), u16::from(other))), false),
            None => (Some((u16::from(t), u16::from(code))), true),
        },
        (false, _, ports) => (ports, false),
        (true, None, _) => (None, false),
    };
    // The endpoints in order, written after the seed. Addresses of one family compare
    // as big-endian integers (what comparing their bytes amounts to); the byte slices
    // are compared only for a mixed pair.
    let mut block = [0u8; 64];
    block[..2].copy_from_slice(&seed.to_be_bytes());
    let in_order = |smaller: bool, equal: bool, ports: Option<(u16, u16)>| {
        one_way || smaller || (equal && ports.is_some_and(|(s, d)| s < d))
    };
    let (ordered, mut n) = match (flow.src, flow.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let (s, d) = (u32::from(s), u32::from(d));
            let ordered = in_order(s < d, s == d, ports);
            let (a, b) = if ordered { (s, d) } else { (d, s) };
            block[2..6].copy_from_slice(&a.to_be_bytes());
            block[6..10].copy_from_slice(&b.to_be_bytes());
            (ordered, 10)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let (s, d) = (u128::from(s), u128::from(d));
            let ordered = in_order(s < d, s == d, ports);
            let (a, b) = if ordered { (s, d) } else { (d, s) };
            block[2..18].copy_from_slice(&a.to_be_bytes());
            block[18..34].copy_from_slice(&b.to_be_bytes());
            (ordered, 34)
        }
        (src, dst) => {
            let (a, b) = (addr_bytes(src), addr_bytes(dst));
            let ordered = in_order(a.as_slice() < b.as_slice(), a.as_slice() == b.as_slice(), ports);
            let (a, b) = if ordered { (a, b) } else { (b, a) };
            let mut n = 2;
            for addr in [a.as_slice(), b.as_slice()] {
                block[n..n + addr.len()].copy_from_slice(addr);
                n += addr.len();
            }
            (ordered, n)
        }
    };
    let ports = if ordered { ports } else { ports.map(|(s, d)| (d, s)) };
    // The hashed message (at most 2 + 16 + 16 + 2 + 4 bytes) fits one SHA-1 block with
    // its padding (0x80, zeros, the bit length in the last 8 bytes): built in place and
    // compressed once, with no hasher state or block buffer around it.
    block[n] = flow.protocol;
    n += 2;
    if let Some((s, d)) = ports {
        block[n..n + 2].copy_from_slice(&s.to_be_bytes());
        block[n + 2..n + 4].copy_from_slice(&d.to_be_bytes());
        n += 4;
    }
    block[n] = 0x80;
    block[56..].copy_from_slice(&(8 * n as u64).to_be_bytes());
    let mut state = SHA1_INIT;
    sha1::compress(&mut state, &[block.into()]);
    let mut digest = [0u8; 20];
    for (d, w) in digest.chunks_exact_mut(4).zip(state) {
        d.copy_from_slice(&w.to_be_bytes());
    }
    let mut out = [0u8; LEN];
    out[..2].copy_from_slice(b"1:");
    base64(&digest, &mut out[2..]);
    out
}

/// SHA-1's initial state (FIPS 180-4, 5.3.1).
const SHA1_INIT: [u32; 5] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476, 0xc3d2_e1f0];

/// An address in network byte order (4 or 16 bytes).
struct AddrBytes {
    bytes: [u8; 16],
    len: usize,
}

impl AddrBytes {
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

fn addr_bytes(ip: IpAddr) -> AddrBytes {
    let mut bytes = [0u8; 16];
    match ip {
        IpAddr::V4(a) => {
            bytes[..4].copy_from_slice(&a.octets());
            AddrBytes { bytes, len: 4 }
        }
        IpAddr::V6(a) => AddrBytes { bytes: a.octets(), len: 16 },
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The two base64 characters of each 12-bit value.
static PAIRS: [[u8; 2]; 4096] = {
    let mut t = [[0u8; 2]; 4096];
    let mut i = 0;
    while i < 4096 {
        t[i] = [ALPHABET[i >> 6], ALPHABET[i & 63]];
        i += 1;
    }
    t
};

/// Standard base64 with padding of 20 bytes into 28 characters: six whole 3-byte
/// groups (two 12-bit lookups each), then the last two bytes and one `=`.
fn base64(input: &[u8; 20], out: &mut [u8]) {
    let out = &mut out[..28];
    for (group, o) in input.chunks_exact(3).zip(out.chunks_exact_mut(4)) {
        let v = usize::from(group[0]) << 16 | usize::from(group[1]) << 8 | usize::from(group[2]);
        o[..2].copy_from_slice(&PAIRS[v >> 12]);
        o[2..].copy_from_slice(&PAIRS[v & 0xfff]);
    }
    let v = usize::from(input[18]) << 16 | usize::from(input[19]) << 8;
    out[24..26].copy_from_slice(&PAIRS[v >> 12]);
    out[26] = ALPHABET[v >> 6 & 63];
    out[27] = b'=';
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(seed: u16, src: &str, dst: &str, protocol: u8, ports: Option<(u16, u16)>, icmp: Option<(u8, u8)>) -> String {
        let flow = FlowTuple { src: src.parse().unwrap(), dst: dst.parse().unwrap(), protocol, ports, icmp };
        String::from_utf8(community_id(seed, &flow).to_vec()).unwrap()
    }

    /// Values from the spec's baseline (corelight/community-id-spec
    /// baseline/baseline_deflt.json @ c4ec2bc40d65ddbcbdd642582bf5609797a80772).
    #[test]
    fn spec_baseline_values() {
        let tcp = "1:LQU9qZlK+B5F3KDmev6m5PMibrg=";
        assert_eq!(id(0, "128.232.110.120", "66.35.250.204", 6, Some((34855, 80)), None), tcp);
        assert_eq!(id(0, "66.35.250.204", "128.232.110.120", 6, Some((80, 34855)), None), tcp);
        let v6 = "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=";
        assert_eq!(
            id(0, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 6, Some((63943, 25)), None),
            v6
        );
        assert_eq!(id(0, "8.8.8.8", "192.168.1.52", 17, Some((53, 54585)), None), "1:d/FP5EW3wiY1vCndhwleRRKHowQ=");
        assert_eq!(id(0, "10.1.12.2", "10.1.12.1", 46, None, None), "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=");
        assert_eq!(id(0, "10.1.12.1", "10.1.12.2", 46, None, None), "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=");
        // ICMP echo and reply map to the same ID; time exceeded is one-way.
        assert_eq!(id(0, "192.168.0.89", "192.168.0.1", 1, None, Some((8, 0))), "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=");
        assert_eq!(id(0, "192.168.0.1", "192.168.0.89", 1, None, Some((0, 0))), "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=");
        assert_eq!(id(0, "10.0.0.1", "10.0.0.2", 1, None, Some((11, 0))), "1:YHxtAirCG//0OzkcVAukqKQN9xM=");
        // ICMPv6: neighbor solicitation/advertisement, echo, router solicitation, one-way errors.
        let ns = "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=";
        assert_eq!(id(0, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 58, None, Some((135, 0))), ns);
        assert_eq!(id(0, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 58, None, Some((136, 0))), ns);
        assert_eq!(
            id(0, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 58, None, Some((135, 0))),
            "1:zavyT/cezQr1fmImYCwYnMXbgck="
        );
        let echo = "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=";
        assert_eq!(id(0, "3ffe:507:0:1:200:86ff:fe05:80da", "3ffe:501:0:1001::2", 58, None, Some((128, 0))), echo);
        assert_eq!(id(0, "3ffe:501:0:1001::2", "3ffe:507:0:1:200:86ff:fe05:80da", 58, None, Some((129, 0))), echo);
        assert_eq!(
            id(0, "fe80::200:86ff:fe05:80da", "ff02::2", 58, None, Some((133, 0))),
            "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0="
        );
        assert_eq!(
            id(0, "3ffe:501:1800:2345::2", "3ffe:507:0:1:200:86ff:fe05:80da", 58, None, Some((3, 0))),
            "1:2ObVBgIn28oZvibYZhZMBgh7WdQ="
        );
        assert_eq!(
            id(0, "3ffe:501:410:0:2c0:dfff:fe47:33e", "3ffe:507:0:1:200:86ff:fe05:80da", 58, None, Some((1, 4))),
            "1:hLZd0XGWojozrvxqE0dWB1iM6R0="
        );
        // Seed 1 (baseline_seed1.json, same commit).
        assert_eq!(
            id(1, "128.232.110.120", "66.35.250.204", 6, Some((34855, 80)), None),
            "1:3V71V58M3Ksw/yuFALMcW0LAHvc="
        );
        assert_eq!(id(1, "8.8.8.8", "192.168.1.52", 17, Some((53, 54585)), None), "1:Q9We8WO3piVF8yEQBNJF4uiSVrI=");
        assert_eq!(id(1, "10.1.12.1", "10.1.12.2", 46, None, None), "1:rYir8gphR31noO9iDRQmF/BteEI=");
    }

    /// The spec's computation step by step: hasher, byte-slice order, standard base64.
    fn reference(seed: u16, flow: &FlowTuple) -> String {
        use sha1::{Digest, Sha1};
        let is_icmp = flow.protocol == proto::ICMP || flow.protocol == proto::ICMPV6;
        let (mut ports, one_way) = match (is_icmp, flow.icmp, flow.ports) {
            (true, Some((t, code)), _) => match icmp_counterpart(flow.protocol == proto::ICMPV6, t) {
                Some(other) => (Some((u16::from(t), u16::from(other))), false),
                None => (Some((u16::from(t), u16::from(code))), true),
            },
            (false, _, ports) => (ports, false),
            (true, None, _) => (None, false),
        };
        let bytes = |ip: IpAddr| match ip {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        let (mut a, mut b) = (bytes(flow.src), bytes(flow.dst));
        if !(one_way || a < b || (a == b && ports.is_some_and(|(s, d)| s < d))) {
            std::mem::swap(&mut a, &mut b);
            ports = ports.map(|(s, d)| (d, s));
        }
        let mut h = Sha1::new();
        h.update(seed.to_be_bytes());
        h.update(&a);
        h.update(&b);
        h.update([flow.protocol, 0]);
        if let Some((s, d)) = ports {
            h.update(s.to_be_bytes());
            h.update(d.to_be_bytes());
        }
        let digest: [u8; 20] = h.finalize().into();
        let mut text = String::from("1:");
        for group in digest.chunks(3) {
            let v = group.iter().enumerate().fold(0u32, |v, (i, &x)| v | u32::from(x) << (16 - 8 * i));
            for i in 0..=group.len() {
                text.push(ALPHABET[(v >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        text.push('=');
        text
    }

    #[test]
    fn matches_the_reference_for_either_order_family_and_equal_addresses() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..4_000 {
            let r = next();
            let v4 = |r: u64| IpAddr::from(std::net::Ipv4Addr::from((r as u32) & 0xff00_00ff));
            let v6 = |r: u64| IpAddr::from(std::net::Ipv6Addr::from(u128::from(r & 0xff00_0000_0000_00ff) << 64));
            let (src, dst) = match i % 5 {
                0 | 1 => (v4(r), v4(next())),
                2 => (v6(r), v6(next())),
                3 => (v4(r), v6(next())),
                _ => (v6(r), v4(next())),
            };
            let dst = if r % 7 == 0 && src.is_ipv4() == dst.is_ipv4() { src } else { dst };
            let protocol = [6, 17, 1, 58, 47][(r >> 20) as usize % 5];
            let ports = (protocol == 6 || protocol == 17).then_some(((r >> 8) as u16 % 4, (r >> 30) as u16 % 4));
            let icmp = (protocol == 1 || protocol == 58).then_some(((r >> 40) as u8, (r >> 48) as u8 % 3));
            let flow = FlowTuple { src, dst, protocol, ports, icmp };
            let seed = (r >> 56) as u16 % 3;
            assert_eq!(
                String::from_utf8(community_id(seed, &flow).to_vec()).unwrap(),
                reference(seed, &flow),
                "{flow:?}"
            );
        }
    }

    #[test]
    fn base64_matches_the_standard_encoding() {
        for (input, expect) in [
            ([0u8; 20], "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            ([0xff; 20], "//////////////////////////8="),
            (std::array::from_fn(|i| i as u8), "AAECAwQFBgcICQoLDA0ODxAREhM="),
        ] {
            let mut out = [0u8; 28];
            base64(&input, &mut out);
            assert_eq!(std::str::from_utf8(&out).unwrap(), expect);
        }
    }
}
