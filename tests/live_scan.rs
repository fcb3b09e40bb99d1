//! End to end on a real link: nmap SYN and UDP scans plus a periodic HTTP client across
//! a veth pair, captured live by flowsentry and, in parallel, by tcpdump. Checks alert
//! latency, record byte counts against tshark, SIGHUP rotation without a lost or split
//! line, SIGTERM flush, zero kernel drops, and that replaying tcpdump's file gives the
//! same records and alerts as the live run. Root only.

mod common;
#[path = "common/netns.rs"]
mod netns;

use common::{bin, have, require_root, scratch, wait_for};
use netns::{read_json_lines, udp_send, Lab, Sensor, CLIENT, SERVER};
use nix::sys::signal::Signal;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const HTTP_PORT: u16 = 8080;
const UDP_PORT: u16 = 5353;
const FILES: [(&str, usize); 2] = [("small.bin", 1_000), ("big.bin", 100_000)];

fn alert_keys(alerts: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = alerts
        .iter()
        .map(|a| {
            format!(
                "{} {} {} {} {}",
                a["AlertType"], a["DetectionMode"], a["SrcIpAddr"], a["DstIpAddr"], a["DstPortNumber"]
            )
        })
        .collect();
    k.sort();
    k.dedup();
    k
}

fn record_key(r: &Value) -> String {
    let f = |k: &str| r[k].to_string();
    [
        "SrcIpAddr",
        "DstIpAddr",
        "SrcPortNumber",
        "DstPortNumber",
        "NetworkProtocol",
        "SrcBytes",
        "DstBytes",
        "SrcPackets",
        "DstPackets",
    ]
    .map(f)
    .join(" ")
        + " "
        + &r["AdditionalFields"]["ConnState"].to_string()
        + " "
        + &r["AdditionalFields"]["CommunityId"].to_string()
}

fn multiset(records: &[Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in records {
        *m.entry(record_key(r)).or_insert(0) += 1;
    }
    m
}

/// Per TCP connection (client port → (client→server IP bytes, server→client IP bytes,
/// packets each way)) for connections to the HTTP port, from tshark.
fn tshark_http_sessions(pcap: &Path) -> BTreeMap<u64, (u64, u64, u64, u64)> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args(["-Y", &format!("tcp.port == {HTTP_PORT}"), "-T", "fields"])
        .args(["-e", "ip.src", "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "ip.len"])
        .output()
        .unwrap();
    assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
    let mut m: BTreeMap<u64, (u64, u64, u64, u64)> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let len: u64 = f[3].parse().unwrap();
        if f[0] == CLIENT {
            let e = m.entry(f[1].parse().unwrap()).or_default();
            e.0 += len;
            e.2 += 1;
        } else {
            let e = m.entry(f[2].parse().unwrap()).or_default();
            e.1 += len;
            e.3 += 1;
        }
    }
    m
}

#[test]
fn scans_and_clients_on_a_live_link_match_tcpdump_and_replay() {
    if !require_root("scans_and_clients_on_a_live_link_match_tcpdump_and_replay") {
        return;
    }
    for tool in ["nmap", "tcpdump", "tshark", "curl", "python3"] {
        assert!(have(tool), "{tool} is not installed (tests/install-deps.sh test)");
    }
    let mut lab = Lab::new("scan");
    lab.sysctl(&lab.ns_server.clone(), "net.ipv4.icmp_ratelimit=0");
    let dir = scratch("live-scan");
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    for (name, size) in FILES {
        std::fs::write(www.join(name), vec![b'a'; size]).unwrap();
    }
    lab.http_server(&www, HTTP_PORT);
    // A UDP service (one open port for the UDP scan) that echoes.
    let echo = format!(
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('{SERVER}',{UDP_PORT}))\n\
         while True:\n d,a=s.recvfrom(2048)\n s.sendto(d,a)\n"
    );
    let mut c = lab.cmd(&lab.ns_server, "python3");
    c.args(["-c", &echo]);
    lab.background(c);

    // tcpdump first, so it sees everything flowsentry sees.
    let pcap = dir.join("live.pcap");
    let mut c = lab.cmd(&lab.ns_server, "tcpdump");
    c.args(["-i", &lab.veth_server, "--immediate-mode", "-U", "-n", "-s", "512", "-w"]).arg(&pcap);
    let (tcpdump, tcpdump_err) = lab.background_watched(c);
    tcpdump_err.wait_line("listening on", Duration::from_secs(10));

    let records = dir.join("records.jsonl");
    let alerts = dir.join("alerts.jsonl");
    let mut sensor = Sensor::start(
        &lab,
        &["--records", records.to_str().unwrap(), "--alerts", alerts.to_str().unwrap(), "--stats-interval", "1"],
    );

    // The periodic client: curl alternating two files until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (stop, ns) = (Arc::clone(&stop), lab.ns_client.clone());
        std::thread::spawn(move || {
            let mut fetched = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) || fetched.len() < 4 {
                let (name, size) = FILES[i % 2];
                i += 1;
                let out = Command::new("ip")
                    .args([
                        "netns",
                        "exec",
                        &ns,
                        "curl",
                        "-s",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{size_download} %{local_port}",
                    ])
                    .arg(format!("http://{SERVER}:{HTTP_PORT}/{name}"))
                    .output()
                    .unwrap();
                let text = String::from_utf8_lossy(&out.stdout).to_string();
                let mut it = text.split_whitespace();
                let got: usize = it.next().unwrap().parse().unwrap();
                assert_eq!(got, size, "curl fetched {got} bytes of {name}");
                fetched.push((it.next().unwrap().parse::<u64>().unwrap(), size));
                std::thread::sleep(Duration::from_millis(200)); // the client's period, not a wait
            }
            fetched
        })
    };
    udp_send(&lab, 3, 4, 64, UDP_PORT);

    // The SYN scan, then its alerts: both families must report within seconds.
    let nmap = |args: &[&str]| {
        let out = lab
            .cmd(&lab.ns_client, "nmap")
            .args(["-n", "-Pn", "-T4", "--max-retries", "1", "-e", &lab.veth_client])
            .args(args)
            .arg(SERVER)
            .output()
            .unwrap();
        assert!(out.status.success(), "nmap {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        Instant::now()
    };
    let scan_done = nmap(&["-sS", "-p1-200"]);
    let has_scan = |alerts: &[Value], mode: &str| {
        alerts.iter().any(|a| a["AlertType"] == "PortScan" && a["DetectionMode"] == mode && a["SrcIpAddr"] == CLIENT)
    };
    wait_for("sentinel and enhanced PortScan alerts", Duration::from_secs(10), || {
        let a = read_json_lines(&alerts);
        (has_scan(&a, "sentinel") && has_scan(&a, "enhanced")).then_some(())
    });
    eprintln!("measured: PortScan alerts (both families) {:?} after nmap -sS ended", scan_done.elapsed());

    // logrotate-style rotation while the client keeps producing records.
    let rotated = dir.join("records.jsonl.1");
    wait_for("some records before rotating", Duration::from_secs(10), || {
        (read_json_lines(&records).len() >= 3).then_some(())
    });
    std::fs::rename(&records, &rotated).unwrap();
    sensor.signal(Signal::SIGHUP);
    sensor.stderr.wait_line("SIGHUP", Duration::from_secs(5));
    wait_for("records in the reopened file", Duration::from_secs(10), || {
        (!read_json_lines(&records).is_empty()).then_some(())
    });

    let udp_done = nmap(&["-sU", "-p1-100"]);
    eprintln!("measured: nmap -sU finished {:?} after the SYN scan", udp_done - scan_done);
    stop.store(true, Ordering::Relaxed);
    let fetched = client.join().unwrap();
    // A connection still open at shutdown: its record must be flushed by SIGTERM.
    let baseline = fresh_stats(&sensor)["packets_read"].as_u64().unwrap();
    let held = format!(
        "import socket,sys\nc=socket.create_connection(('{SERVER}',{HTTP_PORT}))\nc.sendall(b'GET /small.bin HTTP/1.0\\r\\n')\n\
         print(c.getsockname()[1],flush=True)\nsys.stdin.read()\n"
    );
    let mut holder = lab
        .cmd(&lab.ns_client, "python3")
        .args(["-c", &held])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut port_line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()), &mut port_line).unwrap();
    let held_port: u64 = port_line.trim().parse().unwrap();
    wait_for("the held connection's packets to be read", Duration::from_secs(5), || {
        let s = fresh_stats(&sensor);
        (s["packets_read"].as_u64()? >= baseline + 4).then_some(())
    });

    let t = Instant::now();
    sensor.signal(Signal::SIGTERM);
    let (status, took) = sensor.wait(Duration::from_secs(5));
    eprintln!("measured: SIGTERM to exit {took:?} (wall {:?})", t.elapsed());
    assert_eq!(status.code(), Some(0), "{}", sensor.stderr.text());
    // Nothing moves on the link until tcpdump has stopped too (the held connection stays
    // open), so both saw exactly the same packets.
    lab.stop_background(tcpdump, Signal::SIGTERM);
    drop(holder.stdin.take());
    let _ = holder.wait();
    let captured = tcpdump_err.wait_line("packets captured", Duration::from_secs(5));

    // Stats: periodic lines, a final one, never a kernel drop.
    let stats = sensor.stderr.stats_lines();
    assert!(stats.len() >= 3, "{}", sensor.stderr.text());
    let last = stats.last().unwrap();
    assert_eq!(last["final"], true);
    for s in &stats {
        assert_eq!((s["kernel_dropped"].as_u64(), s["interface_dropped"].as_u64()), (Some(0), Some(0)), "{s}");
        assert_eq!(s["channel_drops"], 0, "{s}");
    }
    eprintln!("measured: {} packets, kernel drops {}", last["kernel_received"], last["kernel_dropped"]);
    let tcpdump_count: u64 = captured.split_whitespace().next().unwrap().parse().unwrap();
    assert_eq!(last["packets_read"].as_u64(), Some(tcpdump_count), "tcpdump: {}", tcpdump_err.text());

    // Rotation lost and split nothing: both files hold whole lines, all of them.
    let before = read_json_lines(&rotated);
    let after = read_json_lines(&records);
    assert!(!before.is_empty() && !after.is_empty());
    let live_records: Vec<Value> = before.into_iter().chain(after).collect();
    assert_eq!(live_records.len() as u64, last["records_written"].as_u64().unwrap());
    let mut ids: Vec<&str> = live_records.iter().map(|r| r["NetworkSessionId"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), live_records.len(), "a record was written twice");
    // A live sensor names its capture interface and that interface's address, and one run
    // prefix makes its session ids unique.
    for r in &live_records {
        assert_eq!(
            (r["DvcInterface"].as_str(), r["DvcIpAddr"].as_str()),
            (Some(&lab.veth_server[..]), Some(SERVER)),
            "{r}"
        );
    }
    let live_prefixes: BTreeSet<&str> = ids.iter().map(|id| id.split('-').next().unwrap()).collect();
    assert_eq!(live_prefixes.len(), 1, "{live_prefixes:?}");

    // The held connection was flushed at shutdown.
    let held_rec = live_records
        .iter()
        .find(|r| r["SrcPortNumber"] == held_port && r["DstPortNumber"] == HTTP_PORT)
        .expect("record of the connection open at SIGTERM");
    assert_eq!(held_rec["AdditionalFields"]["EndReason"], "shutdown", "{held_rec}");

    // Curl sessions: bytes and packets equal tcpdump's per-connection IP totals.
    let wire = tshark_http_sessions(&pcap);
    for (port, size) in &fetched {
        let r = live_records
            .iter()
            .find(|r| r["SrcPortNumber"] == *port && r["DstPortNumber"] == HTTP_PORT)
            .unwrap_or_else(|| panic!("no record for curl from port {port}"));
        let w = wire[port];
        let got = (
            r["SrcBytes"].as_u64().unwrap(),
            r["DstBytes"].as_u64().unwrap(),
            r["SrcPackets"].as_u64().unwrap(),
            r["DstPackets"].as_u64().unwrap(),
        );
        assert_eq!(got, w, "curl session from port {port}: record vs tcpdump");
        assert!(got.1 >= *size as u64, "DstBytes below the file size: {r}");
        assert_eq!(r["AdditionalFields"]["ConnState"], "SF", "{r}");
    }

    // Replay of tcpdump's capture: same records (timestamps aside) and same alerts.
    let rrec = dir.join("replay-records.jsonl");
    let ralerts = dir.join("replay-alerts.jsonl");
    let out = Command::new(bin())
        .arg("replay")
        .arg(&pcap)
        .arg("--records")
        .arg(&rrec)
        .arg("--alerts")
        .arg(&ralerts)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let replay_records = read_json_lines(&rrec);
    let replay_prefix = replay_records[0]["NetworkSessionId"].as_str().unwrap().split('-').next().unwrap().to_string();
    assert!(!live_prefixes.contains(&replay_prefix[..]), "a replay must not reuse the live run's session ids");
    assert!(replay_records.iter().all(|r| r.get("DvcInterface").is_none() && r.get("DvcIpAddr").is_none()));
    let (live_m, replay_m) = (multiset(&live_records), multiset(&replay_records));
    let only_live: Vec<_> = live_m.iter().filter(|(k, n)| replay_m.get(*k) != Some(n)).collect();
    let only_replay: Vec<_> = replay_m.iter().filter(|(k, n)| live_m.get(*k) != Some(n)).collect();
    assert!(only_live.is_empty() && only_replay.is_empty(), "live {only_live:#?}\nreplay {only_replay:#?}");
    let live_alerts = read_json_lines(&alerts);
    assert_eq!(alert_keys(&live_alerts), alert_keys(&read_json_lines(&ralerts)));
    assert!(live_records.len() > 300, "scans produce hundreds of sessions: {}", live_records.len());
}

/// Asks for a stats line (SIGUSR1) and returns it once printed.
fn fresh_stats(sensor: &Sensor) -> Value {
    let seen = sensor.stderr.stats_lines().len();
    sensor.signal(Signal::SIGUSR1);
    wait_for("a stats line after SIGUSR1", Duration::from_secs(5), || {
        let lines = sensor.stderr.stats_lines();
        (lines.len() > seen).then(|| lines.last().unwrap().clone())
    })
}
