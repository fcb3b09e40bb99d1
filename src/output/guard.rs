//! Refuses, before anything is opened or truncated, an output that would destroy
//! evidence: a path that is also one of the inputs, or a file that already holds a
//! packet capture (pcap, pcapng, or gzip/zstd data that may be a compressed one). A
//! shell habit such as `flowsentry replay --records old.pcap new.pcap` must never
//! cost the user a capture.

use crate::config::{Config, OutputPath, SourceConfig};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What the first bytes of an existing file say it holds, if it is a capture.
pub fn capture_kind(head: &[u8]) -> Option<&'static str> {
    let magic = u32::from_le_bytes(head.get(..4)?.try_into().ok()?);
    match magic {
        0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 => Some("a pcap capture"),
        0x0a0d_0d0a => Some("a pcapng capture"),
        0xfd2f_b528 => Some("zstd-compressed data (possibly a capture)"),
        _ if head[..2] == [0x1f, 0x8b] => Some("gzip-compressed data (possibly a capture)"),
        _ => None,
    }
}

/// Whether two paths name the same existing file (same device and inode).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Checks one output path against the inputs and its current content.
fn check_one(what: &str, out: &Path, inputs: &[PathBuf]) -> Result<(), String> {
    if let Some(input) = inputs.iter().find(|i| i.as_path() == out || same_file(i, out)) {
        return Err(format!(
            "refusing to write {what} to {}: it is also an input ({}); give --{what} another file",
            out.display(),
            input.display()
        ));
    }
    // Only regular files are looked into: reading a FIFO or a device would consume it.
    let Ok(meta) = std::fs::metadata(out) else { return Ok(()) };
    if !meta.is_file() {
        return Ok(());
    }
    let mut head = [0u8; 4];
    let n = std::fs::File::open(out).and_then(|mut f| f.read(&mut head)).unwrap_or(0);
    if let Some(kind) = capture_kind(&head[..n]) {
        return Err(format!(
            "refusing to write {what} to {}: it holds {kind}; to read it, use -r {}",
            out.display(),
            out.display()
        ));
    }
    Ok(())
}

/// Every output file of `cfg`, checked; no file is opened for writing here.
pub fn check(cfg: &Config) -> Result<(), String> {
    let inputs: Vec<PathBuf> = match &cfg.source {
        SourceConfig::Replay { files } => files.iter().filter(|p| p.as_os_str() != "-").cloned().collect(),
        SourceConfig::Live(_) => Vec::new(),
    };
    let outputs = [("records", cfg.records.as_ref()), ("alerts", Some(&cfg.alerts))];
    for (what, path) in outputs {
        if let Some(OutputPath::File(p)) = path {
            check_one(what, p, &inputs)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_magics_are_recognised() {
        assert_eq!(capture_kind(&[0xd4, 0xc3, 0xb2, 0xa1]), Some("a pcap capture"));
        assert_eq!(capture_kind(&[0xa1, 0xb2, 0xc3, 0xd4]), Some("a pcap capture"));
        assert_eq!(capture_kind(&[0x4d, 0x3c, 0xb2, 0xa1]), Some("a pcap capture"));
        assert_eq!(capture_kind(&[0x0a, 0x0d, 0x0d, 0x0a]), Some("a pcapng capture"));
        assert!(capture_kind(&[0x1f, 0x8b, 8, 0]).unwrap().starts_with("gzip"));
        assert!(capture_kind(&[0x28, 0xb5, 0x2f, 0xfd]).unwrap().starts_with("zstd"));
        assert_eq!(capture_kind(b"{\"Ti"), None);
        assert_eq!(capture_kind(b"ab"), None);
    }
}
