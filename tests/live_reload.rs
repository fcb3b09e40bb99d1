//! SIGHUP on a live capture reloads the config file's detector settings (home networks
//! here, which also drive `NetworkDirection`, and the enhanced tables' memory budget, which
//! resizes them) without losing flow state, and a broken
//! config file on reload is logged while the old settings stay. Root only.

mod common;
#[path = "common/netns.rs"]
mod netns;

use common::{require_root, scratch, wait_for};
use netns::{read_json_lines, Lab, Sensor, CLIENT, SERVER};
use nix::sys::signal::Signal;
use std::time::Duration;

/// One datagram from CLIENT:`sport` to SERVER:9999.
fn datagram_from(lab: &Lab, sport: u16) {
    let script = format!(
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
         s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('{CLIENT}',{sport}))\n\
         s.sendto(b'x'*50,('{SERVER}',9999))\n"
    );
    let out = lab.cmd(&lab.ns_client, "python3").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn record_from(path: &std::path::Path, sport: u16) -> Option<serde_json::Value> {
    read_json_lines(path).into_iter().find(|r| r["SrcIpAddr"] == CLIENT && r["SrcPortNumber"] == sport)
}

#[test]
fn sighup_reloads_home_networks_and_keeps_flow_state() {
    if !require_root("sighup_reloads_home_networks_and_keeps_flow_state") {
        return;
    }
    let lab = Lab::new("hup");
    let dir = scratch("live-reload");
    let cfg = dir.join("flowsentry.toml");
    std::fs::write(&cfg, "home_net = [\"192.0.2.0/24\"]\n").unwrap();
    let records = dir.join("records.jsonl");
    let mut sensor = Sensor::start(
        &lab,
        &["--config", cfg.to_str().unwrap(), "--records", records.to_str().unwrap(), "--udp-timeout", "3"],
    );

    // Before the reload both ends are outside the home network.
    datagram_from(&lab, 40001);
    let before = wait_for("the first session's record", Duration::from_secs(10), || record_from(&records, 40001));
    assert_eq!(before["NetworkDirection"], "External", "{before}");

    // A session that spans the reload.
    datagram_from(&lab, 40002);
    // The reload also shrinks the enhanced tables' memory budget: 1 MiB gives 819 entries.
    std::fs::write(&cfg, "home_net = [\"198.51.100.0/24\"]\n[enhanced]\nmemory_mib = 1\n").unwrap();
    sensor.signal(Signal::SIGHUP);
    sensor.stderr.wait_line("SIGHUP", Duration::from_secs(5));
    datagram_from(&lab, 40002);
    datagram_from(&lab, 40003);
    let spanning = wait_for("the spanning session's record", Duration::from_secs(10), || record_from(&records, 40002));
    assert_eq!(spanning["SrcPackets"], 2, "flow state survived the reload: {spanning}");
    assert_eq!(spanning["NetworkDirection"], "Local", "new home network applies: {spanning}");
    let after = wait_for("the new session's record", Duration::from_secs(10), || record_from(&records, 40003));
    assert_eq!(after["NetworkDirection"], "Local", "{after}");
    // The new budget and the caps it gave are in force and reported (SIGUSR1 stats line).
    sensor.signal(Signal::SIGUSR1);
    let stats = wait_for("a stats line after SIGUSR1", Duration::from_secs(5), || sensor.stderr.stats_lines().pop());
    assert_eq!(stats["detector_memory"]["budget_mib"], 1, "{stats}");
    let enhanced: Vec<&serde_json::Value> = stats["detector_tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["detector"].as_str().unwrap().starts_with("enhanced"))
        .collect();
    assert!(enhanced.len() == 3 && enhanced.iter().all(|t| t["cap"] == 819), "{stats}");

    // A broken file on reload: an error naming it, old settings kept, still running.
    std::fs::write(&cfg, "home_net = [\"not-a-network\"]\n").unwrap();
    sensor.signal(Signal::SIGHUP);
    let line = sensor.stderr.wait_line("keeping the old settings", Duration::from_secs(5));
    assert!(line.contains("not-a-network"), "{line}");
    datagram_from(&lab, 40004);
    let kept = wait_for("a record after the bad reload", Duration::from_secs(10), || record_from(&records, 40004));
    assert_eq!(kept["NetworkDirection"], "Local", "{kept}");

    sensor.signal(Signal::SIGTERM);
    let (status, _) = sensor.wait(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
}
