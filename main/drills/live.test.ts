// The workbench's live fold and the report, fed with what the real engine emits (an in-memory
// target): node colours through the phases, the Gantt bars, the MTTR series, the report's JSON
// and HTML (self-contained, escaped, deterministic).
import { describe, expect, it } from 'vitest';
import type { DrillEvent, NodeDrillState } from '../../common/drills/live';
import { EMPTY_LIVE, foldDrillEvents, MAX_LIVE_LOG, mttrSeries, nodeStates, phaseBars, targetState } from '../../common/drills/live';
import { drillReport, drillReportHtml, drillReportJson } from '../../common/drills/report';
import { startTestDrill, threeMember } from './testing';

async function drill(id: string, o: Parameters<typeof threeMember>[0] = {}) {
  const { target } = threeMember(o);
  const { p, stored: snapshots } = startTestDrill(target, { id, nextOnInterrupt: 'run it again' });
  return { r: await p, snapshots };
}

describe('foldDrillEvents and node states', () => {
  it('colours the target through unhealthy → fenced → provisioning → rejoining → healthy from the engine snapshots, the others stay healthy', async () => {
    const { r, snapshots } = await drill('d-1');
    expect(r.status).toBe('passed');
    let live = EMPTY_LIVE;
    const seen: NodeDrillState[] = [];
    for (const rec of snapshots) {
      live = foldDrillEvents(live, [{ type: 'record', record: rec }]);
      const states = nodeStates(['master', 'cp-1', 'cp-2'], live.records[live.current!]);
      expect(states.master).toBe('healthy');
      expect(states['cp-2']).toBe('healthy');
      if (seen.at(-1) !== states['cp-1']) seen.push(states['cp-1']!);
    }
    expect(seen).toEqual(['healthy', 'unhealthy', 'fenced', 'provisioning', 'rejoining', 'healthy']);
    expect(live.current).toBe('d-1');
    expect(live.records['d-1']).toEqual(r);
  });

  it('a drill that failed in fence leaves its node unhealthy on screen, not healthy; a refused one changes nothing', async () => {
    const { r } = await drill('d-2', { failFence: true });
    expect(r.status).toBe('failed');
    expect(targetState(r)).toBe('unhealthy');
    expect(targetState({ ...r, status: 'refused' })).toBe('healthy');
  });

  it('follows the newest drill, keeps each drill its own bounded log', () => {
    const base = { type: 'log' as const, line: 'x' };
    const many: DrillEvent[] = Array.from({ length: MAX_LIVE_LOG + 7 }, (_, i) => ({ ...base, id: 'a', line: `l${i}` }));
    const live = foldDrillEvents(EMPTY_LIVE, many);
    expect(live.log.a).toHaveLength(MAX_LIVE_LOG);
    expect(live.log.a?.[0]).toBe('l7');
    expect(foldDrillEvents(live, [])).toBe(live);
  });
});

describe('phaseBars and mttrSeries', () => {
  it('puts the phases on one axis, a running phase growing to now', async () => {
    const { snapshots, r } = await drill('d-3');
    const mid = snapshots.find((s) => s.phases.find((p) => p.name === 'fence')?.state === 'running')!;
    const fenceStart = mid.phases.find((p) => p.name === 'fence')!.startedAtMs!;
    const { bars } = phaseBars(mid, fenceStart + 5000);
    expect(bars.map((b) => b.name)).toEqual(['inject', 'detect', 'fence']);
    expect(bars[2]!.toMs - bars[2]!.fromMs).toBe(5000);
    const done = phaseBars(r, Number.MAX_SAFE_INTEGER);
    expect(done.bars.map((b) => b.state)).toEqual(['done', 'done', 'done', 'done', 'done', 'done']);
    expect(done.spanMs).toBeGreaterThanOrEqual(r.mttrMs!);
  });

  it('one series per scenario, runs numbered oldest first, refused drills left out, the target beside each point', async () => {
    const a = (await drill('d-4')).r;
    const b = (await drill('d-5')).r;
    const refused = { ...a, id: 'd-6', status: 'refused' as const, mttrMs: undefined, startedAtMs: b.startedAtMs + 1 };
    const s = mttrSeries([b, refused, a]);
    expect(s).toHaveLength(1);
    expect(s[0]!.scenario).toBe('kill-etcd-member');
    expect(s[0]!.points.map((p) => [p.id, p.run, p.targetSeconds])).toEqual([
      ['d-4', 1, a.goal.minutes * 60],
      ['d-5', 2, a.goal.minutes * 60],
    ]);
  });
});

describe('drill report', () => {
  it('JSON: canonical, deterministic for the same records whatever their order; summary per scenario', async () => {
    const a = (await drill('d-7')).r;
    const b = (await drill('d-8', { failFence: true })).r;
    const j1 = drillReportJson(drillReport('lab-3', [a, b]));
    expect(drillReportJson(drillReport('lab-3', [b, a]))).toBe(j1);
    const rep = JSON.parse(j1);
    expect(rep.schema).toBe('kubedos.drill-report/v1');
    expect(rep.drills).toBe(2);
    expect(rep.scenarios).toEqual([expect.objectContaining({ scenario: 'kill-etcd-member', drills: 2, measured: 1, passed: 1, medianMttrMs: a.mttrMs })]);
    expect(Object.keys(rep.scenarios[0].medianPhaseMs)).toEqual(['detect', 'fence', 'healthy', 'inject', 'reintegrate', 'replace']);
  });

  it('HTML: one page with nothing remote (no script, no src, no href), a CSP, and user text escaped', async () => {
    const { r } = await drill('d-9', { failFence: true });
    const hostile = { ...r, error: { ...r.error!, message: '<script>alert(1)</script>' } };
    const html = drillReportHtml(drillReport('lab-3', [hostile]));
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain("default-src 'none'");
    expect(html).not.toMatch(/<script|\ssrc=|\shref=|@import|url\(/i);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('stopped in fence on cp-1');
    expect(html).toContain('<svg');
  });
});
