// N → N+1 moves a declared upstream package, through the commands a user runs (issue 18): lab-3
// declares a vendor apt repository on loopback (e2e/sources/apt-standin.ts) whose package is
// installed on every role (spec.sources.apt installOn). `kubedos build darksite` of N locks
// kubedos-standin 1.0; the repository then serves 1.1 only (1.0 dropped); `kubedos lock update
// --source standin` moves that source alone (the Debian part of the lock is not resolved: this
// machine's lab never depends on a moving Debian archive), and `kubedos build darksite` of N+1 has
// 1.1 in its darksite; the two builds' signed SBOMs differ by exactly `kubedos-standin 1.0 → 1.1`,
// as `kubedos upgrade` prints it (main/upgrade/sbom-diff.ts). Every role's payload asks its
// installer for the package (pkgsel/include); the image build installs it with dpkg (the VM test
// e2e/upgrade/upgrade-vm.slow.test.ts reads it on the nodes).
//
// The Debian part of the lock is a one-package closure made here (a .deb built with dpkg-deb, in the
// cache by its sha256) with the lists' digest of payload/packages, so no build asks the archive.
// Its own workspace and cache under a temp dir (never the lab's shared build cache). ~20 s.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { canonicalJson, sha256Hex } from '../../common/canonical';
import { NODE_ROLES, parseSpec, TEMPLATES } from '../../common/spec/index';
import { debCachePath, readLists, readLock } from '../../main/build/darksite/index';
import type { DarksiteLock } from '../../main/build/darksite/pins';
import { renderDiff } from '../../main/build/darksite/pins';
import { diffSboms, SbomDocument } from '../../main/upgrade/sbom-diff';
import { AptStandin, STANDIN_PACKAGE } from './apt-standin';

const REPO = join(__dirname, '../..');
const root = mkdtempSync(join(tmpdir(), 'kubedos-h19p-upmove-'));
const ws = join(root, 'ws');
const cache = join(root, 'cache');
const lockPath = join(ws, 'clusters/lab-3/darksite.lock.json');
const env: NodeJS.ProcessEnv = { ...process.env, KUBEDOS_WORKSPACE: ws, KUBEDOS_CACHE: cache, SOURCE_DATE_EPOCH: '1700000000' };
delete env.KUBEDOS_PAYLOAD_DIR;
delete env.KUBEDOS_AGE_IDENTITY_FILE;
const standin = new AptStandin(root);
const ROLES = ['master', 'control-plane', 'worker'];
let spec = '';

function kubedos(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(REPO, 'bin/kubedos.mjs'), ...args], { cwd: root, env, encoding: 'utf8', timeout: 10 * 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function lock(): DarksiteLock {
  return readLock(lockPath)!;
}

function sbom(dir: string): SbomDocument {
  return SbomDocument.parse(JSON.parse(readFileSync(join(dir, 'sbom.cdx.json'), 'utf8')));
}

beforeAll(async () => {
  standin.publish('1.0', 'kubedos-lab-base (>= 1)');
  const base = await standin.start();
  expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  const doc = parse(TEMPLATES['lab-3'].text) as { spec: Record<string, unknown> };
  doc.spec.sources = { apt: [standin.source('standin', ROLES)] };
  const text = stringify(doc);
  expect(parseSpec(text).spec, 'the spec with a declared apt source parses').toBeDefined();
  spec = join(root, 'lab-3.yaml');
  writeFileSync(spec, text);
  // The Debian part: one package every role takes, in the cache by its sha256.
  const pkg = join(root, 'lab-base');
  mkdirSync(join(pkg, 'DEBIAN'), { recursive: true });
  writeFileSync(join(pkg, 'DEBIAN/control'), 'Package: kubedos-lab-base\nVersion: 1.2\nArchitecture: all\nMaintainer: lab <lab@test.invalid>\nDescription: the Debian part of this lab\'s lock\n');
  const deb = join(root, 'kubedos-lab-base_1.2_all.deb');
  execFileSync('dpkg-deb', ['--root-owner-group', '--build', pkg, deb], { stdio: 'ignore' });
  const bytes = readFileSync(deb);
  mkdirSync(join(cache, 'debs'), { recursive: true });
  writeFileSync(debCachePath(cache, sha256Hex(bytes)), bytes);
  const debian: DarksiteLock = {
    apiVersion: 'kubedos.ca/v1alpha2',
    kind: 'DarksiteLock',
    codename: 'bookworm',
    architecture: 'amd64',
    listsSha256: readLists(join(REPO, 'payload/packages')).sha256,
    packages: [{ name: 'kubedos-lab-base', version: '1.2', architecture: 'all', sha256: sha256Hex(bytes), size: bytes.length, filename: 'kubedos-lab-base_1.2_all.deb', roles: [...NODE_ROLES], source: 'debian/bookworm' }],
  };
  mkdirSync(join(lockPath, '..'), { recursive: true });
  writeFileSync(lockPath, canonicalJson(debian, 2) + '\n');
}, 120_000);

afterAll(() => {
  standin.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('a declared upstream package moves N → N+1 through kubedos lock update --source', () => {
  it('N: the build locks kubedos-standin 1.0, puts it in the darksite, and every role\'s installer asks for it', () => {
    const r = kubedos(['build', 'darksite', '--spec', spec, '--out', join(root, 'build-N')]);
    expect(r.status, r.stderr.slice(-3000)).toBe(0);
    expect(lock().upstream?.map((p) => [p.source, p.name, p.version])).toEqual([['standin', STANDIN_PACKAGE, '1.0']]);
    expect(existsSync(join(root, 'build-N/darksite/pool/upstream/standin/kubedos-standin_1.0_all.deb'))).toBe(true);
    for (const role of ROLES) {
      const preseed = readFileSync(join(root, `build-N/payload/${role}/preseed.cfg`), 'utf8');
      expect(/^d-i pkgsel\/include string (.*)$/m.exec(preseed)?.[1]?.split(' '), role).toContain(STANDIN_PACKAGE);
    }
    expect(sbom(join(root, 'build-N')).components.find((c) => c.name === STANDIN_PACKAGE)?.version).toBe('1.0');
  });

  it('the repository moves to 1.1 (1.0 dropped): --source of an undeclared source is refused, nothing written', () => {
    standin.publish('1.1', 'kubedos-lab-base (>= 1)');
    const before = readFileSync(lockPath, 'utf8');
    const r = kubedos(['lock', 'update', '--spec', spec, '--source', 'vendor']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('--source vendor: spec.sources.apt declares no such source (it declares standin); nothing was resolved');
    expect(readFileSync(lockPath, 'utf8')).toBe(before);
  });

  it('kubedos lock update --source standin moves only kubedos-standin 1.0 → 1.1; the Debian part stays as locked', () => {
    const before = lock();
    const r = kubedos(['lock', 'update', '--spec', spec, '--source', 'standin']);
    expect(r.status, r.stderr.slice(-3000)).toBe(0);
    expect(r.stdout).toMatch(/^ {2}~ kubedos-standin\s+1\.0 → 1\.1$/m);
    expect(r.stdout).toContain('lab-3: Debian packages not resolved (--source standin): 1 package kept at their locked versions');
    const after = lock();
    expect(after.packages).toEqual(before.packages);
    expect(after.listsSha256).toBe(before.listsSha256);
    expect(after.upstream?.map((p) => [p.name, p.version])).toEqual([[STANDIN_PACKAGE, '1.1']]);
    expect(after.previous).toMatchObject({ reason: 'update', diff: { changed: [{ name: STANDIN_PACKAGE, from: '1.0', to: '1.1' }], added: [], removed: [] } });
  });

  it('N+1: the build has 1.1 in its darksite (not 1.0), and its SBOM differs from N\'s by kubedos-standin 1.0 → 1.1 alone', () => {
    const r = kubedos(['build', 'darksite', '--spec', spec, '--out', join(root, 'build-N1')]);
    expect(r.status, r.stderr.slice(-3000)).toBe(0);
    expect(readdirSync(join(root, 'build-N1/darksite/pool/upstream/standin'))).toEqual(['kubedos-standin_1.1_all.deb']);
    const index = readFileSync(join(root, 'build-N1/darksite/dists/bookworm/main/binary-amd64/Packages'), 'utf8');
    expect(index).toMatch(/^Package: kubedos-standin\nArchitecture: all\nVersion: 1\.1$/m);
    const diff = diffSboms(sbom(join(root, 'build-N')), sbom(join(root, 'build-N1')));
    expect(diff.packages).toEqual({ added: [], removed: [], changed: [{ name: STANDIN_PACKAGE, architecture: 'all', from: '1.0', to: '1.1' }] });
    expect(renderDiff(diff.packages)).toEqual([`  ~ ${STANDIN_PACKAGE.padEnd(28)} 1.0 → 1.1`]);
  });
});
