// Trust operations on a running cluster (revoke a node, rotate hub or node WireGuard keys, open or
// close the enrollment window): the request and report shapes shared by the engine
// (main/trust/operations.ts), the CLI (`kubedos trust`) and the workbench, and the checks that
// need only the plan — which run before anything is contacted. Pure.
import { z } from 'zod';
import type { Plan } from '../plan/schema';
import { didYouMean } from '../text/suggest';

export const TrustOperation = z.discriminatedUnion('op', [
  z.object({ op: z.literal('revoke'), node: z.string().min(1), reason: z.string().min(1).max(200).optional() }),
  z.object({ op: z.literal('rotate-node'), node: z.string().min(1) }),
  z.object({ op: z.literal('rotate-hub') }),
  z.object({ op: z.literal('window-open'), minutes: z.number().int().min(1).max(1440).optional() }),
  z.object({ op: z.literal('window-close') }),
]);
export type TrustOperation = z.infer<typeof TrustOperation>;

/** What one operation did: every change made, and what it deliberately left as it was. */
export const TrustOpReport = z.object({
  op: z.enum(['revoke', 'rotate-node', 'rotate-hub', 'window-open', 'window-close']),
  cluster: z.string(),
  /** Where it ran: the namespace lab (a throwaway copy of the plan) or the deployed cluster. */
  target: z.enum(['lab', 'cluster']),
  node: z.string().optional(),
  changed: z.array(z.string()),
  unchanged: z.array(z.string()),
  durationMs: z.number().int().nonnegative(),
});
export type TrustOpReport = z.infer<typeof TrustOpReport>;

/** The node an operation names, when it does. */
export function operationNode(o: TrustOperation): string | undefined {
  return o.op === 'revoke' || o.op === 'rotate-node' ? o.node : undefined;
}

/**
 * Why an operation cannot run on this plan (an unknown node, with the closest name; the hub where
 * a spoke is needed; a node already revoked in the workspace's list), or undefined. One sentence
 * that says nothing was changed.
 */
export function refuseTrustOperation(plan: Plan, o: TrustOperation, revoked: readonly string[] = []): string | undefined {
  const node = operationNode(o);
  if (node === undefined) return undefined;
  const names = plan.nodes.map((n) => n.name);
  const verb = o.op === 'revoke' ? 'revoke' : 'rotate the keys of';
  if (!names.includes(node)) {
    return `there is no node "${node}" in ${plan.cluster.name}${didYouMean(node, names)} (nodes: ${names.slice(0, 8).join(', ')}${names.length > 8 ? ` and ${names.length - 8} more` : ''}); nothing was changed`;
  }
  const hub = plan.nodes.find((n) => n.hub);
  if (hub && hub.name === node) {
    return o.op === 'revoke'
      ? `cannot revoke ${node}: it is the hub every plane runs through (revoking it cuts off the whole cluster); a compromised hub is rebuilt from the recovery bundle (kubedos restore); nothing was changed`
      : `${node} is the hub: rotate its keys with --hub, not --node; nothing was changed`;
  }
  if (revoked.includes(node)) {
    return o.op === 'revoke'
      ? undefined // revoking again re-applies the list on the hub; the engine says nothing new was revoked
      : `cannot ${verb} ${node}: it is revoked, and a revoked node is replaced, not re-keyed (recreate it, then remove it from the revocation list on purpose); nothing was changed`;
  }
  return undefined;
}

/** One line per report for a terminal: what changed, then what did not. */
export function renderTrustReport(r: TrustOpReport): string[] {
  const where = r.target === 'lab' ? 'namespace lab' : 'cluster';
  return [
    `${r.op}${r.node ? ` ${r.node}` : ''} on the ${where} of ${r.cluster} (${(r.durationMs / 1000).toFixed(1)} s)`,
    ...r.changed.map((c) => `  changed:   ${c}`),
    ...r.unchanged.map((c) => `  unchanged: ${c}`),
  ];
}
