//! `run()`: parse flags, validate the config, check and open outputs and the capture,
//! drop privileges, run the pipeline, report. Returns the exit code; `main` only prints
//! errors.
//!
//! Order matters for "a mistyped command never loses data": everything that can be
//! refused (flags, config file, outputs that would overwrite a capture or an input, the
//! capture itself) is checked before any output file is created or emptied.

use crate::capture::file::FileSource;
use crate::capture::live::{LiveOptions, LiveSource};
use crate::capture::PacketSource;
use crate::cli::{Cli, Command};
use crate::config::{Config, SourceConfig};
use crate::pipeline::{self, Control, Outputs};
use crate::progress::{self, Progress};
use crate::stats::Stats;
use crate::usage_errors::{explain, Usage};
use crate::{config_errors, discover, log, service};
use clap::FromArgMatches;
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Exit codes: 0 success (also when stdout was closed early), 1 a runtime failure
/// (capture broke mid-run, an output could not be written), 2 bad usage, a bad config
/// file, or a capture or output that could not be opened; 128 + the signal for a replay
/// stopped by SIGINT/SIGTERM (after everything read was flushed).
pub fn run() -> Result<ExitCode, String> {
    let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    let command = discover::command(args.iter().any(|a| a == "--version"));
    let matches = match command.try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => {
            return match explain(&e, &args) {
                Usage::Print(text) => {
                    print!("{text}");
                    Ok(ExitCode::SUCCESS)
                }
                Usage::Error(line) => Err(line),
            }
        }
    };
    let flags_given = flags_given(&matches);
    let cli = Cli::from_arg_matches(&matches).map_err(|e| e.to_string())?;
    match cli.command {
        Command::Completions { shell } => discover::completions(shell).map(|_| ExitCode::SUCCESS),
        Command::Man { out_dir } => discover::man(out_dir.as_deref()).map(|_| ExitCode::SUCCESS),
        Command::Live(a) if a.list_interfaces => {
            if a.interface.is_some() {
                return Err("--list-interfaces lists interfaces and captures nothing: leave out --interface".into());
            }
            discover::list_interfaces().map(|_| ExitCode::SUCCESS)
        }
        command => capture(command, &flags_given),
    }
}

/// Long names of the flags given on the command line (for naming settings in errors).
fn flags_given(matches: &clap::ArgMatches) -> Vec<String> {
    let Some((_, sub)) = matches.subcommand() else { return Vec::new() };
    sub.ids()
        .filter(|id| sub.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine))
        .map(|id| id.as_str().replace('_', "-"))
        .collect()
}

/// `replay` and `live`.
fn capture(command: Command, flags_given: &[String]) -> Result<ExitCode, String> {
    let config_path = match &command {
        Command::Replay(a) => a.common.config.clone(),
        Command::Live(a) => a.common.config.clone(),
        _ => None,
    };
    let cfg = Config::from_command(command)
        .map_err(|msg| config_errors::locate(&msg, flags_given, config_path.as_deref()))?;
    log::set_quiet(cfg.quiet);
    crate::output::guard::check(&cfg)?;
    let control = Control::default();
    service::install_signals(&control)?;
    let source = open_source(&cfg)?;
    let outputs = Outputs::open(&cfg)?;
    if let Some(user) = &cfg.user {
        service::drop_privileges(user)?;
    }
    let live = source.is_live();
    if let SourceConfig::Live(l) = &cfg.source {
        log::info(&format!("capturing on {} (rules: {:?})", l.interface, cfg.detect.rules));
    }
    let stats = Arc::new(Stats::default());
    let progress = match &cfg.source {
        SourceConfig::Replay { files } if progress::wanted(cfg.quiet) => {
            Some(Progress::start(Arc::clone(&stats), files))
        }
        _ => None,
    };
    let outcome = pipeline::run(&cfg, source, outputs, control.clone(), stats);
    if let Some(p) = progress {
        p.finish();
    }
    let stopped_by = control.stopped_by.load(Relaxed);
    let interrupted = !live && stopped_by != 0;
    if !cfg.quiet {
        for line in outcome.stats.summary(live, interrupted) {
            log::info(&line);
        }
    }
    for e in &outcome.capture_errors {
        log::error(e);
    }
    if !outcome.capture_errors.is_empty() {
        return Ok(ExitCode::from(1));
    }
    if outcome.output_error.is_some() {
        // Logged by the writer when it happened, before the summary.
        return Ok(ExitCode::from(1));
    }
    if interrupted {
        return Ok(ExitCode::from((128 + stopped_by).clamp(0, 255) as u8));
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
