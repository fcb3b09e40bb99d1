//! Replay input forms, end to end with the real binary and real tools: standard input
//! (`-`, `/dev/stdin`), a pipe, a FIFO, a process substitution, gzip and zstd files made
//! by the `gzip` and `zstd` tools (recognised by content, whatever their names), pcapng
//! through a pipe. Every form gives byte-identical records and alerts to the plain file.
//! Several files are merged by packet time: in any order on the command line they give
//! the output of their `mergecap` merge. A cut compressed file gives every packet before
//! the cut, one error line naming it, and exit 1.

mod common;
use common::*;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Flags for every replay here: records and alerts on stdout, a fixed sensor name.
const OUT: [&str; 5] = ["replay", "--records", "-", "--sensor-name", "t"];

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `flowsentry replay` with `inputs`, as `sh -c` runs it (for pipes and redirections):
/// `FS` is the binary and `REPLAY` the subcommand with the common flags.
fn shell(shell: &str, script: &str) -> Output {
    Command::new(shell).arg("-c").arg(script).env("FS", bin()).env("REPLAY", OUT.join(" ")).output().expect("run shell")
}

fn replay(inputs: &[&str]) -> Output {
    let mut args = OUT.to_vec();
    args.extend_from_slice(inputs);
    run(&args)
}

/// The output of a successful replay, checked to hold records and an alert.
fn ok_output(what: &str, o: &Output) -> Vec<u8> {
    assert!(o.status.success(), "{what}: exit {:?}: {}", o.status, stderr(o));
    assert!(!stderr(o).contains("error"), "{what}: {}", stderr(o));
    o.stdout.clone()
}

fn tool(name: &str, args: &[&str], out: &Path) {
    let file = std::fs::File::create(out).unwrap();
    let st = Command::new(name)
        .args(args)
        .stdout(file)
        .status()
        .unwrap_or_else(|e| panic!("{name} (see tests/install-deps.sh): {e}"));
    assert!(st.success(), "{name} {args:?}");
}

#[test]
fn every_input_form_gives_the_plain_files_output() {
    let dir = scratch("inputs-forms");
    let pcap = shared_pcap("beacon_quasarrat_tcp1337_3.5s__corelight.pcap");
    let pcap = path(&pcap);
    let plain = ok_output("plain", &replay(&[pcap]));
    let records = plain.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
    assert!(records > 300 && stdout(&replay(&[pcap])).contains("\"AlertName\""), "{records} lines");

    let gz = dir.join("q.pcap.gz");
    tool("gzip", &["-c", pcap], &gz);
    let zst = dir.join("q.pcap.zst");
    tool("zstd", &["-q", "-c", pcap], &zst);
    // Content, not the name, says it is compressed.
    let disguised = dir.join("disguised.pcap");
    std::fs::copy(&gz, &disguised).unwrap();

    let forms: Vec<(&str, Output)> = vec![
        ("cat | replay -", shell("sh", &format!("cat '{pcap}' | \"$FS\" $REPLAY -"))),
        ("replay /dev/stdin < file", shell("sh", &format!("\"$FS\" $REPLAY /dev/stdin < '{pcap}'"))),
        ("replay - < file", shell("sh", &format!("\"$FS\" $REPLAY - < '{pcap}'"))),
        ("replay <(zcat x.pcap.gz)", shell("bash", &format!("\"$FS\" $REPLAY <(zcat '{}')", path(&gz)))),
        ("replay x.pcap.gz", replay(&[path(&gz)])),
        ("replay x.pcap.zst", replay(&[path(&zst)])),
        ("replay gzip named .pcap", replay(&[path(&disguised)])),
        ("zstd -dc | replay -", shell("sh", &format!("zstd -dc '{}' | \"$FS\" $REPLAY -", path(&zst)))),
        ("cat x.pcap.gz | replay -", shell("sh", &format!("cat '{}' | \"$FS\" $REPLAY -", path(&gz)))),
    ];
    for (what, o) in &forms {
        assert_eq!(ok_output(what, o), plain, "{what}: output differs from the plain file's");
    }
}

#[test]
fn a_fifo_is_read_like_the_file() {
    let dir = scratch("inputs-fifo");
    let pcap = shared_pcap("scan_nmap_tcp_syn__evilfingers.pcap");
    let plain = ok_output("plain", &replay(&[path(&pcap)]));
    let fifo = dir.join("capture.fifo");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let writer = {
        let (fifo, pcap) = (fifo.clone(), pcap.clone());
        std::thread::spawn(move || {
            let bytes = std::fs::read(pcap).unwrap();
            std::fs::OpenOptions::new().write(true).open(fifo).unwrap().write_all(&bytes).unwrap();
        })
    };
    let o = replay(&[path(&fifo)]);
    writer.join().unwrap();
    assert_eq!(ok_output("fifo", &o), plain);
    assert!(plain.len() > 10_000);
}

#[test]
fn pcapng_through_a_pipe_and_compressed_matches_the_file() {
    let dir = scratch("inputs-pcapng");
    let ng = shared_pcap("benign_iot_amazon_echo_3min__ndpi_alexa-app.pcapng");
    let ng = path(&ng);
    let plain = ok_output("plain", &replay(&[ng]));
    assert!(plain.len() > 10_000);
    let zst = dir.join("n.pcapng.zst");
    tool("zstd", &["-q", "-c", ng], &zst);
    for (what, o) in [
        ("cat | replay -", shell("sh", &format!("cat '{ng}' | \"$FS\" $REPLAY -"))),
        ("replay x.pcapng.zst", replay(&[path(&zst)])),
        ("gzip -c | replay -", shell("sh", &format!("gzip -c '{ng}' | \"$FS\" $REPLAY -"))),
    ] {
        assert_eq!(ok_output(what, &o), plain, "{what}");
    }
    // With a BPF filter, through libpcap and a pipe as well.
    let filtered = |o: Output| ok_output("bpf", &o);
    let want = filtered(run(&["replay", "--records", "-", "--sensor-name", "t", "--bpf", "tcp", ng]));
    assert!(!want.is_empty() && want.len() < plain.len());
    let got = filtered(shell("sh", &format!("cat '{ng}' | \"$FS\" $REPLAY --bpf tcp -")));
    assert_eq!(got, want);
}

/// Splits a classic pcap file into its odd and even records (two interleaved captures).
fn split_alternate(src: &Path, a: &Path, b: &Path) {
    let bytes = std::fs::read(src).unwrap();
    assert_eq!(bytes[..4], 0xa1b2_c3d4u32.to_le_bytes(), "a little-endian classic pcap");
    let (mut out_a, mut out_b) = (bytes[..24].to_vec(), bytes[..24].to_vec());
    let (mut at, mut n) = (24, 0);
    while at + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let record = &bytes[at..at + 16 + caplen];
        if n % 2 == 0 { &mut out_a } else { &mut out_b }.extend_from_slice(record);
        at += 16 + caplen;
        n += 1;
    }
    assert_eq!(at, bytes.len());
    std::fs::write(a, out_a).unwrap();
    std::fs::write(b, out_b).unwrap();
}

fn mergecap(inputs: &[&str], out: &Path) {
    let o = Command::new("mergecap")
        .args(["-F", "pcap", "-w", path(out)])
        .args(inputs)
        .output()
        .expect("mergecap (wireshark-common, see tests/install-deps.sh)");
    assert!(o.status.success(), "mergecap: {}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn files_in_any_order_replay_like_their_mergecap_merge() {
    let dir = scratch("inputs-merge");
    // Three captures made one after the other: a scan, HTTP sessions, a periodic client.
    let scan = capture("nmap_syn_v4.pcap");
    let curl = capture("curl_sessions.pcap");
    let periodic = capture("periodic_client.pcap");
    let forward = [path(&scan), path(&curl), path(&periodic)];
    let merged = dir.join("merged.pcap");
    mergecap(&forward, &merged);
    let want = ok_output("mergecap merge", &replay(&[path(&merged)]));
    assert!(stdout(&replay(&[path(&merged)])).contains("\"AlertName\""));
    assert_eq!(ok_output("in time order", &replay(&forward)), want);
    assert_eq!(ok_output("reversed", &replay(&[forward[2], forward[1], forward[0]])), want);
    assert_eq!(ok_output("shuffled", &replay(&[forward[1], forward[2], forward[0]])), want);

    // One capture split into its odd and even packets: fully interleaved inputs (its
    // packets have distinct times, so there are no ties to order).
    let quasar = shared_pcap("beacon_quasarrat_tcp1337_3.5s__corelight.pcap");
    let (even, odd) = (dir.join("even.pcap"), dir.join("odd.pcap"));
    split_alternate(&quasar, &even, &odd);
    let whole = ok_output("whole", &replay(&[path(&quasar)]));
    let remerged = dir.join("remerged.pcap");
    mergecap(&[path(&odd), path(&even)], &remerged);
    assert_eq!(ok_output("mergecap of the halves", &replay(&[path(&remerged)])), whole);
    assert_eq!(ok_output("even odd", &replay(&[path(&even), path(&odd)])), whole);
    assert_eq!(ok_output("odd even", &replay(&[path(&odd), path(&even)])), whole);
    // Mixed forms in one merge: a gzip half and a piped half.
    let gz = dir.join("odd.pcap.gz");
    tool("gzip", &["-c", path(&odd)], &gz);
    let o = shell("sh", &format!("cat '{}' | \"$FS\" $REPLAY '{}' -", path(&even), path(&gz)));
    assert_eq!(ok_output("gzip + stdin", &o), whole);
}

#[test]
fn a_cut_compressed_capture_keeps_its_packets_and_exits_1() {
    let dir = scratch("inputs-cut");
    let pcap = shared_pcap("benign_ad_workstation_browsing_44min__elcabezzonn_aug_16_par4.pcap");
    let full = ok_output("plain", &replay(&[path(&pcap)]));
    let gz = dir.join("whole.pcap.gz");
    tool("gzip", &["-c", path(&pcap)], &gz);
    let packed = std::fs::read(&gz).unwrap();
    let cut = dir.join("cut.pcap.gz");
    std::fs::write(&cut, &packed[..packed.len() / 2]).unwrap();
    let o = replay(&[path(&cut)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let errors: Vec<String> = stderr(&o).lines().filter(|l| l.contains("error")).map(str::to_string).collect();
    assert_eq!(
        errors,
        vec![format!(
            "flowsentry: error: error reading capture file {}: gzip data is truncated (the compressed stream ends early)",
            path(&cut)
        )]
    );
    // Sessions of the packets before the cut were all flushed.
    let got = json_lines(&stdout(&o));
    assert!(got.len() > 20 && o.stdout.len() < full.len(), "{} records", got.len());
    // The summary counts what was read: about half of the capture's packets.
    let summary = stderr(&o);
    assert!(summary.contains("packets read"), "{summary}");

    // Another file in the same replay is read whole.
    let other = shared_pcap("scan_nmap_xmas__evilfingers.pcap");
    let o2 = replay(&[path(&cut), path(&other)]);
    assert_eq!(o2.status.code(), Some(1));
    let alone = ok_output("other alone", &replay(&[path(&other)]));
    assert!(o2.stdout.len() > alone.len() && stdout(&o2).contains("\"AlertName\""));
}

#[test]
fn unusable_inputs_are_one_line_errors() {
    let dir = scratch("inputs-bad");
    let xz_like = dir.join("x.pcap.xz");
    std::fs::write(&xz_like, [0xfd, b'7', b'z', b'X', b'Z', 0, 0, 0]).unwrap();
    for (args, needle) in [
        (vec!["replay", path(&xz_like)], "xz-compressed"),
        (vec!["replay", path(&dir)], "is a directory"),
        (vec!["replay", "-", "-"], "standard input can be given only once"),
    ] {
        let mut c = Command::new(bin());
        let o = c.args(&args).stdin(Stdio::null()).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let lines: Vec<&str> = std::str::from_utf8(&o.stderr).unwrap().lines().collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("flowsentry: error: ") && lines[0].contains(needle), "{lines:?}");
    }
    // An empty pipe is not a capture.
    let o = shell("sh", "printf '' | \"$FS\" replay -");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot open capture file stdin"), "{}", stderr(&o));
}
