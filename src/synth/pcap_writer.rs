//! A classic-pcap writer (LINKTYPE_ETHERNET) for synthetic captures: writes to any
//! `io::Write` through a `BufWriter`, encoding [`Packet`]s into one reused frame buffer.

use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv6Addr};

use super::packet::{encode_frame, Packet};
use crate::time::{Timestamp, NANOS_PER_SEC};

/// LINKTYPE_ETHERNET.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// The snapshot length written in the file header by default.
pub const DEFAULT_SNAPLEN: u32 = 65535;

/// Timestamp resolution of the file (chosen by the magic number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsResolution {
    Micro,
    Nano,
}

impl TsResolution {
    fn magic(self) -> u32 {
        match self {
            TsResolution::Micro => 0xa1b2_c3d4,
            TsResolution::Nano => 0xa1b2_3c4d,
        }
    }
}

/// Streams pcap records to `W`.
pub struct PcapWriter<W: Write> {
    out: BufWriter<W>,
    resolution: TsResolution,
    snaplen: u32,
    frame: Vec<u8>,
    packets: u64,
    bytes: u64,
    /// Rewrites every packet's addresses before encoding (see [`Self::documentation_only`]).
    map: Option<fn(IpAddr) -> IpAddr>,
}

/// The IPv6 documentation address standing in for `ip` (2001:db8::/32): IPv4 a.b.c.d
/// becomes 2001:db8:aabb:ccdd::1 (so 10.0.0.0/8 becomes 2001:db8:a00::/40); IPv6
/// addresses are kept.
pub fn documentation_v6(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let [a, b, c, d] = a.octets();
            let hi = u16::from_be_bytes([a, b]);
            let lo = u16::from_be_bytes([c, d]);
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, hi, lo, 0, 0, 0, 1))
        }
        v6 => v6,
    }
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header with the default snaplen (65535).
    pub fn new(inner: W, resolution: TsResolution) -> io::Result<Self> {
        Self::with_snaplen(inner, resolution, DEFAULT_SNAPLEN)
    }

    /// Writes the file header; frames longer than `snaplen` are truncated in the file
    /// (their original length is still recorded), as a capture with `-s snaplen` would.
    pub fn with_snaplen(inner: W, resolution: TsResolution, snaplen: u32) -> io::Result<Self> {
        if snaplen == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "pcap snaplen must be at least 1"));
        }
        let mut out = BufWriter::with_capacity(1 << 20, inner);
        let mut hdr = [0u8; 24];
        hdr[0..4].copy_from_slice(&resolution.magic().to_le_bytes());
        hdr[4..6].copy_from_slice(&2u16.to_le_bytes());
        hdr[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay zero
        hdr[16..20].copy_from_slice(&snaplen.to_le_bytes());
        hdr[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&hdr)?;
        Ok(PcapWriter { out, resolution, snaplen, frame: Vec::with_capacity(2048), packets: 0, bytes: 0, map: None })
    }

    /// Writes every IPv4 packet as IPv6 between documentation addresses
    /// ([`documentation_v6`]), so a generated capture can be sent through a test network
    /// that must only carry documentation addresses (the live benchmarks).
    pub fn documentation_only(mut self) -> Self {
        self.map = Some(documentation_v6);
        self
    }

    /// Writes one raw frame captured at `ts`.
    ///
    /// Fails on timestamps before 1970 or after 2106 (not representable in classic pcap).
    pub fn write_frame(&mut self, ts: Timestamp, frame: &[u8]) -> io::Result<()> {
        let secs = ts.floor_secs();
        let sub_ns = ts.0.rem_euclid(NANOS_PER_SEC);
        let secs = u32::try_from(secs).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("timestamp {} s is outside the classic pcap range", ts.floor_secs()),
            )
        })?;
        let frac = match self.resolution {
            TsResolution::Micro => sub_ns / 1000,
            TsResolution::Nano => sub_ns,
        } as u32;
        let orig_len = frame.len() as u32;
        let incl_len = orig_len.min(self.snaplen);
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&secs.to_le_bytes());
        rec[4..8].copy_from_slice(&frac.to_le_bytes());
        rec[8..12].copy_from_slice(&incl_len.to_le_bytes());
        rec[12..16].copy_from_slice(&orig_len.to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(&frame[..incl_len as usize])?;
        self.packets += 1;
        self.bytes += 16 + incl_len as u64;
        Ok(())
    }

    /// Encodes and writes one packet.
    pub fn write_packet(&mut self, pkt: &Packet) -> io::Result<()> {
        let mut frame = std::mem::take(&mut self.frame);
        match self.map {
            Some(map) => encode_frame(&Packet { src: map(pkt.src), dst: map(pkt.dst), ..*pkt }, &mut frame),
            None => encode_frame(pkt, &mut frame),
        }
        let r = self.write_frame(pkt.ts, &frame);
        self.frame = frame;
        r
    }

    /// Writes every packet of a (time-sorted) list.
    pub fn write_all_packets(&mut self, pkts: &[Packet]) -> io::Result<()> {
        pkts.iter().try_for_each(|p| self.write_packet(p))
    }

    /// Packets written so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// File bytes written so far, excluding the 24-byte file header.
    pub fn record_bytes(&self) -> u64 {
        self.bytes
    }

    /// Flushes and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        self.out.into_inner().map_err(|e| e.into_error())
    }
}
