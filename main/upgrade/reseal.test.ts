// The recovery bundle sealed again after a completed upgrade and --rollback (reseal.ts), on a real
// sealed lab-3 workspace (main/bundle/testing.ts: real certificates, a real recovery key, a bundle
// written and verified by the seal's own code) with N+1 signed by the cluster's build key. What is
// checked is what a restore reads: the bundle verifies, is restorable with the recovery identity,
// names N+1's build and spec, and keeps the nodes' and hub's records; a failure leaves it as it was.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalJson, sha256Hex } from '../../common/canonical';
import { plan as planOf } from '../../common/plan/index';
import { parseSpec } from '../../common/spec/index';
import { lab3Waves } from '../../common/upgrade/testing';
import { generateKeyPairSync } from 'node:crypto';
import { keyidOf } from '../build/keys';
import { PLAN_FILE } from '../build/attest';
import { plannedWith } from '../build/verify';
import { BUNDLE_PATHS, BundleManifest, HubRecord, NodeRecord } from '../bundle/schema';
import { bundleFixture, recoveryFixture, recoveryInputOf, writeFakeBuild } from '../bundle/testing';
import { checkRestorable } from '../bundle/restorable';
import { recoveryIdentity } from '../trust/recovery';
import { readRestoreIdentity, verifyRestore } from '../restore/service';
import { verifyBundle } from '../bundle/verify';
import { writeBundle } from '../bundle/write';
import { removeTempDirs, tempDir } from '../testing/temp-dir';
import { nodeDeployJournal, WORKSPACE_LAYOUT } from '../workspace';
import { wgKeyPair } from '../trust/wg-keys';
import { deployedBuildDir, KEPT_SPEC_FILE, runningBuildDir, UPGRADE_BUILDS_DIR } from './preflight';
import { resealForRunningBuild } from './reseal';
import { SimCluster } from './testing';
import { runUpgradeService } from './vm-ops';
import { upgradeLivePath } from './apply-run';
import { readUpgradeLive } from './progress';
import type { UpgradeLiveReport } from '../../common/upgrade/progress';
import { applyEventLine } from '../../common/upgrade/progress';

afterAll(removeTempDirs);

const SNAPSHOT = { node: 'cp-1', data: Buffer.from('etcd snapshot after the upgrade') };

/** lab-3's spec at another version, A/B and rolling (what `kubedos upgrade` applies). */
function specAt(text: string, version: string): string {
  const out = text.replace('artifactVersion: "0.1.0"', `artifactVersion: "${version}"`);
  if (out === text && version !== '0.1.0') throw new Error('the lab-3 template no longer says artifactVersion: "0.1.0"');
  return out;
}

/** A sealed lab-3 (bundle at 0.1.0, recovery identity at hand) and N+1 (0.2.0) built from its own spec with the cluster's key. */
async function sealedCluster() {
  const root = tempDir('kd-reseal-');
  const fx = await bundleFixture(root);
  const identityFile = join(tempDir('kd-reseal-id-'), 'recovery.txt');
  await recoveryFixture(fx, identityFile);
  writeBundle({ ...fx, recovery: await recoveryInputOf(fx) });
  const env = { ...fx.env, KUBEDOS_RECOVERY_IDENTITY_FILE: identityFile };
  const bundleDir = join(fx.workspace, WORKSPACE_LAYOUT.bundle);
  const n1Text = specAt(fx.specText, '0.2.0');
  const n1Spec = parseSpec(n1Text).spec!;
  const n1 = tempDir('kd-reseal-n1-');
  writeFakeBuild(n1, planOf(n1Spec), n1Text, fx.signingKey, true);
  const digestOf = (dir: string): string => sha256Hex(readFileSync(join(dir, 'manifest.json')));
  return { fx, env, bundleDir, identityFile, n1, n1Text, n1Spec, digestOf, n0Digest: digestOf(fx.buildDir) };
}

const bundleJson = (dir: string): BundleManifest => BundleManifest.parse(JSON.parse(readFileSync(join(dir, BUNDLE_PATHS.manifest), 'utf8')));
const bytes = (dir: string, path: string): string => readFileSync(join(dir, path), 'utf8');

describe('the recovery bundle sealed again for the build the cluster runs', () => {
  it('after an upgrade: N+1 and its spec sealed, verified and restorable, nodes and hub kept, N kept in upgrade/builds; the same build again: unchanged; back to N from the kept copy', async () => {
    const c = await sealedCluster();
    const before = bundleJson(c.bundleDir);
    const nodesBefore = bytes(c.bundleDir, 'nodes/w-1.json');
    const hubBefore = bytes(c.bundleDir, BUNDLE_PATHS.hub);
    const stagesBefore = bytes(c.bundleDir, BUNDLE_PATHS.stages);
    const n0Spec = bytes(c.bundleDir, BUNDLE_PATHS.spec);
    const snapshotsTaken: string[] = [];
    const r = await resealForRunningBuild({ cluster: 'lab-3', env: c.env, buildDir: c.n1, version: '0.2.0', specText: c.n1Text, snapshot: async (p) => (snapshotsTaken.push(p.cluster.artifactVersion), SNAPSHOT) });
    expect(r).toMatchObject({ kind: 'resealed', line: expect.stringMatching(/^recovery bundle sealed again for 0\.2\.0 \(was 0\.1\.0\): .*bundle\.json sha256 [0-9a-f]{16}…, etcd snapshot of 31 bytes from cp-1; restore needs 0\.2\.0's build directory as its --artifact$/) });
    expect(snapshotsTaken).toEqual(['0.2.0']);
    const after = bundleJson(c.bundleDir);
    expect(after).toMatchObject({ cluster: 'lab-3', artifactVersion: '0.2.0', buildManifestSha256: c.digestOf(c.n1), specSha256: sha256Hex(c.n1Text), signingKeyId: before.signingKeyId, recovery: { etcdSnapshot: { node: 'cp-1', size: SNAPSHOT.data.length } } });
    expect(after.planSha256).not.toBe(before.planSha256);
    expect(bytes(c.bundleDir, BUNDLE_PATHS.spec)).toBe(c.n1Text);
    expect(bytes(c.bundleDir, 'nodes/w-1.json')).toBe(nodesBefore);
    expect(bytes(c.bundleDir, BUNDLE_PATHS.hub)).toBe(hubBefore);
    expect(bytes(c.bundleDir, BUNDLE_PATHS.stages)).toBe(stagesBefore);
    expect((await verifyBundle(c.bundleDir)).ok).toBe(true);
    const restorable = await checkRestorable(c.bundleDir, { identity: recoveryIdentity(c.fx.workspace, c.env) });
    expect(restorable).toMatchObject({ ok: true, level: 'decrypted' });
    // A restore from it takes N+1's build directory, and refuses N's.
    const restore = (artifactDir: string) => verifyRestore({ bundleDir: c.bundleDir, artifactDir, identity: readRestoreIdentity(c.identityFile), env: { KUBEDOS_WORKSPACE: tempDir('kd-reseal-restore-') } });
    await expect(restore(c.n1)).resolves.toMatchObject({ cluster: 'lab-3', manifest: { artifactVersion: '0.2.0' } });
    writeFakeBuild(c.fx.buildDir, c.fx.plan, c.fx.specText, c.fx.signingKey, true);
    await expect(restore(c.fx.buildDir)).rejects.toThrow(/is not the build the bundle names .*\(it is lab-3 artifact 0\.1\.0; the bundle names lab-3 artifact 0\.2\.0\)/);
    // N's signed files and its spec kept for --rollback; the bundle names what runs, so no pointer.
    const keptN = join(c.fx.workspace, UPGRADE_BUILDS_DIR, c.n0Digest);
    expect(c.digestOf(keptN)).toBe(c.n0Digest);
    expect(bytes(keptN, KEPT_SPEC_FILE)).toBe(n0Spec);
    // With the plan the bundle sealed it with (the one it was made from), in the build's own form.
    expect(sha256Hex(readFileSync(join(keptN, PLAN_FILE)))).toBe(plannedWith(readFileSync(join(keptN, 'manifest.json'))));
    expect(runningBuildDir('lab-3', c.env)).toBe(deployedBuildDir('lab-3', c.env));

    expect(await resealForRunningBuild({ cluster: 'lab-3', env: c.env, buildDir: c.n1, version: '0.2.0', snapshot: async () => SNAPSHOT })).toEqual({ kind: 'unchanged', line: `the recovery bundle already holds 0.2.0 (${c.bundleDir})` });

    // --rollback's reseal: from the kept copy and its spec.yaml, no spec given.
    const back = await resealForRunningBuild({ cluster: 'lab-3', env: c.env, buildDir: keptN, version: '0.1.0', snapshot: async () => ({ skipped: 'no etcd member answered' }) });
    expect(back).toMatchObject({ kind: 'resealed', line: expect.stringMatching(/^recovery bundle sealed again for 0\.1\.0 \(was 0\.2\.0\): .*no etcd snapshot \(a restore from it starts etcd empty\)/) });
    expect(bundleJson(c.bundleDir)).toMatchObject({ artifactVersion: '0.1.0', buildManifestSha256: c.n0Digest, specSha256: before.specSha256, planSha256: before.planSha256 });
    expect(bundleJson(c.bundleDir).recovery?.etcdSnapshot).toBeUndefined();
    expect((await verifyBundle(c.bundleDir)).ok).toBe(true);
    expect(bytes(join(c.fx.workspace, UPGRADE_BUILDS_DIR, c.digestOf(c.n1)), KEPT_SPEC_FILE)).toBe(c.n1Text);
  });

  it('refused, the bundle left as it was: a spec the build was not made from, a build signed by another key, no bundle, no kept spec', async () => {
    const c = await sealedCluster();
    const sha = (): string => sha256Hex(readFileSync(join(c.bundleDir, BUNDLE_PATHS.manifest)));
    const was = sha();
    const snapshot = async () => SNAPSHOT;
    const wrongSpec = await resealForRunningBuild({ cluster: 'lab-3', env: c.env, buildDir: c.n1, version: '0.2.0', specText: specAt(c.fx.specText, '0.3.0'), snapshot });
    expect(wrongSpec).toEqual({ kind: 'failed', line: expect.stringMatching(/^the recovery bundle still holds 0\.1\.0: a restore from it brings back 0\.1\.0, not 0\.2\.0: 0\.2\.0 was not built from this spec \(its signed manifest names spec sha256 [0-9a-f]{16}…, the spec is [0-9a-f]{16}…\); seal it again with kubedos upgrade SPEC --reseal/) });
    expect(await resealForRunningBuild({ cluster: 'lab-3', env: c.env, buildDir: c.n1, version: '0.2.0', snapshot })).toMatchObject({ kind: 'failed', line: expect.stringContaining(`the spec 0.2.0 was built from is not kept beside its signed files (${join(c.n1, KEPT_SPEC_FILE)})`) });

    const other = tempDir('kd-reseal-other-');
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    writeFakeBuild(other, planOf(c.n1Spec), c.n1Text, { privateKey, publicKeyPem, keyid: keyidOf(publicKeyPem) }, true);
    const otherKey = await resealForRunningBuild({ cluster: 'lab-3', env: c.env, buildDir: other, version: '0.2.0', specText: c.n1Text, snapshot });
    expect(otherKey).toMatchObject({ kind: 'failed', line: expect.stringMatching(/^the recovery bundle still holds 0\.1\.0: .*sealing it again failed: the build in .* was signed by key [0-9a-f]{64}, not by this cluster's build signing key [0-9a-f]{64}/) });
    expect(sha()).toBe(was);
    expect((await verifyBundle(c.bundleDir)).ok).toBe(true);

    // The bundle holds the build it is asked to seal, but its own spec.yaml or plan.json is gone: failed, saying which, not thrown.
    const specFile = join(c.bundleDir, BUNDLE_PATHS.spec);
    const specBytes = readFileSync(specFile);
    rmSync(specFile);
    expect(await resealForRunningBuild({ cluster: 'lab-3', env: c.env, buildDir: c.fx.buildDir, version: '0.1.0', snapshot })).toMatchObject({ kind: 'failed', line: expect.stringMatching(/^the recovery bundle holds 0\.1\.0 as it was sealed \(a node created again since keeps its old keys there\): its own spec\.yaml \(the spec 0\.1\.0 was built from\) cannot be read \(ENOENT/) });
    writeFileSync(specFile, specBytes);
    const planFile = join(c.bundleDir, BUNDLE_PATHS.plan);
    const planBytes = readFileSync(planFile);
    writeFileSync(planFile, '{"cluster":');
    expect(await resealForRunningBuild({ cluster: 'lab-3', env: c.env, buildDir: c.fx.buildDir, version: '0.1.0', snapshot })).toMatchObject({ kind: 'failed', line: expect.stringMatching(/: the bundle's plan\.json cannot be read as a plan \(.*plan\.json cannot be read as JSON: /) });
    writeFileSync(planFile, planBytes);
    expect(sha()).toBe(was);

    const empty = { KUBEDOS_WORKSPACE: tempDir('kd-reseal-none-') };
    expect(await resealForRunningBuild({ cluster: 'lab-3', env: empty, buildDir: c.n1, version: '0.2.0', specText: c.n1Text, snapshot })).toMatchObject({ kind: 'failed', line: expect.stringMatching(/^the recovery bundle was not sealed again: .* holds none/) });
  });

  it('a node a replace-based upgrade created again: its new host key and plane keys sealed (its own run\'s journal), the others kept; without a planes record since its first boot: refused, the bundle as it was', async () => {
    const c = await sealedCluster();
    const ws = c.fx.workspace;
    const cp1Before = bytes(c.bundleDir, 'nodes/cp-1.json');
    const w1Before = NodeRecord.parse(JSON.parse(bytes(c.bundleDir, 'nodes/w-1.json')));
    const hub = HubRecord.parse(JSON.parse(bytes(c.bundleDir, BUNDLE_PATHS.hub)));
    const newKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHcxIHJlcGxhY2VkIGJ5IHRoZSB1cGdyYWRlIGFnYWluISEh root@w-1';
    const newPlanes = { wg1: wgKeyPair().publicKey, wg2: wgKeyPair().publicKey, wg3: wgKeyPair().publicKey };
    // w-1's scoped deploy run (the replacement): first boot, then (or not) its planes stage.
    const nodeRun = (withPlanes: boolean): void => {
      const time = '2026-12-03T09:00:00.000Z';
      const summary = (stage: string) => ({ stage, changes: 1, notes: [] });
      const events = [
        { seq: 0, time, runId: 'deploy-w-1', type: 'run', state: 'started', stages: ['firstboot', 'backplanes'], pipeline: 'deploy w-1' },
        { seq: 1, time, runId: 'deploy-w-1', type: 'stage', stage: 'firstboot', state: 'success', rerun: 'safe-rerun', attempt: 0, durationMs: 1, output: { nodes: { 'w-1': { node: 'w-1', vmid: w1Before.vmid, sshHostKey: newKey } }, hub: { ...hub, node: hub.node }, summary: summary('firstboot') } },
        ...(withPlanes ? [{ seq: 2, time, runId: 'deploy-w-1', type: 'stage', stage: 'backplanes', state: 'success', rerun: 'safe-rerun', attempt: 0, durationMs: 1, output: { wgPublicKeys: { 'w-1': newPlanes }, summary: summary('backplanes') } }] : []),
      ];
      const path = join(ws, nodeDeployJournal('w-1'));
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    };
    nodeRun(false);
    const was = sha256Hex(readFileSync(join(c.bundleDir, BUNDLE_PATHS.manifest)));
    const refused = await resealForRunningBuild({ cluster: 'lab-3', env: c.env, buildDir: c.n1, version: '0.2.0', specText: c.n1Text, snapshot: async () => SNAPSHOT });
    expect(refused).toMatchObject({ kind: 'failed', line: expect.stringMatching(/^the recovery bundle still holds 0\.1\.0: .*w-1 is a new VM since the deploy \(.*deploy-w-1\.jsonl\), and no planes stage recorded its plane keys since its first boot \(rerun kubedos upgrade SPEC/) });
    expect(sha256Hex(readFileSync(join(c.bundleDir, BUNDLE_PATHS.manifest)))).toBe(was);

    nodeRun(true);
    const lines: string[] = [];
    const r = await resealForRunningBuild({ cluster: 'lab-3', env: c.env, buildDir: c.n1, version: '0.2.0', specText: c.n1Text, snapshot: async () => SNAPSHOT, log: (l) => lines.push(l) });
    expect(r.kind).toBe('resealed');
    expect(lines).toContainEqual(expect.stringMatching(/^w-1: a new VM since the bundle was sealed: its host key and plane keys from .*deploy-w-1\.jsonl$/));
    expect(NodeRecord.parse(JSON.parse(bytes(c.bundleDir, 'nodes/w-1.json')))).toMatchObject({ node: 'w-1', role: w1Before.role, vmid: w1Before.vmid, sshHostKey: newKey, wgPublicKeys: newPlanes });
    expect(bytes(c.bundleDir, 'nodes/cp-1.json')).toBe(cp1Before);
    expect((await verifyBundle(c.bundleDir)).ok).toBe(true);
    // Sealed with its new keys: the same build again is unchanged.
    expect(await resealForRunningBuild({ cluster: 'lab-3', env: c.env, buildDir: c.n1, version: '0.2.0', specText: c.n1Text, snapshot: async () => SNAPSHOT })).toMatchObject({ kind: 'unchanged' });
  });

  it('the bundle holds the build already but a node was created again since it was sealed (a --rollback replacing nodes after an upgrade whose reseal failed): sealed again with its new keys', async () => {
    const c = await sealedCluster();
    const w1 = NodeRecord.parse(JSON.parse(bytes(c.bundleDir, 'nodes/w-1.json')));
    const hub = HubRecord.parse(JSON.parse(bytes(c.bundleDir, BUNDLE_PATHS.hub)));
    const newKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHcxIHJlcGxhY2VkIGJ5IHRoZSByb2xsYmFjayBhZ2FpbiEhIQ root@w-1';
    const newPlanes = { wg1: wgKeyPair().publicKey, wg2: wgKeyPair().publicKey, wg3: wgKeyPair().publicKey };
    const time = '2026-12-03T09:00:00.000Z';
    const summary = (stage: string) => ({ stage, changes: 1, notes: [] });
    const events = [
      { seq: 0, time, runId: 'deploy-w-1', type: 'run', state: 'started', stages: ['firstboot', 'backplanes'], pipeline: 'deploy w-1' },
      { seq: 1, time, runId: 'deploy-w-1', type: 'stage', stage: 'firstboot', state: 'success', rerun: 'safe-rerun', attempt: 0, durationMs: 1, output: { nodes: { 'w-1': { node: 'w-1', vmid: w1.vmid, sshHostKey: newKey } }, hub, summary: summary('firstboot') } },
      { seq: 2, time, runId: 'deploy-w-1', type: 'stage', stage: 'backplanes', state: 'success', rerun: 'safe-rerun', attempt: 0, durationMs: 1, output: { wgPublicKeys: { 'w-1': newPlanes }, summary: summary('backplanes') } },
    ];
    const journal = join(c.fx.workspace, nodeDeployJournal('w-1'));
    mkdirSync(dirname(journal), { recursive: true });
    writeFileSync(journal, events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    // The bundle holds N (0.1.0); no spec given: the bundle's own spec and plan.
    const lines: string[] = [];
    const r = await resealForRunningBuild({ cluster: 'lab-3', env: c.env, buildDir: deployedBuildDir('lab-3', c.env), version: '0.1.0', snapshot: async () => SNAPSHOT, log: (l) => lines.push(l) });
    expect(r).toMatchObject({ kind: 'resealed', line: expect.stringMatching(/^recovery bundle sealed again for 0\.1\.0 \(was 0\.1\.0\)/) });
    expect(lines).toContainEqual(expect.stringMatching(/^w-1: a new VM since the bundle was sealed/));
    expect(NodeRecord.parse(JSON.parse(bytes(c.bundleDir, 'nodes/w-1.json')))).toMatchObject({ sshHostKey: newKey, wgPublicKeys: newPlanes });
    expect(bundleJson(c.bundleDir)).toMatchObject({ artifactVersion: '0.1.0', buildManifestSha256: c.n0Digest });
    expect((await verifyBundle(c.bundleDir)).ok).toBe(true);
    expect(await resealForRunningBuild({ cluster: 'lab-3', env: c.env, buildDir: deployedBuildDir('lab-3', c.env), version: '0.1.0', snapshot: async () => SNAPSHOT })).toMatchObject({ kind: 'unchanged' });
  });

  it('N+1 built by a kubedos that planned its spec differently: sealed with the plan it was made from (its plan.json); without one, or with one that is not its plan, refused saying so, the bundle as it was', async () => {
    const c = await sealedCluster();
    // What another kubedos made of the same spec (here: one more line in the Ansible inventory).
    const mine = planOf(c.n1Spec);
    const theirs = { ...mine, ansibleInventory: `${mine.ansibleInventory}\n# planned by another kubedos` };
    const built = tempDir('kd-reseal-theirs-');
    writeFakeBuild(built, theirs, c.n1Text, c.fx.signingKey, true);
    const was = sha256Hex(readFileSync(join(c.bundleDir, BUNDLE_PATHS.manifest)));
    const reseal = () => resealForRunningBuild({ cluster: 'lab-3', env: c.env, buildDir: built, version: '0.2.0', specText: c.n1Text, snapshot: async () => SNAPSHOT });

    expect(await reseal()).toEqual({ kind: 'failed', line: expect.stringMatching(/^the recovery bundle still holds 0\.1\.0: a restore from it brings back 0\.1\.0, not 0\.2\.0: this kubedos plans its spec differently from the kubedos that built 0\.2\.0 \(.*\), and .* keeps no plan\.json \(builds made before it was kept\): seal it with the kubedos that built 0\.2\.0 \(kubedos upgrade SPEC --reseal\), or build 0\.2\.0 again with this one$/) });
    writeFileSync(join(built, PLAN_FILE), canonicalJson(mine));
    expect(await reseal()).toEqual({ kind: 'failed', line: expect.stringMatching(/: its plan\.json \(.*\) is not the plan it was made from: sha256 [0-9a-f]{64}, the manifest's inputs\.planSha256 says [0-9a-f]{64}$/) });
    expect(sha256Hex(readFileSync(join(c.bundleDir, BUNDLE_PATHS.manifest)))).toBe(was);

    writeFileSync(join(built, PLAN_FILE), canonicalJson(theirs));
    expect(await reseal()).toMatchObject({ kind: 'resealed' });
    expect(canonicalJson(JSON.parse(bytes(c.bundleDir, BUNDLE_PATHS.plan)))).toBe(canonicalJson(theirs));
    expect((await verifyBundle(c.bundleDir)).ok).toBe(true);
  });

  it('through the upgrade service: a completed upgrade reseals for N+1, --rollback for N', async () => {
    const c = await sealedCluster();
    const n0 = { version: '0.1.0', digest: c.n0Digest };
    const n1 = { version: '0.2.0', digest: c.digestOf(c.n1) };
    const ab = (text: string): string => text.replace(/^spec:\n/m, 'spec:\n  upgrades:\n    diskLayout: ab\n');
    // The service takes the spec as read: N+1 is built from the A/B spec the upgrade is run with.
    const n1Text = ab(c.n1Text);
    const n1Spec = parseSpec(n1Text).spec!;
    expect(n1Spec.spec.upgrades?.diskLayout).toBe('ab');
    writeFakeBuild(c.n1, planOf(n1Spec), n1Text, c.fx.signingKey, true);
    n1.digest = c.digestOf(c.n1);
    const sim = new SimCluster(tempDir('kd-reseal-sim-'), ['cp-1', 'w-1', 'master'], n0);
    let t = 0;
    const clock = { now: () => t, sleep: async (ms: number) => void (t += Math.max(ms, 1)) };
    const one = lab3Waves().filter((w) => w.nodes.includes('w-1'));
    const spec = { ...n1Spec, spec: { ...n1Spec.spec, kubernetes: { ...n1Spec.spec.kubernetes, ha: { ...n1Spec.spec.kubernetes.ha, upgradeStrategy: 'rolling' as const } } } };
    // The Pipeline view's live file while the bundle is sealed: the run still running, its seal line last.
    const livePath = upgradeLivePath('lab-3', c.env);
    const whileSealing: (UpgradeLiveReport | undefined)[] = [];
    const reseal = { snapshot: async () => (whileSealing.push(readUpgradeLive(livePath, () => true)), SNAPSHOT) };
    const events: string[] = [];
    const up = await runUpgradeService({ spec, waves: one, from: n0, to: n1, artifact: { dir: c.n1, keyid: c.fx.signingKey.keyid }, specText: n1Text, reseal, ops: sim, env: c.env, onEvent: (e) => events.push(applyEventLine(e)), ...clock });
    expect(up).toMatchObject({ kind: 'done', message: expect.stringMatching(/\nrecovery bundle sealed again for 0\.2\.0 \(was 0\.1\.0\)/) });
    expect(whileSealing[0]).toMatchObject({ state: 'running', run: { lines: expect.arrayContaining([expect.objectContaining({ step: 'seal', text: expect.stringMatching(/^the recovery bundle again for 0\.2\.0, the build every node runs/) })]) } });
    expect(whileSealing[0]?.run.end).toBeUndefined();
    const seals = events.filter((l) => l.startsWith('seal '));
    expect(seals[0]).toMatch(/^seal the recovery bundle again for 0\.2\.0/);
    expect(seals).toContainEqual(expect.stringMatching(/^seal etcd snapshot: 31 bytes from cp-1/));
    // The files a new build changes are counted, the first few named (not the whole list).
    expect(seals).toContainEqual(expect.stringMatching(/^seal changed since the last seal, \d+ files: [^,]+(, [^,]+){4} … and \d+ more$/));
    expect(seals.at(-1)).toMatch(/^seal recovery bundle sealed again for 0\.2\.0 \(was 0\.1\.0\)/);
    // Once sealed, the live file's end is the run's whole outcome, the bundle's line in it (and the last line).
    const after = readUpgradeLive(livePath, () => false);
    expect(after).toMatchObject({ state: 'finished', run: { end: { kind: 'done', message: up.message } } });
    expect(up.message.split('\n').at(-1)).toMatch(/^recovery bundle sealed again for 0\.2\.0/);
    expect(after?.run.lines?.at(-1)).toMatchObject({ step: 'seal', text: up.message.split('\n').at(-1) });
    expect(bundleJson(c.bundleDir)).toMatchObject({ artifactVersion: '0.2.0', buildManifestSha256: n1.digest });
    expect(runningBuildDir('lab-3', c.env)).toBe(deployedBuildDir('lab-3', c.env));
    const rb = await runUpgradeService({ spec, waves: one, from: n1, reseal, ops: sim, env: c.env, ...clock });
    expect(rb).toMatchObject({ kind: 'done', message: expect.stringMatching(/\nrecovery bundle sealed again for 0\.1\.0 \(was 0\.2\.0\)/) });
    expect(rb.message).not.toContain('note:');
    expect(bundleJson(c.bundleDir)).toMatchObject({ artifactVersion: '0.1.0', buildManifestSha256: n0.digest });
  });
});
