// The sizes of the A/B disk (docs/upgrades.md, spec.upgrades.diskLayout: ab): ESP, root A, root B
// and a data partition that fills the rest of the node's first disk. Written once here: the image
// build lays the disk out with them and the spec's invariants refuse a disk they do not fit. Pure.
import type { Plan } from '../plan/schema';
import type { NodeRole } from '../spec/schema';

/** The EFI system partition. */
export const AB_ESP_MIB = 64;
/** Each root slot (the size of the single-root image's root too). */
export const ROOT_MIB = 2048;
/** The smallest data partition an A/B node is built with: the node's identity, etcd, containerd's
 * images, kubelet and the logs live there (payload/upgrade/kubedos-persist). */
export const AB_MIN_DATA_MIB = 1024;
/** 1 MiB before the first partition (GPT and alignment), 1 MiB after the last (the backup GPT). */
const AB_GPT_MIB = 2;
const FIXED_MIB = AB_GPT_MIB + AB_ESP_MIB + 2 * ROOT_MIB;

/**
 * The data partition of an A/B disk for a first disk of `diskGiB`: the whole rest of the disk, so
 * the image is exactly the disk's size (a disk smaller than its image cannot be made: Proxmox
 * refuses to shrink, and a truncated GPT leaves the kernel without partitions). Nodes of one role
 * share one image: it is built for the smallest first disk among them.
 */
export function abDataMiB(diskGiB: number): number {
  return diskGiB * 1024 - FIXED_MIB;
}

/** The smallest first disk (GiB) an A/B node can have. */
export const AB_MIN_DISK_GIB = Math.ceil((FIXED_MIB + AB_MIN_DATA_MIB) / 1024);

/** The data partition (MiB) of `role`'s A/B disk in `plan`: the role's nodes share one disk
 * layout (one image, one installer), made for the smallest first disk among them. */
export function abRoleDataMiB(plan: Pick<Plan, 'nodes'>, role: NodeRole): number {
  const disks = plan.nodes.filter((n) => n.role === role).map((n) => n.vm.disks[0]!.sizeGiB);
  if (!disks.length) throw new Error(`A/B disk: the plan has no ${role} node`);
  return abDataMiB(Math.min(...disks));
}
