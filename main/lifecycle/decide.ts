// The pure half of the cluster lifecycle (stop / start / destroy): in which order the plan's
// VMs go down and come up, and which VMs of an inventory a destroy may touch. Ownership is the
// one rule (common/plan/ownership.ts owns()): a VM inside the cluster's VMID range without the
// cluster's tags is someone else's and is never touched, whatever its name.
import { inVmidRange, ownershipOf, owns, ownsImageFile } from '../../common/plan/ownership';
import type { Plan, PlanNode } from '../../common/plan/schema';
import type { Inventory, InventoryVm, StoredImage } from '../substrate/driver';

/** Start order: the hub first (the others enroll and handshake with it), then plan order. */
export function startOrder(plan: Pick<Plan, 'nodes'>): PlanNode[] {
  return [...plan.nodes.filter((n) => n.hub), ...plan.nodes.filter((n) => !n.hub)];
}

/** Stop order: the reverse of the start order, so the hub goes down last. */
export function stopOrder(plan: Pick<Plan, 'nodes'>): PlanNode[] {
  return startOrder(plan).reverse();
}

export interface DestroyTarget {
  vmid: number;
  name: string;
  status: InventoryVm['status'];
  /** A node of the current plan, or an owned VM the plan no longer names (left from an earlier plan). */
  inPlan: boolean;
}

export interface ForeignVm {
  vmid: number;
  name: string;
  reason: string;
}

export interface DestroyDecision {
  /** Owned VMs, in stop order (plan nodes reversed, hub last; VMs the plan no longer names first). */
  destroy: DestroyTarget[];
  /** VMs inside the VMID range that are not ours: never touched, reported. */
  foreign: ForeignVm[];
  /** Plan nodes that have no VM on the target (already gone, or never created). */
  absent: string[];
}

/** Pure: what a destroy of this plan's cluster removes from this inventory, and what it leaves alone. */
export function decideDestroy(plan: Plan, inventory: Pick<Inventory, 'vms'>): DestroyDecision {
  const own = ownershipOf(plan);
  const byVmid = new Map(inventory.vms.map((vm) => [vm.vmid, vm]));
  const planned = new Set(plan.nodes.map((n) => n.vmid));
  const foreign: ForeignVm[] = [];
  const extra: DestroyTarget[] = [];
  for (const vm of inventory.vms) {
    if (!inVmidRange(vm.vmid, own)) continue;
    if (!owns(vm, own)) {
      const missing = own.tags.filter((t) => !vm.tags.includes(t));
      foreign.push({ vmid: vm.vmid, name: vm.name, reason: `inside ${plan.cluster.name}'s VMID range but without the tag${missing.length === 1 ? '' : 's'} ${missing.join(', ')}: not this cluster's` });
    } else if (!planned.has(vm.vmid)) {
      extra.push({ vmid: vm.vmid, name: vm.name, status: vm.status, inPlan: false });
    }
  }
  const destroy: DestroyTarget[] = [...extra.sort((a, b) => b.vmid - a.vmid)];
  const absent: string[] = [];
  for (const n of stopOrder(plan)) {
    const vm = byVmid.get(n.vmid);
    if (!vm) absent.push(n.name);
    else if (owns(vm, own)) destroy.push({ vmid: vm.vmid, name: vm.name, status: vm.status, inPlan: true });
  }
  foreign.sort((a, b) => a.vmid - b.vmid);
  return { destroy, foreign, absent };
}

export interface ImageDecision {
  /** The cluster's images (and interrupted uploads) that no VM outlives the destroy to use. */
  remove: StoredImage[];
  /** The cluster's images a VM that stays still uses ("3105 stranger"): left on the host. */
  keep: { volid: string; usedBy: string[] }[];
}

/**
 * Pure: which of the images on the host a destroy of `cluster` removes. Ours by name (the one
 * image rule, ownsImageFile); kept when a VM that is not being destroyed names it in its config.
 */
export function decideImages(cluster: string, images: readonly StoredImage[], destroyed: ReadonlySet<number>): ImageDecision {
  const remove: StoredImage[] = [];
  const keep: ImageDecision['keep'] = [];
  for (const img of images) {
    if (!ownsImageFile(img.volid.slice(img.volid.lastIndexOf('/') + 1), cluster)) continue;
    const others = img.usedBy.filter((u) => !destroyed.has(u.vmid));
    if (others.length) keep.push({ volid: img.volid, usedBy: others.map((u) => `${u.vmid} ${u.name}`) });
    else remove.push(img);
  }
  return { remove, keep };
}

/** "3 VMs (w-1 3002, cp-1 3001, master 3000)": a count and the first few, never a whole list. */
export function countAndFirst(items: readonly string[], first = 5): string {
  if (!items.length) return 'none';
  return `${items.length}: ${items.slice(0, first).join(', ')}${items.length > first ? `, … (${items.length - first} more)` : ''}`;
}
