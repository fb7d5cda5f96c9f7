// Drills in the namespace lab (issue 14): a 3-member etcd on wg3 across network namespaces, the
// real backplane payload, and the drill engine's phases run for real — kill-etcd-member and
// partition-node — with the guard refusing a second etcd kill that would break quorum.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guardDrill } from '../../common/drills/catalogue';
import { detectThresholds } from '../../common/drills/health';
import type { DrillRecord } from '../../common/drills/timeline';
import { renderDrillHistory, renderDrillRecord } from '../../common/drills/timeline';
import { parseSpec } from '../../common/spec/index';
import type { ClusterSpec } from '../../common/spec/schema';
import { drillId, observeHealth, runDrill, runHeal, specDrillSettings } from '../../main/drills/engine';
import { readDrillHistory } from '../../main/drills/history';
import { LabDrillTarget } from '../../main/drills/lab-target';
import { labDrillPlan, labDrillSpec } from './specs';

describe('drills in the namespace lab (3-member etcd on wg3)', () => {
  let target: LabDrillTarget;
  let spec: ClusterSpec;
  const started = Date.now();
  const ws = mkdtempSync(join(tmpdir(), 'kubedos-drill-ws-'));
  const env = { ...process.env, KUBEDOS_WORKSPACE: ws };
  const key = `drill-proof-${process.pid}`;

  beforeAll(async () => {
    const parsed = parseSpec(labDrillSpec());
    if (!parsed.spec) throw new Error(parsed.diagnostics.map((d) => d.message).join('\n'));
    spec = parsed.spec;
    target = await LabDrillTarget.create(labDrillPlan(), { log: (l) => console.log(l) });
    await target.lab.exec(target.hub, target.etcdctl(['put', key, 'written before the drills']));
    console.log(`drill lab up in ${Math.round((Date.now() - started) / 1000)} s`);
  });
  afterAll(() => {
    target?.destroy();
    rmSync(ws, { recursive: true, force: true });
    console.log(`drills suite: ${Math.round((Date.now() - started) / 1000)} s`);
  });

  const drill = (scenario: string, node: string, onPhaseEnd?: Parameters<typeof runDrill>[0]['onPhaseEnd']): Promise<DrillRecord> =>
    runDrill({
      target,
      spec,
      scenario,
      node,
      ...specDrillSettings(spec, env),
      id: drillId(new Date(), scenario, node),
      nextOnInterrupt: 'rerun the drill',
      phaseTimeoutMs: 90_000,
      log: (l) => console.log(`[${scenario} ${node}] ${l}`),
      ...(onPhaseEnd ? { onPhaseEnd } : {}),
    });

  const readKey = async () => (await target.lab.exec(target.hub, target.etcdctl(['get', key, '--print-value-only']))).stdout.trim();

  it('kill-etcd-member: detect, fence (member remove), fresh member, rejoin; a second kill mid-drill is refused for quorum', async () => {
    const idsBefore = (await observeHealth(target, detectThresholds(spec.spec.selfHealing))).etcd;
    expect(idsBefore?.healthy).toBe(3);
    let refusal: ReturnType<typeof guardDrill> | undefined;
    const r = await drill('kill-etcd-member', 'cp-2', async (phase) => {
      if (phase !== 'detect') return;
      // cp-2's member is dead: killing cp-3's too would leave 1 of 3 healthy.
      const health = await observeHealth(target, detectThresholds(spec.spec.selfHealing));
      refusal = guardDrill({ scenario: 'kill-etcd-member', node: 'cp-3', nodes: target.nodes, health, allowDestroy: false });
    });
    console.log(renderDrillRecord(r));
    expect(r.status, JSON.stringify(r.error)).toBe('passed');
    expect(r.phases.map((p) => p.state)).toEqual(['done', 'done', 'done', 'done', 'done', 'done']);
    const detect = r.phases.find((p) => p.name === 'detect');
    expect(detect?.detail).toMatch(/etcd-member/);
    expect(detect?.durationMs ?? Infinity).toBeLessThan(60_000);
    expect(r.phases.find((p) => p.name === 'fence')?.commands.some((c) => c.argv.includes('remove'))).toBe(true);
    expect(r.phases.find((p) => p.name === 'reintegrate')?.commands.some((c) => c.argv.includes('add'))).toBe(true);
    expect(r.mttrMs).toBeGreaterThan(0);
    expect(r.goal.source).toMatch(/kill-etcd-member/);

    expect(refusal?.ok).toBe(false);
    expect(refusal?.reasons.map((x) => x.code)).toContain('quorum');
    expect(refusal?.reasons.find((x) => x.code === 'quorum')?.message).toMatch(/leave 1 of 3 members healthy; quorum needs 2/);

    const after = (await observeHealth(target, detectThresholds(spec.spec.selfHealing))).etcd;
    expect(after).toMatchObject({ members: 3, healthy: 3 });
    expect(await readKey()).toBe('written before the drills');
  });

  it('partition-node: the hub cuts cp-3, etcd notices, revoke + member remove, heal, re-enroll with a fresh token, rejoin', async () => {
    const r = await drill('partition-node', 'cp-3');
    console.log(renderDrillRecord(r));
    expect(r.status, JSON.stringify(r.error)).toBe('passed');
    expect(r.phases.find((p) => p.name === 'detect')?.durationMs ?? Infinity).toBeLessThan(60_000);
    expect(r.phases.find((p) => p.name === 'fence')?.detail).toMatch(/revoked at the hub.*cp-3\/wg1.*etcd member/);
    expect(r.phases.find((p) => p.name === 'reintegrate')?.commands.some((c) => c.argv.some((a) => a.endsWith('kubedos-enroll-agent')))).toBe(true);
    // Back on wg1 with a handshake made after it re-enrolled, and in etcd.
    const reintegrated = r.phases.find((p) => p.name === 'reintegrate')?.startedAtMs ?? Infinity;
    const facts = await target.gatherFacts(target.shell, Date.now() / 1000);
    expect(facts.wg1Handshakes?.['cp-3'] ?? 0).toBeGreaterThanOrEqual(Math.floor(reintegrated / 1000));
    const h = await observeHealth(target, detectThresholds(spec.spec.selfHealing));
    expect(h.healthy, JSON.stringify(h.findings)).toBe(true);
    expect(h.etcd).toMatchObject({ members: 3, healthy: 3 });
    expect(await readKey()).toBe('written before the drills');
  });

  it('heal: an etcd member dying outside any drill is found and repaired by the same phases', async () => {
    const pid = target.etcdPid('cp-1');
    expect(pid).toBeDefined();
    await target.lab.exec('cp-1', ['kill', '-KILL', String(pid)]);
    const res = await runHeal({
      target,
      spec,
      ...specDrillSettings(spec, env),
      idFor: (s, n) => drillId(new Date(), `heal-${s}`, n),
      nextOnInterrupt: 'kubedos heal',
      phaseTimeoutMs: 90_000,
    });
    expect(res.before.findings.map((f) => `${f.node} ${f.signal}`)).toEqual(['cp-1 etcd-member']);
    expect(res.cannot).toEqual([]);
    expect(res.records.map((r) => `${r.kind} ${r.scenario} ${r.node} ${r.status}`), JSON.stringify(res.records.map((r) => [r.guard, r.error]))).toEqual(['heal kill-etcd-member cp-1 passed']);
    console.log(renderDrillRecord(res.records[0] as DrillRecord));
    expect(res.records[0]?.phases[0]?.state).toBe('skipped');
    expect(await readKey()).toBe('written before the drills');
  });

  it('the guard refuses an unknown node, a scenario outside the catalogue and the hub, saying why; history lists every drill', async () => {
    const bad = await drill('kill-etcd-member', 'cp-9');
    expect(bad.status).toBe('refused');
    expect(bad.guard.reasons[0]?.message).toMatch(/no node "cp-9".*cp-1; cp-2; cp-3; and 2 more/);
    const unknown = await drill('delete-etcd-vm', 'cp-1');
    expect(unknown.guard.reasons[0]?.message).toMatch(/no VM replacement drill for this role/);
    const hub = await drill('partition-node', 'master');
    expect(hub.guard.reasons.map((x) => x.code)[0]).toBe('hub-target');
    const hist = readDrillHistory('lab-drill', env);
    expect(hist.unreadableCount).toBe(0);
    expect(hist.records.map((x) => x.status)).toEqual(['passed', 'passed', 'passed', 'refused', 'refused', 'refused']);
    const file = join(ws, 'clusters', 'lab-drill', 'drills', `${hist.records[0]?.id}.json`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(ws, 'clusters', 'lab-drill', 'drills')).mode & 0o777).toBe(0o700);
    console.log(renderDrillHistory(hist.records));
  });
});
