// Lab suites keep what explains a run (logs, journals, plans, manifests, serial consoles) and drop
// the bulk (disk images, ISOs, darksites, caches) when they finish: a clean CI run builds several
// clusters' artifacts, and a full disk fails the next suite for a reason that is not its own.
// KUBEDOS_KEEP_LAB_OUTPUT=1 keeps everything for debugging.
import { existsSync, lstatSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { listFiles } from '../main/build/files';

const BULK_BYTES = 8 * 1024 ** 2;

export function keepLabOutput(): boolean {
  return process.env.KUBEDOS_KEEP_LAB_OUTPUT === '1';
}

/** Delete regular files of BULK_BYTES or more under dir (listFiles: symlinks are not followed) and
 * the given whole directories. Returns the bytes freed. */
export function dropLabBulk(dir: string, wholeDirs: readonly string[] = []): number {
  if (keepLabOutput()) return 0;
  let freed = 0;
  for (const d of wholeDirs) {
    freed += diskUse(d);
    rmSync(d, { recursive: true, force: true });
  }
  for (const f of existsSync(dir) ? listFiles(dir) : []) {
    const st = lstatSync(join(dir, f));
    if (st.size < BULK_BYTES) continue;
    freed += st.blocks * 512;
    rmSync(join(dir, f), { force: true });
  }
  if (freed) console.log(`[lab] dropped ${(freed / 1024 ** 3).toFixed(1)} GiB of images/ISOs/caches under ${dir} (KUBEDOS_KEEP_LAB_OUTPUT=1 keeps them)`);
  return freed;
}

/** Blocks in use under path (a file or a directory; symlinks are not followed). */
function diskUse(path: string): number {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return st.blocks * 512;
  return listFiles(path).reduce((n, f) => n + lstatSync(join(path, f)).blocks * 512, 0);
}
