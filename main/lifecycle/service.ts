// The cluster lifecycle, one engine service for `kubedos stop|start|destroy` and the workbench
// (main/ipc/lifecycle.ts binds it):
//  - stop: a graceful shutdown through each guest agent (systemctl poweroff), a power-off after
//    the timeout; reverse plan order, the hub last, then (qemu-local) the L2 hub processes;
//  - start: plan order with the hub first, then waits for every guest agent, for the planes (at
//    the hub: a fresh handshake with every peer on wg1, wg2 and wg3) and for etcd where it runs;
//  - destroy: every VM the cluster owns (owns(): a foreign VM inside the VMID range is never
//    touched), their disks and TPM state, sockets and hub processes, the boot images it uploaded
//    to the host's storage (by name, ownsImageFile; one another VM still uses stays), and unless kept the
//    cluster's workspace, after its trust material, recovery bundle and plan were exported to
//    the cluster's recovery folder.
// Each action runs as a one-stage pipeline run, so it is journaled like a deploy (`kubedos
// status` shows "stopped at …") and streams the same events. Every failure says what was done
// and what was not; a rerun finishes the job (each step is idempotent).
import { cpSync, existsSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DestroyPreview, LifecycleOutcome } from '../../common/contract/lifecycle';
import { imagePrefix } from '../../common/plan/ownership';
import type { Plan, PlanNode } from '../../common/plan/schema';
import type { PipelineEvent } from '../../common/pipeline/events';
import type { ClusterSpec } from '../../common/spec/schema';
import { analyse } from '../deploy/service';
import type { PipelineResult, StageContext } from '../pipeline/runner';
import { runPipeline, StageError } from '../pipeline/runner';
import { ETCD_PKI, etcdctlArgv, etcdMembers } from '../stages/converge';
import { bootTimeoutMs, planesStatus } from '../stages/firstboot';
import { hubRevoked } from '../stages/enroll';
import { firstFew } from '../../common/text/first-few';
import { HANDSHAKE_FRESH_S, PLANE_NAMES, planeProblems } from '../stages/backplanes';
import type { Inventory, SubstrateDriver, SubstrateEvent } from '../substrate/driver';
import { SubstrateError } from '../substrate/driver';
import { imageStorage, substrateFor } from '../substrate/factory';
import { RECOVERY_DIR } from '../trust/recovery';
import { waitForAgents } from '../substrate/provision';
import { QemuLocalDriver } from '../substrate/qemu-local';
import type { Target } from '../target';

import { acquireDeployLock, clusterWorkspace, makePrivateDir, WORKSPACE_LAYOUT } from '../workspace';
import type { DestroyDecision, ImageDecision } from './decide';
import { countAndFirst, decideDestroy, decideImages, startOrder, stopOrder } from './decide';

export type { DestroyPreview, LifecycleOutcome };
import type { LifecycleAction } from './record';
import { recoveryDir } from './record';

export interface LifecycleRequest {
  /** The spec's text (the cluster and its plan are derived from it). */
  specText: string;
  target: Target;
  env: NodeJS.ProcessEnv;
  /** Base for a relative spec.qemu.stateDir. */
  cwd?: string;
  /** Who holds the cluster's lock meanwhile ("kubedos stop lab-3.yaml", "workbench"). */
  by: string;
  sshConfigPath?: string;
  knownHostsPath?: string;
  acceptHostKey?: string;
  signal?: AbortSignal;
  onEvent?: (event: PipelineEvent) => void;
  /** Tests inject a driver (it is closed by the caller then). */
  driver?: SubstrateDriver;
}

export interface DestroyOptions {
  allowDestroy: boolean;
  keepWorkspace: boolean;
  dryRun: boolean;
}

interface Opened {
  spec: ClusterSpec;
  plan: Plan;
  workspace: string;
  driver: SubstrateDriver;
  /** Where the cluster's boot images were uploaded. */
  storage: string;
  ownDriver: boolean;
}

function open(req: LifecycleRequest, dryRun = false): Opened {
  const { spec, plan } = analyse(req.specText);
  const workspace = clusterWorkspace(plan.cluster.name, req.env);
  if (req.driver) return { spec, plan, workspace, driver: req.driver, storage: imageStorage(spec, req.target), ownDriver: false };
  const { driver, storage } = substrateFor({
    spec,
    plan,
    target: req.target,
    workspace,
    env: req.env,
    ...(req.cwd ? { cwd: req.cwd } : {}),
    ...(req.sshConfigPath ? { sshConfigPath: req.sshConfigPath } : {}),
    ...(req.knownHostsPath ? { knownHostsPath: req.knownHostsPath } : {}),
    ...(req.acceptHostKey ? { acceptHostKey: req.acceptHostKey } : {}),
    dryRun,
  });
  return { spec, plan, workspace, driver, storage, ownDriver: true };
}

/** The cluster of a spec and its substrate driver (drills and heals open it the same way); close() releases a driver it opened. */
export function openCluster(req: LifecycleRequest): Opened & { close(): Promise<void> } {
  const o = open(req);
  return { ...o, close: async () => (o.ownDriver ? o.driver.close() : undefined) };
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((res, rej) => {
    if (signal?.aborted) return rej(new SubstrateError('aborted', 'aborted'));
    const onAbort = (): void => {
      clearTimeout(t);
      rej(new SubstrateError('aborted', 'aborted'));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      res();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

function logger(s: StageContext): (e: SubstrateEvent) => void {
  return (e) => {
    if (e.kind === 'log') s.log(e.message, { ...(e.node ? { node: e.node } : {}), stream: e.level });
    else if (e.kind === 'command') s.log(`$ ${e.command}`, { ...(e.node ? { node: e.node } : {}) });
    else if (e.kind === 'vm') s.log(`${e.node} (VMID ${e.vmid}): ${e.state}`, { node: e.node });
  };
}

function unreachable(target: string, err: unknown, nothing: string): StageError {
  const e = err as Error & { hint?: string; stderrTail?: string };
  return new StageError(`could not read the VMs on ${target}: ${e.message.split('\n')[0]}; ${nothing}`, {
    ...(e.stderrTail ? { stderrTail: e.stderrTail } : {}),
    hint: `${e.hint ? `${e.hint}; ` : ''}run the same command again once ${target} answers`,
  });
}

/** The plan's bridges, sorted (qemu-local runs one L2 hub per bridge). */
export function bridgesOf(plan: Plan): string[] {
  return [...new Set(plan.nodes.flatMap((n) => n.vm.nics.map((x) => x.bridge)))].sort();
}

async function runAction(
  action: LifecycleAction,
  req: LifecycleRequest,
  o: Opened,
  journalPath: string,
  body: (s: StageContext, did: string[], notDone: string[]) => Promise<void>,
  extra: { allowDestroy?: boolean; beforeRelease?: () => void; afterRelease?: () => void } = {},
): Promise<LifecycleOutcome> {
  const did: string[] = [];
  const notDone: string[] = [];
  const release = acquireDeployLock(o.workspace, req.by);
  let result: PipelineResult;
  try {
    result = await runPipeline(
      [
        {
          name: action,
          description: { stop: 'Shut the cluster\'s VMs down (guest agent, then power-off), the hub last', start: 'Start the cluster\'s VMs, the hub first; wait for agents, planes and etcd', destroy: 'Destroy every VM the cluster owns and its local state' }[action],
          needs: [],
          rerun: action === 'destroy' ? 'destructive' : 'safe-rerun',
          run: (s) => body(s, did, notDone),
        },
      ],
      { name: action, journalPath, allowDestroy: extra.allowDestroy ?? false, ...(req.onEvent ? { onEvent: req.onEvent } : {}), ...(req.signal ? { signal: req.signal } : {}) },
    );
    if (result.ok) extra.beforeRelease?.();
  } finally {
    release();
  }
  if (result.ok) extra.afterRelease?.();
  const f = result.failures[0];
  return {
    action,
    cluster: o.plan.cluster.name,
    target: o.driver.target,
    ok: result.ok,
    did,
    notDone,
    ...(f ? { error: { message: f.message, ...(f.hint ? { hint: f.hint } : {}) } } : !result.ok ? { error: { message: `${action} was interrupted` } } : {}),
    runId: result.runId,
    journal: journalPath,
  };
}

function neverDeployed(action: LifecycleAction, o: Opened): LifecycleOutcome {
  return {
    action,
    cluster: o.plan.cluster.name,
    target: o.driver.target,
    ok: false,
    did: [],
    notDone: [],
    error: { message: `${o.plan.cluster.name} was never deployed here: no workspace at ${o.workspace} and no VM of it on ${o.driver.target}`, hint: `deploy it first (kubedos deploy SPEC --target ${o.driver.target})` },
  };
}

/** Gracefully powers off these VMs (guest agent), then powers off whatever still runs after timeoutS. */
async function shutDown(driver: SubstrateDriver, nodes: readonly { name: string; vmid: number }[], timeoutS: number, s: StageContext, did: string[]): Promise<void> {
  const onEvent = logger(s);
  const asked: { name: string; vmid: number }[] = [];
  for (const n of nodes) {
    if ((await driver.status(n.vmid, { signal: s.signal })) !== 'running') continue;
    s.node(n.name, 'running', 'shutting down');
    try {
      if (!(await driver.guestPing(n.vmid, { signal: s.signal }))) throw new SubstrateError('agent-timeout', 'no answer to guest-ping');
      const r = await driver.guestExec(n.vmid, ['systemctl', 'poweroff', '--no-block'], { timeoutS: 30, signal: s.signal });
      if (r.exitCode !== 0) s.log(`${n.name}: systemctl poweroff exited ${r.exitCode}: ${(r.stderr || r.stdout).trim().split('\n').slice(-1)[0] ?? ''}; it is powered off after the timeout`, { node: n.name, stream: 'warn' });
    } catch (err) {
      if (s.signal.aborted) throw err;
      s.log(`${n.name}: the guest agent did not take the shutdown (${(err as Error).message.split('\n')[0]}); powering off after ${timeoutS} s`, { node: n.name, stream: 'warn' });
    }
    asked.push(n);
  }
  const deadline = Date.now() + timeoutS * 1000;
  for (const n of asked) {
    while (Date.now() < deadline && (await driver.status(n.vmid, { signal: s.signal })) === 'running') await sleep(1000, s.signal);
    const graceful = (await driver.status(n.vmid, { signal: s.signal })) !== 'running';
    if (!graceful) s.log(`${n.name}: still running after ${timeoutS} s: powering it off`, { node: n.name, stream: 'warn' });
    await driver.stop(n.vmid, { signal: s.signal, onEvent });
    did.push(`${n.name} (VMID ${n.vmid}) ${graceful ? 'shut down' : 'powered off after the timeout'}`);
    s.node(n.name, 'ok', graceful ? 'shut down' : 'powered off');
  }
}

/** Stops the cluster's VMs: spokes first (reverse plan order), the hub last, then the qemu-local L2 hubs. */
export async function stopCluster(req: LifecycleRequest & { timeoutS?: number }): Promise<LifecycleOutcome> {
  const o = open(req);
  try {
    if (!existsSync(o.workspace)) return neverDeployed('stop', o);
    const timeoutS = req.timeoutS ?? 120;
    return await runAction('stop', req, o, join(o.workspace, WORKSPACE_LAYOUT.journal), async (s, did, notDone) => {
      let inv: Inventory;
      try {
        inv = await o.driver.inventory({ signal: s.signal });
      } catch (err) {
        throw unreachable(o.driver.target, err, 'nothing was stopped');
      }
      const have = new Map(inv.vms.map((vm) => [vm.vmid, vm]));
      const order = stopOrder(o.plan).filter((n) => have.has(n.vmid));
      const missing = stopOrder(o.plan).filter((n) => !have.has(n.vmid));
      if (missing.length) s.log(`no VM for ${countAndFirst(missing.map((n) => n.name))} on ${o.driver.target}: nothing to stop there`, { stream: 'warn' });
      const already = order.filter((n) => have.get(n.vmid)?.status !== 'running');
      for (const n of already) did.push(`${n.name} (VMID ${n.vmid}) was already stopped`);
      const spokes = order.filter((n) => !n.hub);
      const hubs = order.filter((n) => n.hub);
      try {
        await shutDown(o.driver, spokes, timeoutS, s, did);
        await shutDown(o.driver, hubs, timeoutS, s, did);
        if (o.driver instanceof QemuLocalDriver) for (const x of await o.driver.stopNetworkIfIdle(bridgesOf(o.plan))) did.push(`stopped ${x}`);
      } catch (err) {
        const left = order.filter((n) => !did.some((d) => d.startsWith(`${n.name} (`)));
        notDone.push(...left.map((n) => `${n.name} (VMID ${n.vmid}) still running`));
        const e = err as Error & { hint?: string };
        throw new StageError(`stop: ${e.message.split('\n')[0]}; stopped ${countAndFirst(did)}; not stopped ${countAndFirst(notDone)}`, { hint: e.hint ?? 'run kubedos stop again to finish' });
      }
      s.changed(did.filter((d) => !d.endsWith('already stopped')).length);
    });
  } finally {
    if (o.ownDriver) await o.driver.close();
  }
}

interface PlanesCheck {
  ok: boolean;
  problems: string[];
}

/** The hub's planes: a fresh handshake with every spoke but the `fenced` ones (revoked at the hub: no peer there any more). */
async function hubPlanes(driver: SubstrateDriver, plan: Plan, fenced: readonly string[], signal: AbortSignal): Promise<PlanesCheck> {
  const hub = plan.nodes.find((n) => n.hub);
  if (!hub) return { ok: true, problems: [] };
  const g = { driver, node: hub, signal };
  const st = await planesStatus(g);
  const problems = planeProblems(st, hub);
  const clock = await driver.guestExec(hub.vmid, ['date', '+%s'], { timeoutS: 30, signal });
  const nowS = Number(clock.stdout.trim());
  const expected = plan.nodes.filter((n) => !n.hub && !fenced.includes(n.name)).length;
  for (const p of PLANE_NAMES) {
    const fresh = (st.planes[p]?.peers ?? []).filter((x) => x.latestHandshake > 0 && nowS - x.latestHandshake < HANDSHAKE_FRESH_S).length;
    if (fresh < expected) problems.push(`${p}: ${fresh} of ${expected} peers have a fresh handshake with the hub`);
  }
  return { ok: problems.length === 0, problems };
}

/** Pure: the member's own endpoint health, as kubedos start checks it. */
export function etcdHealthArgv(n: Pick<PlanNode, 'planes'>): string[] {
  return etcdctlArgv([n.planes.wg3.address], ['endpoint', 'health'], { dial: '5s' });
}

async function etcdHealth(driver: SubstrateDriver, n: PlanNode, signal: AbortSignal): Promise<'healthy' | 'not-converged' | string> {
  const ca = await driver.guestExec(n.vmid, ['test', '-f', `${ETCD_PKI}/ca.crt`], { timeoutS: 30, signal });
  if (ca.exitCode !== 0) return 'not-converged';
  const r = await driver.guestExec(n.vmid, etcdHealthArgv(n), { timeoutS: 60, signal });
  const out = `${r.stdout}${r.stderr}`.trim();
  return r.exitCode === 0 && /is healthy/.test(out) ? 'healthy' : out.split('\n').slice(-1)[0] || `etcdctl exited ${r.exitCode}`;
}

/** Starts the cluster's VMs (the hub first, then plan order) and waits until agents, planes and etcd are back. */
export async function startCluster(req: LifecycleRequest & { timeoutS?: number }): Promise<LifecycleOutcome> {
  const o = open(req);
  try {
    if (!existsSync(o.workspace)) return neverDeployed('start', o);
    const waitMs = req.timeoutS !== undefined ? req.timeoutS * 1000 : bootTimeoutMs(req.env);
    return await runAction('start', req, o, join(o.workspace, WORKSPACE_LAYOUT.journal), async (s, did, notDone) => {
      let inv: Inventory;
      try {
        inv = await o.driver.inventory({ signal: s.signal });
      } catch (err) {
        throw unreachable(o.driver.target, err, 'nothing was started');
      }
      const have = new Set(inv.vms.map((vm) => vm.vmid));
      const order = startOrder(o.plan);
      const missing = order.filter((n) => !have.has(n.vmid));
      if (missing.length) {
        throw new StageError(`start: ${countAndFirst(missing.map((n) => `${n.name} (VMID ${n.vmid})`))} ha${missing.length === 1 ? 's' : 've'} no VM on ${o.driver.target}; nothing was started`, { hint: 'run kubedos deploy to create them (it starts the others too)' });
      }
      const onEvent = logger(s);
      for (const n of order) {
        try {
          s.node(n.name, 'running', 'starting');
          const was = await o.driver.status(n.vmid, { signal: s.signal });
          await o.driver.start(n.vmid, { signal: s.signal, onEvent });
          did.push(`${n.name} (VMID ${n.vmid}) ${was === 'running' ? 'was already running' : 'started'}`);
        } catch (err) {
          notDone.push(...order.filter((x) => !did.some((d) => d.startsWith(`${x.name} (`))).map((x) => `${x.name} (VMID ${x.vmid}) not started`));
          const e = err as Error & { hint?: string };
          throw new StageError(`start: ${n.name}: ${e.message.split('\n')[0]}; started ${countAndFirst(did)}; not started ${countAndFirst(notDone)}`, { node: n.name, hint: e.hint ?? 'run kubedos start again to finish' });
        }
      }
      const t0 = Date.now();
      const answered = await waitForAgents(o.driver, order.map((n) => n.vmid), { timeoutMs: waitMs, signal: s.signal }).catch((err: Error & { hint?: string }) => {
        notDone.push('guest agents did not all answer');
        throw new StageError(`start: ${err.message}`, { hint: err.hint ?? 'read the VM\'s serial console' });
      });
      for (const n of order) s.log(`${n.name}: guest agent answered after ${((answered.get(n.vmid) ?? 0) / 1000).toFixed(0)} s`, { node: n.name });
      const deadline = t0 + waitMs;
      // A node fenced at the hub (a drill's, or a replace-based upgrade's interrupted before its VM
      // was destroyed) is out of the planes and etcd on purpose: started, not waited for.
      const fenced = await hubRevoked(o.driver, o.plan, s.signal).catch((err: Error) => {
        s.log(`the hub's revocation list could not be read (${err.message.split('\n')[0] ?? ''}): every node is waited for`, { stream: 'warn' });
        return [] as string[];
      });
      if (fenced.length) did.push(`fenced at the hub, not waited for: ${firstFew(fenced)} (${fenced.length === 1 ? 'its' : 'their'} planes and etcd are out on purpose; the drill or upgrade that fenced ${fenced.length === 1 ? 'it replaces it' : 'them replaces them'} when run again)`);
      let planes: PlanesCheck;
      for (;;) {
        planes = await hubPlanes(o.driver, o.plan, fenced, s.signal).catch((err: Error) => ({ ok: false, problems: [err.message.split('\n')[0] ?? ''] }));
        if (planes.ok || Date.now() > deadline) break;
        await sleep(3000, s.signal);
      }
      if (!planes.ok) {
        notDone.push('planes not back');
        throw new StageError(`start: the VMs run but the planes are not back at the hub: ${planes.problems.slice(0, 3).join('; ')}`, { hint: 'see journalctl -u kubedos-backplane on the nodes; kubedos start again waits once more' });
      }
      did.push(`planes back: every peer${fenced.length ? ' not fenced' : ''} has a fresh handshake with the hub on ${PLANE_NAMES.join(', ')}`);
      for (const n of etcdMembers(o.plan).filter((m) => !fenced.includes(m.name))) {
        let h: string;
        for (;;) {
          h = await etcdHealth(o.driver, n, s.signal).catch((err: Error) => err.message.split('\n')[0] ?? 'error');
          if (h === 'healthy' || h === 'not-converged' || Date.now() > deadline) break;
          await sleep(3000, s.signal);
        }
        if (h === 'not-converged') s.log(`${n.name}: etcd not converged yet (no certificates): not checked`, { node: n.name, stream: 'warn' });
        else if (h !== 'healthy') {
          notDone.push(`etcd on ${n.name} not healthy`);
          throw new StageError(`start: etcd on ${n.name} is not healthy: ${h}`, { node: n.name, hint: `see journalctl -u etcd on ${n.name}; kubedos start again waits once more` });
        } else did.push(`etcd healthy on ${n.name}`);
      }
      for (const n of order) s.node(n.name, 'ok', 'running');
      s.changed(did.filter((d) => d.endsWith(' started')).length);
    });
  } finally {
    if (o.ownDriver) await o.driver.close();
  }
}

function listDir(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

/** What a destroy would remove, read from the target (no change anywhere). */
/** The cluster's images on the host and which of them a destroy of these VMs may remove (none for drivers that keep no images apart). */
async function imagesToRemove(o: Opened, destroyed: readonly { vmid: number }[], signal?: AbortSignal): Promise<ImageDecision> {
  if (!o.driver.storedImages) return { remove: [], keep: [] };
  const images = await o.driver.storedImages(o.storage, imagePrefix(o.plan.cluster.name), signal ? { signal } : {});
  return decideImages(o.plan.cluster.name, images, new Set(destroyed.map((d) => d.vmid)));
}

async function preview(o: Opened, req: LifecycleRequest, keepWorkspace: boolean): Promise<{ p: DestroyPreview; decision?: DestroyDecision; images?: ImageDecision }> {
  const base = { cluster: o.plan.cluster.name, target: o.driver.target, workspace: o.workspace, keepWorkspace };
  let inv: Inventory;
  let decision: DestroyDecision;
  let images: ImageDecision;
  try {
    inv = await o.driver.inventory(req.signal ? { signal: req.signal } : {});
    decision = decideDestroy(o.plan, inv);
    images = await imagesToRemove(o, decision.destroy, req.signal);
  } catch (err) {
    return { p: { ...base, reachable: false, unreachable: (err as Error).message.split('\n')[0] ?? '', vms: [], foreign: [], images: [], keptImages: [], paths: [], processes: [], neverDeployed: false } };
  }
  const paths: string[] = [];
  const processes: string[] = [];
  const qemu = o.driver instanceof QemuLocalDriver ? o.driver : undefined;
  const wsExists = existsSync(o.workspace);
  if (qemu) {
    for (const vm of decision.destroy) paths.push(...qemu.vmPaths(vm.vmid).filter((x) => existsSync(x)));
    for (const b of bridgesOf(o.plan)) {
      const sock = qemu.hubSocket(b);
      if (existsSync(sock)) paths.push(sock);
      if (existsSync(`${sock}.pid`)) processes.push(`L2 hub of ${b} (${sock})`);
    }
  }
  if (wsExists && !keepWorkspace) paths.push(o.workspace);
  if (qemu && !keepWorkspace && decision.foreign.length === 0 && existsSync(qemu.options.stateDir) && !qemu.options.stateDir.startsWith(`${o.workspace}/`)) paths.push(qemu.options.stateDir);
  const never = !wsExists && decision.destroy.length === 0 && images.remove.length === 0;
  return {
    p: {
      ...base,
      reachable: true,
      vms: decision.destroy,
      foreign: decision.foreign,
      images: images.remove.map((i) => ({ volid: i.volid, sizeBytes: i.sizeBytes, partial: i.partial })),
      keptImages: images.keep,
      paths: [...new Set(paths)],
      processes,
      ...(!keepWorkspace && wsExists ? { exportTo: recoveryDir(o.plan.cluster.name, req.env) } : {}),
      neverDeployed: never,
    },
    decision,
    images,
  };
}

/** What `destroy` would remove; nothing changes. */
export async function previewDestroy(req: LifecycleRequest, keepWorkspace: boolean): Promise<DestroyPreview> {
  const o = open(req, true);
  try {
    return (await preview(o, req, keepWorkspace)).p;
  } finally {
    if (o.ownDriver) await o.driver.close();
  }
}

/** Copies what a restore needs out of the workspace before it goes. Returns the folder. */
function exportTrust(o: Opened, env: NodeJS.ProcessEnv, stamp: string): string | undefined {
  const names = [WORKSPACE_LAYOUT.bundle, WORKSPACE_LAYOUT.trust, WORKSPACE_LAYOUT.secrets, RECOVERY_DIR, WORKSPACE_LAYOUT.plan].filter((n) => existsSync(join(o.workspace, n)));
  if (!names.length) return undefined;
  const dir = join(makePrivateDir(recoveryDir(o.plan.cluster.name, env)), `exported-${stamp}`);
  makePrivateDir(dir);
  const copied: string[] = [];
  for (const name of names) {
    const from = join(o.workspace, name);
    cpSync(from, join(dir, name), { recursive: true, preserveTimestamps: true, errorOnExist: false, force: true });
    copied.push(name);
  }
  writeFileSync(
    join(dir, 'README.txt'),
    [
      `Exported by kubedos destroy before the workspace of cluster ${o.plan.cluster.name} was removed (${stamp}).`,
      `${copied.join(', ')}: copied from ${o.workspace}.`,
      'bundle/ is the recovery bundle (kubedos verify bundle/); trust/ the CA and hub certificates; secrets/ the',
      'private keys, encrypted to the age identity of the workspace root (it is not removed by destroy);',
      `${RECOVERY_DIR}/ the root CA key, encrypted to the cluster's offline recovery recipient only.`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return dir;
}

/**
 * Destroys the cluster. Without allowDestroy, or with dryRun, nothing changes: the outcome's
 * notDone lists what would go (and `preview` has the detail).
 */
export async function destroyCluster(req: LifecycleRequest & DestroyOptions): Promise<LifecycleOutcome & { preview: DestroyPreview; exportedTo?: string }> {
  const o = open(req, req.dryRun);
  try {
    const { p, decision, images } = await preview(o, req, req.keepWorkspace);
    const base = { action: 'destroy' as const, cluster: o.plan.cluster.name, target: o.driver.target, preview: p };
    const wouldGo = [...p.vms.map((vm) => `VM ${vm.vmid} ${vm.name} (${vm.status})`), ...p.images.map((i) => `image ${i.volid}${i.partial ? ' (interrupted upload)' : ''}`), ...p.processes, ...p.paths];
    if (!p.reachable && (req.dryRun || !req.allowDestroy)) {
      return { ...base, ok: false, did: [], notDone: wouldGo, error: { message: `could not read the VMs on ${o.driver.target}: ${p.unreachable}; nothing was removed`, hint: `run it again once ${o.driver.target} answers` } };
    }
    if (p.neverDeployed) {
      return { ...base, ok: true, did: [], notDone: [], error: { message: `${o.plan.cluster.name} was never deployed here (or is already destroyed): no workspace at ${o.workspace} and no VM of it on ${o.driver.target}; nothing to remove` } };
    }
    if (req.dryRun) return { ...base, ok: true, did: [], notDone: wouldGo };
    if (!req.allowDestroy) {
      return { ...base, ok: false, did: [], notDone: wouldGo, error: { message: `refusing to destroy ${o.plan.cluster.name} without --allow-destroy; nothing was removed`, hint: 'look at what would go (above), then rerun with --allow-destroy' } };
    }
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const wsJournal = join(o.workspace, WORKSPACE_LAYOUT.journal);
    let journalPath = wsJournal;
    if (!req.keepWorkspace) {
      // The record of the cluster outlives its workspace: the journal moves to the recovery folder.
      const rdir = makePrivateDir(recoveryDir(o.plan.cluster.name, req.env));
      journalPath = join(rdir, WORKSPACE_LAYOUT.journal);
      if (existsSync(wsJournal)) {
        const history = readdirSync(rdir).includes(WORKSPACE_LAYOUT.journal) ? `${journalPath}.${stamp}` : journalPath;
        renameSync(wsJournal, history);
      }
    } else if (existsSync(wsJournal)) {
      // The workspace stays, but what the journal says converged is gone: a deploy after this starts clean.
      renameSync(wsJournal, join(o.workspace, `journal.before-destroy-${stamp}.jsonl`));
    }
    let exportedTo: string | undefined;
    const qemu = o.driver instanceof QemuLocalDriver ? o.driver : undefined;
    let foreignInState = (decision?.foreign.length ?? 0) > 0;
    const outcome = await runAction(
      'destroy',
      req,
      o,
      journalPath,
      async (s, did, notDone) => {
        const onEvent = logger(s);
        let d = decision;
        if (!d) {
          try {
            d = decideDestroy(o.plan, await o.driver.inventory({ signal: s.signal }));
          } catch (err) {
            notDone.push(`the VMs of ${o.plan.cluster.name} on ${o.driver.target} (not readable)`, `workspace ${o.workspace}`);
            throw unreachable(o.driver.target, err, `nothing was removed (the workspace ${o.workspace} is kept, since its VMs may still exist)`);
          }
        }
        foreignInState = d.foreign.length > 0;
        for (const f of d.foreign) s.log(`VM ${f.vmid} "${f.name}" ${f.reason}: left alone`, { stream: 'warn' });
        const failed = (what: string, err: unknown): StageError => {
          const e = err as Error & { hint?: string; stderrTail?: string };
          return new StageError(`destroy: ${what}: ${e.message.split('\n')[0]}; removed ${countAndFirst(did)}; still there ${countAndFirst(notDone)}`, {
            ...(e.stderrTail ? { stderrTail: e.stderrTail } : {}),
            hint: `${e.hint ? `${e.hint}; ` : ''}run kubedos destroy --allow-destroy again to finish`,
          });
        };
        if (!req.keepWorkspace && existsSync(o.workspace)) {
          exportedTo = exportTrust(o, req.env, stamp);
          if (exportedTo) did.push(`exported the trust material, recovery bundle and plan to ${exportedTo}`);
        }
        const pending = [...d.destroy];
        while (pending.length) {
          const vm = pending[0]!;
          try {
            s.node(vm.name, 'running', 'destroying');
            await o.driver.destroy(vm.vmid, { allowDestroy: true, signal: s.signal, onEvent });
            s.node(vm.name, 'ok', 'destroyed');
          } catch (err) {
            notDone.push(...pending.map((x) => `VM ${x.vmid} ${x.name}`), ...(req.keepWorkspace ? [] : [`workspace ${o.workspace}`]));
            throw failed(`VM ${vm.vmid} ${vm.name}`, err);
          }
          did.push(`VM ${vm.vmid} ${vm.name} with its disks and TPM state`);
          pending.shift();
        }
        // The boot images it uploaded, once no VM of it is left; an image another VM uses stays.
        let imgs: ImageDecision;
        try {
          imgs = images ?? (await imagesToRemove(o, d.destroy, s.signal));
        } catch (err) {
          notDone.push(`the images of ${o.plan.cluster.name} on ${o.driver.target} (not readable)`, ...(req.keepWorkspace ? [] : [`workspace ${o.workspace}`]));
          throw failed('listing its images', err);
        }
        for (const k of imgs.keep) s.log(`image ${k.volid} is used by VM ${k.usedBy.join(', ')}: left on the host`, { stream: 'warn' });
        const left = [...imgs.remove];
        while (left.length) {
          const img = left[0]!;
          try {
            if (!o.driver.removeImage) throw new SubstrateError('no-image-removal', `${o.driver.target} cannot remove images`);
            await o.driver.removeImage(img, { signal: s.signal, onEvent });
          } catch (err) {
            notDone.push(...left.map((x) => `image ${x.volid}`), ...(req.keepWorkspace ? [] : [`workspace ${o.workspace}`]));
            throw failed(`image ${img.volid}`, err);
          }
          did.push(img.partial ? `interrupted upload ${img.path}` : `image ${img.volid}`);
          left.shift();
        }
        if (qemu) {
          // Leftovers of an interrupted destroy: run dirs of VMIDs with no VM record any more.
          for (const n of o.plan.nodes) {
            if ((await qemu.status(n.vmid)) !== 'absent') continue;
            for (const x of qemu.vmPaths(n.vmid)) {
              if (!existsSync(x)) continue;
              rmSync(x, { recursive: true, force: true });
              did.push(x);
            }
          }
          for (const x of await qemu.stopNetworkIfIdle(bridgesOf(o.plan))) did.push(x.startsWith('L2 hub') ? `stopped the ${x}` : x);
        }
        s.changed(did.length);
      },
      {
        allowDestroy: true,
        // The workspace goes last, once every VM is gone (the lock file in it is released first).
        afterRelease: () => {
          if (req.keepWorkspace) return;
          if (qemu && !foreignInState && !qemu.options.stateDir.startsWith(`${o.workspace}/`)) rmSync(qemu.options.stateDir, { recursive: true, force: true });
          if (!existsSync(o.workspace)) return;
          if (qemu && foreignInState && qemu.options.stateDir.startsWith(`${o.workspace}/`)) {
            // A VM that is not ours lives in this state dir: it and what it may boot from stay.
            for (const name of listDir(o.workspace)) if (join(o.workspace, name) !== qemu.options.stateDir) rmSync(join(o.workspace, name), { recursive: true, force: true });
          } else rmSync(o.workspace, { recursive: true, force: true });
        },
      },
    );
    if (outcome.ok && !req.keepWorkspace) {
      outcome.did.push(existsSync(o.workspace) ? `workspace ${o.workspace} (kept: ${qemu?.options.stateDir} for the VMs that are not this cluster's)` : `workspace ${o.workspace}`);
    }
    return { ...outcome, preview: p, ...(exportedTo ? { exportedTo } : {}) };
  } finally {
    if (o.ownDriver) await o.driver.close();
  }
}

