// Where a node terminal connects and which host keys it accepts: the node's wg1 address from the
// plan, reached through the hub (at its own wg1 address: the firewall opens SSH on wg1 only, so
// this machine must be on the control plane, or name another way in), and the ed25519 host
// keys the firstboot stage read through the guest agent and journaled. Nothing is learnt on first
// use: a node without a recorded key cannot be opened, a key that differs is refused.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Plan, PlanNode } from '../../common/plan/index';
import { hubOf } from '../../common/plan/index';
import { closest } from '../../common/text/suggest';
import { readFirstboot, withReplacedNodes } from '../stages/converge';
import { WORKSPACE_LAYOUT } from '../workspace';

/** One SSH hop with the only host key it may present ("ssh-ed25519 AAAA…"). */
export interface PinnedHop {
  node: string;
  host: string;
  port: number;
  hostKey: string;
}

/** How to reach a node: through the hub (unless the node is the hub), then over wg1. */
export interface TerminalRoute {
  node: string;
  hub: PinnedHop;
  /** Undefined when the node is the hub itself. */
  target?: PinnedHop;
  /** Where the pins come from (the journal), for messages. */
  source: string;
}

export class TerminalTrustError extends Error {}

/** SHA256:base64 (no padding) of an OpenSSH public key line or key blob, as ssh-keygen -l prints it. */
export function hostKeyFingerprint(key: string | Uint8Array): string {
  const blob = typeof key === 'string' ? Buffer.from(key.split(/\s+/)[1] ?? '', 'base64') : Buffer.from(key);
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

const addressOf = (a: string): string => a.replace(/\/\d+$/, '');

/**
 * The route to `node` with its pinned host keys, read from the workspace journal's last successful
 * firstboot stage. `hubAddress` overrides the hub's wg1 address (a forwarded port, another way in).
 */
export function terminalRoute(workspace: string, plan: Plan, node: string, o: { hubAddress?: string; port?: number } = {}): TerminalRoute {
  const target = plan.nodes.find((n) => n.name === node);
  if (!target) {
    const names = plan.nodes.map((n) => n.name);
    const guess = closest(node, names);
    throw new TerminalTrustError(`no node ${JSON.stringify(node)} in cluster ${plan.cluster.name}${guess ? `; did you mean ${guess}?` : ''} (nodes: ${names.slice(0, 6).join(', ')}${names.length > 6 ? ', …' : ''})`);
  }
  const journal = join(workspace, WORKSPACE_LAYOUT.journal);
  const record = readFirstboot(journal);
  if (record.kind === 'none') {
    throw new TerminalTrustError(`no first-boot record in ${journal}: the node terminal accepts only the SSH host keys first boot read from the nodes; deploy the cluster first (kubedos deploy SPEC)`);
  }
  if (record.kind === 'invalid') throw new TerminalTrustError(`the first-boot record in ${journal} (run ${record.runId.slice(0, 8)}) does not parse (${record.issue}); rerun the deploy (kubedos deploy SPEC) to record the host keys again`);
  // A node a replace-based upgrade created again since that deploy: its key from that run's own
  // journal when newer (withReplacedNodes, as converge pins it).
  const facts = withReplacedNodes(workspace, record, [target.name]).data;
  const port = o.port ?? 22;
  const hop = (n: PlanNode, host: string): PinnedHop => {
    const key = facts.nodes[n.name]?.sshHostKey;
    if (!key || !/^ssh-ed25519 [A-Za-z0-9+/=]+$/.test(key)) {
      throw new TerminalTrustError(`no SSH host key of ${n.name} in the first-boot record (run ${record.runId.slice(0, 8)} in ${journal}): nothing to pin, so no connection is made; rerun the deploy's firstboot stage (kubedos deploy SPEC --force)`);
    }
    return { node: n.name, host, port, hostKey: key };
  };
  const hub = hubOf(plan);
  // SSH listens on wg1 only (common/plan/services.ts): the hub is reached at its wg1 address.
  const hubHop = hop(hub, o.hubAddress ?? addressOf(hub.planes.wg1.address));
  return {
    node,
    hub: hubHop,
    ...(target.name === hub.name ? {} : { target: hop(target, addressOf(target.planes.wg1.address)) }),
    source: journal,
  };
}
