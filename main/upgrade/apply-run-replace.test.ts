// The apply loop under replace (docs/upgrades.md, "Replace-based upgrades") over simulated nodes whose
// boot counter and gate are the REAL node scripts (SimCluster, testing.ts), with its replace
// operations: the hub, cp-1..cp-3 (etcd) and w-1. cp-1..w-1 are replaced (a destroy removes the
// node's directory; a provision creates a fresh one from the build, slot A active), the hub is
// slot-switched. The clock is a counter: sleeping advances it.
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentState } from '../../common/upgrade/agent';
import { AgentJournalLine, AgentState as AgentStateSchema } from '../../common/upgrade/agent';
import { buildRef as build, LAB5_UPGRADE_NODES, replaceWaves } from '../../common/upgrade/testing';
import { planWaves } from '../../common/upgrade/waves';
import { removeTempDirs, tempDir } from '../testing/temp-dir';
import type { ApplyEvent, UpgradeRecord } from './apply-run';
import { runApply, runRollback } from './apply-run';
import { SimCluster } from './testing';

afterAll(removeTempDirs);

const N = build('0.1.0');
const N1 = build('0.2.0');
const waves = replaceWaves();
const NAMES = ['cp-1', 'cp-2', 'cp-3', 'w-1', 'master'];
const REPLACED = ['cp-1', 'cp-2', 'cp-3', 'w-1'];
let seq = 0;

function setup(): { sim: SimCluster; record: UpgradeRecord; events: ApplyEvent[]; base: { waves: typeof waves; from: typeof N; ops: SimCluster; replace: SimCluster; record: UpgradeRecord; kubernetes: true; allowDestroy: true; onEvent: (e: ApplyEvent) => void; now: () => number; sleep: (ms: number) => Promise<void>; pollMs: number } } {
  const sim = new SimCluster(tempDir(`kd21a-replace-${seq++}-`), NAMES, N);
  // A marker on every disk, written before the upgrade: a replaced node's new VM does not have it.
  for (const n of NAMES) writeFileSync(join(sim.nodes[n]!.dir, 'marker'), 'written on N\n');
  let t = 1_000;
  const record: UpgradeRecord = { slots: {}, bad: [] };
  const events: ApplyEvent[] = [];
  return { sim, record, events, base: { waves, from: N, ops: sim, replace: sim, record, kubernetes: true, allowDestroy: true, onEvent: (e) => events.push(e), now: () => t, sleep: async (ms) => void (t += Math.max(ms, 1)), pollMs: 1000 } };
}

const per = (node: string, version: string): string[] => [`drain ${node}`, `fence ${node}`, `destroy ${node}`, `provision ${node} ${version}`, `converge ${node}`, `gate ${node}`, `uncordon ${node}`];
const marker = (sim: SimCluster, n: string): boolean => existsSync(join(sim.nodes[n]!.dir, 'marker'));
/** The node's update agent state file (on its data partition), parsed; undefined when there is none. */
const agentOf = (sim: SimCluster, n: string): AgentState | undefined => {
  const f = join(sim.agentDir(n), 'state.json');
  return existsSync(f) ? AgentStateSchema.parse(JSON.parse(readFileSync(f, 'utf8'))) : undefined;
};
/** The node's agent journal: each line's transition (from>to) and event type. */
const journalOf = (sim: SimCluster, n: string): string[] => {
  const f = join(sim.agentDir(n), 'journal.jsonl');
  return existsSync(f) ? readFileSync(f, 'utf8').trimEnd().split('\n').map((l) => AgentJournalLine.parse(JSON.parse(l))).map((l) => `${l.seq} ${l.from}>${l.to ?? '!'} ${l.event.type}`) : [];
};

describe('runApply under replace: nodes replaced through the drill machinery, the hub slot-switched', () => {
  it('a workspace record lost after a done upgrade: the nodes whose agents say they run N+1 on a new disk are taken as replaced, never destroyed again', async () => {
    const { sim, events, base } = setup();
    expect(await runApply({ ...base, target: N1 })).toMatchObject({ kind: 'done' });
    const calls = sim.calls.length;
    const fresh: UpgradeRecord = { slots: {}, bad: [] };
    events.length = 0;
    const again = await runApply({ ...base, record: fresh, target: N1 });
    expect(again).toMatchObject({ kind: 'done' });
    // Only the uncordon of each (its record entry says passed: idempotent), and the hub converged again as for any
    // slot-switched node the record does not say was converged; nothing drained, fenced, destroyed or written.
    expect(sim.calls.slice(calls)).toEqual([...REPLACED.map((n) => `uncordon ${n}`), 'converge master', 'uncordon master']);
    expect(sim.destroyed).toEqual({ 'cp-1': 1, 'cp-2': 1, 'cp-3': 1, 'w-1': 1 });
    for (const n of REPLACED) {
      expect(fresh.replaced?.[n]).toEqual({ build: N1, state: 'done' });
      expect(events.some((e) => e.node === n && e.step === 'observe' && /says it runs 0\.2\.0, committed on slot A, .*taken as replaced \(uncordoned next\), its VM not destroyed again$/.test(e.detail)), n).toBe(true);
    }
  });

  it('a good N+1: cp-1, cp-2, cp-3, w-1 replaced in order by new VMs on N+1 (slot A, gate passed), the hub on slot B; --rollback replaces them again from N and switches the hub back; no re-upgrade', async () => {
    const { sim, record, events, base } = setup();
    const end = await runApply({ ...base, target: N1 });
    expect(end).toMatchObject({ kind: 'done', nodes: NAMES });
    expect(sim.calls).toEqual([...REPLACED.flatMap((n) => per(n, '0.2.0')), 'write master B 0.2.0', 'drain master', 'reboot master', 'converge master', 'uncordon master']);
    for (const n of REPLACED) {
      expect(marker(sim, n), n).toBe(false); // a new VM
      expect(sim.nodes[n]!.slots).toEqual({ A: N1, B: N1 });
      expect(sim.peek(n)).toMatch(/^booted=A$/m);
      expect(record.replaced?.[n]).toEqual({ build: N1, state: 'done' });
      expect(record.slots[n]).toEqual({ A: N1, B: N1 });
    }
    expect(marker(sim, 'master')).toBe(true); // the hub keeps its identity and data
    expect(sim.peek('master')).toMatch(/^active=B$/m);
    expect(sim.destroyed).toEqual({ 'cp-1': 1, 'cp-2': 1, 'cp-3': 1, 'w-1': 1 });
    expect(sim.cordoned.size).toBe(0);
    expect(record.target).toEqual(N1);
    expect(events.filter((e) => e.node === 'w-1').map((e) => `${e.step}: ${e.detail}`)).toEqual([
      'drain: wave 4: kubectl drain w-1 before its replacement',
      'drain: drained: its pods run elsewhere; fencing it next',
      "fence: wave 4: fencing w-1 (the drill's fence: its etcd member out where it has one, revoked at the hub)",
      "fence: revoked at the hub; w-1's etcd member removed",
      "destroy: destroying w-1's VM to replace it with 0.2.0",
      'destroy: VM of w-1 destroyed with its disks',
      "provision: provisioning w-1's plan slot from 0.2.0's image: VM, first boot, enroll, planes",
      'provision: VM of w-1 created from 0.2.0, first boot, enrolled, planes up',
      'converge: converging w-1 on 0.2.0 (this node only)',
      'converge: converged on 0.2.0',
      "gate: w-1's health gate on 0.2.0",
      'gate: slot A passed its gate on 0.2.0',
      'uncordon: its replacement passed its gate: kubectl uncordon w-1',
    ]);

    sim.calls.length = 0;
    const rb = await runRollback({ ...base, target: N1 });
    expect(rb).toMatchObject({ kind: 'done', nodes: ['master', 'w-1', 'cp-3', 'cp-2', 'cp-1'], message: '5 nodes back on the previous build: master, w-1, cp-3, cp-2, cp-1; 0.2.0 is recorded as rolled back and is not applied again' });
    expect(sim.calls).toEqual(['try master A', 'drain master', 'reboot master', 'uncordon master', ...['w-1', 'cp-3', 'cp-2', 'cp-1'].flatMap((n) => per(n, '0.1.0'))]);
    for (const n of REPLACED) {
      expect(sim.nodes[n]!.slots).toEqual({ A: N, B: N });
      expect(record.replaced?.[n]).toEqual({ build: N, state: 'done' });
    }
    expect(sim.peek('master')).toMatch(/^active=A$/m);
    expect(sim.destroyed).toEqual({ 'cp-1': 2, 'cp-2': 2, 'cp-3': 2, 'w-1': 2 });
    // No re-upgrade loop: the rolled-back build is refused, nothing touched.
    sim.calls.length = 0;
    expect(await runApply({ ...base, target: N1 })).toMatchObject({ kind: 'refuse', message: expect.stringMatching(/^build 0\.2\.0 rolled back on master \(rolled back by kubedos upgrade --rollback\)/) });
    expect(sim.calls).toEqual([]);
  });

  it('a replacement that fails its gate: the stop names the node and the step, N+1 is recorded as bad, the rerun is refused, the later nodes untouched', async () => {
    const { sim, record, base } = setup();
    sim.breaks = (node, b) => (node === 'cp-2' && b.digest === N1.digest ? 'kubelet' : undefined);
    const end = await runApply({ ...base, target: N1 });
    expect(end).toMatchObject({ kind: 'stop', node: 'cp-2', reason: 'its replacement on 0.2.0 failed its health gate (services)' });
    expect(end.message.split('\n')).toEqual([
      'upgrade to 0.2.0 stopped at cp-2 (wave 2): its replacement on 0.2.0 failed its health gate (services)',
      '1 node on 0.2.0 (cp-1), 3 untouched (cp-3, w-1, master)',
      'build 0.2.0 is recorded as bad: fix N+1 and rerun with the new build, or `kubedos upgrade --rollback` (it replaces cp-2 again from the build before), or `kubedos heal SPEC`',
      'cp-2 stays cordoned (drained before its replacement): the rerun uncordons it once its replacement passed its gate (after kubedos heal SPEC instead, run kubectl uncordon cp-2 on a control-plane node)',
    ]);
    expect(record.bad).toMatchObject([{ digest: N1.digest, node: 'cp-2' }]);
    expect(sim.calls.filter((c) => /cp-3|w-1|master/.test(c))).toEqual([]);
    sim.calls.length = 0;
    expect(await runApply({ ...base, target: N1 })).toMatchObject({ kind: 'refuse', message: expect.stringMatching(/^build 0\.2\.0 rolled back on cp-2/) });
    expect(sim.calls).toEqual([]);
    // --rollback replaces cp-1 and the failed cp-2 again from N (the hub was never switched).
    const rb = await runRollback({ ...base, target: N1 });
    // The nodes the upgrade never reached are named as such: the whole cluster is accounted for.
    expect(rb).toMatchObject({ kind: 'done', nodes: ['cp-2', 'cp-1'], message: '2 nodes back on the previous build: cp-2, cp-1; 3 nodes not on 0.2.0 when this run began (cp-3, w-1, master); 0.2.0 is recorded as rolled back and is not applied again' });
    expect(sim.nodes['cp-2']!.slots.A).toEqual(N);
    expect(sim.cordoned.size).toBe(0);
  });

  // One case per cut (each is two whole runs of the loop over the simulated nodes).
  it.each(['destroy', 'provision'] as const)('a run interrupted in the middle of a replacement (%s): the rerun goes on from where the record says, destroying no node twice', async (phase) => {
    const { sim, record, base } = setup();
    const stop = new AbortController();
    // Cut in the middle of the step: the operation never returns (its VM not destroyed / not created yet).
    sim.duringReplace = (node, p) => {
      if (node !== 'cp-2' || p !== phase) return;
      stop.abort();
      throw new Error('the foundry went away');
    };
    const cut = await runApply({ ...base, target: N1, signal: stop.signal });
    expect(cut.kind, phase).toBe('cancelled');
    sim.duringReplace = () => undefined;
    expect(record.replaced?.['cp-2'], phase).toEqual({ build: N1, state: phase === 'destroy' ? 'destroying' : 'provisioning' });
    sim.calls.length = 0;
    const rerun = await runApply({ ...base, target: N1 });
    expect(rerun, phase).toMatchObject({ kind: 'done' });
    // From the step that was cut: no drain or fence again, the VM destroyed (or created) once.
    expect(sim.calls.filter((c) => c.includes('cp-2')).slice(0, 2), phase).toEqual(phase === 'destroy' ? ['destroy cp-2', 'provision cp-2 0.2.0'] : ['provision cp-2 0.2.0', 'converge cp-2']);
    expect(sim.destroyed, phase).toEqual({ 'cp-1': 1, 'cp-2': 1, 'cp-3': 1, 'w-1': 1 });
    expect(sim.created, phase).toEqual({ 'cp-1': 1, 'cp-2': 1, 'cp-3': 1, 'w-1': 1 });
    expect(sim.cordoned.size, phase).toBe(0);
  });

  it('a provision that failed after the VM was created (its deploy run stopped at enroll): the rerun provisions the same VM again, never destroys it', async () => {
    const { sim, base } = setup();
    let once = true;
    sim.refuseReplace = (node, p) => {
      if (node !== 'w-1' || p !== 'provision' || !once) return undefined;
      once = false;
      return 'the deploy run failed at enroll on w-1: kubedos-enroll: token expired';
    };
    const end = await runApply({ ...base, target: N1 });
    expect(end).toMatchObject({ kind: 'stop', node: 'w-1', reason: expect.stringMatching(/^provisioning its replacement from 0\.2\.0 \(the same plan slot: VM, first boot, enroll, planes\) failed: the deploy run failed at enroll on w-1: kubedos-enroll: token expired; the rerun provisions it again/) });
    expect(end.message.split('\n')[2]).toBe('rerun to continue (it goes on from this step), or `kubedos upgrade --rollback`, or `kubedos heal SPEC`');
    sim.calls.length = 0;
    expect(await runApply({ ...base, target: N1 })).toMatchObject({ kind: 'done' });
    expect(sim.calls.slice(0, 4)).toEqual(['provision w-1 0.2.0', 'converge w-1', 'gate w-1', 'uncordon w-1']);
    expect(sim.destroyed['w-1']).toBe(1);
    expect(sim.created['w-1']).toBe(1); // the VM the failed run created, provisioned again, never destroyed
  });

  it("each replaced node's update agent on its new disk: committed on N+1 (slot A) after its gate, its journal begun anew; --rollback's replacements leave it committed on N", async () => {
    const { sim, record, base } = setup();
    expect(await runApply({ ...base, target: N1 })).toMatchObject({ kind: 'done' });
    for (const n of REPLACED) {
      expect(agentOf(sim, n), n).toEqual({ schema: 1, state: 'committed', active: 'A', running: N1, bad: [] });
      // The old disk's journal went with it: the new one starts at the replacement (from the state the run read on the old disk).
      expect(journalOf(sim, n), n).toEqual(['0 idle>verifying replaced', '1 verifying>committed gate']);
    }
    expect(agentOf(sim, 'master')).toEqual({ schema: 1, state: 'committed', active: 'B', running: N1, bad: [] });

    const rb = await runRollback({ ...base, target: N1 });
    expect(rb).toMatchObject({ kind: 'done' });
    expect(record.replaced?.['cp-1']).toEqual({ build: N, state: 'done' });
    for (const n of REPLACED) {
      expect(agentOf(sim, n), n).toEqual({ schema: 1, state: 'committed', active: 'A', running: N, bad: [] });
      expect(journalOf(sim, n), n).toEqual(['0 committed>verifying replaced', '1 verifying>committed gate']);
    }
  });

  it("a replacement that fails its gate: its agent records N+1 as bad on the node; a rerun from an EMPTY workspace record is refused from it, nothing touched; --rollback's replacement from N keeps that bad list (committed on N)", async () => {
    const { sim, base } = setup();
    sim.breaks = (node, b) => (node === 'cp-2' && b.digest === N1.digest ? 'kubelet' : undefined);
    expect(await runApply({ ...base, target: N1 })).toMatchObject({ kind: 'stop', node: 'cp-2' });
    const bad = { digest: N1.digest, version: '0.2.0', slot: 'A', reason: 'its health gate failed on its new disk (services)' };
    expect(agentOf(sim, 'cp-2')).toEqual({ schema: 1, state: 'failed', active: 'A', running: N1, bad: [bad], reason: `slot A (0.2.0, a new disk) ${bad.reason}: it is not applied again`, gateFailure: 'services' });
    expect(agentOf(sim, 'cp-1')).toEqual({ schema: 1, state: 'committed', active: 'A', running: N1, bad: [] });
    // Another workspace (no record at all): refused before any node is touched, naming cp-2 and what its agent recorded.
    sim.calls.length = 0;
    const empty: UpgradeRecord = { slots: {}, bad: [] };
    expect(await runApply({ ...base, record: empty, target: N1 })).toMatchObject({ kind: 'refuse', message: expect.stringMatching(/^build 0\.2\.0 rolled back on cp-2 \(slot A: its health gate failed on its new disk \(services\)\), as the update agent's state on the node records it/) });
    expect(sim.calls).toEqual([]);
    expect(empty.bad).toMatchObject([{ digest: N1.digest, node: 'cp-2' }]);

    // --rollback (from the workspace that ran it): cp-1 and cp-2 replaced again from N; cp-2's new disk keeps the bad N+1.
    expect(await runRollback({ ...base, target: N1 })).toMatchObject({ kind: 'done', nodes: ['cp-2', 'cp-1'] });
    expect(agentOf(sim, 'cp-2')).toEqual({ schema: 1, state: 'committed', active: 'A', running: N, bad: [bad] });
    expect(agentOf(sim, 'cp-1')).toEqual({ schema: 1, state: 'committed', active: 'A', running: N, bad: [] });
    expect(journalOf(sim, 'cp-2')).toEqual(['0 failed>verifying replaced', '1 verifying>committed gate']);
    // Still refused from an empty record: from cp-2's new disk.
    sim.calls.length = 0;
    expect(await runApply({ ...base, record: { slots: {}, bad: [] }, target: N1 })).toMatchObject({ kind: 'refuse', message: expect.stringMatching(/^build 0\.2\.0 rolled back on cp-2 /) });
    expect(sim.calls).toEqual([]);
  });

  it('refused before any node is touched: without the permission to destroy (upgrade and rollback), and without replace operations', async () => {
    const { sim, base } = setup();
    const { allowDestroy: _allow, ...noDestroy } = base;
    const r = await runApply({ ...noDestroy, target: N1 });
    expect(r).toMatchObject({ kind: 'refuse', message: expect.stringMatching(/^4 waves replace 4 nodes \(cp-1, cp-2, cp-3, w-1; strategy replace, .*set stages\.drill\.allowDestroy: true in the spec or run kubedos upgrade --allow-destroy/) });
    const { replace: _ops, ...noOps } = base;
    expect(await runApply({ ...noOps, target: N1 })).toMatchObject({ kind: 'refuse', message: expect.stringMatching(/^upgrade to 0\.2\.0 refused: 4 nodes \(cp-1, cp-2, cp-3, w-1\) are replaced under strategy replace .*no replace operations/) });
    expect(sim.calls).toEqual([]);
    expect(Object.values(sim.nodes).every((n) => existsSync(join(n.dir, 'marker')))).toBe(true);
    // After a good upgrade, --rollback without the permission: refused, nothing touched.
    expect(await runApply({ ...base, target: N1 })).toMatchObject({ kind: 'done' });
    sim.calls.length = 0;
    expect(await runRollback({ ...noDestroy, target: N1 })).toMatchObject({ kind: 'refuse', message: expect.stringMatching(/^rollback from 0\.2\.0 refused before any node was touched: 4 waves replace 4 nodes/) });
    expect(sim.calls).toEqual([]);
  });

  it('--rollback under replace after a rolling upgrade (the strategy changed since): every node goes back by slot switch, nothing destroyed, no permission needed', async () => {
    const { sim, base } = setup();
    const rolling = planWaves({ strategy: 'rolling', maxUnavailable: 1, failureDomains: ['laptop'], nodes: [...LAB5_UPGRADE_NODES], health: { observed: true, unhealthy: [] } });
    if (!rolling.ok) throw new Error(rolling.message);
    const { allowDestroy: _allow, replace: _ops, ...slotOnly } = base;
    expect(await runApply({ ...slotOnly, waves: rolling.waves, target: N1 })).toMatchObject({ kind: 'done' });
    sim.calls.length = 0;
    const rb = await runRollback({ ...slotOnly, target: N1 });
    expect(rb).toMatchObject({ kind: 'done', nodes: ['master', 'w-1', 'cp-3', 'cp-2', 'cp-1'], message: '5 nodes back on the previous build: master, w-1, cp-3, cp-2, cp-1; 0.2.0 is recorded as rolled back and is not applied again' });
    expect(sim.calls.filter((c) => c.startsWith('try '))).toEqual(['try master A', 'try w-1 A', 'try cp-3 A', 'try cp-2 A', 'try cp-1 A']);
    expect(sim.destroyed).toEqual({});
  });
});
