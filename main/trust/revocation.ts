// The revocation list the hub enforces (seed 003 §6.3): a revoked node is refused at the
// enrollment window and its peers are removed from every plane on the hub. The workbench keeps
// the list in the workspace; the hub reads /etc/kubedos/enroll/revoked.json.
import { z } from 'zod';
import { Revocation } from '../../common/trust/inventory';

export { Revocation };
export const RevocationList = z.object({ cluster: z.string().min(1), revoked: z.array(Revocation) });
export type RevocationList = z.infer<typeof RevocationList>;

export function emptyRevocationList(cluster: string): RevocationList {
  return { cluster, revoked: [] };
}

/** Adds (or keeps) a node's revocation; the list stays sorted by node name. */
export function revokeNode(list: RevocationList, node: string, at: number, reason: string): RevocationList {
  if (list.revoked.some((r) => r.node === node)) return list;
  const revoked = [...list.revoked, { node, at: Math.floor(at), reason }].sort((a, b) => a.node.localeCompare(b.node));
  return { cluster: list.cluster, revoked };
}

export function isRevoked(list: RevocationList, node: string): boolean {
  return list.revoked.some((r) => r.node === node);
}
