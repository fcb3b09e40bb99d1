//! ASIM NetworkSession records, ingestible verbatim into Microsoft Sentinel's native
//! `ASimNetworkSessionLogs` table: every top-level key is a column of that table, in the
//! order and with the types [`super::schema::COLUMNS`] defines; what the table has no column
//! for (Zeek conn state, end reason, segment, per-direction TCP flags, ICMP errors,
//! Community ID) goes into the `AdditionalFields` object. Formatted straight into a byte
//! buffer (no JSON tree, no allocation per record).
//!
//! Conventions:
//! - Bytes are IP-layer bytes: IP header + payload as given by the IP length fields
//!   (IPv4 total length, IPv6 40 + payload length); the link layer (Ethernet, VLAN tags,
//!   FCS) is excluded. `SrcBytes`/`SrcPackets` are initiator -> responder.
//! - `TimeGenerated` = `EventStartTime`; times are RFC 3339 UTC with microseconds.
//!   `NetworkDuration` is whole milliseconds (floored).
//! - Keys that do not apply are left out (Kusto sees null): ports for protocols without
//!   ports, ICMP type/code outside ICMP, TCP flags outside TCP, `EventResultDetails`
//!   unless the session failed, `SrcVlanId` unless tagged.
//! - `EventSeverity` is `Informational`: ASIM derives severity from `DvcAction` (`Low` for
//!   a deny/drop/reset) and a passive sensor takes no action on the traffic.

use super::community_id::{self, FlowTuple};
use super::session_id::SessionIds;
use super::text::{self, push_ip, TimeText, TIME_MAX};
use crate::config::{Config, SourceConfig};
use crate::decode::proto;
use crate::flow::{ConnState, EndReason, EventResult, FlowEvent, FlowRecord};
use crate::net::NetSet;
use std::io::Write;
use std::net::IpAddr;

/// The sensor as the records name it (ASIM `Dvc*` fields).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Device {
    /// `Dvc`: the sensor name (`--sensor-name`, default the host name).
    pub name: String,
    /// `DvcIpAddr`: `--sensor-ip`, else (live) the capture interface's address.
    pub ip: Option<IpAddr>,
    /// `DvcInterface`: the live capture interface.
    pub interface: Option<String>,
}

/// What a record needs beyond the flow itself.
#[derive(Clone, Debug)]
pub struct RecordContext {
    /// Drives `NetworkDirection` (replaced on SIGHUP).
    pub home_net: NetSet,
    device: Device,
    /// The run of every record that does not change within a run, rendered once: from
    /// `,"EventSeverity"` through the constant product fields and the `Dvc*` fields to
    /// the opening quote of `NetworkProtocol`'s value.
    fixed_json: Vec<u8>,
    community_id_seed: u16,
    ids: SessionIds,
}

/// The constant fields after `EventSeverity`.
const PRODUCT: &str = concat!(
    ",\"EventSeverity\":\"Informational\",\"EventSchemaVersion\":\"0.2.6\",\"EventProduct\":\"flowsentry\",\
     \"EventProductVersion\":\"",
    env!("CARGO_PKG_VERSION"),
    "\",\"EventVendor\":\"flowsentry\""
);

impl RecordContext {
    /// `live_start_ns`: wall-clock start of a live capture, None for a replay (see
    /// [`SessionIds`]).
    pub fn new(device: Device, home_net: NetSet, community_id_seed: u16, live_start_ns: Option<i128>) -> Self {
        let mut device_json = PRODUCT.as_bytes().to_vec();
        device_json.extend_from_slice(b",\"Dvc\":");
        write_json_string(&device.name, &mut device_json);
        let (hostname, fqdn) = dvc_hostname(&device.name);
        device_json.extend_from_slice(b",\"DvcHostname\":");
        write_json_string(&hostname, &mut device_json);
        if let Some(f) = fqdn {
            device_json.extend_from_slice(b",\"DvcFQDN\":");
            write_json_string(f, &mut device_json);
        }
        if let Some(ip) = device.ip {
            device_json.extend_from_slice(b",\"DvcIpAddr\":\"");
            push_ip(&mut device_json, ip);
            device_json.push(b'"');
        }
        if let Some(i) = &device.interface {
            device_json.extend_from_slice(b",\"DvcInterface\":");
            write_json_string(i, &mut device_json);
        }
        device_json.extend_from_slice(b",\"NetworkProtocol\":\"");
        let ids = SessionIds::new(&device.name, live_start_ns);
        RecordContext { home_net, device, fixed_json: device_json, community_id_seed, ids }
    }

    /// The context of a run with these settings. Live: `DvcInterface` is the capture
    /// interface, `DvcIpAddr` its address unless `--sensor-ip` is given, and the wall
    /// clock now is part of the session-id prefix. A replay has no interface: only
    /// `--sensor-ip` sets `DvcIpAddr`, and the ids depend on the capture alone.
    pub fn for_run(cfg: &Config) -> Self {
        let (interface, live_start_ns) = match &cfg.source {
            SourceConfig::Live(l) => {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                (Some(l.interface.clone()), Some(now.as_nanos() as i128))
            }
            SourceConfig::Replay { .. } => (None, None),
        };
        let ip = cfg.sensor_ip.or_else(|| interface.as_deref().and_then(interface_address));
        let device = Device { name: cfg.sensor_name.clone(), ip, interface };
        RecordContext::new(device, cfg.detect.home_net.clone(), cfg.community_id_seed, live_start_ns)
    }

    /// The sensor name (`Dvc`).
    pub fn sensor_name(&self) -> &str {
        &self.device.name
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Call with every batch of flow events before writing its records or alerts: the
    /// run's first session fixes the `NetworkSessionId` prefix.
    #[inline]
    pub fn observe(&mut self, events: &[FlowEvent]) {
        self.ids.observe(events);
    }

    /// Appends the `NetworkSessionId` of flow-table session `id` (no quotes), as records
    /// write it; alerts use it for their sessions so the two join in Sentinel.
    #[inline]
    pub fn write_session_id(&self, id: u64, out: &mut Vec<u8>) {
        self.ids.write(id, out);
    }

    /// The `NetworkSessionId` of flow-table session `id`.
    pub fn session_id(&self, id: u64) -> String {
        self.ids.format(id)
    }

    /// The run prefix of this run's session ids.
    pub fn run_prefix(&self) -> &str {
        self.ids.prefix()
    }
}

/// The address of a network interface: its first IPv4 address, else its first IPv6
/// address that is not link-local; None for `any`, an unknown interface or no address.
pub fn interface_address(name: &str) -> Option<IpAddr> {
    let addrs: Vec<IpAddr> = nix::ifaddrs::getifaddrs()
        .ok()?
        .filter(|a| a.interface_name == name)
        .filter_map(|a| {
            let a = a.address?;
            a.as_sockaddr_in()
                .map(|v4| IpAddr::V4(v4.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
        })
        .collect();
    addrs.iter().find(|a| a.is_ipv4()).or_else(|| addrs.iter().find(|a| !is_link_local_v6(a))).copied()
}

fn is_link_local_v6(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80)
}

/// `DvcHostname` (an ASIM hostname: `[A-Za-z0-9-]{1,61}`) and `DvcFQDN` from the sensor
/// name. The native parser's `Dvc` alias is `coalesce(DvcFQDN, DvcHostname, ...)`, so they
/// carry the sensor name, not the machine's: two sensors on one host stay apart.
pub fn dvc_hostname(name: &str) -> (String, Option<&str>) {
    let fqdn = is_fqdn(name).then_some(name);
    let label = if fqdn.is_some() { name.split('.').next().unwrap_or(name) } else { name };
    let mut host: String =
        label.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).take(61).collect();
    if host.is_empty() {
        host.push_str("flowsentry");
    }
    (host, fqdn)
}

/// ASIM's FQDN check: `^([_a-zA-Z0-9][_a-zA-Z0-9-]{0,62}\.)+[a-zA-Z]{2,63}$`.
fn is_fqdn(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    let Some((tld, rest)) = labels.split_last() else { return false };
    let label_ok = |l: &&str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
    };
    !rest.is_empty()
        && rest.iter().all(label_ok)
        && (2..=63).contains(&tld.len())
        && tld.bytes().all(|c| c.is_ascii_alphabetic())
}

/// Appends one record as a JSON object followed by `\n` (a one-off [`RecordWriter`]).
pub fn write_record(rec: &FlowRecord, ctx: &RecordContext, out: &mut Vec<u8>) {
    let mut buf = RecordBuffer::default();
    RecordWriter::default().write(rec, ctx, &mut buf);
    out.extend_from_slice(buf.as_bytes());
}

/// Room every record has in [`RecordBuffer`] besides its run rendered once per run
/// (`RecordContext::fixed_json`): its other constant text plus the longest values (times,
/// numbers, addresses, history) and the slack of the fixed-size copies; the longest
/// record possible is ~1.2 KiB besides that run (tested).
const RECORD_ROOM: usize = 2048;

/// Formatted record lines, reused batch after batch: a zero-filled byte area that records
/// are written into in place (no allocation or capacity check per field), with its filled
/// length and line count.
#[derive(Debug, Default)]
pub struct RecordBuffer {
    area: Vec<u8>,
    len: usize,
    lines: u64,
}

impl RecordBuffer {
    /// The formatted lines.
    pub fn as_bytes(&self) -> &[u8] {
        &self.area[..self.len]
    }

    /// Bytes formatted.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Lines (records) formatted.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Forgets the lines, keeps the area.
    pub fn clear(&mut self) {
        self.len = 0;
        self.lines = 0;
    }

    /// Makes sure `room` bytes are free after the filled part.
    #[inline]
    fn room(&mut self, room: usize) {
        if self.area.len() < self.len + room {
            self.area.resize((self.len + room).max(2 * self.area.len()), 0);
        }
    }
}

/// Formats records into a [`RecordBuffer`], keeping the per-second time text between
/// records (see [`TimeText`]).
#[derive(Clone, Debug, Default)]
pub struct RecordWriter {
    start: TimeText,
    end: TimeText,
}

/// One endpoint: `ip_key` (opening the quoted address), the address, its closing quote,
/// then `port_key` and the port when there is one.
#[inline(always)]
fn put_endpoint(b: &mut [u8], at: usize, ip_key: &[u8], ip: IpAddr, port_key: &[u8], port: Option<u16>) -> usize {
    let mut at = put(b, at, ip_key);
    at = text::put_ip(b, at, ip);
    b[at] = b'"';
    at += 1;
    if let Some(p) = port {
        at = put(b, at, port_key);
        at = text::put_u64(b, at, p.into());
    }
    at
}

/// Copies `s` to `b[at..]`; returns the new end.
#[inline(always)]
fn put(b: &mut [u8], at: usize, s: &[u8]) -> usize {
    b[at..at + s.len()].copy_from_slice(s);
    at + s.len()
}

impl RecordWriter {
    /// Appends one record as a JSON object followed by `\n`.
    pub fn write(&mut self, rec: &FlowRecord, ctx: &RecordContext, out: &mut RecordBuffer) {
        out.room(RECORD_ROOM + ctx.fixed_json.len());
        let b = &mut out.area[..];
        let mut at = out.len;
        // TimeGenerated = EventStartTime.
        match self.start.quoted(rec.start) {
            Some(start) => {
                at = put(b, at, b"{\"TimeGenerated\":");
                at = put(b, at, start);
                at = put(b, at, b",\"EventStartTime\":");
                at = put(b, at, start);
            }
            None => {
                let mut start = [0u8; TIME_MAX];
                let start_len = self.start.put(rec.start, &mut start, 0);
                at = put(b, at, b"{\"TimeGenerated\":");
                at = put(b, at, &start[..start_len]);
                at = put(b, at, b",\"EventStartTime\":");
                at = put(b, at, &start[..start_len]);
            }
        }
        at = put(b, at, b",\"EventEndTime\":");
        at = self.end.put(rec.end, b, at);
        at = put(b, at, b",\"EventCount\":1,\"EventType\":\"NetworkSession\",\"EventResult\":\"");
        at = put_short(b, at, result_text(rec.result));
        b[at] = b'"';
        at += 1;
        if let Some(details) = result_details(rec) {
            at = put(b, at, b",\"EventResultDetails\":\"");
            at = put(b, at, details.as_bytes());
            b[at] = b'"';
            at += 1;
        }
        at = put(b, at, &ctx.fixed_json);
        at = put_short(b, at, &PROTOCOL_TEXT[usize::from(rec.protocol)]);
        at = put(
            b,
            at,
            if rec.src.is_ipv4() {
                b"\",\"NetworkProtocolVersion\":\"IPv4"
            } else {
                b"\",\"NetworkProtocolVersion\":\"IPv6"
            },
        );
        at = put(b, at, b"\",\"NetworkDirection\":\"");
        at = put_short(b, at, direction_text(rec.src, rec.dst, &ctx.home_net));
        at = put(b, at, b"\",\"NetworkDuration\":");
        at = text::put_i64(b, at, rec.end.since(rec.start).0 / 1_000_000);
        at = put_endpoint(b, at, b",\"SrcIpAddr\":\"", rec.src, b",\"SrcPortNumber\":", rec.sport);
        at = put_endpoint(b, at, b",\"DstIpAddr\":\"", rec.dst, b",\"DstPortNumber\":", rec.dport);
        at = put(b, at, b",\"SrcBytes\":");
        at = text::put_u64(b, at, rec.src_bytes);
        at = put(b, at, b",\"DstBytes\":");
        at = text::put_u64(b, at, rec.dst_bytes);
        at = put(b, at, b",\"SrcPackets\":");
        at = text::put_u64(b, at, rec.src_packets);
        at = put(b, at, b",\"DstPackets\":");
        at = text::put_u64(b, at, rec.dst_packets);
        at = put(b, at, b",\"NetworkBytes\":");
        at = text::put_u64(b, at, rec.src_bytes + rec.dst_bytes);
        at = put(b, at, b",\"NetworkPackets\":");
        at = text::put_u64(b, at, rec.src_packets + rec.dst_packets);
        let is_icmp = rec.protocol == proto::ICMP || rec.protocol == proto::ICMPV6;
        let icmp = if is_icmp { rec.icmp_type.map(|t| (t, rec.icmp_code.unwrap_or(0))) } else { None };
        if let Some((t, code)) = icmp {
            at = put(b, at, b",\"NetworkIcmpType\":\"");
            at = match icmp_type_name(rec.protocol == proto::ICMPV6, t) {
                Some(name) => put(b, at, name.as_bytes()),
                None => text::put_u64(b, at, t.into()),
            };
            at = put(b, at, b"\",\"NetworkIcmpCode\":");
            at = text::put_u64(b, at, code.into());
        }
        if let Some(v) = rec.vlan {
            at = put(b, at, b",\"SrcVlanId\":\"");
            at = text::put_u64(b, at, v.into());
            b[at] = b'"';
            at += 1;
        }
        at = put(b, at, b",\"NetworkSessionId\":\"");
        at = put(b, at, ctx.ids.prefix_bytes());
        b[at] = b'-';
        at = text::put_u64(b, at + 1, rec.id);
        b[at] = b'"';
        at += 1;
        if !rec.history.is_empty() {
            at = put(b, at, b",\"NetworkConnectionHistory\":\"");
            let (letters, len) = rec.history.padded();
            b[at..at + letters.len()].copy_from_slice(letters);
            at += len;
            b[at] = b'"';
            at += 1;
        }
        let is_tcp = rec.protocol == proto::TCP && rec.sport.is_some();
        if is_tcp {
            // One fixed-size copy of the six fields' text for these flags; the bytes past
            // its length are overwritten by what follows.
            let (text, len) = &TCP_FLAG_FIELDS[usize::from((rec.src_tcp_flags | rec.dst_tcp_flags) & 0x3f)];
            b[at..at + TCP_FLAG_FIELDS_MAX].copy_from_slice(text);
            at += usize::from(*len);
        }
        at = put(b, at, b",\"AdditionalFields\":{\"CommunityId\":\"");
        let tuple =
            FlowTuple { src: rec.src, dst: rec.dst, protocol: rec.protocol, ports: rec.sport.zip(rec.dport), icmp };
        at = put(b, at, &community_id::community_id(ctx.community_id_seed, &tuple));
        at = put(b, at, b"\",\"ConnState\":\"");
        at = put_short(b, at, conn_state_text(rec.conn_state));
        at = put(b, at, b"\",\"EndReason\":\"");
        at = put_short(b, at, end_reason_text(rec.end_reason));
        b[at] = b'"';
        at += 1;
        if rec.segment > 0 {
            at = put(b, at, b",\"Segment\":");
            at = text::put_u64(b, at, rec.segment.into());
        }
        if is_tcp {
            at = put(b, at, b",\"SrcTcpFlags\":\"");
            at = put_tcp_flags(b, at, rec.src_tcp_flags);
            at = put(b, at, b"\",\"DstTcpFlags\":\"");
            at = put_tcp_flags(b, at, rec.dst_tcp_flags);
            b[at] = b'"';
            at += 1;
        }
        if rec.icmp_errors > 0 {
            at = put(b, at, b",\"IcmpErrors\":");
            at = text::put_u64(b, at, rec.icmp_errors.into());
            if let Some((t, c)) = rec.last_icmp_error {
                at = put(b, at, b",\"LastIcmpErrorType\":");
                at = text::put_u64(b, at, t.into());
                at = put(b, at, b",\"LastIcmpErrorCode\":");
                at = text::put_u64(b, at, c.into());
            }
        }
        at = put(b, at, b"}}\n");
        out.len = at;
        out.lines += 1;
    }
}

/// A short text (at most 16 bytes) zero-padded to 16, so that writing it is one
/// fixed-size copy (no `memcpy` call for a length known only at run time); the bytes
/// past its length are overwritten by what follows.
#[derive(Clone, Copy, Debug)]
struct Short {
    text: [u8; 16],
    len: u8,
}

impl Short {
    const fn new(s: &str) -> Short {
        let s = s.as_bytes();
        assert!(s.len() <= 16);
        let mut text = [0u8; 16];
        let mut i = 0;
        while i < s.len() {
            text[i] = s[i];
            i += 1;
        }
        Short { text, len: s.len() as u8 }
    }

    #[cfg(test)]
    fn as_bytes(&self) -> &[u8] {
        &self.text[..usize::from(self.len)]
    }
}

/// Copies `s` to `b[at..]` (16 bytes written); returns the new end.
#[inline(always)]
fn put_short(b: &mut [u8], at: usize, s: &Short) -> usize {
    b[at..at + 16].copy_from_slice(&s.text);
    at + usize::from(s.len)
}

/// The [`Short`] text of each listed variant of an enum with a const `as_str` (the match
/// is exhaustive: a new variant fails to compile until it is listed).
macro_rules! short_text {
    ($value:expr, $($variant:path),+ $(,)?) => {
        match $value {
            $($variant => {
                const TEXT: Short = Short::new($variant.as_str());
                &TEXT
            })+
        }
    };
}

fn result_text(r: EventResult) -> &'static Short {
    short_text!(r, EventResult::Success, EventResult::Failure, EventResult::NA)
}

fn conn_state_text(c: ConnState) -> &'static Short {
    use ConnState::*;
    short_text!(c, S0, S1, SF, REJ, S2, S3, RSTO, RSTR, RSTOS0, RSTRH, SH, SHR, OTH)
}

fn end_reason_text(e: EndReason) -> &'static Short {
    use EndReason::*;
    short_text!(e, Fin, Rst, IdleTimeout, ActiveTimeout, Evicted, Shutdown)
}

/// `NetworkProtocol`'s text for each protocol number: its [`protocol_name`], else the
/// number.
static PROTOCOL_TEXT: [Short; 256] = {
    let mut table = [Short { text: [0; 16], len: 0 }; 256];
    let mut p = 0;
    while p < 256 {
        table[p] = match protocol_name(p as u8) {
            Some(name) => Short::new(name),
            None => {
                let mut text = [0u8; 16];
                let len = 1 + (p >= 10) as usize + (p >= 100) as usize;
                let (mut n, mut v) = (0, p);
                while n < len {
                    text[len - 1 - n] = b'0' + (v % 10) as u8;
                    v /= 10;
                    n += 1;
                }
                Short { text, len: len as u8 }
            }
        };
        p += 1;
    }
    table
};

/// [`direction`] as a [`Short`].
#[inline]
fn direction_text(src: IpAddr, dst: IpAddr, home: &NetSet) -> &'static Short {
    const TEXT: [Short; 4] =
        [Short::new("External"), Short::new("Inbound"), Short::new("Outbound"), Short::new("Local")];
    &TEXT[usize::from(home.contains(src)) * 2 + usize::from(home.contains(dst))]
}

/// The `TcpFlags*` fields in record order, with their flag bits (FIN, SYN, RST, PSH,
/// ACK and URG are bits 0 to 5 of the flags byte).
const TCP_FLAG_NAMES: [(&[u8], u8); 6] = [
    (b",\"TcpFlagsSyn\":", crate::decode::tcp_flags::SYN),
    (b",\"TcpFlagsAck\":", crate::decode::tcp_flags::ACK),
    (b",\"TcpFlagsFin\":", crate::decode::tcp_flags::FIN),
    (b",\"TcpFlagsRst\":", crate::decode::tcp_flags::RST),
    (b",\"TcpFlagsPsh\":", crate::decode::tcp_flags::PSH),
    (b",\"TcpFlagsUrg\":", crate::decode::tcp_flags::URG),
];

/// Longest text of the six `TcpFlags*` fields (all `false`).
const TCP_FLAG_FIELDS_MAX: usize = 6 * (15 + 5);

/// The text of the six `TcpFlags*` fields and its length for each value of the low six
/// flag bits, built at compile time.
static TCP_FLAG_FIELDS: [([u8; TCP_FLAG_FIELDS_MAX], u8); 64] = {
    let mut table = [([0u8; TCP_FLAG_FIELDS_MAX], 0u8); 64];
    let mut flags = 0;
    while flags < 64 {
        let (text, len) = &mut table[flags];
        let mut f = 0;
        while f < TCP_FLAG_NAMES.len() {
            let (name, bit) = TCP_FLAG_NAMES[f];
            let value: &[u8] = if flags as u8 & bit != 0 { b"true" } else { b"false" };
            let mut i = 0;
            while i < name.len() {
                text[*len as usize] = name[i];
                *len += 1;
                i += 1;
            }
            i = 0;
            while i < value.len() {
                text[*len as usize] = value[i];
                *len += 1;
                i += 1;
            }
            f += 1;
        }
        flags += 1;
    }
    table
};

/// ASIM `EventResultDetails` of a failed session (None otherwise), from the values the
/// NetworkSession schema lists: a TCP attempt reset (REJ, RSTOS0) is `Reset`; one never
/// answered (S0, SH) and an unanswered UDP or ICMP request are `Timeout`; an attempt
/// answered only by ICMP errors takes the last error's meaning (see [`icmp_error_details`]).
pub fn result_details(rec: &FlowRecord) -> Option<&'static str> {
    if rec.result != EventResult::Failure {
        return None;
    }
    if rec.protocol == proto::TCP && rec.sport.is_some() {
        return Some(match rec.conn_state {
            ConnState::REJ | ConnState::RSTOS0 => "Reset",
            _ => match rec.last_icmp_error {
                Some((t, c)) => icmp_error_details(rec.src.is_ipv6(), t, c),
                None => "Timeout",
            },
        });
    }
    Some(match rec.last_icmp_error {
        Some((t, c)) => icmp_error_details(rec.src.is_ipv6(), t, c),
        None => "Timeout",
    })
}

/// The ASIM result detail an ICMP error stands for: refused by the destination (port
/// unreachable) or by a filter (communication administratively prohibited) is `Reset`,
/// the counterpart of a TCP reset; other unreachables, time exceeded and packet too big
/// are `Routing issue`; anything else is `Unknown`.
pub fn icmp_error_details(v6: bool, icmp_type: u8, code: u8) -> &'static str {
    match (v6, icmp_type, code) {
        (false, 3, 3 | 9 | 10 | 13) | (true, 1, 1 | 4) => "Reset",
        (false, 3 | 11, _) | (true, 1..=3, _) => "Routing issue",
        _ => "Unknown",
    }
}

/// ASIM NetworkDirection from the home network: Local, Outbound, Inbound or External.
pub fn direction(src: IpAddr, dst: IpAddr, home: &NetSet) -> &'static str {
    match (home.contains(src), home.contains(dst)) {
        (true, true) => "Local",
        (true, false) => "Outbound",
        (false, true) => "Inbound",
        (false, false) => "External",
    }
}

/// IANA keyword ("Keyword" column of the protocol-numbers registry, as ASIM's
/// NetworkProtocol asks) for common protocol numbers.
pub const fn protocol_name(protocol: u8) -> Option<&'static str> {
    Some(match protocol {
        proto::ICMP => "ICMP",
        2 => "IGMP",
        4 => "IPv4",
        proto::TCP => "TCP",
        proto::UDP => "UDP",
        41 => "IPv6",
        47 => "GRE",
        50 => "ESP",
        51 => "AH",
        proto::ICMPV6 => "IPv6-ICMP",
        89 => "OSPFIGP",
        103 => "PIM",
        112 => "VRRP",
        132 => "SCTP",
        136 => "UDPLite",
        _ => return None,
    })
}

/// RFC 2780 / RFC 4443 names of the common ICMP types.
pub fn icmp_type_name(v6: bool, icmp_type: u8) -> Option<&'static str> {
    Some(match (v6, icmp_type) {
        (false, 0) => "Echo Reply",
        (false, 3) => "Destination Unreachable",
        (false, 4) => "Source Quench",
        (false, 5) => "Redirect",
        (false, 8) => "Echo",
        (false, 9) => "Router Advertisement",
        (false, 10) => "Router Solicitation",
        (false, 11) => "Time Exceeded",
        (false, 12) => "Parameter Problem",
        (false, 13) => "Timestamp",
        (false, 14) => "Timestamp Reply",
        (true, 1) => "Destination Unreachable",
        (true, 2) => "Packet Too Big",
        (true, 3) => "Time Exceeded",
        (true, 4) => "Parameter Problem",
        (true, 128) => "Echo Request",
        (true, 129) => "Echo Reply",
        (true, 133) => "Router Solicitation",
        (true, 134) => "Router Advertisement",
        (true, 135) => "Neighbor Solicitation",
        (true, 136) => "Neighbor Advertisement",
        _ => return None,
    })
}

/// TCP flag letters in bit order (FIN first), e.g. `SA` for SYN+ACK, for each flags byte.
static TCP_FLAG_LETTERS: [Short; 256] = {
    let mut table = [Short { text: [0; 16], len: 0 }; 256];
    let mut flags = 0;
    while flags < 256 {
        let (mut bit, mut len) = (0, 0);
        while bit < 8 {
            if flags & (1 << bit) != 0 {
                table[flags].text[len] = b"FSRPAUEC"[bit];
                len += 1;
            }
            bit += 1;
        }
        table[flags].len = len as u8;
        flags += 1;
    }
    table
};

/// TCP flag letters of `flags` (see [`TCP_FLAG_LETTERS`]) at `b[at..]`; returns the new
/// end.
#[inline]
fn put_tcp_flags(b: &mut [u8], at: usize, flags: u8) -> usize {
    put_short(b, at, &TCP_FLAG_LETTERS[usize::from(flags)])
}

/// A JSON string literal with `"`, `\` and control characters escaped.
fn write_json_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f | 0x7f => {
                let _ = write!(out, "\\u{b:04x}");
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::history::History;
    use crate::flow::{EndReason, FirstPacket};
    use crate::output::schema::{self, JsonType};
    use crate::time::Timestamp;
    use serde_json::Value;

    fn device() -> Device {
        Device { name: "sensor-1".into(), ip: Some("192.0.2.254".parse().unwrap()), interface: Some("eth1".into()) }
    }

    fn ctx() -> RecordContext {
        RecordContext::new(device(), NetSet::parse_list("192.0.2.0/24,2001:db8:1::/48").unwrap(), 0, None)
    }

    fn tcp_record() -> FlowRecord {
        let mut history = History::default();
        for (flags, len, init) in
            [(0x02, 0, true), (0x12, 0, false), (0x10, 0, true), (0x18, 20, true), (0x11, 0, true)]
        {
            history.tcp(flags, len, init);
        }
        FlowRecord {
            id: 42,
            segment: 0,
            start: Timestamp::from_sec_usec(1_700_000_000, 123_456),
            end: Timestamp::from_sec_nsec(1_700_000_002, 500_999_999),
            src: "192.0.2.10".parse().unwrap(),
            dst: "198.51.100.20".parse().unwrap(),
            sport: Some(40000),
            dport: Some(443),
            protocol: proto::TCP,
            src_bytes: 700,
            dst_bytes: 1200,
            src_packets: 5,
            dst_packets: 3,
            icmp_type: None,
            icmp_code: None,
            vlan: Some(12),
            conn_state: ConnState::SF,
            result: EventResult::Success,
            end_reason: EndReason::Fin,
            src_tcp_flags: 0x1b,
            dst_tcp_flags: 0x12,
            icmp_errors: 0,
            last_icmp_error: None,
            first: FirstPacket::default(),
            history,
        }
    }

    fn render(rec: &FlowRecord, ctx: &RecordContext) -> (String, serde_json::Map<String, Value>) {
        let mut out = Vec::new();
        write_record(rec, ctx, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("}\n") && text.matches('\n').count() == 1);
        let v: Value = serde_json::from_str(&text).unwrap();
        check_against_schema(&text, v.as_object().unwrap());
        (text, v.as_object().unwrap().clone())
    }

    fn json_type(v: &Value) -> JsonType {
        match v {
            Value::String(_) => JsonType::String,
            Value::Number(n) if n.is_u64() || n.is_i64() => JsonType::Integer,
            Value::Number(_) => JsonType::Number,
            Value::Bool(_) => JsonType::Bool,
            Value::Object(_) => JsonType::Object,
            other => panic!("unexpected JSON value {other}"),
        }
    }

    /// The writer follows the schema module: only its keys, in its order, with its types,
    /// and every always-written key present.
    fn check_against_schema(text: &str, o: &serde_json::Map<String, Value>) {
        let mut last = 0;
        for c in schema::COLUMNS {
            match o.get(c.name) {
                Some(v) => {
                    assert_eq!(json_type(v), c.kind.json_type(), "{}: {text}", c.name);
                    let at = text.find(&format!("\"{}\":", c.name)).unwrap();
                    assert!(at >= last, "{} out of order: {text}", c.name);
                    last = at;
                }
                None => assert!(!c.always, "{} missing: {text}", c.name),
            }
        }
        for k in o.keys() {
            assert!(schema::column(k).is_some(), "top-level key {k} is not in schema::COLUMNS");
        }
        let extra = o["AdditionalFields"].as_object().unwrap();
        let extra_text = &text[text.find("\"AdditionalFields\":").unwrap()..];
        let mut last = 0;
        for f in schema::ADDITIONAL_FIELDS {
            match extra.get(f.name) {
                Some(v) => {
                    assert_eq!(json_type(v), f.json, "{}: {text}", f.name);
                    let at = extra_text.find(&format!("\"{}\":", f.name)).unwrap();
                    assert!(at >= last, "{} out of order: {text}", f.name);
                    last = at;
                }
                None => assert!(!f.always, "AdditionalFields.{} missing: {text}", f.name),
            }
        }
        for k in extra.keys() {
            assert!(schema::additional_field(k).is_some(), "AdditionalFields key {k} is not in the schema");
        }
    }

    #[test]
    fn tcp_record_has_every_field() {
        let c = ctx();
        let (_, o) = render(&tcp_record(), &c);
        let expect = serde_json::json!({
            "TimeGenerated": "2023-11-14T22:13:20.123456Z",
            "EventStartTime": "2023-11-14T22:13:20.123456Z",
            "EventEndTime": "2023-11-14T22:13:22.500999Z",
            "EventCount": 1,
            "EventType": "NetworkSession",
            "EventResult": "Success",
            "EventSeverity": "Informational",
            "EventSchemaVersion": "0.2.6",
            "EventProduct": "flowsentry",
            "EventProductVersion": env!("CARGO_PKG_VERSION"),
            "EventVendor": "flowsentry",
            "Dvc": "sensor-1",
            "DvcHostname": "sensor-1",
            "DvcIpAddr": "192.0.2.254",
            "DvcInterface": "eth1",
        });
        let cid = community_id::community_id(
            0,
            &FlowTuple {
                src: "192.0.2.10".parse().unwrap(),
                dst: "198.51.100.20".parse().unwrap(),
                protocol: 6,
                ports: Some((40000, 443)),
                icmp: None,
            },
        );
        let rest = serde_json::json!({
            "NetworkProtocol": "TCP",
            "NetworkProtocolVersion": "IPv4",
            "NetworkDirection": "Outbound",
            "NetworkDuration": 2377,
            "SrcIpAddr": "192.0.2.10",
            "SrcPortNumber": 40000,
            "DstIpAddr": "198.51.100.20",
            "DstPortNumber": 443,
            "SrcBytes": 700,
            "DstBytes": 1200,
            "SrcPackets": 5,
            "DstPackets": 3,
            "NetworkBytes": 1900,
            "NetworkPackets": 8,
            "SrcVlanId": "12",
            "NetworkSessionId": c.session_id(42),
            "NetworkConnectionHistory": "ShADF",
            "TcpFlagsSyn": true,
            "TcpFlagsAck": true,
            "TcpFlagsFin": true,
            "TcpFlagsRst": false,
            "TcpFlagsPsh": true,
            "TcpFlagsUrg": false,
            "AdditionalFields": {
                "CommunityId": String::from_utf8(cid.to_vec()).unwrap(),
                "ConnState": "SF",
                "EndReason": "fin",
                "SrcTcpFlags": "FSPA",
                "DstTcpFlags": "SA",
            },
        });
        let mut expect = expect.as_object().unwrap().clone();
        expect.extend(rest.as_object().unwrap().clone());
        assert_eq!(o, expect);
        assert!(c.session_id(42).ends_with("-42") && c.session_id(42).len() == 16 + 3);
    }

    #[test]
    fn short_texts_match_their_sources() {
        for r in [EventResult::Success, EventResult::Failure, EventResult::NA] {
            assert_eq!(result_text(r).as_bytes(), r.as_str().as_bytes());
        }
        use ConnState::*;
        for c in [S0, S1, SF, REJ, S2, S3, RSTO, RSTR, RSTOS0, RSTRH, SH, SHR, OTH] {
            assert_eq!(conn_state_text(c).as_bytes(), c.as_str().as_bytes());
        }
        use EndReason::*;
        for e in [Fin, Rst, IdleTimeout, ActiveTimeout, Evicted, Shutdown] {
            assert_eq!(end_reason_text(e).as_bytes(), e.as_str().as_bytes());
        }
        for p in 0..=255u8 {
            let want = protocol_name(p).map_or_else(|| p.to_string(), str::to_string);
            assert_eq!(PROTOCOL_TEXT[usize::from(p)].as_bytes(), want.as_bytes());
        }
        for flags in 0..=255u8 {
            let want: Vec<u8> = (0..8).filter(|bit| flags & (1 << bit) != 0).map(|bit| b"FSRPAUEC"[bit]).collect();
            assert_eq!(TCP_FLAG_LETTERS[usize::from(flags)].as_bytes(), &want[..]);
        }
        let home = ctx().home_net;
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let x: IpAddr = "203.0.113.9".parse().unwrap();
        for (s, d) in [(a, b), (a, x), (x, a), (x, x)] {
            assert_eq!(direction_text(s, d, &home).as_bytes(), direction(s, d, &home).as_bytes());
        }
    }

    #[test]
    fn times_match_timestamp_rfc3339() {
        for ns in [0i64, -1, 951_782_400_000_000_999, 1_700_000_000_123_456_789, 4_102_444_800_000_000_000] {
            let mut out = Vec::new();
            text::write_time(Timestamp(ns), &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), format!("\"{}\"", Timestamp(ns).rfc3339()));
        }
    }

    #[test]
    fn ipv6_record_and_directions() {
        let mut r = tcp_record();
        r.src = "2001:db8:2::5".parse().unwrap();
        r.dst = "2001:db8:1::1".parse().unwrap();
        r.vlan = None;
        r.segment = 3;
        let (_, o) = render(&r, &ctx());
        assert_eq!(o["NetworkProtocolVersion"], "IPv6");
        assert_eq!(o["SrcIpAddr"], "2001:db8:2::5");
        assert_eq!(o["NetworkDirection"], "Inbound");
        assert_eq!(o["AdditionalFields"]["Segment"], 3);
        assert!(!o.contains_key("SrcVlanId"));
        let home = ctx().home_net;
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let x: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(direction(a, b, &home), "Local");
        assert_eq!(direction(x, x, &home), "External");
    }

    #[test]
    fn icmp_record_has_no_ports_but_type_and_code() {
        let mut r = tcp_record();
        r.protocol = proto::ICMP;
        r.sport = None;
        r.dport = None;
        r.icmp_type = Some(8);
        r.icmp_code = Some(0);
        r.result = EventResult::Failure;
        r.conn_state = ConnState::OTH;
        r.icmp_errors = 2;
        r.last_icmp_error = Some((3, 1));
        r.history = History::default();
        let (_, o) = render(&r, &ctx());
        assert!(!o.contains_key("SrcPortNumber") && !o.contains_key("DstPortNumber"));
        assert!(!o.contains_key("TcpFlagsSyn") && !o.contains_key("NetworkConnectionHistory"));
        assert_eq!(o["NetworkProtocol"], "ICMP");
        assert_eq!(o["NetworkIcmpType"], "Echo");
        assert_eq!(o["NetworkIcmpCode"], 0);
        assert_eq!(o["EventResult"], "Failure");
        assert_eq!(o["EventResultDetails"], "Routing issue");
        let extra = o["AdditionalFields"].as_object().unwrap();
        assert_eq!(extra["IcmpErrors"], 2);
        assert_eq!((extra["LastIcmpErrorType"].clone(), extra["LastIcmpErrorCode"].clone()), (3.into(), 1.into()));
        assert!(!extra.contains_key("SrcTcpFlags"));
        r.protocol = 47;
        r.icmp_type = None;
        let (_, o) = render(&r, &ctx());
        assert_eq!(o["NetworkProtocol"], "GRE");
        assert!(!o.contains_key("NetworkIcmpType"));
        r.protocol = 253;
        assert_eq!(render(&r, &ctx()).1["NetworkProtocol"], "253");
        r.protocol = proto::ICMPV6;
        r.src = "2001:db8::1".parse().unwrap();
        r.dst = "2001:db8::2".parse().unwrap();
        r.icmp_type = Some(128);
        let (_, o) = render(&r, &ctx());
        assert_eq!(
            (o["NetworkProtocol"].as_str(), o["NetworkIcmpType"].as_str()),
            (Some("IPv6-ICMP"), Some("Echo Request"))
        );
    }

    #[test]
    fn failed_sessions_carry_asim_result_details() {
        let mut r = tcp_record();
        r.result = EventResult::Failure;
        for (state, detail) in [
            (ConnState::REJ, "Reset"),
            (ConnState::RSTOS0, "Reset"),
            (ConnState::S0, "Timeout"),
            (ConnState::SH, "Timeout"),
        ] {
            r.conn_state = state;
            assert_eq!(render(&r, &ctx()).1["EventResultDetails"], detail, "{state:?}");
        }
        r.protocol = proto::UDP;
        r.conn_state = ConnState::OTH;
        assert_eq!(result_details(&r), Some("Timeout"));
        r.last_icmp_error = Some((3, 3));
        assert_eq!(result_details(&r), Some("Reset"));
        r.last_icmp_error = Some((11, 0));
        assert_eq!(result_details(&r), Some("Routing issue"));
        r.last_icmp_error = Some((12, 0));
        assert_eq!(result_details(&r), Some("Unknown"));
        r.src = "2001:db8::1".parse().unwrap();
        r.last_icmp_error = Some((1, 4));
        assert_eq!(result_details(&r), Some("Reset"));
        r.last_icmp_error = Some((3, 0));
        assert_eq!(result_details(&r), Some("Routing issue"));
        r.result = EventResult::NA;
        assert_eq!(result_details(&r), None);
        r.result = EventResult::Success;
        assert!(!render(&r, &ctx()).1.contains_key("EventResultDetails"));
    }

    #[test]
    fn device_fields_follow_the_sensor_name() {
        let (_, o) = render(&tcp_record(), &ctx());
        assert_eq!((o["Dvc"].as_str(), o["DvcHostname"].as_str()), (Some("sensor-1"), Some("sensor-1")));
        assert!(!o.contains_key("DvcFQDN"));
        assert_eq!(dvc_hostname("span1.corp.example"), ("span1".to_string(), Some("span1.corp.example")));
        assert_eq!(dvc_hostname("tap 3_b"), ("tap-3-b".to_string(), None));
        assert_eq!(dvc_hostname("10.0.0.5"), ("10-0-0-5".to_string(), None));
        assert_eq!(dvc_hostname(""), ("flowsentry".to_string(), None));
        assert_eq!(dvc_hostname(&"x".repeat(80)).0.len(), 61);
        let weird = Device { name: "a\"b\\c\nd\u{1}é".into(), ip: None, interface: None };
        let c = RecordContext::new(weird, NetSet::default(), 0, None);
        let (_, o) = render(&tcp_record(), &c);
        assert_eq!(o["Dvc"], "a\"b\\c\nd\u{1}é");
        assert_eq!(o["DvcHostname"], "a-b-c-d--");
        assert!(!o.contains_key("DvcIpAddr") && !o.contains_key("DvcInterface"));
        assert_eq!(o["NetworkDirection"], "External");
        let fq = Device { name: "span1.corp.example".into(), ip: None, interface: None };
        let (_, o) = render(&tcp_record(), &RecordContext::new(fq, NetSet::default(), 0, None));
        assert_eq!((o["DvcHostname"].as_str(), o["DvcFQDN"].as_str()), (Some("span1"), Some("span1.corp.example")));
    }

    #[test]
    fn the_longest_records_fit_the_room_reserved_for_one() {
        let mut r = tcp_record();
        (r.id, r.segment, r.icmp_errors, r.last_icmp_error) = (u64::MAX, u32::MAX, u32::MAX, Some((255, 255)));
        (r.src_bytes, r.dst_bytes, r.src_packets, r.dst_packets) = (u64::MAX / 2, u64::MAX / 2, u64::MAX / 2, 1);
        (r.start, r.end, r.vlan) = (Timestamp(i64::MIN / 2), Timestamp(i64::MAX / 2), Some(u16::MAX));
        (r.result, r.conn_state, r.src_tcp_flags, r.dst_tcp_flags) = (EventResult::Failure, ConnState::S0, 0xff, 0xff);
        r.src = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe".parse().unwrap();
        r.dst = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap();
        for i in 0..40 {
            r.history.tcp([0x02, 0x12, 0x10, 0x18, 0x04, 0x01][i % 6], (i % 2) as u32 * 10, i % 3 == 0);
        }
        let mut icmp = r.clone();
        (icmp.protocol, icmp.sport, icmp.dport, icmp.icmp_type, icmp.icmp_code) =
            (proto::ICMPV6, None, None, Some(200), Some(255));
        let ctx = ctx();
        for rec in [&r, &icmp] {
            let (text, _) = render(rec, &ctx);
            // Over 1.2 KiB (1.4 with the device fields): keep 256 bytes of margin.
            assert!(text.len() > 1200, "{} bytes: not the longest record", text.len());
            assert!(text.len() - ctx.fixed_json.len() + 256 < RECORD_ROOM, "{} bytes: {text}", text.len());
        }
    }

    #[test]
    fn a_reused_writer_writes_what_one_off_writers_write() {
        let ctx = ctx();
        let (mut writer, mut buf, mut one_off) = (RecordWriter::default(), RecordBuffer::default(), Vec::new());
        let mut r = tcp_record();
        for i in 0..5_000i64 {
            // Times within a second, across seconds and days, and back.
            r.start = Timestamp(1_700_000_000_000_000_000 + (i * 7_919_777_777) % 200_000_000_000 - i * 1_000);
            r.end = Timestamp(r.start.0 + i * 333_333);
            r.id = i as u64;
            r.src_bytes = (i * i) as u64;
            writer.write(&r, &ctx, &mut buf);
            write_record(&r, &ctx, &mut one_off);
        }
        assert_eq!(buf.lines(), 5_000);
        assert_eq!(buf.as_bytes(), &one_off[..]);
        buf.clear();
        assert!(buf.is_empty() && buf.lines() == 0);
    }

    #[test]
    fn community_id_seed_and_session_ids_come_from_the_context() {
        let r = tcp_record();
        let seeded = RecordContext::new(device(), NetSet::default(), 7, None);
        let (a, b) = (render(&r, &ctx()).1, render(&r, &seeded).1);
        assert_ne!(a["AdditionalFields"]["CommunityId"], b["AdditionalFields"]["CommunityId"]);
        let mut other = RecordContext::new(Device { name: "sensor-2".into(), ..device() }, NetSet::default(), 0, None);
        assert_ne!(render(&r, &other).1["NetworkSessionId"], a["NetworkSessionId"]);
        let first = FlowEvent::Start(crate::flow::SessionStart {
            id: 1,
            ts: r.start,
            src: r.src,
            dst: r.dst,
            sport: r.sport,
            dport: r.dport,
            protocol: r.protocol,
            segment: 0,
            first: r.first,
        });
        let before = other.run_prefix().to_string();
        other.observe(&[first]);
        assert_ne!(other.run_prefix(), before);
        let mut buf = Vec::new();
        other.write_session_id(9, &mut buf);
        assert_eq!(buf, other.session_id(9).as_bytes());
        assert_eq!(render(&r, &other).1["NetworkSessionId"], other.session_id(42));
    }
}
