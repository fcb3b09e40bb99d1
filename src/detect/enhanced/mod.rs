//! Enhanced mode: flowsentry's own port-scan and beaconing detection.

use super::{DetectConfig, Detector};
use serde::Deserialize;

/// Tunables for the enhanced detectors (TOML section `[enhanced]`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnhancedConfig {
    /// Also score beacons whose destination is inside the home network.
    pub beacon_internal: bool,
}

impl Default for EnhancedConfig {
    fn default() -> Self {
        EnhancedConfig {
            beacon_internal: false,
        }
    }
}

pub fn detectors(cfg: &DetectConfig) -> Vec<Box<dyn Detector>> {
    let _ = cfg;
    Vec::new()
}
