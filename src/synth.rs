//! Synthetic captures: a pcap writer and traffic-scenario generators used by tests and
//! benchmarks (the project's own code, so every generated capture is reproducible).
