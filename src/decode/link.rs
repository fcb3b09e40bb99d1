//! Link-layer stripping: finds where the IP packet starts inside a frame for every
//! supported link type, and which IP version the link header announces. Only a few
//! fixed-offset fields are read here (ether type, address family, VLAN tags); the IP
//! layer and everything above is sliced by `etherparse` in the parent module.

use super::{SkipReason, Vlan};
use crate::capture::LinkType;

/// Which IP version the link header announced for the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum IpHint {
    V4,
    V6,
    /// Raw IP links: the version nibble decides.
    ByVersion,
}

/// The network-layer part of a frame.
#[derive(Clone, Copy, Debug)]
pub(super) struct LinkPayload<'a> {
    pub hint: IpHint,
    /// Innermost 802.1Q / 802.1ad VLAN id.
    pub vlan: Vlan,
    /// Bytes of link-layer header before `ip` (to derive the IP length from the wire length).
    pub header_len: usize,
    pub ip: &'a [u8],
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
/// More tags than this is not a real frame; stop instead of walking garbage.
const MAX_VLAN_TAGS: usize = 8;
/// BSD address families for IPv6 differ per OS (Linux 10, NetBSD/OpenBSD 24,
/// FreeBSD 28, macOS 30).
const AF_INET: u32 = 2;
const AF_INET6: [u32; 4] = [10, 24, 28, 30];
/// ARPHRD_NETLINK: SLL frames from `nlmon` carry a netlink protocol, not an ether type.
const ARPHRD_NETLINK: u16 = 824;

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Strips the link layer of `frame` (as captured).
#[inline(always)]
pub(super) fn strip(link: LinkType, frame: &[u8]) -> Result<LinkPayload<'_>, SkipReason> {
    match link {
        LinkType::Ethernet => {
            let ether_type = be16(frame, 12).ok_or(SkipReason::Truncated)?;
            after_ether_type(ether_type, frame, 14)
        }
        LinkType::LinuxSll => {
            let ether_type = be16(frame, 14).ok_or(SkipReason::Truncated)?;
            if be16(frame, 2) == Some(ARPHRD_NETLINK) {
                return Err(SkipReason::NonIp);
            }
            after_ether_type(ether_type, frame, 16)
        }
        LinkType::LinuxSll2 => {
            if frame.len() < 20 {
                return Err(SkipReason::Truncated);
            }
            if be16(frame, 8) == Some(ARPHRD_NETLINK) {
                return Err(SkipReason::NonIp);
            }
            let ether_type = be16(frame, 0).ok_or(SkipReason::Truncated)?;
            after_ether_type(ether_type, frame, 20)
        }
        LinkType::Raw => Ok(plain(IpHint::ByVersion, frame, 0)),
        LinkType::Ipv4 => Ok(plain(IpHint::V4, frame, 0)),
        LinkType::Ipv6 => Ok(plain(IpHint::V6, frame, 0)),
        LinkType::Null | LinkType::Loop => {
            let af = frame.get(..4).ok_or(SkipReason::Truncated)?;
            let af = [af[0], af[1], af[2], af[3]];
            let big = u32::from_be_bytes(af);
            // NULL is in the capturing host's byte order, which the file does not say.
            let candidates = if link == LinkType::Loop { [big, big] } else { [big, u32::from_le_bytes(af)] };
            let hint = if candidates.contains(&AF_INET) {
                IpHint::V4
            } else if candidates.iter().any(|c| AF_INET6.contains(c)) {
                IpHint::V6
            } else {
                return Err(SkipReason::NonIp);
            };
            Ok(plain(hint, frame, 4))
        }
    }
}

#[inline(always)]
fn plain(hint: IpHint, frame: &[u8], header_len: usize) -> LinkPayload<'_> {
    LinkPayload { hint, vlan: Vlan::NONE, header_len, ip: frame.get(header_len..).unwrap_or(&[]) }
}

/// Walks VLAN tags starting at `offset` (just past `ether_type`), keeping the innermost id.
#[inline(always)]
fn after_ether_type(mut ether_type: u16, frame: &[u8], mut offset: usize) -> Result<LinkPayload<'_>, SkipReason> {
    let mut vlan = Vlan::NONE;
    let mut tags = 0;
    // 802.1Q, 802.1ad (QinQ outer tag) and the pre-standard QinQ tag 0x9100.
    while matches!(ether_type, 0x8100 | 0x88A8 | 0x9100) {
        tags += 1;
        if tags > MAX_VLAN_TAGS {
            return Err(SkipReason::Malformed);
        }
        let tci = be16(frame, offset).ok_or(SkipReason::Truncated)?;
        ether_type = be16(frame, offset + 2).ok_or(SkipReason::Truncated)?;
        vlan = Vlan::id(tci & 0x0FFF);
        offset += 4;
    }
    let hint = match ether_type {
        ETHERTYPE_IPV4 => IpHint::V4,
        ETHERTYPE_IPV6 => IpHint::V6,
        _ => return Err(SkipReason::NonIp),
    };
    Ok(LinkPayload { vlan, ..plain(hint, frame, offset) })
}
