// Drill records in the workspace: <ws>/clusters/<name>/drills/<id>.json, private modes, written
// atomically after every phase change (the record doubles as the drill's journal).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DrillRecord } from '../../common/drills/timeline';
import { DrillRecord as DrillRecordSchema } from '../../common/drills/timeline';
import { clusterWorkspace, ensureClusterWorkspace, makePrivateDir, writePrivateFile } from '../workspace';

export const DRILLS_DIR = 'drills';

export function drillsDir(cluster: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(clusterWorkspace(cluster, env), DRILLS_DIR);
}

export function saveDrillRecord(r: DrillRecord, env: NodeJS.ProcessEnv = process.env): string {
  ensureClusterWorkspace(r.cluster, env);
  const dir = makePrivateDir(drillsDir(r.cluster, env));
  const path = join(dir, `${r.id}.json`);
  writePrivateFile(path, `${JSON.stringify(DrillRecordSchema.parse(r), null, 2)}\n`);
  return path;
}

export interface DrillHistory {
  records: DrillRecord[];
  /** Files that are not valid drill records (name and why), at most a few. */
  unreadable: { file: string; error: string }[];
  unreadableCount: number;
}

export function readDrillHistory(cluster: string, env: NodeJS.ProcessEnv = process.env): DrillHistory {
  const dir = drillsDir(cluster, env);
  const out: DrillHistory = { records: [], unreadable: [], unreadableCount: 0 };
  if (!existsSync(dir)) return out;
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.json')).sort()) {
    try {
      out.records.push(DrillRecordSchema.parse(JSON.parse(readFileSync(join(dir, f), 'utf8'))));
    } catch (err) {
      out.unreadableCount++;
      if (out.unreadable.length < 3) out.unreadable.push({ file: f, error: (err as Error).message.split('\n')[0] ?? '' });
    }
  }
  out.records.sort((a, b) => a.startedAtMs - b.startedAtMs || a.id.localeCompare(b.id));
  return out;
}
