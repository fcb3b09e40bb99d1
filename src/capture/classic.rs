//! A fast reader for classic pcap files (the `tcpdump -w` format, not pcapng).
//!
//! Replay speed is bounded by how fast packets come off the file. libpcap reads each
//! record with two `fread` calls through a 4 KiB stdio buffer and copies it once more
//! into its own buffer; this reader pulls the file in with 1 MiB `read`s and hands out
//! frames that borrow straight from that buffer, so a packet is never copied in user
//! space. It reads any byte stream (a file, a pipe, a decompressor): the caller reads
//! the 24-byte file header, has libpcap vet it (so every open-time error is libpcap's),
//! and hands both over; only the four standard magic numbers of version 2.4 without a
//! BPF filter come here, pcapng and everything else stays with libpcap.
//!
//! Record parsing follows libpcap 1.10 `sf-pcap.c` exactly, so both readers give the same
//! frames and the same errors for any file (checked by a differential test over real,
//! synthetic and randomly corrupted captures): seconds and fractions are signed 32-bit
//! (unsigned in byte-swapped files), a microsecond file's fraction is scaled to nanoseconds by 1000 (not normalized), a
//! record longer than the file's snapshot length is read whole and trimmed to it, one
//! longer than 262144 bytes is an error, and a partial record at the end is an error
//! saying how many bytes were there. When the stream itself fails (a read error, a
//! corrupt compressed stream), every record that arrived whole is handed out first and
//! the stream's error comes in place of the truncation error.

use crate::time::Timestamp;
use std::io::{self, Read};

/// Bytes read from the input at a time (the buffer of a single replayed file).
pub const READ_CHUNK: usize = 1 << 20;
/// libpcap's `max_snaplen_for_dlt` for every link type flowsentry decodes.
pub const MAX_SNAPLEN: u32 = 262_144;
/// Bytes of the file header.
pub const FILE_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;

/// Where one record is, as libpcap would hand it out (`caplen` already trimmed to the
/// snapshot); its bytes are [`ClassicReader::data`] until the next call.
#[derive(Clone, Copy, Debug, Default)]
pub struct Record {
    pub ts: Timestamp,
    /// The record's original length field (may be smaller than the data in bad files).
    pub len: u32,
    start: usize,
    caplen: usize,
}

/// What the file header of a classic pcap file this reader handles says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The file was written on a host of the other byte order.
    pub swapped: bool,
    /// Fractions are nanoseconds (magic 0xa1b23c4d) rather than microseconds.
    pub nanos: bool,
    /// libpcap's snapshot length for the file (its `pcap_adjust_snapshot`).
    pub snapshot: u32,
}

impl Header {
    /// Parses the first bytes of a capture; `None` unless they are a whole classic pcap
    /// header this reader handles (standard magic, version 2.4). Anything else (pcapng,
    /// modified formats, a short stream) the caller leaves to libpcap.
    pub fn parse(header: &[u8]) -> Option<Header> {
        if header.len() < FILE_HEADER {
            return None;
        }
        let magic = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let (swapped, nanos) = match magic {
            0xa1b2_c3d4 => (false, false),
            0xd4c3_b2a1 => (true, false),
            0xa1b2_3c4d => (false, true),
            0x4d3c_b2a1 => (true, true),
            _ => return None,
        };
        let u16_at = |i: usize| {
            let v = u16::from_le_bytes([header[i], header[i + 1]]);
            if swapped {
                v.swap_bytes()
            } else {
                v
            }
        };
        // Version 2.4 only: older minor versions may have caplen and len swapped.
        if u16_at(4) != 2 || u16_at(6) != 4 {
            return None;
        }
        let snaplen = field(header, 16, swapped);
        // pcap_adjust_snapshot: zero or more than INT_MAX means "the maximum for the link
        // type"; anything else is kept, even above that maximum.
        let snapshot = if snaplen == 0 || snaplen > i32::MAX as u32 { MAX_SNAPLEN } else { snaplen };
        Some(Header { swapped, nanos, snapshot })
    }
}

/// Reads the records of one classic pcap file.
pub struct ClassicReader {
    /// The bytes after the file header.
    input: Box<dyn Read + Send>,
    buf: Vec<u8>,
    /// Unread bytes are `buf[pos..end]`.
    pos: usize,
    end: usize,
    eof: bool,
    /// Why the input stopped early (it failed rather than ended), reported once the
    /// records that arrived whole are handed out.
    fault: Option<io::Error>,
    /// `next_record` returned the input's fault.
    fault_reported: bool,
    /// The file was written on a host of the other byte order.
    swapped: bool,
    /// Fractions are nanoseconds (magic 0xa1b23c4d) rather than microseconds.
    nanos: bool,
    snapshot: u32,
}

impl ClassicReader {
    /// Reads the records of `input`, the bytes that follow a file header that parsed
    /// as `header`, `chunk` bytes at a time (more when a record is longer).
    pub fn new(header: Header, input: Box<dyn Read + Send>, chunk: usize) -> ClassicReader {
        let Header { swapped, nanos, snapshot } = header;
        let buf = vec![0; chunk.max(RECORD_HEADER)];
        ClassicReader {
            input,
            buf,
            pos: 0,
            end: 0,
            eof: false,
            fault: None,
            fault_reported: false,
            swapped,
            nanos,
            snapshot,
        }
    }

    /// The next record; `Ok(None)` at a clean end of file; `Err` (libpcap's wording) for a
    /// truncated or impossible record, after which the file is finished.
    #[inline(always)] // inlined into the replay's per-packet path (FileSource::next_frame)
    pub fn next_record(&mut self) -> Result<Option<Record>, String> {
        // The usual case: the whole record (header and data) is in the buffer already.
        if let Some(h) = self.buf.get(self.pos..self.end).and_then(|b| b.first_chunk::<RECORD_HEADER>()) {
            let caplen = header_field(h, 8, self.swapped);
            if caplen <= MAX_SNAPLEN && self.end - self.pos - RECORD_HEADER >= caplen as usize {
                let record = self.record_at(h);
                self.pos += RECORD_HEADER + caplen as usize;
                return Ok(Some(record));
            }
        }
        self.next_record_slow()
    }

    /// Where the record whose header `h` sits at `self.pos` is (its data fully buffered).
    #[inline(always)]
    fn record_at(&self, h: &[u8; RECORD_HEADER]) -> Record {
        // libpcap 1.10 sign-extends the fields of a file in host byte order (bpf_int32)
        // but zero-extends byte-swapped ones (SWAPLONG yields an unsigned value).
        let (sec, frac, caplen, len) = if self.swapped {
            let f = |at| header_field(h, at, true);
            (i64::from(f(0)), i64::from(f(4)), f(8), f(12))
        } else {
            let f = |at| header_field(h, at, false);
            (i64::from(f(0) as i32), i64::from(f(4) as i32), f(8), f(12))
        };
        let kept = caplen.min(self.snapshot) as usize;
        let nsec = if self.nanos { frac } else { frac * 1000 };
        let ts = Timestamp::from_sec_nsec(sec, nsec);
        Record { ts, len, start: self.pos + RECORD_HEADER, caplen: kept }
    }

    /// [`Self::next_record`] when the record is not (wholly) buffered: reads more, and
    /// reports the end of the file or a truncated or impossible record.
    #[cold]
    #[inline(never)]
    fn next_record_slow(&mut self) -> Result<Option<Record>, String> {
        let got = self.fill(RECORD_HEADER);
        if got == 0 {
            return match self.take_fault() {
                Some(e) => Err(e),
                None => Ok(None),
            };
        }
        if got < RECORD_HEADER {
            self.finish();
            if let Some(e) = self.take_fault() {
                return Err(e);
            }
            return Err(format!("truncated dump file; tried to read {RECORD_HEADER} header bytes, only got {got}"));
        }
        let caplen = field(&self.buf[self.pos..], 8, self.swapped);
        if caplen > MAX_SNAPLEN {
            self.finish();
            return Err(if caplen > self.snapshot {
                format!("invalid packet capture length {caplen}, bigger than snaplen of {}", self.snapshot)
            } else {
                format!("invalid packet capture length {caplen}, bigger than maximum of {MAX_SNAPLEN}")
            });
        }
        let want = caplen as usize;
        let got = self.fill(RECORD_HEADER + want).saturating_sub(RECORD_HEADER);
        if got < want {
            // Past the header, as libpcap would be.
            self.pos += RECORD_HEADER;
            self.finish();
            if let Some(e) = self.take_fault() {
                return Err(e);
            }
            // libpcap reads a record longer than the snapshot in two steps and names the
            // length of the step that came up short.
            let tried = if caplen > self.snapshot && got < self.snapshot as usize { self.snapshot } else { caplen };
            return Err(format!("truncated dump file; tried to read {tried} captured bytes, only got {got}"));
        }
        let mut h = [0; RECORD_HEADER];
        h.copy_from_slice(&self.buf[self.pos..self.pos + RECORD_HEADER]);
        let record = self.record_at(&h);
        self.pos += RECORD_HEADER + want;
        Ok(Some(record))
    }

    /// The bytes of `record`, the one `next_record` returned last.
    #[inline]
    pub fn data(&self, record: &Record) -> &[u8] {
        &self.buf[record.start..record.start + record.caplen]
    }

    /// Makes at least `want` unread bytes available if the input holds them; returns how
    /// many are available (fewer only at the end of the input or when it failed).
    #[inline]
    fn fill(&mut self, want: usize) -> usize {
        if self.end - self.pos >= want || self.eof {
            return (self.end - self.pos).min(want);
        }
        self.refill(want)
    }

    /// The slow part of [`Self::fill`]: moves the unread tail to the front and reads.
    #[cold]
    fn refill(&mut self, want: usize) -> usize {
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        if self.buf.len() < want {
            self.buf.resize(want.next_power_of_two(), 0);
        }
        // At least what is wanted (more if the file has it), but no waiting for a full
        // buffer: a pipe being written (`tcpdump -w - | ...`) is read as it comes.
        let need = want - self.end;
        let (got, fault) = read_at_least(&mut *self.input, &mut self.buf[self.end..], need);
        self.end += got;
        self.eof = got < need;
        if fault.is_some() {
            self.eof = true;
            self.fault = fault;
        }
        self.end.min(want)
    }

    /// After the records went wrong, reads on (discarding) up to `limit` more bytes to
    /// see whether the input itself fails there: a corrupt compressed stream can decode
    /// to garbage records before its decoder notices. Returns the input's error, if any.
    #[cold]
    pub fn input_fault_within(&mut self, limit: usize) -> Option<io::Error> {
        if self.fault_reported {
            // The error was the input's own already.
            return None;
        }
        let mut left = limit;
        while left > 0 {
            let n = left.min(self.buf.len());
            match self.input.read(&mut self.buf[..n]) {
                Ok(0) => return None,
                Ok(got) => left -= got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Some(e),
            }
        }
        None
    }

    /// The input's fault, if it failed, as the record error.
    #[cold]
    fn take_fault(&mut self) -> Option<String> {
        let e = self.fault.take()?;
        self.fault_reported = true;
        Some(e.to_string())
    }

    /// After an error nothing more is read from this file.
    fn finish(&mut self) {
        self.pos = self.end;
        self.eof = true;
    }
}

/// A 32-bit header field in the file's byte order.
#[inline]
fn field(bytes: &[u8], at: usize, swapped: bool) -> u32 {
    let v = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    if swapped {
        v.swap_bytes()
    } else {
        v
    }
}

/// [`field`] of a record header (no bounds checks once inlined: `at` is a constant).
#[inline(always)]
fn header_field(h: &[u8; RECORD_HEADER], at: usize, swapped: bool) -> u32 {
    let v = u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    if swapped {
        v.swap_bytes()
    } else {
        v
    }
}

/// Reads into `buf` until at least `min` bytes are in or the input ends; returns the
/// bytes read (fewer than `min` only at the end of the input) and the error that stopped
/// the reading early, if one did (the bytes read before it are kept).
pub fn read_at_least(input: &mut dyn Read, buf: &mut [u8], min: usize) -> (usize, Option<io::Error>) {
    let mut got = 0;
    while got < min {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (got, Some(e)),
        }
    }
    (got, None)
}
