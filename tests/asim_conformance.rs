//! Every record of every bundled capture (captures/) and every public one (../shared/pcaps),
//! written by the real binary, checked against Microsoft's own definitions copied in
//! tests/data/asim (each file names its source and commit):
//! - ASimNetworkSessionLogs.columns.tsv: the native table's columns (the Azure Monitor
//!   table reference page, which wins over the repository's JSON copy). Every top-level key
//!   must be a column, with a JSON value of the column's type.
//! - ASimNetworkSessionNative.yaml: the native parser, which adds aliases at query time
//!   (`Dvc`, `Src`, `Dst`, `EventSchema`, ...). It is applied to each record as written
//!   there, after ingestion (which keeps the columns and sets `Type` to the table name).
//! - ASimTester.NetworkSession.csv: the ASIM field list. After the parser, every Mandatory
//!   field is present and non-empty, every field has the listed type, enumerated fields are
//!   within their lists and logical types (IP address, hostname, FQDN, IANA protocol
//!   keyword, schema version) hold, as Microsoft's ASimDataTester checks them.
//!
//! One deliberate exception, asserted as such: `EventProduct`/`EventVendor` are enumerated
//! in the field list as the products Microsoft has registered ASIM parsers for;
//! `flowsentry` cannot be on that list until Microsoft adds it, so those two are checked to
//! be exactly `flowsentry` instead.

mod common;

use common::*;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::Path;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/asim");

struct AsimField {
    column_type: String,
    class: String,
    logical_type: String,
    values: Vec<String>,
}

/// The NetworkSession rows of the ASIM field list.
fn asim_fields() -> HashMap<String, AsimField> {
    let text = std::fs::read_to_string(format!("{DATA}/ASimTester.NetworkSession.csv")).unwrap();
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    assert_eq!(lines.next(), Some("ColumnName,ColumnType,Class,Schema,LogicalType,ListOfValues,Aliased"));
    let mut out = HashMap::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 7, "unexpected row {line}");
        assert_eq!(f[3], "NetworkSession", "{line}");
        let values = if f[5].is_empty() { Vec::new() } else { f[5].split('|').map(str::to_string).collect() };
        out.insert(
            f[0].to_string(),
            AsimField { column_type: f[1].into(), class: f[2].into(), logical_type: f[4].into(), values },
        );
    }
    assert!(out.len() > 150, "field list too short: {}", out.len());
    out
}

/// Column -> Kusto type of the native table (rows marked repo-only are not columns).
fn table_columns() -> HashMap<String, String> {
    let text = std::fs::read_to_string(format!("{DATA}/ASimNetworkSessionLogs.columns.tsv")).unwrap();
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')).skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 3, "{line}");
        if f[2] != "repo-only" {
            out.insert(f[0].to_string(), f[1].to_string());
        }
    }
    assert!(out.len() > 140, "column list too short: {}", out.len());
    out
}

/// The names the native parser assigns (`project-rename` and `extend` steps) and removes
/// (`project-away`), read from the copied YAML.
fn parser_steps() -> (BTreeSet<String>, BTreeSet<String>) {
    let text = std::fs::read_to_string(format!("{DATA}/ASimNetworkSessionNative.yaml")).unwrap();
    let query = &text[text.find("ParserQuery:").expect("ParserQuery")..];
    let mut assigned = BTreeSet::new();
    let mut removed = BTreeSet::new();
    let mut in_away = false;
    for line in query.lines() {
        let t = line.trim();
        if t.starts_with("| project-away") {
            in_away = true;
            continue;
        }
        if in_away {
            removed.extend(t.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()));
            in_away = false;
            continue;
        }
        if let Some((lhs, _)) = t.split_once(" = ") {
            if lhs.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !t.starts_with("let ") {
                assigned.insert(lhs.to_string());
            }
        }
    }
    (assigned, removed)
}

fn str_of<'a>(r: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    r.get(k).and_then(Value::as_str)
}

/// KQL `coalesce` over string columns: the first non-empty one.
fn coalesce(r: &Map<String, Value>, keys: &[&str]) -> Option<Value> {
    keys.iter().find_map(|k| match r.get(*k) {
        Some(Value::String(s)) if !s.is_empty() => Some(Value::String(s.clone())),
        Some(Value::Null) | None => None,
        Some(Value::String(_)) => None,
        Some(other) => Some(Value::String(other.to_string())),
    })
}

fn set(r: &mut Map<String, Value>, k: &str, v: Option<Value>) {
    match v {
        Some(v) => r.insert(k.to_string(), v),
        None => r.remove(k),
    };
}

/// The names this test implements, step by step, in `apply_native_parser`.
const IMPLEMENTED: &[&str] = &[
    "EventUid",
    "EventSchema",
    "DvcScopeId",
    "EventEndTime",
    "EventStartTime",
    "Dvc",
    "Dst",
    "Src",
    "DvcInterface",
    "Hostname",
    "IpAddr",
    "Rule",
    "Duration",
    "SessionId",
    "User",
    "InnerVlanId",
    "OuterVlanId",
];

/// Ingestion (keep the table's columns; the workspace sets `Type`), then the native
/// parser's steps as ASimNetworkSessionNative.yaml writes them.
fn apply_native_parser(record: &Map<String, Value>, columns: &HashMap<String, String>) -> Map<String, Value> {
    let mut r: Map<String, Value> =
        record.iter().filter(|(k, _)| columns.contains_key(*k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    r.insert("Type".into(), "ASimNetworkSessionLogs".into());
    // project-rename EventUid = _ItemId (a workspace column, not in the record)
    let item = r.remove("_ItemId");
    set(&mut r, "EventUid", item);
    r.insert("EventSchema".into(), "NetworkSession".into());
    let scope = coalesce(&r, &["DvcSubscriptionId"]).or_else(|| coalesce(&r, &["_SubscriptionId"]));
    set(&mut r, "DvcScopeId", scope);
    if !matches!(r.get("EventEndTime"), Some(v) if !v.is_null()) {
        let t = r.get("TimeGenerated").cloned();
        set(&mut r, "EventEndTime", t.clone());
        set(&mut r, "EventStartTime", t);
    }
    let vendor_product = Value::String(format!(
        "{}/{}",
        str_of(&r, "EventVendor").unwrap_or(""),
        str_of(&r, "EventProduct").unwrap_or("")
    ));
    let dvc = if str_of(&r, "EventType") == Some("L2NetworkSession") {
        coalesce(&r, &["DvcFQDN", "DvcHostname", "DvcId", "_ResourceId"])
    } else {
        coalesce(&r, &["DvcFQDN", "DvcHostname", "DvcIpAddr", "DvcId", "_ResourceId"])
    };
    r.insert("Dvc".into(), dvc.unwrap_or(vendor_product));
    let dst = coalesce(&r, &["DstFQDN", "DstHostname", "DstIpAddr", "DstDvcId"]);
    set(&mut r, "Dst", dst);
    let src = coalesce(&r, &["SrcFQDN", "SrcHostname", "SrcIpAddr", "SrcDvcId"]);
    set(&mut r, "Src", src);
    if coalesce(&r, &["DvcInterface"]).is_none() {
        let i = coalesce(&r, &["DvcInboundInterface", "DvcOutboundInterface"]);
        set(&mut r, "DvcInterface", i);
    }
    let endpoint_inbound =
        str_of(&r, "EventType") == Some("EndpointNetworkSession") && str_of(&r, "NetworkDirection") == Some("Inbound");
    let hostname = r.get(if endpoint_inbound { "SrcHostname" } else { "DstHostname" }).cloned();
    set(&mut r, "Hostname", hostname);
    let ip = r.get(if endpoint_inbound { "DstIpAddr" } else { "SrcIpAddr" }).cloned();
    set(&mut r, "IpAddr", ip);
    let rule = coalesce(&r, &["NetworkRuleName", "NetworkRuleNumber"]);
    set(&mut r, "Rule", rule);
    for (alias, of) in [
        ("Duration", "NetworkDuration"),
        ("SessionId", "NetworkSessionId"),
        ("User", "DstUsername"),
        ("InnerVlanId", "SrcVlanId"),
        ("OuterVlanId", "DstVlanId"),
    ] {
        let v = r.get(of).cloned();
        set(&mut r, alias, v);
    }
    for gone in ["TenantId", "SourceSystem", "DvcSubscriptionId", "_SubscriptionId", "_ResourceId"] {
        r.remove(gone);
    }
    r
}

/// Whether a JSON value has the Kusto type (`string`, `int`, `long`, `real`, `bool`,
/// `datetime`, `dynamic`), as ingestion would accept it without conversion.
fn has_type(v: &Value, kusto: &str) -> bool {
    match kusto {
        "string" => v.is_string(),
        "int" => v.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        "long" => v.is_i64() || v.is_u64() && v.as_u64().is_some_and(|n| i64::try_from(n).is_ok()),
        "real" => v.is_number(),
        "bool" => v.is_boolean(),
        "datetime" => v.as_str().is_some_and(is_rfc3339_utc),
        "dynamic" => v.is_object() || v.is_array(),
        other => panic!("unknown Kusto type {other}"),
    }
}

fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && s.ends_with('Z')
        && s[..19].bytes().enumerate().all(|(i, c)| matches!(i, 4 | 7 | 10 | 13 | 16) || c.is_ascii_digit())
}

/// ASimDataTester's regular expressions.
fn is_asim_hostname(s: &str) -> bool {
    (1..=61).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        || s.parse::<IpAddr>().is_ok()
}

fn is_asim_fqdn(s: &str) -> bool {
    let labels: Vec<&str> = s.split('.').collect();
    let Some((tld, rest)) = labels.split_last() else { return false };
    !rest.is_empty()
        && rest.iter().all(|l| {
            let b = l.as_bytes();
            (1..=63).contains(&b.len())
                && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        })
        && (2..=63).contains(&tld.len())
        && tld.bytes().all(|c| c.is_ascii_alphabetic())
}

/// IANA protocol keywords, from netbase's /etc/protocols (the IANA registry's Keyword
/// column is the alias in its third field).
fn iana_keywords() -> BTreeSet<String> {
    let text = std::fs::read_to_string("/etc/protocols")
        .expect("/etc/protocols (Debian package netbase, installed by tests/install-deps.sh test)");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().nth(2).filter(|k| !k.starts_with('#')).map(str::to_string))
        .collect()
}

#[derive(Default)]
struct Report {
    records: usize,
    problems: BTreeMap<String, usize>,
    examples: BTreeMap<String, String>,
}

impl Report {
    fn fail(&mut self, what: String, record: &Map<String, Value>) {
        *self.problems.entry(what.clone()).or_insert(0) += 1;
        self.examples.entry(what).or_insert_with(|| Value::Object(record.clone()).to_string());
    }
}

fn check_record(
    raw: &Map<String, Value>,
    columns: &HashMap<String, String>,
    fields: &HashMap<String, AsimField>,
    keywords: &BTreeSet<String>,
    report: &mut Report,
) {
    report.records += 1;
    for (k, v) in raw {
        match columns.get(k) {
            None => report.fail(format!("top-level key {k} is not a column of ASimNetworkSessionLogs"), raw),
            Some(t) if !has_type(v, t) => report.fail(format!("{k}: not of the table's type {t}"), raw),
            Some(_) => {}
        }
    }
    let r = apply_native_parser(raw, columns);
    for (name, f) in fields {
        let value = r.get(name);
        let empty = match value {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            _ => false,
        };
        if empty {
            if f.class == "Mandatory" {
                report.fail(format!("Mandatory {name} missing or empty"), raw);
            }
            continue;
        }
        let v = value.unwrap();
        if !has_type(v, &f.column_type) {
            report.fail(format!("{name}: not of ASIM type {}", f.column_type), raw);
        }
        let text = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
        match f.logical_type.as_str() {
            "Enumerated" if !f.values.is_empty() && !f.values.contains(&text) => {
                if matches!(name.as_str(), "EventProduct" | "EventVendor") {
                    if text != "flowsentry" {
                        report.fail(format!("{name} is {text:?}, not flowsentry"), raw);
                    }
                } else {
                    report.fail(format!("{name}: {text:?} not in its list"), raw);
                }
            }
            "IP Address" if text.parse::<IpAddr>().is_err() => report.fail(format!("{name}: not an IP address"), raw),
            "Hostname" if !is_asim_hostname(&text) => report.fail(format!("{name}: not an ASIM hostname"), raw),
            "FQDN" if !is_asim_fqdn(&text) => report.fail(format!("{name}: not an FQDN"), raw),
            "NetworkProtocol" if !keywords.contains(&text) && text.parse::<u8>().is_err() => {
                report.fail(format!("{name}: {text:?} is not an IANA protocol keyword"), raw)
            }
            "SchemaVersion" if !text.split('.').all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit())) => {
                report.fail(format!("{name}: not a version"), raw)
            }
            _ => {}
        }
    }
    // The Recommended fields a sensor can know are filled.
    for name in ["EventSeverity", "DvcHostname", "SrcIpAddr", "DstIpAddr"] {
        if !r.contains_key(name) {
            report.fail(format!("Recommended {name} not filled"), raw);
        }
    }
    if str_of(&r, "EventResult") == Some("Failure") && !r.contains_key("EventResultDetails") {
        report.fail("failed session without EventResultDetails".into(), raw);
    }
}

fn records_of(pcap: &Path, extra: &[&str]) -> Vec<Map<String, Value>> {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = scratch(&format!("asim-conformance-{}", RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    let records = dir.join("records.jsonl");
    let alerts = dir.join("alerts.jsonl");
    let mut args = vec![
        "replay".to_string(),
        pcap.to_str().unwrap().to_string(),
        "--records".into(),
        records.to_str().unwrap().into(),
        "--alerts".into(),
        alerts.to_str().unwrap().into(),
        "-q".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&argv);
    assert!(out.status.success(), "{}: {}", pcap.display(), stderr(&out));
    let text = std::fs::read_to_string(&records).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    json_lines(&text).into_iter().map(|v| v.as_object().unwrap().clone()).collect()
}

#[test]
fn native_parser_copy_is_fully_implemented_here() {
    let (assigned, removed) = parser_steps();
    let implemented: BTreeSet<String> = IMPLEMENTED.iter().map(|s| s.to_string()).collect();
    assert_eq!(assigned, implemented, "the parser copy assigns other fields than this test applies");
    let expect: BTreeSet<String> =
        ["TenantId", "SourceSystem", "DvcSubscriptionId", "_SubscriptionId", "_ResourceId"].map(String::from).into();
    assert_eq!(removed, expect);
}

#[test]
fn checker_catches_what_it_must() {
    let (columns, fields, keywords) = (table_columns(), asim_fields(), iana_keywords());
    assert!(keywords.contains("TCP") && keywords.contains("IPv6-ICMP") && !keywords.contains("ICMPv6"));
    let pcap = capture("demo.pcap");
    let good = records_of(&pcap, &["--sensor-name", "checker"]).remove(0);
    let mut report = Report::default();
    check_record(&good, &columns, &fields, &keywords, &mut report);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    // Each mutation must be reported.
    type Mutation = Box<dyn Fn(&mut Map<String, Value>)>;
    let mutations: Vec<(&str, Mutation)> = vec![
        ("not a column", Box::new(|r| _ = r.insert("FlowsentryConnState".into(), "SF".into()))),
        ("EventSchema is not a column", Box::new(|r| _ = r.insert("EventSchema".into(), "NetworkSession".into()))),
        ("Mandatory EventCount", Box::new(|r| _ = r.remove("EventCount"))),
        ("bad enum", Box::new(|r| _ = r.insert("EventResult".into(), "Fine".into()))),
        ("bad severity", Box::new(|r| _ = r.insert("EventSeverity".into(), "Info".into()))),
        ("int as string", Box::new(|r| _ = r.insert("DstPortNumber".into(), "80".into()))),
        ("bool as string", Box::new(|r| _ = r.insert("TcpFlagsSyn".into(), "true".into()))),
        ("ICMPv6 spelling", Box::new(|r| _ = r.insert("NetworkProtocol".into(), "ICMPv6".into()))),
        ("bad IP", Box::new(|r| _ = r.insert("SrcIpAddr".into(), "host-a".into()))),
        ("bad hostname", Box::new(|r| _ = r.insert("DvcHostname".into(), "a.b".into()))),
        ("other vendor", Box::new(|r| _ = r.insert("EventVendor".into(), "Contoso".into()))),
        ("failure without details", Box::new(|r| _ = r.insert("EventResult".into(), "Failure".into()))),
    ];
    for (what, mutate) in mutations {
        let mut bad = good.clone();
        bad.remove("EventResultDetails");
        mutate(&mut bad);
        let mut report = Report::default();
        check_record(&bad, &columns, &fields, &keywords, &mut report);
        assert!(!report.problems.is_empty(), "{what}: not caught");
    }
}

#[test]
fn every_record_of_every_capture_conforms() {
    let (columns, fields, keywords) = (table_columns(), asim_fields(), iana_keywords());
    let mut report = Report::default();
    let mut per_capture = Vec::new();
    let mut seen_keys: BTreeSet<String> = BTreeSet::new();
    for pcap in all_captures() {
        // With a configured sensor address, and as a plain replay without one.
        for extra in [&["--sensor-name", "span1.example.net", "--sensor-ip", "192.0.2.250"][..], &[][..]] {
            let recs = records_of(&pcap, extra);
            assert!(!recs.is_empty(), "{}: no records", pcap.display());
            for r in &recs {
                seen_keys.extend(r.keys().cloned());
                check_record(r, &columns, &fields, &keywords, &mut report);
            }
            per_capture.push((pcap.file_name().unwrap().to_string_lossy().into_owned(), recs.len()));
        }
    }
    eprintln!("checked {} records: {per_capture:?}", report.records);
    eprintln!("top-level keys seen: {seen_keys:?}");
    let problems: Vec<String> =
        report.problems.iter().map(|(what, n)| format!("{n} x {what}; e.g. {}", report.examples[what])).collect();
    assert!(problems.is_empty(), "{} kinds of problems:\n{}", problems.len(), problems.join("\n"));
    // The records use the table's own columns where they fit.
    for k in
        ["NetworkConnectionHistory", "TcpFlagsSyn", "EventResultDetails", "DvcIpAddr", "DvcFQDN", "NetworkIcmpType"]
    {
        assert!(seen_keys.contains(k), "no record carried {k}");
    }
}
