import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../canonical';
import type { AgentEvent, AgentState, AgentStateName, BuildRef } from './agent';
import { AGENT_STATES, AgentJournalLine, AgentState as AgentStateSchema, initialAgentState, journalLine, next, renderAgentState } from './agent';

const build = (version: string): BuildRef => ({ version, digest: sha256Hex(`build ${version}`) });
const N = build('0.1.0');
const N1 = build('0.2.0');
const N1fixed = build('0.2.1');

function run(s: AgentState, events: AgentEvent[]): AgentState {
  for (const e of events) {
    const r = next(s, e);
    if (!r.ok) throw new Error(`${e.type} refused in ${s.state}: ${r.message}`);
    s = r.state;
  }
  return s;
}

const toStaged = (b: BuildRef): AgentEvent[] => [{ type: 'stage', build: b }, { type: 'checked', ok: true }, { type: 'received', ok: true }, { type: 'written', ok: true }];

describe('the update agent, transition by transition', () => {
  it('a good upgrade: idle → checking → receiving → writing → staged → verifying → committed; B is active and runs N+1', () => {
    let s = initialAgentState(N);
    const seen: AgentStateName[] = [s.state];
    for (const e of [...toStaged(N1), { type: 'booted', booted: 'B' }, { type: 'gate', pass: true }] as AgentEvent[]) {
      s = run(s, [e]);
      seen.push(s.state);
    }
    expect(seen).toEqual(['idle', 'checking', 'receiving', 'writing', 'staged', 'verifying', 'committed']);
    expect(s).toEqual({ schema: 1, state: 'committed', active: 'B', running: N1, bad: [] });
    // The next upgrade writes A.
    expect(run(s, [{ type: 'stage', build: N1fixed }]).slot).toBe('A');
  });

  it('a B that fails its gate rolls back: the digest is recorded as bad with the check; staging it again is refused, a fixed build is accepted', () => {
    const s = run(initialAgentState(N), [...toStaged(N1), { type: 'booted', booted: 'B' }, { type: 'gate', pass: false, check: 'services: not active: etcd' }, { type: 'booted', booted: 'A', failed: 'B' }]);
    expect(s.state).toBe('rolled-back');
    expect(s).toMatchObject({ active: 'A', running: N, reason: 'slot B (0.2.0) rolled back to slot A: its health gate failed (services: not active: etcd)' });
    expect(s.bad).toEqual([{ digest: N1.digest, version: '0.2.0', slot: 'B', reason: 'its health gate failed (services: not active: etcd)' }]);
    const again = next(s, { type: 'stage', build: N1 });
    expect(again).toEqual({ ok: false, code: 'bad-build', message: expect.stringMatching(/^build 0\.2\.0 \([0-9a-f]{12}…\) rolled back from slot B on this node \(its health gate failed .*\): it is not staged again; build a fixed N\+1/) });
    expect(next(s, { type: 'stage', build: N1fixed })).toMatchObject({ ok: true, state: { state: 'checking', target: N1fixed, slot: 'B' } });
  });

  it('a B that never boots: GRUB falls back after its tries; rolled back without a gate check, digest bad', () => {
    const s = run(initialAgentState(N), [...toStaged(N1), { type: 'booted', booted: 'A', failed: 'B' }]);
    expect(s).toMatchObject({ state: 'rolled-back', reason: 'slot B (0.2.0) rolled back to slot A: it ran out of boot tries without passing its health gate' });
    expect(s.bad.map((b) => b.digest)).toEqual([N1.digest]);
  });

  it('a try lost (the node booted its active slot with nothing recorded): failed, and the same build may be staged again', () => {
    const s = run(initialAgentState(N), [...toStaged(N1), { type: 'booted', booted: 'A' }]);
    expect(s).toMatchObject({ state: 'failed', bad: [], reason: expect.stringMatching(/slot B was never tried/) });
    expect(next(s, { type: 'stage', build: N1 }).ok).toBe(true);
  });

  it('each step that fails ends in failed with the step and reason; refusals: busy, same build, events out of order', () => {
    for (const [i, step] of (['checked', 'received', 'written'] as const).entries()) {
      const s = run(initialAgentState(N), toStaged(N1).slice(0, i + 1));
      const r = next(s, { type: step, ok: false, reason: 'why' });
      expect(r).toMatchObject({ ok: true, state: { state: 'failed', reason: `${['checking', 'receiving', 'writing'][i]}: why` } });
      if (r.ok) expect(r.state.slot).toBeUndefined();
    }
    const busy = run(initialAgentState(N), toStaged(N1).slice(0, 2));
    expect(next(busy, { type: 'stage', build: N1fixed })).toMatchObject({ ok: false, code: 'busy', message: expect.stringMatching(/an upgrade to 0\.2\.0 is in progress \(state receiving\)/) });
    expect(next(initialAgentState(N), { type: 'stage', build: N })).toMatchObject({ ok: false, code: 'same-build' });
    expect(next(initialAgentState(N), { type: 'stage', build: { version: '0.1.0', digest: N1.digest } })).toMatchObject({ ok: false, code: 'same-version', message: expect.stringMatching(/has the version 0\.1\.0 of the build running on slot A .*: a new build needs a new version/) });
    const onN1 = initialAgentState(N1, 'B');
    expect(next(onN1, { type: 'stage', build: N })).toEqual({ ok: false, code: 'downgrade', message: 'build 0.1.0 is older than 0.2.0, running on slot B: a downgrade needs --allow-downgrade' });
    expect(next(onN1, { type: 'stage', build: N, allowDowngrade: true })).toMatchObject({ ok: true, state: { state: 'checking', slot: 'A' } });
    expect(next(initialAgentState(N), { type: 'gate', pass: true })).toMatchObject({ ok: false, code: 'unexpected', message: "event 'gate' does not apply in state idle" });
    expect(next(run(initialAgentState(N), toStaged(N1)), { type: 'gate', pass: true })).toMatchObject({ ok: false, code: 'unexpected' });
  });

  it('reject (kubedos upgrade --rollback): the build left is recorded as bad, the state rolled-back; not the running build, not mid-upgrade', () => {
    // The node ran N+1 on B; --rollback staged N on A again and its gate committed it.
    const back = run(initialAgentState(N1, 'B'), [{ type: 'stage', build: N, allowDowngrade: true }, { type: 'checked', ok: true }, { type: 'received', ok: true }, { type: 'written', ok: true }, { type: 'booted', booted: 'A' }, { type: 'gate', pass: true }]);
    expect(back).toMatchObject({ state: 'committed', active: 'A', running: N });
    const r = next(back, { type: 'reject', build: N1, slot: 'B', reason: 'rolled back by kubedos upgrade --rollback' });
    expect(r).toEqual({ ok: true, state: { schema: 1, state: 'rolled-back', active: 'A', running: N, bad: [{ digest: N1.digest, version: '0.2.0', slot: 'B', reason: 'rolled back by kubedos upgrade --rollback' }], reason: 'slot B (0.2.0) rolled back to slot A: rolled back by kubedos upgrade --rollback' } });
    if (r.ok) expect(next(r.state, { type: 'stage', build: N1 })).toMatchObject({ ok: false, code: 'bad-build' });
    expect(next(initialAgentState(N1, 'B'), { type: 'reject', build: N1, slot: 'B', reason: 'x' })).toMatchObject({ ok: false, code: 'unexpected', message: expect.stringMatching(/runs on the active slot B: take the node back from it first$/) });
    expect(next(run(initialAgentState(N), toStaged(N1)), { type: 'reject', build: N1fixed, slot: 'B', reason: 'x' })).toMatchObject({ ok: false, code: 'unexpected' });
  });

  it('withdrawn: a staged try withdrawn before any boot ends failed, the build not bad (staged again); only from staged', () => {
    const s = run(initialAgentState(N), toStaged(N1));
    const r = next(s, { type: 'withdrawn', reason: 'the upgrade was cancelled' });
    expect(r).toEqual({ ok: true, state: { schema: 1, state: 'failed', active: 'A', running: N, bad: [], reason: 'the try of slot B was withdrawn before it booted (the upgrade was cancelled); stage 0.2.0 again' } });
    if (r.ok) expect(next(r.state, { type: 'stage', build: N1 }).ok).toBe(true);
    expect(next(run(s, [{ type: 'booted', booted: 'B' }]), { type: 'withdrawn', reason: 'x' })).toMatchObject({ ok: false, code: 'unexpected' });
  });

  it('replaced (a new VM from the build, upgradeStrategy: replace): verifying its active slot A from any state, the old bad list kept; its gate pass commits it, a failure records the build it runs as bad (failed)', () => {
    // The old disk ran N on B and had N+1fixed rolled back; the new disk is created from N+1.
    const old = run(initialAgentState(N, 'B'), [{ type: 'reject', build: N1fixed, slot: 'A', reason: 'rolled back by kubedos upgrade --rollback' }]);
    const mid = run(initialAgentState(N), toStaged(N1).slice(0, 2)); // mid-upgrade (receiving): the old disk's try went with it
    for (const from of [initialAgentState(N), old, mid]) {
      const r = next(from, { type: 'replaced', build: N1 });
      expect(r).toEqual({ ok: true, state: { schema: 1, state: 'verifying', active: 'A', running: N1, target: N1, bad: from.bad } });
    }
    const v = run(old, [{ type: 'replaced', build: N1 }]);
    expect(run(v, [{ type: 'gate', pass: true }])).toEqual({ schema: 1, state: 'committed', active: 'A', running: N1, bad: old.bad });
    // Nothing tried, nothing to fall back to: no boot event applies, no stage while its gate runs.
    expect(next(v, { type: 'booted', booted: 'A' })).toMatchObject({ ok: false, code: 'unexpected' });
    expect(next(v, { type: 'stage', build: N1fixed })).toMatchObject({ ok: false, code: 'busy' });
    const failed = run(initialAgentState(N), [{ type: 'replaced', build: N1 }, { type: 'gate', pass: false, check: 'services: kubelet failed, systemd gave up' }]);
    expect(failed).toEqual({
      schema: 1,
      state: 'failed',
      active: 'A',
      running: N1,
      bad: [{ digest: N1.digest, version: '0.2.0', slot: 'A', reason: 'its health gate failed on its new disk (services: kubelet failed, systemd gave up)' }],
      reason: 'slot A (0.2.0, a new disk) its health gate failed on its new disk (services: kubelet failed, systemd gave up): it is not applied again',
      gateFailure: 'services: kubelet failed, systemd gave up',
    });
    expect(next(failed, { type: 'stage', build: N1 })).toMatchObject({ ok: false, code: 'bad-build' });
    // Replaced again from N (--rollback): verifying N, the bad N+1 kept; its gate commits N.
    expect(run(failed, [{ type: 'replaced', build: N }, { type: 'gate', pass: true }])).toEqual({ schema: 1, state: 'committed', active: 'A', running: N, bad: failed.bad });
  });

  it('the state file and journal lines are what the schemas accept; the state file has sorted keys', () => {
    const s0 = initialAgentState(N);
    const e: AgentEvent = { type: 'stage', build: N1 };
    const r = next(s0, e);
    expect(AgentJournalLine.parse(journalLine(0, '2026-12-03T12:00:00Z', s0, e, r))).toEqual({ seq: 0, time: '2026-12-03T12:00:00Z', from: 'idle', to: 'checking', event: e });
    const refused = next(s0, { type: 'stage', build: N });
    expect(journalLine(1, 't', s0, { type: 'stage', build: N }, refused).refused?.code).toBe('same-build');
    const text = renderAgentState(r.ok ? r.state : s0);
    expect(Object.keys(JSON.parse(text) as object)).toEqual(['active', 'bad', 'running', 'schema', 'slot', 'state', 'target']);
    expect(AgentStateSchema.parse(JSON.parse(text))).toEqual(r.ok ? r.state : undefined);
    expect(() => AgentStateSchema.parse({ ...s0, running: { version: '0.1.0', digest: 'xyz' } })).toThrow(/sha256/);
    expect(() => AgentStateSchema.parse({ ...s0, running: { version: 'latest', digest: N.digest } })).toThrow(/MAJOR\.MINOR\.PATCH/);
  });
});

// ---- properties over arbitrary event sequences ----

const builds = [N1, N1fixed, build('0.3.0')];
const eventArb: fc.Arbitrary<AgentEvent> = fc.oneof(
  fc.constantFrom(...builds).map((b): AgentEvent => ({ type: 'stage', build: b })),
  fc.record({ type: fc.constantFrom('checked' as const, 'received' as const, 'written' as const), ok: fc.boolean() }).map((e): AgentEvent => (e.ok ? e : { ...e, reason: 'broken' })),
  fc.record({ type: fc.constant('booted' as const), booted: fc.constantFrom('A' as const, 'B' as const), failed: fc.constantFrom('A' as const, 'B' as const, undefined) }).map((e): AgentEvent => (e.failed ? e : { type: e.type, booted: e.booted })),
  fc.boolean().map((pass): AgentEvent => (pass ? { type: 'gate', pass } : { type: 'gate', pass, check: 'services: not active: etcd' })),
  fc.constantFrom(N, ...builds).map((b): AgentEvent => ({ type: 'replaced', build: b })),
);
// Bias towards progress: most sequences follow the happy path with noise.
const traceArb = fc.array(fc.oneof({ arbitrary: eventArb, weight: 1 }, { arbitrary: fc.constantFrom<AgentEvent>(...toStaged(N1).slice(1), { type: 'booted', booted: 'B' }, { type: 'gate', pass: true }, { type: 'booted', booted: 'A', failed: 'B' }), weight: 2 }), { maxLength: 40, size: 'max' });
const cfg = { seed: 18, numRuns: 400 };

function walk(events: AgentEvent[]): { states: AgentState[]; events: AgentEvent[] } {
  let s = initialAgentState(N);
  const states = [s];
  const applied: AgentEvent[] = [];
  for (const e of events) {
    const r = next(s, e);
    if (!r.ok) continue;
    s = r.state;
    states.push(s);
    applied.push(e);
  }
  return { states, events: applied };
}

describe('the update agent: properties (fast-check, fixed seed)', () => {
  it('never two slots staged: at most one slot is written or tried, never the active one; staged/verifying always name it', () => {
    fc.assert(
      fc.property(traceArb, (events) => {
        for (const s of walk(events).states) {
          AgentStateSchema.parse(s);
          if (s.slot !== undefined) expect(s.slot).not.toBe(s.active);
          // A replaced node's new disk verifies its active slot A: no slot tried, its target the build it runs.
          const newDisk = s.state === 'verifying' && s.slot === undefined;
          if (newDisk) expect(s.active === 'A' && s.target?.digest === s.running.digest).toBe(true);
          else if (['checking', 'receiving', 'writing', 'staged', 'verifying'].includes(s.state)) expect(s.slot && s.target).toBeTruthy();
          else expect(s.slot).toBeUndefined();
        }
      }),
      cfg,
    );
  });

  it('never committed without a gate pass on the tried slot (and the active slot changes only then)', () => {
    fc.assert(
      fc.property(traceArb, (events) => {
        const { states, events: applied } = walk(events);
        for (let i = 1; i < states.length; i++) {
          const [prev, cur, e] = [states[i - 1]!, states[i]!, applied[i - 1]!];
          if (cur.state === 'committed' && prev.state !== 'committed') expect(e).toEqual({ type: 'gate', pass: true });
          // The active slot changes at a tried slot's commit, or to a replaced node's new disk's A (and its gate commits it as it is).
          if (cur.active !== prev.active) expect((prev.state === 'verifying' && cur.state === 'committed' && cur.active === prev.slot) || (e.type === 'replaced' && cur.active === 'A')).toBe(true);
          if (cur.state === 'committed' && prev.state === 'verifying' && prev.slot === undefined) expect([cur.active, cur.running]).toEqual([prev.active, prev.running]);
        }
      }),
      cfg,
    );
  });

  it('a digest that rolled back is never staged again, and the bad list only grows', () => {
    fc.assert(
      fc.property(traceArb, (events) => {
        const { states } = walk(events);
        const bad = new Set<string>();
        for (const s of states) {
          for (const d of bad) expect(s.bad.map((b) => b.digest)).toContain(d);
          if (s.state === 'checking') expect(bad.has(s.target!.digest)).toBe(false);
          for (const b of s.bad) bad.add(b.digest);
        }
      }),
      cfg,
    );
  });

  it('every state is reachable from idle (breadth-first over the events), and random traces visit them all', () => {
    const alphabet: AgentEvent[] = [
      ...builds.map((b): AgentEvent => ({ type: 'stage', build: b })),
      ...(['checked', 'received', 'written'] as const).flatMap((type): AgentEvent[] => [{ type, ok: true }, { type, ok: false, reason: 'x' }]),
      { type: 'booted', booted: 'A' },
      { type: 'booted', booted: 'B' },
      { type: 'booted', booted: 'A', failed: 'B' },
      { type: 'booted', booted: 'B', failed: 'A' },
      { type: 'gate', pass: true },
      { type: 'gate', pass: false, check: 'x' },
      { type: 'replaced', build: N1 },
    ];
    const key = (s: AgentState): string => renderAgentState(s);
    const seen = new Map<string, AgentState>([[key(initialAgentState(N)), initialAgentState(N)]]);
    let frontier = [...seen.values()];
    for (let depth = 0; depth < 8 && frontier.length; depth++) {
      const nextFrontier: AgentState[] = [];
      for (const s of frontier)
        for (const e of alphabet) {
          const r = next(s, e);
          if (r.ok && !seen.has(key(r.state))) {
            seen.set(key(r.state), r.state);
            nextFrontier.push(r.state);
          }
        }
      frontier = nextFrontier;
    }
    expect(new Set([...seen.values()].map((s) => s.state))).toEqual(new Set(AGENT_STATES));
    const visited = new Set<AgentStateName>();
    fc.assert(
      fc.property(traceArb, (events) => {
        for (const s of walk(events).states) visited.add(s.state);
      }),
      cfg,
    );
    expect([...visited].sort()).toEqual([...AGENT_STATES].sort());
  });
});
