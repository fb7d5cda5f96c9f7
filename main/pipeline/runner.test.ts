import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../testing/temp-dir';
import { z } from 'zod';
import type { PipelineEvent } from '../../common/pipeline/events';
import { PipelineEvent as PipelineEventSchema } from '../../common/pipeline/events';
import { readJournal } from './journal';
import type { StageDefinition } from './runner';
import { notImplementedStage, runPipeline, StageError, topologicalOrder } from './runner';

afterAll(removeTempDirs);

const stage = (name: string, needs: string[] = [], run: StageDefinition['run'] = async () => {}, extra: Partial<StageDefinition> = {}): StageDefinition => ({
  name,
  description: name,
  needs,
  rerun: 'safe-rerun',
  run,
  ...extra,
});
const tmpJournal = () => join(tempDir('kubedos-journal-'), 'journal.jsonl');

describe('pipeline runner', () => {
  it('orders stages by dependency and detects cycles', () => {
    expect(topologicalOrder([stage('c', ['b']), stage('a'), stage('b', ['a'])])).toEqual(['a', 'b', 'c']);
    expect(() => topologicalOrder([stage('a', ['c']), stage('b', ['a']), stage('c', ['b'])])).toThrow(/cycle a -> c -> b -> a|cycle/);
    expect(() => topologicalOrder([stage('a', ['zzz'])])).toThrow(/unknown stage "zzz"/);
  });

  it('walks every stage through pending -> queued -> running -> success and emits valid events', async () => {
    const events: PipelineEvent[] = [];
    const r = await runPipeline([stage('a', [], async (ctx) => ctx.log('hello', { node: 'n1' })), stage('b', ['a'])], { name: 't', onEvent: (e) => events.push(e) });
    expect(r.ok).toBe(true);
    const states = events.filter((e) => e.type === 'stage' && e.stage === 'b').map((e) => (e as { state: string }).state);
    expect(states).toEqual(['pending', 'queued', 'running', 'success']);
    expect(events.every((e) => PipelineEventSchema.safeParse(e).success)).toBe(true);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i));
    expect(events.at(-1)!.type).toBe('done');
  });

  it('runs independent stages concurrently, bounded', async () => {
    let live = 0;
    let peak = 0;
    const work = async () => {
      live++;
      peak = Math.max(peak, live);
      await new Promise((r) => setTimeout(r, 30));
      live--;
    };
    await runPipeline(['a', 'b', 'c', 'd'].map((n) => stage(n, [], work)), { name: 't', concurrency: 2 });
    expect(peak).toBe(2);
  });

  it('retries with backoff where a stage allows it', async () => {
    let calls = 0;
    const r = await runPipeline([stage('flaky', [], async () => { if (++calls < 3) throw new Error('transient'); }, { retries: { attempts: 2, backoffMs: 5 } })], { name: 't' });
    expect(r.ok).toBe(true);
    expect(calls).toBe(3);
  });

  it('fails with an actionable detail and skips what depends on the failure', async () => {
    const r = await runPipeline(
      [stage('a', [], async () => { throw new StageError('node w-1 never enrolled', { node: 'w-1', command: ['wg', 'show'], stderrTail: 'no handshake', hint: 'check the token' }); }), stage('b', ['a']), stage('c')],
      { name: 't' },
    );
    expect(r.ok).toBe(false);
    expect(r.states).toEqual({ a: 'failed', b: 'skipped', c: 'success' });
    expect(r.failures[0]).toMatchObject({ stage: 'a', node: 'w-1', command: ['wg', 'show'], stderrTail: 'no handshake', hint: 'check the token' });
  });

  it('refuses a destructive stage without allowDestroy, runs it with', async () => {
    let ran = false;
    const destroy = stage('destroy', [], async () => { ran = true; }, { rerun: 'destructive' });
    const refused = await runPipeline([destroy], { name: 't' });
    expect(refused.states.destroy).toBe('failed');
    expect(refused.failures[0]!.message).toMatch(/destructive/);
    expect(ran).toBe(false);
    const allowed = await runPipeline([destroy], { name: 't', allowDestroy: { destroy: true } });
    expect(allowed.ok).toBe(true);
    expect(ran).toBe(true);
  });

  it('never reports success for a stage that is not implemented', async () => {
    const r = await runPipeline([notImplementedStage('converge', [], 'remediates-drift', 'Converge', 'issue 7')], { name: 't' });
    expect(r.states.converge).toBe('failed');
    expect(r.failures[0]!.message).toMatch(/not implemented/);
  });

  it('cancels through the AbortSignal: the running stage aborts, the rest never starts', async () => {
    const controller = new AbortController();
    const slow = stage('slow', [], (ctx) => new Promise<void>((resolve, reject) => {
      ctx.signal.addEventListener('abort', () => reject(new Error('stopped')));
      setTimeout(resolve, 10_000);
    }));
    setTimeout(() => controller.abort(), 20);
    const r = await runPipeline([slow, stage('after', ['slow'])], { name: 't', signal: controller.signal });
    expect(r.ok).toBe(false);
    expect(r.states).toEqual({ slow: 'aborted', after: 'aborted' });
  });

  it('resumes from the journal: a stage whose input hash matches its last success is skipped', async () => {
    const journalPath = tmpJournal();
    let runs = 0;
    let hash = 'h1';
    const s = [stage('build', [], async () => { runs++; }, { inputHash: () => hash }), stage('deploy', ['build'], async () => { throw new Error('VM died'); }, { inputHash: () => 'd1' })];
    const first = await runPipeline(s, { name: 't', journalPath });
    expect(first.states).toEqual({ build: 'success', deploy: 'failed' });
    const second = await runPipeline(s, { name: 't', journalPath });
    expect(second.states.build).toBe('skipped');
    expect(runs).toBe(1);
    hash = 'h2';
    await runPipeline(s, { name: 't', journalPath });
    expect(runs).toBe(2);
    const events = readJournal(journalPath);
    expect(events.filter((e) => e.type === 'run')).toHaveLength(3);
  });

  it('a journal with a damaged line (not the last) is not trusted: every stage runs, with a one-line reason', async () => {
    const journalPath = tmpJournal();
    let runs = 0;
    const s = [stage('build', [], async () => { runs++; }, { inputHash: () => 'h1' })];
    await runPipeline(s, { name: 't', journalPath });
    const lines = readFileSync(journalPath, 'utf8').split('\n');
    lines[1] = '{"type": "stage", "garbage';
    writeFileSync(journalPath, lines.join('\n'));
    const logs: string[] = [];
    const again = await runPipeline(s, { name: 't', journalPath, onEvent: (e) => { if (e.type === 'log') logs.push(e.line); } });
    expect(again.states.build).toBe('success');
    expect(runs).toBe(2);
    expect(logs).toEqual([expect.stringMatching(/line 2 is not a valid event: nothing recorded in it is trusted, every stage runs in full \(kept as .*journal\.jsonl\.damaged\)$/)]);
    // A torn last line (a crash mid-write) is normal: the rest is still trusted.
    appendFileSync(journalPath, '{"type":"sta');
    const third = await runPipeline(s, { name: 't', journalPath });
    expect(third.states.build).toBe('skipped');
  });

  it('replays keyed checkpoints instead of repeating side effects', async () => {
    const journalPath = tmpJournal();
    let created = 0;
    let fail = true;
    const s = [stage('provision', [], async (ctx) => {
      await ctx.checkpoint('vm-3001', async () => ++created);
      if (fail) throw new Error('later step failed');
    })];
    await runPipeline(s, { name: 't', journalPath });
    fail = false;
    const r = await runPipeline(s, { name: 't', journalPath });
    expect(r.ok).toBe(true);
    expect(created).toBe(1);
  });

  it('ignores a torn last journal line (crash mid-write)', async () => {
    const journalPath = tmpJournal();
    await runPipeline([stage('a', [], async () => {}, { inputHash: () => 'x' })], { name: 't', journalPath });
    const { appendFileSync } = await import('node:fs');
    appendFileSync(journalPath, '{"type":"stage","sta');
    expect(readJournal(journalPath).length).toBeGreaterThan(3);
    expect(readFileSync(journalPath, 'utf8').endsWith('"sta')).toBe(true);
    const r = await runPipeline([stage('a', [], async () => {}, { inputHash: () => 'x' })], { name: 't', journalPath });
    expect(r.states.a).toBe('skipped');
  });

  describe('typed outputs, declared inputs and probes', () => {
    const counter = () => {
      const ran: string[] = [];
      return { ran, run: (name: string, out: unknown) => async () => (ran.push(name), out) };
    };

    it('hands each stage the outputs of its needs and reads, and refuses reads of a non-ancestor', async () => {
      const seen: unknown[] = [];
      const r = await runPipeline(
        [stage('a', [], async () => ({ n: 1 })), stage('b', ['a'], async (_c, i) => ({ m: (i.a as { n: number }).n + 1 })), stage('c', ['b'], async (_c, i) => void seen.push(i), { reads: ['a'] })],
        { name: 't' },
      );
      expect(r.ok).toBe(true);
      expect(seen).toEqual([{ b: { m: 2 }, a: { n: 1 } }]);
      expect(r.outputs).toMatchObject({ a: { n: 1 }, b: { m: 2 } });
      await expect(runPipeline([stage('a'), stage('b', [], async () => undefined, { reads: ['a'] })], { name: 't' })).rejects.toThrow(/stage "b" reads a, which is not one of its ancestors/);
    });

    it('skips a stage whose inputs match and whose probe is quiet, replaying its journaled output', async () => {
      const journalPath = tmpJournal();
      const c = counter();
      let moved = false;
      const stages = (): StageDefinition[] => [
        stage('a', [], c.run('a', { v: 1 })),
        stage('b', ['a'], c.run('b', { keys: ['k1'] }), { inputs: (i) => i.a, output: z.object({ keys: z.array(z.string()) }), probe: async () => (moved ? { moved: true, reason: 'k1 changed' } : { moved: false, note: 'k1 as recorded' }) }),
        stage('c', ['b'], async (_ctx, i) => void c.ran.push(`c:${JSON.stringify(i.b)}`)),
      ];
      await runPipeline(stages(), { name: 't', journalPath });
      const events: PipelineEvent[] = [];
      const second = await runPipeline(stages(), { name: 't', journalPath, onEvent: (e) => events.push(e) });
      expect(second.states.b).toBe('skipped');
      expect(c.ran).toEqual(['a', 'b', 'c:{"keys":["k1"]}', 'a', 'c:{"keys":["k1"]}']);
      expect(events.find((e) => e.type === 'stage' && e.stage === 'b' && e.state === 'skipped')).toMatchObject({ reason: expect.stringMatching(/^converged: inputs unchanged since run \w{8}; k1 as recorded$/) });
      moved = true;
      const third: PipelineEvent[] = [];
      const r3 = await runPipeline(stages(), { name: 't', journalPath, onEvent: (e) => third.push(e) });
      expect(r3.states.b).toBe('success');
      expect(third.some((e) => e.type === 'log' && e.stage === 'b' && /but k1 changed: running$/.test(e.line))).toBe(true);
    });

    it('runs the stage when its probe cannot run, when the journaled output no longer fits, and under force', async () => {
      const journalPath = tmpJournal();
      let probe: () => Promise<{ moved: false }> = async () => ({ moved: false });
      let schema: z.ZodType<unknown> = z.object({ x: z.number() });
      const stages = (): StageDefinition[] => [stage('a', [], async () => ({ x: 1 }), { inputs: () => 'same', output: schema, probe: () => probe() })];
      await runPipeline(stages(), { name: 't', journalPath });
      expect((await runPipeline(stages(), { name: 't', journalPath })).states.a).toBe('skipped');
      probe = async () => {
        throw new Error('guest agent did not answer');
      };
      const e1: PipelineEvent[] = [];
      expect((await runPipeline(stages(), { name: 't', journalPath, onEvent: (e) => e1.push(e) })).states.a).toBe('success');
      expect(e1.some((e) => e.type === 'log' && /its probe could not run \(guest agent did not answer\): running/.test(e.line))).toBe(true);
      probe = async () => ({ moved: false });
      schema = z.object({ x: z.string() });
      // The last success journaled {x: 1}; the stage now promises {x: string}: not replayed.
      const e2: PipelineEvent[] = [];
      const r2 = await runPipeline([stage('a', [], async () => ({ x: 'one' }), { inputs: () => 'same', output: schema })], { name: 't', journalPath, onEvent: (e) => e2.push(e) });
      expect(r2.states.a).toBe('success');
      expect(e2.some((e) => e.type === 'log' && /no longer fits its schema: running/.test(e.line))).toBe(true);
      expect((await runPipeline([stage('a', [], async () => ({ x: 'one' }), { inputs: () => 'same', output: schema })], { name: 't', journalPath, force: true })).states.a).toBe('success');
    });

    it('trusts no success recorded under another compatibility key, and says so in one line', async () => {
      const journalPath = tmpJournal();
      const s = (): StageDefinition[] => [stage('a', [], async () => ({}), { inputs: () => 'same', output: z.object({}) })];
      await runPipeline(s(), { name: 't', journalPath, compat: 'deploy-journal/1' });
      const events: PipelineEvent[] = [];
      const r = await runPipeline(s(), { name: 't', journalPath, compat: 'deploy-journal/2', onEvent: (e) => events.push(e) });
      expect(r.states.a).toBe('success');
      const warn = events.filter((e) => e.type === 'log' && e.stream === 'warn');
      expect(warn).toHaveLength(1);
      expect(warn[0]).toMatchObject({ line: "the journal's last run was recorded by deploy-journal/1 (this run: deploy-journal/2): nothing it recorded is trusted, every stage runs in full" });
      expect((await runPipeline(s(), { name: 't', journalPath, compat: 'deploy-journal/2' })).states.a).toBe('skipped');
    });
  });
});
