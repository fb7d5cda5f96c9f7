// The drill catalogue (issue 14) and the guard that refuses a drill before it starts. Pure.
import type { NodeRole } from '../spec/schema';
import type { HealthReport } from './health';
import { memberRemoval } from './health';

export const CATALOGUE = ['delete-worker-vm', 'delete-control-plane-vm', 'power-off-node', 'partition-node', 'kill-etcd-member'] as const;
export type ScenarioName = (typeof CATALOGUE)[number];

export interface Scenario {
  name: ScenarioName;
  summary: string;
  /** Roles a target may have; undefined: any node but the hub. */
  roles?: readonly NodeRole[];
  /** The target must be an etcd member. */
  etcdMemberOnly?: boolean;
  /** Whether the scenario takes the target's etcd member (if it has one) out. */
  takesEtcdMember: boolean;
  /** Whether it destroys a VM (needs the substrate and stages.drill.allowDestroy). */
  destroysVm: boolean;
}

export const SCENARIOS: Record<ScenarioName, Scenario> = {
  'delete-worker-vm': { name: 'delete-worker-vm', summary: 'destroy a worker VM; replace it in the same plan slot from the same artifact', roles: ['worker'], takesEtcdMember: true, destroysVm: true },
  'delete-control-plane-vm': { name: 'delete-control-plane-vm', summary: 'destroy a control-plane VM (and its stacked etcd member); replace and rejoin it', roles: ['control-plane'], takesEtcdMember: true, destroysVm: true },
  'power-off-node': { name: 'power-off-node', summary: 'hard stop a node (no shutdown); fence it, start it again and rejoin it', takesEtcdMember: true, destroysVm: false },
  'partition-node': { name: 'partition-node', summary: 'cut every plane of a node at the hub; fence it (revoke its peers, remove its etcd member), heal the cut and re-enroll it', takesEtcdMember: true, destroysVm: false },
  'kill-etcd-member': { name: 'kill-etcd-member', summary: 'kill the etcd member of a node; remove it, add a fresh member with a new data directory, rejoin', etcdMemberOnly: true, takesEtcdMember: true, destroysVm: false },
};

export function isScenario(name: string): name is ScenarioName {
  return (CATALOGUE as readonly string[]).includes(name);
}

/**
 * What a name in `acceptance.drills` runs. The spec's older names map onto the catalogue where
 * the drill is the same; the others say why there is no drill for them.
 */
export function scenarioOfDrillName(name: string): { scenario: ScenarioName } | { refused: string } {
  if (isScenario(name)) return { scenario: name };
  switch (name) {
    case 'partition-plane-wg3':
      return { scenario: 'partition-node' };
    case 'stop-master-vm':
      return { refused: 'the master is the hub that watches and heals the cluster; it cannot be the target of its own drill' };
    case 'rotate-wireguard-keys':
      return { refused: 'key rotation is maintenance, not a failure drill (kubedos-enroll-hub rotate-keys does it without downtime)' };
    case 'delete-etcd-vm':
    case 'delete-lb-vm':
    case 'delete-storage-vm':
      return { refused: `there is no VM replacement drill for this role yet; the catalogue has: ${CATALOGUE.join(', ')}` };
    default:
      return { refused: `"${name}" is not a drill scenario; the catalogue has: ${CATALOGUE.join(', ')}` };
  }
}

/** The recovery target of a scenario: its `acceptance.drills` entry, else `mttrTargetMinutes`. */
export function recoveryTarget(acceptance: { mttrTargetMinutes: number; drills: readonly { name: string; expectRecoveryMinutes: number }[] }, scenario: ScenarioName): { minutes: number; source: string } {
  const i = acceptance.drills.findIndex((d) => {
    const m = scenarioOfDrillName(d.name);
    return 'scenario' in m && m.scenario === scenario;
  });
  const d = i >= 0 ? acceptance.drills[i] : undefined;
  if (d) return { minutes: d.expectRecoveryMinutes, source: `acceptance.drills[${i}] (${d.name})` };
  return { minutes: acceptance.mttrTargetMinutes, source: 'acceptance.mttrTargetMinutes' };
}

// ---------------------------------------------------------------- the guard

export interface GuardNode {
  name: string;
  role: NodeRole;
  hub: boolean;
  /** An etcd member by plan. */
  etcd: boolean;
}

export interface GuardReason {
  code: 'unknown-scenario' | 'unknown-node' | 'hub-target' | 'wrong-role' | 'not-etcd-member' | 'unhealthy' | 'unconverged' | 'quorum' | 'health-unknown' | 'not-destroyable';
  message: string;
}

export interface GuardVerdict {
  ok: boolean;
  reasons: GuardReason[];
}

export interface GuardInput {
  scenario: string;
  node: string;
  nodes: readonly GuardNode[];
  /** The health verdict just before the drill; undefined when no probe could run. */
  health: HealthReport | undefined;
  /** `stages.drill.allowDestroy` (or provision's): needed by the scenarios that destroy a VM. */
  allowDestroy: boolean;
}

const FIRST = 3;
function firstFew<T>(xs: readonly T[], f: (x: T) => string): string {
  return `${xs.slice(0, FIRST).map(f).join('; ')}${xs.length > FIRST ? `; and ${xs.length - FIRST} more` : ''}`;
}

/**
 * Refuses a drill that names what does not exist, targets the hub or the wrong kind of node,
 * runs on a cluster that is not healthy and converged, would destroy a VM the spec does not let
 * it, or would leave etcd without quorum. Every reason is given, not just the first.
 */
export function guardDrill(input: GuardInput): GuardVerdict {
  const reasons: GuardReason[] = [];
  const scenario = isScenario(input.scenario) ? SCENARIOS[input.scenario] : undefined;
  if (!scenario) {
    const m = scenarioOfDrillName(input.scenario);
    reasons.push({ code: 'unknown-scenario', message: 'scenario' in m ? `"${input.scenario}" is called ${m.scenario} in the catalogue` : m.refused });
  }
  const node = input.nodes.find((n) => n.name === input.node);
  if (!node) {
    reasons.push({ code: 'unknown-node', message: `there is no node "${input.node}" in this cluster (nodes: ${firstFew([...input.nodes].map((n) => n.name).sort(), (x) => x)})` });
  } else if (node.hub) {
    reasons.push({ code: 'hub-target', message: `${node.name} is the hub: it watches and heals the cluster and cannot be a drill target` });
  } else if (scenario) {
    if (scenario.roles && !scenario.roles.includes(node.role)) reasons.push({ code: 'wrong-role', message: `${scenario.name} targets ${scenario.roles.join(' or ')} nodes; ${node.name} is ${node.role}` });
    if (scenario.etcdMemberOnly && !node.etcd) reasons.push({ code: 'not-etcd-member', message: `${node.name} is not an etcd member (members: ${firstFew(input.nodes.filter((n) => n.etcd).map((n) => n.name), (x) => x) || 'none'})` });
    if (scenario.destroysVm && !input.allowDestroy) reasons.push({ code: 'not-destroyable', message: `${scenario.name} destroys ${node.name}'s VM; the spec does not allow it (set stages.drill.allowDestroy: true)` });
  }
  const h = input.health;
  if (!h) {
    reasons.push({ code: 'health-unknown', message: 'the cluster health could not be observed; a drill needs a healthy baseline' });
  } else {
    if (h.findings.length) reasons.push({ code: 'unhealthy', message: `the cluster is not healthy now (${h.findings.length} finding${h.findings.length === 1 ? '' : 's'}: ${firstFew(h.findings, (f) => `${f.node}: ${f.detail}`)}); heal it first (kubedos heal)` });
    if (h.converged === false) reasons.push({ code: 'unconverged', message: 'the cluster is not converged (converge inputs moved); deploy first' });
    if (scenario?.takesEtcdMember && node?.etcd && h.etcd) {
      const removal = memberRemoval(h.etcd, node.name);
      if (!removal.ok) reasons.push({ code: 'quorum', message: removal.message });
    }
  }
  return { ok: reasons.length === 0, reasons };
}

// ---------------------------------------------------------------- partition-node's cut

/** The nftables table the hub's partition cut lives in (one per hub; healing deletes it). */
export const DRILL_NFT_TABLE = 'kubedos_drill';

/** partition-node's fault at the hub: drop all traffic from and to the node's LAN address (its three tunnels ride on it). */
export function partitionCut(node: string, lanCidr: string): { rules: string; detail: string } {
  const lan = lanCidr.replace(/\/\d+$/, '');
  const rules = [
    `table inet ${DRILL_NFT_TABLE} {`,
    `  chain input { type filter hook input priority -10; policy accept; ip saddr ${lan} drop comment "drill: partition ${node}"; }`,
    `  chain output { type filter hook output priority -10; policy accept; ip daddr ${lan} drop comment "drill: partition ${node}"; }`,
    '}',
    '',
  ].join('\n');
  return { rules, detail: `the hub drops all traffic from and to ${node} (${lan}): its wg1/wg2/wg3 tunnels are cut` };
}
