//! libpcap reading an input that flowsentry has already opened. libpcap only opens
//! names, and `#![forbid(unsafe_code)]` rules out handing it a descriptor, so it gets
//! `/proc/self/fd/N` (`/dev/fd/N` where there is no /proc) of a pipe flowsentry made:
//! - for an input libpcap reads (pcapng, any input with `--bpf`), a feeder thread
//!   ("fs-feed") writes the bytes already read into the pipe, then the rest of the input:
//!   spliced in the kernel for an uncompressed input (no copy through user space), copied
//!   from the decoder for a compressed one;
//! - for a classic pcap file that flowsentry's own reader reads, the pipe holds just the
//!   24-byte file header ([`vet_header`]), so that header is still judged by libpcap.
//!
//! A feeder that fails (a read error, a corrupt compressed stream) records why and then
//! closes the pipe: libpcap sees the end of its input, hands out every packet before it,
//! and the feeder's reason replaces libpcap's "truncated" message.
//!
//! [`LibpcapReader::by_name`] is libpcap opening a path itself, as before any of this: the
//! reference the differential tests compare everything else against.

use super::open::{describe as describe_io, Counted, Rest};
use super::{CaptureError, LinkType};
use crate::time::Timestamp;
use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
use pcap::{Capture, Offline, Precision};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{sync_channel, Receiver};

/// Capacity asked for the feeder's pipe (fewer wake-ups than the default 64 KiB).
const PIPE_SIZE: i32 = 1 << 20;
/// Bytes the feeder moves per read or splice.
const FEED_CHUNK: usize = 256 * 1024;

/// The name under which a descriptor of this process can be opened.
fn fd_path(fd: RawFd) -> String {
    if std::path::Path::new("/proc/self/fd").is_dir() {
        format!("/proc/self/fd/{fd}")
    } else {
        format!("/dev/fd/{fd}")
    }
}

/// Opens `path` with libpcap, nanosecond timestamps, and the filter.
fn open_path(path: &str, filter: Option<&str>) -> Result<(Capture<Offline>, LinkType), Failure> {
    let mut capture =
        Capture::from_file_with_precision(path, Precision::Nano).map_err(|e| Failure::Open(describe(&e)))?;
    if let Some(expr) = filter {
        capture.filter(expr, true).map_err(|e| Failure::Filter(expr.to_string(), describe(&e)))?;
    }
    let link = LinkType::from_dlt(capture.get_datalink().0).map_err(|e| Failure::Open(e.to_string()))?;
    Ok((capture, link))
}

/// Why libpcap would not open an input.
enum Failure {
    Open(String),
    Filter(String, String),
}

impl Failure {
    fn into_error(self, name: &str) -> CaptureError {
        match self {
            Failure::Open(reason) => CaptureError::OpenFile { path: name.to_string(), reason },
            Failure::Filter(expr, reason) => CaptureError::Filter { expr, reason },
        }
    }
}

/// libpcap's verdict on a classic pcap file header: the link type, or its open error.
pub fn vet_header(name: &str, header: &[u8]) -> Result<LinkType, CaptureError> {
    let fail = |e: io::Error| CaptureError::OpenFile { path: name.to_string(), reason: describe_io(&e) };
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| fail(e.into()))?;
    // 24 bytes always fit in a pipe: no reader needs to be running.
    File::from(write).write_all(header).map_err(fail)?;
    let (_, link) = open_path(&fd_path(read.as_raw_fd()), None).map_err(|f| f.into_error(name))?;
    Ok(link)
}

/// libpcap reading one input; each packet is copied once out of libpcap's buffer.
pub struct LibpcapReader {
    capture: Capture<Offline>,
    /// The feeder's reason for stopping early, when a feeder fills libpcap's pipe.
    feeder: Option<Receiver<String>>,
    /// The packet `advance` read last.
    pub ts: Timestamp,
    pub wire_len: u32,
    pub data: Vec<u8>,
}

impl LibpcapReader {
    /// libpcap opens `path` itself (the reference reader; `-` is standard input to it).
    pub fn by_name(path: &str, filter: Option<&str>) -> Result<(LibpcapReader, LinkType), CaptureError> {
        if let Err(e) = std::fs::metadata(path) {
            if path != super::open::STDIN {
                return Err(CaptureError::OpenFile { path: path.to_string(), reason: describe_io(&e) });
            }
        }
        let (capture, link) = open_path(path, filter).map_err(|f| f.into_error(path))?;
        Ok((LibpcapReader::new(capture, None), link))
    }

    /// libpcap reads `head` and then `rest` through a pipe a feeder thread fills.
    pub fn feed(
        name: &str,
        head: Vec<u8>,
        rest: Rest,
        filter: Option<&str>,
    ) -> Result<(LibpcapReader, LinkType), CaptureError> {
        let fail = |e: io::Error| CaptureError::OpenFile { path: name.to_string(), reason: describe_io(&e) };
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| fail(e.into()))?;
        // Best effort: a smaller pipe only means more wake-ups.
        let _ = fcntl(write.as_fd(), FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
        let feeder = spawn_feeder(head, rest, write).map_err(fail)?;
        match open_path(&fd_path(read.as_raw_fd()), filter) {
            Ok((capture, link)) => Ok((LibpcapReader::new(capture, Some(feeder)), link)),
            Err(Failure::Open(reason)) => {
                let reason = feeder_fault(&feeder, &reason).unwrap_or(reason);
                Err(CaptureError::OpenFile { path: name.to_string(), reason })
            }
            Err(f) => Err(f.into_error(name)),
        }
    }

    fn new(capture: Capture<Offline>, feeder: Option<Receiver<String>>) -> LibpcapReader {
        LibpcapReader { capture, feeder, ts: Timestamp(0), wire_len: 0, data: Vec::new() }
    }

    /// Reads the next packet into `ts`, `wire_len` and `data`; `Ok(None)` at the end of
    /// the input, `Err` (one line) when it broke.
    pub fn advance(&mut self) -> Result<Option<Timestamp>, String> {
        match self.capture.next_packet() {
            Ok(packet) => {
                self.data.clear();
                self.data.extend_from_slice(packet.data);
                let h = packet.header;
                self.ts = header_time(h);
                self.wire_len = h.len.max(h.caplen);
                Ok(Some(self.ts))
            }
            Err(pcap::Error::NoMorePackets) => match self.feeder.as_ref().and_then(|f| f.try_recv().ok()) {
                Some(fault) => Err(fault),
                None => Ok(None),
            },
            Err(e) => {
                let reason = describe(&e);
                Err(self.feeder.as_ref().and_then(|f| feeder_fault(f, &reason)).unwrap_or(reason))
            }
        }
    }
}

/// The feeder's fault when libpcap's error is the end of input it caused: a feeder that
/// fails closes the pipe, which libpcap reports as a truncated file. Any other libpcap
/// error is about bytes that did arrive, and stands.
fn feeder_fault(feeder: &Receiver<String>, libpcap_reason: &str) -> Option<String> {
    // The fault is sent before the pipe is closed, so it is there once libpcap saw the end.
    libpcap_reason.starts_with("truncated").then(|| feeder.try_recv().ok()).flatten()
}

/// Starts the thread that writes `head` and then `rest` into the pipe `write`; the
/// receiver gets its reason if it fails before the end of `rest`.
fn spawn_feeder(head: Vec<u8>, rest: Rest, write: OwnedFd) -> io::Result<Receiver<String>> {
    let (tx, rx) = sync_channel(1);
    std::thread::Builder::new().name("fs-feed".into()).stack_size(256 * 1024).spawn(move || {
        let mut pipe = File::from(write);
        if let Err(fault) = feed(&head, rest, &mut pipe) {
            let _ = tx.send(fault);
        }
        // Closing the pipe after the fault is recorded: libpcap sees the end only then.
        drop(pipe);
    })?;
    Ok(rx)
}

/// Copies `head` and `rest` into `pipe`. A write that fails means libpcap stopped
/// reading (the replay ended or the input was closed): not a fault of the input.
fn feed(head: &[u8], rest: Rest, pipe: &mut File) -> Result<(), String> {
    if pipe.write_all(head).is_err() {
        return Ok(());
    }
    let mut rest = match rest {
        Rest::Plain(plain) => match splice_all(&plain, pipe) {
            Spliced::Done => return Ok(()),
            Spliced::Failed(e) => return Err(describe_io(&e)),
            // Not something the kernel splices (e.g. a terminal): copy it instead.
            Spliced::Unsupported => Box::new(plain) as Box<dyn Read + Send>,
        },
        Rest::Decoded(decoded) => decoded,
    };
    let mut buf = vec![0u8; FEED_CHUNK];
    loop {
        match rest.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                if pipe.write_all(&buf[..n]).is_err() {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(describe_io(&e)),
        }
    }
}

enum Spliced {
    /// The whole input went into the pipe, or libpcap stopped reading.
    Done,
    Failed(io::Error),
    /// The kernel does not splice this input; nothing was moved.
    Unsupported,
}

/// Moves the rest of `input` into `pipe` inside the kernel.
fn splice_all(input: &Counted, pipe: &File) -> Spliced {
    let mut moved_any = false;
    loop {
        match splice(input.file.as_fd(), None, pipe.as_fd(), None, FEED_CHUNK, SpliceFFlags::SPLICE_F_MOVE) {
            Ok(0) => return Spliced::Done,
            Ok(n) => {
                moved_any = true;
                input.consumed.fetch_add(n as u64, Relaxed);
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EPIPE) => return Spliced::Done,
            Err(nix::errno::Errno::EINVAL) if !moved_any => return Spliced::Unsupported,
            Err(e) => return Spliced::Failed(e.into()),
        }
    }
}

/// A libpcap timeval read with `Precision::Nano` (tv_usec holds nanoseconds).
#[allow(clippy::useless_conversion)] // time_t / suseconds_t are i32 on some platforms
fn header_time(h: &pcap::PacketHeader) -> Timestamp {
    Timestamp::from_sec_nsec(i64::from(h.ts.tv_sec), i64::from(h.ts.tv_usec))
}

/// libpcap's message for an error, without the Rust enum wrapping.
pub fn describe(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(msg) => msg.trim().to_string(),
        other => other.to_string(),
    }
}
