#!/usr/bin/env python3
"""Splits a pcap file in two by flow, as two sensors behind a packet broker would see it.

    split_by_flow.py [--by flow|pair] IN.pcap OUT_A.pcap OUT_B.pcap
        -> "A_PACKETS B_PACKETS" on stdout

Both directions of a flow go to the same half: the half is a hash of the flow's endpoints
sorted (protocol, then address and port of each side), so the initiator's and the
responder's packets agree. With `--by pair` the hash covers the two addresses only (a
broker's symmetric IP-pair hashing): all sessions between two hosts, whatever their
ports, go to the same half. ICMP errors (destination unreachable, time exceeded, ...) go
with the flow whose header they quote, as a broker hashing inner headers would send them,
so the sensor that owns a session also sees the errors about it. ICMP echo and other
portless traffic is hashed by its address pair. Frames that are not IP go to half A.

Classic pcap only (both byte orders, micro- and nanosecond magic), link types Ethernet
(with 802.1Q/QinQ tags), Linux SLL and SLL2, raw IP and BSD loopback; records are copied
byte for byte. Python 3 standard library only.
"""

import hashlib
import struct
import sys

MAGICS = {
    b"\xd4\xc3\xb2\xa1": "<",
    b"\xa1\xb2\xc3\xd4": ">",
    b"\x4d\x3c\xb2\xa1": "<",
    b"\xa1\xb2\x3c\x4d": ">",
}
ICMP4_ERRORS = {3, 4, 5, 11, 12}
ICMP6_ERRORS = {1, 2, 3, 4}
IPV6_EXTENSIONS = {0, 43, 44, 60}


def ip_payload(frame, linktype):
    """(ip version, bytes from the IP header on) or None."""
    if linktype == 1:  # Ethernet
        off, ethertype = 14, struct.unpack_from(">H", frame, 12)[0] if len(frame) >= 14 else None
        while ethertype in (0x8100, 0x88A8, 0x9100) and len(frame) >= off + 4:
            ethertype = struct.unpack_from(">H", frame, off + 2)[0]
            off += 4
    elif linktype == 113:  # Linux SLL
        off, ethertype = 16, struct.unpack_from(">H", frame, 14)[0] if len(frame) >= 16 else None
    elif linktype == 276:  # Linux SLL2
        off, ethertype = 20, struct.unpack_from(">H", frame, 0)[0] if len(frame) >= 20 else None
    elif linktype in (12, 14, 101, 228, 229):  # raw IP
        off, ethertype = 0, None
    elif linktype in (0, 108):  # BSD loopback: 4-byte address family
        off, ethertype = 4, None
    else:
        raise SystemExit(f"split_by_flow: unsupported link type {linktype}")
    data = frame[off:]
    if not data:
        return None
    version = data[0] >> 4
    if ethertype is not None and ethertype not in (0x0800, 0x86DD):
        return None
    return (version, data) if version in (4, 6) else None


def flow_key(version, data, by_pair=False, depth=0):
    """A direction-independent key for the flow (or with `by_pair` the host pair) of an
    IP packet (bytes), or None."""
    if version == 4:
        if len(data) < 20:
            return None
        ihl = (data[0] & 0x0F) * 4
        proto, src, dst = data[9], data[12:16], data[16:20]
        frag_offset = struct.unpack_from(">H", data, 6)[0] & 0x1FFF
        l4 = data[ihl:] if frag_offset == 0 else b""
        icmp, errors = 1, ICMP4_ERRORS
    elif version == 6:
        if len(data) < 40:
            return None
        proto, src, dst, off = data[6], data[8:24], data[24:40], 40
        while proto in IPV6_EXTENSIONS and len(data) >= off + 8:
            if proto == 44 and struct.unpack_from(">H", data, off + 2)[0] & 0xFFF8:
                proto, off = None, len(data)  # a non-first fragment: no transport header
                break
            proto, off = data[off], off + (8 if proto == 44 else (data[off + 1] + 1) * 8)
        l4 = data[off:]
        icmp, errors = 58, ICMP6_ERRORS
    else:
        return None
    if proto == icmp and len(l4) >= 8 and l4[0] in errors and depth == 0:
        quoted = l4[8:]
        if quoted:
            inner = flow_key(quoted[0] >> 4, quoted, by_pair, depth + 1)
            if inner is not None:
                return inner
    ends = [src, dst]
    if by_pair:
        proto = 0
    elif proto in (6, 17, 132, 136) and len(l4) >= 4:
        ends = [src + l4[0:2], dst + l4[2:4]]
    ends.sort()
    return bytes([version, proto or 0]) + ends[0] + ends[1]


def half(key):
    return 0 if key is None else hashlib.sha256(key).digest()[0] & 1


def main(argv):
    by_pair = False
    if len(argv) == 6 and argv[1] == "--by" and argv[2] in ("flow", "pair"):
        by_pair = argv[2] == "pair"
        argv = argv[:1] + argv[3:]
    if len(argv) != 4:
        print("usage: split_by_flow.py [--by flow|pair] IN.pcap OUT_A.pcap OUT_B.pcap", file=sys.stderr)
        return 2
    with open(argv[1], "rb") as f:
        raw = f.read()
    if len(raw) < 24 or raw[:4] not in MAGICS:
        raise SystemExit(f"split_by_flow: {argv[1]}: not a classic pcap file")
    endian = MAGICS[raw[:4]]
    linktype = struct.unpack_from(endian + "I", raw, 20)[0] & 0x0FFFFFFF
    outs = [open(argv[2], "wb"), open(argv[3], "wb")]
    counts = [0, 0]
    for out in outs:
        out.write(raw[:24])
    pos = 24
    while pos < len(raw):
        if pos + 16 > len(raw):
            raise SystemExit(f"split_by_flow: {argv[1]}: truncated record header at byte {pos}")
        incl = struct.unpack_from(endian + "I", raw, pos + 8)[0]
        end = pos + 16 + incl
        if end > len(raw):
            raise SystemExit(f"split_by_flow: {argv[1]}: truncated record at byte {pos}")
        parsed = ip_payload(raw[pos + 16:end], linktype)
        side = half(flow_key(*parsed, by_pair)) if parsed else 0
        outs[side].write(raw[pos:end])
        counts[side] += 1
        pos = end
    for out in outs:
        out.close()
    print(counts[0], counts[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
