//! Replay: pcap and pcapng files read in order, packet timestamps as the clock.
//!
//! libpcap opens every file (so it vets the header and names what is wrong). Classic
//! pcap files without a BPF filter are then read by [`ClassicReader`], which hands out
//! frames straight from a 1 MiB read buffer; pcapng files and filtered replays are read
//! through libpcap (each frame copied once out of libpcap's buffer). Both give the same
//! frames and errors. A file that breaks part way (truncated, corrupt record) yields all
//! of its good packets first and then one [`CaptureError::ReadFile`]; reading then goes
//! on with the next file. Each [`Frame`] carries the link type of the file it came from.

use super::classic::{ClassicReader, Record};
use super::{CaptureError, Frame, LinkType, PacketSource};
use crate::time::Timestamp;
use pcap::{Capture, Offline, Precision};

/// Replays a list of capture files, in the order given.
pub struct FileSource {
    paths: Vec<String>,
    /// Index in `paths` of the file `reader` reads (`paths.len()` once all are done).
    file_index: usize,
    reader: Option<Reader>,
    /// Link type of the file `reader` reads.
    reader_link: LinkType,
    /// An error met while opening the next file, returned by the next call.
    pending_error: Option<CaptureError>,
    /// The last frame read through libpcap (its bytes stay here until the next call).
    copied: Vec<u8>,
    packets_per_file: Vec<u64>,
    /// BPF filter applied to every file (`--bpf`).
    filter: Option<String>,
    /// Which reader classic pcap files get.
    mode: ReadMode,
    /// Frames handed out by the fast classic-pcap reader.
    fast_frames: u64,
}

/// How classic pcap files are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    /// flowsentry's own reader where it applies (the default).
    Fast,
    /// libpcap for every file (the reference the fast reader is tested against).
    Libpcap,
}

enum Reader {
    Libpcap(Capture<Offline>),
    Classic(ClassicReader),
}

/// What one read produced, before the frame is borrowed from the source.
enum Step {
    Classic(Record),
    Copied { ts: Timestamp, wire_len: u32 },
    EndOfFile,
    Failed(String),
}

impl FileSource {
    /// Checks that every file opens as a pcap/pcapng capture of a supported link type
    /// (so a typo in the last file fails before anything is processed) and opens the
    /// first one. Errors name the file.
    pub fn open<P: AsRef<str>>(paths: &[P]) -> Result<Self, CaptureError> {
        Self::open_with(paths, None, ReadMode::Fast)
    }

    /// Like [`Self::open`], keeping only packets that match the BPF expression `filter`.
    pub fn open_filtered<P: AsRef<str>>(paths: &[P], filter: Option<&str>) -> Result<Self, CaptureError> {
        Self::open_with(paths, filter, ReadMode::Fast)
    }

    /// Like [`Self::open_filtered`], choosing the reader for classic pcap files.
    pub fn open_with<P: AsRef<str>>(paths: &[P], filter: Option<&str>, mode: ReadMode) -> Result<Self, CaptureError> {
        let filter = filter.map(str::to_string);
        let paths: Vec<String> = paths.iter().map(|p| p.as_ref().to_string()).collect();
        if paths.is_empty() {
            return Err(CaptureError::OpenFile { path: String::new(), reason: "no capture file given".into() });
        }
        for path in &paths {
            open_file(path, filter.as_deref())?;
        }
        let mut source = FileSource {
            file_index: 0,
            reader: None,
            reader_link: LinkType::Ethernet,
            pending_error: None,
            copied: Vec::new(),
            packets_per_file: vec![0; paths.len()],
            paths,
            filter,
            mode,
            fast_frames: 0,
        };
        source.open_current()?;
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

    /// Frames read by the fast classic-pcap reader rather than libpcap.
    pub fn fast_frames(&self) -> u64 {
        self.fast_frames
    }

    /// Opens `paths[file_index]` with the reader it gets.
    fn open_current(&mut self) -> Result<(), CaptureError> {
        let path = &self.paths[self.file_index];
        let (capture, link) = open_file(path, self.filter.as_deref())?;
        self.reader_link = link;
        // libpcap byte-swaps the CAN ids inside cooked (SLL/SLL2) frames of swapped files;
        // those few files stay with libpcap so both readers always agree.
        let cooked = matches!(link, LinkType::LinuxSll | LinkType::LinuxSll2);
        let fast = self.mode == ReadMode::Fast && self.filter.is_none();
        let classic = if fast {
            ClassicReader::open(path)
                .map_err(|e| CaptureError::OpenFile { path: path.clone(), reason: e.to_string() })?
                .filter(|r| !(cooked && r.swapped()))
        } else {
            None
        };
        self.reader = Some(match classic {
            Some(r) => Reader::Classic(r),
            None => Reader::Libpcap(capture),
        });
        Ok(())
    }

    /// Moves on to the file after the current one; false when there is none. An open
    /// error becomes the pending error (the file is then skipped).
    fn open_next_file(&mut self) -> bool {
        if self.file_index + 1 >= self.paths.len() {
            self.file_index = self.paths.len();
            return false;
        }
        self.file_index += 1;
        if let Err(e) = self.open_current() {
            self.pending_error = Some(e);
        }
        true
    }
}

impl PacketSource for FileSource {
    /// Link type of the file being read (the next frame may come from the next file:
    /// [`Frame::link`] is always the frame's own).
    fn link_type(&self) -> LinkType {
        self.reader_link
    }

    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        loop {
            if let Some(e) = self.pending_error.take() {
                return Err(e);
            }
            let step = match self.reader.as_mut() {
                None => {
                    if !self.open_next_file() {
                        return Ok(None);
                    }
                    continue;
                }
                Some(Reader::Classic(r)) => match r.next_record() {
                    Ok(Some(record)) => Step::Classic(record),
                    Ok(None) => Step::EndOfFile,
                    Err(reason) => Step::Failed(reason),
                },
                Some(Reader::Libpcap(capture)) => match capture.next_packet() {
                    Ok(packet) => {
                        self.copied.clear();
                        self.copied.extend_from_slice(packet.data);
                        let h = packet.header;
                        Step::Copied { ts: header_time(h), wire_len: h.len.max(h.caplen) }
                    }
                    Err(pcap::Error::NoMorePackets) => Step::EndOfFile,
                    Err(e) => Step::Failed(describe(&e)),
                },
            };
            match step {
                Step::EndOfFile => self.reader = None,
                Step::Failed(reason) => {
                    self.reader = None;
                    let path = self.paths[self.file_index].clone();
                    return Err(CaptureError::ReadFile { path, reason });
                }
                Step::Classic(record) => {
                    self.packets_per_file[self.file_index] += 1;
                    self.fast_frames += 1;
                    // The reader that produced the record is still in place (never fails).
                    let Some(Reader::Classic(r)) = &self.reader else {
                        let path = self.paths[self.file_index].clone();
                        return Err(CaptureError::ReadFile { path, reason: "internal: reader closed".into() });
                    };
                    let data = r.data(&record);
                    let wire_len = record.len.max(data.len() as u32);
                    return Ok(Some(Frame { link: self.reader_link, ts: record.ts, wire_len, data }));
                }
                Step::Copied { ts, wire_len } => {
                    self.packets_per_file[self.file_index] += 1;
                    return Ok(Some(Frame { link: self.reader_link, ts, wire_len, data: &self.copied }));
                }
            }
        }
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
#[path = "classic_tests.rs"]
mod classic_tests;
#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
