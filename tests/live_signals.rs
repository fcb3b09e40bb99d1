//! Live capture in network namespaces: signals (SIGTERM/SIGINT flush, a second SIGINT
//! exits at once, SIGUSR1 stats), idle expiry on a quiet link, `--user`, and the
//! interface disappearing or going down mid-run. Root only (see common::require_root).

mod common;
#[path = "common/netns.rs"]
mod netns;

use common::{require_root, scratch, wait_for};
use netns::{read_json_lines, udp_send, Lab, Sensor, CLIENT, SERVER};
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};

fn udp_records_from_client(records: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    records.iter().filter(|r| r["NetworkProtocol"] == "UDP" && r["SrcIpAddr"] == CLIENT).collect()
}

#[test]
fn quiet_link_expires_idle_sessions_and_sigterm_flushes_the_rest() {
    if !require_root("quiet_link_expires_idle_sessions_and_sigterm_flushes_the_rest") {
        return;
    }
    let lab = Lab::new("qt");
    let dir = scratch("live-quiet");
    let records = dir.join("records.jsonl");
    let rec = records.to_str().unwrap();
    let alerts = dir.join("alerts.jsonl");
    let mut sensor = Sensor::start(
        &lab,
        &["--records", rec, "--alerts", alerts.to_str().unwrap(), "--udp-timeout", "2", "--stats-interval", "0"],
    );
    // One datagram, then silence: the session's record must come from the read timeout
    // moving time on, about 2 s later.
    let sent = Instant::now();
    udp_send(&lab, 1, 1, 100, 9999);
    let expired = wait_for("the idle UDP session's record", Duration::from_secs(8), || {
        let r = read_json_lines(&records);
        let udp = udp_records_from_client(&r);
        (!udp.is_empty()).then(|| udp[0].clone())
    });
    let after = sent.elapsed();
    assert!(after >= Duration::from_millis(1500), "expired too early ({after:?}): {expired}");
    assert_eq!(expired["AdditionalFields"]["EndReason"], "idle_timeout", "{expired}");
    assert_eq!(expired["SrcBytes"], 128, "20 IP + 8 UDP + 100 payload: {expired}");
    assert_eq!(expired["DstIpAddr"], SERVER);

    // SIGUSR1 prints a stats line on demand (the interval is 0: none otherwise).
    assert!(sensor.stderr.stats_lines().is_empty(), "{}", sensor.stderr.text());
    sensor.signal(Signal::SIGUSR1);
    wait_for("a stats line after SIGUSR1", Duration::from_secs(5), || sensor.stderr.stats_lines().into_iter().next());
    let s = &sensor.stderr.stats_lines()[0];
    for key in [
        "packets_read",
        "kernel_received",
        "kernel_dropped",
        "interface_dropped",
        "kernel_received_delta",
        "kernel_dropped_delta",
        "interface_dropped_delta",
        "channel_drops",
        "active_sessions",
        "evictions",
        "records_written",
        "alerts_written",
    ] {
        assert!(s[key].is_u64(), "stats line lacks {key}: {s}");
    }
    assert!(s["records_written"].as_u64().unwrap() >= 1, "{s}");

    // Three more sessions stay open (default-length timeout not reached): SIGTERM must
    // write them, a final stats line, and exit 0 within seconds.
    udp_send(&lab, 3, 2, 10, 9998);
    wait_for("the new sessions to be tracked", Duration::from_secs(5), || {
        sensor.signal(Signal::SIGUSR1);
        let last = sensor.stderr.stats_lines().pop()?;
        (last["active_sessions"].as_u64()? >= 3).then_some(())
    });
    sensor.signal(Signal::SIGTERM);
    let (status, took) = sensor.wait(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{}", sensor.stderr.text());
    eprintln!("measured: shutdown after SIGTERM took {took:?}");
    let r = read_json_lines(&records);
    let flushed: Vec<_> =
        udp_records_from_client(&r).into_iter().filter(|r| r["AdditionalFields"]["EndReason"] == "shutdown").collect();
    assert_eq!(flushed.len(), 3, "open sessions not flushed: {r:?}");
    assert!(flushed.iter().all(|r| r["SrcPackets"] == 2 && r["SrcBytes"] == 76), "{flushed:?}");
    let last = sensor.stderr.stats_lines().pop().unwrap();
    assert_eq!(last["final"], true, "{}", sensor.stderr.text());
    assert_eq!(last["records_written"].as_u64().unwrap(), r.len() as u64, "{last}");
    assert_eq!(last["kernel_dropped"], 0, "{last}");
    assert!(sensor.stderr.text().contains("stopping: flushing"), "{}", sensor.stderr.text());
}

#[test]
fn user_flag_drops_root_after_opening_the_capture() {
    if !require_root("user_flag_drops_root_after_opening_the_capture") {
        return;
    }
    let lab = Lab::new("us");
    let dir = scratch("live-user");
    let records = dir.join("records.jsonl");
    let alerts = dir.join("alerts.jsonl");
    let mut sensor = Sensor::start(
        &lab,
        &["--records", records.to_str().unwrap(), "--alerts", alerts.to_str().unwrap(), "--user", "nobody"],
    );
    let nobody = nix::unistd::User::from_name("nobody").unwrap().expect("user nobody");
    let status = std::fs::read_to_string(format!("/proc/{}/status", sensor.pid())).unwrap();
    let field = |name: &str| -> Vec<u32> {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().skip(1).map(|v| v.parse().unwrap()).collect()
    };
    // Real, effective, saved and filesystem ids all switched; no supplementary root group.
    assert_eq!(field("Uid:"), vec![nobody.uid.as_raw(); 4], "{status}");
    assert_eq!(field("Gid:"), vec![nobody.gid.as_raw(); 4], "{status}");
    assert!(!field("Groups:").contains(&0), "{status}");
    // The capture opened as root keeps working.
    udp_send(&lab, 1, 3, 20, 9997);
    wait_for("the datagrams to be captured", Duration::from_secs(5), || {
        sensor.signal(Signal::SIGUSR1);
        let last = sensor.stderr.stats_lines().pop()?;
        (last["packets_decoded"].as_u64()? >= 3).then_some(())
    });
    sensor.signal(Signal::SIGTERM);
    let (st, _) = sensor.wait(Duration::from_secs(5));
    assert_eq!(st.code(), Some(0), "{}", sensor.stderr.text());
    let r = read_json_lines(&records);
    assert_eq!(udp_records_from_client(&r).len(), 1, "{r:?}");
}

/// Starts a sensor, opens one UDP session, then breaks the interface with `breaker`;
/// the run must end with an error naming the interface, the session's record written,
/// and exit status 1.
fn interface_failure(tag: &str, breaker: impl FnOnce(&Lab), expected: &str) {
    let lab = Lab::new(tag);
    let dir = scratch(&format!("live-iface-{tag}"));
    let records = dir.join("records.jsonl");
    let alerts = dir.join("alerts.jsonl");
    let mut sensor =
        Sensor::start(&lab, &["--records", records.to_str().unwrap(), "--alerts", alerts.to_str().unwrap()]);
    udp_send(&lab, 1, 2, 50, 9996);
    wait_for("the datagrams to be captured", Duration::from_secs(5), || {
        sensor.signal(Signal::SIGUSR1);
        let last = sensor.stderr.stats_lines().pop()?;
        (last["active_sessions"].as_u64()? >= 1).then_some(())
    });
    breaker(&lab);
    let (st, took) = sensor.wait(Duration::from_secs(5));
    eprintln!("measured: exit {:?} after the interface broke, {took:?}", st.code());
    let err = sensor.stderr.text();
    assert_eq!(st.code(), Some(1), "{err}");
    let error_line = err.lines().find(|l| l.contains("error:")).unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(error_line.contains(&lab.veth_server) && error_line.contains(expected), "{err}");
    let r = read_json_lines(&records);
    let udp = udp_records_from_client(&r);
    assert_eq!(udp.len(), 1, "open session not flushed: {r:?}");
    assert_eq!(
        (udp[0]["SrcPackets"].as_u64(), udp[0]["AdditionalFields"]["EndReason"].as_str()),
        (Some(2), Some("shutdown"))
    );
    let last = sensor.stderr.stats_lines().pop().unwrap();
    assert_eq!((last["final"].as_bool(), last["records_written"].as_u64()), (Some(true), Some(r.len() as u64)));
}

#[test]
fn deleting_the_interface_ends_the_run_with_an_error_and_flushed_output() {
    if !require_root("deleting_the_interface_ends_the_run_with_an_error_and_flushed_output") {
        return;
    }
    interface_failure("del", Lab::delete_veth, "disappeared");
}

#[test]
fn taking_the_interface_down_ends_the_run_with_an_error_and_flushed_output() {
    if !require_root("taking_the_interface_down_ends_the_run_with_an_error_and_flushed_output") {
        return;
    }
    let down = |lab: &Lab| {
        let st = std::process::Command::new("ip")
            .args(["-n", &lab.ns_server, "link", "set", &lab.veth_server, "down"])
            .status()
            .unwrap();
        assert!(st.success());
    };
    interface_failure("down", down, "went down");
}

/// A shutdown stuck on an output nobody reads (a FIFO): the first SIGINT starts the
/// flush, which blocks; the second, at least a second later (a quicker one is the same
/// interrupt delivered twice), exits at once with status 130.
#[test]
fn second_sigint_exits_at_once() {
    if !require_root("second_sigint_exits_at_once") {
        return;
    }
    use std::os::unix::fs::OpenOptionsExt;
    let lab = Lab::new("int");
    let dir = scratch("live-sigint");
    let fifo = dir.join("records.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    // Held open but never read: once the pipe buffer (64 KiB) is full, writes block.
    let _reader =
        std::fs::OpenOptions::new().read(true).custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits()).open(&fifo).unwrap();
    let alerts = dir.join("alerts.jsonl");
    let mut sensor = Sensor::start(&lab, &["--records", fifo.to_str().unwrap(), "--alerts", alerts.to_str().unwrap()]);
    // ~300 open sessions: their records (~900 bytes each) overflow the pipe at shutdown.
    udp_send(&lab, 300, 1, 1, 9995);
    wait_for("the sessions to be tracked", Duration::from_secs(10), || {
        sensor.signal(Signal::SIGUSR1);
        let last = sensor.stderr.stats_lines().pop()?;
        (last["active_sessions"].as_u64()? >= 290).then_some(())
    });
    sensor.signal(Signal::SIGINT);
    let first = Instant::now();
    let pid = sensor.pid();
    wait_for("the flush to block on the unread FIFO", Duration::from_secs(10), || {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
        tasks
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("wchan")).ok())
            .any(|w| w.contains("pipe_write"))
            .then_some(())
    });
    assert!(sensor.child.try_wait().unwrap().is_none(), "exited although its output blocks");
    // The 1 s threshold is the behaviour under test, not a guess at timing.
    std::thread::sleep(Duration::from_millis(1100).saturating_sub(first.elapsed()));
    sensor.signal(Signal::SIGINT);
    let (st, took) = sensor.wait(Duration::from_secs(2));
    eprintln!("measured: second SIGINT exit after {took:?}");
    assert_eq!(st.code(), Some(130), "{}", sensor.stderr.text());
}

/// `timeout -s INT 60 flowsentry live -i eth1`: coreutils timeout sends SIGINT to the
/// child and then to its process group, so flowsentry gets it twice within microseconds.
/// That is one interrupt: open sessions are flushed, the final stats line is written,
/// and a live capture stopped this way exits 0.
#[test]
fn timeout_s_int_stops_a_live_capture_with_a_full_flush() {
    if !require_root("timeout_s_int_stops_a_live_capture_with_a_full_flush") {
        return;
    }
    use std::process::Stdio;
    let lab = Lab::new("to");
    let dir = scratch("live-timeout");
    let records = dir.join("records.jsonl");
    let alerts = dir.join("alerts.jsonl");
    let mut c = lab.cmd(&lab.ns_server, "timeout");
    c.args(["-s", "INT", "600"]).arg(common::bin()).args(["live", "-i", &lab.veth_server, "--stats-interval", "0"]);
    c.args(["--records", records.to_str().unwrap(), "--alerts", alerts.to_str().unwrap()]);
    let mut child = c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = netns::Watched::new(child.stderr.take().unwrap());
    stderr.wait_line("capturing on", Duration::from_secs(10));
    let timeout_pid = child.id();
    let fs_pid: u32 = std::fs::read_to_string(format!("/proc/{timeout_pid}/task/{timeout_pid}/children"))
        .unwrap()
        .split_whitespace()
        .next()
        .expect("flowsentry runs under timeout")
        .parse()
        .unwrap();
    udp_send(&lab, 4, 2, 10, 9997);
    wait_for("the sessions to be tracked", Duration::from_secs(10), || {
        netns::signal(fs_pid, Signal::SIGUSR1);
        let last = stderr.stats_lines().pop()?;
        (last["active_sessions"].as_u64()? >= 4).then_some(())
    });
    // Exactly what timeout does on expiry: its SIGINT handler signals child and group.
    netns::signal(timeout_pid, Signal::SIGINT);
    let st = netns::wait_exit(&mut child, Duration::from_secs(10)).expect("exit after SIGINT");
    let text = stderr.text();
    assert_eq!(st.code(), Some(0), "{text}");
    assert!(!text.contains("second interrupt"), "the double delivery forced an exit:\n{text}");
    let r = read_json_lines(&records);
    let flushed: Vec<_> =
        udp_records_from_client(&r).into_iter().filter(|r| r["AdditionalFields"]["EndReason"] == "shutdown").collect();
    assert_eq!(flushed.len(), 4, "open sessions not flushed: {r:?}");
    let last = wait_for("the final stats line", Duration::from_secs(2), || stderr.stats_lines().pop());
    assert_eq!(last["final"], true, "{text}");
    assert_eq!(last["records_written"].as_u64().unwrap(), r.len() as u64, "{last}");
}
