//! The progress line of a replay at a terminal (stderr), drawn with indicatif:
//!
//! ```text
//! 00:00:12 [======>             ]  35% 1.21 GiB/3.40 GiB 103.2 MiB/s, ETA 21s · 4,120,331 packets, 120,001 sessions, 4 alerts
//! ```
//!
//! Bytes come from [`Stats::input_bytes_read`]/[`Stats::input_bytes_total`] when the
//! reader fills them; until then (and for readers that do not) from the read offsets of
//! the input files this process has open (`/proc/self/fdinfo`), against their sizes. A
//! pipe has no known total: the line then shows bytes or packets done and the rate, no
//! ETA. Nothing is drawn when stderr is not a terminal or with `-q`; log lines printed
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

/// Read offsets of the input files in this process's open descriptors, for readers that
/// do not report their bytes themselves.
struct FileOffsets {
    files: Vec<(PathBuf, u64)>,
    /// Files seen open before and closed since count as read to their end.
    finished: Vec<bool>,
    seen: Vec<bool>,
}

impl FileOffsets {
    fn new(inputs: &[PathBuf]) -> FileOffsets {
        let files: Vec<(PathBuf, u64)> = inputs
            .iter()
            .filter_map(|p| {
                let meta = std::fs::metadata(p).ok().filter(|m| m.is_file())?;
                Some((std::fs::canonicalize(p).ok()?, meta.len()))
            })
            .collect();
        let n = files.len();
        FileOffsets { files, finished: vec![false; n], seen: vec![false; n] }
    }

    /// Total size, when every input is a regular file.
    fn total(&self, inputs: usize) -> u64 {
        if self.files.len() == inputs {
            self.files.iter().map(|f| f.1).sum()
        } else {
            0
        }
    }

    fn done(&mut self) -> u64 {
        let mut open = vec![None; self.files.len()];
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            for fd in dir.flatten() {
                let Ok(target) = std::fs::read_link(fd.path()) else { continue };
                let Some(i) = self.files.iter().position(|f| f.0 == target) else { continue };
                let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.file_name().to_string_lossy()));
                let pos = info.ok().and_then(|t| {
                    t.lines().find_map(|l| l.strip_prefix("pos:").and_then(|v| v.trim().parse::<u64>().ok()))
                });
                if let Some(pos) = pos {
                    open[i] = Some(open[i].unwrap_or(0).max(pos));
                }
            }
        }
        let mut sum = 0;
        for (i, (_, size)) in self.files.iter().enumerate() {
            match open[i] {
                Some(pos) => {
                    self.seen[i] = true;
                    sum += pos.min(*size);
                }
                None if self.seen[i] || self.finished[i] => {
                    self.finished[i] = true;
                    sum += size;
                }
                None => {}
            }
        }
        sum
    }
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
        let mut offsets = FileOffsets::new(inputs);
        let fallback_total = offsets.total(inputs.len());
        let bar = ProgressBar::with_draw_target(Some(fallback_total), ProgressDrawTarget::stderr_with_hz(5));
        bar.set_style(style(fallback_total > 0));
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
                    let mut known = Some(fallback_total > 0);
                    while !stop.load(Relaxed) {
                        let (done, total) = match stats.input_bytes_total.load(Relaxed) {
                            0 => (offsets.done(), fallback_total),
                            total => (stats.input_bytes_read.load(Relaxed), total),
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
