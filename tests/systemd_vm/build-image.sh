#!/usr/bin/env bash
# Builds the small Debian VM that tests/systemd_vm.rs boots to try the systemd units
# under a real systemd: a minimal root made by mmdebstrap from the Debian mirror and
# suite this machine's apt already uses, flowsentry installed into it by the project's
# own systemd/install.sh (run inside the root), the guest checks enabled as a boot-time
# oneshot unit, and an ext4 disk image of it all.
#
#   tests/systemd_vm/build-image.sh OUTDIR BINARY
#
# OUTDIR gets disk.img (raw ext4, the root), vmlinuz and initrd.img (from the root's
# /boot), and build.log. Needs root, mmdebstrap, mke2fs and the Debian mirror.
set -euo pipefail

out=${1:?usage: build-image.sh OUTDIR BINARY}
binary=${2:?usage: build-image.sh OUTDIR BINARY}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

[ "$(id -u)" -eq 0 ] || { echo "build-image.sh: needs root (mmdebstrap root mode, mke2fs -d)" >&2; exit 2; }
[ -x "$binary" ] || { echo "build-image.sh: no executable flowsentry at $binary" >&2; exit 2; }

# The mirror and suite apt already uses here (deb822 .sources, or one-line .list).
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}")
sources=
for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
  if [ -s "$f" ] && grep -q '^[^#]*debian' "$f"; then sources=$f; break; fi
done
[ -n "$sources" ] || { echo "build-image.sh: no Debian mirror in /etc/apt/sources.list*" >&2; exit 2; }

root=$out/root
rm -rf "$root" "$out/disk.img"
mkdir -p "$out"

# Only the kernel modules this VM loads are unpacked (virtio disk and NIC, veth, ext4
# and the fs/net/crypto/lib trees); drivers for real hardware and sound are skipped.
mods=()
for lib in /lib /usr/lib; do
  mods+=(--dpkgopt="path-exclude=$lib/modules/*/kernel/drivers/*"
    --dpkgopt="path-exclude=$lib/modules/*/kernel/sound/*")
  for keep in drivers/block/virtio_blk.ko drivers/virtio/* drivers/net/veth.ko drivers/net/virtio_net.ko \
    drivers/net/net_failover.ko drivers/char/hw_random/*; do
    mods+=(--dpkgopt="path-include=$lib/modules/*/kernel/$keep")
  done
done

# A small initramfs: only what mounts the virtio root disk (MODULES=list plus this hook).
hook=$(mktemp)
cat >"$hook" <<'HOOK'
#!/bin/sh
case $1 in prereqs) echo ""; exit 0;; esac
. /usr/share/initramfs-tools/hook-functions
for m in virtio_pci virtio_blk ext4; do force_load "$m"; done
HOOK
chmod 0755 "$hook"

# systemd, udev and dbus: the real init; libpcap0.8: flowsentry's one library;
# iproute2 (veth, netns), nmap (the scan) and logrotate (the rotation snippet) for the
# checks; linux-image-amd64 for /boot.
packages=systemd,systemd-sysv,dbus,udev,libpcap0.8,iproute2,nmap,logrotate,linux-image-amd64
mmdebstrap --variant=essential --include="$packages" \
  --aptopt='Acquire::Check-Valid-Until "false"' --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  "${mods[@]}" \
  --setup-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/etc/initramfs-tools/hooks"' \
  --setup-hook='echo MODULES=list > "$1/etc/initramfs-tools/conf.d/flowsentry-vm"' \
  --setup-hook="cp $hook \"\$1/etc/initramfs-tools/hooks/flowsentry-vm\"" \
  "$suite" "$root" "$sources"
rm -f "$hook"

# flowsentry, installed the way an admin would: the project's install.sh, run inside
# the root (creates the user with systemd-sysusers, sets the config's group).
stage=$root/tmp/flowsentry-install
mkdir -p "$stage"
cp -r "$repo/systemd" "$stage/"
cp "$repo/README.md" "$stage/"
cp "$binary" "$stage/flowsentry"
chroot "$root" bash /tmp/flowsentry-install/systemd/install.sh /tmp/flowsentry-install/flowsentry
rm -rf "$stage"

# The test's setup, as an admin would do it:
# - flowsentry.service on an interface that does not exist at boot (fsplain0);
# - flowsentry@eth0 (a NIC present at boot, down) and flowsentry@fs-span0 (missing at
#   boot, made by the checks) enabled, i.e. linked into their device units' wants.
sed -i 's/^interface = "eth0"$/interface = "fsplain0"/' "$root/etc/flowsentry/flowsentry.toml"
grep -q '^interface = "fsplain0"$' "$root/etc/flowsentry/flowsentry.toml"
# Stats only on SIGUSR1, so the USR1 check cannot be fooled by a periodic line.
sed -i "s/^#stats_interval = 60$/stats_interval = 0/" "$root/etc/flowsentry/flowsentry.toml"
grep -q "^stats_interval = 0$" "$root/etc/flowsentry/flowsentry.toml"
chroot "$root" systemctl enable flowsentry.service flowsentry@eth0.service \
  "flowsentry@$(chroot "$root" systemd-escape fs-span0).service"

# The checks: a oneshot unit started after boot, reporting on the second serial port.
install -D -m 0755 "$here/guest-checks.sh" "$root/usr/local/lib/flowsentry-vm/guest-checks.sh"
install -D -m 0644 "$here/flowsentry-vm-checks.service" "$root/etc/systemd/system/flowsentry-vm-checks.service"
chroot "$root" systemctl enable flowsentry-vm-checks.service
# Nothing else to do at boot (TCG is slow): no logins, timers, debug file systems or
# module loads for hardware the VM does not have.
chroot "$root" systemctl mask --quiet getty@tty1.service serial-getty@ttyS0.service \
  apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer fstrim.timer e2scrub_all.timer \
  e2scrub_reap.service logrotate.timer systemd-tmpfiles-clean.timer sys-kernel-debug.mount \
  sys-kernel-tracing.mount dev-hugepages.mount modprobe@drm.service modprobe@efi_pstore.service \
  modprobe@dm_mod.service modprobe@fuse.service modprobe@loop.service
echo flowsentry-vm >"$root/etc/hostname"

cp "$root"/boot/vmlinuz-* "$out/vmlinuz"
cp "$root"/boot/initrd.img-* "$out/initrd.img"
mke2fs -q -F -t ext4 -L flowsentry-vm -d "$root" "$out/disk.img" 2G
rm -rf "$root"
echo "built $out/disk.img"
