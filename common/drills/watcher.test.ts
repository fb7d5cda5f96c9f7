import { describe, expect, it } from 'vitest';
import { plan } from '../plan/index';
import { parseSpec, TEMPLATES } from '../spec/index';
import type { HealthFacts } from './health';
import { detectThresholds, evaluateHealth, probesToDetect } from './health';
import type { HealthWatchReport } from './watcher';
import { agreesWithEngine, healthWatchConfig, HealthWatchConfig, isStale, parseHealthWatchReport, renderHealthWatchConfig, renderWatcherStatus, watcherStatusOf } from './watcher';

const spec = (() => {
  const r = parseSpec(TEMPLATES['reference-16'].text);
  if (!r.spec) throw new Error('reference-16 does not parse');
  return r.spec;
})();

function report(facts: HealthFacts, o: Partial<HealthWatchReport> = {}): HealthWatchReport {
  const thresholds = detectThresholds(spec.spec.selfHealing);
  const verdict = evaluateHealth(facts, thresholds);
  return {
    schema: 'kubedos.health-watch/v1',
    cluster: 'c',
    hub: 'master',
    at: facts.now,
    startedAt: facts.now - 100,
    sequence: 10,
    probeMs: 120,
    thresholds,
    detectAfterProbes: probesToDetect(thresholds),
    facts,
    verdict,
    findings: verdict.findings.map((f) => ({ ...f, since: facts.now - 30, probes: 4 })),
    detected: [],
    errors: [],
    ...o,
  };
}

const FACTS: HealthFacts = {
  now: 1000,
  nodes: [
    { name: 'master', hub: true, etcd: false },
    { name: 'w-1', hub: false, etcd: false },
  ],
  wg1Handshakes: { 'w-1': 700 },
};

describe('the health watcher configuration', () => {
  it('takes its thresholds from detectThresholds and the etcd members from the topology', () => {
    const p = plan(spec);
    const c = healthWatchConfig(spec, p, { etcdTls: { cacert: '/a', cert: '/b', key: '/c' } });
    expect(c.thresholds).toEqual(detectThresholds(spec.spec.selfHealing));
    expect(c.detectAfterProbes).toBe(6);
    const hub = p.nodes.find((n) => n.hub)!;
    expect(c.hub).toBe(hub.name);
    expect(c.nodes.map((n) => n.name)).toEqual(p.nodes.map((n) => n.name).sort((a, b) => a.localeCompare(b)));
    // Each node's planned /32 on every plane: the watcher maps the hub's wg1/wg2/wg3 peers by them.
    for (const n of c.nodes) {
      const planned = p.nodes.find((x) => x.name === n.name)!.planes;
      expect([n.wg1, n.wg2, n.wg3]).toEqual([planned.wg1.address, planned.wg2.address, planned.wg3.address]);
    }
    expect(new Set(c.nodes.map((n) => n.wg2)).size).toBe(c.nodes.length);
    const inv = p.ansibleInventory;
    for (const n of c.nodes.filter((x) => x.etcd)) expect(inv).toContain(`${n.name}: {}`);
    expect(c.etcd?.endpoints.every((e) => e.url.startsWith('https://') && e.url.endsWith(':2379'))).toBe(true);
    expect(c.etcd?.endpoints.length).toBe(c.nodes.filter((n) => n.etcd).length);
    expect(c.converge).toBeUndefined();
    // The nodes' versions from their exporters, on the observability plane the spec names (the role binds them there).
    expect(c.nodeMetrics).toEqual({ plane: 'wg2', port: 9100, everySeconds: 30 });
    const s3 = structuredClone(spec);
    s3.spec.kubernetes.observability.plane = 'wg3';
    expect(healthWatchConfig(s3, plan(s3)).nodeMetrics?.plane).toBe('wg3');
    // Rendered deterministically and valid against its own schema.
    const text = renderHealthWatchConfig(c);
    expect(renderHealthWatchConfig(HealthWatchConfig.parse(JSON.parse(text)))).toBe(text);
  });

  it('follows selfHealing.detect when the spec changes it', () => {
    const s2 = structuredClone(spec);
    s2.spec.selfHealing.detect = { heartbeatSeconds: 2, missedHeartbeats: 3, signals: ['wg-handshake'] };
    const c = healthWatchConfig(s2, plan(s2));
    expect(c.thresholds).toMatchObject({ heartbeatSeconds: 2, silenceSeconds: 6, handshakeMaxAgeSeconds: 151 });
    expect(c.detectAfterProbes).toBe(3);
    expect(c.etcd?.endpoints[0]?.url.startsWith('http://')).toBe(true);
  });
});

describe('the health watcher report', () => {
  it('parses, agrees with the engine, and says when it is stale', () => {
    const r = report(FACTS);
    const parsed = parseHealthWatchReport(JSON.stringify(r));
    expect(parsed.ok).toBe(true);
    expect(agreesWithEngine(r)).toEqual({ agrees: true });
    expect(r.verdict.findings).toEqual([{ node: 'w-1', signal: 'wg-handshake', detail: 'wg1 handshake 300 s old (limit 205 s)' }]);
    expect(isStale(r, 1010)).toBe(false);
    expect(isStale(r, 1100)).toBe(true);
    const w = watcherStatusOf('master', '/x', JSON.stringify(r), 1004);
    expect(w).toMatchObject({ readable: true, ageSeconds: 4, stale: false, agreesWithEngine: true });
    expect(renderWatcherStatus(w)).toContain('w-1: wg-handshake: wg1 handshake 300 s old (limit 205 s) (for 30 s, 4 probes)');
  });

  it('a verdict that is not evaluateHealth of its facts is reported as a disagreement', () => {
    const r = report(FACTS);
    const bad = { ...r, verdict: { ...r.verdict, healthy: true, findings: [] } };
    const a = agreesWithEngine(bad);
    expect(a.agrees).toBe(false);
    expect(a.difference).toMatch(/^healthy: engine false/);
    const w = watcherStatusOf('master', '/x', JSON.stringify(bad), 1000);
    expect(renderWatcherStatus(w)).toContain('differs from the engine');
  });

  it('what is not a report says why, in words', () => {
    expect(watcherStatusOf('master', '/x', 'nope', 0)).toMatchObject({ readable: false, reason: expect.stringMatching(/not JSON .*\/x on master/) });
    const w = watcherStatusOf('master', '/x', JSON.stringify({ schema: 'kubedos.health-watch/v1' }), 0);
    expect(w).toMatchObject({ readable: false, reason: expect.stringMatching(/expected shape \(\d+ problems; first: /) });
    expect(renderWatcherStatus(w)).toMatch(/^health \(watcher on master\): could not be read: /);
  });
});
