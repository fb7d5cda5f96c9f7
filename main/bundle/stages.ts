// stages.json: the sealing run as the journal recorded it, joined with the stage summaries the
// deploy context collected. Only journal times appear (never the clock at sealing), so the
// same journal and summaries always give the same bytes.
import type { PipelineEvent } from '../../common/pipeline/events';
import type { StageRecord, StagesRecord } from './schema';

export interface StageSummaryInput {
  stage: string;
  changes: number;
  notes: string[];
}

/** The run's final state per stage (last `stage` event of that run), in pipeline order; a stage's
 * summary (from the deploy context) adds its notes and, when given, its change count. */
export function stagesRecord(events: readonly PipelineEvent[], runId: string | undefined, summaries: Readonly<Record<string, StageSummaryInput>>): StagesRecord {
  const records = new Map<string, StageRecord>();
  let order: string[] = [];
  let pipeline: string | undefined;
  let startedAt: string | undefined;
  if (runId !== undefined) {
    for (const e of events) {
      if (e.runId !== runId) continue;
      if (e.type === 'run') {
        order = [...e.stages];
        pipeline = e.pipeline;
        startedAt = e.time;
      } else if (e.type === 'stage') {
        records.set(e.stage, {
          stage: e.stage,
          state: e.state,
          rerun: e.rerun,
          attempt: e.attempt,
          ...(e.reason !== undefined ? { reason: e.reason } : {}),
          ...(e.inputHash !== undefined ? { inputHash: e.inputHash } : {}),
          ...(e.changes !== undefined ? { changes: e.changes } : {}),
        });
      }
    }
  }
  for (const [name, s] of Object.entries(summaries)) {
    records.set(name, { ...(records.get(name) ?? { stage: name }), changes: s.changes, notes: [...s.notes] });
  }
  const known = new Set(order);
  const rest = [...records.keys()].filter((n) => !known.has(n)).sort();
  const stages = [...order, ...rest].map((n) => records.get(n)).filter((r): r is StageRecord => r !== undefined);
  return {
    ...(runId !== undefined ? { runId } : {}),
    ...(pipeline !== undefined ? { pipeline } : {}),
    ...(startedAt !== undefined ? { startedAt } : {}),
    stages,
  };
}
