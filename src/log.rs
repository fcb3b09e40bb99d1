//! Diagnostics on stderr that fit journald: under systemd (JOURNAL_STREAM set) each line
//! carries a `<N>` syslog priority prefix, which journald turns into the entry's level;
//! elsewhere lines read `flowsentry: error: ...`. No colours, one line per message (a
//! message with a line break is folded onto one line). Lines are printed above a replay's
//! progress line, if one is showing.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
}

static QUIET: AtomicBool = AtomicBool::new(false);

fn journald() -> bool {
    static J: OnceLock<bool> = OnceLock::new();
    *J.get_or_init(|| std::env::var_os("JOURNAL_STREAM").is_some())
}

/// With quiet on, only errors and warnings are printed.
pub fn set_quiet(q: bool) {
    QUIET.store(q, Ordering::Relaxed);
}

pub fn log(level: Level, msg: &str) {
    if QUIET.load(Ordering::Relaxed) && level > Level::Warning {
        return;
    }
    let folded;
    let msg = if msg.contains('\n') {
        folded = msg.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ");
        folded.as_str()
    } else {
        msg
    };
    let line = if journald() {
        format!("<{}>{}\n", level as u8, msg)
    } else {
        let tag = match level {
            Level::Error => "error: ",
            Level::Warning => "warning: ",
            Level::Notice | Level::Info => "",
        };
        format!("flowsentry: {tag}{msg}\n")
    };
    // stderr is unbuffered; one write per line keeps lines whole across threads.
    crate::progress::suspend(|| std::io::stderr().lock().write_all(line.as_bytes()).ok());
}

pub fn error(msg: &str) {
    log(Level::Error, msg)
}
pub fn warn(msg: &str) {
    log(Level::Warning, msg)
}
pub fn info(msg: &str) {
    log(Level::Info, msg)
}

/// A machine-readable line (stats JSON) with the info priority under journald.
pub fn data(json: &str) {
    let line = if journald() { format!("<6>{json}\n") } else { format!("{json}\n") };
    crate::progress::suspend(|| std::io::stderr().lock().write_all(line.as_bytes()).ok());
}
