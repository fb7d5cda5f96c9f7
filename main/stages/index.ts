// The stages of the convergence DAG (seed 003 §12), one file each:
// validate → plan → build → provision → firstboot → backplanes → enroll → converge → workload → seal.
import { appRoot } from '../paths';
import type { Target } from '../target';
import type { StageDefinition } from '../pipeline/runner';
import { backplanesStage } from './backplanes';
import { buildStage } from './build';
import type { DeployContext } from './context';
import { newDeployContext } from './context';
import { convergeStage } from './converge';
import { enrollStage } from './enroll';
import { firstbootStage } from './firstboot';
import { planStage } from './plan';
import { provisionStage } from './provision';
import { sealStage } from './seal';
import type { SpecSource } from './validate';
import { validateStage } from './validate';
import { workloadStage } from './workload';

export interface PlanPipeline {
  stages: StageDefinition[];
}

/** validate -> plan: what the workbench runs as the user edits (outputs: PipelineResult.outputs). */
export function planPipeline(source: SpecSource, planPath?: string): PlanPipeline {
  return { stages: [validateStage(source, { completeness: 'warn' }), planStage(planPath)] };
}

/**
 * What a deploy's journal must share with an earlier run to trust it: the journal format of this
 * engine (2: stages journal typed outputs) and the spec's apiVersion.
 */
export const DEPLOY_JOURNAL_FORMAT = 2;
export function deployCompat(specText: string): string {
  const api = /^apiVersion:\s*(\S+)/m.exec(specText)?.[1] ?? 'unknown';
  return `deploy-journal/${DEPLOY_JOURNAL_FORMAT} spec/${api}`;
}


export interface DeployOptions {
  planPath?: string;
  target: Target;
  workspace: string;
  env?: NodeJS.ProcessEnv;
  specPath?: string;
  repoRoot?: string;
  acceptHostKey?: string;
  sshConfigPath?: string;
  knownHostsPath?: string;
  passphrase?: (keyPath: string) => Promise<string | undefined>;
  /** Run everything, converged or not. */
  force?: boolean;
  /**
   * One node's plan slot only (DeployContext.only): the DAG ends after enroll (no converge,
   * workload or seal: the caller converges that node itself; the bundle is not sealed again).
   */
  only?: string;
}

export interface DeployPipeline extends PlanPipeline {
  context: DeployContext;
  /** Releases what the run holds open (the substrate driver's connection). */
  close(): Promise<void>;
}

/** The whole deploy DAG. */
export function deployPipeline(source: SpecSource, options: DeployOptions): DeployPipeline {
  const ctx = newDeployContext({
    source,
    target: options.target,
    workspace: options.workspace,
    repoRoot: options.repoRoot ?? appRoot(),
    env: options.env ?? process.env,
    ...(options.specPath ? { specPath: options.specPath } : {}),
    ...(options.acceptHostKey ? { acceptHostKey: options.acceptHostKey } : {}),
    ...(options.sshConfigPath ? { sshConfigPath: options.sshConfigPath } : {}),
    ...(options.knownHostsPath ? { knownHostsPath: options.knownHostsPath } : {}),
    ...(options.passphrase ? { passphrase: options.passphrase } : {}),
    ...(options.force ? { force: true } : {}),
    ...(options.only !== undefined ? { only: options.only } : {}),
  });
  const scoped = options.only !== undefined;
  const stages = [
    validateStage(source),
    planStage(options.planPath),
    buildStage(ctx),
    provisionStage(ctx),
    firstbootStage(ctx),
    backplanesStage(ctx),
    enrollStage(ctx),
    ...(scoped ? [] : [convergeStage(ctx), workloadStage(ctx), sealStage(ctx)]),
  ];
  return {
    stages,
    context: ctx,
    close: () => ctx.close(),
  };
}
