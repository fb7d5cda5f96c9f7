// kubedos restore's engine: every refusal before anything is written, then a fresh workspace on
// "another machine" (another workspace root and age identity) with the same cluster identity.
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../common/canonical';
import { parseSpec } from '../../common/spec/index';
import { plan as planOf, planJson } from '../../common/plan/index';
import type { BundleFixture } from '../bundle/testing';
import { bundleFixture, FIXTURE_EPOCH, recoveryFixture, recoveryInputOf, writeFakeBuild } from '../bundle/testing';
import { writeBundle } from '../bundle/write';
import { buildSigningKey } from '../build/keys';
import { clusterTrust } from '../stages/trust';
import { createRecoveryKey, readIdentityFile } from '../trust/recovery';
import { clusterWorkspace } from '../workspace';
import { RestoreRefused, restoreWorkspace, verifyRestore } from './service';

let a: string; // the machine that sealed
let b: string; // the fresh machine
let fx: BundleFixture;
let identity: string;
let bundleDir: string;
let envB: NodeJS.ProcessEnv;

beforeEach(async () => {
  a = mkdtempSync(join(tmpdir(), 'kd-h15-restore-a-'));
  b = mkdtempSync(join(tmpdir(), 'kd-h15-restore-b-'));
  fx = await bundleFixture(a);
  writeFakeBuild(fx.buildDir, fx.plan, fx.specText, fx.signingKey, true); // the artifact, with its images
  const idFile = join(a, 'offline-recovery.txt');
  await recoveryFixture(fx, idFile);
  identity = readIdentityFile(idFile);
  const written = writeBundle({ ...fx, recovery: await recoveryInputOf(fx) });
  bundleDir = join(b, 'stick-bundle');
  cpSync(written.dir, bundleDir, { recursive: true });
  envB = { KUBEDOS_WORKSPACE: join(b, 'ws') };
});
afterEach(() => {
  rmSync(a, { recursive: true, force: true });
  rmSync(b, { recursive: true, force: true });
});

const req = (o: Partial<Parameters<typeof verifyRestore>[0]> = {}) => ({ bundleDir, artifactDir: fx.buildDir, identity, env: envB, ...o });
async function refused(p: Promise<unknown>): Promise<RestoreRefused> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(RestoreRefused);
  // Nothing was written on the fresh machine.
  expect(existsSync(envB.KUBEDOS_WORKSPACE!)).toBe(false);
  return err as RestoreRefused;
}

describe('restore', () => {
  it('rebuilds a fresh workspace with the same identity: root CA fingerprint, plan hash, hub pin, build key', async () => {
    const v = await verifyRestore(req());
    expect(v.cluster).toBe('lab-3');
    const r = await restoreWorkspace(v, req());
    expect(r.workspace).toBe(clusterWorkspace('lab-3', envB));
    expect(r.secrets).toBeGreaterThanOrEqual(4);
    // The trust the deploy then uses is the bundle's: nothing is created anew.
    // (at the fixture's time: its certificates are from then; a late restore renews them with the recovery identity, below)
    const t = await clusterTrust(r.workspace, fx.plan, envB, new Date((FIXTURE_EPOCH + 86_400) * 1000));
    expect(t.created).toEqual([]);
    expect(t.root.fingerprint).toBe(v.rootFingerprint);
    expect(t.intermediate.certPem).toBe(fx.trust.clusterCaPem);
    expect(t.hubTls.certPem).toBe(fx.trust.hubCertPem);
    // Same plan hash, from the restored spec.
    const spec = parseSpec(readFileSync(r.specPath, 'utf8')).spec!;
    expect(sha256Hex(planJson(planOf(spec)))).toBe(v.planSha256);
    // Same build signing key on the new machine (another workspace identity).
    expect((await buildSigningKey('lab-3', envB)).keyid).toBe(fx.signingKey.keyid);
    // The root key is still only encrypted to the recovery recipient.
    expect(readFileSync(join(r.workspace, 'recovery/root-ca.key.age')).subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    // Today the fixture's intermediate has expired: renewing it needs the recovery identity, and keeps the root.
    const idFile = join(b, 'recovery-identity.txt');
    writeFileSync(idFile, `${identity}\n`, { mode: 0o600 });
    const now = await clusterTrust(r.workspace, fx.plan, { ...envB, KUBEDOS_RECOVERY_IDENTITY_FILE: idFile });
    expect(now.root.fingerprint).toBe(v.rootFingerprint);
    expect(now.created).toEqual(['cluster-ca.crt', 'hub.crt']);
  });

  it('refuses a bundle with one flipped byte, naming the file', async () => {
    const f = join(bundleDir, 'nodes/master.json');
    const bytes = readFileSync(f);
    bytes[10] = bytes[10]! ^ 0x01;
    writeFileSync(f, bytes);
    const e = await refused(verifyRestore(req()));
    expect(e.check).toBe('bundle');
    expect(e.message).toMatch(/does not verify: nodes\/master\.json: sha256/);
  });

  it('refuses a bundle from another cluster', async () => {
    const e = await refused(verifyRestore(req({ expectCluster: 'prod-1' })));
    expect(e).toMatchObject({ check: 'cluster' });
    expect(e.message).toMatch(/bundle is from cluster lab-3 .* not prod-1/);
    // Same name, another identity: a workspace of another lab-3 is in the way.
    const other = await bundleFixture(join(b, 'ws'));
    await clusterTrust(other.workspace, other.plan, envB);
    const e2 = (await verifyRestore(req()).catch((x: unknown) => x)) as RestoreRefused;
    expect(e2).toBeInstanceOf(RestoreRefused);
    expect(e2).toMatchObject({ check: 'cluster' });
    expect(e2.message).toMatch(/from another cluster of that name/);
  });

  it('refuses the wrong recovery key', async () => {
    const wrong = await createRecoveryKey();
    const e = await refused(verifyRestore(req({ identity: wrong.identity })));
    expect(e.check).toBe('recovery-key');
    expect(e.message).toMatch(/does not open this bundle .*encrypted to age1/);
  });

  it('refuses an artifact that does not match the bundle, and one that does not verify', async () => {
    const otherArtifact = join(b, 'other-build');
    writeFakeBuild(otherArtifact, fx.plan, `${fx.specText}\n# edited\n`, fx.signingKey, true);
    const e = await refused(verifyRestore(req({ artifactDir: otherArtifact })));
    expect(e.check).toBe('artifact');
    expect(e.message).toMatch(/is not the build the bundle names/);
    const img = join(fx.buildDir, `images/lab-3-${fx.plan.nodes[0]!.role}.qcow2`);
    writeFileSync(img, Buffer.concat([readFileSync(img), Buffer.from('x')]));
    const e2 = await refused(verifyRestore(req()));
    expect(e2.check).toBe('artifact');
    expect(e2.message).toMatch(/does not verify against the bundle's signing key: images\//);
  });
});
