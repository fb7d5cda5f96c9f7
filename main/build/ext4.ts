// The one way the foundry makes an ext4 filesystem from a directory tree, byte for byte
// reproducibly: the same tree content, names, modes, owners and SOURCE_DATE_EPOCH give the same
// image, whenever and in whatever order the tree was written (with the same e2fsprogs and
// /etc/mke2fs.conf; the callers' cache keys carry e2fsprogs' version).
//
// What varies with plain `mkfs.ext4 -d`, and what pins it here (e2fsprogs 1.47.0, Debian 12):
// - each source file's ctime (and atime) is copied into its inode; ctime cannot be set on the
//   source, so after mkfs every inode in use gets ctime/atime/mtime/crtime = the epoch and the
//   four `_extra` words (nanoseconds and the epoch bits past 2038) = 0, with `debugfs -w`
//   (`set_inode_field`, ~1 s for 30k inodes). mtime too: the callers pin it already, but their
//   symbolic links (debootstrap's among them) keep the time they were made;
// - the superblock's and root/lost+found's times: E2FSPROGS_FAKE_TIME (mkfs and debugfs);
// - the order files are taken in (inode numbers, block layout): mke2fs reads each directory with
//   scandir + alphasort, which collates by locale, so LC_ALL=C;
// - the directory hash seed and the filesystem UUID: passed by the caller (-E hash_seed, -U);
// - root's owner: root_owner=0:0; every other owner and mode comes from the tree.
// The journal is created zeroed and no random number is left in the image (checked by building
// the same tree twice: ext4.test.ts).
import { firstFew } from '../../common/text/first-few';
import { plural } from '../../common/text/plural';
import { run } from '../exec/runner';

export interface Ext4ImageInput {
  /** The directory whose content becomes the filesystem's root. */
  tree: string;
  /** The image file (created or overwritten). */
  out: string;
  sizeMiB: number;
  uuid: string;
  label: string;
  /** Directory hash seed (a UUID). */
  hashSeed: string;
  sourceDateEpoch: number;
  /** Bytes per inode (mkfs.ext4 -i); mke2fs.conf's default when absent. */
  bytesPerInode?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** What to tell the user if mkfs fails. */
  hint?: string;
}

/** The root directory's inode; the other reserved ones (1, 3…10) are mke2fs's own, made at the fake time. */
const ROOT_INODE = 2;

/** Pure: the mkfs.ext4 command line (the same as the callers used before this module). */
export function mkfsArgs(i: Ext4ImageInput): string[] {
  return [
    'mkfs.ext4', '-q', '-F', '-d', i.tree, '-U', i.uuid, '-L', i.label,
    ...(i.bytesPerInode ? ['-i', String(i.bytesPerInode)] : []),
    '-E', `hash_seed=${i.hashSeed},root_owner=0:0`, i.out, `${i.sizeMiB}M`,
  ];
}

/** Pure: the inode numbers in use, from `dumpe2fs` (Inode count + each group's "Free inodes:" ranges). */
export function inodesInUse(dumpe2fs: string): { inUse: number[]; firstInode: number } {
  const count = /^Inode count:\s+(\d+)$/m.exec(dumpe2fs);
  const first = /^First inode:\s+(\d+)$/m.exec(dumpe2fs);
  if (!count || !first) throw new Error('dumpe2fs printed no "Inode count:" or "First inode:" line: cannot tell which inodes are in use');
  const total = Number(count[1]);
  const free = new Uint8Array(total + 1);
  let groups = 0;
  for (const m of dumpe2fs.matchAll(/^ {2}Free inodes: ?(.*)$/gm)) {
    groups += 1;
    for (const range of m[1]!.split(',').map((r) => r.trim()).filter(Boolean)) {
      const r = /^(\d+)(?:-(\d+))?$/.exec(range);
      if (!r) throw new Error(`dumpe2fs: unreadable free-inode range "${range}"`);
      const lo = Number(r[1]);
      const hi = Number(r[2] ?? r[1]);
      if (lo < 1 || hi > total || lo > hi) throw new Error(`dumpe2fs: free-inode range "${range}" outside 1-${total}`);
      free.fill(1, lo, hi + 1);
    }
  }
  if (groups === 0) throw new Error('dumpe2fs printed no group with a "Free inodes:" line: cannot tell which inodes are in use');
  const perGroup = /^Inodes per group:\s+(\d+)$/m.exec(dumpe2fs);
  if (perGroup && groups * Number(perGroup[1]) !== total) {
    throw new Error(`dumpe2fs listed ${plural(groups, 'group')} of ${perGroup[1]} inodes for ${total} inodes: its output is cut short, cannot tell which inodes are in use`);
  }
  const inUse: number[] = [];
  for (let n = 1; n <= total; n += 1) if (!free[n]) inUse.push(n);
  return { inUse, firstInode: Number(first[1]) };
}

/** Pure: the debugfs script that pins every time field of the given inodes to the epoch. */
export function renderTimePins(inodes: readonly number[], epoch: number): string {
  if (!Number.isInteger(epoch) || epoch < 0) throw new Error(`SOURCE_DATE_EPOCH must be a whole number of seconds ≥ 0, not ${epoch}`);
  const lines: string[] = [];
  for (const n of inodes) {
    const i = `<${n}>`;
    // The _extra words first: setting a time afterwards writes its epoch bits there again.
    for (const f of ['ctime_extra', 'atime_extra', 'mtime_extra', 'crtime_extra']) lines.push(`set_inode_field ${i} ${f} 0`);
    for (const f of ['ctime', 'atime', 'mtime', 'crtime']) lines.push(`set_inode_field ${i} ${f} @${epoch}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Pure: which inodes get their times pinned: the root directory and every file inode in use (not the reserved 1, 3…10). */
export function inodesToPin(inUse: readonly number[], firstInode: number): number[] {
  return inUse.filter((n) => n === ROOT_INODE || n >= firstInode);
}

/**
 * Make `out` an ext4 filesystem holding `tree`, byte for byte reproducibly (see the header).
 * Returns how many inodes had their times pinned.
 */
export async function makeReproducibleExt4(input: Ext4ImageInput): Promise<{ inodes: number }> {
  const { signal } = input;
  const timeoutMs = input.timeoutMs ?? 20 * 60_000;
  const env = { E2FSPROGS_FAKE_TIME: String(input.sourceDateEpoch), LC_ALL: 'C' };
  await run(mkfsArgs(input), { env, signal, timeoutMs, hint: input.hint ?? 'mkfs.ext4 (package e2fsprogs) makes the filesystem' });
  const dump = await run(['dumpe2fs', input.out], { env, signal, hint: 'dumpe2fs (package e2fsprogs) lists the inodes mkfs.ext4 used' });
  const { inUse, firstInode } = inodesInUse(dump.stdout);
  const pins = inodesToPin(inUse, firstInode);
  // debugfs echoes every command on stdout (keep little of it) and exits non-zero if one failed.
  const res = await run(['debugfs', '-w', '-f', '-', input.out], {
    env, signal, timeoutMs, input: renderTimePins(pins, input.sourceDateEpoch), maxBufferBytes: 64 * 1024,
    hint: `debugfs (package e2fsprogs) pins the inode times of ${input.out}`,
  });
  const complaints = res.stderr.split('\n').filter((l) => l.trim() && !/^debugfs \d/.test(l));
  if (complaints.length > 0) {
    throw new Error(`debugfs could not pin the inode times of ${input.out} (${plural(complaints.length, 'error line')}: ${firstFew(complaints, 3)}); the image would not be reproducible: check the disk and e2fsprogs (debugfs -V), then build again`);
  }
  return { inodes: pins.length };
}
