// The upgrade progress the workbench's Pipeline view shows: the foundry's slot record of the
// cluster (apply-run.ts keeps it; nothing is contacted) read as common/upgrade/progress.ts says,
// per node of the plan, and the live run beside it (upgrade/live.json, kept by apply-run.ts while
// `kubedos upgrade` runs): running, finished, or gone (its process died: it was interrupted).
// Neither file: nothing to show (no upgrade has run from this workspace).
import { existsSync, readFileSync } from 'node:fs';
import type { UpgradeLiveReport, UpgradeProgress } from '../../common/upgrade/progress';
import { UpgradeLive, upgradeProgress } from '../../common/upgrade/progress';
import { processAlive } from '../workspace';
import { readUpgradeRecord, upgradeLivePath, upgradeRecordPath } from './apply-run';
import { readBuildRef, runningBuildDir } from './preflight';

/** The artifactVersion of the build the cluster runs (its sealed deploy's, or its last completed upgrade's: runningBuildDir); undefined when there is none or it cannot be read. */
function runningVersion(cluster: string, env: NodeJS.ProcessEnv): string | undefined {
  try {
    return readBuildRef(runningBuildDir(cluster, env)).version;
  } catch {
    return undefined;
  }
}

/** The live file as upgrade.progress reports it; undefined when there is none. Throws (naming the file) when it does not parse. */
export function readUpgradeLive(path: string, alive: (pid: number) => boolean = processAlive): UpgradeLiveReport | undefined {
  if (!existsSync(path)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`${path}: the live upgrade file cannot be read (${(err as Error).message.split('\n')[0] ?? ''}); it is rewritten by the next kubedos upgrade`, { cause: err });
  }
  const parsed = UpgradeLive.safeParse(raw);
  if (!parsed.success) throw new Error(`${path}: the live upgrade file does not parse (${parsed.error.issues[0]?.message ?? 'invalid'}); it is rewritten by the next kubedos upgrade`);
  const run = parsed.data;
  if (run.end) return { state: 'finished', run };
  if (alive(run.pid)) return { state: 'running', run };
  const at = run.current ? ` at ${run.current}${run.nodes[run.current] ? ` (${run.nodes[run.current]!.detail})` : ''}` : '';
  const rerun = run.kind === 'upgrade' ? `rerun kubedos upgrade with the ${run.target.version} build to continue, or kubedos upgrade --rollback` : 'rerun kubedos upgrade --rollback to continue';
  return { state: 'gone', run, message: `the ${run.kind} process (pid ${run.pid}) is gone: it was interrupted${at}; ${rerun}` };
}

/** `progress` when a record (or a live run) exists; `live` when a live file exists; `error` (what to do included) when one cannot be read. */
export function readUpgradeProgress(
  cluster: string,
  planNodes: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  alive: (pid: number) => boolean = processAlive,
): { progress?: UpgradeProgress; live?: UpgradeLiveReport; error?: string } {
  const path = upgradeRecordPath(cluster, env);
  const errors: string[] = [];
  let live: UpgradeLiveReport | undefined;
  try {
    live = readUpgradeLive(upgradeLivePath(cluster, env), alive);
  } catch (err) {
    errors.push((err as Error).message);
  }
  let progress: UpgradeProgress | undefined;
  // A run whose first write has not finished has no record yet: every node holds N on both slots.
  if (existsSync(path) || live) {
    try {
      progress = upgradeProgress(cluster, planNodes, readUpgradeRecord(path), runningVersion(cluster, env));
    } catch (err) {
      // readUpgradeRecord's message names the file and what to do; JSON.parse's does not.
      const m = (err as Error).message.split('\n')[0] ?? '';
      errors.unshift(m.startsWith(path) ? m : `${path}: the upgrade record cannot be read (${m}); restore it from a backup: it says what each node's slots hold`);
    }
  }
  return { ...(progress ? { progress } : {}), ...(live ? { live } : {}), ...(errors.length ? { error: errors.join('\n') } : {}) };
}
