//! `run()`: parse flags, validate the config, open outputs and the capture, drop
//! privileges, run the pipeline, report. Returns the exit code; `main` only prints errors.

use crate::capture::file::FileSource;
use crate::capture::live::{LiveOptions, LiveSource};
use crate::capture::PacketSource;
use crate::cli::Cli;
use crate::config::{Config, SourceConfig};
use crate::log;
use crate::pipeline::{self, Control, Outputs};
use crate::service;
use crate::stats::Stats;
use clap::Parser;
use std::process::ExitCode;
use std::sync::Arc;

/// Exit codes: 0 success (also when stdout was closed early), 1 a runtime failure
/// (capture broke mid-run, an output could not be written), 2 bad usage or a capture
/// that could not be opened.
pub fn run() -> Result<ExitCode, String> {
    let cli = Cli::parse();
    let cfg = Config::from_cli(cli)?;
    log::set_quiet(cfg.quiet);
    let control = Control::default();
    service::install_signals(&control)?;
    let outputs = Outputs::open(&cfg)?;
    let source = open_source(&cfg)?;
    if let Some(user) = &cfg.user {
        service::drop_privileges(user)?;
    }
    let live = source.is_live();
    if live {
        if let SourceConfig::Live(l) = &cfg.source {
            log::info(&format!("capturing on {} (rules: {:?})", l.interface, cfg.detect.rules));
        }
    }
    let stats = Arc::new(Stats::default());
    let outcome = pipeline::run(&cfg, source, outputs, control, stats);
    if !cfg.quiet {
        for line in outcome.stats.summary(live, false) {
            log::info(&line);
        }
    }
    for e in &outcome.capture_errors {
        log::error(e);
    }
    if !outcome.capture_errors.is_empty() {
        return Ok(ExitCode::from(1));
    }
    if let Some(e) = &outcome.output_error {
        log::error(&format!("output failed: {e}"));
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn open_source(cfg: &Config) -> Result<Box<dyn PacketSource + Send>, String> {
    match &cfg.source {
        SourceConfig::Replay { files } => {
            let paths: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
            let src = FileSource::open_filtered(&paths, cfg.bpf.as_deref()).map_err(|e| e.to_string())?;
            Ok(Box::new(src))
        }
        SourceConfig::Live(l) => {
            let opts = LiveOptions {
                interface: l.interface.clone(),
                bpf: cfg.bpf.clone(),
                snaplen: l.snaplen,
                buffer_size: l.buffer_size,
                promisc: l.promisc,
                read_timeout_ms: l.read_timeout_ms,
            };
            Ok(Box::new(LiveSource::open(&opts).map_err(|e| e.to_string())?))
        }
    }
}
