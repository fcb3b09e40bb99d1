//! Where JSON lines go: stdout or a file opened for appending, which can be reopened
//! (SIGHUP, for logrotate). A replay replaces its files' content ([`Sink::truncate`],
//! called once every output has opened, so a failure to open one never empties another).
//! A closed stdout (`| head`) is reported as [`SinkError::BrokenPipe`] so the caller
//! can stop quietly: that is not an error.

use crate::config::OutputPath;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

/// Writes of at least this many bytes bypass the sink's buffer (see [`Sink::write_lines`]).
const DIRECT: usize = 32 * 1024;

pub enum SinkError {
    /// The reader went away (stdout closed): stop, exit 0.
    BrokenPipe,
    /// A real failure (disk full, permissions): names the output and the reason.
    Failed(String),
}

enum Target {
    Stdout(io::Stdout),
    File(File),
}

impl Write for Target {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Target::Stdout(s) => s.write(buf),
            Target::File(f) => f.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Target::Stdout(s) => s.flush(),
            Target::File(f) => f.flush(),
        }
    }
}

pub struct Sink {
    what: &'static str,
    path: Option<PathBuf>,
    out: BufWriter<Target>,
    lines: u64,
    /// stdout is a terminal: writes go around a progress line on stderr (same screen).
    terminal: bool,
}

fn open_file(what: &str, path: &PathBuf) -> Result<File, String> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {what} output {}: {}", path.display(), crate::error_text::io_reason(&e)))
}

impl Sink {
    /// `what` names the stream in errors ("records", "alerts").
    pub fn open(what: &'static str, path: &OutputPath) -> Result<Sink, String> {
        let (path, target) = match path {
            OutputPath::Stdout => (None, Target::Stdout(io::stdout())),
            OutputPath::File(p) => (Some(p.clone()), Target::File(open_file(what, p)?)),
        };
        let terminal = {
            use std::io::IsTerminal;
            path.is_none() && io::stdout().is_terminal()
        };
        Ok(Sink { what, path, out: BufWriter::with_capacity(256 * 1024, target), lines: 0, terminal })
    }

    pub fn is_stdout(&self) -> bool {
        self.path.is_none()
    }

    /// Whether the lines go to a terminal (stdout at a terminal).
    pub fn is_terminal(&self) -> bool {
        self.terminal
    }

    /// Empties the file (a fresh replay output); stdout, devices and FIFOs are left alone.
    pub fn truncate(&mut self) -> Result<(), String> {
        if let (Some(p), Target::File(f)) = (&self.path, self.out.get_ref()) {
            if !f.metadata().is_ok_and(|m| m.is_file()) {
                return Ok(());
            }
            f.set_len(0).map_err(|e| {
                format!("cannot truncate {} output {}: {}", self.what, p.display(), crate::error_text::io_reason(&e))
            })?;
        }
        Ok(())
    }

    fn classify(&self, e: io::Error) -> SinkError {
        if e.kind() == io::ErrorKind::BrokenPipe && self.path.is_none() {
            SinkError::BrokenPipe
        } else {
            let name = self.path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "stdout".into());
            SinkError::Failed(format!("writing {} to {name} failed: {}", self.what, crate::error_text::io_reason(&e)))
        }
    }

    /// Appends bytes that hold whole lines. A piece of at least [`DIRECT`] bytes (the
    /// records writer's chunks) goes straight to the file or stdout after what is
    /// buffered: copying it into the buffer first would only add a pass over its bytes.
    pub fn write_lines(&mut self, bytes: &[u8], lines: u64) -> Result<(), SinkError> {
        let out = &mut self.out;
        let mut write = || {
            if bytes.len() >= DIRECT {
                out.flush()?;
                out.get_mut().write_all(bytes)
            } else {
                out.write_all(bytes)
            }
        };
        let r = if self.terminal { crate::progress::suspend(write) } else { write() };
        r.map_err(|e| self.classify(e))?;
        self.lines += lines;
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), SinkError> {
        let r = if self.terminal { crate::progress::suspend(|| self.out.flush()) } else { self.out.flush() };
        r.map_err(|e| self.classify(e))
    }

    /// Flushes, then reopens the file by name (after logrotate moved it). Stdout: flush only.
    pub fn reopen(&mut self) -> Result<(), SinkError> {
        self.flush()?;
        if let Some(p) = &self.path {
            let f = open_file(self.what, p).map_err(SinkError::Failed)?;
            self.out = BufWriter::with_capacity(256 * 1024, Target::File(f));
        }
        Ok(())
    }

    pub fn lines(&self) -> u64 {
        self.lines
    }
}
