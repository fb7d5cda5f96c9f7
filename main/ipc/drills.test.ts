// The Drills view's contract: drills.history (records from the workspace, validated on the way out;
// a bad cluster name refused by the request schema), check/run/report on the namespace lab, and on
// the deployed cluster (where: 'cluster') the CLI's refusals, its engine call with the chosen target,
// allowDestroy only when confirmed, cancel leaving the cluster to heal, and drills.heal. The cluster
// runs are injected (an in-memory target through the engine's runDrill): no VM is touched here.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../testing/temp-dir';
import { decodeEnvelope } from '../../common/contract/index';
import type { DrillEvent } from '../../common/drills/live';
import { EMPTY_LIVE, foldDrillEvents, targetState } from '../../common/drills/live';
import { emptyPhases } from '../../common/drills/timeline';
import { TEMPLATES } from '../../common/spec/index';
import { runDrill } from '../drills/engine';
import { saveDrillRecord } from '../drills/history';
import { threeMember } from '../drills/testing';
import { dispatch } from './dispatch';
import { createWorkbench } from './workbench';
import { parseSpec } from '../../common/spec/index';
import type { ClusterDrillRun, ClusterHealRun } from '../drills/service';
import { writeDeployJournal } from '../upgrade/testing';
import { acquireDeployLock, clusterWorkspace } from '../workspace';

afterAll(removeTempDirs);

describe('drills.history', () => {
  it('returns the recorded drills of a cluster, oldest first, and refuses a name that is not a cluster name', async () => {
    const dir = tempDir('kubedos-ipc-drills-');
    const env = { KUBEDOS_WORKSPACE: join(dir, 'ws') };
    const wb = createWorkbench({ transport: 'websocket', workspace: join(dir, 'specs'), emit: () => {}, env });
    expect(decodeEnvelope(await dispatch(wb.handlers, 'drills.history', { cluster: 'lab-3' }))).toEqual({ records: [], total: 0, unreadable: 0 });
    const rec = {
      schema: 'kubedos.drill/v1' as const,
      id: 'x1',
      kind: 'drill' as const,
      cluster: 'lab-3',
      scenario: 'kill-etcd-member',
      node: 'cp-1',
      target: 'lab' as const,
      status: 'refused' as const,
      startedAtMs: 5,
      phases: emptyPhases(),
      goal: { minutes: 30, source: 'acceptance.mttrTargetMinutes' },
      thresholds: { heartbeatSeconds: 10, silenceSeconds: 60, handshakeMaxAgeSeconds: 180, signals: ['etcd-member'], source: 'spec' },
      guard: { ok: false, reasons: [{ code: 'quorum', message: 'would leave 0 of 1' }] },
    };
    saveDrillRecord(rec, env);
    saveDrillRecord({ ...rec, id: 'x0', startedAtMs: 1 }, env);
    const got = decodeEnvelope(await dispatch(wb.handlers, 'drills.history', { cluster: 'lab-3' })) as { records: { id: string }[]; total: number };
    expect(got.records.map((r) => r.id)).toEqual(['x0', 'x1']);
    expect(got.total).toBe(2);
    await expect(dispatch(wb.handlers, 'drills.history', { cluster: '../etc' }).then(decodeEnvelope)).rejects.toThrow(/cluster name/);
    await wb.dispose();
  });
});

describe('drills.check / drills.run / drills.report', () => {
  const text = TEMPLATES['lab-3'].text;

  it('check: the guard from the plan, the default node, the eligible ones, and what the lab cannot do', async () => {
    const wb = createWorkbench({ transport: 'websocket', workspace: tempDir('kubedos-ipc-drills-'), emit: () => {} });
    const ok = decodeEnvelope(await dispatch(wb.handlers, 'drills.check', { text, scenario: 'partition-node' })) as { node: string; eligible: string[]; reasons: unknown[] };
    expect(ok.node).toBe('w-1');
    expect(ok.eligible).toEqual(['cp-1', 'w-1']);
    expect(ok.reasons).toEqual([]);
    const hub = decodeEnvelope(await dispatch(wb.handlers, 'drills.check', { text, scenario: 'partition-node', node: 'master' })) as { reasons: { code: string }[] };
    expect(hub.reasons.map((r) => r.code)).toEqual(['hub-target']);
    const vm = decodeEnvelope(await dispatch(wb.handlers, 'drills.check', { text, scenario: 'delete-worker-vm' })) as { cannotRun?: string };
    expect(vm.cannotRun).toMatch(/needs a hypervisor/);
    await wb.dispose();
  });

  it('run: streams the record at every phase change on drills.events (folded to the node colours), saves it, and the report has it', async () => {
    const dir = tempDir('kubedos-ipc-drills-');
    const env = { KUBEDOS_WORKSPACE: join(dir, 'ws') };
    const events: DrillEvent[] = [];
    const spec = (await import('../../common/spec/index')).parseSpec(text).spec!;
    const wb = createWorkbench({
      transport: 'websocket',
      workspace: join(dir, 'specs'),
      env,
      emit: (channel, payload) => channel === 'drills.events' && events.push(...(payload as DrillEvent[])),
      drillRunner: (o) => {
        const { target } = threeMember();
        return runDrill({ target, spec, scenario: o.scenario, node: 'cp-1', thresholds: { signals: ['etcd-member'], silenceSeconds: 0.02, handshakeMaxAgeSeconds: 120, heartbeatSeconds: 0.01 }, thresholdsSource: 'test', id: 'ipc-1', store: (r) => (saveDrillRecord(r, env), o.onRecord?.(structuredClone(r))), nextOnInterrupt: o.nextOnInterrupt, ...(o.signal ? { signal: o.signal } : {}), log: o.log, phaseTimeoutMs: 5000 });
      },
    });
    const r = decodeEnvelope(await dispatch(wb.handlers, 'drills.run', { text, scenario: 'kill-etcd-member', node: 'cp-1' })) as { status: string; id: string };
    expect(r.status).toBe('passed');
    const records = events.filter((e) => e.type === 'record');
    expect(records.length).toBeGreaterThanOrEqual(12);
    const states = new Set(records.map((e) => e.type === 'record' && targetState(e.record)));
    expect([...states]).toEqual(['healthy', 'unhealthy', 'fenced', 'provisioning', 'rejoining']);
    expect(targetState(foldDrillEvents(EMPTY_LIVE, events).records['ipc-1']!)).toBe('healthy');
    const rep = decodeEnvelope(await dispatch(wb.handlers, 'drills.report', { cluster: 'lab-3' })) as { json: string; html: string; drills: number };
    expect(rep.drills).toBe(1);
    expect(JSON.parse(rep.json).records[0].id).toBe('ipc-1');
    expect(rep.html).toContain('kill-etcd-member on cp-1 — pass');
    expect(decodeEnvelope(await dispatch(wb.handlers, 'drills.cancel', {}))).toEqual({ cancelled: false });
    await expect(dispatch(wb.handlers, 'drills.run', { text, scenario: 'partition-node', node: 'master' }).then(decodeEnvelope)).rejects.toThrow(/refused: master is the hub/);
    await wb.dispose();
  });
});

describe('drills on the deployed cluster (where: cluster) and drills.heal', () => {
  const text = TEMPLATES['lab-3'].text;
  const qemu = { kind: 'qemu-local' as const };

  function setup(o: { phaseDelayMs?: number } = {}) {
    const dir = tempDir('kubedos-ipc-drills-cluster-');
    const env = { KUBEDOS_WORKSPACE: join(dir, 'ws') };
    const events: DrillEvent[] = [];
    const clusterRuns: ClusterDrillRun[] = [];
    const healRuns: ClusterHealRun[] = [];
    const spec = parseSpec(text).spec!;
    // The engine's drill on an in-memory cluster: what the binding passes is recorded, the record
    // streams through onRecord, and the run's abort signal interrupts it like Ctrl-C.
    const engineRun = (o: ClusterDrillRun | ClusterHealRun, id: string) => {
      const { target } = threeMember({ phaseDelayMs: setupDelay.ms });
      return runDrill({ target: { ...target, kind: 'cluster' }, spec, scenario: 'kill-etcd-member', node: 'cp-1', thresholds: { signals: ['etcd-member'], silenceSeconds: 0.02, handshakeMaxAgeSeconds: 120, heartbeatSeconds: 0.01 }, thresholdsSource: 'test', id, store: (r) => (saveDrillRecord(r, env), o.onRecord?.(structuredClone(r))), nextOnInterrupt: o.nextOnInterrupt, ...(o.request.signal ? { signal: o.request.signal } : {}), log: o.log, phaseTimeoutMs: 5000 });
    };
    const setupDelay = { ms: o.phaseDelayMs ?? 0 };
    const wb = createWorkbench({
      transport: 'websocket',
      workspace: join(dir, 'specs'),
      env,
      emit: (channel, payload) => channel === 'drills.events' && events.push(...(payload as DrillEvent[])),
      drillRunner: () => Promise.reject(new Error('the namespace lab must not run')),
      drillClusterRunner: (o) => (clusterRuns.push(o), engineRun(o, 'cluster-1')),
      drillHealRunner: async (o) => {
        healRuns.push(o);
        const r = await engineRun(o, 'heal-1');
        return { before: { healthy: false, nodes: [], findings: [], notObserved: [] }, records: [r], cannot: [] };
      },
    });
    return { env, events, clusterRuns, healRuns, wb };
  }

  it('check and run refuse, before anything is touched, what the CLI refuses: never deployed, the deploy lock held, the only etcd member; no target chosen', async () => {
    const s = setup();
    const check = async (r: Record<string, unknown>) => decodeEnvelope(await dispatch(s.wb.handlers, 'drills.check', { text, where: 'cluster', target: qemu, ...r })) as { cannotRun?: string; destroys?: boolean; allowDestroyBySpec?: boolean; where: string; node?: string };
    expect((await check({ scenario: 'delete-worker-vm' })).cannotRun).toMatch(/^lab-3 has no deploy in its journal .*: deploy it first \(kubedos deploy SPEC\), then run the drill$/);
    await expect(dispatch(s.wb.handlers, 'drills.run', { text, scenario: 'delete-worker-vm', node: 'w-1', where: 'cluster', target: qemu, allowDestroy: true }).then(decodeEnvelope)).rejects.toThrow(/^refused: lab-3 has no deploy in its journal .*then run the drill; nothing was touched/);
    await expect(dispatch(s.wb.handlers, 'drills.heal', { text, target: qemu }).then(decodeEnvelope)).rejects.toThrow(/^refused: lab-3 has no deploy in its journal/);
    writeDeployJournal('lab-3', s.env);
    expect(await check({ scenario: 'delete-worker-vm' })).toMatchObject({ where: 'cluster', node: 'w-1', destroys: true, allowDestroyBySpec: false });
    expect((await check({ scenario: 'delete-worker-vm' })).cannotRun).toBeUndefined();
    expect((await check({ scenario: 'delete-worker-vm', target: undefined })).cannotRun).toBe('choose where the cluster runs (qemu-local or a Proxmox host) in Deploy first');
    expect((await check({ scenario: 'power-off-node', node: 'cp-1' })).cannotRun).toMatch(/^cp-1 is an etcd member of lab-3 and taking cp-1's etcd member out would leave 0 of 1 members healthy; quorum needs 1 \(cp-1 is the only member\)/);
    expect((await check({ scenario: 'kill-etcd-member' })).cannotRun).toMatch(/^cp-1 is an etcd member of lab-3 and taking cp-1's etcd member out would leave 0 of 1/);
    // The lab is still what check answers without where.
    expect(decodeEnvelope(await dispatch(s.wb.handlers, 'drills.check', { text, scenario: 'delete-worker-vm' }))).toMatchObject({ where: 'lab', cannotRun: expect.stringMatching(/needs a hypervisor/) });
    // Another operation holds the cluster's lock: refused with who holds it.
    const release = acquireDeployLock(clusterWorkspace('lab-3', s.env), 'kubedos deploy lab-3.yaml');
    try {
      expect((await check({ scenario: 'partition-node' })).cannotRun).toMatch(new RegExp(`^another operation holds lab-3's lock \\(pid ${process.pid}, kubedos deploy lab-3\\.yaml, since .*\\): wait for it to end or stop it, then run the drill$`));
      await expect(dispatch(s.wb.handlers, 'drills.run', { text, scenario: 'partition-node', node: 'w-1', where: 'cluster', target: qemu }).then(decodeEnvelope)).rejects.toThrow(/^refused: another operation holds lab-3's lock/);
      await expect(dispatch(s.wb.handlers, 'drills.heal', { text, target: qemu }).then(decodeEnvelope)).rejects.toThrow(/^refused: another operation holds lab-3's lock .*then run the heal/);
    } finally {
      release();
    }
    await expect(dispatch(s.wb.handlers, 'drills.run', { text, scenario: 'partition-node', node: 'w-1', where: 'cluster' }).then(decodeEnvelope)).rejects.toThrow(/no target given for the deployed cluster/);
    expect(s.clusterRuns).toEqual([]);
    expect(s.healRuns).toEqual([]);
    expect(s.events).toEqual([]);
    await s.wb.dispose();
  });

  it('run: the CLI\'s engine call on the chosen target, allowDestroy only when confirmed (or the spec allows it), records streamed; heal likewise', async () => {
    const s = setup();
    writeDeployJournal('lab-3', s.env);
    const r = decodeEnvelope(await dispatch(s.wb.handlers, 'drills.run', { text, scenario: 'delete-worker-vm', node: 'w-1', where: 'cluster', target: { kind: 'proxmox', host: 'pve-1' }, allowDestroy: true })) as { status: string };
    expect(r.status).toBe('passed');
    expect(s.clusterRuns).toHaveLength(1);
    const o = s.clusterRuns[0]!;
    expect(o).toMatchObject({ scenario: 'delete-worker-vm', node: 'w-1', allowDestroy: true, specName: 'SPEC', nextOnInterrupt: 'Heal in the Drills view (or kubedos heal SPEC) (it finds w-1 and finishes its repair)' });
    expect(o.request).toMatchObject({ target: { kind: 'proxmox', host: 'pve-1' }, specText: text, by: 'workbench drill', env: s.env });
    expect(o.request.signal).toBeInstanceOf(AbortSignal);
    expect(s.events.filter((e) => e.type === 'record').length).toBeGreaterThanOrEqual(12);
    // Not confirmed: the engine's guard gets allowDestroy false (and refuses, recorded, as from the CLI).
    await dispatch(s.wb.handlers, 'drills.run', { text, scenario: 'delete-worker-vm', node: 'w-1', where: 'cluster', target: qemu });
    expect(s.clusterRuns[1]!.allowDestroy).toBe(false);
    const h = decodeEnvelope(await dispatch(s.wb.handlers, 'drills.heal', { text, target: qemu })) as { records: { id: string }[] };
    expect(h.records.map((x) => x.id)).toEqual(['heal-1']);
    expect(s.healRuns[0]).toMatchObject({ allowDestroy: false, nextOnInterrupt: 'Heal in the Drills view (or kubedos heal SPEC) again (it finds what is still unhealthy)' });
    expect(s.events.some((e) => e.type === 'record' && e.record.id === 'heal-1')).toBe(true);
    await s.wb.dispose();
  });

  it('cancel: the drill ends interrupted, the record says to heal (the cluster is left healing), and nothing is left running', async () => {
    const s = setup({ phaseDelayMs: 400 });
    writeDeployJournal('lab-3', s.env);
    const running = dispatch(s.wb.handlers, 'drills.run', { text, scenario: 'partition-node', node: 'w-1', where: 'cluster', target: qemu }).then(decodeEnvelope) as Promise<{ status: string; next?: string; error?: { phase: string } }>;
    await new Promise((r) => setTimeout(r, 150));
    await expect(dispatch(s.wb.handlers, 'drills.heal', { text, target: qemu }).then(decodeEnvelope)).rejects.toThrow(/a drill or heal is already running/);
    expect(decodeEnvelope(await dispatch(s.wb.handlers, 'drills.cancel', {}))).toEqual({ cancelled: true });
    const r = await running;
    expect(r.status).toBe('interrupted');
    expect(r.next).toBe('Heal in the Drills view (or kubedos heal SPEC) (it finds w-1 and finishes its repair)');
    expect(decodeEnvelope(await dispatch(s.wb.handlers, 'drills.cancel', {}))).toEqual({ cancelled: false });
    await s.wb.dispose();
  });
});
