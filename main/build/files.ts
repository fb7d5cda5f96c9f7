// File helpers of the foundry: streaming sha256, atomic writes, pinned times. Everything the
// build hashes goes through here so a hash always means the same bytes.
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, readdirSync, renameSync, statSync, utimesSync, writeFileSync } from 'node:fs';
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
