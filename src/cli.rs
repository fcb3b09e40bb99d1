//! Command-line flags as parsed by clap, before validation.
