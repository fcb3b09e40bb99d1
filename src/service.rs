//! Running unattended: signal handling (SIGTERM/SIGINT stop with a full flush, a second
//! SIGINT exits at once, SIGHUP reloads and reopens, SIGUSR1 prints stats) and dropping
//! root after the capture is open (`--user`, like `tcpdump -Z`).

use crate::pipeline::Control;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::flag;
use std::sync::Arc;

/// Exit status when a second SIGINT cuts the shutdown short (128 + SIGINT).
pub const FORCED_EXIT: i32 = 130;

/// Installs the signal handlers; they only set flags that the pipeline polls.
pub fn install_signals(control: &Control) -> Result<(), String> {
    let err = |e: std::io::Error| format!("cannot install signal handlers: {e}");
    // Order matters: the conditional shutdown fires only if the flag is already set,
    // i.e. on the second SIGINT.
    flag::register_conditional_shutdown(SIGINT, FORCED_EXIT, Arc::clone(&control.terminate)).map_err(err)?;
    flag::register(SIGINT, Arc::clone(&control.terminate)).map_err(err)?;
    flag::register(SIGTERM, Arc::clone(&control.terminate)).map_err(err)?;
    flag::register(SIGHUP, Arc::clone(&control.reload)).map_err(err)?;
    flag::register(SIGUSR1, Arc::clone(&control.stats_now)).map_err(err)?;
    Ok(())
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
