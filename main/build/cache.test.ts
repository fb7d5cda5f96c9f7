import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, openSync, writeSync, closeSync, existsSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ArtifactCache, inputsKey, place, readPlaced, writePlaced } from './cache';
import { ensureFreeSpace, freeBytesAt, NotEnoughSpace } from './files';

const root = mkdtempSync(join(tmpdir(), 'kubedos-cache-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function built(name: string, content: string): string {
  const d = join(root, 'scratch', name);
  mkdirSync(join(d, 'sub'), { recursive: true });
  writeFileSync(join(d, 'sub/a.bin'), content);
  return d;
}

describe('artifact cache', () => {
  it('keys by canonical inputs (key order does not matter, values do)', () => {
    expect(inputsKey('iso', { a: 1, b: [1, 2] })).toBe(inputsKey('iso', { b: [1, 2], a: 1 }));
    expect(inputsKey('iso', { a: 1 })).not.toBe(inputsKey('iso', { a: 2 }));
    expect(inputsKey('iso', { a: 1 })).not.toBe(inputsKey('image', { a: 1 }));
  });

  it('stores, finds, and discards an entry whose file was corrupted (never returns it)', async () => {
    const logs: string[] = [];
    const cache = new ArtifactCache(join(root, 'c1'), (l) => logs.push(l));
    const key = inputsKey('t', { n: 1 });
    expect(await cache.lookup(key)).toBeUndefined();
    const e = await cache.store(key, 't', built('one', 'hello'));
    expect(e.files).toEqual([{ path: 'sub/a.bin', sha256: '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824', size: 5 }]);
    expect((await cache.lookup(key))?.files).toEqual(e.files);
    // Flip one byte in place.
    const fd = openSync(join(e.dir, 'sub/a.bin'), 'r+');
    writeSync(fd, 'j', 0);
    closeSync(fd);
    expect(await cache.lookup(key)).toBeUndefined();
    expect(logs.join('\n')).toMatch(/corrupted .*sub\/a\.bin has sha256/);
    expect(existsSync(e.dir)).toBe(false);
  });

  it('places files once and re-copies only what changed in the output directory', async () => {
    const cache = new ArtifactCache(join(root, 'c2'));
    const e = await cache.store(inputsKey('t', { n: 2 }), 't', built('two', 'payload'));
    const out = join(root, 'out');
    const state = readPlaced(out);
    expect(place(e, out, 'x', state)).toBe(1);
    expect(place(e, out, 'x', state)).toBe(0);
    writeFileSync(join(out, 'x/sub/a.bin'), 'tampered');
    expect(place(e, out, 'x', state)).toBe(1);
    expect(readFileSync(join(out, 'x/sub/a.bin'), 'utf8')).toBe('payload');
    writePlaced(out, state);
    expect(Object.keys(readPlaced(out).files)).toEqual(['x/sub/a.bin']);
  });
});

describe('roleOfOutput', () => {
  it('names the role of ISOs, images and payload trees, including roles with a hyphen', async () => {
    const { roleOfOutput } = await import('./index');
    expect(roleOfOutput('images/lab-3-control-plane.qcow2', 'lab-3')).toBe('control-plane');
    expect(roleOfOutput('images/lab-3-master.qcow2', 'lab-3')).toBe('master');
    expect(roleOfOutput('iso/lab-3-worker.iso', 'lab-3')).toBe('worker');
    expect(roleOfOutput('payload/lb/preseed.cfg', 'lab-3')).toBe('lb');
    expect(roleOfOutput('darksite/dists/bookworm/Release', 'lab-3')).toBeUndefined();
    expect(roleOfOutput('images/other-master.qcow2', 'lab-3')).toBeUndefined();
  });
});

describe('cache eviction', () => {
  it('lists entries least recently used first; a hit makes an entry the most recent', async () => {
    const cache = new ArtifactCache(join(root, 'lru'));
    const keys = [1, 2, 3].map((n) => inputsKey('t', { lru: n }));
    for (const [i, k] of keys.entries()) {
      await cache.store(k, `kind${i}`, built(`lru${i}`, 'x'.repeat(100 * (i + 1))));
      const rec = join(root, 'lru/artifacts', k.slice(0, 2), k, 'entry.json');
      utimesSync(rec, new Date(1_000_000 + i * 1000), new Date(1_000_000 + i * 1000));
    }
    expect(cache.entries().map((e) => e.key)).toEqual(keys);
    expect(cache.entries().map((e) => e.bytes)).toEqual([100, 200, 300]);
    await cache.lookup(keys[0]!); // used now
    expect(cache.entries().map((e) => e.key)).toEqual([keys[1], keys[2], keys[0]]);
  });

  it('prunes by age, then by size, oldest first; dry run removes nothing; dead builds\' scratch goes', async () => {
    const cache = new ArtifactCache(join(root, 'prune'));
    const keys = [1, 2, 3, 4].map((n) => inputsKey('t', { prune: n }));
    for (const [i, k] of keys.entries()) {
      await cache.store(k, 't', built(`p${i}`, 'y'.repeat(1000)));
      utimesSync(join(root, 'prune/artifacts', k.slice(0, 2), k, 'entry.json'), new Date(i * 10_000), new Date(i * 10_000));
    }
    const now = 40_000;
    // Scratch of a process that is gone (pid 2^22+1 exceeds pid_max's default) and of this one.
    mkdirSync(join(root, 'prune/tmp/image-work-worker-4194305/rootfs'), { recursive: true });
    const mine = cache.scratch('image-work-master');
    mkdirSync(mine, { recursive: true });

    const dry = cache.prune({ olderThanMs: 25_000, dryRun: true, now });
    expect(dry.removed.map((e) => e.key)).toEqual(keys.slice(0, 2));
    expect(dry.scratchRemoved).toEqual(['image-work-worker-4194305']);
    expect(cache.entries()).toHaveLength(4);

    const byAge = cache.prune({ olderThanMs: 25_000, now });
    expect(byAge.removed.map((e) => e.key)).toEqual(keys.slice(0, 2));
    expect(byAge.keptBytes).toBe(2000);
    expect(existsSync(join(root, 'prune/tmp/image-work-worker-4194305'))).toBe(false);
    expect(existsSync(mine)).toBe(true);
    expect(await cache.lookup(keys[0]!)).toBeUndefined();

    const bySize = cache.prune({ maxBytes: 1500, now });
    expect(bySize.removed.map((e) => e.key)).toEqual([keys[2]]);
    expect(cache.entries().map((e) => e.key)).toEqual([keys[3]]);
    expect(await cache.lookup(keys[3]!)).toBeDefined();
  });
});

describe('free space', () => {
  it('refuses a step that needs more than the disk has, naming the step, the place and what to do', () => {
    const fake = (): number => 1.5 * 1024 ** 3;
    expect(() => ensureFreeSpace('/some/cache', 4.5 * 1024 ** 3, 'building the worker image', fake)).toThrow(
      'building the worker image needs about 4.5 GiB free under /some/cache; the filesystem has 1.5 GiB',
    );
    try {
      ensureFreeSpace('/some/cache', 4.5 * 1024 ** 3, 'x', fake);
    } catch (err) {
      expect(err).toBeInstanceOf(NotEnoughSpace);
      expect((err as NotEnoughSpace).hint).toMatch(/kubedos cache prune --max-size/);
    }
    expect(() => ensureFreeSpace('/some/cache', 1024 ** 3, 'x', fake)).not.toThrow();
  });

  it('reads the free space of the nearest existing parent', () => {
    expect(freeBytesAt(join(root, 'does/not/exist/yet'))).toBeGreaterThan(0);
  });
});
