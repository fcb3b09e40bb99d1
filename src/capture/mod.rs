//! Where raw frames come from. A [`PacketSource`] yields frames plus the link type and
//! nothing else: parsing lives in [`crate::decode`]. Files and live interfaces both
//! implement it, and tests can feed frames from memory.

pub mod classic;
pub mod compressed;
pub mod file;
mod input_file;
mod libpcap;
pub mod live;
pub mod merge;
mod open;
#[cfg(test)]
mod test_streams;

use crate::time::Timestamp;
use std::fmt;

/// libpcap link-layer header types (DLT_/LINKTYPE_ values) that flowsentry decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// LINKTYPE_NULL (0): BSD loopback, 4-byte address family in host byte order.
    Null,
    /// LINKTYPE_ETHERNET (1), with 802.1Q / QinQ tags.
    Ethernet,
    /// LINKTYPE_RAW (101, also DLT_RAW 12/14): raw IPv4 or IPv6.
    Raw,
    /// LINKTYPE_LOOP (108): OpenBSD loopback, 4-byte address family in network byte order.
    Loop,
    /// LINKTYPE_LINUX_SLL (113): Linux cooked capture v1 (`any` device).
    LinuxSll,
    /// LINKTYPE_IPV4 (228).
    Ipv4,
    /// LINKTYPE_IPV6 (229).
    Ipv6,
    /// LINKTYPE_LINUX_SLL2 (276): Linux cooked capture v2.
    LinuxSll2,
}

impl LinkType {
    /// Every link type the decoder supports.
    pub const ALL: [LinkType; 8] = [
        LinkType::Null,
        LinkType::Ethernet,
        LinkType::Raw,
        LinkType::Loop,
        LinkType::LinuxSll,
        LinkType::Ipv4,
        LinkType::Ipv6,
        LinkType::LinuxSll2,
    ];

    /// Maps a libpcap link type number; `Err` names the unsupported type.
    pub fn from_dlt(dlt: i32) -> Result<Self, CaptureError> {
        Ok(match dlt {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            12 | 14 | 101 => LinkType::Raw,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            other => return Err(CaptureError::UnsupportedLinkType(other)),
        })
    }
}

/// One captured frame, borrowed from the source's buffer until the next call.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Link type of this frame (a replay of several files may change it between files).
    pub link: LinkType,
    pub ts: Timestamp,
    /// Length on the wire (may exceed `data.len()` when the snaplen truncated it).
    pub wire_len: u32,
    pub data: &'a [u8],
}

/// Kernel/libpcap counters for live captures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    pub received: u64,
    pub dropped: u64,
    pub if_dropped: u64,
}

/// How much of a replay's input has been read, for a progress display.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InputProgress {
    /// Bytes taken from the inputs so far (compressed bytes for compressed inputs).
    pub bytes_read: u64,
    /// Their total size; 0 when unknown (an input is a pipe).
    pub bytes_total: u64,
}

/// A source of raw frames: a list of pcap files, a live interface, or test data.
pub trait PacketSource {
    /// Link type of the frames returned next (may change between replayed files).
    fn link_type(&self) -> LinkType;
    /// The next frame; `Ok(None)` at the end of input; [`CaptureError::Timeout`] when a
    /// live capture saw nothing within its read timeout (the caller then advances time).
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError>;
    /// Kernel counters, for live captures.
    fn stats(&mut self) -> Option<CaptureStats> {
        None
    }
    /// True for live interfaces (time also advances while the link is quiet).
    fn is_live(&self) -> bool {
        false
    }
    /// Input read so far, for sources that read files.
    fn progress(&self) -> Option<InputProgress> {
        None
    }
    /// Reads and decodes frames onto the end of `batch` until it holds `max` inputs or
    /// the input is over (then returns true), as the replay reader thread does
    /// ([`crate::input`]). Provided, so every source gets its own copy in which
    /// `next_frame` is a direct, inlinable call rather than one through the trait
    /// object per frame; [`FileSource`] adds a loop of its own for a single classic
    /// pcap input.
    fn read_batch(&mut self, batch: &mut crate::input::Batch, max: usize) -> bool {
        crate::input::fill_batch(self, batch, max)
    }
}

/// Why a capture could not be opened or read.
#[derive(Debug)]
pub enum CaptureError {
    /// The live read timeout expired with no packet (not an error for the caller).
    Timeout,
    UnsupportedLinkType(i32),
    /// Could not open a file (missing, unreadable, not a capture).
    OpenFile {
        path: String,
        reason: String,
    },
    /// The file broke part way (truncated or corrupt record).
    ReadFile {
        path: String,
        reason: String,
    },
    /// Interface problems: unknown interface, permission, went away.
    Interface {
        name: String,
        reason: String,
    },
    Filter {
        expr: String,
        reason: String,
    },
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::Timeout => write!(f, "capture read timed out"),
            CaptureError::UnsupportedLinkType(d) => write!(
                f,
                "unsupported link type {d} ({}); supported: Ethernet (1), Linux SLL (113), SLL2 (276), raw IP (12, 14, 101, 228, 229), BSD loopback NULL (0) and LOOP (108)",
                dlt_name(*d)
            ),
            CaptureError::OpenFile { path, reason } => write!(f, "cannot open capture file {path}: {reason}"),
            CaptureError::ReadFile { path, reason } => write!(f, "error reading capture file {path}: {reason}"),
            CaptureError::Interface { name, reason } => write!(f, "interface {name}: {reason}"),
            CaptureError::Filter { expr, reason } => write!(f, "bad BPF filter '{expr}': {reason}"),
        }
    }
}

impl std::error::Error for CaptureError {}

impl CaptureError {
    /// A fault of one replay file (it could not be opened, or broke part way): a replay
    /// reports it and goes on with the next file.
    pub fn is_file_fault(&self) -> bool {
        matches!(self, CaptureError::ReadFile { .. } | CaptureError::OpenFile { .. })
    }
}

/// Human name of a DLT for error messages.
pub fn dlt_name(dlt: i32) -> String {
    pcap::Linktype(dlt).get_name().map(|n| format!("DLT_{n}")).unwrap_or_else(|_| "unknown".to_string())
}

/// In-memory source for tests and fuzzing: a fixed list of frames.
pub struct MemorySource {
    link: LinkType,
    frames: Vec<(Timestamp, Vec<u8>)>,
    next: usize,
}

impl MemorySource {
    pub fn new(link: LinkType, frames: Vec<(Timestamp, Vec<u8>)>) -> Self {
        MemorySource { link, frames, next: 0 }
    }
}

impl PacketSource for MemorySource {
    fn link_type(&self) -> LinkType {
        self.link
    }
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        let Some((ts, data)) = self.frames.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        Ok(Some(Frame { link: self.link, ts: *ts, wire_len: data.len() as u32, data }))
    }
}
