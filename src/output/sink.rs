//! Where JSON lines go: stdout or a file (appended, reopenable on SIGHUP).
