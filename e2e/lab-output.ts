// Lab suites keep what explains a run (logs, journals, plans, manifests, serial consoles) and drop
// the bulk (disk images, ISOs, darksites, caches) when they finish: a clean CI run builds several
// clusters' artifacts, and a full disk fails the next suite for a reason that is not its own.
// KUBEDOS_KEEP_LAB_OUTPUT=1 keeps everything for debugging.
import { lstatSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const BULK_BYTES = 8 * 1024 ** 2;

export function keepLabOutput(): boolean {
  return process.env.KUBEDOS_KEEP_LAB_OUTPUT === '1';
}

/** Delete regular files of BULK_BYTES or more under dir (symlinks are not followed) and the given
 * whole directories. Returns the bytes freed. */
export function dropLabBulk(dir: string, wholeDirs: readonly string[] = []): number {
  if (keepLabOutput()) return 0;
  let freed = 0;
  for (const d of wholeDirs) {
    freed += sizeOf(d);
    rmSync(d, { recursive: true, force: true });
  }
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const name of names) {
      const p = join(d, name);
      const st = lstatSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && st.size >= BULK_BYTES) {
        freed += st.blocks * 512;
        rmSync(p, { force: true });
      }
    }
  };
  walk(dir);
  if (freed) console.log(`[lab] dropped ${(freed / 1024 ** 3).toFixed(1)} GiB of images/ISOs/caches under ${dir} (KUBEDOS_KEEP_LAB_OUTPUT=1 keeps them)`);
  return freed;
}

function sizeOf(d: string): number {
  const st = lstatSync(d, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return st.blocks * 512;
  return readdirSync(d).reduce((n, name) => n + sizeOf(join(d, name)), 0);
}
