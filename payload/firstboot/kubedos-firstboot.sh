#!/bin/bash
# Kube'd'OS first boot: turns a role image into one planned node. Picks its node.json by the
# MAC address of a NIC (or kubedos.node=NAME on the kernel command line), then sets the
# hostname, sysctls, sshd baseline, the planned nftables ruleset and the LAN naming, enables
# the guest agent and writes the completion marker. Safe to rerun: every step overwrites.
set -euo pipefail

LIB=/usr/lib/kubedos
STATE=/var/lib/kubedos
MARKER=$STATE/firstboot-complete
NODE_JSON=/etc/kubedos/node.json
SERIAL=/dev/ttyS0

say() {
  echo "kubedos-firstboot: $*"
  if [ -w "$SERIAL" ]; then echo "kubedos-firstboot: $*" > "$SERIAL" || true; fi
}

fail() {
  say "FAILED: $*"
  exit 1
}

json_get() { # FILE DOTTED.PATH
  python3 - "$1" "$2" <<'PY'
import json, sys
value = json.load(open(sys.argv[1]))
for part in sys.argv[2].split('.'):
    value = value[part]
print(value if not isinstance(value, (dict, list)) else json.dumps(value))
PY
}

select_node() {
  local wanted f mac
  wanted=$(sed -n 's/.*kubedos\.node=\([a-z0-9-]*\).*/\1/p' /proc/cmdline)
  for f in "$LIB"/nodes/*.json; do
    [ -e "$f" ] || continue
    if [ -n "$wanted" ]; then
      [ "$(json_get "$f" node.name)" = "$wanted" ] && { echo "$f"; return 0; }
      continue
    fi
    mac=$(json_get "$f" node.lan.mac | tr 'A-F' 'a-f')
    if cat /sys/class/net/*/address 2>/dev/null | grep -qx "$mac"; then
      echo "$f"
      return 0
    fi
  done
  return 1
}

step_identity() {
  local src
  src=$(select_node) || fail "no node of this role matches a NIC MAC ($(cat /sys/class/net/*/address | tr '\n' ' ')) or kubedos.node=; nodes: $(ls "$LIB"/nodes)"
  install -D -m 0644 "$src" "$NODE_JSON"
  NODE=$(json_get "$NODE_JSON" node.name)
  HOST=$(json_get "$NODE_JSON" node.hostname)
  FQDN=$(json_get "$NODE_JSON" node.fqdn)
  LAN_ADDR=$(json_get "$NODE_JSON" node.lan.address)
  echo "$HOST" > /etc/hostname
  hostname "$HOST"
  {
    echo "127.0.0.1 localhost"
    echo "$LAN_ADDR $FQDN $HOST"
    echo "::1 localhost ip6-localhost ip6-loopback"
  } > /etc/hosts
  say "node $NODE ($FQDN) from $(basename "$src")"
}

step_sysctl() {
  install -m 0644 "$LIB/firstboot/90-kubedos-sysctl.conf" /etc/sysctl.d/90-kubedos.conf
  sysctl -q -p /etc/sysctl.d/90-kubedos.conf || say "some sysctls are not supported by this kernel (continuing)"
}

step_sshd() {
  install -d /etc/ssh/sshd_config.d
  install -m 0644 "$LIB/firstboot/90-kubedos-sshd.conf" /etc/ssh/sshd_config.d/90-kubedos.conf
  local users
  users=$(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["sshAllowUsers"]))' /etc/kubedos/payload.json)
  echo "AllowUsers $users" > /etc/ssh/sshd_config.d/91-kubedos-users.conf
  # Golden images ship without host keys (clones must not share them): make this node's own.
  ssh-keygen -A >/dev/null
  install -d -m 0755 /run/sshd
  if command -v sshd >/dev/null; then sshd -t || fail "sshd rejects the hardened configuration"; fi
}

step_lan() {
  local mac
  mac=$(json_get "$NODE_JSON" node.lan.mac)
  install -d /etc/systemd/network
  printf '[Match]\nMACAddress=%s\n\n[Link]\nName=lan0\n' "$mac" > /etc/systemd/network/10-kubedos-lan0.link
  # The planned static LAN address takes over from the installer's DHCP at the next boot,
  # once udev has named the NIC lan0 (the firewall's LAN interface name).
  local addr prefix gw
  addr=$(json_get "$NODE_JSON" node.lan.address)
  prefix=$(json_get "$NODE_JSON" node.lan.prefix)
  gw=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["node"]["lan"].get("gateway",""))' "$NODE_JSON")
  install -d /etc/network/interfaces.d
  {
    echo "auto lan0"
    echo "iface lan0 inet static"
    echo "  address $addr/$prefix"
    if [ -n "$gw" ]; then echo "  gateway $gw"; fi
  } > /etc/network/interfaces.d/kubedos-lan0
}

step_nftables() {
  json_get "$NODE_JSON" node.nftables > /etc/nftables.conf.kubedos
  nft -c -f /etc/nftables.conf.kubedos || fail "the planned nftables ruleset does not load"
  mv /etc/nftables.conf.kubedos /etc/nftables.conf
  nft -f /etc/nftables.conf
  systemctl enable nftables.service >/dev/null 2>&1 || true
  say "nftables: planned ruleset loaded ($(nft list tables | tr '\n' ' '))"
}

step_agent() {
  systemctl enable qemu-guest-agent.service >/dev/null 2>&1 || true
  systemctl start qemu-guest-agent.service || say "qemu-guest-agent did not start (no virtio-serial port?)"
}

main() {
  install -d -m 0755 "$STATE"
  local started
  started=$(date +%s)
  step_identity
  step_sysctl
  step_sshd
  step_lan
  step_nftables
  step_agent
  printf '{"node":"%s","startedAt":%s,"completedAt":%s,"steps":["identity","sysctl","sshd","lan","nftables","guest-agent"]}\n' \
    "$NODE" "$started" "$(date +%s)" > "$MARKER.tmp"
  mv "$MARKER.tmp" "$MARKER"
  say "KUBEDOS-FIRSTBOOT-COMPLETE node=$NODE"
}

main "$@"
