// The drill service shared by `kubedos drill` and the workbench: what can be said before a drill
// starts (the guard's verdict on the plan, where it would run and what that place cannot do), and
// running one on the namespace lab with the record streamed after every change.
import type { GuardNode, GuardReason } from '../../common/drills/catalogue';
import type { ScenarioName } from '../../common/drills/catalogue';
import { guardDrill, isScenario, SCENARIOS, scenarioOfDrillName } from '../../common/drills/catalogue';
import { memberRemoval, plannedEtcdHealth } from '../../common/drills/health';
import type { DrillRecord } from '../../common/drills/timeline';
import type { Plan } from '../../common/plan/index';
import type { ClusterSpec } from '../../common/spec/schema';
import type { PipelineEvent } from '../../common/pipeline/events';
import { prepareDeploy } from '../deploy/start';
import { openCluster } from '../lifecycle/service';
import type { LifecycleRequest } from '../lifecycle/service';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { analyse } from '../deploy/service';
import { convergedAndRunning } from '../lifecycle/record';
import { readJournal } from '../pipeline/journal';
import { runPipeline } from '../pipeline/runner';
import { activeDeploy, clusterWorkspace, WORKSPACE_LAYOUT } from '../workspace';
import type { HealResult } from './engine';
import { drillId, runDrill, runHeal, specDrillSettings } from './engine';
import { CLUSTER_SCENARIOS, ClusterDrillTarget } from './cluster-target';
import type { DrillTarget } from './target';
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

/** One drill on a target, recorded in the workspace's history; every change of the record also goes to onRecord. */
async function runRecordedDrill(
  target: DrillTarget,
  spec: ClusterSpec,
  env: NodeJS.ProcessEnv,
  o: { scenario: string; node: string; nextOnInterrupt: string; signal?: AbortSignal; log: (line: string) => void; onRecord?: (r: DrillRecord) => void },
): Promise<DrillRecord> {
  const settings = specDrillSettings(spec, env);
  return runDrill({
    target,
    spec,
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
}

/** Builds the namespace lab of the plan, runs the drill on it, tears the lab down. */
export async function runLabDrill(o: LabDrillRun): Promise<DrillRecord> {
  const t0 = Date.now();
  const target = await LabDrillTarget.create(o.plan, { log: o.log });
  try {
    o.log(`lab of ${o.plan.nodes.length} nodes up in ${Date.now() - t0} ms (etcd members: ${target.etcdMembers.join(', ') || 'none'})`);
    // The hub's health watcher, as on a deployed master: the drill detects through its report.
    const w0 = Date.now();
    await target.startHealthWatcher(o.spec).then(
      () => o.log(`health watcher running in ${target.hub} (first report after ${Date.now() - w0} ms)`),
      (err: Error) => o.log(`${err.message.split('\n')[0]}; the drill detects with the engine's own probes`),
    );
    return await runRecordedDrill(target, o.spec, o.env, o);
  } finally {
    target.destroy();
  }
}


// ---------------------------------------------------------------- a deployed cluster

/** The scenarios a deployed cluster runs on an etcd member (its member removed and added again). */
export const CLUSTER_ETCD_SCENARIOS: readonly ScenarioName[] = ['kill-etcd-member', 'delete-control-plane-vm'];

/**
 * Why a deployed cluster cannot run this drill (undefined: it can), from the plan alone, before
 * anything is contacted: an etcd member is drilled only by the scenarios that replace its member,
 * and only when the one quorum rule (memberRemoval) lets its member out of the planned membership.
 */
export function clusterCannotRun(p: Plan, scenario: string, node: string): string | undefined {
  if (!isScenario(scenario)) return undefined;
  if (!CLUSTER_SCENARIOS.includes(scenario)) return `${scenario} cannot run on a deployed cluster yet; it runs ${CLUSTER_SCENARIOS.join(', ')} there${LAB_SCENARIOS.includes(scenario) ? ` (and ${scenario} in the namespace lab with --lab)` : ''}`;
  const members = etcdMembersOf(p);
  if (!members.includes(node)) return undefined;
  const removal = memberRemoval(plannedEtcdHealth(members), node);
  if (!removal.ok) return `${node} is an etcd member of ${p.cluster.name} and ${removal.message}: an etcd member is drilled only when the others keep quorum without it (3 or more members); nothing was touched`;
  if (!CLUSTER_ETCD_SCENARIOS.includes(scenario)) return `${node} is an etcd member: on a deployed cluster ${scenario} is not run on etcd members yet (${CLUSTER_ETCD_SCENARIOS.join(' and ')} are); drill a node without etcd, or use --lab`;
  return undefined;
}

export interface ClusterDrillPreflight {
  /** Why the deployed cluster cannot run it now, in the user's words (undefined: it can). */
  refusal?: string;
  /** `cannot-run`: the scenario or node is not supported there; `state`: the journal or the lock refuses. */
  refusalKind?: 'cannot-run' | 'state';
  /** The scenario destroys the node's VM (it needs allowDestroy). */
  destroys: boolean;
  /** The spec itself allows it (stages.drill.allowDestroy: true); else the user must (--allow-destroy, the workbench's confirmation). */
  allowDestroyBySpec: boolean;
}

/**
 * Everything a drill on the deployed cluster is refused for before anything is touched, in the
 * order the CLI and the workbench both say it: the scenario or node the cluster cannot run yet,
 * then the journal (never deployed, unfinished, stopped) and the cluster's lock. The guard's plan
 * checks come first (drillPreflight); health, convergence and quorum run just before the fault.
 */
export function clusterDrillPreflight(p: Plan, spec: ClusterSpec, o: { specText: string; specName: string; env: NodeJS.ProcessEnv; scenario: string; node: string }): ClusterDrillPreflight {
  const destroys = isScenario(o.scenario) && SCENARIOS[o.scenario].destroysVm;
  const out: ClusterDrillPreflight = { destroys, allowDestroyBySpec: spec.spec.stages.drill?.allowDestroy === true };
  const cannot = clusterCannotRun(p, o.scenario, o.node);
  if (cannot) return { ...out, refusal: cannot, refusalKind: 'cannot-run' };
  const state = clusterStateRefusal(o.specText, o.env, o.specName, { action: 'drill' });
  if (state) return { ...out, refusal: state, refusalKind: 'state' };
  return out;
}

/** What an interrupted or failed drill on the deployed cluster tells the user to run: a heal finds the node. */
export function clusterDrillNext(heal: string, node: string): string {
  return `${heal} (it finds ${node} and finishes its repair)`;
}

export interface ClusterDrillRun {
  /** How to reach the cluster (the same request as stop/start/destroy). */
  request: LifecycleRequest;
  /** The spec file (its name in diagnostics, its path for the replacement's deploy). */
  specName: string;
  specPath?: string;
  scenario: string;
  node: string;
  /** Destroying VMs allowed (stages.drill.allowDestroy or --allow-destroy). */
  allowDestroy: boolean;
  nextOnInterrupt: string;
  log: (line: string) => void;
  onRecord?: (r: DrillRecord) => void;
  /** The replacement's deploy events (the CLI prints them like a deploy). */
  onDeployEvent?: (e: PipelineEvent) => void;
}

/** Opens the cluster's substrate, builds the target whose repairs are deploy runs of the same spec. */
function clusterTarget(req: LifecycleRequest, spec: { specName: string; specPath?: string }, allowDestroy: boolean, log: (l: string) => void, onDeployEvent?: (e: PipelineEvent) => void) {
  const opened = openCluster(req);
  const target = new ClusterDrillTarget({
    plan: opened.plan,
    driver: opened.driver,
    allowDestroy,
    log,
    repair: () => ({
      async run(onEvent, signal) {
        const prepared = prepareDeploy({ cluster: opened.plan.cluster.name, source: { name: spec.specName, text: req.specText }, ...(spec.specPath ? { specPath: spec.specPath } : {}), target: req.target, env: req.env, allowDestroy: false, by: `${req.by} (replacement)`, ...(req.sshConfigPath ? { sshConfigPath: req.sshConfigPath } : {}), ...(req.knownHostsPath ? { knownHostsPath: req.knownHostsPath } : {}), ...(req.acceptHostKey ? { acceptHostKey: req.acceptHostKey } : {}) });
        try {
          return await runPipeline(prepared.stages, { ...prepared.runOptions, onEvent: (e) => { onEvent(e); onDeployEvent?.(e); }, ...(signal ? { signal } : {}) });
        } finally {
          await prepared.close();
        }
      },
    }),
  });
  return { opened, target };
}

/**
 * Why this cluster cannot be acted on (a drill, a heal, a trust operation) from what its journal
 * says, or undefined. A heal accepts an unfinished deploy: finishing it is its job.
 */
export function clusterStateRefusal(specText: string, env: NodeJS.ProcessEnv, specName: string, o: { action: 'drill' | 'heal' | 'trust operation' | 'wiring check' }): string | undefined {
  const { plan: p } = analyse(specText);
  const workspace = clusterWorkspace(p.cluster.name, env);
  // A drill or heal repairs through a deploy run, which needs the cluster's lock: refuse before the
  // fault rather than fail at replace with the node fenced.
  const busy = o.action === 'drill' || o.action === 'heal' ? activeDeploy(workspace) : undefined;
  if (busy) return `another operation holds ${p.cluster.name}'s lock (pid ${busy.pid}, ${busy.by}, since ${busy.startedAt}): wait for it to end or stop it, then run the ${o.action}`;
  const journalPath = join(workspace, WORKSPACE_LAYOUT.journal);
  const state = convergedAndRunning(existsSync(journalPath) ? readJournal(journalPath) : [], { cluster: p.cluster.name, journalPath, spec: specName, action: `A ${o.action}` });
  if (state.ok || (o.action === 'heal' && state.code === 'unconverged')) return undefined;
  return o.action === 'heal' ? state.message : `${state.message}, then run the ${o.action}`;
}

/** Runs one drill on the deployed cluster (its VMs through the substrate driver). */
export async function runClusterDrill(o: ClusterDrillRun): Promise<DrillRecord> {
  const { opened, target } = clusterTarget(o.request, o, o.allowDestroy, o.log, o.onDeployEvent);
  try {
    return await runRecordedDrill(target, opened.spec, o.request.env, { ...o, ...(o.request.signal ? { signal: o.request.signal } : {}) });
  } finally {
    await opened.close();
  }
}

export interface ClusterHealRun {
  request: LifecycleRequest;
  specName: string;
  specPath?: string;
  allowDestroy: boolean;
  nextOnInterrupt: string;
  log: (l: string) => void;
  /** Every change of each repair's record (it is also saved in the workspace history). */
  onRecord?: (r: DrillRecord) => void;
  onDeployEvent?: (e: PipelineEvent) => void;
}

/** `kubedos heal` on the deployed cluster (and the workbench's Heal). */
export async function runClusterHeal(o: ClusterHealRun): Promise<HealResult> {
  const { opened, target } = clusterTarget(o.request, o, o.allowDestroy, o.log, o.onDeployEvent);
  try {
    const settings = specDrillSettings(opened.spec, o.request.env);
    return await runHeal({
      target,
      spec: opened.spec,
      ...settings,
      store: (r) => {
        settings.store(r);
        o.onRecord?.(structuredClone(r));
      },
      idFor: (s, n) => drillId(new Date(), `heal-${s}`, n),
      nextOnInterrupt: o.nextOnInterrupt,
      ...(o.request.signal ? { signal: o.request.signal } : {}),
      log: o.log,
    });
  } finally {
    await opened.close();
  }
}
