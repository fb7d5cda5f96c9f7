// The maintenance window closing during `kubedos upgrade` (apply-run.ts `maintenanceWindow`): asked
// before each node's first action, never in the middle of a node; over simulated lab-3 nodes whose
// boot counter and gate are the real node scripts (SimCluster). The clock is a counter from a fixed
// date: sleeping advances it.
import { afterAll, describe, expect, it } from 'vitest';
import type { MaintenanceWindow } from '../../common/spec/schema';
import { windowAt } from '../../common/upgrade/policy';
import type { WindowState } from '../../common/upgrade/policy';
import { buildRef as build, lab3Waves, replaceWaves } from '../../common/upgrade/testing';
import { removeTempDirs, tempDir } from '../testing/temp-dir';
import type { ApplyEvent, UpgradeRecord } from './apply-run';
import { runApply } from './apply-run';
import { SimCluster } from './testing';

afterAll(removeTempDirs);

const N = build('0.1.0');
const N1 = build('0.2.0');
const waves = lab3Waves();
const NAMES = ['cp-1', 'w-1', 'master'];
// 2026-12-05 is a Saturday.
const SAT_0200 = Date.parse('2026-12-05T02:00:00Z');
let seq = 0;

function setup(start: number): { sim: SimCluster; record: UpgradeRecord; events: ApplyEvent[]; clock: { now: () => number; sleep: (ms: number) => Promise<void>; set: (t: number) => void } } {
  const sim = new SimCluster(tempDir(`kd21-window-${seq++}-`), NAMES, N);
  let t = start;
  return { sim, record: { slots: {}, bad: [] }, events: [], clock: { now: () => t, sleep: async (ms) => void (t += Math.max(ms, 1)), set: (x) => void (t = x) } };
}

describe('runApply with a maintenance window', () => {
  it('is asked once per node, before its slot write, never in the middle of a node', async () => {
    const { sim, record, clock } = setup(SAT_0200);
    const asked: string[] = [];
    const maintenanceWindow = (now: number): WindowState => {
      asked.push(sim.calls.at(-1) ?? 'start');
      return { open: true, always: false, until: now + 60_000 };
    };
    const end = await runApply({ waves, from: N, target: N1, ops: sim, record, ...clock, pollMs: 1000, maintenanceWindow });
    expect(end.kind).toBe('done');
    // Each node's write came right after the previous node's converge: nothing asked between a write and its reboot or converge.
    expect(asked).toEqual(['start', 'converge cp-1', 'converge w-1']);
  });

  it('closing after cp-1: the run stops cleanly before w-1 with the counts and the next opening; the rerun in the next window completes', async () => {
    const { sim, record, events, clock } = setup(SAT_0200);
    // A reboot takes 90 s of the clock (the simulated nodes take none): Saturdays 02:00 for one
    // minute, cp-1's write starts inside, w-1's would start outside.
    const reboot = sim.reboot.bind(sim);
    sim.reboot = async (node: string) => {
      clock.set(clock.now() + 90_000);
      return reboot(node);
    };
    const windows: MaintenanceWindow[] = [{ days: ['sat'], start: '02:00', durationMinutes: 1 }];
    const end = await runApply({ waves, from: N, target: N1, ops: sim, record, onEvent: (e) => events.push(e), ...clock, pollMs: 5000, maintenanceWindow: (t) => windowAt(t, windows) });
    const reason = 'the maintenance window closed at 2026-12-05 02:01 UTC: 1 node on 0.2.0 (cp-1), 2 untouched (w-1, master); rerun in the next window (opens 2026-12-12 02:00 UTC, in 6 d 23 h), or with --outside-window';
    expect(end).toEqual({ kind: 'stop', node: 'w-1', reason, message: `upgrade to 0.2.0 stopped before w-1: ${reason}` });
    expect(events.at(-1)).toEqual({ node: 'w-1', step: 'stop', detail: reason });
    // cp-1 whole (written, rebooted, converged), w-1 and master never touched.
    expect(sim.calls).toEqual(['write cp-1 B 0.2.0', 'reboot cp-1', 'converge cp-1']);

    sim.calls.length = 0;
    clock.set(Date.parse('2026-12-12T02:00:00Z'));
    const rerun = await runApply({ waves, from: N, target: N1, ops: sim, record, ...clock, pollMs: 1000, maintenanceWindow: (t) => windowAt(t, [{ days: ['sat'], start: '02:00', durationMinutes: 60 }]) });
    expect(rerun).toMatchObject({ kind: 'done', nodes: ['cp-1', 'w-1', 'master'] });
    expect(sim.calls).toEqual(['write w-1 B 0.2.0', 'reboot w-1', 'converge w-1', 'write master B 0.2.0', 'reboot master', 'converge master']);
  });

  it('closed before the first node: nothing is touched', async () => {
    const { sim, record, clock } = setup(Date.parse('2026-12-05T03:00:00Z'));
    const end = await runApply({ waves, from: N, target: N1, ops: sim, record, ...clock, maintenanceWindow: (t) => windowAt(t, [{ days: ['sat'], start: '02:00', durationMinutes: 30 }]) });
    expect(end).toMatchObject({ kind: 'stop', node: 'cp-1', reason: expect.stringMatching(/^the maintenance window closed at 2026-12-05 02:30 UTC: 0 nodes on 0\.2\.0, 3 untouched \(cp-1, w-1, master\); rerun in the next window \(opens 2026-12-12 02:00 UTC, in 6 d 23 h\)/) });
    expect(sim.calls).toEqual([]);
  });
  it('under replace: asked before a replaced node\'s drain (its first action), never between its fence, destroy and provision; closing stops before the next node', async () => {
    const sim = new SimCluster(tempDir(`kd21-window-${seq++}-`), ['cp-1', 'cp-2', 'cp-3', 'w-1', 'master'], N);
    let t = SAT_0200;
    const record: UpgradeRecord = { slots: {}, bad: [] };
    const asked: string[] = [];
    // Open until cp-1's replacement is done: the second question (before cp-2) finds it closed.
    const maintenanceWindow = (now: number): WindowState => {
      asked.push(sim.calls.at(-1) ?? 'start');
      return asked.length === 1 ? { open: true, always: false, until: now + 60_000 } : windowAt(now, [{ days: ['sun'], start: '02:00', durationMinutes: 60 }]);
    };
    const end = await runApply({ waves: replaceWaves(), from: N, target: N1, ops: sim, replace: sim, record, kubernetes: true, allowDestroy: true, now: () => t, sleep: async (ms) => void (t += Math.max(ms, 1)), pollMs: 1000, maintenanceWindow });
    expect(asked).toEqual(['start', 'uncordon cp-1']);
    expect(end).toMatchObject({ kind: 'stop', node: 'cp-2', reason: expect.stringMatching(/^the maintenance window closed at .*: 1 node on 0\.2\.0 \(cp-1\), 4 untouched/) });
    // cp-1 whole, cp-2 never touched (not drained, not fenced).
    expect(sim.calls).toEqual(['drain cp-1', 'fence cp-1', 'destroy cp-1', 'provision cp-1 0.2.0', 'converge cp-1', 'gate cp-1', 'uncordon cp-1']);
  });
});
