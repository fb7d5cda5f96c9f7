// `kubedos wiring check` on a deployed cluster (and, through the same function, the workbench):
// the plan's flow matrix run on the VMs through their guest agents (guestShell), the hub's
// handshake ages, and the result recorded as the cluster's last check
// (<workspace>/clusters/<name>/wiring/last-check.json, private) for the Wiring view.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan } from '../../common/plan/index';
import type { HandshakeAge } from '../../common/wiring/last-check';
import { MAX_RECORDED_MISMATCHES, WiringLastCheck } from '../../common/wiring/last-check';
import type { NodeShell } from '../drills/shell';
import { guestShell } from '../drills/shell';
import type { LifecycleRequest } from '../lifecycle/service';
import { openCluster } from '../lifecycle/service';
import { activeDeploy, clusterWorkspace, ensureClusterWorkspace, makePrivateDir, writePrivateFile } from '../workspace';
import type { WiringReport } from './check';
import { runWiringChecks } from './check';
import type { MatrixOptions } from './matrix';
import { wiringChecks } from './matrix';
import { hubHandshakeAges, planeAddressesOf, shellWiringTarget } from './shell-target';

export const WIRING_DIR = 'wiring';
export const LAST_CHECK_FILE = 'last-check.json';

export function lastCheckPath(cluster: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(clusterWorkspace(cluster, env), WIRING_DIR, LAST_CHECK_FILE);
}

export function saveLastCheck(r: WiringLastCheck, env: NodeJS.ProcessEnv = process.env): string {
  ensureClusterWorkspace(r.cluster, env);
  const dir = makePrivateDir(join(clusterWorkspace(r.cluster, env), WIRING_DIR));
  const path = join(dir, LAST_CHECK_FILE);
  writePrivateFile(path, `${JSON.stringify(WiringLastCheck.parse(r), null, 2)}\n`);
  return path;
}

/** The last recorded check: none (never checked), or the record, or why the file is unreadable. */
export function readLastCheck(cluster: string, env: NodeJS.ProcessEnv = process.env): { check?: WiringLastCheck; error?: string } {
  const path = lastCheckPath(cluster, env);
  if (!existsSync(path)) return {};
  try {
    return { check: WiringLastCheck.parse(JSON.parse(readFileSync(path, 'utf8'))) };
  } catch (err) {
    return { error: `${path} is not a wiring check record (${(err as Error).message.split('\n')[0]}); the next kubedos wiring check rewrites it` };
  }
}

export interface WiringRun {
  report: WiringReport;
  handshakes: HandshakeAge[];
  handshakeError?: string;
  record: WiringLastCheck;
}

/** The record of one check: exact counts, the first MAX_RECORDED_MISMATCHES disagreeing flows. */
export function lastCheckOf(plan: Plan, r: WiringReport, hs: { handshakes: HandshakeAge[]; handshakeError?: string }, o: { checkedAt: string; target: string }): WiringLastCheck {
  return {
    cluster: plan.cluster.name,
    checkedAt: o.checkedAt,
    target: o.target,
    hub: plan.nodes.find((n) => n.hub)?.name ?? '',
    flows: r.results.length,
    passed: r.passed,
    failed: r.failed,
    durationMs: r.durationMs,
    mismatches: r.results
      .filter((c) => !c.ok)
      .slice(0, MAX_RECORDED_MISMATCHES)
      .map((c) => ({ fromNode: c.from.node, fromPlane: c.from.plane, from: c.from.address, toNode: c.to.node, toPlane: c.to.plane, to: c.to.address, port: c.port, expect: c.expect, observed: c.observed, ...(c.error ? { error: c.error } : {}) })),
    handshakes: hs.handshakes,
    ...(hs.handshakeError ? { handshakeError: hs.handshakeError } : {}),
    counters: r.counters,
  };
}

/** The matrix and the handshake ages over any NodeShell (the lab's, or guestShell on VMs). */
export async function runWiringCheckOnShell(shell: NodeShell, plan: Plan, o: MatrixOptions & { runId: string; target: string; now: () => Date; probe?: string }): Promise<WiringRun> {
  const target = shellWiringTarget(shell, { runId: o.runId, addressesOf: planeAddressesOf(plan), ...(o.probe ? { probe: o.probe } : {}) });
  const report = await runWiringChecks(target, plan.nodes.map((n) => n.name), wiringChecks(plan, o.denyPairs ? { denyPairs: o.denyPairs } : {}));
  let handshakes: HandshakeAge[] = [];
  let handshakeError: string | undefined;
  try {
    handshakes = await hubHandshakeAges(shell, plan);
  } catch (err) {
    handshakeError = (err as Error).message;
  }
  const hs = { handshakes, ...(handshakeError ? { handshakeError } : {}) };
  return { report, ...hs, record: lastCheckOf(plan, report, hs, { checkedAt: o.now().toISOString(), target: o.target }) };
}

export class WiringCheckRefused extends Error {}

/**
 * Runs the check on the deployed cluster of `request` (the caller refused a cluster that was
 * never deployed or is stopped: clusterOperationRequest) and records it as the last check.
 */
export async function runClusterWiringCheck(request: LifecycleRequest, o: MatrixOptions & { now?: () => Date; runId?: string } = {}): Promise<WiringRun & { recordPath: string }> {
  const opened = openCluster(request);
  try {
    const busy = activeDeploy(opened.workspace);
    if (busy) throw new WiringCheckRefused(`refused: "${busy.by}" (pid ${busy.pid}) is working on ${opened.plan.cluster.name} since ${busy.startedAt}; run the wiring check once it has finished`);
    const now = o.now ?? (() => new Date());
    const run = await runWiringCheckOnShell(guestShell(opened.plan, opened.driver), opened.plan, {
      ...(o.denyPairs ? { denyPairs: o.denyPairs } : {}),
      runId: o.runId ?? `${now().getTime().toString(36)}-${process.pid}`,
      target: opened.driver.target,
      now,
    });
    return { ...run, recordPath: saveLastCheck(run.record, request.env) };
  } finally {
    await opened.close();
  }
}
