//! Running as a service: signals, privilege drop, journald-friendly logging.
