//! Sentinel mode: the two Microsoft Sentinel ASIM NetworkSession rules, reproduced exactly
//! over flowsentry's own records.
//!
//! Sources of truth (Azure/Azure-Sentinel, `Solutions/Network Session Essentials/Analytic Rules/`):
//! - `PortScan.yaml`, "Port scan detected  (ASIM Network Session schema)", id
//!   1da9853f-3dea-4ea9-b7e5-26730da3d537, version 1.0.6 -> [`portscan`].
//! - `PossibleBeaconingActivity.yaml`, "Potential beaconing activity (ASIM Network Session
//!   schema)", id fcb9d75c-c3c1-4910-8697-f136bfef2363, version 1.1.3 -> [`beaconing`].
//!
//! `tests/reference/` holds the query provenance and an independent Python evaluator of
//! both queries that the integration tests use to check parity.
//!
//! A record's `TimeGenerated` is its session start, written with microsecond precision, so
//! both detectors first truncate timestamps to the microsecond ([`record_time`]): sort order
//! and bins then match what the KQL sees in our records.

pub mod beaconing;
mod ports;
pub mod portscan;

use super::{DetectConfig, Detector, EvictionCost, TableUsage, Tracks};
use crate::time::Timestamp;

/// One table of a Sentinel detector for its usage report: a table the rule cannot keep
/// costs detections when it overflows.
pub(crate) fn table_usage(
    detector: &'static str,
    table: &'static str,
    entries: u64,
    cap: Option<u64>,
    evictions: u64,
    setting: Option<&'static str>,
    tracks: Tracks,
) -> TableUsage {
    TableUsage { detector, table, entries, cap, evictions, setting, cost: EvictionCost::Detection, tracks, bytes: None }
}

/// Memory bounds for the sentinel detectors (config section `[sentinel]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SentinelLimits {
    /// Most sources the port-scan rule tracks within one 5-minute bin; sources beyond it
    /// are not tracked until the next bin (counted as evictions).
    pub portscan_max_sources: usize,
    /// Most records the beaconing rule buffers while hours wait for evaluation; further
    /// records are dropped (counted as evictions).
    pub beacon_max_rows: usize,
}

impl Default for SentinelLimits {
    fn default() -> Self {
        SentinelLimits { portscan_max_sources: 50_000, beacon_max_rows: 50_000 }
    }
}

impl SentinelLimits {
    pub fn validate(&self) -> Result<(), String> {
        for (key, v) in [("portscan_max_sources", self.portscan_max_sources), ("beacon_max_rows", self.beacon_max_rows)]
        {
            if v == 0 || v > 50_000_000 {
                return Err(format!("sentinel.{key} must be between 1 and 50000000, got {v}"));
            }
        }
        Ok(())
    }
}

/// The sentinel detectors with the configured memory bounds.
pub fn detectors(cfg: &DetectConfig) -> Vec<Box<dyn Detector>> {
    detectors_with(cfg, cfg.sentinel)
}

/// The sentinel detectors with explicit memory bounds.
pub fn detectors_with(cfg: &DetectConfig, limits: SentinelLimits) -> Vec<Box<dyn Detector>> {
    let _ = cfg; // the Sentinel rules have no tunables: they are reproduced as published
    vec![
        Box::new(portscan::SentinelPortScan::new(limits.portscan_max_sources)),
        Box::new(beaconing::SentinelBeaconing::new(limits.beacon_max_rows)),
    ]
}

/// A timestamp as the record's `TimeGenerated` carries it: floored to the microsecond.
pub fn record_time(ts: Timestamp) -> Timestamp {
    Timestamp(ts.0.div_euclid(1000) * 1000)
}
