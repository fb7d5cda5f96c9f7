// The shape of `kubedos status --json`: a cluster's last deploy as read from its journal (the
// same fold as the progress display and the workbench). Scripts and the workbench can parse it
// with this schema.
import { z } from 'zod';
import { WatcherStatus } from '../drills/watcher';
import { ClusterHealthNow } from '../health/now';
import { Diagnostic } from '../spec/diagnostic';
import { FailureDetail, StageState } from './events';

export const StageStatus = z.object({
  state: StageState,
  duration: z.number().min(0).optional().describe('Milliseconds the stage took, when it finished.'),
  reason: z.string().optional().describe('Why it failed or was skipped.'),
});

/** The last stop / start / destroy of the cluster (main/lifecycle/record.ts reads it from the journal). */
export const LifecycleStatus = z
  .object({
    action: z.enum(['stop', 'start', 'destroy']),
    runId: z.string(),
    startedAt: z.string(),
    finishedAt: z.string().optional().describe('Absent when it was interrupted.'),
    ok: z.boolean(),
    failure: z.string().optional(),
  })
  .strict();

export const ClusterStatus = z
  .object({
    cluster: z.string(),
    journal: z.string().describe('Path of the journal that was read.'),
    deployed: z.boolean().describe('false when the journal records no deploy (the other fields are then empty).'),
    runId: z.string().optional(),
    startedAt: z.string().optional().describe('Journal time of the last run\'s start.'),
    finished: z.boolean().describe('The last run reached its end (successfully or not).'),
    durationMs: z.number().min(0).optional(),
    running: z.object({ pid: z.number().int(), by: z.string() }).optional().describe('A deploy holding the cluster\'s lock right now.'),
    stages: z.record(z.string(), StageStatus).describe('Stages in pipeline order.'),
    nodes: z.record(z.string(), z.string()).describe('Per node: the last stage that reported on it and what it said.'),
    failures: z.array(FailureDetail),
    converged: z.array(z.string()).describe('Stages a rerun skips because their inputs did not change.'),
    lifecycle: LifecycleStatus.optional().describe('The last stop, start or destroy, when there was one.'),
    health: WatcherStatus.optional().describe('With --health: the hub\'s health-watcher report (common/drills/watcher.ts), or why it could not be read.'),
    live: ClusterHealthNow.optional().describe('With --health: the cluster\'s health now per node (common/health/now.ts), or why it cannot be read.'),
  })
  .strict();
export type ClusterStatus = z.infer<typeof ClusterStatus>;

/** What `kubedos status --json` prints on stdout when it cannot print a ClusterStatus (bad usage, invalid spec, a failure). */
export const ClusterStatusError = z
  .object({
    error: z
      .object({
        code: z.enum(['usage', 'invalid-spec', 'failed']),
        message: z.string(),
        diagnostics: z.array(Diagnostic).optional().describe('invalid-spec: the spec\'s errors.'),
      })
      .strict(),
  })
  .strict();
export type ClusterStatusError = z.infer<typeof ClusterStatusError>;
