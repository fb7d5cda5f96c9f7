// stages.json: the sealing run as the journal recorded it, joined with the stage summaries the
// deploy context collected. Only journal times appear (never the clock at sealing), so the
// same journal and summaries always give the same bytes.
import type { PipelineEvent } from '../../common/pipeline/events';
import { EMPTY_RUN, foldRun } from '../../common/pipeline/fold';
import type { StageRecord, StagesRecord } from './schema';

export interface StageSummaryInput {
  stage: string;
  changes: number;
  notes: string[];
}

/** The run's final state per stage (last `stage` event of that run), in pipeline order; a stage's
 * summary (from the deploy context) adds its notes and, when given, its change count. */
export function stagesRecord(events: readonly PipelineEvent[], runId: string | undefined, summaries: Readonly<Record<string, StageSummaryInput>>): StagesRecord {
  const run = runId !== undefined ? foldRun(events, EMPTY_RUN, { onlyRun: runId }) : EMPTY_RUN;
  const records = new Map<string, StageRecord>();
  for (const name of run.order) {
    const v = run.stages[name];
    // Only stages the journal has a stage event for (a stage event always carries the rerun class).
    if (!v?.rerun) continue;
    records.set(name, {
      stage: name,
      state: v.state,
      rerun: v.rerun,
      attempt: v.attempt,
      ...(v.reason !== undefined ? { reason: v.reason } : {}),
      ...(v.inputHash !== undefined ? { inputHash: v.inputHash } : {}),
      ...(v.changes !== undefined ? { changes: v.changes } : {}),
    });
  }
  for (const [name, s] of Object.entries(summaries)) {
    records.set(name, { ...(records.get(name) ?? { stage: name }), changes: s.changes, notes: [...s.notes] });
  }
  const known = new Set(run.order);
  const rest = [...records.keys()].filter((n) => !known.has(n)).sort();
  const stages = [...run.order, ...rest].map((n) => records.get(n)).filter((r): r is StageRecord => r !== undefined);
  return {
    ...(runId !== undefined ? { runId } : {}),
    ...(run.pipeline !== undefined ? { pipeline: run.pipeline } : {}),
    ...(run.startedAt !== undefined ? { startedAt: run.startedAt } : {}),
    stages,
  };
}
