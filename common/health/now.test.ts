// The fold of one watcher report into the topology's node states (healthy / degraded /
// unreachable / unknown), and the reasons a report cannot be used, in the user's words.
import { describe, expect, it } from 'vitest';
import { watcherStatusOf } from '../drills/watcher';
import { ClusterHealthNow, foldClusterHealth, liveHealthRows, liveNodeState, NOT_WG23_OLD_WATCHER } from './now';
import { LAB3_AGENT_PINGS, lab3MixedFacts, lab3NodeMetrics, watcherReportFor } from './testing';

const NODES = [{ name: 'master' }, { name: 'cp-1' }, { name: 'w-1' }];
const T = 1_800_000_000;
const read = (report: ReturnType<typeof watcherReportFor>, now: number) => watcherStatusOf('master', '/var/lib/kubedos/health/report.json', JSON.stringify(report), now);

describe('cluster health now: the fold of a watcher report into node states', () => {
  it('gives each node its state from its own measures, in plan order, with the report time and age', () => {
    // Guest-agent facts in the report (as the engine's own probes gather them).
    const facts = { ...lab3MixedFacts(T), guestAgentSeenAt: { master: T - 3, 'cp-1': T - 4, 'w-1': T - 400 } };
    const h = ClusterHealthNow.parse(foldClusterHealth({ cluster: 'lab-3', hub: 'master', nodes: NODES, nowSeconds: T + 7, status: read(watcherReportFor(facts), T + 7) }));
    expect(h.unavailable).toBeUndefined();
    expect(h.report).toMatchObject({ at: T, ageSeconds: 7, stale: false, agreesWithEngine: true });
    expect(h.nodes.map((n) => [n.name, n.state])).toEqual([
      ['master', 'healthy'],
      ['cp-1', 'degraded'],
      ['w-1', 'unreachable'],
    ]);
    expect(h.counts).toEqual({ healthy: 1, degraded: 1, unreachable: 1, unknown: 0 });
    const [master, cp1, w1] = h.nodes;
    expect(master?.agent).toEqual({ measured: true, ok: true, detail: 'guest agent answered 3 s before the report', ageSeconds: 3 });
    expect(master?.handshakes.wg1).toMatchObject({ measured: false, why: expect.stringMatching(/^the hub/) });
    expect(master?.etcd).toBeUndefined();
    expect(cp1?.handshakes.wg1).toEqual({ measured: true, ok: true, detail: 'wg1 handshake 35 s old', ageSeconds: 35 });
    expect(cp1?.etcd).toEqual({ measured: true, ok: false, detail: 'etcd member unhealthy: context deadline exceeded' });
    expect(cp1?.converge).toEqual({ measured: true, ok: false, detail: 'converge fingerprint differs from the last converge' });
    expect(cp1?.summary).toBe('etcd member unhealthy: context deadline exceeded; converge fingerprint differs from the last converge');
    expect(w1?.agent).toMatchObject({ measured: true, ok: false, detail: 'guest agent silent for 400 s (limit 60 s)' });
    expect(w1?.handshakes.wg1).toMatchObject({ measured: true, ok: false, detail: 'wg1 handshake 900 s old (limit 180 s)', ageSeconds: 900 });
    expect(w1?.converge).toMatchObject({ measured: true, ok: true, detail: 'converge fingerprint matches the last converge' });
    // wg2/wg3 from the report, judged by the same limit as wg1 (for the picture; the verdict is wg1's).
    expect(cp1?.handshakes.wg2).toEqual({ measured: true, ok: true, detail: 'wg2 handshake 12 s old', ageSeconds: 12 });
    expect(cp1?.handshakes.wg3).toEqual({ measured: true, ok: true, detail: 'wg3 handshake 47 s old', ageSeconds: 47 });
    expect(w1?.handshakes.wg2).toEqual({ measured: true, ok: false, detail: 'wg2 handshake 900 s old (limit 180 s)', ageSeconds: 900 });
    expect(w1?.handshakes.wg3).toEqual({ measured: true, ok: false, detail: 'no wg3 handshake yet' });
    expect(master?.handshakes.wg2).toEqual({ measured: false, why: "the hub: its peers' wg2 handshakes are read on it" });
    expect(h.etcd).toEqual({ members: 1, healthy: 0, quorum: 1, hasQuorum: false });
    const rows = liveHealthRows(h);
    expect(rows.header).toMatch(/^health now of lab-3: 1 healthy, 1 degraded, 1 unreachable, 0 unknown; report of \d\d:\d\d:\d\d UTC, 7 s old; etcd 0\/1 healthy — NO QUORUM$/);
    expect(rows.columns).toEqual(['NODE', 'STATE', 'VERSION', 'SLOT', 'AGENT', 'WG1', 'WG2', 'WG3', 'ETCD', 'CONVERGE']);
    expect(rows.rows[2]).toEqual([
      'w-1',
      'unreachable',
      'not read',
      'not read',
      'FAIL: guest agent silent for 400 s (limit 60 s)',
      'FAIL: wg1 handshake 900 s old (limit 180 s)',
      'FAIL: wg2 handshake 900 s old (limit 180 s)',
      'FAIL: no wg3 handshake yet',
      '–',
      'ok: converge fingerprint matches the last converge',
    ]);
    expect(w1?.summary).toBe('guest agent silent for 400 s (limit 60 s); wg1 handshake 900 s old (limit 180 s); wg2 handshake 900 s old (limit 180 s); no wg3 handshake yet');
  });

  it("carries each node's artifact version and boot slot as the watcher read them, and says why one is missing", () => {
    const h = ClusterHealthNow.parse(foldClusterHealth({ cluster: 'lab-3', hub: 'master', nodes: NODES, nowSeconds: T + 2, status: read(watcherReportFor(lab3MixedFacts(T), { nodeMetrics: lab3NodeMetrics(T) }), T + 2) }));
    const [master, cp1, w1] = h.nodes;
    expect(master?.artifact).toEqual({ read: true, version: '2026.12.1', buildDigest: 'a'.repeat(64), slot: 'single', ageSeconds: 20 });
    expect(cp1?.artifact).toMatchObject({ read: true, version: '2026.12.2', slot: 'b' });
    expect(w1?.artifact).toEqual({ read: false, why: 'not read: node exporter on http://10.112.0.4:9100 did not answer (timed out)' });
    // Never judged: the states are those of the same facts without versions.
    const without = foldClusterHealth({ cluster: 'lab-3', hub: 'master', nodes: NODES, nowSeconds: T + 2, status: read(watcherReportFor(lab3MixedFacts(T)), T + 2) });
    expect(h.nodes.map((n) => n.state)).toEqual(without.nodes.map((n) => n.state));
    expect(without.nodes[0]?.artifact).toEqual({ read: false, why: expect.stringMatching(/does not read the nodes' versions \(an older payload/) });
    const rows = liveHealthRows(h).rows;
    expect(rows.map((r) => r.slice(0, 4))).toEqual([
      ['master', 'healthy', '2026.12.1', 'single'],
      ['cp-1', 'degraded', '2026.12.2', 'b'],
      ['w-1', 'unreachable', 'not read', 'not read'],
    ]);
    // A report that cannot be used: every node unknown, its version too.
    const stale = foldClusterHealth({ cluster: 'lab-3', hub: 'master', nodes: NODES, nowSeconds: T + 600, status: read(watcherReportFor(lab3MixedFacts(T), { nodeMetrics: lab3NodeMetrics(T) }), T + 600) });
    expect(stale.nodes[0]?.artifact).toEqual({ read: false, why: 'unknown: the health report is stale' });
  });

  it("takes the guest agents from the reader's pings when the watcher has none (its report never does)", () => {
    const h = foldClusterHealth({ cluster: 'lab-3', hub: 'master', nodes: NODES, nowSeconds: T + 2, status: read(watcherReportFor(lab3MixedFacts(T)), T + 2), agents: LAB3_AGENT_PINGS });
    expect(h.nodes.map((n) => [n.name, n.state, n.agent.measured && n.agent.ok])).toEqual([
      ['master', 'healthy', true],
      ['cp-1', 'degraded', true],
      ['w-1', 'unreachable', false],
    ]);
    expect(h.nodes[2]?.agent).toEqual({ measured: true, ok: false, detail: expect.stringMatching(/^guest agent did not answer a ping at \d\d:\d\d:\d\d UTC$/) });
    const none = foldClusterHealth({ cluster: 'lab-3', hub: 'master', nodes: NODES, nowSeconds: T, status: read(watcherReportFor(lab3MixedFacts(T)), T) });
    expect(none.nodes[0]?.agent).toEqual({ measured: false, why: 'not measured: neither the watcher nor this reading pinged its guest agent' });
    // w-1 without its agent's answer: its wg1 tunnel, the one measured way to it, is down.
    expect(none.nodes[2]?.state).toBe('unreachable');
  });

  it('judges every measured signal, even one the spec does not select for self-healing', () => {
    // The report's thresholds select guest-agent only; the wg1 handshake and the drift still count on the picture.
    const facts = lab3MixedFacts(T);
    const r = watcherReportFor(facts, { thresholds: { signals: ['guest-agent'], silenceSeconds: 60, handshakeMaxAgeSeconds: 180, heartbeatSeconds: 10 } });
    const h = foldClusterHealth({ cluster: 'lab-3', hub: 'master', nodes: NODES, nowSeconds: T, status: read(r, T) });
    expect(h.nodes.find((n) => n.name === 'w-1')?.handshakes.wg1).toMatchObject({ ok: false });
    expect(h.nodes.find((n) => n.name === 'cp-1')?.state).toBe('degraded');
  });

  it('wg2/wg3: a stale or missing handshake degrades a node whose wg1 is fine; "not measured" only when the report lacks them', () => {
    const base = lab3MixedFacts(T);
    // cp-1 otherwise fine (etcd healthy, no drift): its wg3 handshake is past the limit, its wg2 peer is missing.
    const facts = { ...base, etcd: { ...base.etcd!, endpoints: [{ endpoint: 'https://10.113.0.3:2379', healthy: true }] }, convergeDrift: [], wg2Handshakes: { 'w-1': T - 5 }, wg3Handshakes: { 'cp-1': T - 181, 'w-1': T - 5 } };
    const h = foldClusterHealth({ cluster: 'lab-3', hub: 'master', nodes: NODES, nowSeconds: T, status: read(watcherReportFor(facts), T), agents: LAB3_AGENT_PINGS });
    const cp1 = h.nodes.find((n) => n.name === 'cp-1');
    expect(cp1?.state).toBe('degraded');
    expect(cp1?.handshakes.wg1).toMatchObject({ ok: true });
    expect(cp1?.handshakes.wg2).toEqual({ measured: true, ok: false, detail: 'no wg2 peer on the hub' });
    expect(cp1?.handshakes.wg3).toEqual({ measured: true, ok: false, detail: 'wg3 handshake 181 s old (limit 180 s)', ageSeconds: 181 });
    expect(cp1?.summary).toBe('no wg2 peer on the hub; wg3 handshake 181 s old (limit 180 s)');
    // The verdict (wg1 only) is untouched by wg2/wg3: the watcher and the engine agree, cp-1 has no finding.
    expect(h.report?.agreesWithEngine).toBe(true);
    // All fresh: healthy.
    const fresh = { ...facts, wg2Handshakes: { 'cp-1': T - 5, 'w-1': T - 5 }, wg3Handshakes: { 'cp-1': T - 180, 'w-1': T - 5 } };
    const ok = foldClusterHealth({ cluster: 'lab-3', hub: 'master', nodes: NODES, nowSeconds: T, status: read(watcherReportFor(fresh), T), agents: LAB3_AGENT_PINGS });
    expect(ok.nodes.find((n) => n.name === 'cp-1')?.state).toBe('healthy');
    expect(ok.nodes.find((n) => n.name === 'cp-1')?.handshakes.wg3).toEqual({ measured: true, ok: true, detail: 'wg3 handshake 180 s old', ageSeconds: 180 });
    // A watcher of an older payload reports no wg2/wg3: not measured, said why, never shown as fine.
    const { wg2Handshakes: _2, wg3Handshakes: _3, ...older } = fresh;
    const old = foldClusterHealth({ cluster: 'lab-3', hub: 'master', nodes: NODES, nowSeconds: T, status: read(watcherReportFor(older), T), agents: LAB3_AGENT_PINGS });
    expect(old.nodes.find((n) => n.name === 'cp-1')?.handshakes.wg2).toEqual({ measured: false, why: NOT_WG23_OLD_WATCHER });
    expect(old.nodes.find((n) => n.name === 'cp-1')?.state).toBe('healthy');
    expect(liveHealthRows(old).rows[1]?.[6]).toBe('not measured');
    // wg show failed on the hub for one plane: that failure is the reason.
    const { wg3Handshakes: _w3, ...noWg3 } = fresh;
    const failed = foldClusterHealth({ cluster: 'lab-3', hub: 'master', nodes: NODES, nowSeconds: T, status: read({ ...watcherReportFor(noWg3), errors: ['wg show wg3 on the hub failed: Unable to access interface: No such device'] }, T) });
    expect(failed.nodes.find((n) => n.name === 'cp-1')?.handshakes.wg3).toEqual({ measured: false, why: 'not measured: wg show wg3 on the hub failed: Unable to access interface: No such device' });
    expect(failed.nodes.find((n) => n.name === 'cp-1')?.handshakes.wg2).toMatchObject({ measured: true, ok: true });
  });

  it('says "not measured" for what the watcher did not read, and a node with nothing measured is unknown', () => {
    const facts = { now: T, nodes: [{ name: 'master', hub: true, etcd: false }, { name: 'cp-1', hub: false, etcd: true }] };
    const h = foldClusterHealth({ cluster: 'lab-3', hub: 'master', nodes: NODES, nowSeconds: T, status: read(watcherReportFor(facts), T) });
    expect(h.nodes.map((n) => n.state)).toEqual(['unknown', 'unknown', 'unknown']);
    expect(h.nodes[1]?.converge).toEqual({ measured: false, why: 'not measured: the watcher takes no converge fingerprints on this cluster' });
    expect(h.nodes[1]?.etcd).toEqual({ measured: false, why: 'not measured: the watcher did not read etcd' });
    expect(h.nodes[2]?.summary).toMatch(/does not watch w-1 \(its configuration predates this plan: redeploy\)/);
  });

  it('a node is unreachable only when every measured way to it failed', () => {
    const ok = { measured: true as const, ok: true, detail: '' };
    const bad = { measured: true as const, ok: false, detail: '' };
    const no = { measured: false as const, why: '' };
    expect(liveNodeState({ agent: bad, handshakes: { wg1: bad, wg2: no, wg3: no }, converge: ok })).toBe('unreachable');
    expect(liveNodeState({ agent: bad, handshakes: { wg1: ok, wg2: no, wg3: no }, converge: ok })).toBe('degraded');
    expect(liveNodeState({ agent: bad, handshakes: { wg1: no, wg2: no, wg3: no }, converge: no })).toBe('unreachable');
    expect(liveNodeState({ agent: ok, handshakes: { wg1: no, wg2: no, wg3: no }, etcd: bad, converge: no })).toBe('degraded');
    expect(liveNodeState({ agent: no, handshakes: { wg1: no, wg2: no, wg3: no }, converge: no })).toBe('unknown');
  });

  it('when the report cannot be used, every node is unknown and the reason is in words', () => {
    const stale = foldClusterHealth({ cluster: 'lab-3', hub: 'master', nodes: NODES, nowSeconds: T + 300, status: read(watcherReportFor(lab3MixedFacts(T)), T + 300) });
    expect(stale.unavailable?.code).toBe('stale');
    expect(stale.unavailable?.message).toMatch(/^the health report on master is stale since \d\d:\d\d:\d\d UTC \(300 s old; fresh means within 3 heartbeats of 10 s\): the watcher stopped writing/);
    expect(stale.report).toMatchObject({ at: T, stale: true });
    expect(stale.counts).toEqual({ healthy: 0, degraded: 0, unreachable: 0, unknown: 3 });
    const down = foldClusterHealth({ cluster: 'lab-3', hub: 'master', nodes: NODES, nowSeconds: T, status: { readable: false, hub: 'master', path: '/x', reason: 'could not reach master (VMID 9100) through qemu-local: connect ENOENT qga.sock' } });
    expect(down.unavailable).toEqual({ code: 'unreadable', message: 'the hub master did not give its health report: could not reach master (VMID 9100) through qemu-local: connect ENOENT qga.sock' });
    expect(down.nodes.every((n) => n.state === 'unknown' && n.summary === 'unknown: the hub did not answer')).toBe(true);
    const stopped = foldClusterHealth({ cluster: 'lab-3', hub: 'master', nodes: NODES, nowSeconds: T, refused: { code: 'not-running', message: 'lab-3 is not running: stopped' }, status: read(watcherReportFor(lab3MixedFacts(T)), T) });
    expect(stopped.unavailable).toEqual({ code: 'not-running', message: 'lab-3 is not running: stopped' });
    expect(stopped.report).toBeUndefined();
    expect(liveHealthRows(stopped)).toMatchObject({ header: 'health now of lab-3: cannot be read (not-running): lab-3 is not running: stopped', rows: [] });
  });
});
