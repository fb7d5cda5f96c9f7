// kubedos build / verify end to end on lab-3: darksite, role ISOs, qcow2 images, manifest,
// SBOM, provenance, DSSE signatures; reproducibility, cache behaviour, offline, bad input.
import { closeSync, cpSync, existsSync, statSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeFileSync, writeSync, mkdirSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropLabBulk } from '../lab-output';
import { ensureLock } from '../../main/build/darksite/index';
import { hostToolVersions } from '../../main/build/index';
import { verifyBuild } from '../../main/build/verify';
import { CACHE, ensureSpec, kubedos, LAB, labEnv, OUT, REPO, requireRoot, sha256sum, SPEC } from './env';

function flipByte(file: string, offset: number): () => void {
  const fd = openSync(file, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, offset);
  const orig = b[0]!;
  writeSync(fd, Buffer.from([orig ^ 0xff]), 0, 1, offset);
  closeSync(fd);
  return () => {
    const fd2 = openSync(file, 'r+');
    writeSync(fd2, Buffer.from([orig]), 0, 1, offset);
    closeSync(fd2);
  };
}

describe('kubedos build (lab-3)', () => {
  beforeAll(() => {
    requireRoot();
    ensureSpec();
    rmSync(OUT, { recursive: true, force: true });
  });
  // The outputs are copies of cache entries (which image-boot and iso-boot reuse): drop the copies.
  afterAll(() => {
    for (const d of ['build', 'build-again', 'build-offline', 'build-corrupt', 'build-netinst', 'build-capsule']) dropLabBulk(join(LAB, d));
    dropLabBulk(join(LAB, 'capsule-ws'), [join(LAB, 'capsule-ws/cache')]);
  });

  it('builds darksite, ISOs and qcow2 images with manifest, SBOM, provenance and signatures; verify passes', () => {
    const r = kubedos(['build', '--spec', SPEC, '--out', OUT]);
    expect(r.status, r.stderr).toBe(0);
    for (const role of ['master', 'control-plane', 'worker']) {
      expect(existsSync(join(OUT, `iso/lab-3-${role}.iso`))).toBe(true);
      expect(existsSync(join(OUT, `images/lab-3-${role}.qcow2`))).toBe(true);
      expect(existsSync(join(OUT, `payload/${role}/preseed.cfg`))).toBe(true);
    }
    for (const f of ['manifest.json', 'sbom.cdx.json', 'provenance.intoto.json', 'signatures/manifest.json.dsse.json', 'signatures/sbom.cdx.json.dsse.json', 'signatures/provenance.intoto.json.dsse.json', 'darksite/dists/bookworm/InRelease', 'darksite/darksite.lock.json']) {
      expect(existsSync(join(OUT, f)), f).toBe(true);
    }
    const sbom = JSON.parse(readFileSync(join(OUT, 'sbom.cdx.json'), 'utf8'));
    const debs = readdirSync(join(OUT, 'darksite/pool/main')).filter((f) => f.endsWith('.deb'));
    const sbomDebs = sbom.components.filter((c: { purl?: string }) => c.purl?.startsWith('pkg:deb/'));
    expect(sbomDebs.length).toBe(debs.length);
    expect(sbomDebs.every((c: { hashes: { alg: string }[] }) => c.hashes[0]!.alg === 'SHA-256')).toBe(true);
    const prov = JSON.parse(readFileSync(join(OUT, 'provenance.intoto.json'), 'utf8'));
    expect(prov._type).toBe('https://in-toto.io/Statement/v1');
    expect(prov.predicateType).toBe('https://slsa.dev/provenance/v1');
    // The spec's upgrade policy, signed with the manifest: lab-3 sets none, so channel stable and no stepping stone.
    expect(JSON.parse(readFileSync(join(OUT, 'manifest.json'), 'utf8')).upgrade).toEqual({ channel: 'stable' });
    // The plan it was made from, kept beside it and bound by the signed manifest (a reseal by a later kubedos seals this plan).
    expect(sha256sum(join(OUT, 'plan.json'))).toBe(JSON.parse(readFileSync(join(OUT, 'manifest.json'), 'utf8')).inputs.planSha256);
    const v = kubedos(['verify', OUT]);
    expect(v.status, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/verify ok/);
  });

  it('verify names the file when one byte of an output changes (ISO, qcow2, darksite .deb, signed manifest)', async () => {
    const deb = readdirSync(join(OUT, 'darksite/pool/main')).find((f) => f.startsWith('nftables_'))!;
    for (const rel of ['iso/lab-3-worker.iso', 'images/lab-3-master.qcow2', `darksite/pool/main/${deb}`, 'payload/worker/preseed.cfg', 'manifest.json', 'plan.json']) {
      const restore = flipByte(join(OUT, rel), 100);
      try {
        const r = kubedos(['verify', OUT]);
        expect(r.status).toBe(1);
        expect(r.stderr).toContain(rel);
      } finally {
        restore();
      }
    }
    expect((await verifyBuild(OUT)).ok).toBe(true);
  });

  it('a warm rebuild with no input change rebuilds and downloads nothing', () => {
    const r = kubedos(['build', '--spec', SPEC, '--out', OUT, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.built).toEqual([]);
    expect(report.downloaded).toBe(0);
  });

  it('rebuilding the ISOs from scratch gives the same sha256 for every ISO', () => {
    const before = ['master', 'control-plane', 'worker'].map((r) => sha256sum(join(OUT, `iso/lab-3-${r}.iso`)));
    const r = kubedos(['build', 'darksite', 'iso', '--rebuild', '--spec', SPEC, '--out', join(LAB, 'build-again'), '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).built).toEqual(expect.arrayContaining(['darksite', 'iso/lab-3-master.iso', 'iso/lab-3-control-plane.iso', 'iso/lab-3-worker.iso']));
    const after = ['master', 'control-plane', 'worker'].map((role) => sha256sum(join(LAB, 'build-again', `iso/lab-3-${role}.iso`)));
    expect(after).toEqual(before);
  });

  it('--offline builds from the cache alone', () => {
    const env = { ...labEnv(), http_proxy: 'http://127.0.0.1:9', https_proxy: 'http://127.0.0.1:9' };
    const r = kubedos(['build', 'darksite', 'iso', '--offline', '--spec', SPEC, '--out', join(LAB, 'build-offline'), '--json'], env);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).downloaded).toBe(0);
  });

  it('time capsule: the finished build alone rebuilds identical ISOs and darksite in a network namespace with no route, on a workspace that never saw the archive', () => {
    // The new workspace holds only the cluster's key material (as restored from its SecretStore
    // copy, with the age identity on its USB key): no cache, no lock, no package lists resolved.
    const ws = join(LAB, 'capsule-ws');
    const out = join(LAB, 'build-capsule');
    rmSync(ws, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
    cpSync(join(LAB, 'workspace/clusters/lab-3/secrets'), join(ws, 'clusters/lab-3/secrets'), { recursive: true });
    const ns = `kd-capsule-${process.pid}`;
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      // No interface but a down loopback: not one route, not even to 127.0.0.1.
      expect(execFileSync('ip', ['netns', 'exec', ns, 'ip', 'route', 'show'], { encoding: 'utf8' })).toBe('');
      const env = { ...labEnv(), KUBEDOS_WORKSPACE: ws, KUBEDOS_CACHE: join(ws, 'cache'), KUBEDOS_AGE_IDENTITY_FILE: join(LAB, 'workspace/age-identity.txt') };
      const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, join(REPO, 'bin/kubedos.mjs'), 'build', 'darksite', 'iso', '--offline', '--from', OUT, '--spec', SPEC, '--out', out, '--json'], { cwd: LAB, env, encoding: 'utf8', timeout: 20 * 60_000, maxBuffer: 64 * 1024 * 1024 });
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).downloaded).toBe(0);
      // The cache this build created is private (it holds the cluster's packages and images).
      expect((statSync(join(ws, 'cache')).mode & 0o777).toString(8)).toBe('700');
      for (const role of ['master', 'control-plane', 'worker']) expect(sha256sum(join(out, `iso/lab-3-${role}.iso`)), role).toBe(sha256sum(join(OUT, `iso/lab-3-${role}.iso`)));
      for (const f of ['darksite/darksite.lock.json', 'darksite/dists/bookworm/InRelease', 'darksite/dists/bookworm/main/binary-amd64/Packages']) expect(sha256sum(join(out, f)), f).toBe(sha256sum(join(OUT, f)));
      expect(readFileSync(join(ws, 'clusters/lab-3/darksite.lock.json'), 'utf8')).toBe(readFileSync(join(OUT, 'darksite/darksite.lock.json'), 'utf8'));
      // The same without the build's darksite: the new workspace has nothing to rebuild from.
      const bare = join(LAB, 'capsule-bare');
      rmSync(bare, { recursive: true, force: true });
      const bareEnv: NodeJS.ProcessEnv = { ...env, KUBEDOS_WORKSPACE: bare, KUBEDOS_CACHE: join(bare, 'cache') };
      delete bareEnv.KUBEDOS_AGE_IDENTITY_FILE;
      const no = spawnSync('ip', ['netns', 'exec', ns, process.execPath, join(REPO, 'bin/kubedos.mjs'), 'build', 'darksite', '--offline', '--spec', SPEC, '--out', join(bare, 'out')], { cwd: LAB, env: bareEnv, encoding: 'utf8', timeout: 5 * 60_000 });
      expect(no.status).toBe(1);
      expect(no.stderr).toMatch(/--offline: this cluster has no lock yet .*--from BUILD_OR_BUNDLE_DIR/);
    } finally {
      execFileSync('ip', ['netns', 'del', ns]);
    }
  });

  it('detects a corrupted cache entry by hash and rebuilds it instead of using it', () => {
    const cacheRoot = join(CACHE, 'artifacts');
    const entries = readdirSync(cacheRoot).flatMap((d) => readdirSync(join(cacheRoot, d)).map((e) => join(cacheRoot, d, e)));
    const good = sha256sum(join(OUT, 'iso/lab-3-worker.iso'));
    // The entry this build uses: the one recording exactly the ISO in the output directory.
    const isoEntry = entries.find((e) => existsSync(join(e, 'entry.json')) && readFileSync(join(e, 'entry.json'), 'utf8').includes(good))!;
    expect(isoEntry).toBeTruthy();
    flipByte(join(isoEntry, 'files/lab-3-worker.iso'), 4096);
    const out = join(LAB, 'build-corrupt');
    const r = kubedos(['build', 'darksite', 'iso', '--spec', SPEC, '--out', out, '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/corrupted .*lab-3-worker\.iso/);
    expect(JSON.parse(r.stdout).built).toContain('iso/lab-3-worker.iso');
    expect(sha256sum(join(out, 'iso/lab-3-worker.iso'))).toBe(good);
  });

  it('remasters a user-supplied installer ISO (--netinst) with the role preseed, reproducibly', () => {
    // Stand-in for a Debian netinst: a medium built above (same layout family: kernel, initrd,
    // EFI image). The remaster path does not depend on which one it is given.
    const src = join(OUT, 'iso/lab-3-worker.iso');
    const out = join(LAB, 'build-netinst');
    const args = ['build', 'darksite', 'iso', '--role', 'worker', '--netinst', src, '--spec', SPEC, '--out', out, '--json'];
    const r = kubedos(args);
    expect(r.status, r.stderr).toBe(0);
    const iso = join(out, 'iso/lab-3-worker.iso');
    const extracted = join(LAB, 'netinst-preseed.cfg');
    rmSync(extracted, { force: true });
    execFileSync('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/kubedos/preseed.cfg', extracted], { stdio: 'ignore' });
    expect(readFileSync(extracted, 'utf8')).toBe(readFileSync(join(out, 'payload/worker/preseed.cfg'), 'utf8'));
    const first = sha256sum(iso);
    const again = kubedos([...args.slice(0, -1), '--rebuild', '--json']);
    expect(again.status, again.stderr).toBe(0);
    expect(sha256sum(iso)).toBe(first);
  });

  it('names a listed package that does not exist in the archive', async () => {
    const pkgs = join(LAB, 'bad-pins');
    rmSync(pkgs, { recursive: true, force: true });
    mkdirSync(pkgs, { recursive: true });
    writeFileSync(join(pkgs, 'base.list'), readFileSync(join(REPO, 'payload/packages/base.list'), 'utf8') + 'nftables-does-not-exist\n');
    await expect(ensureLock({ packagesDir: pkgs, lockPath: join(LAB, 'bad-pins.lock.json'), cacheDir: CACHE })).rejects.toThrow(/do not exist in the Debian archive.*nftables-does-not-exist at base\.list:\d+/);
  });

  it('names the Debian package of a missing host tool, like kubedos doctor', async () => {
    await expect(hostToolVersions(['iso'], undefined, ['kubedos-no-such-tool'])).rejects.toThrow(/missing .*kubedos-no-such-tool.*apt-get install kubedos-no-such-tool/);
  });
});
