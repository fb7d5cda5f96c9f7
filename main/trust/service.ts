// The trust service shared by `kubedos trust` and the workbench: the inventory (certificates with
// expiry against security.keyRotation, the revocation list), the checks an operation passes before
// anything is contacted, and running an operation on the namespace lab (a throwaway copy of the
// plan) — or saying plainly that a deployed cluster cannot be reached from here yet.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan } from '../../common/plan/index';
import type { TrustOperation, TrustOpReport } from '../../common/trust/operations';
import { refuseTrustOperation } from '../../common/trust/operations';
import { canonicalJson } from '../../common/canonical';
import { isRoot, LAB_NEEDS_ROOT } from '../drills/service';
import { makePrivateDir, WORKSPACE_LAYOUT, writePrivateFile } from '../workspace';
import { createLabTrustTarget } from './lab-target';
import type { NodeShell } from '../drills/shell';
import { ageIdentity } from './identity';
import { runTrustOperation, TrustOperationError } from './operations';
import type { TrustTarget } from './operations';
import { openSecretStore } from './secret-store';
import { ENROLL_HMAC_SECRET } from './token';

import type { RevocationList } from './revocation';
import { emptyRevocationList, RevocationList as RevocationListSchema, revokeNode } from './revocation';

/** What `kubedos trust` and the workbench say when asked to act on a deployed cluster. */
export const NO_CLUSTER_TRUST =
  'cannot reach a deployed cluster from here yet: the operation runs on its hub and nodes, and this version cannot drive them there. Nothing was changed. Run it on a copy of the plan in network namespaces with --lab (needs root).';

export function revocationsPath(workspace: string): string {
  return join(workspace, WORKSPACE_LAYOUT.trust, 'revoked.json');
}

/** The workspace's revocation list (empty when there is none yet); a damaged file is an error that names it. */
export function workspaceRevocations(workspace: string, cluster: string): RevocationList {
  const path = revocationsPath(workspace);
  if (!existsSync(path)) return emptyRevocationList(cluster);
  const parsed = RevocationListSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  if (!parsed.success) throw new Error(`${path} is not a revocation list (${parsed.error.issues[0]?.message ?? 'invalid'}); fix or remove it`);
  return parsed.data;
}

/**
 * After an operation on the deployed cluster: a revocation is kept in the workspace too (the
 * recovery bundle and `trust list` read it; the enroll stage refuses a revoked node). A lab run
 * changes nothing here.
 */
export function recordTrustReport(workspace: string, report: TrustOpReport, reason: string, nowS: number): void {
  if (report.target !== 'cluster' || report.op !== 'revoke' || !report.node) return;
  const list = revokeNode(workspaceRevocations(workspace, report.cluster), report.node, nowS, reason);
  makePrivateDir(join(workspace, WORKSPACE_LAYOUT.trust));
  writePrivateFile(revocationsPath(workspace), `${canonicalJson(list, 2)}\n`);
}

/** Why an operation cannot start (from the plan, the workspace's revocation list and where it would run), or undefined. */
export function preflightTrustOperation(plan: Plan, o: TrustOperation, where: { workspace?: string; lab: boolean; root?: boolean; /** The caller reaches the deployed cluster (the CLI, through the guest agents). */ cluster?: boolean }): string | undefined {
  // A lab is a fresh copy of the plan: the workspace's revocations are not in it.
  const revoked = !where.lab && where.workspace ? workspaceRevocations(where.workspace, plan.cluster.name).revoked.map((r) => r.node) : [];
  const refusal = refuseTrustOperation(plan, o, revoked);
  if (refusal) return refusal;
  if (where.lab && !(where.root ?? isRoot())) return `${LAB_NEEDS_ROOT}; nothing was changed`;
  if (!where.lab && !where.cluster) return NO_CLUSTER_TRUST;
  return undefined;
}

/**
 * A deployed cluster as a trust target: `shell` runs argv on its nodes (the guest agents), the
 * enrollment key comes from the workspace's SecretStore (tokens the hub will accept).
 */
export async function workspaceTrustTarget(plan: Plan, shell: NodeShell, workspace: string, env: NodeJS.ProcessEnv): Promise<TrustTarget> {
  const store = await openSecretStore(join(workspace, WORKSPACE_LAYOUT.secrets), await ageIdentity(env));
  if (!(await store.has(ENROLL_HMAC_SECRET))) throw new TrustOperationError(`no enrollment key in ${store.dir}: ${plan.cluster.name} was never deployed from this workspace; nothing was changed`);
  return { kind: 'cluster', plan, shell, hmacKey: await store.get(ENROLL_HMAC_SECRET) };
}

/** Runs one operation on a deployed cluster and keeps a revocation in the workspace too. */
export async function runTrustOperationOnCluster(target: TrustTarget, workspace: string, o: TrustOperation, opts: { log?: (line: string) => void; signal?: AbortSignal; now?: () => number } = {}): Promise<TrustOpReport> {
  const r = await runTrustOperation(target, o, opts);
  recordTrustReport(workspace, r, o.op === 'revoke' ? (o.reason ?? 'revoked by the operator') : '', Math.floor((opts.now?.() ?? Date.now()) / 1000));
  if (r.op === 'revoke' && r.node) r.changed.push(`${r.node} added to the workspace's revocation list (${revocationsPath(workspace)})`);
  return r;
}

/** Builds the namespace lab of the plan (every spoke enrolled), runs one operation on it, removes the lab. */
export async function runTrustOperationOnLab(plan: Plan, o: TrustOperation, opts: { log?: (line: string) => void; signal?: AbortSignal } = {}): Promise<TrustOpReport> {
  const t0 = Date.now();
  const target = await createLabTrustTarget(plan, opts.log ? { log: opts.log } : {});
  try {
    opts.log?.(`lab of ${plan.nodes.length} nodes up and enrolled in ${Date.now() - t0} ms`);
    return await runTrustOperation(target, o, opts);
  } finally {
    target.destroy();
  }
}
