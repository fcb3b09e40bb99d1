//! The streaming engine behind the benchmark mixes: sessions start as a Poisson process,
//! each [`SessionMix::start`] appends a whole short session to a [`Trace`], and its
//! packets wait in a min-heap keyed by (timestamp, insertion order) until no session yet
//! to start can precede them. Long sessions (bulk transfers, a beacon's schedule) would
//! hold millions of packets in that heap, so a mix can instead leave a *resume marker*:
//! when capture time reaches it, [`SessionMix::resume`] produces the next chunk of that
//! session (and, if the session goes on, another marker). Every packet of a chunk is at or
//! after its marker's time, so the output stays in time order, and memory stays bounded
//! by the active sessions however many packets are written.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::io::{self, Write};

use super::packet::Packet;
use super::pcap_writer::PcapWriter;
use super::session::Trace;
use crate::time::Timestamp;

/// What one call to [`SessionMix::start`] produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Started {
    /// An ordinary session (its packets are in the trace).
    Session,
    /// A port scan (counted separately in [`MixedStats::scans`]).
    Scan,
}

/// A traffic recipe driven by [`write_sessions`].
pub trait SessionMix {
    /// Appends the packets of one session starting at `t` to `tr.packets`. A long session
    /// may instead (or also) ask to be resumed later with [`Resumes::at`].
    fn start(&mut self, tr: &mut Trace, t: Timestamp, resumes: &mut Resumes) -> Started;

    /// Produces the next chunk of long session `id` (registered with [`Resumes::at`]),
    /// every packet at or after `t`, the marker's time.
    fn resume(&mut self, tr: &mut Trace, id: u32, t: Timestamp, resumes: &mut Resumes);
}

/// Resume markers requested during one `start`/`resume` call.
#[derive(Debug, Default)]
pub struct Resumes(Vec<(Timestamp, u32)>);

impl Resumes {
    /// Call [`SessionMix::resume`] for session `id` once capture time reaches `t`.
    pub fn at(&mut self, t: Timestamp, id: u32) {
        self.0.push((t, id));
    }
}

/// What [`write_sessions`] (and the mixes built on it) produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MixedStats {
    pub packets: u64,
    /// Sessions started by the Poisson process (a scan counts once).
    pub sessions: u64,
    pub scans: u64,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    /// Largest number of packets waiting in the heap at once.
    pub peak_pending: usize,
}

enum Item {
    Packet(Packet),
    Resume(u32),
}

struct Pending {
    ts: Timestamp,
    order: u64,
    item: Item,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.ts, self.order) == (other.ts, other.order)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.ts, self.order).cmp(&(other.ts, other.order))
    }
}

struct Heap {
    heap: BinaryHeap<Reverse<Pending>>,
    order: u64,
    packets: usize,
    peak_packets: usize,
}

impl Heap {
    fn push(&mut self, ts: Timestamp, item: Item) {
        if matches!(item, Item::Packet(_)) {
            self.packets += 1;
        }
        self.heap.push(Reverse(Pending { ts, order: self.order, item }));
        self.order += 1;
    }

    /// Moves the trace's packets and the requested markers into the heap.
    fn take(&mut self, tr: &mut Trace, resumes: &mut Resumes) {
        for pkt in tr.packets.drain(..) {
            self.push(pkt.ts, Item::Packet(pkt));
        }
        for (t, id) in resumes.0.drain(..) {
            self.push(t, Item::Resume(id));
        }
        self.peak_packets = self.peak_packets.max(self.packets);
    }
}

/// Checks a session rate given on the command line.
pub fn check_rate(rate: f64) -> io::Result<()> {
    if rate <= 0.0 || !rate.is_finite() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--session-rate must be a positive number, got {rate}"),
        ));
    }
    Ok(())
}

/// When a stream stops: after `packets` packets, or before the first packet later than
/// `until`, whichever comes first.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub packets: u64,
    pub until: Option<Timestamp>,
}

impl Limit {
    pub fn packets(packets: u64) -> Self {
        Limit { packets, until: None }
    }
}

/// Runs `mix` with sessions starting at `session_rate` per second (Poisson, first one at
/// `start`) until `limit`. `tr` supplies the random numbers (its packet list must be
/// empty).
pub fn write_sessions<W: Write, M: SessionMix>(
    mix: &mut M,
    tr: &mut Trace,
    start: Timestamp,
    session_rate: f64,
    limit: Limit,
    out: &mut PcapWriter<W>,
) -> io::Result<MixedStats> {
    check_rate(session_rate)?;
    let mut heap = Heap { heap: BinaryHeap::with_capacity(1 << 16), order: 0, packets: 0, peak_packets: 0 };
    let mut resumes = Resumes::default();
    let mut stats = MixedStats::default();
    let mean_gap_ns = 1e9 / session_rate;
    let mut next_start = start;
    let until = limit.until.unwrap_or(Timestamp(i64::MAX));
    while stats.packets < limit.packets {
        let ready = heap.heap.peek().is_some_and(|Reverse(p)| p.ts <= next_start);
        if ready {
            let Reverse(p) = heap.heap.pop().expect("peeked");
            match p.item {
                Item::Packet(pkt) => {
                    if p.ts > until {
                        break;
                    }
                    heap.packets -= 1;
                    if stats.packets == 0 {
                        stats.first_ts = p.ts;
                    }
                    out.write_packet(&pkt)?;
                    stats.packets += 1;
                    stats.last_ts = p.ts;
                }
                Item::Resume(id) => {
                    mix.resume(tr, id, p.ts, &mut resumes);
                    debug_assert!(tr.packets.iter().all(|q| q.ts >= p.ts), "resumed chunk goes back in time");
                    heap.take(tr, &mut resumes);
                }
            }
            continue;
        }
        let started = mix.start(tr, next_start, &mut resumes);
        stats.sessions += 1;
        stats.scans += (started == Started::Scan) as u64;
        heap.take(tr, &mut resumes);
        let gap = tr.rng.exp(mean_gap_ns).max(1.0) as i64;
        next_start = Timestamp(next_start.0 + gap);
    }
    stats.peak_pending = heap.peak_packets;
    Ok(stats)
}
