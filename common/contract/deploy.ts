// Schemas of the deploy wizard's requests: where to deploy (a Proxmox host from ~/.ssh/config or
// local QEMU), what the target looks like (connection, host key, inventory, capacity), and what
// a deploy would change there (the provision decisions per node).
import { z } from 'zod';
import { HOST_NAME, HOST_NAME_RULE } from '../net/host-name';

/** Same grammar as `--target proxmox://HOST` (main/target.ts): an ~/.ssh/config alias or a host name. */
export const HostAlias = z
  .string()
  .min(1)
  .max(253)
  .regex(HOST_NAME, `a host name or ~/.ssh/config Host alias: ${HOST_NAME_RULE} (for another user or port, add a Host entry to ~/.ssh/config)`);

export const DeployTarget = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('qemu-local') }).strict(),
  z.object({ kind: z.literal('proxmox'), host: HostAlias }).strict(),
]);
export type DeployTarget = z.infer<typeof DeployTarget>;

/** OpenSSH's SHA256 fingerprint form: "SHA256:" + unpadded base64 of 32 bytes. */
export const HostKeyFingerprint = z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'an OpenSSH SHA256 fingerprint (SHA256: followed by 43 base64 characters)');

export const SshHostEntry = z.object({
  alias: z.string(),
  hostName: z.string(),
  port: z.number().int(),
  user: z.string(),
  /** ProxyJump hops, outermost first ("user@host:port"). */
  jumps: z.array(z.string()),
});
export type SshHostEntry = z.infer<typeof SshHostEntry>;

export const DeployTargets = z.object({
  sshConfigPath: z.string(),
  sshConfigExists: z.boolean(),
  /** Concrete Host entries (patterns with *, ? or ! are not hosts). */
  hosts: z.array(SshHostEntry),
  /** Lines of the config we could not use (bad Port, unreadable file). */
  problems: z.array(z.string()),
  knownHostsPath: z.string(),
});
export type DeployTargets = z.infer<typeof DeployTargets>;

/** One line of a check: what was looked at, what was found, and what to do about it. */
export const CheckItem = z.object({
  id: z.string(),
  label: z.string(),
  status: z.enum(['ok', 'info', 'warn', 'error']),
  detail: z.string(),
  hint: z.string().optional(),
  /** 'plan': depends on the spec (re-checked at review); 'target': the host itself. */
  scope: z.enum(['target', 'plan']),
  /** Something the UI can offer to do about it (probe-accel: run the KVM test boot now). */
  action: z.enum(['probe-accel']).optional(),
});
export type CheckItem = z.infer<typeof CheckItem>;

export const ProblemDetail = z.object({ code: z.string(), message: z.string(), hint: z.string().optional() });
export type ProblemDetail = z.infer<typeof ProblemDetail>;

export const HostKeyInfo = z.object({
  /** known: matches known_hosts; unknown: needs a decision; accepted: just added; changed: refused. */
  status: z.enum(['known', 'unknown', 'accepted', 'changed', 'revoked']),
  host: z.string(),
  port: z.number().int(),
  keyType: z.string().optional(),
  fingerprint: z.string().optional(),
  knownHostsPath: z.string(),
});
export type HostKeyInfo = z.infer<typeof HostKeyInfo>;

export const InventorySummary = z.object({
  node: z.string(),
  vms: z.array(z.object({ vmid: z.number().int(), name: z.string(), status: z.string(), tags: z.array(z.string()), owned: z.boolean(), inRange: z.boolean() })),
  storages: z.array(z.object({ name: z.string(), type: z.string(), availableBytes: z.number(), totalBytes: z.number() })),
});
export type InventorySummary = z.infer<typeof InventorySummary>;

export const PlanTotals = z.object({
  cluster: z.string(),
  nodes: z.number().int(),
  vcpus: z.number().int(),
  maxVcpus: z.number().int(),
  memoryMiB: z.number().int(),
  diskGiB: z.number().int(),
});
export type PlanTotals = z.infer<typeof PlanTotals>;

export const TargetCheck = z.object({
  target: z.string(),
  kind: z.enum(['proxmox', 'qemu-local']),
  /** Nothing about the target itself stops a deploy (plan-scoped shortfalls may remain). */
  ready: z.boolean(),
  checks: z.array(CheckItem),
  ssh: z.object({ alias: z.string(), hostName: z.string(), port: z.number().int(), user: z.string(), jumps: z.array(z.string()) }).optional(),
  hostKey: HostKeyInfo.optional(),
  inventory: InventorySummary.optional(),
  /** The plan the capacity was measured against (the spec sent with the request). */
  plan: PlanTotals.optional(),
  error: ProblemDetail.optional(),
});
export type TargetCheck = z.infer<typeof TargetCheck>;

export const DeployAction = z.enum(['create', 'keep', 'update', 'replace', 'destroy']);
export type DeployAction = z.infer<typeof DeployAction>;

export const DeployReview = z.object({
  target: z.string(),
  cluster: z.string(),
  /** The cluster's workspace (journal, plan, build, VM state). */
  workspace: z.string(),
  node: z.string(),
  decisions: z.array(
    z.object({
      node: z.string(),
      vmid: z.number().int(),
      action: DeployAction,
      start: z.boolean(),
      reasons: z.array(z.string()),
      destructive: z.boolean(),
      /** The VMID is held by a VM this cluster does not own. */
      blocked: z.boolean(),
      changes: z.record(z.string(), z.string()).optional(),
    }),
  ),
  summary: z.record(DeployAction, z.number().int()),
  /** Replace or destroy is in the decisions: the deploy needs allowDestroy. */
  needsAllowDestroy: z.boolean(),
  /** Something no checkbox can allow (a VMID owned by someone else). */
  blocked: ProblemDetail.optional(),
  /** Compared with the plan of the last deploy in the workspace, if there is one. */
  previousPlan: z.boolean(),
  planChanges: z.array(z.string()),
  checks: z.array(CheckItem),
});
export type DeployReview = z.infer<typeof DeployReview>;
