// What local QEMU does not carry out of a spec, said up front instead of dropped silently: on
// qemu-local every disk is a qcow2 file in the state directory whatever its pool, every bridge is
// one flat, untagged L2 segment (VLAN tags and trunks are not applied), and the Proxmox-only
// settings have nothing to act on. Pure; `kubedos provision`/`deploy` print it for qemu-local.
import type { ClusterSpec } from '../spec/schema';

const list = (xs: readonly (string | number)[]): string => [...new Set(xs)].map(String).join(', ');

/** One sentence per spec setting that has no effect on qemu-local (empty: everything applies). */
export function qemuLocalIgnores(spec: ClusterSpec): string[] {
  const out: string[] = [];
  const nodes = spec.spec.nodes.inventory;
  const vlans = nodes.flatMap((n) => n.nics.flatMap((x) => (x.vlan === undefined ? [] : [x.vlan])));
  const sub = spec.spec.substrate;
  const bridges = sub.type === 'proxmox' ? (sub.proxmox?.bridges ?? []) : (sub.qemu?.bridges ?? []);
  const trunks = bridges.flatMap((b) => b.trunks);
  if (vlans.length) out.push(`VLAN tags on NICs (${list(vlans.sort((a, b) => a - b))}) are not applied: each bridge is one flat, untagged L2 segment on this machine`);
  else if (trunks.length || bridges.some((b) => b.vlanAware)) out.push(`bridge VLAN settings (vlanAware, trunks ${list(trunks)}) are not applied: each bridge is one flat L2 segment`);
  if (sub.type === 'proxmox' && sub.proxmox) {
    const pools = [...nodes.flatMap((n) => n.disks.map((d) => d.pool)), ...sub.proxmox.storagePools.map((p) => p.name)];
    out.push(`storage pools (${list(pools)}) are not used: every disk is a thin qcow2 file in the qemu-local state directory`);
    const proxmoxOnly = [`clusterName ${sub.proxmox.clusterName}`, ...(sub.proxmox.node ? [`node ${sub.proxmox.node}`] : []), `isoStorage ${sub.proxmox.isoStorage}`];
    out.push(`the Proxmox settings (${proxmoxOnly.join(', ')}) have no effect on qemu-local`);
  }
  return out;
}
