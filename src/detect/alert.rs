//! The alert contract: one JSON line per finding, common fields first (what a SIEM maps
//! to an alert and its entities), then the detector's evidence.
//!
//! Every line carries a stable id (`AlertId`), an ASIM `EventSeverity`-style severity, the
//! MITRE tactics and techniques, the sensor (`Dvc`), the addresses and port an analyst
//! pivots on, and the `NetworkSessionId`s of a few of the sessions that raised it, so a
//! query goes from the alert to its records.

use crate::output::records::RecordContext;
use crate::output::schema::{Column, KustoType};
use crate::time::Timestamp;
use serde_json::{Map, Value};
use sha1::{Digest, Sha1};
use std::fmt;
use std::net::IpAddr;

/// Most session ids an alert carries (`NetworkSessionIds`).
pub const SESSION_SAMPLE: usize = 10;

/// Appends `id` to a session sample unless it is full.
#[inline]
pub fn sample_session(sample: &mut Vec<u64>, id: u64) {
    if sample.len() < SESSION_SAMPLE {
        sample.push(id);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertType {
    PortScan,
    Beaconing,
}

impl AlertType {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertType::PortScan => "PortScan",
            AlertType::Beaconing => "Beaconing",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetectionMode {
    Sentinel,
    Enhanced,
}

impl DetectionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DetectionMode::Sentinel => "sentinel",
            DetectionMode::Enhanced => "enhanced",
        }
    }
}

/// Alert severity, with the values of ASIM `EventSeverity` and of Sentinel alert severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "Informational",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Severity {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub alert_type: AlertType,
    pub mode: DetectionMode,
    /// Capture time at which the alert was raised.
    pub time: Timestamp,
    pub name: String,
    pub severity: Severity,
    pub tactics: &'static [&'static str],
    pub techniques: &'static [&'static str],
    pub src: IpAddr,
    /// The one host the finding is about, when there is one (a beacon's server, the
    /// target of a vertical scan).
    pub dst: Option<IpAddr>,
    /// The one port the finding is about, when there is one (a beacon's port, the port
    /// of a horizontal sweep).
    pub dport: Option<u16>,
    /// Detector-specific evidence, written after the common fields in insertion order
    /// of the keys as given (sorted by serde_json's map).
    pub evidence: Map<String, Value>,
    /// The flow-table ids (`SessionStart::id` / `FlowRecord::id`) of at most
    /// [`SESSION_SAMPLE`] of the sessions that raised the alert, written as their
    /// `NetworkSessionId`s; never empty for an alert a detector raised.
    pub sessions: Vec<u64>,
}

impl Alert {
    /// `AlertId`: a name-based UUID (RFC 9562 version 5, SHA-1, in the namespace
    /// [`ALERT_ID_NAMESPACE`]) of the `NetworkSessionId` of the alert's first sampled
    /// session, the detector and the finding (mode, type, name, time, addresses, port).
    /// `NetworkSessionId`s carry the run's identity (sensor, capture, start), so alert ids
    /// are unique across sensors and runs, and a replay of the same capture gives the same
    /// ids.
    pub fn id(&self, ctx: &RecordContext) -> String {
        let first = self.sessions.first().map(|id| ctx.session_id(*id)).unwrap_or_default();
        let name = format!(
            "{first}|{}|{}|{}|{}|{}|{}|{}",
            self.mode.as_str(),
            self.alert_type.as_str(),
            self.name,
            self.time.rfc3339(),
            self.src,
            self.dst.map(|d| d.to_string()).unwrap_or_default(),
            self.dport.map(|p| p.to_string()).unwrap_or_default(),
        );
        uuid_v5(&ALERT_ID_NAMESPACE, name.as_bytes())
    }

    /// The alert as one JSON object (no trailing newline): the keys of [`ALERT_COLUMNS`].
    pub fn to_json(&self, ctx: &RecordContext) -> String {
        let strings = |v: &[&str]| Value::Array(v.iter().map(|s| Value::from(*s)).collect());
        let mut m = Map::new();
        m.insert("TimeGenerated".into(), Value::String(self.time.rfc3339()));
        m.insert("AlertId".into(), self.id(ctx).into());
        m.insert("AlertType".into(), self.alert_type.as_str().into());
        m.insert("DetectionMode".into(), self.mode.as_str().into());
        m.insert("AlertName".into(), self.name.clone().into());
        m.insert("Severity".into(), self.severity.as_str().into());
        m.insert("Tactics".into(), strings(self.tactics));
        m.insert("Techniques".into(), strings(self.techniques));
        m.insert("Dvc".into(), ctx.sensor_name().into());
        m.insert("SrcIpAddr".into(), self.src.to_string().into());
        if let Some(d) = self.dst {
            m.insert("DstIpAddr".into(), d.to_string().into());
        }
        if let Some(p) = self.dport {
            m.insert("DstPortNumber".into(), p.into());
        }
        m.insert(
            "NetworkSessionIds".into(),
            Value::Array(self.sessions.iter().map(|id| Value::String(ctx.session_id(*id))).collect()),
        );
        for (k, v) in &self.evidence {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m).to_string()
    }
}

/// The namespace of `AlertId`s: the version 5 UUID of the URL `urn:flowsentry:alert` in
/// RFC 9562's URL namespace (60f8ab06-d6bc-5170-81ad-5273bf3019dd).
pub const ALERT_ID_NAMESPACE: [u8; 16] =
    [0x60, 0xf8, 0xab, 0x06, 0xd6, 0xbc, 0x51, 0x70, 0x81, 0xad, 0x52, 0x73, 0xbf, 0x30, 0x19, 0xdd];

/// RFC 9562 name-based UUID, version 5 (SHA-1), as lowercase 8-4-4-4-12 text.
fn uuid_v5(namespace: &[u8; 16], name: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(namespace);
    h.update(name);
    let digest = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// The Log Analytics custom table flowsentry's alerts are ingested into.
pub const ALERT_TABLE: &str = "FlowsentryAlerts_CL";
/// The DCR input stream declared for the alert lines.
pub const ALERT_STREAM: &str = "Custom-FlowsentryAlerts";

const fn col(name: &'static str, kind: KustoType, always: bool, doc: &'static str) -> Column {
    Column { name, kind, always, doc }
}

use KustoType as K;

/// Every key an alert line may carry, with its Kusto type: the common fields in the order
/// they are written, then every detector's evidence. The alerts table
/// (`deploy/sentinel/flowsentry-dcr.json`) and its DCR stream are checked against this
/// list, and this list against the lines the binary writes (tests/sentinel_deploy.rs): a
/// new evidence key belongs here and in the template.
pub const ALERT_COLUMNS: &[Column] = &[
    col("TimeGenerated", K::DateTime, true, "capture time the alert was raised at"),
    col("AlertId", K::String, true, "UUID, unique across sensors and runs, stable for a replay"),
    col("AlertType", K::String, true, "PortScan or Beaconing"),
    col("DetectionMode", K::String, true, "sentinel or enhanced"),
    col("AlertName", K::String, true, "the Sentinel rule's name, or what enhanced mode found"),
    col("Severity", K::String, true, "Informational, Low, Medium or High"),
    col("Tactics", K::Dynamic, true, "MITRE ATT&CK tactics, as Sentinel names them"),
    col("Techniques", K::Dynamic, true, "MITRE ATT&CK technique ids"),
    col("Dvc", K::String, true, "the sensor (--sensor-name), as in the records"),
    col("SrcIpAddr", K::String, true, "the scanner or the beaconing host"),
    col("DstIpAddr", K::String, false, "a beacon's server; the one host a scan targets"),
    col("DstPortNumber", K::Int, false, "a beacon's port; the one port a sweep targets"),
    col("NetworkSessionIds", K::Dynamic, true, "up to 10 NetworkSessionIds of the sessions behind the alert"),
    // Sentinel mode: port scan and beaconing.
    col("WindowStart", K::DateTime, false, "sentinel: start of the rule's 5-minute or 1-hour bin"),
    col("AttemptedPortsCount", K::Long, false, "sentinel port scan: distinct ports when raised"),
    col("AttemptedPorts", K::Dynamic, false, "sentinel port scan: those ports, first seen first"),
    col("TotalEvents", K::Long, false, "sentinel beaconing: rows with a gap over 10 s"),
    col("MostFrequentTimeDeltaCount", K::Long, false, "sentinel beaconing: rows with the most frequent gap"),
    col("MostFrequentTimeDeltainSeconds", K::Long, false, "sentinel beaconing: that gap"),
    col("BeaconPercent", K::Real, false, "sentinel beaconing: its share, percent"),
    col("TotalSrcBytes", K::Long, false, "sentinel beaconing: SrcBytes over the counted rows"),
    col("TotalDstBytes", K::Long, false, "sentinel beaconing: DstBytes over the counted rows"),
    // Enhanced mode: port scans.
    col("ScanType", K::String, false, "enhanced scan: Vertical, Horizontal or Mixed"),
    col("ProbeType", K::String, false, "enhanced scan: SYN, Connect, FIN, NULL, XMAS, ACK, UDP, ICMP"),
    col("Tool", K::String, false, "enhanced scan: nmap, masscan or zmap, from header fingerprints"),
    col("TargetCount", K::Long, false, "enhanced scan: hosts probed"),
    col("TargetsSample", K::Dynamic, false, "enhanced scan: up to 20 of them"),
    col("PortCount", K::Long, false, "enhanced scan: ports probed"),
    col("PortsSample", K::Dynamic, false, "enhanced scan: up to 50 of them"),
    col("Attempts", K::Long, false, "enhanced scan: first contacts in the window"),
    col("Failures", K::Long, false, "enhanced scan: failed ones"),
    col("Pending", K::Long, false, "enhanced scan: unanswered so far"),
    col("FailureRatio", K::Real, false, "enhanced scan: failed / resolved"),
    col("WindowSeconds", K::Real, false, "enhanced scan: seconds from FirstSeen to the alert"),
    // Enhanced mode: port scans and beaconing.
    col("FirstSeen", K::DateTime, false, "enhanced: first probe, or first session of the series"),
    col("Score", K::Real, false, "enhanced: scan log-likelihood ratio, or beacon score 0..1"),
    // Enhanced mode: beaconing.
    col("TimingScore", K::Real, false, "enhanced beacon: regularity of the gaps, 0..1"),
    col("BytesScore", K::Real, false, "enhanced beacon: consistency of the sizes, 0..1"),
    col("Pattern", K::String, false, "enhanced beacon: Regular (robust gap statistics) or Jittered (heavy jitter)"),
    col("IntervalSeconds", K::Real, false, "enhanced beacon: median gap"),
    col("JitterSeconds", K::Real, false, "enhanced beacon: median absolute deviation of the gaps"),
    col("JitterPercent", K::Real, false, "enhanced beacon: jitter / interval, percent"),
    col("Skew", K::Real, false, "enhanced beacon: Bowley skew of the gaps"),
    col("Persistence", K::Real, false, "enhanced beacon: share of two-gap bins over the span with a check-in"),
    col("MaxGapRatio", K::Real, false, "enhanced beacon: longest gap over the mean gap"),
    col("GapCV", K::Real, false, "enhanced beacon: coefficient of variation of the gaps"),
    col("InSession", K::Bool, false, "enhanced beacon: the check-ins are exchanges inside sessions"),
    col("Exchanges", K::Long, false, "enhanced beacon in session: exchanges in the series"),
    col("Connections", K::Long, false, "enhanced beacon: sessions in the series (in session: distinct sessions)"),
    col("CollapsedBursts", K::Long, false, "enhanced beacon: sub-second repeats folded into one"),
    col("LastSeen", K::DateTime, false, "enhanced beacon: latest session"),
    col("MeanSrcBytes", K::Real, false, "enhanced beacon: mean SrcBytes"),
    col("MeanDstBytes", K::Real, false, "enhanced beacon: mean DstBytes"),
    col("Protocol", K::String, false, "enhanced beacon: TCP, UDP, ..."),
];

/// The alert column called `name`, if there is one.
pub fn alert_column(name: &str) -> Option<&'static Column> {
    ALERT_COLUMNS.iter().find(|c| c.name == name)
}

/// A minimal port-scan alert from 192.0.2.1, for tests that only move alerts around.
#[cfg(test)]
pub(crate) fn test_alert(mode: DetectionMode, time: Timestamp, name: &str) -> Alert {
    Alert {
        alert_type: AlertType::PortScan,
        mode,
        time,
        name: name.into(),
        severity: Severity::Low,
        tactics: &[],
        techniques: &[],
        src: "192.0.2.1".parse().expect("a literal address"),
        dst: None,
        dport: None,
        evidence: Map::new(),
        sessions: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::NetSet;
    use crate::output::records::Device;

    fn ctx(dvc: &str) -> RecordContext {
        RecordContext::new(Device { name: dvc.into(), ip: None, interface: None }, NetSet::default_home(), 0, None)
    }

    fn alert() -> Alert {
        Alert {
            alert_type: AlertType::Beaconing,
            mode: DetectionMode::Enhanced,
            time: Timestamp::from_secs(1_700_000_000),
            name: "Beaconing every 60s".into(),
            severity: Severity::High,
            tactics: &["CommandAndControl"],
            techniques: &["T1071", "T1571"],
            src: "192.0.2.7".parse().unwrap(),
            dst: Some("203.0.113.9".parse().unwrap()),
            dport: Some(443),
            evidence: Map::new(),
            sessions: vec![11, 12, 13],
        }
    }

    #[test]
    fn uuid_v5_matches_pythons_uuid_module() {
        // uuid.uuid5(uuid.NAMESPACE_URL, "urn:flowsentry:alert") and
        // uuid.uuid5(<that>, "example"), from Python's standard library.
        let url_namespace =
            [0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8];
        assert_eq!(uuid_v5(&url_namespace, b"urn:flowsentry:alert"), "60f8ab06-d6bc-5170-81ad-5273bf3019dd");
        assert_eq!(uuid_v5(&ALERT_ID_NAMESPACE, b"example"), "c18537aa-cc8e-50ce-9997-c7a6e10a717f");
    }

    #[test]
    fn the_id_is_fixed_for_the_same_alert_and_run() {
        let a = alert();
        let id = a.id(&ctx("span1"));
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "5", "version 5: {id}");
        assert_eq!(id, a.clone().id(&ctx("span1")));
    }

    #[test]
    fn the_id_changes_with_the_sensor_the_session_and_the_finding() {
        let a = alert();
        let base = a.id(&ctx("span1"));
        assert_ne!(a.id(&ctx("span2")), base, "another sensor's run");
        let mut b = a.clone();
        b.sessions[0] = 99;
        assert_ne!(b.id(&ctx("span1")), base);
        let mut c = a.clone();
        c.mode = DetectionMode::Sentinel;
        assert_ne!(c.id(&ctx("span1")), base);
        let mut d = a.clone();
        d.time = Timestamp::from_secs(1_700_000_001);
        assert_ne!(d.id(&ctx("span1")), base);
    }

    #[test]
    fn json_has_the_common_fields_in_column_order_then_the_evidence() {
        let mut a = alert();
        a.evidence.insert("Score".into(), 0.95.into());
        let c = ctx("span1");
        let v: Value = serde_json::from_str(&a.to_json(&c)).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        let common: Vec<&str> = ALERT_COLUMNS.iter().take(13).map(|c| c.name).collect();
        assert_eq!(keys[..13], common[..]);
        assert_eq!(keys[13..], ["Score"]);
        assert_eq!(v["Severity"], "High");
        assert_eq!(v["Dvc"], "span1");
        assert_eq!(v["NetworkSessionIds"], serde_json::json!([c.session_id(11), c.session_id(12), c.session_id(13)]));
        assert_eq!(v["AlertId"], a.id(&c));
    }

    #[test]
    fn alert_columns_are_unique_and_the_always_ones_are_always_written() {
        for (i, c) in ALERT_COLUMNS.iter().enumerate() {
            assert!(ALERT_COLUMNS[..i].iter().all(|o| o.name != c.name), "duplicate {}", c.name);
        }
        let mut a = alert();
        a.dst = None;
        a.dport = None;
        let v: Value = serde_json::from_str(&a.to_json(&ctx("s"))).unwrap();
        for c in ALERT_COLUMNS.iter().filter(|c| c.always) {
            assert!(v.get(c.name).is_some(), "{} missing", c.name);
        }
    }

    #[test]
    fn session_samples_are_bounded() {
        let mut v = Vec::new();
        for id in 0..100 {
            sample_session(&mut v, id);
        }
        assert_eq!(v, (0..SESSION_SAMPLE as u64).collect::<Vec<_>>());
    }

    #[test]
    fn severities_order_and_print_as_asim_values() {
        assert!(Severity::Informational < Severity::Low && Severity::Medium < Severity::High);
        assert_eq!(Severity::Medium.to_string(), "Medium");
        assert!(Severity::Low == "Low");
    }
}
