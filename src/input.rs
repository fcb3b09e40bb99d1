//! What the capture thread consumes: decoded packets, read and decoded either on the
//! capture thread itself (live interfaces) or, for replays, one step ahead on a reader
//! thread ("fs-read") that hands them over in batches.
//!
//! A replay is CPU-bound: reading the file, slicing headers and updating the flow table
//! all on one thread made that thread the slowest stage of the pipeline. With the reader
//! thread the file read and decode overlap with the flow table's work. The order of
//! packets, skips and errors is exactly the source's, so output does not change. A live
//! capture keeps reading on the capture thread: its read timeouts drive capture time on a
//! quiet link, and it is bounded by the wire, not by the CPU.
//!
//! The reader thread also publishes how much of the replay's input it has read
//! ([`Stats::input_bytes_read`] and `input_bytes_total`), once per batch.

use crate::capture::{CaptureError, CaptureStats, Frame, LinkType, PacketSource};
use crate::decode::{decode, decode_into, PacketMeta, SkipReason, Transport};
use crate::stats::Stats;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::mem::ManuallyDrop;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Inputs per batch from the reader thread.
const READ_BATCH: usize = 2048;
/// Batches in flight between the reader and the capture thread.
const READ_BATCHES: usize = 8;
/// How long the capture thread waits for the reader before it looks at its signals
/// again (a stalled pipe must not make a replay deaf to SIGINT).
const READ_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// One step of the source, decoded: 64 bytes, a packet's own size (the others fit beside
/// its fields; a failure is boxed), which is what a replay moves from thread to thread.
pub enum Input {
    Packet(PacketMeta),
    /// A frame that is not an IP packet flowsentry tracks (counted, not tracked).
    Skipped(SkipReason),
    /// A live capture saw nothing within its read timeout; a replay's reader had nothing
    /// ready (a slow pipe).
    Timeout,
    /// The source is exhausted.
    End,
    Failed(Box<CaptureError>),
}

/// Reads and decodes one frame.
#[inline(always)]
fn read_one(source: &mut dyn PacketSource) -> Input {
    match source.next_frame() {
        Ok(Some(frame)) => match decode(frame.link, &frame) {
            Ok(meta) => Input::Packet(meta),
            Err(reason) => Input::Skipped(reason),
        },
        Ok(None) => Input::End,
        Err(CaptureError::Timeout) => Input::Timeout,
        Err(e) => Input::Failed(Box::new(e)),
    }
}

/// Inputs decoded ahead by the reader thread, in order.
///
/// Few inputs own heap memory (a failure, an ICMP error's quoted tuple), so the batch
/// holds them as [`ManuallyDrop`] and remembers whether any does: emptying a batch (once
/// per batch, on the capture thread) then costs nothing rather than a drop check per
/// input, and writing an input into its slot drops nothing either.
#[derive(Default)]
pub struct Batch {
    inputs: Vec<ManuallyDrop<Input>>,
    /// Some input in `inputs` owns heap memory: they are dropped one by one.
    owning: bool,
}

impl Batch {
    fn with_capacity(capacity: usize) -> Batch {
        Batch { inputs: Vec::with_capacity(capacity), owning: false }
    }

    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    fn clear(&mut self) {
        if std::mem::take(&mut self.owning) {
            self.inputs.drain(..).for_each(|input| drop(ManuallyDrop::into_inner(input)));
        } else {
            debug_assert!(!self.inputs.iter().any(|input| input.owns_heap()));
            self.inputs.clear();
        }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        self.clear();
    }
}

impl Input {
    /// Owns heap memory (see [`Batch`]).
    fn owns_heap(&self) -> bool {
        matches!(
            self,
            Input::Failed(_) | Input::Packet(PacketMeta { transport: Transport::Icmp { quoted: Some(_), .. }, .. })
        )
    }
}

/// Reads and decodes one frame onto the end of `batch` (decoded in place); returns
/// whether the input is over: its end, or a failure other than a broken replay file
/// (which is followed by the next file).
#[inline(always)]
fn read_into<S: PacketSource + ?Sized>(source: &mut S, batch: &mut Batch) -> bool {
    batch.inputs.push(ManuallyDrop::new(Input::End));
    let Some(slot) = batch.inputs.last_mut() else { return true };
    match source.next_frame() {
        Ok(Some(frame)) => {
            decode_slot(frame.link, &frame, slot, &mut batch.owning);
            false
        }
        Ok(None) => true,
        Err(CaptureError::Timeout) => {
            *slot = ManuallyDrop::new(Input::Timeout);
            false
        }
        Err(e) => {
            let done = !e.is_file_fault();
            *slot = ManuallyDrop::new(Input::Failed(Box::new(e)));
            batch.owning = true;
            done
        }
    }
}

/// Decodes `frame` into `slot` (the batch's last), noting in `owning` when the result
/// owns heap memory.
#[inline(always)]
fn decode_slot(link: LinkType, frame: &Frame<'_>, slot: &mut ManuallyDrop<Input>, owning: &mut bool) {
    let packet = |meta| ManuallyDrop::new(Input::Packet(meta));
    let skipped = |reason| ManuallyDrop::new(Input::Skipped(reason));
    if decode_into(link, frame, slot, packet, skipped) {
        *owning |= slot.owns_heap();
    }
}

impl Batch {
    /// Room left before the batch holds `max` inputs.
    #[inline(always)]
    pub(crate) fn room(&self, max: usize) -> usize {
        max.saturating_sub(self.inputs.len())
    }

    /// Decodes `frame`, of link type `link`, onto the end of the batch (a source that
    /// reads its own frames in a loop, see [`crate::capture::FileSource`]'s
    /// `read_batch`; a constant `link` takes the link dispatch out of the loop).
    #[inline(always)]
    pub(crate) fn push_frame(&mut self, link: LinkType, frame: &Frame<'_>) {
        self.inputs.push(ManuallyDrop::new(Input::End));
        if let Some(slot) = self.inputs.last_mut() {
            decode_slot(link, frame, slot, &mut self.owning);
        }
    }
}

/// Reads and decodes onto the end of `batch` until it holds `max` inputs or the input
/// is over (returns true then): [`PacketSource::read_batch`], which each source gets
/// its own copy of, with `S` its own type.
#[inline(always)]
pub(crate) fn fill_batch<S: PacketSource + ?Sized>(source: &mut S, batch: &mut Batch, max: usize) -> bool {
    while batch.len() < max {
        if read_into(source, batch) {
            return true;
        }
    }
    false
}

/// Handed out by reference when the reader has nothing ready / is done.
static TIMEOUT: Input = Input::Timeout;
static END: Input = Input::End;

/// The capture thread's view of its packet source.
pub enum Inputs {
    /// Read and decoded on the calling thread (`last`: the input handed out last).
    Inline { source: Box<dyn PacketSource + Send>, last: Input },
    /// Read and decoded ahead on the reader thread.
    Prefetched(Prefetch),
}

impl Inputs {
    /// Live sources are read inline; replays get a reader thread, which keeps the input
    /// byte counters of `stats` up to date.
    pub fn new(source: Box<dyn PacketSource + Send>, stats: Arc<Stats>) -> Inputs {
        if source.is_live() {
            Inputs::Inline { source, last: Input::End }
        } else {
            Inputs::Prefetched(Prefetch::spawn(source, stats))
        }
    }

    /// The next input, lent until the next call (inputs are never copied on the way).
    #[inline]
    pub fn next_input(&mut self) -> &Input {
        match self {
            Inputs::Inline { source, last } => {
                *last = read_one(&mut **source);
                last
            }
            Inputs::Prefetched(p) => p.next(),
        }
    }

    /// Kernel counters (live sources only).
    pub fn stats(&mut self) -> Option<CaptureStats> {
        match self {
            Inputs::Inline { source, .. } => source.stats(),
            Inputs::Prefetched(_) => None,
        }
    }

    pub fn is_live(&self) -> bool {
        matches!(self, Inputs::Inline { source, .. } if source.is_live())
    }
}

/// The receiving end of the reader thread.
pub struct Prefetch {
    batches: Receiver<Batch>,
    /// Emptied batches go back to the reader for reuse.
    recycle: Sender<Batch>,
    current: Batch,
    /// Index in `current` of the next input to hand out.
    pos: usize,
    reader: Option<JoinHandle<()>>,
}

impl Prefetch {
    fn spawn(mut source: Box<dyn PacketSource + Send>, stats: Arc<Stats>) -> Prefetch {
        let (tx, batches) = bounded(READ_BATCHES);
        let (recycle, recycled) = bounded(READ_BATCHES + 2);
        let reader = std::thread::Builder::new()
            .name("fs-read".into())
            .spawn(move || reader_thread(&mut *source, tx, recycled, &stats))
            .expect("spawn reader thread");
        Prefetch { batches, recycle, current: Batch::default(), pos: 0, reader: Some(reader) }
    }

    #[inline]
    fn next(&mut self) -> &Input {
        while self.pos >= self.current.len() {
            self.current.clear();
            self.pos = 0;
            let _ = self.recycle.try_send(std::mem::take(&mut self.current));
            match self.batches.recv_timeout(READ_WAIT) {
                Ok(batch) => self.current = batch,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => return &TIMEOUT,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return &END,
            }
        }
        self.pos += 1;
        &self.current.inputs[self.pos - 1]
    }
}

impl Drop for Prefetch {
    /// Stops the reader (its next send fails once the receiver is gone) and waits for it,
    /// so the files are closed when the capture thread returns — unless it is blocked
    /// reading a pipe that has gone quiet (an interrupted replay of `-`): then it is left
    /// behind rather than hanging the shutdown.
    fn drop(&mut self) {
        self.batches = crossbeam_channel::never();
        if let Some(reader) = self.reader.take() {
            let deadline = std::time::Instant::now() + 4 * READ_WAIT;
            while !reader.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
    }
}

/// Reads and decodes until the end of input (or a fatal error), sending full batches.
fn reader_thread(source: &mut dyn PacketSource, tx: Sender<Batch>, recycled: Receiver<Batch>, stats: &Stats) {
    publish_progress(source, stats);
    loop {
        let mut batch = recycled.try_recv().unwrap_or_else(|_| Batch::with_capacity(READ_BATCH));
        let done = source.read_batch(&mut batch, READ_BATCH);
        // Before the batch goes: the bytes read never lag the packets the capture counted.
        publish_progress(source, stats);
        if tx.send(batch).is_err() || done {
            return;
        }
    }
}

/// Copies the source's input byte counters into `stats`.
fn publish_progress(source: &dyn PacketSource, stats: &Stats) {
    if let Some(p) = source.progress() {
        stats.input_bytes_read.store(p.bytes_read, Relaxed);
        stats.input_bytes_total.store(p.bytes_total, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every packet of a replay crosses threads as an `Input`: it must not grow unnoticed.
    #[test]
    fn input_is_one_packet_of_64_bytes() {
        assert_eq!(std::mem::size_of::<PacketMeta>(), 64);
        assert_eq!(std::mem::size_of::<Input>(), 64);
    }
}
