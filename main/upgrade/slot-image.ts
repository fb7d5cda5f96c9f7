// The engine's half of a slot write (docs/upgrades.md, "Writing the passive slot"): from N+1's
// A/B qcow2 of a role (build output, main/build/image/ab.ts), the raw ext4 image of the root
// slot a node will receive, its sha256 and size, and the command the node runs to write it
// (payload/upgrade/kubedos-slot-write). Streaming it to the node over wg1 is the apply step's job.
//
// The slot image is cut from the partition of the slot being written, not always from root A:
// both slots of a build hold the same tree, but each carries its own file system label and UUID
// (kubedos-root-A / kubedos-root-B), and GRUB boots a slot by its label. Root A's bytes written
// into B would leave two file systems labelled kubedos-root-A and none labelled kubedos-root-B.
//
// Deterministic: the same qcow2 gives the same bytes and hash (a build's qcow2 is reproducible).
import { closeSync, createReadStream, createWriteStream, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { run } from '../exec/runner';
import { AB_SBIN } from '../build/image/ab';
import { AB_SLOT_PARTITIONS, GPT_TYPES, slotLabel, type AbSlot } from './ab-layout';

/** What `sfdisk --json DISK` prints (util-linux 2.38), the fields read here. */
export const SfdiskJsonSchema = z.object({
  partitiontable: z.object({
    label: z.string(),
    sectorsize: z.number().int().positive().optional(),
    partitions: z.array(z.object({
      node: z.string(),
      start: z.number().int().nonnegative(),
      size: z.number().int().positive(),
      type: z.string(),
      uuid: z.string().optional(),
      name: z.string().optional(),
    })),
  }),
});
export type SfdiskTable = z.infer<typeof SfdiskJsonSchema>['partitiontable'];

export interface SlotPartition {
  name: string;
  /** Byte offset in the raw disk. */
  offset: number;
  bytes: number;
  uuid: string | undefined;
}

/** Pure: the root slot's partition in an A/B disk's table, or an error that says what the disk is instead. */
export function findSlotPartition(table: SfdiskTable, slot: AbSlot, disk: string): SlotPartition {
  const name = AB_SLOT_PARTITIONS[slot];
  if (table.label !== 'gpt') throw new Error(`${disk}: a ${table.label} partition table, not GPT: not an A/B disk (spec.upgrades.diskLayout: ab); build N+1 with that layout`);
  const hits = table.partitions.filter((p) => p.name === name);
  if (hits.length !== 1) {
    const names = table.partitions.map((p) => p.name ?? '(no name)').join(', ');
    throw new Error(`${disk}: ${hits.length} partitions named ${name} (the disk has: ${names || 'none'}): not an A/B disk (spec.upgrades.diskLayout: ab); build N+1 with that layout`);
  }
  const p = hits[0]!;
  if (p.type.toUpperCase() !== GPT_TYPES.root) throw new Error(`${disk}: partition ${name} has type ${p.type}, expected the Linux root type ${GPT_TYPES.root}: not an A/B disk of this layout`);
  const sector = table.sectorsize ?? 512;
  return { name, offset: p.start * sector, bytes: p.size * sector, uuid: p.uuid };
}

/** Pure: the volume label of an ext2/3/4 superblock (the first 2048 bytes of the file system), or undefined when it is not one. */
export function ext4Label(head: Uint8Array): string | undefined {
  if (head.length < 1024 + 136) return undefined;
  const sb = Buffer.from(head.buffer, head.byteOffset + 1024, 136);
  if (sb.readUInt16LE(56) !== 0xef53) return undefined;
  const name = sb.subarray(120, 136);
  const end = name.indexOf(0);
  return name.subarray(0, end === -1 ? 16 : end).toString('utf8');
}

/**
 * Boots of N+1's slot GRUB allows before it falls back (`kubedos-slot-write --tries`, the boot
 * counter's kubedos_tries). One: issue 18 wants a node back on its previous slot in at most 2 boot
 * attempts, and a kernel that never comes up uses every try before the fallback boot (1 try: B,
 * then A); a gate that fails marks the slot bad itself, so it is back at the second boot whatever
 * this is. A second try only helps a panic that does not repeat (docs/upgrades.md "Boot counter").
 */
export const UPGRADE_BOOT_TRIES = 1;

/** Pure: the command the node runs to write a slot image from its standard input (docs/upgrades.md). */
export function slotWriteArgv(slot: AbSlot, sha256: string, size: number): string[] {
  return [posix.join(AB_SBIN, 'kubedos-slot-write'), '--tries', String(UPGRADE_BOOT_TRIES), slot, sha256, String(size)];
}

export interface SlotImageInput {
  /** N+1's A/B qcow2 of the node's role (build output). */
  qcow2: string;
  /** Its size and sha256 as N+1's signed manifest gives them: the qcow2 is copied into the private directory and hashed on the way, and only that copy, when it matches, is read. */
  expected: { sha256: string; size: number };
  /** The slot the node will write: its passive slot. */
  slot: AbSlot;
  /** Parent of the private temporary directory (default: the system's temporary directory). */
  tmpParent?: string;
  signal?: AbortSignal;
}

export interface SlotImage {
  slot: AbSlot;
  /** The raw file system image, in `dir` (mode 0600). */
  path: string;
  /** The private directory holding it: removeSlotImage() deletes it. */
  dir: string;
  size: number;
  sha256: string;
  /** The file system label read from the image (always the slot's own). */
  label: string;
  partition: SlotPartition;
  /** What the node runs, the image on its standard input. */
  argv: string[];
}

/** Copies `from` (or its bytes `start`..`end`, inclusive) to `to` (mode 0600), hashing them on the way: the sha256 and size of what was written. */
async function copyHashed(from: string, to: string, o: { start?: number; end?: number; signal?: AbortSignal | undefined } = {}): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(
    createReadStream(from, { ...(o.start !== undefined ? { start: o.start } : {}), ...(o.end !== undefined ? { end: o.end } : {}), ...(o.signal ? { signal: o.signal } : {}) }),
    new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    }),
    createWriteStream(to, { mode: 0o600 }),
  );
  return { sha256: hash.digest('hex'), size };
}

/** The raw image of `slot` from an A/B qcow2: the qcow2 copied into a private directory and
 * checked against its signed size and sha256, qemu-img convert of that copy to a raw disk,
 * sfdisk --json for the offsets, the slot's partition cut out and hashed in one pass. */
export async function cutSlotImage(input: SlotImageInput): Promise<SlotImage> {
  const { qcow2, slot, signal } = input;
  const dir = mkdtempSync(join(input.tmpParent ?? tmpdir(), 'kubedos-slot-'));
  try {
    // What qemu-img reads is the private copy whose bytes were hashed, not the path again: the build
    // directory is the user's and the preflight that verified it may be hours ago.
    const copy = join(dir, 'n1.qcow2');
    const got = await copyHashed(qcow2, copy, { signal });
    if (got.size !== input.expected.size || got.sha256 !== input.expected.sha256) {
      const what = got.size !== input.expected.size ? `${got.size} bytes, N+1's signed manifest says ${input.expected.size}` : `sha256 ${got.sha256.slice(0, 12)}…, N+1's signed manifest says ${input.expected.sha256.slice(0, 12)}…`;
      throw new Error(`${qcow2} is not the disk image N+1 signed (${what}): it changed since the preflight verified the build; nothing was written to a node. Copy N+1's build again and rerun kubedos upgrade (kubedos verify DIR names what differs)`);
    }
    const raw = join(dir, 'disk.raw');
    await run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', copy, raw], { signal, timeoutMs: 20 * 60_000, hint: `qemu-img (package qemu-utils) reads N+1's disk image ${qcow2}: is it a qcow2 written by kubedos build?` });
    rmSync(copy, { force: true });
    const listed = await run(['sfdisk', '--json', raw], { signal, hint: `sfdisk (package fdisk) lists the partitions of N+1's disk ${qcow2}` });
    const table = SfdiskJsonSchema.parse(JSON.parse(listed.stdout)).partitiontable;
    const part = findSlotPartition(table, slot, qcow2);

    const head = Buffer.alloc(2048);
    const fd = openSync(raw, 'r');
    try {
      readSync(fd, head, 0, head.length, part.offset);
    } finally {
      closeSync(fd);
    }
    const label = ext4Label(head);
    if (label !== slotLabel(slot)) {
      throw new Error(`${qcow2}: partition ${part.name} holds ${label === undefined ? 'no ext4 file system' : `a file system labelled '${label}'`}, expected ${slotLabel(slot)}: GRUB would not find slot ${slot}; rebuild N+1 with spec.upgrades.diskLayout: ab`);
    }

    const path = join(dir, `root-${slot.toLowerCase()}.ext4`);
    const { sha256 } = await copyHashed(raw, path, { start: part.offset, end: part.offset + part.bytes - 1, signal });
    rmSync(raw, { force: true });
    return { slot, path, dir, size: part.bytes, sha256, label, partition: part, argv: slotWriteArgv(slot, sha256, part.bytes) };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

export function removeSlotImage(image: Pick<SlotImage, 'dir'>): void {
  rmSync(image.dir, { recursive: true, force: true });
}
