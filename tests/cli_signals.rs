//! Interrupting a replay, as shells and scripts do it.
//!
//! `timeout -s INT` (like a terminal's Ctrl-C reaching a process group) delivers SIGINT
//! to flowsentry twice within microseconds: once to the child, once to its process
//! group. That must count as one interrupt: everything read is flushed (open sessions
//! become records, the summary says the replay was interrupted) and the exit status is
//! 130. Only a second SIGINT a second or more after the first exits at once.
//!
//! To interrupt a replay mid-file deterministically, its records go to a pipe nobody
//! reads yet: once the pipe is full the writer blocks and the bounded channels stop the
//! reading half-way through a capture far larger than they hold. The test waits for that
//! (a thread of flowsentry blocked in `pipe_write`), signals, then drains the pipe.

mod common;
use common::*;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Packets in the generated capture: far more than the pipeline holds in flight.
const PACKETS: u64 = 1_000_000;

/// A 1 M-packet capture (headers only, ~110 MB), generated once per test.
fn big_capture(dir: &Path) -> PathBuf {
    let path = dir.join("mixed.pcap");
    let st = Command::new(env!("CARGO_BIN_EXE_flowsentry-synth"))
        .args(["mixed", "--packets", &PACKETS.to_string(), "--session-rate", "12500", "--snaplen", "96", "-o"])
        .arg(&path)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    path
}

/// Whether some thread of `pid` is blocked writing to a full pipe.
fn blocked_on_pipe(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return false };
    tasks.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("wchan")).ok()).any(|w| w.contains("pipe_write"))
}

fn kill(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).expect("signal");
}

/// Starts `PREFIX... flowsentry replay --records - CAPTURE` with stdout and stderr piped
/// (stdout unread, so the replay stalls), and returns it with flowsentry's pid.
fn stalled_replay(prefix: &[&str], capture: &Path) -> (Child, u32) {
    let mut cmd = match prefix.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(bin());
            c
        }
        None => Command::new(bin()),
    };
    cmd.args(["replay", "--records", "-", "--sensor-name", "t"]).arg(capture);
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let wrapper = child.id();
    let pid = if prefix.is_empty() {
        wrapper
    } else {
        wait_for("flowsentry to start under timeout", Duration::from_secs(10), || {
            let children = std::fs::read_to_string(format!("/proc/{wrapper}/task/{wrapper}/children")).ok()?;
            children.split_whitespace().next()?.parse::<u32>().ok()
        })
    };
    wait_for("the replay to stall on its unread output", Duration::from_secs(60), || {
        blocked_on_pipe(pid).then_some(())
    });
    (child, pid)
}

/// Reads stdout and stderr to their ends and waits for the exit (bounded).
fn drain(mut child: Child, limit: Duration) -> (Option<i32>, String, String) {
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).unwrap();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).unwrap();
        s
    });
    let end = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("flowsentry did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code(), reader.join().unwrap(), err_reader.join().unwrap())
}

#[test]
fn timeout_s_int_interrupts_a_replay_once_and_everything_is_flushed() {
    if !have("timeout") {
        panic!("coreutils timeout is needed");
    }
    let dir = scratch("cli-sigint-timeout");
    let capture = big_capture(&dir);
    // Real coreutils timeout: on SIGINT (as on expiry) it sends the signal to the child,
    // then to the child's process group — the double delivery this is about.
    let (child, fs_pid) = stalled_replay(&["timeout", "-s", "INT", "600"], &capture);
    kill(child.id(), nix::sys::signal::Signal::SIGINT);
    let (code, stdout, stderr) = drain(child, Duration::from_secs(120));
    assert_eq!(code, Some(130), "interrupted replay exits 130; stderr:\n{stderr}");
    assert!(!stderr.contains("second interrupt"), "the double delivery forced an exit:\n{stderr}");
    assert!(stderr.contains("SIGINT: replay interrupted, flushing"), "{stderr}");
    let summary = stderr.lines().find(|l| l.contains("summary: packets read")).expect("summary line");
    assert!(summary.ends_with("; interrupted: the input was not read to its end"), "{summary}");
    let number = |label: &str| -> u64 {
        let at = summary.find(label).unwrap() + label.len();
        summary[at..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap()
    };
    let (read, sessions, records) = (number("packets read "), number("sessions "), number("records "));
    assert!(read > 0 && read < PACKETS, "stopped mid-file: {summary}");
    // The flush: every session became a record, those still open with reason shutdown.
    // stdout carries the records and (sharing it) the alerts.
    let all = json_lines(&stdout);
    let lines: Vec<&serde_json::Value> = all.iter().filter(|l| l["EventType"] == "NetworkSession").collect();
    assert_eq!(lines.len() as u64, records, "{summary}");
    assert_eq!((all.len() - lines.len()) as u64, number("alerts "), "{summary}");
    assert_eq!(records, sessions, "{summary}");
    let shutdown = lines.iter().filter(|r| r["AdditionalFields"]["EndReason"] == "shutdown").count();
    assert!(shutdown > 0, "open sessions are flushed as records ({} records)", lines.len());
    eprintln!("measured: interrupted after {read} of {PACKETS} packets; {records} records, {shutdown} flushed open (pid {fs_pid})");
}

#[test]
fn a_second_sigint_a_second_later_exits_at_once() {
    let dir = scratch("cli-sigint-twice");
    let capture = big_capture(&dir);
    let (child, pid) = stalled_replay(&[], &capture);
    let first = Instant::now();
    kill(pid, nix::sys::signal::Signal::SIGINT);
    // A copy of the same interrupt (as a process-group delivery) is not a second one.
    kill(pid, nix::sys::signal::Signal::SIGINT);
    // The threshold is the behaviour under test: wait it out, then interrupt again.
    let rest = Duration::from_millis(1100).saturating_sub(first.elapsed());
    std::thread::sleep(rest);
    let mut child = child;
    assert!(child.try_wait().unwrap().is_none(), "a second SIGINT within 1 s must not end the run");
    let again = Instant::now();
    kill(pid, nix::sys::signal::Signal::SIGINT);
    let st = wait_for("the forced exit", Duration::from_secs(5), || child.try_wait().unwrap());
    eprintln!("measured: forced exit {:?} after the second SIGINT", again.elapsed());
    assert_eq!(st.code(), Some(130));
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(err.contains("second interrupt: exiting now"), "{err}");
    assert!(!err.contains("summary:"), "a forced exit does not wait for the flush:\n{err}");
}
