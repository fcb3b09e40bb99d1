//! Transport-layer reading (TCP, UDP, ICMP, ICMPv6) from the possibly snaplen-cut IP
//! payload. Only fixed-offset fields are read, each with a bounds check, so a header cut
//! anywhere keeps what is readable; ICMP errors have their quoted packet sliced again
//! with `etherparse`'s lax IP slicer (quoted packets are cut off by design).

use super::{proto, QuotedTuple, SkipReason, Transport};
use etherparse::LaxIpSlice;

/// TCP fields up to and including the flags byte must be present to call it TCP.
const TCP_MIN_READABLE: usize = 14;
const UDP_HEADER_LEN: u32 = 8;
/// ICMP error messages: the quoted packet starts after type, code, checksum and 4 bytes.
const ICMP_QUOTE_OFFSET: usize = 8;

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads the transport header of `protocol` from the captured bytes `l4`; `l4_len` is the
/// transport-layer length the IP header declares (payload lengths are derived from it).
#[inline(always)]
pub(super) fn read(protocol: u8, l4: &[u8], l4_len: u32) -> Result<Transport, SkipReason> {
    let other = Transport::Other { protocol };
    Ok(match protocol {
        proto::TCP => {
            // Whole fixed header up to the window present (the usual case): no per-field checks.
            if let Some(h) = l4.first_chunk::<16>() {
                let data_offset = u32::from(h[12] >> 4) * 4;
                if data_offset < 20 {
                    return Err(SkipReason::Malformed);
                }
                return Ok(Transport::Tcp {
                    sport: u16::from_be_bytes([h[0], h[1]]),
                    dport: u16::from_be_bytes([h[2], h[3]]),
                    seq: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                    flags: h[13],
                    window: u16::from_be_bytes([h[14], h[15]]),
                    payload_len: l4_len.saturating_sub(data_offset),
                });
            }
            if l4.len() < TCP_MIN_READABLE {
                return Ok(other);
            }
            let data_offset = u32::from(l4[12] >> 4) * 4;
            if data_offset < 20 {
                return Err(SkipReason::Malformed);
            }
            Transport::Tcp {
                sport: be16(l4, 0).unwrap_or(0),
                dport: be16(l4, 2).unwrap_or(0),
                seq: be32(l4, 4).unwrap_or(0),
                flags: l4[13],
                window: be16(l4, 14).unwrap_or(0),
                payload_len: l4_len.saturating_sub(data_offset),
            }
        }
        proto::UDP => match (be16(l4, 0), be16(l4, 2)) {
            (Some(sport), Some(dport)) => {
                Transport::Udp { sport, dport, payload_len: l4_len.saturating_sub(UDP_HEADER_LEN) }
            }
            _ => other,
        },
        proto::ICMP | proto::ICMPV6 => {
            let v6 = protocol == proto::ICMPV6;
            let (Some(&icmp_type), Some(&code)) = (l4.first(), l4.get(1)) else {
                return Ok(other);
            };
            let is_echo = if v6 { matches!(icmp_type, 128 | 129) } else { matches!(icmp_type, 0 | 8) };
            let is_error = if v6 { matches!(icmp_type, 1..=4) } else { matches!(icmp_type, 3 | 4 | 5 | 11 | 12) };
            Transport::Icmp {
                v6,
                icmp_type,
                code,
                echo_id: if is_echo { be16(l4, 4) } else { None },
                quoted: if is_error { l4.get(ICMP_QUOTE_OFFSET..).and_then(quoted_tuple).map(Box::new) } else { None },
            }
        }
        _ => other,
    })
}

/// The flow tuple of the packet quoted in an ICMP error, as its sender sent it.
fn quoted_tuple(quoted: &[u8]) -> Option<QuotedTuple> {
    let (ip, _) = LaxIpSlice::from_slice(quoted).ok()?;
    let payload = ip.payload();
    let protocol = payload.ip_number.0;
    // Ports are only in the first fragment of a quoted fragmented packet.
    let first_fragment = match &ip {
        LaxIpSlice::Ipv4(v4) => v4.header().fragments_offset().value() == 0,
        LaxIpSlice::Ipv6(_) => !payload.fragmented,
    };
    let has_ports = matches!(protocol, proto::TCP | proto::UDP) && first_fragment;
    let ports = if has_ports { be16(payload.payload, 0).zip(be16(payload.payload, 2)) } else { None };
    let (sport, dport) = ports.unwrap_or((0, 0));
    Some(QuotedTuple { src: ip.source_addr(), dst: ip.destination_addr(), protocol, sport, dport })
}
