//! Replay: pcap and pcapng files read in order through libpcap, packet timestamps as the clock.
//!
//! The source reads one packet ahead. The caller asks [`PacketSource::link_type`] before
//! each [`PacketSource::next_frame`] (the frame borrows the source), so when the next
//! packet comes from a new file with another link type, that file must already be open.
//! A file that breaks part way (truncated, corrupt record) yields all of its good packets
//! first and then one [`CaptureError::ReadFile`]; reading then goes on with the next file.

use super::{CaptureError, Frame, LinkType, PacketSource};
use crate::time::Timestamp;
use pcap::{Capture, Offline, Precision};

/// Replays a list of capture files, in the order given.
pub struct FileSource {
    paths: Vec<String>,
    /// Index in `paths` of the file `reader` reads (`paths.len()` once all are done).
    file_index: usize,
    reader: Option<Capture<Offline>>,
    /// Link type of the file `reader` reads.
    reader_link: LinkType,
    /// The packet returned by the next `next_frame` call, already read.
    ahead: Option<Buffered>,
    /// An error to return once the packets read before it have been handed out.
    pending_error: Option<CaptureError>,
    /// The frame handed out last (its bytes stay here until the next call).
    current: Buffered,
    packets_per_file: Vec<u64>,
    /// BPF filter applied to every file (`--bpf`).
    filter: Option<String>,
}

#[derive(Default)]
struct Buffered {
    ts: Timestamp,
    wire_len: u32,
    link: Option<LinkType>,
    /// Index in `paths` of the file the packet came from.
    file: usize,
    data: Vec<u8>,
}

impl FileSource {
    /// Checks that every file opens as a pcap/pcapng capture of a supported link type
    /// (so a typo in the last file fails before anything is processed), then reads the
    /// first packet. Errors name the file.
    pub fn open<P: AsRef<str>>(paths: &[P]) -> Result<Self, CaptureError> {
        Self::open_filtered(paths, None)
    }

    /// Like [`Self::open`], keeping only packets that match the BPF expression `filter`.
    pub fn open_filtered<P: AsRef<str>>(paths: &[P], filter: Option<&str>) -> Result<Self, CaptureError> {
        let filter = filter.map(str::to_string);
        let paths: Vec<String> = paths.iter().map(|p| p.as_ref().to_string()).collect();
        if paths.is_empty() {
            return Err(CaptureError::OpenFile { path: String::new(), reason: "no capture file given".into() });
        }
        for path in &paths {
            open_file(path, filter.as_deref())?;
        }
        let (reader, reader_link) = open_file(&paths[0], filter.as_deref())?;
        let mut source = FileSource {
            file_index: 0,
            reader: Some(reader),
            reader_link,
            ahead: None,
            pending_error: None,
            current: Buffered::default(),
            packets_per_file: vec![0; paths.len()],
            paths,
            filter,
        };
        source.read_ahead(Buffered::default());
        Ok(source)
    }

    /// The files being replayed, in order.
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// Frames handed out so far from each file (same order as [`Self::paths`]).
    pub fn packets_per_file(&self) -> &[u64] {
        &self.packets_per_file
    }

    /// Fills `ahead` with the next packet of the remaining files, or records the error
    /// that stops the current file (and moves on to the next file).
    fn read_ahead(&mut self, mut spare: Buffered) {
        while self.pending_error.is_none() {
            let Some(reader) = self.reader.as_mut() else {
                if !self.open_next_file() {
                    return;
                }
                continue;
            };
            match reader.next_packet() {
                Ok(packet) => {
                    let h = packet.header;
                    // With nanosecond precision libpcap stores nanoseconds in tv_usec.
                    spare.ts = header_time(h);
                    spare.wire_len = h.len.max(h.caplen);
                    spare.link = Some(self.reader_link);
                    spare.file = self.file_index;
                    spare.data.clear();
                    spare.data.extend_from_slice(packet.data);
                    self.ahead = Some(spare);
                    return;
                }
                Err(pcap::Error::NoMorePackets) => self.reader = None,
                Err(e) => {
                    self.reader = None;
                    let path = self.paths[self.file_index].clone();
                    self.pending_error = Some(CaptureError::ReadFile { path, reason: describe(&e) });
                }
            }
        }
    }

    /// Opens the file after the current one; false when there is none. An open error
    /// becomes the pending error (the file is then skipped).
    fn open_next_file(&mut self) -> bool {
        if self.file_index + 1 >= self.paths.len() {
            self.file_index = self.paths.len();
            return false;
        }
        self.file_index += 1;
        match open_file(&self.paths[self.file_index], self.filter.as_deref()) {
            Ok((reader, link)) => {
                self.reader = Some(reader);
                self.reader_link = link;
            }
            Err(e) => self.pending_error = Some(e),
        }
        true
    }
}

impl PacketSource for FileSource {
    fn link_type(&self) -> LinkType {
        self.ahead.as_ref().and_then(|b| b.link).unwrap_or(self.reader_link)
    }

    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        let Some(next) = self.ahead.take() else {
            if let Some(e) = self.pending_error.take() {
                self.read_ahead(Buffered::default());
                return Err(e);
            }
            return Ok(None);
        };
        // The previous frame's buffer is reused for the packet after this one.
        let spare = std::mem::replace(&mut self.current, next);
        self.read_ahead(spare);
        self.packets_per_file[self.current.file] += 1;
        let c = &self.current;
        Ok(Some(Frame { link: c.link.unwrap_or(self.reader_link), ts: c.ts, wire_len: c.wire_len, data: &c.data }))
    }
}

/// Opens one capture file with nanosecond timestamps and checks its link type.
fn open_file(path: &str, filter: Option<&str>) -> Result<(Capture<Offline>, LinkType), CaptureError> {
    if let Err(e) = std::fs::metadata(path) {
        let reason = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        return Err(CaptureError::OpenFile { path: path.to_string(), reason });
    }
    let mut capture = Capture::from_file_with_precision(path, Precision::Nano)
        .map_err(|e| CaptureError::OpenFile { path: path.to_string(), reason: describe(&e) })?;
    if let Some(expr) = filter {
        capture
            .filter(expr, true)
            .map_err(|e| CaptureError::Filter { expr: expr.to_string(), reason: describe(&e) })?;
    }
    let dlt = capture.get_datalink().0;
    let link = LinkType::from_dlt(dlt)
        .map_err(|e| CaptureError::OpenFile { path: path.to_string(), reason: e.to_string() })?;
    Ok((capture, link))
}

/// A libpcap timeval read with `Precision::Nano` (tv_usec holds nanoseconds).
#[allow(clippy::useless_conversion)] // time_t / suseconds_t are i32 on some platforms
fn header_time(h: &pcap::PacketHeader) -> Timestamp {
    Timestamp::from_sec_nsec(i64::from(h.ts.tv_sec), i64::from(h.ts.tv_usec))
}

/// libpcap's message for an error, without the Rust enum wrapping.
fn describe(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(msg) => msg.trim().to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
