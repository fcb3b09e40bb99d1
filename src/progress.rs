//! The progress line of a replay at a terminal (stderr), drawn with indicatif:
//!
//! ```text
//! 00:00:12 [======>             ]  35% 1.21 GiB/3.40 GiB 103.2 MiB/s, ETA 21s · 4,120,331 packets, 120,001 sessions, 4 alerts
//! ```
//!
//! Bytes come from [`Stats::input_bytes_read`]/[`Stats::input_bytes_total`], which the
//! replay's reader thread fills from its inputs (compressed bytes for a compressed
//! capture). A pipe has no known total (`input_bytes_total` 0): the line then shows the
//! bytes read and the rate, no percentage or ETA. Nothing is drawn when stderr is not a terminal or with `-q`; log lines printed
//! while it shows go above it (see [`suspend`]).

use crate::stats::Stats;
use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the line is refreshed.
const TICK: Duration = Duration::from_millis(200);

/// The bar being shown, so log lines can be printed above it.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Runs `print` with the progress line (if any) cleared, and redraws it afterwards.
pub fn suspend<R>(print: impl FnOnce() -> R) -> R {
    let bar = ACTIVE.lock().ok().and_then(|g| g.clone());
    match bar {
        Some(bar) => bar.suspend(print),
        None => print(),
    }
}

/// Total size of the inputs when every one is a regular file, else 0 (unknown): the
/// line's shape until the reader publishes its own counters.
fn sizes(inputs: &[PathBuf]) -> u64 {
    let sizes: Option<Vec<u64>> =
        inputs.iter().map(|p| std::fs::metadata(p).ok().filter(|m| m.is_file()).map(|m| m.len())).collect();
    sizes.map(|v| v.iter().sum()).unwrap_or(0)
}

/// A running progress line; [`Progress::finish`] clears it.
pub struct Progress {
    bar: ProgressBar,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Whether a replay should show progress: stderr is a terminal and not `-q`.
pub fn wanted(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

fn style(known_total: bool) -> ProgressStyle {
    let template = if known_total {
        "{elapsed_precise} [{bar:20}] {percent:>3}% {bytes}/{total_bytes} {binary_bytes_per_sec}, ETA {eta} · {msg}"
    } else {
        "{spinner} {elapsed_precise} {bytes} read, {binary_bytes_per_sec} · {msg}"
    };
    ProgressStyle::with_template(template).expect("valid progress template").progress_chars("=> ")
}

/// The "packets · sessions · alerts" part.
fn counts(stats: &Stats) -> String {
    format!(
        "{} packets, {} sessions, {} alerts",
        HumanCount(stats.packets_read.load(Relaxed)),
        HumanCount(stats.sessions.load(Relaxed)),
        HumanCount(stats.alerts.load(Relaxed)),
    )
}

impl Progress {
    /// Starts the line for a replay of `inputs`, refreshed by a thread ("fs-progress").
    pub fn start(stats: Arc<Stats>, inputs: &[PathBuf]) -> Progress {
        let first_total = sizes(inputs);
        let bar = ProgressBar::with_draw_target(Some(first_total), ProgressDrawTarget::stderr_with_hz(5));
        bar.set_style(style(first_total > 0));
        bar.set_message(counts(&stats));
        bar.tick();
        if let Ok(mut active) = ACTIVE.lock() {
            *active = Some(bar.clone());
        }
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (bar, stop) = (bar.clone(), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("fs-progress".into())
                .spawn(move || {
                    let mut known = Some(first_total > 0);
                    while !stop.load(Relaxed) {
                        let done = stats.input_bytes_read.load(Relaxed);
                        // Nothing published yet: keep the sizes looked up at the start.
                        let total = match stats.input_bytes_total.load(Relaxed) {
                            0 if done == 0 => first_total,
                            total => total,
                        };
                        if known != Some(total > 0) {
                            known = Some(total > 0);
                            bar.set_style(style(total > 0));
                            bar.set_length(total);
                        }
                        bar.set_position(if total > 0 { done.min(total) } else { done });
                        bar.set_message(counts(&stats));
                        std::thread::sleep(TICK);
                    }
                })
                .ok()
        };
        Progress { bar, stop, thread }
    }

    /// Stops refreshing and clears the line (the summary follows).
    pub fn finish(mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Ok(mut active) = ACTIVE.lock() {
            *active = None;
        }
        self.bar.finish_and_clear();
    }
}
