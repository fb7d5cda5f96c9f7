import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseSpec } from '../../common/spec/index';
import type { PipelineEvent } from '../../common/pipeline/events';
import { StagesRecord } from '../bundle/schema';
import type { BundleFixture } from '../bundle/testing';
import { bundleFixture, DEPLOY_STAGES, writeFakeBuild } from '../bundle/testing';
import { verifyBundle } from '../bundle/verify';
import type { BuildReport } from '../build/index';
import { keyidOf } from '../build/keys';
import type { StageDefinition } from '../pipeline/runner';
import { runPipeline } from '../pipeline/runner';
import { certFingerprint } from '../trust/ca';
import type { DeployContext } from './context';
import { newDeployContext } from './context';
import { sealStage } from './seal';

let root: string;
let fx: BundleFixture;
let ctx: DeployContext;

function context(): DeployContext {
  const c = newDeployContext({ source: { name: 'lab-3.yaml', text: fx.specText }, target: { kind: 'qemu-local' }, workspace: fx.workspace, repoRoot: root, env: fx.env });
  c.spec = parseSpec(fx.specText).spec!;
  c.plan = fx.plan;
  c.build = { outDir: fx.buildDir, roles: [], built: [], reused: [], outputs: [], downloaded: 0, durationMs: 1, lock: { path: join(fx.workspace, 'darksite.lock.json'), sha256: '0'.repeat(64), packages: 1, resolved: false, written: false }, logFile: join(fx.workspace, 'build.log') } satisfies BuildReport;
  c.hub = fx.hub;
  c.nodes = { ...fx.nodes };
  c.summaries = { build: { stage: 'build', changes: 2, notes: ['built images'] } };
  return c;
}

function writeTrust(): void {
  const dir = join(fx.workspace, 'trust');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'root-ca.crt'), fx.trust.rootCaPem);
  writeFileSync(join(dir, 'cluster-ca.crt'), fx.trust.clusterCaPem);
  writeFileSync(join(dir, 'hub.crt'), fx.trust.hubCertPem);
  writeFileSync(join(dir, 'hub.pin'), `${certFingerprint(fx.trust.hubCertPem)}\n`);
}

/** The deploy DAG with every stage before seal standing in as an instant success. */
async function deploy(c: DeployContext, force = true): Promise<{ ok: boolean; runId: string; events: PipelineEvent[]; failures: { message: string; hint?: string }[] }> {
  const before = DEPLOY_STAGES.filter((s) => s !== 'seal');
  const stages: StageDefinition[] = before.map((name, i) => ({ name, description: name, needs: i ? [before[i - 1]!] : [], rerun: 'safe-rerun', run: async () => undefined }));
  stages.push(sealStage(c));
  const events: PipelineEvent[] = [];
  const r = await runPipeline(stages, { name: 'deploy', journalPath: join(c.workspace, 'journal.jsonl'), force, onEvent: (e) => events.push(e) });
  return { ok: r.ok, runId: r.runId, events, failures: r.failures };
}

const logs = (events: PipelineEvent[]): string => events.flatMap((e) => (e.type === 'log' && e.stage === 'seal' ? [e.line] : [])).join('\n');

beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), 'kd-seal-'));
  fx = await bundleFixture(root);
  ctx = context();
  writeTrust();
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
    expect(ctx.summaries.seal?.changes).toBeGreaterThan(10);
    const sealDone = r.events.find((e) => e.type === 'stage' && e.stage === 'seal' && e.state === 'success');
    expect(sealDone).toMatchObject({ changes: ctx.summaries.seal!.changes });
  });

  it('on a second run rewrites only the run record', async () => {
    await deploy(ctx);
    const dir = join(fx.workspace, 'bundle');
    const spec1 = readFileSync(join(dir, 'spec.yaml'));
    const nodes1 = readFileSync(join(dir, 'nodes/master.json'));
    const r = await deploy(ctx);
    expect(r.ok).toBe(true);
    expect(ctx.summaries.seal).toMatchObject({ changes: 0 });
    expect(logs(r.events)).toMatch(/unchanged since the last seal except the run record/);
    expect(readFileSync(join(dir, 'spec.yaml'))).toEqual(spec1);
    expect(readFileSync(join(dir, 'nodes/master.json'))).toEqual(nodes1);
    expect(StagesRecord.parse(JSON.parse(readFileSync(join(dir, 'stages.json'), 'utf8'))).runId).toBe(r.runId);
    // A node that reports a new SSH host key is a change the summary names.
    ctx.nodes['w-1'] = { ...ctx.nodes['w-1']!, sshHostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKeyOtherKeyOtherKeyOtherKeyOtherKey0 root@w-1' };
    const r3 = await deploy(ctx);
    expect(r3.ok).toBe(true);
    expect(ctx.summaries.seal).toMatchObject({ changes: 1 });
    expect(logs(r3.events)).toMatch(/changed since the last seal: nodes\/w-1\.json/);
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

  it('fails naming the stage that should have provided a missing input', async () => {
    delete ctx.hub;
    const r = await deploy(ctx);
    expect(r.failures[0]?.message).toBe('seal: no hub facts in this deploy');
    expect(r.failures[0]?.hint).toMatch(/firstboot stage/);
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
