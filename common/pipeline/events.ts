// Pipeline events: what the runner emits to the journal, the CLI and the renderer.
import { z } from 'zod';

export const STAGE_STATES = ['pending', 'queued', 'running', 'success', 'failed', 'skipped', 'aborted'] as const;
export const StageState = z.enum(STAGE_STATES);
export type StageState = z.infer<typeof StageState>;

export const RerunClass = z.enum(['safe-rerun', 'remediates-drift', 'destructive']);
export type RerunClass = z.infer<typeof RerunClass>;

export const NodeState = z.enum(['pending', 'running', 'ok', 'failed', 'skipped']);
export type NodeState = z.infer<typeof NodeState>;

/** An actionable failure: what failed, where, the command and its stderr tail, what to do next. */
export const FailureDetail = z.object({
  message: z.string(),
  stage: z.string(),
  node: z.string().optional(),
  command: z.array(z.string()).optional(),
  exitCode: z.number().int().nullable().optional(),
  stderrTail: z.string().optional(),
  hint: z.string().optional(),
});
export type FailureDetail = z.infer<typeof FailureDetail>;

const base = { runId: z.string(), seq: z.number().int().min(0), time: z.string() };

export const PipelineEvent = z.discriminatedUnion('type', [
  z.object({
    ...base,
    type: z.literal('stage'),
    stage: z.string(),
    state: StageState,
    rerun: RerunClass,
    attempt: z.number().int().min(0),
    inputHash: z.string().optional(),
    reason: z.string().optional(),
    durationMs: z.number().min(0).optional(),
    /** On success: how many changes the stage made (0 = unchanged); absent when it does not count. */
    changes: z.number().int().min(0).optional(),
    /** On success of a stage that declares an output schema: its typed output (JSON), which a
     * later run replays when it skips the stage as converged. */
    output: z.unknown().optional(),
  }),
  z.object({ ...base, type: z.literal('progress'), stage: z.string(), node: z.string().optional(), fraction: z.number().min(0).max(1), message: z.string().optional() }),
  z.object({
    ...base,
    type: z.literal('log'),
    stage: z.string(),
    node: z.string().optional(),
    stream: z.enum(['stdout', 'stderr', 'info', 'warn']),
    line: z.string(),
  }),
  z.object({ ...base, type: z.literal('node'), stage: z.string(), node: z.string(), state: NodeState, message: z.string().optional() }),
  z.object({ ...base, type: z.literal('checkpoint'), stage: z.string(), key: z.string(), value: z.unknown() }),
  z.object({
    ...base,
    type: z.literal('run'),
    state: z.enum(['started']),
    stages: z.array(z.string()),
    pipeline: z.string(),
    /** What a later run must share with this one to trust its successes (engine journal format,
     * spec apiVersion); a run whose key differs runs every stage in full. */
    compat: z.string().optional(),
  }),
  z.object({ ...base, type: z.literal('done'), summary: z.record(z.string(), StageState), durationMs: z.number().min(0) }),
  z.object({ ...base, type: z.literal('failed'), error: FailureDetail }),
]);
export type PipelineEvent = z.infer<typeof PipelineEvent>;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** An event before the runner stamps it with run id, sequence number and time. */
export type PipelineEventBody = DistributiveOmit<PipelineEvent, 'runId' | 'seq' | 'time'>;
