//! What a person sees at a terminal, checked in a real pseudo-terminal (util-linux
//! `script`): a replay's progress line on stderr (none when stderr is not a terminal or
//! with -q), and alerts as readable one-liners (JSON Lines with --json, and always
//! when stdout is a file or a pipe).

mod common;
use common::*;
use std::io::Read;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs `flowsentry ARGS` (a shell command line) in a pseudo-terminal; returns what the
/// terminal received (stdout and stderr together, with escape sequences).
fn in_pty(args: &str) -> String {
    let cmd = format!("{} {args}", bin().display());
    let o = pty_script(&cmd).output().expect("script (util-linux)");
    assert!(o.status.success(), "{cmd}: exit {:?}\n{}", o.status, String::from_utf8_lossy(&o.stdout));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `script` running `cmd` in a pseudo-terminal, with the same shell (/bin/sh) and
/// terminal type wherever the test runs: CI has neither SHELL nor a useful TERM.
fn pty_script(cmd: &str) -> Command {
    let mut c = Command::new("script");
    c.args(["-qfec", cmd, "/dev/null"]).env("SHELL", "/bin/sh").env("TERM", "xterm");
    c
}

/// The terminal's lines with escape sequences and carriage-return redraws removed.
fn visible_lines(raw: &str) -> Vec<String> {
    let mut plain = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ params final-byte
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            }
            continue;
        }
        plain.push(c);
    }
    plain.split(['\n', '\r']).map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
}

fn demo() -> String {
    capture("demo.pcap").display().to_string()
}

#[test]
fn progress_line_at_a_terminal_only() {
    let dir = scratch("cli-progress");
    // A capture big enough to take a while: the demo capture many times over.
    let big = dir.join("big.pcap");
    let st = Command::new(env!("CARGO_BIN_EXE_flowsentry-synth"))
        .args(["mixed", "--packets", "300000", "--snaplen", "96", "-o"])
        .arg(&big)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let size = std::fs::metadata(&big).unwrap().len();
    let raw = in_pty(&format!("replay {} --alerts /dev/null", big.display()));
    let lines = visible_lines(&raw);
    let progress: Vec<&String> = lines.iter().filter(|l| l.contains("ETA")).collect();
    assert!(!progress.is_empty(), "no progress line in:\n{raw}");
    // "00:00:01 [=====>    ]  35% 38.50 MiB/107.26 MiB 95.3 MiB/s, ETA 1s · 104,002 packets, ..."
    let total = format!("/{}", indicatif::HumanBytes(size));
    for l in &progress {
        assert!(l.contains('%') && l.contains(&total), "{l} (total {total})");
        assert!(l.contains(" packets, ") && l.contains(" sessions, ") && l.contains(" alerts"), "{l}");
    }
    // The line is cleared at the end; the summary follows on lines of its own.
    let summary = lines.iter().position(|l| l.starts_with("flowsentry: summary: packets read 300000"));
    let last_progress = lines.iter().rposition(|l| l.contains("ETA")).unwrap();
    assert!(summary.is_some_and(|s| s > last_progress), "{lines:?}");

    // A pipe: no total, so no percentage or ETA, but the bytes the reader has taken in.
    // The feeder holds the pipe open after the capture until the terminal has shown a
    // line with bytes read, so the check does not depend on how fast the replay is.
    // (The waiting `cat` keeps the pipe as its stdout: a shell that execs the group's
    // last command would otherwise close the pipe's only write end before the release.)
    let release = dir.join("release.fifo");
    assert!(Command::new("mkfifo").arg(&release).status().unwrap().success());
    let cmd = format!(
        "{{ cat {}; cat {}; }} | {} replay - --alerts /dev/null",
        big.display(),
        release.display(),
        bin().display()
    );
    let mut child = pty_script(&cmd).stdout(std::process::Stdio::piped()).spawn().expect("script (util-linux)");
    let seen = Arc::new(Mutex::new(String::new()));
    let reader = {
        let (mut out, seen) = (child.stdout.take().unwrap(), Arc::clone(&seen));
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = out.read(&mut buf) {
                seen.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let moved = |raw: &str| {
        visible_lines(raw).into_iter().any(|l| l.contains(" read, ") && !l.contains(" 0 B read") && !l.contains("ETA"))
    };
    wait_for("a progress line with bytes read from the pipe", Duration::from_secs(60), || {
        moved(&seen.lock().unwrap()).then_some(())
    });
    std::fs::OpenOptions::new().write(true).open(&release).unwrap(); // opened and closed: EOF
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
    let raw = seen.lock().unwrap().clone();
    let lines = visible_lines(&raw);
    let piped: Vec<&String> = lines.iter().filter(|l| l.contains(" read, ")).collect();
    assert!(piped.iter().all(|l| !l.contains("ETA") && !l.contains('%')), "{piped:?}");
    assert!(lines.iter().any(|l| l.starts_with("flowsentry: summary: packets read 300000")), "{lines:?}");

    // Not a terminal: nothing but the summary on stderr.
    let o = run(&["replay", big.to_str().unwrap(), "--alerts", "/dev/null"]);
    let err = stderr(&o);
    assert!(!err.contains("ETA") && !err.contains('\r') && !err.contains('\u{1b}'), "{err}");
    assert!(err.lines().all(|l| l.starts_with("flowsentry: ")), "{err}");
    // -q at a terminal: no progress, no summary.
    let raw = in_pty(&format!("replay -q {} --alerts /dev/null", big.display()));
    assert!(visible_lines(&raw).is_empty(), "{raw}");
}

#[test]
fn alerts_at_a_terminal_are_readable_lines() {
    let raw = in_pty(&format!("replay --home-net 192.0.2.0/24 {} 2>/dev/null", demo()));
    let lines = visible_lines(&raw);
    assert_eq!(lines.len(), 4, "{lines:?}");
    let expect = [
        ("High enhanced PortScan 198.51.100.10 → 203.0.113.20: Vertical SYN port scan", "1 host × 15 ports"),
        (
            "Medium sentinel PortScan 198.51.100.10 → 203.0.113.20: Port scan detected (ASIM Network Session schema)",
            "51 ports in the 5-min bin from ",
        ),
        ("Medium enhanced Beaconing 192.0.2.30 → 203.0.113.20:80: Beaconing every 12s", "every 12.0 s"),
        ("Low sentinel Beaconing 192.0.2.30 → 203.0.113.20:80: Potential beaconing activity", "connections 12 s apart"),
    ];
    for (line, (head, evidence)) in lines.iter().zip(expect) {
        let (time, rest) = line.split_once(' ').unwrap();
        assert!(time.starts_with("2026-11-22T07:") && time.ends_with('Z'), "{line}");
        assert!(rest.starts_with(head), "{line}\nexpected it to start with {head}");
        assert!(rest.contains(evidence), "{line}\nlacks {evidence}");
    }
    // --json at a terminal, and a pipe: JSON Lines, the same alerts in the same order.
    let json_tty: Vec<serde_json::Value> =
        visible_lines(&in_pty(&format!("replay --json --home-net 192.0.2.0/24 {} 2>/dev/null", demo())))
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect();
    let piped = json_lines(&stdout(&run(&["replay", "--home-net", "192.0.2.0/24", &demo()])));
    assert_eq!(json_tty, piped);
    for (line, json) in lines.iter().zip(&piped) {
        assert!(line.starts_with(json["TimeGenerated"].as_str().unwrap()), "{line} vs {json}");
        // The pivot to the records: the first NetworkSessionId, and how many more.
        let ids = json["NetworkSessionIds"].as_array().unwrap();
        let first = ids[0].as_str().unwrap();
        let tail =
            if ids.len() > 1 { format!("[session {first} +{}]", ids.len() - 1) } else { format!("[session {first}]") };
        assert!(line.ends_with(&tail), "{line}\nexpected it to end with {tail}");
    }
}
