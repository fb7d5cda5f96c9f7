// Binds the contract to the engine: every request channel's handler, in plain Node (no
// Electron), shared by the Electron IPC and the WebSocket bridge.
import { readDrillHistory } from '../drills/history';
import { artifactsOverview } from '../build/artifacts';
import type { DrillBinding } from './drills';
import { drillCancel, drillCheck, drillHeal, drillReportOf, drillRun } from './drills';
import { inspectBundle } from '../bundle/inspect';
import { usbList } from '../usb/index';
import type { DeviceSource } from '../usb/index';
import type { UsbBinding } from './usb';
import { usbCancel, usbVerifyRun, usbWriteRun } from './usb';
import type { RestoreRunRequest, RestoreRunResult } from '../restore/run';
import { restoreRunStages } from '../restore/run';
import { readRestoreIdentity, RestoreRefused } from '../restore/service';
import { isAbsolute } from 'node:path';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { EventChannel, EventOf } from '../../common/contract/index';
import { parseEvent } from '../../common/contract/index';
import type { PipelineEvent } from '../../common/pipeline/events';
import { plan } from '../../common/plan/index';
import { isTemplateName, parseSpec, TEMPLATE_NAMES, TEMPLATES } from '../../common/spec/index';
import type { PipelineOptions, StageDefinition } from '../pipeline/runner';
import { runPipeline } from '../pipeline/runner';
import type { DeployOptions } from '../stages/index';
import { deployPipeline, planPipeline } from '../stages/index';
import type { SpecSource } from '../stages/validate';
import { clusterWorkspace, WORKSPACE_LAYOUT } from '../workspace';
import { prepareDeploy } from '../deploy/start';
import type { DeployEnvironment } from '../deploy/service';
import { analyse, DeployRequestError, DeployService } from '../deploy/service';
import type { Handlers } from './dispatch';
import { EventBatcher } from './event-batcher';
import type { LifecycleBinding } from './lifecycle';
import { lifecyclePreview, lifecycleRun } from './lifecycle';
import type { WiringBinding } from './wiring';
import { wiringCheck, wiringLastCheck } from './wiring';
import type { HealthBinding } from './health';
import { healthNow } from './health';
import { upgradeProgress } from './upgrade';
import { SpecAccessError, SpecFiles } from './spec-files';
import { listSshHosts } from './ssh-hosts';
import { TerminalBinding } from './terminal';
import type { TrustBinding } from './trust';
import { trustInventoryOf, trustRun } from './trust';

export const APP_NAME = "Kube'd'OS Foundry";
export const APP_VERSION = '0.1.0';

export type Emit = <C extends EventChannel>(channel: C, payload: EventOf<C>) => void;

export interface WorkbenchOptions {
  transport: 'electron' | 'websocket';
  workspace: string;
  specPath?: string;
  emit: Emit;
  /** Native dialogs (Electron only). Return undefined when the user cancels. */
  pickOpenPath?: () => Promise<string | undefined>;
  pickSavePath?: (suggested?: string) => Promise<string | undefined>;
  /** Stage lists per pipeline; tests inject their own. */
  pipelines?: {
    plan?: (source: SpecSource) => StageDefinition[];
    /** The deploy DAG; close() releases what the run held open (the substrate connection). */
    deploy?: (source: SpecSource, options: DeployOptions) => { stages: StageDefinition[]; close?: () => Promise<void> };
  };
  /** The user's home (~/.ssh/config, ~/.ssh/known_hosts, default keys); default: os.homedir(). */
  home?: string;
  sshConfigPath?: string;
  knownHostsPath?: string;
  /** Environment of the engine ($KUBEDOS_WORKSPACE, $SSH_AUTH_SOCK, …); default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Overrides for the deploy checks (tests: host facts, SSH timeouts). */
  deploy?: Partial<Pick<DeployEnvironment, 'hostFacts' | 'readyTimeoutMs'>>;
  /** Where drills run (default: the namespace lab of the plan); tests inject an in-memory target. */
  drillRunner?: DrillBinding['runner'];
  /** Drills and heals on the deployed cluster (default: runClusterDrill / runClusterHeal); tests inject in-memory ones. */
  drillClusterRunner?: DrillBinding['clusterRunner'];
  drillHealRunner?: DrillBinding['healRunner'];
  /** How the wiring check reaches the deployed cluster (default: its guest agents); tests inject a fake. */
  wiringRunner?: WiringBinding['runner'];
  /** How health.now reads the hub's watcher report (default: its guest agent); tests inject a report. */
  healthReader?: HealthBinding['reader'];
  /** The disks the USB dialog may write (default: lsblk); the browser UI test shows loop devices as sticks. */
  usbSource?: DeviceSource;
  /** How a restore run puts etcd back (default: restoreClusterEtcd, through the guest agents); tests inject one. */
  restoreEtcd?: RestoreRunRequest['etcd'];
  /** Passed to every usb.write (the browser UI test holds a write mid-way with it). */
  usbAfterBytes?: UsbBinding['afterBytes'];
}

/** A deploy check may not hang the wizard: SSH handshakes, inventories and the KVM probe are bounded by this. */
export const DEPLOY_CHECK_TIMEOUT_MS = 90_000;

export interface Workbench {
  handlers: Handlers;
  /** Aborts running pipelines and waits for them to end. */
  dispose(): Promise<void>;
}

/** Pipelines one workbench runs at the same time (plan runs take milliseconds; deploys hold a lock each). */
export const MAX_ACTIVE_RUNS = 8;

export function createWorkbench(options: WorkbenchOptions): Workbench {
  const files = new SpecFiles(options.workspace, options.specPath);
  const runs = new Map<string, RunRecord>();
  const emit: Emit = (channel, payload) => options.emit(channel, parseEvent(channel, payload));
  const stagesFor = options.pipelines?.plan ?? ((source: SpecSource) => planPipeline(source).stages);
  const deployFor = options.pipelines?.deploy ?? ((source: SpecSource, o: DeployOptions) => deployPipeline(source, o));
  const home = options.home ?? homedir();
  const env = options.env ?? process.env;
  const deployEnv: DeployEnvironment = {
    home,
    sshConfigPath: options.sshConfigPath ?? join(home, '.ssh', 'config'),
    knownHostsPath: options.knownHostsPath ?? join(home, '.ssh', 'known_hosts'),
    env,
    ...options.deploy,
  };
  const deploy = new DeployService(deployEnv);
  /** How the workbench starts a deploy (deploy.run, and the deploy inside restore.run). */
  const deployStart: NonNullable<RestoreRunRequest['deployStart']> = {
    sshConfigPath: deployEnv.sshConfigPath,
    knownHostsPath: deployEnv.knownHostsPath,
    // Encrypted keys: only from the environment (the wizard has no passphrase prompt yet).
    passphrase: async () => env.KUBEDOS_SSH_PASSPHRASE,
    pipelineFor: deployFor,
  };
  const terminals = new TerminalBinding(emit, env);
  const bounded = (): AbortSignal => AbortSignal.timeout(DEPLOY_CHECK_TIMEOUT_MS);
  const lifecycle: LifecycleBinding = {
    env,
    sshConfigPath: deployEnv.sshConfigPath,
    knownHostsPath: deployEnv.knownHostsPath,
    bounded,
    // A stop/start/destroy is a run like a deploy: its events on pipeline.events, cancellable by run id.
    track: () => {
      const controller = new AbortController();
      const batcher = new EventBatcher((events) => emit('pipeline.events', events));
      const record: RunRecord = { controller, done: Promise.resolve() };
      return {
        signal: controller.signal,
        onEvent: (e) => {
          if (e.type === 'run') runs.set(e.runId, { ...record, runId: e.runId });
          batcher.push(e);
        },
        end: () => {
          batcher.flush();
          for (const [id, r] of runs) if (r.controller === controller) runs.delete(id);
        },
      };
    },
  };

  const trust: TrustBinding = { env };
  const wiring: WiringBinding = { env, sshConfigPath: lifecycle.sshConfigPath, knownHostsPath: lifecycle.knownHostsPath, ...(options.wiringRunner ? { runner: options.wiringRunner } : {}) };
  const health: HealthBinding = { env, sshConfigPath: lifecycle.sshConfigPath, knownHostsPath: lifecycle.knownHostsPath, bounded, ...(options.healthReader ? { reader: options.healthReader } : {}) };
  const drills: DrillBinding = {
    env,
    emit: (events) => emit('drills.events', events),
    sshConfigPath: lifecycle.sshConfigPath,
    knownHostsPath: lifecycle.knownHostsPath,
    ...(options.drillRunner ? { runner: options.drillRunner } : {}),
    ...(options.drillClusterRunner ? { clusterRunner: options.drillClusterRunner } : {}),
    ...(options.drillHealRunner ? { healRunner: options.drillHealRunner } : {}),
  };

  const usb: UsbBinding = { env, emit: (e) => emit('usb.progress', e), ...(options.usbSource ? { source: options.usbSource } : {}), ...(options.usbAfterBytes ? { afterBytes: options.usbAfterBytes } : {}) };

  const handlers: Handlers = {
    'app.info': () => ({
      name: APP_NAME,
      version: APP_VERSION,
      transport: options.transport,
      workspace: files.workspace,
      ...(options.specPath ? { specPath: files.check(options.specPath) } : {}),
      nativeDialogs: Boolean(options.pickOpenPath),
    }),
    'spec.parse': ({ text }) => parseSpec(text),
    'spec.templates': () => TEMPLATE_NAMES.map((name) => ({ name, description: TEMPLATES[name].description })),
    'spec.template': ({ name }) => {
      if (!isTemplateName(name)) throw new SpecAccessError(`no template "${name}"`, `templates: ${TEMPLATE_NAMES.join(', ')}`);
      return { name, text: TEMPLATES[name].text };
    },
    'spec.list': () => files.list(),
    'drills.history': ({ cluster }) => {
      const h = readDrillHistory(cluster, env);
      return { records: h.records.slice(-50), total: h.records.length, unreadable: h.unreadableCount };
    },
    'drills.check': (r) => drillCheck(drills, r),
    'drills.run': (r) => drillRun(drills, r),
    'drills.cancel': () => drillCancel(drills),
    'drills.report': ({ cluster }) => drillReportOf(cluster, env),
    'drills.heal': (r) => drillHeal(drills, r),
    'artifacts.overview': ({ cluster, verify }) => artifactsOverview(cluster, env, { full: verify === true }),
    'trust.inventory': (r) => trustInventoryOf(trust, r),
    'trust.run': (r) => trustRun(trust, r),
    'recovery.inspect': ({ cluster, verify }) => inspectBundle(cluster, join(clusterWorkspace(cluster, env), WORKSPACE_LAYOUT.bundle), verify ? { verify } : {}),
    'usb.devices': async () =>
      (await usbList({ all: true, ...(options.usbSource ? { source: options.usbSource } : {}) })).map((d) => ({
        path: d.identity.path,
        name: d.identity.name,
        size: d.identity.size,
        ...(d.identity.model ? { model: d.identity.model } : {}),
        ...(d.identity.vendor ? { vendor: d.identity.vendor } : {}),
        ...(d.identity.serial ? { serial: d.identity.serial } : {}),
        ...(d.identity.tran ? { tran: d.identity.tran } : {}),
        removable: d.removable,
        mounts: d.mounts,
        refusals: d.refusals,
        forceable: d.refusals.length > 0 && d.hardRefusals.length === 0,
      })),
    'usb.write': (r) => usbWriteRun(usb, r),
    'usb.verify': (r) => usbVerifyRun(usb, r),
    'usb.cancel': () => usbCancel(usb),
    'restore.run': async ({ cluster, recoveryKey, into, bundle, artifact, target, expectKey, allowDestroy }) => {
      for (const [what, p] of [['recoveryKey', recoveryKey], ['into', into], ['bundle', bundle], ['artifact', artifact]] as const) {
        if (p !== undefined && !isAbsolute(p)) throw new DeployRequestError('restore.path', `${what}: ${p} is not an absolute path`, 'give the whole path, starting with /');
      }
      if (expectKey !== undefined && !target) throw new DeployRequestError('restore.expect-key', 'an expected etcd key needs a target (etcd is put back on the deployed cluster)', 'pick the target to rebuild the cluster on, or leave the key empty');
      const ws = clusterWorkspace(cluster, env);
      let identity: string;
      try {
        identity = readRestoreIdentity(recoveryKey);
      } catch (err) {
        if (!(err instanceof RestoreRefused)) throw err;
        throw new DeployRequestError('restore.recovery-key', err.summary, err.hint);
      }
      const restoreEnv = { ...env, KUBEDOS_WORKSPACE: into };
      const workspace = clusterWorkspace(cluster, restoreEnv);
      const busy = [...runs.values()].find((r) => r.workspace === workspace);
      if (busy) throw new DeployRequestError('deploy.busy', `a run on ${workspace} is already going (run ${busy.runId?.slice(0, 8) ?? '…'})`, 'wait for it to end or cancel it in the Pipeline view');
      // The same engine run as kubedos restore (main/restore/run.ts); its deploy starts as deploy.run's does.
      const req: RestoreRunRequest = {
        bundleDir: bundle ?? join(ws, WORKSPACE_LAYOUT.bundle),
        artifactDir: artifact ?? join(ws, WORKSPACE_LAYOUT.build),
        identity,
        identityFile: recoveryKey,
        expectCluster: cluster,
        env: restoreEnv,
        ...(target ? { target, deployStart } : {}),
        ...(expectKey !== undefined ? { expectKey } : {}),
        allowDestroy: allowDestroy ?? false,
        ...(options.restoreEtcd ? { etcd: options.restoreEtcd } : {}),
      };
      const out: RestoreRunResult = {};
      const started = await startRun(restoreRunStages(req, out), { name: 'restore' }, { workspace });
      return { ...started, workspace };
    },
    'spec.open': async ({ path }) => {
      if (path === undefined) {
        if (!options.pickOpenPath) throw new SpecAccessError('no file dialog over the browser bridge: give a path inside the workspace', `workspace: ${files.workspace}`);
        const picked = await options.pickOpenPath();
        if (!picked) return null;
        files.allow(picked);
        return files.read(picked);
      }
      return files.read(path);
    },
    'spec.save': async ({ path, text }) => {
      let target = path;
      if (target === undefined) {
        if (!options.pickSavePath) throw new SpecAccessError('no file dialog over the browser bridge: give a path inside the workspace', `workspace: ${files.workspace}`);
        target = await options.pickSavePath();
        if (!target) return null;
        files.allow(target);
      }
      return files.write(target, text);
    },
    'plan.compute': ({ text }) => {
      const parsed = parseSpec(text);
      return parsed.spec ? { diagnostics: parsed.diagnostics, plan: plan(parsed.spec) } : { diagnostics: parsed.diagnostics };
    },
    'pipeline.run': ({ pipeline, text, name }) => startRun(stagesFor({ name: name ?? 'editor', text }), { name: pipeline }),
    'pipeline.cancel': ({ runId }) => {
      const run = runs.get(runId);
      if (!run) return { cancelled: false };
      run.controller.abort(new Error('cancelled from the workbench'));
      return { cancelled: true };
    },
    'deploy.targets': () => listSshHosts({ configPath: deployEnv.sshConfigPath, knownHostsPath: deployEnv.knownHostsPath, home }),
    'deploy.checkTarget': ({ target, text, probeAccel }) => deploy.checkTarget(target, text, { signal: bounded(), ...(probeAccel ? { probeAccel } : {}) }),
    'deploy.acceptHostKey': ({ target, fingerprint, text }) => {
      if (target.kind !== 'proxmox') throw new DeployRequestError('deploy.no-host-key', 'qemu-local has no SSH host key to accept');
      return deploy.checkTarget(target, text, { accept: fingerprint, signal: bounded() });
    },
    'deploy.review': ({ target, text }) => deploy.review(target, text, bounded()),
    'lifecycle.preview': (r) => lifecyclePreview(lifecycle, r),
    'lifecycle.run': (r) => lifecycleRun(lifecycle, r),
    'wiring.lastCheck': (r) => wiringLastCheck(wiring, r),
    'wiring.check': (r) => wiringCheck(wiring, r),
    'health.now': (r) => healthNow(health, r),
    'upgrade.progress': (r) => upgradeProgress(env, r),
    'terminal.open': (r) => terminals.open(r),
    'terminal.input': (r) => terminals.input(r),
    'terminal.resize': (r) => terminals.resize(r),
    'terminal.close': (r) => terminals.close(r),
    'deploy.run': async ({ target, text, path, allowDestroy, force }) => {
      const { spec } = analyse(text);
      const workspace = clusterWorkspace(spec.metadata.name, env);
      const busy = [...runs.values()].find((r) => r.workspace === workspace);
      if (busy) throw new DeployRequestError('deploy.busy', `a deploy of ${spec.metadata.name} is already running (run ${busy.runId?.slice(0, 8) ?? '…'})`, 'wait for it to end or cancel it in the Pipeline view');
      const specPath = path === undefined ? undefined : files.check(path);
      const source: SpecSource = { name: specPath ?? `${spec.metadata.name} (editor)`, text };
      // The same start as the CLI (main/deploy/start.ts): one deploy per cluster workspace.
      let prepared;
      try {
        prepared = prepareDeploy({
          cluster: spec.metadata.name,
          source,
          target,
          env,
          ...deployStart,
          ...(specPath ? { specPath } : {}),
          allowDestroy,
          force: force ?? false,
          by: 'workbench',
        });
      } catch (err) {
        throw new DeployRequestError('deploy.busy', (err as Error).message, 'wait for it to end (kubedos status) or stop it first');
      }
      const close = prepared.close;
      const started = await startRun(prepared.stages, prepared.runOptions, { workspace, close }).catch(async (err: unknown) => {
        await close();
        throw err;
      });
      return { ...started, workspace };
    },
  };

  interface RunRecord {
    controller: AbortController;
    done: Promise<unknown>;
    runId?: string;
    workspace?: string;
  }

  /** Pipelines started and not finished yet (a client cannot start thousands at once). */
  let active = 0;

  function startRun(stages: StageDefinition[], runOptions: Omit<PipelineOptions, 'onEvent' | 'signal'>, extra: { workspace?: string; close?: () => Promise<void> } = {}): Promise<{ runId: string; stages: string[] }> {
    const pipeline = runOptions.name;
    if (active >= MAX_ACTIVE_RUNS) {
      return Promise.reject(
        Object.assign(new Error(`${active} pipelines are running already; the workbench runs at most ${MAX_ACTIVE_RUNS} at once`), { code: 'pipeline.busy', hint: 'wait for one to finish or cancel one, then start again' }),
      );
    }
    active++;
    const controller = new AbortController();
    const batcher = new EventBatcher((events) => emit('pipeline.events', events));
    // runPipeline emits its first event synchronously, before `done` below exists: the record
    // is created first and completed after.
    const record: RunRecord = { controller, done: Promise.resolve(), ...(extra.workspace ? { workspace: extra.workspace } : {}) };
    return new Promise((resolveStart, rejectStart) => {
      let started = false;
      const onEvent = (event: PipelineEvent): void => {
        if (!started && event.type === 'run') {
          started = true;
          record.runId = event.runId;
          runs.set(event.runId, record);
          resolveStart({ runId: event.runId, stages: event.stages });
        }
        batcher.push(event);
      };
      record.done = runPipeline(stages, { ...runOptions, onEvent, signal: controller.signal })
        .catch((err: unknown) => {
          if (!started) rejectStart(err);
        })
        .finally(async () => {
          if (!started) rejectStart(new Error(`pipeline ${pipeline} ended before it started`));
          batcher.flush();
          // The run's substrate connection is released before the cluster counts as free again.
          await extra.close?.().catch((err: unknown) => console.error(`closing the ${pipeline} run:`, err));
          for (const [id, r] of runs) if (r.controller === controller) runs.delete(id);
          active--;
        });
    });
  }

  return {
    handlers,
    async dispose() {
      drills.controller?.abort(new Error('workbench closing'));
      usb.controller?.abort(new Error('workbench closing'));
      await drills.running?.catch(() => undefined);
      const pending = [...runs.values()];
      for (const r of pending) r.controller.abort(new Error('workbench closing'));
      await Promise.allSettled([...pending.map((r) => r.done), terminals.dispose()]);
    },
  };
}
