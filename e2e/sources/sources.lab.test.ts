// Declared upstream sources against loopback stand-ins (this machine reaches no upstream host):
// a real apt repository (a .deb built here with dpkg-deb, indexed by apt-ftparchive, InRelease
// clearsigned with a test ed25519 key) and a plain file, served by python3's http.server on
// 127.0.0.1 (started and stopped by PID). A wrong signing key and a wrong file hash are refused
// by name and leave nothing in the cache; an unreachable source is refused; a pinned file is then
// served from the content-addressed cache without the network.
// Not here yet: images through Debian's docker-registry (docs/sources.md, "Not done yet").
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../common/canonical';
import { contentPath, fetchFileSource, fetchInRelease } from '../../main/build/sources/fetch';

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

function buildRepo(): void {
  const pkg = join(root, 'pkg');
  mkdirSync(join(pkg, 'DEBIAN'), { recursive: true });
  mkdirSync(join(pkg, 'usr/share/doc/kubedos-standin'), { recursive: true });
  writeFileSync(join(pkg, 'DEBIAN/control'), 'Package: kubedos-standin\nVersion: 1.0\nArchitecture: all\nMaintainer: lab <lab@test.invalid>\nDescription: upstream stand-in\n');
  writeFileSync(join(pkg, 'usr/share/doc/kubedos-standin/README'), 'stand-in\n');
  const repo = join(served, 'repo');
  const pool = join(repo, 'pool');
  const dist = join(repo, 'dists/stable');
  mkdirSync(pool, { recursive: true });
  mkdirSync(join(dist, 'main/binary-amd64'), { recursive: true });
  execFileSync('dpkg-deb', ['--root-owner-group', '--build', pkg, join(pool, 'kubedos-standin_1.0_all.deb')], { stdio: 'ignore' });
  const packages = execFileSync('apt-ftparchive', ['packages', 'pool'], { cwd: repo });
  writeFileSync(join(dist, 'main/binary-amd64/Packages'), packages);
  const release = execFileSync('apt-ftparchive', ['-o', 'APT::FTPArchive::Release::Suite=stable', '-o', 'APT::FTPArchive::Release::Components=main', 'release', dist]);
  writeFileSync(join(dist, 'InRelease'), gpg(['--clearsign', '--local-user', fingerprint], release.toString()));
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
  });
  it('an unreachable source is refused naming it', async () => {
    // A loopback port nobody listens on: bound, then closed.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const url = `http://127.0.0.1:${port}/x.tgz`;
    await expect(fetchFileSource({ name: 'gone', url, sha256: '2'.repeat(64) }, { cacheDir, timeoutMs: 5_000 })).rejects.toThrow(`source gone: ${url} is unreachable (ECONNREFUSED); nothing was cached`);
  });
});
