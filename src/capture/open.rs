//! Opening one replay input, exactly once: a file, `-` (standard input), a pipe, a FIFO,
//! `/dev/stdin` or a process substitution (`<(zcat x.pcap.gz)`) — anything that can be
//! read from front to back. Nothing here seeks or opens a name twice, which is what lets
//! non-seekable inputs work.
//!
//! The input's first bytes decide how it is read: a gzip or zstd stream gets a decoder
//! (see [`super::compressed`]), and the first [`FILE_HEADER`] bytes of the capture itself
//! are read up front so the caller can pick a reader. Every byte taken from the input is
//! counted (for the progress display), compressed bytes for a compressed input.

use super::classic::{read_at_least, FILE_HEADER};
use super::compressed::{Compression, MAGIC_LEN};
use super::CaptureError;
use std::fs::File;
use std::io::{self, Cursor, IsTerminal, Read};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// The name that means standard input.
pub const STDIN: &str = "-";

/// One input, opened, with the first bytes of its capture already read.
pub struct Opened {
    /// The name errors use: the path, or `stdin` for `-`.
    pub name: String,
    /// The first bytes of the capture (after decompression): [`FILE_HEADER`] bytes, or
    /// fewer when the input is shorter.
    pub head: Vec<u8>,
    /// The capture's bytes after `head`.
    pub rest: Rest,
    /// Size in bytes of a regular file (compressed size when compressed).
    pub size: Option<u64>,
    /// Bytes taken from the input so far.
    pub consumed: Arc<AtomicU64>,
    /// The compression format, for a compressed input.
    pub compressed: Option<&'static str>,
}

/// The rest of an input after its first bytes.
pub enum Rest {
    /// The input itself (not compressed): its descriptor can also be spliced.
    Plain(Counted),
    /// A decompressor's output.
    Decoded(Box<dyn Read + Send>),
}

impl Rest {
    pub fn into_reader(self) -> Box<dyn Read + Send> {
        match self {
            Rest::Plain(p) => Box::new(p),
            Rest::Decoded(d) => d,
        }
    }
}

/// Opens `path` (`-` for standard input) and reads the capture's first bytes.
pub fn open(path: &str) -> Result<Opened, CaptureError> {
    let stdin = path == STDIN;
    let name = if stdin { "stdin".to_string() } else { path.to_string() };
    let fail = |reason: String| CaptureError::OpenFile { path: name.clone(), reason };
    let file = if stdin { open_stdin() } else { File::open(path) }.map_err(|e| fail(describe(&e)))?;
    let meta = file.metadata().map_err(|e| fail(describe(&e)))?;
    if meta.is_dir() {
        return Err(fail("is a directory".into()));
    }
    let consumed = Arc::new(AtomicU64::new(0));
    let mut input = Counted { file, consumed: Arc::clone(&consumed) };

    // Enough to tell a compressed stream from a capture, and a classic pcap header whole.
    let mut first = [0u8; FILE_HEADER];
    let (got, fault) = read_at_least(&mut input, &mut first, FILE_HEADER);
    if let Some(e) = fault {
        return Err(fail(describe(&e)));
    }
    let first = &first[..got];
    let compression = Compression::detect(&first[..got.min(MAGIC_LEN)]).map_err(&fail)?;
    let (head, rest) = match compression {
        None => (first.to_vec(), Rest::Plain(input)),
        Some(kind) => {
            let mut decoded =
                kind.decoder(Cursor::new(first.to_vec()).chain(input)).map_err(|e| fail(e.to_string()))?;
            let mut head = vec![0u8; FILE_HEADER];
            let (got, fault) = read_at_least(&mut *decoded, &mut head, FILE_HEADER);
            if let Some(e) = fault {
                return Err(fail(e.to_string()));
            }
            head.truncate(got);
            (head, Rest::Decoded(decoded))
        }
    };
    let size = meta.is_file().then_some(meta.len());
    Ok(Opened { name, head, rest, size, consumed, compressed: compression.map(Compression::name) })
}

/// Standard input as a file of its own (a duplicate of descriptor 0: reading it reads
/// standard input from where it stands). A terminal is refused: a capture is expected.
fn open_stdin() -> io::Result<File> {
    let stdin = io::stdin();
    if stdin.is_terminal() {
        return Err(io::Error::other(
            "standard input is a terminal; pipe a capture into it (e.g. `tcpdump -w - | flowsentry replay -`)",
        ));
    }
    Ok(File::from(stdin.as_fd().try_clone_to_owned()?))
}

/// An OS error in the words of other capture tools, without Rust's "(os error N)".
pub fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => {
            let text = e.to_string();
            match text.find(" (os error") {
                Some(at) => text[..at].to_string(),
                None => text,
            }
        }
    }
}

/// A file whose reads are counted (one atomic add per read call, not per packet).
pub struct Counted {
    pub file: File,
    pub consumed: Arc<AtomicU64>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.consumed.fetch_add(n as u64, Relaxed);
        Ok(n)
    }
}
