// Declared upstream sources against loopback stand-ins (this machine reaches no upstream host):
// a real apt repository (a .deb built here with dpkg-deb, indexed by apt-ftparchive, InRelease
// clearsigned with a test ed25519 key) and a plain file, served by python3's http.server on
// 127.0.0.1 (started and stopped by PID). A wrong signing key and a wrong file hash are refused
// by name and leave nothing in the cache; an unreachable source is refused; a pinned file is then
// served from the content-addressed cache without the network.
// The declared apt source's packages then go the whole way: resolved from the verified index into
// the darksite lock, cached by content, placed in a signed darksite that apt (private config, no
// network) reads; a changed version, a wrong .deb hash and a wrong key are each refused by name.
// Images through Debian's docker-registry: images.lab.test.ts.
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../common/canonical';
import { contentPath, fetchFileSource, fetchInRelease } from '../../main/build/sources/fetch';
import { ensureUpstream } from '../../main/build/sources/apt';
import { pullImage } from '../../main/build/sources/oci';
import { SourceVerifyError } from '../../main/build/sources/verify';
import { lockDigest, readLock, writeRepository } from '../../main/build/darksite/index';
import type { DarksiteLock } from '../../main/build/darksite/pins';
import { DriftError } from '../../main/build/darksite/pins';

const root = mkdtempSync(join(tmpdir(), 'kubedos-h13-sources-'));
const served = join(root, 'www');
const cacheDir = join(root, 'cache');
const gnupg = join(root, 'gnupg');
let server: ChildProcess | undefined;
let base = '';
let fingerprint = '';
let keyring: Buffer;
const FILE = Buffer.from('a chart or a CLI tarball stand-in\n');

const gpg = (args: string[], input?: string): Buffer =>
  execFileSync('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { env: { ...process.env, GNUPGHOME: gnupg, LC_ALL: 'C' }, input, stdio: ['pipe', 'pipe', 'pipe'] });

/** (Re)publish the repository with one version of the stand-in package; returns the .deb path. */
function buildRepo(version = '1.0'): string {
  const pkg = join(root, `pkg-${version}`);
  mkdirSync(join(pkg, 'DEBIAN'), { recursive: true });
  mkdirSync(join(pkg, 'usr/share/doc/kubedos-standin'), { recursive: true });
  writeFileSync(join(pkg, 'DEBIAN/control'), `Package: kubedos-standin\nVersion: ${version}\nArchitecture: all\nMaintainer: lab <lab@test.invalid>\nDepends: base-files\nDescription: upstream stand-in\n`);
  writeFileSync(join(pkg, 'usr/share/doc/kubedos-standin/README'), `stand-in ${version}\n`);
  const repo = join(served, 'repo');
  rmSync(repo, { recursive: true, force: true });
  const pool = join(repo, 'pool');
  const dist = join(repo, 'dists/stable');
  mkdirSync(pool, { recursive: true });
  mkdirSync(join(dist, 'main/binary-amd64'), { recursive: true });
  const deb = join(pool, `kubedos-standin_${version}_all.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', '--build', pkg, deb], { stdio: 'ignore' });
  const packages = execFileSync('apt-ftparchive', ['packages', 'pool'], { cwd: repo });
  writeFileSync(join(dist, 'main/binary-amd64/Packages'), packages);
  const release = execFileSync('apt-ftparchive', ['-o', 'APT::FTPArchive::Release::Suite=stable', '-o', 'APT::FTPArchive::Release::Components=main', 'release', dist]);
  writeFileSync(join(dist, 'InRelease'), gpg(['--clearsign', '--local-user', fingerprint], release.toString()));
  writeFileSync(join(repo, 'key.asc'), gpg(['--armor', '--export', fingerprint]));
  return deb;
}

beforeAll(async () => {
  mkdirSync(served, { recursive: true });
  mkdirSync(gnupg, { mode: 0o700 });
  chmodSync(gnupg, 0o700);
  gpg(['--quick-generate-key', 'Upstream stand-in <upstream@test.invalid>', 'ed25519', 'sign', 'never']);
  fingerprint = gpg(['--with-colons', '--list-secret-keys']).toString().split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9]!;
  keyring = gpg(['--export', fingerprint]);
  buildRepo();
  writeFileSync(join(served, 'chart.tgz'), FILE);
  server = spawn('/usr/bin/python3', ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', served], { stdio: ['ignore', 'pipe', 'pipe'] });
  base = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('http.server did not start in 10 s')), 10_000);
    server!.stdout!.on('data', (d: Buffer) => {
      const m = /port (\d+)/.exec(d.toString());
      if (m) {
        clearTimeout(t);
        resolve(`http://127.0.0.1:${m[1]}`);
      }
    });
  });
}, 60_000);

afterAll(() => {
  if (server?.pid) process.kill(server.pid, 'SIGTERM');
  try {
    execFileSync('gpgconf', ['--homedir', gnupg, '--kill', 'gpg-agent'], { stdio: 'ignore' });
  } catch {
    /* no agent */
  }
  rmSync(root, { recursive: true, force: true });
});

const apt = (signedBy: string) => ({ name: 'standin-apt', url: `${base}/repo`, suite: 'stable', components: ['main'], signedBy, packages: ['kubedos-standin'] });
const cached = () => (existsSync(join(cacheDir, 'sha256')) ? readdirSync(join(cacheDir, 'sha256')).sort() : []);

describe('declared sources on loopback stand-ins', () => {
  it('a signed apt repository: the pinned key is accepted and the InRelease cached by content', async () => {
    const r = await fetchInRelease(apt(fingerprint), keyring, { cacheDir });
    expect(r.primaryKey).toBe(fingerprint);
    expect(cached()).toEqual([r.sha256]);
  });
  it('a wrong signing key is refused by name, and nothing more is cached', async () => {
    const before = cached();
    const wrong = 'ABCDEF0123456789ABCDEF0123456789ABCDEF01';
    await expect(fetchInRelease(apt(wrong), keyring, { cacheDir: join(root, 'cache-wrong-key') })).rejects.toThrow(`apt source standin-apt (${base}/repo stable): InRelease is signed by ${fingerprint}, the spec pins ${wrong}; the repository's key changed; nothing was cached`);
    expect(existsSync(join(root, 'cache-wrong-key', 'sha256'))).toBe(false);
    expect(cached()).toEqual(before);
  });
  it('a wrong file hash is refused by name and never cached; the right one is, then served without the network', async () => {
    const pinned = sha256Hex(FILE);
    const bad = '1'.repeat(64);
    await expect(fetchFileSource({ name: 'chart', url: `${base}/chart.tgz`, sha256: bad }, { cacheDir })).rejects.toThrow(`file source chart (${base}/chart.tgz): sha256 expected ${bad}, found ${pinned}; nothing was cached`);
    expect(cached()).not.toContain(bad);
    expect(cached()).not.toContain(pinned);
    const first = await fetchFileSource({ name: 'chart', url: `${base}/chart.tgz`, sha256: pinned }, { cacheDir });
    expect(first).toMatchObject({ cached: false, path: contentPath(cacheDir, pinned) });
    const offline = await fetchFileSource({ name: 'chart', url: 'http://127.0.0.1:9/unreachable', sha256: pinned }, { cacheDir });
    expect(offline.cached).toBe(true);
    expect((await fetchFileSource({ name: 'chart', url: `${base}/chart.tgz`, sha256: pinned }, { cacheDir, offline: true })).cached).toBe(true);
    // --offline with a cache that lacks it: refused naming the hash, no request made (the URL is served).
    const empty = join(root, 'cache-offline');
    await expect(fetchFileSource({ name: 'chart', url: `${base}/chart.tgz`, sha256: pinned }, { cacheDir: empty, offline: true })).rejects.toThrow(`file source chart (${base}/chart.tgz): --offline and the cache ${empty} does not hold sha256 ${pinned}; nothing was fetched`);
    expect(existsSync(empty)).toBe(false);
  });
  it('an unreachable source (file, apt repository, image registry) is refused naming it; nothing is cached', async () => {
    // A loopback port nobody listens on: bound, then closed.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const url = `http://127.0.0.1:${port}/x.tgz`;
    await expect(fetchFileSource({ name: 'gone', url, sha256: '2'.repeat(64) }, { cacheDir, timeoutMs: 5_000 })).rejects.toThrow(`source gone: ${url} is unreachable (ECONNREFUSED); nothing was cached`);
    const goneCache = join(root, 'cache-gone');
    const aptGone = { name: 'gone-apt', url: `http://127.0.0.1:${port}/repo`, suite: 'stable', components: ['main'], signedBy: fingerprint, key: `http://127.0.0.1:${port}/repo/key.asc`, packages: ['kubedos-standin'] };
    const lockPath = join(root, 'ws-gone', 'darksite.lock.json');
    const lock = { apiVersion: 'kubedos.ca/v1alpha2', kind: 'DarksiteLock', codename: 'bookworm', architecture: 'amd64', listsSha256: '0'.repeat(64), packages: [] } as DarksiteLock;
    const err = await ensureUpstream([aptGone], { lock, lockPath, cacheDir: goneCache, mode: 'default' }).catch((e: unknown) => e);
    expect((err as Error).message).toBe(`source gone-apt: http://127.0.0.1:${port}/repo/key.asc is unreachable (ECONNREFUSED); nothing was cached`);
    expect(err).toBeInstanceOf(SourceVerifyError);
    expect((err as SourceVerifyError).hint).toMatch(/kubedos build --offline/);
    await expect(pullImage({ name: 'gone-image', reference: `127.0.0.1:${port}/kubedos/pause:3.9`, digest: `sha256:${'3'.repeat(64)}` }, { cacheDir: goneCache })).rejects.toThrow(
      `image source gone-image: http://127.0.0.1:${port}/v2/kubedos/pause/manifests/3.9 is unreachable (ECONNREFUSED); nothing was cached`,
    );
    expect(existsSync(goneCache)).toBe(false);
    expect(existsSync(lockPath)).toBe(false);
  });
});

describe('upstream apt packages into the darksite lock and repository', () => {
  const debianLock = (names: string[]): DarksiteLock => ({
    apiVersion: 'kubedos.ca/v1alpha2',
    kind: 'DarksiteLock',
    codename: 'bookworm',
    architecture: 'amd64',
    listsSha256: '0'.repeat(64),
    packages: names.map((name) => ({ name, version: '1', architecture: 'amd64', sha256: 'f'.repeat(64), size: 1, filename: `${name}_1_amd64.deb`, roles: ['worker'], source: 'debian/bookworm' })),
  });
  const withKey = (signedBy: string, key = `${base}/repo/key.asc`) => ({ ...apt(signedBy), key });
  const lockPath = (): string => join(root, 'ws', 'darksite.lock.json');
  const debs = (dir: string): string[] => (existsSync(join(dir, 'debs')) ? readdirSync(join(dir, 'debs')).sort() : []);
  let firstSha = '';

  it('resolves the declared package from the verified index into the lock and the cache, then into a signed darksite apt reads offline', async () => {
    const deb = buildRepo('1.0');
    firstSha = sha256Hex(readFileSync(deb));
    const cache = join(root, 'up-cache');
    const r = await ensureUpstream([withKey(fingerprint)], { lock: debianLock(['base-files']), lockPath: lockPath(), cacheDir: cache, mode: 'default' });
    expect(r.written).toBe(true);
    expect(r.downloaded).toBe(1);
    expect(r.packages).toEqual([{ name: 'kubedos-standin', version: '1.0', architecture: 'all', sha256: firstSha, size: readFileSync(deb).length, filename: 'kubedos-standin_1.0_all.deb', path: 'pool/kubedos-standin_1.0_all.deb', source: 'standin-apt', depends: 'base-files' }]);
    const lock = readLock(lockPath())!;
    expect(lock.upstream).toEqual(r.packages);
    expect(lock.packages.map((p) => p.name)).toEqual(['base-files']);
    expect(debs(cache)).toEqual([`${firstSha}.deb`]);
    // Again: from the cache, nothing downloaded, the lock untouched.
    const again = await ensureUpstream([withKey(fingerprint)], { lock, lockPath: lockPath(), cacheDir: cache, mode: 'default' });
    expect(again).toMatchObject({ written: false, downloaded: 0, reused: 1 });
    // The darksite: signed with its own key, the package in its index, found by apt with no network.
    const dsHome = join(root, 'ds-gnupg');
    mkdirSync(dsHome, { mode: 0o700 });
    const dsGpg = (args: string[]): Buffer => execFileSync('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { env: { ...process.env, GNUPGHOME: dsHome, LC_ALL: 'C' }, stdio: ['pipe', 'pipe', 'pipe'] });
    // Made before the darksite's SOURCE_DATE_EPOCH (the repository is signed at that time).
    dsGpg(['--faked-system-time', '1600000000!', '--quick-generate-key', 'Darksite <ds@test.invalid>', 'ed25519', 'sign', 'never']);
    const dsFpr = dsGpg(['--with-colons', '--list-secret-keys']).toString().split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9]!;
    const out = join(root, 'darksite');
    await writeRepository({ outDir: out, packages: [], upstream: r.packages, lock, cacheDir: cache, key: { gnupgHome: dsHome, fingerprint: dsFpr, publicKeyring: dsGpg(['--export', dsFpr]) }, sourceDateEpoch: 1_700_000_000, label: 'h13' });
    const index = readFileSync(join(out, 'dists/bookworm/main/binary-amd64/Packages'), 'utf8');
    expect(index).toContain('Package: kubedos-standin\n');
    expect(index).toContain(`Filename: pool/upstream/standin-apt/kubedos-standin_1.0_all.deb\n`);
    expect(index).toContain(`SHA256: ${firstSha}\n`);
    expect((JSON.parse(readFileSync(join(out, 'darksite.lock.json'), 'utf8')) as DarksiteLock).upstream).toEqual(r.packages);
    const aptDir = join(root, 'apt');
    for (const d of ['lists/partial', 'archives/partial', 'etc']) mkdirSync(join(aptDir, d), { recursive: true });
    writeFileSync(join(aptDir, 'status'), '');
    writeFileSync(join(aptDir, 'etc/sources.list'), `deb [signed-by=${join(out, 'kubedos-archive-keyring.gpg')}] file:${out} bookworm main\n`);
    const o = (k: string, v: string): string[] => ['-o', `${k}=${v}`];
    const cfg = [
      ...o('Dir::Etc::sourcelist', join(aptDir, 'etc/sources.list')), ...o('Dir::Etc::sourceparts', '-'), ...o('Dir::Etc::preferencesparts', join(aptDir, 'etc')),
      ...o('Dir::State', aptDir), ...o('Dir::State::lists', join(aptDir, 'lists')), ...o('Dir::State::status', join(aptDir, 'status')), ...o('Dir::Cache', aptDir),
      ...o('Dir::Cache::archives', join(aptDir, 'archives')), ...o('Debug::NoLocking', '1'), ...o('APT::Architecture', 'amd64'), ...o('APT::Sandbox::User', 'root'), ...o('Acquire::Languages', 'none'),
    ];
    execFileSync('apt-get', [...cfg, '-q', 'update', '-o', 'APT::Update::Error-Mode=any'], { stdio: 'pipe' });
    const uris = execFileSync('apt-get', [...cfg, '-q', 'download', '--print-uris', 'kubedos-standin'], { encoding: 'utf8' });
    // apt names the file in the darksite with the hash the signed index gives it (SHA512 here).
    expect(uris.trim()).toBe(`'file:${out}/pool/upstream/standin-apt/kubedos-standin_1.0_all.deb' kubedos-standin_1.0_all.deb ${readFileSync(deb).length} SHA512:${createHash('sha512').update(readFileSync(deb)).digest('hex')}`);
  });

  it('a changed upstream version is refused by name under the lock; --update accepts it and records the diff', async () => {
    const deb = buildRepo('1.1');
    const fresh = join(root, 'up-cache-drift');
    const lock = readLock(lockPath())!;
    const err = await ensureUpstream([withKey(fingerprint)], { lock, lockPath: lockPath(), cacheDir: fresh, mode: 'default' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DriftError);
    expect((err as Error).message).toMatch(/^darksite \(upstream apt sources\) drift: the archive no longer serves 1 locked package version\(s\)/);
    expect((err as Error).message).toMatch(/kubedos-standin\s+1\.0 → 1\.1/);
    expect(debs(fresh)).toEqual([]);
    expect(readLock(lockPath())).toEqual(lock);
    const up = await ensureUpstream([withKey(fingerprint)], { lock, lockPath: lockPath(), cacheDir: fresh, mode: 'update' });
    expect(up.written).toBe(true);
    expect(up.diff!.changed).toEqual([{ name: 'kubedos-standin', architecture: 'all', from: '1.0', to: '1.1' }]);
    const next = readLock(lockPath())!;
    expect(next.upstream![0]!.sha256).toBe(sha256Hex(readFileSync(deb)));
    expect(next.previous).toMatchObject({ reason: 'update', sha256: lockDigest(lock) });
    expect(debs(fresh)).toEqual([`${sha256Hex(readFileSync(deb))}.deb`]);
    // offline: the cache or nothing, never the network.
    expect(await ensureUpstream([withKey(fingerprint)], { lock: next, lockPath: lockPath(), cacheDir: fresh, mode: 'offline' })).toMatchObject({ written: false, downloaded: 0, reused: 1 });
    await expect(ensureUpstream([withKey(fingerprint)], { lock: next, lockPath: lockPath(), cacheDir: join(root, 'up-cache-empty'), mode: 'offline' })).rejects.toThrow(/^darksite --offline: 1 locked upstream package\(s\) are not in the cache .*: kubedos-standin=1\.1 \(standin-apt\)\./);
    // frozen: a declaration that is not the locked one cannot be resolved.
    await expect(ensureUpstream([{ ...withKey(fingerprint), packages: ['kubedos-standin', 'other'] }], { lock: next, lockPath: lockPath(), cacheDir: fresh, mode: 'frozen' })).rejects.toThrow(/^--frozen: spec\.sources\.apt changed since the lock was resolved/);
  });

  it('a .deb whose bytes are not the signed index\'s is refused by name; nothing is cached', async () => {
    const deb = buildRepo('1.2');
    writeFileSync(deb, Buffer.concat([readFileSync(deb), Buffer.from('tampered')]));
    const cache = join(root, 'up-cache-bad');
    await expect(ensureUpstream([withKey(fingerprint)], { lock: debianLock(['base-files']), lockPath: join(root, 'ws-bad', 'darksite.lock.json'), cacheDir: cache, mode: 'default' })).rejects.toThrow(
      new RegExp(`^apt source standin-apt: ${base.replace(/[.:/]/g, '\\$&')}/repo/pool/kubedos-standin_1\\.2_all\\.deb has sha256 [0-9a-f]{64} \\(\\d+ bytes\\), the signed index says [0-9a-f]{64} \\(\\d+ bytes\\); nothing was cached$`),
    );
    expect(debs(cache)).toEqual([]);
    expect(existsSync(join(root, 'ws-bad', 'darksite.lock.json'))).toBe(false);
  });

  it('a key that is not the pinned one, and a dependency nobody provides, are refused by name; nothing is cached', async () => {
    buildRepo('1.0');
    const cache = join(root, 'up-cache-key');
    const otherHome = join(root, 'other-gnupg');
    mkdirSync(otherHome, { mode: 0o700 });
    const og = (args: string[]): Buffer => execFileSync('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { env: { ...process.env, GNUPGHOME: otherHome, LC_ALL: 'C' }, stdio: ['pipe', 'pipe', 'pipe'] });
    og(['--quick-generate-key', 'Other <other@test.invalid>', 'ed25519', 'sign', 'never']);
    const otherFpr = og(['--with-colons', '--list-secret-keys']).toString().split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9]!;
    writeFileSync(join(served, 'other.asc'), og(['--armor', '--export', otherFpr]));
    const lp = join(root, 'ws-key', 'darksite.lock.json');
    await expect(ensureUpstream([withKey(otherFpr, `${base}/other.asc`)], { lock: debianLock(['base-files']), lockPath: lp, cacheDir: cache, mode: 'default' })).rejects.toThrow(
      new RegExp(`^apt source standin-apt \\(.*\\): InRelease has no valid signature \\(signed by key [0-9A-F]+, not in the repository's keyring\\); expected a signature by ${otherFpr}; nothing was cached$`),
    );
    await expect(ensureUpstream([withKey(otherFpr)], { lock: debianLock(['base-files']), lockPath: lp, cacheDir: cache, mode: 'default' })).rejects.toThrow(`InRelease is signed by ${fingerprint}, the spec pins ${otherFpr}; the repository's key changed; nothing was cached`);
    await expect(ensureUpstream([withKey(fingerprint)], { lock: debianLock(['libc6']), lockPath: lp, cacheDir: cache, mode: 'default' })).rejects.toThrow(/^upstream packages have 1 dependency\(ies\) neither their repository nor the Debian lock satisfies \(by name and version\): kubedos-standin needs base-files\. Add the missing Debian ones to payload\/packages\/base\.list/);
    await expect(ensureUpstream([apt(fingerprint)], { lock: debianLock(['base-files']), lockPath: lp, cacheDir: cache, mode: 'default' })).rejects.toThrow(/^apt source standin-apt: no key URL, so its InRelease cannot be checked/);
    expect(debs(cache)).toEqual([]);
    expect(existsSync(lp)).toBe(false);
    try {
      execFileSync('gpgconf', ['--homedir', otherHome, '--kill', 'gpg-agent'], { stdio: 'ignore' });
    } catch {
      /* no agent */
    }
  });

  // Many upstream repositories publish only Packages.xz, and version their dependencies.
  /** A repository whose InRelease lists only main/binary-amd64/Packages.xz; returns its folder. */
  function buildXzRepo(pkgs: { name: string; version: string; depends?: string }[], mangle?: (xz: Buffer) => Buffer): string {
    const repo = join(served, 'xzrepo');
    rmSync(repo, { recursive: true, force: true });
    const pool = join(repo, 'pool');
    const dist = join(repo, 'dists/stable');
    mkdirSync(pool, { recursive: true });
    mkdirSync(join(dist, 'main/binary-amd64'), { recursive: true });
    for (const p of pkgs) {
      const dir = join(root, `xzpkg-${p.name}-${p.version}`);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(join(dir, 'DEBIAN'), { recursive: true });
      writeFileSync(join(dir, 'DEBIAN/control'), `Package: ${p.name}\nVersion: ${p.version}\nArchitecture: all\nMaintainer: lab <lab@test.invalid>\n${p.depends ? `Depends: ${p.depends}\n` : ''}Description: xz-only stand-in\n`);
      execFileSync('dpkg-deb', ['--root-owner-group', '--build', dir, join(pool, `${p.name}_${p.version}_all.deb`)], { stdio: 'ignore' });
    }
    const packages = execFileSync('apt-ftparchive', ['packages', 'pool'], { cwd: repo });
    const xz = execFileSync('xz', ['-9', '--stdout'], { input: packages });
    writeFileSync(join(dist, 'main/binary-amd64/Packages.xz'), xz);
    const release = execFileSync('apt-ftparchive', ['-o', 'APT::FTPArchive::Release::Suite=stable', '-o', 'APT::FTPArchive::Release::Components=main', 'release', dist]);
    writeFileSync(join(dist, 'InRelease'), gpg(['--clearsign', '--local-user', fingerprint], release.toString()));
    writeFileSync(join(repo, 'key.asc'), gpg(['--armor', '--export', fingerprint]));
    if (mangle) writeFileSync(join(dist, 'main/binary-amd64/Packages.xz'), mangle(xz));
    return repo;
  }
  const xzSource = (packages: string[]) => ({ name: 'xz-apt', url: `${base}/xzrepo`, suite: 'stable', components: ['main'], signedBy: fingerprint, key: `${base}/xzrepo/key.asc`, packages });

  it('a repository with only Packages.xz: the index is hash-checked against InRelease, decompressed by xz, and its packages resolved by version', async () => {
    const repo = buildXzRepo([
      { name: 'kubedos-xz', version: '2.0-1', depends: 'kubedos-xz-lib (>= 1.5), base-files (>= 1)' },
      { name: 'kubedos-xz-lib', version: '1.5~rc1' },
      { name: 'kubedos-xz-lib', version: '1.6' },
    ]);
    expect(readdirSync(join(repo, 'dists/stable/main/binary-amd64'))).toEqual(['Packages.xz']);
    const cache = join(root, 'xz-cache');
    const lp = join(root, 'ws-xz', 'darksite.lock.json');
    const r = await ensureUpstream([xzSource(['kubedos-xz'])], { lock: debianLock(['base-files']), lockPath: lp, cacheDir: cache, mode: 'default' });
    expect(r.packages.map((p) => `${p.name}=${p.version}`)).toEqual(['kubedos-xz=2.0-1', 'kubedos-xz-lib=1.6']);
    expect(r.packages[0]!.depends).toBe('kubedos-xz-lib (>= 1.5), base-files (>= 1)');
    expect(debs(cache)).toHaveLength(2);
    // The Debian side moves under the same declaration (lists edited, or an update): the lock's
    // recorded dependencies are checked again, offline, against the Debian lock the build now uses.
    const lock = readLock(lp)!;
    const older = { ...lock, packages: lock.packages.map((p) => ({ ...p, version: '0.9' })) };
    await expect(ensureUpstream([xzSource(['kubedos-xz'])], { lock: older, lockPath: lp, cacheDir: cache, mode: 'offline' })).rejects.toThrow(/: kubedos-xz needs base-files \(>= 1\) \(found base-files 0\.9 \(Debian lock\)\)\./);
    const without = { ...lock, packages: [{ ...lock.packages[0]!, name: 'libc6' }] };
    await expect(ensureUpstream([xzSource(['kubedos-xz'])], { lock: without, lockPath: lp, cacheDir: cache, mode: 'offline' })).rejects.toThrow(/: kubedos-xz needs base-files \(>= 1\)\. Add the missing Debian ones/);
    expect(readLock(lp)).toEqual(lock);
    expect(await ensureUpstream([xzSource(['kubedos-xz'])], { lock, lockPath: lp, cacheDir: cache, mode: 'offline' })).toMatchObject({ written: false, downloaded: 0, reused: 2 });
  });

  it('an unmet versioned dependency is refused naming the package, the relation and what was found; nothing is cached', async () => {
    // In the repository: only 1.4 of the library; from Debian: base-files at the lock's version 1.
    buildXzRepo([
      { name: 'kubedos-xz', version: '2.0-1', depends: 'kubedos-xz-lib (>= 1.5), base-files (>= 12~) | base-files-ng' },
      { name: 'kubedos-xz-lib', version: '1.4' },
    ]);
    const cache = join(root, 'xz-cache-unmet');
    const lp = join(root, 'ws-xz-unmet', 'darksite.lock.json');
    await expect(ensureUpstream([xzSource(['kubedos-xz'])], { lock: debianLock(['base-files']), lockPath: lp, cacheDir: cache, mode: 'default' })).rejects.toThrow(
      'upstream packages: 1 package(s) of which no version satisfies every relation on it (all its dependants together): kubedos-xz-lib: kubedos-xz needs kubedos-xz-lib (>= 1.5); on offer 1.4 (xz-apt) (apt source xz-apt). Declare',
    );
    // The library fixed, the Debian side still too old: named with what the Debian lock holds.
    buildXzRepo([
      { name: 'kubedos-xz', version: '2.0-1', depends: 'kubedos-xz-lib (>= 1.5), base-files (>= 12~) | base-files-ng' },
      { name: 'kubedos-xz-lib', version: '1.4' },
      { name: 'kubedos-xz-lib', version: '1.5' },
    ]);
    await expect(ensureUpstream([xzSource(['kubedos-xz'])], { lock: debianLock(['base-files']), lockPath: lp, cacheDir: cache, mode: 'default' })).rejects.toThrow(
      'upstream packages have 1 dependency(ies) neither their repository nor the Debian lock satisfies (by name and version): kubedos-xz needs base-files (>= 12~) | base-files-ng (found base-files 1 (Debian lock)).',
    );
    expect(debs(cache)).toEqual([]);
    expect(existsSync(lp)).toBe(false);
  });

  it('an upper bound (<<) takes the older version the repository serves beside the newest, into the lock; or leaves it to Debian; or, met by nothing, is refused naming every relation and version', async () => {
    // The repository serves two versions of the library; kubedos-xz accepts only the older one.
    buildXzRepo([
      { name: 'kubedos-xz', version: '2.0-1', depends: 'kubedos-xz-lib (<< 2.0), base-files' },
      { name: 'kubedos-xz-tool', version: '1.0', depends: 'kubedos-xz-lib (>= 1.2)' },
      { name: 'kubedos-xz-lib', version: '2.1' },
      { name: 'kubedos-xz-lib', version: '1.4' },
    ]);
    const cache = join(root, 'xz-cache-upper');
    const lp = join(root, 'ws-xz-upper', 'darksite.lock.json');
    const r = await ensureUpstream([xzSource(['kubedos-xz', 'kubedos-xz-tool'])], { lock: debianLock(['base-files']), lockPath: lp, cacheDir: cache, mode: 'default' });
    expect(r.packages.map((p) => `${p.name}=${p.version}`)).toEqual(['kubedos-xz=2.0-1', 'kubedos-xz-lib=1.4', 'kubedos-xz-tool=1.0']);
    const lib = readLock(lp)!.upstream!.find((p) => p.name === 'kubedos-xz-lib')!;
    expect(lib).toMatchObject({ version: '1.4', path: 'pool/kubedos-xz-lib_1.4_all.deb', source: 'xz-apt' });
    expect(debs(cache)).toContain(`${lib.sha256}.deb`);
    // The same again: the lock as it is (reused, nothing downloaded).
    expect(await ensureUpstream([xzSource(['kubedos-xz', 'kubedos-xz-tool'])], { lock: readLock(lp)!, lockPath: lp, cacheDir: cache, mode: 'default' })).toMatchObject({ written: false, downloaded: 0, reused: 3 });
    // Debian's lock holds a newer library of the same name: apt on a node would install that one, which kubedos-xz refuses.
    await expect(ensureUpstream([xzSource(['kubedos-xz', 'kubedos-xz-tool'])], { lock: { ...debianLock(['base-files', 'kubedos-xz-lib']), packages: debianLock(['base-files', 'kubedos-xz-lib']).packages.map((p) => (p.name === 'kubedos-xz-lib' ? { ...p, version: '3.0' } : p)) }, lockPath: join(root, 'ws-xz-upper-shadow', 'darksite.lock.json'), cacheDir: cache, mode: 'default' })).rejects.toThrow(
      'upstream packages apt on a node would pass over: 1: kubedos-xz needs kubedos-xz-lib (<< 2.0): kubedos-xz-lib 1.4 (xz-apt) meets it, but the Debian lock holds kubedos-xz-lib 3.0, newer, which it does not accept. apt installs the newest version',
    );
    // The repository keeps only the newer library; Debian's lock carries a 1.x: Debian provides it.
    buildXzRepo([
      { name: 'kubedos-xz', version: '2.0-1', depends: 'kubedos-xz-lib (<< 2.0), base-files' },
      { name: 'kubedos-xz-lib', version: '2.1' },
    ]);
    const deb = join(root, 'ws-xz-upper-debian', 'darksite.lock.json');
    const fromDebian = await ensureUpstream([xzSource(['kubedos-xz'])], { lock: debianLock(['base-files', 'kubedos-xz-lib']), lockPath: deb, cacheDir: cache, mode: 'default' });
    expect(fromDebian.packages.map((p) => `${p.name}=${p.version}`)).toEqual(['kubedos-xz=2.0-1']);
    // Nothing meets both relations: refused naming the package, each relation and every version on offer; nothing locked or cached.
    buildXzRepo([
      { name: 'kubedos-xz', version: '2.0-1', depends: 'kubedos-xz-lib (<< 2.0)' },
      { name: 'kubedos-xz-tool', version: '1.0', depends: 'kubedos-xz-lib (>= 2.1)' },
      { name: 'kubedos-xz-lib', version: '2.0' },
      { name: 'kubedos-xz-lib', version: '1.4' },
    ]);
    const none = join(root, 'ws-xz-upper-none', 'darksite.lock.json');
    const empty = join(root, 'xz-cache-upper-none');
    await expect(ensureUpstream([xzSource(['kubedos-xz', 'kubedos-xz-tool'])], { lock: debianLock(['kubedos-xz-lib']), lockPath: none, cacheDir: empty, mode: 'default' })).rejects.toThrow(
      'upstream packages: 1 package(s) of which no version satisfies every relation on it (all its dependants together): kubedos-xz-lib: kubedos-xz needs kubedos-xz-lib (<< 2.0) and kubedos-xz-tool needs kubedos-xz-lib (>= 2.1); on offer 2.0 (xz-apt), 1.4 (xz-apt), 1 (Debian lock) (apt source xz-apt). Declare',
    );
    expect(existsSync(none)).toBe(false);
    expect(debs(empty)).toEqual([]);
  });

  it('a Packages.xz that is not the one the InRelease signs, or that xz cannot read, is refused by name; nothing is cached', async () => {
    const cache = join(root, 'xz-cache-bad');
    const lp = join(root, 'ws-xz-bad', 'darksite.lock.json');
    buildXzRepo([{ name: 'kubedos-xz', version: '2.0-1' }], (xz) => Buffer.concat([xz, Buffer.from('x')]));
    await expect(ensureUpstream([xzSource(['kubedos-xz'])], { lock: debianLock([]), lockPath: lp, cacheDir: cache, mode: 'default' })).rejects.toThrow(
      new RegExp(`^apt source xz-apt: ${base.replace(/[.:/]/g, '\\$&')}/xzrepo/dists/stable/main/binary-amd64/Packages\\.xz has sha256 [0-9a-f]{64} \\(\\d+ bytes\\), its signed InRelease says [0-9a-f]{64} \\(\\d+ bytes\\); nothing was cached$`),
    );
    // Signed as it is, but not xz: the signature cannot make it readable.
    const repo = join(served, 'xzrepo');
    const dist = join(repo, 'dists/stable');
    writeFileSync(join(dist, 'main/binary-amd64/Packages.xz'), 'not xz at all\n');
    const release = execFileSync('apt-ftparchive', ['-o', 'APT::FTPArchive::Release::Suite=stable', '-o', 'APT::FTPArchive::Release::Components=main', 'release', dist]);
    writeFileSync(join(dist, 'InRelease'), gpg(['--clearsign', '--local-user', fingerprint], release.toString()));
    await expect(ensureUpstream([xzSource(['kubedos-xz'])], { lock: debianLock([]), lockPath: lp, cacheDir: cache, mode: 'default' })).rejects.toThrow(
      /^apt source xz-apt: \S+\/Packages\.xz matches its signed InRelease but xz cannot decompress it \(.*File format not recognized.*\); nothing was cached$/,
    );
    expect(debs(cache)).toEqual([]);
    expect(existsSync(lp)).toBe(false);
  });
});
