#!/bin/sh
# Installs the Kube'd'OS payload into a root filesystem and enables first boot.
# Used by the installer's late_command (ROOT=/target, SRC=/kubedos-payload) and by the golden
# image builder on the foundry host (ROOT=<rootfs>, SRC=<staged payload>). POSIX sh: the
# installer environment has busybox only.
set -eu
ROOT=${1:?usage: install-payload.sh ROOT SRC}
SRC=${2:?usage: install-payload.sh ROOT SRC}
LIB="$ROOT/usr/lib/kubedos"
OPS_USER=$(cat "$SRC/ops-user")

mkdir -p "$LIB/firstboot" "$LIB/nodes" "$LIB/backplane" "$ROOT/etc/kubedos" "$ROOT/var/lib/kubedos" "$ROOT/etc/systemd/system/multi-user.target.wants"
cp "$SRC"/firstboot/* "$LIB/firstboot/"
cp "$SRC"/nodes/*.json "$LIB/nodes/"
if [ -d "$SRC/backplane" ]; then cp -R "$SRC"/backplane/. "$LIB/backplane/"; fi
# The hub's converge content: payload/ansible and the plan's inventory.
if [ -d "$SRC/ansible" ]; then
  mkdir -p "$LIB/ansible" "$ROOT/etc/kubedos/ansible"
  cp -R "$SRC"/ansible/. "$LIB/ansible/"
  cp "$SRC/ansible-inventory.yml" "$ROOT/etc/kubedos/ansible/inventory.yml"
fi
chmod 0755 "$LIB"/firstboot/*.sh
for f in "$LIB"/backplane/kubedos-*; do
  case "$f" in *.service) continue ;; esac
  [ -f "$f" ] && chmod 0755 "$f"
done
cp "$SRC/payload.json" "$ROOT/etc/kubedos/payload.json"
cp "$SRC/kubedos-archive-keyring.gpg" "$ROOT/usr/share/keyrings/kubedos-archive-keyring.gpg"

for unit in kubedos-firstboot.service kubedos-backplane.service; do
  cp "$SRC/firstboot/$unit" "$ROOT/etc/systemd/system/$unit"
  ln -sf "../$unit" "$ROOT/etc/systemd/system/multi-user.target.wants/$unit"
done
# The master only: the health watcher (its configuration is in the hub's payload alone).
if [ -f "$SRC/health-watch.json" ]; then
  cp "$SRC/health-watch.json" "$ROOT/etc/kubedos/health-watch.json"
  chmod 0644 "$ROOT/etc/kubedos/health-watch.json"
  cp "$SRC/backplane/kubedos-health-watch.service" "$ROOT/etc/systemd/system/kubedos-health-watch.service"
  ln -sf ../kubedos-health-watch.service "$ROOT/etc/systemd/system/multi-user.target.wants/kubedos-health-watch.service"
fi

# The operator: key-only, no password, sudo without a password (there is none to give).
if ! grep -q "^$OPS_USER:" "$ROOT/etc/passwd"; then
  chroot "$ROOT" useradd --create-home --shell /bin/bash "$OPS_USER"
fi
chroot "$ROOT" passwd --lock "$OPS_USER" >/dev/null
chroot "$ROOT" passwd --lock root >/dev/null
home=$(chroot "$ROOT" getent passwd "$OPS_USER" | cut -d: -f6)
mkdir -p "$ROOT$home/.ssh"
cp "$SRC/ops.authorized_keys" "$ROOT$home/.ssh/authorized_keys"
chmod 0700 "$ROOT$home/.ssh"
chmod 0600 "$ROOT$home/.ssh/authorized_keys"
chroot "$ROOT" chown -R "$OPS_USER:$OPS_USER" "$home/.ssh"
mkdir -p "$ROOT/etc/sudoers.d"
printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$OPS_USER" > "$ROOT/etc/sudoers.d/kubedos-ops"
chmod 0440 "$ROOT/etc/sudoers.d/kubedos-ops"
echo "kubedos: payload installed into $ROOT"
