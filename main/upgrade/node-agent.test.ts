// The update agent's state kept on each node by the apply run and the rollback (node-agent.ts),
// over SimCluster (testing.ts: the REAL kubedos-boot, boot-select.cfg through the GRUB simulator,
// kubedos-health-gate), whose nodes keep the state with the node-side scripts VmNodeOps runs
// through the guest agent, on each node's data directory. The clock is a counter.
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AgentState } from '../../common/upgrade/agent';
import { AGENT_STATE_FILE, AgentJournalLine, AgentState as AgentStateSchema } from '../../common/upgrade/agent';
import { ROLLBACK_REASON } from '../../common/upgrade/progress';
import { buildRef as build, lab3Waves } from '../../common/upgrade/testing';
import { removeTempDirs, tempDir } from '../testing/temp-dir';
import type { UpgradeRecord } from './apply-run';
import { readUpgradeRecord, runApply, runRollback, writeUpgradeRecord } from './apply-run';
import { NodeAgents } from './node-agent';
import { SimCluster } from './testing';

afterAll(removeTempDirs);

const N = build('0.1.0');
const N1 = build('0.2.0');
const waves = lab3Waves();
const NAMES = ['cp-1', 'w-1', 'master'];
let seq = 0;

function setup(): { sim: SimCluster; record: UpgradeRecord; clock: { now: () => number; sleep: (ms: number) => Promise<void> } } {
  const sim = new SimCluster(tempDir(`kd-h20a-agent-${seq++}-`), NAMES, N);
  let t = 1_000;
  return { sim, record: { slots: {}, bad: [] }, clock: { now: () => t, sleep: async (ms) => void (t += Math.max(ms, 1)) } };
}

const stateOf = (sim: SimCluster, node: string): AgentState | undefined => {
  const f = join(sim.agentDir(node), 'state.json');
  return existsSync(f) ? AgentStateSchema.parse(JSON.parse(readFileSync(f, 'utf8'))) : undefined;
};
const journalOf = (sim: SimCluster, node: string): AgentJournalLine[] => {
  const f = join(sim.agentDir(node), 'journal.jsonl');
  return existsSync(f) ? readFileSync(f, 'utf8').trimEnd().split('\n').map((l) => AgentJournalLine.parse(JSON.parse(l))) : [];
};
const path = (j: AgentJournalLine[]): string[] => j.map((l) => (l.to ? `${l.from}>${l.to}` : `${l.from}!${l.refused?.code}`));

describe('the update agent state kept on each node by kubedos upgrade', () => {
  it('a good N+1: every node\'s state.json says committed on slot B running N+1; the journal walks every state; --rollback leaves rolled-back with N+1 bad', async () => {
    const { sim, record, clock } = setup();
    expect(await runApply({ waves, from: N, target: N1, ops: sim, record, ...clock })).toMatchObject({ kind: 'done' });
    for (const node of NAMES) {
      expect(stateOf(sim, node)).toEqual({ schema: 1, state: 'committed', active: 'B', running: N1, bad: [] });
      const j = journalOf(sim, node);
      expect(path(j)).toEqual(['idle>checking', 'checking>receiving', 'receiving>writing', 'writing>staged', 'staged>verifying', 'verifying>committed']);
      expect(j.map((l) => l.seq)).toEqual([0, 1, 2, 3, 4, 5]);
      // The file as the node-side script leaves it: whole, 0644, no temporary file beside it.
      expect(statSync(join(sim.agentDir(node), 'state.json')).mode & 0o777).toBe(0o644);
      expect(readdirSync(sim.agentDir(node)).sort()).toEqual(['journal.jsonl', 'state.json']);
    }

    expect(await runRollback({ waves, from: N, target: N1, ops: sim, record, ...clock, pollMs: 1000 })).toMatchObject({ kind: 'done' });
    for (const node of NAMES) {
      expect(stateOf(sim, node)).toEqual({ schema: 1, state: 'rolled-back', active: 'A', running: N, bad: [{ digest: N1.digest, version: '0.2.0', slot: 'B', reason: ROLLBACK_REASON }], reason: `slot B (0.2.0) rolled back to slot A: ${ROLLBACK_REASON}` });
      // The journal goes on where the upgrade left it.
      expect(path(journalOf(sim, node)).slice(6)).toEqual(['committed>checking', 'checking>receiving', 'receiving>writing', 'writing>staged', 'staged>verifying', 'verifying>committed', 'committed>rolled-back']);
    }
    // A fresh workspace (empty record) still refuses the build the rollback left, from the nodes' own state.
    sim.calls.length = 0;
    const again = await runApply({ waves, from: N, target: N1, ops: sim, record: { slots: {}, bad: [] }, ...clock });
    expect(again).toMatchObject({ kind: 'refuse', message: expect.stringMatching(/^build 0\.2\.0 rolled back on 3 nodes \(cp-1, w-1, master\) \(cp-1: slot B: rolled back by kubedos upgrade --rollback\)/) });
    expect(sim.calls).toEqual([]);
  });

  it('w-1 fails its gate: its state says rolled-back with N+1 bad and the check; a fresh workspace\'s run of the same build is refused before any node is touched, naming w-1; the fixed build proceeds', async () => {
    const { sim, record, clock } = setup();
    sim.breaks = (node, b) => (node === 'w-1' && b.digest === N1.digest ? 'kubelet' : undefined);
    expect(await runApply({ waves, from: N, target: N1, ops: sim, record, ...clock })).toMatchObject({ kind: 'stop', node: 'w-1' });
    expect(stateOf(sim, 'cp-1')).toMatchObject({ state: 'committed', active: 'B', running: N1 });
    expect(stateOf(sim, 'w-1')).toEqual({
      schema: 1,
      state: 'rolled-back',
      active: 'A',
      running: N,
      bad: [{ digest: N1.digest, version: '0.2.0', slot: 'B', reason: 'its health gate failed (services)' }],
      reason: 'slot B (0.2.0) rolled back to slot A: its health gate failed (services)',
      gateFailure: 'services',
    });
    expect(path(journalOf(sim, 'w-1')).slice(-2)).toEqual(['verifying>verifying', 'verifying>rolled-back']);
    expect(stateOf(sim, 'master')).toBeUndefined(); // untouched: no file written

    // The workspace is lost: a new record knows nothing of the rollback.
    sim.calls.length = 0;
    const journals = NAMES.map((n) => journalOf(sim, n).length);
    const fresh = await runApply({ waves, from: N, target: N1, ops: sim, record: { slots: {}, bad: [] }, ...clock });
    expect(fresh).toEqual({ kind: 'refuse', message: `build 0.2.0 rolled back on w-1 (slot B: its health gate failed (services)), as the update agent's state on the node records it (${AGENT_STATE_FILE}): it is not applied again; build a fixed N+1 (a new digest) and rerun. Nothing was touched` });
    expect(sim.calls).toEqual([]);
    expect(NAMES.map((n) => journalOf(sim, n).length)).toEqual(journals);

    sim.breaks = () => undefined;
    const fixed = build('0.2.1');
    expect(await runApply({ waves, from: N, target: fixed, ops: sim, record: { slots: {}, bad: [] }, ...clock })).toMatchObject({ kind: 'done' });
    for (const node of NAMES) expect(stateOf(sim, node)).toMatchObject({ state: 'committed', running: fixed });
    // w-1 keeps the build that rolled back in its list.
    expect(stateOf(sim, 'w-1')!.bad.map((b) => b.digest)).toEqual([N1.digest]);
  });

  it('a gate failure the foundry did not see (w-1 back on A at once) and a kernel that never comes up (cp-1) both end rolled-back on the node', async () => {
    const a = setup();
    a.sim.missGateWindow = true;
    a.sim.breaks = (node, b) => (node === 'w-1' && b.digest === N1.digest ? 'kubelet' : undefined);
    await runApply({ waves, from: N, target: N1, ops: a.sim, record: a.record, ...a.clock });
    expect(stateOf(a.sim, 'w-1')).toMatchObject({ state: 'rolled-back', gateFailure: 'services', bad: [{ digest: N1.digest, reason: 'its health gate failed (services)' }] });
    // Walked in order: booted B, the gate's failure, the fallback.
    expect(journalOf(a.sim, 'w-1').slice(-3).map((l) => l.event.type)).toEqual(['booted', 'gate', 'booted']);

    const b = setup();
    b.sim.neverBoots = (node, x) => node === 'cp-1' && x.digest === N1.digest;
    await runApply({ waves, from: N, target: N1, ops: b.sim, record: b.record, ...b.clock });
    expect(stateOf(b.sim, 'cp-1')).toMatchObject({ state: 'rolled-back', bad: [{ digest: N1.digest, reason: 'it ran out of boot tries without passing its health gate' }] });
  });

  it('a run cut mid-write (w-1 powered off): its agent is left receiving; the rerun takes it up as failed, then stages again and commits', async () => {
    const { sim, record, clock } = setup();
    sim.powerOffDuringWrite = (node) => (node === 'w-1' ? 'connection reset' : undefined);
    const events: string[] = [];
    expect(await runApply({ waves, from: N, target: N1, ops: sim, record, onEvent: (e) => events.push(`${e.node ?? ''} ${e.step}: ${e.detail}`), ...clock })).toMatchObject({ kind: 'stop', node: 'w-1' });
    expect(stateOf(sim, 'w-1')).toMatchObject({ state: 'receiving', target: N1, slot: 'B' });
    expect(events).toContain(`w-1 observe: could not keep its update agent state (${AGENT_STATE_FILE}): w-1: no answer (the machine is powered off); the next run takes it up from what the node says`);
    sim.powerOn('w-1');
    sim.powerOffDuringWrite = () => undefined;
    expect(await runApply({ waves, from: N, target: N1, ops: sim, record, ...clock })).toMatchObject({ kind: 'done' });
    const j = journalOf(sim, 'w-1');
    expect(path(j)).toEqual(['idle>checking', 'checking>receiving', 'receiving>failed', 'failed>checking', 'checking>receiving', 'receiving>writing', 'writing>staged', 'staged>verifying', 'verifying>committed']);
    expect(j[2]!.event).toEqual({ type: 'received', ok: false, reason: 'the run that staged 0.2.0 ended before this step did' });
    expect(stateOf(sim, 'w-1')).toMatchObject({ state: 'committed', running: N1 });
  });

  it('a state file that is not a state refuses the run before any node is touched, naming the node, the file, the issue and what to do', async () => {
    const { sim, record, clock } = setup();
    expect(await runApply({ waves, from: N, target: N1, ops: sim, record, ...clock })).toMatchObject({ kind: 'done' });
    const file = join(sim.agentDir('w-1'), 'state.json');
    const good = readFileSync(file, 'utf8');
    sim.calls.length = 0;
    writeFileSync(file, good.replace('"committed"', '"dancing"'));
    const r = await runApply({ waves, from: N, target: build('0.3.0'), ops: sim, record, ...clock });
    expect(r).toMatchObject({ kind: 'refuse', message: expect.stringMatching(new RegExp(`^w-1: ${AGENT_STATE_FILE} is not an update agent state \\(state: Invalid option: expected one of "idle"\\|.*\\): it records which builds rolled back on w-1: repair it from its journal .* or remove it only if no build ever rolled back on w-1 .*; nothing was touched$`)) });
    writeFileSync(file, '{"schema": 1, ');
    expect(await runRollback({ waves, from: N, target: N1, ops: sim, record, ...clock })).toMatchObject({ kind: 'refuse', message: expect.stringMatching(/^rollback refused before any node was touched: w-1: \/var\/lib\/kubedos\/upgrade\/state\.json is not JSON \(/) });
    expect(sim.calls).toEqual([]);
  });

  it('the agent\'s own refusal stops the run at that node before its write: a build of the version the node already runs (another digest)', async () => {
    const { sim, record, clock } = setup();
    expect(await runApply({ waves: waves.filter((w) => w.nodes.includes('cp-1')), from: N, target: N1, ops: sim, record, ...clock })).toMatchObject({ kind: 'done' });
    sim.calls.length = 0;
    const sameVersion = { version: '0.2.0', digest: build('0.2.0-other').digest };
    const r = await runApply({ waves, from: N, target: sameVersion, ops: sim, record, ...clock });
    expect(r).toMatchObject({ kind: 'stop', node: 'cp-1', reason: expect.stringMatching(/^its update agent refuses to stage 0\.2\.0 \(\/var\/lib\/kubedos\/upgrade\/state\.json\): build [0-9a-f]{12}… has the version 0\.2\.0 of the build running on slot B .*; its state and journal are in \/var\/lib\/kubedos\/upgrade on the node \(kubedos ssh cp-1\)$/) });
    expect(sim.calls).toEqual([]);
    expect(journalOf(sim, 'cp-1').at(-1)).toMatchObject({ from: 'committed', refused: { code: 'same-version' } });
  });

  it('the record file deleted after N → N+1: applying N+1 again writes and reboots nothing (every node\'s agent says it runs N+1), converges each node again and ends done', async () => {
    const { sim, clock } = setup();
    const file = join(tempDir('kd-h20b-record-'), 'record.json');
    const saveRecord = (r: UpgradeRecord): void => writeUpgradeRecord(file, r);
    expect(await runApply({ waves, from: N, target: N1, ops: sim, record: readUpgradeRecord(file), saveRecord, ...clock })).toMatchObject({ kind: 'done' });
    expect(readUpgradeRecord(file).slots['cp-1']).toEqual({ A: N, B: N1 });
    rmSync(file);
    sim.calls.length = 0;
    const journals = NAMES.map((n) => journalOf(sim, n).length);
    const again = await runApply({ waves, from: N, target: N1, ops: sim, record: readUpgradeRecord(file), saveRecord, ...clock });
    expect(again).toEqual({ kind: 'done', nodes: ['cp-1', 'w-1', 'master'], message: '3 nodes on 0.2.0: cp-1, w-1, master' });
    // Not written, not rebooted, no stage refused by any agent: only the converge this workspace has no record of.
    expect(sim.calls).toEqual(['converge cp-1', 'converge w-1', 'converge master']);
    expect(NAMES.map((n) => journalOf(sim, n).length)).toEqual(journals);
    expect(readUpgradeRecord(file)).toEqual({ slots: {}, bad: [], converged: { 'cp-1': N1, master: N1, 'w-1': N1 } });
  });

  it('the record file deleted after --rollback: N+1 is refused from the nodes\' agents and written into the new record\'s bad list', async () => {
    const { sim, clock } = setup();
    const file = join(tempDir('kd-h20b-record-'), 'record.json');
    const saveRecord = (r: UpgradeRecord): void => writeUpgradeRecord(file, r);
    expect(await runApply({ waves, from: N, target: N1, ops: sim, record: readUpgradeRecord(file), saveRecord, ...clock })).toMatchObject({ kind: 'done' });
    expect(await runRollback({ waves, from: N, target: N1, ops: sim, record: readUpgradeRecord(file), saveRecord, ...clock, pollMs: 1000 })).toMatchObject({ kind: 'done' });
    rmSync(file);
    sim.calls.length = 0;
    const r = await runApply({ waves, from: N, target: N1, ops: sim, record: readUpgradeRecord(file), saveRecord, ...clock });
    expect(r).toMatchObject({ kind: 'refuse', message: expect.stringMatching(/^build 0\.2\.0 rolled back on 3 nodes \(cp-1, w-1, master\)/) });
    expect(sim.calls).toEqual([]);
    expect(readUpgradeRecord(file)).toEqual({ slots: {}, bad: [{ digest: N1.digest, version: '0.2.0', node: 'cp-1', reason: ROLLBACK_REASON }] });
    // The next run is refused from the record first (the plan's own refusal).
    expect(await runApply({ waves, from: N, target: N1, ops: sim, record: readUpgradeRecord(file), saveRecord, ...clock })).toMatchObject({ kind: 'refuse', message: `build 0.2.0 rolled back on cp-1 (${ROLLBACK_REASON}): it is not applied again; build a fixed N+1 (a new digest) and rerun` });
    expect(readUpgradeRecord(file).bad).toHaveLength(1);
  });

  it('a record that says cp-1 runs N where its agent says N+1: the node wins (not written again), the note is printed once, the record corrected; the rest of the cluster is upgraded', async () => {
    const { sim, record, clock } = setup();
    expect(await runApply({ waves: waves.filter((w) => w.nodes.includes('cp-1')), from: N, target: N1, ops: sim, record, ...clock })).toMatchObject({ kind: 'done' });
    record.slots['cp-1'] = { A: N, B: N }; // an older record: written before cp-1's slot B was
    sim.calls.length = 0;
    const events: string[] = [];
    const r = await runApply({ waves, from: N, target: N1, ops: sim, record, onEvent: (e) => events.push(`${e.node ?? ''} ${e.step}: ${e.detail}`), ...clock });
    expect(r).toMatchObject({ kind: 'done', nodes: ['cp-1', 'w-1', 'master'] });
    const note = `cp-1 observe: the workspace's upgrade record says slot B holds 0.1.0; the node's update agent (${AGENT_STATE_FILE}) says it runs 0.2.0 there: the node's word is taken, and the record corrected`;
    expect(events.filter((e) => e.includes('the node\'s word'))).toEqual([note]);
    expect(events.filter((e) => e.includes('observe')).length).toBe(1);
    expect(sim.calls.filter((c) => c.includes('cp-1'))).toEqual([]);
    expect(sim.calls.filter((c) => c.startsWith('write'))).toEqual(['write w-1 B 0.2.0', 'write master B 0.2.0']);
    expect(record.slots['cp-1']).toEqual({ A: N, B: N1 });
  });

  it('--rollback with a record older than the upgrade (no entry for w-1 and master, whose agents say they run N+1): refused, naming the slots whose build is unknown; nothing touched', async () => {
    const { sim, record, clock } = setup();
    const saved: UpgradeRecord[] = [];
    expect(await runApply({ waves, from: N, target: N1, ops: sim, record, saveRecord: (r) => saved.push(structuredClone(r)), ...clock })).toMatchObject({ kind: 'done' });
    // The record as it was right after cp-1's write (a workspace restored from then).
    const older = saved[0]!;
    expect(older).toEqual({ target: N1, from: N, slots: { 'cp-1': { A: N, B: N1 } }, bad: [] });
    sim.calls.length = 0;
    const journals = NAMES.map((n) => journalOf(sim, n).length);
    const r = await runRollback({ waves, from: N, target: N1, ops: sim, record: older, ...clock, pollMs: 1000 });
    expect(r).toEqual({
      kind: 'refuse',
      message: "rollback refused before any node was touched: what the previous slot of 2 nodes holds is unknown (master: slot A, w-1: slot A): this workspace's upgrade record (upgrade/record.json in the cluster's workspace) has no entry for them, and a node's update agent keeps only the build it runs (0.2.0 on slot B of master); switching might not return the cluster to 0.1.0. Restore the record from the workspace that ran the upgrade, or upgrade to a fixed build instead",
    });
    expect(sim.calls).toEqual([]);
    expect(NAMES.map((n) => journalOf(sim, n).length)).toEqual(journals);
    expect(older.bad).toEqual([]);
  });

  it('a try withdrawn before its boot ends the agent failed (the build not bad): a cancel after the write, and a run that ended between the write and the reboot (the rerun withdraws it, then stages again)', async () => {
    const a = setup();
    const ctl = new AbortController();
    await runApply({ waves, from: N, target: N1, ops: a.sim, record: a.record, signal: ctl.signal, ...a.clock, onEvent: (e) => e.detail.startsWith('slot B written') && ctl.abort() });
    expect(stateOf(a.sim, 'cp-1')).toMatchObject({ state: 'failed', bad: [], reason: 'the try of slot B was withdrawn before it booted (the upgrade was cancelled); stage 0.2.0 again' });

    const b = setup();
    // The foundry stops right after cp-1's write (its loop's bound: a crash between the write and the reboot).
    await expect(runApply({ waves, from: N, target: N1, ops: b.sim, record: b.record, maxSteps: 1, ...b.clock })).rejects.toThrow(/did not end within 1 steps/);
    expect(stateOf(b.sim, 'cp-1')).toMatchObject({ state: 'staged', slot: 'B' });
    expect(b.sim.peek('cp-1')).toMatch(/^try=B$/m);
    // A run refused by the workspace's record touches nothing, not even the pending try.
    b.sim.calls.length = 0;
    const refused = await runApply({ waves, from: N, target: N1, ops: b.sim, record: { ...b.record, bad: [{ digest: N1.digest, version: '0.2.0', node: 'w-1', reason: 'x' }] }, ...b.clock });
    expect(refused).toMatchObject({ kind: 'refuse', message: expect.stringMatching(/^build 0\.2\.0 rolled back on w-1 \(x\)/) });
    expect(b.sim.calls).toEqual([]);
    expect(b.sim.peek('cp-1')).toMatch(/^try=B$/m);
    expect(await runApply({ waves, from: N, target: N1, ops: b.sim, record: b.record, ...b.clock })).toMatchObject({ kind: 'done' });
    expect(b.sim.calls.slice(0, 3)).toEqual(['cancel cp-1 B', 'write cp-1 B 0.2.0', 'reboot cp-1']);
    expect(path(journalOf(b.sim, 'cp-1'))).toEqual(['idle>checking', 'checking>receiving', 'receiving>writing', 'writing>staged', 'staged>failed', 'failed>checking', 'checking>receiving', 'receiving>writing', 'writing>staged', 'staged>verifying', 'verifying>committed']);
  });

  it('a replaced node (NodeAgents.replaced): the old disk\'s state handed back, the new disk\'s journal begun at 0, its first state the `replaced` one with the old bad list', async () => {
    const { sim, record, clock } = setup();
    // w-1 had N+1 rolled back on its old disk.
    sim.breaks = (node, b) => (node === 'w-1' && b.digest === N1.digest ? 'kubelet' : undefined);
    await runApply({ waves, from: N, target: N1, ops: sim, record, ...clock });
    const old = stateOf(sim, 'w-1')!;
    expect(old.bad.map((b) => b.digest)).toEqual([N1.digest]);
    const read = await NodeAgents.read(sim, ['w-1'], clock.now);
    if (!read.ok) throw new Error(read.message);
    // The VM and its disk go (the simulated destroy removes the node's directory), a new one comes from N.
    await sim.destroy('w-1');
    await sim.provision('w-1', N);
    expect(read.agents.replaced('w-1')).toEqual(old);
    expect(stateOf(sim, 'w-1')).toBeUndefined();
    expect(await read.agents.feed('w-1', { type: 'replaced', build: N }, () => old)).toEqual({});
    expect(stateOf(sim, 'w-1')).toEqual({ schema: 1, state: 'verifying', active: 'A', running: N, target: N, bad: old.bad });
    expect(journalOf(sim, 'w-1').map((l) => `${l.seq} ${l.from}>${l.to} ${l.event.type}`)).toEqual(['0 rolled-back>verifying replaced']);
  });
});
