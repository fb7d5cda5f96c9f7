import { describe, expect, it } from 'vitest';
import { parseSpec, TEMPLATES } from '../spec/index';
import type { GuardNode } from './catalogue';
import { guardDrill, recoveryTarget, scenarioOfDrillName } from './catalogue';
import type { HealthFacts } from './health';
import { detectThresholds, evaluateHealth, handshakesByNode, memberRemoval, parseAllowedIps, parseEndpointHealth, parseLatestHandshakes, parseMemberList, plannedEtcdHealth, quorumOf } from './health';
import type { DrillRecord } from './timeline';
import { DrillRecord as DrillRecordSchema, emptyPhases, mttrOf, renderDrillHistory, renderDrillRecord } from './timeline';

const spec = (() => {
  const r = parseSpec(TEMPLATES['reference-16'].text);
  if (!r.spec) throw new Error('reference-16 does not parse');
  return r.spec;
})();

const NODES: GuardNode[] = [
  { name: 'master', role: 'master', hub: true, etcd: false },
  { name: 'cp-1', role: 'control-plane', hub: false, etcd: true },
  { name: 'cp-2', role: 'control-plane', hub: false, etcd: true },
  { name: 'cp-3', role: 'control-plane', hub: false, etcd: true },
  { name: 'w-1', role: 'worker', hub: false, etcd: false },
];

const member = (name: string, n: number) => ({ id: `a${n}`, name, peerUrls: [`http://10.0.3.${n}:2380`], clientUrls: [`http://10.0.3.${n}:2379`] });
const MEMBERS = [member('cp-1', 1), member('cp-2', 2), member('cp-3', 3)];

function facts(o: { now?: number; handshakes?: Record<string, number>; down?: string[]; members?: typeof MEMBERS; drift?: string[]; agent?: Record<string, number> } = {}): HealthFacts {
  const now = o.now ?? 10_000;
  const members = o.members ?? MEMBERS;
  return {
    now,
    nodes: NODES.map((n) => ({ name: n.name, hub: n.hub, etcd: n.etcd })),
    wg1Handshakes: o.handshakes ?? { 'cp-1': now - 5, 'cp-2': now - 5, 'cp-3': now - 5, 'w-1': now - 5 },
    etcd: { members, endpoints: members.map((m) => ({ endpoint: m.clientUrls[0] as string, healthy: !(o.down ?? []).includes(m.name) })) },
    ...(o.drift ? { convergeDrift: o.drift } : {}),
    ...(o.agent ? { guestAgentSeenAt: o.agent } : {}),
  };
}

describe('detection thresholds', () => {
  it('reads selfHealing.detect, adds etcd-member and derives silence and handshake age', () => {
    const t = detectThresholds(spec.spec.selfHealing);
    // 120 s rekey + 25 s keepalive + 60 s of silence
    expect(t).toEqual({ signals: ['guest-agent', 'wg-handshake', 'kubelet-ready', 'etcd-member'], silenceSeconds: 60, handshakeMaxAgeSeconds: 205, heartbeatSeconds: 10 });
  });
  it('uses the documented defaults when the spec is silent', () => {
    const r = parseSpec(TEMPLATES['lab-3'].text);
    expect(detectThresholds(r.spec!.spec.selfHealing, { alwaysEtcd: false })).toEqual({ signals: ['guest-agent', 'wg-handshake'], silenceSeconds: 30, handshakeMaxAgeSeconds: 175, heartbeatSeconds: 10 });
  });
});

describe('evaluateHealth', () => {
  const t = { ...detectThresholds(spec.spec.selfHealing), signals: ['guest-agent', 'wg-handshake', 'etcd-member', 'converge-drift'] as const } as ReturnType<typeof detectThresholds>;

  it('a healthy cluster is healthy; what no probe observed is named', () => {
    const h = evaluateHealth(facts({ drift: [] }), t);
    expect(h.healthy).toBe(true);
    expect(h.findings).toEqual([]);
    expect(h.etcd).toMatchObject({ members: 3, healthy: 3, quorum: 2, hasQuorum: true });
    expect(h.notObserved).toEqual(['guest-agent']);
    expect(h.converged).toBe(true);
  });

  it('flags a stale or missing wg1 handshake, a dead etcd member, converge drift and a silent agent', () => {
    const now = 10_000;
    const h = evaluateHealth(facts({ now, handshakes: { 'cp-1': now - 206, 'cp-2': now - 5, 'cp-3': 0 }, down: ['cp-2'], drift: ['w-1'], agent: { 'cp-1': now, 'cp-2': now - 61, 'cp-3': now, 'w-1': now, master: now } }), t);
    expect(h.healthy).toBe(false);
    expect(h.findings.map((f) => `${f.node} ${f.signal} ${f.detail}`)).toEqual([
      'cp-1 wg-handshake wg1 handshake 206 s old (limit 205 s)',
      'cp-2 etcd-member etcd member unhealthy',
      'cp-2 guest-agent guest agent silent for 61 s (limit 60 s)',
      'cp-3 wg-handshake no wg1 handshake yet',
      'w-1 converge-drift converge inputs changed since its last converge',
      'w-1 wg-handshake no wg1 peer on the hub',
    ]);
    expect(h.converged).toBe(false);
    expect(h.nodes.find((n) => n.name === 'master')?.state).toBe('healthy');
    expect(h.etcd).toMatchObject({ healthy: 2, hasQuorum: true });
  });

  it('a handshake at exactly the limit is still healthy (boundary)', () => {
    const now = 10_000;
    const h = evaluateHealth(facts({ now, handshakes: { 'cp-1': now - 180, 'cp-2': now, 'cp-3': now, 'w-1': now } }), t);
    expect(h.findings).toEqual([]);
  });

  it('a removed member and an unplanned one are findings; no quorum makes the cluster unhealthy', () => {
    const h = evaluateHealth(facts({ members: [member('cp-1', 1), member('cp-9', 9)], down: ['cp-1'] }), t);
    expect(h.findings.filter((f) => f.signal === 'etcd-member').map((f) => `${f.node}: ${f.detail}`)).toEqual([
      'cp-1: etcd member unhealthy',
      'cp-2: not an etcd member',
      'cp-3: not an etcd member',
      'cp-9: etcd member cp-9 is not a planned member',
    ]);
    expect(h.etcd).toMatchObject({ members: 2, healthy: 1, quorum: 2, hasQuorum: false });
  });

  it('quorum is a strict majority', () => {
    expect([1, 2, 3, 4, 5].map(quorumOf)).toEqual([1, 2, 2, 3, 3]);
  });
});

describe('probe output parsers', () => {
  it('wg latest-handshakes and allowed-ips map onto nodes by their planned /32', () => {
    const hs = parseLatestHandshakes('AAA=\t1700000000\nBBB=\t0\n\n');
    const allowed = parseAllowedIps('AAA=\t10.101.0.2/32\nBBB=\t10.101.0.3/32\nCCC=\t(none)\n');
    expect(hs).toEqual({ 'AAA=': 1700000000, 'BBB=': 0 });
    expect(handshakesByNode(hs, allowed, { a: '10.101.0.2/32', b: '10.101.0.3/32', c: '10.101.0.4/32' })).toEqual({ a: 1700000000, b: 0 });
  });

  it('etcdctl endpoint health json, healthy and not', () => {
    const text = '[{"endpoint":"http://10.0.3.2:2379","health":false,"took":"2s","error":"context deadline exceeded"},{"endpoint":"http://10.0.3.1:2379","health":true,"took":"3ms"}]';
    expect(parseEndpointHealth(text)).toEqual([
      { endpoint: 'http://10.0.3.1:2379', healthy: true },
      { endpoint: 'http://10.0.3.2:2379', healthy: false, error: 'context deadline exceeded' },
    ]);
  });

  it('etcdctl member list json keeps 64-bit ids exact (as hex) and tolerates an unstarted member', () => {
    const text = '{"header":{"cluster_id":17237436991929493444,"member_id":9372538179322589801,"raft_term":2},"members":[{"ID":15753214062031626129,"name":"cp-2","peerURLs":["http://10.0.3.2:2380"],"clientURLs":["http://10.0.3.2:2379"]},{"ID":255,"peerURLs":["http://10.0.3.3:2380"]}]}';
    expect(parseMemberList(text)).toEqual([
      { id: 'ff', name: '', peerUrls: ['http://10.0.3.3:2380'], clientUrls: [] },
      { id: BigInt('15753214062031626129').toString(16), name: 'cp-2', peerUrls: ['http://10.0.3.2:2380'], clientUrls: ['http://10.0.3.2:2379'] },
    ]);
    expect(parseMemberList(text)[1]?.id).toBe('da9ea8b9ae155f91');
    // JSON.parse alone would have rounded it:
    expect((JSON.parse(text) as { members: { ID: number }[] }).members[0]?.ID.toString(16)).not.toBe('da9ea8b9ae155f91');
  });
});

describe('catalogue and guard', () => {
  const t = detectThresholds(spec.spec.selfHealing);
  const healthy = evaluateHealth(facts(), { ...t, signals: ['wg-handshake', 'etcd-member'] });
  const guard = (scenario: string, node: string, health = healthy, allowDestroy = true) => guardDrill({ scenario, node, nodes: NODES, health, allowDestroy });

  it('maps acceptance.drills names onto the catalogue, or says why not', () => {
    expect(scenarioOfDrillName('kill-etcd-member')).toEqual({ scenario: 'kill-etcd-member' });
    expect(scenarioOfDrillName('partition-plane-wg3')).toEqual({ scenario: 'partition-node' });
    expect(scenarioOfDrillName('stop-master-vm')).toMatchObject({ refused: expect.stringMatching(/hub/) });
    expect(scenarioOfDrillName('nope')).toMatchObject({ refused: expect.stringMatching(/not a drill scenario.*delete-worker-vm/) });
  });

  it('recovery target: the drill entry, else mttrTargetMinutes', () => {
    expect(recoveryTarget(spec.spec.acceptance, 'delete-worker-vm')).toEqual({ minutes: 10, source: 'acceptance.drills[0] (delete-worker-vm)' });
    expect(recoveryTarget(spec.spec.acceptance, 'kill-etcd-member')).toEqual({ minutes: 30, source: 'acceptance.mttrTargetMinutes' });
  });

  it('admits a drill on a healthy cluster', () => {
    expect(guard('kill-etcd-member', 'cp-1')).toEqual({ ok: true, reasons: [] });
    expect(guard('partition-node', 'w-1')).toEqual({ ok: true, reasons: [] });
  });

  it('refuses a second etcd kill that would break quorum, with the numbers', () => {
    const oneDown = evaluateHealth(facts({ down: ['cp-2'] }), { ...t, signals: ['etcd-member'] });
    const v = guard('kill-etcd-member', 'cp-3', oneDown);
    expect(v.ok).toBe(false);
    expect(v.reasons.map((r) => r.code)).toEqual(['unhealthy', 'quorum']);
    expect(v.reasons[1]?.message).toBe("taking cp-3's etcd member out would leave 1 of 3 members healthy; quorum needs 2");
    // The member already down is not counted twice.
    expect(guard('kill-etcd-member', 'cp-2', oneDown).reasons.map((r) => r.code)).toEqual(['unhealthy']);
  });

  it('one quorum rule for taking a member out (guard, the lab\'s fence, the deployed cluster\'s fence and preflight): the healthy others must make the current quorum', () => {
    expect(memberRemoval(plannedEtcdHealth(['cp-1']), 'cp-1')).toEqual({ ok: false, after: 0, members: 1, quorum: 1, message: "taking cp-1's etcd member out would leave 0 of 1 members healthy; quorum needs 1 (cp-1 is the only member)" });
    // Two members: the one left is no quorum of two, so the removal could not even be committed.
    expect(memberRemoval(plannedEtcdHealth(['cp-1', 'cp-2']), 'cp-2')).toMatchObject({ ok: false, after: 1, quorum: 2 });
    expect(memberRemoval(plannedEtcdHealth(['cp-1', 'cp-2', 'cp-3']), 'cp-3')).toMatchObject({ ok: true, after: 2, members: 3, quorum: 2 });
    // The member already dead is not counted among the healthy ones it takes out.
    const oneDead = { ...plannedEtcdHealth(['cp-1', 'cp-2', 'cp-3']), healthy: 2, byName: { 'cp-1': true, 'cp-2': true, 'cp-3': false } };
    expect(memberRemoval(oneDead, 'cp-3').ok).toBe(true);
    expect(memberRemoval(oneDead, 'cp-2')).toMatchObject({ ok: false, message: "taking cp-2's etcd member out would leave 1 of 3 members healthy; quorum needs 2" });
  });

  it('refuses what does not exist, the hub, the wrong role, a non-member, a destroy not allowed, no health, drift', () => {
    expect(guard('kill-etcd-member', 'cp-9').reasons[0]?.message).toBe('there is no node "cp-9" in this cluster (nodes: cp-1; cp-2; cp-3; and 2 more)');
    expect(guard('explode', 'cp-1').reasons[0]).toMatchObject({ code: 'unknown-scenario', message: expect.stringMatching(/not a drill scenario/) });
    expect(guard('power-off-node', 'master').reasons.map((r) => r.code)).toEqual(['hub-target']);
    expect(guard('delete-worker-vm', 'cp-1').reasons.map((r) => r.code)).toEqual(['wrong-role']);
    expect(guard('kill-etcd-member', 'w-1').reasons.map((r) => r.code)).toEqual(['not-etcd-member']);
    expect(guard('delete-worker-vm', 'w-1', healthy, false).reasons[0]?.message).toMatch(/stages.drill.allowDestroy/);
    expect(guardDrill({ scenario: 'partition-node', node: 'w-1', nodes: NODES, health: undefined, allowDestroy: true }).reasons.map((r) => r.code)).toEqual(['health-unknown']);
    const drift = evaluateHealth(facts({ drift: ['w-1'] }), { ...t, signals: ['etcd-member'] });
    expect(guard('partition-node', 'cp-1', drift).reasons.map((r) => r.code)).toEqual(['unconverged']);
  });
});

describe('timeline', () => {
  function record(): DrillRecord {
    const phases = emptyPhases();
    let at = 1_000_000;
    for (const [i, p] of phases.entries()) {
      const d = [50, 8000, 2000, 40, 130, 1400][i] as number;
      Object.assign(p, { state: 'done', startedAtMs: at, endedAtMs: at + d, durationMs: d, detail: `${p.name} ok` });
      at += d;
    }
    phases[1]?.commands.push({ node: 'master', argv: ['etcdctl', 'endpoint', 'health'], exitCode: 1, startedAtMs: 1_000_050, durationMs: 2000 });
    return {
      schema: 'kubedos.drill/v1',
      id: 'd1',
      kind: 'drill',
      cluster: 'lab-drill',
      scenario: 'kill-etcd-member',
      node: 'cp-2',
      target: 'lab',
      status: 'passed',
      startedAtMs: 999_000,
      endedAtMs: at,
      phases,
      mttrMs: mttrOf(phases),
      goal: { minutes: 2, source: 'acceptance.drills[0] (kill-etcd-member)' },
      pass: true,
      thresholds: { heartbeatSeconds: 1, silenceSeconds: 3, handshakeMaxAgeSeconds: 123, signals: ['etcd-member'], source: 'spec' },
      guard: { ok: true, reasons: [] },
    };
  }

  it('MTTR runs from the end of inject to the end of healthy', () => {
    const r = record();
    expect(r.mttrMs).toBe(8000 + 2000 + 40 + 130 + 1400);
    expect(DrillRecordSchema.parse(r)).toEqual(r);
    const unfinished = emptyPhases();
    expect(mttrOf(unfinished)).toBeUndefined();
  });

  it('renders the phase table with MTTR against the target, and the history', () => {
    const text = renderDrillRecord(record());
    expect(text).toContain('detect       done   +0.05 s  8.00 s  1     detect ok');
    expect(text).toContain('MTTR 11.6 s against a target of 2 min (acceptance.drills[0] (kill-etcd-member)): PASS');
    const failed = { ...record(), status: 'interrupted' as const, mttrMs: undefined, pass: undefined, next: 'kubedos heal lab.yaml', error: { phase: 'fence' as const, node: 'cp-2', message: 'interrupted during fence' } };
    expect(renderDrillRecord(failed)).toMatch(/no MTTR[\s\S]*failed in fence on cp-2: interrupted during fence\nnext: kubedos heal lab.yaml/);
    const hist = renderDrillHistory([failed, { ...record(), id: 'd0', startedAtMs: 1 }]);
    expect(hist.split('\n').map((l) => l.split(/\s+/)[0])).toEqual(['ID', 'd0', 'd1']);
    expect(hist).toMatch(/d1 .* interrupted$/m);
  });
});
