//! Replay: capture inputs — pcap or pcapng, plain, gzip or zstd, files or pipes — merged
//! by packet time; packet timestamps are the clock.
//!
//! Every input is opened exactly once ([`super::open`]), which is what makes `-`, pipes,
//! FIFOs and process substitutions work, and its first bytes choose how it is read
//! ([`super::input_file`]): compressed streams are decoded on the fly, classic pcap
//! without a BPF filter goes to flowsentry's own reader (frames borrowed from a 1 MiB
//! buffer, no per-packet copy), pcapng and filtered replays to libpcap through a pipe
//! ([`super::libpcap`]). Both readers give the same frames and errors for the same bytes,
//! however they arrive.
//!
//! All inputs are opened before anything is read, so a missing file or one that is not
//! a capture fails the replay before any output. They are then merged by packet time as
//! `mergecap` does ([`super::merge`]): the earliest head frame goes next, ties in
//! command-line order. An input that breaks part way (truncated, corrupt record, corrupt
//! compressed stream) yields all of its good packets first and then one
//! [`CaptureError::ReadFile`]; the other inputs go on. Each [`Frame`] carries the link
//! type of the input it came from.

use super::classic::READ_CHUNK;
use super::input_file::InputFile;
use super::merge::MergeQueue;
use super::open::STDIN;
use super::{CaptureError, Frame, InputProgress, LinkType, PacketSource};
use std::collections::VecDeque;

/// Classic-reader buffers of all inputs together stay within this (each gets at least
/// 64 KiB and at most [`READ_CHUNK`]), so merging hundreds of files stays in bounds.
const BUFFER_BUDGET: usize = 64 << 20;

/// Replays a list of capture inputs merged by packet time.
pub struct FileSource {
    /// The inputs as given (`-` for standard input).
    paths: Vec<String>,
    inputs: Vec<InputFile>,
    queue: MergeQueue,
    /// The input whose frame went out last; it is advanced on the next call.
    current: Option<usize>,
    /// Each input's first frame has been read.
    started: bool,
    /// Inputs that broke at their first frame, reported before any frame.
    pending: VecDeque<CaptureError>,
    /// Which inputs flowsentry's classic-pcap reader reads.
    classic: Vec<bool>,
    /// Sum of the inputs' sizes; 0 when one is a pipe (unknown).
    bytes_total: u64,
}

/// How classic pcap files are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    /// flowsentry's own reader where it applies (the default).
    Fast,
    /// libpcap opening every file by name (the reference the fast reader is tested against).
    Libpcap,
}

impl FileSource {
    /// Opens every input (`-` is standard input) and checks that each is a pcap/pcapng
    /// capture (possibly compressed) of a supported link type, so a typo in the last file
    /// fails before anything is processed. Errors name the file.
    pub fn open<P: AsRef<str>>(paths: &[P]) -> Result<Self, CaptureError> {
        Self::open_with(paths, None, ReadMode::Fast)
    }

    /// Like [`Self::open`], keeping only packets that match the BPF expression `filter`.
    pub fn open_filtered<P: AsRef<str>>(paths: &[P], filter: Option<&str>) -> Result<Self, CaptureError> {
        Self::open_with(paths, filter, ReadMode::Fast)
    }

    /// Like [`Self::open_filtered`], choosing the reader for classic pcap files.
    pub fn open_with<P: AsRef<str>>(paths: &[P], filter: Option<&str>, mode: ReadMode) -> Result<Self, CaptureError> {
        let paths: Vec<String> = paths.iter().map(|p| p.as_ref().to_string()).collect();
        if paths.is_empty() {
            return Err(CaptureError::OpenFile { path: String::new(), reason: "no capture file given".into() });
        }
        if paths.iter().filter(|p| *p == STDIN).count() > 1 {
            return Err(CaptureError::OpenFile {
                path: STDIN.into(),
                reason: "standard input can be given only once".into(),
            });
        }
        // A pipe, a feeder's pipe and libpcap's own descriptor per input at most.
        raise_open_file_limit(4 * paths.len() as u64 + 64);
        let chunk = (BUFFER_BUDGET / paths.len()).clamp(64 << 10, READ_CHUNK);
        let mut inputs = Vec::with_capacity(paths.len());
        for path in &paths {
            inputs.push(InputFile::open(path, filter, mode, chunk)?);
        }
        let bytes_total = inputs.iter().map(|i| i.size).sum::<Option<u64>>().unwrap_or(0);
        Ok(FileSource {
            queue: MergeQueue::with_capacity(inputs.len()),
            current: None,
            started: false,
            pending: VecDeque::new(),
            classic: inputs.iter().map(InputFile::is_classic).collect(),
            inputs,
            paths,
            bytes_total,
        })
    }

    /// The inputs being replayed, as given.
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// Frames handed out so far from each input (same order as [`Self::paths`]).
    pub fn packets_per_file(&self) -> Vec<u64> {
        self.inputs.iter().map(|i| i.frames).collect()
    }

    /// Frames read by the fast classic-pcap reader rather than libpcap.
    pub fn fast_frames(&self) -> u64 {
        self.inputs.iter().zip(&self.classic).filter(|(_, &c)| c).map(|(i, _)| i.frames).sum()
    }

    /// Reads every input's first frame into the merge.
    #[cold]
    fn start(&mut self) {
        self.started = true;
        for (i, input) in self.inputs.iter_mut().enumerate() {
            match input.advance() {
                Some(ts) => self.queue.insert(ts, i),
                None => self.pending.extend(input.take_error()),
            }
        }
    }
}

impl PacketSource for FileSource {
    /// Link type of the input the last frame came from (the first input before any):
    /// [`Frame::link`] is always the frame's own.
    fn link_type(&self) -> LinkType {
        self.inputs[self.current.unwrap_or(0)].link
    }

    // Always inlined (into the reader thread's `read_batch`): the single input's path is
    // small; the merge is out of line.
    #[inline(always)]
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        // A single input needs no merge: its frames go out as they come (the first frame
        // still goes the general way, which opens the merge).
        if self.inputs.len() == 1 && self.current.is_some() {
            let input = &mut self.inputs[0];
            if input.advance().is_none() {
                self.current = None;
                return match input.take_error() {
                    Some(e) => Err(e),
                    None => Ok(None),
                };
            }
            input.frames += 1;
            return match input.head() {
                Some(frame) => Ok(Some(frame)),
                None => {
                    Err(CaptureError::ReadFile { path: input.name.clone(), reason: "internal: reader closed".into() })
                }
            };
        }
        self.next_merged()
    }

    /// A single classic-pcap input (after its first frame) is read in one loop over its
    /// records ([`InputFile::classic_frames`]), with a loop of its own for Ethernet, the
    /// common link type, so the link dispatch is not made per frame; the rest, and the
    /// input's end or fault, the general way.
    fn read_batch(&mut self, batch: &mut crate::input::Batch, max: usize) -> bool {
        if let ([input], Some(_)) = (&mut self.inputs[..], self.current) {
            let room = batch.room(max);
            match input.link {
                LinkType::Ethernet => input.classic_frames(room, |f| batch.push_frame(LinkType::Ethernet, &f)),
                link => input.classic_frames(room, |f| batch.push_frame(link, &f)),
            }
        }
        crate::input::fill_batch(self, batch, max)
    }

    fn progress(&self) -> Option<InputProgress> {
        let bytes_read = self.inputs.iter().map(InputFile::bytes_read).sum();
        Some(InputProgress { bytes_read, bytes_total: self.bytes_total })
    }
}

impl FileSource {
    /// [`PacketSource::next_frame`] through the merge (several inputs, or the first frame).
    #[inline(never)]
    fn next_merged(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        let next = match self.current.take() {
            Some(i) => {
                let input = &mut self.inputs[i];
                match input.advance() {
                    Some(ts) => self.queue.next(Some((ts, i))),
                    None => match input.take_error() {
                        Some(e) => return Err(e),
                        None => self.queue.next(None),
                    },
                }
            }
            None => {
                if !self.started {
                    self.start();
                }
                if let Some(e) = self.pending.pop_front() {
                    return Err(e);
                }
                self.queue.next(None)
            }
        };
        let Some(i) = next else {
            return Ok(None);
        };
        self.current = Some(i);
        let Some(input) = self.inputs.get_mut(i) else {
            return Ok(None);
        };
        input.frames += 1;
        match input.head() {
            Some(frame) => Ok(Some(frame)),
            None => Err(CaptureError::ReadFile { path: input.name.clone(), reason: "internal: reader closed".into() }),
        }
    }
}

/// Raises the soft limit on open files towards the hard one when `need` descriptors may
/// not fit (merging many files keeps them all open); best effort.
fn raise_open_file_limit(need: u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < need && soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, need.min(hard), hard);
        }
    }
}

#[cfg(test)]
#[path = "classic_tests.rs"]
mod classic_tests;
#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
