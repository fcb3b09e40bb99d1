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
    let (mut a, mut b) = (addr_bytes(flow.src), addr_bytes(flow.dst));
    let mut ports = ports;
    let ordered =
        one_way || a.as_slice() < b.as_slice() || (a.as_slice() == b.as_slice() && ports.is_some_and(|(s, d)| s < d));
    if !ordered {
        std::mem::swap(&mut a, &mut b);
        ports = ports.map(|(s, d)| (d, s));
    }
    // The hashed message (at most 2 + 16 + 16 + 2 + 4 bytes) fits one SHA-1 block with
    // its padding (0x80, zeros, the bit length in the last 8 bytes): built in place and
    // compressed once, with no hasher state or block buffer around it.
    let mut block = [0u8; 64];
    block[..2].copy_from_slice(&seed.to_be_bytes());
    let mut n = 2;
    for addr in [a.as_slice(), b.as_slice()] {
        block[n..n + addr.len()].copy_from_slice(addr);
        n += addr.len();
    }
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

/// Standard base64 with padding of 20 bytes into 28 characters: six whole 3-byte
/// groups, then the last two bytes and one `=`.
fn base64(input: &[u8; 20], out: &mut [u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let out = &mut out[..28];
    let sextets = |v: u32| [18, 12, 6, 0].map(|shift| ALPHABET[(v >> shift & 63) as usize]);
    for (group, o) in input.chunks_exact(3).zip(out.chunks_exact_mut(4)) {
        o.copy_from_slice(&sextets(u32::from_be_bytes([0, group[0], group[1], group[2]])));
    }
    let last = sextets(u32::from_be_bytes([0, input[18], input[19], 0]));
    out[24..].copy_from_slice(&[last[0], last[1], last[2], b'=']);
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
