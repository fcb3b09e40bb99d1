//! One replay input, opened once and read front to back by the reader that suits it:
//! flowsentry's classic-pcap reader ([`super::classic`]) for a classic pcap stream read
//! without a BPF filter — plain or decompressed, file or pipe — and libpcap
//! ([`super::libpcap`]) for pcapng, for `--bpf`, and for the few classic files where
//! libpcap rewrites frames (byte-swapped cooked captures). It keeps its frame at the head
//! (borrowed from the reader's buffer) until the merge hands it out.

use super::classic::{ClassicReader, Header, Record};
use super::file::ReadMode;
use super::libpcap::{self, LibpcapReader};
use super::open;
use super::{CaptureError, Frame, LinkType};
use crate::time::Timestamp;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Decompressed bytes read on after bad records, looking for the stream's own fault.
const FAULT_LOOKAHEAD: usize = 64 << 20;

pub struct InputFile {
    /// The name errors use (`stdin` for `-`).
    pub name: String,
    pub link: LinkType,
    reader: Reader,
    /// Bytes taken from the input so far (compressed bytes for a compressed input).
    consumed: Arc<AtomicU64>,
    /// Size of a regular file; `None` for a pipe.
    pub size: Option<u64>,
    /// The input is compressed (name of the format).
    compressed: Option<&'static str>,
    /// Why the input broke, until [`Self::take_error`] hands it out.
    error: Option<CaptureError>,
    /// Frames handed out from this input.
    pub frames: u64,
}

enum Reader {
    Classic {
        reader: ClassicReader,
        head: Record,
    },
    Libpcap(LibpcapReader),
    /// Ended or failed: buffers and descriptors are released.
    Closed,
}

impl InputFile {
    /// Opens `path` (`-` for standard input) and picks its reader. `chunk` is the classic
    /// reader's buffer size.
    pub fn open(path: &str, filter: Option<&str>, mode: ReadMode, chunk: usize) -> Result<InputFile, CaptureError> {
        if mode == ReadMode::Libpcap {
            let (reader, link) = LibpcapReader::by_name(path, filter)?;
            let consumed = Arc::new(AtomicU64::new(0));
            let name = path.to_string();
            return Ok(InputFile {
                name,
                link,
                reader: Reader::Libpcap(reader),
                consumed,
                size: None,
                compressed: None,
                error: None,
                frames: 0,
            });
        }
        let open::Opened { name, head, rest, size, consumed, compressed } = open::open(path)?;
        let header = if filter.is_none() { Header::parse(&head) } else { None };
        if let Some(header) = header {
            let link = libpcap::vet_header(&name, &head)?;
            // libpcap byte-swaps the CAN ids inside cooked (SLL/SLL2) frames of swapped
            // files; those few files stay with libpcap so both readers always agree.
            let cooked = matches!(link, LinkType::LinuxSll | LinkType::LinuxSll2);
            if !(cooked && header.swapped) {
                let reader = ClassicReader::new(header, rest.into_reader(), chunk);
                return Ok(InputFile {
                    name,
                    link,
                    reader: Reader::Classic { reader, head: Record::default() },
                    consumed,
                    size,
                    compressed,
                    error: None,
                    frames: 0,
                });
            }
        }
        let (reader, link) = LibpcapReader::feed(&name, head, rest, filter)?;
        Ok(InputFile {
            name,
            link,
            reader: Reader::Libpcap(reader),
            consumed,
            size,
            compressed,
            error: None,
            frames: 0,
        })
    }

    /// Reads the next frame into the head and returns its time; `None` at the end of
    /// the input or when it broke (after every good frame before the fault), and then
    /// [`Self::take_error`] says why. Either way, an input that stops is closed.
    #[inline(always)] // the replay's per-packet path: one function with FileSource::next_frame
    pub fn advance(&mut self) -> Option<Timestamp> {
        let fault = match &mut self.reader {
            Reader::Classic { reader, head } => match reader.next_record() {
                Ok(Some(record)) => {
                    *head = record;
                    return Some(record.ts);
                }
                Ok(None) => None,
                Err(bad) => Some(bad),
            },
            Reader::Libpcap(reader) => match reader.advance() {
                Ok(Some(ts)) => return Some(ts),
                Ok(None) => None,
                Err(fault) => Some(fault),
            },
            Reader::Closed => return None,
        };
        self.stop(fault);
        None
    }

    /// Hands up to `max` frames of a classic-pcap input straight to `each`, without the
    /// head (the single-input replay's loop: [`Self::advance`] and [`Self::head`] in one,
    /// no reader dispatch per frame). When the input ends or breaks it is closed as
    /// `advance` closes it, and the next `advance` says so. Other readers: nothing.
    #[inline(always)]
    pub fn classic_frames(&mut self, max: usize, mut each: impl FnMut(Frame<'_>)) {
        let Reader::Classic { reader, .. } = &mut self.reader else { return };
        for _ in 0..max {
            match reader.next_record() {
                Ok(Some(record)) => {
                    self.frames += 1;
                    let data = reader.data(&record);
                    let wire_len = record.len.max(data.len() as u32);
                    each(Frame { link: self.link, ts: record.ts, wire_len, data });
                }
                Ok(None) => return self.stop(None),
                Err(bad) => return self.stop(Some(bad)),
            }
        }
    }

    /// Why the input stopped, if it broke rather than ended (once).
    pub fn take_error(&mut self) -> Option<CaptureError> {
        self.error.take()
    }

    /// Closes the input; `fault` is why it broke, if it did.
    #[cold]
    fn stop(&mut self, fault: Option<String>) {
        let fault = match (fault, &mut self.reader) {
            // Bad records in a compressed input: is the stream itself corrupt?
            (Some(bad), Reader::Classic { reader, .. }) if self.compressed.is_some() => {
                Some(match reader.input_fault_within(FAULT_LOOKAHEAD) {
                    Some(e) => format!("{e}; the records decoded before it was noticed were already garbled ({bad})"),
                    None => bad,
                })
            }
            (fault, _) => fault,
        };
        self.error = fault.map(|reason| CaptureError::ReadFile { path: self.name.clone(), reason });
        self.reader = Reader::Closed;
    }

    /// The head frame (the one the last successful [`Self::advance`] read).
    #[inline(always)]
    pub fn head(&self) -> Option<Frame<'_>> {
        match &self.reader {
            Reader::Classic { reader, head } => {
                let data = reader.data(head);
                let wire_len = head.len.max(data.len() as u32);
                Some(Frame { link: self.link, ts: head.ts, wire_len, data })
            }
            Reader::Libpcap(r) => Some(Frame { link: self.link, ts: r.ts, wire_len: r.wire_len, data: &r.data }),
            Reader::Closed => None,
        }
    }

    /// True while the classic-pcap reader reads this input.
    pub fn is_classic(&self) -> bool {
        matches!(self.reader, Reader::Classic { .. })
    }

    /// Bytes of the input consumed so far; the whole size once it is closed, so a
    /// replay's progress ends at its total even when an input broke part way.
    pub fn bytes_read(&self) -> u64 {
        match (&self.reader, self.size) {
            (Reader::Closed, Some(size)) => size,
            _ => self.consumed.load(Relaxed),
        }
    }
}
