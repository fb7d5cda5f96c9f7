// The restore run (run.ts) with a fake deploy DAG and a fake etcd (testing.ts): the stage order,
// the deploy before etcd, the re-seal after it (the bundle sealed from the empty etcd moved aside,
// the seal run again, the new bundle holding the snapshot), the moved bundle put back when the
// re-seal fails, and a rerun after a stopped deploy that finishes the restore.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PipelineEvent } from '../../common/pipeline/events';
import { runPipeline } from '../pipeline/runner';
import { certFingerprint } from '../trust/ca';
import { readIdentityFile } from '../trust/recovery';
import { clusterWorkspace } from '../workspace';
import type { RestoreRunRequest, RestoreRunResult } from './run';
import { BUNDLE_BEFORE_RESEAL, restoreRunStages } from './run';
import type { RestoreRunFixture } from '../bundle/testing';
import { restoreRunFixture } from '../bundle/testing';

let a: string;
let b: string;
let f: RestoreRunFixture;
let env: NodeJS.ProcessEnv;

beforeEach(async () => {
  a = mkdtempSync(join(tmpdir(), 'kd-h15e-run-a-'));
  b = mkdtempSync(join(tmpdir(), 'kd-h15e-run-b-'));
  mkdirSync(join(b, 'stick'));
  f = await restoreRunFixture(a, join(b, 'stick'));
  env = { KUBEDOS_WORKSPACE: join(b, 'ws') };
});
afterEach(() => {
  rmSync(a, { recursive: true, force: true });
  rmSync(b, { recursive: true, force: true });
});

function request(o: Partial<RestoreRunRequest> = {}): RestoreRunRequest {
  return {
    bundleDir: f.bundleDir,
    artifactDir: f.artifactDir,
    identity: readIdentityFile(f.identityFile),
    identityFile: f.identityFile,
    env,
    target: { kind: 'qemu-local' },
    expectKey: 'restore-proof',
    deployStart: { pipelineFor: f.pipelineFor },
    etcd: f.etcd,
    ...o,
  };
}

async function run(req: RestoreRunRequest) {
  const events: PipelineEvent[] = [];
  const deployEvents: PipelineEvent[] = [];
  const out: RestoreRunResult = {};
  const result = await runPipeline(restoreRunStages({ ...req, onDeployEvent: (e) => deployEvents.push(e) }, out), { name: 'restore', onEvent: (e) => events.push(e) });
  const stdout = events.flatMap((e) => (e.type === 'log' && e.stream === 'stdout' ? [e.line] : []));
  const ran = events.flatMap((e) => (e.type === 'stage' && e.state === 'running' ? [e.stage] : []));
  return { result, events, deployEvents, out, stdout: stdout.join('\n'), ran };
}

const timelinePhases = (ws: string): string[] => (JSON.parse(readFileSync(join(ws, 'restore-timeline.json'), 'utf8')) as { phases: { name: string }[] }).phases.map((p) => p.name);

describe('the restore run', () => {
  it('runs verify → workspace → deploy → etcd → seal → timeline, and seals again after etcd is back', async () => {
    const r = await run(request());
    expect(r.result.failures).toEqual([]);
    expect(r.result.ok).toBe(true);
    expect(r.ran).toEqual(['verify', 'workspace', 'deploy', 'etcd', 'seal', 'timeline']);
    // The deploy before etcd, then the deploy again for the seal: its seal wrote a bundle each time.
    expect(f.calls).toEqual(['deploy:provision', 'deploy:seal', 'etcd', 'deploy:provision', 'deploy:seal']);
    const ws = clusterWorkspace('lab-3', env);
    expect(r.out.workspace).toBe(ws);
    // The workspace's bundle is the one sealed after etcd was put back (it holds the snapshot), nothing left aside.
    expect(f.bundleSha(join(ws, 'bundle'))).toBe(f.restoredBundleSha);
    expect(existsSync(join(ws, BUNDLE_BEFORE_RESEAL))).toBe(false);
    // The lines the VM test and the user read.
    expect(r.stdout).toMatch(/^verify: bundle, recovery key and artifact of lab-3 check out offline/m);
    expect(r.stdout).toMatch(/^deploy: deploy converged \(\d+\.\d s\)$/m);
    expect(r.stdout).toContain(`identity: root CA ${certFingerprint(f.fx.trust.rootCaPem)} (the bundle's)`);
    expect(r.stdout).toMatch(/^identity: plan [0-9a-f]{64} \(the bundle's\)$/m);
    expect(r.stdout).toMatch(/^identity: etcd on cp-1 at revision 43 \(snapshot 42\), key restore-proof readable/m);
    expect(r.stdout).toMatch(/^seal: sealed again after etcd was put back: .*etcd snapshot of \d+ bytes from cp-1/m);
    expect(r.stdout).toMatch(/^timeline: .*restore-timeline\.json/m);
    expect(timelinePhases(ws)).toEqual(['verify', 'workspace', 'deploy', 'etcd', 'seal']);
    // The deploy's own events reach the caller (the CLI prints them as a deploy), two runs of it.
    expect(r.deployEvents.filter((e) => e.type === 'run')).toHaveLength(2);
    // The workbench follows the deploy inside the restore's deploy stage.
    expect(r.events.some((e) => e.type === 'log' && e.stage === 'deploy' && e.line.startsWith('deploy: seal success'))).toBe(true);
    expect(r.events.some((e) => e.type === 'log' && e.stage === 'seal' && e.line.startsWith('seal: seal success'))).toBe(true);
  });

  it('puts the moved bundle back when sealing again fails, and says so', async () => {
    f.failDeploy = { stage: 'seal', pass: 2 };
    const r = await run(request());
    expect(r.result.ok).toBe(false);
    expect(r.result.failures[0]).toMatchObject({ stage: 'seal' });
    expect(r.result.failures[0]!.message).toMatch(/^seal again failed: the deploy's seal did not run through: seal: fake seal failed on pass 2; the bundle the restore's deploy sealed \(before etcd was put back: its snapshot is not the restored data\) is back in /);
    const ws = clusterWorkspace('lab-3', env);
    expect(f.bundleSha(join(ws, 'bundle'))).toBe(f.emptyEtcdBundleSha);
    expect(existsSync(join(ws, BUNDLE_BEFORE_RESEAL))).toBe(false);
    expect(timelinePhases(ws)).toEqual(['verify', 'workspace', 'deploy', 'etcd', 'seal']);
    // A rerun resumes and seals again.
    f.failDeploy = undefined;
    const again = await run(request());
    expect(again.result.ok).toBe(true);
    expect(f.bundleSha(join(ws, 'bundle'))).toBe(f.restoredBundleSha);
  });

  it('a stopped deploy leaves etcd alone and names the rerun, which resumes and finishes', async () => {
    f.failDeploy = { stage: 'provision', pass: 1 };
    const r = await run(request());
    expect(r.result.ok).toBe(false);
    expect(r.ran).toEqual(['verify', 'workspace', 'deploy']);
    expect(f.calls).toEqual(['deploy:provision']);
    expect(r.result.failures[0]).toMatchObject({ stage: 'deploy' });
    expect(r.result.failures[0]!.message).toBe('deploy stopped: provision: fake provision failed on pass 1; etcd was not touched');
    expect(r.result.failures[0]!.hint).toMatch(/^fix the fake; then run the same restore again \(it resumes this workspace and the deploy's journal\): /); // the deploy's own next step first
    expect(r.result.failures[0]!.hint).toContain(`kubedos restore ${f.bundleDir} --artifact ${f.artifactDir} --recovery-key ${f.identityFile} --target qemu-local --expect-key restore-proof`);
    const ws = clusterWorkspace('lab-3', env);
    expect(timelinePhases(ws)).toEqual(['verify', 'workspace', 'deploy']);
    const again = await run(request());
    expect(again.result.ok).toBe(true);
    expect(again.stdout).toMatch(/^workspace: .*resumed \(an earlier run of this restore made it\)/m);
    expect(f.bundleSha(join(ws, 'bundle'))).toBe(f.restoredBundleSha);
  });

  it('an etcd restore that fails keeps the deploy\'s bundle and does not seal', async () => {
    f.failEtcd = true;
    const r = await run(request());
    expect(r.result.ok).toBe(false);
    expect(r.ran).toEqual(['verify', 'workspace', 'deploy', 'etcd']);
    expect(r.result.failures[0]).toMatchObject({ stage: 'etcd', node: 'cp-1', command: ['etcdctl', 'endpoint', 'health'], stderrTail: 'context deadline exceeded', hint: 'see journalctl -u etcd on cp-1' });
    expect(r.result.failures[0]!.message).toBe('etcd restore failed (health on cp-1): fake etcd on cp-1 did not come up');
    expect(f.bundleSha(join(clusterWorkspace('lab-3', env), 'bundle'))).toBe(f.emptyEtcdBundleSha);
  });

  it('without a target: verify, workspace, timeline, and what is left to do', async () => {
    const { target: _t, expectKey: _k, ...noTarget } = request();
    const r = await run(noTarget);
    expect(r.result.ok).toBe(true);
    expect(r.ran).toEqual(['verify', 'workspace', 'timeline']);
    expect(f.calls).toEqual([]);
    expect(r.stdout).toMatch(/deploy it with: kubedos deploy .*spec\.yaml --target TARGET/);
    expect(r.stdout).toMatch(/etcd is not put back without a target: .*kubedos restore .* --target TARGET$/m);
  });
});
