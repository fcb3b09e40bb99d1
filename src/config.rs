//! Settings: a TOML file (`--config`) merged with command-line flags (flags win),
//! validated into one [`Config`]. Every error names the setting and what was wrong.

use crate::cli::{Cli, Command, CommonArgs, LiveArgs, ReplayArgs};
use crate::detect::enhanced::budget::ExplicitCaps;
use crate::detect::{enhanced::EnhancedConfig, sentinel::SentinelLimits, DetectConfig, RuleSet};
use crate::flow::FlowConfig;
use crate::net::NetSet;
use crate::time::Duration;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Where a JSON Lines stream goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputPath {
    Stdout,
    File(PathBuf),
}

impl OutputPath {
    fn parse(s: &str) -> Self {
        if s == "-" {
            OutputPath::Stdout
        } else {
            OutputPath::File(PathBuf::from(s))
        }
    }
}

/// Live-capture settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveConfig {
    pub interface: String,
    pub snaplen: i32,
    pub buffer_size: Option<i32>,
    pub promisc: bool,
    pub read_timeout_ms: i32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceConfig {
    Replay { files: Vec<PathBuf> },
    Live(LiveConfig),
}

/// The validated configuration the pipeline runs with.
#[derive(Clone, Debug)]
pub struct Config {
    pub source: SourceConfig,
    pub bpf: Option<String>,
    pub records: Option<OutputPath>,
    pub alerts: OutputPath,
    pub flow: FlowConfig,
    pub detect: DetectConfig,
    pub sensor_name: String,
    /// `DvcIpAddr` when given (`--sensor-ip`, `sensor_ip`).
    pub sensor_ip: Option<std::net::IpAddr>,
    /// Seed of the records' Community ID (`--community-id-seed`, `community_id_seed`).
    pub community_id_seed: u16,
    /// Periodic stats lines (live: wall-clock time; replay: capture time); None = only
    /// on SIGUSR1 (live) or none (replay).
    pub stats_interval: Option<std::time::Duration>,
    pub user: Option<String>,
    pub config_file: Option<PathBuf>,
    pub quiet: bool,
    /// Output files are appended to (live, or `replay --append`) rather than replaced.
    pub append: bool,
    /// Alerts as JSON Lines even at a terminal (`--json`).
    pub json_alerts: bool,
    /// The raw shared flags, kept so a SIGHUP reload lets them keep winning over the file.
    pub common: CommonArgs,
}

/// The TOML file, all optional. Unknown keys are errors (typos must not pass silently).
#[derive(Deserialize, Default, Debug)]
#[serde(default, deny_unknown_fields)]
pub struct FileSettings {
    pub records: Option<String>,
    pub alerts: Option<String>,
    pub home_net: Option<Vec<String>>,
    pub rules: Option<String>,
    pub bpf: Option<String>,
    pub sensor_name: Option<String>,
    pub sensor_ip: Option<String>,
    pub community_id_seed: Option<u16>,
    pub stats_interval: Option<u64>,
    pub user: Option<String>,
    pub capture: CaptureSettings,
    pub flow: FlowSettings,
    pub detect: DetectSettings,
    pub enhanced: Option<EnhancedConfig>,
    pub sentinel: Option<SentinelLimits>,
    /// The keys written in `[enhanced]`: a cap given there wins over `memory_mib`.
    #[serde(skip)]
    pub enhanced_keys: Vec<String>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureSettings {
    pub interface: Option<String>,
    pub snaplen: Option<i32>,
    pub buffer_size: Option<i32>,
    pub promisc: Option<bool>,
    pub read_timeout_ms: Option<i32>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, deny_unknown_fields)]
pub struct FlowSettings {
    pub tcp_timeout: Option<f64>,
    pub tcp_handshake_timeout: Option<f64>,
    pub udp_timeout: Option<f64>,
    pub icmp_timeout: Option<f64>,
    pub other_timeout: Option<f64>,
    pub active_timeout: Option<f64>,
    pub max_flows: Option<usize>,
    pub exchange_gap: Option<f64>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, deny_unknown_fields)]
pub struct DetectSettings {
    pub suppression: Option<f64>,
}

impl FileSettings {
    /// Reads and parses the file; errors are one line with file:line:column, the key,
    /// and the closest valid key for a typo (see [`crate::config_errors`]).
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {}", path.display(), crate::error_text::io_reason(&e)))?;
        let mut file: FileSettings =
            toml::from_str(&text).map_err(|e| crate::config_errors::parse_error(path, &text, &e))?;
        file.enhanced_keys = enhanced_keys(&text);
        Ok(file)
    }
}

/// The keys of the `[enhanced]` table of a config file that parsed.
fn enhanced_keys(text: &str) -> Vec<String> {
    let table: toml::Table = toml::from_str(text).unwrap_or_default();
    match table.get("enhanced") {
        Some(toml::Value::Table(t)) => t.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Errors name the setting first (its config-file key); [`crate::config_errors`] turns
/// the name into the flag that was given or the key's file:line:column.
fn seconds(name: &str, v: f64) -> Result<Duration, String> {
    if !v.is_finite() || v <= 0.0 || v > 86_400.0 * 365.0 {
        return Err(format!("{name} must be a positive number of seconds, got {v}"));
    }
    Ok(Duration::from_secs_f64(v))
}

pub fn parse_rules(s: &str) -> Result<RuleSet, String> {
    match s {
        "all" => Ok(RuleSet::All),
        "sentinel" => Ok(RuleSet::Sentinel),
        "enhanced" => Ok(RuleSet::Enhanced),
        other => Err(format!(
            "rules must be all, sentinel or enhanced, not '{other}'{}",
            crate::error_text::did_you_mean(other, ["all", "sentinel", "enhanced"])
        )),
    }
}

fn parse_home_net(list: &str) -> Result<NetSet, String> {
    let set = NetSet::parse_list(list).map_err(|e| format!("home_net: {e}"))?;
    if set.is_empty() {
        return Err("home_net is empty".into());
    }
    Ok(set)
}

/// The host name, for `Dvc`.
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "flowsentry".to_string())
}

impl Config {
    /// Validates `replay` or `live` flags merged with the config file. Errors name the
    /// setting first (see [`crate::config_errors::locate`]).
    pub fn from_cli(cli: Cli) -> Result<Config, String> {
        Self::from_command(cli.command)
    }

    /// [`Config::from_cli`] for the parsed subcommand.
    pub fn from_command(command: Command) -> Result<Config, String> {
        match command {
            Command::Replay(args) => Self::replay(args),
            Command::Live(args) => Self::live(args),
            Command::Completions { .. } | Command::Man { .. } => Err("this command takes no capture settings".into()),
        }
    }

    fn load_file(common: &CommonArgs) -> Result<FileSettings, String> {
        match &common.config {
            Some(p) => FileSettings::load(p),
            None => Ok(FileSettings::default()),
        }
    }

    fn replay(args: ReplayArgs) -> Result<Config, String> {
        let files = args.inputs();
        if files.is_empty() {
            return Err("replay needs a capture to read: flowsentry replay -r FILE (or FILE..., or - for stdin)".into());
        }
        let file = Self::load_file(&args.common)?;
        let mut cfg = Self::merge(&args.common, &file)?;
        cfg.source = SourceConfig::Replay { files };
        cfg.append = args.append;
        // Stats lines in capture time only when asked for (0: none); the config file's
        // stats_interval is the live service's.
        cfg.stats_interval = args.stats_interval.filter(|&e| e > 0).map(std::time::Duration::from_secs);
        Ok(cfg)
    }

    fn live(args: LiveArgs) -> Result<Config, String> {
        let LiveArgs { interface, list_interfaces: _, snaplen, buffer_size, no_promisc, user, stats_interval, common } =
            args;
        let file = Self::load_file(&common)?;
        let mut cfg = Self::merge(&common, &file)?;
        let interface = interface.or_else(|| file.capture.interface.clone()).ok_or_else(|| {
            "live capture needs an interface: flowsentry live -i IFACE (or capture.interface in the config file; \
             flowsentry live -D lists them)"
                .to_string()
        })?;
        let snaplen = snaplen.or(file.capture.snaplen).unwrap_or(crate::capture::live::DEFAULT_SNAPLEN);
        if !(64..=262_144).contains(&snaplen) {
            return Err(format!("snaplen must be between 64 and 262144 bytes, got {snaplen}"));
        }
        let buffer_size = buffer_size.or(file.capture.buffer_size);
        if let Some(b) = buffer_size {
            if b < 65_536 {
                return Err(format!("buffer_size must be at least 65536 bytes, got {b}"));
            }
        }
        let read_timeout_ms = file.capture.read_timeout_ms.unwrap_or(250);
        if !(1..=10_000).contains(&read_timeout_ms) {
            return Err(format!("read_timeout_ms must be between 1 and 10000, got {read_timeout_ms}"));
        }
        cfg.source = SourceConfig::Live(LiveConfig {
            interface,
            snaplen,
            buffer_size,
            promisc: !no_promisc && file.capture.promisc.unwrap_or(true),
            read_timeout_ms,
        });
        cfg.user = user.or_else(|| file.user.clone());
        let every = stats_interval.or(file.stats_interval).unwrap_or(60);
        cfg.stats_interval = (every > 0).then(|| std::time::Duration::from_secs(every));
        // A restart must never wipe what the service wrote before.
        cfg.append = true;
        Ok(cfg)
    }

    /// Settings shared by both modes; the source is filled in by the caller.
    fn merge(common: &CommonArgs, file: &FileSettings) -> Result<Config, String> {
        let records = common.records.as_deref().or(file.records.as_deref()).map(OutputPath::parse);
        let alerts = OutputPath::parse(common.alerts.as_deref().or(file.alerts.as_deref()).unwrap_or("-"));
        if let (Some(OutputPath::File(r)), OutputPath::File(a)) = (&records, &alerts) {
            if r == a || crate::output::guard::same_file(r, a) {
                return Err(format!("records and alerts both name {}; give them different files", r.display()));
            }
        }
        let detect = Self::detect_config(common, file)?;
        let mut flow = FlowConfig::default();
        let f = &file.flow;
        if let Some(v) = common.tcp_timeout.or(f.tcp_timeout) {
            flow.tcp_idle = seconds("tcp_timeout", v)?;
        }
        if let Some(v) = f.tcp_handshake_timeout {
            flow.tcp_handshake_idle = seconds("tcp_handshake_timeout", v)?;
        }
        if let Some(v) = common.udp_timeout.or(f.udp_timeout) {
            flow.udp_idle = seconds("udp_timeout", v)?;
        }
        if let Some(v) = f.icmp_timeout {
            flow.icmp_idle = seconds("icmp_timeout", v)?;
        }
        if let Some(v) = f.other_timeout {
            flow.other_idle = seconds("other_timeout", v)?;
        }
        if let Some(v) = common.active_timeout.or(f.active_timeout) {
            flow.active_timeout = seconds("active_timeout", v)?;
        }
        if let Some(n) = common.max_flows.or(f.max_flows) {
            if n == 0 || n > 50_000_000 {
                return Err(format!("max_flows must be between 1 and 50000000, got {n}"));
            }
            flow.max_flows = n;
        }
        if let Some(v) = f.exchange_gap {
            if !(v == 0.0 || (0.5..=3600.0).contains(&v)) {
                return Err(format!("flow.exchange_gap must be 0 (off) or 0.5..3600 seconds, got {v}"));
            }
            flow.exchange_gap = Duration::from_secs_f64(v);
        }
        let bpf = common.bpf.clone().or_else(|| file.bpf.clone()).filter(|s| !s.trim().is_empty());
        let sensor_ip = match common.sensor_ip.as_deref().or(file.sensor_ip.as_deref()) {
            Some(a) => Some(a.trim().parse().map_err(|_| format!("sensor_ip must be an IP address, got '{a}'"))?),
            None => None,
        };
        Ok(Config {
            source: SourceConfig::Replay { files: Vec::new() },
            bpf,
            records,
            alerts,
            flow,
            detect,
            sensor_name: common.sensor_name.clone().or_else(|| file.sensor_name.clone()).unwrap_or_else(host_name),
            sensor_ip,
            community_id_seed: common.community_id_seed.or(file.community_id_seed).unwrap_or(0),
            stats_interval: None,
            user: None,
            config_file: common.config.clone(),
            quiet: common.quiet,
            append: false,
            json_alerts: common.json,
            common: common.clone(),
        })
    }

    fn detect_config(common: &CommonArgs, file: &FileSettings) -> Result<DetectConfig, String> {
        let mut d = DetectConfig::default();
        if let Some(r) = common.rules.as_deref().or(file.rules.as_deref()) {
            d.rules = parse_rules(r)?;
        }
        if let Some(h) = &common.home_net {
            d.home_net = parse_home_net(h)?;
        } else if let Some(list) = &file.home_net {
            d.home_net = parse_home_net(&list.join(","))?;
        }
        if let Some(s) = common.suppression.or(file.detect.suppression) {
            d.suppression = seconds("suppression", s)?;
        }
        if let Some(e) = &file.enhanced {
            d.enhanced = e.clone();
        }
        if common.beacon_internal {
            d.enhanced.beacon_internal = true;
        }
        let given = |key: &str| file.enhanced_keys.iter().any(|k| k == key);
        d.enhanced.explicit_caps = ExplicitCaps {
            scan_max_sources: given("scan_max_sources"),
            beacon_max_series: given("beacon_max_series"),
            scan_max_targets_per_source: given("scan_max_targets_per_source"),
        };
        if let Some(m) = common.memory_mib {
            d.enhanced.memory_mib = m;
        }
        d.enhanced.validate()?;
        d.enhanced.apply_budget();
        if let Some(s) = &file.sentinel {
            s.validate()?;
            d.sentinel = *s;
        }
        Ok(d)
    }

    /// Re-reads the config file for a SIGHUP: home networks, thresholds, allowlists.
    /// Flags given on the command line keep winning.
    pub fn reload_detect(&self) -> Result<DetectConfig, String> {
        let file = match &self.config_file {
            Some(p) => FileSettings::load(p)?,
            None => FileSettings::default(),
        };
        Self::detect_config(&self.common, &file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let cli = Cli::try_parse_from(args).map_err(|e| e.to_string())?;
        Config::from_cli(cli)
    }

    #[test]
    fn replay_defaults() {
        let c = parse(&["flowsentry", "replay", "a.pcap", "b.pcapng"]).unwrap();
        assert_eq!(c.source, SourceConfig::Replay { files: vec!["a.pcap".into(), "b.pcapng".into()] });
        assert_eq!(c.alerts, OutputPath::Stdout);
        assert_eq!(c.records, None);
        assert_eq!(c.detect.rules, RuleSet::All);
        assert!(c.detect.home_net.contains("192.168.1.1".parse().unwrap()));
        assert!(!c.detect.home_net.contains("203.0.113.1".parse().unwrap()));
    }

    #[test]
    fn bad_values_are_named() {
        assert!(parse(&["flowsentry", "replay", "--rules", "magic", "a"]).unwrap_err().contains("magic"));
        assert!(parse(&["flowsentry", "replay", "--home-net", "10.0.0.0/99", "a"])
            .unwrap_err()
            .contains("10.0.0.0/99"));
        assert!(parse(&["flowsentry", "replay", "--udp-timeout=-3", "a"]).unwrap_err().contains("udp_timeout"));
        assert!(parse(&["flowsentry", "live"]).unwrap_err().contains("interface"));
    }

    #[test]
    fn file_settings_merge_and_flags_win() {
        let dir = std::env::temp_dir().join(format!("flowsentry-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.toml");
        std::fs::write(
            &path,
            "home_net = [\"192.0.2.0/24\"]\nrules = \"sentinel\"\n[capture]\ninterface = \"veth0\"\npromisc = false\n[flow]\nmax_flows = 1000\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let c = parse(&["flowsentry", "live", "-c", p, "--rules", "enhanced"]).unwrap();
        assert_eq!(c.detect.rules, RuleSet::Enhanced);
        assert!(c.detect.home_net.contains("192.0.2.9".parse().unwrap()));
        assert!(!c.detect.home_net.contains("10.0.0.1".parse().unwrap()));
        assert_eq!(c.flow.max_flows, 1000);
        match c.source {
            SourceConfig::Live(l) => {
                assert_eq!(l.interface, "veth0");
                assert!(!l.promisc);
            }
            other => panic!("{other:?}"),
        }
        std::fs::write(&path, "sensor_ip = \"192.0.2.7\"\ncommunity_id_seed = 9\n").unwrap();
        let c = parse(&["flowsentry", "replay", "-c", p, "x"]).unwrap();
        assert_eq!((c.sensor_ip, c.community_id_seed), (Some("192.0.2.7".parse().unwrap()), 9));
        let c =
            parse(&["flowsentry", "replay", "-c", p, "--sensor-ip", "2001:db8::7", "--community-id-seed", "3", "x"])
                .unwrap();
        assert_eq!((c.sensor_ip, c.community_id_seed), (Some("2001:db8::7".parse().unwrap()), 3));
        let err = parse(&["flowsentry", "replay", "--sensor-ip", "eth0", "x"]).unwrap_err();
        assert!(err.contains("sensor_ip") && err.contains("eth0"), "{err}");
        assert!(parse(&["flowsentry", "replay", "--community-id-seed", "70000", "x"]).is_err());
        for (value, gap) in [("2.5", Some(Duration::from_millis(2500))), ("0", Some(Duration(0))), ("-1", None)] {
            std::fs::write(&path, format!("[flow]\nexchange_gap = {value}\n")).unwrap();
            match (parse(&["flowsentry", "replay", "-c", p, "x"]), gap) {
                (Ok(c), Some(gap)) => assert_eq!(c.flow.exchange_gap, gap),
                (Err(e), None) => assert!(e.contains("exchange_gap"), "{e}"),
                (other, _) => panic!("exchange_gap = {value}: {other:?}"),
            }
        }
        // The memory budget sets the enhanced caps; a cap in the file wins; a reload
        // (SIGHUP) re-reads both, and the --memory-mib flag keeps winning over the file.
        std::fs::write(&path, "[enhanced]\nmemory_mib = 10\nbeacon_max_series = 777\n").unwrap();
        let c = parse(&["flowsentry", "replay", "-c", p, "x"]).unwrap();
        let e = &c.detect.enhanced;
        assert_eq!((e.scan_max_sources, e.beacon_max_series, e.scan_max_targets_per_source), (8192, 777, 256));
        std::fs::write(&path, "[enhanced]\nmemory_mib = 1\n").unwrap();
        let e = c.reload_detect().unwrap().enhanced;
        assert_eq!((e.scan_max_sources, e.beacon_max_series, e.scan_max_targets_per_source), (819, 819, 64));
        let c = parse(&["flowsentry", "replay", "-c", p, "--memory-mib", "80", "x"]).unwrap();
        assert_eq!((c.detect.enhanced.memory_mib, c.detect.enhanced.scan_max_sources), (80, 65_536));
        std::fs::write(&path, "[enhanced]\nmemory_mib = 5\nscan_max_targets_per_source = 99\n").unwrap();
        let e = c.reload_detect().unwrap().enhanced;
        assert_eq!((e.memory_mib, e.beacon_max_series, e.scan_max_targets_per_source), (80, 65_536, 99));
        std::fs::write(&path, "home_nett = []\n").unwrap();
        let err = parse(&["flowsentry", "replay", "-c", p, "x"]).unwrap_err();
        assert!(err.contains("home_nett"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
