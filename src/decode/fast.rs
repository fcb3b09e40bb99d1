//! Fixed-offset fast path for the common case: a plain IPv4 header (no options, not
//! fragmented, total length at least the header) or an IPv6 header without extension
//! headers (payload length set), carrying TCP or UDP. Everything it reads sits at a fixed
//! offset, so it skips `etherparse`'s general slicing; anything else (IPv4 options,
//! fragments, extension headers, ICMP, other protocols, odd lengths) returns `None` and
//! goes the general way. Its results are checked against the general path byte for byte
//! (`decode::tests`, on generated traffic and on random mutations of it).

use super::{proto, transport, IpHeader, PacketMeta, Vlan};
use crate::time::Timestamp;
use std::net::{Ipv4Addr, Ipv6Addr};

const IPV4_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;

/// Decodes the IP packet `ip` (the frame's bytes after the link header, version already
/// checked against the link's hint) if it is one the fast path handles. A packet the
/// fast path would reject (a TCP header length below 20) is left to the general path
/// too, which rejects it the same way; so the result is a plain `Option` and the packet
/// is built once, where it is returned.
#[inline(always)]
pub(super) fn ip(ip: &[u8], ts: Timestamp, vlan: Vlan) -> Option<PacketMeta> {
    match ip.first()? >> 4 {
        4 => v4(ip, ts, vlan),
        6 => v6(ip, ts, vlan),
        _ => None,
    }
}

#[inline(always)]
fn v4(ip: &[u8], ts: Timestamp, vlan: Vlan) -> Option<PacketMeta> {
    let h: &[u8; IPV4_HEADER_LEN] = ip.get(..IPV4_HEADER_LEN)?.try_into().ok()?;
    let protocol = h[9];
    let total_len = usize::from(u16::from_be_bytes([h[2], h[3]]));
    // IHL 5 (no options); neither more-fragments nor a fragment offset; TCP or UDP.
    if h[0] != 0x45
        || u16::from_be_bytes([h[6], h[7]]) & 0x3FFF != 0
        || total_len < IPV4_HEADER_LEN
        || !matches!(protocol, proto::TCP | proto::UDP)
    {
        return None;
    }
    let l4 = &ip[IPV4_HEADER_LEN..total_len.min(ip.len())];
    let l4_len = (total_len - IPV4_HEADER_LEN) as u32;
    let transport = transport::read(protocol, l4, l4_len).ok()?;
    Some(PacketMeta {
        ts,
        ip_len: total_len as u32,
        vlan,
        ip: IpHeader::V4 {
            src: Ipv4Addr::new(h[12], h[13], h[14], h[15]),
            dst: Ipv4Addr::new(h[16], h[17], h[18], h[19]),
            ttl: h[8],
            id: u16::from_be_bytes([h[4], h[5]]),
        },
        transport,
    })
}

#[inline]
fn v6(ip: &[u8], ts: Timestamp, vlan: Vlan) -> Option<PacketMeta> {
    let h: &[u8; IPV6_HEADER_LEN] = ip.get(..IPV6_HEADER_LEN)?.try_into().ok()?;
    let protocol = h[6];
    let payload_len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    // No extension headers; a zero payload length (jumbogram, TSO) goes the general way.
    if payload_len == 0 || !matches!(protocol, proto::TCP | proto::UDP) {
        return None;
    }
    let total_len = payload_len + IPV6_HEADER_LEN;
    let l4 = &ip[IPV6_HEADER_LEN..total_len.min(ip.len())];
    let src: [u8; 16] = h[8..24].try_into().ok()?;
    let dst: [u8; 16] = h[24..40].try_into().ok()?;
    let transport = transport::read(protocol, l4, payload_len as u32).ok()?;
    Some(PacketMeta {
        ts,
        ip_len: total_len as u32,
        vlan,
        ip: IpHeader::V6 { src: Ipv6Addr::from(src), dst: Ipv6Addr::from(dst), hop_limit: h[7] },
        transport,
    })
}
