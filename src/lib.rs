//! flowsentry: a live packet-capture network sensor.
//!
//! Packets (from an interface or pcap files) are decoded into flow sessions; flow
//! events travel in batches over bounded channels to a detector thread that raises
//! port-scan and beaconing alerts and writes ASIM NetworkSession records.
//!
//! Module map (one job each):
//! - [`capture`]: where raw frames come from (pcap files, live interfaces), behind a trait.
//! - [`decode`]: slices a raw frame into the few header fields flows need.
//! - [`flow`]: the bounded flow table that turns packets into sessions and records.
//! - [`input`]: decoded packets for the capture thread (a reader thread for replays).
//! - [`detect`]: port-scan and beaconing detectors (Sentinel-exact and enhanced).
//! - [`output`]: JSON Lines writers for records and alerts.
//! - [`pipeline`]: the threads and channels that connect the above.
//! - [`config`], [`cli`]: command line and TOML settings, validated into one config;
//!   [`usage_errors`], [`config_errors`], [`error_text`]: their mistakes as one line.
//! - [`app`]: the run from flags to exit code; [`service`]: signals, privilege drop;
//!   [`progress`]: a replay's progress line; [`discover`]: version, completions, man
//!   page, interface list.
//! - [`net`], [`time`]: address sets and capture-time helpers shared by everything.
#![forbid(unsafe_code)]

pub mod app;
pub mod capture;
pub mod cli;
pub mod config;
pub mod config_errors;
pub mod decode;
pub mod detect;
pub mod discover;
pub mod error_text;
pub mod flow;
pub mod input;
pub mod log;
pub mod net;
pub mod output;
pub mod pipeline;
pub mod progress;
pub mod service;
pub mod stats;
pub mod synth;
pub mod time;
pub mod usage_errors;
