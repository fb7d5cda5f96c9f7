// diffPlan(previous, next): per node, create / update / replace (and why) / keep / destroy.
// "Replace, don't repair": a change to a node's identity or VM hardware means a new VM from the
// artifact; a VM setting that changes in place (memory, cores: common/plan/in-place.ts, the rule
// provisioning uses) is an update; configuration-only changes keep the VM and are re-converged.
import { canonicalJson } from '../canonical';
import { changesInPlace } from './in-place';
import type { NodeChange, Plan, PlanDiff, PlanNode } from './schema';

const REPLACE_FIELDS: { label: string; get: (n: PlanNode) => unknown }[] = [
  { label: 'role', get: (n) => n.role },
  { label: 'vmid', get: (n) => n.vmid },
  { label: 'failure domain', get: (n) => n.domain },
  { label: 'LAN address', get: (n) => n.lan.address },
  { label: 'MAC', get: (n) => n.vm.nics.map((x) => x.mac) },
  { label: 'disks', get: (n) => n.vm.disks },
  { label: 'NICs', get: (n) => n.vm.nics.map(({ bridge, vlan, model }) => ({ bridge, vlan, model })) },
  { label: 'firmware/TPM', get: (n) => [n.vm.machine, n.vm.bios, n.vm.efidisk, n.vm.tpm] },
  { label: 'plane addresses', get: (n) => [n.planes.wg1.address, n.planes.wg2.address, n.planes.wg3.address] },
];

/** VM settings by their config key: in place or re-create is changesInPlace(key) (in-place.ts), as provisioning decides. */
const VM_SETTINGS: { label: string; key: string; get: (n: PlanNode) => unknown }[] = [
  { label: 'cores', key: 'cores', get: (n) => n.vm.cpu.cores },
  { label: 'cpu type', key: 'cpu', get: (n) => n.vm.cpu.type },
  { label: 'sockets', key: 'sockets', get: (n) => n.vm.cpu.sockets },
  { label: 'memory', key: 'memory', get: (n) => n.vm.memoryMiB },
];

const RECONVERGE_FIELDS: { label: string; get: (n: PlanNode) => unknown }[] = [
  { label: 'firewall rules', get: (n) => n.nftables },
  { label: 'WireGuard peers', get: (n) => [n.planes.wg1.peers, n.planes.wg2.peers, n.planes.wg3.peers] },
  { label: 'services', get: (n) => n.services },
  { label: 'tags', get: (n) => n.vm.tags },
];

function describeChange(label: string, a: unknown, b: unknown): string {
  const fa = short(a);
  const fb = short(b);
  return fa.length + fb.length < 80 ? `${label} ${fa} -> ${fb}` : `${label} changed`;
}

function short(v: unknown): string {
  return typeof v === 'string' || typeof v === 'number' ? String(v) : canonicalJson(v);
}

export function diffPlan(previous: Plan, next: Plan): PlanDiff {
  const before = new Map(previous.nodes.map((n) => [n.name, n]));
  const after = new Map(next.nodes.map((n) => [n.name, n]));
  const changes: NodeChange[] = [];
  for (const n of next.nodes) {
    const old = before.get(n.name);
    if (!old) {
      changes.push({ node: n.name, action: 'create', reasons: ['new in the spec'] });
      continue;
    }
    const changed = <T extends { get: (n: PlanNode) => unknown }>(fields: readonly T[]): T[] => fields.filter((f) => canonicalJson(f.get(old)) !== canonicalJson(f.get(n)));
    const settings = changed(VM_SETTINGS);
    const inPlace = settings.filter((f) => changesInPlace(f.key)).map((f) => describeChange(f.label, f.get(old), f.get(n)));
    const replace = [...changed(REPLACE_FIELDS), ...settings.filter((f) => !changesInPlace(f.key))].map((f) => describeChange(f.label, f.get(old), f.get(n)));
    if (previous.cluster.artifactVersion !== next.cluster.artifactVersion) replace.push(`artifact ${previous.cluster.artifactVersion} -> ${next.cluster.artifactVersion}`);
    if (replace.length) {
      changes.push({ node: n.name, action: 'replace', reasons: [...replace, ...inPlace] });
      continue;
    }
    const reconverge = changed(RECONVERGE_FIELDS).map((f) => `re-converge: ${f.label} changed`);
    if (inPlace.length) {
      changes.push({ node: n.name, action: 'update', reasons: [...inPlace.map((r) => `${r} (in place, no re-create)`), ...reconverge] });
      continue;
    }
    changes.push({ node: n.name, action: 'keep', reasons: reconverge });
  }
  for (const n of previous.nodes) {
    if (!after.has(n.name)) changes.push({ node: n.name, action: 'destroy', reasons: ['no longer in the spec'] });
  }
  const cluster: string[] = [];
  if (previous.lan.apiVip !== next.lan.apiVip) cluster.push(`API VIP ${previous.lan.apiVip} -> ${next.lan.apiVip}`);
  if (previous.lan.cidr !== next.lan.cidr) cluster.push(`LAN ${previous.lan.cidr} -> ${next.lan.cidr}`);
  if (previous.lan.active !== next.lan.active) cluster.push(`active LAN half ${previous.lan.active} -> ${next.lan.active}`);
  for (const p of next.planes) {
    const q = previous.planes.find((x) => x.name === p.name);
    if (q && q.cidr !== p.cidr) cluster.push(`${p.name} ${q.cidr} -> ${p.cidr}`);
    if (q && q.listenPort !== p.listenPort) cluster.push(`${p.name} port ${q.listenPort} -> ${p.listenPort}`);
  }
  if (canonicalJson(previous.policy) !== canonicalJson(next.policy)) cluster.push('inter-plane policy changed');
  const count = (a: NodeChange['action']): number => changes.filter((c) => c.action === a).length;
  return { changes, summary: { create: count('create'), update: count('update'), replace: count('replace'), keep: count('keep'), destroy: count('destroy') }, cluster };
}
