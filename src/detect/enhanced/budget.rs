//! The memory budget of the enhanced detectors' tables (`[enhanced] memory_mib`,
//! `--memory-mib`). Their entries vary in size — a scan source holds a set of targets, a
//! beacon series a ring of sessions — so an operator cannot size them by entry counts
//! without knowing what an entry costs; the budget does that arithmetic once, from bytes
//! per entry measured at full tables, and the stats lines and exit summary report the
//! estimate against it. The flow table and the sentinel tables keep plain entry caps:
//! their entries have a fixed size, so a count is the natural knob there.
//!
//! Explicit caps (`scan_max_sources`, `beacon_max_series`, `scan_max_targets_per_source`)
//! win over the budget, table by table.
//!
//! A table that fills also allocates its nursery ([`super::bounded`]: cap / 16 more slots,
//! whose entries count in the cap) and its doorkeeper holds two generations of `cap`
//! keys (as many bits as the one generation of `2 × cap` before). The bytes per entry
//! below were measured before the nursery existed and still bound the peak: with it the
//! 5 M-packet mix b run peaks at 97 MiB instead of 119.

/// Bytes per enhanced scan source: the key and [`super::scan`]'s state in the map's dense
/// slot array, its touch stamp and hash, the id bucket, its doorkeeper bits, and the
/// heap of a typical target set. Measured as peak RSS over table size at full tables:
/// 848 B on benchmark mix b (50 000 clients, tens of targets each in the window), 419 B
/// on mix c (one to three targets, kept inline). The busier mix is used.
pub const SOURCE_BYTES: u64 = 848;
/// Bytes per entry of the alerted-sources table (its cap is `scan_max_sources`): the key,
/// ten (time, count) pairs, stamp, hash and bucket; computed from the layout (~215 B).
pub const ALERTED_BYTES: u64 = 216;
/// Bytes per beacon series: measured 211 B on mix b and 135 B on mix c, where most
/// series are one session held inline; a series with a full 64-session ring holds
/// ~2.7 KiB, but few do.
pub const SERIES_BYTES: u64 = 216;
/// What one more entry in both the scan tables and the series table costs: the budget is
/// split between them in this proportion, so both get the same cap.
pub const UNIT_BYTES: u64 = SOURCE_BYTES + ALERTED_BYTES + SERIES_BYTES;

/// The default budget: 40 MiB gives the caps of earlier releases exactly (32768 sources,
/// 32768 series, 1024 targets per source), so default results are unchanged.
pub const DEFAULT_MIB: u64 = 40;
/// The largest budget accepted (1 TiB).
pub const MAX_MIB: u64 = 1 << 20;
/// Targets per source at the default budget and above (a bigger budget buys more sources
/// and series, not more targets per source).
pub const MAX_TARGETS_PER_SOURCE: usize = 1024;
/// Fewest targets per source a small budget leaves (above the fast vertical path's 50
/// ports and the 15 failed targets the scorer needs, whatever they are set to).
pub const MIN_TARGETS_PER_SOURCE: usize = 64;

const MIB: u64 = 1 << 20;

/// Which of the budgeted caps were set explicitly (in the config file); those win over
/// the budget. Filled in by the config loader.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExplicitCaps {
    pub scan_max_sources: bool,
    pub beacon_max_series: bool,
    pub scan_max_targets_per_source: bool,
}

/// The caps a budget gives (before explicit caps are applied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetCaps {
    pub scan_max_sources: usize,
    pub beacon_max_series: usize,
    pub scan_max_targets_per_source: usize,
}

/// The caps a budget of `mib` MiB gives. `min_targets` is the fewest targets per source the
/// detector's thresholds need (the larger of the fast vertical path's ports and the
/// failed targets the scorer needs).
pub fn caps_for(mib: u64, min_targets: usize) -> BudgetCaps {
    let bytes = mib.saturating_mul(MIB);
    let entries = usize::try_from(bytes / UNIT_BYTES).unwrap_or(usize::MAX).max(1);
    let scaled = (MAX_TARGETS_PER_SOURCE as u64).saturating_mul(mib) / DEFAULT_MIB;
    let targets = usize::try_from(scaled)
        .unwrap_or(usize::MAX)
        .min(MAX_TARGETS_PER_SOURCE)
        .max(MIN_TARGETS_PER_SOURCE.max(min_targets));
    BudgetCaps { scan_max_sources: entries, beacon_max_series: entries, scan_max_targets_per_source: targets }
}

/// One budgeted cap as it was applied: its setting, its value, and whether the budget
/// gave it (false: set explicitly).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetedCap {
    /// The config key, e.g. "enhanced.scan_max_sources".
    pub setting: &'static str,
    pub value: u64,
    pub from_budget: bool,
}

/// The enhanced detectors' budget as in force: for the stats lines and the summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryBudget {
    pub mib: u64,
    pub caps: Vec<BudgetedCap>,
}

impl MemoryBudget {
    /// The setting that sets the budget.
    pub const SETTING: &'static str = "enhanced.memory_mib";
    pub fn bytes(&self) -> u64 {
        self.mib.saturating_mul(MIB)
    }
    /// Whether the cap named `setting` came from the budget.
    pub fn gave(&self, setting: &str) -> bool {
        self.caps.iter().any(|c| c.setting == setting && c.from_budget)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_budget_gives_the_default_caps_exactly() {
        assert_eq!(
            caps_for(DEFAULT_MIB, 50),
            BudgetCaps { scan_max_sources: 32_768, beacon_max_series: 32_768, scan_max_targets_per_source: 1024 }
        );
        let d = super::super::EnhancedConfig::default();
        assert_eq!(d.memory_mib, DEFAULT_MIB);
        let c = caps_for(d.memory_mib, d.scan_fast_vertical_ports as usize);
        assert_eq!(
            (c.scan_max_sources, c.beacon_max_series, c.scan_max_targets_per_source),
            (d.scan_max_sources, d.beacon_max_series, d.scan_max_targets_per_source)
        );
    }

    #[test]
    fn caps_follow_the_budget_from_bytes_per_entry() {
        // 1 MiB / (848 + 216 + 216) B = 819 entries each; targets 1024 / 40 = 25 -> 64.
        assert_eq!(
            caps_for(1, 50),
            BudgetCaps { scan_max_sources: 819, beacon_max_series: 819, scan_max_targets_per_source: 64 }
        );
        // Targets never below what the thresholds need.
        assert_eq!(caps_for(1, 200).scan_max_targets_per_source, 200);
        // 10 MiB: 8192 entries, 256 targets per source.
        let c = caps_for(10, 50);
        assert_eq!((c.scan_max_sources, c.scan_max_targets_per_source), (8192, 256));
        // 160 MiB: four times the default tables, targets stay at 1024.
        let c = caps_for(160, 50);
        assert_eq!((c.scan_max_sources, c.beacon_max_series, c.scan_max_targets_per_source), (131_072, 131_072, 1024));
        // The estimate of full tables never exceeds the budget.
        for mib in [1, 3, 7, 40, 99, 1000, MAX_MIB] {
            let c = caps_for(mib, 50);
            let full =
                c.scan_max_sources as u64 * (SOURCE_BYTES + ALERTED_BYTES) + c.beacon_max_series as u64 * SERIES_BYTES;
            assert!(full <= mib * MIB && full + UNIT_BYTES > mib * MIB, "{mib} MiB: {full} B");
        }
    }
}

#[cfg(test)]
mod reload_tests {
    use super::super::EnhancedConfig;
    use crate::detect::{DetectConfig, DetectorSet, RuleSet};

    fn caps(set: &DetectorSet) -> Vec<(&'static str, &'static str, Option<u64>)> {
        set.usage().tables.iter().map(|t| (t.detector, t.table, t.cap)).collect()
    }

    /// A reload that changes the budget resizes every enhanced table; a cap given
    /// explicitly keeps its value whatever the budget.
    #[test]
    fn a_reload_with_a_new_budget_resizes_the_tables_and_explicit_caps_win() {
        let mut cfg = DetectConfig { rules: RuleSet::Enhanced, ..DetectConfig::default() };
        cfg.enhanced.apply_budget();
        let mut set = DetectorSet::new(&cfg);
        let full = Some(32_768);
        assert_eq!(
            caps(&set),
            [
                ("enhanced port scan", "sources", full),
                ("enhanced port scan", "alerted sources", full),
                ("enhanced beaconing", "series", full)
            ]
        );
        let mut small = EnhancedConfig { memory_mib: 1, ..EnhancedConfig::default() };
        small.apply_budget();
        assert_eq!((small.scan_max_sources, small.scan_max_targets_per_source), (819, 64));
        set.reload(&DetectConfig { enhanced: small.clone(), ..cfg.clone() });
        assert!(caps(&set).iter().all(|c| c.2 == Some(819)), "{:?}", caps(&set));
        let b = small.budget();
        assert!(b.caps.iter().all(|c| c.from_budget) && b.mib == 1);

        let mut explicit = EnhancedConfig { memory_mib: 1, scan_max_sources: 5000, ..EnhancedConfig::default() };
        explicit.explicit_caps.scan_max_sources = true;
        explicit.apply_budget();
        assert_eq!((explicit.scan_max_sources, explicit.beacon_max_series), (5000, 819));
        set.reload(&DetectConfig { enhanced: explicit.clone(), ..cfg });
        assert_eq!(caps(&set).iter().map(|c| c.2).collect::<Vec<_>>(), [Some(5000), Some(5000), Some(819)]);
        let b = explicit.budget();
        assert!(!b.gave("enhanced.scan_max_sources") && b.gave("enhanced.beacon_max_series"));
    }
}
