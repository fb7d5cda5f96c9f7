// The engine's phase machine against an in-memory target (the lab test runs it for real):
// ordering, the journal written at every change, failure and Ctrl-C leaving a record that says
// where it stopped and what to run next.
import { describe, expect, it } from 'vitest';
import type { DrillCommand } from '../../common/drills/timeline';
import { MAX_PHASE_COMMANDS } from '../../common/drills/timeline';
import { recordingShell } from './shell';
import { fakeTarget, startTestDrill, TEST_SPEC, TEST_THRESHOLDS, threeMember } from './testing';
import { runHeal } from './engine';

describe('runDrill', () => {
  it('refuses a kill on a single-member etcd (quorum) and journals the refusal', async () => {
    const { target } = fakeTarget();
    const { p, stored } = startTestDrill(target);
    const r = await p;
    expect(r.status).toBe('refused');
    expect(r.guard.reasons.map((x) => x.code)).toEqual(['quorum']);
    expect(stored.at(-1)?.status).toBe('refused');
  });

  it('on a 3-member etcd runs the six phases in order, journals each change, records the commands per phase', async () => {
    const { target, state } = threeMember();
    const { p, stored } = startTestDrill(target);
    const r = await p;
    expect(r.status, JSON.stringify(r.error)).toBe('passed');
    expect(r.phases.map((x) => `${x.name}:${x.state}`)).toEqual(['inject:done', 'detect:done', 'fence:done', 'replace:done', 'reintegrate:done', 'healthy:done']);
    expect(r.phases[0]?.commands.map((c) => c.argv.join(' '))).toEqual(['kill -KILL 42']);
    expect(r.phases[1]?.commands.length).toBe(0); // probes go through the target's gatherFacts with the recording shell; the fake does not call it
    expect(r.mttrMs).toBeGreaterThanOrEqual(0);
    expect(r.pass).toBe(true);
    expect(stored[0]?.status).toBe('running');
    expect(stored.filter((s) => s.phases.some((x) => x.state === 'running')).length).toBeGreaterThanOrEqual(6);
    expect(state.down).toBe(false);
  });
});

describe('runDrill when things go wrong', () => {
  it('a failing fence ends with the phase, node, command, stderr tail and the next step', async () => {
    const { target } = threeMember({ failFence: true });
    const r = await startTestDrill(target).p;
    expect(r.status).toBe('failed');
    expect(r.phases.find((x) => x.name === 'fence')?.state).toBe('failed');
    expect(r.error).toEqual({ phase: 'fence', node: 'cp-1', message: 'etcdctl member remove exited 1', command: ['etcdctl', 'member', 'remove', 'a1'], stderrTail: 'Error: etcdserver: unhealthy cluster' });
    expect(r.next).toBe('kubedos heal lab.yaml');
    expect(r.mttrMs).toBeUndefined();
  });

  it('Ctrl-C during detect: the record says interrupted in detect and what to run next', async () => {
    const ac = new AbortController();
    const { target } = threeMember({ onInject: () => setTimeout(() => ac.abort(), 5) });
    const { p, stored } = startTestDrill(target, { signal: ac.signal });
    const r = await p;
    expect(r.status).toBe('interrupted');
    expect(r.phases.map((x) => x.state)).toEqual(['done', 'interrupted', 'pending', 'pending', 'pending', 'pending']);
    expect(r.error?.message).toBe('interrupted during detect');
    expect(r.next).toBe('kubedos heal lab.yaml');
    expect(stored.at(-1)).toEqual(r);
  });
});

describe('recordingShell', () => {
  it('keeps the first MAX_PHASE_COMMANDS commands of a phase in full and counts the rest', async () => {
    const phase: { commands: DrillCommand[]; commandsOmitted?: number } = { commands: [] };
    const sh = recordingShell({ exec: async (_n, argv) => ({ command: [...argv], exitCode: 0, signal: null, stdout: '', stderr: '', durationMs: 0 }) }, () => phase, () => 0);
    for (let i = 0; i < MAX_PHASE_COMMANDS + 5; i++) await sh.exec('master', ['wg', 'show', String(i)]);
    expect(phase.commands.length).toBe(MAX_PHASE_COMMANDS);
    expect(phase.commands[0]?.argv).toEqual(['wg', 'show', '0']);
    expect(phase.commandsOmitted).toBe(5);
  });
});

describe('heal looks twice', () => {
  it('repairs only what both looks found: a finding gone at the second look (an etcd election) is left alone', async () => {
    const { target, state } = fakeTarget();
    state.down = true;
    let looks = 0;
    const base = target.gatherFacts;
    target.gatherFacts = async (sh, now) => {
      looks += 1;
      if (looks > 1) state.down = false;
      return base(sh, now);
    };
    const res = await runHeal({ target, spec: TEST_SPEC, thresholds: TEST_THRESHOLDS, thresholdsSource: 'test', store: () => undefined, nextOnInterrupt: 'kubedos heal lab.yaml', phaseTimeoutMs: 5000, idFor: (s, n) => `h-${s}-${n}`, confirmAfterMs: 10 });
    expect(looks).toBe(2);
    expect(res.before.findings).toEqual([]);
    expect(res.records).toEqual([]);
  });

  it('repairs a finding that stays', async () => {
    const { target, state } = fakeTarget();
    state.down = true;
    const res = await runHeal({ target, spec: TEST_SPEC, thresholds: TEST_THRESHOLDS, thresholdsSource: 'test', store: () => undefined, nextOnInterrupt: 'kubedos heal lab.yaml', phaseTimeoutMs: 5000, idFor: (s, n) => `h-${s}-${n}`, confirmAfterMs: 10 });
    expect(res.before.findings.map((f) => `${f.node} ${f.signal}`)).toEqual(['cp-1 etcd-member']);
    expect(res.records.map((r) => `${r.kind} ${r.scenario} ${r.node}`)).toEqual(['heal kill-etcd-member cp-1']);
  });
});
