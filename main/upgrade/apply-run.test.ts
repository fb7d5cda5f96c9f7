// The apply loop (apply-run.ts) over simulated lab-3 nodes whose boot counter and gate are the REAL
// node scripts (SimCluster in testing.ts: kubedos-boot, boot-select.cfg through the GRUB simulator,
// kubedos-health-gate). The clock is a counter: sleeping advances it.
import { afterAll, describe, expect, it } from 'vitest';
import type { BuildRef } from '../../common/upgrade/agent';
import { buildRef as build, lab3Waves } from '../../common/upgrade/testing';
import { removeTempDirs, tempDir } from '../testing/temp-dir';
import type { ApplyEvent, UpgradeRecord } from './apply-run';
import { nodeSlots, readUpgradeRecord, runApply, runRollback, upgradeLivePath, writeUpgradeRecord } from './apply-run';
import { initialAgentState } from '../../common/upgrade/agent';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UpgradeLive } from '../../common/upgrade/progress';
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

/** `sim` with `node`'s reboots timed (since(): ms since its last reboot, Infinity before any) and `over`'s methods in place of its own. */
function timedReboots(sim: SimCluster, now: () => number, node: string, over: (since: () => number) => Record<string, unknown>): SimCluster {
  let rebootAt: number | undefined;
  const o = over(() => (rebootAt === undefined ? Infinity : now() - rebootAt));
  return new Proxy(sim, {
    get(target, prop, receiver) {
      if (prop === 'reboot') {
        return async (n: string) => {
          if (n === node) rebootAt = now();
          return target.reboot(n);
        };
      }
      if (typeof prop === 'string' && prop in o) return o[prop];
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

describe('runApply: the upgrade loop over three simulated A/B nodes', () => {
  it('a good N+1: every node written, rebooted and committed, wave by wave; --rollback returns them in reverse waves', async () => {
    const { sim, record, events, clock } = setup();
    const N1 = build('0.2.0');
    const end = await runApply({ waves, from: N, target: N1, ops: sim, record, onEvent: (e) => events.push(e), ...clock, pollMs: 1000 });
    expect(end).toMatchObject({ kind: 'done', nodes: ['cp-1', 'w-1', 'master'] });
    expect(sim.calls).toEqual(['write cp-1 B 0.2.0', 'reboot cp-1', 'converge cp-1', 'write w-1 B 0.2.0', 'reboot w-1', 'converge w-1', 'write master B 0.2.0', 'reboot master', 'converge master']);
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
    expect(events.at(-1)).toEqual({ node: 'w-1', step: 'stop', detail: 'slot B failed its health gate (services); the node fell back to slot A' });
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
    expect(sim.calls).toEqual(['write cp-1 A 0.2.1', 'reboot cp-1', 'converge cp-1', 'write w-1 B 0.2.1', 'reboot w-1', 'converge w-1', 'write master B 0.2.1', 'reboot master', 'converge master']);
    // cp-1's previous slot now holds 0.2.0, not N: a rollback would not return to N, and says so before touching anything.
    sim.calls.length = 0;
    const rb = await runRollback({ waves, from: N, target: fixed, ops: sim, record, ...clock });
    expect(rb).toMatchObject({ kind: 'refuse', message: expect.stringMatching(/previous slot of 1 node does not hold 0\.1\.0 \(cp-1: slot B holds 0\.2\.0\)/) });
    expect(sim.calls).toEqual([]);
  });

  it('a kernel that never comes up on cp-1: GRUB runs out of its one try, cp-1 is back on A at the second boot, the upgrade stops at cp-1 with the others untouched', async () => {
    const { sim, record, clock } = setup();
    const N1 = build('0.2.0');
    sim.neverBoots = (node, b) => node === 'cp-1' && b.digest === N1.digest;
    const end = await runApply({ waves, from: N, target: N1, ops: sim, record, ...clock });
    expect(end).toMatchObject({ kind: 'stop', node: 'cp-1', fellBackTo: 'A', reason: expect.stringMatching(/^slot B ran out of boot tries/) });
    // The upgrade stages one try (UPGRADE_BOOT_TRIES): one boot of B, then A (issue 18: at most 2 boot attempts).
    expect(sim.nodes['cp-1']!.boots).toBe(2);
    expect(sim.calls).toEqual(['write cp-1 B 0.2.0', 'reboot cp-1']);
  });

  it('a slow boot (the hub under TCG): master answers on slot B 280 s after its reboot and its gate passes 40 s later, past the reboot\'s 5 minutes: waited for (its gate has its window from the answer), done', async () => {
    const { sim, record, events, clock } = setup();
    const N1 = build('0.2.0');
    const ops = timedReboots(sim, clock.now, 'master', (since) => ({
      status: async (node: string) => {
        const t = node === 'master' ? since() : Infinity;
        if (t < 280_000) throw new Error('master: no answer (its guest agent did not answer within 30 s)');
        const real = await sim.status(node);
        // Booted on B, its gate not passed yet for 40 s: not yet the active slot.
        return t < 320_000 ? real.replace(/^active=B$/m, 'active=A') : real;
      },
    }));
    const end = await runApply({ waves, from: N, target: N1, ops, record, onEvent: (e) => events.push(e), ...clock, pollMs: 10_000 });
    expect(end).toMatchObject({ kind: 'done' });
    expect(active(sim)).toEqual(['B', 'B', 'B']);
    const master = events.filter((e) => e.node === 'master' && e.step === 'wait').map((e) => e.detail);
    expect(master.some((d) => /not answering yet/.test(d))).toBe(true);
    expect(master.at(-1)).toBe('the node runs slot B, its gate has not passed');
  });

  it('a rebooting node whose agent does not answer a ping is not asked its status (no command\'s wait); seen back within a poll of its ping answering', async () => {
    const { sim, record, events, clock } = setup();
    const N1 = build('0.2.0');
    sim.breaks = (node, b) => (node === 'w-1' && b.digest === N1.digest ? 'kubelet' : undefined);
    const asked: number[] = [];
    const ops = timedReboots(sim, clock.now, 'w-1', (since) => {
      // Silent for 200 s after w-1's reboot (its boot of B, the gate's fail, the boot of A).
      const silent = (): boolean => since() < 200_000;
      return {
        answers: async (node: string) => !(node === 'w-1' && silent()),
        status: async (node: string) => {
          if (node === 'w-1' && since() !== Infinity) asked.push(since());
          if (node === 'w-1' && silent()) throw new Error('status asked of a node whose agent does not answer');
          return sim.status(node);
        },
      };
    });
    const end = await runApply({ waves, from: N, target: N1, ops, record, onEvent: (e) => events.push(e), ...clock, pollMs: 5_000 });
    expect(end).toMatchObject({ kind: 'stop', node: 'w-1', reason: 'slot B failed its health gate (services); the node fell back to slot A' });
    expect(events.filter((e) => e.node === 'w-1' && e.step === 'wait').map((e) => e.detail)).toContain('rebooting into slot B: not answering yet (its guest agent did not answer a ping)');
    // Asked only once it answers again: the first ask within one poll of the 200 s.
    expect(asked[0]).toBeGreaterThanOrEqual(200_000);
    expect(asked[0]).toBeLessThanOrEqual(205_000);
  });

  it('a node that never answers after its reboot: the stop says what its console last showed (a kernel hung before init, or its last lines)', async () => {
    const lockup = (s: number) => `[  ${s}.000000] watchdog: BUG: soft lockup - CPU#1 stuck for ${s}s! [cryptomgr_test:77]`;
    const hung = ['Linux version 6.1.0-28-amd64', lockup(26), lockup(52), lockup(78)].join('\n');
    // Upgrade: cp-1's reboot into B hangs in the kernel (the TCG soft lockup of boot-hang.ts).
    const a = setup();
    a.sim.hangOnBoot = (node) => node === 'cp-1';
    a.sim.consoleText = (node) => (node === 'cp-1' ? hung : undefined);
    const end = await runApply({ waves, from: N, target: build('0.2.0'), ops: a.sim, record: a.record, ...a.clock });
    expect(end).toMatchObject({ kind: 'stop', node: 'cp-1' });
    expect((end as { reason: string }).reason).toMatch(/^no answer within 300 s of its reboot into slot B \(.*\); its console: the kernel hung \(soft lockup in cryptomgr_test \(CPU#1 stuck for 78s\), 3 reports, before init started\): reset the VM .*; it falls back/);
    // Rollback: w-1 reboots into A and its console stops at a line (no lockup): its last lines, bounded.
    const b = setup();
    const N1 = build('0.2.0');
    expect(await runApply({ waves, from: N, target: N1, ops: b.sim, record: b.record, ...b.clock })).toMatchObject({ kind: 'done' });
    b.sim.hangOnBoot = (node) => node === 'w-1';
    b.sim.consoleText = (node) => (node === 'w-1' ? `Linux version 6.1.0-28-amd64\n\x1b[0;32m  OK  \x1b[0m] Reached target sysinit.target\nA stop job is running for foo.service (1min 30s / 1min 30s)\r\n${'x'.repeat(400)}\n` : undefined);
    const rb = await runRollback({ waves, from: N, target: N1, ops: b.sim, record: b.record, ...b.clock, pollMs: 1000 });
    expect(rb).toMatchObject({ kind: 'stop', node: 'w-1' });
    const msg = (rb as { message: string }).message;
    expect(msg).toContain(`slot A did not pass its gate within 300 s of the reboot (w-1: no answer (the machine is powered off)); its console's last lines: OK  ] Reached target sysinit.target | A stop job is running for foo.service (1min 30s / 1min 30s) | ${'x'.repeat(159)}…`);
    // A substrate without a console log: nothing added.
    const c = setup();
    c.sim.hangOnBoot = (node) => node === 'cp-1';
    const plain = await runApply({ waves, from: N, target: build('0.2.0'), ops: c.sim, record: c.record, ...c.clock });
    expect((plain as { reason: string }).reason).not.toContain('console');
  });

  it('a node whose firmware stalls after its reboot (qemu-local: nothing after the kernel\'s restart) is powered off and on, and the upgrade and the rollback go on', async () => {
    // Upgrade: w-1's reboot into B stalls once; power-cycled, it boots B (the try was not spent) and passes.
    const a = setup();
    const N1 = build('0.2.0');
    a.sim.stallOnReboot = (node) => node === 'w-1';
    const events: ApplyEvent[] = [];
    const end = await runApply({ waves, from: N, target: N1, ops: a.sim, record: a.record, ...a.clock, onEvent: (e) => events.push(e) });
    expect(end.kind).toBe('done');
    expect(a.sim.calls.filter((c) => c.startsWith('power-cycle'))).toEqual(['power-cycle w-1']);
    expect(events.filter((e) => e.node === 'w-1' && e.step === 'reboot').map((e) => e.detail)).toEqual(['rebooting into slot B', 'its console stayed at "reboot: machine restart": powered it off and on']);
    expect(a.sim.nodes['w-1']!.boots).toBe(1); // B's one boot: the stall spent no try
    // Rollback: w-1's reboot into A stalls too; power-cycled, it is back on A.
    const rb = await runRollback({ waves, from: N, target: N1, ops: a.sim, record: a.record, ...a.clock, pollMs: 1000 });
    expect(rb.kind).toBe('done');
    expect(a.sim.calls.filter((c) => c.startsWith('power-cycle'))).toEqual(['power-cycle w-1', 'power-cycle w-1']);
    // Stalled at every power-on (the firmware; the kernel in the initramfs): two power cycles, then the stop says what the console shows.
    const stalls: [console: string, says: string][] = [
      ['[ 2159.1] systemd-shutdown[1]: Rebooting.\r\n[ 2159.2] reboot: machine restart\r\n', 'its console: nothing after the kernel\'s restart ("reboot: machine restart"): its firmware never reached the boot loader; power the VM off and on'],
      ['[    6.193117] Run /init as init process\r\nLoading, please wait...\r\n', 'its console: nothing after the initramfs\'s "Loading, please wait...": its kernel stopped before udev started; power the VM off and on'],
    ];
    for (const [text, says] of stalls) {
      const b = setup();
      b.sim.stallOnReboot = (node) => node === 'cp-1';
      b.sim.stallOnPowerOn = (node) => node === 'cp-1';
      b.sim.consoleText = (node) => (node === 'cp-1' ? text : undefined);
      const stuck = await runApply({ waves, from: N, target: build('0.2.0'), ops: b.sim, record: b.record, ...b.clock });
      expect(stuck).toMatchObject({ kind: 'stop', node: 'cp-1' });
      expect(b.sim.calls.filter((c) => c.startsWith('power-cycle'))).toEqual(['power-cycle cp-1', 'power-cycle cp-1']);
      expect((stuck as { reason: string }).reason).toContain(says);
    }
    // A substrate that cannot tell (no recoverStall: Proxmox here): the wait and the stop as before.
    const c = setup();
    c.sim.stallOnReboot = (node) => node === 'cp-1';
    const plain = await runApply({ waves, from: N, target: build('0.2.0'), ops: Object.assign(Object.create(c.sim) as SimCluster, { recoverStall: undefined }), record: c.record, ...c.clock });
    expect(plain).toMatchObject({ kind: 'stop', node: 'cp-1', reason: expect.stringMatching(/^no answer within 300 s of its reboot into slot B/) });
    expect(c.sim.calls.filter((x) => x.startsWith('power-cycle'))).toEqual([]);
  });

  it("a stall in the initramfs of the tried slot's boot spent its one try: given back once (not the build's doing); a second such stall stops the run and says so", async () => {
    // Upgrade: w-1's first boot of B stops in the initramfs; power-cycled, GRUB falls back to A
    // (the try was counted); the loop stages B's try again and w-1 passes its gate on B.
    const a = setup();
    const N1 = build('0.2.0');
    a.sim.stallInInitramfs = (node, slot, nth) => node === 'w-1' && slot === 'B' && nth === 1;
    const events: ApplyEvent[] = [];
    const end = await runApply({ waves, from: N, target: N1, ops: a.sim, record: a.record, ...a.clock, onEvent: (e) => events.push(e) });
    expect(end.kind, end.kind === 'done' ? '' : end.message).toBe('done');
    expect(a.sim.calls.filter((c) => /^(power-cycle|try|reboot) w-1/.test(c))).toEqual(['reboot w-1', 'power-cycle w-1', 'try w-1 B', 'reboot w-1']);
    expect(events.filter((e) => e.node === 'w-1' && e.step === 'reboot').map((e) => e.detail)).toEqual([
      'rebooting into slot B',
      'its console stayed at "Loading, please wait...": its boot of slot B stopped in the initramfs; powered it off and on',
      "its boot of slot B stalled below init and the power cycle spent its one try (GRUB fell back to slot A): not 0.2.0's doing, so slot B is tried once more; rebooting into slot B",
    ]);
    expect(active(a.sim)).toEqual(['B', 'B', 'B']);
    expect(a.record.bad).toEqual([]);
    expect(JSON.parse((await a.sim.readAgentState('w-1')).state ?? '{}')).toMatchObject({ state: 'committed', active: 'B', running: { version: '0.2.0' }, bad: [] });
    // Rollback: w-1's first boot of A (its one try) stalls the same way: given back, w-1 is back on A.
    a.sim.calls.length = 0;
    a.sim.stallInInitramfs = (node, slot, nth) => node === 'w-1' && slot === 'A' && nth === 2; // its first, the fallback after the stall above
    const rb = await runRollback({ waves, from: N, target: N1, ops: a.sim, record: a.record, ...a.clock, pollMs: 1000 });
    expect(rb.kind, rb.kind === 'done' ? '' : rb.message).toBe('done');
    expect(a.sim.calls.filter((c) => /^(power-cycle|try|reboot) w-1/.test(c))).toEqual(['try w-1 A', 'reboot w-1', 'power-cycle w-1', 'try w-1 A', 'reboot w-1']);
    expect(active(a.sim)).toEqual(['A', 'A', 'A']);

    // Every boot of B stalls: the try is given back once, the second stall's fallback is the build's (recorded bad), said.
    const b = setup();
    b.sim.stallInInitramfs = (node, slot) => node === 'w-1' && slot === 'B';
    const stuck = await runApply({ waves, from: N, target: N1, ops: b.sim, record: b.record, ...b.clock });
    expect(stuck).toMatchObject({ kind: 'stop', node: 'w-1', fellBackTo: 'A', reason: 'slot B ran out of boot tries without passing its health gate (it never came up, or its gate never ran); the node fell back to slot A' });
    expect(b.sim.calls.filter((c) => /^(power-cycle|try) w-1/.test(c))).toEqual(['power-cycle w-1', 'try w-1 B', 'power-cycle w-1']);
    expect(stuck.message).toContain("w-1's boots of slot B stalled below init 2 times, each powered off and on: an initramfs that hangs with this build, or this host's stall again");
    expect(b.record.bad).toMatchObject([{ digest: N1.digest, node: 'w-1' }]);

    // The stall in the FALLBACK boot (slot A after B failed its gate: the sixth VM run's console) spent no try of B: nothing given back, the gate's reason stops the run.
    const c = setup();
    c.sim.breaks = (node, x) => (node === 'w-1' && x.digest === N1.digest ? 'kubelet' : undefined);
    c.sim.stallInInitramfs = (node, slot, nth) => node === 'w-1' && slot === 'A' && nth === 1;
    const failed = await runApply({ waves, from: N, target: N1, ops: c.sim, record: c.record, ...c.clock });
    expect(failed).toMatchObject({ kind: 'stop', node: 'w-1', fellBackTo: 'A', reason: 'slot B failed its health gate (services); the node fell back to slot A' });
    expect(c.sim.calls.filter((x) => /^(power-cycle|try) w-1/.test(x))).toEqual(['power-cycle w-1']);
    expect(failed.message).not.toContain('stalled below init');
  });

  it('w-1 fails its gate and is back on A before the foundry looks: the stop still names the failing check, from the gate\'s copy on data', async () => {
    const { sim, record, clock } = setup();
    const N1 = build('0.2.0');
    sim.missGateWindow = true;
    sim.breaks = (node, b) => (node === 'w-1' && b.digest === N1.digest ? 'kubelet' : undefined);
    const end = await runApply({ waves, from: N, target: N1, ops: sim, record, ...clock });
    expect(end).toMatchObject({ kind: 'stop', node: 'w-1', fellBackTo: 'A', reason: 'slot B failed its health gate (services); the node fell back to slot A' });
    expect(sim.nodes['w-1']!.boots).toBe(2); // B (the gate failed), then A in the same observation
  });

  it('w-1 powered off while its slot is written: stop naming w-1 and the cut; powered on it runs slot A; the rerun completes', async () => {
    const { sim, record, events, clock } = setup();
    const N1 = build('0.2.0');
    const cut = 'w-1: writing N+1 into slot B through a virtio-serial port: the guest agent connection closed after 512 of 2048 MiB';
    sim.powerOffDuringWrite = (node) => (node === 'w-1' ? cut : undefined);
    const end = await runApply({ waves, from: N, target: N1, ops: sim, record, onEvent: (e) => events.push(e), ...clock });
    expect(end).toMatchObject({ kind: 'stop', node: 'w-1' });
    expect(end.kind === 'stop' && end.reason).toBe(`writing slot B failed: ${cut}; then it did not answer (w-1: no answer (the machine is powered off)): once it runs again it boots its active slot (kubedos-slot-write stages a try only after its read-back)`);
    expect(events.at(-1)).toMatchObject({ node: 'w-1', step: 'stop' });
    expect(sim.calls).toEqual(['write cp-1 B 0.2.0', 'reboot cp-1', 'converge cp-1', 'write w-1 B 0.2.0']);
    expect(record.bad).toEqual([]); // the build is not to blame: no rollback recorded

    sim.powerOn('w-1');
    expect(await sim.status('w-1')).toMatch(/^booted=A\nactive=A\ntry=\n/);
    sim.powerOffDuringWrite = () => undefined;
    sim.calls.length = 0;
    const rerun = await runApply({ waves, from: N, target: N1, ops: sim, record, ...clock });
    expect(rerun).toMatchObject({ kind: 'done', nodes: ['cp-1', 'w-1', 'master'] });
    expect(sim.calls).toEqual(['write w-1 B 0.2.0', 'reboot w-1', 'converge w-1', 'write master B 0.2.0', 'reboot master', 'converge master']);
    expect(active(sim)).toEqual(['B', 'B', 'B']);
  });

  it('a write the node refuses stops the upgrade there, without a reboot; cancelling after a write withdraws the staged try', async () => {
    const a = setup();
    a.sim.refuseWrite = (node) => (node === 'cp-1' ? 'cp-1: writing N+1 into slot B failed (kubedos-slot-write exit 1): reads back sha256 x' : undefined);
    const end = await runApply({ waves, from: N, target: build('0.2.0'), ops: a.sim, record: a.record, onEvent: (e) => a.events.push(e), ...a.clock });
    expect(end).toMatchObject({ kind: 'stop', node: 'cp-1', fellBackTo: 'A', reason: expect.stringMatching(/^writing slot B failed: cp-1: writing N\+1 into slot B failed/) });
    // The reason ends with the slot the node keeps booting; the stop's line prints it as it is.
    expect(end.kind === 'stop' && end.reason).toMatch(/; it keeps booting slot A$/);
    expect(a.events.at(-1)?.detail).toBe(end.kind === 'stop' ? end.reason : '');
    expect(a.sim.calls).toEqual(['write cp-1 B 0.2.0']);
    expect(a.record.bad).toEqual([]); // not the build's fault: a rerun may try again

    const b = setup();
    const ctl = new AbortController();
    const cancelled = await runApply({ waves, from: N, target: build('0.2.0'), ops: b.sim, record: b.record, signal: ctl.signal, ...b.clock, onEvent: (e) => e.detail.startsWith('slot B written') && ctl.abort() });
    expect(cancelled).toMatchObject({ kind: 'cancelled', message: 'upgrade to 0.2.0 cancelled; 1 node touched (cp-1); rerun to continue' });
    expect(b.sim.calls).toEqual(['write cp-1 B 0.2.0', 'cancel cp-1 B']);
    expect(b.sim.peek('cp-1')).toMatch(/^try=$/m);
  });

  it('nodeSlots: the active slot\'s build is the node agent\'s when its state names that slot active, else the record\'s, else N; the other slot\'s the record\'s only', () => {
    const N1 = build('0.2.0');
    const agentOn = (slot: 'A' | 'B', running: BuildRef) => initialAgentState(running, slot);
    const empty: UpgradeRecord = { slots: {}, bad: [] };
    const rec: UpgradeRecord = { slots: { 'w-1': { A: N, B: N } }, bad: [] };
    expect(nodeSlots(empty, 'w-1', 'A', N, undefined)).toEqual({ running: N });
    expect(nodeSlots(empty, 'w-1', 'B', N, agentOn('B', N1))).toEqual({ running: N1 });
    expect(nodeSlots(rec, 'w-1', 'A', N, undefined)).toEqual({ running: N, other: N });
    expect(nodeSlots(rec, 'w-1', 'B', N, agentOn('B', N1))).toEqual({ running: N1, other: N, recordSays: N });
    expect(nodeSlots(rec, 'w-1', 'B', N, agentOn('B', N))).toEqual({ running: N, other: N });
    // An agent whose active slot is not the node's (mid-upgrade, not yet taken up): the record's word.
    expect(nodeSlots(rec, 'w-1', 'B', N, agentOn('A', N1))).toEqual({ running: N, other: N });
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
    expect(sim.calls).toEqual(NAMES.flatMap((n) => [`write ${n} B 0.2.0`, `drain ${n}`, `reboot ${n}`, `converge ${n}`, `uncordon ${n}`]));
    // The uncordon follows the gate and the converge: the node had already committed slot B when it was uncordoned.
    expect(events.find((e) => e.node === 'cp-1' && e.step === 'uncordon')?.detail).toBe('slot B passed its gate and cp-1 is converged: kubectl uncordon cp-1');
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
    expect(sim.calls).toEqual(['write cp-1 B 0.2.0', 'drain cp-1', 'reboot cp-1', 'converge cp-1', 'uncordon cp-1', 'write w-1 B 0.2.0', 'drain w-1', 'cancel w-1 B', 'uncordon w-1']);
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

describe('runApply: each node converged on N+1 after its gate (its new slot keeps only what the node learned)', () => {
  it('a good N+1: each node converged exactly once, once it runs slot B committed, before the next node is written; the record keeps it', async () => {
    const { sim, record, events, clock } = setup();
    const N1 = build('0.2.0');
    const seen: string[] = [];
    sim.refuseConverge = (node) => void seen.push(`${node} ${sim.peek(node).split('\n').slice(0, 3).join(' ')}`);
    const path = `${tempDir('kd-h18c-conv-')}/upgrade/record.json`;
    expect(await runApply({ waves, from: N, target: N1, ops: sim, record, saveRecord: (r) => writeUpgradeRecord(path, r), onEvent: (e) => events.push(e), ...clock })).toMatchObject({ kind: 'done' });
    expect(sim.calls.filter((c) => c.startsWith('converge'))).toEqual(['converge cp-1', 'converge w-1', 'converge master']);
    expect(sim.calls.indexOf('converge cp-1')).toBe(sim.calls.indexOf('reboot cp-1') + 1);
    expect(sim.calls.indexOf('converge cp-1')).toBeLessThan(sim.calls.indexOf('write w-1 B 0.2.0'));
    expect(seen).toEqual(NAMES.map((n) => `${n} booted=B active=B try=`));
    expect(readUpgradeRecord(path).converged).toEqual({ 'cp-1': N1, master: N1, 'w-1': N1 });
    expect(events.filter((e) => e.step === 'converge' && e.node === 'w-1').map((e) => e.detail)).toEqual(["wave 2: slot B passed its gate: converging w-1 on 0.2.0 (what its new slot does not keep: etcd's configuration, Prometheus's, the plane-bound units)", 'converged on 0.2.0']);
    // A rerun: nothing to write, nothing to converge.
    sim.calls.length = 0;
    expect(await runApply({ waves, from: N, target: N1, ops: sim, record: readUpgradeRecord(path), ...clock })).toMatchObject({ kind: 'done' });
    expect(sim.calls).toEqual([]);
  });

  it('a converge that fails on w-1 stops there naming it and the reason; w-1 stays on slot B; the rerun converges it without writing its slot again', async () => {
    const { sim, events, clock } = setup();
    const N1 = build('0.2.0');
    const path = `${tempDir('kd-h18c-conv-')}/upgrade/record.json`;
    const saveRecord = (r: UpgradeRecord): void => writeUpgradeRecord(path, r);
    sim.refuseConverge = (node) => (node === 'w-1' ? 'converge stage failed on w-1: kubedos_etcd: etcd did not answer on its wg3 URL within 120 s' : undefined);
    const end = await runApply({ waves, from: N, target: N1, ops: sim, record: readUpgradeRecord(path), saveRecord, onEvent: (e) => events.push(e), ...clock });
    expect(end).toMatchObject({ kind: 'stop', node: 'w-1' });
    expect(end).not.toHaveProperty('fellBackTo');
    expect(end.message.split('\n')[0]).toBe(
      'upgrade to 0.2.0 stopped at w-1 (wave 2): slot B passed its gate, but converging the node on 0.2.0 failed: converge stage failed on w-1: kubedos_etcd: etcd did not answer on its wg3 URL within 120 s; the node stays on slot B (0.2.0) without the files the converge renders (etcd\'s configuration, Prometheus\'s, the plane-bound units): rerun `kubedos upgrade SPEC` to converge it again (its slot is not written again), or converge it with `kubedos deploy SPEC`, or go back with `kubedos upgrade SPEC --rollback`',
    );
    expect(events.at(-1)).toMatchObject({ node: 'w-1', step: 'stop' });
    expect(sim.calls).toEqual(['write cp-1 B 0.2.0', 'reboot cp-1', 'converge cp-1', 'write w-1 B 0.2.0', 'reboot w-1', 'converge w-1']);
    expect(active(sim)).toEqual(['B', 'B', 'A']);
    const rec = readUpgradeRecord(path);
    expect(rec).toMatchObject({ slots: { 'w-1': { A: N, B: N1 } }, bad: [], converged: { 'cp-1': N1 } });
    expect(rec.converged).not.toHaveProperty('w-1');

    sim.refuseConverge = () => undefined;
    sim.calls.length = 0;
    expect(await runApply({ waves, from: N, target: N1, ops: sim, record: readUpgradeRecord(path), saveRecord, ...clock })).toMatchObject({ kind: 'done', nodes: NAMES });
    expect(sim.calls).toEqual(['converge w-1', 'write master B 0.2.0', 'reboot master', 'converge master']);
    expect(readUpgradeRecord(path).converged).toEqual({ 'cp-1': N1, master: N1, 'w-1': N1 });
  });

  it('where Kubernetes runs: the node whose converge failed stays cordoned (said); the rerun converges it, then uncordons it', async () => {
    const { sim, record, clock } = setup();
    const N1 = build('0.2.0');
    sim.refuseConverge = (node) => (node === 'cp-1' ? 'converge stage failed on cp-1: kubedos_kubernetes: kubelet did not register' : undefined);
    const end = await runApply({ waves, from: N, target: N1, ops: sim, record, kubernetes: true, ...clock });
    expect(end).toMatchObject({ kind: 'stop', node: 'cp-1' });
    expect(end.message.split('\n').at(-1)).toBe('cp-1 stays cordoned (drained before its reboot) until it is converged: the rerun uncordons it after its converge (after a kubedos deploy instead, run kubectl uncordon cp-1 on a control-plane node)');
    expect(sim.calls).toEqual(['write cp-1 B 0.2.0', 'drain cp-1', 'reboot cp-1', 'converge cp-1']);
    expect([...sim.cordoned]).toEqual(['cp-1']);
    sim.refuseConverge = () => undefined;
    sim.calls.length = 0;
    expect(await runApply({ waves, from: N, target: N1, ops: sim, record, kubernetes: true, ...clock })).toMatchObject({ kind: 'done' });
    expect(sim.calls.slice(0, 3)).toEqual(['converge cp-1', 'uncordon cp-1', 'write w-1 B 0.2.0']);
    expect(sim.cordoned.size).toBe(0);
  });

  it('keeps the live file next to the record while it runs: each node\'s last step, a write\'s progress at most once a second, then how the run ended', async () => {
    const { sim, record, clock } = setup();
    const N1 = build('0.2.0');
    const env = { KUBEDOS_WORKSPACE: join(tempDir(`kd18w-live-${seq++}-`), 'ws') };
    const livePath = upgradeLivePath('lab-3', env);
    const read = (): UpgradeLive => UpgradeLive.parse(JSON.parse(readFileSync(livePath, 'utf8')));
    const MiB = 1048576;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let paused!: () => void;
    const atPause = new Promise<void>((r) => (paused = r));
    const seen: UpgradeLive[] = [];
    sim.duringWrite = async (node, _slot, progress) => {
      if (node !== 'w-1') return;
      progress({ bytes: 100 * MiB, total: 2048 * MiB, rate: 50 * MiB });
      seen.push(read());
      progress({ bytes: 200 * MiB, total: 2048 * MiB, rate: 50 * MiB }); // the same second of the loop's clock: not written
      seen.push(read());
      await clock.sleep(1_000);
      progress({ bytes: 1234 * MiB, total: 2048 * MiB, rate: 52 * MiB });
      paused();
      await held;
    };
    const run = runApply({ waves, from: N, target: N1, ops: sim, record, livePath, pid: 4242, ...clock, pollMs: 1000 });
    await atPause;
    const mid = read();
    expect(mid).toMatchObject({ pid: 4242, kind: 'upgrade', target: N1, startedAt: 1_000, current: 'w-1', waves: [['cp-1'], ['w-1'], ['master']] });
    expect(mid.end).toBeUndefined();
    expect(mid.nodes).toEqual({
      'cp-1': { step: 'converge', detail: 'converged on 0.2.0', slot: 'B' },
      'w-1': { step: 'progress', detail: '1,234 of 2,048 MiB, 52.0 MiB/s', slot: 'B', progress: { bytes: 1234 * MiB, total: 2048 * MiB, rate: 52 * MiB } },
    });
    expect(seen.map((l) => l.nodes['w-1']?.progress?.bytes)).toEqual([100 * MiB, 100 * MiB]);
    // The run's lines, as the CLI prints them: cp-1's whole wave before w-1's write, whose progress is one line, its latest.
    const text = mid.lines!.map((l) => `${l.node ?? ''}|${l.step}|${l.text}`);
    const at = (re: RegExp): number => text.findIndex((t) => re.test(t));
    expect(at(/^cp-1\|write\|wave 1: writing 0\.2\.0 into slot B/)).toBeGreaterThan(-1);
    expect(at(/^cp-1\|write\|wave 1/)).toBeLessThan(at(/^cp-1\|reboot\|rebooting into slot B$/));
    expect(at(/^cp-1\|reboot\|/)).toBeLessThan(at(/^cp-1\|converge\|converged on 0\.2\.0$/));
    expect(at(/^cp-1\|converge\|converged/)).toBeLessThan(at(/^w-1\|write\|wave 2/));
    expect(text.filter((t) => t.startsWith('w-1|progress|'))).toEqual(['w-1|progress|1,234 of 2,048 MiB, 52.0 MiB/s']);
    expect(text.at(-1)).toBe('w-1|progress|1,234 of 2,048 MiB, 52.0 MiB/s');
    expect(mid.lines!.every((l, i, a) => i === 0 || a[i - 1]!.at <= l.at)).toBe(true);
    expect(statSync(livePath).mode & 0o777).toBe(0o600);
    expect(existsSync(`${livePath}.tmp`)).toBe(false);
    release();
    expect((await run).kind).toBe('done');
    const end = read();
    expect(end.end).toMatchObject({ kind: 'done', message: '3 nodes on 0.2.0: cp-1, w-1, master' });
    expect(Object.keys(end.nodes)).toEqual(['cp-1', 'master', 'w-1']);

    // A stop: the file names the node and the reason (a stop that marks nothing bad is in no record).
    sim.duringWrite = () => undefined;
    sim.powerOffDuringWrite = (node) => (node === 'cp-1' ? 'connection reset' : undefined);
    const N2 = build('0.3.0');
    const stop = await runApply({ waves, from: N, target: N2, ops: sim, record, livePath, ...clock, pollMs: 1000 });
    expect(stop.kind).toBe('stop');
    expect(read()).toMatchObject({ pid: process.pid, target: N2, end: { kind: 'stop', node: 'cp-1', message: expect.stringMatching(/^upgrade to 0\.3\.0 stopped at cp-1: writing slot A failed: connection reset/) } });
    // The next run's file starts its own lines; the stop's message is its last line.
    const stopped = read().lines!;
    expect(stopped.some((l) => l.text.includes('0.2.0'))).toBe(false);
    expect(stopped.at(-1)).toMatchObject({ node: 'cp-1', step: 'end', text: expect.stringMatching(/^upgrade to 0\.3\.0 stopped at cp-1: writing slot A failed: connection reset/) });
  });
});
