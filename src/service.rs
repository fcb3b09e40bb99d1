//! Running unattended: signal handling (SIGTERM/SIGINT stop with a full flush, a second
//! SIGINT at least a second after the first exits at once, SIGHUP reloads and reopens,
//! SIGUSR1 prints stats) and dropping root after the capture is open (`--user`, like
//! `tcpdump -Z`).
//!
//! Why the second: `timeout -s INT`, `kill -INT -- -PGID` after `kill -INT PID`, and a
//! terminal's Ctrl-C reaching a process group all deliver SIGINT twice within
//! microseconds; taking that second copy as "exit now" lost the flush. A person who
//! presses Ctrl-C again because the flush takes too long does so seconds later.

use crate::log;
use crate::pipeline::Control;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Exit status when a second SIGINT cuts the shutdown short (128 + SIGINT).
pub const FORCED_EXIT: i32 = 130;
/// A second SIGINT sooner than this after the first is the same interrupt delivered twice.
pub const FORCE_AFTER: Duration = Duration::from_secs(1);

/// Installs the signal handlers. The handlers only queue the signal; a thread
/// ("fs-signals") turns them into the flags the pipeline polls, and forces the exit on a
/// late second SIGINT.
pub fn install_signals(control: &Control) -> Result<(), String> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1])
        .map_err(|e| format!("cannot install signal handlers: {}", crate::error_text::io_reason(&e)))?;
    let control = control.clone();
    std::thread::Builder::new()
        .name("fs-signals".into())
        .spawn(move || {
            let mut first_stop: Option<Instant> = None;
            for sig in signals.forever() {
                match sig {
                    SIGHUP => control.reload.store(true, Relaxed),
                    SIGUSR1 => control.stats_now.store(true, Relaxed),
                    SIGINT | SIGTERM => match first_stop {
                        None => {
                            first_stop = Some(Instant::now());
                            control.stopped_by.store(sig, Relaxed);
                            control.terminate.store(true, Relaxed);
                        }
                        Some(at) if sig == SIGINT && at.elapsed() >= FORCE_AFTER => {
                            log::error("second interrupt: exiting now; open sessions and unwritten output are lost");
                            std::process::exit(FORCED_EXIT);
                        }
                        // The same interrupt delivered twice (process and process group), or
                        // a repeated SIGTERM: the flush already under way goes on.
                        Some(_) => {}
                    },
                    _ => {}
                }
            }
        })
        .map_err(|e| format!("cannot start the signal thread: {}", crate::error_text::io_reason(&e)))?;
    Ok(())
}

/// "SIGINT", "SIGTERM", ... for messages.
pub fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig).map(|s| s.as_str().to_string()).unwrap_or_else(|_| format!("signal {sig}"))
}

/// Switches to `user` (and its primary group, no supplementary groups). Needs root; the
/// capture must already be open. Afterwards root cannot be regained.
pub fn drop_privileges(user: &str) -> Result<(), String> {
    use nix::unistd::{getuid, setgid, setgroups, setuid, User};
    let u = User::from_name(user)
        .map_err(|e| format!("--user {user}: cannot look up the user: {e}"))?
        .ok_or_else(|| format!("--user {user}: no such user"))?;
    if !getuid().is_root() {
        if getuid() == u.uid {
            return Ok(());
        }
        return Err(format!("--user {user}: switching user needs root (running as uid {})", getuid()));
    }
    setgroups(&[u.gid]).map_err(|e| format!("--user {user}: setgroups failed: {e}"))?;
    setgid(u.gid).map_err(|e| format!("--user {user}: setgid({}) failed: {e}", u.gid))?;
    setuid(u.uid).map_err(|e| format!("--user {user}: setuid({}) failed: {e}", u.uid))?;
    if setuid(nix::unistd::Uid::from_raw(0)).is_ok() {
        return Err(format!("--user {user}: root privileges could still be regained; refusing to run"));
    }
    Ok(())
}
