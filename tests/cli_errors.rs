//! Every error — usage, config file, capture, output — is one line starting
//! `flowsentry: error:`, names the flag or the config key (with file:line:column),
//! suggests the closest valid name, shows no Rust type names, and exits 2.

mod common;
use common::*;
use std::path::Path;

/// Runs flowsentry expecting a usage-class failure; returns its single error line.
fn error_line(args: &[&str]) -> String {
    let o = run(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?} should exit 2: {err}");
    assert!(o.stdout.is_empty(), "{args:?} wrote to stdout");
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line:\n{err}");
    let line = err.trim_end().to_string();
    assert!(line.starts_with("flowsentry: error: "), "{line}");
    for rust in ["usize", "u64", "i32", "f64", "struct ", "Error {", "os error", "Usage:", "tip:"] {
        assert!(!line.contains(rust), "{args:?}: Rust or clap internals in {line:?}");
    }
    line
}

fn config(dir: &Path, text: &str) -> String {
    let p = dir.join("flowsentry.toml");
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn usage_mistakes_are_one_line_with_the_flag_and_a_suggestion() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["replay", "--recrods", "r.jsonl", "a.pcap"],
            "unknown flag '--recrods' for replay; did you mean '--records'?",
        ),
        (&["replya", "a.pcap"], "unknown command 'replya'; did you mean 'replay'?"),
        (
            &["replay", "--rules", "sentinal", "a.pcap"],
            "invalid value 'sentinal' for --rules: one of all, sentinel, enhanced; did you mean 'sentinel'?",
        ),
        (&["replay", "--max-flows", "many", "a.pcap"], "--max-flows: 'many' is not a whole number in range"),
        (&["replay", "--max-flows", "-5", "a.pcap"], "--max-flows: '-5' is not a whole number in range"),
        (&["replay", "--tcp-timeout", "-1", "a.pcap"], "--tcp-timeout must be a positive number of seconds, got -1"),
        (&["replay", "--udp-timeout", "soon", "a.pcap"], "--udp-timeout: 'soon' is not a number of seconds"),
        (&["live", "-i", "lo", "--snaplen", "9999999999"], "--snaplen"),
        (&["replay", "--max-flows", "0", "a.pcap"], "--max-flows must be between 1 and 50000000, got 0"),
        (&["replay", "--udp-timeout=-3", "a.pcap"], "--udp-timeout must be a positive number of seconds, got -3"),
        (&["replay", "--home-net", "10.0.0.0/99", "a.pcap"], "10.0.0.0/99"),
        (&["live", "-i", "lo", "--snaplen", "10"], "--snaplen must be between 64 and 262144 bytes, got 10"),
        (&["replay"], "replay needs a capture to read"),
        (&["live"], "live capture needs an interface"),
        (&[], "no command given"),
        (&["live", "-i", "lo", "--records"], "--records needs a value"),
        (&["live", "-i", "lo", "extra"], "unexpected argument 'extra'"),
        (&["completions", "tcsh"], "invalid value 'tcsh'"),
        (&["replay", "--records", "same.jsonl", "--alerts", "same.jsonl", "a.pcap"], "give them different files"),
    ];
    for (args, want) in cases {
        let line = error_line(args);
        assert!(line.contains(want), "{args:?}: {line:?} lacks {want:?}");
    }
}

#[test]
fn config_file_errors_name_file_line_column_and_key() {
    let dir = scratch("cli-config-errors");
    // A typo'd [enhanced] key: the closest key, not the 27 valid ones.
    let c = config(&dir, "rules = \"all\"\n\n[enhanced]\nscan_max_sourcs = 100\n");
    let line = error_line(&["replay", "-c", &c, "a.pcap"]);
    assert_eq!(
        line,
        format!("flowsentry: error: {c}:4:1: unknown key 'enhanced.scan_max_sourcs'; did you mean 'scan_max_sources'?")
    );
    // A key in the wrong table.
    let c = config(&dir, "interface = \"eth1\"\n");
    let line = error_line(&["live", "-c", &c]);
    assert!(line.ends_with(":1:1: unknown key 'interface'; did you mean 'interface' under [capture]?"), "{line}");
    // Wrong type: in words.
    let c = config(&dir, "[flow]\nmax_flows = \"lots\"\n");
    let line = error_line(&["replay", "-c", &c, "a.pcap"]);
    assert!(
        line.contains(&format!("{c}:2:13: flow.max_flows: invalid type: string \"lots\", expected a whole number")),
        "{line}"
    );
    // A valid number out of range: the key and where it is.
    let c = config(&dir, "[flow]\nmax_flows = 0\n");
    let line = error_line(&["replay", "-c", &c, "a.pcap"]);
    assert!(line.ends_with(&format!("{c}:2:1: flow.max_flows must be between 1 and 50000000, got 0")), "{line}");
    let c = config(&dir, "[enhanced]\nbeacon_threshold = 7.5\n");
    let line = error_line(&["replay", "-c", &c, "a.pcap"]);
    assert!(line.contains(&format!("{c}:2:1: enhanced.beacon_threshold")), "{line}");
    let c = config(&dir, "rules = \"sentinal\"\n");
    let line = error_line(&["replay", "-c", &c, "a.pcap"]);
    assert!(
        line.contains(&format!(
            "{c}:1:1: rules must be all, sentinel or enhanced, not 'sentinal'; did you mean 'sentinel'?"
        )),
        "{line}"
    );
    // The same setting given as a flag is named as the flag.
    let c = config(&dir, "[flow]\nmax_flows = 10\n");
    let line = error_line(&["replay", "-c", &c, "--max-flows", "0", "a.pcap"]);
    assert!(line.ends_with("--max-flows must be between 1 and 50000000, got 0"), "{line}");
    // Syntax errors and unreadable files.
    let c = config(&dir, "[flow\nmax_flows = 1\n");
    let line = error_line(&["replay", "-c", &c, "a.pcap"]);
    assert!(line.contains(&format!("{c}:1:")), "{line}");
    let line = error_line(&["replay", "-c", "/nonexistent/flowsentry.toml", "a.pcap"]);
    assert_eq!(
        line,
        "flowsentry: error: cannot read config file /nonexistent/flowsentry.toml: no such file or directory"
    );
    // The new [sentinel] table is checked like the others.
    let c = config(&dir, "[sentinel]\nportscan_max_sources = 0\n");
    let line = error_line(&["replay", "-c", &c, "a.pcap"]);
    assert!(line.contains(&format!("{c}:2:1: sentinel.portscan_max_sources must be between 1 and 50000000")), "{line}");
}

#[test]
fn capture_and_output_errors_the_readme_shows_are_one_line() {
    let dir = scratch("cli-readme-errors");
    let line = error_line(&["replay", "/tmp/flowsentry-no-such-file.pcap"]);
    assert!(line.contains("cannot open capture file /tmp/flowsentry-no-such-file.pcap"), "{line}");
    let text = dir.join("notes.txt");
    std::fs::write(&text, "not a capture at all\n").unwrap();
    let line = error_line(&["replay", text.to_str().unwrap()]);
    assert!(line.contains(text.to_str().unwrap()), "{line}");
    let line = error_line(&["live", "-i", "nosuchif0"]);
    assert!(line.contains("interface nosuchif0: no such interface; available: "), "{line}");
    let line = error_line(&["replay", "--records", "/nonexistent/dir/r.jsonl", capture("demo.pcap").to_str().unwrap()]);
    assert_eq!(
        line,
        "flowsentry: error: cannot open records output /nonexistent/dir/r.jsonl: no such file or directory"
    );
}
