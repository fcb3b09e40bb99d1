//! Counters shared between threads (plain relaxed atomics: each has a single writer),
//! the exit summary, and the periodic JSON stats line.

use crate::decode::SkipReason;
use crate::detect::enhanced::MemoryBudget;
use crate::detect::{DetectConfig, EvictionCost, TableUsage};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

#[derive(Default, Debug)]
pub struct Stats {
    // capture thread
    pub packets_read: AtomicU64,
    pub packets_decoded: AtomicU64,
    pub skipped: [AtomicU64; 4],
    pub sessions: AtomicU64,
    pub active_sessions: AtomicU64,
    pub evictions: AtomicU64,
    /// Times the capture thread found the channel to the detector full and had to wait.
    pub queue_waits: AtomicU64,
    /// Flow events that could not be handed to the detector thread (it had already stopped).
    pub channel_drops: AtomicU64,
    pub kernel_received: AtomicU64,
    pub kernel_dropped: AtomicU64,
    pub interface_dropped: AtomicU64,
    /// Replay progress: capture-file bytes consumed so far (compressed bytes for a
    /// compressed file), and the total when known (0 = unknown: a pipe). Set by the reader.
    pub input_bytes_read: AtomicU64,
    pub input_bytes_total: AtomicU64,
    // detector thread
    pub records: AtomicU64,
    pub alerts: AtomicU64,
    pub tracked_sources: AtomicU64,
    pub tracked_series: AtomicU64,
    pub detector_evictions: AtomicU64,
    /// The detectors' tables (entries, caps, evictions), replaced by the writer thread
    /// after every batch.
    pub detector_tables: Mutex<Vec<TableUsage>>,
    /// The enhanced detectors' memory budget and the caps in force (None when they do not
    /// run); set at the start and by the writer thread on a reload.
    pub detector_budget: Mutex<Option<MemoryBudget>>,
}

/// A copy of all counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub packets_read: u64,
    pub packets_decoded: u64,
    pub skipped: [u64; 4],
    pub sessions: u64,
    pub active_sessions: u64,
    pub evictions: u64,
    pub queue_waits: u64,
    pub channel_drops: u64,
    pub kernel_received: u64,
    pub kernel_dropped: u64,
    pub interface_dropped: u64,
    pub records: u64,
    pub alerts: u64,
    pub tracked_sources: u64,
    pub tracked_series: u64,
    pub detector_evictions: u64,
    pub detector_tables: Vec<TableUsage>,
    pub detector_budget: Option<MemoryBudget>,
}

impl Stats {
    pub fn skip(&self, reason: SkipReason) {
        self.skipped[reason.index()].fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let l = |a: &AtomicU64| a.load(Relaxed);
        Snapshot {
            packets_read: l(&self.packets_read),
            packets_decoded: l(&self.packets_decoded),
            skipped: [l(&self.skipped[0]), l(&self.skipped[1]), l(&self.skipped[2]), l(&self.skipped[3])],
            sessions: l(&self.sessions),
            active_sessions: l(&self.active_sessions),
            evictions: l(&self.evictions),
            queue_waits: l(&self.queue_waits),
            channel_drops: l(&self.channel_drops),
            kernel_received: l(&self.kernel_received),
            kernel_dropped: l(&self.kernel_dropped),
            interface_dropped: l(&self.interface_dropped),
            records: l(&self.records),
            alerts: l(&self.alerts),
            tracked_sources: l(&self.tracked_sources),
            tracked_series: l(&self.tracked_series),
            detector_evictions: l(&self.detector_evictions),
            detector_tables: self.detector_tables.lock().map(|t| t.clone()).unwrap_or_default(),
            detector_budget: self.detector_budget.lock().map(|b| b.clone()).unwrap_or_default(),
        }
    }

    /// The budget of the settings a run starts with (None unless the enhanced rules run).
    pub fn start_budget(&self, cfg: &DetectConfig) {
        if let Ok(mut b) = self.detector_budget.lock() {
            *b = cfg.rules.enhanced().then(|| cfg.enhanced.budget());
        }
    }

    /// The budget after a reload (the detectors that run do not change).
    pub fn reload_budget(&self, cfg: &DetectConfig) {
        if let Ok(mut b) = self.detector_budget.lock() {
            if b.is_some() {
                *b = Some(cfg.enhanced.budget());
            }
        }
    }
}

const MIB: f64 = (1u64 << 20) as f64;

/// Bytes as MiB with one decimal ("26.2").
fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / MIB)
}

/// Estimated bytes of the tables inside the budget.
fn budgeted_bytes(tables: &[TableUsage]) -> u64 {
    tables.iter().filter_map(|t| t.bytes).sum()
}

/// Share of the budget in use, one decimal.
fn percent(bytes: u64, budget: &MemoryBudget) -> f64 {
    (bytes as f64 * 1000.0 / budget.bytes().max(1) as f64).round() / 10.0
}

impl Snapshot {
    /// One JSON stats line; kernel counters as deltas since `prev` as well as totals.
    pub fn to_json(&self, prev: &Snapshot, live: bool) -> String {
        let mut m = serde_json::Map::new();
        m.insert("type".into(), "stats".into());
        m.insert("packets_read".into(), self.packets_read.into());
        m.insert("packets_decoded".into(), self.packets_decoded.into());
        let mut sk = serde_json::Map::new();
        for r in SkipReason::ALL {
            sk.insert(r.as_str().into(), self.skipped[r.index()].into());
        }
        m.insert("skipped".into(), sk.into());
        if live {
            m.insert("kernel_received".into(), self.kernel_received.into());
            m.insert("kernel_dropped".into(), self.kernel_dropped.into());
            m.insert("interface_dropped".into(), self.interface_dropped.into());
            m.insert("kernel_received_delta".into(), self.kernel_received.saturating_sub(prev.kernel_received).into());
            m.insert("kernel_dropped_delta".into(), self.kernel_dropped.saturating_sub(prev.kernel_dropped).into());
            m.insert(
                "interface_dropped_delta".into(),
                self.interface_dropped.saturating_sub(prev.interface_dropped).into(),
            );
        }
        m.insert("queue_waits".into(), self.queue_waits.into());
        m.insert("channel_drops".into(), self.channel_drops.into());
        m.insert("sessions".into(), self.sessions.into());
        m.insert("active_sessions".into(), self.active_sessions.into());
        m.insert("evictions".into(), self.evictions.into());
        m.insert("records_written".into(), self.records.into());
        m.insert("alerts_written".into(), self.alerts.into());
        m.insert("tracked_sources".into(), self.tracked_sources.into());
        m.insert("tracked_series".into(), self.tracked_series.into());
        m.insert("detector_evictions".into(), self.detector_evictions.into());
        let tables: Vec<serde_json::Value> = self
            .detector_tables
            .iter()
            .map(|t| {
                serde_json::json!({
                    "detector": t.detector,
                    "table": t.table,
                    "entries": t.entries,
                    "cap": t.cap,
                    "evictions": t.evictions,
                    "setting": t.setting,
                    "bytes": t.bytes,
                })
            })
            .collect();
        m.insert("detector_tables".into(), tables.into());
        if let Some(b) = &self.detector_budget {
            let bytes = budgeted_bytes(&self.detector_tables);
            let caps: Vec<serde_json::Value> = b
                .caps
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "setting": c.setting,
                        "cap": c.value,
                        "from": if c.from_budget { "budget" } else { "setting" },
                    })
                })
                .collect();
            m.insert(
                "detector_memory".into(),
                serde_json::json!({
                    "setting": MemoryBudget::SETTING,
                    "budget_mib": b.mib,
                    "budget_bytes": b.bytes(),
                    "estimated_bytes": bytes,
                    "used_percent": percent(bytes, b),
                    "caps": caps,
                }),
            );
        }
        serde_json::Value::Object(m).to_string()
    }

    /// The human exit summary: one line of counters, then one line per detector table
    /// that had to evict, saying what that cost and which setting raises its cap.
    pub fn summary(&self, live: bool, interrupted: bool) -> Vec<String> {
        let skipped: Vec<String> =
            SkipReason::ALL.iter().map(|r| format!("{}={}", r.as_str(), self.skipped[r.index()])).collect();
        let mut s = format!(
            "summary: packets read {}, decoded {}, skipped {} ({}); sessions {}, records {}, alerts {}, flow evictions {}, detector evictions {}",
            self.packets_read,
            self.packets_decoded,
            self.skipped.iter().sum::<u64>(),
            skipped.join(" "),
            self.sessions,
            self.records,
            self.alerts,
            self.evictions,
            self.detector_evictions,
        );
        if live {
            s.push_str(&format!(
                "; kernel received {}, dropped {}, interface dropped {}",
                self.kernel_received, self.kernel_dropped, self.interface_dropped
            ));
        }
        let full: Vec<&TableUsage> = self.detector_tables.iter().filter(|t| t.evictions > 0).collect();
        let detection_lost = full.iter().any(|t| t.cost == EvictionCost::Detection);
        s.push_str(match (full.is_empty(), detection_lost) {
            (true, _) => "; no detector table was full",
            (false, true) => "; detector tables were full: detections may have been missed (see below)",
            (false, false) => "; detector tables were full, nothing lost for detection (see below)",
        });
        if interrupted {
            s.push_str("; interrupted: the input was not read to its end");
        }
        let mut lines = vec![s];
        lines.extend(self.memory_line());
        lines.extend(full.iter().map(|t| table_line(t, self.detector_budget.as_ref())));
        lines
    }

    /// "detector memory: enhanced tables ~26.4 MiB of the 40 MiB budget (66.0 %, ...": the
    /// budget, each budgeted table's fill and estimate, and the caps it gave.
    fn memory_line(&self) -> Option<String> {
        let b = self.detector_budget.as_ref()?;
        let bytes = budgeted_bytes(&self.detector_tables);
        let tables: Vec<String> = self
            .detector_tables
            .iter()
            .filter_map(|t| {
                let cap = t.cap.map(|c| format!(" of {c}")).unwrap_or_default();
                let detector = t.detector.trim_start_matches("enhanced ");
                Some(format!("{detector} {} {}{cap} (~{} MiB)", t.table, t.entries, mib(t.bytes?)))
            })
            .collect();
        let caps = |from_budget: bool| {
            let list: Vec<String> = b
                .caps
                .iter()
                .filter(|c| c.from_budget == from_budget)
                .map(|c| format!("{} {}", c.setting.trim_start_matches("enhanced."), c.value))
                .collect();
            list.join(", ")
        };
        let mut s = format!(
            "detector memory: enhanced tables ~{} MiB of the {} MiB budget ({:.1} %, {}): {}",
            mib(bytes),
            b.mib,
            percent(bytes, b),
            MemoryBudget::SETTING,
            tables.join(", "),
        );
        for (from_budget, what) in [(true, "caps from the budget"), (false, "caps set explicitly")] {
            let list = caps(from_budget);
            if !list.is_empty() {
                s.push_str(&format!("; {what}: {list}"));
            }
        }
        Some(s)
    }
}

/// "detector table enhanced port scan sources: 1549763 evictions (cap 32768): ..."; a cap
/// the memory budget gave names the budget first as the setting to raise.
fn table_line(t: &TableUsage, budget: Option<&MemoryBudget>) -> String {
    let cap = t.cap.map(|c| format!(" (cap {c})")).unwrap_or_default();
    let cost = match t.cost {
        EvictionCost::Detection => "evidence was dropped, so findings may have been missed",
        EvictionCost::Suppression => "no evidence lost; a finding may be alerted again within its suppression time",
    };
    let raise = match (t.setting, budget) {
        (Some(k), Some(b)) if b.gave(k) => {
            format!("; raise {} (now {} MiB) or {k} to keep more", MemoryBudget::SETTING, b.mib)
        }
        (Some(k), _) => format!("; raise {k} to keep more"),
        (None, _) => String::new(),
    };
    format!("detector table {} {}: {} evictions{cap}: {cost}{raise}", t.detector, t.table, t.evictions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Tracks;

    fn table(detector: &'static str, evictions: u64, cost: EvictionCost) -> TableUsage {
        TableUsage {
            detector,
            table: "sources",
            entries: 10,
            cap: Some(10),
            evictions,
            setting: Some("enhanced.scan_max_sources"),
            cost,
            tracks: Tracks::Sources,
            bytes: None,
        }
    }

    #[test]
    fn summary_names_full_tables_their_cost_and_setting() {
        let mut s = Snapshot { detector_evictions: 7, ..Snapshot::default() };
        s.detector_tables = vec![
            table("sentinel port scan", 0, EvictionCost::Detection),
            table("enhanced port scan", 7, EvictionCost::Detection),
        ];
        let lines = s.summary(false, false);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("detector evictions 7"), "{}", lines[0]);
        assert!(lines[0].contains("detections may have been missed"), "{}", lines[0]);
        assert_eq!(
            lines[1],
            "detector table enhanced port scan sources: 7 evictions (cap 10): evidence was dropped, so findings \
             may have been missed; raise enhanced.scan_max_sources to keep more"
        );
        s.detector_tables = vec![table("enhanced port scan", 7, EvictionCost::Suppression)];
        let lines = s.summary(false, true);
        assert!(lines[0].contains("nothing lost for detection"), "{}", lines[0]);
        assert!(lines[0].ends_with("; interrupted: the input was not read to its end"), "{}", lines[0]);
        assert!(lines[1].contains("may be alerted again"), "{}", lines[1]);
        s.detector_tables = vec![table("enhanced port scan", 0, EvictionCost::Detection)];
        assert_eq!(s.summary(false, false).len(), 1);
        assert!(s.summary(false, false)[0].ends_with("no detector table was full"));
    }

    #[test]
    fn summary_and_stats_line_report_the_memory_budget() {
        let mut cfg = crate::detect::enhanced::EnhancedConfig { memory_mib: 1, ..Default::default() };
        cfg.explicit_caps.beacon_max_series = true;
        cfg.beacon_max_series = 5000;
        cfg.apply_budget();
        let mut sources = table("enhanced port scan", 9, EvictionCost::Detection);
        (sources.entries, sources.cap, sources.bytes) = (819, Some(819), Some(819 * 848));
        let s = Snapshot {
            detector_evictions: 9,
            detector_tables: vec![table("sentinel port scan", 0, EvictionCost::Detection), sources],
            detector_budget: Some(cfg.budget()),
            ..Snapshot::default()
        };
        let lines = s.summary(false, false);
        assert_eq!(
            lines[1],
            "detector memory: enhanced tables ~0.7 MiB of the 1 MiB budget (66.2 %, enhanced.memory_mib): port scan \
             sources 819 of 819 (~0.7 MiB); caps from the budget: scan_max_sources 819, scan_max_targets_per_source \
             64; caps set explicitly: beacon_max_series 5000"
        );
        assert!(
            lines[2].ends_with("raise enhanced.memory_mib (now 1 MiB) or enhanced.scan_max_sources to keep more"),
            "{}",
            lines[2]
        );
        let v: serde_json::Value = serde_json::from_str(&s.to_json(&Snapshot::default(), false)).unwrap();
        let m = &v["detector_memory"];
        assert_eq!((m["budget_bytes"].as_u64(), m["estimated_bytes"].as_u64()), (Some(1 << 20), Some(819 * 848)));
        assert_eq!(
            m["caps"][1],
            serde_json::json!({"setting": "enhanced.beacon_max_series", "cap": 5000, "from": "setting"})
        );
        assert_eq!(
            (v["detector_tables"][0]["bytes"].is_null(), v["detector_tables"][1]["bytes"].as_u64()),
            (true, Some(819 * 848))
        );
        // No budget (the enhanced rules do not run): no memory line, no object.
        let s = Snapshot { detector_budget: None, ..s };
        assert_eq!(s.summary(false, false).len(), 2);
        assert!(s.to_json(&Snapshot::default(), false).find("detector_memory").is_none());
    }

    #[test]
    fn stats_line_keeps_its_keys_and_adds_tables() {
        let s = Snapshot {
            detector_tables: vec![table("enhanced port scan", 3, EvictionCost::Detection)],
            ..Snapshot::default()
        };
        let v: serde_json::Value = serde_json::from_str(&s.to_json(&Snapshot::default(), false)).unwrap();
        for key in ["tracked_sources", "tracked_series", "detector_evictions", "records_written", "alerts_written"] {
            assert!(v.get(key).is_some(), "{key} missing: {v}");
        }
        assert_eq!(v["detector_tables"][0]["evictions"], 3);
        assert_eq!(v["detector_tables"][0]["setting"], "enhanced.scan_max_sources");
    }
}
