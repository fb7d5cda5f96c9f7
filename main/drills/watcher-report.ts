// Reads the hub's health-watcher report (payload/backplane/kubedos-health-watch) through a
// NodeShell on the hub and parses it with the shared schema (common/drills/watcher.ts). Used by
// `kubedos status SPEC --health`, and by any drill target whose shell reaches the hub.
import { readFileSync } from 'node:fs';
import type { WatcherStatus } from '../../common/drills/watcher';
import { HEALTH_WATCH_REPORT_PATH, readWatcherFor, watcherStatusOf } from '../../common/drills/watcher';
import { hubOf } from '../../common/plan/index';
import { analyse } from '../deploy/service';
import { substrateFor } from '../substrate/factory';
import type { SubstrateDriver } from '../substrate/driver';
import type { Target } from '../target';
import { clusterWorkspace } from '../workspace';
import type { RunResult } from '../exec/runner';
import type { NodeShell } from './shell';
import { lastLines } from './shell';

const tail = (s: string): string => lastLines(s, 3, 400);

/** The report on `hub`, parsed; never throws: an unreadable report says why, in the user's words. */
export async function readWatcherReport(sh: NodeShell, hub: string, o: { nowSeconds: () => number; path?: string; timeoutMs?: number }): Promise<WatcherStatus> {
  const path = o.path ?? HEALTH_WATCH_REPORT_PATH;
  try {
    const r = await sh.exec(hub, ['cat', path], { anyExit: true, timeoutMs: o.timeoutMs ?? 15_000 });
    if (r.exitCode !== 0) {
      const why = tail(r.stderr) || `cat exited ${r.exitCode}`;
      return { readable: false, hub, path, reason: `no report at ${path} on ${hub} (${why}): the health watcher has not written one — is kubedos-health-watch.service active there? (systemctl status kubedos-health-watch)` };
    }
    return watcherStatusOf(hub, path, r.stdout, o.nowSeconds());
  } catch (err) {
    return { readable: false, hub, path, reason: `could not reach ${hub} to read ${path}: ${(err as Error).message.split('\n')[0]}` };
  }
}

/** A NodeShell over the substrate's guest agent, by plan node name (what status needs to read one file). */
export function guestAgentShell(driver: SubstrateDriver, vmidOf: (node: string) => number, signal?: AbortSignal): NodeShell {
  return {
    async exec(node, argv, o) {
      const started = Date.now();
      const r = await driver.guestExec(vmidOf(node), argv, { timeoutS: Math.ceil((o?.timeoutMs ?? 60_000) / 1000), ...(o?.input !== undefined ? { input: o.input } : {}), ...(signal ? { signal } : {}) });
      const command = [...argv];
      if (r.exitCode !== 0 && !o?.anyExit) throw new Error(`${node}: ${command.join(' ')} exited ${r.exitCode}: ${tail(r.stderr)}`);
      const result: RunResult = { command, exitCode: r.exitCode, signal: null, stdout: r.stdout, stderr: r.stderr, durationMs: Date.now() - started };
      return result;
    },
  };
}

export interface HubHealthRequest {
  /** The spec, as a file or as its text (one of the two). */
  specPath?: string;
  specText?: string;
  target: Target;
  env: NodeJS.ProcessEnv;
  cwd?: string;
  sshConfigPath?: string;
  knownHostsPath?: string;
  acceptHostKey?: string;
  signal?: AbortSignal;
  /** Tests inject a driver (closed by the caller then). */
  driver?: SubstrateDriver;
  timeoutMs?: number;
}

/** The watcher's report of a deployed cluster, read on its hub through the guest agent. */
export async function readHubHealth(req: HubHealthRequest): Promise<WatcherStatus> {
  return (await readHubAndAgents(req, { pingAgents: false })).status;
}

/**
 * What reading a cluster's health now takes from the hypervisor, over one substrate connection:
 * each node's guest agent pinged (the hypervisor's view, which the hub's watcher cannot have),
 * and the hub's watcher report. `agents` is absent when the substrate could not be reached.
 */
export interface HubReading {
  status: WatcherStatus;
  /** Node → did its guest agent answer a ping now. */
  agents?: Record<string, boolean>;
}

export async function readHubAndAgents(req: HubHealthRequest, o: { pingAgents?: boolean } = {}): Promise<HubReading> {
  const text = req.specText ?? (req.specPath !== undefined ? readFileSync(req.specPath, 'utf8') : undefined);
  if (text === undefined) throw new Error('readHubHealth: give specText or specPath');
  const { spec, plan } = analyse(text);
  const hub = hubOf(plan);
  const own = !req.driver;
  let driver: SubstrateDriver | undefined = req.driver;
  try {
    driver ??= substrateFor({
      spec,
      plan,
      target: req.target,
      workspace: clusterWorkspace(plan.cluster.name, req.env),
      env: req.env,
      ...(req.cwd ? { cwd: req.cwd } : {}),
      ...(req.sshConfigPath ? { sshConfigPath: req.sshConfigPath } : {}),
      ...(req.knownHostsPath ? { knownHostsPath: req.knownHostsPath } : {}),
      ...(req.acceptHostKey ? { acceptHostKey: req.acceptHostKey } : {}),
      dryRun: true,
    }).driver;
    const vmid = (node: string): number => {
      const n = plan.nodes.find((x) => x.name === node);
      if (!n) throw new Error(`${node} is not in the plan`);
      return n.vmid;
    };
    let agents: Record<string, boolean> | undefined;
    if (o.pingAgents !== false) {
      const d = driver;
      const answered = await Promise.all(plan.nodes.map(async (n) => [n.name, await d.guestPing(n.vmid, req.signal ? { signal: req.signal } : {}).catch(() => false)] as const));
      agents = Object.fromEntries(answered.sort(([a], [b]) => a.localeCompare(b)));
    }
    const status = await readWatcherReport(guestAgentShell(driver, vmid, req.signal), hub.name, { nowSeconds: () => Date.now() / 1000, ...(req.timeoutMs !== undefined ? { timeoutMs: req.timeoutMs } : {}) });
    return { status, ...(agents ? { agents } : {}) };
  } catch (err) {
    return { status: { readable: false, hub: hub.name, path: HEALTH_WATCH_REPORT_PATH, reason: `could not reach ${hub.name} (VMID ${hub.vmid}) through ${req.target.kind}: ${(err as Error).message.split('\n')[0]}` } };
  } finally {
    if (own && driver) await driver.close().catch(() => undefined);
  }
}

/**
 * Waits until the hub's watcher reports `node` as detected (a finding lasting detectAfterProbes
 * probes) in a fresh report written after `afterSeconds`: the detect phase of a cluster whose hub
 * runs the watcher. Returns the report and the detection latency from `afterSeconds`; throws with
 * the last reading when the time runs out.
 */
export async function waitForWatcherDetection(
  sh: NodeShell,
  hub: string,
  node: string,
  o: { afterSeconds: number; timeoutMs: number; nowSeconds?: () => number; pollMs?: number; signal?: AbortSignal; path?: string },
): Promise<{ status: Extract<WatcherStatus, { readable: true }>; latencySeconds: number; firstSeenSeconds: number }> {
  const now = o.nowSeconds ?? (() => Date.now() / 1000);
  const deadline = Date.now() + o.timeoutMs;
  let last: WatcherStatus | undefined;
  while (Date.now() < deadline) {
    if (o.signal?.aborted) throw new Error(`waiting for the watcher on ${hub} to detect ${node}: aborted`);
    last = await readWatcherReport(sh, hub, { nowSeconds: now, ...(o.path ? { path: o.path } : {}) });
    const reading = readWatcherFor(last, node, o.afterSeconds);
    if (reading.kind === 'detected') return { status: reading.status, latencySeconds: reading.status.report.at - o.afterSeconds, firstSeenSeconds: reading.since - o.afterSeconds };
    await new Promise((r) => setTimeout(r, o.pollMs ?? 250));
  }
  const why = !last ? 'no reading' : !last.readable ? last.reason : last.stale ? `the report is stale (${Math.round(last.ageSeconds)} s old): the watcher stopped` : `findings: ${last.report.findings.map((f) => `${f.node} ${f.signal} ×${f.probes}`).join(', ') || 'none'}`;
  throw new Error(`the watcher on ${hub} did not report ${node} as detected within ${Math.round(o.timeoutMs / 1000)} s (${why})`);
}
