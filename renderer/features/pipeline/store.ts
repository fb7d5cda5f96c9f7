// Pipeline runs as the UI sees them: stage states, progress, durations, per-node states and
// the failure, folded from the batched events main streams. Log lines go to the LogBuffer.
import { createStore } from 'zustand/vanilla';
import type { FailureDetail, NodeState, PipelineEvent, StageState } from '../../../common/pipeline/events';
import { LogBuffer } from './log-buffer';
import type { LogLine } from './log-buffer';

export interface StageView {
  name: string;
  state: StageState;
  attempt: number;
  progress: number;
  message?: string;
  durationMs?: number;
  reason?: string;
  startedAt?: string;
}

export interface PipelineState {
  runId?: string;
  pipeline?: string;
  /** cancelled: the run ended with stages aborted and none failed. */
  status: 'idle' | 'starting' | 'running' | 'done' | 'failed' | 'cancelling' | 'cancelled';
  order: string[];
  stages: Record<string, StageView>;
  nodes: Record<string, { state: NodeState; stage: string; message?: string }>;
  failures: FailureDetail[];
  durationMs?: number;
  logCount: number;
  starting(): void;
  startFailed(message: string): void;
  cancelling(): void;
  ingest(events: readonly PipelineEvent[]): void;
}

export function createPipelineStore(logs: LogBuffer) {
  return createStore<PipelineState>()((set, get) => ({
    status: 'idle',
    order: [],
    stages: {},
    nodes: {},
    failures: [],
    logCount: 0,
    starting: () => set({ status: 'starting', failures: [] }),
    startFailed: (message) => set({ status: 'failed', failures: [{ message, stage: '(start)' }] }),
    cancelling: () => set({ status: 'cancelling' }),
    ingest(events) {
      const s = get();
      let { runId, pipeline, status, order, durationMs } = s;
      let stages = s.stages;
      let nodes = s.nodes;
      let failures = s.failures;
      const lines: LogLine[] = [];
      for (const e of events) {
        if (e.type === 'run') {
          // A new run replaces the previous one on screen.
          runId = e.runId;
          pipeline = e.pipeline;
          status = 'running';
          order = e.stages;
          stages = Object.fromEntries(e.stages.map((n) => [n, { name: n, state: 'pending' as StageState, attempt: 0, progress: 0 }]));
          nodes = {};
          failures = [];
          durationMs = undefined;
          logs.clear();
          continue;
        }
        if (e.runId !== runId) continue;
        switch (e.type) {
          case 'stage': {
            const prev = stages[e.stage] ?? { name: e.stage, state: 'pending', attempt: 0, progress: 0 };
            stages = {
              ...stages,
              [e.stage]: {
                ...prev,
                state: e.state,
                attempt: e.attempt,
                ...(e.state === 'running' ? { startedAt: e.time } : {}),
                ...(e.state === 'success' ? { progress: 1 } : {}),
                ...(e.durationMs !== undefined ? { durationMs: e.durationMs } : {}),
                ...(e.reason !== undefined ? { reason: e.reason } : {}),
              },
            };
            break;
          }
          case 'progress': {
            const prev = stages[e.stage] ?? { name: e.stage, state: 'running', attempt: 0, progress: 0 };
            stages = { ...stages, [e.stage]: { ...prev, progress: e.fraction, ...(e.message !== undefined ? { message: e.message } : {}) } };
            break;
          }
          case 'node': {
            // A later stage that skips a node (workload without Kubernetes packages) does not
            // undo what the node already is: a converged node stays ok, a failed one failed.
            const prev = nodes[e.node];
            if (e.state === 'skipped' && prev && (prev.state === 'ok' || prev.state === 'failed')) {
              nodes = { ...nodes, [e.node]: { ...prev, message: `${e.stage} skipped${e.message ? `: ${e.message}` : ''}` } };
              break;
            }
            nodes = { ...nodes, [e.node]: { state: e.state, stage: e.stage, ...(e.message !== undefined ? { message: e.message } : {}) } };
            break;
          }
          case 'log':
            lines.push({ seq: e.seq, runId: e.runId, stage: e.stage, ...(e.node !== undefined ? { node: e.node } : {}), stream: e.stream, line: e.line, time: e.time });
            break;
          case 'failed':
            failures = [...failures, e.error];
            break;
          case 'done':
            durationMs = e.durationMs;
            {
              const states = Object.values(e.summary);
              status = states.includes('failed') ? 'failed' : states.includes('aborted') ? 'cancelled' : 'done';
            }
            break;
          case 'checkpoint':
            break;
        }
      }
      logs.append(lines);
      set({ runId, pipeline, status, order, stages, nodes, failures, durationMs, logCount: logs.size });
    },
  }));
}

export const pipelineLogs = new LogBuffer();
export const pipelineStore = createPipelineStore(pipelineLogs);
