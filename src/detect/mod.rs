//! Detectors. They run on the detector thread, see every [`FlowEvent`] in order, and
//! take time only from those events (capture time). Two families run side by side:
//! [`sentinel`] reproduces the two Microsoft Sentinel ASIM rules exactly over our own
//! records; [`enhanced`] is flowsentry's own, stronger detection.

pub mod alert;
pub mod enhanced;
pub mod sentinel;

pub use alert::{Alert, AlertType, DetectionMode};

use crate::flow::FlowEvent;
use crate::net::NetSet;
use crate::time::{Duration, Timestamp};

/// Which detector families run (`--rules`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RuleSet {
    #[default]
    All,
    Sentinel,
    Enhanced,
}

impl RuleSet {
    pub fn sentinel(self) -> bool {
        matches!(self, RuleSet::All | RuleSet::Sentinel)
    }
    pub fn enhanced(self) -> bool {
        matches!(self, RuleSet::All | RuleSet::Enhanced)
    }
}

/// Settings every detector sees. Reloadable on SIGHUP.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectConfig {
    pub rules: RuleSet,
    pub home_net: NetSet,
    /// After an alert for a finding, the same finding is not alerted again for this long.
    pub suppression: Duration,
    pub enhanced: enhanced::EnhancedConfig,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            rules: RuleSet::All,
            home_net: NetSet::default_home(),
            suppression: Duration::from_secs(3600),
            enhanced: enhanced::EnhancedConfig::default(),
        }
    }
}

/// Memory a detector holds, for stats lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DetectorUsage {
    pub sources: u64,
    pub series: u64,
    pub evictions: u64,
}

/// One detector. Everything it knows comes through these calls, in capture-time order.
pub trait Detector: Send {
    /// A session began or ended, or an exchange inside an open session finished
    /// ([`FlowEvent::Exchange`]: not a record; detectors of records ignore it).
    fn on_event(&mut self, event: &FlowEvent, alerts: &mut Vec<Alert>);
    /// Capture time has reached `now` (called after each batch, and on quiet live links).
    fn on_time(&mut self, now: Timestamp, alerts: &mut Vec<Alert>);
    /// Input is over (end of replay or shutdown): evaluate every pending window.
    fn finish(&mut self, alerts: &mut Vec<Alert>);
    /// New settings from a SIGHUP reload; state is kept.
    fn reload(&mut self, cfg: &DetectConfig) {
        let _ = cfg;
    }
    fn usage(&self) -> DetectorUsage {
        DetectorUsage::default()
    }
}

/// All detectors selected by the config, run in a fixed order (so output is deterministic).
pub struct DetectorSet {
    detectors: Vec<Box<dyn Detector>>,
}

impl DetectorSet {
    pub fn new(cfg: &DetectConfig) -> Self {
        let mut detectors: Vec<Box<dyn Detector>> = Vec::new();
        if cfg.rules.sentinel() {
            detectors.extend(sentinel::detectors(cfg));
        }
        if cfg.rules.enhanced() {
            detectors.extend(enhanced::detectors(cfg));
        }
        DetectorSet { detectors }
    }
    pub fn on_event(&mut self, event: &FlowEvent, alerts: &mut Vec<Alert>) {
        for d in &mut self.detectors {
            d.on_event(event, alerts);
        }
    }
    pub fn on_time(&mut self, now: Timestamp, alerts: &mut Vec<Alert>) {
        for d in &mut self.detectors {
            d.on_time(now, alerts);
        }
    }
    pub fn finish(&mut self, alerts: &mut Vec<Alert>) {
        for d in &mut self.detectors {
            d.finish(alerts);
        }
    }
    pub fn reload(&mut self, cfg: &DetectConfig) {
        for d in &mut self.detectors {
            d.reload(cfg);
        }
    }
    pub fn usage(&self) -> DetectorUsage {
        self.detectors.iter().map(|d| d.usage()).fold(DetectorUsage::default(), |a, u| DetectorUsage {
            sources: a.sources + u.sources,
            series: a.series + u.series,
            evictions: a.evictions + u.evictions,
        })
    }
}
