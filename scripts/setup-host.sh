#!/usr/bin/env bash
# Installs the Debian 12 packages the foundry, its lab tests and its browser tests use.
# Idempotent; run as root (or through sudo). `kubedos doctor` says what each one is for.
set -euo pipefail

packages=(
  # browser e2e (playwright-core drives Debian's chromium)
  chromium fonts-dejavu-core
  # hypervisor, firmware, TPM
  qemu-system-x86 qemu-utils ovmf swtpm swtpm-tools
  # backplanes and firewall
  wireguard-tools wireguard-go nftables iproute2 iputils-ping netcat-openbsd socat
  # installer media and images
  xorriso isolinux syslinux-common grub-efi-amd64-bin grub-efi-amd64-signed shim-signed
  mtools dosfstools e2fsprogs fdisk cpio debootstrap debian-installer-12-netboot-amd64
  # darksite repository
  apt-utils gnupg
  # declared upstream apt repositories that publish only Packages.xz
  xz-utils
  # declared upstream images: a registry on loopback for the sources lab
  docker-registry
  # nodes: sshd, converge, etcd
  openssh-server openssh-client ansible-core ansible-lint etcd-server etcd-client
  # converge roles checked in the namespace lab (configs validated and daemons run for real)
  haproxy keepalived prometheus prometheus-node-exporter python3-apt psmisc
  # payload checks and secrets
  shellcheck age python3
  # tiny substrate test guest (initramfs userland + guest agent)
  busybox-static qemu-guest-agent
)

if [ "$(id -u)" -ne 0 ]; then
  exec sudo -E "$0" "$@"
fi

export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-host: all ${#packages[@]} packages present"
  exit 0
fi
echo "setup-host: installing ${missing[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup-host: done"
