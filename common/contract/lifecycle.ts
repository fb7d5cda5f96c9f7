// The cluster lifecycle over the workbench contract: what a destroy would remove (for the
// confirmation), and stop / start / destroy themselves (their events stream on pipeline.events
// like a deploy's; the reply comes when the action ends).
import { z } from 'zod';

export const LifecycleAction = z.enum(['stop', 'start', 'destroy']);
export type LifecycleAction = z.infer<typeof LifecycleAction>;

/** What a destroy would remove (the dry run, the refusal without --allow-destroy, the workbench's confirmation). */
export const DestroyPreview = z.object({
  cluster: z.string(),
  target: z.string(),
  reachable: z.boolean(),
  /** Why the target could not be read, when it could not. */
  unreachable: z.string().optional(),
  vms: z.array(z.object({ vmid: z.number().int(), name: z.string(), status: z.string(), inPlan: z.boolean() })),
  foreign: z.array(z.object({ vmid: z.number().int(), name: z.string(), reason: z.string() })),
  /** Boot images the cluster uploaded to the host's storage (and interrupted uploads of them). */
  images: z.array(z.object({ volid: z.string(), sizeBytes: z.number(), partial: z.boolean() })),
  /** Images of the cluster that another VM still uses: left on the host. */
  keptImages: z.array(z.object({ volid: z.string(), usedBy: z.array(z.string()) })),
  /** Files and folders on this machine (VM disks, TPM state, sockets, the workspace). */
  paths: z.array(z.string()),
  /** Processes (qemu-local L2 hubs) that would be stopped. */
  processes: z.array(z.string()),
  workspace: z.string(),
  keepWorkspace: z.boolean(),
  /** Where the trust material goes first (when the workspace is removed). */
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
