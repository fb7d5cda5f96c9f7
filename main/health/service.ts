// "Cluster health now" (common/health/now.ts): the one engine call behind `kubedos status
// --health` and the workbench's health.now channel. The journal first: a cluster never deployed
// from this machine, stopped or destroyed is not contacted, and the answer says so; otherwise the
// guest agents are pinged and the hub's watcher report is read (through the substrate,
// main/drills/watcher-report.ts) and folded into per-node states. Never throws for an unreachable cluster: the answer says why.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterHealthNow } from '../../common/health/now';
import { foldClusterHealth } from '../../common/health/now';
import { hubOf } from '../../common/plan/index';
import { analyse } from '../deploy/service';
import type { HubHealthRequest, HubReading } from '../drills/watcher-report';
import { readHubAndAgents } from '../drills/watcher-report';
import { convergedAndRunning, describeLifecycle, lastLifecycle, recoveryDir } from '../lifecycle/record';
import { readJournal } from '../pipeline/journal';
import { clusterWorkspace, WORKSPACE_LAYOUT } from '../workspace';

/** The hub request's connection fields (target, env, SSH files, signal, timeout); the spec as text, named as the user calls it. */
export type HealthNowRequest = Omit<HubHealthRequest, 'specPath' | 'specText' | 'driver'> & {
  specText: string;
  /** How the spec is named in the messages ("kubedos deploy SPEC"). */
  specName?: string;
};

/** Pings the guest agents and reads the hub's watcher report; the default goes through the substrate. Tests inject one. */
export type HubHealthReader = (q: HubHealthRequest) => Promise<HubReading>;

export interface HealthNow {
  live: ClusterHealthNow;
  /** The watcher's report as read (absent when the journal says there is nothing to read). */
  watcher?: HubReading['status'];
}

/** Whether this machine's journal allows reading the cluster's health, and if not, why (nothing is contacted). */
export function healthRefusal(cluster: string, env: NodeJS.ProcessEnv, specName: string): { code: 'never-deployed' | 'not-running'; message: string } | undefined {
  const journalPath = join(clusterWorkspace(cluster, env), WORKSPACE_LAYOUT.journal);
  if (!existsSync(journalPath)) {
    const last = lastLifecycle(readJournal(join(recoveryDir(cluster, env), WORKSPACE_LAYOUT.journal)));
    if (last?.action === 'destroy') return { code: 'not-running', message: `${cluster} is not running: ${describeLifecycle(last)}` };
    return { code: 'never-deployed', message: `${cluster} was never deployed from this machine (no journal at ${journalPath}): deploy it first (kubedos deploy ${specName})` };
  }
  const state = convergedAndRunning(readJournal(journalPath), { cluster, journalPath, spec: specName, action: 'Reading its health' });
  if (state.ok || state.code === 'unconverged') return undefined; // an unfinished deploy may still have a hub that answers
  return { code: state.code, message: state.message };
}

export async function clusterHealthNow(req: HealthNowRequest, o: { reader?: HubHealthReader; nowSeconds?: () => number } = {}): Promise<HealthNow> {
  const { plan } = analyse(req.specText);
  const base = { cluster: plan.cluster.name, hub: hubOf(plan).name, nodes: plan.nodes.map((n) => ({ name: n.name })) };
  const now = o.nowSeconds ?? (() => Date.now() / 1000);
  const refused = healthRefusal(plan.cluster.name, req.env, req.specName ?? 'SPEC');
  if (refused) return { live: foldClusterHealth({ ...base, nowSeconds: now(), refused }) };
  const { specName: _name, ...rest } = req;
  const reading = await (o.reader ?? readHubAndAgents)(rest);
  return { live: foldClusterHealth({ ...base, nowSeconds: now(), status: reading.status, ...(reading.agents ? { agents: reading.agents } : {}) }), watcher: reading.status };
}

/** Reads of one cluster on one target in flight now (shared by every caller of sharedClusterHealthNow). */
const inFlight = new Map<string, Promise<HealthNow>>();

/**
 * clusterHealthNow, but overlapping reads of the same cluster on the same target (two workbench
 * windows, a window and its Refresh button) share the one read in flight instead of contacting
 * the hub again: the engine reads at most once at a time per cluster and target.
 */
export function sharedClusterHealthNow(req: HealthNowRequest, o: { reader?: HubHealthReader; nowSeconds?: () => number } = {}): Promise<HealthNow> {
  // The workspace is part of the key: its journal decides whether the hub is contacted at all.
  const key = JSON.stringify([req.env.KUBEDOS_WORKSPACE ?? '', req.env.HOME ?? '', req.target, req.specText]);
  const running = inFlight.get(key);
  if (running) return running;
  const read = clusterHealthNow(req, o).finally(() => inFlight.delete(key));
  inFlight.set(key, read);
  return read;
}
