// The live health an upgrade is planned against (the preflight's waves, common/upgrade/waves.ts):
// the deployed cluster looked at once through its guest agents with the drills' own probes
// (clusterHealthFacts: every node's agent, the hub's wg1 handshakes, etcd's members and endpoints)
// and judged by the drills' verdict (evaluateHealth) with the spec's detection thresholds. A node
// found unhealthy refuses the upgrade, an etcd member down counts against the quorum guard, before
// any node is touched.
import type { HealthReport, HealthSignal } from '../../common/drills/health';
import { detectThresholds, evaluateHealth } from '../../common/drills/health';
import type { Plan } from '../../common/plan/schema';
import type { ClusterSpec } from '../../common/spec/schema';
import { plural } from '../../common/text/plural';
import type { BuildRef } from '../../common/upgrade/agent';
import type { UpgradeRecord } from '../../common/upgrade/progress';
import type { UpgradeHealth } from '../../common/upgrade/waves';
import { firstFew } from '../../common/text/first-few';
import { clusterHealthFacts } from '../drills/cluster-target';
import { guestShell } from '../drills/shell';
import type { SubstrateDriver } from '../substrate/driver';

/**
 * What an upgrade judges, whatever signals the spec's self-healing detection lists: a node whose
 * guest agent does not answer, whose wg1 handshake is stale, or whose etcd member is unhealthy
 * cannot be told apart from a fault of N+1 by the health gate. (kubelet-ready and converge drift
 * are not probed here: the gate of each node asks for them.)
 */
export const UPGRADE_HEALTH_SIGNALS: readonly HealthSignal[] = ['guest-agent', 'wg-handshake', 'etcd-member'];

/** The finding that says most of a node: its guest agent, then its plane, then its etcd member (what follows from the first). */
const rank = (s: HealthSignal): number => (UPGRADE_HEALTH_SIGNALS.includes(s) ? UPGRADE_HEALTH_SIGNALS.indexOf(s) : UPGRADE_HEALTH_SIGNALS.length);

/** Pure: the drills' verdict as the waves take it — each unhealthy node with its first finding (rank), and one line of what was seen. */
export function upgradeHealthOf(report: HealthReport): UpgradeHealth {
  const unhealthy = report.nodes
    .filter((n) => n.state === 'unhealthy')
    .map((n) => ({ node: n.name, detail: [...n.findings].sort((a, b) => rank(a.signal) - rank(b.signal))[0]?.detail ?? 'unhealthy' }));
  const seen = [
    `${report.nodes.length - unhealthy.length} of ${plural(report.nodes.length, 'node')} healthy`,
    ...(report.etcd ? [`etcd ${report.etcd.healthy} of ${report.etcd.members} members healthy (quorum ${report.etcd.quorum})`] : []),
    ...(report.notObserved.length ? [`not observed: ${report.notObserved.join(', ')}`] : []),
  ];
  return { observed: true, unhealthy, note: `${seen.join('; ')} (guest agents, wg1 handshakes at the hub, etcd)` };
}

/** The cluster looked at now through its guest agents (one pass of the drills' probes), judged for an upgrade. */
export async function observeUpgradeHealth(o: { spec: ClusterSpec; plan: Plan; driver: SubstrateDriver; now?: number }): Promise<UpgradeHealth> {
  const facts = await clusterHealthFacts({ plan: o.plan, driver: o.driver, sh: guestShell(o.plan, o.driver), now: o.now ?? Date.now() / 1000 });
  const t = detectThresholds(o.spec.spec.selfHealing);
  return upgradeHealthOf(evaluateHealth(facts, { ...t, signals: [...UPGRADE_HEALTH_SIGNALS] }));
}

/**
 * Pure: the nodes a stopped run towards `target` left in the middle of their replacement (the
 * record's `replaced` for that build, not done: destroyed, provisioned, not yet through the gate).
 * The rerun goes on with them, so their state now is the upgrade's own doing, not held against it.
 */
export function midReplacement(record: UpgradeRecord, target: Pick<BuildRef, 'digest'>): string[] {
  return Object.entries(record.replaced ?? {})
    .filter(([, r]) => r.build.digest === target.digest && r.state !== 'done')
    .map(([node]) => node)
    .sort();
}

/** Pure: `h` without the findings of `nodes` (midReplacement's), the note saying so. */
export function excuseMidReplacement(h: UpgradeHealth, nodes: readonly string[]): UpgradeHealth {
  const excused = h.unhealthy.filter((u) => nodes.includes(u.node));
  if (!h.observed || !excused.length) return h;
  const said = `${firstFew(excused.map((u) => `${u.node} (${u.detail})`), 3)}: left in the middle of ${excused.length === 1 ? 'its' : 'their'} replacement by the last run towards this build, which this run goes on with`;
  return { ...h, unhealthy: h.unhealthy.filter((u) => !nodes.includes(u.node)), note: `${h.note ?? ''}; not held against it: ${said}` };
}
