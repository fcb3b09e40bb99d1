//! Every tunable of the enhanced detectors, deserialized from the TOML section
//! `[enhanced]`. Defaults are chosen so that a plain install catches common scans and
//! C2 beacons without flagging busy clients, NAT gateways, resolvers or servers.

use super::budget::{self, ExplicitCaps, MemoryBudget};
use crate::net::{Cidr, NetSet};
use serde::Deserialize;
use std::net::IpAddr;

/// Tunables for the enhanced detectors (TOML section `[enhanced]`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnhancedConfig {
    /// Run the enhanced port-scan detector.
    pub scan_enabled: bool,
    /// Run the enhanced beaconing detector.
    pub beacon_enabled: bool,

    // ---- port scans ----
    /// Sliding window (seconds) over which a source's distinct targets are remembered.
    /// Not bin-aligned: a scan straddling any clock boundary is seen whole.
    pub scan_window_secs: u64,
    /// Fewest distinct failed targets (dst, port, protocol) before a source may alert.
    pub scan_min_failed_targets: u32,
    /// Threshold Random Walk: probability that a benign source's first contact succeeds (θ0).
    pub scan_trw_benign_success: f64,
    /// Threshold Random Walk: probability that a scanner's first contact succeeds (θ1).
    pub scan_trw_scanner_success: f64,
    /// Threshold Random Walk: likelihood ratio a source must reach to be called a
    /// scanner (η1 = P_D / P_F; 99 ≈ 99 % detection at 1 % false positives).
    pub scan_trw_threshold: f64,
    /// Fast path: distinct ports on ONE host probed with unanswered-yet SYN/UDP/stealth
    /// packets (no success on them) that raise an alert without waiting for timeouts.
    pub scan_fast_vertical_ports: u32,
    /// Most sources tracked at once; a full table evicts the least recently active,
    /// sources seen once before sources seen again (counted; see `bounded.rs`). Set by
    /// `memory_mib` unless given.
    pub scan_max_sources: usize,
    /// Most distinct targets remembered per source; further new targets are only counted.
    /// Set by `memory_mib` unless given.
    pub scan_max_targets_per_source: usize,
    /// Re-alert a suppressed source when its failed targets grow by this factor since its
    /// last alert (0 = never: one alert per finding per suppression period).
    pub scan_escalation_factor: u32,
    /// Destination ports whose attempts are ignored by the scan detector.
    pub scan_allow_ports: Vec<u16>,

    // ---- beaconing ----
    /// Also score beacons whose destination is inside the home network.
    pub beacon_internal: bool,
    /// Alert when a series' score (0..1) reaches this.
    pub beacon_threshold: f64,
    /// Fewest sessions (after burst collapsing) in a series before it is scored.
    pub beacon_min_connections: usize,
    /// The sessions must span at least this many median intervals.
    pub beacon_min_periods: f64,
    /// Sessions remembered per series (ring buffer; gaps = history - 1).
    pub beacon_history: usize,
    /// Sessions older than this (seconds) are forgotten, even if the ring is not full.
    pub beacon_horizon_secs: u64,
    /// Sessions starting less than this many seconds after the previous one in the same
    /// series are collapsed into it (a CDN burst is one event, not many).
    pub beacon_min_gap_secs: f64,
    /// Shortest median interval (seconds) considered a beacon.
    pub beacon_min_interval_secs: f64,
    /// Longest median interval (seconds) considered a beacon.
    pub beacon_max_interval_secs: f64,
    /// Relative jitter (MAD / median of gaps) at which the regularity score reaches 0;
    /// the score falls quadratically, so moderate jitter (Cobalt Strike 50 %) stays high.
    pub beacon_jitter_tolerance: f64,
    /// Most series tracked at once; a full table evicts the least recently touched,
    /// one-off series before repeated ones (counted; see `bounded.rs`). Set by
    /// `memory_mib` unless given.
    pub beacon_max_series: usize,
    /// Destination ports never scored for beaconing (default: NTP, which polls by design).
    pub beacon_allow_ports: Vec<u16>,
    /// Also score the exchanges inside sessions that stay open (check-ins over one TCP
    /// connection, HTTP keep-alive, one UDP 5-tuple), as a sibling series of each pair.
    /// The pause that separates exchanges is `[flow] exchange_gap`.
    pub beacon_in_session: bool,
    /// Fewest check-ins before a series may be scored on the heavy-jitter path
    /// (persistence, bounded gaps, consistent sizes) instead of gap regularity; 0 = off.
    pub beacon_jitter_min_connections: usize,

    // ---- allowlists (both detectors) ----
    /// Sources (CIDRs) never alerted: authorised vulnerability scanners, monitoring.
    pub allow_src: Vec<String>,
    /// Destinations (CIDRs) ignored: update servers, your own scanners' targets.
    pub allow_dst: Vec<String>,
    /// `"SRC_CIDR,DST_CIDR"` pairs ignored (e.g. a backup agent polling its server).
    pub allow_pairs: Vec<String>,

    // ---- memory ----
    /// Memory budget (MiB) of the tables above: sets `scan_max_sources`,
    /// `beacon_max_series` and `scan_max_targets_per_source` from measured bytes per
    /// entry (see `budget.rs`); caps given explicitly win.
    pub memory_mib: u64,
    /// Which caps were given explicitly (filled in by the config loader; not a key).
    #[serde(skip)]
    pub explicit_caps: ExplicitCaps,
}

impl Default for EnhancedConfig {
    fn default() -> Self {
        EnhancedConfig {
            scan_enabled: true,
            beacon_enabled: true,
            scan_window_secs: 600,
            scan_min_failed_targets: 15,
            scan_trw_benign_success: 0.8,
            scan_trw_scanner_success: 0.2,
            scan_trw_threshold: 99.0,
            scan_fast_vertical_ports: 50,
            scan_max_sources: 32_768,
            scan_max_targets_per_source: 1024,
            scan_escalation_factor: 0,
            scan_allow_ports: Vec::new(),
            beacon_internal: false,
            beacon_threshold: 0.8,
            beacon_min_connections: 8,
            beacon_min_periods: 4.0,
            beacon_history: 64,
            beacon_horizon_secs: 86_400,
            beacon_min_gap_secs: 1.0,
            beacon_min_interval_secs: 2.0,
            beacon_max_interval_secs: 7200.0,
            beacon_jitter_tolerance: 0.4,
            beacon_max_series: 32_768,
            beacon_allow_ports: vec![123],
            beacon_in_session: true,
            beacon_jitter_min_connections: 20,
            allow_src: Vec::new(),
            allow_dst: Vec::new(),
            allow_pairs: Vec::new(),
            memory_mib: budget::DEFAULT_MIB,
            explicit_caps: ExplicitCaps::default(),
        }
    }
}

impl EnhancedConfig {
    /// Fewest targets per source the thresholds need (a budget never sets fewer).
    fn min_targets(&self) -> usize {
        self.scan_fast_vertical_ports.max(self.scan_min_failed_targets) as usize
    }
    /// Sets the caps not given explicitly from `memory_mib`.
    pub fn apply_budget(&mut self) {
        let c = budget::caps_for(self.memory_mib, self.min_targets());
        let given = self.explicit_caps;
        if !given.scan_max_sources {
            self.scan_max_sources = c.scan_max_sources;
        }
        if !given.beacon_max_series {
            self.beacon_max_series = c.beacon_max_series;
        }
        if !given.scan_max_targets_per_source {
            self.scan_max_targets_per_source = c.scan_max_targets_per_source;
        }
    }
    /// The budget and the caps in force, each marked as given by the budget or not.
    pub fn budget(&self) -> MemoryBudget {
        let c = budget::caps_for(self.memory_mib, self.min_targets());
        let given = self.explicit_caps;
        let cap = |setting, value: usize, derived: usize, explicit: bool| budget::BudgetedCap {
            setting,
            value: value as u64,
            from_budget: !explicit && value == derived,
        };
        MemoryBudget {
            mib: self.memory_mib,
            caps: vec![
                cap("enhanced.scan_max_sources", self.scan_max_sources, c.scan_max_sources, given.scan_max_sources),
                cap("enhanced.beacon_max_series", self.beacon_max_series, c.beacon_max_series, given.beacon_max_series),
                cap(
                    "enhanced.scan_max_targets_per_source",
                    self.scan_max_targets_per_source,
                    c.scan_max_targets_per_source,
                    given.scan_max_targets_per_source,
                ),
            ],
        }
    }
    /// Checks every value; the error names the offending field and value.
    pub fn validate(&self) -> Result<(), String> {
        let prob = |name: &str, v: f64| {
            if v > 0.0 && v < 1.0 {
                Ok(())
            } else {
                Err(format!("enhanced.{name} = {v} must be strictly between 0 and 1"))
            }
        };
        prob("scan_trw_benign_success", self.scan_trw_benign_success)?;
        prob("scan_trw_scanner_success", self.scan_trw_scanner_success)?;
        if self.scan_trw_scanner_success >= self.scan_trw_benign_success {
            return Err("enhanced.scan_trw_scanner_success must be below scan_trw_benign_success".into());
        }
        if self.scan_trw_threshold <= 1.0 {
            return Err(format!("enhanced.scan_trw_threshold = {} must be above 1", self.scan_trw_threshold));
        }
        let positive = |name: &str, v: f64| {
            if v > 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(format!("enhanced.{name} = {v} must be a positive number"))
            }
        };
        positive("scan_window_secs", self.scan_window_secs as f64)?;
        positive("scan_min_failed_targets", self.scan_min_failed_targets as f64)?;
        positive("scan_fast_vertical_ports", self.scan_fast_vertical_ports as f64)?;
        positive("scan_max_sources", self.scan_max_sources as f64)?;
        positive("scan_max_targets_per_source", self.scan_max_targets_per_source as f64)?;
        positive("beacon_min_periods", self.beacon_min_periods)?;
        positive("beacon_horizon_secs", self.beacon_horizon_secs as f64)?;
        positive("beacon_min_interval_secs", self.beacon_min_interval_secs)?;
        positive("beacon_jitter_tolerance", self.beacon_jitter_tolerance)?;
        positive("beacon_max_series", self.beacon_max_series as f64)?;
        if !(1..=budget::MAX_MIB).contains(&self.memory_mib) {
            return Err(format!(
                "enhanced.memory_mib must be between 1 and {} (MiB), got {}",
                budget::MAX_MIB,
                self.memory_mib
            ));
        }
        if !(self.beacon_threshold > 0.0 && self.beacon_threshold <= 1.0) {
            return Err(format!("enhanced.beacon_threshold = {} must be in (0, 1]", self.beacon_threshold));
        }
        if self.beacon_min_connections < 3 {
            return Err(format!(
                "enhanced.beacon_min_connections = {} must be at least 3",
                self.beacon_min_connections
            ));
        }
        if self.beacon_history < self.beacon_min_connections {
            return Err(format!(
                "enhanced.beacon_history = {} must be at least beacon_min_connections = {}",
                self.beacon_history, self.beacon_min_connections
            ));
        }
        let jitter_min = self.beacon_jitter_min_connections;
        if jitter_min != 0 && !(self.beacon_min_connections..=self.beacon_history).contains(&jitter_min) {
            return Err(format!(
                "enhanced.beacon_jitter_min_connections = {jitter_min} must be 0 (off) or between \
                 beacon_min_connections = {} and beacon_history = {}",
                self.beacon_min_connections, self.beacon_history
            ));
        }
        if self.beacon_max_interval_secs <= self.beacon_min_interval_secs {
            return Err("enhanced.beacon_max_interval_secs must exceed beacon_min_interval_secs".into());
        }
        if self.beacon_min_gap_secs.is_nan() || self.beacon_min_gap_secs < 0.0 {
            return Err(format!("enhanced.beacon_min_gap_secs = {} must be >= 0", self.beacon_min_gap_secs));
        }
        Allowlist::new(self)?;
        Ok(())
    }
}

/// The compiled allowlists shared by both detectors.
#[derive(Clone, Debug, Default)]
pub struct Allowlist {
    src: NetSet,
    dst: NetSet,
    pairs: Vec<(Cidr, Cidr)>,
}

impl Allowlist {
    pub fn new(cfg: &EnhancedConfig) -> Result<Self, String> {
        let list = |name: &str, items: &[String]| {
            items
                .iter()
                .map(|s| s.parse::<Cidr>().map_err(|e| format!("enhanced.{name}: {e}")))
                .collect::<Result<Vec<_>, _>>()
                .map(NetSet::new)
        };
        let pairs = cfg
            .allow_pairs
            .iter()
            .map(|p| {
                let (a, b) = p
                    .split_once(',')
                    .ok_or_else(|| format!("enhanced.allow_pairs: '{p}' is not \"SRC_CIDR,DST_CIDR\""))?;
                let a = a.parse::<Cidr>().map_err(|e| format!("enhanced.allow_pairs: {e}"))?;
                let b = b.parse::<Cidr>().map_err(|e| format!("enhanced.allow_pairs: {e}"))?;
                Ok((a, b))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Allowlist { src: list("allow_src", &cfg.allow_src)?, dst: list("allow_dst", &cfg.allow_dst)?, pairs })
    }
    /// The source is never alerted.
    pub fn src_allowed(&self, src: IpAddr) -> bool {
        self.src.contains(src)
    }
    /// Traffic from `src` to `dst` is ignored.
    pub fn pair_allowed(&self, src: IpAddr, dst: IpAddr) -> bool {
        self.src.contains(src)
            || self.dst.contains(dst)
            || self.pairs.iter().any(|(a, b)| a.contains(src) && b.contains(dst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_toml_section_with_defaults_and_rejects_bad_values() {
        let cfg: EnhancedConfig = toml::from_str("beacon_threshold = 0.9\nallow_src = [\"192.0.2.0/28\"]").unwrap();
        assert_eq!(cfg.beacon_threshold, 0.9);
        assert_eq!(cfg.scan_min_failed_targets, 15);
        cfg.validate().unwrap();
        assert!(toml::from_str::<EnhancedConfig>("no_such_knob = 1").is_err());
        let bad = EnhancedConfig { allow_pairs: vec!["192.0.2.1".into()], ..EnhancedConfig::default() };
        assert!(bad.validate().unwrap_err().contains("allow_pairs"));
        let bad = EnhancedConfig { scan_trw_benign_success: 1.5, ..EnhancedConfig::default() };
        assert!(bad.validate().unwrap_err().contains("scan_trw_benign_success"));
        let bad = EnhancedConfig { beacon_jitter_min_connections: 65, ..EnhancedConfig::default() };
        assert!(bad.validate().unwrap_err().contains("beacon_jitter_min_connections = 65"));
        let off = EnhancedConfig { beacon_jitter_min_connections: 0, beacon_in_session: false, ..Default::default() };
        off.validate().unwrap();
    }
}
