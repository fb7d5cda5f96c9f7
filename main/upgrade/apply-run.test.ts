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
