// Content-addressed artifact cache. An entry is keyed by the sha256 of everything that goes
// into an artifact (payload bytes, lock, host files, tool versions, epoch…) and holds the
// produced files plus their sha256. Entries are checked before use: a file whose size/mtime/
// inode no longer match what was recorded is hashed again, and any hash mismatch discards the
// whole entry (it is rebuilt, never used). Outputs placed in a build directory are tracked the
// same way, so a warm rebuild with unchanged inputs touches no file contents.
import { constants, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { canonicalJson } from '../../common/canonical';
import { listFiles, sha256File, sha256Of, writeFileAtomic } from './files';

export interface CachedFile {
  /** Path relative to the entry (and to the output location). */
  path: string;
  sha256: string;
  size: number;
}

interface Fingerprint {
  size: number;
  mtimeMs: number;
  ino: number;
}

interface EntryRecord {
  key: string;
  kind: string;
  files: (CachedFile & { fp: Fingerprint })[];
}

export function inputsKey(kind: string, inputs: unknown): string {
  return sha256Of(canonicalJson({ kind, inputs }));
}

function fingerprint(path: string): Fingerprint {
  const st = statSync(path);
  return { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
}

function sameFp(a: Fingerprint, b: Fingerprint): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino;
}

export class ArtifactCache {
  constructor(
    readonly root: string,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  private entryDir(key: string): string {
    return join(this.root, 'artifacts', key.slice(0, 2), key);
  }

  /** A valid entry, or undefined (absent, or corrupted and now discarded). */
  async lookup(key: string): Promise<{ dir: string; files: CachedFile[] } | undefined> {
    const dir = this.entryDir(key);
    const recPath = join(dir, 'entry.json');
    if (!existsSync(recPath)) return undefined;
    let rec: EntryRecord;
    try {
      rec = JSON.parse(readFileSync(recPath, 'utf8')) as EntryRecord;
    } catch {
      this.discard(dir, 'unreadable entry.json');
      return undefined;
    }
    let changed = false;
    for (const f of rec.files) {
      const p = join(dir, 'files', f.path);
      if (!existsSync(p)) {
        this.discard(dir, `${f.path} is missing`);
        return undefined;
      }
      const fp = fingerprint(p);
      if (sameFp(fp, f.fp)) continue;
      const sha = await sha256File(p);
      if (sha !== f.sha256 || fp.size !== f.size) {
        this.discard(dir, `${f.path} has sha256 ${sha.slice(0, 16)}…, recorded ${f.sha256.slice(0, 16)}…`);
        return undefined;
      }
      f.fp = fp;
      changed = true;
    }
    if (changed) writeFileAtomic(recPath, JSON.stringify(rec));
    return { dir: join(dir, 'files'), files: rec.files.map(({ path, sha256, size }) => ({ path, sha256, size })) };
  }

  private discard(dir: string, why: string): void {
    this.log(`cache: entry ${dir} is corrupted (${why}): discarded, rebuilding`);
    rmSync(dir, { recursive: true, force: true });
  }

  /** Move a freshly built tree into the cache under key. Another build that stored the same
   * key first wins (same inputs → same content); ours is dropped, theirs is never disturbed. */
  async store(key: string, kind: string, builtDir: string): Promise<{ dir: string; files: CachedFile[] }> {
    const dir = this.entryDir(key);
    const existing = await this.lookup(key);
    if (existing) {
      rmSync(builtDir, { recursive: true, force: true });
      return existing;
    }
    const staging = `${dir}.staging-${process.pid}`;
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { recursive: true });
    renameSync(builtDir, join(staging, 'files'));
    const files: EntryRecord['files'] = [];
    for (const path of listFiles(join(staging, 'files'))) {
      const p = join(staging, 'files', path);
      files.push({ path, sha256: await sha256File(p), size: statSync(p).size, fp: fingerprint(p) });
    }
    writeFileAtomic(join(staging, 'entry.json'), JSON.stringify({ key, kind, files } satisfies EntryRecord));
    try {
      renameSync(staging, dir);
    } catch (err) {
      rmSync(staging, { recursive: true, force: true });
      const raced = await this.lookup(key);
      if (raced) return raced;
      throw err;
    }
    return { dir: join(dir, 'files'), files: files.map(({ path, sha256, size }) => ({ path, sha256, size })) };
  }

  /** Scratch directory on the cache's filesystem (so store() is a rename). */
  scratch(name: string): string {
    const d = join(this.root, 'tmp', `${name}-${process.pid}`);
    rmSync(d, { recursive: true, force: true });
    mkdirSync(dirname(d), { recursive: true });
    return d;
  }
}


/** What a build directory holds, by relative path, with the fingerprint at placement time. */
export interface PlacedState {
  files: Record<string, CachedFile & { fp: Fingerprint }>;
}

export const PLACED_STATE_FILE = '.kubedos-build-state.json';

export function readPlaced(outDir: string): PlacedState {
  try {
    return JSON.parse(readFileSync(join(outDir, PLACED_STATE_FILE), 'utf8')) as PlacedState;
  } catch {
    return { files: {} };
  }
}

export function writePlaced(outDir: string, state: PlacedState): void {
  writeFileAtomic(join(outDir, PLACED_STATE_FILE), JSON.stringify(state));
}

/**
 * Put cached files at outDir/prefix/…, skipping any already there unchanged (same fingerprint
 * as when placed). Returns how many were copied.
 */
export function place(entry: { dir: string; files: CachedFile[] }, outDir: string, prefix: string, state: PlacedState): number {
  let copied = 0;
  for (const f of entry.files) {
    const rel = prefix ? `${prefix}/${f.path}` : f.path;
    const dst = join(outDir, rel);
    const prev = state.files[rel];
    if (prev && prev.sha256 === f.sha256 && existsSync(dst) && sameFp(fingerprint(dst), prev.fp)) continue;
    mkdirSync(dirname(dst), { recursive: true });
    rmSync(dst, { force: true });
    copyFileSync(join(entry.dir, f.path), dst, constants.COPYFILE_FICLONE);
    state.files[rel] = { ...f, path: rel, fp: fingerprint(dst) };
    copied++;
  }
  return copied;
}
