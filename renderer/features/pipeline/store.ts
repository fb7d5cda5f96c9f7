// Pipeline runs as the UI sees them: stage states, progress, durations, per-node states and
// the failure, folded from the batched events main streams. Log lines go to the LogBuffer.
import { createStore } from 'zustand/vanilla';
import type { PipelineEvent } from '../../../common/pipeline/events';
import type { RunStatus, RunView } from '../../../common/pipeline/fold';
import { EMPTY_RUN, foldEvent } from '../../../common/pipeline/fold';
import { LogBuffer } from './log-buffer';
import type { LogLine } from './log-buffer';

export type { StageView } from '../../../common/pipeline/fold';

export interface PipelineState extends Omit<RunView, 'status'> {
  /** The run as folded (common/pipeline/fold.ts), plus what only the UI knows: a start asked
   * for and not answered yet, a cancel asked for. cancelled: the run ended with stages aborted
   * and none failed. */
  status: Exclude<RunStatus, 'idle'> | 'idle' | 'starting' | 'cancelling';
  run: RunView;
  logCount: number;
  starting(): void;
  startFailed(message: string): void;
  cancelling(): void;
  ingest(events: readonly PipelineEvent[]): void;
}

export function createPipelineStore(logs: LogBuffer) {
  return createStore<PipelineState>()((set, get) => ({
    ...EMPTY_RUN,
    run: EMPTY_RUN,
    logCount: 0,
    starting: () => set({ status: 'starting', failures: [] }),
    startFailed: (message) => set({ status: 'failed', failures: [{ message, stage: '(start)' }] }),
    cancelling: () => set({ status: 'cancelling' }),
    ingest(events) {
      const s = get();
      let run = s.run;
      const lines: LogLine[] = [];
      for (const e of events) {
        const next = foldEvent(run, e);
        // A new run replaces the previous one on screen, its log lines too.
        if (e.type === 'run') logs.clear();
        else if (e.type === 'log' && next.runId === e.runId) {
          lines.push({ seq: e.seq, runId: e.runId, stage: e.stage, ...(e.node !== undefined ? { node: e.node } : {}), stream: e.stream, line: e.line, time: e.time });
        }
        run = next;
      }
      logs.append(lines);
      if (run === s.run) {
        if (lines.length) set({ logCount: logs.size });
        return;
      }
      // The UI's own states (starting, cancelling) hold until the run itself says otherwise.
      const status = run.status !== s.run.status || run.runId !== s.run.runId ? run.status : s.status;
      // Likewise a start that failed keeps its failure until the run reports one of its own.
      const failures = run.failures !== s.run.failures ? run.failures : s.failures;
      const { runId, pipeline, startedAt, order, stages, nodes, durationMs, summary } = run;
      // Every field named, so a new run's absent duration clears the previous run's.
      set({ runId, pipeline, startedAt, order, stages, nodes, failures, durationMs, summary, status, run, logCount: logs.size });
    },
  }));
}

export const pipelineLogs = new LogBuffer();
export const pipelineStore = createPipelineStore(pipelineLogs);
