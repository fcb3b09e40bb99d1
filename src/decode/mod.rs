//! Decoding: slices a raw frame (any supported link type) with `etherparse` into the
//! handful of fields the flow table needs. Nothing is deserialized or copied; a frame
//! that is not an unfragmented IP packet is counted as skipped with a reason.

mod fast;
mod link;
#[cfg(test)]
mod tests;
mod transport;

use crate::capture::{Frame, LinkType};
use crate::time::Timestamp;
use etherparse::err::ip::LaxHeaderSliceError;
use etherparse::LaxIpSlice;
use link::IpHint;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IANA protocol numbers used throughout.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
}

/// TCP flag bits as in the TCP header's flags byte.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// The flow tuple quoted inside an ICMP/ICMPv6 error (the packet that caused it),
/// as sent by the original sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotedTuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    /// Ports (0 when the quoted protocol has none or they were cut off).
    pub sport: u16,
    pub dport: u16,
}

/// Transport-layer view of a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// (The acknowledgment number is not kept: nothing downstream reads it.)
    Tcp {
        sport: u16,
        dport: u16,
        flags: u8,
        seq: u32,
        window: u16,
        payload_len: u32,
    },
    Udp {
        sport: u16,
        dport: u16,
        payload_len: u32,
    },
    /// ICMP (v4) or ICMPv6; `quoted` is set for error messages that quote a packet
    /// (boxed: errors are rare, and the tuple's two addresses would double every packet).
    Icmp {
        v6: bool,
        icmp_type: u8,
        code: u8,
        echo_id: Option<u16>,
        quoted: Option<Box<QuotedTuple>>,
    },
    /// Any other IP protocol, or a TCP/UDP/ICMP header cut off by the snaplen.
    Other {
        protocol: u8,
    },
}

/// The IP header fields the flow table uses, per version: an IPv4 packet's addresses
/// take 8 bytes, not IPv6's 32, and the identification exists only in IPv4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpHeader {
    V4 { src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, id: u16 },
    V6 { src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8 },
}

impl IpHeader {
    /// The header fields of a packet from `src` to `dst`, both of one family (`None`
    /// otherwise); `id` is dropped for IPv6. For packets built by hand (tests, tools).
    pub fn new(src: IpAddr, dst: IpAddr, ttl: u8, id: u16) -> Option<IpHeader> {
        match (src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => Some(IpHeader::V4 { src, dst, ttl, id }),
            (IpAddr::V6(src), IpAddr::V6(dst)) => Some(IpHeader::V6 { src, dst, hop_limit: ttl }),
            _ => None,
        }
    }
}

/// The innermost 802.1Q VLAN id (12 bits), or none, in two bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vlan(u16);

impl Vlan {
    /// Untagged.
    pub const NONE: Vlan = Vlan(u16::MAX);

    /// The VLAN `id` (a 12-bit id, as in the tag's TCI).
    #[inline]
    pub fn id(id: u16) -> Vlan {
        debug_assert!(id <= 0x0FFF, "VLAN id {id} is not 12 bits");
        Vlan(id)
    }

    #[inline]
    pub fn get(self) -> Option<u16> {
        (self != Vlan::NONE).then_some(self.0)
    }
}

/// What the flow table needs from one IP packet: 64 bytes (checked by a test), as every
/// packet of a replay crosses from the reader thread to the capture thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketMeta {
    pub ts: Timestamp,
    /// IP-layer bytes of this packet: the IP header's total length (IPv4) or 40 + payload
    /// length (IPv6), i.e. what was on the wire above the link layer, even when truncated.
    pub ip_len: u32,
    pub vlan: Vlan,
    pub ip: IpHeader,
    pub transport: Transport,
}

impl PacketMeta {
    /// IANA protocol number of the transport.
    pub fn protocol(&self) -> u8 {
        match self.transport {
            Transport::Tcp { .. } => proto::TCP,
            Transport::Udp { .. } => proto::UDP,
            Transport::Icmp { v6: false, .. } => proto::ICMP,
            Transport::Icmp { v6: true, .. } => proto::ICMPV6,
            Transport::Other { protocol } => protocol,
        }
    }

    #[inline]
    pub fn src(&self) -> IpAddr {
        match self.ip {
            IpHeader::V4 { src, .. } => IpAddr::V4(src),
            IpHeader::V6 { src, .. } => IpAddr::V6(src),
        }
    }

    #[inline]
    pub fn dst(&self) -> IpAddr {
        match self.ip {
            IpHeader::V4 { dst, .. } => IpAddr::V4(dst),
            IpHeader::V6 { dst, .. } => IpAddr::V6(dst),
        }
    }

    /// `(src, dst)`, or `(dst, src)` when `reversed` (swapped before they are widened to
    /// `IpAddr`, which is cheaper than swapping the `IpAddr`s).
    #[inline]
    pub fn addrs(&self, reversed: bool) -> (IpAddr, IpAddr) {
        fn order<T>(x: T, y: T, reversed: bool) -> (T, T) {
            if reversed {
                (y, x)
            } else {
                (x, y)
            }
        }
        match self.ip {
            IpHeader::V4 { src, dst, .. } => {
                let (a, b) = order(src, dst, reversed);
                (IpAddr::V4(a), IpAddr::V4(b))
            }
            IpHeader::V6 { src, dst, .. } => {
                let (a, b) = order(src, dst, reversed);
                (IpAddr::V6(a), IpAddr::V6(b))
            }
        }
    }

    /// TTL (IPv4) or hop limit (IPv6).
    pub fn ttl(&self) -> u8 {
        match self.ip {
            IpHeader::V4 { ttl, .. } => ttl,
            IpHeader::V6 { hop_limit, .. } => hop_limit,
        }
    }

    /// IPv4 identification (0 for IPv6).
    pub fn ip_id(&self) -> u16 {
        match self.ip {
            IpHeader::V4 { id, .. } => id,
            IpHeader::V6 { .. } => 0,
        }
    }
}

/// Why a frame did not become a [`PacketMeta`]. Counted in the exit summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// Not IPv4/IPv6 (ARP, LLDP, STP, ...).
    NonIp,
    /// A non-first or first IP fragment (reassembly is out of scope).
    Fragment,
    /// Too short to hold a complete IP header.
    Truncated,
    /// Headers that contradict themselves (bad version, header length, ...).
    Malformed,
}

impl SkipReason {
    pub const ALL: [SkipReason; 4] =
        [SkipReason::NonIp, SkipReason::Fragment, SkipReason::Truncated, SkipReason::Malformed];
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NonIp => "non_ip",
            SkipReason::Fragment => "ip_fragment",
            SkipReason::Truncated => "truncated",
            SkipReason::Malformed => "malformed",
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Decodes one frame. Never panics, whatever the bytes.
///
/// Plain IPv4/IPv6 + TCP/UDP packets take a fixed-offset fast path (`fast.rs`); the rest
/// is sliced by `etherparse`. Both give the same result for every frame.
#[inline]
pub fn decode(link: LinkType, frame: &Frame<'_>) -> Result<PacketMeta, SkipReason> {
    let net = checked_link(link, frame)?;
    if let Some(meta) = fast::ip(net.ip, frame.ts, net.vlan) {
        return Ok(meta);
    }
    decode_ip(net, frame)
}

/// [`decode`] into `slot`, a packet wrapped by `packet` or a skip wrapped by `skipped`:
/// the fast path builds the packet right in the slot (the reader thread decodes into
/// the batch it sends, so a packet is not moved from one temporary to the next).
/// Returns whether the frame went the general way: only then can the packet own heap
/// memory (a quoted tuple).
#[inline(always)]
pub fn decode_into<T>(
    link: LinkType,
    frame: &Frame<'_>,
    slot: &mut T,
    packet: impl FnOnce(PacketMeta) -> T,
    skipped: impl FnOnce(SkipReason) -> T,
) -> bool {
    match checked_link(link, frame) {
        Ok(net) => match fast::ip(net.ip, frame.ts, net.vlan) {
            Some(meta) => {
                *slot = packet(meta);
                false
            }
            None => {
                *slot = match decode_ip(net, frame) {
                    Ok(meta) => packet(meta),
                    Err(reason) => skipped(reason),
                };
                true
            }
        },
        Err(reason) => {
            *slot = skipped(reason);
            false
        }
    }
}

/// The link layer stripped and the IP version checked against what it announced.
#[inline(always)]
fn checked_link<'a>(link: LinkType, frame: &Frame<'a>) -> Result<link::LinkPayload<'a>, SkipReason> {
    let net = link::strip(link, frame.data)?;
    let version = net.ip.first().map(|b| b >> 4).ok_or(SkipReason::Truncated)?;
    match (net.hint, version) {
        (IpHint::V4, 4) | (IpHint::V6, 6) | (IpHint::ByVersion, 4 | 6) => Ok(net),
        _ => Err(SkipReason::Malformed),
    }
}

/// The general path: every frame, sliced with `etherparse` (the fast path is tested
/// against it).
#[cfg(test)]
fn decode_general(link: LinkType, frame: &Frame<'_>) -> Result<PacketMeta, SkipReason> {
    decode_ip(checked_link(link, frame)?, frame)
}

/// Slices the IP packet of `net` with `etherparse`.
fn decode_ip(net: link::LinkPayload<'_>, frame: &Frame<'_>) -> Result<PacketMeta, SkipReason> {
    let (ip, _ext_error) = LaxIpSlice::from_slice(net.ip).map_err(|e| match e {
        LaxHeaderSliceError::Len(_) => SkipReason::Truncated,
        LaxHeaderSliceError::Content(_) => SkipReason::Malformed,
    })?;
    let payload = ip.payload();
    if payload.fragmented {
        return Err(SkipReason::Fragment);
    }
    // What was on the wire above the link layer, for when the IP header has no length.
    let wire_ip_len = (frame.wire_len as usize).saturating_sub(net.header_len).max(net.ip.len());
    let declared = match &ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            Some(usize::from(h.total_len())).filter(|&t| t >= h.slice().len())
        }
        LaxIpSlice::Ipv6(v6) => {
            Some(usize::from(v6.header().payload_length())).filter(|&p| p > 0).map(|p| p + IPV6_HEADER_LEN)
        }
    };
    let ip_len = declared.unwrap_or(wire_ip_len);
    let header = match &ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            IpHeader::V4 { src: h.source_addr(), dst: h.destination_addr(), ttl: h.ttl(), id: h.identification() }
        }
        LaxIpSlice::Ipv6(v6) => {
            let h = v6.header();
            IpHeader::V6 { src: h.source_addr(), dst: h.destination_addr(), hop_limit: h.hop_limit() }
        }
    };
    // Offset of the transport header inside the IP packet (IP header + extensions).
    let l4_offset = (payload.payload.as_ptr() as usize).saturating_sub(net.ip.as_ptr() as usize);
    let l4_len = ip_len.saturating_sub(l4_offset);
    let transport = transport::read(payload.ip_number.0, payload.payload, clamp_u32(l4_len))?;
    Ok(PacketMeta { ts: frame.ts, ip_len: clamp_u32(ip_len), vlan: net.vlan, ip: header, transport })
}

const IPV6_HEADER_LEN: usize = 40;

fn clamp_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
