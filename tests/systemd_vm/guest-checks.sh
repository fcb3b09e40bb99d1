#!/bin/bash
# Runs inside the test VM (tests/systemd_vm.rs), as root, once the system has booted
# under systemd as PID 1. Drives the installed units with real interfaces and traffic
# and reports one line per check on the port given as $1 (the second serial port):
#   FSVM <check> ok|fail <details>
#   FSVM-MEASURE <name> <value>
#   FSVM-END
# Every wait is on a condition with a deadline. Traffic stays on a veth pair inside the
# VM (one end in a network namespace), between documentation addresses.
set -u
exec 3>"${1:-/dev/ttyS1}"

TEMPLATE='flowsentry@fs\x2dspan0.service' # flowsentry@ + systemd-escape fs-span0
BOOT_NIC='flowsentry@eth0.service'
PLAIN='flowsentry.service'
NS=fsvm
IFACE=fs-span0 PEER=fspeer0 SENSOR_IP=198.51.100.20 SCANNER_IP=198.51.100.10
PLAIN_IF=fsplain0 PLAIN_PEER=fsplainp PLAIN_IP=203.0.113.20 PLAIN_SCANNER=203.0.113.10
LOGS=/var/log/flowsentry
OUT=$LOGS/$IFACE

line() { printf '%s\n' "$*" >&3; printf '%s\n' "$*"; }
failures=0
report() { # report CHECK ok|fail DETAILS...
  local name=$1 verdict=$2
  shift 2
  [ "$verdict" = ok ] || failures=$((failures + 1))
  line "FSVM $name $verdict $*"
}
verdict() { if "$@"; then echo ok; else echo fail; fi; }
# check COMMAND...: its verdict in V, run in this shell (so a load it does stays in P).
check() { if "$@"; then V=ok; else V=fail; fi; }
measure() { line "FSVM-MEASURE $1 $2"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# until_ok SECONDS COMMAND...: polls COMMAND every second until it succeeds (0) or the
# deadline passes (1). Polls are kept cheap: under TCG every process started costs a
# lot, and slows down what is being waited for.
until_ok() {
  local end=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 1
  done
}

# load UNIT: the unit's state into P[...] (one systemctl call: each costs seconds here).
declare -A P
load() {
  local k v
  P=([ActiveState]= [SubState]= [NRestarts]=-1 [MainPID]= [InvocationID]= [Result]= [ExecMainStatus]= [UnitFileState]=)
  while IFS='=' read -r k v; do P[$k]=$v; done < <(systemctl show "$1" -p ActiveState -p SubState \
    -p NRestarts -p MainPID -p InvocationID -p Result -p ExecMainStatus -p UnitFileState)
  P[state]=${P[ActiveState]:-?}/${P[SubState]:-?}
}
not_failed() { [ "${P[ActiveState]}" != failed ]; }
promiscuity() { ip -d -o link show dev "$1" 2>/dev/null | grep -o 'promiscuity [0-9]*' | cut -d' ' -f2; }
# promisc IFACE: the interface is in promiscuous mode (IFF_PROMISC); no process started.
promisc() { local f; read -r f 2>/dev/null <"/sys/class/net/$1/flags" && (((f & 0x100) != 0)); }
# capturing UNIT IFACE: the unit runs and its capture is open (libpcap put the interface
# into promiscuous mode; nothing else here does). Leaves the unit's state in P.
capturing() { promisc "$2" && load "$1" && [ "${P[ActiveState]}" = active ]; }
in_ns() { ip netns exec "$NS" "$@"; }
scan() { in_ns nmap -n -Pn -sS -T4 --max-retries 1 -p "$1" "$2" >/dev/null 2>&1; }
# ports_seen FILE SRC DST LOW HIGH: distinct destination ports LOW..HIGH in FILE's
# records from SRC to DST.
ports_seen() {
  [ -f "$1" ] || { echo 0; return; }
  awk -v src="\"SrcIpAddr\":\"$2\"" -v dst="\"DstIpAddr\":\"$3\"" -v lo="$4" -v hi="$5" '
    index($0, src) && index($0, dst) && match($0, /"DstPortNumber":[0-9]+/) {
      port = substr($0, RSTART + 16, RLENGTH - 16) + 0
      if (port >= lo && port <= hi && !(port in seen)) { seen[port] = 1; n++ }
    }
    END { print n + 0 }' "$1"
}
# all_ports FILE SRC DST LOW HIGH: every port LOW..HIGH has its record.
all_ports() { [ "$(ports_seen "$@")" -eq $(($5 - $4 + 1)) ]; }
has_alert() { [ -f "$1" ] && grep -F '"AlertType":"PortScan"' "$1" | grep -F "\"DetectionMode\":\"$2\"" | grep -qF "\"SrcIpAddr\":\"$3\""; }
# Everything the unit's current run wrote to the journal.
invocation_log() { load "$1" && journalctl -q -o cat -u "$1" "_SYSTEMD_INVOCATION_ID=${P[InvocationID]}"; }
stats_lines() { invocation_log "$1" | grep -c '"type":"stats"'; }
packets_read() { invocation_log "$1" | grep '"type":"stats"' | tail -n 1 | grep -o '"packets_read":[0-9]*' | cut -d: -f2; }
# The first error flowsentry logged under UNIT (for the report).
first_error() { journalctl -q -o cat -p err -t flowsentry -u "$1" | head -n 1 | tr ' ' _; }
exposure() { systemd-analyze security --no-pager "$1" 2>&1 | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p'; }
# stopped_for_good UNIT: inactive, and no job queued that would start it again.
stopped_for_good() { load "$1" && [ "${P[state]}" = inactive/dead ] && ! systemctl list-jobs --plain --no-legend | grep -qF "$1"; }
make_pair() { # make_pair IFACE PEER IP PEER_IP: IFACE in this namespace, PEER in $NS
  ip link add "$1" type veth peer name "$2" netns "$NS" &&
    ip addr add "$3/24" dev "$1" && ip link set "$1" up &&
    ip -n "$NS" addr add "$4/24" dev "$2" && ip -n "$NS" link set "$2" up
}
have() { [ -e "$1" ] && echo yes || echo no; }
mode() { stat -c %U:%G:%a "$1" 2>/dev/null || echo missing; }

measure boot_seconds "$(cut -d' ' -f1 /proc/uptime)"
measure systemd "$(systemctl --version | head -n 1 | tr ' ' _)"
measure kernel "$(uname -r)"

# --- Installed by systemd/install.sh ------------------------------------------
installed_ok() {
  [ -x /usr/local/bin/flowsentry ] && [ -f /etc/systemd/system/flowsentry@.service ] &&
    [ -f /etc/systemd/system/flowsentry.service ] && getent passwd flowsentry >/dev/null &&
    [ "$(mode /etc/flowsentry/flowsentry.toml)" = root:flowsentry:640 ]
}
check installed_ok
report installed "$V" "user=$(getent passwd flowsentry | cut -d: -f1,7)" \
  "config=$(mode /etc/flowsentry/flowsentry.toml)" \
  "bash=$(have /usr/local/share/bash-completion/completions/flowsentry)" \
  "zsh=$(have /usr/local/share/zsh/site-functions/_flowsentry)" \
  "fish=$(have /usr/local/share/fish/vendor_completions.d/flowsentry.fish)" \
  "man=$(have /usr/local/share/man/man1/flowsentry.1)"

# --- Boot: an enabled instance whose interface is missing waits, not failed ----
wants="/etc/systemd/system/sys-subsystem-net-devices-fs\\x2dspan0.device.wants/$TEMPLATE"
load "$TEMPLATE"
missing_ok() {
  [ "${P[state]}" = inactive/dead ] && [ -z "${P[InvocationID]}" ] && [ "${P[UnitFileState]}" = enabled ] &&
    [ -L "$wants" ] && [ ! -e "/sys/class/net/$IFACE" ]
}
check missing_ok
report boot-missing-waits "$V" "state=${P[state]}" "enabled=${P[UnitFileState]}" \
  "ever-started=$([ -n "${P[InvocationID]}" ] && echo yes || echo no)" "wants-link=$(have "$wants")"

# --- Boot: a NIC present at boot (eth0, down) starts its instance --------------
# Down, the capture cannot open ("That device is not up", exit 2): the device must have
# started the unit, which keeps retrying, not failed.
started_by_device() { load "$BOOT_NIC" && [ -n "${P[InvocationID]}" ] && not_failed; }
until_ok 120 started_by_device
check started_by_device
report boot-present-started "$V" "state=${P[state]}" \
  "restarts=${P[NRestarts]}" "enabled=${P[UnitFileState]}" "first-error=$(first_error "$BOOT_NIC")"

# --- The NIC comes up: its unit captures, with no help ---------------------------
ip netns add "$NS"
ip -n "$NS" link set lo up
t=$(now)
ip link set eth0 up
until_ok 120 capturing "$BOOT_NIC" eth0
check capturing "$BOOT_NIC" eth0
report boot-present-capturing "$V" "state=${P[state]}" \
  "promiscuity=$(promiscuity eth0)" "seconds-after-up=$(since "$t")"

# --- The interface appears: its instance starts by itself ----------------------
t=$(now)
make_pair "$IFACE" "$PEER" "$SENSOR_IP" "$SCANNER_IP"
until_ok 120 capturing "$TEMPLATE" "$IFACE"
check capturing "$TEMPLATE" "$IFACE"
report hotplug-start "$V" "state=${P[state]}" \
  "seconds=$(since "$t")" "restarts=${P[NRestarts]}"

# --- Identity: the service user, CAP_NET_RAW only -----------------------------
pid=${P[MainPID]}
uid=$(id -u flowsentry) gid=$(id -g flowsentry)
status() { grep "^$1:" "/proc/$pid/status" | cut -f2- | tr '\t' ' '; }
raw=0000000000002000 # 1 << CAP_NET_RAW (13)
identity_ok() {
  [ "$(cat "/proc/$pid/comm")" = flowsentry ] &&
    [ "$(status Uid)" = "$uid $uid $uid $uid" ] && [ "$(status Gid)" = "$gid $gid $gid $gid" ] &&
    [ "$(status CapEff)" = $raw ] && [ "$(status CapPrm)" = $raw ] && [ "$(status CapBnd)" = $raw ] &&
    [ "$(status CapAmb)" = $raw ]
}
check identity_ok
report identity "$V" "comm=$(cat "/proc/$pid/comm")" "uid=$(status Uid | tr ' ' ,)" \
  "flowsentry-uid=$uid" "gid=$(status Gid | tr ' ' ,)" "CapEff=$(status CapEff)" "CapPrm=$(status CapPrm)" \
  "CapBnd=$(status CapBnd)" "CapAmb=$(status CapAmb)" "NoNewPrivs=$(status NoNewPrivs)"
dirs_ok() { [ "$(mode "$LOGS")" = flowsentry:flowsentry:750 ] && [ "$(mode "$OUT")" = flowsentry:flowsentry:750 ]; }
check dirs_ok
report log-dirs "$V" "$LOGS=$(mode "$LOGS")" "$OUT=$(mode "$OUT")"

# --- A port scan across the veth: records and alerts ---------------------------
t=$(now)
scan 1-100 "$SENSOR_IP"
measure nmap_100_ports_seconds "$(since "$t")"
t=$(now)
until_ok 120 all_ports "$OUT/records.jsonl" "$SCANNER_IP" "$SENSOR_IP" 1 100
check all_ports "$OUT/records.jsonl" "$SCANNER_IP" "$SENSOR_IP" 1 100
report scan-records "$V" \
  "ports=$(ports_seen "$OUT/records.jsonl" "$SCANNER_IP" "$SENSOR_IP" 1 100)/100" \
  "seconds-after-scan=$(since "$t")" "file=$(mode "$OUT/records.jsonl")"
both_alerts() { has_alert "$OUT/alerts.jsonl" sentinel "$SCANNER_IP" && has_alert "$OUT/alerts.jsonl" enhanced "$SCANNER_IP"; }
until_ok 120 both_alerts
check both_alerts
report scan-alerts "$V" "sentinel=$(verdict has_alert "$OUT/alerts.jsonl" sentinel "$SCANNER_IP")" \
  "enhanced=$(verdict has_alert "$OUT/alerts.jsonl" enhanced "$SCANNER_IP")" "seconds-after-scan=$(since "$t")" \
  "file=$(mode "$OUT/alerts.jsonl")"

# --- systemctl kill -s USR1: a stats line in the journal (stats_interval = 0) ----
before=$(stats_lines "$TEMPLATE")
systemctl kill -s USR1 --kill-whom=main "$TEMPLATE"
more_stats() { [ "$(stats_lines "$TEMPLATE")" -gt "$before" ]; }
until_ok 120 more_stats
check more_stats
report usr1-stats "$V" "stats-lines=$before->$(stats_lines "$TEMPLATE")" \
  "packets_read=$(packets_read "$TEMPLATE")"

# --- flowsentry.service on an interface missing at boot: retries without limit ---
# The old unit gave up after 5 starts (StartLimitBurst=5); this one must still be
# retrying after more starts than that (NRestarts >= 5 is 6 starts).
# (It has been retrying in the background since boot, during the checks above.)
retrying() { load "$PLAIN" && [ "${P[NRestarts]}" -ge 5 ] && not_failed; }
until_ok 120 retrying
check retrying
report plain-missing-retries "$V" "restarts=${P[NRestarts]}" "state=${P[state]}" \
  "last-exit=${P[ExecMainStatus]}" "first-error=$(first_error "$PLAIN")"

# --- ... and once its interface exists, it captures, with no help ----------------
t=$(now)
make_pair "$PLAIN_IF" "$PLAIN_PEER" "$PLAIN_IP" "$PLAIN_SCANNER"
until_ok 120 capturing "$PLAIN" "$PLAIN_IF"
up_after=$(since "$t")
scan 1-60 "$PLAIN_IP"
until_ok 120 all_ports "$LOGS/records.jsonl" "$PLAIN_SCANNER" "$PLAIN_IP" 1 60
plain_ok() { capturing "$PLAIN" "$PLAIN_IF" && all_ports "$LOGS/records.jsonl" "$PLAIN_SCANNER" "$PLAIN_IP" 1 60; }
check plain_ok
report plain-recovers "$V" "state=${P[state]}" "seconds-after-up=$up_after" \
  "records=$(ports_seen "$LOGS/records.jsonl" "$PLAIN_SCANNER" "$PLAIN_IP" 1 60)/60"

# --- systemctl reload: same process, outputs reopened ---------------------------
mv "$OUT/records.jsonl" "$OUT/records.jsonl.before"
reload_rc=0
systemctl reload "$TEMPLATE" || reload_rc=$?
scan 1001-1020 "$SENSOR_IP"
until_ok 120 all_ports "$OUT/records.jsonl" "$SCANNER_IP" "$SENSOR_IP" 1001 1020
reload_ok() {
  load "$TEMPLATE" && [ $reload_rc -eq 0 ] && [ "${P[MainPID]}" = "$pid" ] &&
    all_ports "$OUT/records.jsonl" "$SCANNER_IP" "$SENSOR_IP" 1001 1020 &&
    [ "$(ports_seen "$OUT/records.jsonl.before" "$SCANNER_IP" "$SENSOR_IP" 1001 1020)" -eq 0 ] &&
    [ "$(mode "$OUT/records.jsonl")" = flowsentry:flowsentry:640 ]
}
check reload_ok
report reload "$V" "rc=$reload_rc" "pid=$pid->${P[MainPID]}" \
  "new-file-ports=$(ports_seen "$OUT/records.jsonl" "$SCANNER_IP" "$SENSOR_IP" 1001 1020)/20" \
  "old-file-ports=$(ports_seen "$OUT/records.jsonl.before" "$SCANNER_IP" "$SENSOR_IP" 1001 1020)" \
  "file=$(mode "$OUT/records.jsonl")"

# --- logrotate with the installed snippet (its postrotate reloads) --------------
rotate_rc=0
logrotate --force /etc/logrotate.d/flowsentry || rotate_rc=$?
scan 2001-2020 "$SENSOR_IP"
until_ok 120 all_ports "$OUT/records.jsonl" "$SCANNER_IP" "$SENSOR_IP" 2001 2020
rotate_ok() {
  load "$TEMPLATE" && [ $rotate_rc -eq 0 ] && [ -f "$OUT/records.jsonl.1" ] && [ -f "$OUT/alerts.jsonl.1" ] &&
    [ -f "$LOGS/records.jsonl.1" ] && [ "${P[MainPID]}" = "$pid" ] &&
    all_ports "$OUT/records.jsonl" "$SCANNER_IP" "$SENSOR_IP" 2001 2020 &&
    [ "$(ports_seen "$OUT/records.jsonl.1" "$SCANNER_IP" "$SENSOR_IP" 2001 2020)" -eq 0 ]
}
check rotate_ok
report logrotate "$V" "rc=$rotate_rc" "instance-files=$(cd "$OUT" && ls | tr '\n' ,)" \
  "plain-files=$(cd "$LOGS" && ls -p | grep -v / | tr '\n' ,)" \
  "new-file-ports=$(ports_seen "$OUT/records.jsonl" "$SCANNER_IP" "$SENSOR_IP" 2001 2020)/20"

# --- systemctl stop: clean exit, open sessions flushed --------------------------
# A UDP exchange still open (udp_timeout 60 s) when the stop comes; USR1 stats tell
# when flowsentry has read its packets.
base=$(packets_read "$TEMPLATE")
in_ns bash -c "for i in 1 2 3; do echo flowsentry-vm > /dev/udp/$SENSOR_IP/5999; done"
read_them() {
  systemctl kill -s USR1 --kill-whom=main "$TEMPLATE"
  sleep 0.5
  [ "$(packets_read "$TEMPLATE")" -ge $((${base:-0} + 3)) ]
}
until_ok 120 read_them
load "$TEMPLATE"
invocation=${P[InvocationID]}
t=$(now)
systemctl stop "$TEMPLATE"
stop_seconds=$(since "$t")
flushed() { grep -E '"DstPortNumber":5999([^0-9]|$)' "$OUT/records.jsonl" | grep -qF '"EndReason":"shutdown"'; }
final_stats() { journalctl -q -o cat -u "$TEMPLATE" "_SYSTEMD_INVOCATION_ID=$invocation" | grep '"type":"stats"' | grep -qF '"final":true'; }
until_ok 60 final_stats
load "$TEMPLATE"
stop_ok() { [ "${P[state]}" = inactive/dead ] && [ "${P[Result]}" = success ] && [ "${P[ExecMainStatus]}" = 0 ] && flushed && final_stats; }
check stop_ok
report stop "$V" "state=${P[state]}" "result=${P[Result]}" "exit=${P[ExecMainStatus]}" \
  "seconds=$stop_seconds" "udp-flushed=$(verdict flushed)" "final-stats=$(verdict final_stats)"

# --- The interface disappears: the unit stops; it comes back with it ----------
systemctl start "$TEMPLATE"
until_ok 120 capturing "$TEMPLATE" "$IFACE"
t=$(now)
ip link del "$IFACE"
until_ok 120 stopped_for_good "$TEMPLATE"
check stopped_for_good "$TEMPLATE"
report vanish-stops "$V" "state=${P[state]}" "result=${P[Result]}" \
  "last-exit=${P[ExecMainStatus]}" "seconds=$(since "$t")" \
  "device=$(systemctl show -P ActiveState 'sys-subsystem-net-devices-fs\x2dspan0.device')"
load "$TEMPLATE"
pid=${P[MainPID]}
t=$(now)
make_pair "$IFACE" "$PEER" "$SENSOR_IP" "$SCANNER_IP"
until_ok 120 capturing "$TEMPLATE" "$IFACE"
up_after=$(since "$t")
scan 3001-3020 "$SENSOR_IP"
until_ok 120 all_ports "$OUT/records.jsonl" "$SCANNER_IP" "$SENSOR_IP" 3001 3020
back_ok() { capturing "$TEMPLATE" "$IFACE" && all_ports "$OUT/records.jsonl" "$SCANNER_IP" "$SENSOR_IP" 3001 3020; }
check back_ok
report reappear-starts "$V" "state=${P[state]}" "seconds=$up_after" \
  "records-after=$(ports_seen "$OUT/records.jsonl" "$SCANNER_IP" "$SENSOR_IP" 3001 3020)/20"

# --- systemd-analyze security on the running system -----------------------------
low() { [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 1.5) }'; }
for item in "security-template $TEMPLATE" "security-boot-nic $BOOT_NIC" "security-plain $PLAIN"; do
  unit=${item#* }
  score=$(exposure "$unit")
  check low
  report "${item%% *}" "$V" "unit=$unit" "exposure=${score:-none}"
done

# --- Nothing failed ----------------------------------------------------------------
failed=$(systemctl list-units --failed --plain --no-legend | cut -d' ' -f1 | tr '\n' ,)
check test -z "$failed"
report no-failed-units "$V" "failed=${failed:-none}"
measure checks_end_seconds "$(cut -d' ' -f1 /proc/uptime)"
if [ "$failures" -gt 0 ]; then
  # Into the console log, which the test prints when a check failed.
  journalctl -q -o short-monotonic -u 'flowsentry*' --no-pager | tail -n 150 >/dev/console
fi
line FSVM-END
