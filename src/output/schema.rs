//! The one definition of what a flowsentry record holds: the `ASimNetworkSessionLogs`
//! columns it writes at top level (name + Kusto type) and the keys it writes inside the
//! `AdditionalFields` column (name + JSON type).
//!
//! [`crate::output::records`] writes exactly these keys, in [`COLUMNS`] order (its unit tests
//! hold it to that), and the deploy templates (the DCR stream declaration for
//! `Microsoft-ASimNetworkSessionLogs`) are generated from or checked against this module,
//! so the writer and the ingestion path cannot drift apart. Every column named here is a
//! column of Microsoft's native table (tests/data/asim/ASimNetworkSessionLogs.columns.tsv,
//! checked by tests/asim_conformance.rs); what the table has no column for goes into
//! `AdditionalFields`.

/// The Log Analytics table the records are ingested into, verbatim.
pub const TABLE: &str = "ASimNetworkSessionLogs";
/// The DCR input stream of that table.
pub const DCR_STREAM: &str = "Microsoft-ASimNetworkSessionLogs";
/// ASIM NetworkSession schema version the records follow (`EventSchemaVersion`).
pub const SCHEMA_VERSION: &str = "0.2.6";

/// Kusto column types used by the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KustoType {
    String,
    Int,
    Long,
    Real,
    Bool,
    DateTime,
    Dynamic,
}

impl KustoType {
    /// The type as the Azure Monitor table reference spells it (`string`, `int`, `long`,
    /// `real`, `bool`, `datetime`, `dynamic`).
    pub fn as_str(self) -> &'static str {
        match self {
            KustoType::String => "string",
            KustoType::Int => "int",
            KustoType::Long => "long",
            KustoType::Real => "real",
            KustoType::Bool => "bool",
            KustoType::DateTime => "datetime",
            KustoType::Dynamic => "dynamic",
        }
    }

    /// The type as a DCR `streamDeclarations` column spells it (`boolean` for `bool`).
    pub fn dcr_type(self) -> &'static str {
        match self {
            KustoType::Bool => "boolean",
            other => other.as_str(),
        }
    }

    /// The JSON type a value of this column is written as.
    pub fn json_type(self) -> JsonType {
        match self {
            KustoType::String | KustoType::DateTime => JsonType::String,
            KustoType::Int | KustoType::Long => JsonType::Integer,
            KustoType::Real => JsonType::Number,
            KustoType::Bool => JsonType::Bool,
            KustoType::Dynamic => JsonType::Object,
        }
    }
}

/// JSON value types in a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonType {
    String,
    /// A whole number (no fraction, no exponent).
    Integer,
    Number,
    Bool,
    Object,
}

/// A top-level key of the record: a column of `ASimNetworkSessionLogs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub kind: KustoType,
    /// Written in every record (`true`) or only when it applies (see `doc`).
    pub always: bool,
    /// What the value is, and when it is written if not always.
    pub doc: &'static str,
}

/// A key inside the `AdditionalFields` object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdditionalField {
    pub name: &'static str,
    pub json: JsonType,
    pub always: bool,
    pub doc: &'static str,
}

const fn col(name: &'static str, kind: KustoType, always: bool, doc: &'static str) -> Column {
    Column { name, kind, always, doc }
}

use KustoType as K;

/// Every column a record may carry, in the order the writer emits them.
pub const COLUMNS: &[Column] = &[
    col("TimeGenerated", K::DateTime, true, "session start (= EventStartTime), RFC 3339 UTC, microseconds"),
    col("EventStartTime", K::DateTime, true, "first packet of the session (or segment)"),
    col("EventEndTime", K::DateTime, true, "last packet of the session (or segment)"),
    col("EventCount", K::Int, true, "1"),
    col("EventType", K::String, true, "NetworkSession"),
    col("EventResult", K::String, true, "Success, Failure or NA (see the README)"),
    col(
        "EventResultDetails",
        K::String,
        false,
        "failed sessions only: Reset, Timeout, Routing issue or Unknown (ASIM values)",
    ),
    col("EventSeverity", K::String, true, "Informational (a passive sensor takes no action)"),
    col("EventSchemaVersion", K::String, true, "0.2.6"),
    col("EventProduct", K::String, true, "flowsentry"),
    col("EventProductVersion", K::String, true, "flowsentry's version"),
    col("EventVendor", K::String, true, "flowsentry"),
    col("Dvc", K::String, true, "sensor name (--sensor-name; default the host name)"),
    col("DvcHostname", K::String, true, "sensor name as an ASIM hostname (first label, [A-Za-z0-9-])"),
    col("DvcFQDN", K::String, false, "sensor name, when it is a fully qualified domain name"),
    col("DvcIpAddr", K::String, false, "--sensor-ip, else (live) the capture interface's address"),
    col("DvcInterface", K::String, false, "live: the capture interface"),
    col("NetworkProtocol", K::String, true, "IANA keyword (TCP, UDP, ICMP, IPv6-ICMP, ...) or the number"),
    col("NetworkProtocolVersion", K::String, true, "IPv4 or IPv6"),
    col("NetworkDirection", K::String, true, "Inbound, Outbound, Local or External (from --home-net)"),
    col("NetworkDuration", K::Int, true, "EventEndTime - EventStartTime, whole milliseconds"),
    col("SrcIpAddr", K::String, true, "initiator address"),
    col("SrcPortNumber", K::Int, false, "TCP, UDP, SCTP, UDP-Lite: initiator port"),
    col("DstIpAddr", K::String, true, "responder address"),
    col("DstPortNumber", K::Int, false, "TCP, UDP, SCTP, UDP-Lite: responder port"),
    col("SrcBytes", K::Long, true, "IP-layer bytes initiator -> responder"),
    col("DstBytes", K::Long, true, "IP-layer bytes responder -> initiator"),
    col("SrcPackets", K::Long, true, "packets initiator -> responder"),
    col("DstPackets", K::Long, true, "packets responder -> initiator"),
    col("NetworkBytes", K::Long, true, "SrcBytes + DstBytes"),
    col("NetworkPackets", K::Long, true, "SrcPackets + DstPackets"),
    col("NetworkIcmpType", K::String, false, "ICMP/ICMPv6: the initiator's first message type (RFC 2780/4443 name)"),
    col("NetworkIcmpCode", K::Int, false, "ICMP/ICMPv6: its code"),
    col("SrcVlanId", K::String, false, "802.1Q VLAN id, when tagged"),
    col("NetworkSessionId", K::String, true, "<run prefix>-<session number>, unique per workspace (see the README)"),
    col("NetworkConnectionHistory", K::String, false, "TCP/UDP: Zeek-style history (e.g. ShADadFf)"),
    col("TcpFlagsSyn", K::Bool, false, "TCP: SYN seen in either direction"),
    col("TcpFlagsAck", K::Bool, false, "TCP: ACK seen"),
    col("TcpFlagsFin", K::Bool, false, "TCP: FIN seen"),
    col("TcpFlagsRst", K::Bool, false, "TCP: RST seen"),
    col("TcpFlagsPsh", K::Bool, false, "TCP: PSH seen"),
    col("TcpFlagsUrg", K::Bool, false, "TCP: URG seen"),
    col("AdditionalFields", K::Dynamic, true, "object; keys in ADDITIONAL_FIELDS"),
];

const fn extra(name: &'static str, json: JsonType, always: bool, doc: &'static str) -> AdditionalField {
    AdditionalField { name, json, always, doc }
}

/// Every key of `AdditionalFields`, in the order the writer emits them.
pub const ADDITIONAL_FIELDS: &[AdditionalField] = &[
    extra("CommunityId", JsonType::String, true, "Community ID v1 of the flow (seed --community-id-seed)"),
    extra("ConnState", JsonType::String, true, "Zeek conn_state: S0 S1 SF REJ S2 S3 RSTO RSTR RSTOS0 RSTRH SH SHR OTH"),
    extra("EndReason", JsonType::String, true, "fin, rst, idle_timeout, active_timeout, evicted, shutdown"),
    extra("Segment", JsonType::Integer, false, "n-th active-timeout continuation of a long session (n > 0)"),
    extra("SrcTcpFlags", JsonType::String, false, "TCP: flags the initiator sent, letters FSRPAUEC"),
    extra("DstTcpFlags", JsonType::String, false, "TCP: flags the responder sent"),
    extra("IcmpErrors", JsonType::Integer, false, "ICMP errors that quoted this session (when > 0)"),
    extra("LastIcmpErrorType", JsonType::Integer, false, "type of the last of them"),
    extra("LastIcmpErrorCode", JsonType::Integer, false, "code of the last of them"),
];

/// `(name, type)` of every column as a DCR `streamDeclarations` entry for
/// [`DCR_STREAM`] spells it, in writing order.
pub fn dcr_stream_columns() -> impl Iterator<Item = (&'static str, &'static str)> {
    COLUMNS.iter().map(|c| (c.name, c.kind.dcr_type()))
}

/// The column called `name`, if the record has one.
pub fn column(name: &str) -> Option<&'static Column> {
    COLUMNS.iter().find(|c| c.name == name)
}

/// The `AdditionalFields` key called `name`, if the record has one.
pub fn additional_field(name: &str) -> Option<&'static AdditionalField> {
    ADDITIONAL_FIELDS.iter().find(|f| f.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_types_spelled_for_dcr() {
        for (i, c) in COLUMNS.iter().enumerate() {
            assert!(COLUMNS[..i].iter().all(|o| o.name != c.name), "duplicate {}", c.name);
        }
        for (i, f) in ADDITIONAL_FIELDS.iter().enumerate() {
            assert!(ADDITIONAL_FIELDS[..i].iter().all(|o| o.name != f.name), "duplicate {}", f.name);
        }
        assert_eq!(column("TcpFlagsSyn").unwrap().kind.dcr_type(), "boolean");
        assert_eq!(column("TimeGenerated").unwrap().kind.dcr_type(), "datetime");
        assert_eq!(column("AdditionalFields").unwrap().kind.json_type(), JsonType::Object);
        assert!(column("EventSchema").is_none(), "EventSchema is added by the parser, not a column");
        assert_eq!(additional_field("ConnState").unwrap().json, JsonType::String);
        assert_eq!(dcr_stream_columns().count(), COLUMNS.len());
        assert_eq!(dcr_stream_columns().last(), Some(("AdditionalFields", "dynamic")));
    }
}
