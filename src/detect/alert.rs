//! The alert contract: one JSON line per finding, common fields first (what a SIEM maps
//! to an alert and its entities), then the detector's evidence.
//!
//! Every line carries a stable id (`AlertId`), an ASIM `EventSeverity`-style severity, the
//! MITRE tactics and techniques, the sensor (`Dvc`), the addresses and port an analyst
//! pivots on, and the `NetworkSessionId`s of a few of the sessions that raised it, so a
//! query goes from the alert to its records.

use crate::output::records::RecordContext;
use crate::time::Timestamp;
use serde_json::{Map, Value};
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
    /// `AlertId`: a UUID (RFC 9562 version 8) derived from the `NetworkSessionId` of the
    /// alert's first sampled session, the detector and the finding. `NetworkSessionId`s are
    /// unique across sensors and runs, so the ids are too, while a replay of the same
    /// capture gives the same ids.
    pub fn id(&self, ctx: &RecordContext) -> String {
        let mut h = Fnv128::new();
        h.write(b"flowsentry-alert\0");
        if let Some(first) = self.sessions.first() {
            h.write(session_id(ctx, *first).as_bytes());
        }
        for part in [self.mode.as_str(), self.alert_type.as_str(), &self.name] {
            h.write(b"\0");
            h.write(part.as_bytes());
        }
        h.write(&self.time.0.to_be_bytes());
        h.write(self.src.to_string().as_bytes());
        if let Some(d) = self.dst {
            h.write(d.to_string().as_bytes());
        }
        if let Some(p) = self.dport {
            h.write(&p.to_be_bytes());
        }
        uuid_v8(h.finish())
    }

    /// The alert as one JSON object (no trailing newline).
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
        m.insert("Dvc".into(), ctx.dvc.clone().into());
        m.insert("SrcIpAddr".into(), self.src.to_string().into());
        if let Some(d) = self.dst {
            m.insert("DstIpAddr".into(), d.to_string().into());
        }
        if let Some(p) = self.dport {
            m.insert("DstPortNumber".into(), p.into());
        }
        m.insert(
            "NetworkSessionIds".into(),
            Value::Array(self.sessions.iter().map(|id| Value::String(session_id(ctx, *id))).collect()),
        );
        for (k, v) in &self.evidence {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m).to_string()
    }
}

/// A session's `NetworkSessionId` as its record carries it.
// TODO(records): RecordContext::session_id once the record format lands.
fn session_id(_ctx: &RecordContext, id: u64) -> String {
    id.to_string()
}

/// FNV-1a, 128-bit (offset basis and prime from the FNV specification): a fixed,
/// dependency-free hash whose output never changes across builds or platforms.
struct Fnv128(u128);

impl Fnv128 {
    fn new() -> Self {
        Fnv128(0x6c62_272e_07bb_0142_62b8_2175_6295_c58d)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u128::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
        }
    }
    fn finish(&self) -> u128 {
        self.0
    }
}

/// 128 bits as an RFC 9562 version 8 (custom) UUID: version and variant bits set.
fn uuid_v8(bits: u128) -> String {
    let b = (bits & !(0xf_u128 << 76) & !(0x3_u128 << 62)) | (0x8_u128 << 76) | (0x2_u128 << 62);
    let h = format!("{b:032x}");
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::NetSet;

    fn ctx(dvc: &str) -> RecordContext {
        RecordContext { dvc: dvc.into(), home_net: NetSet::default_home() }
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
    fn fnv128_matches_the_specification_vectors() {
        // Empty input gives the offset basis; "a" and "foobar" are the FNV-1a 128-bit test
        // vectors of draft-eastlake-fnv (also checked with Python's big integers).
        assert_eq!(Fnv128::new().finish(), 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d);
        for (input, want) in [
            (&b"a"[..], 0xd228_cb69_6f1a_8caf_7891_2b70_4e4a_8964),
            (b"foobar", 0x343e_1662_793c_64bf_6f0d_3597_ba44_6f18),
        ] {
            let mut h = Fnv128::new();
            h.write(input);
            assert_eq!(h.finish(), want, "{input:?}");
        }
    }

    #[test]
    fn the_id_is_a_uuid_v8_fixed_for_the_same_alert_and_context() {
        let a = alert();
        let id = a.id(&ctx("span1"));
        assert_eq!(id.len(), 36);
        let groups: Vec<&str> = id.split('-').collect();
        assert_eq!(groups.iter().map(|g| g.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
        assert!(groups[2].starts_with('8'), "version 8: {id}");
        assert!(matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'), "RFC variant: {id}");
        assert_eq!(id, a.clone().id(&ctx("span1")));
    }

    #[test]
    fn the_id_changes_with_the_session_and_the_finding() {
        let a = alert();
        let base = a.id(&ctx("span1"));
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
    fn json_has_the_common_fields_first_then_the_evidence() {
        let mut a = alert();
        a.evidence.insert("Score".into(), 0.95.into());
        let v: Value = serde_json::from_str(&a.to_json(&ctx("span1"))).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "TimeGenerated",
                "AlertId",
                "AlertType",
                "DetectionMode",
                "AlertName",
                "Severity",
                "Tactics",
                "Techniques",
                "Dvc",
                "SrcIpAddr",
                "DstIpAddr",
                "DstPortNumber",
                "NetworkSessionIds",
                "Score"
            ]
        );
        assert_eq!(v["Severity"], "High");
        assert_eq!(v["Dvc"], "span1");
        assert_eq!(v["NetworkSessionIds"].as_array().unwrap().len(), 3);
        assert_eq!(v["NetworkSessionIds"][0], session_id(&ctx("span1"), 11));
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
