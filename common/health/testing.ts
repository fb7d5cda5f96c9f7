// Test helpers (never imported by production code): a watcher report as the hub's
// kubedos-health-watch writes it for given facts, and lab-3 facts with one node in each state.
import type { DetectThresholds, HealthFacts } from '../drills/health';
import { evaluateHealth, probesToDetect } from '../drills/health';
import type { HealthWatchReport, NodeArtifactReading } from '../drills/watcher';

/** lab-3's: the schema's defaults (10 s heartbeat, 6 misses), etcd always on. */
export const TEST_THRESHOLDS: DetectThresholds = { signals: ['guest-agent', 'wg-handshake', 'etcd-member'], silenceSeconds: 60, handshakeMaxAgeSeconds: 180, heartbeatSeconds: 10 };

/** The report the watcher writes for `facts` (its verdict is evaluateHealth's, as on a hub running this payload). */
export function watcherReportFor(facts: HealthFacts, o: { cluster?: string; hub?: string; thresholds?: DetectThresholds; nodeMetrics?: NodeArtifactReading[] } = {}): HealthWatchReport {
  const thresholds = o.thresholds ?? TEST_THRESHOLDS;
  const verdict = evaluateHealth(facts, thresholds);
  return {
    schema: 'kubedos.health-watch/v1',
    cluster: o.cluster ?? 'lab-3',
    hub: o.hub ?? 'master',
    at: facts.now,
    startedAt: facts.now - 600,
    sequence: 60,
    probeMs: 180,
    thresholds,
    detectAfterProbes: probesToDetect(thresholds),
    facts,
    verdict,
    findings: verdict.findings.map((f) => ({ ...f, since: facts.now - 40, probes: 4 })),
    detected: [],
    errors: [],
    ...(o.nodeMetrics ? { nodeMetrics: o.nodeMetrics } : {}),
  };
}

/**
 * The nodes' versions that go with lab3MixedFacts, read by the watcher 20 s before `now`: master
 * and w-1 on 2026.12.1 from one root, cp-1 already on 2026.12.2 from slot b; w-1's exporter did not answer.
 */
export function lab3NodeMetrics(now: number): NodeArtifactReading[] {
  const digest = (c: string): string => c.repeat(64);
  return [
    { node: 'cp-1', version: '2026.12.2', buildDigest: digest('b'), slot: 'b', at: now - 20 },
    { node: 'master', version: '2026.12.1', buildDigest: digest('a'), slot: 'single', at: now - 20 },
    { node: 'w-1', error: 'node exporter on http://10.112.0.4:9100 did not answer (timed out)', at: now - 20 },
  ];
}

/** The guest agents' answers to the reader's pings that go with lab3MixedFacts. */
export const LAB3_AGENT_PINGS: Record<string, boolean> = { 'cp-1': true, master: true, 'w-1': false };

/**
 * lab-3 (master = hub, cp-1 = the etcd member, w-1) at `now`, as the hub's watcher reports it (no
 * guest-agent facts: that is the hypervisor's view, LAB3_AGENT_PINGS): master healthy; cp-1's
 * etcd member is unhealthy and its converge fingerprint moved (degraded), its wg2/wg3 handshakes
 * are fresh; w-1's wg1 and wg2 handshakes are old, it never shook hands on wg3 (and its guest
 * agent does not answer: unreachable).
 */
export function lab3MixedFacts(now: number): HealthFacts {
  return {
    now,
    nodes: [
      { name: 'cp-1', hub: false, etcd: true },
      { name: 'master', hub: true, etcd: false },
      { name: 'w-1', hub: false, etcd: false },
    ],
    wg1Handshakes: { 'cp-1': now - 35, 'w-1': now - 900 },
    wg2Handshakes: { 'cp-1': now - 12, 'w-1': now - 900 },
    wg3Handshakes: { 'cp-1': now - 47, 'w-1': 0 },
    etcd: {
      members: [{ id: 'a1', name: 'cp-1', peerUrls: ['https://10.113.0.3:2380'], clientUrls: ['https://10.113.0.3:2379'] }],
      endpoints: [{ endpoint: 'https://10.113.0.3:2379', healthy: false, error: 'context deadline exceeded' }],
    },
    convergeDrift: ['cp-1'],
  };
}
