import { describe, expect, it } from 'vitest';
import type { PipelineEvent } from '../../common/pipeline/events';
import { plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { createAnalysisStore } from './analysis/store';
import { formatLogLine, LogBuffer, matches } from './pipeline/log-buffer';
import { createPipelineStore } from './pipeline/store';
import { createSpecStore, isDirty } from './spec/store';
import { forwardRules, policyMatrix, ruleMatches, spokesFor } from './wiring/model';

const ref16 = TEMPLATES['reference-16'].text;
const refPlan = plan(parseSpec(ref16).spec!);

let seq = 0;
const ev = (body: Record<string, unknown>, runId = 'r1'): PipelineEvent => ({ runId, seq: seq++, time: '2026-01-01T00:00:00.000Z', ...body }) as PipelineEvent;

describe('spec store', () => {
  it('is dirty only after edits, and clean again after a save', () => {
    const s = createSpecStore();
    s.getState().load({ text: 'a: 1\n', origin: 'lab-3 (template)' });
    expect(isDirty(s.getState())).toBe(false);
    s.getState().setText('a: 2\n');
    expect(isDirty(s.getState())).toBe(true);
    s.getState().saved('/tmp/x.yaml');
    expect(isDirty(s.getState())).toBe(false);
    expect(s.getState().path).toBe('/tmp/x.yaml');
  });
  it('bumps loadNonce on load and a fresh reveal nonce per jump', () => {
    const s = createSpecStore();
    s.getState().load({ text: 'x', origin: 'o' });
    s.getState().load({ text: 'x', origin: 'o' });
    expect(s.getState().loadNonce).toBe(2);
    s.getState().revealAt(3, 4);
    const first = s.getState().reveal;
    s.getState().revealAt(3, 4);
    expect(s.getState().reveal).not.toBe(first);
    expect(s.getState().reveal).toMatchObject({ line: 3, column: 4 });
  });
});

describe('analysis store', () => {
  it('plans a valid spec and keeps the last plan (marked stale) while the text is invalid', () => {
    const a = createAnalysisStore();
    a.getState().analyse(ref16);
    expect(a.getState().plan?.nodes).toHaveLength(16);
    expect(a.getState().diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    a.getState().analyse(ref16.replace(/cpu: 4/, 'cpu: 0'));
    expect(a.getState().spec).toBeUndefined();
    expect(a.getState().planIsStale).toBe(true);
    expect(a.getState().plan?.nodes).toHaveLength(16);
    expect(a.getState().diagnostics.some((d) => d.path.endsWith('.cpu') && d.severity === 'error')).toBe(true);
    a.getState().analyse(ref16);
    expect(a.getState().planIsStale).toBe(false);
  });
});

describe('pipeline store', () => {
  it('folds run, stage, progress, node, log and done events', () => {
    const logs = new LogBuffer();
    const p = createPipelineStore(logs);
    p.getState().ingest([
      ev({ type: 'run', state: 'started', stages: ['validate', 'plan'], pipeline: 'plan' }),
      ev({ type: 'stage', stage: 'validate', state: 'running', rerun: 'safe-rerun', attempt: 0 }),
      ev({ type: 'log', stage: 'validate', stream: 'info', line: 'validating' }),
      ev({ type: 'stage', stage: 'validate', state: 'success', rerun: 'safe-rerun', attempt: 0, durationMs: 12 }),
      ev({ type: 'progress', stage: 'plan', fraction: 0.5, node: 'w-1' }),
      ev({ type: 'node', stage: 'plan', node: 'w-1', state: 'ok' }),
      ev({ type: 'log', stage: 'plan', node: 'w-1', stream: 'stdout', line: 'w-1 planned' }),
    ]);
    let s = p.getState();
    expect(s.status).toBe('running');
    expect(s.stages.validate).toMatchObject({ state: 'success', durationMs: 12, progress: 1 });
    expect(s.stages.plan).toMatchObject({ state: 'pending', progress: 0.5 });
    expect(s.nodes['w-1']).toMatchObject({ state: 'ok' });
    expect(s.logCount).toBe(2);
    // A later stage that skips the node keeps it ok (with the reason); a first skip shows as skipped.
    p.getState().ingest([ev({ type: 'node', stage: 'workload', node: 'w-1', state: 'skipped', message: 'no Kubernetes packages' }), ev({ type: 'node', stage: 'workload', node: 'cp-1', state: 'skipped' })]);
    expect(p.getState().nodes['w-1']).toEqual({ state: 'ok', stage: 'plan', message: 'workload skipped: no Kubernetes packages' });
    expect(p.getState().nodes['cp-1']).toMatchObject({ state: 'skipped', stage: 'workload' });
    p.getState().ingest([ev({ type: 'stage', stage: 'plan', state: 'failed', rerun: 'safe-rerun', attempt: 0 }), ev({ type: 'failed', error: { message: 'boom', stage: 'plan', hint: 'fix it' } }), ev({ type: 'done', summary: { validate: 'success', plan: 'failed' }, durationMs: 40 })]);
    s = p.getState();
    expect(s.status).toBe('failed');
    expect(s.failures).toEqual([{ message: 'boom', stage: 'plan', hint: 'fix it' }]);
    expect(s.durationMs).toBe(40);
  });
  it('calls a run that ended with aborted stages and no failure "cancelled"', () => {
    const p = createPipelineStore(new LogBuffer());
    p.getState().ingest([ev({ type: 'run', state: 'started', stages: ['plan', 'build'], pipeline: 'deploy' }, 'c1'), ev({ type: 'done', summary: { plan: 'success', build: 'aborted' }, durationMs: 5 }, 'c1')]);
    expect(p.getState().status).toBe('cancelled');
    p.getState().ingest([ev({ type: 'run', state: 'started', stages: ['plan', 'build'], pipeline: 'deploy' }, 'c2'), ev({ type: 'done', summary: { plan: 'failed', build: 'aborted' }, durationMs: 5 }, 'c2')]);
    expect(p.getState().status).toBe('failed');
  });
  it('starts over on a new run and ignores events of other runs', () => {
    const logs = new LogBuffer();
    const p = createPipelineStore(logs);
    p.getState().ingest([ev({ type: 'run', state: 'started', stages: ['a'], pipeline: 'plan' }), ev({ type: 'log', stage: 'a', stream: 'info', line: 'old' })]);
    p.getState().ingest([ev({ type: 'run', state: 'started', stages: ['b'], pipeline: 'plan' }, 'r2'), ev({ type: 'log', stage: 'a', stream: 'info', line: 'stray' }, 'r1')]);
    expect(p.getState().order).toEqual(['b']);
    expect(p.getState().runId).toBe('r2');
    expect(logs.size).toBe(0);
  });
  it('takes 10,000 log events in one batch with one store update', () => {
    const logs = new LogBuffer();
    const p = createPipelineStore(logs);
    let updates = 0;
    p.subscribe(() => updates++);
    const batch = [ev({ type: 'run', state: 'started', stages: ['s'], pipeline: 'plan' }), ...Array.from({ length: 10_000 }, (_, i) => ev({ type: 'log', stage: 's', stream: 'stdout', line: `line ${i}`, node: `n${i % 4}` }))];
    p.getState().ingest(batch);
    expect(updates).toBe(1);
    expect(logs.size).toBe(10_000);
  });
});

describe('log buffer', () => {
  it('drops the oldest lines past its capacity and tells subscribers what was added', () => {
    const b = new LogBuffer(3);
    const seen: number[] = [];
    b.subscribe((added) => seen.push(added.length));
    const line = (n: number) => ({ seq: n, runId: 'r', stage: 's', stream: 'info' as const, line: `l${n}`, time: '2026-01-01T00:00:00.000Z' });
    b.append([line(1), line(2)]);
    b.append([line(3), line(4)]);
    expect(b.all().map((l) => l.seq)).toEqual([2, 3, 4]);
    expect(b.dropped).toBe(1);
    expect(seen).toEqual([2, 2]);
  });
  it('filters by stage and node and strips control characters from lines', () => {
    const l = { seq: 1, runId: 'r', stage: 'plan', node: 'w-1', stream: 'stderr' as const, line: 'bad\x1b]0;title\x07 thing', time: '2026-01-01T12:34:56.789Z' };
    expect(matches(l, { stage: 'plan' })).toBe(true);
    expect(matches(l, { node: 'w-2' })).toBe(false);
    const out = formatLogLine(l);
    expect(out).toContain('12:34:56.789');
    expect(out).toContain('plan/w-1');
    expect(out).not.toContain('\x07');
    expect(out).not.toContain(']0;title\x07');
  });
});

describe('wiring model', () => {
  it('builds the plane × plane matrix with default deny', () => {
    const m = policyMatrix(refPlan);
    const cell = (from: string, to: string) => m.flat().find((c) => c.from === from && c.to === to)!;
    expect(m.flat()).toHaveLength(9);
    expect(cell('wg1', 'wg1').verdict).toBe('same-plane');
    expect(cell('wg1', 'wg3')).toMatchObject({ verdict: 'allow', ports: ['6443/tcp', '2379-2380/tcp'] });
    expect(cell('wg3', 'wg1').verdict).toBe('deny');
  });
  it('ties each cell to the hub forward rules that implement it', () => {
    const rules = forwardRules(refPlan.nodes.find((n) => n.hub)!.nftables);
    expect(rules).toHaveLength(6);
    const m = policyMatrix(refPlan).flat();
    for (const cell of m) expect(rules.filter((r) => ruleMatches(r, cell)), `${cell.from}->${cell.to}`).toHaveLength(1);
  });
  it('puts every non-hub node on each plane with its /32', () => {
    const spokes = spokesFor(refPlan, 'wg2', 100);
    expect(spokes).toHaveLength(15);
    expect(spokes.every((s) => s.address.endsWith('/32') && s.address.startsWith('10.102.'))).toBe(true);
  });
});
