// The A/B disk of docs/upgrades.md as an sfdisk script: ESP, root A, root B, data. The image
// build writes it when the spec asks for it (spec.upgrades.diskLayout: ab; main/build/image/ab.ts);
// the default image (ESP + one root, main/build/image/index.ts) does not use it. Pure.
import { stableUuid } from '../build/image/index';

export const GPT_TYPES = {
  esp: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  /** Linux root (x86-64): both slots; the kernel command line names the one to mount (root=LABEL=…). */
  root: '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709',
  /** Linux file system data. */
  data: '0FC63DAF-8483-4772-8E79-3D69D8477DE4',
} as const;

/** File system labels GRUB (grub-ab.cfg) and fstab find the partitions by. */
export const AB_LABELS = { rootA: 'kubedos-root-A', rootB: 'kubedos-root-B', data: 'kubedos-data' } as const;

export type AbSlot = 'A' | 'B';

/** GPT partition name (PARTLABEL) of each root slot: what kubedos-slot-write finds the slot by
 * (the file system label lives inside the bytes a slot write replaces; the GPT entry does not). */
export const AB_SLOT_PARTITIONS = { A: 'root-a', B: 'root-b' } as const satisfies Record<AbSlot, AbPartition['name']>;

/** The file system label a root slot must carry (grub-ab.cfg boots root=LABEL=…). */
export function slotLabel(slot: AbSlot): string {
  return slot === 'A' ? AB_LABELS.rootA : AB_LABELS.rootB;
}

export interface AbLayoutInput {
  cluster: string;
  role: string;
  espMiB: number;
  /** Each root slot (today's single root is 2048 MiB). */
  rootMiB: number;
  /** The data partition as built (a build input, 4 GiB by default; not grown at first boot). */
  dataMiB: number;
}

export interface AbPartition {
  name: 'esp' | 'root-a' | 'root-b' | 'data';
  startSector: number;
  sectors: number;
  type: string;
  uuid: string;
}

const FIRST_LBA = 2048;

/** Pure: the four partitions, 1 MiB aligned, back to back from sector 2048. */
export function abPartitions(o: AbLayoutInput): AbPartition[] {
  const sizes: [AbPartition['name'], number, string][] = [
    ['esp', o.espMiB, GPT_TYPES.esp],
    ['root-a', o.rootMiB, GPT_TYPES.root],
    ['root-b', o.rootMiB, GPT_TYPES.root],
    ['data', o.dataMiB, GPT_TYPES.data],
  ];
  let start = FIRST_LBA;
  return sizes.map(([name, mib, type]) => {
    const p = { name, startSector: start, sectors: mib * 2048, type, uuid: stableUuid(`${o.cluster}/${o.role}/${name}-part`) };
    start += p.sectors;
    return p;
  });
}

/** Pure: bytes of the raw disk: the partitions plus 1 MiB for the backup GPT. */
export function abDiskBytes(o: AbLayoutInput): number {
  const last = abPartitions(o).at(-1)!;
  return (last.startSector + last.sectors + 2048) * 512;
}

/** Pure: the sfdisk script of the A/B disk. */
export function renderAbPartitionTable(o: AbLayoutInput): string {
  return [
    'label: gpt',
    `label-id: ${stableUuid(`${o.cluster}/${o.role}/disk`)}`,
    'unit: sectors',
    `first-lba: ${FIRST_LBA}`,
    ...abPartitions(o).map((p) => `start=${p.startSector}, size=${p.sectors}, type=${p.type}, uuid=${p.uuid}, name="${p.name}"`),
    '',
  ].join('\n');
}
