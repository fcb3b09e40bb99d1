//! ASIM NetworkSession (schema 0.2.6) JSON records, formatted straight into a byte
//! buffer (no intermediate JSON tree, no allocation per record).
//!
//! Conventions:
//! - Bytes are IP-layer bytes: IP header + payload as given by the IP length fields
//!   (IPv4 total length, IPv6 40 + payload length); the link layer (Ethernet, VLAN tags,
//!   FCS) is excluded. `SrcBytes`/`SrcPackets` are initiator → responder.
//! - `TimeGenerated` = `EventStartTime`; times are RFC 3339 UTC with microseconds.
//!   `NetworkDuration` is whole milliseconds (floored).
//! - Port fields are omitted for protocols without ports (ICMP, others) so Kusto sees
//!   null; `NetworkIcmpType` (text, per RFC 2780/4443) and `NetworkIcmpCode` appear only
//!   for ICMP sessions; `SrcVlanId` only when tagged.
//! - Custom fields: `NetworkSessionId`, `FlowsentryConnState` (Zeek conn_state),
//!   `FlowsentryEndReason`, `FlowsentrySegment` (when > 0, active-timeout continuation),
//!   `SrcTcpFlags`/`DstTcpFlags` (TCP only; OR of flags sent, letters `FSRPAUEC` in bit
//!   order, e.g. `SA` for SYN+ACK), and `FlowsentryIcmpErrors` with
//!   `FlowsentryLastIcmpErrorType`/`Code` when ICMP errors quoted the session.

use crate::decode::proto;
use crate::flow::FlowRecord;
use crate::net::NetSet;
use crate::time::{civil_from_days, Timestamp, NANOS_PER_SEC};
use std::io::Write;
use std::net::IpAddr;

/// What a record needs beyond the flow itself.
#[derive(Clone, Debug)]
pub struct RecordContext {
    /// `Dvc`: the sensor's name (hostname by default).
    pub dvc: String,
    /// Drives `NetworkDirection`.
    pub home_net: NetSet,
}

/// Appends one record as a JSON object followed by `\n`.
pub fn write_record(rec: &FlowRecord, ctx: &RecordContext, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"TimeGenerated\":");
    write_time(rec.start, out);
    out.extend_from_slice(b",\"EventStartTime\":");
    write_time(rec.start, out);
    out.extend_from_slice(b",\"EventEndTime\":");
    write_time(rec.end, out);
    out.extend_from_slice(b",\"EventCount\":1,\"EventType\":\"NetworkSession\",\"EventResult\":\"");
    out.extend_from_slice(rec.result.as_str().as_bytes());
    out.extend_from_slice(
        b"\",\"EventSchema\":\"NetworkSession\",\"EventSchemaVersion\":\"0.2.6\",\
          \"EventProduct\":\"flowsentry\",\"EventVendor\":\"flowsentry\",\"Dvc\":",
    );
    write_json_string(&ctx.dvc, out);
    out.extend_from_slice(b",\"NetworkProtocol\":\"");
    match protocol_name(rec.protocol) {
        Some(name) => out.extend_from_slice(name.as_bytes()),
        None => {
            let _ = write!(out, "{}", rec.protocol);
        }
    }
    out.extend_from_slice(b"\",\"NetworkProtocolVersion\":\"");
    out.extend_from_slice(if rec.src.is_ipv4() { b"IPv4" } else { b"IPv6" });
    out.extend_from_slice(b"\",\"NetworkDirection\":\"");
    out.extend_from_slice(direction(rec.src, rec.dst, &ctx.home_net).as_bytes());
    out.extend_from_slice(b"\",\"NetworkDuration\":");
    push_i64(out, rec.end.since(rec.start).0 / 1_000_000);
    out.extend_from_slice(b",\"SrcIpAddr\":\"");
    push_ip(out, rec.src);
    out.push(b'"');
    if let Some(p) = rec.sport {
        out.extend_from_slice(b",\"SrcPortNumber\":");
        push_u64(out, p.into());
    }
    out.extend_from_slice(b",\"DstIpAddr\":\"");
    push_ip(out, rec.dst);
    out.push(b'"');
    if let Some(p) = rec.dport {
        out.extend_from_slice(b",\"DstPortNumber\":");
        push_u64(out, p.into());
    }
    for (name, value) in [
        (&b",\"SrcBytes\":"[..], rec.src_bytes),
        (b",\"DstBytes\":", rec.dst_bytes),
        (b",\"SrcPackets\":", rec.src_packets),
        (b",\"DstPackets\":", rec.dst_packets),
        (b",\"NetworkBytes\":", rec.src_bytes + rec.dst_bytes),
        (b",\"NetworkPackets\":", rec.src_packets + rec.dst_packets),
    ] {
        out.extend_from_slice(name);
        push_u64(out, value);
    }
    let is_icmp = rec.protocol == proto::ICMP || rec.protocol == proto::ICMPV6;
    if let (true, Some(t)) = (is_icmp, rec.icmp_type) {
        out.extend_from_slice(b",\"NetworkIcmpType\":\"");
        match icmp_type_name(rec.protocol == proto::ICMPV6, t) {
            Some(name) => out.extend_from_slice(name.as_bytes()),
            None => {
                let _ = write!(out, "{t}");
            }
        }
        let _ = write!(out, "\",\"NetworkIcmpCode\":{}", rec.icmp_code.unwrap_or(0));
    }
    if let Some(v) = rec.vlan {
        let _ = write!(out, ",\"SrcVlanId\":\"{v}\"");
    }
    out.extend_from_slice(b",\"NetworkSessionId\":\"");
    push_u64(out, rec.id);
    out.extend_from_slice(b"\",\"FlowsentryConnState\":\"");
    out.extend_from_slice(rec.conn_state.as_str().as_bytes());
    out.extend_from_slice(b"\",\"FlowsentryEndReason\":\"");
    out.extend_from_slice(rec.end_reason.as_str().as_bytes());
    out.push(b'"');
    if rec.segment > 0 {
        let _ = write!(out, ",\"FlowsentrySegment\":{}", rec.segment);
    }
    if rec.protocol == proto::TCP && rec.sport.is_some() {
        out.extend_from_slice(b",\"SrcTcpFlags\":\"");
        write_tcp_flags(rec.src_tcp_flags, out);
        out.extend_from_slice(b"\",\"DstTcpFlags\":\"");
        write_tcp_flags(rec.dst_tcp_flags, out);
        out.push(b'"');
    }
    if rec.icmp_errors > 0 {
        let _ = write!(out, ",\"FlowsentryIcmpErrors\":{}", rec.icmp_errors);
        if let Some((t, c)) = rec.last_icmp_error {
            let _ = write!(out, ",\"FlowsentryLastIcmpErrorType\":{t},\"FlowsentryLastIcmpErrorCode\":{c}");
        }
    }
    out.extend_from_slice(b"}\n");
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

/// IANA keyword for common protocol numbers (ICMPv6 as ASIM spells it).
pub fn protocol_name(protocol: u8) -> Option<&'static str> {
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
        proto::ICMPV6 => "ICMPv6",
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

/// TCP flag letters in bit order (FIN first), e.g. `SA` for SYN+ACK.
fn write_tcp_flags(flags: u8, out: &mut Vec<u8>) {
    for (bit, letter) in b"FSRPAUEC".iter().enumerate() {
        if flags & (1 << bit) != 0 {
            out.push(*letter);
        }
    }
}

/// Quoted RFC 3339 UTC time with microseconds (same text as [`Timestamp::rfc3339`]).
fn write_time(ts: Timestamp, out: &mut Vec<u8>) {
    let secs = ts.floor_secs();
    let micros = ts.0.rem_euclid(NANOS_PER_SEC) / 1000;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    if !(0..=9999).contains(&y) {
        // Outside what four digits hold: the general (slow) path.
        let mut general = String::with_capacity(32);
        ts.write_rfc3339(&mut general);
        out.push(b'"');
        out.extend_from_slice(general.as_bytes());
        out.push(b'"');
        return;
    }
    let mut text = *b"\"0000-00-00T00:00:00.000000Z\"";
    put_digits(&mut text[1..5], y as u64);
    put_digits(&mut text[6..8], m as u64);
    put_digits(&mut text[9..11], d as u64);
    put_digits(&mut text[12..14], (sod / 3600) as u64);
    put_digits(&mut text[15..17], ((sod / 60) % 60) as u64);
    put_digits(&mut text[18..20], (sod % 60) as u64);
    put_digits(&mut text[21..27], micros as u64);
    out.extend_from_slice(&text);
}

/// Writes `v` as zero-padded decimal filling `dst` (the caller ensures it fits).
fn put_digits(dst: &mut [u8], mut v: u64) {
    for slot in dst.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Decimal text of `v` without `core::fmt` (the record writer's hot path).
fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[at..]);
}

fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

/// An address's text (IPv4 by hand; IPv6 through its `Display`, which compresses zeros).
fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => {
            for (i, octet) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                push_u64(out, octet.into());
            }
        }
        IpAddr::V6(a) => {
            let _ = write!(out, "{a}");
        }
    }
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
    use crate::flow::{ConnState, EndReason, EventResult, FirstPacket};
    use serde_json::Value;

    fn ctx() -> RecordContext {
        RecordContext { dvc: "sensor-1".into(), home_net: NetSet::parse_list("192.0.2.0/24,2001:db8:1::/48").unwrap() }
    }

    fn tcp_record() -> FlowRecord {
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
        }
    }

    fn render(rec: &FlowRecord, ctx: &RecordContext) -> (String, serde_json::Map<String, Value>) {
        let mut out = Vec::new();
        write_record(rec, ctx, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("}\n") && text.matches('\n').count() == 1);
        let v: Value = serde_json::from_str(&text).unwrap();
        (text, v.as_object().unwrap().clone())
    }

    #[test]
    fn tcp_record_has_every_field_in_order() {
        let (text, o) = render(&tcp_record(), &ctx());
        let expect = serde_json::json!({
            "TimeGenerated": "2023-11-14T22:13:20.123456Z",
            "EventStartTime": "2023-11-14T22:13:20.123456Z",
            "EventEndTime": "2023-11-14T22:13:22.500999Z",
            "EventCount": 1,
            "EventType": "NetworkSession",
            "EventResult": "Success",
            "EventSchema": "NetworkSession",
            "EventSchemaVersion": "0.2.6",
            "EventProduct": "flowsentry",
            "EventVendor": "flowsentry",
            "Dvc": "sensor-1",
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
            "NetworkSessionId": "42",
            "FlowsentryConnState": "SF",
            "FlowsentryEndReason": "fin",
            "SrcTcpFlags": "FSPA",
            "DstTcpFlags": "SA",
        });
        assert_eq!(Value::Object(o.clone()), expect);
        // Field order is fixed: every key appears in the text in exactly this order.
        let order = [
            "TimeGenerated",
            "EventStartTime",
            "EventEndTime",
            "EventCount",
            "EventType",
            "EventResult",
            "EventSchema",
            "EventSchemaVersion",
            "EventProduct",
            "EventVendor",
            "Dvc",
            "NetworkProtocol",
            "NetworkProtocolVersion",
            "NetworkDirection",
            "NetworkDuration",
            "SrcIpAddr",
            "SrcPortNumber",
            "DstIpAddr",
            "DstPortNumber",
            "SrcBytes",
            "DstBytes",
            "SrcPackets",
            "DstPackets",
            "NetworkBytes",
            "NetworkPackets",
            "SrcVlanId",
            "NetworkSessionId",
            "FlowsentryConnState",
            "FlowsentryEndReason",
            "SrcTcpFlags",
            "DstTcpFlags",
        ];
        assert_eq!(order.len(), o.len());
        let positions: Vec<usize> = order.iter().map(|k| text.find(&format!("\"{k}\":")).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "fields out of order: {text}");
    }

    #[test]
    fn times_match_timestamp_rfc3339() {
        for ns in [0i64, -1, 951_782_400_000_000_999, 1_700_000_000_123_456_789, 4_102_444_800_000_000_000] {
            let mut out = Vec::new();
            write_time(Timestamp(ns), &mut out);
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
        assert_eq!(o["FlowsentrySegment"], 3);
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
        let (_, o) = render(&r, &ctx());
        assert!(!o.contains_key("SrcPortNumber") && !o.contains_key("DstPortNumber"));
        assert!(!o.contains_key("SrcTcpFlags"));
        assert_eq!(o["NetworkProtocol"], "ICMP");
        assert_eq!(o["NetworkIcmpType"], "Echo");
        assert_eq!(o["NetworkIcmpCode"], 0);
        assert_eq!(o["EventResult"], "Failure");
        assert_eq!(o["FlowsentryIcmpErrors"], 2);
        assert_eq!(
            (o["FlowsentryLastIcmpErrorType"].clone(), o["FlowsentryLastIcmpErrorCode"].clone()),
            (3.into(), 1.into())
        );
        r.protocol = 47;
        r.icmp_type = None;
        let (_, o) = render(&r, &ctx());
        assert_eq!(o["NetworkProtocol"], "GRE");
        assert!(!o.contains_key("NetworkIcmpType"));
        r.protocol = 253;
        assert_eq!(render(&r, &ctx()).1["NetworkProtocol"], "253");
    }

    #[test]
    fn dvc_is_escaped() {
        let c = RecordContext { dvc: "a\"b\\c\nd\u{1}é".into(), home_net: NetSet::default() };
        let (_, o) = render(&tcp_record(), &c);
        assert_eq!(o["Dvc"], "a\"b\\c\nd\u{1}é");
        assert_eq!(o["NetworkDirection"], "External");
    }
}

#[cfg(test)]
mod fast_format_tests {
    use super::*;

    #[test]
    fn hand_formatting_matches_display() {
        for v in [0u64, 7, 10, 99, 65_535, 1_000_000_007, u64::MAX] {
            let mut out = Vec::new();
            push_u64(&mut out, v);
            assert_eq!(out, v.to_string().as_bytes());
        }
        for v in [0i64, -1, -1_000, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            push_i64(&mut out, v);
            assert_eq!(out, v.to_string().as_bytes());
        }
        for ip in ["0.0.0.0", "192.0.2.1", "255.255.255.255", "10.0.100.9", "2001:db8::1", "::ffff:192.0.2.1"] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut out = Vec::new();
            push_ip(&mut out, ip);
            assert_eq!(out, ip.to_string().as_bytes());
        }
        // Epoch, leap day, end of a year, a negative time, a year past 9999.
        for ns in [0i64, 951_782_400_123_456_789, 1_704_067_199_999_999_999, -1_500_000, i64::MIN, i64::MAX] {
            let ts = Timestamp(ns);
            let mut out = Vec::new();
            write_time(ts, &mut out);
            assert_eq!(out, format!("\"{}\"", ts.rfc3339()).as_bytes(), "{ns}");
        }
    }
}
