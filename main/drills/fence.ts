// The fence and its undoing on a deployed cluster, written once for the two callers that take a
// node out and bring a new one into its plan slot: the drill (cluster-target.ts, ClusterDrillTarget)
// and the replace-based upgrade (main/upgrade/replace-ops.ts, ClusterReplaceOps).
//
//  - fence: the node's etcd member removed on a healthy other member (etcd-member.ts, only when the
//    one quorum rule allows it), then the node revoked at the hub (`kubedos-enroll-hub revoke`:
//    its plane peers removed, its identity refused by the enrollment window);
//  - unfence for the replacement: the revocation lifted for that node (the replacement enrolls on
//    purpose, with new keys and a fresh single-use token: the enroll stage refuses revoked nodes),
//    and its member added again on a healthy peer and recorded on the master for the etcd role
//    (initial-cluster-state "existing": the node's converge starts etcd into the running cluster).
//
// Everything runs through a NodeShell (guestShell: the nodes' guest agents, no SSH, no route).
import type { HealthFacts } from '../../common/drills/health';
import { etcdHealth, parseEndpointHealth, parseMemberList } from '../../common/drills/health';
import type { PlanNode } from '../../common/plan/schema';
import { etcdClientUrl, etcdctlArgv, etcdPeerUrl } from '../stages/converge';
import type { EtcdAccess } from './etcd-member';
import { addEtcdMember, etcdctlSaid, isUnstarted, recordEtcdMember, removeEtcdMember } from './etcd-member';
import { canonicalJson } from '../../common/canonical';
import { PATHS } from '../trust/enrollment-files';
import { isRevoked, parseHubRevocations, unrevokeNode } from '../trust/revocation';
import type { NodeShell } from './shell';

export const HUB_BIN = '/usr/lib/kubedos/backplane/kubedos-enroll-hub';
export const REVOKED_PATH = PATHS.revoked;

type EtcdFacts = NonNullable<HealthFacts['etcd']>;

/**
 * etcdctl's timeouts on the drills' and fences' paths, sized for a member answering through TLS on
 * a one-vCPU TCG guest (etcdctl's own defaults, 2 s to dial and 5 s per command, were too short
 * there: a member list against three TLS members gave up retrying on the replace-based upgrade's
 * first VM run); the guest agent's own limit on each call is FENCE_EXEC_TIMEOUT_MS.
 */
export const FENCE_ETCD_TIMEOUTS = { dial: '8s', command: '20s' } as const;
export const FENCE_EXEC_TIMEOUT_MS = 60_000;

/** Pure: etcdctl on a member against `members`' endpoints, with FENCE_ETCD_TIMEOUTS. */
export function drillEtcdctlArgv(members: readonly { planes: { wg3: { address: string } } }[], args: readonly string[]): string[] {
  return etcdctlArgv(members.map((m) => m.planes.wg3.address), args, FENCE_ETCD_TIMEOUTS);
}

/**
 * Pure: what a failed etcdctl said, on one line: its exit code and etcd's own error line (the
 * `Error: …` etcdctl ends with), not the JSON retry warnings the client logs before it.
 */
export function etcdctlFailure(r: { exitCode: number | null; stderr: string; stdout: string }, from: string, what: string): string {
  return `etcdctl ${what} on ${from} exited ${r.exitCode ?? 'by a signal'}: ${etcdctlSaid(r)}`;
}

/** etcdctl on `from` (a member with its TLS client material) against every planned member. */
export function etcdAccess(sh: NodeShell, etcd: readonly PlanNode[], from: string): EtcdAccess {
  return { sh, from, etcdctl: (args) => drillEtcdctlArgv(etcd, args) };
}

/**
 * A member added and not started yet has no name: it is given its planned node's name by its
 * peer URL, so a verdict says that node's member is down instead of flagging an unplanned member.
 */
function namedMembers(etcd: readonly PlanNode[], members: ReturnType<typeof parseMemberList>): ReturnType<typeof parseMemberList> {
  return members.map((m) => {
    if (!isUnstarted(m)) return m;
    const n = etcd.find((x) => m.peerUrls.includes(etcdPeerUrl(x.planes.wg3.address)));
    return n ? { ...m, name: n.name } : m;
  });
}

/**
 * etcd's members and endpoints, asked from a member whose guest agent answers now (`answering`),
 * other than `o.avoid` when another answers (the node about to be fenced: its own view is the one
 * least worth trusting). Every planned endpoint's health is probed from it, then the membership
 * is read on a member whose endpoint answered healthy, from its own endpoint alone (etcd serves the
 * member list from the asked member's view: no other endpoint, reachable or not, is in the way);
 * one after the other (two etcdctl at once on
 * a one-vCPU TCG guest made both slower). No member answering: every endpoint unhealthy, said so.
 */
export async function etcdFacts(sh: NodeShell, etcd: readonly PlanNode[], answering: (node: string) => boolean, o: { avoid?: string } = {}): Promise<EtcdFacts> {
  const from = etcd.find((m) => m.name !== o.avoid && answering(m.name)) ?? etcd.find((m) => answering(m.name));
  if (!from) return { members: [], endpoints: etcd.map((m) => ({ endpoint: etcdClientUrl(m.planes.wg3.address), healthy: false, error: 'no etcd member answers through its guest agent' })), error: 'no etcd member reachable' };
  const health = await sh.exec(from.name, drillEtcdctlArgv(etcd, ['endpoint', 'health', '-w', 'json']), { anyExit: true, timeoutMs: FENCE_EXEC_TIMEOUT_MS });
  let endpoints: EtcdFacts['endpoints'];
  try {
    endpoints = parseEndpointHealth(health.stdout);
  } catch {
    const error = etcdctlFailure(health, from.name, 'endpoint health');
    endpoints = etcd.map((m) => ({ endpoint: etcdClientUrl(m.planes.wg3.address), healthy: false, error }));
  }
  // The membership is read on a member whose endpoint just answered healthy (other than `avoid` first).
  const healthy = (m: PlanNode): boolean => endpoints.some((e) => e.healthy && e.endpoint === etcdClientUrl(m.planes.wg3.address));
  const lister = etcd.find((m) => m.name !== o.avoid && answering(m.name) && healthy(m)) ?? etcd.find((m) => answering(m.name) && healthy(m)) ?? from;
  const members = await sh.exec(lister.name, drillEtcdctlArgv([lister], ['member', 'list', '-w', 'json', '--hex']), { anyExit: true, timeoutMs: FENCE_EXEC_TIMEOUT_MS });
  return members.exitCode === 0 ? { members: namedMembers(etcd, parseMemberList(members.stdout)), endpoints } : { members: [], endpoints, error: etcdctlFailure(members, lister.name, 'member list') };
}

/**
 * Pure: a member other than `node` whose agent answers and whose endpoint is healthy (where
 * membership changes are asked). Throws, saying each member's state, when there is none.
 */
export function pickHealthyPeer(etcd: readonly PlanNode[], node: string, facts: EtcdFacts | undefined, answering: (node: string) => boolean): string {
  const byName = facts && !facts.error ? etcdHealth(facts).byName : {};
  const from = etcd.find((m) => m.name !== node && byName[m.name] === true && answering(m.name));
  if (from) return from.name;
  const why = facts?.error ? facts.error.slice(0, 300) : etcd.map((m) => `${m.name} ${!answering(m.name) ? 'not answering' : byName[m.name] ? 'healthy' : 'unhealthy'}`).join(', ');
  throw new Error(`no etcd member other than ${node} is healthy and answers through its guest agent (${why}): etcd may have lost quorum; its membership is left as is — heal the other members first (kubedos heal)`);
}

/**
 * Where a membership change for `node` is asked: etcdctl on a healthy member other than it, the
 * facts asked from another member than `node` when one answers (etcdFacts' `avoid`, then
 * pickHealthyPeer, which throws saying each member's state when there is none). The drill
 * target's and the replace-based upgrade's fence and rejoin.
 */
export async function peerAccessFor(sh: NodeShell, etcd: readonly PlanNode[], node: string, answering: (node: string) => boolean): Promise<EtcdAccess> {
  const facts = await etcdFacts(sh, etcd, answering, { avoid: node });
  return etcdAccess(sh, etcd, pickHealthyPeer(etcd, node, facts, answering));
}

/** The fence's etcd step: `node`'s member removed on a healthy peer `a` (under the one quorum rule; throws, removing nothing, when it does not allow it). */
export async function fenceEtcdMember(a: EtcdAccess, node: PlanNode): Promise<string> {
  return (await removeEtcdMember(a, node.name, etcdPeerUrl(node.planes.wg3.address))).detail;
}

/** The fence at the hub: `kubedos-enroll-hub revoke` (its plane peers removed). One line of what was done. */
export async function revokeAtHub(sh: NodeShell, hub: string, node: string, reason: string): Promise<string> {
  const r = await sh.exec(hub, [HUB_BIN, 'revoke', node, '--reason', reason]);
  let removed: string[] = [];
  try {
    removed = (JSON.parse(r.stdout) as { removed?: string[] }).removed ?? [];
  } catch {
    /* older hub: says nothing */
  }
  return `revoked at the hub; plane peers removed: ${removed.join(', ') || 'none left'}`;
}

/**
 * The revocation of `node` lifted at the hub, for its replacement (admitted on purpose with new
 * keys and a fresh single-use token). Returns the line saying so, or undefined when it was not revoked.
 */
export async function liftRevocation(sh: NodeShell, hub: string, cluster: string, node: string): Promise<string | undefined> {
  const read = await sh.exec(hub, ['/bin/sh', '-c', 'cat "$1" 2>/dev/null || echo "{}"', 'sh', REVOKED_PATH]);
  const list = parseHubRevocations(read.stdout, cluster);
  if (!isRevoked(list, node)) return undefined;
  // Written as the enrollment files write it (mode 0644, canonical JSON), replaced atomically.
  await sh.exec(hub, ['/bin/sh', '-c', 'umask 022; cat > "$1.tmp" && mv "$1.tmp" "$1"', 'sh', REVOKED_PATH], { input: `${canonicalJson(unrevokeNode(list, node), 2)}\n` });
  return `${node} taken off the revocation list for its replacement`;
}

/**
 * The node's member added again (once) on a healthy peer `a` before its etcd starts, and the etcd
 * role's variables for it recorded on the master (`hub`): the node's next converge empties its data
 * directory for that member id and starts etcd with initial-cluster-state "existing".
 */
export async function rejoinEtcd(a: EtcdAccess, hub: string, node: PlanNode): Promise<string> {
  const added = await addEtcdMember(a, node.name, etcdPeerUrl(node.planes.wg3.address));
  const wrote = await recordEtcdMember(a.sh, hub, node.name, added.id);
  return `${added.detail}; ${wrote ? 'recorded' : 'already recorded'} on ${hub} for the etcd role (initial-cluster-state existing, member ${added.id}, data directory emptied once)`;
}
