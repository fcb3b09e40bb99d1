//! Detectors. They run on the detector thread, see every [`FlowEvent`] in order, and
//! take time only from those events (capture time). Two families run side by side:
//! [`sentinel`] reproduces the two Microsoft Sentinel ASIM rules exactly over our own
//! records; [`enhanced`] is flowsentry's own, stronger detection.

pub mod alert;
pub mod enhanced;
pub mod sentinel;

pub use alert::{Alert, AlertType, DetectionMode, Severity};

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
    /// Table caps of the sentinel rules (the rules themselves have no tunables).
    pub sentinel: sentinel::SentinelLimits,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            rules: RuleSet::All,
            home_net: NetSet::default_home(),
            suppression: Duration::from_secs(3600),
            enhanced: enhanced::EnhancedConfig::default(),
            sentinel: sentinel::SentinelLimits::default(),
        }
    }
}

/// What an entry dropped from a full detector table costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvictionCost {
    /// Evidence was dropped: a finding could be missed.
    Detection,
    /// Only the memory of an alert already raised: the finding may be alerted again
    /// before its suppression ends.
    Suppression,
}

/// Which total of the stats line (`tracked_sources`, `tracked_series`) a table adds to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tracks {
    Sources,
    Series,
    /// Counted in neither total.
    Other,
}

/// One table a detector keeps: what it holds, its cap, and what the cap cost so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableUsage {
    /// The detector, e.g. "sentinel port scan".
    pub detector: &'static str,
    /// The table within it, e.g. "sources".
    pub table: &'static str,
    /// Entries held now.
    pub entries: u64,
    /// The most entries it may hold; None when it is bounded only through another table.
    pub cap: Option<u64>,
    /// Entries dropped or refused because the table was full, since the start.
    pub evictions: u64,
    /// The config key that raises `cap` (e.g. "enhanced.scan_max_sources").
    pub setting: Option<&'static str>,
    pub cost: EvictionCost,
    pub tracks: Tracks,
    /// Estimated bytes its entries hold (entries × the bytes per entry measured for the
    /// memory budget, `enhanced/budget.rs`); None for tables outside the budget.
    pub bytes: Option<u64>,
}

/// Memory the detectors hold, table by table (for stats lines and the exit summary).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DetectorUsage {
    pub tables: Vec<TableUsage>,
}

impl DetectorUsage {
    fn total(&self, tracks: Tracks) -> u64 {
        self.tables.iter().filter(|t| t.tracks == tracks).map(|t| t.entries).sum()
    }
    /// Sources held over all tables that track sources (`tracked_sources`).
    pub fn sources(&self) -> u64 {
        self.total(Tracks::Sources)
    }
    /// Series, rows and ports held (`tracked_series`).
    pub fn series(&self) -> u64 {
        self.total(Tracks::Series)
    }
    /// Evictions over all tables (`detector_evictions`).
    pub fn evictions(&self) -> u64 {
        self.tables.iter().map(|t| t.evictions).sum()
    }
    pub fn extend(&mut self, other: DetectorUsage) {
        self.tables.extend(other.tables);
    }
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
    /// A set of exactly these detectors, in this order (benchmarks of one rule).
    pub fn of(detectors: Vec<Box<dyn Detector>>) -> Self {
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
        let mut all = DetectorUsage::default();
        for d in &self.detectors {
            all.extend(d.usage());
        }
        all
    }
}
