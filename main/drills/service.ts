// The drill service shared by `kubedos drill` and the workbench: what can be said before a drill
// starts (the guard's verdict on the plan, where it would run and what that place cannot do), and
// running one on the namespace lab with the record streamed after every change.
import type { GuardNode, GuardReason } from '../../common/drills/catalogue';
import { guardDrill, isScenario, SCENARIOS, scenarioOfDrillName } from '../../common/drills/catalogue';
import type { DrillRecord } from '../../common/drills/timeline';
import type { Plan } from '../../common/plan/index';
import type { ClusterSpec } from '../../common/spec/schema';
import { drillId, runDrill, specDrillSettings } from './engine';
import { etcdMembersOf, LAB_SCENARIOS, LabDrillTarget } from './lab-target';

export function guardNodes(p: Plan): GuardNode[] {
  const etcd = etcdMembersOf(p);
  return p.nodes.map((n) => ({ name: n.name, role: n.role, hub: n.hub, etcd: etcd.includes(n.name) }));
}

/** The node a scenario targets when none is named: the last eligible one by name (stable). */
export function defaultTarget(scenario: string, nodes: readonly GuardNode[]): string | undefined {
  if (!isScenario(scenario)) return undefined;
  const s = SCENARIOS[scenario];
  const ok = nodes.filter((n) => !n.hub && (!s.roles || s.roles.includes(n.role)) && (!s.etcdMemberOnly || n.etcd)).map((n) => n.name).sort();
  return ok.at(-1);
}

/** The nodes a scenario may target in this plan (by name). */
export function eligibleTargets(scenario: string, nodes: readonly GuardNode[]): string[] {
  if (!isScenario(scenario)) return [];
  const s = SCENARIOS[scenario];
  return nodes.filter((n) => !n.hub && (!s.roles || s.roles.includes(n.role)) && (!s.etcdMemberOnly || n.etcd)).map((n) => n.name);
}

export interface DrillPreflight {
  scenario: string;
  /** The node it targets (the one asked for, or the default one). */
  node?: string;
  /** The guard's reasons that need no running cluster (wrong node, the hub, the catalogue…). */
  reasons: GuardReason[];
  /** Why the namespace lab cannot run it, when it cannot (a hypervisor scenario, no root). */
  cannotRun?: string;
}

/** Needs root: network namespaces, mounts, nftables. */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

export const LAB_NEEDS_ROOT = 'the namespace lab needs root (network namespaces, mounts, nftables): start the workbench or the command as root';

/**
 * What the guard can say from the plan alone, and whether the namespace lab can run the drill.
 * The rest of the guard (every node healthy, converged, quorum kept) needs the cluster up and
 * runs just before the fault is injected.
 */
export function drillPreflight(p: Plan, scenario: string, node: string | undefined, root = isRoot()): DrillPreflight {
  const nodes = guardNodes(p);
  const reasons: GuardReason[] = [];
  if (!isScenario(scenario)) {
    const m = scenarioOfDrillName(scenario);
    reasons.push({ code: 'unknown-scenario', message: 'scenario' in m ? `"${scenario}" is called ${m.scenario} in the catalogue` : m.refused });
    return { scenario, reasons };
  }
  const target = node ?? defaultTarget(scenario, nodes);
  if (!target) {
    const s = SCENARIOS[scenario];
    reasons.push({ code: 'unknown-node', message: `${scenario} has no eligible node in ${p.cluster.name} (${s.etcdMemberOnly ? 'it needs an etcd member' : `it targets ${s.roles?.join(' or ') ?? 'a node other than the hub'}`})` });
    return { scenario, reasons };
  }
  if (!nodes.some((n) => n.name === target)) {
    reasons.push({ code: 'unknown-node', message: `there is no node "${target}" in ${p.cluster.name}; nodes: ${nodes.map((n) => n.name).slice(0, 8).join(', ')}${nodes.length > 8 ? ` and ${nodes.length - 8} more` : ''}` });
    return { scenario, node: target, reasons };
  }
  reasons.push(...guardDrill({ scenario, node: target, nodes, health: undefined, allowDestroy: false }).reasons.filter((r) => r.code !== 'health-unknown' && r.code !== 'not-destroyable'));
  const out: DrillPreflight = { scenario, node: target, reasons };
  if (!LAB_SCENARIOS.includes(scenario)) out.cannotRun = `${scenario} cannot run in the namespace lab: it needs a hypervisor to ${SCENARIOS[scenario].destroysVm ? 'destroy and recreate the VM' : 'stop and start the VM'}; the lab runs ${LAB_SCENARIOS.join(' and ')}`;
  else if (!root) out.cannotRun = LAB_NEEDS_ROOT;
  return out;
}

export interface LabDrillRun {
  plan: Plan;
  spec: ClusterSpec;
  scenario: string;
  node: string;
  env: NodeJS.ProcessEnv;
  nextOnInterrupt: string;
  signal?: AbortSignal;
  log: (line: string) => void;
  /** Every change of the record (it is also saved in the workspace history). */
  onRecord?: (r: DrillRecord) => void;
}

/** Builds the namespace lab of the plan, runs the drill on it, tears the lab down. */
export async function runLabDrill(o: LabDrillRun): Promise<DrillRecord> {
  const t0 = Date.now();
  const target = await LabDrillTarget.create(o.plan, { log: o.log });
  try {
    o.log(`lab of ${o.plan.nodes.length} nodes up in ${Date.now() - t0} ms (etcd members: ${target.etcdMembers.join(', ') || 'none'})`);
    const settings = specDrillSettings(o.spec, o.env);
    return await runDrill({
      target,
      spec: o.spec,
      scenario: o.scenario,
      node: o.node,
      ...settings,
      store: (r) => {
        settings.store(r);
        o.onRecord?.(structuredClone(r));
      },
      id: drillId(new Date(), o.scenario, o.node),
      nextOnInterrupt: o.nextOnInterrupt,
      ...(o.signal ? { signal: o.signal } : {}),
      log: o.log,
    });
  } finally {
    target.destroy();
  }
}

