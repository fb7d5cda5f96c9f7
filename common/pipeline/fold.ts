// One reading of a pipeline run from its events — what the CLI's progress block, the renderer's
// pipeline view and the recovery bundle's stages.json each show. Pure and immutable: folding an
// event returns a new RunView when it changed something and the same object when it did not
// (log and checkpoint events), so a zustand store can hand it to React as is.
//
// Rules, written once:
//  - a `run` event starts a new run and replaces the previous one (unless `onlyRun` names
//    another run); every other event belongs to the current run or is ignored;
//  - a stage keeps its last state, attempt, rerun class, reason, duration, change count and input
//    hash; success means progress 1; `startedAt` is the journal time it last started running;
//  - per node: the last state, except that a later stage skipping a node (workload without
//    Kubernetes packages) does not undo what the node already is — ok stays ok, failed stays
//    failed, with the skip noted in the message;
//  - `done` settles the run: failed if any stage failed, cancelled if any was aborted, else done.
import type { FailureDetail, NodeState, PipelineEvent, RerunClass, StageState } from './events';

export interface NodeView {
  state: NodeState;
  /** The stage that last set the node's state. */
  stage: string;
  message?: string;
}

export interface StageView {
  name: string;
  state: StageState;
  attempt: number;
  /** 0..1; 1 once the stage succeeded. */
  progress: number;
  /** From the stage's `stage` events; absent until the first one (a stage only announced by `run`). */
  rerun?: RerunClass;
  message?: string;
  /** Journal time of the last `running` event. */
  startedAt?: string;
  durationMs?: number;
  reason?: string;
  /** On success: changes made (0 = unchanged); absent when the stage does not count. */
  changes?: number;
  inputHash?: string;
  /** The nodes this stage reported on, with what it reported last. */
  nodes: Record<string, { state: NodeState; message?: string }>;
}

export type RunStatus = 'idle' | 'running' | 'done' | 'failed' | 'cancelled';

export interface RunView {
  runId?: string;
  pipeline?: string;
  /** Journal time of the `run` event. */
  startedAt?: string;
  status: RunStatus;
  /** Stages in pipeline order (stages seen without being announced are appended). */
  order: string[];
  stages: Record<string, StageView>;
  nodes: Record<string, NodeView>;
  failures: FailureDetail[];
  durationMs?: number;
  /** The final state per stage, from `done`. */
  summary?: Record<string, StageState>;
}

export const EMPTY_RUN: RunView = Object.freeze({ status: 'idle', order: [], stages: {}, nodes: {}, failures: [] }) as RunView;

export interface FoldOptions {
  /** Fold only this run (the bundle seals one run out of a journal holding several). */
  onlyRun?: string;
}

function newStage(name: string, state: StageState): StageView {
  return { name, state, attempt: 0, progress: 0, nodes: {} };
}

function withStage(run: RunView, name: string, update: (prev: StageView) => StageView, initial: StageState): RunView {
  const prev = run.stages[name];
  const next = update(prev ?? newStage(name, initial));
  return { ...run, stages: { ...run.stages, [name]: next }, order: prev || run.order.includes(name) ? run.order : [...run.order, name] };
}

/** How a finished stage reads in a summary: "unchanged" when it succeeded with 0 changes or was skipped as converged. */
export function settled(view: StageView | undefined, state: StageState): 'unchanged' | `changed (${number})` | StageState {
  if (state === 'success' && view?.changes === 0) return 'unchanged';
  if (state === 'success' && view?.changes !== undefined) return `changed (${view.changes})`;
  if (state === 'skipped' && view?.reason?.startsWith('converged')) return 'unchanged';
  return state;
}

export function foldEvent(run: RunView, e: PipelineEvent, options: FoldOptions = {}): RunView {
  if (options.onlyRun !== undefined && e.runId !== options.onlyRun) return run;
  if (e.type === 'run') {
    return {
      runId: e.runId,
      pipeline: e.pipeline,
      startedAt: e.time,
      status: 'running',
      order: [...e.stages],
      stages: Object.fromEntries(e.stages.map((n) => [n, newStage(n, 'pending')])),
      nodes: {},
      failures: [],
    };
  }
  if (e.runId !== run.runId) return run;
  switch (e.type) {
    case 'stage':
      return withStage(
        run,
        e.stage,
        (prev) => ({
          ...prev,
          state: e.state,
          attempt: e.attempt,
          rerun: e.rerun,
          ...(e.state === 'running' ? { startedAt: e.time } : {}),
          ...(e.state === 'success' ? { progress: 1 } : {}),
          ...(e.durationMs !== undefined ? { durationMs: e.durationMs } : {}),
          ...(e.reason !== undefined ? { reason: e.reason } : {}),
          ...(e.changes !== undefined ? { changes: e.changes } : {}),
          ...(e.inputHash !== undefined ? { inputHash: e.inputHash } : {}),
        }),
        'pending',
      );
    case 'progress':
      return withStage(run, e.stage, (prev) => ({ ...prev, progress: e.fraction, ...(e.message !== undefined ? { message: e.message } : {}) }), 'running');
    case 'node': {
      const message = e.message !== undefined ? { message: e.message } : {};
      const staged = withStage(run, e.stage, (prev) => ({ ...prev, nodes: { ...prev.nodes, [e.node]: { state: e.state, ...message } } }), 'running');
      const prev = run.nodes[e.node];
      const node: NodeView =
        e.state === 'skipped' && prev && (prev.state === 'ok' || prev.state === 'failed')
          ? { ...prev, message: `${e.stage} skipped${e.message ? `: ${e.message}` : ''}` }
          : { state: e.state, stage: e.stage, ...message };
      return { ...staged, nodes: { ...run.nodes, [e.node]: node } };
    }
    case 'failed':
      return { ...run, failures: [...run.failures, e.error] };
    case 'done': {
      const states = Object.values(e.summary);
      const status: RunStatus = states.includes('failed') ? 'failed' : states.includes('aborted') ? 'cancelled' : 'done';
      return { ...run, status, durationMs: e.durationMs, summary: e.summary };
    }
    case 'log':
    case 'checkpoint':
      return run;
  }
}

/** Fold a run's events (a journal, a batch, a live stream so far) onto `from`. */
export function foldRun(events: Iterable<PipelineEvent>, from: RunView = EMPTY_RUN, options: FoldOptions = {}): RunView {
  let run = from;
  for (const e of events) run = foldEvent(run, e, options);
  return run;
}
