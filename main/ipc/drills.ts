// The workbench's binding of the drill service (main/drills/service.ts): the same preflight and
// runs as `kubedos drill` — on the namespace lab (`--lab`) or on the deployed cluster, with the
// CLI's refusals (clusterDrillPreflight) — and `kubedos heal`; the records streamed on
// drills.events at every phase change, one drill or heal at a time, cancellable (a deployed
// cluster is then left healing and the record says what to run); and the report export of
// `kubedos drill --history --export`.
import type { RequestParsed, ResultOf } from '../../common/contract/index';
import type { DrillEvent } from '../../common/drills/live';
import { drillReport, drillReportHtml, drillReportJson } from '../../common/drills/report';
import type { DrillRecord } from '../../common/drills/timeline';
import type { AnalysedSpec } from '../deploy/service';
import { DeployRequestError, analyse } from '../deploy/service';
import { readDrillHistory } from '../drills/history';
import type { HealResult } from '../drills/engine';
import type { ClusterDrillRun, ClusterHealRun, LabDrillRun } from '../drills/service';
import { clusterDrillNext, clusterDrillPreflight, clusterStateRefusal, drillPreflight, eligibleTargets, guardNodes, LAB_NEEDS_ROOT, runClusterDrill, runClusterHeal, runLabDrill } from '../drills/service';
import type { LifecycleRequest } from '../lifecycle/service';
import type { PipelineEvent } from '../../common/pipeline/events';

/** What the workbench says when a drill it started stops early: the lab went with it. */
export const WORKBENCH_NEXT = 'the namespace lab was removed when the drill stopped, so nothing stays fenced; run the drill again';

/** What the workbench tells the user to run after a drill on the deployed cluster stopped early. */
export const WORKBENCH_CLUSTER_HEAL = 'Heal in the Drills view (or kubedos heal SPEC)';

/** The spec's name in the journal's refusals: the workbench holds its text, not a file the user named. */
const SPEC_NAME = 'SPEC';

export interface DrillBinding {
  env: NodeJS.ProcessEnv;
  emit: (events: DrillEvent[]) => void;
  /** How the deployed cluster is reached (as for stop/start/destroy). */
  sshConfigPath?: string;
  knownHostsPath?: string;
  /** Runs a drill whose preflight passed; default: the namespace lab (runLabDrill). */
  runner?: (o: LabDrillRun) => Promise<DrillRecord>;
  /** Runs a drill on the deployed cluster; default runClusterDrill (tests inject an in-memory one). */
  clusterRunner?: (o: ClusterDrillRun) => Promise<DrillRecord>;
  /** Heals the deployed cluster; default runClusterHeal. */
  healRunner?: (o: ClusterHealRun) => Promise<HealResult>;
  controller?: AbortController;
  running?: Promise<unknown>;
}

export function drillCheck(b: Pick<DrillBinding, 'env'>, r: RequestParsed<'drills.check'>): ResultOf<'drills.check'> {
  const { spec, plan: p } = analyse(r.text);
  const pre = drillPreflight(p, r.scenario, r.node);
  const base = { scenario: pre.scenario, ...(pre.node ? { node: pre.node } : {}), eligible: eligibleTargets(r.scenario, guardNodes(p)), reasons: pre.reasons };
  if (r.where !== 'cluster') return { ...base, where: 'lab', ...(pre.cannotRun ? { cannotRun: pre.cannotRun } : {}) };
  if (!pre.node || pre.reasons.length) return { ...base, where: 'cluster' };
  const c = clusterDrillPreflight(p, spec, { specText: r.text, specName: SPEC_NAME, env: b.env, scenario: r.scenario, node: pre.node });
  const cannotRun = c.refusal ?? (r.target ? undefined : 'choose where the cluster runs (qemu-local or a Proxmox host) in Deploy first');
  return { ...base, where: 'cluster', destroys: c.destroys, allowDestroyBySpec: c.allowDestroyBySpec, ...(cannotRun ? { cannotRun } : {}) };
}

/** One drill or heal at a time; the run's abort signal and its end. */
function track<T>(b: DrillBinding, start: (signal: AbortSignal) => Promise<T>): Promise<T> {
  if (b.running) throw new DeployRequestError('drills.busy', 'a drill or heal is already running in this workbench', 'wait for it to end or stop it');
  const controller = new AbortController();
  b.controller = controller;
  const run = start(controller.signal);
  b.running = run;
  return run.finally(() => {
    b.running = undefined;
    b.controller = undefined;
  });
}

/** The deployed cluster's request, as stop/start/destroy send it; the replacement's deploy log goes to the drill's log. */
function clusterRequest(b: DrillBinding, text: string, target: LifecycleRequest['target'], signal: AbortSignal, by: string): LifecycleRequest {
  return { specText: text, target, env: b.env, by, signal, ...(b.sshConfigPath ? { sshConfigPath: b.sshConfigPath } : {}), ...(b.knownHostsPath ? { knownHostsPath: b.knownHostsPath } : {}) };
}

/** Streams a run's records and log lines on drills.events (log lines belong to the record last seen). */
function streamer(b: DrillBinding) {
  let current: string | undefined;
  const log = (line: string): void => {
    if (current) b.emit([{ type: 'log', id: current, line: line.slice(0, 4000) }]);
  };
  return {
    log,
    onRecord: (rec: DrillRecord) => {
      current = rec.id;
      b.emit([{ type: 'record', record: rec }]);
    },
    // The replacement's deploy run: its log lines, not every command it ran (the CLI without --verbose).
    onDeployEvent: (e: PipelineEvent) => {
      if (e.type === 'log' && !e.line.startsWith('$ ')) log(`  ${e.line}`);
    },
  };
}

async function drillRunCluster(b: DrillBinding, r: RequestParsed<'drills.run'>, p: AnalysedSpec['plan'], spec: AnalysedSpec['spec']): Promise<DrillRecord> {
  const c = clusterDrillPreflight(p, spec, { specText: r.text, specName: SPEC_NAME, env: b.env, scenario: r.scenario, node: r.node });
  if (c.refusal) throw new DeployRequestError('drills.refused', `${c.refusalKind === 'state' ? 'refused: ' : ''}${c.refusal}; nothing was touched`, c.refusalKind === 'state' ? 'deploy or start the cluster, or wait for the operation holding it' : 'pick another node or scenario, or run it on the namespace lab');
  if (!r.target) throw new DeployRequestError('drills.target', 'no target given for the deployed cluster; nothing was touched', 'choose where the cluster runs (qemu-local or a Proxmox host) in Deploy first');
  const target = r.target;
  return track(b, (signal) => {
    const s = streamer(b);
    return (b.clusterRunner ?? runClusterDrill)({
      request: clusterRequest(b, r.text, target, signal, 'workbench drill'),
      specName: SPEC_NAME,
      scenario: r.scenario,
      node: r.node,
      // The workbench's confirmation (the cluster's name typed) stands for --allow-destroy.
      allowDestroy: r.allowDestroy === true || c.allowDestroyBySpec,
      nextOnInterrupt: clusterDrillNext(WORKBENCH_CLUSTER_HEAL, r.node),
      ...s,
    });
  });
}

export async function drillHeal(b: DrillBinding, r: RequestParsed<'drills.heal'>): Promise<ResultOf<'drills.heal'>> {
  const why = clusterStateRefusal(r.text, b.env, SPEC_NAME, { action: 'heal' });
  if (why !== undefined) throw new DeployRequestError('drills.refused', `refused: ${why}; nothing was touched`, 'deploy or start the cluster, or wait for the operation holding it');
  const res = await track(b, (signal) => {
    const s = streamer(b);
    return (b.healRunner ?? runClusterHeal)({
      request: clusterRequest(b, r.text, r.target, signal, 'workbench heal'),
      specName: SPEC_NAME,
      // A heal never destroys: it starts a stopped VM or creates a missing one in its slot.
      allowDestroy: false,
      nextOnInterrupt: `${WORKBENCH_CLUSTER_HEAL} again (it finds what is still unhealthy)`,
      ...s,
    });
  });
  return { before: res.before, records: res.records, cannot: res.cannot };
}

export async function drillRun(b: DrillBinding, r: RequestParsed<'drills.run'>): Promise<DrillRecord> {
  if (b.running) throw new DeployRequestError('drills.busy', 'a drill or heal is already running in this workbench', 'wait for it to end or stop it');
  const { spec, plan: p } = analyse(r.text);
  const pre = drillPreflight(p, r.scenario, r.node);
  if (pre.reasons.length) throw new DeployRequestError('drills.refused', `refused: ${pre.reasons.map((x) => x.message).join('; ')}`, 'pick another node or scenario');
  if (r.where === 'cluster') return drillRunCluster(b, r, p, spec);
  // An injected runner (tests: in memory) needs no root; the lab does.
  if (pre.cannotRun && !(b.runner && pre.cannotRun === LAB_NEEDS_ROOT)) throw new DeployRequestError('drills.cannot-run', pre.cannotRun, 'run it from the command line as root: kubedos drill SPEC --scenario NAME --lab');
  return track(b, (signal) => {
    const { log, onRecord } = streamer(b);
    return (b.runner ?? runLabDrill)({ plan: p, spec, scenario: r.scenario, node: r.node, env: b.env, nextOnInterrupt: WORKBENCH_NEXT, signal, log, onRecord });
  });
}

export function drillCancel(b: DrillBinding): { cancelled: boolean } {
  if (!b.controller) return { cancelled: false };
  b.controller.abort(new Error('stopped from the workbench'));
  return { cancelled: true };
}

export function drillReportOf(cluster: string, env: NodeJS.ProcessEnv): ResultOf<'drills.report'> {
  const h = readDrillHistory(cluster, env);
  const report = drillReport(cluster, h.records);
  return { json: drillReportJson(report), html: drillReportHtml(report), drills: h.records.length };
}
