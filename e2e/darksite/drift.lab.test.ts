// The darksite against a moving archive, for real: apt resolves and downloads real .debs from a
// signed mirror stand-in on loopback (e2e/darksite/mirror.ts). Version X of a package is replaced
// by X+1 between two builds, as Debian's security archive does. Default mode stops with the short
// drift message, --frozen refuses, --offline from the earlier cache rebuilds X byte for byte,
// --update moves to X+1 and records what moved. Then the bad inputs: a corrupted .deb, a Release
// signed by the wrong key, a list naming a package that does not exist, a lock edited into nonsense.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../common/canonical';
import type { DarksiteOptions, LockMode } from '../../main/build/darksite/index';
import { ensureLock, fetchPackages, lockDigest, readLock, writeRepository } from '../../main/build/darksite/index';
import { DriftError, PinError } from '../../main/build/darksite/pins';
import type { DarksiteLock } from '../../main/build/darksite/pins';
import { sha256File } from '../../main/build/files';
import { withRepoKey } from '../../main/build/keys';
import { NODE_ROLES } from '../../common/spec/schema';
import { MirrorStandin } from './mirror';

const LAB = resolve(__dirname, '../output/darksite-drift');
const ALPHA = { name: 'kd-alpha', version: '1.0-1', depends: 'kd-beta (>= 1.0)' };
const BETA_X = { name: 'kd-beta', version: '1.0-1' };
const BETA_X1 = { name: 'kd-beta', version: '1.0-2' };
const GAMMA = { name: 'kd-gamma', version: '2:0.5-1' };

let mirror: MirrorStandin;
const lists = join(LAB, 'packages');
const lockPath = join(LAB, 'workspace/clusters/drift/darksite.lock.json');
const env = { ...process.env, KUBEDOS_WORKSPACE: join(LAB, 'workspace') };
let apt: string;

function opts(mode: LockMode, cache: string, extra: Partial<DarksiteOptions> = {}): DarksiteOptions & { detail: string[] } {
  const detail: string[] = [];
  return { packagesDir: lists, lockPath, cacheDir: join(LAB, cache), mode, aptRoot: apt, acceptCommand: 'kubedos lock update --spec drift.yaml', logDetail: (t) => detail.push(t), detail, ...extra };
}

/** One darksite build: lock → cache → signed repository; returns the lock and the Release's sha256. */
async function build(mode: LockMode, cache: string, out: string): Promise<{ lock: DarksiteLock; release: string; downloaded: number; debs: string[] }> {
  const o = opts(mode, cache);
  const { lock } = await ensureLock(o);
  const { packages, stats } = await fetchPackages(lock, NODE_ROLES, o);
  const dir = join(LAB, out);
  await withRepoKey('drift', env, (key) => writeRepository({ outDir: dir, packages, lock, cacheDir: o.cacheDir, key, sourceDateEpoch: 1700000000, label: 'drift' }));
  return { lock, release: await sha256File(join(dir, 'dists/bookworm/InRelease')), downloaded: stats.downloaded, debs: readdirSync(join(dir, 'pool/main')).sort() };
}

async function failure(p: Promise<unknown>): Promise<Error> {
  const r = await p.then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  if (!r) throw new Error('expected a failure, the call succeeded');
  return r;
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the darksite lab runs apt with a private root-owned state; run it as root like CI does');
  mirror = new MirrorStandin(LAB);
  for (const p of [ALPHA, BETA_X, GAMMA]) mirror.add(p);
  mirror.publish();
  await mirror.start();
  apt = mirror.aptRoot();
  mkdirSync(lists, { recursive: true });
  writeFileSync(join(lists, 'base.list'), '# every node\nkd-alpha\n');
  writeFileSync(join(lists, 'lb.list'), 'kd-gamma (>= 0.1)\n');
});

afterAll(async () => {
  await mirror?.stop();
  mirror?.stopAgents();
});

describe('darksite against a moving archive (signed mirror stand-in on loopback)', () => {
  let first: Awaited<ReturnType<typeof build>>;

  it('a first build resolves the lists into a lock with versions, hashes, roles and sources', async () => {
    first = await build('default', 'cache-1', 'out-1');
    const byName = Object.fromEntries(first.lock.packages.map((p) => [p.name, p]));
    expect(Object.keys(byName)).toEqual(['kd-alpha', 'kd-beta', 'kd-gamma']);
    expect(byName['kd-beta']!.version).toBe('1.0-1');
    expect(byName['kd-gamma']!.roles).toEqual(['lb']);
    expect(byName['kd-alpha']!.roles).toEqual([...NODE_ROLES].sort());
    expect(byName['kd-beta']!.source).toBe('debian/bookworm');
    expect(byName['kd-beta']!.sha256).toBe(await sha256File(join(mirror.root, 'pool/main', mirror.filename(BETA_X))));
    expect(first.downloaded).toBe(3);
    expect(readLock(lockPath)).toEqual(first.lock);
  });

  it('the archive moves X → X+1: the default mode stops with the short drift message, nothing replaced', async () => {
    mirror.remove(BETA_X);
    mirror.add(BETA_X1);
    mirror.publish();
    const before = readFileSync(lockPath, 'utf8');
    const o = opts('default', 'cache-2');
    const { lock } = await ensureLock(o);
    const err = await failure(fetchPackages(lock, NODE_ROLES, o));
    expect(err).toBeInstanceOf(DriftError);
    console.log(`[drift message]\n${err.message}`);
    const lines = err.message.split('\n');
    expect(lines.length).toBeLessThanOrEqual(15);
    expect(err.message).toMatch(/no longer serves 1 locked package/);
    expect(err.message).toMatch(/kd-beta +1\.0-1 → 1\.0-2/);
    expect(err.message).toContain('kubedos lock update --spec drift.yaml');
    expect(o.detail.join('\n')).toMatch(/kd-beta +1\.0-1 → 1\.0-2/);
    expect(readFileSync(lockPath, 'utf8')).toBe(before);
    // Checked before any download: nothing of a half-satisfiable lock lands in the cache.
    expect(existsSync(join(LAB, 'cache-2/debs')) ? readdirSync(join(LAB, 'cache-2/debs')).filter((f) => f.endsWith('.deb')) : []).toEqual([]);
  });

  it('the default mode still builds from a cache that holds X, without asking the archive', async () => {
    await mirror.stop();
    try {
      const again = await build('default', 'cache-1', 'out-1b');
      expect(again.downloaded).toBe(0);
      expect(again.release).toBe(first.release);
    } finally {
      await mirror.start();
      apt = mirror.aptRoot();
    }
  });

  it('--frozen refuses: the lock cannot be satisfied exactly', async () => {
    const o = opts('frozen', 'cache-3');
    const { lock } = await ensureLock(o);
    const err = await failure(fetchPackages(lock, NODE_ROLES, o));
    expect(err).toBeInstanceOf(DriftError);
    expect(err.message).toMatch(/^darksite --frozen: the lock cannot be satisfied/);
    expect(err.message).toMatch(/kd-beta +1\.0-1 → 1\.0-2/);
  });

  it('--offline from the earlier cache rebuilds X identically, with the archive gone', async () => {
    await mirror.stop();
    try {
      const again = await build('offline', 'cache-1', 'out-offline');
      expect(again.lock).toEqual(first.lock);
      expect(again.release).toBe(first.release);
      expect(again.debs).toEqual(first.debs);
      expect(again.debs).toContain(mirror.filename(BETA_X));
      const err = await failure(build('offline', 'cache-empty', 'out-offline-empty'));
      expect(err.message).toMatch(/--offline: 3 locked package\(s\) are not in the cache .*kd-alpha=1\.0-1.*--from DIR/);
    } finally {
      await mirror.start();
      apt = mirror.aptRoot();
    }
  });

  it('--update moves to X+1, prints the diff and records the previous lock', async () => {
    const previous = lockDigest(first.lock);
    const r = await ensureLock(opts('update', 'cache-2'));
    expect(r.written).toBe(true);
    expect(r.diff).toEqual({ changed: [{ name: 'kd-beta', architecture: 'amd64', from: '1.0-1', to: '1.0-2' }], added: [], removed: [] });
    expect(r.previousSha256).toBe(previous);
    const lock = readLock(lockPath)!;
    expect(lock.packages.find((p) => p.name === 'kd-beta')!.version).toBe('1.0-2');
    expect(lock.previous).toEqual({ sha256: previous, reason: 'update', diff: r.diff });
    const next = await build('default', 'cache-2', 'out-2');
    expect(next.debs).toContain(mirror.filename(BETA_X1));
    expect(next.release).not.toBe(first.release);
    // The lock is carried in the darksite it built, with the trail.
    expect(JSON.parse(readFileSync(join(LAB, 'out-2/darksite.lock.json'), 'utf8')).previous.sha256).toBe(previous);
  });

  it('a list edit in the default mode keeps every locked version and adds only what is new', async () => {
    mirror.add({ name: 'kd-delta', version: '0.1-1' });
    mirror.add({ name: 'kd-gamma', version: '2:0.6-1' });
    mirror.publish();
    writeFileSync(join(lists, 'worker.list'), 'kd-delta\n');
    const r = await ensureLock(opts('default', 'cache-2'));
    expect(r.diff).toEqual({ changed: [], added: [{ name: 'kd-delta', architecture: 'amd64', version: '0.1-1' }], removed: [] });
    expect(readLock(lockPath)!.packages.find((p) => p.name === 'kd-gamma')!.version).toBe('2:0.5-1');
    expect(readLock(lockPath)!.previous?.reason).toBe('lists-changed');
    rmSync(join(lists, 'worker.list'));
    await ensureLock(opts('update', 'cache-2'));
  });
});

describe('darksite bad input: one clear line, nothing unverified cached', () => {
  it('a corrupted .deb (hash mismatch) stops the build naming the file; the cache keeps nothing of it', async () => {
    mirror.corruptFile(BETA_X1);
    try {
      const o = opts('default', 'cache-corrupt');
      const { lock } = await ensureLock(o);
      const err = await failure(fetchPackages(lock, NODE_ROLES, o));
      expect(err.message.split('\n')).toHaveLength(1);
      expect(err.message).toMatch(/served kd-beta_1\.0-2_amd64\.deb with the wrong hash or size.*nothing unverified was cached/);
      const cached = existsSync(join(LAB, 'cache-corrupt/debs')) ? readdirSync(join(LAB, 'cache-corrupt/debs')) : [];
      const beta = readLock(lockPath)!.packages.find((p) => p.name === 'kd-beta')!;
      expect(cached).not.toContain(`${beta.sha256}.deb`);
      expect(readdirSync(join(LAB, 'cache-corrupt')).filter((f) => f.startsWith('download-'))).toEqual([]);
    } finally {
      mirror.heal();
    }
  });

  it('a Release signed by a key apt does not trust stops the build', async () => {
    mirror.publish({ rogue: true });
    try {
      const err = await failure(ensureLock(opts('update', 'cache-rogue')));
      expect(err.message.split('\n')).toHaveLength(1);
      expect(err.message).toMatch(/Release signature does not verify.*nothing was cached/);
      expect(existsSync(join(LAB, 'cache-rogue/debs'))).toBe(false);
    } finally {
      mirror.publish();
    }
  });

  it('a list naming a package that does not exist is named with its file and line', async () => {
    writeFileSync(join(lists, 'lb.list'), 'kd-gamma (>= 0.1)\nkd-no-such-package\n');
    try {
      const err = await failure(ensureLock(opts('default', 'cache-2')));
      expect(err).toBeInstanceOf(PinError);
      expect(err.message.split('\n')).toHaveLength(1);
      expect(err.message).toMatch(/1 listed package\(s\) do not exist in the Debian archive .*kd-no-such-package at lb\.list:2/);
    } finally {
      writeFileSync(join(lists, 'lb.list'), 'kd-gamma (>= 0.1)\n');
    }
  });

  it('a version constraint the archive cannot meet names the line and what is offered', async () => {
    writeFileSync(join(lists, 'lb.list'), 'kd-gamma (>= 3:0)\n');
    try {
      const err = await failure(ensureLock(opts('default', 'cache-2')));
      expect(err.message).toMatch(/^lb\.list:1: kd-gamma must be \(>= 3:0\) but the archive offers 2:0\.\d-1; relax the constraint/);
    } finally {
      writeFileSync(join(lists, 'lb.list'), 'kd-gamma (>= 0.1)\n');
    }
  });

  it('a lock edited by hand into nonsense stops with one line naming the file and the fix', async () => {
    const good = readFileSync(lockPath, 'utf8');
    try {
      const lock = JSON.parse(good) as DarksiteLock;
      lock.packages[0]!.sha256 = 'not-a-hash';
      writeFileSync(lockPath, canonicalJson(lock, 2));
      let err = await failure(ensureLock(opts('default', 'cache-2')));
      expect(err.message).toMatch(new RegExp(`^${lockPath.replace(/[.]/g, '\\.')} is not a darksite lock: packages\\.0\\.sha256: .*kubedos lock update`));
      expect(err.message.split('\n')).toHaveLength(1);
      writeFileSync(lockPath, '{"packages": [');
      err = await failure(ensureLock(opts('default', 'cache-2')));
      expect(err.message).toMatch(/is not JSON .*kubedos lock update/);
    } finally {
      writeFileSync(lockPath, good);
    }
  });
});
