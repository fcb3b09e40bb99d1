//! A two-namespace lab for the live tests: namespace A ("client/scanner",
//! 198.51.100.10) and namespace B ("server", 198.51.100.20) joined by a veth pair, plus
//! helpers to run commands inside them and to watch a running sensor's stderr.
//! Names carry a per-test tag and the test process id so tests can run in parallel;
//! everything (background processes, namespaces, the veth) is removed on drop, also
//! when the test panics. Only documentation addresses are used.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const CLIENT: &str = "198.51.100.10";
pub const SERVER: &str = "198.51.100.20";

pub struct Lab {
    pub ns_client: String,
    pub ns_server: String,
    pub veth_client: String,
    pub veth_server: String,
    background: Vec<Child>,
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().expect("run setup command");
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

impl Lab {
    /// `tag`: at most 4 characters (interface names are limited to 15).
    pub fn new(tag: &str) -> Lab {
        assert!(tag.len() <= 4);
        let pid = std::process::id();
        let lab = Lab {
            ns_client: format!("fs-{tag}-{pid}-a"),
            ns_server: format!("fs-{tag}-{pid}-b"),
            veth_client: format!("fs{tag}{pid}a"),
            veth_server: format!("fs{tag}{pid}b"),
            background: Vec::new(),
        };
        assert!(lab.veth_server.len() <= 15, "{}", lab.veth_server);
        sh(&["ip", "netns", "add", &lab.ns_client]);
        sh(&["ip", "netns", "add", &lab.ns_server]);
        sh(&["ip", "link", "add", &lab.veth_client, "type", "veth", "peer", "name", &lab.veth_server]);
        for (ns, dev, addr) in [(&lab.ns_client, &lab.veth_client, CLIENT), (&lab.ns_server, &lab.veth_server, SERVER)]
        {
            sh(&["ip", "link", "set", dev, "netns", ns]);
            // No IPv6 chatter (router solicitations, MLD): the tests count every packet.
            lab.sysctl(ns, &format!("net.ipv6.conf.{dev}.disable_ipv6=1"));
            sh(&["ip", "-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        lab
    }

    pub fn sysctl(&self, ns: &str, setting: &str) {
        sh(&["ip", "netns", "exec", ns, "sysctl", "-q", "-w", setting]);
    }

    /// A command run inside namespace `ns`.
    pub fn cmd(&self, ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(program);
        c
    }

    /// Starts a helper process (server, tcpdump) that is killed when the lab is dropped.
    /// Returns its process id (`ip netns exec` execs the program, so it is the program's).
    pub fn background(&mut self, mut cmd: Command) -> u32 {
        let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let pid = child.id();
        self.background.push(child);
        pid
    }

    /// Starts a helper whose stderr is watched (e.g. tcpdump's "listening on").
    pub fn background_watched(&mut self, mut cmd: Command) -> (u32, Watched) {
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let watched = Watched::new(child.stderr.take().unwrap());
        let pid = child.id();
        self.background.push(child);
        (pid, watched)
    }

    /// Sends `sig` to a background helper and waits (bounded) for it to exit.
    pub fn stop_background(&mut self, pid: u32, sig: nix::sys::signal::Signal) -> ExitStatus {
        let i = self.background.iter().position(|c| c.id() == pid).expect("not a background process of this lab");
        let mut child = self.background.remove(i);
        signal(pid, sig);
        wait_exit(&mut child, Duration::from_secs(10)).expect("background process did not stop")
    }

    /// Deletes the veth pair (both ends) while things may still use it.
    pub fn delete_veth(&self) {
        sh(&["ip", "-n", &self.ns_server, "link", "del", &self.veth_server]);
    }

    /// An HTTP server in the server namespace on `port`, serving `dir`; returns once it
    /// answers.
    pub fn http_server(&mut self, dir: &std::path::Path, port: u16) {
        let mut c = self.cmd(&self.ns_server, "python3");
        c.args(["-m", "http.server", &port.to_string(), "--bind", SERVER, "--directory"]).arg(dir);
        self.background(c);
        let probe = format!("import socket; socket.create_connection(('{SERVER}', {port}), timeout=1).close()");
        crate::common::wait_for("the HTTP server to listen", Duration::from_secs(10), || {
            let ok = self.cmd(&self.ns_server, "python3").args(["-c", &probe]).output().unwrap().status.success();
            ok.then_some(())
        });
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.background {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.ns_client, &self.ns_server] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

pub fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).expect("send signal");
}

/// Waits for a child to exit, at most `limit`.
pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Collects a stream (a child's stderr) line by line on a thread.
#[derive(Clone)]
pub struct Watched(Arc<Mutex<Vec<String>>>);

impl Watched {
    pub fn new(stream: impl std::io::Read + Send + 'static) -> Watched {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Watched(lines)
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    pub fn text(&self) -> String {
        self.lines().join("\n")
    }

    /// Waits until a line contains `needle`; returns it.
    pub fn wait_line(&self, needle: &str, limit: Duration) -> String {
        let what = format!("a line containing {needle:?}");
        crate::common::wait_for(&what, limit, || self.lines().into_iter().find(|l| l.contains(needle)))
    }

    /// The JSON stats lines seen so far.
    pub fn stats_lines(&self) -> Vec<serde_json::Value> {
        self.lines()
            .iter()
            .filter(|l| l.starts_with("{\"type\":\"stats\""))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// A running `flowsentry live` in the server namespace, killed on drop if still running.
pub struct Sensor {
    pub child: Child,
    pub stderr: Watched,
}

impl Sensor {
    /// Starts `flowsentry live -i <server veth> ARGS` and waits until it captures.
    pub fn start(lab: &Lab, args: &[&str]) -> Sensor {
        let mut c = lab.cmd(&lab.ns_server, crate::common::bin());
        c.args(["live", "-i", &lab.veth_server]).args(args);
        let mut child = c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = Watched::new(child.stderr.take().unwrap());
        let sensor = Sensor { child, stderr };
        sensor.stderr.wait_line("capturing on", Duration::from_secs(10));
        sensor
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        signal(self.pid(), sig);
    }

    /// Waits for exit (bounded); returns the status and how long it took.
    pub fn wait(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let t = Instant::now();
        let st = wait_exit(&mut self.child, limit)
            .unwrap_or_else(|| panic!("flowsentry did not exit within {limit:?}; stderr:\n{}", self.stderr.text()));
        (st, t.elapsed())
    }
}

impl Drop for Sensor {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends UDP datagrams from the client namespace: one socket (source port) per entry,
/// each sending `payload` bytes `count` times to SERVER:`port`.
pub fn udp_send(lab: &Lab, sockets: usize, count: usize, payload: usize, port: u16) {
    let script = format!(
        "import socket\nfor _ in range({sockets}):\n s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n \
         for _ in range({count}): s.sendto(b'x'*{payload},('{SERVER}',{port}))\n s.close()\n"
    );
    let out = lab.cmd(&lab.ns_client, "python3").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "udp sender failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Reads a JSON Lines file (missing = empty); every line must be whole JSON.
pub fn read_json_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    match std::fs::read_to_string(path) {
        Ok(s) => {
            assert!(s.is_empty() || s.ends_with('\n'), "{} ends with a partial line", path.display());
            crate::common::json_lines(&s)
        }
        Err(_) => Vec::new(),
    }
}
