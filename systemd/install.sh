#!/usr/bin/env bash
# Installs flowsentry as a systemd service: binary, unit, system user, example
# config (never overwriting an existing one), logrotate snippet and the project README.
#
#   systemd/install.sh [BINARY]            # default BINARY: target/release/flowsentry
#   DESTDIR=/tmp/root systemd/install.sh   # stage into a directory tree only
#
# With DESTDIR set (or when systemd is not running) files are only copied: no user is
# created and systemctl is not called, so it works in a chroot or a packaging step.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
binary=${1:-$repo/target/release/flowsentry}
dest=${DESTDIR:-}

if [ ! -x "$binary" ]; then
  echo "install.sh: no executable flowsentry at $binary" >&2
  echo "  build it with 'cargo build --release' or pass its path as the first argument" >&2
  exit 2
fi
if [ -z "$dest" ] && [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: installing into / needs root (or set DESTDIR=/some/dir to stage)" >&2
  exit 2
fi

install -D -m 0755 "$binary" "$dest/usr/local/bin/flowsentry"
install -D -m 0644 "$here/flowsentry.service" "$dest/etc/systemd/system/flowsentry.service"
install -D -m 0644 "$here/flowsentry.sysusers" "$dest/etc/sysusers.d/flowsentry.conf"
install -D -m 0644 "$here/flowsentry.logrotate" "$dest/etc/logrotate.d/flowsentry"
install -D -m 0644 "$here/../README.md" "$dest/usr/local/share/doc/flowsentry/README.md"

# Config: readable by the service's group, writable by root only.
install -d -m 0750 "$dest/etc/flowsentry"
config="$dest/etc/flowsentry/flowsentry.toml"
if [ -e "$config" ]; then
  install -m 0640 "$here/flowsentry.toml" "$config.example"
  echo "kept the existing $config; the current example is at $config.example"
else
  install -m 0640 "$here/flowsentry.toml" "$config"
  echo "installed the example config $config"
fi

if [ -n "$dest" ]; then
  echo "staged into $dest (no user created, systemd not called)"
else
  if command -v systemd-sysusers >/dev/null 2>&1; then
    systemd-sysusers /etc/sysusers.d/flowsentry.conf
  elif ! id -u flowsentry >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir / --shell /usr/sbin/nologin flowsentry
  fi
  chgrp flowsentry /etc/flowsentry "$config"
  [ -e "$config.example" ] && chgrp flowsentry "$config.example"
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
  else
    echo "systemd is not running here: run 'systemctl daemon-reload' on the target system"
  fi
fi

cat <<NEXT

Next steps:
  1. Set the capture interface (capture.interface) and home_net in /etc/flowsentry/flowsentry.toml
  2. systemctl enable --now flowsentry
  3. journalctl -u flowsentry -f          # log lines and stats
     tail -f /var/log/flowsentry/alerts.jsonl
NEXT
