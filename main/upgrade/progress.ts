// The upgrade progress the workbench's Pipeline view shows: the foundry's slot record of the
// cluster (apply-run.ts keeps it; nothing is contacted) read as common/upgrade/progress.ts says,
// per node of the plan. No record: nothing to show (no upgrade has run from this workspace).
import { existsSync } from 'node:fs';
import type { UpgradeProgress } from '../../common/upgrade/progress';
import { upgradeProgress } from '../../common/upgrade/progress';
import { readUpgradeRecord, upgradeRecordPath } from './apply-run';

/** `progress` when a record exists; `error` (what to do included) when it cannot be read; neither when none exists. */
export function readUpgradeProgress(cluster: string, planNodes: readonly string[], env: NodeJS.ProcessEnv = process.env): { progress?: UpgradeProgress; error?: string } {
  const path = upgradeRecordPath(cluster, env);
  if (!existsSync(path)) return {};
  try {
    return { progress: upgradeProgress(cluster, planNodes, readUpgradeRecord(path)) };
  } catch (err) {
    // readUpgradeRecord's message names the file and what to do; JSON.parse's does not.
    const m = (err as Error).message.split('\n')[0] ?? '';
    return { error: m.startsWith(path) ? m : `${path}: the upgrade record cannot be read (${m}); restore it from a backup: it says what each node's slots hold` };
  }
}
