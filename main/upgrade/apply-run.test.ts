// The apply loop (apply-run.ts) over simulated lab-3 nodes whose boot counter and gate are the REAL
// node scripts (SimCluster in testing.ts: kubedos-boot, boot-select.cfg through the GRUB simulator,
// kubedos-health-gate). The clock is a counter: sleeping advances it.
import { afterAll, describe, expect, it } from 'vitest';
import type { BuildRef } from '../../common/upgrade/agent';
import { buildRef as build, lab3Waves } from '../../common/upgrade/testing';
import { removeTempDirs, tempDir } from '../testing/temp-dir';
import type { ApplyEvent, UpgradeRecord } from './apply-run';
import { readUpgradeRecord, runApply, runRollback, writeUpgradeRecord } from './apply-run';
import { SimCluster } from './testing';

afterAll(removeTempDirs);

const N = build('0.1.0');
const waves = lab3Waves();
const NAMES = ['cp-1', 'w-1', 'master'];
let seq = 0;

function setup(): { sim: SimCluster; record: UpgradeRecord; events: ApplyEvent[]; clock: { now: () => number; sleep: (ms: number) => Promise<void> } } {
  const sim = new SimCluster(tempDir(`kd18e-apply-run-${seq++}-`), NAMES, N);
  let t = 1_000;
  return { sim, record: { slots: {}, bad: [] }, events: [], clock: { now: () => t, sleep: async (ms) => void (t += Math.max(ms, 1)) } };
}

const active = (sim: SimCluster): string[] => NAMES.map((n) => /^active=(.)$/m.exec(sim.peek(n))![1]!);

describe('runApply: the upgrade loop over three simulated A/B nodes', () => {
  it('a good N+1: every node written, rebooted and committed, wave by wave; --rollback returns them in reverse waves', async () => {
    const { sim, record, events, clock } = setup();
    const N1 = build('0.2.0');
    const end = await runApply({ waves, from: N, target: N1, ops: sim, record, onEvent: (e) => events.push(e), ...clock, pollMs: 1000 });
    expect(end).toMatchObject({ kind: 'done', nodes: ['cp-1', 'w-1', 'master'] });
    expect(sim.calls).toEqual(['write cp-1 B 0.2.0', 'reboot cp-1', 'write w-1 B 0.2.0', 'reboot w-1', 'write master B 0.2.0', 'reboot master']);
    expect(active(sim)).toEqual(['B', 'B', 'B']);
    expect(record.slots['w-1']).toEqual({ A: N, B: N1 });
    expect(events.filter((e) => e.step === 'write').map((e) => `${e.node}: ${e.detail}`)).toContain('cp-1: slot B written and read back; the next boot tries it');
    expect(events.at(-1)).toEqual({ step: 'done', detail: '3 nodes on 0.2.0: cp-1, w-1, master' });

    sim.calls.length = 0;
    const rb = await runRollback({ waves, from: N, target: N1, ops: sim, record, ...clock, pollMs: 1000 });
    expect(rb).toMatchObject({ kind: 'done', nodes: ['master', 'w-1', 'cp-1'] });
    expect(sim.calls).toEqual(['try master A', 'reboot master', 'try w-1 A', 'reboot w-1', 'try cp-1 A', 'reboot cp-1']);
    expect(active(sim)).toEqual(['A', 'A', 'A']);
    // No re-upgrade loop: the rolled-back build is refused.
    const again = await runApply({ waves, from: N, target: N1, ops: sim, record, ...clock });
    expect(again).toMatchObject({ kind: 'refuse', message: expect.stringMatching(/^build 0\.2\.0 rolled back on master \(rolled back by kubedos upgrade --rollback\)/) });
  });

  it('w-1 fails its gate: stop naming w-1, the reason and slot A; the rerun of that build is refused; the fixed build completes', async () => {
    const { sim, record, events, clock } = setup();
    const N1 = build('0.2.0');
    sim.breaks = (node, b) => (node === 'w-1' && b.digest === N1.digest ? 'kubelet' : undefined);
    const end = await runApply({ waves, from: N, target: N1, ops: sim, record, onEvent: (e) => events.push(e), ...clock });
    expect(end).toMatchObject({ kind: 'stop', node: 'w-1', fellBackTo: 'A', reason: 'slot B failed its health gate (services); the node fell back to slot A' });
    expect(end.message).toMatch(/^upgrade to 0\.2\.0 stopped at w-1 \(wave 2\): .*\n1 node on 0\.2\.0 \(cp-1\), 1 untouched \(master\)\nbuild 0\.2\.0 is recorded as bad/);
    expect(events.at(-1)).toEqual({ node: 'w-1', step: 'stop', detail: 'slot B failed its health gate (services); the node fell back to slot A (runs slot A)' });
    expect(sim.calls.some((c) => c.includes('master'))).toBe(false);
    expect(active(sim)).toEqual(['B', 'A', 'A']);
    expect(record.bad).toMatchObject([{ digest: N1.digest, node: 'w-1' }]);

    sim.calls.length = 0;
    const rerun = await runApply({ waves, from: N, target: N1, ops: sim, record, ...clock });
    expect(rerun).toMatchObject({ kind: 'refuse', message: expect.stringMatching(/^build 0\.2\.0 rolled back on w-1/) });
    expect(sim.calls).toEqual([]);

    const fixed = build('0.2.1');
    const done = await runApply({ waves, from: N, target: fixed, ops: sim, record, ...clock });
    expect(done.kind).toBe('done');
    expect(sim.calls).toEqual(['write cp-1 A 0.2.1', 'reboot cp-1', 'write w-1 B 0.2.1', 'reboot w-1', 'write master B 0.2.1', 'reboot master']);
    // cp-1's previous slot now holds 0.2.0, not N: a rollback would not return to N, and says so before touching anything.
    sim.calls.length = 0;
    const rb = await runRollback({ waves, from: N, target: fixed, ops: sim, record, ...clock });
    expect(rb).toMatchObject({ kind: 'refuse', message: expect.stringMatching(/previous slot of 1 node does not hold 0\.1\.0 \(cp-1: slot B holds 0\.2\.0\)/) });
    expect(sim.calls).toEqual([]);
  });

  it('a kernel that never comes up on cp-1: GRUB runs out of tries, the upgrade stops at cp-1 with the others untouched', async () => {
    const { sim, record, clock } = setup();
    const N1 = build('0.2.0');
    sim.neverBoots = (node, b) => node === 'cp-1' && b.digest === N1.digest;
    const end = await runApply({ waves, from: N, target: N1, ops: sim, record, ...clock });
    expect(end).toMatchObject({ kind: 'stop', node: 'cp-1', fellBackTo: 'A', reason: expect.stringMatching(/^slot B ran out of boot tries/) });
    expect(sim.nodes['cp-1']!.boots).toBe(4); // three tries of B, then A
    expect(sim.calls).toEqual(['write cp-1 B 0.2.0', 'reboot cp-1']);
  });

  it('a write the node refuses stops the upgrade there, without a reboot; cancelling after a write withdraws the staged try', async () => {
    const a = setup();
    a.sim.refuseWrite = (node) => (node === 'cp-1' ? 'cp-1: writing N+1 into slot B failed (kubedos-slot-write exit 1): reads back sha256 x' : undefined);
    const end = await runApply({ waves, from: N, target: build('0.2.0'), ops: a.sim, record: a.record, ...a.clock });
    expect(end).toMatchObject({ kind: 'stop', node: 'cp-1', fellBackTo: 'A', reason: expect.stringMatching(/^writing slot B failed: cp-1: writing N\+1 into slot B failed/) });
    expect(a.sim.calls).toEqual(['write cp-1 B 0.2.0']);
    expect(a.record.bad).toEqual([]); // not the build's fault: a rerun may try again

    const b = setup();
    const ctl = new AbortController();
    const cancelled = await runApply({ waves, from: N, target: build('0.2.0'), ops: b.sim, record: b.record, signal: ctl.signal, ...b.clock, onEvent: (e) => e.detail.startsWith('slot B written') && ctl.abort() });
    expect(cancelled).toMatchObject({ kind: 'cancelled', message: 'upgrade to 0.2.0 cancelled; 1 node touched (cp-1); rerun to continue' });
    expect(b.sim.calls).toEqual(['write cp-1 B 0.2.0', 'cancel cp-1 B']);
    expect(b.sim.peek('cp-1')).toMatch(/^try=$/m);
  });

  it('the record round-trips through a private file', () => {
    const path = `${tempDir('kd18e-rec-')}/upgrade/record.json`;
    const r: UpgradeRecord = { target: build('0.2.0'), slots: { 'w-1': { A: N, B: build('0.2.0') as BuildRef } }, bad: [] };
    writeUpgradeRecord(path, r);
    expect(readUpgradeRecord(path)).toEqual(r);
  });
});

describe('runApply / runRollback where Kubernetes runs: drain before each reboot, uncordon after its gate', () => {
  it('a good N+1: write, drain, reboot, gate, uncordon per node; the rollback drains and uncordons too; nothing left cordoned', async () => {
    const { sim, record, events, clock } = setup();
    const N1 = build('0.2.0');
    const end = await runApply({ waves, from: N, target: N1, ops: sim, record, kubernetes: true, onEvent: (e) => events.push(e), ...clock, pollMs: 1000 });
    expect(end).toMatchObject({ kind: 'done', nodes: NAMES });
    expect(sim.calls).toEqual(NAMES.flatMap((n) => [`write ${n} B 0.2.0`, `drain ${n}`, `reboot ${n}`, `uncordon ${n}`]));
    // The uncordon follows the gate: the node had already committed slot B when it was uncordoned.
    expect(events.find((e) => e.node === 'cp-1' && e.step === 'uncordon')?.detail).toBe('slot B passed its gate: kubectl uncordon cp-1');
    expect(active(sim)).toEqual(['B', 'B', 'B']);
    expect(sim.cordoned.size).toBe(0);
    expect(events.some((e) => e.detail.startsWith('no Kubernetes'))).toBe(false);

    sim.calls.length = 0;
    const rb = await runRollback({ waves, from: N, target: N1, ops: sim, record, kubernetes: true, ...clock, pollMs: 1000 });
    expect(rb).toMatchObject({ kind: 'done', nodes: ['master', 'w-1', 'cp-1'] });
    expect(sim.calls).toEqual(['master', 'w-1', 'cp-1'].flatMap((n) => [`try ${n} A`, `drain ${n}`, `reboot ${n}`, `uncordon ${n}`]));
    expect(sim.cordoned.size).toBe(0);
  });

  it('Kubernetes off (lab-3): no drain, no uncordon, and the event says so once, not per node', async () => {
    const { sim, record, events, clock } = setup();
    await runApply({ waves, from: N, target: build('0.2.0'), ops: sim, record, onEvent: (e) => events.push(e), ...clock });
    expect(sim.calls.filter((c) => /^(drain|uncordon)/.test(c))).toEqual([]);
    expect(events.filter((e) => e.step === 'drain')).toEqual([{ step: 'drain', detail: 'no Kubernetes (kubernetes.enabled is false): nothing to drain or uncordon' }]);
  });

  it('a drain that fails on w-1 stops before its reboot: the try withdrawn, w-1 uncordoned again, the message says so', async () => {
    const { sim, record, clock } = setup();
    sim.refuseDrain = (node) => (node === 'w-1' ? 'kubectl --kubeconfig /etc/kubernetes/admin.conf drain w-1 … exited 1 on cp-1: error when evicting pods/"web-0": Cannot evict pod as it would violate the pod\'s disruption budget' : undefined);
    const end = await runApply({ waves, from: N, target: build('0.2.0'), ops: sim, record, kubernetes: true, ...clock });
    expect(sim.calls).toEqual(['write cp-1 B 0.2.0', 'drain cp-1', 'reboot cp-1', 'uncordon cp-1', 'write w-1 B 0.2.0', 'drain w-1', 'cancel w-1 B', 'uncordon w-1']);
    expect(end).toMatchObject({ kind: 'stop', node: 'w-1', fellBackTo: 'A' });
    expect(end.message.split('\n')[0]).toMatch(/^upgrade to 0\.2\.0 stopped at w-1 \(wave 2\): draining it before its reboot failed: kubectl .*drain w-1 .*disruption budget; the try of slot B was withdrawn \(not rebooted, still on its active slot\); w-1 was uncordoned again; fix what keeps the pods from moving/);
    expect(sim.peek('w-1')).toMatch(/^try=$/m);
    expect(sim.cordoned.size).toBe(0);
    expect(record.bad).toEqual([]);
  });

  it('a node that fails its gate is uncordoned once it runs its previous slot again', async () => {
    const { sim, record, clock } = setup();
    const N1 = build('0.2.0');
    sim.breaks = (node, b) => (node === 'w-1' && b.digest === N1.digest ? 'kubelet' : undefined);
    const end = await runApply({ waves, from: N, target: N1, ops: sim, record, kubernetes: true, ...clock });
    expect(end).toMatchObject({ kind: 'stop', node: 'w-1', fellBackTo: 'A' });
    expect(end.message.split('\n').at(-1)).toBe('w-1 was uncordoned again');
    expect(sim.calls.slice(-3)).toEqual(['drain w-1', 'reboot w-1', 'uncordon w-1']);
    expect(sim.cordoned.size).toBe(0);
  });
});
