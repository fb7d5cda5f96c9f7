// Values derived from a spec that both the invariants and the plan need, computed one way.
import { cidrSize, parseCidr, parseIpv4 } from '../net/ipv4';
import type { Cidr } from '../net/ipv4';
import type { ClusterSpec, NodeSpec, PlaneName } from './schema';
import { PLANE_NAMES } from './schema';

export const DEFAULT_LISTEN_PORTS: Record<PlaneName, number> = { wg1: 51821, wg2: 51822, wg3: 51823 };

/** The node's VMID: explicit, or vmidRange.start + its position in the inventory. */
export function nodeVmid(spec: ClusterSpec, index: number): number {
  const node = spec.spec.nodes.inventory[index];
  return node?.vmid ?? spec.spec.nodes.vmidRange.start + index;
}

export function planeListenPort(spec: ClusterSpec, plane: PlaneName): number {
  return spec.spec.networking.planes[plane].listenPort ?? DEFAULT_LISTEN_PORTS[plane];
}

export function planeCidr(spec: ClusterSpec, plane: PlaneName): Cidr {
  return mustCidr(spec.spec.networking.planes[plane].cidr);
}

/** Host offset of a node inside each plane: the hub (master) is .1, others follow their VMID. */
export function planeHostOffset(spec: ClusterSpec, node: NodeSpec, vmid: number): number {
  if (node.role === 'master') return 1;
  return 2 + (vmid - spec.spec.nodes.vmidRange.start);
}

export function lanCidr(spec: ClusterSpec): Cidr {
  return mustCidr(spec.spec.networking.lan.cidr);
}

/** Blue is the lower half of the LAN, green the upper half. */
export function lanHalves(spec: ClusterSpec): { blue: Cidr; green: Cidr } {
  const lan = lanCidr(spec);
  const half = cidrSize(lan) / 2;
  return { blue: { network: lan.network, prefix: lan.prefix + 1 }, green: { network: (lan.network + half) >>> 0, prefix: lan.prefix + 1 } };
}

export function nodeColor(spec: ClusterSpec, node: NodeSpec): 'blue' | 'green' {
  return node.color ?? spec.spec.networking.lan.active;
}

export function lanHostOffset(spec: ClusterSpec, vmid: number): number {
  return spec.spec.networking.lan.hostOffset + (vmid - spec.spec.nodes.vmidRange.start);
}

export function mustCidr(text: string): Cidr {
  const c = parseCidr(text);
  if (!c) throw new Error(`invalid CIDR ${text} (the schema should have rejected it)`);
  return c;
}

export function mustIpv4(text: string): number {
  const v = parseIpv4(text);
  if (v === undefined) throw new Error(`invalid IPv4 ${text} (the schema should have rejected it)`);
  return v;
}

export function isPlaneName(name: string): name is PlaneName {
  return (PLANE_NAMES as readonly string[]).includes(name);
}

export interface PortSpan {
  from: number;
  to: number;
  protocol: 'tcp' | 'udp';
}

/** Parses "6443/tcp" or "2379-2380/tcp"; undefined when malformed or out of range. */
export function parsePortRange(text: string): PortSpan | undefined {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?\/(tcp|udp)$/.exec(text);
  if (!m) return undefined;
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  if (from < 1 || to > 65535 || from > to) return undefined;
  return { from, to, protocol: m[3] as 'tcp' | 'udp' };
}
