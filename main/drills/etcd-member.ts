// The engine's etcd membership steps for a member that is lost and comes back: kill-etcd-member and
// delete-control-plane-vm on a deployed cluster and a heal of either (cluster-target.ts, over wg3
// with TLS, etcdctl run on a healthy member through its guest agent); the converge namespace lab
// runs the same functions with plain HTTP (e2e/converge/converge.slow.test.ts).
//
//  - remove: only when the one quorum rule allows it (memberRemoval, common/drills/health.ts); a
//    member that was added and never started is kept: it is the one the replacement joins as;
//  - add: before the replacement's etcd starts, and once — a member already listed with the
//    node's peer URL is not added again (a drill stopped after its `member add` and resumed by
//    `kubedos heal` finds it there);
//  - record: what the etcd role renders for that node, on the master next to the converge
//    inventory (host_vars/<node>/kubedos-etcd-member.yml): initial-cluster-state "existing" and
//    the added member's id. The role empties the node's data directory once per member id and
//    starts etcd with that state; etcd ignores both once its data directory holds a member, so the
//    file stays as it is and later converges change nothing. A fresh cluster has no such file and
//    bootstraps "new".
import type { EtcdEndpointFact, EtcdMemberFact } from '../../common/drills/health';
import { etcdHealth, memberRemoval, parseEndpointHealth, parseMemberList } from '../../common/drills/health';
import { CommandError } from '../exec/runner';
import type { RunResult } from '../exec/runner';
import type { NodeShell } from './shell';
import { lastLines } from './shell';

/** The etcd role's kubedos_etcd_data_dir (payload/ansible/roles/kubedos_etcd/defaults/main.yml). */
export const ETCD_DATA_DIR = '/var/lib/etcd/kubedos';
/** Ansible loads host_vars next to the inventory (/etc/kubedos/ansible/inventory.yml); one file of ours per node. */
export const ETCD_MEMBER_VARS_DIR = '/etc/kubedos/ansible/host_vars';
export const etcdMemberVarsPath = (node: string): string => `${ETCD_MEMBER_VARS_DIR}/${node}/kubedos-etcd-member.yml`;

/** How the engine reaches etcd: a shell, the node etcdctl runs on, and its argv (endpoints, TLS or not, timeouts). */
export interface EtcdAccess {
  sh: NodeShell;
  /** A healthy member other than the one drilled (its client material, on a deployed cluster). */
  from: string;
  etcdctl: (args: readonly string[]) => string[];
}

const tail = (s: string, lines = 3): string => lastLines(s, lines, 400);
const norm = (u: string): string => u.replace(/\/+$/, '');

/** A member `member add` listed that has not started yet: no name, no client URLs. */
export const isUnstarted = (m: EtcdMemberFact): boolean => m.name === '' && m.clientUrls.length === 0;

/** How often, and how far apart, a member add etcd refuses as "unhealthy cluster" is asked again (30 s in all). */
const ADD_ATTEMPTS = 16;
const ADD_RETRY_MS = 2000;

/**
 * Pure: what a failed etcdctl said, on one line: etcd's own error line (the `Error: …` etcdctl ends
 * with), not the JSON retry warnings the client logs before it; else the last line that is not such a
 * warning; else what there is, bounded.
 */
export function etcdctlSaid(r: { stderr: string; stdout: string }): string {
  const lines = `${r.stderr}\n${r.stdout}`.split('\n').map((l) => l.trim()).filter(Boolean);
  const said = [...lines].reverse().find((l) => l.startsWith('Error:')) ?? [...lines].reverse().find((l) => !l.startsWith('{')) ?? lines.at(-1)?.slice(0, 200) ?? 'no output';
  return said.slice(0, 300);
}

/** Runs etcdctl `args` on a.from; a failure names the node, the etcdctl command and its stderr tail, and what it was for. */
async function etcdctl(a: EtcdAccess, args: readonly string[], what: string, o: { anyExit?: boolean } = {}): Promise<RunResult> {
  const argv = a.etcdctl(args);
  const r = await a.sh.exec(a.from, argv, { anyExit: true, timeoutMs: 30_000 }).catch((err: Error & { stderrTail?: string; exitCode?: number | null }) => {
    throw new CommandError({ message: `${a.from}: etcdctl ${args.join(' ')} (${what}) could not run: ${err.message.split('\n')[0]!.slice(0, 300)}`, command: argv, exitCode: err.exitCode ?? null, stderrTail: err.stderrTail ?? '', reason: 'spawn' });
  });
  if (!o.anyExit && r.exitCode !== 0) {
    throw new CommandError({ message: `${a.from}: etcdctl ${args.join(' ')} (${what}) exited ${r.exitCode}: ${etcdctlSaid(r)}`, command: argv, exitCode: r.exitCode, stderrTail: tail(r.stderr || r.stdout), reason: 'exit' });
  }
  return r;
}

/** The members as etcd lists them now, asked from a.from. */
export async function listMembers(a: EtcdAccess): Promise<EtcdMemberFact[]> {
  return parseMemberList((await etcdctl(a, ['member', 'list', '-w', 'json', '--hex'], 'read the membership')).stdout);
}

/** The node's member: by name, or (added, not started yet: no name) by its peer URL. */
export function memberOf(members: readonly EtcdMemberFact[], node: string, peerUrl: string): EtcdMemberFact | undefined {
  return members.find((m) => m.name === node) ?? members.find((m) => m.peerUrls.some((u) => norm(u) === norm(peerUrl)));
}

/**
 * Fence: removes `node`'s member when the one quorum rule allows it, asked on a.from. Throws,
 * removing nothing, when it does not. A member added and never started is kept (the replacement
 * joins as it). Returns one line naming the member id.
 */
export async function removeEtcdMember(a: EtcdAccess, node: string, peerUrl: string): Promise<{ detail: string; removed?: string }> {
  const members = await listMembers(a);
  const member = memberOf(members, node, peerUrl);
  if (!member) return { detail: `${node} has no etcd member (already removed)` };
  if (isUnstarted(member)) return { detail: `etcd member ${member.id} was added for ${node} and never started: kept, the replacement joins as it` };
  const health = await etcdctl(a, ['endpoint', 'health', '-w', 'json'], 'read the members\' health', { anyExit: true });
  let endpoints: EtcdEndpointFact[];
  try {
    endpoints = parseEndpointHealth(health.stdout);
  } catch {
    endpoints = [];
  }
  const removal = memberRemoval(etcdHealth({ members, endpoints }), member.name);
  if (!removal.ok) throw new Error(`${removal.message}: ${node}'s etcd member ${member.id} is not removed (membership left as is); heal the other members first (kubedos heal)`);
  await etcdctl(a, ['member', 'remove', member.id], `remove ${node}'s member`);
  return { detail: `etcd member ${member.id} (${node}) removed on ${a.from}; ${removal.after} of ${removal.members - 1} members healthy`, removed: member.id };
}

/**
 * Replace: adds `node`'s member (its name, its peer URL) on a.from — once: a member already listed
 * with that peer URL (added by an earlier, interrupted run, or running) is not added again.
 * Returns the member's id (hex) and one line.
 */
export async function addEtcdMember(a: EtcdAccess, node: string, peerUrl: string, o: { attempts?: number; delayMs?: number } = {}): Promise<{ id: string; added: boolean; detail: string }> {
  const before = memberOf(await listMembers(a), node, peerUrl);
  if (before) {
    if (before.name !== '' && before.name !== node) throw new Error(`etcd member ${before.id} (${before.name}) already has ${node}'s peer URL ${peerUrl}: remove it (etcdctl member remove ${before.id}) and run the heal again`);
    return { id: before.id, added: false, detail: `etcd member ${before.id} for ${node} is already listed${isUnstarted(before) ? ' (added earlier, not started yet)' : ''}: not added again` };
  }
  // etcd's strict reconfiguration check refuses a membership change ("unhealthy cluster") until
  // every voting member has been connected for 5 s: right after the removal (or the new leader's
  // election after a killed leader) it does. Seen in the converge namespace lab: a member add 0.1 s
  // after the remove was refused. Refused changes are not made, so asking again is safe.
  for (let attempt = 1; ; attempt++) {
    const r = await etcdctl(a, ['member', 'add', node, `--peer-urls=${peerUrl}`], `add ${node}'s member`, { anyExit: true });
    if (r.exitCode === 0) break;
    const transient = /unhealthy cluster|not enough started members/.test(r.stderr);
    if (!transient || attempt >= (o.attempts ?? ADD_ATTEMPTS)) {
      const argv = a.etcdctl(['member', 'add', node, `--peer-urls=${peerUrl}`]);
      throw new CommandError({ message: `${a.from}: etcdctl member add ${node} --peer-urls=${peerUrl} (add ${node}'s member) exited ${r.exitCode}${transient ? ` ${attempt} times` : ''}: ${etcdctlSaid(r)}`, command: argv, exitCode: r.exitCode, stderrTail: tail(r.stderr || r.stdout), reason: 'exit' });
    }
    await new Promise((res) => setTimeout(res, o.delayMs ?? ADD_RETRY_MS));
  }
  const added = memberOf(await listMembers(a), node, peerUrl);
  if (!added) throw new Error(`${a.from}: etcdctl member add ${node} succeeded but no member lists ${peerUrl}; run the heal again`);
  return { id: added.id, added: true, detail: `etcd member ${added.id} (${node}, ${peerUrl}) added on ${a.from}` };
}

/** Pure: the etcd role's variables for a node whose member the engine added (host_vars on the master). */
export function etcdMemberVars(node: string, memberId: string): string {
  if (!/^[0-9a-f]{1,16}$/.test(memberId)) throw new Error(`"${memberId}" is not an etcd member id (hex)`);
  return [
    `# Written by the Kube'd'OS drill engine: ${node}'s etcd member was added with etcdctl member add.`,
    '# The etcd role empties its data directory once for this member id and starts it into the running',
    '# cluster; etcd ignores both values once its data directory holds the member (no restart later).',
    'kubedos_etcd_initial_cluster_state: existing',
    `kubedos_etcd_member_id: "${memberId}"`,
    '',
  ].join('\n');
}

/** Writes the node's etcd role variables on the master (only when they change). Returns whether it wrote. */
export async function recordEtcdMember(sh: NodeShell, hub: string, node: string, memberId: string): Promise<boolean> {
  const path = etcdMemberVarsPath(node);
  const content = etcdMemberVars(node, memberId);
  const have = await sh.exec(hub, ['/bin/sh', '-c', 'cat "$1" 2>/dev/null || true', 'sh', path]);
  if (have.stdout === content) return false;
  await sh.exec(hub, ['/bin/sh', '-c', 'umask 022 && mkdir -p "${1%/*}" && cat > "$1.tmp" && mv "$1.tmp" "$1"', 'sh', path], { input: content });
  return true;
}

/**
 * Reads `key` from one member only (`etcdctl` against its own endpoint, serializable: from its own
 * store) until it holds `expected`; throws after `attempts` with what it read.
 */
export async function readBackFrom(a: EtcdAccess, key: string, expected: string, o: { attempts?: number; delayMs?: number } = {}): Promise<void> {
  let last = '';
  for (let i = 0; i < (o.attempts ?? 10); i++) {
    const r = await etcdctl(a, ['get', key, '--print-value-only', '--consistency=s'], `read the key written before the drill from ${a.from}`, { anyExit: true });
    if (r.exitCode === 0 && r.stdout.trim() === expected) return;
    last = r.exitCode === 0 ? `read ${JSON.stringify(r.stdout.trim().slice(0, 80))}` : `exit ${r.exitCode}: ${etcdctlSaid(r)}`;
    await new Promise((res) => setTimeout(res, o.delayMs ?? 2000));
  }
  throw new Error(`${a.from}: the key ${key} written before the drill does not read back from its own etcd member (${last}); its member is not serving the cluster's data`);
}

export async function putKey(a: EtcdAccess, key: string, value: string): Promise<void> {
  await etcdctl(a, ['put', key, value], 'write the key the rejoined member must read back');
}

export async function deleteKey(a: EtcdAccess, key: string): Promise<void> {
  await etcdctl(a, ['del', key], 'delete the drill\'s key');
}
