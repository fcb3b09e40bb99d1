//! Test inputs that are not plain files: a pipe (opened by name as `/proc/self/fd/N`,
//! as `/dev/stdin` or a process substitution is) and gzip / zstd compressed copies, as
//! the `gzip` and `zstd` tools write them.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::thread::JoinHandle;

/// A pipe that a thread fills with some bytes; its read end is open as [`Self::path`].
pub struct PipeInput {
    pub path: String,
    read: Option<OwnedFd>,
    writer: Option<JoinHandle<()>>,
}

impl PipeInput {
    pub fn new(bytes: Vec<u8>) -> PipeInput {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let writer = std::thread::spawn(move || {
            // Fails (EPIPE) once the reader is gone: fine, the reader stopped early.
            let _ = File::from(write).write_all(&bytes);
        });
        PipeInput { path: format!("/proc/self/fd/{}", read.as_raw_fd()), read: Some(read), writer: Some(writer) }
    }
}

impl Drop for PipeInput {
    /// Closes the read end (so a writer that nobody reads from stops) and waits for it.
    fn drop(&mut self) {
        self.read.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// With a content checksum, as the `zstd` tool writes by default.
pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    e.include_checksum(true).unwrap();
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// How a test hands a capture over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Pipe,
    Gzip,
    Zstd,
}

impl Via {
    pub const ALL: [Via; 3] = [Via::Pipe, Via::Gzip, Via::Zstd];
}

/// The capture files `paths` handed over `via`: the names to open (valid while the
/// returned pipes live), with `(name, original path)` pairs to map error messages back.
pub fn streams(paths: &[String], via: Via, scratch: &Path) -> (Vec<String>, Vec<PipeInput>, Vec<(String, String)>) {
    let (mut names, mut pipes, mut renames) = (Vec::new(), Vec::new(), Vec::new());
    for (i, path) in paths.iter().enumerate() {
        let bytes = std::fs::read(path).unwrap();
        let name = match via {
            Via::Pipe => {
                let pipe = PipeInput::new(bytes);
                let name = pipe.path.clone();
                pipes.push(pipe);
                name
            }
            Via::Gzip | Via::Zstd => {
                let (ext, packed) = if via == Via::Gzip { ("gz", gzip(&bytes)) } else { ("zst", zstd(&bytes)) };
                let file = scratch.join(format!("{i}.{ext}"));
                std::fs::write(&file, packed).unwrap();
                file.to_str().unwrap().to_string()
            }
        };
        renames.push((name.clone(), path.clone()));
        names.push(name);
    }
    (names, pipes, renames)
}

/// `text` with every stream name replaced by the file it stands for.
pub fn rename(text: &str, renames: &[(String, String)]) -> String {
    // Longest names first, so /proc/self/fd/12 is not matched as /proc/self/fd/1.
    let mut sorted: Vec<&(String, String)> = renames.iter().collect();
    sorted.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    sorted.iter().fold(text.to_string(), |t, (name, path)| t.replace(name.as_str(), path))
}
