// Upgrade planning (issue 18): which nodes move to artifact N+1 together, and in which order.
// Pure: the spec's strategy and failure domains, the plan's nodes and the live health come in;
// ordered waves or one refusal come out. Nothing here touches a node, and no clock is read.
//
// The order, and why:
//  1. the Kubernetes control plane (etcd members and control-plane nodes) first: a kubelet must
//     never be newer than the API server it talks to (Kubernetes' version skew policy), so the
//     servers move before the kubelets;
//  2. every other node but the hub;
//  3. the hub last, alone. It is the hub of every plane and the orchestrator: every reboot of it
//     is a plane outage for the whole cluster, and it is the instrument the health gate reads
//     (handshakes as the hub sees them, etcd health through it). Keeping it on N while the others
//     move means every gate is measured by the same, known-good instrument, and every spoke has
//     proven that N+1 works against an N hub — the same mixed state a hub that fails its own gate
//     rolls back into. A hub upgraded first and subtly broken would judge every later node.
// Inside a tier, failure domain after failure domain (in the spec's order): a wave never spans
// two domains, so whatever a wave breaks stays inside one domain.
//
// What can make a wave smaller than maxUnavailable:
//  - the etcd quorum guard: the members a wave takes down never leave fewer healthy members than
//    quorum (a single-member etcd cannot keep quorum across a reboot: allowed, with a warning);
//  - one replica stays: of a role with several nodes (lb, control-plane, …), a wave never takes
//    them all.
import type { NodeRole } from '../spec/schema';
import { NODE_ROLES } from '../spec/schema';
import { memberRemoval, plannedEtcdHealth, quorumOf } from '../drills/health';
import { plural } from '../text/plural';
import { firstFew } from '../text/first-few';

export const UPGRADE_STRATEGIES = ['rolling', 'surge', 'replace'] as const;
export type UpgradeStrategy = (typeof UPGRADE_STRATEGIES)[number];

/** What happens to each node of a wave. */
export type WaveAction = 'slot-switch' | 'surge-replace' | 'replace';

export const ACTION_OF: Record<UpgradeStrategy, WaveAction> = {
  rolling: 'slot-switch',
  surge: 'surge-replace',
  replace: 'replace',
};

export const ACTION_TEXT: Record<WaveAction, string> = {
  'slot-switch': 'write N+1 into the passive root slot, reboot into it, wait for the health gate',
  'surge-replace': 'start a replacement node on N+1, wait for its health gate, then retire the old node',
  replace: 'drain, fence, destroy the VM, provision the same plan slot from N+1\'s image (the drill machinery), converge it, wait for its health gate',
};

/** A wave's action in one word for a plan line: the hub's slot switch under `replace` says why it is not replaced. */
export function actionWord(w: Pick<Wave, 'action' | 'tier'>, strategy: UpgradeStrategy): string {
  if (w.action === 'slot-switch') return strategy === 'replace' && w.tier === 'hub' ? 'slot switch (the hub keeps its identity)' : 'slot switch';
  return w.action === 'replace' ? 'replace' : 'surge';
}

/**
 * What happens to a node of `tier` under `strategy`. The hub holds the trust roots (enrollment
 * keys, the WireGuard hub, the health watcher, Prometheus): the drills never replace it, so under
 * `replace` its wave is a slot switch (it keeps its identity and data).
 */
export function waveActionOf(strategy: UpgradeStrategy, tier: WaveTier): WaveAction {
  return strategy === 'replace' && tier === 'hub' ? 'slot-switch' : ACTION_OF[strategy];
}

export type WaveTier = 'control-plane' | 'nodes' | 'hub';

export interface UpgradeNode {
  name: string;
  role: NodeRole;
  domain: string;
  hub: boolean;
  etcd: boolean;
}

/** The live health the plan is made against. `observed: false`: nothing could be probed. */
export interface UpgradeHealth {
  observed: boolean;
  /** Nodes unhealthy now, with the first reason each (from evaluateHealth's findings). */
  unhealthy: readonly { node: string; detail: string }[];
  /** Observed: one line of what was seen; not observed: why not. */
  note?: string;
}

export interface WavePlanInput {
  strategy: UpgradeStrategy;
  /** Nodes down at once (spec: kubernetes.ha.maxUnavailable; default 1). */
  maxUnavailable: number;
  /** Failure domains in the spec's order. */
  failureDomains: readonly string[];
  nodes: readonly UpgradeNode[];
  health: UpgradeHealth;
}

export interface Wave {
  /** 1-based. */
  index: number;
  tier: WaveTier;
  domain: string;
  action: WaveAction;
  nodes: string[];
  /** etcd members this wave takes down. */
  etcdMembers: number;
}

export type RefusalCode = 'quorum' | 'unhealthy' | 'no-nodes';

export type WavePlan =
  | { ok: true; waves: Wave[]; warnings: string[] }
  | { ok: false; code: RefusalCode; message: string };

const TIER_ORDER: readonly WaveTier[] = ['control-plane', 'nodes', 'hub'];

export function tierOf(n: UpgradeNode): WaveTier {
  if (n.hub) return 'hub';
  if (n.etcd || n.role === 'control-plane' || n.role === 'etcd') return 'control-plane';
  return 'nodes';
}

const roleRank = (r: NodeRole): number => NODE_ROLES.indexOf(r);

/** Pure: the ordered waves of an upgrade, or the one reason it must not start. */
export function planWaves(input: WavePlanInput): WavePlan {
  const nodes = [...input.nodes];
  if (!nodes.length) return { ok: false, code: 'no-nodes', message: 'the plan has no nodes to upgrade' };
  const max = Math.max(1, Math.floor(input.maxUnavailable));
  const warnings: string[] = [];
  const names = new Set(nodes.map((n) => n.name));
  const unhealthy = input.health.unhealthy.filter((u) => names.has(u.node));
  const unhealthyNames = new Set(unhealthy.map((u) => u.node));

  // The etcd quorum guard, against the live health.
  const members = nodes.filter((n) => n.etcd);
  const quorum = quorumOf(members.length);
  const healthyMembers = members.filter((m) => !unhealthyNames.has(m.name));
  const downMembers = members.filter((m) => unhealthyNames.has(m.name)).map((m) => m.name);
  if (members.length) {
    const why = (): string => `${healthyMembers.length} of ${members.length} etcd members healthy (unhealthy: ${firstFew(downMembers.map((m) => `${m}: ${unhealthy.find((u) => u.node === m)!.detail}`), 3)}), quorum is ${quorum}`;
    if (healthyMembers.length < quorum) {
      return { ok: false, code: 'quorum', message: `etcd has no quorum now: ${why()}. Nothing was touched; heal the members first (kubedos heal SPEC), then upgrade` };
    }
    if (members.length > 1 && !downMembers.length && members.length - 1 < quorum) {
      return { ok: false, code: 'quorum', message: `etcd has ${members.length} members (${firstFew(members.map((m) => m.name), 3)}): quorum is ${quorum}, so rebooting any one of them breaks it. Nothing was touched; run an odd number of members (3 or 5), then upgrade` };
    }
    if (members.length > 1 && healthyMembers.length - 1 < quorum) {
      return {
        ok: false,
        code: 'quorum',
        message: `upgrading would break etcd quorum: ${why()}; rebooting any healthy member leaves ${healthyMembers.length - 1}. Nothing was touched; heal ${firstFew(downMembers, 3)} first (kubedos heal SPEC), then upgrade`,
      };
    }
  }
  if (unhealthy.length) {
    const sorted = [...unhealthy].sort((a, b) => a.node.localeCompare(b.node));
    return {
      ok: false,
      code: 'unhealthy',
      message: `${plural(sorted.length, 'node is', 'nodes are')} unhealthy before the upgrade: ${firstFew(sorted.map((u) => `${u.node} (${u.detail})`), 3)}. An upgrade's health gate could not tell N+1's faults from these; nothing was touched: heal first (kubedos heal SPEC), then upgrade`,
    };
  }
  // Under replace a member is taken out (the drill's fence) and its data goes with its VM: the one quorum rule decides, as for a drill.
  const replaced = input.strategy === 'replace' ? members.filter((m) => !m.hub) : [];
  if (replaced.length) {
    const healthNow = plannedEtcdHealth(members.map((m) => m.name));
    const removal = memberRemoval(healthNow, replaced[0]!.name);
    if (!removal.ok) return { ok: false, code: 'quorum', message: `replacing ${replaced[0]!.name} (strategy replace, the spec's kubernetes.ha.upgradeStrategy) takes its etcd member out and its data goes with its VM: ${removal.message}. Nothing was touched; run 3 or 5 etcd members, or upgrade this cluster with kubernetes.ha.upgradeStrategy: rolling (its members keep their data across a slot switch)` };
  }
  if (members.length === 1) warnings.push(`etcd has a single member (${members[0]!.name}): the Kubernetes API is unavailable while it upgrades; there is no quorum to keep`);
  if (!input.health.observed) warnings.push(`live health was not observed${input.health.note ? ` (${input.health.note})` : ''}: the quorum guard assumed every etcd member healthy, as the last converged deploy left them`);

  // Members a wave may take down: a single member may go (warned above), otherwise keep quorum.
  const etcdBudget = members.length <= 1 ? 1 : healthyMembers.length - quorum;
  const replicas = new Map<NodeRole, number>();
  for (const n of nodes) replicas.set(n.role, (replicas.get(n.role) ?? 0) + 1);
  for (const [role, count] of [...replicas].sort(([a], [b]) => roleRank(a) - roleRank(b))) {
    const only = nodes.find((n) => n.role === role)!;
    // The hub and a lone etcd member have their own words; workers carry no shared service.
    if (count === 1 && !only.hub && role !== 'worker' && !(only.etcd && members.length === 1)) warnings.push(`${role} has one node (${only.name}): its service is down while that node upgrades`);
  }

  const domainRank = (d: string): number => {
    const i = input.failureDomains.indexOf(d);
    return i < 0 ? input.failureDomains.length : i;
  };
  nodes.sort((a, b) => TIER_ORDER.indexOf(tierOf(a)) - TIER_ORDER.indexOf(tierOf(b)) || domainRank(a.domain) - domainRank(b.domain) || a.domain.localeCompare(b.domain) || roleRank(a.role) - roleRank(b.role) || a.name.localeCompare(b.name));

  const waves: Wave[] = [];
  let cur: Wave | undefined;
  let curRoles = new Map<NodeRole, number>();
  for (const n of nodes) {
    const tier = tierOf(n);
    const roleLimit = Math.max(1, (replicas.get(n.role) ?? 1) - 1);
    const fits =
      cur !== undefined &&
      cur.tier === tier &&
      tier !== 'hub' &&
      cur.domain === n.domain &&
      cur.nodes.length < max &&
      (!n.etcd || cur.etcdMembers < etcdBudget) &&
      (curRoles.get(n.role) ?? 0) < roleLimit;
    if (!fits) {
      cur = { index: waves.length + 1, tier, domain: n.domain, action: waveActionOf(input.strategy, tier), nodes: [], etcdMembers: 0 };
      curRoles = new Map();
      waves.push(cur);
    }
    cur!.nodes.push(n.name);
    if (n.etcd) cur!.etcdMembers++;
    curRoles.set(n.role, (curRoles.get(n.role) ?? 0) + 1);
  }
  return { ok: true, waves, warnings };
}

/** Pure: the waves as lines for a terminal; with `strategy`, each line ends with what happens to its nodes (actionWord). */
export function renderWaves(waves: readonly Wave[], strategy?: UpgradeStrategy): string[] {
  return waves.map((w) => `  wave ${String(w.index).padStart(2)}  ${w.tier.padEnd(13)} ${w.domain.padEnd(12)} ${w.nodes.join(', ')}${w.etcdMembers ? `  (${plural(w.etcdMembers, 'etcd member')} down)` : ''}${strategy ? `: ${actionWord(w, strategy)}` : ''}`);
}

/** Pure: the plan's heading and wave lines; one action for every wave keeps the one-line heading, mixed actions (replace, the hub's slot switch) say each. */
export function renderPlan(waves: readonly Wave[], strategy: UpgradeStrategy): string[] {
  const actions = [...new Set(waves.map((w) => w.action))];
  if (actions.length === 1) return [`${plural(waves.length, 'wave')} (${actions[0]}: ${ACTION_TEXT[actions[0]!]}):`, ...renderWaves(waves)];
  return [`${plural(waves.length, 'wave')} (strategy ${strategy}):`, ...actions.map((a) => `  ${a === 'slot-switch' ? 'slot switch' : a}: ${ACTION_TEXT[a]}`), ...renderWaves(waves, strategy)];
}
