#!/usr/bin/env bash
# capture-stats.sh — print a Markdown table of what each capture holds
# (packet count, duration, distinct ports probed on the server, probe kinds,
# ICMP errors, HTTP requests), measured with tcpdump and tshark.
#
# Why it exists: captures/README.md quotes these numbers; this script is how a
# reader re-checks them. make-captures.sh runs it into capture-stats.txt.
#
# Usage: captures/capture-stats.sh FILE.pcap...   (paths relative to captures/ or absolute)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRV4=203.0.113.20
SRV6=2001:db8:1::20
TO_SRV="(ip.dst==$SRV4 or ipv6.dst==$SRV6) and not icmp and not icmpv6"

(($#)) || { echo "usage: capture-stats.sh FILE.pcap..." >&2; exit 2; }

count_rows() { # FILE DISPLAY_FILTER
    tshark -r "$1" -Y "$2" 2>/dev/null | wc -l
}

distinct() { # FILE DISPLAY_FILTER FIELD
    tshark -r "$1" -Y "$2" -T fields -e "$3" 2>/dev/null | sed '/^$/d' | sort -u | wc -l
}

echo "| file | bytes | packets | seconds | TCP dst ports -> server | UDP dst ports -> server | SYN probes (ports) | FIN (ports) | NULL (ports) | XMAS (ports) | ICMP unreachable from server | HTTP GETs | sources |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
for name in "$@"; do
    f=$name
    [[ -f $f ]] || f="$HERE/$name"
    [[ -f $f ]] || { echo "capture-stats.sh: no such capture: $name" >&2; exit 1; }
    bytes=$(stat -c %s "$f")
    packets=$(tcpdump -n -r "$f" 2>/dev/null | wc -l)
    seconds=$(capinfos -u -M "$f" 2>/dev/null | awk -F': *' '/Capture duration/ {printf "%.3f", $2}')
    tcp_ports=$(distinct "$f" "tcp and $TO_SRV" tcp.dstport)
    udp_ports=$(distinct "$f" "udp and $TO_SRV" udp.dstport)
    syn=$(distinct "$f" "tcp.flags==0x002 and $TO_SRV" tcp.dstport)
    fin=$(distinct "$f" "tcp.flags==0x001 and $TO_SRV" tcp.dstport)
    null=$(distinct "$f" "tcp.flags==0x000 and $TO_SRV" tcp.dstport)
    xmas=$(distinct "$f" "tcp.flags==0x029 and $TO_SRV" tcp.dstport)
    unreach=$(tcpdump -n -r "$f" "(src host $SRV4 and icmp[icmptype]==icmp-unreach) or (src host $SRV6 and icmp6 and ip6[40]==1)" 2>/dev/null | wc -l)
    gets=$(count_rows "$f" 'http.request.method=="GET"')
    sources=$(tshark -r "$f" -Y "$TO_SRV" -T fields -e ip.src -e ipv6.src 2>/dev/null |
        tr '\t' '\n' | sed '/^$/d' | sort -u | paste -sd ' ' -)
    echo "| $name | $bytes | $packets | $seconds | $tcp_ports | $udp_ports | $syn | $fin | $null | $xmas | $unreach | $gets | $sources |"
done
