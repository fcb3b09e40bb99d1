//! The threads: capture (read, decode, flow table) → bounded channel of event batches →
//! detector thread (detectors, record and alert writers).
