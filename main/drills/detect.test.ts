// The detect phase with a hub watcher (issue 14, item 1): a fresh report that lists the drilled
// node as detected is the detection; a stale, unreadable or disagreeing report falls back to the
// engine's own probes and says why; a report naming another node, or taken before the fault, is
// not this drill's detection. The target is the in-memory three-member fake (testing.ts) with a
// watcher whose reports the test writes.
import { describe, expect, it } from 'vitest';
import type { DetectThresholds, HealthFacts } from '../../common/drills/health';
import { evaluateHealth } from '../../common/drills/health';
import type { DrillRecord } from '../../common/drills/timeline';
import { DrillRecord as DrillRecordSchema, renderDrillHistory, renderDrillRecord } from '../../common/drills/timeline';
import type { HealthWatchReport, WatcherStatus } from '../../common/drills/watcher';
import { HEALTH_WATCH_REPORT_PATH, readWatcherFor, watcherStatusOf } from '../../common/drills/watcher';
import { drillReport, drillReportHtml } from '../../common/drills/report';
import { startTestDrill, TEST_THRESHOLDS, threeMember } from './testing';

const NODES = ['master', 'cp-1', 'cp-2', 'cp-3'];

/** A report as the watcher writes it: facts with `down` members unhealthy, the verdict evaluateHealth gives, `detected` as asked. */
function report(o: { at: number; down: string[]; detected: string[]; probes?: number; t?: DetectThresholds }): HealthWatchReport {
  const t = o.t ?? TEST_THRESHOLDS;
  const facts: HealthFacts = {
    now: o.at,
    nodes: NODES.map((n) => ({ name: n, hub: n === 'master', etcd: n !== 'master' })),
    etcd: {
      members: NODES.filter((n) => n !== 'master').map((n) => ({ id: n, name: n, peerUrls: [], clientUrls: [`http://${n}:2379`] })),
      endpoints: NODES.filter((n) => n !== 'master').map((n) => ({ endpoint: `http://${n}:2379`, healthy: !o.down.includes(n) })),
    },
  };
  const verdict = evaluateHealth(facts, t);
  return {
    schema: 'kubedos.health-watch/v1',
    cluster: 'lab-3',
    hub: 'master',
    at: o.at,
    startedAt: o.at - 100,
    sequence: 100,
    probeMs: 12,
    thresholds: t,
    detectAfterProbes: 2,
    facts,
    verdict,
    findings: verdict.findings.map((f) => ({ ...f, since: o.at - 0.5, probes: o.probes ?? 3 })),
    detected: o.detected,
    errors: [],
  };
}

const statusOf = (r: HealthWatchReport, now: number): WatcherStatus => watcherStatusOf('master', HEALTH_WATCH_REPORT_PATH, JSON.stringify(r), now);

/** The fake target with a watcher; `watch(now, reads)` says what the hub's report is at each read. */
function withWatcher(watch: ((now: number, reads: number) => WatcherStatus) | undefined, o: { phaseTimeoutMs?: number; heal?: boolean } = {}) {
  const { target, state } = threeMember();
  const probes = { engine: 0, watcher: 0, inDetect: false, engineInDetect: 0 };
  const gather = target.gatherFacts;
  target.gatherFacts = async (sh, now) => {
    probes.engine++;
    if (probes.inDetect) probes.engineInDetect++;
    return gather(sh, now);
  };
  if (watch)
    target.readWatcher = async (sh, now) => {
      // Through the shell, like readWatcherReport: the phase records the read.
      await sh.exec('master', ['cat', HEALTH_WATCH_REPORT_PATH], { anyExit: true });
      return watch(now, ++probes.watcher);
    };
  const { p: run, stored } = startTestDrill(target, {
    phaseTimeoutMs: o.phaseTimeoutMs ?? 5000,
    onPhaseEnd: (p) => {
      probes.inDetect = p === 'inject';
    },
    ...(o.heal ? { heal: true } : {}),
  });
  return { run, probes, state, stored, target };
}

const detectOf = (r: DrillRecord) => r.phases.find((p) => p.name === 'detect');

describe('detect through the hub watcher', () => {
  it('a fresh report that lists the node as detected is the detection; the engine does not probe', async () => {
    // Written at the moment it is read (taken after the fault), read 0.2 s later by the reader's clock.
    const { run, probes } = withWatcher((now) => statusOf(report({ at: now, down: ['cp-1'], detected: ['cp-1'] }), now + 0.2));
    const r = await run;
    expect(r.status, JSON.stringify(r.error)).toBe('passed');
    expect(r.detectedBy).toBe('hub-watcher');
    const d = detectOf(r);
    expect(d?.detail).toMatch(/^hub watcher: etcd-member since \d\d:\d\d:\d\d\.\dZ \(etcd member unhealthy; 3 probes in a row\), (first seen \d+\.\d s after|already flagged \d+\.\d s before) the fault; report 0\.2 s old$/);
    expect(probes.engineInDetect).toBe(0);
    expect(d?.commands.map((c) => `${c.node} ${c.argv.join(' ')}`)).toEqual([`master cat ${HEALTH_WATCH_REPORT_PATH}`]);
    // The record says so, parses, and the CLI table and the HTML report show it.
    expect(DrillRecordSchema.parse(r).detectedBy).toBe('hub-watcher');
    expect(renderDrillRecord(r)).toContain('\ndetected by the hub watcher\n');
    expect(renderDrillHistory([r])).toMatch(/DETECTED BY[\s\S]*\bhub watcher\b/);
    expect(drillReportHtml(drillReport('lab-3', [r]))).toContain(' · detected by hub watcher · ');
  });

  it('a report taken before the end of inject is not the detection, even when it names the node', async () => {
    let injectEnd = 0;
    const { run, probes } = withWatcher((now, reads) => {
      if (reads === 1) injectEnd = now; // the first read happens right after inject
      // Two reads from a report written before the fault, then the watcher catches up.
      return reads <= 2 ? statusOf(report({ at: injectEnd - 1, down: ['cp-1'], detected: ['cp-1'] }), now) : statusOf(report({ at: now, down: ['cp-1'], detected: ['cp-1'] }), now);
    });
    const r = await run;
    expect(r.detectedBy).toBe('hub-watcher');
    expect(probes.watcher).toBe(3);
  });

  it('a fresh report that names another node is not this drill\'s detection: the engine waits for the watcher', async () => {
    const { run, probes } = withWatcher((now) => statusOf(report({ at: now, down: ['cp-2'], detected: ['cp-2'] }), now), { phaseTimeoutMs: 400 });
    const r = await run;
    expect(r.status).toBe('failed');
    expect(r.error?.phase).toBe('detect');
    expect(r.error?.message).toMatch(/^cp-1 still looks healthy 0 s after the fault \(signals: etcd-member; the hub watcher did not report it either\)/);
    expect(probes.watcher).toBeGreaterThan(1);
    expect(probes.engineInDetect).toBe(0);
  });

  it('the node found but not yet detected (fewer probes than detectAfterProbes) is waited for', async () => {
    const { run, probes } = withWatcher((now, reads) => statusOf(report({ at: now, down: ['cp-1'], detected: reads >= 4 ? ['cp-1'] : [], probes: Math.min(reads, 3) }), now));
    const r = await run;
    expect(r.detectedBy).toBe('hub-watcher');
    expect(probes.watcher).toBe(4);
    expect(probes.engineInDetect).toBe(0);
  });

  it('a heal takes a fresh report whatever its age relative to the phases (the fault predates it)', async () => {
    const { run, target } = withWatcher((now) => statusOf(report({ at: now - 0.1, down: ['cp-1'], detected: ['cp-1'] }), now), { heal: true });
    void target;
    const r = await run;
    expect(r.kind).toBe('heal');
    expect(r.detectedBy).toBe('hub-watcher');
    expect(detectOf(r)?.detail).not.toMatch(/after the fault/);
  });
});

describe('signals the watcher does not observe', () => {
  const t2: DetectThresholds = { ...TEST_THRESHOLDS, signals: ['guest-agent', 'etcd-member'] };
  /** The fake whose engine probes see guest agents (a deployed cluster's hypervisor view) or not (the lab). */
  function agentTarget(o: { engineSeesAgents: boolean }) {
    const { target, state } = threeMember();
    const gather = target.gatherFacts;
    const calls = { engine: 0 };
    target.gatherFacts = async (sh, now) => {
      calls.engine++;
      const f = await gather(sh, now);
      // cp-1's agent went silent with the fault; the others answer now.
      return o.engineSeesAgents ? { ...f, guestAgentSeenAt: Object.fromEntries(f.nodes.map((n) => [n.name, n.name === 'cp-1' && state.down ? now - 1 : now])) } : f;
    };
    // The watcher: fresh, guest-agent not observed (its facts have no agents), cp-1 not detected.
    target.readWatcher = async (_sh, now) => statusOf(report({ at: now, down: [], detected: [], t: t2 }), now);
    const run = startTestDrill(target, { thresholds: t2, phaseTimeoutMs: 400 }).p;
    return { run, calls };
  }

  it('the engine keeps probing what only it sees (guest agents) while the watcher reports, and says so', async () => {
    const { run } = agentTarget({ engineSeesAgents: true });
    const r = await run;
    expect(r.detectedBy).toBe('engine-probes');
    expect(detectOf(r)?.detail).toBe('guest-agent: guest agent silent for 1 s (limit 0.02 s) (1 probe in a row, every 0.01 s; not observed by the hub watcher: guest-agent)');
  });

  it('a signal neither the watcher nor the engine observes is not probed for', async () => {
    const { run, calls } = agentTarget({ engineSeesAgents: false });
    const r = await run;
    // The watcher never names cp-1 here, so the phase runs out; the engine probed only for the guard.
    expect(r.error?.message).toMatch(/the hub watcher did not report it either/);
    expect(calls.engine).toBe(1);
  });
});

describe('detect falls back to the engine\'s probes', () => {
  it('a stale report: the engine probes, and the detail says the report is stale and how fresh it must be', async () => {
    const { run, probes } = withWatcher((now) => statusOf(report({ at: now - 60, down: ['cp-1'], detected: ['cp-1'] }), now));
    const r = await run;
    expect(r.status, JSON.stringify(r.error)).toBe('passed');
    expect(r.detectedBy).toBe('engine-probes');
    expect(detectOf(r)?.detail).toMatch(/^etcd-member: etcd member unhealthy \(2 probes in a row, every 0\.01 s; hub watcher's report is stale: written 60 s ago, fresh means within 3 heartbeats of 0\.01 s \(the watcher on master stopped writing\), engine probes used\)$/);
    expect(probes.engineInDetect).toBeGreaterThanOrEqual(2);
  });

  it('an unreadable report: the engine probes, and the detail carries the reason on one bounded line', async () => {
    const reason = `no report at ${HEALTH_WATCH_REPORT_PATH} on master (cat: No such file or directory)\n${'x'.repeat(1000)}`;
    const { run } = withWatcher(() => ({ readable: false, hub: 'master', path: HEALTH_WATCH_REPORT_PATH, reason }));
    const r = await run;
    expect(r.detectedBy).toBe('engine-probes');
    const detail = detectOf(r)?.detail ?? '';
    expect(detail).toContain(`; hub watcher unreadable: no report at ${HEALTH_WATCH_REPORT_PATH} on master (cat: No such file or directory) xxx`);
    expect(detail).not.toContain('\n');
    expect(detail.length).toBeLessThan(400);
  });

  it('a verdict that differs from the engine\'s rule on its own facts is not trusted', async () => {
    const { run } = withWatcher((now) => {
      const rep = report({ at: now, down: ['cp-1'], detected: ['cp-1'] });
      return statusOf({ ...rep, verdict: { ...rep.verdict, healthy: true, findings: [] } }, now);
    });
    const r = await run;
    expect(r.detectedBy).toBe('engine-probes');
    expect(detectOf(r)?.detail).toMatch(/hub watcher's verdict differs from the engine's on the same facts \(healthy: .*\): another payload version runs on master, engine probes used\)$/);
  });

  it('no watcher on the target: the engine probes, and the detail does not mention one', async () => {
    const { run, probes } = withWatcher(undefined);
    const r = await run;
    expect(r.detectedBy).toBe('engine-probes');
    expect(detectOf(r)?.detail).toBe('etcd-member: etcd member unhealthy (2 probes in a row, every 0.01 s)');
    expect(probes.watcher).toBe(0);
    expect(renderDrillRecord(r)).toContain("\ndetected by the engine's own probes\n");
  });
});

describe('readWatcherFor', () => {
  it('is usable only while fresh: one rule, from the report\'s heartbeat', () => {
    const t = { ...TEST_THRESHOLDS, heartbeatSeconds: 10 };
    const rep = report({ at: 1000, down: ['cp-1'], detected: ['cp-1'], t });
    // 3 heartbeats (30 s) + the probe time (0.012 s) + 5 s.
    expect(readWatcherFor(statusOf(rep, 1035), 'cp-1').kind).toBe('detected');
    const stale = readWatcherFor(statusOf(rep, 1035.1), 'cp-1');
    expect(stale).toEqual({ kind: 'unusable', reason: "hub watcher's report is stale: written 35 s ago, fresh means within 3 heartbeats of 10 s (the watcher on master stopped writing)" });
    expect(readWatcherFor(statusOf(rep, 1001), 'cp-2').kind).toBe('waiting');
    expect(readWatcherFor(statusOf(rep, 1001), 'cp-1', 1000.1).kind).toBe('waiting');
    expect(readWatcherFor(statusOf(rep, 1001), 'cp-1', 1000).kind).toBe('detected');
    expect(readWatcherFor(statusOf(rep, 1001), 'cp-1', 999.5).kind).toBe('detected');
  });

  it('a timed finding (a handshake past its limit) detects at its first probe, as in the engine; an etcd one waits for detectAfterProbes', () => {
    const t = { ...TEST_THRESHOLDS, signals: ['wg-handshake' as const, 'etcd-member' as const] };
    const rep = report({ at: 1000, down: ['cp-2'], detected: [], probes: 1, t });
    const facts = { ...rep.facts, wg1Handshakes: { 'cp-1': 800, 'cp-2': 999, 'cp-3': 999 } };
    const verdict = evaluateHealth(facts, t);
    const timed = { ...rep, facts, verdict, findings: verdict.findings.map((f) => ({ ...f, since: 1000, probes: 1 })) };
    const cp1 = readWatcherFor(statusOf(timed, 1000.5), 'cp-1', 999);
    expect(cp1.kind).toBe('detected');
    expect(cp1.kind === 'detected' && cp1.detail).toMatch(/^hub watcher: wg-handshake since \d\d:\d\d:\d\d\.\dZ \(wg1 handshake 200 s old \(limit 120 s\); 1 probe in a row\), first seen 1\.0 s after the fault; report 0\.5 s old$/);
    expect(readWatcherFor(statusOf(timed, 1000.5), 'cp-2', 999).kind).toBe('waiting');
  });

  it('old records without detectedBy still parse', () => {
    const { detectedBy: _, ...old } = { detectedBy: 'hub-watcher' as const, schema: 'kubedos.drill/v1' as const, id: 'a', kind: 'drill' as const, cluster: 'c', scenario: 's', node: 'n', target: 'lab' as const, status: 'refused' as const, startedAtMs: 1, phases: [], goal: { minutes: 1, source: 's' }, thresholds: { heartbeatSeconds: 1, silenceSeconds: 3, handshakeMaxAgeSeconds: 123, signals: [], source: 's' }, guard: { ok: false, reasons: [] } };
    expect(DrillRecordSchema.parse(old).detectedBy).toBeUndefined();
    expect(renderDrillHistory([DrillRecordSchema.parse(old)])).not.toContain('watcher');
  });
});
