// A build directory's plan (PLAN_FILE): kept beside the signed files, bound by the manifest's
// inputs.planSha256. verifyBuild accepts it when it is the plan the manifest names and names it
// when it is not; readBuildPlan says which of the three a directory holds.
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalJson, sha256Hex } from '../../common/canonical';
import { plan as planOf } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { writeFakeBuild } from '../bundle/testing';
import { removeTempDirs, tempDir } from '../testing/temp-dir';
import { MANIFEST_FILE, PLAN_FILE } from './attest';
import { keyidOf } from './keys';
import { plannedWith, readBuildPlan, verifyBuild } from './verify';

afterAll(removeTempDirs);

function fakeBuild(): { dir: string; planText: string; manifest: Buffer } {
  const text = TEMPLATES['lab-3'].text;
  const p = planOf(parseSpec(text).spec!);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const dir = tempDir('kd-verify-plan-');
  writeFakeBuild(dir, p, text, { privateKey, publicKeyPem, keyid: keyidOf(publicKeyPem) }, true);
  return { dir, planText: canonicalJson(p), manifest: readFileSync(join(dir, MANIFEST_FILE)) };
}

describe("a build's plan beside its signed files", () => {
  it('none (a build made before it was kept): verify passes as before (three signed files, three images)', async () => {
    const b = fakeBuild();
    expect(readBuildPlan(b.dir, b.manifest)).toEqual({ kind: 'none' });
    expect(await verifyBuild(b.dir)).toMatchObject({ ok: true, checked: 6 });
  });

  it('the plan the manifest names: read as a Plan, counted by verify', async () => {
    const b = fakeBuild();
    writeFileSync(join(b.dir, PLAN_FILE), b.planText);
    expect(plannedWith(b.manifest)).toMatch(/^[0-9a-f]{64}$/);
    const r = readBuildPlan(b.dir, b.manifest);
    expect(r.kind).toBe('ok');
    expect(r.kind === 'ok' && canonicalJson(r.plan)).toBe(b.planText);
    expect(await verifyBuild(b.dir)).toMatchObject({ ok: true, checked: 7 });
  });

  it('another plan (the same plan re-indented, a changed field) or not a plan: verify names plan.json and why', async () => {
    const b = fakeBuild();
    const plan = JSON.parse(b.planText) as { ansibleInventory: string };
    for (const text of [JSON.stringify(plan, null, 2), canonicalJson({ ...plan, ansibleInventory: `${plan.ansibleInventory}\n# changed` })]) {
      writeFileSync(join(b.dir, PLAN_FILE), text);
      expect(readBuildPlan(b.dir, b.manifest)).toEqual({ kind: 'bad', why: expect.stringMatching(/^sha256 [0-9a-f]{64}, the manifest's inputs\.planSha256 says [0-9a-f]{64}$/) });
      expect(await verifyBuild(b.dir)).toMatchObject({ ok: false, file: PLAN_FILE, reason: expect.stringMatching(/the manifest's inputs\.planSha256 says/) });
    }
    // Hashing right but not a plan this kubedos reads: a manifest signed over such a hash is the only way there.
    const notPlan = canonicalJson({ cluster: 'lab-3' });
    writeFileSync(join(b.dir, PLAN_FILE), notPlan);
    const forged = Buffer.from(JSON.stringify({ inputs: { planSha256: sha256Hex(notPlan) } }));
    expect(readBuildPlan(b.dir, forged)).toMatchObject({ kind: 'bad', why: expect.stringMatching(/^not a plan this kubedos reads: /) });
  });
});
