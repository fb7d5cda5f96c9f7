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

/**
 * Boot images a cluster uploads carry its name the same way its VMs carry its tags:
 * `kubedos_<cluster>_<version>_<role>_<sha256 prefix>.qcow2`. A cluster name is a DNS label (no
 * "_"), so the prefix `kubedos_<cluster>_` names exactly one cluster's images: "lab" never claims
 * "lab-3"'s. A destroy removes the images with this prefix (and only if no other VM uses them).
 */
export function imagePrefix(cluster: string): string {
  return `kubedos_${cluster}_`;
}

/** The file name of an image on the substrate; `fields` are joined by "_" after the prefix (each reduced to letters, digits, ".+-"). */
export function imageFileName(cluster: string, fields: readonly string[], sha256: string, kind: 'iso' | 'disk-image'): string {
  const clean = fields.map((f) => f.replace(/[^A-Za-z0-9.+-]/g, '-'));
  return `${imagePrefix(cluster)}${[...clean, sha256.slice(0, 12)].join('_')}.${kind === 'iso' ? 'iso' : 'qcow2'}`;
}

/** Pure: is this image file (or an interrupted upload of it) one this cluster uploaded? */
export function ownsImageFile(fileName: string, cluster: string): boolean {
  return fileName.startsWith(imagePrefix(cluster));
}
