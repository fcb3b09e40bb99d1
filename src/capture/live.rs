//! Live capture from an interface through libpcap, with a read timeout so time advances
//! on a quiet link. Packets arrive in the kernel's ring blocks, so a packet reaches the
//! flow table at most one read timeout (250 ms by default) after it was captured.
//!
//! libpcap's own read timeout does not expire on Linux while no packet arrives (its man
//! page allows that; seen with libpcap 1.10 on a filtered loopback), so the capture is
//! put in non-blocking mode and waits with `poll(2)` on its descriptor instead. Opening checks the interface name against libpcap's device list and
//! turns libpcap's errors into messages that say what to do (which capability is
//! missing, which interfaces exist, what is wrong with the filter).
//!
//! libpcap reports an interface that disappears ("The interface disappeared") but since
//! 1.10 keeps waiting silently on one that is taken down. A sensor that sees nothing
//! must say so, so while the link is quiet (and on a socket error) the interface's
//! IFF_UP flag is checked and a downed interface ends the capture with an error.

use super::{CaptureError, CaptureStats, Frame, LinkType, PacketSource};
use crate::time::Timestamp;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use pcap::{Active, Capture, Device};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a quiet capture checks that its interface is still up.
const LINK_CHECK_EVERY: Duration = Duration::from_secs(1);

/// Bytes kept per packet unless told otherwise: every header flowsentry reads (Ethernet,
/// two VLAN tags, IPv6 with extension headers, TCP with options, an ICMP error's quoted
/// headers) fits. A full-packet snaplen would make libpcap size each ring frame for a
/// 64 KiB GRO packet, so the default 2 MiB buffer held ~30 packets and a burst of a few
/// hundred small ones right after start was mostly dropped (measured on a veth: 626 of
/// 1000); with 512 bytes the same buffer holds thousands.
pub const DEFAULT_SNAPLEN: i32 = 512;

/// How to open a live capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveOptions {
    pub interface: String,
    /// BPF filter expression (tcpdump syntax).
    pub bpf: Option<String>,
    pub snaplen: i32,
    /// Kernel buffer size in bytes (libpcap's default when `None`).
    pub buffer_size: Option<i32>,
    pub promisc: bool,
    /// Longest wait for a packet before [`CaptureError::Timeout`].
    pub read_timeout_ms: i32,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            interface: String::new(),
            bpf: None,
            snaplen: DEFAULT_SNAPLEN,
            buffer_size: None,
            promisc: true,
            read_timeout_ms: 250,
        }
    }
}

impl LiveOptions {
    pub fn new(interface: impl Into<String>) -> Self {
        LiveOptions { interface: interface.into(), ..LiveOptions::default() }
    }
}

/// A live interface capture.
pub struct LiveSource {
    capture: Capture<Active>,
    interface: String,
    link: LinkType,
    counters: WideCounters,
    read_timeout: PollTimeout,
    /// The last read found a packet, so more may be waiting: read before polling.
    maybe_more: bool,
    stop: Arc<AtomicBool>,
    last_link_check: Instant,
}

/// Ends a live capture from another thread: the source's next read returns `Ok(None)`
/// (within one read timeout).
#[derive(Clone, Debug)]
pub struct LiveStopper(Arc<AtomicBool>);

impl LiveStopper {
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl LiveSource {
    /// Opens `opts.interface`, applies the filter, and checks the link type.
    pub fn open(opts: &LiveOptions) -> Result<Self, CaptureError> {
        let name = opts.interface.clone();
        let devices = Device::list().map_err(|e| interface_error(&name, format!("cannot list interfaces: {e}")))?;
        let device =
            devices.iter().find(|d| d.name == name).cloned().ok_or_else(|| unknown_interface(&name, &devices))?;
        let mut inactive = Capture::from_device(device)
            .map_err(|e| open_error(&name, opts.promisc, &e))?
            .promisc(opts.promisc)
            .snaplen(opts.snaplen)
            .timeout(opts.read_timeout_ms)
            // Not immediate: the kernel hands packets over in ring blocks (TPACKET_V3),
            // each at most one read timeout late. Immediate mode woke this thread for
            // nearly every packet: ~2 µs of kernel time each at 200 k packets/s on a veth,
            // against ~0.1 µs per packet now (benches/live.sh).
            .immediate_mode(false);
        if let Some(bytes) = opts.buffer_size {
            inactive = inactive.buffer_size(bytes);
        }
        let mut capture =
            inactive.open().and_then(|c| c.setnonblock()).map_err(|e| open_error(&name, opts.promisc, &e))?;
        if let Some(expr) = &opts.bpf {
            capture
                .filter(expr, true)
                .map_err(|e| CaptureError::Filter { expr: expr.clone(), reason: pcap_message(&e) })?;
        }
        let dlt = capture.get_datalink().0;
        let link = LinkType::from_dlt(dlt).map_err(|e| interface_error(&name, e.to_string()))?;
        let read_timeout = PollTimeout::try_from(opts.read_timeout_ms.max(1)).unwrap_or(PollTimeout::MAX);
        Ok(LiveSource {
            capture,
            interface: name,
            link,
            counters: WideCounters::default(),
            read_timeout,
            maybe_more: false,
            stop: Arc::new(AtomicBool::new(false)),
            last_link_check: Instant::now(),
        })
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// A handle another thread can use to end the capture: `next_frame` then returns
    /// `Ok(None)` within one read timeout. Dropping the source closes the capture.
    pub fn stopper(&self) -> LiveStopper {
        LiveStopper(Arc::clone(&self.stop))
    }

    /// Waits up to the read timeout for the capture descriptor to become readable.
    /// `Ok(false)`: nothing arrived.
    fn wait_readable(&mut self) -> Result<bool, CaptureError> {
        let mut fds = [PollFd::new(self.capture.as_fd(), PollFlags::POLLIN)];
        let ready = match nix::poll::poll(&mut fds, self.read_timeout) {
            Ok(n) => n > 0,
            Err(nix::errno::Errno::EINTR) => false,
            Err(e) => return Err(interface_error(&self.interface, format!("waiting for packets failed: {e}"))),
        };
        let socket_error = fds[0].revents().is_some_and(|r| r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP));
        if socket_error || (!ready && self.last_link_check.elapsed() >= LINK_CHECK_EVERY) {
            self.last_link_check = Instant::now();
            self.check_link_up()?;
        }
        Ok(ready)
    }

    /// Fails when the interface is down (libpcap would keep waiting silently). An
    /// interface that is gone is left to libpcap, which reports it as disappeared.
    fn check_link_up(&self) -> Result<(), CaptureError> {
        use nix::net::if_::InterfaceFlags;
        if self.interface == "any" {
            return Ok(());
        }
        let Ok(addrs) = nix::ifaddrs::getifaddrs() else { return Ok(()) };
        let mut seen = false;
        for a in addrs.filter(|a| a.interface_name == self.interface) {
            if a.flags.contains(InterfaceFlags::IFF_UP) {
                return Ok(());
            }
            seen = true;
        }
        if seen {
            return Err(interface_error(&self.interface, "capture stopped: the interface went down".into()));
        }
        Ok(())
    }
}

impl PacketSource for LiveSource {
    fn link_type(&self) -> LinkType {
        self.link
    }

    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        if self.stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        // After a burst the ring is read until empty first; that one empty read reports a
        // (short) timeout, which only makes the caller advance time once more.
        if !self.maybe_more && !self.wait_readable()? {
            return Err(CaptureError::Timeout);
        }
        if self.stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        self.maybe_more = false;
        match self.capture.next_packet() {
            Ok(packet) => {
                let h = packet.header;
                let ts = header_time(h);
                self.maybe_more = true;
                Ok(Some(Frame { link: self.link, ts, wire_len: h.len.max(h.caplen), data: packet.data }))
            }
            // Non-blocking read with nothing buffered.
            Err(pcap::Error::TimeoutExpired) => Err(CaptureError::Timeout),
            Err(pcap::Error::NoMorePackets) => Ok(None),
            Err(e) => Err(interface_error(&self.interface, format!("capture stopped: {}", pcap_message(&e)))),
        }
    }

    fn stats(&mut self) -> Option<CaptureStats> {
        let s = self.capture.stats().ok()?;
        Some(self.counters.update(s.received, s.dropped, s.if_dropped))
    }

    fn is_live(&self) -> bool {
        true
    }
}

/// A libpcap header timestamp in microseconds (live captures use the default precision).
#[allow(clippy::useless_conversion)] // time_t / suseconds_t are i32 on some platforms
fn header_time(h: &pcap::PacketHeader) -> Timestamp {
    Timestamp::from_sec_usec(i64::from(h.ts.tv_sec), i64::from(h.ts.tv_usec))
}

/// libpcap's 32-bit counters widened to 64 bits (they wrap on a busy link).
#[derive(Default)]
struct WideCounters {
    last: [u32; 3],
    total: [u64; 3],
}

impl WideCounters {
    fn update(&mut self, received: u32, dropped: u32, if_dropped: u32) -> CaptureStats {
        for (i, now) in [received, dropped, if_dropped].into_iter().enumerate() {
            self.total[i] += u64::from(now.wrapping_sub(self.last[i]));
            self.last[i] = now;
        }
        CaptureStats { received: self.total[0], dropped: self.total[1], if_dropped: self.total[2] }
    }
}

fn interface_error(name: &str, reason: String) -> CaptureError {
    CaptureError::Interface { name: name.to_string(), reason }
}

fn unknown_interface(name: &str, devices: &[Device]) -> CaptureError {
    let mut names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
    names.sort_unstable();
    let available = if names.is_empty() { "none visible".to_string() } else { names.join(", ") };
    interface_error(name, format!("no such interface; available: {available}"))
}

/// Explains an error from opening/activating the capture; permission problems name
/// the capability and how to grant it.
fn open_error(name: &str, promisc: bool, e: &pcap::Error) -> CaptureError {
    let msg = pcap_message(e);
    let lower = msg.to_lowercase();
    if lower.contains("permission") || lower.contains("operation not permitted") {
        let exe = std::env::current_exe()
            .ok()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "/path/to/flowsentry".to_string());
        let caps = if promisc { "CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode)" } else { "CAP_NET_RAW" };
        return interface_error(
            name,
            format!(
                "capturing on {name} needs {caps}: run as root, or `setcap cap_net_raw,cap_net_admin=eip {exe}` ({msg})"
            ),
        );
    }
    interface_error(name, msg)
}

/// libpcap's own message, without the Rust enum name around it.
fn pcap_message(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(msg) => msg.trim().to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_interface_names_it_and_lists_available_ones() {
        let err = LiveSource::open(&LiveOptions::new("nosuchif0")).err().expect("must fail");
        let msg = err.to_string();
        assert!(matches!(err, CaptureError::Interface { .. }), "{msg}");
        assert!(msg.contains("nosuchif0") && msg.contains("no such interface"), "{msg}");
        let listed: Vec<String> = Device::list().unwrap().into_iter().map(|d| d.name).collect();
        if let Some(first) = listed.first() {
            assert!(msg.contains("available: ") && msg.contains(first.as_str()), "{msg}");
        }
    }

    #[test]
    fn permission_errors_say_which_capability_and_how_to_grant_it() {
        let e = pcap::Error::PcapError(
            "eth0: You don't have permission to perform this capture on that device (socket: Operation not permitted)"
                .into(),
        );
        let msg = open_error("eth0", true, &e).to_string();
        assert!(msg.contains("CAP_NET_RAW") && msg.contains("CAP_NET_ADMIN"), "{msg}");
        assert!(msg.contains("setcap cap_net_raw,cap_net_admin=eip") && msg.contains("run as root"), "{msg}");
        assert!(msg.starts_with("interface eth0: capturing on eth0 needs"), "{msg}");
        let msg = open_error("eth0", false, &e).to_string();
        assert!(!msg.contains("promiscuous"), "{msg}");
        // Other failures keep libpcap's reason.
        let e = pcap::Error::PcapError("eth0: SIOCGIFHWADDR: No such device".into());
        assert_eq!(open_error("eth0", true, &e).to_string(), "interface eth0: eth0: SIOCGIFHWADDR: No such device");
    }

    #[test]
    fn wrapping_counters_keep_growing() {
        let mut c = WideCounters::default();
        assert_eq!(c.update(10, 1, 0).received, 10);
        let s = c.update(u32::MAX - 5, 2, 0);
        assert_eq!(s.received, u64::from(u32::MAX) - 5);
        let s = c.update(4, 3, 7);
        assert_eq!((s.received, s.dropped, s.if_dropped), (u64::from(u32::MAX) + 5, 3, 7));
    }

    /// Root-only tests run as root and skip otherwise, unless FLOWSENTRY_REQUIRE_ROOT_TESTS
    /// is set (CI), which makes not being root a failure (same rule as tests/common).
    fn require_root(test: &str) -> bool {
        if nix::unistd::geteuid().is_root() {
            return true;
        }
        assert!(
            std::env::var_os("FLOWSENTRY_REQUIRE_ROOT_TESTS").is_none(),
            "{test}: needs root, and FLOWSENTRY_REQUIRE_ROOT_TESTS is set"
        );
        eprintln!("{test}: skipped (needs root; set FLOWSENTRY_REQUIRE_ROOT_TESTS=1 to make this a failure)");
        false
    }

    /// Needs CAP_NET_RAW: opens loopback with a filter nothing matches.
    #[test]
    fn live_loopback_times_out_and_rejects_bad_filters() {
        if !require_root("live_loopback_times_out_and_rejects_bad_filters") {
            return;
        }
        let mut opts = LiveOptions::new("lo");
        opts.read_timeout_ms = 50;
        opts.bpf = Some("udp and host 192.0.2.99 and port 9".into());
        let mut src = LiveSource::open(&opts).unwrap();
        assert!(src.is_live());
        assert_eq!(src.link_type(), LinkType::Ethernet);
        let started = std::time::Instant::now();
        assert!(matches!(src.next_frame(), Err(CaptureError::Timeout)));
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "read timeout not honoured");
        assert!(src.stats().is_some());
        src.stopper().stop();
        assert!(matches!(src.next_frame(), Ok(None)));

        // Loopback traffic is seen, decoded and timestamped.
        opts.bpf = Some("udp and host 127.0.0.1 and port 59999".into());
        let mut src = LiveSource::open(&opts).unwrap();
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.send_to(b"flowsentry", "127.0.0.1:59999").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let meta = loop {
            assert!(std::time::Instant::now() < deadline, "datagram never captured");
            let link = src.link_type();
            match src.next_frame() {
                Ok(Some(frame)) => break crate::decode::decode(link, &frame).unwrap(),
                Err(CaptureError::Timeout) => continue,
                other => panic!("{other:?}"),
            }
        };
        assert!(matches!(meta.transport, crate::decode::Transport::Udp { dport: 59999, payload_len: 10, .. }));
        assert!(meta.ts > Timestamp::from_secs(1_600_000_000));
        opts.bpf = Some("tcp port banana".into());
        let err = LiveSource::open(&opts).err().unwrap();
        assert!(matches!(err, CaptureError::Filter { .. }), "{err}");
        assert!(err.to_string().contains("tcp port banana"), "{err}");
    }
}
