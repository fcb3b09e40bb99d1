//! Command-line flags as parsed by clap, before validation. Everything here is raw:
//! [`crate::config::Config::from_cli`] merges it with the TOML file and checks it.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "flowsentry",
    version,
    about = "Network sensor: flow sessions (ASIM NetworkSession records), port-scan and beaconing detection",
    long_about = "Network sensor for a span/mirror port or pcap replay. Packets become bidirectional \
flow sessions; each session is written as an ASIM NetworkSession JSON record (--records) and fed \
to port-scan and beaconing detectors whose alerts go to stdout (or --alerts) as JSON Lines."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Replay pcap/pcapng files in order, using packet timestamps as the only clock.
    Replay {
        /// Capture files (pcap or pcapng), read one after another.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Print a JSON stats line on stderr every N seconds of capture time (packet
        /// timestamps), e.g. to follow memory over a long capture [default: none].
        #[arg(long, value_name = "SECS")]
        stats_interval: Option<u64>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Capture live from a network interface.
    Live {
        /// Interface to capture on (e.g. eth1, or `any`).
        #[arg(short = 'i', long, value_name = "IFACE")]
        interface: Option<String>,
        /// Bytes captured per packet (headers are all flowsentry needs) [default: 512].
        #[arg(short = 's', long, value_name = "BYTES")]
        snaplen: Option<i32>,
        /// Kernel capture buffer size in bytes.
        #[arg(short = 'B', long, value_name = "BYTES")]
        buffer_size: Option<i32>,
        /// Do not put the interface into promiscuous mode.
        #[arg(short = 'p', long)]
        no_promisc: bool,
        /// Drop root privileges to this user once the capture is open (like tcpdump -Z).
        #[arg(short = 'Z', long, value_name = "NAME")]
        user: Option<String>,
        /// Print a JSON stats line on stderr every N seconds (0 = only on SIGUSR1).
        #[arg(long, value_name = "SECS")]
        stats_interval: Option<u64>,
        #[command(flatten)]
        common: CommonArgs,
    },
}

/// Options shared by `replay` and `live`.
#[derive(Args, Debug, Default, Clone)]
pub struct CommonArgs {
    /// Settings file (TOML); command-line flags override it.
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Write one ASIM NetworkSession record per session as JSON Lines ("-" = stdout).
    #[arg(short = 'r', long, value_name = "PATH|-")]
    pub records: Option<String>,
    /// Where alerts go as JSON Lines ("-" = stdout, the default).
    #[arg(short = 'a', long, value_name = "PATH|-")]
    pub alerts: Option<String>,
    /// Monitored networks, comma-separated CIDRs [default: 10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fc00::/7].
    #[arg(long, value_name = "CIDR[,CIDR...]")]
    pub home_net: Option<String>,
    /// Detector families to run: all, sentinel or enhanced [default: all].
    #[arg(long, value_name = "all|sentinel|enhanced")]
    pub rules: Option<String>,
    /// BPF filter expression applied before decoding.
    #[arg(short = 'f', long, value_name = "EXPR")]
    pub bpf: Option<String>,
    /// Sensor name written as Dvc in every record [default: the host name].
    #[arg(long, value_name = "NAME")]
    pub sensor_name: Option<String>,
    /// Maximum sessions held in the flow table [default: 131072].
    #[arg(long, value_name = "N")]
    pub max_flows: Option<usize>,
    /// Idle timeout for established TCP sessions, seconds [default: 300].
    #[arg(long, value_name = "SECS")]
    pub tcp_timeout: Option<f64>,
    /// Idle timeout for UDP sessions, seconds [default: 60].
    #[arg(long, value_name = "SECS")]
    pub udp_timeout: Option<f64>,
    /// Active timeout: long sessions are split into records this long, seconds [default: 1800].
    #[arg(long, value_name = "SECS")]
    pub active_timeout: Option<f64>,
    /// Also score beacons to destinations inside the home network.
    #[arg(long)]
    pub beacon_internal: bool,
    /// Seconds during which a finding is not alerted again [default: 3600].
    #[arg(long, value_name = "SECS")]
    pub suppression: Option<f64>,
    /// Only errors on stderr (no summary).
    #[arg(short = 'q', long)]
    pub quiet: bool,
}
