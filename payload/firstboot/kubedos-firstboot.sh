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
    # Not `cat … | grep -q`: under pipefail, grep quitting at the first match can SIGPIPE cat
    # and fail the pipeline (seen: a master that did not recognise its own MAC under load).
    if [ -n "$(nic_with_mac "$mac")" ]; then
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

nic_with_mac() { # MAC -> interface name (empty when none)
  local d
  for d in /sys/class/net/*; do
    if [ "$(cat "$d/address" 2>/dev/null)" = "$1" ]; then
      basename "$d"
      return 0
    fi
  done
  return 0
}

step_lan() {
  local mac addr prefix gw dev dns
  mac=$(json_get "$NODE_JSON" node.lan.mac | tr 'A-F' 'a-f')
  addr=$(json_get "$NODE_JSON" node.lan.address)
  prefix=$(json_get "$NODE_JSON" node.lan.prefix)
  gw=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["node"]["lan"].get("gateway",""))' "$NODE_JSON")
  dns=$(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["node"]["lan"].get("dns",[])))' "$NODE_JSON")
  # The NIC with the planned MAC is lan0 (the firewall's LAN interface name) on every boot.
  install -d /etc/systemd/network
  printf '[Match]\nMACAddress=%s\n\n[Link]\nName=lan0\n' "$mac" > /etc/systemd/network/10-kubedos-lan0.link
  # Persistent configuration for whichever network stack the system uses: systemd-networkd
  # (golden images) or ifupdown (installed systems).
  if systemctl is-enabled systemd-networkd.service >/dev/null 2>&1; then
    {
      printf '[Match]\nName=lan0\n\n[Network]\nAddress=%s/%s\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n' "$addr" "$prefix"
      if [ -n "$gw" ]; then printf 'Gateway=%s\n' "$gw"; fi
    } > /etc/systemd/network/10-kubedos-lan0.network
    # The image's DHCP for any NIC (until this point) goes: on later boots it matched the NIC under
    # its kernel name (en*) and networkd brought it up before udev applied the .link above, which
    # then cannot rename an interface that is up ("already up, cannot rename to 'lan0'", seen on
    # a VM booting a slot again: no LAN address, no planes). With no .network for that name the
    # NIC stays down until it is lan0.
    rm -f /etc/systemd/network/90-kubedos-dhcp.network
  else
    install -d /etc/network/interfaces.d
    {
      echo "auto lan0"
      echo "iface lan0 inet static"
      echo "  address $addr/$prefix"
      if [ -n "$gw" ]; then echo "  gateway $gw"; fi
    } > /etc/network/interfaces.d/kubedos-lan0
  fi
  # ... and now, so that the planes, enrollment and the firewall work in this very boot
  # (no reboot between first boot and the backplanes).
  dev=$(nic_with_mac "$mac")
  [ -n "$dev" ] || fail "no NIC has the planned LAN MAC $mac"
  if [ "$dev" != lan0 ]; then
    ip link set dev "$dev" down
    ip link set dev "$dev" name lan0
  fi
  ip link set dev lan0 up
  ip -4 addr replace "$addr/$prefix" dev lan0
  if [ -n "$gw" ]; then ip -4 route replace default via "$gw" dev lan0; fi
  networkctl reload >/dev/null 2>&1 || true
  # Resolver: the plan's servers, or none (lookups then fail at once instead of timing out
  # against a server the cluster cannot reach).
  {
    echo "# Managed by Kube'd'OS first boot (lan.dns of the plan)"
    for s in $dns; do echo "nameserver $s"; done
    echo "options timeout:1 attempts:1"
  } > /etc/resolv.conf
  say "lan0 ($mac) $addr/$prefix${gw:+ via $gw}"
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
