//! Live capture from an interface through libpcap, with a read timeout so time advances
//! on a quiet link.
// Implemented by the capture/decode work (issue 2).
