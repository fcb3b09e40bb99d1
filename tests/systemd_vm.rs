//! The systemd units under a real systemd. systemd cannot be PID 1 on the test machines,
//! so this test boots one: `tests/systemd_vm/build-image.sh` makes a minimal Debian root
//! with mmdebstrap (from the mirror and suite apt uses here), installs flowsentry into it
//! with the project's own `systemd/install.sh`, and writes an ext4 disk image; qemu boots
//! it with TCG (no KVM needed), the kernel and initramfs taken from the root's /boot.
//! At boot a oneshot unit runs `tests/systemd_vm/guest-checks.sh`, which drives the
//! installed units with real interfaces (veth pairs, one end in a network namespace, and
//! a virtio NIC present at boot), a real nmap scan between documentation addresses, and
//! systemctl, then reports one line per check on the second serial port and powers off.
//! This test parses that report and asserts every check.
//!
//! Root only; needs mmdebstrap, qemu-system-x86_64, mke2fs and the Debian mirror. Skips
//! when those are missing, unless FLOWSENTRY_REQUIRE_ROOT_TESTS is set (CI).

mod common;

use common::{bin, have, repo, require_root, scratch};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// mmdebstrap + install + mke2fs. Measured 213–434 s on the 2-core machine at load 9–12.
const BUILD_DEADLINE: Duration = Duration::from_secs(20 * 60);
/// Boot, checks and power-off under TCG. Measured 211–333 s on the 2-core machine at load 9–12.
const VM_DEADLINE: Duration = Duration::from_secs(15 * 60);

/// Every check the guest must report as ok (guest-checks.sh, in its order).
const CHECKS: &[&str] = &[
    "installed",
    "boot-missing-waits",
    "boot-present-started",
    "boot-present-capturing",
    "hotplug-start",
    "identity",
    "log-dirs",
    "scan-records",
    "scan-alerts",
    "usr1-stats",
    "plain-missing-retries",
    "plain-recovers",
    "reload",
    "logrotate",
    "stop",
    "vanish-stops",
    "reappear-starts",
    "security-template",
    "security-boot-nic",
    "security-plain",
    "no-failed-units",
];

/// What the guest reported.
#[derive(Debug, Default)]
struct Report {
    /// check → (ok, details)
    checks: BTreeMap<String, (bool, String)>,
    measures: BTreeMap<String, String>,
    ended: bool,
}

/// Parses the guest's lines (`FSVM <check> ok|fail <details>`, `FSVM-MEASURE <name>
/// <value>`, `FSVM-END`); anything else on the port is ignored. A check reported twice
/// keeps its first verdict, so a later "ok" cannot hide a "fail".
fn parse(text: &str) -> Report {
    let mut r = Report::default();
    for line in text.lines().map(|l| l.trim_end_matches('\r')) {
        if line == "FSVM-END" {
            r.ended = true;
        } else if let Some(rest) = line.strip_prefix("FSVM-MEASURE ") {
            let (k, v) = rest.split_once(' ').unwrap_or((rest, ""));
            r.measures.entry(k.to_string()).or_insert_with(|| v.to_string());
        } else if let Some(rest) = line.strip_prefix("FSVM ") {
            let mut parts = rest.splitn(3, ' ');
            let (Some(name), Some(verdict)) = (parts.next(), parts.next()) else { continue };
            let ok = match verdict {
                "ok" => true,
                "fail" => false,
                _ => continue,
            };
            let details = parts.next().unwrap_or("").to_string();
            r.checks.entry(name.to_string()).or_insert((ok, details));
        }
    }
    r
}

/// The value of `key=` in a check's details.
fn detail<'a>(details: &'a str, key: &str) -> Option<&'a str> {
    details.split(' ').find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn parse_reads_checks_measures_and_the_end_mark() {
    let text = "noise\r\nFSVM-MEASURE boot_seconds 98.5\r\nFSVM a ok x=1 y=2\r\n\
                FSVM b fail why=because\nFSVM b ok later\nFSVM c maybe\nFSVM-END\r\n";
    let r = parse(text);
    assert!(r.ended);
    assert_eq!(r.measures["boot_seconds"], "98.5");
    assert_eq!(r.checks["a"], (true, "x=1 y=2".to_string()));
    assert_eq!(r.checks["b"], (false, "why=because".to_string()), "a later ok must not hide a fail");
    assert!(!r.checks.contains_key("c"), "an unknown verdict is not a result");
    assert_eq!(detail("x=1 y=2", "y"), Some("2"));
    assert_eq!(detail("xy=1", "x"), None);
    assert!(!parse("FSVM a ok\n").ended, "no end mark: the guest did not finish");
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs `cmd` with its output in `log`, killing it at the deadline.
fn run_logged(what: &str, cmd: &mut Command, log: &Path, deadline: Duration) -> (ExitStatus, Duration) {
    let out = File::create(log).unwrap();
    let err = out.try_clone().unwrap();
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, start.elapsed());
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: not done after {deadline:?}; last lines of {}:\n{}", log.display(), tail(log, 40));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether the binary generates `flowsentry ARGS` (install.sh installs it only then).
fn binary_supports(args: &[&str]) -> bool {
    Command::new(bin()).args(args).output().is_ok_and(|o| o.status.success() && !o.stdout.is_empty())
}

#[test]
fn units_under_a_real_systemd_in_a_vm() {
    if !require_root("units_under_a_real_systemd_in_a_vm") {
        return;
    }
    let missing: Vec<&str> = ["mmdebstrap", "qemu-system-x86_64", "mke2fs"].into_iter().filter(|t| !have(t)).collect();
    if !missing.is_empty() {
        assert!(
            std::env::var_os("FLOWSENTRY_REQUIRE_ROOT_TESTS").is_none(),
            "{missing:?} not installed (tests/install-deps.sh test installs them) but FLOWSENTRY_REQUIRE_ROOT_TESTS is set"
        );
        eprintln!("units_under_a_real_systemd_in_a_vm: skipped ({missing:?} not installed)");
        return;
    }
    let dir = scratch("systemd-vm");

    let (status, build_time) = run_logged(
        "building the VM image",
        Command::new("bash").arg(repo().join("tests/systemd_vm/build-image.sh")).arg(&dir).arg(bin()),
        &dir.join("build.log"),
        BUILD_DEADLINE,
    );
    assert!(status.success(), "build-image.sh failed ({status}):\n{}", tail(&dir.join("build.log"), 40));
    eprintln!("measured: VM image built in {:.0} s", build_time.as_secs_f64());

    let console = dir.join("console.log");
    let results = dir.join("results.log");
    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args(["-accel", "tcg", "-m", "1024", "-smp", "2", "-nodefaults", "-no-user-config"])
        .args(["-display", "none", "-no-reboot"])
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .arg("-serial")
        .arg(format!("file:{}", results.display()))
        .arg("-kernel")
        .arg(dir.join("vmlinuz"))
        .arg("-initrd")
        .arg(dir.join("initrd.img"))
        .args(["-append", "root=/dev/vda rw rootfstype=ext4 console=ttyS0 net.ifnames=0 panic=-1"])
        .arg("-drive")
        .arg(format!("file={},format=raw,if=virtio", dir.join("disk.img").display()))
        // A NIC present at boot (eth0) on a hub with no other port: no traffic leaves.
        .args(["-netdev", "hubport,id=nic0,hubid=0", "-device", "virtio-net-pci,netdev=nic0"]);
    let (status, vm_time) = run_logged("the VM", &mut qemu, &dir.join("qemu.log"), VM_DEADLINE);
    let text = std::fs::read_to_string(&results).unwrap_or_default();
    eprintln!("measured: VM booted, checked and powered off in {:.0} s\n{text}", vm_time.as_secs_f64());
    assert!(status.success(), "qemu failed ({status}): {}", tail(&dir.join("qemu.log"), 20));

    let report = parse(&text);
    let console_tail = || tail(&console, 60);
    assert!(report.ended, "the guest did not finish its checks; console:\n{}", console_tail());
    let failed: Vec<String> = CHECKS
        .iter()
        .filter_map(|c| match report.checks.get(*c) {
            Some((true, _)) => None,
            Some((false, d)) => Some(format!("{c}: {d}")),
            None => Some(format!("{c}: not reported")),
        })
        .collect();
    assert!(failed.is_empty(), "failed checks:\n{}\nconsole:\n{}", failed.join("\n"), console_tail());

    // The numbers behind the verdicts, checked here too.
    for c in ["security-template", "security-boot-nic", "security-plain"] {
        let score: f64 = detail(&report.checks[c].1, "exposure").and_then(|s| s.parse().ok()).unwrap();
        assert!(score <= 1.5, "{c}: exposure {score}");
    }
    let restarts: u32 =
        detail(&report.checks["plain-missing-retries"].1, "restarts").and_then(|s| s.parse().ok()).unwrap();
    assert!(restarts >= 5, "6 starts or more: the old unit gave up after 5 (restarts {restarts})");
    // install.sh installed completions and the man page exactly when the binary makes them.
    let installed = &report.checks["installed"].1;
    for (key, args) in [
        ("bash", &["completions", "bash"][..]),
        ("zsh", &["completions", "zsh"][..]),
        ("fish", &["completions", "fish"][..]),
        ("man", &["man"][..]),
    ] {
        let want = if binary_supports(args) { "yes" } else { "no" };
        assert_eq!(detail(installed, key), Some(want), "{key} in the VM: {installed}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
