import { describe, expect, it } from 'vitest';
import type { PipelineEvent, PipelineEventBody, StageState } from './events';
import { EMPTY_RUN, foldEvent, foldRun, settled } from './fold';

let seq = 0;
const ev = (body: PipelineEventBody, runId = 'r1'): PipelineEvent => ({ ...body, runId, seq: seq++, time: `2026-01-01T00:00:${String(seq % 60).padStart(2, '0')}Z` }) as PipelineEvent;
const start = (runId = 'r1', stages = ['provision', 'converge', 'workload']) => ev({ type: 'run', state: 'started', stages, pipeline: 'deploy' }, runId);
const stage = (name: string, state: StageState, extra: object = {}, runId = 'r1') =>
  ev({ type: 'stage', stage: name, state, rerun: 'safe-rerun', attempt: 1, ...extra } as PipelineEventBody, runId);

describe('foldRun', () => {
  it('reads stage states, durations, changes, reasons and progress', () => {
    const run = foldRun([
      start(),
      stage('provision', 'running'),
      ev({ type: 'progress', stage: 'provision', fraction: 0.5, message: 'creating VMs' }),
      stage('provision', 'success', { durationMs: 1200, changes: 3, inputHash: 'h1' }),
      stage('converge', 'skipped', { reason: 'converged: inputs unchanged' }),
    ]);
    expect(run.status).toBe('running');
    expect(run.order).toEqual(['provision', 'converge', 'workload']);
    expect(run.stages.provision).toMatchObject({ state: 'success', progress: 1, durationMs: 1200, changes: 3, inputHash: 'h1', message: 'creating VMs', rerun: 'safe-rerun' });
    expect(run.stages.provision?.startedAt).toBeDefined();
    expect(run.stages.converge).toMatchObject({ state: 'skipped', reason: 'converged: inputs unchanged' });
    expect(run.stages.workload).toMatchObject({ state: 'pending', progress: 0 });
    expect(run.stages.workload?.rerun).toBeUndefined();
    expect(settled(run.stages.provision, 'success')).toBe('changed (3)');
    expect(settled(run.stages.converge, 'skipped')).toBe('unchanged');
  });
  it('keeps a node ok (or failed) when a later stage skips it, and notes the skip', () => {
    const run = foldRun([
      start(),
      ev({ type: 'node', stage: 'converge', node: 'w-1', state: 'ok' }),
      ev({ type: 'node', stage: 'converge', node: 'w-2', state: 'failed', message: 'apt' }),
      ev({ type: 'node', stage: 'workload', node: 'w-1', state: 'skipped', message: 'no Kubernetes packages' }),
      ev({ type: 'node', stage: 'workload', node: 'w-2', state: 'skipped' }),
      ev({ type: 'node', stage: 'workload', node: 'w-3', state: 'skipped' }),
    ]);
    expect(run.nodes['w-1']).toEqual({ state: 'ok', stage: 'converge', message: 'workload skipped: no Kubernetes packages' });
    expect(run.nodes['w-2']).toEqual({ state: 'failed', stage: 'converge', message: 'workload skipped' });
    expect(run.nodes['w-3']).toEqual({ state: 'skipped', stage: 'workload' });
    // Per stage, what each stage itself said.
    expect(run.stages.workload?.nodes['w-1']).toEqual({ state: 'skipped', message: 'no Kubernetes packages' });
  });
  it('settles on done: failed over cancelled over done', () => {
    const base = [start(), stage('provision', 'success')];
    expect(foldRun([...base, ev({ type: 'done', summary: { provision: 'success' }, durationMs: 5 })]).status).toBe('done');
    expect(foldRun([...base, ev({ type: 'done', summary: { provision: 'success', converge: 'aborted' }, durationMs: 5 })]).status).toBe('cancelled');
    const failed = foldRun([...base, ev({ type: 'failed', error: { message: 'boom', stage: 'converge' } }), ev({ type: 'done', summary: { converge: 'failed', workload: 'aborted' }, durationMs: 9 })]);
    expect(failed).toMatchObject({ status: 'failed', durationMs: 9, failures: [{ message: 'boom', stage: 'converge' }] });
  });
  it('a new run replaces the previous one; stray events of another run are ignored', () => {
    const first = foldRun([start('r1'), stage('provision', 'failed', {}, 'r1')]);
    const second = foldRun([start('r2', ['plan']), stage('provision', 'success', {}, 'r1'), ev({ type: 'failed', error: { message: 'old', stage: 'x' } }, 'r1')], first);
    expect(second.runId).toBe('r2');
    expect(second.order).toEqual(['plan']);
    expect(second.stages.provision).toBeUndefined();
    expect(second.failures).toEqual([]);
    // Before any run event nothing belongs to a run.
    expect(foldRun([stage('provision', 'running')])).toBe(EMPTY_RUN);
  });
  it('folds only the named run out of a journal holding several (the bundle seals one)', () => {
    const journal = [start('r1'), stage('provision', 'success', {}, 'r1'), start('r2'), stage('provision', 'failed', {}, 'r2')];
    expect(foldRun(journal, EMPTY_RUN, { onlyRun: 'r1' })).toMatchObject({ runId: 'r1', stages: { provision: { state: 'success' } } });
    expect(foldRun(journal).stages.provision?.state).toBe('failed');
  });
  it('returns the same object for events that change nothing (log lines, checkpoints)', () => {
    const run = foldRun([start()]);
    expect(foldEvent(run, ev({ type: 'log', stage: 'provision', stream: 'stdout', line: 'x' }))).toBe(run);
    expect(foldEvent(run, ev({ type: 'checkpoint', stage: 'provision', key: 'k', value: 1 }))).toBe(run);
    expect(foldEvent(run, stage('provision', 'running'))).not.toBe(run);
  });
});
