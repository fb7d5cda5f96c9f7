// Where the lifecycle leaves its record: stop and start are journaled in the cluster's own
// journal; a destroy that removes the workspace journals into the cluster's recovery folder
// (<workspace root>/recovery/<cluster>/), next to the trust material it exported first, so
// `kubedos status` can still say "destroyed at …" and a restore stays possible.
import { join } from 'node:path';
import { foldRun } from '../../common/pipeline/fold';
import type { PipelineEvent } from '../../common/pipeline/events';
import { workspaceRoot } from '../workspace';

export const LIFECYCLE_ACTIONS = ['stop', 'start', 'destroy'] as const;
export type LifecycleAction = (typeof LIFECYCLE_ACTIONS)[number];

/** The cluster's recovery folder: survives a destroy (trust export, destroy journal). */
export function recoveryDir(cluster: string, env: NodeJS.ProcessEnv = process.env): string {
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(cluster)) throw new Error(`invalid cluster name: ${JSON.stringify(cluster)}`);
  return join(workspaceRoot(env), 'recovery', cluster);
}

export interface LifecycleRecord {
  action: LifecycleAction;
  runId: string;
  startedAt: string;
  /** When it finished (done or failed event); absent when it was interrupted. */
  finishedAt?: string;
  ok: boolean;
  /** First failure message, when it failed. */
  failure?: string;
}

/** Pure: the last stop/start/destroy run in a journal's events. */
export function lastLifecycle(events: readonly PipelineEvent[]): LifecycleRecord | undefined {
  let rec: LifecycleRecord | undefined;
  for (const e of events) {
    if (e.type === 'run') {
      rec = (LIFECYCLE_ACTIONS as readonly string[]).includes(e.pipeline) ? { action: e.pipeline as LifecycleAction, runId: e.runId, startedAt: e.time, ok: false } : rec;
      continue;
    }
    if (!rec || e.runId !== rec.runId) continue;
    if (e.type === 'done') {
      rec.finishedAt = e.time;
      rec.ok = Object.values(e.summary).every((s) => s === 'success');
    } else if (e.type === 'failed') {
      rec.finishedAt = e.time;
      rec.failure ??= e.error.message;
    }
  }
  return rec;
}

/** The id of the last run that is not a stop/start/destroy (the last deploy). */
export function lastDeployRun(events: readonly PipelineEvent[]): string | undefined {
  let id: string | undefined;
  for (const e of events) if (e.type === 'run' && !(LIFECYCLE_ACTIONS as readonly string[]).includes(e.pipeline)) id = e.runId;
  return id;
}

const PAST: Record<LifecycleAction, string> = { stop: 'stopped', start: 'started', destroy: 'destroyed' };

/** "stopped at 2026-12-02T14:01:00Z", "destroy failed at …", "start interrupted (started …)". */
export function describeLifecycle(r: LifecycleRecord): string {
  if (!r.finishedAt) return `${r.action} did not finish (started ${r.startedAt}): run it again to finish`;
  if (r.ok) return `${PAST[r.action]} at ${r.finishedAt}`;
  return `${r.action} failed at ${r.finishedAt}${r.failure ? `: ${r.failure.split('\n')[0]}` : ''}`;
}

/**
 * Pure: is the cluster converged and running, from its journal? The last deploy finished, and no
 * stop or destroy came after it (a start after it must have succeeded). Upgrades and drills start
 * only from there; `action` is what the caller wants to do, for the messages.
 */
export function convergedAndRunning(events: readonly PipelineEvent[], o: { cluster: string; journalPath: string; spec: string; action: string }): { ok: true; note: string } | { ok: false; code: 'never-deployed' | 'unconverged' | 'not-running'; message: string } {
  const deployRun = lastDeployRun(events);
  if (!deployRun) return { ok: false, code: 'never-deployed', message: `${o.cluster} has no deploy in its journal (${o.journalPath}): deploy it first (kubedos deploy ${o.spec})` };
  const run = foldRun(events, undefined, { onlyRun: deployRun });
  if (run.status !== 'done') {
    const f = run.failures[0];
    const why = run.status === 'running' ? 'did not finish (interrupted, or still running)' : f ? `failed in ${f.stage}${f.node ? ` on ${f.node}` : ''}: ${f.message.split('\n')[0]}` : `ended ${run.status}`;
    return { ok: false, code: 'unconverged', message: `${o.cluster} is not converged: its last deploy (run ${deployRun.slice(0, 8)}) ${why}. ${o.action} starts from a converged cluster: run kubedos deploy ${o.spec} until it finishes` };
  }
  const lifecycle = lastLifecycle(events);
  const after = lifecycle && run.startedAt !== undefined && lifecycle.startedAt >= run.startedAt;
  if (lifecycle && after && lifecycle.action !== 'start') return { ok: false, code: 'not-running', message: `${o.cluster} is not running: ${describeLifecycle(lifecycle)}. Start it first (kubedos start ${o.spec})` };
  if (lifecycle && after && !lifecycle.ok) return { ok: false, code: 'not-running', message: `${o.cluster} did not start cleanly: ${describeLifecycle(lifecycle)}. Run kubedos start ${o.spec} again` };
  return { ok: true, note: `the last deploy (run ${deployRun.slice(0, 8)}) finished${lifecycle && after ? `; ${describeLifecycle(lifecycle)}` : ''}` };
}
