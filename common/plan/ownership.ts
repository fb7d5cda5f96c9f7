// Which VMs are this cluster's — the one rule every place that touches a VM asks (the drivers
// before create/destroy, provision's decisions, the deploy review's inventory and its
// "VMID taken by someone else" check).
//
// Two tag sets exist on purpose and must not be confused:
//  - the tags a VM carries (plan.substrate.ownershipTags, from vmTags(spec) in plan.ts):
//    kubedos, cluster-<name>, artifact-<version> and the site's extra tags;
//  - the tags that make a VM ours (ownershipTags below): kubedos and cluster-<name> only. The
//    artifact tag changes with every version and the extra tags with the site's taste; neither
//    may turn the previous deploy's VMs into strangers.
// A VM is ours when its VMID is inside the plan's vmidRange AND it carries both.
import type { Plan } from './schema';

export interface Ownership {
  /** Tags a VM must carry to be ours. */
  tags: readonly string[];
  vmidRange: { start: number; end: number };
}

/** Without a plan nothing is ours: an empty VMID range. */
export const NOTHING_OWNED: Ownership = { tags: ['kubedos'], vmidRange: { start: 1, end: 0 } };

export function ownershipTags(plan: { cluster: { name: string } }): string[] {
  return ['kubedos', `cluster-${plan.cluster.name}`];
}

export function ownershipOf(plan: Pick<Plan, 'cluster' | 'substrate'> | undefined): Ownership {
  return plan ? { tags: ownershipTags(plan), vmidRange: plan.substrate.vmidRange } : NOTHING_OWNED;
}

export function inVmidRange(vmid: number, o: Ownership): boolean {
  return vmid >= o.vmidRange.start && vmid <= o.vmidRange.end;
}

/** Pure: is this VM (from any substrate's inventory) owned under `o`? */
export function owns(vm: { vmid: number; tags: readonly string[] }, o: Ownership): boolean {
  return inVmidRange(vm.vmid, o) && o.tags.every((t) => vm.tags.includes(t));
}
