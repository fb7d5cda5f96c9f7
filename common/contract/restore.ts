// Restore from the Recovery view: the same offline checks and fresh workspace as `kubedos restore`
// (main/restore/service.ts), run as a pipeline whose events stream on pipeline.events like a deploy.
import { z } from 'zod';
import { DeployTarget } from './deploy';

const FilePath = z.string().min(1).max(4096).refine((p) => !p.includes('\u0000'), 'path contains NUL');

/** A restore run's stages without a target (the workspace only), and with one (the VMs rebuilt, etcd put back, sealed again). */
export const RESTORE_STAGES = ['verify', 'workspace', 'timeline'] as const;
export const RESTORE_STAGES_WITH_TARGET = ['verify', 'workspace', 'deploy', 'etcd', 'seal', 'timeline'] as const;

export const RESTORE_REQUESTS = {
  /**
   * Restores the cluster's bundle (default: the one in its workspace) with the kept artifact
   * (default: the workspace's build/) and the recovery identity read from recoveryKey (read for
   * this run only, never kept), into `into`, an empty workspace root. With a target (the deploy's
   * target shape) the run then deploys the restored workspace there from the kept artifact, puts
   * etcd back from the bundle's snapshot, proves the identity (expectKey: an etcd key that must
   * read back) and seals the restored cluster again, as `kubedos restore --target` does. Cancel
   * with pipeline.cancel; running it again resumes the restored workspace.
   */
  'restore.run': {
    request: z
      .object({
        cluster: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'a cluster name (DNS label)'),
        recoveryKey: FilePath,
        into: FilePath,
        bundle: FilePath.optional(),
        artifact: FilePath.optional(),
        target: DeployTarget.optional(),
        expectKey: z.string().min(1).max(1024).refine((k) => [...k].every((c) => c.charCodeAt(0) >= 0x20), 'an etcd key without control characters').optional(),
        allowDestroy: z.boolean().optional(),
      })
      .strict(),
    result: z.object({ runId: z.string(), stages: z.array(z.string()), workspace: z.string() }),
  },
} as const;
