//! Command-line flags as parsed by clap, before validation. Everything here is raw:
//! [`crate::config::Config::from_cli`] merges it with the TOML file and checks it.
//!
//! Conventions follow the tools our users live in: `-r FILE` reads a capture (tcpdump,
//! Suricata, Zeek), `-i IFACE`, `-s`, `-B`, `-p`, `-Z`, `-D` as tcpdump. The same
//! definition generates the shell completions and the man page ([`crate::discover`]).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Text shown after `--help` and in the man page: exit status and signals.
const AFTER_HELP: &str = "\
Exit status: 0 success (also when a reader closes stdout early); 1 the capture broke mid-run or an \
output could not be written (everything decoded before the fault is still written); 2 bad usage, \
a bad config file, or a capture or output that cannot be opened; 130 (143) a replay stopped by \
SIGINT (SIGTERM) after flushing everything.

Signals: SIGTERM and SIGINT stop with a full flush (open sessions are written as records, pending \
windows evaluated); a second SIGINT at least 1 s after the first exits at once without flushing. \
SIGHUP reloads the config file's detector settings and reopens the output files. SIGUSR1 writes a \
JSON stats line to stderr.";

#[derive(Parser, Debug)]
#[command(
    name = "flowsentry",
    version,
    about = "Network sensor: flow sessions (ASIM NetworkSession records), port-scan and beaconing detection",
    long_about = "Network sensor for a span/mirror port or pcap replay. Packets become bidirectional \
flow sessions; each session is written as an ASIM NetworkSession JSON record (--records) and fed \
to port-scan and beaconing detectors whose alerts go to stdout (or --alerts): readable lines at a \
terminal, JSON Lines otherwise.",
    after_long_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Replay pcap/pcapng captures, using packet timestamps as the only clock.
    Replay(ReplayArgs),
    /// Capture live from a network interface.
    Live(LiveArgs),
    /// Print a shell completion script (e.g. `flowsentry completions bash > /etc/bash_completion.d/flowsentry`).
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write every page into a directory.
    Man {
        /// Write flowsentry.1 and one page per command (flowsentry-replay.1, ...) into DIR.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

#[derive(Args, Debug, Clone)]
pub struct ReplayArgs {
    /// Read a capture (pcap or pcapng, plain or gzip/zstd; a file, a pipe or "-" = stdin); repeatable. Same as giving FILE.
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub read: Vec<PathBuf>,
    /// Captures to replay (pcap or pcapng, plain or gzip/zstd; files, pipes, "-" = stdin), merged by packet time.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Append to existing --records/--alerts files instead of replacing them.
    #[arg(long)]
    pub append: bool,
    /// Print a JSON stats line on stderr every N seconds of capture time (packet
    /// timestamps), e.g. to follow memory over a long capture [default: none].
    #[arg(long, value_name = "SECS")]
    pub stats_interval: Option<u64>,
    #[command(flatten)]
    pub common: CommonArgs,
}

impl ReplayArgs {
    /// Every input, `-r` ones first, then the positional ones.
    pub fn inputs(&self) -> Vec<PathBuf> {
        self.read.iter().chain(&self.files).cloned().collect()
    }
}

#[derive(Args, Debug, Clone)]
pub struct LiveArgs {
    /// Interface to capture on (e.g. eth1, or `any`).
    #[arg(short = 'i', long, value_name = "IFACE")]
    pub interface: Option<String>,
    /// List the interfaces that can be captured on (as tcpdump -D) and exit.
    #[arg(short = 'D', long)]
    pub list_interfaces: bool,
    /// Bytes captured per packet (headers are all flowsentry needs) [default: 512].
    #[arg(short = 's', long, value_name = "BYTES", value_parser = whole_number::<i32>, allow_negative_numbers = true)]
    pub snaplen: Option<i32>,
    /// Kernel capture buffer size in bytes.
    #[arg(short = 'B', long, value_name = "BYTES", value_parser = whole_number::<i32>, allow_negative_numbers = true)]
    pub buffer_size: Option<i32>,
    /// Do not put the interface into promiscuous mode.
    #[arg(short = 'p', long)]
    pub no_promisc: bool,
    /// Drop root privileges to this user once the capture is open (like tcpdump -Z).
    #[arg(short = 'Z', long, value_name = "NAME")]
    pub user: Option<String>,
    /// Print a JSON stats line on stderr every N seconds (0 = only on SIGUSR1).
    #[arg(long, value_name = "SECS", value_parser = whole_number::<u64>, allow_negative_numbers = true)]
    pub stats_interval: Option<u64>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Options shared by `replay` and `live`.
#[derive(Args, Debug, Default, Clone)]
pub struct CommonArgs {
    /// Settings file (TOML); command-line flags override it.
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Write one ASIM NetworkSession record per session as JSON Lines ("-" = stdout).
    #[arg(long, value_name = "PATH|-")]
    pub records: Option<String>,
    /// Where alerts go ("-" = stdout, the default): readable lines at a terminal, else JSON Lines.
    #[arg(short = 'a', long, value_name = "PATH|-")]
    pub alerts: Option<String>,
    /// Alerts as JSON Lines even when they go to a terminal.
    #[arg(long)]
    pub json: bool,
    /// Monitored networks, comma-separated CIDRs [default: 10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fc00::/7].
    #[arg(long, value_name = "CIDR[,CIDR...]")]
    pub home_net: Option<String>,
    /// Detector families to run [default: all].
    #[arg(long, value_name = "RULES", value_parser = ["all", "sentinel", "enhanced"])]
    pub rules: Option<String>,
    /// BPF filter expression applied before decoding.
    #[arg(short = 'f', long, value_name = "EXPR")]
    pub bpf: Option<String>,
    /// Sensor name written as Dvc in every record [default: the host name].
    #[arg(long, value_name = "NAME")]
    pub sensor_name: Option<String>,
    /// Sensor address written as DvcIpAddr [default: live, the capture interface's address; replay, none].
    #[arg(long, value_name = "ADDR")]
    pub sensor_ip: Option<String>,
    /// Seed of the records' Community ID (AdditionalFields.CommunityId), 0-65535 [default: 0].
    #[arg(long, value_name = "N")]
    pub community_id_seed: Option<u16>,
    /// Maximum sessions held in the flow table [default: 131072].
    #[arg(long, value_name = "N", value_parser = whole_number::<usize>, allow_negative_numbers = true)]
    pub max_flows: Option<usize>,
    /// Memory budget of the enhanced detectors' tables, MiB: sets their caps (enhanced.memory_mib; caps given in the config file win) [default: 40].
    #[arg(long, value_name = "MIB", value_parser = whole_number::<u64>, allow_negative_numbers = true)]
    pub memory_mib: Option<u64>,
    /// Idle timeout for established TCP sessions, seconds [default: 300].
    #[arg(long, value_name = "SECS", value_parser = seconds, allow_negative_numbers = true)]
    pub tcp_timeout: Option<f64>,
    /// Idle timeout for UDP sessions, seconds [default: 60].
    #[arg(long, value_name = "SECS", value_parser = seconds, allow_negative_numbers = true)]
    pub udp_timeout: Option<f64>,
    /// Active timeout: long sessions are split into records this long, seconds [default: 1800].
    #[arg(long, value_name = "SECS", value_parser = seconds, allow_negative_numbers = true)]
    pub active_timeout: Option<f64>,
    /// Also score beacons to destinations inside the home network.
    #[arg(long)]
    pub beacon_internal: bool,
    /// Seconds during which a finding is not alerted again [default: 3600].
    #[arg(long, value_name = "SECS", value_parser = seconds, allow_negative_numbers = true)]
    pub suppression: Option<f64>,
    /// Only errors on stderr (no summary, no progress line).
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// A whole number, with an error that names no Rust type.
fn whole_number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.trim().parse().map_err(|_| format!("'{s}' is not a whole number in range"))
}

/// A number of seconds (checked for range later, with the setting's name).
fn seconds(s: &str) -> Result<f64, String> {
    s.trim().parse().map_err(|_| format!("'{s}' is not a number of seconds"))
}
