#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages flowsentry needs, only those missing.
#   tests/install-deps.sh build   # libpcap headers to build and run flowsentry
#   tests/install-deps.sh test    # plus the real tools the test suite drives
#   tests/install-deps.sh bench   # plus what benches/ compares with and generates with
set -euo pipefail
what=${1:-build}
pkgs=(libpcap-dev pkg-config)
if [ "$what" = test ] || [ "$what" = bench ]; then
  pkgs+=(tcpdump tshark nmap tcpreplay iproute2 curl python3 softflowd argus-client systemd logrotate procps iputils-ping util-linux time wireshark-common hyperfine)
  # tests/sentinel_deploy.rs: the analytic rule YAML
  pkgs+=(python3-yaml)
  # tests/asim_conformance.rs: IANA protocol keywords from /etc/protocols
  pkgs+=(netbase)
  # tests/systemd_vm.rs: builds a Debian root and boots it under qemu (TCG)
  pkgs+=(qemu-system-x86 mmdebstrap e2fsprogs)
  # tests/replay_inputs.rs: compressed captures made by the real tools
  pkgs+=(gzip zstd)
fi
if [ "$what" = bench ]; then
  pkgs+=(argus-server netsniff-ng linux-perf valgrind)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
