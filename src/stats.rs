//! Counters shared between threads, the exit summary and periodic JSON stats lines.
