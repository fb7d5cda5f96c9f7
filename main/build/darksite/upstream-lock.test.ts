// The darksite lock carries upstream packages (spec.sources.apt) beside Debian's: it parses, and a
// build's darksite brought with --from gives both back to the cache, each checked by sha256.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalJson, sha256Hex } from '../../../common/canonical';
import { debCachePath, importDarksite, LOCK_FILE, readLock, upstreamPoolDir } from './index';
import type { DarksiteLock } from './pins';

const root = mkdtempSync(join(tmpdir(), 'kubedos-h13-ulock-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function darksite(dir: string, upstreamBytes: Buffer, listed = upstreamBytes): DarksiteLock {
  const deb = Buffer.from('a Debian package');
  const lock: DarksiteLock = {
    apiVersion: 'kubedos.ca/v1alpha2',
    kind: 'DarksiteLock',
    codename: 'bookworm',
    architecture: 'amd64',
    listsSha256: '0'.repeat(64),
    packages: [{ name: 'base-files', version: '12.4', architecture: 'amd64', sha256: sha256Hex(deb), size: deb.length, filename: 'base-files_12.4_amd64.deb', roles: ['worker'], source: 'debian/bookworm' }],
    upstreamSha256: '1'.repeat(64),
    upstream: [{ name: 'kubeadm', version: '1.30.2-1.1', architecture: 'amd64', sha256: sha256Hex(listed), size: listed.length, filename: 'kubeadm_1.30.2-1.1_amd64.deb', path: 'pool/kubeadm_1.30.2-1.1_amd64.deb', source: 'kubernetes' }],
  };
  mkdirSync(join(dir, 'pool/main'), { recursive: true });
  mkdirSync(join(dir, upstreamPoolDir('kubernetes')), { recursive: true });
  writeFileSync(join(dir, 'pool/main/base-files_12.4_amd64.deb'), deb);
  writeFileSync(join(dir, upstreamPoolDir('kubernetes'), 'kubeadm_1.30.2-1.1_amd64.deb'), upstreamBytes);
  writeFileSync(join(dir, LOCK_FILE), canonicalJson(lock, 2) + '\n');
  return lock;
}

describe('upstream packages in the darksite lock', () => {
  it('parse with the lock, and come back into the cache from a build (--from)', async () => {
    const ds = join(root, 'build/darksite');
    const up = Buffer.from('an upstream package');
    const lock = darksite(ds, up);
    expect(readLock(join(ds, LOCK_FILE))).toEqual(lock);
    const cacheDir = join(root, 'cache');
    const r = await importDarksite(join(root, 'build'), { lockPath: join(root, 'ws', LOCK_FILE), cacheDir });
    expect(r.imported).toBe(2);
    expect(readLock(join(root, 'ws', LOCK_FILE))!.upstream).toEqual(lock.upstream);
    expect(readFileSync(debCachePath(cacheDir, sha256Hex(up)))).toEqual(up);
  });
  it('an upstream file that is not the locked one is named and not imported', async () => {
    const ds = join(root, 'bad/darksite');
    darksite(ds, Buffer.from('altered'), Buffer.from('what the lock says'));
    const cacheDir = join(root, 'cache-bad');
    await expect(importDarksite(join(root, 'bad'), { lockPath: join(root, 'ws-bad', LOCK_FILE), cacheDir })).rejects.toThrow(/1 package\(s\) of its lock are missing or do not match their sha256: pool\/upstream\/kubernetes\/kubeadm_1\.30\.2-1\.1_amd64\.deb/);
  });
});
