import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, openSync, writeSync, closeSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ArtifactCache, inputsKey, place, readPlaced, writePlaced } from './cache';

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
