//! Enhanced mode: flowsentry's own port-scan and beaconing detection, stronger than
//! the Sentinel rules (sliding windows instead of fixed bins, failure-weighted
//! Threshold Random Walk scoring, stealth/tool fingerprints, jitter-tolerant robust
//! beacon statistics). See README.md in this directory for what it catches and why.

mod beacon;
mod beats;
mod bounded;
pub mod budget;
mod config;
mod doorkeeper;
mod jitter;
mod probe;
mod robust;
mod scan;
mod small;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests_beacon;
#[cfg(test)]
mod tests_insession;
#[cfg(test)]
mod tests_jitter;
#[cfg(test)]
mod tests_scan;

pub use beacon::{score_series, BeaconDetector, BeaconScore, Pattern};
pub use budget::MemoryBudget;
pub use config::{Allowlist, EnhancedConfig};
pub use probe::{ProbeKind, Tool};
pub use scan::ScanDetector;

use super::{DetectConfig, Detector};

/// The enhanced detectors selected by `cfg.enhanced` (scan first, then beacon).
pub fn detectors(cfg: &DetectConfig) -> Vec<Box<dyn Detector>> {
    let mut out: Vec<Box<dyn Detector>> = Vec::new();
    if cfg.enhanced.scan_enabled {
        out.push(Box::new(ScanDetector::new(cfg)));
    }
    if cfg.enhanced.beacon_enabled {
        out.push(Box::new(BeaconDetector::new(cfg)));
    }
    out
}
