// Content-addressed artifact cache. An entry is keyed by the sha256 of everything that goes
// into an artifact (payload bytes, lock, host files, tool versions, epoch…) and holds the
// produced files plus their sha256. Entries are checked before use: a file whose size/mtime/
// inode no longer match what was recorded is hashed again, and any hash mismatch discards the
// whole entry (it is rebuilt, never used). Outputs placed in a build directory are tracked the
// same way, so a warm rebuild with unchanged inputs touches no file contents.
import { constants, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { canonicalJson } from '../../common/canonical';
import { processAlive } from '../workspace';
import { assertNothingMountedUnder, ensureFreeSpace, listFiles, MiB, sha256File, sha256Of, writeFileAtomic } from './files';

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

export interface CacheEntryInfo {
  key: string;
  kind: string;
  dir: string;
  bytes: number;
  /** entry.json's mtime: set when stored and on every cache hit. */
  lastUsedMs: number;
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
    // Last use = entry.json's mtime (prune evicts the least recently used first).
    try {
      const now = new Date();
      utimesSync(recPath, now, now);
    } catch {
      /* read-only cache: last use stays unknown */
    }
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

  /** Every entry with its size and last use, least recently used first. */
  entries(): CacheEntryInfo[] {
    const root = join(this.root, 'artifacts');
    const out: CacheEntryInfo[] = [];
    for (const shard of existsSync(root) ? readdirSync(root).sort() : []) {
      for (const name of readdirSync(join(root, shard)).sort()) {
        const dir = join(root, shard, name);
        const stagingPid = Number(/\.staging-(\d+)$/.exec(name)?.[1]);
        if (stagingPid && processAlive(stagingPid)) continue; // another build is storing it right now
        let kind = 'unknown';
        let lastUsedMs = 0;
        let bytes: number;
        try {
          const recPath = join(dir, 'entry.json');
          const rec = JSON.parse(readFileSync(recPath, 'utf8')) as EntryRecord;
          kind = rec.kind;
          bytes = rec.files.reduce((n, f) => n + f.size, 0);
          lastUsedMs = statSync(recPath).mtimeMs;
        } catch {
          // staging leftovers and unreadable entries: oldest, size of what is there
          bytes = listFiles(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
        }
        out.push({ key: name, kind, dir, bytes, lastUsedMs });
      }
    }
    return out.sort((a, b) => a.lastUsedMs - b.lastUsedMs || a.key.localeCompare(b.key));
  }

  /**
   * Evict entries, least recently used first: every entry unused for olderThanMs, then more until
   * the cache holds at most maxBytes. Scratch directories of processes that are gone are removed.
   */
  prune(o: { olderThanMs?: number; maxBytes?: number; dryRun?: boolean; now?: number }): { removed: CacheEntryInfo[]; keptBytes: number; scratchRemoved: string[] } {
    const now = o.now ?? Date.now();
    const all = this.entries();
    let total = all.reduce((n, e) => n + e.bytes, 0);
    const removed: CacheEntryInfo[] = [];
    for (const e of all) {
      const stale = o.olderThanMs !== undefined && now - e.lastUsedMs > o.olderThanMs;
      const over = o.maxBytes !== undefined && total > o.maxBytes;
      if (!stale && !over) continue;
      removed.push(e);
      total -= e.bytes;
      if (!o.dryRun) rmSync(e.dir, { recursive: true, force: true });
    }
    const scratchRemoved: string[] = [];
    const tmp = join(this.root, 'tmp');
    for (const name of existsSync(tmp) ? readdirSync(tmp).sort() : []) {
      const pid = Number(/-(\d+)$/.exec(name)?.[1]);
      if (pid && processAlive(pid)) continue;
      scratchRemoved.push(name);
      if (!o.dryRun) {
        assertNothingMountedUnder(join(tmp, name));
        rmSync(join(tmp, name), { recursive: true, force: true });
      }
    }
    return { removed, keptBytes: total, scratchRemoved };
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
  const todo = entry.files.filter((f) => {
    const rel = prefix ? `${prefix}/${f.path}` : f.path;
    const dst = join(outDir, rel);
    const prev = state.files[rel];
    return !(prev && prev.sha256 === f.sha256 && existsSync(dst) && sameFp(fingerprint(dst), prev.fp));
  });
  const bytes = todo.reduce((n, f) => n + f.size, 0);
  if (bytes > 64 * MiB) ensureFreeSpace(outDir, bytes + 256 * MiB, `placing ${prefix || 'outputs'} (${todo.length} files)`);
  for (const f of todo) {
    const rel = prefix ? `${prefix}/${f.path}` : f.path;
    const dst = join(outDir, rel);
    mkdirSync(dirname(dst), { recursive: true });
    rmSync(dst, { force: true });
    copyFileSync(join(entry.dir, f.path), dst, constants.COPYFILE_FICLONE);
    state.files[rel] = { ...f, path: rel, fp: fingerprint(dst) };
    copied++;
  }
  return copied;
}
