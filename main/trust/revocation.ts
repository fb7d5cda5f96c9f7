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

/** The node's revocation lifted (a replacement admitted on purpose); the list unchanged when it is not on it. */
export function unrevokeNode(list: RevocationList, node: string): RevocationList {
  return { cluster: list.cluster, revoked: list.revoked.filter((r) => r.node !== node) };
}

/**
 * The hub's revoked.json as read on a node: an absent or empty file is the empty list for `cluster`,
 * a list without its cluster takes `cluster`; anything else that is not a list is an error naming the file.
 */
export function parseHubRevocations(text: string, cluster: string): RevocationList {
  let raw: unknown;
  try {
    raw = JSON.parse(text.trim() || '{}');
  } catch (err) {
    throw new Error(`the hub's revoked.json is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`the hub's revoked.json is not a revocation list: ${Array.isArray(raw) ? 'an array' : String(raw)}, not an object`);
  const r = RevocationList.safeParse({ cluster, revoked: [], ...raw });
  if (!r.success) throw new Error(`the hub's revoked.json is not a revocation list: ${r.error.issues[0]?.path.join('.') ?? ''} ${r.error.issues[0]?.message ?? ''}`.trim());
  return r.data;
}

export function isRevoked(list: RevocationList, node: string): boolean {
  return list.revoked.some((r) => r.node === node);
}
