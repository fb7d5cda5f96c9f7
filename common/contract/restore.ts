// Restore from the Recovery view: the same offline checks and fresh workspace as `kubedos restore`
// (main/restore/service.ts), run as a pipeline whose events stream on pipeline.events like a deploy.
import { z } from 'zod';

const FilePath = z.string().min(1).max(4096).refine((p) => !p.includes('\u0000'), 'path contains NUL');

export const RESTORE_STAGES = ['verify', 'workspace', 'timeline'] as const;

export const RESTORE_REQUESTS = {
  /**
   * Restores the cluster's bundle (default: the one in its workspace) with the kept artifact
   * (default: the workspace's build/) and the recovery identity read from recoveryKey (read for
   * this run only, never kept), into `into`, an empty workspace root. Cancel with pipeline.cancel.
   */
  'restore.run': {
    request: z
      .object({
        cluster: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'a cluster name (DNS label)'),
        recoveryKey: FilePath,
        into: FilePath,
        bundle: FilePath.optional(),
        artifact: FilePath.optional(),
      })
      .strict(),
    result: z.object({ runId: z.string(), stages: z.array(z.string()), workspace: z.string() }),
  },
} as const;
