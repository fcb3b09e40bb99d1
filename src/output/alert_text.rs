//! Alerts as a person reads them at a terminal: one line each with the time, severity,
//! detection mode, what was found, who did it, and the key evidence —
//!
//! ```text
//! 2026-11-22T07:47:37.946719Z Medium sentinel PortScan 198.51.100.10 → 203.0.113.20: Port scan detected (ASIM Network Session schema) — 51 ports in the 5-min bin from 2026-11-22T07:45:00.000000Z (ports 111, 139, 110, 22, 21, 53, 199, 135, …) [session 7680a05b2ee5c7df-1 +9]
//! ```
//!
//! The line ends with the `NetworkSessionId` of the first session behind the alert (and
//! how many more the JSON's `NetworkSessionIds` lists), the pivot to its records; the
//! `AlertId` and `Dvc` stay in the JSON. Files and pipes keep JSON Lines
//! ([`crate::detect::Alert::to_json`]); `--json` keeps them at a terminal too. Only reads
//! `Alert`'s fields: evidence keys a detector does not set are left out, so detectors can
//! change their evidence freely.

use crate::detect::{Alert, AlertType, DetectionMode};
use crate::output::records::RecordContext;
use serde_json::Value;

fn num(a: &Alert, key: &str) -> Option<String> {
    match a.evidence.get(key)? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// The first `max` entries of a list evidence field, "a, b, c, …".
fn sample(a: &Alert, key: &str, max: usize) -> Option<String> {
    let list = a.evidence.get(key)?.as_array()?;
    let mut items: Vec<String> =
        list.iter().take(max).map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).collect();
    if list.len() > max {
        items.push("…".into());
    }
    Some(items.join(", "))
}

/// Key evidence in words, by alert type and mode; parts whose fields are absent are skipped.
fn evidence(a: &Alert) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut add = |s: Option<String>| parts.extend(s);
    match (a.alert_type, a.mode) {
        (AlertType::PortScan, DetectionMode::Sentinel) => {
            add(num(a, "AttemptedPortsCount").map(|n| {
                let bin = num(a, "WindowStart").map(|w| format!(" in the 5-min bin from {w}")).unwrap_or_default();
                let ports = sample(a, "AttemptedPorts", 8).map(|p| format!(" (ports {p})")).unwrap_or_default();
                format!("{n} ports{bin}{ports}")
            }));
        }
        (AlertType::PortScan, DetectionMode::Enhanced) => {
            add(num(a, "ScanType").map(|t| {
                let probe = num(a, "ProbeType").map(|p| format!(" {p}")).unwrap_or_default();
                format!("{t}{probe} scan")
            }));
            add(num(a, "TargetCount").zip(num(a, "PortCount")).map(|(t, p)| {
                let hosts = if t == "1" { "host" } else { "hosts" };
                let ports = if p == "1" { "port" } else { "ports" };
                format!("{t} {hosts} × {p} {ports}")
            }));
            add(num(a, "Failures").zip(num(a, "Attempts")).map(|(f, n)| format!("{f} of {n} attempts failed")));
            add(num(a, "WindowSeconds").map(|w| format!("over {w} s")));
            add(num(a, "Tool").map(|t| format!("tool {t}")));
        }
        (AlertType::Beaconing, DetectionMode::Sentinel) => {
            add(num(a, "MostFrequentTimeDeltaCount").zip(num(a, "TotalEvents")).map(|(c, t)| {
                let gap = num(a, "MostFrequentTimeDeltainSeconds").map(|g| format!(" {g} s apart")).unwrap_or_default();
                format!("{c} of {t} connections{gap}")
            }));
            add(num(a, "BeaconPercent").map(|p| format!("{p}% regular")));
            add(num(a, "WindowStart").map(|w| format!("in the hour from {w}")));
        }
        (AlertType::Beaconing, DetectionMode::Enhanced) => {
            add(num(a, "IntervalSeconds").map(|i| {
                let jitter = num(a, "JitterPercent").map(|j| format!(" ±{j}%")).unwrap_or_default();
                format!("every {i} s{jitter}")
            }));
            if a.evidence.get("InSession").and_then(Value::as_bool) == Some(true) {
                // Check-ins are exchanges inside sessions that stay open.
                add(num(a, "Exchanges").map(|x| {
                    let sessions = num(a, "Connections")
                        .map(|c| format!(" in {c} {}", if c == "1" { "session" } else { "sessions" }))
                        .unwrap_or_default();
                    format!("{x} exchanges{sessions}")
                }));
            } else {
                add(num(a, "Connections").map(|c| format!("{c} connections")));
            }
            if num(a, "Pattern").as_deref() == Some("Jittered") {
                let persistence = num(a, "Persistence").map(|p| format!(", persistence {p}")).unwrap_or_default();
                add(Some(format!("jittered{persistence}")));
            }
            add(num(a, "Protocol"));
            add(num(a, "Score").map(|s| format!("score {s}")));
        }
    }
    parts.join(", ")
}

/// " [session <first NetworkSessionId> +<more>]", or nothing for an alert without sessions.
fn sessions(a: &Alert, ctx: &RecordContext) -> String {
    match a.sessions.split_first() {
        Some((first, [])) => format!(" [session {}]", ctx.session_id(*first)),
        Some((first, rest)) => format!(" [session {} +{}]", ctx.session_id(*first), rest.len()),
        None => String::new(),
    }
}

/// One readable line (no trailing newline).
pub fn format(a: &Alert, ctx: &RecordContext) -> String {
    let who = match (a.dst, a.dport) {
        (Some(d), Some(p)) if d.is_ipv6() => format!("{} → [{d}]:{p}", a.src),
        (Some(d), Some(p)) => format!("{} → {d}:{p}", a.src),
        (Some(d), None) => format!("{} → {d}", a.src),
        (None, _) => a.src.to_string(),
    };
    let name = a.name.split_whitespace().collect::<Vec<_>>().join(" ");
    let ev = evidence(a);
    let ev = if ev.is_empty() { String::new() } else { format!(" — {ev}") };
    format!(
        "{} {} {} {} {who}: {name}{ev}{}",
        a.time.rfc3339(),
        a.severity,
        a.mode.as_str(),
        a.alert_type.as_str(),
        sessions(a, ctx)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Severity;
    use crate::net::NetSet;
    use crate::output::records::Device;
    use crate::time::Timestamp;
    use serde_json::json;

    fn ctx() -> RecordContext {
        RecordContext::new(Device { name: "span1".into(), ip: None, interface: None }, NetSet::default_home(), 0, None)
    }

    fn alert(alert_type: AlertType, mode: DetectionMode, evidence: Value) -> Alert {
        Alert {
            alert_type,
            mode,
            time: Timestamp::from_secs(1_700_000_000),
            name: "Port scan detected  (ASIM Network Session schema)".into(),
            severity: Severity::Medium,
            tactics: &[],
            techniques: &[],
            src: "198.51.100.10".parse().unwrap(),
            dst: None,
            dport: None,
            evidence: evidence.as_object().unwrap().clone(),
            sessions: Vec::new(),
        }
    }

    #[test]
    fn sentinel_port_scan_line() {
        let ports: Vec<u16> = (1..=51).collect();
        let a = alert(
            AlertType::PortScan,
            DetectionMode::Sentinel,
            json!({"WindowStart": "2023-11-14T22:10:00Z", "AttemptedPortsCount": 51, "AttemptedPorts": ports}),
        );
        assert_eq!(
            format(&a, &ctx()),
            "2023-11-14T22:13:20.000000Z Medium sentinel PortScan 198.51.100.10: Port scan detected (ASIM Network \
             Session schema) — 51 ports in the 5-min bin from 2023-11-14T22:10:00Z (ports 1, 2, 3, 4, 5, 6, 7, 8, …)"
        );
    }

    #[test]
    fn beacon_lines_name_both_ends_and_the_period() {
        let mut a = alert(
            AlertType::Beaconing,
            DetectionMode::Enhanced,
            json!({"IntervalSeconds": 12.0, "JitterPercent": 1.5, "Connections": 40, "Protocol": "TCP", "Score": 0.97}),
        );
        a.name = "Beaconing every 12s".into();
        a.dst = Some("2001:db8::20".parse().unwrap());
        a.dport = Some(443);
        let line = format(&a, &ctx());
        assert!(line.contains("198.51.100.10 → [2001:db8::20]:443: Beaconing every 12s"), "{line}");
        assert!(line.ends_with("— every 12.0 s ±1.5%, 40 connections, TCP, score 0.97"), "{line}");
        // Inside sessions: exchanges and sessions; the heavy-jitter path says so.
        a.evidence = json!({"IntervalSeconds": 16.1, "JitterPercent": 2.9, "InSession": true, "Exchanges": 10,
            "Connections": 1, "Pattern": "Regular", "Protocol": "TCP", "Score": 0.861})
        .as_object()
        .unwrap()
        .clone();
        let line = format(&a, &ctx());
        assert!(line.ends_with("— every 16.1 s ±2.9%, 10 exchanges in 1 session, TCP, score 0.861"), "{line}");
        a.evidence = json!({"IntervalSeconds": 10.0, "Connections": 25, "Pattern": "Jittered", "Persistence": 0.96,
            "Protocol": "TCP", "Score": 0.82})
        .as_object()
        .unwrap()
        .clone();
        let line = format(&a, &ctx());
        assert!(
            line.ends_with("— every 10.0 s, 25 connections, jittered, persistence 0.96, TCP, score 0.82"),
            "{line}"
        );
        // Missing evidence is left out, never printed as "null".
        a.evidence.clear();
        let line = format(&a, &ctx());
        assert!(!line.contains("null") && !line.contains('—'), "{line}");
    }

    #[test]
    fn the_line_ends_with_the_first_session_id_and_how_many_more() {
        let c = ctx();
        let mut a = alert(AlertType::PortScan, DetectionMode::Sentinel, json!({"AttemptedPortsCount": 51}));
        a.sessions = vec![7];
        assert!(format(&a, &c).ends_with(&format!("— 51 ports [session {}]", c.session_id(7))), "{}", format(&a, &c));
        a.sessions = vec![7, 8, 9];
        assert!(format(&a, &c).ends_with(&format!(" [session {} +2]", c.session_id(7))), "{}", format(&a, &c));
    }
}
