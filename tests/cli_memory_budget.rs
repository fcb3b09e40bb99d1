//! The enhanced detectors' memory budget end to end (`[enhanced] memory_mib`,
//! `--memory-mib`): a small budget gives the caps its arithmetic says, the summary and
//! the stats lines report it with each table's fill, its evictions are counted and the
//! budget named as the setting to raise; a cap given in the config file wins over it.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

fn synth(args: &[&str], out: &Path) {
    let o = Command::new(env!("CARGO_BIN_EXE_flowsentry-synth")).args(args).arg("-o").arg(out).output().unwrap();
    assert!(o.status.success(), "flowsentry-synth failed: {}", String::from_utf8_lossy(&o.stderr));
}

/// (stderr lines that are not JSON, the JSON stats lines) of a replay.
fn replay(pcap: &Path, extra: &[&str]) -> (Vec<String>, Vec<serde_json::Value>) {
    let mut args = vec!["replay", "-a", "/dev/null", "--stats-interval", "120"];
    args.extend_from_slice(extra);
    args.push(pcap.to_str().unwrap());
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let (json, text): (Vec<&str>, Vec<&str>) = err.lines().partition(|l| l.starts_with('{'));
    (text.into_iter().map(String::from).collect(), json_lines(&json.join("\n")))
}

fn line<'a>(lines: &'a [String], start: &str) -> &'a str {
    lines.iter().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("no line `{start}`: {lines:#?}"))
}

/// The caps of the last stats line's `detector_memory`: (setting, cap, from).
fn caps(stats: &[serde_json::Value]) -> Vec<(String, u64, String)> {
    let last = stats.last().expect("a stats line");
    last["detector_memory"]["caps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (c["setting"].as_str().unwrap().into(), c["cap"].as_u64().unwrap(), c["from"].as_str().unwrap().into())
        })
        .collect()
}

fn table_caps(stats: &[serde_json::Value]) -> Vec<(String, u64)> {
    let last = stats.last().expect("a stats line");
    last["detector_tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["detector"].as_str().unwrap().starts_with("enhanced"))
        .map(|t| (t["table"].as_str().unwrap().into(), t["cap"].as_u64().unwrap()))
        .collect()
}

#[test]
fn a_small_budget_sets_the_caps_reports_them_and_explicit_caps_win() {
    let dir = scratch("memory-budget");
    let pcap = dir.join("hosts.pcap");
    // ~10 min of the host-count mix: ~10 k distinct external sources, ~1 k series.
    synth(&["hosts", "--packets", "60000", "--session-rate", "20"], &pcap);

    // The default budget: today's caps, all from the budget, nothing full.
    let (lines, stats) = replay(&pcap, &[]);
    let memory = line(&lines, "flowsentry: detector memory:");
    assert!(memory.contains("of the 40 MiB budget") && memory.contains("enhanced.memory_mib"), "{memory}");
    assert!(
        memory.ends_with(
            "caps from the budget: scan_max_sources 32768, beacon_max_series 32768, scan_max_targets_per_source 1024"
        ),
        "{memory}"
    );
    assert!(line(&lines, "flowsentry: summary:").contains("detector evictions 0;"));
    let b = &stats.last().unwrap()["detector_memory"];
    assert_eq!((b["budget_mib"].as_u64(), b["budget_bytes"].as_u64()), (Some(40), Some(40 << 20)));
    let estimated = b["estimated_bytes"].as_u64().unwrap();
    let tables: u64 =
        stats.last().unwrap()["detector_tables"].as_array().unwrap().iter().filter_map(|t| t["bytes"].as_u64()).sum();
    assert!(estimated > 0 && estimated == tables, "{b}");

    // 1 MiB (the flag): 1 MiB / 1280 B per entry = 819 sources and 819 series, 64
    // targets per source; the tables overflow and the summary names the budget.
    let (lines, stats) = replay(&pcap, &["--memory-mib", "1"]);
    let memory = line(&lines, "flowsentry: detector memory:");
    assert!(memory.contains("of the 1 MiB budget"), "{memory}");
    let sources: u64 = memory.split("port scan sources ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!((700..=819).contains(&sources) && memory.contains(" of 819 (~"), "{memory}");
    assert!(
        memory.ends_with(
            "caps from the budget: scan_max_sources 819, beacon_max_series 819, scan_max_targets_per_source 64"
        ),
        "{memory}"
    );
    let budget = |s: &str| (s.to_string(), 819, "budget".to_string());
    assert_eq!(
        caps(&stats),
        [
            budget("enhanced.scan_max_sources"),
            budget("enhanced.beacon_max_series"),
            ("enhanced.scan_max_targets_per_source".into(), 64, "budget".into())
        ]
    );
    assert_eq!(table_caps(&stats), [("sources".into(), 819), ("alerted sources".into(), 819), ("series".into(), 819)]);
    let summary = line(&lines, "flowsentry: summary:");
    let evictions: u64 =
        summary.split("detector evictions ").nth(1).unwrap().split(';').next().unwrap().parse().unwrap();
    assert!(evictions > 5_000, "{summary}");
    assert!(summary.contains("detections may have been missed"), "{summary}");
    let full = line(&lines, "flowsentry: detector table enhanced port scan sources:");
    assert!(
        full.ends_with("(cap 819): evidence was dropped, so findings may have been missed; raise enhanced.memory_mib (now 1 MiB) or enhanced.scan_max_sources to keep more"),
        "{full}"
    );
    let used = stats.last().unwrap()["detector_memory"]["used_percent"].as_f64().unwrap();
    assert!(used > 50.0 && used <= 100.0, "{used} % of a full 1 MiB budget");

    // A cap in the file wins over the budget (from the file, and from the flag).
    let cfg = dir.join("budget.toml");
    std::fs::write(&cfg, "[enhanced]\nmemory_mib = 1\nscan_max_sources = 5000\n").unwrap();
    for extra in [vec!["-c", cfg.to_str().unwrap()], vec!["-c", cfg.to_str().unwrap(), "--memory-mib", "1"]] {
        let (lines, stats) = replay(&pcap, &extra);
        assert_eq!(
            caps(&stats),
            [
                ("enhanced.scan_max_sources".into(), 5000, "setting".into()),
                budget("enhanced.beacon_max_series"),
                ("enhanced.scan_max_targets_per_source".into(), 64, "budget".into())
            ]
        );
        assert_eq!(table_caps(&stats)[0], ("sources".into(), 5000));
        let memory = line(&lines, "flowsentry: detector memory:");
        assert!(memory.ends_with("; caps set explicitly: scan_max_sources 5000"), "{memory}");
        let full = line(&lines, "flowsentry: detector table enhanced port scan sources:");
        assert!(full.ends_with("(cap 5000): evidence was dropped, so findings may have been missed; raise enhanced.scan_max_sources to keep more"), "{full}");
    }

    // Out of range: the error names the flag, or the key where the file has it.
    let out = run(&["replay", "--memory-mib", "0", pcap.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--memory-mib must be between 1 and 1048576 (MiB), got 0"), "{}", stderr(&out));
    std::fs::write(&cfg, "[enhanced]\nmemory_mib = 0\n").unwrap();
    let out = run(&["replay", "-c", cfg.to_str().unwrap(), pcap.to_str().unwrap()]);
    assert!(stderr(&out).contains(":2:1: enhanced.memory_mib must be between 1"), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).ok();
}
