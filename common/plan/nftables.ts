// Renders a node's nftables ruleset from the plan (seed 003 §6.5, §7.3):
// - input: default deny; the WireGuard underlay and the role's LAN services are the only
//   things accepted on the LAN; inside a plane peers are trusted; across planes only the
//   declared flows;
// - forward (hub): default deny between planes, same-plane hub-and-spoke transit, declared
//   flows; a named counter records what the default-deny dropped;
// - forward (others): nothing crosses planes through a spoke.
import type { PlaneName } from '../spec/schema';
import { PLANE_NAMES } from '../spec/schema';
import type { PolicyFlow, ServiceBinding } from './schema';

export const NFT_TABLE = 'kubedos';
export const LAN_INTERFACE = 'lan0';
export const COUNTER_INPUT_DENY = 'default_deny_input';
export const COUNTER_INTER_PLANE_DENY = 'default_deny_inter_plane';

export interface NftablesInput {
  cluster: string;
  node: string;
  role: string;
  hub: boolean;
  planes: { name: PlaneName; cidr: string; listenPort: number }[];
  flows: PolicyFlow[];
  services: ServiceBinding[];
}

export function renderNftables(input: NftablesInput): string {
  const cidrOf = new Map(input.planes.map((p) => [p.name, p.cidr]));
  const lines: string[] = [];
  const emit = (indent: number, text: string): void => {
    lines.push(`${'\t'.repeat(indent)}${text}`);
  };

  emit(0, '#!/usr/sbin/nft -f');
  emit(0, `# Kube'd'OS ${input.cluster}: ${input.node} (${input.role}${input.hub ? ', hub' : ''}). Rendered from the plan; do not edit.`);
  emit(0, `table inet ${NFT_TABLE} {}`);
  emit(0, `delete table inet ${NFT_TABLE}`);
  emit(0, `table inet ${NFT_TABLE} {`);
  emit(1, `counter ${COUNTER_INPUT_DENY} {}`);
  emit(1, `counter ${COUNTER_INTER_PLANE_DENY} {}`);
  emit(0, '');

  // ---- input
  emit(1, 'chain input {');
  emit(2, 'type filter hook input priority filter; policy drop;');
  emit(2, 'ct state established,related accept');
  emit(2, 'ct state invalid drop');
  emit(2, 'iifname "lo" accept');
  emit(2, 'ip protocol icmp icmp type { destination-unreachable, time-exceeded, parameter-problem } accept');
  const wgPorts = input.planes.map((p) => p.listenPort).sort((a, b) => a - b);
  emit(2, `iifname "${LAN_INTERFACE}" udp dport ${set(wgPorts.map(String))} accept comment "wireguard underlay"`);
  for (const svc of input.services.filter((s) => s.on === 'lan')) {
    for (const rule of portMatches(svc.ports)) emit(2, `iifname "${LAN_INTERFACE}" ${rule} accept comment "${svc.name}"`);
  }
  for (const p of input.planes) {
    emit(2, `iifname "${p.name}" ip saddr ${p.cidr} ip daddr ${p.cidr} accept comment "same-plane ${p.name}"`);
  }
  for (const f of input.flows) {
    const from = cidrOf.get(f.from);
    const to = cidrOf.get(f.to);
    if (!from || !to) continue;
    emit(2, `iifname ${set([`"${f.from}"`, `"${f.to}"`])} ip saddr ${from} ip daddr ${to} ${f.protocol} dport ${set(f.ports.map(nftPort))} accept comment "allow ${f.from}->${f.to}"`);
  }
  emit(2, `counter name ${COUNTER_INPUT_DENY} drop comment "default deny inbound"`);
  emit(1, '}');
  emit(0, '');

  // ---- forward
  emit(1, 'chain forward {');
  if (input.hub) {
    emit(2, 'type filter hook forward priority filter; policy drop;');
    emit(2, 'ct state established,related accept');
    emit(2, 'ct state invalid drop');
    for (const p of input.planes) emit(2, `iifname "${p.name}" oifname "${p.name}" ip saddr ${p.cidr} ip daddr ${p.cidr} accept comment "same-plane ${p.name} via hub"`);
    for (const f of input.flows) {
      const from = cidrOf.get(f.from);
      const to = cidrOf.get(f.to);
      if (!from || !to) continue;
      emit(2, `iifname "${f.from}" oifname "${f.to}" ip saddr ${from} ip daddr ${to} ${f.protocol} dport ${set(f.ports.map(nftPort))} accept comment "allow ${f.from}->${f.to}"`);
    }
    emit(2, `counter name ${COUNTER_INTER_PLANE_DENY} drop comment "default deny between planes"`);
  } else {
    emit(2, 'type filter hook forward priority filter; policy accept;');
    for (const p of PLANE_NAMES) {
      const others = PLANE_NAMES.filter((q) => q !== p).map((q) => `"${q}"`);
      emit(2, `iifname "${p}" oifname ${set(others)} counter name ${COUNTER_INTER_PLANE_DENY} drop comment "no inter-plane transit through a spoke"`);
    }
    emit(2, `iifname "${LAN_INTERFACE}" oifname ${set(PLANE_NAMES.map((q) => `"${q}"`))} counter name ${COUNTER_INTER_PLANE_DENY} drop comment "no LAN transit into planes"`);
  }
  emit(1, '}');
  emit(0, '');
  emit(1, 'chain output {');
  emit(2, 'type filter hook output priority filter; policy accept;');
  emit(1, '}');
  emit(0, '}');
  return `${lines.join('\n')}\n`;
}

function nftPort(p: string): string {
  return p.split('/')[0] ?? p;
}

/** Groups "6443/tcp", "2379-2380/tcp", "vrrp" into nft matches, one per protocol. */
function portMatches(ports: readonly string[]): string[] {
  const byProto = new Map<string, string[]>();
  const out: string[] = [];
  for (const p of ports) {
    if (p === 'vrrp') {
      out.push('ip protocol vrrp');
      continue;
    }
    const [range, proto] = p.split('/');
    if (!range || !proto) continue;
    byProto.set(proto, [...(byProto.get(proto) ?? []), range]);
  }
  for (const [proto, ranges] of [...byProto.entries()].sort(([a], [b]) => a.localeCompare(b))) out.unshift(`${proto} dport ${set(ranges)}`);
  return out;
}

function set(items: readonly string[]): string {
  return items.length === 1 ? (items[0] ?? '') : `{ ${items.join(', ')} }`;
}
