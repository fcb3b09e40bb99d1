//! Checks the systemd packaging in systemd/: the unit's sandbox exposure score and
//! `systemd-analyze verify`, install.sh staging into a DESTDIR, the example config
//! (parses, and every commented `#key = value` states the real default), and the
//! logrotate snippet (renames, does not recreate, reloads once).
//!
//! Tools missing (systemd-analyze, logrotate): the test skips, or fails when
//! FLOWSENTRY_REQUIRE_ROOT_TESTS is set (CI).

use clap::Parser;
use flowsentry::cli::Cli;
use flowsentry::config::Config;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const INSTALLED_BINARY: &str = "/usr/local/bin/flowsentry";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn packaging(name: &str) -> PathBuf {
    repo().join("systemd").join(name)
}

/// A fresh scratch directory under the target dir.
fn scratch(name: &str) -> PathBuf {
    let d = repo().join("target").join("test-scratch").join(format!("systemd-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Finds `tool` on PATH (and the sbin dirs). None means: skip, unless CI requires it.
fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("FLOWSENTRY_REQUIRE_ROOT_TESTS").is_none(),
            "{name} is not installed but FLOWSENTRY_REQUIRE_ROOT_TESTS is set"
        );
        eprintln!("skipping: {name} is not installed");
    }
    found
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// The "Overall exposure level for X: 1.2 OK" number.
fn overall_exposure(report: &str) -> f64 {
    let line = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no 'Overall exposure level' line in:\n{report}"));
    let after = line.rsplit_once(": ").map(|(_, v)| v).unwrap_or_else(|| panic!("odd line {line:?}"));
    let number = after.split_whitespace().next().unwrap();
    number.parse().unwrap_or_else(|e| panic!("exposure {number:?} in {line:?}: {e}"))
}

#[test]
fn unit_sandbox_exposure_is_at_most_2() {
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    let unit = packaging("flowsentry.service");
    let out = run(Command::new(analyze).args(["security", "--offline=true", "--threshold=20"]).arg(&unit));
    let report = text(&out.stdout);
    assert!(out.status.success(), "systemd-analyze security failed: {}\n{report}", text(&out.stderr));
    let score = overall_exposure(&report);
    assert!(score <= 2.0, "exposure {score} > 2.0:\n{report}");
    // The assessment really saw the identity and capability settings.
    assert!(report.contains("static non-root user"), "{report}");
    assert!(report.contains("Service cannot allocate Internet sockets"), "{report}");
}

/// The unit as installed, but starting the freshly built binary (verify insists that
/// ExecStart exists).
fn unit_with_built_binary(dir: &Path) -> PathBuf {
    let unit = std::fs::read_to_string(packaging("flowsentry.service")).unwrap();
    assert!(unit.contains(&format!("ExecStart={INSTALLED_BINARY} live --config ")), "ExecStart changed?\n{unit}");
    let path = dir.join("flowsentry.service");
    std::fs::write(&path, unit.replace(INSTALLED_BINARY, env!("CARGO_BIN_EXE_flowsentry"))).unwrap();
    path
}

fn verify(analyze: &Path, unit: &Path) -> Output {
    run(Command::new(analyze).args(["verify", "--man=no"]).arg(unit))
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    let dir = scratch("verify");
    let out = verify(&analyze, &unit_with_built_binary(&dir));
    assert!(out.status.success(), "verify failed: {}", text(&out.stderr));
    assert_eq!(text(&out.stderr).trim(), "", "verify complained");

    // Control: the same check notices a misspelt directive.
    let bad = dir.join("bad").join("flowsentry.service");
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    let unit = std::fs::read_to_string(dir.join("flowsentry.service")).unwrap();
    std::fs::write(&bad, unit.replace("ProtectClock=yes", "ProtectClok=yes")).unwrap();
    let out = verify(&analyze, &bad);
    assert!(text(&out.stderr).contains("ProtectClok"), "verify missed a typo: {}", text(&out.stderr));
    std::fs::remove_dir_all(&dir).ok();
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o7777
}

fn install_into(dest: &Path) -> Output {
    run(Command::new("bash").arg(packaging("install.sh")).arg(env!("CARGO_BIN_EXE_flowsentry")).env("DESTDIR", dest))
}

#[test]
fn install_script_stages_into_destdir_and_keeps_an_edited_config() {
    let dest = scratch("install");
    let out = install_into(&dest);
    assert!(out.status.success(), "install.sh failed: {}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("systemctl enable --now flowsentry"), "{}", text(&out.stdout));

    let expect = [
        ("usr/local/bin/flowsentry", 0o755, "flowsentry"),
        ("etc/systemd/system/flowsentry.service", 0o644, "flowsentry.service"),
        ("etc/sysusers.d/flowsentry.conf", 0o644, "flowsentry.sysusers"),
        ("etc/logrotate.d/flowsentry", 0o644, "flowsentry.logrotate"),
        ("etc/flowsentry/flowsentry.toml", 0o640, "flowsentry.toml"),
        ("usr/local/share/doc/flowsentry/README.md", 0o644, "../README.md"),
    ];
    for (path, want_mode, source) in expect {
        let p = dest.join(path);
        assert_eq!(mode(&p), want_mode, "{path}");
        let original =
            if source == "flowsentry" { PathBuf::from(env!("CARGO_BIN_EXE_flowsentry")) } else { packaging(source) };
        assert_eq!(std::fs::read(&p).unwrap(), std::fs::read(original).unwrap(), "{path} differs from its source");
    }
    assert_eq!(mode(&dest.join("etc/flowsentry")), 0o750);
    // The staged binary runs.
    let v = run(Command::new(dest.join("usr/local/bin/flowsentry")).arg("--version"));
    assert!(v.status.success() && text(&v.stdout).starts_with("flowsentry "), "{v:?}");

    // A second install keeps the admin's edits and drops the new example beside them.
    let config = dest.join("etc/flowsentry/flowsentry.toml");
    std::fs::write(&config, "[capture]\ninterface = \"edited0\"\n").unwrap();
    let out = install_into(&dest);
    assert!(out.status.success(), "second install.sh failed: {}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "[capture]\ninterface = \"edited0\"\n");
    assert_eq!(
        std::fs::read(dest.join("etc/flowsentry/flowsentry.toml.example")).unwrap(),
        std::fs::read(packaging("flowsentry.toml")).unwrap()
    );

    // A missing binary is a clear error, not a half install.
    let empty = scratch("install-missing");
    let out = run(Command::new("bash").arg(packaging("install.sh")).arg(empty.join("nope")).env("DESTDIR", &empty));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("nope"), "{}", text(&out.stderr));
    assert!(!empty.join("etc").exists());
    std::fs::remove_dir_all(&dest).ok();
    std::fs::remove_dir_all(&empty).ok();
}

/// The example with every `#key = value` default switched on.
fn uncomment_defaults(example: &str) -> (String, usize) {
    let mut count = 0;
    let lines: Vec<String> = example
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest)
                if rest
                    .split_once(" = ")
                    .is_some_and(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')) =>
            {
                count += 1;
                rest.to_string()
            }
            _ => l.to_string(),
        })
        .collect();
    (lines.join("\n") + "\n", count)
}

fn live_config(path: &Path) -> Config {
    let cli = Cli::try_parse_from(["flowsentry", "live", "--config", path.to_str().unwrap()]).unwrap();
    Config::from_cli(cli).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn example_config_parses_and_its_comments_state_the_real_defaults() {
    let example = std::fs::read_to_string(packaging("flowsentry.toml")).unwrap();
    let table: toml::Table = example.parse().unwrap();
    for key in ["records", "alerts", "capture", "flow", "detect"] {
        assert!(table.contains_key(key), "example lacks {key}");
    }
    assert_eq!(table["records"].as_str(), Some("/var/log/flowsentry/records.jsonl"));
    assert_eq!(table["alerts"].as_str(), Some("/var/log/flowsentry/alerts.jsonl"));
    assert!(table["capture"].get("interface").is_some());
    assert!(table.get("user").is_none(), "user must stay unset under systemd");

    let (with_defaults, count) = uncomment_defaults(&example);
    let defaults: toml::Table = with_defaults.parse().unwrap();
    for key in ["home_net", "rules", "stats_interval"] {
        assert!(defaults.contains_key(key), "no commented default for {key}");
    }
    for (section, keys) in [
        ("capture", &["snaplen", "promisc", "read_timeout_ms"][..]),
        (
            "flow",
            &[
                "tcp_timeout",
                "tcp_handshake_timeout",
                "udp_timeout",
                "icmp_timeout",
                "other_timeout",
                "active_timeout",
                "max_flows",
                "exchange_gap",
            ][..],
        ),
        ("detect", &["suppression"][..]),
    ] {
        for key in keys {
            assert!(defaults[section].get(*key).is_some(), "no commented default for {section}.{key}");
        }
    }
    assert_eq!(count, 15);

    let dir = scratch("example");
    let as_shipped = dir.join("as-shipped.toml");
    let all_on = dir.join("defaults-on.toml");
    std::fs::write(&as_shipped, &example).unwrap();
    std::fs::write(&all_on, &with_defaults).unwrap();
    let (a, b) = (live_config(&as_shipped), live_config(&all_on));
    assert_eq!(format!("{:?}", a.source), format!("{:?}", b.source));
    assert_eq!(format!("{:?}", a.flow), format!("{:?}", b.flow));
    assert_eq!(format!("{:?}", a.detect), format!("{:?}", b.detect));
    assert_eq!(a.stats_interval, b.stats_interval);
    assert_eq!(a.user, None);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn logrotate_renames_without_recreating_and_reloads_once() {
    let Some(logrotate) = tool("logrotate") else {
        return;
    };
    let dir = scratch("logrotate");
    let logs = dir.join("log");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join("records.jsonl"), "{\"a\":1}\n").unwrap();
    std::fs::write(logs.join("alerts.jsonl"), "{\"b\":2}\n").unwrap();
    let marker = dir.join("reloads");
    let snippet = std::fs::read_to_string(packaging("flowsentry.logrotate")).unwrap();
    let reload = "systemctl reload flowsentry.service";
    assert!(snippet.contains(reload) && snippet.contains("/var/log/flowsentry/*.jsonl"), "{snippet}");
    let conf = snippet
        .replace("/var/log/flowsentry", logs.to_str().unwrap())
        .replace(reload, &format!("sh -c 'echo reload >> {}'", marker.display()));
    let conf_path = dir.join("flowsentry.logrotate");
    std::fs::write(&conf_path, conf).unwrap();
    let out = run(Command::new(logrotate).arg("--force").arg("--state").arg(dir.join("state")).arg(&conf_path));
    assert!(out.status.success(), "logrotate failed: {}", text(&out.stderr));
    for name in ["records.jsonl", "alerts.jsonl"] {
        assert!(!logs.join(name).exists(), "{name} was recreated (flowsentry does that on SIGHUP)");
        assert!(logs.join(format!("{name}.1")).exists(), "{name} was not rotated");
    }
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "reload\n", "postrotate must run once for all files");
    std::fs::remove_dir_all(&dir).ok();
}
