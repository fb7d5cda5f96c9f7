// The Pipeline view's upgrade progress read from a slot record the REAL apply loop wrote (runApply
// over SimCluster: the node scripts' boot counter and gate), saved where `kubedos upgrade` keeps
// it: a good upgrade, a node stopping the upgrade at its gate, --rollback, a record that does not
// parse, and no record at all; and a replace-based upgrade (nodes replaced by new VMs) and its --rollback.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildRef as build, lab3Waves, replaceWaves } from '../../common/upgrade/testing';
import { removeTempDirs, tempDir } from '../testing/temp-dir';
import type { UpgradeRecord } from './apply-run';
import { readUpgradeRecord, runApply, runRollback, upgradeLivePath, upgradeRecordPath, writeUpgradeLive, writeUpgradeRecord } from './apply-run';
import { spawnSync } from 'node:child_process';
import { foldLive, startLive } from '../../common/upgrade/progress';
import { readUpgradeProgress } from './progress';
import { SimCluster, writeSealedBuild } from './testing';
import { generateKeyPairSync } from 'node:crypto';
import { keyidOf } from '../build/keys';

afterAll(removeTempDirs);

const N = build('0.1.0');
const N1 = build('0.2.0');
const PLAN = ['master', 'cp-1', 'w-1'];
let seq = 0;

/** A simulated lab-3 and the workspace `kubedos upgrade` keeps its record in, with the record saved as the service does. */
function setup() {
  const root = tempDir(`kd-h17u-progress-${seq++}-`);
  const env = { KUBEDOS_WORKSPACE: join(root, 'ws') };
  const sim = new SimCluster(join(root, 'nodes'), ['cp-1', 'w-1', 'master'], N);
  const path = upgradeRecordPath('lab-3', env);
  let t = 1_000;
  const common = { waves: lab3Waves(), from: N, ops: sim, saveRecord: (r: UpgradeRecord) => writeUpgradeRecord(path, r), now: () => t, sleep: async (ms: number) => void (t += Math.max(ms, 1)), pollMs: 1000 };
  return { env, sim, path, common };
}

describe('upgrade progress from the slot record', () => {
  it('no record: nothing to show', () => {
    const { env } = setup();
    expect(readUpgradeProgress('lab-3', PLAN, env)).toEqual({});
  });

  it('w-1 stops the upgrade at its gate: cp-1 written (slot B), w-1 rolled back with the reason, master not written', async () => {
    const { env, sim, path, common } = setup();
    sim.breaks = (node, b) => (node === 'w-1' && b.digest === N1.digest ? 'kubelet' : undefined);
    const end = await runApply({ ...common, target: N1, record: readUpgradeRecord(path) });
    expect(end.kind).toBe('stop');
    const { progress, error } = readUpgradeProgress('lab-3', PLAN, env);
    expect(error).toBeUndefined();
    const reason = 'slot B failed its health gate (services); the node fell back to slot A';
    expect(progress).toEqual({
      cluster: 'lab-3',
      target: N1,
      stopped: { digest: N1.digest, version: '0.2.0', node: 'w-1', reason },
      nodes: [
        { node: 'master', state: 'not-written' },
        { node: 'cp-1', state: 'written', slots: { A: N, B: N1 }, targetSlot: 'B' },
        { node: 'w-1', state: 'rolled-back', slots: { A: N, B: N1 }, targetSlot: 'B', reason },
      ],
      bad: [{ digest: N1.digest, version: '0.2.0', node: 'w-1', reason }],
    });

    // The fixed build: every node written; the rolled-back build stays listed.
    const fixed = build('0.2.1');
    expect((await runApply({ ...common, target: fixed, record: readUpgradeRecord(path) })).kind).toBe('done');
    const after = readUpgradeProgress('lab-3', PLAN, env).progress!;
    expect(after.target).toEqual(fixed);
    expect(after.stopped).toBeUndefined();
    expect(after.nodes.map((n) => [n.node, n.state, n.targetSlot])).toEqual([
      ['master', 'written', 'B'],
      ['cp-1', 'written', 'A'],
      ['w-1', 'written', 'B'],
    ]);
    expect(after.nodes[1]?.slots).toEqual({ A: fixed, B: N1 });
    expect(after.bad.map((b) => b.version)).toEqual(['0.2.0']);
  });

  it('a slot this foundry never wrote holds the sealed deploy\'s build: its version is read from the recovery bundle', async () => {
    const { env, sim, path, common } = setup();
    sim.breaks = (node, b) => (node === 'w-1' && b.digest === N1.digest ? 'kubelet' : undefined);
    await runApply({ ...common, target: N1, record: readUpgradeRecord(path) });
    expect(readUpgradeProgress('lab-3', PLAN, env).progress?.deployed).toBeUndefined(); // no sealed deploy: unknown, said as N
    const k = generateKeyPairSync('ed25519');
    const publicKeyPem = k.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    writeSealedBuild('lab-3', env, { version: '0.1.0', key: { privateKey: k.privateKey, publicKeyPem, keyid: keyidOf(publicKeyPem) }, packages: {}, payload: {} });
    const { progress } = readUpgradeProgress('lab-3', PLAN, env);
    expect(progress?.deployed).toBe('0.1.0');
    expect(progress?.nodes[0]).toEqual({ node: 'master', state: 'not-written' });
  });

  it('--rollback: every node that received the target reads rolled back, with the rollback as the reason', async () => {
    const { env, path, common } = setup();
    expect((await runApply({ ...common, target: N1, record: readUpgradeRecord(path) })).kind).toBe('done');
    expect(readUpgradeProgress('lab-3', PLAN, env).progress!.nodes.every((n) => n.state === 'written')).toBe(true);
    expect((await runRollback({ ...common, target: N1, record: readUpgradeRecord(path) })).kind).toBe('done');
    const p = readUpgradeProgress('lab-3', PLAN, env).progress!;
    expect(p.stopped).toMatchObject({ node: 'master', reason: 'rolled back by kubedos upgrade --rollback' });
    expect(p.nodes.map((n) => [n.node, n.state])).toEqual([
      ['master', 'rolled-back'],
      ['cp-1', 'rolled-back'],
      ['w-1', 'rolled-back'],
    ]);
    expect(p.nodes[1]?.reason).toBe('rolled back by kubedos upgrade --rollback');
  });

  it('a replace-based upgrade, saved as kubedos upgrade saves it: the replaced nodes (one stopped mid-replacement), the rerun, then --rollback replacing them again', async () => {
    const { env, path } = setup();
    const sim = new SimCluster(join(dirname(path), 'replace-nodes'), ['cp-1', 'cp-2', 'cp-3', 'w-1', 'master'], N);
    let once = true;
    sim.refuseReplace = (node, phase) => (node === 'w-1' && phase === 'provision' && once ? ((once = false), 'the deploy run failed at enroll on w-1') : undefined);
    let t = 1_000;
    const base = { waves: replaceWaves(), from: N, ops: sim, replace: sim, kubernetes: true, allowDestroy: true, saveRecord: (r: UpgradeRecord) => writeUpgradeRecord(path, r), now: () => t, sleep: async (ms: number) => void (t += Math.max(ms, 1)), pollMs: 1000 };
    const view = () => readUpgradeProgress('lab-3', PLAN, env).progress!.nodes.map((n) => [n.node, n.state, n.replaced ? `${n.replaced.state} ${n.replaced.build.version}` : '-']);
    expect((await runApply({ ...base, target: N1, record: readUpgradeRecord(path) })).kind).toBe('stop');
    expect(view()).toEqual([
      ['master', 'not-written', '-'],
      ['cp-1', 'replaced', 'done 0.2.0'],
      ['w-1', 'replacing', 'provisioning 0.2.0'],
      ['cp-2', 'replaced', 'done 0.2.0'],
      ['cp-3', 'replaced', 'done 0.2.0'],
    ]);
    // The rerun goes on from the saved record: w-1 provisioned again (never destroyed twice).
    expect((await runApply({ ...base, target: N1, record: readUpgradeRecord(path) })).kind).toBe('done');
    expect(sim.destroyed['w-1']).toBe(1);
    expect(view()).toEqual([
      ['master', 'written', '-'],
      ['cp-1', 'replaced', 'done 0.2.0'],
      ['w-1', 'replaced', 'done 0.2.0'],
      ['cp-2', 'replaced', 'done 0.2.0'],
      ['cp-3', 'replaced', 'done 0.2.0'],
    ]);
    expect((await runRollback({ ...base, target: N1, record: readUpgradeRecord(path) })).kind).toBe('done');
    expect(view()).toEqual([
      ['master', 'rolled-back', '-'],
      ['cp-1', 'rolled-back', 'done 0.1.0'],
      ['w-1', 'rolled-back', 'done 0.1.0'],
      ['cp-2', 'rolled-back', 'done 0.1.0'],
      ['cp-3', 'rolled-back', 'done 0.1.0'],
    ]);
  });

  it('a record that does not parse: an error naming the file and what to do', () => {
    const { env, path } = setup();
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, JSON.stringify({ slots: {}, bad: 'no' }));
    expect(readUpgradeProgress('lab-3', PLAN, env).error).toMatch(/upgrade\/record\.json: the upgrade record does not parse .*restore it from a backup/);
    writeFileSync(path, '{');
    expect(readUpgradeProgress('lab-3', PLAN, env).error).toMatch(/upgrade\/record\.json: the upgrade record cannot be read \(.*JSON.*\); restore it from a backup/);
  });

  it('a live file whose process is gone: reported as interrupted with what to do, never as running; with no record yet every node reads not written', () => {
    const { env } = setup();
    // A pid that existed and ended: no process has it now (pids are not reused this soon).
    const dead = spawnSync('true').pid;
    const live = foldLive(startLive({ pid: dead, kind: 'upgrade', target: N1, waves: lab3Waves(), at: 1_000 }), { node: 'cp-1', step: 'reboot', slot: 'B', detail: 'rebooting into slot B' }, 2_000);
    writeUpgradeLive(upgradeLivePath('lab-3', env), live);
    const r = readUpgradeProgress('lab-3', PLAN, env);
    expect(r.error).toBeUndefined();
    expect(r.live).toEqual({ state: 'gone', run: live, message: `the upgrade process (pid ${dead}) is gone: it was interrupted at cp-1 (rebooting into slot B); rerun kubedos upgrade with the 0.2.0 build to continue, or kubedos upgrade --rollback` });
    expect(r.progress?.nodes.map((n) => n.state)).toEqual(['not-written', 'not-written', 'not-written']);
    // The same file written by this (living) process: running.
    writeUpgradeLive(upgradeLivePath('lab-3', env), { ...live, pid: process.pid });
    expect(readUpgradeProgress('lab-3', PLAN, env).live?.state).toBe('running');
    writeFileSync(upgradeLivePath('lab-3', env), '{"pid":1}');
    expect(readUpgradeProgress('lab-3', PLAN, env).error).toMatch(/upgrade\/live\.json: the live upgrade file does not parse .*rewritten by the next kubedos upgrade/);
  });
});
