// The Artifacts view's reading of a build: a small signed build written by the real attest
// functions, described (manifest, SBOM packages with sources, provenance, signatures), then
// tampered with; an empty workspace says there is no build.
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../testing/temp-dir';
import { clusterWorkspace } from '../workspace';
import { artifactsOverview, describeBuild } from './artifacts';
import { writeSmallBuild } from './testing';

afterAll(removeTempDirs);

describe('describeBuild / artifactsOverview', () => {
  it('an empty workspace: no build, an empty cache, no lock', async () => {
    const env = { KUBEDOS_WORKSPACE: tempDir('kd-artifacts-') };
    const o = await artifactsOverview('lab-3', env);
    expect(o.build).toMatchObject({ present: false, outputs: [], totalBytes: 0 });
    expect(o.cache).toMatchObject({ entries: 0, bytes: 0 });
    expect(o.lock.exists).toBe(false);
  });

  it('reads manifest, SBOM and provenance; signatures verify; a changed output fails the full check, a changed SBOM the signature check', async () => {
    const env = { KUBEDOS_WORKSPACE: tempDir('kd-artifacts-') };
    const dir = join(clusterWorkspace('lab-3', env), 'build');
    const { keyid } = writeSmallBuild(dir, 'lab-3');
    const o = await artifactsOverview('lab-3', env);
    const b = o.build;
    expect(b.present).toBe(true);
    expect(b.problems).toEqual([]);
    expect(b.manifest).toMatchObject({ cluster: 'lab-3', artifactVersion: '1.0.0', roles: ['master', 'worker'] });
    expect(b.outputs.map((x) => x.path)).toEqual(['images/lab-3-master.qcow2', 'images/lab-3-worker.qcow2']);
    expect(b.totalBytes).toBe(b.outputs.reduce((n, x) => n + x.size, 0));
    expect(b.sbom?.packages.map((p) => `${p.name} ${p.version} ${p.source}`)).toEqual(['etcd-server 3.4.23-4+b6 debian/bookworm', 'openssl 3.0.15-1~deb12u1 debian/bookworm-security', 'wireguard-tools 1.0.20210914-1+b1 debian/bookworm']);
    expect(b.sbom?.files).toBe(1);
    expect(b.provenance).toMatchObject({ buildType: 'https://kubedos.ca/foundry/build/v1', subjects: 2 });
    expect(b.verify).toEqual({ ok: true, checked: 3, keyid, scope: 'signatures' });
    expect((await describeBuild(dir, { full: true })).verify).toMatchObject({ ok: true, checked: 5, scope: 'full' });

    appendFileSync(join(dir, 'images/lab-3-worker.qcow2'), 'x');
    expect((await describeBuild(dir)).verify?.ok).toBe(true);
    expect((await describeBuild(dir, { full: true })).verify).toMatchObject({ ok: false, file: 'images/lab-3-worker.qcow2', scope: 'full' });
    writeFileSync(join(dir, 'sbom.cdx.json'), '{"components":[]}');
    expect((await describeBuild(dir)).verify).toMatchObject({ ok: false, scope: 'signatures' });
  });
});
