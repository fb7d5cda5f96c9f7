// `kubedos lock update --source NAME` (ensureUpstream's `only`): what it refuses before any
// repository is asked (the move itself runs against a loopback repository in
// e2e/sources/upstream-move.lab.test.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PinError } from '../darksite/pins';
import type { DarksiteLock } from '../darksite/pins';
import { declarationSha256, ensureUpstream } from './apt';

const root = mkdtempSync(join(tmpdir(), 'kd-apt-only-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// Port 9 (discard) on loopback: any request would fail, so a refusal here asked nothing.
const source = (name: string, packages = ['vendor-agent']) => ({ name, url: 'http://127.0.0.1:9/repo', suite: 'stable', components: ['main'], signedBy: 'A'.repeat(40), key: 'http://127.0.0.1:9/repo/key.asc', packages });
const declared = [source('vendor'), source('other', ['other-agent'])];
const lock: DarksiteLock = {
  apiVersion: 'kubedos.ca/v1alpha2',
  kind: 'DarksiteLock',
  codename: 'bookworm',
  architecture: 'amd64',
  listsSha256: '0'.repeat(64),
  packages: [{ name: 'base-files', version: '12.4', architecture: 'amd64', sha256: 'b'.repeat(64), size: 1, filename: 'base-files_12.4_amd64.deb', roles: ['worker'], source: 'debian/bookworm' }],
  upstreamSha256: declarationSha256(declared),
  upstream: [{ name: 'vendor-agent', version: '1.0', architecture: 'all', sha256: 'c'.repeat(64), size: 1, filename: 'vendor-agent_1.0_all.deb', path: 'pool/vendor-agent_1.0_all.deb', source: 'vendor' }],
};
const opts = (over: Partial<Parameters<typeof ensureUpstream>[1]>) => ({ lock, lockPath: join(root, 'darksite.lock.json'), cacheDir: join(root, 'cache'), mode: 'update' as const, ...over });

describe('ensureUpstream with only (kubedos lock update --source)', () => {
  it('refuses a source spec.sources.apt does not declare, naming the declared ones', async () => {
    const err = await ensureUpstream(declared, opts({ only: ['vendr'] })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PinError);
    expect((err as Error).message).toBe('--source vendr: spec.sources.apt declares no such source (it declares vendor, other); nothing was resolved');
  });

  it('refuses when the declaration is not the locked one: the other sources could not be kept as they are', async () => {
    const edited = [source('vendor', ['vendor-agent', 'vendor-cli']), source('other', ['other-agent'])];
    await expect(ensureUpstream(edited, opts({ only: ['vendor'], acceptCommand: 'kubedos lock update --spec lab.yaml' }))).rejects.toThrow(
      /^--source vendor: spec\.sources\.apt is not the declaration the lock was resolved from \(.+\), so the other sources' locked packages cannot be kept as they are; nothing was resolved\. Resolve every source with: kubedos lock update --spec lab\.yaml/,
    );
  });

  it('is a lock update only: a build mode with only is refused', async () => {
    await expect(ensureUpstream(declared, opts({ mode: 'default', only: ['vendor'] }))).rejects.toThrow('moving only some apt sources (vendor) is a lock update (kubedos lock update --source NAME); this run\'s mode is default');
  });
});
