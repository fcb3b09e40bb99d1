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
//! - [`config`], [`cli`]: command line and TOML settings, validated into one config.
//! - [`net`], [`time`]: address sets and capture-time helpers shared by everything.
#![forbid(unsafe_code)]

pub mod app;
pub mod capture;
pub mod cli;
pub mod config;
pub mod decode;
pub mod detect;
pub mod flow;
pub mod input;
pub mod log;
pub mod net;
pub mod output;
pub mod pipeline;
pub mod service;
pub mod stats;
pub mod synth;
pub mod time;
