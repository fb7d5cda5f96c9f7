import { generateKeyPairSync } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canonicalJson, sha256Hex } from '../../common/canonical';
import { signDsse } from '../build/attest';
import { listFiles } from '../build/files';
import { keyidOf } from '../build/keys';
import type { BuildSigningKey } from '../build/keys';
import { BUNDLE_PATHS, BUNDLE_PAYLOAD_TYPE, BundleManifest, NodeRecord, StagesRecord } from './schema';
import type { BundleFixture } from './testing';
import { bundleFixture, FIXTURE_EPOCH, writeFakeBuild } from './testing';
import { stagesRecord } from './stages';
import { verifyBundle } from './verify';
import { BundleInputError, prepareBundle, writeBundle } from './write';

let root: string;
let fx: BundleFixture;

beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), 'kd-bundle-'));
  fx = await bundleFixture(root);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const snapshot = (dir: string): Record<string, string> => Object.fromEntries(listFiles(dir).map((f) => [f, sha256Hex(readFileSync(join(dir, f)))]));

/** Rewrites bundle.json from what is on disk and signs it again: lets a test reach the checks past the file hashes. */
function resign(dir: string, key: BuildSigningKey, edit: (m: BundleManifest) => void = () => undefined): void {
  const m = BundleManifest.parse(JSON.parse(readFileSync(join(dir, BUNDLE_PATHS.manifest), 'utf8')));
  const own = new Set<string>([BUNDLE_PATHS.manifest, BUNDLE_PATHS.envelope, BUNDLE_PATHS.publicKey]);
  m.files = listFiles(dir)
    .filter((f) => !own.has(f))
    .map((f) => {
      const data = readFileSync(join(dir, f));
      return { path: f, sha256: sha256Hex(data), size: data.length };
    });
  edit(m);
  const text = `${canonicalJson(m, 2)}\n`;
  writeFileSync(join(dir, BUNDLE_PATHS.manifest), text);
  writeFileSync(join(dir, BUNDLE_PATHS.envelope), `${canonicalJson(signDsse(BUNDLE_PAYLOAD_TYPE, Buffer.from(text), key.privateKey, key.keyid), 2)}\n`);
}

describe('writeBundle', () => {
  it('writes the spec verbatim, the plan, the build attestations, public trust, node facts and a signed manifest of every file', () => {
    const { dir, manifest } = writeBundle(fx);
    expect(dir).toBe(join(fx.workspace, 'bundle'));
    const files = listFiles(dir);
    const nodes = fx.plan.nodes.map((n) => `nodes/${n.name}.json`);
    expect(files).toEqual(
      [
        'README.md',
        'build/manifest.json',
        'build/provenance.intoto.json',
        'build/sbom.cdx.json',
        'build/signatures/build-signing-key.pub.pem',
        'build/signatures/manifest.json.dsse.json',
        'build/signatures/provenance.intoto.json.dsse.json',
        'build/signatures/sbom.cdx.json.dsse.json',
        'bundle.json',
        'hub.json',
        ...nodes,
        'plan.json',
        'signatures/build-signing-key.pub.pem',
        'signatures/bundle.json.dsse.json',
        'spec.yaml',
        'stages.json',
        'trust/cluster-ca.crt',
        'trust/hub.crt',
        'trust/hub.pin',
        'trust/root-ca.crt',
      ].sort(),
    );
    expect(readFileSync(join(dir, 'spec.yaml'), 'utf8')).toBe(fx.specText);
    expect(readFileSync(join(dir, 'build/manifest.json'))).toEqual(readFileSync(join(fx.buildDir, 'manifest.json')));
    expect(manifest.files.map((f) => f.path)).toEqual(files.filter((f) => f !== 'bundle.json' && !f.startsWith('signatures/')));
    expect(manifest.cluster).toBe('lab-3');
    expect(manifest.artifactVersion).toBe('0.1.0');
    expect(manifest.specSha256).toBe(sha256Hex(fx.specText));
    expect(manifest.buildManifestSha256).toBe(sha256Hex(readFileSync(join(fx.buildDir, 'manifest.json'))));
    expect(manifest.signingKeyId).toBe(keyidOf(fx.signingKey.publicKeyPem));
    expect(readFileSync(join(dir, 'trust/hub.pin'), 'utf8')).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    const master = NodeRecord.parse(JSON.parse(readFileSync(join(dir, 'nodes/master.json'), 'utf8')));
    expect(master).toMatchObject({ node: 'master', role: 'master', vmid: 3000, wgPublicKeys: fx.nodes.master!.wgPublicKeys, sshHostKey: fx.nodes.master!.sshHostKey });
    expect(master.firstboot?.steps).toEqual(['planes', 'agent', 'marker']);
    const readme = readFileSync(join(dir, 'README.md'), 'utf8');
    expect(readme).toMatch(/kubedos verify BUNDLE_DIR/);
    expect(readme).toMatch(/kubedos build --spec spec\.yaml --out BUILD --offline/);
    // Public material only.
    for (const f of files) expect(readFileSync(join(dir, f), 'utf8'), f).not.toMatch(/PRIVATE KEY/);
    // File times pinned to the build's SOURCE_DATE_EPOCH.
    expect(statSync(join(dir, 'plan.json')).mtimeMs).toBe(FIXTURE_EPOCH * 1000);
  });

  it('is byte-identical when sealed again from the same inputs, and leaves no temporary directory', () => {
    const first = snapshot(writeBundle(fx).dir);
    const second = snapshot(writeBundle(fx).dir);
    expect(second).toEqual(first);
    expect(readdirSync(fx.workspace).filter((n) => n.startsWith('.bundle'))).toEqual([]);
  });

  it('records the run: final journal state per stage in pipeline order, with the summaries', () => {
    const { dir } = writeBundle(fx);
    const s = StagesRecord.parse(JSON.parse(readFileSync(join(dir, 'stages.json'), 'utf8')));
    expect(s.runId).toBe('00000000-0000-4000-8000-000000000001');
    expect(s.stages.map((x) => x.stage)).toEqual(['validate', 'plan', 'build', 'provision', 'firstboot', 'backplanes', 'enroll', 'converge', 'workload', 'seal']);
    expect(s.stages.find((x) => x.stage === 'build')).toMatchObject({ state: 'success', changes: 2, notes: ['built images/lab-3-master.qcow2'] });
    expect(s.stages.find((x) => x.stage === 'seal')?.state).toBe('running');
    // No durations (wall clock) in the record.
    expect(readFileSync(join(dir, 'stages.json'), 'utf8')).not.toMatch(/durationMs/);
  });

  it('keeps events of other runs out of the record', () => {
    const other = stagesRecord([{ type: 'stage', stage: 'build', state: 'failed', rerun: 'safe-rerun', attempt: 0, runId: 'other', seq: 0, time: 'x' }], 'mine', {});
    expect(other.stages).toEqual([]);
  });

  it('leaves the previous bundle in place when new inputs are refused', () => {
    const before = snapshot(writeBundle(fx).dir);
    const { master: _dropped, ...fewer } = fx.nodes;
    expect(() => writeBundle({ ...fx, nodes: fewer })).toThrow(/no facts for node master/);
    expect(snapshot(join(fx.workspace, 'bundle'))).toEqual(before);
    expect(readdirSync(fx.workspace).filter((n) => n.startsWith('.bundle'))).toEqual([]);
  });

  it('refuses a build signed by another key, facts that disagree with the plan, and secret material', () => {
    const other = generateKeyPairSync('ed25519');
    const otherKey: BuildSigningKey = { privateKey: other.privateKey, publicKeyPem: other.publicKey.export({ type: 'spki', format: 'pem' }) as string, keyid: '' };
    otherKey.keyid = keyidOf(otherKey.publicKeyPem);
    expect(() => writeBundle({ ...fx, signingKey: otherKey })).toThrow(/signed by key .*not by this cluster's build signing key/);
    expect(() => writeBundle({ ...fx, nodes: { ...fx.nodes, 'w-1': { ...fx.nodes['w-1']!, vmid: 4242 } } })).toThrow(/w-1 reported VMID 4242, the plan says 3002/);
    expect(() => writeBundle({ ...fx, nodes: { ...fx.nodes, ghost: { node: 'ghost', vmid: 1 } } })).toThrow(/ghost, which is not in the plan/);
    expect(() => writeBundle({ ...fx, hub: { ...fx.hub, node: 'w-1' } })).toThrow(/hub facts are for w-1/);
    const pem = other.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    expect(() => writeBundle({ ...fx, specText: `${fx.specText}\n# ${pem.split('\n').join('\n# ')}` })).toThrow(BundleInputError);
    expect(() => writeBundle({ ...fx, specText: `${fx.specText}\n# ${pem.split('\n').join('\n# ')}` })).toThrow(/spec\.yaml would carry a private key/);
    expect(() => writeBundle({ ...fx, trust: { ...fx.trust, hubCertPem: 'not a cert' } })).toThrow(/hub certificate is not a PEM certificate/);
    expect(existsSync(join(fx.workspace, 'bundle'))).toBe(false);
  });

  it('stages the bundle beside its place until commit, and discard leaves the old one', () => {
    const before = snapshot(writeBundle(fx).dir);
    const prepared = prepareBundle({ ...fx, nodes: { ...fx.nodes, 'w-1': { ...fx.nodes['w-1']!, sshHostKey: 'ssh-ed25519 AAAAother root@w-1' } } });
    expect(prepared.stagingDir).not.toBe(prepared.dir);
    expect(snapshot(prepared.dir)).toEqual(before);
    expect(readFileSync(join(prepared.stagingDir, 'nodes/w-1.json'), 'utf8')).toMatch(/AAAAother/);
    prepared.discard();
    expect(existsSync(prepared.stagingDir)).toBe(false);
    expect(snapshot(prepared.dir)).toEqual(before);
    const again = prepareBundle({ ...fx, nodes: { ...fx.nodes, 'w-1': { ...fx.nodes['w-1']!, sshHostKey: 'ssh-ed25519 AAAAother root@w-1' } } });
    again.commit();
    expect(readFileSync(join(again.dir, 'nodes/w-1.json'), 'utf8')).toMatch(/AAAAother/);
    expect(() => again.commit()).toThrow(/already committed/);
  });

  it('removes staging directories of seals whose process died', () => {
    const dead = join(fx.workspace, '.bundle.tmp-999999999-abcdef');
    mkdirSync(join(dead, 'nodes'), { recursive: true });
    writeFileSync(join(dead, 'nodes/x.json'), '{}');
    const mine = join(fx.workspace, `.bundle.tmp-${process.pid}-keepme`);
    mkdirSync(mine);
    writeBundle(fx);
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(mine)).toBe(true);
  });

  it('refuses a build whose attestations do not verify', () => {
    appendFileSync(join(fx.buildDir, 'sbom.cdx.json'), ' ');
    expect(() => writeBundle(fx)).toThrow(/does not verify: sbom\.cdx\.json: content differs/);
  });
});

describe('verifyBundle', () => {
  it('passes a fresh bundle with the embedded key and with the same key given, and says what it checked', async () => {
    const { dir } = writeBundle(fx);
    const r = await verifyBundle(dir);
    expect(r.reason).toBeUndefined();
    expect(r.ok).toBe(true);
    expect(r.cluster).toBe('lab-3');
    expect(r.keyid).toBe(fx.signingKey.keyid);
    const text = r.checks.join('\n');
    for (const word of ['signature:', 'files:', 'secrets:', 'build:', 'spec:', 'plan:', 'trust:', 'records:']) expect(text).toContain(word);
    expect((await verifyBundle(dir, { publicKeyPem: fx.signingKey.publicKeyPem })).ok).toBe(true);
  });

  it('names a changed, missing or unlisted file', async () => {
    const { dir } = writeBundle(fx);
    appendFileSync(join(dir, 'nodes/w-1.json'), ' ');
    expect(await verifyBundle(dir)).toMatchObject({ ok: false, file: 'nodes/w-1.json', reason: expect.stringMatching(/^size/) });
    writeBundle(fx);
    const plan = readFileSync(join(dir, 'plan.json'), 'utf8');
    writeFileSync(join(dir, 'plan.json'), plan.replace('"lab-3"', '"lab-4"'));
    expect(await verifyBundle(dir)).toMatchObject({ ok: false, file: 'plan.json', reason: expect.stringMatching(/^sha256/) });
    writeBundle(fx);
    rmSync(join(dir, 'trust/hub.pin'));
    expect(await verifyBundle(dir)).toMatchObject({ ok: false, file: 'trust/hub.pin', reason: 'missing' });
    writeBundle(fx);
    writeFileSync(join(dir, 'build/iso-notes.txt'), 'x');
    expect(await verifyBundle(dir)).toMatchObject({ ok: false, file: 'build/iso-notes.txt', reason: 'not listed in bundle.json' });
    writeBundle(fx);
    symlinkSync('/etc/hostname', join(dir, 'trust/link'));
    expect(await verifyBundle(dir)).toMatchObject({ ok: false, file: 'trust/link', reason: expect.stringMatching(/unexpected symlink/) });
  });

  it('rejects a changed bundle.json, a missing envelope and a different key', async () => {
    const { dir } = writeBundle(fx);
    const m = readFileSync(join(dir, 'bundle.json'), 'utf8');
    writeFileSync(join(dir, 'bundle.json'), m.replace('"lab-3"', '"lab-9"'));
    expect(await verifyBundle(dir)).toMatchObject({ ok: false, file: 'bundle.json', reason: expect.stringMatching(/differs from what/) });
    writeBundle(fx);
    const other = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const wrong = await verifyBundle(dir, { publicKeyPem: other });
    expect(wrong).toMatchObject({ ok: false, file: 'signatures/build-signing-key.pub.pem' });
    expect(wrong.reason).toMatch(/is not the key given/);
    // Without the embedded key, a different pinned key fails on the signature itself.
    rmSync(join(dir, 'signatures/build-signing-key.pub.pem'));
    expect(await verifyBundle(dir, { publicKeyPem: other })).toMatchObject({ ok: false, file: 'signatures/bundle.json.dsse.json', reason: expect.stringMatching(/does not verify/) });
    expect(await verifyBundle(dir)).toMatchObject({ ok: false, file: 'signatures/build-signing-key.pub.pem', reason: expect.stringMatching(/missing/) });
    expect((await verifyBundle(dir, { publicKeyPem: fx.signingKey.publicKeyPem })).ok).toBe(true);
    rmSync(join(dir, 'signatures/bundle.json.dsse.json'));
    expect(await verifyBundle(dir)).toMatchObject({ ok: false, file: 'signatures/bundle.json.dsse.json', reason: 'missing' });
  });

  it('checks what the files say even when bundle.json was re-signed over them', async () => {
    const { dir } = writeBundle(fx);
    const k = fx.signingKey;
    const again = (): string => writeBundle(fx).dir;

    // Spec changed and re-hashed into the file list, but specSha256 still names the sealed spec.
    writeFileSync(join(dir, 'spec.yaml'), `${fx.specText}# edited\n`);
    resign(dir, k);
    expect(await verifyBundle(dir)).toMatchObject({ ok: false, file: 'spec.yaml', reason: expect.stringMatching(/specSha256 says/) });

    // A spec that is not the one the plan was made from.
    again();
    writeFileSync(join(dir, 'spec.yaml'), fx.specText.replace('cpu: 2', 'cpu: 3'));
    resign(dir, k, (m) => void (m.specSha256 = sha256Hex(readFileSync(join(dir, 'spec.yaml')))));
    expect(await verifyBundle(dir)).toMatchObject({ ok: false, file: 'plan.json', reason: expect.stringMatching(/was not planned from spec\.yaml/) });

    // A plan that does not parse as a Plan.
    again();
    writeFileSync(join(dir, 'plan.json'), '{"kind":"Plan"}\n');
    resign(dir, k, (m) => void (m.planSha256 = sha256Hex(readFileSync(join(dir, 'plan.json')))));
    expect(await verifyBundle(dir)).toMatchObject({ ok: false, file: 'plan.json', reason: expect.stringMatching(/not a valid plan/) });

    // Cluster name in bundle.json differs from the plan's.
    again();
    resign(dir, k, (m) => void (m.cluster = 'lab-4'));
    expect(await verifyBundle(dir)).toMatchObject({ ok: false, file: 'plan.json', reason: 'is for cluster lab-3, bundle.json says lab-4' });

    // A build attestation that its envelope did not sign.
    again();
    appendFileSync(join(dir, 'build/provenance.intoto.json'), '\n');
    resign(dir, k);
    expect(await verifyBundle(dir)).toMatchObject({ ok: false, file: 'build/provenance.intoto.json', reason: expect.stringMatching(/content differs/) });

    // A build made from another plan.
    again();
    const otherPlan = structuredClone(fx.plan);
    otherPlan.nodes[0]!.vm.memoryMiB += 1;
    writeFakeBuild(join(dir, 'build'), otherPlan, fx.specText, k);
    resign(dir, k, (m) => void (m.buildManifestSha256 = sha256Hex(readFileSync(join(dir, 'build/manifest.json')))));
    expect(await verifyBundle(dir)).toMatchObject({ ok: false, file: 'build/manifest.json', reason: expect.stringMatching(/another plan/) });

    // A hub pin that is not the hub certificate's.
    again();
    writeFileSync(join(dir, 'trust/hub.pin'), `sha256:${'0'.repeat(64)}\n`);
    resign(dir, k);
    expect(await verifyBundle(dir)).toMatchObject({ ok: false, file: 'trust/hub.pin', reason: expect.stringMatching(/trust\/hub\.crt is sha256:/) });

    // A hub certificate from another CA.
    again();
    const foreign = await (await import('./testing')).trustFixture(fx.plan);
    writeFileSync(join(dir, 'trust/hub.crt'), foreign.hubCertPem);
    writeFileSync(join(dir, 'trust/hub.pin'), `${(await import('../trust/ca')).certFingerprint(foreign.hubCertPem)}\n`);
    resign(dir, k);
    expect(await verifyBundle(dir)).toMatchObject({ ok: false, file: 'trust/hub.crt', reason: expect.stringMatching(/does not chain/) });

    // A node record missing for a planned node.
    again();
    rmSync(join(dir, 'nodes/cp-1.json'));
    resign(dir, k);
    expect(await verifyBundle(dir)).toMatchObject({ ok: false, file: 'nodes/cp-1.json', reason: expect.stringMatching(/the plan has node cp-1/) });

    // A private key smuggled into a listed file.
    again();
    const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    appendFileSync(join(dir, 'README.md'), pem);
    resign(dir, k);
    expect(await verifyBundle(dir)).toMatchObject({ ok: false, file: 'README.md', reason: expect.stringMatching(/private key/) });

    // And the untouched bundle still verifies.
    again();
    expect((await verifyBundle(dir)).ok).toBe(true);
  });
});
