//! Replay: pcap and pcapng files read in order through libpcap, packet timestamps as the clock.
// Implemented by the capture/decode work (issue 2).
