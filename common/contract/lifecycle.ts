// The cluster lifecycle over the workbench contract: what a destroy would remove (for the
// confirmation), and stop / start / destroy themselves (their events stream on pipeline.events
// like a deploy's; the reply comes when the action ends).
import { z } from 'zod';

export const LifecycleAction = z.enum(['stop', 'start', 'destroy']);
export type LifecycleAction = z.infer<typeof LifecycleAction>;

export const DestroyPreview = z.object({
  cluster: z.string(),
  target: z.string(),
  reachable: z.boolean(),
  unreachable: z.string().optional(),
  vms: z.array(z.object({ vmid: z.number().int(), name: z.string(), status: z.string(), inPlan: z.boolean() })),
  foreign: z.array(z.object({ vmid: z.number().int(), name: z.string(), reason: z.string() })),
  paths: z.array(z.string()),
  processes: z.array(z.string()),
  workspace: z.string(),
  keepWorkspace: z.boolean(),
  exportTo: z.string().optional(),
  neverDeployed: z.boolean(),
});
export type DestroyPreview = z.infer<typeof DestroyPreview>;

export const LifecycleOutcome = z.object({
  action: LifecycleAction,
  cluster: z.string(),
  target: z.string(),
  ok: z.boolean(),
  did: z.array(z.string()),
  notDone: z.array(z.string()),
  error: z.object({ message: z.string(), hint: z.string().optional() }).optional(),
  runId: z.string().optional(),
  journal: z.string().optional(),
  exportedTo: z.string().optional(),
});
export type LifecycleOutcome = z.infer<typeof LifecycleOutcome>;
