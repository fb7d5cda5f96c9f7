// The restore run, one engine service for `kubedos restore` and the workbench's Recovery view:
//   verify → workspace → deploy → etcd → seal → timeline
// as pipeline stages (the deploy's runner), so the CLI prints them and the workbench follows them
// live like a deploy. verify and workspace are service.ts (refusals before anything is written,
// then the fresh workspace with the same identity). With a target, the deploy is the deploy's own
// start (prepareDeploy + runPipeline, as `kubedos deploy` and the workbench's deploy.run run it)
// on the restored workspace, offline, from the kept artifact as its build, with the recovery key
// at hand; etcd is put back from the bundle's snapshot (etcd-cluster.ts) and the identity proven;
// then the cluster is sealed again: the bundle the deploy sealed BEFORE etcd was back (its
// snapshot is the empty etcd) is moved aside and the deploy runs once more (its converged stages
// are skipped, its seal stage runs because there is no bundle in place), so the workspace's bundle
// holds the restored data. If that fails, the moved bundle is put back and the run says so.
// Without a target the run stops after the workspace and says what is left to do.
// A rerun of the same restore resumes its workspace (service.ts) and finishes what is left.
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { sha256Hex } from '../../common/canonical';
import { RESTORE_STAGES, RESTORE_STAGES_WITH_TARGET } from '../../common/contract/restore';
import type { FailureDetail, PipelineEvent } from '../../common/pipeline/events';
import { BundleManifest, BUNDLE_PATHS } from '../bundle/schema';
import type { DeployStart } from '../deploy/start';
import { prepareDeploy } from '../deploy/start';
import type { StageContext, StageDefinition } from '../pipeline/runner';
import { runPipeline, StageError } from '../pipeline/runner';
import { PREBUILT_ENV } from '../stages/prebuilt';
import type { Target } from '../target';
import { formatTarget } from '../target';
import { WORKSPACE_LAYOUT } from '../workspace';
import type { ClusterEtcdRestoreRequest, RestoreIdentityProof } from './etcd-cluster';
import { EtcdRestoreError, identityLines, restoreClusterEtcd } from './etcd-cluster';
import type { RestorePhase, RestoreRequest, VerifiedRestore } from './service';
import { RestoreRefused, restoreWorkspace, verifyRestore, writeRestoreTimeline } from './service';

/** Where the seal-again step keeps the bundle the restore's deploy sealed, while the seal runs again. */
export const BUNDLE_BEFORE_RESEAL = `${WORKSPACE_LAYOUT.bundle}.before-reseal`;

export interface RestoreRunRequest extends RestoreRequest {
  /** The file the recovery identity was read from: the deploy renews expired certificates with it. */
  identityFile: string;
  /** Rebuild the VMs there, put etcd back, seal again. Absent: verify and workspace only. */
  target?: Target;
  /** An etcd key that must read back after etcd is put back. */
  expectKey?: string;
  allowDestroy?: boolean;
  cwd?: string;
  /** How the deploy starts besides the spec, target and env (the workbench's SSH files, passphrase; tests replace the DAG). */
  deployStart?: Pick<DeployStart, 'sshConfigPath' | 'knownHostsPath' | 'passphrase' | 'acceptHostKey' | 'pipelineFor'>;
  /** The deploy's own pipeline events (the CLI prints them as it prints a deploy). */
  onDeployEvent?: (e: PipelineEvent) => void;
  /** Puts etcd back and proves the identity (default restoreClusterEtcd); tests inject one. */
  etcd?: (r: ClusterEtcdRestoreRequest) => Promise<RestoreIdentityProof>;
}

export interface RestoreRunResult {
  /** Filled as the stages run. */
  workspace?: string;
  specPath?: string;
  proof?: RestoreIdentityProof;
  timeline?: string;
}

/** The command that runs this restore again (it resumes the restored workspace). */
export function restoreRerunCommand(r: Pick<RestoreRunRequest, 'bundleDir' | 'artifactDir' | 'identityFile' | 'expectCluster' | 'target' | 'expectKey' | 'env'>): string {
  return [
    ...(r.env.KUBEDOS_WORKSPACE ? [`KUBEDOS_WORKSPACE=${r.env.KUBEDOS_WORKSPACE}`] : []),
    'kubedos restore',
    r.bundleDir,
    `--artifact ${r.artifactDir}`,
    `--recovery-key ${r.identityFile}`,
    ...(r.expectCluster ? [`--cluster ${r.expectCluster}`] : []),
    `--target ${r.target ? formatTarget(r.target) : 'TARGET'}`,
    ...(r.expectKey !== undefined ? [`--expect-key ${r.expectKey}`] : []),
  ].join(' ');
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** The deploy's failures in one line ("provision/cp-1: …; seal: …"), or "cancelled". */
const failuresLine = (failures: readonly FailureDetail[]): string => failures.map((f) => `${f.stage}${f.node ? `/${f.node}` : ''}: ${f.message.split('\n')[0]}`).join('; ') || 'cancelled';

/** The first failure's node, command and stderr tail, for the restore stage's own failure (the workbench shows them). */
const failureWhere = (failures: readonly FailureDetail[]): Omit<FailureDetail, 'stage' | 'message' | 'hint'> => {
  const f = failures[0];
  return { ...(f?.node ? { node: f.node } : {}), ...(f?.command ? { command: f.command } : {}), ...(f?.exitCode !== undefined ? { exitCode: f.exitCode } : {}), ...(f?.stderrTail ? { stderrTail: f.stderrTail } : {}) };
};

/** The first failure's own next step, then the restore's. */
const thenRerun = (failures: readonly FailureDetail[], rerun: string): string => `${failures[0]?.hint ? `${failures[0].hint}; then ` : ''}run the same restore again (it resumes this workspace and the deploy's journal): ${rerun}`;

/**
 * The stages of one restore run; `out` receives what the run made. Every phase prints one line
 * "<phase>: <what it did> (<seconds>)" on stdout and goes into the timeline (restore-timeline.json),
 * which is written after the workspace exists and after every later phase, failed or not.
 */
export function restoreRunStages(req: RestoreRunRequest, out: RestoreRunResult = {}): StageDefinition[] {
  const phases: RestorePhase[] = [];
  const rerun = restoreRerunCommand(req);
  let verified: VerifiedRestore | undefined;
  const bundleSha256 = (): string => sha256Hex(readFileSync(join(req.bundleDir, BUNDLE_PATHS.manifest)));
  const writeTimeline = (): string => {
    const v = verified!;
    out.timeline = writeRestoreTimeline(out.workspace!, { cluster: v.cluster, bundleSha256: bundleSha256(), rootFingerprint: v.rootFingerprint, phases, ...(out.proof ? { proof: out.proof } : {}) });
    return out.timeline;
  };
  const record = (ctx: StageContext, name: string, t0: number, detail: string): void => {
    const durationMs = Date.now() - t0;
    phases.push({ name, startedAtMs: t0, durationMs, detail });
    ctx.log(`${name}: ${detail} (${secs(durationMs)})`, { stream: 'stdout' });
    if (out.workspace) writeTimeline();
  };
  /** Records the phase as failed (in the timeline too) and returns the stage's error to throw. */
  const failed = (name: string, t0: number, err: StageError): StageError => {
    phases.push({ name, startedAtMs: t0, durationMs: Date.now() - t0, detail: err.message.split('\n')[0]! });
    if (out.workspace) writeTimeline();
    return err;
  };
  const deployEnv = (): NodeJS.ProcessEnv => ({ ...req.env, KUBEDOS_RECOVERY_IDENTITY_FILE: req.identityFile, KUBEDOS_OFFLINE: '1', [PREBUILT_ENV]: join(out.workspace!, WORKSPACE_LAYOUT.build) });

  /** One pass of the deploy on the restored workspace; its events go to onDeployEvent and, folded, to this stage. */
  const deployOnce = async (ctx: StageContext, pass: string): Promise<{ ok: boolean; failures: FailureDetail[] }> => {
    const v = verified!;
    let prepared;
    try {
      prepared = prepareDeploy({
        cluster: v.cluster,
        source: { name: out.specPath!, text: readFileSync(out.specPath!, 'utf8') },
        target: req.target!,
        env: deployEnv(),
        specPath: out.specPath!,
        allowDestroy: Boolean(req.allowDestroy),
        force: false,
        by: `kubedos restore (${pass})`,
        ...req.deployStart,
      });
    } catch (err) {
      return { ok: false, failures: [{ stage: 'start', message: (err as Error).message }] };
    }
    ctx.log(`${pass}: deploying ${v.cluster} to ${formatTarget(req.target!)} from the kept artifact (offline, workspace ${prepared.workspace})`, { stream: 'info' });
    const order: string[] = [];
    const done = new Set<string>();
    try {
      const result = await runPipeline(prepared.stages, {
        ...prepared.runOptions,
        signal: ctx.signal,
        onEvent: (e) => {
          req.onDeployEvent?.(e);
          // The workbench follows the deploy inside this stage: its stages as progress and log lines, its nodes.
          if (e.type === 'run') order.push(...e.stages);
          else if (e.type === 'stage' && e.state !== 'pending' && e.state !== 'queued') {
            if (e.state !== 'running') done.add(e.stage);
            ctx.log(`${pass}: ${e.stage} ${e.state}${e.durationMs !== undefined ? ` (${secs(e.durationMs)})` : ''}${e.reason && e.state !== 'failed' ? `: ${e.reason}` : ''}`, { stream: 'info' });
            ctx.progress(Math.min(1, done.size / Math.max(1, order.length)), `${pass}: ${e.stage} ${e.state}`);
          } else if (e.type === 'node') ctx.node(e.node, e.state, `${e.stage}${e.message ? `: ${e.message}` : ''}`);
          else if (e.type === 'log' && (e.stream === 'warn' || e.stream === 'stderr')) ctx.log(`[${e.stage}${e.node ? `/${e.node}` : ''}] ${e.line}`, { stream: 'info', ...(e.node ? { node: e.node } : {}) });
        },
      });
      return { ok: result.ok, failures: result.failures };
    } finally {
      await prepared.close();
    }
  };

  /** Every stage of the run is safe to rerun: a rerun resumes the workspace and the deploy's journal. */
  const stage = (name: string, needs: readonly string[], description: string, run: StageDefinition['run']): StageDefinition => ({ name, description, needs, rerun: 'safe-rerun', run });

  const verify = stage('verify', [], 'the bundle, the recovery key and the artifact, checked offline; nothing is written', async (ctx) => {
    const t0 = Date.now();
    try {
      verified = await verifyRestore({ ...req, log: (l) => ctx.log(l) });
    } catch (err) {
      if (err instanceof RestoreRefused) throw new StageError(err.summary, { hint: err.hint });
      throw err;
    }
    record(ctx, 'verify', t0, `bundle, recovery key and artifact of ${verified.cluster} check out offline (root CA ${verified.rootFingerprint})`);
    for (const c of verified.checks) ctx.log(`ok    ${c}`, { stream: 'stdout' });
    return { cluster: verified.cluster, rootFingerprint: verified.rootFingerprint };
  });

  const workspace = stage('workspace', ['verify'], 'a fresh workspace with the same cluster identity: spec, plan, trust, secrets, the artifact as build/', async (ctx) => {
    const v = verified!;
    const t0 = Date.now();
    const made = v.resumed ? { workspace: v.workspace, specPath: join(v.workspace, 'spec.yaml') } : await restoreWorkspace(v, req);
    out.workspace = made.workspace;
    out.specPath = made.specPath;
    // Recorded (and the timeline written) now: a rerun resumes this workspace even if this run dies later.
    record(ctx, 'workspace', t0, 'secrets' in made ? `${made.workspace}: same root CA and plan ${v.planSha256.slice(0, 16)}…, ${made.secrets} secrets, ${made.artifactFiles} artifact files` : `${made.workspace}: resumed (an earlier run of this restore made it)`);
    return { workspace: made.workspace, specPath: made.specPath };
  });

  const deploy = stage('deploy', ['workspace'], 'the VMs rebuilt from the kept artifact: the deploy of the restored workspace, offline, with the recovery key at hand', async (ctx) => {
    const t0 = Date.now();
    if (!existsSync(out.specPath!)) throw new StageError(`${out.specPath} is missing after the restore`, { hint: `run the same restore again: ${rerun}` });
    const r = await deployOnce(ctx, 'deploy');
    if (!r.ok) throw failed('deploy', t0, new StageError(`deploy stopped: ${failuresLine(r.failures)}; etcd was not touched`, { ...failureWhere(r.failures), hint: thenRerun(r.failures, rerun) }));
    record(ctx, 'deploy', t0, 'deploy converged');
    return {};
  });

  const etcd = stage('etcd', ['deploy'], "etcd put back from the bundle's snapshot on every member, then the identity proven (root CA, plan, revision, the expected key)", async (ctx) => {
    const v = verified!;
    const snapshot = v.opened.etcdSnapshot;
    if (!snapshot) {
      ctx.log("etcd: the bundle holds no etcd snapshot (the seal said why in its notes); etcd starts empty", { stream: 'stdout' });
      return {};
    }
    const t0 = Date.now();
    try {
      out.proof = await (req.etcd ?? restoreClusterEtcd)({
        specText: readFileSync(out.specPath!, 'utf8'),
        workspace: out.workspace!,
        bundle: { rootCaPem: readFileSync(join(req.bundleDir, BUNDLE_PATHS.rootCa), 'utf8'), clusterCaPem: readFileSync(join(req.bundleDir, BUNDLE_PATHS.clusterCa), 'utf8'), planSha256: v.planSha256 },
        snapshot: snapshot.data,
        target: req.target!,
        env: req.env,
        ...(req.cwd ? { cwd: req.cwd } : {}),
        rerun,
        ...(req.expectKey !== undefined ? { expectKey: req.expectKey } : {}),
        log: (l) => ctx.log(l, { stream: 'stdout' }),
      });
    } catch (err) {
      if (!(err instanceof EtcdRestoreError)) throw err;
      throw failed('etcd', t0, new StageError(err.lines[0]!, { ...(err.o.member ? { node: err.o.member } : {}), ...(err.o.command ? { command: [...err.o.command] } : {}), ...(err.o.stderrTail ? { stderrTail: err.o.stderrTail } : {}), hint: err.o.next }));
    }
    const p = out.proof!;
    record(ctx, 'etcd', t0, `restored from the bundle's snapshot: ${p.etcd.members.length} member${p.etcd.members.length === 1 ? '' : 's'}, revision ${p.etcd.revision}`);
    for (const l of identityLines(p)) ctx.log(l, { stream: 'stdout' });
    return {};
  });

  const seal = stage('seal', ['etcd'], "the restored cluster sealed again: the bundle sealed before etcd was back moved aside, the deploy's seal run again", async (ctx) => {
    if (!out.proof) {
      ctx.log("seal: the deploy's bundle stands (etcd was not put back: there is nothing newer to seal)", { stream: 'stdout' });
      return {};
    }
    const t0 = Date.now();
    const bundle = join(out.workspace!, WORKSPACE_LAYOUT.bundle);
    const aside = join(out.workspace!, BUNDLE_BEFORE_RESEAL);
    // A run that died in here left the old bundle aside: with no bundle in place it goes back first.
    if (existsSync(aside) && !existsSync(bundle)) renameSync(aside, bundle);
    rmSync(aside, { recursive: true, force: true });
    if (existsSync(bundle)) renameSync(bundle, aside);
    const r = await deployOnce(ctx, 'seal');
    const manifest = existsSync(join(bundle, BUNDLE_PATHS.manifest)) ? BundleManifest.safeParse(JSON.parse(readFileSync(join(bundle, BUNDLE_PATHS.manifest), 'utf8'))) : undefined;
    if (!r.ok || !manifest?.success) {
      const why = !r.ok ? `the deploy's seal did not run through: ${failuresLine(r.failures)}` : existsSync(bundle) ? `the new ${BUNDLE_PATHS.manifest} does not parse` : 'the deploy converged without writing a bundle';
      let kept: string;
      if (existsSync(bundle) && manifest?.success) {
        // The seal wrote (and verified) a new bundle before something later stopped: it holds the restored data.
        rmSync(aside, { recursive: true, force: true });
        kept = `the new bundle the seal wrote is kept in ${bundle}`;
      } else if (existsSync(aside)) {
        rmSync(bundle, { recursive: true, force: true });
        renameSync(aside, bundle);
        kept = `the bundle the restore's deploy sealed (before etcd was put back: its snapshot is not the restored data) is back in ${bundle}`;
      } else kept = `there is no bundle in ${bundle}`;
      throw failed('seal', t0, new StageError(`seal again failed: ${why}; ${kept}`, { ...failureWhere(r.failures), hint: `${thenRerun(r.failures, rerun)} (etcd is not restored twice); or move ${bundle} away and run kubedos deploy ${out.specPath} --target ${formatTarget(req.target!)}` }));
    }
    rmSync(aside, { recursive: true, force: true });
    const snap = manifest.data.recovery?.etcdSnapshot;
    if (!snap) ctx.log(`seal: the new bundle holds no etcd snapshot (the seal's notes say why): a restore from it starts etcd empty`, { stream: 'warn' });
    record(ctx, 'seal', t0, `sealed again after etcd was put back: ${bundle} (bundle.json ${sha256Hex(readFileSync(join(bundle, BUNDLE_PATHS.manifest))).slice(0, 16)}…)${snap ? `, etcd snapshot of ${snap.size} bytes from ${snap.node}` : ', no etcd snapshot'}`);
    return {};
  });

  const timeline = stage('timeline', [req.target ? 'seal' : 'workspace'], 'the restore timeline (restore-timeline.json), with the identity proof, and what is left to do', async (ctx) => {
    const v = verified!;
    if (!req.target) {
      ctx.log(`workspace restored; deploy it with: kubedos deploy ${out.specPath} --target TARGET (set KUBEDOS_RECOVERY_IDENTITY_FILE if its certificates have expired)`, { stream: 'stdout' });
      if (v.opened.etcdSnapshot) ctx.log(`etcd is not put back without a target: run this restore again with a target once you can reach it (it resumes this workspace): ${rerun}`, { stream: 'stdout' });
    }
    const path = writeTimeline();
    ctx.log(`timeline: ${path} (${secs(phases.reduce((s, p) => s + p.durationMs, 0))} in all)`, { stream: 'stdout' });
    return { timeline: path };
  });

  const all: Record<string, StageDefinition> = { verify, workspace, deploy, etcd, seal, timeline };
  return (req.target ? RESTORE_STAGES_WITH_TARGET : RESTORE_STAGES).map((n) => all[n]!);
}
