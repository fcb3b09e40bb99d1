#!/usr/bin/env bash
# capture-stats.sh — print a Markdown table of what each capture holds
# (packet count, duration, distinct ports probed on the server, probe kinds,
# ICMP errors, HTTP requests), measured with tcpdump and tshark.
#
# Why it exists: captures/README.md quotes these numbers; this script is how a
# reader re-checks them. make-captures.sh runs it into capture-stats.txt.
#
# Usage: captures/capture-stats.sh FILE.pcap...   (paths relative to captures/ or absolute)
#        captures/capture-stats.sh --sessions FILE.pcap...
#   --sessions: a table for long-session captures instead (connections, 5-tuples,
#   payload packets each way, HTTP requests, keepalive probes); the client is the
#   sender of the first packet. make-long-sessions.sh runs it into long-sessions-stats.txt.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRV4=203.0.113.20
SRV6=2001:db8:1::20
TO_SRV="(ip.dst==$SRV4 or ipv6.dst==$SRV6) and not icmp and not icmpv6"

(($#)) || { echo "usage: capture-stats.sh [--sessions] FILE.pcap..." >&2; exit 2; }

resolve() { # NAME -> path
    local f=$1
    [[ -f $f ]] || f="$HERE/$1"
    [[ -f $f ]] || { echo "capture-stats.sh: no such capture: $1" >&2; exit 1; }
    echo "$f"
}

if [[ $1 == --sessions ]]; then
    shift
    (($#)) || { echo "usage: capture-stats.sh --sessions FILE.pcap..." >&2; exit 2; }
    echo "| file | bytes | packets | seconds | client -> server | TCP connections (SYNs) | UDP 5-tuples | client payload packets | server payload packets | client payload bytes | server payload bytes | HTTP requests | TCP keep-alives | largest IP packet |"
    echo "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for name in "$@"; do
        f=$(resolve "$name")
        bytes=$(stat -c %s "$f")
        seconds=$(capinfos -u -M "$f" 2>/dev/null | awk -F': *' '/Capture duration/ {printf "%.3f", $2}')
        row=$(tshark -n -r "$f" -T fields -E separator=/t -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst \
            -e udp.srcport -e udp.dstport -e tcp.len -e udp.length -e tcp.flags.syn -e tcp.flags.ack \
            -e http.request -e tcp.analysis.keep_alive -e ip.len -e ipv6.plen 2>/dev/null | awk -F'\t' '
            function on(v) { return v == "1" || v == "True" }
            {
                src = ($1 != "") ? $1 : $3; dst = ($2 != "") ? $2 : $4
                if (NR == 1) { client = src; server = dst }
                packets++
                if (on($9) && !on($10)) syns++
                if ($5 != "") tuples[src " " $5 " " dst " " $6]++
                pay = ($7 != "") ? $7 : (($8 != "") ? $8 - 8 : 0)
                if (pay > 0 && $12 == "") {
                    if (src == client) { cp++; cb += pay } else { sp++; sb += pay }
                }
                if ($11 != "") http++
                if ($12 != "") ka++
                len = ($13 != "") ? $13 : $14 + 40
                if (len + 0 > big) big = len + 0
            }
            END {
                # A UDP 5-tuple seen in both directions counts once.
                for (t in tuples) { split(t, a, " "); if (!((a[3] " " a[4] " " a[1] " " a[2]) in seen)) { u++; seen[t] } }
                printf "%d | %s -> %s | %d | %d | %d | %d | %d | %d | %d | %d | %d", packets, client, server,
                    syns, u, cp, sp, cb, sb, http, ka, big
            }')
        echo "| $name | $bytes | ${row%% |*} | $seconds | ${row#* | } |"
    done
    exit 0
fi

count_rows() { # FILE DISPLAY_FILTER
    tshark -r "$1" -Y "$2" 2>/dev/null | wc -l
}

distinct() { # FILE DISPLAY_FILTER FIELD
    tshark -r "$1" -Y "$2" -T fields -e "$3" 2>/dev/null | sed '/^$/d' | sort -u | wc -l
}

echo "| file | bytes | packets | seconds | TCP dst ports -> server | UDP dst ports -> server | SYN probes (ports) | FIN (ports) | NULL (ports) | XMAS (ports) | ICMP unreachable from server | HTTP GETs | sources |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
for name in "$@"; do
    f=$(resolve "$name")
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
