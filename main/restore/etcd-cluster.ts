// etcd back from the recovery bundle's snapshot on a DEPLOYED cluster's members, through their
// guest agents (no SSH, no route into the cluster). The snapshot is decrypted on the workbench
// side (the recovery identity never reaches a node); then, for every member the plan names:
//   1. preflight: the member answers and has its etcd certificates (refused before anything stops);
//   2. the snapshot copied to the member (0600, root only) and its revision read;
//   3. etcd stopped on EVERY member before any member starts again;
//   4. `etcdctl snapshot restore` into a fresh data directory with the plan's member names, peer
//      URLs and cluster token (the same argv builder the namespace lab uses: ./etcd.ts);
//   5. the data directory swapped (the one before the first restore kept beside it once);
//   6. etcd started on every member (without waiting for quorum per member), then a health gate;
//   7. the identity proof: the members' CA chain is the bundle's, revision >= the snapshot's, an
//      optional key readable; the snapshot copies removed, a marker left on each member.
// A rerun after a failure at any step starts again from step 1 and finishes; a rerun after a
// success (every member's marker names this snapshot and etcd is healthy) changes nothing.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan, PlanNode } from '../../common/plan/schema';
import { sha256Hex } from '../../common/canonical';
import { parseEndpointHealth } from '../../common/drills/health';
import type { NodeShell } from '../drills/shell';
import { guestShell } from '../drills/shell';
import type { CommandError, RunResult } from '../exec/runner';
import { ETCD_PKI, etcdMembers } from '../stages/converge';
import type { SubstrateDriver } from '../substrate/driver';
import { openCluster } from '../lifecycle/service';
import type { Target } from '../target';
import { WORKSPACE_LAYOUT } from '../workspace';
import { certFingerprint } from '../trust/ca';
import type { EtcdRestoreMember } from './etcd';
import { etcdSnapshotRestoreArgv } from './etcd';

/** Where the kubedos_etcd role keeps etcd's data (payload/ansible/roles/kubedos_etcd/defaults). */
export const ETCD_DATA_DIR = '/var/lib/etcd/kubedos';
export const ETCD_RESTORE_DIR = `${ETCD_DATA_DIR}.restore`;
export const ETCD_BEFORE_RESTORE_DIR = `${ETCD_DATA_DIR}.before-restore`;
const WORK_DIR = '/var/lib/kubedos/restore';
export const ETCD_SNAPSHOT_COPY = `${WORK_DIR}/etcd-snapshot.db`;
export const ETCD_RESTORE_MARKER = `${WORK_DIR}/etcd-restored.json`;

/** The cluster token the kubedos_etcd role gives etcd (kubedos-<cluster>). */
export const etcdClusterToken = (plan: Plan): string => `kubedos-${plan.cluster.name}`;

/** The deployed members: the plan's names and their wg3 peer URLs (as etcd.env.j2 writes them). */
export function deployedEtcdMembers(plan: Plan): EtcdRestoreMember[] {
  return etcdMembers(plan).map((n) => ({ name: n.name, peerUrl: `https://${wg3(n)}:2380` }));
}

const wg3 = (n: PlanNode): string => n.planes.wg3.address.replace(/\/\d+$/, '');
const tailOf = (s: string, lines = 6): string => s.trim().split('\n').slice(-lines).join(' | ').slice(0, 600);

/** How the restore reaches the members: commands and file writes (the guest agent, or a test's fake). */
export interface EtcdNodes {
  exec: NodeShell['exec'];
  writeFile(node: string, path: string, data: Uint8Array | string, mode: number): Promise<void>;
}

/** The members through their guest agents (the drills' shell, the driver's file write). */
export function guestEtcdNodes(plan: Plan, driver: SubstrateDriver, signal?: AbortSignal): EtcdNodes {
  return {
    exec: guestShell(plan, driver).exec,
    async writeFile(node, path, data, mode) {
      const n = plan.nodes.find((x) => x.name === node);
      if (!n) throw new Error(`there is no node "${node}" in ${plan.cluster.name}`);
      await driver.guestFileWrite(n.vmid, path, data, { mode, ...(signal ? { signal } : {}) });
    },
  };
}

/** A restore step that failed or was refused: which member, the command, its stderr tail, what to run next. */
export class EtcdRestoreError extends Error {
  constructor(
    message: string,
    readonly o: { step: 'preflight' | 'copy' | 'stop' | 'restore' | 'start' | 'health' | 'proof'; member?: string; command?: readonly string[]; stderrTail?: string; next: string; nothingStopped: boolean },
  ) {
    super(message);
    this.name = 'EtcdRestoreError';
  }

  /** The lines the CLI prints. */
  get lines(): string[] {
    return [
      `etcd restore ${this.o.step === 'preflight' ? 'refused' : 'failed'} (${this.o.step}${this.o.member ? ` on ${this.o.member}` : ''}): ${this.message}${this.o.nothingStopped ? '; etcd was not stopped anywhere' : ''}`,
      ...(this.o.command ? [`command: ${this.o.command.join(' ')}`] : []),
      ...(this.o.stderrTail ? [`stderr: ${this.o.stderrTail}`] : []),
      `next: ${this.o.next}`,
    ];
  }
}

export interface EtcdRestoreProof {
  members: string[];
  snapshotSha256: string;
  snapshotRevision: number;
  /** The highest revision the restored members report. */
  revision: number;
  /** Fingerprints of the cluster CA and root CA the members' etcd trusts (their ca.crt chain). */
  clusterCaFingerprint: string;
  rootCaFingerprint: string;
  expectKey?: { key: string; bytes: number };
  /** True when a previous run had already restored this snapshot (nothing was stopped). */
  alreadyRestored: boolean;
}

export interface EtcdRestoreOptions {
  plan: Plan;
  nodes: EtcdNodes;
  /** The decrypted snapshot (from the bundle, opened with the recovery identity on the workbench). */
  snapshot: Buffer;
  /** A key that must read back after the restore (the caller's proof). */
  expectKey?: string;
  /** The command that reruns this restore ("what to run next"). */
  rerun: string;
  log?: (line: string) => void;
  healthTimeoutMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

/** etcdctl on a member against `endpoints`, with the member's peer certificate. */
export function etcdctlArgv(endpoints: readonly string[], args: readonly string[]): string[] {
  return ['etcdctl', `--endpoints=${endpoints.join(',')}`, `--cacert=${ETCD_PKI}/ca.crt`, `--cert=${ETCD_PKI}/peer.crt`, `--key=${ETCD_PKI}/peer.key`, '--dial-timeout=5s', '--command-timeout=20s', ...args];
}

/** The two certificates of a ca.crt chain (cluster CA first, root CA second, as converge writes it). */
function chainFingerprints(pem: string): { cluster: string; root: string } | undefined {
  const certs = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (certs.length < 2) return undefined;
  return { cluster: certFingerprint(certs[0]!), root: certFingerprint(certs[certs.length - 1]!) };
}

export async function restoreEtcdOnCluster(o: EtcdRestoreOptions): Promise<EtcdRestoreProof> {
  const log = o.log ?? (() => undefined);
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((res) => setTimeout(res, ms)));
  const nodes = etcdMembers(o.plan);
  const members = deployedEtcdMembers(o.plan);
  if (!nodes.length) throw new EtcdRestoreError(`${o.plan.cluster.name}'s plan has no etcd members: there is nothing to put the snapshot back on`, { step: 'preflight', next: 'restore a cluster whose spec has etcd members', nothingStopped: true });
  const first = nodes[0]!.name;
  const endpoints = nodes.map((n) => `https://${wg3(n)}:2379`);
  const sha = sha256Hex(o.snapshot);
  let stopped = false;

  /** Runs argv on a member; a failure becomes an EtcdRestoreError of `step`. */
  const run = async (step: EtcdRestoreError['o']['step'], node: string, argv: readonly string[], next: string, opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> => {
    try {
      return await o.nodes.exec(node, argv, { timeoutMs: opts.timeoutMs ?? 60_000, ...(opts.input !== undefined ? { input: opts.input } : {}) });
    } catch (err) {
      const e = err as Error & { stderrTail?: string };
      throw new EtcdRestoreError(e.message.split('\n')[0] ?? 'failed', { step, member: node, command: argv, ...(e.stderrTail ? { stderrTail: e.stderrTail } : {}), next, nothingStopped: !stopped });
    }
  };

  // 1. Preflight: every member answers and has its certificates; nothing stops before all do.
  const missing: { node: string; why: string; command: string[]; stderr?: string }[] = [];
  const markers = await Promise.all(
    nodes.map(async (n) => {
      const argv = ['cat', `${ETCD_PKI}/ca.crt`];
      let r: RunResult;
      try {
        r = await o.nodes.exec(n.name, argv, { anyExit: true, timeoutMs: 20_000 });
      } catch (err) {
        missing.push({ node: n.name, why: 'does not answer through its guest agent', command: argv, stderr: (err as CommandError).stderrTail ?? (err as Error).message.split('\n')[0] });
        return undefined;
      }
      if (r.exitCode !== 0) {
        missing.push({ node: n.name, why: `has no etcd certificates (${ETCD_PKI}/ca.crt): etcd is not converged there`, command: argv, stderr: tailOf(r.stderr) });
        return undefined;
      }
      const m = await o.nodes.exec(n.name, ['cat', ETCD_RESTORE_MARKER], { anyExit: true, timeoutMs: 20_000 }).catch(() => undefined);
      return { chain: r.stdout, marker: m?.exitCode === 0 ? m.stdout : '' };
    }),
  );
  if (missing.length) {
    missing.sort((a, b) => a.node.localeCompare(b.node));
    const f = missing[0]!;
    throw new EtcdRestoreError(`${missing.length} of ${nodes.length} etcd members not ready: ${missing.slice(0, 3).map((m) => `${m.node} ${m.why}`).join('; ')}`, {
      step: 'preflight',
      member: f.node,
      command: f.command,
      ...(f.stderr ? { stderrTail: f.stderr } : {}),
      next: `let the deploy converge every etcd member (kubedos status; kubedos deploy … --target … again), then rerun: ${o.rerun}`,
      nothingStopped: true,
    });
  }
  const chain = chainFingerprints(markers[0]!.chain);
  if (!chain) throw new EtcdRestoreError(`${ETCD_PKI}/ca.crt on ${first} is not a cluster CA + root CA chain`, { step: 'preflight', member: first, command: ['cat', `${ETCD_PKI}/ca.crt`], next: `converge the cluster again (kubedos deploy …), then rerun: ${o.rerun}`, nothingStopped: true });

  const health = async (): Promise<{ ok: boolean; detail: string }> => {
    const r = await o.nodes.exec(first, etcdctlArgv(endpoints, ['endpoint', 'health', '-w', 'json']), { anyExit: true, timeoutMs: 30_000 }).catch((e: Error) => ({ stdout: '', stderr: e.message, exitCode: null }));
    try {
      const eps = parseEndpointHealth(r.stdout);
      const bad = eps.filter((e) => !e.healthy);
      if (eps.length === nodes.length && !bad.length) return { ok: true, detail: `${eps.length} endpoints healthy` };
      return { ok: false, detail: bad.length ? `${bad.length} unhealthy: ${bad.slice(0, 3).map((e) => `${e.endpoint}${e.error ? ` (${e.error})` : ''}`).join(', ')}` : `${eps.length} of ${nodes.length} endpoints answered` };
    } catch {
      return { ok: false, detail: tailOf(r.stderr) || `etcdctl endpoint health exited ${String(r.exitCode)}` };
    }
  };

  const waitHealthy = async (): Promise<{ ok: boolean; detail: string }> => {
    let h = await health();
    for (let i = 0; !h.ok && i < (o.healthTimeoutMs ?? 120_000) / 2_000; i++) {
      await sleep(2_000);
      h = await health();
    }
    return h;
  };

  const prove = async (snapshotRevision: number, alreadyRestored: boolean): Promise<EtcdRestoreProof> => {
    const st = await run('proof', first, etcdctlArgv(endpoints, ['endpoint', 'status', '-w', 'json']), `etcd answers health but not status; see journalctl -u etcd on ${first}, then rerun: ${o.rerun}`);
    let revision = 0;
    try {
      for (const e of JSON.parse(st.stdout) as { Status?: { header?: { revision?: number } } }[]) revision = Math.max(revision, Number(e.Status?.header?.revision ?? 0));
    } catch {
      throw new EtcdRestoreError('etcdctl endpoint status did not print JSON', { step: 'proof', member: first, command: st.command, stderrTail: tailOf(st.stdout + st.stderr), next: `rerun: ${o.rerun}`, nothingStopped: false });
    }
    if (revision < snapshotRevision) throw new EtcdRestoreError(`the restored etcd is at revision ${revision}, below the snapshot's ${snapshotRevision}: the members do not run on the restored data`, { step: 'proof', member: first, command: st.command, next: `see journalctl -u etcd on ${nodes.map((n) => n.name).join(', ')}; rerun: ${o.rerun}`, nothingStopped: false });
    let expectKey: EtcdRestoreProof['expectKey'];
    if (o.expectKey !== undefined) {
      const g = await run('proof', first, etcdctlArgv(endpoints, ['get', o.expectKey, '--print-value-only']), `rerun: ${o.rerun}`);
      if (!g.stdout.length) throw new EtcdRestoreError(`the key "${o.expectKey}" is not in the restored etcd (revision ${revision}); the snapshot was taken without it`, { step: 'proof', member: first, command: g.command, next: 'check the key name, or restore from a bundle sealed after the key was written', nothingStopped: false });
      expectKey = { key: o.expectKey, bytes: Buffer.byteLength(g.stdout.replace(/\n$/, '')) };
    }
    return { members: nodes.map((n) => n.name), snapshotSha256: sha, snapshotRevision, revision, clusterCaFingerprint: chain.cluster, rootCaFingerprint: chain.root, ...(expectKey ? { expectKey } : {}), alreadyRestored };
  };

  // A rerun after a success: every marker names this snapshot and etcd is healthy.
  const parsedMarkers = markers.map((m) => {
    try {
      return JSON.parse(m?.marker ?? '') as { snapshotSha256?: string; snapshotRevision?: number };
    } catch {
      return undefined;
    }
  });
  // (Markers are written only after a restore's health gate and proof, so a healthy cluster with
  // them is done; an unhealthy one is not restored over again: that would throw away every write
  // made since.)
  if (parsedMarkers.every((m) => m?.snapshotSha256 === sha)) {
    const h = await waitHealthy();
    if (!h.ok) {
      throw new EtcdRestoreError(`every member was already restored from this snapshot, but etcd is not healthy now (${h.detail}); restoring again would throw away what was written since`, {
        step: 'health',
        member: first,
        command: etcdctlArgv(endpoints, ['endpoint', 'health', '-w', 'json']),
        next: `see journalctl -u etcd on ${nodes.map((n) => n.name).join(', ')} (kubedos start brings stopped VMs back); to restore from the snapshot again anyway, remove ${ETCD_RESTORE_MARKER} on the members and rerun: ${o.rerun}`,
        nothingStopped: true,
      });
    }
    log(`etcd: every member was already restored from snapshot ${sha.slice(0, 16)}… and is healthy; nothing stopped`);
    return prove(parsedMarkers[0]!.snapshotRevision ?? 0, true);
  }

  // 2. The snapshot on every member, and its revision.
  await Promise.all(
    nodes.map(async (n) => {
      await run('copy', n.name, ['install', '-d', '-m', '0700', WORK_DIR], `rerun: ${o.rerun}`);
      try {
        await o.nodes.writeFile(n.name, ETCD_SNAPSHOT_COPY, o.snapshot, 0o600);
      } catch (err) {
        const e = err as Error & { stderrTail?: string };
        throw new EtcdRestoreError(`copying the snapshot (${o.snapshot.length} bytes) failed: ${e.message.split('\n')[0]}`, { step: 'copy', member: n.name, ...(e.stderrTail ? { stderrTail: e.stderrTail } : {}), next: `is the guest agent up on ${n.name} (kubedos status)? rerun: ${o.rerun}`, nothingStopped: true });
      }
    }),
  );
  const status = await run('copy', first, ['etcdctl', 'snapshot', 'status', ETCD_SNAPSHOT_COPY, '-w', 'json'], `the copy on ${first} is not a readable etcd snapshot; rerun: ${o.rerun}`);
  let snapshotRevision: number;
  try {
    snapshotRevision = Number((JSON.parse(status.stdout) as { revision?: number }).revision);
    if (!Number.isFinite(snapshotRevision)) throw new Error('no revision');
  } catch {
    throw new EtcdRestoreError('etcdctl snapshot status printed no revision', { step: 'copy', member: first, command: status.command, stderrTail: tailOf(status.stdout + status.stderr), next: `rerun: ${o.rerun}`, nothingStopped: true });
  }
  log(`etcd: snapshot ${sha.slice(0, 16)}… (revision ${snapshotRevision}, ${o.snapshot.length} bytes) copied to ${nodes.map((n) => n.name).join(', ')}`);

  // 3. Stop every member before any starts again (a member started early would rejoin the old cluster).
  stopped = true;
  for (const n of nodes) await run('stop', n.name, ['systemctl', 'stop', 'etcd'], `see journalctl -u etcd on ${n.name}; rerun: ${o.rerun}`, { timeoutMs: 120_000 });
  log(`etcd: stopped on ${nodes.map((n) => n.name).join(', ')}`);

  // 4 + 5. A fresh data directory from the snapshot, swapped in.
  const token = etcdClusterToken(o.plan);
  for (const n of nodes) {
    const member = members.find((m) => m.name === n.name)!;
    await run('restore', n.name, ['rm', '-rf', ETCD_RESTORE_DIR], `rerun: ${o.rerun}`);
    await run('restore', n.name, etcdSnapshotRestoreArgv({ snapshot: ETCD_SNAPSHOT_COPY, member, members, token, dataDir: ETCD_RESTORE_DIR }), `etcd stays stopped on every member; rerun: ${o.rerun}`, { timeoutMs: 120_000 });
    await run(
      'restore',
      n.name,
      ['/bin/sh', '-c', 'set -e; if [ -e "$3" ]; then rm -rf "$1"; elif [ -e "$1" ]; then mv "$1" "$3"; fi; mv "$2" "$1"; chown -R etcd:etcd "$1"; chmod 0700 "$1"', 'sh', ETCD_DATA_DIR, ETCD_RESTORE_DIR, ETCD_BEFORE_RESTORE_DIR],
      `etcd stays stopped on every member; rerun: ${o.rerun}`,
    );
  }
  log(`etcd: data directories restored (${ETCD_DATA_DIR}; the one before the first restore kept as ${ETCD_BEFORE_RESTORE_DIR})`);

  // 6. Start all (no waiting per member: a member alone has no quorum), then the health gate.
  for (const n of nodes) await run('start', n.name, ['systemctl', 'start', '--no-block', 'etcd'], `see journalctl -u etcd on ${n.name}; rerun: ${o.rerun}`);
  const h = await waitHealthy();
  if (!h.ok) throw new EtcdRestoreError(`etcd did not become healthy within ${Math.round((o.healthTimeoutMs ?? 120_000) / 1000)} s after the restore: ${h.detail}`, { step: 'health', member: first, command: etcdctlArgv(endpoints, ['endpoint', 'health', '-w', 'json']), next: `see journalctl -u etcd on ${nodes.map((n) => n.name).join(', ')}; rerun: ${o.rerun}`, nothingStopped: false });
  log(`etcd: ${h.detail}`);

  // 7. The proof, then the copies removed and the markers left.
  const proof = await prove(snapshotRevision, false);
  const marker = `${JSON.stringify({ snapshotSha256: sha, snapshotRevision }, null, 2)}\n`;
  for (const n of nodes) {
    await run('proof', n.name, ['rm', '-f', ETCD_SNAPSHOT_COPY], `remove ${ETCD_SNAPSHOT_COPY} on ${n.name} by hand`);
    await o.nodes.writeFile(n.name, ETCD_RESTORE_MARKER, marker, 0o600);
  }
  return proof;
}

/** One line for the CLI and the timeline. */
export function proofLine(p: EtcdRestoreProof): string {
  return `etcd on ${p.members.join(', ')} at revision ${p.revision} (snapshot ${p.snapshotRevision})${p.expectKey ? `, key ${p.expectKey.key} readable (${p.expectKey.bytes} bytes)` : ''}${p.alreadyRestored ? ', already restored by a previous run' : ''}`;
}

/** What `kubedos restore --target` proves after the deploy and the etcd restore (printed, and kept in the timeline). */
export interface RestoreIdentityProof {
  /** The root CA the members' etcd trusts: the bundle's (a mismatch is an error). */
  rootCaFingerprint: string;
  /** The cluster CA the members' etcd trusts: the bundle's, or renewed under the same root (expired intermediate). */
  clusterCaFingerprint: string;
  clusterCa: 'same as the bundle' | 'renewed under the same root';
  /** sha256 of the restored workspace's plan.json: the bundle's plan hash (a mismatch is an error). */
  planSha256: string;
  etcd: EtcdRestoreProof;
}

export interface ClusterEtcdRestoreRequest {
  /** The restored workspace's spec and plan, and the bundle's identity. */
  specText: string;
  workspace: string;
  bundle: { rootCaPem: string; clusterCaPem: string; planSha256: string };
  snapshot: Buffer;
  target: Target;
  env: NodeJS.ProcessEnv;
  cwd?: string;
  expectKey?: string;
  rerun: string;
  log?: (line: string) => void;
  /** Tests inject a driver (closed by the caller then). */
  driver?: SubstrateDriver;
}

/**
 * The engine service `kubedos restore --target` calls once the deploy converged: opens the
 * deployed cluster (its substrate driver), restores etcd on its members from the snapshot, and
 * proves the identity (same root CA, cluster CA from it, same plan hash, revision, key).
 */
export async function restoreClusterEtcd(r: ClusterEtcdRestoreRequest): Promise<RestoreIdentityProof> {
  const opened = openCluster({ specText: r.specText, target: r.target, env: r.env, by: 'kubedos restore', ...(r.cwd ? { cwd: r.cwd } : {}), ...(r.driver ? { driver: r.driver } : {}) });
  try {
    const etcd = await restoreEtcdOnCluster({ plan: opened.plan, nodes: guestEtcdNodes(opened.plan, opened.driver), snapshot: r.snapshot, rerun: r.rerun, ...(r.expectKey !== undefined ? { expectKey: r.expectKey } : {}), ...(r.log ? { log: r.log } : {}) });
    return identityProof(r, etcd);
  } finally {
    await opened.close();
  }
}

/** Compares what the members trust and the workspace plans with the bundle; throws on a mismatch. */
export function identityProof(r: Pick<ClusterEtcdRestoreRequest, 'workspace' | 'bundle' | 'rerun'>, etcd: EtcdRestoreProof): RestoreIdentityProof {
  const root = certFingerprint(r.bundle.rootCaPem);
  if (etcd.rootCaFingerprint !== root) throw new EtcdRestoreError(`the members' etcd trusts root CA ${etcd.rootCaFingerprint}, not the bundle's ${root}: this is not the cluster the bundle describes`, { step: 'proof', member: etcd.members[0]!, next: 'check which bundle belongs to this cluster; do not use this cluster as the restored one', nothingStopped: false });
  const wsClusterCa = certFingerprint(readFileSync(join(r.workspace, WORKSPACE_LAYOUT.trust, 'cluster-ca.crt'), 'utf8'));
  if (etcd.clusterCaFingerprint !== wsClusterCa) throw new EtcdRestoreError(`the members' etcd trusts cluster CA ${etcd.clusterCaFingerprint}, the workspace holds ${wsClusterCa}`, { step: 'proof', member: etcd.members[0]!, next: `converge the cluster again (kubedos deploy …), then rerun: ${r.rerun}`, nothingStopped: false });
  const planSha256 = sha256Hex(readFileSync(join(r.workspace, WORKSPACE_LAYOUT.plan)));
  if (planSha256 !== r.bundle.planSha256) throw new EtcdRestoreError(`the workspace's plan hashes to ${planSha256}, the bundle's to ${r.bundle.planSha256}`, { step: 'proof', next: 'restore into an empty workspace with the version of kubedos that sealed the bundle', nothingStopped: false });
  return { rootCaFingerprint: root, clusterCaFingerprint: etcd.clusterCaFingerprint, clusterCa: etcd.clusterCaFingerprint === certFingerprint(r.bundle.clusterCaPem) ? 'same as the bundle' : 'renewed under the same root', planSha256, etcd };
}

/** The proof's lines for the CLI. */
export function identityLines(p: RestoreIdentityProof): string[] {
  return [`identity: root CA ${p.rootCaFingerprint} (the bundle's)`, `identity: cluster CA ${p.clusterCaFingerprint} (${p.clusterCa})`, `identity: plan ${p.planSha256} (the bundle's)`, `identity: ${proofLine(p.etcd)}`];
}
