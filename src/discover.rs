//! What a new user reaches for before reading anything: `--version` (with the libpcap
//! version, as tcpdump prints it), shell completions and a man page generated from the
//! same clap definition as the parser (so they never drift from the flags), and
//! `live -D` listing the interfaces exactly as `tcpdump -D` does.

use crate::cli::Cli;
use clap::CommandFactory;
use std::io::Write;
use std::path::Path;

/// The clap command with `--version` (long form) naming the libpcap in use. Looking the
/// library up reads a file, so it is only done when `--version` was asked for.
pub fn command(long_version: bool) -> clap::Command {
    let cmd = Cli::command();
    if long_version {
        let text = format!("{}\n{}", env!("CARGO_PKG_VERSION"), libpcap_version());
        // Computed once per run that asks for it; clap wants a 'static string.
        cmd.long_version(&*Box::leak(text.into_boxed_str()))
    } else {
        cmd
    }
}

/// "libpcap version 1.10.3 (with TPACKET_V3)", the string `pcap_lib_version()` returns,
/// read from the libpcap this process has mapped (the pcap crate does not expose the
/// call, and this crate forbids `unsafe`).
pub fn libpcap_version() -> String {
    let mapped = std::fs::read_to_string("/proc/self/maps").ok().and_then(|maps| {
        maps.lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|p| p.rsplit('/').next().is_some_and(|f| f.starts_with("libpcap.so")))
            .map(str::to_string)
    });
    let Some(lib) = mapped else {
        return "libpcap version unknown (library not found)".into();
    };
    if let Ok(bytes) = std::fs::read(&lib) {
        let needle = b"libpcap version ";
        if let Some(i) = bytes.windows(needle.len()).position(|w| w == needle) {
            let text: Vec<u8> =
                bytes[i..].iter().take_while(|b| **b != 0 && b.is_ascii_graphic() || **b == b' ').copied().collect();
            if let Ok(s) = String::from_utf8(text) {
                return s;
            }
        }
    }
    // The file name still tells the version (libpcap.so.1.10.3).
    let file = lib.rsplit('/').next().unwrap_or(&lib);
    format!("libpcap version {}", file.trim_start_matches("libpcap.so."))
}

/// `flowsentry completions SHELL`: the completion script on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<(), String> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "flowsentry", &mut out);
    write_stdout(&out)
}

/// The man page: the top-level page with the `replay` and `live` synopses and options
/// folded in, so `man flowsentry` shows every flag.
pub fn man_page() -> Result<Vec<u8>, String> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let err = |e: std::io::Error| format!("cannot render the man page: {e}");
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    man.render_title(&mut out).map_err(err)?;
    man.render_name_section(&mut out).map_err(err)?;
    man.render_synopsis_section(&mut out).map_err(err)?;
    man.render_description_section(&mut out).map_err(err)?;
    for name in ["replay", "live"] {
        let sub = cmd.find_subcommand(name).expect("subcommand").clone();
        let sub_man = clap_mangen::Man::new(sub);
        let mut part = Vec::new();
        sub_man.render_synopsis_section(&mut part).map_err(err)?;
        sub_man.render_description_section(&mut part).map_err(err)?;
        sub_man.render_options_section(&mut part).map_err(err)?;
        let part = String::from_utf8_lossy(&part)
            .replacen(".SH SYNOPSIS", &format!(".SH \"{}\"", name.to_uppercase()), 1)
            .replacen(".SH DESCRIPTION\n", ".PP\n", 1)
            .replacen(".SH OPTIONS", ".SS Options", 1);
        out.extend_from_slice(part.as_bytes());
    }
    man.render_subcommands_section(&mut out).map_err(err)?;
    let mut extra = Vec::new();
    man.render_extra_section(&mut extra).map_err(err)?;
    let extra = String::from_utf8_lossy(&extra).replacen(".SH EXTRA", ".SH \"EXIT STATUS AND SIGNALS\"", 1);
    out.extend_from_slice(extra.as_bytes());
    man.render_version_section(&mut out).map_err(err)?;
    Ok(out)
}

/// `flowsentry man`: the page on stdout, or with `--out-dir` written as flowsentry.1
/// plus one page per command (flowsentry-replay.1, flowsentry-live.1, ...).
pub fn man(out_dir: Option<&Path>) -> Result<(), String> {
    let page = man_page()?;
    let Some(dir) = out_dir else {
        return write_stdout(&page);
    };
    let fail = |e: std::io::Error| {
        format!("cannot write man pages to {}: {}", dir.display(), crate::error_text::io_reason(&e))
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    clap_mangen::generate_to(Cli::command(), dir).map_err(fail)?;
    // The combined page replaces clap_mangen's bare top-level one.
    std::fs::write(dir.join("flowsentry.1"), page).map_err(fail)
}

/// `flowsentry live -D`: one line per interface, as `tcpdump -D` prints them.
pub fn list_interfaces() -> Result<(), String> {
    let devices = pcap::Device::list().map_err(|e| format!("cannot list interfaces: {e}"))?;
    let mut out = String::new();
    for (i, d) in devices.iter().enumerate() {
        out.push_str(&interface_line(i + 1, d));
        out.push('\n');
    }
    if devices.is_empty() {
        return Err("no interfaces available for capture (capturing needs root or CAP_NET_RAW)".into());
    }
    write_stdout(out.as_bytes())
}

/// `N.name (description) [Up, Running, Loopback, Connected]`, tcpdump's format.
fn interface_line(n: usize, d: &pcap::Device) -> String {
    use pcap::{ConnectionStatus, IfFlags};
    let mut line = format!("{n}.{}", d.name);
    if let Some(desc) = &d.desc {
        line.push_str(&format!(" ({desc})"));
    }
    let f = &d.flags;
    if !f.if_flags.is_empty() || f.connection_status != ConnectionStatus::Unknown {
        let names: Vec<&str> = [
            (IfFlags::UP, "Up"),
            (IfFlags::RUNNING, "Running"),
            (IfFlags::LOOPBACK, "Loopback"),
            (IfFlags::WIRELESS, "Wireless"),
        ]
        .iter()
        .filter(|(flag, _)| f.if_flags.contains(*flag))
        .map(|(_, name)| *name)
        .collect();
        let mut text = if names.is_empty() { "none".to_string() } else { names.join(", ") };
        let wireless = f.if_flags.contains(IfFlags::WIRELESS);
        let status = match (&f.connection_status, wireless) {
            (ConnectionStatus::Unknown, true) => Some("Association status unknown"),
            (ConnectionStatus::Connected, true) => Some("Associated"),
            (ConnectionStatus::Disconnected, true) => Some("Not associated"),
            (ConnectionStatus::Unknown, false) => Some("Connection status unknown"),
            (ConnectionStatus::Connected, false) => Some("Connected"),
            (ConnectionStatus::Disconnected, false) => Some("Disconnected"),
            (ConnectionStatus::NotApplicable, _) => None,
        };
        if let Some(s) = status {
            text.push_str(", ");
            text.push_str(s);
        }
        line.push_str(&format!(" [{text}]"));
    }
    line
}

/// Writes to stdout; a closed stdout (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("writing to stdout failed: {}", crate::error_text::io_reason(&e)))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_man_page_has_every_flag_of_both_capture_commands() {
        let page = String::from_utf8(man_page().unwrap()).unwrap();
        assert!(page.starts_with(".ie"), "{}", &page[..80]);
        for needle in
            [".SH \"REPLAY\"", ".SH \"LIVE\"", "\\-\\-records", "\\-\\-list\\-interfaces", "\\-\\-append", "SIGINT"]
        {
            assert!(page.contains(needle), "man page lacks {needle}");
        }
    }

    #[test]
    fn libpcap_version_is_read_from_the_mapped_library() {
        // This test binary links libpcap too.
        let v = libpcap_version();
        assert!(v.starts_with("libpcap version "), "{v}");
        assert!(v["libpcap version ".len()..].starts_with(|c: char| c.is_ascii_digit()), "{v}");
    }
}
