import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseSpec } from '../../common/spec/index';
import type { PipelineEvent } from '../../common/pipeline/events';
import { StagesRecord } from '../bundle/schema';
import type { BundleFixture } from '../bundle/testing';
import { bundleFixture, DEPLOY_STAGES, recoveryFixture, writeFakeBuild } from '../bundle/testing';
import { verifyBundle } from '../bundle/verify';
import type { BuildReport } from '../build/index';
import { keyidOf } from '../build/keys';
import type { StageDefinition } from '../pipeline/runner';
import { runPipeline } from '../pipeline/runner';
import { certFingerprint } from '../trust/ca';
import { planJson } from '../../common/plan/index';
import type { DeployContext, DeployOutputs } from './context';
import { newDeployContext } from './context';
import { sealStage } from './seal';
import { checkRestorable, openRecovery } from '../bundle/restorable';
import { ageIdentity } from '../trust/identity';
import { openSecretStore } from '../trust/secret-store';
import { createRecoveryKey, readIdentityFile } from '../trust/recovery';

let root: string;
let fx: BundleFixture;
let ctx: DeployContext;
/** The outputs the stand-in stages before seal hand to it. */
let outs: Omit<DeployOutputs, 'seal'>;

function context(): DeployContext {
  return newDeployContext({ source: { name: 'lab-3.yaml', text: fx.specText }, target: { kind: 'qemu-local' }, workspace: fx.workspace, repoRoot: root, env: fx.env, etcdSnapshot: async () => ({ skipped: 'no etcd in this test' }) });
}

function standInOutputs(): Omit<DeployOutputs, 'seal'> {
  const summary = (stage: string) => ({ stage, changes: 0, notes: [] });
  const build: BuildReport = { outDir: fx.buildDir, roles: [], built: [], reused: [], outputs: [], downloaded: 0, durationMs: 1, upstream: { packages: 0, images: 0, files: 0 }, lock: { path: join(fx.workspace, 'darksite.lock.json'), sha256: '0'.repeat(64), packages: 1, resolved: false, written: false }, logFile: join(fx.workspace, 'build.log') };
  const keys = Object.fromEntries(Object.entries(fx.nodes).map(([n, f]) => [n, f.wgPublicKeys as { wg1: string; wg2: string; wg3: string }]));
  const facts = Object.fromEntries(Object.entries(fx.nodes).map(([n, f]) => [n, { node: f.node, vmid: f.vmid, ...(f.firstboot ? { firstboot: f.firstboot } : {}), ...(f.sshHostKey ? { sshHostKey: f.sshHostKey } : {}) }]));
  return {
    validate: { spec: parseSpec(fx.specText).spec! },
    plan: { plan: fx.plan, json: planJson(fx.plan) },
    build: { ...build, summary: { stage: 'build', changes: 2, notes: ['built images'] } },
    provision: { summary: summary('provision') },
    firstboot: { nodes: facts, hub: fx.hub, summary: summary('firstboot') },
    backplanes: { wgPublicKeys: keys, summary: summary('backplanes') },
    enroll: { hubPin: certFingerprint(fx.trust.hubCertPem), enrolled: [], summary: summary('enroll') },
    converge: { summary: summary('converge') },
    workload: { kubernetes: 'disabled', summary: summary('workload') },
  };
}

let recoveryIdFile: string;
async function writeTrust(): Promise<void> {
  recoveryIdFile = join(root, 'offline-recovery-identity.txt');
  await recoveryFixture(fx, recoveryIdFile);
}

/** The deploy DAG with every stage before seal standing in as an instant success that hands over `outs`. */
async function deploy(c: DeployContext, force = true): Promise<{ ok: boolean; runId: string; events: PipelineEvent[]; failures: { message: string; hint?: string }[]; seal?: DeployOutputs['seal']; states: Record<string, string> }> {
  const before = DEPLOY_STAGES.filter((s) => s !== 'seal');
  const stages: StageDefinition[] = before.map((name, i) => ({ name, description: name, needs: i ? [before[i - 1]!] : [], rerun: 'safe-rerun', run: async () => structuredClone(outs[name]) }));
  stages.push(sealStage(c));
  const events: PipelineEvent[] = [];
  const r = await runPipeline(stages, { name: 'deploy', journalPath: join(c.workspace, 'journal.jsonl'), force, onEvent: (e) => events.push(e) });
  return { ok: r.ok, runId: r.runId, events, failures: r.failures, states: r.states, ...(r.outputs.seal ? { seal: r.outputs.seal as DeployOutputs['seal'] } : {}) };
}

const logs = (events: PipelineEvent[]): string => events.flatMap((e) => (e.type === 'log' && e.stage === 'seal' ? [e.line] : [])).join('\n');

beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), 'kd-seal-'));
  fx = await bundleFixture(root);
  ctx = context();
  outs = standInOutputs();
  await writeTrust();
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('seal stage', () => {
  it('is the last stage of the DAG, after workload, and safe to rerun', () => {
    const s = sealStage(ctx);
    expect(s).toMatchObject({ name: 'seal', needs: ['workload'], rerun: 'safe-rerun' });
    expect(s.description).toMatch(/recovery bundle/);
  });

  it('writes a bundle that verifies, records the run from the journal and logs what it checked', async () => {
    const r = await deploy(ctx);
    expect(r.failures).toEqual([]);
    expect(r.ok).toBe(true);
    const dir = join(fx.workspace, 'bundle');
    const v = await verifyBundle(dir);
    expect(v).toMatchObject({ ok: true, cluster: 'lab-3', keyid: keyidOf(fx.signingKey.publicKeyPem) });
    const text = logs(r.events);
    expect(text).toMatch(/^verified signature: bundle\.json signed by key/m);
    expect(text).toMatch(/^verified trust: hub\.pin sha256:/m);
    expect(text).toMatch(/first seal of this cluster/);
    expect(text).toContain(`kubedos verify ${dir}`);

    const stages = StagesRecord.parse(JSON.parse(readFileSync(join(dir, 'stages.json'), 'utf8')));
    expect(stages.runId).toBe(r.runId);
    expect(stages.pipeline).toBe('deploy');
    expect(stages.stages.map((s) => s.stage)).toEqual([...DEPLOY_STAGES]);
    expect(stages.stages.find((s) => s.stage === 'workload')?.state).toBe('success');
    expect(stages.stages.find((s) => s.stage === 'build')).toMatchObject({ state: 'success', changes: 2, notes: ['built images'] });
    expect(stages.stages.find((s) => s.stage === 'seal')?.state).toBe('running');
    expect(r.seal?.summary.changes).toBeGreaterThan(10);
    const sealDone = r.events.find((e) => e.type === 'stage' && e.stage === 'seal' && e.state === 'success');
    expect(sealDone).toMatchObject({ changes: r.seal!.summary.changes, output: r.seal });
  });

  it('on a second run rewrites only the run record', async () => {
    await deploy(ctx);
    const dir = join(fx.workspace, 'bundle');
    const spec1 = readFileSync(join(dir, 'spec.yaml'));
    const nodes1 = readFileSync(join(dir, 'nodes/master.json'));
    const r = await deploy(ctx);
    expect(r.ok).toBe(true);
    expect(r.seal?.summary).toMatchObject({ changes: 0 });
    expect(logs(r.events)).toMatch(/unchanged since the last seal except the run record/);
    expect(readFileSync(join(dir, 'spec.yaml'))).toEqual(spec1);
    expect(readFileSync(join(dir, 'nodes/master.json'))).toEqual(nodes1);
    expect(StagesRecord.parse(JSON.parse(readFileSync(join(dir, 'stages.json'), 'utf8'))).runId).toBe(r.runId);
    // A node that reports a new SSH host key is a change the summary names.
    outs.firstboot.nodes['w-1'] = { ...outs.firstboot.nodes['w-1']!, sshHostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKeyOtherKeyOtherKeyOtherKeyOtherKey0 root@w-1' };
    const r3 = await deploy(ctx);
    expect(r3.ok).toBe(true);
    expect(r3.seal?.summary).toMatchObject({ changes: 1 });
    expect(logs(r3.events)).toMatch(/changed since the last seal, 1 file: nodes\/w-1\.json$/m);
  });

  it('re-proves restore: the bundle carries root key, secrets, etcd snapshot and drill results, opened by the recovery identity only', async () => {
    const snapshot = Buffer.from('etcd snapshot stand-in: kubedos/restore-proof=42\n'.repeat(40));
    const withSnap = newDeployContext({ ...ctx, etcdSnapshot: async () => ({ node: 'master', data: snapshot }) });
    const { saveDrillRecord } = await import('../drills/history');
    const { emptyPhases } = await import('../../common/drills/timeline');
    saveDrillRecord(
      {
        schema: 'kubedos.drill/v1', id: 'd-0001', kind: 'drill', cluster: 'lab-3', scenario: 'kill-etcd-member', node: 'master', target: 'lab', status: 'passed',
        startedAtMs: 1_700_000_000_000, endedAtMs: 1_700_000_030_000, phases: emptyPhases(), mttrMs: 12_000, goal: { minutes: 5, source: 'spec' }, pass: true,
        thresholds: { heartbeatSeconds: 1, silenceSeconds: 3, handshakeMaxAgeSeconds: 180, signals: ['etcd'], source: 'spec' }, guard: { ok: true, reasons: [] },
      },
      fx.env,
    );
    const r = await deploy(withSnap);
    expect(r.ok).toBe(true);
    const dir = join(fx.workspace, 'bundle');
    const files = readdirSync(join(dir, 'recovery')).sort();
    expect(files).toEqual(['etcd-snapshot.db.age', 'recipient.txt', 'root-ca.key.age', 'secrets.json.age']);
    expect(JSON.parse(readFileSync(join(dir, 'drills/history.json'), 'utf8')).drills.map((d: { id: string; mttrMs: number }) => [d.id, d.mttrMs])).toEqual([['d-0001', 12_000]]);
    expect((await verifyBundle(dir)).ok).toBe(true);
    expect(logs(r.events)).toMatch(/restorable: checked without the recovery identity/);
    // Decryptable by the recovery recipient: every file opens and the keys are the certificates' keys.
    const identity = readIdentityFile(recoveryIdFile);
    const ok = await checkRestorable(dir, { identity });
    expect(ok).toMatchObject({ ok: true, level: 'decrypted' });
    const opened = await openRecovery(dir, identity);
    expect(opened.rootKeyPem).toBe(fx.trust.keys.root);
    expect(opened.secrets['ca/cluster.key']?.toString()).toBe(fx.trust.keys.cluster);
    expect(opened.etcdSnapshot?.data.equals(snapshot)).toBe(true);
    // Not by the workspace's own identity, nor by another recovery key.
    await expect(openRecovery(dir, await ageIdentity(fx.env))).rejects.toThrow(/cannot decrypt recovery\/root-ca\.key\.age/);
    const other = await createRecoveryKey();
    expect(await checkRestorable(dir, { identity: other.identity })).toMatchObject({ ok: false, file: 'recovery/root-ca.key.age' });
    // With the identity at hand, the seal opens everything itself.
    const r2 = await deploy(newDeployContext({ ...withSnap, env: { ...fx.env, KUBEDOS_RECOVERY_IDENTITY_FILE: recoveryIdFile } }));
    expect(r2.ok).toBe(true);
    expect(logs(r2.events)).toMatch(/restorable: proven with the recovery identity/);
    // Re-sealing the same secrets reuses their encrypted bytes (no change counted).
    expect(r2.seal?.summary.changes).toBe(0);
  });

  it('refuses to seal a bundle that could not restore: no recovery recipient, or a store without the cluster CA key', async () => {
    rmSync(join(fx.workspace, 'recovery/recipient.txt'));
    const r = await deploy(ctx);
    expect(r.ok).toBe(false);
    expect(r.failures[0]?.message).toMatch(/names no recovery recipient, so the bundle could not restore/);
    expect(r.failures[0]?.hint).toMatch(/kubedos recovery-key/);
    expect(readdirSync(fx.workspace)).not.toContain('bundle');
    await recoveryFixture(fx, join(root, 'second-identity.txt'));
    const store = await openSecretStore(join(fx.workspace, 'secrets'), await ageIdentity(fx.env));
    await store.delete('ca/cluster.key');
    const r2 = await deploy(ctx);
    expect(r2.ok).toBe(false);
    expect(r2.failures[0]?.message).toMatch(/lacks ca\/cluster\.key: the bundle could not resume this cluster's identity/);
  });

  it('fails with an actionable error when the enroll stage left no trust material', async () => {
    rmSync(join(fx.workspace, 'trust/cluster-ca.crt'));
    rmSync(join(fx.workspace, 'trust/hub.crt'));
    const r = await deploy(ctx);
    expect(r.ok).toBe(false);
    expect(r.failures[0]?.message).toMatch(/cluster-ca\.crt, hub\.crt missing in .*trust/);
    expect(r.failures[0]?.hint).toMatch(/enroll stage writes/);
  });

  it('fails when hub.pin is not the hub certificate\'s fingerprint', async () => {
    writeFileSync(join(fx.workspace, 'trust/hub.pin'), `sha256:${'a'.repeat(64)}\n`);
    const r = await deploy(ctx);
    expect(r.failures[0]?.message).toMatch(/hub\.pin says sha256:a{64}, but hub\.crt is sha256:/);
  });

  it('is skipped as converged when its inputs and the bundle in place are unchanged, and runs when the bundle was touched', async () => {
    await deploy(ctx, false);
    const again = await deploy(ctx, false);
    expect(again.states.seal).toBe('skipped');
    expect(again.events.find((e) => e.type === 'stage' && e.stage === 'seal' && e.state === 'skipped')).toMatchObject({ reason: expect.stringMatching(/^converged: inputs unchanged since run \w{8}; the bundle in place is the one the last seal wrote$/) });
    // The skipped stage still hands its output on (replayed from the journal).
    expect(again.seal?.bundleSha256).toMatch(/^[0-9a-f]{64}$/);
    writeFileSync(join(fx.workspace, 'bundle/bundle.json'), '{}');
    const third = await deploy(ctx, false);
    expect(third.states.seal).toBe('success');
    expect(third.events.some((e) => e.type === 'log' && e.stage === 'seal' && /but the bundle in place is not the one the last seal wrote: running/.test(e.line))).toBe(true);
    expect((await verifyBundle(join(fx.workspace, 'bundle'))).ok).toBe(true);
  });

  it('refuses a build signed by a key that is not this cluster\'s', async () => {
    const other = generateKeyPairSync('ed25519');
    const pem = other.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    writeFakeBuild(fx.buildDir, fx.plan, fx.specText, { privateKey: other.privateKey, publicKeyPem: pem, keyid: keyidOf(pem) });
    const r = await deploy(ctx);
    expect(r.failures[0]?.message).toMatch(/^seal: the build in .* was signed by key/);
    expect(r.failures[0]?.hint).toMatch(/same KUBEDOS_WORKSPACE/);
  });

  it('keeps the previous bundle when the new one does not verify', async () => {
    await deploy(ctx);
    const dir = join(fx.workspace, 'bundle');
    const before = readFileSync(join(dir, 'bundle.json'));
    // The spec file was edited after the plan was made: the bundle would not hold together.
    ctx.source = { ...ctx.source, text: fx.specText.replace('cpu: 2', 'cpu: 4') };
    const r = await deploy(ctx);
    expect(r.ok).toBe(false);
    expect(r.failures[0]?.message).toMatch(/does not verify: plan\.json: was not planned from spec\.yaml/);
    expect(readFileSync(join(dir, 'bundle.json'))).toEqual(before);
    expect((await verifyBundle(dir)).ok).toBe(true);
    expect(readdirSync(fx.workspace).filter((n) => n.startsWith('.bundle'))).toEqual([]);
  });
});
