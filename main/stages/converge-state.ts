// Converge skips what has not moved: after a successful converge the engine records, per node,
// a fingerprint of what the Ansible roles manage (their files' sha256 and the state of their
// services), together with the hash of the converge inputs (plan, baked payload, tags). The next
// converge probes every node with one command; Ansible runs only on the nodes whose fingerprint
// moved (or all of them when the inputs changed, --force is given, or there is no record). A probe
// that cannot run counts as moved: a node is never skipped on a guess.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { canonicalJson, sha256Hex } from '../../common/canonical';
import { writeFileAtomic } from '../build/files';

export const CONVERGE_STATE_FILE = 'converge-state.json';

/** What the converge roles write (baseline, backplanes, etcd, lb, observability). */
export const FINGERPRINT_PATHS = [
  '/etc/default',
  '/etc/ssh/sshd_config.d',
  '/etc/sysctl.d',
  '/etc/audit/rules.d',
  '/etc/issue.net',
  '/etc/haproxy',
  '/etc/keepalived',
  '/etc/prometheus',
  '/etc/containerd',
  '/etc/grafana',
  '/etc/loki',
  '/etc/systemd/system',
  '/etc/kubedos/ansible',
  '/etc/kubedos/node.json',
  '/etc/kubedos/nftables.nft',
  '/etc/kubedos/pki',
] as const;

/**
 * Files the engine itself writes inside the fingerprinted paths, left out of the fingerprint: it
 * covers what the roles manage. The hub's known_hosts for converge changes whenever a node gets
 * a new host key (a node replaced by a drill): with it in the fingerprint the master's converge
 * ran again on every replacement (2026-12-04, on VMs: the worker drill converged w-1 and the master).
 * The host_vars the drill engine writes for a re-added etcd member (main/drills/etcd-member.ts)
 * are the replaced node's converge input, not the master's: the same reason.
 */
export const KNOWN_HOSTS = '/etc/kubedos/ansible/known_hosts';
/** find -path patterns (a trailing `*`: everything under a directory). */
export const FINGERPRINT_EXCLUDED = [KNOWN_HOSTS, '/etc/kubedos/ansible/host_vars/*'] as const;

/** Services the roles start; a unit a node does not have reports "inactive" and stays stable. */
export const FINGERPRINT_UNITS = ['ssh', 'nftables', 'auditd', 'etcd', 'haproxy', 'keepalived', 'prometheus', 'prometheus-node-exporter', 'containerd', 'grafana-server', 'loki'] as const;

/**
 * Pure: the one command a node runs for its fingerprint (sha256 of file hashes + unit states).
 * `root` prefixes every path (tests run it on a tree of their own; nodes use '').
 */
export function fingerprintCommand(root = ''): string[] {
  const paths = FINGERPRINT_PATHS.map((p) => `${root}${p}`).join(' ');
  const skip = FINGERPRINT_EXCLUDED.map((p) => `! -path '${root}${p}'`).join(' ');
  const units = FINGERPRINT_UNITS.join(' ');
  const script = [
    'set -u',
    '{',
    `  for p in ${paths}; do [ -e "$p" ] && find "$p" -xdev \\( -type f -o -type l \\) ${skip} -print0; done | sort -z | xargs -0r sha256sum`,
    `  for u in ${units}; do printf '%s %s %s\\n' "$u" "$(systemctl is-active "$u" 2>/dev/null)" "$(systemctl is-enabled "$u" 2>/dev/null)"; done`,
    '} | sha256sum | cut -d" " -f1',
  ].join('\n');
  return ['sh', '-c', script];
}

export const ConvergeState = z.object({
  /** Hash of the converge inputs the fingerprints were taken under. */
  inputs: z.string().regex(/^[0-9a-f]{64}$/),
  runId: z.string(),
  nodes: z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/)),
});
export type ConvergeState = z.infer<typeof ConvergeState>;

/** The record, or undefined with the reason it cannot be used (missing, corrupt). */
export function readConvergeState(workspace: string): { state?: ConvergeState; reason?: string } {
  const path = join(workspace, CONVERGE_STATE_FILE);
  if (!existsSync(path)) return { reason: 'no record of an earlier converge' };
  try {
    const parsed = ConvergeState.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    return parsed.success ? { state: parsed.data } : { reason: `${path} is not a converge record (${parsed.error.issues[0]?.message}): every node converges` };
  } catch (err) {
    return { reason: `${path} is not JSON (${(err as Error).message.split('\n')[0]}): every node converges` };
  }
}

export function writeConvergeState(workspace: string, state: ConvergeState): void {
  writeFileAtomic(join(workspace, CONVERGE_STATE_FILE), canonicalJson(state, 2) + '\n', 0o600);
}

/** Pure: the converge inputs' hash (plan, baked payload per role, tags, what the spec enables). */
export function convergeInputs(o: { planJson: string; payload: readonly { path: string; sha256: string }[]; tags: readonly string[]; salt: boolean }): string {
  return sha256Hex(canonicalJson({ plan: sha256Hex(o.planJson), payload: [...o.payload].sort((a, b) => (a.path < b.path ? -1 : 1)), tags: [...o.tags], salt: o.salt }));
}

export type NodeProbe = { node: string; fingerprint: string } | { node: string; error: string };

/** Pure: which nodes must converge, and why, given the record, the inputs and the probes. */
export function nodesToConverge(o: { nodes: readonly string[]; inputs: string; state?: ConvergeState; stateReason?: string; force: boolean; probes: readonly NodeProbe[] }): { run: { node: string; why: string }[]; skip: string[] } {
  const all = (why: string): { run: { node: string; why: string }[]; skip: string[] } => ({ run: o.nodes.map((node) => ({ node, why })), skip: [] });
  if (o.force) return all('--force');
  if (!o.state) return all(o.stateReason ?? 'no record of an earlier converge');
  if (o.state.inputs !== o.inputs) return all('the converge inputs changed (plan or baked payload)');
  const run: { node: string; why: string }[] = [];
  const skip: string[] = [];
  for (const node of o.nodes) {
    const p = o.probes.find((x) => x.node === node);
    const was = o.state.nodes[node];
    if (!p) run.push({ node, why: 'not probed' });
    else if ('error' in p) run.push({ node, why: `its probe could not run (${p.error})` });
    else if (!was) run.push({ node, why: 'never converged' });
    else if (was !== p.fingerprint) run.push({ node, why: 'its managed files or services changed since the last converge' });
    else skip.push(node);
  }
  return { run, skip };
}
