//! deploy/sentinel/ checked without Azure, against Microsoft's published definitions
//! (tests/data/azure, tests/data/sentinel, tests/data/asim: copies with source and commit)
//! and against the same Rust definitions the writers use (output::schema::COLUMNS for the
//! records, detect::alert::ALERT_COLUMNS for the alerts), so the templates cannot drift
//! from what flowsentry writes:
//! - the ARM templates and the analytic rule parse and have the shape the REST specs and
//!   Sentinel's template validation require;
//! - the DCR's stream declarations are exactly the columns flowsentry writes, typed;
//! - every column the transformation writes is a column of its table with that type;
//! - the alerts table is exactly the alert columns, and both match every line the real
//!   binary writes over the bundled and shared captures and synthetic scenarios;
//! - alerts point at their sessions: every sampled NetworkSessionId is a record of the same
//!   run, of the alert's source (and, for beacons, destination and port).
//!
//! `FLOWSENTRY_WRITE_DEPLOY=1 cargo test --release --test sentinel_deploy` rewrites the
//! generated parts (stream and table columns of flowsentry-dcr.json, the whole
//! flowsentry-alert-rule.json) from the Rust definitions and the YAML rule.

mod detection_common;

use detection_common::{flowsentry, json_lines, repo, scratch, shared_pcap, synth};
use flowsentry::detect::alert::{alert_column, ALERT_COLUMNS, ALERT_STREAM, ALERT_TABLE};
use flowsentry::output::schema::{self, Column, KustoType};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const DCR: &str = "deploy/sentinel/flowsentry-dcr.json";
const ASSOCIATE: &str = "deploy/sentinel/flowsentry-associate.json";
const RULE_YAML: &str = "deploy/sentinel/flowsentry-alerts.yaml";
const RULE_ARM: &str = "deploy/sentinel/flowsentry-alert-rule.json";
const RECORD_STREAM: &str = "Custom-FlowsentryRecords";

fn write_mode() -> bool {
    std::env::var_os("FLOWSENTRY_WRITE_DEPLOY").is_some()
}

fn read_json(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel} is not valid JSON: {e}"))
}

fn write_json(rel: &str, v: &Value) {
    let mut text = serde_json::to_string_pretty(v).unwrap();
    text.push('\n');
    std::fs::write(repo().join(rel), text).unwrap();
}

/// A YAML file parsed by PyYAML (python3-yaml), as JSON.
fn read_yaml(rel: &str) -> Value {
    let o = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1], encoding='utf-8')), sys.stdout)",
        ])
        .arg(repo().join(rel))
        .output()
        .expect("run python3 (with python3-yaml; see tests/install-deps.sh)");
    assert!(o.status.success(), "{rel} does not parse as YAML: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn azure() -> Value {
    read_json("tests/data/azure/published-definitions.json")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}")).iter().map(|s| s.as_str().unwrap().to_owned()).collect()
}

fn resource<'a>(template: &'a Value, ty: &str) -> &'a Value {
    let found: Vec<&Value> = template["resources"].as_array().unwrap().iter().filter(|r| r["type"] == ty).collect();
    assert_eq!(found.len(), 1, "{ty}: expected one resource");
    found[0]
}

/// A column type as the Tables API spells it.
fn table_type(k: KustoType) -> &'static str {
    match k {
        KustoType::Bool => "boolean",
        KustoType::DateTime => "dateTime",
        other => other.as_str(),
    }
}

fn columns_json(cols: &[(String, String)]) -> Value {
    Value::Array(cols.iter().map(|(n, t)| json!({"name": n, "type": t})).collect())
}

fn columns_of(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .unwrap_or_else(|| panic!("columns: not an array: {v}"))
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c["type"].as_str().unwrap().to_owned()))
        .collect()
}

/// The columns the agent fills itself when the incoming stream declares them.
fn agent_columns() -> Vec<(String, String)> {
    let a = azure();
    ["FilePath", "Computer"]
        .iter()
        .map(|n| (n.to_string(), a["jsonLogs"]["agentColumns"][n].as_str().unwrap().to_owned()))
        .collect()
}

fn expected_record_stream() -> Vec<(String, String)> {
    schema::COLUMNS.iter().map(|c| (c.name.to_owned(), c.kind.dcr_type().to_owned())).collect()
}

fn expected_alert_stream() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> =
        ALERT_COLUMNS.iter().map(|c| (c.name.to_owned(), c.kind.dcr_type().to_owned())).collect();
    v.extend(agent_columns());
    v
}

fn expected_alert_table() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> =
        ALERT_COLUMNS.iter().map(|c| (c.name.to_owned(), table_type(c.kind).to_owned())).collect();
    v.extend(agent_columns());
    v
}

/// The DCR template, with its generated parts rewritten first in write mode.
fn dcr_template() -> Value {
    let mut t = read_json(DCR);
    if write_mode() {
        for r in t["resources"].as_array_mut().unwrap() {
            if r["type"] == "Microsoft.Insights/dataCollectionRules" {
                let decl = &mut r["properties"]["streamDeclarations"];
                decl[RECORD_STREAM]["columns"] = columns_json(&expected_record_stream());
                decl[ALERT_STREAM]["columns"] = columns_json(&expected_alert_stream());
            }
            if r["type"] == "Microsoft.OperationalInsights/workspaces/tables" {
                r["properties"]["schema"]["columns"] = columns_json(&expected_alert_table());
            }
        }
        write_json(DCR, &t);
    }
    t
}

#[test]
fn the_templates_parse_and_deploy_what_the_readme_says() {
    for rel in [DCR, ASSOCIATE, RULE_ARM] {
        let t = read_json(rel);
        assert_eq!(
            t["$schema"], "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
            "{rel}: not a resource-group deployment template"
        );
        assert!(t["resources"].as_array().is_some_and(|r| !r.is_empty()), "{rel}: no resources");
    }
    let t = dcr_template();
    let types: BTreeSet<&str> =
        t["resources"].as_array().unwrap().iter().map(|r| r["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        BTreeSet::from([
            "Microsoft.Insights/dataCollectionEndpoints",
            "Microsoft.Insights/dataCollectionRules",
            "Microsoft.OperationalInsights/workspaces/tables"
        ])
    );
    let a = read_json(ASSOCIATE);
    for r in a["resources"].as_array().unwrap() {
        assert_eq!(r["type"], "Microsoft.Insights/dataCollectionRuleAssociations");
    }
    let names: BTreeSet<&str> =
        a["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    // The endpoint association must carry this name (Azure Monitor's convention).
    assert!(names.contains("configurationAccessEndpoint"), "{names:?}");
    let rule = read_yaml(RULE_YAML);
    assert_eq!(rule["kind"], "Scheduled");
}

#[test]
fn the_dcr_streams_are_exactly_what_flowsentry_writes() {
    let t = dcr_template();
    let dcr = resource(&t, "Microsoft.Insights/dataCollectionRules");
    let decl = &dcr["properties"]["streamDeclarations"];
    let hint = "run FLOWSENTRY_WRITE_DEPLOY=1 cargo test --release --test sentinel_deploy to regenerate";
    assert_eq!(columns_of(&decl[RECORD_STREAM]["columns"]), expected_record_stream(), "records stream; {hint}");
    assert_eq!(columns_of(&decl[ALERT_STREAM]["columns"]), expected_alert_stream(), "alerts stream; {hint}");
    let types = strings(&azure()["dataCollectionRule"]["streamColumnTypes"]);
    let prefix = azure()["dataCollectionRuleStructure"]["streamDeclarationPrefix"].as_str().unwrap().to_owned();
    for (stream, cols) in decl.as_object().unwrap() {
        assert!(stream.starts_with(&prefix), "stream {stream} must begin with {prefix}");
        for (name, ty) in columns_of(&cols["columns"]) {
            assert!(types.contains(&ty), "{stream}.{name}: {ty} is not a DCR column type {types:?}");
        }
    }
}

#[test]
fn the_dcr_reads_the_files_and_routes_them_as_the_rest_spec_allows() {
    let t = dcr_template();
    let spec = azure()["dataCollectionRule"].clone();
    let dcr = resource(&t, "Microsoft.Insights/dataCollectionRules");
    let p = &dcr["properties"];
    assert_eq!(
        p["dataCollectionEndpointId"],
        "[resourceId('Microsoft.Insights/dataCollectionEndpoints', parameters('dataCollectionEndpointName'))]"
    );
    let declared: BTreeSet<&str> = p["streamDeclarations"].as_object().unwrap().keys().map(|k| k.as_str()).collect();
    let mut read_by_stream: HashMap<String, String> = HashMap::new();
    for src in p["dataSources"]["logFiles"].as_array().unwrap() {
        for key in strings(&spec["logFiles"]["required"]) {
            assert!(src.get(&key).is_some(), "logFiles source lacks {key}: {src}");
        }
        let allowed = strings(&spec["logFiles"]["properties"]);
        for key in src.as_object().unwrap().keys() {
            assert!(allowed.contains(key), "logFiles source: {key} is not in the spec");
        }
        assert_eq!(src["format"], "json");
        let streams = strings(&src["streams"]);
        assert_eq!(streams.len(), 1);
        assert!(declared.contains(streams[0].as_str()), "{} is not declared", streams[0]);
        read_by_stream.insert(streams[0].clone(), src["filePatterns"].as_str().unwrap().to_owned());
    }
    // Which files: the single service's, and each flowsentry@IFACE instance's.
    let vars = &t["variables"];
    for (stream, var, file) in
        [(RECORD_STREAM, "recordFiles", "records.jsonl"), (ALERT_STREAM, "alertFiles", "alerts.jsonl")]
    {
        assert_eq!(read_by_stream[stream], format!("[variables('{var}')]"));
        let expr = vars[var].as_str().unwrap();
        assert!(expr.contains(&format!("'/var/log/flowsentry/{file}'")), "{var}: {expr}");
        let instance = vars["copy"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| expr.contains(&format!("variables('{}')", c["name"].as_str().unwrap())))
            .unwrap_or_else(|| panic!("{var} does not use a per-instance copy loop"));
        assert!(instance["input"].as_str().unwrap().contains(&format!("'/var/log/flowsentry/{{0}}/{file}'")));
        assert_eq!(instance["count"], "[length(parameters('sensorInterfaces'))]");
    }
    let dests: Vec<&Value> = p["destinations"]["logAnalytics"].as_array().unwrap().iter().collect();
    assert_eq!(dests.len(), 1);
    for key in dests[0].as_object().unwrap().keys() {
        assert!(strings(&spec["logAnalyticsDestination"]["properties"]).contains(key), "destination: {key}");
    }
    let dest = dests[0]["name"].as_str().unwrap();
    let structure = &azure()["dataCollectionRuleStructure"];
    let mut outputs = BTreeMap::new();
    for flow in p["dataFlows"].as_array().unwrap() {
        for key in flow.as_object().unwrap().keys() {
            assert!(strings(&spec["dataFlow"]["properties"]).contains(key), "dataFlow: {key} is not in the spec");
        }
        assert_eq!(strings(&flow["destinations"]), [dest]);
        let streams = strings(&flow["streams"]);
        assert_eq!(streams.len(), 1, "one stream per flow with a transformation");
        outputs.insert(streams[0].clone(), flow["outputStream"].as_str().unwrap().to_owned());
    }
    let standard = structure["standardTableOutputPrefix"].as_str().unwrap();
    let custom = structure["customTableOutputPrefix"].as_str().unwrap();
    assert_eq!(outputs[RECORD_STREAM], schema::DCR_STREAM);
    assert_eq!(outputs[RECORD_STREAM], format!("{standard}{}", schema::TABLE));
    assert_eq!(outputs[ALERT_STREAM], format!("{custom}{ALERT_TABLE}"));
    assert_eq!(outputs.len(), 2);
}

/// The columns a DCR data flow writes: its transformation's output. Only `source` (the
/// input unchanged) is understood here; another transformation needs its own check.
fn transform_output(flow_stream: &str) -> Vec<(String, String)> {
    let t = dcr_template();
    let p = &resource(&t, "Microsoft.Insights/dataCollectionRules")["properties"];
    let flow = p["dataFlows"].as_array().unwrap().iter().find(|f| strings(&f["streams"]) == [flow_stream]).unwrap();
    assert_eq!(flow["transformKql"], "source", "transformKql changed: teach this test what it writes");
    columns_of(&p["streamDeclarations"][flow_stream]["columns"])
}

/// ASimNetworkSessionLogs columns and types from Microsoft's copy (tests/data/asim).
fn asim_table() -> HashMap<String, String> {
    let text = std::fs::read_to_string(repo().join("tests/data/asim/ASimNetworkSessionLogs.columns.tsv")).unwrap();
    let mut cols = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')).skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() >= 3 && f[2] != "repo-only" {
            cols.insert(f[0].to_owned(), f[1].to_owned());
        }
    }
    assert!(cols.len() > 100, "the table copy lists its columns");
    cols
}

#[test]
fn every_column_the_transformations_write_is_a_column_of_its_table() {
    let asim = asim_table();
    for (name, dcr_type) in transform_output(RECORD_STREAM) {
        let table = asim.get(&name).unwrap_or_else(|| panic!("{name} is not a column of ASimNetworkSessionLogs"));
        let as_dcr = if table == "bool" { "boolean" } else { table.as_str() };
        assert_eq!(as_dcr, dcr_type, "{name}: ASimNetworkSessionLogs has {table}");
    }
    let t = dcr_template();
    let table: HashMap<String, String> =
        columns_of(&resource(&t, "Microsoft.OperationalInsights/workspaces/tables")["properties"]["schema"]["columns"])
            .into_iter()
            .collect();
    for (name, dcr_type) in transform_output(ALERT_STREAM) {
        let ty = table.get(&name).unwrap_or_else(|| panic!("{name} is not a column of {ALERT_TABLE}"));
        let as_dcr = match ty.as_str() {
            "dateTime" => "datetime",
            other => other,
        };
        assert_eq!(as_dcr, dcr_type, "{ALERT_TABLE}.{name}");
    }
}

#[test]
fn the_alerts_table_is_the_alert_columns_every_one_typed() {
    let t = dcr_template();
    let table = resource(&t, "Microsoft.OperationalInsights/workspaces/tables");
    assert_eq!(table["name"], "[format('{0}/{1}', parameters('workspaceName'), variables('alertsTable'))]");
    assert_eq!(t["variables"]["alertsTable"], ALERT_TABLE);
    assert_eq!(table["properties"]["schema"]["name"], "[variables('alertsTable')]");
    let cols = columns_of(&table["properties"]["schema"]["columns"]);
    assert_eq!(cols, expected_alert_table(), "run with FLOWSENTRY_WRITE_DEPLOY=1 to regenerate");
    let types = strings(&azure()["tables"]["columnTypes"]);
    for (name, ty) in &cols {
        assert!(types.contains(ty), "{name}: {ty} is not a Tables API column type");
    }
    assert!(cols.iter().any(|(n, t)| n == "TimeGenerated" && t == "dateTime"), "every table has TimeGenerated");
}

// ---- the real binary's output against the definitions ----

struct Run {
    sensor: String,
    records: Vec<Value>,
    alerts: Vec<Value>,
}

fn replay(dir: &Path, sensor: &str, captures: &[PathBuf], extra: &[&str]) -> Run {
    let (rec, al) = (dir.join(format!("{sensor}.records.jsonl")), dir.join(format!("{sensor}.alerts.jsonl")));
    let o = Command::new(flowsentry())
        .args(["replay", "--quiet", "--sensor-name", sensor, "--records"])
        .arg(&rec)
        .arg("--alerts")
        .arg(&al)
        .args(extra)
        .args(captures)
        .output()
        .expect("run flowsentry");
    assert!(o.status.success(), "{sensor}: {}", String::from_utf8_lossy(&o.stderr));
    Run {
        sensor: sensor.to_owned(),
        records: json_lines(&std::fs::read_to_string(rec).unwrap()),
        alerts: json_lines(&std::fs::read_to_string(al).unwrap()),
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
        && s[..19].bytes().enumerate().all(|(i, c)| [4, 7, 10, 13, 16].contains(&i) || c.is_ascii_digit())
}

/// Does a JSON value fit a column of this type, as the agent parses it?
fn fits(kind: KustoType, v: &Value) -> bool {
    match kind {
        KustoType::String => v.is_string(),
        KustoType::DateTime => v.as_str().is_some_and(is_rfc3339_utc),
        KustoType::Int => v.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        KustoType::Long => v.is_i64() || v.is_u64(),
        KustoType::Real => v.is_f64(),
        KustoType::Bool => v.is_boolean(),
        KustoType::Dynamic => v.is_array() || v.is_object(),
    }
}

fn check_line(what: &str, line: &Value, column: impl Fn(&str) -> Option<&'static Column>, all: &[Column]) {
    let obj = line.as_object().unwrap_or_else(|| panic!("{what}: not an object: {line}"));
    for (k, v) in obj {
        let c = column(k).unwrap_or_else(|| panic!("{what}: key {k} has no column: {line}"));
        assert!(fits(c.kind, v), "{what}: {k} = {v} does not fit a {} column", c.kind.as_str());
    }
    for c in all.iter().filter(|c| c.always) {
        assert!(obj.contains_key(c.name), "{what}: {} missing: {line}", c.name);
    }
}

fn is_uuid_v5(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && s.bytes().all(|c| c == b'-' || c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        && groups[2].starts_with('5')
        && matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b')
}

#[test]
fn every_line_the_binary_writes_fits_the_tables_and_alerts_point_at_their_sessions() {
    let dir = scratch("deploy-lines");
    let mut inputs: Vec<(String, Vec<PathBuf>, Vec<&str>)> = Vec::new();
    let mut bundled: Vec<PathBuf> = std::fs::read_dir(repo().join("captures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    bundled.sort();
    assert!(bundled.len() >= 5, "bundled captures: {bundled:?}");
    // The long-session captures' clients are in 198.51.100.0/24 (captures/README.md): with
    // that home net their beacons, in-session ones included, are scored.
    let long: Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("captures/long-sessions.json")).unwrap()).unwrap();
    let long = long["scenarios"].as_object().expect("long-sessions.json scenarios");
    for p in bundled {
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        let extra = if long.contains_key(&name) { vec!["--home-net", "198.51.100.0/24"] } else { vec![] };
        inputs.push((name, vec![p], extra));
    }
    let manifest = std::fs::read_to_string(shared_pcap("MANIFEST.md")).unwrap_or_default();
    let mut shared: Vec<PathBuf> = std::fs::read_dir(repo().join("../shared/pcaps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    shared.sort();
    assert!(shared.len() >= 5 && !manifest.is_empty(), "shared captures: {shared:?}");
    for p in shared {
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        // The Empire C2 is internal: beaconing is scored with --beacon-internal.
        let extra = if name.contains("empire") { vec!["--beacon-internal"] } else { vec![] };
        inputs.push((name, vec![p], extra));
    }
    for scenario in ["beacon_60s_exact", "beacon_udp", "stealth_scans", "horizontal_sweep", "masscan_like", "ipv6_scan"]
    {
        inputs.push((scenario.into(), vec![synth(&dir, scenario, &[])], vec![]));
    }

    let mut seen_alert_keys: BTreeSet<String> = BTreeSet::new();
    let mut alert_ids: HashSet<String> = HashSet::new();
    let mut session_ids: HashSet<String> = HashSet::new();
    let (mut records, mut alerts) = (0usize, 0usize);
    for (i, (name, captures, extra)) in inputs.iter().enumerate() {
        let run = replay(&dir, &format!("sensor{i}"), captures, extra);
        let mut by_id: HashMap<&str, &Value> = HashMap::new();
        for r in &run.records {
            check_line(&format!("{name} record"), r, schema::column, schema::COLUMNS);
            let id = r["NetworkSessionId"].as_str().unwrap();
            assert!(session_ids.insert(id.to_owned()), "{name}: NetworkSessionId {id} repeats across runs");
            by_id.insert(id, r);
        }
        for a in &run.alerts {
            check_line(&format!("{name} alert"), a, alert_column, ALERT_COLUMNS);
            seen_alert_keys.extend(a.as_object().unwrap().keys().cloned());
            assert_eq!(a["Dvc"], run.sensor.as_str());
            let id = a["AlertId"].as_str().unwrap();
            assert!(is_uuid_v5(id), "{name}: AlertId {id} is not a version 5 UUID");
            assert!(alert_ids.insert(id.to_owned()), "{name}: AlertId {id} repeats");
            let sessions = strings(&a["NetworkSessionIds"]);
            assert!((1..=10).contains(&sessions.len()), "{name}: {} sessions in {a}", sessions.len());
            for s in &sessions {
                let r = by_id.get(s.as_str()).unwrap_or_else(|| panic!("{name}: {s} is not a record of this run: {a}"));
                assert_eq!(r["SrcIpAddr"], a["SrcIpAddr"], "{name}: session {s} is not the alert's source's: {a}");
                if a["AlertType"] == "Beaconing" {
                    assert_eq!(
                        (&r["DstIpAddr"], &r["DstPortNumber"]),
                        (&a["DstIpAddr"], &a["DstPortNumber"]),
                        "{name}: {a}"
                    );
                }
            }
        }
        records += run.records.len();
        alerts += run.alerts.len();
    }
    eprintln!("{} runs: {records} records, {alerts} alerts checked", inputs.len());
    assert!(records > 5_000 && alerts > 20, "{records} records, {alerts} alerts");
    // Every alert column is written by some detector over these inputs: the list (and the
    // table) has no column flowsentry never writes.
    let declared: BTreeSet<String> = ALERT_COLUMNS.iter().map(|c| c.name.to_owned()).collect();
    let unseen: Vec<&String> = declared.difference(&seen_alert_keys).collect();
    assert!(unseen.is_empty(), "alert columns no alert carried: {unseen:?}");
}

#[test]
fn alert_ids_and_session_ids_are_stable_for_a_replay_and_differ_across_sensors() {
    let dir = scratch("deploy-ids");
    let demo = vec![repo().join("captures/demo.pcap")];
    let read = |sensor: &str, tag: &str| {
        let d = dir.join(tag);
        std::fs::create_dir_all(&d).unwrap();
        replay(&d, sensor, &demo, &[]);
        (
            std::fs::read(d.join(format!("{sensor}.records.jsonl"))).unwrap(),
            std::fs::read(d.join(format!("{sensor}.alerts.jsonl"))).unwrap(),
        )
    };
    let first = read("span1", "a");
    assert_eq!(read("span1", "b"), first, "a replay is byte-identical, ids included");
    let other = read("span2", "c");
    let ids = |bytes: &[u8], key: &str| -> BTreeSet<String> {
        json_lines(&String::from_utf8_lossy(bytes)).iter().map(|v| v[key].as_str().unwrap().to_owned()).collect()
    };
    assert!(ids(&first.1, "AlertId").is_disjoint(&ids(&other.1, "AlertId")));
    assert!(ids(&first.0, "NetworkSessionId").is_disjoint(&ids(&other.0, "NetworkSessionId")));
    assert!(!ids(&first.1, "AlertId").is_empty());
}

// ---- the analytic rule ----

fn duration_secs(s: &str) -> u64 {
    let (n, unit) = s.split_at(s.len() - 1);
    let n: u64 = n.parse().unwrap_or_else(|_| panic!("duration {s}: expected <number><m|h|d>"));
    let units = &read_json("tests/data/sentinel/detection-template-schema.json")["timeSpan"]["units"];
    n * units[unit].as_u64().unwrap_or_else(|| panic!("duration {s}: unit {unit}"))
}

fn placeholders(format: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = format;
    while let Some(i) = rest.find("{{") {
        let after = &rest[i + 2..];
        match after.find("}}") {
            Some(j) if !after[..j].contains(['{', '}']) => {
                out.push(after[..j].to_owned());
                rest = &after[j + 2..];
            }
            _ => rest = after,
        }
    }
    out
}

fn matches_identifier(s: &str, leading_underscore: bool) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || (leading_underscore && c == '_'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[test]
fn the_analytic_rule_passes_sentinels_template_validation() {
    let v = read_json("tests/data/sentinel/detection-template-schema.json");
    let rule = read_yaml(RULE_YAML);
    let obj = rule.as_object().unwrap();
    for key in strings(&v["requiredKeys"]) {
        assert!(obj.contains_key(&key), "the rule lacks required key {key}");
    }
    // The list: every one of these is present, optional or not.
    for key in ["tactics", "relevantTechniques", "entityMappings", "version"] {
        assert!(obj.contains_key(key), "the rule lacks {key}");
    }
    let known: BTreeSet<String> = strings(&v["requiredKeys"]).into_iter().chain(strings(&v["optionalKeys"])).collect();
    for key in obj.keys() {
        assert!(known.contains(key), "{key} is not a key of Sentinel's scheduled template model");
    }
    let id = rule["id"].as_str().unwrap();
    assert!(id.len() == 36 && id.split('-').map(str::len).eq([8, 4, 4, 4, 12]), "id {id} is not a GUID");
    assert!(strings(&v["kind"]).contains(&rule["kind"].as_str().unwrap().to_owned()));
    assert!(rule["name"].as_str().unwrap().len() <= v["nameMaxLength"].as_u64().unwrap() as usize);
    assert!(rule["description"].as_str().unwrap().len() <= v["descriptionMaxLength"].as_u64().unwrap() as usize);
    let q = rule["query"].as_str().unwrap();
    let ql = &v["queryLength"];
    assert!((ql[0].as_u64().unwrap() as usize..=ql[1].as_u64().unwrap() as usize).contains(&q.len()));
    assert!(strings(&v["severity"]).contains(&rule["severity"].as_str().unwrap().to_owned()));
    for c in rule["requiredDataConnectors"].as_array().unwrap() {
        for key in strings(&v["requiredDataConnectorRequiredKeys"]) {
            assert!(c.get(&key).is_some(), "requiredDataConnectors entry lacks {key}");
        }
    }
    let (freq, period) =
        (duration_secs(rule["queryFrequency"].as_str().unwrap()), duration_secs(rule["queryPeriod"].as_str().unwrap()));
    let ts = &v["timeSpan"];
    for d in [freq, period] {
        assert!((ts["minSeconds"].as_u64().unwrap()..=ts["maxSeconds"].as_u64().unwrap()).contains(&d));
    }
    assert!(period >= freq, "queryPeriod must be >= queryFrequency");
    if period >= v["longPeriodQuery"]["periodSeconds"].as_u64().unwrap() {
        assert!(freq >= v["longPeriodQuery"]["minFrequencySeconds"].as_u64().unwrap());
    }
    assert!(strings(&v["triggerOperator"]).contains(&rule["triggerOperator"].as_str().unwrap().to_owned()));
    let th = rule["triggerThreshold"].as_i64().unwrap();
    assert!((v["triggerThresholdRange"][0].as_i64().unwrap()..=v["triggerThresholdRange"][1].as_i64().unwrap())
        .contains(&th));
    let version = rule["version"].as_str().unwrap();
    assert!(
        version.len() <= 20
            && version.split('.').count() == 3
            && version.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    );

    // Tactics, and a matching tactic for every technique.
    let tactics = strings(&rule["tactics"]);
    let all_tactics = strings(&v["tactics"]);
    for t in &tactics {
        assert!(all_tactics.contains(t), "{t} is not an AttackTactic");
    }
    for technique in strings(&rule["relevantTechniques"]) {
        let parent = technique.split('.').next().unwrap();
        let of: Vec<String> = v["techniquesByTactic"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, list)| list.as_array().is_some_and(|l| l.iter().any(|x| x == parent)))
            .map(|(t, _)| t.clone())
            .filter(|t| all_tactics.contains(t))
            .collect();
        assert!(!of.is_empty(), "{technique}: no tactic");
        for t in of {
            assert!(tactics.contains(&t), "{technique} needs tactic {t}");
        }
    }

    // Entity mappings: valid identifiers, and columns the alerts table has.
    let em = &v["entityMappings"];
    let maps = rule["entityMappings"].as_array().unwrap();
    assert!((em["count"][0].as_u64().unwrap()..=em["count"][1].as_u64().unwrap()).contains(&(maps.len() as u64)));
    let mut ip_columns = Vec::new();
    for m in maps {
        let ty = m["entityType"].as_str().unwrap();
        let spec = &em["identifiers"][ty];
        assert!(spec.is_object(), "entity type {ty} unknown");
        let fields = m["fieldMappings"].as_array().unwrap();
        assert!((em["fieldMappingsCount"][0].as_u64().unwrap()..=em["fieldMappingsCount"][1].as_u64().unwrap())
            .contains(&(fields.len() as u64)));
        let mut used = BTreeSet::new();
        for f in fields {
            let (ident, column) = (f["identifier"].as_str().unwrap(), f["columnName"].as_str().unwrap());
            assert!(strings(&spec["identifiers"]).contains(&ident.to_owned()), "{ty}: identifier {ident}");
            assert!(used.insert(ident.to_owned()), "{ty}: {ident} twice");
            assert!(matches_identifier(column, true) && column.len() <= 500, "column name {column}");
            assert!(alert_column(column).is_some(), "entity column {column} is not a column of {ALERT_TABLE}");
            if ty == "IP" {
                ip_columns.push(column.to_owned());
            }
        }
        let required = spec["requiredOneOf"].as_array().unwrap();
        assert!(required.iter().any(|set| strings(set).iter().all(|i| used.contains(i))), "{ty}: required identifiers");
    }
    assert_eq!(ip_columns, ["SrcIpAddr", "DstIpAddr"], "the source and destination IPs are entities");
    for old in strings(&v["oldEntityColumnNames"]) {
        assert!(!q.contains(&old), "old entity column {old}");
    }

    // Custom details and the alert details override name columns of the table.
    let cd = &v["customDetails"];
    let details = rule["customDetails"].as_object().unwrap();
    assert!(details.len() as u64 <= cd["maxEntries"].as_u64().unwrap());
    for (k, col) in details {
        let col = col.as_str().unwrap();
        assert!(k.len() <= 20 && matches_identifier(k, false), "custom detail key {k}");
        assert!(col.len() <= 500 && matches_identifier(col, true), "custom detail value {col}");
        assert!(alert_column(col).is_some(), "custom detail {k}: {col} is not a column");
    }
    let ado = &v["alertDetailsOverride"];
    let o = rule["alertDetailsOverride"].as_object().unwrap();
    for (k, val) in o {
        assert!(strings(&ado["keys"]).contains(k), "alertDetailsOverride.{k}");
        let val = val.as_str().unwrap();
        if let Some(len) = ado["formatLength"].get(k) {
            assert!((len[0].as_u64().unwrap() as usize..=len[1].as_u64().unwrap() as usize).contains(&val.len()));
            let ph = placeholders(val);
            assert!(ph.len() as u64 <= ado["maxPlaceholders"].as_u64().unwrap(), "{k}: {} placeholders", ph.len());
            for p in ph {
                assert!(alert_column(&p).is_some(), "{k}: {{{{{p}}}}} is not a column");
            }
        } else {
            assert!(alert_column(val).is_some(), "{k}: {val} is not a column");
        }
    }
    assert_eq!(rule["alertDetailsOverride"]["alertSeverityColumnName"], "Severity");
    let groupings = strings(&v["eventGroupingSettings"]["aggregationKind"]);
    assert!(groupings.contains(&rule["eventGroupingSettings"]["aggregationKind"].as_str().unwrap().to_owned()));
    assert_eq!(
        rule["eventGroupingSettings"]["aggregationKind"], "AlertPerResult",
        "one Sentinel alert per flowsentry alert"
    );

    // The query reads the alerts table the connector names.
    assert!(q.trim_start().starts_with(ALERT_TABLE));
    assert!(rule["requiredDataConnectors"][0]["dataTypes"].as_array().unwrap().iter().any(|d| d == ALERT_TABLE));
}

/// The deployable form of the YAML rule: a Microsoft.SecurityInsights/alertRules resource.
fn rule_arm_from_yaml(rule: &Value) -> Value {
    let iso = |s: &str| {
        let secs = duration_secs(s);
        if secs % 86_400 == 0 {
            format!("P{}D", secs / 86_400)
        } else if secs % 3600 == 0 {
            format!("PT{}H", secs / 3600)
        } else {
            format!("PT{}M", secs / 60)
        }
    };
    let operator = match rule["triggerOperator"].as_str().unwrap() {
        "gt" => "GreaterThan",
        "lt" => "LessThan",
        "eq" => "Equal",
        "ne" => "NotEqual",
        other => panic!("triggerOperator {other}"),
    };
    let description = rule["description"].as_str().unwrap().trim().trim_matches('\'').to_owned();
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "metadata": {
            "description": format!("Generated from {RULE_YAML} by tests/sentinel_deploy.rs (FLOWSENTRY_WRITE_DEPLOY=1): the same analytic rule as a deployable scheduled alert rule.")
        },
        "parameters": {
            "workspaceName": {
                "type": "string",
                "metadata": {"description": "Name of the Log Analytics workspace Microsoft Sentinel runs on (in this resource group)."}
            }
        },
        "resources": [{
            "type": "Microsoft.SecurityInsights/alertRules",
            "apiVersion": azure()["scheduledAlertRule"]["apiVersion"],
            "name": rule["id"],
            "kind": rule["kind"],
            "scope": "[format('Microsoft.OperationalInsights/workspaces/{0}', parameters('workspaceName'))]",
            "properties": {
                "displayName": rule["name"],
                "description": description,
                "severity": rule["severity"],
                "enabled": true,
                "query": rule["query"],
                "queryFrequency": iso(rule["queryFrequency"].as_str().unwrap()),
                "queryPeriod": iso(rule["queryPeriod"].as_str().unwrap()),
                "triggerOperator": operator,
                "triggerThreshold": rule["triggerThreshold"],
                "suppressionEnabled": false,
                "suppressionDuration": "PT5H",
                "tactics": rule["tactics"],
                "techniques": rule["relevantTechniques"],
                "entityMappings": rule["entityMappings"],
                "customDetails": rule["customDetails"],
                "alertDetailsOverride": rule["alertDetailsOverride"],
                "eventGroupingSettings": rule["eventGroupingSettings"],
                "incidentConfiguration": {
                    "createIncident": true,
                    "groupingConfiguration": {
                        "enabled": false,
                        "reopenClosedIncident": false,
                        "lookbackDuration": "PT5H",
                        "matchingMethod": "AllEntities",
                        "groupByEntities": [],
                        "groupByAlertDetails": [],
                        "groupByCustomDetails": []
                    }
                }
            }
        }]
    })
}

#[test]
fn the_deployable_rule_is_the_yaml_rule() {
    let want = rule_arm_from_yaml(&read_yaml(RULE_YAML));
    if write_mode() {
        write_json(RULE_ARM, &want);
    }
    assert_eq!(
        read_json(RULE_ARM),
        want,
        "{RULE_ARM} differs from {RULE_YAML}; regenerate with FLOWSENTRY_WRITE_DEPLOY=1"
    );
    let spec = &azure()["scheduledAlertRule"];
    let props = &want["resources"][0]["properties"];
    for key in strings(&spec["required"]) {
        assert!(props.get(&key).is_some(), "scheduled alert rule lacks {key}");
    }
    for key in strings(&spec["incidentConfigurationRequired"]) {
        assert!(props["incidentConfiguration"].get(&key).is_some());
    }
    for key in strings(&spec["groupingConfigurationRequired"]) {
        assert!(props["incidentConfiguration"]["groupingConfiguration"].get(&key).is_some());
    }
    assert!(strings(&spec["triggerOperator"]).contains(&props["triggerOperator"].as_str().unwrap().to_owned()));
}
