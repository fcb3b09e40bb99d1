//! Discoverability: `--version` names the libpcap in use (as `tcpdump --version`),
//! `completions` and `man` come from the same CLI definition as the parser, and
//! `live -D` lists interfaces exactly as `tcpdump -D` does.

mod common;
use common::*;
use std::process::Command;

#[test]
fn version_names_the_libpcap_in_use_like_tcpdump() {
    let o = run(&["--version"]);
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(out.starts_with(&format!("flowsentry {}\n", env!("CARGO_PKG_VERSION"))), "{out}");
    let ours = out.lines().find(|l| l.starts_with("libpcap version ")).unwrap_or_else(|| panic!("{out}"));
    assert!(ours["libpcap version ".len()..].starts_with(|c: char| c.is_ascii_digit()), "{ours}");
    if have("tcpdump") {
        // tcpdump on the same machine links the same library.
        let td = Command::new("tcpdump").arg("--version").output().unwrap();
        let td = String::from_utf8_lossy(&td.stdout).into_owned() + &String::from_utf8_lossy(&td.stderr);
        assert!(td.lines().any(|l| l == ours), "tcpdump says:\n{td}\nwe say: {ours}");
    }
    let short = run(&["-V"]);
    assert_eq!(stdout(&short).trim(), format!("flowsentry {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let o = run(&["completions", shell]);
        assert!(o.status.success(), "{shell}: {}", stderr(&o));
        let script = stdout(&o);
        // fish writes long flags as `-l records`.
        for word in ["replay", "live", "records", "append", "list-interfaces", "--read"] {
            let word = if shell == "fish" { word.trim_start_matches('-') } else { word };
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    // The bash script loads and registers the completion.
    let dir = scratch("cli-completions");
    let f = dir.join("flowsentry.bash");
    std::fs::write(&f, run(&["completions", "bash"]).stdout).unwrap();
    let o = Command::new("bash")
        .args(["-c", &format!("source {} && complete -p flowsentry", f.display())])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("flowsentry"), "{}", stdout(&o));
    for (shell, check) in [("zsh", "-n"), ("fish", "--no-execute")] {
        if have(shell) {
            let f = dir.join(format!("flowsentry.{shell}"));
            std::fs::write(&f, run(&["completions", shell]).stdout).unwrap();
            let o = Command::new(shell).arg(check).arg(&f).output().unwrap();
            assert!(o.status.success(), "{shell} rejects its completion script: {}", stderr(&o));
        }
    }
}

#[test]
fn man_page_documents_every_flag() {
    let o = run(&["man"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let page = stdout(&o);
    assert!(page.contains(".TH flowsentry 1"), "{}", &page[..200.min(page.len())]);
    for flag in ["records", "alerts", "append", "read", "interface", "list\\-interfaces", "json", "quiet"] {
        assert!(page.contains(&format!("\\-\\-{flag}")), "man page lacks --{flag}");
    }
    assert!(page.contains("SIGINT") && page.contains("Exit status"), "signals and exit codes belong in the page");
    if have("groff") {
        let dir = scratch("cli-man-render");
        let f = dir.join("flowsentry.1");
        std::fs::write(&f, &o.stdout).unwrap();
        let r = Command::new("groff").args(["-man", "-Tutf8", "-ww", "-P-cbou"]).arg(&f).output().unwrap();
        assert!(r.status.success() && stderr(&r).trim().is_empty(), "groff warns: {}", stderr(&r));
        let text = String::from_utf8_lossy(&r.stdout);
        for heading in ["REPLAY", "LIVE", "EXIT STATUS AND SIGNALS"] {
            assert!(text.lines().any(|l| l == heading), "rendered page lacks the {heading} section:\n{text}");
        }
    }
    let dir = scratch("cli-man-dir");
    let o = run(&["man", "--out-dir", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    for page in ["flowsentry.1", "flowsentry-replay.1", "flowsentry-live.1"] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap_or_else(|_| panic!("{page} not written"));
        assert!(text.contains(".TH"), "{page}");
    }
    assert_eq!(std::fs::read(dir.join("flowsentry.1")).unwrap(), run(&["man"]).stdout);
}

#[test]
fn live_dash_d_lists_interfaces_like_tcpdump_dash_d() {
    let o = run(&["live", "-D"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ours = stdout(&o);
    assert!(ours.lines().any(|l| l.starts_with("1.")), "{ours}");
    assert!(ours.lines().any(|l| l.contains(".lo [") && l.contains("Loopback")), "{ours}");
    assert_eq!(stdout(&run(&["live", "--list-interfaces"])), ours);
    if have("tcpdump") {
        let td = Command::new("tcpdump").arg("-D").output().unwrap();
        assert!(td.status.success());
        assert_eq!(ours, stdout(&td), "flowsentry live -D differs from tcpdump -D");
    }
}
