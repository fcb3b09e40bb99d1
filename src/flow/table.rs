//! The flow table: hash map from canonical 5-tuple to session state, with per-timeout
//! idle lists so expiry is O(expired), and a hard cap on the number of sessions.
//!
//! Sessions live in a slab (`Vec` + free list); the map holds slab indices. Each timeout
//! class has an intrusive doubly-linked list ordered by "touched" (table time of the last
//! packet, which never goes backwards), so the head is always the next to expire and
//! both expiry and eviction only look at list heads. Keys are attacker-controlled, so
//! the map uses the randomly seeded [`KeyedHasher`]; nothing is ever output in map order.
//! The map is a `HashTable` of slab indices (4 bytes per bucket, keys stay in the slab):
//! each packet's key is hashed once, and that hash serves both the lookup and the insert.
//! Each session records the bucket that holds it (renewed whenever the map rehashes), so
//! ending a session removes it from the map without probing.
//!
//! Time is the largest packet timestamp seen. An older packet is still counted (and may
//! stretch the session's start back) but does not move time back; a jump forward just
//! expires whatever is due, however large the gap.
//!
//! ICMP errors that quote a known session are counted in that session, as a packet
//! travelling opposite to the quoted one (normally responder → initiator), and bump its
//! `icmp_errors`; they never create a session of their own unless nothing matches.
//!
//! A TCP session closed by a FIN exchange or a RST lingers `tcp_closed_linger` to absorb
//! late packets and is then emitted with reason `fin`/`rst` (also at flush: a lingering
//! session is already finished). A bare SYN on a lingering session's tuple ends it at once
//! and starts a new session (port reuse). Active-timeout segments keep the TCP history of
//! the session (so a long SF connection stays established) but restart every counter.
//!
//! Sessions that pause and resume report their exchanges ([`FlowEvent::Exchange`],
//! see `exchange.rs`): when a pause ends (after the packet's Start, if it began a new
//! segment) and, for the exchange still open, just before the session's End.

use super::exchange::Block;
use super::key::{sender_is_initiator, FlowKey};
use super::session::{Session, TimeoutClass, CLASS_COUNT, NIL};
use super::{EndReason, FlowConfig, FlowEvent};
use crate::decode::{tcp_flags, PacketMeta, Transport};
use crate::net::KeyedHasher;
use crate::time::{Duration, Timestamp};
use hashbrown::HashTable;
use std::hash::BuildHasher;

/// Counters the flow table keeps for the exit summary and stats lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowCounters {
    /// New sessions created (active-timeout continuations not included).
    pub sessions: u64,
    /// End records emitted (sessions + active-timeout splits, once all are flushed).
    pub records: u64,
    /// Active-timeout splits (each emitted an End and a new Start).
    pub active_splits: u64,
    pub evictions: u64,
    pub icmp_errors_matched: u64,
    pub icmp_errors_unmatched: u64,
    /// Sessions open right now (the map's length, read when the counters are asked for).
    pub active: u64,
}

pub struct FlowTable {
    cfg: FlowConfig,
    counters: FlowCounters,
    /// Slab indices of the live sessions, hashed by their key with `hasher`.
    map: HashTable<u32>,
    hasher: KeyedHasher,
    slots: Vec<Session>,
    /// Idle-list neighbours of each slot, kept apart from the (large) sessions so that
    /// moving a session to the tail of its list touches two 8-byte entries of this small,
    /// cache-resident array instead of two sessions elsewhere in memory.
    links: Vec<Link>,
    free: Vec<u32>,
    heads: [u32; CLASS_COUNT],
    tails: [u32; CLASS_COUNT],
    now: Timestamp,
    /// Idle deadline of each list's head (`MAX` for an empty list), updated whenever a
    /// head changes, so expiry never reads a session to learn when it is due.
    head_deadline: [Timestamp; CLASS_COUNT],
    /// Idle timeout of each class (from `cfg`).
    timeouts: [Duration; CLASS_COUNT],
    /// No idle deadline falls before this (a lower bound of `head_deadline`), so the
    /// expiry check of most packets is this one comparison.
    next_deadline: Timestamp,
    started: bool,
    next_id: u64,
    /// `cfg.exchange_gap` in milliseconds (0: exchanges are not tracked).
    exchange_gap_ms: u32,
    /// The session a full table evicts next, as last found ([`Self::victim`]), or `NIL`:
    /// cleared whenever a list head (or its touched time) changes, so a flood finds each
    /// victim once, when the packet before it is done.
    next_victim: u32,
}

/// A slot's neighbours in its class's idle list (`NIL` at the ends / when unlinked),
/// and its "touched" time (so a new head's deadline is known without its session).
#[derive(Clone, Copy, Debug)]
struct Link {
    prev: u32,
    next: u32,
    touched: Timestamp,
}

/// Slots reserved when the table is made: the default `max_flows` (24 MiB of address space).
const SLOTS_RESERVED: usize = 131_072;

const UNLINKED: Link = Link { prev: NIL, next: NIL, touched: Timestamp::ZERO };
const NEVER: Timestamp = Timestamp(i64::MAX);

const CLASSES: [TimeoutClass; CLASS_COUNT] = [
    TimeoutClass::TcpHandshake,
    TimeoutClass::TcpEstablished,
    TimeoutClass::TcpClosed,
    TimeoutClass::Udp,
    TimeoutClass::Icmp,
    TimeoutClass::Other,
];

impl FlowTable {
    pub fn new(cfg: FlowConfig) -> Self {
        let initial = cfg.max_flows.clamp(1, 65_536);
        let reserved = cfg.max_flows.clamp(1, SLOTS_RESERVED);
        let exchange_gap_ms = (cfg.exchange_gap.0.max(0) / 1_000_000).min(i64::from(i32::MAX)) as u32;
        let timeouts = CLASSES.map(|c| class_timeout(&cfg, c));
        FlowTable {
            cfg,
            counters: FlowCounters::default(),
            map: HashTable::with_capacity(initial),
            hasher: KeyedHasher::default(),
            // Address space for the default `max_flows` up front (pages are only touched as
            // sessions arrive): a slab of 64-byte aligned slots cannot grow in place, so
            // growing it would copy every session.
            slots: Vec::with_capacity(reserved),
            links: Vec::with_capacity(initial),
            free: Vec::new(),
            heads: [NIL; CLASS_COUNT],
            tails: [NIL; CLASS_COUNT],
            now: Timestamp::ZERO,
            head_deadline: [NEVER; CLASS_COUNT],
            timeouts,
            next_deadline: Timestamp::ZERO,
            started: false,
            next_id: 1,
            exchange_gap_ms,
            next_victim: NIL,
        }
    }
    pub fn config(&self) -> &FlowConfig {
        &self.cfg
    }

    /// Feeds one packet; pushes any Start/End events (including expiries due by the
    /// packet's time) onto `out`.
    pub fn ingest_at(&mut self, pkt: &PacketMeta, out: &mut Vec<FlowEvent>) {
        self.set_now(pkt.ts);
        self.expire(out);

        if let Transport::Icmp { quoted: Some(_), .. } = &pkt.transport {
            if self.ingest_icmp_error(pkt, out) {
                return;
            }
        }

        let (key, sender_is_a, has_ports) = FlowKey::of_packet(pkt);
        let hash = self.hasher.hash_one(key);
        let existing = self.lookup(&key, hash);
        // `listed`: the idle list an existing session is on (it stays there until counted).
        let (idx, announce, listed) = match existing {
            Some(idx) if self.slots[idx as usize].closed.is_some() && is_bare_syn(pkt) => {
                let reason = self.slots[idx as usize].closed.unwrap_or(EndReason::Fin);
                self.end(idx, reason, out);
                (self.create(key, hash, pkt, has_ports, sender_is_a, out), true, None)
            }
            Some(idx) => {
                let split = self.split_if_old(idx, pkt.ts, out);
                (idx, split, Some(self.slots[idx as usize].class))
            }
            None => (self.create(key, hash, pkt, has_ports, sender_is_a, out), true, None),
        };
        let s = &mut self.slots[idx as usize];
        let from_init = s.is_from_initiator(pkt, sender_is_a);
        s.count(pkt, from_init);
        let exchange =
            if self.exchange_gap_ms > 0 { s.track_exchange(pkt, from_init, self.exchange_gap_ms) } else { None };
        match listed {
            Some(class) => self.retouch(idx, class),
            None => self.relink(idx),
        }
        if announce {
            let s = &self.slots[idx as usize];
            push_event(out, || FlowEvent::Start(s.start_event()));
        }
        if let Some(b) = exchange {
            self.report_exchange(idx, b, out);
        }
        self.touch_next_victim();
    }

    /// Counts an ICMP error in the session it quotes, if that is open (returns true);
    /// otherwise the error is counted as unmatched and goes on as a packet of its own.
    #[cold]
    #[inline(never)]
    fn ingest_icmp_error(&mut self, pkt: &PacketMeta, out: &mut Vec<FlowEvent>) -> bool {
        let Transport::Icmp { quoted: Some(q), icmp_type, code, .. } = &pkt.transport else {
            return false;
        };
        let (q, icmp_type, code) = (**q, *icmp_type, *code);
        let qkey = FlowKey::new(q.src, q.sport, q.dst, q.dport, q.protocol, pkt.vlan.get());
        if let Some(idx) = self.lookup(&qkey, self.hasher.hash_one(qkey)) {
            self.counters.icmp_errors_matched += 1;
            let split = self.split_if_old(idx, pkt.ts, out);
            self.unlink(idx);
            let s = &mut self.slots[idx as usize];
            let ((init_addr, init_port), (resp_addr, _)) = s.endpoints();
            let quoted_from_init = init_addr == resp_addr || (q.src == init_addr && q.sport == init_port);
            s.count_icmp_error(pkt, quoted_from_init, icmp_type, code);
            self.relink(idx);
            if split {
                out.push(FlowEvent::Start(self.slots[idx as usize].start_event()));
            }
            return true;
        }
        self.counters.icmp_errors_unmatched += 1;
        false
    }

    /// Pushes the exchange `b` of session `idx` (rare: once per pause).
    #[cold]
    fn report_exchange(&self, idx: u32, b: Block, out: &mut Vec<FlowEvent>) {
        out.push(FlowEvent::Exchange(self.slots[idx as usize].exchange_event(b)));
    }

    /// Advances capture time without a packet (quiet live link): expires idle sessions.
    pub fn advance_to(&mut self, now: Timestamp, out: &mut Vec<FlowEvent>) {
        self.set_now(now);
        self.expire(out);
    }

    /// Ends every open session (reason Shutdown; `fin`/`rst` for sessions already closed
    /// and lingering), oldest start first, then by id.
    pub fn flush_all(&mut self, out: &mut Vec<FlowEvent>) {
        let open = self.open_in_flush_order(self.next_id <= 1 << 32);
        // Room for every End at once (not a doubling copy of all the events so far each
        // time the vector fills up).
        out.reserve(open.len());
        // The events `end` pushes, session by session; then the map, the idle lists and
        // the slab are emptied at once instead of taking each session out of them in turn.
        for &idx in &open {
            let s = &self.slots[idx as usize];
            let reason = s.closed.unwrap_or(EndReason::Shutdown);
            if let Some(x) = s.final_exchange() {
                out.push(FlowEvent::Exchange(x));
            }
            push_event(out, || FlowEvent::End(s.record(reason)));
        }
        self.counters.records += open.len() as u64;
        self.map.clear();
        self.slots.clear();
        self.links.clear();
        self.free.clear();
        self.heads = [NIL; CLASS_COUNT];
        self.tails = [NIL; CLASS_COUNT];
        self.head_deadline = [NEVER; CLASS_COUNT];
        self.next_victim = NIL;
    }

    /// The slots of the open sessions, oldest start first, then by id. The sort never
    /// looks into the slab: with `packed` (every id below 2^32) each key is one 128-bit
    /// integer of start, id and slot (16 bytes to move, and compared whole: ids are
    /// unique, so the slot never decides); else a `(start, id)` integer beside the slot.
    pub(super) fn open_in_flush_order(&self, packed: bool) -> Vec<u32> {
        let live = self.slots.iter().enumerate().filter(|(_, s)| s.live());
        // Ids are unique, so an unstable sort gives the same order.
        if packed {
            let mut keys: Vec<u128> = Vec::with_capacity(self.map.len());
            keys.extend(live.map(|(i, s)| start_id_key(s.start, s.id << 32 | i as u64)));
            keys.sort_unstable();
            keys.iter().map(|&k| k as u32).collect()
        } else {
            let mut keys: Vec<(u128, u32)> = Vec::with_capacity(self.map.len());
            keys.extend(live.map(|(i, s)| (start_id_key(s.start, s.id), i as u32)));
            keys.sort_unstable_by_key(|&(k, _)| k);
            keys.iter().map(|&(_, i)| i).collect()
        }
    }

    pub fn counters(&self) -> FlowCounters {
        FlowCounters { active: self.map.len() as u64, ..self.counters }
    }

    /// Current capture time (the latest packet time seen, never going backwards).
    pub fn now(&self) -> Timestamp {
        self.now
    }

    fn set_now(&mut self, ts: Timestamp) {
        if !self.started || ts > self.now {
            self.now = ts;
            self.started = true;
        }
    }

    /// Ends every session whose idle timeout has passed, earliest deadline first (ties:
    /// the class listed first in `CLASSES`). Most packets stop at the first comparison,
    /// inlined into the caller; the list walk is a call of its own.
    #[inline(always)]
    fn expire(&mut self, out: &mut Vec<FlowEvent>) {
        if self.now >= self.next_deadline {
            self.expire_due(out);
        }
    }

    #[inline(never)]
    fn expire_due(&mut self, out: &mut Vec<FlowEvent>) {
        loop {
            let (mut earliest, mut class) = (NEVER, 0);
            for (c, &deadline) in self.head_deadline.iter().enumerate() {
                if deadline < earliest {
                    (earliest, class) = (deadline, c);
                }
            }
            let idx = self.heads[class];
            if earliest > self.now || idx == NIL {
                self.next_deadline = earliest;
                return;
            }
            let reason = self.slots[idx as usize].closed.unwrap_or(EndReason::IdleTimeout);
            self.end(idx, reason, out);
        }
    }

    /// Emits an active-timeout End for an old segment and turns the slot into the next
    /// segment; the caller pushes the new Start once the packet is counted.
    ///
    /// The segment's length is measured in its own packet times (`ts` or its last packet,
    /// whichever is later), not in table time: after the clock jumped ahead, a session
    /// made of older packets would otherwise be split on every single packet.
    #[inline(always)]
    fn split_if_old(&mut self, idx: u32, ts: Timestamp, out: &mut Vec<FlowEvent>) -> bool {
        let s = &self.slots[idx as usize];
        if ts.max(s.last).since(s.start) <= self.cfg.active_timeout {
            return false;
        }
        self.split(idx, ts, out);
        true
    }

    /// The split itself (rare: once per active timeout of a long session).
    #[cold]
    #[inline(never)]
    fn split(&mut self, idx: u32, ts: Timestamp, out: &mut Vec<FlowEvent>) {
        out.push(FlowEvent::End(self.slots[idx as usize].record(EndReason::ActiveTimeout)));
        self.counters.records += 1;
        self.counters.active_splits += 1;
        let id = self.take_id();
        self.slots[idx as usize].next_segment(id, ts);
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Slab index of the live session keyed `key` (`hash` = its hash).
    #[inline(always)]
    fn lookup(&self, key: &FlowKey, hash: u64) -> Option<u32> {
        let slots = &self.slots;
        self.map.find(hash, |&i| slots[i as usize].key == *key).copied()
    }

    /// A new session for `pkt` (keyed `key`, hashed `hash`, with ports in its records or
    /// not, and the key orientation of the packet's sender).
    fn create(
        &mut self,
        key: FlowKey,
        hash: u64,
        pkt: &PacketMeta,
        has_ports: bool,
        sender_is_a: bool,
        out: &mut Vec<FlowEvent>,
    ) -> u32 {
        if self.map.len() >= self.cfg.max_flows.max(1) {
            self.evict_one(out);
        }
        let sender_inits = sender_is_initiator(pkt);
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Session::vacant(key));
                self.links.push(UNLINKED);
                (self.slots.len() - 1) as u32
            }
        };
        let id = self.take_id();
        self.slots[idx as usize].init(key, has_ports, sender_inits == sender_is_a, id, pkt.ts);
        // With no room left (`len == capacity`) an insert either reuses a deleted bucket or
        // rehashes the map (growing it or not), which moves every entry to another bucket and
        // leaves room again: then the sessions' bucket indices are renewed.
        let full = self.map.len() == self.map.capacity();
        // Moving entries (a rehash) hashes their keys again: that is rare, and not keeping
        // the hash in the session keeps the session within three cache lines.
        let (slots, hasher) = (&self.slots, &self.hasher);
        let bucket = self.map.insert_unique(hash, idx, |&i| hasher.hash_one(slots[i as usize].key)).bucket_index();
        self.slots[idx as usize].bucket = bucket as u32;
        if full && self.map.len() < self.map.capacity() {
            self.renew_buckets();
        }
        self.counters.sessions += 1;
        idx
    }

    /// Ends the longest-idle session of all.
    fn evict_one(&mut self, out: &mut Vec<FlowEvent>) {
        let known = (self.next_victim != NIL).then_some(self.next_victim);
        debug_assert!(known.is_none() || known == self.victim(), "stale next_victim");
        if let Some(idx) = known.or_else(|| self.victim()) {
            self.counters.evictions += 1;
            self.end(idx, EndReason::Evicted, out);
        }
    }

    /// The session a full table evicts next: the longest-idle of all (smallest "touched"
    /// among the list heads).
    #[inline(always)]
    fn victim(&self) -> Option<u32> {
        // A plain loop over the six heads: a session's id is only read to break a tie.
        let mut victim: Option<(u32, Timestamp)> = None;
        for &h in &self.heads {
            if h == NIL {
                continue;
            }
            let touched = self.links[h as usize].touched;
            victim = match victim {
                Some((v, t))
                    if t < touched || (t == touched && self.slots[v as usize].id < self.slots[h as usize].id) =>
                {
                    Some((v, t))
                }
                _ => Some((h, touched)),
            };
        }
        victim.map(|(v, _)| v)
    }

    /// On a full table (a flood of new sessions, each evicting one), finds the session the
    /// next new one would evict as a packet is done (kept in `next_victim`) and reads its
    /// map bucket: that cache miss then overlaps the next packet's own lookup instead of
    /// following it in `end`. A plain load that changes nothing (`black_box` keeps it);
    /// other packets pay the comparison only.
    #[inline(always)]
    fn touch_next_victim(&mut self) {
        if self.map.len() >= self.cfg.max_flows.max(1) {
            self.touch_victim_bucket();
        }
    }

    #[inline(never)]
    fn touch_victim_bucket(&mut self) {
        if let Some(v) = self.victim() {
            self.next_victim = v;
            std::hint::black_box(self.map.get_bucket(self.slots[v as usize].bucket as usize).copied());
        }
    }

    fn end(&mut self, idx: u32, reason: EndReason, out: &mut Vec<FlowEvent>) {
        self.unlink(idx);
        let s = &mut self.slots[idx as usize];
        if let Some(x) = s.final_exchange() {
            out.push(FlowEvent::Exchange(x));
        }
        push_event(out, || FlowEvent::End(s.record(reason)));
        let bucket = s.bucket as usize;
        // The session's bucket: two independent loads (control byte, index), where a probe
        // by hash would chain the session, the control group and then the bucket.
        match self.map.get_bucket_entry(bucket) {
            Ok(entry) if *entry.get() == idx => {
                entry.remove();
            }
            _ => self.remove_by_hash(idx),
        }
        self.slots[idx as usize].free();
        self.free.push(idx);
        self.counters.records += 1;
    }

    /// Removes slot `idx` from the map by probing with its hash (only if its recorded
    /// bucket were stale, which renewing the buckets on every rehash rules out).
    #[cold]
    #[inline(never)]
    fn remove_by_hash(&mut self, idx: u32) {
        debug_assert!(false, "stale map bucket for slot {idx}");
        let hash = self.hasher.hash_one(self.slots[idx as usize].key);
        if let Ok(entry) = self.map.find_entry(hash, |&i| i == idx) {
            entry.remove();
        }
    }

    /// Every live session's recorded bucket holds its slot index, and the map holds
    /// exactly the live sessions.
    #[cfg(test)]
    pub(super) fn buckets_consistent(&self) -> bool {
        let live = self.slots.iter().filter(|s| s.live()).count();
        live == self.map.len()
            && self
                .slots
                .iter()
                .enumerate()
                .all(|(i, s)| !s.live() || self.map.get_bucket(s.bucket as usize).is_some_and(|&b| b as usize == i))
    }

    /// Records in every live session the bucket that now holds it (after a rehash).
    #[cold]
    #[inline(never)]
    fn renew_buckets(&mut self) {
        for bucket in self.map.iter_buckets() {
            if let Some(&i) = self.map.get_bucket(bucket) {
                self.slots[i as usize].bucket = bucket as u32;
            }
        }
    }

    #[inline(always)]
    fn unlink(&mut self, idx: u32) {
        self.unlink_from(idx, self.slots[idx as usize].class as usize);
    }

    /// [`Self::unlink`] from the list of `class` (the session's class when it was linked).
    #[inline(always)]
    fn unlink_from(&mut self, idx: u32, class: usize) {
        let Link { prev, next, .. } = self.links[idx as usize];
        if prev == NIL && self.heads[class] != idx {
            return; // not linked
        }
        if prev == NIL {
            self.heads[class] = next;
            self.next_victim = NIL;
            // The list's deadline moves on to the new head (later: lists are in touch order).
            self.head_deadline[class] = if next == NIL {
                NEVER
            } else {
                self.links[next as usize].touched.saturating_add(self.timeouts[class])
            };
        } else {
            self.links[prev as usize].next = next;
        }
        if next == NIL {
            self.tails[class] = prev;
        } else {
            self.links[next as usize].prev = prev;
        }
        self.links[idx as usize] = UNLINKED;
    }

    /// A packet was counted in linked session `idx`, which was on the list of `old` (its
    /// class may have changed since): the session moves to the tail of its class's list,
    /// touched now. One already last on an unchanged list stays where it is; only its
    /// touched time (and, if it is also the head, the list's deadline) moves on — what
    /// unlinking and relinking it would leave, without rewriting its neighbours.
    #[inline(always)]
    fn retouch(&mut self, idx: u32, old: TimeoutClass) {
        let class = self.slots[idx as usize].class as usize;
        if class != old as usize || self.tails[class] != idx {
            self.unlink_from(idx, old as usize);
            self.relink(idx);
            return;
        }
        let now = self.now;
        self.links[idx as usize].touched = now;
        if self.heads[class] == idx {
            self.next_victim = NIL;
            let deadline = now.saturating_add(self.timeouts[class]);
            self.head_deadline[class] = deadline;
            self.next_deadline = self.next_deadline.min(deadline);
        }
    }

    /// Marks the session touched now (in its link) and appends it to its (possibly new)
    /// class list.
    #[inline(always)]
    fn relink(&mut self, idx: u32) {
        let now = self.now;
        let class = self.slots[idx as usize].class as usize;
        let tail = self.tails[class];
        self.links[idx as usize] = Link { prev: tail, next: NIL, touched: now };
        if tail == NIL {
            self.heads[class] = idx;
            self.next_victim = NIL;
            // A new head may be due sooner than every other (a shorter timeout class).
            let deadline = now.saturating_add(self.timeouts[class]);
            self.head_deadline[class] = deadline;
            self.next_deadline = self.next_deadline.min(deadline);
        } else {
            self.links[tail as usize].next = idx;
        }
        self.tails[class] = idx;
    }
}

/// Pushes the event `make` builds. Room is made first, so the event is built straight
/// into the vector: pushing a finished value instead keeps it alive across the possible
/// reallocation, and the compiler then assembles it on the stack and copies it over.
#[inline(always)]
fn push_event(out: &mut Vec<FlowEvent>, make: impl FnOnce() -> FlowEvent) {
    if out.len() == out.capacity() {
        out.reserve(1);
    }
    // Always true after the reserve; the test lets the compiler know it too.
    if out.len() < out.capacity() {
        out.push(make());
    } else {
        unreachable!("reserve made room");
    }
}

/// `(start, id)` as one integer that orders the same way (the sign bit flipped so
/// negative times sort first).
fn start_id_key(start: Timestamp, id: u64) -> u128 {
    (u128::from((start.0 as u64) ^ (1 << 63)) << 64) | u128::from(id)
}

/// Idle timeout of `class` under `cfg`.
fn class_timeout(cfg: &FlowConfig, class: TimeoutClass) -> Duration {
    match class {
        TimeoutClass::TcpHandshake => cfg.tcp_handshake_idle,
        TimeoutClass::TcpEstablished => cfg.tcp_idle,
        TimeoutClass::TcpClosed => cfg.tcp_closed_linger,
        TimeoutClass::Udp => cfg.udp_idle,
        TimeoutClass::Icmp => cfg.icmp_idle,
        TimeoutClass::Other => cfg.other_idle,
    }
}

fn is_bare_syn(pkt: &PacketMeta) -> bool {
    matches!(pkt.transport, Transport::Tcp { flags, .. } if flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN)
}
