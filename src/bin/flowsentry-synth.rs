//! `flowsentry-synth`: writes the project's synthetic captures (detection scenarios and
//! the benchmark mix) to pcap files, reproducibly from a seed.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use flowsentry::synth::flood::flood_mixed_in;
use flowsentry::synth::scenarios::DEFAULT_START_SECS;
use flowsentry::synth::{
    find_scenario, write_bulk, write_hosts, write_mixed, write_short, write_syn_flood, FloodParams, MixParams,
    MixReport, MixedParams, PcapWriter, ScenarioCtx, TsResolution, SCENARIOS,
};

/// Write a synthetic pcap for a named scenario (see --list).
#[derive(Parser, Debug)]
#[command(name = "flowsentry-synth", version)]
struct Args {
    /// Scenario name, or a benchmark mix (`mixed`, `short`, `hosts`, `bulk`, `syn_flood`).
    scenario: Option<String>,
    /// Output pcap file (`-` for stdout).
    #[arg(short = 'o', long = "output")]
    output: Option<String>,
    /// Random seed: the same seed gives a byte-identical file.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Capture start, seconds since the Unix epoch (default 2024-05-01T12:00:00Z).
    #[arg(long = "start", default_value_t = DEFAULT_START_SECS)]
    start: i64,
    /// Write nanosecond timestamps (pcap magic a1b23c4d) instead of microseconds.
    #[arg(long)]
    nanos: bool,
    /// Truncate stored frames to this many bytes (original length is kept).
    #[arg(long, default_value_t = 65535)]
    snaplen: u32,
    /// Write every IPv4 packet as IPv6 between documentation addresses (a.b.c.d becomes
    /// 2001:db8:aabb:ccdd::1; 10.0.0.0/8 becomes 2001:db8:a00::/40), for captures sent
    /// through a test network (benches/ceiling.sh).
    #[arg(long = "documentation-only")]
    documentation_only: bool,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
    /// syn_flood: SYNs per second.
    #[arg(long = "flood-rate", default_value_t = 200_000.0)]
    flood_rate: f64,
    /// syn_flood: share of the flood that is IPv6 (from random 2001:db8::/32 sources).
    /// 1.0 gives a flood of documentation addresses only, safe to push through a veth.
    #[arg(long = "flood-v6-share", default_value_t = 0.25)]
    flood_v6_share: f64,
    /// syn_flood: leave out the hidden scanner and beacon (their hosts are 10/8).
    #[arg(long = "flood-only")]
    flood_only: bool,
    /// Benchmark mixes: stop after this many packets (flood SYNs for syn_flood).
    #[arg(long, default_value_t = 1_000_000)]
    packets: u64,
    /// mixed, short, hosts, bulk: new sessions per second (default per mix, see --list).
    #[arg(long = "session-rate")]
    session_rate: Option<f64>,
    /// mixed, bulk: internal hosts; short: internal clients; hosts: the population of
    /// external sources (default per mix, see --list).
    #[arg(long)]
    hosts: Option<u32>,
    /// short, hosts, bulk: stop at this many seconds of traffic (before --packets if
    /// that comes first; give a large --packets to make a capture of a given length).
    #[arg(long = "duration")]
    duration: Option<f64>,
}

/// The streaming benchmark mixes: name, default session rate, default hosts, summary.
const MIXES: &[(&str, f64, u32, &str)] = &[
    ("mixed", 2000.0, 20_000, "benchmark mix (a): web, DNS, inbound, long sessions, a few scans"),
    ("short", 5000.0, 50_000, "mix (b): short sessions, small frames, DNS pairs, SYN scans; --hosts clients"),
    (
        "hosts",
        110.0,
        1_000_000,
        "mix (c): services + scanning radiation from --hosts sources, planted scanner and beacons",
    ),
    ("bulk", 300.0, 20_000, "mix (d): a few long bulk downloads carry most packets, over mix (a)"),
];

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        let mut out = io::stdout().lock();
        for s in SCENARIOS {
            let _ = writeln!(out, "{:<26} {}", s.name, s.summary);
        }
        for (name, rate, hosts, summary) in MIXES {
            let _ = writeln!(out, "{name:<26} {summary} (--packets N, --session-rate {rate}, --hosts {hosts})");
        }
        let _ = writeln!(
            out,
            "{:<26} spoofed SYN flood (--packets N --flood-rate R) hiding public_syn_scan and beacon_60s_exact",
            "syn_flood"
        );
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flowsentry-synth: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let name = args.scenario.as_deref().ok_or("no scenario given (try --list)")?;
    let path = args.output.as_deref().ok_or("no output file given (-o FILE)")?;
    let mix = MIXES.iter().find(|m| m.0 == name);
    if mix.is_none() && name != "syn_flood" && find_scenario(name).is_none() {
        return Err(format!("unknown scenario `{name}` (try --list)"));
    }
    let sink: Box<dyn Write> = if path == "-" {
        Box::new(io::stdout().lock())
    } else {
        Box::new(File::create(path).map_err(|e| format!("cannot create {path}: {e}"))?)
    };
    let res = if args.nanos { TsResolution::Nano } else { TsResolution::Micro };
    let mut w = PcapWriter::with_snaplen(sink, res, args.snaplen).map_err(|e| format!("{path}: {e}"))?;
    if args.documentation_only {
        w = w.documentation_only();
    }
    let ctx = ScenarioCtx::new(args.seed, args.start);
    let began = Instant::now();
    if name == "syn_flood" {
        if !(0.0..=1.0).contains(&args.flood_v6_share) {
            return Err(format!("--flood-v6-share must be between 0 and 1, got {}", args.flood_v6_share));
        }
        let params = FloodParams {
            packets: args.packets,
            rate: args.flood_rate,
            v6_share: args.flood_v6_share,
            ..FloodParams::default()
        };
        let hidden = if args.flood_only { Vec::new() } else { flood_mixed_in(&ctx, &params) };
        let n = write_syn_flood(&ctx, &params, &hidden, &mut w).map_err(|e| format!("{path}: {e}"))?;
        w.finish().map_err(|e| format!("{path}: {e}"))?;
        eprintln!("syn_flood: {n} packets written to {path} in {:.2} s", began.elapsed().as_secs_f64());
    } else if let Some(&(_, default_rate, default_hosts, _)) = mix {
        let (packets, session_rate, hosts) =
            (args.packets, args.session_rate.unwrap_or(default_rate), args.hosts.unwrap_or(default_hosts));
        if args.duration.is_some_and(|d| !(d > 0.0 && d.is_finite())) || (args.duration.is_some() && name == "mixed") {
            return Err("--duration must be a positive number of seconds (mixes short, hosts, bulk)".into());
        }
        let duration_secs = args.duration;
        let report = match name {
            "mixed" => write_mixed(&ctx, &MixedParams { packets, session_rate, hosts }, &mut w)
                .map(|stream| MixReport { stream, external_sources: 0 }),
            "short" => write_short(&ctx, &MixParams { packets, session_rate, hosts, duration_secs }, &mut w),
            "hosts" => write_hosts(&ctx, &MixParams { packets, session_rate, hosts, duration_secs }, &mut w),
            _ => write_bulk(&ctx, &MixParams { packets, session_rate, hosts, duration_secs }, &mut w),
        }
        .map_err(|e| format!("{path}: {e}"))?;
        let bytes = w.record_bytes();
        w.finish().map_err(|e| format!("{path}: {e}"))?;
        let secs = began.elapsed().as_secs_f64();
        let stats = report.stream;
        let sources = if name == "hosts" {
            format!(", {} distinct external sources", report.external_sources)
        } else {
            String::new()
        };
        eprintln!(
            "{name}: {} packets, {} sessions ({} scans){sources}, {:.1} s of traffic, {} MB, peak {} pending, written in {:.2} s ({:.2} Mpps)",
            stats.packets,
            stats.sessions,
            stats.scans,
            stats.last_ts.since(stats.first_ts).as_secs_f64(),
            bytes / 1_000_000,
            stats.peak_pending,
            secs,
            stats.packets as f64 / secs.max(1e-9) / 1e6
        );
    } else {
        let scenario = find_scenario(name).expect("checked above");
        let packets = (scenario.build)(&ctx);
        w.write_all_packets(&packets).map_err(|e| format!("{path}: {e}"))?;
        w.finish().map_err(|e| format!("{path}: {e}"))?;
        eprintln!("{name}: {} packets written to {path}", packets.len());
    }
    Ok(())
}
