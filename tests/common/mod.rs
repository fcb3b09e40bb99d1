//! Shared helpers for the integration tests: run the built binary, find captures,
//! gate root-only tests, wait on conditions with deadlines.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_flowsentry"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A capture made by this project (captures/NAME).
pub fn capture(name: &str) -> PathBuf {
    repo().join("captures").join(name)
}

/// A public capture from ../shared/pcaps (present for developers and in CI).
pub fn shared_pcap(name: &str) -> PathBuf {
    let p = repo().join("../shared/pcaps").join(name);
    assert!(p.exists(), "shared capture {} is missing", p.display());
    p
}

/// A fresh scratch directory under the target dir.
pub fn scratch(name: &str) -> PathBuf {
    let d = repo().join("target").join("test-scratch").join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn run(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().expect("run flowsentry")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Parses JSON Lines.
pub fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Root-only tests: run as root; otherwise skip (with a note) unless
/// FLOWSENTRY_REQUIRE_ROOT_TESTS is set, in which case not being root is a failure.
pub fn require_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    if std::env::var_os("FLOWSENTRY_REQUIRE_ROOT_TESTS").is_some() {
        panic!("{test}: needs root, and FLOWSENTRY_REQUIRE_ROOT_TESTS is set");
    }
    eprintln!("{test}: skipped (needs root; set FLOWSENTRY_REQUIRE_ROOT_TESTS=1 to make this a failure)");
    false
}

/// Polls `cond` until it returns Some or the deadline passes.
pub fn wait_for<T>(what: &str, deadline: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        if Instant::now() >= end {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a command-line tool is installed.
pub fn have(tool: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().map(|o| o.status.success()).unwrap_or(false)
}

/// Every capture the project bundles (captures/*.pcap*) and every public one in
/// ../shared/pcaps, sorted by path.
pub fn all_captures() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in [repo().join("captures"), repo().join("../shared/pcaps")] {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for e in entries {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".pcap") || name.ends_with(".pcapng") {
                out.push(p);
            }
        }
    }
    out.sort();
    assert!(out.len() >= 10, "expected the bundled and shared captures, found {out:?}");
    out
}
