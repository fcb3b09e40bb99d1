//! The alert contract: one JSON line per finding, common fields first, then the
//! detector's evidence.

use crate::time::Timestamp;
use serde_json::{Map, Value};
use std::net::IpAddr;

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

#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub alert_type: AlertType,
    pub mode: DetectionMode,
    /// Capture time at which the alert was raised.
    pub time: Timestamp,
    pub name: String,
    /// "Low", "Medium" or "High".
    pub severity: &'static str,
    pub tactics: &'static [&'static str],
    pub techniques: &'static [&'static str],
    pub src: IpAddr,
    pub dst: Option<IpAddr>,
    pub dport: Option<u16>,
    /// Detector-specific evidence, written after the common fields in insertion order
    /// of the keys as given (sorted by serde_json's map).
    pub evidence: Map<String, Value>,
    /// A small sample of the flow-table ids (`SessionStart::id` / `FlowRecord::id`) of the
    /// sessions that raised the alert, so an analyst can go from the alert to its records.
    /// Empty until the detectors fill it.
    pub sessions: Vec<u64>,
}

impl Alert {
    /// The alert as one JSON object (no trailing newline).
    pub fn to_json(&self) -> String {
        let mut m = Map::new();
        m.insert("TimeGenerated".into(), Value::String(self.time.rfc3339()));
        m.insert("AlertType".into(), self.alert_type.as_str().into());
        m.insert("DetectionMode".into(), self.mode.as_str().into());
        m.insert("AlertName".into(), self.name.clone().into());
        m.insert("Severity".into(), self.severity.into());
        m.insert("Tactics".into(), self.tactics.iter().map(|s| Value::from(*s)).collect::<Vec<_>>().into());
        m.insert("Techniques".into(), self.techniques.iter().map(|s| Value::from(*s)).collect::<Vec<_>>().into());
        m.insert("SrcIpAddr".into(), self.src.to_string().into());
        if let Some(d) = self.dst {
            m.insert("DstIpAddr".into(), d.to_string().into());
        }
        if let Some(p) = self.dport {
            m.insert("DstPortNumber".into(), p.into());
        }
        for (k, v) in &self.evidence {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m).to_string()
    }
}
