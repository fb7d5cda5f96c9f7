// drills.history over the contract: records from the workspace, validated on the way out; a bad
// cluster name is refused by the request schema.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
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

describe('drills.history', () => {
  it('returns the recorded drills of a cluster, oldest first, and refuses a name that is not a cluster name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kubedos-ipc-drills-'));
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
    const wb = createWorkbench({ transport: 'websocket', workspace: mkdtempSync(join(tmpdir(), 'kubedos-ipc-drills-')), emit: () => {} });
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
    const dir = mkdtempSync(join(tmpdir(), 'kubedos-ipc-drills-'));
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
