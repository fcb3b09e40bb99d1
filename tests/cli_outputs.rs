//! Command-line conventions for inputs and outputs: `-r FILE` reads a capture (as
//! tcpdump, Suricata and Zeek), replay outputs are replaced unless `--append`, and no
//! mistyped command ever writes into a capture or an input, or empties an output before
//! everything else has been checked.

mod common;
use common::*;
use std::path::Path;

fn demo() -> String {
    capture("demo.pcap").to_str().unwrap().to_string()
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_default()
}

#[test]
fn dash_r_reads_captures_like_positional_files() {
    let a = shared_pcap("beacon_quasarrat_tcp1337_3.5s__corelight.pcap");
    let b = capture("nmap_syn_v4.pcap");
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let base = ["replay", "--records", "-", "--sensor-name", "t"];
    let positional = run(&[&base[..], &[a, b]].concat());
    let dash_r = run(&[&base[..], &["-r", a, "-r", b]].concat());
    let mixed = run(&[&base[..], &["-r", a, b]].concat());
    let long = run(&[&base[..], &["--read", a, "--read", b]].concat());
    assert!(positional.status.success(), "{}", stderr(&positional));
    assert!(positional.stdout.len() > 1000);
    for o in [&dash_r, &mixed, &long] {
        assert!(o.status.success(), "{}", stderr(o));
        assert_eq!(o.stdout, positional.stdout);
    }
}

#[test]
fn the_old_dash_r_habit_reads_instead_of_overwriting_a_capture() {
    // Before, `-r` meant --records: this appended JSON to old.pcap.
    let dir = scratch("cli-old-r");
    let old = dir.join("old.pcap");
    std::fs::copy(capture("nmap_syn_v4.pcap"), &old).unwrap();
    let before = read(&old);
    let o = run(&["replay", "-r", old.to_str().unwrap(), &demo()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(&old), before, "a capture given with -r must never change");
    // Both captures were read: the nmap scan of old.pcap raises alerts too.
    let alerts = json_lines(&stdout(&o));
    assert!(alerts.iter().any(|a| a["SrcIpAddr"] == "198.51.100.10"), "{alerts:?}");
}

#[test]
fn replay_outputs_are_replaced_unless_append() {
    let dir = scratch("cli-truncate");
    let rec = dir.join("records.jsonl");
    let al = dir.join("alerts.jsonl");
    let (r, a) = (rec.to_str().unwrap(), al.to_str().unwrap());
    let args = ["replay", "--records", r, "--alerts", a, "--sensor-name", "t", "--home-net", "192.0.2.0/24"];
    let once = run(&[&args[..], &[&demo()]].concat());
    assert!(once.status.success(), "{}", stderr(&once));
    let (r1, a1) = (read(&rec), read(&al));
    assert!(!r1.is_empty() && !a1.is_empty());
    let twice = run(&[&args[..], &[&demo()]].concat());
    assert!(twice.status.success());
    assert_eq!(read(&rec), r1, "a second replay replaces the records, it does not double them");
    assert_eq!(read(&al), a1);
    let appended = run(&[&args[..], &["--append", &demo()]].concat());
    assert!(appended.status.success(), "{}", stderr(&appended));
    assert_eq!(read(&rec), [r1.clone(), r1].concat(), "--append keeps what was there");
    assert_eq!(read(&al), [a1.clone(), a1].concat());
}

#[test]
fn outputs_that_are_inputs_or_hold_captures_are_refused_and_left_intact() {
    let dir = scratch("cli-refuse");
    let pcap = dir.join("evidence.pcap");
    std::fs::copy(capture("demo.pcap"), &pcap).unwrap();
    let pcapng = dir.join("evidence.pcapng");
    std::fs::write(&pcapng, [0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a]).unwrap();
    let gz = dir.join("old.pcap.gz");
    std::fs::write(&gz, [0x1f, 0x8b, 0x08, 0x00, 1, 2, 3, 4]).unwrap();
    let keep = dir.join("records.jsonl");
    std::fs::write(&keep, "{\"kept\":true}\n").unwrap();
    let snapshot = |p: &Path| read(p);
    let (before_pcap, before_ng, before_gz, before_keep) =
        (snapshot(&pcap), snapshot(&pcapng), snapshot(&gz), snapshot(&keep));
    let p = pcap.to_str().unwrap();
    let demo = demo();
    let demo = demo.as_str();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["replay", "--records", p, p], "it is also an input"),
        (vec!["replay", "--alerts", p, "-r", p], "it is also an input"),
        (vec!["replay", "--records", p, demo], "it holds a pcap capture"),
        (vec!["replay", "--alerts", pcapng.to_str().unwrap(), demo], "it holds a pcapng capture"),
        (vec!["replay", "--records", gz.to_str().unwrap(), demo], "gzip-compressed data"),
        // The records file is named first: it must not be emptied when a later check fails.
        (vec!["replay", "--records", keep.to_str().unwrap(), "--alerts", p, demo], "it holds a pcap capture"),
        (vec!["live", "-i", "lo", "--records", p], "it holds a pcap capture"),
    ];
    for (args, why) in cases {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("flowsentry: error: refusing to write "), "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: {err}");
    }
    assert_eq!(snapshot(&pcap), before_pcap);
    assert_eq!(snapshot(&pcapng), before_ng);
    assert_eq!(snapshot(&gz), before_gz);
    assert_eq!(snapshot(&keep), before_keep);
}

#[test]
fn a_failing_command_empties_no_output() {
    let dir = scratch("cli-no-loss");
    let keep = dir.join("records.jsonl");
    let k = keep.to_str().unwrap();
    std::fs::write(&keep, "{\"kept\":true}\n").unwrap();
    let bad_config = dir.join("bad.toml");
    std::fs::write(&bad_config, "[flow]\nmax_flowz = 3\n").unwrap();
    let not_a_dir = dir.join("records.jsonl/alerts.jsonl");
    let demo = demo();
    let demo = demo.as_str();
    let cases: Vec<Vec<&str>> = vec![
        vec!["replay", "--records", k, "/nonexistent/x.pcap"],
        vec!["replay", "--records", k, "--rules", "bogus", demo],
        vec!["replay", "--records", k, "-c", bad_config.to_str().unwrap(), demo],
        vec!["replay", "--records", k, "--alerts", not_a_dir.to_str().unwrap(), demo],
        vec!["replay", "--records", k, "--max-flows", "0", demo],
        vec!["replay", "--records", k, "--recrods", "x", demo],
    ];
    for args in cases {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_eq!(read(&keep), b"{\"kept\":true}\n", "{args:?} emptied an output: {}", stderr(&o));
    }
}

#[test]
fn alerts_leave_in_time_generated_order() {
    for name in [
        "scan_masscan_tcp_0-1000__esnet.pcap",
        "beacon_empire_http_5s__elcabezzonn_wmi_to_vss.pcap",
        "scan_horizontal_telnet_hideandseek_botnet__slips_test7.pcap",
    ] {
        let f = shared_pcap(name);
        let o = run(&["replay", f.to_str().unwrap(), "--home-net", "192.168.0.0/16"]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let times: Vec<String> =
            json_lines(&stdout(&o)).iter().map(|a| a["TimeGenerated"].as_str().unwrap().to_string()).collect();
        let mut sorted = times.clone();
        sorted.sort();
        assert_eq!(times, sorted, "{name}: alerts out of TimeGenerated order");
    }
    let o = run(&["replay", "--home-net", "192.0.2.0/24", &demo()]);
    let times: Vec<String> =
        json_lines(&stdout(&o)).iter().map(|a| a["TimeGenerated"].as_str().unwrap().to_string()).collect();
    assert_eq!(times.len(), 4);
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}
