//! Activity inside a session: the *exchanges* of a connection that stays open.
//!
//! Session-level detectors see one Start and one End per connection, so a C2 implant
//! that keeps one TCP connection (or one UDP 5-tuple) open and checks in over it every
//! 20 s looks like a single long session. This tracker splits a session's payload into
//! blocks separated by pauses: a pause is at least `gap` of silence — no new payload in
//! either direction — and a block is the payload from the end of one pause to the start
//! of the next. A block that the initiator starts after a pause is an exchange; so is the
//! session's opening block once the session has paused at all. A finished exchange is
//! reported (its start, end and payload bytes each way) when the next pause ends or the
//! session ends.
//!
//! What is not activity: packets without payload (bare ACKs, zero-length keepalive
//! probes), TCP segments carrying no new data (retransmissions, and the one-byte
//! keepalive probe at seq − 1, which repeats the last byte already sent) and RSTs. So an
//! idle connection kept up by keepalives never pauses-and-resumes, and retransmissions
//! after a loss do not look like check-ins. UDP datagrams are all activity.
//!
//! Cost: 25 bytes inside each session (packed: with 4-byte alignment they would round
//! the session up by another 16 bytes), no allocation, a few integer operations per
//! payload packet and nothing for packets without payload. Times are kept as a wrapping
//! millisecond clock (`u32`), which orders two instants correctly while they are less
//! than 24.8 days apart — far beyond any idle timeout. Reported times are the packets'
//! timestamps truncated to the millisecond. A session that never pauses reports nothing.

use crate::time::{Timestamp, NANOS_PER_SEC};

const NANOS_PER_MS: i64 = NANOS_PER_SEC / 1000;

// Flag bits.
/// The initiator's / responder's next TCP sequence number is known.
const SEQ_KNOWN: [u8; 2] = [1, 2];
/// A block is open (payload was seen).
const ACTIVE: u8 = 4;
/// The open block is the session's opening activity (no pause yet).
const OPENING: u8 = 8;
/// A pause ended by payload was seen: blocks are reported from now on.
const PAUSED: u8 = 16;
/// The open block began with the initiator's payload.
const INIT_LED: u8 = 32;

/// A finished exchange, as the tracker saw it (the table adds the session's identity).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// First and last new payload of the block (millisecond precision).
    pub start: Timestamp,
    pub end: Timestamp,
    /// Payload bytes initiator → responder and back (new data only; saturating).
    pub src_bytes: u32,
    pub dst_bytes: u32,
    /// The session's opening activity, before its first pause.
    pub opening: bool,
}

/// Per-session exchange state. `Default` is a session with no payload yet. Fields are
/// only ever read and written by value (a packed struct's fields have no references).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, packed)]
pub struct Exchanges {
    /// TCP: sequence number just past the highest payload byte seen from the initiator
    /// and from the responder.
    next_seq_init: u32,
    next_seq_resp: u32,
    /// Millisecond clock of the latest new payload in either direction.
    last_ms: u32,
    /// Millisecond clock of the open block's first payload.
    start_ms: u32,
    /// Payload bytes of the open block from the initiator and from the responder.
    bytes_init: u32,
    bytes_resp: u32,
    flags: u8,
}

/// The wrapping millisecond clock of an instant.
fn ms32(ts: Timestamp) -> u32 {
    ts.0.div_euclid(NANOS_PER_MS) as u32
}

/// `ts` truncated to the millisecond, moved back by `ms` milliseconds.
fn ms_before(ts: Timestamp, ms: u32) -> Timestamp {
    Timestamp((ts.0.div_euclid(NANOS_PER_MS) - i64::from(ms)) * NANOS_PER_MS)
}

impl Exchanges {
    /// A TCP segment with `payload_len` bytes of payload starting at `seq` (SYN already
    /// accounted for by the caller). Returns the exchange this payload completed, if any.
    /// `gap_ms` is the pause length in milliseconds (0: tracking is off).
    #[inline]
    pub fn tcp(&mut self, ts: Timestamp, from_init: bool, seq: u32, payload_len: u32, gap_ms: u32) -> Option<Block> {
        let known = SEQ_KNOWN[usize::from(!from_init)];
        let next = if from_init { self.next_seq_init } else { self.next_seq_resp };
        let end = seq.wrapping_add(payload_len);
        let fresh = if self.flags & known == 0 {
            self.flags |= known;
            payload_len
        } else {
            // Bytes beyond the highest already seen; none for a retransmission or a
            // keepalive probe (serial-number arithmetic: sequence numbers wrap).
            let ahead = end.wrapping_sub(next) as i32;
            if ahead <= 0 {
                return None;
            }
            (ahead as u32).min(payload_len)
        };
        if from_init {
            self.next_seq_init = end;
        } else {
            self.next_seq_resp = end;
        }
        self.payload(ts, from_init, fresh, gap_ms)
    }

    /// A UDP datagram with `payload_len` bytes of payload.
    #[inline]
    pub fn datagram(&mut self, ts: Timestamp, from_init: bool, payload_len: u32, gap_ms: u32) -> Option<Block> {
        self.payload(ts, from_init, payload_len, gap_ms)
    }

    #[inline]
    fn payload(&mut self, ts: Timestamp, from_init: bool, bytes: u32, gap_ms: u32) -> Option<Block> {
        let now = ms32(ts);
        if self.flags & ACTIVE == 0 {
            self.open(now, from_init, bytes);
            return None;
        }
        let silent = now.wrapping_sub(self.last_ms) as i32;
        let done = if silent >= 0 && silent as u32 >= gap_ms { self.pause_ended(ts, now, from_init) } else { None };
        if silent > 0 {
            self.last_ms = now;
        }
        if from_init {
            self.bytes_init = self.bytes_init.saturating_add(bytes);
        } else {
            self.bytes_resp = self.bytes_resp.saturating_add(bytes);
        }
        done
    }

    /// The session's first payload.
    #[cold]
    fn open(&mut self, now: u32, from_init: bool, bytes: u32) {
        self.flags |= ACTIVE | OPENING | if from_init { INIT_LED } else { 0 };
        self.start_ms = now;
        self.last_ms = now;
        (self.bytes_init, self.bytes_resp) = if from_init { (bytes, 0) } else { (0, bytes) };
    }

    /// A pause, ended by payload at `ts`: the open block is complete (an exchange if it
    /// is the opening or the initiator began it), and a new one begins.
    #[cold]
    fn pause_ended(&mut self, ts: Timestamp, now: u32, from_init: bool) -> Option<Block> {
        let done = (self.flags & (OPENING | INIT_LED) != 0).then(|| self.block(ts, now));
        self.flags = (self.flags & !(OPENING | INIT_LED)) | PAUSED | if from_init { INIT_LED } else { 0 };
        self.start_ms = now;
        (self.bytes_init, self.bytes_resp) = (0, 0);
        done
    }

    /// The open block, its times rebuilt from `ts` (whose clock reading is `now`).
    fn block(&self, ts: Timestamp, now: u32) -> Block {
        Block {
            start: ms_before(ts, now.wrapping_sub(self.start_ms)),
            end: ms_before(ts, now.wrapping_sub(self.last_ms)),
            src_bytes: self.bytes_init,
            dst_bytes: self.bytes_resp,
            opening: self.flags & OPENING != 0,
        }
    }

    /// The session is ending (`last` = its latest packet time): the open block, if it is
    /// an exchange — it followed a pause and the initiator began it.
    pub fn finish(&self, last: Timestamp) -> Option<Block> {
        let reportable = ACTIVE | PAUSED | INIT_LED;
        (self.flags & reportable == reportable).then(|| self.block(last, ms32(last)))
    }
}
