// File helpers of the foundry: streaming sha256, atomic writes, pinned times. Everything the
// build hashes goes through here so a hash always means the same bytes.
import { createHash } from 'node:crypto';
import { chmodSync, constants, copyFileSync, createReadStream, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statfsSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export function sha256Of(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Write through a temp file and rename, so a crash never leaves half a file under the final name. */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  renameSync(tmp, path);
}

/** All regular files under root, as sorted POSIX paths relative to root. */
export function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(relative(root, p).split('\\').join('/'));
    }
  };
  walk(root);
  return out.sort();
}

/** Set every file and directory under root (and root) to one time: reproducible media. */
export function pinTimes(root: string, epochSeconds: number): void {
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      if (!e.isSymbolicLink()) utimesSync(p, epochSeconds, epochSeconds);
    }
  };
  walk(root);
  utimesSync(root, epochSeconds, epochSeconds);
}

export function fileSize(path: string): number {
  return statSync(path).size;
}

/** Copy a directory tree (regular files and directories), reflinking where the filesystem can. */
export function copyTree(src: string, dst: string): void {
  mkdirSync(dst, { recursive: true });
  for (const e of readdirSync(src, { withFileTypes: true })) {
    const s = join(src, e.name);
    const d = join(dst, e.name);
    if (e.isDirectory()) copyTree(s, d);
    else if (e.isFile()) {
      copyFileSync(s, d, constants.COPYFILE_FICLONE);
      chmodSync(d, statSync(s).mode & 0o7777);
    }
  }
}

/** Make every file and directory under root writable by its owner (extracted ISO trees are read-only). */
export function makeWritable(root: string): void {
  chmodSync(root, statSync(root).mode | 0o200);
  for (const e of readdirSync(root, { withFileTypes: true })) {
    const p = join(root, e.name);
    if (e.isDirectory()) makeWritable(p);
    else if (e.isFile()) chmodSync(p, statSync(p).mode | 0o200);
  }
}

/** Refuse to touch a tree that has something mounted inside it (a failed debootstrap can leave
 * proc/sys/dev mounted; deleting through a bind mount would delete the host's files). */
export function assertNothingMountedUnder(dir: string): void {
  let info: string;
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return;
  }
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const hits = info
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((mp) => mp === dir || mp.startsWith(prefix));
  if (hits.length) throw new Error(`refusing to delete ${dir}: still mounted inside it: ${hits.join(', ')} (umount them first)`);
}

export const MiB = 1024 ** 2;
export const GiB = 1024 ** 3;

export function formatGiB(bytes: number): string {
  return `${(bytes / GiB).toFixed(1)} GiB`;
}

/** path itself, or its nearest parent that exists (where a file there would be written). */
export function existingAncestor(path: string): string {
  let cur = path;
  while (!existsSync(cur) && dirname(cur) !== cur) cur = dirname(cur);
  return cur;
}

/** Free bytes (for an unprivileged writer) on the filesystem holding path or its nearest existing parent. */
export function freeBytesAt(path: string): number {
  const st = statfsSync(existingAncestor(path));
  return st.bavail * st.bsize;
}

export class NotEnoughSpace extends Error {
  readonly hint: string;
  constructor(readonly what: string, readonly dir: string, readonly neededBytes: number, readonly freeBytes: number) {
    super(`${what} needs about ${formatGiB(neededBytes)} free under ${dir}; the filesystem has ${formatGiB(freeBytes)}`);
    this.name = 'NotEnoughSpace';
    this.hint = 'free space there, e.g. `kubedos cache prune --max-size 10G` (least recently used build artifacts first), or point KUBEDOS_CACHE at a larger disk';
  }
}

/** Refuse to start a step that would fill the disk halfway through (a half-written image is worse than none). */
export function ensureFreeSpace(dir: string, neededBytes: number, what: string, free: (p: string) => number = freeBytesAt): void {
  const have = free(dir);
  if (have < neededBytes) throw new NotEnoughSpace(what, dir, neededBytes, have);
}
