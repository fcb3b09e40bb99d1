//! Synthetic captures: a pcap writer, frame builders and traffic-scenario generators used
//! by tests and benchmarks (the project's own code, so every generated capture is
//! reproducible from a seed and never needs real traffic).
//!
//! Layers, bottom up:
//! - [`packet`]: `Copy` packet descriptions and the Ethernet/IP/TCP/UDP/ICMP encoder;
//! - [`pcap_writer`]: classic pcap output (µs or ns timestamps);
//! - [`rng`]: the deterministic PRNG every generator draws from;
//! - [`session`]: whole conversations (TCP sessions, scans, UDP exchanges) as packets;
//! - [`scenarios`]: named detection scenarios with documented expected verdicts;
//! - [`stream`]: the streaming engine of the benchmark mixes (Poisson session starts,
//!   long sessions produced chunk by chunk);
//! - [`mixed`]: the original benchmark mix, (a); [`mixes`]: the other mixes (b)–(d);
//! - [`flood`]: the streaming SYN flood (spoofed random sources) for load tests.

pub mod flood;
pub mod mixed;
pub mod mixes;
pub mod packet;
pub mod pcap_writer;
pub mod rng;
pub mod scenarios;
pub mod session;
pub mod stream;

#[cfg(test)]
mod tests;

pub use flood::{write_syn_flood, FloodParams};
pub use mixed::{write_mixed, MixedParams, MixedStats};
pub use mixes::{write_bulk, write_hosts, write_short, MixParams, MixReport, HOSTS_PLANTED};
pub use packet::{encode_frame, flags, Packet, TcpSpec, Transport, UdpSpec};
pub use pcap_writer::{PcapWriter, TsResolution};
pub use rng::Rng;
pub use scenarios::{find as find_scenario, Scenario, ScenarioCtx, SCENARIOS};
pub use session::{sort_packets, PortState, ScanKind, ScannerStyle, TcpConn, Trace};
