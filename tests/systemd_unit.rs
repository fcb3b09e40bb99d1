//! Checks the systemd packaging in systemd/ offline: both units' sandbox exposure score
//! and `systemd-analyze verify`, the same hardening in both, the per-interface template's
//! binding to its device and its choice of settings file, install.sh staging into a
//! DESTDIR (completions and man page when the binary makes them), the example config
//! (parses, and every commented `#key = value` states the real default), and the
//! logrotate snippet (renames, does not recreate, reloads once).
//! tests/systemd_vm.rs runs the same units under a real systemd.
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

const UNITS: [&str; 2] = ["flowsentry.service", "flowsentry@.service"];

#[test]
fn units_sandbox_exposure_is_at_most_1_5() {
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    for name in UNITS {
        let unit = packaging(name);
        let out = run(Command::new(&analyze).args(["security", "--offline=true", "--threshold=15"]).arg(&unit));
        let report = text(&out.stdout);
        assert!(out.status.success(), "{name}: systemd-analyze security failed: {}\n{report}", text(&out.stderr));
        let score = overall_exposure(&report);
        assert!(score <= 1.5, "{name}: exposure {score} > 1.5:\n{report}");
        // The assessment really saw the identity and capability settings.
        assert!(report.contains("static non-root user"), "{name}: {report}");
        assert!(report.contains("Service cannot allocate Internet sockets"), "{name}: {report}");
    }
}

/// The `Key=Value` lines of a unit's [Service] section.
fn service_settings(unit: &str) -> Vec<String> {
    let text = std::fs::read_to_string(packaging(unit)).unwrap();
    let service = text.split("[Service]").nth(1).unwrap().split("\n[").next().unwrap();
    service.lines().filter(|l| !l.starts_with('#') && l.contains('=')).map(str::to_string).collect()
}

#[test]
fn both_units_have_the_same_hardening() {
    let plain = service_settings("flowsentry.service");
    let template = service_settings("flowsentry@.service");
    // What differs on purpose: the command line, the outputs' directories, the journal tag.
    let own = |l: &&String| ["ExecStart=", "LogsDirectory=", "SyslogIdentifier="].iter().any(|k| l.starts_with(k));
    let a: Vec<&String> = plain.iter().filter(|l| !own(l)).collect();
    let b: Vec<&String> = template.iter().filter(|l| !own(l)).collect();
    assert_eq!(a, b, "the two units' [Service] settings drifted apart");
    assert!(a.len() > 40, "too few settings compared: {a:?}");
    assert!(a.iter().any(|l| *l == "CapabilityBoundingSet=CAP_NET_RAW"));
    assert!(a.iter().any(|l| *l == "Restart=always"));
}

/// `Key=Value` → values of `key` in a unit file (all sections).
fn values(unit: &str, key: &str) -> Vec<String> {
    let text = std::fs::read_to_string(packaging(unit)).unwrap();
    text.lines().filter_map(|l| l.strip_prefix(key)?.strip_prefix('=')).map(str::to_string).collect()
}

#[test]
fn template_is_bound_to_its_interface_and_never_gives_up() {
    let unit = "flowsentry@.service";
    let device = "sys-subsystem-net-devices-%i.device";
    assert_eq!(values(unit, "BindsTo"), [device], "stops when the interface vanishes");
    assert_eq!(values(unit, "After"), [device]);
    assert_eq!(values(unit, "WantedBy"), [device], "started when the interface appears");
    for u in UNITS {
        assert_eq!(values(u, "StartLimitIntervalSec"), ["0"], "{u}: a start limit would give up for good");
        assert_eq!(values(u, "Restart"), ["always"], "{u}");
        assert_eq!(values(u, "User"), ["flowsentry"], "{u}");
    }
    // The layout other parts rely on (the Sentinel DCR reads /var/log/flowsentry/*/records.jsonl).
    assert_eq!(values(unit, "LogsDirectory"), ["flowsentry flowsentry/%I"]);
    assert_eq!(values("flowsentry.service", "LogsDirectory"), ["flowsentry"]);
}

/// The template's ExecStart command line, split as systemd does for this simple case:
/// `/bin/sh -c '<script>' flowsentry %I`, with `$$` meaning `$`.
fn template_script() -> String {
    let exec = values("flowsentry@.service", "ExecStart").pop().unwrap();
    let rest = exec.strip_prefix("/bin/sh -c '").unwrap_or_else(|| panic!("ExecStart changed: {exec}"));
    let (script, args) = rest.split_once("' ").unwrap();
    assert_eq!(args, "flowsentry %I", "the interface must reach the script as $1, not pasted into it");
    assert!(!script.contains('%'), "specifiers inside the script: {script}");
    script.replace("$$", "$")
}

#[test]
fn template_picks_the_interface_settings_file_else_the_shared_one() {
    let dir = scratch("template-exec");
    let etc = dir.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    // The script as the unit runs it, with /etc/flowsentry moved to scratch and the
    // binary replaced by echo, which shows the command line it was given.
    let script =
        template_script().replace("/etc/flowsentry/", &format!("{}/", etc.display())).replace(INSTALLED_BINARY, "echo");
    let exec = |iface: &str| {
        let out = run(Command::new("/bin/sh").arg("-c").arg(&script).arg("flowsentry").arg(iface));
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
    };
    let expect = |config: &str, iface: &str| {
        format!(
            "live --config {}/{config} --interface {iface} --records /var/log/flowsentry/{iface}/records.jsonl \
             --alerts /var/log/flowsentry/{iface}/alerts.jsonl",
            etc.display()
        )
    };
    assert_eq!(exec("eth1"), expect("flowsentry.toml", "eth1"));
    std::fs::write(etc.join("eth1.toml"), "").unwrap();
    assert_eq!(exec("eth1"), expect("eth1.toml", "eth1"));
    assert_eq!(exec("span-a"), expect("flowsentry.toml", "span-a"), "another interface keeps the shared file");
    // A hostile name stays one argument: nothing is run.
    assert_eq!(exec("x;touch pwned"), expect("flowsentry.toml", "x;touch pwned"));
    assert!(!Path::new("pwned").exists() && !dir.join("pwned").exists());
    std::fs::remove_dir_all(&dir).ok();
}

/// The units as installed, but starting the freshly built binary (verify insists that
/// ExecStart's program exists).
fn units_with_built_binary(dir: &Path) {
    for name in UNITS {
        let unit = std::fs::read_to_string(packaging(name)).unwrap();
        assert!(unit.contains(&format!("{INSTALLED_BINARY} live --config ")), "{name}: ExecStart changed?\n{unit}");
        std::fs::write(dir.join(name), unit.replace(INSTALLED_BINARY, env!("CARGO_BIN_EXE_flowsentry"))).unwrap();
    }
}

fn verify(analyze: &Path, dir: &Path, unit: &str) -> Output {
    run(Command::new(analyze).current_dir(dir).args(["verify", "--man=no", unit]))
}

#[test]
fn units_pass_systemd_analyze_verify() {
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    let dir = scratch("verify");
    units_with_built_binary(&dir);
    // The template is verified as an instance, here one whose interface name needs escaping.
    for unit in ["flowsentry.service", "flowsentry@eth1.service", r"flowsentry@span\x2da.service"] {
        let out = verify(&analyze, &dir, unit);
        assert!(out.status.success(), "{unit}: verify failed: {}", text(&out.stderr));
        assert_eq!(text(&out.stderr).trim(), "", "{unit}: verify complained");
    }

    // Control: the same check notices a misspelt directive.
    let bad = dir.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let unit = std::fs::read_to_string(dir.join("flowsentry@.service")).unwrap();
    std::fs::write(bad.join("flowsentry@.service"), unit.replace("ProtectClock=yes", "ProtectClok=yes")).unwrap();
    let out = verify(&analyze, &bad, "flowsentry@eth1.service");
    assert!(text(&out.stderr).contains("ProtectClok"), "verify missed a typo: {}", text(&out.stderr));
    std::fs::remove_dir_all(&dir).ok();
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o7777
}

fn install_into(dest: &Path) -> Output {
    install_binary_into(Path::new(env!("CARGO_BIN_EXE_flowsentry")), dest)
}

fn install_binary_into(binary: &Path, dest: &Path) -> Output {
    run(Command::new("bash").arg(packaging("install.sh")).arg(binary).env("DESTDIR", dest))
}

/// What install.sh generates with the binary: (installed path, the binary's arguments).
const GENERATED: [(&str, &[&str]); 4] = [
    ("usr/local/share/bash-completion/completions/flowsentry", &["completions", "bash"]),
    ("usr/local/share/zsh/site-functions/_flowsentry", &["completions", "zsh"]),
    ("usr/local/share/fish/vendor_completions.d/flowsentry.fish", &["completions", "fish"]),
    ("usr/local/share/man/man1/flowsentry.1", &["man"]),
];

#[test]
fn install_script_stages_into_destdir_and_keeps_an_edited_config() {
    let dest = scratch("install");
    let out = install_into(&dest);
    assert!(out.status.success(), "install.sh failed: {}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("systemctl enable --now flowsentry@eth1.service"), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("systemctl enable --now flowsentry\n"), "{}", text(&out.stdout));

    let expect = [
        ("usr/local/bin/flowsentry", 0o755, "flowsentry"),
        ("etc/systemd/system/flowsentry.service", 0o644, "flowsentry.service"),
        ("etc/systemd/system/flowsentry@.service", 0o644, "flowsentry@.service"),
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
    // Completions and the man page are there exactly when this binary makes them, and
    // are what it makes.
    for (path, args) in GENERATED {
        let made = run(Command::new(env!("CARGO_BIN_EXE_flowsentry")).args(args));
        let staged = dest.join(path);
        if made.status.success() && !made.stdout.is_empty() {
            assert_eq!(std::fs::read(&staged).unwrap(), made.stdout, "{path}");
            assert_eq!(mode(&staged), 0o644, "{path}");
        } else {
            assert!(!staged.exists(), "{path} installed although `flowsentry {args:?}` fails");
        }
    }

    // Every page `flowsentry man --out-dir` writes (one per command) is installed as made.
    let pages = scratch("install-man-pages");
    let made = run(Command::new(env!("CARGO_BIN_EXE_flowsentry")).arg("man").arg("--out-dir").arg(&pages));
    if made.status.success() {
        let mut names: Vec<_> = std::fs::read_dir(&pages).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert!(names.len() > 1 && names.iter().any(|n| n == "flowsentry-replay.1"), "{names:?}");
        for name in &names {
            let staged = dest.join("usr/local/share/man/man1").join(name);
            assert_eq!(std::fs::read(&staged).ok(), std::fs::read(pages.join(name)).ok(), "{name:?}");
            assert_eq!(mode(&staged), 0o644, "{name:?}");
        }
    }
    std::fs::remove_dir_all(&pages).ok();

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

#[test]
fn install_script_installs_what_the_binary_generates() {
    // A binary that has the subcommands (as `flowsentry completions SHELL` and
    // `flowsentry man` print their files to stdout) but not `man --out-dir`: install.sh
    // falls back to the one page on stdout; and one whose `man` prints no page.
    let dir = scratch("install-generated");
    let fake = |name: &str, man: &str| {
        let path = dir.join(name);
        let script = format!(
            "#!/bin/sh\ncase \"$*\" in\n'completions bash') echo 'complete -F _fs flowsentry';;\n\
             'completions zsh') echo '#compdef flowsentry';;\n'completions fish') echo 'complete -c flowsentry';;\n\
             man) printf '{man}';;\n*) echo \"unknown: $*\" >&2; exit 2;;\nesac\n"
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        path
    };
    let full = fake("full", ".TH flowsentry 1\\n.SH NAME\\nflowsentry\\n");
    let dest = dir.join("stage");
    let out = install_binary_into(&full, &dest);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let want = [
        "complete -F _fs flowsentry\n",
        "#compdef flowsentry\n",
        "complete -c flowsentry\n",
        ".TH flowsentry 1\n.SH NAME\nflowsentry\n",
    ];
    for ((path, _), want) in GENERATED.iter().zip(want) {
        assert_eq!(std::fs::read_to_string(dest.join(path)).unwrap(), want, "{path}");
        assert_eq!(mode(&dest.join(path)), 0o644, "{path}");
    }
    // Output that is not a man page is not installed as one.
    let junk = fake("junk", "usage: flowsentry ...\\n");
    let dest = dir.join("stage-junk");
    let out = install_binary_into(&junk, &dest);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!dest.join(GENERATED[3].0).exists());
    assert!(
        text(&out.stdout).contains("skipped") && text(&out.stdout).contains("flowsentry man"),
        "{}",
        text(&out.stdout)
    );
    assert!(dest.join(GENERATED[0].0).exists());
    std::fs::remove_dir_all(&dir).ok();
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
    for key in ["home_net", "rules", "community_id_seed", "stats_interval"] {
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
        ("sentinel", &["portscan_max_sources", "beacon_max_rows"][..]),
    ] {
        for key in keys {
            assert!(defaults[section].get(*key).is_some(), "no commented default for {section}.{key}");
        }
    }
    assert_eq!(count, 18);

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
    // flowsentry.service's files and two flowsentry@IFACE instances' files.
    let files = ["records.jsonl", "alerts.jsonl", "eth1/records.jsonl", "eth1/alerts.jsonl", "eth2/records.jsonl"];
    for f in files {
        let p = logs.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "{\"a\":1}\n").unwrap();
    }
    let marker = dir.join("reloads");
    let snippet = std::fs::read_to_string(packaging("flowsentry.logrotate")).unwrap();
    let reload = "systemctl try-reload-or-restart flowsentry.service 'flowsentry@*.service'";
    assert!(snippet.contains(reload), "{snippet}");
    assert!(snippet.contains("/var/log/flowsentry/*.jsonl /var/log/flowsentry/*/*.jsonl {"), "{snippet}");
    let conf = snippet
        .replace("/var/log/flowsentry", logs.to_str().unwrap())
        .replace(reload, &format!("sh -c 'echo reload >> {}'", marker.display()));
    let conf_path = dir.join("flowsentry.logrotate");
    std::fs::write(&conf_path, conf).unwrap();
    let out = run(Command::new(logrotate).arg("--force").arg("--state").arg(dir.join("state")).arg(&conf_path));
    assert!(out.status.success(), "logrotate failed: {}", text(&out.stderr));
    for name in files {
        assert!(!logs.join(name).exists(), "{name} was recreated (flowsentry does that on SIGHUP)");
        assert!(logs.join(format!("{name}.1")).exists(), "{name} was not rotated");
    }
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "reload\n", "postrotate must run once for all files");
    std::fs::remove_dir_all(&dir).ok();
}
