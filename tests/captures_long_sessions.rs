//! The long-session captures (captures/make-long-sessions.sh) are what captures/README.md
//! says they are. Each capture is dissected with tshark, an independent tool, and checked
//! against the seeded schedule the script saved in captures/long-sessions.json: the
//! beacons have the planned number of check-ins at the planned gaps (inside one TCP
//! connection, one HTTP/1.1 connection, one UDP 5-tuple, or one new connection each time),
//! and the benign sessions have the shape that makes them benign (keepalive probes and no
//! payload, human keystroke timing, a continuous download or stream, sporadic TLS
//! requests). Nothing here runs flowsentry's detectors: these tests pin down the ground
//! truth that the detection tests rely on.

mod common;
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// Allowed difference (s) between a planned and a captured time. Clients act on an
/// absolute clock, so errors do not add up; this covers process start-up (curl,
/// openssl) and scheduling delays on a loaded machine.
const TOL: f64 = 0.25;

/// One captured frame, as tshark dissects it.
#[derive(Debug, Clone, Default)]
struct Pkt {
    t: f64,
    src: String,
    dst: String,
    stream: Option<u32>,
    sport: u16,
    dport: u16,
    udp: bool,
    /// TCP or UDP payload length on the wire (not the captured part).
    len: usize,
    flags: u16,
    keepalive: bool,
    keepalive_ack: bool,
    retransmission: bool,
    ip_len: usize,
    /// The captured part of the payload (snaplen may cut it).
    payload: Vec<u8>,
    http_method: String,
    http_uri: String,
    http_code: String,
    tls_handshake: Vec<u32>,
    /// Record content types (the outer, opaque type for encrypted TLS 1.3 records).
    tls_content: Vec<u32>,
    rtp_seq: Option<u32>,
    /// Relative sequence number after this segment's data.
    next_seq: usize,
}

impl Pkt {
    fn syn(&self) -> bool {
        self.flags & 0x12 == 0x02
    }
    fn fin(&self) -> bool {
        self.flags & 0x01 != 0
    }
    /// Payload that is new data: not a retransmission, not a keepalive probe.
    fn data(&self) -> bool {
        self.len > 0 && !self.retransmission && !self.keepalive
    }
}

const FIELDS: &[&str] = &[
    "frame.time_epoch",
    "ip.src",
    "ip.dst",
    "tcp.stream",
    "tcp.srcport",
    "tcp.dstport",
    "udp.srcport",
    "udp.dstport",
    "tcp.len",
    "udp.length",
    "tcp.flags",
    "tcp.analysis.keep_alive",
    "tcp.analysis.keep_alive_ack",
    "tcp.analysis.retransmission",
    "tcp.analysis.fast_retransmission",
    "tcp.analysis.spurious_retransmission",
    "ip.len",
    "tcp.payload",
    "udp.payload",
    "http.request.method",
    "http.request.uri",
    "http.response.code",
    "tls.handshake.type",
    "tls.record.content_type",
    "rtp.seq",
    "tcp.nxtseq",
    "tls.record.opaque_type",
];

fn hex(s: &str) -> Vec<u8> {
    let s = s.replace(':', "");
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

fn dissect(file: &Path) -> Vec<Pkt> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(file);
    // The RTP-like stream is on udp/5004, which tshark does not decode as RTP by itself.
    cmd.args(["-d", "udp.port==5004,rtp", "-T", "fields"]);
    cmd.args(["-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"]);
    for f in FIELDS {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("run tshark");
    assert!(out.status.success(), "tshark failed on {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut pkts = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), FIELDS.len(), "{}: unexpected tshark line {line:?}", file.display());
        let first = |i: usize| f[i].split(',').next().unwrap_or("");
        let num = |i: usize| first(i).parse::<usize>().unwrap_or(0);
        let list =
            |i: usize| f[i].split(',').filter(|x| !x.is_empty()).map(|x| x.parse().unwrap()).collect::<Vec<u32>>();
        let udp = !f[6].is_empty();
        pkts.push(Pkt {
            t: f[0].parse().unwrap(),
            src: first(1).to_string(),
            dst: first(2).to_string(),
            stream: first(3).parse().ok(),
            sport: if udp { num(6) } else { num(4) } as u16,
            dport: if udp { num(7) } else { num(5) } as u16,
            udp,
            len: if udp { num(9).saturating_sub(8) } else { num(8) },
            flags: u16::from_str_radix(first(10).trim_start_matches("0x"), 16).unwrap_or(0),
            keepalive: !f[11].is_empty(),
            keepalive_ack: !f[12].is_empty(),
            retransmission: !(f[13].is_empty() && f[14].is_empty() && f[15].is_empty()),
            ip_len: num(16),
            payload: hex(if udp { first(18) } else { first(17) }),
            http_method: first(19).to_string(),
            http_uri: first(20).to_string(),
            http_code: first(21).to_string(),
            tls_handshake: list(22),
            // TLS 1.3 records after the handshake carry their type as the "opaque type".
            tls_content: [list(23), list(26)].concat(),
            rtp_seq: first(24).parse().ok(),
            next_seq: num(25),
        });
    }
    pkts
}

fn plan() -> Value {
    let path = capture("long-sessions.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
}

/// A scenario of the plan and its capture, dissected; None when tshark is missing and
/// the run may skip (a developer's laptop).
fn scenario(name: &str) -> Option<(Value, Vec<Pkt>)> {
    if !have("tshark") {
        assert!(std::env::var_os("FLOWSENTRY_REQUIRE_ROOT_TESTS").is_none(), "tshark is missing");
        eprintln!("skipped: tshark not installed");
        return None;
    }
    let s = plan()["scenarios"][name].clone();
    assert!(s.is_object(), "long-sessions.json has no scenario {name}");
    let pkts = dissect(&capture(&format!("{name}.pcap")));
    assert!(!pkts.is_empty(), "{name}.pcap is empty");
    // Only the scenario's two hosts appear, in every packet.
    let (client, server) = (s["client"].as_str().unwrap(), s["server"].as_str().unwrap());
    for p in &pkts {
        let pair = [p.src.as_str(), p.dst.as_str()];
        assert!(
            pair == [client, server] || pair == [server, client],
            "{name}: packet at {} is {} -> {}, expected only {client} <-> {server}",
            p.t,
            p.src,
            p.dst
        );
    }
    Some((s, pkts))
}

fn client_of<'a>(s: &Value, pkts: &'a [Pkt]) -> impl Iterator<Item = &'a Pkt> {
    let c = s["client"].as_str().unwrap().to_string();
    pkts.iter().filter(move |p| p.src == c)
}

fn server_of<'a>(s: &Value, pkts: &'a [Pkt]) -> impl Iterator<Item = &'a Pkt> {
    let c = s["server"].as_str().unwrap().to_string();
    pkts.iter().filter(move |p| p.src == c)
}

/// Events happen at the planned offsets: T0 is the median of (captured time - planned
/// offset), and every event must be within TOL of T0 + its offset. (The median, not the
/// first event: a cold first `curl` or `openssl` start is the slowest.)
fn assert_on_schedule(what: &str, times: &[f64], offsets: &[f64]) {
    assert_eq!(times.len(), offsets.len(), "{what}: {} events captured, {} planned", times.len(), offsets.len());
    let mut starts: Vec<f64> = times.iter().zip(offsets).map(|(t, o)| t - o).collect();
    starts.sort_by(f64::total_cmp);
    let t0 = starts[starts.len() / 2];
    for (i, (t, o)) in times.iter().zip(offsets).enumerate() {
        let late = t - t0 - o;
        assert!(late.abs() <= TOL, "{what}: event {i} at T0+{:.3}s, planned T0+{o:.3}s", t - t0);
    }
}

/// Every gap between consecutive events lies in [lo - TOL, hi + TOL].
fn assert_gaps_within(what: &str, times: &[f64], lo: f64, hi: f64) -> Vec<f64> {
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    for (i, g) in gaps.iter().enumerate() {
        assert!(*g >= lo - TOL && *g <= hi + TOL, "{what}: gap {i} is {g:.3}s, outside [{lo}, {hi}]s");
    }
    gaps
}

fn cv(xs: &[f64]) -> f64 {
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
    var.sqrt() / mean
}

fn tcp_streams(pkts: &[Pkt]) -> BTreeSet<u32> {
    pkts.iter().filter_map(|p| p.stream).collect()
}

fn syns(pkts: &[Pkt]) -> Vec<&Pkt> {
    pkts.iter().filter(|p| !p.udp && p.syn()).collect()
}

/// One TCP connection from the client to the server port, opened once, closed by FINs
/// from both ends; no UDP.
fn assert_one_connection(name: &str, s: &Value, pkts: &[Pkt]) {
    assert_eq!(tcp_streams(pkts).len(), 1, "{name}: expected one TCP connection");
    assert!(pkts.iter().all(|p| !p.udp), "{name}: unexpected UDP");
    let syn = syns(pkts);
    assert_eq!(syn.len(), 1, "{name}: expected one SYN, found {}", syn.len());
    assert_eq!(syn[0].src, s["client"].as_str().unwrap(), "{name}: the client opens the connection");
    assert_eq!(syn[0].dport as u64, s["server_port"].as_u64().unwrap(), "{name}: server port");
    assert!(client_of(s, pkts).any(|p| p.fin()), "{name}: client never closed");
    assert!(server_of(s, pkts).any(|p| p.fin()), "{name}: server never closed");
}

fn payload_starts(p: &Pkt, tag: &[u8]) -> bool {
    p.payload.starts_with(tag)
}

#[test]
fn persistent_tcp_c2_checks_in_over_one_connection() {
    let name = "beacon_c2_tcp_persistent";
    let Some((s, pkts)) = scenario(name) else { return };
    assert_one_connection(name, &s, &pkts);
    let n = s["count"].as_u64().unwrap() as usize;
    let period = s["period_s"].as_f64().unwrap();
    let jitter = s["jitter"].as_f64().unwrap();
    let checkins: Vec<&Pkt> = client_of(&s, &pkts).filter(|p| p.data() && payload_starts(p, b"CHK")).collect();
    let times: Vec<f64> = checkins.iter().map(|p| p.t).collect();
    assert_eq!(checkins.len(), n, "{name}: check-ins");
    assert_on_schedule(name, &times, &floats(&s["offsets_s"]));
    let gaps = assert_gaps_within(name, &times, period * (1.0 - jitter), period * (1.0 + jitter));
    assert!(cv(&gaps) < jitter, "{name}: gaps vary more than the stated jitter");
    // Small requests of the planned sizes, each answered before the next check-in.
    let sizes: Vec<usize> = checkins.iter().map(|p| p.len).collect();
    assert_eq!(sizes, usizes(&s["request_bytes"]), "{name}: request sizes");
    let tasks = usizes(&s["task_checkins"]);
    for (i, c) in checkins.iter().enumerate() {
        let next = times.get(i + 1).copied().unwrap_or(f64::INFINITY);
        let reply: Vec<&Pkt> = server_of(&s, &pkts).filter(|p| p.data() && p.t > c.t && p.t < next).collect();
        assert!(!reply.is_empty(), "{name}: check-in {i} got no reply");
        let tag: &[u8] = if tasks.contains(&i) { b"TSK" } else { b"NOP" };
        assert!(payload_starts(reply[0], tag), "{name}: reply to check-in {i} is not {:?}", tag);
        let results: Vec<&Pkt> =
            client_of(&s, &pkts).filter(|p| p.data() && payload_starts(p, b"RES") && p.t > c.t && p.t < next).collect();
        if tasks.contains(&i) {
            assert_eq!(results.len(), 1, "{name}: task at check-in {i} has no result");
            let delay = results[0].t - c.t;
            assert!((0.15..0.5).contains(&delay), "{name}: result {delay:.3}s after its check-in");
        } else {
            assert!(results.is_empty(), "{name}: result without a task at check-in {i}");
        }
    }
    // Nothing but check-ins and results from the client.
    let other = client_of(&s, &pkts).filter(|p| p.data() && !payload_starts(p, b"CHK") && !payload_starts(p, b"RES"));
    assert_eq!(other.count(), 0, "{name}: other client payload");
}

#[test]
fn http_keepalive_client_posts_on_one_connection() {
    let name = "beacon_http_keepalive";
    let Some((s, pkts)) = scenario(name) else { return };
    assert_one_connection(name, &s, &pkts);
    let n = s["count"].as_u64().unwrap() as usize;
    let period = s["period_s"].as_f64().unwrap();
    let jitter = s["jitter"].as_f64().unwrap();
    let posts: Vec<&Pkt> = pkts.iter().filter(|p| !p.http_method.is_empty()).collect();
    assert_eq!(posts.len(), n, "{name}: HTTP requests");
    for p in &posts {
        assert_eq!(p.http_method, "POST", "{name}: method");
        assert_eq!(p.http_uri, s["path"].as_str().unwrap(), "{name}: URI");
        assert_eq!(p.src, s["client"].as_str().unwrap(), "{name}: POST from the client");
    }
    let responses = pkts.iter().filter(|p| p.http_code == "200").count();
    assert_eq!(responses, n, "{name}: HTTP 200 responses");
    let times: Vec<f64> = posts.iter().map(|p| p.t).collect();
    assert_on_schedule(name, &times, &floats(&s["offsets_s"]));
    assert_gaps_within(name, &times, period * (1.0 - jitter), period * (1.0 + jitter));
    // Python's http.client sends each POST as two segments, headers then body (the
    // frame tshark reports as the request); the client sends nothing else.
    let data: Vec<&Pkt> = client_of(&s, &pkts).filter(|p| p.data()).collect();
    assert_eq!(data.len(), 2 * n, "{name}: client payload segments");
    for (i, pair) in data.chunks(2).enumerate() {
        assert!(pair[0].payload.starts_with(b"POST "), "{name}: request {i} does not start with its headers");
        assert!(pair[1].t - pair[0].t < 0.1 && pair[1].t == times[i], "{name}: body {i} is not the POST frame");
    }
}

#[test]
fn udp_beacon_keeps_one_five_tuple() {
    let name = "beacon_udp_fixed_port";
    let Some((s, pkts)) = scenario(name) else { return };
    assert!(pkts.iter().all(|p| p.udp), "{name}: only UDP expected");
    let (cport, sport) = (s["client_port"].as_u64().unwrap() as u16, s["server_port"].as_u64().unwrap() as u16);
    let sent: Vec<&Pkt> = client_of(&s, &pkts).collect();
    let replies: Vec<&Pkt> = server_of(&s, &pkts).collect();
    assert!(sent.iter().all(|p| (p.sport, p.dport) == (cport, sport)), "{name}: client ports vary");
    assert!(replies.iter().all(|p| (p.sport, p.dport) == (sport, cport)), "{name}: server ports vary");
    let n = s["count"].as_u64().unwrap() as usize;
    assert_eq!(sent.len(), n, "{name}: datagrams sent");
    assert_eq!(replies.len(), n, "{name}: replies");
    let times: Vec<f64> = sent.iter().map(|p| p.t).collect();
    assert_on_schedule(name, &times, &floats(&s["offsets_s"]));
    let period = s["period_s"].as_f64().unwrap();
    let jitter = s["jitter"].as_f64().unwrap();
    assert_gaps_within(name, &times, period * (1.0 - jitter), period * (1.0 + jitter));
    for (i, (q, r)) in sent.iter().zip(&replies).enumerate() {
        assert!(r.t > q.t && r.t - q.t < 1.0, "{name}: reply {i} not right after its request");
        assert!(payload_starts(q, b"BCN") && payload_starts(r, b"ACK"), "{name}: datagram {i} payload");
    }
    let sizes: Vec<usize> = sent.iter().map(|p| p.len).collect();
    assert_eq!(sizes, usizes(&s["request_bytes"]), "{name}: request sizes");
}

#[test]
fn jittered_http_beacon_opens_a_connection_per_check_in() {
    let name = "beacon_http_jittered";
    let Some((s, pkts)) = scenario(name) else { return };
    let n = s["count"].as_u64().unwrap() as usize;
    let syn = syns(&pkts);
    assert_eq!(syn.len(), n, "{name}: connections (SYNs)");
    assert_eq!(tcp_streams(&pkts).len(), n, "{name}: TCP streams");
    let ports: BTreeSet<u16> = syn.iter().map(|p| p.sport).collect();
    assert_eq!(ports.len(), n, "{name}: each connection from its own source port");
    let gets: Vec<&Pkt> = pkts.iter().filter(|p| p.http_method == "GET").collect();
    assert_eq!(gets.len(), n, "{name}: GETs");
    let per_stream: BTreeSet<u32> = gets.iter().filter_map(|p| p.stream).collect();
    assert_eq!(per_stream.len(), n, "{name}: one GET per connection");
    assert!(gets.iter().all(|p| p.http_uri == s["path"].as_str().unwrap()), "{name}: URI");
    let times: Vec<f64> = syn.iter().map(|p| p.t).collect();
    assert_on_schedule(name, &times, &floats(&s["offsets_s"]));
    let period = s["period_s"].as_f64().unwrap();
    let gaps = assert_gaps_within(name, &times, 0.1 * period, 1.9 * period);
    // Heavy jitter: the gaps spread over most of the range.
    let (lo, hi) = gaps.iter().fold((f64::MAX, 0f64), |(a, b), g| (a.min(*g), b.max(*g)));
    assert!(lo < 0.4 * period && hi > 1.6 * period && cv(&gaps) > 0.35, "{name}: gaps not heavily jittered");
    // Every connection is closed by both ends.
    for st in tcp_streams(&pkts) {
        let fins: BTreeSet<&str> =
            pkts.iter().filter(|p| p.stream == Some(st) && p.fin()).map(|p| p.src.as_str()).collect();
        assert_eq!(fins.len(), 2, "{name}: stream {st} not closed by both ends");
    }
}

#[test]
fn idle_keepalive_connection_carries_no_payload_after_setup() {
    let name = "benign_tcp_keepalive_idle";
    let Some((s, pkts)) = scenario(name) else { return };
    assert_one_connection(name, &s, &pkts);
    let start = pkts[0].t;
    let data: Vec<&Pkt> = pkts.iter().filter(|p| p.data()).collect();
    assert_eq!(data.len(), 2, "{name}: expected exactly the hello and the welcome");
    assert!(data.iter().all(|p| p.t - start < 1.0), "{name}: payload after the first second");
    let span = pkts.last().unwrap().t - start;
    let duration = s["duration_s"].as_f64().unwrap();
    assert!((span - duration).abs() < 2.0, "{name}: spans {span:.1}s, planned {duration}s");
    let probes: Vec<f64> = client_of(&s, &pkts).filter(|p| p.keepalive).map(|p| p.t).collect();
    let intvl = s["keepintvl_s"].as_f64().unwrap();
    let expected = (duration / intvl) as usize - 1;
    assert!(probes.len() >= expected - 1 && probes.len() <= expected + 1, "{name}: {} probes", probes.len());
    // A keepalive probe carries no new data: zero bytes (Linux) or one garbage byte, at seq - 1.
    assert!(client_of(&s, &pkts).filter(|p| p.keepalive).all(|p| p.len <= 1), "{name}: probe with payload");
    assert_gaps_within(name, &probes, intvl - 0.2, intvl + 0.2);
    let acks = server_of(&s, &pkts).filter(|p| p.keepalive_ack).count();
    assert_eq!(acks, probes.len(), "{name}: every probe is answered");
    // Nothing but probes and their ACKs between the setup and the close.
    let setup_end = data.last().unwrap().t;
    let close = pkts.iter().find(|p| p.fin()).unwrap().t;
    let idle = pkts.iter().filter(|p| p.t > setup_end + 0.5 && p.t < close);
    assert!(idle.clone().all(|p| p.keepalive || p.keepalive_ack), "{name}: other packets while idle");
    assert_eq!(idle.count(), 2 * probes.len(), "{name}: idle packets");
}

#[test]
fn interactive_session_has_human_timing() {
    let name = "benign_interactive";
    let Some((s, pkts)) = scenario(name) else { return };
    assert_one_connection(name, &s, &pkts);
    let keys: Vec<&Pkt> = client_of(&s, &pkts).filter(|p| p.data()).collect();
    assert_eq!(keys.len() as u64, s["keystrokes"].as_u64().unwrap(), "{name}: one segment per keystroke");
    assert!(keys.iter().all(|p| p.len == 1), "{name}: keystroke segments carry one byte");
    // Group the keystrokes into commands (each ends with a newline) and check when each began.
    let commands = s["commands"].as_array().unwrap();
    let mut starts = Vec::new();
    let mut ends = Vec::new();
    let mut at_start = true;
    for k in &keys {
        if at_start {
            starts.push(k.t);
            at_start = false;
        }
        if k.payload == b"\n" {
            ends.push(k.t);
            at_start = true;
        }
    }
    let planned: Vec<f64> = commands.iter().map(|c| c["start_s"].as_f64().unwrap()).collect();
    assert_on_schedule(name, &starts, &planned);
    // Think times (newline to next command) are irregular and heavy tailed; typing is fast.
    let think: Vec<f64> = starts[1..].iter().zip(&ends).map(|(s, e)| s - e).collect();
    assert!(think.len() >= 20, "{name}: {} pauses", think.len());
    assert!(cv(&think) > 0.6, "{name}: think times too regular (cv {:.2})", cv(&think));
    let (lo, hi) = think.iter().fold((f64::MAX, 0f64), |(a, b), g| (a.min(*g), b.max(*g)));
    assert!(hi > 10.0 * lo, "{name}: think times span {lo:.2}..{hi:.2}s");
    // The server echoes every keystroke but the newline and prints output.
    let server_bytes: usize = server_of(&s, &pkts).filter(|p| p.data()).map(|p| p.len).sum();
    let outputs: usize = commands.iter().map(|c| c["output_bytes"].as_u64().unwrap() as usize).sum();
    assert!(server_bytes >= outputs + keys.len() - commands.len(), "{name}: server sent {server_bytes} bytes");
}

#[test]
fn bulk_download_is_one_continuous_transfer() {
    let name = "benign_bulk_download";
    let Some((s, pkts)) = scenario(name) else { return };
    assert_one_connection(name, &s, &pkts);
    let requests: Vec<&Pkt> = client_of(&s, &pkts).filter(|p| p.data()).collect();
    assert_eq!(requests.len(), 1, "{name}: the client sends only the GET");
    assert_eq!(requests[0].http_method, "GET", "{name}: method");
    // The token bucket drops packets before the wire, so tshark flags the segments that
    // fill those holes as retransmissions although each is seen once here: take all
    // data segments, and the byte count from the sequence space (headers + file).
    let data: Vec<&Pkt> = server_of(&s, &pkts).filter(|p| p.len > 0).collect();
    let bytes = data.iter().map(|p| p.next_seq - usize::from(p.fin())).max().unwrap() - 1;
    let file = s["file_bytes"].as_u64().unwrap() as usize;
    assert!(bytes > file && bytes < file + 1000, "{name}: server sent {bytes} bytes for a {file}-byte file");
    let on_wire: usize = data.iter().map(|p| p.len).sum();
    assert!(on_wire >= bytes, "{name}: {on_wire} payload bytes captured, sequence space says {bytes}");
    assert!(pkts.iter().all(|p| p.ip_len <= 1500), "{name}: frames larger than the 1500-byte MTU");
    let span = data.last().unwrap().t - data[0].t;
    // 160 kbit/s on the wire: at least 4 minutes, at most 6.
    assert!((240.0..360.0).contains(&span), "{name}: download took {span:.1}s");
    let max_gap = data.windows(2).map(|w| w[1].t - w[0].t).fold(0f64, f64::max);
    assert!(max_gap < 2.0, "{name}: the download paused for {max_gap:.2}s");
}

#[test]
fn video_stream_is_constant_bitrate() {
    let name = "benign_video_stream";
    let Some((s, pkts)) = scenario(name) else { return };
    assert!(pkts.iter().all(|p| p.udp), "{name}: only UDP expected");
    let port = s["server_port"].as_u64().unwrap() as u16;
    let cport = s["client_port"].as_u64().unwrap() as u16;
    assert!(pkts.iter().all(|p| [p.sport, p.dport] == [port, cport] || [p.sport, p.dport] == [cport, port]));
    let from_client: Vec<&Pkt> = client_of(&s, &pkts).collect();
    assert_eq!(from_client.len(), 1, "{name}: the client sends one PLAY datagram");
    assert!(payload_starts(from_client[0], b"PLAY"), "{name}: PLAY");
    let stream: Vec<&Pkt> = server_of(&s, &pkts).collect();
    let n = s["packets"].as_u64().unwrap() as usize;
    assert_eq!(stream.len(), n, "{name}: stream packets");
    let size = s["payload_bytes"].as_u64().unwrap() as usize;
    assert!(stream.iter().all(|p| p.len == size), "{name}: constant packet size");
    let seqs: Vec<u32> = stream.iter().map(|p| p.rtp_seq.expect("RTP sequence number")).collect();
    assert_eq!(seqs, (0..n as u32).collect::<Vec<_>>(), "{name}: RTP sequence numbers");
    let interval = s["interval_s"].as_f64().unwrap();
    let mut gaps: Vec<f64> = stream.windows(2).map(|w| w[1].t - w[0].t).collect();
    gaps.sort_by(f64::total_cmp);
    let median = gaps[gaps.len() / 2];
    assert!((median - interval).abs() < 0.002, "{name}: median gap {median:.4}s");
    assert!(gaps[gaps.len() - 1] < 0.3, "{name}: the stream stalled for {:.3}s", gaps[gaps.len() - 1]);
    let span = stream[n - 1].t - stream[0].t;
    let planned = interval * (n - 1) as f64;
    assert!((span - planned).abs() < 1.0, "{name}: spans {span:.2}s, planned {planned:.2}s");
}

#[test]
fn tls_session_has_sporadic_requests() {
    let name = "benign_tls_session";
    let Some((s, pkts)) = scenario(name) else { return };
    assert_one_connection(name, &s, &pkts);
    let hellos = |kind: u32| pkts.iter().filter(|p| p.tls_handshake.contains(&kind)).count();
    assert_eq!((hellos(1), hellos(2)), (1, 1), "{name}: one ClientHello and one ServerHello");
    // Requests: the client's application-data records after its handshake flight. TLS 1.3
    // hides the client Finished in such a record right after the ServerHello (so requests
    // are those at least a second after it), and the closing alert in a 24-byte one
    // (5-byte header, 2-byte alert, content type, 16-byte tag).
    let hello_t = pkts.iter().find(|p| p.tls_handshake.contains(&2)).unwrap().t;
    let requests: Vec<&Pkt> = client_of(&s, &pkts)
        .filter(|p| p.data() && p.tls_content == [23] && p.t > hello_t + 1.0 && p.len > 24)
        .collect();
    let closing: Vec<&Pkt> =
        client_of(&s, &pkts).filter(|p| p.data() && p.tls_content == [23] && p.len == 24).collect();
    assert_eq!(closing.len(), 1, "{name}: one close_notify from the client");
    let offsets = floats(&s["offsets_s"]);
    let times: Vec<f64> = requests.iter().map(|p| p.t).collect();
    assert_on_schedule(name, &times, &offsets);
    // One record per request line: 5-byte header, the line, content type, 16-byte tag.
    let sizes: Vec<usize> = requests.iter().map(|p| p.len).collect();
    let want: Vec<usize> = usizes(&s["line_bytes"]).iter().map(|b| b + 22).collect();
    assert_eq!(sizes, want, "{name}: request record sizes");
    for (i, r) in requests.iter().enumerate() {
        let answered = server_of(&s, &pkts).any(|p| p.data() && p.t > r.t && p.t < r.t + 1.0);
        assert!(answered, "{name}: request {i} has no answer");
    }
    // Sporadic: irregular gaps, long silences.
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(cv(&gaps) > 0.5, "{name}: requests too regular (cv {:.2})", cv(&gaps));
    assert!(gaps.iter().any(|g| *g > 45.0), "{name}: no long silence");
}

/// Every capture the script made is listed in SHA256SUMS with its current checksum, and
/// the stats table covers all of them.
#[test]
fn long_session_captures_match_their_checksums() {
    let sums = std::fs::read_to_string(capture("SHA256SUMS")).unwrap();
    let listed: BTreeMap<&str, &str> =
        sums.lines().filter_map(|l| l.split_once("  ")).map(|(sum, file)| (file, sum)).collect();
    let stats = std::fs::read_to_string(capture("long-sessions-stats.txt")).unwrap();
    let plan = plan();
    let names: Vec<String> = plan["scenarios"].as_object().unwrap().keys().map(|k| format!("{k}.pcap")).collect();
    assert_eq!(names.len(), 9);
    for name in &names {
        let want = listed.get(name.as_str()).unwrap_or_else(|| panic!("SHA256SUMS does not list {name}"));
        let out = Command::new("sha256sum").arg(capture(name)).output().expect("run sha256sum");
        let got = String::from_utf8_lossy(&out.stdout);
        assert_eq!(got.split_whitespace().next(), Some(*want), "{name}: checksum differs from SHA256SUMS");
        assert!(stats.contains(&format!("| {name} |")), "long-sessions-stats.txt misses {name}");
    }
}

/// The schedule is reproducible: drawing it again from the recorded seed gives the
/// committed long-sessions.json byte for byte.
#[test]
fn long_session_schedule_is_reproducible_from_its_seed() {
    if !have("python3") {
        assert!(std::env::var_os("FLOWSENTRY_REQUIRE_ROOT_TESTS").is_none(), "python3 is missing");
        eprintln!("skipped: python3 not installed");
        return;
    }
    let seed = plan()["seed"].as_u64().unwrap().to_string();
    let out = scratch("long-sessions-plan").join("plan.json");
    let run = Command::new("python3")
        .arg(capture("long_sessions.py"))
        .args(["plan", &seed])
        .arg(&out)
        .output()
        .expect("run python3");
    assert!(run.status.success(), "plan failed: {}", String::from_utf8_lossy(&run.stderr));
    let again = std::fs::read(&out).unwrap();
    assert!(again == std::fs::read(capture("long-sessions.json")).unwrap(), "seed {seed} draws a different schedule");
}
